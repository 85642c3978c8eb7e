#!/usr/bin/env python3
"""The read API end to end on the real stack: the whole pipeline and
feedline-api over a generated workload with celebrities above the
threshold, checked with a plain HTTP client against the feed oracle
(tests/e2e/feed_oracle.py, computed from the input topics):

1. for every sampled viewer (followers of celebrities among them), the
   feed paged to its end through the cursor equals the oracle's feed; the
   other endpoints (post, user, a user's posts, followers, following,
   notifications) equal the oracle for them;
2. viewers page through their feeds while the second half of the workload
   arrives: no item twice, newest first, and nothing the feed held below
   the first page is skipped;
3. Redis stopped: /readyz says degraded, every sampled feed is served from
   PostgreSQL (X-Feedline-Source) with the same pages as from Redis just
   before, never a 5xx; Redis restarted empty (its sink stopped): Redis
   answers but is `rebuilding` and PostgreSQL still serves; the sink
   started again rebuilds it and the API goes back to Redis by itself;
   live updates: a WebSocket gets a followed author's new post; one that
   reconnects with since= gets the posts it missed exactly once, then live
   updates and deletes again;
4. security and limits: no token, a token signed with another key, alg
   none, expired, another user's feed or notifications (403), a post the
   viewer may not see (404); a burst against a limit of 5 passes exactly 5
   and then gets 429 with Retry-After; bad parameters get 400 with a JSON
   error body;
5. every response of the run (thousands, the errors above among them)
   against the OpenAPI document the API serves at /openapi.json
   (connectors/api/openapi.json, checked by openapi_check.py).

Environment:
  E2E_API_USERS, E2E_API_POSTS, E2E_API_LIKES  workload (1500, 6000, 8000)
  E2E_API_SEED      workload seed (11)
  E2E_API_SAMPLE    viewers checked (80)
  E2E_KEEP          keep the work folder
"""
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

from itlib import BIN, KAFKA, ROOT, STACK_DIR  # noqa: E402
import feed_oracle  # noqa: E402
import openapi_check  # noqa: E402
import procs  # noqa: E402
from procs import Proc, free_port, wait_for, wait_idle  # noqa: E402
from test_projections import fresh_workload, produce_part, stack_up, redis_pid  # noqa: E402

USERS = int(os.environ.get("E2E_API_USERS", "1500"))
POSTS = int(os.environ.get("E2E_API_POSTS", "6000"))
LIKES = int(os.environ.get("E2E_API_LIKES", "8000"))
SEED = int(os.environ.get("E2E_API_SEED", "11"))
SAMPLE = int(os.environ.get("E2E_API_SAMPLE", "80"))

FEEDLINE = os.path.join(BIN, "feedline")
WORK = tempfile.mkdtemp(prefix="feedline-api-")
PROCESSORS = ("fanout", "timeline", "engagement", "affinity")
SINKS = ("redis-sink", "pg-sink")
SECRET = b"feedline-development-secret-change-me"
# (method, path, status, headers, raw body) of every response Client.get had
RESPONSES = []


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class ApiProc(Proc):
    """feedline-api on its own port (FEEDLINE_API), with the run's topology."""

    def _spawn(self, env):
        log_f = open(self.log_path, "a")
        env = dict(env or os.environ, FEEDLINE_API="127.0.0.1:%d" % self.port)
        self.p = subprocess.Popen([os.path.join(self.bindir, "feedline-api")], stdout=log_f,
                                  stderr=log_f, env=env, cwd=ROOT)
        log_f.close()
        self.starts += 1


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub, secret=SECRET, alg="HS256", exp_in=3600, **claims):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    c = {"sub": str(sub), "exp": int(time.time()) + exp_in, "iss": "feedline",
         "aud": "feedline-api"}
    c.update(claims)
    body = b64(json.dumps(c).encode())
    if alg == "none":
        return head + "." + body + "."
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64(sig)


def json_or_raw(headers, body):
    ctype = headers.get("content-type", "")
    return json.loads(body) if body and ctype.startswith("application/json") else body


