"""The Debian packages as an admin gets them: built from a copy of the tree
with dpkg-buildpackage, their contents, conffiles and maintainer scripts
checked with dpkg-deb, lintian clean of errors, the systemd units verified
with systemd-analyze, and the packaged spaced and relayd run from a
throwaway root: check-config on the shipped configuration, then a real start
with the packaged plugins. Skipped (77) where dpkg-buildpackage is missing.

HUT_PACKAGES_DIR=<dir> reuses debs built before (to iterate on the checks)."""
import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402

PACKAGES = ["libhutopia0", "libhutopia-dev", "hutopia-spaced", "hutopia-relayd", "hutopia-client"]
CASES = []
state = {}


def case(fn):
    CASES.append(fn)
    return fn


def sh(*cmd, cwd=None, env=None, timeout=1800):
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def deb(name):
    found = glob.glob(os.path.join(state["out"], f"{name}_*.deb"))
    check(len(found) == 1, f"one {name} package built: {found}")
    return found[0]


def build():
    reuse = os.environ.get("HUT_PACKAGES_DIR")
    if reuse:
        state["out"] = reuse
        return
    work = tempfile.mkdtemp(prefix="hut-deb-")
    src = os.path.join(work, "hutopia")
    # The tree as committed plus what is not yet committed, without build
    # output or installed npm packages.
    files = sh("git", "ls-files", "-co", "--exclude-standard", cwd=SOURCE).stdout.split("\n")
    for rel in filter(None, files):
        if not os.path.exists(os.path.join(SOURCE, rel)):
            continue
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        shutil.copy2(os.path.join(SOURCE, rel), os.path.join(src, rel), follow_symlinks=False)
    if os.path.isdir(os.path.join(SOURCE, "node_modules")):
        os.symlink(os.path.join(SOURCE, "node_modules"), os.path.join(src, "node_modules"))
    env = dict(os.environ, DEB_BUILD_OPTIONS=f"parallel={os.cpu_count() or 2} nocheck")
    r = sh("dpkg-buildpackage", "-b", "-uc", "-us", cwd=src, env=env)
    state["build_log"] = r.stdout[-4000:] + r.stderr[-4000:]
    if r.returncode != 0:
        raise hutspace.Failure("dpkg-buildpackage failed:\n" + state["build_log"])
    state["out"] = work


@case
def packages_build():
    build()
    for name in PACKAGES:
        deb(name)


def contents(name):
    return sh("dpkg-deb", "-c", deb(name)).stdout


@case
def package_contents():
    libs = contents("libhutopia0")
    check("/libhutopia.so.0" in libs, "libhutopia0 holds the shared library")
    for plugin in ["echo", "counter", "moderation", "chat", "voice"]:
        check(f"/hutopia/plugins/{plugin}.so" in libs, f"libhutopia0 holds the {plugin} plugin")
    dev = contents("libhutopia-dev")
    for path in ["./usr/include/hutopia/plugin.h", "./usr/include/hutopia/space.h", "/pkgconfig/hutopia.pc"]:
        check(path in dev, f"libhutopia-dev holds {path}")
    spaced = contents("hutopia-spaced")
    for path in ["./usr/bin/spaced", "./etc/hutopia/spaced.toml", "/systemd/system/hutopia-spaced.service"]:
        check(path in spaced, f"hutopia-spaced holds {path}")
    client = contents("hutopia-client")
    for path in ["./usr/bin/hut", "/man1/hut.1"]:
        check(path in client, f"hutopia-client holds {path}")
    relayd = contents("hutopia-relayd")
    for path in ["./usr/bin/relayd", "./etc/hutopia/relayd.toml", "/systemd/system/hutopia-relayd.service"]:
        check(path in relayd, f"hutopia-relayd holds {path}")


def control(name, member):
    tmp = tempfile.mkdtemp(prefix="hut-ctl-")
    r = sh("dpkg-deb", "-e", deb(name), tmp)
    check(r.returncode == 0, f"dpkg-deb -e {name}: {r.stderr}")
    path = os.path.join(tmp, member)
    return open(path).read() if os.path.exists(path) else ""


@case
def conffiles_and_maintainer_scripts():
    for name, conf in [("hutopia-spaced", "/etc/hutopia/spaced.toml"), ("hutopia-relayd", "/etc/hutopia/relayd.toml")]:
        check(conf in control(name, "conffiles").split(), f"{conf} is a conffile of {name}")
        postinst = control(name, "postinst")
        check("adduser --system" in postinst, f"{name} postinst makes the system user")
        check("deb-systemd-helper" in postinst and "enable" in postinst, f"{name} postinst enables its unit")
        check("deb-systemd-invoke start" not in postinst and "deb-systemd-invoke restart" not in postinst,
              f"{name} postinst does not start its unit before it is configured")
        tmp = tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False)
        tmp.write(postinst)
        tmp.close()
        r = sh("sh", "-n", tmp.name)
        check(r.returncode == 0, f"{name} postinst is valid sh: {r.stderr}")
    for name, daemon in [("hutopia-spaced", "spaced"), ("hutopia-relayd", "relayd")]:
        check(f"/etc/hutopia/credentials/{daemon}-admin-token" in control(name, "postinst"),
              f"{name} postinst generates the admin token as a credential")


