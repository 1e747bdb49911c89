"""A real PostgreSQL server for a test: initdb and pg_ctl in a temporary
folder, listening only on a Unix socket in it. PostgreSQL refuses to run as
root, so under root the folder is given to `nobody` and the server runs as that
user (runuser). `available()` says why not when the binaries are missing."""
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time


def bin_dir():
    found = sorted(d for d in glob.glob("/usr/lib/postgresql/*/bin")
                   if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")))
    return found[-1] if found else None


def available():
    """None when a server can be started here, otherwise why not."""
    return None if bin_dir() else "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin"


def started_or_skip():
    """A started PgServer; without the binaries, prints why, the test's
    "0 passed, 0 failed" line, and exits (a skip, not a failure)."""
    why = available()
    if why:
        print(f"skipped: {why}")
        print("0 passed, 0 failed")
        sys.exit(0)
    pg = PgServer()
    pg.start()
    return pg


class PgServer:
    def __init__(self):
        self.bin = bin_dir()
        self.tmp = tempfile.mkdtemp(prefix="hut-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "log")
        self.as_user = []
        self.databases = 0
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "nobody", "--"]

    def _run(self, prog, *args):
        return subprocess.run(self.as_user + [os.path.join(self.bin, prog), *args], capture_output=True,
                              text=True, timeout=120, cwd="/")

    def start(self):
        if not os.path.exists(self.data):
            r = self._run("initdb", "-D", self.data, "-U", "hut", "-A", "trust", "-E", "UTF8", "--no-sync")
            if r.returncode != 0:
                raise RuntimeError("initdb failed: " + r.stderr)
        r = self._run("pg_ctl", "-D", self.data, "-w", "-t", "60", "-l", self.log, "-o",
                      f"-c listen_addresses='' -c unix_socket_directories={self.tmp}", "start")
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: " + r.stderr + self.read_log())

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "stop")

    def restart(self, pause=0.0):
        """Stops the server (fast: open connections are cut), waits `pause`
        seconds, and starts it again on the same data."""
        r = self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        if r.returncode != 0:
            raise RuntimeError("pg_ctl stop failed: " + r.stderr)
        time.sleep(pause)
        self.start()

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def url(self, db):
        return f"postgresql:///{db}?host={self.tmp}&user=hut"

    def new_database(self):
        self.databases += 1
        name = f"t{self.databases}"
        r = self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url("postgres"), "-c",
                      f"CREATE DATABASE {name}")
        if r.returncode != 0:
            raise RuntimeError("CREATE DATABASE failed: " + r.stderr)
        return self.url(name)

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.tmp, ignore_errors=True)
