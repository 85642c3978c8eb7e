#!/usr/bin/env python3
"""Seeded workload generator for feedline's end-to-end test (stdlib only).

    workload.py --seed S --users N --posts P [--celebrities K]
                [--celebrity-followers F] [--scale default|small]
                [--run-id ID] [--start-ms MS|now] [--partitions N]
                [--likes L] --out DIR

Writes DIR/users.jsonl, DIR/follows.jsonl and DIR/posts.jsonl in the JSON
lines format `feedline produce TOPIC` reads (README, "Event contract"), plus
DIR/summary.json (counts, celebrity ids, time and id ranges) for tests.

The same arguments always give byte-identical files. Shape of the run:
- users 1_000_000 + i (--user-base), all registered first, a few updated;
- a power-law follow graph (Zipf popularity, Pareto out-degrees), 60% of it
  in the first 30% of the run, the rest spread over the run; ~10% of the
  edges are unfollowed later and a quarter of those re-followed; ~1% are
  sent twice; a few unfollows of edges that never existed; a few
  self-follows and self-unfollows (invalid: dead letters);
- K celebrities (default 3) each followed by F users (default 10,500: above
  the default celebrity_threshold 10,000) during the first 45% of the run;
  celebrity #0 then loses 30% of them (7,350 < threshold - hysteresis =
  9,000) and regains them later, celebrity #1 loses them and stays below,
  the others stay celebrities. Any F works if F > threshold and
  0.7 F < threshold - hysteresis: summary.json names settings that fit
  (celebrity_settings: 10,000 and 1,000 for the default F). With fewer
  users than F + 1, F becomes the number of users - 1, below the default
  threshold: such a workload needs the lower settings it names;
- posts interleaved with the follows over the whole run: 80% PUBLIC, 15%
  FOLLOWERS, 5% PRIVATE, ~10% replies, per-author counts Pareto-distributed
  but bounded, so that most timelines stay under the default cap of 800
  entries and a few exceed it; ~0.5% of posts are sent twice (same post,
  new event); ~3% are deleted, including deletes of post ids never created
  and a few deletes that arrive before their PostCreated; a few PostDeleted
  naming the wrong author and PostCreated reusing another author's post id,
  both within the owner's partition (--partitions, default 4): invalid;
- with --likes L (default 0: no likes.jsonl, and the other files exactly as
  without the option), L likes of posts by users, each after its post,
  popular posts liked more (Pareto); ~2% are sent twice, ~10% are unliked
  later and a quarter of those liked again, a few unlikes of likes that
  never existed, a few self-likes (valid: counted, but no notification),
  and likes of deleted posts (kept: likes do not know about deletes).

Every event has a unique event_id "<run-id>-<n>" and an occurred_at (epoch
ms) strictly increasing by 1 ms across all three files. Post ids are
created_at * 1000 + 1 (time-ordered, unique, never small); ids of
never-created posts end in 2. PostCreated's created_at is its occurred_at.

--start-ms defaults to a time derived from the seed (2026-01-01 + seed %
10000 * 10^8 ms), so the output is deterministic; pass a later start (or
`now`) when the topics already hold records with later occurred_at, since
the fan-out merges posts and follows in occurred_at order.
"""
import argparse
import bisect
import json
import os
import random
import sys
import time

T0 = 1767225600000  # 2026-01-01T00:00:00Z
PRESETS = {
    "default": {"users": 12000, "posts": 100000, "celebrity_followers": 10500},
    "small": {"users": 2000, "posts": 10000, "celebrity_followers": 1200},
}
VIS = (("PUBLIC", 0.80), ("FOLLOWERS", 0.15), ("PRIVATE", 0.05))
WORDS = ("feed", "kafka", "event", "timeline", "post", "graph", "cache", "replay", "stream",
         "merge", "offset", "batch", "store", "celebrity", "outbox", "fan-out", "hello", "news")


