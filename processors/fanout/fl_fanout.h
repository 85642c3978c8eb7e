/*
 * fl_fanout.h - the fan-out processor's pure logic (feedline-fanout).
 *
 * Input: posts and follows, co-partitioned by author (posts keyed by
 * author_id, follows by followee_id), merged in occurred_at order.
 * Store "fanout-authors", per author of the task's partition:
 *   FOLLOWER(author, follower) -> ""            the follower set
 *   USER(author)   -> i64 follower_count, i64 outbox_count, u8 celebrity
 *   POST(post)     -> i64 author, i64 created_at, u8 visibility, u8 state
 *   OUTBOX(author, created_at desc, post desc) -> u8 visibility
 *                    the author's recent non-private live posts, capped
 * Output: timeline operations (fl_tlop.h) on feedline.timeline-ops, one
 * record per (operation, destination partition); celebrity status changes
 * on feedline.celebrities.
 *
 * Rules (deterministic; see the README's "Fan-out rules"):
 * - PostCreated: author's own timeline always; followers too unless the
 *   post is private or the author is a celebrity. A post id seen before
 *   (live or deleted) is ignored; one reused by another author is invalid.
 * - PostDeleted: removed from the author's and every current follower's
 *   timeline. Deleting an unknown post records it as deleted, so a late
 *   PostCreated of it is ignored.
 * - FollowAdded: backfills the follower with the author's backfill_size
 *   newest outbox posts unless the author is a celebrity; duplicate is a
 *   no-op; self-follow is invalid. FollowRemoved: removes the author's
 *   posts from the ex-follower's timeline; unknown edge is a no-op.
 * - Celebrity: becomes one at follower_count >= celebrity_threshold; stops
 *   at follower_count < threshold - hysteresis, and then the outbox's
 *   backfill_size newest posts are fanned out to every follower.
 */
#ifndef FL_FANOUT_H
#define FL_FANOUT_H

#include "fl_proc.h"

extern const fl_processor_def_t fl_fanout_processor;

/* Decoded USER(author) value of the fanout store. */
typedef struct fl_fanout_author {
    int64_t followers; /* FOLLOWER(author, *) edges */
    int64_t outbox;    /* OUTBOX(author, *) entries */
    bool celebrity;
    /* (oldest_t, oldest_p): created_at and post id no newer than the
     * outbox's oldest entry, and equal to it but after a deletion, so a
     * trim starts there instead of walking the tombstones of the entries
     * trimmed before; unbounded in a record written before the bound */
    bool bounded;
    int64_t oldest_t, oldest_p;
} fl_fanout_author_t;

/* Reads USER(author) from the store; zero when absent. */
fl_err_t fl_fanout_author_get(fl_store_t *s, int64_t author, fl_fanout_author_t *out);

#endif
