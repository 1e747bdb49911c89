#!/usr/bin/env python3
"""Real audio between two real browsers in a voice channel.

Starts coturn (Debian's turnserver) on loopback with use-auth-secret and a
secret made up here, a spaced with the voice plugin configured with that TURN
server and secret, a room through the management API (a moderator and a
member), and runs voice_browser.mjs: two headless Chromium pages (Playwright,
fake microphones) join the channel with iceTransportPolicy "relay", so the
audio must go through TURN with the credentials spaced issued. Then the same
with a spaced without any ICE server (host candidates on loopback).

    voice_browser.py [--screenshots DIR]   (PNGs of the widget: desktop and phone, light and dark)

Ends with "N passed, N failed". Exits 77 when spaced, voice.so, Chromium,
node, playwright-core or turnserver is missing.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402

SOURCE_ROOT = os.environ.get("HUT_SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
CHROMIUM = os.environ.get("HUT_CHROMIUM", "/usr/bin/chromium")
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
GRACE = 3  # voice.toml grace_seconds: short, so that the reconnect check outlasts it


def skip(why):
    print(f"skipped: {why}")
    sys.exit(hutspace.SKIP)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def stun_answers(port, timeout=0.5):
    """True when a STUN binding request to 127.0.0.1:port gets a success answer."""
    tid = secrets.token_bytes(12)
    req = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + tid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(req, ("127.0.0.1", port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == tid


class Coturn:
    """turnserver on loopback, in the foreground, logging into its folder."""

    def __init__(self, secret):
        self.secret = secret
        self.tmp = tempfile.mkdtemp(prefix="hut-coturn-")
        self.port = free_port()
        self.proc = None
        self.log = os.path.join(self.tmp, "turn.log")

    def start(self):
        # A relay port range of its own, near the listening port, so that
        # parallel runs rarely meet.
        lo = 20000 + (self.port * 7) % 30000
        conf = os.path.join(self.tmp, "turnserver.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                f"listening-port={self.port}",
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"min-port={lo}",
                f"max-port={lo + 400}",
                "allow-loopback-peers",
                "no-cli",
                "no-tls",
                "no-dtls",
                "use-auth-secret",
                f"static-auth-secret={self.secret}",
                "realm=hutopia.test",
                "fingerprint",
                f"log-file={self.log}",
                "simple-log",
                "verbose",
                f"pidfile={os.path.join(self.tmp, 'turnserver.pid')}",
                f"userdb={os.path.join(self.tmp, 'turndb')}",
                "",
            ]))
        self.proc = subprocess.Popen([TURNSERVER, "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.tmp)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnserver exited with {self.proc.returncode}:\n{self.log_text()}")
            if stun_answers(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError("turnserver does not answer STUN:\n" + self.log_text())

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    def terminate(self):
        hutspace.terminate(self.proc)

    def stop(self):
        self.terminate()
        shutil.rmtree(self.tmp, ignore_errors=True)


def admin(space, method, path, body=None):
    return hutspace.http(method, space.admin + path, body,
                         headers={"Authorization": f"Bearer {space.admin_token}"})[::2]


def run_scenario(name, voice_toml, policy, candidate, screenshots, results):
    conf_dir = tempfile.mkdtemp(prefix="hut-voice-")
    toml = os.path.join(conf_dir, "voice.toml")
    with open(toml, "w") as f:
        f.write(voice_toml + f"grace_seconds = {GRACE}\n")
    space = hutspace.Spaced(extra_plugins=[toml])
    space.start()
    try:
        room = "talk"
        status, body = admin(space, "POST", "/api/v1/rooms", {"room": room, "master": "mod", "members": ["ann"]})
        if status != 201:
            raise RuntimeError(f"create room: {status} {body}")
        cfg = {
            "name": name, "policy": policy, "room": room, "candidate": candidate,
            "mod": f"{space.public}/#token={space.mint('mod', 'Moderator Mo')}",
            "member": f"{space.public}/#token={space.mint('ann', 'Ann')}",
            "memberName": "Ann",
            "reconnectToken": space.mint("ann", "Ann"),
            "graceSeconds": GRACE,
        }
        if screenshots:
            cfg["screenshots"] = screenshots
        proc = subprocess.run(["node", os.path.join(HERE, "voice_browser.mjs"), json.dumps(cfg)],
                              cwd=SOURCE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=180)
        for line in proc.stdout.splitlines():
            print(line)
            if line.startswith("ok  "):
                results.append(True)
            elif line.startswith("FAIL"):
                results.append(False)
        if proc.returncode != 0 and not any(r is False for r in results):
            results.append(False)
            print(f"FAIL [{name}] node exited with {proc.returncode}")
        alive = space.alive()
        results.append(alive)
        print(f"{'ok  ' if alive else 'FAIL'} [{name}] spaced is still running")
        if not all(results):
            print(space.log())
    finally:
        space.stop()
        shutil.rmtree(conf_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--screenshots")
    args = ap.parse_args()
    hutspace.require_spaced()
    if not os.path.exists(os.path.join(hutspace.build_root(), "plugins", "voice.so")):
        skip("voice.so is not built")
    if not os.access(CHROMIUM, os.X_OK):
        skip(f"no Chromium at {CHROMIUM}")
    if not shutil.which("node"):
        skip("node is not installed")
    if not os.path.isdir(os.path.join(SOURCE_ROOT, "node_modules", "playwright-core")):
        skip("playwright-core is not installed (scripts/setup.sh runs npm ci)")
    if not os.access(TURNSERVER, os.X_OK):
        skip("turnserver (coturn) is not installed")
    if args.screenshots:
        os.makedirs(args.screenshots, exist_ok=True)

    results = []
    secret = secrets.token_hex(20)
    turn = Coturn(secret)
    try:
        turn.start()
        print(f"turnserver answers STUN on 127.0.0.1:{turn.port}")
        toml = (f'stun = ["stun:127.0.0.1:{turn.port}"]\n'
                f'turn = ["turn:127.0.0.1:{turn.port}?transport=udp"]\n'
                f'turn_secret = "{secret}"\n')
        before = len(results)
        run_scenario("relay", toml, "relay", "relay", args.screenshots, results)
        turn.terminate()  # its log is complete once it stopped
        log = turn.log_text()
        # The relay carried it: coturn logged an allocation for a user named
        # the way the plugin names them ("<expiry>:<user id>").
        ok = all(re.search(r"ALLOCATE processed, success", log) and
                 re.search(rf"username=<\d+:{u}>", log) for u in ("mod", "ann"))
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} [relay] coturn allocated relays for the users spaced issued credentials to")
        if not ok or not all(results[before:]):
            print(log[-4000:])
    except Exception as e:  # noqa: BLE001
        results.append(False)
        print(f"FAIL [relay] {e}")
    finally:
        turn.stop()

    try:
        run_scenario("host", "", "all", "host", None, results)
    except Exception as e:  # noqa: BLE001
        results.append(False)
        print(f"FAIL [host] {e}")

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
