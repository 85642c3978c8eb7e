/*
 * fl_api_redis.c - the read API's Redis source (fl_api_src.h), over the
 * keys the Redis sink keeps (README "Redis sink"): feed:{U}, outbox:{A},
 * following:{U}, celebrities, post:{P}, user:{U}, affinity:{V}, notif:{U}.
 *
 * A feed page merges sorted sets: the viewer's feed and the outbox of every
 * celebrity the viewer follows (SINTER following:{V} celebrities). Each set
 * is read below the cursor in windows (one ZREVRANGEBYSCORE for the entries
 * at the cursor's own time, whose order Redis keeps by member bytes, and one
 * for those strictly older), merged newest first by (created_at, post id);
 * a candidate is safe to serve once it is newer than the last entry of every
 * window that came back full (an unread entry of that set can only be older
 * or tied with it). Safe candidates are hydrated in one pipeline (HMGET of
 * post and author hashes); missing posts (deleted) and invisible ones are
 * dropped, and windows move on until limit + 1 items are found or every set
 * is exhausted: the extra item says whether a next page exists.
 *
 * Every command goes out pipelined on the thread's own connection; one
 * page costs two to four round trips. A connection error drops the
 * connection (FL_ERR_UNAVAILABLE); the next call reconnects, at most once
 * per RECONNECT_MS.
 */
#include "fl_api_cache.h"
#include "fl_clock.h"
#include "fl_api_src.h"
#include "fl_log.h"
#include "fl_sink_store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define RECONNECT_MS 200
/* How long a read waits for Redis by default. A Redis on an overloaded
 * machine, behind a sink's script of a few thousand entries, answers in
 * hundreds of ms: a shorter wait turned that into a timeout, a new
 * connection, a retry and a failover to PostgreSQL per request (the
 * threads blocked in timeouts served a few pages a second). A Redis that
 * is gone refuses or resets at once; one that hangs is found by the
 * health thread, whose pings wait less (fl_src_redis_set_timeout). */
#define IO_TIMEOUT_MS 1000
#define WINDOW_MIN    4    /* beyond limit + 1: room for a few dropped posts */
#define MAX_SETS      1024 /* celebrities a viewer follows, read per page at most */

typedef struct rsrc {
    fl_src_t base;
    char host[256];
    int port;
    int64_t db; /* endpoints.redis_db */
    redisContext *c;
    int timeout_ms;
    int64_t next_try_ms;
    fl_api_cache_t *cache; /* borrowed, may be NULL */
    char gcra_sha[41];     /* the rate-limit script's SHA1, hex */
} rsrc_t;

/* Drops a connection that failed; the next call reconnects at once (a
 * connection left from before a Redis restart fails on first use), only
 * failed connects wait RECONNECT_MS. */
static void drop(rsrc_t *s, const char *why)
{
    if (s->c) {
        fl_log_warn("api", "redis %s:%d: %s", s->host, s->port, why);
        redisFree(s->c);
        s->c = NULL;
    }
}

static struct timeval timeout_tv(const rsrc_t *s)
{
    return (struct timeval){s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
}

static fl_err_t conn(rsrc_t *s)
{
    struct timeval tv = timeout_tv(s);

    if (s->c)
        return FL_OK;
    if (fl_mono_ms() < s->next_try_ms)
        return FL_ERR_UNAVAILABLE;
    char why[256];
    s->c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!s->c || s->c->err || fl_sink_store_redis_select(s->c, s->db, why, sizeof(why))) {
        if (s->c)
            redisFree(s->c);
        s->c = NULL;
        s->next_try_ms = fl_mono_ms() + RECONNECT_MS;
        return FL_ERR_UNAVAILABLE;
    }
    redisSetTimeout(s->c, tv);
    return FL_OK;
}

/* Reads n replies into r[]; on a connection error frees what was read and
 * drops the connection. Error replies are returned as they are. */
static fl_err_t replies(rsrc_t *s, redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *p = NULL;
        if (redisGetReply(s->c, &p) != REDIS_OK || !p) {
            for (size_t j = 0; j < i; j++)
                freeReplyObject(r[j]);
            drop(s, s->c->errstr[0] ? s->c->errstr : "connection lost");
            return FL_ERR_UNAVAILABLE;
        }
        r[i] = p;
    }
    return FL_OK;
}

