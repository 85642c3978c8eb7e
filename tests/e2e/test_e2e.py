"""End to end on the real stack: a seeded generated workload goes through
feedline-fanout and feedline-timeline while they crash again and again:
SIGKILLs at random moments and, for each processor, one crash at each of
the runtime's failpoints (FEEDLINE_FAILPOINT: before-offsets,
before-commit, after-commit). Every user's timeline, rebuilt from the
timelines changelog and read from the timeline processor's local stores,
must equal an independent oracle computed from the input topics, and no
output record may be committed twice. Then: restore after deleting a
processor's local state (the restored stores themselves are compared),
scale-out to two timeline instances, fail-over and fail-back onto stores
behind their changelog, and bad records in every input topic, among
them values of 1,010,000 bytes, end up in the dead-letter topic with
their context and every byte while their partitions go on.

The workload's celebrities cross the celebrity threshold and drop below
it again; when the topology's celebrity settings do not fit the
workload's follower counts (fewer users than the default threshold), the
run uses a copy of the topology with the settings the workload names, for
the processors and the oracle alike.

Environment: E2E_USERS, E2E_POSTS, E2E_SEED, E2E_KILLS (crashes per
processor, three of them at the failpoints), E2E_CELEB_FOLLOWERS.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from itlib import BIN, KAFKA, ROOT, RUN, Suite, feedline  # noqa: E402
import procs  # noqa: E402
from procs import (Proc, changelog_timelines, reset_topics, store_timelines,  # noqa: E402
                   tail_to_file, timeline_mismatches, topic_partitions, topology_settings,
                   wait_for, wait_idle)
import workload  # noqa: E402

USERS = int(os.environ.get("E2E_USERS", "12000"))
POSTS = int(os.environ.get("E2E_POSTS", "100000"))
SEED = int(os.environ.get("E2E_SEED", "7"))
KILLS = int(os.environ.get("E2E_KILLS", "20"))
CELEB_FOLLOWERS = os.environ.get("E2E_CELEB_FOLLOWERS")
# The runtime's failpoints (fl_rt_int.h): each processor crashes once at each.
FAILPOINTS = ("before-offsets", "before-commit", "after-commit")
FAILPOINT_TIMEOUT_S = 180
# A bad value above librdkafka's default message.max.bytes (1,000,000) and
# within the broker's default max.message.bytes (1,048,588).
BIG_VALUE = 1010000

WORK = tempfile.mkdtemp(prefix="feedline-e2e-")
STATE = os.path.join(WORK, "state")
ctx = {}


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def settings():
    """The topology's settings block as a dict of ints."""
    return topology_settings(BIN)


def _parts(topic):
    return topic_partitions(BIN, topic)


def produce_file(topic, path):
    with open(path) as f:
        p = subprocess.run([os.path.join(BIN, "feedline"), "produce", topic], stdin=f,
                           capture_output=True, text=True, timeout=1200)
    # Exit 3: some lines were skipped on purpose (none expected from the generator).
    assert p.returncode == 0, "produce %s: %d %s" % (topic, p.returncode, p.stderr[-2000:])
    log(p.stderr.strip().splitlines()[-1])


