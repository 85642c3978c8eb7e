#!/usr/bin/env python3
"""Projections end to end on the real stack: the whole pipeline
(feedline-fanout, -timeline, -engagement, -affinity, -redis-sink,
-pg-sink) over a generated workload with likes and unlikes (duplicates,
unlikes without likes, self-likes), deletes and unfollows, while the
projections' stores fail under it, the workload arriving in three parts:

1. both sinks are killed with SIGKILL E2E_PROJ_KILLS times each (and
   restarted) while they work on part 1, which also holds a poison record
   on their inputs (garbage on `users`, a malformed timelines changelog
   record): it goes to the dead-letter topic, once per sink;
2. while part 2 arrives, Redis gets FLUSHALL, and then is killed with
   SIGKILL and restarted empty: the Redis sink notices each by itself and
   rebuilds (feedline_sink_rebuilds_total), no feedline process is
   restarted, and every feed is checked afterwards;
3. PostgreSQL is stopped with `pg_ctl stop -m immediate` for
   E2E_PROJ_PG_DOWN_S seconds while part 3 arrives: the PostgreSQL sink
   writes nothing meanwhile (its flush count stays, it reports waiting),
   keeps running, and catches up once PostgreSQL is back.

Then, with everything idle:
- every user's Redis feed (feed:{U}, newest first) and PostgreSQL
  feed_items equal the timelines changelog (what feedline-timeline holds);
- like counts, likes, follows, follower/following/post counts, affinity
  and notifications in both projections equal the oracle computed from the
  input topics (tests/e2e/oracle.py compute_engagement); post_likes has no
  pair twice;
- posts: live ones present in both, deleted ones gone from Redis and
  marked deleted in PostgreSQL; the celebrity set in Redis and
  users.is_celebrity equal the last status on feedline.celebrities;
- `feedline verify` finds every place equal, then names injected
  differences exactly; `feedline replay` rebuilds the stores and the
  projections into new generations and switches between them
  (check_replay).

Environment (the CI form takes a few minutes on 2 cores):
  E2E_PROJ_USERS, E2E_PROJ_POSTS, E2E_PROJ_LIKES  workload (2000, 10000, 20000)
  E2E_PROJ_SEED       workload seed (5)
  E2E_PROJ_KILLS      SIGKILLs per sink (20)
  E2E_PROJ_PG_DOWN_S  seconds PostgreSQL stays down (60)
  E2E_KEEP            keep the work folder (logs, stores)
"""
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import psycopg2  # noqa: E402
import redis  # noqa: E402

from itlib import BIN, KAFKA, ROOT, STACK, STACK_DIR  # noqa: E402
import oracle  # noqa: E402
import procs  # noqa: E402
from procs import Proc, total, wait_for, wait_idle  # noqa: E402

USERS = int(os.environ.get("E2E_PROJ_USERS", "2000"))
POSTS = int(os.environ.get("E2E_PROJ_POSTS", "10000"))
LIKES = int(os.environ.get("E2E_PROJ_LIKES", "20000"))
SEED = int(os.environ.get("E2E_PROJ_SEED", "5"))
KILLS = int(os.environ.get("E2E_PROJ_KILLS", "20"))
PG_DOWN_S = float(os.environ.get("E2E_PROJ_PG_DOWN_S", "60"))

FEEDLINE = os.path.join(BIN, "feedline")
WORK = None  # main() makes it: other tests import this module
REDIS_HOST, REDIS_PORT = STACK["FEEDLINE_REDIS"].rsplit(":", 1)
PG_DSN = STACK["FEEDLINE_POSTGRES"]
PROCESSORS = ("fanout", "timeline", "engagement", "affinity")
SINKS = {"redis-sink": "redis", "pg-sink": "postgres"}  # binary -> sink name in the topology


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def rconn():
    return redis.Redis(host=REDIS_HOST, port=int(REDIS_PORT), decode_responses=True)


def pg_query(sql, args=()):
    with psycopg2.connect(PG_DSN) as c, c.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall() if cur.description else []
    c.close()
    return rows


def reset_projections():
    """An empty Redis and a PostgreSQL without the sinks' tables: the
    sinks' migrations run from the first one."""
    rconn().flushall()
    with psycopg2.connect(PG_DSN) as c, c.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
        cur.execute("CREATE SCHEMA public")
        # generations of an earlier run's replay (feedline_gN)
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname ~ '^feedline_g[0-9]+$'")
        for (name,) in cur.fetchall():
            cur.execute('DROP SCHEMA "%s" CASCADE' % name)
    c.close()


