#!/usr/bin/env python3
"""The terminal in the browser (plugins/terminal), end to end: a real relayd, a
real spaced with the terminal plugin enabled in its terminal.toml, the real
`hut` binary, and headless Chromium (terminal_page.mjs).

A user signed in through the relay opens <hut-terminal>; the xterm buffer
shows hut's screen; what they type there (/join, then a message) reaches
another user's `hut tail` (hut::Client) as a message from them. hut runs as a
child of spaced with the token in its environment and not on its command line;
a second terminal for the same session is refused; a resize passes through;
closing the page ends the hut process (gone from /proc, not a zombie). In another
spaced, over the bus: a terminal with no input ends after the idle
timeout, and unloading the plugin ends its terminals; a program that writes
without end (yes(1) as the configured binary) gets no more than output_rate
bytes per second to the page. Then a spaced without terminal.toml: the plugin is not loaded (its reason says it is
not enabled), the welcome lists no terminal widget, its assets answer 404 and
its op answers not_found.

Ends with "N passed, N failed". Exits 77 when spaced, relayd, hut, the terminal
plugin, Chromium, node or playwright-core is missing.
"""
import asyncio
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
import pwrun  # noqa: E402
import websockets  # noqa: E402
from login_flow import PASSWORD, RelaySpaced, free_port, start_relay  # noqa: E402

ROOM = "terminal-room"
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else f': {detail}'}")
    return ok


def built(*parts):
    return os.path.join(hutspace.build_root(), *parts)


class TerminalSpaced(RelaySpaced):
    """spaced on a fixed port (hut must know the space's URL before it starts),
    its plugins folder a copy of links to the build's plugins, and
    terminal.toml written when `terminal` holds its settings."""

    def __init__(self, relay, space_id, terminal=None):
        super().__init__(relay, space_id)
        self.terminal = terminal
        self.fixed_port = free_port()

    def plugins_dir(self):
        folder = os.path.join(self.tmp, "plugins")
        os.makedirs(folder, exist_ok=True)
        for name in sorted(os.listdir(built("plugins"))):
            if name.endswith(".so") and not os.path.exists(os.path.join(folder, name)):
                os.symlink(built("plugins", name), os.path.join(folder, name))
        if self.terminal is not None:
            with open(os.path.join(folder, "terminal.toml"), "w") as f:
                for k, v in self.terminal.items():
                    f.write(f"{k} = {json.dumps(v)}\n")
        return folder

    def config_text(self):
        return super().config_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.fixed_port}"', 1)


def relay_token(relay, session, space_id):
    status, _, answer = relay.call("POST", f"/api/v1/spaces/{space_id}/tokens", session=session)
    if status != 200:
        raise RuntimeError(f"minting a relay token: {status} {answer}")
    return answer["token"]


async def bus(url, token, frames):
    """Sends frames after the welcome; returns the welcome and the answers."""
    async with websockets.connect(url, subprotocols=["hutopia.v1"]) as ws:
        await ws.send(json.dumps({"op": "hello", "token": token}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
        answers = []
        for f in frames:
            await ws.send(json.dumps(f))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if m.get("ref") == f.get("ref"):
                    answers.append(m)
                    break
        return welcome, answers


class Tail:
    """`hut tail ROOM --json` as another user, its lines collected by a thread."""

    def __init__(self, space, token):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
        env.update({"HUTOPIA_SPACE": space.public, "HUTOPIA_TOKEN": token, "HOME": space.tmp,
                    "XDG_CONFIG_HOME": space.tmp})
        self.proc = subprocess.Popen([built("tools", "hut", "hut"), "tail", ROOM, "--json"], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def enabled_space(relay, owner):
    space_id = relay.register_space(owner, name="Terminal")
    space = TerminalSpaced(relay, space_id, terminal={
        "enabled": True,
        "space_url": "",  # set below, once the port is known
        "hut": built("tools", "hut", "hut"),
        "idle_timeout": 600,
        "output_rate": 262144,
        "kill_grace_ms": 2000,
    })
    space.terminal["space_url"] = f"http://127.0.0.1:{space.fixed_port}"
    space.start()
    relay.set_space_url(owner, space_id, space.public)
    return space


def disabled_space_checks(relay, owner):
    space_id = relay.register_space(owner, name="No terminal")
    space = TerminalSpaced(relay, space_id, terminal=None)
    space.start()
    try:
        listed = {p.get("name"): p for p in space.plugins()}
        t = listed.get("terminal", {})
        check("without terminal.toml the plugin is not loaded, and says why",
              t.get("state") != "loaded" and "not enabled" in t.get("error", ""), t)
        status, _, _ = hutspace.http("GET", space.public + "/plugins/terminal/widget.js")
        check("a disabled terminal serves no widget script", status == 404, status)
        tess = relay.login("tess", PASSWORD)
        welcome, answers = asyncio.run(bus(space.bus_url, relay_token(relay, tess, space_id), [
            {"op": "widget", "ref": "t", "plugin": "terminal", "data": {"op": "open", "cols": 80, "rows": 24}}]))
        tags = [w.get("tag") for w in welcome.get("widgets", [])]
        check("a disabled terminal is not in the welcome's widgets", "hut-terminal" not in tags, tags)
        check("a disabled terminal's open answers not_found",
              answers[0].get("op") == "error" and answers[0].get("code") == "not_found", answers)
    finally:
        status = space.stop()
        check("the second spaced exits with 0 on SIGTERM", status == 0, status)


def hut_children(spaced_pid):
    """PIDs of spaced's children running hut, from /proc (every thread's children)."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{spaced_pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{spaced_pid}/task/{tid}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open(f"/proc/{k}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[0] == b"hut":
                        out.append(k)
            except OSError:
                pass
    return out


def wait_gone(pid, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.1)
    return False


async def open_terminal(url, token):
    """A bus session that opened a terminal; returns the socket once hut drew something."""
    ws = await websockets.connect(url, subprotocols=["hutopia.v1"])
    await ws.send(json.dumps({"op": "hello", "token": token}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 20))
    if welcome.get("op") != "welcome":
        raise RuntimeError(f"no welcome: {welcome}")
    await ws.send(json.dumps({"op": "widget", "ref": "o", "plugin": "terminal",
                              "data": {"op": "open", "cols": 80, "rows": 24}}))
    return ws


async def widget_events(ws, until, seconds):
    """The terminal's widget events until until(events) holds or the time is up."""
    events = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until(events):
        try:
            m = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, end - time.monotonic())))
        except asyncio.TimeoutError:
            break
        if m.get("op") == "widget" and m.get("plugin") == "terminal":
            events.append(m["data"])
    return events


