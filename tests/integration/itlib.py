"""Helpers shared by feedline's integration tests (stdlib only).

Tests run from the repository root against the local stack; endpoints come
from the same environment variables the binaries read, with the stack's
defaults.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.environ.get("FEEDLINE_SOURCE_DIR", os.getcwd())
BIN = os.environ.get("FEEDLINE_BIN_DIR", os.path.join(ROOT, "build", "bin"))
FEEDLINE = os.path.join(BIN, "feedline")
KAFKA = os.environ.get("FEEDLINE_KAFKA", "127.0.0.1:19092")

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
    out = subprocess.run(["bash", "-c", ". ops/lib/common.sh; echo $FL_KAFKA_LIBS"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


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
