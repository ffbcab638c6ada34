// s3rver 3 with S3's conditional write: a PUT with `If-None-Match: *` of a
// key that exists answers 412 PreconditionFailed (as S3 has since 2024), and
// with S3's whole-object replacement on PUT (see putObjectAtomic).
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

// Runs fn() once every earlier call for the same id in @locks has finished:
// one at a time per key, in arrival order.
async function serialized(locks, id, fn) {
  const prev = locks.get(id) || Promise.resolve();
  let release;
  const mine = new Promise(r => (release = r));
  const tail = prev.then(() => mine);
  locks.set(id, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (locks.get(id) === tail) locks.delete(id);
  }
}

// S3 replaces an object whole: a reader sees the old bytes or the new, and of
// two writers one wins. s3rver 3 truncates the object's file and streams into
// it, so concurrent PUTs of one key interleave and a reader can catch half an
// object. Here a PUT streams into a private file and renames it over the
// object, one writer per key at a time (the metadata then matches the bytes).
const fs = require('fs');
const crypto = require('crypto');
const store = app.store;
const putLocks = new Map();
let tmpSeq = 0;
store.putObject = object =>
  serialized(putLocks, object.bucket + '/' + object.key, () => putObjectAtomic(object));
async function putObjectAtomic(object) {
  const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
  const tmp = `${objectPath}.put-${process.pid}-${++tmpSeq}`;
  try {
    await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
    const [size, md5] = await new Promise((resolve, reject) => {
      const out = fs.createWriteStream(tmp);
      const hash = crypto.createHash('md5');
      let n = 0;
      out.on('error', reject);
      out.on('close', () => resolve([n, hash.digest('hex')]));
      if (Buffer.isBuffer(object.content)) {
        hash.update(object.content);
        n = object.content.length;
        out.end(object.content);
        return;
      }
      object.content.on('error', err => {
        out.destroy();
        reject(err);
      });
      object.content.on('data', chunk => {
        hash.update(chunk);
        n += chunk.length;
      });
      object.content.pipe(out);
    });
    await fs.promises.rename(tmp, objectPath);
    await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

const locks = new Map();
app.middleware.unshift(async (ctx, next) => {
  if (ctx.method !== 'PUT' || ctx.get('if-none-match') !== '*' || ctx.querystring) {
    return next();
  }
  const [b, ...rest] = decodeURIComponent(ctx.path).replace(/^\//, '').split('/');
  const key = rest.join('/');
  // the existence check and the write, one conditional PUT per key at a time
  await serialized(locks, b + '/' + key, async () => {
    if (await app.store.existsObject(b, key)) {
      ctx.status = 412;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
        '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
      return;
    }
    await next();
  });
});
app.run((err, { address, port: p } = {}) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`listening on ${address}:${p}`);
});
