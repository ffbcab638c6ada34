// The web page against a stoke-query started with --auth-token-file: the
// page asks for the token once (window.prompt), then loads like without
// auth; a reload in the same tab reuses the token (sessionStorage) without
// asking again. Prints "PASS what" / "FAIL what: detail" like test.mjs.
// Environment: BASE_URL, TOKEN, CHROMIUM, PLAYWRIGHT_DIR.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
const require = createRequire(path.join(process.env.PLAYWRIGHT_DIR || path.join(ROOT, "build/web-test"), "package.json"));
const { chromium } = require("playwright-core");
const BASE = (process.env.BASE_URL || "").replace(/\/$/, "");
const TOKEN = process.env.TOKEN || "";

let failed = 0;
function check(what, ok, detail) {
  if (ok) console.log("PASS " + what);
  else { failed++; console.log("FAIL " + what + (detail !== undefined ? ": " + String(detail).slice(0, 300) : "")); }
}

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "stoke-web-auth-"));
const ctx = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  let dialogs = 0;
  page.on("dialog", (d) => { dialogs++; d.accept(TOKEN); });
  const settled = () => page.waitForFunction(() => window.__stoke && window.__stoke.loads > 0 && !window.__stoke.loading, null, { timeout: 15000 });
  const st = () => page.evaluate(() => ({ error: window.__stoke.error, frames: window.__stoke.frames }));

  await page.goto(BASE + "/?from=now-1h&until=now");
  await settled();
  let s = await st();
  check("auth: the page asks for the token once (" + dialogs + " prompts)", dialogs === 1);
  check("auth: no error after the token is given", !s.error, s.error);
  check("auth: frames after the token is given", (await page.$$("#flame .frame")).length > 3);

  await page.reload();
  await settled();
  s = await st();
  check("auth: a reload reuses the token without asking (" + dialogs + " prompts)", dialogs === 1);
  check("auth: frames after the reload", !s.error && (await page.$$("#flame .frame")).length > 3, s.error);
} catch (e) {
  check("auth: browser run", false, e.message);
} finally {
  await ctx.close();
  fs.rmSync(profileDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
