#!/usr/bin/env python3
"""Chaos, kills and zombies: the whole pipeline (the four processors, both
sinks) takes in a backlog while

1. feedline-fanout and feedline-redis-sink are SIGSTOPped past the
   consumer group's session (10 s): a second instance of each takes their
   partitions over; the stopped ones are resumed as zombies, with a batch
   in hand: whatever they try to commit for partitions they lost must be
   refused (the processor's transaction by the group generation, the
   sink's write by the owner generation in the destination);
2. every processor and sink instance is SIGKILLed CHAOS_KILLS times at
   random moments and started again at once.

Then, idle: `feedline verify` finds the store, Redis and PostgreSQL equal,
and `feedline replay --all` (a rebuild of the same inputs that no fault
touched) finds the live generation equal to it: every feed entry made it,
none twice. The backlog is in Kafka before anything runs, so its merge
order is a function of the topics and the live result must equal the
replay exactly (README "Replaying into a new generation").

One line sums it up: `chaos kills: ...`.

Short form (CI): CHAOS_KILLS=5 on 3,000 users. Long form, by hand:
  CHAOS_KILLS=50 CHAOS_USERS=12000 tests/chaos/test_kills.py
Environment: CHAOS_KILLS (5), CHAOS_USERS (3000), CHAOS_SEED (7),
CHAOS_KEEP (keep the work folder).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.dont_write_bytecode = True

from itlib import BIN, KAFKA  # noqa: E402
import procs  # noqa: E402
from procs import FaultProc, total, wait_for, wait_idle  # noqa: E402
import test_projections as tp  # noqa: E402  (projection resets, verify, replay)

KILLS = int(os.environ.get("CHAOS_KILLS", "5"))
USERS = int(os.environ.get("CHAOS_USERS", "3000"))
SEED = int(os.environ.get("CHAOS_SEED", "7"))
PROCESSORS = ("fanout", "timeline", "engagement", "affinity")
SINKS = ("redis-sink", "pg-sink")
SESSION_S = 10  # session.timeout.ms of the runtime's consumers


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def assigned(p):
    m = p.metrics()
    return int(total(m, "feedline_assigned_partitions")) if m else 0


def zombies(work, by_name):
    """SIGSTOP instance 0 of fanout and of the Redis sink, start instance
    1 of each, wait until it owns every partition, resume instance 0; both
    instances then run on. Returns the new instances."""
    state = os.path.join(work, "state")
    new = {}
    for name in ("fanout", "redis-sink"):
        old = by_name[name]
        parts = assigned(old)
        old.signal(signal.SIGSTOP)
        log("%s-0 SIGSTOPped with %d partitions" % (name, parts))
        p = FaultProc(BIN, name, 1, state if name in PROCESSORS else None, None, work)
        p.start()
        new[name] = p
    for name, p in new.items():
        wait_for(lambda: assigned(p) > 0 and assigned(p) >= assigned_total(name), 120,
                 "%s-1 to take every partition over" % name)
    for name in new:
        by_name[name].signal(signal.SIGCONT)
        log("%s-0 resumed as a zombie (%d partitions now with %s-1)"
            % (name, assigned(new[name]), name))
    time.sleep(8)
    refused = {}
    for name in new:
        # what the zombie's incarnation logged about being refused (none
        # when it held no batch when stopped: nothing to refuse)
        text = by_name[name].log_since_start().lower()
        refused[name] = sum(1 for line in text.splitlines()
                            if "fenced" in line or "moved on" in line or "newer owner" in line)
    log("zombies refused: %s" % refused)
    return new, refused


def assigned_total(name):
    # posts + follows for the fan-out (4 partitions each), the sink's 17
    return {"fanout": 8, "redis-sink": 17}[name]


def killer(everyone, kills, seconds, stop):
    """SIGKILLs every instance `kills` times at random moments over
    `seconds`, starting it again at once; returns the kills done."""
    rng = random.Random(SEED)
    t0 = time.time()
    plan = sorted((rng.uniform(0, seconds), i) for i in range(len(everyone)) for _ in range(kills))
    done = 0
    for at, i in plan:
        while time.time() - t0 < at and not stop.is_set():
            time.sleep(0.05)
        p = everyone[i]
        if p.state() == "T":
            p.signal(signal.SIGCONT)
        p.kill9()
        p.start()
        done += 1
    return done


def main():
    work = tempfile.mkdtemp(prefix="feedline-chaos-kills-")
    log("work folder %s" % work)
    procs.reset_topics(KAFKA, tp.FEEDLINE)
    procs.wait_topics_ready(KAFKA, tp.FEEDLINE)
    tp.reset_projections()
    tp.WORK = work
    lg = subprocess.run([os.path.join(BIN, "feedline-loadgen"), "--backlog", "--users", str(USERS),
                         "--seed", str(SEED), "--quiet", "--summary",
                         os.path.join(work, "backlog.json")], capture_output=True, text=True)
    assert lg.returncode == 0, lg.stderr[-2000:]
    backlog = json.load(open(os.path.join(work, "backlog.json")))
    log("backlog: %d events" % backlog["backlog_events"])
    state = os.path.join(work, "state")
    by_name = {n: FaultProc(BIN, n, 0, state if n in PROCESSORS else None, None, work)
               for n in PROCESSORS + SINKS}
    everyone = list(by_name.values())
    figures = {"events": backlog["backlog_events"], "kills": 0}
    stop = threading.Event()
    try:
        for p in everyone:
            p.start()
        wait_for(lambda: assigned(by_name["fanout"]) > 0 and assigned(by_name["redis-sink"]) > 0,
                 120, "the fan-out and the Redis sink to be assigned")
        time.sleep(2)
        new, figures["zombie_refusals"] = zombies(work, by_name)
        everyone += list(new.values())
        figures["kills"] = killer(everyone, KILLS, max(30, 4 * KILLS), stop)
        log("%d SIGKILLs done" % figures["kills"])
        wait_idle(everyone, timeout_s=1800)
        for p in everyone:
            p.stop()
        rc, out = tp.verify()
        assert rc == 0, "verify after the chaos: %s" % json.dumps(out)[:3000]
        figures["entries"] = out["entries"]
        gens = os.path.join(work, "generations")
        env = dict(os.environ, FEEDLINE_GENERATIONS=gens)
        lines, rep, heard = tp.replay(env, "--state-dir", state, "--all")
        assert not heard, heard[:2]
        rc, out = tp.verify("--against", os.path.join(gens, "g0", "topology.yaml"),
                            topology=os.path.join(gens, "g1", "topology.yaml"))
        diff = {k: out[k]["differ"] for k in out if isinstance(out[k], dict) and "differ" in out[k]}
        assert rc == 0, "the live generation differs from a replay: %s" % diff
        figures["replay_s"] = round(rep["elapsed_ms"] / 1000.0, 1)
    finally:
        stop.set()
        for p in everyone:
            p.stop()
        if not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print("chaos kills: %d events, %d SIGKILLs over %d instances, 2 zombies resumed (refusals "
          "logged: %s), %d feed entries; store = Redis = PostgreSQL = a replay: lost 0, "
          "duplicated 0" % (figures["events"], figures["kills"], len(everyone),
                            json.dumps(figures["zombie_refusals"], sort_keys=True),
                            figures["entries"]))
    print("ok   chaos_kills")


if __name__ == "__main__":
    main()
