// The space page in real headless Chromium, driven with Playwright. Started
// by space_page.py, which runs spaced and hands over (HUT_BROWSER) the space's
// URL, tokens it minted, the widget tags of the loaded plugins and the
// screenshot path. Prints one line per check, then "N passed, N failed".
import { cfg, check, newPage, pageState, run, until } from "./pw.mjs";

function widgetState(tag) {
  const el = document.querySelector(tag);
  if (!el) return { present: false };
  const r = el.getBoundingClientRect();
  const root = el.shadowRoot;
  const text = ((root ? root.textContent : "") + el.textContent).trim();
  return { present: true, defined: !!customElements.get(tag), width: r.width, height: r.height,
           children: (root ? root.childNodes.length : 0) + el.childNodes.length, text: text.slice(0, 200),
           hasClient: !!(el.hutopia || globalThis.hutopia) };
}

function counterValue() {
  const e = document.querySelector("hut-counter");
  const o = e && e.shadowRoot && e.shadowRoot.querySelector("output");
  const v = o ? Number(o.textContent) : NaN;
  return Number.isFinite(v) ? v : null;
}

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });

  // Signed in: a fresh app token in the fragment.
  const page = await newPage(context, "pat");
  await page.goto(`${cfg.space}/#token=${cfg.tokens.pat}`);
  await page.waitForFunction(() => document.getElementById("status")?.textContent.trim() === "connected");
  let state = await page.evaluate(pageState);
  check("status says connected", state.status === "connected", state);
  check("the user's name is shown", state.user === "Pat Example" && state.whoShown, state);
  check("the space's name is shown", state.space === cfg.spaceName, state);
  check("the token left the address bar", !state.href.includes("token"), state);
  check("no sign-in prompt", !state.signedOutShown, state);

  // The SDK's listRooms follows the pages of `rooms` (more, after).
  const paged = await page.evaluate(async () => {
    const c = globalThis.hutopia;
    for (let i = 0; i < 5; i++) await c.createRoom(`paged-${i}`, { topic: `room ${i}` });
    const all = (await c.listRooms({ limit: 2 })).map((r) => r.room).filter((r) => r.startsWith("paged-"));
    const first = (await c.listRooms({ limit: 2, maxPages: 1 })).length;
    return { all, first };
  });
  check("listRooms follows the pages of rooms", paged.all.join() === "paged-0,paged-1,paged-2,paged-3,paged-4" &&
        paged.first === 2, paged);

  check("a plugin declares a widget", cfg.tags.length > 0, cfg.plugins);
  for (const tag of cfg.tags) {
    const ready = (w) => w.present && w.defined && w.height > 0 && (w.children > 0 || w.text);
    const w = (await until(async () => { const s = await page.evaluate(widgetState, tag); return ready(s) ? s : null; }))
      || (await page.evaluate(widgetState, tag));
    check(`widget <${tag}> is in the page and rendered`, ready(w), w);
    check(`widget <${tag}> reaches the client`, w.hasClient, w);
  }

  if (cfg.tags.includes("hut-counter")) {
    // The counter widget: a click on one page counts up through the plugin,
    // and a second user's page follows the broadcast widget event.
    const other = await newPage(context, "sam");
    await other.goto(`${cfg.space}/#token=${cfg.tokens.sam}`);
    const before = await until(async () => { const v = await page.evaluate(counterValue); return v === null ? null : [v]; });
    await until(async () => (await other.evaluate(counterValue)) !== null);
    if (before) {
      await page.locator("hut-counter button").click();
      const want = before[0] + 1;
      const mine = await until(async () => (await page.evaluate(counterValue)) === want, 10000);
      const theirs = await until(async () => (await other.evaluate(counterValue)) === want, 10000);
      check("a click on <hut-counter> counts up", mine, `before ${before[0]}`);
      check("another user's <hut-counter> follows", theirs,
            `before ${before[0]}, now ${await other.evaluate(counterValue)}`);
    } else {
      check("<hut-counter> shows a value", false, "no value shown");
    }
    await other.close();
  }

  // The SDK's request helper from the page, through the real bus.
  const echoed = await page.evaluate(() => hutopia.widget("echo", { from: "page", n: 3 })
    .then((d) => JSON.stringify(d), (e) => "error " + e.code));
  check("hutopia.widget() round trip through echo", echoed === JSON.stringify({ from: "page", n: 3 }), echoed);
  const err = await page.evaluate(() => hutopia.widget("no-such-plugin", 1)
    .then(() => "resolved", (e) => e.code + "|" + (e instanceof Error)));
  check("an error answer rejects with its code", err === "not_found|true", err);

  // A dropped connection comes back as the same user with the resume
  // credential of the last welcome: getToken is not asked (tokens are single
  // use; the credential is what a reconnect presents). Bad frames past the
  // budget make the space close the socket (1008).
  const r = await page.evaluate(async ([t1, more]) => {
    const { Client } = await import("/sdk/hutopia.js");
    const asked = [];
    const c = new Client({ token: t1, getToken: async () => { asked.push(1); return more.shift() || null; } });
    await c.open();
    const s1 = c.session;
    const back = new Promise((resolve) => c.on("welcome", () => resolve(c.session)));
    // One at a time, each after the answer to the last, so that no frame is in flight when the space closes.
    let closed = false;
    c.on("close", () => { closed = true; });
    for (let i = 0; i < 40 && !closed; i++) {
      const answered = new Promise((resolve) => {
        const offError = c.on("error", () => { offError(); offClose(); resolve(); });
        const offClose = c.on("close", () => { offError(); offClose(); resolve(); });
        setTimeout(resolve, 5000);
      });
      c.send("no_such_op");
      await answered;
    }
    const s2 = await Promise.race([back, new Promise((res) => setTimeout(() => res(null), 15000))]);
    const code = c.closeCode;
    const pong = s2 ? await c.request("ping").then((x) => JSON.stringify(x), (e) => "error " + e.code) : null;
    c.close();
    return { s1, s2, code, asked: asked.length, pong, status: c.status };
  }, [cfg.tokens.robin[0], cfg.tokens.robin.slice(1)]);
  check("the SDK reconnects after a drop with its resume credential, no new token asked",
        r && r.s1 && r.s2 && r.s1 !== r.s2 && ![null, undefined, 1000].includes(r.code) && r.asked === 0 &&
        r.pong === "{}" && r.status === "closed", r);

  if (cfg.plugins.includes("events")) {
    // The test plugin `events`: notify events become toasts in the page, and
    // widget events reach the plugin's subscribers.
    const shown = await page.evaluate(async () => {
      const got = [];
      const off = hutopia.onWidget("events", (d) => got.push(d));
      const ok = JSON.stringify(await hutopia.widget("events", "notify"));
      const targets = JSON.stringify(await hutopia.widget("events", "targets"));
      for (let i = 0; i < 50 && (got.length < 3 || document.querySelectorAll(".hutopia-toast").length < 2); i++)
        await new Promise((res) => setTimeout(res, 100));
      off();
      const toasts = [...document.querySelectorAll("#hutopia-toasts .hutopia-toast")].map((t) => ({
        text: t.textContent, link: (t.querySelector("a") || {}).href || null }));
      const live = document.getElementById("hutopia-toasts");
      return { ok, targets, got: got.slice().sort(), toasts, live: live ? live.getAttribute("aria-live") : null };
    });
    const toasts = shown.toasts || [];
    check("notify events are shown as toasts",
          shown.ok === '{"ok":true}' && shown.live === "polite" &&
          toasts.some((t) => t.text.includes("Title") && t.text.includes("Body") && t.link === "https://example.test/x") &&
          toasts.some((t) => t.text.includes("Bare") && !t.link), shown);
    check("onWidget() gets the plugin's events for this session, user and everyone",
          shown.targets === '{"ok":true}' && JSON.stringify(shown.got) === "[1,2,4]", shown);
  } else {
    console.log("skip notify and widget events: the test plugin `events` is not built");
  }

  if (cfg.screenshot) {
    await page.waitForTimeout(500);
    await page.screenshot({ path: cfg.screenshot });
    console.log(`screenshot: ${cfg.screenshot}`);
  }

  // The same token again: spent, so the page says so and offers to sign in.
  const again = await newPage(context, "spent");
  await again.goto(`${cfg.space}/#token=${cfg.tokens.pat}`);
  await again.waitForFunction(() => document.getElementById("status")?.dataset.state === "signed_out");
  state = await again.evaluate(pageState);
  check("a spent token shows the sign-in prompt",
        state.signedOutShown && state.login && state.login.endsWith("/login"), state);

  // No token at all.
  const none = await newPage(context, "none");
  await none.goto(`${cfg.space}/`);
  await none.waitForFunction(() => { const e = document.getElementById("signed-out"); return e && !e.hidden; });
  state = await none.evaluate(pageState);
  check("without a token: not signed in, with a link to /login",
        state.signedOutShown && state.status === "not signed in" && state.login === `${cfg.space}/login`, state);
  await context.close();
});
