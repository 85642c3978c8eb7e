#!/usr/bin/python3
"""The main job in a short form, run as a newcomer runs it: `ops/run
--duration D --users N --rate R` on the real stack (Kafka, Redis,
PostgreSQL: the stack ops/test brought up).

Checks that it seeds a network with feedline-loadgen (celebrities
included: the run's topology lowers the threshold to fit N users), waits
until the pipeline took it in, and prints a curl for a demo user's feed
with a minted token; that this very curl works, and that the feed it
returns grows while the load runs (new posts on top, newer than the
first answer's newest); that the progress lines come every 10 s; that it
exits 0 at the end of --duration leaving the stack and the pipeline up;
and that a second run does not push the network's backlog again.

  E2E_RUN_USERS (3000), E2E_RUN_RATE (150), E2E_RUN_DURATION (50)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from itlib import BIN, KAFKA, ROOT, STACK_DIR  # noqa: E402
import procs  # noqa: E402
from test_projections import reset_projections  # noqa: E402

FEEDLINE = os.path.join(BIN, "feedline")
USERS = int(os.environ.get("E2E_RUN_USERS", "3000"))
RATE = int(os.environ.get("E2E_RUN_RATE", "150"))
DURATION = int(os.environ.get("E2E_RUN_DURATION", "50"))
CURL = re.compile(r"""their feed:\s+(curl -s -H "Authorization: Bearer [^"]+" '[^']+')""")


def log(msg):
    print("[run] %s" % msg, flush=True)


def run_curl(cmd):
    """The printed command, run by a shell as a user pastes it."""
    out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True,
                         timeout=30).stdout
    return json.loads(out)["items"]


def ops_run(duration, stderr_path):
    return subprocess.Popen(
        [os.path.join(ROOT, "ops", "run"), "--duration", str(duration), "--users", str(USERS),
         "--rate", str(RATE), "--seed", "5"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(stderr_path, "w"), text=True)


def fail(msg, stderr_path):
    with open(stderr_path) as f:
        sys.stderr.write(f.read()[-6000:])
    raise AssertionError(msg)


def main():
    work = tempfile.mkdtemp(prefix="feedline-run-")
    subprocess.run([os.path.join(ROOT, "ops", "pipeline"), "down"], cwd=ROOT, check=True,
                   stderr=subprocess.DEVNULL)
    procs.reset_topics(KAFKA, FEEDLINE)
    procs.wait_topics_ready(KAFKA, FEEDLINE)
    reset_projections()
    for d in ("pipeline", "loadgen"):
        shutil.rmtree(os.path.join(STACK_DIR, d), ignore_errors=True)
    # Celebrities among a few thousand users: the threshold the network fits.
    need = USERS // 3
    procs.use_celebrity_settings(BIN, {"celebrity_settings": {
        "celebrity_threshold": need, "celebrity_hysteresis": need // 10},
        "celebrity_followers": need, "users": USERS}, work)
    try:
        first_run(work)
        second_run(work)
        status = subprocess.run([os.path.join(ROOT, "ops", "pipeline"), "status"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
        down = [line for line in status.splitlines()[1:] if " up " not in line]
        assert not down, "after ops/run the pipeline should still be up:\n%s" % status
        log("pipeline still up after both runs")
    finally:
        subprocess.run([os.path.join(ROOT, "ops", "pipeline"), "down"], cwd=ROOT,
                       stderr=subprocess.DEVNULL)
    shutil.rmtree(work, ignore_errors=True)
    print("test_run: OK")


def first_run(work):
    err = os.path.join(work, "run1.err")
    t0 = time.time()
    p = ops_run(DURATION, err)
    lines, cmd = [], None
    for line in p.stdout:
        lines.append(line)
        m = CURL.search(line)
        if m:
            cmd = m.group(1)
            break
    if not cmd:
        p.wait()
        fail("ops/run printed no feed curl (exit %s):\n%s" % (p.returncode, "".join(lines)), err)
    log("network up and caught up after %.0f s; printed: %s" % (time.time() - t0, cmd[:60]))
    with open(err) as f:
        text = f.read()
    m = re.search(r"celebrities (\S+)", "".join(lines))
    assert m and m.group(1) != "none", "no celebrities in the network:\n%s" % "".join(lines)
    assert "seeding a network" in text, text[-2000:]

    first = run_curl(cmd)
    assert first, "the demo feed is empty right after catching up"
    newest0 = max(i["created_at"] for i in first)
    ids0 = {i["post_id"] for i in first}
    grew = False
    for _ in range(30):
        time.sleep(2)
        later = run_curl(cmd)
        fresh = [i for i in later if i["post_id"] not in ids0 and i["created_at"] > newest0]
        if fresh:
            grew = True
            log("feed grew: %d new posts on top (newest by @%s)" % (
                len(fresh), fresh[0]["author"]["handle"]))
            break
    assert grew, "the demo feed did not grow in 60 s of steady load"

    rest = p.stdout.read()
    rc = p.wait(timeout=DURATION + 120)
    if rc != 0:
        fail("ops/run exited %d" % rc, err)
    ticks = [line for line in rest.splitlines() if re.match(r"\[ *\d+s\] user \d+'s feed", line)]
    # one line per 10 s of load, later on a loaded machine (each line
    # waits for a feed request and a metrics scrape)
    assert len(ticks) >= max(2, DURATION // 20), "progress lines:\n%s" % rest
    log("ops/run exited 0 after %.0f s with %d progress lines, e.g. %s" % (
        time.time() - t0, len(ticks), ticks[-1]))


def second_run(work):
    err = os.path.join(work, "run2.err")
    p = ops_run(5, err)
    out, _ = p.communicate(timeout=600)
    if p.returncode != 0:
        fail("second ops/run exited %d" % p.returncode, err)
    with open(err) as f:
        text = f.read()
    assert "not producing its backlog" in text, "the second run pushed the network again"
    assert CURL.search(out), out
    log("second run: backlog not pushed again, feed curl printed")


if __name__ == "__main__":
    main()
