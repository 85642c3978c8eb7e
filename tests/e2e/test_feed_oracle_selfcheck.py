#!/usr/bin/env python3
"""Self-check of feed_oracle.py (what the read API must serve), with no
Kafka: hand-written inputs with exact expected reads (celebrity merge and
dedupe, privacy, deletes, the outbox cap with Redis's tie order, unfollow,
like counts, profiles, notifications, follower lists), then a seeded
workload whose every read must be internally consistent.

    test_feed_oracle_selfcheck.py [--keep DIR]

Exit status 0 when every check passed; the last line is "N passed, N failed".
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import feed_oracle  # noqa: E402
import test_oracle_selfcheck as selfcheck  # noqa: E402

# Celebrity from 2 followers, until fewer than 1.
CFG = {"celebrity_threshold": 2, "celebrity_hysteresis": 1, "timeline_cap": 50,
       "backfill_size": 10, "outbox_cap": 10}


class Inputs(selfcheck.Scenario):
    """A hand-written input of all four topics, events in occurred_at order."""

    def __init__(self):
        super().__init__()
        self.likes, self.users = [], []

    def like(self, post, user, author, **kw):
        self.likes.append(self._ev("LikeAdded", post_id=post, user_id=user, author_id=author,
                                   **kw))

    def unlike(self, post, user, author, **kw):
        self.likes.append(self._ev("LikeRemoved", post_id=post, user_id=user,
                                   author_id=author, **kw))

    def register(self, *users):
        for u in users:
            self.users.append(self._ev("UserRegistered", user_id=u, handle="h%d" % u,
                                       display_name="User %d" % u))

    def update(self, u, name=None, bio=None):
        self.users.append(self._ev("UserUpdated", user_id=u, display_name=name, bio=bio))

    def build(self, tmp, cfg=CFG):
        paths = []
        for topic in ("posts", "follows", "likes", "users"):
            paths.append(os.path.join(tmp, "f-%s.json" % topic))
            selfcheck.write_records(paths[-1], topic, getattr(self, topic))
        return feed_oracle.build(*paths, settings=cfg)


def ids(items):
    return [int(x["post_id"]) for x in items]


def feed_ids(fo, v):
    f = fo.feed(v)
    assert f["exact"], (v, f)
    return ids(f["items"])


def check_celebrity_merge(tmp):
    """Timeline + outboxes of followed celebrities, each post once; a private
    post of a celebrity only in its author's reads."""
    s = Inputs()
    s.register(1, 2, 3, 10, 20)
    s.post(200, 1)
    s.follow(1, 20)
    s.post(201, 20)         # fanned out to 1
    s.follow(1, 10)
    s.post(100, 10)         # 10 has one follower: fanned out to 1
    s.follow(2, 10)         # two followers: 10 is a celebrity, 2 gets no backfill
    s.post(101, 10)         # outbox only
    s.post(102, 10, "PRIVATE")
    s.post(103, 10, "FOLLOWERS")
    fo = s.build(tmp)
    assert fo.celebrities == {10}, fo.celebrities
    assert fo.timelines[1]["timeline"] == [100, 201, 200], fo.timelines[1]
    # 100 is both in 1's timeline and in the outbox: once.
    assert feed_ids(fo, 1) == [103, 101, 100, 201, 200], feed_ids(fo, 1)
    assert feed_ids(fo, 2) == [103, 101, 100], feed_ids(fo, 2)
    assert feed_ids(fo, 10) == [103, 102, 101, 100], feed_ids(fo, 10)  # own timeline
    assert feed_ids(fo, 3) == [], feed_ids(fo, 3)
    assert fo.post(102, 1) is None and fo.post(102, 10)["visibility"] == "private"
    assert fo.celebrity_posts(1) == [100, 101, 102, 103], fo.celebrity_posts(1)
    item = fo.feed(1)["items"][0]
    assert item == {"post_id": "103", "author": {"user_id": "10", "handle": "h10",
                                                 "display_name": "User 10"},
                    "created_at": s.posts[-1][1]["created_at"], "text": "x",
                    "visibility": "followers", "reply_to": None, "like_count": 0}, item
    assert fo.inconsistencies == [], fo.inconsistencies


