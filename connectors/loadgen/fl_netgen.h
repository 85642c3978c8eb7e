/*
 * fl_netgen.h - a seeded model of a social network that emits feedline's
 * input events: the generator behind feedline-loadgen, pure (no Kafka,
 * no clock of its own) so that tests can check its rules and shape.
 *
 * The network: users with Zipf popularity and Pareto out-degrees (most
 * follow a few dozen accounts, a few follow thousands), and a few
 * celebrities each followed by more users than the topology's celebrity
 * threshold. Its events come in two phases:
 *   - the backlog: every user registered, the whole follow graph, then
 *     posts (some replies, 80/15/5% public/followers/private) interleaved
 *     with likes of recent public posts; occurred_at 1 ms apart from
 *     start_ms, so its span is known before it starts;
 *   - the steady mix, one event at a time at a time the caller gives:
 *     posts, replies, likes and unlikes, follows and unfollows, deletes and
 *     profile updates in the configured proportions.
 * The same options always give the same events (the caller's clock only
 * sets occurred_at in the steady phase). Every event is valid: no
 * self-follow, an unfollow names an edge that exists, an unlike a like
 * that was given, a delete a live post by its author. A steady phase
 * without the backlog first rebuilds the graph in memory (not emitted),
 * so it needs the same seed and sizes as the backlog it continues.
 *
 * Post ids are time-ordered and unique within a generator: created_at *
 * 1024 + a sequence number within the millisecond.
 */
#ifndef FL_NETGEN_H
#define FL_NETGEN_H

#include "fl_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kinds of steady events, in the order of fl_netgen_mix_t's weights. */
typedef enum fl_netgen_kind {
    FL_NG_POST,
    FL_NG_REPLY,
    FL_NG_LIKE,
    FL_NG_UNLIKE,
    FL_NG_FOLLOW,
    FL_NG_UNFOLLOW,
    FL_NG_DELETE,
    FL_NG_PROFILE,
    FL_NG_REGISTER, /* backlog only */
    FL_NG__KINDS
} fl_netgen_kind_t;

/* Name of a kind ("post", "like", ...), as --mix spells it. */
const char *fl_netgen_kind_name(fl_netgen_kind_t k);

typedef struct fl_netgen_opts {
    uint64_t seed;
    int64_t users;               /* > 0 */
    int64_t user_base;           /* id of the first user (> 0) */
    int64_t celebrities;         /* -1: 3 when the network is big enough, else none */
    int64_t celebrity_threshold; /* the topology's: celebrities get ~10% more followers */
    double mean_following;       /* mean regular out-degree (default 20) */
    double posts_per_user;       /* backlog posts (default 5) */
    double likes_per_post;       /* backlog likes (default 2) */
    int64_t start_ms;            /* occurred_at of the first backlog event */
    const char *run_id;          /* steady event ids: "<run_id>-<n>"; unique per run */
    unsigned mix[FL_NG__KINDS];  /* steady weights by kind (FL_NG_REGISTER ignored) */
} fl_netgen_opts_t;

/* The defaults above; seed 1, 20,000 users from id 1, threshold 10,000. */
void fl_netgen_opts_default(fl_netgen_opts_t *o);

/* Parses "post=25,like=40,..." into o->mix (kinds left out get 0). FL_ERR_INVALID with a message.
 */
fl_err_t fl_netgen_parse_mix(fl_netgen_opts_t *o, const char *spec, char *errstr,
                             size_t errstr_size);

typedef struct fl_netgen fl_netgen_t;

/* Builds the network (graph in memory). NULL with a message when the options are not usable. */
fl_netgen_t *fl_netgen_new(const fl_netgen_opts_t *o, char *errstr, size_t errstr_size);
void fl_netgen_free(fl_netgen_t *g);

/* Sets the first backlog occurred_at (before any event is taken). */
void fl_netgen_set_start_ms(fl_netgen_t *g, int64_t start_ms);

/* Events the backlog has in all, and left. */
int64_t fl_netgen_backlog_total(const fl_netgen_t *g);
int64_t fl_netgen_backlog_left(const fl_netgen_t *g);

/* The next backlog event into ev (zeroed or cleared; the caller clears
 * it). false when the backlog is over. */
bool fl_netgen_backlog_next(fl_netgen_t *g, fl_event_t *ev);

/* Skips the rest of the backlog without emitting it, keeping its effect
 * on the model (posts, likes): for a steady phase that continues a
 * backlog produced before. */
void fl_netgen_backlog_skip(fl_netgen_t *g);

/* The next steady event with occurred_at = max(now_ms, the last one). */
void fl_netgen_steady_next(fl_netgen_t *g, int64_t now_ms, fl_event_t *ev);

typedef struct fl_netgen_stats {
    int64_t by_kind[FL_NG__KINDS]; /* events emitted, both phases */
    int64_t edges;                 /* follow edges now */
    int64_t backlog_edges;         /* edges of the generated graph */
    int64_t posts_live;            /* posts created and not deleted */
} fl_netgen_stats_t;

const fl_netgen_stats_t *fl_netgen_stats(const fl_netgen_t *g);

/* Celebrities: how many, and the id and current follower count of the i-th. */
int64_t fl_netgen_celebrities(const fl_netgen_t *g);
int64_t fl_netgen_celebrity(const fl_netgen_t *g, int64_t i, int64_t *followers);

/* A user worth watching: among those who follow a celebrity (anyone when
 * there are none), the one who follows the most accounts, so that their
 * feed moves and shows the read-time merge. */
int64_t fl_netgen_demo_user(const fl_netgen_t *g);

/* Followers and followees of a user id now (-1 for an unknown id). */
int64_t fl_netgen_followers(const fl_netgen_t *g, int64_t user_id);
int64_t fl_netgen_following(const fl_netgen_t *g, int64_t user_id);

/* True when follower_id follows followee_id now. */
bool fl_netgen_follows(const fl_netgen_t *g, int64_t follower_id, int64_t followee_id);

#endif
