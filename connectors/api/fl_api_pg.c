/*
 * fl_api_pg.c - the read API's PostgreSQL source (fl_api_src.h), over the
 * tables the PostgreSQL sink keeps (README "PostgreSQL projection"). It
 * serves every read while Redis is down, and the follower lists always.
 *
 * Its pages equal the Redis source's: a feed is the viewer's feed_items
 * merged with the live, non-private posts of every celebrity the viewer
 * follows (user_counts.is_celebrity, the same fact as the Redis
 * `celebrities` set), each part already filtered and limited inside its
 * own subquery, so that limit + 1 rows come back exactly (the extra row
 * says whether a next page exists). Positions compare as (created_at,
 * id) row values; times travel as epoch milliseconds (bigint) both ways.
 * One known difference: Redis keeps a celebrity's newest outbox_cap posts
 * only, PostgreSQL all of them, so the two differ past that depth.
 *
 * Only prepared statements with parameters; one connection per thread,
 * prepared when it opens. A lost connection is FL_ERR_UNAVAILABLE and is
 * reopened on a later call, at most once per RECONNECT_MS.
 */
#include "fl_api_src.h"
#include "fl_clock.h"
#include "fl_log.h"
#include "fl_sink_store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECONNECT_MS 500
/* no cursor: below 9999-12-31, the latest time timestamptz input takes */
#define TOP_TS 253402300799999LL

/* epoch ms to timestamptz, exactly: an interval times a float is exact only
 * below 2^53 microseconds, so whole seconds and milliseconds go apart */
#define TS(p)                                                                                      \
    "('epoch'::timestamptz + (" p "::bigint / 1000) * interval '1 second' + (" p                   \
    "::bigint % 1000) * interval '1 millisecond')"
#define MS(c) "(extract(epoch FROM " c ") * 1000)::bigint"
#define POST_COLS                                                                                  \
    "p.id, p.user_id, " MS("p.created_at") ", p.content_text, p.privacy, p.reply_to, "             \
                                           "p.likes_count, u.username, u.display_name"

enum {
    Q_FEED,
    Q_POST,
    Q_FOLLOWS,
    Q_USER,
    Q_USER_POSTS,
    Q_NOTIFS,
    Q_AFFINITY,
    Q_FOLLOWERS,
    Q_FOLLOWING,
    Q__COUNT
};