@case
def lintian_finds_no_errors():
    if not shutil.which("lintian"):
        raise hutspace.Failure("lintian is not installed (scripts/setup.sh installs it)")
    debs = [deb(n) for n in PACKAGES]
    r = sh("lintian", "--no-tag-display-limit", *debs, timeout=900)
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    check(not errors, "lintian errors:\n" + "\n".join(errors))


def extract_root():
    if "root" not in state:
        root = tempfile.mkdtemp(prefix="hut-root-")
        for name in PACKAGES:
            r = sh("dpkg-deb", "-x", deb(name), root)
            check(r.returncode == 0, f"dpkg-deb -x {name}: {r.stderr}")
        state["root"] = root
    return state["root"]


@case
def units_verify():
    root = extract_root()
    for name in ["hutopia-spaced", "hutopia-relayd"]:
        unit = glob.glob(os.path.join(root, "*", "systemd", "system", f"{name}.service")) + \
            glob.glob(os.path.join(root, "usr", "lib", "systemd", "system", f"{name}.service"))
        check(len(unit) == 1, f"{name}.service in the package: {unit}")
        text = open(unit[0]).read()
        for line in ["Type=notify", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "CapabilityBoundingSet=\n", "User=hutopia", "ExecReload=",
                     f"LoadCredential=admin_token:/etc/hutopia/credentials/{name[8:]}-admin-token\n"]:
            check(line in text, f"{name}.service has {line.strip()}")
        # systemd-analyze checks the ExecStart binaries exist: verify the unit
        # with its paths pointed into the extracted root.
        tmp = tempfile.mkdtemp(prefix="hut-unit-")
        copy = os.path.join(tmp, f"{name}.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/bin/", root + "/usr/bin/"))
        r = sh("systemd-analyze", "verify", "--man=no", copy)
        check(r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify {name}: {r.stderr}")


def packaged_env(root):
    libdir = glob.glob(os.path.join(root, "usr", "lib", "*-linux-gnu"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTOPIA_")}
    env["LD_LIBRARY_PATH"] = ":".join(libdir)
    return env, libdir[0]


@case
def packaged_config_checks_and_spaced_serves():
    root = extract_root()
    env, libdir = packaged_env(root)
    for daemon in ["spaced", "relayd"]:
        r = sh(os.path.join(root, "usr", "bin", daemon), "check-config", "--config",
               os.path.join(root, "etc", "hutopia", f"{daemon}.toml"), env=env)
        check(r.returncode == 0, f"the shipped {daemon}.toml is valid: {r.stdout}{r.stderr}")
    # The packaged spaced with the packaged plugins, data in a temp dir.
    token = secrets.token_hex(24)
    data = tempfile.mkdtemp(prefix="hut-pkgdata-")
    env.update({"HUTOPIA_SPACE_LISTEN": "127.0.0.1:0", "HUTOPIA_ADMIN_LISTEN": "127.0.0.1:0",
                "HUTOPIA_SPACE_DATA_DIR": data, "HUTOPIA_STORE_URL": f"sqlite://{data}/space.db",
                "HUTOPIA_SPACE_PLUGINS_DIR": os.path.join(libdir, "hutopia", "plugins"),
                "HUTOPIA_ADMIN_TOKEN": token})
    proc = subprocess.Popen([os.path.join(root, "usr", "bin", "spaced"), "--config",
                             os.path.join(root, "etc", "hutopia", "spaced.toml")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        urls = []
        for line in proc.stdout:
            if line.startswith("listening on "):
                urls.append(line.split()[-1])
                if len(urls) == 2:
                    break
        check(len(urls) == 2, "the packaged spaced prints its two listeners")
        names = None
        for u in urls:
            status, _, answer = hutspace.http("GET", u + "/api/v1/plugins",
                                              headers={"Authorization": "Bearer " + token})
            if status == 200:
                names = sorted(p["name"] for p in answer if p.get("state") == "loaded")
        check(names is not None and {"counter", "echo", "moderation"} <= set(names),
              f"the packaged plugins load: {names}")
    finally:
        hutspace.terminate(proc)


if __name__ == "__main__":
    if not shutil.which("dpkg-buildpackage") and not os.environ.get("HUT_PACKAGES_DIR"):
        print("skipped: dpkg-buildpackage is not installed")
        sys.exit(hutspace.SKIP)
    sys.exit(hutspace.run_cases(CASES))
