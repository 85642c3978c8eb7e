/*
 * fl_timeline.c - applying timeline operations (rules in fl_timeline.h).
 *
 * Workload: the hot path of the whole pipeline. An insert of one post for
 * n recipients costs n USER reads and n writes, plus a point read only
 * when the post is not newer than everything in the timeline; trimming a
 * full timeline seeks to the user's lower bound and costs only the excess;
 * an insert that trimming would drop at once is not written at all.
 * USER is read once per recipient per operation and written once.
 *
 * Invariants: USER(u).count equals the number of TIMELINE(u, *) entries
 * and is at most timeline_cap after every operation; every entry lies
 * between USER(u).lo and USER(u).hi. A count mismatch seen while trimming
 * is reported as FL_ERR_CORRUPT rather than papered over, and so is a
 * stored key that does not parse: the whole record is validated before
 * any of it is applied, so no FL_ERR_INVALID may come after a write
 * (fl_proc.h).
 */
#include "fl_timeline.h"
#include "fl_trim.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* USER(u): the count of u's entries and bounds on them, so that the hot
 * path can skip RocksDB work: every entry is >= lo (trimming seeks there
 * instead of to the start of the user's range, which would walk over the
 * tombstones of every earlier trim) and <= hi (an insert above hi cannot
 * be a duplicate: no point read needed). Bounds are (created_at, post).
 * Once the cap has dropped an entry (trimmed, or refused as older than a
 * full timeline), the newest such entry is the trim mark and the record
 * grows to 56 bytes; it then stays even at count 0 (fl_timeline.h). */
typedef struct tl_meta {
    int64_t count;
    int64_t lo_t, lo_p, hi_t, hi_p;
    bool marked;
    int64_t mark_t, mark_p;
} tl_meta_t;

/* A USER value of either size into m (zeroed first). */
static fl_err_t meta_decode(const uint8_t *v, size_t vlen, tl_meta_t *m)
{
    memset(m, 0, sizeof(*m));
    if (vlen != FL_TIMELINE_META_SIZE && vlen != FL_TIMELINE_META_MARKED_SIZE)
        return FL_ERR_CORRUPT;
    m->count = fl_key_dec_i64(v);
    m->lo_t = fl_key_dec_i64(v + 8);
    m->lo_p = fl_key_dec_i64(v + 16);
    m->hi_t = fl_key_dec_i64(v + 24);
    m->hi_p = fl_key_dec_i64(v + 32);
    if ((m->marked = vlen == FL_TIMELINE_META_MARKED_SIZE)) {
        m->mark_t = fl_key_dec_i64(v + 40);
        m->mark_p = fl_key_dec_i64(v + 48);
    }
    return FL_OK;
}

fl_err_t fl_timeline_meta_parse(const void *val, size_t len, fl_timeline_meta_t *out)
{
    tl_meta_t m;
    fl_err_t err = meta_decode(val, len, &m);
    *out = (fl_timeline_meta_t){m.count, m.marked, m.mark_t, m.mark_p};
    return err;
}

static fl_err_t meta_get(fl_store_t *s, int64_t user, tl_meta_t *m)
{
    fl_key_t k;
    uint8_t v[FL_TIMELINE_META_MARKED_SIZE];
    size_t vlen;
    bool found;

    memset(m, 0, sizeof(*m));
    fl_key_entity(&k, FL_KEY_TAG_USER, user);
    fl_err_t err = fl_store_get(s, k.buf, k.len, v, sizeof(v), &vlen, &found);
    if (err || !found)
        return err;
    return meta_decode(v, vlen, m);
}

static fl_err_t meta_put(fl_store_t *s, int64_t user, const tl_meta_t *m)
{
    fl_key_t k;
    uint8_t v[FL_TIMELINE_META_MARKED_SIZE];
    fl_key_entity(&k, FL_KEY_TAG_USER, user);
    if (m->count == 0 && !m->marked)
        return fl_store_delete(s, k.buf, k.len);
    fl_key_enc_i64(v, m->count);
    fl_key_enc_i64(v + 8, m->lo_t);
    fl_key_enc_i64(v + 16, m->lo_p);
    fl_key_enc_i64(v + 24, m->hi_t);
    fl_key_enc_i64(v + 32, m->hi_p);
    if (m->marked) {
        fl_key_enc_i64(v + 40, m->mark_t);
        fl_key_enc_i64(v + 48, m->mark_p);
    }
    return fl_store_put(s, k.buf, k.len, v,
                        m->marked ? FL_TIMELINE_META_MARKED_SIZE : FL_TIMELINE_META_SIZE);
}

