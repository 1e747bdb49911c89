// <hut-chat>: the chat client of a space over the widget bus (docs/contract.md
// section 2): rooms, the timeline, the composer, members, moderation,
// notifications, files, reconnects. Plain ES modules and a custom element;
// message text is only ever set as text, never parsed as HTML.

import {
  continues, dayKey, dayLabel, fullTime, hue, initials, linkify, mentions, MUTE_DURATIONS, rank,
  refusal, roomName, sizeLabel, timeLabel, untilLabel,
} from "./format.js";
import {
  badgeTitle, dmName, dmUser, groupRooms, MessageList, moderationRights, Outbox, sortMembers, totalUnread,
} from "./model.js";
import { Timeline, WINDOW } from "./timeline.js";

const PLUGIN = "chat";
const PAGE = 50;                 // messages per history page
const MEMORY = 4 * WINDOW;       // messages kept in memory beyond the DOM window
const TYPING_SEND_MS = 3000;     // at most one `typing` per this while typing
const TYPING_SHOW_MS = 6000;     // how long a `typing` event shows
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const LAST_ROOM_KEY = "hutopia.chat.room";

// Creates an element: h("button", {class: "x", onclick: fn}, "text", child).
// Strings become text nodes; attributes are set as attributes (or as
// properties for on* handlers and a few DOM properties).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "hidden" || k === "disabled" || k === "checked" || k === "value") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return el;
}

// Small line icons (the system may have no emoji font).
const ICONS = {
  clip: "M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l7.8-7.8a4 4 0 0 0-5.7-5.7L5.8 11.4a6 6 0 0 0 8.5 8.5l6.4-6.4",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v10H5z",
  file: "M14 3H6v18h12V7zM14 3v4h4",
  close: "M6 6l12 12M18 6L6 18",
};

function icon(name) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon-svg");
  const p = document.createElementNS(NS, "path");
  p.setAttribute("d", ICONS[name]);
  svg.append(p);
  return svg;
}

