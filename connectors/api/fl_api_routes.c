/*
 * fl_api_routes.c - the read API's /v1 endpoints (README "Read API"): which
 * path is which route, and each route's reads and JSON; the picking of a
 * source that the Mastodon routes (fl_api_mastodon.c) share.
 *
 * Every read goes to Redis while it is up and falls over to PostgreSQL
 * within the same request when Redis fails (a response header names the
 * source); follower lists come from PostgreSQL always (Redis keeps only
 * what feeds need). Visibility is checked here, the same way for both
 * sources: a post the viewer may not read is a 404, like a missing one; a
 * path naming another user's feed or notifications is a 403.
 *
 * Ranked feeds: the newest rank_candidates items of the chronological feed
 * (below the first page's newest item, for later pages), scored at the
 * first page's time, ordered by score then post id, paged by offset; the
 * cursor carries (time, newest item, offset), so every page of one ranking
 * comes from the same scores. When ranking cannot run the chronological
 * page is served with `X-Feedline-Ranking: fallback-chrono`.
 */
#include "fl_api_int.h"
#include "fl_clock.h"
#include "fl_jw.h"
#include "fl_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- matching ---- */

bool fl__api_take_id(const char **p, int64_t *id)
{
    char buf[24];
    size_t n = strcspn(*p, "/");

    if (!n || n >= sizeof(buf))
        return false;
    memcpy(buf, *p, n);
    buf[n] = '\0';
    if (!fl_id_parse(buf, id))
        return false;
    *p += n;
    return true;
}

bool fl__api_match(const char *path, fl_route_t *route, int64_t *path_id, unsigned *params,
                   fl_cursor_kind_t *kind, bool *auth)
{
    const unsigned list = FL_Q_LIMIT | FL_Q_CURSOR;
    const char *p;

    *path_id = 0;
    *params = 0;
    *kind = FL_CURSOR_CHRONO;
    *auth = true;
    if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics") ||
        !strcmp(path, "/openapi.json")) {
        *route = path[1] == 'h'   ? R_HEALTH
                 : path[1] == 'r' ? R_READY
                 : path[1] == 'm' ? R_METRICS
                                  : R_OPENAPI;
        *auth = false;
        return true;
    }
    if (fl__api_web_file(path) >= 0) {
        *route = R_WEB;
        *auth = false;
        return true;
    }
    if (!strncmp(path, "/api/v1/", 8) || !strncmp(path, "/api/v2/", 8))
        return fl__api_masto_match(path, route, path_id, auth);
    if (!strcmp(path, "/v1/feed")) {
        *route = R_FEED;
        *params = list | FL_Q_ORDER | FL_Q_EXPLAIN;
        return true;
    }
    if (!strcmp(path, "/v1/stream")) {
        *route = R_STREAM;
        return true;
    }
    if (!strcmp(path, "/v1/notifications")) {
        *route = R_NOTIFICATIONS;
        *params = list;
        *kind = FL_CURSOR_NOTIF;
        return true;
    }
    if (!strncmp(path, "/v1/posts/", 10)) {
        p = path + 10;
        *route = R_POST;
        return fl__api_take_id(&p, path_id) && !*p;
    }
    if (strncmp(path, "/v1/users/", 10))
        return false;
    p = path + 10;
    if (!fl__api_take_id(&p, path_id))
        return false;
    if (!*p) {
        *route = R_USER;
        return true;
    }
    if (!strcmp(p, "/posts")) {
        *route = R_USER_POSTS;
        *params = list;
    } else if (!strcmp(p, "/followers") || !strcmp(p, "/following")) {
        *route = p[7] == 'e' ? R_FOLLOWERS : R_FOLLOWING;
        *params = list;
        *kind = FL_CURSOR_FOLLOW;
    } else if (!strcmp(p, "/feed")) {
        *route = R_FEED;
        *params = list | FL_Q_ORDER | FL_Q_EXPLAIN;
    } else if (!strcmp(p, "/notifications")) {
        *route = R_NOTIFICATIONS;
        *params = list;
        *kind = FL_CURSOR_NOTIF;
    } else {
        return false;
    }
    return true;
}

/* ---- JSON ---- */

