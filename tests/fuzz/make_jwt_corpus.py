#!/usr/bin/env python3
"""Writes the seed corpus of the JWT fuzz target, tests/fuzz/corpus/jwt.

Each file holds one token (no newline); its name carries the result that
fl_jwt_verify() must give with the fixture verifier of
tests/fuzz/fl_jwt_fixture.h at its fixed time:
  ok-*              accepted (FL_JWT_OK)
  401-malformed-*   FL_JWT_MALFORMED     401-oversized-*  FL_JWT_OVERSIZED
  401-alg-*         FL_JWT_ALG           401-signature-*  FL_JWT_SIGNATURE
  401-expired-*     FL_JWT_EXPIRED       401-not-yet-*    FL_JWT_NOT_YET
  401-no-exp-*      FL_JWT_NO_EXP        401-issuer-*     FL_JWT_ISSUER
  401-audience-*    FL_JWT_AUDIENCE      401-subject-*    FL_JWT_SUBJECT
tests/unit/test_jwt.c replays every file and checks its result.

The secret, key seed, issuer, audience and time are read from
fl_jwt_fixture.h, so they are written in one place. HS256 uses Python's
hmac; Ed25519 signing goes through the openssl command (pkeyutl -rawin),
so the tokens come from code independent of fl_jwt.c. Run it from
anywhere; it rewrites the corpus directory in place.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "jwt")


def fixture():
    text = open(os.path.join(HERE, "fl_jwt_fixture.h")).read()
    vals = {}
    for name, val in re.findall(r"#define FL_JWT_FIXTURE_(\w+)\s+(\"[^\"]*\"|\d+)", text):
        vals[name] = val.strip('"') if val.startswith('"') else int(val)
    return vals


F = fixture()
NOW = F["NOW"]
GOOD = {"sub": "42", "iat": NOW, "exp": NOW + 3600, "iss": F["ISSUER"], "aud": F["AUDIENCE"]}
HS = {"alg": "HS256", "typ": "JWT"}
ED = {"alg": "EdDSA", "typ": "JWT"}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj):
    if isinstance(obj, (bytes, str)):
        return b64(obj.encode() if isinstance(obj, str) else obj)
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(**changes):
    c = dict(GOOD)
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


class Ed25519:
    """Signs with the fixture's seed through the openssl command."""

    # PKCS#8 PrivateKeyInfo of an Ed25519 seed (RFC 8410), before the seed.
    PREFIX = bytes.fromhex("302e020100300506032b657004220420")

    def __init__(self, tmp):
        der = os.path.join(tmp, "key.der")
        with open(der, "wb") as f:
            f.write(self.PREFIX + bytes.fromhex(F["ED25519"]))
        self.key = os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", der, "-out", self.key],
                       check=True)
        self.public_pem = subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout"],
                                         check=True, capture_output=True).stdout
        self.tmp = tmp

    def sign(self, data):
        msg = os.path.join(self.tmp, "msg")
        with open(msg, "wb") as f:
            f.write(data)
        return subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", self.key,
                               "-in", msg], check=True, capture_output=True).stdout


def hs_token(hdr, cl, key=F["SECRET"].encode()):
    si = seg(hdr) + "." + seg(cl)
    return si + "." + b64(hmac.new(key, si.encode(), hashlib.sha256).digest())


