// Browser test of the stoke-query web page (query/web/index.html).
// Drives Debian's Chromium with playwright-core against BASE_URL (a real
// stoke-query or tests/integration/web/mock_server.py). Prints one line per
// check, "PASS what" or "FAIL what: detail"; test_web.sh counts them.
//
// Environment: BASE_URL (required), KNOWN=1 when the server holds the known
// profile of mock_server.py (exact names and percentages are then asserted),
// MOCK=1 when it is the mock (request log checks), CHROMIUM (/usr/bin/chromium),
// PLAYWRIGHT_DIR (directory holding node_modules/playwright-core),
// SHOTS (screenshot directory), WEB_SERVICE, WEB_FROM, WEB_UNTIL (real server).
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || path.join(ROOT, "build/web-test"), "package.json"));
const { chromium } = require("playwright-core");

const BASE = (process.env.BASE_URL || "").replace(/\/$/, "");
const KNOWN = process.env.KNOWN === "1";
const MOCK = process.env.MOCK === "1";
const SHOTS = process.env.SHOTS || path.join(ROOT, "build/web-screenshots");
const FROM = process.env.WEB_FROM || "now-1h";
const UNTIL = process.env.WEB_UNTIL || "now";
if (!BASE) { console.log("FAIL BASE_URL is not set"); process.exit(1); }
fs.mkdirSync(SHOTS, { recursive: true });

let failed = 0;
function check(what, ok, detail) {
  if (ok) console.log("PASS " + what);
  else { failed++; console.log("FAIL " + what + (detail !== undefined ? ": " + String(detail).slice(0, 300) : "")); }
  return ok;
}
const near = (a, b, tol) => Math.abs(a - b) <= tol;

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "stoke-web-chromium-"));
// a fresh, empty profile directory (playwright passes it as --user-data-dir)
const ctx = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 900 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) pageErrors.push(m.text()); });

