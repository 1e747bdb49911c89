#!/usr/bin/python3
"""Interop of hut-token with PyJWT and python3-cryptography, tokens both ways.

usage: token_interop.py PATH/TO/hut-token

PyJWT verifies EdDSA and HS256 tokens made by `hut-token sign`; `hut-token
verify` accepts tokens PyJWT signed (EdDSA with a key cryptography made,
exported as PEM or as a JWK set; HS256 with a shared secret) and refuses
tampered, expired, unsigned and misaddressed ones. Ends with "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

HUT_TOKEN = sys.argv[1]
AUD = "space-interop"
ISS = "https://relay.interop"
SECRET = "an app secret shared with the space, 32+ bytes"
passed = 0
failed = 0


def run(args, stdin=""):
    return subprocess.run([HUT_TOKEN] + args, input=stdin, capture_output=True, text=True, timeout=30)


def hut_verify(token, source, aud=AUD, iss=ISS, extra=()):
    return run(["verify"] + source + ["--aud", aud, "--iss", iss] + list(extra), stdin=token + "\n")


def claims(**extra):
    now = int(time.time())
    c = {"iss": ISS, "sub": "user-7", "aud": AUD, "iat": now, "exp": now + 60, "jti": os.urandom(8).hex(),
         "name": "Grace", "username": "grace"}
    c.update(extra)
    return c


def case(fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok   " + fn.__name__)
    except Exception:
        failed += 1
        print("FAIL " + fn.__name__)
        traceback.print_exc()
    return fn


def expect_accepted(r, want):
    assert r.returncode == 0, "refused: rc=%d %s" % (r.returncode, r.stderr)
    got = json.loads(r.stdout)
    for k, v in want.items():
        assert got.get(k) == v, "claim %s: %r != %r" % (k, got.get(k), v)


def expect_refused(r, reason):
    assert r.returncode == 1, "rc=%d stdout=%s stderr=%s" % (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    assert reason in r.stderr, "wanted %r in %r" % (reason, r.stderr)


tmp = tempfile.TemporaryDirectory(prefix="hut-interop-")
d = tmp.name

# A key pair made by hut-token, and one made by python3-cryptography.
HUT_PEM = os.path.join(d, "hut.pem")
r = run(["keygen", "--kid", "hut-1", "--out", HUT_PEM])
assert r.returncode == 0, r.stderr
HUT_JWK = json.loads(r.stdout)
PY_KEY = Ed25519PrivateKey.generate()
PY_PEM = os.path.join(d, "py.pem")
with open(PY_PEM, "wb") as f:
    f.write(PY_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()))
PY_JWK = json.loads(OKPAlgorithm.to_jwk(PY_KEY.public_key()))
PY_JWK.update(kid="py-1", alg="EdDSA", use="sig")
PY_JWKS = os.path.join(d, "py-jwks.json")
with open(PY_JWKS, "w") as f:
    json.dump({"keys": [PY_JWK]}, f)


@case
def keygen_writes_a_pkcs8_key_cryptography_reads_with_mode_0600():
    assert os.stat(HUT_PEM).st_mode & 0o777 == 0o600
    with open(HUT_PEM, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    x = json.loads(OKPAlgorithm.to_jwk(key.public_key()))["x"]
    assert HUT_JWK == {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "hut-1", "alg": "EdDSA", "use": "sig"}, HUT_JWK


@case
def pyjwt_verifies_hut_eddsa_token_with_the_published_jwks():
    c = claims()
    r = run(["sign", "--key", HUT_PEM, "--kid", "hut-1", "--claims", json.dumps(c)])
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT", "kid": "hut-1"}
    jwks = run(["jwks", "--kid", "hut-1", HUT_PEM])
    assert jwks.returncode == 0, jwks.stderr
    keyset = jwt.PyJWKSet.from_json(jwks.stdout)
    key = [k for k in keyset.keys if k.key_id == "hut-1"][0]
    got = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=AUD, issuer=ISS)
    assert got == c, got


@case
def pyjwt_verifies_hut_eddsa_token_with_the_pem_public_key():
    c = claims()
    del c["iat"], c["exp"], c["jti"]
    token = run(["sign", "--key", HUT_PEM, "--kid", "hut-1", "--claims", json.dumps(c), "--ttl", "45"]).stdout.strip()
    with open(HUT_PEM, "rb") as f:
        pub = serialization.load_pem_private_key(f.read(), password=None).public_key()
    got = jwt.decode(token, pub, algorithms=["EdDSA"], audience=AUD, issuer=ISS,
                     options={"require": ["iat", "exp", "jti"]})
    assert got["exp"] - got["iat"] == 45, got
    assert abs(got["iat"] - time.time()) < 60
    assert len(got["jti"]) >= 16


@case
def pyjwt_refuses_hut_eddsa_token_against_another_key():
    token = run(["sign", "--key", HUT_PEM, "--kid", "hut-1", "--claims", json.dumps(claims())]).stdout.strip()
    try:
        jwt.decode(token, PY_KEY.public_key(), algorithms=["EdDSA"], audience=AUD, issuer=ISS)
    except jwt.InvalidSignatureError:
        return
    raise AssertionError("PyJWT accepted a token under the wrong key")


@case
def pyjwt_verifies_hut_hs256_token():
    c = claims(iss="app")
    r = run(["sign", "--secret", SECRET, "--claims", json.dumps(c)])
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUD, issuer="app") == c


@case
def pyjwt_verifies_hut_hs256_token_with_secret_file():
    path = os.path.join(d, "secret")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    token = run(["sign", "--secret-file", path, "--claims", json.dumps(claims())]).stdout.strip()
    jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUD, issuer=ISS)


@case
def hut_accepts_pyjwt_eddsa_token_via_jwks():
    c = claims()
    token = jwt.encode(c, PY_KEY, algorithm="EdDSA", headers={"kid": "py-1"})
    expect_accepted(hut_verify(token, ["--jwks", PY_JWKS]), c)


@case
def hut_accepts_pyjwt_eddsa_token_via_pem():
    c = claims(aud=["other-space", AUD])
    token = jwt.encode(c, PY_KEY, algorithm="EdDSA", headers={"kid": "py-1"})
    expect_accepted(hut_verify(token, ["--key", PY_PEM, "--kid", "py-1"]), {"sub": "user-7", "jti": c["jti"]})


@case
def hut_signs_with_a_cryptography_pem_and_pyjwt_verifies():
    c = claims()
    r = run(["sign", "--key", PY_PEM, "--kid", "py-1", "--claims", json.dumps(c)])
    assert r.returncode == 0, r.stderr
    assert jwt.decode(r.stdout.strip(), PY_KEY.public_key(), algorithms=["EdDSA"], audience=AUD, issuer=ISS) == c


@case
def hut_accepts_pyjwt_hs256_token():
    c = claims(iss="app")
    token = jwt.encode(c, SECRET, algorithm="HS256")
    expect_accepted(hut_verify(token, ["--secret", SECRET], iss="app"), c)


@case
def hut_refuses_tampered_pyjwt_tokens():
    for token, source in [
        (jwt.encode(claims(), PY_KEY, algorithm="EdDSA", headers={"kid": "py-1"}), ["--jwks", PY_JWKS]),
        (jwt.encode(claims(), SECRET, algorithm="HS256"), ["--secret", SECRET]),
    ]:
        expect_accepted(hut_verify(token, source), {"sub": "user-7"})
        head, body, sig = token.split(".")
        # A payload that names another user, under the original signature.
        forged = dict(jwt.decode(token, options={"verify_signature": False}), sub="admin")
        forged_body = jwt.utils.base64url_encode(json.dumps(forged).encode()).decode()
        expect_refused(hut_verify(".".join([head, forged_body, sig]), source), "bad signature")
        # One byte of the signature changed.
        raw = bytearray(jwt.utils.base64url_decode(sig))
        raw[5] ^= 0x20
        bad_sig = jwt.utils.base64url_encode(bytes(raw)).decode()
        expect_refused(hut_verify(".".join([head, body, bad_sig]), source), "bad signature")


@case
def hut_refuses_pyjwt_token_signed_with_wrong_secret():
    token = jwt.encode(claims(), "not the secret", algorithm="HS256")
    expect_refused(hut_verify(token, ["--secret", SECRET]), "bad signature")


@case
def hut_refuses_expired_and_misaddressed_pyjwt_tokens():
    now = int(time.time())
    old = jwt.encode(claims(iat=now - 200, exp=now - 100), PY_KEY, algorithm="EdDSA", headers={"kid": "py-1"})
    expect_refused(hut_verify(old, ["--jwks", PY_JWKS]), "expired")
    good = jwt.encode(claims(), PY_KEY, algorithm="EdDSA", headers={"kid": "py-1"})
    expect_refused(hut_verify(good, ["--jwks", PY_JWKS], aud="another-space"), "wrong audience")
    expect_refused(hut_verify(good, ["--jwks", PY_JWKS], iss="https://other.issuer"), "wrong issuer")
    # --now moves the clock: the same token is refused an hour later.
    expect_refused(hut_verify(good, ["--jwks", PY_JWKS], extra=["--now", str(now + 3600)]), "expired")


@case
def hut_refuses_pyjwt_unsigned_and_hs256_confusion_tokens():
    none = jwt.encode(claims(), None, algorithm="none", headers={"kid": "py-1"})
    expect_refused(hut_verify(none, ["--jwks", PY_JWKS]), "alg none")
    # HS256 keyed with the public key's PEM bytes (PyJWT itself refuses such a
    # key, so the MAC is made with the standard library).
    import base64, hashlib, hmac
    pem = PY_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "py-1"}).encode()) + "." + \
        b64(json.dumps(claims()).encode())
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    expect_refused(hut_verify(signing_input + "." + b64(mac), ["--jwks", PY_JWKS]), "not allowed for this key")


@case
def hut_reports_unknown_kid():
    token = jwt.encode(claims(), PY_KEY, algorithm="EdDSA", headers={"kid": "py-9"})
    expect_refused(hut_verify(token, ["--jwks", PY_JWKS]), "unknown key id py-9")


@case
def hut_token_usage_errors_exit_2():
    assert run(["sign", "--claims", "{}"]).returncode == 2
    assert run(["verify", "--secret", "s"], stdin="x").returncode == 2
    assert run(["nonsense"]).returncode == 2
    r = run(["--help"])
    assert r.returncode == 0 and "keygen" in r.stdout and "verify" in r.stdout
    r = run(["--version"])
    assert r.returncode == 0 and r.stdout.startswith("hut-token ")


print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
