/*
 * fl_emit.h - shared by processors that emit timeline operations: a
 * growable array of ids and the grouping of recipients by destination
 * partition, so that one Kafka record carries every recipient of one
 * partition (never one record per follower).
 */
#ifndef FL_EMIT_H
#define FL_EMIT_H

#include "fl_proc.h"
#include "fl_tlop.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fl_i64vec {
    int64_t *v;
    size_t n, cap;
} fl_i64vec_t;

fl_err_t fl_i64vec_push(fl_i64vec_t *a, int64_t x);
void fl_i64vec_free(fl_i64vec_t *a);

/*
 * Forwards op (its posts and kind) to every recipient in recipients: the
 * recipients are split by their partition of feedline.timeline-ops, and one
 * record per non-empty partition is forwarded, in partition order, keyed
 * by key. op->recipients is ignored.
 */
fl_err_t fl_emit_tlop(fl_ctx_t *ctx, const fl_tlop_t *op, const int64_t *recipients, size_t n,
                      int64_t key);

#endif
