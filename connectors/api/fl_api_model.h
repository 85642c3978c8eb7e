/*
 * fl_api_model.h - the read API's pure parts: the items it serves, the
 * opaque cursors, the validation of query parameters, the visibility rule,
 * the ordering and merge of feed candidates, and the ranking score. No I/O:
 * the sources (Redis, PostgreSQL) fill these types, the HTTP layer renders
 * them, and the unit tests and fuzz targets call everything here directly.
 *
 * Ordering. A feed, a user's posts and a follower list are ordered newest
 * first by a position (created_at ms, id), both descending; ties on
 * created_at are broken by the numeric id (Redis orders equal scores by the
 * member's bytes, so sources re-sort what they read). A cursor names the
 * last position a page returned; the next page holds the positions
 * strictly below it, so items that arrive while a client pages (they sort
 * above) neither shift nor repeat what follows.
 *
 * Cursors are opaque to clients: a kind letter and big-endian fields,
 * hex-encoded. Decoding checks the kind and the exact length; nothing in a
 * cursor is trusted beyond being a position (it cannot widen what the
 * viewer may read: every page is filtered by the viewer's own rights).
 */
#ifndef FL_API_MODEL_H
#define FL_API_MODEL_H

#include "fl_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { FL_VIS_PUBLIC = 0, FL_VIS_FOLLOWERS = 1, FL_VIS_PRIVATE = 2 };

/* "public" / "followers" / "private" in any case; -1 for anything else. */
int fl_vis_parse(const char *s);
const char *fl_vis_str(int vis);

/* A position in an ordered list: created_at (ms) then id, descending. */
typedef struct fl_pos {
    int64_t ts;
    int64_t id;
} fl_pos_t;

/* a sorts before b in newest-first order (a is newer) */
static inline bool fl_pos_newer(fl_pos_t a, fl_pos_t b)
{
    return a.ts > b.ts || (a.ts == b.ts && a.id > b.id);
}

/* Sorts n positions newest first and drops repeated ids (the newest copy
 * of an id stays); returns the new count. */
size_t fl_pos_sort_unique(fl_pos_t *v, size_t n);

/* A hydrated post. Strings are owned by the item (fl_post_clear frees). */
typedef struct fl_post {
    int64_t post_id;
    int64_t author_id;
    int64_t created_at;
    int64_t reply_to; /* 0: none */
    int64_t like_count;
    int visibility;     /* FL_VIS_* */
    char *text;         /* never NULL once filled */
    char *handle;       /* NULL: the author never registered */
    char *display_name; /* NULL with handle */
} fl_post_t;

void fl_post_clear(fl_post_t *p);

/*
 * Whether viewer may read post: public to everyone, followers-only to its
 * author and to viewers who follow the author (follows: the caller's
 * answer, only consulted for that case), private to its author only.
 */
bool fl_post_visible(const fl_post_t *p, int64_t viewer, bool follows_author);

typedef struct fl_user {
    int64_t user_id;
    char *handle;       /* owned */
    char *display_name; /* owned */
    int64_t followers_count;
    int64_t following_count;
    int64_t posts_count;
    bool is_celebrity;
} fl_user_t;

void fl_user_clear(fl_user_t *u);

typedef enum fl_notif_kind { FL_NOTIF_LIKE = 1, FL_NOTIF_FOLLOW = 2 } fl_notif_kind_t;

typedef struct fl_notif {
    int64_t created_at;
    int kind; /* fl_notif_kind_t */
    int64_t actor_id;
    int64_t post_id; /* 0 for a follow */
} fl_notif_t;

/* Newest first by (created_at, kind, actor, post), all descending. */
bool fl_notif_newer(const fl_notif_t *a, const fl_notif_t *b);
void fl_notif_sort(fl_notif_t *v, size_t n);

/* ---- cursors ---- */

