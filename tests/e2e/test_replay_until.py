#!/usr/bin/env python3
"""A point-in-time replay on the real stack: `feedline replay --all --until
WHEN` rebuilds the stores and both projections from the input topics as
they stood at WHEN, while later records sit in the same topics.

1. A seeded workload (users, follows, posts) goes into Kafka; the oracle
   (tests/e2e/oracle.py) is computed over the topics as they are then.
2. A moment later (WHEN, an ISO time between the two), new posts by the
   same users follow, a few deleted again: they would change many
   timelines.
3. `feedline replay --all --until WHEN` builds generation 1: its
   replay.json names the offsets WHEN resolved to, its timelines equal
   the oracle of step 1 exactly (none of step 2's posts, no deletes of
   them), and its Redis and PostgreSQL equal its store (`feedline
   verify`).
4. `feedline replay --all --until TOPIC:PARTITION:OFFSET,...` with those
   offsets builds generation 2, which `feedline verify --against` finds
   equal to generation 1; a bad --until is refused with a message.

Environment: E2E_UNTIL_USERS (1500), E2E_UNTIL_POSTS (8000),
E2E_UNTIL_LATER (4000 posts after WHEN), E2E_KEEP (keep the work folder).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

from itlib import BIN, KAFKA  # noqa: E402
import oracle  # noqa: E402
import procs  # noqa: E402
import test_projections as tp  # noqa: E402  (projection resets, replay, verify)

USERS = int(os.environ.get("E2E_UNTIL_USERS", "1500"))
POSTS = int(os.environ.get("E2E_UNTIL_POSTS", "8000"))
LATER = int(os.environ.get("E2E_UNTIL_LATER", "4000"))
FEEDLINE = os.path.join(BIN, "feedline")
WORK = tempfile.mkdtemp(prefix="feedline-until-")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def generation_timelines(topology):
    return procs._timelines(procs.run_feedline(BIN, "--topology", topology, "timeline",
                                               "--all").stdout)


def main():
    t0 = time.time()
    procs.reset_topics(KAFKA, FEEDLINE)
    procs.wait_topics_ready(KAFKA, FEEDLINE)
    tp.reset_projections()
    gen = procs.seeded_workload(os.path.join(WORK, "gen"), 11, USERS, POSTS)
    for t in ("users", "follows", "posts"):
        procs.produce_jsonl(BIN, t, os.path.join(gen, t + ".jsonl"))
    posts, follows = os.path.join(WORK, "posts.tail"), os.path.join(WORK, "follows.tail")
    procs.tail_to_file(BIN, "posts", posts)
    procs.tail_to_file(BIN, "follows", follows)
    cfg = procs.topology_settings(BIN)
    expected = oracle.compute(posts, follows, cfg,
                              procs.topic_partitions(BIN, "feedline.timeline-ops"))
    time.sleep(1.5)
    now = time.time()
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (now % 1 * 1000)
    time.sleep(1.5)
    later = procs.NewerPosts([gen], USERS, 12, WORK)
    later.produce(BIN, LATER)
    log("workload of %d users and %d posts, then %d more posts after %s" % (
        USERS, POSTS, LATER, when))

    gens = os.path.join(WORK, "generations")
    env = dict(os.environ, FEEDLINE_GENERATIONS=gens)
    g = {n: os.path.join(gens, "g%d" % n, "topology.yaml") for n in range(3)}
    state0 = os.path.join(WORK, "state0")
    lines, rep1, heard = tp.replay(env, "--state-dir", state0, "--all", "--until", when)
    log("replay --until %s: %s" % (when, " | ".join(lines[:3])))
    assert rep1.get("until"), "replay.json names no bounds: %s" % rep1
    bounds = rep1["until"].split(",")
    assert {b.rsplit(":", 2)[0] for b in bounds} >= {"posts", "follows", "users"}, bounds
    got = generation_timelines(g[1])
    bad = procs.timeline_mismatches(expected, got, cfg["timeline_cap"])
    assert not bad, "generation 1 differs from the oracle as of %s (first 3): %s" % (when, bad[:3])
    later_ids = set()
    with open(os.path.join(WORK, "newer-posts-%d.jsonl" % later.n)) as f:
        for line in f:
            later_ids.add(json.loads(line)["post_id"])
    leaked = [u for u, tl in got.items() if later_ids & set(tl)]
    assert not leaked, "posts after %s reached %d users, e.g. %s" % (when, len(leaked), leaked[:3])
    full = procs.expected_timelines(BIN, WORK)
    changed = sum(1 for u, e in full["users"].items()
                  if e["timeline"] != expected["users"].get(u, {}).get("timeline"))
    assert changed, "the posts after WHEN change no timeline: the check could not fail"
    rc, out = tp.verify(topology=g[1])
    assert rc == 0 and out["redis"]["equal"] and out["postgres"]["equal"], out
    log("generation 1: %d users' timelines equal the oracle as of %s (%d of them differ from "
        "the topics' end); store = Redis = PostgreSQL" % (len(got), when, changed))

    lines, rep2, _ = tp.replay(env, "--state-dir", state0, "--all", "--until", rep1["until"])
    assert rep2["until"] == rep1["until"], (rep1["until"], rep2["until"])
    p = subprocess.run([FEEDLINE, "--topology", g[2], "verify", "--json", "--against", g[1]],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, "generation 2 (offsets) differs from generation 1 (time): %s %s" % (
        p.stdout[-2000:], p.stderr[-2000:])
    for bad_until in ("nosuch:0:5", "posts:99:1", "2026-13-01T00:00:00Z", "yesterday"):
        p = subprocess.run([FEEDLINE, "replay", "--state-dir", state0, "--all", "--until",
                            bad_until], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and "--until" in p.stderr, (bad_until, p.returncode, p.stderr)
    print("e2e replay until: %s resolved to %d input partitions' offsets; %d users' timelines "
          "equal the oracle as of then, %d of them not the topics' end; the same offsets "
          "rebuild an equal generation; %.0fs" % (when, len(bounds), len(got), changed,
                                                  time.time() - t0), flush=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        if os.environ.get("E2E_KEEP"):
            log("work folder kept: %s" % WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)
