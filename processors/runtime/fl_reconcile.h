/*
 * fl_reconcile.h - what a task does with a store it opens, decided from
 * numbers alone (no Kafka, no RocksDB), so that the rules are unit-tested:
 * whether the store can be trusted or must be wiped and rebuilt from its
 * changelog, whether it must replay its changelog, and where each input
 * resumes. README "Processing guarantees" states the same rules.
 */
#ifndef FL_RECONCILE_H
#define FL_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FL_WIPE_AHEAD_OF_CHANGELOG,   /* position past the changelog's end */
    FL_WIPE_PAST_INPUT_END,       /* an input offset past the input's end */
    FL_WIPE_TOMBSTONES_EXPIRED,   /* behind, and older than delete.retention.ms */
    FL_WIPE_NO_COMMITTED_OFFSETS, /* offsets the consumer group does not have */
    FL_WIPE__COUNT
};

/* Static name of a wipe reason, for logs and metrics. */
const char *fl_wipe_reason_name(int reason);

/* What is known of one store and its task's inputs when it is opened. */
typedef struct fl_reconcile_in {
    int64_t position;      /* the store's next changelog offset (0: new store) */
    int64_t changelog_end; /* the changelog's end offset */
    size_t n_inputs;
    const int64_t *local;        /* the store's input offsets, -1 none */
    const int64_t *input_end;    /* each input's end offset, -1 unknown */
    const int64_t *committed;    /* the group's committed offsets, -1 none */
    int64_t committed_at_ms;     /* wall time of the store's last commit, -1 unknown */
    int64_t now_ms;              /* wall time now */
    int64_t delete_retention_ms; /* the changelog's, -1 unknown */
} fl_reconcile_in_t;

/* True when the changelog holds committed records past the store's
 * position: more than the control marker that ends every transaction. */
bool fl_reconcile_behind(int64_t position, int64_t changelog_end);

/* Why the store must be wiped and rebuilt, or -1 when it can be trusted.
 * Where an input resumes is the group's committed offset (the authority,
 * moved by committed transactions only), or the beginning when the group
 * has none: a store whose own offsets the group lacks is wiped
 * (FL_WIPE_NO_COMMITTED_OFFSETS), so the store's offsets are a check,
 * never a resume point. */
int fl_reconcile_wipe(const fl_reconcile_in_t *in);

#endif