json_t *fl__api_id_json(int64_t id)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)id);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *fl__api_post_json(const fl_post_t *p)
{
    json_t *author = json_object(), *o = json_object();

    json_object_set_new(author, "user_id", fl__api_id_json(p->author_id));
    json_object_set_new(author, "handle", str_or_null(p->handle));
    json_object_set_new(author, "display_name", str_or_null(p->display_name));
    json_object_set_new(o, "post_id", fl__api_id_json(p->post_id));
    json_object_set_new(o, "author", author);
    json_object_set_new(o, "created_at", json_integer(p->created_at));
    json_object_set_new(o, "text", json_string(p->text ? p->text : ""));
    json_object_set_new(o, "visibility", json_string(fl_vis_str(p->visibility)));
    json_object_set_new(o, "reply_to", p->reply_to ? fl__api_id_json(p->reply_to) : json_null());
    json_object_set_new(o, "like_count", json_integer(p->like_count));
    return o;
}

static json_t *user_json(const fl_user_t *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "user_id", fl__api_id_json(u->user_id));
    json_object_set_new(o, "handle", json_string(u->handle));
    json_object_set_new(o, "display_name", json_string(u->display_name));
    json_object_set_new(o, "followers_count", json_integer(u->followers_count));
    json_object_set_new(o, "following_count", json_integer(u->following_count));
    json_object_set_new(o, "posts_count", json_integer(u->posts_count));
    json_object_set_new(o, "is_celebrity", json_boolean(u->is_celebrity));
    return o;
}

static json_t *page_json(json_t *items, const fl_cursor_t *next)
{
    json_t *o = json_object();
    char buf[FL_CURSOR_MAX];

    json_object_set_new(o, "items", items);
    if (next) {
        fl_cursor_encode(next, buf);
        json_object_set_new(o, "next_cursor", json_string(buf));
    } else {
        json_object_set_new(o, "next_cursor", json_null());
    }
    return o;
}

/* A post as fl__api_post_json renders it, written straight out. */
static void post_jw(fl_jw_t *w, const fl_post_t *p)
{
    fl_jw_lit(w, "{\"post_id\":");
    fl_jw_id(w, p->post_id);
    fl_jw_lit(w, ",\"author\":{\"user_id\":");
    fl_jw_id(w, p->author_id);
    fl_jw_lit(w, ",\"handle\":");
    fl_jw_str(w, p->handle);
    fl_jw_lit(w, ",\"display_name\":");
    fl_jw_str(w, p->display_name);
    fl_jw_lit(w, "},\"created_at\":");
    fl_jw_int(w, p->created_at);
    fl_jw_lit(w, ",\"text\":");
    fl_jw_str(w, p->text ? p->text : "");
    fl_jw_lit(w, ",\"visibility\":");
    fl_jw_str(w, fl_vis_str(p->visibility));
    fl_jw_lit(w, ",\"reply_to\":");
    if (p->reply_to)
        fl_jw_id(w, p->reply_to);
    else
        fl_jw_lit(w, "null");
    fl_jw_lit(w, ",\"like_count\":");
    fl_jw_int(w, p->like_count);
    fl_jw_lit(w, "}");
}

/* A chronological page, the hot path: written without jansson's tree. */
static void posts_page(fl_api_resp_t *r, const fl_posts_t *ps)
{
    fl_jw_t w;
    char cur[FL_CURSOR_MAX];

    fl_jw_init(&w);
    fl_jw_lit(&w, "{\"items\":[");
    for (size_t i = 0; i < ps->n; i++) {
        if (i)
            fl_jw_lit(&w, ",");
        post_jw(&w, &ps->v[i]);
    }
    fl_jw_lit(&w, "],\"next_cursor\":");
    if (ps->more && ps->n) {
        fl_cursor_t next = {.kind = FL_CURSOR_CHRONO,
                            .pos = {ps->v[ps->n - 1].created_at, ps->v[ps->n - 1].post_id}};
        fl_cursor_encode(&next, cur);
        fl_jw_str(&w, cur);
    } else {
        fl_jw_lit(&w, "null");
    }
    fl_jw_lit(&w, "}");
    free(r->body);
    if (!(r->body = fl_jw_take(&w, &r->len))) {
        fl__api_error(r, 500, "internal", "out of memory");
        return;
    }
    r->code = 200;
    r->content_type = "application/json";
}

/* ---- sources: Redis first, PostgreSQL when Redis fails ---- */

typedef struct pick {
    fl_src_t *src;
    bool fell_over;
} pick_t;

fl_src_t *fl__api_first_source(fl_api_req_t *q)
{
    if (atomic_load_explicit(&q->api->redis_up, memory_order_relaxed))
        return q->thr->redis;
    return q->thr->pg;
}

/*
 * After err from src: the source to try next, or NULL. Redis gets one
 * retry on a new connection first (the thread's connection may predate a
 * Redis restart), then PostgreSQL takes over. When PostgreSQL fails too,
 * Redis is tried again up to FL_API_REDIS_TRIES times in all unless its
 * sink is rebuilding it, even when the health thread missed its pings:
 * an overloaded machine slows Redis past its 1 s timeout without it
 * being gone, and a slow answer beats a 503.
 */
