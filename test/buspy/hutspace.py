"""Runs a real spaced for the Python tests: a temporary configuration with both
listeners on port 0, the plugins built in the same build tree, an app secret,
and helpers to mint tokens (through the management API or with PyJWT).

Exits the test with 77 (meson's "skipped") when spaced is not built.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import jwt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import openapi_check  # noqa: E402

SKIP = 77
SPACE_ID = "test-space"
SPACE_NAME = "Test space"
APP_ISSUER = "hutopia-tests"


def build_root():
    root = os.environ.get("HUT_BUILD_ROOT")
    if not root:
        here = os.path.dirname(os.path.abspath(__file__))
        root = os.path.join(here, "..", "..", "build", "plain")
    return os.path.abspath(root)


def spaced_path():
    return os.path.join(build_root(), "daemons", "spaced", "spaced")


def require_spaced():
    path = spaced_path()
    if not os.access(path, os.X_OK):
        print(f"skipped: spaced is not built ({path} does not exist)")
        sys.exit(SKIP)
    return path


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers, parsed JSON or raw bytes)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, rh, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, dict(e.headers), e.read()
    # With HUT_OPENAPI_CHECK=1, answers of the management API and the relay
    # must fit docs/openapi/ (raises openapi_check.OpenApiMismatch).
    openapi_check.observe(method, url, status, rh, raw)
    try:
        return status, rh, json.loads(raw)
    except ValueError:
        return status, rh, raw


def terminate(proc, timeout=15):
    """Sends SIGTERM to a daemon started with subprocess and waits for it;
    returns its exit status, or None if it had to be killed (or never ran).

    SIGTERM is sent again every 2 s while the daemon runs: the daemons ignore
    every stopping signal after the first (daemons/common/serve.h), and under
    ThreadSanitizer a signal can stay deferred in a thread that is blocked
    (the sanitizer runs the handler only at that thread's next intercepted
    call), which a second signal gets past."""
    if not proc:
        return None
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.kill()
            proc.wait(5)
            return None
        proc.terminate()
        try:
            proc.wait(min(2.0, left))
        except subprocess.TimeoutExpired:
            pass
    return proc.returncode


class Spaced:
    """A spaced process with its own temporary folder. Use as a context manager."""

    def __init__(self, limits=None, extra_env=None, start_timeout=20, extra_plugins=(), space_id=None,
                 store_url=None, cluster=None, app_secret=None):
        self.binary = require_spaced()
        self.store_url = store_url  # None: an SQLite file in the data folder
        self.space_id = space_id or SPACE_ID  # a relay's tests pass the id the relay assigned
        self.tmp = tempfile.mkdtemp(prefix="hut-spaced-")
        self.admin_token = secrets.token_urlsafe(24)
        self.app_secret = app_secret or secrets.token_urlsafe(32)
        self.limits = dict(limits or {})
        self.cluster = dict(cluster or {})  # the [cluster] keys, as TOML values
        self.extra_env = dict(extra_env or {})
        self.start_timeout = start_timeout
        self.extra_plugins = [p for p in extra_plugins if os.path.exists(p)]
        self.extra_args = []  # after --config, e.g. ["--log-format", "json"]
        self.proc = None
        self.public = None  # "http://127.0.0.1:PORT"
        self.admin = None
        self.output = []  # lines of stdout and stderr
        self._lines_lock = threading.Lock()

    # --- process ---

    def plugins_dir(self):
        """The build's plugins folder; with extra plugins, a folder of links to them all."""
        built = os.path.join(build_root(), "plugins")
        if not self.extra_plugins:
            return built
        folder = os.path.join(self.tmp, "plugins")
        os.makedirs(folder, exist_ok=True)
        for name in sorted(os.listdir(built)):
            if name.endswith((".so", ".toml")):
                os.symlink(os.path.join(built, name), os.path.join(folder, name))
        for path in self.extra_plugins:
            os.symlink(path, os.path.join(folder, os.path.basename(path)))
        return folder

    def config_text(self):
        data_dir = os.path.join(self.tmp, "data")
        os.makedirs(data_dir, exist_ok=True)
        lines = [
            "[space]",
            f'id = "{self.space_id}"',
            f'name = "{SPACE_NAME}"',
            'listen = "127.0.0.1:0"',
            f'data_dir = "{data_dir}"',
            f'plugins_dir = "{self.plugins_dir()}"',
            "",
            "[admin]",
            'listen = "127.0.0.1:0"',
            f'token = "{self.admin_token}"',
            "",
            "[auth]",
            f'app_issuer = "{APP_ISSUER}"',
            f'app_secret = "{self.app_secret}"',
            "",
            "[store]",
            f'url = "{self.store_url or "sqlite://" + os.path.join(data_dir, "space.db")}"',
        ]
        if self.limits:
            lines += ["", "[limits]"] + [f"{k} = {v}" for k, v in self.limits.items()]
        if self.cluster:
            lines += ["", "[cluster]"] + [f"{k} = {v}" for k, v in self.cluster.items()]
        return "\n".join(lines) + "\n"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        conf = os.path.join(self.tmp, "spaced.toml")
        with open(conf, "w") as f:
            f.write(self.config_text())
        # Variables HUTOPIA_* would win over the file: keep only the test's own.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
        env.update(self.extra_env)
        self.proc = subprocess.Popen([self.binary, "--config", conf, *self.extra_args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     cwd=self.tmp, text=True, errors="replace")
        urls = []
        found = threading.Event()

        def reader():
            for line in self.proc.stdout:
                with self._lines_lock:
                    self.output.append(line.rstrip("\n"))
                m = re.search(r"listening on (https?://[^\s]+)", line)
                if m:
                    urls.append(m.group(1).rstrip("/"))
                    if len(urls) >= 2:
                        found.set()

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while not found.is_set() and time.monotonic() < deadline and self.proc.poll() is None:
            found.wait(0.1)
        if not found.is_set():
            self.stop()
            raise RuntimeError("spaced did not print two 'listening on' lines:\n" + self.log())
        self._sort_listeners(urls[:2])

    def _sort_listeners(self, urls):
        # The admin listener answers a bearer call to /api/v1/plugins; the
        # public one serves the SDK. Probe rather than trust the order. A port
        # an earlier process of this test registered may be reused by either.
        for u in urls:
            openapi_check.unregister(u)
        for u in urls:
            status, _, _ = http("GET", u + "/api/v1/plugins",
                                headers={"Authorization": f"Bearer {self.admin_token}"})
            if status == 200:
                self.admin = u
            else:
                self.public = u
        if not self.admin or not self.public or self.admin == self.public:
            raise RuntimeError(f"cannot tell the listeners apart: {urls}\n" + self.log())
        openapi_check.register(self.admin, "space-admin")

    def terminate(self, timeout=15):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        return terminate(self.proc, timeout)

    def stop(self):
        status = self.terminate()
        if self.admin:
            openapi_check.unregister(self.admin)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return status

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        with self._lines_lock:
            return "\n".join(self.output[-200:])

    # --- addresses ---

    @property
    def bus_url(self):
        return "ws://" + self.public[len("http://"):] + "/bus"

    @property
    def port(self):
        return int(self.public.rsplit(":", 1)[1])

    # --- tokens ---

    def mint(self, user="u1", name="User One", ttl=None):
        """An app token from the management API (POST /api/v1/tokens)."""
        body = {"user": user, "name": name}
        if ttl is not None:
            body["ttl"] = ttl
        status, _, answer = http("POST", self.admin + "/api/v1/tokens", body,
                                 headers={"Authorization": f"Bearer {self.admin_token}"})
        if status != 200 or not isinstance(answer, dict) or "token" not in answer:
            raise RuntimeError(f"POST /api/v1/tokens: {status} {answer!r}")
        return answer["token"]

    def jwt(self, user="u1", name="User One", secret=None, **overrides):
        """An HS256 app token made here with PyJWT; overrides change or (with None) drop claims."""
        now = int(time.time())
        claims = {"iss": APP_ISSUER, "sub": user, "aud": self.space_id, "iat": now, "exp": now + 60,
                  "jti": secrets.token_hex(12), "name": name, "username": user}
        for k, v in overrides.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return jwt.encode(claims, secret or self.app_secret, algorithm="HS256",
                          headers={"typ": "JWT"})

    def plugins(self):
        status, _, answer = http("GET", self.admin + "/api/v1/plugins",
                                 headers={"Authorization": f"Bearer {self.admin_token}"})
        if status != 200:
            raise RuntimeError(f"GET /api/v1/plugins: {status} {answer!r}")
        return answer


# --- a small runner for the Python test files ---

class Failure(Exception):
    """A check that did not hold (as opposed to an error in the test itself)."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def run_cases(cases, setup=None, teardown=None):
    """Runs each function of `cases` in order, prints "ok"/"FAIL" per case and
    the closing "N passed, N failed" line; returns the process exit code."""
    import traceback
    passed = failed = 0
    if setup:
        setup()
    try:
        for fn in cases:
            try:
                fn()
                passed += 1
                print(f"ok   {fn.__name__}", flush=True)
            except Exception as e:  # noqa: BLE001
                failed += 1
                print(f"FAIL {fn.__name__}: {e}", flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc()
    finally:
        if teardown:
            teardown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
