/*
 * fl_pg_sink.h - the PostgreSQL sink (feedline-pg-sink): users, posts,
 * the timelines changelog and the engagement facts into the PostgreSQL
 * projection (README "PostgreSQL projection"), with the input offsets in
 * the same transaction (fl_sink.h).
 *
 * open() connects to the topology's postgres endpoint (FEEDLINE_POSTGRES
 * overrides it) and applies the schema migrations (fl_pg_int.h). A batch
 * is collected in memory, collapsed per key (fl_pg_batch.h), and a flush
 * is one transaction: the fencing update of every part's offset row,
 * the deletes by key, new rows of the set tables COPYed straight into
 * their tables (staged instead when a key is already there), binary COPY
 * into temporary staging tables and one set-based statement or two for
 * the rest, COMMIT (fl_pg_sink.c). A lost connection gives FL_ERR_UNAVAILABLE with
 * the batch kept; the next call reconnects. Re-applying a batch whose
 * COMMIT was cut off is harmless: every statement writes final values.
 */
#ifndef FL_PG_SINK_H
#define FL_PG_SINK_H

#include "fl_sink.h"

extern const fl_sink_def_t fl_pg_sink;

#endif