async def idle_and_unload(space, tokens):
    # Idle: no input for idle_timeout (10 s) ends the terminal, with a notice.
    ws = await open_terminal(space.bus_url, tokens[0])
    try:
        first = await widget_events(ws, lambda e: any(x.get("op") == "output" for x in e), 30)
        pids = hut_children(space.proc.pid)
        check("a terminal opened over the bus runs one hut", len(pids) == 1 and first, (pids, first[:2]))
        start = time.monotonic()
        evs = await widget_events(ws, lambda e: any(x.get("op") == "exit" for x in e), 60)
        took = time.monotonic() - start
        notices = [x.get("text", "") for x in evs if x.get("op") == "notice"]
        check("with no input, the terminal ends after idle_timeout with a notice",
              any("idle" in n for n in notices) and any(x.get("op") == "exit" for x in evs) and took >= 5,
              (notices, took))
        check("the idle hut is gone (no process, no zombie)", bool(pids) and wait_gone(pids[0]), pids)
    finally:
        await ws.close()
    # Unloading the plugin ends its terminals.
    ws = await open_terminal(space.bus_url, tokens[1])
    try:
        await widget_events(ws, lambda e: any(x.get("op") == "output" for x in e), 30)
        pids = hut_children(space.proc.pid)
        status, _, _ = hutspace.http("DELETE", space.admin + "/api/v1/plugins/terminal",
                                     headers={"Authorization": f"Bearer {space.admin_token}"}, timeout=30)
        check("the admin unloads the terminal plugin", status == 204, status)
        check("unloading the plugin ends its hut (no process, no zombie)",
              len(pids) == 1 and wait_gone(pids[0]), pids)
        check("spaced is still running after the unload", space.proc.poll() is None, space.proc.poll())
    finally:
        await ws.close()


async def flood(space, token, rate, seconds):
    """A terminal whose program writes without end: the bytes that reach the
    session in `seconds`, and the notices."""
    import base64
    ws = await open_terminal(space.bus_url, token)
    got = 0
    notices = []
    try:
        await widget_events(ws, lambda e: any(x.get("op") == "output" for x in e), 30)
        kids = children(space.proc.pid)
        fds = sorted(os.listdir(f"/proc/{kids[0]}/fd"), key=int) if len(kids) == 1 else None
        check("the program inherits nothing from spaced but the terminal (fds 0, 1, 2)",
              fds == ["0", "1", "2"], (kids, fds))
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 1))
            except asyncio.TimeoutError:
                continue
            if m.get("op") == "widget" and m.get("plugin") == "terminal":
                d = m["data"]
                if d.get("op") == "output":
                    got += len(base64.b64decode(d["data"]))
                elif d.get("op") == "notice":
                    notices.append(d.get("text", ""))
        took = time.monotonic() - start
    finally:
        await ws.close()
    return got, took, notices