def split_workload(gen, parts=3):
    """Every topic's events cut into `parts` runs of occurred_at, as files
    gen/TOPIC.1.jsonl ... gen/TOPIC.N.jsonl."""
    with open(os.path.join(gen, "summary.json")) as f:
        summary = json.load(f)
    lo, hi = summary["start_ms"], summary["end_ms"] + 1
    for topic in ("users", "follows", "posts", "likes"):
        outs = [open(os.path.join(gen, "%s.%d.jsonl" % (topic, i + 1)), "w") for i in range(parts)]
        with open(os.path.join(gen, topic + ".jsonl")) as f:
            for line in f:
                t = json.loads(line)["occurred_at"]
                outs[min(parts - 1, max(0, (t - lo) * parts // (hi - lo)))].write(line)
        for o in outs:
            o.close()
    return summary


def generate_workload(work, name, seed, users, posts, likes, parts):
    """A generated workload split into parts (split_workload) under
    work/name, and the run's topology set to one where its celebrities
    cross the threshold. Returns the workload folder."""
    gen = os.path.join(work, name)
    subprocess.run([sys.executable, os.path.join(HERE, "workload.py"), "--seed", str(seed),
                    "--users", str(users), "--posts", str(posts), "--likes", str(likes),
                    "--scale", "small", "--out", gen], check=True, stderr=subprocess.DEVNULL)
    summary = split_workload(gen, parts)
    procs.use_celebrity_settings(BIN, summary, work)
    return gen


def fresh_workload(work, seed, users, posts, likes, parts):
    """Empty topics and projections, then generate_workload() under
    work/workload. Returns the workload folder."""
    procs.reset_topics(KAFKA, FEEDLINE)
    procs.wait_topics_ready(KAFKA, FEEDLINE)
    reset_projections()
    return generate_workload(work, "workload", seed, users, posts, likes, parts)


def produce_part(gen, part):
    for topic in ("users", "follows", "posts", "likes"):
        procs.produce_jsonl(BIN, topic, os.path.join(gen, "%s.%d.jsonl" % (topic, part)))


def produce_poison():
    """Garbage on users (undecodable: both sinks dead-letter it in their
    decode stage) and a malformed record on the timelines changelog (its
    key is not a timeline key of the format: each sink rejects it).
    Returns {(topic, partition, offset)} of what was produced."""
    from confluent_kafka import Producer
    acked = set()

    def dr(err, msg):
        assert err is None, err
        acked.add((msg.topic(), msg.partition(), msg.offset()))

    p = Producer({"bootstrap.servers": KAFKA, "partitioner": "murmur2_random"})
    p.produce("users", key=b"1000001", value=b"\x00not avro at all", on_delivery=dr)
    p.produce("feedline.timelines-changelog", key=b"\x10short", value=b"\x01\x02", partition=0,
              on_delivery=dr)
    p.flush(30)
    assert len(acked) == 2, acked
    return acked


def dead_letters():
    """[(stage, source topic, partition, offset)] of the dead-letter topic."""
    out = subprocess.run([FEEDLINE, "tail", "feedline.dlq", "--from-beginning", "--exit-at-end"],
                         capture_output=True, text=True, check=True).stdout
    res = []
    for line in out.splitlines():
        r = json.loads(line)
        h = {k: v for k, v in (r.get("headers") or {}).items()}
        res.append((h.get("feedline.dlq.stage"), h.get("feedline.dlq.topic"),
                    int(h.get("feedline.dlq.partition", -1)), int(h.get("feedline.dlq.offset", -1))))
    return res


def server_pid(name):
    """The pid of the stack's server name (kafka, redis), from ops/stack's pid file."""
    with open(os.path.join(STACK_DIR, name, name + ".pid")) as f:
        return int(f.read().strip())


def redis_pid():
    return server_pid("redis")


def stack_up():
    p = subprocess.run([os.path.join(ROOT, "ops", "stack"), "up"], capture_output=True, text=True)
    if p.returncode:
        raise AssertionError("ops/stack up: %s" % p.stderr[-2000:])


def pg_stop_immediate():
    subprocess.run([os.path.join(ROOT, "ops", "stack"), "pg-down", "immediate"], check=True,
                   capture_output=True)


def pg_start():
    subprocess.run([os.path.join(ROOT, "ops", "stack"), "pg-up"], check=True, capture_output=True)


def sink_metric(p, name):
    m = p.metrics()
    return None if m is None else total(m, name)


def pg_offsets():
    return dict(((t, p), o) for t, p, o in pg_query(
        "SELECT topic, partition, next_offset FROM sink_offsets WHERE sink = %s", ("postgres",)))


def killer(sinks, kills, until):
    """SIGKILLs each sink `kills` times before time `until`, restarting it
    at once; returns the kills done."""
    rng = random.Random(SEED)
    done = 0
    plan = sorted((rng.uniform(time.time() + 1, until), s) for s in sinks for _ in range(kills))
    for at, s in plan:
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        s.kill9()
        s.start()
        done += 1
    return done


def main():
    global WORK
    WORK = tempfile.mkdtemp(prefix="feedline-projections-")
    log("work folder %s" % WORK)
    gen = fresh_workload(WORK, SEED, USERS, POSTS, LIKES, parts=3)
    state = os.path.join(WORK, "state")
    ps = [Proc(BIN, n, 0, state, None, WORK) for n in PROCESSORS]
    sinks = {b: Proc(BIN, b, 0, None, None, WORK) for b in SINKS}
    everyone = ps + list(sinks.values())
    figures = {}
    try:
        # 1. Both sinks killed SINK_KILLS times while they work.
        produce_part(gen, 1)
        for p in everyone:
            p.start()
        poison = produce_poison()
        figures["sink_kills"] = killer(list(sinks.values()), KILLS, time.time() + 30)
        wait_idle(everyone, timeout_s=600)
        log("part 1 idle after %d sink kills" % figures["sink_kills"])
        # 2. Redis flushed, then killed and restarted empty, while the
        # sinks work on part 2: no feedline process is restarted.
        starts = [p.starts for p in everyone]
        rs = sinks["redis-sink"]
        rebuilds0 = sink_metric(rs, "feedline_sink_rebuilds_total")
        produce_part(gen, 2)
        time.sleep(2)
        log("FLUSHALL")
        rconn().flushall()
        wait_for(lambda: sink_metric(rs, "feedline_sink_rebuilds_total") > rebuilds0, 60,
                 "the Redis sink to notice the FLUSHALL")
        time.sleep(2)
        log("Redis: SIGKILL, restarted empty")
        os.kill(redis_pid(), 9)
        time.sleep(2)
        stack_up()
        wait_for(lambda: sink_metric(rs, "feedline_sink_rebuilds_total") > rebuilds0 + 1, 60,
                 "the Redis sink to notice the empty Redis")
        wait_idle(everyone, timeout_s=600)
        assert [p.starts for p in everyone] == starts and all(p.alive() for p in everyone), \
            "a feedline process was restarted or exited"
        figures["redis_rebuilds"] = sink_metric(rs, "feedline_sink_rebuilds_total") - rebuilds0
        log("part 2 idle; Redis rebuilt %d times by itself" % figures["redis_rebuilds"])
        check_feeds()
        # 3. PostgreSQL down while part 3 arrives.
        pg = sinks["pg-sink"]
        before = pg_offsets()
        assert before, "the pg sink holds no offsets"
        flushes = sink_metric(pg, "feedline_sink_flushes_total")
        retries = sink_metric(pg, "feedline_sink_retries_total")
        log("PostgreSQL: stop -m immediate for %.0f s" % PG_DOWN_S)
        pg_stop_immediate()
        down_at = time.time()
        produce_part(gen, 3)
        waited = False
        while time.time() - down_at < PG_DOWN_S:
            time.sleep(1)
            assert pg.alive(), "the pg sink exited while PostgreSQL was down"
            now = sink_metric(pg, "feedline_sink_flushes_total")
            assert now == flushes, "the pg sink flushed while PostgreSQL was down"
            waited = waited or sink_metric(pg, "feedline_sink_waiting") == 1
        assert waited, "the pg sink never reported waiting for PostgreSQL"
        pg_start()
        figures["pg_down_s"] = round(time.time() - down_at, 1)
        wait_idle(everyone, timeout_s=600)
        # the consumer's lag is 0 once the records are fetched: a batch
        # still waiting out its retry backoff is not flushed yet
        wait_for(lambda: sink_metric(pg, "feedline_sink_waiting") == 0, 120,
                 "the pg sink to stop waiting for PostgreSQL")
        wait_idle(everyone, timeout_s=600)
        log("part 3 idle")
        figures["pg_retries"] = sink_metric(pg, "feedline_sink_retries_total") - retries
        check_dead_letters(poison)
        check_feeds()
        check_engagement(gen)
        for p in everyone:
            p.stop()
        check_verify(state)
        figures.update(check_replay(state))
    finally:
        for p in everyone:
            p.stop()
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(WORK, ignore_errors=True)
    log("figures: %s" % json.dumps(figures, sort_keys=True))
    print("ok   projections")


def check_dead_letters(poison):
    got = set(dead_letters())
    for sink in SINKS.values():
        for topic, part, off in poison:
            hits = [d for d in got if d[1:] == (topic, part, off) and d[0] in ("decode", sink)]
            assert hits, "no dead letter of %s for %s [%d] @%d" % (sink, topic, part, off)
    log("dead letters: every poison record once per sink")


def check_feeds():
    want = procs.changelog_timelines(BIN)  # {user: [post ids newest first]}
    r = rconn()
    bad = []
    users = set(want)
    for k in r.scan_iter("feed:{*}", count=1000):
        users.add(k[6:-1])
    for u in sorted(users):
        got = [int(x) for x in r.zrevrange("feed:{%s}" % u, 0, -1)]
        if got != [int(x) for x in want.get(u, [])]:
            bad.append(("redis", u, got[:3], want.get(u, [])[:3]))
    rows = pg_query("SELECT user_id, post_id FROM feed_items "
                    "ORDER BY user_id, created_at DESC, post_id DESC")
    pgf = {}
    for u, p in rows:
        pgf.setdefault(str(u), []).append(p)
    for u in set(want) | set(pgf):
        if pgf.get(u, []) != [int(x) for x in want.get(u, [])]:
            bad.append(("postgres", u, pgf.get(u, [])[:3], want.get(u, [])[:3]))
    assert not bad, "%d feeds differ, e.g. %s" % (len(bad), bad[:5])
    log("feeds: %d users, Redis and PostgreSQL equal the timelines" % len(want))


def verify(*args, topology=None):
    top = ["--topology", topology] if topology else []
    p = subprocess.run([FEEDLINE] + top + ["verify", "--json"] + list(args), capture_output=True,
                       text=True, timeout=600)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise AssertionError("feedline verify printed no JSON (exit %d): %s %s" % (
            p.returncode, p.stdout[-2000:], p.stderr[-2000:]))


def check_verify(state):
    """`feedline verify` on the stopped pipeline: every place equal, from
    the changelog and from the timeline processor's own store folders;
    then one feed entry removed from Redis, one added there, one row
    deleted in PostgreSQL: it must exit 1 naming exactly those users and
    posts."""
    rc, out = verify()
    assert rc == 0 and out["redis"]["equal"] and out["postgres"]["equal"], out
    stores = sorted(glob.glob(os.path.join(state, "timeline-0", "timelines-*")))
    assert stores, "no timeline store folders under %s" % state
    rc, out2 = verify("--store", *stores)
    assert rc == 0 and out2["entries"] == out["entries"], out2
    log("verify: %d users, %d entries equal in the changelog, the stores, Redis and "
        "PostgreSQL" % (out["users"], out["entries"]))
    r = rconn()
    feeds = sorted(k for k in r.scan_iter("feed:{*}", count=1000) if r.zcard(k) >= 2)
    assert len(feeds) >= 3, feeds
    lost_key, extra_key = feeds[0], feeds[1]
    lost = r.zrange(lost_key, 0, 0)[0]
    r.zrem(lost_key, lost)
    r.zadd(extra_key, {"4242424242": 1767225600000})
    pg_user, pg_post = pg_query("SELECT user_id, post_id FROM feed_items WHERE user_id = %s "
                                "LIMIT 1", (int(feeds[2][6:-1]),))[0]
    pg_query("DELETE FROM feed_items WHERE user_id = %s AND post_id = %s", (pg_user, pg_post))
    rc, out = verify()
    assert rc == 1, out
    red = {(u["user_id"], tuple(e["post_id"] for e in u["only_in_reference"]),
            tuple(e["post_id"] for e in u["only_here"])) for u in out["redis"]["users_shown"]}
    assert red == {(int(lost_key[6:-1]), (int(lost),), ()),
                   (int(extra_key[6:-1]), (), (4242424242,))}, red
    pgd = [(u["user_id"], [e["post_id"] for e in u["only_in_reference"]])
           for u in out["postgres"]["users_shown"]]
    assert pgd == [(pg_user, [pg_post])], pgd
    log("verify: a lost and an extra Redis entry and a lost PostgreSQL row named exactly")
    rels = out["relations"]
    assert all(o["redis"]["equal"] for o in rels.values()), rels
    log("verify: posts, users, follows, affinity, notifications: " + ", ".join(
        "%s %d rows" % (k, o["rows"]) for k, o in rels.items()))
    check_verify_relations(r)


def check_verify_relations(r):
    """Damage beside the feeds: a post's text changed in Redis, a follow
    deleted in PostgreSQL, a user's newest notification removed from
    Redis, an affinity count changed in PostgreSQL. verify must name each
    one, down to the id and field, and nothing else."""
    post = pg_query("SELECT id FROM posts WHERE deleted_at IS NULL ORDER BY id LIMIT 1")[0][0]
    r.hset("post:{%d}" % post, "text", "tampered")
    follower, followee = pg_query("SELECT follower_id, following_id FROM follows "
                                  "ORDER BY 1, 2 LIMIT 1")[0]
    pg_query("DELETE FROM follows WHERE follower_id = %s AND following_id = %s",
             (follower, followee))
    nkey = sorted(r.scan_iter("notif:{*}", count=1000))[0]
    newest = r.zrange(nkey, -1, -1, withscores=True)[0]
    r.zrem(nkey, newest[0])
    viewer, author, likes = pg_query("SELECT viewer_id, author_id, likes FROM affinity "
                                     "ORDER BY 1, 2 LIMIT 1")[0]
    pg_query("UPDATE affinity SET likes = likes + 5 WHERE viewer_id = %s AND author_id = %s",
             (viewer, author))
    rc, out = verify()
    assert rc == 1, out
    rels = out["relations"]

    def shown(rel, idname):
        return [(u[idname], u["only_in_reference"], u["only_here"])
                for u in rels[rel]["redis"]["shown"]]
    got = [(p, [x[:5] for x in a], [x[:5] for x in b]) for p, a, b in shown("posts", "post_id")]
    assert got == [(post, ["text="], ["text="])], shown("posts", "post_id")
    assert shown("follows", "follower_id") == [(follower, [], ["followee %d" % followee])], \
        shown("follows", "follower_id")
    kind, actor, npost = newest[0].split(":")
    want = ("like by %s of post %s at %d" % (actor, npost, int(newest[1])) if kind == "like"
            else "follow by %s at %d" % (actor, int(newest[1])))
    assert shown("notifications", "user_id") == [(int(nkey[7:-1]), [want], [])], \
        shown("notifications", "user_id")
    assert shown("affinity", "viewer_id") == [
        (viewer, ["author %d: %d likes" % (author, likes + 5)],
         ["author %d: %d likes" % (author, likes)])], shown("affinity", "viewer_id")
    assert rels["users"]["redis"]["equal"], rels["users"]
    log("verify: a changed post text, a lost follow, a lost notification and a changed "
        "affinity count named exactly")


def replay(env, *args):
    """feedline replay ARGS while every pattern channel user:{*} is
    listened to; returns the stdout lines, the generation's replay.json
    and the messages heard."""
    heard = []
    sub = rconn().pubsub()
    sub.psubscribe("user:{*}")
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            m = sub.get_message(timeout=0.2)
            if m and m["type"] == "pmessage":
                heard.append(m)
    t = threading.Thread(target=listen, daemon=True)
    t.start()
    p = subprocess.run([FEEDLINE, "replay"] + list(args), env=env, capture_output=True,
                       text=True, timeout=900)
    stop.set()
    t.join()
    sub.close()
    assert p.returncode == 0, "replay failed: %s %s" % (p.stdout[-2000:], p.stderr[-3000:])
    n = int(subprocess.run([FEEDLINE, "generations", "newest"], env=env, capture_output=True,
                           text=True, check=True).stdout)
    report = json.load(open(os.path.join(env["FEEDLINE_GENERATIONS"], "g%d" % n,
                                         "replay.json")))
    return p.stdout.strip().splitlines(), report, heard


def switch(env, n):
    sw = subprocess.run([FEEDLINE, "generations", "switch", str(n)], env=env,
                        capture_output=True, text=True, timeout=120)
    assert sw.returncode == 0, sw.stderr
    lst = subprocess.run([FEEDLINE, "generations"], env=env, capture_output=True, text=True)
    assert ("%-10d yes" % n) in lst.stdout, lst.stdout


def replayed_timelines_match_oracle(topology):
    """The timelines store of a generation (its changelog) against
    oracle.compute() over the input topics: what a replay must rebuild."""
    posts, follows = os.path.join(WORK, "posts.json"), os.path.join(WORK, "follows.json")
    procs.tail_to_file(BIN, "posts", posts)
    procs.tail_to_file(BIN, "follows", follows)
    cfg = procs.topology_settings(BIN)
    expected = oracle.compute(posts, follows, cfg)
    got = procs._timelines(procs.run_feedline(BIN, "--topology", topology, "timeline",
                                              "--all").stdout)
    bad = procs.timeline_mismatches(expected, got, cfg["timeline_cap"])
    assert not bad, "replayed timelines differ from the oracle (first 5): %s" % bad[:5]
    return len(got)


def check_replay(state):
    """`feedline replay --all` rebuilds the four stores and both
    projections from the input topics into generation 1, beside generation
    0 (whose projections hold the damage check_verify left): its topics
    carry the prefix g1., its projections a Redis database and a
    PostgreSQL schema of their own, and nothing is published meanwhile.
    Generation 1's timelines equal the oracle of the inputs (the live run
    merged parts that arrived while it ran, so a celebrity's post may have
    met its follows in another order: a replay gives what the inputs in
    occurred_at order give), and its Redis and PostgreSQL equal its store.
    The switch makes generation 1 live under the contract's names and
    parks generation 0 with its damage intact. `replay redis postgres
    --switch` then rebuilds only the projections, from generation 1's
    topics, into generation 2, equal to generation 1; and a second `replay
    --all` (generation 3, kept aside) equals the live one above each
    user's trim marks: the fan-out tasks' operations meet in the timeline
    topic in another order each run, which changes only what the timeline
    cap dropped (fl_timeline.h)."""
    gens = os.path.join(WORK, "generations")
    env = dict(os.environ, FEEDLINE_GENERATIONS=gens)
    live = os.path.join(gens, "live", "topology.yaml")
    g = {n: os.path.join(gens, "g%d" % n, "topology.yaml") for n in range(4)}
    lines, rep1, heard = replay(env, "--state-dir", state, "--all")
    log("replay --all: " + " | ".join(lines[:5]))
    assert not heard, "the replay published %d messages, e.g. %s" % (len(heard), heard[:2])
    assert len(rep1["stages"]) == 3, rep1  # fan-out + engagement, timeline + affinity, both sinks
    rc, out = verify(topology=g[1])
    assert rc == 0 and out["redis"]["equal"] and out["postgres"]["equal"], out
    users = replayed_timelines_match_oracle(g[1])
    tail = procs.run_feedline(BIN, "--topology", g[1], "tail", "feedline.timelines-changelog",
                              "--from-beginning", "--exit-at-end", "--max", "1").stdout
    assert json.loads(tail.splitlines()[0])["topic"] == "g1.feedline.timelines-changelog", tail
    switch(env, 1)
    rc, out = verify(topology=live)
    assert rc == 0, out
    rc, out = verify(topology=g[0])
    assert rc == 1 and out["redis"]["differ"] == 2 and out["postgres"]["differ"] == 1, out
    log("replay --all: generation 1 (%d timelines) equal to the oracle, switched live; "
        "generation 0 parked with its 3 injected differences" % users)
    lines, rep2, heard = replay(env, "redis", "postgres", "--switch")
    assert not heard and len(rep2["stages"]) == 1, (rep2, heard[:2])
    rc, out = verify("--against", g[1], topology=live)
    assert rc == 0, out
    lines, rep3, heard = replay(env, "--all")
    rc, out = verify("--against", live, topology=g[3])
    assert rc == 0, out
    marks = out["against_changelog"]
    log("replay redis postgres --switch: generation 2 live, equal to generation 1; a second "
        "replay --all (generation 3) equal to it above the trim marks of %d users (%d and %d "
        "entries at or below them)" % (marks["users_with_trim_mark"],
                                       marks["reference_below_marks"], marks["below_marks"]))
    per_s = [int(st["records"] * 1000 / max(1, st["elapsed_ms"])) for st in rep1["stages"]]
    return {"replay_all_s": round(rep1["elapsed_ms"] / 1000.0, 1),
            "replay_all_records_per_s": per_s,
            "replay_projections_s": round(rep2["elapsed_ms"] / 1000.0, 1)}


def check_engagement(gen):
    paths = {}
    for t in ("posts", "follows", "likes"):
        paths[t] = os.path.join(WORK, t + ".tail")
        procs.tail_to_file(BIN, t, paths[t])
    want = oracle.compute_engagement(paths["posts"], paths["follows"], paths["likes"])
    r = rconn()
    # likes and follows: PostgreSQL holds the sets, each pair once
    got = sorted([p, u] for p, u in pg_query("SELECT post_id, user_id FROM post_likes"))
    assert got == sorted([p, u] for p, u, _ in want["likes"]), "post_likes differ"
    got = sorted([a, f] for a, f in pg_query("SELECT following_id, follower_id FROM follows"))
    assert got == sorted([a, f] for a, f, _ in want["follows"]), "follows differ"
    # like counts on every post the projections hold
    for pid, n in pg_query("SELECT id, likes_count FROM posts WHERE deleted_at IS NULL"):
        assert (n or 0) == want["post_likes"].get(str(pid), 0), \
            "posts %d likes_count %s, want %s" % (pid, n, want["post_likes"].get(str(pid), 0))
    live = {str(p) for (p,) in pg_query("SELECT id FROM posts WHERE deleted_at IS NULL")}
    deleted = {str(p) for (p,) in pg_query("SELECT id FROM posts WHERE deleted_at IS NOT NULL")}
    pipe = r.pipeline(transaction=False)
    order = sorted(live | deleted)
    for p in order:
        pipe.hget("post:{%s}" % p, "like_count")
    for p, v in zip(order, pipe.execute()):
        if p in deleted:
            assert v is None, "deleted post %s still in Redis" % p
        else:
            assert v is not None, "post %s missing from Redis" % p
            assert int(v) == want["post_likes"].get(p, 0), "post:{%s} like_count %s" % (p, v)
    # user counts
    counts = {str(u): (fo or 0, fi or 0, po or 0) for u, fo, fi, po in pg_query(
        "SELECT id, followers_count, following_count, posts_count FROM users")}
    for u in set(counts) | set(want["followers"]) | set(want["following"]) | set(want["posts"]):
        w = (want["followers"].get(u, 0), want["following"].get(u, 0), want["posts"].get(u, 0))
        assert counts.get(u, (0, 0, 0)) == w, "users %s counts %s, want %s" % (u, counts.get(u), w)
        h = r.hmget("user:{%s}" % u, "followers_count", "following_count", "posts_count")
        assert tuple(int(x or 0) for x in h) == w, "user:{%s} counts %s, want %s" % (u, h, w)
    # affinity
    got = {"%d,%d" % (v, a): n for v, a, n in pg_query(
        "SELECT viewer_id, author_id, likes FROM affinity")}
    assert got == want["affinity"], "affinity differs in PostgreSQL"
    for key, n in want["affinity"].items():
        v, a = key.split(",")
        assert int(r.hget("affinity:{%s}" % v, a) or 0) == n, "affinity:{%s} %s" % (v, a)
    # notifications: all in PostgreSQL
    got = sorted([u, k, a, p or 0] for u, k, a, p in pg_query(
        "SELECT user_id, kind, actor_id, post_id FROM notifications"))
    assert got == sorted([u, k, a, p] for u, k, a, p, _ in want["notifications"]), \
        "notifications differ in PostgreSQL"
    # celebrities: the last status of each author on feedline.celebrities
    path = os.path.join(WORK, "celebrities.tail")
    procs.tail_to_file(BIN, "feedline.celebrities", path)
    status = {}
    with open(path) as f:
        for line in f:
            v = json.loads(line).get("value")
            if isinstance(v, dict):
                status[str(v["author_id"])] = v["celebrity"]
    celebs = {a for a, c in status.items() if c}
    assert celebs, "the workload made no celebrity"
    assert set(r.smembers("celebrities")) == celebs, "Redis celebrities differ"
    got = {str(u) for (u,) in pg_query("SELECT id FROM users WHERE is_celebrity")}
    assert got == celebs, "users.is_celebrity differs: %s vs %s" % (sorted(got), sorted(celebs))
    log("engagement: likes %d, follows %d, notifications %d equal the oracle" % (
        len(want["likes"]), len(want["follows"]), len(want["notifications"])))


if __name__ == "__main__":
    main()
