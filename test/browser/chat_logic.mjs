// The chat widget's logic without a browser: links in text, mentions, message
// runs without duplicates or gaps, the outbox after a reconnect, room and
// member ordering, moderation rights, the title badge.
// Run: node test/browser/chat_logic.mjs; ends with "N passed, N failed".
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.join(here, "..", "..", "plugins", "chat", "web");
const fmt = await import(pathToFileURL(path.join(web, "format.js")).href);
const model = await import(pathToFileURL(path.join(web, "model.js")).href);

let passed = 0;
let failed = 0;
function test(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

const msg = (seq, from = "a", ts = 1_700_000_000_000 + seq * 1000, text = `m${seq}`) =>
  ({ room: "r", seq, ts, from: { id: from, name: from.toUpperCase() }, text });

test("links: http(s) and www become links, the rest stays text", () => {
  assert.deepEqual(fmt.linkify("see https://example.org/a?b=1, and www.x.org."), [
    { text: "see " }, { text: "https://example.org/a?b=1", href: "https://example.org/a?b=1" }, { text: ", and " },
    { text: "www.x.org", href: "https://www.x.org" }, { text: "." }]);
});

test("links: markup in text is only text, javascript: is never a link", () => {
  const segs = fmt.linkify('<img src=x onerror=alert(1)> javascript:alert(1) "http://a.b/"');
  assert.ok(segs.every((s) => !s.href || /^https?:/.test(s.href)));
  assert.equal(segs.map((s) => s.text).join(""), '<img src=x onerror=alert(1)> javascript:alert(1) "http://a.b/"');
  assert.equal(segs.filter((s) => s.href).length, 1);
});

test("links: a parenthesis belonging to the URL stays in it", () => {
  const segs = fmt.linkify("(see https://en.wikipedia.org/wiki/A_(b))");
  assert.equal(segs.find((s) => s.href).href, "https://en.wikipedia.org/wiki/A_(b)");
});

test("initials of names", () => {
  assert.equal(fmt.initials("Ada Lovelace"), "AL");
  assert.equal(fmt.initials("bob"), "BO");
  assert.equal(fmt.initials(""), "?");
  assert.equal(fmt.initials("élodie durand"), "ÉD");
});

test("mentions: @name, @username, case-insensitive, not inside words or emails", () => {
  const me = { id: "u1", name: "Ada", username: "ada_l" };
  assert.ok(fmt.mentions("hey @ada, look", me));
  assert.ok(fmt.mentions("@ADA_L!", me));
  assert.ok(!fmt.mentions("mail ada@ada.org", me));
  assert.ok(!fmt.mentions("@adam here", me));
  assert.ok(!fmt.mentions("no mention", me));
});

test("grouping: same sender within 5 minutes on one day", () => {
  assert.ok(fmt.continues(msg(1, "a"), msg(2, "a")));
  assert.ok(!fmt.continues(msg(1, "a"), msg(2, "b")));
  assert.ok(!fmt.continues(msg(1, "a", 0), msg(2, "a", 6 * 60 * 1000)));
});

test("day labels: today and yesterday in words", () => {
  const now = new Date(2026, 5, 10, 12).getTime();
  assert.equal(fmt.dayLabel(now - 3600e3, now), "Today");
  assert.equal(fmt.dayLabel(now - 24 * 3600e3, now), "Yesterday");
  assert.notEqual(fmt.dayLabel(now - 5 * 24 * 3600e3, now), "Yesterday");
});

test("refusals in words name the code's meaning", () => {
  assert.match(fmt.refusal({ code: "muted", message: "muted" }, "Could not post"), /^Could not post: You are muted/);
  assert.match(fmt.refusal({ code: "forbidden", message: "below moderator" }), /not allowed.*below moderator/);
});

test("message list: pages join without duplicates and stay sorted", () => {
  const l = new model.MessageList();
  l.setLatest([msg(51), msg(52), msg(53)], true);
  assert.equal(l.addOlder([msg(49), msg(50), msg(51)], true), 2);
  assert.deepEqual(l.items.map((m) => m.seq), [49, 50, 51, 52, 53]);
  assert.equal(l.live(msg(53)), "updated");
  assert.equal(l.live(msg(54)), "added");
  assert.equal(l.addNewer([msg(54), msg(55)], false), 1);
  assert.deepEqual(l.items.map((m) => m.seq), [49, 50, 51, 52, 53, 54, 55]);
  assert.ok(l.hasOlder && !l.hasNewer);
});

test("message list: a live message after a dropped newest part is not inserted (no gap)", () => {
  const l = new model.MessageList();
  l.setLatest(Array.from({ length: 10 }, (_, i) => msg(i + 1)), false);
  assert.equal(l.trim(6, "oldest"), 4);
  assert.ok(l.hasNewer);
  assert.equal(l.live(msg(11)), "skipped");
  assert.equal(l.lastSeq(), 6);
  assert.equal(l.addNewer([msg(7), msg(8), msg(9), msg(10), msg(11)], false), 5);
  assert.deepEqual(l.items.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
});

test("message list: edit and delete by seq", () => {
  const l = new model.MessageList();
  l.setLatest([msg(1), msg(2), msg(3)], false);
  assert.ok(l.edit(2, "new", 5));
  assert.equal(l.get(2).text, "new");
  assert.equal(l.get(2).edited_ts, 5);
  assert.ok(l.remove(2));
  assert.ok(!l.remove(2));
  assert.deepEqual(l.items.map((m) => m.seq), [1, 3]);
});

test("outbox: pending, failed, retried; settled by what history shows after a reconnect", () => {
  const o = new model.Outbox();
  const p = o.add("hello");
  const q = o.add("again");
  o.fail(p.local, { code: "unavailable" });
  assert.equal(o.get(p.local).state, "failed");
  o.retry(p.local);
  assert.equal(o.get(p.local).state, "pending");
  const seen = [{ ...msg(9, "me"), text: "hello", ts: Date.now() }];
  const settled = o.settleWith(seen, "me");
  assert.deepEqual(settled.map((x) => x.local), [p.local]);
  assert.deepEqual(o.items.map((x) => x.local), [q.local]);
});

test("rooms: mine, DMs apart by their dm field, public ones to join", () => {
  const g = model.groupRooms([
    { room: "zeta", role: "member" }, { room: "alpha", role: "master" }, { room: "dm-1", role: "member", dm: { id: "b", name: "Bea" } },
    { room: "open", role: null }, { room: 5 },
  ]);
  assert.deepEqual(g.mine.map((r) => r.room), ["alpha", "zeta"]);
  assert.deepEqual(g.dms.map((r) => model.dmName(r)), ["Bea"]);
  assert.deepEqual(g.open.map((r) => r.room), ["open"]);
});

test("members: online first, then role, then name", () => {
  const list = model.sortMembers([
    { id: "1", name: "Zed", online: true, role: "member" }, { id: "2", name: "Amy", online: false, role: "master" },
    { id: "3", name: "Bo", online: true, role: "moderator" }, { id: "4", name: "Al", online: true, role: "member" }]);
  assert.deepEqual(list.map((m) => m.name), ["Bo", "Al", "Zed", "Amy"]);
});

test("moderation rights follow the roles", () => {
  const member = { id: "m", role: "member", muted: false };
  assert.deepEqual(model.moderationRights("member", member, "me"), { kick: false, mute: false, unmute: false, role: [] });
  const mod = model.moderationRights("moderator", member, "me");
  assert.ok(mod.kick && mod.mute && !mod.unmute && mod.role.length === 0);
  assert.ok(!model.moderationRights("moderator", { id: "x", role: "moderator" }, "me").kick);
  assert.deepEqual(model.moderationRights("master", member, "me").role, ["moderator", "master"]);
  assert.ok(model.moderationRights("moderator", { ...member, muted: true }, "me").unmute);
  assert.ok(!model.moderationRights("master", { id: "me", role: "master" }, "me").kick);
});

test("title badge: the unread count of my rooms only", () => {
  const rooms = [{ room: "a", role: "member", unread: 2 }, { room: "b", role: null, unread: 9 }, { room: "c", dm: "x", unread: 1 }];
  assert.equal(model.totalUnread(rooms), 3);
  assert.equal(model.badgeTitle("(7) Space · Hutopia", 3), "(3) Space · Hutopia");
  assert.equal(model.badgeTitle("(7) Space · Hutopia", 0), "Space · Hutopia");
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
