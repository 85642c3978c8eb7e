#!/usr/bin/env python3
"""The read API's OpenAPI document (connectors/api/openapi.json) and its
checker (openapi_check.py), without a server: the document passes
check_document, responses shaped like the server's pass Checker.check,
and deliberately wrong ones (a body, a status, a header, a path, a
parameter) and broken documents fail with the place of the fault."""
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import openapi_check  # noqa: E402

DOC_PATH = os.path.join(HERE, "..", "..", "connectors", "api", "openapi.json")
JSON = {"content-type": "application/json", "cache-control": "no-store"}
SERVED = dict(JSON, **{"x-feedline-source": "redis"})
POST = {"post_id": "7", "author": {"user_id": "2", "handle": "ann", "display_name": None},
        "created_at": 1700000000000, "text": "hi", "visibility": "followers",
        "reply_to": "5", "like_count": 3}
PAGE = {"content-type": "text/html; charset=utf-8", "cache-control": "no-cache",
        "etag": '"0123456789abcdef"'}
EXPLAIN = {"score": 1.5, "recency": 1.0, "likes": 0.5, "affinity": 0.0, "affinity_likes": 0,
           "age_s": 12.5}


def err(code):
    return {"error": {"code": code, "message": "why"}}


GOOD = [
    ("GET", "/v1/feed?limit=2&order=ranked&explain=1", 200,
     dict(SERVED, **{"x-feedline-ranking": "ranked", "ratelimit": "limit=50, remaining=49, reset=0",
                     "ratelimit-policy": "50;w=1"}),
     {"items": [dict(POST, explain=EXPLAIN), POST], "next_cursor": "r" + "0" * 64}),
    ("GET", "/v1/users/2/feed", 200, SERVED, {"items": [], "next_cursor": None}),
    ("GET", "/v1/posts/7", 200, SERVED, dict(POST, reply_to=None)),
    ("GET", "/v1/posts/8", 404, SERVED, err("not_found")),
    ("GET", "/v1/users/2", 200, SERVED,
     {"user_id": "2", "handle": "ann", "display_name": "Ann", "followers_count": 1,
      "following_count": 0, "posts_count": 4, "is_celebrity": False}),
    ("GET", "/v1/users/2/posts?cursor=c" + "0" * 32, 200, SERVED,
     {"items": [POST], "next_cursor": None}),
    ("GET", "/v1/users/2/followers?limit=50", 200, dict(JSON, **{"x-feedline-source": "postgres"}),
     {"items": [{"user_id": "3", "handle": None, "display_name": None, "followed_at": 5}],
      "next_cursor": "f" + "0" * 32}),
    ("GET", "/v1/notifications", 200, SERVED,
     {"items": [{"kind": "like", "actor_id": "3", "post_id": "7", "created_at": 9},
                {"kind": "follow", "actor_id": "4", "post_id": None, "created_at": 8}],
      "next_cursor": None}),
    ("GET", "/v1/users/3/notifications", 403, JSON, err("forbidden")),
    ("GET", "/v1/feed", 401, dict(JSON, **{"www-authenticate": 'Bearer realm="feedline"'}),
     err("unauthorized")),
    ("GET", "/v1/feed?limit=0", 400, JSON, err("bad_request")),
    ("GET", "/v1/users/2", 429,
     dict(JSON, **{"retry-after": "1", "ratelimit": "limit=5, remaining=0, reset=1",
                   "ratelimit-policy": "5;w=5"}), err("rate_limited")),
    ("GET", "/v1/feed", 503, JSON, err("unavailable")),
    ("POST", "/v1/feed", 405, JSON, err("method_not_allowed")),
    ("GET", "/v1/" + "x" * 600, 414, JSON, err("uri_too_long")),
    ("GET", "/v1/posts/abc", 404, JSON, err("not_found")),
    ("HEAD", "/v1/posts/7", 200, SERVED, b""),
    ("GET", "/healthz", 200, JSON, {"status": "ok"}),
    ("GET", "/readyz", 200, JSON,
     {"status": "degraded", "redis": "down", "postgres": "up", "serving_from": "postgres",
      "lag": {"redis_sink": -1, "pg_sink": 0}}),
    ("GET", "/readyz", 503, JSON,
     {"status": "unavailable", "redis": "down", "postgres": "down", "serving_from": None,
      "lag": {"redis_sink": -1, "pg_sink": -1}}),
    ("GET", "/metrics", 200, dict(JSON, **{"content-type": "text/plain; version=0.0.4"}),
     b"feedline_api_up{store=\"redis\"} 1\n"),
    ("GET", "/", 200, PAGE, b"<!doctype html>"),
    ("GET", "/app.js", 200, dict(PAGE, **{"content-type": "text/javascript; charset=utf-8"}),
     b"'use strict';"),
    ("GET", "/app.css", 304, {"etag": PAGE["etag"], "cache-control": "no-cache"}, b""),
    ("HEAD", "/", 200, PAGE, b""),
    ("POST", "/dev/login", 200, JSON,
     {"token": "a.b.c", "token_type": "Bearer", "expires_in": 3600, "user_id": "2"}),
    ("POST", "/dev/login", 404, JSON, err("not_found")),
    ("POST", "/dev/login", 400, JSON, err("bad_request")),
    ("GET", "/dev/login", 405, JSON, err("method_not_allowed")),
]

