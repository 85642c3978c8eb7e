"""Helpers shared by feedline's integration tests (stdlib only).

Tests run against the local stack that ops/stack runs with the same
environment: endpoints, ports and folders come from ops/lib/common.sh
(FEEDLINE_KAFKA or FEEDLINE_KAFKA_PORT, FEEDLINE_STACK_DIR, ...), and the
endpoints are exported so that the binaries the tests start agree.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.environ.get("FEEDLINE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def _stack_settings():
    """What ops/lib/common.sh makes of the environment (FEEDLINE_KAFKA_PORT,
    FEEDLINE_STACK_DIR, FEEDLINE_BUILD_DIR, ... with the same defaults as
    ops/stack): endpoints, topology and schema paths, and its FL_* folders."""
    names = ("FEEDLINE_KAFKA", "FEEDLINE_REDIS", "FEEDLINE_POSTGRES", "FEEDLINE_TOPOLOGY",
             "FEEDLINE_SCHEMAS", "FL_STACK_DIR", "FL_BIN", "FL_KAFKA_LIBS", "FL_PG_BIN")
    script = '. "$1/ops/lib/common.sh"; shift; for n; do printf "%s\\0" "${!n}"; done'
    out = subprocess.run(["bash", "-c", script, "common.sh", ROOT, *names], capture_output=True,
                         text=True, check=True).stdout
    return dict(zip(names, out.split("\0")))


# The stack the tests talk to is the one ops/stack runs with this
# environment; the binaries they start read FEEDLINE_KAFKA (not the port
# variables), so it is exported for them.
STACK = _stack_settings()
for _name in ("FEEDLINE_KAFKA", "FEEDLINE_REDIS", "FEEDLINE_POSTGRES", "FEEDLINE_TOPOLOGY",
              "FEEDLINE_SCHEMAS"):
    os.environ[_name] = STACK[_name]
BIN = os.environ.get("FEEDLINE_BIN_DIR", STACK["FL_BIN"])
FEEDLINE = os.path.join(BIN, "feedline")
KAFKA = STACK["FEEDLINE_KAFKA"]
STACK_DIR = STACK["FL_STACK_DIR"]

# A prefix unique to this run, so tests can share topics with earlier runs.
RUN = "it-%d-%d" % (time.time_ns(), os.getpid())


def feedline(*args, stdin=None, check=True, binary=False):
    """Runs `feedline ARGS`, returns the CompletedProcess."""
    p = subprocess.run([FEEDLINE, *args], input=stdin, capture_output=True,
                       text=not binary, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("feedline %s exited %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def tail(topic, prefix=RUN):
    """Records of topic (all partitions, from the beginning) whose value's
    event_id starts with prefix."""
    out = feedline("tail", topic, "--from-beginning", "--exit-at-end").stdout
    recs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in recs if isinstance(r.get("value"), dict)
            and r["value"].get("event_id", "").startswith(prefix)]


def kafka_libs():
    return STACK["FL_KAFKA_LIBS"]


class Suite:
    """Tiny runner: each check prints ok/FAIL; the last line is the plain
    'N passed, N failed' summary."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, fn):
        name = fn.__name__
        try:
            fn()
        except Exception as e:  # report and go on to the next check
            self.failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        else:
            self.passed += 1
            print("ok   %s" % name, flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
