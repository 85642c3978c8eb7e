/*
 * fl_proc.h - what a processor's pure logic sees: one input record at a
 * time and a context to read and write its partition's stores and to
 * forward output records. Like a Kafka Streams Processor, the logic never
 * touches librdkafka, sockets or files; the runtime (fl_runtime.h) and the
 * topology test driver (fl_driver.h) both provide the context.
 *
 * Within one batch, reads see the batch's own earlier writes; the batch's
 * writes, the outputs it forwarded and the input offsets commit together
 * or not at all. A processor must therefore be deterministic: the same
 * records against the same state give the same writes and outputs.
 *
 * Errors: process() returns FL_OK, or FL_ERR_INVALID with a message when
 * the record is invalid (the runtime sends it to the dead-letter topic and
 * goes on with the batch), or any other error when processing cannot go
 * on (a store failed); the runtime then abandons the batch uncommitted.
 * A record is rejected before anything is written for it: no store put or
 * delete and no forward may come before FL_ERR_INVALID, since the batch
 * cannot take back part of one record. The runtime and the test driver
 * check this, and treat a violation as FL_ERR_CORRUPT (fl_ctx_int.h).
 * Past its first write a processor reports failures with other errors.
 */
#ifndef FL_PROC_H
#define FL_PROC_H

#include "fl_err.h"
#include "fl_event.h"
#include "fl_store.h"
#include "fl_topology.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fl_ctx fl_ctx_t;

typedef struct fl_proc_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /* Kafka record timestamp, ms */
    const void *key;   /* borrowed for the call */
    size_t key_len;
    const void *value;
    size_t value_len;
    /* For records of input topics: the decoded event (the runtime decodes
     * and validates, and dead-letters what fails). NULL otherwise. */
    const fl_event_t *event;
} fl_proc_record_t;

typedef struct fl_processor_def {
    const char *name; /* as in the topology's processors */
    /* Called once per input record, in the task's merged order. */
    fl_err_t (*process)(fl_ctx_t *ctx, const fl_proc_record_t *rec, char *errstr,
                        size_t errstr_size);
} fl_processor_def_t;

/* The store named name of the current task; NULL when the processor has
 * no such store (a programming error). Borrowed for the call. */
fl_store_t *fl_ctx_store(fl_ctx_t *ctx, const char *name);

/* The partition this task owns (of every input topic). */
int32_t fl_ctx_partition(const fl_ctx_t *ctx);

const fl_settings_t *fl_ctx_settings(const fl_ctx_t *ctx);

/* Partition count of topic, from the topology; -1 when unknown. */
int32_t fl_ctx_partitions(const fl_ctx_t *ctx, const char *topic);

/*
 * Queues an output record to topic and partition (explicit; use
 * fl_partition_for_id() to choose). Key and value are copied. The record
 * is produced when the batch commits and counted as acknowledged before
 * the state commits. FL_ERR_CONFIG for a topic that is not an output of
 * the processor or a partition it does not have, and for a topic the
 * producer refuses. Never FL_ERR_INVALID: a failed forward is not the
 * record's fault, and passing it up must not dead-letter the record.
 */
fl_err_t fl_ctx_forward(fl_ctx_t *ctx, const char *topic, int32_t partition, const void *key,
                        size_t klen, const void *val, size_t vlen);

/* Adds n to the processor's counter name (a static string), exported by
 * the runtime as feedline_<name>_total; the test driver ignores it. */
void fl_ctx_count(fl_ctx_t *ctx, const char *name, uint64_t n);

#endif
