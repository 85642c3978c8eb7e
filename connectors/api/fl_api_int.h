/*
 * fl_api_int.h - the read API server's parts, shared by its files:
 * fl_api_server.c (libmicrohttpd, threads, auth, limits, health),
 * fl_api_routes.c (the /v1 endpoints and their JSON), fl_api_mastodon.c
 * (the Mastodon-compatible /api/v1 endpoints), fl_api_metrics.c (the
 * Prometheus counters and histograms) and fl_api_web.c (the live page's
 * files and the development login).
 *
 * Threads: libmicrohttpd runs a pool of worker threads, each with its own
 * epoll loop and connections; a request runs start to finish on one of
 * them, reading through that thread's own sources (fl_api_thr_t, created on
 * the thread's first request). The health thread pings both servers and
 * flips redis_up/pg_up, which workers read to pick a source. Metrics are
 * atomic counters, written by every worker, read by /metrics.
 */
#ifndef FL_API_INT_H
#define FL_API_INT_H

#include "fl_api_cache.h"
#include "fl_api_model.h"
#include "fl_api_src.h"
#include "fl_jwt.h"
#include "fl_masto_model.h"
#include "fl_topology.h"

#include <microhttpd.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

/* Routes, for metrics (one label each). */
typedef enum fl_route {
    R_FEED,
    R_POST,
    R_USER,
    R_USER_POSTS,
    R_FOLLOWERS,
    R_FOLLOWING,
    R_NOTIFICATIONS,
    R_STREAM,
    R_HEALTH,
    R_READY,
    R_METRICS,
    R_OPENAPI,
    R_WEB,       /* the live page's files: /, /app.css, /app.js */
    R_DEV_LOGIN, /* POST /dev/login */
    /* the Mastodon-compatible surface (fl_api_mastodon.c) */
    R_M_HOME,
    R_M_STATUS,
    R_M_ACCOUNT,
    R_M_ACCOUNT_STATUSES,
    R_M_VERIFY,
    R_M_NOTIFICATIONS,
    R_M_INSTANCE,
    R_M_INSTANCE_V2,
    R_M_STREAM_WS,     /* /api/v1/streaming?stream=user (WebSocket) */
    R_M_STREAM_SSE,    /* /api/v1/streaming/user (server-sent events) */
    R_M_STREAM_HEALTH, /* /api/v1/streaming/health */
    R_OTHER,
    R__COUNT
} fl_route_t;

/* Status codes the API answers with (metrics label order). */
#define FL_API_CODES 200, 304, 400, 401, 403, 404, 405, 413, 414, 429, 431, 500, 503
enum { FL_API_N_CODES = 13 };
enum { FL_API_N_BUCKETS = 14 };

typedef struct fl_api_metrics {
    atomic_uint_fast64_t requests[R__COUNT][FL_API_N_CODES];
    /* latency histogram per route: counts per bucket (not cumulative),
     * the sum in microseconds */
    atomic_uint_fast64_t lat[R__COUNT][FL_API_N_BUCKETS + 1];
    atomic_uint_fast64_t lat_sum_us[R__COUNT];
    atomic_uint_fast64_t source[2]; /* responses served from redis, postgres */
    atomic_uint_fast64_t rate_limited;
    atomic_uint_fast64_t rate_unchecked; /* Redis down: let through */
    atomic_uint_fast64_t auth_failed;
    atomic_uint_fast64_t rank_fallbacks;
    atomic_uint_fast64_t redis_failovers; /* a request that fell over to postgres */
    atomic_int_fast64_t open_streams;
} fl_api_metrics_t;

void fl__api_metrics_observe(fl_api_metrics_t *m, fl_route_t r, unsigned code, int64_t us);
/* What the health thread knows of the stores and sinks, for /metrics:
 * lag[i] of the sink named sink[i] (NULL: no such sink), -1 unknown. */
typedef struct fl_api_health_view {
    bool redis_up, pg_up;
    const char *sink[2];
    int64_t lag[2];
} fl_api_health_view_t;

/* Prometheus text; caller frees. */
char *fl__api_metrics_render(const fl_api_metrics_t *m, const fl_api_cache_t *cache,
                             const fl_api_health_view_t *h);

/* The topology's (first) sink writing to kind, or NULL. */
const fl_sink_cfg_t *fl__api_sink(const fl_topology_t *t, fl_sink_kind_t kind);

