// <hut-counter>: a counter shared by everyone in the space. Shows the value
// and a button; a click asks the counter plugin over the bus to count one up,
// and every widget on every page follows the value the plugin broadcasts.
const PLUGIN = "counter";

class HutCounter extends HTMLElement {
  connectedCallback() {
    if (this._started) return;
    this._started = true;
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `
      <style>
        :host { display: inline-flex; align-items: center; gap: .6em; font: 1rem system-ui, sans-serif;
                border: 1px solid #ccc; border-radius: .5em; padding: .4em .8em; }
        output { min-width: 3ch; text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
        button { font: inherit; padding: .2em .8em; cursor: pointer; }
        .error { color: #b00; font-size: .85em; }
      </style>
      <span>Counter</span><output part="value">…</output>
      <button part="button" type="button">+1</button>
      <span class="error" role="status"></span>`;
    this._value = root.querySelector("output");
    this._error = root.querySelector(".error");
    this._button = root.querySelector("button");
    this._button.addEventListener("click", () => this.increment());
    const client = this.hutopia || globalThis.hutopia;
    if (!client) {
      this._error.textContent = "not connected";
      return;
    }
    this._client = client;
    this._off = client.onWidget(PLUGIN, (data) => this.show(data));
    client.widget(PLUGIN, { op: "get" }).then((d) => this.show(d), (e) => this.fail(e));
  }

  disconnectedCallback() {
    if (this._off) this._off();
    this._off = null;
    this._started = false;
  }

  get value() {
    return Number(this._value ? this._value.textContent : NaN);
  }

  async increment() {
    if (!this._client) return;
    this._button.disabled = true;
    try {
      this.show(await this._client.widget(PLUGIN, { op: "increment" }));
    } catch (e) {
      this.fail(e);
    } finally {
      this._button.disabled = false;
    }
  }

  show(data) {
    if (data && typeof data.value === "number") {
      this._value.textContent = String(data.value);
      this._error.textContent = "";
      this.dispatchEvent(new CustomEvent("change", { detail: data.value }));
    }
  }

  fail(e) {
    this._error.textContent = e && e.message ? e.message : String(e);
  }
}

if (!customElements.get("hut-counter")) customElements.define("hut-counter", HutCounter);
