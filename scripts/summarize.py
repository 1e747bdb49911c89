#!/usr/bin/env python3
"""Adds up the results of every build's test run and prints one closing line,
"N passed, N failed".

Each meson test counts as one, except a test whose output carries its own
count: doctest's "test cases: N | P passed | F failed" line, or a line
"P passed, F failed" printed by the project's other test programs. A test
that crashed or timed out after printing its count adds one failure more.
Each ThreadSanitizer report a build left in its tsan-reports/ folder (see
scripts/test.sh) counts as one failure too, whichever process wrote it.
"""
import argparse
import json
import os
import re
import sys

DOCTEST = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")
PLAIN = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def count(entry):
    out = entry.get("stdout", "") or ""
    ok = entry.get("result") in ("OK", "EXPECTEDFAIL")
    skipped = entry.get("result") == "SKIP"
    m = DOCTEST.findall(out)
    if m:
        passed, failed = int(m[-1][1]), int(m[-1][2])
    else:
        m = PLAIN.findall(out)
        if m:
            passed, failed = int(m[-1][0]), int(m[-1][1])
        elif skipped:
            return 0, 0, 1
        else:
            return (1, 0, 0) if ok else (0, 1, 0)
    if not ok and not skipped and failed == 0:
        failed = 1
    return passed, failed, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--failed-builds", default="")
    ap.add_argument("builds", nargs="*")
    args = ap.parse_args()
    total_p = total_f = total_s = 0
    for b in args.failed_builds.split():
        print(f"{b}: build failed")
        total_f += 1
    for d in args.builds:
        if os.path.basename(d) in args.failed_builds.split():
            continue
        log = os.path.join(d, "meson-logs", "testlog.json")
        if not os.path.exists(log):
            print(f"{d}: no test log")
            total_f += 1
            continue
        bp = bf = bs = 0
        with open(log) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                e = json.loads(line)
                p, fl, s = count(e)
                bp, bf, bs = bp + p, bf + fl, bs + s
                if fl:
                    print(f"{d}: FAILED {e.get('name')} ({e.get('result')})")
        reports = os.path.join(d, "tsan-reports")
        if os.path.isdir(reports):
            for name in sorted(os.listdir(reports)):
                with open(os.path.join(reports, name), errors="replace") as f:
                    head = f.read().splitlines()[:30]
                print(f"{d}: FAILED ThreadSanitizer report {name}:")
                for line in head:
                    print(f"    {line}")
                bf += 1
        print(f"{d}: {bp} passed, {bf} failed, {bs} skipped")
        total_p, total_f, total_s = total_p + bp, total_f + bf, total_s + bs
    line = f"{total_p} passed, {total_f} failed"
    if total_s:
        line += f", {total_s} skipped"
    print(line)
    return 1 if total_f or total_p == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
