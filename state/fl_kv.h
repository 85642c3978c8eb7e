/*
 * fl_kv.h - the key-value state store: one interface, two backends.
 *
 * A store maps byte-string keys to byte-string values in bytewise key
 * order (memcmp, a shorter key first on a common prefix). Backends:
 * RocksDB (fl_kv_rocksdb_open, persistent) and an ordered in-memory map
 * (fl_kv_mem_new, for tests and the topology test driver). Layers such as
 * a changelog stack on top through the vtable in fl_kv_backend.h, like
 * Kafka Streams' store decorators.
 *
 * Key space. Keys starting with byte 0x00 are reserved for the store's own
 * metadata (format version, input offsets); every public call rejects them
 * with FL_ERR_INVALID, and user iterators never see them. fl_keys.h builds
 * user keys, which always start with a non-zero tag byte. Keys are 1 to
 * FL_KV_KEY_MAX bytes, values 0 to FL_KV_VALUE_MAX bytes.
 *
 * Atomic commit of state and offsets. A batch (fl_kv_batch_t) collects
 * puts, deletes and input offsets; fl_kv_batch_commit applies all of them
 * or none, including across a crash (RocksDB: one WriteBatch with the WAL
 * on). On restart, fl_kv_get_offset tells where to resume consuming.
 *
 * Iterators are cursors: a write to the store while an iterator is open
 * (fl_kv_put, fl_kv_delete, fl_kv_batch_commit) never invalidates it. The
 * entry it was on stays readable until the next move, and fl_kv_iter_next
 * (fl_kv_iter_prev) then moves to the first key greater (the last key
 * smaller) than that entry's key in the store as it is now. Both backends
 * behave identically here.
 *
 * Threads: a store, its iterators and batches are used by one thread at a
 * time (one partition task); nothing here locks. The one exception is
 * fl_kv_batch_write on a RocksDB store (see there).
 *
 * Errors: every call returns FL_OK or an fl_err_t and, when errstr is
 * non-NULL, a message in errstr. Not-found is FL_OK with *found = false.
 * FL_ERR_INVALID/FL_ERR_OVERSIZED: bad argument, nothing changed.
 * FL_ERR_IO/FL_ERR_CORRUPT: the store is unusable, close it.
 * FL_ERR_UNAVAILABLE: the store directory is locked by another handle or
 * process; retry later (as during a rebalance).
 */
#ifndef FL_KV_H
#define FL_KV_H

#include "fl_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_KV_KEY_MAX   4096
#define FL_KV_VALUE_MAX 1000000 /* one entry always fits a Kafka record (1 MB default) */

/* On-disk layout version of the store's keys and metadata. A store written
 * with another version is refused at open with FL_ERR_CORRUPT. */
#define FL_KV_FORMAT_VERSION 1

typedef struct fl_kv fl_kv_t;
typedef struct fl_kv_iter fl_kv_iter_t;
typedef struct fl_kv_batch fl_kv_batch_t;

/* ---- opening and closing ---- */

typedef struct fl_kv_rocksdb_opts {
    /* Bulk-restore mode, for filling a store from its changelog: WAL off,
     * large write buffers; memtables are flushed when the store is closed
     * (fl_kv_close) or by fl_kv_flush. While the store is open in this mode
     * a marker is kept in it; a normal open of a store whose bulk restore
     * was interrupted fails with FL_ERR_CORRUPT, and reopening it in bulk
     * mode resumes (then close it cleanly). */
    bool bulk_restore;
    /* fsync the WAL on every commit. Off (the default), a commit survives a
     * process crash but an OS crash may lose the last commits: state and
     * offsets are then lost together, and input is re-consumed. */
    bool sync;
    /* Fail with FL_ERR_IO instead of creating a missing store. */
    bool must_exist;
    /* 0 picks the default: 50 MiB block cache, 16 MiB write buffers (as Kafka
     * Streams' RocksDB stores); 128 MiB write buffers in bulk-restore mode. */
    size_t block_cache_bytes;
    size_t write_buffer_bytes;
} fl_kv_rocksdb_opts_t;

/* Opens (creating unless must_exist) the RocksDB store in directory dir.
 * opts may be NULL for the defaults. On FL_OK *kvp is the store, which the
 * caller closes with fl_kv_close or fl_kv_free. Errors: FL_ERR_CORRUPT for
 * a store of another format version, a directory that holds a RocksDB
 * database that is not a feedline store, or an interrupted bulk restore;
 * FL_ERR_UNAVAILABLE when the directory is locked. */
