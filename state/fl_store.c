/*
 * fl_store.c - a partition's store with its pending batch (see fl_store.h).
 *
 * The pending batch is an ordered skiplist of changes over the committed
 * key-value store: a node is a put, or a tombstone (FL_PENDING_DELETE);
 * nodes staged by restore are marked FL_PENDING_RESTORED so they are not
 * captured for the changelog a second time. Reads look at the pending
 * batch first. Iterators merge the committed store's iterator with the
 * pending list, the pending side winning on equal keys, tombstones hiding
 * committed entries.
 *
 * Iterators keep a copy of the current key and value: a processor may
 * overwrite or delete the current key (which frees the pending node it
 * came from), and the next move re-seeks the pending list from the copied
 * key. The committed store's iterator is itself a cursor (fl_kv.h), so it
 * stays positioned across moves and re-seeks only on a change of
 * direction.
 *
 * Background writes (fl_store_set_background_writes): a commit hands the
 * batch to the store's writer thread and moves the pending list to the
 * "flushing" layer, which reads consult after the pending list and before
 * the cache and the key-value store, so they see the batch whether or not
 * RocksDB has applied it yet. RocksDB's view under the layer is either
 * before or after the write, and both give the same answers. The next
 * commit, fl_store_sync, a read of offsets or closing the store waits for
 * the write and drops the layer. The writer thread touches only the
 * kv-level batch and RocksDB; the skiplists stay with the owning thread.
 *
 * Workload: a batch holds up to a few hundred thousand changes; every
 * read costs one or two skiplist searches plus, on a miss, a cache lookup
 * and one RocksDB get.
 */
#include "fl_store.h"
#include "fl_cache.h"
#include "fl_log.h"
#include "fl_skl.h"
#include "fl_state_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FL_PENDING_DELETE   0x01
#define FL_PENDING_RESTORED 0x02

/* The writer thread of a store with background writes. */
typedef struct writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, busy, stop;
    fl_err_t err; /* of the last write */
    char errmsg[256];
} writer_t;

struct fl_store {
    fl_kv_t *kv;
    fl__skl_t *pending;
    fl__skl_t *flushing; /* the committed batch being written; empty when none */
    bool background;     /* commits write in the background */
    bool in_flight;      /* a handed-over write is not yet waited for */
    uint64_t gen;        /* bumped by every change to the pending or flushing layer */
    uint64_t writes;     /* put and delete calls (fl_store_writes) */
    writer_t w;
    fl_kv_batch_t *batch; /* reused by every commit */
    fl__cache_t *cache;   /* committed values for point reads; NULL: none */
    char *name;
    char *changelog;
    int32_t partition;
    char errmsg[256];
};

struct fl_store_iter {
    fl_store_t *s;
    fl_kv_iter_t *base;
    uint8_t *prefix;
    size_t plen;
    int dir; /* +1 forward, -1 backward */
    bool valid;
    fl_err_t err;
    uint8_t *key, *val; /* copies of the current entry */
    size_t klen, vlen, kcap, vcap;
    /* Forward cursors into the pending and flushing layers: the first node
     * at or after the last position asked for, valid while the store's
     * gen equals cur_gen (0: none). Moving forward then walks from them
     * instead of searching each skiplist again. */
    fl__skl_node_t *cur[2];
    uint64_t cur_gen;
};

static fl_err_t store_fail(fl_store_t *s, fl_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return err;
}

fl_store_t *fl_store_new(fl_kv_t *kv, const char *name, const char *changelog, int32_t partition)
{
    fl_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->kv = kv;
    s->partition = partition;
    s->gen = 1;
    s->name = strdup(name);
    s->changelog = strdup(changelog);
    s->pending = fl__skl_new_arena(0x5eed0000u + (uint64_t)partition);
    s->flushing = fl__skl_new_arena(0x5eed1000u + (uint64_t)partition);
    s->batch = fl_kv_batch_new();
    if (!s->name || !s->changelog || !s->pending || !s->flushing || !s->batch)
        goto fail;
    return s;
fail:
    if (s) {
        s->kv = NULL;
        fl_store_free(s);
    }
    fl_kv_free(kv);
    return NULL;
}

