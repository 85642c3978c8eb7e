/*
 * fl_engagement.h - the engagement processor's pure logic
 * (feedline-engagement): like, follower and post counts, the likes and
 * follows themselves, and notifications, as the facts of fl_engage.h.
 *
 * Input: partition p of posts (keyed by author), follows (by followee)
 * and likes (by post), merged by occurred_at. The three key spaces differ:
 * a task owns the posts of the authors, the followers of the followees
 * and the likers of the posts whose ids fall in its partition.
 * Store "engagement":
 *   LIKE(post, user)          -> i64 created_at, i64 author    the likers set
 *   FOLLOWER(followee, follower) -> i64 created_at             the followers set
 *   POST(post)                -> i64 author, u8 state (1 live, 2 deleted)
 *   COUNT(POST_LIKES, post), COUNT(FOLLOWERS, user), COUNT(POSTS, user)
 *                             -> i64, the size of the set (fl_facts.h)
 * Output: facts on feedline.engagement (partition of the fact's first id);
 * like and follow edges on feedline.engagement-edges (partition of the
 * liker or follower) for feedline-affinity.
 *
 * Rules (README "Engagement rules"); every output comes from a change of
 * a set, so duplicates and replays of the same topic order change nothing:
 * - LikeAdded of a new (post, user): LIKE fact, POST_LIKES count, a like
 *   notification to the author unless the user is the author, a like edge.
 *   A like of a present pair does nothing. The author is the event's; it
 *   must agree with the author of the post's other likes (invalid
 *   otherwise). LikeRemoved of a present pair withdraws all of it (with
 *   the stored author); of an absent pair does nothing.
 * - FollowAdded of a new edge: FOLLOW fact, FOLLOWERS count, a follow
 *   notification, a follow edge; FollowRemoved of a present edge withdraws
 *   them. Duplicates and removals of absent edges do nothing; a
 *   self-follow or self-unfollow is invalid, as in the fan-out.
 * - PostCreated of an unknown post id: POSTS count + 1. A known id (live
 *   or deleted) is ignored; one known under another author is invalid.
 *   PostDeleted of a live post: POSTS count - 1; of a deleted one: nothing;
 *   of an unknown one: remembered as deleted, so its late PostCreated is
 *   ignored; naming another author than the post's: invalid.
 * - Records outside the task's partition and events with ids <= 0 are
 *   invalid. An invalid record changes nothing.
 */
#ifndef FL_ENGAGEMENT_H
#define FL_ENGAGEMENT_H

#include "fl_proc.h"

extern const fl_processor_def_t fl_engagement_processor;

#endif
