// The Hutopia client SDK: one WebSocket to a space's widget bus (contract
// section 2), requests as Promises, events, widgets and notifications.
// An ES module with no dependencies; docs/sdk.md describes the API.
//
//   import { connect } from "/sdk/hutopia.js";
//   const client = await connect();            // token from #token=… or sessionStorage
//   console.log(client.user.name, client.space.name);
//   await client.request("ping");
//   const answer = await client.widget("echo", { hello: 1 });

export const version = "0.1.0";
export const SUBPROTOCOL = "hutopia.v1";

// The sessionStorage key where a token waits until it is used.
export const TOKEN_KEY = "hutopia.token";

// The sessionStorage key of the resume credential of the last welcome
// (single use, replaced by every welcome): a reload or a reconnect enters
// with it instead of a token.
export const RESUME_KEY = "hutopia.resume";

// The localStorage key of the user's "mute sounds" setting.
export const SOUND_KEY = "hutopia.sound.muted";

// Close codes the space uses (contract section 2).
export const CLOSE = Object.freeze({
  GOING_AWAY: 1001,
  UNSUPPORTED: 1003,
  BAD_UTF8: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  UNAUTHENTICATED: 4001,
  SLOW_READER: 4008,
});

// An error answered by the space, or raised by the SDK itself with one of the
// same codes ("unavailable" when the connection is gone, "unauthenticated"
// when there is no token).
export class HutopiaError extends Error {
  constructor(code, message, ref) {
    super(message || code);
    this.name = "HutopiaError";
    this.code = code;
    if (ref !== undefined) this.ref = ref;
  }
}

// Adds fn to the set of `key` in `map` (a Map of Sets); returns a function
// that removes it again.
function listen(map, key, fn) {
  if (!map.has(key)) map.set(key, new Set());
  map.get(key).add(fn);
  return () => unlisten(map, key, fn);
}

function unlisten(map, key, fn) {
  const set = map.get(key);
  if (set) set.delete(fn);
}

function hasWindow() {
  return typeof window !== "undefined" && typeof window.location !== "undefined";
}

