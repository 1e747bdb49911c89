#!/usr/bin/env python3
"""The exported symbols of libhutopia.so keep the configuration structs out
of the ABI: no exported function takes or returns SpaceConfig, RelayConfig,
AppToken or ReloadReport (their layout belongs to the program that includes
the header; the library speaks SpaceOptions / RelayOptions and std types).

Usage: abi_symbols.py <path to libhutopia.so>. Exits 77 (skipped) without nm.
"""
import re
import shutil
import subprocess
import sys

RESULTS = []  # (name, ok, detail)


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))


def main():
    if len(sys.argv) != 2:
        print("usage: abi_symbols.py <libhutopia.so>", file=sys.stderr)
        return 2
    nm = shutil.which("nm")
    if nm is None:
        print("nm not found: skipped")
        return 77
    out = subprocess.run([nm, "-DC", "--defined-only", sys.argv[1]], check=True, capture_output=True,
                         text=True).stdout
    symbols = [line.split(" ", 2)[2] for line in out.splitlines() if line.count(" ") >= 2]
    check("the library exports symbols at all", any(s.startswith("hut::Space::create(") for s in symbols),
          "hut::Space::create missing")

    structs = re.compile(r"\bhut::(SpaceConfig|RelayConfig|AppToken|(Space|Relay)::ReloadReport)\b")
    bad = [s for s in symbols if structs.search(s)]
    check("no exported symbol names a configuration struct", not bad, "; ".join(bad[:5]))

    # Return types are not in a symbol's name: the functions that returned a
    # struct must not be exported any more (their inline wrappers live in the
    # headers).
    gone = [
        r"hut::parse_space_config\(", r"hut::parse_relay_config\(", r"hut::load_space_config\(",
        r"hut::load_relay_config\(", r"hut::validate_space_config\(", r"hut::validate_relay_config\(",
        r"hut::space_store_url", r"hut::Space::config\(", r"hut::Relay::config\(",
        # the three-argument form returned Result<AppToken>
        r"hut::Space::mint_app_token\([^,()]+, [^,()]+, long\) const$",
        # the one-argument forms returned Result<ReloadReport>
        r"hut::(Space|Relay)::reload\([^,()]+\)$",
        # nothing of the private implementation
        r"hut::(Space|Relay|ConfigOptions)::Impl::",
    ]
    for pattern in gone:
        hits = [s for s in symbols if re.search(pattern, s)]
        check(f"not exported: {pattern}", not hits, "; ".join(hits[:3]))

    wanted = [
        "hut::Space::create(hut::SpaceOptions const&, uv_loop_s*)",
        "hut::Relay::create(hut::RelayOptions const&, uv_loop_s*)",
        "hut::Space::options() const",
        "hut::Relay::options() const",
        "hut::SpaceOptions::SpaceOptions()",
        "hut::RelayOptions::RelayOptions()",
        "hut::rotate_relay_signing_key[abi:cxx11](hut::RelayOptions const&)",
    ]
    for w in wanted:
        check(f"exported: {w}", w in symbols, "missing")
    for name, ok, detail in RESULTS:
        print(f"ok   {name}" if ok else f"FAIL {name}: {detail}")
    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
