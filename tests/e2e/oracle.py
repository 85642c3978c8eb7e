#!/usr/bin/env python3
"""Independent oracle for feedline's timelines (stdlib only).

    oracle.py --posts posts.json --follows follows.json --settings settings.json
              --partitions P [--likes likes.json] --out expected.json

posts.json and follows.json are `feedline tail TOPIC --from-beginning
--exit-at-end` output: one record a line, {"topic", "partition", "offset",
"timestamp", "key", "value": {event}} or "error" instead of "value" when the
record did not decode. settings.json holds celebrity_threshold,
celebrity_hysteresis, timeline_cap, backfill_size and outbox_cap (other keys
are ignored). P is the partition count of feedline.timeline-ops (recorded
only: results do not depend on it).

The rules (README "Event contract", fl_fanout.h, fl_timeline.h), written
here from the documentation and not from the C code:
- the fan-out task of partition p takes partition p of posts and of
  follows and merges them by always taking the input whose next record is
  smaller in (occurred_at, topic name); records that do not decode, are
  null, carry an event type foreign to the topic, or break the schema rules
  (empty event_id, id <= 0, timestamp < 0) are dead letters and touch no
  state. Its state (followers, celebrity flags, outboxes, post registry)
  belongs to the partition;
- invalid, dead-lettered, no state change: a self-follow or self-unfollow;
  a PostCreated whose post id the partition knows under another author; a
  PostDeleted naming another author than the one registered;
- PostCreated of a known post id is ignored; a new one is registered, goes
  to the author's outbox unless PRIVATE (newest outbox_cap by created_at,
  post id) and is inserted into the author's timeline, and into every
  follower's unless it is PRIVATE or the author is a celebrity;
- PostDeleted of an unknown post registers it as deleted (a later create is
  ignored); of a live post: marks it deleted, drops it from the outbox and
  removes it from the author's and every current follower's timeline;
- FollowAdded of a new edge: follower count + 1; celebrity from count >=
  celebrity_threshold; then, unless the author is a celebrity, the
  backfill_size newest outbox posts go into the follower's timeline;
- FollowRemoved of an existing edge: every post of the author leaves the
  ex-follower's timeline; count - 1; a celebrity with count < threshold -
  hysteresis stops being one and its backfill_size newest outbox posts go to
  every remaining follower;
- a timeline is ordered by (created_at, post id) descending; inserting a
  present post changes nothing; after an insert a timeline longer than
  timeline_cap loses its oldest entries.

Timeline operations reach a user from every fan-out partition, and the
pipeline interleaves the partitions in no fixed order, which only matters
once a timeline overflows the cap (documented known limit). The oracle
applies them in one global order (partitions merged by occurred_at) to a
capped and an uncapped timeline, and flags a user "trimmed" when some
interleaving could overflow the cap: the sum over source partitions of the
most entries that partition ever had in the user's uncapped timeline
exceeds the cap. An unflagged user's timeline is exact in every
interleaving; a flagged user's real timeline is a subset of "untrimmed"
(the uncapped result, which no interleaving changes), at most cap long.

Comparing a real timeline g with an entry e: unflagged users need g ==
e["timeline"]; flagged users need len(g) <= cap and set(g) <= untrimmed
(not len(g) == cap: removals after a trim shrink a timeline, and a flagged
user may never have overflowed at all).

Output: {"settings", "partitions", "dead_letters", "dead_letter_reasons",
"stats", "celebrities": [ids], "users": {"<id>": {"timeline": [post ids,
newest first], "trimmed": bool, and for trimmed users "untrimmed": [...],
"overflowed": whether the oracle's own order overflowed}}}, and with --likes
"engagement": the expected engagement facts (compute_engagement). Users with
nothing in either timeline are left out.
"""
import argparse
import bisect
import heapq
import json
import sys
import time
from collections import defaultdict

TOPIC_TYPES = {"posts": ("PostCreated", "PostDeleted"),
               "follows": ("FollowAdded", "FollowRemoved"),
               "likes": ("LikeAdded", "LikeRemoved")}
ID_FIELDS = {"PostCreated": ("post_id", "author_id"), "PostDeleted": ("post_id", "author_id"),
             "FollowAdded": ("follower_id", "followee_id"),
             "FollowRemoved": ("follower_id", "followee_id"),
             "LikeAdded": ("post_id", "user_id", "author_id"),
             "LikeRemoved": ("post_id", "user_id", "author_id")}
