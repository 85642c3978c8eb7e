#!/usr/bin/env python3
"""Writes the seed corpus of the codec fuzz target, tests/fuzz/corpus/codec.

Each file name carries the expected result of fl_codec_decode():
  ok-*              decodes (FL_OK)
  err-magic-*       FL_ERR_MAGIC
  err-schema-id-*   FL_ERR_SCHEMA_ID
  err-truncated-*   FL_ERR_TRUNCATED
  err-oversized-*   FL_ERR_OVERSIZED
  err-invalid-*     FL_ERR_INVALID
tests/unit/test_codec.c replays every file and checks its result.

The Avro encoding here is written from the spec with the standard library
only, independently of the C encoder, so the ok- files also check that
the decoder reads what any other Avro implementation writes. Run it from
anywhere; it rewrites the corpus directory's generated files in place.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "codec")

IDS = {"UserRegistered": 1, "UserUpdated": 2, "PostCreated.v1": 3, "PostDeleted": 4,
       "FollowAdded": 5, "FollowRemoved": 6, "LikeAdded": 7, "LikeRemoved": 8,
       "PostCreated": 9}
VIS = {"PUBLIC": 0, "FOLLOWERS": 1, "PRIVATE": 2}


def varint(u):
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def long_(v):
    return varint(((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)


def raw(b):
    return long_(len(b)) + b


def string(s):
    return raw(s.encode("utf-8"))


def header(schema_id):
    return b"\x00" + struct.pack(">I", schema_id)


def null_or(enc, v):
    return long_(0) if v is None else long_(1) + enc(v)


def user_registered(ev="ev-ur-1", at=1700000000000, user=1, handle="alice", name="Alice"):
    return header(IDS["UserRegistered"]) + string(ev) + long_(at) + long_(user) + \
        string(handle) + string(name)


def user_updated(ev="ev-uu-1", at=1700000000001, user=1, name=None, bio=None):
    return header(IDS["UserUpdated"]) + string(ev) + long_(at) + long_(user) + \
        null_or(string, name) + null_or(string, bio)


def post_body(ev, at, post, author, created, text, vis):
    return string(ev) + long_(at) + long_(post) + long_(author) + long_(created) + \
        string(text) + long_(VIS[vis] if isinstance(vis, str) else vis)


def post_created(ev="ev-pc-1", at=1700000000002, post=101, author=1, created=1700000000002,
                 text="hello, world", vis="PUBLIC", reply_to=None, branch=None):
    body = post_body(ev, at, post, author, created, text, vis)
    if branch is None:
        body += null_or(long_, reply_to)
    else:
        body += long_(branch) + (long_(reply_to) if reply_to is not None else b"")
    return header(IDS["PostCreated"]) + body


def post_created_v1(**kw):
    return header(IDS["PostCreated.v1"]) + post_body(
        kw.get("ev", "ev-pc-v1"), 1700000000003, 102, 2, 1700000000003,
        kw.get("text", "from an old producer"), kw.get("vis", "FOLLOWERS"))


def pair(record, ev, a, b, at=1700000000004):
    return header(IDS[record]) + string(ev) + long_(at) + long_(a) + long_(b)


def like(record, ev, user, post, author, at=1700000000005):
    return header(IDS[record]) + string(ev) + long_(at) + long_(user) + long_(post) + \
        long_(author)


def files():
    ok = {
        "ok-user-registered": user_registered(),
        "ok-user-registered-unicode": user_registered(handle="zoe", name="Zoë 🌻 Ørsted"),
        "ok-user-updated-nulls": user_updated(),
        "ok-user-updated-both": user_updated(name="Alice A.", bio="likes Avro"),
        "ok-post-created": post_created(),
        "ok-post-created-reply": post_created(ev="ev-pc-2", post=103, vis="FOLLOWERS",
                                              reply_to=101),
        "ok-post-created-private-empty-text": post_created(ev="ev-pc-3", text="", vis="PRIVATE"),
        "ok-post-created-extreme-longs": post_created(ev="ev-pc-4", at=-(1 << 63),
                                                      post=(1 << 63) - 1, created=0,
                                                      reply_to=-(1 << 63)),
        "ok-post-created-v1": post_created_v1(),
        "ok-post-deleted": pair("PostDeleted", "ev-pd-1", 101, 1),
        "ok-follow-added": pair("FollowAdded", "ev-fa-1", 2, 1),
        "ok-follow-removed": pair("FollowRemoved", "ev-fr-1", 2, 1),
        "ok-like-added": like("LikeAdded", "ev-la-1", 2, 101, 1),
        "ok-like-removed": like("LikeRemoved", "ev-lr-1", 2, 101, 1),
    }
    post = ok["ok-post-created-reply"]
    err = {
        "err-truncated-empty": b"",
        "err-truncated-1": b"\x00",
        "err-truncated-3": post[:3],
        "err-truncated-header-only": post[:5],
        "err-truncated-in-string": post[:9],
        "err-truncated-in-varint": header(IDS["FollowAdded"]) + string("e") + b"\x80\x80",
        "err-truncated-last-byte": post[:-1],
        "err-truncated-union-branch": post_created(branch=1),
        "err-magic-1": b"\x01" + post[1:],
        "err-magic-json": b'{"type":"PostCreated"}',
        "err-magic-ff": b"\xff",
        "err-schema-id-0": header(0) + post[5:],
        "err-schema-id-10": header(10) + post[5:],
        "err-schema-id-max": header(0xFFFFFFFF) + post[5:],
        "err-oversized-string-2-40": header(IDS["UserRegistered"]) + long_(1 << 40) + b"x",
        "err-oversized-string-max": header(IDS["UserRegistered"]) + long_((1 << 63) - 1),
        "err-oversized-text-limit": post_body_with_text_len(1024 * 1024 + 1),
        "err-invalid-trailing-byte": post + b"\x00",
        "err-invalid-two-records": post + post[5:],
        "err-invalid-enum-3": post_created(vis=3),
        "err-invalid-enum-negative": post_created(vis=-1),
        "err-invalid-union-2": post_created(branch=2, reply_to=5),
        "err-invalid-union-negative": post_created(branch=-1, reply_to=5),
        "err-invalid-varint-11-bytes": header(IDS["FollowAdded"]) + string("e") +
        b"\x80" * 10 + b"\x00" + long_(1) + long_(2),
        "err-invalid-varint-overflow": header(IDS["FollowAdded"]) + string("e") +
        b"\xff" * 9 + b"\x02" + long_(1) + long_(2),
        "err-invalid-negative-length": header(IDS["FollowAdded"]) + long_(-1) + long_(0) +
        long_(1) + long_(2),
        "err-invalid-utf8": pair("FollowAdded", "", 1, 2)[:5] + raw(b"\xc3\x28") +
        long_(0) + long_(1) + long_(2),
        "err-invalid-nul-in-string": header(IDS["FollowAdded"]) + raw(b"a\x00b") + long_(0) +
        long_(1) + long_(2),
    }
    return {**ok, **err}


def post_body_with_text_len(n):
    """A PostCreated whose text length prefix is above the message limit."""
    return header(IDS["PostCreated"]) + string("ev") + long_(1) + long_(2) + long_(3) + \
        long_(4) + long_(n) + b"short"


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith(".bin") and (name.startswith("ok-") or name.startswith("err-")):
            os.unlink(os.path.join(OUT, name))
    for name, data in sorted(files().items()):
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"wrote {len(files())} files to {OUT}")


if __name__ == "__main__":
    main()