static void writer_stop(fl_store_t *s)
{
    if (!s->w.started)
        return;
    pthread_mutex_lock(&s->w.mu);
    s->w.stop = true;
    pthread_cond_broadcast(&s->w.cv);
    pthread_mutex_unlock(&s->w.mu);
    pthread_join(s->w.thread, NULL);
    pthread_mutex_destroy(&s->w.mu);
    pthread_cond_destroy(&s->w.cv);
    s->w.started = false;
}

void fl_store_free(fl_store_t *s)
{
    if (!s)
        return;
    if (s->kv)
        fl_store_sync(s);
    writer_stop(s);
    fl_kv_free(s->kv);
    fl__skl_free(s->pending);
    fl__skl_free(s->flushing);
    fl_kv_batch_free(s->batch);
    fl__cache_free(s->cache);
    free(s->name);
    free(s->changelog);
    free(s);
}

const char *fl_store_name(const fl_store_t *s)
{
    return s->name;
}

int32_t fl_store_partition(const fl_store_t *s)
{
    return s->partition;
}

fl_kv_t *fl_store_kv(fl_store_t *s)
{
    return s->kv;
}

const char *fl_store_errmsg(const fl_store_t *s)
{
    return s->errmsg;
}

fl_err_t fl_store_set_cache(fl_store_t *s, size_t max_bytes)
{
    fl__cache_free(s->cache);
    s->cache = NULL;
    if (max_bytes == 0)
        return FL_OK;
    s->cache = fl__cache_new(max_bytes);
    return s->cache ? FL_OK : store_fail(s, FL_ERR_NOMEM, "out of memory");
}

static void *writer_main(void *arg)
{
    fl_store_t *s = arg;
    pthread_mutex_lock(&s->w.mu);
    for (;;) {
        while (!s->w.busy && !s->w.stop)
            pthread_cond_wait(&s->w.cv, &s->w.mu);
        if (!s->w.busy)
            break;
        pthread_mutex_unlock(&s->w.mu);
        char msg[sizeof(s->w.errmsg)] = "";
        fl_err_t err = fl_kv_batch_write(s->kv, s->batch, msg, sizeof(msg));
        pthread_mutex_lock(&s->w.mu);
        s->w.err = err;
        memcpy(s->w.errmsg, msg, sizeof(msg));
        s->w.busy = false;
        pthread_cond_broadcast(&s->w.cv);
    }
    pthread_mutex_unlock(&s->w.mu);
    return NULL;
}

fl_err_t fl_store_set_background_writes(fl_store_t *s, bool on)
{
    fl_err_t err = fl_store_sync(s);
    if (err)
        return err;
    if (!on) {
        writer_stop(s);
        s->background = false;
        return FL_OK;
    }
    if (!fl_kv_concurrent_write(s->kv))
        return store_fail(s, FL_ERR_INVALID, "this backend cannot be written in the background");
    if (!s->w.started) {
        if (pthread_mutex_init(&s->w.mu, NULL))
            return store_fail(s, FL_ERR_NOMEM, "cannot create the writer's lock");
        if (pthread_cond_init(&s->w.cv, NULL)) {
            pthread_mutex_destroy(&s->w.mu);
            return store_fail(s, FL_ERR_NOMEM, "cannot create the writer's condition");
        }
        s->w.busy = s->w.stop = false;
        if (pthread_create(&s->w.thread, NULL, writer_main, s)) {
            pthread_mutex_destroy(&s->w.mu);
            pthread_cond_destroy(&s->w.cv);
            return store_fail(s, FL_ERR_NOMEM, "cannot start the writer thread");
        }
        s->w.started = true;
    }
    s->background = true;
    return FL_OK;
}

fl_err_t fl_store_sync(fl_store_t *s)
{
    fl_err_t err;
    char msg[sizeof(s->w.errmsg)];

    if (!s->in_flight)
        return FL_OK;
    pthread_mutex_lock(&s->w.mu);
    while (s->w.busy)
        pthread_cond_wait(&s->w.cv, &s->w.mu);
    err = s->w.err;
    memcpy(msg, s->w.errmsg, sizeof(msg));
    pthread_mutex_unlock(&s->w.mu);
    s->in_flight = false;
    fl__skl_clear(s->flushing);
    s->gen++;
    fl_kv_batch_clear(s->batch);
    if (err) {
        /* The cache was refreshed with the lost batch. */
        fl__cache_clear(s->cache);
        return store_fail(s, err, "background write: %s", msg);
    }
    fl_kv_iters_resync(s->kv);
    return FL_OK;
}

