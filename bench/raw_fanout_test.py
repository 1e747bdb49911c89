"""hut-bench fanout --raw against raw-lws-echo --broadcast, and --sources.

usage: raw_fanout_test.py HUT_BENCH RAW_LWS_ECHO

Checks what a person comparing fan-out would check: against the raw
libwebsockets broadcast server every member gets every post (the posters'
own copies included, the members bound to two source addresses), the run
reports a delivery rate and no errors; and an
idle run with --sources 2 holds all its connections, half of them from
127.0.0.1 and half from 127.0.0.2 as the kernel's socket table shows them on
the server's port. No timing is asserted. Ends with one line
"N passed, N failed".
"""
import re
import signal
import subprocess
import sys
import time


def start_server(binary, *args):
    proc = subprocess.Popen([binary, *args, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the server prints this line first, then nothing
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)$", line.strip())
    if not m:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"raw-lws-echo did not report its port: {line!r} {proc.stderr.read()!r}")
    return proc, int(m.group(1))


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    return proc.returncode


def result_fields(output):
    lines = [l for l in output.splitlines() if l.startswith("result ")]
    if not lines:
        return {}
    return dict(kv.split("=", 1) for kv in lines[-1].split()[1:])


def peers_of(port):
    """Remote IPv4 addresses of the established connections on local `port`
    (lws listens on a dual-stack socket: its side shows in tcp6, as
    ::ffff:127.0.0.x)."""
    peers = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                local, remote, state = cols[1], cols[2], cols[3]
                if state != "01" or int(local.split(":")[1], 16) != port:
                    continue
                addr = remote.split(":")[0]
                if len(addr) == 32 and addr[:24] != "0000000000000000FFFF0000":
                    continue  # a real IPv6 peer
                raw = bytes.fromhex(addr[-8:])[::-1]  # the IPv4 word, in host (little-endian) order
                peers.append(".".join(str(b) for b in raw))
    return peers


def main():
    bench, server_bin = sys.argv[1], sys.argv[2]
    passed, failed = 0, 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {detail}")

    server, port = start_server(server_bin, "--broadcast")
    try:
        members = 60
        run = subprocess.run(
            [bench, "fanout", "--raw", "--port", str(port), "-c", str(members), "--posters", "5",
             "--inflight", "1", "--sources", "2", "-w", "0.2", "-d", "1", "--timeout", "60"],
            capture_output=True, text=True, timeout=90)
        f = result_fields(run.stdout)
        detail = f"exit {run.returncode}\n{run.stdout}{run.stderr}"
        posts = int(f.get("all_posts", 0))
        check("fanout --raw reports a delivery rate and no errors",
              run.returncode == 0 and f.get("errors") == "0" and f.get("target") == "raw"
              and float(f.get("delivery_rate", 0)) > 0 and float(f.get("p50_us", 0)) > 0
              and float(f.get("ok_p50_us", 0)) > 0, detail)
        check("every member got every post, the posters' own included",
              posts > 0 and f.get("members") == str(members)
              and int(f.get("all_deliveries", -1)) == posts * members
              and f.get("member_min") == str(posts) and f.get("member_max") == str(posts)
              and f.get("reordered") == "0", detail)
    finally:
        code = stop_server(server)
    check("the broadcast server stops cleanly on SIGTERM", code == 0, f"exit {code}")

    server, port = start_server(server_bin)
    try:
        conns = 200
        idle = subprocess.Popen(
            [bench, "idle", "--raw", "--port", str(port), "-c", str(conns), "--sources", "2", "--hold", "60",
             "--timeout", "90"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peers = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and idle.poll() is None:
            peers = peers_of(port)
            if len(peers) >= conns:
                break
            time.sleep(0.1)
        counts = {a: peers.count(a) for a in set(peers)}
        check("idle --sources 2 holds every connection, half from 127.0.0.1 and half from 127.0.0.2",
              len(peers) == conns and counts == {"127.0.0.1": conns // 2, "127.0.0.2": conns // 2},
              f"server's peers: {counts}")
        idle.send_signal(signal.SIGINT)
        try:
            idle.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            idle.kill()
            idle.communicate(timeout=10)

        run = subprocess.run([bench, "idle", "--raw", "--port", str(port), "--host", "::1", "--sources", "2"],
                             capture_output=True, text=True, timeout=20)
        check("--sources with an IPv6 target is refused", run.returncode == 2 and "--sources" in run.stderr,
              f"exit {run.returncode}\n{run.stderr}")
    finally:
        code = stop_server(server)
    check("the echo server stops cleanly on SIGTERM", code == 0, f"exit {code}")

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
