/*
 * fl_api_model.c - the read API's pure parts (fl_api_model.h): cursors,
 * query validation, visibility, ordering and the ranking score. Runs once
 * or a few times per request; nothing here allocates except the strings of
 * the items it frees.
 */
#include "fl_api_model.h"

#include "fl_be.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int fl_vis_parse(const char *s)
{
    /* PostgreSQL keeps the API's spelling, Redis the schema's (PUBLIC) */
    if (!s)
        return -1;
    if (!strcasecmp(s, "public"))
        return FL_VIS_PUBLIC;
    if (!strcasecmp(s, "followers"))
        return FL_VIS_FOLLOWERS;
    if (!strcasecmp(s, "private"))
        return FL_VIS_PRIVATE;
    return -1;
}

const char *fl_vis_str(int vis)
{
    return vis == FL_VIS_FOLLOWERS ? "followers" : vis == FL_VIS_PRIVATE ? "private" : "public";
}

static int pos_cmp(const void *a, const void *b)
{
    const fl_pos_t *x = a, *y = b;
    if (fl_pos_newer(*x, *y))
        return -1;
    return fl_pos_newer(*y, *x) ? 1 : 0;
}

static int id_cmp(const void *a, const void *b)
{
    const fl_pos_t *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return pos_cmp(a, b);
}

size_t fl_pos_sort_unique(fl_pos_t *v, size_t n)
{
    size_t out = 0;

    if (n < 2)
        return n;
    /* by id (newest copy first within an id), keep the first of each id,
     * then newest first */
    qsort(v, n, sizeof(*v), id_cmp);
    for (size_t i = 0; i < n; i++)
        if (!out || v[out - 1].id != v[i].id)
            v[out++] = v[i];
    qsort(v, out, sizeof(*v), pos_cmp);
    return out;
}

void fl_post_clear(fl_post_t *p)
{
    if (!p)
        return;
    free(p->text);
    free(p->handle);
    free(p->display_name);
    memset(p, 0, sizeof(*p));
}

bool fl_post_visible(const fl_post_t *p, int64_t viewer, bool follows_author)
{
    if (p->author_id == viewer || p->visibility == FL_VIS_PUBLIC)
        return true;
    return p->visibility == FL_VIS_FOLLOWERS && follows_author;
}

void fl_user_clear(fl_user_t *u)
{
    if (!u)
        return;
    free(u->handle);
    free(u->display_name);
    memset(u, 0, sizeof(*u));
}

bool fl_notif_newer(const fl_notif_t *a, const fl_notif_t *b)
{
    if (a->created_at != b->created_at)
        return a->created_at > b->created_at;
    if (a->kind != b->kind)
        return a->kind > b->kind;
    if (a->actor_id != b->actor_id)
        return a->actor_id > b->actor_id;
    return a->post_id > b->post_id;
}

static int notif_cmp(const void *a, const void *b)
{
    if (fl_notif_newer(a, b))
        return -1;
    return fl_notif_newer(b, a) ? 1 : 0;
}

void fl_notif_sort(fl_notif_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), notif_cmp);
}

/* ---- cursors: kind letter, then big-endian 64-bit fields, in hex ---- */

static size_t cursor_fields(fl_cursor_kind_t kind)
{
    switch (kind) {
    case FL_CURSOR_CHRONO:
    case FL_CURSOR_FOLLOW:
        return 2;
    case FL_CURSOR_RANKED:
    case FL_CURSOR_NOTIF:
        return 4;
    }
    return 0;
}

void fl_cursor_encode(const fl_cursor_t *c, char out[FL_CURSOR_MAX])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t f[4] = {0};
    uint8_t bytes[32];
    size_t n = cursor_fields(c->kind), len = 0;

    switch (c->kind) {
    case FL_CURSOR_CHRONO:
    case FL_CURSOR_FOLLOW:
        f[0] = (uint64_t)c->pos.ts;
        f[1] = (uint64_t)c->pos.id;
        break;
    case FL_CURSOR_RANKED:
        f[0] = (uint64_t)c->snapshot_ms;
        f[1] = (uint64_t)c->pos.ts;
        f[2] = (uint64_t)c->pos.id;
        f[3] = (uint64_t)c->offset;
        break;
    case FL_CURSOR_NOTIF:
        f[0] = (uint64_t)c->notif.created_at;
        f[1] = (uint64_t)c->notif.kind;
        f[2] = (uint64_t)c->notif.actor_id;
        f[3] = (uint64_t)c->notif.post_id;
        break;
    }
    for (size_t i = 0; i < n; i++)
        fl_be_put64(bytes + 8 * i, f[i]);
    out[len++] = (char)c->kind;
    for (size_t i = 0; i < 8 * n; i++) {
        out[len++] = hex[bytes[i] >> 4];
        out[len++] = hex[bytes[i] & 15];
    }
    out[len] = '\0';
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