def murmur2(data):
    """Kafka's (Java client) murmur2 hash of bytes, as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    n4 = length & ~3
    for i in range(0, n4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    if rest == 3:
        h ^= data[n4 + 2] << 16
    if rest >= 2:
        h ^= data[n4 + 1] << 8
    if rest >= 1:
        h ^= data[n4]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_of(key, partitions):
    """Partition of a text key under the Java default partitioner."""
    return (murmur2(str(key).encode("utf-8")) & 0x7FFFFFFF) % partitions


class Post:
    __slots__ = ("t", "author", "vis", "reply", "ts", "id", "words")

    def __init__(self, t, author, vis, reply, words):
        self.t, self.author, self.vis, self.reply, self.words = t, author, vis, reply, words
        self.ts = self.id = None


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", choices=sorted(PRESETS), default="default",
                    help="preset for --users, --posts, --celebrity-followers")
    ap.add_argument("--users", type=int)
    ap.add_argument("--posts", type=int)
    ap.add_argument("--celebrities", type=int, default=3)
    ap.add_argument("--celebrity-followers", type=int,
                    help="followers each celebrity gets (default 10500; small: 1200)")
    ap.add_argument("--run-id", help="event_id prefix (default wl<seed>)")
    ap.add_argument("--start-ms", default=None,
                    help="occurred_at of the first event, epoch ms or 'now' "
                         "(default: derived from the seed)")
    ap.add_argument("--user-base", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=4,
                    help="partitions of posts (only to place the invalid-author events)")
    ap.add_argument("--likes", type=int, default=0,
                    help="likes to generate (default 0: no likes.jsonl)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    preset = PRESETS[a.scale]
    a.users = preset["users"] if a.users is None else a.users
    a.posts = preset["posts"] if a.posts is None else a.posts
    if a.celebrity_followers is None:
        a.celebrity_followers = preset["celebrity_followers"]
    a.run_id = a.run_id or "wl%d" % a.seed
    if a.start_ms is None:
        a.start_ms = T0 + (a.seed % 10000) * 100_000_000
    elif a.start_ms == "now":
        a.start_ms = int(time.time() * 1000)
    else:
        a.start_ms = int(a.start_ms)
    if a.users < 2:
        ap.error("--users must be at least 2")
    if a.posts < 0 or a.celebrities < 0 or a.celebrities > a.users or a.likes < 0:
        ap.error("bad --posts or --celebrities")
    return a


def celebrity_settings_fit(followers, threshold, hysteresis):
    """Whether a workload whose celebrities get this many followers plays its
    celebrity scenarios under these settings: F followers reach the
    threshold, and the 30% a dropping celebrity loses take it below
    threshold - hysteresis."""
    return followers >= threshold and followers - int(0.3 * followers) < threshold - hysteresis


def celebrity_settings(followers):
    """{celebrity_threshold, celebrity_hysteresis} that fit F followers per
    celebrity, in the default's proportions (10,500 followers: 10,000 and
    1,000), or None when F is too small for any."""
    threshold = followers * 20 // 21
    hysteresis = threshold // 10
    if threshold < 1 or not celebrity_settings_fit(followers, threshold, hysteresis):
        return None
    return {"celebrity_threshold": threshold, "celebrity_hysteresis": hysteresis}


def weighted_picker(rng, weights):
    """A function returning an index drawn with the given weights."""
    cum, s = [], 0.0
    for w in weights:
        s += w
        cum.append(s)
    if s <= 0:
        return None
    rnd, br, last = rng.random, bisect.bisect_right, len(cum) - 1
    return lambda: min(br(cum, rnd() * s), last)


def clip_weights(weights, max_share):
    """Caps every weight at max_share of the total (a few rounds)."""
    for _ in range(5):
        total = sum(weights)
        limit = max_share * total
        if total <= 0 or max(weights) <= limit * 1.0001:
            break
        weights = [min(w, limit) for w in weights]
    return weights


def generate(a, log=sys.stderr):
    rng = random.Random(a.seed)
    N, P, K = a.users, a.posts, a.celebrities
    uid = [a.user_base + i for i in range(N)]
    F = a.celebrity_followers
    if K and F > N - 1:
        F = N - 1
        print("workload: only %d users, celebrities get %d followers (settings that fit: %s)"
              % (N, F, celebrity_settings(F)), file=log)

    actions = []  # (t, seq, kind, payload...)
    seq = iter(range(1 << 62))

    def act(t, kind, *payload):
        actions.append((t, next(seq), kind) + payload)

    # ---- users ------------------------------------------------------------
    celebs = sorted(rng.sample(range(N), K))
    is_celeb = [False] * N
    for c in celebs:
        is_celeb[c] = True
    for i in rng.sample(range(N), max(1, N // 200)):
        act(rng.random(), "UU", i)

    # ---- the follow graph ---------------------------------------------------
    maxd = max(5, N // 10)
    outdeg = []
    for _ in range(N):
        d = 0 if rng.random() < 0.03 else int(rng.paretovariate(1.6) * 6)
        outdeg.append(min(d, maxd, N - 1 - K))
    total_follows = sum(outdeg)
    rank = rng.sample(range(N), N)
    pop = [0.0 if is_celeb[i] else 1.0 / (rank[i] + 1) ** 1.05 for i in range(N)]
    # No ordinary user comes near the celebrity threshold.
    cap_followers = max(3.0, min(0.3 * (F or PRESETS["default"]["celebrity_followers"]), 0.25 * N))
    pop = clip_weights(pop, cap_followers / max(total_follows, 1))
    pick = weighted_picker(rng, pop)
    edges = []
    edge_set = set()
    for u in range(N):
        want = outdeg[u]
        chosen = set()
        tries = 0
        while len(chosen) < want and tries < want * 20 and pick:
            tries += 1
            v = pick()
            if v != u and not is_celeb[v]:
                chosen.add(v)
        for v in sorted(chosen):
            t = rng.random() * 0.3 if rng.random() < 0.6 else rng.random()
            edges.append((t, u, v))
            edge_set.add((u, v))
    n_unfollow = n_refollow = n_dupfollow = 0
    for t, u, v in edges:
        act(t, "FA", u, v)
        x = rng.random()
        if x < 0.10:
            tu = t + (1 - t) * rng.random()
            act(tu, "FR", u, v)
            n_unfollow += 1
            if rng.random() < 0.25:
                act(tu + (1 - tu) * rng.random(), "FA", u, v)
                n_refollow += 1
        elif x < 0.11:
            act(t + (1 - t) * rng.random(), "FA", u, v)
            n_dupfollow += 1
    n_unknown_unfollow = 0
    for _ in range(max(2, N // 500)):
        u, v = rng.randrange(N), rng.randrange(N)
        if u != v and (u, v) not in edge_set and not is_celeb[v]:
            act(rng.random(), "FR", u, v)
            n_unknown_unfollow += 1
    self_follows = 0
    for i in range(5):
        act(rng.random(), "FA", rng.randrange(N), None)
        self_follows += 1
    for i in range(2):
        act(rng.random(), "FR", rng.randrange(N), None)
        self_follows += 1

    # ---- celebrities ---------------------------------------------------------
    celeb_info = []
    for j, c in enumerate(celebs):
        others = [u for u in range(N) if u != c]
        followers = rng.sample(others, F)
        for u in followers:
            act(0.03 + 0.42 * rng.random(), "FA", u, c)
        scenario = "stays"
        if j < 2 and K >= 1:
            scenario = "drops and rises again" if j == 0 else "drops"
            lo, hi = (0.55, 0.62) if j == 0 else (0.60, 0.68)
            gone = rng.sample(followers, int(0.3 * F))
            for u in gone:
                act(lo + (hi - lo) * rng.random(), "FR", u, c)
            if j == 0:
                fset = set(followers)
                pool = gone + [u for u in others if u not in fset]
                for u in rng.sample(pool, min(len(pool), int(0.3 * F))):
                    act(0.72 + 0.08 * rng.random(), "FA", u, c)
        celeb_info.append({"user_id": uid[c], "followers": F, "scenario": scenario})

    # ---- posts ----------------------------------------------------------------
    celeb_posts = max(10, min(150, P // 1000)) if K else 0
    celeb_posts = min(celeb_posts, P // max(1, 2 * K)) if K else 0
    regular = P - celeb_posts * K
    max_per_author = max(20.0, 36.0 * P / N)
    activity = [0.0 if is_celeb[i] else rng.paretovariate(1.3) for i in range(N)]
    activity = clip_weights(activity, max_per_author / max(regular, 1))
    pick_author = weighted_picker(rng, activity)
    vis_names = [v for v, _ in VIS]
    vis_weights = [w for _, w in VIS]

    def new_post(t, author):
        vis = rng.choices(vis_names, vis_weights)[0]
        words = tuple(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
        return Post(t, author, vis, rng.random() < 0.10, words)

    posts = []
    for _ in range(regular):
        posts.append(new_post(0.01 + 0.99 * rng.random(), pick_author() if pick_author else 0))
    for c in celebs:
        for _ in range(celeb_posts):
            posts.append(new_post(rng.random(), c))
    for p in posts:
        act(p.t, "PC", p)

    n_del = round(0.03 * P)
    n_unknown_del = max(2, n_del // 20) if P >= 100 else 0
    victims = rng.sample(range(len(posts)), max(0, min(len(posts), n_del - n_unknown_del)))
    n_early_del = min(len(victims), max(3, n_del // 100))
    n_dup = round(0.005 * P)
    for k, i in enumerate(victims):
        p = posts[i]
        if k < n_early_del:
            act(p.t * rng.random(), "PD", p, p.author)  # before its PostCreated
        else:
            act(p.t + (1 - p.t) * rng.random(), "PD", p, p.author)
    for _ in range(n_unknown_del):
        act(rng.random(), "PDX", rng.randrange(N))
    for i in rng.sample(range(len(posts)), min(len(posts), n_dup)):
        p = posts[i]
        act(p.t + (1 - p.t) * rng.random(), "PC", p)

    # Invalid: the wrong author within the owner's partition.
    parts = {}
    for i in range(N):
        parts.setdefault(partition_of(uid[i], a.partitions), []).append(i)
    n_bad_del = n_bad_create = 0
    for i in rng.sample(range(len(posts)), min(len(posts), 6)):
        p = posts[i]
        same = [x for x in parts[partition_of(uid[p.author], a.partitions)] if x != p.author]
        if not same:
            continue
        other = rng.choice(same)
        if n_bad_del < 3:
            act(p.t + (1 - p.t) * rng.random(), "PD", p, other)
            n_bad_del += 1
        else:
            act(p.t + (1 - p.t) * rng.random(), "PCX", p, other)
            n_bad_create += 1

    # ---- likes (their own random stream: without them the rest is unchanged)
    n_like = {"likes": 0, "duplicate_likes": 0, "unlikes": 0, "relikes": 0,
              "unknown_unlikes": 0, "self_likes": 0}
    if a.likes and posts:
        lrng = random.Random(a.seed * 7919 + 17)
        appeal = [lrng.paretovariate(1.2) for _ in posts]
        pick_post = weighted_picker(lrng, clip_weights(appeal, 0.002))
        liked = set()
        for _ in range(a.likes):
            i = pick_post()
            p = posts[i]
            u = p.author if lrng.random() < 0.005 else lrng.randrange(N)
            if (u, i) in liked:
                continue
            liked.add((u, i))
            t = p.t + (1 - p.t) * lrng.random() ** 2
            act(t, "LA", p, u)
            n_like["likes"] += 1
            n_like["self_likes"] += u == p.author
            x = lrng.random()
            if x < 0.10:
                tu = t + (1 - t) * lrng.random()
                act(tu, "LR", p, u)
                n_like["unlikes"] += 1
                if lrng.random() < 0.25:
                    act(tu + (1 - tu) * lrng.random(), "LA", p, u)
                    n_like["relikes"] += 1
            elif x < 0.12:
                act(t + (1 - t) * lrng.random(), "LA", p, u)
                n_like["duplicate_likes"] += 1
        for _ in range(max(2, a.likes // 500)):
            i = lrng.randrange(len(posts))
            u = lrng.randrange(N)
            if (u, i) not in liked:
                act(posts[i].t + (1 - posts[i].t) * lrng.random(), "LR", posts[i], u)
                n_like["unknown_unlikes"] += 1

    # ---- time line and ids ---------------------------------------------------
    actions.sort(key=lambda x: (x[0], x[1]))
    base = a.start_ms + N
    for i, x in enumerate(actions):
        if x[2] == "PC" and x[3].ts is None:
            x[3].ts = base + i
            x[3].id = (base + i) * 1000 + 1

    # ---- write -----------------------------------------------------------------
    os.makedirs(a.out, exist_ok=True)
    counts = {}
    n = [0]
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

    def ev(f, typ, ts, fields):
        n[0] += 1
        d = {"type": typ, "event_id": "%s-%d" % (a.run_id, n[0]), "occurred_at": ts}
        d.update(fields)
        f.write(dumps(d))
        f.write("\n")
        counts[typ] = counts.get(typ, 0) + 1

    recent = []
    topics = ("users", "follows", "posts") + (("likes",) if a.likes else ())
    paths = {t: os.path.join(a.out, t + ".jsonl") for t in topics}
    with open(paths["users"], "w") as fu, open(paths["follows"], "w") as ff, \
            open(paths["posts"], "w") as fp, \
            open(paths.get("likes", os.devnull), "w") as fl:
        for i in range(N):
            ev(fu, "UserRegistered", a.start_ms + i,
               {"user_id": uid[i], "handle": "u%d" % uid[i],
                "display_name": "User %d" % uid[i]})
        for i, x in enumerate(actions):
            ts, kind = base + i, x[2]
            if kind == "UU":
                u = x[3]
                if rng.random() < 0.5:
                    fields = {"user_id": uid[u], "display_name": "User %d (%s)" % (
                        uid[u], rng.choice(WORDS)), "bio": None}
                else:
                    fields = {"user_id": uid[u], "display_name": None,
                              "bio": "likes " + rng.choice(WORDS)}
                ev(fu, "UserUpdated", ts, fields)
            elif kind in ("FA", "FR"):
                u, v = x[3], x[4]
                v = u if v is None else v
                ev(ff, "FollowAdded" if kind == "FA" else "FollowRemoved", ts,
                   {"follower_id": uid[u], "followee_id": uid[v]})
            elif kind == "PC":
                p = x[3]
                if ts == p.ts:  # the original; a duplicate repeats it
                    p.reply = recent[rng.randrange(len(recent))] if p.reply and recent else None
                    recent.append(p.id)
                    if len(recent) > 2000:
                        del recent[:1000]
                ev(fp, "PostCreated", ts,
                   {"post_id": p.id, "author_id": uid[p.author], "created_at": p.ts,
                    "text": " ".join(p.words), "visibility": p.vis, "reply_to": p.reply})
            elif kind == "PCX":
                p, other = x[3], x[4]
                ev(fp, "PostCreated", ts,
                   {"post_id": p.id, "author_id": uid[other], "created_at": ts,
                    "text": "not my post", "visibility": "PUBLIC", "reply_to": None})
            elif kind == "PD":
                p, author = x[3], x[4]
                ev(fp, "PostDeleted", ts, {"post_id": p.id, "author_id": uid[author]})
            elif kind == "PDX":
                ev(fp, "PostDeleted", ts, {"post_id": ts * 1000 + 2, "author_id": uid[x[3]]})
            elif kind in ("LA", "LR"):
                p, u = x[3], x[4]
                ev(fl, "LikeAdded" if kind == "LA" else "LikeRemoved", ts,
                   {"user_id": uid[u], "post_id": p.id, "author_id": uid[p.author]})
    end_ms = base + len(actions) - 1
    special = {
        "unfollows": n_unfollow, "refollows": n_refollow, "duplicate_follows": n_dupfollow,
        "unknown_unfollows": n_unknown_unfollow, "self_follows": self_follows,
        "duplicate_posts": n_dup, "deletes": n_del, "unknown_deletes": n_unknown_del,
        "early_deletes": n_early_del, "wrong_author_deletes": n_bad_del,
        "reused_post_ids": n_bad_create, "celebrity_posts": celeb_posts * K,
    }
    if a.likes:
        special.update(n_like)
    summary = {
        "seed": a.seed, "run_id": a.run_id, "users": N, "posts": P, "user_base": a.user_base,
        "start_ms": a.start_ms, "end_ms": end_ms, "partitions": a.partitions,
        "celebrity_followers": F if K else 0, "celebrities": celeb_info, "counts": counts,
        "celebrity_settings": celebrity_settings(F) if K else None,
        "special": special,
        "invalid_events": self_follows + n_bad_del + n_bad_create,
        "files": {t: os.path.basename(p) for t, p in paths.items()},
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    print("workload seed %d -> %s: %s; %s; celebrities %s" % (
        a.seed, a.out, ", ".join("%s %d" % kv for kv in sorted(counts.items())),
        ", ".join("%s %d" % kv for kv in sorted(special.items())),
        ", ".join("%d (%s)" % (c["user_id"], c["scenario"]) for c in celeb_info) or "none"),
        file=log)
    return summary


def main(argv=None):
    generate(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
