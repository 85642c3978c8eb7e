/*
 * fl_cache.h - internal bounded cache of committed values for point reads
 * of a store (Kafka Streams' caching store, reads only). Not part of the
 * public API.
 *
 * The cache maps a key to what the committed key-value store holds for it:
 * a value, or "absent". fl_store fills it on read misses and, after each
 * commit, refreshes the keys it already holds; it never holds pending
 * (uncommitted) data, so an aborted batch leaves it right. Eviction is
 * CLOCK (second chance) under a byte budget that counts keys, values and
 * per-entry overhead.
 *
 * One thread at a time, like the store that owns it.
 */
#ifndef FL_CACHE_H
#define FL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl__cache fl__cache_t;

typedef struct fl__cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes, max_bytes;
} fl__cache_stats_t;

/* NULL when out of memory or max_bytes is 0 (no cache). */
fl__cache_t *fl__cache_new(size_t max_bytes);
void fl__cache_free(fl__cache_t *c);
void fl__cache_clear(fl__cache_t *c);

/* true on a hit: *present tells whether the key has a value, and *val /
 * *vlen point at it until the next change to the cache. false on a miss. */
bool fl__cache_get(fl__cache_t *c, const void *key, size_t klen, const void **val, size_t *vlen,
                   bool *present);

/* After a read miss: remembers the committed value of key (present
 * false: the key is absent; val may be NULL for an empty value), evicting others to stay in budget.
 * A key is admitted on its second miss within a while (see fl_cache.c). An entry too large for the
 * budget, or an allocation failure, leaves the key out of the cache: never a stale entry. */
void fl__cache_put(fl__cache_t *c, const void *key, size_t klen, bool present, const void *val,
                   size_t vlen);

/* Like fl__cache_put, but only when the cache holds key already: commits
 * refresh what readers asked for without filling the cache with writes. */
void fl__cache_refresh(fl__cache_t *c, const void *key, size_t klen, bool present, const void *val,
                       size_t vlen);

void fl__cache_stats(const fl__cache_t *c, fl__cache_stats_t *st);

#endif