static const struct stmt {
    const char *name;
    const char *sql;
} stmts[Q__COUNT] = {
    [Q_FEED] =
        {"feed",
         "SELECT " POST_COLS " FROM ("
         " (SELECT fi.post_id AS id, fi.created_at FROM feed_items fi"
         "   JOIN posts p ON p.id = fi.post_id AND p.deleted_at IS NULL"
         "    AND (p.privacy <> 'private' OR p.user_id = $1)"
         "  WHERE fi.user_id = $1 AND (fi.created_at, fi.post_id) < (" TS(
             "$2") ", $3)"
                   "  ORDER BY fi.created_at DESC, fi.post_id DESC LIMIT $4)"
                   " UNION"
                   " (SELECT o.id, o.created_at FROM follows f"
                   "   JOIN user_counts c ON c.user_id = f.following_id AND c.is_celebrity"
                   "   CROSS JOIN LATERAL (SELECT id, created_at FROM posts"
                   "     WHERE user_id = f.following_id AND deleted_at IS NULL"
                   "       AND privacy <> 'private' AND (created_at, id) < (" TS(
                       "$2") ", $3)"
                             "     ORDER BY created_at DESC, id DESC LIMIT $4) o"
                             "  WHERE f.follower_id = $1)) c"
                             " JOIN posts p ON p.id = c.id LEFT JOIN users u ON u.id = p.user_id"
                             " ORDER BY c.created_at DESC, c.id DESC LIMIT $4"},
    [Q_POST] = {"post", "SELECT " POST_COLS " FROM posts p LEFT JOIN users u ON u.id = p.user_id"
                        " WHERE p.id = $1 AND p.deleted_at IS NULL"},
    [Q_FOLLOWS] = {"follows", "SELECT 1 FROM follows WHERE follower_id = $1 AND following_id = $2"},
    [Q_USER] = {"user", "SELECT username, display_name, followers_count, following_count,"
                        " posts_count, is_celebrity FROM users WHERE id = $1"},
    [Q_USER_POSTS] = {"user_posts",
                      "SELECT " POST_COLS " FROM posts p LEFT JOIN users u ON u.id = p.user_id"
                      " WHERE p.user_id = $1 AND p.deleted_at IS NULL"
                      "   AND (p.created_at, p.id) < (" TS(
                          "$2") ", $3)"
                                "   AND (p.privacy = 'public' OR p.user_id = $4"
                                "        OR (p.privacy = 'followers' AND $5::boolean))"
                                " ORDER BY p.created_at DESC, p.id DESC LIMIT $6"},
    [Q_NOTIFS] = {"notifs", "SELECT " MS("created_at") ", kind, actor_id, coalesce(post_id, 0)"
                                                       " FROM notifications WHERE user_id = $1"
                                                       " ORDER BY created_at DESC LIMIT $2"},
    [Q_AFFINITY] = {"affinity", "SELECT author_id, likes FROM affinity"
                                " WHERE viewer_id = $1 AND author_id = ANY($2::bigint[])"},
    [Q_FOLLOWERS] =
        {"followers",
         "SELECT f.follower_id, " MS(
             "f.created_at") ", u.username, u.display_name"
                             " FROM follows f LEFT JOIN users u ON u.id = f.follower_id"
                             " WHERE f.following_id = $1"
                             "   AND (f.created_at, f.follower_id) < (" TS(
                                 "$2") ", $3)"
                                       " ORDER BY f.created_at DESC, f.follower_id DESC LIMIT $4"},
    [Q_FOLLOWING] =
        {"following",
         "SELECT f.following_id, " MS(
             "f.created_at") ", u.username, u.display_name"
                             " FROM follows f LEFT JOIN users u ON u.id = f.following_id"
                             " WHERE f.follower_id = $1"
                             "   AND (f.created_at, f.following_id) < (" TS(
                                 "$2") ", $3)"
                                       " ORDER BY f.created_at DESC, f.following_id DESC LIMIT $4"},
};

typedef struct psrc {
    fl_src_t base;
    char *conninfo;
    PGconn *c;
    int64_t next_try_ms;
} psrc_t;

static void drop(psrc_t *s, const char *why)
{
    if (s->c) {
        fl_log_warn("api", "postgresql: %s; reconnecting", why);
        PQfinish(s->c);
        s->c = NULL;
    }
    s->next_try_ms = fl_mono_ms() + RECONNECT_MS;
}

