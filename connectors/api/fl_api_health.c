/*
 * fl_api_health.c - the read API's health thread: which store serves.
 *
 * Every HEALTH_MS it pings Redis and PostgreSQL; every LAG_MS it also
 * reads how far each sink is behind its inputs, as `feedline lag` does
 * (fl_lag.h): the offsets a sink stored in its destination
 * (fl_sink_store.h) against the inputs' last stable offsets, transaction
 * markers alone counting as no lag, so a caught-up sink is at 0; between
 * those, every HEALTH_MS, it reads the Redis sink's marker. Redis serves
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
#include "fl_api.h"
#include "fl_api_int.h"
#include "fl_lag.h"
#include "fl_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEALTH_MS       250
#define PING_TIMEOUT_MS 250
#define LAG_MS          1000
#define LAG_TIMEOUT_MS  1000

/* The input partitions of one sink, with what was measured last. */
typedef struct sink_parts {
    const char *sink; /* NULL: the topology has no such sink */
    fl_lag_part_t *parts;
    size_t n;
} sink_parts_t;

const fl_sink_cfg_t *fl__api_sink(const fl_topology_t *t, fl_sink_kind_t kind)
{
    for (size_t i = 0; i < t->n_sinks; i++)
        if (t->sinks[i].destination == kind)
            return &t->sinks[i];
    return NULL;
}

static bool parts_init(sink_parts_t *p, const fl_topology_t *t, fl_sink_kind_t kind)
{
    const fl_sink_cfg_t *s = fl__api_sink(t, kind);

    memset(p, 0, sizeof(*p));
    if (!s)
        return true;
    p->sink = s->name;
    p->parts = fl_lag_parts(t, s->inputs, s->n_inputs, &p->n);
    return p->parts != NULL;
}

/* The sink's lag once its positions were read (got), else -1. */
static int64_t lag_of(fl_lag_t *lag, sink_parts_t *p, bool got)
{
    char err[256];

    if (!got || !lag || fl_lag_measure(lag, p->parts, p->n, LAG_TIMEOUT_MS, err, sizeof(err)))
        return -1;
    return fl_lag_total(p->parts, p->n);
}

void fl_api_reload(fl_api_t *api, const fl_topology_t *t)
{
    atomic_store(&api->health_topo, t);
}

void *fl__api_health_main(void *arg)
{
    fl_api_t *api = arg;
    fl_src_t *redis = fl_src_redis_new(api->topo, NULL), *pg = fl_src_pg_new(api->topo);
    if (redis)
        fl_src_redis_set_timeout(redis, PING_TIMEOUT_MS);
    char err[256];
    fl_lag_t *lag = fl_lag_new(api->topo->endpoints.kafka, false, err, sizeof(err));
    sink_parts_t rp, pp;
    int state = -1; /* last redis state logged */
    int missed = 0; /* Redis pings missed in a row */
    bool was_pg = true;
    char epoch[FL_MARKER_EPOCH_MAX] = "", caught_up[FL_MARKER_EPOCH_MAX] = "";
    int64_t last_lag_ms = 0, redis_lag = -1, pg_lag = -1, now = 0;

    if (!lag)
        fl_log_warn("api", "no Kafka client (%s): sink lag unknown", err);
    const fl_topology_t *ht = atomic_load(&api->health_topo);
    if (!parts_init(&rp, ht, FL_SINK_REDIS) || !parts_init(&pp, ht, FL_SINK_POSTGRES))
        fl_log_error("api", "out of memory in the health thread");
    while (redis && pg && !atomic_load(&api->stop)) {
        if (atomic_load(&api->health_topo) != ht) {
            ht = atomic_load(&api->health_topo);
            free(rp.parts);
            free(pp.parts);
            if (!parts_init(&rp, ht, FL_SINK_REDIS) || !parts_init(&pp, ht, FL_SINK_POSTGRES))
                fl_log_error("api", "out of memory in the health thread");
            fl_log_info("api", "health checks now measure the sinks of %s", ht->path);
            last_lag_ms = 0; /* measured at once */
        }
        /* One missed ping (PING_TIMEOUT_MS) is a Redis slowed by an
         * overloaded machine; two in a row are a Redis gone. */
        missed = redis->ops->ping(redis) == FL_OK ? 0 : missed + 1;
        bool r = missed == 0 || (missed < 2 && state == 2), p = pg->ops->ping(pg) == FL_OK;
        if (!r)
            epoch[0] = '\0';
        /* a Redis that just answered again is read at once: it may be empty */
        if (now - last_lag_ms >= LAG_MS || !last_lag_ms || (r && state == 0)) {
            int64_t l;
            last_lag_ms = now ? now : 1;
            l = lag_of(lag, &rp,
                       r && rp.n &&
                           fl_src_redis_offsets(redis, rp.sink, rp.parts, rp.n, epoch) == FL_OK);
            redis_lag = l >= 0 ? l : redis_lag;
            l = lag_of(lag, &pp,
                       p && pp.n && fl_src_pg_offsets(pg, pp.sink, pp.parts, pp.n) == FL_OK);
            pg_lag = l >= 0 ? l : pg_lag;
        } else if (r && rp.n) {
            /* Between measurements, the marker alone (one HMGET): a Redis
             * flushed or restarted stops serving within HEALTH_MS, not
             * LAG_MS, of losing its data. */
            char now_epoch[FL_MARKER_EPOCH_MAX];
            if (fl_src_redis_offsets(redis, rp.sink, rp.parts, rp.n, now_epoch) == FL_OK)
                snprintf(epoch, sizeof(epoch), "%s", now_epoch);
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
    free(rp.parts);
    free(pp.parts);
    fl_lag_free(lag);
    fl_src_free(redis);
    fl_src_free(pg);
    return NULL;
}
