/*
 * fl_api_mastodon.c - the read API's Mastodon-compatible surface under
 * /api/v1/ (README "Mastodon-compatible surface"), so that stock Mastodon
 * clients read feedline: the home timeline, statuses, accounts, an
 * account's statuses, notifications, verify_credentials and the instance.
 * Requests pass the same checks as /v1 (token, rate limit, sizes) and read
 * through the same sources with the same failover (fl__api_first_source);
 * only the parameters (fl_masto_model.h), the entities and the error shape
 * {"error":"..."} are Mastodon's. The pure mappings live in
 * fl_masto_model.c.
 *
 * Paging. Mastodon pages by ids (max_id, since_id, min_id) and a Link
 * header; feedline's lists are ordered by the position (created_at, id).
 * An id parameter is placed by reading that post: its position is
 * (created_at, post id), and a page holds what sorts strictly below
 * max_id's position and strictly above since_id's or min_id's. An id this
 * server cannot place (no such post, deleted, or one the viewer may not
 * read) is a 400. The sources page downwards only, so the windows above a
 * position are read downwards too, exactly: since_id takes the newest page
 * and cuts it at the position; min_id (the items just above the position,
 * for "load newer") walks down from the top (or max_id) in pages of
 * WALK_PAGE until it reaches the position, keeping the last `limit` items;
 * past WALK_MAX items it stops and serves the window it has (then "just
 * above" is not exact: the README says so). Every page is newest first.
 * Link: rel="next" (max_id = the last id) when something is known to lie
 * below the page, rel="prev" (min_id = the first id) on every non-empty
 * page, as Mastodon writes them.
 *
 * Each status carries its author's Account with counts: authors are read
 * once per request (a small cache), one user read each.
 */
#include "fl_api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALK_PAGE 100
#define WALK_MAX  2000
#define BASE_MAX  300
/* what Mastodon.py and other clients parse: a Mastodon version first */
#define MASTO_VERSION "4.0.0 (compatible; feedline)"

/* ---- matching ---- */

bool fl__api_masto_match(const char *path, fl_route_t *route, int64_t *path_id, bool *auth)
{
    char buf[520];
    size_t n = strlen(path);
    const char *p;

    *path_id = 0;
    *auth = true;
    if (n >= sizeof(buf) || n < 9)
        return false;
    memcpy(buf, path, n + 1);
    if (buf[n - 1] == '/')
        buf[n - 1] = '\0';
    if (!strcmp(buf, "/api/v2/instance")) {
        *route = R_M_INSTANCE_V2;
        *auth = false;
        return true;
    }
    if (strncmp(buf, "/api/v1/", 8))
        return false;
    p = buf + 8;
    if (!strcmp(p, "timelines/home")) {
        *route = R_M_HOME;
        return true;
    }
    if (!strcmp(p, "notifications")) {
        *route = R_M_NOTIFICATIONS;
        return true;
    }
    if (!strcmp(p, "instance")) {
        *route = R_M_INSTANCE;
        *auth = false;
        return true;
    }
    if (!strcmp(p, "streaming")) {
        *route = R_M_STREAM_WS;
        return true;
    }
    if (!strcmp(p, "streaming/user")) {
        *route = R_M_STREAM_SSE;
        return true;
    }
    if (!strcmp(p, "streaming/health")) {
        *route = R_M_STREAM_HEALTH;
        *auth = false;
        return true;
    }
    if (!strcmp(p, "accounts/verify_credentials")) {
        *route = R_M_VERIFY;
        return true;
    }
    if (!strncmp(p, "statuses/", 9)) {
        p += 9;
        *route = R_M_STATUS;
        return fl__api_take_id(&p, path_id) && !*p;
    }
    if (strncmp(p, "accounts/", 9))
        return false;
    p += 9;
    if (!fl__api_take_id(&p, path_id))
        return false;
    if (!*p) {
        *route = R_M_ACCOUNT;
        return true;
    }
    *route = R_M_ACCOUNT_STATUSES;
    return !strcmp(p, "/statuses");
}

/* ---- entities ---- */

/* "http://HOST": the request's Host when it is well-formed, else the
 * address the API listens on. */
