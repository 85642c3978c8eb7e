/*
 * fl_kv.c - the backend-independent half of the state store: argument
 * checks, the reserved metadata key space (format version, input offsets),
 * iterator bounds and cursor semantics, and write batches.
 *
 * Invariants. No user-supplied key starting with 0x00 ever reaches a
 * backend, so metadata cannot be overwritten by state; the only writers of
 * metadata are batches (offsets) and the open path (version, bulk marker).
 * A user iterator is valid only on a key inside its [lo, hi) bounds,
 * checked here whatever the backend does. A backend iterator is never used
 * after a write to its store: before every write, each open iterator
 * copies its current entry and drops its backend iterator ("detaches");
 * its next move re-seeks past the copied key, in either direction. This
 * gives both backends one semantics without RocksDB snapshots.
 *
 * Workload: a partition task does many point gets and short prefix scans
 * and commits a batch every few hundred records; open iterators are few,
 * so detaching on write is cheap. Batches are ordered maps, so a key
 * written twice costs one write; keys added in ascending order (a store's
 * commit) are appended without a map insert.
 */
#include "fl_be.h"
#include "fl_kv.h"
#include "fl_kv_backend.h"
#include "fl_log.h"
#include "fl_skl.h"
#include "fl_state_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FL_KV_META_OFFSET_TAG 'o'
#define FL_KV_TOPIC_MAX       249 /* Kafka's limit */
#define FL_KV_BATCH_TOMBSTONE 1

struct fl_kv {
    const fl_kv_backend_t *be;
    void *self;
    fl_kv_iter_t *iters; /* open iterators, to detach before writes */
};

typedef enum {
    IT_UNPOSITIONED, /* no seek yet */
    IT_LIVE,         /* be_it is positioned (maybe past the end) */
    IT_DETACHED,     /* a write happened: the entry is in saved, be_it is gone */
    IT_END,          /* past the range */
    IT_ERROR         /* stopped by err */
} it_state_t;

struct fl_kv_iter {
    fl_kv_t *kv; /* NULL once the store is closed */
    fl_kv_iter_t *prev, *next;
    void *be_it;
    it_state_t state;
    uint8_t *lo; /* inclusive lower bound, never empty */
    size_t lolen;
    uint8_t *hi; /* exclusive upper bound, NULL when unbounded */
    size_t hilen;
    uint8_t *saved; /* detached entry: key then value */
    size_t saved_cap, saved_klen, saved_vlen;
    fl_err_t err;
    char errmsg[256];
};

/* One change held in a batch's run: offsets into the run's arena. */
typedef struct run_op {
    size_t koff, voff;
    uint32_t klen, vlen;
    bool del;
} run_op_t;

/*
 * A batch is an ordered map, but the common writer (a store's commit) adds
 * keys already in ascending order: those are appended to a "run", an array
 * of operations over one byte arena, at the cost of one key comparison
 * each. The first key that is not above the run's last moves the run into
 * the map, which takes every later key. Offsets always go to the map
 * (metadata keys sort first and are added last). A key is in the run or in
 * the map, never both.
 */
struct fl_kv_batch {
    fl__skl_t *map; /* key -> value, or tombstone flag for a delete */
    run_op_t *run;
    size_t nrun, run_cap;
    uint8_t *arena;
    size_t arena_len, arena_cap;
    bool unordered; /* the run has been moved into the map */
};

void fl__state_panic(const char *file, int line, const char *cond)
{
    fl_log_error("state", "invariant violated at %s:%d: %s", file, line, cond);
    abort();
}

void fl__errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;
    if (!errstr || !errstr_size)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* ---- argument checks ---- */

static fl_err_t check_user_key(const void *key, size_t klen, char *errstr, size_t errstr_size)
{
    if (!key || klen == 0) {
        fl__errf(errstr, errstr_size, "empty key");
        return FL_ERR_INVALID;
    }
    if (klen > FL_KV_KEY_MAX) {
        fl__errf(errstr, errstr_size, "key of %zu bytes exceeds %d", klen, FL_KV_KEY_MAX);
        return FL_ERR_OVERSIZED;
    }
    if (fl_kv_key_is_meta(key, klen)) {
        fl__errf(errstr, errstr_size, "keys starting with byte 0x00 are reserved for metadata");
        return FL_ERR_INVALID;
    }
    return FL_OK;
}

static fl_err_t check_value(const void *val, size_t vlen, char *errstr, size_t errstr_size)
{
    if (!val && vlen) {
        fl__errf(errstr, errstr_size, "NULL value of %zu bytes", vlen);
        return FL_ERR_INVALID;
    }
    if (vlen > FL_KV_VALUE_MAX) {
        fl__errf(errstr, errstr_size, "value of %zu bytes exceeds %d", vlen, FL_KV_VALUE_MAX);
        return FL_ERR_OVERSIZED;
    }
    return FL_OK;
}