def check_followers_only_user_posts(tmp):
    """A followers-only post of a celebrity: in user_posts and post() for its
    followers and itself, a 404 for others."""
    s = Inputs()
    s.register(1, 2, 3, 10)
    s.follow(1, 10)
    s.follow(2, 10)
    s.post(100, 10)
    s.post(101, 10, "FOLLOWERS")
    s.posts[-1][1]["reply_to"] = 100
    s.post(102, 10, "PRIVATE")
    fo = s.build(tmp)
    assert ids(fo.user_posts(10, 3)) == [100], fo.user_posts(10, 3)
    assert ids(fo.user_posts(10, 1)) == [101, 100], fo.user_posts(10, 1)
    assert ids(fo.user_posts(10, 10)) == [102, 101, 100], fo.user_posts(10, 10)
    assert fo.post(101, 3) is None and fo.post(101, 2)["reply_to"] == "100"
    assert feed_ids(fo, 3) == [] and feed_ids(fo, 1) == [101, 100]


def check_delete_everywhere(tmp):
    s = Inputs()
    s.register(1, 2, 10, 20)
    s.follow(1, 20)
    s.post(200, 20)
    s.post(201, 20)
    s.follow(1, 10)
    s.follow(2, 10)          # 10: celebrity
    s.post(100, 10)
    s.post(101, 10)
    s.like(100, 2, 10)
    s.delete(100, 10)        # an outbox post
    s.delete(200, 20)        # a timeline post
    s.delete(101, 20)        # another author: ignored
    s.delete(300, 20)        # unknown: remembered ...
    s.post(300, 20)          # ... so its create is ignored
    s.post(101, 20)          # another author's id: ignored
    fo = s.build(tmp)
    assert feed_ids(fo, 1) == [101, 201], feed_ids(fo, 1)
    assert feed_ids(fo, 2) == [101] and feed_ids(fo, 10) == [101]
    assert feed_ids(fo, 20) == [201], feed_ids(fo, 20)
    for p in (100, 200, 300):
        assert all(fo.post(p, v) is None for v in (1, 2, 10, 20)), p
    assert ids(fo.user_posts(10, 10)) == [101] and ids(fo.user_posts(20, 1)) == [201]
    assert fo.post(101, 1)["author"]["user_id"] == "10"
    assert fo.user(10)["posts_count"] == 1 and fo.user(20)["posts_count"] == 1


def check_outbox_cap_ties(tmp):
    """outbox:{A} keeps the newest outbox_cap as Redis ranks them: by score,
    equal scores by the id as a string ("10" < "8" < "9"); a delete does not
    bring a trimmed post back."""
    s = Inputs()
    s.register(1, 2, 10)
    s.follow(1, 10)
    s.follow(2, 10)
    t = s.t + 100
    for pid in (9, 10, 8):   # one created_at: "10" ranks lowest and goes
        s.post(pid, 10, created_at=t)
    s.post(11, 10, created_at=t + 1)   # then "8", the lowest of the rest
    s.post(7, 10, created_at=t - 5)    # below everything: in and out at once
    fo = s.build(tmp, dict(CFG, outbox_cap=2))
    assert feed_ids(fo, 1) == [11, 9], feed_ids(fo, 1)
    s.delete(11, 10)
    fo = s.build(tmp, dict(CFG, outbox_cap=2))
    assert feed_ids(fo, 1) == [9], feed_ids(fo, 1)
    # The author's own timeline is not the outbox: every post, newest first.
    assert feed_ids(fo, 10) == [10, 9, 8, 7], feed_ids(fo, 10)
    # Numeric ties in the feed itself: (created_at, post_id) descending.
    assert ids(fo.user_posts(10, 1)) == [10, 9, 8, 7], fo.user_posts(10, 1)


def check_unfollow_celebrity(tmp):
    s = Inputs()
    s.register(1, 2, 3, 10)
    s.follow(1, 10)
    s.post(100, 10)          # fanned out to 1
    s.follow(2, 10)
    s.follow(3, 10)          # celebrity
    s.post(101, 10)
    s.post(102, 10, "FOLLOWERS")
    s.unfollow(1, 10)        # 2 followers left: still a celebrity
    fo = s.build(tmp)
    assert fo.celebrities == {10}
    assert feed_ids(fo, 1) == [], feed_ids(fo, 1)
    assert feed_ids(fo, 2) == [102, 101, 100], feed_ids(fo, 2)
    assert fo.post(102, 1) is None and fo.post(101, 1) is not None
    assert fo.following(1) == [] and fo.followers(10) == ["3", "2"], fo.followers(10)


def check_like_counts(tmp):
    s = Inputs()
    s.register(1, 2, 3, 4, 10)
    s.follow(1, 10)
    s.post(100, 10)
    s.post(101, 10)
    s.like(100, 2, 10)
    s.like(100, 3, 10)
    s.like(100, 3, 10)       # duplicate
    s.like(100, 4, 10)
    s.unlike(100, 4, 10)
    s.unlike(100, 1, 10)     # never liked
    s.like(100, 10, 10)      # self-like counts
    s.like(101, 2, 10)
    s.unlike(101, 2, 10)
    fo = s.build(tmp)
    assert [x["like_count"] for x in fo.feed(1)["items"]] == [0, 3], fo.feed(1)
    assert fo.post(100, 2)["like_count"] == 3 and fo.post(101, 2)["like_count"] == 0
    assert [x["like_count"] for x in fo.user_posts(10, 3)] == [0, 3]


