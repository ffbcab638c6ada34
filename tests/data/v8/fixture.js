'use strict';
// Functions of the shapes V8 names differently, for gen.sh. Each one calls
// here() on the line where it starts: with FIXTURE_TRUTH=1, here() prints
// the name and line V8 itself gives it (its own stack trace API); without,
// the process prints each function's SharedFunctionInfo (%DebugPrint) for
// the agent's namer to read. Both runs list the functions in one order.
const truth = process.env.FIXTURE_TRUTH === '1';
let printing = false;
globalThis.here = here;
const other = require('./fixture_crlf.js');

function here() {
  if (!truth || !printing) return;
  const save = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, callsites) => callsites;
  const o = {};
  Error.captureStackTrace(o, here);
  const cs = o.stack[0];
  Error.prepareStackTrace = save;
  console.log(`${cs.getFunctionName() || '<anonymous>'}|${cs.getFileName()}|${cs.getLineNumber()}`);
}

function declared(n) { here(); return n + 1; }
const arrow = (x) => { here(); return x * 2; };
const obj = { method(a) { here(); return a + 1; } };
obj.assigned = function (q) { here(); return q - 1; };
const named = function inner(z) { here(); return z ? inner(z - 1) : 0; };
function outer(k) {
  let captured = k;
  return function () { here(); return captured++; };
}
const anonymous = outer(3);
class Klass {
  constructor(v) { here(); this.v = v; }
  method2() { here(); return this.v * 2; }
  static stat() { here(); return 1; }
}
function 名前(v) { here(); return v; }
function many() {
  let v0 = 0, v1 = 1, v2 = 2, v3 = 3, v4 = 4, v5 = 5, v6 = 6, v7 = 7, v8 = 8, v9 = 9;
  let w0 = 0, w1 = 1, w2 = 2, w3 = 3, w4 = 4, w5 = 5, w6 = 6, w7 = 7, w8 = 8, w9 = 9;
  let x0 = 0, x1 = 1, x2 = 2, x3 = 3, x4 = 4, x5 = 5, x6 = 6, x7 = 7, x8 = 8, x9 = 9;
  let y0 = 0, y1 = 1, y2 = 2, y3 = 3, y4 = 4, y5 = 5, y6 = 6, y7 = 7, y8 = 8, y9 = 9;
  let z0 = 0, z1 = 1, z2 = 2, z3 = 3, z4 = 4, z5 = 5, z6 = 6, z7 = 7, z8 = 8, z9 = 9;
  let u0 = 0, u1 = 1, u2 = 2, u3 = 3, u4 = 4, u5 = 5, u6 = 6, u7 = 7, u8 = 8, u9 = 9;
  let t0 = 0, t1 = 1, t2 = 2, t3 = 3, t4 = 4, t5 = 5, t6 = 6, t7 = 7, t8 = 8, t9 = 9;
  let s0 = 0, s1 = 1, s2 = 2, s3 = 3, s4 = 4, s5 = 5, s6 = 6, s7 = 7, s8 = 8, s9 = 9;
  return function capturesEighty() { here();
    return v0 + v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + w0 + w1 + w2 + w3 + w4 + w5 + w6 +
      w7 + w8 + w9 + x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + y0 + y1 + y2 + y3 + y4 +
      y5 + y6 + y7 + y8 + y9 + z0 + z1 + z2 + z3 + z4 + z5 + z6 + z7 + z8 + z9 + u0 + u1 + u2 +
      u3 + u4 + u5 + u6 + u7 + u8 + u9 + t0 + t1 + t2 + t3 + t4 + t5 + t6 + t7 + t8 + t9 + s0 +
      s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9;
  };
}
const eighty = many();
function* generator() { here(); yield 1; }
async function asyncFn() { here(); return 1; }

const k = new Klass(1);
const fns = [
  [declared, () => declared(1)],
  [arrow, () => arrow(1)],
  [obj.method, () => obj.method(1)],
  [obj.assigned, () => obj.assigned(1)],
  [named, () => named(0)],
  [anonymous, () => anonymous()],
  [Klass, () => new Klass(2)],
  [Klass.prototype.method2, () => k.method2()],
  [Klass.stat, () => Klass.stat()],
  [名前, () => 名前(1)],
  [eighty, () => eighty()],
  [generator, () => generator().next()],
  [asyncFn, () => asyncFn()],
  ...other.fns,
];
printing = true;
for (const [f, call] of fns) {
  call();
  if (!truth) eval('%DebugPrint(f)');
}
if (!truth) setTimeout(() => {}, 60000);
