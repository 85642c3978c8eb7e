#!/usr/bin/env python3
"""`feedline lag` and the observability files on the real stack: the whole
pipeline as `ops/pipeline up` runs it (in this test's own folder and on
free ports) over a small generated workload in two parts.

1. Part 1 is produced before anything runs: `feedline lag` shows every
   program with a backlog (no position stored), equal to an independent
   computation in this test (positions read with confluent_kafka, Redis
   and psycopg2, ends and first committed records with a read_committed
   consumer of its own).
2. The pipeline works it off: once idle, every partition of every program
   has lag exactly 0 (transaction markers are no lag), in the table and in
   --json, agreeing with the processes' own feedline_consumer_lag gauges
   (the same partitions, all 0) and the read API's feedline_api_sink_lag.
3. The PostgreSQL sink is stopped and part 2 produced: once the others are
   idle, its lag is > 0 and equals the independent computation and the read
   API's gauge (which measures it from PostgreSQL), the others are at 0;
   restarted, it catches up to 0.
4. The Grafana dashboard's expressions: every feedline metric they name is
   in the live /metrics of the programs; `ops/observe up` runs Prometheus
   with the scrape configuration of these ports, every program's target is
   up under its job, and every expression returns data.
5. A store that does not answer (Kafka, Redis, PostgreSQL on a closed
   port) makes `feedline lag` exit 1 within its --timeout, naming it, while
   the rest is still printed.

Environment: E2E_OBS_USERS, E2E_OBS_POSTS, E2E_OBS_LIKES (300, 3000, 3000),
E2E_OBS_SEED (11), E2E_KEEP (keep the work folder).
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from itlib import BIN, KAFKA, ROOT  # noqa: E402
import procs  # noqa: E402
import test_projections as tp  # noqa: E402

USERS = int(os.environ.get("E2E_OBS_USERS", "300"))
POSTS = int(os.environ.get("E2E_OBS_POSTS", "3000"))
LIKES = int(os.environ.get("E2E_OBS_LIKES", "3000"))
SEED = int(os.environ.get("E2E_OBS_SEED", "11"))
FEEDLINE = os.path.join(BIN, "feedline")
DASHBOARD = os.path.join(ROOT, "ops", "observability", "grafana", "feedline.json")
# ops/pipeline's programs in its order (ports base+0..5), and the name each
# has in the topology (its metrics' processor label, feedline lag's program)
PROGRAMS = [("fanout", "fanout"), ("timeline", "timeline"), ("engagement", "engagement"),
            ("affinity", "affinity"), ("redis-sink", "redis"), ("pg-sink", "postgres")]
log = tp.log


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_ports():
    """A base with 6 free consecutive ports (the programs' metrics), and a
    free port each for the API and Prometheus."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        if all(port_free(base + i) for i in range(8)):
            return base, base + 6, base + 7
    raise RuntimeError("no 8 free consecutive ports")


class Env:
    def __init__(self, work):
        self.base, api, prom = free_ports()
        self.api = "127.0.0.1:%d" % api
        self.prom = "127.0.0.1:%d" % prom
        self.env = dict(os.environ, FEEDLINE_STACK_DIR=work,
                        FEEDLINE_BUILD_DIR=os.path.dirname(BIN),
                        FEEDLINE_PIPELINE_PORT_BASE=str(self.base), FEEDLINE_API=self.api,
                        FEEDLINE_PROMETHEUS=self.prom, FEEDLINE_SCRAPE_INTERVAL="1s")
        self.work = work

    def ops(self, script, *args):
        p = subprocess.run([os.path.join(ROOT, "ops", script), *args], env=self.env,
                           capture_output=True, text=True, timeout=300)
        if p.returncode:
            raise AssertionError("ops/%s %s: %s" % (script, " ".join(args), p.stderr[-3000:]))
        return p.stdout

    def running(self, only=None):
        return [procs.Running(name, self.base + i) for i, (_, name) in enumerate(PROGRAMS)
                if only is None or name in only]

    def stop(self, binary):
        """Stops one program of ops/pipeline: SIGTERM to its supervisor
        (ops/lib/supervise passes it on and starts nothing again), then
        waits until both are gone."""
        pids = []
        for f in (binary + ".supervisor.pid", binary + ".pid"):
            path = os.path.join(self.work, "pipeline", f)
            if os.path.exists(path):
                with open(path) as fh:
                    pids.append(int(fh.read()))
        assert pids, "no pid file of %s" % binary
        os.kill(pids[0], signal.SIGTERM)
        procs.wait_for(lambda: not any(alive(p) for p in pids), 60, "%s to stop" % binary)


def alive(pid):
    """Whether pid runs (a zombie nobody reaped does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def lag(*args, env=None, timeout=120):
    """(exit status, stdout, stderr, seconds) of `feedline lag ARGS`."""
    t0 = time.time()
    p = subprocess.run([FEEDLINE, "lag", *args], capture_output=True, text=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout, p.stderr, time.time() - t0


def lag_json(*args):
    rc, out, err, _ = lag("--json", *args)
    assert rc == 0, "feedline lag exited %d: %s" % (rc, err)
    doc = json.loads(out)
    assert doc["lag"] == sum(p["lag"] for p in doc["programs"]), doc["lag"]
    for p in doc["programs"]:
        assert p["error"] is None, p
        assert p["lag"] == sum(q["lag"] for q in p["partitions"]), p["program"]
    return doc


def rows(doc):
    return {(p["program"], q["topic"], q["partition"]): q for p in doc["programs"]
            for q in p["partitions"]}


# ---- the independent computation ------------------------------------------------------------


def stored_positions(doc):
    """{(program, topic, partition): next offset or None} read where each
    program keeps it: the group's committed offsets, the Redis marker,
    PostgreSQL's sink_offsets."""
    out = {}
    for p in doc["programs"]:
        tps = [(q["topic"], q["partition"]) for q in p["partitions"]]
        if p["positions"] == "kafka":
            c = Consumer({"bootstrap.servers": KAFKA, "group.id": p["group"],
                          "enable.auto.commit": False, "isolation.level": "read_committed"})
            try:
                got = c.committed([TopicPartition(t, n) for t, n in tps], timeout=20)
            finally:
                c.close()
            for g in got:
                out[(p["program"], g.topic, g.partition)] = g.offset if g.offset >= 0 else None
        elif p["positions"] == "redis":
            vals = tp.rconn().hmget("feedline:sink:{%s}" % p["program"],
                                    ["off:%s/%d" % tn for tn in tps])
            for tn, v in zip(tps, vals):
                out[(p["program"],) + tn] = int(v) if v else None
        else:
            exists = tp.pg_query("SELECT to_regclass('sink_offsets')")[0][0]
            have = {(t, n): o for t, n, o in tp.pg_query(
                "SELECT topic, partition, next_offset FROM sink_offsets WHERE sink = %s",
                (p["program"],))} if exists else {}
            for tn in tps:
                out[(p["program"],) + tn] = have.get(tn)
    return out


def ends_and_firsts(positions):
    """{(program, topic, partition): (end, first, records)}: the last
    stable offset, the first committed record at or after the position (the
    end when none) and the committed records from there to the end, read
    with a read_committed consumer."""
    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "feedline-test-lag-%d" % os.getpid(),
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True})
    out = {}
    try:
        for key, pos in sorted(positions.items(), key=lambda kv: kv[0]):
            _, topic, part = key
            lo, end = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10,
                                              cached=False)
            start = max(pos if pos is not None else lo, lo)
            first, records = end, 0
            if start < end:
                c.assign([TopicPartition(topic, part, start)])
                first = None
                deadline = time.time() + 30
                while time.time() < deadline:
                    m = c.poll(1)
                    if m is None:
                        continue
                    if m.error():
                        assert m.error().code() == -191, m.error()  # _PARTITION_EOF
                        break
                    if m.offset() < end:
                        first = m.offset() if first is None else first
                        records += 1
                    else:
                        break
                else:
                    raise AssertionError("no end of %s [%d]" % (topic, part))
                first = end if first is None else first
                c.unassign()
            out[key] = (end, first, records)
    finally:
        c.close()
    return out


