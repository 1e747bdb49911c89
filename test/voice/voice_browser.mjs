// Two real headless Chromium pages in one voice channel: real WebRTC audio
// from Chromium's fake microphone, through the space's signaling, with TURN
// (iceTransportPolicy "relay") or without. Driven by voice_browser.py, which
// starts coturn and spaced and passes one JSON argument:
//
//   {"name", "policy": "relay"|"all", "room", "mod": URL, "member": URL,
//    "memberName", "candidate": "relay"|"host", "reconnectToken": a second token of
//    the member, "graceSeconds": voice.toml's grace_seconds, "screenshots"?: DIR}
//
// Prints "ok NAME" or "FAIL NAME: why" per check; exits 1 when one failed.
// State is read through the widget's test hooks (voiceState(),
// peerConnections()) and RTCPeerConnection.getStats().
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = require.resolve("axe-core/axe.min.js");

const cfg = JSON.parse(process.argv[2]);
const TAG = `[${cfg.name}]`;
let failed = 0;
const record = (what, ok, detail = "") => {
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${TAG} ${what}${ok ? "" : ": " + detail}`);
  return ok;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, timeoutMs, stepMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(stepMs);
  }
  return last;
}

// Audio byte counters of one peer connection, and the kinds of the
// candidates of its selected pair.
const STATS = async (peer) => {
  const el = document.querySelector("hut-voice");
  const pc = el && el.peerConnections()[peer];
  if (!pc) return null;
  const st = await pc.getStats();
  let inbound = 0, outbound = 0, pair = null;
  st.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") inbound += r.bytesReceived || 0;
    if (r.type === "outbound-rtp" && r.kind === "audio") outbound += r.bytesSent || 0;
    if (r.type === "transport" && r.selectedCandidatePairId) pair = st.get(r.selectedCandidatePairId);
  });
  const local = pair && st.get(pair.localCandidateId);
  const remote = pair && st.get(pair.remoteCandidateId);
  return { inbound, outbound, state: pc.connectionState, local: local && local.candidateType,
           remote: remote && remote.candidateType };
};
const STATE = () => {
  const el = document.querySelector("hut-voice");
  return el && el.voiceState ? el.voiceState() : null;
};

async function openPage(browser, url, who) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`${TAG} ${who} page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") console.log(`${TAG} ${who} console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector("#status")?.dataset.state === "connected" &&
    customElements.get("hut-voice") && document.querySelector("hut-voice")?.shadowRoot, null, { timeout: 30000 });
  await page.evaluate((policy) => { document.querySelector("hut-voice").iceTransportPolicy = policy; }, cfg.policy);
  return page;
}

// axe-core's accessibility rules on the widget (labels, roles, contrast...).
async function axeViolations(page) {
  if (!(await page.evaluate(() => !!window.axe))) await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const r = await window.axe.run(document.querySelector("hut-voice"), { resultTypes: ["violations"] });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
}

async function join(page, keyboard) {
  await page.locator("hut-voice #room").selectOption(cfg.room, { timeout: 15000 });
  if (keyboard) { // from the room list, Tab reaches the Join button and Enter presses it
    await page.locator("hut-voice #room").focus();
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
  } else {
    await page.locator("hut-voice #join").click();
  }
  return page.waitForFunction((room) => document.querySelector("hut-voice").voiceState().room === room, cfg.room,
    { timeout: 20000 }).then(() => true, () => false);
}

// Waits until a counter of `page`'s connection to `peer` grows by `by` bytes.
async function grows(page, peer, field, by = 2000, timeoutMs = 20000) {
  const first = await page.evaluate(STATS, peer);
  if (!first) return { ok: false, detail: "no peer connection" };
  const end = await until(async () => {
    const s = await page.evaluate(STATS, peer);
    return s && s[field] >= first[field] + by ? s : null;
  }, timeoutMs);
  return { ok: !!end, detail: `${field} ${first[field]} -> ${end ? end[field] : "no growth"}`, stats: end };
}