static void free_replies(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i])
            freeReplyObject(r[i]);
}

static bool str_i64(const redisReply *r, int64_t *out)
{
    char *end;
    long long v;

    if (!r || r->type != REDIS_REPLY_STRING || !r->len)
        return false;
    errno = 0;
    v = strtoll(r->str, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static char *dup_str(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return NULL;
    return strndup(r->str, r->len);
}

/* ---- hydration ---- */

static const char *const post_fields[] = {"author_id",  "created_at", "text",
                                          "visibility", "reply_to",   "like_count"};
#define N_POST_FIELDS 6

static void append_post_hmget(rsrc_t *s, int64_t id)
{
    redisAppendCommand(s->c, "HMGET post:{%lld} %s %s %s %s %s %s", (long long)id, post_fields[0],
                       post_fields[1], post_fields[2], post_fields[3], post_fields[4],
                       post_fields[5]);
}

/* Fills p from an HMGET of post_fields; false when the post is missing or
 * malformed (a partial hash is treated as missing). */
static bool fill_post(fl_post_t *p, int64_t id, const redisReply *r)
{
    int64_t v;

    memset(p, 0, sizeof(*p));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != N_POST_FIELDS)
        return false;
    p->post_id = id;
    if (!str_i64(r->element[0], &p->author_id) || !str_i64(r->element[1], &p->created_at))
        return false;
    if ((p->visibility = fl_vis_parse(r->element[3]->type == REDIS_REPLY_STRING ? r->element[3]->str
                                                                                : NULL)) < 0)
        return false;
    if (str_i64(r->element[4], &v))
        p->reply_to = v;
    if (str_i64(r->element[5], &v))
        p->like_count = v;
    if (!(p->text = dup_str(r->element[2])))
        p->text = strdup("");
    return p->text != NULL;
}

/* Hydrates posts[0..n) from the cache (use_cache) and Redis, in at most
 * two round trips; ok[i] false for a missing post. */
static fl_err_t hydrate(rsrc_t *s, fl_post_t *posts, const int64_t *ids, bool *ok, size_t n,
                        bool use_cache)
{
    redisReply **r = calloc(n ? n : 1, sizeof(*r));
    size_t *miss = calloc(n ? n : 1, sizeof(*miss));
    fl_api_cache_t *cache = use_cache ? s->cache : NULL;
    int64_t now = fl_mono_ms();
    fl_err_t err = FL_ERR_NOMEM;
    size_t n_miss = 0;

    if (!r || !miss)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ok[i] = cache && fl_api_cache_get_post(cache, ids[i], now, &posts[i]);
        if (!ok[i]) {
            append_post_hmget(s, ids[i]);
            miss[n_miss++] = i;
        }
    }
    if ((err = replies(s, r, n_miss)) != FL_OK)
        goto out;
    for (size_t k = 0; k < n_miss; k++) {
        size_t i = miss[k];
        ok[i] = fill_post(&posts[i], ids[i], r[k]);
        if (!ok[i])
            fl_post_clear(&posts[i]);
        else if (s->cache)
            fl_api_cache_put_post(s->cache, &posts[i], now);
        freeReplyObject(r[k]);
        r[k] = NULL;
    }
    n_miss = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i] || (cache && fl_api_cache_get_user(cache, posts[i].author_id, now,
                                                      &posts[i].handle, &posts[i].display_name)))
            continue;
        redisAppendCommand(s->c, "HMGET user:{%lld} handle display_name",
                           (long long)posts[i].author_id);
        miss[n_miss++] = i;
    }
    if ((err = replies(s, r, n_miss)) != FL_OK)
        goto out;
    for (size_t k = 0; k < n_miss; k++) {
        size_t i = miss[k];
        redisReply *u = r[k];
        if (u->type == REDIS_REPLY_ARRAY && u->elements == 2 &&
            u->element[0]->type == REDIS_REPLY_STRING) {
            posts[i].handle = dup_str(u->element[0]);
            posts[i].display_name = dup_str(u->element[1]);
            if (!posts[i].display_name)
                posts[i].display_name = strdup("");
        }
        if (s->cache)
            fl_api_cache_put_user(s->cache, posts[i].author_id, posts[i].handle,
                                  posts[i].display_name, now);
    }
    free_replies(r, n_miss);
