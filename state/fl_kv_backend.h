/*
 * fl_kv_backend.h - the vtable behind fl_kv_t, for backends and decorators.
 *
 * fl_kv.c owns everything that must behave the same whatever the backend:
 * argument checks, the reserved metadata key space, the format-version
 * check, iterator bounds and cursor semantics, batches. A backend only
 * stores bytes: point get, an atomic write of a list of operations, and a
 * raw ordered iterator. A decorator (e.g. a changelog layer) implements
 * this vtable by calling fl_kv_write_ops/fl_kv_get on an inner store.
 *
 * Persisted metadata layout (format version 1), all keys starting 0x00:
 *   00 'v'                          -> u32 big-endian format version
 *   00 'o' u8 len, topic, u32 BE p  -> i64 big-endian next input offset
 *   00 'b'                          -> present while a bulk restore runs
 */
#ifndef FL_KV_BACKEND_H
#define FL_KV_BACKEND_H

#include "fl_kv.h"

/* "\0" is an octal escape: no digit may follow it inside these literals */
#define FL_KV_META_BYTE         0x00
#define FL_KV_META_VERSION_KEY  "\0v"
#define FL_KV_META_VERSION_KLEN 2
#define FL_KV_META_BULK_KEY     "\0b"
#define FL_KV_META_BULK_KLEN    2

/* One write. For a delete val is ignored. */
typedef struct fl_kv_op {
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    bool del;
} fl_kv_op_t;

/* Receives a value that is borrowed for the call; may fail (e.g. NOMEM). */
typedef fl_err_t fl_kv_value_fn(void *arg, const void *val, size_t vlen);

typedef struct fl_kv_backend {
    const char *name;
    /* Calls fn once with the value when key exists (*found true). */
    fl_err_t (*get)(void *self, const void *key, size_t klen, fl_kv_value_fn *fn, void *arg,
                    bool *found, char *errstr, size_t errstr_size);
    /* Applies ops in order (a later op on the same key wins), all or none. */
    fl_err_t (*write)(void *self, const fl_kv_op_t *ops, size_t n, char *errstr,
                      size_t errstr_size);
    /* A raw iterator over [lo, hi); hi NULL means unbounded. lo and hi are
     * borrowed until iter_free. It must never be valid on a key outside
     * [lo, hi). It is freed before any write to the store, so it need not
     * survive one. */
    fl_err_t (*iter_new)(void *self, const void *lo, size_t lolen, const void *hi, size_t hilen,
                         void **itp, char *errstr, size_t errstr_size);
    /* First key >= key; last key <= key; last key of the range. */
    void (*iter_seek)(void *it, const void *key, size_t klen);
    void (*iter_seek_for_prev)(void *it, const void *key, size_t klen);
    void (*iter_seek_last)(void *it);
    void (*iter_next)(void *it);
    void (*iter_prev)(void *it);
    bool (*iter_valid)(const void *it);
    const void *(*iter_key)(const void *it, size_t *klen);
    const void *(*iter_value)(const void *it, size_t *vlen);
    fl_err_t (*iter_status)(const void *it, char *errstr, size_t errstr_size);
    void (*iter_free)(void *it);
    fl_err_t (*stats)(void *self, fl_kv_stats_t *st, char *errstr, size_t errstr_size);
    fl_err_t (*flush)(void *self, char *errstr, size_t errstr_size);
    /* Releases everything, self included, even when it returns an error. */
    fl_err_t (*close)(void *self, char *errstr, size_t errstr_size);
    /* write may run on another thread while the owner reads (get,
     * iterators, stats), an iterator open meanwhile seeing all of the
     * write or none of it (RocksDB's implicit snapshots). */
    bool concurrent_write;
} fl_kv_backend_t;

/* Wraps a backend in a store handle, checking (or, for an empty store,
 * writing) the format version. Takes ownership of self: on error it has
 * been closed. */
fl_err_t fl_kv_from_backend(const fl_kv_backend_t *be, void *self, fl_kv_t **kvp, char *errstr,
                            size_t errstr_size);

/* Atomic write of raw operations, metadata keys allowed; open iterators are
 * detached first as for any write. For decorators and the backends' own
 * bookkeeping; processors use batches. */
fl_err_t fl_kv_write_ops(fl_kv_t *kv, const fl_kv_op_t *ops, size_t n, char *errstr,
                         size_t errstr_size);

/* True for keys in the reserved metadata space. */
static inline bool fl_kv_key_is_meta(const void *key, size_t klen)
{
    return klen > 0 && ((const unsigned char *)key)[0] == FL_KV_META_BYTE;
}

#endif
