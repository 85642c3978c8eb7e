"""Running feedline processor binaries for end-to-end tests and benchmarks:
start, kill -9, restart, read their /metrics, wait until they are idle."""
import itertools
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

_port_base = os.environ.get("FEEDLINE_METRICS_PORT_BASE")
_next_port = itertools.count(int(_port_base)) if _port_base else None


def free_port():
    """A metrics port for a processor, so that runs on one machine (two
    stacks, a test next to a benchmark) never share one: the port the
    kernel gives a bind to 127.0.0.1:0, free at that moment. Linux hands
    out odd ports to bind() and even ones to connect(), so an outgoing
    connection is unlikely to take it before the processor binds it.
    FEEDLINE_METRICS_PORT_BASE=N hands out N, N+1, ... instead."""
    if _next_port is not None:
        return next(_next_port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One processor or sink instance: feedline-<name> with its own instance
    id, state directory (None for a sink), metrics port (None: a
    free_port(), kept across restarts) and log file."""

    def __init__(self, bindir, name, instance, state_dir, port, log_dir):
        self.bindir, self.name, self.instance = bindir, name, instance
        self.state_dir, self.port = state_dir, free_port() if port is None else port
        self.log_path = os.path.join(log_dir, "%s-%s.log" % (name, instance))
        self.p = None
        self.starts = 0
        self.log_start = 0

    def start(self, env=None):
        """Starts an incarnation; env: variables added to the environment
        of this incarnation only (e.g. FEEDLINE_FAILPOINT)."""
        self.log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self._spawn(dict(os.environ, **env) if env else None)

    def _spawn(self, env):
        """Starts feedline-<name> with environment env (None: ours), its
        output appended to its log."""
        log = open(self.log_path, "a")
        args = [os.path.join(self.bindir, "feedline-" + self.name), "--instance",
                str(self.instance), "--metrics", "127.0.0.1:%d" % self.port]
        if self.state_dir is not None:  # a sink keeps no local state
            args += ["--state-dir", self.state_dir]
        self.p = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        log.close()
        self.starts += 1

    def wait(self, timeout=None):
        """The exit status of the incarnation (negative: the signal that
        ended it), or None when it still runs after timeout seconds."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_since_start(self):
        """What the current incarnation wrote to its log."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")

    def kill9(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.kill9()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def metrics(self):
        return scrape(self.port)


class Running:
    """A processor started elsewhere, known by its metrics port."""

    def __init__(self, name, port):
        self.name, self.instance, self.port, self.log_path = name, 0, port, "its log"

    def alive(self):
        return True

    def metrics(self):
        return scrape(self.port)


def scrape(port):
    """{metric{labels}: value} from /metrics on port, or None when it does
    not answer."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def total(metrics, name):
    return sum(v for k, v in metrics.items() if re.match(name + r"(\{|$)", k))


def wait_idle(procs, quiet_s=4.0, timeout_s=900, check_alive=True):
    """Waits until every proc answers metrics with partitions assigned and a
    lag reported for each of them, the summed consumer lag is 0, and no
    proc's records_in moved for quiet_s seconds."""
    deadline = time.time() + timeout_s
    last, since = None, time.time()
    while time.time() < deadline:
        if check_alive:
            for p in procs:
                if not p.alive():
                    raise RuntimeError("%s-%s exited; see %s" % (p.name, p.instance, p.log_path))
        ms = [p.metrics() for p in procs]
        ready = all(m is not None and total(m, "feedline_assigned_partitions") > 0
                    and sum(1 for k in m if k.startswith("feedline_consumer_lag"))
                    >= total(m, "feedline_assigned_partitions") for m in ms)
        if not ready:
            last, since = None, time.time()
            time.sleep(0.5)
            continue
        lag = sum(total(m, "feedline_consumer_lag") for m in ms)
        cur = tuple(total(m, "feedline_records_in_total") for m in ms)
        if cur != last or lag > 0:
            last, since = cur, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.5)
    raise RuntimeError("pipeline not idle after %ds" % timeout_s)


