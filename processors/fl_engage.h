/*
 * fl_engage.h - the engagement facts: what feedline-engagement and
 * feedline-affinity derive from likes, follows and posts, as the sinks
 * read them.
 *
 * feedline.engagement (compacted; partition = fl_partition_for_id() of the
 * fact's first id) holds the current value of every fact, one record per
 * fact and change, a tombstone when the fact is gone (a count at 0, a
 * like withdrawn, an unfollow, a notification withdrawn):
 *
 *   kind              key ids                     value
 *   POST_LIKES    1   post                        i64 like count (from the likers set)
 *   FOLLOWERS     2   user                        i64 followers count
 *   FOLLOWING     3   user                        i64 following count
 *   POSTS         4   user                        i64 live posts count
 *   AFFINITY      5   viewer, author              i64 posts of author the viewer likes
 *   NOTIFICATION  6   recipient, nkind, actor,    i64 created_at (ms) of the
 *                     post (0 for a follow)           like or follow
 *   LIKE          7   post, user                  i64 created_at (ms) of the like
 *   FOLLOW        8   followee, follower          i64 created_at (ms) of the follow
 *
 * Key wire format: u8 kind, then each id as 8 bytes (fl_key_enc_i64:
 * big-endian with the sign bit flipped, so keys sort by id); the
 * notification's nkind is one byte between recipient and actor.
 * Value wire format: u8 magic 'E', u8 version 1, i64 value (fl_key_enc_i64).
 *
 * feedline.engagement-edges (internal; partition of `a`) carries the
 * transitions that the viewer side needs (feedline-affinity), emitted only
 * when the set they come from changed:
 *   u8 magic 'e', u8 version 1, u8 edge kind, u8 added (1) / removed (0),
 *   i64 a, i64 b, i64 post, i64 at (each fl_key_enc_i64, as in the facts)
 * like edge: a = viewer, b = author, post; follow edge: a = follower,
 * b = followee, post = 0. Key: the decimal id of a. `at` is the time of
 * the transition: the like's or follow's created_at when added, the
 * removal's occurred_at when removed.
 *
 * Decoders check exact lengths, magic, version and every enum byte, and
 * reject edges with ids <= 0 (a like edge needs a post, a follow edge has
 * post 0) and notifications whose post does not match their kind.
 */
#ifndef FL_ENGAGE_H
#define FL_ENGAGE_H

#include "fl_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fl_fact_kind {
    FL_FACT_POST_LIKES = 1,
    FL_FACT_FOLLOWERS = 2,
    FL_FACT_FOLLOWING = 3,
    FL_FACT_POSTS = 4,
    FL_FACT_AFFINITY = 5,
    FL_FACT_NOTIFICATION = 6,
    FL_FACT_LIKE = 7,
    FL_FACT_FOLLOW = 8,
} fl_fact_kind_t;

typedef enum fl_notif_kind {
    FL_NOTIF_LIKE = 1,   /* actor liked recipient's post */
    FL_NOTIF_FOLLOW = 2, /* actor followed recipient */
} fl_notif_kind_t;

typedef struct fl_fact {
    fl_fact_kind_t kind;
    /* ids by kind: POST_LIKES {post}; FOLLOWERS/FOLLOWING/POSTS {user};
     * AFFINITY {viewer, author}; NOTIFICATION {recipient, actor, post};
     * LIKE {post, user}; FOLLOW {followee, follower} */
    int64_t id[3];
    fl_notif_kind_t nkind; /* NOTIFICATION only */
    bool present;          /* false: a tombstone */
    int64_t value;         /* count or created_at; 0 for a tombstone */
} fl_fact_t;

#define FL_FACT_KEY_MAX (1 + 1 + 3 * 8)

/* Ids in a key of kind (1, 2 or 3); 0 for an unknown kind. */
int fl_fact_id_count(fl_fact_kind_t kind);
/* "post_likes", "followers", ...: a static string; "unknown" if unknown. */
const char *fl_fact_kind_str(fl_fact_kind_t kind);
#define FL_FACT_VALUE_LEN 10

/* Encodes f's key into out (FL_FACT_KEY_MAX bytes); returns its length. */
size_t fl_fact_key_encode(const fl_fact_t *f, uint8_t *out);
/* Encodes f's value (FL_FACT_VALUE_LEN bytes); only when f->present. */
size_t fl_fact_value_encode(const fl_fact_t *f, uint8_t *out);
/* Decodes a record of feedline.engagement (val NULL: a tombstone).
 * FL_ERR_INVALID with a message on a malformed key or value. */
fl_err_t fl_fact_decode(const void *key, size_t klen, const void *val, size_t vlen, fl_fact_t *f,
                        char *errstr, size_t errstr_size);

typedef enum fl_edge_kind {
    FL_EDGE_LIKE = 1,
    FL_EDGE_FOLLOW = 2,
} fl_edge_kind_t;

typedef struct fl_edge {
    fl_edge_kind_t kind;
    bool added;
    int64_t a, b, post, at;
} fl_edge_t;

#define FL_EDGE_LEN 36

size_t fl_edge_encode(const fl_edge_t *e, uint8_t *out);
fl_err_t fl_edge_decode(const void *val, size_t vlen, fl_edge_t *e, char *errstr,
                        size_t errstr_size);

#endif
