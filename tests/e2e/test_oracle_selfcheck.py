#!/usr/bin/env python3
"""Self-check of the end-to-end test's workload generator and oracle, with
no Kafka: generated JSON lines are wrapped as `feedline tail` records (the
partition from Kafka's murmur2, offsets per partition) and fed to the
oracle, whose result must satisfy invariants computed here from the
generated events directly. Also: murmur2 test vectors, hand-checked
scenarios with exact expected timelines, the input merge order, and the
"trimmed" flag's promise (timelines of unflagged users are the same in
every interleaving of the fan-out partitions).

    test_oracle_selfcheck.py [--scale small|default] [--keep DIR]

Exit status 0 when every check passed; the last line is "N passed, N failed".
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import oracle  # noqa: E402
import workload  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FEEDLINE = os.path.join(os.environ.get("FEEDLINE_BIN_DIR", os.path.join(ROOT, "build", "bin")),
                        "feedline")
PARTS = 4
SMALL_CFG = {"celebrity_threshold": 1000, "celebrity_hysteresis": 100, "timeline_cap": 150,
             "backfill_size": 20, "outbox_cap": 100}
DEFAULT_CFG = {"celebrity_threshold": 10000, "celebrity_hysteresis": 1000, "timeline_cap": 800,
               "backfill_size": 200, "outbox_cap": 800}


# ---- helpers --------------------------------------------------------------------
def to_tail(src, topic, dst, partitions=PARTS, extra=()):
    """Wraps the JSON lines of src as `feedline tail` records in dst; extra
    are raw records (dicts without offset) appended to their partition."""
    key_field = {"posts": "author_id", "follows": "followee_id", "likes": "post_id",
                 "users": "user_id"}[topic]
    offsets = defaultdict(int)
    with open(src) as f, open(dst, "w") as out:
        for line in f:
            v = json.loads(line)
            key = str(v[key_field])
            p = workload.partition_of(key, partitions)
            rec = {"topic": topic, "partition": p, "offset": offsets[p],
                   "timestamp": v["occurred_at"], "key": key, "value": v}
            offsets[p] += 1
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
        for x in extra:
            rec = dict(x, topic=topic, offset=offsets[x["partition"]])
            offsets[x["partition"]] += 1
            out.write(json.dumps(rec) + "\n")


def write_records(path, topic, events):
    """events: (partition, event) in offset order per partition."""
    offsets = defaultdict(int)
    with open(path, "w") as f:
        for p, v in events:
            rec = {"topic": topic, "partition": p, "offset": offsets[p], "timestamp": 0,
                   "key": "k", "value": v}
            if isinstance(v, str):
                rec.pop("value")
                rec["error"] = v
            offsets[p] += 1
            f.write(json.dumps(rec) + "\n")


class Scenario:
    """A hand-written input: add events with increasing occurred_at."""

    def __init__(self):
        self.posts, self.follows, self.t = [], [], 1000

    def _ev(self, typ, **kw):
        self.t += 1
        part = kw.pop("part", 0)
        t = kw.pop("t", self.t)
        v = dict(type=typ, event_id="s-%d" % self.t, occurred_at=t, **kw)
        return part, v

    def post(self, pid, author, vis="PUBLIC", **kw):
        part, v = self._ev("PostCreated", post_id=pid, author_id=author, text="x",
                           visibility=vis, reply_to=None, **kw)
        v.setdefault("created_at", v["occurred_at"])
        self.posts.append((part, v))

    def delete(self, pid, author, **kw):
        self.posts.append(self._ev("PostDeleted", post_id=pid, author_id=author, **kw))

    def follow(self, follower, followee, **kw):
        self.follows.append(self._ev("FollowAdded", follower_id=follower, followee_id=followee,
                                     **kw))

    def unfollow(self, follower, followee, **kw):
        self.follows.append(self._ev("FollowRemoved", follower_id=follower,
                                     followee_id=followee, **kw))

    def run(self, tmp, cfg, recorder=None):
        pp, fp = os.path.join(tmp, "s-posts.json"), os.path.join(tmp, "s-follows.json")
        write_records(pp, "posts", self.posts)
        write_records(fp, "follows", self.follows)
        return oracle.compute(pp, fp, cfg, PARTS, recorder)


def timelines(doc):
    return {int(u): e["timeline"] for u, e in doc["users"].items()}


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def run(self, fn, *args):
        t0 = time.time()
        try:
            fn(*args)
        except Exception as e:  # report, go on
            self.failed += 1
            print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__, e), flush=True)
        else:
            self.passed += 1
            print("ok   %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)


# ---- checks ----------------------------------------------------------------------
def check_murmur2():
    # Vectors of Kafka's own UtilsTest.testMurmur2.
    vectors = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
               "a-little-bit-longer-string": -1486304829,
               "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
               "abc": 479470107}
    for s, h in vectors.items():
        assert workload.murmur2(s.encode()) == h, (s, workload.murmur2(s.encode()), h)
    if os.access(FEEDLINE, os.X_OK):
        keys = ["1", "42", "1000000", "1000001", "1003191", "-5", "9223372036854775807"]
        for k in keys:
            out = subprocess.run([FEEDLINE, "partition", "4", k], capture_output=True, text=True,
                                 cwd=ROOT, timeout=30)
            if out.returncode == 0:
                assert int(out.stdout.strip()) == workload.partition_of(k, 4), (k, out.stdout)


def check_basic_rules(tmp):
    cfg = {"celebrity_threshold": 3, "celebrity_hysteresis": 1, "timeline_cap": 5,
           "backfill_size": 2, "outbox_cap": 3}
    s = Scenario()
    s.follow(2, 1)
    s.post(101, 1)
    s.post(102, 1, "PRIVATE")
    s.post(103, 1, "FOLLOWERS")
    s.post(104, 1)
    s.follow(3, 1)          # backfill: 104, 103 (102 is private)
    s.delete(103, 1)        # gone everywhere
    s.unfollow(2, 1)        # 2 loses every post of 1
    s.post(105, 1)
    s.post(101, 1)          # duplicate: ignored
    s.post(101, 5)          # another author's post id: invalid
    s.delete(104, 5)        # wrong author: invalid
    s.follow(4, 4)          # self-follow: invalid
    s.unfollow(4, 4)        # self-unfollow: invalid
    s.delete(200, 1)        # unknown: remembered as deleted
    s.post(200, 1)          # ... so this is ignored
    s.unfollow(6, 1)        # unknown edge: nothing
    s.follow(3, 1)          # duplicate follow: nothing
    s.posts.append((0, "bad magic byte"))                  # undecodable
    s.posts.append((0, {"type": "LikeAdded", "event_id": "l", "occurred_at": 5, "user_id": 1,
                        "post_id": 2, "author_id": 3}))    # wrong topic
    s.follows.append((0, {"type": "FollowAdded", "event_id": "", "occurred_at": 5,
                          "follower_id": 1, "followee_id": 2}))  # empty event_id
    doc = s.run(tmp, cfg)
    got = timelines(doc)
    assert got == {1: [105, 104, 102, 101], 3: [105, 104]}, got
    assert doc["dead_letters"] == 7, doc["dead_letter_reasons"]
    assert doc["celebrities"] == [], doc["celebrities"]
    assert not any(e["trimmed"] for e in doc["users"].values())


def check_engagement_rules(tmp):
    """compute_engagement on a hand-written input with its exact facts."""
    s = Scenario()
    likes = []

    def like(typ, post, user, author):
        s.t += 1
        likes.append((0, dict(type=typ, event_id="l-%d" % s.t, occurred_at=s.t, post_id=post,
                              user_id=user, author_id=author)))
        return s.t

    t1 = like("LikeAdded", 100, 7, 3)
    like("LikeAdded", 100, 7, 3)            # duplicate: nothing
    like("LikeRemoved", 100, 8, 3)          # unlike without like: nothing
    like("LikeAdded", 100, 8, 3)
    like("LikeRemoved", 100, 8, 99)         # the stored author counts
    t2 = like("LikeAdded", 100, 8, 3)       # re-like: notified again, new time
    t3 = like("LikeAdded", 101, 3, 3)       # self-like: counted, no notification
    like("LikeAdded", 100, 9, 4)            # another author than the likes': invalid
    like("LikeAdded", 102, 7, 3)
    like("LikeRemoved", 102, 7, 3)          # count back to 0: no fact
    likes.append((0, "bad magic byte"))      # undecodable
    s.follow(7, 3)
    tf = s.t
    s.follow(7, 3)                          # duplicate
    s.follow(8, 3)
    s.unfollow(8, 3)
    s.unfollow(9, 3)                        # absent edge
    s.follow(3, 3)                          # self-follow: invalid
    s.post(200, 3)
    s.post(201, 3)
    s.post(200, 3)                          # duplicate
    s.delete(201, 3)
    s.delete(202, 3)                        # unknown: remembered as deleted
    s.post(202, 3)                          # ... so ignored
    s.post(200, 5)                          # another author's id: invalid
    pp, fp, lp = (os.path.join(tmp, "e-%s.json" % t) for t in ("posts", "follows", "likes"))
    write_records(pp, "posts", s.posts)
    write_records(fp, "follows", s.follows)
    write_records(lp, "likes", likes)
    e = oracle.compute_engagement(pp, fp, lp)
    assert e["likes"] == [[100, 7, t1], [100, 8, t2], [101, 3, t3]], e["likes"]
    assert e["post_likes"] == {"100": 2, "101": 1}, e["post_likes"]
    assert e["affinity"] == {"7,3": 1, "8,3": 1, "3,3": 1}, e["affinity"]
    assert e["notifications"] == [[3, "follow", 7, 0, tf], [3, "like", 7, 100, t1],
                                  [3, "like", 8, 100, t2]], e["notifications"]
    assert e["follows"] == [[3, 7, tf]], e["follows"]
    assert e["followers"] == {"3": 1} and e["following"] == {"7": 1}, e
    assert e["posts"] == {"3": 1}, e["posts"]
    assert e["dead_letters"] == 4, e["dead_letter_reasons"]


def check_celebrity_hysteresis(tmp):
    cfg = {"celebrity_threshold": 3, "celebrity_hysteresis": 1, "timeline_cap": 50,
           "backfill_size": 2, "outbox_cap": 10}
    s = Scenario()
    s.post(1, 10)
    s.follow(11, 10)        # backfill [1]
    s.follow(12, 10)        # backfill [1]
    s.follow(13, 10)        # count 3: celebrity, no backfill
    s.post(2, 10)           # own timeline only
    s.follow(14, 10)        # celebrity: no backfill
    s.unfollow(11, 10)      # 3 left, still celebrity
    s.unfollow(12, 10)      # 2 left: not < 3 - 1, still celebrity
    s.post(3, 10)
    s.unfollow(13, 10)      # 1 left: stops; 14 gets the 2 newest: 3, 2
    s.post(4, 10)           # fanned out again: 10, 14
    s.follow(11, 10)        # count 2 < 3: backfill 4, 3
    for f in (21, 22, 23):  # 20 ends a celebrity
        s.follow(f, 20)
    s.post(5, 20)
    doc = s.run(tmp, cfg)
    got = timelines(doc)
    assert got == {10: [4, 3, 2, 1], 11: [4, 3], 14: [4, 3, 2], 20: [5]}, got
    assert doc["celebrities"] == [20], doc["celebrities"]
    assert doc["dead_letters"] == 0


def check_cap_and_trim_flag(tmp):
    cfg = {"celebrity_threshold": 100, "celebrity_hysteresis": 10, "timeline_cap": 5,
           "backfill_size": 10, "outbox_cap": 10}
    s = Scenario()
    # 31 and 33 live in partition 0, 32 and 34 in partition 1.
    s.follow(30, 31, part=0)
    s.follow(30, 32, part=1)
    s.follow(40, 31, part=0)
    s.follow(50, 34, part=1)
    for i in range(4):
        s.post(310 + i, 31, part=0)
        s.post(320 + i, 32, part=1)
    for i in range(3):
        s.post(340 + i, 34, part=1)
    for i in range(3):
        s.delete(340 + i, 34, part=1)
    s.follow(50, 33, part=0)
    for i in range(4):
        s.post(330 + i, 33, part=0)
    doc = s.run(tmp, cfg)
    u = doc["users"]
    # 30: 8 entries, cap 5: the newest 5 in the oracle's order, all 8 untrimmed.
    assert u["30"]["trimmed"] and u["30"]["overflowed"], u["30"]
    assert u["30"]["timeline"] == [323, 313, 322, 312, 321], u["30"]
    assert u["30"]["untrimmed"] == [323, 313, 322, 312, 321, 311, 320, 310], u["30"]
    assert u["40"] == {"timeline": [313, 312, 311, 310], "trimmed": False}, u["40"]
    # 50 never held more than 4 in this order, but partition 1 gave it 3 and
    # partition 0 gives it 4: some interleaving holds 7 > 5.
    assert u["50"]["trimmed"] and not u["50"]["overflowed"], u["50"]
    assert u["50"]["timeline"] == u["50"]["untrimmed"] == [333, 332, 331, 330], u["50"]
    assert "34" not in u and "33" in u  # empty timelines are left out


def check_merge_order(tmp):
    cfg = {"celebrity_threshold": 3, "celebrity_hysteresis": 1, "timeline_cap": 50,
           "backfill_size": 5, "outbox_cap": 10}
    s = Scenario()
    # posts of partition 0 out of occurred_at order: the merge takes heads,
    # so post 9 (t=10) and 8 (t=1) both come after the follows (t=5..7),
    # when 60 is a celebrity already; sorting would backfill 8 to 61, 62.
    s.posts.append(s._ev("PostCreated", post_id=9, author_id=60, created_at=10, text="x",
                         visibility="PUBLIC", reply_to=None, t=10))
    s.posts.append(s._ev("PostCreated", post_id=8, author_id=60, created_at=1, text="x",
                         visibility="PUBLIC", reply_to=None, t=1))
    for i, f in enumerate((61, 62, 63)):
        s.follow(f, 60, t=5 + i)
    # Ties go to the topic named first: follows before posts.
    s.follow(71, 70, t=15)
    s.follow(72, 70, t=16)
    s.follow(73, 70, t=20)  # the third follower: 70 becomes a celebrity
    s.posts.append(s._ev("PostCreated", post_id=7, author_id=70, created_at=20, text="x",
                         visibility="PUBLIC", reply_to=None, t=20))
    doc = s.run(tmp, cfg)
    got = timelines(doc)
    assert got == {60: [9, 8], 70: [7]}, got


def gen_small(tmp, name, seed, extra_args=()):
    out = os.path.join(tmp, name)
    args = [sys.executable, os.path.join(HERE, "workload.py"), "--seed", str(seed),
            "--scale", "small", "--run-id", "selfcheck", "--out", out] + list(extra_args)
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("workload"), p.stderr
    return out


def check_workload_deterministic(tmp):
    a = gen_small(tmp, "det-a", 11)
    b = gen_small(tmp, "det-b", 11)
    c = gen_small(tmp, "det-c", 12)
    for f in ("users.jsonl", "follows.jsonl", "posts.jsonl"):
        with open(os.path.join(a, f), "rb") as x, open(os.path.join(b, f), "rb") as y:
            assert x.read() == y.read(), "%s differs for one seed" % f
    with open(os.path.join(a, "posts.jsonl"), "rb") as x, \
            open(os.path.join(c, "posts.jsonl"), "rb") as y:
        assert x.read() != y.read(), "two seeds gave the same posts"


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def check_workload_shape(ctx):
    d = ctx["gen"]
    users, follows, posts = (read_jsonl(os.path.join(d, f + ".jsonl"))
                             for f in ("users", "follows", "posts"))
    allev = users + follows + posts
    times = sorted(v["occurred_at"] for v in allev)
    assert all(b == a + 1 for a, b in zip(times, times[1:])), "occurred_at not 1 ms apart"
    for lst in (users, follows, posts):
        assert all(a["occurred_at"] < b["occurred_at"] for a, b in zip(lst, lst[1:]))
    ids = [v["event_id"] for v in allev]
    assert len(set(ids)) == len(ids), "duplicate event ids"
    assert all(v["event_id"].startswith("selfcheck-") for v in allev)
    req = {"UserRegistered": {"user_id", "handle", "display_name"},
           "UserUpdated": {"user_id", "display_name", "bio"},
           "FollowAdded": {"follower_id", "followee_id"},
           "FollowRemoved": {"follower_id", "followee_id"},
           "PostCreated": {"post_id", "author_id", "created_at", "text", "visibility", "reply_to"},
           "PostDeleted": {"post_id", "author_id"}}
    for v in allev:
        assert set(v) == req[v["type"]] | {"type", "event_id", "occurred_at"}, v
    assert {v["type"] for v in users} <= {"UserRegistered", "UserUpdated"}
    assert {v["type"] for v in follows} == {"FollowAdded", "FollowRemoved"}
    assert {v["type"] for v in posts} == {"PostCreated", "PostDeleted"}
    first = {}
    for v in posts:
        if v["type"] == "PostCreated" and v["post_id"] not in first:
            first[v["post_id"]] = v
            assert v["created_at"] == v["occurred_at"]
            assert v["post_id"] > 10 ** 12
    created = list(first)
    assert created == sorted(created), "post ids not time-ordered"
    vis = defaultdict(int)
    for v in first.values():
        vis[v["visibility"]] += 1
    n = len(first)
    assert abs(vis["PUBLIC"] / n - 0.80) < 0.03 and abs(vis["PRIVATE"] / n - 0.05) < 0.02, vis
    assert sum(1 for v in first.values() if v["reply_to"]) > n * 0.05
    dup = sum(1 for v in posts if v["type"] == "PostCreated") - n
    assert dup > 0
    # Follower counts: power law, celebrities far above everyone else.
    s = ctx["summary"]
    celebs = {c["user_id"] for c in s["celebrities"]}
    fc = defaultdict(int)
    for v in follows:
        if v["type"] == "FollowAdded" and v["followee_id"] not in celebs:
            fc[v["followee_id"]] += 1
    top = sorted(fc.values(), reverse=True)
    assert top[0] > 10 * top[len(top) // 2], top[:5]
    assert top[0] < s["celebrity_followers"] * 0.5
    # Deletes: some before their create, some of ids never created.
    pos = {}
    for i, v in enumerate(posts):
        if v["type"] == "PostCreated":
            pos.setdefault(v["post_id"], i)
    dels = [(i, v) for i, v in enumerate(posts) if v["type"] == "PostDeleted"]
    assert any(v["post_id"] not in pos for _, v in dels)
    assert any(v["post_id"] in pos and pos[v["post_id"]] > i for i, v in dels)
    assert sum(1 for v in follows if v["follower_id"] == v["followee_id"]) >= 5


def run_small_oracle(ctx, tmp):
    d = ctx["gen"]
    bad = [{"partition": 1, "timestamp": 0, "key": "bad", "error": "bad magic byte"},
           {"partition": 2, "timestamp": 0, "key": "bad",
            "value": {"type": "LikeAdded", "event_id": "x", "occurred_at": 1, "user_id": 1,
                      "post_id": 2, "author_id": 3}}]
    ctx["bad"] = len(bad) * 2
    to_tail(os.path.join(d, "posts.jsonl"), "posts", os.path.join(tmp, "posts.json"), extra=bad)
    to_tail(os.path.join(d, "follows.jsonl"), "follows", os.path.join(tmp, "follows.json"),
            extra=bad)
    with open(os.path.join(tmp, "settings.json"), "w") as f:
        json.dump(dict(SMALL_CFG, batch_max_records=5000), f)
    t0 = time.time()
    p = subprocess.run([sys.executable, os.path.join(HERE, "oracle.py"), "--posts",
                        os.path.join(tmp, "posts.json"), "--follows",
                        os.path.join(tmp, "follows.json"), "--settings",
                        os.path.join(tmp, "settings.json"), "--partitions", "4", "--out",
                        os.path.join(tmp, "expected.json")], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    print("     " + p.stderr.strip() + " (wall %.1fs)" % (time.time() - t0))
    with open(os.path.join(tmp, "expected.json")) as f:
        ctx["expected"] = json.load(f)


def facts(d):
    """What the generated events say, without the fan-out rules."""
    posts = read_jsonl(os.path.join(d, "posts.jsonl"))
    follows = read_jsonl(os.path.join(d, "follows.jsonl"))
    original, deleted = {}, set()
    for v in posts:
        pid = v["post_id"]
        if v["type"] == "PostCreated":
            if pid not in original and pid not in deleted:
                original[pid] = v
        elif pid not in original or original[pid]["author_id"] == v["author_id"]:
            deleted.add(pid)
    live = {pid: v for pid, v in original.items() if pid not in deleted}
    ever = set()
    for v in follows:
        if v["type"] == "FollowAdded" and v["follower_id"] != v["followee_id"]:
            ever.add((v["follower_id"], v["followee_id"]))
    return posts, follows, live, ever


def celebrity_periods(follows, author, threshold, hysteresis):
    """[(start_ms, end_ms or None)] when author was a celebrity, by counting."""
    fl, on, periods = set(), None, []
    for v in follows:
        if v["followee_id"] != author or v["follower_id"] == author:
            continue
        if v["type"] == "FollowAdded":
            fl.add(v["follower_id"])
            if on is None and len(fl) >= threshold:
                on = v["occurred_at"]
        else:
            fl.discard(v["follower_id"])
            if on is not None and len(fl) < threshold - hysteresis:
                periods.append((on, v["occurred_at"]))
                on = None
    if on is not None:
        periods.append((on, None))
    return periods


def check_oracle_invariants(ctx):
    exp, cfg, s = ctx["expected"], SMALL_CFG, ctx["summary"]
    cap = cfg["timeline_cap"]
    posts, follows, live, ever = facts(ctx["gen"])
    users = {int(u): e for u, e in exp["users"].items()}
    assert exp["settings"] == cfg
    assert exp["dead_letters"] == s["invalid_events"] + ctx["bad"], (
        exp["dead_letters"], s["invalid_events"], exp["dead_letter_reasons"])
    n_trim = sum(1 for e in users.values() if e["trimmed"])
    assert 0 < n_trim < len(users) * 0.2, (n_trim, len(users))
    for u, e in users.items():
        tl = e["timeline"]
        allowed = e.get("untrimmed", tl)
        assert len(tl) <= cap, (u, len(tl))
        assert tl == sorted(tl, reverse=True) and len(set(tl)) == len(tl), u
        assert set(tl) <= set(allowed) and allowed == sorted(allowed, reverse=True), u
        for pid in allowed:
            v = live.get(pid)
            assert v is not None, "user %d holds post %d, deleted or never created" % (u, pid)
            a = v["author_id"]
            if a != u:
                assert v["visibility"] != "PRIVATE", "user %d sees private post %d" % (u, pid)
                assert (u, a) in ever, "user %d never followed %d (post %d)" % (u, a, pid)
    own = defaultdict(list)
    for pid, v in live.items():
        own[v["author_id"]].append(pid)
    for a, pids in own.items():
        e = users.get(a)
        assert e is not None, "author %d has no timeline" % a
        assert set(pids) <= set(e.get("untrimmed", e["timeline"])), "author %d misses posts" % a
        if not e["trimmed"]:
            assert set(pids) <= set(e["timeline"])
    # Celebrities: the end state follows the scenario; posts made in a
    # celebrity period that never ended reach no follower.
    want = sorted(c["user_id"] for c in s["celebrities"] if c["scenario"] != "drops")
    assert exp["celebrities"] == want, (exp["celebrities"], want)
    for c in s["celebrities"]:
        periods = celebrity_periods(follows, c["user_id"], cfg["celebrity_threshold"],
                                    cfg["celebrity_hysteresis"])
        drops = {"stays": 0, "drops": 1, "drops and rises again": 1}[c["scenario"]]
        assert sum(1 for _, end in periods if end) == drops, (c, periods)
        last_start, last_end = periods[-1]
        if last_end is None:
            hidden = {pid for pid in own[c["user_id"]] if live[pid]["created_at"] > last_start}
            assert hidden or c["scenario"] != "stays", (c, periods)
            for u, e in users.items():
                if u != c["user_id"]:
                    assert not hidden & set(e.get("untrimmed", e["timeline"])), (u, c)
    # The drop fans the outbox out to every remaining follower.
    dropper = [c for c in s["celebrities"] if c["scenario"] == "drops"]
    if dropper:
        a = dropper[0]["user_id"]
        reached = sum(1 for u, e in users.items() if u != a and any(
            live[p]["author_id"] == a for p in e.get("untrimmed", e["timeline"])))
        assert reached > 0.5 * s["celebrity_followers"], reached


class Recorder:
    """Collects one fan-out partition's timeline operations, numbered in the
    oracle's global order."""
    seq = [0]

    def __init__(self, part, sink):
        self.part, self.ops = part, sink.setdefault(part, [])

    def _add(self, *op):
        Recorder.seq[0] += 1
        self.ops.append((Recorder.seq[0],) + op)

    def insert(self, recs, users):
        self._add("I", [(r[oracle.R_KEY], r[oracle.R_PID], r[oracle.R_AUTHOR]) for r in recs],
                  tuple(users))

    def remove(self, rec, users):
        self._add("R", rec[oracle.R_PID], tuple(users))

    def remove_author(self, author, user):
        self._add("A", author, user)


