"""Runs a Playwright script (node, playwright-core with Debian's Chromium) for
the browser tests: the script gets its configuration as JSON in HUT_BROWSER,
prints one line per check and ends with "N passed, N failed"."""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CHROMIUM = os.environ.get("HUT_CHROMIUM", "/usr/bin/chromium")


def missing():
    """Why the browser tests cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (Debian package chromium)"
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")):
        return "playwright-core is not installed (scripts/setup.sh runs npm ci)"
    return None


def run(script, cfg, timeout):
    """Runs test/browser/<script> with cfg; returns a list of booleans, one per check."""
    env = dict(os.environ, HUT_BROWSER=json.dumps(dict(cfg, chromium=CHROMIUM)))
    try:
        done = subprocess.run([shutil.which("node"), "--no-warnings", os.path.join(HERE, script)], cwd=ROOT,
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        out = done.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += f"\nFAIL {script} finished within {timeout} s"
    results = []
    counted = False
    for line in out.splitlines():
        if line.endswith(" failed") and " passed, " in line:
            p, f = line.split(" passed, ")
            results += [True] * int(p) + [False] * int(f.split()[0])
            counted = True
            continue
        print(line)
    if not counted:
        print(f"FAIL {script} printed its counts")
        results.append(False)
    return results