VISIBILITY = {"PUBLIC": 0, "FOLLOWERS": 1, "PRIVATE": 2}
PRIVATE = 2
SETTINGS = ("celebrity_threshold", "celebrity_hysteresis", "timeline_cap", "backfill_size",
            "outbox_cap")

# Post registry record (shared by every timeline holding the post). KEY
# orders timelines: (created_at << 64) | post_id, newest = largest.
R_AUTHOR, R_CREATED, R_VIS, R_LIVE, R_KEY, R_PART, R_PID = range(7)
KEY_SHIFT = 64
PID_MASK = (1 << KEY_SHIFT) - 1


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_event(topic, v):
    """None when v may enter the fan-out merge, else why it is a dead letter."""
    try:  # the common case, quickly
        typ = v["type"]
        if typ in TOPIC_TYPES[topic] and v["event_id"] and v["occurred_at"] >= 0:
            if typ == "PostCreated":
                if (v["post_id"] > 0 and v["author_id"] > 0 and v["created_at"] >= 0
                        and v.get("visibility", "PUBLIC") in VISIBILITY
                        and (v.get("reply_to") is None or v["reply_to"] > 0)
                        and type(v["post_id"]) is int and type(v["author_id"]) is int
                        and type(v["created_at"]) is int and type(v["occurred_at"]) is int
                        and type(v["event_id"]) is str):
                    return None
            else:
                if (all(type(v[f]) is int and v[f] > 0 for f in ID_FIELDS[typ])
                        and type(v["occurred_at"]) is int and type(v["event_id"]) is str):
                    return None
    except (KeyError, TypeError):
        pass
    if not isinstance(v, dict):
        return "null or non-object value"
    typ = v.get("type")
    if typ not in TOPIC_TYPES[topic]:
        return "%s events do not belong on %s" % (typ, topic)
    if not isinstance(v.get("event_id"), str) or not v["event_id"]:
        return "empty event_id"
    if not _int(v.get("occurred_at")) or v["occurred_at"] < 0:
        return "bad occurred_at"
    for f in ID_FIELDS[typ]:
        if not _int(v.get(f)) or v[f] <= 0:
            return "bad %s" % f
    if typ == "PostCreated":
        if not _int(v.get("created_at")) or v["created_at"] < 0:
            return "bad created_at"
        if v.get("visibility", "PUBLIC") not in VISIBILITY:
            return "bad visibility"
        r = v.get("reply_to")
        if r is not None and (not _int(r) or r <= 0):
            return "bad reply_to"
    return None


def load(path, topic, dead):
    """{partition: [(occurred_at, topic, offset, event)] in offset order};
    event: (type, post_id, author_id[, created_at, visibility]) or (type,
    follower_id, followee_id)."""
    recs = defaultdict(list)
    loads = json.loads
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = loads(line)
            t = r.get("topic", topic)
            if t != topic:
                raise SystemExit("oracle: %s holds a record of topic %s" % (path, t))
            if "value" not in r:
                dead["undecodable"] += 1
                continue
            v = r["value"]
            why = check_event(topic, v)
            if why:
                dead[why] += 1
                continue
            typ = v["type"]
            if typ == "PostCreated":
                ev = (typ, v["post_id"], v["author_id"], v["created_at"],
                      VISIBILITY[v.get("visibility", "PUBLIC")])
            elif topic == "posts":
                ev = (typ, v["post_id"], v["author_id"])
            else:
                ev = (typ, v["follower_id"], v["followee_id"])
            recs[r["partition"]].append((v["occurred_at"], topic, r["offset"], ev))
    for lst in recs.values():
        lst.sort(key=lambda x: x[2])
    return recs


def merge_inputs(a, b):
    """Kafka Streams-like merge of two inputs of a task: repeatedly take the
    input whose head is smaller in (occurred_at, topic name)."""
    out, i, j, na, nb = [], 0, 0, len(a), len(b)
    while i < na and j < nb:
        x, y = a[i], b[j]
        if (x[0], x[1]) <= (y[0], y[1]):
            out.append(x)
            i += 1
        else:
            out.append(y)
            j += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


# Per-user state: the uncapped timeline as {author: {post_id: record}}, the
# entries per source partition now and at most (the maximum is brought up to
# date before every decrement, so it is exact), the uncapped size, and the
# capped timeline [sorted keys, post ids, overflowed] once the uncapped one
# has exceeded the cap (until then both are the same).
U_AUTHORS, U_COUNT, U_MAX, U_SIZE, U_CAPPED = range(5)


