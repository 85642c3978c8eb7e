/*
 * fl_pg_sink.c - the PostgreSQL sink's callbacks (fl_pg_sink.h): the
 * connection, claiming partitions, the flush transaction, liveness checks
 * and metrics.
 *
 * Ownership of a partition is the generation in its sink_offsets row.
 * claim() raises it (INSERT ... ON CONFLICT DO UPDATE generation + 1) and
 * remembers the new value; flush() first runs
 *   UPDATE sink_offsets SET next_offset = $1 WHERE ... AND generation = $5
 * for every part, which row-locks it, so a claim by a newer owner either
 * waits for this transaction or has already raised the generation, and
 * then the update finds no row: ROLLBACK, FL_ERR_FENCED (or FL_ERR_LOST
 * when the row is gone altogether, a database restored or wiped).
 *
 * Workload: one flush per runtime batch (up to batch_max_records
 * records), mostly new feed items while a backlog is consumed. Per
 * non-empty table:
 *   - set tables first delete the batch's tombstoned keys, one DELETE
 *     per table with the keys as array parameters and one index probe
 *     per key whatever the statistics say (delete_all());
 *   - the set tables of a backlog (feed_items, post_likes, follows,
 *     notifications) then COPY their upserted rows straight into the
 *     table inside a savepoint: while nearly every row is new this skips
 *     the staging table and the speculative insert per row of ON
 *     CONFLICT. A key that is already there makes the COPY fail with a
 *     unique violation; the sink rolls back to the savepoint and takes
 *     the staging path below. Both paths write the same rows: the batch
 *     holds one row per key, so a COPY that succeeds inserted exactly
 *     the rows the upsert would have, and a row that already holds its
 *     values is only ever met on the staging path, where it is left
 *     untouched. After a refusal the table stages for 1, 2, 4 ... up
 *     to DIRECT_BACKOFF_MAX flushes before it tries again, so that a
 *     replay does not pay for a refused COPY every flush;
 *   - everything else is staged by binary COPY into a temporary table and
 *     applied with one or two set-based statements.
 * Measured (ops/bench/pg_sink.c, README): these beat one pipelined INSERT
 * per row.
 *
 * An upsert whose row already holds the staged values writes nothing
 * (DO UPDATE ... WHERE old <> new): re-applied batches, the replays after
 * a crash or a rebalance, then cost a lookup and a row lock instead of a
 * new row version, its index entries and its WAL. The columns compared
 * are NOT NULL, so <> is exact.
 *
 * Times travel as binary timestamptz (fl_pg_batch.h): no conversion in
 * SQL, and none through floating point.
 */
#include "fl_pg_sink.h"
#include "fl_log.h"
#include "fl_pg_batch.h"
#include "fl_pg_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMPONENT "pg-sink"

#define NKIND(x) "(CASE " x " WHEN 1 THEN 'like' ELSE 'follow' END)"
#define T(i)     (1u << (i)) /* a staging column that is a time */

/* Every staging table has the columns k0..k3, del, v0..v5, s0..s2
 * (fl_pg_batch.h's row), bigint, boolean and text, except the times a
 * table names, which are timestamptz. */
#define STAGE_COLS FL_PG_S(FL_PG_STRS)

/* At most this many flushes of a table stage without trying a direct
 * COPY after it was refused (a replay): a replay then wastes about one
 * attempt in this many, and new rows go direct again this soon. */
#define DIRECT_BACKOFF_MAX 16
#define MIN(a, b)          ((a) < (b) ? (a) : (b))

typedef struct pg_table_sql {
    const char *name;     /* the metrics label; the staging table is s_<name> */
    uint32_t times;       /* T(FL_PG_K(i)), T(FL_PG_V(i)): staged as timestamptz */
    const char *apply[2]; /* from the staging table, in order; NULL ends */
    /* set tables */
    int nkeys;          /* k0..: the delete's array parameters */
    const char *del;    /* the keys' delete, NULL: not a set table */
    const char *direct; /* COPY of new rows into the table, NULL: always staged */
    fl_pg_col_t direct_cols[5];
    int n_direct_cols;
} pg_table_sql_t;

/* A delete by whole unique keys, given as arrays: a scalar subquery per
 * key finds its row (it can only be an index probe, see delete_all()),
 * the delete takes the rows by ctid. Rows are found and deleted in one
 * statement of the transaction that owns their partitions. */
#define PROBE(table, match, arrays, cols)                                                          \
    "DELETE FROM " table " WHERE ctid = ANY (ARRAY(SELECT (SELECT t.ctid FROM " table              \
    " t WHERE " match ") FROM unnest(" arrays ") AS d(" cols ")))"

#define I8(src)                                                                                    \
    {                                                                                              \
        (src), FL_PG_INT8                                                                          \
    }
#define TIME(src)                                                                                  \
    {                                                                                              \
        (src), FL_PG_TIME                                                                          \
    }

