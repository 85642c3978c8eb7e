/*
 * fl_timeline.c - applying timeline operations (rules in fl_timeline.h).
 *
 * Workload: the hot path of the whole pipeline. An insert of one post for
 * n recipients costs n USER reads and n writes, plus a point read only
 * when the post is not newer than everything in the timeline; trimming a
 * full timeline takes the oldest entry from the window kept in USER, and
 * only once per FL_TIMELINE_WINDOW trims seeks to the user's lower bound
 * (an iterator and a seek cost more than the rest of the insert); an
 * insert that trimming would drop at once is not written at all. USER is
 * read once per recipient per operation and written once.
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
 * grows to 56 bytes; it then stays even at count 0 (fl_timeline.h).
 *
 * The window (marked records only): the n_win oldest entries, oldest
 * first, exactly (no entry lies below win[n_win - 1] that is not in it).
 * A trim that seeks fills it with the entries after those it dropped; the
 * next trims take win[0] without a seek; an insert below its last entry
 * goes into it (its last falling out when full), a removal of one of its
 * entries comes out of it, and a removal by author empties it. Empty, it
 * says nothing, and the next trim seeks again. */
typedef struct tl_meta {
    int64_t count;
    int64_t lo_t, lo_p, hi_t, hi_p;
    bool marked;
    int64_t mark_t, mark_p;
    int n_win;
    int64_t win_t[FL_TIMELINE_WINDOW], win_p[FL_TIMELINE_WINDOW];
} tl_meta_t;

#define META_WIN_ENTRY 16 /* (created_at, post) */

/* A USER value of any valid size into m (zeroed first); a window out of
 * order is damage. */
static fl_err_t meta_decode(const uint8_t *v, size_t vlen, tl_meta_t *m)
{
    memset(m, 0, sizeof(*m));
    if (!fl_timeline_meta_size_ok(vlen))
        return FL_ERR_CORRUPT;
    m->count = fl_key_dec_i64(v);
    m->lo_t = fl_key_dec_i64(v + 8);
    m->lo_p = fl_key_dec_i64(v + 16);
    m->hi_t = fl_key_dec_i64(v + 24);
    m->hi_p = fl_key_dec_i64(v + 32);
    if ((m->marked = vlen >= FL_TIMELINE_META_MARKED_SIZE)) {
        m->mark_t = fl_key_dec_i64(v + 40);
        m->mark_p = fl_key_dec_i64(v + 48);
        m->n_win = (int)((vlen - FL_TIMELINE_META_MARKED_SIZE) / META_WIN_ENTRY);
        for (int i = 0; i < m->n_win; i++) {
            const uint8_t *w = v + FL_TIMELINE_META_MARKED_SIZE + i * META_WIN_ENTRY;
            m->win_t[i] = fl_key_dec_i64(w);
            m->win_p[i] = fl_key_dec_i64(w + 8);
            if (i && fl_key_tp_cmp(m->win_t[i - 1], m->win_p[i - 1], m->win_t[i], m->win_p[i]) >= 0)
                return FL_ERR_CORRUPT;
        }
    }
    return FL_OK;
}

bool fl_timeline_meta_size_ok(size_t len)
{
    return len == FL_TIMELINE_META_SIZE ||
           (len >= FL_TIMELINE_META_MARKED_SIZE &&
            (len - FL_TIMELINE_META_MARKED_SIZE) % META_WIN_ENTRY == 0 &&
            (len - FL_TIMELINE_META_MARKED_SIZE) / META_WIN_ENTRY <= FL_TIMELINE_WINDOW);
}

fl_err_t fl_timeline_meta_parse(const void *val, size_t len, fl_timeline_meta_t *out)
{
    tl_meta_t m;
    fl_err_t err = meta_decode(val, len, &m);
    *out = (fl_timeline_meta_t){m.count, m.marked, m.mark_t, m.mark_p, m.n_win};
    return err;
}

static fl_err_t meta_get(fl_store_t *s, int64_t user, tl_meta_t *m)
{
    fl_key_t k;
    uint8_t v[FL_TIMELINE_META_MAX_SIZE];
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
    uint8_t v[FL_TIMELINE_META_MAX_SIZE];
    size_t vlen = FL_TIMELINE_META_SIZE;
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
        vlen = FL_TIMELINE_META_MARKED_SIZE;
        for (int i = 0; i < m->n_win; i++, vlen += META_WIN_ENTRY) {
            fl_key_enc_i64(v + vlen, m->win_t[i]);
            fl_key_enc_i64(v + vlen + 8, m->win_p[i]);
        }
    }
    return fl_store_put(s, k.buf, k.len, v, vlen);
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
    if (a->n_win != b->n_win)
        return false;
    for (int i = 0; i < a->n_win; i++)
        if (a->win_t[i] != b->win_t[i] || a->win_p[i] != b->win_p[i])
            return false;
    return a->count == b->count && a->lo_t == b->lo_t && a->lo_p == b->lo_p && a->hi_t == b->hi_t &&
           a->hi_p == b->hi_p && a->marked == b->marked && a->mark_t == b->mark_t &&
           a->mark_p == b->mark_p;
}

/* Index of the first window entry at or above (t, p); n_win if none. */
static int win_find(const tl_meta_t *m, int64_t t, int64_t p)
{
    int i = 0;
    while (i < m->n_win && fl_key_tp_cmp(m->win_t[i], m->win_p[i], t, p) < 0)
        i++;
    return i;
}

