"""Runs a real relayd for the Python tests: a temporary configuration on port 0
and helpers for its HTTP API. Exits with 77 (meson's "skipped") when relayd is
not built."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutpg  # noqa: E402
import hutspace  # noqa: E402

ISSUER = "http://relay.test"

# HUT_RELAY_STORE=postgres: every Relayd without its own store_url keeps its
# data in a fresh database of one PostgreSQL server started for the test
# (hutpg), instead of <data_dir>/relay.db.
_pg = None


def pg_server():
    """The test's PostgreSQL server, started on first use (or the test
    skipped when PostgreSQL is not installed)."""
    global _pg
    if _pg is None:
        import atexit
        _pg = hutpg.started_or_skip()
        atexit.register(_pg.close)
    return _pg


def psql(url, sql):
    """The rows of `sql` on the database at `url`, as lists of text fields."""
    out = pg_server()._run("psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", url,
                           "-c", sql)
    if out.returncode != 0:
        raise RuntimeError("psql: " + out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines() if line]

# The test relays take many accounts and logins from 127.0.0.1: budgets far
# above what the tests use, unless a test asks for its own.
ROOMY_LIMITS = {"login_attempts_per_account": 1000, "login_attempts_per_address": 100000,
                "accounts_per_address": 100000, "tokens_per_user": 100000}


def relayd_path():
    return os.path.join(hutspace.build_root(), "daemons", "relayd", "relayd")


class Relayd:
    def __init__(self, session_ttl=None, token_ttl=None, tmp=None, listen="127.0.0.1:0", issuer=ISSUER,
                 limits=None, env=None, store_url=None):
        self.binary = relayd_path()
        if not os.access(self.binary, os.X_OK):
            print(f"skipped: relayd is not built ({self.binary})")
            sys.exit(hutspace.SKIP)
        self.tmp = tmp or tempfile.mkdtemp(prefix="hut-relayd-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.session_ttl = session_ttl
        self.token_ttl = token_ttl
        self.listen = listen
        self.issuer = issuer
        self.limits = dict(ROOMY_LIMITS if limits is None else limits)
        self.extra_env = dict(env or {})
        if store_url is None and os.environ.get("HUT_RELAY_STORE") == "postgres":
            store_url = pg_server().new_database()
        self.store_url = store_url  # [store] url; None: <data_dir>/relay.db
        self.admin_listen = "127.0.0.1:0"
        self.extra_args = []  # after --config, e.g. ["--log-format", "json"]
        self.admin_token = None
        self.admin_url = None
        self.proc = None
        self.url = None
        self.output = []

    @property
    def config_path(self):
        return os.path.join(self.tmp, "relayd.toml")

    def start(self):
        lines = ["[relay]", f'listen = "{self.listen}"', f'issuer = "{self.issuer}"', f'data_dir = "{self.data_dir}"']
        if self.session_ttl is not None:
            lines.append(f"session_ttl = {self.session_ttl}")
        if self.token_ttl is not None:
            lines.append(f"token_ttl = {self.token_ttl}")
        # The admin listener on a free port, so that relays of tests running at
        # the same time do not meet on the default 8799.
        lines += ["", "[admin]", f'listen = "{self.admin_listen}"']
        if self.admin_token:
            lines.append(f'token = "{self.admin_token}"')
        if self.store_url:
            lines += ["", "[store]", f'url = "{self.store_url}"']
        if self.limits:
            lines += ["", "[limits]"] + [f"{k} = {v}" for k, v in self.limits.items()]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
        env.update(self.extra_env)
        self.proc = subprocess.Popen([self.binary, "--config", self.config_path, *self.extra_args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, text=True,
                                     errors="replace")
        found = threading.Event()
        self.url = None
        self.admin_url = None

        def reader():
            for line in self.proc.stdout:
                self.output.append(line.rstrip("\n"))
                m = re.search(r"listening on (http://\S+)", line)
                if m and self.url is None:
                    self.url = m.group(1).rstrip("/")
                    found.set()
                m = re.search(r"admin listener on (http://\S+)", line)
                if m:
                    self.admin_url = m.group(1).rstrip("/")

        reading = threading.Thread(target=reader, daemon=True)
        reading.start()
        # Up to 20 s, less when relayd exits at start (its output then read
        # to the end for the message).
        deadline = time.monotonic() + 20
        while not found.wait(0.1) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                reading.join(5)
                break
        if not found.is_set():
            self.terminate()
            raise RuntimeError("relayd did not print 'listening on':\n" + "\n".join(self.output))
        hutspace.openapi_check.register(self.url, "relay")  # replaces what a gone process of this port had
        return self

    def terminate(self, timeout=15):
        return hutspace.terminate(self.proc, timeout)

    def cleanup(self):
        self.terminate()
        if self.url:
            hutspace.openapi_check.unregister(self.url)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, method, path, body=None, session=None, headers=None, raw=None):
        h = dict(headers or {})
        if session:
            h["Authorization"] = f"Bearer {session}"
        if raw is not None:
            import urllib.request
            import urllib.error
            req = urllib.request.Request(self.url + path, data=raw, method=method, headers=h)
            try:
                with urllib.request.urlopen(req, timeout=20) as resp:
                    answer = resp.status, dict(resp.headers), resp.read()
            except urllib.error.HTTPError as e:
                answer = e.code, dict(e.headers), e.read()
            hutspace.openapi_check.observe(method, self.url + path, *answer)
            return answer
        return hutspace.http(method, self.url + path, body, headers=h, timeout=30)

    def register(self, username, password="correct horse", name=None):
        body = {"username": username, "password": password}
        if name is not None:
            body["name"] = name
        return self.call("POST", "/api/v1/accounts", body)

    def login(self, username, password="correct horse"):
        status, _, answer = self.call("POST", "/api/v1/sessions", {"username": username, "password": password})
        if status != 201:
            raise RuntimeError(f"login {username}: {status} {answer!r}")
        return answer["session"]

    def register_space(self, session, name="Test space", url="http://127.0.0.1:9/"):
        """Registers a space; returns the id the relay assigned."""
        status, _, answer = self.call("POST", "/api/v1/spaces", {"name": name, "url": url}, session=session)
        if status != 201 or not isinstance(answer, dict) or not answer.get("id"):
            raise RuntimeError(f"register space: {status} {answer!r}")
        return answer["id"]

    def set_space_url(self, session, space_id, url):
        status, _, answer = self.call("PATCH", f"/api/v1/spaces/{space_id}", {"url": url}, session=session)
        if status != 200:
            raise RuntimeError(f"PATCH space: {status} {answer!r}")
        return answer

    def rotate_key(self):
        out = subprocess.run([self.binary, "rotate-key", "--config", self.config_path], capture_output=True,
                             text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("rotate-key: " + out.stderr)
        return out.stdout


def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()
