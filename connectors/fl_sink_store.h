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

/* SELECT db on c unless db is 0 (a generation kept in another database,
 * endpoints.redis_db); FL_ERR_UNAVAILABLE with a message when refused. */
fl_err_t fl_sink_store_redis_select(struct redisContext *c, int64_t db, char *errstr,
                                    size_t errstr_size);

/* A connection to ep's Redis with timeout tv for connecting and each
 * command, its database selected; NULL with a message naming the endpoint
 * when it cannot be had. The caller frees it with redisFree(). */
struct redisContext *fl_sink_store_redis_connect(const fl_endpoints_t *ep, int timeout_ms,
                                                 char *errstr, size_t errstr_size);

/* ep's conninfo with libpq's connect_timeout, a statement_timeout of
 * timeout_ms and, when ep names a schema, search_path set to it; NULL when
 * out of memory, the caller frees. */
char *fl_sink_store_pg_conninfo(const fl_endpoints_t *ep, int timeout_ms);

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
