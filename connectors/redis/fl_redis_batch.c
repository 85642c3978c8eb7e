/*
 * fl_redis_batch.c - the Redis sink's batch: input records turned into
 * validated operations, and the flush script's arguments for a chunk of
 * them (layout: fl_redis_script.c). Pure: no sockets, no hiredis.
 *
 * Every check happens here, so that the script never meets a bad input: a
 * record that does not decode is FL_ERR_INVALID before anything of it is
 * kept. Non-feed operations are stored already encoded as script
 * arguments (length-prefixed strings in one arena); feed entries are kept
 * as numbers, because a chunk collapses them: per (user, post) the last
 * change wins (the changelog is a table of current values), and per user
 * the removals go first and the insertions after, in as few commands as
 * the group limit allows.
 *
 * Inputs and what becomes of them:
 *   feedline.timelines-changelog  TIMELINE(user, created_at, post) -> author,
 *                                 tombstone on removal; other tags skipped
 *   posts                         PostCreated, PostDeleted
 *   users                         UserRegistered, UserUpdated
 *   feedline.engagement           facts (fl_engage.h); LIKE facts skipped
 *   feedline.celebrities          {"author_id":A,"celebrity":true|false,...}
 *
 * Workload: thousands of records per batch, most of them feed entries of
 * the timelines changelog; everything is appended, nothing searched but the
 * batch's few parts.
 */
#include "fl_redis_int.h"

#include "fl_celebrity.h"
#include "fl_engage.h"
#include "fl_keys.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC_TIMELINES  "feedline.timelines-changelog"
#define TOPIC_USERS      "users"
#define TOPIC_ENGAGEMENT "feedline.engagement"

/* RESP framing of one argument ("$len\r\n" ... "\r\n"), roughly. */
#define ARG_OVERHEAD 8
/* An encoded feed entry: two numbers and the group's share. */
#define FEED_BYTES 48

typedef struct bpart {
    char *name; /* "topic/partition" */
} bpart_t;

typedef struct brec {
    uint32_t part;
    int64_t offset;
    size_t op_end;    /* ops[..op_end) belong to this and earlier records */
    size_t feed_end;  /* likewise feeds[] */
    size_t bytes_end; /* argument bytes of this and earlier records */
} brec_t;

typedef struct bop {
    size_t arg_off; /* first argument in the arena */
    uint32_t nargs;
} bop_t;

typedef struct bfeed {
    int64_t user, post, created_at;
    uint32_t seq; /* order of arrival, for "last change wins" */
    uint8_t present;
} bfeed_t;

/* A growable array of elements of size sz. */
typedef struct vec {
    void *p;
    size_t n, cap;
} vec_t;

struct fl_redis_batch {
    vec_t parts; /* bpart_t */
    vec_t recs;  /* brec_t */
    vec_t ops;   /* bop_t */
    vec_t feeds; /* bfeed_t */
    vec_t arena; /* char: u32 length + bytes, per argument */
    size_t bytes;
    size_t done;    /* records committed by earlier chunks */
    size_t pending; /* end of the chunk built last */
    /* chunk scratch */
    vec_t sbuf;    /* char: every argument of the chunk */
    vec_t argoff;  /* size_t: offset of each argument in sbuf */
    vec_t argvlen; /* size_t */
    vec_t argv;    /* const char * */
    vec_t sorted;  /* bfeed_t */
};

static int vec_reserve(vec_t *v, size_t sz, size_t more)
{
    if (v->n + more <= v->cap)
        return 0;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + more)
        cap *= 2;
    void *p = realloc(v->p, cap * sz);
    if (!p)
        return -1;
    v->p = p;
    v->cap = cap;
    return 0;
}

#define VEC_AT(v, type, i) (((type *)(v).p)[i])

fl_redis_batch_t *fl_redis_batch_new(void)
{
    return calloc(1, sizeof(fl_redis_batch_t));
}

void fl_redis_batch_clear(fl_redis_batch_t *b)
{
    b->recs.n = b->ops.n = b->feeds.n = b->arena.n = 0;
    b->bytes = b->done = b->pending = 0;
}

void fl_redis_batch_free(fl_redis_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->parts.n; i++)
        free(VEC_AT(b->parts, bpart_t, i).name);
    vec_t *all[] = {&b->parts, &b->recs,   &b->ops,     &b->feeds, &b->arena,
                    &b->sbuf,  &b->argoff, &b->argvlen, &b->argv,  &b->sorted};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]->p);
    free(b);
}

