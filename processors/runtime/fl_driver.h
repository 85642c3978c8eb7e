/*
 * fl_driver.h - the topology test driver, like Kafka Streams'
 * TopologyTestDriver: one processor, one task partition, the real
 * fl_store layer, no Kafka. Tests pipe records in, read the forwarded
 * outputs and the changelog records each commit produced, and inspect
 * the stores. Test code: linked only by the tests (fl_testdriver).
 *
 * Every record is processed through fl__ctx_process, as the runtime
 * does. By default each pipe is one batch on the in-memory backend: the
 * record's state changes are captured (as the runtime would produce them
 * to the changelog) and committed with its offset. With fl_driver_new_opts
 * a batch holds several records, and the stores can be RocksDB with
 * background writes and the read cache, as the runtime runs them: then
 * the batch's writes stay pending, read back through the store's layers,
 * until the batch's last record, or fl_driver_flush, commits them; the
 * changelog holds one record per key changed in the batch.
 *
 * A record rejected with FL_ERR_INVALID is "dead-lettered": the driver
 * counts it and the batch goes on (its offset commits with the batch); it
 * changed nothing, which fl__ctx_process checks (a processor that wrote
 * or forwarded before rejecting gets FL_ERR_CORRUPT). Any other error
 * abandons the open batch, like the runtime's aborted transaction: the
 * state changes, the outputs still held and the dead letters of every
 * record of the batch are dropped, and the offsets go back to the last
 * commit.
 *
 * Offsets: each topic piped has its own, from 0 up, one per record; a
 * commit stores the next offset of every topic piped so far.
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

typedef enum fl_driver_backend {
    FL_DRIVER_MEMORY = 0, /* the in-memory key-value store */
    /* RocksDB in a temporary directory that fl_driver_free removes, with
     * background writes on, as the runtime opens its stores */
    FL_DRIVER_ROCKSDB,
} fl_driver_backend_t;

typedef struct fl_driver_opts {
    fl_driver_backend_t backend;
    /* Records per batch: a commit after every batch_records records piped
     * (failed ones not counted). 0 counts as 1. */
    size_t batch_records;
    /* Parent of RocksDB's temporary directory; NULL: $TMPDIR, else /tmp. */
    const char *tmp_dir;
    /* RocksDB with the runtime's block cache and write buffer sizes
     * (benchmarks) instead of the small ones that keep tests cheap. */
    bool runtime_sizes;
    /* RocksDB in bulk-load mode, as a rebuild (--rebuild) keeps its stores. */
    bool bulk;
} fl_driver_opts_t;

/* topo is borrowed and must outlive the driver. NULL with a message when
 * the processor is not in the topology, a store cannot be opened or out
 * of memory. Every store has the read cache of the topology's settings.
 * fl_driver_new is fl_driver_new_opts with opts NULL: one record per
 * batch, in memory. */
fl_driver_t *fl_driver_new(const fl_topology_t *topo, const fl_processor_def_t *def,
                           int32_t partition, char *errstr, size_t errstr_size);
fl_driver_t *fl_driver_new_opts(const fl_topology_t *topo, const fl_processor_def_t *def,
                                int32_t partition, const fl_driver_opts_t *opts, char *errstr,
                                size_t errstr_size);
/* Abandons an open batch (flush first to keep it). */
void fl_driver_free(fl_driver_t *d);

/* Pipes one input event (as if decoded from topic). Returns the
 * processor's result, errstr getting its message; or, when the record
 * ended a batch whose commit failed, the commit's error. */
fl_err_t fl_driver_pipe_event(fl_driver_t *d, const char *topic, const fl_event_t *ev, char *errstr,
                              size_t errstr_size);

/* Pipes one raw record (internal topics). */
fl_err_t fl_driver_pipe_raw(fl_driver_t *d, const char *topic, const void *key, size_t klen,
                            const void *val, size_t vlen, char *errstr, size_t errstr_size);

/* Commits the open batch, if any, and waits for the stores' background
 * writes; the error of a commit or write that failed. After a failed
 * commit the stores may disagree with each other and with the
 * changelog, as in the runtime, which then stops: so should the test. */
fl_err_t fl_driver_flush(fl_driver_t *d, char *errstr, size_t errstr_size);

/* Outputs forwarded so far, oldest first, as they are forwarded (before
 * their batch commits); borrowed until the next call that pipes, flushes
 * or clears. */
const fl_driver_record_t *fl_driver_outputs(const fl_driver_t *d, size_t *n);
/* Changelog records of the commits so far (store name as topic). */
const fl_driver_record_t *fl_driver_changelog(const fl_driver_t *d, size_t *n);
void fl_driver_clear_outputs(fl_driver_t *d);

/* The task's store by name; borrowed. Reads see the open batch. */
fl_store_t *fl_driver_store(fl_driver_t *d, const char *name);

/* Records rejected as invalid (dead-lettered), those of the open batch
 * included. */
size_t fl_driver_dead_letters(const fl_driver_t *d);

#endif
