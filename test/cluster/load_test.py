#!/usr/bin/env python3
"""A cluster's failures under post load (docs/cluster.md): three spaced nodes on
one PostgreSQL database and one redis-server, both started by the test, and
members of one room spread over the nodes, posting all the time (bounded in
count and time). Each case breaks one part while they post:

- a node killed with SIGKILL: no acknowledged post lost, the other nodes' posters
  keep getting `ok`, the dead node's users go offline in the stated time, and its
  clients resume on another node and catch up with `history` to the full history;
- Redis stopped for ten seconds: no acknowledged post lost, every client ends with
  the full history (live events, and `history` after the last seq it saw when it
  sees a gap), hellos welcomed again on every node and events flowing between them;
- PostgreSQL restarted: every post is answered, an `ok` only for what is stored,
  otherwise `unavailable`, and posting works again by itself.

Ends with "N passed, N failed"; skipped (77) without redis-server, PostgreSQL or
spaced.
"""
import asyncio
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, HERE)
import cluster_test as ct  # noqa: E402
import hutpg  # noqa: E402
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402

ROOM = "loadroom"
NODES = ("a", "b", "c")
USERS = [f"user{i}" for i in range(9)]  # user<i> starts on NODES[i % 3]
GAP = 0.4  # seconds between one client's posts
MAX_POSTS = 60  # per client and case
ANSWER = 20.0  # seconds for an answer, generous for a loaded (or sanitized) build
STATED_OFFLINE = (ct.NODE_TIMEOUT_MS + ct.HEARTBEAT_MS) / 1000

pg = None
spaces = {}


def start_nodes(url):
    spaces.clear()
    limits = {"post_rate": 1000000, "post_burst": 1000000}
    for name in NODES:
        s = hutspace.Spaced(limits=limits, store_url=url, app_secret=ct.secret,
                            cluster=dict(ct.CLUSTER, redis=ct.redis.url, node=f'"{name}"'))
        s.start()
        spaces[name] = s