void fl_store_cache_stats(const fl_store_t *s, fl_store_cache_stats_t *st)
{
    fl__cache_stats_t cs;
    fl__cache_stats(s->cache, &cs);
    st->hits = cs.hits;
    st->misses = cs.misses;
    st->evictions = cs.evictions;
    st->entries = cs.entries;
    st->bytes = cs.bytes;
}

/* Copies a value found in the pending batch or the cache into buf. */
static fl_err_t copy_value(fl_store_t *s, const void *v, size_t len, void *buf, size_t cap,
                           size_t *vlen)
{
    *vlen = len;
    if (len > cap)
        return store_fail(s, FL_ERR_OVERSIZED, "value of %zu bytes exceeds buffer of %zu", len,
                          cap);
    if (len) /* buf may be NULL when cap is 0 */
        memcpy(buf, v, len);
    return FL_OK;
}

fl_err_t fl_store_get(fl_store_t *s, const void *key, size_t klen, void *buf, size_t cap,
                      size_t *vlen, bool *found)
{
    fl__skl_node_t *n = fl__skl_find(s->pending, key, klen);
    const void *v;
    size_t len;

    *vlen = 0;
    if (!n && s->in_flight)
        n = fl__skl_find(s->flushing, key, klen);
    if (n) {
        *found = !(fl__skl_flags(n) & FL_PENDING_DELETE);
        if (!*found)
            return FL_OK;
        v = fl__skl_value(n, &len);
        return copy_value(s, v, len, buf, cap, vlen);
    }
    if (s->cache && fl__cache_get(s->cache, key, klen, &v, &len, found))
        return *found ? copy_value(s, v, len, buf, cap, vlen) : FL_OK;
    fl_err_t err =
        fl_kv_get_buf(s->kv, key, klen, buf, cap, vlen, found, s->errmsg, sizeof(s->errmsg));
    if (!err && s->cache)
        fl__cache_put(s->cache, key, klen, *found, buf, *vlen);
    return err;
}

static fl_err_t pending_set(fl_store_t *s, const void *key, size_t klen, const void *val,
                            size_t vlen, uint8_t flags)
{
    if (!key || klen == 0 || klen > FL_KV_KEY_MAX || ((const uint8_t *)key)[0] == 0x00)
        return store_fail(s, FL_ERR_INVALID, "invalid key of %zu bytes", klen);
    if (!val && vlen)
        return store_fail(s, FL_ERR_INVALID, "NULL value of %zu bytes", vlen);
    if (vlen > FL_KV_VALUE_MAX)
        return store_fail(s, FL_ERR_OVERSIZED, "value of %zu bytes exceeds %d", vlen,
                          FL_KV_VALUE_MAX);
    /* A key changed again in the same batch (the timeline's USER entry, once
     * per recipient) is usually rewritten with a value of the same size. */
    if (!fl__skl_overwrite(s->pending, key, klen, val, vlen, flags)) {
        fl__skl_node_t *n = fl__skl_node_new(s->pending, key, klen, val, vlen, flags);
        if (!n)
            return store_fail(s, FL_ERR_NOMEM, "out of memory");
        fl__skl_insert(s->pending, n);
    }
    s->gen++;
    return FL_OK;
}

fl_err_t fl_store_put(fl_store_t *s, const void *key, size_t klen, const void *val, size_t vlen)
{
    s->writes++;
    return pending_set(s, key, klen, val, vlen, 0);
}

fl_err_t fl_store_delete(fl_store_t *s, const void *key, size_t klen)
{
    s->writes++;
    return pending_set(s, key, klen, NULL, 0, FL_PENDING_DELETE);
}

uint64_t fl_store_writes(const fl_store_t *s)
{
    return s->writes;
}

