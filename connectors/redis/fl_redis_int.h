/*
 * fl_redis_int.h - the Redis sink's parts, shared by its files only.
 *
 *   fl_redis_batch.c   records -> validated operations (pure, no I/O), and
 *                      the script arguments of one chunk of them
 *   fl_redis_script.c  the two Lua scripts (flush and claim)
 *   fl_redis_sink.c    the connection, the marker, the fl_sink_def_t
 *
 * A batch holds the operations of its records in record order. A flush
 * sends them as one or more chunks, each a whole number of records and at
 * most FL_REDIS_CHUNK_BYTES of arguments, each one EVALSHA that checks the
 * marker, applies the chunk and moves the offsets of its parts to just
 * past the chunk's last record (the last chunk: to the runtime's next
 * offsets). So every chunk that commits leaves Redis as if the records up
 * to it, and no others, had been applied.
 */
#ifndef FL_REDIS_INT_H
#define FL_REDIS_INT_H

#include "fl_sink.h"

#include <stddef.h>
#include <stdint.h>

/* Script arguments of one chunk, at most (the last record may pass it). A
 * feed entry costs about 48 bytes, and at worst (entries spread over many
 * users, each a ZADD into a listpack feed of 800) ~28 us of Redis CPU
 * (ops/bench/redis_sink.c), so a full chunk holds ~2,700 entries and keeps
 * Redis busy at most ~75 ms: far below lua-time-limit (5 s), and a bound on
 * how long one script holds up the read API. */
#define FL_REDIS_CHUNK_BYTES (128 * 1024)
/* Members per feed command in a script: Lua's unpack() takes at most
 * ~8,000 values (LUAI_MAXCSTACK). */
#define FL_REDIS_GROUP_MAX 1000
/* Notifications kept per user (notif:{U}). */
#define FL_REDIS_NOTIF_CAP 200

typedef struct fl_redis_batch fl_redis_batch_t;

fl_redis_batch_t *fl_redis_batch_new(void);
void fl_redis_batch_free(fl_redis_batch_t *b);
/* Drops every record (and the progress of a partly flushed batch). */
void fl_redis_batch_clear(fl_redis_batch_t *b);

/* Validates rec and appends its operations. FL_ERR_INVALID with a message
 * leaves the batch as it was; a record of no interest adds nothing. */
fl_err_t fl_redis_batch_add(fl_redis_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                            size_t errstr_size);

/* Records in the batch, and how many of them earlier chunks committed. */
size_t fl_redis_batch_records(const fl_redis_batch_t *b);
size_t fl_redis_batch_done(const fl_redis_batch_t *b);
/* Operations added so far (a record adds zero or more). */
size_t fl_redis_batch_ops(const fl_redis_batch_t *b);

/* The script arguments of one chunk, valid until the next call on b. */
typedef struct fl_redis_args {
    size_t argc;
    const char **argv; /* argv[1], the script's sha, is the caller's to set */
    size_t *argvlen;
} fl_redis_args_t;

/* The claimed state of one part, as the flush script checks it. */
typedef struct fl_redis_part {
    char *name;        /* "topic/partition" */
    char *gen_field;   /* "gen:topic/partition" in the marker */
    char *off_field;   /* "off:topic/partition" */
    int64_t gen;       /* the generation claim() took */
    int64_t committed; /* next offset held by the marker, FL_SINK_NO_OFFSET */
} fl_redis_part_t;

typedef struct fl_redis_caps {
    int64_t feed, outbox, notif;
    /* 1: feed changes are PUBLISHed (the live generation, in database 0);
     * 0: a generation rebuilt aside (feedline replay) stays quiet, so that
     * its backlog reaches no live client */
    int64_t publish;
} fl_redis_caps_t;

/*
 * Builds the arguments of the next chunk, starting at the first record not
 * yet done: parts[0..n) with their claimed state and, for the batch's last
 * chunk, next[] as new offsets. *last says whether this chunk is the last;
 * new_off[i] receives the offset each part moves to. FL_ERR_NOMEM.
 */
fl_err_t fl_redis_batch_chunk(fl_redis_batch_t *b, const char *marker, const char *epoch,
                              fl_redis_part_t *const *parts, const int64_t *next, size_t n,
                              const fl_redis_caps_t *caps, fl_redis_args_t *out, int64_t *new_off,
                              int *last);
/* Marks the chunk built last as committed. */
void fl_redis_batch_chunk_done(fl_redis_batch_t *b);

/* The flush script (KEYS[1] = marker; arguments: fl_redis_batch.c) and the
 * claim script (KEYS[1] = marker, ARGV[1] = epoch for a new marker, then a
 * (gen field, off field) pair per part; returns the marker's epoch, then
 * per part the new generation and the offset or ""). */
extern const char fl_redis_flush_lua[];
extern const char fl_redis_claim_lua[];

/* Error replies of the flush script. */
#define FL_REDIS_ERR_LOST   "FLLOST"
#define FL_REDIS_ERR_FENCED "FLFENCED"

#endif
