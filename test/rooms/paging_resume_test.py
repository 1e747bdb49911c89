#!/usr/bin/env python3
"""The resume credential, `history` with `after`, DM rooms in `rooms`, and
paged member lists (contract section 2), against a real spaced on a real
SQLite store. Ends with "N passed, N failed".
"""
import asyncio
import json
import os
import sys
import traceback

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, HERE)
import hutspace  # noqa: E402
import rooms_test as rt  # noqa: E402
from rooms_test import Client, Failure, check, clients, room_name  # noqa: E402

TIMEOUT = rt.TIMEOUT
cases = []


def case(fn):
    cases.append(fn)
    return fn


async def hello(frame):
    """Opens a bus connection without a header and sends `frame` first;
    returns (ws, first answer) and, on a refusal, the close code."""
    ws = await asyncio.wait_for(
        websockets.connect(rt.space.bus_url, subprotocols=["hutopia.v1"], max_size=None,
                           ping_interval=None, close_timeout=2), TIMEOUT)
    await ws.send(json.dumps(frame))
    msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return ws, msg


async def refused_with_4001(frame):
    ws, msg = await hello(frame)
    check(msg.get("op") == "error" and msg.get("code") == "unauthenticated", f"hello {frame}: {msg}")
    try:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        raise Failure("the connection stayed open after the refusal")
    except websockets.ConnectionClosed as e:
        check(e.code == 4001, f"close code {e.code}")


@case
async def resume_welcomes_the_same_user_once():
    ws, w1 = await hello({"op": "hello", "token": rt.space.jwt(user="rita", name="Rita R", avatar="http://a/r.png")})
    try:
        check(w1["op"] == "welcome" and isinstance(w1.get("resume"), str) and len(w1["resume"]) >= 32,
              f"welcome: {w1}")
    finally:
        await ws.close()
    ws, w2 = await hello({"op": "hello", "ref": 3, "resume": w1["resume"]})
    try:
        check(w2["op"] == "welcome" and w2.get("ref") == 3, f"resumed welcome: {w2}")
        check(w2["user"] == {"id": "rita", "name": "Rita R", "avatar": "http://a/r.png"}, f"user: {w2['user']}")
        check(w2["resume"] != w1["resume"], "the resumed welcome brought the same credential")
        c = Client(ws, w2)
        await c.ok("ping")
    finally:
        await ws.close()
    # Used once: refused like a bad token.
    await refused_with_4001({"op": "hello", "resume": w1["resume"]})
    await refused_with_4001({"op": "hello", "resume": "not-a-credential"})
    # The new one still works once.
    ws, w3 = await hello({"op": "hello", "resume": w2["resume"]})
    await ws.close()
    check(w3["op"] == "welcome" and w3["user"]["id"] == "rita", f"third welcome: {w3}")


@case
async def history_after_pages_forward():
    a, = await clients("hal")
    try:
        r = room_name("after")
        await a.ok("create", room=r)
        for i in range(7):
            await a.ok("post", room=r, text=f"m{i}")
        p = await a.ok("history", room=r, after=2, limit=3)
        check([m["seq"] for m in p["messages"]] == [3, 4, 5] and p["more"] is True, f"after 2: {p}")
        p = await a.ok("history", room=r, after=5, limit=3)
        check([m["seq"] for m in p["messages"]] == [6, 7] and p["more"] is False, f"after 5: {p}")
        p = await a.ok("history", room=r, after=7)
        check(p["messages"] == [] and p["more"] is False, f"after 7: {p}")
        await a.refused("bad_request", "history", room=r, after=1, before=5)
        await a.refused("bad_request", "history", room=r, after="x")
    finally:
        await a.close()