def check_openapi(cl, need=(400, 401, 403, 404, 405, 414, 429)):
    """Every recorded response against the document the API serves, which
    must include one of each status in need."""
    st, _, doc = cl.get("/openapi.json")
    assert st == 200, "/openapi.json: %d" % st
    with open(os.path.join(ROOT, "connectors", "api", "openapi.json")) as f:
        assert doc == json.load(f), "/openapi.json is not connectors/api/openapi.json"
    openapi_check.check_document(doc)
    ck = openapi_check.Checker(doc)
    t0 = time.time()
    for method, path, status, headers, body in RESPONSES:
        ck.check(method, path, status, headers, json_or_raw(headers, body))
    codes = {r[2] for r in RESPONSES}
    missing = set(need) - codes
    assert not missing, "no response with %s was checked" % sorted(missing)
    log("openapi: %d responses (codes %s) fit /openapi.json (%.1f s)"
        % (ck.checked, sorted(codes), time.time() - t0))


class Client:
    """One keep-alive connection to the API."""

    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.tokens = {}

    def get(self, path, viewer=None, tok=None, method="GET", body=None, headers=None):
        """(status, headers, body: JSON decoded when it is JSON); body: a
        request body sent as JSON (or bytes as they are), headers: more
        request headers."""
        h = dict(headers or {})
        if tok is None and viewer is not None:
            tok = self.tokens.setdefault(viewer, token(viewer))
        if tok is not None:
            h["Authorization"] = "Bearer " + tok
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                body = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt:
                    raise
        headers = {k.lower(): v for k, v in r.getheaders()}
        RESPONSES.append((method, path, r.status, headers, body))
        return r.status, headers, json_or_raw(headers, body)

    def ok(self, path, viewer):
        st, h, doc = self.get(path, viewer)
        assert st == 200, "%s for viewer %s: %d %s" % (path, viewer, st, doc)
        return h, doc

    def pages(self, path, viewer, limit=20, max_pages=200, between=None):
        """Every item of a cursor-paginated list, and the source of each page."""
        items, sources, cursor = [], set(), None
        for _ in range(max_pages):
            sep = "&" if "?" in path else "?"
            q = "%s%slimit=%d" % (path, sep, limit) + ("&cursor=" + cursor if cursor else "")
            h, doc = self.ok(q, viewer)
            sources.add(h.get("x-feedline-source"))
            items += doc["items"]
            cursor = doc["next_cursor"]
            if not cursor:
                return items, sources
            if between:
                between()
        raise AssertionError("%s: more than %d pages" % (path, max_pages))


def tails():
    paths = {}
    for t in ("posts", "follows", "likes", "users"):
        paths[t] = os.path.join(WORK, t + ".tail")
        procs.tail_to_file(BIN, t, paths[t])
    return paths


def build_oracle():
    p = tails()
    return feed_oracle.build(p["posts"], p["follows"], p["likes"], p["users"],
                             procs.topology_settings(BIN))


