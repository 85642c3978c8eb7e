/*
 * fl_affinity.h - the affinity processor's pure logic (feedline-affinity):
 * the viewer side of engagement, from the edges feedline-engagement
 * publishes (fl_engage.h).
 *
 * Input: feedline.engagement-edges, partition p: the edges whose `a` (the
 * liker, the follower) falls in p.
 * Store "affinity":
 *   LIKED(viewer, author, post)   -> i64 at    posts of author the viewer likes
 *   FOLLOWING(follower, followee) -> i64 at    whom a user follows
 *   COUNT(AFFINITY, viewer, author), COUNT(FOLLOWING, user) -> i64 (fl_facts.h)
 * Output: AFFINITY(viewer, author) = liked posts of author and
 * FOLLOWING(user) = followees, on feedline.engagement; tombstones at 0.
 *
 * Every edge is idempotent: an added edge already in its set and a
 * removed one not in it change nothing. The edges of one (viewer, post)
 * or (follower, followee) all come from one engagement partition, in
 * order; edges from different partitions touch different set members, so
 * the result does not depend on how partitions interleave. A record that
 * does not decode, whose key is not the decimal `a`, or whose `a` is not
 * in the task's partition is invalid and changes nothing.
 */
#ifndef FL_AFFINITY_H
#define FL_AFFINITY_H

#include "fl_proc.h"

extern const fl_processor_def_t fl_affinity_processor;

#endif