fl_src_t *fl__api_next_source(fl_api_req_t *q, fl_src_t *src, fl_err_t err)
{
    if (err != FL_ERR_UNAVAILABLE)
        return NULL;
    /* not while its sink rebuilds it (its feeds are partial then); a Redis
     * the health thread found gone refuses a connection at once */
    bool redis_alive = atomic_load_explicit(&q->api->redis_state, memory_order_relaxed) != 1;
    if (src == q->thr->pg) {
        q->pg_tried = true;
        return redis_alive && q->redis_tries < FL_API_REDIS_TRIES ? q->thr->redis : NULL;
    }
    if (++q->redis_tries == 1)
        return src;
    if (!q->pg_tried && atomic_load_explicit(&q->api->pg_up, memory_order_relaxed)) {
        atomic_store(&q->api->redis_up, false);
        atomic_fetch_add_explicit(&q->api->metrics.redis_failovers, 1, memory_order_relaxed);
        return q->thr->pg;
    }
    if (redis_alive && q->redis_tries < FL_API_REDIS_TRIES)
        return src;
    return q->pg_tried ? NULL : q->thr->pg;
}

void fl__api_served(fl_api_req_t *q, fl_api_resp_t *r, fl_src_t *src)
{
    r->source = src->ops->name;
    atomic_fetch_add_explicit(&q->api->metrics.source[src == q->thr->redis ? 0 : 1], 1,
                              memory_order_relaxed);
}

void fl__api_unavailable(fl_api_resp_t *r, fl_err_t err)
{
    if (err == FL_ERR_NOMEM)
        fl__api_error(r, 500, "internal", "out of memory");
    else
        fl__api_error(r, 503, "unavailable", "neither Redis nor PostgreSQL answers; retry later");
}

/* ---- ranked feed ---- */

/* Ranks the candidate window and renders one page of it. FL_ERR_UNAVAILABLE
 * when the source failed, FL_ERR_INVALID when ranking cannot run; r is
 * untouched then. */
static fl_err_t ranked_page(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    const fl_api_cfg_t *cfg = q->api->cfg;
    fl_rank_weights_t w = {cfg->rank_half_life_s, cfg->rank_w_recency, cfg->rank_w_likes,
                           cfg->rank_w_affinity};
    fl_posts_t cands = {0};
    fl_pos_t top, *before = NULL;
    int64_t snapshot = fl_wall_ms(), offset = 0;
    int64_t *aff = NULL;
    fl_score_t *scores = NULL;
    size_t *idx = NULL;
    fl_err_t err;

    if (!(w.half_life_s > 0) || cfg->rank_candidates <= 0)
        return FL_ERR_INVALID;
    if (q->query.has_cursor) {
        snapshot = q->query.cursor.snapshot_ms;
        offset = q->query.cursor.offset;
        /* the candidates of the first page: at or below its newest item */
        top = q->query.cursor.pos;
        top.id = top.id < INT64_MAX ? top.id + 1 : top.id;
        before = &top;
    }
    if ((err = src->ops->feed(src, q->viewer, before, (int)cfg->rank_candidates, &cands)) != FL_OK)
        goto out;
    aff = calloc(cands.n + 1, sizeof(*aff));
    scores = calloc(cands.n + 1, sizeof(*scores));
    idx = calloc(cands.n + 1, sizeof(*idx));
    err = FL_ERR_NOMEM;
    if (!aff || !scores || !idx ||
        (err = src->ops->affinity(src, q->viewer, cands.v, cands.n, aff)) != FL_OK)
        goto out;
    for (size_t i = 0; i < cands.n; i++) {
        scores[i] =
            fl_rank_score(&w, snapshot, cands.v[i].created_at, cands.v[i].like_count, aff[i]);
        idx[i] = i;
    }
    fl_rank_order(idx, cands.n, scores, cands.v);

    json_t *items = json_array();
    size_t end = (size_t)offset + (size_t)q->query.limit;
    for (size_t k = (size_t)offset; k < cands.n && k < end; k++) {
        size_t i = idx[k];
        json_t *o = fl__api_post_json(&cands.v[i]);
        if (q->query.explain) {
            json_t *e = json_object();
            json_object_set_new(e, "score", json_real(scores[i].total));
            json_object_set_new(e, "recency", json_real(scores[i].recency));
            json_object_set_new(e, "likes", json_real(scores[i].likes));
            json_object_set_new(e, "affinity", json_real(scores[i].affinity));
            json_object_set_new(e, "affinity_likes", json_integer(aff[i]));
            json_object_set_new(e, "age_s",
                                json_real(snapshot > cands.v[i].created_at
                                              ? (double)(snapshot - cands.v[i].created_at) / 1e3
                                              : 0.0));
            json_object_set_new(o, "explain", e);
        }
        json_array_append_new(items, o);
    }
    fl_cursor_t next = {.kind = FL_CURSOR_RANKED, .snapshot_ms = snapshot, .offset = (int64_t)end};
    if (q->query.has_cursor)
        next.pos = q->query.cursor.pos;
    else if (cands.n)
        next.pos = (fl_pos_t){cands.v[0].created_at, cands.v[0].post_id};
    fl__api_json(r, page_json(items, end < cands.n ? &next : NULL));
    r->ranking = "ranked";
out:
    fl_posts_clear(&cands);
    free(aff);
    free(scores);
    free(idx);
    return err;
}

