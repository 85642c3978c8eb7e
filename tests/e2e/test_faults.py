#!/usr/bin/env python3
"""Fault tests on the real stack: the runtime's guarantees where they are
hardest to keep, each ending with every timeline equal to the oracle's
(tests/e2e/oracle.py), read from the timelines changelog and from the
stopped processors' own stores (`feedline timeline --all --store`).

1. A zombie fan-out: two feedline-fanout instances share the partitions;
   one stops itself (SIGSTOP) in the middle of a batch, its records in
   the open transaction and its input offsets not yet sent. Once its
   session timed out and the other instance took every partition over
   and caught up, the zombie is continued: the group must refuse its
   batch (KIP-447), and no batch may reach feedline.timeline-ops twice.
2. Restores the stores' own bookkeeping cannot make safe:
   a) the topics are deleted and created again under kept local state,
      and a different workload is produced: stores ahead of their new
      changelogs, and stores whose input offsets lie past the new inputs'
      ends, are wiped and rebuilt (with the reason in the wipe metric);
      then current stores whose consumer groups were deleted (their
      offsets no resume point: wiped, their inputs reprocessed);
   b) a store offline while another instance deleted entries and the
      log cleaner removed the tombstones from the changelog: the store
      must be wiped (tombstones_expired), or the deleted entries would
      come back.
3. A skewed replay: every follow is newer than every post, both already
   in Kafka, so each fan-out task drains posts while its follows pile up.
   With a small buffered_records_per_partition the fan-out's peak
   resident memory stays under a bound; the same run without the bound
   (a control run) must go past it, or the check could not fail.
4. Two processes started with the same --instance: the newer one fences
   the older (static membership, transactional id), which must stop
   rather than linger as a process that believes it owns partitions.
5. A transaction Kafka timed out: the fan-out's main thread stalls in an
   open transaction past transaction.timeout.ms while its consumer keeps
   heartbeating (what an overloaded machine does); the coordinator aborts
   the transaction and bumps the producer's epoch. The instance must
   start a new producer and redo the batch: still running, no batch
   twice, every timeline equal to the oracle.

Environment (the CI form takes about 4 minutes on 2 cores):
  E2E_FAULT_USERS, E2E_FAULT_POSTS  workload of test 1 (3000, 20000)
  E2E_FAULT_SEED                    seed of every generated workload (7)
  E2E_FAULT_PASS                    the zombie stops in its Nth batch (2)
  E2E_FAULT_SKEW_FOLLOWS, E2E_FAULT_SKEW_POSTS  test 3 (600000, 60000)
  E2E_FAULT_SKEW_BOUND              its buffered_records_per_partition (500)
  E2E_FAULT_ONLY                    comma-separated names of checks to run
  E2E_KEEP                          keep the work folder (logs, stores)
"""
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
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

from itlib import BIN, KAFKA, RUN, Suite  # noqa: E402
import procs  # noqa: E402
from procs import FaultProc, total, wait_for, wait_idle  # noqa: E402

USERS = int(os.environ.get("E2E_FAULT_USERS", "3000"))
POSTS = int(os.environ.get("E2E_FAULT_POSTS", "20000"))
SEED = int(os.environ.get("E2E_FAULT_SEED", "7"))
ZOMBIE_PASS = int(os.environ.get("E2E_FAULT_PASS", "2"))
SKEW_FOLLOWS = int(os.environ.get("E2E_FAULT_SKEW_FOLLOWS", "600000"))
SKEW_POSTS = int(os.environ.get("E2E_FAULT_SKEW_POSTS", "60000"))
SKEW_BOUND = int(os.environ.get("E2E_FAULT_SKEW_BOUND", "500"))
ONLY = [x for x in os.environ.get("E2E_FAULT_ONLY", "").split(",") if x]

FEEDLINE = os.path.join(BIN, "feedline")
TOPOLOGY = os.environ["FEEDLINE_TOPOLOGY"]
WORK = tempfile.mkdtemp(prefix="feedline-faults-")
PARTS = procs.topic_partitions(BIN, "posts")
USER_BASE = 1_000_000
# Every Proc any check started, stopped at the end whatever happened.
STARTED = []


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def proc(name, instance, state, env=None):
    p = FaultProc(BIN, name, instance, state, None, WORK, env=env)
    STARTED.append(p)
    return p


def stop_all(ps):
    for p in ps:
        p.stop()


def metric(p, name, **labels):
    """Sum of a processor's metric over the series whose labels include
    the given ones; None when it does not answer."""
    m = p.metrics()
    if m is None:
        return None
    want = ['%s="%s"' % kv for kv in labels.items()]
    return sum(v for k, v in m.items()
               if re.match(name + r"(\{|$)", k) and all(w in k for w in want))