/* Builds the metadata key of an input offset into buf (>= 2+1+249+4 bytes). */
static fl_err_t offset_key(const char *topic, int32_t partition, uint8_t *buf, size_t *len,
                           char *errstr, size_t errstr_size)
{
    size_t tlen = topic ? strlen(topic) : 0;
    if (tlen == 0 || tlen > FL_KV_TOPIC_MAX) {
        fl__errf(errstr, errstr_size, "topic name must have 1 to %d characters", FL_KV_TOPIC_MAX);
        return FL_ERR_INVALID;
    }
    for (size_t i = 0; i < tlen; i++) {
        char c = topic[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            fl__errf(errstr, errstr_size, "topic name '%s' has an illegal character", topic);
            return FL_ERR_INVALID;
        }
    }
    if (partition < 0) {
        fl__errf(errstr, errstr_size, "negative partition %d", (int)partition);
        return FL_ERR_INVALID;
    }
    buf[0] = FL_KV_META_BYTE;
    buf[1] = FL_KV_META_OFFSET_TAG;
    buf[2] = (uint8_t)tlen;
    memcpy(buf + 3, topic, tlen);
    fl_be_put32(buf + 3 + tlen, (uint32_t)partition);
    *len = 3 + tlen + 4;
    return FL_OK;
}

/* ---- value copy callbacks for backend get ---- */

typedef struct {
    void *val;
    size_t vlen;
} copy_malloc_t;

static fl_err_t copy_malloc(void *arg, const void *val, size_t vlen)
{
    copy_malloc_t *c = arg;
    c->val = malloc(vlen ? vlen : 1);
    if (!c->val)
        return FL_ERR_NOMEM;
    if (vlen)
        memcpy(c->val, val, vlen);
    c->vlen = vlen;
    return FL_OK;
}

typedef struct {
    void *buf;
    size_t cap;
    size_t vlen;
} copy_buf_t;

static fl_err_t copy_buf(void *arg, const void *val, size_t vlen)
{
    copy_buf_t *c = arg;
    c->vlen = vlen;
    if (vlen > c->cap)
        return FL_OK; /* the caller reports it with the length */
    if (vlen)
        memcpy(c->buf, val, vlen);
    return FL_OK;
}

/* ---- iterators ---- */

static void iter_fail(fl_kv_iter_t *it, fl_err_t err, const char *msg)
{
    it->state = IT_ERROR;
    it->err = err;
    snprintf(it->errmsg, sizeof(it->errmsg), "%s", msg);
}

static void iter_drop_backend(fl_kv_iter_t *it)
{
    if (it->be_it) {
        FL_STATE_CHECK(it->kv != NULL);
        it->kv->be->iter_free(it->be_it);
        it->be_it = NULL;
    }
}

/* The backend is positioned on a key inside [lo, hi). Backends are asked
 * to respect the bounds (RocksDB uses them to stop early), but this check
 * is what keeps metadata keys from ever reaching a user iterator. */
static bool live_valid(const fl_kv_iter_t *it)
{
    const fl_kv_backend_t *be = it->kv->be;
    const void *k;
    size_t klen;
    if (!be->iter_valid(it->be_it))
        return false;
    k = be->iter_key(it->be_it, &klen);
    if (fl__key_cmp(k, klen, it->lo, it->lolen) < 0)
        return false;
    return !it->hi || fl__key_cmp(k, klen, it->hi, it->hilen) < 0;
}

/* Copies the current entry out and drops the backend iterator. */
static void iter_detach(fl_kv_iter_t *it)
{
    const fl_kv_backend_t *be = it->kv->be;
    if (it->state == IT_LIVE) {
        if (live_valid(it)) {
            size_t klen, vlen;
            const void *k = be->iter_key(it->be_it, &klen);
            const void *v = be->iter_value(it->be_it, &vlen);
            if (klen + vlen > it->saved_cap) {
                uint8_t *nb = realloc(it->saved, klen + vlen);
                if (!nb) {
                    iter_fail(it, FL_ERR_NOMEM, "out of memory detaching iterator");
                    goto out;
                }
                it->saved = nb;
                it->saved_cap = klen + vlen;
            }
            memcpy(it->saved, k, klen);
            if (vlen)
                memcpy(it->saved + klen, v, vlen);
            it->saved_klen = klen;
            it->saved_vlen = vlen;
            it->state = IT_DETACHED;
        } else {
            char msg[sizeof(it->errmsg)];
            fl_err_t err = be->iter_status(it->be_it, msg, sizeof(msg));
            if (err)
                iter_fail(it, err, msg);
            else
                it->state = IT_END;
        }
    }
out:
    iter_drop_backend(it);
}

