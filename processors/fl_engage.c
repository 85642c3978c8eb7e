/*
 * fl_engage.c - the codec of engagement facts and edges (formats in
 * fl_engage.h).
 *
 * Untrusted bytes: feedline.engagement is read by sinks and tools, and
 * feedline.engagement-edges by feedline-affinity, so every decoder checks
 * the exact length of its kind, the magic, the version and each enum byte
 * before it reads a field, and says what was wrong. Encoders trust their
 * input (it comes from the processors' own state). One encode or decode
 * per record, no allocation.
 */
#include "fl_engage.h"
#include "fl_keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FACT_MAGIC   'E'
#define EDGE_MAGIC   'e'
#define FL_ENGAGE_V1 1

int fl_fact_id_count(fl_fact_kind_t kind)
{
    switch (kind) {
    case FL_FACT_POST_LIKES:
    case FL_FACT_FOLLOWERS:
    case FL_FACT_FOLLOWING:
    case FL_FACT_POSTS:
        return 1;
    case FL_FACT_AFFINITY:
    case FL_FACT_LIKE:
    case FL_FACT_FOLLOW:
        return 2;
    case FL_FACT_NOTIFICATION:
        return 3;
    }
    return 0;
}

const char *fl_fact_kind_str(fl_fact_kind_t kind)
{
    static const char *const names[] = {NULL,           "post_likes", "followers",
                                        "following",    "posts",      "affinity",
                                        "notification", "like",       "follow"};
    return fl_fact_id_count(kind) ? names[kind] : "unknown";
}

size_t fl_fact_key_encode(const fl_fact_t *f, uint8_t *out)
{
    int n = fl_fact_id_count(f->kind);
    size_t len = 1;

    out[0] = (uint8_t)f->kind;
    for (int i = 0; i < n; i++) {
        fl_key_enc_i64(out + len, f->id[i]);
        len += 8;
        if (f->kind == FL_FACT_NOTIFICATION && i == 0)
            out[len++] = (uint8_t)f->nkind; /* between recipient and actor */
    }
    return len;
}

size_t fl_fact_value_encode(const fl_fact_t *f, uint8_t *out)
{
    out[0] = FACT_MAGIC;
    out[1] = FL_ENGAGE_V1;
    fl_key_enc_i64(out + 2, f->value);
    return FL_FACT_VALUE_LEN;
}

fl_err_t fl_fact_decode(const void *key, size_t klen, const void *val, size_t vlen, fl_fact_t *f,
                        char *errstr, size_t errstr_size)
{
    const uint8_t *k = key, *v = val;

    memset(f, 0, sizeof(*f));
    if (!key || klen < 1) {
        snprintf(errstr, errstr_size, "engagement fact: empty key");
        return FL_ERR_INVALID;
    }
    int n = fl_fact_id_count((fl_fact_kind_t)k[0]);
    if (!n) {
        snprintf(errstr, errstr_size, "engagement fact: unknown kind %u", k[0]);
        return FL_ERR_INVALID;
    }
    f->kind = (fl_fact_kind_t)k[0];
    size_t want = 1 + 8 * (size_t)n + (f->kind == FL_FACT_NOTIFICATION);
    if (klen != want) {
        snprintf(errstr, errstr_size, "engagement fact: %s key of %zu bytes, expected %zu",
                 fl_fact_kind_str(f->kind), klen, want);
        return FL_ERR_INVALID;
    }
    size_t off = 1;
    for (int i = 0; i < n; i++) {
        f->id[i] = fl_key_dec_i64(k + off);
        off += 8;
        if (f->kind == FL_FACT_NOTIFICATION && i == 0)
            f->nkind = (fl_notif_kind_t)k[off++];
    }
    if (f->kind == FL_FACT_NOTIFICATION) {
        if (f->nkind != FL_NOTIF_LIKE && f->nkind != FL_NOTIF_FOLLOW) {
            snprintf(errstr, errstr_size, "engagement fact: unknown notification kind %u",
                     (unsigned)f->nkind);
            return FL_ERR_INVALID;
        }
        if ((f->nkind == FL_NOTIF_FOLLOW) != (f->id[2] == 0)) {
            snprintf(errstr, errstr_size, "engagement fact: a %s notification %s a post",
                     f->nkind == FL_NOTIF_FOLLOW ? "follow" : "like",
                     f->nkind == FL_NOTIF_FOLLOW ? "names" : "lacks");
            return FL_ERR_INVALID;
        }
    }
    if (!val)
        return FL_OK; /* a tombstone: the fact is gone */
    if (vlen != FL_FACT_VALUE_LEN) {
        snprintf(errstr, errstr_size, "engagement fact: value of %zu bytes, expected %d", vlen,
                 FL_FACT_VALUE_LEN);
        return FL_ERR_INVALID;
    }
    if (v[0] != FACT_MAGIC || v[1] != FL_ENGAGE_V1) {
        snprintf(errstr, errstr_size, "engagement fact: magic 0x%02x version %u, expected '%c' %d",
                 v[0], v[1], FACT_MAGIC, FL_ENGAGE_V1);
        return FL_ERR_INVALID;
    }
    f->present = true;
    f->value = fl_key_dec_i64(v + 2);
    return FL_OK;
}

