/*
 * fl_merge.h - the merge of one task's inputs (Kafka Streams'
 * PartitionGroup): a queue of buffered records per input and the choice
 * of the record to process next, in (timestamp, input name, offset)
 * order. Pure: no Kafka, no clock of its own (the caller passes now), so
 * it is unit-tested apart from the runtime.
 *
 * When one input has records and another has none, the task either waits
 * for the empty one or merges past it. The rules (README "Processing
 * guarantees"; Kafka Streams' max.task.idle.ms, KIP-695):
 * - an empty input that is known to hold records beyond its position
 *   (its end offset, from the broker, is past it and the fetcher has not
 *   reported the end) is waited for: the records already in Kafka are
 *   merged in order, which makes a replay deterministic. A safety limit
 *   (max_lag_wait_ms) stops the wait for an input that never delivers;
 * - an empty input that is caught up (the fetcher reported its end, or
 *   its end offset is not past its position) or whose end is unknown is
 *   waited for max_idle_ms, counted from the moment the task first found
 *   it empty while another input had records; 0 does not wait, a negative
 *   value does not wait either, even for inputs known to hold records;
 * - once a wait has expired the task merges past the input until the
 *   input delivers a record again; a record arriving or a reset starts
 *   the clock anew.
 * A task with one input never waits.
 *
 * Entries are owned by the merge once pushed and freed with the free
 * callback given at creation (on pop, reset, free). One thread.
 */
#ifndef FL_MERGE_H
#define FL_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_merge fl_merge_t;

/* Frees a pushed item (e.g. a Kafka message with its decoded event). */
typedef void fl_merge_free_fn(void *item);

/* One buffered record: its merge timestamp and offset, and the caller's
 * item. */
typedef struct fl_merge_entry {
    int64_t ts;
    int64_t offset;
    void *item;
} fl_merge_entry_t;

/* n inputs named names[i] (borrowed; they order ties). NULL when out of
 * memory. */
fl_merge_t *fl_merge_new(size_t n, const char *const *names, int64_t max_idle_ms,
                         int64_t max_lag_wait_ms, fl_merge_free_fn *free_fn);
void fl_merge_free(fl_merge_t *m);

/* Queues a record of input i (takes ownership of item, even on failure).
 * -1 when out of memory. */
int fl_merge_push(fl_merge_t *m, size_t i, int64_t ts, int64_t offset, void *item);

/* The fetcher reported the end of input i at the current position. */
void fl_merge_eof(fl_merge_t *m, size_t i);

/* The broker's end offset of input i as last known (-1: unknown). The
 * highest value seen is kept until a reset. */
void fl_merge_set_end(fl_merge_t *m, size_t i, int64_t end);

/* Sets input i's position (the next offset to process; -1 unknown). */
void fl_merge_set_position(fl_merge_t *m, size_t i, int64_t position);
int64_t fl_merge_position(const fl_merge_t *m, size_t i);

typedef enum fl_merge_state {
    FL_MERGE_READY,   /* *input holds the input to pop next */
    FL_MERGE_EMPTY,   /* nothing buffered */
    FL_MERGE_WAITING, /* an empty input is waited for; *input names it */
} fl_merge_state_t;

/* Chooses the next record at time now (ms, any monotonic clock). Reading
 * the head with fl_merge_head does not consume it. */
fl_merge_state_t fl_merge_next(fl_merge_t *m, int64_t now, size_t *input);

/* The head of input i, NULL when empty; borrowed until the pop. */
const fl_merge_entry_t *fl_merge_head(const fl_merge_t *m, size_t i);

/* Drops the head of input i (frees its item) and moves its position past it. */
void fl_merge_pop(fl_merge_t *m, size_t i);

/* Records buffered for input i. */
size_t fl_merge_buffered(const fl_merge_t *m, size_t i);

/* Drops every buffered record, the end offsets, end-of-input flags and
 * wait clocks (a rewind); positions become -1 until set again. */
void fl_merge_reset(fl_merge_t *m);

/* Whether the wait for input i, known to hold records, expired (it is
 * merged past until it delivers), and its end offset as last known. */
bool fl_merge_lag_expired(const fl_merge_t *m, size_t i);
int64_t fl_merge_end(const fl_merge_t *m, size_t i);

/* Times the merge gave up waiting for an input known to hold records
 * (max_lag_wait_ms expired), and for an idle input (max_idle_ms). */
void fl_merge_stats(const fl_merge_t *m, uint64_t *lag_giveups, uint64_t *idle_giveups);

#endif