/* ---- routes ---- */

static void feed(fl_api_req_t *q, fl_api_resp_t *r)
{
    fl_src_t *src = fl__api_first_source(q);
    fl_posts_t ps = {0};
    fl_err_t err;

    if (q->path_id && q->path_id != q->viewer) {
        fl__api_error(r, 403, "forbidden", "a viewer reads only their own feed");
        return;
    }
    if (q->query.order == FL_ORDER_RANKED) {
        while ((err = ranked_page(q, src, r)) != FL_OK) {
            if (!(src = fl__api_next_source(q, src, err)))
                break;
        }
        if (err == FL_OK) {
            fl__api_served(q, r, src);
            return;
        }
        /* ranking could not run: the chronological first page */
        atomic_fetch_add_explicit(&q->api->metrics.rank_fallbacks, 1, memory_order_relaxed);
        q->query.has_cursor = false;
        r->ranking = "fallback-chrono";
        src = fl__api_first_source(q);
    }
    const fl_pos_t *before = q->query.has_cursor ? &q->query.cursor.pos : NULL;
    while ((err = src->ops->feed(src, q->viewer, before, q->query.limit, &ps)) != FL_OK) {
        fl_posts_clear(&ps);
        if (!(src = fl__api_next_source(q, src, err))) {
            fl__api_unavailable(r, err);
            return;
        }
    }
    posts_page(r, &ps);
    fl__api_served(q, r, src);
    fl_posts_clear(&ps);
}

/* Whether viewer may read p (asks the source about following when it
 * matters). */
fl_err_t fl__api_may_read(fl_api_req_t *q, fl_src_t *src, const fl_post_t *p, bool *yes)
{
    bool follows = false;
    fl_err_t err = FL_OK;

    if (p->visibility == FL_VIS_FOLLOWERS && p->author_id != q->viewer)
        err = src->ops->follows(src, q->viewer, p->author_id, &follows);
    *yes = err == FL_OK && fl_post_visible(p, q->viewer, follows);
    return err;
}

static void post(fl_api_req_t *q, fl_api_resp_t *r)
{
    fl_src_t *src = fl__api_first_source(q);
    fl_post_t p = {0};
    bool found = false, visible = false;
    fl_err_t err;

    while ((err = src->ops->post(src, q->path_id, &p, &found)) != FL_OK ||
           (found && (err = fl__api_may_read(q, src, &p, &visible)) != FL_OK)) {
        fl_post_clear(&p);
        if (!(src = fl__api_next_source(q, src, err))) {
            fl__api_unavailable(r, err);
            return;
        }
    }
    if (!found || !visible)
        fl__api_error(r, 404, "not_found", "no such post");
    else
        fl__api_json(r, fl__api_post_json(&p));
    fl__api_served(q, r, src);
    fl_post_clear(&p);
}

static void user(fl_api_req_t *q, fl_api_resp_t *r)
{
    fl_src_t *src = fl__api_first_source(q);
    fl_user_t u = {0};
    bool found = false;
    fl_err_t err;

    while ((err = src->ops->user(src, q->path_id, &u, &found)) != FL_OK) {
        if (!(src = fl__api_next_source(q, src, err))) {
            fl__api_unavailable(r, err);
            return;
        }
    }
    if (!found)
        fl__api_error(r, 404, "not_found", "no such user");
    else
        fl__api_json(r, user_json(&u));
    fl__api_served(q, r, src);
    fl_user_clear(&u);
}

