/*
 * fl_rt_int.h - the processor runtime's parts (see fl_runtime.h), as its
 * files share them. Not for processors.
 *
 * The runtime is split along Kafka Streams' seams:
 *   fl_runtime.c    clients, group membership and assignment, the loop
 *   fl_merge.c      a task's input queues and the choice of the next record
 *   fl_rt_task.c    tasks: opening their stores, restore from changelogs
 *   fl_rt_txn.c     the transaction: producing, dead letters, commit,
 *                   abandon and rewind
 *   fl_rt_metrics.c the metrics endpoint and its text
 *   fl_rt_opts.c    the command line
 *   fl_rt_sink.c    the sink role: offsets claimed from and written to the
 *                   destination instead of stores and transactions
 * Everything runs on the one processing thread except the metrics
 * endpoint, which reads a snapshot under snap_lock.
 */
#ifndef FL_RT_INT_H
#define FL_RT_INT_H

#include "fl_codec.h"
#include "fl_ctx_int.h"
#include "fl_merge.h"
#include "fl_reconcile.h"
#include "fl_proc.h"
#include "fl_sink.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define FL_RT_MAX_INPUTS     8
#define FL_RT_MAX_STORES     8
#define FL_RT_MAX_OUT_TOPICS 16
#define FL_RT_MAX_COUNTERS   16
/* Changelogs written before input offsets travelled in the transaction
 * hold offset markers under this key; restore skips them. */
#define FL_RT_MARKER_KEY    "\0offsets"
#define FL_RT_MARKER_KLEN   8
#define FL_RT_RESTORE_CHUNK 20000
/* The wall-clock time of a store's last commit is kept among its input
 * offsets under this name (no processor has an input of that name). */
#define FL_RT_COMMITTED_AT "__feedline.committed-at"
/* Every forwarded record names its input record in this header:
 * "topic/partition/offset". */
#define FL_RT_SOURCE_HEADER "feedline.source"
/* The largest value a dead letter keeps (the producer allows 2 MiB per
 * record, headers included); a larger one is dropped and its size kept in
 * a header. */
#define FL_RT_DLQ_MAX_VALUE (1536 * 1024)
/* How long one loop iteration may spend restoring. */
#define FL_RT_RESTORE_SLICE_MS 200

/* How long a task waits for an input known to hold records that it does
 * not deliver, before merging past it (fl_merge.h). */
#define FL_RT_MAX_LAG_WAIT_MS 30000
/* Records polled per loop at most: a batch's, then what librdkafka
 * already holds (fl_runtime.c, run_batches). */
#define FL_RT_DRAIN_MAX 200000
/* fences of one client within 30 s that stop an instance (fl_runtime.c) */
#define FL_RT_FENCES 3
/* Processing time of one batch at most: its transaction must commit well
 * within transaction.timeout.ms (15 s) however much the merge holds. */
#define FL_RT_MAX_PROCESS_MS 2000

/* The name in Kafka of a topology topic (a generation's prefix applied,
 * fl_topology_kafka_name): every librdkafka call takes this one, the
 * processors' and sinks' logic the topology's name. */
#define RT_KAFKA(rt, name) fl_topology_kafka_name((rt)->topo, (name))

typedef struct rt_opts {
    const char *topology_path;
    const char *schemas_dir;
    const char *state_dir;
    const char *instance;
    const char *metrics_addr;
    int max_idle_ms;
    const char *input_until; /* --input-until: TOPIC:PARTITION:OFFSET,... or NULL */
    bool rebuild;            /* --rebuild: feedline replay's batches */
} rt_opts_t;

/* A buffered input record, decoded when it came from an input topic;
 * the merge's item. */
typedef struct rt_entry {
    rd_kafka_message_t *m;
    fl_event_t ev;
    fl_err_t decode_err;
    char *errmsg; /* decode/validation failure, malloc'd */
} rt_entry_t;

typedef struct rt_task {
    int32_t partition;
    fl_store_t **stores;
    fl_merge_t *merge;
    bool dirty; /* processed records since the last commit */
    /* Highest changelog offset acknowledged in the open transaction, per
     * store (delivery reports); -1 when the batch changed nothing. */
    int64_t changelog_last[FL_RT_MAX_STORES];
    uint64_t lag_giveups_logged;
    int64_t input_end[FL_RT_MAX_INPUTS]; /* asked of the broker at assignment; -1 unknown */
    int64_t committed[FL_RT_MAX_INPUTS]; /* the group's committed offsets; -1 none */
    int64_t local[FL_RT_MAX_INPUTS];     /* the store's checkpoint; -1 none */
    /* Restoring: the inputs are paused until every store caught up. */
    bool restoring, paused;
    bool input_paused[FL_RT_MAX_INPUTS];   /* above buffered_records_per_partition */
    int64_t assigned_at[FL_RT_MAX_INPUTS]; /* the offsets given to assign(); -1 beginning */
    bool bulk[FL_RT_MAX_STORES];           /* store open in bulk-load mode */
    bool rs_needed[FL_RT_MAX_STORES];      /* store behind its changelog */
    int64_t rs_hi[FL_RT_MAX_STORES];       /* changelog end at assignment */
    size_t rs_store;                       /* the store being restored */
    rd_kafka_t *rs_consumer;               /* reading its changelog */
    int64_t rs_pos, rs_applied, rs_t0;
    fl_ctx_t ctx;
} rt_task_t;

