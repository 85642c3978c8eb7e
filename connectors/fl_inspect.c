/*
 * fl_inspect.c - JSON views of store keys, values and timeline operations
 * (see fl_inspect.h). Tools only: clarity over speed.
 */
#include "fl_inspect.h"
#include "fl_engage.h"
#include "fl_keys.h"
#include "fl_kafka.h"
#include "fl_partition.h"
#include "fl_timeline.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <stdio.h>
#include <string.h>

json_t *fl_inspect_store_key(const void *key, size_t klen)
{
    const uint8_t *k = key;
    int64_t a, b, c;

    if (klen >= 1 && k[0] == 0x00)
        return json_pack("{s:s}", "family", "offsets-marker");
    if (!klen)
        return NULL;
    switch (k[0]) {
    case FL_KEY_TAG_TIMELINE:
        if (fl_key_parse_timeline(key, klen, &a, &b, &c))
            return NULL;
        return json_pack("{s:s, s:I, s:I, s:I}", "family", "timeline", "user_id", (json_int_t)a,
                         "created_at", (json_int_t)b, "post_id", (json_int_t)c);
    case FL_KEY_TAG_OUTBOX:
        if (fl_key_parse_recent(key, klen, k[0], &a, &b, &c))
            return NULL;
        return json_pack("{s:s, s:I, s:I, s:I}", "family", "outbox", "author_id", (json_int_t)a,
                         "created_at", (json_int_t)b, "post_id", (json_int_t)c);
    case FL_KEY_TAG_FOLLOWER:
        if (fl_key_parse_edge(key, klen, k[0], &a, &b))
            return NULL;
        return json_pack("{s:s, s:I, s:I}", "family", "follower", "author_id", (json_int_t)a,
                         "follower_id", (json_int_t)b);
    case FL_KEY_TAG_POST:
    case FL_KEY_TAG_USER:
        if (fl_key_parse_entity(key, klen, k[0], &a))
            return NULL;
        return json_pack("{s:s, s:I}", "family", k[0] == FL_KEY_TAG_POST ? "post" : "user",
                         k[0] == FL_KEY_TAG_POST ? "post_id" : "user_id", (json_int_t)a);
    default:
        return NULL;
    }
}

json_t *fl_inspect_store_value(const void *key, size_t klen, const void *val, size_t vlen)
{
    const uint8_t *k = key, *v = val;
    static const char *const vis[] = {"PUBLIC", "FOLLOWERS", "PRIVATE"};

    if (!klen || !val)
        return NULL;
    if (k[0] == 0x00)
        return json_stringn(val, vlen);
    switch (k[0]) {
    case FL_KEY_TAG_TIMELINE:
        return vlen == 8 ? json_pack("{s:I}", "author_id", (json_int_t)fl_key_dec_i64(v)) : NULL;
    case FL_KEY_TAG_OUTBOX:
        return vlen == 1 && v[0] < 3 ? json_pack("{s:s}", "visibility", vis[v[0]]) : NULL;
    case FL_KEY_TAG_FOLLOWER:
        return vlen == 0 ? json_object() : NULL;
    case FL_KEY_TAG_POST:
        if (vlen != 18)
            return NULL;
        return json_pack("{s:I, s:I, s:s, s:s}", "author_id", (json_int_t)fl_key_dec_i64(v),
                         "created_at", (json_int_t)fl_key_dec_i64(v + 8), "visibility",
                         v[16] < 3 ? vis[v[16]] : "?", "state", v[17] == 1 ? "live" : "deleted");
    case FL_KEY_TAG_USER:
        if (fl_timeline_meta_size_ok(vlen)) {
            /* timelines store: entry count and bounds, then the trim mark */
            json_t *o = json_pack(
                "{s:I, s:[I,I], s:[I,I]}", "timeline_entries", (json_int_t)fl_key_dec_i64(v),
                "oldest_bound", (json_int_t)fl_key_dec_i64(v + 8),
                (json_int_t)fl_key_dec_i64(v + 16), "newest_bound",
                (json_int_t)fl_key_dec_i64(v + 24), (json_int_t)fl_key_dec_i64(v + 32));
            if (o && vlen >= FL_TIMELINE_META_MARKED_SIZE)
                json_object_set_new(o, "trim_mark",
                                    json_pack("[I,I]", (json_int_t)fl_key_dec_i64(v + 40),
                                              (json_int_t)fl_key_dec_i64(v + 48)));
            if (o && vlen > FL_TIMELINE_META_MARKED_SIZE) {
                /* the oldest entries, which spare trimming a seek */
                json_t *w = json_array();
                for (size_t i = FL_TIMELINE_META_MARKED_SIZE; w && i < vlen; i += 16)
                    json_array_append_new(w, json_pack("[I,I]", (json_int_t)fl_key_dec_i64(v + i),
                                                       (json_int_t)fl_key_dec_i64(v + i + 8)));
                json_object_set_new(o, "oldest_window", w);
            }
            return o;
        }
        if (vlen == 17 || vlen == 33) { /* fanout store: author record */
            json_t *o = json_pack("{s:I, s:I, s:b}", "followers", (json_int_t)fl_key_dec_i64(v),
                                  "outbox_entries", (json_int_t)fl_key_dec_i64(v + 8), "celebrity",
                                  v[16] != 0);
            if (o && vlen == 33)
                json_object_set_new(o, "outbox_oldest_bound",
                                    json_pack("[I,I]", (json_int_t)fl_key_dec_i64(v + 17),
                                              (json_int_t)fl_key_dec_i64(v + 25)));
            return o;
        }
        return NULL;
    default:
        return NULL;
    }
}

