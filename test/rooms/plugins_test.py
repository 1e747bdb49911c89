#!/usr/bin/env python3
"""Plugins and rooms: the room hooks of the runtime (joined, left, online,
offline, a post refused or rewritten) as clients see them, with the test
plugin rooms_hooks.so and the first-party word filter moderation.so
configured in its moderation.toml. Ends with "N passed, N failed".
"""
import asyncio
import os
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402
import rooms_test  # noqa: E402
from rooms_test import Client, Failure, check  # noqa: E402

cases = []


def case(fn):
    cases.append(fn)
    return fn


def admin(method, path, body=None):
    space = rooms_test.space
    return hutspace.http(method, space.admin + path, body,
                         headers={"Authorization": f"Bearer {space.admin_token}"})[::2]


@case
async def hooks_see_presence_joins_and_leaves():
    a = await Client.open("ann")
    try:
        ev = await a.event("widget", plugin="rooms_hooks")
        check(ev["data"] == {"online": True}, f"online hook: {ev}")
        await a.ok("create", room="hooks")
        b = await Client.open("bob")
        await b.ok("join", room="hooks")
        ev = await a.event("widget", plugin="rooms_hooks", data={"joined": "bob"})
        await b.ok("leave", room="hooks")
        ev = await a.event("widget", plugin="rooms_hooks", data={"left": "bob"})
        await b.close()
    finally:
        await a.close()


@case
async def hooks_see_members_added_and_kicked_through_the_api():
    a = await Client.open("ann")
    try:
        await a.ok("create", room="api-hooks")
        status, body = admin("PUT", "/api/v1/rooms/api-hooks/members/bob", {})
        check(status == 200, f"PUT member: {status} {body}")
        await a.event("widget", plugin="rooms_hooks", data={"joined": "bob"})
        status, body = admin("DELETE", "/api/v1/rooms/api-hooks/members/bob")
        check(status == 204, f"DELETE member: {status} {body}")
        await a.event("widget", plugin="rooms_hooks", data={"left": "bob"})
    finally:
        await a.close()


@case
async def the_word_filter_refuses_an_edit_too():
    a = await Client.open("ann")
    try:
        await a.ok("create", room="edits")
        p = await a.ok("post", room="edits", text="clean words")
        got = await a.refused("forbidden", "edit", room="edits", seq=p["seq"], text="buy SPAM now")
        check(got["message"] == "no spam please", f"moderation's reason: {got}")
        h = await a.ok("history", room="edits")
        check(all("SPAM" not in m["text"] for m in h["messages"]), f"a refused edit was stored: {h}")
    finally:
        await a.close()


@case
async def the_word_filter_refuses_and_hooks_rewrite():
    a, b = await Client.open("ann"), await Client.open("bob")
    try:
        await a.ok("create", room="words")
        await b.ok("join", room="words")
        got = await a.refused("forbidden", "post", room="words", text="buy SPAM now")
        check(got["message"] == "no spam please", f"moderation's reason: {got}")
        got = await a.refused("forbidden", "post", room="words", text="a forbidden thing")
        check(got["message"] == "no forbidden words here", f"rooms_hooks' reason: {got}")
        await b.no_event("message", room="words")
        h = await b.ok("history", room="words")
        check(h["messages"] == [], f"a refused post was stored: {h}")
        await a.ok("post", room="words", text="please shout")
        m = await b.event("message", room="words")
        check(m["text"] == "PLEASE SHOUT" and m["data"] == {"shouted": True}, f"rewritten: {m}")
        await a.ok("post", room="words", text="clean words")
        m = await b.event("message", room="words")
        check(m["text"] == "clean words", f"untouched: {m}")
    finally:
        await a.close()
        await b.close()


@case
async def api_posts_pass_the_filters():
    a = await Client.open("ann")
    try:
        await a.ok("create", room="api-words")
        status, body = admin("POST", "/api/v1/rooms/api-words/messages", {"text": "cheap spam here"})
        check(status == 403 and body == {"error": {"code": "forbidden", "message": "no spam please"}},
              f"refused API post: {status} {body}")
        status, body = admin("POST", "/api/v1/rooms/api-words/messages",
                             {"text": "a forbidden thing", "from": {"id": "shop", "name": "Shop"}})
        check(status == 403 and body["error"]["message"] == "no forbidden words here", f"refused: {status} {body}")
        await a.no_event("message", room="api-words")
        status, body = admin("GET", "/api/v1/rooms/api-words/messages")
        check(status == 200 and body["messages"] == [], f"a refused API post was stored: {body}")
        status, body = admin("POST", "/api/v1/rooms/api-words/messages", {"text": "please shout", "data": [1]})
        check(status == 201, f"rewritten API post: {status} {body}")
        m = await a.event("message", room="api-words")
        check(m["text"] == "PLEASE SHOUT" and m["data"] == {"shouted": True} and m["seq"] == body["seq"],
              f"rewritten: {m}")
    finally:
        await a.close()