size_t fl_redis_batch_records(const fl_redis_batch_t *b)
{
    return b->recs.n;
}

size_t fl_redis_batch_done(const fl_redis_batch_t *b)
{
    return b->done;
}

size_t fl_redis_batch_ops(const fl_redis_batch_t *b)
{
    return b->ops.n + b->feeds.n;
}

/* ---- encoding of stored operations ---- */

/* The operation being added; ops.n is bumped by op_end(). */
static fl_err_t op_begin(fl_redis_batch_t *b)
{
    if (vec_reserve(&b->ops, sizeof(bop_t), 1))
        return FL_ERR_NOMEM;
    VEC_AT(b->ops, bop_t, b->ops.n) = (bop_t){.arg_off = b->arena.n, .nargs = 0};
    return FL_OK;
}

static fl_err_t op_arg(fl_redis_batch_t *b, const char *s, size_t len)
{
    if (len > UINT32_MAX || vec_reserve(&b->arena, 1, 4 + len))
        return FL_ERR_NOMEM;
    uint32_t l = (uint32_t)len;
    memcpy((char *)b->arena.p + b->arena.n, &l, 4);
    memcpy((char *)b->arena.p + b->arena.n + 4, s, len);
    b->arena.n += 4 + len;
    VEC_AT(b->ops, bop_t, b->ops.n).nargs++;
    b->bytes += len + ARG_OVERHEAD;
    return FL_OK;
}

static fl_err_t op_str(fl_redis_batch_t *b, const char *s)
{
    return op_arg(b, s, strlen(s));
}

static fl_err_t op_i64(fl_redis_batch_t *b, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    return op_arg(b, buf, (size_t)n);
}

/* "prefix:{id}" */
static fl_err_t op_key(fl_redis_batch_t *b, const char *prefix, int64_t id)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%s:{%" PRId64 "}", prefix, id);
    return op_arg(b, buf, (size_t)n);
}

static void op_end(fl_redis_batch_t *b)
{
    b->ops.n++;
}

/* An operation of an opcode, a key and up to two more arguments. */
static fl_err_t op_simple(fl_redis_batch_t *b, const char *opcode, const char *prefix, int64_t id,
                          const char *a1, const char *a2)
{
    fl_err_t err = op_begin(b);
    if (!err)
        err = op_str(b, opcode);
    if (!err)
        err = op_key(b, prefix, id);
    if (!err && a1)
        err = op_str(b, a1);
    if (!err && a2)
        err = op_str(b, a2);
    if (!err)
        op_end(b);
    return err;
}

/* h key 1 field value: one hash field of prefix:{id}. */
static fl_err_t op_hset1(fl_redis_batch_t *b, const char *prefix, int64_t id, const char *field,
                         const char *value)
{
    fl_err_t err = op_begin(b);
    if (!err)
        err = op_str(b, "h");
    if (!err)
        err = op_key(b, prefix, id);
    if (!err)
        err = op_str(b, "1");
    if (!err)
        err = op_str(b, field);
    if (!err)
        err = op_str(b, value);
    if (!err)
        op_end(b);
    return err;
}

static void fmt_i64(char *buf, size_t size, int64_t v)
{
    snprintf(buf, size, "%" PRId64, v);
}

/* ---- records ---- */

static fl_err_t add_timeline(fl_redis_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                             size_t errstr_size)
{
    const uint8_t *k = rec->key;
    if (rec->key_len == 0 || !k || k[0] != FL_KEY_TAG_TIMELINE)
        return FL_OK; /* the store's other families (USER counts) */
    int64_t user, created, post;
    if (fl_key_parse_timeline(rec->key, rec->key_len, &user, &created, &post)) {
        snprintf(errstr, errstr_size, "malformed timeline key (%zu bytes)", rec->key_len);
        return FL_ERR_INVALID;
    }
    if (rec->value && rec->value_len != 8) {
        snprintf(errstr, errstr_size, "timeline value of %zu bytes, expected 8", rec->value_len);
        return FL_ERR_INVALID;
    }
    if (user <= 0 || post <= 0 || created < 0) {
        snprintf(errstr, errstr_size, "timeline entry (%" PRId64 ", %" PRId64 ", %" PRId64 ")",
                 user, created, post);
        return FL_ERR_INVALID;
    }
    if (vec_reserve(&b->feeds, sizeof(bfeed_t), 1))
        return FL_ERR_NOMEM;
    bfeed_t *f = &VEC_AT(b->feeds, bfeed_t, b->feeds.n);
    *f = (bfeed_t){.user = user,
                   .post = post,
                   .created_at = created,
                   .seq = (uint32_t)b->feeds.n,
                   .present = rec->value != NULL};
    b->feeds.n++;
    b->bytes += FEED_BYTES;
    return FL_OK;
}