/* Column meaning per table: fl_pg_batch.h. */
static const pg_table_sql_t pg_tables[FL_PG__TABLES] = {
    [FL_PG_USER_COUNTS] =
        {"user_counts",
         0,
         {"INSERT INTO user_counts (user_id, followers_count, following_count, posts_count,"
          " is_celebrity) SELECT k0, v0, v1, v2, v3 <> 0 FROM s_user_counts"
          " ON CONFLICT (user_id) DO UPDATE SET"
          " followers_count = coalesce(EXCLUDED.followers_count, user_counts.followers_count),"
          " following_count = coalesce(EXCLUDED.following_count, user_counts.following_count),"
          " posts_count = coalesce(EXCLUDED.posts_count, user_counts.posts_count),"
          " is_celebrity = coalesce(EXCLUDED.is_celebrity, user_counts.is_celebrity)",
          "UPDATE users u SET followers_count = coalesce(s.v0, u.followers_count),"
          " following_count = coalesce(s.v1, u.following_count),"
          " posts_count = coalesce(s.v2, u.posts_count),"
          " is_celebrity = coalesce(s.v3 <> 0, u.is_celebrity)"
          " FROM s_user_counts s WHERE u.id = s.k0"}},
    [FL_PG_USERS] = {"users",
                     T(FL_PG_V(0)) | T(FL_PG_V(1)),
                     {"INSERT INTO users (id, username, display_name, bio, created_at, updated_at,"
                      " followers_count, following_count, posts_count, is_celebrity)"
                      " SELECT s.k0, s.s0, s.s1, s.s2, s.v0, s.v1,"
                      " coalesce(c.followers_count, 0), coalesce(c.following_count, 0),"
                      " coalesce(c.posts_count, 0), coalesce(c.is_celebrity, false)"
                      " FROM s_users s LEFT JOIN user_counts c ON c.user_id = s.k0 WHERE s.v2 = 1"
                      " ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username,"
                      " display_name = EXCLUDED.display_name,"
                      " bio = coalesce(EXCLUDED.bio, users.bio), updated_at = EXCLUDED.updated_at",
                      "UPDATE users u SET display_name = coalesce(s.s1, u.display_name),"
                      " bio = coalesce(s.s2, u.bio), updated_at = s.v1 FROM s_users s"
                      " WHERE s.v2 = 0 AND u.id = s.k0"}},
    [FL_PG_POST_COUNTS] =
        {"post_counts",
         0,
         {"INSERT INTO post_counts (post_id, likes_count) SELECT k0, v0 FROM s_post_counts"
          " ON CONFLICT (post_id) DO UPDATE SET likes_count = EXCLUDED.likes_count"
          " WHERE post_counts.likes_count <> EXCLUDED.likes_count",
          "UPDATE posts p SET likes_count = s.v0 FROM s_post_counts s"
          " WHERE p.id = s.k0 AND p.likes_count <> s.v0"}},
    /* a create of a known post changes nothing; a delete sets deleted_at
     * once, and only for the post's author; a delete of an unknown post
     * leaves a deleted row (README) */
    [FL_PG_POSTS] = {"posts",
                     T(FL_PG_V(1)) | T(FL_PG_V(2)),
                     {"INSERT INTO posts (id, user_id, content_text, privacy, reply_to, created_at,"
                      " deleted_at, likes_count)"
                      " SELECT s.k0, s.v0, coalesce(s.s0, ''), coalesce(s.s1, 'private'), s.v3,"
                      " coalesce(s.v1, s.v2), s.v2, coalesce(c.likes_count, 0)"
                      " FROM s_posts s LEFT JOIN post_counts c ON c.post_id = s.k0"
                      " ON CONFLICT (id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at"
                      " WHERE posts.deleted_at IS NULL AND EXCLUDED.deleted_at IS NOT NULL"
                      " AND posts.user_id = EXCLUDED.user_id"}},
    /* set tables: only upserts are staged */
    [FL_PG_POST_LIKES] = {"post_likes",
                          T(FL_PG_V(0)),
                          {"INSERT INTO post_likes (post_id, user_id, created_at)"
                           " SELECT k0, k1, v0 FROM s_post_likes"
                           " ON CONFLICT (post_id, user_id) DO UPDATE SET"
                           " created_at = EXCLUDED.created_at"
                           " WHERE post_likes.created_at <> EXCLUDED.created_at"},
                          2,
                          PROBE("post_likes", "t.post_id = d.k0 AND t.user_id = d.k1",
                                "$1::bigint[], $2::bigint[]", "k0, k1"),
                          "COPY post_likes (post_id, user_id, created_at) FROM STDIN"
                          " (FORMAT binary)",
                          {I8(FL_PG_K(0)), I8(FL_PG_K(1)), TIME(FL_PG_V(0))},
                          3},
    [FL_PG_FOLLOWS] = {"follows",
                       T(FL_PG_V(0)),
                       {"INSERT INTO follows (follower_id, following_id, created_at)"
                        " SELECT k1, k0, v0 FROM s_follows"
                        " ON CONFLICT (follower_id, following_id) DO UPDATE SET"
                        " created_at = EXCLUDED.created_at"
                        " WHERE follows.created_at <> EXCLUDED.created_at"},
                       2,
                       PROBE("follows", "t.follower_id = d.k1 AND t.following_id = d.k0",
                             "$1::bigint[], $2::bigint[]", "k0, k1"),
                       "COPY follows (follower_id, following_id, created_at) FROM STDIN"
                       " (FORMAT binary)",
                       {I8(FL_PG_K(1)), I8(FL_PG_K(0)), TIME(FL_PG_V(0))},
                       3},
    [FL_PG_NOTIFICATIONS] =
        {"notifications",
         T(FL_PG_V(0)),
         {"INSERT INTO notifications (user_id, created_at, kind, actor_id, post_id)"
          " SELECT k0, v0, " NKIND("k1") ", k2, nullif(k3, 0) FROM s_notifications"
                                         " ON CONFLICT (user_id, kind, actor_id, post_id) DO "
                                         "UPDATE SET created_at = EXCLUDED.created_at"
                                         " WHERE notifications.created_at <> EXCLUDED.created_at"},
         4,
         PROBE(
             "notifications",
             "t.user_id = d.k0 AND t.kind = " NKIND("d.k1") " AND t.actor_id = d.k2 AND t.post_id "
                                                            "IS NOT DISTINCT FROM nullif(d.k3, 0)",
             "$1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]", "k0, k1, k2, k3"),
         "COPY notifications (user_id, created_at, kind, actor_id, post_id) FROM STDIN"
         " (FORMAT binary)",
         {I8(FL_PG_K(0)),
          TIME(FL_PG_V(0)),
          {FL_PG_K(1), FL_PG_NKIND},
          I8(FL_PG_K(2)),
          {FL_PG_K(3), FL_PG_INT8_NZ}},
         5},
    /* its rows change with every like: a direct COPY would mostly fail */
    [FL_PG_AFFINITY] = {"affinity",
                        0,
                        {"INSERT INTO affinity (viewer_id, author_id, likes)"
                         " SELECT k0, k1, v0 FROM s_affinity"
                         " ON CONFLICT (viewer_id, author_id) DO UPDATE SET likes = EXCLUDED.likes"
                         " WHERE affinity.likes <> EXCLUDED.likes"},
                        2,
                        PROBE("affinity", "t.viewer_id = d.k0 AND t.author_id = d.k1",
                              "$1::bigint[], $2::bigint[]", "k0, k1")},
    [FL_PG_FEED_ITEMS] = {"feed_items",
                          T(FL_PG_K(1)),
                          {"INSERT INTO feed_items (user_id, created_at, post_id, author_id)"
                           " SELECT k0, k1, k2, v0 FROM s_feed_items"
                           " ON CONFLICT (user_id, created_at, post_id) DO UPDATE SET"
                           " author_id = EXCLUDED.author_id"
                           " WHERE feed_items.author_id <> EXCLUDED.author_id"},
                          3,
                          PROBE("feed_items",
                                "t.user_id = d.k0 AND t.created_at = d.k1 AND t.post_id = d.k2",
                                "$1::bigint[], $2::timestamptz[], $3::bigint[]", "k0, k1, k2"),
                          "COPY feed_items (user_id, created_at, post_id, author_id) FROM STDIN"
                          " (FORMAT binary)",
                          {I8(FL_PG_K(0)), TIME(FL_PG_K(1)), I8(FL_PG_K(2)), I8(FL_PG_V(0))},
                          4},
};