def inject_bad_records():
    """Undecodable and invalid records into every input topic of the
    pipeline and into the internal timeline-ops topic; then, on each of
    those topics, a garbage value of BIG_VALUE bytes into the partition of
    one author followed by valid records to the same partitions, whose
    effects check_dead_letters looks for. The processors start after this,
    so every timeline operation the fan-out writes comes after the garbage
    in feedline.timeline-ops."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": KAFKA, "partitioner": "murmur2_random",
                  "enable.idempotence": True, "message.max.bytes": 2 * 1024 * 1024})
    good = feedline("encode", stdin=json.dumps(
        {"type": "LikeAdded", "event_id": RUN + "-bad-like", "occurred_at": 1, "user_id": 1,
         "post_id": 2, "author_id": 3}).encode(), binary=True).stdout
    bad = {
        "posts": [b"\x01garbage", b"\x00\x00\x00\x03\x09", b"\x00\x00\x00\x7f\xff\x02", good],
        "follows": [b"", b"\x00\x00\x00\x05", b"not avro at all", good],
        "feedline.timeline-ops": [b"T\x01\x09garbage", b"\x00\x00\x00"],
    }
    n = 0
    for topic, values in bad.items():
        for i, v in enumerate(values):
            p.produce(topic, key=("%s-bad-%d" % (RUN, i)).encode(), value=v,
                      headers=[("test-run", RUN.encode())])
            n += 1

    # The garbage: not the wire format's magic byte (posts, follows) nor
    # the timeline operations' 'T'; different bytes on each topic.
    summary = ctx["summary"]
    celebs = {c["user_id"] for c in summary["celebrities"]}
    rnd = random.Random(SEED)
    author = rnd.choice([u for u in range(summary["user_base"], summary["user_base"] + USERS)
                         if u not in celebs])
    follower = 999999999  # in neither workload
    delivered = {}

    def on_delivery(err, msg):
        assert err is None, "produce to %s: %s" % (msg.topic(), err)
        delivered[(msg.topic(), msg.key().decode())] = (msg.partition(), msg.offset())

    big = {}
    for topic, first in (("posts", b"\x01"), ("follows", b"\x01"), ("feedline.timeline-ops", b"X")):
        part = workload.partition_of(author, _parts(topic))
        big[topic] = {"value": first + rnd.randbytes(BIG_VALUE - 1), "partition": part}
        p.produce(topic, partition=part, key=("%s-big-%s" % (RUN, topic)).encode(),
                  value=big[topic]["value"], headers=[("test-run", RUN.encode())],
                  on_delivery=on_delivery)
        n += 1
    assert p.flush(120) == 0
    # After the garbage, to the same partitions: a post of author, then a
    # follow of author by a new user (the backfill carries the post).
    t = summary["end_ms"] + 10
    post = {"type": "PostCreated", "event_id": RUN + "-after-big-post", "occurred_at": t,
            "post_id": t * 1000 + 3, "author_id": author, "created_at": t,
            "text": "after the garbage", "visibility": "PUBLIC", "reply_to": None}
    follow = {"type": "FollowAdded", "event_id": RUN + "-after-big-follow", "occurred_at": t + 1,
              "follower_id": follower, "followee_id": author}
    for topic, ev in (("posts", post), ("follows", follow)):
        p.produce(topic, partition=big[topic]["partition"], key=str(author).encode(),
                  value=feedline("encode", stdin=json.dumps(ev).encode(), binary=True).stdout,
                  on_delivery=on_delivery)
    assert p.flush(60) == 0
    for topic in big:
        big[topic]["offset"] = delivered[(topic, "%s-big-%s" % (RUN, topic))][1]
    for topic in ("posts", "follows"):
        part, off = delivered[(topic, str(author))]
        assert part == big[topic]["partition"] and off > big[topic]["offset"], (
            topic, part, off, big[topic]["partition"], big[topic]["offset"])
    ctx["bad"] = n
    ctx["big"] = big
    ctx["after_big"] = {"author": author, "follower": follower, "post_id": post["post_id"]}
    log("injected %d bad records (3 of %d bytes, in partition %d of the author %d)"
        % (n, BIG_VALUE, big["posts"]["partition"], author))


def wait_until(cond, timeout_s, what):
    wait_for(cond, timeout_s, what, step_s=1)


def dump_timelines():
    """Every user's timeline as the timelines changelog says."""
    return changelog_timelines(BIN)


def owned_partitions(proc):
    """The partitions of the timelines store proc holds (from its metrics)."""
    m = proc.metrics() or {}
    return sorted(int(re.search(r'partition="(\d+)"', k).group(1)) for k in m
                  if k.startswith("feedline_store_entries{") and 'store="timelines"' in k)


