// <hut-voice>: the voice channel of a room. Audio goes peer to peer over
// WebRTC (a full mesh); the space only relays the signaling, as `widget`
// requests to the plugin "voice" and `widget` events from it (docs/voice.md).
//
// Who offers: the one who joins sends an offer to everyone already in the
// channel; the others answer. Each offer carries a fresh connection id
// (`pc`); an offer with a new id from someone replaces the connection to them
// (they reloaded the page), and answers and candidates for another id are
// dropped.
//
// Attributes: `room` (fixes the room; without it a list of the user's rooms
// is shown), `ice-policy` ("relay" forces TURN; also the iceTransportPolicy
// property). Test hooks: voiceState() and peerConnections() (docs/voice.md).
const PLUGIN = "voice";
const SPEAKING_LEVEL = 0.02; // RMS of the signal above which someone counts as speaking
const PTT_KEY = "Backquote"; // hold ` anywhere on the page (outside text fields) to talk

const STYLE = `
  :host { display: block; font: 1rem system-ui, sans-serif; color: var(--fg, inherit); }
  h2 { font-size: 1rem; margin: 0 0 .5em; }
  .row { display: flex; flex-wrap: wrap; align-items: center; gap: .5em; margin: .4em 0; }
  select, button { font: inherit; padding: .3em .7em; border-radius: .4em; border: 1px solid var(--line, #bbb);
                   background: var(--card, Canvas); color: var(--fg, CanvasText); min-height: 2.2em; }
  button { cursor: pointer; }
  button:focus-visible, select:focus-visible, input:focus-visible, summary:focus-visible {
    outline: 3px solid var(--accent, #2f6fde); outline-offset: 2px; }
  button[aria-pressed="true"] { background: var(--accent, #2f6fde); color: #fff; border-color: transparent; }
  button.primary { background: var(--accent, #2f6fde); color: #fff; border-color: transparent; }
  button:disabled { opacity: .55; cursor: default; }
  ul { list-style: none; padding: 0; margin: .6em 0; display: grid; gap: .3em; }
  li { display: flex; flex-wrap: wrap; align-items: center; gap: .5em; padding: .3em .4em; border-radius: .4em;
       border: 1px solid var(--line, #ddd); }
  .dot { width: .9em; height: .9em; border-radius: 50%; flex: none; background: var(--line, #ccc);
         box-shadow: 0 0 0 0 transparent; transition: box-shadow .1s, background .1s; }
  li[data-speaking="true"] .dot { background: var(--ok, #1e8e4f); box-shadow: 0 0 0 .25em color-mix(in srgb, var(--ok, #1e8e4f) 35%, transparent); }
  .name { font-weight: 600; overflow-wrap: anywhere; }
  .state { color: var(--muted, #5b6576); font-size: .9em; }
  li button { margin-left: auto; font-size: .9em; }
  details { margin: .4em 0; }
  summary { cursor: pointer; }
  .devices { display: grid; gap: .4em; margin-top: .4em; }
  .devices label { display: grid; gap: .2em; }
  .devices select { max-width: 100%; }
  .error { color: var(--bad, #c53030); margin: .3em 0; min-height: 0; }
  .status { color: var(--muted, #5b6576); font-size: .9em; margin: .3em 0; }
  .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  [hidden] { display: none !important; }
`;

const HTML = `
  <section aria-labelledby="title">
    <h2 id="title">Voice</h2>
    <div class="row" id="pick">
      <label for="room">Room</label>
      <select id="room"></select>
      <button id="join" type="button" class="primary">Join voice</button>
    </div>
    <div class="row" id="controls" hidden>
      <button id="mute" type="button" aria-pressed="false">Mute</button>
      <button id="deaf" type="button" aria-pressed="false">Deafen</button>
      <label><input id="ptt" type="checkbox"> Push to talk</label>
      <button id="talk" type="button" hidden aria-describedby="talk-help">Hold to talk</button>
      <span id="talk-help" class="sr">Hold this button, or hold the \` key, to talk.</span>
      <button id="muteall" type="button" hidden>Mute everyone</button>
      <button id="unmuteall" type="button" hidden>Unmute everyone</button>
      <button id="leave" type="button">Leave voice</button>
    </div>
    <details>
      <summary>Devices</summary>
      <div class="devices">
        <label>Microphone <select id="mic"><option value="">Default microphone</option></select></label>
        <label id="out-label">Output <select id="out"><option value="">Default output</option></select></label>
      </div>
    </details>
    <ul id="people" aria-label="In the voice channel"></ul>
    <p class="status" id="status" role="status" aria-live="polite"></p>
    <p class="error" id="error" role="alert"></p>
  </section>`;

