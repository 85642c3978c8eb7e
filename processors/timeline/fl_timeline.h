/*
 * fl_timeline.h - the timeline processor's pure logic (feedline-timeline).
 *
 * Input: timeline operations (fl_tlop.h) on feedline.timeline-ops; every
 * recipient of a record lives in the record's partition, the task's.
 * Store "timelines", per user of the task's partition:
 *   TIMELINE(user, created_at, post) -> i64 author   oldest first (fl_key_timeline)
 *   USER(user) -> i64 entries, then bounds (created_at, post) lo and hi:
 *                 every entry lies between them                 40 bytes
 *                 then, once the cap has dropped an entry, the trim
 *                 mark (created_at, post): the newest entry it dropped
 *                                                               56 bytes
 *                 then up to FL_TIMELINE_WINDOW (created_at, post): the
 *                 oldest entries, oldest first, that spare trimming a
 *                 seek                                 56 + 16 n bytes
 * Both are captured in the changelog; sinks read the TIMELINE records
 * (one per (user, post), tombstones on removal and trimming) and may
 * ignore the counts.
 *
 * Every operation is idempotent: an insert of a present entry, a removal
 * of an absent one change nothing. After an insert, a timeline above
 * timeline_cap loses its oldest entries (by created_at, then post id).
 *
 * The order of operations from different authors is not fixed (each
 * fan-out task writes its own, interleaved in the topic as they commit),
 * and at the cap it matters: a removal that frees room after a trim
 * leaves a shorter timeline than the same removal before it. What does
 * not depend on the order is what lies above the trim mark: every entry
 * inserted and not removed that is newer than the mark is present (an
 * entry the cap dropped is at or below the mark). Two timelines built from
 * the same operations are therefore equal above the higher of their two
 * marks, and equal outright when neither has one; `feedline verify
 * --against` compares generations that way. The mark stays (a 56-byte
 * USER record at count 0) once set.
 *
 * A recipient that does not belong to the task's partition makes the
 * record invalid (it goes to the dead-letter topic, nothing is applied).
 */
#ifndef FL_TIMELINE_H
#define FL_TIMELINE_H

#include "fl_proc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const fl_processor_def_t fl_timeline_processor;

#define FL_TIMELINE_META_SIZE        40
#define FL_TIMELINE_META_MARKED_SIZE 56
#define FL_TIMELINE_WINDOW           8
#define FL_TIMELINE_META_MAX_SIZE    (FL_TIMELINE_META_MARKED_SIZE + 16 * FL_TIMELINE_WINDOW)

/* A USER record of the store (its changelog carries them too). */
typedef struct fl_timeline_meta {
    int64_t count;
    bool marked; /* the cap has dropped an entry */
    int64_t mark_created_at, mark_post_id;
    int window; /* oldest entries the record lists */
} fl_timeline_meta_t;

/* Whether len is the size of a USER record: 40, or 56 + 16 n for n up to
 * FL_TIMELINE_WINDOW. */
bool fl_timeline_meta_size_ok(size_t len);

/* FL_ERR_CORRUPT for a value of another size or a window out of order. */
fl_err_t fl_timeline_meta_parse(const void *val, size_t len, fl_timeline_meta_t *out);

/* Entries of user's timeline according to the stored count. */
fl_err_t fl_timeline_count(fl_store_t *s, int64_t user, int64_t *count);

#endif