fl_err_t fl_kv_rocksdb_open(const char *dir, const fl_kv_rocksdb_opts_t *opts, fl_kv_t **kvp,
                            char *errstr, size_t errstr_size);

/* Deletes the RocksDB store in dir and its files (the directory remains if
 * it holds other files). The store must not be open. */
fl_err_t fl_kv_rocksdb_destroy(const char *dir, char *errstr, size_t errstr_size);

/* An empty in-memory store; NULL only when out of memory. */
fl_kv_t *fl_kv_mem_new(void);

/* Closes the store and frees it; kv may be NULL. Open iterators must be
 * freed by their owners afterwards: they report FL_ERR_INVALID from then on.
 * The error is that of the final flush of a bulk restore (the store is
 * freed either way). */
fl_err_t fl_kv_close(fl_kv_t *kv, char *errstr, size_t errstr_size);

/* fl_kv_close that logs an error instead of returning it; kv may be NULL. */
void fl_kv_free(fl_kv_t *kv);

/* Static backend name ("rocksdb", "memory"), for logs and metrics. */
const char *fl_kv_name(const fl_kv_t *kv);

/* ---- point operations ---- */

/* Looks key up. On a hit *found is true and *val is a malloc'd copy of the
 * value (never NULL, even for an empty value) that the caller frees with
 * free(); on a miss *found is false and *val NULL. */
fl_err_t fl_kv_get(fl_kv_t *kv, const void *key, size_t klen, void **val, size_t *vlen, bool *found,
                   char *errstr, size_t errstr_size);

/* Looks key up and copies the value into buf (cap bytes). *vlen is the
 * value's length. A value longer than cap gives FL_ERR_OVERSIZED, *found
 * true, *vlen the needed size and buf unspecified. */
fl_err_t fl_kv_get_buf(fl_kv_t *kv, const void *key, size_t klen, void *buf, size_t cap,
                       size_t *vlen, bool *found, char *errstr, size_t errstr_size);

/* Single writes, each atomic and durable like a one-entry batch. Deleting
 * an absent key is FL_OK. Input offsets can only be written in a batch. */
fl_err_t fl_kv_put(fl_kv_t *kv, const void *key, size_t klen, const void *val, size_t vlen,
                   char *errstr, size_t errstr_size);
fl_err_t fl_kv_delete(fl_kv_t *kv, const void *key, size_t klen, char *errstr, size_t errstr_size);

/* ---- iteration ---- */

/* An iterator over the user keys that start with prefix (plen bytes; 0 for
 * every user key), in bytewise order, both directions. It starts
 * unpositioned: call a seek first. The prefix is copied. Free with
 * fl_kv_iter_free before or after the store is closed. */
fl_err_t fl_kv_iter_new(fl_kv_t *kv, const void *prefix, size_t plen, fl_kv_iter_t **itp,
                        char *errstr, size_t errstr_size);
void fl_kv_iter_seek_first(fl_kv_iter_t *it);
void fl_kv_iter_seek_last(fl_kv_iter_t *it);
/* Positions at the first key >= key within the prefix. */
void fl_kv_iter_seek(fl_kv_iter_t *it, const void *key, size_t klen);
/* Positions at the last key <= key within the prefix. */
void fl_kv_iter_seek_for_prev(fl_kv_iter_t *it, const void *key, size_t klen);
/* Moves to the next (previous) key; no-op when not valid. Directions may
 * be mixed freely. */
void fl_kv_iter_next(fl_kv_iter_t *it);
void fl_kv_iter_prev(fl_kv_iter_t *it);
bool fl_kv_iter_valid(const fl_kv_iter_t *it);
/* The current entry, borrowed until the iterator moves or is freed. Only
 * when valid; NULL and 0 otherwise. */
const void *fl_kv_iter_key(const fl_kv_iter_t *it, size_t *klen);
const void *fl_kv_iter_value(const fl_kv_iter_t *it, size_t *vlen);
/* After valid() turns false: FL_OK at the end of the range, else the error
 * that stopped the iteration. */
fl_err_t fl_kv_iter_status(const fl_kv_iter_t *it, char *errstr, size_t errstr_size);
void fl_kv_iter_free(fl_kv_iter_t *it);