def reset_topics(kafka, feedline_bin):
    """Deletes every topic of the topology (all but Kafka's own) and creates
    them again, so that a run starts from empty topics on a broker that
    may hold an earlier run's data."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": kafka})
    names = [t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")]
    if names:
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            fut.result()
    deadline = time.time() + 60
    while set(names) & set(admin.list_topics(timeout=10).topics):
        if time.time() > deadline:
            raise RuntimeError("topics still listed 60s after their deletion")
        time.sleep(0.5)
    subprocess.run([feedline_bin, "topics", "create", "--wait", "60"], check=True,
                   capture_output=True, text=True)


# ---- helpers for the fault tests (tests/e2e/test_faults.py) -------------------------------------
# Parameterised by the bin folder rather than by a test's globals, so that
# any end-to-end test can use them.


class FaultProc(Proc):
    """A Proc started with extra environment (FEEDLINE_FAILPOINT,
    FEEDLINE_TOPOLOGY, ...), that can be stopped and continued (SIGSTOP,
    SIGCONT) and tells its peak resident memory."""

    def __init__(self, bindir, name, instance, state_dir, port, log_dir, env=None):
        super().__init__(bindir, name, instance, state_dir, port, log_dir)
        self.env = dict(env or {})

    def start(self, env=None):
        """Starts with os.environ, then self.env, then env (this start
        only) on top."""
        full = dict(os.environ)
        full.update(self.env)
        full.update(env or {})
        self._spawn(full)

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def state(self):
        """The process state letter of /proc/PID/stat (R, S, T for stopped,
        ...), None when it exited."""
        if not self.alive():
            return None
        try:
            with open("/proc/%d/stat" % self.p.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None

    def status_kib(self, field):
        """A memory field of /proc/PID/status (VmHWM, VmRSS) in KiB, None
        when the process is gone."""
        return proc_status_kib(self.p.pid, field) if self.alive() else None

    def stop(self):
        if self.state() == "T":
            self.signal(signal.SIGCONT)
        super().stop()

    def log_lines(self):
        """The JSON log lines of every run of this proc, parsed (others
        skipped)."""
        import json
        out = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out


def proc_status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def wait_for(cond, timeout_s, what, step_s=0.5):
    """Polls cond() until it returns something true (returned), or raises
    AssertionError naming what after timeout_s."""
    deadline = time.time() + timeout_s
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out after %ds waiting for %s" % (timeout_s, what))
        time.sleep(step_s)


def run_feedline(bindir, *args, stdin=None, timeout=600):
    """`feedline ARGS` (stdin: a file object or None); the
    CompletedProcess, raising on a non-zero exit."""
    p = subprocess.run([os.path.join(bindir, "feedline"), *args], stdin=stdin,
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("feedline %s exited %d: %s" % (" ".join(args), p.returncode,
                                                            p.stderr[-2000:]))
    return p


def produce_jsonl(bindir, topic, path):
    """Produces a JSON lines file of events to an input topic; every line
    must be produced."""
    with open(path) as f:
        return run_feedline(bindir, "produce", topic, stdin=f, timeout=1200)


def tail_to_file(bindir, topic, path):
    """Every committed record of topic, as `feedline tail` prints them,
    into path."""
    with open(path, "w") as f:
        p = subprocess.run([os.path.join(bindir, "feedline"), "tail", topic, "--from-beginning",
                            "--exit-at-end"], stdout=f, stderr=subprocess.PIPE, text=True,
                           timeout=1200)
    if p.returncode != 0:
        raise AssertionError("feedline tail %s: %s" % (topic, p.stderr[-2000:]))


def topology_settings(bindir):
    """The topology's settings block (as FEEDLINE_TOPOLOGY names it) as a
    dict of ints."""
    out, in_settings = {}, False
    for line in run_feedline(bindir, "topology").stdout.splitlines():
        if not line.startswith(" "):
            in_settings = line.strip() == "settings:"
            continue
        if in_settings and ":" in line:
            k, v = line.strip().split(":", 1)
            out[k] = int(v)
    return out


def topic_partitions(bindir, topic):
    """A topic's partition count from `feedline topology`; a topic entry is
    the one whose name is followed by partitions (processors, stores and
    sinks have names too)."""
    lines = run_feedline(bindir, "topology").stdout.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "- name: " + topic and i + 1 < len(lines) \
                and lines[i + 1].strip().startswith("partitions:"):
            return int(lines[i + 1].split(":")[1])
    raise KeyError(topic)


def expected_timelines(bindir, work):
    """The oracle's document (tests/e2e/oracle.py) for what the posts and
    follows topics hold now, under the topology's settings."""
    import oracle
    posts, follows = os.path.join(work, "posts.tail"), os.path.join(work, "follows.tail")
    tail_to_file(bindir, "posts", posts)
    tail_to_file(bindir, "follows", follows)
    return oracle.compute(posts, follows, topology_settings(bindir),
                          topic_partitions(bindir, "feedline.timeline-ops"))