/* One worker thread's state. */
typedef struct fl_api_thr {
    fl_src_t *redis;
    fl_src_t *pg;
} fl_api_thr_t;

typedef struct fl_api {
    const fl_topology_t *topo;
    const fl_api_cfg_t *cfg;
    fl_jwt_t *jwt;
    struct MHD_Daemon *mhd;
    pthread_key_t thr_key;
    pthread_t health;
    atomic_bool stop;
    /* the topology the health thread measures sink lag with: topo, or the
     * one fl_api_reload() gave (a replay's new generation reads other
     * topics); borrowed, outlives the server */
    _Atomic(const fl_topology_t *) health_topo;
    atomic_bool redis_up;   /* Redis serves (answers, marker there, sink caught up) */
    atomic_int redis_state; /* 0 down, 1 rebuilding, 2 up */
    atomic_bool pg_up;
    atomic_int_fast64_t redis_lag; /* records the Redis sink is behind, -1 unknown */
    atomic_int_fast64_t pg_lag;
    fl_api_metrics_t metrics;
    struct fl_stream_hub *hub; /* live updates */
    fl_api_cache_t *cache;     /* hydrated posts and authors, or NULL */
    char *openapi;             /* the document served at /openapi.json, or NULL */
    size_t openapi_len;
    struct fl_api_web *web; /* the live page's files */
} fl_api_t;

/* A response under construction. */
typedef struct fl_api_resp {
    unsigned code;
    char *body; /* malloc'd, unless borrowed */
    size_t len;
    const char *content_type;
    const char *source;  /* "redis" | "postgres" | NULL */
    const char *ranking; /* X-Feedline-Ranking, or NULL */
    char ratelimit[96];  /* RateLimit header value, or "" */
    char ratepolicy[48]; /* RateLimit-Policy, or "" */
    int64_t retry_after; /* seconds, 429 only */
    char *link;          /* Link header (malloc'd, freed when sent), or NULL */
    bool masto;          /* errors in Mastodon's shape {"error":"..."} */

    bool borrowed;             /* body is the server's until it stops (a file, the document) */
    const char *cache_control; /* NULL: no-store */
    const char *etag;          /* ETag, or NULL */
} fl_api_resp_t;

/* Sets an error response {"error":{"code","message"}}, or {"error":
 * message} when r->masto. */
