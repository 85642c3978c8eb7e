#!/usr/bin/env python3
"""What the read API must serve, computed from the input topics (stdlib only).

    fo = feed_oracle.build(posts_path, follows_path, likes_path, users_path, settings)
    fo.feed(V)  fo.post(P, V)  fo.user(U)  fo.user_posts(U, V)
    fo.followers(U)  fo.following(U)  fo.notifications(V)

The paths are `feedline tail TOPIC --from-beginning --exit-at-end` output
(format in oracle.py's docstring); likes_path and users_path may be None
(no likes, no users). settings is the dict of topology settings oracle.py
takes (celebrity_threshold, celebrity_hysteresis, timeline_cap,
backfill_size, outbox_cap). Ids may be passed as int or decimal string;
every id in a result is a decimal string, every time epoch ms (int).

Sources, all from the documentation (README "Fan-out rules",
"Engagement rules", "Redis sink", "PostgreSQL projection", "Read API"):
- timelines: oracle.compute(), users[V]["timeline"] ("untrimmed" for a
  trimmed user); celebrities: its final celebrity set;
- follows, counts, likes, notifications: oracle.compute_engagement();
  the follow state is last-wins per (follower, followee), self-follows
  dead; an edge's time is the occurred_at of the FollowAdded that made it;
- posts, as the Redis sink keeps `post:{P}` and `outbox:{A}`: records in
  (partition, offset) order; the first PostCreated of a post id wins (a
  later one, by any author, changes nothing); a PostDeleted of an unknown
  id remembers it as deleted, so its late create is ignored; one naming
  another author than the registered one is ignored. Every accepted
  PostCreated, PRIVATE ones too, enters `outbox:{A}` scored by created_at,
  which then keeps its newest outbox_cap: Redis drops the lowest rank
  first, equal scores ordered by member, the post id as a decimal string,
  in byte order ("10" < "9"). A delete removes the post from the outbox;
  nothing refills it;
- users: UserRegistered sets handle and display_name; UserUpdated the
  non-null display_name it carries (ignored before registration, as in
  PostgreSQL; a registration sets display_name anyway); last wins. A user
  never registered has no profile: user() is None, handle and
  display_name of its posts' author are None.

Visibility of a post to viewer V: PUBLIC to everyone, FOLLOWERS to the
author and the author's followers at the end, PRIVATE to the author only.

feed(V) (GET /v1/feed, order=chrono): the union of V's timeline and the
outboxes of the celebrities V follows at the end, less deleted posts and
posts V may not see, each post once, newest first by (created_at,
post_id), both numerically descending; not capped. Returns {"exact":
True, "items": [post...]}. For a trimmed viewer (the timeline is only
known as at most timeline_cap entries of "untrimmed") it returns {"exact":
False, "items": the merge with the oracle's own capped timeline (a best
guess), "allowed": set of post ids (strings) that may appear (the filtered
untrimmed timeline and outboxes), "required": set of post ids that must
appear (the filtered outbox part, which does not depend on the
interleaving)}; feed_mismatch(V, items) checks a real feed against
either form (a trimmed viewer's: no duplicates, newest first, within
"allowed", all of "required", at most timeline_cap others). A timeline
entry that the filters drop (deleted, never created, or invisible to its
holder) is a disagreement between the fan-out rules and the read rules:
it is dropped and listed in FeedOracle.inconsistencies.

A post item: {"post_id", "author": {"user_id", "handle", "display_name"},
"created_at", "text", "visibility" ("public"|"followers"|"private"),
"reply_to" (id or None), "like_count" (current likers, 0 when none)}.

Other reads:
- post(P, V): the item, or None (404: never created, deleted, invisible);
- user(U): {"user_id", "handle", "display_name", "followers_count",
  "following_count", "posts_count" (live posts), "is_celebrity" (bool)},
  or None when U never registered;
- user_posts(U, V): U's live posts V may see, newest first as the feed, not
  capped (from the posts topic, not the timelines);
- followers(U) / following(U): user ids, newest edge first by (edge time,
  user id) descending;
- notifications(V): [{"kind": "like"|"follow", "actor_id", "post_id"
  (None for a follow), "created_at"}], the NOTIF_CAP newest that
  `notif:{V}` keeps (newest by score, ties by the member `kind:actor:post`
  in byte order, as Redis trims), listed newest first by (created_at,
  kind, actor, post) descending.
"""
import bisect
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import oracle  # noqa: E402

NOTIF_CAP = 200  # the Redis sink keeps the newest 200 of notif:{U}
VIS_NAMES = {"PUBLIC": "public", "FOLLOWERS": "followers", "PRIVATE": "private"}
USER_TYPES = ("UserRegistered", "UserUpdated")