typedef struct pg_part {
    char *topic; /* owned */
    int32_t partition;
    int64_t generation;
} pg_part_t;

typedef struct pg_sink {
    char *conninfo; /* owned */
    char *name;     /* owned: the sink's name in sink_offsets */
    char *schema;   /* owned, NULL: endpoints.postgres_schema (a generation's own schema) */
    char migrations[PATH_MAX];
    PGconn *conn; /* NULL while disconnected */
    fl_pg_batch_t *batch;
    fl_pg_buf_t buf;
    fl_pg_buf_t keys[FL_PG_KEYS]; /* a delete's array parameters */
    pg_part_t *parts;
    size_t n_parts;
    /* metrics */
    uint64_t flushes, fenced, lost, failed, reconnects;
    uint64_t rows[FL_PG__TABLES];
    uint64_t direct[FL_PG__TABLES], fallbacks[FL_PG__TABLES]; /* direct COPYs, and those refused */
    /* after a refused direct COPY the next skip[t] flushes of t stage at
     * once; backoff[t] doubles with every refusal in a row */
    uint32_t skip[FL_PG__TABLES], backoff[FL_PG__TABLES];
    double flush_seconds;
} pg_sink_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "already exists, skipping" and the like */
}

static void disconnect(pg_sink_t *s)
{
    PQfinish(s->conn);
    s->conn = NULL;
}

/* The columns of table t's staging table, in order. */
static void stage_cols(fl_pg_table_t t, fl_pg_col_t cols[STAGE_COLS])
{
    for (int c = 0; c < STAGE_COLS; c++) {
        cols[c].src = (uint8_t)c;
        cols[c].type = c == FL_PG_DEL              ? FL_PG_BOOL
                       : c >= FL_PG_S(0)           ? FL_PG_TEXT
                       : pg_tables[t].times & T(c) ? FL_PG_TIME
                                                   : FL_PG_INT8;
    }
}

/* CREATE TEMP TABLE of every staging table, into buf. */
static fl_err_t stage_ddl(char *buf, size_t size)
{
    static const char *const names[STAGE_COLS] = {"k0", "k1", "k2", "k3", "del", "v0", "v1",
                                                  "v2", "v3", "v4", "v5", "s0",  "s1", "s2"};
    static const char *const types[] = {[FL_PG_INT8] = "bigint",
                                        [FL_PG_BOOL] = "boolean",
                                        [FL_PG_TEXT] = "text",
                                        [FL_PG_TIME] = "timestamptz"};
    size_t len = 0;
    int n;

    for (int t = 0; t < FL_PG__TABLES; t++) {
        fl_pg_col_t cols[STAGE_COLS];
        stage_cols((fl_pg_table_t)t, cols);
        n = snprintf(buf + len, size - len, "CREATE TEMP TABLE IF NOT EXISTS s_%s (",
                     pg_tables[t].name);
        for (int c = 0; n > 0 && (size_t)n < size - len && c < STAGE_COLS; c++) {
            len += (size_t)n;
            n = snprintf(buf + len, size - len, "%s%s %s", c ? ", " : "", names[c],
                         types[cols[c].type]);
        }
        if (n > 0 && (size_t)n < size - len) {
            len += (size_t)n;
            n = snprintf(buf + len, size - len, ") ON COMMIT DELETE ROWS;");
        }
        if (n < 0 || (size_t)n >= size - len)
            return FL_ERR_NOMEM;
        len += (size_t)n;
    }
    return FL_OK;
}

