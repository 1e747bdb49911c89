// What the Playwright browser tests share: the configuration from
// HUT_BROWSER (see pwrun.py), checks with their counts, polling, and a
// headless Debian Chromium.
import { chromium } from "playwright-core";

export const cfg = JSON.parse(process.env.HUT_BROWSER || "{}");

let passed = 0;
let failed = 0;
export function check(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`}`);
  return !!ok;
}
export function counts() {
  return { passed, failed };
}

// Waits for fn() to be truthy (polling, bounded); resolves with its last value.
export async function until(fn, timeoutMs = 30000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let v;
  for (;;) {
    try {
      v = await fn();
    } catch (e) {
      v = undefined;  // the page may be between documents
    }
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function launch() {
  return chromium.launch({ executablePath: cfg.chromium, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
}

// A page that logs its errors and console errors, for failures to be read.
export async function newPage(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on("pageerror", (e) => console.log(`[${label} page error] ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") console.log(`[${label} console] ${m.text()}`); });
  return page;
}

// What the space page shows (docs/sdk.md, the page's element ids).
export function pageState() {
  const t = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
  const shown = (id) => { const e = document.getElementById(id); return !!e && !e.hidden && e.offsetParent !== null; };
  return { status: t("status"), user: t("user-name"), space: t("space-name"), whoShown: shown("who"),
           signedOutShown: shown("signed-out"), hash: location.hash, href: location.href,
           login: (document.querySelector('#signed-out a[href="/login"]') || {}).href || null };
}

// Runs main(browser) and prints the counts; a throw counts as a failure.
export async function run(main) {
  let browser;
  try {
    browser = await launch();
    await main(browser);
  } catch (e) {
    check("the browser script ran to its end", false, e && e.stack ? e.stack : String(e));
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(0);
}
