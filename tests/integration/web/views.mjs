// Browser test of the web page's service list, diff and function-details
// (sandwich) views on a store written by `stoke-query generate`
// (test_web_views.sh). Every number the page shows is checked against an
// API answer the page did not use for it: the sparklines against one
// /api/v1/series per service, the diff flame graph against
// /pyroscope/render-diff, the sandwich against /api/v1/top and Connect's
// SelectMergeStacktraces with a call site. Prints "PASS what" /
// "FAIL what: detail" lines.
//
// Environment: BASE_URL, H0 (start of the baseline hour, ms; the comparison
// hour follows it), SHOTS, CHROMIUM, PLAYWRIGHT_DIR.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || path.join(ROOT, "build/web-test"), "package.json"));
const { chromium } = require("playwright-core");

const BASE = (process.env.BASE_URL || "").replace(/\/$/, "");
const H0 = Number(process.env.H0), H1 = H0 + 3600e3, H2 = H0 + 7200e3;
const SHOTS = process.env.SHOTS || path.join(ROOT, "build/web-screenshots");
const PT = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const SVC = "svc-00", SEL = '{service_name="' + SVC + '"}';
fs.mkdirSync(SHOTS, { recursive: true });

let failed = 0;
function check(what, ok, detail) {
  if (ok) console.log("PASS " + what);
  else { failed++; console.log("FAIL " + what + (detail !== undefined ? ": " + String(detail).slice(0, 400) : "")); }
  return ok;
}
async function step(name, fn) {
  try { await fn(); } catch (e) { check(name, false, e.message.split("\n")[0]); }
}
async function get(p) {
  const r = await fetch(BASE + p);
  if (!r.ok) throw new Error(p + " answered " + r.status + ": " + (await r.text()).slice(0, 200));
  return r.json();
}
const qs = (o) => new URLSearchParams(o).toString();

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "stoke-web-views-"));
const ctx = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const consoleErrors = [], offsite = [];
page.on("pageerror", (e) => consoleErrors.push("pageerror: " + e.message));
page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") consoleErrors.push(m.type() + ": " + m.text()); });
page.on("request", (req) => { if (!req.url().startsWith(BASE) && !req.url().startsWith("data:")) offsite.push(req.url()); });

async function open(params) {
  await page.goto(BASE + "/?" + qs(params));
  await settle(0);
}
async function settle(prev) {
  await page.waitForFunction((n) => window.__stoke && window.__stoke.loads > n && !window.__stoke.loading, prev, { timeout: 20000 });
  await page.waitForTimeout(100);
}
const loads = () => page.evaluate(() => window.__stoke.loads);
const shot = (name) => page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
async function fits(what) {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check(what + " fits 1280 px (no horizontal scroll: " + w + ")", w <= 1280, w);
}

/* ---------- service list ---------- */
await step("service list", async () => {
  await open({ view: "services", from: H0, until: H2 });
  const want = (await get("/api/v1/label_values?" + qs({ name: "service_name", from: H0, until: H2 }))).values;
  const rows = await page.$$eval("#svcBody tr", (trs) => trs.map((tr) => {
    const svg = tr.querySelector("svg.spark"), pl = svg.querySelector("polyline");
    return {
      name: tr.dataset.service, text: tr.cells[0].textContent, points: JSON.parse(svg.dataset.points), step: Number(svg.dataset.step),
      from: Number(svg.dataset.from), until: Number(svg.dataset.until), vb: svg.viewBox.baseVal.width + "x" + svg.viewBox.baseVal.height,
      line: pl ? pl.getAttribute("points").trim().split(/\s+/).map((p) => p.split(",").map(Number)) : [],
      shown: svg.getBoundingClientRect().width > 100 && svg.getBoundingClientRect().height > 20,
    };
  }));
  check("one row per service (" + want.length + ": " + want.join(", ") + ")",
    want.length >= 2 && JSON.stringify(rows.map((r) => r.name).sort()) === JSON.stringify(want), JSON.stringify(rows.map((r) => r.name)));
  for (const r of rows) {
    const s = await get("/api/v1/series?" + qs({ query: '{service_name="' + r.name + '"}', from: H0, until: H2, step: r.step }));
    const pts = (s.series[0] || { points: [] }).points;
    check(r.name + ": sparkline holds the " + pts.length + " points of /api/v1/series for the service",
      pts.length > 10 && JSON.stringify(r.points) === JSON.stringify(pts), JSON.stringify(r.points).slice(0, 200) + " vs " + JSON.stringify(pts).slice(0, 200));
    // where the points are drawn: x at the middle of the step, y by value over the series' max
    const [W, H] = r.vb.split("x").map(Number), ymax = Math.max(...pts.map((p) => p[1]));
    const bad = pts.filter(([t, v]) => {
      const x = (t + r.step / 2 - r.from) / (r.until - r.from) * W, y = H - 2 - v / ymax * (H - 4);
      return !r.line.some(([lx, ly]) => Math.abs(lx - x) < 0.02 && Math.abs(ly - y) < 0.02);
    });
    check(r.name + ": every point is a vertex of the drawn line at its time and value (" + r.line.length + " vertices)", r.shown && bad.length === 0,
      "shown=" + r.shown + " off: " + JSON.stringify(bad.slice(0, 3)));
  }
  // the two services differ (svc-00 grows in the second hour): the sparklines do too
  if (rows.length >= 2) check("sparklines differ between services", JSON.stringify(rows[0].line) !== JSON.stringify(rows[1].line));
  await fits("service list");
  await shot("views-services.png");
});