def dump_stores(proc, partitions):
    """Every user's timeline as the local RocksDB stores of proc (stopped)
    hold them, for the given partitions."""
    assert not proc.alive(), "%s-%s still runs" % (proc.name, proc.instance)
    base = os.path.join(STATE, "%s-%s" % (proc.name, proc.instance))
    dirs = [os.path.join(base, "timelines-%d" % p) for p in partitions]
    return store_timelines(BIN, dirs)


def same_timelines(a, b, what):
    """Asserts that two dumps hold the same timelines, user by user."""
    diff = sorted(u for u in set(a) | set(b) if a.get(u, []) != b.get(u, []))
    assert not diff, "%s: %d users differ, e.g. %s" % (what, len(diff), [
        (u, a.get(u, [])[:5], len(a.get(u, [])), b.get(u, [])[:5], len(b.get(u, [])))
        for u in diff[:3]])


def oracle():
    s = settings()
    sp = os.path.join(WORK, "settings.json")
    with open(sp, "w") as f:
        json.dump(s, f)
    tail_to_file(BIN, "posts", os.path.join(WORK, "posts.json"))
    tail_to_file(BIN, "follows", os.path.join(WORK, "follows.json"))
    t0 = time.time()
    subprocess.run([sys.executable, os.path.join(HERE, "oracle.py"), "--posts",
                    os.path.join(WORK, "posts.json"), "--follows", os.path.join(WORK, "follows.json"),
                    "--settings", sp, "--partitions", str(_parts("feedline.timeline-ops")),
                    "--out", os.path.join(WORK, "expected.json")], check=True, timeout=1200)
    log("oracle computed in %.1fs" % (time.time() - t0))
    with open(os.path.join(WORK, "expected.json")) as f:
        return json.load(f)


def compare(expected, got, cap, what="changelog"):
    """Exact equality for users whose timeline can never exceed the cap in
    any interleaving of the fan-out partitions; for the others (trimming
    order is a documented known limit) the result must be at most cap
    entries drawn from the untrimmed set (procs.timeline_mismatches)."""
    bad = timeline_mismatches(expected, got, cap)
    users = set(expected["users"]) | set(got)
    trimmed = sum(1 for u in users if expected["users"].get(u, {}).get("trimmed"))
    log("%s: compared %d users with the oracle: %d exact, %d trimmed, %d mismatches"
        % (what, len(users), len(users) - trimmed, trimmed, len(bad)))
    assert not bad, "%s: mismatches (first 5): %s" % (what, bad[:5])


def use_celebrity_settings(summary):
    path = procs.use_celebrity_settings(BIN, summary, WORK)
    got = settings()
    log("%d followers per celebrity: celebrity_threshold %d, hysteresis %d (topology %s)"
        % (summary["celebrity_followers"], got["celebrity_threshold"],
           got["celebrity_hysteresis"], path))


