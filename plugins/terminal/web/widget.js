// <hut-terminal>: the `hut` terminal client, running on the server in a
// pseudo-terminal, shown with xterm.js. A button opens it (the space starts
// hut signed in as this page's user); what the user types goes to hut as
// `input` ops, hut's screen comes back as `output` events (base64 bytes).
// The element's `terminal` property is the xterm.js Terminal while one is open.
// The open terminal fills most of the window, with a close button and a
// switch for xterm.js's screen reader mode.
import { Terminal } from "./xterm.mjs";
import { FitAddon } from "./addon-fit.mjs";

const PLUGIN = "terminal";
const INPUT_MAX = 4000; // bytes per input op (the plugin takes up to 4096)
const STYLE_ID = "hut-terminal-xterm-css";

const THEMES = {
  light: { background: "#ffffff", foreground: "#1e1e1e", cursor: "#1e1e1e", selectionBackground: "#b5d5ff" },
  dark: { background: "#1e1e1e", foreground: "#e6e6e6", cursor: "#e6e6e6", selectionBackground: "#264f78" },
};

function decode(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function addStylesheet(href) {
  if (document.getElementById(STYLE_ID)) return;
  const link = document.createElement("link");
  link.id = STYLE_ID;
  link.rel = "stylesheet";
  link.href = href;
  document.head.appendChild(link);
}

class HutTerminal extends HTMLElement {
  connectedCallback() {
    if (this._started) return;
    this._started = true;
    addStylesheet(new URL("./xterm.css", import.meta.url).href);
    this.innerHTML = `
      <style>
        hut-terminal { display: block; font: 1rem system-ui, sans-serif; max-width: 100%; }
        hut-terminal section { border: 1px solid #8888; border-radius: .5em; padding: .5em; }
        hut-terminal h2 { font-size: 1rem; margin: 0 0 .4em; }
        hut-terminal button { font: inherit; padding: .3em .9em; cursor: pointer; }
        hut-terminal .status { font-size: .9em; margin: .4em 0 0; min-height: 1.2em; }
        /* Open, the terminal takes most of the window (all of it on a phone). */
        hut-terminal .panel { position: fixed; inset: 4vh 4vw; z-index: 1000; display: flex;
          flex-direction: column; gap: .4em; padding: .5em; border-radius: .5em;
          background: #f4f4f4; color: #111; box-shadow: 0 .5em 2em #0006; }
        hut-terminal .panel[hidden] { display: none; }
        hut-terminal .bar { display: flex; align-items: center; justify-content: space-between; gap: .5em; }
        hut-terminal .bar h3 { font-size: 1rem; margin: 0; }
        hut-terminal .screen { flex: 1; min-height: 0; }
        /* Dim text at half opacity is too faint to read: shown in italics instead. */
        hut-terminal .xterm .xterm-rows .xterm-dim { color: inherit !important; font-style: italic; }
        @media (max-width: 600px) { hut-terminal .panel { inset: 0; border-radius: 0; } }
        @media (prefers-color-scheme: dark) {
          hut-terminal .panel { background: #2a2a2a; color: #eee; }
        }
      </style>
      <section aria-label="Terminal">
        <h2>Terminal</h2>
        <button type="button" class="open">Open the terminal</button>
        <p class="status" role="status" aria-live="polite"></p>
        <div class="panel" role="region" aria-label="Terminal running hut" hidden>
          <div class="bar"><h3>hut</h3>
            <label><input type="checkbox" class="reader"> Screen reader mode</label>
            <button type="button" class="close">Close the terminal</button></div>
          <div class="screen"></div>
        </div>
      </section>`;
    this._button = this.querySelector("button.open");
    this._screen = this.querySelector(".screen");
    this._panel = this.querySelector(".panel");
    this.querySelector("button.close").addEventListener("click", () => this.close());
    // xterm.js's screen reader mode keeps an accessible copy of the screen;
    // it is off by default because it also ignores text inserted by input
    // methods that send whole strings (emoji pickers, some IMEs).
    this._reader = this.querySelector("input.reader");
    this._reader.addEventListener("change", () => {
      if (this.terminal) this.terminal.options.screenReaderMode = this._reader.checked;
    });
    this._status = this.querySelector(".status");
    this._button.addEventListener("click", () => this.open());
    this._client = this.hutopia || globalThis.hutopia;
    if (!this._client) {
      this._status.textContent = "not connected";
      this._button.disabled = true;
      return;
    }
    this._off = this._client.onWidget(PLUGIN, (data) => this._event(data));
  }

  disconnectedCallback() {
    this.close();
    if (this._off) this._off();
    this._off = null;
    this._started = false;
  }


  async open() {
    if (this.terminal || !this._client) return;
    const dark = globalThis.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches;
    const term = new Terminal({
      cols: 80,
      rows: 24,
      convertEol: false,
      screenReaderMode: this._reader.checked,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
      theme: dark ? THEMES.dark : THEMES.light,
      // Text the programs colour (or dim) stays readable: WCAG AA.
      minimumContrastRatio: 4.5,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    this._panel.hidden = false;
    term.open(this._screen);
    try {
      fit.fit();
    } catch {
      // not laid out yet: keep 80x24
    }
    this.terminal = term;
    this._fit = fit;
    this._pending = "";
    term.onData((d) => this._type(d));
    term.onResize(({ cols, rows }) => {
      if (this._opened) this._send({ op: "resize", cols, rows });
    });
    this._resizeObserver = new ResizeObserver(() => {
      try {
        fit.fit();
      } catch {
        // hidden
      }
    });
    this._resizeObserver.observe(this._screen);
    this._button.hidden = true;
    this._status.textContent = "starting…";
    try {
      await this._client.widget(PLUGIN, { op: "open", cols: term.cols, rows: term.rows });
      this._opened = true;
      this._status.textContent = "";
      term.focus();
    } catch (e) {
      this._status.textContent = e && e.message ? e.message : String(e);
      this._teardown();
    }
  }

  close() {
    if (this._opened) this._send({ op: "close" });
    this._teardown();
  }

  _teardown() {
    this._opened = false;
    if (this._resizeObserver) this._resizeObserver.disconnect();
    this._resizeObserver = null;
    if (this.terminal) this.terminal.dispose();
    this.terminal = null;
    if (this._panel) this._panel.hidden = true;
    if (this._button) {
      this._button.hidden = false;
      if (this.isConnected) this._button.focus();
    }
  }

  _send(data) {
    return this._client.widget(PLUGIN, data).catch((e) => {
      this._status.textContent = e && e.message ? e.message : String(e);
    });
  }

  // Keys typed close together go as one op (the bus limits ops per second).
  _type(d) {
    if (!this._opened) return;
    this._pending += d;
    if (this._flushTimer) return;
    this._flushTimer = setTimeout(() => {
      this._flushTimer = null;
      const text = this._pending;
      this._pending = "";
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length; i += INPUT_MAX) {
        // Cut on a character boundary: back off continuation bytes.
        let end = Math.min(bytes.length, i + INPUT_MAX);
        while (end < bytes.length && end > i && (bytes[end] & 0xc0) === 0x80) end--;
        this._send({ op: "input", data: new TextDecoder().decode(bytes.subarray(i, end)) });
        i = end - INPUT_MAX;
      }
    }, 25);
  }

  _event(data) {
    if (!data || typeof data !== "object") return;
    if (data.op === "output" && this.terminal && typeof data.data === "string") {
      this.terminal.write(decode(data.data));
    } else if (data.op === "notice" && typeof data.text === "string") {
      this._status.textContent = data.text;
    } else if (data.op === "exit") {
      this._opened = false;
      this._status.textContent = "The terminal has ended.";
      this._teardown();
      this.dispatchEvent(new CustomEvent("exit", { detail: data }));
    }
  }
}

if (!customElements.get("hut-terminal")) customElements.define("hut-terminal", HutTerminal);
