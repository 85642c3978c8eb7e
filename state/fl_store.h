/*
 * fl_store.h - one (store, partition) instance as processors see it: a
 * key-value store (fl_kv.h) plus the pending batch of the task, with
 * read-your-writes, plus the changelog capture that makes the store
 * restorable.
 *
 * Life of a batch: processors get/put/delete/iterate freely; every read
 * sees the batch's earlier writes over the committed state. At commit the
 * runtime (1) walks the pending changes with fl_store_changes() and
 * produces each as a changelog record (key = store key, value = store
 * value, NULL value = tombstone), (2) waits until Kafka acknowledged them,
 * then (3) calls fl_store_commit() with the input offsets, which applies
 * changes and offsets in one atomic batch. fl_store_abort() drops the
 * pending changes instead. Within a batch the last write to a key wins,
 * so the changelog carries one record per changed key per batch.
 *
 * Restore: fl_store_restore_apply() stages changelog records (excluded
 * from the change walk, since they came from the changelog) and
 * fl_store_commit() makes them durable with the changelog position
 * reached, kept in the store's metadata (fl_store_changelog_position) so
 * that a later open only replays what is newer. Restore always completes
 * before a task processes records.
 *
 * Errors: calls return fl_err_t; the message of the last failure is kept
 * in the store (fl_store_errmsg). One thread at a time per store.
 */
#ifndef FL_STORE_H
#define FL_STORE_H

#include "fl_err.h"
#include "fl_kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_store fl_store_t;
typedef struct fl_store_iter fl_store_iter_t;

/* Wraps kv, which the store now owns (closed by fl_store_free). name is
 * the store's name, changelog its changelog topic and partition its
 * partition (the changelog position is kept as that topic/partition's
 * offset in the store's metadata). NULL when out of memory (kv is then
 * freed). Strings are copied. */
fl_store_t *fl_store_new(fl_kv_t *kv, const char *name, const char *changelog, int32_t partition);
void fl_store_free(fl_store_t *s);

const char *fl_store_name(const fl_store_t *s);
int32_t fl_store_partition(const fl_store_t *s);
fl_kv_t *fl_store_kv(fl_store_t *s);
const char *fl_store_errmsg(const fl_store_t *s);

/*
 * Read cache: keeps up to max_bytes (keys, values and overhead) of
 * committed values, and "absent" answers, for fl_store_get, so that a hot
 * key costs a hash lookup instead of a key-value store read. Filled by
 * read misses, refreshed by each commit for the keys it holds, emptied by
 * a failed commit; it never holds pending changes. 0 turns it off (the
 * default). Iterators do not use it.
 */
fl_err_t fl_store_set_cache(fl_store_t *s, size_t max_bytes);

/*
 * Background writes: with on, fl_store_commit hands the batch to a writer
 * thread of the store and returns at once; reads go on seeing the batch
 * (it stays readable as a layer under the pending changes) and the next
 * commit, fl_store_sync, fl_store_offset, fl_store_changelog_position or
 * fl_store_free waits for it. A failed background write is reported by
 * whichever of those comes next, and the store is then behind what was
 * committed: the caller treats it as a failed commit. Only for stores
 * whose key-value store allows it (RocksDB; FL_ERR_INVALID otherwise).
 * Off by default; turning it off waits for the write in flight.
 */
fl_err_t fl_store_set_background_writes(fl_store_t *s, bool on);
/* Waits for the background write in flight, if any; its error, if it failed. */
fl_err_t fl_store_sync(fl_store_t *s);

typedef struct fl_store_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes;
} fl_store_cache_stats_t;

void fl_store_cache_stats(const fl_store_t *s, fl_store_cache_stats_t *st);

/* Copies the value of key into buf (cap bytes). Not found: FL_OK and
 * *found false. A larger value: FL_ERR_OVERSIZED with *vlen its size. */
fl_err_t fl_store_get(fl_store_t *s, const void *key, size_t klen, void *buf, size_t cap,
                      size_t *vlen, bool *found);
fl_err_t fl_store_put(fl_store_t *s, const void *key, size_t klen, const void *val, size_t vlen);
fl_err_t fl_store_delete(fl_store_t *s, const void *key, size_t klen);

/* Merged iteration over committed state and pending changes, keys that
 * start with prefix, both directions. Pending writes made while the
 * iterator is open may or may not be seen by it; deleting the current
 * entry and moving on is safe. */
fl_err_t fl_store_iter_new(fl_store_t *s, const void *prefix, size_t plen, fl_store_iter_t **itp);
void fl_store_iter_seek_first(fl_store_iter_t *it);
void fl_store_iter_seek_last(fl_store_iter_t *it);
void fl_store_iter_seek(fl_store_iter_t *it, const void *key, size_t klen);
/* The last entry at or before key (the prefix's last for a key past it).
 * Starting from a known key, it does not walk the deleted entries beyond
 * it that fl_store_iter_seek_last would (RocksDB keeps their tombstones
 * until a compaction). */
void fl_store_iter_seek_for_prev(fl_store_iter_t *it, const void *key, size_t klen);
void fl_store_iter_next(fl_store_iter_t *it);
void fl_store_iter_prev(fl_store_iter_t *it);
bool fl_store_iter_valid(const fl_store_iter_t *it);
const void *fl_store_iter_key(const fl_store_iter_t *it, size_t *klen);
const void *fl_store_iter_value(const fl_store_iter_t *it, size_t *vlen);
fl_err_t fl_store_iter_status(const fl_store_iter_t *it);
void fl_store_iter_free(fl_store_iter_t *it);

/* Number of keys changed in the pending batch. */
size_t fl_store_pending(const fl_store_t *s);

/*
 * Write calls so far: every fl_store_put and fl_store_delete, whether or
 * not it succeeded, counted over the store's life (commits and aborts do
 * not reset it; restore staging is not counted). The processor context
 * compares it before and after a record to check that a record the
 * processor rejected changed nothing (fl_ctx_int.h).
 */
uint64_t fl_store_writes(const fl_store_t *s);

/* Calls fn for every pending change in key order: val NULL for a delete.
 * fn returns non-zero to stop (then FL_ERR_INVALID is returned). */
typedef int fl_store_change_fn(void *arg, const void *key, size_t klen, const void *val,
                               size_t vlen);
fl_err_t fl_store_changes(fl_store_t *s, fl_store_change_fn *fn, void *arg);

/* Applies the pending changes and the given input offsets (n of them) and
 * the changelog position (-1: unchanged) atomically. */
typedef struct fl_store_offset {
    const char *topic;
    int32_t partition;
    int64_t offset; /* next offset to read */
} fl_store_offset_t;
fl_err_t fl_store_commit(fl_store_t *s, const fl_store_offset_t *offsets, size_t n,
                         int64_t changelog_position);
void fl_store_abort(fl_store_t *s);

/* Input offset stored for topic/partition; *found false if none. */
fl_err_t fl_store_offset(fl_store_t *s, const char *topic, int32_t partition, int64_t *offset,
                         bool *found);

/* Next changelog offset not yet reflected in the store (0 for a new store). */
fl_err_t fl_store_changelog_position(fl_store_t *s, int64_t *position);

/* Restore: stage one changelog record (val NULL = tombstone), bypassing
 * capture. Staged records become durable with fl_store_commit(). */
fl_err_t fl_store_restore_apply(fl_store_t *s, const void *key, size_t klen, const void *val,
                                size_t vlen);

#endif
