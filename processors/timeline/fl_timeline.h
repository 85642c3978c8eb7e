/*
 * fl_timeline.h - the timeline processor's pure logic (feedline-timeline).
 *
 * Input: timeline operations (fl_tlop.h) on feedline.timeline-ops; every
 * recipient of a record lives in the record's partition, the task's.
 * Store "timelines", per user of the task's partition:
 *   TIMELINE(user, created_at, post) -> i64 author   oldest first (fl_key_timeline)
 *   USER(user) -> i64 entries, then bounds (created_at, post) lo and hi:
 *                 every entry lies between them                 40 bytes
 * Both are captured in the changelog; sinks read the TIMELINE records
 * (one per (user, post), tombstones on removal and trimming) and may
 * ignore the counts.
 *
 * Every operation is idempotent: an insert of a present entry, a removal
 * of an absent one change nothing. After an insert, a timeline above
 * timeline_cap loses its oldest entries (by created_at, then post id).
 * A recipient that does not belong to the task's partition makes the
 * record invalid (it goes to the dead-letter topic, nothing is applied).
 */
#ifndef FL_TIMELINE_H
#define FL_TIMELINE_H

#include "fl_proc.h"

extern const fl_processor_def_t fl_timeline_processor;

/* Entries of user's timeline according to the stored count. */
fl_err_t fl_timeline_count(fl_store_t *s, int64_t user, int64_t *count);

#endif
