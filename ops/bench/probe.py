"""Event -> visible probes for the benchmarks.

A probe is a PostCreated by a probe author that the benchmark produces
itself, on a fixed schedule (open loop: a late send does not delay the
next), through one `feedline produce posts` pipe. Each is timed from the
moment its line is written to the pipe until the probe follower's Redis
pub/sub channel (`user:{F}`) announces it with an "update", and, when
asked, until its `feed_items` row exists in PostgreSQL (polled every
10 ms). A probe never seen within the drain time is lost: percentiles are
taken over every probe sent, a lost one counting as slower than any seen
(a percentile that falls on one is reported as None).

Probe authors and followers can be users of the workload (sinks.py picks a
regular author and one of its followers) or users the benchmark registers
for itself (probe_network(): nothing else posts to or unfollows them, so a
steady background load cannot take a probe's follower away).
"""
import json
import os
import statistics
import subprocess
import threading
import time

from benchlib import BIN, PG_DSN, percentile, rconn

# Ids of the users probe_network() registers: far above any workload's.
PROBE_USER_BASE = 8_000_000_000_000


def probe_network(users, pairs, followers_each, rng, run_id):
    """The events that register `pairs` probe authors and one probe
    follower each, and make followers_each random users of `users` follow
    each author too (so a probe fans out to several partitions, as a
    regular author's post does). Returns ({topic: [event]}, [(author,
    follower)])."""
    now = int(time.time() * 1000)
    ev = {"users": [], "follows": []}
    out = []
    n = 0

    def stamp():
        nonlocal n
        n += 1
        return {"event_id": "%s-setup-%d" % (run_id, n), "occurred_at": now + n}
    for i in range(pairs):
        a, f = PROBE_USER_BASE + 2 * i, PROBE_USER_BASE + 2 * i + 1
        for u, role in ((a, "author"), (f, "follower")):
            ev["users"].append(dict(stamp(), type="UserRegistered", user_id=u,
                                    handle="probe-%s-%d" % (role, i),
                                    display_name="probe %s %d" % (role, i)))
        for fol in [f] + rng.sample(list(users), min(followers_each, len(users))):
            ev["follows"].append(dict(stamp(), type="FollowAdded", follower_id=fol,
                                      followee_id=a))
        out.append((a, f))
    return ev, out


def produce_events(events):
    """Produces {topic: [event]} (users first, then follows, then the rest)."""
    order = sorted(events, key=lambda t: ("users", "follows").index(t)
                   if t in ("users", "follows") else 2)
    for topic in order:
        data = "".join(json.dumps(e) + "\n" for e in events[topic])
        subprocess.run([os.path.join(BIN, "feedline"), "produce", topic], input=data, text=True,
                       check=True, stderr=subprocess.DEVNULL)


