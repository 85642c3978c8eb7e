#!/usr/bin/env python3
"""Topics recreated under kept projections, on the real stack.

A first workload goes through the whole pipeline into Redis and
PostgreSQL; then every topic is deleted and created again and a second,
smaller workload is produced, while both projections keep what the first
wrote, their sinks' offsets included. Those offsets now lie past the new
partitions' ends: a sink that resumed there would skip the second
workload's records and keep the first's rows. Each sink must notice it at
its claim, wipe its projection (feedline_sink_wipes_total, exactly once
with one instance) and rebuild it from the new topics, with no one
involved; afterwards every feed in Redis and PostgreSQL equals the new
timelines changelog and likes, follows, counts, affinity, notifications
and celebrities equal the oracle of the new inputs (the checks of
e2e_projections).

Environment: E2E_RECREATE_USERS (600), E2E_RECREATE_POSTS (3000),
E2E_RECREATE_LIKES (4000) size the first workload; the second has a third
of each. E2E_KEEP keeps the work folder.
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import procs  # noqa: E402
import test_projections as tp  # noqa: E402
from procs import Proc, wait_idle  # noqa: E402

USERS = int(os.environ.get("E2E_RECREATE_USERS", "600"))
POSTS = int(os.environ.get("E2E_RECREATE_POSTS", "3000"))
LIKES = int(os.environ.get("E2E_RECREATE_LIKES", "4000"))


def run(work, gen, state):
    """The whole pipeline over gen until idle; returns its sinks' wipes."""
    everyone = [Proc(tp.BIN, n, 0, state, None, work) for n in tp.PROCESSORS]
    sinks = [Proc(tp.BIN, b, 0, None, None, work) for b in tp.SINKS]
    everyone += sinks
    try:
        tp.produce_part(gen, 1)
        for p in everyone:
            p.start()
        wait_idle(everyone, timeout_s=600)
        return {s.name: tp.sink_metric(s, "feedline_sink_wipes_total") for s in sinks}
    finally:
        for p in everyone:
            p.stop()


def main():
    work = tp.WORK = tempfile.mkdtemp(prefix="feedline-recreated-")
    tp.log("work folder %s" % work)
    try:
        procs.reset_topics(tp.KAFKA, tp.FEEDLINE)
        procs.wait_topics_ready(tp.KAFKA, tp.FEEDLINE)
        tp.reset_projections()
        first = tp.generate_workload(work, "first", 21, USERS, POSTS, LIKES, 1)
        wipes = run(work, first, os.path.join(work, "state-1"))
        assert all(w == 0 for w in wipes.values()), "wipes on empty projections: %s" % wipes
        offsets = tp.pg_offsets()
        tp.log("first workload in both projections (%d PostgreSQL offsets)" % len(offsets))

        procs.reset_topics(tp.KAFKA, tp.FEEDLINE)
        procs.wait_topics_ready(tp.KAFKA, tp.FEEDLINE)
        second = tp.generate_workload(work, "second", 22, USERS // 3, POSTS // 3, LIKES // 3, 1)
        wipes = run(work, second, os.path.join(work, "state-2"))
        tp.log("second workload on recreated topics: sink wipes %s" % wipes)
        tp.check_feeds()
        tp.check_engagement(second)
        assert all(w == 1 for w in wipes.values()), \
            "each sink must wipe its projection once: %s" % wipes
    finally:
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print("ok   sink_recreated")


if __name__ == "__main__":
    main()
