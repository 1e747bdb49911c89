#!/usr/bin/env python3
"""One space on several nodes (docs/cluster.md): real spaced processes with the
same space id and app secret, joined by a real redis-server this test starts on
a Unix socket in a temporary folder. Checks what users of different nodes see:
a token used once across nodes, presence across nodes, a plugin's events to a
user or to everyone delivered once per session, a plugin's stored values read
the same on every node, a killed node's users going
offline in the stated time, and a Redis outage survived without a restart.
Ends with "N passed, N failed"; skipped (77) without redis-server or spaced.
"""
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "buspy"))
import hutpg  # noqa: E402
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402

RECV = 10.0  # seconds for an expected frame, generous for a loaded machine
HEARTBEAT_MS = 200
NODE_TIMEOUT_MS = 1500
CLUSTER = {"heartbeat_ms": HEARTBEAT_MS, "node_timeout_ms": NODE_TIMEOUT_MS, "reconnect_min_ms": 50,
           "reconnect_max_ms": 1000}


class Redis:
    """redis-server on a Unix socket only (no TCP port), no persistence."""

    def __init__(self, folder):
        self.folder = folder
        self.sock = os.path.join(folder, "redis.sock")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def ping(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.sock)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def url(self):
        return f'"unix://{self.sock}"'


tmp = None
redis = None
store_url = None  # one PostgreSQL database shared by the nodes
secret = secrets.token_urlsafe(32)
nodes = {}


def start_node(name, **overrides):
    conf = dict(CLUSTER, redis=redis.url, node=f'"{name}"')
    conf.update(overrides)
    plugins = [os.path.join(hutspace.build_root(), "test", "plugins", p) for p in ("events.so", "kv.so")]
    node = hutspace.Spaced(cluster=conf, app_secret=secret, extra_plugins=plugins, store_url=store_url)
    node.start()
    nodes[name] = node
    return node


class Client:
    """One bus session; keeps events apart from answers."""

    def __init__(self, ws, welcome):
        self.ws = ws
        self.welcome = welcome
        self.events = []
        self.next_ref = 1

    async def request(self, obj):
        ref = self.next_ref
        self.next_ref += 1
        await self.ws.send(json.dumps(dict(obj, ref=ref)))
        deadline = time.monotonic() + RECV
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic())))
            if msg.get("ref") == ref:
                return msg
            self.events.append(msg)

    async def event(self, pred, timeout=RECV):
        """The first event (kept or new) for which pred holds; removes it."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if pred(e):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise hutspace.Failure(f"no such event within {timeout} s; saw {self.events}")
            try:
                self.events.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))
            except asyncio.TimeoutError:
                pass

    async def drain(self, seconds):
        """Reads whatever arrives for `seconds` into events."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))
            except asyncio.TimeoutError:
                break

    async def close(self):
        await self.ws.close()


async def hello(node, token):
    """(first frame after hello, websocket) without checking what it is."""
    ws = await asyncio.wait_for(
        websockets.connect(node.bus_url, subprotocols=["hutopia.v1"], max_size=None, ping_interval=None,
                           close_timeout=2, open_timeout=RECV), RECV)
    await ws.send(json.dumps({"op": "hello", "token": token, "ref": 0}))
    return json.loads(await asyncio.wait_for(ws.recv(), RECV)), ws


async def connect(node, user):
    first, ws = await hello(node, node.jwt(user=user, name=user.title()))
    check(first.get("op") == "welcome", f"{user} on {node.public}: {first}")
    return Client(ws, first)


async def join_everywhere(user, room="lobby"):
    """The user joins the room once, on the first node: the store is shared."""
    c = await connect(next(iter(nodes.values())), user)
    r = await c.request({"op": "create", "room": room})
    if r["op"] == "error":
        r = await c.request({"op": "join", "room": room})
    check(r["op"] == "ok", f"{user} joins {room}: {r}")
    await c.close()


def presence(user, online):
    return lambda e: e.get("op") == "presence" and e["user"]["id"] == user and e["online"] is online


async def wait_presence_idle(client, seconds=1.0):
    await client.drain(seconds)
    client.events = [e for e in client.events if e.get("op") != "presence"]