/* An entry (t, p) was inserted: it joins the window when it lies below
 * the window's last entry (the window stays the oldest entries). */
static void win_inserted(tl_meta_t *m, int64_t t, int64_t p)
{
    if (m->n_win == 0 || fl_key_tp_cmp(t, p, m->win_t[m->n_win - 1], m->win_p[m->n_win - 1]) > 0)
        return;
    int i = win_find(m, t, p);
    if (m->n_win == FL_TIMELINE_WINDOW)
        m->n_win--; /* the last falls out */
    memmove(&m->win_t[i + 1], &m->win_t[i], (size_t)(m->n_win - i) * sizeof(m->win_t[0]));
    memmove(&m->win_p[i + 1], &m->win_p[i], (size_t)(m->n_win - i) * sizeof(m->win_p[0]));
    m->win_t[i] = t;
    m->win_p[i] = p;
    m->n_win++;
}

/* Entry (t, p) was removed: out of the window if it was in it. */
static void win_removed(tl_meta_t *m, int64_t t, int64_t p)
{
    int i = win_find(m, t, p);
    if (i == m->n_win || m->win_t[i] != t || m->win_p[i] != p)
        return;
    m->n_win--;
    memmove(&m->win_t[i], &m->win_t[i + 1], (size_t)(m->n_win - i) * sizeof(m->win_t[0]));
    memmove(&m->win_p[i], &m->win_p[i + 1], (size_t)(m->n_win - i) * sizeof(m->win_p[0]));
}

/* The window from it on: the next FL_TIMELINE_WINDOW entries (or fewer,
 * all that are left). */
static fl_err_t win_fill(tl_meta_t *m, fl_store_iter_t *it)
{
    m->n_win = 0;
    for (; m->n_win < FL_TIMELINE_WINDOW && fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t klen;
        const void *key = fl_store_iter_key(it, &klen);
        int64_t u;
        if (fl_key_parse_timeline(key, klen, &u, &m->win_t[m->n_win], &m->win_p[m->n_win])) {
            m->n_win = 0;
            return FL_ERR_CORRUPT;
        }
        m->n_win++;
    }
    return fl_store_iter_status(it);
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
 * entry) and raises the trim mark. */
static void drop_oldest(tl_meta_t *m, int64_t t, int64_t p)
{
    m->count--;
    m->lo_t = t;
    m->lo_p = p;
    raise_mark(m, t, p);
}

/* A stored key that does not parse is damaged state, not a bad record. */
static fl_err_t trimmed(void *arg, const void *key, size_t klen)
{
    int64_t u, t, p;
    if (fl_key_parse_timeline(key, klen, &u, &t, &p))
        return FL_ERR_CORRUPT;
    drop_oldest(arg, t, p);
    return FL_OK;
}

/*
 * Makes room for the new entry (t, p) (key k) in user's timeline: drops
 * the oldest entries (by created_at, then post id) so that after the
 * insert at most cap remain (fl_trim.h). One entry to drop with a window:
 * its first entry, or k itself when older. Otherwise keys are walked
 * oldest first from the lower bound, and the window refilled with the
 * entries after those dropped.
 */
static fl_err_t make_room(fl_store_t *s, int64_t user, const fl_key_t *k, int64_t t, int64_t p,
                          tl_meta_t *m, int64_t cap, bool *keep)
{
    fl_store_iter_t *it = NULL;
    int64_t drop = m->count + 1 - cap; /* entries to drop, k included */

    *keep = true;
    if (drop <= 0)
        return FL_OK;
    if (drop == 1 && m->n_win > 0) {
        fl_key_t old;
        if (fl_key_tp_cmp(t, p, m->win_t[0], m->win_p[0]) < 0) {
            *keep = false; /* older than the oldest: it goes first */
            return FL_OK;
        }
        fl_key_timeline(&old, user, m->win_t[0], m->win_p[0]);
        drop_oldest(m, m->win_t[0], m->win_p[0]);
        win_removed(m, m->win_t[0], m->win_p[0]);
        return fl_store_delete(s, old.buf, old.len);
    }
    fl_err_t err = oldest_first(s, user, m, &it);
    if (!err)
        err = fl_trim_oldest(s, it, false, k, drop, keep, trimmed, m);
    if (!err)
        err = win_fill(m, it);
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
            err = make_room(s, user, &k, p->created_at, p->post_id, &m, cap, &keep);
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
            win_inserted(&m, p->created_at, p->post_id);
            (*inserted)++;
        } else {
            err = fl_store_delete(s, k.buf, k.len);
            m.count--;
            win_removed(&m, p->created_at, p->post_id);
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
    /* The walk covers every entry: the window becomes the oldest left. */
    m.n_win = 0;
    for (; fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t klen, vlen;
        const void *key = fl_store_iter_key(it, &klen);
        const uint8_t *val = fl_store_iter_value(it, &vlen);
        int64_t u;
        if (vlen != 8) {
            err = FL_ERR_CORRUPT;
            break;
        }
        if (fl_key_dec_i64(val) != author) {
            if (m.marked && m.n_win < FL_TIMELINE_WINDOW) {
                if (fl_key_parse_timeline(key, klen, &u, &m.win_t[m.n_win], &m.win_p[m.n_win])) {
                    err = FL_ERR_CORRUPT;
                    break;
                }
                m.n_win++;
            }
            continue;
        }
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