def check_independent(doc):
    """Every row of `feedline lag` equals what this test computes itself."""
    positions = stored_positions(doc)
    got = rows(doc)
    assert set(positions) == set(got), set(positions) ^ set(got)
    computed = ends_and_firsts(positions)
    for key, q in got.items():
        end, first, records = computed[key]
        assert q["position"] == positions[key], (key, q, positions[key])
        assert q["end"] == end, (key, q, end)
        assert q["lag"] == end - first, (key, q, end, first)
        # what lies between the first record and the end: those records, and
        # transaction markers on the topics processors write
        assert records <= q["lag"], (key, q, records)
        if key[1] in ("users", "posts", "follows", "likes"):
            assert records == q["lag"], (key, q, records)


# ---- the programs' own gauges ------------------------------------------------------------------


def gauges(env, only=None):
    """{(program, topic, partition): feedline_consumer_lag} of the running
    programs."""
    out = {}
    for r in env.running(only):
        m = r.metrics()
        assert m is not None, "%s does not answer /metrics" % r.name
        for k, v in m.items():
            g = re.match(r'feedline_consumer_lag\{processor="([^"]+)",topic="([^"]+)",'
                         r'partition="(\d+)"\}$', k)
            if g:
                out[(g.group(1), g.group(2), int(g.group(3)))] = v
    return out