out:
    free(r);
    free(miss);
    return err;
}

/* ---- merged windows over sorted sets ---- */

typedef struct zset {
    char key[48];
    fl_pos_t last;  /* the oldest entry the last window returned */
    bool exhausted; /* the last window held everything left below the cursor */
} zset_t;

typedef bool (*visible_fn)(const fl_post_t *p, int64_t viewer, void *arg);

static fl_err_t push_cand(fl_pos_t **v, size_t *n, size_t *cap, fl_pos_t p)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        fl_pos_t *nv = realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return FL_ERR_NOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = p;
    return FL_OK;
}

/* Hydrates cands[0..n) and appends the visible ones to out, up to want. */
static fl_err_t take(rsrc_t *s, const fl_pos_t *cands, size_t n, int64_t viewer, visible_fn vis,
                     void *arg, size_t want, fl_posts_t *out)
{
    fl_post_t *posts = calloc(n, sizeof(*posts));
    int64_t *ids = malloc(n * sizeof(*ids));
    bool *ok = calloc(n, sizeof(*ok));
    fl_err_t err = FL_ERR_NOMEM;

    if (!posts || !ids || !ok)
        goto out;
    for (size_t j = 0; j < n; j++)
        ids[j] = cands[j].id;
    err = hydrate(s, posts, ids, ok, n, true);
    for (size_t j = 0; j < n; j++) {
        fl_post_t *slot;
        if (err == FL_OK && ok[j] && out->n < want && vis(&posts[j], viewer, arg)) {
            if (!(slot = fl_posts_push(out))) {
                err = FL_ERR_NOMEM;
            } else {
                *slot = posts[j];
                memset(&posts[j], 0, sizeof(posts[j]));
            }
        }
        fl_post_clear(&posts[j]);
    }
out:
    free(posts);
    free(ids);
    free(ok);
    return err;
}

/*
 * Reads the sets below before, in windows, until want visible posts are
 * found or every set is exhausted. Visible posts go to out in order.
 */