typedef enum fl_cursor_kind {
    FL_CURSOR_CHRONO = 'c', /* feed, a user's posts: a position */
    FL_CURSOR_RANKED = 'r', /* ranked feed: snapshot time, top position, offset */
    FL_CURSOR_NOTIF = 'n',  /* notifications: created_at, kind, actor, post */
    FL_CURSOR_FOLLOW = 'f', /* followers / following: follow time, user */
} fl_cursor_kind_t;

typedef struct fl_cursor {
    fl_cursor_kind_t kind;
    fl_pos_t pos;        /* chrono, follow; ranked: the newest candidate */
    int64_t snapshot_ms; /* ranked: the `now` scores were computed at */
    int64_t offset;      /* ranked: items already served */
    fl_notif_t notif;    /* notifications */
} fl_cursor_t;

/* Longest encoding, with its NUL. */
#define FL_CURSOR_MAX 80

/* Writes c into out (FL_CURSOR_MAX bytes) as a NUL-terminated string. */
void fl_cursor_encode(const fl_cursor_t *c, char out[FL_CURSOR_MAX]);

/* Decodes s into c; FL_ERR_INVALID unless s is a well-formed cursor of
 * the wanted kind. */
fl_err_t fl_cursor_decode(const char *s, fl_cursor_kind_t want, fl_cursor_t *c);

/* ---- query parameters ---- */

typedef enum fl_order { FL_ORDER_CHRONO = 0, FL_ORDER_RANKED = 1 } fl_order_t;

/* The parameters of a list endpoint, validated. */
typedef struct fl_query {
    int limit;       /* 1..100, default 20 */
    bool has_cursor; /* cursor holds a decoded cursor */
    fl_cursor_t cursor;
    fl_order_t order; /* feed only */
    bool explain;     /* feed only: ranked items carry their score's parts */
} fl_query_t;

/* Which parameters an endpoint takes (a bit set). */
enum {
    FL_Q_LIMIT = 1u << 0,
    FL_Q_CURSOR = 1u << 1,
    FL_Q_ORDER = 1u << 2,
    FL_Q_EXPLAIN = 1u << 3,
};

void fl_query_init(fl_query_t *q);

/*
 * Applies one parameter. allowed is the endpoint's FL_Q_* set; kind the
 * cursor kind it pages with (for order=ranked the feed's cursor must be
 * ranked: the caller checks that after every parameter is in). On an
 * error returns FL_ERR_INVALID and writes a message naming the parameter
 * (never echoing more than a few bytes of its value) to why.
 */
fl_err_t fl_query_set(fl_query_t *q, unsigned allowed, fl_cursor_kind_t kind, const char *key,
                      const char *value, char *why, size_t why_size);

/* Checks relations between parameters once all are set (a ranked cursor
 * with order=chrono and the reverse). */
fl_err_t fl_query_finish(fl_query_t *q, char *why, size_t why_size);

/* Parses a decimal id (1..2^63-1, digits only, no sign, no leading
 * zeros beyond "0"); false for anything else. */
bool fl_id_parse(const char *s, int64_t *out);

/* ---- ranking ---- */

typedef struct fl_rank_weights {
    double half_life_s;
    double recency;
    double likes;
    double affinity;
} fl_rank_weights_t;

typedef struct fl_score {
    double total;
    double recency;  /* weighted part */
    double likes;    /* weighted part */
    double affinity; /* weighted part */
} fl_score_t;

/* recency * 2^(-age/half_life) + likes * ln(1 + like_count) + affinity *
 * ln(1 + affinity); age = max(0, now - created_at). Deterministic. */
fl_score_t fl_rank_score(const fl_rank_weights_t *w, int64_t now_ms, int64_t created_at,
                         int64_t like_count, int64_t affinity);

/* Orders idx[0..n) by score descending, then post id descending. */
void fl_rank_order(size_t *idx, size_t n, const fl_score_t *scores, const fl_post_t *posts);

#endif
