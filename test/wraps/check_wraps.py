#!/usr/bin/env python3
"""The wrap files of subprojects/, checked offline: each parses as meson reads
it, names where its source comes from and the source's SHA-256, and every
fallback a meson.build of the project names has its wrap, which provides the
dependency and the variable the fallback asks for.

Usage: check_wraps.py SOURCE_ROOT. Prints "N passed, N failed".
"""
import configparser
import os
import re
import sys

HEX64 = re.compile(r"^[0-9a-f]{64}$")
# dependency('name', ... fallback: ['subproject', 'variable'] ...)
FALLBACK = re.compile(
    r"dependency\(\s*'([^']+)'[^)]*?fallback\s*:\s*\[\s*'([^']+)'\s*,\s*'([^']+)'\s*\]", re.S)


def read_wrap(path):
    cp = configparser.ConfigParser(interpolation=None)
    with open(path, encoding="utf-8") as f:
        cp.read_file(f, source=path)
    return cp


def wrap_problems(root, name, cp):
    out = []
    if not cp.has_section("wrap-file"):
        return [f"{name}.wrap has no [wrap-file] section"]
    w = cp["wrap-file"]
    for key in ("directory", "source_url", "source_filename", "source_hash"):
        if not w.get(key, "").strip():
            out.append(f"{name}.wrap: no {key}")
    url = w.get("source_url", "")
    if url and not url.startswith("https://"):
        out.append(f"{name}.wrap: source_url is not https: {url}")
    h = w.get("source_hash", "")
    if h and not HEX64.match(h):
        out.append(f"{name}.wrap: source_hash is not 64 hex digits: {h}")
    patch = w.get("patch_directory")
    if patch and not os.path.isfile(os.path.join(root, "subprojects", "packagefiles", patch, "meson.build")):
        out.append(f"{name}.wrap: patch_directory {patch} has no subprojects/packagefiles/{patch}/meson.build")
    for key in ("patch_hash",):
        if w.get(key) and not HEX64.match(w[key]):
            out.append(f"{name}.wrap: {key} is not 64 hex digits")
    if not cp.has_section("provide") or not cp["provide"]:
        out.append(f"{name}.wrap has no [provide] section")
    return out


def fallbacks(root):
    """(file, dependency, subproject, variable) for each fallback of the project's meson.build files."""
    found = []
    for dirpath, dirnames, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        top = rel.split(os.sep)[0]
        if top in ("build", "builddir", "subprojects", "node_modules", ".git", "var"):
            dirnames[:] = []
            continue
        if "meson.build" in files:
            path = os.path.join(dirpath, "meson.build")
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for m in FALLBACK.finditer(text):
                found.append((os.path.relpath(path, root), m.group(1), m.group(2), m.group(3)))
    return found


def main():
    root = sys.argv[1]
    sub = os.path.join(root, "subprojects")
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

    wraps = {}
    for name in sorted(os.listdir(sub)) if os.path.isdir(sub) else []:
        if not name.endswith(".wrap"):
            continue
        stem = name[: -len(".wrap")]
        try:
            wraps[stem] = read_wrap(os.path.join(sub, name))
        except (configparser.Error, UnicodeDecodeError) as e:
            check(False, f"{name} parses", [str(e)])
            continue
        problems = wrap_problems(root, stem, wraps[stem])
        check(not problems, f"{name} names its source, its hash and what it provides", problems)
    check(len(wraps) > 0, "subprojects/ holds wrap files")

    uses = fallbacks(root)
    check(len(uses) > 0, "the project's meson.build files name fallbacks")
    for file, dep, proj, var in uses:
        problems = []
        cp = wraps.get(proj)
        if cp is None:
            problems.append(f"{file}: fallback {proj} has no subprojects/{proj}.wrap")
        else:
            provide = cp["provide"] if cp.has_section("provide") else {}
            if provide.get(dep) != var:
                problems.append(f"{file}: {proj}.wrap does not provide {dep} = {var} (it has {dict(provide)})")
            patch = cp["wrap-file"].get("patch_directory")
            if patch:
                pf = os.path.join(sub, "packagefiles", patch, "meson.build")
                text = open(pf, encoding="utf-8").read() if os.path.isfile(pf) else ""
                if not re.search(rf"^{re.escape(var)}\s*=\s*declare_dependency", text, re.M):
                    problems.append(f"packagefiles/{patch}/meson.build declares no {var}")
        check(not problems, f"the fallback of '{dep}' in {file} has its wrap", problems)

    # The checks catch a broken wrap: a hash that is not SHA-256 and a missing URL.
    bad = configparser.ConfigParser(interpolation=None)
    bad.read_string("[wrap-file]\ndirectory = x\nsource_filename = x.tar.gz\nsource_hash = 1234\n[provide]\nx = x_dep\n")
    found = wrap_problems(root, "broken", bad)
    check(any("no source_url" in p for p in found) and any("64 hex" in p for p in found),
          "a wrap without a URL and with a short hash is reported", found)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
