/*
 * fl_api_src.h - where the read API reads from: one interface, two
 * sources. Redis (the cache the Redis sink keeps) serves by default;
 * PostgreSQL (the durable projection the PostgreSQL sink keeps) serves
 * when Redis is down, and the lists Redis does not hold (followers,
 * following). Both implement the same semantics, so a page is the same
 * whichever source served it (the read API's tests compare them).
 *
 * A source handle belongs to one thread (an HTTP worker): it holds that
 * thread's connection and is never shared. A call that cannot reach its
 * server returns FL_ERR_UNAVAILABLE (the caller may try the other source);
 * the handle reconnects on a later call. Results are owned by the caller
 * (fl_posts_clear and friends free them).
 */
#ifndef FL_API_SRC_H
#define FL_API_SRC_H

#include "fl_api_model.h"
#include "fl_lag.h"
#include "fl_topology.h"

typedef struct fl_posts {
    fl_post_t *v;
    size_t n, cap;
    bool more; /* an item exists below the last one */
} fl_posts_t;

void fl_posts_clear(fl_posts_t *p);
/* A zeroed slot at the end of p, or NULL when out of memory. */
fl_post_t *fl_posts_push(fl_posts_t *p);

/* A follower or followee, newest follow first. */
typedef struct fl_follow {
    fl_pos_t pos; /* follow created_at, user id */
    char *handle; /* owned, NULL when not registered */
    char *display_name;
} fl_follow_t;

typedef struct fl_follows {
    fl_follow_t *v;
    size_t n;
    bool more;
} fl_follows_t;

void fl_follows_clear(fl_follows_t *f);

typedef struct fl_notifs {
    fl_notif_t *v;
    size_t n;
    bool more;
} fl_notifs_t;

void fl_notifs_clear(fl_notifs_t *n);

typedef struct fl_src fl_src_t;

typedef struct fl_src_ops {
    const char *name; /* "redis" | "postgres": the response header and metrics */
    /* The viewer's chronological feed: the newest `limit` visible posts
     * strictly below before (NULL: from the top), hydrated. */
    fl_err_t (*feed)(fl_src_t *s, int64_t viewer, const fl_pos_t *before, int limit,
                     fl_posts_t *out);
    /* One post, hydrated; *found false when it does not exist (or is
     * deleted). Visibility is the caller's. */
    fl_err_t (*post)(fl_src_t *s, int64_t post_id, fl_post_t *out, bool *found);
    /* Whether viewer follows author. */
    fl_err_t (*follows)(fl_src_t *s, int64_t viewer, int64_t author, bool *yes);
    fl_err_t (*user)(fl_src_t *s, int64_t user_id, fl_user_t *out, bool *found);
    /* author's live posts that viewer may read (follows: whether viewer
     * follows author), newest first, strictly below before. */
    fl_err_t (*user_posts)(fl_src_t *s, int64_t author, int64_t viewer, bool follows,
                           const fl_pos_t *before, int limit, fl_posts_t *out);
    /* The newest 200 notifications of viewer, strictly below before. */
    fl_err_t (*notifications)(fl_src_t *s, int64_t viewer, const fl_notif_t *before, int limit,
                              fl_notifs_t *out);
    /* affinity[i] = posts of posts[i].author_id that viewer likes. */
    fl_err_t (*affinity)(fl_src_t *s, int64_t viewer, const fl_post_t *posts, size_t n,
                         int64_t *affinity);
    /* followers (dir 0) or followees (dir 1) of user; NULL when the source
     * does not hold them. */
    fl_err_t (*follow_list)(fl_src_t *s, int64_t user, int dir, const fl_pos_t *before, int limit,
                            fl_follows_t *out);
    /* A cheap liveness check (PING / SELECT 1). */
    fl_err_t (*ping)(fl_src_t *s);
    void (*free)(fl_src_t *s);
} fl_src_ops_t;

struct fl_src {
    const fl_src_ops_t *ops;
};

/* The largest number of notifications kept per user (the Redis sink's cap). */
#define FL_NOTIF_CAP 200

typedef struct fl_api_cache fl_api_cache_t;

/* Sources for one thread; connect lazily (the first call), so new never
 * fails for a server being down. NULL only when out of memory. The Redis
 * source hydrates feeds through cache (borrowed; NULL: none). */
fl_src_t *fl_src_redis_new(const fl_topology_t *t, fl_api_cache_t *cache);
fl_src_t *fl_src_pg_new(const fl_topology_t *t);

/* How long the Redis source waits for a connection or a reply (default
 * 1 s; ms <= 0: the default). */
void fl_src_redis_set_timeout(fl_src_t *redis, int ms);

/* GCRA rate limiting (as redis-cell's CL.THROTTLE), one Lua script call on
 * the Redis source's connection, on Redis's clock: a viewer may send
 * `burst` requests at once, then `rate_per_s` a second. */
typedef struct fl_gcra {
    bool allowed;
    int64_t limit;         /* burst */
    int64_t remaining;     /* requests allowed right now after this one */
    int64_t reset_s;       /* until the burst is whole again */
    int64_t retry_after_s; /* when refused: until one is allowed */
} fl_gcra_t;

fl_err_t fl_src_redis_gcra(fl_src_t *redis, int64_t viewer, int64_t rate_per_s, int64_t burst,
                           fl_gcra_t *out);

/* The Redis sink's stored offsets (fl_sink_store.h) into parts[i].pos, on
 * the source's connection; epoch the marker's epoch (a new one after every
 * claim of an empty Redis), "" when the marker is gone (Redis flushed or
 * restarted empty, the sink not yet claimed). */
#define FL_MARKER_EPOCH_MAX 64
fl_err_t fl_src_redis_offsets(fl_src_t *redis, const char *sink, fl_lag_part_t *parts, size_t n,
                              char epoch[FL_MARKER_EPOCH_MAX]);

/* The PostgreSQL sink's stored offsets (its sink_offsets rows) into
 * parts[i].pos. */
fl_err_t fl_src_pg_offsets(fl_src_t *pg, const char *sink, fl_lag_part_t *parts, size_t n);

static inline void fl_src_free(fl_src_t *s)
{
    if (s)
        s->ops->free(s);
}

#endif
