// Calls to the relay's JSON API from its own pages: the session cookie
// (same origin), a JSON content type for JSON bodies; the browser adds Origin
// to every state-changing request.
export async function api(method, path, body, { raw = false, type } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    if (raw) {
      init.body = body;
      init.headers["Content-Type"] = type || "application/octet-stream";
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, data: null, message: "The relay cannot be reached." };
  }
  let data = null;
  try {
    data = res.status === 204 ? null : await res.json();
  } catch (_) {
    data = null;
  }
  const message = data && data.error && data.error.message ? data.error.message : `the relay answered ${res.status}`;
  return { status: res.status, data, message };
}

export const $ = (id) => document.getElementById(id);

export function initials(name) {
  const words = String(name || "").trim().split(/\s+/).filter(Boolean);
  if (!words.length) return "?";
  return ((words[0][0] || "") + (words.length > 1 ? words[words.length - 1][0] : words[0][1] || "")).toUpperCase();
}

export function safeUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (_) {
    return null;
  }
}
