/*
 * fl_lag.h - how far a program of the topology is behind its inputs, per
 * input partition, as `feedline lag` and the read API's health thread
 * measure it.
 *
 * A program's position in a partition is the next offset it will read: a
 * processor's is its consumer group's committed offset (moved only by
 * committed transactions, asked with require_stable), a sink's the offset
 * it stored in its destination (fl_sink_store.h). The end is the
 * partition's last stable offset: the end a read_committed consumer can
 * reach (the high watermark while no transaction is open).
 *
 * lag = end - the offset of the first committed record at or after the
 * position, 0 when there is none before the end. Transactional topics hold
 * a commit marker after each transaction's records, and a caught-up
 * consumer's position stands on the last one: end - position would stay at
 * 1 per such partition forever. Finding that first record takes a fetch:
 * fl_lag_measure() reads from each partition that is not at its end, with
 * a read_committed consumer paused after the first record it gets, so
 * about one record batch per partition. Markers and aborted records after
 * that first record count (one marker per committed batch), as they do in
 * the programs' own feedline_consumer_lag gauges.
 *
 * Threading: an fl_lag_t is used by one thread at a time. Workload: one
 * measurement per command, or one a second (the read API).
 */
#ifndef FL_LAG_H
#define FL_LAG_H

#include "fl_err.h"
#include "fl_topology.h"

#include <stddef.h>
#include <stdint.h>

/* No position stored: the program starts at the partition's beginning. */
#define FL_LAG_NONE (-1)

typedef struct fl_lag_part {
    const char *topic; /* borrowed from the topology: its name there */
    const char *kafka; /* its name in Kafka (a generation's prefix applied) */
    int32_t partition;
    int64_t pos;   /* in: the next offset the program reads, or FL_LAG_NONE */
    int64_t end;   /* out: the last stable offset */
    int64_t first; /* out: the first committed record at or after pos, end when none */
    int64_t lag;   /* out: end - first */
} fl_lag_part_t;

/*
 * Every partition of inputs[0..n_inputs) (topics of t), in input then
 * partition order, with pos FL_LAG_NONE and the results at -1; *n their
 * count. NULL when out of memory; the caller frees with free().
 */
fl_lag_part_t *fl_lag_parts(const fl_topology_t *t, char *const *inputs, size_t n_inputs,
                            size_t *n);

/* Sum of parts[i].lag. */
int64_t fl_lag_total(const fl_lag_part_t *parts, size_t n);

typedef struct fl_lag fl_lag_t;

/*
 * A read_committed client of brokers that reads nothing until asked.
 * quiet: librdkafka's own log lines are left out (a command that reports
 * the failure itself). NULL with a message on failure; free with
 * fl_lag_free() (NULL is fine).
 */
fl_lag_t *fl_lag_new(const char *brokers, bool quiet, char *errstr, size_t errstr_size);
void fl_lag_free(fl_lag_t *l);

/* One metadata request: FL_OK once the cluster answers, else
 * FL_ERR_UNAVAILABLE with a message after timeout_ms. */
fl_err_t fl_lag_ready(fl_lag_t *l, int timeout_ms, char *errstr, size_t errstr_size);

/*
 * Sets parts[i].pos to consumer group `group`'s committed offset of each
 * partition (FL_LAG_NONE where it holds none), read with require_stable: a
 * transaction in flight that carries offsets is waited for, within
 * timeout_ms. FL_ERR_TIMEOUT or FL_ERR_UNAVAILABLE with a message.
 */
fl_err_t fl_lag_group_positions(fl_lag_t *l, const char *group, fl_lag_part_t *parts, size_t n,
                                int timeout_ms, char *errstr, size_t errstr_size);

/*
 * Sets end, first and lag of parts[0..n) from their pos (see above),
 * within timeout_ms. FL_ERR_TIMEOUT or FL_ERR_UNAVAILABLE with a message
 * naming the partition that did not answer; the results of parts that did
 * are set either way.
 */
fl_err_t fl_lag_measure(fl_lag_t *l, fl_lag_part_t *parts, size_t n, int timeout_ms, char *errstr,
                        size_t errstr_size);

#endif
