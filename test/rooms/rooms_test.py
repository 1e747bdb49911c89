#!/usr/bin/env python3
"""Chat rooms (contract section 2, room ops and events) as clients see them:
a real spaced with a real SQLite store, several users and sessions at once
over python3-websockets. Ends with "N passed, N failed".
"""
import asyncio
import json
import os
import sqlite3
import sys
import time
import traceback

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402

TIMEOUT = 5.0
space = None
cases = []


def case(fn):
    cases.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Client:
    """One session: answers are matched by ref, events are kept in order."""

    def __init__(self, ws, welcome):
        self.ws = ws
        self.welcome = welcome
        self.events = []
        self.frames = []  # every frame read, in order
        self.ref = 0

    @classmethod
    async def open(cls, user, name=None):
        token = space.jwt(user=user, name=name or user.upper())
        ws = await asyncio.wait_for(
            websockets.connect(space.bus_url, subprotocols=["hutopia.v1"],
                               extra_headers={"Authorization": f"Bearer {token}"},
                               max_size=None, ping_interval=None, close_timeout=2), TIMEOUT)
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        check(msg.get("op") == "welcome", f"welcome: {msg}")
        return cls(ws, msg)

    async def _read(self, timeout):
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.frames.append(msg)
        return msg

    async def call(self, op, **fields):
        self.ref += 1
        ref = self.ref
        await self.ws.send(json.dumps({"op": op, "ref": ref, **fields}))
        for _ in range(1000):
            msg = await self._read(TIMEOUT)
            if msg.get("op") in ("ok", "error") and msg.get("ref") == ref:
                return msg
            self.events.append(msg)
        raise Failure("no answer")

    async def ok(self, op, **fields):
        msg = await self.call(op, **fields)
        check(msg["op"] == "ok", f"{op} {fields}: {msg}")
        return msg

    async def refused(self, code, op, **fields):
        msg = await self.call(op, **fields)
        check(msg["op"] == "error" and msg.get("code") == code, f"{op} {fields}: want {code}, got {msg}")
        return msg

    async def event(self, op, timeout=TIMEOUT, **match):
        def fits(m):
            return m.get("op") == op and all(m.get(k) == v for k, v in match.items())
        for i, m in enumerate(self.events):
            if fits(m):
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            left = deadline - time.monotonic()
            check(left > 0, f"no {op} {match} event; got {self.events[-5:]}")
            try:
                m = await self._read(left)
            except asyncio.TimeoutError:
                raise Failure(f"no {op} {match} event; got {self.events[-5:]}")
            if fits(m):
                return m
            self.events.append(m)
        raise Failure("too many frames")

    async def no_event(self, op, wait=0.4, **match):
        try:
            m = await self.event(op, timeout=wait, **match)
        except Failure:
            return
        raise Failure(f"unexpected {op} event: {m}")

    async def close(self):
        await self.ws.close()


async def clients(*users):
    return [await Client.open(u) for u in users]


def room_name(tag):
    return f"{tag}-{int(time.monotonic() * 1000) % 100000}"


@case
async def create_join_post_reach_every_member_session():
    a, b1, b2, c = await clients("ann", "bob", "bob", "cat")
    try:
        r = room_name("lobby")
        got = await a.ok("create", room=r, topic="hello")
        check(got.get("room") == r, f"create: {got}")
        await a.refused("conflict", "create", room=r)
        j = await b1.ok("join", room=r)
        check(j["role"] == "member" and j["last_seq"] == 0 and j["read_seq"] == 0, f"join: {j}")
        ids = {m["id"]: m for m in j["members"]}
        check(set(ids) == {"ann", "bob"} and ids["ann"]["role"] == "master" and ids["ann"]["online"],
              f"members: {j['members']}")
        ev = await a.event("joined", room=r)
        check(ev["user"]["id"] == "bob" and ev["user"]["name"] == "BOB", f"joined: {ev}")
        p = await a.ok("post", room=r, text="hi all", data={"k": 1})
        check(p["seq"] == 1 and isinstance(p["ts"], int), f"post ok: {p}")
        # The poster's own session gets the message after its ok.
        m = await a.event("message", room=r)
        ok_at = next(i for i, f in enumerate(a.frames) if f.get("op") == "ok" and f.get("seq") == 1)
        check(a.frames.index(m) > ok_at, "the message event came before the post's ok")
        for s in (b1, b2):
            m = await s.event("message", room=r)
            check(m["seq"] == 1 and m["text"] == "hi all" and m["from"]["id"] == "ann" and m["data"] == {"k": 1},
                  f"message: {m}")
        await c.no_event("message", room=r)
        rooms = (await c.ok("rooms"))["rooms"]
        check(any(x["room"] == r and x["role"] is None and x["last_seq"] == 1 for x in rooms), f"rooms: {rooms}")
        rooms = (await b2.ok("rooms"))["rooms"]
        mine = [x for x in rooms if x["room"] == r]
        check(mine and mine[0]["role"] == "member" and mine[0]["unread"] == 1 and mine[0]["topic"] == "hello",
              f"rooms of bob: {rooms}")
        await c.refused("forbidden", "post", room=r, text="not a member")
        await c.refused("not_found", "join", room="no-such-room")
        await b1.ok("leave", room=r)
        ev = await a.event("left", room=r)
        check(ev["user"]["id"] == "bob", f"left: {ev}")
        await b1.refused("forbidden", "members", room=r)
    finally:
        for x in (a, b1, b2, c):
            await x.close()