def apply_naive(ops, cap):
    """Timelines from ops with a plain dict per user (no sorted lists)."""
    tl = defaultdict(dict)  # user -> post_id -> (key, post_id, author)
    for op in ops:
        if op[1] == "I":
            for u in op[3]:
                t = tl[u]
                for e in op[2]:
                    if e[1] not in t:
                        t[e[1]] = e
                        if len(t) > cap:
                            del t[min(t.values())[1]]
        elif op[1] == "R":
            for u in op[3]:
                tl[u].pop(op[2], None)
        else:
            t = tl[op[3]]
            for pid in [pid for pid, e in t.items() if e[2] == op[2]]:
                del t[pid]
    return {u: [e[1] for e in sorted(t.values(), reverse=True)] for u, t in tl.items() if t}


def check_interleavings(ctx, tmp):
    """The global order gives exactly the oracle's timelines; random
    interleavings of the partitions change only flagged users, within
    their untrimmed sets."""
    sink = {}
    oracle.compute(os.path.join(tmp, "posts.json"), os.path.join(tmp, "follows.json"),
                   SMALL_CFG, 4, lambda p: Recorder(p, sink))
    exp = ctx["expected"]
    cap = SMALL_CFG["timeline_cap"]
    global_order = sorted((op for ops in sink.values() for op in ops), key=lambda o: o[0])
    got = apply_naive(global_order, cap)
    want = {int(u): e["timeline"] for u, e in exp["users"].items() if e["timeline"]}
    assert got == want, "global order differs for %d users" % sum(
        1 for u in set(got) | set(want) if got.get(u) != want.get(u))
    rng = random.Random(5)
    changed = 0
    for trial in range(3):
        queues = {p: list(ops) for p, ops in sink.items()}
        pos = {p: 0 for p in queues}
        order = []
        while queues:
            p = rng.choice(sorted(queues))
            n = rng.randint(1, 1 if trial == 0 else 500)
            chunk = queues[p][pos[p]:pos[p] + n]
            order.extend(chunk)
            pos[p] += n
            if pos[p] >= len(queues[p]):
                del queues[p]
        got = apply_naive(order, cap)
        for u in set(got) | set(want):
            e = exp["users"].get(str(u), {"timeline": [], "trimmed": False})
            g = got.get(u, [])
            if not e["trimmed"]:
                assert g == e["timeline"], "unflagged user %d differs in interleaving %d" % (
                    u, trial)
            else:
                assert len(g) <= cap and set(g) <= set(e["untrimmed"]), (u, trial)
                changed += g != e["timeline"]
    print("     %d flagged timelines came out differently in 3 random interleavings" % changed)


