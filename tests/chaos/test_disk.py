#!/usr/bin/env python3
"""Chaos, the state folder's disk: feedline-fanout and feedline-timeline
keep their stores on a small tmpfs of their own on the real stack, and
while they work

1. the disk fills up (a filler file takes every free byte), and
2. the disk is read-only (remounted `ro`) when they start.

New posts keep coming. A program whose store cannot be written (disk
full) or opened for writing (read-only) must stop with a clear error: a
log line naming the store's folder and the system's reason (No space
left on device, Read-only file system) and exit status 1, not a signal
(RocksDB built with assertions aborts in its close after a failed
append; the runtime must not get there). Then the space is freed or the
disk made writable again, the stopped programs are started again, and
once they are idle every user's timeline, in the changelog and in the
stores, equals the oracle's (tests/e2e/oracle.py): no corruption, no
batch lost or applied twice (a batch whose Kafka transaction committed
but whose store write failed is restored from the changelog).

Mounting needs root: without it the test is skipped (exit status 77).
One line sums it up: `chaos disk: ...`.
Short form (CI): 2,000 users, 15,000 posts, chunks of 15,000 posts.
Long form, by hand:
  CHAOS_DISK_USERS=12000 CHAOS_DISK_POSTS=100000 CHAOS_DISK_ROUNDS=3 CHAOS_DISK_MB=1024 \
    tests/chaos/test_disk.py
Environment: CHAOS_DISK_USERS, CHAOS_DISK_POSTS, CHAOS_DISK_CHUNK (posts per
chunk), CHAOS_DISK_ROUNDS (times both faults are played, 1), CHAOS_DISK_MB
(the tmpfs size, 512), CHAOS_SEED (5), CHAOS_KEEP (keep the work folder).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.dont_write_bytecode = True

from itlib import BIN, KAFKA  # noqa: E402
import procs  # noqa: E402
from procs import FaultProc, wait_for, wait_idle  # noqa: E402

USERS = int(os.environ.get("CHAOS_DISK_USERS", "2000"))
POSTS = int(os.environ.get("CHAOS_DISK_POSTS", "15000"))
CHUNK = int(os.environ.get("CHAOS_DISK_CHUNK", "15000"))
ROUNDS = int(os.environ.get("CHAOS_DISK_ROUNDS", "1"))
DISK_MB = int(os.environ.get("CHAOS_DISK_MB", "512"))
SEED = int(os.environ.get("CHAOS_SEED", "5"))
KEEP = bool(os.environ.get("CHAOS_KEEP"))
FEEDLINE = os.path.join(BIN, "feedline")
WORK = tempfile.mkdtemp(prefix="feedline-disk-")
STATE = os.path.join(WORK, "state")
MAX_CHUNKS = 12


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def sh(*args):
    return subprocess.run(args, capture_output=True, text=True)


def free_mb():
    st = os.statvfs(STATE)
    return st.f_bavail * st.f_frsize // (1 << 20)


def check(what, ps, expected=None):
    """Every timeline in the changelog and in the stopped programs' stores
    against the oracle; returns the number of users compared."""
    for p in ps:
        p.stop()
    if expected is None:
        oracle_dir = os.path.join(WORK, "oracle-%d" % time.time_ns())
        os.makedirs(oracle_dir)
        expected = procs.expected_timelines(BIN, oracle_dir)
    cap = procs.topology_settings(BIN)["timeline_cap"]
    parts = procs.topic_partitions(BIN, "feedline.timelines-changelog")
    dirs = [os.path.join(STATE, "timeline-0", "timelines-%d" % p) for p in range(parts)]
    for where, got in (("changelog", procs.changelog_timelines(BIN)),
                       ("stores", procs.store_timelines(BIN, dirs))):
        bad = procs.timeline_mismatches(expected, got, cap)
        assert not bad, "%s: %d users differ from the oracle in the %s (first 3): %s" % (
            what, len(bad), where, bad[:3])
    log("%s: %d users' timelines equal the oracle's (changelog and stores)" % (
        what, len(expected["users"])))
    return len(expected["users"])


def store_failure(p, reason):
    """The log line of p's last run that names a store folder and reason."""
    for line in reversed(p.log_lines()):
        msg = line.get("msg", "")
        if reason in msg and STATE in msg:
            return msg
    return None


def until_a_store_fails(ps, posts, reason):
    """Produces chunks of posts until a program stops; then
    stopped_by_store()."""
    for k in range(MAX_CHUNKS):
        posts.produce(BIN, CHUNK)
        deadline = time.time() + 10
        while time.time() < deadline and all(p.alive() for p in ps):
            time.sleep(0.2)
        if not all(p.alive() for p in ps):
            break
        log("chunk %d of %d posts in, every program still running (%d MiB free)" % (
            k + 1, CHUNK, free_mb()))
    assert not all(p.alive() for p in ps), "no store failed after %d chunks of %d posts (%s)" % (
        MAX_CHUNKS, CHUNK, reason)
    return stopped_by_store(ps, reason, 2)  # a second program may be on its way out too