static void detach_all(fl_kv_t *kv)
{
    for (fl_kv_iter_t *it = kv->iters; it; it = it->next)
        iter_detach(it);
}

static bool iter_ensure_backend(fl_kv_iter_t *it)
{
    char msg[sizeof(it->errmsg)];
    fl_err_t err;
    if (it->be_it)
        return true;
    if (!it->kv) {
        iter_fail(it, FL_ERR_INVALID, "the store was closed while the iterator was open");
        return false;
    }
    msg[0] = '\0';
    err = it->kv->be->iter_new(it->kv->self, it->lo, it->lolen, it->hi, it->hilen, &it->be_it, msg,
                               sizeof(msg));
    if (err) {
        it->be_it = NULL;
        iter_fail(it, err, msg);
        return false;
    }
    return true;
}

/* Successor of a prefix: the smallest key greater than every key that
 * starts with it. *len 0 means there is none (the prefix is all 0xff). */
static void prefix_successor(const uint8_t *p, size_t plen, uint8_t *out, size_t *len)
{
    size_t n = plen;
    while (n > 0 && p[n - 1] == 0xff)
        n--;
    if (n == 0) {
        *len = 0;
        return;
    }
    memcpy(out, p, n);
    out[n - 1]++;
    *len = n;
}

/* An iterator over [lo, succ(prefix)) where lo is the prefix, or over
 * [lo_default, unbounded) for an empty prefix. */
static fl_err_t iter_new_range(fl_kv_t *kv, const uint8_t *prefix, size_t plen,
                               const uint8_t *lo_default, size_t lo_default_len, fl_kv_iter_t **itp,
                               char *errstr, size_t errstr_size)
{
    fl_err_t err = FL_OK;
    fl_kv_iter_t *it = calloc(1, sizeof(*it));
    const uint8_t *lo = plen ? prefix : lo_default;
    size_t lolen = plen ? plen : lo_default_len;

    *itp = NULL;
    if (!it)
        goto nomem;
    it->lo = malloc(lolen);
    if (!it->lo)
        goto nomem;
    memcpy(it->lo, lo, lolen);
    it->lolen = lolen;
    if (plen) {
        it->hi = malloc(plen);
        if (!it->hi)
            goto nomem;
        prefix_successor(prefix, plen, it->hi, &it->hilen);
        if (it->hilen == 0) {
            free(it->hi);
            it->hi = NULL;
        }
    }
    it->kv = kv;
    it->state = IT_UNPOSITIONED;
    it->next = kv->iters;
    if (kv->iters)
        kv->iters->prev = it;
    kv->iters = it;
    *itp = it;
    it = NULL;
    goto out;
nomem:
    fl__errf(errstr, errstr_size, "out of memory");
    err = FL_ERR_NOMEM;
out:
    if (it) {
        free(it->lo);
        free(it->hi);
        free(it);
    }
    return err;
}

fl_err_t fl_kv_iter_new(fl_kv_t *kv, const void *prefix, size_t plen, fl_kv_iter_t **itp,
                        char *errstr, size_t errstr_size)
{
    static const uint8_t user_lo[1] = {0x01};
    fl_err_t err = FL_OK;
    *itp = NULL;
    if (plen) {
        err = check_user_key(prefix, plen, errstr, errstr_size);
        if (err)
            goto out;
    }
    err = iter_new_range(kv, prefix, plen, user_lo, sizeof(user_lo), itp, errstr, errstr_size);
out:
    return err;
}

void fl_kv_iter_seek(fl_kv_iter_t *it, const void *key, size_t klen)
{
    if (it->state == IT_ERROR && !it->kv)
        return;
    if (fl__key_cmp(key, klen, it->lo, it->lolen) < 0) {
        key = it->lo;
        klen = it->lolen;
    }
    if (it->hi && fl__key_cmp(key, klen, it->hi, it->hilen) >= 0) {
        it->state = IT_END;
        return;
    }
    if (!iter_ensure_backend(it))
        return;
    it->kv->be->iter_seek(it->be_it, key, klen);
    it->state = IT_LIVE;
}

void fl_kv_iter_seek_first(fl_kv_iter_t *it)
{
    fl_kv_iter_seek(it, it->lo, it->lolen);
}

void fl_kv_iter_seek_last(fl_kv_iter_t *it)
{
    if (!iter_ensure_backend(it))
        return;
    it->kv->be->iter_seek_last(it->be_it);
    it->state = IT_LIVE;
}