@case
async def plugin_posts_pass_the_other_plugins_filters():
    a = await Client.open("ann")
    try:
        await a.ok("create", room="bot-words")
        got = (await widget(a, {"do": "post", "room": "bot-words", "text": "spam spam"}))["data"]
        check(got == {"status": -8}, f"room_post refused by moderation: {got}")
        got = (await widget(a, {"do": "post", "room": "bot-words", "text": "forbidden"}))["data"]
        check(got == {"status": -8}, f"room_post refused by rooms_hooks: {got}")
        await a.no_event("message", room="bot-words")
        got = (await widget(a, {"do": "post", "room": "bot-words", "text": "shout"}))["data"]
        m = await a.event("message", room="bot-words")
        check(m["text"] == "SHOUT" and m["data"] == {"shouted": True} and m["seq"] == got.get("seq"),
              f"a plugin's post rewritten: {got} {m}")
        # room_bot refuses "robots" in the posts of others, not in its own.
        got = await a.refused("forbidden", "post", room="bot-words", text="robots are here")
        check(got["message"] == "room_bot: no robots talk", f"room_bot's reason: {got}")
        got = (await widget(a, {"do": "post", "room": "bot-words", "text": "robots are here"}))["data"]
        check(isinstance(got.get("seq"), int), f"room_bot's own post: {got}")
        m = await a.event("message", room="bot-words")
        check(m["text"] == "robots are here" and m["from"]["id"] == "plugin:room_bot", f"own post: {m}")
        status, body = admin("POST", "/api/v1/rooms/bot-words/messages", {"text": "robots"})
        check(status == 403 and body["error"]["message"] == "room_bot: no robots talk", f"API: {status} {body}")
        # A post from inside a filter is refused, so filters cannot start a chain of posts.
        await a.ok("post", room="bot-words", text="echo me")
        m = await a.event("message", room="bot-words")
        check(m["text"] == "echo me", f"echo me: {m}")
        got = (await widget(a, {"do": "echo_rc", "room": "bot-words"}))["data"]
        check(got == {"status": -4}, f"room_post inside on_post: {got}")
        await a.no_event("message", room="bot-words")
    finally:
        await a.close()


@case
async def the_word_filter_holds_on_every_route():
    """One post pipeline: the moderation word is refused in a post and an edit
    over the bus, in a post through the management API, in a plugin's post;
    the data limit holds on the API route too."""
    a = await Client.open("ann")
    try:
        await a.ok("create", room="every-route")
        p = await a.ok("post", room="every-route", text="clean start")
        await a.event("message", room="every-route", seq=p["seq"])
        got = await a.refused("forbidden", "post", room="every-route", text="buy spam")
        check(got["message"] == "no spam please", f"bus post: {got}")
        got = await a.refused("forbidden", "edit", room="every-route", seq=p["seq"], text="now spam")
        check(got["message"] == "no spam please", f"bus edit: {got}")
        status, body = admin("POST", "/api/v1/rooms/every-route/messages",
                             {"text": "spam as ann", "from": {"id": "ann", "name": "Ann"}})
        check(status == 403 and body["error"] == {"code": "forbidden", "message": "no spam please"},
              f"API post as a member: {status} {body}")
        got = (await widget(a, {"do": "post", "room": "every-route", "text": "bot spam"}))["data"]
        check(got == {"status": -8}, f"plugin post: {got}")
        status, body = admin("POST", "/api/v1/rooms/every-route/messages",
                             {"text": "big", "data": {"blob": "d" * 16400}})
        check(status == 413 and body["error"]["code"] == "too_large", f"API post with 16 KiB of data: {status} {body}")
        await a.no_event("message", room="every-route")
        await a.no_event("edited", room="every-route")
        h = await a.ok("history", room="every-route")
        check([m["text"] for m in h["messages"]] == ["clean start"], f"history: {h}")
    finally:
        await a.close()


@case
async def a_muted_member_cannot_post_or_edit_on_any_route():
    """A member's mute (their own or mute-all) binds every route that acts as
    them: the bus and the management API's post with `from`; a moderator is
    exempt from mute-all on both."""
    a, b = await Client.open("ann"), await Client.open("bob")
    try:
        r = "muted-routes"
        await a.ok("create", room=r)
        await b.ok("join", room=r)
        p = await b.ok("post", room=r, text="before the mute")
        await a.event("message", room=r, seq=p["seq"])
        await a.ok("mute", room=r, user="bob")
        await b.refused("muted", "post", room=r, text="let me speak")
        await b.refused("muted", "edit", room=r, seq=p["seq"], text="changed")
        as_bob = {"text": "through the API", "from": {"id": "bob", "name": "Bob"}}
        status, body = admin("POST", f"/api/v1/rooms/{r}/messages", as_bob)
        check(status == 403 and body["error"]["code"] == "muted", f"API post as a muted member: {status} {body}")
        await a.ok("unmute", room=r, user="bob")
        await a.ok("mute_all", room=r, on=True)
        await b.refused("muted", "post", room=r, text="under mute-all")
        await b.refused("muted", "edit", room=r, seq=p["seq"], text="under mute-all")
        status, body = admin("POST", f"/api/v1/rooms/{r}/messages", as_bob)
        check(status == 403 and body["error"]["code"] == "muted", f"API post under mute-all: {status} {body}")
        await a.no_event("message", room=r)
        await a.no_event("edited", room=r)
        # The room's creator is exempt from mute-all on the bus and the API,
        # and someone who is not a member is not bound by a member's mute.
        await a.ok("post", room=r, text="the owner speaks")
        status, body = admin("POST", f"/api/v1/rooms/{r}/messages",
                             {"text": "the owner via the API", "from": {"id": "ann", "name": "Ann"}})
        check(status == 201, f"API post as the exempt owner: {status} {body}")
        status, body = admin("POST", f"/api/v1/rooms/{r}/messages", {"text": "an announcement"})
        check(status == 201, f"API post as the admin: {status} {body}")
        h = await a.ok("history", room=r)
        check([m["text"] for m in h["messages"]] ==
              ["before the mute", "the owner speaks", "the owner via the API", "an announcement"],
              f"history: {h}")
    finally:
        await a.close()
        await b.close()