@case
async def seq_order_and_history_paging():
    a, b = await clients("ann", "bob")
    try:
        r = room_name("hist")
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        for i in range(7):
            await a.ws.send(json.dumps({"op": "post", "ref": f"p{i}", "room": r, "text": f"m{i}"}))
        seqs = [(await b.event("message", room=r))["seq"] for _ in range(7)]
        check(seqs == list(range(1, 8)), f"seqs in order: {seqs}")
        newest = await b.ok("history", room=r, limit=3)
        check([m["seq"] for m in newest["messages"]] == [5, 6, 7] and newest["more"], f"newest: {newest}")
        check([m["text"] for m in newest["messages"]] == ["m4", "m5", "m6"], "history text")
        older = await b.ok("history", room=r, before=5, limit=3)
        check([m["seq"] for m in older["messages"]] == [2, 3, 4] and older["more"], f"older: {older}")
        oldest = await b.ok("history", room=r, before=2, limit=3)
        check([m["seq"] for m in oldest["messages"]] == [1] and not oldest["more"], f"oldest: {oldest}")
        await b.refused("bad_request", "history", room=r, limit=0)
        await b.refused("bad_request", "history", room=r, limit=201)
        # A public room's history is open to anyone.
        c = await Client.open("cat")
        await c.ok("history", room=r)
        await c.close()
    finally:
        await a.close()
        await b.close()


@case
async def read_markers_never_move_back():
    a, b1, b2 = await clients("ann", "bob", "bob")
    try:
        r = room_name("read")
        await a.ok("create", room=r)
        await b1.ok("join", room=r)
        for i in range(5):
            await a.ok("post", room=r, text=str(i))
        got = await b1.ok("read", room=r, seq=3)
        check(got["unread"] == 2, f"read 3: {got}")
        ev = await b2.event("read", room=r)
        check(ev["seq"] == 3, f"read event: {ev}")
        await b1.no_event("read", room=r)
        got = await b1.ok("read", room=r, seq=1)
        check(got["unread"] == 2, f"read 1 after 3: {got}")
        j = await b1.ok("join", room=r)
        check(j["read_seq"] == 3, f"read_seq: {j}")
        b3 = await Client.open("bob")
        mine = [x for x in b3.welcome["rooms"] if x["room"] == r]
        check(mine == [{"room": r, "unread": 2}], f"welcome rooms: {b3.welcome['rooms']}")
        await b3.close()
        got = await b1.ok("read", room=r, seq=99)
        check(got["unread"] == 0, f"read past the end: {got}")
    finally:
        for x in (a, b1, b2):
            await x.close()


@case
async def private_rooms_and_dm():
    a, b, c = await clients("ann", "bob", "cat")
    try:
        r = room_name("secret")
        await a.ok("create", room=r, private=True)
        for op, extra in (("join", {}), ("history", {}), ("members", {}), ("post", {"text": "x"}),
                          ("typing", {}), ("read", {"seq": 1})):
            await c.refused("forbidden", op, room=r, **extra)
        rooms = (await c.ok("rooms"))["rooms"]
        check(all(x["room"] != r for x in rooms), "a private room is listed to a non-member")
        d1 = (await a.ok("dm", user="bob"))["room"]
        d2 = (await b.ok("dm", user="ann"))["room"]
        d3 = (await a.ok("dm", user="bob"))["room"]
        check(d1 == d2 == d3, f"dm rooms differ: {d1} {d2} {d3}")
        await b.ok("post", room=d1, text="psst")
        m = await a.event("message", room=d1)
        check(m["text"] == "psst", f"dm message: {m}")
        await c.refused("forbidden", "history", room=d1)
        await c.refused("forbidden", "join", room=d1)
        await a.refused("bad_request", "dm", user="ann")
    finally:
        for x in (a, b, c):
            await x.close()


