"""The pipeline under a steady load (ops/bench/all): lag sampled every
second, the highest rate it sustains with lag under 1 s, and its CPU and
memory.

Lag. Every second LagSampler reads each program's /metrics (the pipeline
that `ops/pipeline up` runs, on FEEDLINE_PIPELINE_PORT_BASE + i): its
consumer lag in records (feedline_consumer_lag, summed over its
partitions) and its records in. A program's lag in seconds is the records
it is behind over the records it took in per second in the last 5 s (in a
steady state, how long the newest record waits); a program that took
nothing in while it is behind is as many seconds behind as it has been
stalled. The pipeline's lag is the largest of its programs'.

The gauges see records waiting to be consumed, not the time a record
spends inside the batches and transactions of the hops after it, so every
step also runs probes (probe.py): posts timed from produce until the
follower's pub/sub message, the whole way.

Sustained rate. A rate (events/s of the steady load) is sustained when,
over a step of step_s seconds after its first settle_s, the pipeline's
lag is under 1 s in at least 95% of the samples and the probes' event ->
visible p99 is under 1 s. find_sustained() brackets the rate by doubling
or halving from a starting guess, then bisects, for a fixed number of
steps, waiting for the lag to drain between steps.
"""
import os
import statistics
import threading
import time

from benchlib import PORT_BASE, STACK_DIR, cpu_of, log, percentile, pidfile, server_pids
from probe import VisibilityProbe, latency_stats
from procs import proc_status_kib, scrape, total

PIPELINE = ("fanout", "timeline", "engagement", "affinity", "redis-sink", "pg-sink")
DELIVERIES = "feedline_timeline_entries_inserted_total"
LAG_LIMIT_S = 1.0


def _pipeline_files(suffix):
    """{program: the number in its file STACK_DIR/pipeline/<program><suffix>}
    for the programs ops/pipeline runs (the API included) that have one."""
    out = {}
    for name in PIPELINE + ("api",):
        n = pidfile(os.path.join(STACK_DIR, "pipeline", name + suffix))
        if n:
            out[name] = n
    return out


def pipeline_pids():
    """{program: pid} of the programs ops/pipeline runs."""
    return _pipeline_files(".pid")


def restarts():
    """{program: restarts by its supervisor} (ops/pipeline restarts a
    program that exits on its own; its CPU and peak RSS then start anew)."""
    return _pipeline_files(".pid.restarts")


def cpu_snapshot():
    """{program or server: CPU seconds so far} of the pipeline and the
    stack's servers (PostgreSQL's backends as they are now)."""
    snap = {n: cpu_of([p]) for n, p in pipeline_pids().items()}
    for k, pids in server_pids().items():
        snap[k] = cpu_of(pids)
    return snap


def peak_rss_mib():
    """{program: VmHWM in MiB} of the pipeline's programs."""
    return {n: round((proc_status_kib(p, "VmHWM") or 0) / 1024, 1)
            for n, p in pipeline_pids().items()}


class LagSampler:
    """Samples every program's lag once a second in a thread, each sample
    labelled with the phase set last (phase())."""

    def __init__(self):
        self.samples = []
        self.label = ""
        self._hist = {n: [] for n in PIPELINE}
        self._moved = {n: time.time() for n in PIPELINE}
        self._stop = threading.Event()

    def phase(self, label):
        self.label = label

    def start(self):
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join()

    def _run(self):
        nxt = time.time()
        while not self._stop.is_set():
            self._sample()
            nxt += 1.0
            self._stop.wait(max(0.0, nxt - time.time()))

    def _sample(self):
        now = time.time()
        s = {"t": now, "phase": self.label, "lag": {}, "lag_s": {}, "deliveries": None}
        for i, name in enumerate(PIPELINE):
            m = scrape(PORT_BASE + i)
            if m is None:
                continue
            lag, rin = total(m, "feedline_consumer_lag"), total(m, "feedline_records_in_total")
            if name == "timeline":
                s["deliveries"] = total(m, DELIVERIES)
            h = self._hist[name]
            if h and rin != h[-1][1]:
                self._moved[name] = now
            h.append((now, rin))
            while len(h) > 1 and h[0][0] < now - 5:
                h.pop(0)
            rate = (h[-1][1] - h[0][1]) / (h[-1][0] - h[0][0]) if len(h) > 1 else 0
            s["lag"][name] = int(lag)
            if lag <= 0:
                s["lag_s"][name] = 0.0
            elif rate > 0:
                s["lag_s"][name] = round(lag / rate, 3)
            else:
                s["lag_s"][name] = round(now - self._moved[name], 3)
        s["pipeline_lag_s"] = max(s["lag_s"].values()) if s["lag_s"] else None
        self.samples.append(s)

    def latest(self):
        return self.samples[-1] if self.samples else None

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s["t"] < t1]


def deliveries_rate(samples):
    """Timeline entries inserted per second over samples."""
    d = [s for s in samples if s["deliveries"] is not None]
    if len(d) < 2 or d[-1]["t"] <= d[0]["t"]:
        return None
    return int((d[-1]["deliveries"] - d[0]["deliveries"]) / (d[-1]["t"] - d[0]["t"]))


