/*
 * fl_api_server.c - feedline-api's HTTP side on libmicrohttpd: a pool of
 * worker threads with an epoll loop each (keep-alive, every core), the
 * request checks every /v1 request passes in order (sizes, method, the
 * route, the bearer token, the rate limit, the query), the health thread,
 * and the plumbing of responses (headers, metrics, JSON log lines for
 * errors). The one request whose body is read is POST /dev/login
 * (fl_api_web.c); every other path answers GET and HEAD only.
 *
 * libmicrohttpd calls the handler once with the headers and again (for
 * GET, at once) to ask for the response; answering on the first call
 * makes it close keep-alive connections, so the first call only records
 * the start time.
 */
#include "fl_api.h"
#include "fl_clock.h"
#include "fl_api_int.h"
#include "fl_log.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATH 512

/* ---- responses ---- */

static char *vfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

void fl__api_error(fl_api_resp_t *r, unsigned code, const char *what, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    json_t *e = json_object(), *o = json_object();

    va_start(ap, fmt);
    msg = vfmt(fmt, ap);
    va_end(ap);
    if (r->masto) {
        json_decref(e);
        json_object_set_new(o, "error", json_string(msg ? msg : what));
    } else {
        json_object_set_new(e, "code", json_string(what));
        json_object_set_new(e, "message", json_string(msg ? msg : what));
        json_object_set_new(o, "error", e);
    }
    free(msg);
    fl__api_json(r, o);
    r->code = code;
}

void fl__api_json(fl_api_resp_t *r, json_t *j)
{
    if (!r->borrowed)
        free(r->body);
    r->borrowed = false;
    r->body = json_dumps(j, JSON_COMPACT);
    r->len = r->body ? strlen(r->body) : 0;
    r->code = r->body ? 200 : 500;
    r->content_type = "application/json";
    json_decref(j);
}

static enum MHD_Result send_resp(fl_api_t *api, struct MHD_Connection *conn, fl_api_resp_t *r,
                                 fl_route_t route, int64_t start_us)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char num[24];

    if (!r->body && !r->borrowed)
        fl__api_error(r, 500, "internal", "out of memory");
    resp = r->body || r->borrowed
               ? MHD_create_response_from_buffer(
                     r->len, r->body, r->borrowed ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE)
               : NULL;
    if (!resp) {
        if (!r->borrowed)
            free(r->body);
        free(r->link);
        return MHD_NO;
    }
    r->body = NULL;
    if (r->code != 304)
        MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "Cache-Control",
                            r->cache_control ? r->cache_control : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->etag)
        MHD_add_response_header(resp, "ETag", r->etag);
    /* the live page: its own scripts, styles and API (the stream's ws:
     * included), nothing from elsewhere */
    if (!strncmp(r->content_type, "text/html", 9))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'");
    if (r->source)
        MHD_add_response_header(resp, "X-Feedline-Source", r->source);
    if (r->ranking)
        MHD_add_response_header(resp, "X-Feedline-Ranking", r->ranking);
    if (r->link)
        MHD_add_response_header(resp, "Link", r->link);
    free(r->link);
    r->link = NULL;
    if (r->ratelimit[0]) {
        MHD_add_response_header(resp, "RateLimit", r->ratelimit);
        MHD_add_response_header(resp, "RateLimit-Policy", r->ratepolicy);
    }
    if (r->code == 429) {
        snprintf(num, sizeof(num), "%lld", (long long)r->retry_after);
        MHD_add_response_header(resp, "Retry-After", num);
    }
    if (r->code == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"feedline\"");
    ret = MHD_queue_response(conn, r->code, resp);
    MHD_destroy_response(resp);
    fl__api_metrics_observe(&api->metrics, route, r->code, fl_mono_us() - start_us);
    return ret;
}

/* ---- the worker thread's state ---- */

static void thr_free(void *p)
{
    fl_api_thr_t *t = p;
    if (!t)
        return;
    fl_src_free(t->redis);
    fl_src_free(t->pg);
    free(t);
}

static fl_api_thr_t *thr_get(fl_api_t *api)
{
    fl_api_thr_t *t = pthread_getspecific(api->thr_key);

    if (t)
        return t;
    if (!(t = calloc(1, sizeof(*t))))
        return NULL;
    t->redis = fl_src_redis_new(api->topo, api->cache);
    t->pg = fl_src_pg_new(api->topo);
    if (!t->redis || !t->pg || pthread_setspecific(api->thr_key, t)) {
        thr_free(t);
        return NULL;
    }
    return t;
}