fl_err_t fl_store_restore_apply(fl_store_t *s, const void *key, size_t klen, const void *val,
                                size_t vlen)
{
    return pending_set(s, key, klen, val, val ? vlen : 0,
                       FL_PENDING_RESTORED | (val ? 0 : FL_PENDING_DELETE));
}

size_t fl_store_pending(const fl_store_t *s)
{
    return fl__skl_count(s->pending);
}

fl_err_t fl_store_changes(fl_store_t *s, fl_store_change_fn *fn, void *arg)
{
    for (fl__skl_node_t *n = fl__skl_first(s->pending); n; n = fl__skl_next(n)) {
        uint8_t flags = fl__skl_flags(n);
        size_t klen, vlen;
        const void *key = fl__skl_key(n, &klen);
        const void *val = fl__skl_value(n, &vlen);
        if (flags & FL_PENDING_RESTORED)
            continue;
        if (fn(arg, key, klen, (flags & FL_PENDING_DELETE) ? NULL : val, vlen))
            return store_fail(s, FL_ERR_INVALID, "change walk stopped");
    }
    return FL_OK;
}

fl_err_t fl_store_commit(fl_store_t *s, const fl_store_offset_t *offsets, size_t n,
                         int64_t changelog_position)
{
    /* One write in flight at most; its failure surfaces here. */
    fl_err_t err = fl_store_sync(s);
    if (err)
        return err;

    fl_kv_batch_clear(s->batch);
    for (fl__skl_node_t *node = fl__skl_first(s->pending); node && !err;
         node = fl__skl_next(node)) {
        size_t klen, vlen;
        const void *key = fl__skl_key(node, &klen);
        const void *val = fl__skl_value(node, &vlen);
        bool del = fl__skl_flags(node) & FL_PENDING_DELETE;
        if (del)
            err = fl_kv_batch_delete(s->batch, key, klen, s->errmsg, sizeof(s->errmsg));
        else
            err = fl_kv_batch_put(s->batch, key, klen, val, vlen, s->errmsg, sizeof(s->errmsg));
        /* Refreshed before the write is known to succeed: a failure empties
         * the cache, and while a write is in flight reads find its keys in
         * the flushing layer first, so no reader sees uncommitted data. */
        if (s->cache)
            fl__cache_refresh(s->cache, key, klen, !del, val, vlen);
    }
    for (size_t i = 0; i < n && !err; i++)
        err = fl_kv_batch_set_offset(s->batch, offsets[i].topic, offsets[i].partition,
                                     offsets[i].offset, s->errmsg, sizeof(s->errmsg));
    if (!err && changelog_position >= 0)
        err = fl_kv_batch_set_offset(s->batch, s->changelog, s->partition, changelog_position,
                                     s->errmsg, sizeof(s->errmsg));
    if (!err && s->background) {
        fl__skl_t *t = s->flushing; /* empty after the sync */
        s->flushing = s->pending;
        s->pending = t;
        s->in_flight = true;
        s->gen++;
        pthread_mutex_lock(&s->w.mu);
        s->w.busy = true;
        pthread_cond_broadcast(&s->w.cv);
        pthread_mutex_unlock(&s->w.mu);
        return FL_OK;
    }
    if (!err)
        err = fl_kv_batch_commit(s->kv, s->batch, s->errmsg, sizeof(s->errmsg));
    fl_kv_batch_clear(s->batch);
    if (!err) {
        fl__skl_clear(s->pending);
        s->gen++;
    } else {
        fl__cache_clear(s->cache);
    }
    return err;
}

void fl_store_abort(fl_store_t *s)
{
    fl__skl_clear(s->pending);
    s->gen++;
}

fl_err_t fl_store_offset(fl_store_t *s, const char *topic, int32_t partition, int64_t *offset,
                         bool *found)
{
    fl_err_t err = fl_store_sync(s);
    if (err) {
        *found = false;
        return err;
    }
    return fl_kv_get_offset(s->kv, topic, partition, offset, found, s->errmsg, sizeof(s->errmsg));
}

