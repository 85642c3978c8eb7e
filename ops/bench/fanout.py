#!/usr/bin/python3
"""Fan-out benchmark: pushes a generated workload through feedline-fanout
and feedline-timeline on the local stack and reports
  - fan-out deliveries per second (timeline entries written per second,
    sustained: the median of 5-second windows between 10% and 90% of the
    work, plus the overall average),
  - end-to-end lag (post produced -> its entry committed in a follower's
    timeline, read from the timelines changelog) at a light fixed rate,
  - bytes per timeline entry in RocksDB (the timelines stores' files after
    a clean stop and a full compaction... of what RocksDB holds on disk).

The benchmark owns the local stack: it wipes it first (ops/stack wipe).
Run: ops/bench/fanout.py [--users N] [--posts N] [--seed S] [--runs R] [--timelines N]
"""
import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (ROOT, broker_pid, cpu_seconds, machine_line, produce,  # noqa: E402
                      sh, warn)
from itlib import BIN, KAFKA  # noqa: E402  (the stack ops/stack runs, env included)
from procs import Proc, reset_topics, total, wait_idle  # noqa: E402


def feedline(*args, **kw):
    return subprocess.run([os.path.join(BIN, "feedline"), *args], check=True, cwd=ROOT,
                          capture_output=True, text=True, **kw).stdout


def dir_bytes(path):
    n = 0
    for d, _, files in os.walk(path):
        for f in files:
            n += os.path.getsize(os.path.join(d, f))
    return n


def decode_timeline_key(k):
    """(user, created_at, post) of a TIMELINE store key, else None."""
    if len(k) != 25 or k[0] != 0x10:
        return None
    u = struct.unpack(">Q", k[1:9])[0] ^ (1 << 63)
    t = struct.unpack(">Q", k[9:17])[0] ^ (1 << 63)
    p = struct.unpack(">Q", k[17:25])[0] ^ (1 << 63)
    to_signed = lambda x: x - (1 << 64) if x >= (1 << 63) else x
    return to_signed(u), to_signed(t), to_signed(p)