class Member:
    """One member's bus session under load. A reader task hands answers to their
    requests and keeps the room's `message` events; when one shows a gap in the
    seqs (or after a reconnect), the client fetches `history` after the last seq
    it has all messages up to, as the SDK does."""

    def __init__(self, user, node):
        self.user = user
        self.node = node
        self.ws = None
        self.resume = None
        self.pending = {}
        self.next_ref = 1
        self.have = {}  # seq -> text: what this client has seen of the room
        self.last = 0  # every seq up to this one is in have
        self.live = []  # (arrival time, seq, poster) of each message event
        self.live_seqs = set()
        self.duplicates = []  # seqs delivered twice as events
        self.mismatches = []  # a seq seen with two texts
        self.presence = []  # (arrival time, user, online)
        self.acked = {}  # seq -> text of this client's posts answered ok
        self.ok_times = []
        self.errors = []  # (time, answer) of posts answered with an error
        self.unanswered = []  # texts of posts without an answer
        self.results = []  # "ok" / "error" / "none" of each post in order
        self.posted = 0
        self.closed = True
        self.reader = None
        self.filler = None
        self.fill_again = False

    async def connect(self, space, resume=False):
        ws = await asyncio.wait_for(
            websockets.connect(space.bus_url, subprotocols=["hutopia.v1"], max_size=None, ping_interval=None,
                               close_timeout=2, open_timeout=ANSWER), ANSWER)
        hello = {"op": "hello", "ref": 0}
        if resume:
            hello["resume"] = self.resume
        else:
            hello["token"] = space.jwt(user=self.user, name=self.user.title())
        await ws.send(json.dumps(hello))
        first = json.loads(await asyncio.wait_for(ws.recv(), ANSWER))
        check(first.get("op") == "welcome", f"{self.user} on {space.public} ({'resume' if resume else 'token'}): {first}")
        self.ws, self.resume, self.closed = ws, first["resume"], False
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                fut = self.pending.pop(msg.get("ref"), None)
                if fut is not None:
                    if not fut.done():
                        fut.set_result(msg)
                elif msg.get("op") == "message" and msg.get("room") == ROOM:
                    self.on_message(msg)
                elif msg.get("op") == "presence":
                    self.presence.append((time.monotonic(), msg["user"]["id"], msg["online"]))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = True
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self.pending.clear()

    def keep(self, seq, text):
        if self.have.setdefault(seq, text) != text:
            self.mismatches.append((seq, self.have[seq], text))
        while self.last + 1 in self.have:
            self.last += 1

    def on_message(self, msg):
        seq = msg["seq"]
        if seq in self.live_seqs:
            self.duplicates.append(seq)
        self.live_seqs.add(seq)
        self.live.append((time.monotonic(), seq, msg["from"]["id"]))
        self.keep(seq, msg["text"])
        if self.last < seq:  # a gap before it
            self.catch_up()

    def catch_up(self):
        """Fetches history after `last` (in a task: answers come through the reader)."""
        if self.filler and not self.filler.done():
            self.fill_again = True
            return
        self.filler = asyncio.create_task(self.fill())

    async def fill(self):
        while not self.closed:
            self.fill_again = False
            try:
                page = await self.request({"op": "history", "room": ROOM, "after": self.last, "limit": 200})
            except (ConnectionError, asyncio.TimeoutError):
                return
            if page.get("op") != "ok":
                await asyncio.sleep(0.2)  # e.g. the store is away: try again
                continue
            for m in page["messages"]:
                self.keep(m["seq"], m["text"])
            if not page["more"] and not self.fill_again:
                return

    async def request(self, obj, timeout=ANSWER):
        if self.closed:
            raise ConnectionError("connection closed")
        ref = self.next_ref
        self.next_ref += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[ref] = fut
        try:
            await self.ws.send(json.dumps(dict(obj, ref=ref)))
        except websockets.ConnectionClosed as e:
            self.pending.pop(ref, None)
            raise ConnectionError("connection closed") from e
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(ref, None)

    async def post_until(self, until):
        """Posts one message every GAP seconds until `until`, the connection's end
        or MAX_POSTS; records each answer."""
        while time.monotonic() < until and not self.closed and self.posted < MAX_POSTS:
            self.posted += 1
            text = f"{self.user} #{self.posted}"
            try:
                r = await self.request({"op": "post", "room": ROOM, "text": text})
            except ConnectionError:
                break  # no answer: nobody can tell whether it was stored
            except asyncio.TimeoutError:
                self.unanswered.append(text)
                self.results.append("none")
                continue
            if r["op"] == "ok":
                self.acked[r["seq"]] = text
                self.ok_times.append(time.monotonic())
                self.results.append("ok")
            else:
                self.errors.append((time.monotonic(), r))
                self.results.append("error")
            await asyncio.sleep(GAP)

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


async def join_all():
    members = [Member(u, NODES[i % len(NODES)]) for i, u in enumerate(USERS)]
    for m in members:
        await m.connect(spaces[m.node])
    r = await members[0].request({"op": "create", "room": ROOM})
    check(r["op"] == "ok", f"the room is created: {r}")
    for m in members[1:]:
        r = await m.request({"op": "join", "room": ROOM})
        check(r["op"] == "ok", f"{m.user} joins on {m.node}: {r}")
    # Everyone online for everyone before the posts start.
    deadline = time.monotonic() + ANSWER
    while True:
        page = await members[0].request({"op": "members", "room": ROOM})
        if sum(1 for x in page.get("members", []) if x["online"]) == len(USERS):
            break
        check(time.monotonic() < deadline, f"not everyone online: {page}")
        await asyncio.sleep(0.2)
    return members