def flood_space_checks(relay, owner):
    """The output rate: a program that writes without end (yes(1), started
    the way hut is) gets no more than output_rate bytes per second through."""
    rate = 4096
    space_id = relay.register_space(owner, name="Flood")
    space = TerminalSpaced(relay, space_id, terminal={"enabled": True, "hut": "/usr/bin/yes",
                                                      "output_rate": rate, "kill_grace_ms": 1000})
    space.terminal["space_url"] = f"http://127.0.0.1:{space.fixed_port}"
    space.start()
    try:
        tess = relay.login("tess", PASSWORD)
        got, took, notices = asyncio.run(flood(space, relay_token(relay, tess, space_id), rate, 5))
        check("output over output_rate is held back", 0 < got <= rate * (took + 2), (got, took))
        check("the page is told once that output is held back",
              len([n for n in notices if "held back" in n]) == 1, notices)
        check("no program is left after the session closed",
              wait_gone_all(lambda: [p for p in children(space.proc.pid)]), children(space.proc.pid))
    finally:
        status = space.stop()
        check("the flood spaced exits with 0 on SIGTERM", status == 0, status)


def children(spaced_pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{spaced_pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{spaced_pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return out


def wait_gone_all(list_fn, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not list_fn():
            return True
        time.sleep(0.1)
    return False


def idle_space_checks(relay, owner):
    space_id = relay.register_space(owner, name="Idle terminal")
    space = TerminalSpaced(relay, space_id, terminal={"enabled": True, "hut": built("tools", "hut", "hut"),
                                                      "idle_timeout": 10, "kill_grace_ms": 1000})
    space.terminal["space_url"] = f"http://127.0.0.1:{space.fixed_port}"
    space.start()
    try:
        tess = relay.login("tess", PASSWORD)
        asyncio.run(idle_and_unload(space, [relay_token(relay, tess, space_id) for _ in range(2)]))
    finally:
        status = space.stop()
        check("the third spaced exits with 0 on SIGTERM", status == 0, status)


def main():
    hutspace.require_spaced()
    why = pwrun.missing()
    if not why and not os.access(built("tools", "hut", "hut"), os.X_OK):
        why = "hut is not built"
    if not why and not os.path.exists(built("plugins", "terminal.so")):
        why = "the terminal plugin is not built (node_modules/@xterm missing)"
    if why:
        print(f"skipped: {why}")
        return hutspace.SKIP
    relay = space = tail = None
    statuses = {}
    try:
        relay = start_relay()
        relay.register("owner", PASSWORD, name="Space Owner")
        owner = relay.login("owner", PASSWORD)
        relay.register("tess", PASSWORD, name="Tess Terminal")
        relay.register("otto", PASSWORD, name="Otto Other")
        space = enabled_space(relay, owner)
        tess = relay.login("tess", PASSWORD)
        otto = relay.login("otto", PASSWORD)
        # Otto makes a public room and follows it with hut tail.
        _, answers = asyncio.run(bus(space.bus_url, relay_token(relay, otto, space.space_id),
                                     [{"op": "create", "ref": "c", "room": ROOM}]))
        check("the other user creates the room", answers[0].get("op") == "ok", answers)
        tail = Tail(space, relay_token(relay, otto, space.space_id))
        cfg = {"space": space.public, "token": relay_token(relay, tess, space.space_id),
               "token2": relay_token(relay, tess, space.space_id),
               "spacedPid": space.proc.pid, "hut": os.path.realpath(built("tools", "hut", "hut")),
               "room": ROOM, "text": "hello from the browser terminal ✓"}
        RESULTS.extend(pwrun.run("terminal_page.mjs", cfg, 240))
        # What Tess typed in the browser reached Otto's hut tail.
        end = time.monotonic() + 20
        got = None
        while time.monotonic() < end and got is None:
            for line in list(tail.lines):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                msg = ev.get("message", ev)
                if isinstance(msg, dict) and msg.get("text") == cfg["text"]:
                    got = ev
            time.sleep(0.2)
        check("the message typed in the terminal reaches another user's hut tail", got is not None,
              tail.lines[-10:])
        frm = (got or {}).get("message", got or {}).get("from") or {}
        check("it comes from the browser's own user", frm.get("id") == "tess" or frm.get("name") == "Tess Terminal",
              got)
        tail.stop()
        tail = None
        disabled_space_checks(relay, owner)
        idle_space_checks(relay, owner)
        if os.access("/usr/bin/yes", os.X_OK):
            flood_space_checks(relay, owner)
    except Exception as e:  # noqa: BLE001
        check("setup or run", False, f"{type(e).__name__}: {e}")
    finally:
        if tail:
            tail.stop()
        if space:
            statuses["spaced"] = space.stop()
        if relay:
            statuses["relayd"] = relay.terminate()
            relay.cleanup()
    for name, status in statuses.items():
        check(f"{name} exits with 0 on SIGTERM", status == 0, status)
    passed = sum(1 for r in RESULTS if r)
    failed = len(RESULTS) - passed
    if failed and space:
        print("--- spaced output (last lines) ---")
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
