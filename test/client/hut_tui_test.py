"""The interactive `hut` as a user sees it, in tmux: two clients in two 80x24
panes log in through a real relayd (typing the password at the prompt), join a
room of a real spaced, talk both ways, see each other typing, scroll back
through 500 messages, edit and delete, see unread counts, use moderator
commands and a DM; wide characters land in the right columns, a resize redraws
and NO_COLOR turns colors off. Skipped (77) without hut or tmux.

The cases build on each other; after a failure the rest are counted failed.
HUT_TUI_HOLD=SECONDS keeps the tmux server (its socket name is printed) that
long after a failure, to look at the panes."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
from hut_cli_test import RelaySpace, free_port, hut_path  # noqa: E402
from relayd import Relayd  # noqa: E402

PASSWORD = "correct horse battery"
PASSED = 0
FAILED = 0
UTF8 = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def cells(ch):
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def column_of(line, sub):
    """The terminal column where `sub` starts in a captured line."""
    i = line.find(sub)
    return None if i < 0 else sum(cells(c) for c in line[:i])


def width(line):
    return sum(cells(c) for c in line)


def colored(text):
    """Whether captured text (with escapes) sets a foreground or background color."""
    for params in re.findall(r"\x1b\[([0-9;:]*)m", text):
        for p in params.replace(":", ";").split(";"):
            if p.isdigit() and (30 <= int(p) <= 49 or 90 <= int(p) <= 107) and int(p) not in (39, 49):
                return True
    return False


class Tmux:
    def __init__(self):
        self.sock = f"hut-tui-{os.getpid()}"
        self.env = dict(os.environ, **UTF8)

    def run(self, *args):
        r = subprocess.run(["tmux", "-u", "-L", self.sock, "-f", "/dev/null", *args], capture_output=True,
                           text=True, timeout=30, env=self.env)
        if r.returncode != 0:
            raise Failure(f"tmux {args[0]}: {r.stderr.strip()}")
        return r.stdout

    def screen(self, pane, escapes=False):
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", pane).rstrip("\n").split("\n")

    def text(self, pane):
        return "\n".join(self.screen(pane))

    def keys(self, pane, *keys):
        self.run("send-keys", "-t", pane, *keys)

    def type(self, pane, text):
        self.run("send-keys", "-t", pane, "-l", text)

    def wait(self, pane, pred, what, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen(pane)
            if pred(lines):
                return lines
            time.sleep(0.2)
        raise Failure(f"{what}; the screen of {pane}:\n" + "\n".join(self.screen(pane)))

    def wait_text(self, pane, sub, what=None, timeout=40):
        return self.wait(pane, lambda ls: any(sub in l for l in ls), what or f"no {sub!r}", timeout)

    def size(self, pane):
        return tuple(int(x) for x in self.run("display", "-p", "-t", pane, "#{pane_width} #{pane_height}").split())

    def kill(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=30)


def main():
    global PASSED, FAILED
    hut = hut_path()
    if shutil.which("tmux") is None:
        print("skipped: no tmux")
        return hutspace.SKIP
    port = free_port()
    relay = Relayd(listen=f"127.0.0.1:{port}", issuer=f"http://127.0.0.1:{port}").start()
    space = None
    tmux = Tmux()
    homes = []
    try:
        ids = {}
        for name in ("ann", "bob"):
            status, _, answer = relay.register(name, password=PASSWORD, name=name)
            check(status == 201, f"register {name}: {status} {answer}")
            ids[name] = answer["user"]["id"]
        owner = relay.login("ann", password=PASSWORD)
        space_port = free_port()
        status, _, answer = relay.call("POST", "/api/v1/spaces", {"name": "Tui space",
                                                                 "url": f"http://127.0.0.1:{space_port}"},
                                       session=owner)
        check(status == 201, f"register space: {status} {answer}")
        space = RelaySpace(relay.url, answer["id"])
        space.fixed_port = space_port
        space.start()
        space.admin_call("POST", "/api/v1/rooms", {"room": "lobby"})
        space.admin_call("POST", "/api/v1/rooms", {"room": "side"})
        for i in range(1, 501):
            status, _, _ = space.admin_call("POST", "/api/v1/rooms/lobby/messages", {"text": f"old message {i:03}"})
            check(status == 201, f"seed message {i}: {status}")

        # Two panes of 80x24 in one 80x49 window.
        def command(user, extra=""):
            home = tempfile.mkdtemp(prefix="hut-tui-home-")
            homes.append(home)
            return (f"env XDG_CONFIG_HOME={home} {extra} sh -c '{hut} login {relay.url} && "
                    f"{hut} --space {space.public}; echo hut exited $?; sleep 600'")
        tmux.run("new-session", "-d", "-s", "t", "-x", "80", "-y", "49", command("ann"))
        tmux.run("split-window", "-v", "-t", "t:0", "-l", "24", command("bob", "NO_COLOR=1"))
        A, B = "t:0.0", "t:0.1"
        check(tmux.size(A) == (80, 24) and tmux.size(B) == (80, 24), f"pane sizes {tmux.size(A)} {tmux.size(B)}")

        cases = []

        def case(fn):
            cases.append(fn)
            return fn

        @case
        def log_in_through_the_relay_and_join():
            for pane, user in ((A, "ann"), (B, "bob")):
                tmux.wait_text(pane, "Username:")
                tmux.type(pane, user)
                tmux.keys(pane, "Enter")
                tmux.wait_text(pane, "Password:")
                tmux.type(pane, PASSWORD)
                tmux.keys(pane, "Enter")
            for pane in (A, B):
                tmux.wait_text(pane, "/help", "the interactive screen did not come up")
                lines = tmux.screen(pane)
                check(hutspace.SPACE_NAME in lines[0], f"header {lines[0]!r}")
                tmux.type(pane, "/join lobby")
                tmux.keys(pane, "Enter")
                tmux.wait_text(pane, "old message 500", "the newest messages of the room")
            lines = tmux.screen(A)
            check("#lobby" in lines[0] and "ann" in lines[0], f"header {lines[0]!r}")
            check(any("#lobby" in l for l in lines[1:5]), "the room list shows the room")
            check(len(lines) >= 24 and all(width(l) <= 80 for l in lines), "nothing spills past 80 columns")

        @case
        def typing_then_talking_both_ways():
            tmux.type(A, "hello bob")
            tmux.wait_text(B, "ann is typing...", "bob does not see ann typing")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "ann: hello bob", "bob did not get the message")
            tmux.wait_text(A, "ann: hello bob", "ann does not see her own message")
            tmux.type(B, "hi ann, ")
            tmux.wait_text(A, "bob is typing...", "ann does not see bob typing")
            tmux.type(B, "from bob")
            tmux.keys(B, "Enter")
            tmux.wait_text(A, "bob: hi ann, from bob", "ann did not get bob's message")
            # Multi-line: Ctrl-J starts a second line in the composer.
            tmux.type(A, "first line")
            tmux.keys(A, "C-j")
            tmux.type(A, "second line")
            lines = tmux.screen(A)
            check(lines[-2].startswith("> first line") and lines[-1].startswith("  second line"),
                  f"composer: {lines[-3:]}")
            tmux.keys(A, "Enter")
            lines = tmux.wait_text(B, "second line", "the second line")
            i = [k for k, l in enumerate(lines) if "ann: first line" in l]
            check(i and "second line" in lines[i[0] + 1], f"two lines: {lines}")

        @case
        def wide_characters_land_in_the_right_columns():
            text = "世" * 70
            tmux.type(A, "wide " + text)
            # The cursor stands after the last character, in cells.
            cur = tmux.run("display", "-p", "-t", A, "#{cursor_x} #{cursor_y}").split()
            # "> wide " and 36 of them fill 79 cells (a 37th would not fit);
            # the other 34 take 68 cells of the next row.
            check(int(cur[1]) == 23 and int(cur[0]) == 68, f"cursor {cur}")
            tmux.keys(A, "Enter")
            tmux.type(A, "emoji 🎉 then 😀x")
            tmux.keys(A, "Enter")
            lines = tmux.wait_text(B, "😀x", "the emoji message")
            # The timeline starts at column 20 (the room list is 20 wide).
            row = [l for l in lines if "emoji" in l][0]
            start = column_of(row, "ann: emoji")
            check(start is not None and start == 20 + 6, f"message at column {start}: {row!r}")
            check(column_of(row, " then") == column_of(row, "🎉") + 2, f"emoji two cells wide: {row!r}")
            check(column_of(row, "x") == column_of(row, "😀") + 2, f"second emoji: {row!r}")
            # 70 wide characters in the 60 columns of the timeline: 22 after
            # "HH:MM ann: wide " (16 cells), then 27 a row under a 6-cell indent.
            rows = [l for l in lines if "世" in l]
            check(len(rows) == 3, f"wrapped rows {rows}")
            counts = [r.count("世") for r in rows]
            check(counts == [22, 27, 21], f"characters per row {counts}")
            for r in rows:
                check(width(r) <= 80, f"row wider than the pane: {width(r)}")
                check(column_of(r, "│") == 19, f"separator moved: {r!r}")
            check(column_of(rows[1], "世") == 20 + 6, f"continuation indent: {rows[1]!r}")

        @case
        def scroll_back_through_500_messages():
            for n in range(120):
                tmux.keys(B, "PPage")
                time.sleep(0.1)
                text = tmux.text(B)
                if "old message 001" in text:
                    break
            lines = tmux.wait_text(B, "old message 001", "never reached the first message")
            check(any("the beginning of #lobby" in l for l in lines), "the start of the room is marked")
            # Every message was on the way: the rows in view count down.
            nums = [int(l.split("old message ")[1][:3]) for l in lines if "old message " in l]
            check(nums == list(range(1, len(nums) + 1)), f"messages in order: {nums}")
            for _ in range(60):
                tmux.keys(B, "NPage")
            tmux.wait(B, lambda ls: any("😀x" in l for l in ls) and not any("lines below" in l for l in ls),
                      "back at the newest")

        @case
        def edit_and_delete_my_messages():
            tmux.type(A, "a message with a tpyo")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "a message with a tpyo")
            # Up on an empty composer picks my last message.
            tmux.keys(A, "Up")
            lines = tmux.wait(A, lambda ls: ls[-1].startswith("> /edit ") and "tpyo" in ls[-1], "Up picks it")
            tmux.keys(A, "C-u")
            tmux.type(A, "/edit a message with a typo fixed")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "a message with a typo fixed (edited)", "bob sees the edit")
            check("tpyo" not in tmux.text(B), "the old text is gone")
            tmux.type(A, "/delete")
            tmux.keys(A, "Enter")
            tmux.wait(B, lambda ls: not any("typo fixed" in l for l in ls), "bob still sees the deleted message")
            tmux.wait(A, lambda ls: not any("typo fixed" in l for l in ls), "ann still sees the deleted message")
            # Bob cannot edit ann's message: an error in the status line.
            tmux.type(B, "/delete 2")
            tmux.keys(B, "Enter")
            tmux.wait_text(B, "delete: forbidden", "deleting another's message is refused")

        @case
        def unread_counts_in_the_room_list():
            tmux.type(B, "/join side")
            tmux.keys(B, "Enter")
            tmux.wait(B, lambda ls: "#side" in ls[0], "bob opens side")
            tmux.keys(B, "Tab")
            tmux.wait(B, lambda ls: "#lobby" in ls[0], "Tab goes back to lobby")
            for i in range(3):
                space.admin_call("POST", "/api/v1/rooms/side/messages", {"text": f"side news {i}"})
            tmux.wait(B, lambda ls: any(l.startswith("#side") and l[:19].rstrip().endswith(" 3") for l in ls),
                      "the room list counts 3 unread in side")
            tmux.keys(B, "Tab")
            lines = tmux.wait_text(B, "side news 2")
            check(all(not (l.startswith("#side") and l[:19].rstrip().endswith(" 3")) for l in lines),
                  "opening the room clears its count")
            tmux.keys(B, "Tab")
            tmux.wait(B, lambda ls: "#lobby" in ls[0], "back to lobby")

        @case
        def moderator_commands_and_a_dm():
            # A member may not kick; a master may mute, unmute and give roles.
            tmux.type(A, "/mute bob 10m")
            tmux.keys(A, "Enter")
            tmux.wait_text(A, "mute: forbidden", "a member cannot mute")
            status, _, _ = space.admin_call("PUT", f"/api/v1/rooms/lobby/members/{ids['ann']}", {"role": "master"})
            check(status == 200, f"make ann master: {status}")
            tmux.wait(A, lambda ls: "(master)" in ls[0], "ann's header shows her role")
            tmux.type(A, "/mute bob 10m")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "you are muted in #lobby until", "bob is told he is muted")
            tmux.type(B, "can I speak")
            tmux.keys(B, "Enter")
            tmux.wait_text(B, "post: muted", "a muted post is refused")
            tmux.type(A, "/unmute bob")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "you are no longer muted", "bob is told")
            tmux.type(A, "/role bob moderator")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "you are now moderator in #lobby", "bob's new role")
            tmux.wait(B, lambda ls: "(moderator)" in ls[0], "bob's header shows it")
            tmux.type(A, "/dm bob")
            tmux.keys(A, "Enter")
            tmux.wait(A, lambda ls: "@bob" in ls[0], "ann opens the DM")
            tmux.type(A, "just between us")
            tmux.keys(A, "Enter")
            tmux.wait(B, lambda ls: any(l.startswith("@ann") for l in ls), "the DM in bob's list")
            tmux.keys(A, "Tab")
            tmux.wait(A, lambda ls: "#lobby" in ls[0], "ann back in lobby")
            tmux.type(A, "/kick bob")
            tmux.keys(A, "Enter")
            tmux.wait_text(B, "you were kicked from #lobby", "bob is told he was kicked")

        @case
        def help_resize_and_no_color():
            tmux.type(A, "/help")
            tmux.keys(A, "Enter")
            tmux.wait_text(A, "/mute USER [10m|2h|1d]", "help lists the commands")
            tmux.keys(A, "Escape")
            tmux.wait(A, lambda ls: not any("/mute USER" in l for l in ls), "Escape closes help")
            tmux.run("resize-window", "-t", "t:0", "-x", "100", "-y", "49")
            tmux.wait(A, lambda ls: ls[0].rstrip().endswith("/help") and width(ls[0].rstrip()) == 99,
                      "the header is redrawn for 100 columns")
            lines = tmux.wait(A, lambda ls: column_of(ls[3], "│") == 21, "the room list is 22 wide at 100 columns")
            tmux.run("resize-window", "-t", "t:0", "-x", "80", "-y", "49")
            tmux.wait(A, lambda ls: width(ls[0].rstrip()) == 79 and column_of(ls[3], "│") == 19, "back at 80")
            # ann has colors, bob runs with NO_COLOR set.
            a = "\n".join(tmux.screen(A, escapes=True))
            b = "\n".join(tmux.screen(B, escapes=True))
            check(colored(a), "ann's screen has colors")
            check(not colored(b) and "\x1b[" in b, "bob's screen has none")

        @case
        def ctrl_c_quits():
            tmux.keys(A, "C-c")
            tmux.wait_text(A, "hut exited 0", "hut did not end with 0")

        for fn in cases:
            try:
                fn()
                PASSED += 1
                print(f"ok   {fn.__name__}")
            except Exception as e:  # noqa: BLE001
                FAILED += 1
                print(f"FAIL {fn.__name__}: {e}")
                if not isinstance(e, Failure):
                    traceback.print_exc()
                if os.environ.get("HUT_TUI_HOLD"):
                    print(f"holding: tmux -L {tmux.sock}", flush=True)
                    time.sleep(int(os.environ["HUT_TUI_HOLD"]))
                # The cases build on each other: the rest cannot pass.
                FAILED += len(cases) - cases.index(fn) - 1
                print(f"not run: {[c.__name__ for c in cases[cases.index(fn) + 1:]]}")
                break
    except Exception as e:  # noqa: BLE001
        FAILED += 1
        print(f"FAIL set-up: {e}")
        traceback.print_exc()
    finally:
        tmux.kill()
        if space is not None:
            space.stop()
        relay.cleanup()
        for h in homes:
            shutil.rmtree(h, ignore_errors=True)
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
