/*
 * fl_engagement.c - likes, follows and posts into engagement facts (rules
 * in fl_engagement.h).
 *
 * Workload: one point read per event; a new like also reads the first
 * liker of its post (a seek) to check the author. Each transition writes
 * its set member and its count and forwards three or four records; no
 * event touches more than one member of one set, so the cost does not
 * grow with a post's likes or a user's followers.
 *
 * Invariants kept in the store: COUNT(POST_LIKES, p) = |LIKE(p, *)|,
 * COUNT(FOLLOWERS, u) = |FOLLOWER(u, *)| and COUNT(POSTS, a) = the live
 * POST records of a; a count that would go negative is FL_ERR_CORRUPT.
 * Every FL_ERR_INVALID is decided before the first write or forward
 * (fl_proc.h).
 */
#include "fl_engagement.h"
#include "fl_facts.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { POST_LIVE = 1, POST_DELETED = 2 };

#define LIKE_VALUE_SIZE 16 /* i64 created_at, i64 author */
#define POST_VALUE_SIZE 9  /* i64 author, u8 state */

/* A store or forward failure past the first write: say where, pass it up. */
static fl_err_t failed(fl_err_t err, fl_store_t *s, const char *what, char *errstr,
                       size_t errstr_size)
{
    if (err)
        snprintf(errstr, errstr_size, "engagement: %s: %s (%s)", what, fl_err_str(err),
                 fl_store_errmsg(s));
    return err;
}

static fl_err_t edge_forward(fl_ctx_t *ctx, fl_edge_kind_t kind, bool added, int64_t a, int64_t b,
                             int64_t post, int64_t at)
{
    fl_edge_t e = {.kind = kind, .added = added, .a = a, .b = b, .post = post, .at = at};
    uint8_t val[FL_EDGE_LEN];
    char key[24];
    int32_t parts = fl_ctx_partitions(ctx, FL_TOPIC_ENGAGE_EDGES);

    if (parts < 1)
        return FL_ERR_CONFIG;
    int klen = snprintf(key, sizeof(key), "%" PRId64, a);
    size_t vlen = fl_edge_encode(&e, val);
    return fl_ctx_forward(ctx, FL_TOPIC_ENGAGE_EDGES, fl_partition_for_id(a, parts), key,
                          (size_t)klen, val, vlen);
}

/* Reads key k's value, which must be size bytes when present. */
static fl_err_t member_get(fl_store_t *s, const fl_key_t *k, uint8_t *v, size_t size, bool *found)
{
    size_t vlen;
    fl_err_t err = fl_store_get(s, k->buf, k->len, v, size, &vlen, found);
    return !err && *found && vlen != size ? FL_ERR_CORRUPT : err;
}

/* The author of post's likes so far, from its first liker; 0 when none. */
static fl_err_t likes_author(fl_store_t *s, int64_t post, int64_t *author)
{
    fl_key_t prefix;
    fl_store_iter_t *it = NULL;

    *author = 0;
    fl_key_entity(&prefix, FL_KEY_TAG_LIKE, post);
    fl_err_t err = fl_store_iter_new(s, prefix.buf, prefix.len, &it);
    if (err)
        return err;
    fl_store_iter_seek_first(it);
    if (fl_store_iter_valid(it)) {
        size_t vlen;
        const uint8_t *v = fl_store_iter_value(it, &vlen);
        if (vlen == LIKE_VALUE_SIZE)
            *author = fl_key_dec_i64(v + 8);
        else
            err = FL_ERR_CORRUPT;
    }
    if (!err)
        err = fl_store_iter_status(it);
    fl_store_iter_free(it);
    return err;
}