typedef struct rt_metrics {
    const char *counter_names[FL_RT_MAX_COUNTERS]; /* static strings from processors */
    uint64_t counters[FL_RT_MAX_COUNTERS];
    uint64_t records_in, records_out, dead_letters, batches, commits, commit_failures;
    double batch_ms_sum, commit_ms_sum;
    double phase_ms_sum[4]; /* of commits: changelog, offsets, transaction, stores */
    uint64_t restored_records;
    uint64_t wipes[FL_WIPE__COUNT];
    uint64_t fenced;          /* batches the group refused (a newer generation owns them) */
    uint64_t producer_resets; /* producers renewed after Kafka aborted their transaction */
    uint64_t consumer_resets; /* consumers renewed after the group fenced their instance id */
    uint64_t dirs_removed;    /* store folders of partitions not owned for long */
    uint64_t pauses;          /* input partitions paused above the buffer bound */
    /* sinks */
    uint64_t sink_flushes, sink_retries, sink_rebuilds, sink_claims, sink_wipes;
    double sink_flush_ms_sum;
} rt_metrics_t;

/* The sink role's state (fl_rt_sink.c). Positions are the next offset to
 * apply per [input][partition]; -2 when the partition is not assigned. */
typedef struct rt_sink {
    const fl_sink_def_t *def;
    void *state;
    fl_processor_t view; /* the sink's entry seen as a processor: name, group, inputs */
    fl_processor_def_t pdef;
    int64_t *pos;
    bool *touched;   /* [input][partition] has records in the open batch */
    bool pending;    /* a batch awaits a flush the destination refused for now */
    bool paused;     /* every assigned partition is paused (outage, fenced) */
    bool fenced;     /* a newer owner wrote: no writes until the next assignment */
    size_t in_batch; /* records added to the open batch */
    int backoff_ms;
    int64_t retry_at, last_check_ms;
    fl_sink_part_t *parts; /* scratch for flush: touched parts */
    int64_t *next;
} rt_sink_t;

typedef struct rt {
    const fl_processor_def_t *def;
    rt_sink_t *sink; /* NULL for a processor */
    rt_opts_t opts;
    volatile sig_atomic_t *stop; /* set by SIGINT/SIGTERM */
    fl_topology_t *topo;
    const fl_processor_t *proc;
    fl_codec_t *codec;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    /* Topic handles of the producer, by name: producing by name looks the
     * topic up under a lock for every record. */
    rd_kafka_topic_t *rkts[FL_RT_MAX_OUT_TOPICS];
    int n_rkts;
    bool input_is_event[FL_RT_MAX_INPUTS];
    rt_task_t **tasks; /* by partition; NULL when not assigned */
    /* delete.retention.ms of each store's changelog; -1 unknown */
    int64_t changelog_delete_retention_ms[FL_RT_MAX_STORES];
    int32_t n_partitions;
    bool in_txn;
    char source[320]; /* the input record being processed, for FL_RT_SOURCE_HEADER */
    int delivery_failures;
    bool fatal;
    rt_metrics_t m;
    /* The open batch's counts, added to m when it commits. */
    struct {
        uint64_t records_in, records_out, dead_letters;
    } batch;
    int64_t batch_deadline_ms; /* processing stops here, the rest waits in the merge */
    int32_t next_task;         /* the partition the next batch processes first */
    int64_t *lso;              /* [input][partition] last stable offsets from librdkafka's
                                * statistics; -1 unknown, -2 fetched to the end */
    /* [input][partition] the fetcher's view from the same statistics, for
     * the log line of a merge that stopped waiting for an input */
    struct rt_fetch {
        char state[16];
        int64_t fetchq, next_offset, hi_offset;
    } * fetch;
    int64_t *until;        /* [input][partition] the --input-until bound: records at
                            * or past it are not read; INT64_MAX: none */
    int assigned;          /* partitions currently assigned */
    const char *failpoint; /* FEEDLINE_FAILPOINT's name, NULL when off */
    long failpoint_at, failpoint_hits;
    bool failpoint_stop;   /* SIGSTOP instead of SIGKILL: a zombie to be */
    int failpoint_sleep_s; /* > 0: sleep instead (the consumer keeps heartbeating) */
    int64_t producer_fences[FL_RT_FENCES]; /* when the last fences came, oldest first */
    int64_t consumer_fences[FL_RT_FENCES];
    bool producer_stuck;  /* its transaction could not be aborted: renew it */
    bool consumer_fenced; /* the consumer's fatal error is FENCED_INSTANCE_ID */
    /* metrics endpoint */
    struct MHD_Daemon *mhd;
    pthread_mutex_t snap_lock;
    char *snapshot;
    int64_t last_snapshot_ms;
} rt_t;