static fl_err_t add_post(fl_redis_batch_t *b, const fl_event_t *ev)
{
    fl_err_t err = op_begin(b);
    if (err)
        return err;
    if (ev->type == FL_EV_POST_DELETED) {
        err = op_str(b, "D");
        if (!err)
            err = op_i64(b, ev->post_id);
        if (!err)
            err = op_i64(b, ev->author_id);
    } else {
        const char *text = ev->text ? ev->text : "";
        err = op_str(b, "P");
        if (!err)
            err = op_i64(b, ev->post_id);
        if (!err)
            err = op_i64(b, ev->author_id);
        if (!err)
            err = op_i64(b, ev->created_at);
        if (!err)
            err = op_str(b, fl_visibility_name(ev->visibility));
        if (!err)
            err = ev->has_reply_to ? op_i64(b, ev->reply_to) : op_arg(b, "", 0);
        if (!err)
            err = op_str(b, text);
    }
    if (!err)
        op_end(b);
    return err;
}

static fl_err_t add_user(fl_redis_batch_t *b, const fl_event_t *ev)
{
    const char *f[3][2];
    size_t nf = 0;
    if (ev->type == FL_EV_USER_REGISTERED && ev->handle)
        f[nf][0] = "handle", f[nf++][1] = ev->handle;
    if (ev->display_name)
        f[nf][0] = "display_name", f[nf++][1] = ev->display_name;
    if (ev->bio)
        f[nf][0] = "bio", f[nf++][1] = ev->bio;
    fl_err_t err = FL_OK;
    if (nf > 0) {
        err = op_begin(b);
        if (!err)
            err = op_str(b, "h");
        if (!err)
            err = op_key(b, "user", ev->user_id);
        if (!err)
            err = op_i64(b, (int64_t)nf);
        for (size_t i = 0; i < nf && !err; i++) {
            err = op_str(b, f[i][0]);
            if (!err)
                err = op_str(b, f[i][1]);
        }
        if (!err)
            op_end(b);
    }
    /* The contract's counters and flag exist from registration on; the
     * facts that set them come later, or never for a count of zero. */
    static const char *const zero[] = {"followers_count", "following_count", "posts_count",
                                       "is_celebrity"};
    for (size_t i = 0; ev->type == FL_EV_USER_REGISTERED && !err && i < 4; i++)
        err = op_simple(b, "k", "user", ev->user_id, zero[i], "0");
    return err;
}

static fl_err_t add_event(fl_redis_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                          size_t errstr_size)
{
    const fl_event_t *ev = rec->event;
    if (!ev) {
        snprintf(errstr, errstr_size, "record of %s without a decoded event", rec->topic);
        return FL_ERR_INVALID;
    }
    if (!fl_event_type_on_topic(ev->type, rec->topic)) {
        const fl_event_desc_t *d = fl_event_desc(ev->type);
        snprintf(errstr, errstr_size, "event %s does not belong on %s", d ? d->name : "?",
                 rec->topic);
        return FL_ERR_INVALID;
    }
    fl_err_t err = fl_event_validate(ev, errstr, errstr_size);
    if (err)
        return err;
    return strcmp(rec->topic, FL_TOPIC_POSTS) == 0 ? add_post(b, ev) : add_user(b, ev);
}

