"""Every event type goes through `feedline produce` and comes back through
`feedline tail` unchanged, keyed and partitioned per the contract; bad
lines are reported with their line numbers and skipped."""
import json

from itlib import RUN, Suite, feedline, tail

KEY_FIELD = {"users": "user_id", "posts": "author_id", "follows": "followee_id", "likes": "post_id"}


def events():
    base = 1767225600000
    n = [0]

    def ev(**kw):
        n[0] += 1
        kw.setdefault("event_id", "%s-%d" % (RUN, n[0]))
        kw.setdefault("occurred_at", base + n[0])
        return kw

    return {
        "users": [
            ev(type="UserRegistered", user_id=101, handle="ada", display_name="Ada \u00e9\u6f22"),
            ev(type="UserUpdated", user_id=101, display_name=None, bio="analytical"),
            ev(type="UserUpdated", user_id=102, display_name="Grace", bio=None),
        ],
        "posts": [
            ev(type="PostCreated", post_id=9001, author_id=101, created_at=base + 5,
               text="hello \"world\"\n", visibility="PUBLIC", reply_to=None),
            ev(type="PostCreated", post_id=9002, author_id=102, created_at=base + 6,
               text="", visibility="FOLLOWERS", reply_to=9001),
            ev(type="PostCreated", post_id=9003, author_id=103, created_at=base + 7,
               text="secret", visibility="PRIVATE", reply_to=None),
            ev(type="PostDeleted", post_id=9003, author_id=103),
        ],
        "follows": [
            ev(type="FollowAdded", follower_id=102, followee_id=101),
            ev(type="FollowRemoved", follower_id=102, followee_id=101),
        ],
        "likes": [
            ev(type="LikeAdded", user_id=102, post_id=9001, author_id=101),
            ev(type="LikeRemoved", user_id=102, post_id=9001, author_id=101),
        ],
    }


EVENTS = events()


def check_roundtrip():
    for topic, evs in EVENTS.items():
        lines = "".join(json.dumps(e) + "\n" for e in evs)
        feedline("produce", topic, stdin=lines)
    for topic, evs in EVENTS.items():
        recs = tail(topic)
        got = sorted((r["value"] for r in recs), key=lambda v: v["event_id"])
        want = sorted(evs, key=lambda v: v["event_id"])
        assert got == want, "%s: got %s want %s" % (topic, got, want)
        for r in recs:
            key = str(r["value"][KEY_FIELD[topic]])
            assert r["key"] == key, "%s: key %r, want %r" % (topic, r["key"], key)
            part = int(feedline("partition", topic, key).stdout)
            assert r["partition"] == part, "%s key %s in partition %d, want %d" % (
                topic, key, r["partition"], part)
            assert r["schema_id"] > 0


def check_bad_lines_skipped():
    good = dict(type="FollowAdded", event_id=RUN + "-good", occurred_at=1, follower_id=5,
                followee_id=6)
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps(dict(good, type="PostDeleted")),          # wrong topic
        json.dumps({k: v for k, v in good.items() if k != "follower_id"}),  # missing field
        json.dumps(dict(good, follower_id="5")),              # wrong JSON type
        json.dumps(dict(good, colour="blue")),                # unknown member
        json.dumps(dict(good, type="Nope")),                  # unknown type
        "",                                                   # blank: ignored
        json.dumps(dict(good, event_id=RUN + "-good2")),
    ]
    p = feedline("produce", "follows", stdin="\n".join(lines) + "\n", check=False)
    assert p.returncode == 3, "exit %d, stderr %s" % (p.returncode, p.stderr)
    for n in (2, 3, 4, 5, 6, 7):
        assert "stdin:%d: skipped" % n in p.stderr, "no message for line %d: %s" % (n, p.stderr)
    assert "stdin:8:" not in p.stderr
    assert "2 events produced to follows, 6 lines skipped" in p.stderr, p.stderr
    ids = sorted(r["value"]["event_id"] for r in tail("follows", RUN + "-good"))
    assert ids == [RUN + "-good", RUN + "-good2"], ids


def check_produce_rejects_non_input_topic():
    p = feedline("produce", "feedline.dlq", stdin="", check=False)
    assert p.returncode == 2 and "not an input topic" in p.stderr, p.stderr


def check_help():
    for cmd in ("produce", "tail", "topology", "topics", "partition", "encode", "decode"):
        p = feedline(cmd, "--help")
        assert p.stdout.startswith("usage: feedline " + cmd), p.stdout
    assert "Commands:" in feedline("--help").stdout


def check_topology_prints():
    out = feedline("topology").stdout
    for name in ("posts", "follows", "feedline.dlq", "celebrity_threshold"):
        assert name in out, name


if __name__ == "__main__":
    s = Suite()
    for fn in (check_roundtrip, check_bad_lines_skipped, check_produce_rejects_non_input_topic,
               check_help, check_topology_prints):
        s.run(fn)
    s.finish()
