/*
 * fl_redis_sink.c - the Redis sink's callbacks: the connection, the
 * scripts, claiming parts and flushing batches through the marker.
 *
 * Invariants: a chunk is written only by the flush script, which checks
 * the marker's epoch, every part's generation and every part's offset
 * before its first write; the offsets the sink believes committed
 * (fl_redis_part_t.committed) change only on the script's OK or DUP, so
 * a reply lost with the connection is settled by the next attempt (DUP:
 * the chunk was in). Hiredis replies and errors stay in this file.
 *
 * Workload: one EVALSHA per chunk (thousands of operations), one claim
 * per assignment, one HGET a second while idle.
 */
#include "fl_redis_sink.h"

#include "fl_log.h"
#include "fl_redis_int.h"
#include "fl_sink_store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "redis-sink"

typedef struct rsink {
    char host[256];
    int port;
    int64_t db; /* endpoints.redis_db: a generation kept in another database */
    char *marker;
    redisContext *c; /* NULL while disconnected */
    char flush_sha[48], claim_sha[48];
    char epoch[40]; /* "" until a claim */
    fl_redis_part_t **parts;
    size_t n_parts;
    fl_redis_batch_t *batch;
    fl_redis_caps_t caps;
    /* metrics */
    uint64_t flushes, scripts, dup_scripts, records, ops, connects, reloads, fenced, lost;
    uint64_t errors;
    double script_seconds;
} rsink_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void disconnect(rsink_t *s)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
}