# (what is wrong, request, the text the failure must name)
BAD = [
    ("an undocumented field", ("GET", "/v1/posts/7", 200, SERVED, dict(POST, extra=1)),
     "body /: "),
    ("explain outside a feed", ("GET", "/v1/posts/7", 200, SERVED, dict(POST, explain=EXPLAIN)),
     "'explain' was unexpected"),
    ("a numeric id", ("GET", "/v1/posts/7", 200, SERVED, dict(POST, post_id=7)), "body /post_id"),
    ("a negative like count", ("GET", "/v1/feed", 200, SERVED,
                               {"items": [POST, dict(POST, like_count=-1)], "next_cursor": None}),
     "body /items/1/like_count"),
    ("a bad visibility", ("GET", "/v1/posts/7", 200, SERVED, dict(POST, visibility="secret")),
     "body /visibility"),
    ("an author without handle", ("GET", "/v1/posts/7", 200, SERVED,
                                  dict(POST, author={"user_id": "2", "display_name": None})),
     "body /author"),
    ("a follow with a post", ("GET", "/v1/notifications", 200, SERVED,
                              {"items": [{"kind": "follow", "actor_id": "3", "post_id": "7",
                                          "created_at": 1}], "next_cursor": None}),
     "body /items/0"),
    ("no next_cursor", ("GET", "/v1/users/2/posts", 200, SERVED, {"items": []}), "body /"),
    ("a bare error", ("GET", "/v1/feed", 400, JSON, {"error": "bad"}), "body /error"),
    ("an unknown error code", ("GET", "/v1/feed", 400, JSON, err("oops")), "body /error/code"),
    ("an undocumented status", ("GET", "/v1/users/2/posts", 404, SERVED, err("not_found")),
     "404 is not documented"),
    ("401 without challenge", ("GET", "/v1/feed", 401, JSON, err("unauthorized")),
     "WWW-Authenticate"),
    ("429 without Retry-After",
     ("GET", "/v1/feed", 429, dict(JSON, ratelimit="limit=5, remaining=0, reset=1",
                                   **{"ratelimit-policy": "5;w=5"}), err("rate_limited")),
     "Retry-After"),
    ("200 without a source", ("GET", "/v1/users/2", 200, JSON, {}), "X-Feedline-Source"),
    ("a source on a 401", ("GET", "/v1/feed", 401,
                           dict(SERVED, **{"www-authenticate": "Bearer x"}), err("unauthorized")),
     "x-feedline-source"),
    ("an unknown source", ("GET", "/v1/feed", 200, dict(JSON, **{"x-feedline-source": "disk"}),
                           {"items": [], "next_cursor": None}), "X-Feedline-Source"),
    ("a wrong content type", ("GET", "/healthz", 200, dict(JSON, **{"content-type": "text/html"}),
                              {"status": "ok"}), "Content-Type"),
    ("200 for a bad limit", ("GET", "/v1/feed?limit=101", 200, SERVED,
                             {"items": [], "next_cursor": None}), "query limit"),
    ("200 for an unknown parameter", ("GET", "/v1/users/2/posts?order=ranked", 200, SERVED,
                                      {"items": [], "next_cursor": None}), "query order"),
    ("200 for an unknown path", ("GET", "/v1/nothing", 200, JSON, {}), "no operation matches"),
    ("200 for POST", ("POST", "/v1/feed", 200, SERVED, {}), "no operation matches"),
    ("a page file without its ETag", ("GET", "/", 200, dict(PAGE, etag=None), b"x"), "ETag"),
    ("a page file never cached", ("GET", "/app.css", 200,
                                  dict(PAGE, **{"content-type": "text/css", "cache-control":
                                                "no-store"}), b"x"), "Cache-Control"),
    ("a token with a numeric user", ("POST", "/dev/login", 200, JSON,
                                     {"token": "a.b.c", "token_type": "Bearer", "expires_in": 1,
                                      "user_id": 2}), "body /user_id"),
    ("a readyz status", ("GET", "/readyz", 200, JSON,
                         {"status": "fine", "redis": "up", "postgres": "up",
                          "serving_from": "redis", "lag": {"redis_sink": 0, "pg_sink": 0}}),
     "body /status"),
]