/* Connects, migrates and creates the staging tables. */
static fl_err_t connect_db(pg_sink_t *s)
{
    /* connect_timeout first: a conninfo that sets one overrides it */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL, NULL};
    const char *vals[] = {"5", "feedline-pg-sink", s->conninfo, NULL, NULL};
    char errstr[512], ddl[4096], path[96], create[128];
    fl_err_t err;

    if (stage_ddl(ddl, sizeof(ddl)))
        return FL_ERR_NOMEM;
    if (s->schema) {
        /* after dbname: it overrides what the conninfo says */
        snprintf(path, sizeof(path), "-c search_path=%s", s->schema);
        keys[3] = "options";
        vals[3] = path;
    }
    disconnect(s);
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn)
        return FL_ERR_NOMEM;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        fl_log_warn(COMPONENT, "cannot connect to PostgreSQL: %.*s",
                    (int)strcspn(PQerrorMessage(s->conn), "\n"), PQerrorMessage(s->conn));
        disconnect(s);
        return FL_ERR_UNAVAILABLE;
    }
    PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
    /* the loader admits only [a-z_][a-z0-9_]* as a schema name */
    snprintf(create, sizeof(create), "CREATE SCHEMA IF NOT EXISTS %s", s->schema ? s->schema : "");
    if ((s->schema && (err = fl__pg_exec(s->conn, create, errstr, sizeof(errstr)))) ||
        (err = fl__pg_migrate(s->conn, s->migrations, errstr, sizeof(errstr))) ||
        (err = fl__pg_exec(s->conn, ddl, errstr, sizeof(errstr)))) {
        fl_log_error(COMPONENT, "%s", errstr);
        disconnect(s);
        return err;
    }
    return FL_OK;
}

static fl_err_t ensure_conn(pg_sink_t *s)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return FL_OK;
    s->reconnects++;
    return connect_db(s);
}

/* Starts a transaction; a connection found dead here (the server
 * restarted while we were idle) is replaced once. */
static fl_err_t begin(pg_sink_t *s)
{
    char errstr[256];
    fl_err_t err = ensure_conn(s);
    if (err)
        return err;
    if (!(err = fl__pg_exec(s->conn, "BEGIN", errstr, sizeof(errstr))))
        return FL_OK;
    if (PQstatus(s->conn) == CONNECTION_OK)
        return err;
    s->reconnects++;
    if ((err = connect_db(s)))
        return err;
    return fl__pg_exec(s->conn, "BEGIN", errstr, sizeof(errstr));
}

/* Ends a failed transaction: a rollback on a live connection, else the
 * connection is dropped so that the next call reconnects. */
static void abort_txn(pg_sink_t *s)
{
    if (!s->conn)
        return;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        disconnect(s);
        return;
    }
    PGresult *res = PQexec(s->conn, "ROLLBACK");
    PQclear(res);
    if (PQstatus(s->conn) != CONNECTION_OK)
        disconnect(s);
}

static void log_failure(fl_err_t err, const char *errstr)
{
    if (fl_err_retriable(err))
        fl_log_warn(COMPONENT, "%s (%s); the batch is kept for a retry", errstr, fl_err_str(err));
    else
        fl_log_error(COMPONENT, "%s (%s)", errstr, fl_err_str(err));
}

static fl_err_t pg_open(const fl_sink_env_t *env, void **state)
{
    pg_sink_t *s = calloc(1, sizeof(*s));
    fl_err_t err = FL_ERR_NOMEM;
    const char *conninfo = env->topo ? env->topo->endpoints.postgres : NULL;

    *state = NULL;
    if (!s)
        return FL_ERR_NOMEM;
    if (!conninfo || !*conninfo) {
        fl_log_error(COMPONENT, "the topology names no postgres endpoint");
        err = FL_ERR_CONFIG;
        goto out;
    }
    if (env->topo->endpoints.postgres_schema &&
        !(s->schema = strdup(env->topo->endpoints.postgres_schema)))
        goto out;
    if (!(s->conninfo = strdup(conninfo)) || !(s->name = strdup(env->name ? env->name : "")) ||
        !(s->batch = fl_pg_batch_new()))
        goto out;
    fl__pg_migrations_dir(s->migrations, sizeof(s->migrations));
    if ((err = connect_db(s)))
        goto out;
    fl_log_info(COMPONENT, "connected; schema migrated from %s", s->migrations);
    *state = s;
    return FL_OK;
out:
    fl_pg_sink.close(s);
    return err;
}

static pg_part_t *find_part(pg_sink_t *s, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].partition == partition && !strcmp(s->parts[i].topic, topic))
            return &s->parts[i];
    return NULL;
}