def _str_or_none(v):
    return v is None or isinstance(v, str)


def check_user_event(_topic, v):
    """None when a users record is valid (schemas/User*.avsc), else why not."""
    if not isinstance(v, dict) or v.get("type") not in USER_TYPES:
        return "not a user event"
    if not isinstance(v.get("event_id"), str) or not v["event_id"]:
        return "empty event_id"
    for f in ("occurred_at", "user_id"):
        if not oracle._int(v.get(f)) or v[f] < (0 if f == "occurred_at" else 1):
            return "bad %s" % f
    if v["type"] == "UserRegistered":
        if not isinstance(v.get("handle"), str) or not isinstance(v.get("display_name"), str):
            return "bad handle or display_name"
    elif not _str_or_none(v.get("display_name")) or not _str_or_none(v.get("bio")):
        return "bad display_name or bio"
    return None


def load_users(path, dead):
    """{user_id: [handle, display_name]} of the registered users."""
    users = {}
    for _p, _o, v in oracle.load_events(path, "users", dead, check_user_event):
        u = v["user_id"]
        if v["type"] == "UserRegistered":
            users[u] = [v["handle"], v["display_name"]]
        elif u in users and v.get("display_name") is not None:
            users[u][1] = v["display_name"]
    return users


def load_posts(path, outbox_cap, dead):
    """(registry, outboxes) as the Redis sink keeps them: registry {post_id:
    [author, created_at, text, visibility, reply_to, live]}, outboxes
    {author: [(created_at, str(post_id))] lowest first}."""
    reg, outboxes = {}, defaultdict(list)
    for _p, _o, v in oracle.load_events(path, "posts", dead):
        pid, author = v["post_id"], v["author_id"]
        rec = reg.get(pid)
        if v["type"] == "PostCreated":
            if rec is not None:
                continue
            created = v["created_at"]
            reg[pid] = [author, created, v.get("text", ""), v.get("visibility", "PUBLIC"),
                        v.get("reply_to"), True]
            ob = outboxes[author]
            bisect.insort(ob, (created, str(pid)))
            if len(ob) > outbox_cap:
                del ob[:len(ob) - max(outbox_cap, 0)]
        elif rec is None:
            reg[pid] = [author, None, None, None, None, False]
        elif rec[0] == author and rec[5]:
            rec[5] = False
            ob = outboxes.get(author)
            key = (rec[1], str(pid))
            i = bisect.bisect_left(ob, key) if ob else 0
            if ob and i < len(ob) and ob[i] == key:
                del ob[i]
    return reg, outboxes


def _id(x):
    return int(x)