def check_profiles(tmp):
    """Handles from the users topic; an author never registered has None."""
    s = Inputs()
    s.register(1, 10)
    s.update(10, "Ten")
    s.update(10, None, "bio only")   # null: unchanged
    s.update(99, "Ghost")            # not registered: ignored
    s.follow(1, 99)
    s.follow(1, 10)
    s.follow(10, 1)
    s.post(990, 99)
    s.post(100, 10)
    s.post(101, 10)
    s.delete(101, 10)
    fo = s.build(tmp)
    items = fo.feed(1)["items"]
    assert [x["author"] for x in items] == [
        {"user_id": "10", "handle": "h10", "display_name": "Ten"},
        {"user_id": "99", "handle": None, "display_name": None}], items
    assert fo.user(99) is None
    assert fo.user(10) == {"user_id": "10", "handle": "h10", "display_name": "Ten",
                           "followers_count": 1, "following_count": 1, "posts_count": 1,
                           "is_celebrity": False}, fo.user(10)
    assert fo.user(1) == {"user_id": "1", "handle": "h1", "display_name": "User 1",
                          "followers_count": 1, "following_count": 2, "posts_count": 0,
                          "is_celebrity": False}, fo.user(1)
    assert fo.user("1") == fo.user(1)


def check_notifications(tmp):
    """Newest first by (created_at, kind, actor, post); the newest 200 as
    Redis keeps them: at equal times the member string decides."""
    s = Inputs()
    s.register(5)
    t = s.t + 10
    s.like(500, 9, 5, t=t)
    s.like(500, 10, 5, t=t)      # "like:10:500" < "like:9:500": trimmed first
    s.t = t + 10
    s.follow(7, 5)
    s.like(500, 5, 5)            # self-like: no notification
    s.like(501, 8, 5)
    s.unlike(501, 8, 5)          # withdrawn
    s.like(501, 8, 5)            # notifies again, new time
    t2 = s.t
    for a in range(1000, 1196):  # 196 follows: 200 notifications in all
        s.follow(a, 5)
    fo = s.build(tmp)
    n = fo.notifications(5)
    assert len(n) == 200, len(n)
    assert n[0] == {"kind": "follow", "actor_id": "1195", "post_id": None,
                    "created_at": s.t}, n[0]
    assert n[-3:] == [{"kind": "follow", "actor_id": "7", "post_id": None,
                       "created_at": t + 11},
                      {"kind": "like", "actor_id": "10", "post_id": "500", "created_at": t},
                      {"kind": "like", "actor_id": "9", "post_id": "500", "created_at": t}], n[-3:]
    assert {"kind": "like", "actor_id": "8", "post_id": "501", "created_at": t2} in n
    s.follow(1196, 5)            # 201: one goes, the tie's lowest member
    fo = s.build(tmp)
    n = fo.notifications(5)
    assert len(n) == 200 and n[-1] == {"kind": "like", "actor_id": "9", "post_id": "500",
                                       "created_at": t}, n[-2:]
    assert fo.notifications(7) == [] and fo.notifications(1) == []


def check_follower_order(tmp):
    s = Inputs()
    s.register(1, 2, 3, 21, 30)
    s.follow(2, 30)
    t = s.t + 10
    s.follow(3, 30, t=t)
    s.follow(21, 30, t=t)        # same time: 21 before 3 (numeric, not "3" > "21")
    s.t = t + 10
    s.follow(2, 30)              # duplicate: keeps its time
    s.follow(1, 30)
    s.unfollow(1, 30)
    s.follow(1, 30)              # re-follow: the new time
    s.follow(30, 30)             # self-follow: dead
    s.follow(30, 21)
    s.follow(30, 3)
    fo = s.build(tmp)
    assert fo.followers(30) == ["1", "21", "3", "2"], fo.followers(30)
    assert fo.following(30) == ["3", "21"], fo.following(30)
    assert fo.following(1) == ["30"] and fo.followers(1) == []
    assert fo.user(30)["followers_count"] == 4


