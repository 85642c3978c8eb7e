/*
 * fl_engage_fallback.c - the decoder of feedline.engagement facts,
 * written from fl_engage.h's wire format, for as long as the engagement
 * processor's codec (processors/fl_engage.c) is not in the tree: the
 * build compiles it into the Redis sink only when that file is missing.
 * Delete it once the codec has landed.
 */
#include "fl_engage.h"
#include "fl_keys.h"

#include <stdio.h>
#include <string.h>

fl_err_t fl_fact_decode(const void *key, size_t klen, const void *val, size_t vlen, fl_fact_t *f,
                        char *errstr, size_t errstr_size)
{
    const uint8_t *k = key, *v = val;
    memset(f, 0, sizeof(*f));
    if (klen < 9 || k[0] < FL_FACT_POST_LIKES || k[0] > FL_FACT_FOLLOW) {
        snprintf(errstr, errstr_size, "bad fact key");
        return FL_ERR_INVALID;
    }
    f->kind = (fl_fact_kind_t)k[0];
    size_t ids = f->kind <= FL_FACT_POSTS ? 1 : f->kind == FL_FACT_NOTIFICATION ? 3 : 2;
    size_t want = 1 + 8 * ids + (f->kind == FL_FACT_NOTIFICATION);
    if (klen != want) {
        snprintf(errstr, errstr_size, "fact key of %zu bytes, expected %zu", klen, want);
        return FL_ERR_INVALID;
    }
    const uint8_t *p = k + 1;
    for (size_t i = 0; i < ids; i++) {
        if (f->kind == FL_FACT_NOTIFICATION && i == 1)
            f->nkind = (fl_notif_kind_t)*p++;
        f->id[i] = fl_key_dec_i64(p);
        p += 8;
    }
    if (!val) {
        f->present = false;
        return FL_OK;
    }
    if (vlen != FL_FACT_VALUE_LEN || v[0] != 'E' || v[1] != 1) {
        snprintf(errstr, errstr_size, "bad fact value");
        return FL_ERR_INVALID;
    }
    f->present = true;
    f->value = fl_key_dec_i64(v + 2);
    return FL_OK;
}
