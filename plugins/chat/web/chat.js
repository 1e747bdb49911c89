// <hut-chat>: the space's chat. A placeholder element until the widget lands;
// the widget's files live in this folder (plugins/chat/web/).
class HutChat extends HTMLElement {
  connectedCallback() {
    if (!this.shadowRoot) this.attachShadow({ mode: "open" }).innerHTML = "<p>Chat</p>";
  }
}

if (!customElements.get("hut-chat")) customElements.define("hut-chat", HutChat);