fl_err_t fl_timeline_count(fl_store_t *s, int64_t user, int64_t *count)
{
    tl_meta_t m;
    fl_err_t err = meta_get(s, user, &m);
    *count = m.count;
    return err;
}

static fl_err_t entry_exists(fl_store_t *s, const fl_key_t *k, bool *found)
{
    uint8_t v[8];
    size_t vlen;
    return fl_store_get(s, k->buf, k->len, v, sizeof(v), &vlen, found);
}

/* An iterator over user's entries positioned at the oldest one. */
static fl_err_t oldest_first(fl_store_t *s, int64_t user, const tl_meta_t *m, fl_store_iter_t **it)
{
    fl_key_t prefix, lo;
    fl_key_entity(&prefix, FL_KEY_TAG_TIMELINE, user);
    fl_err_t err = fl_store_iter_new(s, prefix.buf, prefix.len, it);
    if (err)
        return err;
    fl_key_timeline(&lo, user, m->lo_t, m->lo_p);
    fl_store_iter_seek(*it, lo.buf, lo.len);
    return FL_OK;
}

static bool meta_eq(const tl_meta_t *a, const tl_meta_t *b)
{
    return a->count == b->count && a->lo_t == b->lo_t && a->lo_p == b->lo_p && a->hi_t == b->hi_t &&
           a->hi_p == b->hi_p && a->marked == b->marked && a->mark_t == b->mark_t &&
           a->mark_p == b->mark_p;
}

/* The cap dropped (created_at t, post p): the trim mark rises to it. */
static void raise_mark(tl_meta_t *m, int64_t t, int64_t p)
{
    if (!m->marked || fl_key_tp_cmp(t, p, m->mark_t, m->mark_p) > 0) {
        m->marked = true;
        m->mark_t = t;
        m->mark_p = p;
    }
}

/* Each trimmed entry moves the lower bound (still <= every remaining
 * entry) and raises the trim mark; a stored key that does not parse is
 * damaged state, not a bad record. */
static fl_err_t trimmed(void *arg, const void *key, size_t klen)
{
    tl_meta_t *m = arg;
    int64_t u, t, p;
    if (fl_key_parse_timeline(key, klen, &u, &t, &p))
        return FL_ERR_CORRUPT;
    m->count--;
    m->lo_t = t;
    m->lo_p = p;
    raise_mark(m, t, p);
    return FL_OK;
}

/*
 * Makes room for the new entry k in user's timeline: drops the oldest
 * entries (by created_at, then post id) so that after the insert at most
 * cap remain (fl_trim.h). Keys are oldest first and the walk starts at
 * the lower bound.
 */
static fl_err_t make_room(fl_store_t *s, int64_t user, const fl_key_t *k, tl_meta_t *m, int64_t cap,
                          bool *keep)
{
    fl_store_iter_t *it = NULL;
    int64_t drop = m->count + 1 - cap; /* entries to drop, k included */

    *keep = true;
    if (drop <= 0)
        return FL_OK;
    fl_err_t err = oldest_first(s, user, m, &it);
    if (!err)
        err = fl_trim_oldest(s, it, false, k, drop, keep, trimmed, m);
    fl_store_iter_free(it);
    return err;
}

