#!/usr/bin/env python3
"""What a hostile member cannot do to a room, against a real spaced with a
real SQLite store: escape a mute by leaving and joining, come back after a
ban, make a room's history, the room list or a big room's join reply so large
that the asker is closed (4008), open direct-message rooms with users the space
has never seen, or create rooms and direct-message rooms without end. Mutes,
bans and quotas hold across a restart. Ends with "N passed, N failed".
"""
import asyncio
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, HERE)
import hutspace  # noqa: E402
import rooms_test as rt  # noqa: E402
from rooms_test import Client, Failure, check, clients, room_name  # noqa: E402

ROOMS_PER_USER = 300
DMS_PER_HOUR = 3
CASE_TIMEOUT = 90
cases = []


def case(fn):
    cases.append(fn)
    return fn


def admin(method, path, body=None):
    headers = {"Authorization": f"Bearer {rt.space.admin_token}"}
    status, _, answer = hutspace.http(method, rt.space.admin + path, body, headers=headers, timeout=60)
    return status, answer


def restart():
    check(rt.space.terminate() == 0, "spaced did not stop cleanly")
    rt.space.start()


async def still_open(c):
    """The connection was not closed (4008 or otherwise): a ping still gets its answer."""
    await c.ok("ping")


async def pipelined(c, frames):
    """Sends every frame at once (refs 1..n past the client's), then reads the n answers."""
    first = c.ref + 1
    for f in frames:
        c.ref += 1
        await c.ws.send(json.dumps({**f, "ref": c.ref}))
    answers = {}
    while len(answers) < len(frames):
        msg = await c._read(30)
        if msg.get("op") in ("ok", "error") and isinstance(msg.get("ref"), int) and msg["ref"] >= first:
            answers[msg["ref"]] = msg
        else:
            c.events.append(msg)
    return [answers[first + i] for i in range(len(frames))]


# --- item 4: mutes and bans survive leave, join and restarts ---

@case
async def a_mute_survives_leave_and_join_and_a_restart():
    a, c = await clients("ann", "cat")
    r = room_name("mute-escape")
    t = room_name("mute-escape-timed")
    try:
        await a.ok("create", room=r)
        await a.ok("create", room=t)
        await c.ok("join", room=r)
        await c.ok("join", room=t)
        await a.ok("mute", room=r, user="cat")
        until = (await a.ok("mute", room=t, user="cat", seconds=600))["until"]
        await c.ok("leave", room=r)
        await c.ok("leave", room=t)
        await c.ok("join", room=r)
        await c.ok("join", room=t)
        await c.refused("muted", "post", room=r, text="escaped?")
        await c.refused("muted", "post", room=t, text="escaped?")
        members = (await a.ok("members", room=r))["members"]
        check([x["muted"] for x in members if x["id"] == "cat"] == [True], f"members: {members}")
        # Out of the room across a restart: the mute is still waiting for them.
        await c.ok("leave", room=t)
    finally:
        await a.close()
        await c.close()
    restart()
    a, c = await clients("ann", "cat")
    try:
        await c.refused("muted", "post", room=r, text="after a restart")
        await c.ok("join", room=t)
        await c.refused("muted", "post", room=t, text="after a restart")
        await a.ok("unmute", room=t, user="cat")
        await c.ok("post", room=t, text="unmuted by a moderator")
        # An unmute is not undone by leaving and joining either.
        await c.ok("leave", room=t)
        await c.ok("join", room=t)
        await c.ok("post", room=t, text="still unmuted")
        check(until > time.time() * 1000, "the timed mute ended during the test")
    finally:
        await a.close()
        await c.close()