void fl__api_masto_base(const fl_api_t *api, struct MHD_Connection *conn,
                        char out[FL_MASTO_BASE_MAX])
{
    const char *h = conn ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host") : NULL;

    if (!fl_masto_host_ok(h))
        h = api->topo->endpoints.api;
    snprintf(out, FL_MASTO_BASE_MAX, "http://%s", h);
}

static void base_url(const fl_api_req_t *q, char out[BASE_MAX])
{
    fl__api_masto_base(q->api, q->conn, out);
}

static json_t *time_json(int64_t ms)
{
    char buf[FL_MASTO_TIME_MAX];
    fl_masto_time(ms, buf);
    return json_string(buf);
}

static json_t *fmt_json(const char *fmt, const char *a, const char *b)
{
    char buf[BASE_MAX + 128];
    snprintf(buf, sizeof(buf), fmt, a, b);
    return json_string(buf);
}

/* An Account. u: the user as read (NULL when not registered: then the
 * handle the post carried, or "user{ID}", and no counts). */
static json_t *account_json(const char *base, int64_t id, const fl_user_t *u, const char *handle,
                            const char *display_name)
{
    json_t *o = json_object();
    char fallback[32];

    if (u) {
        handle = u->handle;
        display_name = u->display_name;
    }
    if (!handle) {
        snprintf(fallback, sizeof(fallback), "user%lld", (long long)id);
        handle = fallback;
    }
    json_object_set_new(o, "id", fl__api_id_json(id));
    json_object_set_new(o, "username", json_string(handle));
    json_object_set_new(o, "acct", json_string(handle));
    json_object_set_new(o, "display_name", json_string(display_name ? display_name : ""));
    json_object_set_new(o, "locked", json_false());
    json_object_set_new(o, "bot", json_false());
    json_object_set_new(o, "discoverable", json_true());
    json_object_set_new(o, "group", json_false());
    /* feedline keeps no registration time */
    json_object_set_new(o, "created_at", time_json(0));
    json_object_set_new(o, "note", json_string(""));
    json_object_set_new(o, "url", fmt_json("%s/@%s", base, handle));
    json_object_set_new(o, "avatar", fmt_json("%s%s", base, "/avatars/original/missing.png"));
    json_object_set_new(o, "avatar_static",
                        fmt_json("%s%s", base, "/avatars/original/missing.png"));
    json_object_set_new(o, "header", fmt_json("%s%s", base, "/headers/original/missing.png"));
    json_object_set_new(o, "header_static",
                        fmt_json("%s%s", base, "/headers/original/missing.png"));
    json_object_set_new(o, "followers_count", json_integer(u ? u->followers_count : 0));
    json_object_set_new(o, "following_count", json_integer(u ? u->following_count : 0));
    json_object_set_new(o, "statuses_count", json_integer(u ? u->posts_count : 0));
    json_object_set_new(o, "last_status_at", json_null());
    json_object_set_new(o, "emojis", json_array());
    json_object_set_new(o, "fields", json_array());
    return o;
}

/* A Status; author: the author as read, or NULL. NULL when out of memory. */
static json_t *status_json(const char *base, const fl_post_t *p, const fl_user_t *author)
{
    json_t *o = json_object();
    char *html = fl_masto_html(p->text);
    char url[BASE_MAX + 96], id[24];
    const char *handle = author ? author->handle : p->handle;
    char fallback[32];

    if (!html) {
        json_decref(o);
        return NULL;
    }
    if (!handle) {
        snprintf(fallback, sizeof(fallback), "user%lld", (long long)p->author_id);
        handle = fallback;
    }
    snprintf(id, sizeof(id), "%lld", (long long)p->post_id);
    snprintf(url, sizeof(url), "%s/@%s/%s", base, handle, id);
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "created_at", time_json(p->created_at));
    json_object_set_new(o, "in_reply_to_id",
                        p->reply_to ? fl__api_id_json(p->reply_to) : json_null());
    /* the replied-to post's author is not read: null, as Mastodon allows */
    json_object_set_new(o, "in_reply_to_account_id", json_null());
    json_object_set_new(o, "sensitive", json_false());
    json_object_set_new(o, "spoiler_text", json_string(""));
    json_object_set_new(o, "visibility", json_string(fl_masto_visibility(p->visibility)));
    json_object_set_new(o, "language", json_null());
    json_object_set_new(o, "uri", json_string(url));
    json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "replies_count", json_integer(0));
    json_object_set_new(o, "reblogs_count", json_integer(0));
    json_object_set_new(o, "favourites_count", json_integer(p->like_count));
    json_object_set_new(o, "favourited", json_false());
    json_object_set_new(o, "reblogged", json_false());
    json_object_set_new(o, "muted", json_false());
    json_object_set_new(o, "bookmarked", json_false());
    json_object_set_new(o, "content", json_string(html));
    json_object_set_new(o, "reblog", json_null());
    json_object_set_new(o, "application", json_null());
    json_object_set_new(o, "account",
                        account_json(base, p->author_id, author, p->handle, p->display_name));
    json_object_set_new(o, "media_attachments", json_array());
    json_object_set_new(o, "mentions", json_array());
    json_object_set_new(o, "tags", json_array());
    json_object_set_new(o, "emojis", json_array());
    json_object_set_new(o, "card", json_null());
    json_object_set_new(o, "poll", json_null());
    free(html);
    return o;
}

