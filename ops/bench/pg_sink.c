/*
 * pg_sink.c - how fast the PostgreSQL sink writes a batch, against the
 * alternative it was chosen over.
 *
 *   fl-bench-pg-sink [BATCHES [ROWS [pipeline]]]   (defaults 20 and 5000)
 *
 * Writes BATCHES batches of ROWS records, each batch with its offset rows
 * in one transaction, into the PostgreSQL of FEEDLINE_POSTGRES (else the
 * topology's endpoint), in three passes:
 *   insert:  new feed items through the sink's flush;
 *   update:  the same feed items again (a replay after a crash);
 *   mixed:   the pipeline's mix through the sink's flush, from all four
 *            inputs: per 100 records 80 new feed items, 8 tombstones of
 *            the previous batch's items, 2 posts, 1 user, 4 likes, 2
 *            notifications, 2 post counts, 1 affinity row (and its user
 *            count).
 * With "pipeline", insert and update also run through libpq pipeline
 * mode, one prepared INSERT ... ON CONFLICT per row and a sync every 500
 * rows (the alternative the sink's COPY was chosen over). Prints records
 * per second. Writes under ids of its own (removed at the end).
 */
#include "fl_engage.h"
#include "fl_event.h"
#include "fl_keys.h"
#include "fl_pg_sink.h"
#include "fl_topology.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, PGconn *c)
{
    fprintf(stderr, "fl-bench-pg-sink: %s: %s\n", what, c ? PQerrorMessage(c) : "");
    exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(sql, c);
    PQclear(r);
}

static double run_copy(void *st, int64_t user0, int batches, int rows, int64_t *offset)
{
    const fl_sink_part_t part = {"feedline.timelines-changelog", 0};
    char errstr[256];
    double t0 = now_s();
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < rows; i++) {
            fl_key_t k;
            uint8_t v[8];
            int64_t n = (int64_t)b * rows + i;
            fl_key_timeline(&k, user0 + n % 1000, 1700000000000 + n, n + 1);
            fl_key_enc_i64(v, 7);
            fl_proc_record_t rec = {.topic = part.topic,
                                    .offset = *offset,
                                    .key = k.buf,
                                    .key_len = k.len,
                                    .value = v,
                                    .value_len = 8};
            if (fl_pg_sink.add(st, &rec, errstr, sizeof(errstr)))
                die(errstr, NULL);
            ++*offset;
        }
        if (fl_pg_sink.flush(st, &part, offset, 1))
            die("flush", NULL);
    }
    return (double)batches * rows / (now_s() - t0);
}

static void add_rec(void *st, const fl_proc_record_t *rec)
{
    char errstr[256];
    if (fl_pg_sink.add(st, rec, errstr, sizeof(errstr)))
        die(errstr, NULL);
}

static void add_feed(void *st, int64_t user, int64_t at, int64_t post, bool present)
{
    fl_key_t k;
    uint8_t v[8];
    fl_key_timeline(&k, user, at, post);
    fl_key_enc_i64(v, 7);
    fl_proc_record_t rec = {.topic = "feedline.timelines-changelog",
                            .key = k.buf,
                            .key_len = k.len,
                            .value = present ? v : NULL,
                            .value_len = present ? 8 : 0};
    add_rec(st, &rec);
}

static void add_fact(void *st, fl_fact_kind_t kind, int64_t a, int64_t b, int64_t c, int64_t value)
{
    fl_fact_t f = {.kind = kind, .id = {a, b, c}, .present = true, .value = value};
    uint8_t k[FL_FACT_KEY_MAX], v[FL_FACT_VALUE_LEN];
    if (kind == FL_FACT_NOTIFICATION)
        f.nkind = FL_NOTIF_LIKE;
    size_t klen = fl_fact_key_encode(&f, k), vlen = fl_fact_value_encode(&f, v);
    fl_proc_record_t rec = {
        .topic = "feedline.engagement", .key = k, .key_len = klen, .value = v, .value_len = vlen};
    add_rec(st, &rec);
}

