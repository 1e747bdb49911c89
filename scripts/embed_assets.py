#!/usr/bin/env python3
"""Embeds a folder of web assets into a C source file, so that a plugin (or
libhutopia itself) is one file with its assets inside.

    embed_assets.py --name SYMBOL --dir DIST --output assets.c [--depfile assets.c.d]
    embed_assets.py --name SYMBOL --file F [--file G ...] --output assets.c [--depfile assets.c.d]
    ... [--partials DIR ...]

The generated file uses only standard C types, so C and C++ code alike can use it:

    extern const size_t SYMBOL_count;
    extern const char *const SYMBOL_paths[];         /* "widget.js", "img/logo.svg" */
    extern const char *const SYMBOL_types[];         /* "text/javascript; charset=utf-8" */
    extern const unsigned char *const SYMBOL_data[];
    extern const size_t SYMBOL_sizes[];

Paths are relative to DIST with "/" separators, sorted. Hidden files are skipped.
With --file, the named files alone are embedded, each under its base name.

With --partials, a line of an .html file that reads

    <!--#include NAME key="value" ...-->

is replaced, as it is embedded, by the file NAME of the first partials folder
that has it, with each {{key}} of that file replaced by its value; an
included file may include others. A {{key}} the line does not give, or a
missing NAME, is an error. Other {{...}} of the pages (the relay's run-time
templates) are left alone.

For a plugin, --plugin NAME --version V [--widget TAG=SCRIPT ...] also writes
its descriptor, with these assets, and the hut_plugin_describe() that returns
it (the plugin's own source then holds no descriptor).
"""
import argparse
import os
import re
import shlex
import sys

INCLUDE = re.compile(r"^\s*<!--#include\s+(.*?)\s*-->\s*$")

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}


def content_type(path):
    return TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def expand(text, partials, used, where, depth=0):
    """`text` with its include lines replaced (see the module's docstring)."""
    if depth > 8:
        sys.exit(f"embed_assets: {where}: includes nested too deep")
    out = []
    for line in text.splitlines(keepends=True):
        m = INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        words = shlex.split(m.group(1))
        name, args = words[0], {}
        for w in words[1:]:
            key, eq, value = w.partition("=")
            if not eq:
                sys.exit(f"embed_assets: {where}: include argument {w!r} is not key=value")
            args[key] = value
        path = next((os.path.join(d, name) for d in partials if os.path.isfile(os.path.join(d, name))), None)
        if path is None:
            sys.exit(f"embed_assets: {where}: no partial {name!r} in {partials}")
        used.add(path)
        with open(path, encoding="utf-8") as fh:
            part = fh.read()
        for key in set(re.findall(r"\{\{(\w+)\}\}", part)):
            if key not in args:
                sys.exit(f"embed_assets: {where}: {name} needs {key}=")
            part = part.replace("{{" + key + "}}", args[key])
        out.append(expand(part, partials, used, f"{where} > {name}", depth + 1))
    return "".join(out)


def read_asset(path, partials, used):
    with open(path, "rb") as fh:
        data = fh.read()
    if partials and path.endswith(".html"):
        data = expand(data.decode("utf-8"), partials, used, path).encode("utf-8")
    return data


def plugin_descriptor(name, plugin, version, widgets, count):
    """The lines of a plugin's descriptor over the assets `name`, and hut_plugin_describe."""
    out = ["", "#include <hutopia/plugin.h>", ""]
    if widgets:
        out.append(f"static const hut_widget_desc {name}_widgets[] = {{"
                   + ", ".join(f"{{{c_string(t)}, {c_string(s)}}}" for t, s in widgets) + "};")
    out += [f"static const hut_plugin_descriptor {name}_descriptor = {{",
            "    .abi_major = HUT_PLUGIN_ABI_MAJOR,",
            "    .abi_minor = HUT_PLUGIN_ABI_MINOR,",
            f"    .name = {c_string(plugin)},",
            f"    .version = {c_string(version)},",
            f"    .widgets = {name + '_widgets' if widgets else '0'},",
            f"    .widget_count = {len(widgets)},",
            f"    .asset_count = {count},",
            f"    .asset_paths = {name}_paths,",
            f"    .asset_types = {name}_types,",
            f"    .asset_data = {name}_data,",
            f"    .asset_sizes = {name}_sizes,",
            "};",
            "HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void);",
            f"HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {{ return &{name}_descriptor; }}"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--dir")
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--output", required=True)
    ap.add_argument("--depfile")
    ap.add_argument("--partials", action="append", default=[])
    ap.add_argument("--plugin")
    ap.add_argument("--version")
    ap.add_argument("--widget", action="append", default=[])
    a = ap.parse_args()
    if not a.name.isidentifier():
        sys.exit(f"embed_assets: --name {a.name!r} is not a C identifier")
    if bool(a.dir) == bool(a.file):
        sys.exit("embed_assets: give either --dir or --file")
    if bool(a.plugin) != bool(a.version) or (a.widget and not a.plugin):
        sys.exit("embed_assets: --plugin needs --version, and --widget needs --plugin")
    widgets = [w.split("=", 1) for w in a.widget]
    if any(len(w) != 2 or not all(w) for w in widgets):
        sys.exit("embed_assets: --widget takes TAG=SCRIPT")
    files = [(os.path.basename(f), f) for f in a.file]
    for dirpath, dirnames, filenames in (os.walk(a.dir) if a.dir else ()):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if f.startswith("."):
                continue
            full = os.path.join(dirpath, f)
            files.append((os.path.relpath(full, a.dir).replace(os.sep, "/"), full))
    files.sort()
    source = os.path.basename(os.path.normpath(a.dir)) + "/" if a.dir else ", ".join(p for p, _ in files)
    out = [f"/* Generated by scripts/embed_assets.py from {source}. Do not edit. */",
           "#include <stddef.h>", ""]
    used = set()
    contents = []
    for i, (_, full) in enumerate(files):
        data = read_asset(full, a.partials, used)
        contents.append(data)
        body = ",".join(str(b) for b in data)
        # One extra NUL keeps text assets usable as C strings; sizes exclude it.
        out.append(f"static const unsigned char {a.name}_d{i}[] = {{{body}{',' if data else ''}0}};")
    n = len(files)
    out.append(f"const size_t {a.name}_count = {n};")
    dim = max(n, 1)
    out.append(f"const char *const {a.name}_paths[{dim}] = {{" + ", ".join(c_string(p) for p, _ in files) + ("0" if not n else "") + "};")
    out.append(f"const char *const {a.name}_types[{dim}] = {{" + ", ".join(c_string(content_type(p)) for p, _ in files) + ("0" if not n else "") + "};")
    out.append(f"const unsigned char *const {a.name}_data[{dim}] = {{" + ", ".join(f"{a.name}_d{i}" for i in range(n)) + ("0" if not n else "") + "};")
    sizes = []
    for data in contents:
        sizes.append(str(len(data)))
    out.append(f"const size_t {a.name}_sizes[{dim}] = {{" + ", ".join(sizes) + ("0" if not n else "") + "};")
    if a.plugin:
        out += plugin_descriptor(a.name, a.plugin, a.version, widgets, n)
    with open(a.output, "w") as fh:
        fh.write("\n".join(out) + "\n")
    if a.depfile:
        with open(a.depfile, "w") as fh:
            deps = " ".join(f.replace(" ", "\\ ") for f in [full for _, full in files] + sorted(used))
            fh.write(f"{a.output}: {deps}\n")


if __name__ == "__main__":
    main()
