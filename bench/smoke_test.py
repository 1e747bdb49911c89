"""Smoke test of hut-bench against raw-lws-echo on a free loopback port.

usage: smoke_test.py HUT_BENCH RAW_LWS_ECHO

Checks what a person running the benchmark would check: the echo run reports
a non-zero rate and no errors, a small connection storm gets every connection
ready, a non-loopback target is refused, and the server stops cleanly. No
timing is asserted. Ends with one line "N passed, N failed".
"""
import subprocess
import sys

from testlib import Tally, result_fields, start_server


def main():
    bench, echo = sys.argv[1], sys.argv[2]
    tally = Tally()
    check = tally.check

    server, port = start_server(echo)
    try:
        run = subprocess.run(
            [bench, "echo", "--raw", "--port", str(port), "-c", "4", "-p", "64", "-w", "0.2", "-d", "1",
             "--timeout", "20"],
            capture_output=True, text=True, timeout=40)
        fields = result_fields(run.stdout) or {}
        check("echo reports a rate and no errors",
              run.returncode == 0 and float(fields.get("rate", 0)) > 0 and fields.get("errors") == "0"
              and int(fields.get("messages", 0)) > 0 and float(fields.get("p50_us", 0)) > 0,
              f"exit {run.returncode}\n{run.stdout}{run.stderr}")

        run = subprocess.run(
            [bench, "storm", "--raw", "--port", str(port), "-c", "200", "--concurrency", "50", "--timeout", "20"],
            capture_output=True, text=True, timeout=40)
        fields = result_fields(run.stdout) or {}
        check("storm gets every connection ready",
              run.returncode == 0 and fields.get("ready") == "200" and fields.get("errors") == "0",
              f"exit {run.returncode}\n{run.stdout}{run.stderr}")

        tally.refused("a non-loopback target is refused",
                      [bench, "echo", "--raw", "--host", "10.1.2.3", "--port", str(port)], "loopback")
    finally:
        tally.stopped("the server stops cleanly on SIGTERM", server)
    return tally.end()


if __name__ == "__main__":
    sys.exit(main())