def sample_viewers(orc, users, need_fans):
    """SAMPLE viewers, half of them (when there are) followers of celebrities."""
    rng = random.Random(SEED)
    fans = [u for u in users if orc.celebrity_posts(u)]
    others = [u for u in users if u not in set(fans)]
    n_fans = min(len(fans), SAMPLE // 2)
    assert n_fans >= need_fans, "the workload has only %d followers of celebrities" % len(fans)
    return rng.sample(fans, n_fans) + rng.sample(others, min(len(others), SAMPLE - n_fans))


def check_feeds(cl, orc, viewers, want_source):
    bad = []
    for v in viewers:
        items, sources = cl.pages("/v1/feed", v)
        assert sources == {want_source}, "viewer %s served from %s" % (v, sources)
        why = orc.feed_mismatch(v, items)
        if why:
            bad.append((v, why))
    assert not bad, "%d of %d feeds differ from the oracle, e.g. %s" % (len(bad), len(viewers),
                                                                       bad[:3])


def check_endpoints(cl, orc, viewers, users):
    rng = random.Random(SEED + 1)
    checked = {"users": 0, "posts": 0, "user_posts": 0, "notifications": 0, "follows": 0}
    for v in viewers:
        u = rng.choice(users)
        st, _, doc = cl.get("/v1/users/%s" % u, v)
        want = orc.user(u)
        if want is None:
            assert st == 404, "user %s: %d, want 404" % (u, st)
        else:
            assert st == 200 and doc == want, "user %s: %s, want %s" % (u, doc, want)
        checked["users"] += 1
        items, _ = cl.pages("/v1/users/%s/posts" % u, v)
        assert items == orc.user_posts(u, v), "posts of %s for %s differ" % (u, v)
        checked["user_posts"] += 1
        for p in [i["post_id"] for i in items[:3]] + [str(rng.randint(1, 10 ** 6))]:
            st, _, doc = cl.get("/v1/posts/%s" % p, v)
            want = orc.post(p, v)
            assert (st, doc if st == 200 else None) == ((200, want) if want else (404, None)), \
                "post %s for %s: %d %s, want %s" % (p, v, st, doc, want)
            checked["posts"] += 1
        # a ranked page with its scores' parts: its shape is check_openapi's
        st, h, _ = cl.get("/v1/feed?order=ranked&explain=1&limit=50", v)
        assert st == 200 and h.get("x-feedline-ranking") == "ranked", (v, st, h)
        notes, _ = cl.pages("/v1/notifications", v)
        want = orc.notifications(v)
        if len(want) < 200:  # past the cap, withdrawn ones are not refilled
            got = [{"kind": n["kind"], "actor_id": n["actor_id"], "post_id": n["post_id"],
                    "created_at": n["created_at"]} for n in notes]
            assert got == want, "notifications of %s differ: %s vs %s" % (v, got[:3], want[:3])
            checked["notifications"] += 1
        for rel in ("followers", "following"):
            got, srcs = cl.pages("/v1/users/%s/%s" % (u, rel), v, limit=50)
            assert srcs == {"postgres"}, srcs
            assert [g["user_id"] for g in got] == getattr(orc, rel)(u), "%s of %s" % (rel, u)
            checked["follows"] += 1
    log("endpoints: %s equal the oracle" % checked)


def page_while_arriving(cl, orc_before, viewers, gen):
    """Pages slowly through each viewer's feed while part 2 is produced."""
    firsts, got = {}, {}
    for v in viewers:
        _, doc = cl.ok("/v1/feed?limit=10", v)
        firsts[v] = doc
    t = threading.Thread(target=produce_part, args=(gen, 2))
    t.start()
    for v in viewers:
        items, cursor = list(firsts[v]["items"]), firsts[v]["next_cursor"]
        while cursor:
            time.sleep(0.05)
            _, doc = cl.ok("/v1/feed?limit=10&cursor=" + cursor, v)
            items += doc["items"]
            cursor = doc["next_cursor"]
        got[v] = items
    t.join()
    return firsts, got


def check_paging(orc_before, orc_after, firsts, got):
    def pos(i):
        return (i["created_at"], int(i["post_id"]))
    for v, items in got.items():
        ids = [i["post_id"] for i in items]
        assert len(ids) == len(set(ids)), "viewer %s saw a post twice while paging" % v
        assert all(pos(a) > pos(b) for a, b in zip(items, items[1:])), \
            "viewer %s: pages out of order" % v
        if not firsts[v]["items"] or not orc_before.feed(v)["exact"]:
            continue
        top = pos(firsts[v]["items"][0])
        after = {i["post_id"] for i in orc_after.feed(v)["items"]}
        # everything the feed held at or below the first page, and still
        # holds, must have been served
        missed = [i["post_id"] for i in orc_before.feed(v)["items"]
                  if pos(i) <= top and i["post_id"] in after and i["post_id"] not in set(ids)]
        assert not missed, "viewer %s skipped %s while paging" % (v, missed[:5])
    log("paging while posts arrive: %d viewers, no repeats, no skips" % len(got))


def check_security(cl, orc, viewers):
    v = viewers[0]
    other = viewers[1]
    cases = [("no token", None),
             ("wrong key", token(v, secret=b"x" * 40)),
             ("alg none", token(v, alg="none")),
             ("expired", token(v, exp_in=-3600)),
             ("nbf ahead", token(v, nbf=int(time.time()) + 3600)),
             ("wrong aud", token(v, aud="someone-else")),
             ("tampered", re.sub(r"^([^.]+)\.([^.]+)\.", lambda m: m.group(1) + "." + b64(
                 json.dumps({"sub": str(other), "exp": int(time.time()) + 60}).encode()) + ".",
                 token(v))),
             ("garbage", "abc"), ("oversized", "a" * 5000)]
    for what, tok in cases:
        st, h, doc = cl.get("/v1/feed", tok=tok if tok is not None else None)
        assert st == 401, "%s: %d" % (what, st)
        assert doc["error"]["code"] == "unauthorized", doc
        assert "www-authenticate" in h
    for path in ("/v1/users/%s/feed" % other, "/v1/users/%s/notifications" % other):
        st, _, doc = cl.get(path, v)
        assert st == 403 and doc["error"]["code"] == "forbidden", (path, st, doc)
    # a post the viewer may not read is a 404
    hidden = None
    for p, rec in orc.reg.items():
        if rec[5] and orc.post(p, v) is None:
            hidden = p
            break
    if hidden is not None:
        st, _, doc = cl.get("/v1/posts/%s" % hidden, v)
        assert st == 404, "hidden post %s: %d %s" % (hidden, st, doc)
    for q in ("limit=0", "limit=101", "limit=x", "cursor=zzz", "order=best", "bogus=1",
              "cursor=" + "c" + "0" * 31 + "1&order=ranked"):
        st, _, doc = cl.get("/v1/feed?" + q, v)
        assert st == 400 and doc["error"]["code"] == "bad_request", (q, st, doc)
    st, _, doc = cl.get("/v1/feed", v, method="POST")
    assert st == 405 and "error" in doc, (st, doc)
    # the development login is off unless configured (test_web.py turns it on)
    st, _, doc = cl.get("/dev/login", method="POST", body={"user_id": str(v)})
    assert st == 404 and doc["error"]["code"] == "not_found", (st, doc)
    st, _, doc = cl.get("/v1/" + "x" * 600, v)
    assert st == 414, st
    log("security: 401 x %d, 403, 404 and 400s as expected" % len(cases))


def check_rate_limit(viewer):
    """A second API whose limit is 5 at once, then 1 a second."""
    with open(os.environ["FEEDLINE_TOPOLOGY"]) as f:
        text = f.read()
    text, n1 = re.subn(r"(?m)^(\s+requests_per_s:\s*)\d+", r"\g<1>1", text)
    text, n2 = re.subn(r"(?m)^(\s+burst:\s*)\d+", r"\g<1>5", text)
    assert n1 == n2 == 1, "rate_limit not found in the topology"
    path = os.path.join(WORK, "topology-ratelimit.yaml")
    with open(path, "w") as f:
        f.write(text)
    api = ApiProc(BIN, "api", "ratelimit", None, None, WORK)
    api.start(env={"FEEDLINE_TOPOLOGY": path})
    try:
        cl = Client(api.port)
        def up():
            try:
                return cl.get("/readyz")[2].get("serving_from") == "redis"
            except OSError:
                return False
        wait_for(up, 20, "the second API to serve from Redis")
        got = [cl.get("/v1/users/%s" % viewer, viewer) for _ in range(8)]
        codes = [g[0] for g in got]
        assert codes[:5] in ([200] * 5, [200] * 4 + [404], [404] * 5) or \
            all(c in (200, 404) for c in codes[:5]), codes
        assert codes[5:] == [429, 429, 429], codes
        st, h, doc = got[5]
        assert h.get("retry-after") == "1", h
        assert doc["error"]["code"] == "rate_limited", doc
        assert h.get("ratelimit", "").startswith("limit=5, remaining=0"), h
        time.sleep(1.1)
        assert cl.get("/v1/users/%s" % viewer, viewer)[0] != 429, "no request allowed after 1 s"
    finally:
        api.stop()
    log("rate limit: a burst of 8 passed 5, then 429 with Retry-After: 1")


def produce_events(events):
    subprocess.run([FEEDLINE, "produce", "posts"], input="".join(json.dumps(e) + "\n"
                                                                for e in events),
                   text=True, check=True, capture_output=True)


def check_stream(port, orc, viewers, figures):
    """A followed author posts: the viewer's WebSocket gets the update; a
    stream that reconnects with since= gets what it missed exactly once,
    then live events again (a delete too)."""
    import websocket
    v = a = None
    for cand in viewers:
        authors = [x for x in orc.following(cand) if int(x) not in orc.celebrities]
        if authors:
            v, a = cand, int(authors[0])
            break
    assert v, "no sampled viewer follows a regular author"
    url = "ws://127.0.0.1:%d/v1/stream" % port
    hdr = ["Authorization: Bearer " + token(v)]
    base = 9 * 10 ** 12 + int(time.time() * 1000) % 10 ** 9

    def post(pid, kind="PostCreated"):
        now = int(time.time() * 1000)
        e = {"type": kind, "event_id": "ws-%s-%d" % (kind, pid), "occurred_at": now,
             "post_id": pid, "author_id": a}
        if kind == "PostCreated":
            e.update(created_at=now, text="live %d" % pid, visibility="PUBLIC")
        produce_events([e])

    def until(ws, want):
        while True:
            m = json.loads(ws.recv())
            if want(m):
                return m

    ws = websocket.create_connection(url, header=hdr, timeout=15)
    t0 = time.time()
    post(base)
    m = until(ws, lambda m: m.get("post", {}).get("post_id") == str(base))
    figures["stream_event_s"] = round(time.time() - t0, 3)
    assert m["event"] == "update" and m["position"], m
    ws.close()
    for k in (1, 2, 3):
        post(base + k)
    wait_for(lambda: cl_feed_has(port, v, base + 3), 30, "the missed posts to reach the feed")
    ws = websocket.create_connection(url + "?since=" + m["position"], header=hdr, timeout=3)
    got = []
    try:
        while True:
            got.append(json.loads(ws.recv()))
    except websocket.WebSocketTimeoutException:
        pass
    ids = [g["post"]["post_id"] for g in got if g["event"] == "update"]
    assert ids == [str(base + k) for k in (1, 2, 3)], "after reconnecting: %s" % ids
    ws.settimeout(15)
    post(base + 4)
    m = until(ws, lambda m: m.get("post", {}).get("post_id") == str(base + 4))
    post(base + 2, "PostDeleted")
    m = until(ws, lambda m: m["event"] == "delete")
    assert m == {"event": "delete", "post_id": str(base + 2)}, m
    ws.close()
    st, _, _ = Client(port).get("/v1/stream", v)
    assert st == 400, "a plain GET of the stream: %d" % st
    log("stream: update in %.3f s; 3 missed posts once after since=; live and delete again" %
        figures["stream_event_s"])


def cl_feed_has(port, viewer, pid):
    st, _, doc = Client(port).get("/v1/feed?limit=10", viewer)
    return st == 200 and any(i["post_id"] == str(pid) for i in doc["items"])


def registered_users(gen, part=1):
    """The ids the workload's users part registers, ascending."""
    with open(os.path.join(gen, "users.%d.jsonl" % part)) as f:
        return sorted({json.loads(line)["user_id"] for line in f if line.strip()})


def longest_feeds(cl, users, n):
    """The n users with the longest feeds (counted to 200) among users,
    longest first, each registered (its profile reads)."""
    sizes = []
    for u in users:
        st, _, doc = cl.get("/v1/feed?limit=100", u)
        if st == 200 and cl.get("/v1/users/%s" % u, u)[0] == 200:
            sizes.append((len(doc["items"]) + (100 if doc["next_cursor"] else 0), u))
    best = sorted(sizes, reverse=True)[:n]
    log("viewers %s (feed sizes %s)" % ([u for _, u in best], [s for s, _ in best]))
    return [u for _, u in best]


def regular_followee(cl, viewers):
    """(viewer, author): the first of viewers who follows an author who is
    not a celebrity (so a new post of the author is fanned out to the
    viewer's feed at once), by the API's following lists."""
    for v in viewers:
        st, _, doc = cl.get("/v1/users/%s/following?limit=100" % v, v)
        for f in doc.get("items", []) if st == 200 else []:
            st2, _, u = cl.get("/v1/users/%s" % f["user_id"], v)
            if st2 == 200 and not u["is_celebrity"]:
                return v, int(f["user_id"])
    raise AssertionError("none of %s follows a regular author" % viewers)


def new_post(author, text, pid=None):
    """Produces a public PostCreated of author now; its post id."""
    now = int(time.time() * 1000)
    pid = pid or 9 * 10 ** 12 + now % 10 ** 9
    produce_events([{"type": "PostCreated", "event_id": "live-%d" % pid, "occurred_at": now,
                     "post_id": pid, "author_id": author, "created_at": now, "text": text,
                     "visibility": "PUBLIC"}])
    return pid


def workload_size(prefix, users, posts, likes, seed):
    """(users, posts, likes, seed) of a test's workload: PREFIX_USERS,
    PREFIX_POSTS, PREFIX_LIKES and PREFIX_SEED override the defaults."""
    return tuple(int(os.environ.get("%s_%s" % (prefix, k), v)) for k, v in
                 (("USERS", users), ("POSTS", posts), ("LIKES", likes), ("SEED", seed)))


def run_small(name, size, check, api_env=None):
    """A test on small_pipeline: check(api, client, workload folder) over
    a workload of size (workload_size), in a work folder removed after
    unless E2E_KEEP is set; prints `ok   NAME`."""
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="feedline-%s-" % name)
    log("work folder %s" % work)
    users, posts, likes, seed = size
    try:
        with small_pipeline(work, seed, users, posts, likes, api_env) as (_, api, cl, gen):
            check(api, cl, gen)
    finally:
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    log("took %.0f s" % (time.time() - t0))
    print("ok   %s" % name)


