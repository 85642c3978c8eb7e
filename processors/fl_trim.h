/*
 * fl_trim.h - dropping the oldest entries of a capped, ordered family of
 * store keys (an author's outbox, a user's timeline) to make room for one
 * new entry. Shared by the fan-out and the timeline processors.
 */
#ifndef FL_TRIM_H
#define FL_TRIM_H

#include "fl_keys.h"
#include "fl_store.h"

#include <stdbool.h>
#include <stdint.h>

/* Called for each entry about to be deleted; a non-OK result stops the
 * trim with that error (e.g. FL_ERR_CORRUPT for a damaged stored key). */
typedef fl_err_t fl_trim_fn(void *arg, const void *key, size_t klen);

/*
 * Drops the drop oldest entries, the new entry k counted among them when
 * it is older than every entry left: then *keep is false and k must not
 * be inserted (inserting and trimming it in one batch would put a
 * tombstone for an entry that never existed into the changelog). it is
 * positioned at the oldest entry; newest_first says the family's keys
 * sort newest first (walked backwards) or oldest first (walked forwards).
 * The walk costs only the excess. FL_ERR_CORRUPT when fewer entries exist
 * than drop promised. The caller frees it.
 */
fl_err_t fl_trim_oldest(fl_store_t *s, fl_store_iter_t *it, bool newest_first, const fl_key_t *k,
                        int64_t drop, bool *keep, fl_trim_fn *on_drop, void *arg);

#endif