@case
async def edit_delete_typing_and_limits():
    a, b, c = await clients("ann", "bob", "cat")
    try:
        r = room_name("edit")
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        await c.ok("join", room=r)
        seq = (await b.ok("post", room=r, text="tyop"))["seq"]
        await c.refused("forbidden", "edit", room=r, seq=seq, text="hacked")
        await b.ok("edit", room=r, seq=seq, text="typo")
        ev = await c.event("edited", room=r, seq=seq)
        check(ev["text"] == "typo" and isinstance(ev["edited_ts"], int), f"edited: {ev}")
        h = await c.ok("history", room=r)
        check(h["messages"][-1]["text"] == "typo" and "edited_ts" in h["messages"][-1], f"history: {h}")
        await c.refused("forbidden", "delete", room=r, seq=seq)
        await a.ok("delete", room=r, seq=seq)  # the master may
        await c.event("deleted", room=r, seq=seq)
        h = await c.ok("history", room=r)
        check(all(m["seq"] != seq for m in h["messages"]), "a deleted message is in history")
        await b.refused("not_found", "edit", room=r, seq=seq, text="again")
        await b.refused("too_large", "post", room=r, text="é" * 8193)
        await b.ok("post", room=r, text="é" * 8192)
        await b.ok("typing", room=r)
        ev = await c.event("typing", room=r)
        check(ev["user"]["id"] == "bob", f"typing: {ev}")
        await b.no_event("typing", room=r)
        await b.refused("rate_limited", "typing", room=r)
    finally:
        for x in (a, b, c):
            await x.close()


@case
async def moderation_rules_both_ways():
    a, b, c = await clients("ann", "bob", "cat")
    try:
        r = room_name("mod")
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        await c.ok("join", room=r)
        # A member may not kick, mute, or set roles.
        await b.refused("forbidden", "kick", room=r, user="cat")
        await b.refused("forbidden", "mute", room=r, user="cat")
        await b.refused("forbidden", "mute_all", room=r, on=True)
        await b.refused("forbidden", "role", room=r, user="cat", role="moderator")
        await a.refused("bad_request", "role", room=r, user="bob", role="king")
        await a.ok("role", room=r, user="bob", role="moderator")
        ev = await c.event("role", room=r)
        check(ev["user"]["id"] == "bob" and ev["role"] == "moderator", f"role: {ev}")
        # A moderator may not act on the master, nor set roles; a member may not act on a moderator.
        await b.refused("forbidden", "kick", room=r, user="ann")
        await b.refused("forbidden", "mute", room=r, user="ann")
        await b.refused("forbidden", "role", room=r, user="cat", role="moderator")
        await c.refused("forbidden", "kick", room=r, user="bob")
        # Mute with an end: muted until it passes.
        got = await b.ok("mute", room=r, user="cat", seconds=1)
        check(isinstance(got["until"], int), f"mute: {got}")
        ev = await c.event("muted", room=r)
        check(ev["user"]["id"] == "cat" and ev["until"] == got["until"], f"muted: {ev}")
        await c.refused("muted", "post", room=r, text="let me speak")
        m = await b.ok("members", room=r)
        check(any(x["id"] == "cat" and x["muted"] for x in m["members"]), f"members: {m}")
        await asyncio.sleep(1.3)
        await c.ok("post", room=r, text="free again")
        await c.event("unmuted", room=r)
        # Mute with no end, then unmute.
        got = await b.ok("mute", room=r, user="cat")
        check(got["until"] is None, f"mute forever: {got}")
        await c.refused("muted", "post", room=r, text="x")
        await b.ok("unmute", room=r, user="cat")
        await c.event("unmuted", room=r)
        await c.ok("post", room=r, text="unmuted")
        # mute_all spares moderators and up.
        await b.ok("mute_all", room=r, on=True)
        await c.event("muted_all", room=r, on=True)
        await c.refused("muted", "post", room=r, text="x")
        await b.ok("post", room=r, text="moderators speak")
        await a.ok("post", room=r, text="masters speak")
        await a.ok("mute_all", room=r, on=False)
        await c.ok("post", room=r, text="all may speak")
        # Kick: the kicked user's sessions get kicked, the others left.
        await b.ok("kick", room=r, user="cat")
        ev = await c.event("kicked", room=r)
        check(ev["by"]["id"] == "bob", f"kicked: {ev}")
        ev = await a.event("left", room=r, )
        check(ev["user"]["id"] == "cat", f"left: {ev}")
        await c.refused("forbidden", "post", room=r, text="back?")
        await b.refused("not_found", "kick", room=r, user="cat")
        # The master over a moderator.
        await a.ok("role", room=r, user="bob", role="member")
        await b.refused("forbidden", "mute_all", room=r, on=True)
        await a.ok("kick", room=r, user="bob")
        await b.event("kicked", room=r)
    finally:
        for x in (a, b, c):
            await x.close()