async def full_history(member):
    """The room's whole history through the bus, page by page: [(seq, text)]."""
    out, after = [], 0
    while True:
        page = await member.request({"op": "history", "room": ROOM, "after": after, "limit": 200})
        check(page["op"] == "ok", f"history after {after}: {page}")
        out += [(m["seq"], m["text"]) for m in page["messages"]]
        if not page["messages"] or not page["more"]:
            return out
        after = page["messages"][-1]["seq"]


async def check_history(members, reader):
    """Every acknowledged post is stored once, seqs 1..N, and every client ends
    with exactly that history (its live events and its catch-ups)."""
    full = await full_history(reader)
    seqs = [s for s, _ in full]
    check(seqs == list(range(1, len(full) + 1)), f"the history's seqs are not 1..N: {seqs}")
    texts = [t for _, t in full]
    check(len(set(texts)) == len(texts), "a post stored twice")
    stored = dict(full)
    for m in members:
        lost = {s: t for s, t in m.acked.items() if stored.get(s) != t}
        check(not lost, f"{m.user}: acknowledged posts not in the history as answered: {lost}")
    n = len(full)
    deadline = time.monotonic() + ANSWER
    while any(m.last < n for m in members) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # the last events, and the catch-ups they start
    for m in members:
        check(not m.closed, f"{m.user}'s session closed")
        check(not m.duplicates, f"{m.user} got seqs twice as events: {m.duplicates}")
        check(not m.mismatches, f"{m.user} saw a seq with two texts: {m.mismatches}")
        got = sorted(m.have.items())
        missing = sorted(set(stored) - set(m.have))
        check(got == full, f"{m.user} on {m.node} ends without the full history: missing {missing[:20]}, "
                           f"{len(got)} of {n}")
    return full


class Load:
    """The members of ROOM, joined on their nodes, each posting until `seconds`
    from now."""

    def __init__(self, members, seconds):
        self.members = members
        self.start = time.monotonic()
        self.end = self.start + seconds
        self.posters = [asyncio.create_task(m.post_until(self.end)) for m in members]

    @classmethod
    async def begin(cls, seconds):
        return cls(await join_all(), seconds)

    def at(self, second):
        """Sleeps until `second` seconds after the start."""
        return asyncio.sleep(max(0.0, self.start + second - time.monotonic()))

    def more(self, members):
        self.posters += [asyncio.create_task(m.post_until(self.end)) for m in members]

    async def posted(self, every_ok=True):
        await asyncio.gather(*self.posters)
        for m in self.members:
            check(not m.unanswered, f"{m.user}: posts without an answer: {m.unanswered}")
            check(not every_ok or not m.errors, f"{m.user}: posts answered with an error: {m.errors}")

    async def finish(self, reader):
        """The history checks (check_history), then every session closed."""
        await check_history(self.members, reader)
        for m in self.members:
            await m.close()


# --- cases ---

async def node_killed_under_load():
    load = await Load.begin(14.0)
    members = load.members
    observer = members[0]  # on node a
    await load.at(4.0)
    dead = [m for m in members if m.node == "c"]
    spaces["c"].proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    # Its users go offline for the others within the stated time.
    deadline = killed + STATED_OFFLINE + ANSWER
    offline = {}
    while len(offline) < len(dead) and time.monotonic() < deadline:
        for t, user, online in observer.presence:
            if t >= killed and not online and user in {m.user for m in dead}:
                offline.setdefault(user, t - killed)
        await asyncio.sleep(0.05)
    check(len(offline) == len(dead), f"offline after the kill only: {offline}")
    for user, took in offline.items():
        check(took <= STATED_OFFLINE + 2.0, f"{user} offline {took:.1f} s after the kill (stated {STATED_OFFLINE} s)")
    # Its clients resume on the other nodes and catch up from the last seq they saw.
    for i, m in enumerate(dead):
        check(m.closed, f"{m.user}'s session outlived its node")
        m.node = ("a", "b")[i % 2]
        await m.connect(spaces[m.node], resume=True)
        m.catch_up()
    resumed = time.monotonic()
    load.more(dead)
    await load.posted()
    for m in members:
        if m not in dead:
            check(any(killed < t < resumed for t in m.ok_times), f"{m.user} on {m.node}: no ok after the kill")
        check(any(t > resumed for t in m.ok_times), f"{m.user} on {m.node}: no ok after the dead node's clients resumed")
    await load.finish(observer)


