/*
 * fl_fanout.c - hybrid fan-out on write (rules in fl_fanout.h).
 *
 * Workload: every PostCreated of a regular author reads its follower set
 * (a prefix scan, up to celebrity_threshold entries) and emits one record
 * per destination partition; follows touch one edge, one counter and, for
 * backfill, up to backfill_size outbox entries. Celebrity posts cost O(1)
 * here: they are merged at read time.
 *
 * Invariants kept in the store (checked where read): USER(a).followers
 * equals the number of FOLLOWER(a, *) edges; OUTBOX holds exactly the live
 * non-private posts among the author's newest outbox_cap such posts.
 *
 * Every FL_ERR_INVALID (a record to dead-letter) is decided before the
 * first write or forward (fl_proc.h); past that point a damaged stored
 * key is FL_ERR_CORRUPT and a failed forward FL_ERR_CONFIG.
 */
#include "fl_fanout.h"
#include "fl_trim.h"
#include "fl_emit.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { POST_LIVE = 1, POST_DELETED = 2 };

/* USER(author): i64 followers, i64 outbox entries, u8 celebrity, then the
 * outbox's oldest bound, i64 created_at and i64 post id (a record of 17
 * bytes, written before the bound existed, has none) */
#define AUTHOR_VALUE_UNBOUNDED 17
#define AUTHOR_VALUE_SIZE      33

typedef struct post_rec {
    int64_t author;
    int64_t created_at;
    uint8_t visibility;
    uint8_t state;
} post_rec_t;

#define STORE_CHECK(expr)                                                                          \
    do {                                                                                           \
        fl_err_t e_ = (expr);                                                                      \
        if (e_) {                                                                                  \
            snprintf(errstr, errstr_size, "store %s: %s", FL_STORE_FANOUT, fl_store_errmsg(s));    \
            return e_;                                                                             \
        }                                                                                          \
    } while (0)

fl_err_t fl_fanout_author_get(fl_store_t *s, int64_t author, fl_fanout_author_t *out)
{
    fl_key_t k;
    uint8_t v[AUTHOR_VALUE_SIZE];
    size_t vlen;
    bool found;

    memset(out, 0, sizeof(*out));
    fl_key_entity(&k, FL_KEY_TAG_USER, author);
    fl_err_t err = fl_store_get(s, k.buf, k.len, v, sizeof(v), &vlen, &found);
    if (err || !found)
        return err;
    if (vlen != AUTHOR_VALUE_SIZE && vlen != AUTHOR_VALUE_UNBOUNDED)
        return FL_ERR_CORRUPT;
    out->followers = fl_key_dec_i64(v);
    out->outbox = fl_key_dec_i64(v + 8);
    out->celebrity = v[16] != 0;
    if (vlen == AUTHOR_VALUE_SIZE) {
        out->bounded = true;
        out->oldest_t = fl_key_dec_i64(v + 17);
        out->oldest_p = fl_key_dec_i64(v + 25);
    }
    return FL_OK;
}

static fl_err_t author_put(fl_store_t *s, int64_t author, const fl_fanout_author_t *a)
{
    fl_key_t k;
    uint8_t v[AUTHOR_VALUE_SIZE];
    fl_key_entity(&k, FL_KEY_TAG_USER, author);
    fl_key_enc_i64(v, a->followers);
    fl_key_enc_i64(v + 8, a->outbox);
    v[16] = a->celebrity ? 1 : 0;
    fl_key_enc_i64(v + 17, a->bounded ? a->oldest_t : 0);
    fl_key_enc_i64(v + 25, a->bounded ? a->oldest_p : 0);
    return fl_store_put(s, k.buf, k.len, v,
                        a->bounded ? AUTHOR_VALUE_SIZE : AUTHOR_VALUE_UNBOUNDED);
}

static fl_err_t post_get(fl_store_t *s, int64_t post, post_rec_t *out, bool *found)
{
    fl_key_t k;
    uint8_t v[18];
    size_t vlen;

    fl_key_entity(&k, FL_KEY_TAG_POST, post);
    fl_err_t err = fl_store_get(s, k.buf, k.len, v, sizeof(v), &vlen, found);
    if (err || !*found)
        return err;
    if (vlen != 18)
        return FL_ERR_CORRUPT;
    out->author = fl_key_dec_i64(v);
    out->created_at = fl_key_dec_i64(v + 8);
    out->visibility = v[16];
    out->state = v[17];
    return FL_OK;
}

