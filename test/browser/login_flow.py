#!/usr/bin/env python3
"""The way into a space through the relay, in a real browser: a real relayd, a
real spaced trusting it, and headless Chromium driven over the DevTools protocol.

A user opens the space's /login, is sent to the relay's login page, fills in its
form (creating an account, or logging in with an existing one), and lands back
on the space page signed in: the status says connected, their display name is
shown and the token left the address bar. A relay login URL whose `return` lies
outside the space's URL shows the relay's error page and goes nowhere.

Ends with "N passed, N failed". Exits 77 when spaced, relayd or Chromium is missing.
"""
import asyncio
import json
import os
import secrets
import socket
import sys
import urllib.parse

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
from cdp import CHROMIUM, STATE_JS, Chromium, DevTools  # noqa: E402
from relayd import Relayd  # noqa: E402

PASSWORD = "correct horse battery"


def free_port():
    """A loopback port that was free a moment ago. The relay's issuer must be
    the URL the browser uses (its login form checks Origin), so the relay
    cannot learn its port only after it started."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_relay():
    """relayd on a free port whose issuer is its own URL; a few tries if the port was taken."""
    last = None
    for _ in range(3):
        port = free_port()
        relay = Relayd(listen=f"127.0.0.1:{port}", issuer=f"http://127.0.0.1:{port}")
        try:
            relay.start()
        except RuntimeError as e:
            relay.cleanup()
            last = e
            continue
        if relay.url != relay.issuer:
            relay.cleanup()
            last = RuntimeError(f"relayd listens on {relay.url}, not {relay.issuer}")
            continue
        return relay
    raise last


class RelaySpaced(hutspace.Spaced):
    """spaced whose [auth] trusts the relay and sends browsers to its login page."""

    def __init__(self, relay, space_id):
        super().__init__(space_id=space_id)
        self.relay = relay

    def config_text(self):
        text = super().config_text()
        auth = (f'[auth]\nrelay_issuer = "{self.relay.issuer}"\n'
                f'relay_jwks = "{self.relay.url}/.well-known/jwks.json"\n'
                f'relay_login = "{self.relay.url}/login"\n')
        return text.replace("[auth]\n", auth)


def username():
    return "u" + secrets.token_hex(5)


# The relay's login form, filled in the way a user does: focus a field, type.
FOCUS_JS = "((id) => { const e = document.getElementById(id); e.focus(); e.value = ''; return true; })"
FORM_JS = """(() => {
  const f = document.querySelector('form[action="/login"]');
  return f && document.getElementById('u') && document.getElementById('p') ? { href: location.href } : null;
})()"""
ERROR_JS = """(() => {
  const h = document.querySelector('h1');
  return { href: location.href, h1: h ? h.textContent.trim() : null, form: !!document.querySelector('form'),
           err: (document.querySelector('.err') || {}).textContent || null };
})()"""


async def type_into(dt, session, field_id, text):
    await dt.evaluate(session, f"{FOCUS_JS}({json.dumps(field_id)})")
    await dt.call("Input.insertText", {"text": text}, session)


async def run(relay, space):
    results = []

    def record(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    landed_js = (f"location.origin === {json.dumps(space.public)} && document.getElementById('status') && "
                 "document.getElementById('status').textContent.trim() === 'connected'")

    async def through_the_form(context, user, name, action):
        """Opens the space's /login in `context`, submits the relay's form; returns the page's state."""
        session = await dt.open_page(space.public + "/login", context)
        form = await dt.wait_for(session, FORM_JS)
        record(f"{action}: /login leads to the relay's login form",
               form and form["href"].startswith(relay.url + "/login?"), f"{form}")
        if not form:
            return session, None
        await type_into(dt, session, "u", user)
        await type_into(dt, session, "p", PASSWORD)
        if name is not None:
            await type_into(dt, session, "n", name)
        await dt.evaluate(session, f"document.querySelector('button[value={action}]').click(), true")
        await dt.wait_for(session, landed_js)
        return session, await dt.evaluate(session, STATE_JS)

    def check_signed_in(label, state, name):
        record(f"{label}: back on the space page", state and state["href"].startswith(space.public + "/"),
               f"{state}")
        record(f"{label}: status says connected", state and state["status"] == "connected", f"{state}")
        record(f"{label}: the user's display name is shown",
               state and state["user"] == name and state["whoShown"], f"{state}")
        record(f"{label}: the token left the address bar",
               state and state["href"].startswith(space.public + "/") and "token" not in state["href"] and
               state["hash"] == "", f"{state}")

    async with websockets.connect(chromium.ws_url, max_size=None, ping_interval=None) as ws:
        dt = DevTools(ws)

        # A new account, created through the relay's form.
        fresh = await dt.new_context()
        _, state = await through_the_form(fresh, username(), "Robin Newcomer", "register")
        check_signed_in("new account", state, "Robin Newcomer")

        # The same browser again: the relay's session cookie skips the form.
        session = await dt.open_page(space.public + "/login", fresh)
        await dt.wait_for(session, landed_js)
        state = await dt.evaluate(session, STATE_JS)
        record("with a relay session, /login goes straight back in",
               state and state["status"] == "connected" and state["user"] == "Robin Newcomer" and
               state["href"].startswith(space.public + "/") and "token" not in state["href"], f"{state}")

        # An account made earlier through the relay's API, logged in through the form.
        existing = username()
        status, _, answer = relay.register(existing, PASSWORD, name="Sam Returning")
        record("an existing account is registered through the API", status == 201, f"{status} {answer}")
        _, state = await through_the_form(await dt.new_context(), existing, None, "login")
        check_signed_in("existing account", state, "Sam Returning")

        # A wrong password keeps the browser on the relay's form with a message.
        session = await dt.open_page(space.public + "/login", await dt.new_context())
        if await dt.wait_for(session, FORM_JS):
            await type_into(dt, session, "u", existing)
            await type_into(dt, session, "p", "not the password")
            await dt.evaluate(session, "document.querySelector('button[value=login]').click(), true")
            page = await dt.wait_for(session, f"(() => {{ const s = {ERROR_JS}; return s.err ? s : null; }})()")
        else:
            page = None
        record("a wrong password stays on the relay's form with a message",
               page and page["href"].startswith(relay.url) and page["form"], f"{page}")

        # `return` outside the space's URL: an error page, and no redirect,
        # even for a browser with a relay session that would otherwise go on.
        for label, ret in [("another port", relay.url + "/"), ("another host", "http://evil.example/"),
                           ("another scheme", space.public.replace("http://", "https://") + "/")]:
            url = (relay.url + "/login?space=" + urllib.parse.quote(space.space_id) +
                   "&return=" + urllib.parse.quote(ret, safe=""))
            for who, context in [("signed in", fresh), ("signed out", await dt.new_context())]:
                session = await dt.open_page(url, context)
                page = await dt.wait_for(session, f"(() => {{ const s = {ERROR_JS}; return s.h1 ? s : null; }})()")
                await asyncio.sleep(0.5)  # a redirect, if any, would have happened by now
                after = await dt.evaluate(session, ERROR_JS)
                record(f"return to {label} ({who}): the relay's error page, no redirect",
                       page and page["h1"] == "Cannot sign in" and not page["form"] and after and
                       after["href"] == url and "token" not in after["href"], f"{page} then {after}")

        if not all(results):
            print("--- browser console ---")
            print("\n".join(dt.console[-40:]))
        dt.reader.cancel()
    return results