static fl_err_t on_like(fl_ctx_t *ctx, fl_store_t *s, const fl_event_t *ev, bool added,
                        char *errstr, size_t errstr_size)
{
    int64_t post = ev->post_id, user = ev->user_id, created_at, author;
    fl_key_t k;
    uint8_t v[LIKE_VALUE_SIZE];
    bool found;
    fl_err_t err;

    fl_key_edge(&k, FL_KEY_TAG_LIKE, post, user);
    if ((err = member_get(s, &k, v, sizeof(v), &found)))
        return failed(err, s, "reading a like", errstr, errstr_size);
    if (found == added)
        return FL_OK; /* a repeated like, or an unlike without a like */
    if (added) {
        int64_t known;
        if ((err = likes_author(s, post, &known)))
            return failed(err, s, "reading the post's likes", errstr, errstr_size);
        if (known && known != ev->author_id) {
            snprintf(errstr, errstr_size,
                     "like of post %" PRId64 " names author %" PRId64
                     ", its earlier likes %" PRId64,
                     post, ev->author_id, known);
            return FL_ERR_INVALID;
        }
        created_at = ev->occurred_at;
        author = ev->author_id;
        fl_key_enc_i64(v, created_at);
        fl_key_enc_i64(v + 8, author);
        err = fl_store_put(s, k.buf, k.len, v, sizeof(v));
    } else {
        created_at = fl_key_dec_i64(v);
        author = fl_key_dec_i64(v + 8); /* the stored author, not the event's */
        err = fl_store_delete(s, k.buf, k.len);
    }
    const int64_t like_ids[2] = {post, user}, notif_ids[3] = {author, user, post};
    if (!err)
        err = fl_fact_count_add(ctx, s, FL_FACT_POST_LIKES, &post, added ? 1 : -1);
    if (!err)
        err = fl_fact_send(ctx, FL_FACT_LIKE, like_ids, 0, added, created_at);
    if (!err && user != author)
        err = fl_fact_send(ctx, FL_FACT_NOTIFICATION, notif_ids, FL_NOTIF_LIKE, added, created_at);
    if (!err)
        err = edge_forward(ctx, FL_EDGE_LIKE, added, user, author, post,
                           added ? created_at : ev->occurred_at);
    return failed(err, s, added ? "like" : "unlike", errstr, errstr_size);
}

static fl_err_t on_follow(fl_ctx_t *ctx, fl_store_t *s, const fl_event_t *ev, bool added,
                          char *errstr, size_t errstr_size)
{
    int64_t followee = ev->followee_id, follower = ev->follower_id, created_at;
    fl_key_t k;
    uint8_t v[8];
    bool found;
    fl_err_t err;

    if (followee == follower) {
        snprintf(errstr, errstr_size, "user %" PRId64 " cannot follow themselves", followee);
        return FL_ERR_INVALID;
    }
    fl_key_edge(&k, FL_KEY_TAG_FOLLOWER, followee, follower);
    if ((err = member_get(s, &k, v, sizeof(v), &found)))
        return failed(err, s, "reading a follow", errstr, errstr_size);
    if (found == added)
        return FL_OK; /* a repeated follow, or an unfollow without a follow */
    if (added) {
        created_at = ev->occurred_at;
        fl_key_enc_i64(v, created_at);
        err = fl_store_put(s, k.buf, k.len, v, sizeof(v));
    } else {
        created_at = fl_key_dec_i64(v);
        err = fl_store_delete(s, k.buf, k.len);
    }
    const int64_t follow_ids[2] = {followee, follower}, notif_ids[3] = {followee, follower, 0};
    if (!err)
        err = fl_fact_count_add(ctx, s, FL_FACT_FOLLOWERS, &followee, added ? 1 : -1);
    if (!err)
        err = fl_fact_send(ctx, FL_FACT_FOLLOW, follow_ids, 0, added, created_at);
    if (!err)
        err =
            fl_fact_send(ctx, FL_FACT_NOTIFICATION, notif_ids, FL_NOTIF_FOLLOW, added, created_at);
    if (!err)
        err = edge_forward(ctx, FL_EDGE_FOLLOW, added, follower, followee, 0,
                           added ? created_at : ev->occurred_at);
    return failed(err, s, added ? "follow" : "unfollow", errstr, errstr_size);
}

static fl_err_t post_put(fl_store_t *s, const fl_key_t *k, int64_t author, uint8_t state)
{
    uint8_t v[POST_VALUE_SIZE];
    fl_key_enc_i64(v, author);
    v[8] = state;
    return fl_store_put(s, k->buf, k->len, v, sizeof(v));
}