def fresh_topics():
    """Empty topics with their topology configs, every partition led, and
    processor groups without members: an instance stopped by the check
    before stays a (static) member for its session timeout and would be
    given partitions nobody processes."""
    procs.reset_topics(KAFKA, FEEDLINE)
    procs.wait_topics_ready(KAFKA, FEEDLINE)
    for g in ("feedline-fanout", "feedline-timeline"):
        wait_for(lambda: not procs.group_members(KAFKA, g), 60, "group %s to have no member" % g)


def settle(ps, timeout_s=300):
    """Waits until the instances of each processor in ps together own
    every input partition, then until they are idle (wait_idle alone
    would also return while a departed member still held partitions)."""
    want = {"fanout": 2 * PARTS, "timeline": PARTS}

    def owned():
        have = Counter()
        for p in ps:
            if not p.alive():
                raise AssertionError("%s-%s exited; see %s" % (p.name, p.instance, p.log_path))
            have[p.name] += metric(p, "feedline_assigned_partitions") or 0
        return all(have[n] == want[n] for n in have)

    wait_for(owned, timeout_s, "%s to own every partition" % ", ".join(
        "%s-%s" % (p.name, p.instance) for p in ps))
    wait_idle(ps, timeout_s=timeout_s)


def folder(name):
    path = os.path.join(WORK, name)
    os.makedirs(path, exist_ok=True)
    return path


def workload(name, seed, users, posts, start_ms, *extra):
    """tests/e2e/workload.py's seeded workload (no celebrities: their
    threshold would need a topology copy) into WORK/name."""
    out = os.path.join(WORK, name)
    subprocess.run([sys.executable, os.path.join(HERE, "workload.py"), "--seed", str(seed),
                    "--users", str(users), "--posts", str(posts), "--celebrities", "0",
                    "--run-id", "%s-%s" % (RUN, name), "--start-ms", str(start_ms), "--out", out,
                    *extra], check=True, timeout=600, capture_output=True)
    return out


def produce(gen_dir, topics=("follows", "posts")):
    for t in topics:
        procs.produce_jsonl(BIN, t, os.path.join(gen_dir, t + ".jsonl"))


class Events:
    """Hand-shaped workloads: events with unique ids and strictly
    increasing occurred_at, in the JSON lines `feedline produce` reads.
    Post ids follow workload.py's rule (created_at * 1000 + 1)."""

    def __init__(self, name, start_ms):
        self.name, self.t, self.n = name, start_ms, 0
        self.out = {}

    def _ev(self, topic, typ, fields):
        self.n += 1
        self.t += 1
        d = {"type": typ, "event_id": "%s-%s-%d" % (RUN, self.name, self.n),
             "occurred_at": self.t}
        d.update(fields)
        self.out.setdefault(topic, []).append(d)
        return d

    def post(self, author, text="hello", vis="PUBLIC"):
        pid = (self.t + 1) * 1000 + 1
        return self._ev("posts", "PostCreated", {
            "post_id": pid, "author_id": author, "created_at": self.t + 1, "text": text,
            "visibility": vis, "reply_to": None})

    def delete(self, post_id, author):
        return self._ev("posts", "PostDeleted", {"post_id": post_id, "author_id": author})

    def follow(self, follower, followee):
        return self._ev("follows", "FollowAdded", {"follower_id": follower, "followee_id": followee})

    def unfollow(self, follower, followee):
        return self._ev("follows", "FollowRemoved",
                        {"follower_id": follower, "followee_id": followee})

    def write(self, name=None):
        """Writes the events so far to WORK/name/<topic>.jsonl and forgets
        them; returns the folder."""
        out = folder(name or self.name)
        for topic, evs in self.out.items():
            with open(os.path.join(out, topic + ".jsonl"), "w") as f:
                for d in evs:
                    f.write(json.dumps(d, separators=(",", ":")))
                    f.write("\n")
        self.out = {}
        return out


def last_occurred_at(*gen_dirs):
    last = 0
    for d in gen_dirs:
        for name in os.listdir(d):
            if name.endswith(".jsonl"):
                with open(os.path.join(d, name)) as f:
                    for line in f:
                        last = max(last, json.loads(line)["occurred_at"])
    return last


def timeline_dirs(state, instance):
    return [os.path.join(state, "timeline-%d" % instance, "timelines-%d" % p)
            for p in range(PARTS)]


