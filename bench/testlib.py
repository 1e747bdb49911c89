"""What the hut-bench tests in bench/ share (smoke_test.py, fanout_test.py,
raw_fanout_test.py, fanout_cluster_test.py): starting a comparison server that
prints its port, stopping a process, reading hut-bench's `result` line,
judging a fan-out run and counting checks."""
import re
import signal
import subprocess


def start_server(binary, *args):
    """Starts `binary [ARGS] 0` and returns (process, port) from its first line."""
    proc = subprocess.Popen([binary, *args, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the server prints this line first, then nothing
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)$", line.strip())
    if not m:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"{binary} did not report its port: {line!r} {proc.stderr.read()!r}")
    return proc, int(m.group(1))


def stop(proc, sig=signal.SIGTERM, wait=20):
    """Sends `sig`, waits up to `wait` s (then kills) and returns the exit status."""
    proc.send_signal(sig)
    try:
        proc.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
    return proc.returncode


def result_fields(output):
    """The key=value fields of the last `result` line of hut-bench's output."""
    lines = [l for l in output.splitlines() if l.startswith("result ")]
    if not lines:
        return {}
    return dict(kv.split("=", 1) for kv in lines[-1].split()[1:])


def exact(fields, members):
    """The run ended without errors and each of `members` got every post ok once, in order."""
    posts = int(fields.get("all_posts", 0))
    return (fields.get("errors") == "0" and fields.get("members") == str(members) and posts > 0
            and int(fields.get("posts", 0)) > 0 and int(fields.get("deliveries", 0)) > 0
            and int(fields.get("all_deliveries", -1)) == posts * members
            and fields.get("member_min") == str(posts) and fields.get("member_max") == str(posts)
            and fields.get("reordered") == "0" and fields.get("error_replies") == "0")


class Tally:
    """Counts the checks and prints each; end() prints "N passed, N failed"."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}")

    def refused(self, name, cmd, needle):
        """Checks that hut-bench refuses `cmd` as a bad command line, saying `needle`."""
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        self.check(name, run.returncode == 2 and needle in run.stderr, f"exit {run.returncode}\n{run.stderr}")

    def stopped(self, name, proc):
        """Stops `proc` with SIGTERM and checks that it exits with 0."""
        code = stop(proc)
        self.check(name, code == 0, f"exit {code}")

    def end(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1