/* ---- request checks ---- */

typedef struct qstate {
    fl_query_t *q;
    fl_masto_query_t *mq; /* a Mastodon route: its rules instead of q's */
    unsigned allowed;
    fl_cursor_kind_t kind;
    size_t bytes;
    size_t max_bytes;
    fl_err_t err;
    char why[160];
} qstate_t;

static enum MHD_Result query_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    qstate_t *st = cls;

    st->bytes += strlen(key) + (value ? strlen(value) : 0) + 2;
    if (st->bytes > st->max_bytes) {
        snprintf(st->why, sizeof(st->why), "query string longer than %zu bytes", st->max_bytes);
        st->err = FL_ERR_OVERSIZED;
        return MHD_NO;
    }
    if (st->mq)
        st->err = fl_masto_query_set(st->mq, key, value, st->why, sizeof(st->why));
    else
        st->err = fl_query_set(st->q, st->allowed, st->kind, key, value, st->why, sizeof(st->why));
    if (st->err != FL_OK)
        return MHD_NO;
    return MHD_YES;
}

static enum MHD_Result header_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    size_t *n = cls;
    *n += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

/* The token's subject into *viewer, or a 401 in r. */
static bool authenticate(fl_api_t *api, struct MHD_Connection *conn, bool query_token,
                         int64_t *viewer, fl_api_resp_t *r)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    fl_jwt_status_t st;
    int64_t exp;

    /* browsers cannot set headers on a WebSocket: streams also take the
     * token as access_token (as Mastodon's streaming API does) */
    if (h && !strncasecmp(h, "Bearer ", 7))
        h += 7;
    else if (!h && query_token)
        h = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "access_token");
    else
        h = NULL;
    if (!h) {
        atomic_fetch_add_explicit(&api->metrics.auth_failed, 1, memory_order_relaxed);
        fl__api_error(r, 401, "unauthorized", "an Authorization: Bearer token is required");
        return false;
    }
    while (*h == ' ')
        h++;
    st = fl_jwt_verify(api->jwt, h, strlen(h), wall_s(), viewer, &exp);
    if (st != FL_JWT_OK) {
        atomic_fetch_add_explicit(&api->metrics.auth_failed, 1, memory_order_relaxed);
        fl__api_error(r, 401, "unauthorized", "invalid token: %s", fl_jwt_status_str(st));
        return false;
    }
    return true;
}

/* The GCRA check; false with a 429 in r when refused. Redis down: let
 * through (counted), since the limiter's state lives there. */
static bool rate_limit(fl_api_t *api, fl_api_thr_t *thr, int64_t viewer, fl_api_resp_t *r)
{
    const fl_api_cfg_t *c = api->cfg;
    fl_gcra_t g;

    if (c->rate_per_s <= 0)
        return true;
    if (!atomic_load_explicit(&api->redis_up, memory_order_relaxed) ||
        fl_src_redis_gcra(thr->redis, viewer, c->rate_per_s, c->rate_burst, &g) != FL_OK) {
        atomic_fetch_add_explicit(&api->metrics.rate_unchecked, 1, memory_order_relaxed);
        return true;
    }
    snprintf(r->ratelimit, sizeof(r->ratelimit), "limit=%lld, remaining=%lld, reset=%lld",
             (long long)g.limit, (long long)g.remaining, (long long)g.reset_s);
    snprintf(r->ratepolicy, sizeof(r->ratepolicy), "%lld;w=%lld", (long long)g.limit,
             (long long)((g.limit + c->rate_per_s - 1) / c->rate_per_s));
    if (g.allowed)
        return true;
    atomic_fetch_add_explicit(&api->metrics.rate_limited, 1, memory_order_relaxed);
    r->retry_after = g.retry_after_s > 0 ? g.retry_after_s : 1;
    fl__api_error(r, 429, "rate_limited", "too many requests; retry in %lld s",
                  (long long)r->retry_after);
    return false;
}

