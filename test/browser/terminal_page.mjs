// <hut-terminal> in real headless Chromium, driven with Playwright. Started by
// terminal_page.py (HUT_BROWSER: the space's URL, a relay token for the
// browser's user, spaced's PID, the hut binary's path, a room and a text).
// Reads hut's screen from the xterm.js buffer (the element's `terminal`) and
// hut's process from /proc. Prints one line per check, then "N passed, N failed".
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { cfg, check, newPage, run, until } from "./pw.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

async function axeCheck(page, label) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document.querySelector("hut-terminal"), { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(`axe-core: no serious or critical violations in the terminal widget (${label})`, bad.length === 0,
        JSON.stringify(bad));
}

async function waitScreen(page, text, ms = 30000) {
  return until(async () => {
    const s = await page.evaluate(screenText);
    return s && s.lines.join("\n").includes(text) ? s : null;
  }, ms);
}

// The text of the xterm buffer's visible lines.
function screenText() {
  const t = document.querySelector("hut-terminal")?.terminal;
  if (!t) return null;
  const b = t.buffer.active;
  const lines = [];
  for (let y = 0; y < t.rows; y++) {
    const line = b.getLine(b.viewportY + y);
    lines.push(line ? line.translateToString(true) : "");
  }
  return { cols: t.cols, rows: t.rows, lines };
}

// The PIDs of spaced's children (every thread's), from /proc.
function childrenOf(pid) {
  const out = [];
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // the thread ended
    }
  }
  return out;
}

function exe(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return null;
  }
}