// The default bus URL: ws(s)://<page host>/bus.
export function defaultUrl() {
  if (!hasWindow()) throw new HutopiaError("bad_request", "no page to take the bus URL from: pass url");
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/bus`;
}

// Takes a token from the page's URL fragment (#token=…), removes it from the
// address bar, and keeps it in sessionStorage until it is used. Without one in
// the fragment, returns the token waiting in sessionStorage, or null.
export function takePageToken() {
  if (!hasWindow()) return null;
  const hash = window.location.hash.replace(/^#/, "");
  if (hash) {
    const params = new URLSearchParams(hash);
    const token = params.get("token");
    if (token) {
      params.delete("token");
      const rest = params.toString();
      const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
      try {
        window.history.replaceState(window.history.state, "", url);
      } catch (_) {
        window.location.hash = rest;
      }
      storeToken(token);
      return token;
    }
  }
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch (_) {
    return null;
  }
}

// Whether a resume credential from an earlier welcome waits in this tab.
export function hasResume() {
  return !!loadResume();
}

function loadResume() {
  try {
    return hasWindow() ? window.sessionStorage.getItem(RESUME_KEY) : null;
  } catch (_) {
    return null;
  }
}

function storeResume(value) {
  try {
    if (!hasWindow()) return;
    if (value) window.sessionStorage.setItem(RESUME_KEY, value);
    else window.sessionStorage.removeItem(RESUME_KEY);
  } catch (_) {
    // Storage may be disabled; the credential then lives only in memory.
  }
}

function storeToken(token) {
  try {
    if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    // Storage may be disabled; the token then lives only in memory.
  }
}

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;

// A connection to one space. Create it with connect() or `new Client(options)`
// followed by `open()`.
//
// State: `status` ("idle", "connecting", "connected", "reconnecting",
// "signed_out", "closed"), and after the welcome `session`, `user`, `space`,
// `widgets`, `rooms`.
export class Client {
  constructor(options = {}) {
    this.url = options.url || null;
    this.protocols = options.protocols || [SUBPROTOCOL];
    this.getToken = options.getToken || null;
    this.reconnect = options.reconnect !== false;
    this.requestTimeout = options.requestTimeout ?? 30000;
    this.notifications = options.notifications !== false;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;

    this.status = "idle";
    this.session = null;
    this.user = null;
    this.space = null;
    this.widgets = [];
    this.rooms = [];
    this.closeCode = null;
    this.closeReason = "";
    this.lastError = null;

    this._token = options.token || null;
    this._resume = options.resume !== undefined ? options.resume : (options.token ? null : loadResume());
    this._ws = null;
    this._nextRef = 1;
    this._pending = new Map();  // ref -> {resolve, reject, timer}
    this._waiting = [];         // requests made before the welcome: [send, reject]
    this._listeners = new Map();  // op -> Set(fn)
    this._widgetListeners = new Map();  // plugin -> Set(fn)
    this._attempt = 0;
    this._retryTimer = null;
    this._stopped = false;
    this._loadedScripts = new Map();  // script URL -> import Promise
    this._welcomeWaiters = [];

    if (this.notifications) this.on("notify", (ev) => showNotification(ev));
    this.on("widget", (ev) => {
      const set = this._widgetListeners.get(ev.plugin);
      if (set) for (const fn of [...set]) callSafely(fn, ev.data, ev);
    });
  }

  // Opens the connection. Resolves with the client once the space welcomed
  // it; rejects with a HutopiaError ("unauthenticated" with the space's reason,
  // or "unavailable") when the first attempt fails. Later drops reconnect by
  // themselves when a fresh token can be had (see getToken).
  open() {
    this._stopped = false;
    const done = new Promise((resolve, reject) => this._welcomeWaiters.push({ resolve, reject }));
    this._attempt = 0;
    this._connect();
    return done;
  }

  // Closes the connection for good: no reconnect; pending requests reject.
  close() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this._ws) {
      try {
        this._ws.close(1000, "bye");
      } catch (_) {
        // Already closing.
      }
    }
    this._failAll(new HutopiaError("unavailable", "the connection was closed"));
    this._setStatus("closed");
  }

  // Sends {"op":"hello","token":…}. The SDK does this itself on every open;
  // call it only on a socket you drive by hand.
  hello(token) {
    this._sendRaw({ op: "hello", token });
  }

  // Sends a request with a fresh numeric `ref`. Resolves with the ok result
  // (the answer without `op` and `ref`); rejects with a HutopiaError carrying
  // the space's `code` and `message`. Requests made while the client is
  // connecting or reconnecting wait for the welcome.
  request(op, fields = {}) {
    return new Promise((resolve, reject) => {
      const ref = this._nextRef++;
      const send = () => {
        const timer = this.requestTimeout > 0
          ? setTimeout(() => {
              this._pending.delete(ref);
              reject(new HutopiaError("unavailable", `no answer to ${op} in ${this.requestTimeout} ms`, ref));
            }, this.requestTimeout)
          : null;
        this._pending.set(ref, { resolve, reject, timer });
        if (!this._sendRaw({ ...fields, op, ref })) {
          clearTimeout(timer);
          this._pending.delete(ref);
          reject(new HutopiaError("unavailable", "not connected", ref));
        }
      };
      if (this.status === "connected") send();
      else if (this.status === "connecting" || this.status === "reconnecting") this._waiting.push([send, reject]);
      else reject(new HutopiaError("unavailable", `not connected (${this.status})`, ref));
    });
  }

  // Sends a frame without a ref: nothing answers it unless it fails.
  send(op, fields = {}) {
    return this._sendRaw({ ...fields, op });
  }

  // Asks a plugin over the bus: resolves with the `data` it answered.
  async widget(plugin, data) {
    const result = await this.request("widget", { plugin, data: data === undefined ? null : data });
    return result.data;
  }

  // --- typed helpers for the room ops of contract section 2 ---
  // Each resolves with the op's ok result (or the named part of it) and
  // rejects with a HutopiaError, as request() does.

  // [{room, topic, private, role, unread, last_seq, dm?}]: my rooms, then public ones.
  // Follows `more` through the pages (at most `maxPages` of them, of `limit`
  // rooms each when given).
  async listRooms({ maxPages = 100, limit } = {}) {
    const all = [];
    let after;
    for (let page = 0; page < maxPages; page++) {
      const fields = limit === undefined ? {} : { limit };
      if (after !== undefined) fields.after = after;
      const reply = await this.request("rooms", fields);
      const rooms = Array.isArray(reply.rooms) ? reply.rooms : [];
      all.push(...rooms);
      if (!reply.more || rooms.length === 0) break;
      after = rooms[rooms.length - 1].room;
    }
    return all;
  }

  // Creates a room ({private, topic} optional); resolves with its name.
  async createRoom(room, { private: isPrivate, topic } = {}) {
    const fields = { room };
    if (isPrivate !== undefined) fields.private = !!isPrivate;
    if (topic !== undefined) fields.topic = topic;
    return (await this.request("create", fields)).room;
  }

  // {room, role, last_seq, read_seq, member_count, members, more}
  join(room) {
    return this.request("join", { room });
  }

  leave(room) {
    return this.request("leave", { room });
  }

  // {seq, ts} once the message is durable.
  post(room, text, data) {
    return this.request("post", data === undefined ? { room, text } : { room, text, data });
  }

  edit(room, seq, text) {
    return this.request("edit", { room, seq, text });
  }

  deleteMessage(room, seq) {
    return this.request("delete", { room, seq });
  }

  // {messages (oldest first), more}; options {before} or {after}, and {limit}.
  history(room, { before, after, limit } = {}) {
    const fields = { room };
    if (before !== undefined && before !== null) fields.before = before;
    if (after !== undefined && after !== null) fields.after = after;
    if (limit !== undefined) fields.limit = limit;
    return this.request("history", fields);
  }

  // Moves my read marker (never back); resolves with {unread}.
  markRead(room, seq) {
    return this.request("read", { room, seq });
  }

  // Tells the room I am typing; no answer is awaited (the space rate limits it).
  typing(room) {
    return this.send("typing", { room });
  }

  // {members, more}; options {after: member id, limit}.
  members(room, { after, limit } = {}) {
    const fields = { room };
    if (after !== undefined && after !== null) fields.after = after;
    if (limit !== undefined) fields.limit = limit;
    return this.request("members", fields);
  }

  // The direct-message room with a user (by id); resolves with its name.
  async dm(user) {
    return (await this.request("dm", { user })).room;
  }

  kick(room, user) {
    return this.request("kick", { room, user });
  }

  // Mutes for `seconds` (omitted or null: until unmuted); resolves with {until}.
  mute(room, user, seconds) {
    const fields = { room, user };
    if (seconds !== undefined && seconds !== null) fields.seconds = seconds;
    return this.request("mute", fields);
  }

  unmute(room, user) {
    return this.request("unmute", { room, user });
  }

  muteAll(room, on) {
    return this.request("mute_all", { room, on: !!on });
  }

  setRole(room, user, role) {
    return this.request("role", { room, user, role });
  }

  // --- the user and space-wide functions ---

  // The signed-in user's profile as the space knows it: {id, name, avatar?}.
  profile() {
    return this.user ? { ...this.user } : null;
  }

  // The URL of the relay's profile page for this user (where the name and the
  // avatar are changed), or null when the space trusts no relay.
  async profilePageUrl() {
    return relayPage("/profile");
  }

  notify(options) {
    return notify(options);
  }

  playSound(kind) {
    return playSound(kind);
  }

  soundMuted() {
    return soundMuted();
  }

  setSoundMuted(on) {
    setSoundMuted(on);
  }

  openProfile(user) {
    return openProfile(user);
  }

  requestNotifications() {
    return requestNotifications();
  }

  // Calls fn(event) for every frame the space sends with this op ("message",
  // "widget", "notify", …) and for the SDK's own events: "status" (fn gets the
  // new status), "welcome", "close" ({code, reason}). Returns a function that
  // removes the listener.
  on(op, fn) {
    return listen(this._listeners, op, fn);
  }

  off(op, fn) {
    unlisten(this._listeners, op, fn);
  }

  // Calls fn(data, event) for every `widget` event from this plugin.
  onWidget(plugin, fn) {
    return listen(this._widgetListeners, plugin, fn);
  }

  offWidget(plugin, fn) {
    unlisten(this._widgetListeners, plugin, fn);
  }

  // Imports the script of each widget (relative URLs against the page) so
  // that its custom element is defined. Resolves with one entry per widget:
  // {plugin, tag, script, ok, error?}. A script that fails does not stop the
  // others.
  async loadWidgets(widgets = this.widgets, { timeoutMs = 10000 } = {}) {
    return Promise.all(widgets.map(async (w) => {
      try {
        const src = new URL(w.script, hasWindow() ? window.location.href : undefined).href;
        if (!this._loadedScripts.has(src)) this._loadedScripts.set(src, import(src));
        await this._loadedScripts.get(src);
        if (globalThis.customElements && w.tag && !customElements.get(w.tag)) {
          await withTimeout(customElements.whenDefined(w.tag), timeoutMs, `${w.tag} was not defined by ${w.script}`);
        }
        return { ...w, ok: true };
      } catch (e) {
        return { ...w, ok: false, error: String(e && e.message ? e.message : e) };
      }
    }));
  }

  // Loads the widgets and places one element per widget in `container`,
  // each with `hutopia` (this client) and `plugin` set before it is attached,
  // and a data-plugin attribute. `wrap(el, widget)` may return a node that
  // holds the element (a card, say) to append instead. Resolves with the
  // elements.
  async mountWidgets(container, widgets = this.widgets, { wrap = null } = {}) {
    const loaded = await this.loadWidgets(widgets);
    const elements = [];
    for (const w of loaded) {
      if (!w.tag || !/^[a-z][a-z0-9._-]*-[a-z0-9._-]*$/.test(w.tag)) continue;
      const el = document.createElement(w.tag);
      el.hutopia = this;
      el.plugin = w.plugin;
      el.dataset.plugin = w.plugin;
      if (!w.ok) el.dataset.error = w.error;
      container.appendChild((wrap && wrap(el, w)) || el);
      elements.push(el);
    }
    return elements;
  }

  // --- the connection ---

  async _connect() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._setStatus(this._attempt === 0 ? "connecting" : "reconnecting");
    let token = this._token;
    this._token = null;  // a token is single use
    // A reconnect (or a reload) enters with the resume credential of the
    // last welcome; it is single use too.
    const resume = !token && this._resume ? this._resume : null;
    this._resume = null;
    if (!token && !resume && this.getToken) {
      try {
        token = await this.getToken();
      } catch (e) {
        this.lastError = e;
      }
    }
    if (this._stopped) return;
    if (!token && !resume) {
      this._signedOut(new HutopiaError("unauthenticated", "no token: sign in first"));
      return;
    }
    let ws;
    try {
      ws = new this.WebSocket(this.url || defaultUrl(), this.protocols);
    } catch (e) {
      if (resume) this._resume = resume;
      this._dropped(new HutopiaError("unavailable", String(e && e.message ? e.message : e)), false);
      return;
    }
    this._ws = ws;
    let welcomed = false;
    let refusal = null;
    ws.onopen = () => {
      ws.send(JSON.stringify(resume ? { op: "hello", resume } : { op: "hello", token }));
    };
    ws.onmessage = (ev) => {
      if (ws !== this._ws) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (_) {
        return;  // The space only sends JSON; ignore anything else.
      }
      if (!msg || typeof msg !== "object" || typeof msg.op !== "string") return;
      if (!welcomed) {
        if (msg.op === "welcome") {
          welcomed = true;
          this._welcome(msg, token);
        } else if (msg.op === "error") {
          refusal = new HutopiaError(msg.code || "unauthenticated", msg.message || "refused");
          this._emit("error", msg);
        }
        return;
      }
      this._dispatch(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this._ws) return;
      this._ws = null;
      this.closeCode = ev.code;
      this.closeReason = ev.reason || "";
      this._emit("close", { code: ev.code, reason: ev.reason || "" });
      this._failAll(new HutopiaError("unavailable", `connection closed (${ev.code})`));
      if (this._stopped) return;
      if (!welcomed && (refusal || ev.code === CLOSE.UNAUTHENTICATED)) {
        const err = refusal || new HutopiaError("unauthenticated", ev.reason || "refused");
        err.code = "unauthenticated";
        if (token && token === this._storedToken()) storeToken(null);  // spent or refused
        if (resume && resume === loadResume()) storeResume(null);
        if (this.getToken) this._dropped(err, true);
        else this._signedOut(err);
        return;
      }
      // Not refused: the credential was not spent, so it may serve again.
      if (resume && !welcomed && !this._resume) this._resume = resume;
      this._dropped(new HutopiaError("unavailable", `connection closed (${ev.code})`), welcomed);
    };
  }

  _storedToken() {
    try {
      return hasWindow() ? window.sessionStorage.getItem(TOKEN_KEY) : null;
    } catch (_) {
      return null;
    }
  }

  _welcome(msg, token) {
    if (token && token === this._storedToken()) storeToken(null);  // used: it cannot serve again
    if (typeof msg.resume === "string" && msg.resume) {
      this._resume = msg.resume;
      storeResume(msg.resume);
    }
    this._attempt = 0;
    this.session = msg.session;
    this.user = msg.user || null;
    this.space = msg.space || null;
    this.widgets = Array.isArray(msg.widgets) ? msg.widgets : [];
    this.rooms = Array.isArray(msg.rooms) ? msg.rooms : [];
    this.lastError = null;
    this._setStatus("connected");
    this._emit("welcome", msg);
    const waiting = this._waiting;
    this._waiting = [];
    for (const [send] of waiting) send();
    const waiters = this._welcomeWaiters;
    this._welcomeWaiters = [];
    for (const w of waiters) w.resolve(this);
  }

  _dispatch(msg) {
    if ((msg.op === "ok" || msg.op === "error") && msg.ref !== undefined && this._pending.has(msg.ref)) {
      const p = this._pending.get(msg.ref);
      this._pending.delete(msg.ref);
      clearTimeout(p.timer);
      if (msg.op === "ok") {
        const { op: _op, ref: _ref, ...result } = msg;
        p.resolve(result);
      } else {
        p.reject(new HutopiaError(msg.code || "internal", msg.message, msg.ref));
      }
      return;
    }
    this._emit(msg.op, msg);
  }

  // The connection dropped. Reconnects after a backoff when it may (a fresh
  // token is needed: from getToken), else ends in "signed_out".
  _dropped(err, mayRetry) {
    this.lastError = err;
    const canRetry = this.reconnect && !this._stopped && (this.getToken || this._resume) && (mayRetry || this._attempt > 0 || this.status === "connected");
    if (!canRetry) {
      if (err.code === "unauthenticated") this._signedOut(err);
      else this._end(err, "closed");
      return;
    }
    for (const w of this._welcomeWaiters.splice(0)) w.reject(err);
    this._attempt += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this._attempt - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this._setStatus("reconnecting");
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  _signedOut(err) {
    this._end(err, "signed_out");
  }

  _end(err, status) {
    this.lastError = err;
    for (const [, reject] of this._waiting.splice(0)) reject(err);
    for (const w of this._welcomeWaiters.splice(0)) w.reject(err);
    this._setStatus(status);
  }

  _failAll(err) {
    for (const [ref, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(new HutopiaError(err.code, err.message, ref));
    }
    this._pending.clear();
  }

  _sendRaw(obj) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", status);
  }

  _emit(op, value) {
    const set = this._listeners.get(op);
    if (set) for (const fn of [...set]) callSafely(fn, value);
  }
}

function callSafely(fn, ...args) {
  try {
    fn(...args);
  } catch (e) {
    setTimeout(() => { throw e; });  // Report it without breaking the dispatch.
  }
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// The client that connect() made last; widgets may use it as `hutopia.client`
// or through globalThis.hutopia.
let current = null;

// Creates a client and opens it. Options: url (default ws(s)://<page host>/bus),
// token (default: the page's #token=… or the one waiting in sessionStorage),
// getToken (async function returning a fresh token, for reconnects), reconnect
// (default true), notifications (default true: show `notify` events),
// requestTimeout (ms, default 30000; 0 for none), global (default true: set
// globalThis.hutopia to the client).
export async function connect(options = {}) {
  const token = options.token || takePageToken();
  const client = new Client({ ...options, token });
  current = client;
  if (options.global !== false && typeof globalThis !== "undefined") globalThis.hutopia = client;
  if (hasWindow() && globalThis.customElements) {
    for (const el of document.querySelectorAll("hutopia-space")) if (!el.client) el.client = client;
  }
  return client.open();
}

export function currentClient() {
  return current;
}

// Shows a `notify` event: a system notification when the page may show them,
// else a toast in the page. Returns the element or Notification shown.
export function showNotification(ev) {
  const title = String(ev.title || ev.plugin || "Notification");
  const body = ev.body ? String(ev.body) : "";
  const url = safeUrl(ev.url);
  if (typeof Notification !== "undefined" && Notification.permission === "granted" &&
      (typeof document === "undefined" || document.visibilityState !== "visible")) {
    try {
      const n = new Notification(title, { body, tag: ev.plugin ? `hutopia-${ev.plugin}` : undefined });
      if (url) n.onclick = () => { window.focus(); window.location.assign(url); };
      return n;
    } catch (_) {
      // Some browsers only allow notifications from a service worker: fall back to a toast.
    }
  }
  return showToast(title, body, url);
}

function safeUrl(url) {
  if (!url || typeof url !== "string" || !hasWindow()) return null;
  try {
    const u = new URL(url, window.location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (_) {
    return null;
  }
}

function toastArea() {
  let area = document.getElementById("hutopia-toasts");
  if (!area) {
    area = document.createElement("div");
    area.id = "hutopia-toasts";
    area.setAttribute("role", "status");
    area.setAttribute("aria-live", "polite");
    Object.assign(area.style, {
      position: "fixed", right: "1rem", bottom: "1rem", zIndex: "2147483000",
      display: "flex", flexDirection: "column", gap: "0.5rem", width: "min(22rem, calc(100vw - 2rem))",
    });
    document.body.appendChild(area);
  }
  return area;
}

// A toast: the title, the body and a link, gone after a while or when closed.
export function showToast(title, body = "", url = null, { timeoutMs = 8000 } = {}) {
  if (typeof document === "undefined" || !document.body) return null;
  const toast = document.createElement("div");
  toast.className = "hutopia-toast";
  Object.assign(toast.style, {
    background: "#1f2933", color: "#fff", padding: "0.75rem 1rem", borderRadius: "0.5rem",
    boxShadow: "0 4px 16px rgba(0,0,0,.25)", font: "14px/1.4 system-ui, sans-serif",
  });
  const strong = document.createElement("strong");
  strong.textContent = title;
  toast.appendChild(strong);
  if (body) {
    const p = document.createElement("div");
    p.textContent = body;
    toast.appendChild(p);
  }
  if (url) {
    const a = document.createElement("a");
    a.href = url;
    a.textContent = "Open";
    a.style.color = "#9fd3ff";
    toast.appendChild(a);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "×";
  close.setAttribute("aria-label", "Dismiss");
  Object.assign(close.style, { float: "right", marginLeft: "0.5rem", background: "none", border: "0", color: "inherit", fontSize: "16px", cursor: "pointer" });
  close.onclick = () => toast.remove();
  toast.prepend(close);
  toastArea().appendChild(toast);
  if (timeoutMs > 0) setTimeout(() => toast.remove(), timeoutMs);
  return toast;
}

// Asks for permission to show system notifications (browsers allow it only
// from a user gesture, such as a click). Resolves with the permission.
export async function requestNotifications() {
  if (typeof Notification === "undefined") return "denied";
  if (Notification.permission !== "default") return Notification.permission;
  return Notification.requestPermission();
}

// Shows a notification from any widget: {title, body?, url?, tag?, onclick?}.
// A system notification when the page is not visible and may show them,
// else a toast in the page. Returns the Notification or the toast element.
export function notify({ title, body = "", url = null, tag, onclick } = {}) {
  const safe = safeUrl(url);
  if (typeof Notification !== "undefined" && Notification.permission === "granted" &&
      (typeof document === "undefined" || document.visibilityState !== "visible")) {
    try {
      const n = new Notification(String(title || "Notification"), { body: String(body || ""), tag });
      n.onclick = () => {
        if (hasWindow()) window.focus();
        if (onclick) onclick();
        else if (safe) window.location.assign(safe);
        n.close();
      };
      return n;
    } catch (_) {
      // Only a service worker may show them here: a toast instead.
    }
  }
  return showToast(String(title || "Notification"), String(body || ""), safe);
}

// Whether the user muted sounds (kept in localStorage, for every widget).
export function soundMuted() {
  try {
    return hasWindow() && window.localStorage.getItem(SOUND_KEY) === "1";
  } catch (_) {
    return false;
  }
}

export function setSoundMuted(on) {
  try {
    if (on) window.localStorage.setItem(SOUND_KEY, "1");
    else window.localStorage.removeItem(SOUND_KEY);
  } catch (_) {
    // No storage: the setting lasts as long as the page.
  }
  if (typeof document !== "undefined") {
    document.dispatchEvent(new CustomEvent("hutopia-sound", { detail: { muted: !!on } }));
  }
}

let audio = null;
const SOUNDS = {
  message: [[660, 0, 0.08]],
  mention: [[880, 0, 0.09], [1175, 0.11, 0.12]],
  notify: [[740, 0, 0.1], [988, 0.12, 0.1]],
  error: [[220, 0, 0.18]],
};

// Plays a short sound ("message", "mention", "notify", "error") unless the
// user muted sounds. Resolves with true when it played.
export async function playSound(kind = "notify") {
  if (soundMuted() || typeof AudioContext === "undefined") return false;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") await audio.resume();
    const now = audio.currentTime;
    for (const [freq, at, len] of SOUNDS[kind] || SOUNDS.notify) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + at);
      gain.gain.exponentialRampToValueAtTime(0.15, now + at + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + at + len);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + at);
      osc.stop(now + at + len + 0.02);
    }
    return true;
  } catch (_) {
    return false;  // Browsers refuse audio before a user gesture.
  }
}

// Opens the profile card of a user ({id, name, avatar?}). A widget that shows
// richer cards (the chat's, with a direct message and moderation) handles the
// cancelable "hutopia-profile" event on document; otherwise the SDK shows a
// small card of its own. Returns the dialog it showed, or null.
export function openProfile(user) {
  if (!user || typeof document === "undefined") return null;
  const ev = new CustomEvent("hutopia-profile", { detail: { user }, cancelable: true });
  if (!document.dispatchEvent(ev)) return null;
  let d = document.getElementById("hutopia-profile");
  if (!d) {
    d = document.createElement("dialog");
    d.id = "hutopia-profile";
    d.setAttribute("aria-labelledby", "hutopia-profile-name");
    Object.assign(d.style, { borderRadius: "0.75rem", padding: "1.25rem", maxWidth: "22rem" });
    document.body.appendChild(d);
  }
  const form = document.createElement("form");
  form.method = "dialog";
  const name = document.createElement("h2");
  name.id = "hutopia-profile-name";
  name.textContent = String(user.name || user.id);
  const id = document.createElement("p");
  id.textContent = String(user.id);
  const close = document.createElement("button");
  close.textContent = "Close";
  const url = safeUrl(user.avatar);
  if (url) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = "";
    img.width = 64;
    img.height = 64;
    img.style.borderRadius = "50%";
    form.append(img);
  }
  form.append(name, id, close);
  d.replaceChildren(form);
  if (!d.open) d.showModal();
  return d;
}

// A page of the relay this space trusts (from /.well-known/hutopia), or null.
export async function relayPage(path) {
  try {
    const res = await fetch("/.well-known/hutopia", { credentials: "omit" });
    const info = await res.json();
    if (!info || typeof info.relay !== "string" || !info.relay) return null;
    const u = new URL(path, info.relay);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (_) {
    return null;
  }
}

// <hutopia-space>: a plain container whose `client` property is the page's
// client, so a widget inside can use `this.closest("hutopia-space").client`.
if (typeof customElements !== "undefined" && typeof HTMLElement !== "undefined" && !customElements.get("hutopia-space")) {
  customElements.define("hutopia-space", class extends HTMLElement {
    get client() {
      return this._client || current;
    }
    set client(c) {
      this._client = c;
    }
  });
}