int64_t fl__rt_now_ms(void);
/* Frees an rt_entry_t (the merge's free callback). */
void fl__rt_entry_free(void *item);
/* Index of topic among the processor's inputs, -1 when it is not one. */
int fl__rt_input_index(const rt_t *rt, const char *topic);
/* The --input-until bound of an input partition (INT64_MAX: none), and an
 * end offset cut at it (-1, unknown, stays). */
int64_t fl__rt_until(const rt_t *rt, size_t input, int32_t partition);
int64_t fl__rt_until_end(const rt_t *rt, size_t input, int32_t partition, int64_t end);

/* fl_rt_opts.c: 0 to run, 1 after --help, 2 on a usage error. */
int fl__rt_parse_opts(const fl_processor_def_t *def, bool sink, int argc, char **argv,
                      rt_opts_t *o);

/* fl_rt_task.c */
int64_t fl__rt_wall_ms(void);
/* Opens partition's task: stores opened and checked, starting offsets
 * chosen (committed: the group's committed offset per input, -1 none; NULL
 * when unknown). t->restoring says whether it must restore before it
 * processes. NULL on failure (logged). */
rt_task_t *fl__rt_task_open(rt_t *rt, int32_t partition, const int64_t *committed);
void fl__rt_task_free(rt_t *rt, rt_task_t *t);
/* Restores for at most budget_ms; t->restoring turns false when done. */
fl_err_t fl__rt_task_restore_step(rt_t *rt, rt_task_t *t, int64_t budget_ms);
fl_err_t fl__rt_task_ready(rt_t *rt, rt_task_t *t);
void fl__rt_cleanup_state_dirs(rt_t *rt);

/* Crashes the process (SIGKILL) at the failpoint named name when the
 * environment asks for it: FEEDLINE_FAILPOINT=NAME[:N[:stop]] kills at
 * the Nth pass (default 1), or stops it (SIGSTOP, for zombie tests).
 * Names: before-offsets (the batch's records are in the open transaction,
 * its input offsets not yet), before-commit (records and offsets are in
 * it), after-commit (the transaction committed, the stores did not).
 * Compiled in unless FL_FAILPOINTS is off. */
void fl__rt_failpoint(rt_t *rt, const char *name);

/* fl_rt_txn.c */
void fl__rt_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
fl_err_t fl__rt_begin(rt_t *rt);
fl_err_t fl__rt_forward(void *opaque, const char *topic, int32_t partition, const void *key,
                        size_t klen, const void *val, size_t vlen);
void fl__rt_count(void *opaque, const char *name, uint64_t n);
fl_err_t fl__rt_dead_letter(rt_t *rt, const rd_kafka_message_t *m, const char *stage,
                            fl_err_t cause, const char *msg);
fl_err_t fl__rt_commit_batch(rt_t *rt);
void fl__rt_abandon_batch(rt_t *rt);

/* Decodes and validates m as an event of its input topic into ev; on
 * failure returns the error with a message in err (ev cleared). */
fl_err_t fl__rt_decode(rt_t *rt, const rd_kafka_message_t *m, fl_event_t *ev, char *err,
                       size_t err_size);

/* fl_rt_sink.c: the sink role. */
/* The sink's entry in the topology as rt->proc; then its destination. */
int fl__rt_sink_setup(rt_t *rt);
int fl__rt_sink_open(rt_t *rt);
void fl__rt_sink_assign(rt_t *rt, rd_kafka_topic_partition_list_t *parts);
void fl__rt_sink_revoke(rt_t *rt);
/* Adds one polled record to the open batch (or dead-letters it). */
void fl__rt_sink_route(rt_t *rt, rd_kafka_message_t *m);
/* Flushes the open batch; a refusal for now is retried in later calls. */
void fl__rt_sink_commit(rt_t *rt);
void fl__rt_sink_metrics(rt_t *rt, FILE *f);
void fl__rt_sink_free(rt_t *rt);

/* fl_rt_metrics.c */
int fl__rt_metrics_start(rt_t *rt);
void fl__rt_metrics_render(rt_t *rt);
int fl__rt_stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque);

#endif