static fl_err_t conn(psrc_t *s)
{
    if (s->c && PQstatus(s->c) == CONNECTION_OK)
        return FL_OK;
    if (s->c)
        drop(s, "connection lost");
    if (fl_mono_ms() < s->next_try_ms)
        return FL_ERR_UNAVAILABLE;
    s->c = PQconnectdb(s->conninfo);
    if (PQstatus(s->c) != CONNECTION_OK) {
        PQfinish(s->c);
        s->c = NULL;
        s->next_try_ms = fl_mono_ms() + RECONNECT_MS;
        return FL_ERR_UNAVAILABLE;
    }
    for (int i = 0; i < Q__COUNT; i++) {
        PGresult *r = PQprepare(s->c, stmts[i].name, stmts[i].sql, 0, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fl_log_error("api", "postgresql: preparing %s: %s", stmts[i].name,
                         PQresultErrorMessage(r));
        PQclear(r);
        if (!ok) {
            drop(s, "cannot prepare the read statements (is the schema migrated?)");
            return FL_ERR_UNAVAILABLE;
        }
    }
    return FL_OK;
}

/* Runs statement q with text parameters; NULL (and the connection checked)
 * when it failed. */
static PGresult *run(psrc_t *s, int q, int n, const char *const *params)
{
    PGresult *r;

    if (conn(s) != FL_OK)
        return NULL;
    r = PQexecPrepared(s->c, stmts[q].name, n, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    fl_log_warn("api", "postgresql %s: %s", stmts[q].name, PQresultErrorMessage(r));
    PQclear(r);
    if (PQstatus(s->c) != CONNECTION_OK)
        drop(s, "connection lost");
    return NULL;
}

static int64_t get_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static char *get_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* A row of POST_COLS into p; false when out of memory. */
static bool fill_post(fl_post_t *p, const PGresult *r, int row)
{
    memset(p, 0, sizeof(*p));
    p->post_id = get_i64(r, row, 0);
    p->author_id = get_i64(r, row, 1);
    p->created_at = get_i64(r, row, 2);
    p->text = get_str(r, row, 3);
    p->visibility = fl_vis_parse(PQgetvalue(r, row, 4));
    p->reply_to = get_i64(r, row, 5);
    p->like_count = get_i64(r, row, 6);
    if (!PQgetisnull(r, row, 7)) {
        p->handle = get_str(r, row, 7);
        p->display_name = get_str(r, row, 8);
        if (!p->handle || !p->display_name)
            return false;
    }
    return p->text != NULL;
}

/* Rows of POST_COLS into out; the row past limit only sets out->more. */
static fl_err_t posts_result(PGresult *r, int limit, fl_posts_t *out)
{
    int rows = PQntuples(r);

    for (int i = 0; i < rows && i < limit; i++) {
        fl_post_t *p = fl_posts_push(out);
        if (!p || !fill_post(p, r, i)) {
            PQclear(r);
            fl_posts_clear(out);
            return FL_ERR_NOMEM;
        }
    }
    out->more = rows > limit;
    PQclear(r);
    return FL_OK;
}

static void before_params(const fl_pos_t *before, char ts[24], char id[24])
{
    snprintf(ts, 24, "%lld", before ? (long long)before->ts : TOP_TS);
    snprintf(id, 24, "%lld", before ? (long long)before->id : (long long)INT64_MAX);
}

static fl_err_t p_feed(fl_src_t *base, int64_t viewer, const fl_pos_t *before, int limit,
                       fl_posts_t *out)
{
    char v[24], ts[24], id[24], lim[16];
    const char *params[] = {v, ts, id, lim};
    PGresult *r;

    snprintf(v, sizeof(v), "%lld", (long long)viewer);
    before_params(before, ts, id);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    if (!(r = run((psrc_t *)base, Q_FEED, 4, params)))
        return FL_ERR_UNAVAILABLE;
    return posts_result(r, limit, out);
}

static fl_err_t p_post(fl_src_t *base, int64_t post_id, fl_post_t *out, bool *found)
{
    char id[24];
    const char *params[] = {id};
    PGresult *r;

    *found = false;
    snprintf(id, sizeof(id), "%lld", (long long)post_id);
    if (!(r = run((psrc_t *)base, Q_POST, 1, params)))
        return FL_ERR_UNAVAILABLE;
    if (PQntuples(r) == 1) {
        if (!fill_post(out, r, 0)) {
            fl_post_clear(out);
            PQclear(r);
            return FL_ERR_NOMEM;
        }
        *found = true;
    }
    PQclear(r);
    return FL_OK;
}

static fl_err_t p_follows(fl_src_t *base, int64_t viewer, int64_t author, bool *yes)
{
    char v[24], a[24];
    const char *params[] = {v, a};
    PGresult *r;

    snprintf(v, sizeof(v), "%lld", (long long)viewer);
    snprintf(a, sizeof(a), "%lld", (long long)author);
    if (!(r = run((psrc_t *)base, Q_FOLLOWS, 2, params)))
        return FL_ERR_UNAVAILABLE;
    *yes = PQntuples(r) > 0;
    PQclear(r);
    return FL_OK;
}

static fl_err_t p_user(fl_src_t *base, int64_t user_id, fl_user_t *out, bool *found)
{
    char id[24];
    const char *params[] = {id};
    PGresult *r;

    *found = false;
    memset(out, 0, sizeof(*out));
    snprintf(id, sizeof(id), "%lld", (long long)user_id);
    if (!(r = run((psrc_t *)base, Q_USER, 1, params)))
        return FL_ERR_UNAVAILABLE;
    if (PQntuples(r) == 1) {
        out->user_id = user_id;
        out->handle = get_str(r, 0, 0);
        out->display_name = get_str(r, 0, 1);
        out->followers_count = get_i64(r, 0, 2);
        out->following_count = get_i64(r, 0, 3);
        out->posts_count = get_i64(r, 0, 4);
        out->is_celebrity = !strcmp(PQgetvalue(r, 0, 5), "t");
        *found = out->handle && out->display_name;
        if (!*found) {
            fl_user_clear(out);
            PQclear(r);
            return FL_ERR_NOMEM;
        }
    }
    PQclear(r);
    return FL_OK;
}

static fl_err_t p_user_posts(fl_src_t *base, int64_t author, int64_t viewer, bool follows,
                             const fl_pos_t *before, int limit, fl_posts_t *out)
{
    char a[24], ts[24], id[24], v[24], lim[16];
    const char *params[] = {a, ts, id, v, follows ? "true" : "false", lim};
    PGresult *r;

    snprintf(a, sizeof(a), "%lld", (long long)author);
    before_params(before, ts, id);
    snprintf(v, sizeof(v), "%lld", (long long)viewer);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    if (!(r = run((psrc_t *)base, Q_USER_POSTS, 6, params)))
        return FL_ERR_UNAVAILABLE;
    return posts_result(r, limit, out);
}

static fl_err_t p_notifications(fl_src_t *base, int64_t viewer, const fl_notif_t *before, int limit,
                                fl_notifs_t *out)
{
    char v[24], cap[16];
    const char *params[] = {v, cap};
    PGresult *r;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    snprintf(v, sizeof(v), "%lld", (long long)viewer);
    snprintf(cap, sizeof(cap), "%d", FL_NOTIF_CAP);
    if (!(r = run((psrc_t *)base, Q_NOTIFS, 2, params)))
        return FL_ERR_UNAVAILABLE;
    int rows = PQntuples(r);
    if (!(out->v = calloc(rows ? (size_t)rows : 1, sizeof(*out->v)))) {
        PQclear(r);
        return FL_ERR_NOMEM;
    }
    for (int i = 0; i < rows; i++) {
        fl_notif_t *x = &out->v[n];
        x->created_at = get_i64(r, i, 0);
        x->kind = !strcmp(PQgetvalue(r, i, 1), "like") ? FL_NOTIF_LIKE : FL_NOTIF_FOLLOW;
        x->actor_id = get_i64(r, i, 2);
        x->post_id = get_i64(r, i, 3);
        if (!before || fl_notif_newer(before, x))
            n++;
    }
    PQclear(r);
    fl_notif_sort(out->v, n);
    out->more = n > (size_t)limit;
    out->n = out->more ? (size_t)limit : n;
    return FL_OK;
}

static fl_err_t p_affinity(fl_src_t *base, int64_t viewer, const fl_post_t *posts, size_t n,
                           int64_t *affinity)
{
    char v[24];
    char *arr = malloc(n * 21 + 3);
    const char *params[] = {v, arr};
    size_t len = 0;
    PGresult *r;

    for (size_t i = 0; i < n; i++)
        affinity[i] = 0;
    if (!arr)
        return FL_ERR_NOMEM;
    snprintf(v, sizeof(v), "%lld", (long long)viewer);
    arr[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(arr + len, "%s%lld", i ? "," : "", (long long)posts[i].author_id);
    arr[len++] = '}';
    arr[len] = '\0';
    r = run((psrc_t *)base, Q_AFFINITY, 2, params);
    free(arr);
    if (!r)
        return FL_ERR_UNAVAILABLE;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t a = get_i64(r, row, 0), likes = get_i64(r, row, 1);
        for (size_t i = 0; i < n; i++)
            if (posts[i].author_id == a)
                affinity[i] = likes;
    }
    PQclear(r);
    return FL_OK;
}

static fl_err_t p_follow_list(fl_src_t *base, int64_t user, int dir, const fl_pos_t *before,
                              int limit, fl_follows_t *out)
{
    char u[24], ts[24], id[24], lim[16];
    const char *params[] = {u, ts, id, lim};
    PGresult *r;

    memset(out, 0, sizeof(*out));
    snprintf(u, sizeof(u), "%lld", (long long)user);
    before_params(before, ts, id);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    if (!(r = run((psrc_t *)base, dir ? Q_FOLLOWING : Q_FOLLOWERS, 4, params)))
        return FL_ERR_UNAVAILABLE;
    int rows = PQntuples(r);
    if (!(out->v = calloc(rows ? (size_t)rows : 1, sizeof(*out->v)))) {
        PQclear(r);
        return FL_ERR_NOMEM;
    }
    for (int i = 0; i < rows && i < limit; i++) {
        fl_follow_t *f = &out->v[out->n++];
        f->pos = (fl_pos_t){get_i64(r, i, 1), get_i64(r, i, 0)};
        f->handle = get_str(r, i, 2);
        f->display_name = get_str(r, i, 3);
    }
    out->more = rows > limit;
    PQclear(r);
    return FL_OK;
}

static fl_err_t p_ping(fl_src_t *base)
{
    psrc_t *s = (psrc_t *)base;
    PGresult *r;
    fl_err_t err;

    if ((err = conn(s)) != FL_OK)
        return err;
    r = PQexec(s->c, "SELECT 1");
    err = PQresultStatus(r) == PGRES_TUPLES_OK ? FL_OK : FL_ERR_UNAVAILABLE;
    PQclear(r);
    if (err != FL_OK)
        drop(s, "ping failed");
    return err;
}

static void p_free(fl_src_t *base)
{
    psrc_t *s = (psrc_t *)base;
    if (s->c)
        PQfinish(s->c);
    free(s->conninfo);
    free(s);
}

static const fl_src_ops_t pg_ops = {
    .name = "postgres",
    .feed = p_feed,
    .post = p_post,
    .follows = p_follows,
    .user = p_user,
    .user_posts = p_user_posts,
    .notifications = p_notifications,
    .affinity = p_affinity,
    .follow_list = p_follow_list,
    .ping = p_ping,
    .free = p_free,
};

fl_src_t *fl_src_pg_new(const fl_topology_t *t)
{
    psrc_t *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->base.ops = &pg_ops;
    /* a short connect timeout and a statement timeout: a request waits for
     * a stalled server at most this long */
    if (!(s->conninfo = fl_sink_store_pg_conninfo(&t->endpoints, 2000))) {
        free(s);
        return NULL;
    }
    return &s->base;
}

/* ---- the PostgreSQL sink's offsets (health) ---- */

fl_err_t fl_src_pg_offsets(fl_src_t *base, const char *sink, fl_lag_part_t *parts, size_t n)
{
    psrc_t *s = (psrc_t *)base;
    char why[256];
    fl_err_t err;

    if (conn(s) != FL_OK)
        return FL_ERR_UNAVAILABLE;
    err = fl_sink_store_pg_offsets(s->c, sink, parts, n, why, sizeof(why));
    if (err == FL_ERR_UNAVAILABLE)
        drop(s, "connection lost");
    return err;
}
