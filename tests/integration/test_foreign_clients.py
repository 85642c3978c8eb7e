"""Clients that are not ours agree with ours on the contract:
- records produced with keys ("42" and others) by the Java console producer
  shipped in the Kafka jars land in the partition `feedline partition`
  computes;
- Avro events written by Python's Avro library (with the schemas of
  schemas/ and the Confluent framing) and produced by confluent-kafka
  decode with our codec, and our encodings decode with Python's library.
"""
import datetime
import io
import json
import os
import struct
import subprocess

import avro.io
import avro.schema
from confluent_kafka import Producer

from itlib import KAFKA, ROOT, RUN, Suite, feedline, kafka_libs, tail

SCHEMAS = os.path.join(ROOT, "schemas")
TOPIC_OF = {"UserRegistered": "users", "UserUpdated": "users", "PostCreated": "posts",
            "PostDeleted": "posts", "FollowAdded": "follows", "FollowRemoved": "follows",
            "LikeAdded": "likes", "LikeRemoved": "likes"}
KEY_FIELD = {"users": "user_id", "posts": "author_id", "follows": "followee_id", "likes": "post_id"}


def schema_table():
    """{record: [(version, id, schema)]} from schemas/ids.tsv."""
    table = {}
    with open(os.path.join(SCHEMAS, "ids.tsv")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            sid, name, version, fname = line.split()
            with open(os.path.join(SCHEMAS, fname)) as sf:
                schema = avro.schema.parse(sf.read())
            table.setdefault(name, []).append((int(version), int(sid), schema))
    for versions in table.values():
        versions.sort(key=lambda v: v[0])
    return table


TABLE = schema_table()


def current(name):
    return TABLE[name][-1]


# Python's Avro library maps timestamp-millis to datetime; the JSON side
# (and our codec) uses epoch milliseconds.
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
TIMESTAMPS = ("occurred_at", "created_at")


def to_py(record):
    return {k: EPOCH + datetime.timedelta(milliseconds=v) if k in TIMESTAMPS else v
            for k, v in record.items()}


def from_py(record):
    return {k: (v - EPOCH) // datetime.timedelta(milliseconds=1) if k in TIMESTAMPS else v
            for k, v in record.items()}


def encode(schema, sid, record):
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", sid))
    avro.io.DatumWriter(schema).write(to_py(record), avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def decode(schema, data):
    assert data[0] == 0
    rec = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[5:])))
    return from_py(rec)


def sample(name, i):
    base = {"event_id": "%s-py-%s-%d" % (RUN, name, i), "occurred_at": 1767225600000 + i}
    fields = {
        "UserRegistered": dict(user_id=7000 + i, handle="h%d" % i, display_name="N\u00f6 %d" % i),
        "UserUpdated": dict(user_id=7000 + i, display_name=None, bio="bio %d" % i),
        "PostCreated": dict(post_id=8000 + i, author_id=7000 + i, created_at=1767225600000 + i,
                            text="p\u00e9st %d" % i, visibility="FOLLOWERS", reply_to=8000),
        "PostDeleted": dict(post_id=8000 + i, author_id=7000 + i),
        "FollowAdded": dict(follower_id=7000 + i, followee_id=7100 + i),
        "FollowRemoved": dict(follower_id=7000 + i, followee_id=7100 + i),
        "LikeAdded": dict(user_id=7000 + i, post_id=8000 + i, author_id=7200 + i),
        "LikeRemoved": dict(user_id=7000 + i, post_id=8000 + i, author_id=7200 + i),
    }[name]
    base.update(fields)
    return base


def check_java_console_producer_partitions():
    topic = "feedline.it.partitioner"
    libs = kafka_libs()
    cp = os.path.join(libs, "*")
    subprocess.run(["java", "-cp", cp, "org.apache.kafka.tools.TopicCommand",
                    "--bootstrap-server", KAFKA, "--create", "--if-not-exists",
                    "--topic", topic, "--partitions", "4", "--replication-factor", "1"],
                   check=True, capture_output=True, timeout=120)
    keys = ["42"] + [str(k) for k in range(0, 300)] + ["-17", "9223372036854775807"]
    lines = "".join("%s\t%s-%d\n" % (k, RUN, i) for i, k in enumerate(keys))
    subprocess.run(["java", "-cp", cp, "kafka.tools.ConsoleProducer",
                    "--bootstrap-server", KAFKA, "--topic", topic,
                    "--property", "parse.key=true", "--property", "key.separator=\t"],
                   input=lines, text=True, check=True, capture_output=True, timeout=120)
    out = feedline("tail", topic, "--from-beginning", "--exit-at-end").stdout
    seen = {}
    for line in out.splitlines():
        r = json.loads(line)
        seen[r["key"]] = r["partition"]  # values are not Avro: only key and partition matter
    for k in keys:
        want = int(feedline("partition", "4", k).stdout)
        assert seen.get(k) == want, "key %s: Java put it in %s, ours says %d" % (k, seen.get(k), want)


def check_python_avro_through_kafka():
    p = Producer({"bootstrap.servers": KAFKA, "partitioner": "murmur2_random",
                  "enable.idempotence": True})
    sent = {}
    for i, name in enumerate(TOPIC_OF):
        rec = sample(name, i)
        _, sid, schema = current(name)
        topic = TOPIC_OF[name]
        p.produce(topic, key=str(rec[KEY_FIELD[topic]]), value=encode(schema, sid, rec))
        sent[rec["event_id"]] = dict(rec, type=name)
    assert p.flush(60) == 0
    got = {}
    for topic in set(TOPIC_OF.values()):
        for r in tail(topic, RUN + "-py-"):
            got[r["value"]["event_id"]] = r["value"]
            want_part = int(feedline("partition", topic, r["key"]).stdout)
            assert r["partition"] == want_part, "python put key %s in %d, ours says %d" % (
                r["key"], r["partition"], want_part)
    assert got == sent, "decoded %s\nsent %s" % (got, sent)


def check_old_schema_from_python_decodes():
    version, sid, schema = TABLE["PostCreated"][0]
    assert version == 1
    rec = sample("PostCreated", 99)
    del rec["reply_to"]
    data = encode(schema, sid, rec)
    out = json.loads(feedline("decode", stdin=data, binary=True).stdout)
    assert out == dict(rec, type="PostCreated", reply_to=None), out


def check_our_encoding_decodes_in_python():
    for i, name in enumerate(TOPIC_OF):
        rec = sample(name, 50 + i)
        data = feedline("encode", stdin=json.dumps(dict(rec, type=name)).encode(),
                        binary=True).stdout
        _, sid, schema = current(name)
        assert struct.unpack(">I", data[1:5])[0] == sid
        assert decode(schema, data) == rec, name


if __name__ == "__main__":
    s = Suite()
    for fn in (check_java_console_producer_partitions, check_python_avro_through_kafka,
               check_old_schema_from_python_decodes, check_our_encoding_decodes_in_python):
        s.run(fn)
    s.finish()