@case
async def a_banned_user_cannot_join_until_unbanned_also_after_a_restart():
    a, m, b = await clients("ann", "moe", "bob")
    r = room_name("ban")
    try:
        await a.ok("create", room=r)
        await m.ok("join", room=r)
        await a.ok("role", room=r, user="moe", role="moderator")
        await b.ok("join", room=r)
        # A moderator bans a member: they leave the room and are told so.
        await m.refused("forbidden", "ban", room=r, user="ann")
        await b.refused("forbidden", "ban", room=r, user="moe")
        await m.ok("ban", room=r, user="bob")
        kicked = await b.event("kicked", room=r)
        check(kicked["by"]["id"] == "moe", f"kicked: {kicked}")
        await a.event("left", room=r, user={"id": "bob", "name": "BOB"})
        await b.refused("forbidden", "join", room=r)
        await b.refused("forbidden", "post", room=r, text="still here?")
        # Nor may the management API add them back while the ban holds.
        status, body = admin("PUT", f"/api/v1/rooms/{r}/members/bob", {})
        check(status == 409, f"admin re-add of a banned user: {status} {body}")
        # A ban before they ever joined, and kick with ban.
        await m.ok("ban", room=r, user="dan")
        dan = await Client.open("dan")
        try:
            await dan.refused("forbidden", "join", room=r)
        finally:
            await dan.close()
        eve = await Client.open("eve")
        try:
            await eve.ok("join", room=r)
            await m.refused("bad_request", "kick", room=r, user="eve", ban="yes")
            await m.ok("kick", room=r, user="eve", ban=True)
            await eve.event("kicked", room=r)
            await eve.refused("forbidden", "join", room=r)
        finally:
            await eve.close()
        await m.refused("not_found", "unban", room=r, user="nobody-banned")
    finally:
        for x in (a, m, b):
            await x.close()
    restart()
    a, b = await clients("ann", "bob")
    try:
        await b.refused("forbidden", "join", room=r)
        await a.ok("unban", room=r, user="bob")
        await b.ok("join", room=r)
        await b.ok("post", room=r, text="back")
        status, body = admin("DELETE", f"/api/v1/rooms/{r}/bans/eve")
        check(status == 204, f"admin unban: {status} {body}")
        eve = await Client.open("eve")
        try:
            await eve.ok("join", room=r)
        finally:
            await eve.close()
        status, body = admin("PUT", f"/api/v1/rooms/{r}/bans/bob")
        check(status == 204, f"admin ban: {status} {body}")
        await b.event("kicked", room=r)
        await b.refused("forbidden", "join", room=r)
    finally:
        await a.close()
        await b.close()


# --- item 5: replies the space builds never close the asker ---

@case
async def history_of_maximum_size_messages_is_paged_not_closed():
    a, b = await clients("ann", "bob")
    try:
        r = room_name("big-history")
        await a.ok("create", room=r)
        # 40 messages of 16 KiB text and 16 KiB data: 1.3 MB, over the 1 MiB backpressure limit.
        n = 40
        posts = [{"op": "post", "room": r, "text": f"{i:04d}" + "x" * 16380,
                  "data": {"d": "y" * 16000}} for i in range(n)]
        answers = await pipelined(a, posts)
        check(all(x["op"] == "ok" for x in answers), f"posts: {[x for x in answers if x['op'] != 'ok'][:1]}")
        # Bob joins afterwards: what is tested is the history page, not how
        # fast this client reads 1.3 MB of live events on a loaded machine.
        await b.ok("join", room=r)
        page = await b.ok("history", room=r, limit=200)
        size = len(json.dumps(page))
        check(page["more"] is True and 0 < len(page["messages"]) < n, f"{len(page['messages'])} messages, "
              f"more {page['more']}")
        check(size < 400 * 1024, f"a page of {size} bytes")
        seen = [m["seq"] for m in page["messages"]]
        while page["more"]:
            page = await b.ok("history", room=r, before=seen[0], limit=200)
            seen = [m["seq"] for m in page["messages"]] + seen
        check(seen == list(range(1, n + 1)), f"paging back gave {seen}")
        await still_open(b)
    finally:
        await a.close()
        await b.close()