class Timelines:
    """Every user's uncapped timeline and capped timeline (in the oracle's
    order), with per-source-partition entry counts and their maxima."""

    def __init__(self, cap, nparts):
        self.cap, self.nparts = cap, nparts
        self.users = {}
        self.ops = 0

    def _new(self, u):
        st = self.users[u] = [{}, [0] * self.nparts, [0] * self.nparts, 0, None]
        return st

    def _capped_insert(self, st, rec):
        """Inserts into the capped timeline (creating it on first overflow)."""
        cap = self.cap
        capped = st[U_CAPPED]
        if capped is None:
            keys = sorted(r[R_KEY] for d in st[U_AUTHORS].values() for r in d.values())
            capped = st[U_CAPPED] = [keys, {k & PID_MASK for k in keys}, False]
        elif rec[R_PID] in capped[1]:
            return
        else:
            bisect.insort(capped[0], rec[R_KEY])
            capped[1].add(rec[R_PID])
        keys = capped[0]
        if len(keys) > cap:
            capped[2] = True
            drop = len(keys) - cap
            for k in keys[:drop]:
                capped[1].discard(k & PID_MASK)
            del keys[:drop]

    def insert(self, recs, users):
        """Inserts posts (registry records of one author) into the
        timelines of users."""
        cap, users_map, new, capped_insert = self.cap, self.users, self._new, self._capped_insert
        a = recs[0][R_AUTHOR]
        if len(recs) == 1:
            rec = recs[0]
            pid, p = rec[R_PID], rec[R_PART]
            for u in users:
                try:
                    st = users_map[u]
                except KeyError:
                    st = new(u)
                ad = st[0]
                try:
                    d = ad[a]
                except KeyError:
                    d = ad[a] = {}
                if pid not in d:
                    d[pid] = rec
                    st[1][p] += 1
                    n = st[3] = st[3] + 1
                    if n > cap or st[4] is not None:
                        capped_insert(st, rec)
                elif st[4] is not None:
                    capped_insert(st, rec)
        else:
            for u in users:
                st = users_map.get(u)
                if st is None:
                    st = new(u)
                ad = st[0]
                d = ad.get(a)
                if d is None:
                    d = ad[a] = {}
                cnt = st[1]
                for rec in recs:
                    if rec[R_AUTHOR] != a:
                        raise AssertionError("oracle bug: one insert, several authors")
                    pid = rec[R_PID]
                    if pid not in d:
                        d[pid] = rec
                        cnt[rec[R_PART]] += 1
                        n = st[3] = st[3] + 1
                        if n > cap or st[4] is not None:
                            capped_insert(st, rec)
                    elif st[4] is not None:
                        capped_insert(st, rec)
        self.ops += len(recs) * len(users)

    @staticmethod
    def _dec(st, p):
        cnt = st[U_COUNT]
        if cnt[p] > st[U_MAX][p]:
            st[U_MAX][p] = cnt[p]
        cnt[p] -= 1
        st[U_SIZE] -= 1

    def remove(self, rec, users):
        """Removes one post from the timelines of users."""
        a, pid, key = rec[R_AUTHOR], rec[R_PID], rec[R_KEY]
        users_map, dec = self.users, self._dec
        for u in users:
            st = users_map.get(u)
            if st is None:
                continue
            d = st[U_AUTHORS].get(a)
            if not d:
                continue
            old = d.pop(pid, None)
            if old is None:
                continue
            dec(st, old[R_PART])
            capped = st[U_CAPPED]
            if capped is not None and pid in capped[1]:
                capped[1].discard(pid)
                keys = capped[0]
                i = bisect.bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]
                else:  # cannot happen: one record per post id and partition
                    keys[:] = [k for k in keys if k & PID_MASK != pid]
        self.ops += len(users)

    def remove_author(self, author, u):
        """Removes every post of author from u's timeline."""
        self.ops += 1
        st = self.users.get(u)
        if st is None:
            return
        d = st[U_AUTHORS].pop(author, None)
        if not d:
            return
        for rec in d.values():
            self._dec(st, rec[R_PART])
        capped = st[U_CAPPED]
        if capped is not None:
            pids = capped[1]
            if any(pid in pids for pid in d):
                pids.difference_update(d)
                capped[0][:] = [k for k in capped[0] if k & PID_MASK in pids]

    def result(self, u):
        """(timeline, uncapped, could_overflow, overflowed) of user u, post
        ids newest first."""
        st = self.users[u]
        keys = [r[R_KEY] for d in st[U_AUTHORS].values() for r in d.values()]
        keys.sort(reverse=True)
        uncapped = [k & PID_MASK for k in keys]
        most = sum(max(c, m) for c, m in zip(st[U_COUNT], st[U_MAX]))
        capped = st[U_CAPPED]
        if capped is None:
            return uncapped, uncapped, most > self.cap, False
        return [k & PID_MASK for k in reversed(capped[0])], uncapped, most > self.cap, capped[2]