class HutVoice extends HTMLElement {
  constructor() {
    super();
    this.iceTransportPolicy = "all";
    this._room = null; // the room whose channel we are in
    this._me = null; // {user, muted, deaf, muted_by_moderator}
    this._role = "member";
    this._people = new Map(); // user id -> {user, muted, deaf, muted_by_moderator}
    this._peers = new Map(); // user id -> {id, pc, sender, audio, queue, analyser, pending}
    this._stream = null; // the microphone
    this._ice = null; // {ice_servers, expires}
    this._ptt = false;
    this._talking = false;
    this._micId = "";
    this._outId = "";
    this._audioCtx = null;
    this._levels = new Map(); // user id -> last RMS level
  }

  connectedCallback() {
    if (this._started) return;
    this._started = true;
    if (this.getAttribute("ice-policy") === "relay") this.iceTransportPolicy = "relay";
    const root = this.shadowRoot || this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${STYLE}</style>${HTML}`;
    const $ = (id) => root.getElementById(id);
    this._ui = {
      pick: $("pick"), room: $("room"), join: $("join"), controls: $("controls"), mute: $("mute"),
      deaf: $("deaf"), ptt: $("ptt"), talk: $("talk"), muteall: $("muteall"), unmuteall: $("unmuteall"),
      leave: $("leave"), mic: $("mic"), out: $("out"), outLabel: $("out-label"), people: $("people"),
      status: $("status"), error: $("error"),
    };
    const ui = this._ui;
    ui.join.addEventListener("click", () => this.join(ui.room.value));
    ui.leave.addEventListener("click", () => this.leave());
    ui.mute.addEventListener("click", () => this.setMuted(!(this._me && this._me.muted)));
    ui.deaf.addEventListener("click", () => this.setDeaf(!(this._me && this._me.deaf)));
    ui.muteall.addEventListener("click", () => this.muteAll(true));
    ui.unmuteall.addEventListener("click", () => this.muteAll(false));
    ui.ptt.addEventListener("change", () => this.setPushToTalk(ui.ptt.checked));
    const hold = (on) => (e) => { e.preventDefault(); this._setTalking(on); };
    ui.talk.addEventListener("pointerdown", hold(true));
    ui.talk.addEventListener("pointerup", hold(false));
    ui.talk.addEventListener("pointerleave", () => this._setTalking(false));
    ui.talk.addEventListener("keydown", (e) => { if (e.key === " " || e.key === "Enter") hold(true)(e); });
    ui.talk.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") hold(false)(e); });
    this._onKey = (e) => {
      if (!this._ptt || !this._room || e.code !== PTT_KEY) return;
      const t = e.composedPath()[0];
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      this._setTalking(e.type === "keydown");
    };
    window.addEventListener("keydown", this._onKey);
    window.addEventListener("keyup", this._onKey);
    ui.mic.addEventListener("change", () => this.setMicrophone(ui.mic.value));
    ui.out.addEventListener("change", () => this.setOutput(ui.out.value));
    if (!("setSinkId" in HTMLMediaElement.prototype)) ui.outLabel.hidden = true;
    this._onPageHide = () => {
      // Best effort: tell the space at once rather than after the grace period.
      if (this._room && this._client) this._client.send("widget", { plugin: PLUGIN, data: { action: "leave", room: this._room } });
    };
    window.addEventListener("pagehide", this._onPageHide);
    this._meter = setInterval(() => this._measure(), 150);

    const client = this.hutopia || globalThis.hutopia;
    if (!client) {
      ui.error.textContent = "Not connected to the space.";
      ui.join.disabled = true;
      return;
    }
    this._client = client;
    this._offWidget = client.onWidget(PLUGIN, (data) => this._event(data));
    this._offWelcome = client.on("welcome", () => this._rejoin());
    this._loadRooms();
    this._listDevices();
  }

  disconnectedCallback() {
    this._started = false;
    if (this._offWidget) this._offWidget();
    if (this._offWelcome) this._offWelcome();
    window.removeEventListener("keydown", this._onKey);
    window.removeEventListener("keyup", this._onKey);
    window.removeEventListener("pagehide", this._onPageHide);
    clearInterval(this._meter);
    if (this._room) this.leave();
  }

  // ---- public API ----

  get room() { return this._room; }

  async join(room) {
    if (!this._client || !room) return;
    if (this._room) await this.leave();
    this._error("");
    this._ui.join.disabled = true;
    try {
      const listed = (this._rooms || []).find((r) => r.room === room);
      if (listed && !listed.role) await this._client.request("join", { room }); // a public room: become a member first
      await this._iceServers();
      await this._openMicrophone();
      const res = await this._client.widget(PLUGIN, { action: "join", room });
      this._room = room;
      this._apply(res);
      for (const p of res.participants) this._offer(p.user.id);
      this._say(`You joined the voice channel of ${room}.`);
    } catch (e) {
      this._closeMicrophone();
      this._error(e);
    } finally {
      this._ui.join.disabled = false;
      this._render();
    }
  }

  async leave() {
    const room = this._room;
    if (!room) return;
    this._room = null;
    clearTimeout(this._iceTimer);
    for (const id of [...this._peers.keys()]) this._closePeer(id);
    this._people.clear();
    this._me = null;
    this._closeMicrophone();
    this._render();
    this._say(`You left the voice channel of ${room}.`);
    try {
      await this._client.widget(PLUGIN, { action: "leave", room });
    } catch (e) {
      if (e.code !== "unavailable") this._error(e);
    }
  }

  async setMuted(on) { await this._ask({ action: "mute", room: this._room, on }); }
  async setDeaf(on) { await this._ask({ action: "deaf", room: this._room, on }); }
  async muteUser(user, on) { await this._ask({ action: "mute", room: this._room, user, on }); }
  async muteAll(on) { await this._ask({ action: "mute_all", room: this._room, on }); }

  setPushToTalk(on) {
    this._ptt = !!on;
    this._ui.ptt.checked = this._ptt;
    this._talking = false;
    this._render();
    this._applySending();
  }

  async setMicrophone(deviceId) {
    this._micId = deviceId || "";
    if (!this._room) return;
    try {
      const old = this._stream;
      this._stream = await navigator.mediaDevices.getUserMedia({ audio: this._micId ? { deviceId: { exact: this._micId } } : true });
      this._localAnalyser = this._analyse(this._stream);
      this._applySending();
      if (old) old.getTracks().forEach((t) => t.stop());
    } catch (e) {
      this._error(`Cannot use that microphone: ${e.message || e}`);
    }
  }

  async setOutput(deviceId) {
    this._outId = deviceId || "";
    for (const peer of this._peers.values()) await this._sink(peer.audio);
  }

  // Test hooks: the channel as this widget sees it, and its peer connections.
  voiceState() {
    const people = [...this._people.values()].map((p) => {
      const peer = this._peers.get(p.user.id);
      return {
        id: p.user.id, name: p.user.name, muted: p.muted, deaf: p.deaf, mutedByModerator: !!p.muted_by_moderator,
        speaking: (this._levels.get(p.user.id) || 0) > SPEAKING_LEVEL, level: this._levels.get(p.user.id) || 0,
        playing: !!(peer && peer.audio && !peer.audio.muted && peer.audio.srcObject), connection: peer ? peer.pc.connectionState : null,
      };
    });
    return { room: this._room, me: this._me && { ...this._me, sending: this._sending() }, role: this._role, people };
  }

  peerConnections() {
    const out = {};
    for (const [id, peer] of this._peers) out[id] = peer.pc;
    return out;
  }

  // ---- the space ----

  async _ask(data) {
    if (!this._room) return;
    this._error("");
    try {
      await this._client.widget(PLUGIN, data);
    } catch (e) {
      this._error(e);
    }
  }

  async _loadRooms() {
    const fixed = this.getAttribute("room");
    const sel = this._ui.room;
    if (fixed) {
      this._rooms = [{ room: fixed, role: "member" }];
      this._ui.pick.querySelector("label").hidden = true;
      sel.hidden = true;
      this._ui.join.textContent = `Join voice in ${fixed}`;
      return;
    }
    try {
      const res = await this._client.request("rooms");
      this._rooms = res.rooms || [];
      sel.replaceChildren(...this._rooms.map((r) => {
        const o = document.createElement("option");
        o.value = r.room;
        o.textContent = r.role ? r.room : `${r.room} (public)`;
        return o;
      }));
      if (!this._rooms.length) {
        const o = document.createElement("option");
        o.textContent = "No rooms yet";
        o.value = "";
        sel.append(o);
      }
      this._ui.join.disabled = !this._rooms.length;
    } catch (e) {
      this._error(e);
    }
  }

  async _rejoin() {
    // After a reconnect: the same channel again. Within the space's grace
    // period the others see nothing; working connections are kept.
    const room = this._room;
    if (!room) return;
    try {
      const res = await this._client.widget(PLUGIN, { action: "join", room });
      this._apply(res);
      const here = new Set(res.participants.map((p) => p.user.id));
      for (const id of [...this._peers.keys()]) if (!here.has(id)) this._closePeer(id);
      for (const id of here) {
        const peer = this._peers.get(id);
        const state = peer && peer.pc.connectionState;
        if (!peer || state === "failed" || state === "closed") this._offer(id);
      }
    } catch (e) {
      this._error(e);
      this.leave();
    }
  }

  _apply(res) {
    this._people.clear();
    for (const p of res.participants) this._people.set(p.user.id, p);
    this._me = res.me || { user: this._client.user, muted: false, deaf: false };
    this._role = res.role || "member";
    this._render();
    this._applySending();
  }

  _event(d) {
    if (!d || !this._room || d.room !== this._room) return;
    const me = this._client.user.id;
    switch (d.event) {
      case "joined":
        this._people.set(d.user.id, { user: d.user, muted: d.muted, deaf: d.deaf, muted_by_moderator: d.muted_by_moderator });
        this._say(`${d.user.name} joined voice.`);
        break;
      case "left":
        if (d.user.id === me) { // another tab of ours took over
          this._room = null;
          for (const id of [...this._peers.keys()]) this._closePeer(id);
          this._people.clear();
          this._me = null;
          this._closeMicrophone();
          this._say("Voice continues in another window.");
          break;
        }
        this._people.delete(d.user.id);
        this._closePeer(d.user.id);
        this._say(`${d.user.name} left voice.`);
        break;
      case "muted": {
        const state = { muted: d.on, muted_by_moderator: !!d.muted_by_moderator };
        if (d.user.id === me) {
          Object.assign(this._me, state);
          if (d.by) this._say(d.on ? `${d.by.name} muted you.` : `${d.by.name} unmuted you.`);
          this._applySending();
        } else if (this._people.has(d.user.id)) {
          Object.assign(this._people.get(d.user.id), state);
          if (d.by) this._say(`${d.by.name} ${d.on ? "muted" : "unmuted"} ${d.user.name}.`);
        }
        break;
      }
      case "deaf":
        if (d.user.id === me) Object.assign(this._me, { deaf: d.on });
        else if (this._people.has(d.user.id)) this._people.get(d.user.id).deaf = d.on;
        break;
      case "muted_all":
        this._say(`${d.by.name} ${d.on ? "muted" : "unmuted"} everyone.`);
        break;
      case "signal":
        this._signal(d.from.id, d.signal);
        return;
      default:
        return;
    }
    this._render();
    this._applyPlayback();
  }

  // ---- WebRTC ----

  // TURN credentials expire: ask again at half their lifetime, and hand the
  // new ones to the open connections for their next allocations.
  async _iceServers(force = false) {
    if (!force && this._ice && this._ice.expires - Date.now() > this._ice.ttl * 500) return this._ice.ice_servers;
    const res = await this._client.widget(PLUGIN, { action: "ice" });
    const ttl = res.ttl || 3600;
    this._ice = { ice_servers: res.ice_servers || [], expires: Date.now() + ttl * 1000, ttl };
    clearTimeout(this._iceTimer);
    this._iceTimer = setTimeout(() => this._refreshIce(), ttl * 500);
    return this._ice.ice_servers;
  }

  async _refreshIce() {
    if (!this._room) return;
    try {
      const iceServers = await this._iceServers(true);
      for (const peer of this._peers.values()) {
        try { peer.pc.setConfiguration({ ...peer.pc.getConfiguration(), iceServers }); } catch { /* closed */ }
      }
    } catch {
      this._iceTimer = setTimeout(() => this._refreshIce(), 30000);
    }
  }

  async _openMicrophone() {
    if (this._stream) return;
    try {
      this._stream = await navigator.mediaDevices.getUserMedia({ audio: this._micId ? { deviceId: { exact: this._micId } } : true });
      this._localAnalyser = this._analyse(this._stream);
      this._listDevices(); // labels appear once permission is granted
    } catch (e) {
      this._stream = null;
      this._error(`No microphone (${e.message || e}): you can listen but not talk.`);
    }
  }

  _closeMicrophone() {
    if (this._stream) this._stream.getTracks().forEach((t) => t.stop());
    this._stream = null;
    this._localAnalyser = null;
    this._levels.delete("me");
  }

  _sending() {
    return !!(this._me && !this._me.muted && (!this._ptt || this._talking) && this._stream);
  }

  // A muted client sends nothing: the sender carries no track.
  _applySending() {
    const track = this._stream && this._stream.getAudioTracks()[0];
    const send = this._sending();
    for (const peer of this._peers.values()) {
      if (!peer.sender) continue;
      const want = send ? track : null;
      if (peer.sender.track !== want) peer.sender.replaceTrack(want).catch(() => {});
    }
    this._render();
  }

  // Nobody plays a muted participant, whatever that participant's client does;
  // a deafened user plays nobody.
  _applyPlayback() {
    const deaf = !!(this._me && this._me.deaf);
    for (const [id, peer] of this._peers) {
      const p = this._people.get(id);
      const silent = deaf || !p || p.muted;
      if (peer.audio) peer.audio.muted = silent;
      for (const r of peer.pc.getReceivers()) if (r.track) r.track.enabled = !silent;
    }
  }

  _setTalking(on) {
    if (!this._ptt || this._talking === on) return;
    this._talking = on;
    this._ui.talk.setAttribute("aria-pressed", String(on));
    this._applySending();
  }

  // The offerer adds the audio transceiver; the answerer takes the one the
  // offer brings (in _signal).
  _newPeer(id, pcId, offerer) {
    this._closePeer(id);
    const pc = new RTCPeerConnection({ iceServers: this._ice ? this._ice.ice_servers : [], iceTransportPolicy: this.iceTransportPolicy });
    const peer = { id: pcId, pc, sender: null, audio: null, queue: Promise.resolve(), analyser: null };
    if (offerer) peer.sender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
    this._peers.set(id, peer);
    pc.onicecandidate = (e) => {
      if (e.candidate) this._send(id, { type: "candidate", pc: pcId, candidate: e.candidate.toJSON() });
    };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      const audio = document.createElement("audio");
      audio.autoplay = true;
      audio.srcObject = stream;
      audio.dataset.user = id;
      this.shadowRoot.append(audio);
      peer.audio = audio;
      peer.analyser = this._analyse(stream);
      this._sink(audio);
      this._applyPlayback();
      audio.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => this._render();
    this._applySending();
    return peer;
  }

  _closePeer(id) {
    const peer = this._peers.get(id);
    if (!peer) return;
    this._peers.delete(id);
    this._levels.delete(id);
    peer.pc.close();
    if (peer.audio) { peer.audio.srcObject = null; peer.audio.remove(); }
  }

  _offer(id) {
    const pcId = Math.random().toString(36).slice(2) + Date.now().toString(36);
    const peer = this._newPeer(id, pcId, true);
    peer.queue = peer.queue.then(async () => {
      await peer.pc.setLocalDescription(await peer.pc.createOffer());
      await this._send(id, { type: "offer", pc: pcId, sdp: peer.pc.localDescription.sdp });
    }).catch((e) => this._error(`Cannot call ${this._name(id)}: ${e.message || e}`));
  }

  _signal(from, s) {
    if (!s || typeof s !== "object") return;
    let peer = this._peers.get(from);
    if (s.type === "offer") {
      if (!peer || peer.id !== s.pc) peer = this._newPeer(from, s.pc, false);
    } else if (!peer || peer.id !== s.pc) {
      return; // for a connection that is gone
    }
    peer.queue = peer.queue.then(async () => {
      if (this._peers.get(from) !== peer) return;
      if (s.type === "offer") {
        await peer.pc.setRemoteDescription({ type: "offer", sdp: s.sdp });
        const t = peer.pc.getTransceivers().find((x) => x.receiver.track && x.receiver.track.kind === "audio");
        if (t && !peer.sender) {
          t.direction = "sendrecv";
          peer.sender = t.sender;
          this._applySending();
        }
        await peer.pc.setLocalDescription(await peer.pc.createAnswer());
        await this._send(from, { type: "answer", pc: s.pc, sdp: peer.pc.localDescription.sdp });
      } else if (s.type === "answer") {
        await peer.pc.setRemoteDescription({ type: "answer", sdp: s.sdp });
      } else if (s.type === "candidate" && s.candidate) {
        await peer.pc.addIceCandidate(s.candidate);
      }
    }).catch((e) => console.warn("voice: signal from", from, e));
  }

  async _send(to, signal) {
    if (!this._room) return;
    try {
      await this._client.widget(PLUGIN, { action: "signal", room: this._room, to, signal });
    } catch (e) {
      if (e.code !== "forbidden") console.warn("voice: signal to", to, e); // they left meanwhile
    }
  }

  async _sink(audio) {
    if (audio && audio.setSinkId && this._outId !== undefined) {
      try { await audio.setSinkId(this._outId); } catch (e) { this._error(`Cannot use that output: ${e.message || e}`); }
    }
  }

  // ---- speaking indicator: levels measured here from the streams themselves ----

  _analyse(stream) {
    try {
      if (!this._audioCtx) this._audioCtx = new AudioContext();
      if (this._audioCtx.state === "suspended") this._audioCtx.resume().catch(() => {});
      const src = this._audioCtx.createMediaStreamSource(stream);
      const analyser = this._audioCtx.createAnalyser();
      analyser.fftSize = 512;
      src.connect(analyser);
      return { analyser, buf: new Float32Array(analyser.fftSize) };
    } catch {
      return null;
    }
  }

  _measure() {
    if (!this._room) return;
    const rms = (a) => {
      if (!a) return 0;
      a.analyser.getFloatTimeDomainData(a.buf);
      let s = 0;
      for (const v of a.buf) s += v * v;
      return Math.sqrt(s / a.buf.length);
    };
    let changed = false;
    const set = (id, level) => {
      const before = (this._levels.get(id) || 0) > SPEAKING_LEVEL;
      this._levels.set(id, level);
      if (before !== level > SPEAKING_LEVEL) changed = true;
    };
    set("me", this._sending() ? rms(this._localAnalyser) : 0);
    for (const [id, peer] of this._peers) {
      const p = this._people.get(id);
      set(id, p && p.muted ? 0 : rms(peer.analyser));
    }
    if (changed) this._renderSpeaking();
  }

  // ---- view ----

  _name(id) {
    const p = this._people.get(id);
    return p ? p.user.name : id;
  }

  _say(text) { if (this._ui) this._ui.status.textContent = text; }

  _error(e) {
    if (!this._ui) return;
    this._ui.error.textContent = !e ? "" : typeof e === "string" ? e : e.message || String(e);
  }

  async _listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      const fill = (sel, kind, label, current) => {
        const opts = [new Option(label, "")];
        devices.filter((d) => d.kind === kind && d.deviceId && d.deviceId !== "default").forEach((d, i) => {
          opts.push(new Option(d.label || `${kind === "audioinput" ? "Microphone" : "Output"} ${i + 1}`, d.deviceId));
        });
        sel.replaceChildren(...opts);
        sel.value = current;
      };
      fill(this._ui.mic, "audioinput", "Default microphone", this._micId);
      fill(this._ui.out, "audiooutput", "Default output", this._outId);
    } catch { /* no devices to list */ }
  }

  _stateText(p, isMe) {
    const parts = [];
    if (p.muted) parts.push(p.muted_by_moderator ? "muted by a moderator" : "muted");
    if (p.deaf) parts.push("deafened");
    if (isMe && this._ptt && !p.muted) parts.push(this._talking ? "talking" : "push to talk");
    if (!isMe) {
      const peer = this._peers.get(p.user.id);
      const s = peer ? peer.pc.connectionState : "new";
      if (s !== "connected") parts.push(s === "failed" ? "no connection" : "connecting");
    }
    return parts.join(", ");
  }

  _render() {
    const ui = this._ui;
    if (!ui) return;
    const inside = !!this._room;
    ui.pick.hidden = inside;
    ui.controls.hidden = !inside;
    const me = this._me;
    const mod = this._role === "moderator" || this._role === "master";
    if (me) {
      ui.mute.setAttribute("aria-pressed", String(!!me.muted));
      ui.mute.textContent = me.muted ? "Unmute" : "Mute";
      ui.mute.disabled = !!me.muted_by_moderator && !mod;
      ui.mute.title = ui.mute.disabled ? "A moderator muted you" : "";
      ui.deaf.setAttribute("aria-pressed", String(!!me.deaf));
      ui.deaf.textContent = me.deaf ? "Undeafen" : "Deafen";
    }
    ui.talk.hidden = !this._ptt;
    ui.muteall.hidden = ui.unmuteall.hidden = !mod;
    const rows = [];
    if (me) rows.push(this._row({ ...me, user: this._client.user }, true, false));
    for (const p of this._people.values()) rows.push(this._row(p, false, mod));
    ui.people.replaceChildren(...rows);
    ui.people.hidden = !inside;
    this._renderSpeaking();
  }

  _row(p, isMe, canModerate) {
    const li = document.createElement("li");
    li.dataset.user = isMe ? "me" : p.user.id;
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = isMe ? `${p.user.name} (you)` : p.user.name;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = this._stateText(p, isMe);
    li.append(dot, name, state);
    if (canModerate) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = p.muted && p.muted_by_moderator ? "Unmute" : "Mute";
      b.setAttribute("aria-label", `${b.textContent} ${p.user.name}`);
      b.addEventListener("click", () => this.muteUser(p.user.id, !(p.muted && p.muted_by_moderator)));
      li.append(b);
    }
    return li;
  }

  _renderSpeaking() {
    if (!this._ui) return;
    for (const li of this._ui.people.children) {
      const speaking = (this._levels.get(li.dataset.user) || 0) > SPEAKING_LEVEL;
      li.dataset.speaking = String(speaking);
    }
  }
}

if (!customElements.get("hut-voice")) customElements.define("hut-voice", HutVoice);