@case
async def presence_on_first_open_and_last_close():
    a = await Client.open("ann")
    d1 = await Client.open("dan")
    try:
        r = room_name("pres")
        await a.ok("create", room=r)
        await d1.ok("join", room=r)
        d2 = await Client.open("dan")
        await a.no_event("presence", wait=0.3)
        await d1.close()
        await a.no_event("presence", wait=0.3)
        await d2.close()
        ev = await a.event("presence")
        check(ev["user"]["id"] == "dan" and ev["online"] is False, f"presence: {ev}")
        d3 = await Client.open("dan")
        ev = await a.event("presence")
        check(ev["user"]["id"] == "dan" and ev["online"] is True, f"presence: {ev}")
        m = await a.ok("members", room=r)
        check(any(x["id"] == "dan" and x["online"] for x in m["members"]), f"members: {m}")
        await d3.close()
    finally:
        await a.close()


@case
async def post_rate_limit():
    # The space runs with post_rate 5 and post_burst 10.
    a = await Client.open("eve")
    try:
        r = room_name("rate")
        await a.ok("create", room=r)
        answers = []
        for i in range(15):
            await a.ws.send(json.dumps({"op": "post", "ref": i + 1, "room": r, "text": str(i)}))
        for _ in range(200):
            if len(answers) == 15:
                break
            m = await a._read(TIMEOUT)
            if m.get("op") in ("ok", "error"):
                answers.append(m)
        oks = sum(1 for m in answers if m["op"] == "ok")
        limited = sum(1 for m in answers if m.get("code") == "rate_limited")
        check(oks >= 10 and limited >= 1 and oks + limited == 15, f"{oks} ok, {limited} rate_limited")
    finally:
        await a.close()


def now_ms():
    return int(time.time() * 1000)


def stored_mute(room, user):
    """The member's mute_until as the store holds it (None: not muted)."""
    db = sqlite3.connect(os.path.join(space.tmp, "data", "space.db"), timeout=5)
    try:
        row = db.execute("SELECT m.mute_until FROM members m JOIN rooms r ON r.rid = m.rid "
                         "JOIN users u ON u.uid = m.uid WHERE r.id = ? AND u.id = ?", (room, user)).fetchone()
    finally:
        db.close()
    check(row is not None, f"{user} is not a member of {room} in the store")
    return row[0]


@case
async def a_mute_that_ends_sends_unmuted_to_every_member():
    a, b, c1, c2 = await clients("ann", "bob", "cat", "cat")
    try:
        r = room_name("mute-end")
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        await c1.ok("join", room=r)
        until = (await a.ok("mute", room=r, user="cat", seconds=1))["until"]
        await c1.refused("muted", "post", room=r, text="x")
        ev = await c2.event("unmuted", timeout=4, room=r)
        arrived = now_ms()
        check(ev == {"op": "unmuted", "room": r, "user": {"id": "cat", "name": "CAT"}}, f"unmuted: {ev}")
        check(until - 20 <= arrived <= until + 2500, f"unmuted at {arrived}, the mute ended at {until}")
        for x in (a, b, c1):
            await x.event("unmuted", timeout=1, room=r)
        check(stored_mute(r, "cat") is None, "the ended mute is still in the store")
        await c1.ok("post", room=r, text="free again")
        m = await b.ok("members", room=r)
        check(any(x["id"] == "cat" and not x["muted"] for x in m["members"]), f"members: {m}")
        await c1.no_event("unmuted", room=r)
        # A mute replaced before it ends is not ended by the old end.
        await a.ok("mute", room=r, user="cat", seconds=1)
        await a.ok("mute", room=r, user="cat")
        await c1.no_event("unmuted", wait=1.5, room=r)
        await c1.refused("muted", "post", room=r, text="still muted")
        check(stored_mute(r, "cat") is not None, "the mute with no end was cleared")
        await a.ok("unmute", room=r, user="cat")
        await c1.event("unmuted", room=r)
        await c1.no_event("unmuted", room=r)
    finally:
        for x in (a, b, c1, c2):
            await x.close()