void fl__api_error(fl_api_resp_t *r, unsigned code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Takes ownership of j (decref'd); sets a 200 JSON body. */
void fl__api_json(fl_api_resp_t *r, json_t *j);

/* A parsed request the routes see. */
typedef struct fl_api_req {
    fl_api_t *api;
    fl_api_thr_t *thr;
    struct MHD_Connection *conn;
    const char *path;
    fl_route_t route;
    int64_t viewer;          /* the token's subject */
    int64_t path_id;         /* /v1/posts/{id}, /v1/users/{id}... */
    fl_query_t query;        /* validated */
    fl_masto_query_t mquery; /* the Mastodon routes' parameters instead */
    int redis_tries;         /* times Redis failed in this request */
    bool pg_tried;           /* PostgreSQL failed in this request */
} fl_api_req_t;

/* A Redis sink further behind than this (records) is rebuilding Redis:
 * PostgreSQL serves meanwhile. */
#define FL_API_REDIS_MAX_LAG 10000
/* tries of Redis in one request when PostgreSQL is down too (fl_api_routes.c) */
#define FL_API_REDIS_TRIES 3

/* A whole file, malloc'd (caller frees), its size in *len; NULL when it
 * cannot be read or is empty. */
char *fl__api_slurp(const char *path, size_t *len);

/* ---- the live page (fl_api_web.c) ---- */

enum { FL_API_WEB_FILES = 3 };
typedef struct fl_api_web fl_api_web_t;

/* Reads the page's files from dir (NULL: none; a missing one is logged
 * and answers 404); NULL only when out of memory. */
fl_api_web_t *fl__api_web_new(const char *dir);
void fl__api_web_free(fl_api_web_t *w);
/* The file a path names (0..FL_API_WEB_FILES-1), or -1. */
int fl__api_web_file(const char *path);
/* File i into r (borrowed), a 304 when If-None-Match holds its ETag, a 404
 * when it was not read. */
void fl__api_web_serve(const fl_api_web_t *w, int i, struct MHD_Connection *conn, fl_api_resp_t *r);
/* A development token for user (malloc'd), or NULL with errstr. */
char *fl__api_dev_token(const fl_api_t *api, int64_t user, char *errstr, size_t errstr_size);
/* POST /dev/login (body: len bytes, may be NULL): a token, or a 404 while
 * api.dev_login is off, a 405, a 400. */
void fl__api_dev_login(fl_api_t *api, struct MHD_Connection *conn, const char *method,
                       const char *body, size_t len, fl_api_resp_t *r);

/* The health thread (fl_api_health.c); arg is the fl_api_t. */
void *fl__api_health_main(void *arg);

/* Matches path to a route: sets route, path_id and the parameters it takes
 * (FL_Q_*) and cursor kind; false when nothing matches (404). */
bool fl__api_match(const char *path, fl_route_t *route, int64_t *path_id, unsigned *params,
                   fl_cursor_kind_t *kind, bool *auth);

/* An id as the API writes it: a JSON string of its decimal digits. */
json_t *fl__api_id_json(int64_t id);

/* The API's post JSON (README "Read API"); a new reference. */
json_t *fl__api_post_json(const fl_post_t *p);

/* ---- live updates (fl_api_stream.c) ---- */

typedef struct fl_stream_hub fl_stream_hub_t;

fl_stream_hub_t *fl__stream_hub_new(fl_api_t *api, char *errstr, size_t errstr_size);
void fl__stream_hub_free(fl_stream_hub_t *h);

/* Hands an upgraded socket to the hub (from a worker thread); the hub
 * closes it through urh. since: catch up from the feed first, or NULL. */
bool fl__stream_add(fl_stream_hub_t *h, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh,
                    const char *extra, size_t extra_n, int64_t viewer, const fl_pos_t *since,
                    bool mastodon, const char *base);

/* A Mastodon SSE stream of viewer's feed: the response to queue (200), or
 * NULL when out of memory. base: "http://HOST" of the statuses' URLs. */
struct MHD_Response *fl__stream_add_sse(fl_stream_hub_t *h, struct MHD_Connection *conn,
                                        int64_t viewer, const char *base);

/* Mastodon's Status for a hydrated post (fl_api_mastodon.c); a new
 * reference, NULL when out of memory. */
json_t *fl__api_masto_status(const char *base, const fl_post_t *p);

/* "http://HOST" for a Mastodon response: the request's Host when it is
 * well-formed, else endpoints.api. */
#define FL_MASTO_BASE_MAX 300
void fl__api_masto_base(const fl_api_t *api, struct MHD_Connection *conn,
                        char out[FL_MASTO_BASE_MAX]);

/* Serves an authenticated /v1 request (and hands /api/v1 ones to
 * fl__api_masto_serve). */
void fl__api_serve(fl_api_req_t *q, fl_api_resp_t *r);

/* Reads a decimal id from *p up to the next '/' and moves *p past it. */
bool fl__api_take_id(const char **p, int64_t *id);

/* Picking a source (fl_api_routes.c), for every route: the source to read
 * first; after err from src the one to try next (Redis once more on a new
 * connection, then PostgreSQL), or NULL; recording which one served. */
fl_src_t *fl__api_first_source(fl_api_req_t *q);
fl_src_t *fl__api_next_source(fl_api_req_t *q, fl_src_t *src, fl_err_t err);
void fl__api_served(fl_api_req_t *q, fl_api_resp_t *r, fl_src_t *src);
/* A 503 (a 500 when out of memory) after every source failed. */
void fl__api_unavailable(fl_api_resp_t *r, fl_err_t err);
/* Whether the viewer may read p (asks src about following when it
 * matters). */
fl_err_t fl__api_may_read(fl_api_req_t *q, fl_src_t *src, const fl_post_t *p, bool *yes);

/* The Mastodon surface (fl_api_mastodon.c): matches a path under
 * /api/v1/ or /api/v2/instance (a trailing '/' allowed, as Mastodon's router does), like
 * fl__api_match; serves a matched request (the instance route without a
 * viewer). */
bool fl__api_masto_match(const char *path, fl_route_t *route, int64_t *path_id, bool *auth);
void fl__api_masto_serve(fl_api_req_t *q, fl_api_resp_t *r);

#endif
