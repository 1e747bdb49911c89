"""What a hostile user can try against relayd, as black-box tests against real
relayd (and spaced where the attack ends at a space): forged cross-site calls
with the session cookie, repointing a space's URL to steal tokens, claiming a
space id, guessing passwords, starving the relay with password hashes, minting
tokens without end, and the cookie's Secure flag under https."""
import asyncio
import html
import json
import os
import re
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from relayd import ISSUER, ROOMY_LIMITS, Relayd  # noqa: E402
import hutspace  # noqa: E402

PASSED = 0
FAILED = 0
CASES = []
PASSWORD = "correct horse"
EVIL = "http://127.0.0.1:9666"  # a page of the same host on another port: same site, another origin


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def case(fn):
    CASES.append(fn)
    return fn


relay = None
counter = [0]


def fresh(prefix="sec"):
    counter[0] += 1
    return f"{prefix}{counter[0]}"


def new_user(r=None, name=None):
    r = r or relay
    username = fresh()
    status, _, answer = r.register(username, PASSWORD, name=name)
    check(status == 201, f"register {username}: {status} {answer}")
    return username, answer["user"], r.login(username, PASSWORD)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def raw(method, path, body=None, headers=None, r=None):
    """(status, headers, text) without following redirects; body is bytes."""
    r = r or relay
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(r.url + path, data=body, method=method, headers=dict(headers or {}))
    try:
        with opener.open(req, timeout=60) as resp:
            status, rh, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, rh, data = e.code, e.headers, e.read()
    hutspace.openapi_check.observe(method, r.url + path, status, dict(rh), data)
    return status, rh, data.decode("utf-8", "replace")


def cookie(session):
    return {"Cookie": f"hut_session={session}"}


