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
 * records); per non-empty table one COPY and one or two statements, so a
 * flush costs about 2 + parts + 3 x tables round trips whatever its size.
 * Measured (ops/bench/pg_sink.c, README): COPY + set-based upserts beat
 * one pipelined INSERT per row.
 *
 * An upsert whose row already holds the staged values writes nothing
 * (DO UPDATE ... WHERE old <> new): re-applied batches, the replays after
 * a crash or a rebalance, then cost a lookup and a row lock instead of a
 * new row version, its index entries and its WAL. The columns compared
 * are NOT NULL, so <> is exact.
 *
 * Times are staged as epoch milliseconds and turned into timestamptz by
 * MS() in SQL, exactly (no floating point).
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

#define MS(x)    "('epoch'::timestamptz + (" x ") * interval '1 millisecond')"
#define NKIND(x) "(CASE " x " WHEN 1 THEN 'like' ELSE 'follow' END)"
#define STAGE(name)                                                                                \
    "CREATE TEMP TABLE IF NOT EXISTS " name " (k0 bigint, k1 bigint, k2 bigint, k3 bigint,"        \
    " del boolean, v0 bigint, v1 bigint, v2 bigint, v3 bigint, v4 bigint, v5 bigint,"              \
    " s0 text, s1 text, s2 text) ON COMMIT DELETE ROWS;"

typedef struct pg_table_sql {
    const char *name; /* the metrics label */
    const char *copy;
    const char *apply[3]; /* in order; NULL ends */
    bool set;             /* a set table: apply[0] deletes, apply[1] upserts */
} pg_table_sql_t;