static fl_err_t merge_sets(rsrc_t *s, zset_t *sets, size_t n_sets, const fl_pos_t *before_in,
                           size_t want, int64_t viewer, visible_fn vis, void *arg, fl_posts_t *out)
{
    fl_pos_t before = before_in ? *before_in : (fl_pos_t){INT64_MAX, INT64_MAX};
    bool has_before = before_in != NULL;
    size_t window = want + WINDOW_MIN;
    fl_pos_t *cands = NULL;
    size_t cap = 0;
    fl_err_t err = FL_OK;
    size_t n = 0; /* candidates not yet considered, newest first */
    redisReply **r = calloc(2 * n_sets + 1, sizeof(*r));

    if (!r)
        return FL_ERR_NOMEM;
    for (int round = 0; round < 64 && out->n < want; round++) {
        size_t nr = 0;
        bool any_full = false;
        fl_pos_t bound = {INT64_MIN, INT64_MIN}; /* safe: strictly newer than bound.ts */

        for (size_t i = 0; i < n_sets; i++) {
            if (sets[i].exhausted)
                continue;
            if (has_before) {
                redisAppendCommand(s->c, "ZRANGEBYSCORE %s %lld %lld", sets[i].key,
                                   (long long)before.ts, (long long)before.ts);
                redisAppendCommand(s->c, "ZREVRANGEBYSCORE %s (%lld -inf WITHSCORES LIMIT 0 %lld",
                                   sets[i].key, (long long)before.ts, (long long)window);
                nr += 2;
            } else {
                redisAppendCommand(s->c, "ZREVRANGEBYSCORE %s +inf -inf WITHSCORES LIMIT 0 %lld",
                                   sets[i].key, (long long)window);
                nr += 1;
            }
        }
        if ((err = replies(s, r, nr)) != FL_OK)
            goto out;
        for (size_t i = 0, k = 0; i < n_sets; i++) {
            if (sets[i].exhausted)
                continue;
            if (has_before) {
                redisReply *tie = r[k++];
                for (size_t j = 0; tie->type == REDIS_REPLY_ARRAY && j < tie->elements; j++) {
                    int64_t id;
                    if (!str_i64(tie->element[j], &id) || id >= before.id)
                        continue;
                    if ((err = push_cand(&cands, &n, &cap, (fl_pos_t){before.ts, id})) != FL_OK)
                        goto out;
                }
            }
            redisReply *w = r[k++];
            if (w->type == REDIS_REPLY_ERROR) {
                fl_log_warn("api", "redis %s: %s", sets[i].key, w->str);
                err = FL_ERR_UNAVAILABLE;
                goto out;
            }
            size_t got = w->type == REDIS_REPLY_ARRAY ? w->elements / 2 : 0;
            for (size_t j = 0; j < got; j++) {
                int64_t id, ts;
                if (!str_i64(w->element[2 * j], &id) || !str_i64(w->element[2 * j + 1], &ts))
                    continue;
                if ((err = push_cand(&cands, &n, &cap, (fl_pos_t){ts, id})) != FL_OK)
                    goto out;
                sets[i].last = (fl_pos_t){ts, id};
            }
            /* a window that came back short holds everything below before:
             * the set is done (its candidates stay in cands) */
            sets[i].exhausted = got < window;
            if (!sets[i].exhausted) {
                any_full = true;
                if (sets[i].last.ts > bound.ts)
                    bound = sets[i].last;
            }
        }
        free_replies(r, nr);
        memset(r, 0, nr * sizeof(*r));

        n = fl_pos_sort_unique(cands, n);
        size_t safe = 0, at = 0;
        while (safe < n && (!any_full || cands[safe].ts > bound.ts))
            safe++;
        if (!safe && any_full) {
            window *= 2; /* the windows end inside one timestamp: widen them */
            continue;
        }
        /* hydrate the safe candidates in slices no larger than needed */
        while (at < safe && out->n < want) {
            size_t slice = want - out->n + 2;
            if (slice > safe - at)
                slice = safe - at;
            if ((err = take(s, cands + at, slice, viewer, vis, arg, want, out)) != FL_OK)
                goto out;
            before = cands[at + slice - 1];
            has_before = true;
            at += slice;
        }
        if (!any_full)
            break; /* every candidate was safe: nothing remains */
        /* the rest (older than bound) waits for the full sets' next windows */
        memmove(cands, cands + at, (n - at) * sizeof(*cands));
        n -= at;
    }
out:
    free(cands);
    free(r);
    return err;
}

/* Pages: fetch limit + 1 visible items; the extra one only says "more". */
static fl_err_t page(rsrc_t *s, zset_t *sets, size_t n_sets, const fl_pos_t *before, int limit,
                     int64_t viewer, visible_fn vis, void *arg, fl_posts_t *out)
{
    fl_err_t err = merge_sets(s, sets, n_sets, before, (size_t)limit + 1, viewer, vis, arg, out);
    if (err != FL_OK) {
        fl_posts_clear(out);
        return err;
    }
    if (out->n > (size_t)limit) {
        fl_post_clear(&out->v[--out->n]);
        out->more = true;
    }
    return FL_OK;
}

/* A feed's sources already applied the fan-out's rules (a followers-only
 * post reached followers only); private posts stay their author's. */
static bool feed_visible(const fl_post_t *p, int64_t viewer, void *arg)
{
    return fl_post_visible(p, viewer, true);
}

static fl_err_t r_feed(fl_src_t *base, int64_t viewer, const fl_pos_t *before, int limit,
                       fl_posts_t *out)
{
    rsrc_t *s = (rsrc_t *)base;
    redisReply *r = NULL;
    zset_t *sets = NULL;
    size_t n = 1;
    fl_err_t err;

    if ((err = conn(s)) != FL_OK)
        return err;
    redisAppendCommand(s->c, "SINTER following:{%lld} celebrities", (long long)viewer);
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    size_t celebs = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    if (celebs > MAX_SETS - 1)
        celebs = MAX_SETS - 1;
    if (!(sets = calloc(1 + celebs, sizeof(*sets)))) {
        freeReplyObject(r);
        return FL_ERR_NOMEM;
    }
    snprintf(sets[0].key, sizeof(sets[0].key), "feed:{%lld}", (long long)viewer);
    for (size_t i = 0; i < celebs; i++) {
        int64_t a;
        if (str_i64(r->element[i], &a))
            snprintf(sets[n++].key, sizeof(sets[0].key), "outbox:{%lld}", (long long)a);
    }
    freeReplyObject(r);
    err = page(s, sets, n, before, limit, viewer, feed_visible, NULL, out);
    free(sets);
    return err;
}

