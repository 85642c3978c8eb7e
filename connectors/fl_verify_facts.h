/*
 * fl_verify_facts.h - what `feedline verify` compares beside the feeds:
 * the posts, users (profiles and counts), follows, affinity and
 * notifications that both projections hold, read from Redis and from
 * PostgreSQL into rows of one shape (fl_digest.h), so that one digest and
 * one difference serve every relation.
 *
 * A row is (id, item, value, aux): for an entity (posts, users) the id is
 * the entity's, the item a field and the value the field's (a string as
 * its 64-bit hash); for a set (follows, affinity, notifications) the id
 * is the owner's and the item a member. A field that is absent, 0 or ''
 * is no row on either side (Redis starts counts at 0, PostgreSQL may have
 * NULL).
 */
#ifndef FL_VERIFY_FACTS_H
#define FL_VERIFY_FACTS_H

#include "fl_digest.h"
#include "fl_err.h"
#include "fl_topology.h"

#include <stddef.h>

typedef enum fl_vrel {
    FL_VREL_POSTS,         /* post:{P} / posts (deleted_at IS NULL) */
    FL_VREL_USERS,         /* user:{U} / users FULL JOIN user_counts */
    FL_VREL_FOLLOWS,       /* following:{U} / follows */
    FL_VREL_AFFINITY,      /* affinity:{V} / affinity */
    FL_VREL_NOTIFICATIONS, /* notif:{U} / notifications */
    FL_VREL_N
} fl_vrel_t;

/* "posts", ...; and the name of the id ("post", "user", ...). */
const char *fl_fact_name(fl_vrel_t rel);
const char *fl_fact_id_name(fl_vrel_t rel);

/* Every row of rel in topo's Redis (database of its generation) or
 * PostgreSQL (schema of its generation) appended to s. FL_OK, or
 * FL_ERR_UNAVAILABLE/FL_ERR_NOMEM with a message. */
fl_err_t fl_facts_from_redis(const fl_topology_t *topo, fl_vrel_t rel, fl_feed_set_t *s, char *err,
                             size_t err_size);
fl_err_t fl_facts_from_pg(const fl_topology_t *topo, fl_vrel_t rel, fl_feed_set_t *s, char *err,
                          size_t err_size);

/* Every feed:{U} entry of topo's Redis appended to s (user, post,
 * created_at): the same reading as the relations'. */
fl_err_t fl_facts_feeds_from_redis(const fl_topology_t *topo, fl_feed_set_t *s, char *err,
                                   size_t err_size);

/* Describes one row ("text=#9f0c...", "followee 42", "like by 7 of post 9
 * at 1767225600000") into buf. */
void fl_fact_describe(fl_vrel_t rel, const fl_feed_entry_t *e, char *buf, size_t size);

/*
 * Notifications at Redis's cap: Redis keeps each user's newest
 * FL_REDIS_NOTIF_CAP (score created_at, ties by member bytes), PostgreSQL
 * all of them; the sink keeps the highest entry it ever trimmed of a user
 * in notif-mark:{U}. Above that mark the list is exact; at or below it, it
 * holds what came after the trim (an old notification while the list was
 * one short after a withdrawal), which depends on the order in which
 * notifications met. So a capped place is compared strictly above its
 * marks, as the timelines are (fl_timeline.h).
 * fl_facts_notif_marks_from_redis reads topo's marks as rows (user, post
 * or 0, created_at, actor); fl_facts_notif_cmp is the order of a user's
 * notifications for fl_feed_marks_merge and fl_feed_set_cut (fl_digest.h).
 */
fl_err_t fl_facts_notif_marks_from_redis(const fl_topology_t *topo, fl_feed_set_t *marks, char *err,
                                         size_t err_size);
int fl_facts_notif_cmp(const fl_feed_entry_t *a, const fl_feed_entry_t *b);

#endif