/* Ids: users user0 + [0, 1000), posts and feed items' posts from user0 * 10. */
static double run_mixed(void *st, const fl_sink_part_t *parts, int64_t user0, int batches, int rows,
                        int64_t *offsets)
{
    double t0 = now_s();
    int64_t post0 = user0 * 10;
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < rows; i++) {
            int64_t n = (int64_t)b * rows + i, at = 1700000000000 + n, user = user0 + n % 1000;
            int m = i % 100, part = 1;
            if (m < 80) {
                add_feed(st, user, at, post0 + n, true);
            } else if (m < 88) {
                int64_t old = n - rows - 40; /* a new item of the previous batch */
                if (old >= 0 && old % 100 < 80)
                    add_feed(st, user0 + old % 1000, 1700000000000 + old, post0 + old, false);
                else
                    add_feed(st, user, at, post0 + n, true);
            } else if (m < 90) {
                fl_event_t ev = {.type = FL_EV_POST_CREATED,
                                 .occurred_at = at,
                                 .post_id = post0 + n,
                                 .author_id = user,
                                 .created_at = at,
                                 .visibility = FL_VIS_PUBLIC,
                                 .text = "a post of about forty characters, say."};
                fl_proc_record_t rec = {.topic = "posts", .event = &ev};
                add_rec(st, &rec);
                part = 2;
            } else if (m < 91) {
                char handle[32];
                snprintf(handle, sizeof(handle), "u%lld", (long long)user);
                fl_event_t ev = {.type = FL_EV_USER_REGISTERED,
                                 .occurred_at = at,
                                 .user_id = user,
                                 .handle = handle,
                                 .display_name = handle};
                fl_proc_record_t rec = {.topic = "users", .event = &ev};
                add_rec(st, &rec);
                part = 3;
            } else if (m < 95) {
                add_fact(st, FL_FACT_LIKE, post0 + n - 50, user, 0, at);
                part = 0;
            } else if (m < 97) {
                add_fact(st, FL_FACT_NOTIFICATION, user, user0 + (n + 7) % 1000, post0 + n - 50,
                         at);
                part = 0;
            } else if (m < 99) {
                add_fact(st, FL_FACT_POST_LIKES, post0 + n - 50, 0, 0, n % 17);
                part = 0;
            } else {
                add_fact(st, FL_FACT_AFFINITY, user, user0 + (n + 7) % 1000, 0, n % 5);
                add_fact(st, FL_FACT_FOLLOWERS, user, 0, 0, n % 50);
                part = 0;
            }
            offsets[part]++;
        }
        if (fl_pg_sink.flush(st, parts, offsets, 4))
            die("flush", NULL);
    }
    return (double)batches * rows / (now_s() - t0);
}

static void read_results(PGconn *c, int expected)
{
    int got = 0;
    for (;;) {
        PGresult *r = PQgetResult(c);
        if (!r)
            continue; /* between the results of two statements */
        ExecStatusType s = PQresultStatus(r);
        PQclear(r);
        if (s == PGRES_PIPELINE_SYNC)
            break;
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
            die("pipeline", c);
        got++;
    }
    if (got != expected)
        die("pipeline: results missing", c);
}

