#!/usr/bin/env python3
"""Room events across the nodes of a cluster (docs/cluster.md): two spaced
processes on one PostgreSQL database and one redis-server, both started by the
test. A member on one node sees what a member on the other does (join, post,
edit, delete, role, mute, kick), a mute, a kick or a ban given on one node
(through the bus or the management API) is enforced on the other (a ban of a
non-member and a mute kept over leave and join too), and
posts from both nodes reach every client with seqs 1..N and no gap.
Ends with "N passed, N failed"; skipped (77) without redis-server, PostgreSQL
or spaced.
"""
import asyncio
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, HERE)
import cluster_test as ct  # noqa: E402
import hutpg  # noqa: E402
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402

ROOM = "crossroom"
POSTS = 20


def is_op(op, **fields):
    return lambda e: e.get("op") == op and e.get("room") == ROOM and all(e.get(k) == v for k, v in fields.items())


def admin(space, method, path, body=None):
    return hutspace.http(method, space.admin + f"/api/v1/rooms/{ROOM}" + path, body,
                         headers={"Authorization": f"Bearer {space.admin_token}"})


async def scenario(a, b):
    alice = await ct.connect(a, "alice")
    bob = await ct.connect(b, "bob")
    r = await alice.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok", f"alice joins: {r}")
    r = await bob.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok", f"bob joins: {r}")
    ev = await alice.event(lambda e: e.get("op") == "joined" and e["user"]["id"] == "bob")
    check(ev["room"] == ROOM, f"joined on the other node: {ev}")
    print("ok join_seen_on_other_node")

    r = await bob.request({"op": "post", "room": ROOM, "text": "from b"})
    check(r["op"] == "ok", f"bob posts: {r}")
    ev = await alice.event(is_op("message", seq=r["seq"]))
    check(ev["text"] == "from b", f"message on the other node: {ev}")
    r = await alice.request({"op": "post", "room": ROOM, "text": "from a"})
    seq = r["seq"]
    await bob.event(is_op("message", seq=seq))
    r = await alice.request({"op": "edit", "room": ROOM, "seq": seq, "text": "edited"})
    check(r["op"] == "ok", f"edit: {r}")
    await bob.event(is_op("edited", seq=seq))
    r = await alice.request({"op": "delete", "room": ROOM, "seq": seq})
    check(r["op"] == "ok", f"delete: {r}")
    await bob.event(is_op("deleted", seq=seq))
    print("ok message_edit_delete_seen_on_other_node")

    status, _, body = admin(a, "PUT", "/members/alice", {"role": "moderator"})
    check(status == 200, f"alice made moderator on a: {status} {body}")
    ev = await bob.event(lambda e: e.get("op") == "role" and e["user"]["id"] == "alice")
    check(ev["role"] == "moderator", f"role seen on b: {ev}")
    print("ok role_from_management_api_seen_on_other_node")
    r = await alice.request({"op": "mute", "room": ROOM, "user": "bob"})
    check(r["op"] == "ok", f"alice (owner) mutes bob on node a: {r}")
    await bob.event(lambda e: e.get("op") == "muted" and e["user"]["id"] == "bob")
    r = await bob.request({"op": "post", "room": ROOM, "text": "muted?"})
    check(r["op"] == "error" and r.get("code") == "muted", f"bob muted on a cannot post on b: {r}")
    r = await alice.request({"op": "unmute", "room": ROOM, "user": "bob"})
    check(r["op"] == "ok", f"unmute: {r}")
    await bob.event(lambda e: e.get("op") == "unmuted" and e["user"]["id"] == "bob")
    print("ok mute_on_a_enforced_on_b")

    # Posts from both nodes at once: every client gets every message.
    first = (await alice.request({"op": "post", "room": ROOM, "text": "start"}))["seq"]
    await bob.event(is_op("message", seq=first))
    sends = []
    for i in range(POSTS):
        sends.append(alice.ws.send(f'{{"op":"post","room":"{ROOM}","text":"a{i}","ref":"a{i}"}}'))
        sends.append(bob.ws.send(f'{{"op":"post","room":"{ROOM}","text":"b{i}","ref":"b{i}"}}'))
    await asyncio.gather(*sends)
    for who in (alice, bob):
        got = set()
        while len(got) < 2 * POSTS:
            ev = await who.event(lambda e: e.get("op") == "message" and e.get("room") == ROOM and e["seq"] > first)
            got.add(ev["seq"])
        check(sorted(got) == list(range(first + 1, first + 2 * POSTS + 1)), f"seqs with a gap: {sorted(got)}")
    print("ok posts_from_both_nodes_reach_all_in_seq")

    # The newest seq a node answers follows posts made on the other node, and
    # a read marker set on one node reaches the reader's sessions on the other.
    r = await alice.request({"op": "post", "room": ROOM, "text": "read me"})
    last = r["seq"]
    await bob.event(is_op("message", seq=last))
    alice_b = await ct.connect(b, "alice")
    r = await alice_b.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok" and r["last_seq"] == last, f"b's last_seq after a post on a ({last}): {r}")
    r = await alice_b.request({"op": "read", "room": ROOM, "seq": last})
    check(r["op"] == "ok" and r["unread"] == 0, f"alice reads up to {last} on b: {r}")
    ev = await alice.event(lambda e: e.get("op") == "read" and e.get("room") == ROOM)
    check(ev["seq"] == last, f"the read marker set on b, seen by alice's session on a: {ev}")
    print("ok last_seq_and_read_marker_across_nodes")

    # What a node answers in `join` follows the markers moved on the other
    # node: bob's post on b counts as read by him, alice's read on b moves hers.
    r = await bob.request({"op": "post", "room": ROOM, "text": "bob's own"})
    bob_seq = r["seq"]
    await alice.event(is_op("message", seq=bob_seq))
    r = await alice_b.request({"op": "read", "room": ROOM, "seq": bob_seq})
    check(r["op"] == "ok" and r["unread"] == 0, f"alice reads up to {bob_seq} on b: {r}")
    await alice.event(lambda e: e.get("op") == "read" and e.get("room") == ROOM and e.get("seq") == bob_seq)
    r = await alice.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok" and r["read_seq"] == bob_seq, f"alice's read_seq on a after her read on b: {r}")
    bob_on_a = await ct.connect(a, "bob")
    r = await bob_on_a.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok" and r["read_seq"] == bob_seq, f"bob's read_seq on a after his post on b: {r}")
    await bob_on_a.close()
    await alice_b.close()
    print("ok read_seq_on_join_follows_the_other_node")

    status, _, body = admin(a, "DELETE", "/members/bob")
    check(status == 204, f"bob kicked on a: {status} {body}")
    await bob.event(lambda e: e.get("op") == "left" and e["user"]["id"] == "bob")
    # Taken here, so that waiting for bob's next `left` below waits for that one.
    await alice.event(lambda e: e.get("op") == "left" and e["user"]["id"] == "bob")
    r = await bob.request({"op": "post", "room": ROOM, "text": "kicked?"})
    check(r["op"] == "error", f"bob kicked on a cannot post on b: {r}")
    print("ok kick_on_a_enforced_on_b")

    # A ban of a non-member sends no event: the node where they try to join
    # reads the room's bans from the shared store.
    r = await alice.request({"op": "ban", "room": ROOM, "user": "bob"})
    check(r["op"] == "ok", f"alice bans bob (not a member) on a: {r}")
    r = await bob.request({"op": "join", "room": ROOM})
    check(r["op"] == "error" and r.get("code") == "forbidden", f"bob banned on a joins on b: {r}")
    status, _, body = hutspace.http("DELETE", b.admin + f"/api/v1/rooms/{ROOM}/bans/bob", None,
                                    headers={"Authorization": f"Bearer {b.admin_token}"})
    check(status == 204, f"the ban given on a lifted through b's management API: {status} {body}")
    r = await bob.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok", f"bob joins on b once the ban is lifted: {r}")
    await alice.event(lambda e: e.get("op") == "joined" and e.get("room") == ROOM and e["user"]["id"] == "bob")
    print("ok ban_on_a_enforced_and_lifted_on_b")

    # A mute outlives leave and join, also when the join is on another node.
    r = await alice.request({"op": "mute", "room": ROOM, "user": "bob"})
    check(r["op"] == "ok", f"alice mutes bob again: {r}")
    await bob.event(lambda e: e.get("op") == "muted" and e["user"]["id"] == "bob")
    r = await bob.request({"op": "leave", "room": ROOM})
    check(r["op"] == "ok", f"bob leaves on b while muted: {r}")
    await alice.event(lambda e: e.get("op") == "left" and e.get("room") == ROOM and e["user"]["id"] == "bob")
    bob_a = await ct.connect(a, "bob")
    r = await bob_a.request({"op": "join", "room": ROOM})
    check(r["op"] == "ok", f"bob joins again on a: {r}")
    r = await bob_a.request({"op": "post", "room": ROOM, "text": "unmuted by leaving?"})
    check(r["op"] == "error" and r.get("code") == "muted", f"bob's mute kept across nodes: {r}")
    print("ok mute_kept_across_leave_on_b_and_join_on_a")
    await bob_a.close()
    await alice.close()
    await bob.close()


