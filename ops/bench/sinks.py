#!/usr/bin/python3
"""Projections benchmark: the Redis and PostgreSQL sinks on the local stack.

  1. each sink alone over a backlog (the processors ran before and are
     idle): Redis feed entries/s and records/s, PostgreSQL rows/s, and the
     sink's peak RSS;
  2. the whole pipeline at full speed from a backlog (four processors and
     two sinks at once): deliveries/s until they are in Redis and
     PostgreSQL, and CPU microseconds per delivery of every program,
     Kafka, Redis and PostgreSQL included;
  3. event -> visible at a light rate (a probe post every 250 ms by a
     regular author): p50/p99 until the follower's Redis pub/sub channel
     announces it, and until its feed_items row is in PostgreSQL;
  4. Redis memory per feed entry (MEMORY USAGE of every feed key over the
     entries they hold).

The benchmark owns the local stack: it wipes it first (ops/stack wipe).
Run: ops/bench/sinks.py [--users N] [--posts N] [--likes N] [--seed S] [--runs R]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BIN, ROOT, PG_DSN, cpu_of, cpu_seconds, machine_line,  # noqa: E402
                      produce, rconn, reset_projections, server_pids, sh)
from itlib import KAFKA  # noqa: E402
from procs import Proc, proc_status_kib, reset_topics, total, wait_idle  # noqa: E402
from fanout import pick_author_and_follower  # noqa: E402
from probe import VisibilityProbe, latency_stats  # noqa: E402

import psycopg2  # noqa: E402

PROCESSORS = ("fanout", "timeline", "engagement", "affinity")


def feed_entries(r):
    n = 0
    pipe = r.pipeline(transaction=False)
    keys = list(r.scan_iter("feed:{*}", count=2000))
    for k in keys:
        pipe.zcard(k)
    for c in pipe.execute():
        n += c
    return n, keys


def redis_bytes_per_entry(r):
    n, keys = feed_entries(r)
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.memory_usage(k, samples=0)
    used = sum(x or 0 for x in pipe.execute())
    return round(used / n, 1) if n else None, n


def pg_rows():
    with psycopg2.connect(PG_DSN) as c, c.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM feed_items) + (SELECT count(*) FROM posts) + "
                    "(SELECT count(*) FROM users) + (SELECT count(*) FROM post_likes) + "
                    "(SELECT count(*) FROM follows) + (SELECT count(*) FROM notifications) + "
                    "(SELECT count(*) FROM affinity)")
        n = cur.fetchone()[0]
    c.close()
    return n


def run_until_idle(procs, extra_cpu=None, on_sample=None):
    """Starts procs, waits until idle; returns (seconds until the last
    record moved, {name: cpu s}, {name: peak RSS MiB}, {name: records
    in}). on_sample(seconds since the start, [metrics of each proc]) is
    called at every poll (twice a second)."""
    t0 = time.time()
    cpu0 = {k: cpu_of(v) for k, v in (extra_cpu or {}).items()}
    for p in procs:
        p.start()
    rss = {}
    last, last_change = None, time.time()
    while True:
        time.sleep(0.5)
        ms = [p.metrics() or {} for p in procs]
        if on_sample:
            on_sample(time.time() - t0, ms)
        for p in procs:
            if not p.alive():
                raise RuntimeError("feedline-%s exited; see %s" % (p.name, p.log_path))
            rss[p.name] = max(rss.get(p.name, 0), (proc_status_kib(p.p.pid, "VmHWM") or 0) / 1024)
        cur = tuple(total(m, "feedline_records_in_total") for m in ms)
        lag = sum(total(m, "feedline_consumer_lag") for m in ms)
        if cur != last:
            last, last_change = cur, time.time()
        elif lag == 0 and any(cur) and time.time() - last_change > 4:
            break
        if time.time() - t0 > 3600:
            raise RuntimeError("no end in sight")
    elapsed = last_change - t0
    cpu, records = {}, {}
    for p, m in zip(procs, ms):  # several instances of one program: summed
        cpu[p.name] = round(cpu.get(p.name, 0) + (cpu_seconds(p.p.pid) or 0), 2)
        records[p.name] = records.get(p.name, 0) + int(total(m, "feedline_records_in_total"))
    for k, v in (extra_cpu or {}).items():
        cpu[k] = round(cpu_of(v) - cpu0[k], 2)
    return elapsed, cpu, {k: round(v, 1) for k, v in rss.items()}, records


def sinks_alone(rs, pg):
    """Each sink alone over what the processors left in Kafka, from empty
    projections: the Redis sink (feed entries/s and records/s), then the
    PostgreSQL sink (rows/s and records/s), each with its CPU seconds and
    peak RSS; then Redis bytes per feed entry. rs, pg: the sinks' Procs."""
    res = {}
    for sink, key in ((rs, "redis"), (pg, "postgres")):
        try:
            elapsed, cpu, rss, recs = run_until_idle([sink])
        finally:
            sink.stop()
        res[key + "_alone"] = {"elapsed_s": round(elapsed, 1), "records": recs[sink.name],
                               "records_per_s": int(recs[sink.name] / elapsed) if elapsed else None,
                               "cpu_s": cpu[sink.name], "peak_rss_mib": rss[sink.name]}
    r = rconn()
    entries = feed_entries(r)[0]
    res["redis_alone"]["feed_entries"] = entries
    res["redis_alone"]["feed_entries_per_s"] = int(entries / res["redis_alone"]["elapsed_s"])
    rows = pg_rows()
    res["postgres_alone"]["rows"] = rows
    res["postgres_alone"]["rows_per_s"] = int(rows / res["postgres_alone"]["elapsed_s"])
    res["redis_bytes_per_feed_entry"], _ = redis_bytes_per_entry(r)
    return res