size_t fl_edge_encode(const fl_edge_t *e, uint8_t *out)
{
    out[0] = EDGE_MAGIC;
    out[1] = FL_ENGAGE_V1;
    out[2] = (uint8_t)e->kind;
    out[3] = e->added ? 1 : 0;
    fl_key_enc_i64(out + 4, e->a);
    fl_key_enc_i64(out + 12, e->b);
    fl_key_enc_i64(out + 20, e->post);
    fl_key_enc_i64(out + 28, e->at);
    return FL_EDGE_LEN;
}

fl_err_t fl_edge_decode(const void *val, size_t vlen, fl_edge_t *e, char *errstr,
                        size_t errstr_size)
{
    const uint8_t *v = val;

    memset(e, 0, sizeof(*e));
    if (!val || vlen != FL_EDGE_LEN) {
        snprintf(errstr, errstr_size, "engagement edge: %s of %zu bytes, expected %d",
                 val ? "value" : "null value", vlen, FL_EDGE_LEN);
        return FL_ERR_INVALID;
    }
    if (v[0] != EDGE_MAGIC || v[1] != FL_ENGAGE_V1) {
        snprintf(errstr, errstr_size, "engagement edge: magic 0x%02x version %u, expected '%c' %d",
                 v[0], v[1], EDGE_MAGIC, FL_ENGAGE_V1);
        return FL_ERR_INVALID;
    }
    if (v[2] != FL_EDGE_LIKE && v[2] != FL_EDGE_FOLLOW) {
        snprintf(errstr, errstr_size, "engagement edge: unknown kind %u", v[2]);
        return FL_ERR_INVALID;
    }
    if (v[3] > 1) {
        snprintf(errstr, errstr_size, "engagement edge: added flag %u, expected 0 or 1", v[3]);
        return FL_ERR_INVALID;
    }
    e->kind = (fl_edge_kind_t)v[2];
    e->added = v[3] == 1;
    e->a = fl_key_dec_i64(v + 4);
    e->b = fl_key_dec_i64(v + 12);
    e->post = fl_key_dec_i64(v + 20);
    e->at = fl_key_dec_i64(v + 28);
    if (e->a <= 0 || e->b <= 0 || e->at < 0 ||
        (e->kind == FL_EDGE_LIKE ? e->post <= 0 : e->post != 0)) {
        snprintf(errstr, errstr_size,
                 "engagement edge: bad ids (a %" PRId64 ", b %" PRId64 ", post %" PRId64
                 ", at %" PRId64 ") for a %s edge",
                 e->a, e->b, e->post, e->at, e->kind == FL_EDGE_LIKE ? "like" : "follow");
        return FL_ERR_INVALID;
    }
    return FL_OK;
}