static void ops_route(fl_api_t *api, fl_route_t route, fl_api_resp_t *r)
{
    bool redis = atomic_load(&api->redis_up), pg = atomic_load(&api->pg_up);

    switch (route) {
    case R_HEALTH:
        fl__api_json(r, json_pack("{s:s}", "status", "ok"));
        break;
    case R_READY: {
        int st = atomic_load(&api->redis_state);
        json_t *lag = json_pack("{s:I,s:I}", "redis_sink", (json_int_t)atomic_load(&api->redis_lag),
                                "pg_sink", (json_int_t)atomic_load(&api->pg_lag));
        fl__api_json(r, json_pack("{s:s,s:s,s:s,s:s?,s:o}", "status",
                                  redis ? "ready"
                                  : pg  ? "degraded"
                                        : "unavailable",
                                  "redis",
                                  st == 2   ? "up"
                                  : st == 1 ? "rebuilding"
                                            : "down",
                                  "postgres", pg ? "up" : "down", "serving_from",
                                  redis ? "redis"
                                  : pg  ? "postgres"
                                        : NULL,
                                  "lag", lag));
        if (!redis && !pg)
            r->code = 503;
        break;
    }
    case R_METRICS: {
        free(r->body);
        const fl_sink_cfg_t *rs = fl__api_sink(api->topo, FL_SINK_REDIS),
                            *ps = fl__api_sink(api->topo, FL_SINK_POSTGRES);
        fl_api_health_view_t h = {.redis_up = redis,
                                  .pg_up = pg,
                                  .sink = {rs ? rs->name : NULL, ps ? ps->name : NULL},
                                  .lag = {atomic_load(&api->redis_lag), atomic_load(&api->pg_lag)}};
        r->body = fl__api_metrics_render(&api->metrics, api->cache, &h);
        r->len = r->body ? strlen(r->body) : 0;
        r->code = 200;
        r->content_type = "text/plain; version=0.0.4";
        break;
    }
    case R_OPENAPI:
        if (!api->openapi) {
            fl__api_error(r, 404, "not_found", "no OpenAPI document installed");
            break;
        }
        free(r->body);
        r->body = api->openapi;
        r->borrowed = true;
        r->len = api->openapi_len;
        r->code = 200;
        r->content_type = "application/json";
        break;
    default:
        break;
    }
}

/* ---- WebSocket upgrade (the frames are fl_api_stream.c's) ---- */

typedef struct upgrade_ctx {
    fl_api_t *api;
    int64_t viewer;
    bool has_since;
    fl_pos_t since;
    bool mastodon;
    char base[FL_MASTO_BASE_MAX];
} upgrade_ctx_t;

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                       size_t extra_n, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    upgrade_ctx_t *u = cls;
    fl__stream_add(u->api->hub, sock, urh, extra, extra_n, u->viewer,
                   u->has_since ? &u->since : NULL, u->mastodon, u->base);
    free(u);
}

typedef struct stream_q {
    bool mastodon;
    char why[96];
} stream_q_t;

/* feedline's stream takes since=; Mastodon's stream=user (the only stream
 * served); both the token as access_token */
static enum MHD_Result stream_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    stream_q_t *q = cls;
    if (!strcmp(key, "access_token"))
        return MHD_YES;
    if (!q->mastodon && !strcmp(key, "since"))
        return MHD_YES;
    if (q->mastodon && !strcmp(key, "stream") && value && !strcmp(value, "user"))
        return MHD_YES;
    snprintf(q->why, sizeof(q->why), "%s",
             q->mastodon && !strcmp(key, "stream") ? "only stream=user is served"
                                                   : "unknown parameter for a stream");
    return MHD_NO;
}