def failpoint_passes(gen):
    """The passes (commits of an incarnation) at which the failpoint crashes
    come: 3..10, fewer for a workload too small to give the fan-out 6
    batches of batch_max_records per pass, so that the three armed
    incarnations of the fan-out reach their pass with at most half its
    batches and the plain kills find work after them."""
    records = 0
    for topic in ("posts", "follows"):
        with open(os.path.join(gen, topic + ".jsonl")) as f:
            records += sum(1 for _ in f)
    hi = max(1, min(10, records // settings()["batch_max_records"] // 6))
    return min(3, hi), hi


def crash_plan(rnd, lo, hi):
    """How the incarnations of one processor end, in order: one at each
    failpoint (first, while the backlog lasts), then SIGKILLs at random
    moments, KILLS crashes in all."""
    names = list(FAILPOINTS)
    rnd.shuffle(names)
    plan = [("failpoint", name, rnd.randint(lo, hi)) for name in names]
    return plan + [("kill",)] * max(KILLS - len(plan), 0)


def check_failpoint_crash(proc, name, n):
    """proc, armed with FEEDLINE_FAILPOINT=name:n, has exited: by SIGKILL,
    at that failpoint."""
    rc = proc.wait(10)
    text = proc.log_since_start()
    what = "%s-%s armed with FEEDLINE_FAILPOINT=%s:%d" % (proc.name, proc.instance, name, n)
    assert "failpoint %s armed at pass %d (kill)" % (name, n) in text, "%s: not armed: %s" % (
        what, text[-2000:])
    assert rc == -signal.SIGKILL, "%s ended with status %s, not SIGKILL: %s" % (what, rc,
                                                                              text[-2000:])
    assert "failpoint %s: killing the process" % name in text, (
        "%s died by SIGKILL but not at its failpoint: %s" % (what, text[-2000:]))


def run_with_crashes(procs, rnd, lo, hi):
    """Runs procs, each through its crash_plan: an incarnation planned to
    end at a failpoint is started with FEEDLINE_FAILPOINT and must die
    there by itself; one planned to be killed gets SIGKILL at a random
    moment (and must be running then); each is restarted (without the
    variable) until its plan is done."""
    plans = {p.name: crash_plan(rnd, lo, hi) for p in procs}
    for p in procs:
        log("%s: %s" % (p.name, ", ".join("%s:%d" % s[1:] if s[0] == "failpoint" else s[0]
                                           for s in plans[p.name])))
    ends, armed_at = {}, {}

    def start_next(p):
        step = ends[p.name] = plans[p.name].pop(0) if plans[p.name] else None
        if step and step[0] == "failpoint":
            armed_at[p.name] = time.time()
            p.start(env={"FEEDLINE_FAILPOINT": "%s:%d" % step[1:]})
        else:
            p.start()

    for p in procs:
        start_next(p)
    while any(ends.values()):
        time.sleep(rnd.uniform(0.3, 2.5))
        for p in procs:
            step = ends[p.name]
            if not step or step[0] != "failpoint":
                continue
            if p.alive():
                assert time.time() - armed_at[p.name] < FAILPOINT_TIMEOUT_S, (
                    "%s-%s did not reach FEEDLINE_FAILPOINT=%s:%d in %ds; see %s"
                    % (p.name, p.instance, step[1], step[2], FAILPOINT_TIMEOUT_S, p.log_path))
                continue
            check_failpoint_crash(p, step[1], step[2])
            start_next(p)
        victim = rnd.choice(procs)
        if ends[victim.name] != ("kill",):
            continue
        assert victim.alive(), "%s-%s exited by itself with status %s; see %s" % (
            victim.name, victim.instance, victim.p.poll(), victim.log_path)
        victim.kill9()
        start_next(victim)


def check_run_with_kill9():
    gen = os.path.join(WORK, "workload")
    args = [sys.executable, os.path.join(HERE, "workload.py"), "--seed", str(SEED), "--users",
            str(USERS), "--posts", str(POSTS), "--run-id", RUN, "--start-ms", "now",
            "--out", gen]
    if CELEB_FOLLOWERS:
        args += ["--celebrity-followers", CELEB_FOLLOWERS]
    subprocess.run(args, check=True, timeout=600)
    with open(os.path.join(gen, "summary.json")) as f:
        ctx["summary"] = json.load(f)
    use_celebrity_settings(ctx["summary"])
    t0 = time.time()
    for topic in ("users", "follows", "posts"):
        produce_file(topic, os.path.join(gen, topic + ".jsonl"))
    inject_bad_records()
    log("workload produced in %.1fs" % (time.time() - t0))

    fan = Proc(BIN, "fanout", 0, STATE, None, WORK)
    tl = Proc(BIN, "timeline", 0, STATE, None, WORK)
    ctx.update(fan=fan, tl=tl)
    t0 = time.time()
    lo, hi = failpoint_passes(gen)
    run_with_crashes([fan, tl], random.Random(SEED), lo, hi)
    log("fanout and timeline crashed %d times each (%d at failpoints) in %.0fs"
        % (max(KILLS, len(FAILPOINTS)), len(FAILPOINTS), time.time() - t0))
    wait_idle([fan, tl])
    log("pipeline idle after %.0fs" % (time.time() - t0))
    expected = oracle()
    ctx["expected"] = expected
    cap = settings()["timeline_cap"]
    got = dump_timelines()
    compare(expected, got, cap)
    # The timeline processor's own stores, not only what it wrote to the
    # changelog: the oracle's timelines, and exactly the changelog's.
    parts = owned_partitions(tl)
    assert parts == list(range(_parts("feedline.timeline-ops"))), parts
    tl.stop()
    stores = dump_stores(tl, parts)
    compare(expected, stores, cap, "local stores")
    same_timelines(got, stores, "local stores and changelog")
    ctx.update(got=got, stores=stores)
    tl.start()


def check_celebrities():
    """The run crossed the celebrity threshold and dropped below it, as the
    workload planned, and the fan-out's last word on each author in
    feedline.celebrities is the oracle's."""
    exp, summary = ctx["expected"], ctx["summary"]
    stats = exp["stats"]
    on, off = stats.get("celebrity on", 0), stats.get("celebrity off", 0)
    log("oracle: %d authors became celebrities, %d stopped being one" % (on, off))
    assert on >= 1 and off >= 1, "no celebrity change in both directions: %s" % stats
    planned = sorted(c["user_id"] for c in summary["celebrities"] if c["scenario"] != "drops")
    assert exp["celebrities"] == planned, (exp["celebrities"], planned)
    last = {}
    out = feedline("tail", "feedline.celebrities", "--from-beginning", "--exit-at-end").stdout
    for line in out.splitlines():
        r = json.loads(line)
        assert isinstance(r.get("value"), dict), r
        last[r["value"]["author_id"]] = r["value"]["celebrity"]
    got = sorted(a for a, c in last.items() if c)
    assert got == exp["celebrities"], "feedline.celebrities says %s, the oracle %s" % (
        got, exp["celebrities"])
    assert not all(last.values()), "no author dropped below the threshold: %s" % last


def read_topic(topic, on_record, timeout_s=600):
    """Calls on_record(msg) for every committed record of topic, every
    partition from the beginning to its end (read-committed)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": KAFKA, "group.id": RUN + "-read",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True})
    parts = _parts(topic)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
    at_end, deadline = set(), time.time() + timeout_s
    try:
        while len(at_end) < parts:
            assert time.time() < deadline, "%s not read to its end in %ds" % (topic, timeout_s)
            for m in c.consume(10000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    raise AssertionError("reading %s: %s" % (topic, m.error()))
                on_record(m)
    finally:
        c.close()


def check_dead_letters():
    out = feedline("tail", "feedline.dlq", "--from-beginning", "--exit-at-end").stdout
    recs = [json.loads(l) for l in out.splitlines()]
    mine = [r for r in recs if r.get("headers", {}).get("test-run") == RUN]
    assert len(mine) == ctx["bad"], "dead letters %d of %d" % (len(mine), ctx["bad"])
    for r in mine:
        h = r["headers"]
        for k in ("feedline.dlq.topic", "feedline.dlq.partition", "feedline.dlq.offset",
                  "feedline.dlq.stage", "feedline.dlq.error"):
            assert k in h, (k, h)
        assert h["feedline.dlq.topic"] in ("posts", "follows", "feedline.timeline-ops"), h
    invalid = [r for r in recs if r.get("headers", {}).get("feedline.dlq.stage") == "fanout"
               and "themselves" in r["headers"].get("feedline.dlq.error", "")]
    assert invalid, "no self-follow was dead-lettered"

    # The garbage values: dead-lettered once each, with every byte and
    # their context.
    big, found = ctx["big"], {}

    def on_record(m):
        k = (m.key() or b"").decode("utf-8", "replace")
        if k.startswith(RUN + "-big-"):
            found.setdefault(k[len(RUN + "-big-"):], []).append(m)

    read_topic("feedline.dlq", on_record)
    stage = {"posts": "decode", "follows": "decode", "feedline.timeline-ops": "timeline"}
    for topic, b in big.items():
        got = found.get(topic, [])
        assert len(got) == 1, "%d dead letters for the garbage of %s" % (len(got), topic)
        m = got[0]
        h = {k: v.decode() if v is not None else None for k, v in m.headers() or ()}
        assert "feedline.dlq.value.dropped" not in h, (topic, h)
        v = m.value() or b""
        assert v == b["value"], "dead letter of the garbage on %s: %d bytes, %s the original's %d" \
            % (topic, len(v), "a prefix of" if b["value"].startswith(v) else "not", len(b["value"]))
        want = {"test-run": RUN, "feedline.dlq.topic": topic,
                "feedline.dlq.partition": str(b["partition"]),
                "feedline.dlq.offset": str(b["offset"]), "feedline.dlq.stage": stage[topic]}
        assert all(h.get(k) == w for k, w in want.items()), (topic, want, h)
        assert h.get("feedline.dlq.error.class") and h.get("feedline.dlq.error"), (topic, h)
    # Their partitions went on: the post after the garbage is in its
    # author's timeline (posts, and feedline.timeline-ops: the fan-out wrote
    # it there after the garbage), and the follow after it backfilled the
    # post into the new follower's (follows).
    a = ctx["after_big"]
    for user in (a["author"], a["follower"]):
        if "got" in ctx:
            ids = ctx["got"].get(str(user), [])
        else:  # the kill phase failed before its changelog dump
            o = json.loads(feedline("timeline", str(user)).stdout)
            ids = [e["post_id"] for e in o["timeline"]]
        assert a["post_id"] in ids, "post %d not in user %d's timeline %s" % (
            a["post_id"], user, ids[:10])
    log("%d bytes dead-lettered whole from posts, follows and feedline.timeline-ops; "
        "their partitions went on" % BIG_VALUE)


def check_outputs_applied_once():
    """No output of the fan-out was committed twice: every record of its
    output topics names its input record (header feedline.source), and no
    two committed records share (source, partition, value). Every
    operation is idempotent at the timeline, so the timelines alone would
    not show a batch applied twice."""
    seen, dups, unnamed, n = {}, [], [], [0]

    def on_record(m):
        h = dict(m.headers() or ())
        if h.get("test-run") == RUN.encode():
            return  # injected by this test
        n[0] += 1
        src = h.get("feedline.source")
        if not src or not re.match(rb"(posts|follows)/\d+/\d+$", src):
            unnamed.append((m.topic(), m.partition(), m.offset(), src))
            return
        key = (m.topic(), src, m.partition(),
               hashlib.blake2b(m.value() or b"", digest_size=16).digest())
        if key in seen:
            dups.append((m.topic(), src.decode(), m.partition(), seen[key], m.offset()))
        else:
            seen[key] = m.offset()

    for topic in ("feedline.timeline-ops", "feedline.celebrities"):
        read_topic(topic, on_record)
    log("%d committed fan-out outputs, %d from the same input record with the same value and "
        "partition as an earlier one" % (n[0], len(dups)))
    assert not unnamed, "%d records without a feedline.source, e.g. %s" % (len(unnamed),
                                                                          unnamed[:3])
    assert not dups, "outputs committed twice (topic, source, partition, offsets): %s" % dups[:5]


def check_restore_from_changelog():
    """The timeline processor's local state is deleted and restored from
    the changelog; the restored RocksDB stores must hold the oracle's
    timelines, and exactly those the stores held before (restore is
    exact: the store equals the one that wrote the changelog)."""
    tl = ctx["tl"]
    tl.stop()
    shutil.rmtree(os.path.join(STATE, "timeline-0"))
    t0 = time.time()
    tl.start()
    wait_idle([ctx["fan"], tl])
    m = tl.metrics()
    restored = sum(v for k, v in m.items() if k.startswith("feedline_restored_records_total"))
    log("timeline restored %d changelog records in %.1fs" % (restored, time.time() - t0))
    assert restored > 0
    parts = owned_partitions(tl)
    assert parts == list(range(_parts("feedline.timeline-ops"))), parts
    tl.stop()
    stores = dump_stores(tl, parts)
    compare(ctx["expected"], stores, settings()["timeline_cap"], "restored stores")
    same_timelines(ctx["stores"], stores, "restored stores and the stores before")
    # A copy for the fail-back of the scale-out phase: stores behind their
    # changelog.
    shutil.copytree(os.path.join(STATE, "timeline-0"), os.path.join(WORK, "timeline-0-copy"))
    tl.start()


def after_first_workload():
    """A start time past every event of the first workload: post ids derive
    from created_at, and they must stay unique (the contract)."""
    last = 0
    for topic in ("follows", "posts", "users"):
        with open(os.path.join(WORK, "workload", topic + ".jsonl")) as f:
            for line in f:
                last = max(last, json.loads(line)["occurred_at"])
    return max(last + 1000, int(time.time() * 1000))


def check_scale_out_and_failover():
    """A second timeline instance takes half the partitions (restoring
    them), more input goes through both, instance 0 is killed and instance
    1 takes every partition over; then instance 0 comes back with stores
    behind their changelog and takes its half back. The changelog and
    both instances' stores must hold the oracle's timelines."""
    fan, tl0 = ctx["fan"], ctx["tl"]
    tl1 = Proc(BIN, "timeline", 1, STATE, None, WORK)
    ctx["tl1"] = tl1
    tl1.start()

    def owned(proc):
        m = proc.metrics() or {}
        return {k for k in m if k.startswith("feedline_store_entries")}

    # The group rebalances and the two instances split the partitions; the
    # new one restores its share from the changelog first.
    wait_until(lambda: owned(tl0) and owned(tl1), 300, "the two instances to split")
    p0, p1 = owned(tl0), owned(tl1)
    mine0 = owned_partitions(tl0)
    log("instance 0 owns %d store partitions, instance 1 owns %d" % (len(p0), len(p1)))
    assert not (p0 & p1), (p0, p1)
    # More input while both run, then instance 0 dies; instance 1 takes over.
    gen = os.path.join(WORK, "workload2")
    args = [sys.executable, os.path.join(HERE, "workload.py"), "--seed", str(SEED + 1),
            "--users", str(max(USERS // 4, 1000)), "--posts", str(max(POSTS // 10, 1000)),
            "--run-id", RUN + "-b", "--celebrities", "0", "--start-ms", str(after_first_workload()),
            "--out", gen]
    subprocess.run(args, check=True, timeout=600)
    # The fan-out merges its inputs by occurred_at only over records already
    # in Kafka: stop it while both inputs are written, so that its order is
    # the oracle's (a live stream gets the bounded wait instead).
    fan.stop()
    for topic in ("follows", "posts"):
        produce_file(topic, os.path.join(gen, topic + ".jsonl"))
    fan.start()
    time.sleep(3)
    tl0.kill9()
    # The session times out, the group reassigns, instance 1 catches up the
    # stores it takes over from the changelog.
    parts = _parts("feedline.timeline-ops")
    wait_until(lambda: len(owned(tl1)) == parts, 300, "instance 1 to own every partition")
    log("after fail-over instance 1 owns %d store partitions" % len(owned(tl1)))
    wait_idle([fan, tl1])
    expected = oracle()
    # Instance 0 died inside a transaction: read-committed readers see past
    # it once the broker aborts it (transaction timeout), so retry a while.
    cap = settings()["timeline_cap"]
    for attempt in range(12):
        try:
            got = dump_timelines()
            compare(expected, got, cap)
            break
        except AssertionError:
            if attempt == 11:
                raise
            time.sleep(5)
    ctx.update(tl=tl1, tl0=tl0)
    # Fail-back: instance 0 comes back and takes its partitions back, with
    # its stores of them as they were before this phase (the copy taken
    # after the restore): behind their changelog by everything both
    # instances wrote since, tombstones included. It must replay only that
    # part (not in bulk mode).
    for p in mine0:
        d = os.path.join(STATE, "timeline-0", "timelines-%d" % p)
        shutil.rmtree(d)
        shutil.copytree(os.path.join(WORK, "timeline-0-copy", "timelines-%d" % p), d)
    tl0.start()
    wait_until(lambda: owned_partitions(tl0) == mine0
               and len(owned_partitions(tl1)) == parts - len(mine0), 300,
               "instance 0 to take partitions %s back" % mine0)
    wait_idle([fan, tl0, tl1])
    text = tl0.log_since_start()
    tails = {int(p) for p, lo, hi in re.findall(
        r"restoring timelines \[(\d+)\] from \S+ offset (\d+) to (\d+)", text)
        if 0 < int(lo) < int(hi) - 1}
    tails &= {int(p) for p, n in re.findall(r"restored timelines \[(\d+)\]: (\d+) records", text)
              if int(n) > 0}
    log("instance 0 took partitions %s back, replayed the newer part of the changelog of %s"
        % (mine0, sorted(tails)))
    assert tails, "instance 0 replayed no changelog tail: %s" % text[-3000:]
    # Both instances' stores, each for the partitions it owns: the oracle's
    # timelines, and exactly the changelog's.
    owners = [(tl0, owned_partitions(tl0)), (tl1, owned_partitions(tl1))]
    assert sorted(p for _, ps in owners for p in ps) == list(range(parts)), owners
    stores = {}
    for proc, ps in owners:
        proc.stop()
        stores.update(dump_stores(proc, ps))
    compare(expected, stores, cap, "both instances' stores")
    same_timelines(got, stores, "both instances' stores and the changelog")


def main():
    s = Suite()
    # The oracle reads the input topics from the beginning: start them empty
    # even on a stack an earlier run (or a benchmark) left data in.
    reset_topics(KAFKA, os.path.join(BIN, "feedline"))
    # Failpoints are armed per incarnation, never inherited.
    os.environ.pop("FEEDLINE_FAILPOINT", None)
    log("e2e: %d users, %d posts, seed %d, %d crashes per processor (%d at failpoints); work in %s"
        % (USERS, POSTS, SEED, max(KILLS, len(FAILPOINTS)), len(FAILPOINTS), WORK))
    # These only read what the earlier phases left: they run after a failure too.
    always = (check_dead_letters, check_outputs_applied_once)
    try:
        for fn in (check_run_with_kill9, check_celebrities, check_dead_letters,
                   check_restore_from_changelog, check_scale_out_and_failover,
                   check_outputs_applied_once):
            if s.failed and (fn not in always or "fan" not in ctx):
                print("skip %s: an earlier phase failed" % fn.__name__)
                s.failed += 1
                continue
            s.run(fn)
    finally:
        for p in ctx.values():
            if isinstance(p, Proc):
                p.stop()
        for name in os.listdir(WORK):
            if name.endswith(".log"):
                with open(os.path.join(WORK, name)) as f:
                    errors = [l for l in f if '"level":"error"' in l]
                if errors:
                    print("%s: %d error lines, last: %s" % (name, len(errors), errors[-1].strip()))
        if not s.failed and not os.environ.get("E2E_KEEP"):
            shutil.rmtree(WORK, ignore_errors=True)
    s.finish()


if __name__ == "__main__":
    main()
