/*
 * fl_pg_batch.h - the PostgreSQL sink's open batch: input records decoded
 * into rows of the destination tables, collapsed per key, and the binary
 * COPY stream that stages them. Pure: no libpq, no I/O.
 *
 * Collapse. PostgreSQL's INSERT ... ON CONFLICT DO UPDATE fails when one
 * statement touches a key twice, so a batch keeps one row per (table,
 * key), and a later record (in the order add() is called, the offset
 * order of each partition) is merged into it:
 *   - set tables (feed_items, post_likes, follows, notifications,
 *     affinity): the last record wins whole, an upsert or a delete;
 *   - counts (user_counts, post_counts): the last value wins per column,
 *     columns no record of the batch named stay NULL ("unchanged");
 *   - users: UserRegistered sets handle, display name and times,
 *     UserUpdated the fields it carries (NULL there means unchanged);
 *   - posts: the first PostCreated of a post wins and a later one is
 *     ignored; a PostDeleted sets deleted_at once and never clears it, and
 *     one naming another author than the create is ignored (the fan-out's
 *     rules, fl_fanout.h).
 *
 * Every table's rows have one shape, fl_pg_row_t. Encoding into a COPY
 * stream or an array parameter takes a list of columns, each naming the
 * row field it comes from and its PostgreSQL type, so the column meaning
 * per table is written next to the SQL that applies it (fl_pg_sink.c).
 *
 * Times are epoch milliseconds in a row and binary timestamptz
 * (microseconds since 2000-01-01) on the wire: integer arithmetic, exact.
 * add() refuses a time outside PostgreSQL's timestamptz range, which the
 * server would refuse on every retry of the batch.
 *
 * Ownership: the batch owns its rows and their strings; rows returned by
 * fl_pg_batch_rows() are borrowed until the next add, clear or free.
 */
#ifndef FL_PG_BATCH_H
#define FL_PG_BATCH_H

#include "fl_proc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sink's inputs (topology sinks: postgres). */
#define FL_PG_TOPIC_USERS       "users"
#define FL_PG_TOPIC_POSTS       "posts"
#define FL_PG_TOPIC_TIMELINES   "feedline.timelines-changelog"
#define FL_PG_TOPIC_ENGAGEMENT  "feedline.engagement"
#define FL_PG_TOPIC_CELEBRITIES "feedline.celebrities"

/* In the order a flush applies them: counts before the rows that read them. */
typedef enum fl_pg_table {
    FL_PG_USER_COUNTS,   /* k0 user; v0 followers, v1 following, v2 posts, v3 celebrity (0/1) */
    FL_PG_USERS,         /* k0 user; v0 created_at, v1 updated_at, v2 registered (0/1);
                            s0 handle, s1 display_name, s2 bio */
    FL_PG_POST_COUNTS,   /* k0 post; v0 likes */
    FL_PG_POSTS,         /* k0 post; v0 author, v1 created_at, v2 deleted_at, v3 reply_to,
                            v4 created (0/1); s0 text, s1 privacy */
    FL_PG_POST_LIKES,    /* k0 post, k1 user; v0 created_at */
    FL_PG_FOLLOWS,       /* k0 followee, k1 follower; v0 created_at */
    FL_PG_NOTIFICATIONS, /* k0 recipient, k1 kind, k2 actor, k3 post (0: none); v0 created_at */
    FL_PG_AFFINITY,      /* k0 viewer, k1 author; v0 likes */
    FL_PG_FEED_ITEMS,    /* k0 user, k1 created_at, k2 post; v0 author */
    FL_PG__TABLES
} fl_pg_table_t;

#define FL_PG_KEYS 4
#define FL_PG_VALS 6
#define FL_PG_STRS 3

/* Epoch milliseconds that PostgreSQL's timestamptz holds: [MIN, END). */
#define FL_PG_TIME_MIN_MS (-210866803200000LL) /* 4714-11-24 BC */
#define FL_PG_TIME_END_MS 9224318016000000LL   /* 294277-01-01 */

typedef struct fl_pg_row {
    int64_t k[FL_PG_KEYS];
    bool del;     /* a delete of the key (set tables only) */
    uint16_t set; /* bit i: v[i] is set; bit FL_PG_VALS + j: s[j] is set */
    int64_t v[FL_PG_VALS];
    char *s[FL_PG_STRS]; /* owned; NULL when unset */
} fl_pg_row_t;