fl_err_t fl_store_changelog_position(fl_store_t *s, int64_t *position)
{
    bool found;
    fl_err_t err = fl_store_sync(s);
    if (err)
        return err;
    err = fl_kv_get_offset(s->kv, s->changelog, s->partition, position, &found, s->errmsg,
                           sizeof(s->errmsg));
    if (!err && !found)
        *position = 0;
    return err;
}

/* ---- merged iteration ---------------------------------------------------------------------- */

static bool in_prefix(const fl_store_iter_t *it, const void *key, size_t klen)
{
    return klen >= it->plen && memcmp(key, it->prefix, it->plen) == 0;
}

/* Of two nodes from the pending and flushing layers (either may be NULL),
 * the one met first in direction dir; the pending layer wins a tie. */
static fl__skl_node_t *layer_pick(fl__skl_node_t *p, fl__skl_node_t *f, int dir)
{
    size_t pk, fk;
    if (!p || !f)
        return p ? p : f;
    const void *a = fl__skl_key(p, &pk);
    const void *b = fl__skl_key(f, &fk);
    int c = fl__key_cmp(a, pk, b, fk) * dir;
    return c <= 0 ? p : f;
}

/* First node of one layer with key > (or >= when inclusive) key; layer
 * 0 is the pending list, 1 the flushing one. */
static fl__skl_node_t *layer_after(fl_store_iter_t *it, int layer, const void *key, size_t klen,
                                   bool inclusive)
{
    const fl__skl_t *l = layer ? it->s->flushing : it->s->pending;
    fl__skl_node_t *n;
    if (it->cur_gen == it->s->gen) {
        /* Forward moves ask for ever larger keys: walk from the cursor. */
        for (n = it->cur[layer]; n; n = fl__skl_next_in(n, it->prefix, it->plen)) {
            size_t nk;
            const void *k = fl__skl_key(n, &nk);
            if (fl__key_cmp(k, nk, key, klen) >= 0)
                break;
        }
    } else {
        n = fl__skl_seek_in(l, key, klen, it->prefix, it->plen);
    }
    it->cur[layer] = n;
    if (n && !inclusive) {
        size_t nk;
        const void *k = fl__skl_key(n, &nk);
        if (fl__key_cmp(k, nk, key, klen) == 0)
            n = fl__skl_next_in(n, it->prefix, it->plen);
    }
    return n;
}

/* First pending node with key > (or >= when inclusive) key, within the
 * prefix, of both layers. */
static fl__skl_node_t *pending_after(fl_store_iter_t *it, const void *key, size_t klen,
                                     bool inclusive)
{
    fl__skl_node_t *n = layer_after(it, 0, key, klen, inclusive);
    if (it->s->in_flight)
        n = layer_pick(n, layer_after(it, 1, key, klen, inclusive), 1);
    it->cur_gen = it->s->gen; /* both layers' answers lie within the prefix (fl__skl_seek_in) */
    return n;
}

/* Last pending node with key < (or <= when inclusive) key, within the prefix. */
static fl__skl_node_t *pending_before(const fl_store_iter_t *it, const void *key, size_t klen,
                                      bool inclusive)
{
    fl__skl_node_t *n =
        fl__skl_seek_before_in(it->s->pending, key, klen, inclusive, it->prefix, it->plen);
    if (it->s->in_flight)
        n = layer_pick(
            n, fl__skl_seek_before_in(it->s->flushing, key, klen, inclusive, it->prefix, it->plen),
            -1);
    return n;
}

static bool copy_into(uint8_t **buf, size_t *cap, const void *src, size_t len)
{
    if (len > *cap) {
        size_t ncap = len < 64 ? 64 : len * 2;
        uint8_t *nb = realloc(*buf, ncap);
        if (!nb)
            return false;
        *buf = nb;
        *cap = ncap;
    }
    if (len)
        memcpy(*buf, src, len);
    return true;
}

static void set_current(fl_store_iter_t *it, const void *k, size_t kl, const void *v, size_t vl)
{
    if (!copy_into(&it->key, &it->kcap, k, kl) || !copy_into(&it->val, &it->vcap, v, vl)) {
        it->err = FL_ERR_NOMEM;
        it->valid = false;
        return;
    }
    it->klen = kl;
    it->vlen = vl;
    it->valid = true;
}