/* Errors of a reply that Redis can recover from by itself. */
static int transient(const char *msg)
{
    static const char *const prefixes[] = {"BUSY",       "LOADING",  "OOM",        "READONLY",
                                           "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

/* Sends one command; NULL reply: the connection broke (dropped). */
static fl_err_t command(rsink_t *s, size_t argc, const char **argv, const size_t *argvlen,
                        redisReply **out)
{
    *out = NULL;
    if (!s->c)
        return FL_ERR_UNAVAILABLE;
    redisReply *r = redisCommandArgv(s->c, (int)argc, argv, argvlen);
    if (!r) {
        int timeout = s->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
        fl_log_warn(COMPONENT, "redis %s:%d: %s; reconnecting on the next call", s->host, s->port,
                    s->c->errstr);
        disconnect(s);
        return timeout ? FL_ERR_TIMEOUT : FL_ERR_UNAVAILABLE;
    }
    *out = r;
    return FL_OK;
}

static fl_err_t load_script(rsink_t *s, const char *src, char *sha)
{
    const char *argv[] = {"SCRIPT", "LOAD", src};
    size_t len[] = {6, 4, strlen(src)};
    redisReply *r;
    fl_err_t err = command(s, 3, argv, len, &r);
    if (err)
        return err;
    if (r->type == REDIS_REPLY_STRING && r->len < 48) {
        memcpy(sha, r->str, r->len);
        sha[r->len] = '\0';
    } else {
        fl_log_error(COMPONENT, "SCRIPT LOAD: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        err =
            r->type == REDIS_REPLY_ERROR && transient(r->str) ? FL_ERR_UNAVAILABLE : FL_ERR_CONFIG;
    }
    freeReplyObject(r);
    return err;
}

static fl_err_t load_scripts(rsink_t *s)
{
    s->reloads++;
    fl_err_t err = load_script(s, fl_redis_flush_lua, s->flush_sha);
    return err ? err : load_script(s, fl_redis_claim_lua, s->claim_sha);
}

static fl_err_t ensure_connected(rsink_t *s)
{
    if (s->c)
        return FL_OK;
    struct timeval connect_tv = {2, 0}, io_tv = {30, 0};
    s->c = redisConnectWithTimeout(s->host, s->port, connect_tv);
    if (!s->c || s->c->err) {
        fl_log_warn(COMPONENT, "cannot connect to redis %s:%d: %s", s->host, s->port,
                    s->c ? s->c->errstr : "out of memory");
        disconnect(s);
        return FL_ERR_UNAVAILABLE;
    }
    redisSetTimeout(s->c, io_tv);
    char why[256];
    if (fl_sink_store_redis_select(s->c, s->db, why, sizeof(why))) {
        fl_log_warn(COMPONENT, "redis %s:%d: %s", s->host, s->port, why);
        disconnect(s);
        return FL_ERR_UNAVAILABLE;
    }
    s->connects++;
    fl_err_t err = load_scripts(s);
    if (err)
        disconnect(s);
    return err;
}

/* Runs a script by sha (argv[1]); on NOSCRIPT (a restarted or flushed
 * script cache) loads the scripts again and retries once. */
static fl_err_t evalsha(rsink_t *s, const char *sha, size_t argc, const char **argv,
                        size_t *argvlen, redisReply **out)
{
    for (int attempt = 0;; attempt++) {
        fl_err_t err = ensure_connected(s);
        if (err)
            return err;
        argv[1] = sha;
        argvlen[1] = strlen(sha);
        err = command(s, argc, argv, argvlen, out);
        if (err)
            return err;
        redisReply *r = *out;
        if (attempt == 0 && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            *out = NULL;
            if ((err = load_scripts(s)))
                return err;
            continue;
        }
        return FL_OK;
    }
}

static fl_err_t reply_error(rsink_t *s, const redisReply *r, const char *what)
{
    if (strncmp(r->str, FL_REDIS_ERR_LOST, strlen(FL_REDIS_ERR_LOST)) == 0) {
        s->lost++;
        fl_log_warn(COMPONENT, "%s: %s: redis lost the sink's data; it is rebuilt", what, r->str);
        return FL_ERR_LOST;
    }
    if (strncmp(r->str, FL_REDIS_ERR_FENCED, strlen(FL_REDIS_ERR_FENCED)) == 0) {
        s->fenced++;
        fl_log_warn(COMPONENT, "%s: %s", what, r->str);
        return FL_ERR_FENCED;
    }
    s->errors++;
    if (transient(r->str)) {
        fl_log_warn(COMPONENT, "%s: %s", what, r->str);
        return FL_ERR_UNAVAILABLE;
    }
    /* A script stopped by an error (a key of another type, written by
     * someone else): retrying cannot help. */
    fl_log_error(COMPONENT, "%s: %s", what, r->str);
    return FL_ERR_CORRUPT;
}

/* ---- callbacks ---- */

static void part_free(fl_redis_part_t *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->gen_field);
    free(p->off_field);
    free(p);
}

static void redis_close(void *state)
{
    rsink_t *s = state;
    if (!s)
        return;
    disconnect(s);
    for (size_t i = 0; i < s->n_parts; i++)
        part_free(s->parts[i]);
    free(s->parts);
    fl_redis_batch_free(s->batch);
    free(s->marker);
    free(s);
}

static fl_err_t parse_endpoint(rsink_t *s, const char *ep)
{
    const char *colon = ep ? strrchr(ep, ':') : NULL;
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == ep || (size_t)(colon - ep) >= sizeof(s->host) || *end || port <= 0 ||
        port > 65535) {
        fl_log_error(COMPONENT, "redis endpoint \"%s\" is not host:port", ep ? ep : "");
        return FL_ERR_CONFIG;
    }
    memcpy(s->host, ep, (size_t)(colon - ep));
    s->host[colon - ep] = '\0';
    s->port = (int)port;
    return FL_OK;
}

static fl_err_t redis_open(const fl_sink_env_t *env, void **state)
{
    *state = NULL;
    rsink_t *s = calloc(1, sizeof(*s));
    if (!s)
        return FL_ERR_NOMEM;
    fl_err_t err = parse_endpoint(s, env->topo->endpoints.redis);
    s->db = env->topo->endpoints.redis_db;
    if (!err) {
        size_t len = strlen(env->name) + 32;
        s->marker = malloc(len);
        s->batch = fl_redis_batch_new();
        if (!s->marker || !s->batch)
            err = FL_ERR_NOMEM;
        else
            snprintf(s->marker, len, FL_SINK_MARKER_FMT, env->name);
    }
    s->caps = (fl_redis_caps_t){.feed = env->topo->settings.timeline_cap,
                                .outbox = env->topo->settings.outbox_cap,
                                .notif = FL_REDIS_NOTIF_CAP,
                                .publish = env->topo->endpoints.redis_db == 0};
    if (!err)
        err = ensure_connected(s);
    if (err) {
        redis_close(s);
        return err;
    }
    *state = s;
    return FL_OK;
}

static fl_redis_part_t *find_part(rsink_t *s, const char *topic, int32_t partition)
{
    char name[256];
    snprintf(name, sizeof(name), "%s/%" PRId32, topic, partition);
    for (size_t i = 0; i < s->n_parts; i++)
        if (strcmp(s->parts[i]->name, name) == 0)
            return s->parts[i];
    return NULL;
}

static fl_redis_part_t *add_part(rsink_t *s, const char *topic, int32_t partition)
{
    fl_redis_part_t **grown = realloc(s->parts, (s->n_parts + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    s->parts = grown;
    fl_redis_part_t *p = calloc(1, sizeof(*p));
    size_t len = strlen(topic) + 32;
    if (p) {
        p->name = malloc(len);
        p->gen_field = malloc(len + 4);
        p->off_field = malloc(len + 4);
    }
    if (!p || !p->name || !p->gen_field || !p->off_field) {
        part_free(p);
        return NULL;
    }
    snprintf(p->name, len, "%s/%" PRId32, topic, partition);
    snprintf(p->gen_field, len + 4, FL_SINK_MARKER_GEN "%s", p->name);
    snprintf(p->off_field, len + 4, FL_SINK_MARKER_OFF "%s", p->name);
    p->committed = FL_SINK_NO_OFFSET;
    s->parts[s->n_parts++] = p;
    return p;
}

static void new_epoch(char *out, size_t size)
{
    uint8_t r[8] = {0};
    if (getentropy(r, sizeof(r)) != 0) {
        uint64_t t = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        memcpy(r, &t, sizeof(r));
    }
    snprintf(out, size, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
             r[6], r[7]);
}

static fl_err_t redis_claim(void *state, const fl_sink_part_t *parts, size_t n, int64_t *next)
{
    rsink_t *s = state;
    fl_redis_part_t **mine = calloc(n + 1, sizeof(*mine));
    size_t argc = 5 + 2 * n;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    char epoch[40];
    redisReply *r = NULL;
    fl_err_t err = FL_OK;
    if (!mine || !argv || !lens) {
        err = FL_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        mine[i] = find_part(s, parts[i].topic, parts[i].partition);
        if (!mine[i] && !(mine[i] = add_part(s, parts[i].topic, parts[i].partition))) {
            err = FL_ERR_NOMEM;
            goto out;
        }
    }
    new_epoch(epoch, sizeof(epoch));
    argv[0] = "EVALSHA";
    argv[2] = "1";
    argv[3] = s->marker;
    argv[4] = epoch;
    for (size_t i = 0; i < n; i++) {
        argv[5 + 2 * i] = mine[i]->gen_field;
        argv[6 + 2 * i] = mine[i]->off_field;
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = argv[i] ? strlen(argv[i]) : 0;
    if ((err = evalsha(s, s->claim_sha, argc, argv, lens, &r)))
        goto out;
    if (r->type == REDIS_REPLY_ERROR) {
        err = reply_error(s, r, "claim");
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 + 2 * n ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        fl_log_error(COMPONENT, "claim: unexpected reply");
        err = FL_ERR_CORRUPT;
        goto out;
    }
    if (strcmp(s->epoch, r->element[0]->str) != 0) {
        /* A new marker: whatever else was claimed under the old one is gone. */
        for (size_t i = 0; i < s->n_parts; i++)
            s->parts[i]->gen = -1;
        snprintf(s->epoch, sizeof(s->epoch), "%s", r->element[0]->str);
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *g = r->element[1 + 2 * i], *o = r->element[2 + 2 * i];
        if (g->type != REDIS_REPLY_INTEGER || o->type != REDIS_REPLY_STRING) {
            err = FL_ERR_CORRUPT;
            goto out;
        }
        mine[i]->gen = g->integer;
        mine[i]->committed = o->len ? strtoll(o->str, NULL, 10) : FL_SINK_NO_OFFSET;
        next[i] = mine[i]->committed;
    }
out:
    if (r)
        freeReplyObject(r);
    free(mine);
    free(argv);
    free(lens);
    return err;
}

static fl_err_t redis_add(void *state, const fl_proc_record_t *rec, char *errstr,
                          size_t errstr_size)
{
    rsink_t *s = state;
    return fl_redis_batch_add(s->batch, rec, errstr, errstr_size);
}

static void redis_discard(void *state)
{
    rsink_t *s = state;
    fl_redis_batch_clear(s->batch);
}

static fl_err_t redis_flush(void *state, const fl_sink_part_t *parts, const int64_t *next, size_t n)
{
    rsink_t *s = state;
    fl_redis_part_t **mine = calloc(n + 1, sizeof(*mine));
    int64_t *new_off = calloc(n + 1, sizeof(*new_off));
    fl_err_t err = FL_OK;
    if (!mine || !new_off) {
        err = FL_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        mine[i] = find_part(s, parts[i].topic, parts[i].partition);
        if (!mine[i] || !s->epoch[0]) {
            fl_log_error(COMPONENT, "flush of %s [%d], which this instance has not claimed",
                         parts[i].topic, (int)parts[i].partition);
            err = FL_ERR_FENCED;
            goto out;
        }
        if (mine[i]->gen < 0) {
            err = FL_ERR_LOST; /* claimed under a marker that is gone */
            goto out;
        }
    }
    size_t before = fl_redis_batch_done(s->batch);
    for (int last = 0; !last;) {
        fl_redis_args_t a;
        if ((err = fl_redis_batch_chunk(s->batch, s->marker, s->epoch, mine, next, n, &s->caps, &a,
                                        new_off, &last)))
            goto out;
        redisReply *r;
        double t0 = now_s();
        err = evalsha(s, s->flush_sha, a.argc, a.argv, a.argvlen, &r);
        s->script_seconds += now_s() - t0;
        if (err)
            goto out;
        if (r->type == REDIS_REPLY_ERROR) {
            err = reply_error(s, r, "flush");
        } else if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
                   (strcmp(r->str, "OK") == 0 || strcmp(r->str, "DUP") == 0)) {
            s->scripts++;
            s->dup_scripts += r->str[0] == 'D';
            for (size_t i = 0; i < n; i++)
                mine[i]->committed = new_off[i];
            fl_redis_batch_chunk_done(s->batch);
        } else {
            fl_log_error(COMPONENT, "flush: unexpected reply type %d", r->type);
            err = FL_ERR_CORRUPT;
        }
        freeReplyObject(r);
        if (err)
            goto out;
    }
    s->flushes++;
    s->records += fl_redis_batch_records(s->batch) - before;
    s->ops += fl_redis_batch_ops(s->batch);
    fl_redis_batch_clear(s->batch);
out:
    if (err == FL_ERR_FENCED || err == FL_ERR_LOST)
        fl_redis_batch_clear(s->batch); /* never to be written: rebuilt after a new claim */
    free(mine);
    free(new_off);
    return err;
}

static fl_err_t redis_check(void *state)
{
    rsink_t *s = state;
    fl_err_t err = ensure_connected(s);
    if (err)
        return err;
    const char *argv[] = {"HGET", s->marker, "epoch"};
    size_t lens[] = {4, strlen(s->marker), 5};
    redisReply *r;
    if ((err = command(s, 3, argv, lens, &r)))
        return err;
    if (r->type == REDIS_REPLY_ERROR)
        err = reply_error(s, r, "check");
    else if (s->epoch[0] && (r->type != REDIS_REPLY_STRING || strcmp(r->str, s->epoch) != 0))
        err = FL_ERR_LOST;
    freeReplyObject(r);
    return err;
}

/* The key families the sink writes (README "Redis sink"): a wipe deletes
 * these and nothing else of the database (the API's rate-limit keys,
 * other sinks' markers stay). */
static const char *const families[] = {
    "feed:{", "outbox:{",    "post:{",     "post-likes:{", "post-deleted:{",
    "user:{", "following:{", "affinity:{", "notif:{",      "notif-mark:{"};

static bool sink_key(const char *k, size_t len)
{
    if (len == 11 && !memcmp(k, "celebrities", 11))
        return true;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        size_t n = strlen(families[i]);
        if (len > n && !memcmp(k, families[i], n))
            return true;
    }
    return false;
}

/* Deletes the marker (every instance's claim goes with it: their next
 * flush is FL_ERR_LOST), then every key of the sink's families, by SCAN
 * and UNLINK a thousand at a time. */
static fl_err_t redis_wipe(void *state)
{
    rsink_t *s = state;
    fl_err_t err = ensure_connected(s);
    redisReply *r = NULL;
    const char **argv = NULL;
    size_t *lens = NULL;
    uint64_t deleted = 0;
    char cursor[32] = "0";

    if (err)
        return err;
    const char *del[] = {"DEL", s->marker};
    size_t del_lens[] = {3, strlen(s->marker)};
    if ((err = command(s, 2, del, del_lens, &r)))
        return err;
    freeReplyObject(r);
    r = NULL;
    s->epoch[0] = '\0';
    for (size_t i = 0; i < s->n_parts; i++)
        s->parts[i]->gen = -1;
    fl_redis_batch_clear(s->batch);
    do {
        const char *scan[] = {"SCAN", cursor, "COUNT", "1000"};
        size_t scan_lens[] = {4, strlen(cursor), 5, 4};
        if ((err = command(s, 4, scan, scan_lens, &r)))
            goto out;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            err = r->type == REDIS_REPLY_ERROR ? reply_error(s, r, "wipe") : FL_ERR_CORRUPT;
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        free(argv);
        free(lens);
        argv = malloc((keys->elements + 1) * sizeof(*argv));
        lens = malloc((keys->elements + 1) * sizeof(*lens));
        if (!argv || !lens) {
            err = FL_ERR_NOMEM;
            goto out;
        }
        size_t n = 1;
        argv[0] = "UNLINK";
        lens[0] = 6;
        for (size_t i = 0; i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            if (k->type == REDIS_REPLY_STRING && sink_key(k->str, k->len)) {
                argv[n] = k->str;
                lens[n++] = k->len;
            }
        }
        if (n > 1) {
            redisReply *u;
            if ((err = command(s, n, argv, lens, &u)))
                goto out;
            if (u->type == REDIS_REPLY_ERROR)
                err = reply_error(s, u, "wipe");
            freeReplyObject(u);
            if (err)
                goto out;
            deleted += n - 1;
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    fl_log_warn(COMPONENT, "wiped: the marker and %" PRIu64 " keys deleted", deleted);
out:
    if (r)
        freeReplyObject(r);
    free(argv);
    free(lens);
    return err;
}

static void redis_metrics(void *state, char *out, size_t out_size)
{
    rsink_t *s = state;
    size_t used = strlen(out);
    if (used >= out_size)
        return;
    snprintf(out + used, out_size - used,
             "# TYPE feedline_redis_sink_flushes_total counter\n"
             "feedline_redis_sink_flushes_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_scripts_total counter\n"
             "feedline_redis_sink_scripts_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_duplicate_scripts_total counter\n"
             "feedline_redis_sink_duplicate_scripts_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_records_total counter\n"
             "feedline_redis_sink_records_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_operations_total counter\n"
             "feedline_redis_sink_operations_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_script_seconds_total counter\n"
             "feedline_redis_sink_script_seconds_total %.6f\n"
             "# TYPE feedline_redis_sink_connects_total counter\n"
             "feedline_redis_sink_connects_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_script_loads_total counter\n"
             "feedline_redis_sink_script_loads_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_fenced_total counter\n"
             "feedline_redis_sink_fenced_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_lost_total counter\n"
             "feedline_redis_sink_lost_total %" PRIu64 "\n"
             "# TYPE feedline_redis_sink_errors_total counter\n"
             "feedline_redis_sink_errors_total %" PRIu64 "\n",
             s->flushes, s->scripts, s->dup_scripts, s->records, s->ops, s->script_seconds,
             s->connects, s->reloads, s->fenced, s->lost, s->errors);
}

const fl_sink_def_t fl_redis_sink = {
    .name = "redis",
    .open = redis_open,
    .claim = redis_claim,
    .add = redis_add,
    .flush = redis_flush,
    .discard = redis_discard,
    .wipe = redis_wipe,
    .check = redis_check,
    .metrics = redis_metrics,
    .close = redis_close,
};