def check_timelines(what, store_dirs=None, expected=None):
    """Timelines from the changelog, and from store_dirs when given (their
    processor stopped), against the oracle over the input topics now.
    Returns the oracle's document."""
    cap = procs.topology_settings(BIN)["timeline_cap"]
    t0 = time.time()
    if expected is None:
        expected = procs.expected_timelines(BIN, folder("oracle"))
    bad = procs.timeline_mismatches(expected, procs.changelog_timelines(BIN), cap)
    assert not bad, "%s: %d users differ from the oracle in the changelog (first 3): %s" % (
        what, len(bad), bad[:3])
    n = len(expected["users"])
    if store_dirs:
        bad = procs.timeline_mismatches(expected, procs.store_timelines(BIN, store_dirs), cap)
        assert not bad, "%s: %d users differ from the oracle in the stores (first 3): %s" % (
            what, len(bad), bad[:3])
    log("%s: %d users' timelines equal the oracle's (changelog%s, %.1fs)" % (
        what, n, " and stores" if store_dirs else "", time.time() - t0))
    return expected


# ---- 1. the zombie fan-out ---------------------------------------------------------------------


def timeline_ops_duplicates():
    """(feedline.source, partition, value) of feedline.timeline-ops records
    (committed ones: `feedline tail` reads committed) that occur more than
    once, and the number of records read. Every forwarded record names its
    input record, and one input record gives at most one record per
    destination partition: a repeat is a batch applied twice."""
    path = os.path.join(folder("oracle"), "timeline-ops.tail")
    procs.tail_to_file(BIN, "feedline.timeline-ops", path)
    seen = Counter()
    n = 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            src = (r.get("headers") or {}).get("feedline.source")
            assert src, "a timeline operation without its source: %s" % line[:300]
            seen[(src, r["partition"], json.dumps(r.get("value"), sort_keys=True))] += 1
            n += 1
    return [k for k, c in seen.items() if c > 1], n


def check_zombie_fanout_is_fenced():
    fresh_topics()
    state = folder("zombie/state")
    a = proc("fanout", 0, state)
    b = proc("fanout", 1, state)
    tl = proc("timeline", 0, state)
    # Both instances join the group on empty topics and split the
    # partitions; with static membership, stopped and started again within
    # the session timeout, they take the same halves back at once. The
    # workload is produced while they are stopped: the merge's order is the
    # oracle's only over records already in Kafka.
    a.start()
    b.start()
    tl.start()

    def split():
        na, nb = metric(a, "feedline_assigned_partitions"), metric(b, "feedline_assigned_partitions")
        return na and nb and na + nb == 2 * PARTS

    wait_for(split, 90, "the two fan-out instances to split the partitions")
    a.stop()
    b.stop()
    gen = workload("zombie", SEED, USERS, POSTS, int(time.time() * 1000))
    produce(gen)
    a.start(env={"FEEDLINE_FAILPOINT": "before-offsets:%d:stop" % ZOMBIE_PASS})
    b.start()
    wait_for(lambda: a.state() == "T" or not a.alive(), 120,
             "instance 0 to stop itself at its failpoint", 0.1)
    stopped_at = time.time()
    assert a.alive(), "instance 0 exited instead of stopping; see %s" % a.log_path
    # Shared at that moment: the stopped instance's last assignment (its
    # log) was a part of the partitions, and the other one held the rest.
    msgs = [l.get("msg", "") for l in a.log_lines()]
    assert any(m.startswith("failpoint before-offsets") for m in msgs), msgs[-5:]
    cut = max(i for i, m in enumerate(msgs) if m.startswith("failpoint before-offsets"))
    assigned = [int(m.split()[1]) for m in msgs[:cut] if re.match(r"assigned \d+ partitions", m)]
    nb = metric(b, "feedline_assigned_partitions")
    log("instance 0 stopped in its batch %d holding %s of %d input partitions; instance 1 "
        "holds %s" % (ZOMBIE_PASS, assigned[-1] if assigned else "?", 2 * PARTS, nb))
    assert assigned and 0 < assigned[-1] < 2 * PARTS and nb, \
        "the instances did not share the partitions when 0 stopped"

    def took_over():
        m = b.metrics()
        if not m or total(m, "feedline_assigned_partitions") != 2 * PARTS \
                or total(m, "feedline_restoring_tasks"):
            return False
        lags = [v for k, v in m.items() if k.startswith("feedline_consumer_lag")]
        return len(lags) >= 2 * PARTS and sum(lags) == 0

    # The session times out (10 s), the group gives instance 1 everything,
    # and it redoes the stopped batch from the group's committed offsets.
    wait_for(took_over, 120, "instance 1 to own every partition and catch up", 0.2)
    log("instance 1 owns all %d input partitions and caught up %.1fs after the stop; "
        "continuing instance 0" % (2 * PARTS, time.time() - stopped_at))
    a.signal(signal.SIGCONT)

    def refused():
        fenced = metric(a, "feedline_fenced_batches_total") if a.alive() else None
        lines = [l.get("msg", "") for l in a.log_lines()[cut + 1:]
                 if re.search("the group has moved on|[Ff]enced", l.get("msg", ""))]
        if fenced or lines or not a.alive():
            return fenced, lines, a.p.poll()
        return None

    fenced, lines, rc = wait_for(refused, 90, "instance 0's batch to be refused")
    log("instance 0's batch was refused: fenced metric %s, exit status %s, log: %s" % (
        fenced, rc, lines[0][:240] if lines else "-"))
    assert fenced or lines, "instance 0 exited (status %s) without a fencing error" % rc
    live = [p for p in (a, b, tl) if p.alive()]
    settle(live)
    dups, n = timeline_ops_duplicates()
    assert not dups, "%d timeline operations reached feedline.timeline-ops twice, e.g. %s" % (
        len(dups), dups[:3])
    log("%d timeline operations, none twice" % n)
    expected = check_timelines("after the zombie")
    stop_all((a, b, tl))
    check_timelines("after the zombie, stopped", timeline_dirs(state, 0), expected)