static fl_err_t apply_posts(fl_store_t *s, const fl_tlop_t *op, int64_t user, int64_t cap,
                            uint64_t *inserted)
{
    tl_meta_t m, before;
    fl_err_t err = meta_get(s, user, &m);
    before = m;
    for (uint32_t i = 0; !err && i < op->n_posts; i++) {
        const fl_tlop_post_t *p = &op->posts[i];
        fl_key_t k;
        bool found = false, keep;
        fl_key_timeline(&k, user, p->created_at, p->post_id);
        /* Above the upper bound nothing can exist: no read needed. */
        if (m.count > 0 && (op->op != FL_TLOP_INSERT ||
                            fl_key_tp_cmp(p->created_at, p->post_id, m.hi_t, m.hi_p) <= 0))
            err = entry_exists(s, &k, &found);
        if (err || found == (op->op == FL_TLOP_INSERT))
            continue;
        if (op->op == FL_TLOP_INSERT) {
            err = make_room(s, user, &k, &m, cap, &keep);
            if (!err && !keep)
                raise_mark(&m, p->created_at, p->post_id);
            if (err || !keep)
                continue;
            uint8_t v[8];
            fl_key_enc_i64(v, p->author_id);
            err = fl_store_put(s, k.buf, k.len, v, sizeof(v));
            if (m.count == 0 || fl_key_tp_cmp(p->created_at, p->post_id, m.lo_t, m.lo_p) < 0) {
                m.lo_t = p->created_at;
                m.lo_p = p->post_id;
            }
            if (m.count == 0 || fl_key_tp_cmp(p->created_at, p->post_id, m.hi_t, m.hi_p) > 0) {
                m.hi_t = p->created_at;
                m.hi_p = p->post_id;
            }
            m.count++;
            (*inserted)++;
        } else {
            err = fl_store_delete(s, k.buf, k.len);
            m.count--;
        }
    }
    if (!err && !meta_eq(&m, &before))
        err = meta_put(s, user, &m);
    return err;
}

static fl_err_t remove_author(fl_store_t *s, int64_t author, int64_t user)
{
    fl_store_iter_t *it = NULL;
    int64_t removed = 0;
    tl_meta_t m;
    fl_err_t err = meta_get(s, user, &m);

    if (err || m.count == 0)
        return err;
    err = oldest_first(s, user, &m, &it);
    if (err)
        return err;
    for (; fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t klen, vlen;
        const void *key = fl_store_iter_key(it, &klen);
        const uint8_t *val = fl_store_iter_value(it, &vlen);
        if (vlen != 8) {
            err = FL_ERR_CORRUPT;
            break;
        }
        if (fl_key_dec_i64(val) != author)
            continue;
        err = fl_store_delete(s, key, klen);
        if (err)
            break;
        removed++;
    }
    if (!err)
        err = fl_store_iter_status(it);
    fl_store_iter_free(it);
    if (!err && removed) {
        m.count -= removed; /* the bounds stay bounds */
        err = meta_put(s, user, &m);
    }
    return err;
}

static fl_err_t timeline_process(fl_ctx_t *ctx, const fl_proc_record_t *rec, char *errstr,
                                 size_t errstr_size)
{
    fl_store_t *s = fl_ctx_store(ctx, FL_STORE_TIMELINES);
    int32_t parts = fl_ctx_partitions(ctx, FL_TOPIC_TIMELINE_OPS);
    int64_t cap = fl_ctx_settings(ctx)->timeline_cap;
    fl_tlop_t op;
    uint64_t inserted = 0;
    fl_err_t err;

    if (!s || parts < 1) {
        snprintf(errstr, errstr_size, "timeline: store or topic missing from the topology");
        return FL_ERR_CONFIG;
    }
    err = fl_tlop_decode(rec->value, rec->value_len, &op, errstr, errstr_size);
    if (err)
        return err == FL_ERR_NOMEM ? err : FL_ERR_INVALID;
    /* Validate the whole record before applying any of it. */
    for (uint32_t i = 0; i < op.n_recipients; i++) {
        if (fl_partition_for_id(op.recipients[i], parts) != fl_ctx_partition(ctx)) {
            snprintf(errstr, errstr_size,
                     "recipient %" PRId64 " does not belong to partition %d of %s",
                     op.recipients[i], fl_ctx_partition(ctx), FL_TOPIC_TIMELINE_OPS);
            err = FL_ERR_INVALID;
            goto out;
        }
    }
    for (uint32_t i = 0; !err && i < op.n_recipients; i++) {
        if (op.op == FL_TLOP_REMOVE_AUTHOR)
            err = remove_author(s, op.author_id, op.recipients[i]);
        else
            err = apply_posts(s, &op, op.recipients[i], cap, &inserted);
    }
    if (err)
        snprintf(errstr, errstr_size, "store %s: %s (%s)", FL_STORE_TIMELINES, fl_err_str(err),
                 fl_store_errmsg(s));
    else
        fl_ctx_count(ctx, "timeline_entries_inserted", inserted);
out:
    fl_tlop_clear(&op);
    return err;
}

const fl_processor_def_t fl_timeline_processor = {
    .name = "timeline",
    .process = timeline_process,
};
