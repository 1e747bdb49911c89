#!/usr/bin/env python3
"""Two spaced processes on one PostgreSQL database: clients of both post into
the same room at once, and every post gets a seq of its own, the seqs of the
room counting up from 1 without a gap or a repeat, each client's in the order
it sent them; history on either process shows them all. The PostgreSQL server
is real, started by the test (skipped, saying why, without its binaries).
Ends with "N passed, N failed".
"""
import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import durability_test as d  # noqa: E402
import hutpg  # noqa: E402
import hutspace  # noqa: E402

PER_SPACE = 2        # posting clients on each process
RUN_SECONDS = 3.0


async def post_on_both(spaces, acked):
    stop = asyncio.Event()
    never = asyncio.Event()
    burst_sent = [asyncio.Event() for _ in acked]
    tasks = [asyncio.create_task(d.poster(spaces[k // PER_SPACE], k, acked, stop, never, burst_sent, None))
             for k in range(len(acked))]
    await asyncio.sleep(RUN_SECONDS)
    stop.set()
    return await asyncio.wait_for(asyncio.gather(*tasks), 60)


def main():
    hutspace.require_spaced()
    pg = hutpg.started_or_skip()
    url = pg.new_database()
    limits = {"post_rate": 1000000, "post_burst": 1000000}
    spaces = [hutspace.Spaced(limits=limits, store_url=url) for _ in range(2)]
    passed = failed = 0
    try:
        spaces[0].start()
        status, _, body = hutspace.http("POST", spaces[0].admin + "/api/v1/rooms", {"room": d.ROOM},
                                        headers={"Authorization": f"Bearer {spaces[0].admin_token}"})
        assert status == 201, (status, body)
        spaces[1].start()  # reads the room from the database
        acked = [[] for _ in range(2 * PER_SPACE)]
        sent = asyncio.run(post_on_both(spaces, acked))
        total = sum(len(a) for a in acked)
        print(f"sent {sum(sent)} posts on two processes, {total} got ok")
        problems = []
        seqs = sorted(seq for a in acked for _, seq in a)
        if total < 100:
            problems.append(f"only {total} posts got an ok")
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append("the seqs given are not 1..N each once")
        for k, a in enumerate(acked):
            if [seq for _, seq in a] != sorted(seq for _, seq in a):
                problems.append(f"client {k}: seqs out of the order sent")
        if not any(acked[k] for k in range(PER_SPACE)) or not any(acked[k] for k in range(PER_SPACE, 2 * PER_SPACE)):
            problems.append("one of the processes stored no post")
        for space in spaces:
            stored = asyncio.run(d.read_all(space))
            for k, a in enumerate(acked):
                for index, seq in a:
                    if stored.get(seq) != f"p{k}-{index}":
                        problems.append(f"seq {seq}: want p{k}-{index}, stored {stored.get(seq)!r}")
                        break
            if sorted(stored) != seqs:
                problems.append("history differs from the seqs given")
        ok = d.verdict("two_processes_post_into_one_room", problems, f"{total} posts")
        passed, failed = passed + ok, failed + (not ok)
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL two_processes_post_into_one_room: {type(e).__name__}: {e}")
        for space in spaces:
            print(space.log())
    finally:
        for space in spaces:
            space.stop()
        pg.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