def check_default_scale(tmp):
    """The default-scale workload through the oracle with the default settings."""
    out = os.path.join(tmp, "default")
    t0 = time.time()
    p = subprocess.run([sys.executable, os.path.join(HERE, "workload.py"), "--seed", "7",
                        "--run-id", "selfcheck", "--out", out], capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr
    print("     " + p.stderr.strip() + " (%.1fs)" % (time.time() - t0))
    to_tail(os.path.join(out, "posts.jsonl"), "posts", os.path.join(out, "posts.json"))
    to_tail(os.path.join(out, "follows.jsonl"), "follows", os.path.join(out, "follows.json"))
    with open(os.path.join(out, "settings.json"), "w") as f:
        json.dump(DEFAULT_CFG, f)
    t0 = time.time()
    p = subprocess.run([sys.executable, os.path.join(HERE, "oracle.py"), "--posts",
                        os.path.join(out, "posts.json"), "--follows",
                        os.path.join(out, "follows.json"), "--settings",
                        os.path.join(out, "settings.json"), "--partitions", "4", "--out",
                        os.path.join(out, "expected.json")], capture_output=True, text=True,
                       timeout=900)
    wall = time.time() - t0
    assert p.returncode == 0, p.stderr
    print("     " + p.stderr.strip() + " (wall %.1fs)" % wall)
    with open(os.path.join(out, "expected.json")) as f:
        exp = json.load(f)
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    want = sorted(c["user_id"] for c in s["celebrities"] if c["scenario"] != "drops")
    assert exp["celebrities"] == want, exp["celebrities"]
    n = len(exp["users"])
    trimmed = sum(1 for e in exp["users"].values() if e["trimmed"])
    assert 0 < trimmed < 0.1 * n, (trimmed, n)
    assert exp["dead_letters"] == s["invalid_events"], exp["dead_letter_reasons"]
    assert wall < 60, "oracle took %.0fs" % wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=("small", "default"), default="small",
                    help="default: also run the default-scale workload through the oracle")
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    run_checks(a.keep, "feedline-oracle-", lambda c, tmp: all_checks(c, tmp, a.scale))


