/*
 * fl_redis_sink.h - the Redis sink (feedline-redis-sink): the destination
 * layer that the sink runtime (fl_sink.h) drives.
 *
 * It keeps the Redis projection of README "Redis sink" (feed:{U}, post:{P},
 * user:{U}, the pub/sub channel user:{U}) and its own keys (outbox:{A},
 * following:{U}, affinity:{V}, notif:{U}, celebrities, post-likes:{P},
 * post-deleted:{P}; README "Redis sink") from the topology's inputs of
 * the sink: users, posts, feedline.timelines-changelog,
 * feedline.engagement, feedline.celebrities.
 *
 * Offsets and owner generations live in the marker hash
 * feedline:sink:{NAME} (fields "epoch", "gen:TOPIC/P", "off:TOPIC/P"),
 * written by the same Lua script as the data of each chunk of a batch.
 * The epoch is drawn when a claim finds no marker: a marker with another
 * epoch than the one claimed under means Redis lost the data in between.
 *
 * The state is one Redis connection, used from the runtime's processing
 * thread only; a broken connection is dropped and made again on the next
 * call (the open batch is kept).
 */
#ifndef FL_REDIS_SINK_H
#define FL_REDIS_SINK_H

#include "fl_sink.h"

extern const fl_sink_def_t fl_redis_sink;

#endif
