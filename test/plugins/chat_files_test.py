#!/usr/bin/env python3
"""The chat plugin's files in a running space: a real spaced loads the real
chat.so (with a chat.toml); users get upload tickets over the bus, upload
over HTTP, read the files back, and post messages that refer to them.

Ends with one line "N passed, N failed".
"""
import asyncio
import json
import os
import re
import struct
import sys
import time
import urllib.error
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402

RESULTS = {"passed": 0, "failed": 0}
MAX_FILE = 300000


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"{'ok   ' if ok else 'FAIL '} {name}" + ("" if ok else f" {detail}"))


class ChatSpace(hutspace.Spaced):
    """spaced with the build's plugins and a chat.toml of the test's own."""

    def plugins_dir(self):
        built = os.path.join(hutspace.build_root(), "plugins")
        folder = os.path.join(self.tmp, "plugins")
        os.makedirs(folder, exist_ok=True)
        for name in sorted(os.listdir(built)):
            if name.endswith(".so"):
                os.symlink(os.path.join(built, name), os.path.join(folder, name))
        with open(os.path.join(folder, "chat.toml"), "w") as f:
            f.write(f"max_file = {MAX_FILE}\nticket_ttl = 2\n")
        return folder


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def upload(space, ticket, data, ctype="application/octet-stream", name=None):
    headers = {"Content-Type": ctype}
    if ticket is not None:
        headers["Authorization"] = "Bearer " + ticket
    if name is not None:
        headers["X-File-Name"] = name
    status, hdrs, body = request("POST", space.public + "/api/chat/files", data, headers)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def png(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0" + b"rest of the image"


class Bus:
    def __init__(self, ws):
        self.ws = ws
        self.ref = 0

    async def call(self, frame):
        self.ref += 1
        frame = dict(frame, ref=self.ref)
        await self.ws.send(json.dumps(frame))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if msg.get("ref") == self.ref:
                return msg
        raise TimeoutError("no answer to " + json.dumps(frame))

    async def ticket(self):
        answer = await self.call({"op": "widget", "plugin": "chat", "data": {"action": "upload_ticket"}})
        if answer.get("op") != "ok":
            raise RuntimeError(f"no ticket: {answer}")
        return answer["data"]


def files_on_disk(space):
    out = []
    for root, _, names in os.walk(space.tmp):
        out += [os.path.join(root, n) for n in names]
    return out


async def cases(space):
    async with websockets.connect(space.bus_url) as ws_a, websockets.connect(space.bus_url) as ws_b:
        ada, bob = Bus(ws_a), Bus(ws_b)
        for bus, user, name in ((ada, "u-ada", "Ada"), (bob, "u-bob", "Bob")):
            await bus.ws.send(json.dumps({"op": "hello", "token": space.mint(user, name)}))
            welcome = json.loads(await asyncio.wait_for(bus.ws.recv(), 20))
            assert welcome.get("op") == "welcome", welcome

        t = await ada.ticket()
        check("a ticket is 256 random bits in hex", re.fullmatch(r"[0-9a-f]{64}", t["ticket"]) is not None, t)
        now_ms = time.time() * 1000
        check("the ticket expires within the configured ttl", now_ms < t["expires_at"] <= now_ms + 2000 + 1000, t)

        image = png(640, 480)
        before = set(files_on_disk(space))
        status, up = upload(space, t["ticket"], image, "image/png", "../../x")
        check("an upload with a ticket answers 201", status == 201, f"{status} {up}")
        check("the answer has id, url, type, size, name", isinstance(up, dict) and
              re.fullmatch(r"[0-9a-f]{32}", up.get("id", "")) and up.get("url") == "/api/chat/files/" + up["id"] and
              up.get("type") == "image/png" and up.get("size") == len(image) and up.get("name") == "../../x", up)
        check("the image's size is in the answer", up.get("width") == 640 and up.get("height") == 480, up)
        new = set(files_on_disk(space)) - before
        stored = [p for p in new if not p.endswith(("-wal", "-shm", "-journal"))]
        check("the file is stored under the data dir by its id, not by the client's name",
              len(stored) == 1 and os.path.basename(stored[0]) == up["id"] and
              os.path.dirname(stored[0]) == os.path.join(space.tmp, "data", "plugins", "chat", "files"), new)
        check("nothing named x was written anywhere",
              not any(os.path.basename(p) == "x" for p in files_on_disk(space)) and
              not os.path.exists(os.path.join(space.tmp, "x")) and not os.path.exists("x"), new)

        status, hdrs, body = request("GET", space.public + up["url"])
        check("GET returns the same bytes", status == 200 and body == image, f"{status} {len(body)}")
        check("an image in the safe list is inline with its type",
              hdrs.get("content-type") == "image/png" and hdrs.get("content-disposition", "").startswith("inline"),
              hdrs)
        check("nosniff and a CSP that runs nothing",
              hdrs.get("x-content-type-options") == "nosniff" and
              "default-src 'none'" in hdrs.get("content-security-policy", "") and
              "sandbox" in hdrs.get("content-security-policy", ""), hdrs)

        status, again = upload(space, t["ticket"], image, "image/png")
        check("a ticket used twice is refused", status == 401, f"{status} {again}")
        status, _ = upload(space, None, image, "image/png")
        check("an upload without a ticket is refused", status == 401, status)
        status, _ = upload(space, "0" * 64, image, "image/png")
        check("a made-up ticket is refused", status == 401, status)

        t_late = await bob.ticket()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and time.time() * 1000 < t_late["expires_at"] + 500:
            await asyncio.sleep(0.2)
        status, _ = upload(space, t_late["ticket"], b"late", "text/plain")
        check("an expired ticket is refused", status == 401, status)

        html = b"<script>alert(1)</script>"
        status, h_up = upload(space, (await bob.ticket())["ticket"], html, "text/html", "page.html")
        status2, hdrs, body = request("GET", space.public + h_up["url"])
        check("a non-image type is sent as an attachment",
              status == 201 and status2 == 200 and hdrs.get("content-disposition", "").startswith("attachment") and
              hdrs.get("content-type") == "text/html" and body == html, f"{status} {status2} {hdrs}")
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        status, s_up = upload(space, (await bob.ticket())["ticket"], svg, "image/svg+xml")
        _, hdrs, _ = request("GET", space.public + s_up["url"])
        check("svg is never inline", hdrs.get("content-disposition", "").startswith("attachment"), hdrs)
        status, fake = upload(space, (await bob.ticket())["ticket"], b"not a png at all", "image/png")
        _, hdrs, _ = request("GET", space.public + fake["url"])
        check("bytes that are not the declared image are an attachment",
              status == 201 and "width" not in fake and hdrs.get("content-disposition", "").startswith("attachment"),
              f"{fake} {hdrs}")

        status, twin = upload(space, (await ada.ticket())["ticket"], image, "image/png")
        check("two uploads of the same bytes get different ids", status == 201 and twin["id"] != up["id"],
              f"{twin} {up}")

        status, big = upload(space, (await ada.ticket())["ticket"], b"\0" * (MAX_FILE + 1))
        check("a file over chat.toml max_file gets 413", status == 413, f"{status} {big}")
        status, ok = upload(space, (await ada.ticket())["ticket"], b"\1" * MAX_FILE)
        check("a file of exactly max_file is taken", status == 201 and ok.get("size") == MAX_FILE, f"{status}")

        for path in ("/api/chat/files/" + "0" * 32, "/api/chat/files/../../space.db",
                     "/api/chat/files/" + up["id"][:-1], "/api/chat/files/%2e%2e%2fx"):
            status, _, _ = request("GET", space.public + path)
            check(f"GET {path} is 404", status == 404, status)

        # A message refers to files in data.
        await ada.call({"op": "create", "room": "files-room"})
        ref = {"id": up["id"], "url": up["url"], "type": up["type"], "size": up["size"], "name": up["name"]}
        answer = await ada.call({"op": "post", "room": "files-room", "text": "look", "data": {"files": [ref]}})
        check("a post referring to an uploaded file is stored", answer.get("op") == "ok", answer)
        bad = dict(ref, id="f" * 32)
        answer = await ada.call({"op": "post", "room": "files-room", "text": "x", "data": {"files": [bad]}})
        check("a post referring to an unknown file is refused", answer.get("code") == "forbidden", answer)
        hist = await ada.call({"op": "history", "room": "files-room"})
        msgs = hist.get("data", hist).get("messages", [])
        check("the history carries the files", any(m.get("data") == {"files": [ref]} for m in msgs), hist)


def main():
    with ChatSpace() as space:
        try:
            asyncio.run(cases(space))
        except Exception as e:  # noqa: BLE001
            check("the test ran to its end", False, repr(e))
        check("spaced is still running", space.alive())
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