json_t *fl__api_masto_status(const char *base, const fl_post_t *p)
{
    return status_json(base, p, NULL);
}

/* ---- the authors of one response, read once each ---- */

typedef struct acct {
    int64_t id;
    bool found;
    fl_user_t u;
} acct_t;

typedef struct accts {
    acct_t *v;
    size_t n, cap;
} accts_t;

static void accts_clear(accts_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        fl_user_clear(&a->v[i].u);
    free(a->v);
    memset(a, 0, sizeof(*a));
}

/* *out: the user, or NULL when not registered. */
static fl_err_t accts_get(accts_t *a, fl_src_t *src, int64_t id, const fl_user_t **out)
{
    fl_err_t err;

    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].id == id) {
            *out = a->v[i].found ? &a->v[i].u : NULL;
            return FL_OK;
        }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 8;
        acct_t *v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return FL_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    acct_t *slot = &a->v[a->n];
    memset(slot, 0, sizeof(*slot));
    slot->id = id;
    if ((err = src->ops->user(src, id, &slot->u, &slot->found)) != FL_OK)
        return err;
    a->n++;
    *out = slot->found ? &slot->u : NULL;
    return FL_OK;
}

/* ---- paging ---- */

/* A list of posts, newest first, strictly below before (NULL: the top). */
typedef fl_err_t (*list_fn)(fl_src_t *src, const void *arg, const fl_pos_t *before, int limit,
                            fl_posts_t *out);

static fl_err_t home_list(fl_src_t *src, const void *arg, const fl_pos_t *before, int limit,
                          fl_posts_t *out)
{
    return src->ops->feed(src, *(const int64_t *)arg, before, limit, out);
}

typedef struct author_arg {
    int64_t author, viewer;
    bool follows;
} author_arg_t;

static fl_err_t author_list(fl_src_t *src, const void *arg, const fl_pos_t *before, int limit,
                            fl_posts_t *out)
{
    const author_arg_t *a = arg;
    return src->ops->user_posts(src, a->author, a->viewer, a->follows, before, limit, out);
}

/* The position of the post named by id, when the viewer may read it;
 * *placed false otherwise. */
static fl_err_t place(fl_api_req_t *q, fl_src_t *src, const char *id, fl_pos_t *pos, bool *placed)
{
    fl_post_t p = {0};
    bool found = false;
    int64_t post_id;
    fl_err_t err;

    *placed = false;
    if (!fl_id_parse(id, &post_id))
        return FL_OK;
    if ((err = src->ops->post(src, post_id, &p, &found)) == FL_OK && found)
        err = fl__api_may_read(q, src, &p, placed);
    if (*placed)
        *pos = (fl_pos_t){p.created_at, p.post_id};
    fl_post_clear(&p);
    return err;
}

static fl_pos_t post_pos(const fl_post_t *p)
{
    return (fl_pos_t){p->created_at, p->post_id};
}

/* Moves *p to the end of out, keeping at most limit items (the newest
 * goes). */
static fl_err_t keep_last(fl_posts_t *out, fl_post_t *p, int limit)
{
    fl_post_t *slot;

    if (out->n == (size_t)limit) {
        fl_post_clear(&out->v[0]);
        memmove(out->v, out->v + 1, (out->n - 1) * sizeof(*out->v));
        out->n--;
    }
    if (!(slot = fl_posts_push(out)))
        return FL_ERR_NOMEM;
    *slot = *p;
    memset(p, 0, sizeof(*p));
    return FL_OK;
}