void fl_kv_iter_seek_for_prev(fl_kv_iter_t *it, const void *key, size_t klen)
{
    if (it->state == IT_ERROR && !it->kv)
        return;
    if (it->hi && fl__key_cmp(key, klen, it->hi, it->hilen) >= 0) {
        fl_kv_iter_seek_last(it);
        return;
    }
    if (fl__key_cmp(key, klen, it->lo, it->lolen) < 0) {
        it->state = IT_END;
        return;
    }
    if (!iter_ensure_backend(it))
        return;
    it->kv->be->iter_seek_for_prev(it->be_it, key, klen);
    it->state = IT_LIVE;
}

/* One step from a live position, or, after a write, from the saved key:
 * re-seek to it on the current data and step over it if it still exists. */
static void iter_step(fl_kv_iter_t *it, bool forward)
{
    const fl_kv_backend_t *be;
    switch (it->state) {
    case IT_LIVE:
        be = it->kv->be;
        if (!live_valid(it))
            break;
        if (forward)
            be->iter_next(it->be_it);
        else
            be->iter_prev(it->be_it);
        break;
    case IT_DETACHED:
        if (!iter_ensure_backend(it))
            break;
        be = it->kv->be;
        if (forward)
            be->iter_seek(it->be_it, it->saved, it->saved_klen);
        else
            be->iter_seek_for_prev(it->be_it, it->saved, it->saved_klen);
        it->state = IT_LIVE;
        if (be->iter_valid(it->be_it)) {
            size_t klen;
            const void *k = be->iter_key(it->be_it, &klen);
            if (fl__key_cmp(k, klen, it->saved, it->saved_klen) == 0) {
                if (forward)
                    be->iter_next(it->be_it);
                else
                    be->iter_prev(it->be_it);
            }
        }
        break;
    default:
        break;
    }
}

void fl_kv_iter_next(fl_kv_iter_t *it)
{
    iter_step(it, true);
}

void fl_kv_iter_prev(fl_kv_iter_t *it)
{
    iter_step(it, false);
}

bool fl_kv_iter_valid(const fl_kv_iter_t *it)
{
    if (it->state == IT_LIVE)
        return live_valid(it);
    return it->state == IT_DETACHED;
}

const void *fl_kv_iter_key(const fl_kv_iter_t *it, size_t *klen)
{
    if (it->state == IT_DETACHED) {
        *klen = it->saved_klen;
        return it->saved;
    }
    if (it->state == IT_LIVE && live_valid(it))
        return it->kv->be->iter_key(it->be_it, klen);
    *klen = 0;
    return NULL;
}

const void *fl_kv_iter_value(const fl_kv_iter_t *it, size_t *vlen)
{
    if (it->state == IT_DETACHED) {
        *vlen = it->saved_vlen;
        return it->saved + it->saved_klen;
    }
    if (it->state == IT_LIVE && live_valid(it))
        return it->kv->be->iter_value(it->be_it, vlen);
    *vlen = 0;
    return NULL;
}

fl_err_t fl_kv_iter_status(const fl_kv_iter_t *it, char *errstr, size_t errstr_size)
{
    if (it->state == IT_ERROR) {
        fl__errf(errstr, errstr_size, "%s", it->errmsg);
        return it->err;
    }
    if (it->state == IT_LIVE)
        return it->kv->be->iter_status(it->be_it, errstr, errstr_size);
    return FL_OK;
}

void fl_kv_iter_free(fl_kv_iter_t *it)
{
    if (!it)
        return;
    if (it->kv) {
        iter_drop_backend(it);
        if (it->prev)
            it->prev->next = it->next;
        else
            it->kv->iters = it->next;
        if (it->next)
            it->next->prev = it->prev;
    }
    FL_STATE_CHECK(it->be_it == NULL);
    free(it->lo);
    free(it->hi);
    free(it->saved);
    free(it);
}

fl_err_t fl_kv_scan_prefix(fl_kv_t *kv, const void *prefix, size_t plen, fl_kv_scan_fn *fn,
                           void *arg, char *errstr, size_t errstr_size)
{
    fl_kv_iter_t *it = NULL;
    fl_err_t err = fl_kv_iter_new(kv, prefix, plen, &it, errstr, errstr_size);
    if (err)
        goto out;
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it)) {
        size_t klen, vlen;
        const void *k = fl_kv_iter_key(it, &klen);
        const void *v = fl_kv_iter_value(it, &vlen);
        if (fn(arg, k, klen, v, vlen))
            goto out;
    }
    err = fl_kv_iter_status(it, errstr, errstr_size);
out:
    fl_kv_iter_free(it);
    return err;
}

/* ---- store handle ---- */

