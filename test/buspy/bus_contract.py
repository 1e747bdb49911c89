#!/usr/bin/env python3
"""The widget bus (contract section 2) as a third-party client sees it: a real
spaced, Debian's python3-websockets as the client, tokens from the management
API or made with PyJWT. Ends with "N passed, N failed".
"""
import asyncio
import json
import os
import sys
import time
import traceback

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hutspace  # noqa: E402

RECV_TIMEOUT = 5.0
HELLO_TIMEOUT = 2  # seconds, configured for this run
MAX_MESSAGE = 65536
BAD_FRAMES = 20
ERROR_CODES = {"bad_request", "unauthenticated", "forbidden", "not_found", "conflict", "muted",
               "rate_limited", "too_large", "unavailable", "internal"}

space = None
cases = []


def case(fn):
    cases.append(fn)
    return fn


class Failure(Exception):
    pass


class Skip(Exception):
    """A case that cannot run in this space (a part that is not there)."""


def check(cond, what):
    if not cond:
        raise Failure(what)


async def open_ws(token=None, subprotocols=("hutopia.v1",)):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await asyncio.wait_for(
        websockets.connect(space.bus_url, subprotocols=list(subprotocols) if subprotocols else None,
                           extra_headers=headers, max_size=None, ping_interval=None,
                           close_timeout=2, open_timeout=RECV_TIMEOUT),
        RECV_TIMEOUT)


async def recv(ws, timeout=RECV_TIMEOUT):
    raw = await asyncio.wait_for(ws.recv(), timeout)
    check(isinstance(raw, str), f"the space sent a binary frame: {raw!r}")
    msg = json.loads(raw)
    check(isinstance(msg, dict) and isinstance(msg.get("op"), str), f"not an op object: {raw}")
    return msg


async def reply(ws, timeout=RECV_TIMEOUT):
    """The next ok or error frame; events the space may send meanwhile are skipped."""
    for _ in range(50):
        msg = await recv(ws, timeout)
        if msg["op"] in ("ok", "error"):
            return msg
    raise Failure("50 frames without an answer")


async def send(ws, obj):
    await ws.send(obj if isinstance(obj, str) else json.dumps(obj))


