"""Two relayd on one PostgreSQL database ([store] url) are replicas of one
relay: an account, a session and a registered space made on one are seen by
the other, a token minted by either verifies with the key set both publish,
and a logout on one ends the session on both. Two relays started at once on an
empty database both come up (one of them creates the tables); a database of a
newer schema is refused with a clear message. Skipped without PostgreSQL or
relayd."""
import os
import shutil
import sys
import threading

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import relayd  # noqa: E402
from relayd import Relayd, ISSUER  # noqa: E402
import hutspace  # noqa: E402
from hutspace import check  # noqa: E402

relays = []


def replica(url, keys_from=None):
    """A relayd on `url`; with `keys_from`, a copy of that relay's signing
    keys in its data folder first (replicas share their keys)."""
    r = Relayd(store_url=url)
    if keys_from is not None:
        os.makedirs(r.data_dir, mode=0o700, exist_ok=True)
        shutil.copytree(os.path.join(keys_from.data_dir, "keys"), os.path.join(r.data_dir, "keys"))
    relays.append(r)
    return r


def jwks(r):
    status, _, body = r.call("GET", "/.well-known/jwks.json")
    check(status == 200, f"jwks: {status}")
    return body


def verified(token, key_set, space_id):
    header = jwt.get_unverified_header(token)
    key = next(k for k in key_set["keys"] if k["kid"] == header["kid"])
    public = jwt.PyJWK(key).key
    return jwt.decode(token, public, algorithms=["EdDSA"], audience=space_id, issuer=ISSUER)


def accounts_sessions_and_spaces_are_shared():
    url = relayd.pg_server().new_database()
    a = replica(url).start()
    b = replica(url, keys_from=a).start()
    check(jwks(a) == jwks(b), f"the replicas publish different key sets: {jwks(a)} {jwks(b)}")

    status, _, body = a.register("replica_user", name="Replica User")
    check(status == 201, f"sign-up on A: {status} {body}")
    status, _, body = b.register("replica_user")
    check(status == 409, f"the same username on B: {status} {body}")

    session = a.login("replica_user")
    status, _, me = b.call("GET", "/api/v1/me", session=session)
    check(status == 200 and me.get("username") == "replica_user" and me.get("name") == "Replica User",
          f"A's session on B: {status} {me}")
    # A login on B works for the account made on A.
    b.login("replica_user")

    space_id = a.register_space(session, name="Shared space", url="http://127.0.0.1:9/")
    status, _, listed = b.call("GET", "/api/v1/spaces")
    check(status == 200 and any(s.get("id") == space_id for s in listed), f"B's directory: {status} {listed}")
    status, _, one = b.call("GET", f"/api/v1/spaces/{space_id}")
    check(status == 200 and one.get("name") == "Shared space", f"B's entry: {status} {one}")

    # A token minted on B verifies with the key set A publishes.
    status, _, minted = b.call("POST", f"/api/v1/spaces/{space_id}/tokens", session=session)
    check(status == 200, f"mint on B: {status} {minted}")
    claims = verified(minted["token"], jwks(a), space_id)
    check(claims["sub"] == me["id"], f"claims {claims}")

    # A change on B shows on A; a logout on B ends the session on A.
    b.set_space_url(session, space_id, "http://127.0.0.1:10/")
    status, _, one = a.call("GET", f"/api/v1/spaces/{space_id}")
    check(status == 200 and one.get("url") == "http://127.0.0.1:10/", f"A after B's change: {status} {one}")
    status, _, _ = b.call("DELETE", "/api/v1/sessions", session=session)
    check(status == 204, f"logout on B: {status}")
    status, _, _ = a.call("GET", "/api/v1/me", session=session)
    check(status == 401, f"the session after logout, on A: {status}")


def two_relays_start_at_once_on_an_empty_database():
    url = relayd.pg_server().new_database()
    first = replica(url)
    second = replica(url)
    errors = []

    def start(r):
        try:
            r.start()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=start, args=(r,)) for r in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors, f"a relay did not start: {errors}")
    status, _, body = first.register("early_user")
    check(status == 201, f"sign-up on the first: {status} {body}")
    second.login("early_user")
    rows = relayd.psql(url, "SELECT version FROM hut_relay_schema")
    check(rows == [["2"]], f"schema version rows {rows}")


def a_newer_schema_is_refused():
    url = relayd.pg_server().new_database()
    relayd.psql(url, "CREATE TABLE hut_relay_schema (version BIGINT NOT NULL);"
                     " INSERT INTO hut_relay_schema VALUES (99)")
    r = replica(url)
    try:
        r.start()
        check(False, "relayd started on a database of a newer schema")
    except RuntimeError as e:
        check("newer than this build knows" in str(e), f"message: {e}")
    check(r.proc.wait(30) != 0, "exit status")


def main():
    relayd.pg_server()
    try:
        return hutspace.run_cases([accounts_sessions_and_spaces_are_shared,
                                   two_relays_start_at_once_on_an_empty_database, a_newer_schema_is_refused])
    finally:
        for r in relays:
            r.cleanup()


if __name__ == "__main__":
    sys.exit(main())