class FanoutTask:
    """The documented fan-out rules for one partition."""

    def __init__(self, part, cfg, tl, stats, dead):
        self.part, self.cfg, self.tl, self.stats, self.dead = part, cfg, tl, stats, dead
        self.posts = {}  # post_id -> registry record
        self.followers = defaultdict(set)
        self.celebrity = set()
        self.outbox = defaultdict(list)  # author -> keys (created_at, post_id), oldest first

    def newest(self, author):
        ob = self.outbox.get(author)
        if not ob:
            return []
        posts = self.posts
        n = self.cfg["backfill_size"]
        return [posts[k & PID_MASK] for k in reversed(ob[-n:])] if n > 0 else []

    def post_created(self, v):
        pid, author, created, vis = v[1], v[2], v[3], v[4]
        rec = self.posts.get(pid)
        if rec is not None:
            if rec[R_AUTHOR] != author:
                self.dead["post id of another author"] += 1
            else:
                self.stats["PostCreated ignored (known post id)"] += 1
            return
        key = (created << KEY_SHIFT) | pid
        rec = self.posts[pid] = [author, created, vis, True, key, self.part, pid]
        celeb = author in self.celebrity
        if vis != PRIVATE:
            ob = self.outbox[author]
            bisect.insort(ob, key)
            if len(ob) > self.cfg["outbox_cap"]:
                del ob[:len(ob) - self.cfg["outbox_cap"]]
        self.tl.insert((rec,), (author,))
        if vis != PRIVATE and not celeb:
            fl = self.followers.get(author)
            if fl:
                self.tl.insert((rec,), fl)
        self.stats["PostCreated applied"] += 1

    def post_deleted(self, v):
        pid, author = v[1], v[2]
        rec = self.posts.get(pid)
        if rec is None:
            self.posts[pid] = [author, 0, None, False, None, self.part, pid]
            self.stats["PostDeleted of unknown post"] += 1
            return
        if rec[R_AUTHOR] != author:
            self.dead["post deleted by another author"] += 1
            return
        if not rec[R_LIVE]:
            self.stats["PostDeleted of deleted post"] += 1
            return
        rec[R_LIVE] = False
        ob = self.outbox.get(author)
        if ob:
            i = bisect.bisect_left(ob, rec[R_KEY])
            if i < len(ob) and ob[i] == rec[R_KEY]:
                del ob[i]
        self.tl.remove(rec, (author,))
        fl = self.followers.get(author)
        if fl:
            self.tl.remove(rec, fl)
        self.stats["PostDeleted applied"] += 1

    def follow_added(self, v):
        f, a = v[1], v[2]
        if f == a:
            self.dead["self-follow"] += 1
            return
        fl = self.followers[a]
        if f in fl:
            self.stats["FollowAdded duplicate"] += 1
            return
        fl.add(f)
        if a not in self.celebrity and len(fl) >= self.cfg["celebrity_threshold"]:
            self.celebrity.add(a)
            self.stats["celebrity on"] += 1
        if a not in self.celebrity:
            posts = self.newest(a)
            if posts:
                self.tl.insert(posts, (f,))
        self.stats["FollowAdded applied"] += 1

    def follow_removed(self, v):
        f, a = v[1], v[2]
        if f == a:
            self.dead["self-unfollow"] += 1
            return
        fl = self.followers.get(a)
        if not fl or f not in fl:
            self.stats["FollowRemoved of unknown edge"] += 1
            return
        fl.discard(f)
        self.tl.remove_author(a, f)
        cfg = self.cfg
        floor = cfg["celebrity_threshold"] - cfg["celebrity_hysteresis"]
        if a in self.celebrity and len(fl) < floor:
            self.celebrity.discard(a)
            self.stats["celebrity off"] += 1
            posts = self.newest(a)
            if posts and fl:
                self.tl.insert(posts, fl)
        self.stats["FollowRemoved applied"] += 1


