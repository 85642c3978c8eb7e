/*
 * fl_topology.h - load and validate topology/feedline.yaml.
 *
 * The topology file is the one source for topics, partition counts,
 * stores, processors, sinks, endpoints, settings and the read API's
 * settings. The loader parses it with libyaml, rejects anything it does
 * not know, and reports every error as "FILE:LINE: message" so an
 * operator can jump to the line.
 *
 * The returned handle is immutable after loading and may be read from
 * several threads. All strings are owned by the handle and live until
 * fl_topology_free().
 */
#ifndef FL_TOPOLOGY_H
#define FL_TOPOLOGY_H

#include "fl_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum fl_topic_kind {
    FL_TOPIC_INPUT,     /* system of record: retention.ms=-1 */
    FL_TOPIC_INTERNAL,  /* processor-to-processor stream */
    FL_TOPIC_CHANGELOG, /* cleanup.policy=compact */
    FL_TOPIC_DLQ,       /* dead letters */
} fl_topic_kind_t;

typedef struct fl_topic {
    char *name; /* as the topology and the programs' logic name it */
    /* the topic's name in Kafka: topic_prefix + name for feedline's own
     * kinds (internal, changelog, dlq), name itself for inputs */
    char *kafka;
    int partitions; /* 1..1024 */
    fl_topic_kind_t kind;
    int line; /* line in the file where the entry starts */
} fl_topic_t;

typedef struct fl_store_def {
    char *name;
    char *changelog; /* a topic of kind changelog */
    int line;
} fl_store_def_t;

typedef struct fl_processor {
    char *name;
    char *group; /* consumer group id */
    char **inputs;
    size_t n_inputs;
    char **outputs;
    size_t n_outputs;
    char **stores;
    size_t n_stores;
    int line;
} fl_processor_t;

typedef enum fl_sink_kind {
    FL_SINK_REDIS,    /* destination: redis */
    FL_SINK_POSTGRES, /* destination: postgres */
} fl_sink_kind_t;

/* A sink: a consumer group whose output is an external store. Its inputs
 * need not be co-partitioned (each partition is applied on its own). */
typedef struct fl_sink_cfg {
    char *name;
    char *group; /* consumer group id, distinct from every processor's */
    char **inputs;
    size_t n_inputs;
    fl_sink_kind_t destination;
    int line;
} fl_sink_cfg_t;

typedef struct fl_endpoints {
    char *kafka;    /* bootstrap servers, FEEDLINE_KAFKA overrides */
    char *redis;    /* host:port, FEEDLINE_REDIS overrides */
    char *postgres; /* libpq conninfo, FEEDLINE_POSTGRES overrides */
    char *api;      /* host:port the read API listens on, FEEDLINE_API overrides */
    /* where this generation's projections are kept (feedline replay):
     * the Redis database (SELECT, 0 by default) and the PostgreSQL schema
     * put first in search_path (NULL: the server's search_path) */
    int64_t redis_db;
    char *postgres_schema;
} fl_endpoints_t;

typedef struct fl_settings {
    int64_t celebrity_threshold;  /* > 0 */
    int64_t celebrity_hysteresis; /* 0 <= h < threshold */
    int64_t timeline_cap;         /* > 0 */
    int64_t backfill_size;        /* >= 0 */
    int64_t outbox_cap;           /* >= backfill_size */
    int64_t batch_max_records;    /* > 0 */
    int64_t batch_max_ms;         /* > 0 */
    int64_t store_cache_bytes;    /* read cache per store partition, 0 = none */
    /* records a task buffers per input partition before it pauses the
     * partition (resumed below half), like Kafka Streams' setting */
    int64_t buffered_records_per_partition; /* > 0 */
    /* batches of a rebuild (feedline replay, programs run with --rebuild):
     * larger, since nobody waits for a record there */
    int64_t replay_batch_max_records; /* > 0 */
    int64_t replay_batch_max_ms;      /* > 0 */
} fl_settings_t;

/* JWT algorithms the read API may accept (a bit set): pinned in the
 * topology, never taken from a token. */