def sinks_scaled(work, instances, alone):
    """Each sink again from empty projections, as `instances` instances
    sharing its partitions (one consumer group, each instance claiming its
    partitions in the destination): {"redis": {elapsed_s, records_per_s,
    feed_entries_per_s, cpu_s}, "postgres": {..., rows_per_s}}. The feed
    entries and rows must come out as many as sinks_alone's (alone)."""
    res = {}
    for name, key in (("redis-sink", "redis"), ("pg-sink", "postgres")):
        reset_projections()
        ps = [Proc(BIN, name, i, None, None, work) for i in range(instances)]
        try:
            elapsed, cpu, _, recs = run_until_idle(ps)
        finally:
            for p in ps:
                p.stop()
        n = feed_entries(rconn())[0] if key == "redis" else pg_rows()
        want = alone["redis_alone"]["feed_entries"] if key == "redis" else \
            alone["postgres_alone"]["rows"]
        if n != want:
            raise RuntimeError("%d instances of feedline-%s wrote %d, one wrote %d" % (
                instances, name, n, want))
        unit = "feed_entries_per_s" if key == "redis" else "rows_per_s"
        res[key] = {"instances": instances, "elapsed_s": round(elapsed, 1),
                    "records_per_s": int(recs[name] / elapsed) if elapsed else None,
                    unit: int(n / elapsed) if elapsed else None, "cpu_s": cpu[name]}
    return res


def measure_visible(author, follower, after_ms, n=60, interval=0.25):
    """n probe posts by author, one every interval s (probe.py); p50/p99
    and samples until follower's pub/sub channel says "update" for it
    (Redis) and until its feed_items row exists (PG)."""
    pr = VisibilityProbe([(author, follower)], 1.0 / interval, after_ms, pg=True,
                         run_id="bench-vis-%d" % after_ms, limit=n).start()
    pr.wait_sent()
    pr.stop(drain_s=30)

    def pct(key):
        st = latency_stats(pr.samples, key)
        return st["p50"], st["p99"], st["samples"] - st["lost"]
    return pct("redis_ms"), pct("pg_ms")


