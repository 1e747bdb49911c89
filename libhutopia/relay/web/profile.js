// The relay's profile page: sign in, change the display name, upload a
// picture with a preview first, sign out. Text from the server is set as text.
import { $, api, initials, safeUrl } from "./api.js";

const MAX_AVATAR = 1024 * 1024;
let me = null;
let chosen = null;
let previewUrl = null;

function show(section) {
  for (const id of ["loading", "signin", "profile"]) $(id).hidden = id !== section;
}

function showAvatar(el, user, bust) {
  el.replaceChildren();
  const url = user && user.avatar ? safeUrl(user.avatar) : null;
  if (url) {
    const img = document.createElement("img");
    img.alt = "";
    img.src = bust ? `${url}${url.includes("?") ? "&" : "?"}v=${Date.now()}` : url;
    el.append(img);
  } else {
    el.textContent = initials(user && (user.name || user.username));
  }
}

function render(bust = false) {
  $("shown-name").textContent = me.name || me.username;
  $("username").textContent = me.username || me.id;
  if (document.activeElement !== $("name")) $("name").value = me.name || "";
  showAvatar($("avatar"), me, bust);
}

async function load() {
  const r = await api("GET", "/api/v1/me");
  if (r.status === 200 && r.data) {
    me = r.data;
    render();
    show("profile");
  } else if (r.status === 401) {
    show("signin");
    $("u").focus();
  } else {
    show("signin");
    $("signin-error").textContent = r.message;
  }
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  const r = await api("POST", "/api/v1/sessions", { username: $("u").value.trim(), password: $("p").value });
  if (r.status !== 201) {
    $("signin-error").textContent = r.status === 401 ? "Wrong username or password." : r.message;
    return;
  }
  $("p").value = "";
  await load();
  $("profile-title").focus?.();
});

$("name-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("name-ok").textContent = "";
  $("name-error").textContent = "";
  const name = $("name").value.trim();
  if (!name) {
    $("name-error").textContent = "A display name cannot be empty.";
    return;
  }
  const r = await api("PATCH", "/api/v1/me", { name });
  if (r.status !== 200) {
    $("name-error").textContent = `The name was not saved: ${r.message}.`;
    return;
  }
  me = { ...me, ...r.data };
  render();
  $("name-ok").textContent = "Saved.";
});

$("avatar-file").addEventListener("change", () => {
  $("avatar-ok").textContent = "";
  $("avatar-error").textContent = "";
  const file = $("avatar-file").files[0] || null;
  chosen = null;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  $("preview-box").hidden = true;
  $("avatar-save").disabled = true;
  if (!file) return;
  if (file.type !== "image/png" && file.type !== "image/jpeg") {
    $("avatar-error").textContent = "A picture must be a PNG or JPEG image.";
    return;
  }
  if (file.size > MAX_AVATAR) {
    $("avatar-error").textContent = `That picture is ${(file.size / 1048576).toFixed(1)} MiB; at most 1 MiB fits.`;
    return;
  }
  chosen = file;
  previewUrl = URL.createObjectURL(file);
  $("preview").src = previewUrl;
  $("preview-info").textContent = `${file.name} (${Math.ceil(file.size / 1024)} KB)`;
  $("preview-box").hidden = false;
  $("avatar-save").disabled = false;
});

$("avatar-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!chosen) return;
  $("avatar-save").disabled = true;
  const r = await api("PUT", "/api/v1/me/avatar", chosen, { raw: true, type: chosen.type });
  if (r.status !== 200) {
    $("avatar-error").textContent = r.status === 413 ? "That picture is too large (at most 1 MiB)."
      : r.status === 415 ? "A picture must be a PNG or JPEG image." : `The picture was not saved: ${r.message}.`;
    $("avatar-save").disabled = false;
    return;
  }
  me = { ...me, ...r.data };
  render(true);
  chosen = null;
  $("avatar-file").value = "";
  $("preview-box").hidden = true;
  $("avatar-ok").textContent = "Your new picture is saved.";
});

$("signout").addEventListener("click", async () => {
  await api("DELETE", "/api/v1/sessions");
  me = null;
  show("signin");
  $("u").focus();
});

load();
