// The relay's space directory: every registered space with a link into it.
import { $, api, safeUrl } from "./api.js";

async function load() {
  const r = await api("GET", "/api/v1/spaces");
  const list = $("spaces");
  if (r.status !== 200 || !Array.isArray(r.data)) {
    $("status").textContent = `The directory could not be loaded: ${r.message}.`;
    return;
  }
  const items = [];
  for (const s of r.data) {
    if (!s || typeof s.id !== "string") continue;
    const url = safeUrl(s.url);
    const li = document.createElement("li");
    const text = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = s.name || s.id;
    const where = document.createElement("div");
    where.className = "url";
    where.textContent = s.url || "";
    text.append(name, where);
    li.append(text);
    if (url) {
      const a = document.createElement("a");
      a.className = "enter";
      a.href = new URL("login", url.endsWith("/") ? url : `${url}/`).href;
      a.textContent = "Enter";
      a.setAttribute("aria-label", `Enter ${s.name || s.id}`);
      li.append(a);
    }
    items.push(li);
  }
  list.replaceChildren(...items);
  $("status").textContent = items.length ? `${items.length} space${items.length === 1 ? "" : "s"}` : "No space is registered here yet.";
}

load();