static enum MHD_Result stream_upgrade(fl_api_t *api, struct MHD_Connection *conn, int64_t viewer,
                                      fl_route_t route, fl_api_resp_t *r, int64_t start)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    bool mastodon = route == R_M_STREAM_WS;
    const char *since =
        mastodon ? NULL : MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    stream_q_t sq = {.mastodon = mastodon};
    char buf[128], accept[64];
    unsigned char sha[SHA_DIGEST_LENGTH];
    upgrade_ctx_t *u;
    fl_cursor_t cur;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, stream_it, &sq);
    if (sq.why[0]) {
        fl__api_error(r, 400, "bad_request", "%s", sq.why);
        return send_resp(api, conn, r, route, start);
    }
    if (!up || !strcasestr(up, "websocket") || !key || strlen(key) > 64 || !ver ||
        strcmp(ver, "13")) {
        fl__api_error(r, 400, "bad_request",
                      "a WebSocket upgrade (version 13) is required for the stream");
        return send_resp(api, conn, r, route, start);
    }
    if (since && fl_cursor_decode(since, FL_CURSOR_CHRONO, &cur) != FL_OK) {
        fl__api_error(r, 400, "bad_request", "since is not a position this API sent");
        return send_resp(api, conn, r, route, start);
    }
    if (atomic_load(&api->metrics.open_streams) >= api->cfg->stream_max_clients) {
        fl__api_error(r, 503, "unavailable", "too many open streams; retry later");
        return send_resp(api, conn, r, route, start);
    }
    if (!(u = calloc(1, sizeof(*u)))) {
        fl__api_error(r, 500, "internal", "out of memory");
        return send_resp(api, conn, r, route, start);
    }
    u->api = api;
    u->viewer = viewer;
    u->mastodon = mastodon;
    fl__api_masto_base(api, conn, u->base);
    if (since) {
        u->has_since = true;
        u->since = cur.pos;
    }
    snprintf(buf, sizeof(buf), "%s%s", key, guid);
    SHA1((const unsigned char *)buf, strlen(buf), sha);
    EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
    if (!(resp = MHD_create_response_for_upgrade(on_upgrade, u))) {
        free(u);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    fl__api_metrics_observe(&api->metrics, route, 200, fl_mono_us() - start);
    return ret;
}

/* Mastodon's server-sent events: a never-ending 200 that the stream hub
 * feeds. */
static enum MHD_Result stream_sse(fl_api_t *api, struct MHD_Connection *conn, int64_t viewer,
                                  fl_api_resp_t *r, int64_t start)
{
    char base[FL_MASTO_BASE_MAX];
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (atomic_load(&api->metrics.open_streams) >= api->cfg->stream_max_clients) {
        fl__api_error(r, 503, "unavailable", "too many open streams; retry later");
        return send_resp(api, conn, r, R_M_STREAM_SSE, start);
    }
    fl__api_masto_base(api, conn, base);
    if (!(resp = fl__stream_add_sse(api->hub, conn, viewer, base)))
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    fl__api_metrics_observe(&api->metrics, R_M_STREAM_SSE, 200, fl_mono_us() - start);
    return ret;
}

/* What a request keeps across libmicrohttpd's calls (*con_cls): when it
 * started, and its body so far (only /dev/login reads it; past
 * limits.body_bytes the request gets a 413). */
typedef struct req_state {
    int64_t start;
    char *body;
    size_t body_len;
} req_state_t;

/* Appends a chunk of the body; false (with a 413, or a 500) when it
 * cannot be kept. */