static fl_err_t pg_claim(void *state, const fl_sink_part_t *parts, size_t n, int64_t *next)
{
    pg_sink_t *s = state;
    int64_t *gens = calloc(n ? n : 1, sizeof(*gens));
    char errstr[512], pbuf[16];
    PGresult *res = NULL;
    fl_err_t err;

    if (!gens)
        return FL_ERR_NOMEM;
    if ((err = begin(s))) {
        snprintf(errstr, sizeof(errstr), "claim: cannot start a transaction");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *params[3] = {s->name, parts[i].topic, pbuf};
        snprintf(pbuf, sizeof(pbuf), "%d", (int)parts[i].partition);
        res = PQexecParams(s->conn,
                           "INSERT INTO sink_offsets AS o (sink, topic, partition, next_offset,"
                           " generation, updated_at) VALUES ($1, $2, $3, NULL, 1, now())"
                           " ON CONFLICT (sink, topic, partition) DO UPDATE SET"
                           " generation = o.generation + 1, updated_at = now()"
                           " RETURNING next_offset, generation",
                           3, NULL, params, NULL, NULL, 0);
        if ((err = fl__pg_check(s->conn, res, PGRES_TUPLES_OK, "claim", errstr, sizeof(errstr))))
            goto out;
        next[i] = PQgetisnull(res, 0, 0) ? FL_SINK_NO_OFFSET : atoll(PQgetvalue(res, 0, 0));
        gens[i] = atoll(PQgetvalue(res, 0, 1));
        PQclear(res);
        res = NULL;
    }
    if ((err = fl__pg_exec(s->conn, "COMMIT", errstr, sizeof(errstr))))
        goto out;
    for (size_t i = 0; i < n; i++) {
        pg_part_t *p = find_part(s, parts[i].topic, parts[i].partition);
        if (!p) {
            pg_part_t *grown = realloc(s->parts, (s->n_parts + 1) * sizeof(*grown));
            char *topic = strdup(parts[i].topic);
            if (!grown || !topic) {
                free(topic);
                if (grown)
                    s->parts = grown;
                err = FL_ERR_NOMEM;
                goto out;
            }
            s->parts = grown;
            p = &s->parts[s->n_parts++];
            p->topic = topic;
            p->partition = parts[i].partition;
        }
        p->generation = gens[i];
    }
out:
    PQclear(res);
    if (err && err != FL_ERR_NOMEM) {
        abort_txn(s);
        log_failure(err, errstr);
    }
    free(gens);
    return err;
}

static fl_err_t pg_add(void *state, const fl_proc_record_t *rec, char *errstr, size_t errstr_size)
{
    pg_sink_t *s = state;
    return fl_pg_batch_add(s->batch, rec, errstr, errstr_size);
}

/* The part's offset row after a refused update: FL_ERR_LOST when it is
 * gone, FL_ERR_FENCED when a newer owner holds it. */
static fl_err_t why_refused(pg_sink_t *s, const char *topic, int32_t partition)
{
    char pbuf[16], errstr[256];
    const char *params[3] = {s->name, topic, pbuf};
    snprintf(pbuf, sizeof(pbuf), "%d", (int)partition);
    PGresult *res = PQexecParams(s->conn,
                                 "SELECT generation FROM sink_offsets"
                                 " WHERE sink = $1 AND topic = $2 AND partition = $3",
                                 3, NULL, params, NULL, NULL, 0);
    fl_err_t err = fl__pg_check(s->conn, res, PGRES_TUPLES_OK, "offsets", errstr, sizeof(errstr));
    if (!err)
        err = PQntuples(res) ? FL_ERR_FENCED : FL_ERR_LOST;
    PQclear(res);
    return err;
}

/* COPY buf in with sql; *duplicate when the server refused a key that is
 * already there (unique violation). */
static fl_err_t copy_in(pg_sink_t *s, const char *sql, const fl_pg_buf_t *buf, bool *duplicate,
                        char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(s->conn, sql);
    fl_err_t err = fl__pg_check(s->conn, res, PGRES_COPY_IN, sql, errstr, errstr_size);
    PQclear(res);
    if (err)
        return err;
    if (PQputCopyData(s->conn, (const char *)buf->p, (int)buf->len) != 1 ||
        PQputCopyEnd(s->conn, NULL) != 1) {
        snprintf(errstr, errstr_size, "%s: %s", sql, PQerrorMessage(s->conn));
        return FL_ERR_UNAVAILABLE;
    }
    res = PQgetResult(s->conn);
    err = fl__pg_check(s->conn, res, PGRES_COMMAND_OK, sql, errstr, errstr_size);
    if (err && duplicate) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        *duplicate = state && !strcmp(state, "23505");
    }
    PQclear(res);
    /* drain: after COPY libpq returns NULL once the command is done */
    while ((res = PQgetResult(s->conn)))
        PQclear(res);
    return err;
}

/* Deletes the tombstoned keys of set table t. */
static fl_err_t delete_keys(pg_sink_t *s, fl_pg_table_t t, char *errstr, size_t errstr_size)
{
    const pg_table_sql_t *sql = &pg_tables[t];
    const char *values[FL_PG_KEYS];
    int lengths[FL_PG_KEYS], formats[FL_PG_KEYS];
    Oid types[FL_PG_KEYS];
    fl_err_t err;

    for (int k = 0; k < sql->nkeys; k++) {
        bool time = sql->times & T(FL_PG_K(k));
        fl_pg_col_t col = {(uint8_t)FL_PG_K(k), time ? FL_PG_TIME : FL_PG_INT8};
        if ((err = fl_pg_batch_array_encode(s->batch, t, col, FL_PG_ROWS_DELETES, &s->keys[k])))
            return err;
        values[k] = (const char *)s->keys[k].p;
        lengths[k] = (int)s->keys[k].len;
        formats[k] = 1;
        types[k] = time ? 1185 : 1016; /* timestamptz[], int8[] */
    }
    PGresult *res = PQexecParams(s->conn, sql->del, sql->nkeys, types, values, lengths, formats, 0);
    err = fl__pg_check(s->conn, res, PGRES_COMMAND_OK, sql->del, errstr, errstr_size);
    PQclear(res);
    return err;
}

