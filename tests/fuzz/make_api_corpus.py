#!/usr/bin/python3
"""Writes the seed corpora of the read API's fuzz targets:
tests/fuzz/corpus/cursor (fuzz_cursor) and tests/fuzz/corpus/query
(fuzz_query).

Cursor files hold one cursor string (no newline). Their names carry the
expected result of fl_cursor_decode():
  ok-<kind>-*   decodes as <kind> (chrono, ranked, notif, follow) and as no
                other kind, and re-encodes to the same string (read as a C
                string: bytes after a NUL are not part of it)
  err-*         decodes as no kind
Query files hold one query string as it follows '?' in a URL. Their names
carry whether the whole query is accepted for the feed endpoint (allowed
FL_Q_LIMIT|FL_Q_CURSOR|FL_Q_ORDER|FL_Q_EXPLAIN, cursor kind chrono):
  ok-*          fl_query_set() for every pair, then fl_query_finish(), FL_OK
  err-<param>-* rejected, and the message names <param>
  err-unknown-* rejected as an unknown parameter
tests/unit/test_api_model.c replays both directories and checks each file
against its name.

The cursors are written here from the encoding rules in fl_api_model.c
(a kind letter, then each field as a big-endian 64-bit integer in lowercase
hex), independently of the C encoder. Run it from anywhere; it rewrites the
generated files in place.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
I64_MAX = (1 << 63) - 1
TS = 1700000000000


def cursor(kind, *fields):
    """kind letter + each field as 16 lowercase hex digits (two's complement)."""
    return kind + "".join("%016x" % (f & 0xFFFFFFFFFFFFFFFF) for f in fields)


def chrono(ts=TS, post=101):
    return cursor("c", ts, post)


def follow(ts=TS, user=7):
    return cursor("f", ts, user)


def ranked(snapshot=TS + 5000, ts=TS, post=101, offset=20):
    return cursor("r", snapshot, ts, post, offset)


def notif(at=TS, kind=1, actor=2, post=101):
    return cursor("n", at, kind, actor, post)


def cursor_files():
    c = chrono()
    files = {
        "ok-chrono-typical": c,
        "ok-chrono-ts-0-id-1": chrono(0, 1),
        "ok-chrono-id-max": chrono(I64_MAX, I64_MAX),
        "ok-chrono-nul-then-garbage": c + "\0zz",
        "ok-follow-typical": follow(),
        "ok-follow-ts-0-id-1": follow(0, 1),
        "ok-ranked-offset-1": ranked(offset=1),
        "ok-ranked-offset-100000": ranked(offset=100000),
        "ok-ranked-snapshot-0": ranked(snapshot=0, ts=0, post=1),
        "ok-notif-like": notif(),
        "ok-notif-follow-post-0": notif(kind=2, post=0),
        "ok-notif-max": notif(I64_MAX, 2, I64_MAX, I64_MAX),
        "err-empty": "",
        "err-kind-x": "x" + c[1:],
        "err-kind-uppercase": "C" + c[1:],
        "err-kind-only": "c",
        "err-short-chrono": c[:-1],
        "err-long-chrono": c + "0",
        "err-short-ranked": ranked()[:-1],
        "err-long-notif": notif() + "0",
        "err-newline": c + "\n",
        "err-nul-inside": c[:17] + "\0" + c[17:],
        "err-uppercase-hex": chrono(0xABCDEF, 0xABCDEF).upper().replace("C", "c", 1),
        "err-nonhex-g": c[:5] + "g" + c[6:],
        "err-nonhex-space": c[:5] + " " + c[6:],
        "err-chrono-negative-ts": chrono(-1, 101),
        "err-chrono-id-0": chrono(TS, 0),
        "err-chrono-id-negative": chrono(TS, -5),
        "err-follow-id-0": follow(TS, 0),
        "err-ranked-offset-0": ranked(offset=0),
        "err-ranked-offset-100001": ranked(offset=100001),
        "err-ranked-negative-snapshot": ranked(snapshot=-(1 << 63)),
        "err-ranked-id-0": ranked(post=0),
        "err-notif-kind-0": notif(kind=0),
        "err-notif-kind-3": notif(kind=3),
        "err-notif-actor-0": notif(actor=0),
        "err-notif-post-negative": notif(post=-1),
    }
    return files


def query_files():
    c, r, n, f = chrono(), ranked(), notif(), follow()
    return {
        "ok-empty": "",
        "ok-limit-1": "limit=1",
        "ok-limit-100": "limit=100",
        "ok-limit-repeated": "limit=5&limit=10",
        "ok-chrono-cursor": "cursor=" + c,
        "ok-all-params": "limit=50&order=chrono&explain=1&cursor=" + c,
        "ok-ranked-cursor": "order=ranked&cursor=" + r,
        "ok-ranked-cursor-then-order": "cursor=" + r + "&order=ranked&explain=true",
        "ok-explain-false": "explain=false",
        "ok-order-ranked-no-cursor": "order=ranked&limit=20",
        "ok-percent-encoded-key": "li%6dit=7",
        "ok-trailing-ampersand": "limit=3&",
        "err-limit-0": "limit=0",
        "err-limit-101": "limit=101",
        "err-limit-negative": "limit=-1",
        "err-limit-abc": "limit=abc",
        "err-limit-empty": "limit=",
        "err-limit-no-value": "limit",
        "err-limit-leading-zero": "limit=020",
        "err-limit-plus-is-space": "limit=+5",
        "err-limit-hostile-10k": "limit=" + "9" * 10240,
        "err-order-sideways": "order=sideways",
        "err-explain-yes": "explain=yes",
        "err-cursor-garbage": "cursor=hello",
        "err-cursor-notif": "cursor=" + n,
        "err-cursor-follow": "cursor=" + f,
        "err-cursor-ranked-order-chrono": "cursor=" + r,
        "err-cursor-chrono-order-ranked": "order=ranked&cursor=" + c,
        "err-cursor-hostile-10k": "cursor=" + "c" * 10240,
        "err-unknown-foo": "limit=5&foo=bar",
        "err-unknown-empty-key": "=5",
        "err-unknown-long-key": "k" * 10240 + "=1",
        "err-unknown-case": "Limit=5",
    }


def write(sub, files):
    out = os.path.join(CORPUS, sub)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("ok-") or name.startswith("err-"):
            os.unlink(os.path.join(out, name))
    for name, text in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(text.encode("latin-1"))
    print(f"wrote {len(files)} files to {out}")


def main():
    write("cursor", cursor_files())
    write("query", query_files())


if __name__ == "__main__":
    main()