static bool take_body(fl_api_t *api, req_state_t *st, const char *data, size_t n, fl_api_resp_t *r)
{
    size_t max = (size_t)api->cfg->max_body_bytes;
    char *grown;

    if (n > max || st->body_len > max - n) {
        fl__api_error(r, 413, "too_large", "request bodies are limited to %zu bytes", max);
        return false;
    }
    if (!(grown = realloc(st->body, st->body_len + n + 1))) {
        fl__api_error(r, 500, "internal", "out of memory");
        return false;
    }
    memcpy(grown + st->body_len, data, n);
    st->body = grown;
    st->body_len += n;
    st->body[st->body_len] = '\0';
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    fl_api_t *api = cls;
    fl_api_resp_t r = {.code = 200, .content_type = "application/json"};
    fl_api_req_t q = {.api = api, .conn = conn, .path = url, .route = R_OTHER};
    unsigned params;
    bool auth;
    size_t header_bytes = 0;
    req_state_t *rs = *con_cls;

    r.masto = !strncmp(url, "/api/", 5);

    if (!rs) {
        if (!(rs = calloc(1, sizeof(*rs))))
            return MHD_NO;
        rs->start = fl_mono_us();
        *con_cls = rs;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!take_body(api, rs, upload, *upload_size, &r))
            return send_resp(api, conn, &r, R_OTHER, rs->start);
        *upload_size = 0;
        return MHD_YES;
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, header_it, &header_bytes);
    if (header_bytes > (size_t)api->cfg->max_header_bytes) {
        fl__api_error(&r, 431, "headers_too_large", "request headers are limited to %lld bytes",
                      (long long)api->cfg->max_header_bytes);
        return send_resp(api, conn, &r, R_OTHER, rs->start);
    }
    if (!strcmp(url, "/dev/login")) {
        fl__api_dev_login(api, conn, method, rs->body, rs->body_len, &r);
        return send_resp(api, conn, &r, R_DEV_LOGIN, rs->start);
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        fl__api_error(&r, 405, "method_not_allowed", "the read API answers GET only");
        return send_resp(api, conn, &r, R_OTHER, rs->start);
    }
    if (strlen(url) > MAX_PATH) {
        fl__api_error(&r, 414, "uri_too_long", "paths are limited to %d bytes", MAX_PATH);
        return send_resp(api, conn, &r, R_OTHER, rs->start);
    }
    fl_cursor_kind_t kind;
    if (!fl__api_match(url, &q.route, &q.path_id, &params, &kind, &auth)) {
        fl__api_error(&r, 404, "not_found", "no such endpoint");
        return send_resp(api, conn, &r, R_OTHER, rs->start);
    }
    if (q.route == R_WEB) {
        fl__api_web_serve(api->web, fl__api_web_file(url), conn, &r);
        return send_resp(api, conn, &r, q.route, rs->start);
    }
    if (q.route == R_M_STREAM_HEALTH) {
        free(r.body);
        r.body = strdup("OK");
        r.len = 2;
        r.content_type = "text/plain";
        return send_resp(api, conn, &r, q.route, rs->start);
    }
    if (!auth && (q.route == R_M_INSTANCE || q.route == R_M_INSTANCE_V2)) {
        fl__api_masto_serve(&q, &r);
        return send_resp(api, conn, &r, q.route, rs->start);
    }
    if (!auth) {
        ops_route(api, q.route, &r);
        return send_resp(api, conn, &r, q.route, rs->start);
    }
    bool streaming = q.route == R_STREAM || q.route == R_M_STREAM_WS || q.route == R_M_STREAM_SSE;
    if (!authenticate(api, conn, streaming, &q.viewer, &r))
        return send_resp(api, conn, &r, q.route, rs->start);
    if (q.route == R_STREAM || q.route == R_M_STREAM_WS)
        return stream_upgrade(api, conn, q.viewer, q.route, &r, rs->start);
    if (q.route == R_M_STREAM_SSE)
        return stream_sse(api, conn, q.viewer, &r, rs->start);
    if (!(q.thr = thr_get(api))) {
        fl__api_error(&r, 500, "internal", "out of memory");
        return send_resp(api, conn, &r, q.route, rs->start);
    }
    if (!rate_limit(api, q.thr, q.viewer, &r))
        return send_resp(api, conn, &r, q.route, rs->start);

    qstate_t st = {.q = &q.query,
                   .mq = r.masto ? &q.mquery : NULL,
                   .allowed = params,
                   .kind = kind,
                   .max_bytes = (size_t)api->cfg->max_query_bytes};
    fl_query_init(&q.query);
    fl_masto_query_init(&q.mquery);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_it, &st);
    if (st.err == FL_OK && !st.mq)
        st.err = fl_query_finish(&q.query, st.why, sizeof(st.why));
    if (st.err != FL_OK) {
        fl__api_error(&r, st.err == FL_ERR_OVERSIZED ? 414 : 400, "bad_request", "%s", st.why);
        return send_resp(api, conn, &r, q.route, rs->start);
    }
    fl__api_serve(&q, &r);
    return send_resp(api, conn, &r, q.route, rs->start);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_state_t *st = *con_cls;

    if (st)
        free(st->body);
    free(st);
    *con_cls = NULL;
}

/* ---- lifecycle ---- */

static bool parse_listen(const char *ep, struct sockaddr_in *sa)
{
    const char *colon = strrchr(ep, ':');
    char host[64];

    if (!colon || colon - ep >= (long)sizeof(host))
        return false;
    memcpy(host, ep, (size_t)(colon - ep));
    host[colon - ep] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 && sa->sin_port;
}

char *fl__api_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        *len = (size_t)n;
    fclose(f);
    return buf;
}