static void prepare(PGconn *c)
{
    PGresult *r = PQprepare(c, "ins",
                            "INSERT INTO feed_items (user_id, created_at, post_id, author_id)"
                            " VALUES ($1, 'epoch'::timestamptz + $2::bigint * interval '1 ms',"
                            " $3, $4) ON CONFLICT (user_id, created_at, post_id) DO UPDATE SET"
                            " author_id = EXCLUDED.author_id",
                            4, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare", c);
    PQclear(r);
}

static double run_pipeline(PGconn *c, const char *sink, int64_t user0, int batches, int rows,
                           int64_t *offset)
{
    if (!PQenterPipelineMode(c))
        die("pipeline mode", c);
    double t0 = now_s();
    for (int b = 0; b < batches; b++) {
        int pending = 0;
        if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
            die("begin", c);
        pending++;
        for (int i = 0; i < rows; i++) {
            char a[24], t[24], p[24];
            const char *params[4] = {a, t, p, "7"};
            int64_t n = (int64_t)b * rows + i;
            snprintf(a, sizeof(a), "%lld", (long long)(user0 + n % 1000));
            snprintf(t, sizeof(t), "%lld", (long long)(1700000000000 + n));
            snprintf(p, sizeof(p), "%lld", (long long)(n + 1));
            if (!PQsendQueryPrepared(c, "ins", 4, params, NULL, NULL, 0))
                die("send", c);
            if (++pending == 500) {
                PQpipelineSync(c);
                read_results(c, pending);
                pending = 0;
            }
        }
        char o[24];
        const char *params[2] = {o, sink};
        *offset += rows;
        snprintf(o, sizeof(o), "%lld", (long long)*offset);
        PQsendQueryParams(c,
                          "UPDATE sink_offsets SET next_offset = $1 WHERE sink = $2"
                          " AND topic = 'feedline.timelines-changelog' AND partition = 0",
                          2, NULL, params, NULL, NULL, 0);
        PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
        PQpipelineSync(c);
        read_results(c, pending + 2);
    }
    double rate = (double)batches * rows / (now_s() - t0);
    PQexitPipelineMode(c);
    return rate;
}

int main(int argc, char **argv)
{
    int batches = argc > 1 ? atoi(argv[1]) : 20, rows = argc > 2 ? atoi(argv[2]) : 5000;
    bool pipeline = argc > 3 && !strcmp(argv[3], "pipeline");
    char errstr[256], sink[64], sql[1024];
    fl_topology_t *topo = fl_topology_load(fl_topology_default_path(), errstr, sizeof(errstr));
    if (!topo)
        die(errstr, NULL);
    int64_t user0 = (int64_t)time(NULL) * 100000, offset = 0;
    snprintf(sink, sizeof(sink), "bench-%lld", (long long)user0);
    fl_sink_env_t env = {.topo = topo, .name = sink, .instance = "0"};
    const fl_sink_part_t parts[4] = {{"feedline.engagement", 0},
                                     {"feedline.timelines-changelog", 0},
                                     {"posts", 0},
                                     {"users", 0}};
    int64_t nexts[4], mixed[4] = {0, 0, 0, 0};
    void *st;
    if (fl_pg_sink.open(&env, &st) || fl_pg_sink.claim(st, parts, 4, nexts))
        die("open", NULL);
    PGconn *c = PQconnectdb(topo->endpoints.postgres);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", c);
    prepare(c);

    const char *pass[2] = {"insert", "update"};
    for (int p = 0; p < 2; p++) {
        double copy = run_copy(st, user0, batches, rows, &offset);
        printf("%s: %d batches of %d rows: sink %.0f rows/s", pass[p], batches, rows, copy);
        if (pipeline)
            printf(", pipeline %.0f rows/s",
                   run_pipeline(c, sink, user0 + 1000, batches, rows, &offset));
        printf("\n");
    }
    mixed[1] = offset;
    printf("mixed: %d batches of %d records: sink %.0f records/s\n", batches, rows,
           run_mixed(st, parts, user0 + 2000, batches, rows, mixed));
    snprintf(sql, sizeof(sql),
             "DELETE FROM feed_items WHERE user_id >= %lld AND user_id < %lld;"
             "DELETE FROM users WHERE id >= %lld AND id < %lld;"
             "DELETE FROM user_counts WHERE user_id >= %lld AND user_id < %lld;"
             "DELETE FROM affinity WHERE viewer_id >= %lld AND viewer_id < %lld;"
             "DELETE FROM notifications WHERE user_id >= %lld AND user_id < %lld;"
             "DELETE FROM posts WHERE id >= %lld * 10;"
             "DELETE FROM post_likes WHERE post_id >= %lld * 10 - 100;"
             "DELETE FROM post_counts WHERE post_id >= %lld * 10;"
             "DELETE FROM sink_offsets WHERE sink = 'bench-%lld'",
             (long long)user0, (long long)user0 + 3000, (long long)user0, (long long)user0 + 3000,
             (long long)user0, (long long)user0 + 3000, (long long)user0, (long long)user0 + 3000,
             (long long)user0, (long long)user0 + 3000, (long long)user0 + 2000,
             (long long)user0 + 2000, (long long)user0 + 2000, (long long)user0);
    exec_ok(c, sql);
    PQfinish(c);
    fl_pg_sink.close(st);
    fl_topology_free(topo);
    return 0;
}