def _timelines(stdout):
    import json
    res = {}
    for line in stdout.splitlines():
        o = json.loads(line)
        assert str(o["user_id"]) not in res, "user %s printed twice" % o["user_id"]
        res[str(o["user_id"])] = o["timeline"]
    return res


def changelog_timelines(bindir):
    """{user id: [post ids]} rebuilt from the timelines changelog."""
    return _timelines(run_feedline(bindir, "timeline", "--all").stdout)


def store_timelines(bindir, dirs):
    """{user id: [post ids]} from local timelines store folders (of
    stopped processors)."""
    return _timelines(run_feedline(bindir, "timeline", "--all", "--store", *dirs).stdout)


def timeline_mismatches(expected, got, cap):
    """What test_e2e.py's comparison checks, as a list of mismatches (user,
    what): exact equality for users the oracle does not flag as trimmed;
    for flagged ones at most cap entries drawn from the untrimmed set."""
    bad = []
    for u in set(expected["users"]) | set(got):
        e = expected["users"].get(u, {"timeline": [], "trimmed": False})
        g = got.get(u, [])
        if not e.get("trimmed"):
            if g != e["timeline"]:
                bad.append((u, "expected %d entries %s..., got %d %s..." % (
                    len(e["timeline"]), e["timeline"][:4], len(g), g[:4])))
        else:
            allowed = set(e.get("untrimmed", e["timeline"]))
            if len(g) > cap or not set(g) <= allowed:
                bad.append((u, "trimmed timeline not at most %d entries of the untrimmed set"
                            % cap))
    return bad