enum { FL_JWT_ALG_HS256 = 1u << 0, FL_JWT_ALG_EDDSA = 1u << 1 };

/* jwt.secret when the file sets none: fine for the local stack, never for
 * a deployment (the API may warn when it is in use). */
#define FL_API_DEV_SECRET "feedline-development-secret-change-me"
/* The shortest HS256 key accepted: 256 bits, as RFC 7518 3.2 asks. */
#define FL_API_JWT_SECRET_MIN 32
/* ranking.candidates at most */
#define FL_API_MAX_CANDIDATES 1000

/*
 * The read API's section (`api:` in the file). Every field has a default,
 * so a file without the section loads; the ranges below are enforced by
 * the loader. Strings may be NULL (not set), except jwt_secret.
 */
typedef struct fl_api_cfg {
    int64_t threads;         /* HTTP worker threads, 0 = two per core; 0..256 */
    int64_t max_connections; /* open connections at most; 1..10^6 */
    /* limits: a request past one gets 4xx with a JSON body (or, for the
     * header size, the server's 431 before any handler runs) */
    int64_t max_header_bytes; /* request line + headers; 1024..65536 */
    int64_t max_query_bytes;  /* the query string; 64..65536 */
    int64_t max_body_bytes;   /* request bodies (only /dev/login reads one); 0..2^20 */
    /* jwt: */
    unsigned jwt_algorithms; /* FL_JWT_ALG_* bits, at least one; default HS256 */
    /* HS256 key, never NULL: FL_API_DEV_SECRET unless the file or
     * FEEDLINE_JWT_SECRET sets one; at least FL_API_JWT_SECRET_MIN bytes
     * when HS256 is accepted (unchecked otherwise) */
    char *jwt_secret;
    /* EdDSA (Ed25519) public key, PEM: a path as written (relative paths
     * from the working directory), FEEDLINE_JWT_PUBLIC_KEY overrides; set
     * whenever EdDSA is accepted. The loader does not open it. */
    char *jwt_public_key_file;
    /* EdDSA private key, PEM, for `feedline token` only (the API never
     * signs with it); FEEDLINE_JWT_PRIVATE_KEY overrides; may be NULL */
    char *jwt_private_key_file;
    char *jwt_issuer;      /* when set, `iss` must equal it; NULL = not checked */
    char *jwt_audience;    /* when set, `aud` must hold it; NULL = not checked */
    int64_t jwt_leeway_s;  /* clock skew allowed on exp and nbf; 0..300 */
    int64_t jwt_max_bytes; /* longer tokens are refused unread; 256..16384 */
    /* rate_limit: GCRA per viewer */
    int64_t rate_per_s; /* sustained requests per second, 0 = off; 0..10^6 */
    int64_t rate_burst; /* requests allowed at once beyond the rate; 0..10^6 */
    /* ranking: score = recency * 2^(-age / half_life) + likes * ln(1 + likes)
     *                  + affinity * ln(1 + affinity); finite numbers */
    double rank_half_life_s; /* > 0 */
    double rank_w_recency;   /* the weights: >= 0 */
    double rank_w_likes;
    double rank_w_affinity;
    /* newest items of the feed that ranking orders; 1..FL_API_MAX_CANDIDATES,
     * independent of timeline_cap, as celebrities' posts are merged in */
    int64_t rank_candidates;
    /* stream: */
    int64_t stream_ping_s;      /* WebSocket ping interval; 1..3600 */
    int64_t stream_max_clients; /* open streams at most; 1..10^6 */
    /* cache: hydrated posts and authors kept in the API's memory */
    int64_t cache_entries; /* at most, 0 turns the cache off */
    int64_t cache_ttl_ms;  /* how old a like count or a name in a feed may be */
    /* POST /dev/login mints a token for any user (the live page's demo
     * login): development only; FEEDLINE_DEV_LOGIN=true|false overrides */
    bool dev_login;
} fl_api_cfg_t;