# --- cases ---

async def token_single_use_across_nodes():
    a, b = nodes["a"], nodes["b"]
    token = a.jwt(user="tess", name="Tess")
    first, ws = await hello(a, token)
    check(first["op"] == "welcome", f"the token works once: {first}")
    again, ws2 = await hello(b, token)
    check(again["op"] == "error" and again["code"] == "unauthenticated" and "already used" in again["message"],
          f"the same token on another node: {again}")
    await ws.close()
    await ws2.close()


async def presence_across_nodes():
    await join_everywhere("alice")
    await join_everywhere("bob")
    bob = await connect(nodes["b"], "bob")
    await wait_presence_idle(bob)
    alice = await connect(nodes["a"], "alice")
    await bob.event(presence("alice", True))
    members = await bob.request({"op": "members", "room": "lobby"})
    online = {m["id"]: m["online"] for m in members["members"]}
    check(online.get("alice") is True, f"alice is online in the members on node b: {members}")
    # A second session elsewhere is no new presence; closing one of two is no offline.
    alice_b = await connect(nodes["b"], "alice")
    await alice.close()
    await bob.drain(1.0)
    check(not any(e.get("op") == "presence" and e["user"]["id"] == "alice" for e in bob.events),
          f"alice stayed online throughout: {bob.events}")
    await alice_b.close()
    await bob.event(presence("alice", False))
    await bob.close()


async def plugin_events_once_per_session():
    alice_a = await connect(nodes["a"], "alice")
    alice_b = await connect(nodes["b"], "alice")
    bob_b = await connect(nodes["b"], "bob")
    r = await alice_a.request({"op": "widget", "plugin": "events", "data": "targets"})
    check(r["op"] == "ok", f"the plugin's answer: {r}")
    r = await alice_a.request({"op": "widget", "plugin": "events", "data": "notify"})
    check(r["op"] == "ok", f"the plugin's answer: {r}")
    widget = lambda n: (lambda e: e.get("op") == "widget" and e.get("data") == n)  # noqa: E731
    notify = lambda t: (lambda e: e.get("op") == "notify" and e.get("title") == t)  # noqa: E731
    await alice_a.event(widget(1))  # to the asking session
    for c in (alice_a, alice_b):
        await c.event(widget(2))
        await c.event(notify("Title"))
        await c.event(notify("Bare"))
    for c in (alice_a, alice_b, bob_b):
        await c.event(widget(4))
    # Anything more would be a duplicate.
    for c in (alice_a, alice_b, bob_b):
        await c.drain(1.0)
    for name, c in (("alice on a", alice_a), ("alice on b", alice_b), ("bob on b", bob_b)):
        dup = [e for e in c.events if e.get("op") in ("notify", "widget") and e.get("data") != 3]
        check(not dup, f"{name} got events twice: {dup}")
    # The event to the room reaches bob, a member on the other node, once.
    got = [e.get("data") for e in bob_b.events if e.get("op") == "widget"]
    check(got == [3], f"bob got the room's and everyone's only: {bob_b.events}")
    for c in (alice_a, alice_b, bob_b):
        await c.close()


async def typing_across_nodes():
    alice = await connect(nodes["a"], "alice")
    bob = await connect(nodes["b"], "bob")
    # Typing goes to members online on other nodes: first, node a must have
    # heard that bob is online on b (a presence message through Redis).
    deadline = time.monotonic() + RECV
    while True:
        members = await alice.request({"op": "members", "room": "lobby"})
        if {m["id"]: m["online"] for m in members["members"]}.get("bob") is True:
            break
        check(time.monotonic() < deadline, f"bob never showed online on node a: {members}")
        await asyncio.sleep(0.1)
    r = await alice.request({"op": "typing", "room": "lobby"})
    check(r["op"] == "ok", f"alice types: {r}")
    typing = lambda e: e.get("op") == "typing" and e["room"] == "lobby" and e["user"]["id"] == "alice"  # noqa: E731
    await bob.event(typing)
    await bob.drain(1.0)
    check(not any(typing(e) for e in bob.events), f"bob got typing twice: {bob.events}")
    await alice.close()
    await bob.close()


