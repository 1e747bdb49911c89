#!/usr/bin/env python3
"""Large chat files in a running space: a real spaced with the real chat.so
takes uploads up to chat.toml max_file (default 10 MiB) written to disk as
they arrive, refuses one byte more with 413 leaving nothing behind, serves the
file back from disk, and refuses uploads past the per-user and total quotas.
The spaced process's memory is read from /proc before and after.

Ends with one line "N passed, N failed".
"""
import asyncio
import hashlib
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402

RESULTS = {"passed": 0, "failed": 0}
MIB = 1 << 20
QUOTA_PER_USER = 12 * MIB
QUOTA_TOTAL = 20 * MIB


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"{'ok   ' if ok else 'FAIL '} {name}" + ("" if ok else f" {detail}"))


class ChatSpace(hutspace.Spaced):
    """spaced with the build's plugins and a chat.toml with quotas (max_file left at its default)."""

    def plugins_dir(self):
        built = os.path.join(hutspace.build_root(), "plugins")
        folder = os.path.join(self.tmp, "plugins")
        os.makedirs(folder, exist_ok=True)
        for name in sorted(os.listdir(built)):
            if name.endswith(".so"):
                os.symlink(os.path.join(built, name), os.path.join(folder, name))
        with open(os.path.join(folder, "chat.toml"), "w") as f:
            f.write(f"quota_per_user = {QUOTA_PER_USER}\nquota_total = {QUOTA_TOTAL}\n")
        return folder


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def upload(space, ticket, data):
    headers = {"Content-Type": "application/octet-stream", "Authorization": "Bearer " + ticket}
    status, _, body = request("POST", space.public + "/api/chat/files", data, headers)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def upload_refused_early(space, ticket, size):
    """Sends a body of `size` bytes the way a client does that keeps writing
    until the server answers; returns the status and body of the answer."""
    sock = socket.create_connection(("127.0.0.1", space.port), timeout=60)
    sock.sendall((f"POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ticket}\r\n"
                  f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n").encode())
    try:
        chunk = b"\0" * (256 * 1024)
        sent = 0
        while sent < size:
            sock.sendall(chunk[:size - sent])
            sent += min(len(chunk), size - sent)
    except OSError:
        pass  # the space answered and closed before the whole body was sent
    data = b""
    try:
        while True:
            got = sock.recv(65536)
            if not got:
                break
            data += got
    except OSError:
        pass
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


def chat_dir(space):
    return os.path.join(space.tmp, "data", "plugins", "chat")


def stored(space):
    """Every file under the chat plugin's folder (stored files and bodies being received)."""
    out = []
    for root, _, names in os.walk(chat_dir(space)):
        out += [os.path.join(root, n) for n in names]
    return sorted(out)


def incoming(space):
    folder = os.path.join(chat_dir(space), ".incoming")
    return [os.path.join(folder, n) for n in os.listdir(folder)] if os.path.isdir(folder) else []


def wait_for(cond, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    return cond()


class Bus:
    def __init__(self, ws):
        self.ws = ws
        self.ref = 0

    async def ticket(self):
        self.ref += 1
        await self.ws.send(json.dumps({"op": "widget", "plugin": "chat", "ref": self.ref,
                                       "data": {"action": "upload_ticket"}}))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if msg.get("ref") == self.ref:
                if msg.get("op") != "ok":
                    raise RuntimeError(f"no ticket: {msg}")
                return msg["data"]["ticket"]
        raise TimeoutError("no ticket")


def pattern(size, seed):
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def cases(space):
    pid = space.proc.pid
    async with websockets.connect(space.bus_url) as ws_a, websockets.connect(space.bus_url) as ws_b:
        ada, bob = Bus(ws_a), Bus(ws_b)
        for bus, user, name in ((ada, "u-ada", "Ada"), (bob, "u-bob", "Bob")):
            await bus.ws.send(json.dumps({"op": "hello", "token": space.mint(user, name)}))
            welcome = json.loads(await asyncio.wait_for(bus.ws.recv(), 20))
            assert welcome.get("op") == "welcome", welcome

        # Warm up the upload and download paths with a small file first, so
        # that what is measured below is what a large file adds.
        status, small = upload(space, await ada.ticket(), b"warm up")
        request("GET", space.public + small["url"])
        check("a small upload works", status == 201, f"{status} {small}")

        big = pattern(9 * MIB, "nine")
        rss_before = proc_kib(pid, "VmRSS")
        hwm_before = proc_kib(pid, "VmHWM")
        status, up = upload(space, await ada.ticket(), big)
        check("a 9 MiB upload is taken (over the space's general 1 MiB body limit)",
              status == 201 and up.get("size") == len(big), f"{status} {up}")
        hwm_up = proc_kib(pid, "VmHWM")
        grew = hwm_up - max(rss_before, hwm_before)
        print(f"     VmRSS before {rss_before} KiB, VmHWM before {hwm_before} KiB, after the upload {hwm_up} KiB")
        check("spaced's peak memory grew by far less than the file (under 3 MiB for 9 MiB)",
              grew < 3 * 1024, f"grew {grew} KiB")
        path = os.path.join(chat_dir(space), "files", up.get("id", "?"))
        check("the file is stored whole under the plugin's data dir",
              os.path.isfile(path) and os.path.getsize(path) == len(big), path)
        check("no body file is left in .incoming", incoming(space) == [], incoming(space))

        status, hdrs, body = request("GET", space.public + up["url"])
        hwm_down = proc_kib(pid, "VmHWM")
        check("the download matches the upload (sha256)",
              status == 200 and hashlib.sha256(body).hexdigest() == hashlib.sha256(big).hexdigest(),
              f"{status} {len(body)}")
        check("the download has its length and the headers that run nothing",
              hdrs.get("content-length") == str(len(big)) and hdrs.get("x-content-type-options") == "nosniff" and
              "sandbox" in hdrs.get("content-security-policy", ""), hdrs)
        print(f"     VmHWM after the download {hwm_down} KiB")
        check("serving the file grew spaced's peak memory by far less than the file",
              hwm_down - hwm_up < 3 * 1024, f"grew {hwm_down - hwm_up} KiB")

        before = stored(space)
        status, refused = upload_refused_early(space, await bob.ticket(), 10 * MIB + 1)
        check("10 MiB + 1 byte gets 413", status == 413 and b"too_large" in refused, f"{status} {refused}")
        check("and leaves no file behind", stored(space) == before, set(stored(space)) - set(before))
        status, exact = upload(space, await bob.ticket(), b"\2" * (10 * MIB - 9 * MIB))
        check("bob can upload after that", status == 201, f"{status} {exact}")

        # A client that goes away in the middle of its body: the file grows
        # while the body arrives, and is removed when the connection drops.
        ticket = await bob.ticket()
        sock = socket.create_connection(("127.0.0.1", space.port), timeout=30)
        sock.sendall((f"POST /api/chat/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ticket}\r\n"
                      f"Content-Length: {5 * MIB}\r\n\r\n").encode())
        sock.sendall(b"\3" * (2 * MIB))
        partial = wait_for(lambda: [p for p in incoming(space) if os.path.getsize(p) >= 2 * MIB])
        check("a body being received is written to a file in .incoming as it arrives", len(partial) == 1,
              incoming(space))
        sock.close()
        check("the partial file is removed when the client goes away", wait_for(lambda: incoming(space) == []),
              incoming(space))

        # Quotas: ada has 9 MiB + 7 bytes of her 12 MiB.
        before = stored(space)
        status, q = upload(space, await ada.ticket(), b"\4" * (4 * MIB))
        check("an upload past quota_per_user is refused with 507 quota_exceeded",
              status == 507 and isinstance(q, dict) and q.get("error", {}).get("code") == "quota_exceeded" and
              "quota_per_user" in q["error"].get("message", ""), f"{status} {q}")
        check("the refused upload leaves no file", stored(space) == before, set(stored(space)) - set(before))
        status, ok = upload(space, await ada.ticket(), b"\5" * (2 * MIB))
        check("an upload within the quota still works", status == 201, f"{status} {ok}")
        # Total: 9 MiB + 2 MiB (ada) + 1 MiB (bob) + 7 bytes; bob adds 7 MiB: 19 MiB.
        status, ok = upload(space, await bob.ticket(), b"\6" * (7 * MIB))
        check("bob uploads 7 MiB (within both quotas)", status == 201, f"{status} {ok}")
        status, q = upload(space, await bob.ticket(), b"\7" * (2 * MIB))
        check("an upload past quota_total is refused with a message naming it",
              status == 507 and isinstance(q, dict) and "quota_total" in q.get("error", {}).get("message", ""),
              f"{status} {q}")


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
