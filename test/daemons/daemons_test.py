"""The daemons as a service manager and an admin's scripts see them:
`check-config` exit codes and messages, readiness and stopping through the
systemd notify socket (Type=notify), and SIGHUP. Real spaced and relayd
processes; the notify socket is a real AF_UNIX datagram socket."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402
import relayd as relayd_mod  # noqa: E402

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def run(binary, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
    e.update(env or {})
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, env=e,
                          stdin=subprocess.DEVNULL)


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, field, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages:
                if field in m.split("\n"):
                    return m
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        raise hutspace.Failure(f"no {field} from the daemon; got {self.messages!r}")

    def close(self):
        self.sock.close()


@case
def spaced_check_config_valid_and_invalid():
    space = hutspace.Spaced()
    try:
        conf = write(space.tmp, "spaced.toml", space.config_text())
        r = run(space.binary, "check-config", "--config", conf)
        check(r.returncode == 0, f"a valid file: exit {r.returncode}, {r.stderr}")
        check("valid" in r.stdout, f"a valid file says so: {r.stdout!r}")
        bad = write(space.tmp, "bad.toml", space.config_text().replace("[space]\n", "[space]\nlisen = 1\n"))
        r = run(space.binary, "check-config", "--config", bad)
        check(r.returncode == 1, f"an unknown key: exit {r.returncode}")
        check("bad.toml:2" in r.stderr and "lisen" in r.stderr, f"file, line and key named: {r.stderr!r}")
        r = run(space.binary, "check-config", "--config", conf, env={"HUTOPIA_SPACE_LISTEN": "no-port"})
        check(r.returncode == 1 and "listen" in r.stderr, f"a bad override: exit {r.returncode}, {r.stderr!r}")
        r = run(space.binary, "check-config", "--config", os.path.join(space.tmp, "missing.toml"))
        check(r.returncode == 1, f"a missing file: exit {r.returncode}")
        r = run(space.binary, "check-config")
        check(r.returncode == 2, f"no --config is a usage error: exit {r.returncode}")
        check(not os.path.exists(os.path.join(space.tmp, "data", "space.db")),
              "check-config opened no store")
    finally:
        space.stop()


@case
def relayd_check_config_valid_and_invalid():
    tmp = tempfile.mkdtemp(prefix="hut-daemons-")
    binary = relayd_mod.relayd_path()
    good = write(tmp, "relayd.toml", f'[relay]\nlisten = "127.0.0.1:0"\ndata_dir = "{tmp}/data"\n')
    r = run(binary, "check-config", "--config", good)
    check(r.returncode == 0 and "valid" in r.stdout, f"a valid file: exit {r.returncode}, {r.stderr}")
    bad = write(tmp, "bad.toml", '[relay]\ntoken_ttl = "sixty"\n')
    r = run(binary, "check-config", "--config", bad)
    check(r.returncode == 1, f"a wrongly typed key: exit {r.returncode}")
    check("bad.toml:2" in r.stderr and "token_ttl" in r.stderr, f"file, line and key named: {r.stderr!r}")
    check(not os.path.exists(os.path.join(tmp, "data")), "check-config made no data dir")


@case
def spaced_notifies_ready_and_stopping():
    tmp = tempfile.mkdtemp(prefix="hut-notify-")
    notify = NotifySocket(tmp)
    space = hutspace.Spaced(extra_env={"NOTIFY_SOCKET": notify.path})
    try:
        space.start()
        ready = notify.wait_for("READY=1")
        check(space.public in ready and space.admin in ready, f"STATUS names the listeners: {ready!r}")
        # Ready means serving: the public listener answers right away.
        status, _, _ = hutspace.http("GET", space.public + "/healthz")
        check(status == 200, f"healthz after READY=1: {status}")
        space.proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        check(space.proc.wait(20) == 0, "clean exit after SIGTERM")
    finally:
        space.stop()
        notify.close()


@case
def sighup_does_not_stop_relayd():
    relay = relayd_mod.Relayd()
    try:
        relay.start()
        relay.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        check(relay.proc.poll() is None, "relayd still runs after SIGHUP")
        status, _ = relay.call("GET", "/.well-known/jwks.json")[:2]
        check(status == 200, f"and still serves: {status}")
    finally:
        relay.cleanup()


def admin_call(space, method, path, body=None):
    return hutspace.http(method, space.admin + path, body,
                         headers={"Authorization": f"Bearer {space.admin_token}"})


@case
def spaced_backup_while_running_and_restore_into_a_fresh_data_dir():
    space = hutspace.Spaced()
    fresh = hutspace.Spaced()
    out = os.path.join(tempfile.mkdtemp(prefix="hut-backup-"), "backup")
    try:
        space.start()
        conf = write(space.tmp, "spaced.toml", space.config_text())
        status, _, _ = admin_call(space, "POST", "/api/v1/rooms", {"room": "kept"})
        check(status == 201, f"room created: {status}")
        for i in range(20):
            status, _, _ = admin_call(space, "POST", "/api/v1/rooms/kept/messages", {"text": f"message {i}"})
            check(status == 201, f"post {i}: {status}")
        r = run(space.binary, "backup", "--config", conf, out)
        check(r.returncode == 0, f"backup while the space runs: exit {r.returncode}, {r.stderr}")
        check(oct(os.stat(out).st_mode & 0o777) == "0o700", "the backup folder is private")
        r = run(space.binary, "backup", "--config", conf, out)
        check(r.returncode == 1 and "exists" in r.stderr, f"a second backup into the same folder: {r.stderr!r}")
        r = run(space.binary, "restore", "--config", conf, out)
        check(r.returncode == 1 and "uses" in r.stderr, f"restore while the space runs is refused: {r.stderr!r}")
        check(space.alive(), "the running space is untouched")
        # A post after the backup is not in it.
        admin_call(space, "POST", "/api/v1/rooms/kept/messages", {"text": "after the backup"})

        fresh_conf = write(fresh.tmp, "spaced.toml", fresh.config_text())
        r = run(fresh.binary, "restore", "--config", fresh_conf, out)
        check(r.returncode == 0, f"restore into a fresh data dir: exit {r.returncode}, {r.stderr}")
        fresh.start()
        status, _, page = admin_call(fresh, "GET", "/api/v1/rooms/kept/messages?limit=50")
        check(status == 200, f"history after the restore: {status} {page!r}")
        texts = [m["text"] for m in page["messages"]]
        check(texts == [f"message {i}" for i in range(20)], f"the restored history, in order: {texts}")
        r = run(fresh.binary, "restore", "--config", fresh_conf, os.path.join(space.tmp, "nothing"))
        check(r.returncode == 1, "restoring a folder that is no backup fails")
    finally:
        space.stop()
        fresh.stop()


@case
def relayd_backup_and_restore_keep_accounts_and_keys():
    relay = relayd_mod.Relayd()
    out = os.path.join(tempfile.mkdtemp(prefix="hut-backup-"), "relay-backup")
    try:
        relay.start()
        status, _, _ = relay.register("keeper", "correct horse")
        check(status == 201, f"account made: {status}")
        _, _, jwks = relay.call("GET", "/.well-known/jwks.json")
        r = run(relay.binary, "backup", "--config", relay.config_path, out)
        check(r.returncode == 0, f"backup while relayd runs: exit {r.returncode}, {r.stderr}")
        r = run(relay.binary, "restore", "--config", relay.config_path, out)
        check(r.returncode == 1, "restore while relayd runs is refused")
    finally:
        relay.cleanup()
    fresh = relayd_mod.Relayd()
    try:
        # relayd.toml is written by start(); write it first for the restore.
        os.makedirs(fresh.tmp, exist_ok=True)
        write(fresh.tmp, "relayd.toml", f'[relay]\nlisten = "127.0.0.1:0"\nissuer = "{fresh.issuer}"\n'
                                        f'data_dir = "{fresh.data_dir}"\n')
        r = run(fresh.binary, "restore", "--config", fresh.config_path, out)
        check(r.returncode == 0, f"restore into a fresh data dir: exit {r.returncode}, {r.stderr}")
        fresh.start()
        session = fresh.login("keeper", "correct horse")
        check(bool(session), "the restored account logs in")
        _, _, jwks_after = fresh.call("GET", "/.well-known/jwks.json")
        check([k["kid"] for k in jwks_after["keys"]] == [k["kid"] for k in jwks["keys"]],
              "the restored relay publishes the same signing keys")
    finally:
        fresh.cleanup()


if __name__ == "__main__":
    sys.exit(hutspace.run_cases(CASES))