fl_err_t fl_cursor_decode(const char *s, fl_cursor_kind_t want, fl_cursor_t *c)
{
    size_t n = cursor_fields(want);
    uint8_t bytes[32];
    int64_t f[4];

    if (!s || (fl_cursor_kind_t)(unsigned char)s[0] != want || strlen(s) != 1 + 16 * n)
        return FL_ERR_INVALID;
    for (size_t i = 0; i < 8 * n; i++) {
        int hi = unhex(s[1 + 2 * i]), lo = unhex(s[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return FL_ERR_INVALID;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    for (size_t i = 0; i < n; i++)
        f[i] = (int64_t)fl_be_get64(bytes + 8 * i);
    memset(c, 0, sizeof(*c));
    c->kind = want;
    switch (want) {
    case FL_CURSOR_CHRONO:
    case FL_CURSOR_FOLLOW:
        c->pos = (fl_pos_t){f[0], f[1]};
        if (f[0] < 0 || f[1] <= 0)
            return FL_ERR_INVALID;
        break;
    case FL_CURSOR_RANKED:
        c->snapshot_ms = f[0];
        c->pos = (fl_pos_t){f[1], f[2]};
        c->offset = f[3];
        if (f[0] < 0 || f[1] < 0 || f[2] <= 0 || f[3] <= 0 || f[3] > 100000)
            return FL_ERR_INVALID;
        break;
    case FL_CURSOR_NOTIF:
        c->notif = (fl_notif_t){f[0], (int)f[1], f[2], f[3]};
        if (f[0] < 0 || (f[1] != FL_NOTIF_LIKE && f[1] != FL_NOTIF_FOLLOW) || f[2] <= 0 || f[3] < 0)
            return FL_ERR_INVALID;
        break;
    }
    return FL_OK;
}

/* ---- query parameters ---- */

bool fl_id_parse(const char *s, int64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s || strlen(s) > 19 || (s[0] == '0'))
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

void fl_query_init(fl_query_t *q)
{
    memset(q, 0, sizeof(*q));
    q->limit = 20;
    q->order = FL_ORDER_CHRONO;
}

static fl_err_t bad(char *why, size_t why_size, const char *fmt, const char *key)
{
    snprintf(why, why_size, fmt, key);
    return FL_ERR_INVALID;
}

fl_err_t fl_query_set(fl_query_t *q, unsigned allowed, fl_cursor_kind_t kind, const char *key,
                      const char *value, char *why, size_t why_size)
{
    if (!value)
        value = "";
    if (!strcmp(key, "limit") && (allowed & FL_Q_LIMIT)) {
        int64_t v;
        if (!fl_id_parse(value, &v) || v > 100)
            return bad(why, why_size, "%s must be an integer from 1 to 100", key);
        q->limit = (int)v;
        return FL_OK;
    }
    if (!strcmp(key, "cursor") && (allowed & FL_Q_CURSOR)) {
        /* a ranked feed cursor is accepted where the chrono kind is asked
         * for when the endpoint orders (the feed): fl_query_finish checks */
        if (fl_cursor_decode(value, kind, &q->cursor) != FL_OK &&
            (!(allowed & FL_Q_ORDER) ||
             fl_cursor_decode(value, FL_CURSOR_RANKED, &q->cursor) != FL_OK))
            return bad(why, why_size, "%s is not a cursor this endpoint returned", key);
        q->has_cursor = true;
        return FL_OK;
    }
    if (!strcmp(key, "order") && (allowed & FL_Q_ORDER)) {
        if (!strcmp(value, "chrono"))
            q->order = FL_ORDER_CHRONO;
        else if (!strcmp(value, "ranked"))
            q->order = FL_ORDER_RANKED;
        else
            return bad(why, why_size, "%s must be chrono or ranked", key);
        return FL_OK;
    }
    if (!strcmp(key, "explain") && (allowed & FL_Q_EXPLAIN)) {
        if (!strcmp(value, "1") || !strcmp(value, "true"))
            q->explain = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false"))
            q->explain = false;
        else
            return bad(why, why_size, "%s must be 1 or 0", key);
        return FL_OK;
    }
    /* the name is the client's: only plain characters go into the message
     * (it must stay valid UTF-8 for the JSON body) */
    char name[33];
    size_t n = 0;
    for (const char *p = key; *p && n < sizeof(name) - 1; p++)
        name[n++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                            (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'
                        ? *p
                        : '?';
    name[n] = '\0';
    snprintf(why, why_size, "unknown parameter '%s'", name);
    return FL_ERR_INVALID;
}

fl_err_t fl_query_finish(fl_query_t *q, char *why, size_t why_size)
{
    if (!q->has_cursor)
        return FL_OK;
    if ((q->cursor.kind == FL_CURSOR_RANKED) != (q->order == FL_ORDER_RANKED)) {
        snprintf(why, why_size, "cursor belongs to order=%s",
                 q->cursor.kind == FL_CURSOR_RANKED ? "ranked" : "chrono");
        return FL_ERR_INVALID;
    }
    return FL_OK;
}

/* ---- ranking ---- */

fl_score_t fl_rank_score(const fl_rank_weights_t *w, int64_t now_ms, int64_t created_at,
                         int64_t like_count, int64_t affinity)
{
    fl_score_t s;
    double age_s = now_ms > created_at ? (double)(now_ms - created_at) / 1000.0 : 0.0;

    s.recency = w->recency * exp2(-age_s / w->half_life_s);
    s.likes = w->likes * log1p((double)(like_count > 0 ? like_count : 0));
    s.affinity = w->affinity * log1p((double)(affinity > 0 ? affinity : 0));
    s.total = s.recency + s.likes + s.affinity;
    return s;
}

typedef struct rank_ctx {
    const fl_score_t *scores;
    const fl_post_t *posts;
} rank_ctx_t;

static int rank_cmp(const void *a, const void *b, void *arg)
{
    const rank_ctx_t *c = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;

    if (c->scores[i].total != c->scores[j].total)
        return c->scores[i].total > c->scores[j].total ? -1 : 1;
    if (c->posts[i].post_id != c->posts[j].post_id)
        return c->posts[i].post_id > c->posts[j].post_id ? -1 : 1;
    return 0;
}

void fl_rank_order(size_t *idx, size_t n, const fl_score_t *scores, const fl_post_t *posts)
{
    rank_ctx_t c = {scores, posts};
    qsort_r(idx, n, sizeof(*idx), rank_cmp, &c);
}