/* ---------- diff: clicked from the service list, then reopened from its URL ---------- */
let diffURL = "";
await step("diff view", async () => {
  const n = await loads();
  await page.click('#svcBody tr[data-service="' + SVC + '"] button[data-v="diff"]');
  await settle(n);
  // the baseline and comparison ranges of this test: put them in and apply
  const n2 = await loads();
  await page.evaluate(([b0, b1, c1]) => {
    const set = (id, ms) => { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3); document.getElementById(id).value = d.toISOString().slice(0, 19); };
    set("bfrom", b0); set("buntil", b1); set("cfrom", b1); set("cuntil", b1 + 3600e3);
  }, [H0, H1, H1]);
  await page.click("#diffApply");
  await settle(n2);
  diffURL = page.url();
  const st = await page.evaluate(() => ({ s: window.__stoke.state, d: window.__stoke.diff }));
  check("the diff's URL holds the view, service and both ranges",
    /view=diff/.test(diffURL) && st.s.query === SEL && Number(st.s.bfrom) === H0 && Number(st.s.buntil) === H1 && Number(st.s.cfrom) === H1 && Number(st.s.cuntil) === H2, diffURL);
  const rd = await get("/pyroscope/render-diff?" + qs({ leftQuery: PT + SEL, leftFrom: H0, leftUntil: H1, rightQuery: PT + SEL, rightFrom: H1, rightUntil: H2, "max-nodes": 100000 }));
  check("baseline and comparison totals = render-diff's leftTicks / rightTicks (" + rd.leftTicks + ", " + rd.rightTicks + ")",
    st.d.L === rd.leftTicks && st.d.R === rd.rightTicks && rd.leftTicks > 0, st.d.L + ", " + st.d.R);
  // render-diff's levels -> call path -> [left total, right total]
  const fb = rd.flamebearer, want = new Map();
  let prev = [];
  for (const lv of fb.levels) {
    const cur = [];
    let el = 0, er = 0, j = 0;
    for (let i = 0; i < lv.length; i += 7) {
      const xl = el + lv[i], xr = er + lv[i + 3];
      el = xl + lv[i + 1]; er = xr + lv[i + 4];
      const node = { s: xl + xr, e: el + er, self: lv[i + 2] + lv[i + 5], name: fb.names[lv[i + 6]], l: lv[i + 1], r: lv[i + 4] };
      if (prev.length) { while (j < prev.length - 1 && node.s >= prev[j].e) j++; node.path = prev[j].path.concat(node.name); }
      else node.path = [];
      want.set(node.path.join(";"), [node.l, node.r]);
      cur.push(node);
    }
    prev = cur;
  }
  const frames = st.d.frames.filter((f) => f.name !== "other");
  const off = frames.filter((f) => { const w = want.get(f.path.join(";")); return !w || w[0] !== f.left || w[1] !== f.right; });
  check("every diff frame's baseline and comparison totals = render-diff's node on the same path (" + frames.length + " frames)",
    frames.length >= 8 && off.length === 0, JSON.stringify(off.slice(0, 3)));
  // the known change: 'hot' grows from ~6% to ~45%, 'mark' shrinks from ~12% to ~1.5%
  const share = async (fn, a, b) => {
    const t = await get("/api/v1/top?" + qs({ query: SEL, from: a, until: b, limit: 1000 }));
    return t.functions.find((f) => f.name === fn).total / t.total;
  };
  const hot = [await share("hot", H0, H1), await share("hot", H1, H2)], mark = [await share("mark", H0, H1), await share("mark", H1, H2)];
  check("the generated change is there: hot's share " + hot.map((x) => (100 * x).toFixed(1) + "%").join(" → ") + ", mark's " + mark.map((x) => (100 * x).toFixed(1) + "%").join(" → "),
    hot[1] > 2 * hot[0] && mark[1] < mark[0] / 2);
  const rgb = async (p) => page.$eval('#diffFlame .frame[data-i="' + st.d.frames.findIndex((f) => f.path.join(";") === p) + '"]', (e) => getComputedStyle(e).backgroundColor.match(/\d+/g).map(Number));
  const h = await rgb("main;serve;hot"), m = await rgb("main;gc;mark"), fh = st.d.frames.find((f) => f.path.join(";") === "main;serve;hot");
  check("hot is drawn red (" + h + "; share change " + (100 * fh.change).toFixed(0) + "% = " + (100 * (hot[1] / hot[0] - 1)).toFixed(0) + "% by /api/v1/top)",
    h[0] > h[1] + 60 && h[0] > h[2] + 60 && Math.abs(fh.change - (hot[1] / hot[0] - 1)) < 1e-9, h);
  check("mark is drawn green (" + m + ")", m[1] > m[0] + 30 && m[1] > m[2] + 30, m);
  // frames whose share did not change (the same generated values on both sides) stay grey
  const same = st.d.frames.filter((f) => f.name !== "total" && Math.abs(f.change) < 0.05);
  const samec = same.length ? await rgb(same[0].path.join(";")) : [0, 0, 0];
  check("an unchanged share is grey (" + (same[0] || {}).name + ": " + samec + ")", same.length > 0 && Math.max(...samec) - Math.min(...samec) < 30, samec);
  // wider by average share: hot's frame is wider than mark's
  check("frame widths follow the average share (hot " + fh.width.toFixed(0) + " px > mark)", fh.width > st.d.frames.find((f) => f.name === "mark").width);
  const rows = await page.$$eval("#diffBody tr", (trs) => trs.map((tr) => [tr.dataset.name, tr.cells[3].className]));
  check("the change table lists hot first, marked up", rows.length && rows[0][0] === "hot" && rows[0][1] === "up", JSON.stringify(rows.slice(0, 3)));
  const side = await page.evaluate(() => [document.getElementById("diffBase").getBoundingClientRect(), document.getElementById("diffCmp").getBoundingClientRect()].map((r) => [r.left, r.top, r.width]));
  check("baseline and comparison side by side", side[0][1] === side[1][1] && side[0][0] + side[0][2] <= side[1][0] && side[0][2] > 300, JSON.stringify(side));
  await fits("diff view");
  await shot("views-diff.png");
  // linkable: the same URL in a fresh load draws the same frames
  await page.goto(diffURL);
  await settle(0);
  const again = await page.evaluate(() => window.__stoke.diff.frames.map((f) => [f.path.join(";"), f.left, f.right, f.color]));
  check("the diff's URL reopens the same diff", JSON.stringify(again) === JSON.stringify(st.d.frames.map((f) => [f.path.join(";"), f.left, f.right, f.color])));
});

