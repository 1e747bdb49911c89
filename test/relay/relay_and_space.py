"""examples/relay_and_space as a user runs it: one program with a relay and a
space on one loop. It starts, both answer /healthz (public and admin
listeners), the space admits a user with a token the relay signed (so it
trusts that relay and fetched its keys from it), and SIGTERM stops both with
exit status 0. Exits 77 when the example is not built."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402

PASSED = 0
FAILED = 0


def check(cond, what):
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print(f"FAIL: {what}", flush=True)


def request(url, method="GET", body=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def main():
    binary = os.path.join(hutspace.build_root(), "examples", "relay_and_space", "relay_and_space")
    if not os.access(binary, os.X_OK):
        print(f"skipped: the example is not built ({binary})")
        return hutspace.SKIP
    tmp = tempfile.mkdtemp(prefix="hut-relay-and-space-")
    proc = subprocess.Popen([binary, tmp, "0", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    urls = {}

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = re.match(r"^(relay|relay admin|space|space admin) listening on (\S+)$", line.strip())
            if m:
                urls[m.group(1)] = m.group(2)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.time() + 60
        while len(urls) < 4 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        check(len(urls) == 4, f"four listening lines: {lines}")
        if len(urls) < 4:
            return 1
        for name in ("relay admin", "space", "space admin"):
            status, body = request(urls[name] + "/healthz")
            check(status == 200, f"{name} /healthz: {status} {body}")
        status, body = request(urls["relay"] + "/.well-known/jwks.json")
        check(status == 200 and json.loads(body)["keys"], f"relay key set: {status} {body}")

        # The space names the relay and sends browsers to its login page.
        status, body = request(urls["space"] + "/.well-known/hutopia")
        check(status == 200 and json.loads(body).get("relay", "").startswith("http://127.0.0.1:"),
              f"the space names its relay: {status} {body}")
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(urls["space"] + "/login", timeout=30)
            location = ""
        except urllib.error.HTTPError as e:
            location = e.headers.get("Location", "")
        check(location.startswith(urls["relay"] + "/login?space=demo"), f"the space's /login: {location}")
        # The space fetched the relay's key set from the relay: its copy on
        # disk holds the relay's signing key.
        relay_kids = {k["kid"] for k in json.loads(request(urls["relay"] + "/.well-known/jwks.json")[1])["keys"]}
        cache = os.path.join(tmp, "space", "relay-jwks.json")
        cached = set()
        deadline = time.time() + 60
        while time.time() < deadline and not (relay_kids & cached):
            try:
                with open(cache) as f:
                    cached = {k["kid"] for k in json.load(f)["keys"]}
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        check(relay_kids and relay_kids <= cached, f"the space's copy of the relay keys: {cached} vs {relay_kids}")

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        reader.join(timeout=10)
        check(code == 0, f"exit status after SIGTERM: {code}; output: {lines}")
        check("relay stopped" in lines and "space stopped" in lines, f"both stopped: {lines}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    code = main()
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(code)