static fl_err_t post_put(fl_store_t *s, int64_t post, const post_rec_t *r)
{
    fl_key_t k;
    uint8_t v[18];
    fl_key_entity(&k, FL_KEY_TAG_POST, post);
    fl_key_enc_i64(v, r->author);
    fl_key_enc_i64(v + 8, r->created_at);
    v[16] = r->visibility;
    v[17] = r->state;
    return fl_store_put(s, k.buf, k.len, v, sizeof(v));
}

/* Appends the author's followers, in follower-id order, to out. */
static fl_err_t followers_collect(fl_store_t *s, int64_t author, fl_i64vec_t *out)
{
    fl_key_t prefix;
    fl_store_iter_t *it = NULL;
    fl_err_t err;

    fl_key_entity(&prefix, FL_KEY_TAG_FOLLOWER, author);
    err = fl_store_iter_new(s, prefix.buf, prefix.len, &it);
    if (err)
        return err;
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t klen;
        const void *key = fl_store_iter_key(it, &klen);
        int64_t a, f;
        if (fl_key_parse_edge(key, klen, FL_KEY_TAG_FOLLOWER, &a, &f))
            err = FL_ERR_CORRUPT; /* the stored key is damaged, not the record */
        else
            err = fl_i64vec_push(out, f);
        if (err)
            break;
    }
    if (!err)
        err = fl_store_iter_status(it);
    fl_store_iter_free(it);
    return err;
}

/* The author's newest (up to limit) outbox posts, newest first. */
static fl_err_t outbox_recent(fl_store_t *s, int64_t author, int64_t limit, fl_tlop_post_t **posts,
                              uint32_t *n)
{
    fl_key_t prefix;
    fl_store_iter_t *it = NULL;
    fl_err_t err;
    size_t cap = 0;

    *posts = NULL;
    *n = 0;
    fl_key_entity(&prefix, FL_KEY_TAG_OUTBOX, author);
    err = fl_store_iter_new(s, prefix.buf, prefix.len, &it);
    if (err)
        return err;
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it) && (int64_t)*n < limit;
         fl_store_iter_next(it)) {
        size_t klen;
        const void *key = fl_store_iter_key(it, &klen);
        int64_t a, t, p;
        if (fl_key_parse_recent(key, klen, FL_KEY_TAG_OUTBOX, &a, &t, &p)) {
            err = FL_ERR_CORRUPT; /* the stored key is damaged, not the record */
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            fl_tlop_post_t *np = realloc(*posts, cap * sizeof(*np));
            if (!np) {
                err = FL_ERR_NOMEM;
                break;
            }
            *posts = np;
        }
        (*posts)[(*n)++] = (fl_tlop_post_t){p, a, t};
    }
    if (!err)
        err = fl_store_iter_status(it);
    fl_store_iter_free(it);
    if (err) {
        free(*posts);
        *posts = NULL;
        *n = 0;
    }
    return err;
}

/* Makes room for the new outbox entry k: drops the oldest entries so that
 * after the insert at most cap remain (fl_trim.h), and moves the oldest
 * bound to the oldest entry left. Outbox keys are newest first, so the
 * trimmed entries' tombstones lie past the oldest one: the walk starts at
 * the bound (seek_last would step over every one of them). */
static fl_err_t outbox_make_room(fl_store_t *s, int64_t author, const fl_key_t *k,
                                 fl_fanout_author_t *a, int64_t cap, bool *keep)
{
    fl_key_t prefix, from;
    fl_store_iter_t *it = NULL;
    int64_t drop = a->outbox + 1 - cap; /* entries to drop, k included */

    *keep = true;
    if (drop <= 0)
        return FL_OK;
    fl_key_entity(&prefix, FL_KEY_TAG_OUTBOX, author);
    fl_err_t err = fl_store_iter_new(s, prefix.buf, prefix.len, &it);
    if (err)
        return err;
    if (a->bounded) {
        fl_key_recent(&from, FL_KEY_TAG_OUTBOX, author, a->oldest_t, a->oldest_p);
        fl_store_iter_seek_for_prev(it, from.buf, from.len);
    } else {
        fl_store_iter_seek_last(it);
    }
    err = fl_trim_oldest(s, it, true, k, drop, keep, NULL, NULL);
    if (!err) {
        a->outbox -= drop - !*keep;
        a->bounded = false; /* nothing left: the insert sets it */
        if (fl_store_iter_valid(it)) {
            size_t klen;
            const void *key = fl_store_iter_key(it, &klen);
            int64_t o;
            if (fl_key_parse_recent(key, klen, FL_KEY_TAG_OUTBOX, &o, &a->oldest_t, &a->oldest_p))
                err = FL_ERR_CORRUPT; /* the stored key is damaged, not the record */
            a->bounded = !err;
        }
    }
    fl_store_iter_free(it);
    return err;
}