static fl_err_t r_post(fl_src_t *base, int64_t post_id, fl_post_t *out, bool *found)
{
    rsrc_t *s = (rsrc_t *)base;
    fl_err_t err;

    *found = false;
    if ((err = conn(s)) != FL_OK)
        return err;
    /* a single post is read fresh: it may have been deleted a moment ago */
    return hydrate(s, out, &post_id, found, 1, false);
}

static fl_err_t r_follows(fl_src_t *base, int64_t viewer, int64_t author, bool *yes)
{
    rsrc_t *s = (rsrc_t *)base;
    redisReply *r;
    fl_err_t err;

    if ((err = conn(s)) != FL_OK)
        return err;
    redisAppendCommand(s->c, "SISMEMBER following:{%lld} %lld", (long long)viewer,
                       (long long)author);
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    *yes = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return FL_OK;
}

static fl_err_t r_user(fl_src_t *base, int64_t user_id, fl_user_t *out, bool *found)
{
    rsrc_t *s = (rsrc_t *)base;
    redisReply *r;
    fl_err_t err;

    *found = false;
    memset(out, 0, sizeof(*out));
    if ((err = conn(s)) != FL_OK)
        return err;
    redisAppendCommand(s->c,
                       "HMGET user:{%lld} handle display_name followers_count following_count "
                       "posts_count is_celebrity",
                       (long long)user_id);
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 6 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        int64_t celeb = 0;
        out->user_id = user_id;
        out->handle = dup_str(r->element[0]);
        out->display_name = dup_str(r->element[1]);
        if (!out->display_name)
            out->display_name = strdup("");
        str_i64(r->element[2], &out->followers_count);
        str_i64(r->element[3], &out->following_count);
        str_i64(r->element[4], &out->posts_count);
        str_i64(r->element[5], &celeb);
        out->is_celebrity = celeb == 1;
        *found = out->handle && out->display_name;
        if (!*found)
            fl_user_clear(out);
    }
    freeReplyObject(r);
    return *found || err == FL_OK ? FL_OK : FL_ERR_NOMEM;
}

static bool author_visible(const fl_post_t *p, int64_t viewer, void *arg)
{
    return fl_post_visible(p, viewer, *(const bool *)arg);
}

static fl_err_t r_user_posts(fl_src_t *base, int64_t author, int64_t viewer, bool follows,
                             const fl_pos_t *before, int limit, fl_posts_t *out)
{
    rsrc_t *s = (rsrc_t *)base;
    zset_t set = {0};
    fl_err_t err;

    if ((err = conn(s)) != FL_OK)
        return err;
    snprintf(set.key, sizeof(set.key), "outbox:{%lld}", (long long)author);
    return page(s, &set, 1, before, limit, viewer, author_visible, &follows, out);
}

/* notif:{U} members: like:ACTOR:POST or follow:ACTOR:0 */
static bool parse_notif(const redisReply *m, const redisReply *score, fl_notif_t *n)
{
    char buf[96];
    long long actor, post;
    int64_t ts;

    if (m->type != REDIS_REPLY_STRING || m->len >= sizeof(buf) || !str_i64(score, &ts))
        return false;
    memcpy(buf, m->str, m->len);
    buf[m->len] = '\0';
    if (sscanf(buf, "like:%lld:%lld", &actor, &post) == 2)
        n->kind = FL_NOTIF_LIKE;
    else if (sscanf(buf, "follow:%lld:%lld", &actor, &post) == 2)
        n->kind = FL_NOTIF_FOLLOW, post = 0;
    else
        return false;
    n->created_at = ts;
    n->actor_id = actor;
    n->post_id = post;
    return actor > 0;
}

