/*
 * fl_lag_cmd.c - `feedline lag`: every processor's and sink's position in
 * each of its input partitions against the partition's end (fl_lag.h), as
 * a table or one JSON object.
 *
 * Positions come from where each program itself resumes: a processor's
 * from its consumer group (its transactions commit the offsets there), a
 * sink's from its destination (fl_sink_store.h), never from Kafka's
 * committed offsets, which the sinks do not use. Each store is asked once
 * under --timeout; a store that does not answer leaves its programs'
 * numbers unknown ('?', null) and makes the exit status 1, while the
 * others are still measured and printed.
 */
#include "fl_lag_cmd.h"

#include "fl_lag.h"
#include "fl_sink_store.h"

#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

typedef struct prog {
    const char *name, *kind, *group, *store; /* store: where the positions are */
    fl_sink_kind_t dest;                     /* sinks only */
    fl_lag_part_t *parts;
    size_t n;
    bool have_pos, have_end;
    char err[512];
} prog_t;

typedef struct lag_run {
    const fl_topology_t *t;
    int timeout_ms;
    fl_lag_t *lag;
    char kafka_err[512]; /* "" while Kafka answers */
    redisContext *redis;
    PGconn *pg;
    char redis_err[512], pg_err[512];
    bool redis_tried, pg_tried;
} lag_run_t;

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "feedline lag: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nsee 'feedline lag --help'\n");
    return EXIT_USAGE;
}

/* libpq's messages span lines; one line reads better after a program's
 * name: every run of white space becomes one space. */
static void one_line(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        bool space = *p == '\n' || *p == '\t' || *p == ' ';
        if (!space)
            *w++ = *p;
        else if (w > s && w[-1] != ' ')
            *w++ = ' ';
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

static redisContext *redis_conn(lag_run_t *r)
{
    if (r->redis_tried)
        return r->redis;
    r->redis_tried = true;
    r->redis = fl_sink_store_redis_connect(&r->t->endpoints, r->timeout_ms, r->redis_err,
                                           sizeof(r->redis_err));
    return r->redis;
}

static PGconn *pg_conn(lag_run_t *r)
{
    char *ci;

    if (r->pg_tried)
        return r->pg;
    r->pg_tried = true;
    if (!(ci = fl_sink_store_pg_conninfo(&r->t->endpoints, r->timeout_ms))) {
        snprintf(r->pg_err, sizeof(r->pg_err), "out of memory");
        return NULL;
    }
    r->pg = PQconnectdb(ci);
    free(ci);
    if (PQstatus(r->pg) != CONNECTION_OK) {
        snprintf(r->pg_err, sizeof(r->pg_err), "PostgreSQL at %s:%s: %s",
                 PQhost(r->pg) ? PQhost(r->pg) : "?", PQport(r->pg) ? PQport(r->pg) : "?",
                 PQerrorMessage(r->pg));
        one_line(r->pg_err);
        PQfinish(r->pg);
        r->pg = NULL;
    }
    return r->pg;
}

/* Reads p's positions from where it keeps them. */
static void read_positions(lag_run_t *r, prog_t *p)
{
    fl_err_t e = FL_OK;
    char epoch[64];

    if (!strcmp(p->store, "kafka")) {
        if (r->kafka_err[0]) {
            snprintf(p->err, sizeof(p->err), "%s", r->kafka_err);
            return;
        }
        e = fl_lag_group_positions(r->lag, p->group, p->parts, p->n, r->timeout_ms, p->err,
                                   sizeof(p->err));
    } else if (p->dest == FL_SINK_REDIS) {
        if (!redis_conn(r)) {
            snprintf(p->err, sizeof(p->err), "%s", r->redis_err);
            return;
        }
        e = fl_sink_store_redis_offsets(r->redis, p->name, p->parts, p->n, epoch, sizeof(epoch),
                                        p->err, sizeof(p->err));
    } else {
        if (!pg_conn(r)) {
            snprintf(p->err, sizeof(p->err), "%s", r->pg_err);
            return;
        }
        e = fl_sink_store_pg_offsets(r->pg, p->name, p->parts, p->n, p->err, sizeof(p->err));
    }
    p->have_pos = e == FL_OK;
}

static void measure(lag_run_t *r, prog_t *p)
{
    read_positions(r, p);
    if (!p->have_pos)
        return;
    if (r->kafka_err[0]) {
        snprintf(p->err, sizeof(p->err), "%s", r->kafka_err);
        return;
    }
    p->have_end =
        fl_lag_measure(r->lag, p->parts, p->n, r->timeout_ms, p->err, sizeof(p->err)) == FL_OK;
}

static json_t *num_or_null(bool known, int64_t v)
{
    return known && v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static int print_json(prog_t *progs, size_t n)
{
    json_t *all = json_array();
    bool known = true;
    int64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        prog_t *p = &progs[i];
        json_t *parts = json_array();
        for (size_t k = 0; k < p->n; k++) {
            const fl_lag_part_t *q = &p->parts[k];
            json_array_append_new(parts, json_pack("{s:s,s:i,s:o,s:o,s:o}", "topic", q->topic,
                                                   "partition", (int)q->partition, "position",
                                                   num_or_null(p->have_pos, q->pos), "end",
                                                   num_or_null(p->have_end, q->end), "lag",
                                                   num_or_null(p->have_end, q->lag)));
        }
        int64_t total = fl_lag_total(p->parts, p->n);
        known = known && p->have_end;
        sum += p->have_end ? total : 0;
        json_array_append_new(all,
                              json_pack("{s:s,s:s,s:s,s:s,s:o,s:s?,s:o}", "program", p->name,
                                        "kind", p->kind, "group", p->group, "positions", p->store,
                                        "lag", num_or_null(p->have_end, total), "error",
                                        p->err[0] ? p->err : NULL, "partitions", parts));
    }
    json_t *doc = json_pack("{s:o,s:o}", "lag", num_or_null(known, sum), "programs", all);
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(doc);
    return rc;
}

static const char *cell(char *buf, size_t size, bool known, int64_t v, const char *none)
{
    if (!known)
        return "?";
    if (v < 0)
        return none;
    snprintf(buf, size, "%" PRId64, v);
    return buf;
}

static void print_table(prog_t *progs, size_t n)
{
    int wp = (int)strlen("program"), wt = (int)strlen("(total)");
    char b1[32], b2[32], b3[32];

    for (size_t i = 0; i < n; i++) {
        if ((int)strlen(progs[i].name) > wp)
            wp = (int)strlen(progs[i].name);
        for (size_t k = 0; k < progs[i].n; k++)
            if ((int)strlen(progs[i].parts[k].topic) > wt)
                wt = (int)strlen(progs[i].parts[k].topic);
    }
    printf("%-*s  %-*s  %9s  %12s  %12s  %10s\n", wp, "program", wt, "topic", "partition",
           "position", "end", "lag");
    for (size_t i = 0; i < n; i++) {
        const prog_t *p = &progs[i];
        for (size_t k = 0; k < p->n; k++) {
            const fl_lag_part_t *q = &p->parts[k];
            /* a position past the end was written from another history of
             * the topic (recreated, truncated): its program wipes and
             * rebuilds at its next claim */
            bool past = p->have_pos && p->have_end && q->pos >= 0 && q->end >= 0 && q->pos > q->end;
            printf("%-*s  %-*s  %9d  %12s  %12s  %10s\n", wp, p->name, wt, q->topic,
                   (int)q->partition, cell(b1, sizeof(b1), p->have_pos, q->pos, "-"),
                   cell(b2, sizeof(b2), p->have_end, q->end, "-"),
                   past ? "past end" : cell(b3, sizeof(b3), p->have_end, q->lag, "-"));
        }
        printf("%-*s  %-*s  %9s  %12s  %12s  %10s\n", wp, p->name, wt, "(total)", "", "", "",
               cell(b1, sizeof(b1), p->have_end, fl_lag_total(p->parts, p->n), "-"));
    }
}

/* Whether names (argv[first..argc)) select program `name`: all when none. */
static bool selected(const char *name, int argc, char **argv, int first)
{
    if (first >= argc)
        return true;
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], name))
            return true;
    return false;
}