/* Calls fn for every entry whose key starts with prefix, in order; key and
 * value are borrowed for the call. fn returns 0 to go on, anything else to
 * stop (then FL_OK is returned). fn may write to the store. */
typedef int fl_kv_scan_fn(void *arg, const void *key, size_t klen, const void *val, size_t vlen);
fl_err_t fl_kv_scan_prefix(fl_kv_t *kv, const void *prefix, size_t plen, fl_kv_scan_fn *fn,
                           void *arg, char *errstr, size_t errstr_size);

/* ---- write batches ---- */

/* An empty batch, independent of any store; NULL only when out of memory.
 * Within a batch the last write to a key wins, as if applied in order. */
fl_kv_batch_t *fl_kv_batch_new(void);
void fl_kv_batch_free(fl_kv_batch_t *b);
/* Key and value are copied. */
fl_err_t fl_kv_batch_put(fl_kv_batch_t *b, const void *key, size_t klen, const void *val,
                         size_t vlen, char *errstr, size_t errstr_size);
fl_err_t fl_kv_batch_delete(fl_kv_batch_t *b, const void *key, size_t klen, char *errstr,
                            size_t errstr_size);
/* Records that input topic/partition is consumed up to offset, which is the
 * next offset to read (Kafka's committed-offset convention). topic is a
 * Kafka topic name (1..249 of [A-Za-z0-9._-]); partition >= 0, offset >= 0. */
fl_err_t fl_kv_batch_set_offset(fl_kv_batch_t *b, const char *topic, int32_t partition,
                                int64_t offset, char *errstr, size_t errstr_size);
/* Distinct keys (and offsets) in the batch. */
size_t fl_kv_batch_count(const fl_kv_batch_t *b);
void fl_kv_batch_clear(fl_kv_batch_t *b);
/* Applies every write and offset in b to kv atomically. On FL_OK the batch
 * is emptied for reuse; on error nothing was applied and b is unchanged. */
fl_err_t fl_kv_batch_commit(fl_kv_t *kv, fl_kv_batch_t *b, char *errstr, size_t errstr_size);
/* fl_kv_batch_commit without the cursor guarantee: iterators open during
 * the write may or may not see it (each sees all of it or none of it).
 * On a RocksDB store it may run on another thread while the owning thread
 * reads the store (gets, iterators, stats) but does not write it: fl_store
 * writes a committed batch in the background this way. */
fl_err_t fl_kv_batch_write(fl_kv_t *kv, fl_kv_batch_t *b, char *errstr, size_t errstr_size);
/* Whether fl_kv_batch_write may run beside readers on another thread. */
bool fl_kv_concurrent_write(const fl_kv_t *kv);
/* After an fl_kv_batch_write, on the owning thread: open iterators see the
 * store as it is now from their next move, as after fl_kv_batch_commit. */
void fl_kv_iters_resync(fl_kv_t *kv);

/* ---- input offsets and metrics ---- */

/* The offset last committed for topic/partition; *found false if none. */
fl_err_t fl_kv_get_offset(fl_kv_t *kv, const char *topic, int32_t partition, int64_t *offset,
                          bool *found, char *errstr, size_t errstr_size);

/* Calls fn for every stored input offset, ordered by topic then partition;
 * topic is NUL-terminated and borrowed for the call. fn returns non-zero
 * to stop. */
typedef int fl_kv_offset_fn(void *arg, const char *topic, int32_t partition, int64_t offset);
fl_err_t fl_kv_offsets_foreach(fl_kv_t *kv, fl_kv_offset_fn *fn, void *arg, char *errstr,
                               size_t errstr_size);

typedef struct fl_kv_stats {
    uint64_t entries; /* memory: exact count of user keys; RocksDB: estimate, metadata included */
    uint64_t bytes;   /* memory: key+value bytes; RocksDB: SST files + memtables */
} fl_kv_stats_t;

fl_err_t fl_kv_stats(fl_kv_t *kv, fl_kv_stats_t *st, char *errstr, size_t errstr_size);

/* Makes every committed write durable in table files (RocksDB memtable
 * flush); a no-op in memory. Used at the end of a bulk restore. */
fl_err_t fl_kv_flush(fl_kv_t *kv, char *errstr, size_t errstr_size);

#endif
