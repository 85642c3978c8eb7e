/*
 * fl_sink_store.h - what the sinks keep in their destinations, read by
 * other programs: where the destinations are, and the input offsets each
 * sink stored there with its data (README "Sink guarantees"), as the sink
 * itself reads them back on assignment. The read API's health thread and
 * `feedline lag` read them; nothing here writes.
 *
 * Redis: the sink's marker, a hash named FL_SINK_MARKER_FMT with its
 * name, holds `epoch` and, per input partition, FL_SINK_MARKER_OFF
 * "TOPIC/P" (the next offset) and FL_SINK_MARKER_GEN "TOPIC/P" (the owner
 * generation). PostgreSQL: the rows of sink_offsets(sink, topic,
 * partition, next_offset, generation, updated_at); a NULL next_offset is a
 * claimed partition never written.
 *
 * The connections are the caller's (borrowed for the call); a connection
 * error is FL_ERR_UNAVAILABLE, after which the caller drops it.
 */
#ifndef FL_SINK_STORE_H
#define FL_SINK_STORE_H

#include "fl_lag.h"

#include <stddef.h>

#define FL_SINK_MARKER_FMT "feedline:sink:{%s}"
#define FL_SINK_MARKER_OFF "off:"
#define FL_SINK_MARKER_GEN "gen:"

struct redisContext;
struct pg_conn;

/* endpoints.redis ("host:port") as host and port (6379 when it names none). */
void fl_sink_store_redis_endpoint(const char *endpoint, char *host, size_t host_size, int *port);

/* conninfo with libpq's connect_timeout and a statement_timeout of
 * timeout_ms added; NULL when out of memory, the caller frees. */
char *fl_sink_store_pg_conninfo(const char *conninfo, int timeout_ms);

/*
 * Sets parts[i].pos from the Redis marker of sink `sink` (FL_LAG_NONE for
 * a partition it holds no offset of) and epoch to the marker's epoch, ""
 * when the marker is gone (Redis flushed or restarted empty).
 */
fl_err_t fl_sink_store_redis_offsets(struct redisContext *c, const char *sink, fl_lag_part_t *parts,
                                     size_t n, char *epoch, size_t epoch_size, char *errstr,
                                     size_t errstr_size);

/* Sets parts[i].pos from sink `sink`'s sink_offsets rows (FL_LAG_NONE
 * without one; no table yet: none at all). */
fl_err_t fl_sink_store_pg_offsets(struct pg_conn *c, const char *sink, fl_lag_part_t *parts,
                                  size_t n, char *errstr, size_t errstr_size);

#endif