async def expect_closed(ws, code, timeout=RECV_TIMEOUT):
    """Reads until the space closes; returns the frames read before. Checks the close code."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while len(frames) < 100:
            left = deadline - time.monotonic()
            check(left > 0, f"no close within {timeout} s (frames: {frames})")
            frames.append(await recv(ws, left))
    except ConnectionClosed:
        pass
    check(ws.close_code == code, f"close code {ws.close_code} ({ws.close_reason!r}), want {code}")
    return frames


async def welcomed(token=None, by="header"):
    """A connection that got its welcome; returns (ws, welcome)."""
    token = token or space.mint()
    if by == "header":
        ws = await open_ws(token)
    else:
        ws = await open_ws()
        await send(ws, {"op": "hello", "token": token})
    msg = await recv(ws)
    check(msg["op"] == "welcome", f"want welcome, got {msg}")
    return ws, msg


async def ping_ok(ws, ref=77):
    await send(ws, {"op": "ping", "ref": ref})
    msg = await reply(ws)
    check(msg == {"op": "ok", "ref": ref}, f"ping answer {msg}")


async def fresh_connection_works():
    ws, _ = await welcomed()
    try:
        await ping_ok(ws)
    finally:
        await ws.close()


async def expect_refused(ws, why):
    frames = await expect_closed(ws, 4001)
    check(len(frames) >= 1, f"{why}: no error before the 4001 close")
    err = frames[0]
    check(err.get("op") == "error" and err.get("code") == "unauthenticated",
          f"{why}: want error/unauthenticated, got {err}")
    check(isinstance(err.get("message"), str) and err["message"], f"{why}: no message in {err}")


async def expect_bad_request(ws, frame, ref="absent"):
    await send(ws, frame)
    msg = await reply(ws)
    check(msg.get("op") == "error" and msg.get("code") == "bad_request",
          f"{frame!r}: want bad_request, got {msg}")
    check(isinstance(msg.get("message"), str) and msg["message"], f"{frame!r}: no message in {msg}")
    if ref == "absent":
        check("ref" not in msg, f"{frame!r}: unexpected ref in {msg}")
    else:
        check(msg.get("ref") == ref, f"{frame!r}: want ref {ref!r}, got {msg}")


# --- authentication ---

@case
async def auth_by_header_and_welcome_shape():
    ws, msg = await welcomed(space.mint("alice", "Alice A."), by="header")
    try:
        check(ws.subprotocol == "hutopia.v1", f"subprotocol {ws.subprotocol!r}")
        check(isinstance(msg.get("session"), str) and msg["session"], f"session in {msg}")
        user = msg.get("user")
        check(isinstance(user, dict) and user.get("id") == "alice" and user.get("name") == "Alice A.",
              f"user in {msg}")
        check(msg.get("space") == {"id": hutspace.SPACE_ID, "name": hutspace.SPACE_NAME} or
              (isinstance(msg.get("space"), dict) and msg["space"].get("id") == hutspace.SPACE_ID and
               msg["space"].get("name") == hutspace.SPACE_NAME), f"space in {msg}")
        widgets = msg.get("widgets")
        check(isinstance(widgets, list), f"widgets in {msg}")
        for w in widgets:
            check(isinstance(w, dict) and all(isinstance(w.get(k), str) and w[k] for k in ("plugin", "tag", "script")),
                  f"widget entry {w}")
        rooms = msg.get("rooms")
        check(isinstance(rooms, list), f"rooms in {msg}")
        for r in rooms:
            check(isinstance(r, dict) and isinstance(r.get("room"), str) and isinstance(r.get("unread"), int),
                  f"room entry {r}")
        await ping_ok(ws)
    finally:
        await ws.close()


@case
async def auth_by_hello_frame():
    ws, msg = await welcomed(space.jwt("bob", "Bob"), by="hello")
    try:
        check(msg["user"]["id"] == "bob" and msg["user"]["name"] == "Bob", f"user in {msg}")
        await ping_ok(ws, "after-hello")
    finally:
        await ws.close()


@case
async def sessions_are_distinct():
    a, wa = await welcomed()
    b, wb = await welcomed()
    try:
        check(wa["session"] != wb["session"], f"two connections share session {wa['session']}")
    finally:
        await a.close()
        await b.close()


@case
async def no_subprotocol_is_accepted():
    token = space.mint()
    ws = await open_ws(subprotocols=None)
    try:
        await send(ws, {"op": "hello", "token": token})
        msg = await recv(ws)
        check(msg["op"] == "welcome", f"want welcome, got {msg}")
    finally:
        await ws.close()


@case
async def bad_tokens_are_refused_with_4001():
    now = int(time.time())
    bad = {
        "garbage": "not-a-token",
        "bad signature": space.jwt(secret="some-other-secret-of-enough-length"),
        "expired": space.jwt(iat=now - 600, exp=now - 300),
        "wrong audience": space.jwt(aud="another-space"),
        "wrong issuer": space.jwt(iss="someone-else"),
        "no jti": space.jwt(jti=None),
        "lifetime over the maximum": space.jwt(iat=now, exp=now + 3600),
    }
    for why, token in bad.items():
        ws = await open_ws(token)  # the header: the upgrade itself succeeds
        await expect_refused(ws, f"header, {why}")
    for why in ("garbage", "bad signature", "expired"):
        ws = await open_ws()
        await send(ws, {"op": "hello", "token": bad[why]})
        await expect_refused(ws, f"hello, {why}")
    await fresh_connection_works()


@case
async def alg_none_is_refused():
    import base64
    now = int(time.time())

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    claims = {"iss": hutspace.APP_ISSUER, "sub": "mallory", "aud": hutspace.SPACE_ID, "iat": now,
              "exp": now + 60, "jti": "none-1", "name": "M"}
    token = b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."
    ws = await open_ws(token)
    await expect_refused(ws, "alg none")


@case
async def replayed_token_is_refused():
    token = space.mint("carol", "Carol")
    ws, _ = await welcomed(token)
    await ws.close()
    again = await open_ws(token)
    await expect_refused(again, "replayed token (header)")
    again = await open_ws()
    await send(again, {"op": "hello", "token": token})
    await expect_refused(again, "replayed token (hello)")
    await fresh_connection_works()


@case
async def op_before_welcome_is_refused():
    ws = await open_ws()
    await send(ws, {"op": "ping", "ref": 1})
    await expect_refused(ws, "ping before hello")
    await fresh_connection_works()


@case
async def no_hello_in_time_is_refused():
    ws = await open_ws()
    start = time.monotonic()
    await expect_refused_within(ws, HELLO_TIMEOUT + 4)
    took = time.monotonic() - start
    check(took >= HELLO_TIMEOUT - 0.5, f"refused after {took:.1f} s, before the hello timeout")
    await fresh_connection_works()


async def expect_refused_within(ws, timeout):
    frames = await expect_closed(ws, 4001, timeout)
    check(frames and frames[0].get("op") == "error" and frames[0].get("code") == "unauthenticated",
          f"want error/unauthenticated, got {frames}")


# --- requests ---

@case
async def ping_with_refs():
    ws, _ = await welcomed()
    try:
        for ref in (1, 0, -5, 123456789, 2.5, "a", "x" * 64, "ünï©ødé"):
            await send(ws, {"op": "ping", "ref": ref})
            msg = await reply(ws)
            check(msg == {"op": "ok", "ref": ref}, f"ping ref {ref!r}: {msg}")
        await send(ws, {"op": "ping"})
        msg = await reply(ws)
        check(msg.get("op") == "ok" and "ref" not in msg, f"ping without ref: {msg}")
        await expect_bad_request(ws, {"op": "ping", "ref": "y" * 65})
        await expect_bad_request(ws, {"op": "ping", "ref": True})
        await expect_bad_request(ws, {"op": "ping", "ref": None})
        await expect_bad_request(ws, {"op": "ping", "ref": {"a": 1}})
        await expect_bad_request(ws, {"op": "ping", "ref": [1]})
        await ping_ok(ws, "still-open")
    finally:
        await ws.close()


@case
async def unknown_fields_are_ignored():
    ws, _ = await welcomed()
    try:
        await send(ws, {"op": "ping", "ref": 9, "extra": {"deep": [1, 2]}, "x": None})
        msg = await reply(ws)
        check(msg == {"op": "ok", "ref": 9}, f"ping with unknown fields: {msg}")
    finally:
        await ws.close()


@case
async def widget_round_trip_through_echo():
    ws, _ = await welcomed()
    try:
        payloads = [{"hello": "world", "n": [1, 2.5, None, True], "nested": {"ü": "✓"}},
                    "just a string", 42, [], None]
        for i, data in enumerate(payloads):
            await send(ws, {"op": "widget", "ref": f"w{i}", "plugin": "echo", "data": data})
            msg = await reply(ws)
            check(msg.get("op") == "ok" and msg.get("ref") == f"w{i}", f"echo answer {msg}")
            check("data" in msg and msg["data"] == data, f"echo of {data!r} came back as {msg}")
    finally:
        await ws.close()


@case
async def unknown_plugin_is_not_found():
    ws, _ = await welcomed()
    try:
        await send(ws, {"op": "widget", "ref": 3, "plugin": "no-such-plugin", "data": {}})
        msg = await reply(ws)
        check(msg.get("op") == "error" and msg.get("code") == "not_found" and msg.get("ref") == 3,
              f"unknown plugin: {msg}")
        check(isinstance(msg.get("message"), str) and msg["message"], f"no message: {msg}")
        await ping_ok(ws)
    finally:
        await ws.close()


async def frames_until(ws, done, limit=20):
    """Frames read until done(frames) is true or the limit; stops at a quiet second."""
    frames = []
    while len(frames) < limit and not done(frames):
        try:
            frames.append(await recv(ws, 1.0))
        except asyncio.TimeoutError:
            break
    return frames


@case
async def plugin_events_notify_and_widget():
    if "events" not in [p.get("name") for p in space.plugins()]:
        raise Skip("the test plugin `events` is not built")
    ws, welcome = await welcomed(space.mint("erin", "Erin"))
    try:
        await send(ws, {"op": "widget", "ref": "n", "plugin": "events", "data": "notify"})
        frames = await frames_until(ws, lambda f: sum(x["op"] == "notify" for x in f) >= 2 and
                                    any(x["op"] == "ok" for x in f))
        answers = [f for f in frames if f["op"] in ("ok", "error")]
        check(answers == [{"op": "ok", "ref": "n", "data": {"ok": True}}], f"answers {answers}")
        notes = [f for f in frames if f["op"] == "notify"]
        check({"op": "notify", "plugin": "events", "title": "Title", "body": "Body",
               "url": "https://example.test/x"} in notes, f"notify with body and url: {notes}")
        check({"op": "notify", "plugin": "events", "title": "Bare"} in notes, f"bare notify: {notes}")
        await send(ws, {"op": "widget", "ref": "t", "plugin": "events", "data": "targets"})
        frames = await frames_until(ws, lambda f: sum(x["op"] == "widget" for x in f) >= 3 and
                                    any(x["op"] == "ok" for x in f))
        events = sorted(f["data"] for f in frames if f["op"] == "widget" and f.get("plugin") == "events")
        check(events == [1, 2, 4], f"widget events to this session (session, user, everyone): {frames}")
        check(all("ref" not in f for f in frames if f["op"] == "widget"), f"events carry no ref: {frames}")
    finally:
        await ws.close()


@case
async def plugin_mints_a_token_for_its_session():
    if "events" not in [p.get("name") for p in space.plugins()]:
        raise Skip("the test plugin `events` is not built")
    ws, welcome = await welcomed(space.mint("tina", "Tina T."))
    try:
        await send(ws, {"op": "widget", "ref": "m", "plugin": "events", "data": "mint"})
        answer = await reply(ws)
        check(answer.get("op") == "ok" and isinstance(answer.get("data", {}).get("token"), str),
              f"mint answer {answer}")
        token = answer["data"]["token"]
        # The minted token enters the space once, as the session's user.
        other, w2 = await welcomed(token, by="hello")
        check(w2["user"]["id"] == "tina" and w2["user"]["name"] == "Tina T.", f"user of the minted token {w2}")
        check(w2["session"] != welcome["session"], "the minted token opened a session of its own")
        again = await open_ws()
        await send(again, {"op": "hello", "token": token})
        await expect_refused(again, "a minted token used twice")
    finally:
        await ws.close()
    # Closing the first session reaches the plugin's on_session_closed.
    try:
        closed = None
        for _ in range(50):
            await send(other, {"op": "widget", "ref": "c", "plugin": "events", "data": "closed"})
            closed = (await reply(other)).get("data", {}).get("closed")
            if closed == welcome["session"]:
                break
            await asyncio.sleep(0.1)
        check(closed == welcome["session"], f"on_session_closed saw {closed!r}, want {welcome['session']!r}")
    finally:
        await other.close()


@case
async def bad_input_gets_bad_request_and_keeps_the_connection():
    # Fewer bad frames per connection than the budget allows.
    groups = [
        [("not json", "absent"), ("{\"op\":", "absent"), ("", "absent"), ("[1,2,3]", "absent"),
         ("42", "absent"), ("\"ping\"", "absent"), ("null", "absent"), ("true", "absent")],
        [({"ref": 1}, 1), ({"op": 5, "ref": 2}, 2), ({"op": None, "ref": "n"}, "n"),
         ({"op": ["ping"], "ref": 4}, 4), ({"op": "no_such_op", "ref": 5}, 5),
         ({"op": "", "ref": 6}, 6), ({"op": "PING", "ref": 7}, 7)],
        [({"op": "widget", "ref": 10, "data": {}}, 10),
         ({"op": "widget", "ref": 11, "plugin": 5, "data": {}}, 11),
         ({"op": "widget", "ref": 12, "plugin": None, "data": {}}, 12),
         ({"op": "widget", "ref": 13, "plugin": ["echo"], "data": {}}, 13),
         ({"op": "widget", "ref": 14, "plugin": {"name": "echo"}, "data": {}}, 14)],
    ]
    await expect_bad_request_groups(groups)


async def expect_bad_request_groups(groups):
    for group in groups:
        ws, _ = await welcomed()
        try:
            for frame, ref in group:
                await expect_bad_request(ws, frame, ref)
            await ping_ok(ws)
        finally:
            await ws.close()


@case
async def room_ops_with_bad_fields_get_bad_request():
    ws, _ = await welcomed()
    try:
        await send(ws, {"op": "rooms", "ref": "probe"})
        msg = await reply(ws)
        if msg.get("op") == "error" and msg.get("code") == "unavailable":
            raise Skip("rooms are not available in this space")
        check(msg.get("op") == "ok" and isinstance(msg.get("rooms"), list), f"rooms: {msg}")
    finally:
        await ws.close()
    await expect_bad_request_groups([
        [({"op": "join", "ref": 1}, 1), ({"op": "join", "ref": 2, "room": 7}, 2),
         ({"op": "create", "ref": 3, "room": ["r"]}, 3), ({"op": "create", "ref": 4, "room": "r", "private": "yes"}, 4),
         ({"op": "post", "ref": 5, "room": "r", "text": 3}, 5), ({"op": "post", "ref": 6, "room": "r"}, 6),
         ({"op": "history", "ref": 7, "room": "r", "limit": "ten"}, 7),
         ({"op": "read", "ref": 8, "room": "r", "seq": "1"}, 8),
         ({"op": "mute_all", "ref": 9, "room": "r", "on": 1}, 9)],
    ])


@case
async def bad_frame_budget_closes_with_1008():
    ws, _ = await welcomed()
    answers = 0
    try:
        for _ in range(BAD_FRAMES + 5):
            await send(ws, "not json")
    except ConnectionClosed:
        pass
    frames = await expect_closed(ws, 1008)
    answers = sum(1 for f in frames if f.get("code") == "bad_request")
    check(answers >= BAD_FRAMES - 1, f"only {answers} bad_request answers before 1008")
    check(answers <= BAD_FRAMES, f"{answers} bad_request answers: the budget is {BAD_FRAMES}")
    await fresh_connection_works()


@case
async def oversized_message_closes_with_1009():
    ws, _ = await welcomed()
    big = json.dumps({"op": "widget", "ref": 1, "plugin": "echo", "data": "x" * (MAX_MESSAGE + 100)})
    try:
        await ws.send(big)
    except ConnectionClosed:
        pass
    await expect_closed(ws, 1009)
    await fresh_connection_works()


@case
async def oversized_fragmented_message_closes_with_1009():
    ws, _ = await welcomed()
    # Each fragment is small; the last one takes the message over the limit,
    # and nothing follows it (data still in flight when the space closes the
    # socket could reset the connection before the close frame is read).
    chunk = b"y" * 16384
    parts = [b'{"op":"widget","ref":1,"plugin":"echo","data":"', chunk, chunk, chunk, chunk + b'"}']
    check(sum(map(len, parts)) > MAX_MESSAGE and sum(map(len, parts[:-1])) < MAX_MESSAGE, "fragment sizes")
    try:
        for i, part in enumerate(parts):
            await ws.write_frame(i == len(parts) - 1, Opcode.TEXT if i == 0 else Opcode.CONT, part)
    except ConnectionClosed:
        pass
    await expect_closed(ws, 1009)
    await fresh_connection_works()


@case
async def message_under_the_limit_passes():
    ws, _ = await welcomed()
    try:
        data = "z" * (MAX_MESSAGE - 1024)
        chunk = 8192
        text = json.dumps({"op": "widget", "ref": "big", "plugin": "echo", "data": data})
        await ws.send(iter([text[i:i + chunk] for i in range(0, len(text), chunk)]))
        msg = await reply(ws)
        check(msg.get("op") == "ok" and msg.get("ref") == "big" and msg.get("data") == data,
              f"a {len(text)}-byte fragmented message: {str(msg)[:200]}")
    finally:
        await ws.close()


@case
async def binary_frame_closes_with_1003():
    ws, _ = await welcomed()
    try:
        await ws.send(b'{"op":"ping","ref":1}')
    except ConnectionClosed:
        pass
    await expect_closed(ws, 1003)
    await fresh_connection_works()


@case
async def invalid_utf8_closes_with_1007():
    ws, _ = await welcomed()
    try:
        await ws.write_frame(True, Opcode.TEXT, b'{"op":"ping","ref":"\xff\xfe"}')
    except ConnectionClosed:
        pass
    await expect_closed(ws, 1007)
    await fresh_connection_works()


@case
async def error_codes_are_from_the_contract():
    ws, _ = await welcomed()
    try:
        await send(ws, {"op": "widget", "ref": 1, "plugin": "no-such-plugin", "data": 1})
        await send(ws, {"op": "nope", "ref": 2})
        for _ in range(2):
            msg = await reply(ws)
            check(msg.get("code") in ERROR_CODES, f"code outside the contract: {msg}")
    finally:
        await ws.close()


@case
async def space_survived():
    check(space.alive(), "spaced is no longer running")
    status, _, body = hutspace.http("GET", space.public + "/healthz")
    check(status == 200 and body == {"ok": True}, f"/healthz: {status} {body!r}")
    await fresh_connection_works()


async def shutdown_sends_1001_and_exits_0():
    """Runs last: SIGTERM closes sessions with 1001 and spaced exits with 0."""
    ws, _ = await welcomed()
    await asyncio.get_running_loop().run_in_executor(None, space.proc.terminate)
    await expect_closed(ws, 1001, 15)
    status = await asyncio.get_running_loop().run_in_executor(None, space.terminate)
    check(status == 0, f"spaced exited with {status} after SIGTERM")


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
        except Skip as e:
            print(f"skip {fn.__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - a failing case must not stop the others
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc(file=sys.stdout)
    if not only or "shutdown_sends_1001_and_exits_0" in only:
        try:
            await asyncio.wait_for(shutdown_sends_1001_and_exits_0(), 60)
            passed += 1
            print("ok   shutdown_sends_1001_and_exits_0")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL shutdown_sends_1001_and_exits_0: {type(e).__name__}: {e}")
    return passed, failed


def main():
    global space
    hutspace.require_spaced()
    try:
        events = os.path.join(hutspace.build_root(), "test", "plugins", "events.so")
        space = hutspace.Spaced(limits={"hello_timeout": HELLO_TIMEOUT, "max_message": MAX_MESSAGE,
                                        "bad_frames": BAD_FRAMES, "bad_frame_window": 10},
                                extra_plugins=[events])
        space.start()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL start: {e}")
        print("0 passed, 1 failed")
        return 1
    try:
        passed, failed = asyncio.run(run_all())
    finally:
        space.stop()
    if failed:
        print("--- spaced output (last lines) ---")
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
