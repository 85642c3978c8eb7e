#!/usr/bin/env python3
"""The observability files without a server (label unit):

- ops/observability/prometheus.yml passes `promtool check config`, is what
  `ops/observe config` prints with the default ports, and `ops/observe
  config` under other ports names exactly those, one job per program;
- ops/observability/grafana/feedline.json is a dashboard a current Grafana
  imports: a title, a uid, a schema version, the Prometheus data source as
  a variable that every panel and target uses, unique panel ids, panels on
  the 24-column grid without overlaps, targets with unique refIds and an
  expression each, and every expression valid PromQL (`promtool check
  rules` over them as recording rules).

Whether the metrics the expressions name exist is checked against the
live programs in test_observe.py.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(ROOT, "ops", "observability", "prometheus.yml")
DASHBOARD = os.path.join(ROOT, "ops", "observability", "grafana", "feedline.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge", "gauge", "text"}
JOBS = ["fanout", "timeline", "engagement", "affinity", "redis-sink", "pg-sink", "api"]

passed = failed = 0


def check(fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok   %s" % fn.__name__)
    except Exception as e:  # report and go on
        failed += 1
        print("FAIL %s: %s" % (fn.__name__, e))


def observe_config(**env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("FEEDLINE_PIPELINE_PORT_BASE", "FEEDLINE_API", "FEEDLINE_SCRAPE_INTERVAL")}
    base.update(env)
    return subprocess.run([os.path.join(ROOT, "ops", "observe"), "config"], env=base,
                          capture_output=True, text=True, check=True).stdout


def promtool(*args):
    p = subprocess.run(["promtool", *args], capture_output=True, text=True)
    assert p.returncode == 0, "promtool %s: %s%s" % (" ".join(args), p.stdout, p.stderr)


def config_checks():
    promtool("check", "config", CONFIG)
    with open(CONFIG) as f:
        assert f.read() == observe_config(), \
            "prometheus.yml differs from `ops/observe config` with the default ports"


def config_under_other_ports():
    text = observe_config(FEEDLINE_PIPELINE_PORT_BASE="29101", FEEDLINE_API="127.0.0.1:28080",
                          FEEDLINE_SCRAPE_INTERVAL="2s")
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write(text)
        f.flush()
        promtool("check", "config", f.name)
    for i, job in enumerate(JOBS):
        addr = "127.0.0.1:28080" if job == "api" else "127.0.0.1:%d" % (29101 + i)
        assert "job_name: feedline-%s\n" % job in text, job
        assert "targets: ['%s']" % addr in text, (job, addr)
    assert text.count("job_name:") == len(JOBS)
    assert "scrape_interval: 2s" in text


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_structure():
    d = load()
    assert d.get("title") and d.get("uid"), "title and uid"
    assert isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36
    var = [v for v in d["templating"]["list"] if v["name"] == "datasource"]
    assert var and var[0]["type"] == "datasource" and var[0]["query"] == "prometheus"
    ids, cells = set(), set()
    for p in d["panels"]:
        assert p["type"] in PANEL_TYPES, p["type"]
        assert p.get("title"), p
        assert p["id"] not in ids, "panel id %s twice" % p["id"]
        ids.add(p["id"])
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "hwxy"), g
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, g
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, "panel %r overlaps another" % p["title"]
                cells.add((x, y))
        if p["type"] == "row":
            assert not p.get("targets"), p["title"]
            continue
        assert p["datasource"] == DS, p["title"]
        assert p["targets"], "panel %r has no target" % p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS and t["expr"].strip(), (p["title"], t)


def dashboard_promql():
    exprs = [t["expr"] for p in load()["panels"] for t in p.get("targets", [])]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "feedline:dashboard_%d" % i, "expr": e.replace("$__rate_interval", "1m")}
        for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        json.dump(rules, f)  # JSON is YAML
        f.flush()
        promtool("check", "rules", f.name)


if __name__ == "__main__":
    for fn in (config_checks, config_under_other_ports, dashboard_structure, dashboard_promql):
        check(fn)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
