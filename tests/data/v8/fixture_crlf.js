'use strict';
/* CRLF line ends, and a U+2028 line separator here: which V8 counts as one. */
/* global here */

function crlf(a) { here(); return a; }
const lone = function () { here(); return 2; }; // then a lone CRfunction afterCr() { here(); return 3; }
module.exports.fns = [
  [crlf, () => crlf(1)],
  [lone, () => lone()],
  [afterCr, () => afterCr()],
];