def wait_topics_ready(kafka, feedline_bin, timeout_s=60):
    """Waits until every partition of every topic of the topology answers
    a watermark query: right after their creation a partition can still
    have no leader, and a processor started then may stop on it."""
    from confluent_kafka import Consumer, TopicPartition
    names = []
    lines = subprocess.run([feedline_bin, "topology"], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- name: ") and i + 1 < len(lines) \
                and lines[i + 1].strip().startswith("partitions:"):
            names.append((line.split(":", 1)[1].strip(), int(lines[i + 1].split(":")[1])))
    c = Consumer({"bootstrap.servers": kafka, "group.id": "feedline-test-ready"})
    try:
        deadline = time.time() + timeout_s
        pending = [(t, p) for t, n in names for p in range(n)]
        while pending:
            left = []
            for t, p in pending:
                try:
                    c.get_watermark_offsets(TopicPartition(t, p), timeout=5)
                except Exception:  # KafkaException: no leader yet
                    left.append((t, p))
            pending = left
            if pending:
                if time.time() > deadline:
                    raise RuntimeError("partitions without a leader after %ds: %s"
                                       % (timeout_s, pending[:5]))
                time.sleep(0.5)
    finally:
        c.close()


def use_celebrity_settings(bindir, summary, work):
    """Makes the run's topology one under which the workload's celebrities
    cross the threshold and drop below it: the topology itself when its
    settings fit, else a copy in work with the settings the workload names
    (summary.json's celebrity_settings). FEEDLINE_TOPOLOGY points the
    programs started afterwards, and `feedline topology`, at that file,
    which is returned."""
    import workload
    want = summary["celebrity_settings"]
    assert want, "workload of %d users has no celebrity scenario" % summary["users"]
    have = topology_settings(bindir)
    if workload.celebrity_settings_fit(summary["celebrity_followers"],
                                       have["celebrity_threshold"], have["celebrity_hysteresis"]):
        return os.environ["FEEDLINE_TOPOLOGY"]
    with open(os.environ["FEEDLINE_TOPOLOGY"]) as f:
        text = f.read()
    for k, v in want.items():
        text, n = re.subn(r"(?m)^([ \t]+%s:[ \t]*)\d+" % k, r"\g<1>%d" % v, text)
        assert n == 1, "%s not found once in %s" % (k, os.environ["FEEDLINE_TOPOLOGY"])
    path = os.path.join(work, "topology.yaml")
    with open(path, "w") as f:
        f.write(text)
    os.environ["FEEDLINE_TOPOLOGY"] = path
    got = topology_settings(bindir)
    assert all(got[k] == v for k, v in want.items()), (got, want)
    return path


def group_members(kafka, group):
    """Member ids of a consumer group now."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": kafka, "log_level": 4})
    return [m.id for g in admin.list_groups(group, timeout=10) for m in g.members]


def seeded_workload(out, seed, users, posts):
    """tests/e2e/workload.py's seeded workload without celebrities (their
    threshold would need a topology copy), starting now, into out."""
    import sys
    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "workload.py"),
                    "--seed", str(seed), "--users", str(users), "--posts", str(posts),
                    "--celebrities", "0", "--start-ms", str(int(time.time() * 1000)),
                    "--out", out], check=True, capture_output=True, timeout=600)
    return out


class NewerPosts:
    """More work for programs that run: posts by a workload's users (a few
    deleted again), every one newer than any event of the workloads in
    gen_dirs (workload.py folders). Posts only, on one topic, so that the
    fan-out's merge order stays the oracle's however they arrive: a follows
    chunk produced next to them could be merged in arrival order (README,
    "the merge of a task's inputs"). Post ids follow workload.py's rule."""

    def __init__(self, gen_dirs, users, seed, work, user_base=1_000_000):
        import json
        import random
        self.t = 0
        for d in gen_dirs:
            for name in ("follows.jsonl", "posts.jsonl"):
                with open(os.path.join(d, name)) as f:
                    for line in f:
                        self.t = max(self.t, json.loads(line)["occurred_at"])
        self.users, self.base, self.work = users, user_base, work
        self.rng, self.n, self.chunks = random.Random(seed), 0, 0

    def produce(self, bindir, n):
        """Produces n posts and about n / 20 deletes of them to posts."""
        import json
        evs = []
        for _ in range(n):
            self.t += 1
            self.n += 1
            author = self.base + self.rng.randrange(self.users)
            post = self.t * 1000 + 1
            evs.append({"type": "PostCreated", "event_id": "newer-%d-%d" % (os.getpid(), self.n),
                        "occurred_at": self.t, "post_id": post, "author_id": author,
                        "created_at": self.t, "text": "newer post",
                        "visibility": self.rng.choice(("PUBLIC", "PUBLIC", "FOLLOWERS")),
                        "reply_to": None})
            if self.rng.random() < 0.05:
                self.t += 1
                self.n += 1
                evs.append({"type": "PostDeleted",
                            "event_id": "newer-%d-%d" % (os.getpid(), self.n),
                            "occurred_at": self.t, "post_id": post, "author_id": author})
        path = os.path.join(self.work, "newer-posts-%d.jsonl" % self.n)
        with open(path, "w") as f:
            for d in evs:
                f.write(json.dumps(d, separators=(",", ":")) + "\n")
        produce_jsonl(bindir, "posts", path)
        self.chunks += 1
