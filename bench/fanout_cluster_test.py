"""hut-bench fanout against two real spaced nodes of one space (the same
PostgreSQL database, a real redis-server), as bench/cluster.sh runs it.

usage: fanout_cluster_test.py HUT_BENCH

Checks what a person running the two-node benchmark would check: with --port
given once per node, the run ends by itself with no errors, every member on
either node received every acknowledged post exactly once, the members on the
second node are counted as cross-node deliveries, and the server CPU is read
from both nodes; a --server-pid count that does not match the ports is a clear
command-line error. No timing is asserted. Skipped (0 passed, 0 failed) without
PostgreSQL or redis-server; 77 without spaced. Ends with "N passed, N failed".
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "cluster"))
sys.path.insert(0, HERE)
import cluster_test as ct  # noqa: E402
import hutpg  # noqa: E402
import hutspace  # noqa: E402
from fanout_test import run_bench_ports  # noqa: E402
from testlib import Tally, exact  # noqa: E402


def run_bench(bench, spaces, *args):
    return run_bench_ports(bench, [s.port for s in spaces], spaces[0].app_secret, *args)


def main():
    bench = sys.argv[1]
    hutspace.require_spaced()
    if shutil.which("redis-server") is None or hutpg.available():
        print("skipped: needs redis-server and PostgreSQL")
        print("0 passed, 0 failed")
        return 0
    tally = Tally()
    check = tally.check

    pg = hutpg.started_or_skip()
    tmp = tempfile.mkdtemp(prefix="hut-fanout-cluster-")
    redis = ct.Redis(tmp)
    spaces = []
    try:
        redis.start()
        url = pg.new_database()
        limits = {"post_rate": 1000000, "post_burst": 1000000}
        secret = None  # the first node's, given to the second
        for name in ("a", "b"):
            space = hutspace.Spaced(limits=limits, store_url=url, app_secret=secret,
                                    cluster=dict(ct.CLUSTER, redis=redis.url, node=f'"{name}"'))
            secret = space.app_secret
            spaces.append(space)
            space.start()

        def detail(run):
            return f"exit {run.returncode}\n{run.stdout}{run.stderr}"

        run, fields = run_bench(bench, spaces, "-c", "20", "--inflight", "8")
        # One poster on node a; of the 19 others, 10 on a and 9 on b.
        cross = int(fields.get("cross_deliveries", 0))
        check("two nodes, 20 members, one poster: every member gets every post once",
              run.returncode == 0 and exact(fields, 20) and fields.get("nodes") == "2", detail(run))
        check("the members on the second node are counted as cross-node deliveries",
              cross > 0 and cross < int(fields.get("deliveries", 0)) and float(fields.get("cross_p99_us", 0)) > 0,
              detail(run))
        check("the server CPU is read from both nodes",
              float(fields.get("server_cpu_us_per_delivery", -1)) > 0 and "server pid" in run.stdout
              and run.stdout.count("server pid") == 2, detail(run))

        run, fields = run_bench(bench, spaces, "-c", "20", "--posters", "2", "--rate", "400", "--threads", "2",
                                "--room", "second")
        check("two nodes, two threads, two posters at 400 posts/s: every member gets every post once",
              run.returncode == 0 and exact(fields, 20) and fields.get("not_offered") == "0", detail(run))

        run, _ = run_bench(bench, spaces, "-c", "5", "--server-pid", str(spaces[0].proc.pid), "--room", "third")
        check("one --server-pid for two ports is refused",
              run.returncode == 2 and "--server-pid once per --port" in run.stderr, detail(run))

        run = subprocess.run([bench, "echo", "--port", str(spaces[0].port), "--port", str(spaces[1].port)],
                             capture_output=True, text=True, timeout=30)
        check("several ports outside fanout mode are refused",
              run.returncode == 2 and "only in fanout mode" in run.stderr, detail(run))

        check("both nodes are still running", all(s.alive() for s in spaces), "\n".join(s.log() for s in spaces))
    finally:
        for stop in [s.stop for s in spaces] + [redis.stop, pg.close]:
            stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return tally.end()


if __name__ == "__main__":
    sys.exit(main())
