/*
 * fl_api_metrics.c - the read API's Prometheus metrics: requests by route
 * and status code, a latency histogram per route, which source served each
 * response, rate-limit rejections, authentication failures, ranking
 * fallbacks, open streams, and each sink's lag as the health thread last
 * measured it. Every worker thread adds with relaxed atomic
 * increments (no lock on the request path); /metrics renders a snapshot.
 */
#include "fl_api_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned codes[FL_API_N_CODES] = {FL_API_CODES};

/* upper bounds in microseconds */
static const int64_t bucket_us[FL_API_N_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

static const char *const route_names[R__COUNT] = {
    [R_FEED] = "feed",
    [R_POST] = "post",
    [R_USER] = "user",
    [R_USER_POSTS] = "user_posts",
    [R_FOLLOWERS] = "followers",
    [R_FOLLOWING] = "following",
    [R_NOTIFICATIONS] = "notifications",
    [R_STREAM] = "stream",
    [R_HEALTH] = "healthz",
    [R_READY] = "readyz",
    [R_METRICS] = "metrics",
    [R_OPENAPI] = "openapi",
    [R_WEB] = "web",
    [R_DEV_LOGIN] = "dev_login",
    [R_M_HOME] = "mastodon_home",
    [R_M_STATUS] = "mastodon_status",
    [R_M_ACCOUNT] = "mastodon_account",
    [R_M_ACCOUNT_STATUSES] = "mastodon_account_statuses",
    [R_M_VERIFY] = "mastodon_verify_credentials",
    [R_M_NOTIFICATIONS] = "mastodon_notifications",
    [R_M_INSTANCE] = "mastodon_instance",
    [R_M_INSTANCE_V2] = "mastodon_instance_v2",
    [R_M_STREAM_WS] = "mastodon_streaming_ws",
    [R_M_STREAM_SSE] = "mastodon_streaming_sse",
    [R_M_STREAM_HEALTH] = "mastodon_streaming_health",
    [R_OTHER] = "other",
};

void fl__api_metrics_observe(fl_api_metrics_t *m, fl_route_t r, unsigned code, int64_t us)
{
    size_t c = 0, b = 0;

    while (c < FL_API_N_CODES - 1 && codes[c] != code)
        c++;
    if (codes[c] != code) { /* an unlisted code is a server error */
        fl__api_metrics_observe(m, r, 500, us);
        return;
    }
    while (b < FL_API_N_BUCKETS && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&m->requests[r][c], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat[r][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_sum_us[r], (uint_fast64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static uint64_t get(const atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

char *fl__api_metrics_render(const fl_api_metrics_t *m, const fl_api_cache_t *cache,
                             const fl_api_health_view_t *h)
{
    buf_t b = {malloc(16384), 0, 16384, false};
    uint64_t hits = 0, misses = 0;

    if (!b.p)
        return NULL;
    if (cache)
        fl_api_cache_stats(cache, &hits, &misses);
    put(&b,
        "# HELP feedline_api_cache_lookups_total Lookups of hydrated posts and authors in the "
        "API's cache.\n# TYPE feedline_api_cache_lookups_total counter\n"
        "feedline_api_cache_lookups_total{result=\"hit\"} %" PRIu64 "\n"
        "feedline_api_cache_lookups_total{result=\"miss\"} %" PRIu64 "\n",
        hits, misses);
    put(&b, "# HELP feedline_api_requests_total Requests by route and status code.\n"
            "# TYPE feedline_api_requests_total counter\n");
    for (int r = 0; r < R__COUNT; r++)
        for (int c = 0; c < FL_API_N_CODES; c++)
            if (get(&m->requests[r][c]))
                put(&b, "feedline_api_requests_total{route=\"%s\",code=\"%u\"} %" PRIu64 "\n",
                    route_names[r], codes[c], get(&m->requests[r][c]));
    put(&b, "# HELP feedline_api_request_seconds Time from a request's headers to its response "
            "being queued.\n# TYPE feedline_api_request_seconds histogram\n");
    for (int r = 0; r < R__COUNT; r++) {
        uint64_t cum = 0;
        for (int k = 0; k <= FL_API_N_BUCKETS; k++)
            cum += get(&m->lat[r][k]);
        if (!cum)
            continue;
        cum = 0;
        for (int k = 0; k < FL_API_N_BUCKETS; k++) {
            cum += get(&m->lat[r][k]);
            put(&b, "feedline_api_request_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                route_names[r], (double)bucket_us[k] / 1e6, cum);
        }
        cum += get(&m->lat[r][FL_API_N_BUCKETS]);
        put(&b, "feedline_api_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
            route_names[r], cum);
        put(&b, "feedline_api_request_seconds_sum{route=\"%s\"} %.6f\n", route_names[r],
            (double)get(&m->lat_sum_us[r]) / 1e6);
        put(&b, "feedline_api_request_seconds_count{route=\"%s\"} %" PRIu64 "\n", route_names[r],
            cum);
    }
    put(&b,
        "# HELP feedline_api_responses_by_source_total Data responses by the store that served "
        "them.\n# TYPE feedline_api_responses_by_source_total counter\n"
        "feedline_api_responses_by_source_total{source=\"redis\"} %" PRIu64 "\n"
        "feedline_api_responses_by_source_total{source=\"postgres\"} %" PRIu64 "\n",
        get(&m->source[0]), get(&m->source[1]));
    put(&b,
        "# HELP feedline_api_rate_limited_total Requests refused with 429.\n"
        "# TYPE feedline_api_rate_limited_total counter\n"
        "feedline_api_rate_limited_total %" PRIu64 "\n"
        "# HELP feedline_api_rate_unchecked_total Requests let through unlimited while Redis was "
        "down.\n# TYPE feedline_api_rate_unchecked_total counter\n"
        "feedline_api_rate_unchecked_total %" PRIu64 "\n"
        "# HELP feedline_api_auth_failures_total Requests refused with 401.\n"
        "# TYPE feedline_api_auth_failures_total counter\n"
        "feedline_api_auth_failures_total %" PRIu64 "\n"
        "# HELP feedline_api_rank_fallbacks_total Ranked requests served in chronological order.\n"
        "# TYPE feedline_api_rank_fallbacks_total counter\n"
        "feedline_api_rank_fallbacks_total %" PRIu64 "\n"
        "# HELP feedline_api_redis_failovers_total Requests that Redis failed and PostgreSQL "
        "served.\n# TYPE feedline_api_redis_failovers_total counter\n"
        "feedline_api_redis_failovers_total %" PRIu64 "\n"
        "# HELP feedline_api_open_streams Open live-update streams.\n"
        "# TYPE feedline_api_open_streams gauge\n"
        "feedline_api_open_streams %" PRIdFAST64 "\n"
        "# HELP feedline_api_up Whether each store answers the health checks.\n"
        "# TYPE feedline_api_up gauge\n"
        "feedline_api_up{store=\"redis\"} %d\nfeedline_api_up{store=\"postgres\"} %d\n",
        get(&m->rate_limited), get(&m->rate_unchecked), get(&m->auth_failed),
        get(&m->rank_fallbacks), get(&m->redis_failovers),
        atomic_load_explicit(&m->open_streams, memory_order_relaxed), h->redis_up, h->pg_up);
    put(&b, "# HELP feedline_api_sink_lag Records each sink is behind its inputs, from the offsets "
            "in its destination (as `feedline lag` counts them).\n"
            "# TYPE feedline_api_sink_lag gauge\n");
    for (int i = 0; i < 2; i++)
        if (h->sink[i] && h->lag[i] >= 0)
            put(&b, "feedline_api_sink_lag{sink=\"%s\"} %" PRId64 "\n", h->sink[i], h->lag[i]);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