/* The development login mints with the keys the server has: check at
 * start that it can, rather than at the first login. */
static bool dev_login_ready(fl_api_t *api, char *errstr, size_t errstr_size)
{
    char err[256], *tok;

    if (!api->cfg->dev_login)
        return true;
    if (!(tok = fl__api_dev_token(api, 1, err, sizeof(err)))) {
        snprintf(errstr, errstr_size, "api.dev_login is on, but no token can be minted: %s", err);
        return false;
    }
    free(tok);
    fl_log_warn("api", "api.dev_login is on: POST /dev/login hands out a token for any user "
                       "(development only)");
    return true;
}

fl_api_t *fl_api_new(const fl_topology_t *t, const char *openapi_path, const char *web_dir,
                     char *errstr, size_t errstr_size)
{
    fl_api_t *api = calloc(1, sizeof(*api));
    struct sockaddr_in sa;
    unsigned threads;

    if (!api) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    api->topo = t;
    atomic_init(&api->health_topo, t);
    api->cfg = &t->api;
    /* until the health thread knows: PostgreSQL, the store that is never
     * partial */
    atomic_store(&api->redis_up, false);
    atomic_store(&api->pg_up, true);
    atomic_store(&api->redis_lag, -1);
    atomic_store(&api->pg_lag, -1);
    if (pthread_key_create(&api->thr_key, thr_free)) {
        snprintf(errstr, errstr_size, "pthread_key_create failed");
        free(api);
        return NULL;
    }
    if (!(api->jwt = fl_jwt_new(api->cfg, errstr, errstr_size)) ||
        !dev_login_ready(api, errstr, errstr_size))
        goto fail;
    if (openapi_path && !(api->openapi = fl__api_slurp(openapi_path, &api->openapi_len)))
        fl_log_warn("api", "cannot read %s: /openapi.json answers 404", openapi_path);
    if (!(api->web = fl__api_web_new(web_dir))) {
        snprintf(errstr, errstr_size, "out of memory for the live page");
        goto fail;
    }
    if (!parse_listen(t->endpoints.api, &sa)) {
        snprintf(errstr, errstr_size, "endpoints.api '%s' is not IPv4-ADDRESS:PORT",
                 t->endpoints.api);
        goto fail;
    }
    if (api->cfg->cache_entries > 0 && api->cfg->cache_ttl_ms > 0 &&
        !(api->cache = fl_api_cache_new((size_t)api->cfg->cache_entries, api->cfg->cache_ttl_ms))) {
        snprintf(errstr, errstr_size, "out of memory for the cache");
        goto fail;
    }
    if (!(api->hub = fl__stream_hub_new(api, errstr, errstr_size)))
        goto fail;
    if (pthread_create(&api->health, NULL, fl__api_health_main, api)) {
        snprintf(errstr, errstr_size, "cannot start the health thread");
        goto fail;
    }
    threads = api->cfg->threads > 0 ? (unsigned)api->cfg->threads
                                    : 2 * (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    api->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE |
            MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)api->cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        /* per connection, and kept by an upgraded one for its lifetime:
         * the headers and a little (a request past it gets 431) */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(api->cfg->max_header_bytes + 4096),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
        MHD_OPTION_END);
    if (!api->mhd) {
        snprintf(errstr, errstr_size, "cannot listen on %s (in use?)", t->endpoints.api);
        atomic_store(&api->stop, true);
        pthread_join(api->health, NULL);
        goto fail;
    }
    fl_log_info("api", "serving on http://%s with %u threads", t->endpoints.api, threads);
    return api;
fail:
    fl__stream_hub_free(api->hub);
    fl_api_cache_free(api->cache);
    fl_jwt_free(api->jwt);
    free(api->openapi);
    fl__api_web_free(api->web);
    pthread_key_delete(api->thr_key);
    free(api);
    return NULL;
}

void fl_api_free(fl_api_t *api)
{
    if (!api)
        return;
    MHD_stop_daemon(api->mhd);
    atomic_store(&api->stop, true);
    pthread_join(api->health, NULL);
    fl__stream_hub_free(api->hub);
    fl_api_cache_free(api->cache);
    fl_jwt_free(api->jwt);
    free(api->openapi);
    fl__api_web_free(api->web);
    pthread_key_delete(api->thr_key);
    free(api);
}