/*
 * Settles on the merged entry at or after (dir +1) / at or before (dir -1)
 * the position where both children stand: the base iterator is already
 * positioned, the pending side is found from key/klen (inclusive or not).
 * Tombstones are skipped, hiding the base entry they shadow.
 */
static void settle(fl_store_iter_t *it, const void *from, size_t flen, bool inclusive)
{
    uint8_t *skip = NULL;
    size_t skip_cap = 0;

    it->err = FL_OK; /* every positioning starts afresh, like fl_kv's seeks */
    for (;;) {
        fl__skl_node_t *p = it->dir > 0 ? pending_after(it, from, flen, inclusive)
                                        : pending_before(it, from, flen, inclusive);
        bool bvalid = fl_kv_iter_valid(it->base);
        size_t bk = 0, pk = 0, bv = 0, pv = 0;
        const void *bkey = bvalid ? fl_kv_iter_key(it->base, &bk) : NULL;
        const void *pkey = p ? fl__skl_key(p, &pk) : NULL;
        if (!bvalid) {
            it->err = fl_kv_iter_status(it->base, NULL, 0);
            if (it->err) {
                it->valid = false; /* the iteration ends on the error */
                break;
            }
        }
        if (!p && !bvalid) {
            it->valid = false;
            break;
        }
        int c = !p ? 1 : !bvalid ? -1 : fl__key_cmp(pkey, pk, bkey, bk) * it->dir;
        /* c < 0: pending comes first in this direction; 0: same key */
        if (c > 0) {
            const void *v = fl_kv_iter_value(it->base, &bv);
            set_current(it, bkey, bk, v, bv);
            break;
        }
        if (c == 0) {
            /* The pending change shadows the committed entry: step the
             * base past it so both sides agree on the next position. */
            if (it->dir > 0)
                fl_kv_iter_next(it->base);
            else
                fl_kv_iter_prev(it->base);
        }
        if (!(fl__skl_flags(p) & FL_PENDING_DELETE)) {
            const void *v = fl__skl_value(p, &pv);
            set_current(it, pkey, pk, v, pv);
            break;
        }
        /* A tombstone: continue after its key. Copy the key, since the
         * node belongs to the pending list. */
        if (!copy_into(&skip, &skip_cap, pkey, pk)) {
            it->err = FL_ERR_NOMEM;
            it->valid = false;
            break;
        }
        from = skip;
        flen = pk;
        inclusive = false;
    }
    free(skip);
}

