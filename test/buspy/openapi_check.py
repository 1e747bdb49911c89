"""Checks HTTP answers of the management API and of the relay against their
OpenAPI documents (docs/openapi/), with python3-jsonschema.

The test helpers (hutspace.http, relayd.Relayd.call) hand every answer of a
registered base URL to observe(); when HUT_OPENAPI_CHECK=1 (set by meson for
the contract tests), an answer that the document does not describe raises
hutspace.Failure: a path or method the document lacks (unless the answer is
the 404/405 of a route that is not served), a status the operation does not
list, a media type it does not list, a body where it has none, or a body
that does not validate against the schema.
"""
import atexit
import json
import os
import sys
import threading
import urllib.parse

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = {"space-admin": "space-admin.json", "relay": "relay.json"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_bases = {}  # base URL -> API name
_lock = threading.Lock()
_docs = {}
checked = {"answers": 0}
mismatches = []  # every mismatch observe() raised, in case a test swallowed one


class OpenApiMismatch(AssertionError):
    pass


def enabled():
    return os.environ.get("HUT_OPENAPI_CHECK") == "1"


def source_root():
    return os.environ.get("HUT_SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", ".."))


def document(api):
    with _lock:
        if api not in _docs:
            with open(os.path.join(source_root(), "docs", "openapi", DOCS[api]), encoding="utf-8") as f:
                _docs[api] = json.load(f)
        return _docs[api]


def register(base_url, api):
    """Answers from URLs under base_url are checked against `api`'s document."""
    with _lock:
        _bases[base_url.rstrip("/")] = api


def unregister(base_url):
    """Forgets base_url: its process is gone, and the port may come back as
    another listener (a space's public one) that no document describes."""
    with _lock:
        _bases.pop(base_url.rstrip("/"), None)


def deref(doc, obj):
    """Follows a local $ref of a non-schema object (a response, a header)."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj and seen < 20:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
        seen += 1
    return obj


def match_path(doc, path):
    """The document's path template that `path` matches; literal segments
    win over parameters. None when no template matches."""
    segs = path.split("/")
    best = None
    for tmpl in doc["paths"]:
        tsegs = tmpl.split("/")
        if len(tsegs) != len(segs):
            continue
        score = 0
        for t, s in zip(tsegs, segs):
            if t.startswith("{") and t.endswith("}"):
                if not s:
                    break
            elif t != s:
                break
            else:
                score += 1
        else:
            if best is None or score > best[0]:
                best = (score, tmpl)
    return best[1] if best else None


def validate_schema(doc, schema, instance):
    """Raises jsonschema.ValidationError when instance does not fit."""
    resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
    jsonschema.Draft202012Validator(schema, resolver=resolver).validate(instance)


def is_error_body(doc, raw):
    try:
        validate_schema(doc, doc["components"]["schemas"]["Error"], json.loads(raw))
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


def media_type(headers):
    for k, v in (headers or {}).items():
        if k.lower() == "content-type":
            return v.split(";")[0].strip().lower()
    return ""


def check(api, method, path, status, headers, raw):
    """Raises OpenApiMismatch when the answer is not what `api`'s document
    says of `method path`. `path` has no query; `raw` is the body's bytes."""
    doc = document(api)
    method = method.upper()
    head = method == "HEAD"
    if head:
        method = "GET"
    what = f"{api}: {method} {path} answered {status}"
    lookup = path
    if api == "space-admin" and len(lookup) > 1 and lookup.endswith("/"):
        lookup = lookup[:-1]  # the management API ignores a trailing slash
    tmpl = match_path(doc, lookup)
    # An unknown route answers 404 (405: a known path, another method) with
    # the error body; the management API asks for the token first (401).
    not_served = {404, 405} | ({401} if api == "space-admin" else set())
    if tmpl is None:
        if status in not_served - {405} and (head or is_error_body(doc, raw)):
            return
        raise OpenApiMismatch(f"{what}, but the path is not in the document")
    op = doc["paths"][tmpl].get(method.lower())
    if op is None:
        if status in not_served and (head or is_error_body(doc, raw)):
            return
        raise OpenApiMismatch(f"{what}, but {tmpl} has no {method} in the document")
    responses = op["responses"]
    resp = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
    if resp is None:
        raise OpenApiMismatch(f"{what} ({tmpl}), a status the document does not list ({sorted(responses)})")
    resp = deref(doc, resp)
    content = resp.get("content")
    if head:
        return
    if not content:
        if raw:
            raise OpenApiMismatch(f"{what}: the document has no body for it, the answer has {len(raw)} bytes")
        return
    mt = media_type(headers)
    if mt not in content:
        raise OpenApiMismatch(f"{what}: Content-Type {mt!r} is not one of {sorted(content)}")
    schema = content[mt].get("schema")
    if schema is None:
        return
    if mt == "application/json" or mt.endswith("+json"):
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise OpenApiMismatch(f"{what}: the body is not JSON ({e})")
        try:
            validate_schema(doc, schema, body)
        except jsonschema.ValidationError as e:
            raise OpenApiMismatch(f"{what}: the body does not fit the schema: {e.message} "
                                  f"at {list(e.absolute_path)}; body {raw[:300]!r}")
    elif schema.get("type") == "string" and "contentMediaType" not in schema:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OpenApiMismatch(f"{what}: a text body that is not UTF-8")


def observe(method, url, status, headers, raw):
    """Called by the test helpers with every answer they get."""
    if not enabled():
        return
    with _lock:
        hits = [(b, a) for b, a in _bases.items() if url == b or url.startswith(b + "/") or url.startswith(b + "?")]
    if not hits:
        return
    base, api = max(hits, key=lambda h: len(h[0]))
    path = urllib.parse.urlsplit(url).path or "/"
    checked["answers"] += 1
    try:
        check(api, method, path, status, headers, raw)
    except OpenApiMismatch as e:
        mismatches.append(str(e))
        raise


@atexit.register
def _report():
    if enabled() and checked["answers"]:
        print(f"openapi: {checked['answers']} answers checked against docs/openapi/", flush=True)
    # A test that caught the exception still fails: the exit status says so.
    if mismatches:
        print(f"FAIL openapi: {len(mismatches)} answers do not fit the OpenAPI documents:", flush=True)
        for m in mismatches[:20]:
            print("  " + m, flush=True)
        sys.stdout.flush()
        os._exit(1)