async def plugin_values_across_nodes():
    # A value a plugin stores on one node is what the plugin reads on the
    # other (its synchronous kv_get answers from the node's copy, which the
    # writing node tells the others to read again), and so is its removal.
    a, b = nodes["a"], nodes["b"]

    async def read_on(node, want):
        deadline = time.monotonic() + RECV
        while True:
            status, _, body = hutspace.http("GET", node.public + "/api/kv/colour")
            got = body if status == 200 else status
            if got == want:
                return
            check(time.monotonic() < deadline, f"{node.public} reads {got!r}, not {want!r}")
            await asyncio.sleep(0.1)

    await read_on(b, 404)
    status, _, body = hutspace.http("PUT", a.public + "/api/kv/colour", "blue")
    check(status == 200, f"stored on a: {status} {body}")
    await read_on(b, "blue")
    status, _, body = hutspace.http("PUT", b.public + "/api/kv/colour", "green")
    check(status == 200, f"replaced on b: {status} {body}")
    await read_on(a, "green")
    status, _, body = hutspace.http("DELETE", a.public + "/api/kv/colour")
    check(status == 200, f"removed on a: {status} {body}")
    await read_on(b, 404)


async def killed_node_users_go_offline():
    c_node = start_node("c")
    try:
        await join_everywhere("carol")
        bob = await connect(nodes["b"], "bob")
        await wait_presence_idle(bob)
        carol = await connect(c_node, "carol")
        await bob.event(presence("carol", True))
        c_node.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await bob.event(presence("carol", False), timeout=RECV + NODE_TIMEOUT_MS / 1000)
        took = time.monotonic() - killed
        # docs/cluster.md: within node_timeout_ms + heartbeat_ms (and some
        # slack for a loaded machine).
        stated = (NODE_TIMEOUT_MS + HEARTBEAT_MS) / 1000
        check(took <= stated + 2.0, f"carol went offline {took:.1f} s after the kill (stated {stated} s)")
        check(took >= NODE_TIMEOUT_MS / 1000 - 0.5, f"offline after {took:.1f} s: not through the timeout?")
        await bob.close()
        try:
            await carol.close()
        except Exception:  # noqa: BLE001
            pass
    finally:
        nodes.pop("c", None)
        c_node.stop()


async def post_until(client, text, done, why):
    """Posts `text` to the lobby until done(answer) holds (within RECV seconds,
    else a failure saying why(answer)); returns that answer."""
    deadline = time.monotonic() + RECV
    while True:
        r = await client.request({"op": "post", "room": "lobby", "text": text})
        if done(r):
            return r
        check(time.monotonic() < deadline, why(r))
        await asyncio.sleep(0.1)