class VisibilityProbe:
    """Probe posts by the authors of `pairs` [(author, follower)], in turn,
    at `rate` per second, stamped after after_ms (created_at strictly
    increasing: a workload may hold timestamps ahead of now, and a post
    older than a full timeline's oldest entry is trimmed at once). Post
    ids are created_at * 1000 + 7: time-ordered, unique among the probes.
    start() begins sending; stop() stops sending and waits up to drain_s
    for the probes in flight; then samples holds one dict per probe
    (sent: epoch seconds, redis_ms / pg_ms: None when never seen)."""

    def __init__(self, pairs, rate, after_ms=0, pg=False, run_id="probe", limit=None):
        self.pairs, self.interval, self.pg = list(pairs), 1.0 / rate, pg
        self.last_ms, self.run_id, self.limit = after_ms, run_id, limit
        self.sent, self.seen_r, self.seen_p = {}, {}, {}
        self.follower_of = {}
        self.samples = []
        self._stop_send = threading.Event()
        self._stop_all = threading.Event()
        self._threads = []

    # ---- the threads ----------------------------------------------------------------------

    def _send(self):
        prod = subprocess.Popen([os.path.join(BIN, "feedline"), "produce", "posts"],
                                stdin=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL)
        nxt, i = time.time(), 0
        try:
            while not self._stop_send.is_set() and (self.limit is None or i < self.limit):
                delay = nxt - time.time()
                if delay > 0:
                    self._stop_send.wait(delay)
                    continue
                author, follower = self.pairs[i % len(self.pairs)]
                self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
                post = self.last_ms * 1000 + 7
                ev = {"type": "PostCreated", "event_id": "%s-%d" % (self.run_id, i),
                      "occurred_at": self.last_ms, "post_id": post, "author_id": author,
                      "created_at": self.last_ms, "text": "probe", "visibility": "PUBLIC",
                      "reply_to": None}
                self.follower_of[post] = follower
                self.sent[post] = time.time()
                prod.stdin.write(json.dumps(ev) + "\n")
                prod.stdin.flush()
                i += 1
                nxt += self.interval
        finally:
            prod.stdin.close()
            prod.wait()

    def _listen(self, ps):
        while not self._stop_all.is_set():
            m = ps.get_message(timeout=0.05)
            if not m or m["type"] != "message":
                continue
            now = time.time()
            try:
                e = json.loads(m["data"])
                pid = int(e.get("post_id", 0))
            except (ValueError, TypeError):
                continue
            if e.get("event") == "update" and pid in self.sent and pid not in self.seen_r:
                self.seen_r[pid] = now

    def _poll_pg(self):
        import psycopg2
        with psycopg2.connect(PG_DSN) as c, c.cursor() as cur:
            c.autocommit = True
            while not self._stop_all.is_set():
                want = [p for p in list(self.sent) if p not in self.seen_p]
                if want:
                    cur.execute("SELECT post_id FROM feed_items WHERE user_id = ANY(%s) AND "
                                "post_id = ANY(%s)",
                                (sorted({self.follower_of[p] for p in want}), want))
                    now = time.time()
                    for (p,) in cur.fetchall():
                        self.seen_p.setdefault(p, now)
                time.sleep(0.01)
        c.close()

    # ---- control --------------------------------------------------------------------------

    def start(self):
        self._ps = rconn().pubsub()
        self._ps.subscribe(*sorted({"user:{%d}" % f for _, f in self.pairs}))
        self._ps.get_message(timeout=1)  # the subscription's confirmation
        self._threads = [threading.Thread(target=self._listen, args=(self._ps,), daemon=True)]
        if self.pg:
            self._threads.append(threading.Thread(target=self._poll_pg, daemon=True))
        self._sender = threading.Thread(target=self._send, daemon=True)
        for t in self._threads + [self._sender]:
            t.start()
        return self

    def wait_sent(self):
        """Waits until `limit` probes were sent (with a limit)."""
        self._sender.join()

    def stop(self, drain_s=30):
        self._stop_send.set()
        self._sender.join()
        deadline = time.time() + drain_s
        while time.time() < deadline and (len(self.seen_r) < len(self.sent) or
                                          (self.pg and len(self.seen_p) < len(self.sent))):
            time.sleep(0.1)
        self._stop_all.set()
        for t in self._threads:
            t.join()
        self._ps.close()
        self.samples = [{"sent": t, "post": p,
                         "redis_ms": round((self.seen_r[p] - t) * 1000, 2)
                         if p in self.seen_r else None,
                         "pg_ms": round((self.seen_p[p] - t) * 1000, 2)
                         if p in self.seen_p else None}
                        for p, t in sorted(self.sent.items(), key=lambda kv: kv[1])]
        return self


def latency_stats(samples, key="redis_ms", t0=None, t1=None):
    """p50/p99/p99.9/max in ms of samples sent in [t0, t1), counting lost
    probes as slower than any seen; plus samples and lost."""
    sel = [s for s in samples if (t0 is None or s["sent"] >= t0) and (t1 is None or s["sent"] < t1)]
    inf = float("inf")
    vals = sorted(inf if s[key] is None else s[key] for s in sel)

    def q(x):
        v = percentile(vals, x)
        return None if v is None or v == inf else round(v, 1)
    seen = [v for v in vals if v != inf]
    return {"p50": q(0.5), "p99": q(0.99), "p99.9": q(0.999),
            "max": round(seen[-1], 1) if seen else None,
            "mean": round(statistics.mean(seen), 1) if seen else None,
            "samples": len(vals), "lost": len(vals) - len(seen)}


def latency_series(samples, window_s=10.0, key="redis_ms", t_origin=0.0):
    """[(window middle in seconds since t_origin, p50, p99, p99.9, n)]
    over consecutive windows of window_s seconds of send time."""
    if not samples:
        return []
    out = []
    end = samples[-1]["sent"]
    t = t_origin + (samples[0]["sent"] - t_origin) // window_s * window_s
    while t <= end:
        st = latency_stats(samples, key, t, t + window_s)
        if st["samples"]:
            out.append((round(t + window_s / 2 - t_origin, 1), st["p50"], st["p99"], st["p99.9"],
                        st["samples"]))
        t += window_s
    return out