function hutChildren() {
  return childrenOf(cfg.spacedPid).filter((p) => {
    const argv = exe(p);
    return argv && argv[0] === "hut";
  });
}

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await newPage(context, "tess");
  await page.goto(`${cfg.space}/#token=${cfg.token}`);
  await page.waitForFunction(() => document.getElementById("status")?.textContent.trim() === "connected");
  const defined = await until(() => page.evaluate(() => !!customElements.get("hut-terminal") &&
    !!document.querySelector("hut-terminal button.open")));
  check("the page shows <hut-terminal> with its open button", defined);
  check("no hut runs before the terminal is opened", hutChildren().length === 0, hutChildren());

  // Opened with the keyboard: focus the button, press Enter.
  await page.focus("hut-terminal button.open");
  await page.keyboard.press("Enter");
  const screen = await until(async () => {
    const s = await page.evaluate(screenText);
    return s && s.lines.join("\n").includes("/help") ? s : null;
  }, 30000);
  check("the xterm buffer shows hut's screen", !!screen, await page.evaluate(screenText));
  const shown = screen ? screen.lines.join("\n") : "";
  check("the terminal opened at least 80x24 in a desktop window", screen && screen.cols >= 80 && screen.rows >= 24,
        screen && { cols: screen.cols, rows: screen.rows });
  await axeCheck(page, "open, light");
  check("hut is signed in as the browser's user", shown.includes("Tess Terminal") || shown.includes("tess"), shown);

  // The process: a child of spaced, exec'd directly with a fixed argv, the
  // token in its environment only.
  const pids = hutChildren();
  check("one hut process runs, a child of spaced", pids.length === 1, pids);
  const pid = pids[0];
  if (pid) {
    const argv = exe(pid);
    check("hut runs with a fixed argv and no token on its command line", argv.length === 1 && argv[0] === "hut" &&
          !argv.join(" ").includes(cfg.token.slice(0, 20)), argv);
    const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
    const names = env.map((e) => e.split("=")[0]).sort();
    check("the token and the space's URL are in hut's environment",
          names.includes("HUTOPIA_TOKEN") && env.includes(`HUTOPIA_SPACE=${cfg.space}`), names);
    check("hut's environment is minimal", !names.includes("HUTOPIA_ADMIN_TOKEN") && names.length <= 10, names);
    const exePath = (() => { try { return readFileSync(`/proc/${pid}/stat`, "utf8"); } catch { return ""; } })();
    check("hut is a process of its own session (setsid)", exePath.split(") ")[1]?.split(" ")[3] === String(pid),
          exePath);
  }

  // One terminal per session.
  const second = await page.evaluate(() => globalThis.hutopia.widget("terminal", { op: "open", cols: 80, rows: 24 })
    .then(() => "opened", (e) => e.code || e.message));
  check("a second terminal for the same session is refused (conflict)", second === "conflict", second);
  check("still one hut process", hutChildren().length === 1, hutChildren());

  // Bad requests get a clear error, and the terminal stays.
  const bad = await page.evaluate(() => globalThis.hutopia.widget("terminal", { op: "resize", cols: 9999, rows: 1 })
    .then(() => "accepted", (e) => `${e.code}: ${e.message}`));
  check("a bad resize is refused with bad_request", bad.startsWith("bad_request: cols must be"), bad);

  // Typing: join the room, then a message, which another user's hut tail gets.
  await page.click("hut-terminal .screen");
  await page.keyboard.type(`/join ${cfg.room}`, { delay: 15 });
  await page.keyboard.press("Enter");
  const joined = await until(async () => {
    const s = await page.evaluate(screenText);
    return s && s.lines.join("\n").includes(cfg.room) ? s : null;
  }, 20000);
  check("/join typed in the terminal opens the room in hut", !!joined, await page.evaluate(screenText));
  await page.keyboard.type(cfg.text, { delay: 15 });
  await page.keyboard.press("Enter");
  const posted = await until(async () => {
    const s = await page.evaluate(screenText);
    return s && s.lines.some((l) => l.includes(cfg.text)) ? s : null;
  }, 20000);
  check("the message shows in hut's timeline", !!posted, await page.evaluate(screenText));

  // A resize passes through to hut (TIOCSWINSZ and SIGWINCH): it redraws wider.
  await page.evaluate(() => document.querySelector("hut-terminal").terminal.resize(110, 30));
  const wide = await until(async () => {
    const s = await page.evaluate(screenText);
    return s && s.cols === 110 && s.lines.some((l) => l.trimEnd().length > 85) ? s : null;
  }, 20000);
  check("after a resize to 110x30 hut draws past column 80", !!wide, await page.evaluate(screenText));

  // A phone-width page still lays the widget out.
  const box = await page.evaluate(() => {
    const r = document.querySelector("hut-terminal section").getBoundingClientRect();
    return { label: document.querySelector("hut-terminal section").getAttribute("aria-label"), w: r.width };
  });
  check("the terminal is a labelled region", box.label === "Terminal", box);

  // Closing the page ends the hut process: reaped, not a zombie.
  await page.close();
  const gone = pid ? await until(() => !existsSync(`/proc/${pid}`), 20000) : false;
  let state = "";
  if (!gone && pid) {
    try {
      state = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      state = "gone";
    }
  }
  check("closing the page ends hut (no process, no zombie)", gone, state);
  check("no hut is left under spaced", hutChildren().length === 0, hutChildren());
  await context.close();

  // A phone, dark: the open terminal fills the screen in dark colours; its
  // Close button ends hut.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const p2 = await newPage(phone, "tess-phone");
  await p2.goto(`${cfg.space}/#token=${cfg.token2}`);
  await p2.waitForFunction(() => document.getElementById("status")?.textContent.trim() === "connected");
  await p2.locator("hut-terminal button.open").click();
  const small = await waitScreen(p2, "Test space");
  check("on a phone the terminal opens and shows hut", !!small, await p2.evaluate(screenText));
  const look = await p2.evaluate(() => {
    const el = document.querySelector("hut-terminal");
    const r = el.querySelector(".panel").getBoundingClientRect();
    return { w: r.width, h: r.height, bg: el.terminal?.options.theme.background };
  });
  check("on a phone the open terminal fills the width, in dark colours", look.w >= 380 && look.bg === "#1e1e1e", look);
  await axeCheck(p2, "open, phone, dark");
  const pids2 = hutChildren();
  check("the phone's terminal is one more hut", pids2.length === 1, pids2);
  await p2.locator("hut-terminal button.close").click();
  const gone2 = pids2[0] ? await until(() => !existsSync(`/proc/${pids2[0]}`), 20000) : false;
  check("the Close button ends hut (no process, no zombie)", gone2, pids2);
  const back = await p2.evaluate(() => document.activeElement?.className);
  check("after closing, the focus is back on the open button", back === "open", back);
  await phone.close();
});
