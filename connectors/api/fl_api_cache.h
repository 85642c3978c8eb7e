/*
 * fl_api_cache.h - the read API's in-process cache of hydrated posts and
 * authors, shared by every worker thread.
 *
 * A feed page names ~20 posts and their authors; reading each from Redis
 * costs Redis (one thread for everything) two HMGETs per item, far more
 * than the page's own reads. Posts are immutable but for their like count
 * (and deletion), authors but for their names, so the cache keeps each for
 * ttl_ms: a like count or a name in a feed may be that much older than
 * Redis. Deletion needs no invalidation: a deleted post leaves the feeds
 * and outboxes the pages are read from, and single-post reads
 * (GET /v1/posts/{id}) bypass the cache.
 *
 * Sharded hash tables, each under its own mutex (a lookup holds it for a
 * copy of one entry); each shard holds at most max_entries / shards entries
 * and evicts the oldest when full (a FIFO ring). Thread-safe.
 */
#ifndef FL_API_CACHE_H
#define FL_API_CACHE_H

#include "fl_api_model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_api_cache fl_api_cache_t;

/* NULL when out of memory; ttl_ms 0 makes every lookup miss. */
fl_api_cache_t *fl_api_cache_new(size_t max_entries, int64_t ttl_ms);
void fl_api_cache_free(fl_api_cache_t *c);

/* A copy of the post (text included; handle and display_name not: the
 * author's entry holds them) into out, true on a fresh hit. */
bool fl_api_cache_get_post(fl_api_cache_t *c, int64_t post_id, int64_t now_ms, fl_post_t *out);
void fl_api_cache_put_post(fl_api_cache_t *c, const fl_post_t *p, int64_t now_ms);

/* The author's handle and display name (copies, caller frees); true on a
 * fresh hit. A cached "not registered" is a hit with *handle NULL. */
bool fl_api_cache_get_user(fl_api_cache_t *c, int64_t user_id, int64_t now_ms, char **handle,
                           char **display_name);
void fl_api_cache_put_user(fl_api_cache_t *c, int64_t user_id, const char *handle,
                           const char *display_name, int64_t now_ms);

/* Lookups that hit and missed since the start. */
void fl_api_cache_stats(const fl_api_cache_t *c, uint64_t *hits, uint64_t *misses);

#endif