/* Column meaning per table: fl_pg_batch.h. */
static const pg_table_sql_t pg_tables[FL_PG__TABLES] = {
    [FL_PG_USER_COUNTS] =
        {"user_counts",
         "COPY s_user_counts FROM STDIN (FORMAT binary)",
         {"INSERT INTO user_counts (user_id, followers_count, following_count, posts_count)"
          " SELECT k0, v0, v1, v2 FROM s_user_counts ON CONFLICT (user_id) DO UPDATE SET"
          " followers_count = coalesce(EXCLUDED.followers_count, user_counts.followers_count),"
          " following_count = coalesce(EXCLUDED.following_count, user_counts.following_count),"
          " posts_count = coalesce(EXCLUDED.posts_count, user_counts.posts_count)",
          "UPDATE users u SET followers_count = coalesce(s.v0, u.followers_count),"
          " following_count = coalesce(s.v1, u.following_count),"
          " posts_count = coalesce(s.v2, u.posts_count) FROM s_user_counts s WHERE u.id = s.k0"}},
    [FL_PG_USERS] =
        {"users",
         "COPY s_users FROM STDIN (FORMAT binary)",
         {"INSERT INTO users (id, username, display_name, bio, created_at, updated_at,"
          " followers_count, following_count, posts_count)"
          " SELECT s.k0, s.s0, s.s1, s.s2, " MS("s.v0") ", " MS(
              "s.v1") ","
                      " coalesce(c.followers_count, 0), coalesce(c.following_count, 0),"
                      " coalesce(c.posts_count, 0)"
                      " FROM s_users s LEFT JOIN user_counts c ON c.user_id = s.k0 WHERE s.v2 = 1"
                      " ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username,"
                      " display_name = EXCLUDED.display_name, bio = coalesce(EXCLUDED.bio, "
                      "users.bio),"
                      " updated_at = EXCLUDED.updated_at",
          "UPDATE users u SET display_name = coalesce(s.s1, u.display_name),"
          " bio = coalesce(s.s2, u.bio), updated_at = " MS(
              "s.v1") " FROM s_users s"
                      " WHERE s.v2 = 0 AND u.id = s.k0"}},
    [FL_PG_POST_COUNTS] =
        {"post_counts",
         "COPY s_post_counts FROM STDIN (FORMAT binary)",
         {"INSERT INTO post_counts (post_id, likes_count) SELECT k0, v0 FROM s_post_counts"
          " ON CONFLICT (post_id) DO UPDATE SET likes_count = EXCLUDED.likes_count"
          " WHERE post_counts.likes_count <> EXCLUDED.likes_count",
          "UPDATE posts p SET likes_count = s.v0 FROM s_post_counts s"
          " WHERE p.id = s.k0 AND p.likes_count <> s.v0"}},
    /* a create of a known post changes nothing; a delete sets deleted_at
     * once, and only for the post's author; a delete of an unknown post
     * leaves a deleted row (README) */
    [FL_PG_POSTS] =
        {"posts",
         "COPY s_posts FROM STDIN (FORMAT binary)",
         {"INSERT INTO posts (id, user_id, content_text, privacy, reply_to, created_at,"
          " deleted_at, likes_count)"
          " SELECT s.k0, s.v0, coalesce(s.s0, ''), coalesce(s.s1, 'private'), s.v3,"
          " " MS("coalesce(s.v1, s.v2)") ", " MS(
              "s.v2") ", coalesce(c.likes_count, 0)"
                      " FROM s_posts s LEFT JOIN post_counts c ON c.post_id = s.k0"
                      " ON CONFLICT (id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at"
                      " WHERE posts.deleted_at IS NULL AND EXCLUDED.deleted_at IS NOT NULL"
                      " AND posts.user_id = EXCLUDED.user_id"}},
    [FL_PG_POST_LIKES] = {"post_likes",
                          "COPY s_post_likes FROM STDIN (FORMAT binary)",
                          {"DELETE FROM post_likes t USING s_post_likes s"
                           " WHERE s.del AND t.post_id = s.k0 AND t.user_id = s.k1",
                           "INSERT INTO post_likes (post_id, user_id, created_at)"
                           " SELECT k0, k1, " MS("v0") " FROM s_post_likes WHERE NOT del"
                                                       " ON CONFLICT (post_id, user_id) DO UPDATE "
                                                       "SET created_at = EXCLUDED.created_at"
                                                       " WHERE post_likes.created_at <>"
                                                       " EXCLUDED.created_at"},
                          true},
    [FL_PG_FOLLOWS] = {"follows",
                       "COPY s_follows FROM STDIN (FORMAT binary)",
                       {"DELETE FROM follows t USING s_follows s"
                        " WHERE s.del AND t.follower_id = s.k1 AND t.following_id = s.k0",
                        "INSERT INTO follows (follower_id, following_id, created_at)"
                        " SELECT k1, k0, " MS(
                            "v0") " FROM s_follows WHERE NOT del"
                                  " ON CONFLICT (follower_id, following_id) DO UPDATE SET"
                                  " created_at = EXCLUDED.created_at"
                                  " WHERE follows.created_at <> EXCLUDED.created_at"},
                       true},
    [FL_PG_NOTIFICATIONS] =
        {"notifications",
         "COPY s_notifications FROM STDIN (FORMAT binary)",
         {"DELETE FROM notifications t USING s_notifications s"
          " WHERE s.del AND t.user_id = s.k0 AND t.kind = " NKIND(
              "s.k1") " AND"
                      " t.actor_id = s.k2 AND t.post_id IS NOT DISTINCT FROM nullif(s.k3, 0)",
          "INSERT INTO notifications (user_id, created_at, kind, actor_id, post_id)"
          " SELECT k0, " MS("v0") ", " NKIND(
              "k1") ", k2, nullif(k3, 0)"
                    " FROM s_notifications WHERE NOT del"
                    " ON CONFLICT (user_id, kind, actor_id, post_id) DO UPDATE SET"
                    " created_at = EXCLUDED.created_at"
                    " WHERE notifications.created_at <> EXCLUDED.created_at"},
         true},
    [FL_PG_AFFINITY] = {"affinity",
                        "COPY s_affinity FROM STDIN (FORMAT binary)",
                        {"DELETE FROM affinity t USING s_affinity s"
                         " WHERE s.del AND t.viewer_id = s.k0 AND t.author_id = s.k1",
                         "INSERT INTO affinity (viewer_id, author_id, likes)"
                         " SELECT k0, k1, v0 FROM s_affinity WHERE NOT del"
                         " ON CONFLICT (viewer_id, author_id) DO UPDATE SET likes = EXCLUDED.likes"
                         " WHERE affinity.likes <> EXCLUDED.likes"},
                        true},
    [FL_PG_FEED_ITEMS] =
        {"feed_items",
         "COPY s_feed_items FROM STDIN (FORMAT binary)",
         {"DELETE FROM feed_items t USING s_feed_items s"
          " WHERE s.del AND t.user_id = s.k0 AND t.created_at = " MS("s.k1") " AND"
                                                                             " t.post_id = s.k2",
          "INSERT INTO feed_items (user_id, created_at, post_id, author_id)"
          " SELECT k0, " MS("k1") ", k2, v0 FROM s_feed_items WHERE NOT del"
                                  " ON CONFLICT (user_id, created_at, post_id) DO UPDATE SET"
                                  " author_id = EXCLUDED.author_id"
                                  " WHERE feed_items.author_id <> EXCLUDED.author_id"},
         true},
};

