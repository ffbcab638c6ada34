// s3rver 3 with S3's conditional write: a PUT with `If-None-Match: *` of a
// key that exists answers 412 PreconditionFailed (as S3 has since 2024).
// s3rver itself honours If-None-Match on GET only and overwrites on PUT,
// so compactor replicas could not share a plain s3rver safely;
// `stoke-query compact --continuous` refuses one (lease_store_check).
// Existence check and write are serialized per key in this one process.
// usage: node s3rver_cond.js DIR PORT BUCKET
'use strict';
const path = require('path');
const S3rver = require(path.join(__dirname, '../../build/node_modules/s3rver'));

const [dir, port, bucket] = process.argv.slice(2);
const app = new S3rver({
  directory: dir,
  address: '127.0.0.1',
  port: Number(port),
  silent: true,
  configureBuckets: [{ name: bucket }],
});
const locks = new Map();
app.middleware.unshift(async (ctx, next) => {
  if (ctx.method !== 'PUT' || ctx.get('if-none-match') !== '*' || ctx.querystring) {
    return next();
  }
  const [b, ...rest] = decodeURIComponent(ctx.path).replace(/^\//, '').split('/');
  const key = rest.join('/');
  const id = b + '/' + key;
  const prev = locks.get(id) || Promise.resolve();
  let release;
  const mine = new Promise(r => (release = r));
  const tail = prev.then(() => mine);
  locks.set(id, tail);
  await prev;
  try {
    if (await app.store.existsObject(b, key)) {
      ctx.status = 412;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
        '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
      return;
    }
    await next();
  } finally {
    release();
    if (locks.get(id) === tail) locks.delete(id);
  }
});
app.run((err, { address, port: p } = {}) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`listening on ${address}:${p}`);
});
