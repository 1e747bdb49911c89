#!/usr/bin/env python3
"""Writes the seed inputs of the rooms_bus and admin fuzz targets (their input
formats are described at the top of rooms_bus_fuzz.cc and admin_fuzz.cc) into
corpus/rooms_bus and corpus/admin. Run it after changing a format."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OPS = ["rooms", "create", "join", "leave", "post", "edit", "delete", "history", "read", "typing",
       "members", "dm", "kick", "mute", "unmute", "mute_all", "role", "ban", "unban", "ping", "widget"]
# Past the four names: the rooms the store created, in order ("made1" is the second).
ROOMS = {"lobby": 0, "dev": 1, "secret": 2, "x": 3, "made0": 4, "made1": 5}
USERS = {"alice": 0, "bob": 1, "carol": 2, "dave": 3, "erin": 4, "ghost": 5, "admin": 6}
ROLES = {"member": 0, "moderator": 1, "master": 2, "owner": 3}


def text(s):
    b = s.encode()
    return bytes([0, len(b)]) + b


def op(session, name, *fields, nowait=False):
    return bytes([session | (0x80 if nowait else 0), OPS.index(name)]) + b"".join(fields)


def room(r):
    return bytes([ROOMS[r]])


def user(u):
    return bytes([USERS[u]])


def num(n):
    return bytes([n])


PRESENT, ABSENT = b"\x01", b"\x00"

# Sessions: 0 alice, 1 bob, 2 carol, 3 alice again, 4 dave, 5 erin.
SEEDS = {
    "chat": [
        op(0, "create", room("lobby"), PRESENT, num(0), PRESENT, text("welcome")),
        op(1, "join", room("lobby")),
        op(1, "post", room("lobby"), text("hello"), ABSENT),
        op(0, "post", room("lobby"), text("hi bob"), PRESENT, num(1)),
        op(1, "edit", room("lobby"), num(1), text("hello!")),
        op(0, "read", room("lobby"), num(2)),
        op(3, "history", room("lobby"), ABSENT, ABSENT, PRESENT, num(1)),
        op(3, "history", room("lobby"), PRESENT, num(2), ABSENT, PRESENT, num(1)),
        op(2, "typing", room("lobby")),
        op(1, "delete", room("lobby"), num(1)),
        op(0, "members", room("lobby"), ABSENT, ABSENT),
        op(1, "leave", room("lobby")),
        op(0, "rooms"),
    ],
    "moderation": [
        op(0, "create", room("lobby"), ABSENT, ABSENT),
        op(1, "join", room("lobby")),
        op(2, "join", room("lobby")),
        op(0, "role", room("lobby"), user("bob"), num(ROLES["moderator"])),
        op(1, "mute", room("lobby"), user("carol"), PRESENT, num(2)),
        op(2, "post", room("lobby"), text("muted?"), ABSENT),
        op(2, "edit", room("lobby"), num(1), text("edit while muted")),
        op(2, "leave", room("lobby")),
        op(2, "join", room("lobby")),
        op(2, "post", room("lobby"), text("after rejoin"), ABSENT),
        op(1, "unmute", room("lobby"), user("carol")),
        op(2, "post", room("lobby"), text("free"), ABSENT),
        op(2, "kick", room("lobby"), user("bob")),
        op(1, "kick", room("lobby"), user("carol")),
        op(0, "ban", room("lobby"), user("carol"), ABSENT),
        op(2, "join", room("lobby")),
        op(0, "unban", room("lobby"), user("carol")),
        op(0, "mute_all", room("lobby"), num(1)),
        op(1, "post", room("lobby"), text("mute all"), ABSENT),
        op(0, "role", room("lobby"), user("bob"), num(ROLES["master"])),
    ],
    "private_dm": [
        op(0, "create", room("secret"), PRESENT, num(1), ABSENT),
        op(1, "join", room("secret")),
        op(1, "history", room("secret"), ABSENT, ABSENT, ABSENT),
        op(4, "dm", user("alice")),
        op(4, "post", room("made1"), text("psst"), ABSENT),
        op(3, "history", room("made1"), ABSENT, ABSENT, ABSENT),
        op(5, "dm", user("ghost")),
        op(5, "dm", user("erin")),
        op(0, "post", room("secret"), text("only me"), ABSENT),
        op(1, "members", room("secret"), ABSENT, ABSENT),
    ],
    "plugins": [
        op(0, "create", room("lobby"), ABSENT, ABSENT),
        op(0, "post", room("lobby"), bytes([30]), ABSENT),
        op(0, "post", room("lobby"), text("fine"), ABSENT),
        op(0, "edit", room("lobby"), num(1), bytes([30])),
        op(1, "widget", num(0), num(4)),
        op(1, "widget", num(0), num(5)),
        op(2, "widget", num(1), num(1)),
        op(2, "widget", num(3), num(0)),
    ],
    "batched": [
        op(0, "create", room("dev"), ABSENT, ABSENT),
        op(1, "join", room("dev"), nowait=True),
        op(1, "post", room("dev"), text("a"), ABSENT, nowait=True),
        op(1, "post", room("dev"), text("b"), ABSENT, nowait=True),
        op(0, "kick", room("dev"), user("bob"), nowait=True),
        op(1, "post", room("dev"), text("c"), ABSENT, nowait=True),
        op(1, "delete", room("dev"), num(2)),
        op(3, "read", room("dev"), num(11)),
        bytes([2, 0xF8]),  # carol's session closes
        op(2, "rooms"),
    ],
}

# Admin requests: head byte (method | auth << 3 | raw path << 5 | structured body << 6).
GET, POST, PUT, DELETE = 0, 1, 2, 3
ROUTES = ["/healthz", "/metrics", "/api/v1/tokens", "/api/v1/rooms", "/api/v1/rooms/", "/api/v1/rooms/{r}",
          "/api/v1/rooms/{r}/messages", "/api/v1/rooms/{r}/members/{u}", "/api/v1/rooms/{r}/x",
          "/api/v1/plugins", "/api/v1/plugins/{u}", "/api/v1/plugins/{u}/reload", "/api/v1/roomsX"]
PATH_ROOMS = ["lobby", "dev", "secret", "", "a%2Fb", "x y"]
PATH_USERS = ["alice", "bob", "ghost", "", "a/b", "admin"]


def req(method, route, *path_args, query=b"", body_kind=None, body_byte=0, body_text=b"", auth=0, raw_body=b""):
    head = method | (auth << 3) | (0x40 if body_kind is not None else 0)
    out = bytes([head]) + (b"\x05wrong" if auth == 2 else b"") + bytes([ROUTES.index(route)]) + bytes(path_args) + bytes([len(query)]) + query
    if body_kind is None:
        return out + bytes([len(raw_body)]) + raw_body
    out += bytes([body_byte, body_kind])
    if body_kind in (0, 1):
        out += bytes([len(body_text)]) + body_text
    return out


ADMIN = {
    "rooms": [
        req(POST, "/api/v1/rooms", body_kind=0, body_byte=0, body_text=b"topic"),
        req(GET, "/api/v1/rooms"),
        req(GET, "/api/v1/rooms/{r}", 0),
        req(POST, "/api/v1/rooms/{r}/messages", 0, body_kind=1, body_text=b"hello"),
        req(POST, "/api/v1/rooms/{r}/messages", 0, body_kind=2, body_byte=1 << 3),
        req(GET, "/api/v1/rooms/{r}/messages", 0, query=b"before=2&limit=1"),
        req(GET, "/api/v1/rooms/{r}/messages", 0, query=b"limit=0"),
        req(PUT, "/api/v1/rooms/{r}/members/{u}", 0, 1, body_kind=3, body_byte=1),
        req(PUT, "/api/v1/rooms/{r}/members/{u}", 0, 2, raw_body=b""),
        req(DELETE, "/api/v1/rooms/{r}/members/{u}", 0, 1),
        req(DELETE, "/api/v1/rooms/{r}", 0),
    ],
    "auth": [
        req(GET, "/healthz"),
        req(GET, "/metrics", auth=1),
        req(GET, "/metrics", auth=2) + b"",
        req(POST, "/api/v1/tokens", body_kind=4, body_byte=40),
        req(POST, "/api/v1/tokens", raw_body=b"{\"user\":\"\"}"),
        req(GET, "/api/v1/plugins"),
        req(POST, "/api/v1/plugins", body_kind=5),
        req(GET, "/api/v1/plugins/{u}", 0),
        req(POST, "/api/v1/plugins/{u}/reload", 4),
    ],
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, parts in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"".join(parts))


write("rooms_bus", SEEDS)
write("admin", ADMIN)