def stopped_by_store(ps, reason, wait_s):
    """Waits up to wait_s for every program of ps to stop; checks how
    each stopped one stopped (status 1, a log line naming its store and
    reason). Returns {name: that line}; at least one must have stopped."""
    deadline = time.time() + wait_s
    while time.time() < deadline and any(p.alive() for p in ps):
        time.sleep(0.2)
    assert not all(p.alive() for p in ps), "no program stopped within %ds (%s)" % (wait_s, reason)
    out = {}
    for p in ps:
        if p.alive():
            continue
        rc = p.p.poll()
        tail = "".join(p.log_since_start().splitlines(True)[-5:])
        assert rc == 1, "%s exited with status %s, not 1 (a crash?); its log ends:\n%s" % (
            p.name, rc, tail)
        msg = store_failure(p, reason)
        assert msg, "%s exited without a log line naming its store and %r; its log ends:\n%s" % (
            p.name, reason, tail)
        out[p.name] = msg
        log("%s stopped, status 1: %s" % (p.name, msg[:200]))
    return out


def restart(ps):
    for p in ps:
        if not p.alive():
            p.start()
    time.sleep(2)
    wait_idle(ps, timeout_s=600)


def main():
    t0 = time.time()
    os.makedirs(STATE)
    r = sh("mount", "-t", "tmpfs", "-o", "size=%dm" % DISK_MB, "feedline-chaos", STATE)
    if r.returncode != 0:
        print("chaos disk: skipped (cannot mount a tmpfs: %s)" % r.stderr.strip())
        shutil.rmtree(WORK, ignore_errors=True)
        sys.exit(77)
    ps = []
    summary = []
    try:
        procs.reset_topics(KAFKA, FEEDLINE)
        procs.wait_topics_ready(KAFKA, FEEDLINE)
        for g in ("feedline-fanout", "feedline-timeline"):
            wait_for(lambda: not procs.group_members(KAFKA, g), 60, "group %s to have no member" % g)
        gen = os.path.join(WORK, "gen")
        procs.seeded_workload(gen, SEED, USERS, POSTS)
        for t in ("follows", "posts"):
            procs.produce_jsonl(BIN, t, os.path.join(gen, t + ".jsonl"))
        posts = procs.NewerPosts([gen], USERS, SEED, WORK)
        ps = [FaultProc(BIN, n, 0, STATE, None, WORK) for n in ("fanout", "timeline")]
        restart(ps)
        users = check("the workload on a %d MiB disk" % DISK_MB, ps)
        for rnd in range(ROUNDS):
            # 1. the disk full
            restart(ps)
            filler = os.path.join(STATE, "filler")
            sh("dd", "if=/dev/zero", "of=" + filler, "bs=1M")
            log("round %d: the disk is full (%d MiB free)" % (rnd + 1, free_mb()))
            failed = until_a_store_fails(ps, posts, "No space left on device")
            os.unlink(filler)
            restart(ps)
            users = check("disk full, then space freed", ps)
            summary.append("disk full: %s stopped with status 1" % " and ".join(sorted(failed)))
            # 2. the disk read-only (a volume mounted read-only by mistake,
            # or after errors): a mount with files open for writing cannot
            # turn read-only, so the programs stop first and start on it
            restart(ps)
            for p in ps:
                p.stop()
            r = sh("mount", "-o", "remount,ro", STATE)
            assert r.returncode == 0, "remount ro: %s" % r.stderr
            log("round %d: the disk is read-only" % (rnd + 1))
            try:
                posts.produce(BIN, CHUNK)
                for p in ps:
                    p.start()
                failed = stopped_by_store(ps, "Read-only file system", 90)
            finally:
                r = sh("mount", "-o", "remount,rw", STATE)
                assert r.returncode == 0, "remount rw: %s" % r.stderr
            restart(ps)
            users = check("read-only, then writable", ps)
            summary.append("read-only: %s stopped with status 1" % " and ".join(sorted(failed)))
        print("chaos disk: %s; each time a clear error naming the store, restarted, %d users' "
              "timelines equal the oracle (changelog and stores); %d chunks of %d posts; %.0fs" % (
                  "; ".join(summary), users, posts.chunks, CHUNK,
                  time.time() - t0), flush=True)
    finally:
        for p in ps:
            p.stop()
        sh("umount", "-l", STATE)
        if KEEP:
            log("work folder kept: %s" % WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
