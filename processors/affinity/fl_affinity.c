/*
 * fl_affinity.c - like and follow edges into affinity and following
 * counts (rules in fl_affinity.h).
 *
 * Workload: one point read per edge; a transition writes its set member
 * and its count and forwards one fact. Edges are only published when a
 * set of feedline-engagement changed, so most records are transitions.
 *
 * Invariants kept in the store: COUNT(AFFINITY, v, a) = |LIKED(v, a, *)|
 * and COUNT(FOLLOWING, u) = |FOLLOWING(u, *)|; a count that would go
 * negative is FL_ERR_CORRUPT. Every FL_ERR_INVALID is decided before the
 * first write or forward (fl_proc.h).
 */
#include "fl_affinity.h"
#include "fl_facts.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static fl_err_t affinity_process(fl_ctx_t *ctx, const fl_proc_record_t *rec, char *errstr,
                                 size_t errstr_size)
{
    fl_store_t *s = fl_ctx_store(ctx, FL_STORE_AFFINITY);
    fl_edge_t e;
    char key[24];
    fl_key_t k;
    uint8_t v[8];
    size_t vlen;
    bool found;

    if (!s) {
        snprintf(errstr, errstr_size, "affinity: no store %s", FL_STORE_AFFINITY);
        return FL_ERR_CONFIG;
    }
    if (fl_edge_decode(rec->value, rec->value_len, &e, errstr, errstr_size))
        return FL_ERR_INVALID;
    int klen = snprintf(key, sizeof(key), "%" PRId64, e.a);
    if (!rec->key || rec->key_len != (size_t)klen || memcmp(rec->key, key, (size_t)klen)) {
        snprintf(errstr, errstr_size, "engagement edge of %" PRId64 " is not keyed by it", e.a);
        return FL_ERR_INVALID;
    }
    int32_t parts = fl_ctx_partitions(ctx, rec->topic), want = fl_ctx_partition(ctx);
    if (parts > 0 && fl_partition_for_id(e.a, parts) != want) {
        snprintf(errstr, errstr_size, "%s of %" PRId64 " belongs to partition %d, not %d",
                 rec->topic, e.a, fl_partition_for_id(e.a, parts), want);
        return FL_ERR_INVALID;
    }

    bool like = e.kind == FL_EDGE_LIKE;
    if (like)
        fl_key_triple(&k, FL_KEY_TAG_LIKED, e.a, e.b, e.post);
    else
        fl_key_edge(&k, FL_KEY_TAG_FOLLOWING, e.a, e.b);
    fl_err_t err = fl_store_get(s, k.buf, k.len, v, sizeof(v), &vlen, &found);
    if (!err && found == e.added)
        return FL_OK; /* the set has it already, or never had it */
    if (!err && e.added) {
        fl_key_enc_i64(v, e.at);
        err = fl_store_put(s, k.buf, k.len, v, sizeof(v));
    } else if (!err) {
        err = fl_store_delete(s, k.buf, k.len);
    }
    const int64_t ids[2] = {e.a, e.b};
    if (!err)
        err = fl_fact_count_add(ctx, s, like ? FL_FACT_AFFINITY : FL_FACT_FOLLOWING, ids,
                                e.added ? 1 : -1);
    if (err)
        snprintf(errstr, errstr_size, "affinity: %s edge %" PRId64 " -> %" PRId64 ": %s (%s)",
                 like ? "like" : "follow", e.a, e.b, fl_err_str(err), fl_store_errmsg(s));
    return err;
}

const fl_processor_def_t fl_affinity_processor = {
    .name = "affinity",
    .process = affinity_process,
};
