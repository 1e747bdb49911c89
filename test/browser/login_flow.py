#!/usr/bin/env python3
"""The way into a space through the relay, in a real browser: a real relayd, a
real spaced trusting it, and headless Chromium driven by Playwright
(login_flow.mjs, run with node).

A user opens the space's /login, is sent to the relay's login page, fills in its
form (creating an account, or logging in with an existing one), and lands back
on the space page signed in: the status says connected, their display name is
shown and the token left the address bar. A relay login URL whose `return` lies
outside the space's URL shows the relay's error page and goes nowhere.

Ends with "N passed, N failed". Exits 77 when spaced, relayd, Chromium, node or
playwright-core is missing.
"""
import os
import secrets
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
import pwrun  # noqa: E402
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


def main():
    hutspace.require_spaced()
    why = pwrun.missing()
    if why:
        print(f"skipped: {why}")
        return hutspace.SKIP
    relay = None
    space = None
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
        # An account made earlier through the relay's API, for the form's login.
        existing = username()
        existing_status, _, _ = relay.register(existing, PASSWORD, name="Sam Returning")
        cfg = {"space": space.public, "relay": relay.url, "spaceId": space.space_id, "password": PASSWORD,
               "newUser": username(), "existing": existing, "existingStatus": existing_status}
        results = pwrun.run("login_flow.mjs", cfg, 200)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL setup or run: {type(e).__name__}: {e}")
        results.append(False)
    finally:
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
