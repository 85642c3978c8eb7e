"""Workloads for ops/bench/all: a backlog (a whole network produced as fast
as Kafka takes it) and a steady load (a mix of events at a fixed rate, in
the background, until stopped).

Both come from feedline-loadgen when it is built; until then the backlog
is tests/e2e/workload.py's network produced with `feedline produce`, and
the steady load a stand-in that produces posts by random users at the
rate through one `feedline produce posts` pipe.

backlog() returns a summary every stage reads the same way:
  {"source", "users": [ids], "celebrities": [ids], "end_ms": the newest
   occurred_at produced (or now), "counts": {event type: n}, "events",
   "elapsed_s"}.
"""
import json
import os
import random
import subprocess
import sys
import threading
import time

from benchlib import BIN, ROOT, produce, sh, warn

LOADGEN = os.path.join(BIN, "feedline-loadgen")
INPUTS = ("users", "follows", "posts", "likes")


def have_loadgen():
    return os.access(LOADGEN, os.X_OK)


def backlog(work, users, posts, likes, seed):
    """Generates and produces a whole network; returns its summary."""
    t0 = time.time()
    gen = os.path.join(work, "workload")
    sh(sys.executable, os.path.join(ROOT, "tests", "e2e", "workload.py"), "--seed", str(seed),
       "--users", str(users), "--posts", str(posts), "--likes", str(likes),
       "--start-ms", "now", "--out", gen, stderr=subprocess.DEVNULL)
    with open(os.path.join(gen, "summary.json")) as f:
        s = json.load(f)
    for topic in INPUTS:
        produce(topic, os.path.join(gen, topic + ".jsonl"))
    base = s.get("user_base", 1_000_000)
    counts = s.get("counts", {})
    return {"source": "tests/e2e/workload.py", "users": [base + i for i in range(s["users"])],
            "celebrities": [c["user_id"] for c in s.get("celebrities", [])],
            "end_ms": s["end_ms"], "counts": counts,
            "events": sum(v for v in counts.values() if isinstance(v, int)),
            "elapsed_s": round(time.time() - t0, 1)}


class SteadyLoad:
    """A steady load of `rate` events/s until stop(); stop() returns
    {"rate", "achieved_per_s", "events", "elapsed_s", "counts"}."""

    def __init__(self, rate, net, seed, work):
        self.rate, self.net, self.work = rate, net, work
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self.sent = 0

    def start(self):
        self.t0 = time.time()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        prod = subprocess.Popen([os.path.join(BIN, "feedline"), "produce", "posts"],
                                stdin=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL)
        users, last = self.net["users"], max(self.net["end_ms"], int(time.time() * 1000))
        try:
            while not self._stop.wait(0.01):
                due = int((time.time() - self.t0) * self.rate) - self.sent
                lines = []
                for _ in range(max(0, due)):
                    last = max(int(time.time() * 1000), last + 1)
                    lines.append(json.dumps({
                        "type": "PostCreated", "event_id": "steady-%d-%d" % (self.t0, self.sent),
                        "occurred_at": last, "post_id": last * 1000 + 5,
                        "author_id": users[self.rng.randrange(len(users))], "created_at": last,
                        "text": "steady", "visibility": "PUBLIC", "reply_to": None}) + "\n")
                    self.sent += 1
                if lines:
                    prod.stdin.write("".join(lines))
                    prod.stdin.flush()
        finally:
            prod.stdin.close()
            prod.wait()

    def stop(self):
        self._stop.set()
        self._t.join()
        el = time.time() - self.t0
        return {"rate": self.rate, "achieved_per_s": round(self.sent / el, 1) if el else None,
                "events": self.sent, "elapsed_s": round(el, 1),
                "counts": {"PostCreated": self.sent}}


def steady_load(rate, net, seed, work):
    """A started steady load at rate events/s (see SteadyLoad)."""
    if not have_loadgen():
        warn("feedline-loadgen is not built: the steady load is posts only, from Python")
    return SteadyLoad(rate, net, seed, work).start()
