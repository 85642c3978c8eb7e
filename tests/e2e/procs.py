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
    """One processor instance: feedline-<name> with its own instance id,
    state directory, metrics port (None: a free_port(), kept across
    restarts) and log file."""

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
        log = open(self.log_path, "a")
        self.p = subprocess.Popen(
            [os.path.join(self.bindir, "feedline-" + self.name), "--instance", str(self.instance),
             "--state-dir", self.state_dir, "--metrics", "127.0.0.1:%d" % self.port],
            stdout=log, stderr=log, env=dict(os.environ, **env) if env else None)
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
