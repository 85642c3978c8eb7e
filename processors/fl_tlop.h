/*
 * fl_tlop.h - timeline operations: what feedline-fanout tells
 * feedline-timeline, one Kafka record per (operation, destination
 * partition) on feedline.timeline-ops.
 *
 * An operation applies to the cross product of its posts and its
 * recipients: fan-out of one post is 1 post x the followers living in one
 * partition; a follow backfill is up to backfill_size posts x 1 follower;
 * an unfollow is "remove every post of author A" x 1 ex-follower. Every
 * operation is idempotent at the timeline: inserting (user, post) twice is
 * inserting it once; removing an absent entry is nothing.
 *
 * Wire format (internal, big-endian, versioned):
 *   u8 magic 'T', u8 version 1, u8 op, u8 reserved (0),
 *   i64 author_id (FL_TLOP_REMOVE_AUTHOR; else 0), u32 flags (0),
 *   u32 n_posts,      n_posts x { i64 post_id, i64 author_id, i64 created_at },
 *   u32 n_recipients, n_recipients x i64 user_id
 * Decoding checks every count against the bytes that remain before it
 * allocates, and rejects trailing bytes.
 */
#ifndef FL_TLOP_H
#define FL_TLOP_H

#include "fl_err.h"

#include <stddef.h>
#include <stdint.h>

typedef enum fl_tlop_kind {
    FL_TLOP_INSERT = 1,        /* insert posts into recipients' timelines */
    FL_TLOP_REMOVE = 2,        /* remove posts from recipients' timelines */
    FL_TLOP_REMOVE_AUTHOR = 3, /* remove every post by author_id */
} fl_tlop_kind_t;

typedef struct fl_tlop_post {
    int64_t post_id;
    int64_t author_id;
    int64_t created_at;
} fl_tlop_post_t;

typedef struct fl_tlop {
    fl_tlop_kind_t op;
    int64_t author_id; /* FL_TLOP_REMOVE_AUTHOR only */
    fl_tlop_post_t *posts;
    uint32_t n_posts;
    int64_t *recipients;
    uint32_t n_recipients;
} fl_tlop_t;

#define FL_TLOP_HEADER_SIZE 20
#define FL_TLOP_MAX_ENCODED (8u * 1024 * 1024)

/* Encoded size of op in bytes. */
size_t fl_tlop_encoded_size(const fl_tlop_t *op);

/* Encodes op into buf (at least fl_tlop_encoded_size() bytes); returns the size. */
size_t fl_tlop_encode(const fl_tlop_t *op, unsigned char *buf);

/*
 * Decodes data into op. On FL_OK op->posts and op->recipients are malloc'd
 * (free with fl_tlop_clear()). FL_ERR_TRUNCATED, FL_ERR_MAGIC,
 * FL_ERR_INVALID (bad op, trailing bytes) or FL_ERR_OVERSIZED with a
 * message in errstr otherwise, op left cleared.
 */
fl_err_t fl_tlop_decode(const void *data, size_t len, fl_tlop_t *op, char *errstr,
                        size_t errstr_size);

void fl_tlop_clear(fl_tlop_t *op);

const char *fl_tlop_kind_str(fl_tlop_kind_t op);

#endif
