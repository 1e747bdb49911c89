#!/usr/bin/env python3
"""Voice signaling (contract section 8) as clients see it: a real spaced with
the voice plugin built in this tree, rooms made through the management API,
several users over python3-websockets.

Checks who may join, the participant limit, that signals reach only the
addressed participant, moderation of mutes, the grace period after a dropped
connection, and the TURN credentials (the HMAC recomputed here).
Ends with "N passed, N failed". Exits 77 when spaced is not built.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "rooms"))
import hutspace  # noqa: E402
import rooms_test  # noqa: E402
from rooms_test import Client, Failure, check  # noqa: E402

SECRET = "made-up-turn-secret-for-tests"
TTL = 600
MAX = 4
GRACE = 2  # seconds
SIGNAL_RATE = 20
SIGNAL_BURST = 20
cases = []


def case(fn):
    cases.append(fn)
    return fn


def admin(method, path, body=None):
    space = rooms_test.space
    return hutspace.http(method, space.admin + path, body,
                         headers={"Authorization": f"Bearer {space.admin_token}"})[::2]


_rooms = [0]


def make_room(members=("ann", "bob", "cat", "dan", "fay")):
    """A room with master boss, moderator mod and the given members; returns its name."""
    _rooms[0] += 1
    room = f"voice-{_rooms[0]}"
    status, body = admin("POST", "/api/v1/rooms", {"room": room, "master": "boss", "members": list(members)})
    check(status == 201, f"create {room}: {status} {body}")
    status, body = admin("PUT", f"/api/v1/rooms/{room}/members/mod", {"role": "moderator"})
    check(status == 200, f"moderator: {status} {body}")
    return room


async def voice(c, **data):
    """A voice request; returns the whole answer frame."""
    return await c.call("widget", plugin="voice", data=data)


async def voice_ok(c, **data):
    msg = await voice(c, **data)
    check(msg["op"] == "ok", f"voice {data}: {msg}")
    return msg["data"]


async def voice_refused(c, code, **data):
    msg = await voice(c, **data)
    check(msg["op"] == "error" and msg.get("code") == code, f"voice {data}: want {code}, got {msg}")
    return msg


async def voice_event(c, event, timeout=rooms_test.TIMEOUT, **match):
    def fits(m):
        d = m.get("data") or {}
        return m.get("plugin") == "voice" and d.get("event") == event and all(
            (d.get(k) == v if not isinstance(v, str) or k != "user" else (d.get("user") or {}).get("id") == v)
            for k, v in match.items())
    for i, m in enumerate(c.events):
        if m.get("op") == "widget" and fits(m):
            return c.events.pop(i)["data"]
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"no voice {event} {match}; got {c.events[-5:]}")
        try:
            m = await c._read(left)
        except asyncio.TimeoutError:
            raise Failure(f"no voice {event} {match}; got {c.events[-5:]}")
        if m.get("op") == "widget" and fits(m):
            return m["data"]
        c.events.append(m)


async def no_voice_event(c, event, wait=0.5, **match):
    try:
        d = await voice_event(c, event, timeout=wait, **match)
    except Failure:
        return
    raise Failure(f"unexpected voice {event} event: {d}")


async def close_all(*cs):
    for c in cs:
        try:
            await c.close()
        except Exception:
            pass


@case
async def ice_gives_turn_rest_credentials_that_verify_and_expire():
    a = await Client.open("ann")
    try:
        before = int(time.time())
        d = await voice_ok(a, action="ice")
        after = int(time.time())
        check(d["ttl"] == TTL, f"ttl: {d}")
        servers = d["ice_servers"]
        stun = [s for s in servers if any(u.startswith("stun:") for u in s["urls"])]
        turn = [s for s in servers if any(u.startswith("turn:") for u in s["urls"])]
        check(len(stun) == 1 and stun[0]["urls"] == ["stun:127.0.0.1:3478"] and "credential" not in stun[0],
              f"stun: {servers}")
        check(len(turn) == 1 and turn[0]["urls"] == ["turn:127.0.0.1:3478?transport=udp"], f"turn: {servers}")
        user, cred = turn[0]["username"], turn[0]["credential"]
        expiry, _, uid = user.partition(":")
        check(uid == "ann", f"user id in the username: {user}")
        check(before + TTL <= int(expiry) <= after + TTL, f"expiry {expiry} is not now + {TTL} ({before}..{after})")
        want = base64.b64encode(hmac.new(SECRET.encode(), user.encode(), hashlib.sha1).digest()).decode()
        check(cred == want, f"credential {cred} != base64(HMAC-SHA1(secret, username)) {want}")
        wrong = base64.b64encode(hmac.new(b"another secret", user.encode(), hashlib.sha1).digest()).decode()
        check(cred != wrong, "the credential does not depend on the secret")
        raw = json.dumps(a.frames)
        check(SECRET not in raw, "the TURN secret reached a client")
    finally:
        await a.close()


@case
async def only_members_join_and_newcomers_get_the_participants():
    room = make_room()
    a, b, e = await Client.open("ann"), await Client.open("bob"), await Client.open("eve")
    try:
        got = await voice_refused(e, "forbidden", action="join", room=room)
        check("member" in got["message"], f"a refusal in words: {got}")
        await voice_refused(a, "not_found", action="join", room="no-such-room")
        await voice_refused(a, "bad_request", action="join")
        await voice_refused(a, "bad_request", action="fly", room=room)
        d = await voice_ok(a, action="join", room=room)
        check(d["room"] == room and d["participants"] == [], f"first in: {d}")
        await voice_ok(a, action="mute", room=room, on=True)
        await voice_ok(a, action="deaf", room=room, on=True)
        d = await voice_ok(b, action="join", room=room)
        check([(p["user"]["id"], p["user"]["name"], p["muted"], p["deaf"]) for p in d["participants"]]
              == [("ann", "ANN", True, True)], f"participants with their state: {d}")
        ev = await voice_event(a, "joined", user="bob")
        check(ev["room"] == room and ev["muted"] is False and ev["deaf"] is False and ev["user"]["name"] == "BOB",
              f"joined: {ev}")
        await no_voice_event(e, "joined")
        await voice_ok(b, action="leave", room=room)
        ev = await voice_event(a, "left", user="bob")
        check(ev["room"] == room, f"left: {ev}")
        # A member removed from the room leaves its voice channel too.
        await voice_ok(b, action="join", room=room)
        await voice_event(a, "joined", user="bob")
        status, _ = admin("DELETE", f"/api/v1/rooms/{room}/members/bob")
        check(status == 204, f"kick: {status}")
        await voice_event(a, "left", user="bob")
        await voice_refused(b, "forbidden", action="join", room=room)
    finally:
        await close_all(a, b, e)


@case
async def the_channel_is_full_at_the_limit():
    room = make_room()
    cs = [await Client.open(u) for u in ("ann", "bob", "cat", "dan", "fay")]
    try:
        for c in cs[:MAX]:
            await voice_ok(c, action="join", room=room)
        got = await voice_refused(cs[MAX], "conflict", action="join", room=room)
        check("full" in got["message"] and str(MAX) in got["message"], f"refused in words: {got}")
        await voice_ok(cs[0], action="leave", room=room)
        d = await voice_ok(cs[MAX], action="join", room=room)
        check(sorted(p["user"]["id"] for p in d["participants"]) == ["bob", "cat", "dan"], f"after a leave: {d}")
    finally:
        await close_all(*cs)


@case
async def signals_reach_only_the_addressed_participant():
    room = make_room()
    a, b, c, e = (await Client.open("ann"), await Client.open("bob"), await Client.open("cat"),
                  await Client.open("eve"))
    b2 = await Client.open("bob")  # bob's second session, not in the channel
    try:
        await voice_ok(a, action="join", room=room)
        await voice_ok(b, action="join", room=room)
        offer = {"type": "offer", "pc": "x1", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
        await voice_ok(a, action="signal", room=room, to="bob", signal=offer)
        ev = await voice_event(b, "signal")
        check(ev["room"] == room and ev["from"]["id"] == "ann" and ev["from"]["name"] == "ANN" and ev["signal"] == offer,
              f"signal: {ev}")
        answer = {"type": "answer", "pc": "x1", "sdp": "v=0\r\n"}
        await voice_ok(b, action="signal", room=room, to="ann", signal=answer)
        ev = await voice_event(a, "signal")
        check(ev["signal"] == answer and ev["from"]["id"] == "bob", f"answer: {ev}")
        cand = {"type": "candidate", "pc": "x1", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                                                               "sdpMid": "0"}}
        await voice_ok(a, action="signal", room=room, to="bob", signal=cand)
        check((await voice_event(b, "signal"))["signal"] == cand, "candidate relayed")
        # Nobody else hears any of it: not a member outside the channel, not a
        # stranger, not the addressee's other session.
        for other in (c, e, b2):
            await no_voice_event(other, "signal")
        # Not to a member outside the channel, not to oneself, not from outside.
        await voice_refused(a, "forbidden", action="signal", room=room, to="cat", signal=offer)
        await voice_refused(a, "forbidden", action="signal", room=room, to="ann", signal=offer)
        await voice_refused(a, "forbidden", action="signal", room=room, to="eve", signal=offer)
        await voice_refused(c, "forbidden", action="signal", room=room, to="ann", signal=offer)
        await voice_refused(e, "forbidden", action="signal", room=room, to="ann", signal=offer)
        await voice_refused(b2, "forbidden", action="signal", room=room, to="ann", signal=offer)
        await voice_refused(a, "bad_request", action="signal", room=room, to="bob", signal="text")
        # The size limit: 16 KiB of JSON.
        big = {"type": "offer", "pc": "x2", "sdp": "a" * (16 * 1024)}
        got = await voice_refused(a, "too_large", action="signal", room=room, to="bob", signal=big)
        check("16384" in got["message"], f"too_large in words: {got}")
        fits = {"type": "offer", "sdp": "a" * (16 * 1024 - 40)}
        check(len(json.dumps(fits, separators=(",", ":"))) <= 16 * 1024, "test signal size")
        await voice_ok(a, action="signal", room=room, to="bob", signal=fits)
        check((await voice_event(b, "signal"))["signal"] == fits, "a signal just under the limit")
        await no_voice_event(a, "signal")
        await no_voice_event(b, "signal")
        # After leaving, no more signals either way.
        await voice_ok(b, action="leave", room=room)
        await voice_refused(a, "forbidden", action="signal", room=room, to="bob", signal=offer)
        await voice_refused(b, "forbidden", action="signal", room=room, to="ann", signal=offer)
    finally:
        await close_all(a, b, c, e, b2)


@case
async def moderators_mute_and_members_cannot():
    room = make_room()
    m, a, b, boss = (await Client.open("mod"), await Client.open("ann"), await Client.open("bob"),
                     await Client.open("boss"))
    try:
        for c in (m, a, b, boss):
            await voice_ok(c, action="join", room=room)
        # A member cannot mute someone else, nor everyone.
        got = await voice_refused(b, "forbidden", action="mute", room=room, user="ann", on=True)
        check("moderator" in got["message"], f"refused in words: {got}")
        await voice_refused(b, "forbidden", action="mute_all", room=room, on=True)
        # A moderator cannot mute the master (a higher role).
        await voice_refused(m, "forbidden", action="mute", room=room, user="boss", on=True)
        # The moderator's mute reaches everyone in the channel.
        await voice_ok(m, action="mute", room=room, user="ann", on=True)
        for c in (m, a, b, boss):
            ev = await voice_event(c, "muted", user="ann")
            check(ev["on"] is True and ev["by"]["id"] == "mod" and ev["room"] == room, f"muted: {ev}")
        # Muted by a moderator: ann cannot unmute herself.
        got = await voice_refused(a, "forbidden", action="mute", room=room, on=False)
        check("moderator" in got["message"], f"self-unmute refused in words: {got}")
        await voice_refused(a, "forbidden", action="mute", room=room, user="ann", on=False)
        # A newcomer sees her muted.
        c = await Client.open("cat")
        try:
            await voice_ok(b, action="leave", room=room)
            d = await voice_ok(c, action="join", room=room)
            st = {p["user"]["id"]: p["muted"] for p in d["participants"]}
            check(st.get("ann") is True and st.get("mod") is False, f"newcomer sees the mute: {d}")
            await voice_ok(c, action="leave", room=room)
        finally:
            await c.close()
        await voice_ok(b, action="join", room=room)
        # The moderator unmutes; then ann may mute and unmute herself.
        await voice_ok(m, action="mute", room=room, user="ann", on=False)
        for cl in (m, a, b):
            ev = await voice_event(cl, "muted", user="ann", on=False)
            check(ev["by"]["id"] == "mod", f"unmuted: {ev}")
        await voice_ok(a, action="mute", room=room, on=True)
        ev = await voice_event(b, "muted", user="ann", on=True)
        check("by" not in ev, f"a self mute has no by: {ev}")
        await voice_ok(a, action="mute", room=room, on=False)
        await voice_event(b, "muted", user="ann", on=False)
        # Everyone below moderator at once.
        await voice_ok(m, action="mute_all", room=room, on=True)
        for cl in (m, a, b, boss):
            ev = await voice_event(cl, "muted_all", on=True)
            check(ev["by"]["id"] == "mod", f"muted_all: {ev}")
            for u in ("ann", "bob"):
                await voice_event(cl, "muted", user=u, on=True)
            await no_voice_event(cl, "muted", user="boss", wait=0.2)
        await voice_refused(b, "forbidden", action="mute", room=room, on=False)
        await voice_ok(m, action="mute_all", room=room, on=False)
        for cl in (m, a, b):
            await voice_event(cl, "muted_all", on=False)
            await voice_event(cl, "muted", user="bob", on=False)
        await voice_ok(b, action="mute", room=room, on=True)
        await voice_ok(b, action="mute", room=room, on=False)
    finally:
        await close_all(m, a, b, boss)


@case
async def a_dropped_participant_leaves_after_the_grace_period():
    room = make_room()
    a, b = await Client.open("ann"), await Client.open("bob")
    try:
        await voice_ok(a, action="join", room=room)
        await voice_ok(b, action="join", room=room)
        await voice_event(a, "joined", user="bob")
        t0 = time.monotonic()
        await b.close()
        # Not at once: only after the grace period.
        await no_voice_event(a, "left", wait=GRACE * 0.5)
        ev = await voice_event(a, "left", user="bob", timeout=GRACE + 10)
        waited = time.monotonic() - t0
        check(waited >= GRACE * 0.9, f"left after {waited:.1f} s, before the {GRACE} s grace period")
        check(ev["room"] == room, f"left: {ev}")
        d = await voice_ok(a, action="join", room=room)
        check(d["participants"] == [], f"bob is gone: {d}")
    finally:
        await close_all(a, b)


@case
async def a_reconnect_within_the_grace_period_is_silent():
    room = make_room()
    a, b = await Client.open("ann"), await Client.open("bob")
    b_again = None
    try:
        await voice_ok(a, action="join", room=room)
        await voice_ok(b, action="join", room=room)
        await voice_ok(b, action="deaf", room=room, on=True)
        await voice_event(a, "joined", user="bob")
        await voice_event(a, "deaf", user="bob")
        await b.close()
        await asyncio.sleep(GRACE * 0.4)
        b_again = await Client.open("bob")  # a new connection, a new session
        d = await voice_ok(b_again, action="join", room=room)
        check([p["user"]["id"] for p in d["participants"]] == ["ann"], f"rejoin: {d}")
        check(d.get("me", {}).get("deaf") is True, f"bob's state kept across the reconnect: {d}")
        # The others see neither left nor joined, well past the grace period.
        await no_voice_event(a, "left", wait=GRACE + 1.5)
        await no_voice_event(a, "joined", wait=0.1)
        # Signals reach the new session.
        await voice_ok(a, action="signal", room=room, to="bob", signal={"type": "offer", "pc": "p2"})
        ev = await voice_event(b_again, "signal")
        check(ev["signal"] == {"type": "offer", "pc": "p2"}, f"signal to the new session: {ev}")
        await voice_ok(b_again, action="signal", room=room, to="ann", signal={"type": "answer", "pc": "p2"})
        await voice_event(a, "signal")
    finally:
        await close_all(a, b, *(x for x in [b_again] if x))


@case
async def signals_are_rate_limited_per_participant():
    room = make_room()
    a, b = await Client.open("ann"), await Client.open("bob")
    try:
        await voice_ok(a, action="join", room=room)
        await voice_ok(b, action="join", room=room)
        sig = {"type": "candidate", "pc": "r"}
        # Sent without waiting for answers: far more than the burst at once.
        n = SIGNAL_BURST * 3
        for i in range(n):
            await a.ws.send(json.dumps({"op": "widget", "ref": f"s{i}", "plugin": "voice",
                                        "data": {"action": "signal", "room": room, "to": "bob", "signal": sig}}))
        answers = {}
        while len(answers) < n:
            m = await a._read(rooms_test.TIMEOUT)
            if str(m.get("ref", "")).startswith("s"):
                answers[m["ref"]] = m
        limited = [m for m in answers.values() if m["op"] == "error" and m["code"] == "rate_limited"]
        accepted = [m for m in answers.values() if m["op"] == "ok"]
        check(limited and len(accepted) >= SIGNAL_BURST and len(accepted) < n,
              f"{len(accepted)} accepted, {len(limited)} rate_limited of {n}")
        got = 0
        while True:
            try:
                await voice_event(b, "signal", timeout=0.5)
                got += 1
            except Failure:
                break
        check(got == len(accepted), f"bob got {got} signals, {len(accepted)} were accepted")
        await asyncio.sleep(1.5)
        await voice_ok(a, action="signal", room=room, to="bob", signal=sig)
    finally:
        await close_all(a, b)


def bad_configuration_is_refused(space, toml):
    """A bad voice.toml keeps the plugin from loading, with the key named; a good one loads."""
    results = []
    for text, key in (("max_participants = 0\n", "max_participants"), ('turn = ["turn:x"]\n', "turn_secret"),
                      ('stun = [1]\n', "stun"), ("credential_ttl = 1.5\n", "credential_ttl")):
        with open(toml, "w") as f:
            f.write(text)
        if results:  # a failed reload leaves it unloaded: load it
            status, body = admin("POST", "/api/v1/plugins", {"name": "voice"})
        else:
            status, body = admin("POST", "/api/v1/plugins/voice/reload")
        ok = status == 422 and key in json.dumps(body)
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} bad voice.toml ({text.strip()}) refused naming `{key}`"
              + ("" if ok else f": {status} {body}"))
    with open(toml, "w") as f:
        f.write("max_participants = 2\n")
    status, body = admin("POST", "/api/v1/plugins", {"name": "voice"})
    ok = status == 201
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} a good voice.toml loads again" + ("" if ok else f": {status} {body}"))
    return results


async def run_all():
    passed = failed = 0
    for fn in cases:
        try:
            await asyncio.wait_for(fn(), 60)
            print(f"ok   {fn.__name__}")
            passed += 1
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {fn.__name__}: {e}")
            traceback.print_exc()
            failed += 1
    return passed, failed


def main():
    hutspace.require_spaced()
    voice_so = os.path.join(hutspace.build_root(), "plugins", "voice.so")
    if not os.path.exists(voice_so):
        print("skipped: voice.so is not built")
        sys.exit(hutspace.SKIP)
    conf_dir = tempfile.mkdtemp(prefix="hut-voice-")
    toml = os.path.join(conf_dir, "voice.toml")
    with open(toml, "w") as f:
        f.write(f'stun = ["stun:127.0.0.1:3478"]\nturn = ["turn:127.0.0.1:3478?transport=udp"]\n'
                f'turn_secret = "{SECRET}"\ncredential_ttl = {TTL}\nmax_participants = {MAX}\n'
                f'grace_seconds = {GRACE}\nsignal_rate = {SIGNAL_RATE}\nsignal_burst = {SIGNAL_BURST}\n')
    space = hutspace.Spaced(extra_plugins=[toml])
    rooms_test.space = space
    space.start()
    try:
        loaded = {p["name"]: p.get("state") for p in space.plugins()}
        if loaded.get("voice") != "loaded":
            print(f"FAIL the voice plugin is not loaded: {space.plugins()}")
            passed, failed = 0, 1
        else:
            passed, failed = asyncio.run(run_all())
            checks = bad_configuration_is_refused(space, toml)
            passed += checks.count(True)
            failed += checks.count(False)
    finally:
        alive = space.alive()
        status = space.terminate()
        space.stop()
        os.remove(toml)
        os.rmdir(conf_dir)
    if failed or not alive:
        print(space.log())
    if not alive:
        print("FAIL spaced died during the test")
        failed += 1
    elif status != 0:
        print(f"FAIL spaced exited with {status} on SIGTERM (a leak or a crash at shutdown?)")
        failed += 1
    else:
        print("ok   spaced exits with 0 on SIGTERM")
        passed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
