/*
 * fl_facts.h - what feedline-engagement and feedline-affinity share: the
 * forwarding of a fact to feedline.engagement, and the counts they keep
 * next to the sets they count.
 *
 * A count lives in the processor's store under (COUNT, fact kind, ids)
 * (fl_keys.h) and changes only together with a change of its set's
 * membership, never per event, so a repeated event cannot move it. The
 * fact it publishes is the new count, or a tombstone when it reaches 0
 * (the store key is then deleted too).
 */
#ifndef FL_FACTS_H
#define FL_FACTS_H

#include "fl_engage.h"
#include "fl_proc.h"

/* Forwards f (a tombstone when !f->present) to feedline.engagement, at the
 * partition of its first id. */
fl_err_t fl_fact_forward(fl_ctx_t *ctx, const fl_fact_t *f);

/* Forwards the fact (kind, ids, nkind) with value, or its tombstone when
 * !present. ids holds fl_fact_id_count(kind) ids. */
fl_err_t fl_fact_send(fl_ctx_t *ctx, fl_fact_kind_t kind, const int64_t *ids, fl_notif_kind_t nkind,
                      bool present, int64_t value);

/* The count (kind, ids) of store s; 0 when absent. */
fl_err_t fl_fact_count_get(fl_store_t *s, fl_fact_kind_t kind, const int64_t *ids, int64_t *count);

/* Adds delta (+1 or -1: one member joined or left the set) to the count
 * (kind, ids) of store s and forwards the new value. FL_ERR_CORRUPT when
 * the count would go below 0: the set and its count disagree. */
fl_err_t fl_fact_count_add(fl_ctx_t *ctx, fl_store_t *s, fl_fact_kind_t kind, const int64_t *ids,
                           int delta);

#endif
