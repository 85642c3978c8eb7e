/*
 * fl_kv_mem.c - the in-memory backend: an ordered map in a skiplist.
 *
 * Used by unit tests and the topology test driver in place of RocksDB, so
 * its observable behaviour must match fl_kv_rocksdb.c exactly; everything
 * that could differ (bounds, metadata, iterator semantics) lives in
 * fl_kv.c, and the model test in tests/unit/test_state.c compares the two.
 *
 * Invariant: a write of n operations either applies all of them or none.
 * Every node a write needs is allocated before the first one is linked,
 * and linking or unlinking never fails. meta_count is the number of
 * linked keys in the metadata space, so stats report user keys only.
 *
 * Workload: up to ~10^6 entries; O(log n) gets, writes, seeks and
 * backward steps, O(1) forward steps.
 */
#include "fl_kv_backend.h"
#include "fl_skl.h"
#include "fl_state_int.h"

#include <stdlib.h>

typedef struct {
    fl__skl_t *map;
    size_t meta_count;
} mem_t;

typedef struct {
    mem_t *m;
    fl__skl_node_t *cur;
    const void *lo, *hi; /* borrowed, see fl_kv_backend.h; hi may be NULL */
    size_t lolen, hilen;
} mem_iter_t;

static fl_err_t mem_get(void *self, const void *key, size_t klen, fl_kv_value_fn *fn, void *arg,
                        bool *found, char *errstr, size_t errstr_size)
{
    mem_t *m = self;
    fl__skl_node_t *n = fl__skl_find(m->map, key, klen);
    const void *v;
    size_t vlen;
    *found = n != NULL;
    if (!n)
        return FL_OK;
    v = fl__skl_value(n, &vlen);
    return fn(arg, v, vlen);
}

static fl_err_t mem_write(void *self, const fl_kv_op_t *ops, size_t n, char *errstr,
                          size_t errstr_size)
{
    mem_t *m = self;
    fl__skl_node_t **nodes = NULL;
    fl_err_t err = FL_OK;
    size_t i;

    nodes = calloc(n ? n : 1, sizeof(*nodes));
    if (!nodes)
        goto nomem;
    for (i = 0; i < n; i++) {
        if (ops[i].del)
            continue;
        nodes[i] = fl__skl_node_new(m->map, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen, 0);
        if (!nodes[i])
            goto nomem;
    }
    /* From here on nothing can fail. */
    for (i = 0; i < n; i++) {
        bool meta = fl_kv_key_is_meta(ops[i].key, ops[i].klen);
        if (ops[i].del) {
            if (fl__skl_remove(m->map, ops[i].key, ops[i].klen) && meta)
                m->meta_count--;
        } else {
            if (meta && !fl__skl_find(m->map, ops[i].key, ops[i].klen))
                m->meta_count++;
            fl__skl_insert(m->map, nodes[i]);
            nodes[i] = NULL;
        }
    }
    FL_STATE_CHECK(m->meta_count <= fl__skl_count(m->map));
    goto out;
nomem:
    fl__errf(errstr, errstr_size, "out of memory");
    err = FL_ERR_NOMEM;
out:
    if (nodes) {
        for (i = 0; i < n; i++)
            fl__skl_node_free(nodes[i]);
        free(nodes);
    }
    return err;
}

static fl_err_t mem_iter_new(void *self, const void *lo, size_t lolen, const void *hi, size_t hilen,
                             void **itp, char *errstr, size_t errstr_size)
{
    mem_iter_t *it = calloc(1, sizeof(*it));
    if (!it) {
        fl__errf(errstr, errstr_size, "out of memory");
        return FL_ERR_NOMEM;
    }
    it->m = self;
    it->lo = lo;
    it->lolen = lolen;
    it->hi = hi;
    it->hilen = hilen;
    *itp = it;
    return FL_OK;
}

static void mem_iter_seek(void *vit, const void *key, size_t klen)
{
    mem_iter_t *it = vit;
    it->cur = fl__skl_seek(it->m->map, key, klen);
}

static void mem_iter_seek_for_prev(void *vit, const void *key, size_t klen)
{
    mem_iter_t *it = vit;
    it->cur = fl__skl_seek_before(it->m->map, key, klen, true);
}

static void mem_iter_seek_last(void *vit)
{
    mem_iter_t *it = vit;
    if (it->hi)
        it->cur = fl__skl_seek_before(it->m->map, it->hi, it->hilen, false);
    else
        it->cur = fl__skl_last(it->m->map);
}

static bool mem_iter_valid(const void *vit)
{
    const mem_iter_t *it = vit;
    const void *k;
    size_t klen;
    if (!it->cur)
        return false;
    k = fl__skl_key(it->cur, &klen);
    if (fl__key_cmp(k, klen, it->lo, it->lolen) < 0)
        return false;
    return !it->hi || fl__key_cmp(k, klen, it->hi, it->hilen) < 0;
}

static void mem_iter_next(void *vit)
{
    mem_iter_t *it = vit;
    if (it->cur)
        it->cur = fl__skl_next(it->cur);
}

static void mem_iter_prev(void *vit)
{
    mem_iter_t *it = vit;
    const void *k;
    size_t klen;
    if (!it->cur)
        return;
    k = fl__skl_key(it->cur, &klen);
    it->cur = fl__skl_seek_before(it->m->map, k, klen, false);
}

static const void *mem_iter_key(const void *vit, size_t *klen)
{
    const mem_iter_t *it = vit;
    return fl__skl_key(it->cur, klen);
}

static const void *mem_iter_value(const void *vit, size_t *vlen)
{
    const mem_iter_t *it = vit;
    return fl__skl_value(it->cur, vlen);
}

static fl_err_t mem_iter_status(const void *vit, char *errstr, size_t errstr_size)
{
    return FL_OK;
}

static void mem_iter_free(void *vit)
{
    free(vit);
}

static fl_err_t mem_stats(void *self, fl_kv_stats_t *st, char *errstr, size_t errstr_size)
{
    mem_t *m = self;
    st->entries = fl__skl_count(m->map) - m->meta_count;
    st->bytes = fl__skl_bytes(m->map);
    return FL_OK;
}

static fl_err_t mem_flush(void *self, char *errstr, size_t errstr_size)
{
    return FL_OK;
}

static fl_err_t mem_close(void *self, char *errstr, size_t errstr_size)
{
    mem_t *m = self;
    if (m) {
        fl__skl_free(m->map);
        free(m);
    }
    return FL_OK;
}

static const fl_kv_backend_t mem_backend = {
    .name = "memory",
    .get = mem_get,
    .write = mem_write,
    .iter_new = mem_iter_new,
    .iter_seek = mem_iter_seek,
    .iter_seek_for_prev = mem_iter_seek_for_prev,
    .iter_seek_last = mem_iter_seek_last,
    .iter_next = mem_iter_next,
    .iter_prev = mem_iter_prev,
    .iter_valid = mem_iter_valid,
    .iter_key = mem_iter_key,
    .iter_value = mem_iter_value,
    .iter_status = mem_iter_status,
    .iter_free = mem_iter_free,
    .stats = mem_stats,
    .flush = mem_flush,
    .close = mem_close,
};

fl_kv_t *fl_kv_mem_new(void)
{
    fl_kv_t *kv = NULL;
    mem_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    m->map = fl__skl_new(0x2545f4914f6cdd1dULL);
    if (!m->map) {
        free(m);
        goto out;
    }
    /* Only allocation can fail on an empty map; kv stays NULL then. */
    fl_kv_from_backend(&mem_backend, m, &kv, NULL, 0);
out:
    return kv;
}