def check_trimmed_viewer(tmp):
    """A viewer whose timeline can overflow the cap: a bound, not a list."""
    s = Inputs()
    s.register(1, 10, 20, 30)
    s.follow(1, 20, part=0)
    s.follow(1, 30, part=1)
    s.follow(1, 10)
    s.follow(30, 10)             # 10: celebrity
    for i in range(3):
        s.post(200 + i, 20, part=0)
        s.post(300 + i, 30, part=1)
    s.post(100, 10)
    fo = s.build(tmp, dict(CFG, timeline_cap=4))
    f = fo.feed(1)
    assert not f["exact"], f
    assert ids(f["items"]) == [100, 302, 202, 301, 201], f["items"]
    assert f["allowed"] == {"100", "200", "201", "202", "300", "301", "302"}, f["allowed"]
    assert f["required"] == {"100"}, f["required"]
    assert fo.feed_mismatch(1, f["items"]) is None
    assert fo.feed_mismatch(1, ["100", "302", "202", "300"]) is None
    assert "missing" in fo.feed_mismatch(1, ["302", "202"])
    assert "newest first" in fo.feed_mismatch(1, ["100", "300", "302"])
    assert "cap" in fo.feed_mismatch(1, ["100", "302", "202", "301", "201", "300"])
    assert fo.feed_mismatch(30, fo.feed(30)["items"]) is None
    assert "expected" in fo.feed_mismatch(30, ["100"])


# ---- a seeded workload -----------------------------------------------------------
def check_seeded(tmp):
    d = selfcheck.gen_small(tmp, "feed", 4, ["--posts", "20000", "--likes", "50000"])
    paths = []
    for topic in ("posts", "follows", "likes", "users"):
        paths.append(os.path.join(tmp, "feed-%s.json" % topic))
        selfcheck.to_tail(os.path.join(d, topic + ".jsonl"), topic, paths[-1])
    t0 = time.time()
    fo = feed_oracle.build(*paths, settings=selfcheck.SMALL_CFG)
    t_build = time.time() - t0
    assert fo.inconsistencies == [], fo.inconsistencies[:10]
    users = sorted(fo.users)
    assert len(users) == 2000 and fo.celebrities, (len(users), fo.celebrities)
    t0 = time.time()
    n = {"items": 0, "trimmed": 0, "plain": 0, "merged": 0}
    for v in users:
        f = fo.feed(v)
        items = f["items"]
        n["items"] += len(items)
        keys = [(x["created_at"], int(x["post_id"])) for x in items]
        assert keys == sorted(set(keys), reverse=True), "feed of %d unsorted or repeated" % v
        for x in items:
            assert fo.post(x["post_id"], v) == x, (v, x)
        e = fo.timelines.get(v, {"timeline": [], "trimmed": False})
        if not f["exact"]:
            n["trimmed"] += 1
            assert e["trimmed"] and {x["post_id"] for x in items} <= f["allowed"], v
            assert fo.feed_mismatch(v, items) is None, v
        elif not fo.celebrity_posts(v):
            n["plain"] += 1
            assert items == [fo.post(p, v) for p in e["timeline"]], v
        else:
            n["merged"] += len(set(ids(items)) - set(e["timeline"])) > 0
        posts = fo.user_posts(v, v)
        assert ids(posts) == ids(sorted(posts, key=lambda x: (x["created_at"],
                                                              int(x["post_id"])),
                                        reverse=True))
        assert len(posts) == fo.user(v)["posts_count"], v
        assert len(fo.followers(v)) == fo.user(v)["followers_count"], v
        assert len(fo.following(v)) == fo.user(v)["following_count"], v
        notes = fo.notifications(v)
        assert len(notes) <= feed_oracle.NOTIF_CAP
        nk = [(x["created_at"], x["kind"], int(x["actor_id"]), int(x["post_id"] or 0))
              for x in notes]
        assert nk == sorted(nk, reverse=True), v
    t_reads = time.time() - t0
    print("     %d users, %d feed items; %d trimmed, %d plain, %d with celebrity posts; "
          "build %.1fs, reads %.1fs" % (len(users), n["items"], n["trimmed"], n["plain"],
                                       n["merged"], t_build, t_reads))
    assert n["trimmed"] and n["plain"] and n["merged"] > 100, n
    assert t_build < 30 and t_reads < 30, (t_build, t_reads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    checks = (check_celebrity_merge, check_followers_only_user_posts, check_delete_everywhere,
              check_outbox_cap_ties, check_unfollow_celebrity, check_like_counts,
              check_profiles, check_notifications, check_follower_order,
              check_trimmed_viewer, check_seeded)
    selfcheck.run_checks(a.keep, "feedline-feed-oracle-",
                         lambda c, tmp: [c.run(fn, tmp) for fn in checks])


if __name__ == "__main__":
    main()
