/*
 * fl_facts.c - forwarding engagement facts and keeping the counts behind
 * them (see fl_facts.h).
 *
 * Invariant: a count key exists exactly when its count is positive, so a
 * set that empties leaves nothing behind in the store, and the fact and
 * the store agree (tombstone and absent key).
 */
#include "fl_facts.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_topics.h"

fl_err_t fl_fact_forward(fl_ctx_t *ctx, const fl_fact_t *f)
{
    uint8_t key[FL_FACT_KEY_MAX], val[FL_FACT_VALUE_LEN];
    int32_t parts = fl_ctx_partitions(ctx, FL_TOPIC_ENGAGEMENT);

    if (parts < 1)
        return FL_ERR_CONFIG;
    size_t klen = fl_fact_key_encode(f, key);
    size_t vlen = f->present ? fl_fact_value_encode(f, val) : 0;
    return fl_ctx_forward(ctx, FL_TOPIC_ENGAGEMENT, fl_partition_for_id(f->id[0], parts), key, klen,
                          f->present ? val : NULL, vlen);
}

fl_err_t fl_fact_send(fl_ctx_t *ctx, fl_fact_kind_t kind, const int64_t *ids, fl_notif_kind_t nkind,
                      bool present, int64_t value)
{
    fl_fact_t f = {.kind = kind, .nkind = nkind, .present = present, .value = present ? value : 0};
    for (int i = 0; i < fl_fact_id_count(kind); i++)
        f.id[i] = ids[i];
    return fl_fact_forward(ctx, &f);
}

fl_err_t fl_fact_count_get(fl_store_t *s, fl_fact_kind_t kind, const int64_t *ids, int64_t *count)
{
    fl_key_t k;
    uint8_t v[8];
    size_t vlen;
    bool found;

    *count = 0;
    fl_key_count(&k, (uint8_t)kind, ids, (size_t)fl_fact_id_count(kind));
    fl_err_t err = fl_store_get(s, k.buf, k.len, v, sizeof(v), &vlen, &found);
    if (err || !found)
        return err;
    if (vlen != sizeof(v))
        return FL_ERR_CORRUPT;
    *count = fl_key_dec_i64(v);
    return *count > 0 ? FL_OK : FL_ERR_CORRUPT;
}

fl_err_t fl_fact_count_add(fl_ctx_t *ctx, fl_store_t *s, fl_fact_kind_t kind, const int64_t *ids,
                           int delta)
{
    fl_key_t k;
    uint8_t v[8];
    int64_t n;

    fl_err_t err = fl_fact_count_get(s, kind, ids, &n);
    if (err)
        return err;
    n += delta;
    if (n < 0)
        return FL_ERR_CORRUPT;
    fl_key_count(&k, (uint8_t)kind, ids, (size_t)fl_fact_id_count(kind));
    if (n == 0) {
        err = fl_store_delete(s, k.buf, k.len);
    } else {
        fl_key_enc_i64(v, n);
        err = fl_store_put(s, k.buf, k.len, v, sizeof(v));
    }
    return err ? err : fl_fact_send(ctx, kind, ids, 0, n > 0, n);
}
