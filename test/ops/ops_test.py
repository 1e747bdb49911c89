"""Running the daemons as an admin does: metrics that Prometheus accepts
(promtool), the Grafana dashboard against what the daemons serve, JSON logs
with request ids and without a single secret, a reload by SIGHUP that keeps
connected clients, and secrets from systemd credentials. Real spaced and
relayd processes on loopback; the bus client is python3-websockets."""
import asyncio
import json
import os
import re
import secrets
import shutil
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

import websockets  # noqa: E402

SOURCE = os.environ.get("HUT_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
DASHBOARD = os.path.join(SOURCE, "examples", "grafana", "hutopia.json")
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(cond, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def header(headers, name):
    """A response header by name, whatever its case."""
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def metrics(url, token):
    status, _, body = hutspace.http("GET", url + "/metrics", headers=bearer(token))
    check(status == 200, f"GET {url}/metrics: {status} {body!r}")
    return body.decode() if isinstance(body, bytes) else str(body)


def promtool_ok(text, what):
    promtool = shutil.which("promtool")
    check(promtool is not None, "promtool is installed (Debian's prometheus package, scripts/setup.sh)")
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          f"promtool check metrics ({what}): {r.returncode} {r.stdout.decode()} {r.stderr.decode()}")


def sample_names(text):
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def sample(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class RelaySpace(hutspace.Spaced):
    """A spaced trusting a relay, its id the one the relay assigned."""

    def __init__(self, relay_url, space_id, port, **kw):
        super().__init__(space_id=space_id, **kw)
        self.relay_url = relay_url
        self.fixed_port = port

    def config_text(self):
        text = super().config_text()
        text = text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.fixed_port}"', 1)
        return text.replace("[auth]\n", f'[auth]\nrelay_issuer = "{self.relay_url}"\n'
                                       f'relay_jwks = "{self.relay_url}/.well-known/jwks.json"\n')


async def hello(url, **frame):
    ws = await websockets.connect(url, subprotocols=["hutopia.v1"], open_timeout=20)
    await ws.send(json.dumps({"op": "hello", **frame}))
    msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
    check(msg.get("op") == "welcome", f"welcome after hello: {msg}")
    return ws, msg


async def request(ws, frame, timeout=20):
    """Sends a frame with a ref and returns the answer with that ref."""
    ref = secrets.token_hex(4)
    await ws.send(json.dumps({**frame, "ref": ref}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if msg.get("ref") == ref:
            return msg
    raise hutspace.Failure(f"no answer to {frame}")


def start_relay(json_logs=False, debug=False, admin_token=None, limits=None, env=None):
    port = free_port()
    relay = relayd_mod.Relayd(listen=f"127.0.0.1:{port}", issuer=f"http://127.0.0.1:{port}", limits=limits,
                              env=env)
    relay.admin_token = admin_token
    if json_logs:
        relay.extra_args = ["--log-format", "json"]
    if debug:
        relay.extra_env["HUTOPIA_LOG_LEVEL"] = "debug"
    return relay.start()


# ---------------------------------------------------------------- metrics

@case
def both_daemons_serve_metrics_promtool_accepts_with_the_histograms():
    relay_token = secrets.token_hex(32)
    relay = start_relay(admin_token=relay_token)
    try:
        check(relay.admin_url is not None, "relayd names its admin listener:\n" + "\n".join(relay.output))
        status, _, _ = hutspace.http("GET", relay.admin_url + "/healthz")
        check(status == 200, f"relay /healthz: {status}")
        status, _, _ = hutspace.http("GET", relay.admin_url + "/metrics")
        check(status == 401, f"relay /metrics without the token: {status}")
        status, _, _ = hutspace.http("GET", relay.admin_url + "/metrics", headers=bearer("x" * 64))
        check(status == 401, f"relay /metrics with a wrong token: {status}")
        relay.register("mia", "correct horse")
        relay.login("mia")
        status, _, _ = relay.call("POST", "/api/v1/sessions", {"username": "mia", "password": "wrong horse"})
        check(status == 401, f"a wrong password: {status}")
        text = metrics(relay.admin_url, relay_token)
        promtool_ok(text, "relayd")
        check(sample(text, "hutopia_relay_logins_total", '{result="ok"}') == 1, "one good login counted")
        check(sample(text, "hutopia_relay_logins_total", '{result="failed"}') == 1, "one failed login counted")
        check(sample(text, "hutopia_relay_signups_total") == 1, "one sign-up counted")
        check(sample(text, "hutopia_relay_hash_request_duration_seconds_count") == 3,
              "three requests hashed a password")
        check((sample(text, "hutopia_http_responses_total", '{code="4xx"}') or 0) >= 1, "the 401 counted")
    finally:
        relay.cleanup()

    with hutspace.Spaced() as space:
        async def traffic():
            ws, _ = await hello(space.bus_url, token=space.mint("ann", "Ann"))
            try:
                ok = await request(ws, {"op": "create", "room": "ops"})
                check(ok.get("op") == "ok", f"create: {ok}")
                for i in range(3):
                    ok = await request(ws, {"op": "post", "room": "ops", "text": f"hello {i}"})
                    check(ok.get("op") == "ok", f"post: {ok}")
            finally:
                await ws.close()
        asyncio.run(traffic())
        text = metrics(space.admin, space.admin_token)
        promtool_ok(text, "spaced")
        for h in ["hutopia_room_post_duration_seconds", "hutopia_store_commit_duration_seconds",
                  "hutopia_event_fanout_duration_seconds"]:
            check(f"# TYPE {h} histogram" in text, f"{h} is a histogram")
            check(sample(text, h + "_bucket", '{le="+Inf"}') == sample(text, h + "_count"),
                  f"{h}: the +Inf bucket is the count")
        check(sample(text, "hutopia_room_post_duration_seconds_count") == 3, "three posts timed to their ok")
        check(sample(text, "hutopia_store_commit_duration_seconds_count") >= 1, "commits timed")
        check(sample(text, "hutopia_event_fanout_duration_seconds_count") >= 3, "fan-outs timed")


@case
def the_grafana_dashboard_queries_only_served_metrics():
    with open(DASHBOARD) as f:
        board = json.load(f)
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(board)
    check(len(exprs) >= 8, f"the dashboard has its panels ({len(exprs)} queries)")
    queried = set()
    for e in exprs:
        queried.update(re.findall(r"\bhutopia_[a-z0-9_]+", e))
    check(any(q.startswith("hutopia_relay_") for q in queried), "the dashboard shows the relay")

    token = secrets.token_hex(32)
    relay = start_relay(admin_token=token)
    try:
        served = sample_names(metrics(relay.admin_url, token))
        with hutspace.Spaced() as space:
            served |= sample_names(metrics(space.admin, space.admin_token))
    finally:
        relay.cleanup()
    missing = sorted(q for q in queried if q not in served)
    check(not missing, f"queried but served by neither daemon: {missing}")


# ---------------------------------------------------------------- logs

@case
def json_logs_carry_request_ids_and_no_secret():
    password = "pw-" + secrets.token_hex(16)
    relay_admin = secrets.token_hex(32)
    relay = start_relay(json_logs=True, debug=True, admin_token=relay_admin)
    space = None
    secrets_used = {"password": password, "relay admin token": relay_admin}
    request_ids = {"relayd": [], "spaced": []}
    try:
        status, headers, _ = relay.call("POST", "/api/v1/accounts", {"username": "lee", "password": password},
                                        headers={"X-Request-Id": "ops-signup-1"})
        check(status == 201, f"sign-up: {status}")
        check(header(headers, "X-Request-Id") == "ops-signup-1", f"the client's request id comes back: {headers}")
        request_ids["relayd"].append("ops-signup-1")
        status, headers, answer = relay.call("POST", "/api/v1/sessions", {"username": "lee", "password": password})
        check(status == 201, f"login: {status}")
        session = answer["session"]
        cookie = (header(headers, "Set-Cookie") or "").split(";")[0].split("=", 1)[-1]
        secrets_used["session"] = session
        if cookie:
            secrets_used["session cookie"] = cookie
        check(re.fullmatch(r"[0-9a-f]{32}", (header(headers, "X-Request-Id") or "")) is not None,
              f"a request id is made when the client sent none: {headers.get('X-Request-Id')}")
        request_ids["relayd"].append(header(headers, "X-Request-Id"))
        space_port = free_port()
        status, _, answer = relay.call("POST", "/api/v1/spaces",
                                       {"name": "Ops", "url": f"http://127.0.0.1:{space_port}"}, session=session)
        check(status == 201, f"register the space: {status} {answer}")
        space_id = answer["id"]
        status, headers, answer = relay.call("POST", f"/api/v1/spaces/{space_id}/tokens", {}, session=session)
        check(status == 200, f"relay token: {status} {answer}")
        secrets_used["relay token"] = answer["token"]
        request_ids["relayd"].append(header(headers, "X-Request-Id"))
        metrics(relay.admin_url, relay_admin)

        space = RelaySpace(relay.url, space_id, space_port, extra_env={"HUTOPIA_LOG_LEVEL": "debug"})
        space.extra_args = ["--log-format", "json"]
        space.start()
        secrets_used["space admin token"] = space.admin_token
        secrets_used["app secret"] = space.app_secret

        async def bus():
            ws, welcome = await hello(space.bus_url, token=secrets_used["relay token"])
            resume = welcome.get("resume")
            check(bool(resume), f"a resume credential: {welcome}")
            secrets_used["resume credential"] = resume
            loaded = space.plugins()
            loaded = loaded if isinstance(loaded, list) else loaded.get("plugins", [])
            check(any(p.get("name") == "chat" for p in loaded), f"the chat plugin is loaded: {loaded}")
            ok = await request(ws, {"op": "widget", "plugin": "chat", "data": {"action": "upload_ticket"}})
            ticket = (ok.get("data") or {}).get("ticket")
            check(bool(ticket), f"an upload ticket: {ok}")
            await ws.close()
            ws, welcome = await hello(space.bus_url, resume=resume)
            secrets_used["second resume credential"] = welcome["resume"]
            await ws.close()
            return ticket
        ticket = asyncio.run(bus())
        secrets_used["upload ticket"] = ticket
        status, headers, _ = hutspace.http("POST", space.public + "/api/chat/files", None,
                                           headers={**bearer(ticket), "Content-Type": "text/plain",
                                                    "X-Request-Id": "ops-upload-1"})
        check(header(headers, "X-Request-Id") == "ops-upload-1", f"the upload's request id: {status} {headers}")
        request_ids["spaced"].append("ops-upload-1")
        status, headers, answer = hutspace.http("POST", space.admin + "/api/v1/tokens", {"user": "bot"},
                                                headers=bearer(space.admin_token))
        check(status == 200, f"an app token: {status}")
        secrets_used["app token"] = answer["token"]
        request_ids["spaced"].append(header(headers, "X-Request-Id"))
        status, headers, _ = hutspace.http("GET", space.admin + "/api/v1/plugins",
                                           headers={**bearer(space.admin_token), "X-Request-Id": "ops-admin-1"})
        check(status == 200 and header(headers, "X-Request-Id") == "ops-admin-1", f"plugins: {status} {headers}")
        request_ids["spaced"].append("ops-admin-1")
        # A line another part writes while it handles the request names it too.
        status, headers, _ = hutspace.http("POST", space.admin + "/api/v1/plugins/echo/reload", None,
                                           headers={**bearer(space.admin_token), "X-Request-Id": "ops-reload-1"})
        check(status == 200, f"reload the echo plugin: {status}")
        status, headers, _ = hutspace.http("GET", space.public + "/.well-known/hutopia")
        request_ids["spaced"].append(header(headers, "X-Request-Id"))
    finally:
        codes = {"spaced": space.terminate() if space else 0, "relayd": relay.terminate()}
    check(codes == {"spaced": 0, "relayd": 0}, f"both daemons exit cleanly: {codes}")
    logs = {"relayd": list(relay.output), "spaced": list(space.output if space else [])}
    relay.cleanup()
    if space:
        shutil.rmtree(space.tmp, ignore_errors=True)
    for daemon, lines in logs.items():
        records = []
        for line in lines:
            if line.startswith("listening on ") or line.startswith("admin listener on "):
                continue  # the URLs on stdout, for scripts
            try:
                rec = json.loads(line)
            except ValueError:
                raise hutspace.Failure(f"{daemon}: a log line that is not JSON: {line!r}")
            check(isinstance(rec, dict) and {"time", "level", "msg", "fields"} <= rec.keys(),
                  f"{daemon}: a record without time, level, msg and fields: {line!r}")
            records.append(rec)
        check(len(records) >= 5, f"{daemon} logged: {len(records)} records")
        text = "\n".join(lines)
        for what, value in secrets_used.items():
            check(value not in text, f"{daemon} logged the {what}")
        for rid in request_ids[daemon]:
            mine = [r for r in records if r["fields"].get("request_id") == rid]
            check(mine, f"{daemon}: no log line has request id {rid}")
        if daemon == "spaced":
            reloaded = [r for r in records if r["msg"] == "reloaded echo"]
            check(len(reloaded) == 1 and reloaded[0]["fields"].get("request_id") == "ops-reload-1",
                  f"the plugin runtime's line names the reload's request: {reloaded}")
    check(len(secrets_used) >= 9, f"the scenario used its secrets: {sorted(secrets_used)}")


# ---------------------------------------------------------------- reload

@case
def sighup_applies_a_new_limit_and_keeps_a_connected_client():
    space = hutspace.Spaced(limits={"max_body": 100000})
    space.start()
    try:
        async def scenario():
            ws, _ = await hello(space.bus_url, token=space.mint("kim", "Kim"))
            body = b"x" * 5000
            before = _post_raw(space.public + "/api/echo/anything", body)
            check(before != 413, f"5000 bytes under max_body 100000: {before}")
            space.limits["max_body"] = 1000
            with open(os.path.join(space.tmp, "spaced.toml"), "w") as f:
                f.write(space.config_text())
            space.proc.send_signal(signal.SIGHUP)
            check(wait_until(lambda: "configuration reloaded" in space.log() and "limits.max_body" in space.log()),
                  "spaced logs the reload and the key it applied:\n" + space.log())
            after = _post_raw(space.public + "/api/echo/anything", body)
            check(after == 413, f"5000 bytes over the new max_body 1000: {after}")
            pong = await request(ws, {"op": "ping"})
            check(pong.get("op") == "ok", f"the client connected before the reload still gets answers: {pong}")
            await ws.close()
        asyncio.run(scenario())
        # A key a reload cannot change is named, and the space goes on.
        with open(os.path.join(space.tmp, "spaced.toml")) as f:
            text = f.read()
        with open(os.path.join(space.tmp, "spaced.toml"), "w") as f:
            f.write(text.replace(f'name = "{hutspace.SPACE_NAME}"', 'name = "Renamed"'))
        space.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: "space.name" in space.log() and "restart" in space.log()),
              "a key that needs a restart is named:\n" + space.log())
        # A broken file is refused and the running configuration stays.
        with open(os.path.join(space.tmp, "spaced.toml"), "w") as f:
            f.write(text + "\n[limits]\nmax_body = \"many\"\n")
        space.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: "reload refused" in space.log()), "a broken file is refused:\n" + space.log())
        check(space.alive(), "spaced still runs")
        check(_post_raw(space.public + "/api/echo/anything", b"x" * 5000) == 413, "the last good limit stays")
    finally:
        space.stop()

    relay = start_relay(limits=dict(relayd_mod.ROOMY_LIMITS, accounts_per_address=20))
    try:
        check(relay.register("one")[0] == 201, "a first account")
        with open(relay.config_path) as f:
            text = f.read()
        with open(relay.config_path, "w") as f:
            f.write(re.sub(r"accounts_per_address = \d+", "accounts_per_address = 1", text))
        relay.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: any("limits.accounts_per_address" in line for line in relay.output)),
              "relayd logs the key it applied:\n" + "\n".join(relay.output))
        status, headers, _ = relay.register("two")
        check(status == 429, f"the new budget of one account applies: {status}")
        check(relay.proc.poll() is None, "relayd still runs")
    finally:
        relay.cleanup()