typedef struct fl_topology {
    char *path; /* file name used in messages */
    char *app;
    /* put before the name in Kafka of every topic but the inputs (a
     * generation of stores, feedline replay: "g3."); NULL = none */
    char *topic_prefix;
    fl_endpoints_t endpoints;
    fl_settings_t settings;
    fl_topic_t *topics;
    size_t n_topics;
    fl_store_def_t *stores;
    size_t n_stores;
    fl_processor_t *processors;
    size_t n_processors;
    fl_sink_cfg_t *sinks;
    size_t n_sinks;
    fl_api_cfg_t api;
} fl_topology_t;

/*
 * Loads and validates the file at path, then applies the environment
 * overrides. On failure returns NULL and writes "PATH:LINE: message" to
 * errstr. Caller frees the result with fl_topology_free().
 */
fl_topology_t *fl_topology_load(const char *path, char *errstr, size_t errstr_size);

/* Same as fl_topology_load() for a document in memory; name is used in messages. */
fl_topology_t *fl_topology_parse(const char *yaml, size_t len, const char *name, char *errstr,
                                 size_t errstr_size);

/* Lookups; NULL when absent. Borrowed from the topology. */
const fl_topic_t *fl_topology_topic(const fl_topology_t *t, const char *name);
const fl_store_def_t *fl_topology_store(const fl_topology_t *t, const char *name);
const fl_processor_t *fl_topology_processor(const fl_topology_t *t, const char *name);
const fl_sink_cfg_t *fl_topology_sink(const fl_topology_t *t, const char *name);

/* The name in Kafka of topology topic `name`, or name itself when the
 * topology has no such topic. Borrowed. */
const char *fl_topology_kafka_name(const fl_topology_t *t, const char *name);

/* Sets the prefix of every non-input topic's name in Kafka (NULL: none)
 * and renames them; 0, or -1 when memory ran out. */
int fl_topology_set_topic_prefix(fl_topology_t *t, const char *prefix);

/* The topology topic whose name in Kafka is kafka (a generation's topics
 * carry its prefix there), NULL when none. Borrowed. */
const fl_topic_t *fl_topology_topic_by_kafka(const fl_topology_t *t, const char *kafka);

/* One entry of an input offsets list, TOPIC:PARTITION:OFFSET,... (the
 * end of each named input partition in a point-in-time replay). */
typedef struct fl_input_offset {
    const char *topic; /* the topology's name, borrowed from it */
    int32_t partition;
    int64_t offset;
} fl_input_offset_t;

/* Parses spec, checking every TOPIC is an input topic of t, PARTITION one
 * of its partitions and OFFSET 0 or more. On FL_OK *out (caller frees
 * with free(); NULL when spec is empty) holds *n entries; else
 * FL_ERR_INVALID (or FL_ERR_NOMEM) with a message naming the bad entry. */
fl_err_t fl_topology_parse_input_offsets(const fl_topology_t *t, const char *spec,
                                         fl_input_offset_t **out, size_t *n, char *errstr,
                                         size_t errstr_size);

/* Where feedline replay keeps generations when $FEEDLINE_GENERATIONS is
 * unset: the local stack's folder, relative to the working directory. */
#define FL_GENERATIONS_DEFAULT_DIR ".stack/generations"

/* The path feedline uses when none is given: $FEEDLINE_TOPOLOGY, else the
 * live generation's ($FEEDLINE_GENERATIONS or FL_GENERATIONS_DEFAULT_DIR,
 * then live/topology.yaml) when there is one, else topology/feedline.yaml
 * relative to the working directory. Static storage. */
const char *fl_topology_default_path(void);

/* Writes the topology as loaded (overrides applied) as YAML to out, the
 * JWT secret left out (a comment says it is set). */
void fl_topology_print(const fl_topology_t *t, FILE *out);

/* The same with the secret: a file that loads as this very topology (a
 * generation's, feedline replay), to keep unreadable by others. */
void fl_topology_write(const fl_topology_t *t, FILE *out);

const char *fl_topic_kind_str(fl_topic_kind_t kind);

/* "redis" or "postgres", as written in the file. Static storage. */
const char *fl_sink_kind_str(fl_sink_kind_t kind);

void fl_topology_free(fl_topology_t *t);

#endif