/* ---------- function details (sandwich) ---------- */
async function callSite(names) {
  const r = await fetch(BASE + "/querier.v1.QuerierService/SelectMergeStacktraces", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ profileTypeID: PT, labelSelector: SEL, start: H0, end: H2, stackTraceSelector: { callSite: names.map((name) => ({ name })) } }),
  });
  if (!r.ok) throw new Error("SelectMergeStacktraces answered " + r.status);
  return Number((await r.json()).flamegraph.total || 0);
}
await step("sandwich view", async () => {
  // from the flame view's top table: the row's callers/callees button
  await open({ query: SEL, from: H0, until: H2 });
  const n = await loads();
  await page.click('#topBody tr[data-name="parse"] .swbtn');
  await settle(n);
  const url = page.url();
  check("the sandwich's URL names the view and the function", /view=sandwich/.test(url) && /fn=parse/.test(url), url);
  const sw = await page.evaluate(() => window.__stoke.sandwich);
  const top = await get("/api/v1/top?" + qs({ query: SEL, from: H0, until: H2, limit: 1000 }));
  const tp = top.functions.find((f) => f.name === "parse");
  check("parse's self and total = /api/v1/top's (" + tp.self + ", " + tp.total + ")", sw.self === tp.self && sw.total === tp.total && tp.self < tp.total, sw.self + ", " + sw.total);
  const figs = await page.$eval("#swFigs", (e) => e.textContent);
  check("the figures show self and total with their shares", figs.includes("Self") && figs.includes((100 * tp.self / top.total).toFixed(2) + "%") && figs.includes((100 * tp.total / top.total).toFixed(2) + "%"), figs);
  const callers = sw.callerFrames.filter((f) => f.depth === 1), callees = sw.calleeFrames.filter((f) => f.depth === 1);
  check("direct callers: handleA, handleB", JSON.stringify(callers.map((f) => f.name).sort()) === '["handleA","handleB"]', JSON.stringify(callers.map((f) => f.name)));
  for (const c of callers) {
    const want = await callSite(["main", "serve", c.name, "parse"]);
    check("caller " + c.name + ": " + c.total + " = SelectMergeStacktraces under main;serve;" + c.name + ";parse", c.total === want && want > 0, want);
  }
  check("callers add up to parse's total", callers.reduce((a, f) => a + f.total, 0) === tp.total);
  check("direct callees: lex, alloc", JSON.stringify(callees.map((f) => f.name).sort()) === '["alloc","lex"]', JSON.stringify(callees.map((f) => f.name)));
  for (const c of callees) {
    const want = (await callSite(["main", "serve", "handleA", "parse", c.name])) + (await callSite(["main", "serve", "handleB", "parse", c.name]));
    const t = top.functions.find((f) => f.name === c.name);
    check("callee " + c.name + ": " + c.total + " = SelectMergeStacktraces under both call sites = its /api/v1/top total", c.total === want && want === t.total && want > 0, want + " / " + t.total);
  }
  check("callees plus parse's self = its total", callees.reduce((a, f) => a + f.total, 0) + sw.self === tp.total);
  // callers above (inverted: parse on their bottom row), callees below (parse on top)
  const geo = await page.evaluate(() => {
    const rows = (id) => [...document.querySelectorAll("#" + id + " .frame")].map((e) => ({ n: e.dataset.name, top: e.getBoundingClientRect().top }));
    return { up: rows("swCallers"), down: rows("swCallees") };
  });
  const maxTop = (fs) => Math.max(...fs.map((f) => f.top)), minTop = (fs) => Math.min(...fs.map((f) => f.top));
  const pu = geo.up.find((f) => f.n === "parse"), pd = geo.down.find((f) => f.n === "parse");
  check("callers drawn above with parse at their bottom, callees below with parse on top",
    pu && pd && pu.top === maxTop(geo.up) && pd.top === minTop(geo.down) && maxTop(geo.up) < minTop(geo.down) && geo.up.some((f) => f.n === "main"),
    JSON.stringify({ pu, pd }));
  await fits("sandwich view");
  await shot("views-sandwich.png");
  // clicking a caller re-centres the sandwich on it
  const n2 = await loads();
  await page.click('#swCallers .frame[data-name="handleB"]');
  await settle(n2);
  const sw2 = await page.evaluate(() => window.__stoke.sandwich);
  const hb = top.functions.find((f) => f.name === "handleB");
  check("a click on a caller opens its sandwich (handleB, total " + hb.total + ")", sw2.fn === "handleB" && sw2.total === hb.total && /fn=handleB/.test(page.url()), sw2.fn + " " + sw2.total);
});

