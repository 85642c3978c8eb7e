/*
 * fl_kafka.h - librdkafka as every feedline program uses it: clients with
 * the project's fixed choices, readiness, and the translation of Kafka
 * errors into fl_err_t. Part of the base; topic creation from the
 * topology is in connectors/fl_kafka_admin.h.
 *
 * Fixed choices (README "Event contract"): producers are
 * idempotent (acks=all) and use the Java-compatible murmur2_random
 * partitioner; consumers never auto-commit and start from the earliest
 * offset when nothing is stored.
 */
#ifndef FL_KAFKA_H
#define FL_KAFKA_H

#include "fl_err.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>

/* Maps a librdkafka error to fl_err_t (retriable ones to FL_ERR_UNAVAILABLE / FL_ERR_TIMEOUT). */
fl_err_t fl_kafka_err(rd_kafka_resp_err_t err);

/* What a client adds to feedline's fixed choices (all optional but brokers). */
typedef struct fl_kafka_client_opts {
    const char *brokers;
    const char *group;             /* consumers: NULL for an assign()-only one */
    const char *const (*props)[2]; /* extra name/value pairs, applied last */
    size_t n_props;
    void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *);
    void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t *,
                         void *);
    int (*stats_cb)(rd_kafka_t *, char *, size_t, void *);
    void *opaque; /* passed to the callbacks */
} fl_kafka_client_opts_t;

/*
 * New producer or consumer (type) with feedline's fixed choices for its
 * kind (idempotent, murmur2_random; no auto-commit, earliest, range
 * assignor, partition EOF events) and o's additions. A consumer's poll
 * queue is its main queue. NULL with a message on failure.
 */
rd_kafka_t *fl_kafka_client_new(rd_kafka_type_t type, const fl_kafka_client_opts_t *o, char *errstr,
                                size_t errstr_size);

/*
 * New idempotent producer for brokers. dr_cb may be NULL. opaque is passed
 * to callbacks. NULL with a message on failure; free with
 * rd_kafka_destroy() after rd_kafka_flush().
 */
rd_kafka_t *fl_kafka_producer_new(const char *brokers,
                                  void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                  void *opaque, char *errstr, size_t errstr_size);

/* New plain (non-idempotent) client for admin requests and metadata. */
rd_kafka_t *fl_kafka_admin_new(const char *brokers, char *errstr, size_t errstr_size);

/*
 * New consumer for brokers. group may be NULL for an assign()-only consumer
 * that never commits. NULL with a message on failure.
 */
rd_kafka_t *fl_kafka_consumer_new(const char *brokers, const char *group, char *errstr,
                                  size_t errstr_size);

/*
 * Waits until the cluster answers a metadata request (at most wait_ms),
 * logging each failed attempt. FL_ERR_UNAVAILABLE when it never does.
 */
fl_err_t fl_kafka_wait_ready(rd_kafka_t *rk, int wait_ms, char *errstr, size_t errstr_size);

/* Partition count of topic, or -1 when the topic does not exist (FL_OK either way). */
fl_err_t fl_kafka_partition_count(rd_kafka_t *rk, const char *topic, int *partitions, char *errstr,
                                  size_t errstr_size);

#endif
