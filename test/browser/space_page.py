#!/usr/bin/env python3
"""The space page in a real browser: a real spaced, an app token from the
management API, and headless Chromium driven over the DevTools protocol.

Checks what a user sees: the status says connected, their name is shown, the
widget plugin's custom element is in the page and rendered, the token left the
address bar; and without a token, a "not signed in" state with a link to /login.

    space_page.py [--screenshot FILE]    (FILE: a PNG of the signed-in page)

Ends with "N passed, N failed". Exits 77 when spaced or Chromium is missing.
"""
import argparse
import asyncio
import base64
import json
import os
import sys

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402
from cdp import CHROMIUM, STATE_JS, Chromium, DevTools  # noqa: E402

WIDGET_JS = """((tag) => {
  const el = document.querySelector(tag);
  if (!el) return { present: false };
  const r = el.getBoundingClientRect();
  const root = el.shadowRoot;
  const text = ((root ? root.textContent : '') + el.textContent).trim();
  return { present: true, defined: !!customElements.get(tag), width: r.width, height: r.height,
           children: (root ? root.childNodes.length : 0) + el.childNodes.length, text: text.slice(0, 200),
           hasClient: !!(el.hutopia || globalThis.hutopia) };
})"""


def widget_tags(space):
    """The custom element tags that the loaded plugins declare (management API)."""
    tags = []
    for p in space.plugins():
        for w in p.get("widgets") or []:
            tag = w.get("tag") if isinstance(w, dict) else w
            if isinstance(tag, str) and "-" in tag:
                tags.append(tag)
    return tags


