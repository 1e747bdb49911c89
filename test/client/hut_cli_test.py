"""hut, the terminal client, as a user and a script see it (contract section 11),
against real relayd and spaced processes: discovery through /.well-known/hutopia,
`hut login` through the relay (session file 0600), tokens minted from that
session, post then history in another process, tail following posts of a web
client (a plain WebSocket), tail across a restart of spaced with no message lost
or doubled, and the exit codes."""
import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
from relayd import Relayd, wait_until  # noqa: E402

import websockets  # noqa: E402

PASSED = 0
FAILED = 0
CASES = []
PASSWORD = "correct horse battery"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def case(fn):
    CASES.append(fn)
    return fn


def hut_path():
    path = os.path.join(hutspace.build_root(), "tools", "hut", "hut")
    if not os.access(path, os.X_OK):
        print(f"skipped: hut is not built ({path})")
        sys.exit(hutspace.SKIP)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RelaySpace(hutspace.Spaced):
    """A spaced that trusts the test relay, on a port that survives restarts."""

    def __init__(self, relay_url, space_id):
        super().__init__()
        self.relay_url = relay_url
        self.space_id = space_id
        self.fixed_port = None

    def config_text(self):
        text = super().config_text()
        text = text.replace(f'id = "{hutspace.SPACE_ID}"', f'id = "{self.space_id}"')
        if self.fixed_port:
            text = text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.fixed_port}"', 1)
        return text.replace("[auth]\n", f'[auth]\nrelay_issuer = "{self.relay_url}"\n'
                                       f'relay_jwks = "{self.relay_url}/.well-known/jwks.json"\n')

    def restart(self):
        self.terminate()
        self.start()

    def admin_call(self, method, path, body=None):
        return hutspace.http(method, self.admin + path, body,
                             headers={"Authorization": f"Bearer {self.admin_token}"})


relay = None
space = None
HOMES = {}


