/*
 * fl_sink_store.c - the sinks' stored offsets, read from Redis and
 * PostgreSQL (fl_sink_store.h). One command or statement per call; hiredis
 * replies and PGresults stay in this file.
 */
#include "fl_sink_store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fl_sink_store_redis_endpoint(const char *ep, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(ep, ':');

    snprintf(host, host_size, "%.*s", colon ? (int)(colon - ep) : (int)strlen(ep), ep);
    *port = colon ? atoi(colon + 1) : 6379;
}

fl_err_t fl_sink_store_redis_select(redisContext *c, int64_t db, char *errstr, size_t errstr_size)
{
    if (!db)
        return FL_OK;
    redisReply *r = redisCommand(c, "SELECT %lld", (long long)db);
    fl_err_t err = r && r->type == REDIS_REPLY_STATUS ? FL_OK : FL_ERR_UNAVAILABLE;
    if (err)
        snprintf(errstr, errstr_size, "SELECT %lld: %s", (long long)db,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    freeReplyObject(r);
    return err;
}

redisContext *fl_sink_store_redis_connect(const fl_endpoints_t *ep, int timeout_ms, char *errstr,
                                          size_t errstr_size)
{
    char host[256], why[256];
    int port;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    fl_sink_store_redis_endpoint(ep->redis, host, sizeof(host), &port);
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        snprintf(errstr, errstr_size, "Redis at %s: %s", ep->redis,
                 c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (fl_sink_store_redis_select(c, ep->redis_db, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "Redis at %s: %s", ep->redis, why);
        redisFree(c);
        return NULL;
    }
    return c;
}

char *fl_sink_store_pg_conninfo(const fl_endpoints_t *ep, int timeout_ms)
{
    char *out = NULL, path[96] = "";
    int connect_s = (timeout_ms + 999) / 1000;

    if (ep->postgres_schema)
        snprintf(path, sizeof(path), " -c search_path=%s", ep->postgres_schema);
    /* libpq takes whole seconds and treats 1 as 2 */
    if (asprintf(&out, "%s connect_timeout=%d options='-c statement_timeout=%d%s'", ep->postgres,
                 connect_s < 2 ? 2 : connect_s, timeout_ms, path) < 0)
        return NULL;
    return out;
}

static bool parse_offset(const char *s, size_t len, int64_t *out)
{
    char buf[32], *end;
    long long v;

    if (!len || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno || *end || v < 0)
        return false;
    *out = v;
    return true;
}

fl_err_t fl_sink_store_redis_offsets(redisContext *c, const char *sink, fl_lag_part_t *parts,
                                     size_t n, char *epoch, size_t epoch_size, char *errstr,
                                     size_t errstr_size)
{
    const char **argv = calloc(n + 3, sizeof(*argv));
    char **fields = calloc(n + 1, sizeof(*fields));
    char *key = NULL;
    redisReply *r = NULL;
    fl_err_t err = FL_ERR_NOMEM;

    epoch[0] = '\0';
    for (size_t i = 0; i < n; i++)
        parts[i].pos = FL_LAG_NONE;
    if (!argv || !fields || asprintf(&key, FL_SINK_MARKER_FMT, sink) < 0) {
        key = NULL;
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    argv[0] = "HMGET";
    argv[1] = key;
    argv[2] = "epoch";
    for (size_t i = 0; i < n; i++) {
        if (asprintf(&fields[i], FL_SINK_MARKER_OFF "%s/%d", parts[i].topic,
                     (int)parts[i].partition) < 0) {
            fields[i] = NULL;
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
        argv[i + 3] = fields[i];
    }
    r = redisCommandArgv(c, (int)(n + 3), argv, NULL);
    if (!r) {
        snprintf(errstr, errstr_size, "redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        err = FL_ERR_UNAVAILABLE;
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n + 1) {
        snprintf(errstr, errstr_size, "redis: HMGET %s: %s", key,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        err = FL_ERR_IO;
        goto out;
    }
    if (r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(epoch, epoch_size, "%.*s", (int)r->element[0]->len, r->element[0]->str);
    for (size_t i = 0; i < n; i++) {
        const redisReply *v = r->element[i + 1];
        int64_t off;
        if (v->type == REDIS_REPLY_STRING && parse_offset(v->str, v->len, &off))
            parts[i].pos = off;
    }
    err = FL_OK;
out:
    if (r)
        freeReplyObject(r);
    for (size_t i = 0; fields && i < n; i++)
        free(fields[i]);
    free(fields);
    free(argv);
    free(key);
    return err;
}

fl_err_t fl_sink_store_pg_offsets(PGconn *c, const char *sink, fl_lag_part_t *parts, size_t n,
                                  char *errstr, size_t errstr_size)
{
    const char *params[] = {sink};
    PGresult *r;
    fl_err_t err = FL_OK;

    for (size_t i = 0; i < n; i++)
        parts[i].pos = FL_LAG_NONE;
    r = PQexecParams(c,
                     "SELECT topic, partition, next_offset FROM sink_offsets"
                     " WHERE sink = $1 AND next_offset IS NOT NULL",
                     1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQstatus(c) != CONNECTION_OK) {
            snprintf(errstr, errstr_size, "postgresql: %s", PQerrorMessage(c));
            err = FL_ERR_UNAVAILABLE;
        } else if (!state || strcmp(state, "42P01")) {
            snprintf(errstr, errstr_size, "postgresql: sink_offsets: %s", PQresultErrorMessage(r));
            err = FL_ERR_IO;
        } /* else no table yet: the sink never ran, nothing stored */
        PQclear(r);
        if (err)
            errstr[strcspn(errstr, "\n")] = '\0';
        return err;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        const char *t = PQgetvalue(r, row, 0), *p = PQgetvalue(r, row, 1);
        const char *v = PQgetvalue(r, row, 2);
        int64_t part, off;
        if (!parse_offset(p, strlen(p), &part) || !parse_offset(v, strlen(v), &off))
            continue;
        for (size_t i = 0; i < n; i++)
            if (parts[i].partition == part && !strcmp(parts[i].topic, t))
                parts[i].pos = off;
    }
    PQclear(r);
    return FL_OK;
}
