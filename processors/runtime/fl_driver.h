/*
 * fl_driver.h - the topology test driver, like Kafka Streams'
 * TopologyTestDriver: one processor, one task partition, in-memory stores
 * (the real fl_store layer over the in-memory backend), no Kafka. Tests
 * pipe records in, read the forwarded outputs and the changelog records
 * each commit produced, and inspect the stores.
 *
 * Each pipe is one batch: the record is processed through
 * fl__ctx_process, as the runtime does, and unless it failed its state
 * changes are captured (as the runtime would produce them to the
 * changelog) and committed with the record's offset. A record rejected
 * with FL_ERR_INVALID is "dead-lettered": the driver counts it and
 * commits its offset; it changed nothing, which fl__ctx_process checks (a
 * processor that wrote or forwarded before rejecting gets FL_ERR_CORRUPT).
 * After any other error nothing of the record is kept.
 */
#ifndef FL_DRIVER_H
#define FL_DRIVER_H

#include "fl_proc.h"

typedef struct fl_driver fl_driver_t;

/* One captured record (output or changelog); value NULL for a tombstone. */
typedef struct fl_driver_record {
    char *topic;
    int32_t partition;
    void *key;
    size_t klen;
    void *value;
    size_t vlen;
} fl_driver_record_t;

/* topo is borrowed and must outlive the driver. NULL with a message when
 * the processor is not in the topology or out of memory. */
fl_driver_t *fl_driver_new(const fl_topology_t *topo, const fl_processor_def_t *def,
                           int32_t partition, char *errstr, size_t errstr_size);
void fl_driver_free(fl_driver_t *d);

/* Pipes one input event (as if decoded from topic). Returns the
 * processor's result; errstr gets its message. */
fl_err_t fl_driver_pipe_event(fl_driver_t *d, const char *topic, const fl_event_t *ev, char *errstr,
                              size_t errstr_size);

/* Pipes one raw record (internal topics). */
fl_err_t fl_driver_pipe_raw(fl_driver_t *d, const char *topic, const void *key, size_t klen,
                            const void *val, size_t vlen, char *errstr, size_t errstr_size);

/* Outputs forwarded so far, oldest first; borrowed until the next call
 * that pipes or clears. */
const fl_driver_record_t *fl_driver_outputs(const fl_driver_t *d, size_t *n);
/* Changelog records captured so far (store name as topic). */
const fl_driver_record_t *fl_driver_changelog(const fl_driver_t *d, size_t *n);
void fl_driver_clear_outputs(fl_driver_t *d);

/* The task's store by name; borrowed. */
fl_store_t *fl_driver_store(fl_driver_t *d, const char *name);

/* Records that failed as invalid (dead-lettered). */
size_t fl_driver_dead_letters(const fl_driver_t *d);

#endif
