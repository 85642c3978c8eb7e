"""Workloads for ops/bench/all, from feedline-loadgen (connectors/loadgen):
a backlog (a whole seeded power-law network, produced as fast as Kafka
takes it) and a steady load (the loadgen's mix of posts, replies, likes,
unlikes, follows, unfollows, deletes and profile updates at a fixed rate,
in the background until stopped).

Every steady run is its own loadgen process with the backlog's network
options: it rebuilds the network in memory (a fraction of a second) and
continues it from the end of the backlog, with event ids of its own. Two
steady runs thus both continue the backlog, not one another: the second
may unfollow an edge the first removed already, which the processors
take as the no-op it is.
"""
import json
import os
import signal
import subprocess

from benchlib import BIN

LOADGEN = os.path.join(BIN, "feedline-loadgen")
INPUTS = ("users", "follows", "posts", "likes")


class Network:
    """The loadgen's network options (the same for the backlog and every
    steady run)."""

    def __init__(self, users, seed, posts_per_user, likes_per_post, following=None):
        self.users, self.seed = users, seed
        self.posts_per_user, self.likes_per_post = posts_per_user, likes_per_post
        self.following = following  # mean followees per user, None: the loadgen's
        self.seeded = None  # set by backlog(): the steady runs take its post ids from it

    def args(self):
        return ["--users", str(self.users), "--seed", str(self.seed),
                "--posts-per-user", str(self.posts_per_user),
                "--likes-per-post", str(self.likes_per_post)] + \
            (["--following", str(self.following)] if self.following else []) + \
            (["--seeded-file", self.seeded] if self.seeded else [])


def _run(args, work, name):
    """Runs feedline-loadgen ARGS --summary, returns its summary."""
    summary = os.path.join(work, name + ".json")
    with open(os.path.join(work, name + ".log"), "w") as log:
        subprocess.run([LOADGEN, *args, "--summary", summary, "--quiet"], check=True,
                       stdout=log, stderr=log)
    with open(summary) as f:
        return json.load(f)


def backlog(work, net):
    """Produces the network's backlog; returns {"source", "users": [ids],
    "celebrities": [ids], "events", "counts": {kind: n}, "by_topic",
    "elapsed_s", "events_per_s"} (the rate Kafka took it at)."""
    if not os.access(LOADGEN, os.X_OK):
        raise SystemExit("%s is not built; run ops/build" % LOADGEN)
    # a fresh seeded file: the backlog is always produced, and records its
    # start, from which the steady runs know its post ids
    net.seeded = os.path.join(work, "seeded.json")
    if os.path.exists(net.seeded):
        os.remove(net.seeded)
    s = _run(["--backlog", *net.args()], work, "backlog")
    return {"source": "feedline-loadgen",
            "network": {k: v for k, v in vars(net).items() if k != "seeded"},
            "users": [s["user_base"] + i for i in range(s["users"])],
            "celebrities": [c["id"] for c in s["celebrities"]],
            "events": s["backlog_events"], "counts": s["by_kind"], "by_topic": s["by_topic"],
            "elapsed_s": round(s["backlog_seconds"], 1),
            "events_per_s": int(s["backlog_events_per_s"])}


class SteadyLoad:
    """feedline-loadgen --rate R until stop(), which returns {"rate",
    "achieved_per_s", "events", "elapsed_s", "by_topic": {topic: n}}."""

    def __init__(self, rate, net, work, name):
        self.rate, self.net = rate, net
        self.summary = os.path.join(work, name + ".json")
        self.log_path = os.path.join(work, name + ".log")

    def start(self):
        with open(self.log_path, "w") as log:
            self.p = subprocess.Popen([LOADGEN, *self.net.args(), "--rate", str(self.rate),
                                       "--duration", "0", "--summary", self.summary, "--quiet"],
                                      stdout=log, stderr=log)
        return self

    def stop(self):
        if self.p.poll() is not None:
            raise RuntimeError("feedline-loadgen exited early (%s); see %s"
                               % (self.p.returncode, self.log_path))
        self.p.send_signal(signal.SIGTERM)
        if self.p.wait(60) != 0:
            raise RuntimeError("feedline-loadgen exited with %d; see %s"
                               % (self.p.returncode, self.log_path))
        with open(self.summary) as f:
            s = json.load(f)
        return {"rate": self.rate, "achieved_per_s": round(s["steady_events_per_s"], 1),
                "events": s["steady_events"], "elapsed_s": round(s["steady_seconds"], 1),
                "by_topic": s["by_topic"]}