async def run(space, chromium, screenshot):
    results = []

    def record(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    async with websockets.connect(chromium.ws_url, max_size=None, ping_interval=None) as ws:
        dt = DevTools(ws)

        # Signed in: a fresh app token in the fragment.
        token = space.mint("pat", "Pat Example")
        session = await dt.open_page(f"{space.public}/#token={token}")
        await dt.wait_for(session, "document.getElementById('status') && "
                                   "document.getElementById('status').textContent.trim() === 'connected'")
        state = await dt.evaluate(session, STATE_JS)
        record("status says connected", state and state["status"] == "connected", f"{state}")
        record("the user's name is shown", state and state["user"] == "Pat Example" and state["whoShown"], f"{state}")
        record("the space's name is shown", state and state["space"] == hutspace.SPACE_NAME, f"{state}")
        record("the token left the address bar", state and "token" not in state["href"], f"{state}")
        record("no sign-in prompt", state and not state["signedOutShown"], f"{state}")

        tags = widget_tags(space)
        record("a plugin declares a widget", bool(tags), f"plugins: {space.plugins()}")
        for tag in tags:
            w = await dt.wait_for(session, f"(() => {{ const w = {WIDGET_JS}({json.dumps(tag)}); "
                                           "return w.present && w.defined && w.height > 0 && "
                                           "(w.children > 0 || w.text) ? w : null; })()")
            if not w:
                w = await dt.evaluate(session, f"{WIDGET_JS}({json.dumps(tag)})")
            ok = bool(w) and w["present"] and w["defined"] and w["height"] > 0 and (w["children"] > 0 or w["text"])
            record(f"widget <{tag}> is in the page and rendered", ok, f"{w}")
            record(f"widget <{tag}> reaches the client", bool(w) and w.get("hasClient"), f"{w}")

        if "hut-counter" in tags:
            # The counter widget: a click on one page counts up through the
            # plugin, and a second user's page follows the broadcast widget event.
            other = await dt.open_page(f"{space.public}/#token={space.mint('sam', 'Sam')}")
            value_js = ("(() => { const e = document.querySelector('hut-counter'); const o = e && e.shadowRoot && "
                        "e.shadowRoot.querySelector('output'); const v = o ? Number(o.textContent) : NaN; "
                        "return Number.isFinite(v) ? v : null; })()")
            before = await dt.wait_for(session, f"(() => {{ const v = {value_js}; return v === null ? null : [v]; }})()")
            await dt.wait_for(other, f"(() => {{ const v = {value_js}; return v === null ? null : [v]; }})()")
            if before:
                await dt.evaluate(session, "document.querySelector('hut-counter').shadowRoot"
                                           ".querySelector('button').click()")
                want = before[0] + 1
                mine = await dt.wait_for(session, f"{value_js} === {want}", 10)
                theirs = await dt.wait_for(other, f"{value_js} === {want}", 10)
                record("a click on <hut-counter> counts up", bool(mine), f"before {before[0]}")
                record("another user's <hut-counter> follows", bool(theirs),
                       f"before {before[0]}, now {await dt.evaluate(other, value_js)}")
            else:
                record("<hut-counter> shows a value", False, "no value shown")

        # The SDK's request helper from the page, through the real bus.
        echoed = await dt.evaluate(session, "hutopia.widget('echo', {from: 'page', n: 3})"
                                            ".then(d => JSON.stringify(d), e => 'error ' + e.code)")
        record("hutopia.widget() round trip through echo", echoed == json.dumps({"from": "page", "n": 3},
                                                                               separators=(",", ":")), f"{echoed}")
        err = await dt.evaluate(session, "hutopia.widget('no-such-plugin', 1)"
                                         ".then(() => 'resolved', e => e.code + '|' + (e instanceof Error))")
        record("an error answer rejects with its code", err == "not_found|True" or err == "not_found|true",
               f"{err}")

        # A dropped connection comes back as the same user with the resume
        # credential of the last welcome: getToken is not asked (tokens are
        # single use; the credential is what a reconnect presents).
        # Bad frames past the budget make the space close the socket (1008).
        t1, t2, t3 = (space.mint("robin", "Robin") for _ in range(3))
        reconnect_js = """(async (t1, more) => {
          const { Client } = await import('/sdk/hutopia.js');
          const asked = [];
          const c = new Client({ token: t1, getToken: async () => { asked.push(1); return more.shift() || null; } });
          await c.open();
          const s1 = c.session;
          const back = new Promise((resolve) => c.on('welcome', () => resolve(c.session)));
          // One at a time, each after the answer to the last, so that no frame is in flight when the space closes.
          let closed = false;
          c.on('close', () => { closed = true; });
          for (let i = 0; i < 40 && !closed; i++) {
            const answered = new Promise((resolve) => {
              const offError = c.on('error', () => { offError(); offClose(); resolve(); });
              const offClose = c.on('close', () => { offError(); offClose(); resolve(); });
              setTimeout(resolve, 5000);
            });
            c.send('no_such_op');
            await answered;
          }
          const s2 = await Promise.race([back, new Promise((r) => setTimeout(() => r(null), 15000))]);
          const code = c.closeCode;
          const pong = s2 ? await c.request('ping').then((r) => JSON.stringify(r), (e) => 'error ' + e.code) : null;
          c.close();
          return { s1, s2, code, asked: asked.length, pong, status: c.status };
        })"""
        r = await dt.evaluate(session, f"{reconnect_js}({json.dumps(t1)}, {json.dumps([t2, t3])})")
        record("the SDK reconnects after a drop with its resume credential, no new token asked",
               bool(r) and r["s1"] and r["s2"] and r["s1"] != r["s2"] and r["code"] not in (None, 1000) and
               r["asked"] == 0 and r["pong"] == "{}" and r["status"] == "closed", f"{r}")

        if "events" in [p.get("name") for p in space.plugins()]:
            # The test plugin `events`: notify events become toasts in the page,
            # and widget events reach the plugin's subscribers.
            shown = await dt.evaluate(session, """(async () => {
              const got = [];
              const off = hutopia.onWidget('events', (d) => got.push(d));
              const ok = JSON.stringify(await hutopia.widget('events', 'notify'));
              const targets = JSON.stringify(await hutopia.widget('events', 'targets'));
              for (let i = 0; i < 50 && (got.length < 3 || document.querySelectorAll('.hutopia-toast').length < 2); i++)
                await new Promise((r) => setTimeout(r, 100));
              off();
              const toasts = [...document.querySelectorAll('#hutopia-toasts .hutopia-toast')].map((t) => ({
                text: t.textContent, link: (t.querySelector('a') || {}).href || null }));
              return { ok, targets, got: got.slice().sort(), toasts,
                       live: (document.getElementById('hutopia-toasts') || {ariaLive: null}).getAttribute?.('aria-live') };
            })()""")
            toasts = (shown or {}).get("toasts") or []
            record("notify events are shown as toasts",
                   bool(shown) and shown["ok"] == '{"ok":true}' and shown["live"] == "polite" and
                   any("Title" in t["text"] and "Body" in t["text"] and t["link"] == "https://example.test/x"
                       for t in toasts) and any("Bare" in t["text"] and not t["link"] for t in toasts), f"{shown}")
            record("onWidget() gets the plugin's events for this session, user and everyone",
                   bool(shown) and shown["targets"] == '{"ok":true}' and shown["got"] == [1, 2, 4], f"{shown}")
        else:
            print("skip notify and widget events: the test plugin `events` is not built")

        if screenshot:
            await asyncio.sleep(0.5)
            shot = await dt.call("Page.captureScreenshot", {"format": "png"}, session)
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print(f"screenshot: {screenshot}")

        # The same token again: spent, so the page says so and offers to sign in.
        session2 = await dt.open_page(f"{space.public}/#token={token}")
        await dt.wait_for(session2, "document.getElementById('status') && "
                                    "document.getElementById('status').dataset.state === 'signed_out'")
        state = await dt.evaluate(session2, STATE_JS)
        record("a spent token shows the sign-in prompt", state and state["signedOutShown"] and
               state["login"] and state["login"].endswith("/login"), f"{state}")

        # No token at all.
        session3 = await dt.open_page(f"{space.public}/")
        await dt.wait_for(session3, "document.getElementById('signed-out') && "
                                    "!document.getElementById('signed-out').hidden")
        state = await dt.evaluate(session3, STATE_JS)
        record("without a token: not signed in, with a link to /login",
               state and state["signedOutShown"] and state["status"] == "not signed in" and
               state["login"] == f"{space.public}/login", f"{state}")

        if not all(results):
            print("--- browser console ---")
            print("\n".join(dt.console[-40:]))
        dt.reader.cancel()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    hutspace.require_spaced()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"skipped: {CHROMIUM} is not installed (Debian package chromium)")
        return hutspace.SKIP
    # The first-party plugins, and the test plugin `events` (notify, widget events).
    space = hutspace.Spaced(extra_plugins=[os.path.join(hutspace.build_root(), "test", "plugins", "events.so")])
    chromium = Chromium()
    results = []
    try:
        space.start()
        chromium.start()
        results = asyncio.run(asyncio.wait_for(run(space, chromium, args.screenshot), 120))
    except Exception as e:  # noqa: BLE001
        print(f"FAIL setup or run: {type(e).__name__}: {e}")
        results.append(False)
    finally:
        chromium.stop()
        status = space.stop()
    if results:
        ok = status == 0
        print(f"{'ok  ' if ok else 'FAIL'} spaced exits with 0 on SIGTERM{'' if ok else f' (status {status})'}")
        results.append(ok)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    if failed:
        print("--- spaced output (last lines) ---")
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
