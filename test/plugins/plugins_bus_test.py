#!/usr/bin/env python3
"""The first-party plugins in a running space: spaced (a real process on
loopback, port 0) loads counter and echo from a plugins folder; two bus
clients, plain HTTP and the management API use them as the contract says, and
plugins are reloaded, unloaded and loaded again while the connections stay up.

Ends with one line "N passed, N failed".
"""
import asyncio
import http.client as http_client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

BUILD = os.environ.get("HUT_BUILD_ROOT", "build/plain")
SPACED = os.path.join(BUILD, "daemons", "spaced", "spaced")
ADMIN_TOKEN = "plugins-test-admin-0123456789abcdef0123"
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        RESULTS["passed"] += 1
        print(f"ok    {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL  {name} {detail}")


def http(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()
    except (ConnectionError, http_client.RemoteDisconnected):
        return 0, {}, b""


def install(src, plugins_dir, name):
    """Copies a plugin file in and renames it over the old one, as an admin would."""
    tmp = os.path.join(plugins_dir, "." + name + ".new")
    shutil.copyfile(src, tmp)
    os.replace(tmp, os.path.join(plugins_dir, name + ".so"))


def start_space(tmp):
    plugins_dir = os.path.join(tmp, "plugins")
    os.makedirs(plugins_dir)
    for name in ("counter", "echo"):
        install(os.path.join(BUILD, "plugins", name + ".so"), plugins_dir, name)
    with open(os.path.join(plugins_dir, "counter.toml"), "w") as f:
        f.write("start = 100\n")
    config = os.path.join(tmp, "spaced.toml")
    with open(config, "w") as f:
        f.write(f"""
[space]
id = "plugins-test"
name = "Plugins test"
listen = "127.0.0.1:0"
data_dir = "{tmp}/var"
plugins_dir = "{plugins_dir}"
[admin]
listen = "127.0.0.1:0"
token = "{ADMIN_TOKEN}"
[auth]
app_issuer = "plugins-test-app"
app_secret = "a-secret-of-enough-length-for-hs256-0123456789"
[store]
url = "sqlite://{tmp}/var/space.db"
""")
    proc = subprocess.Popen([SPACED, "--config", config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    urls = []
    deadline = time.monotonic() + 15
    while len(urls) < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("listening on "):
            urls.append(line.split()[-1].rstrip("/"))
    if len(urls) < 2:
        proc.kill()
        raise RuntimeError("spaced did not start: " + proc.stderr.read())
    # Which listener is the admin one: it knows the plugins route.
    public, admin = urls
    if http("GET", admin + "/api/v1/plugins", token=ADMIN_TOKEN)[0] != 200:
        public, admin = admin, public
    return proc, plugins_dir, public, admin


def token_for(admin, user, name):
    status, _, body = http("POST", admin + "/api/v1/tokens", {"user": user, "name": name}, ADMIN_TOKEN)
    if status != 200:
        raise RuntimeError(f"no app token: {status} {body!r}")
    return json.loads(body)["token"]


class Client:
    """One bus connection; keeps events apart from answers."""

    def __init__(self, ws):
        self.ws = ws
        self.events = []
        self.ref = 0

    async def hello(self, token):
        await self.ws.send(json.dumps({"op": "hello", "token": token}))
        return json.loads(await asyncio.wait_for(self.ws.recv(), 10))

    async def ask(self, plugin, data):
        self.ref += 1
        ref = self.ref
        await self.ws.send(json.dumps({"op": "widget", "plugin": plugin, "data": data, "ref": ref}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if msg.get("ref") == ref:
                return msg
            self.events.append(msg)
        raise TimeoutError("no answer")

    async def event(self, timeout=5):
        if self.events:
            return self.events.pop(0)
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))


async def bus_cases(public, admin, plugins_dir):
    ws_url = public.replace("http://", "ws://") + "/bus"
    async with websockets.connect(ws_url, subprotocols=["hutopia.v1"]) as wa, websockets.connect(ws_url) as wb:
        ada, bob = Client(wa), Client(wb)
        welcome = await ada.hello(token_for(admin, "u-ada", "Ada"))
        await bob.hello(token_for(admin, "u-bob", "Bob"))
        check("welcome lists the counter widget",
              {"plugin": "counter", "tag": "hut-counter", "script": "/plugins/counter/widget.js"}
              in welcome.get("widgets", []), repr(welcome))

        got = await ada.ask("counter", {"op": "get"})
        check("counter starts at its configured start", got.get("data") == {"value": 100}, repr(got))
        got = await ada.ask("counter", {"op": "increment"})
        check("increment answers the new value", got == {"op": "ok", "ref": ada.ref, "data": {"value": 101}}, repr(got))
        ev = await ada.event()
        check("the incrementer gets the widget event", ev == {"op": "widget", "plugin": "counter", "data": {"value": 101}},
              repr(ev))
        ev = await bob.event()
        check("everyone else gets the widget event", ev == {"op": "widget", "plugin": "counter", "data": {"value": 101}},
              repr(ev))
        got = await bob.ask("counter", {"op": "explode"})
        check("a bad counter op is bad_request", got.get("op") == "error" and got.get("code") == "bad_request", repr(got))

        payload = {"nested": [1, "two", {"three": None}], "unicode": "ünï"}
        got = await bob.ask("echo", payload)
        check("echo answers with the data it got", got.get("data") == payload, repr(got))

        # Reload without dropping connections; the value stays (key-value store).
        status, _, body = http("POST", admin + "/api/v1/plugins/counter/reload", {}, ADMIN_TOKEN)
        check("reload of counter answers 200", status == 200, f"{status} {body!r}")
        got = await bob.ask("counter", {"op": "get"})
        check("after reload the connection stays and the value is kept", got.get("data") == {"value": 101}, repr(got))

        # Unload echo, then load it again, on the same connections.
        status, _, body = http("DELETE", admin + "/api/v1/plugins/echo", None, ADMIN_TOKEN)
        check("unload of echo answers 204", status == 204, f"{status} {body!r}")
        got = await ada.ask("echo", 1)
        check("an unloaded plugin is not_found on the bus", got.get("code") == "not_found", repr(got))
        status, _, body = http("POST", admin + "/api/v1/plugins", {"name": "echo"}, ADMIN_TOKEN)
        check("loading echo again answers 201", status == 201, f"{status} {body!r}")
        got = await ada.ask("echo", 2)
        check("echo answers again after it came back", got.get("data") == 2, repr(got))
        status, _, body = http("POST", admin + "/api/v1/plugins", {"name": "echo"}, ADMIN_TOKEN)
        check("loading a loaded plugin answers 409", status == 409, f"{status} {body!r}")
        status, _, body = http("POST", admin + "/api/v1/plugins", {"name": "nothing_here"}, ADMIN_TOKEN)
        check("loading a plugin without a file answers 422", status == 422, f"{status} {body!r}")

        # A new build of the file, renamed over the old one, is what reload loads.
        install(os.path.join(BUILD, "test", "plugins", "reloadme_v1.so"), plugins_dir, "reloadme")
        status, _, _ = http("POST", admin + "/api/v1/plugins", {"name": "reloadme"}, ADMIN_TOKEN)
        got = await ada.ask("reloadme", "ask")
        check("reloadme v1 answers", status == 201 and got.get("data") == {"version": "1"}, repr(got))
        install(os.path.join(BUILD, "test", "plugins", "reloadme_v2.so"), plugins_dir, "reloadme")
        status, _, _ = http("POST", admin + "/api/v1/plugins/reloadme/reload", {}, ADMIN_TOKEN)
        got = await ada.ask("reloadme", "ask")
        check("reload picks up the new file", status == 200 and got.get("data") == {"version": "2"}, repr(got))
        status, _, body = http("GET", admin + "/api/v1/plugins", None, ADMIN_TOKEN)
        listed = {p["name"]: p for p in json.loads(body)} if status == 200 else {}
        check("the plugin list shows the new version",
              listed.get("reloadme", {}).get("version") == "2" and listed.get("counter", {}).get("state") == "loaded",
              repr(listed))


def http_cases(public):
    status, headers, body = http("GET", public + "/plugins/counter/widget.js")
    check("the widget script is served from the library",
          status == 200 and headers.get("content-type", "").startswith("text/javascript")
          and b'customElements.define("hut-counter"' in body, f"{status} {headers}")
    # Paths that leave the plugin's assets, in several encodings. (A path that
    # stays inside them once normalized, like counter/../counter/widget.js,
    # may be served: it names an asset of the plugin.)
    for path in ("/plugins/counter/../../etc/passwd", "/plugins/counter/%2e%2e/%2e%2e/etc/passwd",
                 "/plugins/counter/..%2f..%2fetc%2fpasswd", "/plugins/counter/%2fetc%2fpasswd",
                 "/plugins/counter/..%5c..%5cetc%5cpasswd",
                 "/plugins/counter/../echo/widget.js", "/plugins/counter/nope.js", "/plugins/nobody/widget.js"):
        status, _, body = http("GET", public + path)
        check(f"no asset at {path}", status == 404 and b"customElements" not in body and b"root:" not in body,
              str(status))
    # A NUL in the path: the HTTP layer closes the connection without an
    # answer (status 0 here); what matters to plugins is that nothing is served.
    status, _, body = http("GET", public + "/plugins/counter/widget.js%00.png")
    check("no asset for a path with a NUL", status in (0, 400, 404) and b"customElements" not in body, str(status))
    status, headers, body = http("GET", public + "/api/counter/value")
    check("GET /api/counter/value answers the value",
          status == 200 and json.loads(body) == {"value": 101} and headers.get("x-hutopia-plugin") == "counter"
          and headers.get("x-request-id"), f"{status} {headers} {body!r}")
    status, _, _ = http("GET", public + "/api/counter/elsewhere")
    check("an unknown counter route is 404", status == 404, str(status))


def main():
    if not os.path.exists(SPACED):
        print(f"FAIL  no spaced at {SPACED}")
        print("0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        proc, plugins_dir, public, admin = start_space(tmp)
        try:
            asyncio.run(bus_cases(public, admin, plugins_dir))
            http_cases(public)
        except Exception as e:  # a case that could not run counts as failed
            check("the cases ran to the end", False, repr(e))
        finally:
            proc.terminate()
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = None
            check("spaced exits cleanly on SIGTERM", code == 0, str(code))
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