@case
async def rooms_mark_direct_messages():
    a, b = await clients("dora", "ed")
    try:
        got = await a.ok("dm", user="ed")
        rooms = (await a.ok("rooms"))["rooms"]
        mine = [x for x in rooms if x["room"] == got["room"]]
        check(mine and mine[0].get("dm", {}).get("id") == "ed" and mine[0]["dm"]["name"] == "ED",
              f"rooms of dora: {rooms}")
        rooms = (await b.ok("rooms"))["rooms"]
        theirs = [x for x in rooms if x["room"] == got["room"]]
        check(theirs and theirs[0].get("dm", {}).get("id") == "dora", f"rooms of ed: {rooms}")
        r = room_name("plain")
        await a.ok("create", room=r)
        rooms = (await a.ok("rooms"))["rooms"]
        check(all("dm" not in x for x in rooms if x["room"] == r), f"a plain room with dm: {rooms}")
    finally:
        await a.close()
        await b.close()


@case
async def members_are_paged_online_first():
    r = room_name("many")
    owner, = await clients("m-owner")
    try:
        status, _ = rt.admin("POST", "/api/v1/rooms", {"room": r, "master": "m-owner",
                                                       "members": [f"m{i:03d}" for i in range(250)]})
        check(status == 201, f"create: {status}")
        online, = await clients("m200")
        try:
            j = await online.ok("join", room=r)
            check(j["member_count"] == 251 and j["more"] is True and len(j["members"]) == 100, f"join: {len(j['members'])} {j.get('more')}")
            first = [m["id"] for m in j["members"][:2]]
            check(set(first) == {"m-owner", "m200"} and all(m["online"] for m in j["members"][:2]),
                  f"online first: {j['members'][:3]}")
            seen = [m["id"] for m in j["members"]]
            after = seen[-1]
            for _ in range(10):
                p = await online.ok("members", room=r, after=after, limit=70)
                seen += [m["id"] for m in p["members"]]
                if not p["more"]:
                    break
                after = p["members"][-1]["id"]
            check(len(seen) == 251 and len(set(seen)) == 251, f"paged {len(seen)} ({len(set(seen))} distinct)")
            await online.refused("bad_request", "members", room=r, limit=0)
            await online.refused("bad_request", "members", room=r, after=3)
        finally:
            await online.close()
    finally:
        await owner.close()


@case
async def a_muted_member_cannot_edit():
    a, b = await clients("mod-a", "mut-b")
    try:
        r = room_name("edit-mute")
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        p = await b.ok("post", room=r, text="before")
        await a.ok("mute", room=r, user="mut-b")
        await b.refused("muted", "edit", room=r, seq=p["seq"], text="after")
        h = await a.ok("history", room=r)
        check([m["text"] for m in h["messages"]] == ["before"], f"history: {h}")
    finally:
        await a.close()
        await b.close()


@case
async def topic_and_data_sizes_are_bounded():
    a, = await clients("big")
    try:
        r = room_name("big")
        await a.refused("too_large", "create", room=r, topic="t" * 1025)
        await a.ok("create", room=r, topic="t" * 1024)
        await a.refused("too_large", "post", room=r, text="x", data={"d": "y" * 60000})
        await a.ok("post", room=r, text="x", data={"d": "y" * 16000})
    finally:
        await a.close()


@case
async def resume_survives_a_restart():
    ws, w1 = await hello({"op": "hello", "token": rt.space.jwt(user="rex", name="Rex")})
    await ws.close()
    status = rt.space.terminate()
    check(status == 0, f"spaced exit {status}")
    rt.space.start()
    ws, w2 = await hello({"op": "hello", "resume": w1["resume"]})
    await ws.close()
    check(w2["op"] == "welcome" and w2["user"]["id"] == "rex" and w2["user"]["name"] == "Rex", f"after restart: {w2}")
    await refused_with_4001({"op": "hello", "resume": w1["resume"]})


async def run_all():
    passed = failed = 0
    for fn in cases:
        try:
            await asyncio.wait_for(fn(), 120)
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
    rt.space = hutspace.Spaced()
    rt.space.start()
    try:
        passed, failed = asyncio.run(run_all())
    finally:
        alive = rt.space.alive()
        rt.space.stop()
    if failed:
        print(rt.space.log())
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and alive else 1)


if __name__ == "__main__":
    main()