@case
def sighup_reloads_a_replaced_plugin_and_loads_a_new_one():
    built = os.path.join(hutspace.build_root(), "plugins")
    space = hutspace.Spaced()
    folder = os.path.join(space.tmp, "plugins")
    os.makedirs(folder)
    shutil.copy(os.path.join(built, "echo.so"), folder)
    space.plugins_dir = lambda: folder  # echo alone at the start
    space.start()

    def states():
        answer = space.plugins()
        answer = answer if isinstance(answer, list) else answer.get("plugins", [])
        return {p["name"]: p["state"] for p in answer}
    try:
        check(states() == {"echo": "loaded"}, f"echo alone at the start: {states()}")
        # An admin installs a new build of echo (a new file at its path) and a new plugin.
        shutil.copy(os.path.join(built, "echo.so"), os.path.join(folder, "echo.so.new"))
        os.replace(os.path.join(folder, "echo.so.new"), os.path.join(folder, "echo.so"))
        shutil.copy(os.path.join(built, "counter.so"), folder)
        space.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: "plugin counter loaded" in space.log()),
              "the reload names the plugin it loaded:\n" + space.log())
        check("plugin echo reloaded" in space.log(), "the replaced plugin is reloaded:\n" + space.log())
        check(states() == {"echo": "loaded", "counter": "loaded"}, f"both run: {states()}")
        async def ask_echo():
            ws, _ = await hello(space.bus_url, token=space.mint("kim", "Kim"))
            answer = await request(ws, {"op": "widget", "plugin": "echo", "data": {"n": 1}})
            await ws.close()
            return answer
        answer = asyncio.run(ask_echo())
        check(answer.get("op") == "ok" and answer.get("data") == {"n": 1}, f"the reloaded echo answers: {answer}")
        # A reload with nothing changed touches no plugin.
        before = space.log().count("reloaded")
        space.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: space.log().count("configuration reloaded") >= 2), "a second reload")
        check(space.log().count("echo reloaded") == 1 and "counter reloaded" not in space.log(),
              f"an unchanged plugin stays as it is ({before}):\n" + space.log())
    finally:
        space.stop()


