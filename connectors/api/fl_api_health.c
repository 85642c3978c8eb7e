/*
 * fl_api_health.c - the read API's health thread: which store serves.
 *
 * Every HEALTH_MS it pings Redis and PostgreSQL; every LAG_MS it also
 * reads how far each sink is behind its inputs: the offsets a sink
 * applied (the Redis marker's off:TOPIC/P fields, the sink_offsets rows)
 * against the inputs' ends in Kafka (high watermarks; a transactional
 * topic's end counts its last commit marker, one record). Redis serves
 * only while it answers and holds the sink's marker, and once the sink has
 * caught up under the marker's epoch: a Redis that restarted empty or was
 * flushed gets a new epoch from its sink, which rebuilds it from the
 * beginning, and its feeds are partial until the sink is at most
 * FL_API_REDIS_MAX_LAG records behind; PostgreSQL serves meanwhile and
 * Redis takes over again by itself. Under the epoch it has caught up in, a
 * sink falling behind under load does not send reads away from Redis (it
 * is late, not partial). Kafka being unreachable leaves the last lag in
 * place.
 */
#include "fl_api_int.h"
#include "fl_kafka.h"
#include "fl_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEALTH_MS 250
#define LAG_MS    1000

/* The (topic, partition) inputs of one sink, with their marker fields. */
typedef struct parts {
    const char *sink;
    size_t n;
    const char **topics;
    int32_t *part;
    char **fields; /* "off:TOPIC/P" */
    int64_t *off, *end;
} parts_t;

static void parts_free(parts_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->fields[i]);
    free(p->topics);
    free(p->part);
    free(p->fields);
    free(p->off);
    free(p->end);
    memset(p, 0, sizeof(*p));
}

static bool parts_init(parts_t *p, const fl_topology_t *t, fl_sink_kind_t kind)
{
    const fl_sink_cfg_t *s = NULL;
    size_t n = 0;

    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < t->n_sinks && !s; i++)
        if (t->sinks[i].destination == kind)
            s = &t->sinks[i];
    if (!s)
        return true;
    for (size_t i = 0; i < s->n_inputs; i++)
        n += (size_t)fl_topology_topic(t, s->inputs[i])->partitions;
    p->sink = s->name;
    p->topics = calloc(n + 1, sizeof(*p->topics));
    p->part = calloc(n + 1, sizeof(*p->part));
    p->fields = calloc(n + 1, sizeof(*p->fields));
    p->off = calloc(n + 1, sizeof(*p->off));
    p->end = calloc(n + 1, sizeof(*p->end));
    if (!p->topics || !p->part || !p->fields || !p->off || !p->end)
        return false;
    for (size_t i = 0; i < s->n_inputs; i++)
        for (int32_t k = 0; k < fl_topology_topic(t, s->inputs[i])->partitions; k++) {
            p->topics[p->n] = s->inputs[i];
            p->part[p->n] = k;
            if (asprintf(&p->fields[p->n], "off:%s/%d", s->inputs[i], k) < 0)
                return false;
            p->n++;
        }
    return true;
}

/* Sums end - applied; false when Kafka did not answer. */
static bool lag_of(rd_kafka_t *rk, parts_t *p, int64_t *lag)
{
    int64_t sum = 0;

    for (size_t i = 0; i < p->n; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, p->topics[i], p->part[i], &lo, &hi, 500))
            return false;
        sum += hi > p->off[i] ? hi - p->off[i] : 0;
    }
    *lag = sum;
    return true;
}

void *fl__api_health_main(void *arg)
{
    fl_api_t *api = arg;
    fl_src_t *redis = fl_src_redis_new(api->topo, NULL), *pg = fl_src_pg_new(api->topo);
    char err[256];
    rd_kafka_t *rk = fl_kafka_admin_new(api->topo->endpoints.kafka, err, sizeof(err));
    parts_t rp, pp;
    int state = -1; /* last redis state logged */
    bool was_pg = true;
    char epoch[FL_MARKER_EPOCH_MAX] = "", caught_up[FL_MARKER_EPOCH_MAX] = "";
    int64_t last_lag_ms = 0, redis_lag = -1, pg_lag = -1, now = 0;

    if (!rk)
        fl_log_warn("api", "no Kafka client (%s): sink lag unknown", err);
    if (!parts_init(&rp, api->topo, FL_SINK_REDIS) || !parts_init(&pp, api->topo, FL_SINK_POSTGRES))
        fl_log_error("api", "out of memory in the health thread");
    while (redis && pg && !atomic_load(&api->stop)) {
        bool r = redis->ops->ping(redis) == FL_OK, p = pg->ops->ping(pg) == FL_OK;
        if (!r)
            epoch[0] = '\0';
        /* a Redis that just answered again is read at once: it may be empty */
        if (now - last_lag_ms >= LAG_MS || !last_lag_ms || (r && state == 0)) {
            int64_t l;
            last_lag_ms = now ? now : 1;
            if (r && rp.n &&
                fl_src_redis_offsets(redis, (const char *const *)rp.fields, rp.n, rp.off, epoch) ==
                    FL_OK &&
                rk && lag_of(rk, &rp, &l))
                redis_lag = l;
            if (p && pp.n &&
                fl_src_pg_offsets(pg, pp.sink, pp.topics, pp.part, pp.n, pp.off) == FL_OK && rk &&
                lag_of(rk, &pp, &l))
                pg_lag = l;
        }
        /* 0 down, 1 rebuilding, 2 up */
        if (epoch[0] && redis_lag >= 0 && redis_lag <= FL_API_REDIS_MAX_LAG)
            snprintf(caught_up, sizeof(caught_up), "%s", epoch);
        int st = !r ? 0 : (!epoch[0] || strcmp(epoch, caught_up)) ? 1 : 2;
        if (st != state)
            fl_log(st == 2 ? FL_LOG_INFO : FL_LOG_WARN, "api", "redis is %s",
                   st == 2   ? "up: serving from redis"
                   : st == 1 ? "answering but its sink is rebuilding it: serving from postgresql"
                             : "down: serving from postgresql");
        if (p != was_pg)
            fl_log(p ? FL_LOG_INFO : FL_LOG_WARN, "api", "postgresql is %s", p ? "up" : "down");
        atomic_store(&api->redis_state, st);
        atomic_store(&api->redis_up, st == 2);
        atomic_store(&api->pg_up, p);
        atomic_store(&api->redis_lag, redis_lag);
        atomic_store(&api->pg_lag, pg_lag);
        state = st;
        was_pg = p;
        for (int i = 0; i < HEALTH_MS / 10 && !atomic_load(&api->stop); i++)
            usleep(10000);
        now += HEALTH_MS;
    }
    parts_free(&rp);
    parts_free(&pp);
    if (rk)
        rd_kafka_destroy(rk);
    fl_src_free(redis);
    fl_src_free(pg);
    return NULL;
}
