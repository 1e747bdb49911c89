"""The OpenAPI documents (docs/openapi/space-admin.json, docs/openapi/relay.json)
against the code, both ways, on real spaced and relayd processes.

- Both documents are valid OpenAPI 3.1 (the official schema, through the npm
  package @seriousme/openapi-schema-validator), and a broken one is refused.
- The route tables the dispatchers use (printed by openapi_routes) hold
  exactly the documented operations.
- Each daemon serves its document at GET /api/v1/openapi.json, the bytes of
  the file in the tree (the space's only with the admin token).
- Every documented operation is served (probed: not the 404/405 of an
  unknown route), and its answer fits the document.
- Methods and paths the documents do not have are refused by the table
  (404/405), so a route cannot be served without being in the table.
- The answer checker itself refuses a body, status, type or path that does
  not fit.
Ends with "N passed, N failed".
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "buspy"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import hutspace  # noqa: E402
import openapi_check  # noqa: E402
from hutspace import check  # noqa: E402
from relayd import Relayd  # noqa: E402

SOURCE = os.environ.get("HUT_SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))
DOC_FILES = {api: os.path.join(SOURCE, "docs", "openapi", name) for api, name in openapi_check.DOCS.items()}
METHODS = ("get", "put", "post", "delete", "patch")
SAMPLES = {"file": "api.js"}  # path parameters that need a real value to reach their handler

space = None
relay = None
relay_session = None


def documented(api):
    doc = openapi_check.document(api)
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in METHODS if m in item}


def fill(path, value="nope"):
    out = []
    for seg in path.split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            seg = SAMPLES.get(seg[1:-1], value)
        out.append(seg)
    return "/".join(out)


def call(api, method, path, body=None, raw=None, headers=None, auth=True):
    """(status, headers, bytes); every answer goes through openapi_check."""
    import urllib.error
    import urllib.request
    h = dict(headers or {})
    if api == "space-admin":
        base = space.admin
        if auth:
            h["Authorization"] = f"Bearer {space.admin_token}"
    else:
        base = relay.url
        if auth and relay_session:
            h["Authorization"] = f"Bearer {relay_session}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as resp:
            answer = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        answer = e.code, dict(e.headers), e.read()
    openapi_check.observe(method, base + path, *answer)
    return answer


def not_served(status, raw):
    """The refusal of a route the table does not have."""
    if status == 405:
        return True
    if status != 404:
        return False
    try:
        return json.loads(raw)["error"]["message"] == "no such route"
    except (ValueError, KeyError, TypeError):
        return False


# --- cases ---

def test_documents_are_valid_openapi_3_1():
    node = os.environ.get("HUT_NODE") or "node"
    lint = os.path.join(HERE, "lint.mjs")
    broken = os.path.join(space.tmp, "broken.json")
    doc = json.load(open(DOC_FILES["relay"]))
    del doc["info"]
    doc["paths"]["/api/v1/me"]["get"]["responses"]["200"] = {"content": 5}
    with open(broken, "w") as f:
        json.dump(doc, f)
    files = [DOC_FILES["space-admin"], DOC_FILES["relay"], broken]
    out = subprocess.run([node, lint, *files], capture_output=True, text=True, timeout=120, cwd=SOURCE)
    check(out.returncode == 0, f"lint.mjs failed (is node_modules installed? run scripts/setup.sh): {out.stderr}")
    results = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    check(len(results) == 3, f"lint output: {out.stdout}")
    for r in results[:2]:
        check(r["valid"] and r["version"] == "3.1", f"{r['file']} is not valid OpenAPI 3.1: {r['errors']}")
    check(not results[2]["valid"], "a document without info and with a malformed response was accepted")
    for api, path in DOC_FILES.items():
        check(json.load(open(path))["openapi"].startswith("3.1."), f"{api}: openapi is not 3.1.x")


def test_route_tables_match_documents():
    out = subprocess.run([os.environ.get("HUT_OPENAPI_ROUTES") or
                          os.path.join(hutspace.build_root(), "test", "openapi", "openapi_routes")],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, f"openapi_routes: {out.returncode} {out.stderr}")
    tables = {"space-admin": set(), "relay": set()}
    for line in out.stdout.splitlines():
        api, method, pattern = line.split()
        tables[api].add((method, pattern))
    for api, served in tables.items():
        check(len(served) >= 10, f"{api}: the route table looks empty: {served}")
        docd = documented(api)
        missing = sorted(served - docd)
        extra = sorted(docd - served)
        check(not missing, f"{api}: served but not in docs/openapi: {missing}")
        check(not extra, f"{api}: in docs/openapi but not served: {extra}")


def test_space_serves_its_document_behind_the_admin_token():
    status, _, raw = call("space-admin", "GET", "/api/v1/openapi.json", auth=False)
    check(status == 401, f"without the admin token: {status}")
    status, headers, raw = call("space-admin", "GET", "/api/v1/openapi.json")
    check(status == 200, f"with the admin token: {status}")
    check(openapi_check.media_type(headers) == "application/json", f"type: {headers}")
    with open(DOC_FILES["space-admin"], "rb") as f:
        check(raw == f.read(), "the served document is not docs/openapi/space-admin.json")
    pub, _, _ = hutspace.http("GET", space.public + "/api/v1/openapi.json")
    check(pub == 404, f"the public listener answered {pub} for the management document")


def test_relay_serves_its_document_publicly():
    status, headers, raw = call("relay", "GET", "/api/v1/openapi.json", auth=False)
    check(status == 200, f"GET /api/v1/openapi.json: {status}")
    check(openapi_check.media_type(headers) == "application/json", f"type: {headers}")
    with open(DOC_FILES["relay"], "rb") as f:
        check(raw == f.read(), "the served document is not docs/openapi/relay.json")


def probe_all(api):
    ops = sorted(documented(api), key=lambda o: (o == ("DELETE", "/api/v1/sessions"), o))
    doc = openapi_check.document(api)
    for method, path in ops:
        op = doc["paths"][path][method.lower()]
        content = (op.get("requestBody") or {}).get("content", {})
        body = raw = headers = None
        if "application/json" in content:
            body = {}
        elif "image/png" in content:
            raw, headers = b"not an image", {"Content-Type": "image/png"}
        elif "application/x-www-form-urlencoded" in content:
            raw, headers = b"", {"Content-Type": "application/x-www-form-urlencoded"}
        url = fill(path)
        status, _, answer = call(api, method, url, body=body, raw=raw, headers=headers)
        check(not not_served(status, answer), f"{api}: documented {method} {path} is not served "
                                               f"({method} {url}: {status} {answer[:200]!r})")


def test_every_documented_space_route_is_served():
    probe_all("space-admin")


def test_every_documented_relay_route_is_served():
    probe_all("relay")


def refusals(api):
    doc = openapi_check.document(api)
    for path, item in doc["paths"].items():
        url = fill(path)
        for m in METHODS:
            if m in item:
                continue
            status, _, raw = call(api, m.upper(), url, body={} if m != "get" else None)
            check(status == 405, f"{api}: undocumented {m.upper()} {path} answered {status} {raw[:200]!r}")
        for extra in (url.rstrip("/") + "/more", url.rstrip("/") + "/x/y"):
            if openapi_check.match_path(doc, extra):
                continue  # another documented path
            status, _, raw = call(api, "GET", extra)
            check(status == 404 and not_served(status, raw),
                  f"{api}: undocumented GET {extra} answered {status} {raw[:200]!r}")
    for path in ("/api/v1/nothing", "/api/v2/rooms", "/api", "/admin", "/api/v1/openapi.yaml"):
        status, _, raw = call(api, "GET", path)
        check(not_served(status, raw), f"{api}: GET {path} answered {status} {raw[:200]!r}")


def test_undocumented_space_routes_are_refused():
    refusals("space-admin")


def test_undocumented_relay_routes_are_refused():
    refusals("relay")


def test_checker_refuses_what_does_not_fit():
    good = json.dumps([{"room": "r", "private": False, "topic": "", "members": 1, "online": 0,
                        "last_seq": 3}]).encode()
    jtype = {"Content-Type": "application/json"}
    openapi_check.check("space-admin", "GET", "/api/v1/rooms", 200, jtype, good)
    bad = [
        ("a field of the wrong type", "space-admin", "GET", "/api/v1/rooms", 200, jtype,
         json.dumps([{"room": "r", "private": "no", "topic": "", "members": 1, "online": 0, "last_seq": 3}])),
        ("a missing field", "relay", "GET", "/api/v1/me", 200, jtype, json.dumps({"id": "u_1", "name": "n"})),
        ("a status not listed", "relay", "GET", "/api/v1/me", 418, jtype,
         json.dumps({"error": {"code": "teapot", "message": "m"}})),
        ("an undocumented path answered", "relay", "GET", "/api/v1/secret", 200, jtype, "{}"),
        ("an undocumented method answered", "space-admin", "PATCH", "/api/v1/rooms", 200, jtype, "[]"),
        ("another media type", "relay", "GET", "/.well-known/jwks.json", 200, {"Content-Type": "text/plain"},
         '{"keys":[]}'),
        ("a body where there is none", "space-admin", "DELETE", "/api/v1/rooms/r", 204, {}, "x"),
        ("an error body that is not the error shape", "relay", "GET", "/api/v1/users/u", 404, jtype,
         json.dumps({"error": "nope"})),
    ]
    for what, api, method, path, status, headers, body in bad:
        try:
            openapi_check.check(api, method, path, status, headers, body.encode())
        except openapi_check.OpenApiMismatch:
            continue
        check(False, f"the checker accepted {what}")


CASES = [
    test_documents_are_valid_openapi_3_1,
    test_route_tables_match_documents,
    test_space_serves_its_document_behind_the_admin_token,
    test_relay_serves_its_document_publicly,
    test_every_documented_space_route_is_served,
    test_every_documented_relay_route_is_served,
    test_undocumented_space_routes_are_refused,
    test_undocumented_relay_routes_are_refused,
    test_checker_refuses_what_does_not_fit,
]


def setup():
    global space, relay, relay_session
    space = hutspace.Spaced()
    space.start()
    relay = Relayd().start()
    status, _, answer = relay.register("openapi", "correct horse")
    if status != 201:
        raise RuntimeError(f"register: {status} {answer!r}")
    relay_session = relay.login("openapi", "correct horse")


def teardown():
    if relay:
        relay.cleanup()
    if space:
        space.stop()


if __name__ == "__main__":
    sys.exit(hutspace.run_cases(CASES, setup=setup, teardown=teardown))
