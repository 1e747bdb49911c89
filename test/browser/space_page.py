#!/usr/bin/env python3
"""The space page in a real browser: a real spaced, app tokens from the
management API, and headless Chromium driven by Playwright (space_page.mjs,
run with node).

Checks what a user sees: the status says connected, their name is shown, the
widget plugin's custom element is in the page and rendered, the token left the
address bar; and without a token, a "not signed in" state with a link to /login.

    space_page.py [--screenshot FILE]    (FILE: a PNG of the signed-in page)

Ends with "N passed, N failed". Exits 77 when spaced, Chromium, node or
playwright-core is missing.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402
import pwrun  # noqa: E402


def widget_tags(space):
    """The custom element tags that the loaded plugins declare (management API)."""
    tags = []
    for p in space.plugins():
        for w in p.get("widgets") or []:
            tag = w.get("tag") if isinstance(w, dict) else w
            if isinstance(tag, str) and "-" in tag:
                tags.append(tag)
    return tags


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    hutspace.require_spaced()
    why = pwrun.missing()
    if why:
        print(f"skipped: {why}")
        return hutspace.SKIP
    # The first-party plugins, and the test plugin `events` (notify, widget events).
    space = hutspace.Spaced(extra_plugins=[os.path.join(hutspace.build_root(), "test", "plugins", "events.so")])
    results = []
    try:
        space.start()
        cfg = {
            "space": space.public, "spaceName": hutspace.SPACE_NAME, "tags": widget_tags(space),
            "plugins": [p.get("name") for p in space.plugins()], "screenshot": args.screenshot,
            "tokens": {"pat": space.mint("pat", "Pat Example"), "sam": space.mint("sam", "Sam"),
                       "robin": [space.mint("robin", "Robin") for _ in range(3)]},
        }
        results = pwrun.run("space_page.mjs", cfg, 180)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL setup or run: {type(e).__name__}: {e}")
        results.append(False)
    finally:
        status = space.stop()
    if results:
        ok = status == 0
        print(f"{'ok  ' if ok else 'FAIL'} spaced exits with 0 on SIGTERM{'' if ok else f' (status {status})'}")
        results.append(ok)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    if failed:
        print("--- spaced output (last lines) ---")
        print(space.log())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