def _post_raw(url, body):
    import urllib.request
    import urllib.error
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (ConnectionError, urllib.error.URLError):
        return None


# ---------------------------------------------------------------- credentials

class CredentialSpace(hutspace.Spaced):
    """A spaced whose admin token is not in its file but a systemd credential."""

    def config_text(self):
        return self.config_text_without_token()

    def config_text_without_token(self):
        text = super().config_text()
        return text.replace(f'token = "{self.admin_token}"\n', "")


@case
def admin_tokens_come_from_the_credentials_directory():
    creds = tempfile.mkdtemp(prefix="hut-creds-")
    try:
        space_token = secrets.token_hex(32)
        relay_token = secrets.token_hex(32)
        with open(os.path.join(creds, "admin_token"), "w") as f:
            f.write(space_token + "\n")
        space = CredentialSpace(extra_env={"CREDENTIALS_DIRECTORY": creds})
        space.admin_token = space_token  # what the probe in start() uses
        space.start()
        try:
            with open(os.path.join(space.tmp, "spaced.toml")) as f:
                check(space_token not in f.read(), "the token is not in the file")
            status, _, _ = hutspace.http("GET", space.admin + "/api/v1/plugins", headers=bearer(space_token))
            check(status == 200, f"the credential's token opens the management API: {status}")
        finally:
            space.stop()
        with open(os.path.join(creds, "admin_token"), "w") as f:
            f.write(relay_token)
        relay = start_relay(env={"CREDENTIALS_DIRECTORY": creds})
        try:
            status, _, _ = hutspace.http("GET", relay.admin_url + "/metrics", headers=bearer(relay_token))
            check(status == 200, f"the credential's token opens the relay's /metrics: {status}")
            status, _, _ = hutspace.http("GET", relay.admin_url + "/metrics", headers=bearer(space_token))
            check(status == 401, f"another token does not: {status}")
        finally:
            relay.cleanup()
        # The environment wins over the credential.
        relay = start_relay(env={"CREDENTIALS_DIRECTORY": creds, "HUTOPIA_ADMIN_TOKEN": space_token})
        try:
            status, _, _ = hutspace.http("GET", relay.admin_url + "/metrics", headers=bearer(space_token))
            check(status == 200, f"HUTOPIA_ADMIN_TOKEN wins over the credential: {status}")
        finally:
            relay.cleanup()
    finally:
        shutil.rmtree(creds, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(hutspace.run_cases(CASES))
