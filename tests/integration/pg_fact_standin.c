/*
 * pg_fact_standin.c - the engagement fact codec of fl_engage.h, for the
 * PostgreSQL sink's tests only, compiled while processors/fl_engage.c is
 * not part of the tree (tests/integration/CMakeLists.txt). It follows the
 * wire format written in fl_engage.h and nothing else.
 */
#include "fl_engage.h"
#include "fl_keys.h"

#include <stdio.h>
#include <string.h>

static int fact_ids(fl_fact_kind_t kind)
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

size_t fl_fact_key_encode(const fl_fact_t *f, uint8_t *out)
{
    size_t len = 0;
    out[len++] = (uint8_t)f->kind;
    for (int i = 0; i < fact_ids(f->kind); i++) {
        if (f->kind == FL_FACT_NOTIFICATION && i == 1)
            out[len++] = (uint8_t)f->nkind;
        fl_key_enc_i64(out + len, f->id[i]);
        len += 8;
    }
    return len;
}

size_t fl_fact_value_encode(const fl_fact_t *f, uint8_t *out)
{
    out[0] = 'E';
    out[1] = 1;
    fl_key_enc_i64(out + 2, f->value);
    return FL_FACT_VALUE_LEN;
}

fl_err_t fl_fact_decode(const void *key, size_t klen, const void *val, size_t vlen, fl_fact_t *f,
                        char *errstr, size_t errstr_size)
{
    const uint8_t *k = key, *v = val;
    size_t off = 1;

    memset(f, 0, sizeof(*f));
    if (!klen || !fact_ids((fl_fact_kind_t)k[0]))
        goto bad;
    f->kind = (fl_fact_kind_t)k[0];
    for (int i = 0; i < fact_ids(f->kind); i++) {
        if (f->kind == FL_FACT_NOTIFICATION && i == 1) {
            if (off >= klen)
                goto bad;
            f->nkind = (fl_notif_kind_t)k[off++];
        }
        if (off + 8 > klen)
            goto bad;
        f->id[i] = fl_key_dec_i64(k + off);
        off += 8;
    }
    if (off != klen)
        goto bad;
    if (!val)
        return FL_OK;
    if (vlen != FL_FACT_VALUE_LEN || v[0] != 'E' || v[1] != 1)
        goto bad;
    f->present = true;
    f->value = fl_key_dec_i64(v + 2);
    return FL_OK;
bad:
    snprintf(errstr, errstr_size, "malformed engagement fact (key %zu bytes, value %zu)", klen,
             vlen);
    return FL_ERR_INVALID;
}