static fl_err_t add_fact(fl_redis_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                         size_t errstr_size)
{
    fl_fact_t f;
    fl_err_t err =
        fl_fact_decode(rec->key, rec->key_len, rec->value, rec->value_len, &f, errstr, errstr_size);
    if (err)
        return err;
    int ids = f.kind <= FL_FACT_POSTS ? 1 : f.kind == FL_FACT_NOTIFICATION ? 3 : 2;
    for (int i = 0; i < ids; i++) {
        /* a follow notification names no post */
        int64_t min = f.kind == FL_FACT_NOTIFICATION && i == 2 ? 0 : 1;
        if (f.id[i] < min) {
            snprintf(errstr, errstr_size, "fact kind %d with id %" PRId64, (int)f.kind, f.id[i]);
            return FL_ERR_INVALID;
        }
    }
    char v[24], id1[24], member[80];
    fmt_i64(v, sizeof(v), f.present ? f.value : 0);
    switch (f.kind) {
    case FL_FACT_POST_LIKES:
        err = op_begin(b);
        if (!err)
            err = op_str(b, "L");
        if (!err)
            err = op_i64(b, f.id[0]);
        if (!err)
            err = f.present ? op_str(b, v) : op_arg(b, "", 0);
        if (!err)
            op_end(b);
        return err;
    case FL_FACT_FOLLOWERS:
        return op_hset1(b, "user", f.id[0], "followers_count", v);
    case FL_FACT_FOLLOWING:
        return op_hset1(b, "user", f.id[0], "following_count", v);
    case FL_FACT_POSTS:
        return op_hset1(b, "user", f.id[0], "posts_count", v);
    case FL_FACT_AFFINITY:
        fmt_i64(id1, sizeof(id1), f.id[1]);
        if (!f.present)
            return op_simple(b, "x", "affinity", f.id[0], id1, NULL);
        return op_hset1(b, "affinity", f.id[0], id1, v);
    case FL_FACT_NOTIFICATION:
        snprintf(member, sizeof(member), "%s:%" PRId64 ":%" PRId64,
                 f.nkind == FL_NOTIF_FOLLOW ? "follow" : "like", f.id[1], f.id[2]);
        if (!f.present)
            return op_simple(b, "N", "notif", f.id[0], member, NULL);
        return op_simple(b, "n", "notif", f.id[0], v, member);
    case FL_FACT_FOLLOW:
        /* following:{follower} holds the followees */
        fmt_i64(id1, sizeof(id1), f.id[0]);
        return op_simple(b, f.present ? "s" : "S", "following", f.id[1], id1, NULL);
    case FL_FACT_LIKE:
        return FL_OK; /* who liked what: not kept in Redis */
    }
    snprintf(errstr, errstr_size, "unknown fact kind %d", (int)f.kind);
    return FL_ERR_INVALID;
}

static fl_err_t add_celebrity(fl_redis_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                              size_t errstr_size)
{
    if (!rec->value)
        return FL_OK; /* a compacted-away author: its last status stays */
    int64_t author;
    bool celebrity;
    fl_err_t err =
        fl_celebrity_decode(rec->value, rec->value_len, &author, &celebrity, errstr, errstr_size);
    if (err)
        return err;
    char id[24];
    fmt_i64(id, sizeof(id), author);
    err = op_begin(b);
    if (!err)
        err = op_str(b, celebrity ? "s" : "S");
    if (!err)
        err = op_str(b, "celebrities");
    if (!err)
        err = op_str(b, id);
    if (!err) {
        op_end(b);
        err = op_hset1(b, "user", author, "is_celebrity", celebrity ? "1" : "0");
    }
    return err;
}

static fl_err_t part_index(fl_redis_batch_t *b, const char *topic, int32_t partition, uint32_t *idx)
{
    char name[256];
    snprintf(name, sizeof(name), "%s/%" PRId32, topic, partition);
    for (size_t i = 0; i < b->parts.n; i++) {
        if (strcmp(VEC_AT(b->parts, bpart_t, i).name, name) == 0) {
            *idx = (uint32_t)i;
            return FL_OK;
        }
    }
    char *dup = strdup(name);
    if (!dup || vec_reserve(&b->parts, sizeof(bpart_t), 1)) {
        free(dup);
        return FL_ERR_NOMEM;
    }
    VEC_AT(b->parts, bpart_t, b->parts.n).name = dup;
    *idx = (uint32_t)b->parts.n++;
    return FL_OK;
}