/* ---------- from the sandwich to the flame graph; what the views say about bad input ---------- */
await step("sandwich to flame graph, empty and bad states", async () => {
  await open({ view: "sandwich", fn: "parse", query: SEL, from: H0, until: H2 });
  const tot = await page.evaluate(() => window.__stoke.sandwich.total);
  let n = await loads();
  await page.click("#swFlame");
  await settle(n);
  const st = await page.evaluate(() => ({ view: window.__stoke.state.view, matched: window.__stoke.matched, hits: [...document.querySelectorAll("#flame .frame.hit")].map((e) => e.dataset.name) }));
  check("'Show in flame graph' opens the flame view with parse highlighted, matching its total", st.view === "flame" && st.matched && st.matched.value === tot && st.hits.length === 2 && st.hits.every((h) => h === "parse"), JSON.stringify(st));
  await open({ view: "sandwich", fn: "no_such_function", query: SEL, from: H0, until: H2 });
  const e = await page.evaluate(() => ({ msg: document.getElementById("swEmpty").hidden ? "" : document.getElementById("swEmpty").textContent, frames: document.querySelectorAll("#swCallers .frame, #swCallees .frame").length }));
  check("a function not in the selection: a message, no frames", /not in this selection/.test(e.msg) && e.frames === 0, JSON.stringify(e));
  await page.goto(BASE + "/?" + qs({ view: "diff", query: SEL, from: H0, until: H2, bfrom: H1, buntil: H0, cfrom: H1, cuntil: H2 }));
  await settle(0);
  const err = await page.evaluate(() => window.__stoke.error);
  check("a baseline that ends before it starts: an error naming it", /diff: each range needs 'from' before 'until'/.test(err || ""), err);
  await open({ view: "services", from: H0 - 86400e3, until: H0 - 82800e3 });
  const em = await page.evaluate(() => ({ rows: document.querySelectorAll("#svcBody tr").length, msg: document.getElementById("svcEmpty").hidden ? "" : document.getElementById("svcEmpty").textContent }));
  check("the service list of an empty range: no rows, a message", em.rows === 0 && /No data in this range/.test(em.msg), JSON.stringify(em));
});

check("no request left the server (offline page)", offsite.length === 0, offsite.join(" "));
check("no JavaScript errors or warnings in the console", consoleErrors.length === 0, consoleErrors.join(" | "));
await ctx.close();
fs.rmSync(profileDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
