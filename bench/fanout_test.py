"""hut-bench fanout against a real spaced built in this tree.

usage: fanout_test.py HUT_BENCH

Checks what a person running the fan-out benchmark would check: the run ends
by itself with no errors, every member of the room received every acknowledged
post exactly once (deliveries == posts ok x members, and each member's count
equals the posts), with one thread and one poster and with two threads and two
posters at an offered rate, and against the stand-in bench/fanout_feed.py
(which writes many messages per read); and a space that refuses the token is
reported as failed connections, not as a hang. No timing is asserted. Skipped (77) when
spaced is not built. Ends with one line "N passed, N failed".
"""
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "buspy"))
import hutspace  # noqa: E402
from testlib import Tally, exact, result_fields  # noqa: E402


def run_bench(bench, space, secret, *args):
    return run_bench_ports(bench, [space.port], secret, *args)


def run_bench_ports(bench, ports, secret, *args):
    """hut-bench fanout with --port once per port; its run and its result fields."""
    cmd = [bench, "fanout", *(a for p in ports for a in ("--port", str(p))), "--secret", secret, "--issuer", hutspace.APP_ISSUER,
           "--audience", hutspace.SPACE_ID, "-w", "0.3", "-d", "1", "--timeout", "40", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return run, result_fields(run.stdout)


def main():
    bench = sys.argv[1]
    hutspace.require_spaced()
    tally = Tally()
    check = tally.check

    with hutspace.Spaced(limits={"post_rate": 1000000, "post_burst": 1000000}) as space:
        run, fields = run_bench(bench, space, space.app_secret, "-c", "20", "--inflight", "8")
        check("closed loop, 20 members, one poster: every member gets every post once",
              run.returncode == 0 and exact(fields, 20), f"exit {run.returncode}\n{run.stdout}{run.stderr}")

        run, fields = run_bench(bench, space, space.app_secret, "-c", "20", "--posters", "2", "--rate", "400",
                                "--threads", "2", "--room", "second")
        check("two threads, two posters at 400 posts/s: every member gets every post once",
              run.returncode == 0 and exact(fields, 20) and fields.get("threads") == "2"
              and fields.get("not_offered") == "0",
              f"exit {run.returncode}\n{run.stdout}{run.stderr}")

        run, fields = run_bench(bench, space, "not-the-secret", "-c", "5", "--room", "third")
        check("a refused token is reported as failed connections",
              run.returncode == 1 and fields.get("failed") == "5" and fields.get("ready") == "0"
              and "unauthenticated" in run.stdout,
              f"exit {run.returncode}\n{run.stdout}{run.stderr}")

        check("the space is still running", space.alive(), space.log())

    feed = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fanout_feed.py"), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)$", feed.stdout.readline().strip())
        if not m:
            check("the stand-in starts", False, "no port line")
        else:
            run, fields = run_bench_ports(bench, [int(m.group(1))], "unused", "-c", "50", "--posters", "2",
                                         "--inflight", "16")
            check("against the stand-in, 50 members, two posters: every member gets every post once",
                  run.returncode == 0 and exact(fields, 50), f"exit {run.returncode}\n{run.stdout}{run.stderr}")
    finally:
        feed.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while feed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if feed.poll() is None:
            feed.kill()
            feed.wait(timeout=10)

    return tally.end()


if __name__ == "__main__":
    sys.exit(main())