static fl_err_t publish_celebrity(fl_ctx_t *ctx, int64_t author, const fl_fanout_author_t *a,
                                  int64_t occurred_at)
{
    char key[24], val[160];
    int klen = snprintf(key, sizeof(key), "%" PRId64, author);
    int vlen = snprintf(val, sizeof(val),
                        "{\"author_id\":%" PRId64 ",\"celebrity\":%s,\"followers\":%" PRId64
                        ",\"occurred_at\":%" PRId64 "}",
                        author, a->celebrity ? "true" : "false", a->followers, occurred_at);
    return fl_ctx_forward(ctx, FL_TOPIC_CELEBRITIES, 0, key, (size_t)klen, val, (size_t)vlen);
}

static fl_err_t on_post_created(fl_ctx_t *ctx, fl_store_t *s, const fl_event_t *ev, char *errstr,
                                size_t errstr_size)
{
    const fl_settings_t *cfg = fl_ctx_settings(ctx);
    post_rec_t old;
    bool found;
    fl_fanout_author_t author;
    fl_i64vec_t rcpt = {0};
    fl_err_t err;

    STORE_CHECK(post_get(s, ev->post_id, &old, &found));
    if (found) {
        if (old.author != ev->author_id) {
            snprintf(errstr, errstr_size, "post %" PRId64 " already belongs to author %" PRId64,
                     ev->post_id, old.author);
            return FL_ERR_INVALID;
        }
        return FL_OK; /* duplicate, or created after its deletion: ignored */
    }
    post_rec_t rec = {ev->author_id, ev->created_at, (uint8_t)ev->visibility, POST_LIVE};
    STORE_CHECK(post_put(s, ev->post_id, &rec));
    STORE_CHECK(fl_fanout_author_get(s, ev->author_id, &author));

    if (ev->visibility != FL_VIS_PRIVATE) {
        fl_key_t k;
        uint8_t vis = (uint8_t)ev->visibility;
        fl_fanout_author_t before = author;
        bool keep;
        fl_key_recent(&k, FL_KEY_TAG_OUTBOX, ev->author_id, ev->created_at, ev->post_id);
        STORE_CHECK(outbox_make_room(s, ev->author_id, &k, &author, cfg->outbox_cap, &keep));
        if (keep) {
            STORE_CHECK(fl_store_put(s, k.buf, k.len, &vis, 1));
            /* the first entry, or one older than the bound, is the oldest;
             * an unbounded outbox with entries gets its bound at a trim */
            if (author.outbox == 0 ||
                (author.bounded && fl_key_tp_cmp(ev->created_at, ev->post_id, author.oldest_t,
                                                 author.oldest_p) < 0)) {
                author.bounded = true;
                author.oldest_t = ev->created_at;
                author.oldest_p = ev->post_id;
            }
            author.outbox++;
        }
        if (author.outbox != before.outbox || author.bounded != before.bounded ||
            author.oldest_t != before.oldest_t || author.oldest_p != before.oldest_p)
            STORE_CHECK(author_put(s, ev->author_id, &author));
    }

    err = fl_i64vec_push(&rcpt, ev->author_id);
    if (!err && ev->visibility != FL_VIS_PRIVATE && !author.celebrity)
        err = followers_collect(s, ev->author_id, &rcpt);
    if (!err) {
        fl_tlop_post_t post = {ev->post_id, ev->author_id, ev->created_at};
        fl_tlop_t op = {.op = FL_TLOP_INSERT, .posts = &post, .n_posts = 1};
        err = fl_emit_tlop(ctx, &op, rcpt.v, rcpt.n, ev->author_id);
    }
    fl_i64vec_free(&rcpt);
    if (err)
        snprintf(errstr, errstr_size, "fan-out of post %" PRId64 ": %s", ev->post_id,
                 fl_err_str(err));
    return err;
}