typedef struct fl_pg_batch fl_pg_batch_t;

/* NULL when out of memory. */
fl_pg_batch_t *fl_pg_batch_new(void);
/* Accepts NULL. */
void fl_pg_batch_free(fl_pg_batch_t *b);
/* Drops every row; the batch is empty and reusable. */
void fl_pg_batch_clear(fl_pg_batch_t *b);

/*
 * Adds one record of an input topic. FL_OK (also for records the sink
 * skips: other key families of the timelines changelog, an event the
 * rules ignore), FL_ERR_INVALID with a message when the record cannot be
 * applied (nothing of it was), FL_ERR_CONFIG for a topic that is not an
 * input of this sink, FL_ERR_NOMEM (the batch is then incomplete:
 * discard it).
 */
fl_err_t fl_pg_batch_add(fl_pg_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                         size_t errstr_size);

/* Rows of table t in first-seen order; *rows borrowed (see above). */
size_t fl_pg_batch_rows(const fl_pg_batch_t *b, fl_pg_table_t t, const fl_pg_row_t **rows);
/* Rows of every table. */
size_t fl_pg_batch_size(const fl_pg_batch_t *b);

/* A growable byte buffer. */
typedef struct fl_pg_buf {
    uint8_t *p;
    size_t len, cap;
} fl_pg_buf_t;

void fl_pg_buf_free(fl_pg_buf_t *buf);

/* Where an encoded field comes from: a row's key, del flag, value or string. */
#define FL_PG_K(i) (i)
#define FL_PG_DEL  FL_PG_KEYS
#define FL_PG_V(i) (FL_PG_KEYS + 1 + (i))
#define FL_PG_S(j) (FL_PG_KEYS + 1 + FL_PG_VALS + (j))

/* The PostgreSQL type a field is encoded as (binary format). An unset
 * value or string is NULL whatever its type. */
typedef enum fl_pg_type {
    FL_PG_INT8,    /* bigint */
    FL_PG_BOOL,    /* boolean (del) */
    FL_PG_TEXT,    /* text (strings) */
    FL_PG_TIME,    /* timestamptz, from epoch milliseconds */
    FL_PG_NKIND,   /* text: 'like' for 1, else 'follow' (notification kinds) */
    FL_PG_INT8_NZ, /* bigint, NULL for 0 (a follow notification's post) */
} fl_pg_type_t;

typedef struct fl_pg_col {
    uint8_t src;  /* FL_PG_K(i), FL_PG_DEL, FL_PG_V(i), FL_PG_S(j) */
    uint8_t type; /* fl_pg_type_t */
} fl_pg_col_t;

/* Which rows of a table an encoding takes. */
typedef enum fl_pg_rows {
    FL_PG_ROWS_ALL,
    FL_PG_ROWS_UPSERTS, /* not del */
    FL_PG_ROWS_DELETES, /* del */
} fl_pg_rows_t;

/* Rows of t that which selects. */
size_t fl_pg_batch_count(const fl_pg_batch_t *b, fl_pg_table_t t, fl_pg_rows_t which);

/*
 * Replaces buf's contents with the binary COPY stream (header, one tuple
 * of ncols fields per selected row of t, trailer) of the columns cols.
 * FL_ERR_NOMEM on allocation failure.
 */
fl_err_t fl_pg_batch_copy_encode(const fl_pg_batch_t *b, fl_pg_table_t t, const fl_pg_col_t *cols,
                                 int ncols, fl_pg_rows_t which, fl_pg_buf_t *buf);

/*
 * Replaces buf's contents with a one-dimensional binary array (the
 * format of a parameter of type col's type[]) of col over the selected
 * rows of t, in row order; col's type must be FL_PG_INT8 or FL_PG_TIME
 * (no NULLs: keys). FL_ERR_NOMEM on allocation failure.
 */
fl_err_t fl_pg_batch_array_encode(const fl_pg_batch_t *b, fl_pg_table_t t, fl_pg_col_t col,
                                  fl_pg_rows_t which, fl_pg_buf_t *buf);

#endif
