#!/usr/bin/env python3
"""Chaos, outages: the whole pipeline (the four processors, both sinks) and
feedline-api run under a steady load in which 1% of the records of every
input are poison (bytes that are no event), while, one after the other,

1. the Kafka broker is SIGKILLed and started again, then SIGTERMed and
   started again (CHAOS_BROKER times each);
2. Redis is SIGKILLed and started again empty, and later FLUSHALLed: the
   Redis sink notices by itself and rebuilds;
3. PostgreSQL is stopped with `-m immediate` (a crash) for CHAOS_PG_S
   seconds and started again.

Readers ask the API for feeds all along: not one answer may be a 5xx
(with Redis gone the API serves from PostgreSQL). Every program must ride
the outages out on its own (retries with backoff), none restarted.

Then, the load stopped and the pipeline idle: `feedline verify` finds the
store, Redis and PostgreSQL equal; every poison record is in the
dead-letter topic once for each consumer group that reads its topic
(headers naming its topic, partition, offset, stage, group and error),
and nothing else is. A sink's dead letter may repeat after an outage
(README "Sink guarantees"): repeats are counted and named in the
summary, never missing ones.

One line sums it up: `chaos outages: ...`.

Short form (CI): CHAOS_BROKER=1, CHAOS_PG_S=15, 2,000 users at 50
events/s. Long form, by hand:
  CHAOS_BROKER=5 CHAOS_PG_S=60 CHAOS_USERS=12000 CHAOS_RATE=200 tests/chaos/test_outages.py
Environment: CHAOS_BROKER (1), CHAOS_PG_S (15), CHAOS_USERS (2000),
CHAOS_RATE (50 events/s), CHAOS_SEED (5), CHAOS_KEEP (keep the work
folder).
"""
import collections
import json
import os
import random
import re
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
from procs import FaultProc, wait_for, wait_idle  # noqa: E402
import test_projections as tp  # noqa: E402  (projection resets, verify, dead letters)
import test_api  # noqa: E402  (ApiProc, Client, token)

BROKER = int(os.environ.get("CHAOS_BROKER", "1"))
PG_S = int(os.environ.get("CHAOS_PG_S", "15"))
USERS = int(os.environ.get("CHAOS_USERS", "2000"))
RATE = int(os.environ.get("CHAOS_RATE", "50"))
SEED = int(os.environ.get("CHAOS_SEED", "5"))
PROCESSORS = ("fanout", "timeline", "engagement", "affinity")
SINKS = ("redis-sink", "pg-sink")
INPUTS = ("users", "posts", "follows", "likes")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def readers_of_inputs():
    """{input topic: {consumer group}} from the topology file: who must
    dead-letter a poison record of that topic."""
    text = open(os.environ["FEEDLINE_TOPOLOGY"]).read()
    out = collections.defaultdict(set)
    for m in re.finditer(r"(?m)^\s+group:\s*(\S+)\s*\n\s+inputs:\s*\[([^\]]*)\]", text):
        for t in (x.strip() for x in m.group(2).split(",")):
            if t in INPUTS:
                out[t].add(m.group(1))
    assert set(out) == set(INPUTS), out
    return out


def wait_gone(pid, timeout_s=120):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("pid %d still alive after %d s" % (pid, timeout_s))


class Poison(threading.Thread):
    """Produces a poison record (a key of the topic's kind, a value that
    is no event) on a random input for every 99 events of the load: 1% of
    what the inputs receive. Keeps (topic, partition, offset) of each
    acknowledged one; librdkafka retries through the broker's outages."""

    def __init__(self, rate):
        super().__init__(daemon=True)
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": KAFKA, "partitioner": "murmur2_random",
                           "enable.idempotence": True, "message.timeout.ms": 600000,
                           "log_level": 2})
        self.every = 99.0 / rate
        self.acked, self.failed = [], []
        self.stop = threading.Event()
        self.rng = random.Random(SEED)

    def dr(self, err, msg):
        if err is None:
            self.acked.append((msg.topic(), msg.partition(), msg.offset()))
        else:
            self.failed.append(str(err))

    def run(self):
        n = 0
        while not self.stop.is_set():
            topic = self.rng.choice(INPUTS)
            key = str(1 + self.rng.randrange(USERS)).encode()
            value = b"\x00\x00\x00\x00\x63poison %d" % n  # magic byte, unknown schema id 99
            self.p.produce(topic, key=key, value=value, on_delivery=self.dr)
            n += 1
            self.p.poll(0)
            self.stop.wait(self.every)
        self.p.flush(600)