json_t *fl_inspect_tlop(const void *val, size_t vlen, char *errstr, size_t errstr_size)
{
    fl_tlop_t op;
    if (fl_tlop_decode(val, vlen, &op, errstr, errstr_size))
        return NULL;
    json_t *o = json_pack("{s:s}", "op", fl_tlop_kind_str(op.op));
    if (op.op == FL_TLOP_REMOVE_AUTHOR)
        json_object_set_new(o, "author_id", json_integer(op.author_id));
    json_t *posts = json_array(), *rcpt = json_array();
    for (uint32_t i = 0; i < op.n_posts; i++)
        json_array_append_new(posts, json_pack("{s:I, s:I, s:I}", "post_id",
                                               (json_int_t)op.posts[i].post_id, "author_id",
                                               (json_int_t)op.posts[i].author_id, "created_at",
                                               (json_int_t)op.posts[i].created_at));
    for (uint32_t i = 0; i < op.n_recipients; i++)
        json_array_append_new(rcpt, json_integer(op.recipients[i]));
    json_object_set_new(o, "posts", posts);
    json_object_set_new(o, "recipients", rcpt);
    fl_tlop_clear(&op);
    return o;
}

fl_err_t fl_inspect_fact(const void *key, size_t klen, const void *val, size_t vlen, json_t **keyj,
                         json_t **valj, char *errstr, size_t errstr_size)
{
    /* the names of each kind's ids, in key order */
    static const char *const names[][3] = {
        [FL_FACT_POST_LIKES] = {"post_id"},
        [FL_FACT_FOLLOWERS] = {"user_id"},
        [FL_FACT_FOLLOWING] = {"user_id"},
        [FL_FACT_POSTS] = {"user_id"},
        [FL_FACT_AFFINITY] = {"viewer_id", "author_id"},
        [FL_FACT_NOTIFICATION] = {"recipient_id", "actor_id", "post_id"},
        [FL_FACT_LIKE] = {"post_id", "user_id"},
        [FL_FACT_FOLLOW] = {"followee_id", "follower_id"},
    };
    fl_fact_t f;

    if (fl_fact_decode(key, klen, val, vlen, &f, errstr, errstr_size))
        return FL_ERR_INVALID;
    *keyj = json_pack("{s:s}", "fact", fl_fact_kind_str(f.kind));
    if (f.kind == FL_FACT_NOTIFICATION)
        json_object_set_new(*keyj, "notification",
                            json_string(f.nkind == FL_NOTIF_LIKE ? "like" : "follow"));
    for (int i = 0; i < fl_fact_id_count(f.kind); i++)
        json_object_set_new(*keyj, names[f.kind][i], json_integer(f.id[i]));
    *valj = f.present ? json_integer(f.value) : json_null();
    return FL_OK;
}