static fl_err_t on_post(fl_ctx_t *ctx, fl_store_t *s, const fl_event_t *ev, bool created,
                        char *errstr, size_t errstr_size)
{
    int64_t author = ev->author_id;
    fl_key_t k;
    uint8_t v[POST_VALUE_SIZE];
    bool found;
    fl_err_t err;

    fl_key_entity(&k, FL_KEY_TAG_POST, ev->post_id);
    err = member_get(s, &k, v, sizeof(v), &found);
    if (!err && found && v[8] != POST_LIVE && v[8] != POST_DELETED)
        err = FL_ERR_CORRUPT;
    if (err)
        return failed(err, s, "reading a post", errstr, errstr_size);
    if (found && fl_key_dec_i64(v) != author) {
        snprintf(errstr, errstr_size,
                 "post %" PRId64 " belongs to author %" PRId64 ", not %" PRId64, ev->post_id,
                 fl_key_dec_i64(v), author);
        return FL_ERR_INVALID;
    }
    if (created) {
        if (found)
            return FL_OK; /* a duplicate, or created after its deletion */
        err = post_put(s, &k, author, POST_LIVE);
    } else {
        if (found && v[8] == POST_DELETED)
            return FL_OK;
        /* An unknown post is remembered as deleted: its late PostCreated
         * is ignored, as in the fan-out. */
        err = post_put(s, &k, author, POST_DELETED);
        if (!found)
            return failed(err, s, "remembering a deletion", errstr, errstr_size);
    }
    if (!err)
        err = fl_fact_count_add(ctx, s, FL_FACT_POSTS, &author, created ? 1 : -1);
    return failed(err, s, created ? "post" : "post deletion", errstr, errstr_size);
}

/* The id the record is keyed and partitioned by. */
static int64_t key_id(const fl_event_t *ev)
{
    switch (ev->type) {
    case FL_EV_LIKE_ADDED:
    case FL_EV_LIKE_REMOVED:
        return ev->post_id;
    case FL_EV_FOLLOW_ADDED:
    case FL_EV_FOLLOW_REMOVED:
        return ev->followee_id;
    default:
        return ev->author_id;
    }
}

static fl_err_t engagement_process(fl_ctx_t *ctx, const fl_proc_record_t *rec, char *errstr,
                                   size_t errstr_size)
{
    fl_store_t *s = fl_ctx_store(ctx, FL_STORE_ENGAGEMENT);
    const fl_event_t *ev = rec->event;

    if (!s || !ev) {
        snprintf(errstr, errstr_size, "engagement: no store or no decoded event for %s",
                 rec->topic);
        return FL_ERR_CONFIG;
    }
    fl_err_t err = fl_event_validate(ev, errstr, errstr_size);
    if (err)
        return FL_ERR_INVALID;
    if (!fl_event_type_on_topic(ev->type, rec->topic)) {
        snprintf(errstr, errstr_size, "engagement does not take %s events from %s",
                 fl_event_desc(ev->type)->name, rec->topic);
        return FL_ERR_INVALID;
    }
    /* A record in the wrong partition would fork a set across two tasks. */
    int32_t parts = fl_ctx_partitions(ctx, rec->topic), want = fl_ctx_partition(ctx);
    if (parts > 0 && fl_partition_for_id(key_id(ev), parts) != want) {
        snprintf(errstr, errstr_size, "%s of %" PRId64 " belongs to partition %d, not %d",
                 rec->topic, key_id(ev), fl_partition_for_id(key_id(ev), parts), want);
        return FL_ERR_INVALID;
    }
    switch (ev->type) {
    case FL_EV_LIKE_ADDED:
    case FL_EV_LIKE_REMOVED:
        return on_like(ctx, s, ev, ev->type == FL_EV_LIKE_ADDED, errstr, errstr_size);
    case FL_EV_FOLLOW_ADDED:
    case FL_EV_FOLLOW_REMOVED:
        return on_follow(ctx, s, ev, ev->type == FL_EV_FOLLOW_ADDED, errstr, errstr_size);
    case FL_EV_POST_CREATED:
    case FL_EV_POST_DELETED:
        return on_post(ctx, s, ev, ev->type == FL_EV_POST_CREATED, errstr, errstr_size);
    default:
        snprintf(errstr, errstr_size, "engagement does not take %s events",
                 fl_event_desc(ev->type)->name);
        return FL_ERR_INVALID;
    }
}

const fl_processor_def_t fl_engagement_processor = {
    .name = "engagement",
    .process = engagement_process,
};
