/*
 * fl_timeline.c - applying timeline operations (rules in fl_timeline.h).
 *
 * Workload: the hot path of the whole pipeline. An insert of one post for
 * n recipients costs n count reads, n point reads and n writes; trimming
 * a full timeline walks from its oldest end and so costs only the excess;
 * an insert that trimming would drop at once is not written at all.
 * Counts are read once per recipient per operation and written once.
 *
 * Invariant: USER(u) equals the number of TIMELINE(u, *) entries and is
 * at most timeline_cap after every operation; a mismatch seen while
 * trimming is reported as FL_ERR_CORRUPT rather than papered over.
 */
#include "fl_timeline.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>

fl_err_t fl_timeline_count(fl_store_t *s, int64_t user, int64_t *count)
{
    fl_key_t k;
    uint8_t v[8];
    size_t vlen;
    bool found;

    *count = 0;
    fl_key_entity(&k, FL_KEY_TAG_USER, user);
    fl_err_t err = fl_store_get(s, k.buf, k.len, v, sizeof(v), &vlen, &found);
    if (err || !found)
        return err;
    if (vlen != 8)
        return FL_ERR_CORRUPT;
    *count = fl_key_dec_i64(v);
    return FL_OK;
}

static fl_err_t count_put(fl_store_t *s, int64_t user, int64_t count)
{
    fl_key_t k;
    uint8_t v[8];
    fl_key_entity(&k, FL_KEY_TAG_USER, user);
    if (count == 0)
        return fl_store_delete(s, k.buf, k.len);
    fl_key_enc_i64(v, count);
    return fl_store_put(s, k.buf, k.len, v, sizeof(v));
}

static fl_err_t entry_exists(fl_store_t *s, const fl_key_t *k, bool *found)
{
    uint8_t v[8];
    size_t vlen;
    return fl_store_get(s, k->buf, k->len, v, sizeof(v), &vlen, found);
}

/*
 * Makes room for the new entry k in user's timeline of *count entries:
 * drops the oldest entries (by created_at, then post id) so that after
 * the insert at most cap remain. When k itself is among those oldest it
 * is not to be inserted (*keep false): inserting and trimming it in one
 * batch would put a tombstone for an entry that never existed into the
 * changelog. Keys are oldest first, so the walk is a forward seek to the
 * user's first entry and costs only the excess.
 */
static fl_err_t make_room(fl_store_t *s, int64_t user, const fl_key_t *k, int64_t *count,
                          int64_t cap, bool *keep)
{
    fl_key_t prefix;
    fl_store_iter_t *it = NULL;
    int64_t drop = *count + 1 - cap; /* entries to drop, k included */
    fl_err_t err;

    *keep = true;
    if (drop <= 0)
        return FL_OK;
    fl_key_entity(&prefix, FL_KEY_TAG_TIMELINE, user);
    err = fl_store_iter_new(s, prefix.buf, prefix.len, &it);
    if (err)
        return err;
    fl_store_iter_seek_first(it);
    while (drop > 0 && fl_store_iter_valid(it)) {
        size_t klen;
        const void *key = fl_store_iter_key(it, &klen);
        if (*keep && fl_key_cmp(k->buf, k->len, key, klen) < 0) {
            *keep = false; /* k is older than the oldest left: it goes first */
            drop--;
            continue;
        }
        err = fl_store_delete(s, key, klen);
        if (err)
            break;
        (*count)--;
        drop--;
        fl_store_iter_next(it);
    }
    if (!err)
        err = fl_store_iter_status(it);
    if (!err && drop > 0)
        err = FL_ERR_CORRUPT; /* the count promised more entries than exist */
    fl_store_iter_free(it);
    return err;
}

static fl_err_t apply_posts(fl_store_t *s, const fl_tlop_t *op, int64_t user, int64_t cap,
                            uint64_t *inserted)
{
    int64_t count, before;
    fl_err_t err = fl_timeline_count(s, user, &count);
    before = count;
    for (uint32_t i = 0; !err && i < op->n_posts; i++) {
        const fl_tlop_post_t *p = &op->posts[i];
        fl_key_t k;
        bool found, keep;
        fl_key_timeline(&k, user, p->created_at, p->post_id);
        err = entry_exists(s, &k, &found);
        if (err || found == (op->op == FL_TLOP_INSERT))
            continue;
        if (op->op == FL_TLOP_INSERT) {
            err = make_room(s, user, &k, &count, cap, &keep);
            if (err || !keep)
                continue;
            uint8_t v[8];
            fl_key_enc_i64(v, p->author_id);
            err = fl_store_put(s, k.buf, k.len, v, sizeof(v));
            count++;
            (*inserted)++;
        } else {
            err = fl_store_delete(s, k.buf, k.len);
            count--;
        }
    }
    if (!err && count != before)
        err = count_put(s, user, count);
    return err;
}

static fl_err_t remove_author(fl_store_t *s, int64_t author, int64_t user)
{
    fl_key_t prefix;
    fl_store_iter_t *it = NULL;
    int64_t count, removed = 0;
    fl_err_t err = fl_timeline_count(s, user, &count);

    if (err || count == 0)
        return err;
    fl_key_entity(&prefix, FL_KEY_TAG_TIMELINE, user);
    err = fl_store_iter_new(s, prefix.buf, prefix.len, &it);
    if (err)
        return err;
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
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
    if (!err && removed)
        err = count_put(s, user, count - removed);
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