class Readers(threading.Thread):
    """Reads feeds of random users through the API, one keep-alive
    connection, counting statuses and the source each answer names."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.status = collections.Counter()
        self.source = collections.Counter()
        self.errors = collections.Counter()
        self.bad = []
        self.stop = threading.Event()
        self.rng = random.Random(SEED + 1)

    def run(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        toks = {}
        while not self.stop.is_set():
            viewer = 1 + self.rng.randrange(USERS)
            tok = toks.setdefault(viewer, test_api.token(viewer))
            try:
                c.request("GET", "/v1/feed?limit=20", headers={"Authorization": "Bearer " + tok})
                r = c.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException) as e:
                # the API itself never went away: a failed connection is a
                # failure like a 5xx
                self.errors[type(e).__name__] += 1
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                time.sleep(0.05)
                continue
            self.status[r.status] += 1
            self.source[r.getheader("X-Feedline-Source") or "-"] += 1
            if r.status >= 500 and len(self.bad) < 5:
                self.bad.append((time.strftime("%H:%M:%S"), r.status, body[:300]))
            time.sleep(0.02)


def broker_cycles(n):
    """SIGKILL then SIGTERM the broker n times each, each time started
    again at once by ops/stack up; returns the seconds it was away."""
    away = 0.0
    for i in range(n):
        for sig in (signal.SIGKILL, signal.SIGTERM):
            pid = tp.server_pid("kafka")
            t0 = time.time()
            os.kill(pid, sig)
            wait_gone(pid)
            log("broker %s (%d of %d)" % (sig.name, i + 1, n))
            time.sleep(3)
            tp.stack_up()
            away += time.time() - t0
            log("broker back after %.1f s" % (time.time() - t0))
            time.sleep(10)  # load flows again before the next blow
    return away


def rebuilt_and_serving(cl, sink, rebuilds, what):
    """Waits until the Redis sink has noticed by itself that Redis lost its
    data (feedline_sink_rebuilds_total passes rebuilds) and the API serves
    from Redis again (it went to PostgreSQL meanwhile unless the rebuild
    was done before its health thread looked). Returns the seconds it
    took and the sink's rebuild count."""
    t0 = time.time()

    def count():
        return int(procs.total(sink.metrics() or {}, "feedline_sink_rebuilds_total"))
    wait_for(lambda: count() > rebuilds, 120, "the Redis sink to rebuild after %s" % what)
    time.sleep(2)  # the API reads the sink's marker every 250 ms, its lag every second
    wait_for(lambda: cl.get("/readyz")[2].get("serving_from") == "redis", 300,
             "the API to serve from Redis again after %s" % what)
    log("Redis rebuilt by its sink and serving again, %.1f s after %s" % (time.time() - t0, what))
    return time.time() - t0, count()


def redis_outages(readers, cl, sink):
    """Redis SIGKILLed and started again empty; later FLUSHALL, each time
    rebuilt by the sink. Returns the answers served from PostgreSQL
    meanwhile and the seconds until Redis served again."""
    before = readers.source["postgres"]
    rebuilds = int(procs.total(sink.metrics(), "feedline_sink_rebuilds_total"))
    pid = tp.redis_pid()
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    log("Redis SIGKILLed")
    time.sleep(8)
    tp.stack_up()
    log("Redis started again, empty")
    back, rebuilds = rebuilt_and_serving(cl, sink, rebuilds, "the restart")
    time.sleep(5)
    tp.rconn().flushall()
    log("Redis FLUSHALL")
    more, _ = rebuilt_and_serving(cl, sink, rebuilds, "FLUSHALL")
    return readers.source["postgres"] - before, back + more


def check_dead_letters(poison, readers_of):
    """Every poison record once per group that reads its topic; repeats
    (a sink's, after an outage) counted; nothing else in the topic."""
    out = subprocess.run([tp.FEEDLINE, "tail", "feedline.dlq", "--from-beginning",
                          "--exit-at-end"], capture_output=True, text=True, check=True).stdout
    seen = collections.Counter()
    headers_ok = True
    for line in out.splitlines():
        h = json.loads(line).get("headers") or {}
        key = (h.get("feedline.dlq.group"), h.get("feedline.dlq.topic"),
               int(h.get("feedline.dlq.partition", -1)), int(h.get("feedline.dlq.offset", -1)))
        headers_ok &= all(h.get("feedline.dlq." + k) for k in ("stage", "error.class", "error"))
        seen[key] += 1
    want = {(g, t, p, o) for t, p, o in poison for g in readers_of[t]}
    missing = want - set(seen)
    extra = set(seen) - want
    assert not missing, "%d dead letters missing, e.g. %s" % (len(missing), sorted(missing)[:5])
    assert not extra, "%d unexpected dead letters, e.g. %s" % (len(extra), sorted(extra)[:5])
    assert headers_ok, "a dead letter without its stage or error headers"
    repeats = {k: n for k, n in seen.items() if n > 1}
    for (g, t, p, o), n in repeats.items():
        assert "sink" in g, "%s dead-lettered %s [%d] @%d %d times: a processor's dead letter " \
            "is in its transaction" % (g, t, p, o, n)
    return len(want), sum(n - 1 for n in repeats.values())