def api_sink_lag(env):
    try:
        with urllib.request.urlopen("http://%s/metrics" % env.api, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'^feedline_api_sink_lag\{sink="([^"]+)"\} (\d+)$', text, re.M)}


def check_idle(env):
    doc = lag_json()
    bad = [(k, q["lag"]) for k, q in rows(doc).items() if q["lag"] != 0]
    assert not bad, "lag once idle: %s" % bad[:8]
    assert doc["lag"] == 0
    check_independent(doc)
    g = gauges(env)
    assert set(g) == set(rows(doc)), set(g) ^ set(rows(doc))
    assert all(v == 0 for v in g.values()), {k: v for k, v in g.items() if v}
    procs.wait_for(lambda: api_sink_lag(env) == {"redis": 0, "postgres": 0}, 15,
                   "the API's sink lag gauges at 0 (%s)" % api_sink_lag(env))
    rc, out, err, _ = lag()
    assert rc == 0, err
    totals = [line.split() for line in out.splitlines() if "(total)" in line]
    assert len(totals) == len(PROGRAMS) and all(t[-1] == "0" for t in totals), out
    return doc


# ---- the dashboard ------------------------------------------------------------------------------


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    return [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]


def exercise_api(env):
    """A few requests of each kind, so that the API's request metrics exist."""
    token = procs.run_feedline(BIN, "token", "1000001").stdout.strip()
    for path, auth in (("/v1/feed?limit=5", True), ("/readyz", False), ("/v1/nothing", True),
                       ("/v1/feed", False)):
        req = urllib.request.Request("http://%s%s" % (env.api, path))
        if auth:
            req.add_header("Authorization", "Bearer " + token)
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except urllib.error.HTTPError:
            pass


