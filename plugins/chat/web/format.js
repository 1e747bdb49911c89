// Small pure helpers of the chat widget: links in text, initials, times,
// durations, mentions. No DOM here, so they run under node as well.

// Splits text into segments {text} and {text, href}: http(s) URLs and www.
// names become links, everything else stays text. Trailing punctuation that
// usually ends a sentence is left out of the link.
const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;

export function linkify(text) {
  const out = [];
  const s = String(text ?? "");
  let last = 0;
  for (const m of s.matchAll(LINK)) {
    let url = m[0];
    let trail = "";
    while (/[.,;:!?)\]}'"]$/.test(url)) {
      const ch = url[url.length - 1];
      // Keep a closing parenthesis that has its opening one in the URL.
      if (ch === ")" && url.split("(").length > url.split(")").length - 1) break;
      trail = ch + trail;
      url = url.slice(0, -1);
    }
    if (!url || /^(?:https?:\/\/|www\.)$/i.test(url)) continue;
    const start = m.index;
    if (start > last) out.push({ text: s.slice(last, start) });
    const href = /^www\./i.test(url) ? `https://${url}` : url;
    out.push({ text: url, href });
    last = start + url.length;
    if (trail) {
      out.push({ text: trail });
      last += trail.length;
    }
  }
  if (last < s.length) out.push({ text: s.slice(last) });
  // Merge neighbouring text segments.
  const merged = [];
  for (const seg of out) {
    const prev = merged[merged.length - 1];
    if (prev && !prev.href && !seg.href) prev.text += seg.text;
    else merged.push({ ...seg });
  }
  return merged;
}

// Up to two letters for an avatar without a picture.
export function initials(name) {
  const words = String(name ?? "").trim().split(/[\s._-]+/u).filter(Boolean);
  if (!words.length) return "?";
  const first = [...words[0]][0] || "";
  const second = words.length > 1 ? [...words[words.length - 1]][0] || "" : [...words[0]][1] || "";
  return (first + second).toUpperCase();
}

// A hue from a string, so that one user keeps one colour.
export function hue(s) {
  let h = 0;
  for (const ch of String(s ?? "")) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

// The local calendar day of a time, as a key ("2026-12-06").
export function dayKey(ts) {
  const d = new Date(ts);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

// "Today", "Yesterday", or the date in words.
export function dayLabel(ts, now = Date.now()) {
  const key = dayKey(ts);
  if (key === dayKey(now)) return "Today";
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  if (key === dayKey(y.getTime())) return "Yesterday";
  const d = new Date(ts);
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleDateString(undefined, {
    weekday: "long", day: "numeric", month: "long", ...(sameYear ? {} : { year: "numeric" }),
  });
}

export function timeLabel(ts) {
  return new Date(ts).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function fullTime(ts) {
  return new Date(ts).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// Messages from one sender within this many ms of each other form a group.
export const GROUP_MS = 5 * 60 * 1000;

// Whether message b continues the group of message a (same sender, same day,
// close in time).
export function continues(a, b) {
  if (!a || !b || !a.from || !b.from) return false;
  return a.from.id === b.from.id && b.ts - a.ts < GROUP_MS && b.ts >= a.ts && dayKey(a.ts) === dayKey(b.ts);
}

// Whether the text mentions the user as @name, @username or @id (not inside
// a longer word).
export function mentions(text, user) {
  if (!user) return false;
  const names = new Set([user.name, user.username, user.id].filter(Boolean).map((n) => String(n).toLowerCase()));
  const s = String(text ?? "").toLowerCase();
  for (const n of names) {
    let i = s.indexOf(`@${n}`);
    while (i >= 0) {
      const before = i === 0 ? "" : s[i - 1];
      const after = s[i + 1 + n.length] ?? "";
      if (!/[\p{L}\p{N}_]/u.test(before) && !/[\p{L}\p{N}_]/u.test(after)) return true;
      i = s.indexOf(`@${n}`, i + 1);
    }
  }
  return false;
}

// File sizes in words.
export function sizeLabel(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

// Words for the end of a mute: "until 14:05", "for good".
export function untilLabel(until, now = Date.now()) {
  if (until === null || until === undefined) return "until a moderator unmutes you";
  if (dayKey(until) === dayKey(now)) return `until ${timeLabel(until)}`;
  return `until ${fullTime(until)}`;
}

// The durations offered for a mute, in seconds (null: no end).
export const MUTE_DURATIONS = [
  { label: "5 minutes", seconds: 300 },
  { label: "1 hour", seconds: 3600 },
  { label: "1 day", seconds: 86400 },
  { label: "1 week", seconds: 604800 },
  { label: "Until unmuted", seconds: null },
];

// Words for the codes of the bus's errors, for a person.
const REFUSALS = {
  forbidden: "You are not allowed to do that here.",
  muted: "You are muted in this room.",
  not_found: "That no longer exists.",
  conflict: "That already exists.",
  rate_limited: "Slow down: too many messages at once.",
  too_large: "That is too large.",
  unavailable: "The space cannot be reached right now.",
  bad_request: "The space did not understand that.",
  internal: "The space failed to do that.",
  unauthenticated: "You are not signed in.",
};

export function refusal(err, what = "") {
  const code = err && err.code;
  const base = REFUSALS[code] || "That did not work.";
  const detail = err && err.message && err.message !== code ? ` (${err.message})` : "";
  return `${what ? `${what}: ` : ""}${base}${detail}`;
}

// Room names the widget lets a person type: what the bus accepts is decided
// by the space; this only trims and drops a leading '#'.
export function roomName(input) {
  return String(input ?? "").trim().replace(/^#+/, "").trim();
}

export const ROLE_RANK = { member: 0, moderator: 1, master: 2 };

export function rank(role) {
  return ROLE_RANK[role] ?? -1;
}