static fl_err_t check_format(fl_kv_t *kv, char *errstr, size_t errstr_size)
{
    uint8_t ver[4];
    copy_buf_t cb = {ver, sizeof(ver), 0};
    bool found = false;
    void *raw = NULL;
    fl_err_t err = kv->be->get(kv->self, FL_KV_META_VERSION_KEY, FL_KV_META_VERSION_KLEN, copy_buf,
                               &cb, &found, errstr, errstr_size);
    if (err)
        goto out;
    if (found) {
        uint32_t v;
        if (cb.vlen != sizeof(ver)) {
            fl__errf(errstr, errstr_size, "store format version has %zu bytes instead of 4",
                     cb.vlen);
            err = FL_ERR_CORRUPT;
            goto out;
        }
        v = fl_be_get32(ver);
        if (v != FL_KV_FORMAT_VERSION) {
            fl__errf(errstr, errstr_size,
                     "store format version %u is not supported (this build reads version %d); "
                     "destroy the store and restore it from its changelog",
                     v, FL_KV_FORMAT_VERSION);
            err = FL_ERR_CORRUPT;
        }
        goto out;
    }
    /* No version: only an empty store may be adopted. */
    {
        static const uint8_t lo[1] = {0x00};
        bool empty;
        err = kv->be->iter_new(kv->self, lo, 1, NULL, 0, &raw, errstr, errstr_size);
        if (err)
            goto out;
        kv->be->iter_seek(raw, lo, 1);
        empty = !kv->be->iter_valid(raw);
        err = kv->be->iter_status(raw, errstr, errstr_size);
        if (err)
            goto out;
        if (!empty) {
            fl__errf(errstr, errstr_size,
                     "store holds data but no format version: not a feedline state store");
            err = FL_ERR_CORRUPT;
            goto out;
        }
        kv->be->iter_free(raw);
        raw = NULL;
    }
    {
        uint8_t v[4] = {0, 0, 0, FL_KV_FORMAT_VERSION};
        fl_kv_op_t op = {FL_KV_META_VERSION_KEY, FL_KV_META_VERSION_KLEN, v, sizeof(v), false};
        err = kv->be->write(kv->self, &op, 1, errstr, errstr_size);
    }
out:
    if (raw)
        kv->be->iter_free(raw);
    return err;
}

fl_err_t fl_kv_from_backend(const fl_kv_backend_t *be, void *self, fl_kv_t **kvp, char *errstr,
                            size_t errstr_size)
{
    fl_err_t err = FL_OK;
    fl_kv_t *kv = calloc(1, sizeof(*kv));
    *kvp = NULL;
    if (!kv) {
        fl__errf(errstr, errstr_size, "out of memory");
        err = FL_ERR_NOMEM;
        be->close(self, NULL, 0);
        goto out;
    }
    kv->be = be;
    kv->self = self;
    err = check_format(kv, errstr, errstr_size);
    if (err)
        goto out;
    *kvp = kv;
    kv = NULL;
out:
    if (kv)
        fl_kv_close(kv, NULL, 0);
    return err;
}

fl_err_t fl_kv_close(fl_kv_t *kv, char *errstr, size_t errstr_size)
{
    fl_err_t err = FL_OK;
    fl_kv_iter_t *it, *next;
    if (!kv)
        goto out;
    for (it = kv->iters; it; it = next) {
        next = it->next;
        iter_drop_backend(it);
        iter_fail(it, FL_ERR_INVALID, "the store was closed while the iterator was open");
        it->kv = NULL;
        it->prev = it->next = NULL;
    }
    err = kv->be->close(kv->self, errstr, errstr_size);
    free(kv);
out:
    return err;
}

void fl_kv_free(fl_kv_t *kv)
{
    char errstr[512];
    const char *name;
    fl_err_t err;
    if (!kv)
        return;
    name = kv->be->name;
    err = fl_kv_close(kv, errstr, sizeof(errstr));
    if (err)
        fl_log_error("state", "closing %s store: %s", name, errstr);
}

const char *fl_kv_name(const fl_kv_t *kv)
{
    return kv->be->name;
}

/* ---- point operations ---- */

fl_err_t fl_kv_get(fl_kv_t *kv, const void *key, size_t klen, void **val, size_t *vlen, bool *found,
                   char *errstr, size_t errstr_size)
{
    copy_malloc_t c = {NULL, 0};
    fl_err_t err;
    *val = NULL;
    *vlen = 0;
    *found = false;
    err = check_user_key(key, klen, errstr, errstr_size);
    if (err)
        goto out;
    err = kv->be->get(kv->self, key, klen, copy_malloc, &c, found, errstr, errstr_size);
    if (err) {
        if (err == FL_ERR_NOMEM)
            fl__errf(errstr, errstr_size, "out of memory copying a value");
        free(c.val);
        *found = false;
        goto out;
    }
    if (*found) {
        *val = c.val;
        *vlen = c.vlen;
    }
out:
    return err;
}