function safeHref(url) {
  try {
    const u = new URL(url, document.baseURI);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (_) {
    return null;
  }
}

function avatar(user, size = "md") {
  const name = (user && (user.name || user.id)) || "?";
  const el = h("span", { class: `avatar ${size}`, "aria-hidden": "true" });
  el.style.setProperty("--hue", hue(user && user.id));
  const src = user && user.avatar ? safeHref(user.avatar) : null;
  if (src) {
    const img = h("img", { src, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => img.replaceWith(document.createTextNode(initials(name))));
    el.append(img);
  } else {
    el.textContent = initials(name);
  }
  return el;
}

function textNodes(text) {
  return linkify(text).map((seg) => {
    const href = seg.href && safeHref(seg.href);
    return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, seg.text) : seg.text;
  });
}

// Room state kept while the widget lives.
class RoomState {
  constructor(info) {
    this.info = info;           // the `rooms` entry
    this.list = new MessageList();
    this.outbox = new Outbox();
    this.members = new Map();   // id -> {id, name, role, online, muted, avatar?, until?}
    this.memberCount = null;
    this.membersMore = false;
    this.readSeq = 0;
    this.unreadAfter = null;    // where the unread line goes (a seq), for this visit
    this.joined = false;        // `join` answered in this connection
    this.mutedAll = false;
    this.typers = new Map();    // id -> {user, until}
  }

  get role() {
    return this.info.role || null;
  }
}

class HutChat extends HTMLElement {
  connectedCallback() {
    if (this._started) return;
    this._started = true;
    this.client = this.hutopia || globalThis.hutopia;
    this.rooms = new Map();   // room -> RoomState
    this.current = null;      // the open room's name
    this.editing = null;      // seq of the message being edited
    this._typingSent = 0;
    this._offs = [];
    this._baseTitle = document.title;
    this.buildDom();
    if (!this.client) {
      this.say("Not connected to a space.");
      return;
    }
    this.listen();
    if (this.client.status === "connected") this.onWelcome(true);
  }

  disconnectedCallback() {
    for (const off of this._offs) off();
    this._offs = [];
    clearInterval(this._typingTimer);
    this._started = false;
  }

  // ---------------------------------------------------------------- DOM

  buildDom() {
    const root = this.shadowRoot || this.attachShadow({ mode: "open" });
    const css = new URL("chat.css", import.meta.url).href;
    const $ = {};
    const ref = (name, el) => {
      $[name] = el;
      return el;
    };
    this.$ = $;
    root.replaceChildren(
      h("link", { rel: "stylesheet", href: css }),
      ref("chat", h("div", { class: "chat", part: "chat" },
        ref("roomsPanel", h("nav", { class: "rooms panel", id: "rooms-panel", "aria-label": "Rooms" },
          h("div", { class: "panel-head" },
            h("h2", {}, "Rooms"),
            ref("newRoom", h("button", { type: "button", class: "small", "aria-expanded": "false",
              "aria-controls": "create-form", onclick: () => this.toggleCreate() }, "New room")),
            h("button", { type: "button", class: "small close-panel", "aria-label": "Close the room list",
              onclick: () => this.showPanel(null) }, icon("close"))),
          ref("createForm", h("form", { id: "create-form", class: "create", hidden: true, "aria-label": "New room",
            onsubmit: (e) => { e.preventDefault(); this.createRoom(); } },
            h("label", { for: "new-name" }, "Name"),
            ref("newName", h("input", { id: "new-name", name: "room", required: true, maxlength: "64",
              autocomplete: "off", placeholder: "e.g. lobby" })),
            h("label", { for: "new-topic" }, "Topic ", h("span", { class: "hint" }, "(optional)")),
            ref("newTopic", h("input", { id: "new-topic", name: "topic", maxlength: "200", autocomplete: "off" })),
            h("label", { class: "check" },
              ref("newPrivate", h("input", { type: "checkbox", name: "private" })), " Private (invited members only)"),
            h("div", { class: "row" },
              h("button", { type: "submit", class: "primary" }, "Create"),
              h("button", { type: "button", onclick: () => this.toggleCreate(false) }, "Cancel")),
            ref("createError", h("p", { class: "error", role: "alert" })))),
          h("h3", { id: "h-mine" }, "Your rooms"),
          ref("mine", h("ul", { id: "mine", class: "room-list", "aria-labelledby": "h-mine" })),
          h("h3", { id: "h-dms" }, "Direct messages"),
          ref("dms", h("ul", { id: "dms", class: "room-list", "aria-labelledby": "h-dms" })),
          h("h3", { id: "h-open" }, "Public rooms"),
          ref("open", h("ul", { id: "open", class: "room-list", "aria-labelledby": "h-open" })),
          h("div", { class: "settings" },
            ref("notifyButton", h("button", { type: "button", class: "small", hidden: true,
              onclick: () => this.askNotifications() }, "Turn on notifications")),
            h("label", { class: "check" },
              ref("soundMute", h("input", { type: "checkbox", onchange: (e) => this.setSoundMuted(e.target.checked) })),
              " Mute sounds")))),
        ref("roomSection", h("section", { class: "room", "aria-labelledby": "room-title" },
          h("header", { class: "room-head" },
            h("button", { type: "button", class: "small toggle", id: "show-rooms", "aria-controls": "rooms-panel",
              "aria-expanded": "false", onclick: () => this.showPanel("rooms") },
              "Rooms", ref("roomsBadge", h("span", { class: "badge", hidden: true }))),
            h("div", { class: "title" },
              ref("roomTitle", h("h2", { id: "room-title" }, "Chat")),
              ref("roomTopic", h("p", { class: "topic" }))),
            ref("conn", h("span", { class: "conn", role: "status", "data-state": "connecting" }, "Connecting…")),
            ref("muteAll", h("button", { type: "button", class: "small", hidden: true,
              onclick: () => this.toggleMuteAll() }, "Mute everyone")),
            ref("leave", h("button", { type: "button", class: "small", hidden: true, onclick: () => this.leaveRoom() },
              "Leave")),
            ref("showMembers", h("button", { type: "button", class: "small toggle", id: "show-members",
              "aria-controls": "members-panel", "aria-expanded": "false", onclick: () => this.showPanel("members") },
              "Members"))),
          ref("banner", h("p", { class: "banner", role: "alert", hidden: true })),
          ref("scroller", h("div", { class: "scroller", tabindex: "0", role: "region", "aria-label": "Messages" },
            ref("startNote", h("p", { class: "start-note", hidden: true })),
            ref("rows", h("ol", { class: "rows", "aria-label": "Messages" })),
            ref("outbox", h("ol", { class: "rows outbox", "aria-label": "Your messages being sent" })),
            ref("empty", h("div", { class: "empty" },
              h("p", {}, "Pick a room on the left, or create one to start talking."))))),
          ref("jump", h("button", { type: "button", class: "jump", hidden: true, onclick: () => this.jumpToEnd() },
            "Jump to the newest messages")),
          ref("typing", h("p", { class: "typing", "aria-live": "polite" })),
          ref("composer", h("form", { class: "composer", "aria-label": "Write a message",
            onsubmit: (e) => { e.preventDefault(); this.submit(); } },
            ref("editBar", h("div", { class: "edit-bar", hidden: true },
              h("span", {}, "Editing your message"),
              h("button", { type: "button", class: "small danger", onclick: () => this.confirmDelete(this.editing) },
                "Delete"),
              h("button", { type: "button", class: "small", onclick: () => this.stopEditing() }, "Cancel"))),
            ref("joinBar", h("div", { class: "join-bar", hidden: true },
              ref("joinText", h("span", {})),
              h("button", { type: "button", class: "primary", onclick: () => this.joinCurrent() }, "Join"))),
            ref("note", h("p", { class: "note", role: "status" })),
            h("div", { class: "composer-row" },
              ref("attach", h("button", { type: "button", class: "icon", "aria-label": "Attach a file",
                title: "Attach a file", onclick: () => this.$.file.click() }, icon("clip"))),
              ref("file", h("input", { type: "file", multiple: true, hidden: true, tabindex: "-1",
                "aria-label": "File to send", onchange: (e) => { this.sendFiles([...e.target.files]); e.target.value = ""; } })),
              ref("text", h("textarea", { rows: "1", "aria-label": "Message", placeholder: "Write a message",
                maxlength: "16000", enterkeyhint: "send" })),
              ref("send", h("button", { type: "submit", class: "primary" }, "Send"))),
            h("p", { class: "hint keys" }, "Enter sends, Shift+Enter starts a new line, Up edits your last message."))))),
        ref("membersPanel", h("section", { class: "members panel", id: "members-panel", "aria-labelledby": "members-title" },
          h("div", { class: "panel-head" },
            h("h2", { id: "members-title" }, "Members ", ref("memberCount", h("span", { class: "count" }))),
            h("button", { type: "button", class: "small close-panel", "aria-label": "Close the member list",
              onclick: () => this.showPanel(null) }, icon("close"))),
          ref("members", h("ul", { class: "member-list", "aria-labelledby": "members-title" })),
          ref("moreMembers", h("button", { type: "button", class: "small", hidden: true,
            onclick: () => this.loadMembers(true) }, "Show more members")))),
        ref("live", h("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "false" })),
        ref("profile", h("dialog", { class: "profile", "aria-labelledby": "profile-name" })),
        ref("confirm", h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
          h("form", { method: "dialog" },
            h("h2", { id: "confirm-title" }, "Delete this message?"),
            ref("confirmText", h("p", { class: "quote" })),
            h("p", {}, "Everyone in the room stops seeing it. This cannot be undone."),
            h("div", { class: "row" },
              h("button", { value: "cancel", autofocus: true }, "Cancel"),
              h("button", { value: "delete", class: "danger" }, "Delete"))))))),
    );

    this.timeline = new Timeline($.scroller, $.rows, $.outbox, {
      renderRow: (m, prev) => this.renderRow(m, prev),
      renderPending: (p) => this.renderPending(p),
      needOlder: () => this.loadOlder(),
      needNewer: () => this.loadNewer(),
      atEnd: (at) => this.onAtEnd(at),
    });

    const t = $.text;
    t.addEventListener("keydown", (e) => this.onComposerKey(e));
    t.addEventListener("input", () => {
      this.autosize();
      this.sendTyping();
    });
    t.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData ? e.clipboardData.files : [])];
      if (files.length) {
        e.preventDefault();
        this.sendFiles(files);
      }
    });
    $.scroller.addEventListener("dragover", (e) => { if (this.canWrite()) e.preventDefault(); });
    $.scroller.addEventListener("drop", (e) => {
      const files = [...(e.dataTransfer ? e.dataTransfer.files : [])];
      if (files.length && this.canWrite()) {
        e.preventDefault();
        this.sendFiles(files);
      }
    });
    $.chat.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.$.chat.dataset.panel) {
        const which = this.$.chat.dataset.panel;
        this.showPanel(null);
        (which === "rooms" ? this.$.chat.querySelector("#show-rooms") : this.$.showMembers).focus();
      }
    });
    this._typingTimer = setInterval(() => this.expireTypers(), 1000);
    $.soundMute.checked = this.soundMuted();
    this.updateNotifyButton();
    this.showEmpty(true);
  }

  showPanel(which) {
    const chat = this.$.chat;
    if (!which || chat.dataset.panel === which) delete chat.dataset.panel;
    else chat.dataset.panel = which;
    this.$.chat.querySelector("#show-rooms").setAttribute("aria-expanded", String(chat.dataset.panel === "rooms"));
    this.$.showMembers.setAttribute("aria-expanded", String(chat.dataset.panel === "members"));
    if (chat.dataset.panel === "rooms") this.$.roomsPanel.querySelector("h2").setAttribute("tabindex", "-1");
    if (chat.dataset.panel) {
      const panel = chat.dataset.panel === "rooms" ? this.$.roomsPanel : this.$.membersPanel;
      const first = panel.querySelector("button, a, input");
      if (first) first.focus();
    }
  }

  showEmpty(on) {
    this.$.empty.hidden = !on;
    this.$.composer.hidden = on;
    this.$.leave.hidden = on || !this.state()?.role;
    this.$.showMembers.hidden = on;
  }

  say(text) {
    const b = this.$.banner;
    b.textContent = text || "";
    b.hidden = !text;
    clearTimeout(this._bannerTimer);
    if (text) this._bannerTimer = setTimeout(() => { b.hidden = true; }, 12000);
  }

  announce(text) {
    // A fresh node each time so that screen readers read it.
    const p = h("p", {}, text);
    this.$.live.append(p);
    while (this.$.live.childElementCount > 5) this.$.live.firstElementChild.remove();
  }

  // ---------------------------------------------------------------- bus

  listen() {
    const c = this.client;
    const on = (op, fn) => this._offs.push(c.on(op, fn));
    on("welcome", () => this.onWelcome(false));
    on("status", (s) => this.showConnection(s));
    on("message", (m) => this.onMessage(m));
    on("edited", (e) => this.onEdited(e));
    on("deleted", (e) => this.onDeleted(e));
    on("joined", (e) => this.onMember(e.room, { ...e.user, online: true, role: "member" }, true));
    on("left", (e) => this.onLeft(e));
    on("presence", (e) => this.onPresence(e));
    on("typing", (e) => this.onTyping(e));
    on("read", (e) => this.onRead(e));
    on("kicked", (e) => this.onKicked(e));
    on("muted", (e) => this.onMuted(e, true));
    on("unmuted", (e) => this.onMuted(e, false));
    on("muted_all", (e) => this.onMutedAll(e));
    on("role", (e) => this.onRole(e));
    on("room_removed", (e) => this.onRoomRemoved(e));
    const onProfile = (e) => {
      if (!e.detail || !e.detail.user) return;
      e.preventDefault();
      this.openProfile(e.detail.user);
    };
    document.addEventListener("hutopia-profile", onProfile);
    this._offs.push(() => document.removeEventListener("hutopia-profile", onProfile));
    const onVisible = () => {
      if (document.visibilityState === "visible") this.timeline.onScroll();
    };
    // New public rooms have no event: the list is asked for again now and then.
    const refresh = setInterval(() => {
      if (document.visibilityState === "visible" && this.client.status === "connected") this.refreshRooms();
    }, 60000);
    this._offs.push(() => clearInterval(refresh));
    document.addEventListener("visibilitychange", onVisible);
    this._offs.push(() => document.removeEventListener("visibilitychange", onVisible));
    this.showConnection(c.status);
  }

  showConnection(status) {
    const words = {
      connected: "", connecting: "Connecting…", reconnecting: "Offline: reconnecting…",
      closed: "Offline", signed_out: "Signed out", idle: "Offline",
    };
    const el = this.$.conn;
    el.dataset.state = status;
    el.textContent = words[status] ?? status;
    el.hidden = status === "connected";
    this.$.chat.dataset.online = String(status === "connected");
    this.updateComposer();
  }

  get me() {
    return (this.client && this.client.user) || { id: "", name: "" };
  }

  state(room = this.current) {
    return room ? this.rooms.get(room) || null : null;
  }

  async onWelcome(first) {
    for (const s of this.rooms.values()) s.joined = false;
    // Back after a drop: until the catch-up has read the log past what we
    // have, live messages of the open room are held, not placed (the log has
    // them; placing one now would hide the gap before it).
    const open = !first && this.state();
    if (open && open.list.loaded) {
      open.list.hasNewer = true;
      open.held = [];
    }
    await this.refreshRooms();
    if (!this.current) {
      let last = null;
      try {
        last = localStorage.getItem(LAST_ROOM_KEY);
      } catch (_) {
        // No storage.
      }
      const { mine, dms, open } = groupRooms([...this.rooms.values()].map((s) => s.info));
      const pick = (last && this.rooms.get(last)) ? last : (mine[0] || dms[0] || open[0] || {}).room;
      if (pick) await this.openRoom(pick, { focus: false });
    } else if (!first) {
      await this.catchUp();
    }
  }

  async refreshRooms() {
    let list;
    try {
      list = await this.client.listRooms();
    } catch (e) {
      this.say(refusal(e, "Could not list the rooms"));
      return;
    }
    const seen = new Set();
    for (const info of list) {
      if (!info || typeof info.room !== "string") continue;
      seen.add(info.room);
      const s = this.rooms.get(info.room);
      if (s) s.info = { ...s.info, ...info, role: info.role || null };
      else this.rooms.set(info.room, new RoomState({ ...info, role: info.role || null }));
    }
    for (const [name, s] of this.rooms) {
      if (!seen.has(name) && name !== this.current) this.rooms.delete(name);
      else if (!seen.has(name)) s.info.role = null;
    }
    this.renderRooms();
  }

  // After a reconnect: the messages missed while offline, with `after`.
  async catchUp() {
    const s = this.state();
    if (!s) return;
    const room = this.current;
    try {
      if (s.info.role) await this.join(room, s);
      if (!s.list.loaded) {
        await this.loadLatest(room, s);
        this.timeline.show(s.list, s.outbox);
        return;
      }
      const stick = this.timeline.showsEnd && this.timeline.nearBottom(48);
      const seen = [];
      for (let pages = 0; pages < 40; pages++) {
        const after = s.list.lastSeq() ?? 0;
        const page = await this.fetchAfter(room, after, 200);
        const msgs = page.messages || [];
        seen.push(...msgs);
        const before = s.list.length;
        // hasNewer stays set while more pages wait, and after 40 of them.
        s.list.addNewer(msgs, !!page.more || pages === 39);
        for (let i = before; i < s.list.length; i++) this.timeline.added(i);
        if (!page.more) break;
      }
      // What came live meanwhile: placed now, each once (live() replaces a
      // message it already has).
      for (const m of s.held || []) {
        const r = s.list.live(m);
        if (r === "added") this.timeline.added(s.list.search(m.seq));
        else if (r === "updated") this.replaceRow(m.seq);
      }
      s.held = null;
      // Posts whose answer was lost in the drop but that were stored.
      if (s.outbox.settleWith(seen, this.me.id).length) this.timeline.renderOutbox();
      if (stick) this.timeline.scrollToEnd();
      this.timeline.onScroll();
    } catch (e) {
      // Live messages go on being placed; the gap shows as newer pages to
      // fetch when scrolled to.
      s.held = null;
      this.say(refusal(e, "Could not catch up with the room"));
    }
    // Posts that failed because of the drop are sent again.
    for (const p of [...s.outbox.items]) if (p.state === "failed" && p.error && p.error.code === "unavailable") this.sendPending(room, p);
  }

  // ---------------------------------------------------------------- rooms

  renderRooms() {
    const infos = [...this.rooms.values()].map((s) => s.info);
    const { mine, dms, open } = groupRooms(infos);
    const item = (info, label, extra) => {
      const s = this.rooms.get(info.room);
      const unread = (info.role || info.dm) && info.unread > 0 ? info.unread : 0;
      const cur = info.room === this.current;
      return h("li", {},
        h("button", { type: "button", class: `room-item${cur ? " current" : ""}${unread ? " has-unread" : ""}`,
          "aria-current": cur ? "true" : null, "data-room": info.room,
          onclick: () => { this.openRoom(info.room); this.showPanel(null); } },
          extra || h("span", { class: "hash", "aria-hidden": "true" }, info.private ? icon("lock") : "#"),
          h("span", { class: "room-name" }, label),
          unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, unread > 99 ? "99+" : String(unread)) : null,
          info.private && !info.dm ? h("span", { class: "sr-only" }, " (private)") : null));
      void s;
    };
    this.$.mine.replaceChildren(...mine.map((r) => item(r, r.room)));
    this.$.dms.replaceChildren(...dms.map((r) => item(r, dmName(r), avatar(dmUser(r), "sm"))));
    this.$.open.replaceChildren(...open.map((r) => item(r, r.room)));
    if (!mine.length) this.$.mine.append(h("li", { class: "none" }, "None yet"));
    if (!dms.length) this.$.dms.append(h("li", { class: "none" }, "None yet"));
    if (!open.length) this.$.open.append(h("li", { class: "none" }, "No other public rooms"));
    this.updateTitle();
  }

  updateTitle() {
    const total = totalUnread([...this.rooms.values()].map((s) => s.info));
    if (!this._baseTitle || document.title.replace(/^\(\d+\+?\)\s*/, "") !== this._baseTitle.replace(/^\(\d+\+?\)\s*/, "")) {
      this._baseTitle = document.title.replace(/^\(\d+\+?\)\s*/, "");
    }
    document.title = badgeTitle(this._baseTitle, total);
    const b = this.$.roomsBadge;
    b.hidden = !total;
    b.textContent = total ? String(total) : "";
    b.setAttribute("aria-label", `${total} unread`);
  }

  toggleCreate(open) {
    const f = this.$.createForm;
    const show = open ?? f.hidden;
    f.hidden = !show;
    this.$.newRoom.setAttribute("aria-expanded", String(show));
    this.$.createError.textContent = "";
    if (show) this.$.newName.focus();
    else this.$.newRoom.focus();
  }

  async createRoom() {
    const room = roomName(this.$.newName.value);
    if (!room) {
      this.$.createError.textContent = "A room needs a name.";
      return;
    }
    const fields = { room, private: this.$.newPrivate.checked };
    const topic = this.$.newTopic.value.trim();
    if (topic) fields.topic = topic;
    try {
      const r = await this.client.request("create", fields);
      this.$.newName.value = "";
      this.$.newTopic.value = "";
      this.$.newPrivate.checked = false;
      this.$.createForm.hidden = true;
      this.$.newRoom.setAttribute("aria-expanded", "false");
      await this.refreshRooms();
      await this.openRoom(r.room || room);
    } catch (e) {
      this.$.createError.textContent = refusal(e, `Could not create #${room}`);
    }
  }

  async join(room, s) {
    const r = await this.client.request("join", { room });
    s.joined = true;
    s.info.role = r.role || s.info.role || "member";
    if (Number.isFinite(r.last_seq)) s.info.last_seq = r.last_seq;
    if (Number.isFinite(r.read_seq)) s.readSeq = Math.max(s.readSeq, r.read_seq);
    s.members.clear();
    for (const m of r.members || []) s.members.set(m.id, { ...m });
    s.memberCount = Number.isFinite(r.member_count) ? r.member_count : s.members.size;
    s.membersMore = !!r.more;
    return r;
  }

  async joinCurrent() {
    const room = this.current;
    const s = this.state();
    if (!s) return;
    try {
      await this.join(room, s);
      await this.refreshRooms();
      this.renderHeader();
      this.renderMembers();
      this.updateComposer();
      this.$.text.focus();
    } catch (e) {
      this.say(refusal(e, `Could not join #${room}`));
    }
  }

  async leaveRoom() {
    const room = this.current;
    if (!room) return;
    try {
      await this.client.request("leave", { room });
      this.say(`You left #${room}.`);
      this.closeRoom();
      await this.refreshRooms();
    } catch (e) {
      this.say(refusal(e, `Could not leave #${room}`));
    }
  }

  closeRoom() {
    this.current = null;
    this.timeline.clear();
    this.$.roomTitle.textContent = "Chat";
    this.$.roomTopic.textContent = "";
    this.$.members.replaceChildren();
    this.$.memberCount.textContent = "";
    this.$.muteAll.hidden = true;
    this.showEmpty(true);
    this.renderRooms();
  }

  async openRoom(room, { focus = true } = {}) {
    let s = this.rooms.get(room);
    if (!s) {
      s = new RoomState({ room, role: null, unread: 0 });
      this.rooms.set(room, s);
    }
    this.stopEditing();
    this.current = room;
    try {
      localStorage.setItem(LAST_ROOM_KEY, room);
    } catch (_) {
      // No storage.
    }
    s.typers.clear();
    this.renderTyping();
    this.showEmpty(false);
    this.renderRooms();
    this.renderHeader();
    this.timeline.clear();
    this.$.startNote.hidden = true;
    this.$.text.value = this._drafts?.get(room) || "";
    try {
      if (s.info.role || s.info.dm) await this.join(room, s);
    } catch (e) {
      if (this.current === room) this.say(refusal(e, `Could not open #${room}`));
    }
    if (this.current !== room) return;
    this.renderHeader();
    this.renderMembers();
    this.updateComposer();
    // The unread line sits after the last message read, for this visit.
    const last = s.info.last_seq ?? 0;
    s.unreadAfter = s.info.role && s.readSeq < last ? s.readSeq : null;
    try {
      await this.loadLatest(room, s);
    } catch (e) {
      if (this.current === room) this.say(refusal(e, `Could not load #${room}`));
      return;
    }
    if (this.current !== room) return;
    // With many unread messages, load back to the unread line (a few pages).
    let pages = 0;
    while (s.unreadAfter !== null && s.list.hasOlder && (s.list.firstSeq() ?? 0) > s.unreadAfter + 1 && pages < 4) {
      await this.loadOlder(room);
      pages++;
    }
    // The unread line when it is loaded; else the newest messages (the line
    // shows when scrolled up to).
    const lineLoaded = s.unreadAfter !== null && (s.list.firstSeq() ?? Infinity) <= s.unreadAfter + 1;
    this.timeline.show(s.list, s.outbox, lineLoaded ? s.unreadAfter + 1 : null);
    this.updateStartNote();
    if (focus) this.$.text.focus({ preventScroll: true });
  }

  renderHeader() {
    const s = this.state();
    if (!s) return;
    const label = s.info.dm ? dmName(s.info) : `#${this.current}`;
    this.$.roomTitle.textContent = label;
    this.$.roomTopic.textContent = s.info.dm ? "Direct message" : (s.info.topic || "");
    this.$.roomSection.setAttribute("aria-label", `Room ${label}`);
    this.$.scroller.setAttribute("aria-label", `Messages in ${label}`);
    this.$.text.setAttribute("aria-label", `Message ${label}`);
    this.$.text.placeholder = `Message ${label}`;
    this.$.leave.hidden = !s.info.role || !!s.info.dm;
    this.$.muteAll.hidden = rank(s.info.role) < 1 || !!s.info.dm;
    this.$.muteAll.textContent = s.mutedAll ? "Let everyone write" : "Mute everyone";
    this.$.muteAll.setAttribute("aria-pressed", String(s.mutedAll));
  }

  updateStartNote() {
    const s = this.state();
    const n = this.$.startNote;
    if (!s || s.list.hasOlder || this.timeline.start > 0) {
      n.hidden = true;
      return;
    }
    n.hidden = false;
    n.textContent = s.info.dm ? `This is the start of your conversation with ${dmName(s.info)}.`
      : `This is the start of #${this.current}.${s.info.topic ? ` ${s.info.topic}` : ""}`;
  }

  // ---------------------------------------------------------------- history

  async loadLatest(room, s) {
    const page = await this.client.request("history", { room, limit: PAGE });
    s.list.setLatest(page.messages || [], page.more);
    const last = s.list.lastSeq();
    if (last !== null) s.info.last_seq = Math.max(s.info.last_seq ?? 0, last);
  }

  // An older page before the first message in memory; returns how many were added.
  async loadOlder(room = this.current) {
    const s = this.state(room);
    if (!s || !s.list.hasOlder) return 0;
    const before = s.list.firstSeq();
    const fields = { room, limit: PAGE };
    if (before !== null) fields.before = before;
    let page;
    try {
      page = await this.client.request("history", fields);
    } catch (e) {
      this.say(refusal(e, "Could not load older messages"));
      return 0;
    }
    // The page joins the list only at the first message it was asked for:
    // a jump to the newest or a trim while it was on its way makes it a gap.
    if (this.state(room) !== s || s.list.firstSeq() !== before) return 0;
    const n = s.list.addOlder(page.messages || [], page.more);
    // Memory stays bounded: the newest part far below the window goes; it
    // comes back with `history after` when scrolled to.
    if (room === this.current && s.list.length > MEMORY + WINDOW && this.timeline.end + n < s.list.length - WINDOW) {
      s.list.trim(Math.max(this.timeline.end + n + WINDOW, MEMORY), "oldest");
    }
    this.updateStartNote();
    return n;
  }

  // The messages after `after`, with no gap: when the page starts beyond
  // after + 1 (deleted messages, or a space that does not know `after`), the
  // hole is checked with `before` pages. Resolves with {messages, more}.
  async fetchAfter(room, after, limit = PAGE) {
    const page = await this.client.request("history", { room, after, limit });
    let msgs = (page.messages || []).filter((m) => m.seq > after);
    let more = !!page.more;
    for (let i = 0; i < 20 && msgs.length && msgs[0].seq > after + 1; i++) {
      const back = await this.client.request("history", { room, before: msgs[0].seq, limit: 200 });
      const missing = (back.messages || []).filter((m) => m.seq > after && m.seq < msgs[0].seq);
      msgs = missing.concat(msgs);
      if (!back.more || missing.length < (back.messages || []).length) break;
    }
    const s = this.state(room);
    const last = msgs.length ? msgs[msgs.length - 1].seq : after;
    if (s && Number.isFinite(s.info.last_seq) && last >= s.info.last_seq) more = false;
    return { messages: msgs, more };
  }

  async loadNewer() {
    const room = this.current;
    const s = this.state();
    if (!s || !s.list.hasNewer) return;
    const after = s.list.lastSeq();
    let page;
    try {
      page = await this.fetchAfter(room, after ?? 0);
    } catch (e) {
      this.say(refusal(e, "Could not load newer messages"));
      return;
    }
    // As in loadOlder: only where it was asked for.
    if (this.state(room) !== s || s.list.lastSeq() !== after) return;
    s.list.addNewer(page.messages || [], page.more);
    if (s.list.length > MEMORY + WINDOW && this.timeline.start > WINDOW) {
      const drop = Math.min(this.timeline.start - WINDOW, s.list.length - MEMORY);
      if (drop > 0) {
        s.list.trim(s.list.length - drop, "newest");
        this.timeline.start -= drop;
        this.timeline.end -= drop;
      }
    }
    this.updateStartNote();
  }

  async jumpToEnd() {
    const s = this.state();
    if (!s) return;
    if (s.list.hasNewer) {
      await this.loadLatest(this.current, s);
      this.timeline.show(s.list, s.outbox);
    } else {
      this.timeline.show(s.list, s.outbox);
    }
    this.$.jump.hidden = true;
    this.$.text.focus({ preventScroll: true });
  }

  onAtEnd(at) {
    const s = this.state();
    if (!s) return;
    this.$.jump.hidden = at || !s.list.loaded || (this.timeline.showsEnd && this.timeline.nearBottom(400));
    this.updateStartNote();
    if (!at || document.visibilityState !== "visible" || !s.info.role) return;
    const last = s.list.lastSeq();
    if (last === null) return;
    if (last > s.readSeq || s.info.unread > 0) {
      s.readSeq = Math.max(s.readSeq, last);
      s.info.unread = 0;
      this.renderRooms();
      this.client.request("read", { room: this.current, seq: last }).then((r) => {
        if (r && Number.isFinite(r.unread)) {
          s.info.unread = r.unread;
          this.renderRooms();
        }
      }, () => {});
    }
  }

  // ---------------------------------------------------------------- rows

  renderRow(m, prev) {
    const s = this.state();
    const own = m.from && m.from.id === this.me.id;
    const newDay = !prev || dayKey(prev.ts) !== dayKey(m.ts);
    const unreadLine = s && s.unreadAfter !== null && m.seq > s.unreadAfter && (!prev || prev.seq <= s.unreadAfter);
    const cont = !newDay && !unreadLine && continues(prev, m);
    const mine = !own && mentions(m.text, this.me);
    const li = h("li", { class: `msg${cont ? " cont" : ""}${own ? " own" : ""}${mine ? " mention" : ""}`, "data-seq": m.seq });
    if (newDay) li.append(h("div", { class: "day", role: "separator" }, h("span", {}, dayLabel(m.ts))));
    if (unreadLine) li.append(h("div", { class: "unread-line", role: "separator" }, h("span", {}, "New messages")));
    const from = m.from || { id: "?", name: "?" };
    const body = h("div", { class: "body" });
    if (!cont) {
      li.append(h("button", { type: "button", class: "avatar-button", tabindex: "-1", "aria-hidden": "true",
        onclick: () => this.openProfile(from) }, avatar(from)));
      body.append(h("div", { class: "meta" },
        h("button", { type: "button", class: "name", onclick: () => this.openProfile(from),
          style: `--hue:${hue(from.id)}` }, from.name || from.id),
        " ",
        h("time", { datetime: new Date(m.ts).toISOString(), title: fullTime(m.ts) }, timeLabel(m.ts))));
    } else {
      li.append(h("time", { class: "side-time", datetime: new Date(m.ts).toISOString(), title: fullTime(m.ts) },
        timeLabel(m.ts)));
      body.append(h("span", { class: "sr-only" }, `${from.name || from.id}: `));
    }
    const text = h("div", { class: "text", dir: "auto" }, textNodes(m.text));
    if (m.edited_ts) text.append(" ", h("span", { class: "edited", title: `edited ${fullTime(m.edited_ts)}` }, "(edited)"));
    body.append(text);
    const files = m.data && Array.isArray(m.data.files) ? m.data.files : [];
    if (files.length) body.append(this.renderFiles(files));
    li.append(body);
    const canDelete = own || (s && rank(s.info.role) >= 1);
    if (own || canDelete) {
      li.append(h("div", { class: "actions" },
        own ? h("button", { type: "button", class: "small", "aria-label": `Edit your message from ${timeLabel(m.ts)}`,
          onclick: () => this.startEditing(m.seq) }, "Edit") : null,
        canDelete ? h("button", { type: "button", class: "small danger",
          "aria-label": `Delete the message of ${from.name || from.id} from ${timeLabel(m.ts)}`,
          onclick: () => this.confirmDelete(m.seq) }, "Delete") : null));
    }
    return li;
  }

  renderFiles(files) {
    const box = h("div", { class: "files" });
    for (const f of files) {
      const href = f && typeof f.url === "string" ? safeHref(f.url) : null;
      if (!href) continue;
      const name = f.name || "file";
      if (IMAGE_TYPES.has(f.type) && f.width > 0 && f.height > 0) {
        // The size is known before the image loads, so the timeline does not jump.
        const img = h("img", { src: href, alt: name, width: String(Math.round(f.width)),
          height: String(Math.round(f.height)), loading: "lazy", decoding: "async" });
        box.append(h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "image" }, img));
      } else if (IMAGE_TYPES.has(f.type)) {
        box.append(h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "image" },
          h("img", { src: href, alt: name, width: "320", height: "240", loading: "lazy", class: "unsized" })));
      } else {
        box.append(h("a", { href, class: "file", download: name, rel: "noopener noreferrer" },
          icon("file"), name, h("span", { class: "size" }, ` ${sizeLabel(f.size)}`)));
      }
    }
    return box;
  }

  renderPending(p) {
    const failed = p.state === "failed";
    const li = h("li", { class: `msg own pending${failed ? " failed" : ""}`, "data-local": p.local },
      avatar(this.me),
      h("div", { class: "body" },
        h("div", { class: "meta" }, h("span", { class: "name" }, this.me.name || this.me.id), " ",
          h("span", { class: "state" }, failed ? "Not sent" : p.upload ? "Uploading…" : "Sending…")),
        h("div", { class: "text", dir: "auto" }, textNodes(p.text || (p.upload ? p.upload.name : ""))),
        failed ? h("p", { class: "error" }, refusal(p.error, "")) : null,
        failed ? h("div", { class: "row" },
          h("button", { type: "button", class: "small", onclick: () => this.sendPending(this.current, p) }, "Retry"),
          h("button", { type: "button", class: "small", onclick: () => { this.state()?.outbox.remove(p.local); this.timeline.renderOutbox(); } },
            "Discard")) : null));
    return li;
  }

  // ---------------------------------------------------------------- events

  onMessage(m) {
    if (!m || typeof m.room !== "string") return;
    const s = this.rooms.get(m.room);
    const own = m.from && m.from.id === this.me.id;
    if (!s) {
      // A room I was just added to (a new DM, say).
      this.refreshRooms();
    } else {
      s.info.last_seq = Math.max(s.info.last_seq ?? 0, m.seq);
      if (m.from) s.typers.delete(m.from.id);
      const open = m.room === this.current;
      if (open && s.held) {
        s.held.push(m);
      } else if (open) {
        const r = s.list.live(m);
        if (r === "added") this.timeline.added(s.list.search(m.seq));
        else if (r === "updated") this.replaceRow(m.seq);
        this.renderTyping();
        if (!own) this.announce(`${m.from ? m.from.name : "Someone"}: ${m.text}`);
        this.$.jump.hidden = this.timeline.nearBottom(400) && this.timeline.showsEnd;
      }
      const seen = open && document.visibilityState === "visible" && this.timeline.showsEnd && this.timeline.nearBottom(48);
      if (own) {
        s.readSeq = Math.max(s.readSeq, m.seq);
      } else if (seen) {
        this.onAtEnd(true);
      } else if (s.info.role || s.info.dm) {
        s.info.unread = (s.info.unread || 0) + 1;
        this.renderRooms();
      }
    }
    if (!own) this.maybeNotify(m, s);
  }

  maybeNotify(m, s) {
    const dm = s && s.info.dm;
    const mention = mentions(m.text, { ...this.me, username: this.client.user?.username });
    if (!mention && !dm) return;
    const hidden = document.visibilityState !== "visible";
    if (!hidden && m.room === this.current) return;
    const sdk = this.client;
    const where = dm ? "a direct message" : `#${m.room}`;
    const title = mention ? `${m.from ? m.from.name : "Someone"} mentioned you in ${where}` : `${m.from ? m.from.name : "Someone"} (direct message)`;
    const show = typeof sdk.notify === "function" ? (o) => sdk.notify(o) : null;
    if (show) show({ title, body: m.text, tag: `chat-${m.room}`, onclick: () => this.openRoom(m.room) });
    if (typeof sdk.playSound === "function") sdk.playSound("mention");
  }

  replaceRow(seq) {
    const s = this.state();
    const row = this.timeline.rowFor(seq);
    if (!s || !row) return;
    const i = s.list.search(seq);
    if (i < 0) return;
    row.replaceWith(this.renderRow(s.list.items[i], s.list.items[i - 1] || null));
  }

  onEdited(e) {
    const s = this.rooms.get(e.room);
    if (!s) return;
    if (s.list.edit(e.seq, e.text, e.edited_ts) && e.room === this.current) this.replaceRow(e.seq);
  }

  onDeleted(e) {
    const s = this.rooms.get(e.room);
    if (!s) return;
    const i = s.list.search(e.seq);
    if (i < 0) return;
    s.list.remove(e.seq);
    if (e.room !== this.current) return;
    if (this.editing === e.seq) this.stopEditing();
    const t = this.timeline;
    if (i < t.start) {
      t.start--;
      t.end--;
    } else if (i < t.end) {
      t.end--;
      const row = t.rowFor(e.seq);
      t.keepPlace(() => {
        if (row) row.remove();
        const next = s.list.items[i];
        if (next && i < t.end) this.replaceRow(next.seq);
      });
    }
    this.updateStartNote();
  }

  onMember(room, user, joined) {
    const s = this.rooms.get(room);
    if (!s || !user || !user.id) return;
    const had = s.members.get(user.id);
    s.members.set(user.id, { ...had, ...user, role: had?.role || user.role || "member", online: had?.online ?? user.online });
    if (joined && !had && s.memberCount !== null) s.memberCount++;
    if (room === this.current) this.renderMembers();
    if (user.id === this.me.id) this.refreshRooms();
  }

  onLeft(e) {
    const s = this.rooms.get(e.room);
    if (!s || !e.user) return;
    if (s.members.delete(e.user.id) && s.memberCount) s.memberCount--;
    if (e.user.id === this.me.id) {
      s.info.role = null;
      if (e.room === this.current) {
        this.renderHeader();
        this.updateComposer();
      }
      this.refreshRooms();
    }
    if (e.room === this.current) this.renderMembers();
  }

  onPresence(e) {
    if (!e.user) return;
    for (const [room, s] of this.rooms) {
      const m = s.members.get(e.user.id);
      if (m) {
        m.online = !!e.online;
        if (room === this.current) this.renderMembers();
      }
    }
  }

  onTyping(e) {
    const s = this.rooms.get(e.room);
    if (!s || !e.user || e.user.id === this.me.id) return;
    s.typers.set(e.user.id, { user: e.user, until: Date.now() + TYPING_SHOW_MS });
    if (e.room === this.current) this.renderTyping();
  }

  expireTypers() {
    const s = this.state();
    if (!s || !s.typers.size) return;
    const now = Date.now();
    let changed = false;
    for (const [id, t] of s.typers) if (t.until < now) {
      s.typers.delete(id);
      changed = true;
    }
    if (changed) this.renderTyping();
  }

  renderTyping() {
    const s = this.state();
    const names = s ? [...s.typers.values()].map((t) => t.user.name || t.user.id) : [];
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    if (this.$.typing.textContent !== text) this.$.typing.textContent = text;
  }

  onRead(e) {
    const s = this.rooms.get(e.room);
    if (!s) return;
    s.readSeq = Math.max(s.readSeq, e.seq);
    const last = s.info.last_seq ?? e.seq;
    s.info.unread = Math.max(0, Math.min(s.info.unread || 0, last - e.seq));
    this.renderRooms();
  }

  onKicked(e) {
    const s = this.rooms.get(e.room);
    if (s) s.info.role = null;
    this.say(`You were removed from #${e.room}${e.by && e.by.name ? ` by ${e.by.name}` : ""}.`);
    if (e.room === this.current) {
      const priv = s && s.info.private;
      if (priv) this.closeRoom();
      else {
        this.renderHeader();
        this.updateComposer();
      }
    }
    this.refreshRooms();
  }

  onMuted(e, on) {
    const s = this.rooms.get(e.room);
    if (!s || !e.user) return;
    const m = s.members.get(e.user.id) || { ...e.user, role: "member" };
    m.muted = on;
    m.until = on ? (e.until ?? null) : undefined;
    s.members.set(e.user.id, m);
    if (e.user.id === this.me.id) {
      this.say(on ? `You were muted in #${e.room} ${untilLabel(e.until ?? null)}.` : `You can write in #${e.room} again.`);
      if (on && Number.isFinite(e.until)) {
        clearTimeout(s.unmuteTimer);
        s.unmuteTimer = setTimeout(() => {
          m.muted = false;
          if (e.room === this.current) this.updateComposer();
        }, Math.min(2 ** 31 - 1, Math.max(0, e.until - Date.now())));
      }
    }
    if (e.room === this.current) {
      this.renderMembers();
      this.updateComposer();
    }
  }

  onMutedAll(e) {
    const s = this.rooms.get(e.room);
    if (!s) return;
    s.mutedAll = !!e.on;
    if (e.room === this.current) {
      this.renderHeader();
      this.updateComposer();
      this.announce(e.on ? "Only moderators can write in this room now." : "Everyone can write in this room again.");
    }
  }

  onRole(e) {
    const s = this.rooms.get(e.room);
    if (!s || !e.user) return;
    const m = s.members.get(e.user.id);
    if (m) m.role = e.role;
    if (e.user.id === this.me.id) {
      s.info.role = e.role;
      this.say(`You are now ${e.role === "master" ? "a master" : `a ${e.role}`} of #${e.room}.`);
    }
    if (e.room === this.current) {
      this.renderHeader();
      this.renderMembers();
      this.updateComposer();
      this.timeline.refresh();
    }
  }

  onRoomRemoved(e) {
    this.rooms.delete(e.room);
    if (e.room === this.current) {
      this.say(`#${e.room} was removed.`);
      this.closeRoom();
    }
    this.renderRooms();
  }

  // ---------------------------------------------------------------- members

  renderMembers() {
    const s = this.state();
    if (!s) return;
    const list = sortMembers([...s.members.values()]);
    const online = list.filter((m) => m.online).length;
    this.$.memberCount.textContent = s.memberCount !== null ? `(${s.memberCount})` : "";
    this.$.members.replaceChildren(...list.map((m) => h("li", {},
      h("button", { type: "button", class: `member${m.online ? " online" : ""}`, "data-user": m.id,
        onclick: () => this.openProfile(m) },
        h("span", { class: "avatar-wrap" }, avatar(m, "sm"), h("span", { class: "dot", "aria-hidden": "true" })),
        h("span", { class: "member-name" }, m.name || m.id),
        m.role && m.role !== "member" ? h("span", { class: "role" }, m.role) : null,
        m.muted ? h("span", { class: "role muted" }, "muted") : null,
        h("span", { class: "sr-only" }, m.online ? ", online" : ", offline")))));
    this.$.moreMembers.hidden = !s.membersMore;
    this.$.showMembers.textContent = "Members";
    if (online) this.$.showMembers.append(h("span", { class: "online-count" }, ` · ${online} online`));
  }

  async loadMembers(more) {
    const room = this.current;
    const s = this.state();
    if (!s) return;
    const list = sortMembers([...s.members.values()]);
    const fields = { room, limit: 100 };
    if (more && list.length) fields.after = list[list.length - 1].id;
    try {
      const r = await this.client.request("members", fields);
      for (const m of r.members || []) s.members.set(m.id, { ...s.members.get(m.id), ...m });
      s.membersMore = !!r.more;
      if (this.current === room) this.renderMembers();
    } catch (e) {
      this.say(refusal(e, "Could not list more members"));
    }
  }

  // The card of a user: who they are, a direct message, and what my role
  // lets me do to them here.
  openProfile(user) {
    if (!user || !user.id) return;
    const s = this.state();
    const member = s ? s.members.get(user.id) : null;
    const u = { ...user, ...(member || {}) };
    const d = this.$.profile;
    const rights = moderationRights(s ? s.info.role : null, member, this.me.id);
    const room = this.current;
    const act = async (what, op, fields, after) => {
      try {
        await this.client.request(op, { room, user: u.id, ...fields });
        if (after) after();
        d.close();
        this.announce(`${what}: done.`);
      } catch (e) {
        err.textContent = refusal(e, `Could not ${what.toLowerCase()}`);
      }
    };
    const err = h("p", { class: "error", role: "alert" });
    const durations = h("select", { id: "mute-for", "aria-label": "Mute for" },
      MUTE_DURATIONS.map((o, i) => h("option", { value: String(i) }, o.label)));
    const roleSelect = h("select", { id: "new-role", "aria-label": "New role" },
      rights.role.map((r) => h("option", { value: r }, r)));
    const isMe = u.id === this.me.id;
    const mod = s && !s.info.dm && (rights.kick || rights.mute || rights.unmute || rights.role.length);
    d.replaceChildren(h("form", { method: "dialog" },
      h("div", { class: "profile-head" }, avatar(u, "lg"),
        h("div", {},
          h("h2", { id: "profile-name" }, u.name || u.id),
          h("p", { class: "hint" }, u.username ? `@${u.username}` : u.id),
          member ? h("p", { class: "hint" }, `${member.online ? "Online" : "Offline"}${member.role ? ` · ${member.role}` : ""}${member.muted ? ` · muted ${member.until !== undefined ? untilLabel(member.until) : ""}` : ""}`) : null)),
      !isMe ? h("div", { class: "row" },
        h("button", { type: "button", class: "primary", onclick: () => this.startDm(u, d) }, "Send a direct message")) : null,
      mod ? h("fieldset", { class: "moderation" },
        h("legend", {}, `Moderation in #${room}`),
        rights.mute ? h("div", { class: "row" },
          durations,
          h("button", { type: "button", onclick: () => act(`Mute ${u.name || u.id}`, "mute",
            MUTE_DURATIONS[Number(durations.value)].seconds === null ? {} : { seconds: MUTE_DURATIONS[Number(durations.value)].seconds }) },
          "Mute")) : null,
        rights.unmute ? h("button", { type: "button", onclick: () => act(`Unmute ${u.name || u.id}`, "unmute", {}) }, "Unmute") : null,
        rights.kick ? h("button", { type: "button", class: "danger", onclick: () => act(`Remove ${u.name || u.id} from the room`, "kick", {}) },
          "Remove from room") : null,
        rights.role.length ? h("div", { class: "row" }, roleSelect,
          h("button", { type: "button", onclick: () => act(`Change the role of ${u.name || u.id}`, "role", { role: roleSelect.value }) },
            "Change role")) : null) : null,
      err,
      h("div", { class: "row end" }, h("button", { value: "close" }, "Close"))));
    if (!d.open) d.showModal();
  }

  async startDm(user, dialog) {
    try {
      const r = await this.client.request("dm", { user: user.id });
      if (dialog) dialog.close();
      await this.refreshRooms();
      const s = this.rooms.get(r.room);
      if (s && !s.info.dm) s.info.dm = { id: user.id, name: user.name, avatar: user.avatar };
      await this.openRoom(r.room);
    } catch (e) {
      this.say(refusal(e, `Could not start a conversation with ${user.name || user.id}`));
    }
  }

  async toggleMuteAll() {
    const s = this.state();
    if (!s) return;
    const on = !s.mutedAll;
    try {
      await this.client.request("mute_all", { room: this.current, on });
      s.mutedAll = on;
      this.renderHeader();
    } catch (e) {
      this.say(refusal(e, on ? "Could not mute everyone" : "Could not let everyone write"));
    }
  }

  // ---------------------------------------------------------------- composer

  myMember() {
    const s = this.state();
    return s ? s.members.get(this.me.id) || null : null;
  }

  canWrite() {
    return !this.writeBlock();
  }

  // Why I cannot write here now, in words, or "".
  writeBlock() {
    const s = this.state();
    if (!s) return "Pick a room first.";
    if (!s.info.role && !s.info.dm) return "join";
    const me = this.myMember();
    if (me && me.muted) return `You are muted in this room ${untilLabel(me.until ?? null)}.`;
    if (s.mutedAll && rank(s.info.role) < 1) return "Only moderators can write here while the room is muted.";
    return "";
  }

  updateComposer() {
    if (!this.$) return;
    const block = this.writeBlock();
    const s = this.state();
    const join = block === "join";
    this.$.joinBar.hidden = !join;
    if (join && s) this.$.joinText.textContent = `You are reading #${this.current}. Join to write here.`;
    this.$.note.textContent = join ? "" : block;
    this.$.composer.dataset.blocked = block ? "true" : "false";
    const off = !!block;
    this.$.text.disabled = off;
    this.$.send.disabled = off;
    this.$.attach.disabled = off;
    if (this.client && this.client.status !== "connected" && !off) {
      this.$.note.textContent = "Offline: messages are sent when the connection is back.";
    }
  }

  autosize() {
    const t = this.$.text;
    t.style.height = "auto";
    t.style.height = `${Math.min(t.scrollHeight, 200)}px`;
    if (!this._drafts) this._drafts = new Map();
    if (this.current && this.editing === null) this._drafts.set(this.current, t.value);
  }

  sendTyping() {
    const now = Date.now();
    if (!this.current || !this.$.text.value || this.editing !== null || now - this._typingSent < TYPING_SEND_MS) return;
    this._typingSent = now;
    this.client.send("typing", { room: this.current });
  }

  onComposerKey(e) {
    if (e.isComposing) return;
    if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      this.submit();
    } else if (e.key === "ArrowUp" && !this.$.text.value && this.editing === null) {
      const s = this.state();
      if (!s) return;
      for (let i = s.list.length - 1; i >= 0; i--) {
        const m = s.list.items[i];
        if (m.from && m.from.id === this.me.id) {
          e.preventDefault();
          this.startEditing(m.seq);
          return;
        }
      }
    } else if (e.key === "Escape" && this.editing !== null) {
      e.preventDefault();
      e.stopPropagation();
      this.stopEditing();
    }
  }

  startEditing(seq) {
    const s = this.state();
    const m = s && s.list.get(seq);
    if (!m) return;
    this.editing = seq;
    this.$.editBar.hidden = false;
    this.$.text.value = m.text;
    this.$.send.textContent = "Save";
    this.$.rows.querySelectorAll("li.editing").forEach((li) => li.classList.remove("editing"));
    const row = this.timeline.rowFor(seq);
    if (row) row.classList.add("editing");
    this.autosize();
    this.$.text.focus();
    this.$.text.setSelectionRange(m.text.length, m.text.length);
  }

  stopEditing() {
    if (this.editing === null) return;
    const row = this.timeline.rowFor(this.editing);
    if (row) row.classList.remove("editing");
    this.editing = null;
    this.$.editBar.hidden = true;
    this.$.send.textContent = "Send";
    this.$.text.value = this._drafts?.get(this.current) || "";
    this.autosize();
  }

  async submit() {
    const text = this.$.text.value;
    const room = this.current;
    const s = this.state();
    if (!s || this.writeBlock()) return;
    if (this.editing !== null) {
      const seq = this.editing;
      const m = s.list.get(seq);
      if (!text.trim()) {
        this.confirmDelete(seq);
        return;
      }
      this.stopEditing();
      if (m && m.text === text) return;
      try {
        await this.client.request("edit", { room, seq, text });
      } catch (e) {
        this.say(refusal(e, "Could not edit the message"));
      }
      return;
    }
    if (!text.trim()) return;
    this.$.text.value = "";
    this._drafts?.delete(room);
    this.autosize();
    const p = s.outbox.add(text);
    this.timeline.renderOutbox();
    if (this.timeline.showsEnd) this.timeline.scrollToEnd();
    else await this.jumpToEnd();
    this.sendPending(room, p);
  }

  // Sends (or sends again) an own post: uploads its file first when it has one.
  async sendPending(room, p) {
    const s = this.state(room);
    if (!s) return;
    s.outbox.retry(p.local);
    if (room === this.current) this.timeline.renderOutbox();
    try {
      if (p.upload && !p.data) {
        const file = await this.upload(p.upload);
        p.data = { files: [file] };
      }
      const fields = { room, text: p.text };
      if (p.data) fields.data = p.data;
      const r = await this.client.request("post", fields);
      s.outbox.remove(p.local);
      const m = { room, seq: r.seq, ts: r.ts ?? Date.now(), from: { ...this.me }, text: p.text };
      if (p.data) m.data = p.data;
      s.readSeq = Math.max(s.readSeq, r.seq);
      const added = s.list.live(m);
      if (room === this.current) {
        if (added === "added") this.timeline.added(s.list.search(r.seq));
        this.timeline.renderOutbox();
        if (this.timeline.showsEnd) this.timeline.scrollToEnd();
      }
    } catch (e) {
      s.outbox.fail(p.local, e);
      if (e.code === "muted") {
        const me = this.myMember();
        if (me) me.muted = true;
        else s.members.set(this.me.id, { ...this.me, muted: true, online: true, role: s.info.role });
        this.updateComposer();
      }
      if (room === this.current) this.timeline.renderOutbox();
    }
  }

  confirmDelete(seq) {
    const s = this.state();
    const m = s && s.list.get(seq);
    if (!m) return;
    const d = this.$.confirm;
    this.$.confirmText.textContent = m.text || "(a file)";
    d.returnValue = "";
    const done = async () => {
      d.removeEventListener("close", done);
      if (d.returnValue !== "delete") {
        this.$.text.focus();
        return;
      }
      if (this.editing === seq) this.stopEditing();
      try {
        await this.client.request("delete", { room: this.current, seq });
      } catch (e) {
        this.say(refusal(e, "Could not delete the message"));
      }
      this.$.text.focus();
    };
    d.addEventListener("close", done);
    d.showModal();
  }

  // ---------------------------------------------------------------- files

  async sendFiles(files) {
    const room = this.current;
    const s = this.state();
    if (!s || this.writeBlock()) return;
    for (const file of files) {
      const p = s.outbox.add(this.$.text.value.trim() && files.length === 1 ? this.$.text.value : file.name || "file");
      if (p.text === this.$.text.value) {
        this.$.text.value = "";
        this.autosize();
      }
      p.upload = file;
      this.timeline.renderOutbox();
      this.timeline.scrollToEnd();
      this.sendPending(room, p);
    }
  }

  // Uploads a file with a one-use ticket from the chat plugin; resolves with
  // the file object a message carries in `data.files`.
  async upload(file) {
    const ticket = await this.client.widget(PLUGIN, { action: "upload_ticket" });
    if (!ticket || typeof ticket.ticket !== "string") throw Object.assign(new Error("no upload ticket"), { code: "internal" });
    let dims = null;
    if (IMAGE_TYPES.has(file.type) && typeof createImageBitmap === "function") {
      try {
        const bmp = await createImageBitmap(file);
        dims = { width: bmp.width, height: bmp.height };
        bmp.close();
      } catch (_) {
        dims = null;
      }
    }
    const headers = { Authorization: `Bearer ${ticket.ticket}`, "Content-Type": file.type || "application/octet-stream" };
    if (file.name) headers["X-File-Name"] = encodeURIComponent(file.name);
    let res;
    try {
      res = await fetch("/api/chat/files", { method: "POST", headers, body: file, credentials: "omit" });
    } catch (e) {
      throw Object.assign(new Error(String(e.message || e)), { code: "unavailable" });
    }
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (res.status !== 201 || !body || typeof body.url !== "string") {
      const code = res.status === 413 ? "too_large" : res.status === 401 ? "unauthenticated" : res.status >= 500 ? "internal" : "bad_request";
      const message = body && body.error ? body.error.message : `upload refused (${res.status})`;
      throw Object.assign(new Error(message), { code });
    }
    const f = { id: body.id, url: body.url, type: body.type || file.type, size: body.size ?? file.size };
    if (body.name || file.name) f.name = body.name || file.name;
    if (dims) Object.assign(f, dims);
    return f;
  }

  // ---------------------------------------------------------------- notifications and sounds

  updateNotifyButton() {
    const can = typeof Notification !== "undefined" && Notification.permission === "default";
    this.$.notifyButton.hidden = !can;
  }

  async askNotifications() {
    try {
      if (typeof this.client.requestNotifications === "function") await this.client.requestNotifications();
      else await Notification.requestPermission();
    } catch (_) {
      // Refused or unsupported: nothing to do.
    }
    this.updateNotifyButton();
  }

  soundMuted() {
    return typeof this.client?.soundMuted === "function" ? this.client.soundMuted() : false;
  }

  setSoundMuted(on) {
    if (typeof this.client?.setSoundMuted === "function") this.client.setSoundMuted(on);
  }
}

if (!customElements.get("hut-chat")) customElements.define("hut-chat", HutChat);

export { HutChat };