json_t *fl_inspect_edge(const void *val, size_t vlen, char *errstr, size_t errstr_size)
{
    fl_edge_t e;
    if (fl_edge_decode(val, vlen, &e, errstr, errstr_size))
        return NULL;
    bool like = e.kind == FL_EDGE_LIKE;
    json_t *o = json_pack("{s:s, s:b, s:I, s:I}", "edge", like ? "like" : "follow", "added",
                          e.added, like ? "viewer_id" : "follower_id", (json_int_t)e.a,
                          like ? "author_id" : "followee_id", (json_int_t)e.b);
    if (like)
        json_object_set_new(o, "post_id", json_integer(e.post));
    json_object_set_new(o, "at", json_integer(e.at));
    return o;
}

/* Keeps a record of a store's changelog: every key but the store's own
 * (0x00) for any store; the timelines store's TIMELINE and USER records,
 * of one user when user > 0. */
static bool keep_record(bool timelines, int64_t user, const void *key, size_t klen)
{
    int64_t u, t, p;
    if (!timelines)
        return klen > 0 && *(const uint8_t *)key != 0x00;
    return (!fl_key_parse_timeline(key, klen, &u, &t, &p) ||
            !fl_key_parse_entity(key, klen, FL_KEY_TAG_USER, &u)) &&
           (!user || u == user);
}

static fl_err_t load_changelog(const fl_topology_t *topo, const char *store, int64_t user,
                               fl_kv_t *kv, volatile sig_atomic_t *stop, char *errstr,
                               size_t errstr_size)
{
    const fl_store_def_t *st = fl_topology_store(topo, store);
    const fl_topic_t *cl = st ? fl_topology_topic(topo, st->changelog) : NULL;
    const bool timelines = !strcmp(store, FL_STORE_TIMELINES);
    rd_kafka_topic_partition_list_t *tpl = NULL;
    fl_err_t rc = FL_OK;
    int parts = 0, eofs = 0;

    if (!cl) {
        snprintf(errstr, errstr_size, "the topology has no %s store", store);
        return FL_ERR_INVALID;
    }
    rd_kafka_t *rk = fl_kafka_consumer_new(topo->endpoints.kafka, NULL, errstr, errstr_size);
    if (!rk)
        return FL_ERR_IO;
    if ((rc = fl_kafka_wait_ready(rk, 30000, errstr, errstr_size)))
        goto out;
    /* One user lives in one partition of the store. */
    tpl = rd_kafka_topic_partition_list_new(cl->partitions);
    for (int32_t p = 0; p < cl->partitions; p++)
        if (!user || p == fl_partition_for_id(user, cl->partitions)) {
            rd_kafka_topic_partition_list_add(tpl, cl->kafka, p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            parts++;
        }
    rd_kafka_assign(rk, tpl);
    while (!*stop && eofs < parts && !rc) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "feedline: %s: %s\n", cl->name, rd_kafka_message_errstr(m));
        } else if (keep_record(timelines, user, m->key, m->key_len)) {
            rc = m->payload
                     ? fl_kv_put(kv, m->key, m->key_len, m->payload, m->len, errstr, errstr_size)
                     : fl_kv_delete(kv, m->key, m->key_len, errstr, errstr_size);
        }
        rd_kafka_message_destroy(m);
    }
    if (!rc && *stop) {
        snprintf(errstr, errstr_size, "%s", "interrupted");
        rc = FL_ERR_IO;
    }
out:
    if (tpl)
        rd_kafka_topic_partition_list_destroy(tpl);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

fl_err_t fl_inspect_load_timelines(const fl_topology_t *topo, int64_t user, fl_kv_t *kv,
                                   volatile sig_atomic_t *stop, char *errstr, size_t errstr_size)
{
    return load_changelog(topo, FL_STORE_TIMELINES, user, kv, stop, errstr, errstr_size);
}

fl_err_t fl_inspect_load_store(const fl_topology_t *topo, const char *store, fl_kv_t *kv,
                               volatile sig_atomic_t *stop, char *errstr, size_t errstr_size)
{
    return load_changelog(topo, store, 0, kv, stop, errstr, errstr_size);
}