async def redis_outage_survived():
    a, b = nodes["a"], nodes["b"]
    await join_everywhere("frank")
    alice = await connect(a, "alice")
    bob = await connect(b, "bob")
    frank = await connect(b, "frank")
    # b learns of frank's join on a through Redis, a moment later.
    await post_until(frank, "frank before the outage", lambda r: r["op"] == "ok",
                     lambda r: f"frank, who joined on a, cannot post on b: {r}")
    redis.stop()
    started = time.monotonic()
    # New hellos are refused with unavailable while Redis is away.
    deadline = time.monotonic() + RECV
    while True:
        first, ws = await hello(a, a.jwt(user="dan"))
        await ws.close()
        if first["op"] == "error":
            break
        check(time.monotonic() < deadline, "hellos still welcomed without Redis")
        await asyncio.sleep(0.2)
    check(first["code"] == "unavailable", f"a hello without Redis: {first}")
    # The sessions there keep working on their node.
    newest = 0
    for c, n in ((alice, "alice"), (bob, "bob")):
        r = await c.request({"op": "post", "room": "lobby", "text": f"{n} during the outage"})
        check(r["op"] == "ok", f"{n} posts without Redis: {r}")
        newest = max(newest, r["seq"])
        r = await c.request({"op": "ping"})
        check(r["op"] == "ok", f"{n} pings without Redis: {r}")
    # Alice reads on a up to bob's post on b: a marker b hears of by no message.
    r = await alice.request({"op": "read", "room": "lobby", "seq": newest})
    check(r["op"] == "ok", f"alice reads on a without Redis: {r}")
    # Changes on a that b hears of by no message: a plugin value, and frank
    # kicked through a's management API.
    status, _, body = hutspace.http("PUT", a.public + "/api/kv/colour", "red")
    check(status == 200, f"stored on a without Redis: {status} {body}")
    status, _, body = hutspace.http("DELETE", a.admin + "/api/v1/rooms/lobby/members/frank", None,
                                    headers={"Authorization": f"Bearer {a.admin_token}"})
    check(status == 204, f"frank kicked on a without Redis: {status} {body}")
    await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
    for c, n in ((alice, "alice"), (bob, "bob")):
        r = await c.request({"op": "ping"})
        check(r["op"] == "ok", f"{n}'s session outlived the outage: {r}")
    redis.start()
    # Both nodes admit again, by themselves.
    for node in (a, b):
        deadline = time.monotonic() + 20
        while True:
            first, ws = await hello(node, node.jwt(user="erin"))
            await ws.close()
            if first["op"] == "welcome":
                break
            check(time.monotonic() < deadline, f"{node.public} still refuses hellos after Redis is back: {first}")
            await asyncio.sleep(0.2)
    # And carry events between them again (resubscribed): the everyone
    # event from a on b, and alice online for bob again.
    await bob.event(presence("alice", True), timeout=RECV)
    r = await alice.request({"op": "widget", "plugin": "events", "data": "targets"})
    check(r["op"] == "ok", f"the plugin's answer: {r}")
    await bob.event(lambda e: e.get("op") == "widget" and e.get("data") == 4)
    # b read again what it missed: the value set on a, and frank's kick,
    # which b now enforces.
    deadline = time.monotonic() + RECV
    while True:
        status, _, body = hutspace.http("GET", b.public + "/api/kv/colour")
        if status == 200 and body == "red":
            break
        check(time.monotonic() < deadline, f"b reads {status} {body!r} for the value set on a during the outage")
        await asyncio.sleep(0.1)
    r = await post_until(frank, "frank after his kick", lambda r: r["op"] == "error",
                         lambda r: f"frank, kicked on a during the outage, still posts on b: {r}")
    check(r.get("code") in ("forbidden", "not_found"), f"frank's post refused as a non-member: {r}")
    # And alice's read marker: her read_seq on b is where she read on a.
    alice_b = await connect(b, "alice")
    deadline = time.monotonic() + RECV
    while True:
        r = await alice_b.request({"op": "join", "room": "lobby"})
        if r["op"] == "ok" and r["read_seq"] == newest:
            break
        check(time.monotonic() < deadline, f"alice's read_seq on b after her read on a during the outage "
              f"({newest}): {r}")
        await asyncio.sleep(0.1)
    await alice_b.close()
    check(a.alive() and b.alive(), "both nodes still run")
    await alice.close()
    await bob.close()
    await frank.close()


CASES = [token_single_use_across_nodes, presence_across_nodes, plugin_events_once_per_session, typing_across_nodes,
         plugin_values_across_nodes, killed_node_users_go_offline, redis_outage_survived]


def main():
    global tmp, redis, store_url
    if shutil.which("redis-server") is None:
        print("skipped: redis-server is not installed (scripts/setup.sh installs it)")
        return hutspace.SKIP
    hutspace.require_spaced()
    pg = hutpg.started_or_skip()
    store_url = pg.new_database()
    tmp = tempfile.mkdtemp(prefix="hut-cluster-")
    redis = Redis(tmp)
    passed = failed = 0
    try:
        redis.start()
        start_node("a")
        start_node("b")
        for fn in CASES:
            try:
                asyncio.run(asyncio.wait_for(fn(), 120))
                passed += 1
                print(f"ok   {fn.__name__}", flush=True)
            except Exception as e:  # noqa: BLE001
                failed += 1
                print(f"FAIL {fn.__name__}: {e!r}", flush=True)
                for name, node in nodes.items():
                    print(f"--- node {name} log ---\n{node.log()}", flush=True)
            if not redis.ping():
                redis.start()
    finally:
        for node in list(nodes.values()):
            node.stop()
        redis.stop()
        pg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
