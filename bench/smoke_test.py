"""Smoke test of hut-bench against raw-lws-echo on a free loopback port.

usage: smoke_test.py HUT_BENCH RAW_LWS_ECHO

Checks what a person running the benchmark would check: the echo run reports
a non-zero rate and no errors, a small connection storm gets every connection
ready, a non-loopback target is refused, and the server stops cleanly. No
timing is asserted. Ends with one line "N passed, N failed".
"""
import re
import signal
import subprocess
import sys
import time


def start_server(binary):
    proc = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the server prints this line first, then nothing
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)$", line.strip())
    if not m:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"raw-lws-echo did not report its port: {line!r} {proc.stderr.read()!r}")
    return proc, int(m.group(1))


def result_fields(output):
    lines = [l for l in output.splitlines() if l.startswith("result ")]
    if not lines:
        return None
    return dict(kv.split("=", 1) for kv in lines[-1].split()[1:])


def main():
    bench, echo = sys.argv[1], sys.argv[2]
    passed, failed = 0, 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {detail}")

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

        run = subprocess.run([bench, "echo", "--raw", "--host", "10.1.2.3", "--port", str(port)],
                             capture_output=True, text=True, timeout=20)
        check("a non-loopback target is refused", run.returncode == 2 and "loopback" in run.stderr,
              f"exit {run.returncode}\n{run.stderr}")
    finally:
        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    check("the server stops cleanly on SIGTERM", server.returncode == 0, f"exit {server.returncode}")

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
