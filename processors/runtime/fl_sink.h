/*
 * fl_sink.h - what a sink (a program whose output is an external store:
 * Redis, PostgreSQL) provides to the sink runtime, and what it is given.
 *
 * The sink runtime shares the processor runtime's core (consumer group,
 * range assignment, batching, dead letters, metrics, options, signals)
 * and reads committed records only. Unlike a processor, a sink keeps its
 * input offsets in the destination, written in the same atomic write as
 * the data (PostgreSQL: one transaction; Redis: one Lua script), and
 * resumes from the offsets read back from there; Kafka's committed
 * offsets are never used.
 *
 * Ownership: claim() takes the given (topic, partition)s for this
 * instance by raising a generation stored in the destination next to the
 * offsets, and flush() writes only if every generation is still the one
 * it took, in the same atomic write. An instance that lost its partitions
 * to a newer owner therefore cannot write after the new owner claimed
 * them (FL_ERR_FENCED).
 *
 * Calls come from the runtime's one processing thread:
 *   open, then for each assignment: claim, then batches of add... flush
 *   (or discard); check when idle; close at the end. A flush that fails
 *   with a retriable error (fl_err_retriable()) keeps its batch for a
 *   retry of flush with the same offsets; the runtime backs off and logs.
 */
#ifndef FL_SINK_H
#define FL_SINK_H

#include "fl_proc.h"

/* A sink claimed no offset for a partition: start from its beginning. */
#define FL_SINK_NO_OFFSET (-1)

typedef struct fl_sink_part {
    const char *topic;
    int32_t partition;
} fl_sink_part_t;

typedef struct fl_sink_env {
    const fl_topology_t *topo;
    const char *name;     /* the sink's name in the topology */
    const char *instance; /* --instance */
} fl_sink_env_t;

typedef struct fl_sink_def {
    const char *name; /* as in the topology's sinks */
    /* Connects. FL_ERR_UNAVAILABLE when the destination is down (the
     * runtime retries with backoff). *state is the sink's own. */
    fl_err_t (*open)(const fl_sink_env_t *env, void **state);
    /* Takes ownership of parts[0..n) (see above) and sets next[i] to the
     * offset to resume parts[i] from, FL_SINK_NO_OFFSET when the
     * destination holds none (never written, or lost). */
    fl_err_t (*claim)(void *state, const fl_sink_part_t *parts, size_t n, int64_t *next);
    /* Adds one record to the open batch; FL_ERR_INVALID with a message
     * when the record cannot be applied (it is dead-lettered; nothing of
     * it may be applied). Other errors abandon the batch. */
    fl_err_t (*add)(void *state, const fl_proc_record_t *rec, char *errstr, size_t errstr_size);
    /* Writes the open batch and next[i] as the offset of parts[i], in one
     * atomic write, only while every claimed generation holds.
     * FL_OK (the batch is closed), FL_ERR_FENCED (nothing written; a newer
     * owner exists), FL_ERR_LOST when the destination lost the sink's
     * marker (flushed, restarted empty: nothing written; the runtime
     * claims again and rebuilds), FL_ERR_UNAVAILABLE/TIMEOUT (retry). */
    fl_err_t (*flush)(void *state, const fl_sink_part_t *parts, const int64_t *next, size_t n);
    /* Drops the open batch. */
    void (*discard)(void *state);
    /* Deletes everything the sink wrote, its offsets and its ownership
     * records, in the destination: they came from another history of the
     * inputs (a claimed offset lies past its partition's end: topics
     * recreated or truncated). The next claim starts every partition from
     * the beginning; another instance's next flush finds its claim gone
     * (FL_ERR_LOST) and rebuilds too. FL_ERR_UNAVAILABLE/TIMEOUT: retry. */
    fl_err_t (*wipe)(void *state);
    /* While idle, about once a second: FL_OK, FL_ERR_LOST when the
     * destination lost the sink's marker, FL_ERR_UNAVAILABLE. */
    fl_err_t (*check)(void *state);
    /* Appends the sink's own metrics (Prometheus text) to out; may be NULL. */
    void (*metrics)(void *state, char *out, size_t out_size);
    void (*close)(void *state);
} fl_sink_def_t;

/*
 * Parses the command line (--help lists the options), runs the sink until
 * SIGINT/SIGTERM, and returns the process exit status.
 */
int fl_sink_main(const fl_sink_def_t *def, int argc, char **argv);

#endif