/* COPYs the upserts of set table t straight into the table, inside a
 * savepoint. *duplicate when a key was already there: the savepoint is
 * rolled back, nothing of the COPY stays, and the caller stages. */
static fl_err_t copy_direct(pg_sink_t *s, fl_pg_table_t t, bool *duplicate, char *errstr,
                            size_t errstr_size)
{
    const pg_table_sql_t *sql = &pg_tables[t];
    fl_err_t err;

    *duplicate = false;
    if ((err = fl_pg_batch_copy_encode(s->batch, t, sql->direct_cols, sql->n_direct_cols,
                                       FL_PG_ROWS_UPSERTS, &s->buf)) ||
        (err = fl__pg_exec(s->conn, "SAVEPOINT fl_direct", errstr, errstr_size)))
        return err;
    s->direct[t]++;
    err = copy_in(s, sql->direct, &s->buf, duplicate, errstr, errstr_size);
    if (!err)
        return fl__pg_exec(s->conn, "RELEASE SAVEPOINT fl_direct", errstr, errstr_size);
    if (!*duplicate)
        return err;
    s->fallbacks[t]++;
    return fl__pg_exec(s->conn, "ROLLBACK TO SAVEPOINT fl_direct", errstr, errstr_size);
}

/* Writes table t's rows but its deletes: new rows directly or staged. */
static fl_err_t flush_table(pg_sink_t *s, fl_pg_table_t t, char *errstr, size_t errstr_size)
{
    const pg_table_sql_t *sql = &pg_tables[t];
    const fl_pg_row_t *rows;
    size_t n = fl_pg_batch_rows(s->batch, t, &rows);
    size_t dels = sql->del ? fl_pg_batch_count(s->batch, t, FL_PG_ROWS_DELETES) : 0;
    fl_pg_col_t cols[STAGE_COLS];
    char copy[128];
    bool duplicate = false;
    fl_err_t err;

    if (dels == n)
        return FL_OK;
    if (sql->direct && s->skip[t]) {
        s->skip[t]--;
    } else if (sql->direct) {
        err = copy_direct(s, t, &duplicate, errstr, errstr_size);
        if (err || !duplicate) {
            s->backoff[t] = 0;
            return err;
        }
        s->backoff[t] = s->backoff[t] ? MIN(s->backoff[t] * 2, DIRECT_BACKOFF_MAX) : 1;
        s->skip[t] = s->backoff[t];
    }
    stage_cols(t, cols);
    snprintf(copy, sizeof(copy), "COPY s_%s FROM STDIN (FORMAT binary)", sql->name);
    if ((err = fl_pg_batch_copy_encode(s->batch, t, cols, STAGE_COLS,
                                       sql->del ? FL_PG_ROWS_UPSERTS : FL_PG_ROWS_ALL, &s->buf)) ||
        (err = copy_in(s, copy, &s->buf, NULL, errstr, errstr_size)))
        return err;
    for (int i = 0; !err && i < 2 && sql->apply[i]; i++)
        err = fl__pg_exec(s->conn, sql->apply[i], errstr, errstr_size);
    return err;
}

/*
 * The deletes of every set table. Each deletes by a whole unique key, at
 * most a batch's worth, so one index probe per key is always the plan
 * wanted; but the planner weighs it against statistics that can be far
 * off (a table emptied by deletes and not yet vacuumed is estimated at a
 * handful of rows over thousands of pages) and then prefers one full
 * scan, ~100 ms and growing with the table, or a join that scans the
 * table once per key (seconds). So each key is looked up by a scalar
 * subquery of its own (PROBE()), a plan of one table whose only choices
 * are a scan and the unique index, and sequential and bitmap scans are
 * switched off for these statements only (SET LOCAL, reset after them).
 */
static fl_err_t delete_all(pg_sink_t *s, char *errstr, size_t errstr_size)
{
    static const char probes_only[] = "SELECT set_config('enable_seqscan', 'off', true), "
                                      "set_config('enable_bitmapscan', 'off', true)";
    bool any = false;
    fl_err_t err = FL_OK;

    for (int t = 0; !err && t < FL_PG__TABLES; t++) {
        if (!pg_tables[t].del || !fl_pg_batch_count(s->batch, (fl_pg_table_t)t, FL_PG_ROWS_DELETES))
            continue;
        if (!any) {
            PGresult *res = PQexec(s->conn, probes_only);
            err = fl__pg_check(s->conn, res, PGRES_TUPLES_OK, "planner settings", errstr,
                               errstr_size);
            PQclear(res);
            any = true;
        }
        if (!err)
            err = delete_keys(s, (fl_pg_table_t)t, errstr, errstr_size);
    }
    if (!err && any)
        err = fl__pg_exec(s->conn, "RESET enable_seqscan; RESET enable_bitmapscan", errstr,
                          errstr_size);
    return err;
}

