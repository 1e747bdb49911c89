#!/usr/bin/env python3
"""The local three-node command (scripts/cluster.sh, docs/cluster.md) as a
user runs it: it starts, prints a sign-in link for each node, a message
posted on node a reaches a member on node c, node b lists that room and its
members (bus and management API), every node's /healthz answers,
and SIGTERM (as Ctrl-C) stops it all and removes its temporary folder. Runs the
script on this build's daemons (HUTOPIA_CLUSTER_BUILD). Ends with "N passed,
N failed"; skipped (77) without redis-server, PostgreSQL or spaced.
"""
import asyncio
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import time
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutpg  # noqa: E402
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402

RECV = 15.0
ROOT = os.environ.get("HUT_SOURCE_ROOT") or os.path.join(HERE, "..", "..")


def read_until_ready(proc, deadline):
    """The script's output up to its last line, "Ctrl-C stops everything."."""
    out = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if line.startswith("Ctrl-C stops everything."):
            return "".join(out)
    raise hutspace.Failure("cluster.sh did not get ready:\n" + "".join(out))


async def welcome(url):
    base, token = url.split("/#token=")
    ws = await websockets.connect(base.replace("http://", "ws://") + "/bus", subprotocols=["hutopia.v1"],
                                  ping_interval=None, close_timeout=2, open_timeout=RECV)
    await ws.send(json.dumps({"op": "hello", "token": token, "ref": 0}))
    first = json.loads(await asyncio.wait_for(ws.recv(), RECV))
    check(first.get("op") == "welcome", f"hello on {base}: {first}")
    return ws


async def request(ws, obj, ref):
    await ws.send(json.dumps(dict(obj, ref=ref)))
    deadline = time.monotonic() + RECV
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if msg.get("ref") == ref:
            return msg


async def post_on_a_seen_on_c(links):
    ada = await welcome(links["a"])
    cy = await welcome(links["c"])
    r = await request(ada, {"op": "create", "room": "kit"}, 1)
    check(r["op"] == "ok", f"ada creates kit on node a: {r}")
    r = await request(cy, {"op": "join", "room": "kit"}, 1)
    check(r["op"] == "ok", f"cy joins kit on node c: {r}")
    r = await request(ada, {"op": "post", "room": "kit", "text": "hello from node a"}, 2)
    check(r["op"] == "ok", f"ada posts on node a: {r}")
    deadline = time.monotonic() + RECV
    while True:
        msg = json.loads(await asyncio.wait_for(cy.recv(), max(0.1, deadline - time.monotonic())))
        if msg.get("op") == "message" and msg.get("room") == "kit":
            check(msg["text"] == "hello from node a" and msg["from"]["id"] == "ada", f"on node c: {msg}")
            break
    await ada.close()
    await cy.close()


async def node_b_knows_the_room(links, admin_token):
    """Node b took no part: its room list and its management API still show
    the room node a created and its members (the rooms of the whole space)."""
    bob = await welcome(links["b"])
    r = await request(bob, {"op": "rooms"}, 1)
    check(r["op"] == "ok" and "kit" in [x["room"] for x in r["rooms"]], f"rooms on node b: {r}")
    await bob.close()
    req = urllib.request.Request("http://127.0.0.1:8092/api/v1/rooms/kit",
                                 headers={"Authorization": f"Bearer {admin_token}"})
    with urllib.request.urlopen(req, timeout=RECV) as resp:
        room = json.load(resp)
    check(sorted(m["id"] for m in room["members"]) == ["ada", "cy"], f"kit on node b's management API: {room}")


def main():
    hutspace.require_spaced()
    if shutil.which("redis-server") is None or hutpg.available():
        print("skipped: the cluster needs redis-server and PostgreSQL (scripts/setup.sh installs them)")
        return hutspace.SKIP
    env = dict(os.environ, HUTOPIA_CLUSTER_BUILD=os.path.abspath(hutspace.build_root()))
    proc = subprocess.Popen(["bash", os.path.join(ROOT, "scripts", "cluster.sh")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    passed = failed = 0
    work = None

    def case(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {name}: {e!r}", flush=True)

    try:
        out = read_until_ready(proc, time.monotonic() + 180)
        work = re.search(r"PostgreSQL and Redis in (\S+), logs", out).group(1)
        links = dict(re.findall(r"on node (\w):\s+(http://\S+)", out))

        def links_for_every_node():
            check(sorted(links) == ["a", "b", "c"], f"a link for each node: {out}")
            for n, port in (("a", 8081), ("b", 8082), ("c", 8083)):
                check(links[n].startswith(f"http://127.0.0.1:{port}/#token="), links[n])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=RECV) as r:
                    check(r.status == 200, f"node {n} /healthz: {r.status}")

        case("links_for_every_node", links_for_every_node)
        case("post_on_a_seen_on_c", lambda: asyncio.run(asyncio.wait_for(post_on_a_seen_on_c(links), 60)))
        admin_token = re.search(r"Authorization: Bearer (\S+)", out).group(1)
        case("node_b_knows_the_room",
             lambda: asyncio.run(asyncio.wait_for(node_b_knows_the_room(links, admin_token), 60)))
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL start: {e!r}", flush=True)
    finally:
        if proc.poll() is None:
            # SIGTERM rather than SIGINT: a shell started in the background by
            # a non-interactive one ignores SIGINT and cannot trap it.
            proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()

    def stop_stops_everything():
        check(proc.returncode == 0, f"cluster.sh exit status after SIGTERM: {proc.returncode}\n{rest}")
        check(work is not None and not os.path.exists(work), f"{work} removed")
        for port in (8081, 8082, 8083):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                raise hutspace.Failure(f"port {port} still answers")
            except OSError:
                pass

    case("stop_stops_everything", stop_stops_everything)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
