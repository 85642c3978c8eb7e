/*
 * fl_err.h - the one error enum every feedline module returns.
 *
 * FL_OK is zero. Not-found is a normal result, never an error: lookups
 * return FL_OK and say "absent" through an out-parameter. Errors are split
 * into retriable (a dependency is down or slow: back off and try again) and
 * fatal (bad input, bad configuration, corrupted state). Third-party error
 * types (rd_kafka_resp_err_t, RocksDB's char *err, PGresult) are translated
 * to these at the module boundary and never travel further.
 */
#ifndef FL_ERR_H
#define FL_ERR_H

#include <stdbool.h>

typedef enum fl_err {
    FL_OK = 0,
    /* fatal for the item at hand, the process goes on */
    FL_ERR_INVALID,   /* bad argument or bad input record */
    FL_ERR_MAGIC,     /* wire format: wrong magic byte */
    FL_ERR_SCHEMA_ID, /* wire format: unknown schema id */
    FL_ERR_TRUNCATED, /* data ends before the value does */
    FL_ERR_OVERSIZED, /* data or a length field exceeds its limit */
    FL_ERR_SCHEMA,    /* a schema file is missing, invalid or incompatible */
    FL_ERR_CONFIG,    /* topology or configuration is invalid */
    FL_ERR_NOMEM,     /* allocation failed */
    FL_ERR_IO,        /* local file or store I/O failed */
    FL_ERR_CORRUPT,   /* persisted state violates an invariant */
    FL_ERR_FENCED,    /* a newer owner of the partition exists: write refused */
    FL_ERR_LOST,      /* a destination lost what it held (flushed, restarted empty) */
    /* retriable */
    FL_ERR_UNAVAILABLE, /* a server is down or unreachable */
    FL_ERR_TIMEOUT,     /* a call did not complete in time */
    FL_ERR__COUNT
} fl_err_t;

/* Static string naming the error; never NULL. */
const char *fl_err_str(fl_err_t err);

/* True for errors where retrying the same call later can succeed. */
static inline bool fl_err_retriable(fl_err_t err)
{
    return err == FL_ERR_UNAVAILABLE || err == FL_ERR_TIMEOUT;
}

#endif