def run_once(args, work):
    sh("ops/stack", "wipe", stdout=subprocess.DEVNULL)
    sh("ops/stack", "up", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gen = os.path.join(work, "workload")
    sh(sys.executable, os.path.join(ROOT, "tests", "e2e", "workload.py"), "--seed", str(args.seed),
       "--users", str(args.users), "--posts", str(args.posts), "--likes", str(args.likes),
       "--start-ms", "now", "--out", gen, stderr=subprocess.DEVNULL)
    with open(os.path.join(gen, "summary.json")) as f:
        summary = json.load(f)
    res = {}
    state = os.path.join(work, "state")

    def procs_and_sinks(state_dir):
        ps = [Proc(BIN, n, 0, state_dir, None, work) for n in PROCESSORS]
        return ps, [Proc(BIN, "redis-sink", 0, None, None, work),
                    Proc(BIN, "pg-sink", 0, None, None, work)]

    # 1. Processors first, then each sink alone over the backlog.
    reset_projections()
    for topic in ("users", "follows", "posts", "likes"):
        produce(topic, os.path.join(gen, topic + ".jsonl"))
    ps, (rs, pg) = procs_and_sinks(state)
    try:
        for p in ps:
            p.start()
        wait_idle(ps, quiet_s=3.0, timeout_s=1200)
    finally:
        for p in ps:
            p.stop()
    res.update(sinks_alone(rs, pg))
    r = rconn()

    # 2. Everything at once over the same backlog, from empty projections
    # and fresh stores (topics recreated).
    reset_topics(KAFKA, os.path.join(BIN, "feedline"))
    reset_projections()
    for topic in ("users", "follows", "posts", "likes"):
        produce(topic, os.path.join(gen, topic + ".jsonl"))
    state2 = os.path.join(work, "state2")
    ps, sinks = procs_and_sinks(state2)
    everyone = ps + sinks
    try:
        elapsed, cpu, rss, recs = run_until_idle(everyone, server_pids())
        deliveries = feed_entries(r)[0]
        res["pipeline"] = {
            "elapsed_s": round(elapsed, 1), "feed_entries_in_redis": deliveries,
            "deliveries_per_s": int(deliveries / elapsed) if elapsed else None,
            "cpu_us_per_delivery": {k: round(v * 1e6 / deliveries, 2) for k, v in cpu.items()}
            if deliveries else None,
            "peak_rss_mib": rss}
        # 3. Light load: probes through the running pipeline.
        author, follower = pick_author_and_follower(gen, summary)
        (r50, r99, rn), (p50, p99, pn) = measure_visible(author, follower, summary["end_ms"])
        res["visible_ms"] = {"redis_p50": r50, "redis_p99": r99, "redis_samples": rn,
                             "postgres_p50": p50, "postgres_p99": p99, "postgres_samples": pn}
    finally:
        for p in everyone:
            p.stop()
    res["events"] = summary.get("counts")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=12000)
    ap.add_argument("--posts", type=int, default=100000)
    ap.add_argument("--likes", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    print(machine_line(), flush=True)
    results = []
    for i in range(args.runs):
        work = tempfile.mkdtemp(prefix="feedline-bench-sinks-")
        try:
            res = run_once(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results.append(res)
        print("run %d: %s" % (i + 1, json.dumps(res)), flush=True)
    flat = [("redis feed entries/s (alone)", lambda r: r["redis_alone"]["feed_entries_per_s"]),
            ("postgres rows/s (alone)", lambda r: r["postgres_alone"]["rows_per_s"]),
            ("pipeline deliveries/s", lambda r: r["pipeline"]["deliveries_per_s"]),
            ("visible in redis p50 ms", lambda r: r["visible_ms"]["redis_p50"]),
            ("visible in redis p99 ms", lambda r: r["visible_ms"]["redis_p99"]),
            ("visible in postgres p50 ms", lambda r: r["visible_ms"]["postgres_p50"]),
            ("visible in postgres p99 ms", lambda r: r["visible_ms"]["postgres_p99"]),
            ("redis bytes per feed entry", lambda r: r["redis_bytes_per_feed_entry"])]
    print("median of %d runs:" % len(results))
    for name, f in flat:
        vals = [v for v in (f(r) for r in results) if v is not None]
        print("  %-30s %s" % (name, statistics.median(vals) if vals else "n/a"))


if __name__ == "__main__":
    main()