def error_code(text):
    try:
        return json.loads(text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def directory():
    status, _, answer = relay.call("GET", "/api/v1/spaces")
    check(status == 200, f"directory: {status}")
    return {s["id"]: s for s in answer}


def login_query(space, ret):
    return "/login?" + urllib.parse.urlencode({"space": space, "return": ret})


def hidden_fields(page):
    return {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">', page)}


def form(fields):
    return urllib.parse.urlencode(fields).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# ---- 1. cross-site request forgery on the JSON API ----

@case
def cookie_calls_from_another_origin_are_refused():
    username, user, session = new_user()
    sid = relay.register_space(session, url="http://127.0.0.1:9123/")
    before = directory()
    # The attack of the report: a page on another port posts text/plain with the cookie.
    body = json.dumps({"name": "Mine", "url": EVIL + "/"}).encode()
    status, _, text = raw("POST", "/api/v1/spaces", body,
                          dict(cookie(session), **{"Content-Type": "text/plain", "Origin": EVIL}))
    check(status == 403 and error_code(text) == "forbidden", f"cross-origin text/plain POST: {status} {text}")
    # The cookie alone, without Origin, is not enough either, whatever the type.
    for ctype in ["text/plain", "application/json"]:
        status, _, text = raw("POST", "/api/v1/spaces", body, dict(cookie(session), **{"Content-Type": ctype}))
        check(status == 403, f"cookie without Origin ({ctype}): {status} {text}")
    patch = json.dumps({"url": EVIL + "/"}).encode()
    for headers in [{"Origin": EVIL, "Content-Type": "application/json"}, {"Content-Type": "application/json"},
                    {"Origin": "null", "Content-Type": "application/json"},
                    {"Origin": ISSUER + ":8443", "Content-Type": "application/json"}]:
        status, _, text = raw("PATCH", f"/api/v1/spaces/{sid}", patch, dict(cookie(session), **headers))
        check(status == 403, f"PATCH with {headers}: {status} {text}")
    check(directory() == before, "a refused call changed the directory")
    # Other state-changing routes with the cookie: a token, the profile, logout.
    status, _, _ = raw("POST", f"/api/v1/spaces/{sid}/tokens", None, dict(cookie(session), Origin=EVIL))
    check(status == 403, f"a token for another origin: {status}")
    status, _, _ = raw("PATCH", "/api/v1/me", json.dumps({"name": "Pwned"}).encode(),
                       dict(cookie(session), **{"Content-Type": "text/plain", "Origin": EVIL}))
    check(status == 403, f"profile from another origin: {status}")
    status, _, _ = raw("DELETE", "/api/v1/sessions", None, cookie(session))
    check(status == 403, f"logout by cookie without Origin: {status}")
    status, _, me = relay.call("GET", "/api/v1/me", session=session)
    check(status == 200 and me["name"] == username, f"the session and name survived: {status} {me}")
    # Login CSRF: logging the browser into another account from another origin.
    status, rh, _ = raw("POST", "/api/v1/sessions", json.dumps({"username": username, "password": PASSWORD}).encode(),
                        {"Content-Type": "text/plain", "Origin": EVIL})
    check(status == 403 and not rh.get("Set-Cookie"), f"login from another origin: {status}")

    # The relay's own origin with JSON is fine with the cookie; the wrong type is not.
    own = dict(cookie(session), **{"Origin": ISSUER, "Content-Type": "application/json"})
    status, _, text = raw("PATCH", f"/api/v1/spaces/{sid}", json.dumps({"name": "Renamed"}).encode(), own)
    check(status == 200 and json.loads(text)["name"] == "Renamed", f"own origin: {status} {text}")
    status, _, text = raw("PATCH", f"/api/v1/spaces/{sid}", json.dumps({"name": "X"}).encode(),
                          dict(own, **{"Content-Type": "text/plain"}))
    check(status == 415, f"own origin, text/plain: {status} {text}")
    png = bytes.fromhex("89504e470d0a1a0a0000000d494844520000000100000001080200000090775"
                        "3de0000000c4944415408d763f8ffff3f0005fe02fea7d6a4f00000000049454e44ae426082")
    status, _, text = raw("PUT", "/api/v1/me/avatar", png, dict(own, **{"Content-Type": "image/png"}))
    check(status == 200, f"avatar with the cookie, own origin, image/png: {status} {text}")
    status, _, text = raw("PUT", "/api/v1/me/avatar", png, own)
    check(status == 415, f"avatar with the cookie as application/json: {status} {text}")
    # Bearer calls cannot be forged by a page: any Origin, any type.
    status, _, text = raw("PATCH", f"/api/v1/spaces/{sid}", json.dumps({"name": "By bearer"}).encode(),
                          {"Authorization": f"Bearer {session}", "Origin": EVIL, "Content-Type": "text/plain"})
    check(status == 200, f"bearer: {status} {text}")
    # Reads stay open to the cookie.
    status, _, _ = raw("GET", "/api/v1/me", None, cookie(session))
    check(status == 200, f"GET with the cookie: {status}")


# ---- a real spaced trusting the relay ----

class RelaySpaced(hutspace.Spaced):
    def __init__(self, r, space_id):
        super().__init__(space_id=space_id)
        self.relay = r

    def config_text(self):
        return super().config_text().replace(
            "[auth]\n", f'[auth]\nrelay_issuer = "{self.relay.issuer}"\n'
                        f'relay_jwks = "{self.relay.url}/.well-known/jwks.json"\n')


async def bus_answer(space, token):
    ws = await asyncio.wait_for(websockets.connect(space.bus_url, subprotocols=["hutopia.v1"],
                                                   extra_headers={"Authorization": f"Bearer {token}"},
                                                   ping_interval=None, close_timeout=2, open_timeout=10), 10)
    try:
        for _ in range(10):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg.get("op") == "welcome":
                return "welcome", msg
    except websockets.exceptions.ConnectionClosed:
        return ws.close_code, None
    finally:
        await ws.close()
    return None, None


def admitted(space, token):
    result, msg = asyncio.run(bus_answer(space, token))
    return result == "welcome", result, msg


def token_of(location):
    return location.split("#token=", 1)[1] if location and "#token=" in location else None


# ---- 1. the repoint attack, end to end ----

@case
def a_moved_space_needs_a_fresh_confirmation():
    _, _, owner = new_user()
    sid = relay.register_space(owner, name="Real space")
    space = RelaySpaced(relay, sid)
    space.start()
    try:
        relay.set_space_url(owner, sid, space.public)
        home = space.public + "/"
        # A member signs in through the relay's page: that confirms the space's address.
        victim, vuser, _ = new_user(name="Victim")
        status, _, page = raw("GET", login_query(sid, home))
        check(status == 200 and space.public in page, f"the login page shows the address: {status}")
        fields = dict(hidden_fields(page), username=victim, password=PASSWORD, action="login")
        status, rh, text = raw("POST", "/login", form(fields), dict(FORM, Origin=ISSUER))
        check(status == 302 and rh["Location"].startswith(home + "#token="), f"form login: {status} {text[:200]}")
        ok, result, msg = admitted(space, token_of(rh["Location"]))
        check(ok and msg["user"]["id"] == vuser["id"], f"the real space admits the member: {result}")
        session = rh["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
        status, rh, _ = raw("GET", login_query(sid, home), None, cookie(session))
        check(status == 302 and token_of(rh["Location"]), f"confirmed address: straight in: {status}")

        # The space's registered URL changes (here by its owner's account, as
        # a forged call or a stolen owner session would do it).
        relay.set_space_url(owner, sid, EVIL)
        evil_home = EVIL + "/"
        status, rh, page = raw("GET", login_query(sid, evil_home), None, cookie(session))
        check(status == 200 and "Location" not in rh, f"after the move: no redirect ({status} {rh.get('Location')})")
        check("#token=" not in page and "eyJ" not in page, "the page holds no token")
        check(EVIL in page and space.public in page and 'value="confirm"' in page,
              "the page names the new and the old address and asks to confirm")
        fields = dict(hidden_fields(page), action="confirm")
        check(fields.get("url") == EVIL and fields.get("tag"), f"the form: {fields}")
        # A forged confirmation: no Origin, another origin, a wrong tag, another session's tag.
        for headers in [{}, {"Origin": EVIL}, {"Origin": "null"}]:
            status, rh, _ = raw("POST", "/login", form(fields), dict(FORM, **cookie(session), **headers))
            check(status == 403 and "Location" not in rh, f"confirm with {headers}: {status}")
        bad = dict(fields, tag="0" * len(fields["tag"]))
        status, rh, _ = raw("POST", "/login", form(bad), dict(FORM, **cookie(session), Origin=ISSUER))
        check(status == 403 and "Location" not in rh, f"a wrong tag: {status}")
        _, _, other = new_user()
        status, rh, _ = raw("POST", "/login", form(fields), dict(FORM, **cookie(other), Origin=ISSUER))
        check(status == 403 and "Location" not in rh, f"another session's tag: {status}")
        status, rh, _ = raw("POST", "/login", form(fields), dict(FORM, Origin=ISSUER))
        check(status == 401 and "Location" not in rh, f"no session: {status}")
        # The address moves again while the page is open: the old page's confirmation is refused.
        relay.set_space_url(owner, sid, EVIL + "/")
        status, rh, page2 = raw("POST", "/login", form(fields), dict(FORM, **cookie(session), Origin=ISSUER))
        check(status == 409 and "Location" not in rh and 'value="' + EVIL + '/"' in page2, f"stale page: {status}")
        relay.set_space_url(owner, sid, EVIL)
        status, rh, _ = raw("GET", login_query(sid, evil_home), None, cookie(session))
        check(status == 200 and "Location" not in rh, f"still unconfirmed: {status}")
        # The user's own confirmation goes through.
        status, rh, _ = raw("POST", "/login", form(fields), dict(FORM, **cookie(session), Origin=ISSUER))
        check(status == 302 and rh["Location"].startswith(evil_home + "#token="), f"confirmed: {status}")
        status, rh, _ = raw("GET", login_query(sid, evil_home), None, cookie(session))
        check(status == 302 and token_of(rh["Location"]), f"then straight in: {status}")
        # Back at the old address: that needs a confirmation again.
        relay.set_space_url(owner, sid, space.public)
        status, rh, _ = raw("GET", login_query(sid, home), None, cookie(session))
        check(status == 200 and "Location" not in rh, f"moved back: asks again: {status}")
    finally:
        space.stop()


@case
def a_first_visit_with_a_session_asks_before_sending_a_token():
    _, _, owner = new_user()
    sid = relay.register_space(owner, name="Other space", url="http://127.0.0.1:9124/")
    _, _, session = new_user()  # signed in through the API, never on this space's page
    status, rh, page = raw("GET", login_query(sid, "http://127.0.0.1:9124/"), None, cookie(session))
    check(status == 200 and "Location" not in rh and 'value="confirm"' in page and "Other space" in page,
          f"first visit: {status}")
    check("changed since" not in page, "a first visit is not called a move")


# ---- 2. space id squatting ----

@case
def no_account_can_claim_a_space_id():
    """A space runs with id `victim-space` and trusts the relay; an account tries to get
    tokens with that `aud`, by claiming the id or through a space of its own."""
    space = RelaySpaced(relay, "victim-space")
    space.start()
    try:
        _, _, attacker = new_user()
        status, _, answer = relay.call("POST", "/api/v1/spaces", {"id": "victim-space", "name": "Mine",
                                                                 "url": EVIL + "/"}, session=attacker)
        check(status == 400, f"claiming the id: {status} {answer}")
        check("victim-space" not in directory(), "the id was registered")
        for path in ["/api/v1/spaces/victim-space/tokens"]:
            status, _, answer = relay.call("POST", path, session=attacker)
            check(status == 404, f"a token for the unregistered id: {status} {answer}")
        status, rh, _ = raw("GET", login_query("victim-space", EVIL + "/"), None, cookie(attacker))
        check(status == 404 and "Location" not in rh, f"login page for the id: {status}")
        status, _, answer = relay.call("PATCH", "/api/v1/spaces/victim-space", {"url": EVIL + "/"},
                                       session=attacker)
        check(status == 404, f"PATCH of the id: {status}")
        # A space of its own gets a random id, whose tokens the victim space refuses.
        own = relay.register_space(attacker, url=EVIL + "/")
        check(own != "victim-space" and len(own) >= 22, f"assigned id {own}")
        status, _, answer = relay.call("POST", f"/api/v1/spaces/{own}/tokens", session=attacker)
        check(status == 200, f"a token for its own space: {status}")
        ok, result, _ = admitted(space, answer["token"])
        check(not ok and result == 4001, f"the victim space admitted a token for another space: {result}")
        # And the registered id of another account's space cannot be taken over.
        _, _, owner = new_user()
        theirs = relay.register_space(owner, url="http://127.0.0.1:9125/")
        status, _, _ = relay.call("PATCH", f"/api/v1/spaces/{theirs}", {"url": EVIL + "/"}, session=attacker)
        check(status == 403, f"another owner's space: {status}")
        check(directory()[theirs]["url"] == "http://127.0.0.1:9125/", "the URL changed")
    finally:
        space.stop()


# ---- 8. login throttling and the password-hash lane ----

def limited_relay(**limits):
    return Relayd(limits=dict(ROOMY_LIMITS, **limits)).start()


def login_status(r, username, password, peer_headers=None):
    status, headers, answer = r.call("POST", "/api/v1/sessions", {"username": username, "password": password},
                                     headers=peer_headers)
    return status, headers, answer


@case
def wrong_passwords_are_throttled_per_account():
    # 3 at once, then one every 4 s: wide enough for slow hashes on a loaded machine.
    r = limited_relay(login_attempts_per_account=3, login_window=12)
    try:
        username, _, _ = new_user(r)
        other, _, owner = new_user(r)
        sid = r.register_space(owner, url="http://127.0.0.1:9127/")
        statuses = [login_status(r, username, "wrong password")[0] for _ in range(3)]
        check(statuses == [401, 401, 401], f"the budget: {statuses}")
        status, headers, answer = login_status(r, username, "wrong password")
        retry = headers.get("Retry-After")
        check(status == 429 and retry and retry.isdigit() and 1 <= int(retry) <= 12,
              f"over the budget: {status} Retry-After {retry!r} {answer}")
        check(answer["error"]["code"] == "too_many_attempts", f"{answer}")
        status, _, _ = login_status(r, username, PASSWORD)
        check(status == 429, f"the right password during the wait: {status}")
        status, headers, page = raw("POST", "/login", form({"space": sid, "return": "http://127.0.0.1:9127/",
                                                            "url": "http://127.0.0.1:9127/", "username": username,
                                                            "password": PASSWORD, "action": "login"}), FORM, r=r)
        check(status == 429 and headers.get("Retry-After", "").isdigit() and "Location" not in headers,
              f"the login page too: {status} {page[:200]}")
        status, _, _ = login_status(r, other, PASSWORD)
        check(status == 201, f"another account is not held back: {status}")
        # An unknown username is throttled the same way (nothing tells it apart).
        ghost = fresh("ghost")
        statuses = [login_status(r, ghost, "whatever pw")[0] for _ in range(4)]
        check(statuses == [401, 401, 401, 429], f"unknown username: {statuses}")
        time.sleep(int(retry) + 0.3)
        status, _, answer = login_status(r, username, PASSWORD)
        check(status == 201, f"the right password after the wait: {status} {answer}")
        # A success gives the account its whole budget back.
        statuses = [login_status(r, username, "wrong password")[0] for _ in range(3)]
        check(statuses == [401, 401, 401], f"after a success: {statuses}")
    finally:
        r.cleanup()


@case
def logins_are_throttled_per_address_and_sign_ups_too():
    r = limited_relay(login_attempts_per_address=4, login_window=600, accounts_per_address=3)
    try:
        users = []
        for _ in range(3):
            username = fresh()
            status, _, _ = r.register(username, PASSWORD)
            check(status == 201, f"register: {status}")
            users.append(username)
        status, headers, answer = r.register(fresh(), PASSWORD)
        check(status == 429 and headers.get("Retry-After", "").isdigit() and
              answer["error"]["code"] == "too_many_accounts", f"a fourth account: {status} {answer}")
        statuses = [login_status(r, u, "wrong password")[0] for u in users + [fresh("ghost")]]
        check(statuses == [401, 401, 401, 401], f"four logins from one address: {statuses}")
        status, headers, _ = login_status(r, users[0], PASSWORD)
        check(status == 429 and headers.get("Retry-After", "").isdigit(), f"a fifth: {status}")
    finally:
        r.cleanup()


@case
def a_burst_of_logins_does_not_starve_other_routes():
    r = limited_relay(hash_workers=1, hash_queue=4)
    try:
        username, _, _ = new_user(r)
        results = []
        lock = threading.Lock()

        def attempt(i):
            status, headers, answer = login_status(r, f"nobody{i}", "wrong password")
            with lock:
                results.append((status, headers.get("Retry-After")))

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(120)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        slowest = 0.0
        for _ in range(5):
            start = time.monotonic()
            status, _, _ = r.call("GET", "/.well-known/jwks.json")
            slowest = max(slowest, time.monotonic() - start)
            check(status == 200, f"jwks: {status}")
            time.sleep(0.05)
        for t in threads:
            t.join(120)
        check(slowest < 1.5, f"another route waited {slowest:.2f} s behind the password hashes")
        statuses = sorted({s for s, _ in results})
        check(len(results) == 120 and set(statuses) <= {401, 503} and 503 in statuses,
              f"burst answers: {statuses} ({len(results)})")
        check(all(ra == "1" for s, ra in results if s == 503), "503 carries Retry-After")
        check(sum(1 for s, _ in results if s == 401) >= 5, "the queue was served")
        status, _, _ = login_status(r, username, PASSWORD)
        check(status == 201, f"the right password afterwards: {status}")
    finally:
        r.cleanup()


# ---- token minting, and the space's replay cache ----

@case
def token_minting_is_budgeted_per_user():
    """Each relay token a space admits stays in its replay cache until exp + leeway:
    unbounded minting would let a few accounts fill it. One user gets tokens_per_user
    per token_window, through the API and the login page together."""
    r = limited_relay(tokens_per_user=5, token_window=10)
    try:
        _, _, owner = new_user(r)
        sid = r.register_space(owner, url="http://127.0.0.1:9126/")
        _, _, session = new_user(r)
        _, _, other = new_user(r)
        for i in range(5):
            status, _, answer = r.call("POST", f"/api/v1/spaces/{sid}/tokens", session=session)
            check(status == 200, f"token {i + 1}: {status} {answer}")
        status, headers, answer = r.call("POST", f"/api/v1/spaces/{sid}/tokens", session=session)
        retry = headers.get("Retry-After", "")
        check(status == 429 and retry.isdigit() and answer["error"]["code"] == "too_many_tokens",
              f"a sixth: {status} {retry!r} {answer}")
        status, _, _ = r.call("POST", f"/api/v1/spaces/{sid}/tokens", session=other)
        check(status == 200, f"another user: {status}")
        time.sleep(int(retry) + 0.3)
        status, _, _ = r.call("POST", f"/api/v1/spaces/{sid}/tokens", session=session)
        check(status == 200, f"after the wait: {status}")
    finally:
        r.cleanup()


@case
def spaces_per_account_are_bounded():
    r = limited_relay(spaces_per_user=2)
    try:
        _, _, session = new_user(r)
        for _ in range(2):
            r.register_space(session)
        status, _, answer = r.call("POST", "/api/v1/spaces", {"name": "Third", "url": "http://127.0.0.1:9/"},
                                   session=session)
        check(status == 403 and answer["error"]["code"] == "too_many_spaces", f"{status} {answer}")
    finally:
        r.cleanup()


# ---- 11. the cookie's Secure flag ----

@case
def the_session_cookie_is_secure_under_https():
    r = Relayd(issuer="https://relay.test").start()
    try:
        username, _, _ = new_user(r)
        _, headers, _ = r.call("POST", "/api/v1/sessions", {"username": username, "password": PASSWORD})
        flags = [f.strip() for f in headers.get("Set-Cookie", "").split(";")]
        check("Secure" in flags and "HttpOnly" in flags, f"https issuer: {flags}")
        session = r.login(username, PASSWORD)
        _, headers, _ = r.call("DELETE", "/api/v1/sessions", session=session)
        check("Secure" in headers.get("Set-Cookie", ""), f"the clearing cookie too: {headers.get('Set-Cookie')}")
    finally:
        r.cleanup()
    username, _, _ = new_user()
    _, headers, _ = relay.call("POST", "/api/v1/sessions", {"username": username, "password": PASSWORD})
    check("Secure" not in headers.get("Set-Cookie", ""), "an http issuer: no Secure (the browser would drop it)")


def main():
    global relay, PASSED, FAILED
    relay = Relayd().start()
    try:
        for fn in CASES:
            try:
                fn()
                PASSED += 1
                print(f"ok   {fn.__name__}")
            except Exception as e:  # noqa: BLE001
                FAILED += 1
                print(f"FAIL {fn.__name__}: {e}")
                if not isinstance(e, Failure):
                    traceback.print_exc()
    finally:
        relay.cleanup()
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
