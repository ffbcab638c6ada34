// bench/busy.js - a CPU-busy node for `make bench`'s unwinding stage: a plain
// JS loop (run with no flags, so V8 emits no perf map and JIT frames are
// walked by frame pointers). Usage: node bench/busy.js SECONDS
'use strict';
function leaf(n) {
    let s = 0;
    for (let i = 0; i < n; i++) s = (s + i * i) % 1000003;
    return s;
}
function middle(n) {
    return leaf(n) + leaf(n >> 1);
}
const end = Date.now() + 1000 * Number(process.argv[2] || 600);
let sink = 0;
while (Date.now() < end) sink ^= middle(200000);
if (sink === -1) console.log(sink);
