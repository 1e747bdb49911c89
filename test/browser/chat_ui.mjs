// The chat in real headless Chromium, driven with Playwright: two users in
// two browser contexts, through a real relayd into a real spaced. Started by
// chat_ui.py, which runs the daemons and hands this script its configuration
// as JSON in HUT_CHAT_UI; a line "CTL <command>" on stdout asks it to act
// (stop or start spaced), and it answers with one line on stdin.
// Prints one line per check and ends with "N passed, N failed".
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const cfg = JSON.parse(process.env.HUT_CHAT_UI || "{}");
const AXE = require.resolve("axe-core/axe.min.js");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const WINDOW = 150;  // the widget's DOM window (plugins/chat/web/timeline.js)

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok || !detail ? "" : `: ${detail}`}`);
  return !!ok;
}

// The control channel to chat_ui.py.
const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
const queued = [];
lines.on("line", (l) => (waiting.length ? waiting.shift()(l) : queued.push(l)));
function control(cmd) {
  console.log(`CTL ${cmd}`);
  return new Promise((resolve) => (queued.length ? resolve(queued.shift()) : waiting.push(resolve)));
}

// Waits for fn() to be truthy (polling, bounded); resolves with its last value.
async function until(fn, timeoutMs = 20000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let v;
  for (;;) {
    try {
      v = await fn();
    } catch (e) {
      v = undefined;
    }
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function admin(method, p, body) {
  const res = await fetch(cfg.admin + p, {
    method, headers: { Authorization: `Bearer ${cfg.adminToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, data: res.status === 204 ? null : await res.json().catch(() => null) };
}

const chatOf = (page) => page.locator("hut-chat");

async function signIn(context, user) {
  const page = await context.newPage();
  opened.push([user.name, page]);
  page.setDefaultTimeout(20000);
  page.on("pageerror", (e) => console.log(`[${user.name} page error] ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) console.log(`[${user.name}] ${r.status()} ${r.url()}`); });
  page.on("console", (m) => { if (m.type() === "error") console.log(`[${user.name} console] ${m.text()}`); });
  await page.goto(`${cfg.space}/login`);
  await page.locator("#u").fill(user.username);
  await page.locator("#p").fill(user.password);
  await page.locator("button[value=login]").click();
  await page.waitForFunction(() => document.getElementById("status")?.dataset.state === "connected");
  await chatOf(page).locator(".chat").waitFor();
  return page;
}

async function openRoom(page, room) {
  const chat = chatOf(page);
  const toggle = chat.locator("#show-rooms");
  if (await toggle.isVisible()) await toggle.click();
  await chat.locator(`.room-item[data-room="${room}"]`).click();
  await until(async () => (await chat.locator("#room-title").textContent()) === `#${room}`);
}

async function send(page, text) {
  const box = chatOf(page).locator("textarea");
  await box.click();
  await box.fill(text);
  await box.press("Enter");
}

const messageRow = (page, text) => chatOf(page).locator("ol.rows:not(.outbox) li.msg", { hasText: text });
const domSeqs = (page) => page.evaluate(() =>
  [...document.querySelector("hut-chat").shadowRoot.querySelectorAll("ol.rows:not(.outbox) > li[data-seq]")]
    .map((li) => Number(li.dataset.seq)));

async function axeCheck(page, label) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(`axe-core: no serious or critical violations on ${label}`, bad.length === 0, JSON.stringify(bad));
}

async function shot(page, name) {
  if (!cfg.shots) return;
  fs.mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: path.join(cfg.shots, `${name}.png`) });
}

const opened = [];  // every page, for screenshots when the run fails