@contextlib.contextmanager
def small_pipeline(work, seed, users, posts, likes, api_env=None):
    """A generated workload in one part (fresh_workload) through every
    processor and sink, and feedline-api (api_env added to its environment)
    serving it from Redis; yields (pipeline, api, client, workload folder)
    and stops them all after."""
    gen = fresh_workload(work, seed, users, posts, likes, parts=1)
    state = os.path.join(work, "state")
    pipeline = [Proc(BIN, n, 0, state, None, work) for n in PROCESSORS] + \
        [Proc(BIN, n, 0, None, None, work) for n in SINKS]
    api = ApiProc(BIN, "api", 0, None, None, work)
    try:
        produce_part(gen, 1)
        for p in pipeline:
            p.start()
        api.start(env=api_env)
        wait_idle(pipeline, timeout_s=300)
        cl = Client(api.port)

        def serving():
            assert api.alive(), "feedline-api exited: %s" % api.log_since_start()[-2000:]
            try:
                return cl.get("/readyz")[2].get("serving_from") == "redis"
            except OSError:
                return False
        wait_for(serving, 30, "the API to serve from Redis")
        yield pipeline, api, cl, gen
    finally:
        for p in pipeline + [api]:
            p.stop()


def feeds_snapshot(cl, viewers):
    return {v: cl.pages("/v1/feed", v)[0] for v in viewers}


