/*
 * fl_emit.c - grouping recipients by partition and forwarding timeline
 * operations (see fl_emit.h).
 *
 * Recipients keep their input order within a partition, so the output is
 * a pure function of the input: replays produce identical records.
 */
#include "fl_emit.h"
#include "fl_partition.h"
#include "fl_grow.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

fl_err_t fl_i64vec_push(fl_i64vec_t *a, int64_t x)
{
    int64_t *v = fl_grow(a->v, &a->cap, a->n, sizeof(*v), 16);
    if (!v)
        return FL_ERR_NOMEM;
    a->v = v;
    a->v[a->n++] = x;
    return FL_OK;
}

void fl_i64vec_free(fl_i64vec_t *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

fl_err_t fl_emit_tlop(fl_ctx_t *ctx, const fl_tlop_t *op, const int64_t *recipients, size_t n,
                      int64_t key)
{
    int32_t parts = fl_ctx_partitions(ctx, FL_TOPIC_TIMELINE_OPS);
    int32_t *part_of = NULL;
    int64_t *grouped = NULL;
    size_t *start = NULL;
    unsigned char *buf = NULL;
    char keybuf[24];
    fl_err_t err = FL_OK;

    if (n == 0)
        return FL_OK;
    if (parts < 1)
        return FL_ERR_CONFIG;
    part_of = malloc(n * sizeof(*part_of));
    grouped = malloc(n * sizeof(*grouped));
    start = calloc((size_t)parts + 1, sizeof(*start));
    if (!part_of || !grouped || !start) {
        err = FL_ERR_NOMEM;
        goto out;
    }
    /* Counting sort by partition: stable, one pass to count, one to place. */
    for (size_t i = 0; i < n; i++) {
        part_of[i] = fl_partition_for_id(recipients[i], parts);
        start[part_of[i] + 1]++;
    }
    for (int32_t p = 0; p < parts; p++)
        start[p + 1] += start[p];
    {
        size_t *next = malloc((size_t)parts * sizeof(*next));
        if (!next) {
            err = FL_ERR_NOMEM;
            goto out;
        }
        for (int32_t p = 0; p < parts; p++)
            next[p] = start[p];
        for (size_t i = 0; i < n; i++)
            grouped[next[part_of[i]]++] = recipients[i];
        free(next);
    }
    int klen = snprintf(keybuf, sizeof(keybuf), "%" PRId64, key);
    for (int32_t p = 0; p < parts && !err; p++) {
        size_t cnt = start[p + 1] - start[p];
        if (!cnt)
            continue;
        fl_tlop_t part = *op;
        part.recipients = grouped + start[p];
        part.n_recipients = (uint32_t)cnt;
        size_t size = fl_tlop_encoded_size(&part);
        unsigned char *nb = realloc(buf, size);
        if (!nb) {
            err = FL_ERR_NOMEM;
            break;
        }
        buf = nb;
        fl_tlop_encode(&part, buf);
        err = fl_ctx_forward(ctx, FL_TOPIC_TIMELINE_OPS, p, keybuf, (size_t)klen, buf, size);
    }
out:
    free(part_of);
    free(grouped);
    free(start);
    free(buf);
    return err;
}