@case
async def a_mute_running_at_a_restart_still_ends():
    a, c = await clients("ann", "cat")
    r = room_name("mute-restart")
    await a.ok("create", room=r)
    await c.ok("join", room=r)
    until = (await a.ok("mute", room=r, user="cat", seconds=6))["until"]
    await a.close()
    await c.close()
    status = space.terminate()
    check(status == 0, f"spaced with a running mute exited with {status}")
    space.start()
    a, c = await clients("ann", "cat")
    try:
        check(now_ms() < until - 500, "the restart took longer than the mute")
        await c.refused("muted", "post", room=r, text="x")
        ev = await c.event("unmuted", timeout=(until - now_ms()) / 1000 + 3, room=r)
        arrived = now_ms()
        check(ev["user"]["id"] == "cat" and until - 20 <= arrived <= until + 2500,
              f"unmuted {ev} at {arrived}, the mute ended at {until}")
        await a.event("unmuted", timeout=1, room=r)
        check(stored_mute(r, "cat") is None, "the ended mute is still in the store")
        await c.ok("post", room=r, text="after the restart")
    finally:
        await a.close()
        await c.close()


def unread_of(rooms, r):
    mine = [x["unread"] for x in rooms if x["room"] == r]
    check(len(mine) == 1, f"{r} in {rooms}")
    return mine[0]


@case
async def unread_counts_leave_deleted_messages_out():
    a, b = await clients("ann", "bob")
    r = room_name("unread")
    try:
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        for i in range(5):
            await a.ok("post", room=r, text=f"u{i}")
        check((await b.ok("read", room=r, seq=2))["unread"] == 3, "read 2 of 5")
        await a.ok("delete", room=r, seq=4)
        await a.ok("delete", room=r, seq=1)  # below bob's marker: no change
        await b.event("deleted", room=r, seq=1)
        b2 = await Client.open("bob")
        got = unread_of(b2.welcome["rooms"], r)
        await b2.close()
        check(got == 2, f"welcome unread after a delete: {got}")
        got = unread_of((await b.ok("rooms"))["rooms"], r)
        check(got == 2, f"rooms unread after a delete: {got}")
        check((await b.ok("read", room=r, seq=2))["unread"] == 2, "read's unread after a delete")
        check(unread_of((await a.ok("rooms"))["rooms"], r) == 0, "the poster has unread messages")
    finally:
        await a.close()
        await b.close()
    space.terminate()
    space.start()
    b = await Client.open("bob")
    try:
        got = unread_of(b.welcome["rooms"], r)
        check(got == 2, f"welcome unread after a restart: {got}")
        check((await b.ok("read", room=r, seq=3))["unread"] == 1, "read 3 after a restart")
        check(unread_of((await b.ok("rooms"))["rooms"], r) == 1, "rooms unread after reading more")
    finally:
        await b.close()


@case
async def membership_and_messages_survive_a_restart():
    a = await Client.open("ann")
    r = room_name("keep")
    await a.ok("create", room=r, private=True)
    await a.ok("post", room=r, text="kept")
    await a.close()
    space.terminate()
    space.start()
    a = await Client.open("ann")
    try:
        check(any(x["room"] == r for x in a.welcome["rooms"]), f"welcome rooms: {a.welcome['rooms']}")
        h = await a.ok("history", room=r)
        check([m["text"] for m in h["messages"]] == ["kept"], f"history: {h}")
        c = await Client.open("cat")
        await c.refused("forbidden", "history", room=r)
        await c.close()
    finally:
        await a.close()


