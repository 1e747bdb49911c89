#!/usr/bin/env python3
"""A room of 100,000 messages in a real browser: seed_room (built by meson,
the store's own code) writes the room into the store file of a new space
before spaced starts; spaced serves it and headless Chromium, driven by
Playwright (big_room.mjs), opens it in the chat widget, scrolls back several
pages and jumps to the newest, checking the DOM keeps a bounded window of
messages in order without duplicates.

Ends with "N passed, N failed". Exits 77 when spaced, the chat plugin,
seed_room, Chromium, node or playwright-core is missing.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402
import pwrun  # noqa: E402

COUNT = 100000
ROOM = "archive"


def main():
    hutspace.require_spaced()
    build = hutspace.build_root()
    seeder = os.path.join(build, "test", "browser", "seed_room")
    why = pwrun.missing()
    if not why and not os.path.exists(os.path.join(build, "plugins", "chat.so")):
        why = "the chat plugin is not built"
    if not why and not os.access(seeder, os.X_OK):
        why = "seed_room is not built"
    if why:
        print(f"skipped: {why}")
        return hutspace.SKIP
    space = hutspace.Spaced()
    results = []
    status = None
    try:
        data = os.path.join(space.tmp, "data")
        os.makedirs(data, exist_ok=True)
        started = time.monotonic()
        seeded = subprocess.run([seeder, os.path.join(data, "space.db"), ROOM, str(COUNT), "u-reader", "Reader"],
                                capture_output=True, text=True, timeout=240)
        ok = seeded.returncode == 0 and seeded.stdout.strip() == f"seeded {COUNT} messages"
        print(f"{'ok  ' if ok else 'FAIL'} seed_room wrote {COUNT} messages in {time.monotonic() - started:.1f} s"
              f"{'' if ok else ': ' + seeded.stdout + seeded.stderr}")
        results.append(ok)
        if ok:
            space.start()
            status_code, _, room = hutspace.http("GET", space.admin + f"/api/v1/rooms/{ROOM}",
                                                 headers={"Authorization": f"Bearer {space.admin_token}"})
            ok = status_code == 200 and room.get("last_seq") == COUNT
            print(f"{'ok  ' if ok else 'FAIL'} spaced serves the seeded room (last_seq {COUNT})"
                  f"{'' if ok else f': {status_code} {room}'}")
            results.append(ok)
            cfg = {"space": space.public, "room": ROOM, "count": COUNT, "token": space.mint("u-reader", "Reader")}
            results += pwrun.run("big_room.mjs", cfg, 150)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL setup or run: {type(e).__name__}: {e}")
        results.append(False)
    finally:
        if space.proc is not None:
            status = space.stop()
    if status is not None:
        ok = status == 0
        print(f"{'ok  ' if ok else 'FAIL'} spaced exits with 0 on SIGTERM{'' if ok else f' (status {status})'}")
        results.append(ok)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    if failed and space.proc is not None:
        print("--- spaced output (last lines) ---")
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
