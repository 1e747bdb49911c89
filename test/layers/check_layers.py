#!/usr/bin/env python3
"""The layers of libhutopia: every #include of a part names its own part, a
part below it along the arrows of libhutopia/meson.build (hut_layers), or a
public header such a part owns; and docs/architecture.md draws the same arrows.

Usage: check_layers.py SOURCE_ROOT PART=USED,USED ... (one per part, from meson).
Prints one line per failure and "N passed, N failed".
"""
import os
import re
import sys
import tempfile

# Who owns each public header of include/hutopia/.
PUBLIC = {
    "status.h": "util",
    "export.h": "util",
    "log.h": "util",
    "version.h": "util",
    "plugin.h": "util",
    "plugin.hpp": "util",
    "plugin_assets.h": "util",
    "token.h": "token",
    "config.h": "config",
    "space.h": "space",
    "client.h": "client",
    "relay.h": "relay",
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
SOURCE_EXT = (".h", ".hpp", ".c", ".cc", ".cpp")


def parse_layers(args):
    layers = {}
    for arg in args:
        part, _, used = arg.partition("=")
        layers[part] = [u for u in used.split(",") if u]
    return layers


def closure(layers):
    """Each part's allowed parts: itself and everything below it along the arrows."""
    allowed = {}

    def reach(part, seen):
        for used in layers.get(part, []):
            if used not in seen:
                seen.add(used)
                reach(used, seen)
        return seen

    for part in layers:
        allowed[part] = reach(part, {part})
    return allowed


def scan(lib_root, layers):
    """The wrong-way includes under lib_root: a list of messages."""
    allowed = closure(layers)
    problems = []
    for entry in sorted(os.listdir(lib_root)):
        path = os.path.join(lib_root, entry)
        if os.path.isdir(path) and entry not in layers:
            problems.append(f"libhutopia/{entry}/ is no part of hut_layers in libhutopia/meson.build")
    for dirpath, _, files in os.walk(lib_root):
        rel_dir = os.path.relpath(dirpath, lib_root)
        part = "util" if rel_dir == "." else rel_dir.split(os.sep)[0]
        if part not in layers:
            continue
        for name in sorted(files):
            if not name.endswith(SOURCE_EXT):
                continue
            file = os.path.join(dirpath, name)
            rel = os.path.relpath(file, os.path.dirname(lib_root))
            with open(file, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                target = m.group(2)
                head = target.split("/")[0]
                if target.startswith("hutopia/"):
                    owner = PUBLIC.get(target[len("hutopia/"):])
                    if owner is None:
                        problems.append(f"{rel}: {target} belongs to no part: add it to PUBLIC in {__file__}")
                        continue
                elif "/" in target and os.path.isdir(os.path.join(lib_root, head)):
                    owner = head
                else:
                    continue  # a system or third-party header
                if owner not in allowed[part]:
                    problems.append(f"{rel}: {part} includes {target} of {owner}, which is not below it")
    return problems


def doc_arrows(doc_path):
    """The arrows drawn in docs/architecture.md's Layers section."""
    with open(doc_path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## Layers\n(.*?)^## ", text, re.M | re.S)
    if not m:
        return None
    arrows = {}
    for line in m.group(1).splitlines():
        a = re.match(r"^\s+([a-z]+)\s+─►\s*(.*)$", line)
        if a:
            arrows[a.group(1)] = sorted(u.strip() for u in a.group(2).split(",") if u.strip())
    return arrows


def main():
    root = sys.argv[1]
    layers = parse_layers(sys.argv[2:])
    passed = failed = 0

    def check(ok, what, details=()):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL: {what}")
            for d in details:
                print(f"  {d}")

    # The table itself: every arrow points to a part listed before it.
    seen, order_problems = set(), []
    for part, used in layers.items():
        order_problems += [f"{part} uses {u}, which is not listed before it" for u in used if u not in seen]
        seen.add(part)
    check(layers and not order_problems, "hut_layers lists parts bottom first", order_problems)

    problems = scan(os.path.join(root, "libhutopia"), layers)
    check(not problems, "every #include of libhutopia/ runs down the layers", problems)

    drawn = doc_arrows(os.path.join(root, "docs", "architecture.md"))
    built = {p: sorted(u) for p, u in layers.items()}
    diff = []
    if drawn is None:
        diff.append("docs/architecture.md has no ## Layers section")
    else:
        for p in sorted(set(drawn) | set(built)):
            if drawn.get(p) != built.get(p):
                diff.append(f"{p}: drawn {drawn.get(p)}, built {built.get(p)}")
    check(not diff, "docs/architecture.md draws the arrows of the build", diff)

    # The check catches a wrong-way include: a copy of two parts where the
    # lower one includes the upper one's header.
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "libhutopia")
        for part in ("util", "bus"):
            os.makedirs(os.path.join(lib, part))
        with open(os.path.join(lib, "bus", "bus.h"), "w") as f:
            f.write('#include "util/log.h"\n')
        with open(os.path.join(lib, "util", "log.cc"), "w") as f:
            f.write('#include <string>\n#include "bus/bus.h"\n')
        found = scan(lib, {"util": [], "bus": ["util"]})
        check(len(found) == 1 and "util includes bus/bus.h" in found[0], "a wrong-way include is reported", found)
        with open(os.path.join(lib, "util", "log.cc"), "w") as f:
            f.write('#include <hutopia/space.h>\n')
        found = scan(lib, {"util": [], "bus": ["util"]})
        check(len(found) == 1 and "hutopia/space.h of space" in found[0],
              "a public header of a higher part is reported", found)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