chromium = None


def main():
    global chromium
    hutspace.require_spaced()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"skipped: {CHROMIUM} is not installed (Debian package chromium)")
        return hutspace.SKIP
    relay = None
    space = None
    chromium = Chromium()
    results = []
    statuses = {}
    try:
        relay = start_relay()
        # The space's owner registers it on the relay, runs spaced with the id
        # the relay assigned, and sets the registered URL to its public one.
        status, _, answer = relay.register("owner", PASSWORD, name="Space Owner")
        if status != 201:
            raise RuntimeError(f"register owner: {status} {answer}")
        owner = relay.login("owner", PASSWORD)
        space_id = relay.register_space(owner, name="Test")
        space = RelaySpaced(relay, space_id)
        space.start()
        relay.set_space_url(owner, space_id, space.public)
        chromium.start()
        results = asyncio.run(asyncio.wait_for(run(relay, space), 150))
    except Exception as e:  # noqa: BLE001
        print(f"FAIL setup or run: {type(e).__name__}: {e}")
        results.append(False)
    finally:
        chromium.stop()
        if space:
            statuses["spaced"] = space.stop()
        if relay:
            statuses["relayd"] = relay.terminate()
            relay.cleanup()
    for name, status in statuses.items():
        ok = status == 0
        print(f"{'ok  ' if ok else 'FAIL'} {name} exits with 0 on SIGTERM{'' if ok else f' (status {status})'}")
        results.append(ok)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    if failed:
        if space:
            print("--- spaced output (last lines) ---")
            print(space.log())
        if relay:
            print("--- relayd output (last lines) ---")
            print("\n".join(relay.output[-60:]))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