@case
async def the_word_filter_masks_after_a_reload():
    with open(rooms_test.TOML, "w") as f:
        f.write('words = ["spam", "Scam"]\naction = "mask"\n')
    status, body = admin("POST", "/api/v1/plugins/moderation/reload")
    check(status == 200, f"reload: {status} {body}")
    a = await Client.open("ann")
    try:
        await a.ok("join", room="words")
        await a.ok("post", room="words", text="Spam or scam? spam!")
        m = await a.event("message", room="words")
        check(m["text"] == "**** or ****? ****!", f"masked: {m}")
    finally:
        await a.close()


def widget(client, data):
    return client.ok("widget", plugin="room_bot", data=data)


@case
async def a_plugin_posts_reads_and_lists_members():
    a, b = await Client.open("ann"), await Client.open("bob")
    try:
        await a.ok("create", room="bots")
        await b.ok("join", room="bots")
        got = (await widget(a, {"do": "post", "room": "bots", "text": "beep"}))["data"]
        check(isinstance(got.get("seq"), int) and isinstance(got.get("ts"), int), f"room_post: {got}")
        for x in (a, b):
            m = await x.event("message", room="bots")
            check(m["from"] == {"id": "plugin:room_bot", "name": "room_bot"} and m["text"] == "beep" and
                  m["data"] == {"bot": True} and m["seq"] == got["seq"], f"bot message: {m}")
        await a.ok("post", room="bots", text="hi bot")
        h = (await widget(b, {"do": "history", "room": "bots", "limit": 1}))["data"]
        check([m["text"] for m in h["messages"]] == ["hi bot"] and h["more"], f"room_history: {h}")
        mem = (await widget(b, {"do": "members", "room": "bots"}))["data"]
        check(sorted(x["id"] for x in mem) == ["ann", "bob"] and all(x["online"] for x in mem), f"members: {mem}")
        n = (await widget(a, {"do": "event", "room": "bots"}))["data"]
        check(n == {"status": 0}, f"send_widget_event to the room: {n}")
        ev = await b.event("widget", plugin="room_bot")
        check(ev["data"] == {"hello": "bots"}, f"widget event: {ev}")
        for what in ("post", "history", "members"):
            got = (await widget(a, {"do": what, "room": "no-such-room", "text": "x"}))["data"]
            check(got == {"status": -2}, f"{what} in a missing room: {got}")
    finally:
        await a.close()
        await b.close()


async def run_all():
    passed = failed = 0
    for fn in cases:
        try:
            await asyncio.wait_for(fn(), 60)
            passed += 1
            print(f"ok   {fn.__name__}")
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc(file=sys.stdout)
    return passed, failed


def main():
    hutspace.require_spaced()
    hooks_so = os.path.join(hutspace.build_root(), "test", "plugins", "rooms_hooks.so")
    moderation_so = os.path.join(hutspace.build_root(), "plugins", "moderation.so")
    bot_so = os.path.join(hutspace.build_root(), "test", "rooms", "room_bot.so")
    if not all(os.path.exists(p) for p in (hooks_so, moderation_so, bot_so)):
        print("skipped: rooms_hooks.so, moderation.so or room_bot.so is not built")
        sys.exit(hutspace.SKIP)
    conf_dir = tempfile.mkdtemp(prefix="hut-moderation-")
    rooms_test.TOML = os.path.join(conf_dir, "moderation.toml")
    with open(rooms_test.TOML, "w") as f:
        f.write('words = ["spam"]\naction = "refuse"\nreason = "no spam please"\n')
    space = hutspace.Spaced(extra_plugins=[hooks_so, bot_so, rooms_test.TOML])
    rooms_test.space = space
    space.start()
    try:
        names = [p["name"] for p in space.plugins() if p.get("state") == "loaded"]
        if not {"moderation", "rooms_hooks", "room_bot"} <= set(names):
            print(f"FAIL plugins not loaded: {space.plugins()}")
            passed, failed = 0, 1
        else:
            passed, failed = asyncio.run(run_all())
    finally:
        alive = space.alive()
        space.stop()
        os.remove(rooms_test.TOML)
        os.rmdir(conf_dir)
    if failed:
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and alive else 1)


if __name__ == "__main__":
    main()