/*
 * The staged statements join a staging table with a table of the
 * projection (posts with post_counts, users with user_counts, the counts'
 * updates of users and posts). The planner never sees statistics of a
 * temporary table (autovacuum does not analyze them) and, depending on
 * the sizes it guesses, hashes the whole projection table for a handful
 * of staged rows: a sequential scan of every post or user per flush,
 * 13-46 ms of PostgreSQL per flush of a live load on 12,000 users and
 * 100,000 posts (most of its CPU), growing with the tables. A batch holds
 * at most batch_max_records keys, so one index probe per staged key costs
 * milliseconds at most: hash and merge joins are switched off for the rest
 * of the flush's transaction (SET LOCAL).
 */
static fl_err_t nested_loops(pg_sink_t *s, char *errstr, size_t errstr_size)
{
    static const char sql[] = "SELECT set_config('enable_hashjoin', 'off', true), "
                              "set_config('enable_mergejoin', 'off', true)";
    PGresult *res = PQexec(s->conn, sql);
    fl_err_t err =
        fl__pg_check(s->conn, res, PGRES_TUPLES_OK, "planner settings", errstr, errstr_size);
    PQclear(res);
    return err;
}

static fl_err_t pg_flush(void *state, const fl_sink_part_t *parts, const int64_t *next, size_t n)
{
    pg_sink_t *s = state;
    char errstr[512] = "", obuf[24], pbuf[16], gbuf[24];
    double t0 = now_s();
    fl_err_t err;

    for (size_t i = 0; i < n; i++)
        if (!find_part(s, parts[i].topic, parts[i].partition)) {
            fl_log_error(COMPONENT, "flush of %s/%d, which this sink never claimed", parts[i].topic,
                         (int)parts[i].partition);
            fl_pg_batch_clear(s->batch);
            return FL_ERR_FENCED;
        }
    if ((err = begin(s))) {
        s->failed++;
        log_failure(err, "flush: cannot start a transaction");
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        const pg_part_t *p = find_part(s, parts[i].topic, parts[i].partition);
        const char *params[5] = {obuf, s->name, p->topic, pbuf, gbuf};
        snprintf(obuf, sizeof(obuf), "%lld", (long long)next[i]);
        snprintf(pbuf, sizeof(pbuf), "%d", (int)p->partition);
        snprintf(gbuf, sizeof(gbuf), "%lld", (long long)p->generation);
        PGresult *res = PQexecParams(s->conn,
                                     "UPDATE sink_offsets SET next_offset = $1, updated_at = now()"
                                     " WHERE sink = $2 AND topic = $3 AND partition = $4"
                                     " AND generation = $5",
                                     5, NULL, params, NULL, NULL, 0);
        err = fl__pg_check(s->conn, res, PGRES_COMMAND_OK, "offsets", errstr, sizeof(errstr));
        bool refused = !err && !strcmp(PQcmdTuples(res), "0");
        PQclear(res);
        if (err)
            goto fail;
        if (refused) {
            abort_txn(s);
            err = s->conn ? why_refused(s, p->topic, p->partition) : FL_ERR_UNAVAILABLE;
            if (fl_err_retriable(err)) {
                s->failed++;
                if (s->conn && PQstatus(s->conn) != CONNECTION_OK)
                    disconnect(s);
                return err;
            }
            if (err == FL_ERR_FENCED)
                s->fenced++;
            else
                s->lost++;
            fl_log_warn(COMPONENT, "%s/%d: %s; the batch is dropped", p->topic, (int)p->partition,
                        fl_err_str(err));
            fl_pg_batch_clear(s->batch);
            return err;
        }
    }
    if ((err = delete_all(s, errstr, sizeof(errstr))) ||
        (err = nested_loops(s, errstr, sizeof(errstr))))
        goto fail;
    for (int t = 0; t < FL_PG__TABLES; t++) {
        const fl_pg_row_t *rows;
        if (fl_pg_batch_rows(s->batch, (fl_pg_table_t)t, &rows) &&
            (err = flush_table(s, (fl_pg_table_t)t, errstr, sizeof(errstr))))
            goto fail;
    }
    if ((err = fl__pg_exec(s->conn, "COMMIT", errstr, sizeof(errstr))))
        goto fail;
    for (int t = 0; t < FL_PG__TABLES; t++) {
        const fl_pg_row_t *rows;
        s->rows[t] += fl_pg_batch_rows(s->batch, (fl_pg_table_t)t, &rows);
    }
    s->flushes++;
    s->flush_seconds += now_s() - t0;
    fl_pg_batch_clear(s->batch);
    return FL_OK;
fail:
    s->failed++;
    abort_txn(s);
    log_failure(err, errstr);
    return err;
}

static void pg_discard(void *state)
{
    pg_sink_t *s = state;
    fl_pg_batch_clear(s->batch);
}

static fl_err_t pg_check(void *state)
{
    pg_sink_t *s = state;
    char errstr[256], pbuf[16];
    fl_err_t err = ensure_conn(s);

    for (size_t i = 0; !err && i < s->n_parts; i++) {
        const char *params[3] = {s->name, s->parts[i].topic, pbuf};
        snprintf(pbuf, sizeof(pbuf), "%d", (int)s->parts[i].partition);
        PGresult *res = PQexecParams(s->conn,
                                     "SELECT 1 FROM sink_offsets"
                                     " WHERE sink = $1 AND topic = $2 AND partition = $3",
                                     3, NULL, params, NULL, NULL, 0);
        err = fl__pg_check(s->conn, res, PGRES_TUPLES_OK, "check", errstr, sizeof(errstr));
        if (!err && PQntuples(res) == 0)
            err = FL_ERR_LOST;
        PQclear(res);
    }
    if (err == FL_ERR_UNAVAILABLE && s->conn && PQstatus(s->conn) != CONNECTION_OK)
        disconnect(s);
    return err;
}

