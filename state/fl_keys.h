/*
 * fl_keys.h - order-preserving key encodings, the one place where state
 * store keys are laid out.
 *
 * A key is a tag byte naming its family, then fixed-width fields, so that
 * bytewise order (the store's order) equals the order of the tuples:
 *   i64 ascending:  8 bytes big-endian with the sign bit flipped, so
 *                   INT64_MIN encodes as 00..00 and INT64_MAX as ff..ff;
 *   i64 descending: the bitwise inverse of the ascending bytes.
 * Fixed widths mean a prefix of fields is a key prefix: every entry of
 * user u in a (tag, u, ...) family is found by a prefix scan of (tag, u).
 *
 * Tags are persisted: never renumber or reuse one; each tag has exactly
 * one layout. Tag 0x00 is reserved for store metadata (fl_kv.h) and is
 * rejected here.
 *
 * Builders (fl_key_t) have a sticky error: appends after a failure do
 * nothing and fl_key_status reports the first failure, so a key can be
 * built with one check at the end. Readers (fl_key_reader_t) return
 * FL_ERR_TRUNCATED when a field runs past the end and FL_ERR_INVALID for
 * a wrong tag or trailing bytes.
 */
#ifndef FL_KEYS_H
#define FL_KEYS_H

#include "fl_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The key families of feedline's stores. Add new ones here. */
enum fl_key_tag {
    /* (user_id, created_at asc, post_id asc): a user's home timeline, oldest
     * first (fl_key_timeline), so that trimming the oldest entries is a
     * forward seek; readers walk it backwards for newest first */
    FL_KEY_TAG_TIMELINE = 0x10,
    /* (author_id, created_at desc, post_id desc): an author's own posts, newest first */
    FL_KEY_TAG_OUTBOX = 0x11,
    /* (followee_id, follower_id): who follows an author */
    FL_KEY_TAG_FOLLOWER = 0x20,
    /* (follower_id, followee_id): whom a user follows */
    FL_KEY_TAG_FOLLOWING = 0x21,
    /* (post_id): a post's record */
    FL_KEY_TAG_POST = 0x30,
    /* (user_id): a user's record (profile, follower count, celebrity flag) */
    FL_KEY_TAG_USER = 0x31,
    /* (post_id, user_id): who liked a post */
    FL_KEY_TAG_LIKE = 0x40,
    /* (viewer_id, author_id, post_id): the posts of an author a viewer likes */
    FL_KEY_TAG_LIKED = 0x41,
    /* (u8 kind, id[, id]): the size of a set, kept next to the set and
     * changed only when its membership does; kind is the engagement fact
     * kind (fl_engage.h) that publishes it */
    FL_KEY_TAG_COUNT = 0x50,
};

#define FL_KEY_MAX 64

typedef struct fl_key {
    uint8_t buf[FL_KEY_MAX];
    size_t len;
    fl_err_t err; /* first failure, sticky */
} fl_key_t;

/* ---- raw field codecs (8 bytes each) ---- */

void fl_key_enc_i64(uint8_t out[8], int64_t v);
int64_t fl_key_dec_i64(const uint8_t in[8]);
void fl_key_enc_i64_desc(uint8_t out[8], int64_t v);
int64_t fl_key_dec_i64_desc(const uint8_t in[8]);

/* ---- builder ---- */

void fl_key_init(fl_key_t *k);
/* The family tag; only as the first byte and never 0x00 (FL_ERR_INVALID). */
void fl_key_append_tag(fl_key_t *k, uint8_t tag);
/* Any byte after the tag (a sub-family, a flag). */
void fl_key_append_u8(fl_key_t *k, uint8_t v);
void fl_key_append_i64(fl_key_t *k, int64_t v);
void fl_key_append_i64_desc(fl_key_t *k, int64_t v);
/* FL_OK, or FL_ERR_OVERSIZED (past FL_KEY_MAX) / FL_ERR_INVALID (bad tag). */
fl_err_t fl_key_status(const fl_key_t *k);

/* ---- reader ---- */

typedef struct fl_key_reader {
    const uint8_t *p; /* borrowed */
    size_t len;
    size_t off;
} fl_key_reader_t;

void fl_key_reader_init(fl_key_reader_t *r, const void *key, size_t len);
/* Reads the tag and checks it equals tag. */
fl_err_t fl_key_read_tag(fl_key_reader_t *r, uint8_t tag);
fl_err_t fl_key_read_u8(fl_key_reader_t *r, uint8_t *v);
fl_err_t fl_key_read_i64(fl_key_reader_t *r, int64_t *v);
fl_err_t fl_key_read_i64_desc(fl_key_reader_t *r, int64_t *v);
/* FL_ERR_INVALID when bytes remain. */
fl_err_t fl_key_read_end(const fl_key_reader_t *r);

/* ---- the layouts feedline uses (each resets k) ---- */

/* (tag, id): an entity, and the prefix of every (tag, id, ...) key. 9 bytes. */
fl_err_t fl_key_entity(fl_key_t *k, uint8_t tag, int64_t id);
fl_err_t fl_key_parse_entity(const void *key, size_t len, uint8_t tag, int64_t *id);

/* (tag, from asc, to asc): an edge such as follower or like. 17 bytes. */
fl_err_t fl_key_edge(fl_key_t *k, uint8_t tag, int64_t from, int64_t to);
fl_err_t fl_key_parse_edge(const void *key, size_t len, uint8_t tag, int64_t *from, int64_t *to);

/* (tag, a asc, b asc, c asc): a three-part edge such as (viewer, author,
 * post). 25 bytes. */
fl_err_t fl_key_triple(fl_key_t *k, uint8_t tag, int64_t a, int64_t b, int64_t c);
fl_err_t fl_key_parse_triple(const void *key, size_t len, uint8_t tag, int64_t *a, int64_t *b,
                             int64_t *c);

/* (COUNT, kind, ids[0..n)): the count of a set, n 1 or 2. 10 or 18 bytes. */
fl_err_t fl_key_count(fl_key_t *k, uint8_t kind, const int64_t *ids, size_t n);

/* Order of the posts (created_at t1, post id p1) and (t2, p2), oldest
 * first: -1, 0 or 1. Timeline keys sort this way, recent keys the other. */
static inline int fl_key_tp_cmp(int64_t t1, int64_t p1, int64_t t2, int64_t p2)
{
    if (t1 != t2)
        return t1 < t2 ? -1 : 1;
    return p1 < p2 ? -1 : p1 > p2;
}

/* (tag, owner asc, created_at desc, post_id desc): an owner's posts newest
 * first, ties on created_at broken by the larger post id first. 25 bytes.
 * Seeking to the key of (owner, t, p) and skipping an exact match pages to
 * the entries older than (t, p). */
fl_err_t fl_key_recent(fl_key_t *k, uint8_t tag, int64_t owner, int64_t created_at,
                       int64_t post_id);
fl_err_t fl_key_parse_recent(const void *key, size_t len, uint8_t tag, int64_t *owner,
                             int64_t *created_at, int64_t *post_id);

/* (TIMELINE, user asc, created_at asc, post_id asc): a user's timeline
 * entries oldest first, ties on created_at broken by the smaller post id
 * first, so a timeline's newest entry is its last key. 25 bytes. */
fl_err_t fl_key_timeline(fl_key_t *k, int64_t user, int64_t created_at, int64_t post_id);
fl_err_t fl_key_parse_timeline(const void *key, size_t len, int64_t *user, int64_t *created_at,
                               int64_t *post_id);

/* Bytewise order of two keys, the store's order (memcmp, shorter first on
 * a common prefix). */
int fl_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

#endif