def run_checks(keep, prefix, body):
    """Runs body(Checks(), folder) in keep or a temporary folder (removed
    after), prints the tally and exits 1 if a check failed."""
    tmp = keep or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(tmp, exist_ok=True)
    c = Checks()
    try:
        body(c, tmp)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (c.passed, c.failed))
    sys.exit(1 if c.failed else 0)


def all_checks(c, tmp, scale):
    """Every check of this file, in order (--scale default adds the big one)."""
    ctx = {}
    c.run(check_murmur2)
    c.run(check_basic_rules, tmp)
    c.run(check_engagement_rules, tmp)
    c.run(check_celebrity_hysteresis, tmp)
    c.run(check_cap_and_trim_flag, tmp)
    c.run(check_merge_order, tmp)
    c.run(check_workload_deterministic, tmp)
    ctx["gen"] = gen_small(tmp, "small", 3)
    with open(os.path.join(ctx["gen"], "summary.json")) as f:
        ctx["summary"] = json.load(f)
    c.run(check_workload_shape, ctx)
    c.run(run_small_oracle, ctx, tmp)
    if "expected" in ctx:
        c.run(check_oracle_invariants, ctx)
        c.run(check_interleavings, ctx, tmp)
    if scale == "default":
        c.run(check_default_scale, tmp)


if __name__ == "__main__":
    main()