async function run(browser) {
  const [alice, bob] = cfg.users;
  const ctxA = await browser.newContext({ viewport: DESKTOP, colorScheme: "light" });
  const ctxB = await browser.newContext({ viewport: DESKTOP, colorScheme: "light" });
  await ctxB.grantPermissions(["notifications"], { origin: cfg.space });
  // Every system notification the page shows is recorded.
  await ctxB.addInitScript(() => {
    window.__notes = [];
    const Real = window.Notification;
    if (!Real) return;
    class Recorded extends Real {
      constructor(title, options) {
        window.__notes.push({ title, body: options && options.body });
        super(title, options);
      }
    }
    Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
    Recorded.requestPermission = (...a) => Real.requestPermission(...a);
    window.Notification = Recorded;
  });

  // --- signing in and a room ---
  const pageA = await signIn(ctxA, alice);
  const chatA = chatOf(pageA);
  check("Alice signs in through the relay and sees the chat", await chatA.locator("#room-title").isVisible());
  await chatA.getByRole("button", { name: "New room" }).click();
  await chatA.locator("#new-name").fill(cfg.room);
  await chatA.locator("#new-topic").fill("Tea and biscuits");
  await chatA.getByRole("button", { name: "Create", exact: true }).click();
  const created = await until(async () => (await chatA.locator("#room-title").textContent()) === `#${cfg.room}`);
  check("Alice creates a room and it opens", created);
  check("the room's topic is shown", (await chatA.locator(".topic").textContent()) === "Tea and biscuits");

  const pageB = await signIn(ctxB, bob);
  const chatB = chatOf(pageB);
  const listed = await until(() => chatB.locator(`#open .room-item[data-room="${cfg.room}"]`).count());
  check("Bob sees the new room among the public rooms", listed === 1);
  await openRoom(pageB, cfg.room);
  await chatB.locator(".join-bar").getByRole("button", { name: "Join" }).click();
  const joined = await until(() => chatB.locator(`#mine .room-item[data-room="${cfg.room}"]`).count());
  check("Bob joins it: the room moves to his rooms", joined === 1);
  const bobOnline = await until(() => chatA.locator(`.member.online[data-user="${bob.id}"]`).count());
  check("Alice sees Bob in the member list, online", bobOnline === 1);

  // --- messages both ways, typing ---
  await chatA.locator("textarea").click();
  await pageA.keyboard.type("Hello Bob", { delay: 20 });
  const typingB = await until(async () => /Alice is typing/.test(await chatB.locator(".typing").textContent()));
  check("Bob sees that Alice is typing", typingB);
  await pageA.keyboard.press("Shift+Enter");
  await pageA.keyboard.type("second line <b>not bold</b> https://example.org/x");
  await pageA.keyboard.press("Enter");
  const gotB = await until(() => messageRow(pageB, "Hello Bob").count());
  check("Bob sees Alice's message live", gotB === 1);
  const shape = await messageRow(pageB, "Hello Bob").locator(".text").evaluate((el) => ({
    text: el.textContent, bold: el.querySelectorAll("b").length, link: el.querySelector("a")?.href }));
  check("Shift+Enter made a new line, markup stayed text, the URL is a link",
    shape.text.includes("Hello Bob\nsecond line <b>not bold</b>") && shape.bold === 0 &&
    shape.link === "https://example.org/x", JSON.stringify(shape));
  check("Alice's composer is empty after Enter", (await chatA.locator("textarea").inputValue()) === "");

  await chatB.locator("textarea").click();
  await pageB.keyboard.type("Hi Alice", { delay: 20 });
  const typingA = await until(async () => /Bob is typing/.test(await chatA.locator(".typing").textContent()));
  check("Alice sees that Bob is typing", typingA);
  await pageB.keyboard.press("Enter");
  check("Alice sees Bob's reply", (await until(() => messageRow(pageA, "Hi Alice").count())) === 1);
  await send(pageB, "and a second one");
  await until(() => messageRow(pageA, "and a second one").count());
  const grouped = await messageRow(pageA, "and a second one").evaluate((li) => li.classList.contains("cont"));
  check("consecutive messages of one sender are grouped", grouped);
  check("a day separator says Today", (await chatA.locator(".day").first().textContent()) === "Today");

  // --- edit with Up, delete with confirmation ---
  await chatA.locator("textarea").click();
  await pageA.keyboard.press("ArrowUp");
  const editing = await until(() => chatA.locator(".edit-bar").isVisible());
  check("Up in an empty composer edits my last message", editing &&
    (await chatA.locator("textarea").inputValue()).startsWith("Hello Bob"));
  await chatA.locator("textarea").fill("Hello Bob, edited");
  await pageA.keyboard.press("Enter");
  const edited = await until(async () => (await messageRow(pageB, "Hello Bob, edited").count()) === 1 &&
    (await messageRow(pageB, "Hello Bob, edited").locator(".edited").count()) === 1);
  check("Bob sees the edit, marked edited", edited);
  await send(pageA, "a message to delete");
  await until(() => messageRow(pageB, "a message to delete").count());
  const row = messageRow(pageA, "a message to delete");
  await row.hover();
  await row.getByRole("button", { name: /^Delete/ }).click();
  const dialog = chatA.locator("dialog.confirm");
  check("deleting asks for confirmation first", await dialog.isVisible());
  await dialog.getByRole("button", { name: "Delete" }).click();
  const gone = await until(async () => (await messageRow(pageB, "a message to delete").count()) === 0 &&
    (await messageRow(pageA, "a message to delete").count()) === 0);
  check("after confirming, the message is gone in both browsers", gone);

  // --- a file: an image shown inline with its size known before it loads ---
  if (cfg.files) {
    await chatA.locator('input[type="file"]').setInputFiles(cfg.image);
    const img = messageRow(pageB, path.basename(cfg.image)).locator(".files img");
    const shown = await until(async () => (await img.count()) === 1 &&
      (await img.evaluate((i) => i.complete && i.naturalWidth === 64 && i.getAttribute("width") === "64")));
    check("Alice uploads an image and Bob sees it inline, 64 px wide", shown);
  } else {
    console.log("skip file upload: the chat plugin serves no /api/chat/files yet");
  }

  // --- moderation: Alice (master of the room) mutes Bob ---
  await chatA.locator(`.member[data-user="${bob.id}"]`).click();
  const card = chatA.locator("dialog.profile");
  check("the profile card opens from the member list", await card.isVisible());
  check("a master sees the moderation actions", await card.getByRole("button", { name: "Mute", exact: true }).isVisible());
  await card.locator("#mute-for").selectOption({ label: "5 minutes" });
  await card.getByRole("button", { name: "Mute", exact: true }).click();
  const muted = await until(async () => /You are muted in this room until/.test(await chatB.locator(".note").textContent()) &&
    (await chatB.locator("textarea").isDisabled()));
  check("Bob's composer says he is muted, and until when", muted, await chatB.locator(".note").textContent());
  const bobCard = chatB.locator(`.member[data-user="${alice.id}"]`);
  await bobCard.click();
  const noMod = (await chatB.locator("dialog.profile").getByRole("button", { name: "Mute", exact: true }).count()) === 0;
  check("a member sees no moderation actions", noMod);
  await chatB.locator("dialog.profile").getByRole("button", { name: "Close" }).click();
  await chatA.locator(`.member[data-user="${bob.id}"]`).click();
  await card.getByRole("button", { name: "Unmute" }).click();
  const unmuted = await until(async () => !(await chatB.locator("textarea").isDisabled()));
  check("after the unmute Bob can write again", unmuted);

  // --- a notification and the title badge while Bob's tab is hidden ---
  await pageB.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const unreadBefore = Number((/^\((\d+)\)/.exec(await pageB.title()) || [0, 0])[1]);
  await send(pageA, "@Bob are you there?");
  const note = await until(() => pageB.evaluate(() => window.__notes.find((n) => /mentioned you/.test(n.title))));
  check("a mention shows a browser notification while the tab is hidden", note && note.body === "@Bob are you there?",
    JSON.stringify(note));
  const badge = await until(async () => (await pageB.title()).startsWith(`(${unreadBefore + 1}) `));
  check("the title shows the unread count", badge, await pageB.title());
  await pageB.evaluate(() => {
    delete document.visibilityState;
    delete document.hidden;
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const read = await until(async () => (await pageB.title()).startsWith(unreadBefore ? `(${unreadBefore}) ` : "Test"));
  check("back on the tab with the end in view, the room is read and the count goes down", read, await pageB.title());

  // --- screenshots and the phone width ---
  await shot(pageA, "desktop");
  await pageA.emulateMedia({ colorScheme: "dark" });
  await shot(pageA, "desktop-dark");
  await axeCheck(pageA, "the space page (dark)");
  await pageA.emulateMedia({ colorScheme: "light" });
  await pageA.setViewportSize(PHONE);
  await pageA.waitForTimeout(200);
  const fits = await pageA.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  check("at phone width nothing overflows sideways", fits);
  await shot(pageA, "phone");
  await chatA.locator("#show-rooms").click();
  check("at phone width the room list opens over the room", await chatA.locator("#rooms-panel").isVisible());
  await shot(pageA, "phone-rooms");
  await pageA.keyboard.press("Escape");
  check("Escape closes it", !(await chatA.locator("#rooms-panel").isVisible()));
  await pageA.setViewportSize(DESKTOP);
  await axeCheck(pageA, "the space page");

  // --- scrolling back through 1,000 messages ---
  await openRoom(pageA, cfg.seedRoom);
  await until(() => messageRow(pageA, `seed ${String(cfg.seedCount).padStart(4, "0")}`).count());
  const seen = new Set();
  let maxRows = 0;
  const box = await chatA.locator(".scroller").boundingBox();
  await pageA.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const startScroll = Date.now();
  for (let i = 0; i < 1500 && Date.now() - startScroll < 90000; i++) {
    const seqs = await domSeqs(pageA);
    seqs.forEach((s) => seen.add(s));
    maxRows = Math.max(maxRows, seqs.length);
    const top = await chatA.locator(".scroller").evaluate((s) => s.scrollTop);
    if (seqs[0] === 1 && top === 0) break;
    await pageA.mouse.wheel(0, -1500);
    await pageA.waitForTimeout(25);
  }
  check("scrolling up reaches the first message", seen.has(1) && (await domSeqs(pageA))[0] === 1);
  check("the start of the room is marked", await chatA.locator(".start-note").isVisible());
  for (let i = 0; i < 1500 && Date.now() - startScroll < 150000; i++) {
    const seqs = await domSeqs(pageA);
    seqs.forEach((s) => seen.add(s));
    maxRows = Math.max(maxRows, seqs.length);
    if (seqs[seqs.length - 1] === cfg.seedCount && await chatA.locator(".scroller").evaluate((s) =>
      s.scrollHeight - s.scrollTop - s.clientHeight < 2)) break;
    await pageA.mouse.wheel(0, 1500);
    await pageA.waitForTimeout(25);
  }
  check(`scrolling up and down again shows all ${cfg.seedCount} messages`, seen.size === cfg.seedCount,
    `saw ${seen.size}`);
  check(`the DOM never held more than ${WINDOW} messages`, maxRows <= WINDOW, `max ${maxRows}`);
  const order = await domSeqs(pageA);
  check("rows are in order without duplicates", order.every((s, i) => i === 0 || s === order[i - 1] + 1),
    JSON.stringify(order));
  await openRoom(pageA, cfg.room);

  // --- reconnect after spaced restarts ---
  // Needs the resume credential of contract section 2 in the welcome.
  const canResume = await pageA.evaluate(() => !!sessionStorage.getItem("hutopia.resume"));
  if (!canResume) {
    console.log("skip reconnect: this space's welcome carries no resume credential");
  } else {
    await control("stop");
    const offline = await until(async () => /Offline/.test(await chatA.locator(".conn").textContent()) &&
      (await chatA.locator(".conn").isVisible()));
    check("with the space down, the chat says it is offline", offline);
    await send(pageA, "written while offline");
    check("a post written offline is shown as pending",
      (await chatA.locator("ol.outbox li.pending", { hasText: "written while offline" }).count()) === 1);
    const started = await control("start");
    cfg.admin = started.trim() || cfg.admin;
    for (let i = 1; i <= 3; i++) await admin("POST", `/api/v1/rooms/${cfg.room}/messages`, { text: `while away ${i}` });
    const reconnected = await until(() => pageA.evaluate(() => document.getElementById("status").dataset.state === "connected") &&
      pageB.evaluate(() => document.getElementById("status").dataset.state === "connected"), 60000);
    check("both pages reconnect after the restart (resume)", reconnected);
    const caughtUp = await until(async () => {
      for (const p of [pageA, pageB]) {
        if ((await messageRow(p, "while away 3").count()) !== 1) return false;
        if ((await messageRow(p, "written while offline").count()) !== 1) return false;
      }
      return (await chatA.locator("ol.outbox li").count()) === 0;
    }, 40000);
    check("both see the messages posted during the restart and the offline post, once each", caughtUp);
    const hist = await admin("GET", `/api/v1/rooms/${cfg.room}/messages?limit=50`);
    const want = (hist.data && hist.data.messages ? hist.data.messages : []).map((m) => m.seq);
    for (const [who, p] of [["Alice", pageA], ["Bob", pageB]]) {
      const have = await domSeqs(p);
      check(`${who}'s timeline equals the room's log: nothing lost, nothing doubled`,
        JSON.stringify(have) === JSON.stringify(want), `dom ${JSON.stringify(have)} log ${JSON.stringify(want)}`);
    }
  }

  // --- keyboard only ---
  await pageB.bringToFront();
  await pageB.locator("body").click({ position: { x: 2, y: 2 } });
  await pageB.evaluate(() => document.activeElement && document.activeElement.blur());
  let reached = false;
  for (let i = 0; i < 80 && !reached; i++) {
    await pageB.keyboard.press("Tab");
    reached = await pageB.evaluate(() => {
      let a = document.activeElement;
      while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
      return a && a.tagName === "TEXTAREA";
    });
  }
  check("the composer is reachable with Tab alone", reached);
  if (reached) {
    await pageB.keyboard.type("typed with the keyboard only");
    await pageB.keyboard.press("Enter");
    check("Enter sends it", (await until(() => messageRow(pageA, "typed with the keyboard only").count())) === 1);
  }

  // --- the relay's profile page, in Alice's browser (her relay session) ---
  const prof = await ctxA.newPage();
  await prof.goto(`${cfg.relay}/profile`);
  await prof.locator("#profile").waitFor();
  check("the relay's profile page shows the signed-in user", (await prof.locator("#shown-name").textContent()) === alice.name);
  await prof.locator("#name").fill("Alice Liddell");
  await prof.getByRole("button", { name: "Save name" }).click();
  const renamed = await until(async () => (await prof.locator("#name-ok").textContent()) === "Saved." &&
    (await prof.locator("#shown-name").textContent()) === "Alice Liddell");
  check("the display name is changed there", renamed, await prof.locator("#name-error").textContent());
  await prof.locator("#avatar-file").setInputFiles(cfg.image);
  const preview = await until(() => prof.locator("#preview").evaluate((i) => i.complete && i.naturalWidth === 64));
  check("a chosen picture is previewed before the upload", preview);
  await prof.getByRole("button", { name: "Upload picture" }).click();
  const uploaded = await until(async () => /saved/.test(await prof.locator("#avatar-ok").textContent()) &&
    (await prof.locator("#avatar img").evaluate((i) => i.complete && i.naturalWidth === 64)));
  check("the picture is uploaded and shown as the avatar", uploaded, await prof.locator("#avatar-error").textContent());
  await shot(prof, "relay-profile");
  const dir = await ctxA.newPage();
  await dir.goto(`${cfg.relay}/spaces`);
  const entry = await until(() => dir.locator(".spaces li", { hasText: cfg.spaceName }).count());
  check("the relay's space directory lists the space with a way in", entry === 1 &&
    (await dir.locator(".spaces li a.enter").first().getAttribute("href")) === `${cfg.space}/login`);

  // --- presence: Bob leaves the page ---
  await pageB.close();
  const offlineBob = await until(async () => (await chatA.locator(`.member[data-user="${bob.id}"]`).count()) === 1 &&
    (await chatA.locator(`.member.online[data-user="${bob.id}"]`).count()) === 0);
  check("when Bob closes his page Alice sees him offline", offlineBob);

  // --- accessibility of the relay's pages (scripts injected past their CSP) ---
  const ctxAxe = await browser.newContext({ viewport: DESKTOP, bypassCSP: true });
  const p = await ctxAxe.newPage();
  for (const [label, url] of [["the relay's login page", `${cfg.relay}/login?space=${encodeURIComponent(cfg.spaceId)}&return=${encodeURIComponent(cfg.space + "/")}`],
    ["the relay's profile page (signed out)", `${cfg.relay}/profile`], ["the relay's space directory", `${cfg.relay}/spaces`]]) {
    await p.goto(url);
    await p.waitForLoadState("load");
    await p.waitForTimeout(300);
    await axeCheck(p, label);
  }
  await p.goto(`${cfg.space}/`);
  await axeCheck(p, "the signed-out space page");
  await ctxAxe.close();
  await ctxA.close();
  await ctxB.close();
}

const browser = await chromium.launch({
  executablePath: cfg.chromium || "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  await run(browser);
} catch (e) {
  check("the run finished", false, `${e && e.stack ? e.stack : e}`);
  for (const [name, page] of opened) {
    if (!page.isClosed()) await shot(page, `failed-${name}`).catch(() => {});
  }
} finally {
  await browser.close();
  lines.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