static fl_err_t r_notifications(fl_src_t *base, int64_t viewer, const fl_notif_t *before, int limit,
                                fl_notifs_t *out)
{
    rsrc_t *s = (rsrc_t *)base;
    redisReply *r;
    fl_err_t err;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    if ((err = conn(s)) != FL_OK)
        return err;
    redisAppendCommand(s->c, "ZREVRANGE notif:{%lld} 0 %d WITHSCORES", (long long)viewer,
                       FL_NOTIF_CAP - 1);
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    if (!(out->v = calloc(got ? got : 1, sizeof(*out->v)))) {
        freeReplyObject(r);
        return FL_ERR_NOMEM;
    }
    for (size_t i = 0; i < got; i++)
        if (parse_notif(r->element[2 * i], r->element[2 * i + 1], &out->v[n]) &&
            (!before || fl_notif_newer(before, &out->v[n])))
            n++;
    freeReplyObject(r);
    fl_notif_sort(out->v, n);
    out->more = n > (size_t)limit;
    out->n = out->more ? (size_t)limit : n;
    return FL_OK;
}

static fl_err_t r_affinity(fl_src_t *base, int64_t viewer, const fl_post_t *posts, size_t n,
                           int64_t *affinity)
{
    rsrc_t *s = (rsrc_t *)base;
    redisReply *r;
    fl_err_t err;

    for (size_t i = 0; i < n; i++)
        affinity[i] = 0;
    if (!n)
        return FL_OK;
    if ((err = conn(s)) != FL_OK)
        return err;
    const char **argv = malloc((n + 2) * sizeof(*argv));
    char(*ids)[24] = malloc(n * sizeof(*ids));
    char key[40];
    if (!argv || !ids) {
        free(argv), free(ids);
        return FL_ERR_NOMEM;
    }
    snprintf(key, sizeof(key), "affinity:{%lld}", (long long)viewer);
    argv[0] = "HMGET";
    argv[1] = key;
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%lld", (long long)posts[i].author_id);
        argv[i + 2] = ids[i];
    }
    redisAppendCommandArgv(s->c, (int)(n + 2), argv, NULL);
    free(argv);
    free(ids);
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < n && i < r->elements; i++)
        str_i64(r->element[i], &affinity[i]);
    freeReplyObject(r);
    return FL_OK;
}

static fl_err_t r_ping(fl_src_t *base)
{
    rsrc_t *s = (rsrc_t *)base;
    redisReply *r;
    fl_err_t err;

    if ((err = conn(s)) != FL_OK)
        return err;
    redisAppendCommand(s->c, "PING");
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    err = r->type == REDIS_REPLY_STATUS ? FL_OK : FL_ERR_UNAVAILABLE;
    freeReplyObject(r);
    return err;
}

static void r_free(fl_src_t *base)
{
    rsrc_t *s = (rsrc_t *)base;
    if (s->c)
        redisFree(s->c);
    free(s);
}

static const fl_src_ops_t redis_ops = {
    .name = "redis",
    .feed = r_feed,
    .post = r_post,
    .follows = r_follows,
    .user = r_user,
    .user_posts = r_user_posts,
    .notifications = r_notifications,
    .affinity = r_affinity,
    .follow_list = NULL,
    .ping = r_ping,
    .free = r_free,
};

fl_src_t *fl_src_redis_new(const fl_topology_t *t, fl_api_cache_t *cache)
{
    rsrc_t *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->base.ops = &redis_ops;
    s->cache = cache;
    fl_sink_store_redis_endpoint(t->endpoints.redis, s->host, sizeof(s->host), &s->port);
    s->db = t->endpoints.redis_db;
    s->timeout_ms = IO_TIMEOUT_MS;
    return &s->base;
}

void fl_src_redis_set_timeout(fl_src_t *src, int ms)
{
    rsrc_t *s = (rsrc_t *)src;

    s->timeout_ms = ms > 0 ? ms : IO_TIMEOUT_MS;
    if (s->c)
        redisSetTimeout(s->c, timeout_tv(s));
}

/* ---- result helpers shared by both sources ---- */

