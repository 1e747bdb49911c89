"""Headless Chromium for the browser tests: the browser process with its own
profile, and a minimal DevTools protocol client over python3-websockets."""
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM = os.environ.get("HUT_CHROMIUM", "/usr/bin/chromium")
PAGE_TIMEOUT = 30.0


class Chromium:
    """A headless Chromium with its own profile folder; DevTools on a free port."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="hut-chromium-")
        self.proc = None
        self.ws_url = None
        self.output = []

    def start(self, timeout=45):
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--disable-dev-shm-usage", "--password-store=basic", "--use-mock-keychain",
                f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", "--window-size=1200,800", "about:blank"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, errors="replace",
                                     start_new_session=True)
        found = threading.Event()

        def reader():
            for line in self.proc.stderr:
                self.output.append(line.rstrip("\n"))
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m and not found.is_set():
                    self.ws_url = m.group(1)
                    found.set()

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.is_set() and time.monotonic() < deadline and self.proc.poll() is None:
            found.wait(0.1)
        if not found.is_set():
            raise RuntimeError("Chromium did not open DevTools:\n" + "\n".join(self.output[-40:]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            # Chromium's helpers share its process group (its own session).
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)


class DevTools:
    """A minimal DevTools protocol client: commands with ids over one socket."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.pending = {}
        self.console = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif msg.get("method") == "Runtime.consoleAPICalled":
                args = msg["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif msg.get("method") == "Runtime.exceptionThrown":
                d = msg["params"]["exceptionDetails"]
                self.console.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))

    async def call(self, method, params=None, session=None, timeout=20):
        i = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        answer = await asyncio.wait_for(fut, timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def new_context(self):
        """A fresh browser context: its own cookies and storage, like a private window."""
        return (await self.call("Target.createBrowserContext"))["browserContextId"]

    async def open_page(self, url, context=None):
        params = {"url": "about:blank"}
        if context:
            params["browserContextId"] = context
        target = await self.call("Target.createTarget", params)
        attached = await self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        session = attached["sessionId"]
        await self.call("Runtime.enable", {}, session)
        await self.call("Page.enable", {}, session)
        await self.call("Page.navigate", {"url": url}, session)
        return session

    async def evaluate(self, session, expression):
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True}, session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, session, expression, timeout=PAGE_TIMEOUT):
        """Polls a JS expression until it is truthy; returns its last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = await self.evaluate(session, expression)
            except (RuntimeError, asyncio.TimeoutError):
                value = None  # the page may be between documents
            if value:
                return value
            await asyncio.sleep(0.2)
        return value


# What the space page shows (docs/sdk.md, the page's element ids).
STATE_JS = """(() => {
  const t = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
  const shown = (id) => { const e = document.getElementById(id); return !!e && !e.hidden && e.offsetParent !== null; };
  return { status: t('status'), user: t('user-name'), space: t('space-name'), whoShown: shown('who'),
           signedOutShown: shown('signed-out'), hash: location.hash, href: location.href,
           login: (document.querySelector('#signed-out a[href="/login"]') || {}).href || null };
})()"""