/* The min_id window: the limit items just above after (below before),
 * walking down. *below: something lies below the window. */
static fl_err_t walk_up_to(fl_src_t *src, list_fn fn, const void *arg, const fl_pos_t *before,
                           fl_pos_t after, int limit, fl_posts_t *out, bool *below)
{
    fl_posts_t pg = {0};
    fl_pos_t cur;
    size_t walked = 0;
    fl_err_t err = FL_OK;

    *below = false;
    for (bool done = false; !done;) {
        if ((err = fn(src, arg, before, WALK_PAGE, &pg)) != FL_OK)
            break;
        for (size_t i = 0; i < pg.n && !done; i++) {
            if (!fl_pos_newer(post_pos(&pg.v[i]), after)) {
                done = *below = true;
            } else if ((err = keep_last(out, &pg.v[i], limit)) != FL_OK) {
                goto out;
            }
            walked++;
        }
        if (pg.n) {
            cur = post_pos(&pg.v[pg.n - 1]);
            before = &cur;
        }
        if (!done && (!pg.more || !pg.n))
            done = true;
        else if (!done && walked >= WALK_MAX)
            done = *below = true;
        fl_posts_clear(&pg);
    }
out:
    fl_posts_clear(&pg);
    if (err != FL_OK)
        fl_posts_clear(out);
    return err;
}

/* One page of a list by max_id / since_id / min_id. *bad names the
 * parameter that could not be placed (nothing read then). */
static fl_err_t window(fl_api_req_t *q, fl_src_t *src, list_fn fn, const void *arg, fl_posts_t *out,
                       bool *below, const char **bad)
{
    const fl_masto_query_t *m = &q->mquery;
    const char *lo = m->min_id[0] ? m->min_id : m->since_id[0] ? m->since_id : NULL;
    fl_pos_t before, after;
    bool placed = true;
    fl_err_t err;

    *bad = NULL;
    if (m->max_id[0] && ((err = place(q, src, m->max_id, &before, &placed)) != FL_OK || !placed)) {
        *bad = "max_id";
        return err;
    }
    if (lo && ((err = place(q, src, lo, &after, &placed)) != FL_OK || !placed)) {
        *bad = lo == m->min_id ? "min_id" : "since_id";
        return err;
    }
    const fl_pos_t *b = m->max_id[0] ? &before : NULL;
    if (lo == m->min_id && lo)
        return walk_up_to(src, fn, arg, b, after, m->limit, out, below);
    if ((err = fn(src, arg, b, m->limit, out)) != FL_OK) {
        fl_posts_clear(out);
        return err;
    }
    *below = out->more;
    if (!lo)
        return FL_OK;
    /* since_id: the newest page, cut at the position */
    for (size_t i = 0; i < out->n; i++) {
        if (fl_pos_newer(post_pos(&out->v[i]), after))
            continue;
        for (size_t j = i; j < out->n; j++)
            fl_post_clear(&out->v[j]);
        out->n = i;
        *below = true;
        break;
    }
    return FL_OK;
}

/* The Link header of a page whose first and last ids are given. */
static char *link_header(const fl_api_req_t *q, const char *base, const char *first,
                         const char *last, bool next)
{
    char *s = NULL;
    int limit = q->mquery.limit;
    int n;

    if (next)
        n = asprintf(&s,
                     "<%s%s?limit=%d&max_id=%s>; rel=\"next\", <%s%s?limit=%d&min_id=%s>; "
                     "rel=\"prev\"",
                     base, q->path, limit, last, base, q->path, limit, first);
    else
        n = asprintf(&s, "<%s%s?limit=%d&min_id=%s>; rel=\"prev\"", base, q->path, limit, first);
    return n < 0 ? NULL : s;
}

static void bad_param(fl_api_resp_t *r, const char *param)
{
    fl__api_error(r, 400, "bad_request",
                  "%s names no status this server can place (missing, deleted or not visible)",
                  param);
}