def check_metric_names(env):
    live = set()
    for addr in ["127.0.0.1:%d" % (env.base + i) for i in range(len(PROGRAMS))] + [env.api]:
        with urllib.request.urlopen("http://%s/metrics" % addr, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    live.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    used = set()
    for title, expr in dashboard_exprs():
        names = set(re.findall(r"\bfeedline_[a-z0-9_]+", expr))
        missing = names - live
        assert not missing, "panel %r uses %s, which no program exports" % (title, missing)
        used |= names
    log("dashboard: %d metric names, all in the live /metrics" % len(used))


def prom_query(env, expr):
    url = "http://%s/api/v1/query?%s" % (env.prom, urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def check_prometheus(env):
    env.ops("observe", "up")
    try:
        def targets_up():
            with urllib.request.urlopen("http://%s/api/v1/targets" % env.prom, timeout=5) as r:
                ts = json.load(r)["data"]["activeTargets"]
            jobs = {t["labels"]["job"]: (t["labels"]["instance"], t["health"]) for t in ts}
            want = {"feedline-" + b: "127.0.0.1:%d" % (env.base + i)
                    for i, (b, _) in enumerate(PROGRAMS)}
            want["feedline-api"] = env.api
            return set(jobs) == set(want) and all(
                jobs[j] == (want[j], "up") for j in want)
        procs.wait_for(targets_up, 60, "every program's target up in Prometheus")
        pending = dict(dashboard_exprs())
        deadline = time.time() + 60
        while pending and time.time() < deadline:
            for title, expr in list(pending.items()):
                if prom_query(env, expr.replace("$__rate_interval", "5s")):
                    del pending[title]
            time.sleep(1)
        assert not pending, "dashboard expressions without data: %s" % pending
        assert len(prom_query(env, 'up{job=~"feedline-.*"} == 1')) == len(PROGRAMS) + 1
        log("prometheus: every target up, every dashboard expression answers")
    finally:
        env.ops("observe", "down")


# ---- stores that do not answer ------------------------------------------------------------------


def check_unreachable():
    closed = [p for p in range(1024, 1100) if port_free(p)][0]
    for var, value, what, programs in (
            ("FEEDLINE_REDIS", "127.0.0.1:%d" % closed, "Redis at", {"redis"}),
            ("FEEDLINE_POSTGRES", "host=127.0.0.1 port=%d dbname=feedline user=feedline" % closed,
             "PostgreSQL at", {"postgres"}),
            ("FEEDLINE_KAFKA", "127.0.0.1:%d" % closed, "Kafka at", None)):
        rc, out, err, took = lag("--json", "--timeout", "2", env=dict(os.environ, **{var: value}))
        assert rc == 1, (var, rc, err)
        assert what in err, (var, err)
        assert took < 15, (var, took)
        doc = json.loads(out)
        for p in doc["programs"]:
            down = programs is None or p["program"] in programs
            assert (p["lag"] is None) == down and (p["error"] is not None) == down, (var, p)
        assert doc["lag"] is None
    rc, _, err, _ = lag("--timeout", "x")
    assert rc == 2, (rc, err)
    log("unreachable stores: exit 1 within the timeout, naming the store")


def main():
    work = tempfile.mkdtemp(prefix="feedline-observe-")
    log("work folder %s" % work)
    gen = tp.fresh_workload(work, SEED, USERS, POSTS, LIKES, parts=2)
    env = Env(work)
    try:
        # 1. a backlog nobody consumes yet
        tp.produce_part(gen, 1)
        doc = lag_json()
        assert all(q["position"] is None for q in rows(doc).values())
        for p in doc["programs"]:
            if p["program"] in ("fanout", "engagement", "redis", "postgres"):
                assert p["lag"] > 0, p
        check_independent(doc)
        log("backlog: lag %d before anything ran, as computed independently" % doc["lag"])
        # 2. the pipeline works it off
        env.ops("pipeline", "up")
        procs.wait_idle(env.running(), timeout_s=300)
        check_idle(env)
        log("idle: every partition at 0, as the gauges and the API say")
        # 3. a stopped sink falls behind
        env.stop("pg-sink")
        tp.produce_part(gen, 2)
        others = {n for _, n in PROGRAMS if n != "postgres"}
        procs.wait_idle(env.running(others), timeout_s=300)
        doc = lag_json()
        by = {p["program"]: p["lag"] for p in doc["programs"]}
        assert by["postgres"] > 0 and all(by[n] == 0 for n in others), by
        check_independent(doc)
        g = gauges(env, others)
        assert g and all(v == 0 for v in g.values()), g
        procs.wait_for(lambda: api_sink_lag(env).get("postgres") == by["postgres"], 15,
                       "the API's gauge to show the pg sink's lag %d (%s)"
                       % (by["postgres"], api_sink_lag(env)))
        log("pg sink stopped: lag %d, as computed independently and by the API" % by["postgres"])
        env.ops("pipeline", "up")
        procs.wait_idle(env.running(), timeout_s=300)
        check_idle(env)
        log("pg sink restarted: caught up to 0")
        # 4. the dashboard against the live programs and Prometheus
        exercise_api(env)
        check_metric_names(env)
        check_prometheus(env)
        # 5. stores that do not answer
        check_unreachable()
    finally:
        try:
            env.ops("observe", "down")
        finally:
            env.ops("pipeline", "down")
        if not os.environ.get("E2E_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print("ok   observe")


if __name__ == "__main__":
    main()