fl_err_t fl_redis_batch_add(fl_redis_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                            size_t errstr_size)
{
    size_t ops = b->ops.n, feeds = b->feeds.n, arena = b->arena.n, bytes = b->bytes;
    uint32_t part;
    fl_err_t err = part_index(b, rec->topic, rec->partition, &part);
    if (!err && vec_reserve(&b->recs, sizeof(brec_t), 1))
        err = FL_ERR_NOMEM;
    if (err)
        return err;
    const char *t = rec->topic;
    if (strcmp(t, TOPIC_TIMELINES) == 0)
        err = add_timeline(b, rec, errstr, errstr_size);
    else if (strcmp(t, FL_TOPIC_POSTS) == 0 || strcmp(t, TOPIC_USERS) == 0)
        err = add_event(b, rec, errstr, errstr_size);
    else if (strcmp(t, TOPIC_ENGAGEMENT) == 0)
        err = add_fact(b, rec, errstr, errstr_size);
    else if (strcmp(t, FL_TOPIC_CELEBRITIES) == 0)
        err = add_celebrity(b, rec, errstr, errstr_size);
    else {
        snprintf(errstr, errstr_size, "topic %s is not an input of the Redis sink", t);
        err = FL_ERR_INVALID;
    }
    if (err) {
        /* nothing of a rejected record stays */
        b->ops.n = ops, b->feeds.n = feeds, b->arena.n = arena, b->bytes = bytes;
        return err;
    }
    VEC_AT(b->recs, brec_t, b->recs.n++) = (brec_t){.part = part,
                                                    .offset = rec->offset,
                                                    .op_end = b->ops.n,
                                                    .feed_end = b->feeds.n,
                                                    .bytes_end = b->bytes};
    return FL_OK;
}

/* ---- a chunk's arguments ---- */

static fl_err_t put(fl_redis_batch_t *b, const char *s, size_t len)
{
    if (vec_reserve(&b->sbuf, 1, len) || vec_reserve(&b->argoff, sizeof(size_t), 1) ||
        vec_reserve(&b->argvlen, sizeof(size_t), 1))
        return FL_ERR_NOMEM;
    memcpy((char *)b->sbuf.p + b->sbuf.n, s, len);
    VEC_AT(b->argoff, size_t, b->argoff.n++) = b->sbuf.n;
    VEC_AT(b->argvlen, size_t, b->argvlen.n++) = len;
    b->sbuf.n += len;
    return FL_OK;
}

static fl_err_t put_str(fl_redis_batch_t *b, const char *s)
{
    return put(b, s, strlen(s));
}

static fl_err_t put_i64(fl_redis_batch_t *b, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    return put(b, buf, (size_t)n);
}

static fl_err_t put_off(fl_redis_batch_t *b, int64_t off)
{
    return off == FL_SINK_NO_OFFSET ? put(b, "", 0) : put_i64(b, off);
}