def compute(posts_path, follows_path, cfg, partitions=None, recorder=None):
    """Runs the oracle; returns the expected.json document. recorder (for
    tests): a function of a partition returning the object that receives
    that fan-out task's timeline operations instead of the oracle's
    timelines (insert(recs, users), remove(rec, users), remove_author(a, u))."""
    for k in SETTINGS:
        if not _int(cfg.get(k)):
            raise SystemExit("oracle: settings lack integer %s" % k)
    dead = defaultdict(int)
    stats = defaultdict(int)
    posts = load(posts_path, "posts", dead)
    follows = load(follows_path, "follows", dead)
    parts = sorted(set(posts) | set(follows))
    nparts = (max(parts) + 1) if parts else 1
    tl = Timelines(cfg["timeline_cap"], nparts)
    tasks = {p: FanoutTask(p, cfg, recorder(p) if recorder else tl, stats, dead) for p in parts}
    streams = []
    for p in parts:
        merged = merge_inputs(posts.get(p, []), follows.get(p, []))
        streams.append([(x[0], x[1], p, x[2], x[3]) for x in merged])
    del posts, follows
    handlers = {}
    for p, task in tasks.items():
        handlers[p] = {"PostCreated": task.post_created, "PostDeleted": task.post_deleted,
                       "FollowAdded": task.follow_added, "FollowRemoved": task.follow_removed}
    n = 0
    for ts, topic, p, off, v in heapq.merge(*streams, key=lambda x: x[:4]):
        handlers[p][v[0]](v)
        n += 1
    stats["events"] = n
    stats["timeline operations"] = tl.ops

    users = {}
    flagged = overflowed = 0
    for u in sorted(tl.users):
        timeline, uncapped, trimmed, over = tl.result(u)
        if not trimmed:
            if timeline:
                users[str(u)] = {"timeline": timeline, "trimmed": False}
            continue
        flagged += 1
        overflowed += over
        if timeline or uncapped:
            users[str(u)] = {"timeline": timeline, "trimmed": True, "untrimmed": uncapped,
                             "overflowed": over}
    celebs = sorted(set().union(*(t.celebrity for t in tasks.values())) if tasks else set())
    stats["users with a timeline"] = len(users)
    stats["users trimmed (possible in some order)"] = flagged
    stats["users trimmed (in the oracle's order)"] = overflowed
    return {
        "settings": {k: cfg[k] for k in SETTINGS},
        "partitions": partitions,
        "input_partitions": nparts,
        "dead_letters": sum(dead.values()),
        "dead_letter_reasons": dict(sorted(dead.items())),
        "stats": dict(sorted(stats.items())),
        "celebrities": celebs,
        "users": users,
    }


# ---- engagement facts (fl_engagement.h, fl_affinity.h) ---------------------------
def load_events(path, topic, dead, check=None):
    """[(partition, offset, event)] of path's decodable, valid records, in
    (partition, offset) order; the others are counted in dead. check(topic,
    event) says why an event is invalid (None: valid); default check_event."""
    check = check or check_event
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("topic", topic) != topic:
                raise SystemExit("oracle: %s holds a record of topic %s" % (path, r["topic"]))
            if "value" not in r:
                dead["undecodable"] += 1
                continue
            why = check(topic, r["value"])
            if why:
                dead[why] += 1
                continue
            out.append((r["partition"], r["offset"], r["value"]))
    out.sort(key=lambda x: x[:2])
    return out