def run_hut(args, user=None, token=None, stdin="", timeout=60, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
    if user:
        env["XDG_CONFIG_HOME"] = HOMES[user]
    env.update(env_extra or {})
    argv = [hut_path()]
    if space is not None and "--space" not in args:
        argv += ["--space", space.public]
    if token:
        argv += ["--token", token]
    return subprocess.run(argv + args, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def login(user):
    HOMES[user] = tempfile.mkdtemp(prefix="hut-home-")
    r = run_hut(["login", relay.url], user=user, stdin=f"{user}\n{PASSWORD}\n")
    check(r.returncode == 0, f"hut login {user}: {r.returncode} {r.stderr}")


class Tail:
    """hut tail --json in the background, its lines collected."""

    def __init__(self, room, user):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
        env["XDG_CONFIG_HOME"] = HOMES[user]
        self.proc = subprocess.Popen([hut_path(), "--space", space.public, "tail", room, "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self.err = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True).start()
        check(wait_until(lambda: any("following" in e for e in self.err), 30), f"tail did not start: {self.err}")

    @staticmethod
    def _read(stream, out):
        for line in stream:
            out.append(line.rstrip("\n"))

    def events(self):
        return [json.loads(x) for x in list(self.lines)]

    def messages(self):
        return [e for e in self.events() if e.get("op") == "message"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@case
def well_known_names_the_space_and_its_relay():
    status, headers, body = hutspace.http("GET", space.public + "/.well-known/hutopia")
    check(status == 200, f"status {status}")
    check(body == {"id": space.space_id, "name": hutspace.SPACE_NAME, "relay": relay.url}, f"body {body}")


@case
def login_keeps_the_session_0600_and_spaces_lists_the_directory():
    login("ann")
    path = os.path.join(HOMES["ann"], "hutopia", "session.json")
    check(os.path.exists(path), "no session file")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check(mode == 0o600, f"session file mode {oct(mode)}")
    saved = json.load(open(path))
    check(saved.get("relay") == relay.url and saved.get("session"), f"session file {saved}")
    r = run_hut(["spaces"], user="ann")
    check(r.returncode == 0 and space.public in r.stdout, f"spaces: {r.returncode} {r.stdout!r} {r.stderr}")
    # A wrong password: refused, nothing kept.
    HOMES["bad"] = tempfile.mkdtemp(prefix="hut-home-")
    r = run_hut(["login", relay.url], user="bad", stdin=f"ann\nwrong password\n")
    check(r.returncode == 3, f"wrong password: {r.returncode} {r.stderr}")
    check(not os.path.exists(os.path.join(HOMES["bad"], "hutopia", "session.json")), "a refused login kept a file")


@case
def post_then_history_in_another_process():
    login("bob")
    space.admin_call("POST", "/api/v1/rooms", {"room": "lobby"})
    r = run_hut(["post", "lobby", "hello from ann 世界 🎉"], user="ann")
    check(r.returncode == 0, f"post: {r.returncode} {r.stderr}")
    seq = int(r.stdout.strip())
    check(seq >= 1, f"seq {r.stdout!r}")
    r = run_hut(["history", "lobby", "--json"], user="bob")
    check(r.returncode == 0, f"history: {r.returncode} {r.stderr}")
    msgs = json.loads(r.stdout)
    check(isinstance(msgs, list) and msgs, f"history {r.stdout!r}")
    last = msgs[-1]
    check(last["seq"] == seq and last["text"] == "hello from ann 世界 🎉" and last["room"] == "lobby",
          f"last message {last}")
    check(last["from"]["name"] == "ann" or last["from"]["id"], f"from {last['from']}")
    for k in ("room", "seq", "ts", "from", "text"):
        check(k in last, f"message without {k}: {last}")
    r = run_hut(["history", "lobby"], user="bob")
    check(r.returncode == 0 and f"#{seq} " in r.stdout and "hello from ann" in r.stdout, f"plain: {r.stdout!r}")


@case
def history_limit_pages_back():
    space.admin_call("POST", "/api/v1/rooms", {"room": "many"})
    for i in range(260):
        space.admin_call("POST", "/api/v1/rooms/many/messages", {"text": f"m{i}"})
    r = run_hut(["history", "many", "--limit", "250", "--json"], user="bob")
    check(r.returncode == 0, f"history: {r.stderr}")
    msgs = json.loads(r.stdout)
    check([m["text"] for m in msgs] == [f"m{i}" for i in range(10, 260)], f"got {len(msgs)} messages")


async def web_post(room, text, token):
    async with websockets.connect(space.bus_url, subprotocols=["hutopia.v1"], ping_interval=None,
                                  open_timeout=10) as ws:
        await ws.send(json.dumps({"op": "hello", "token": token}))
        for _ in range(20):
            if json.loads(await asyncio.wait_for(ws.recv(), 10)).get("op") == "welcome":
                break
        await ws.send(json.dumps({"op": "join", "room": room, "ref": 1}))
        for _ in range(50):
            if json.loads(await asyncio.wait_for(ws.recv(), 10)).get("ref") == 1:
                break
        await ws.send(json.dumps({"op": "post", "room": room, "text": text, "ref": 2}))
        for _ in range(50):
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("ref") == 2:
                return m


@case
def tail_prints_a_post_of_a_web_client():
    t = Tail("lobby", "bob")
    try:
        answer = asyncio.run(web_post("lobby", "from the browser", space.mint("web1", "Web User")))
        check(answer.get("op") == "ok", f"web post {answer}")
        check(wait_until(lambda: any(m["text"] == "from the browser" for m in t.messages()), 30),
              f"tail did not print it: {t.lines} {t.err}")
        m = [m for m in t.messages() if m["text"] == "from the browser"][0]
        check(m["seq"] == answer["seq"] and m["from"]["id"] == "web1", f"event {m}")
    finally:
        code = t.stop()
    check(code == 0, f"tail exit code after SIGINT: {code}")


@case
def tail_across_a_restart_loses_and_doubles_nothing():
    space.admin_call("POST", "/api/v1/rooms", {"room": "restart"})
    t = Tail("restart", "bob")
    try:
        for i in range(5):
            space.admin_call("POST", "/api/v1/rooms/restart/messages", {"text": f"before {i}"})
        check(wait_until(lambda: len(t.messages()) == 5, 30), f"before: {t.lines}")
        space.restart()
        # Right after the restart, while the tail is still reconnecting: some
        # of these it can only get by asking for what it missed.
        for i in range(30):
            status, _, _ = space.admin_call("POST", "/api/v1/rooms/restart/messages", {"text": f"after {i}"})
            check(status == 201, f"post after restart: {status}")
        check(wait_until(lambda: len(t.messages()) >= 35, 60), f"after: {len(t.messages())} {t.err[-5:]}")
        time.sleep(1)
        texts = [m["text"] for m in t.messages()]
        want = [f"before {i}" for i in range(5)] + [f"after {i}" for i in range(30)]
        check(texts == want, f"messages across the restart: {texts}")
        seqs = [m["seq"] for m in t.messages()]
        check(seqs == sorted(set(seqs)), f"seqs {seqs}")
        check(t.proc.poll() is None, "tail ended")
        check(any("reconnecting" in e for e in t.err), f"the tail never lost its connection: {t.err}")
    finally:
        t.stop()


@case
def every_op_and_event_through_the_typed_calls():
    prog = os.path.join(hutspace.build_root(), "test", "client", "client_ops")
    r = subprocess.run([prog, space.public, space.mint("ops-a", "Ops A"), space.mint("ops-b", "Ops B")],
                       capture_output=True, text=True, timeout=180)
    print(r.stdout, end="")
    check(r.returncode == 0 and "0 failed" in r.stdout, f"client_ops: {r.returncode} {r.stdout[-2000:]} {r.stderr[-2000:]}")


def make_certs(folder):
    """A test CA and a server certificate for localhost signed by it; a second,
    unrelated CA."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    for ca in ("ca", "other-ca"):
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{folder}/{ca}.key", "-out", f"{folder}/{ca}.pem", "-days", "2",
             "-subj", f"/CN=Hutopia test {ca}")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{folder}/server.key", "-out", f"{folder}/server.csr", "-subj", "/CN=localhost")
    with open(f"{folder}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    ossl("x509", "-req", "-in", f"{folder}/server.csr", "-CA", f"{folder}/ca.pem", "-CAkey", f"{folder}/ca.key",
         "-CAcreateserial", "-out", f"{folder}/server.pem", "-days", "2", "-extfile", f"{folder}/ext.cnf")


class TlsSpace(hutspace.Spaced):
    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def _sort_listeners(self, urls):
        self.public = [u for u in urls if u.startswith("https://")][0]
        self.admin = [u for u in urls if u.startswith("http://")][0]

    def config_text(self):
        return super().config_text().replace(
            "[admin]\n", f'tls_cert = "{self.folder}/server.pem"\ntls_key = "{self.folder}/server.key"\n\n[admin]\n', 1)


@case
def tls_with_a_test_certificate_and_a_wrong_one_refused():
    folder = tempfile.mkdtemp(prefix="hut-tls-")
    make_certs(folder)
    tls = TlsSpace(folder)
    tls.start()
    try:
        check(tls.public.startswith("https://"), f"public URL {tls.public}")
        url = "https://localhost:" + str(tls.port)
        prog = os.path.join(hutspace.build_root(), "test", "client", "client_ops")
        r = subprocess.run([prog, url, tls.mint("ops-a", "Ops A"), tls.mint("ops-b", "Ops B"),
                            f"{folder}/ca.pem"], capture_output=True, text=True, timeout=180)
        print(r.stdout, end="")
        check(r.returncode == 0 and "0 failed" in r.stdout, f"client_ops over TLS: {r.stdout[-1500:]} {r.stderr[-1500:]}")
        tls.admin_call = lambda m, p, b=None: hutspace.http(m, tls.admin + p, b,
                                                            headers={"Authorization": f"Bearer {tls.admin_token}"})
        tls.admin_call("POST", "/api/v1/rooms", {"room": "lobby"})
        r = run_hut(["--space", url, "--ca-file", f"{folder}/ca.pem", "post", "lobby", "over tls"],
                    token=tls.mint("t1", "T"))
        check(r.returncode == 0 and r.stdout.strip().isdigit(), f"post over TLS: {r.returncode} {r.stderr}")
        # A certificate the trust anchors do not vouch for is refused.
        r = run_hut(["--space", url, "--ca-file", f"{folder}/other-ca.pem", "post", "lobby", "x"],
                    token=tls.mint("t1", "T"))
        check(r.returncode == 3, f"wrong CA: {r.returncode} {r.stderr}")
        r = run_hut(["--space", url, "post", "lobby", "x"], token=tls.mint("t1", "T"))
        check(r.returncode == 3, f"system trust store: {r.returncode} {r.stderr}")
        # The right CA but another name than the certificate's.
        r = run_hut(["--space", "https://127.0.0.1:" + str(tls.port), "--ca-file", f"{folder}/ca.pem",
                     "post", "lobby", "x"], token=tls.mint("t1", "T"))
        check(r.returncode == 3, f"wrong host name: {r.returncode} {r.stderr}")
        check(tls.alive(), "spaced died")
    finally:
        tls.stop()
        subprocess.run(["rm", "-rf", folder])


@case
def exit_codes():
    r = run_hut(["frobnicate"], user="ann")
    check(r.returncode == 2, f"unknown command: {r.returncode}")
    r = run_hut(["post", "lobby"], user="ann")
    check(r.returncode == 2, f"post without text: {r.returncode}")
    r = run_hut(["history", "lobby", "--limit", "zero"], user="ann")
    check(r.returncode == 2, f"bad limit: {r.returncode}")
    r = run_hut(["--help"])
    check(r.returncode == 0 and "post ROOM TEXT" in r.stdout, "help")
    r = run_hut(["post", "no-such-room", "x"], user="ann")
    check(r.returncode == 1 and r.stderr.startswith("not_found"), f"unknown room: {r.returncode} {r.stderr!r}")
    space.admin_call("POST", "/api/v1/rooms", {"room": "secret", "private": True})
    r = run_hut(["post", "secret", "x"], user="ann")
    check(r.returncode == 1 and r.stderr.startswith("forbidden"), f"private room: {r.returncode} {r.stderr!r}")
    r = run_hut(["post", "lobby", "x"], token="not-a-token")
    check(r.returncode == 3, f"bad token: {r.returncode} {r.stderr!r}")
    r = run_hut(["--space", f"http://127.0.0.1:{free_port()}", "post", "lobby", "x"], user="ann")
    check(r.returncode == 3, f"nothing listening: {r.returncode} {r.stderr!r}")
    HOMES["nobody"] = tempfile.mkdtemp(prefix="hut-home-")
    r = run_hut(["post", "lobby", "x"], user="nobody")
    check(r.returncode == 3 and "login" in r.stderr, f"no session: {r.returncode} {r.stderr!r}")
    # An app token from the environment works without a session.
    r = run_hut(["post", "lobby", "with an app token"], user="nobody",
                env_extra={"HUTOPIA_TOKEN": space.mint("app1", "App")})
    check(r.returncode == 0, f"HUTOPIA_TOKEN: {r.returncode} {r.stderr!r}")
    # logout forgets the session.
    r = run_hut(["logout"], user="bob")
    check(r.returncode == 0 and not os.path.exists(os.path.join(HOMES["bob"], "hutopia", "session.json")), "logout")
    r = run_hut(["post", "lobby", "x"], user="bob")
    check(r.returncode == 3, f"after logout: {r.returncode}")


def main():
    global relay, space, PASSED, FAILED
    hut_path()
    port = free_port()
    relay = Relayd(listen=f"127.0.0.1:{port}", issuer=f"http://127.0.0.1:{port}").start()
    try:
        for name in ("ann", "bob"):
            status, _, answer = relay.register(name, password=PASSWORD, name=name)
            if status != 201:
                raise RuntimeError(f"register {name}: {status} {answer}")
        owner = relay.login("ann", password=PASSWORD)
        space_port = free_port()
        status, _, answer = relay.call("POST", "/api/v1/spaces",
                                       {"name": hutspace.SPACE_NAME,
                                        "url": f"http://127.0.0.1:{space_port}"}, session=owner)
        if status != 201:
            raise RuntimeError(f"register space: {status} {answer}")
        space = RelaySpace(relay.url, answer["id"])
        space.fixed_port = space_port
        space.start()
        for fn in CASES:
            try:
                fn()
                PASSED += 1
                print(f"ok   {fn.__name__}")
            except Exception as e:  # noqa: BLE001
                FAILED += 1
                print(f"FAIL {fn.__name__}: {e}")
                if not isinstance(e, Failure):
                    traceback.print_exc()
                if space is not None:
                    print(space.log()[-3000:])
    finally:
        if space is not None:
            space.stop()
        relay.cleanup()
        for h in HOMES.values():
            subprocess.run(["rm", "-rf", h])
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