static int feed_cmp(const void *pa, const void *pb)
{
    const bfeed_t *x = pa, *y = pb;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    if (x->post != y->post)
        return x->post < y->post ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One F operation: user's removals rem[0..nr) and insertions add[0..na). */
static fl_err_t put_feed_op(fl_redis_batch_t *b, int64_t user, const bfeed_t *const *rem, size_t nr,
                            const bfeed_t *const *add, size_t na)
{
    fl_err_t err = put_str(b, "F");
    if (!err)
        err = put_i64(b, user);
    if (!err)
        err = put_i64(b, (int64_t)nr);
    if (!err)
        err = put_i64(b, (int64_t)na);
    for (size_t i = 0; i < nr && !err; i++)
        err = put_i64(b, rem[i]->post);
    for (size_t i = 0; i < na && !err; i++) {
        err = put_i64(b, add[i]->created_at);
        if (!err)
            err = put_i64(b, add[i]->post);
    }
    return err;
}

/* The feed entries feeds[lo..hi): last change per (user, post), grouped per user. */
static fl_err_t put_feeds(fl_redis_batch_t *b, size_t lo, size_t hi)
{
    size_t n = hi - lo;
    if (n == 0)
        return FL_OK;
    b->sorted.n = 0;
    if (vec_reserve(&b->sorted, sizeof(bfeed_t), n))
        return FL_ERR_NOMEM;
    bfeed_t *s = b->sorted.p;
    memcpy(s, &VEC_AT(b->feeds, bfeed_t, lo), n * sizeof(bfeed_t));
    qsort(s, n, sizeof(bfeed_t), feed_cmp);
    const bfeed_t **rem = malloc(2 * n * sizeof(*rem));
    if (!rem)
        return FL_ERR_NOMEM;
    const bfeed_t **add = rem + n;
    fl_err_t err = FL_OK;
    for (size_t i = 0; i < n && !err;) {
        int64_t user = s[i].user;
        size_t nr = 0, na = 0;
        for (; i < n && s[i].user == user; i++) {
            if (i + 1 < n && s[i + 1].user == user && s[i + 1].post == s[i].post)
                continue; /* a later change of the same entry wins */
            if (s[i].present)
                add[na++] = &s[i];
            else
                rem[nr++] = &s[i];
        }
        for (size_t r = 0; r < nr && !err; r += FL_REDIS_GROUP_MAX) {
            size_t k = nr - r < FL_REDIS_GROUP_MAX ? nr - r : FL_REDIS_GROUP_MAX;
            err = put_feed_op(b, user, rem + r, k, NULL, 0);
        }
        for (size_t a = 0; a < na && !err; a += FL_REDIS_GROUP_MAX) {
            size_t k = na - a < FL_REDIS_GROUP_MAX ? na - a : FL_REDIS_GROUP_MAX;
            err = put_feed_op(b, user, NULL, 0, add + a, k);
        }
    }
    free(rem);
    return err;
}

fl_err_t fl_redis_batch_chunk(fl_redis_batch_t *b, const char *marker, const char *epoch,
                              fl_redis_part_t *const *parts, const int64_t *next, size_t n,
                              const fl_redis_caps_t *caps, fl_redis_args_t *out, int64_t *new_off,
                              int *last)
{
    const brec_t *recs = b->recs.p;
    size_t start = b->done, end = start;
    size_t base = start ? recs[start - 1].bytes_end : 0;
    while (end < b->recs.n && (end == start || recs[end].bytes_end - base <= FL_REDIS_CHUNK_BYTES))
        end++;
    *last = end == b->recs.n;
    for (size_t i = 0; i < n; i++)
        new_off[i] = *last ? next[i] : parts[i]->committed;
    if (!*last) {
        /* a chunk before the last: its parts move to just past its records */
        for (size_t r = start; r < end; r++) {
            const char *name = VEC_AT(b->parts, bpart_t, recs[r].part).name;
            for (size_t i = 0; i < n; i++) {
                if (strcmp(parts[i]->name, name) == 0) {
                    new_off[i] = recs[r].offset + 1;
                    break;
                }
            }
        }
    }
    b->sbuf.n = b->argoff.n = b->argvlen.n = 0;
    fl_err_t err = put_str(b, "EVALSHA");
    if (!err)
        err = put(b, "", 0); /* the script's sha, set by the caller */
    if (!err)
        err = put_str(b, "1");
    if (!err)
        err = put_str(b, marker);
    if (!err)
        err = put_str(b, epoch);
    if (!err)
        err = put_i64(b, (int64_t)n);
    for (size_t i = 0; i < n && !err; i++) {
        err = put_str(b, parts[i]->gen_field);
        if (!err)
            err = put_str(b, parts[i]->off_field);
        if (!err)
            err = put_i64(b, parts[i]->gen);
        if (!err)
            err = put_off(b, parts[i]->committed);
        if (!err)
            err = put_off(b, new_off[i]);
    }
    if (!err)
        err = put_i64(b, caps->feed);
    if (!err)
        err = put_i64(b, caps->outbox);
    if (!err)
        err = put_i64(b, caps->notif);
    if (!err)
        err = put_i64(b, caps->publish);
    size_t op_lo = start ? recs[start - 1].op_end : 0, op_hi = end ? recs[end - 1].op_end : 0;
    for (size_t o = op_lo; o < op_hi && !err; o++) {
        const bop_t *op = &VEC_AT(b->ops, bop_t, o);
        size_t at = op->arg_off;
        for (uint32_t a = 0; a < op->nargs && !err; a++) {
            uint32_t len;
            memcpy(&len, (char *)b->arena.p + at, 4);
            err = put(b, (char *)b->arena.p + at + 4, len);
            at += 4 + len;
        }
    }
    if (!err) {
        size_t f_lo = start ? recs[start - 1].feed_end : 0, f_hi = end ? recs[end - 1].feed_end : 0;
        err = put_feeds(b, f_lo, f_hi);
    }
    if (!err && vec_reserve(&b->argv, sizeof(char *), b->argoff.n))
        err = FL_ERR_NOMEM;
    if (err)
        return err;
    for (size_t i = 0; i < b->argoff.n; i++)
        VEC_AT(b->argv, const char *, i) = (const char *)b->sbuf.p + VEC_AT(b->argoff, size_t, i);
    out->argc = b->argoff.n;
    out->argv = b->argv.p;
    out->argvlen = b->argvlen.p;
    b->pending = end;
    return FL_OK;
}

void fl_redis_batch_chunk_done(fl_redis_batch_t *b)
{
    b->done = b->pending;
}