static const char pg_stage_ddl[] = STAGE("s_user_counts") STAGE("s_users") STAGE("s_post_counts")
    STAGE("s_posts") STAGE("s_post_likes") STAGE("s_follows") STAGE("s_notifications")
        STAGE("s_affinity") STAGE("s_feed_items");

typedef struct pg_part {
    char *topic; /* owned */
    int32_t partition;
    int64_t generation;
} pg_part_t;

typedef struct pg_sink {
    char *conninfo; /* owned */
    char *name;     /* owned: the sink's name in sink_offsets */
    char migrations[PATH_MAX];
    PGconn *conn; /* NULL while disconnected */
    fl_pg_batch_t *batch;
    fl_pg_buf_t buf;
    pg_part_t *parts;
    size_t n_parts;
    /* metrics */
    uint64_t flushes, fenced, lost, failed, reconnects;
    uint64_t rows[FL_PG__TABLES];
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

/* Connects, migrates and creates the staging tables. */
static fl_err_t connect_db(pg_sink_t *s)
{
    /* connect_timeout first: a conninfo that sets one overrides it */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "feedline-pg-sink", s->conninfo, NULL};
    char errstr[512];
    fl_err_t err;

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
    if ((err = fl__pg_migrate(s->conn, s->migrations, errstr, sizeof(errstr))) ||
        (err = fl__pg_exec(s->conn, pg_stage_ddl, errstr, sizeof(errstr)))) {
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

/* Stages table t by COPY and applies it. */
static fl_err_t flush_table(pg_sink_t *s, fl_pg_table_t t, char *errstr, size_t errstr_size)
{
    const pg_table_sql_t *sql = &pg_tables[t];
    const fl_pg_row_t *rows;
    PGresult *res;
    fl_err_t err;

    if ((err = fl_pg_batch_copy_encode(s->batch, t, &s->buf)))
        return err;
    res = PQexec(s->conn, sql->copy);
    err = fl__pg_check(s->conn, res, PGRES_COPY_IN, sql->copy, errstr, errstr_size);
    PQclear(res);
    if (err)
        return err;
    if (PQputCopyData(s->conn, (const char *)s->buf.p, (int)s->buf.len) != 1 ||
        PQputCopyEnd(s->conn, NULL) != 1) {
        snprintf(errstr, errstr_size, "COPY %s: %s", sql->name, PQerrorMessage(s->conn));
        return FL_ERR_UNAVAILABLE;
    }
    res = PQgetResult(s->conn);
    err = fl__pg_check(s->conn, res, PGRES_COMMAND_OK, sql->copy, errstr, errstr_size);
    PQclear(res);
    /* drain: after COPY libpq returns NULL once the command is done */
    while ((res = PQgetResult(s->conn)))
        PQclear(res);
    /* a set table runs its delete only for a batch with deletes and its
     * upsert only for one with upserts: a join against an empty side still
     * costs a plan and, without statistics on the staging table, a scan */
    size_t dels = 0, n = fl_pg_batch_rows(s->batch, t, &rows);
    for (size_t i = 0; sql->set && i < n; i++)
        dels += rows[i].del;
    for (int i = 0; !err && i < 3 && sql->apply[i]; i++) {
        if (sql->set && ((i == 0 && !dels) || (i == 1 && dels == n)))
            continue;
        err = fl__pg_exec(s->conn, sql->apply[i], errstr, errstr_size);
    }
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
    for (size_t i = 0; i < s->n_parts; i++)
        free(s->parts[i].topic);
    free(s->parts);
    free(s->conninfo);
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
    .check = pg_check,
    .metrics = pg_metrics,
    .close = pg_close,
};