async def redis_outage_under_load():
    load = await Load.begin(18.0)
    await load.at(2.0)
    ct.redis.stop()
    await load.at(12.0)
    ct.redis.start()
    back = time.monotonic()
    # Every node welcomes new hellos again, by itself.
    for name, space in spaces.items():
        deadline = time.monotonic() + ANSWER
        while True:
            first, ws = await ct.hello(space, space.jwt(user="newcomer"))
            await ws.close()
            if first["op"] == "welcome":
                break
            check(time.monotonic() < deadline, f"node {name} still refuses hellos after Redis is back: {first}")
            await asyncio.sleep(0.2)
    await load.posted()
    # Events flow between the nodes again: each client got, live, posts made on the other nodes.
    node_of = {m.user: m.node for m in load.members}
    for m in load.members:
        others = {node_of.get(who) for t, _, who in m.live if t > back + 1.0 and node_of.get(who) != m.node}
        check(others == set(NODES) - {m.node}, f"{m.user} on {m.node}: live posts after the outage from {others}")
    for name, space in spaces.items():
        check(space.alive(), f"node {name} still runs")
    await load.finish(load.members[0])


async def postgres_restart_under_load():
    load = await Load.begin(16.0)
    await load.at(3.0)
    down = time.monotonic()
    await asyncio.to_thread(pg.restart, 3.0)
    up = time.monotonic()
    await load.posted(every_ok=False)
    for m in load.members:
        wrong = [r for _, r in m.errors if r.get("code") != "unavailable"]
        check(not wrong, f"{m.user}: errors other than unavailable: {wrong}")
        check(all(down <= t <= up + ANSWER for t, _ in m.errors), f"{m.user}: errors outside the outage: {m.errors}")
        # Posting works again by itself: the client's last posts are all ok.
        check(m.results[-3:] == ["ok"] * 3, f"{m.user}: the last posts after the restart: {m.results}")
    check(any(m.errors for m in load.members), "no post saw the outage")
    await load.finish(load.members[0])


def on_fresh_nodes(case):
    """The case on three new nodes and a new database; their logs when it fails."""
    @functools.wraps(case)
    def run():
        try:
            start_nodes(pg.new_database())
            asyncio.run(asyncio.wait_for(case(), 150))
        except Exception:
            for name, space in spaces.items():
                print(f"--- node {name} log ---\n{space.log()}", flush=True)
            raise
        finally:
            for space in spaces.values():
                space.stop()
            if not ct.redis.ping():
                ct.redis.start()
    return run


CASES = [on_fresh_nodes(c) for c in (node_killed_under_load, redis_outage_under_load, postgres_restart_under_load)]


def main():
    global pg
    hutspace.require_spaced()
    if shutil.which("redis-server") is None:
        print("skipped: redis-server is not installed (scripts/setup.sh installs it)")
        return hutspace.SKIP
    why = hutpg.available()
    if why:
        print(f"skipped: {why}")
        return hutspace.SKIP
    pg = hutpg.PgServer()
    ct.tmp = tempfile.mkdtemp(prefix="hut-load-")
    ct.redis = ct.Redis(ct.tmp)

    def teardown():
        ct.redis.stop()
        pg.close()
        shutil.rmtree(ct.tmp, ignore_errors=True)
    try:
        pg.start()
        ct.redis.start()
    except Exception:
        teardown()
        raise
    return hutspace.run_cases(CASES, teardown=teardown)


if __name__ == "__main__":
    sys.exit(main())