/* Empties every table the sink writes and deletes its offset rows, in
 * one transaction: another instance's next flush finds its row gone
 * (FL_ERR_LOST) and rebuilds. The table names are the sink's own
 * constants (pg_tables), never input. */
static fl_err_t pg_wipe(void *state)
{
    pg_sink_t *s = state;
    char sql[512], errstr[512];
    size_t len = (size_t)snprintf(sql, sizeof(sql), "TRUNCATE");
    fl_err_t err;

    for (int t = 0; t < FL_PG__TABLES; t++)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s %s", t ? "," : "",
                                pg_tables[t].name);
    if (len >= sizeof(sql))
        return FL_ERR_NOMEM;
    if ((err = begin(s))) {
        snprintf(errstr, sizeof(errstr), "wipe: cannot start a transaction");
        goto out;
    }
    const char *params[1] = {s->name};
    PGresult *res = PQexecParams(s->conn, "DELETE FROM sink_offsets WHERE sink = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    err = fl__pg_check(s->conn, res, PGRES_COMMAND_OK, "wipe: offsets", errstr, sizeof(errstr));
    PQclear(res);
    if (!err)
        err = fl__pg_exec(s->conn, sql, errstr, sizeof(errstr));
    if (!err)
        err = fl__pg_exec(s->conn, "COMMIT", errstr, sizeof(errstr));
out:
    if (err) {
        abort_txn(s);
        log_failure(err, errstr);
        return err;
    }
    fl_pg_batch_clear(s->batch);
    fl_log_warn(COMPONENT, "wiped: every table emptied, the sink's offsets deleted");
    return FL_OK;
}

static void pg_metrics(void *state, char *out, size_t out_size)
{
    pg_sink_t *s = state;
    size_t len = strlen(out);
    int n;

#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (len < out_size && (n = snprintf(out + len, out_size - len, __VA_ARGS__)) > 0)          \
            len += (size_t)n;                                                                      \
    } while (0)
    APPEND("# TYPE feedline_pg_sink_flushes_total counter\n"
           "feedline_pg_sink_flushes_total %llu\n",
           (unsigned long long)s->flushes);
    APPEND("# TYPE feedline_pg_sink_flush_seconds_total counter\n"
           "feedline_pg_sink_flush_seconds_total %.6f\n",
           s->flush_seconds);
    APPEND("# TYPE feedline_pg_sink_failed_flushes_total counter\n"
           "feedline_pg_sink_failed_flushes_total %llu\n",
           (unsigned long long)s->failed);
    APPEND("# TYPE feedline_pg_sink_fenced_total counter\nfeedline_pg_sink_fenced_total %llu\n",
           (unsigned long long)s->fenced);
    APPEND("# TYPE feedline_pg_sink_lost_total counter\nfeedline_pg_sink_lost_total %llu\n",
           (unsigned long long)s->lost);
    APPEND("# TYPE feedline_pg_sink_reconnects_total counter\n"
           "feedline_pg_sink_reconnects_total %llu\n",
           (unsigned long long)s->reconnects);
    APPEND("# TYPE feedline_pg_sink_connected gauge\nfeedline_pg_sink_connected %d\n",
           s->conn && PQstatus(s->conn) == CONNECTION_OK);
    APPEND("# TYPE feedline_pg_sink_rows_total counter\n");
    for (int t = 0; t < FL_PG__TABLES; t++)
        APPEND("feedline_pg_sink_rows_total{table=\"%s\"} %llu\n", pg_tables[t].name,
               (unsigned long long)s->rows[t]);
    APPEND("# TYPE feedline_pg_sink_direct_copies_total counter\n");
    for (int t = 0; t < FL_PG__TABLES; t++)
        if (pg_tables[t].direct)
            APPEND("feedline_pg_sink_direct_copies_total{table=\"%s\"} %llu\n", pg_tables[t].name,
                   (unsigned long long)s->direct[t]);
    APPEND("# TYPE feedline_pg_sink_direct_fallbacks_total counter\n");
    for (int t = 0; t < FL_PG__TABLES; t++)
        if (pg_tables[t].direct)
            APPEND("feedline_pg_sink_direct_fallbacks_total{table=\"%s\"} %llu\n",
                   pg_tables[t].name, (unsigned long long)s->fallbacks[t]);
#undef APPEND
}

static void pg_close(void *state)
{
    pg_sink_t *s = state;
    if (!s)
        return;
    disconnect(s);
    fl_pg_batch_free(s->batch);
    fl_pg_buf_free(&s->buf);
    for (int k = 0; k < FL_PG_KEYS; k++)
        fl_pg_buf_free(&s->keys[k]);
    for (size_t i = 0; i < s->n_parts; i++)
        free(s->parts[i].topic);
    free(s->parts);
    free(s->conninfo);
    free(s->schema);
    free(s->name);
    free(s);
}

const fl_sink_def_t fl_pg_sink = {
    .name = "postgres",
    .open = pg_open,
    .claim = pg_claim,
    .add = pg_add,
    .flush = pg_flush,
    .discard = pg_discard,
    .wipe = pg_wipe,
    .check = pg_check,
    .metrics = pg_metrics,
    .close = pg_close,
};