static fl_err_t on_post_deleted(fl_ctx_t *ctx, fl_store_t *s, const fl_event_t *ev, char *errstr,
                                size_t errstr_size)
{
    post_rec_t rec;
    bool found;
    fl_i64vec_t rcpt = {0};
    fl_err_t err;

    STORE_CHECK(post_get(s, ev->post_id, &rec, &found));
    if (found && rec.author != ev->author_id) {
        snprintf(errstr, errstr_size,
                 "post %" PRId64 " belongs to author %" PRId64 ", not %" PRId64, ev->post_id,
                 rec.author, ev->author_id);
        return FL_ERR_INVALID;
    }
    if (!found) {
        /* Unknown post: remember the deletion so a late PostCreated is ignored. */
        post_rec_t tomb = {ev->author_id, 0, 0, POST_DELETED};
        STORE_CHECK(post_put(s, ev->post_id, &tomb));
        return FL_OK;
    }
    if (rec.state == POST_DELETED)
        return FL_OK;
    rec.state = POST_DELETED;
    STORE_CHECK(post_put(s, ev->post_id, &rec));
    fl_key_t k;
    uint8_t vis;
    size_t vlen;
    fl_key_recent(&k, FL_KEY_TAG_OUTBOX, ev->author_id, rec.created_at, ev->post_id);
    STORE_CHECK(fl_store_get(s, k.buf, k.len, &vis, sizeof(vis), &vlen, &found));
    if (found) { /* private and trimmed posts are not in the outbox */
        fl_fanout_author_t author;
        STORE_CHECK(fl_store_delete(s, k.buf, k.len));
        STORE_CHECK(fl_fanout_author_get(s, ev->author_id, &author));
        author.outbox--;
        STORE_CHECK(author_put(s, ev->author_id, &author));
    }

    /* Every timeline the post can be in: the author's and current
     * followers' (ex-followers had the author's posts removed on unfollow). */
    err = fl_i64vec_push(&rcpt, ev->author_id);
    if (!err)
        err = followers_collect(s, ev->author_id, &rcpt);
    if (!err) {
        fl_tlop_post_t post = {ev->post_id, ev->author_id, rec.created_at};
        fl_tlop_t op = {.op = FL_TLOP_REMOVE, .posts = &post, .n_posts = 1};
        err = fl_emit_tlop(ctx, &op, rcpt.v, rcpt.n, ev->author_id);
    }
    fl_i64vec_free(&rcpt);
    if (err)
        snprintf(errstr, errstr_size, "removal of post %" PRId64 ": %s", ev->post_id,
                 fl_err_str(err));
    return err;
}

/* Fans the author's newest backfill_size outbox posts out to recipients. */
static fl_err_t backfill(fl_ctx_t *ctx, fl_store_t *s, int64_t author, const int64_t *rcpt,
                         size_t n)
{
    fl_tlop_post_t *posts = NULL;
    uint32_t n_posts = 0;
    fl_err_t err = outbox_recent(s, author, fl_ctx_settings(ctx)->backfill_size, &posts, &n_posts);
    if (!err && n_posts) {
        fl_tlop_t op = {.op = FL_TLOP_INSERT, .posts = posts, .n_posts = n_posts};
        err = fl_emit_tlop(ctx, &op, rcpt, n, author);
    }
    free(posts);
    return err;
}