int fl_lag_cmd(const fl_topology_t *t, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    lag_run_t r = {.t = t, .timeout_ms = 10000};
    bool json = false;
    int c, ret = 1;
    size_t n = 0, cap = t->n_processors + t->n_sinks;
    prog_t *progs = calloc(cap ? cap : 1, sizeof(*progs));
    char *end;

    if (!progs)
        return 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j') {
            json = true;
        } else if (c == 't') {
            double s = strtod(optarg, &end);
            if (!*optarg || *end || !(s > 0 && s <= 3600)) {
                free(progs);
                return usage("'%s' is not a timeout in seconds (0 < s <= 3600)", optarg);
            }
            r.timeout_ms = (int)(s * 1000) > 0 ? (int)(s * 1000) : 1;
        } else {
            free(progs);
            return usage("%s", "unknown option");
        }
    }
    for (int i = optind; i < argc; i++) {
        bool known = false;
        for (size_t k = 0; k < t->n_processors; k++)
            known = known || !strcmp(argv[i], t->processors[k].name);
        for (size_t k = 0; k < t->n_sinks; k++)
            known = known || !strcmp(argv[i], t->sinks[k].name);
        if (!known) {
            free(progs);
            return usage("'%s' is no processor or sink of the topology", argv[i]);
        }
    }
    for (size_t k = 0; k < t->n_processors; k++) {
        const fl_processor_t *pr = &t->processors[k];
        if (!selected(pr->name, argc, argv, optind))
            continue;
        progs[n] =
            (prog_t){.name = pr->name, .kind = "processor", .group = pr->group, .store = "kafka"};
        progs[n].parts = fl_lag_parts(t, pr->inputs, pr->n_inputs, &progs[n].n);
        if (!progs[n++].parts)
            goto out;
    }
    for (size_t k = 0; k < t->n_sinks; k++) {
        const fl_sink_cfg_t *s = &t->sinks[k];
        if (!selected(s->name, argc, argv, optind))
            continue;
        progs[n] = (prog_t){.name = s->name,
                            .kind = "sink",
                            .group = s->group,
                            .dest = s->destination,
                            .store = s->destination == FL_SINK_REDIS ? "redis" : "postgres"};
        progs[n].parts = fl_lag_parts(t, s->inputs, s->n_inputs, &progs[n].n);
        if (!progs[n++].parts)
            goto out;
    }
    r.lag = fl_lag_new(t->endpoints.kafka, true, r.kafka_err, sizeof(r.kafka_err));
    if (r.lag && !fl_lag_ready(r.lag, r.timeout_ms, r.kafka_err, sizeof(r.kafka_err)))
        r.kafka_err[0] = '\0'; /* librdkafka may have left notes in it */
    ret = 0;
    for (size_t i = 0; i < n; i++) {
        measure(&r, &progs[i]);
        if (progs[i].err[0]) {
            fprintf(stderr, "feedline lag: %s: %s\n", progs[i].name, progs[i].err);
            ret = 1;
        }
    }
    if (json)
        print_json(progs, n);
    else
        print_table(progs, n);
    fflush(stdout);
out:
    for (size_t i = 0; i < n; i++)
        free(progs[i].parts);
    free(progs);
    fl_lag_free(r.lag);
    redisFree(r.redis);
    PQfinish(r.pg);
    return ret;
}