fl_err_t fl_kv_get_buf(fl_kv_t *kv, const void *key, size_t klen, void *buf, size_t cap,
                       size_t *vlen, bool *found, char *errstr, size_t errstr_size)
{
    copy_buf_t c = {buf, cap, 0};
    fl_err_t err;
    *vlen = 0;
    *found = false;
    err = check_user_key(key, klen, errstr, errstr_size);
    if (err)
        goto out;
    err = kv->be->get(kv->self, key, klen, copy_buf, &c, found, errstr, errstr_size);
    if (err)
        goto out;
    if (*found) {
        *vlen = c.vlen;
        if (c.vlen > cap) {
            fl__errf(errstr, errstr_size, "value of %zu bytes does not fit a buffer of %zu", c.vlen,
                     cap);
            err = FL_ERR_OVERSIZED;
        }
    }
out:
    return err;
}

fl_err_t fl_kv_write_ops(fl_kv_t *kv, const fl_kv_op_t *ops, size_t n, char *errstr,
                         size_t errstr_size)
{
    fl_err_t err = FL_OK;
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].key || ops[i].klen == 0 || ops[i].klen > FL_KV_KEY_MAX) {
            fl__errf(errstr, errstr_size, "bad key length %zu", ops[i].klen);
            err = FL_ERR_INVALID;
            goto out;
        }
        if (!ops[i].del) {
            err = check_value(ops[i].val, ops[i].vlen, errstr, errstr_size);
            if (err)
                goto out;
        }
    }
    if (n == 0)
        goto out;
    detach_all(kv);
    err = kv->be->write(kv->self, ops, n, errstr, errstr_size);
out:
    return err;
}

fl_err_t fl_kv_put(fl_kv_t *kv, const void *key, size_t klen, const void *val, size_t vlen,
                   char *errstr, size_t errstr_size)
{
    fl_kv_op_t op = {key, klen, val, vlen, false};
    fl_err_t err = check_user_key(key, klen, errstr, errstr_size);
    if (err)
        goto out;
    err = fl_kv_write_ops(kv, &op, 1, errstr, errstr_size);
out:
    return err;
}

fl_err_t fl_kv_delete(fl_kv_t *kv, const void *key, size_t klen, char *errstr, size_t errstr_size)
{
    fl_kv_op_t op = {key, klen, NULL, 0, true};
    fl_err_t err = check_user_key(key, klen, errstr, errstr_size);
    if (err)
        goto out;
    err = fl_kv_write_ops(kv, &op, 1, errstr, errstr_size);
out:
    return err;
}

/* ---- batches ---- */

fl_kv_batch_t *fl_kv_batch_new(void)
{
    fl_kv_batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->map = fl__skl_new(0x5bd1e995);
    if (!b->map) {
        free(b);
        return NULL;
    }
    return b;
}

void fl_kv_batch_free(fl_kv_batch_t *b)
{
    if (!b)
        return;
    fl__skl_free(b->map);
    free(b->run);
    free(b->arena);
    free(b);
}

static fl_err_t map_add(fl_kv_batch_t *b, const void *key, size_t klen, const void *val,
                        size_t vlen, uint8_t flags, char *errstr, size_t errstr_size)
{
    fl__skl_node_t *n = fl__skl_node_new(b->map, key, klen, val, vlen, flags);
    if (!n) {
        fl__errf(errstr, errstr_size, "out of memory");
        return FL_ERR_NOMEM;
    }
    fl__skl_insert(b->map, n);
    return FL_OK;
}

static const uint8_t *run_key(const fl_kv_batch_t *b, const run_op_t *op)
{
    return b->arena + op->koff;
}