// True when a counter stays put for `quietMs` (after `settleMs` for packets in flight).
async function still(page, peer, field, settleMs = 1500, quietMs = 3000) {
  await sleep(settleMs);
  const a = await page.evaluate(STATS, peer);
  await sleep(quietMs);
  const b = await page.evaluate(STATS, peer);
  return { ok: !!a && !!b && a[field] === b[field], detail: `${field} ${a && a[field]} -> ${b && b[field]}` };
}

const browser = await chromium.launch({
  executablePath: process.env.HUT_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
});
try {
  const mod = await openPage(browser, cfg.mod, "moderator");
  const member = await openPage(browser, cfg.member, "member");
  if (cfg.screenshots) {
    await member.locator("hut-voice").screenshot({ path: `${cfg.screenshots}/voice-before-join.png` });
  }
  let v = await axeViolations(member);
  record("no accessibility violations in the widget before joining (axe-core)", v.length === 0, v.join("; "));
  record("the moderator joins the voice channel", await join(mod));
  record("the member joins the voice channel, with the keyboard", await join(member, true));

  const ids = await until(async () => {
    const a = await mod.evaluate(STATE), b = await member.evaluate(STATE);
    const pa = a && a.people[0], pb = b && b.people[0];
    return pa && pb && pa.connection === "connected" && pb.connection === "connected" ? { member: pa.id, mod: pb.id } : null;
  }, 45000);
  if (!record("both peer connections connect", !!ids, JSON.stringify([await mod.evaluate(STATE), await member.evaluate(STATE)]))) {
    throw new Error("no connection");
  }

  let g = await grows(mod, ids.member, "inbound");
  record("the moderator receives the member's audio (inbound RTP bytes grow)", g.ok, g.detail);
  const pair = g.stats;
  g = await grows(member, ids.mod, "inbound");
  record("the member receives the moderator's audio (inbound RTP bytes grow)", g.ok, g.detail);
  record(`the audio goes over ${cfg.candidate} candidates`,
    pair && pair.local === cfg.candidate && pair.remote === cfg.candidate, JSON.stringify(pair));

  for (const scheme of ["light", "dark"]) {
    await mod.emulateMedia({ colorScheme: scheme });
    v = await axeViolations(mod);
    record(`no accessibility violations in the moderator's widget in a call, ${scheme} (axe-core)`, v.length === 0,
      v.join("; "));
  }
  await mod.emulateMedia({ colorScheme: "light" });

  const speaking = await until(async () => {
    const s = await mod.evaluate(STATE);
    return s.people.find((p) => p.id === ids.member && p.level > 0) ? s : null;
  }, 10000, 100);
  record("the speaking indicator measures the member's audio", !!speaking, JSON.stringify(await mod.evaluate(STATE)));

  if (cfg.screenshots) {
    for (const [page, who] of [[mod, "moderator"], [member, "member"]]) {
      for (const scheme of ["light", "dark"]) {
        for (const [w, h, size] of [[1100, 800, "desktop"], [390, 844, "phone"]]) {
          await page.emulateMedia({ colorScheme: scheme });
          await page.setViewportSize({ width: w, height: h });
          await page.locator("hut-voice").screenshot({ path: `${cfg.screenshots}/voice-${who}-${size}-${scheme}.png` });
        }
      }
      await page.setViewportSize({ width: 1100, height: 800 });
    }
  }

  // The moderator mutes the member, with the button in the moderator's widget.
  await mod.getByRole("button", { name: `Mute ${cfg.memberName}` }).click();
  const mutedState = await member.waitForFunction(() => {
    const s = document.querySelector("hut-voice").voiceState();
    return s.me && s.me.muted && s.me.muted_by_moderator && !s.me.sending ? s : null;
  }, null, { timeout: 15000 }).then((h) => h.jsonValue(), () => null);
  record("the muted member's widget knows it is muted and stops sending", !!mutedState,
    JSON.stringify(await member.evaluate(STATE)));
  let q = await still(member, ids.mod, "outbound");
  record("the muted member's outbound audio stops (bytesSent stays put)", q.ok, q.detail);
  const heard = await mod.evaluate((id) => {
    const el = document.querySelector("hut-voice");
    const p = el.voiceState().people.find((x) => x.id === id);
    const pc = el.peerConnections()[id];
    return { playing: p.playing, muted: p.muted, tracks: pc.getReceivers().map((r) => r.track && r.track.enabled) };
  }, ids.member);
  record("the moderator's page stops playing the muted member", heard.muted && !heard.playing &&
    heard.tracks.every((t) => t === false), JSON.stringify(heard));
  q = await still(mod, ids.member, "inbound", 0, 2000);
  record("no audio from the muted member arrives", q.ok, q.detail);
  const selfUnmute = await member.evaluate(() => {
    const b = document.querySelector("hut-voice").shadowRoot.getElementById("mute");
    return { disabled: b.disabled, pressed: b.getAttribute("aria-pressed"), text: b.textContent };
  });
  record("the member cannot unmute themself (the button is disabled)", selfUnmute.disabled && selfUnmute.pressed === "true",
    JSON.stringify(selfUnmute));

  await mod.getByRole("button", { name: `Unmute ${cfg.memberName}` }).click();
  g = await grows(member, ids.mod, "outbound");
  record("after the moderator's unmute the member sends again", g.ok, g.detail);
  g = await grows(mod, ids.member, "inbound");
  record("and the moderator hears the member again", g.ok, g.detail);

  // The member's bus connection drops and comes back (a fresh token): within
  // the grace period the widget rejoins, the moderator sees no `left`, and
  // the peer connection, which does not depend on the bus, keeps playing.
  await mod.evaluate((id) => {
    window.__pcBefore = document.querySelector("hut-voice").peerConnections()[id];
    window.__sawLeft = false;
    hutopia.onWidget("voice", (d) => { if (d.event === "left" || d.event === "joined") window.__sawLeft = true; });
  }, ids.member);
  await member.evaluate((token) => {
    window.__welcomes = 0;
    hutopia.on("welcome", () => window.__welcomes++);
    hutopia.getToken = async () => token;
    hutopia._ws.close(4000, "test: the connection dropped");
  }, cfg.reconnectToken);
  const back = await member.waitForFunction(() => window.__welcomes > 0 && hutopia.status === "connected", null,
    { timeout: 20000 }).then(() => true, () => false);
  record("the member's bus connection comes back", back, await member.evaluate(() => hutopia.status));
  await sleep((cfg.graceSeconds + 2) * 1000);
  const blip = await mod.evaluate((id) => {
    const el = document.querySelector("hut-voice");
    return { sawLeft: window.__sawLeft, same: el.peerConnections()[id] === window.__pcBefore,
             state: window.__pcBefore.connectionState, present: el.voiceState().people.some((p) => p.id === id) };
  }, ids.member);
  record("past the grace period the moderator saw no left or joined, and kept the same connection",
    !blip.sawLeft && blip.same && blip.state === "connected" && blip.present, JSON.stringify(blip));
  g = await grows(mod, ids.member, "inbound");
  record("and still hears the member", g.ok, g.detail);

  // Leaving ends the peer connection on the other side (the leave comes from
  // the member's new session, so the rejoin took it).
  await mod.evaluate((id) => { window.__voicePc = document.querySelector("hut-voice").peerConnections()[id]; }, ids.member);
  await member.locator("hut-voice #leave").click();
  const ended = await mod.waitForFunction((id) => {
    const el = document.querySelector("hut-voice");
    return window.__voicePc.connectionState === "closed" && !el.peerConnections()[id] &&
      !el.voiceState().people.some((p) => p.id === id);
  }, ids.member, { timeout: 15000 }).then(() => true, () => false);
  record("the member's leave ends the moderator's peer connection to them", ended,
    await mod.evaluate(() => window.__voicePc.connectionState));
  const left = await member.evaluate(() => ({ state: document.querySelector("hut-voice").voiceState(),
    pcs: Object.keys(document.querySelector("hut-voice").peerConnections()).length }));
  record("the member's own connections are closed", left.state.room === null && left.pcs === 0, JSON.stringify(left));
} catch (e) {
  record("the run", false, e.stack || String(e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
