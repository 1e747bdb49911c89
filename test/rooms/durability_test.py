#!/usr/bin/env python3
"""Durability of posts: clients post as fast as they can, spaced is killed with
SIGKILL, started again on the same data folder, and every post that got an
`ok` must be in history with the seq it was given, in the order it was sent.

spaced answers a Python client's posts faster than the client sends them, so
to be sure the kill lands while posts are being read, committed or answered,
each client sends a last burst without waiting and spaced is killed right
after it: the test requires posts without an `ok` at the kill.
With --postgres the space's store is a database of a real PostgreSQL server
the test starts (skipped, saying why, without the PostgreSQL binaries).
Ends with "N passed, N failed".
"""
import asyncio
import json
import os
import sys
import time

import websockets
from websockets.exceptions import ConnectionClosed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutpg  # noqa: E402
import hutspace  # noqa: E402

CLIENTS = 3
WINDOW = 64          # posts in flight per client
BURST = 500          # posts each client sends just before the kill
RUN_SECONDS = 1.5    # posting time before the kill
TIMEOUT = 5.0
ROOM = "durable"


async def connect(space, user):
    token = space.jwt(user=user, name=user)
    ws = await asyncio.wait_for(
        websockets.connect(space.bus_url, extra_headers={"Authorization": f"Bearer {token}"},
                           max_size=None, ping_interval=None, close_timeout=1), TIMEOUT)
    msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert msg["op"] == "welcome", msg
    return ws


async def call(ws, frame):
    await ws.send(json.dumps(frame))
    for _ in range(10000):
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if msg.get("ref") == frame["ref"]:
            return msg
    raise AssertionError("no answer")


async def poster(space, k, acked, stop, burst, burst_sent, kill):
    """Posts until the connection drops; acked[k] gets (index, seq) of every ok.
    When `burst` is set, sends BURST posts at once and sets burst_sent[k]; the
    last client to finish its burst calls kill() right after its last send."""
    ws = await connect(space, f"p{k}")
    await call(ws, {"op": "join", "ref": "j", "room": ROOM})
    sent = 0
    inflight = 0
    try:
        for _ in range(10_000_000):
            if burst.is_set() and not burst_sent[k].is_set():
                for _ in range(BURST):
                    await ws.send(json.dumps({"op": "post", "ref": sent, "room": ROOM, "text": f"p{k}-{sent}"}))
                    sent += 1
                    inflight += 1
                burst_sent[k].set()
                if all(e.is_set() for e in burst_sent):
                    kill()
            while inflight < WINDOW and not stop.is_set() and not burst.is_set():
                await ws.send(json.dumps({"op": "post", "ref": sent, "room": ROOM, "text": f"p{k}-{sent}"}))
                sent += 1
                inflight += 1
            if inflight == 0:
                break
            try:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 0.05 if not burst.is_set() else TIMEOUT))
            except asyncio.TimeoutError:
                if burst.is_set() and burst_sent[k].is_set():
                    raise
                continue
            if msg.get("op") == "ok" and isinstance(msg.get("ref"), int):
                acked[k].append((msg["ref"], msg["seq"]))
                inflight -= 1
            elif msg.get("op") == "error":
                inflight -= 1
    except (ConnectionClosed, OSError, asyncio.TimeoutError):
        pass
    return sent


async def post_and_kill(space, acked):
    stop = asyncio.Event()
    burst = asyncio.Event()
    burst_sent = [asyncio.Event() for _ in range(CLIENTS)]
    tasks = [asyncio.create_task(poster(space, k, acked, stop, burst, burst_sent, space.proc.kill))
             for k in range(CLIENTS)]
    await asyncio.sleep(RUN_SECONDS)
    burst.set()
    # The last burst's sender sends SIGKILL while that burst is being read
    # and committed.
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in burst_sent)), TIMEOUT)
    space.proc.wait(10)
    stop.set()
    return await asyncio.gather(*tasks)


async def read_all(space):
    ws = await connect(space, "reader")
    stored = {}
    before = 0
    try:
        for _ in range(100000):
            frame = {"op": "history", "ref": "h", "room": ROOM, "limit": 200}
            if before:
                frame["before"] = before
            msg = await call(ws, frame)
            assert msg["op"] == "ok", msg
            for m in msg["messages"]:
                stored[m["seq"]] = m["text"]
            if not msg["more"] or not msg["messages"]:
                break
            before = msg["messages"][0]["seq"]
    finally:
        await ws.close()
    return stored


def verdict(name, problems, detail):
    """Prints a case's problems and its ok or FAIL line; True when it passed."""
    for p in problems[:20]:
        print("problem:", p)
    print(f"FAIL {name}" if problems else f"ok   {name} ({detail})")
    return not problems


def main():
    hutspace.require_spaced()
    pg = hutpg.started_or_skip() if "--postgres" in sys.argv else None
    space = hutspace.Spaced(limits={"post_rate": 1000000, "post_burst": 1000000},
                            store_url=pg.new_database() if pg else None)
    passed = failed = 0
    try:
        space.start()
        status, _, body = hutspace.http("POST", space.admin + "/api/v1/rooms", {"room": ROOM},
                                        headers={"Authorization": f"Bearer {space.admin_token}"})
        assert status == 201, (status, body)
        acked = [[] for _ in range(CLIENTS)]
        sent = asyncio.run(post_and_kill(space, acked))
        total = sum(len(a) for a in acked)
        print(f"sent {sum(sent)} posts, {total} got ok before SIGKILL")
        unanswered = sum(sent) - total
        space.start()
        stored = asyncio.run(read_all(space))
        problems = []
        if total == 0:
            problems.append("no post got an ok before the kill")
        if unanswered <= 0:
            problems.append("every post had its ok before the kill: the kill did not land mid-flight")
        for k in range(CLIENTS):
            last = 0
            for index, seq in acked[k]:
                if stored.get(seq) != f"p{k}-{index}":
                    problems.append(f"seq {seq}: want p{k}-{index}, stored {stored.get(seq)!r}")
                if seq <= last:
                    problems.append(f"client {k}: seq {seq} after {last}, out of the order sent")
                last = seq
        seqs = sorted(stored)
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append("stored seqs have gaps")
        # Posts stored without an ok (committed, answer lost in the kill) must
        # still be posts that were sent, each once, in each client's order.
        last_index = [-1] * CLIENTS
        for seq in seqs:
            try:
                k, index = stored[seq][1:].split("-")
                k, index = int(k), int(index)
            except ValueError:
                problems.append(f"seq {seq}: unexpected text {stored[seq]!r}")
                continue
            if not 0 <= k < CLIENTS or index >= sent[k] or index <= last_index[k]:
                problems.append(f"seq {seq}: {stored[seq]!r} was not sent, or is out of order")
            else:
                last_index[k] = index
        print(f"{len(stored) - total} posts stored without an ok, "
              f"{sum(sent) - len(stored)} sent and not stored")
        ok = verdict("acked_posts_survive_sigkill", problems, f"{len(stored)} stored, {total} acked")
        passed, failed = passed + ok, failed + (not ok)
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL acked_posts_survive_sigkill: {type(e).__name__}: {e}")
        print(space.log())
    finally:
        space.stop()
        if pg:
            pg.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