def admin(method, path, body=None, token=True):
    headers = {"Authorization": f"Bearer {space.admin_token}"} if token else {}
    return hutspace.http(method, space.admin + path, body, headers=headers)[::2]


@case
async def management_api_rooms_routes():
    r = room_name("api")
    status, _ = admin("GET", "/api/v1/rooms", token=False)
    check(status == 401, f"no token: {status}")
    status, body = admin("POST", "/api/v1/rooms", {"room": r, "private": True, "topic": "t",
                                                   "master": "ann", "members": ["bob"]})
    check(status == 201 and body == {"room": r}, f"create: {status} {body}")
    status, body = admin("POST", "/api/v1/rooms", {"room": r})
    check(status == 409, f"create again: {status} {body}")
    status, body = admin("POST", "/api/v1/rooms", {"topic": "no id"})
    check(status == 400, f"create without room: {status} {body}")
    status, body = admin("GET", "/api/v1/rooms")
    mine = [x for x in body if x["room"] == r]
    check(status == 200 and mine == [{"room": r, "private": True, "topic": "t", "members": 2, "online": 0,
                                      "last_seq": 0}], f"list: {status} {mine}")
    status, body = admin("GET", f"/api/v1/rooms/{r}")
    check(status == 200 and sorted((m["id"], m["role"]) for m in body["members"]) ==
          [("ann", "master"), ("bob", "member")], f"get: {status} {body}")
    status, _ = admin("GET", "/api/v1/rooms/no-such-room")
    check(status == 404, f"get missing: {status}")
    a, b, c = await clients("ann", "bob", "cat")
    try:
        check(any(x["room"] == r for x in a.welcome["rooms"]), f"welcome: {a.welcome['rooms']}")
        status, body = admin("POST", f"/api/v1/rooms/{r}/messages",
                             {"text": "from the backend", "data": [1], "from": {"id": "bot", "name": "Bot"}})
        check(status == 201 and body["seq"] == 1 and isinstance(body["ts"], int), f"post: {status} {body}")
        for x in (a, b):
            m = await x.event("message", room=r)
            check(m["from"] == {"id": "bot", "name": "Bot"} and m["text"] == "from the backend" and m["data"] == [1],
                  f"message: {m}")
        await c.no_event("message", room=r)
        await a.ok("post", room=r, text="second")
        status, body = admin("GET", f"/api/v1/rooms/{r}/messages?limit=1")
        check(status == 200 and [m["text"] for m in body["messages"]] == ["second"] and body["more"],
              f"messages: {status} {body}")
        status, body = admin("GET", f"/api/v1/rooms/{r}/messages?before=2")
        check(status == 200 and [m["seq"] for m in body["messages"]] == [1] and not body["more"],
              f"messages before 2: {status} {body}")
        status, body = admin("PUT", f"/api/v1/rooms/{r}/members/cat", {"role": "moderator"})
        check(status == 200, f"put member: {status} {body}")
        ev = await a.event("joined", room=r)
        check(ev["user"]["id"] == "cat", f"joined: {ev}")
        j = await c.ok("join", room=r)
        check(j["role"] == "moderator", f"cat's role: {j}")
        status, _ = admin("DELETE", f"/api/v1/rooms/{r}/members/bob")
        check(status == 204, f"kick: {status}")
        ev = await b.event("kicked", room=r)
        check(isinstance(ev["by"], dict) and "id" in ev["by"], f"kicked: {ev}")
        ev = await a.event("left", room=r)
        check(ev["user"]["id"] == "bob", f"left: {ev}")
        await b.refused("forbidden", "history", room=r)
        status, _ = admin("DELETE", f"/api/v1/rooms/{r}/members/bob")
        check(status == 404, f"kick again: {status}")
        status, _ = admin("DELETE", f"/api/v1/rooms/{r}")
        check(status == 204, f"delete: {status}")
        for x in (a, c):
            await x.event("room_removed", room=r)
        await b.no_event("room_removed", room=r)
        status, _ = admin("GET", f"/api/v1/rooms/{r}")
        check(status == 404, f"get deleted: {status}")
        await a.refused("not_found", "post", room=r, text="gone")
    finally:
        for x in (a, b, c):
            await x.close()


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
    global space
    hutspace.require_spaced()
    space = hutspace.Spaced(limits={"post_rate": 5, "post_burst": 10})
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