def main():
    with tempfile.TemporaryDirectory() as tmp:
        ed = Ed25519(tmp)

        def ed_token(hdr, cl):
            si = seg(hdr) + "." + seg(cl)
            return si + "." + b64(ed.sign(si.encode()))

        good_hs = hs_token(HS, GOOD)
        good_ed = ed_token(ED, GOOD)
        h, p, s = good_hs.split(".")
        eh, ep, es = good_ed.split(".")
        evil = seg(claims(sub="1"))
        last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        bent = s[:-1] + last[last.index(s[-1]) | 1]  # an unused bit set
        big = hs_token(HS, claims(pad="x" * F["MAX_BYTES"]))
        cases = {
            "ok-hs256-valid": good_hs,
            "ok-eddsa-valid": good_ed,
            "ok-hs256-no-typ": hs_token({"alg": "HS256"}, GOOD),
            "ok-hs256-aud-array": hs_token(HS, claims(aud=["other", F["AUDIENCE"]])),
            "ok-hs256-expired-inside-leeway": hs_token(HS, claims(exp=NOW - F["LEEWAY"])),
            "ok-eddsa-nbf-inside-leeway": ed_token(ED, claims(nbf=NOW + F["LEEWAY"])),
            "ok-eddsa-max-sub": ed_token(ED, claims(sub="9223372036854775807")),
            "401-alg-none": seg({"alg": "none", "typ": "JWT"}) + "." + p + ".",
            "401-alg-none-signed": hs_token({"alg": "none", "typ": "JWT"}, GOOD),
            "401-alg-hs512": hs_token({"alg": "HS512"}, GOOD),
            "401-alg-rs256": hs_token({"alg": "RS256"}, GOOD),
            "401-alg-lowercase": hs_token({"alg": "hs256"}, GOOD),
            "401-alg-missing": hs_token({"typ": "JWT"}, GOOD),
            "401-alg-not-string": hs_token({"alg": ["HS256"]}, GOOD),
            "401-signature-public-key-as-secret": hs_token(HS, GOOD, ed.public_pem),
            "401-signature-wrong-secret": hs_token(HS, GOOD, b"x" * 32),
            "401-signature-tampered-payload": h + "." + evil + "." + s,
            "401-signature-eddsa-tampered-payload": eh + "." + evil + "." + es,
            "401-signature-tampered-header": seg({"alg": "HS256", "kid": "x"}) + "." + p + "." + s,
            "401-signature-eddsa-relabelled-hs256": h + "." + ep + "." + es,
            "401-signature-empty": h + "." + p + ".",
            "401-expired": hs_token(HS, claims(exp=NOW - F["LEEWAY"] - 1)),
            "401-expired-eddsa": ed_token(ED, claims(exp=NOW - 86400)),
            "401-not-yet": hs_token(HS, claims(nbf=NOW + F["LEEWAY"] + 1)),
            "401-no-exp": hs_token(HS, claims(exp=None)),
            "401-no-exp-string": hs_token(HS, claims(exp=str(NOW + 3600))),
            "401-no-exp-real": hs_token(HS, claims(exp=float(NOW + 3600))),
            "401-issuer-missing": hs_token(HS, claims(iss=None)),
            "401-issuer-wrong": hs_token(HS, claims(iss="evil")),
            "401-audience-missing": hs_token(HS, claims(aud=None)),
            "401-audience-wrong": hs_token(HS, claims(aud="other")),
            "401-audience-array-wrong": hs_token(HS, claims(aud=["a", "b"])),
            "401-subject-missing": hs_token(HS, claims(sub=None)),
            "401-subject-alpha": hs_token(HS, claims(sub="alice")),
            "401-subject-integer": hs_token(HS, claims(sub=42)),
            "401-subject-negative": hs_token(HS, claims(sub="-42")),
            "401-subject-zero": hs_token(HS, claims(sub="0")),
            "401-subject-too-big": hs_token(HS, claims(sub="9223372036854775808")),
            "401-malformed-two-segments": h + "." + p,
            "401-malformed-four-segments": good_hs + "." + s,
            "401-malformed-empty": "",
            "401-malformed-dots": "..",
            "401-malformed-empty-header": "." + p + "." + s,
            "401-malformed-empty-payload": h + ".." + s,
            "401-malformed-padding": h + "." + p + "." + s + "=",
            "401-malformed-standard-base64": h + "." + p + "." + s.replace("-", "+") + "/",
            "401-malformed-space": h + " ." + p + "." + s,
            "401-malformed-non-canonical": h + "." + p + "." + bent,
            "401-malformed-header-not-json": hs_token("not json", GOOD),
            "401-malformed-header-array": hs_token([HS], GOOD),
            "401-malformed-typ-jws": hs_token({"alg": "HS256", "typ": "JWS"}, GOOD),
            "401-malformed-crit": hs_token({"alg": "HS256", "crit": ["exp"]}, GOOD),
            "401-malformed-duplicate-alg": hs_token('{"alg":"none","alg":"HS256"}', GOOD),
            "401-malformed-claims-array": hs_token(HS, [GOOD]),
            "401-malformed-iat-string": hs_token(HS, claims(iat="now")),
            "401-oversized": big,
        }
        assert len(big) > F["MAX_BYTES"]
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.unlink(os.path.join(OUT, name))
    for name, tok in sorted(cases.items()):
        with open(os.path.join(OUT, name), "w") as f:
            f.write(tok)
    print(f"wrote {len(cases)} files to {OUT}")


if __name__ == "__main__":
    main()
