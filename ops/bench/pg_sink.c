/*
 * pg_sink.c - how fast the PostgreSQL sink writes a batch, against the
 * alternative it was chosen over.
 *
 *   fl-bench-pg-sink [BATCHES [ROWS]]      (defaults 20 and 5000)
 *
 * Both write ROWS feed items and one offset row per transaction into the
 * PostgreSQL of FEEDLINE_POSTGRES (else the topology's endpoint), once as
 * new rows and once more over the same keys (updates):
 *   copy:     the sink's own flush (binary COPY into a staging table, one
 *             INSERT ... ON CONFLICT from it);
 *   pipeline: libpq pipeline mode, one prepared INSERT ... ON CONFLICT per
 *             row, a sync every 500 rows.
 * Prints rows/s per method and pass. Writes into feed_items under user ids
 * of its own (removed at the end).
 */
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
    char errstr[256], sink[64], sql[256];
    fl_topology_t *topo = fl_topology_load(fl_topology_default_path(), errstr, sizeof(errstr));
    if (!topo)
        die(errstr, NULL);
    int64_t user0 = (int64_t)time(NULL) * 100000, offset = 0, next;
    snprintf(sink, sizeof(sink), "bench-%lld", (long long)user0);
    fl_sink_env_t env = {.topo = topo, .name = sink, .instance = "0"};
    const fl_sink_part_t part = {"feedline.timelines-changelog", 0};
    void *st;
    if (fl_pg_sink.open(&env, &st) || fl_pg_sink.claim(st, &part, 1, &next))
        die("open", NULL);
    PGconn *c = PQconnectdb(topo->endpoints.postgres);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", c);
    prepare(c);

    const char *pass[2] = {"insert", "update"};
    for (int p = 0; p < 2; p++) {
        double copy = run_copy(st, user0, batches, rows, &offset);
        double pipe = run_pipeline(c, sink, user0 + 1000, batches, rows, &offset);
        printf("%s: %d batches of %d rows: copy+upsert %.0f rows/s, pipeline %.0f rows/s\n",
               pass[p], batches, rows, copy, pipe);
    }
    snprintf(sql, sizeof(sql),
             "DELETE FROM feed_items WHERE user_id >= %lld AND user_id < %lld;"
             "DELETE FROM sink_offsets WHERE sink = 'bench-%lld'",
             (long long)user0, (long long)user0 + 2000, (long long)user0);
    exec_ok(c, sql);
    PQfinish(c);
    fl_pg_sink.close(st);
    fl_topology_free(topo);
    return 0;
}
