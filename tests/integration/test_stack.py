"""The local stack is what the topology says: `ops/stack up` on a running
stack is harmless, every topic exists with its partition count, input and
dead-letter topics keep records forever, changelogs are compacted, and
Redis and PostgreSQL answer on their ports."""
import subprocess

from confluent_kafka.admin import AdminClient, ConfigResource

from itlib import KAFKA, ROOT, Suite

TOPOLOGY_KINDS = {
    "users": "input", "posts": "input", "follows": "input", "likes": "input",
    "feedline.dlq": "dlq",
}


def topology_topics():
    """(name, partitions, kind) parsed from `feedline topology` output."""
    from itlib import feedline
    out = feedline("topology").stdout
    topics, cur, in_topics = [], None, False
    for line in out.splitlines():
        s = line.strip()
        if not line.startswith(" ") and s.endswith(":"):
            in_topics = s == "topics:"
            continue
        if not in_topics:
            continue
        if s.startswith("- name:"):
            cur = {"name": s.split(":", 1)[1].strip()}
            topics.append(cur)
        elif ":" in s and cur is not None:
            k, v = s.split(":", 1)
            cur[k.strip()] = v.strip()
    return [(t["name"], int(t["partitions"]), t["kind"]) for t in topics]


def check_up_twice_is_harmless():
    p = subprocess.run(["ops/stack", "up"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "kafka     up" in p.stdout and "redis     up" in p.stdout and "postgres  up" in p.stdout, p.stdout


def check_topics_match_topology():
    admin = AdminClient({"bootstrap.servers": KAFKA})
    md = admin.list_topics(timeout=30)
    topics = topology_topics()
    assert topics, "no topics parsed from `feedline topology`"
    res = [ConfigResource(ConfigResource.Type.TOPIC, name) for name, _, _ in topics]
    configs = {r.name: f.result() for r, f in admin.describe_configs(res).items()}
    for name, parts, kind in topics:
        assert name in md.topics, "topic %s missing" % name
        assert len(md.topics[name].partitions) == parts, name
        cfg = configs[name]
        if kind in ("input", "dlq"):
            assert cfg["retention.ms"].value == "-1", "%s retention %s" % (name, cfg["retention.ms"].value)
        if kind == "changelog":
            assert cfg["cleanup.policy"].value == "compact", name
    for name, kind in TOPOLOGY_KINDS.items():
        assert (name, kind) in [(n, k) for n, _, k in topics], name


def check_redis_and_postgres_answer():
    out = subprocess.run(["bash", "-c", ". ops/lib/common.sh; redis-cli -p $FL_REDIS_PORT ping"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "PONG", out
    out = subprocess.run(["bash", "-c", ". ops/lib/common.sh; psql \"$FEEDLINE_POSTGRES\" -Atc 'select 1'"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "1", out


if __name__ == "__main__":
    s = Suite()
    for fn in (check_up_twice_is_harmless, check_topics_match_topology, check_redis_and_postgres_answer):
        s.run(fn)
    s.finish()