def lag_summary(samples):
    vals = sorted(s["pipeline_lag_s"] for s in samples if s["pipeline_lag_s"] is not None)
    if not vals:
        return {"p50_s": None, "p95_s": None, "max_s": None, "samples": 0}
    return {"p50_s": round(statistics.median(vals), 3), "p95_s": round(percentile(vals, 0.95), 3),
            "max_s": round(vals[-1], 3), "samples": len(vals)}


def drain(sampler, timeout_s=300):
    """Waits until every program's consumer lag is 0 in two samples in a
    row; returns the seconds it took."""
    t0 = time.time()
    zero = 0
    while time.time() - t0 < timeout_s:
        time.sleep(1)
        s = sampler.latest()
        zero = zero + 1 if s and s["lag"] and sum(s["lag"].values()) == 0 else 0
        if zero >= 2:
            return round(time.time() - t0, 1)
    log("the pipeline did not drain in %d s" % timeout_s)
    return None


def run_step(rate, seconds, settle_s, start_load, sampler, pairs, probe_rate, label):
    """One step: the steady load at rate for seconds, probes beside it;
    the figures of the samples after settle_s."""
    sampler.phase(label)
    load = start_load(rate)
    probe = VisibilityProbe(pairs, probe_rate, run_id="bench-%s-%d" % (label, time.time())).start()
    t0 = time.time()
    time.sleep(seconds)
    t1 = time.time()
    got = load.stop()
    probe.stop(drain_s=5)
    samples = sampler.between(t0 + settle_s, t1)
    lag = lag_summary(samples)
    vis = latency_stats(probe.samples, t0=t0 + settle_s)
    return {"rate": rate, "seconds": round(t1 - t0, 1), "load": got,
            "deliveries_per_s": deliveries_rate(samples), "lag": lag, "visible_redis_ms": vis,
            "sustained": lag["p95_s"] is not None and lag["p95_s"] < LAG_LIMIT_S
            and vis["p99"] is not None and vis["p99"] < LAG_LIMIT_S * 1000}


def find_sustained(start_rate, steps, seconds, settle_s, start_load, sampler, pairs,
                   probe_rate):
    """The highest steady-load rate (events/s) of `steps` tries that the
    pipeline sustains with lag under 1 s; see the module's comment."""
    lo, hi, rate, tried = None, None, max(1, int(start_rate)), []
    for i in range(steps):
        st = run_step(rate, seconds, settle_s, start_load, sampler, pairs, probe_rate,
                      "search %d: %d/s" % (i + 1, rate))
        sampler.phase("drain")
        st["drain_s"] = drain(sampler)
        tried.append(st)
        log("search step %d: %d events/s: %s deliveries/s, lag p95 %s s, visible p99 %s ms: %s"
            % (i + 1, rate, st["deliveries_per_s"], st["lag"]["p95_s"],
               st["visible_redis_ms"]["p99"], "sustained" if st["sustained"] else "not sustained"))
        if st["sustained"]:
            lo = st
            rate = rate * 2 if hi is None else (rate + hi["rate"]) // 2
        else:
            hi = st
            rate = rate // 2 if lo is None else (rate + lo["rate"]) // 2
        if lo and hi and hi["rate"] - lo["rate"] <= max(1, lo["rate"] // 20):
            break  # within 5%: more steps would not tell more
    return {"best": lo, "lowest_failed": hi, "steps": tried}


def measure_half_rate(rate, steady_s, start_load, sampler, pairs, probe_rate, api_phase=None):
    """The steady load at rate: probes for steady_s seconds (phase
    "steady": latency, CPU per delivery, lag), then api_phase() while the
    load and the probes go on (phase "api"). Returns the figures."""
    sampler.phase("steady")
    t_load = time.time()
    load = start_load(rate)
    probe = VisibilityProbe(pairs, probe_rate, run_id="bench-steady-%d" % time.time()).start()
    time.sleep(5)  # the load's first seconds: programs waking up, batches filling
    t0, cpu0 = time.time(), cpu_snapshot()
    time.sleep(steady_s)
    t1, cpu1 = time.time(), cpu_snapshot()
    api = None
    if api_phase:
        sampler.phase("api")
        api = api_phase()
    t2 = time.time()
    got = load.stop()
    probe.stop(drain_s=10)
    sampler.phase("drain")
    samples = sampler.between(t0, t1)
    dels = [s["deliveries"] for s in samples if s["deliveries"] is not None]
    n_del = dels[-1] - dels[0] if len(dels) > 1 else 0
    return {"rate": rate, "load": got, "load_start": t_load,
            "steady_window": [t0, t1], "api_window": [t1, t2],
            "deliveries": int(n_del), "deliveries_per_s": deliveries_rate(samples),
            "lag": lag_summary(samples),
            "cpu_s": {k: round(cpu1[k] - cpu0.get(k, 0), 2) for k in cpu1},
            "cpu_s_per_million_deliveries": {k: round((cpu1[k] - cpu0.get(k, 0)) * 1e6 / n_del, 1)
                                             for k in cpu1} if n_del else None,
            "visible_redis_ms": latency_stats(probe.samples, t0=t0, t1=t1),
            "visible_redis_ms_api_phase": latency_stats(probe.samples, t0=t1, t1=t2)
            if api_phase else None,
            "probe_samples": probe.samples, "peak_rss_mib": peak_rss_mib(), "api": api,
            "restarts": restarts()}