/* A page of statuses from fn, rendered with its Link header. */
static fl_err_t statuses_page(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r, list_fn fn,
                              const void *arg)
{
    fl_posts_t ps = {0};
    accts_t ac = {0};
    bool below = false;
    const char *bad;
    char base[BASE_MAX], first[24], last[24];
    json_t *arr = NULL;
    fl_err_t err;

    if (q->mquery.pinned) {
        /* feedline pins nothing */
        fl__api_json(r, json_array());
        return FL_OK;
    }
    if ((err = window(q, src, fn, arg, &ps, &below, &bad)) != FL_OK)
        goto out;
    if (bad) {
        bad_param(r, bad);
        goto out;
    }
    base_url(q, base);
    arr = json_array();
    for (size_t i = 0; i < ps.n; i++) {
        const fl_user_t *author;
        json_t *s;
        if ((err = accts_get(&ac, src, ps.v[i].author_id, &author)) != FL_OK)
            goto out;
        if (!(s = status_json(base, &ps.v[i], author))) {
            err = FL_ERR_NOMEM;
            goto out;
        }
        json_array_append_new(arr, s);
    }
    fl__api_json(r, arr);
    arr = NULL;
    if (ps.n) {
        snprintf(first, sizeof(first), "%lld", (long long)ps.v[0].post_id);
        snprintf(last, sizeof(last), "%lld", (long long)ps.v[ps.n - 1].post_id);
        r->link = link_header(q, base, first, last, below);
    }
out:
    json_decref(arr);
    fl_posts_clear(&ps);
    accts_clear(&ac);
    return err;
}

/* ---- routes: each reads through src and renders into r, or returns the
 * source's error with r untouched ---- */

static fl_err_t home(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    return statuses_page(q, src, r, home_list, &q->viewer);
}

static fl_err_t account_statuses(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    author_arg_t a = {.author = q->path_id, .viewer = q->viewer};
    fl_user_t u = {0};
    bool found = false;
    fl_err_t err;

    if ((err = src->ops->user(src, q->path_id, &u, &found)) != FL_OK)
        return err;
    fl_user_clear(&u);
    if (!found) {
        fl__api_error(r, 404, "not_found", "Record not found");
        return FL_OK;
    }
    if (q->path_id != q->viewer &&
        (err = src->ops->follows(src, q->viewer, q->path_id, &a.follows)) != FL_OK)
        return err;
    return statuses_page(q, src, r, author_list, &a);
}

static fl_err_t status(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    fl_post_t p = {0};
    accts_t ac = {0};
    const fl_user_t *author = NULL;
    bool found = false, visible = false;
    char base[BASE_MAX];
    json_t *s;
    fl_err_t err;

    if ((err = src->ops->post(src, q->path_id, &p, &found)) != FL_OK ||
        (found && (err = fl__api_may_read(q, src, &p, &visible)) != FL_OK))
        goto out;
    if (!found || !visible) {
        fl__api_error(r, 404, "not_found", "Record not found");
        goto out;
    }
    if ((err = accts_get(&ac, src, p.author_id, &author)) != FL_OK)
        goto out;
    base_url(q, base);
    if (!(s = status_json(base, &p, author)))
        err = FL_ERR_NOMEM;
    else
        fl__api_json(r, s);
out:
    fl_post_clear(&p);
    accts_clear(&ac);
    return err;
}

/* An account; verify: the viewer's own, with its source (CredentialAccount),
 * also before the viewer has a profile. */
static fl_err_t account(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r, int64_t id, bool verify)
{
    fl_user_t u = {0};
    bool found = false;
    char base[BASE_MAX];
    fl_err_t err;

    if ((err = src->ops->user(src, id, &u, &found)) != FL_OK)
        return err;
    if (!found && !verify) {
        fl__api_error(r, 404, "not_found", "Record not found");
        return FL_OK;
    }
    /* a viewer with a valid token but no profile yet still logs in */
    base_url(q, base);
    json_t *o = account_json(base, id, found ? &u : NULL, NULL, NULL);
    if (verify)
        json_object_set_new(o, "source",
                            json_pack("{s:s,s:b,s:n,s:s,s:[],s:i}", "privacy", "public",
                                      "sensitive", 0, "language", "note", "", "fields",
                                      "follow_requests_count", 0));
    fl__api_json(r, o);
    fl_user_clear(&u);
    return FL_OK;
}