def main():
    work = tempfile.mkdtemp(prefix="feedline-chaos-outages-")
    log("work folder %s" % work)
    shutil.rmtree(test_api.WORK, ignore_errors=True)
    procs.reset_topics(KAFKA, tp.FEEDLINE)
    procs.wait_topics_ready(KAFKA, tp.FEEDLINE)
    tp.reset_projections()
    tp.WORK = work
    readers_of = readers_of_inputs()
    seeded = os.path.join(work, "seeded.json")  # the steady run's post ids follow from it
    lg = subprocess.run([os.path.join(BIN, "feedline-loadgen"), "--backlog", "--users", str(USERS),
                         "--seed", str(SEED), "--seeded-file", seeded, "--quiet"],
                        capture_output=True, text=True)
    assert lg.returncode == 0, lg.stderr[-2000:]
    state = os.path.join(work, "state")
    pipeline = [FaultProc(BIN, n, 0, state if n in PROCESSORS else None, None, work)
                for n in PROCESSORS + SINKS]
    api = test_api.ApiProc(BIN, "api", 0, None, None, work)
    load = poison = readers = None
    figures = {}
    try:
        for p in pipeline:
            p.start()
        api.start()
        wait_idle(pipeline, timeout_s=900)
        cl = test_api.Client(api.port)
        wait_for(lambda: cl.get("/readyz")[2].get("serving_from") == "redis", 60,
                 "the API to serve from Redis")
        log("backlog of %d users processed; steady load at %d events/s, 1%% poison"
            % (USERS, RATE))
        load = subprocess.Popen([os.path.join(BIN, "feedline-loadgen"), "--rate", str(RATE),
                                 "--duration", "0", "--users", str(USERS), "--seed", str(SEED),
                                 "--seeded-file", seeded, "--quiet"], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(work, "loadgen.log"), "w"))
        poison = Poison(RATE)
        poison.start()
        readers = Readers(api.port)
        readers.start()
        time.sleep(10)
        figures["broker_away_s"] = broker_cycles(BROKER)
        figures["from_postgres"], figures["redis_rebuild_s"] = redis_outages(
            readers, cl, next(p for p in pipeline if p.name == "redis-sink"))
        tp.pg_stop_immediate()
        log("PostgreSQL stopped (immediate) for %d s" % PG_S)
        time.sleep(PG_S)
        tp.pg_start()
        log("PostgreSQL started again")
        time.sleep(10)
        load.send_signal(signal.SIGINT)
        assert load.wait(60) == 0, open(os.path.join(work, "loadgen.log")).read()[-2000:]
        poison.stop.set()
        poison.join(600)
        assert not poison.failed, poison.failed[:3]
        for p in pipeline:
            assert p.alive(), "%s-%d exited during the outages: %s" % (
                p.name, p.instance, p.log_since_start()[-3000:])
        wait_idle(pipeline, timeout_s=900)
        readers.stop.set()
        readers.join(30)
        assert api.alive(), "feedline-api exited: %s" % api.log_since_start()[-2000:]
        n5xx = sum(n for s, n in readers.status.items() if s >= 500)
        answers = sum(readers.status.values())
        assert n5xx == 0 and not readers.errors, \
            "the API answered %d 5xx and %s failed connections over %d requests: %s" % (
                n5xx, dict(readers.errors), answers, readers.bad)
        assert figures["from_postgres"] > 0, "no answer came from PostgreSQL while Redis was away"
        rc, out = tp.verify()
        assert rc == 0, "verify after the outages: %s" % json.dumps(out)[:3000]
        figures["entries"] = out["entries"]
        figures["dead_letters"], figures["repeats"] = check_dead_letters(poison.acked, readers_of)
        figures["poison"] = len(poison.acked)
        figures["answers"] = answers
        figures["status"] = dict(sorted(readers.status.items()))
    finally:
        for t in (poison, readers):
            if t:
                t.stop.set()
        if load and load.poll() is None:
            load.kill()
        for p in pipeline + [api]:
            p.stop()
        if not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print("chaos outages: broker SIGKILLed and SIGTERMed %dx each (away %.0f s in all), Redis "
          "killed and restarted empty then FLUSHALLed (rebuilt by its sink in %.0f s in all), "
          "PostgreSQL crashed for %d s; %d poison "
          "records -> %d dead letters, one per reading group (%d sink repeats); API %d answers "
          "%s, %d from PostgreSQL, 0 5xx; %d feed entries, store = Redis = PostgreSQL: lost 0, "
          "duplicated 0" % (BROKER, figures["broker_away_s"], figures["redis_rebuild_s"], PG_S,
                            figures["poison"],
                            figures["dead_letters"], figures["repeats"], figures["answers"],
                            json.dumps(figures["status"]), figures["from_postgres"],
                            figures["entries"]))
    print("ok   chaos_outages")


if __name__ == "__main__":
    main()
