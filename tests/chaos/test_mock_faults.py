#!/usr/bin/env python3
"""Chaos, the Kafka client's paths: feedline-fanout and feedline-timeline
run against librdkafka's mock cluster (tests/chaos/fl_mock_kafka.c, three
brokers), which answers chosen requests with chosen errors or late, and
takes brokers down, as a real broker rarely does on demand:

- the transaction path: InitProducerId, AddPartitionsToTxn,
  AddOffsetsToTxn, TxnOffsetCommit and EndTxn refused with retriable
  errors (the coordinator loading, moved, a concurrent transaction), an
  EndTxn answered seconds late, Produce refused (not the leader, a
  disconnect, and once for good: the batch must be aborted and redone);
- the fetch path: Fetch refused (not the leader, a disconnect) and slow;
- brokers: the inputs' leader, the outputs' leader and the coordinators'
  broker each down for seconds, every broker slow in turn, partition
  leaders moved.

Each fault is placed on a known broker (inputs led by 1, feedline's own
topics by 2, every coordinator on 3), and each error must be used up by a
request: a fault that nothing hit would prove nothing, and fails the run.
Both programs must ride every fault out in one run each, without a
restart, a rebalance or a wiped store, and at the end every user's
timeline in the timeline store equals the oracle's (tests/e2e/oracle.py).

What the mock cannot show, and where it is shown instead: it stores no
transactional offset commits (a restart would wipe and reprocess; the
real broker's fencing and restarts are tests/e2e/test_faults.py and
tests/chaos/test_kills.py) and it lets read_committed readers see
aborted records, so an aborted batch's timeline operations reach the
timeline processor before their redo (they are idempotent, fl_tlop.h);
the run counts them as "aborted records visible".

One line sums it up: `chaos mock faults: ...`.
Short form (CI): 2,000 users, 20,000 posts. Long form, by hand:
  CHAOS_MOCK_USERS=12000 CHAOS_MOCK_POSTS=100000 CHAOS_MOCK_ROUNDS=5 tests/chaos/test_mock_faults.py
Environment: CHAOS_MOCK_USERS, CHAOS_MOCK_POSTS, CHAOS_MOCK_ROUNDS (times
the whole fault list is played, 1), CHAOS_MOCK_CHUNK (posts produced
before each broker fault, 4000), CHAOS_SEED (5), CHAOS_KEEP (keep the
work folder).
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.dont_write_bytecode = True

from itlib import BIN  # noqa: E402
import procs  # noqa: E402
from procs import FaultProc, total, wait_for, wait_idle  # noqa: E402

USERS = int(os.environ.get("CHAOS_MOCK_USERS", "2000"))
POSTS = int(os.environ.get("CHAOS_MOCK_POSTS", "20000"))
ROUNDS = int(os.environ.get("CHAOS_MOCK_ROUNDS", "1"))
CHUNK = int(os.environ.get("CHAOS_MOCK_CHUNK", "4000"))
SEED = int(os.environ.get("CHAOS_SEED", "5"))
KEEP = bool(os.environ.get("CHAOS_KEEP"))
MOCK = os.path.join(os.path.dirname(BIN), "tests", "feedline-mock-kafka")
WORK = tempfile.mkdtemp(prefix="feedline-mock-")

# Kafka protocol numbers the faults use.
PRODUCE, FETCH, INIT_PID, ADD_PARTS, ADD_OFFSETS, END_TXN, TXN_OFFSETS = 0, 1, 22, 24, 25, 26, 28
NOT_LEADER, LOAD_IN_PROGRESS, COORD_NA, NOT_COORD = 6, 14, 15, 16
TOPIC_AUTH, CONCURRENT_TXN, TRANSPORT = 29, 51, -195
INPUTS, OUTPUTS, COORD = 1, 2, 3  # the broker of each role


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Mock:
    """The mock cluster process and its command channel."""

    def __init__(self, brokers=3):
        self.p = subprocess.Popen([MOCK, str(brokers)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.bootstrap = self.p.stdout.readline().strip()
        assert self.bootstrap, "the mock cluster printed no bootstrap list"

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        r = self.p.stdout.readline().strip()
        assert r.startswith("ok"), "mock: %s -> %s" % (line, r or "no answer")
        return r[2:].strip()

    def pending(self, broker, apikey):
        return int(self.cmd("pending %d %d" % (broker, apikey)))

    def close(self):
        if self.p.poll() is None:
            try:
                self.cmd("quit")
            except (AssertionError, OSError):
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


def topology_topics():
    """(name, partitions) of every topic of the topology."""
    lines = procs.run_feedline(BIN, "topology").stdout.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip().startswith("- name: ") and i + 1 < len(lines) \
                and lines[i + 1].strip().startswith("partitions:"):
            out.append((line.split(":", 1)[1].strip(), int(lines[i + 1].split(":")[1])))
    return out


def metric_sum(ps, name):
    return sum(total(p.metrics() or {}, name) for p in ps)


class Faults:
    """Plays the fault list against the running programs ps; more posts
    come from posts (a procs.NewerPosts)."""

    def __init__(self, mock, ps, posts):
        self.mock, self.ps, self.posts = mock, ps, posts
        self.played = collections.Counter()

    def check_alive(self):
        for p in self.ps:
            assert p.alive(), "%s exited during the faults; see %s" % (p.name, p.log_path)

    def errors(self, what, broker, apikey, err, count, rtt_ms=0, timeout_s=90):
        """count requests of apikey on broker fail with err (0: answered
        rtt_ms late); waits until every one was used by a request, with
        more posts every 15 s while it waits."""
        self.mock.cmd("broker-errors %d %d %d %d %d" % (broker, apikey, err, rtt_ms, count))
        t0 = time.time()

        def used():
            self.check_alive()
            return self.mock.pending(broker, apikey) == 0

        # Requests come with work: when the programs ran out of it (the
        # backlog done), new posts bring the requests the errors wait for.
        while True:
            try:
                wait_for(used, 15, "", 0.1)
                break
            except AssertionError:
                if time.time() - t0 > timeout_s:
                    raise AssertionError("%s never hit in %ds (%d errors on broker %d)" % (
                        what, timeout_s, count, broker))
                self.posts.produce(BIN, CHUNK)
        self.played[what] += 1
        log("%s: %d x hit in %.1fs" % (what, count, time.time() - t0))

    def hold(self, what, on, off, seconds):
        """Gives the programs CHAOS_MOCK_CHUNK new posts, runs the mock
        command on while they work on them, waits seconds, runs off."""
        self.posts.produce(BIN, CHUNK)
        before = metric_sum(self.ps, "feedline_records_in_total")
        self.mock.cmd(on)
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.check_alive()
            time.sleep(0.2)
        self.mock.cmd(off)
        self.played[what] += 1
        log("%s for %ds; records in %d -> %d" % (
            what, seconds, before, metric_sum(self.ps, "feedline_records_in_total")))

    def play(self, more_work):
        """One round of every fault; more_work: new posts first (a later
        round, the backlog long gone: an error needs requests to hit)."""
        m = self.mock
        if more_work:
            self.posts.produce(BIN, CHUNK)
        # the transaction path
        self.errors("AddPartitionsToTxn: concurrent transactions", COORD, ADD_PARTS,
                    CONCURRENT_TXN, 3)
        self.errors("AddOffsetsToTxn: coordinator loading", COORD, ADD_OFFSETS,
                    LOAD_IN_PROGRESS, 2)
        self.errors("TxnOffsetCommit: not the coordinator", COORD, TXN_OFFSETS, NOT_COORD, 2)
        self.errors("EndTxn: not the coordinator", COORD, END_TXN, NOT_COORD, 2)
        self.errors("EndTxn: 4 s late", COORD, END_TXN, 0, 2, rtt_ms=4000)
        self.errors("Produce: not the leader", OUTPUTS, PRODUCE, NOT_LEADER, 3)
        self.errors("Produce: disconnect", OUTPUTS, PRODUCE, TRANSPORT, 2)
        failed = metric_sum(self.ps, "feedline_commit_failures_total")
        self.errors("Produce: refused for good", OUTPUTS, PRODUCE, TOPIC_AUTH, 1)

        def aborted():
            self.check_alive()
            return metric_sum(self.ps, "feedline_commit_failures_total") > failed

        wait_for(aborted, 60, "the batch a refused Produce broke to be aborted and redone")
        # the fetch path
        self.errors("Fetch: not the leader", INPUTS, FETCH, NOT_LEADER, 3)
        self.errors("Fetch: disconnect", OUTPUTS, FETCH, TRANSPORT, 2)
        self.errors("Fetch: 3 s late", INPUTS, FETCH, 0, 2, rtt_ms=3000)
        # brokers
        # The coordinators' broker only briefly: the client's reconnect
        # backoff comes on top, and a consumer without a heartbeat for the
        # session timeout (10 s) leaves the group, which the mock cannot
        # bring back exactly (no transactional offsets).
        for b, role, s in ((INPUTS, "the inputs' leader", 4), (OUTPUTS, "the outputs' leader", 4),
                           (COORD, "the coordinators' broker", 2)):
            self.hold("broker %d (%s) down" % (b, role), "down %d" % b, "up %d" % b, s)
        for b in (INPUTS, OUTPUTS, COORD):
            self.hold("broker %d slow (500 ms)" % b, "rtt %d 500" % b, "rtt %d 0" % b, 6)
        self.hold("posts [1] and timeline-ops [0] led elsewhere",
                  "leader posts 1 %d" % OUTPUTS, "leader feedline.timeline-ops 0 %d" % INPUTS, 3)
        m.cmd("leader posts 1 %d" % INPUTS)
        m.cmd("leader feedline.timeline-ops 0 %d" % OUTPUTS)


def aborted_visible(path):
    """feedline.timeline-ops records seen more than once (same source,
    partition and value): aborted attempts the mock let readers see."""
    seen = collections.Counter()
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            src = (r.get("headers") or {}).get("feedline.source")
            seen[(src, r["partition"], json.dumps(r.get("value"), sort_keys=True))] += 1
    return sum(c - 1 for c in seen.values())


def main():
    t_start = time.time()
    mock = Mock()
    started = []
    try:
        os.environ["FEEDLINE_KAFKA"] = mock.bootstrap
        for name, parts in topology_topics():
            mock.cmd("topic %s %d" % (name, parts))
            lead = OUTPUTS if name.startswith("feedline.") else INPUTS
            for p in range(parts):
                mock.cmd("leader %s %d %d" % (name, p, lead))
        for proc in ("fanout", "timeline"):
            mock.cmd("coordinator group feedline-%s %d" % (proc, COORD))
            mock.cmd("coordinator transaction feedline-%s-0 %d" % (proc, COORD))
        log("mock cluster at %s; workload of %d users, %d posts" % (mock.bootstrap, USERS, POSTS))
        gen = os.path.join(WORK, "gen")
        procs.seeded_workload(gen, SEED, USERS, POSTS)
        # Everything is in Kafka before the programs start: the merge's
        # order is then the oracle's (README, "the merge of a task's inputs").
        for t in ("follows", "posts"):
            procs.produce_jsonl(BIN, t, os.path.join(gen, t + ".jsonl"))
        state = os.path.join(WORK, "state")
        ps = [FaultProc(BIN, n, 0, state, None, WORK) for n in ("fanout", "timeline")]
        started.extend(ps)
        faults = Faults(mock, ps, procs.NewerPosts([gen], USERS, SEED, WORK))
        # InitProducerId happens once per producer, at the start.
        mock.cmd("broker-errors %d %d %d 0 2" % (COORD, INIT_PID, LOAD_IN_PROGRESS))
        for p in ps:
            p.start()
        wait_for(lambda: mock.pending(COORD, INIT_PID) == 0, 60,
                 "InitProducerId's errors to be hit")
        faults.played["InitProducerId: coordinator loading"] += 1
        wait_for(lambda: metric_sum(ps, "feedline_records_in_total") > 0, 120,
                 "the programs to start processing")
        for r in range(ROUNDS):
            log("fault round %d of %d" % (r + 1, ROUNDS))
            faults.play(r > 0)
        wait_idle(ps, timeout_s=600)
        m = {p.name: p.metrics() for p in ps}
        for p in ps:
            p.stop()
        commits = sum(total(x, "feedline_commits_total") for x in m.values())
        failed = sum(total(x, "feedline_commit_failures_total") for x in m.values())
        resets = sum(total(x, "feedline_producer_resets_total") for x in m.values())
        wipes = sum(total(x, "feedline_store_wipes_total") for x in m.values())
        for p in ps:
            assert p.starts == 1, "%s was restarted" % p.name
            assigned = [l for l in p.log_lines() if re.match(r"assigned \d+ partitions",
                                                            l.get("msg", ""))]
            assert len(assigned) == 1, "%s was assigned partitions %d times (a rebalance: the " \
                "mock keeps no transactional offsets, so the run no longer proves anything); " \
                "see %s" % (p.name, len(assigned), p.log_path)
        assert wipes == 0, "%d stores wiped" % wipes
        oracle_dir = os.path.join(WORK, "oracle")
        os.makedirs(oracle_dir)
        expected = procs.expected_timelines(BIN, oracle_dir)
        parts = procs.topic_partitions(BIN, "feedline.timelines-changelog")
        dirs = [os.path.join(state, "timeline-0", "timelines-%d" % p) for p in range(parts)]
        cap = procs.topology_settings(BIN)["timeline_cap"]
        bad = procs.timeline_mismatches(expected, procs.store_timelines(BIN, dirs), cap)
        assert not bad, "%d users' timelines differ from the oracle (first 3): %s" % (
            len(bad), bad[:3])
        ops = os.path.join(oracle_dir, "timeline-ops.tail")
        procs.tail_to_file(BIN, "feedline.timeline-ops", ops)
        visible = aborted_visible(ops)
        n_faults = sum(faults.played.values())
        print("chaos mock faults: %d faults of %d kinds, every one hit; %d transactions committed, "
              "%d failed and redone, %d producers replaced, 0 restarts, 0 rebalances, 0 wipes; "
              "%d aborted records visible (mock); %d users' timelines equal the oracle; %.0fs" % (
                  n_faults, len(faults.played), commits, failed, resets, visible,
                  len(expected["users"]), time.time() - t_start), flush=True)
    finally:
        for p in started:
            p.stop()
        mock.close()
        if KEEP:
            log("work folder kept: %s" % WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