static void user_posts(fl_api_req_t *q, fl_api_resp_t *r)
{
    fl_src_t *src = fl__api_first_source(q);
    fl_posts_t ps = {0};
    const fl_pos_t *before = q->query.has_cursor ? &q->query.cursor.pos : NULL;
    fl_err_t err;

    for (;;) {
        bool follows = false;
        err = q->path_id == q->viewer ? FL_OK
                                      : src->ops->follows(src, q->viewer, q->path_id, &follows);
        if (err == FL_OK)
            err = src->ops->user_posts(src, q->path_id, q->viewer, follows, before, q->query.limit,
                                       &ps);
        if (err == FL_OK)
            break;
        fl_posts_clear(&ps);
        if (!(src = fl__api_next_source(q, src, err))) {
            fl__api_unavailable(r, err);
            return;
        }
    }
    posts_page(r, &ps);
    fl__api_served(q, r, src);
    fl_posts_clear(&ps);
}

static void follow_list(fl_api_req_t *q, fl_api_resp_t *r)
{
    fl_src_t *src = q->thr->pg;
    fl_follows_t fs = {0};
    const fl_pos_t *before = q->query.has_cursor ? &q->query.cursor.pos : NULL;
    fl_err_t err;

    if ((err = src->ops->follow_list(src, q->path_id, q->route == R_FOLLOWING, before,
                                     q->query.limit, &fs)) != FL_OK) {
        fl__api_unavailable(r, err);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < fs.n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "user_id", fl__api_id_json(fs.v[i].pos.id));
        json_object_set_new(o, "handle", str_or_null(fs.v[i].handle));
        json_object_set_new(o, "display_name", str_or_null(fs.v[i].display_name));
        json_object_set_new(o, "followed_at", json_integer(fs.v[i].pos.ts));
        json_array_append_new(items, o);
    }
    fl_cursor_t next = {.kind = FL_CURSOR_FOLLOW};
    if (fs.n)
        next.pos = fs.v[fs.n - 1].pos;
    fl__api_json(r, page_json(items, fs.more && fs.n ? &next : NULL));
    fl__api_served(q, r, src);
    fl_follows_clear(&fs);
}

static void notifications(fl_api_req_t *q, fl_api_resp_t *r)
{
    fl_src_t *src = fl__api_first_source(q);
    fl_notifs_t ns = {0};
    const fl_notif_t *before = q->query.has_cursor ? &q->query.cursor.notif : NULL;
    fl_err_t err;

    if (q->path_id && q->path_id != q->viewer) {
        fl__api_error(r, 403, "forbidden", "a viewer reads only their own notifications");
        return;
    }
    while ((err = src->ops->notifications(src, q->viewer, before, q->query.limit, &ns)) != FL_OK) {
        fl_notifs_clear(&ns);
        if (!(src = fl__api_next_source(q, src, err))) {
            fl__api_unavailable(r, err);
            return;
        }
    }
    json_t *items = json_array();
    for (size_t i = 0; i < ns.n; i++) {
        const fl_notif_t *n = &ns.v[i];
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(n->kind == FL_NOTIF_LIKE ? "like" : "follow"));
        json_object_set_new(o, "actor_id", fl__api_id_json(n->actor_id));
        json_object_set_new(o, "post_id", n->post_id ? fl__api_id_json(n->post_id) : json_null());
        json_object_set_new(o, "created_at", json_integer(n->created_at));
        json_array_append_new(items, o);
    }
    fl_cursor_t next = {.kind = FL_CURSOR_NOTIF};
    if (ns.n)
        next.notif = ns.v[ns.n - 1];
    fl__api_json(r, page_json(items, ns.more && ns.n ? &next : NULL));
    fl__api_served(q, r, src);
    fl_notifs_clear(&ns);
}

void fl__api_serve(fl_api_req_t *q, fl_api_resp_t *r)
{
    switch (q->route) {
    case R_FEED:
        feed(q, r);
        break;
    case R_POST:
        post(q, r);
        break;
    case R_USER:
        user(q, r);
        break;
    case R_USER_POSTS:
        user_posts(q, r);
        break;
    case R_FOLLOWERS:
    case R_FOLLOWING:
        follow_list(q, r);
        break;
    case R_NOTIFICATIONS:
        notifications(q, r);
        break;
    case R_M_HOME:
    case R_M_STATUS:
    case R_M_ACCOUNT:
    case R_M_ACCOUNT_STATUSES:
    case R_M_VERIFY:
    case R_M_NOTIFICATIONS:
    case R_M_INSTANCE:
    case R_M_INSTANCE_V2:
        fl__api_masto_serve(q, r);
        break;
    default:
        fl__api_error(r, 404, "not_found", "no such endpoint");
        break;
    }
}
