// Browser test of the page's heatmap view (query/web/index.html, #heatPanel)
// against a real stoke-query holding generated data (test_individual.sh).
// Opens the page on BASE_URL for [FROM, UNTIL) of service svc-00, checks the
// heatmap's cells against /api/v1/heatmap, clicks the fullest cell (its
// merged flame graph must total its profiles' values, listed independently
// by /api/v1/profiles) and then its exemplar (the flame graph must total the
// exemplar's value). Prints "PASS what" / "FAIL what: detail"; screenshots
// go to SHOTS.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || path.join(ROOT, "build/web-test"), "package.json"));
const { chromium } = require("playwright-core");

const BASE = (process.env.BASE_URL || "").replace(/\/$/, "");
const FROM = +process.env.FROM, UNTIL = +process.env.UNTIL;
const SHOTS = process.env.SHOTS || path.join(ROOT, "build/test-output/test_individual");
const QUERY = '{service_name="svc-00"}';
fs.mkdirSync(SHOTS, { recursive: true });

let failed = 0;
function check(what, ok, detail) {
  if (ok) console.log("PASS " + what);
  else { failed++; console.log("FAIL " + what + (detail !== undefined ? ": " + String(detail).slice(0, 300) : "")); }
  return ok;
}
async function api(p, params) {
  const r = await fetch(BASE + p + "?" + new URLSearchParams(params));
  return r.json();
}

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "stoke-heat-chromium-"));
const ctx = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 1000 },
});
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const url = BASE + "/?" + new URLSearchParams({ query: QUERY, from: String(FROM), until: String(UNTIL) });
  await page.goto(url);
  await page.waitForFunction(() => window.__stokeHeat && window.__stokeHeat.loads > 0, null, { timeout: 20000 });
  const hs = await page.evaluate(() => ({ hm: window.__stokeHeat.hm, error: window.__stokeHeat.error,
    rects: document.querySelectorAll("#heat rect.cell").length }));
  check("the heatmap loads", hs.hm && !hs.error, hs.error);
  const cells = hs.hm ? hs.hm.series.flatMap((s) => s.cells) : [];
  const list = await api("/api/v1/profiles", { query: QUERY, from: FROM, until: UNTIL, limit: 10000 });
  check("the heatmap draws one cell per non-empty (slot, bucket)", cells.length > 0 && hs.rects === cells.length, hs.rects + " vs " + cells.length);
  check("its counts sum to the profiles listed", cells.reduce((a, c) => a + c.count, 0) === list.count, list.count);
  await page.locator("#heatPanel").screenshot({ path: path.join(SHOTS, "heatmap.png") });

  // the fullest cell
  let k = 0;
  cells.forEach((c, i) => { if (c.count > cells[k].count) k = i; });
  const c = cells[k], hm = hs.hm;
  await page.click('#heat rect.cell[data-i="' + k + '"]');
  await page.waitForFunction(() => window.__stokeHeat.details > 0, null, { timeout: 20000 });
  const d1 = await page.evaluate(() => window.__stokeHeat.detail);
  const hi = c.b === 19 ? hm.y_min[20] + 1 : hm.y_min[c.b + 1];
  const inCell = list.profiles.filter((p) => p.timestamp >= c.t && p.timestamp < c.t + hm.step &&
    p.value >= hm.y_min[c.b] && p.value < hi);
  const want = inCell.reduce((a, p) => a + p.value, 0);
  check("clicking a cell merges its " + c.count + " profiles", d1 && d1.kind === "cell" && d1.count === c.count && inCell.length === c.count, JSON.stringify(d1));
  check("the cell's flame graph totals its profiles' values (" + want + ")", d1 && d1.total === want, d1 && d1.total);
  const frames = await page.evaluate(() => document.querySelectorAll("#heatFlame div").length);
  check("the cell's flame graph is drawn (" + frames + " frames)", frames > 1);
  await page.screenshot({ path: path.join(SHOTS, "heatmap-cell.png"), fullPage: true });

  // its exemplar
  await page.click("#heatList button.ex");
  await page.waitForFunction(() => window.__stokeHeat.details > 1, null, { timeout: 20000 });
  const d2 = await page.evaluate(() => window.__stokeHeat.detail);
  check("clicking the exemplar shows that one profile", d2 && d2.kind === "profile" && d2.id === c.exemplar.id, JSON.stringify(d2));
  check("its flame graph totals the exemplar's value (" + c.exemplar.value + ")", d2 && d2.total === c.exemplar.value, d2 && d2.total);
  await page.screenshot({ path: path.join(SHOTS, "heatmap-exemplar.png"), fullPage: true });
  check("no page errors", errors.length === 0, errors.join("; "));
} catch (e) {
  check("browser run", false, e.stack || e.message);
} finally {
  await ctx.close();
  fs.rmSync(profileDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