def broken_documents(doc):
    """(what, a copy of doc broken that way, the text the failure must name)"""
    def edit(fn):
        d = copy.deepcopy(doc)
        fn(d)
        return d
    feed = ["paths", "/v1/feed", "get"]

    def at(d, path):
        for p in path:
            d = d[p]
        return d
    yield ("a dangling $ref", edit(lambda d: at(d, feed)["responses"]["200"]["content"][
        "application/json"]["schema"].update({"$ref": "#/components/schemas/Nope"})), "Nope")
    yield ("an undeclared path parameter",
           edit(lambda d: d["paths"].update({"/v1/x/{y}": {"get": {"responses": {
               "200": {"description": "x"}}}}})), "{y} not declared")
    yield ("a duplicate operationId",
           edit(lambda d: d["paths"]["/v1/notifications"]["get"].update(operationId="getFeed")),
           "getFeed")
    yield ("an operation without responses",
           edit(lambda d: at(d, feed).update(responses={})), "needs responses")
    yield ("a secured operation without 401",
           edit(lambda d: at(d, feed)["responses"].pop("401")), "401")
    yield ("an invalid schema",
           edit(lambda d: d["components"]["schemas"]["Id"].update(type="strin")), "/Id")
    yield ("OpenAPI 3.0", edit(lambda d: d.update(openapi="3.0.3")), "3.1")
    yield ("an unknown security scheme",
           edit(lambda d: at(d, feed).update(security=[{"apiKey": []}])), "apiKey")


def main():
    with open(DOC_PATH) as f:
        doc = json.load(f)
    openapi_check.check_document(doc)
    ck = openapi_check.Checker(doc)
    for req in GOOD:
        ck.check(*req)
    for what, req, want in BAD:
        try:
            ck.check(*req)
        except AssertionError as e:
            assert want in str(e), "%s: the failure does not name %r: %s" % (what, want, e)
        else:
            raise AssertionError("%s: passed the checker" % what)
    n = 0
    for what, d, want in broken_documents(doc):
        try:
            openapi_check.check_document(d)
        except AssertionError as e:
            assert want in str(e), "%s: the failure does not name %r: %s" % (what, want, e)
        else:
            raise AssertionError("document with %s: passed check_document" % what)
        n += 1
    # every /v1 operation, /healthz, /readyz, /metrics, /openapi.json and
    # the live page's files are there, and the development login
    ops = {p for p, item in doc["paths"].items() if "get" in item}
    for p in ("/v1/feed", "/v1/posts/{id}", "/v1/users/{id}", "/v1/users/{id}/posts",
              "/v1/users/{id}/followers", "/v1/users/{id}/following", "/v1/notifications",
              "/v1/users/{id}/feed", "/v1/users/{id}/notifications", "/healthz", "/readyz",
              "/metrics", "/openapi.json", "/", "/app.css", "/app.js"):
        assert p in ops, "%s is not in the document" % p
    assert "post" in doc["paths"]["/dev/login"], "POST /dev/login is not in the document"
    print("ok   openapi: the document, %d good and %d wrong responses, %d broken documents"
          % (len(GOOD), len(BAD), n))


if __name__ == "__main__":
    main()