def compute_engagement(posts_path, follows_path, likes_path):
    """The facts feedline-engagement and feedline-affinity publish on
    feedline.engagement, as a compacted topic ends up holding them.

    Rules (README "Engagement rules"), written from the documentation:
    - likes: a set of likers per post, (post, user) -> (created_at =
      occurred_at, author). LikeAdded of a new pair adds it; of a present
      pair does nothing. A LikeAdded naming another author than the one of
      the post's current likers is a dead letter. LikeRemoved of a present
      pair removes it (the stored author counts), of an absent one does
      nothing. Likes notify the author unless user == author.
    - follows: a set of followers per followee, (followee, follower) ->
      created_at; duplicates and removals of absent edges do nothing; a
      self-follow or self-unfollow is a dead letter. Every follow notifies.
    - posts: a registry per post id: a new PostCreated makes it live; a
      known id is ignored, unless it is known under another author (dead
      letter); PostDeleted of a live post deletes it, of an unknown one
      registers it as deleted, naming another author is a dead letter.
    Each set lives in one partition of its topic and only that topic's
    order touches it, so the result does not depend on how a task merges
    its three inputs; records outside their key's partition cannot occur
    in tail output of a correct producer and are not modelled.

    Returns {"likes": [[post, user, created_at]], "follows": [[followee,
    follower, created_at]], "post_likes": {post: n}, "followers": {user:
    n}, "following": {user: n}, "posts": {author: n}, "affinity":
    {"viewer,author": n}, "notifications": [[recipient, "like"|"follow",
    actor, post (0 for a follow), created_at]], "dead_letters": n,
    "dead_letter_reasons": {...}}; id keys are decimal strings, lists
    sorted, zero counts left out."""
    dead = defaultdict(int)
    likers = defaultdict(dict)     # post -> {user: (created_at, author)}
    followers = defaultdict(dict)  # followee -> {follower: created_at}
    registry = {}                  # (partition, post) -> [author, live], per task as in C
    for _p, _o, v in load_events(likes_path, "likes", dead):
        post, user, author = v["post_id"], v["user_id"], v["author_id"]
        ls = likers[post]
        if v["type"] == "LikeAdded":
            if user in ls:
                continue
            if ls and next(iter(ls.values()))[1] != author:
                dead["like naming another author"] += 1
                continue
            ls[user] = (v["occurred_at"], author)
        else:
            ls.pop(user, None)
    for _p, _o, v in load_events(follows_path, "follows", dead):
        a, f = v["followee_id"], v["follower_id"]
        if a == f:
            dead["self-follow" if v["type"] == "FollowAdded" else "self-unfollow"] += 1
        elif v["type"] == "FollowAdded":
            followers[a].setdefault(f, v["occurred_at"])
        else:
            followers[a].pop(f, None)
    for part, _o, v in load_events(posts_path, "posts", dead):
        pid, author = (part, v["post_id"]), v["author_id"]
        rec = registry.get(pid)
        if rec is not None and rec[0] != author:
            dead["post id of another author" if v["type"] == "PostCreated"
                 else "post deleted by another author"] += 1
        elif v["type"] == "PostCreated":
            if rec is None:
                registry[pid] = [author, True]
        elif rec is None:
            registry[pid] = [author, False]
        else:
            rec[1] = False

    likes, notes, post_likes = [], [], {}
    affinity, following, followers_n, posts_n = (defaultdict(int) for _ in range(4))
    for post, ls in likers.items():
        if ls:
            post_likes[str(post)] = len(ls)
        for user, (t, author) in ls.items():
            likes.append([post, user, t])
            affinity["%d,%d" % (user, author)] += 1
            if user != author:
                notes.append([author, "like", user, post, t])
    follows = []
    for a, fs in followers.items():
        if fs:
            followers_n[str(a)] = len(fs)
        for f, t in fs.items():
            follows.append([a, f, t])
            following[str(f)] += 1
            notes.append([a, "follow", f, 0, t])
    for author, live in registry.values():
        if live:
            posts_n[str(author)] += 1
    return {"likes": sorted(likes), "follows": sorted(follows), "post_likes": post_likes,
            "followers": dict(followers_n), "following": dict(following),
            "posts": dict(posts_n), "affinity": dict(affinity), "notifications": sorted(notes),
            "dead_letters": sum(dead.values()), "dead_letter_reasons": dict(sorted(dead.items()))}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Expected feedline timelines from the input topics.")
    ap.add_argument("--posts", required=True, help="`feedline tail posts` output")
    ap.add_argument("--follows", required=True, help="`feedline tail follows` output")
    ap.add_argument("--settings", required=True, help="JSON object with the topology settings")
    ap.add_argument("--partitions", type=int, help="partitions of feedline.timeline-ops")
    ap.add_argument("--likes", help="`feedline tail likes` output: adds the expected "
                    "engagement facts as \"engagement\" (compute_engagement)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    t0 = time.time()
    with open(a.settings) as f:
        cfg = json.load(f)
    doc = compute(a.posts, a.follows, cfg, a.partitions)
    if a.likes:
        doc["engagement"] = compute_engagement(a.posts, a.follows, a.likes)
    with open(a.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    s = doc["stats"]
    print("oracle: %d events, %d timeline operations, %d dead letters, %d users (%d trimmed), "
          "%d celebrities, %.1fs" % (s["events"], s["timeline operations"], doc["dead_letters"],
                                     len(doc["users"]),
                                     s["users trimmed (possible in some order)"],
                                     len(doc["celebrities"]), time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