/* Notifications: the newest FL_NOTIF_CAP below max_id are read at once,
 * then windowed here like statuses; a like of a post that is gone is left
 * out (Mastodon drops those too). */
static fl_err_t notifications(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    const fl_masto_query_t *m = &q->mquery;
    const char *lo = m->min_id[0] ? m->min_id : m->since_id[0] ? m->since_id : NULL;
    fl_notif_t before, after;
    fl_notifs_t ns = {0};
    fl_post_t posts[FL_MASTO_LIMIT_MAX];
    size_t idx[FL_MASTO_LIMIT_MAX], k = 0, cand = 0, oldest = 0;
    accts_t ac = {0};
    char base[BASE_MAX], first[FL_MASTO_NOTIF_ID_LEN + 1], last[FL_MASTO_NOTIF_ID_LEN + 1];
    bool min_mode = lo && lo == m->min_id;
    json_t *arr = NULL;
    fl_err_t err;

    memset(posts, 0, sizeof(posts));
    if ((m->max_id[0] && !fl_masto_notif_id_parse(m->max_id, &before)) ||
        (lo && !fl_masto_notif_id_parse(lo, &after))) {
        fl__api_error(r, 400, "bad_request", "an id parameter is not a notification id");
        return FL_OK;
    }
    if ((err = src->ops->notifications(src, q->viewer, m->max_id[0] ? &before : NULL, FL_NOTIF_CAP,
                                       &ns)) != FL_OK)
        goto out;
    while (cand < ns.n && (!lo || fl_notif_newer(&ns.v[cand], &after)))
        cand++; /* ns.v[0..cand): above the lower bound, newest first */
    for (size_t t = 0; t < cand && k < (size_t)m->limit; t++) {
        size_t i = min_mode ? cand - 1 - t : t;
        bool found = true;
        if (ns.v[i].kind == FL_NOTIF_LIKE) {
            err = src->ops->post(src, ns.v[i].post_id, &posts[k], &found);
            if (err != FL_OK)
                goto out;
            if (!found)
                fl_post_clear(&posts[k]);
        }
        if (found)
            idx[k++] = i;
    }
    if (min_mode) /* collected oldest first: present newest first */
        for (size_t a = 0, b = k ? k - 1 : 0; a < b; a++, b--) {
            fl_post_t tp = posts[a];
            size_t ti = idx[a];
            posts[a] = posts[b], posts[b] = tp;
            idx[a] = idx[b], idx[b] = ti;
        }
    base_url(q, base);
    arr = json_array();
    for (size_t j = 0; j < k; j++) {
        const fl_notif_t *n = &ns.v[idx[j]];
        const fl_user_t *actor, *author;
        json_t *o = json_object(), *s;
        char id[FL_MASTO_NOTIF_ID_LEN + 1];
        json_array_append_new(arr, o);
        if ((err = accts_get(&ac, src, n->actor_id, &actor)) != FL_OK)
            goto out;
        fl_masto_notif_id(n, id);
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "type",
                            json_string(n->kind == FL_NOTIF_LIKE ? "favourite" : "follow"));
        json_object_set_new(o, "created_at", time_json(n->created_at));
        json_object_set_new(o, "account", account_json(base, n->actor_id, actor, NULL, NULL));
        if (n->kind != FL_NOTIF_LIKE)
            continue;
        if ((err = accts_get(&ac, src, posts[j].author_id, &author)) != FL_OK)
            goto out;
        if (!(s = status_json(base, &posts[j], author))) {
            err = FL_ERR_NOMEM;
            goto out;
        }
        json_object_set_new(o, "status", s);
    }
    if (k)
        oldest = idx[k - 1];
    fl__api_json(r, arr);
    arr = NULL;
    if (k) {
        fl_masto_notif_id(&ns.v[idx[0]], first);
        fl_masto_notif_id(&ns.v[oldest], last);
        r->link = link_header(q, base, first, last, oldest + 1 < ns.n || ns.more);
    }
out:
    json_decref(arr);
    for (size_t j = 0; j < FL_MASTO_LIMIT_MAX; j++)
        fl_post_clear(&posts[j]);
    fl_notifs_clear(&ns);
    accts_clear(&ac);
    return err;
}

/* Instance (v1): what clients read before anything else. Nothing here is
 * read from a store; stats are not kept (zeros). */