const state = () => page.evaluate(() => ({
  loads: window.__stoke.loads, loading: window.__stoke.loading, error: window.__stoke.error,
  frames: window.__stoke.frames, matched: window.__stoke.matched, state: window.__stoke.state,
}));
async function settle(prevLoads) {
  await page.waitForFunction((n) => window.__stoke && window.__stoke.loads > n && !window.__stoke.loading, prevLoads, { timeout: 15000 });
  await page.waitForTimeout(50);
}
async function loads() { return page.evaluate(() => (window.__stoke ? window.__stoke.loads : 0)); }
const shot = (name) => page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
async function apiJSON(p) { const r = await fetch(BASE + p); return { status: r.status, body: await r.json() }; }
async function step(name, fn) {
  try { await fn(); } catch (e) { check(name, false, e.message.split("\n")[0]); }
}
// visible labels of the flame graph, from the DOM
const labels = () => page.$$eval("#flame .frame", (els) => els.map((e) => ({
  name: e.dataset.name, text: e.textContent, w: e.getBoundingClientRect().width,
  cls: e.className, visible: e.offsetWidth > 0 && e.offsetHeight > 0,
})));
// table rows: [name, self, self%, total, total%]
const rows = () => page.$$eval("#topBody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));

let service = process.env.WEB_SERVICE || (KNOWN ? "checkout" : "");

await step("page loads", async () => {
  const resp = await page.goto(BASE + "/?from=" + encodeURIComponent(FROM) + "&until=" + encodeURIComponent(UNTIL));
  check("GET / answers 200 text/html", resp.status() === 200 && /text\/html/.test(resp.headers()["content-type"] || ""), resp.status());
  await settle(0);
  check("title names Stoke", /Stoke/.test(await page.title()));
  const opts = await page.$$eval("#service option", (os) => os.map((o) => o.value));
  if (!service) service = opts.find((o) => o && o !== "\u0000custom") || "";
  check("service picker lists the services", KNOWN ? opts.includes("checkout") && opts.includes("search") : opts.length > 1, opts.join(","));
  const types = await page.$$eval("#ptype option", (os) => os.map((o) => o.value));
  check("profile type picker lists the types", types.includes("process_cpu:cpu:nanoseconds:cpu:nanoseconds") && (!KNOWN || types.length === 2), types.join(","));
  await shot("01-all-services.png");
});

await step("pick a service", async () => {
  const n = await loads();
  await page.selectOption("#service", service);
  await settle(n);
  const url = decodeURIComponent(page.url());
  check("the URL keeps the selector", url.includes('query={service_name="' + service + '"}'), url);
  check("the selector box shows it", (await page.inputValue("#query")) === '{service_name="' + service + '"}');
  const st = await state();
  check("no error banner", await page.isHidden("#banner"), st.error);
  check("flame graph rendered", st.frames.length > 3, st.frames.length);
});

await step("flame graph", async () => {
  const ls = await labels();
  const root = ls.find((l) => l.name === "total");
  check("root frame spans the graph", root && root.w > 500, root && root.w);
  if (KNOWN) {
    for (const [name, share] of [["main", 1], ["handle_request", 1], ["parse_json", 0.40], ["compress", 0.35], ["db_query", 0.25]]) {
      const l = ls.find((x) => x.name === name);
      check(`frame ${name} is labelled`, l && l.visible && l.text === name, l && l.text);
      check(`frame ${name} width is ${share * 100}% of the root`, l && root && near(l.w / root.w, share, 0.01), l && root && (l.w / root.w).toFixed(3));
    }
    const k = ls.find((x) => x.name === "__x64_sys_read");
    const u = ls.find((x) => x.name === "json_lex");
    check("kernel frame is tinted differently", k && u && (await page.$eval('#flame .frame[data-name="__x64_sys_read"]', (e) => getComputedStyle(e).backgroundColor))
      !== (await page.$eval('#flame .frame[data-name="json_lex"]', (e) => getComputedStyle(e).backgroundColor)));
    const kh = await page.$eval('#flame .frame[data-name="__x64_sys_read"]', (e) => getComputedStyle(e).backgroundColor);
    const [kr, , kb] = kh.match(/\d+/g).map(Number);
    check("kernel frame colour is cool (more blue than red)", kb > kr, kh);
    const uh = await page.$eval('#flame .frame[data-name="json_lex"]', (e) => getComputedStyle(e).backgroundColor);
    const [ur, , ub] = uh.match(/\d+/g).map(Number);
    check("user frame colour is warm (more red than blue)", ur > ub, uh);
  } else {
    const fg = (await apiJSON(`/api/v1/flamegraph?query=${encodeURIComponent('{service_name="' + service + '"}')}&from=${FROM}&until=${UNTIL}`)).body;
    const top = fg.tree.children[0];
    const l = top && ls.find((x) => x.name === top.name);
    check("the hottest root child is drawn proportionally", l && near(l.w / root.w, top.total / fg.total, 0.02), top && top.name);
  }
  // colour is stable: same name, same colour, after a re-render
  const c1 = await page.$eval("#flame .frame:nth-child(3)", (e) => [e.dataset.name, e.style.background]);
  await page.click('#orient button[data-o="flame"]');
  const c2 = await page.$eval(`#flame .frame[data-name="${c1[0]}"]`, (e) => e.style.background);
  check("colours are stable by name", c1[1] === c2, c1[1] + " vs " + c2);
  const flameTop = await page.$eval('#flame .frame[data-name="total"]', (e) => e.offsetTop);
  check("flame orientation puts the root at the bottom", flameTop > 0, flameTop);
  await shot("02-flame-orientation.png");
  await page.click('#orient button[data-o="icicle"]');
  check("icicle orientation puts the root at the top", (await page.$eval('#flame .frame[data-name="total"]', (e) => e.offsetTop)) === 0);
});

await step("tooltip", async () => {
  const name = KNOWN ? "parse_json" : (await state()).frames.find((f) => f.depth === 1).name;
  await page.hover(`#flame .frame[data-name="${name}"]`);
  await page.waitForSelector("#tip:not([hidden])");
  const t = await page.textContent("#tip");
  check("tooltip shows the name", t.includes(name), t);
  check("tooltip shows total and self", /Total/.test(t) && /Self/.test(t), t);
  if (KNOWN) check("tooltip shows total 4.00 s (40.00%) and self 1.00 s (10.00%)", t.includes("4.00 s") && t.includes("(40.00%)") && t.includes("1.00 s") && t.includes("(10.00%)"), t);
  await shot("03-tooltip.png");
  await page.mouse.move(5, 5);
});

await step("top table", async () => {
  const r = await rows();
  check("top table has rows", r.length > 0, r.length);
  if (KNOWN) {
    const by = Object.fromEntries(r.map((x) => [x[0], x]));
    check("json_lex: self 3.00 s, 30.00%", by.json_lex && by.json_lex[1] === "3.00 s" && by.json_lex[2] === "30.00%", by.json_lex);
    check("parse_json: total 40.00%", by.parse_json && by.parse_json[4] === "40.00%", by.parse_json);
    check("compress: total 35.00%", by.compress && by.compress[4] === "35.00%", by.compress);
    check("db_query: self 500 ms, total 25.00%", by.db_query && by.db_query[1] === "500 ms" && by.db_query[4] === "25.00%", by.db_query);
    check("sorted by self by default", r[0][0] === "json_lex", r[0][0]);
  } else {
    const t = (await apiJSON(`/api/v1/top?query=${encodeURIComponent('{service_name="' + service + '"}')}&from=${FROM}&until=${UNTIL}&limit=5`)).body;
    const f = t.functions[0];
    check("first row is the API's top function with its self%", r[0][0] === f.name && r[0][2] === (100 * f.self / t.total).toFixed(2) + "%", r[0]);
  }
  await page.click('#top th[data-k="name"]');
  const byName = (await rows()).map((x) => x[0]);
  check("clicking Function sorts by name", byName.join() === [...byName].sort((a, b) => a.localeCompare(b)).join(), byName.slice(0, 4).join());
  await page.click('#top th[data-k="totalp"]');
  const byTotal = await rows();
  check("clicking Total % sorts by total, descending", byTotal[0][4] === "100.00%", byTotal[0]);
  await page.click('#top th[data-k="totalp"]');
  const asc = await rows();
  check("clicking again reverses", parseFloat(asc[0][4]) <= parseFloat(asc[asc.length - 1][4]), asc[0]);
  await page.click('#top th[data-k="self"]');
});

await step("search", async () => {
  const term = KNOWN ? "json" : (await state()).frames.find((f) => f.depth === 2).name;
  await page.fill("#search", term);
  await page.waitForFunction(() => window.__stoke.matched !== null);
  await page.waitForTimeout(200);
  const st = await state();
  const hits = (await labels()).filter((l) => l.cls.includes("hit")).map((l) => l.name);
  check("search highlights matching frames", hits.length > 0 && hits.every((n) => n.toLowerCase().includes(term.toLowerCase())), hits.join(","));
  const txt = await page.textContent("#match");
  check("search shows the matched share", /matches [\d.]+% of total/.test(txt), txt);
  if (KNOWN) {
    check("'json' matches 40.00% (parse_json with json_lex counted once)", st.matched.share === 40 && txt.includes("40.00%"), txt);
    check("highlighted: parse_json and json_lex", hits.includes("parse_json") && hits.includes("json_lex"), hits.join(","));
  }
  const r = await rows();
  check("the table is filtered by the search", r.length > 0 && r.every((x) => x[0].toLowerCase().includes(term.toLowerCase())), r.map((x) => x[0]).join(","));
  check("the URL keeps the search", new URL(page.url()).searchParams.get("search") === term);
  await shot("04-search.png");
  if (KNOWN) {
    await page.fill("#search", "compress");
    await page.waitForTimeout(300);
    check("'compress' matches 35.00%", (await page.textContent("#match")).includes("35.00%"), await page.textContent("#match"));
  }
  await page.fill("#search", "");
  await page.waitForTimeout(300);
  check("clearing the search hides the match", await page.isHidden("#match"));
});

await step("zoom", async () => {
  const target = KNOWN ? "compress" : (await state()).frames.find((f) => f.depth === 2).name;
  await page.click(`#flame .frame[data-name="${target}"]`);
  await page.waitForTimeout(100);
  const crumbs = await page.$$eval("#crumbs button", (bs) => bs.map((b) => b.textContent));
  if (KNOWN) check("breadcrumb: all › main › handle_request › compress", crumbs.join(" › ") === "all › main › handle_request › compress", crumbs.join(" › "));
  else check("breadcrumb ends with the zoomed frame", crumbs[crumbs.length - 1] === target, crumbs.join(" › "));
  const ls = await labels();
  const root = ls.find((l) => l.name === "total");
  const z = ls.find((l) => l.name === target && !l.cls.includes("anc"));
  check("the zoomed frame spans the graph", z && root && near(z.w, root.w, 2), z && z.w);
  if (KNOWN) {
    const d = ls.find((l) => l.name === "deflate_slow");
    check("its child deflate_slow is 3/3.5 of it", d && near(d.w / z.w, 3 / 3.5, 0.01), d && d.w / z.w);
    check("frames outside the zoom are gone", !ls.some((l) => l.name === "parse_json"));
  }
  check("the URL keeps the zoom", (new URL(page.url()).searchParams.get("focus") || "").endsWith(target), page.url());
  check("Reset zoom button shown", await page.isVisible("#reset"));
  await shot("05-zoom.png");
  // a link reproduces the view
  const url = page.url();
  const page2 = await ctx.newPage();
  await page2.goto(url);
  await page2.waitForFunction(() => window.__stoke && window.__stoke.loads > 0 && !window.__stoke.loading);
  const c2 = await page2.$$eval("#crumbs button", (bs) => bs.map((b) => b.textContent));
  check("a link reproduces service and zoom", c2.join() === crumbs.join() && (await page2.inputValue("#service")) === service, c2.join(" › "));
  await page2.close();
  // zoom out through the breadcrumb, then reset
  await page.click("#crumbs button:nth-of-type(2)");
  const c3 = await page.$$eval("#crumbs button", (bs) => bs.map((b) => b.textContent));
  check("clicking a breadcrumb zooms out to it", c3.length === 2, c3.join(" › "));
  await page.click("#reset");
  check("Reset zoom returns to the root", (await page.$$eval("#crumbs button", (bs) => bs.length)) === 0 && !new URL(page.url()).searchParams.get("focus"));
});

await step("time range", async () => {
  let n = await loads();
  await page.click('#presets button[data-r="15m"]');
  await settle(n);
  const u = new URL(page.url()).searchParams;
  check("preset 15m in the URL", u.get("from") === "now-15m" && u.get("until") === "now", page.url());
  check("preset 15m highlighted", await page.$eval('#presets button[data-r="15m"]', (b) => b.classList.contains("on")));
  if (MOCK) {
    const reqs = (await apiJSON("/mock/requests")).body.requests;
    const last = reqs.filter((r) => r.path === "/api/v1/flamegraph").pop();
    check("the API got a 15 minute range in ms", Number(last.params.until) - Number(last.params.from) === 900000, JSON.stringify(last.params));
    check("the API got the selector", last.params.query === '{service_name="' + service + '"}', last.params.query);
  }
  await page.click('#presets button[data-r="custom"]');
  check("custom range shows from/until inputs", await page.isVisible("#from") && await page.isVisible("#until"));
  const now = Date.now();
  const toLocal = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
  await page.fill("#from", toLocal(now - 2 * 3600e3));
  await page.fill("#until", toLocal(now - 3600e3));
  n = await loads();
  await page.click("#applyRange");
  await settle(n);
  const cu = new URL(page.url()).searchParams;
  check("custom range kept in the URL as ms", near(Number(cu.get("until")) - Number(cu.get("from")), 3600e3, 1000), page.url());
  await shot("06-custom-range.png");
  n = await loads();
  await page.click('#presets button[data-r="1h"]');
  await settle(n);
  n = await loads();
  await page.click("#refresh");
  await settle(n);
  check("refresh reloads", (await loads()) === n + 1);
});

await step("profile type", async () => {
  const types = await page.$$eval("#ptype option", (os) => os.map((o) => o.value));
  const samples = types.find((t) => t.includes(":samples:count:"));
  if (!samples) return;
  let n = await loads();
  await page.selectOption("#ptype", samples);
  await settle(n);
  const r = await rows();
  check("sample counts are not shown as time", r.length > 0 && !/ s$| ms$/.test(r[0][1]), r[0]);
  if (KNOWN) check("json_lex: 300 samples, 30.00%", r[0][0] === "json_lex" && r[0][1] === "300" && r[0][2] === "30.00%", r[0]);
  check("the URL keeps the profile type", new URL(page.url()).searchParams.get("profile_type") === samples);
  n = await loads();
  await page.selectOption("#ptype", "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
  await settle(n);
});

await step("error banner", async () => {
  check("no banner before", await page.isHidden("#banner"));
  const n = await loads();
  await page.fill("#query", '{service_name "checkout"}');
  await page.press("#query", "Enter");
  await settle(n);
  check("an invalid selector shows the error banner", await page.isVisible("#banner"));
  const msg = await page.textContent("#banner");
  check("the banner carries the server's message", /query: .*offset/.test(msg), msg);
  if (KNOWN) check("the message is the parser's", msg.includes("expected '=', '!=', '=~' or '!~' after label name at offset 14"), msg);
  check("the banner names the HTTP status", msg.includes("HTTP 400"), msg);
  await shot("07-error.png");
  const n2 = await loads();
  await page.fill("#query", '{service_name="' + service + '"}');
  await page.press("#query", "Enter");
  await settle(n2);
  check("a valid selector clears the banner", await page.isHidden("#banner"));
});

await step("second service", async () => {
  if (!KNOWN) return;
  const n = await loads();
  await page.selectOption("#service", "search");
  await settle(n);
  check("C++ names are drawn", (await labels()).some((l) => l.name.startsWith("std::vector")));
  check("search: score_docs 60.00% in the table", (await rows()).some((r) => r[0] === "score_docs" && r[2] === "60.00%"));
  if (!MOCK) return; // the mock reports a skipped segment for "search"
  check("warnings shown discreetly", await page.isVisible("#warn") && (await page.textContent("#warnSum")).includes("1 warning"), await page.textContent("#warnSum"));
  check("the warning is not an error banner", await page.isHidden("#banner"));
  await page.click("#warnSum");
  check("the warning lists the segment", (await page.textContent("#warnList")).includes("crc mismatch"));
  await shot("08-warnings.png");
});

await step("empty state", async () => {
  await page.goto(BASE + "/?query=" + encodeURIComponent('{service_name="no-such-service"}') + "&from=now-5m&until=now");
  await page.waitForFunction(() => window.__stoke && window.__stoke.loads > 0 && !window.__stoke.loading);
  check("empty state says no data in this range", (await page.isVisible("#flameEmpty")) && (await page.textContent("#flameEmpty")).includes("No data in this range"));
  check("empty state has no frames", (await page.$$("#flame .frame")).length === 0);
  check("empty state is not an error", await page.isHidden("#banner"));
  await shot("09-empty.png");
});

await step("loading state", async () => {
  // hold the API answers to see the loading state
  let release;
  const gate = new Promise((r) => { release = r; });
  await page.route("**/api/v1/flamegraph**", async (route) => { await gate; await route.continue(); });
  await page.goto(BASE + "/?query=" + encodeURIComponent('{service_name="' + service + '"}') + "&from=" + FROM + "&until=" + UNTIL);
  await page.waitForFunction(() => window.__stoke && window.__stoke.loading);
  check("loading state is shown", await page.isVisible("#progress") && (await page.textContent("#flameEmpty")).includes("Loading"));
  await shot("10-loading.png");
  release();
  await page.waitForFunction(() => window.__stoke.loads > 0 && !window.__stoke.loading);
  await page.unroute("**/api/v1/flamegraph**");
  check("frames after loading", (await page.$$("#flame .frame")).length > 3);
  await shot("00-overview.png");
});

check("no JavaScript errors", pageErrors.length === 0, pageErrors.join(" | "));
await ctx.close();
fs.rmSync(profileDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
