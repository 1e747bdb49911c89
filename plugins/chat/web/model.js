// The chat widget's state without the DOM: the messages of a room as a
// window of the room's log (sorted by seq, no duplicates, gaps known), own
// posts not yet acknowledged, room lists and member lists. Runs under node.

import { rank } from "./format.js";

// A contiguous run of a room's messages, sorted by seq. `hasOlder`: the room
// has messages before the first one here; `hasNewer`: after the last one
// (the newest part was dropped, or not loaded yet). Messages outside the run
// are never inserted, so the run never has a gap: a live message that does
// not follow the run only marks `hasNewer`.
export class MessageList {
  constructor() {
    this.items = [];
    this.hasOlder = true;
    this.hasNewer = false;
    this.loaded = false;  // a first page arrived
  }

  get length() {
    return this.items.length;
  }

  firstSeq() {
    return this.items.length ? this.items[0].seq : null;
  }

  lastSeq() {
    return this.items.length ? this.items[this.items.length - 1].seq : null;
  }

  // The index of the message with this seq, or -(insertion point) - 1.
  search(seq) {
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.items[mid].seq;
      if (s === seq) return mid;
      if (s < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  get(seq) {
    const i = this.search(seq);
    return i >= 0 ? this.items[i] : null;
  }

  // Sets the newest page (history without before/after): replaces the list.
  setLatest(messages, more) {
    this.items = sortUnique(messages);
    this.hasOlder = !!more;
    this.hasNewer = false;
    this.loaded = true;
  }

  // Adds a page of older messages (history before the first seq). Returns
  // how many were added at the front.
  addOlder(messages, more) {
    const first = this.firstSeq();
    const older = sortUnique(messages).filter((m) => first === null || m.seq < first);
    this.items = older.concat(this.items);
    this.hasOlder = !!more;
    this.loaded = true;
    return older.length;
  }

  // Adds a page of newer messages (history after the last seq). Returns how
  // many were added at the end.
  addNewer(messages, more) {
    const last = this.lastSeq();
    const newer = sortUnique(messages).filter((m) => last === null || m.seq > last);
    this.items = this.items.concat(newer);
    this.hasNewer = !!more;
    this.loaded = true;
    return newer.length;
  }

  // A live message. Added when it follows the run (nothing newer is
  // missing); a message already here is replaced (same seq, never twice).
  // Returns "added", "updated" or "skipped".
  live(message) {
    const i = this.search(message.seq);
    if (i >= 0) {
      this.items[i] = { ...this.items[i], ...message };
      return "updated";
    }
    if (this.hasNewer || !this.loaded) return "skipped";
    const at = -i - 1;
    if (at < this.items.length) {
      // An older message arriving late (a reordered catch-up): place it.
      this.items.splice(at, 0, message);
      return "added";
    }
    this.items.push(message);
    return "added";
  }

  edit(seq, text, editedTs) {
    const i = this.search(seq);
    if (i < 0) return false;
    this.items[i] = { ...this.items[i], text, edited_ts: editedTs ?? Date.now() };
    return true;
  }

  remove(seq) {
    const i = this.search(seq);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  // Keeps at most `max` messages, dropping from the end farther from
  // `keepEnd` ("newest" or "oldest"). Returns how many were dropped.
  trim(max, keepEnd) {
    const extra = this.items.length - max;
    if (extra <= 0) return 0;
    if (keepEnd === "newest") {
      this.items.splice(0, extra);
      this.hasOlder = true;
    } else {
      this.items.splice(this.items.length - extra, extra);
      this.hasNewer = true;
    }
    return extra;
  }
}

function sortUnique(messages) {
  const bySeq = new Map();
  for (const m of messages || []) if (m && Number.isFinite(m.seq)) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

// Own posts not acknowledged yet: shown after the newest message, as
// "pending", or "failed" with the reason.
export class Outbox {
  constructor() {
    this.items = [];
    this._next = 1;
  }

  add(text, data) {
    const p = { local: `local-${this._next++}`, text, data, state: "pending", error: null, ts: Date.now() };
    this.items.push(p);
    return p;
  }

  get(local) {
    return this.items.find((p) => p.local === local) || null;
  }

  // Sets the state (and error) of the post `local`; returns it, or null.
  _mark(local, state, error) {
    const p = this.get(local);
    if (p) Object.assign(p, { state, error });
    return p;
  }

  fail(local, error) {
    return this._mark(local, "failed", error);
  }

  retry(local) {
    return this._mark(local, "pending", null);
  }

  remove(local) {
    const i = this.items.findIndex((p) => p.local === local);
    if (i >= 0) this.items.splice(i, 1);
  }

  // After a reconnect: a post whose answer was lost may have been stored.
  // Drops the failed or pending ones whose text and data a message from me
  // among `messages` carries, and returns them.
  settleWith(messages, me) {
    const settled = [];
    for (const m of messages) {
      if (!m.from || m.from.id !== me) continue;
      const i = this.items.findIndex((p) => p.state !== "sending" && p.text === m.text &&
        JSON.stringify(p.data ?? null) === JSON.stringify(m.data ?? null) && p.ts <= m.ts + 60000);
      if (i >= 0) settled.push(...this.items.splice(i, 1));
    }
    return settled;
  }
}

// Rooms from the `rooms` op, in the order the list shows them: my rooms,
// my direct messages, public rooms I am not in.
export function groupRooms(rooms) {
  const mine = [];
  const dms = [];
  const open = [];
  for (const r of rooms || []) {
    if (!r || typeof r.room !== "string") continue;
    if (r.dm) dms.push(r);
    else if (r.role) mine.push(r);
    else open.push(r);
  }
  const byName = (a, b) => a.room.localeCompare(b.room);
  const byDmName = (a, b) => dmName(a).localeCompare(dmName(b));
  return { mine: mine.sort(byName), dms: dms.sort(byDmName), open: open.sort(byName) };
}

// The name a DM room is shown under: the other user's.
export function dmName(r) {
  const d = r && r.dm;
  if (!d) return r ? r.room : "";
  if (typeof d === "string") return d;
  return d.name || d.id || r.room;
}

export function dmUser(r) {
  const d = r && r.dm;
  if (!d) return null;
  return typeof d === "string" ? { id: d, name: d } : d;
}

// Members in the order the list shows them: online first, then by role
// (higher first), then by name.
export function sortMembers(members) {
  return [...members].sort((a, b) =>
    (b.online ? 1 : 0) - (a.online ? 1 : 0) || rank(b.role) - rank(a.role) ||
    String(a.name || a.id).localeCompare(String(b.name || b.id)));
}

// What I may do to a member: {kick, mute, role} (role: the roles I may set).
export function moderationRights(myRole, target, myId) {
  const none = { kick: false, mute: false, unmute: false, role: [] };
  if (!target || target.id === myId) return none;
  const mine = rank(myRole);
  const theirs = rank(target.role);
  if (mine < 1) return none;
  const over = mine > theirs;
  return {
    kick: over,
    mute: over && !target.muted,
    unmute: !!target.muted,
    role: mine >= 2 ? ["member", "moderator", "master"].filter((r) => r !== target.role) : [],
  };
}

// The sum shown in the page title.
export function totalUnread(rooms) {
  let n = 0;
  for (const r of rooms || []) if (r && (r.role || r.dm) && r.unread > 0) n += r.unread;
  return n;
}

// The title with an unread badge: "(3) Space · Hutopia".
export function badgeTitle(base, unread) {
  const clean = String(base || "").replace(/^\(\d+\+?\)\s*/, "");
  if (!unread) return clean;
  return `(${unread > 999 ? "999+" : unread}) ${clean}`;
}