void fl_posts_clear(fl_posts_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        fl_post_clear(&p->v[i]);
    free(p->v);
    memset(p, 0, sizeof(*p));
}

fl_post_t *fl_posts_push(fl_posts_t *p)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        fl_post_t *v = realloc(p->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    memset(&p->v[p->n], 0, sizeof(p->v[0]));
    return &p->v[p->n++];
}

void fl_follows_clear(fl_follows_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].handle);
        free(f->v[i].display_name);
    }
    free(f->v);
    memset(f, 0, sizeof(*f));
}

void fl_notifs_clear(fl_notifs_t *n)
{
    free(n->v);
    memset(n, 0, sizeof(*n));
}

/* ---- GCRA ---- */

/*
 * KEYS[1] the viewer's key; ARGV: emission interval T (us), tolerance tau
 * = (burst - 1) * T (us). The theoretical arrival time (TAT) is kept in
 * microseconds of Redis's clock; a request passes when TAT - now <= tau,
 * and moves TAT on by T. Returns {allowed, remaining, reset_us, retry_us}.
 */
static const char gcra_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T, tau = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or now)\n"
    "if tat < now then tat = now end\n"
    "if tat - now > tau then\n"
    "  return {0, 0, tat - now, tat - now - tau}\n"
    "end\n"
    "local new = tat + T\n"
    "redis.call('SET', KEYS[1], new, 'PX', math.floor((new - now) / 1000) + 1)\n"
    "return {1, math.floor((tau - (new - now)) / T) + 1, new - now, 0}\n";

fl_err_t fl_src_redis_gcra(fl_src_t *base, int64_t viewer, int64_t rate_per_s, int64_t burst,
                           fl_gcra_t *out)
{
    rsrc_t *s = (rsrc_t *)base;
    long long T = 1000000 / (rate_per_s > 0 ? rate_per_s : 1);
    long long tau = (burst > 1 ? burst - 1 : 0) * T;
    redisReply *r;
    fl_err_t err;

    if (T < 1)
        T = 1;
    memset(out, 0, sizeof(*out));
    out->limit = burst > 1 ? burst : 1;
    if ((err = conn(s)) != FL_OK)
        return err;
    if (!s->gcra_sha[0]) {
        unsigned char d[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)gcra_lua, sizeof(gcra_lua) - 1, d);
        for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
            snprintf(s->gcra_sha + 2 * i, 3, "%02x", d[i]);
    }
    /* EVALSHA: Redis neither receives nor hashes the script on each call;
     * a Redis that does not know it yet (restarted) gets it once by EVAL */
    redisAppendCommand(s->c, "EVALSHA %s 1 ratelimit:{%lld} %lld %lld", s->gcra_sha,
                       (long long)viewer, T, tau);
    if ((err = replies(s, &r, 1)) != FL_OK)
        return err;
    if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        redisAppendCommand(s->c, "EVAL %s 1 ratelimit:{%lld} %lld %lld", gcra_lua,
                           (long long)viewer, T, tau);
        if ((err = replies(s, &r, 1)) != FL_OK)
            return err;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        fl_log_warn("api", "rate limit script: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject(r);
        return FL_ERR_UNAVAILABLE;
    }
    out->allowed = r->element[0]->integer == 1;
    out->remaining = r->element[1]->integer;
    out->reset_s = (r->element[2]->integer + 999999) / 1000000;
    out->retry_after_s = (r->element[3]->integer + 999999) / 1000000;
    freeReplyObject(r);
    return FL_OK;
}

/* ---- the Redis sink's marker (health) ---- */

fl_err_t fl_src_redis_offsets(fl_src_t *base, const char *sink, fl_lag_part_t *parts, size_t n,
                              char epoch[FL_MARKER_EPOCH_MAX])
{
    rsrc_t *s = (rsrc_t *)base;
    char why[256];
    fl_err_t err = conn(s);

    epoch[0] = '\0';
    if (err)
        return err;
    err = fl_sink_store_redis_offsets(s->c, sink, parts, n, epoch, FL_MARKER_EPOCH_MAX, why,
                                      sizeof(why));
    if (err == FL_ERR_UNAVAILABLE)
        drop(s, why);
    return err;
}