@case
async def room_list_of_maximum_size_topics_is_paged_and_creation_is_bounded():
    f, b = await clients("fay", "bob")
    prefix = room_name("topics")
    try:
        # Topics of 1024 control bytes: each is 6 KiB as JSON, 300 rooms 1.8 MB.
        topic = "\x01" * 1024
        answers = await pipelined(f, [{"op": "create", "room": f"{prefix}-{i:03d}", "topic": topic}
                                      for i in range(ROOMS_PER_USER)])
        check(all(x["op"] == "ok" for x in answers), f"creates: {[x for x in answers if x['op'] != 'ok'][:1]}")
        # The quota: a user may have created ROOMS_PER_USER rooms at most.
        await f.refused("rate_limited", "create", room=f"{prefix}-one-more")
        await f.refused("too_large", "create", room=f"{prefix}-long-topic", topic="t" * 1025)
        page = await b.ok("rooms")
        check(page["more"] is True and 0 < len(page["rooms"]) < ROOMS_PER_USER,
              f"first page: {len(page['rooms'])} rooms, more {page.get('more')}")
        check(len(json.dumps(page)) < 400 * 1024, f"a page of {len(json.dumps(page))} bytes")
        names = [x["room"] for x in page["rooms"]]
        while page["more"]:
            page = await b.ok("rooms", after=names[-1])
            names += [x["room"] for x in page["rooms"]]
        mine = [n for n in names if n.startswith(prefix + "-")]
        check(len(names) == len(set(names)), "a room came twice")
        check(mine == [f"{prefix}-{i:03d}" for i in range(ROOMS_PER_USER)], f"{len(mine)} of the rooms listed")
        small = await b.ok("rooms", limit=5)
        check(len(small["rooms"]) == 5 and small["more"] is True, f"limit 5: {small}")
        await b.refused("bad_request", "rooms", limit=0)
        await b.refused("bad_request", "rooms", after=5)
        await still_open(b)
        # A room the user created counts until it is removed, across a restart.
        await f.close()
        restart()
        f = await Client.open("fay")
        await f.refused("rate_limited", "create", room=f"{prefix}-one-more")
        status, _ = admin("DELETE", f"/api/v1/rooms/{prefix}-000")
        check(status == 204, f"admin delete: {status}")
        await f.ok("create", room=f"{prefix}-one-more")
        await f.refused("rate_limited", "create", room=f"{prefix}-two-more")
        # The management API is not bound by the quota.
        status, body = admin("POST", "/api/v1/rooms", {"room": f"{prefix}-by-admin", "master": "fay"})
        check(status == 201, f"admin create: {status} {body}")
    finally:
        await f.close()
        await b.close()


@case
async def join_of_a_room_with_15000_members_gets_a_first_page():
    r = room_name("crowd")
    ids = [f"crowd-member-{i:05d}-with-a-long-id" for i in range(15000)]
    status, body = admin("POST", "/api/v1/rooms", {"room": r, "master": "ann", "members": ids})
    check(status == 201, f"admin create with 15000 members: {status} {body}")
    j = await Client.open("joe")
    try:
        got = await j.ok("join", room=r)
        check(got["member_count"] == 15002, f"member_count {got.get('member_count')}")
        check(got["more"] is True and 0 < len(got["members"]) <= 100, f"{len(got['members'])} members")
        check(len(json.dumps(got)) < 400 * 1024, f"join reply of {len(json.dumps(got))} bytes")
        check(got["members"][0]["id"] == "joe", f"online first: {got['members'][0]}")
        page = await j.ok("members", room=r, after=got["members"][-1]["id"], limit=1000)
        check(len(page["members"]) == 1000 and page["more"] is True, f"{len(page['members'])} members")
        await still_open(j)
    finally:
        await j.close()


# --- item 7: direct-message rooms only with known users, and bounded ---

@case
async def dm_only_with_users_the_space_has_seen_and_at_a_bounded_rate():
    a = await Client.open("ada")
    try:
        await a.refused("not_found", "dm", user="ghost-that-never-came")
        # Users who said hello are known, across a restart.
        for u in ("dm-one", "dm-two", "dm-three", "dm-four"):
            x = await Client.open(u)
            await x.close()
        await a.close()
        restart()
        a = await Client.open("ada")
        rooms = [(await a.ok("dm", user=u))["room"] for u in ("dm-one", "dm-two", "dm-three")]
        check(len(set(rooms)) == 3, f"dm rooms: {rooms}")
        # The budget is of new rooms: a fourth is refused, an existing one opens.
        await a.refused("rate_limited", "dm", user="dm-four")
        again = await a.ok("dm", user="dm-two")
        check(again["room"] == rooms[1], f"the same room again: {again}")
        await a.refused("not_found", "dm", user="ghost-that-never-came")
        # Members the management API named are known too.
        status, _ = admin("POST", "/api/v1/rooms", {"room": room_name("named"), "members": ["named-by-admin"]})
        check(status == 201, f"admin create: {status}")
        other = await Client.open("ben")
        try:
            await other.ok("dm", user="named-by-admin")
        finally:
            await other.close()
    finally:
        await a.close()


async def run_all():
    passed = failed = 0
    only = set(sys.argv[1:])
    for fn in cases:
        if only and fn.__name__ not in only:
            continue
        started = time.monotonic()
        try:
            await asyncio.wait_for(fn(), CASE_TIMEOUT)
            passed += 1
            print(f"ok   {fn.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - a failing case must not stop the others
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}", flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc(file=sys.stdout)
            if not rt.space.alive():
                rt.space.start()
    return passed, failed


def main():
    hutspace.require_spaced()
    rt.TIMEOUT = 30.0
    space = hutspace.Spaced(limits={"rooms_per_user": ROOMS_PER_USER, "dms_per_hour": DMS_PER_HOUR})
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