# ---- 2a. topics recreated under kept local state -------------------------------------------------


WIPE_REASONS = ("ahead_of_changelog", "offsets_past_input_end", "tombstones_expired",
                "no_committed_offsets")


def wipes(p):
    return {r: metric(p, "feedline_store_wipes_total", reason=r) for r in WIPE_REASONS}


def only_wipes(reason):
    return {r: PARTS if r == reason else 0 for r in WIPE_REASONS}


def run_pair(state, what):
    """Runs fanout-0 and timeline-0 on state until they settle; returns
    each one's wipes."""
    fan, tl = proc("fanout", 0, state), proc("timeline", 0, state)
    fan.start()
    tl.start()
    settle([fan, tl])
    got = {p.name: wipes(p) for p in (fan, tl)}
    log("%s: wipes %s" % (what, got))
    stop_all((fan, tl))
    return got


def delete_groups(*groups):
    """Deletes the consumer groups (their committed offsets with them) with
    Kafka's own tool, once no member is left in them."""
    for g in groups:
        wait_for(lambda: not procs.group_members(KAFKA, g), 60, "group %s to have no member" % g)
    root = os.path.dirname(os.path.dirname(HERE))
    cmd = ('. "$1/ops/lib/common.sh" && shift && exec java -cp "$FL_KAFKA_LIBS/*" '
           'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand '
           '--bootstrap-server "$FEEDLINE_KAFKA" --delete "$@"')
    args = [a for g in groups for a in ("--group", g)]
    r = subprocess.run(["bash", "-c", cmd, "_", root] + args, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "successful" in r.stdout, (r.returncode, r.stdout, r.stderr)


def check_recreated_topics_wipe_stale_stores():
    """First workload: posts only (each post one timeline operation and
    about one changelog record per store). Second: many follows, then few
    posts: fewer input records per partition than the first, many more
    changelog records. Stores of the first, opened on the second's topics,
    are ahead of the empty new changelogs (i), or, once the new changelogs
    are written, behind them with input offsets past the new inputs' ends
    (ii). Either way a kept store would mix the two workloads."""
    rnd = random.Random(SEED)
    users = [USER_BASE + i for i in range(USERS)]
    fresh_topics()
    ev = Events("recreate-1", int(time.time() * 1000))
    for _ in range(POSTS * 4 // 5):
        ev.post(rnd.choice(users), vis=rnd.choice(("PUBLIC", "PUBLIC", "FOLLOWERS", "PRIVATE")))
    first = ev.write()
    produce(first, ("posts",))
    state, kept = folder("recreate/state"), os.path.join(WORK, "recreate/kept")
    run_pair(state, "first workload")
    shutil.copytree(state, kept)  # the same stores again for (ii)
    log("first workload (%d posts) processed; its stores kept" % (POSTS * 4 // 5))

    fresh_topics()
    ev = Events("recreate-2", last_occurred_at(first) + 1000)
    edges = set()
    while len(edges) < USERS * 27:
        u, v = rnd.choice(users), rnd.choice(users)
        if u != v and (u, v) not in edges:
            edges.add((u, v))
            ev.follow(u, v)
    for _ in range(POSTS // 10):
        ev.post(rnd.choice(users))
    second = ev.write()
    produce(second)
    # (i) The changelogs are empty, every kept store is ahead of its own.
    got = run_pair(state, "stores of the first workload on the recreated topics")
    expected = check_timelines("recreated topics, stores ahead", timeline_dirs(state, 0))
    for name, w in got.items():
        assert w == only_wipes("ahead_of_changelog"), (name, w)
    # (ii) The same kept stores again, now that the changelogs hold the
    # second workload's state: behind their changelogs, their offsets past
    # the inputs' ends.
    got = run_pair(kept, "stores of the first workload on the second's changelogs")
    check_timelines("recreated topics, offsets past the inputs' ends", timeline_dirs(kept, 0),
                    expected)
    for name, w in got.items():
        assert w == only_wipes("offsets_past_input_end"), (name, w)
    # (iii) Current stores whose group lost its offsets (deleted here; the
    # same as offsets expired, or topics recreated and grown past the
    # stores' offsets): the store's offsets are no resume point, so it is
    # wiped, rebuilt and reprocesses its inputs from the beginning.
    delete_groups("feedline-fanout", "feedline-timeline")
    got = run_pair(kept, "current stores after their groups were deleted")
    check_timelines("groups deleted under current stores", timeline_dirs(kept, 0), expected)
    for name, w in got.items():
        assert w == only_wipes("no_committed_offsets"), (name, w)


# ---- 2b. tombstones compacted away while a store was offline ------------------------------------

# The timelines changelog, compacting (and dropping tombstones) as fast as
# the broker lets it: segments roll every second, any dirty share is worth
# cleaning, a tombstone lives DELETE_RETENTION_MS after its first cleaning.
DELETE_RETENTION_MS = 3000
FAST_COMPACTION = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                   "segment.ms": "1000", "delete.retention.ms": str(DELETE_RETENTION_MS)}


def alter_topic_config(topic, cfg):
    """Sets topic's configs to cfg (AlterConfigs replaces every dynamic
    config of the topic, hence the full set) and waits until the broker
    reports them."""
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": KAFKA, "log_level": 4})
    res = ConfigResource("topic", topic, set_config=cfg)
    for fut in admin.alter_configs([res]).values():
        fut.result()

    def applied():
        got = list(admin.describe_configs([ConfigResource("topic", topic)]).values())[0].result()
        return all(got[k].value == v for k, v in cfg.items())

    wait_for(applied, 30, "the configs of " + topic)


def changelog_tombstones(keys):
    """Tombstones of the timelines changelog whose (user, post) is in keys."""
    path = os.path.join(folder("oracle"), "timelines-changelog.tail")
    procs.tail_to_file(BIN, "feedline.timelines-changelog", path)
    n = 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            k = r.get("key") or {}
            if r.get("value") is None and k.get("family") == "timeline" and \
                    (k["user_id"], k["post_id"]) in keys:
                n += 1
    return n


def live_graph(gen_dir):
    """Edges and posts (id -> author) a workload leaves live, in the order
    of its events."""
    edges, posts = set(), {}
    evs = []
    for t in ("follows", "posts"):
        with open(os.path.join(gen_dir, t + ".jsonl")) as f:
            evs += [json.loads(line) for line in f]
    for e in sorted(evs, key=lambda e: e["occurred_at"]):
        if e["type"] == "FollowAdded" and e["follower_id"] != e["followee_id"]:
            edges.add((e["follower_id"], e["followee_id"]))
        elif e["type"] == "FollowRemoved":
            edges.discard((e["follower_id"], e["followee_id"]))
        elif e["type"] == "PostCreated" and e["post_id"] not in posts:
            posts[e["post_id"]] = e["author_id"]
        elif e["type"] == "PostDeleted":
            posts.pop(e["post_id"], None)
    return sorted(edges), posts


def check_expired_tombstones_wipe_offline_store():
    rnd = random.Random(SEED + 2)
    fresh_topics()
    alter_topic_config("feedline.timelines-changelog", FAST_COMPACTION)
    state0, state1 = folder("tombstones/state0"), folder("tombstones/state1")
    users, posts = max(USERS * 2 // 3, 1000), max(POSTS // 3, 2000)
    first = workload("tombstones-1", SEED + 2, users, posts, int(time.time() * 1000))
    produce(first)
    fan, tl0, tl1 = proc("fanout", 0, state0), proc("timeline", 0, state0), \
        proc("timeline", 1, state1)
    fan.start()
    tl0.start()
    settle([fan, tl0])
    stop_all((fan, tl0))
    held = procs.store_timelines(BIN, timeline_dirs(state0, 0))
    keys0 = {(int(u), p) for u, ps in held.items() for p in ps}
    log("timeline instance 0 stopped holding %d entries" % len(keys0))
    # Instance 1 deletes entries instance 0 holds: deleted posts, unfollows.
    edges, live = live_graph(first)
    ev = Events("tombstones-2", last_occurred_at(first) + 1000)
    for pid in rnd.sample(sorted(live), len(live) // 4):
        ev.delete(pid, live[pid])
    for u, v in rnd.sample(edges, len(edges) // 5):
        ev.unfollow(u, v)
    second = ev.write()
    produce(second)
    fan.start()
    tl1.start()
    settle([fan, tl1])
    before = changelog_tombstones(keys0)
    log("timeline instance 1 wrote %d tombstones of entries instance 0 holds" % before)
    assert before > 100, "the deletes wrote too few tombstones (%d) to test anything" % before
    # The cleaner drops a tombstone delete.retention.ms after its first
    # cleaning of a rolled segment; new posts keep segments rolling and the
    # log dirty enough to be cleaned again.
    authors = sorted(set(live.values()))
    t0, left = time.time(), before
    while left:
        assert time.time() - t0 < 180, "%d of %d tombstones still in the changelog after 180s" % (
            left, before)
        for _ in range(6):
            for _ in range(5):
                ev.post(rnd.choice(authors))
            produce(ev.write("tombstones-trickle"), ("posts",))
            time.sleep(0.5)
        left = changelog_tombstones(keys0)
    log("the log cleaner removed all %d tombstones in %.0fs" % (before, time.time() - t0))
    settle([fan, tl1])
    tl1.stop()
    # Instance 0 must get every partition at once (a partition it does not
    # get has its old folder removed instead of wiped): wait until instance
    # 1's static membership is gone.
    wait_for(lambda: not procs.group_members(KAFKA, "feedline-timeline"), 60,
             "the timeline group to have no member")
    tl0.start()
    settle([fan, tl0])
    w = wipes(tl0)
    log("timeline instance 0 restarted: wipes %s" % w)
    stop_all((fan, tl0))
    check_timelines("store offline past delete.retention.ms", timeline_dirs(state0, 0))
    assert w == only_wipes("tombstones_expired"), w


# ---- 3. a skewed replay, memory bounded ----------------------------------------------------------


def topology_copy(name, settings=None, replace=()):
    """A copy of the topology with settings changed and text replaced."""
    with open(TOPOLOGY) as f:
        text = f.read()
    for k, v in (settings or {}).items():
        text, n = re.subn(r"(?m)^([ \t]+%s:[ \t]*)\d+" % k, r"\g<1>%d" % v, text)
        assert n == 1, k
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def peak_rss_until_consumed(p, n_records, timeout_s=600):
    """Waits until p read n_records input records; its VmHWM then (KiB):
    when every record was read the merge holds the most."""
    def consumed():
        if not p.alive():
            raise AssertionError("%s-%s exited; see %s" % (p.name, p.instance, p.log_path))
        return (metric(p, "feedline_records_in_total") or 0) >= n_records

    wait_for(consumed, timeout_s, "%s to read %d records" % (p.name, n_records), 0.25)
    return p.status_kib("VmHWM")


# The peak resident memory the bounded fan-out may reach, on top of its
# footprint with its stores open and nothing fetched (measured first):
# - its librdkafka consumer: the queue of prefetched records
#   (queued.max.messages.kbytes, 64 MiB by default) and one fetch response
#   on its way (fetch.max.bytes, 50 MiB), rounded up for decompressed
#   batches;
CONSUMER_MIB = 128
# - per store partition, its read cache (store_cache_bytes) and one RocksDB
#   write buffer (16 MiB; this replay writes less than that in all);
WRITE_BUFFER_MIB = 16
# - the merge's buffered records, bound x partitions x inputs, at most
#   this much each (the message, its share of the fetch buffer, the
#   decoded event).
RECORD_KIB = 2
# Without the bound the merge holds about ten follows per post drained,
# every follow of the replay by the time the posts are done: 600,000
# follows take it some 250 MiB past the limit.


def rss_limit_kib(footprint_kib, bound):
    cache_kib = procs.topology_settings(BIN)["store_cache_bytes"] // 1024
    parts = {"footprint": footprint_kib // 1024, "consumer": CONSUMER_MIB,
             "stores": PARTS * (cache_kib + WRITE_BUFFER_MIB * 1024) // 1024,
             "merge": bound * PARTS * 2 * RECORD_KIB // 1024}
    return (footprint_kib + CONSUMER_MIB * 1024 + PARTS * (cache_kib + WRITE_BUFFER_MIB * 1024)
            + bound * PARTS * 2 * RECORD_KIB), parts


def check_skewed_replay_memory_is_bounded():
    """Every post is older than every follow: each fan-out task drains its
    posts first while its follows pile up (fetched byte for byte as fast as
    posts are). Posts carry 1 KB of text, follows are small, so the pile
    is about ten follows per post drained. The follows repeat a small
    graph (a repeat changes nothing), so the replay is cheap downstream."""
    rnd = random.Random(SEED + 3)
    fresh_topics()
    users = [USER_BASE + i for i in range(USERS)]
    edges = [(u, rnd.choice(users)) for u in users]
    edges = [(u, v) for u, v in edges if u != v]
    ev = Events("skew", int(time.time() * 1000))
    words = ("feed", "kafka", "event", "timeline", "replay", "stream", "merge", "offset")
    for _ in range(SKEW_POSTS):
        ev.post(rnd.choice(users), " ".join(rnd.choice(words) for _ in range(160))[:1000])
    for i in range(SKEW_FOLLOWS):
        ev.follow(*edges[i % len(edges)])
    gen = ev.write()
    n = SKEW_POSTS + SKEW_FOLLOWS
    topo = topology_copy("topology-bounded.yaml", {"buffered_records_per_partition": SKEW_BOUND})
    state = folder("skew/state")
    # The fan-out's own footprint: started on the empty topics, its stores
    # open, nothing fetched.
    fan = proc("fanout", 0, state, env={"FEEDLINE_TOPOLOGY": topo})
    fan.start()
    wait_for(lambda: metric(fan, "feedline_assigned_partitions") == 2 * PARTS, 60,
             "the fan-out to be assigned its partitions")
    time.sleep(2)
    base = fan.status_kib("VmRSS")
    fan.stop()
    t0 = time.time()
    produce(gen)
    log("skewed replay: %d posts then %d follows produced in %.1fs" % (
        SKEW_POSTS, SKEW_FOLLOWS, time.time() - t0))
    limit, parts = rss_limit_kib(base, SKEW_BOUND)
    tl = proc("timeline", 0, state)
    t0 = time.time()
    fan.start()
    tl.start()
    peak_rss_until_consumed(fan, n)
    settle([fan, tl])
    hwm = fan.status_kib("VmHWM")
    pauses = metric(fan, "feedline_input_pauses_total")
    log("bounded (%d records per partition): peak RSS %d MiB, limit %d MiB (MiB: %s), "
        "%d pauses, %.1fs" % (SKEW_BOUND, hwm // 1024, limit // 1024,
                              ", ".join("%s %d" % kv for kv in parts.items()), pauses,
                              time.time() - t0))
    assert hwm < limit, "peak RSS %d MiB over the limit %d MiB" % (hwm // 1024, limit // 1024)
    assert pauses > 0, "no input partition was paused"
    expected = check_timelines("skewed replay")
    stop_all((fan, tl))
    check_timelines("skewed replay, stopped", timeline_dirs(state, 0), expected)
    # The control: the same replay without the bound, in a group and a
    # changelog of its own (its outputs land in feedline.timeline-ops
    # again, after the checks above), must go past the limit.
    ctl_topo = topology_copy("topology-unbounded.yaml",
                             {"buffered_records_per_partition": 1_000_000_000}, (
                                 ("group: feedline-fanout", "group: feedline-fanout-control"),
                                 ("changelog: feedline.fanout-authors-changelog",
                                  "changelog: feedline.fanout-authors-control"),
                                 ("  - {name: feedline.timelines-changelog,",
                                  "  - {name: feedline.fanout-authors-control, partitions: %d, "
                                  "kind: changelog}\n  - {name: feedline.timelines-changelog,"
                                  % PARTS)))
    subprocess.run([FEEDLINE, "--topology", ctl_topo, "topics", "create", "--wait", "60"],
                   check=True, capture_output=True)
    procs.wait_topics_ready(KAFKA, FEEDLINE)
    ctl = proc("fanout", 9, folder("skew/control"), env={"FEEDLINE_TOPOLOGY": ctl_topo})
    t0 = time.time()
    ctl.start()
    ctl_hwm = peak_rss_until_consumed(ctl, n)
    ctl.stop()
    log("control without the bound: peak RSS %d MiB (%.1fs)" % (ctl_hwm // 1024,
                                                               time.time() - t0))
    assert ctl_hwm > limit, ("without the bound the peak RSS (%d MiB) stays under the limit "
                             "(%d MiB): this check cannot fail" % (ctl_hwm // 1024,
                                                                  limit // 1024))


# ---- 4. the same instance started twice ----------------------------------------------------------


def check_same_instance_twice_stops_the_older():
    fresh_topics()
    gen = workload("twice", SEED + 4, max(USERS // 3, 1000), max(POSTS // 4, 2000),
                   int(time.time() * 1000))
    produce(gen)
    old_state, new_state = folder("twice/old"), folder("twice/new")
    old, tl = proc("fanout", 0, old_state), proc("timeline", 0, old_state)
    old.start()
    tl.start()
    settle([old, tl])
    # An idle instance: it produces nothing, so only its consumer can learn
    # that it was fenced.
    new = proc("fanout", 0, new_state)
    new.start()
    wait_for(lambda: not old.alive(), 60, "the older fanout-0 to stop once fenced")
    rc = old.p.returncode
    fatal = [l.get("msg", "") for l in old.log_lines() if l.get("level") == "error"]
    log("the older fanout-0 stopped with status %d: %s" % (rc, fatal[-1][:200] if fatal else "-"))
    assert rc != 0, "the fenced instance exited with status 0"
    settle([new, tl])
    stop_all((new, tl))
    check_timelines("after a second fanout-0", timeline_dirs(old_state, 0))


# ---- 5. a transaction Kafka timed out ----------------------------------------------------------


def check_timed_out_transaction_is_redone():
    fresh_topics()
    gen = workload("timeout", SEED + 5, max(USERS // 3, 1000), max(POSTS // 4, 2000),
                   int(time.time() * 1000))
    produce(gen)
    state = folder("timeout/state")
    fo, tl = proc("fanout", 0, state), proc("timeline", 0, state)
    # 25 s asleep in its second batch, its input offsets in the open
    # transaction: past the 15 s timeout and the coordinator's 5 s sweep,
    # within the consumer's session (heartbeats run on their own thread).
    fo.start(env={"FEEDLINE_FAILPOINT": "before-commit:2:sleep=25"})
    tl.start()
    t0 = time.time()
    wait_for(lambda: metric(fo, "feedline_producer_resets_total") or not fo.alive(), 120,
             "the fan-out to renew its producer after the timed-out transaction")
    assert fo.alive(), "the fan-out exited instead of renewing its producer; see %s" % fo.log_path
    msgs = [l.get("msg", "") for l in fo.log_lines()]
    assert any(m.startswith("failpoint before-commit") for m in msgs), msgs[-5:]
    log("the fan-out renewed its producer %.0fs after its stall began: %s" % (
        time.time() - t0, next(m for m in msgs if "new producer" in m)[:200]))
    settle([fo, tl])
    assert fo.alive(), "the fan-out exited after renewing its producer; see %s" % fo.log_path
    dups, n = timeline_ops_duplicates()
    assert not dups, "%d timeline operations reached feedline.timeline-ops twice, e.g. %s" % (
        len(dups), dups[:3])
    log("%d timeline operations, none twice" % n)
    expected = check_timelines("after a timed-out transaction")
    stop_all((fo, tl))
    check_timelines("after a timed-out transaction, stopped", timeline_dirs(state, 0), expected)


def main():
    s = Suite()
    log("fault tests: %d users, %d posts, seed %d; work in %s" % (USERS, POSTS, SEED, WORK))
    t0 = time.time()
    checks = (check_zombie_fanout_is_fenced, check_recreated_topics_wipe_stale_stores,
              check_expired_tombstones_wipe_offline_store, check_skewed_replay_memory_is_bounded,
              check_same_instance_twice_stops_the_older, check_timed_out_transaction_is_redone)
    try:
        for fn in checks:
            if ONLY and not any(o in fn.__name__ for o in ONLY):
                continue
            t1 = time.time()
            s.run(fn)
            stop_all(STARTED)
            log("%s took %.0fs" % (fn.__name__, time.time() - t1))
    finally:
        stop_all(STARTED)
        for name in sorted(os.listdir(WORK)):
            if name.endswith(".log"):
                with open(os.path.join(WORK, name)) as f:
                    errors = [l for l in f if '"level":"error"' in l]
                if errors:
                    print("%s: %d error lines, last: %s" % (name, len(errors), errors[-1].strip()))
        log("fault tests took %.0fs" % (time.time() - t0))
        if not s.failed and not os.environ.get("E2E_KEEP"):
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print("work folder kept: " + WORK)
    s.finish()


if __name__ == "__main__":
    main()