def measure_lag(author, follower, after_ms, n=40, interval=0.25):
    """Produces n posts by author and times each until the follower's
    timeline entry is committed in the timelines changelog. The posts are
    stamped after after_ms (the workload's newest timestamp, minutes ahead
    of now): stamped now they would be older than a full timeline's oldest
    entry and trimmed at once. Like the workload's, their post ids are
    created_at * 1000 + 1: time-ordered and unique."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "bench-lag-%d" % os.getpid(),
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    md = c.list_topics("feedline.timelines-changelog", timeout=10)
    parts = md.topics["feedline.timelines-changelog"].partitions
    tps = []
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition("feedline.timelines-changelog", p), timeout=10)
        tps.append(TopicPartition("feedline.timelines-changelog", p, hi))
    c.assign(tps)
    sent, lags = {}, []
    last_ms = after_ms
    proc = subprocess.Popen([os.path.join(BIN, "feedline"), "produce", "posts"],
                            stdin=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL)
    t_end = time.time() + n * interval + 30
    i = 0
    next_send = time.time()
    while time.time() < t_end and (i < n or len(lags) < len(sent)):
        if i < n and time.time() >= next_send:
            last_ms = max(int(time.time() * 1000), last_ms + 1)
            post = last_ms * 1000 + 1
            ev = {"type": "PostCreated", "event_id": "bench-lag-%d-%d" % (after_ms, i),
                  "occurred_at": last_ms, "post_id": post, "author_id": author,
                  "created_at": last_ms, "text": "probe", "visibility": "PUBLIC",
                  "reply_to": None}
            proc.stdin.write(json.dumps(ev) + "\n")
            proc.stdin.flush()
            sent[post] = time.time()
            i += 1
            next_send += interval
        m = c.poll(0.01)
        if m is None or m.error() or m.value() is None:
            continue
        k = decode_timeline_key(m.key())
        if k and k[0] == follower and k[2] in sent:
            lags.append((time.time() - sent[k[2]]) * 1000)
    proc.stdin.close()
    proc.wait()
    c.close()
    return lags


def run_pipeline(args, workdir, users, posts, timed):
    """Generates and produces a workload, runs the processors over it.
    timed: measure rates, lag and sizes; otherwise just process it."""
    gen = os.path.join(workdir, "workload")
    sh(sys.executable, os.path.join(ROOT, "tests", "e2e", "workload.py"), "--seed", str(args.seed),
       "--users", str(users), "--posts", str(posts), "--start-ms", "now",
       "--out", gen, stderr=subprocess.DEVNULL)
    for topic in ("users", "follows", "posts"):
        produce(topic, os.path.join(gen, topic + ".jsonl"))
    state = os.path.join(workdir, "state")
    fan = Proc(BIN, "fanout", 0, state, None, workdir)
    tls = [Proc(BIN, "timeline", i, state, None, workdir) for i in range(args.timelines)]
    procs = [fan] + tls
    try:
        if not timed:
            for p in procs:
                p.start()
            wait_idle(procs, quiet_s=3.0, timeout_s=600)
            return None
        res = measure(gen, procs)
    finally:
        for p in procs:
            p.stop()
    res["rocksdb_bytes_per_entry"], res["timeline_entries"] = rocksdb_bytes_per_entry(state)
    return res


def rocksdb_bytes_per_entry(state):
    """(bytes per timeline entry, entries): the files of every
    feedline-timeline store folder under state (its processors stopped)
    over the timeline entries the timelines changelog holds."""
    entries = sum(json.loads(l)["entries"] for l in feedline("timeline", "--all").splitlines())
    tl_bytes = sum(dir_bytes(os.path.join(state, d)) for d in os.listdir(state)
                   if d.startswith("timeline-"))
    return (round(tl_bytes / entries, 1) if entries else None), entries


def sustained_rate(samples, window_s=5.0):
    """The median rate of window_s-second windows between 10% and 90% of
    the work, from samples [(seconds, counter)] of a growing counter."""
    final = samples[-1][1] if samples else 0
    rates = []
    for i, (ts, v) in enumerate(samples):
        j = next((j for j in range(i, len(samples)) if samples[j][0] >= ts + window_s), None)
        if j is None:
            break
        if 0.1 * final <= v and samples[j][1] <= 0.9 * final:
            rates.append((samples[j][1] - v) / (samples[j][0] - ts))
    return int(statistics.median(rates)) if rates else None


def run_once(args, workdir):
    sh("ops/stack", "wipe", stdout=subprocess.DEVNULL)
    sh("ops/stack", "up", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if args.warmup:
        # A long-running broker has compiled its hot paths; a fresh one
        # spends a core on its JIT compiler for the first minute or two.
        warm = os.path.join(workdir, "warmup")
        os.makedirs(warm)
        run_pipeline(args, warm, max(500, args.users // 6), max(5000, args.posts // 6), False)
        reset_topics(KAFKA, os.path.join(BIN, "feedline"))
    run_dir = os.path.join(workdir, "run")
    os.makedirs(run_dir)
    return run_pipeline(args, run_dir, args.users, args.posts, True)


def measure(gen, procs):
    """Starts procs (fan-out first, then the timelines), waits until the
    backlog is processed, then measures lag."""
    t0 = time.time()
    for p in procs:
        p.start()
    bpid = broker_pid()
    cpu0 = cpu_seconds(bpid) if bpid else None
    samples = []
    last_change = time.time()
    prev = -1
    while True:
        time.sleep(1)
        for p in procs:
            if not p.alive():
                raise RuntimeError("feedline-%s %d exited; see %s" % (p.name, p.instance,
                                                                      p.log_path))
        ms = [p.metrics() or {} for p in procs]
        ins = sum(total(m, "feedline_timeline_entries_inserted_total") for m in ms[1:])
        samples.append((time.time() - t0, ins))
        lag = sum(total(m, "feedline_consumer_lag") for m in ms)
        if ins != prev:
            prev, last_change = ins, time.time()
        if ins > 0 and lag == 0 and time.time() - last_change > 5:
            final_metrics = ms
            break
        if time.time() - t0 > 3600:
            raise RuntimeError("no end in sight")
    elapsed = last_change - t0
    final = samples[-1][1]
    # CPU seconds spent on the backlog, per program (2 cores: at most 2 s/s).
    cpu = {"%s-%d" % (p.name, p.instance): round(cpu_seconds(p.p.pid) or 0, 1) for p in procs}
    cpu1 = cpu_seconds(bpid) if cpu0 is not None else None
    if cpu1 is not None:
        cpu["kafka"] = round(cpu1 - cpu0, 1)
    else:
        if bpid:
            warn("cannot read the CPU time of Kafka broker pid %d: no Kafka CPU figure" % bpid)
        cpu["kafka"] = None
    print("  processed %d deliveries in %.1fs; measuring lag" % (final, elapsed), flush=True)
    with open(os.path.join(gen, "summary.json")) as f:
        summary = json.load(f)
    # End-to-end lag with the backlog gone: a regular author's post to a follower.
    author, follower = pick_author_and_follower(gen, summary)
    lags = measure_lag(author, follower, summary["end_ms"])
    if not lags:
        warn("no lag sample: no probe post by %d reached follower %d" % (author, follower))
    # Where the time went: input pauses (buffer bound reached) and seconds
    # per commit phase, per program.
    pauses = {"%s-%d" % (p.name, p.instance): int(total(m, "feedline_input_pauses_total"))
              for p, m in zip(procs, final_metrics)}
    commits = {}
    for p, m in zip(procs, final_metrics):
        c = {"n": int(total(m, "feedline_commits_total")),
             "s": round(total(m, "feedline_commit_seconds_sum"), 1)}
        for k, v in m.items():
            if k.startswith("feedline_commit_phase_seconds_sum"):
                c[k.split('phase="')[1].rstrip('"}')] = round(v, 1)
        commits["%s-%d" % (p.name, p.instance)] = c
    return {
        "deliveries": int(final),
        "elapsed_s": round(elapsed, 1),
        "avg_deliveries_per_s": int(final / elapsed) if elapsed else 0,
        "sustained_deliveries_per_s": sustained_rate(samples),
        "lag_ms_p50": round(statistics.median(lags), 1) if lags else None,
        "lag_ms_p99": round(sorted(lags)[max(0, int(len(lags) * 0.99) - 1)], 1) if lags else None,
        "lag_samples": len(lags),
        "cpu_s": cpu,
        "input_pauses": pauses,
        "commit_s": commits,
        "events": summary.get("counts", summary),
    }


def pick_author_and_follower(gen, summary):
    """A regular (non-celebrity) author with a middling number of followers
    and one of them, as the follow graph stands at the end of the workload
    (the generator unfollows some edges later)."""
    follows = {}
    with open(os.path.join(gen, "follows.jsonl")) as f:  # in occurred_at order
        for line in f:
            e = json.loads(line)
            if e["follower_id"] == e["followee_id"]:
                continue
            if e["type"] == "FollowAdded":
                follows.setdefault(e["followee_id"], set()).add(e["follower_id"])
            elif e["type"] == "FollowRemoved":
                follows.get(e["followee_id"], set()).discard(e["follower_id"])
    celebs = {c["user_id"] for c in summary.get("celebrities", [])}
    cands = sorted((len(v), a) for a, v in follows.items()
                   if 5 <= len(v) < 1000 and a not in celebs)
    author = cands[len(cands) // 2][1]
    return author, min(follows[author])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=12000)
    ap.add_argument("--posts", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timelines", type=int, default=1,
                    help="feedline-timeline instances sharing the partitions")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="measure on a freshly started broker (no warm-up pass)")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    results = []
    for r in range(args.runs):
        work = tempfile.mkdtemp(prefix="feedline-bench-")
        res = run_once(args, work)
        results.append(res)
        print("run %d: %s" % (r + 1, json.dumps({k: v for k, v in res.items() if k != "events"})),
              flush=True)
        shutil.rmtree(work, ignore_errors=True)
    keys = ("sustained_deliveries_per_s", "avg_deliveries_per_s", "lag_ms_p50", "lag_ms_p99",
            "rocksdb_bytes_per_entry")
    print("median of %d runs:" % len(results))
    for k in keys:
        vals = [r[k] for r in results if r[k] is not None]
        print("  %-28s %s" % (k, statistics.median(vals) if vals else "n/a"))


if __name__ == "__main__":
    main()
