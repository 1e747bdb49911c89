#!/usr/bin/env python3
"""The chat in a real browser: a real relayd, a real spaced trusting it (with
the build's chat plugin), and headless Chromium driven by Playwright
(chat_ui.mjs, run with node). This script runs the daemons, makes two relay
accounts, seeds a room of 1,000 messages through the management API, and
restarts spaced when the browser script asks (a line "CTL stop" / "CTL start"
on its output; the answer goes to its input).

Screenshots go to <build>/test-screenshots/. Ends with "N passed, N failed".
Exits 77 when spaced, relayd, the chat plugin, Chromium, node or
playwright-core is missing.
"""
import json
import os
import queue
import secrets
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
from login_flow import RelaySpaced, free_port, start_relay  # noqa: E402

CHROMIUM = os.environ.get("HUT_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"
SEED = 1000


def skip(why):
    print(f"skipped: {why}")
    sys.exit(hutspace.SKIP)


def png(width, height, rgb):
    """A plain PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class FixedSpaced(RelaySpaced):
    """RelaySpaced on a public port chosen in advance (so that a restart keeps
    the page's address) and with the space id the relay registered."""

    def __init__(self, relay, port, space_id):
        super().__init__(relay, space_id)
        self.fixed_port = port

    def config_text(self):
        text = super().config_text()
        return text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.fixed_port}"', 1)

    def restart(self):
        status = self.terminate()
        self.proc = None
        self.output.append(f"--- restarted (exit status {status}) ---")
        self.start()
        return status


def admin(space, method, path, body=None):
    return hutspace.http(method, space.admin + path, body,
                         headers={"Authorization": f"Bearer {space.admin_token}"}, timeout=30)


def main():
    hutspace.require_spaced()
    build = hutspace.build_root()
    if not os.path.exists(os.path.join(build, "plugins", "chat.so")):
        skip("the chat plugin is not built")
    if not os.access(CHROMIUM, os.X_OK):
        skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    node = shutil.which("node")
    if not node:
        skip("node is not installed")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")):
        skip("playwright-core is not installed (scripts/setup.sh runs npm ci)")

    results = []
    relay = space = None
    tmp = None
    statuses = {}
    try:
        relay = start_relay()
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        status, _, answer = relay.register("owner" + secrets.token_hex(3), PASSWORD, name="Space Owner")
        if status != 201:
            raise RuntimeError(f"register the owner: {status} {answer}")
        owner = answer["user"]["username"]
        # The relay assigns the space's id; the space runs with it.
        space_id = relay.register_space(relay.login(owner, PASSWORD), name=hutspace.SPACE_NAME, url=public)

        users = []
        for name in ("Alice", "Bob"):
            username = name.lower() + secrets.token_hex(3)
            status, _, answer = relay.register(username, PASSWORD, name=name)
            if status != 201:
                raise RuntimeError(f"register {name}: {status} {answer}")
            users.append({"username": username, "password": PASSWORD, "name": name, "id": answer["user"]["id"]})

        space = FixedSpaced(relay, port, space_id)
        space.start()
        tmp = space.tmp
        image = os.path.join(relay.tmp, "red-square.png")
        with open(image, "wb") as f:
            f.write(png(64, 64, (200, 30, 40)))

        # A public room of 1,000 messages, through the management API; Alice is a member.
        seed_room = "archive"
        status, _, answer = admin(space, "POST", "/api/v1/rooms",
                                  {"room": seed_room, "topic": "A long history",
                                   "members": [users[0]["id"]]})
        if status != 201:
            raise RuntimeError(f"create {seed_room}: {status} {answer}")
        started = time.monotonic()
        for i in range(1, SEED + 1):
            status, _, answer = admin(space, "POST", f"/api/v1/rooms/{seed_room}/messages",
                                      {"text": f"seed {i:04d}", "from": {"id": "seeder", "name": "Archivist"}})
            if status != 201:
                raise RuntimeError(f"seed message {i}: {status} {answer}")
        print(f"seeded {SEED} messages in {time.monotonic() - started:.1f} s")

        # Whether the chat plugin takes uploads (its upload route answers 401 without a ticket).
        status, _, _ = hutspace.http("POST", public + "/api/chat/files", headers={"Content-Type": "image/png"})
        files = status == 401

        cfg = {
            "space": public, "relay": relay.url, "admin": space.admin, "adminToken": space.admin_token,
            "spaceId": space_id, "spaceName": hutspace.SPACE_NAME, "users": users, "room": "tea",
            "seedRoom": seed_room, "seedCount": SEED, "image": image, "files": files, "chromium": CHROMIUM,
            "shots": os.path.join(build, "test-screenshots"),
        }
        env = dict(os.environ, HUT_CHAT_UI=json.dumps(cfg))
        proc = subprocess.Popen([node, "--no-warnings", os.path.join(HERE, "chat_ui.mjs")], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)
        out = queue.Queue()
        threading.Thread(target=lambda: [out.put(line) for line in proc.stdout] and None, daemon=True).start()
        counted = None
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            try:
                line = out.get(timeout=1)
            except queue.Empty:
                if proc.poll() is not None and out.empty():
                    break
                continue
            line = line.rstrip("\n")
            if line.startswith("CTL "):
                cmd = line[4:].strip()
                answer = ""
                if cmd == "stop":
                    statuses["spaced (restart)"] = space.terminate()
                elif cmd == "start":
                    space.proc = None
                    space.start()
                    answer = space.admin
                proc.stdin.write(answer + "\n")
                proc.stdin.flush()
                continue
            if line.endswith(" failed") and " passed, " in line:
                counted = line
                continue
            print(line)
        if proc.poll() is None:
            proc.kill()
            print("FAIL the browser script finished in time")
            results.append(False)
        proc.wait(10)
        if counted:
            p, f = counted.split(" passed, ")
            results += [True] * int(p) + [False] * int(f.split()[0])
        else:
            print("FAIL the browser script printed its counts")
            results.append(False)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL setup or run: {type(e).__name__}: {e}")
        results.append(False)
    finally:
        if space:
            statuses["spaced"] = space.terminate()
        if relay:
            statuses["relayd"] = relay.terminate()
    for name, status in statuses.items():
        ok = status == 0
        print(f"{'ok  ' if ok else 'FAIL'} {name} exits with 0 on SIGTERM{'' if ok else f' (status {status})'}")
        results.append(ok)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    if failed:
        if space:
            print("--- spaced output (last lines) ---")
            print(space.log())
        if relay:
            print("--- relayd output (last lines) ---")
            print("\n".join(relay.output[-40:]))
    if space:
        shutil.rmtree(space.tmp, ignore_errors=True)
    if relay:
        relay.cleanup()
    del tmp
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
