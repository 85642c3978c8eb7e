"""The report of ops/bench/all: report.json (every figure with its unit,
the machine, the commit, the stage times, the series behind the plots),
report.md (one Markdown table of the headline figures with the project's
targets) and PNG plots drawn with matplotlib (Debian's python3-matplotlib):
lag.png (the pipeline's lag over time through the steady-load stages),
latency.png (event -> visible percentiles over time at half the sustained
rate) and rebuild.png (deliveries/s over time while the processors
rebuild from offset 0).

A figure is {"figure": label, "value", "unit", "target" (the project's,
from the README's Benchmarks, or None), "runs": [values] when it was
measured more than once (value is then their median)}.
"""
import json
import os
import statistics


def figure(label, value, unit, target=None, runs=None):
    f = {"figure": label, "value": value, "unit": unit, "target": target}
    if runs and len(runs) > 1:
        f["runs"] = runs
    return f


def median_figure(label, runs, unit, target=None):
    vals = [v for v in runs if v is not None]
    return figure(label, statistics.median(vals) if vals else None, unit, target, vals)


def fmt_num(v):
    if v is None:
        return "n/a"
    if isinstance(v, float) and not v.is_integer() and abs(v) < 100:
        return "%.1f" % v if abs(v) >= 10 else "%.2f" % v
    return "{:,}".format(int(round(v)))


def fmt_value(f):
    v, unit = f["value"], f["unit"]
    if isinstance(v, dict):  # percentiles
        s = " / ".join(fmt_num(v.get(k)) if v.get(k) is not None else "lost"
                       for k in ("p50", "p99", "p99.9"))
    else:
        s = fmt_num(v)
    s += (" " + unit) if unit and v is not None else ""
    if f.get("runs"):
        s += " (" + ", ".join(fmt_num(x) for x in f["runs"]) + ")"
    return s


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)


def write_markdown(path, doc):
    m = doc["machine"]
    w = doc["workload"]
    lines = [
        "# feedline benchmark report",
        "",
        "`ops/bench/all%s` on %s, commit %s%s; %d cores, %.0f GiB%s; load average at the start "
        "%s; everything on this machine. Workload (%s, seed %d): %s users, %s posts and %s "
        "likes per post in the backlog, %s events, %d celebrities; %.1f minutes in all." % (
            " --quick" if doc["options"].get("quick") else "", doc["date"],
            doc["git"]["commit"][:10], " (with uncommitted changes)" if doc["git"]["dirty"] else "",
            m["cores"], m.get("memory_gib", 0), ", " + m["cpu"] if m.get("cpu") else "",
            ", ".join("%.1f" % x for x in m["load_average_at_start"]), w["source"],
            w["network"]["seed"], fmt_num(w["network"]["users"]), fmt_num(w["by_topic"]["posts"]),
            fmt_num(w["network"]["likes_per_post"]), fmt_num(w["events"]), len(w["celebrities"]),
            doc["elapsed_s"] / 60),
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for f in doc["figures"].values():
        lines.append("| %s | %s | %s |" % (f["figure"], fmt_value(f), f["target"] or ""))
    lines += ["", "Stage times: " + ", ".join("%s %.0f s" % (k, v) for k, v in
                                              doc["stages"].items()) + ".", ""]
    lines += ["Plots: [lag](lag.png), [latency](latency.png), [rebuild](rebuild.png).", ""]
    lines += ["How: " + doc["notes"], ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


# ---- plots ------------------------------------------------------------------------------------


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _phase_spans(lag):
    """[(start, end, label)] of consecutive samples with the same phase."""
    spans = []
    for t, phase in ((s[0], s[1]) for s in lag):
        if spans and spans[-1][2] == phase:
            spans[-1][1] = t
        else:
            spans.append([t, t, phase])
    return spans


def plot_lag(path, lag):
    """lag: [[t, phase, pipeline lag s, {program: lag s}, deliveries]]."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.4]})
    programs = sorted({p for s in lag for p in s[3]})
    for p in programs:
        pts = [(s[0], s[3][p]) for s in lag if p in s[3]]
        ax.plot([x for x, _ in pts], [max(y, 1e-3) for _, y in pts], label="feedline-" + p,
                lw=1)
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label="1 s")
    ax.set_yscale("log")
    ax.set_ylabel("lag (s)")
    ax.set_title("Lag of each program under the steady load")
    for i, (t0, t1, label) in enumerate(_phase_spans(lag)):
        if label == "drain":
            continue
        for a in (ax, ax2):
            a.axvspan(t0, t1, color="C%d" % (i % 10), alpha=0.08)
        ax.text(t0, ax.get_ylim()[1], label, fontsize=7, rotation=90, va="top", ha="left")
    ax.legend(fontsize=7, loc="lower right")
    rates = []
    for a, b in zip(lag, lag[1:]):
        if a[4] is not None and b[4] is not None and b[0] > a[0]:
            rates.append((b[0], (b[4] - a[4]) / (b[0] - a[0])))
    ax2.plot([x for x, _ in rates], [y for _, y in rates], lw=0.8, color="C0")
    ax2.set_ylabel("deliveries/s")
    ax2.set_xlabel("seconds since the steady-load stages began")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(path, series, marks):
    """series: [[t, p50, p99, p99.9, n]] (ms); marks: {label: seconds on
    the same axis} drawn as vertical lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 5))
    for i, name in ((1, "p50"), (2, "p99"), (3, "p99.9")):
        pts = [(s[0], s[i]) for s in series if s[i] is not None]
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker=".", label=name)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    for label, t in marks.items():
        ax.axvline(t, color="k", ls=":", lw=1)
        ax.text(t, ax.get_ylim()[1], " " + label, fontsize=8, va="top")
    ax.set_ylabel("event -> visible in Redis (ms)")
    ax.set_xlabel("seconds since the half-rate load began (10-s windows of probe send times, "
                  "at their middle)")
    ax.set_title("Event -> visible (pub/sub) at half the sustained rate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rebuild(path, samples):
    """samples: [[t, deliveries so far]] while the processors rebuild."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 4))
    pts = []
    for i in range(len(samples)):
        j = next((j for j in range(i, -1, -1) if samples[i][0] - samples[j][0] >= 2.0), None)
        if j is not None:
            a, b = samples[j], samples[i]
            pts.append((b[0], (b[1] - a[1]) / (b[0] - a[0])))
    ax.plot([x for x, _ in pts], [y for _, y in pts], lw=1)
    ax.set_ylabel("deliveries/s (2-s windows)")
    ax.set_xlabel("seconds since the processors started from offset 0")
    ax.set_title("Rebuild of the timelines from offset 0 over the backlog")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out, doc):
    """Writes report.json, report.md and the plots into out; returns the
    Markdown text."""
    os.makedirs(out, exist_ok=True)
    s = doc["series"]
    plot_lag(os.path.join(out, "lag.png"), s["lag"])
    plot_latency(os.path.join(out, "latency.png"), s["latency"], s["latency_marks"])
    plot_rebuild(os.path.join(out, "rebuild.png"), s["rebuild"])
    write_json(os.path.join(out, "report.json"), doc)
    write_markdown(os.path.join(out, "report.md"), doc)
    with open(os.path.join(out, "report.md")) as f:
        return f.read()