fl_err_t fl_store_iter_new(fl_store_t *s, const void *prefix, size_t plen, fl_store_iter_t **itp)
{
    fl_store_iter_t *it = calloc(1, sizeof(*it));
    fl_err_t err = FL_OK;

    *itp = NULL;
    if (!it)
        return store_fail(s, FL_ERR_NOMEM, "out of memory");
    it->s = s;
    it->dir = 1;
    it->plen = plen;
    it->prefix = malloc(plen ? plen : 1);
    if (!it->prefix) {
        err = store_fail(s, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (plen)
        memcpy(it->prefix, prefix, plen);
    err = fl_kv_iter_new(s->kv, prefix, plen, &it->base, s->errmsg, sizeof(s->errmsg));
out:
    if (err) {
        fl_store_iter_free(it);
        return err;
    }
    *itp = it;
    return FL_OK;
}

void fl_store_iter_seek(fl_store_iter_t *it, const void *key, size_t klen)
{
    it->dir = 1;
    it->cur_gen = 0; /* a seek may go backwards: search afresh */
    /* Keys below the prefix start at the prefix itself. */
    if (fl__key_cmp(key, klen, it->prefix, it->plen) < 0) {
        key = it->prefix;
        klen = it->plen;
    }
    fl_kv_iter_seek(it->base, key, klen);
    settle(it, key, klen, true);
}

void fl_store_iter_seek_for_prev(fl_store_iter_t *it, const void *key, size_t klen)
{
    if (fl__key_cmp(key, klen, it->prefix, it->plen) < 0) {
        /* before the prefix: nothing at or before key */
        it->dir = -1;
        it->err = FL_OK;
        it->valid = false;
        return;
    }
    if (!in_prefix(it, key, klen)) {
        fl_store_iter_seek_last(it); /* past every key of the prefix */
        return;
    }
    it->dir = -1;
    it->cur_gen = 0;
    fl_kv_iter_seek_for_prev(it->base, key, klen);
    settle(it, key, klen, true);
}

void fl_store_iter_seek_first(fl_store_iter_t *it)
{
    it->dir = 1;
    it->cur_gen = 0;
    fl_kv_iter_seek_first(it->base);
    settle(it, it->prefix, it->plen, true);
}

void fl_store_iter_seek_last(fl_store_iter_t *it)
{
    uint8_t upper[FL_KV_KEY_MAX + 1];
    size_t ulen = it->plen;

    it->dir = -1;
    fl_kv_iter_seek_last(it->base);
    /* The pending side starts below the prefix's successor: the prefix with
     * its last non-0xff byte incremented (no successor: the very end). */
    memcpy(upper, it->prefix, it->plen);
    while (ulen > 0 && upper[ulen - 1] == 0xff)
        ulen--;
    if (ulen == 0) {
        static const uint8_t top[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        fl__skl_node_t *last = fl__skl_last(it->s->pending);
        if (it->s->in_flight)
            last = layer_pick(last, fl__skl_last(it->s->flushing), -1);
        if (!last) {
            settle(it, top, sizeof(top), true);
            return;
        }
        size_t lk;
        const void *k = fl__skl_key(last, &lk);
        settle(it, k, lk, true);
        return;
    }
    upper[ulen - 1]++;
    settle(it, upper, ulen, false);
}

void fl_store_iter_next(fl_store_iter_t *it)
{
    if (!it->valid)
        return;
    if (it->dir < 0) {
        /* Turn around: the base stands at or before the current key. */
        it->dir = 1;
        it->cur_gen = 0;
        fl_kv_iter_seek(it->base, it->key, it->klen);
    }
    if (fl_kv_iter_valid(it->base)) {
        size_t bk;
        const void *k = fl_kv_iter_key(it->base, &bk);
        if (fl__key_cmp(k, bk, it->key, it->klen) < 0) /* only after a turn-around */
            fl_kv_iter_seek(it->base, it->key, it->klen);
        k = fl_kv_iter_valid(it->base) ? fl_kv_iter_key(it->base, &bk) : NULL;
        if (k && fl__key_cmp(k, bk, it->key, it->klen) == 0)
            fl_kv_iter_next(it->base);
    }
    settle(it, it->key, it->klen, false);
}

void fl_store_iter_prev(fl_store_iter_t *it)
{
    if (!it->valid)
        return;
    if (it->dir > 0) {
        it->dir = -1;
        fl_kv_iter_seek_for_prev(it->base, it->key, it->klen);
    }
    if (fl_kv_iter_valid(it->base)) {
        size_t bk;
        const void *k = fl_kv_iter_key(it->base, &bk);
        if (fl__key_cmp(k, bk, it->key, it->klen) > 0) /* only after a turn-around */
            fl_kv_iter_seek_for_prev(it->base, it->key, it->klen);
        k = fl_kv_iter_valid(it->base) ? fl_kv_iter_key(it->base, &bk) : NULL;
        if (k && fl__key_cmp(k, bk, it->key, it->klen) == 0)
            fl_kv_iter_prev(it->base);
    }
    settle(it, it->key, it->klen, false);
}

bool fl_store_iter_valid(const fl_store_iter_t *it)
{
    return it->valid;
}

const void *fl_store_iter_key(const fl_store_iter_t *it, size_t *klen)
{
    *klen = it->valid ? it->klen : 0;
    return it->valid ? it->key : NULL;
}

const void *fl_store_iter_value(const fl_store_iter_t *it, size_t *vlen)
{
    *vlen = it->valid ? it->vlen : 0;
    return it->valid ? it->val : NULL;
}

fl_err_t fl_store_iter_status(const fl_store_iter_t *it)
{
    return it->err;
}

void fl_store_iter_free(fl_store_iter_t *it)
{
    if (!it)
        return;
    fl_kv_iter_free(it->base);
    free(it->prefix);
    free(it->key);
    free(it->val);
    free(it);
}