static void instance(fl_api_req_t *q, fl_api_resp_t *r)
{
    char base[BASE_MAX];
    base_url(q, base);
    const char *host = base + 7; /* past "http://" */
    json_t *streaming = fmt_json("ws://%s%s", host, "");

    fl__api_json(
        r,
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:o},s:{s:i,s:i,s:i},s:n,s:[s],s:b,s:b,s:b,"
                  "s:{s:{s:i},s:{s:i,s:i,s:i},s:{s:[],s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i}},"
                  "s:n,s:[]}",
                  "uri", host, "title", "feedline", "short_description",
                  "A feedline news feed, read through the Mastodon API", "description",
                  "A feedline news feed, read through the Mastodon API (read only)", "email", "",
                  "version", MASTO_VERSION, "urls", "streaming_api", streaming, "stats",
                  "user_count", 0, "status_count", 0, "domain_count", 0, "thumbnail", "languages",
                  "en", "registrations", 0, "approval_required", 0, "invites_enabled", 0,
                  "configuration", "accounts", "max_featured_tags", 0, "statuses", "max_characters",
                  500, "max_media_attachments", 0, "characters_reserved_per_url", 23,
                  "media_attachments", "supported_mime_types", "image_size_limit", 0,
                  "image_matrix_limit", 0, "video_size_limit", 0, "video_frame_rate_limit", 0,
                  "video_matrix_limit", 0, "polls", "max_options", 0, "max_characters_per_option",
                  0, "min_expiration", 0, "max_expiration", 0, "contact_account", "rules"));
}

/* Instance (v2), which clients of Mastodon 4 read instead. */
static void instance_v2(fl_api_req_t *q, fl_api_resp_t *r)
{
    char base[BASE_MAX];
    base_url(q, base);
    const char *host = base + 7;
    json_t *streaming = fmt_json("ws://%s%s", host, "");

    fl__api_json(r, json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:{s:i}},s:{s:s},s:[s],"
                              "s:{s:{s:o},s:{s:i},s:{s:i,s:i,s:i},s:{s:b}},"
                              "s:{s:b,s:b,s:n},s:{s:s,s:n},s:[]}",
                              "domain", host, "title", "feedline", "version", MASTO_VERSION,
                              "source_url", "", "description",
                              "A feedline news feed, read through the Mastodon API (read only)",
                              "usage", "users", "active_month", 0, "thumbnail", "url", "",
                              "languages", "en", "configuration", "urls", "streaming", streaming,
                              "accounts", "max_featured_tags", 0, "statuses", "max_characters", 500,
                              "max_media_attachments", 0, "characters_reserved_per_url", 23,
                              "translation", "enabled", 0, "registrations", "enabled", 0,
                              "approval_required", 0, "message", "contact", "email", "", "account",
                              "rules"));
}

/* ---- dispatch ---- */

typedef fl_err_t (*read_fn)(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r);

static fl_err_t verify(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    return account(q, src, r, q->viewer, true);
}

static fl_err_t one_account(fl_api_req_t *q, fl_src_t *src, fl_api_resp_t *r)
{
    return account(q, src, r, q->path_id, false);
}

void fl__api_masto_serve(fl_api_req_t *q, fl_api_resp_t *r)
{
    read_fn fn;
    fl_src_t *src;
    fl_err_t err;

    switch (q->route) {
    case R_M_INSTANCE:
        instance(q, r);
        return;
    case R_M_INSTANCE_V2:
        instance_v2(q, r);
        return;
    case R_M_HOME:
        fn = home;
        break;
    case R_M_STATUS:
        fn = status;
        break;
    case R_M_ACCOUNT:
        fn = one_account;
        break;
    case R_M_ACCOUNT_STATUSES:
        fn = account_statuses;
        break;
    case R_M_VERIFY:
        fn = verify;
        break;
    case R_M_NOTIFICATIONS:
        fn = notifications;
        break;
    default:
        fl__api_error(r, 404, "not_found", "Record not found");
        return;
    }
    src = fl__api_first_source(q);
    while ((err = fn(q, src, r)) != FL_OK) {
        if (!(src = fl__api_next_source(q, src, err))) {
            fl__api_unavailable(r, err);
            return;
        }
    }
    fl__api_served(q, r, src);
}