def main():
    log("work folder %s" % WORK)
    gen = fresh_workload(WORK, SEED, USERS, POSTS, LIKES, parts=2)
    state = os.path.join(WORK, "state")
    ps = [Proc(BIN, n, 0, state, None, WORK) for n in PROCESSORS]
    sinks = [Proc(BIN, n, 0, None, None, WORK) for n in SINKS]
    api = ApiProc(BIN, "api", 0, None, None, WORK)
    pipeline = ps + sinks
    figures = {}
    try:
        produce_part(gen, 1)
        for p in pipeline + [api]:
            p.start()
        wait_idle(pipeline, timeout_s=600)
        cl = Client(api.port)
        wait_for(lambda: cl.get("/readyz")[0] == 200, 30, "the API to be ready")
        # `feedline token` mints what the API accepts
        tok = subprocess.run([FEEDLINE, "token", "1", "--ttl", "60"], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert cl.get("/v1/feed", tok=tok)[0] == 200, "a token of `feedline token` refused"
        orc = build_oracle()
        users = sorted({str(u) for u in orc.users} | {str(u) for u in orc.doc["users"]}, key=int)
        early = sample_viewers(orc, users, need_fans=0)
        check_feeds(cl, orc, early, "redis")
        check_security(cl, orc, early)
        log("part 1 idle: %d feeds equal the oracle" % len(early))
        # 2. paging while the rest arrives (the celebrities cross the
        # threshold in this part)
        firsts, got = page_while_arriving(cl, orc, early[:12], gen)
        wait_idle(pipeline, timeout_s=600)
        orc2 = build_oracle()
        check_paging(orc, orc2, firsts, got)
        users = sorted({str(u) for u in orc2.users} | {str(u) for u in orc2.doc["users"]},
                       key=int)
        viewers = sample_viewers(orc2, users, need_fans=5)
        t0 = time.time()
        check_feeds(cl, orc2, viewers, "redis")
        log("part 2 idle: %d viewers (%d follow celebrities) paged to the end equal the oracle "
            "(%.1f s)" % (len(viewers), sum(1 for v in viewers if orc2.celebrity_posts(v)),
                          time.time() - t0))
        check_endpoints(cl, orc2, viewers, users)
        # 3. Redis down: PostgreSQL serves the same pages
        before = feeds_snapshot(cl, viewers)
        log("Redis: SIGTERM")
        os.kill(redis_pid(), 15)
        wait_for(lambda: cl.get("/readyz")[2].get("serving_from") == "postgres", 20,
                 "readyz to report PostgreSQL")
        st, _, doc = cl.get("/readyz")
        assert st == 200 and doc["status"] == "degraded", (st, doc)
        t0 = time.time()
        for v in viewers:
            items, sources = cl.pages("/v1/feed", v)
            assert sources == {"postgres"}, sources
            assert items == before[v], "viewer %s: PostgreSQL's pages differ from Redis's" % v
        figures["pg_feeds_s"] = round(time.time() - t0, 1)
        check_endpoints(cl, orc2, viewers[:10], users)
        log("Redis down: %d feeds from PostgreSQL equal Redis's" % len(viewers))
        # Redis back empty while its sink is stopped: it answers but holds
        # nothing, so PostgreSQL keeps serving; then the sink rebuilds it
        redis_sink = [p for p in sinks if p.name == "redis-sink"][0]
        redis_sink.stop()
        stack_up()
        time.sleep(2)
        st, _, doc = cl.get("/readyz")
        assert doc["redis"] == "rebuilding" and doc["serving_from"] == "postgres", doc
        assert cl.get("/v1/feed", viewers[0])[1].get("x-feedline-source") == "postgres"
        redis_sink.start()
        wait_idle(sinks, timeout_s=600)
        wait_for(lambda: cl.get("/readyz")[2].get("serving_from") == "redis", 20,
                 "the API to return to Redis")
        check_feeds(cl, orc2, viewers, "redis")
        log("Redis back (rebuilt by the sink): feeds from Redis again")
        check_rate_limit(viewers[0])
        check_openapi(cl)
        check_stream(api.port, orc2, viewers, figures)  # last: it adds posts
        m = procs.scrape(api.port)
        figures["requests"] = int(procs.total(m, "feedline_api_requests_total"))
        figures["failovers"] = int(procs.total(m, "feedline_api_redis_failovers_total"))
        fives = sum(v for k, v in m.items()
                    if k.startswith("feedline_api_requests_total") and 'code="5' in k)
        assert fives == 0, "the API answered 5xx %d times" % fives
    finally:
        for p in pipeline + [api]:
            p.stop()
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(WORK, ignore_errors=True)
    log("figures: %s" % json.dumps(figures, sort_keys=True))
    print("ok   api")


if __name__ == "__main__":
    main()