class FeedOracle:
    def __init__(self, doc, eng, reg, outboxes, users, dead, settings):
        self.doc, self.eng, self.reg, self.users = doc, eng, reg, users
        self.settings = dict(settings)
        self.dead_letters = dict(dead)
        self.celebrities = set(doc["celebrities"])
        self.timelines = {int(u): e for u, e in doc["users"].items()}
        self.outbox = {a: [int(p) for _t, p in ob] for a, ob in outboxes.items() if ob}
        self.follower_edges = defaultdict(dict)   # followee -> {follower: time}
        self.following_edges = defaultdict(dict)  # follower -> {followee: time}
        for a, f, t in eng["follows"]:
            self.follower_edges[a][f] = t
            self.following_edges[f][a] = t
        self.likes = {int(p): n for p, n in eng["post_likes"].items()}
        self.by_author = defaultdict(list)
        for pid, r in reg.items():
            if r[5]:
                self.by_author[r[0]].append(pid)
        for pids in self.by_author.values():
            pids.sort(key=self._order, reverse=True)
        notes = defaultdict(list)
        for rcpt, kind, actor, post, t in eng["notifications"]:
            notes[rcpt].append((t, "%s:%d:%d" % (kind, actor, post), kind, actor, post))
        self.notes = {}
        for rcpt, lst in notes.items():
            kept = sorted(lst, reverse=True)[:NOTIF_CAP]  # what ZREMRANGEBYRANK leaves
            kept.sort(key=lambda n: (n[0], n[2], n[3], n[4]), reverse=True)
            self.notes[rcpt] = kept
        self.inconsistencies = []
        for u, e in sorted(self.timelines.items()):
            for pid in e.get("untrimmed", e["timeline"]):
                why = self._why_hidden(pid, u)
                if why:
                    self.inconsistencies.append({"user": str(u), "post_id": str(pid),
                                                 "why": why})

    # ---- helpers -------------------------------------------------------------
    def _order(self, pid):
        return (self.reg[pid][1], pid)

    def _why_hidden(self, pid, viewer):
        """None when viewer may see post pid, else why not."""
        r = self.reg.get(pid)
        if r is None:
            return "never created"
        if not r[5]:
            return "deleted"
        author, vis = r[0], r[3]
        if vis == "PUBLIC" or viewer == author:
            return None
        if vis == "FOLLOWERS" and viewer in self.follower_edges.get(author, ()):
            return None
        return "not visible (%s)" % vis.lower()

    def _author(self, a):
        h, d = self.users.get(a, (None, None))
        return {"user_id": str(a), "handle": h, "display_name": d}

    def _item(self, pid):
        a, created, text, vis, reply, _live = self.reg[pid]
        return {"post_id": str(pid), "author": self._author(a), "created_at": created,
                "text": text, "visibility": VIS_NAMES[vis],
                "reply_to": None if reply is None else str(reply),
                "like_count": self.likes.get(pid, 0)}

    def _visible_sorted(self, pids, viewer):
        keep = {p for p in pids if self._why_hidden(p, viewer) is None}
        return sorted(keep, key=self._order, reverse=True)

    # ---- reads ---------------------------------------------------------------
    def celebrity_posts(self, viewer):
        """Post ids of the outboxes V's feed merges (unfiltered)."""
        v = _id(viewer)
        out = []
        for a in self.following_edges.get(v, ()):
            if a in self.celebrities:
                out.extend(self.outbox.get(a, ()))
        return out

    def feed(self, viewer):
        v = _id(viewer)
        e = self.timelines.get(v, {"timeline": [], "trimmed": False})
        merged = self.celebrity_posts(v)
        items = [self._item(p) for p in self._visible_sorted(e["timeline"] + merged, v)]
        if not e["trimmed"]:
            return {"exact": True, "items": items}
        allowed = self._visible_sorted(e["untrimmed"] + merged, v)
        required = self._visible_sorted(merged, v)
        return {"exact": False, "items": items, "allowed": {str(p) for p in allowed},
                "required": {str(p) for p in required}}

    def feed_mismatch(self, viewer, items):
        """None when items (a real feed of viewer: post items or post id
        strings, newest first) fits feed(viewer), else what is wrong."""
        want = self.feed(viewer)
        ids = [x if isinstance(x, str) else x["post_id"] for x in items]
        if want["exact"]:
            exp = [x["post_id"] for x in want["items"]]
            return None if ids == exp else "feed %s, expected %s" % (ids, exp)
        got = set(ids)
        if len(got) != len(ids):
            return "duplicate posts in %s" % ids
        if not got <= want["allowed"]:
            return "posts beyond the allowed set: %s" % sorted(got - want["allowed"])
        if ids != [str(p) for p in sorted(map(int, ids), key=self._order, reverse=True)]:
            return "not newest first: %s" % ids
        if not want["required"] <= got:
            return "posts of followed celebrities missing: %s" % sorted(want["required"] - got)
        cap = self.settings["timeline_cap"]
        if len(got - want["required"]) > cap:
            return "%d timeline posts, more than timeline_cap %d" % (
                len(got - want["required"]), cap)
        return None

    def post(self, post_id, viewer):
        p = _id(post_id)
        return None if self._why_hidden(p, _id(viewer)) else self._item(p)

    def user(self, user_id):
        u = _id(user_id)
        if u not in self.users:
            return None
        k, eng = str(u), self.eng
        return dict(self._author(u), followers_count=eng["followers"].get(k, 0),
                    following_count=eng["following"].get(k, 0),
                    posts_count=eng["posts"].get(k, 0), is_celebrity=u in self.celebrities)

    def user_posts(self, user_id, viewer):
        v = _id(viewer)
        return [self._item(p) for p in self.by_author.get(_id(user_id), ())
                if self._why_hidden(p, v) is None]

    @staticmethod
    def _edges(d):
        return [str(u) for t, u in sorted(((t, u) for u, t in d.items()), reverse=True)]

    def followers(self, user_id):
        return self._edges(self.follower_edges.get(_id(user_id), {}))

    def following(self, user_id):
        return self._edges(self.following_edges.get(_id(user_id), {}))

    def notifications(self, viewer):
        return [{"kind": kind, "actor_id": str(actor),
                 "post_id": None if kind == "follow" else str(post), "created_at": t}
                for t, _m, kind, actor, post in self.notes.get(_id(viewer), ())]


def build(posts_path, follows_path, likes_path, users_path, settings):
    dead = defaultdict(int)
    doc = oracle.compute(posts_path, follows_path, settings)
    eng = oracle.compute_engagement(posts_path, follows_path, likes_path or os.devnull)
    reg, outboxes = load_posts(posts_path, settings["outbox_cap"], dead)
    users = load_users(users_path, dead) if users_path else {}
    return FeedOracle(doc, eng, reg, outboxes, users, dead, settings)
