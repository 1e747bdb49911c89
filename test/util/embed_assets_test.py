#!/usr/bin/env python3
"""scripts/embed_assets.py's includes: a page's <!--#include NAME key=value-->
line becomes the partial with its {{key}}s filled in, includes nest, a
missing key or partial stops the build with a message, run-time templates are
left alone, and the depfile names the partials. Also: the library's pages, as
embedded, start with the shared head."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "embed_assets.py")
sys.path.insert(0, os.path.join(ROOT, "test", "buspy"))
import hutspace  # noqa: E402


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def embed(site, partials, name="t"):
    """Runs the script; (exit code, stderr, {path: bytes}, depfile text)."""
    out = os.path.join(site, "..", "out.c")
    dep = out + ".d"
    args = [sys.executable, SCRIPT, "--name", name, "--dir", site, "--output", out, "--depfile", dep]
    for p in partials:
        args += ["--partials", p]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return r.returncode, r.stderr, {}, ""
    with open(out) as f:
        c = f.read()
    with open(dep) as f:
        deps = f.read()
    paths = re.search(r"_paths\[\d+\] = \{(.*?)\};", c).group(1)
    names = re.findall(r'"((?:[^"\\]|\\.)*)"', paths)
    files = {}
    for i, n in enumerate(names):
        body = re.search(rf"_d{i}\[\] = \{{(.*?)\}};", c).group(1)
        data = bytes(int(b) for b in body.split(",") if b)[:-1]  # the closing NUL
        files[n] = data
    return 0, "", files, deps


def test_include_fills_keys_and_nests():
    with tempfile.TemporaryDirectory() as d:
        write(f"{d}/parts/head.html", "<!doctype html>\n<title>{{title}}</title>\n")
        write(f"{d}/parts/top.html", '<!--#include head.html title="{{title}}"-->\n<nav{{current}}>x</nav>\n')
        write(f"{d}/site/a.html", "<!--#include top.html title=\"A page\" current=' aria-current=\"page\"'-->\n"
                                  "<main>{{{content}}}</main>\n")
        write(f"{d}/site/b.js", "// <!--#include top.html-->\n")
        rc, err, files, deps = embed(f"{d}/site", [f"{d}/parts"])
        hutspace.check(rc == 0, f"the embed step runs: {err}")
        hutspace.check(files["a.html"] == b'<!doctype html>\n<title>A page</title>\n<nav aria-current="page">x</nav>\n'
                       b"<main>{{{content}}}</main>\n", f"the page as embedded: {files['a.html']!r}")
        hutspace.check(files["b.js"] == b"// <!--#include top.html-->\n", "only .html files are expanded")
        hutspace.check("parts/head.html" in deps and "parts/top.html" in deps, f"the depfile names the partials: {deps}")


def test_a_missing_key_or_partial_stops_the_build():
    with tempfile.TemporaryDirectory() as d:
        write(f"{d}/parts/head.html", "<title>{{title}}</title>\n")
        write(f"{d}/site/a.html", "<!--#include head.html-->\n")
        rc, err, _, _ = embed(f"{d}/site", [f"{d}/parts"])
        hutspace.check(rc != 0 and "needs title=" in err, f"a missing key is an error: {rc} {err}")
        write(f"{d}/site/a.html", "<!--#include nothere.html-->\n")
        rc, err, _, _ = embed(f"{d}/site", [f"{d}/parts"])
        hutspace.check(rc != 0 and "nothere.html" in err, f"a missing partial is an error: {rc} {err}")


def test_without_partials_pages_are_copied_as_they_are():
    with tempfile.TemporaryDirectory() as d:
        write(f"{d}/site/a.html", "<!--#include head.html-->\n")
        rc, err, files, _ = embed(f"{d}/site", [])
        hutspace.check(rc == 0 and files["a.html"] == b"<!--#include head.html-->\n", f"{rc} {err}")


def test_the_library_pages_start_with_the_shared_head():
    lib = os.path.join(ROOT, "libhutopia")
    with open(os.path.join(lib, "util", "web", "head.html")) as f:
        head = f.read().replace("{{title}}", "")
    head_start = head.split("<title>")[0]
    cases = [
        ("relay/web", ["util/web", "relay/web_parts"], ["profile.html", "spaces.html"]),
        ("relay/login", ["util/web", "relay/web_parts"], ["layout.html"]),
        ("space/web", ["util/web"], ["index.html"]),
    ]
    for site, partials, pages in cases:
        with tempfile.TemporaryDirectory() as d:
            # Copy the folder so the output lands in the temporary one.
            shutil.copytree(os.path.join(lib, site), f"{d}/site")
            rc, err, files, _ = embed(f"{d}/site", [os.path.join(lib, p) for p in partials])
            hutspace.check(rc == 0, f"{site}: {err}")
            for page in pages:
                text = files[page].decode()
                hutspace.check(text.startswith(head_start), f"{site}/{page} starts with the shared head")
                hutspace.check("<!--#include" not in text, f"{site}/{page} has no include left")
                hutspace.check(text.count("<title>") == 1, f"{site}/{page} has one title")


CASES = [
    test_include_fills_keys_and_nests,
    test_a_missing_key_or_partial_stops_the_build,
    test_without_partials_pages_are_copied_as_they_are,
    test_the_library_pages_start_with_the_shared_head,
]

if __name__ == "__main__":
    sys.exit(hutspace.run_cases(CASES))
