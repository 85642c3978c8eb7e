"""Helpers the benchmarks under ops/bench share: running commands in the
source tree, producing JSON lines, CPU time and memory of processes, the
pids of the stack's servers, Redis and PostgreSQL connections, the
machine's size, percentiles.

Everything talks to the stack that ops/stack runs with the same
environment (tests/integration/itlib.py reads FEEDLINE_STACK_DIR,
FEEDLINE_KAFKA_PORT, ... through ops/lib/common.sh), so a benchmark run
with a second stack's variables measures that stack.
"""
import math
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from itlib import BIN, STACK, STACK_DIR  # noqa: E402  (the stack ops/stack runs, env included)

REDIS_HOST, REDIS_PORT = STACK["FEEDLINE_REDIS"].rsplit(":", 1)
PG_DSN = STACK["FEEDLINE_POSTGRES"]
PORT_BASE = int(os.environ.get("FEEDLINE_PIPELINE_PORT_BASE") or 19101)
API_ADDR = os.environ.get("FEEDLINE_API") or "127.0.0.1:18080"


def sh(*args, **kw):
    return subprocess.run(args, check=True, cwd=ROOT, **kw)


def warn(msg):
    print("warning: " + msg, file=sys.stderr, flush=True)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def produce(topic, path):
    """Produces a JSON lines file of events to an input topic."""
    with open(path) as f:
        subprocess.run([os.path.join(BIN, "feedline"), "produce", topic], stdin=f, check=True,
                       cwd=ROOT, stderr=subprocess.DEVNULL)


def cpu_seconds(pid):
    """User plus system CPU time of a process so far, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_of(pids):
    """Summed CPU seconds of pids (processes that ended count as 0)."""
    return sum(cpu_seconds(p) or 0 for p in pids if p)


def pidfile(path):
    """The pid on the first line of path (PostgreSQL's postmaster.pid has
    more lines), or None."""
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def broker_pid():
    """The pid of the stack's Kafka broker (FEEDLINE_STACK_DIR, as ops/stack
    keeps it), or None with a warning: the Kafka CPU figure is left out."""
    path = os.path.join(STACK_DIR, "kafka", "kafka.pid")
    pid = pidfile(path)
    if pid is None:
        warn("no Kafka broker pid in %s: no Kafka CPU figure" % path)
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
    except OSError:
        cmdline = b""
    if b"kafka.Kafka" not in cmdline:
        warn("pid %d of %s is not a running Kafka broker: no Kafka CPU figure" % (pid, path))
        return None
    return pid


def server_pids():
    """{"redis": [pid], "postgres": [pids], "kafka": [pid]} of the stack's
    servers (PostgreSQL's backends as they are now)."""
    out = {}
    pid = pidfile(os.path.join(STACK_DIR, "redis", "redis.pid"))
    if pid:
        out["redis"] = [pid]
    else:
        warn("no Redis pid: no Redis CPU figure")
    master = pidfile(os.path.join(STACK_DIR, "pg", "data", "postmaster.pid"))
    if master:
        kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True,
                              text=True).stdout.split()
        out["postgres"] = [master] + [int(k) for k in kids]
    else:
        warn("no PostgreSQL pid: no PostgreSQL CPU figure")
    bp = broker_pid()
    if bp:
        out["kafka"] = [bp]
    return out


def rconn():
    import redis
    return redis.Redis(host=REDIS_HOST, port=int(REDIS_PORT), decode_responses=True)


def reset_projections():
    """Empties Redis and PostgreSQL (the sinks then start from offset 0)."""
    import psycopg2
    rconn().flushall()
    with psycopg2.connect(PG_DSN) as c, c.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
        cur.execute("CREATE SCHEMA public")
    c.close()


def set_topology_number(text, key, value):
    """The topology text with the number of its one line `KEY: N` set to
    value; key is a regular expression for the line's start (indentation
    included), e.g. r"\s+celebrity_threshold"."""
    text, n = re.subn(r"(?m)^(%s:[ \t]*)\d+" % key, r"\g<1>%d" % value, text)
    if n != 1:
        raise RuntimeError("no single line %r in the topology" % key)
    return text


def percentile(sorted_vals, q):
    """The nearest-rank q-quantile (0 < q <= 1) of a sorted list, or None."""
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]


def machine():
    """Cores, memory, CPU model and load average of this machine."""
    info = {"cores": os.cpu_count()}
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["load_average_at_start"] = os.getloadavg()
    return info


def machine_line():
    m = machine()
    return "machine: %d cores, %.0f GiB" % (m["cores"], m.get("memory_gib", 0))