static fl_err_t on_follow(fl_ctx_t *ctx, fl_store_t *s, const fl_event_t *ev, bool added,
                          char *errstr, size_t errstr_size)
{
    const fl_settings_t *cfg = fl_ctx_settings(ctx);
    int64_t a = ev->followee_id, f = ev->follower_id;
    fl_fanout_author_t author;
    fl_key_t edge;
    uint8_t dummy;
    size_t vlen;
    bool found;
    fl_err_t err = FL_OK;

    if (a == f) {
        snprintf(errstr, errstr_size, "user %" PRId64 " cannot follow themselves", a);
        return FL_ERR_INVALID;
    }
    fl_key_edge(&edge, FL_KEY_TAG_FOLLOWER, a, f);
    STORE_CHECK(fl_store_get(s, edge.buf, edge.len, &dummy, sizeof(dummy), &vlen, &found));
    if (found == added)
        return FL_OK; /* duplicate follow, or unfollow without follow */
    STORE_CHECK(fl_fanout_author_get(s, a, &author));
    bool was_celebrity = author.celebrity;
    if (added) {
        STORE_CHECK(fl_store_put(s, edge.buf, edge.len, "", 0));
        author.followers++;
        if (!author.celebrity && author.followers >= cfg->celebrity_threshold)
            author.celebrity = true;
    } else {
        STORE_CHECK(fl_store_delete(s, edge.buf, edge.len));
        if (author.followers <= 0) {
            snprintf(errstr, errstr_size,
                     "author %" PRId64 " follower count %" PRId64
                     " does not match an existing edge",
                     a, author.followers);
            return FL_ERR_CORRUPT;
        }
        author.followers--;
        if (author.celebrity &&
            author.followers < cfg->celebrity_threshold - cfg->celebrity_hysteresis)
            author.celebrity = false;
    }
    STORE_CHECK(author_put(s, a, &author));

    if (added && !author.celebrity) {
        err = backfill(ctx, s, a, &f, 1);
    } else if (!added) {
        fl_tlop_t op = {.op = FL_TLOP_REMOVE_AUTHOR, .author_id = a};
        err = fl_emit_tlop(ctx, &op, &f, 1, a);
    }
    if (!err && was_celebrity != author.celebrity) {
        err = publish_celebrity(ctx, a, &author, ev->occurred_at);
        if (!err && !author.celebrity) {
            /* Back below the threshold: the posts written while a celebrity
             * were never fanned out; give every follower the recent ones. */
            fl_i64vec_t rcpt = {0};
            err = followers_collect(s, a, &rcpt);
            if (!err)
                err = backfill(ctx, s, a, rcpt.v, rcpt.n);
            fl_i64vec_free(&rcpt);
        }
    }
    if (err)
        snprintf(errstr, errstr_size, "%s of %" PRId64 " by %" PRId64 ": %s",
                 added ? "follow" : "unfollow", a, f, fl_err_str(err));
    return err;
}

static fl_err_t fanout_process(fl_ctx_t *ctx, const fl_proc_record_t *rec, char *errstr,
                               size_t errstr_size)
{
    fl_store_t *s = fl_ctx_store(ctx, FL_STORE_FANOUT);
    const fl_event_t *ev = rec->event;

    if (!s || !ev) {
        snprintf(errstr, errstr_size, "fanout: no store or no decoded event for %s", rec->topic);
        return FL_ERR_CONFIG;
    }
    /* A record in the wrong partition would fork an author's state. */
    int64_t key_id = ev->type == FL_EV_FOLLOW_ADDED || ev->type == FL_EV_FOLLOW_REMOVED
                         ? ev->followee_id
                         : ev->author_id;
    int32_t parts = fl_ctx_partitions(ctx, rec->topic);
    if (parts > 0 && fl_partition_for_id(key_id, parts) != fl_ctx_partition(ctx)) {
        snprintf(errstr, errstr_size, "%s of %" PRId64 " belongs to partition %d, not %d",
                 rec->topic, key_id, fl_partition_for_id(key_id, parts), fl_ctx_partition(ctx));
        return FL_ERR_INVALID;
    }
    switch (ev->type) {
    case FL_EV_POST_CREATED:
        return on_post_created(ctx, s, ev, errstr, errstr_size);
    case FL_EV_POST_DELETED:
        return on_post_deleted(ctx, s, ev, errstr, errstr_size);
    case FL_EV_FOLLOW_ADDED:
        return on_follow(ctx, s, ev, true, errstr, errstr_size);
    case FL_EV_FOLLOW_REMOVED:
        return on_follow(ctx, s, ev, false, errstr, errstr_size);
    default:
        snprintf(errstr, errstr_size, "fanout does not take %s events",
                 fl_event_desc(ev->type) ? fl_event_desc(ev->type)->name : "unknown");
        return FL_ERR_INVALID;
    }
}

const fl_processor_def_t fl_fanout_processor = {
    .name = "fanout",
    .process = fanout_process,
};
