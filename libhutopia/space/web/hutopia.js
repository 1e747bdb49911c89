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

  // Calls fn(event) for every frame the space sends with this op ("message",
  // "widget", "notify", …) and for the SDK's own events: "status" (fn gets the
  // new status), "welcome", "close" ({code, reason}). Returns a function that
  // removes the listener.
  on(op, fn) {
    if (!this._listeners.has(op)) this._listeners.set(op, new Set());
    this._listeners.get(op).add(fn);
    return () => this.off(op, fn);
  }

  off(op, fn) {
    const set = this._listeners.get(op);
    if (set) set.delete(fn);
  }

  // Calls fn(data, event) for every `widget` event from this plugin.
  onWidget(plugin, fn) {
    if (!this._widgetListeners.has(plugin)) this._widgetListeners.set(plugin, new Set());
    this._widgetListeners.get(plugin).add(fn);
    return () => this.offWidget(plugin, fn);
  }

  offWidget(plugin, fn) {
    const set = this._widgetListeners.get(plugin);
    if (set) set.delete(fn);
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
    if (!token && this.getToken) {
      try {
        token = await this.getToken();
      } catch (e) {
        this.lastError = e;
      }
    }
    if (this._stopped) return;
    if (!token) {
      this._signedOut(new HutopiaError("unauthenticated", "no token: sign in first"));
      return;
    }
    let ws;
    try {
      ws = new this.WebSocket(this.url || defaultUrl(), this.protocols);
    } catch (e) {
      this._dropped(new HutopiaError("unavailable", String(e && e.message ? e.message : e)), false);
      return;
    }
    this._ws = ws;
    let welcomed = false;
    let refusal = null;
    ws.onopen = () => {
      ws.send(JSON.stringify({ op: "hello", token }));
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
        if (token === this._storedToken()) storeToken(null);  // spent or refused
        if (this.getToken) this._dropped(err, true);
        else this._signedOut(err);
        return;
      }
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
    if (token === this._storedToken()) storeToken(null);  // used: it cannot serve again
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
    const canRetry = this.reconnect && !this._stopped && this.getToken && (mayRetry || this._attempt > 0 || this.status === "connected");
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