/* Moves the run into the map; on failure the batch is unchanged. */
static fl_err_t run_to_map(fl_kv_batch_t *b, char *errstr, size_t errstr_size)
{
    fl__skl_node_t **nodes = b->nrun ? malloc(b->nrun * sizeof(*nodes)) : NULL;
    if (b->nrun && !nodes)
        goto nomem;
    for (size_t i = 0; i < b->nrun; i++) {
        const run_op_t *op = &b->run[i];
        nodes[i] = fl__skl_node_new(b->map, run_key(b, op), op->klen, b->arena + op->voff, op->vlen,
                                    op->del ? FL_KV_BATCH_TOMBSTONE : 0);
        if (!nodes[i]) {
            while (i--)
                fl__skl_node_free(nodes[i]);
            free(nodes);
            goto nomem;
        }
    }
    for (size_t i = 0; i < b->nrun; i++)
        fl__skl_insert(b->map, nodes[i]);
    free(nodes);
    b->nrun = 0;
    b->arena_len = 0;
    b->unordered = true;
    return FL_OK;
nomem:
    fl__errf(errstr, errstr_size, "out of memory");
    return FL_ERR_NOMEM;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static fl_err_t batch_add(fl_kv_batch_t *b, const void *key, size_t klen, const void *val,
                          size_t vlen, uint8_t flags, char *errstr, size_t errstr_size)
{
    if (!b->unordered && b->nrun) {
        const run_op_t *last = &b->run[b->nrun - 1];
        if (fl__key_cmp(run_key(b, last), last->klen, key, klen) >= 0) {
            fl_err_t err = run_to_map(b, errstr, errstr_size);
            if (err)
                return err;
        }
    }
    if (b->unordered)
        return map_add(b, key, klen, val, vlen, flags, errstr, errstr_size);
    if (!grow((void **)&b->run, &b->run_cap, b->nrun + 1, sizeof(*b->run)) ||
        !grow((void **)&b->arena, &b->arena_cap, b->arena_len + klen + vlen, 1)) {
        fl__errf(errstr, errstr_size, "out of memory");
        return FL_ERR_NOMEM;
    }
    run_op_t *op = &b->run[b->nrun++];
    op->koff = b->arena_len;
    op->klen = (uint32_t)klen;
    memcpy(b->arena + b->arena_len, key, klen);
    b->arena_len += klen;
    op->voff = b->arena_len;
    op->vlen = (uint32_t)vlen;
    if (vlen)
        memcpy(b->arena + b->arena_len, val, vlen);
    b->arena_len += vlen;
    op->del = flags & FL_KV_BATCH_TOMBSTONE;
    return FL_OK;
}

fl_err_t fl_kv_batch_put(fl_kv_batch_t *b, const void *key, size_t klen, const void *val,
                         size_t vlen, char *errstr, size_t errstr_size)
{
    fl_err_t err = check_user_key(key, klen, errstr, errstr_size);
    if (err)
        goto out;
    err = check_value(val, vlen, errstr, errstr_size);
    if (err)
        goto out;
    err = batch_add(b, key, klen, val, vlen, 0, errstr, errstr_size);
out:
    return err;
}

fl_err_t fl_kv_batch_delete(fl_kv_batch_t *b, const void *key, size_t klen, char *errstr,
                            size_t errstr_size)
{
    fl_err_t err = check_user_key(key, klen, errstr, errstr_size);
    if (err)
        goto out;
    err = batch_add(b, key, klen, NULL, 0, FL_KV_BATCH_TOMBSTONE, errstr, errstr_size);
out:
    return err;
}

fl_err_t fl_kv_batch_set_offset(fl_kv_batch_t *b, const char *topic, int32_t partition,
                                int64_t offset, char *errstr, size_t errstr_size)
{
    uint8_t key[3 + FL_KV_TOPIC_MAX + 4], val[8];
    size_t klen;
    fl_err_t err = offset_key(topic, partition, key, &klen, errstr, errstr_size);
    if (err)
        goto out;
    if (offset < 0) {
        fl__errf(errstr, errstr_size, "negative offset %lld for %s/%d", (long long)offset, topic,
                 (int)partition);
        err = FL_ERR_INVALID;
        goto out;
    }
    fl_be_put64(val, (uint64_t)offset);
    err = map_add(b, key, klen, val, sizeof(val), 0, errstr, errstr_size);
out:
    return err;
}

size_t fl_kv_batch_count(const fl_kv_batch_t *b)
{
    return fl__skl_count(b->map) + b->nrun;
}

/* A run's memory is kept for the next batch up to this size. */
#define FL_KV_RUN_KEEP (8u << 20)

void fl_kv_batch_clear(fl_kv_batch_t *b)
{
    fl__skl_clear(b->map);
    if (b->arena_cap + b->run_cap * sizeof(*b->run) > FL_KV_RUN_KEEP) {
        free(b->arena);
        free(b->run);
        b->arena = NULL;
        b->run = NULL;
        b->arena_cap = b->run_cap = 0;
    }
    b->nrun = 0;
    b->arena_len = 0;
    b->unordered = false;
}

fl_err_t fl_kv_batch_commit(fl_kv_t *kv, fl_kv_batch_t *b, char *errstr, size_t errstr_size)
{
    detach_all(kv);
    return fl_kv_batch_write(kv, b, errstr, errstr_size);
}

void fl_kv_iters_resync(fl_kv_t *kv)
{
    detach_all(kv);
}

bool fl_kv_concurrent_write(const fl_kv_t *kv)
{
    return kv->be->concurrent_write;
}

fl_err_t fl_kv_batch_write(fl_kv_t *kv, fl_kv_batch_t *b, char *errstr, size_t errstr_size)
{
    fl_err_t err = FL_OK;
    size_t n = fl_kv_batch_count(b), i = 0;
    fl_kv_op_t *ops = NULL;
    if (n == 0)
        goto out;
    ops = malloc(n * sizeof(*ops));
    if (!ops) {
        fl__errf(errstr, errstr_size, "out of memory");
        err = FL_ERR_NOMEM;
        goto out;
    }
    /* The map's keys (metadata first), then the run's: no key is in both. */
    for (fl__skl_node_t *nd = fl__skl_first(b->map); nd; nd = fl__skl_next(nd), i++) {
        FL_STATE_CHECK(i < n);
        ops[i].key = fl__skl_key(nd, &ops[i].klen);
        ops[i].val = fl__skl_value(nd, &ops[i].vlen);
        ops[i].del = fl__skl_flags(nd) & FL_KV_BATCH_TOMBSTONE;
    }
    for (size_t j = 0; j < b->nrun; j++, i++) {
        FL_STATE_CHECK(i < n);
        ops[i].key = run_key(b, &b->run[j]);
        ops[i].klen = b->run[j].klen;
        ops[i].val = b->arena + b->run[j].voff;
        ops[i].vlen = b->run[j].vlen;
        ops[i].del = b->run[j].del;
    }
    FL_STATE_CHECK(i == n);
    err = kv->be->write(kv->self, ops, n, errstr, errstr_size);
    if (err)
        goto out;
    fl_kv_batch_clear(b);
out:
    free(ops);
    return err;
}

/* ---- offsets, metrics ---- */

fl_err_t fl_kv_get_offset(fl_kv_t *kv, const char *topic, int32_t partition, int64_t *offset,
                          bool *found, char *errstr, size_t errstr_size)
{
    uint8_t key[3 + FL_KV_TOPIC_MAX + 4], val[8];
    copy_buf_t c = {val, sizeof(val), 0};
    size_t klen;
    fl_err_t err;
    *found = false;
    *offset = -1;
    err = offset_key(topic, partition, key, &klen, errstr, errstr_size);
    if (err)
        goto out;
    err = kv->be->get(kv->self, key, klen, copy_buf, &c, found, errstr, errstr_size);
    if (err || !*found)
        goto out;
    if (c.vlen != sizeof(val) || (int64_t)fl_be_get64(val) < 0) {
        fl__errf(errstr, errstr_size, "stored offset of %s/%d is malformed", topic, (int)partition);
        *found = false;
        err = FL_ERR_CORRUPT;
        goto out;
    }
    *offset = (int64_t)fl_be_get64(val);
out:
    return err;
}

fl_err_t fl_kv_offsets_foreach(fl_kv_t *kv, fl_kv_offset_fn *fn, void *arg, char *errstr,
                               size_t errstr_size)
{
    static const uint8_t prefix[2] = {FL_KV_META_BYTE, FL_KV_META_OFFSET_TAG};
    fl_kv_iter_t *it = NULL;
    fl_err_t err = iter_new_range(kv, prefix, sizeof(prefix), NULL, 0, &it, errstr, errstr_size);
    if (err)
        goto out;
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it)) {
        char topic[FL_KV_TOPIC_MAX + 1];
        size_t klen, vlen, tlen;
        const uint8_t *k = fl_kv_iter_key(it, &klen);
        const uint8_t *v = fl_kv_iter_value(it, &vlen);
        int32_t partition;
        int64_t offset;
        tlen = klen > 2 ? k[2] : 0;
        if (klen != 3 + tlen + 4 || tlen == 0 || vlen != 8 || (int64_t)fl_be_get64(v) < 0) {
            fl__errf(errstr, errstr_size, "malformed offset entry in the store");
            err = FL_ERR_CORRUPT;
            goto out;
        }
        memcpy(topic, k + 3, tlen);
        topic[tlen] = '\0';
        partition = (int32_t)fl_be_get32(k + 3 + tlen);
        offset = (int64_t)fl_be_get64(v);
        if (fn(arg, topic, partition, offset))
            goto out;
    }
    err = fl_kv_iter_status(it, errstr, errstr_size);
out:
    fl_kv_iter_free(it);
    return err;
}

fl_err_t fl_kv_stats(fl_kv_t *kv, fl_kv_stats_t *st, char *errstr, size_t errstr_size)
{
    memset(st, 0, sizeof(*st));
    return kv->be->stats(kv->self, st, errstr, errstr_size);
}

fl_err_t fl_kv_flush(fl_kv_t *kv, char *errstr, size_t errstr_size)
{
    return kv->be->flush(kv->self, errstr, errstr_size);
}