def main():
    hutspace.require_spaced()
    if shutil.which("redis-server") is None:
        print("SKIP: redis-server not installed")
        sys.exit(77)
    pg = hutpg.started_or_skip()
    url = pg.new_database()
    ct.tmp = tempfile.mkdtemp(prefix="hut-roomx-")
    ct.redis = ct.Redis(ct.tmp)
    spaces = []
    failure = None
    try:
        ct.redis.start()
        conf = dict(ct.CLUSTER, redis=ct.redis.url)
        limits = {"post_rate": 1000000, "post_burst": 1000000}
        spaces.extend(hutspace.Spaced(limits=limits, store_url=url, app_secret=ct.secret,
                                      cluster=dict(conf, node=f'"{name}"')) for name in ("a", "b"))
        spaces[0].start()
        status, _, body = hutspace.http("POST", spaces[0].admin + "/api/v1/rooms", {"room": ROOM},
                                        headers={"Authorization": f"Bearer {spaces[0].admin_token}"})
        assert status == 201, (status, body)
        spaces[1].start()
        asyncio.run(asyncio.wait_for(scenario(*spaces), 120))
    except Exception as e:  # noqa: BLE001
        failure = f"{type(e).__name__}: {e}"
        print(f"FAIL room_events_across_nodes: {failure}")
        print("\n".join(space.log() for space in spaces))
    finally:
        stoppers = [space.stop for space in spaces] + [ct.redis.stop, pg.close]
        for stop in stoppers:
            stop()
        shutil.rmtree(ct.tmp, ignore_errors=True)
    print(f"{int(failure is None)} passed, {int(failure is not None)} failed")
    sys.exit(0 if failure is None else 1)

if __name__ == "__main__":
    main()
