/*
 * fl_kafka.c - librdkafka configuration, readiness and topic creation.
 *
 * Everything here runs at start-up or in command-line tools, never on a
 * record's path, so clarity wins over speed: metadata is fetched whole.
 */
#include "fl_kafka.h"
#include "fl_clock.h"
#include "fl_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

fl_err_t fl_kafka_err(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return FL_OK;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        return FL_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
        return FL_ERR_UNAVAILABLE;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return FL_ERR_OVERSIZED;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
        return FL_ERR_CONFIG;
    default:
        return FL_ERR_IO;
    }
}

/* librdkafka's own log lines become JSON log lines (syslog levels: 3 error,
 * 4 warning, 6 info, 7 debug). */
static void fl_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    fl_log_level_t l = level <= 3   ? FL_LOG_ERROR
                       : level <= 4 ? FL_LOG_WARN
                       : level <= 6 ? FL_LOG_INFO
                                    : FL_LOG_DEBUG;
    fl_log(l, "rdkafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static int fl_kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                        size_t errstr_size)
{
    return rd_kafka_conf_set(conf, name, value, errstr, errstr_size) == RD_KAFKA_CONF_OK ? 0 : -1;
}

rd_kafka_t *fl_kafka_admin_new(const char *brokers, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;

    rd_kafka_conf_set_log_cb(conf, fl_kafka_log_cb);
    if (fl_kafka_set(conf, "bootstrap.servers", brokers, errstr, errstr_size))
        goto out;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (rk)
        conf = NULL;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* The fixed choices of every producer and every consumer. */
static const char *const fl_producer_props[][2] = {
    {"enable.idempotence", "true"},    {"acks", "all"},
    {"partitioner", "murmur2_random"}, {"linger.ms", "5"},
    {"compression.type", "lz4"},       {"message.timeout.ms", "300000"},
};
static const char *const fl_consumer_props[][2] = {
    {"enable.auto.commit", "false"},   {"enable.auto.offset.store", "false"},
    {"auto.offset.reset", "earliest"}, {"enable.partition.eof", "true"},
    {"fetch.wait.max.ms", "50"},       {"partition.assignment.strategy", "range"},
};

rd_kafka_t *fl_kafka_client_new(rd_kafka_type_t type, const fl_kafka_client_opts_t *o, char *errstr,
                                size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    char gid[128];
    const char *const(*fixed)[2] =
        type == RD_KAFKA_PRODUCER ? fl_producer_props : fl_consumer_props;
    size_t n_fixed = type == RD_KAFKA_PRODUCER
                         ? sizeof(fl_producer_props) / sizeof(fl_producer_props[0])
                         : sizeof(fl_consumer_props) / sizeof(fl_consumer_props[0]);

    rd_kafka_conf_set_log_cb(conf, fl_kafka_log_cb);
    if (fl_kafka_set(conf, "bootstrap.servers", o->brokers, errstr, errstr_size))
        goto out;
    for (size_t i = 0; i < n_fixed; i++)
        if (fl_kafka_set(conf, fixed[i][0], fixed[i][1], errstr, errstr_size))
            goto out;
    for (size_t i = 0; i < o->n_props; i++)
        if (fl_kafka_set(conf, o->props[i][0], o->props[i][1], errstr, errstr_size))
            goto out;
    if (type == RD_KAFKA_CONSUMER && !o->group) {
        /* librdkafka needs a group.id for any consumer; an assign()-only
         * one gets a throw-away id and never joins or commits. */
        snprintf(gid, sizeof(gid), "feedline-assign-%ld", (long)getpid());
    }
    if (type == RD_KAFKA_CONSUMER &&
        fl_kafka_set(conf, "group.id", o->group ? o->group : gid, errstr, errstr_size))
        goto out;
    if (o->dr_cb)
        rd_kafka_conf_set_dr_msg_cb(conf, o->dr_cb);
    if (o->rebalance_cb)
        rd_kafka_conf_set_rebalance_cb(conf, o->rebalance_cb);
    if (o->stats_cb)
        rd_kafka_conf_set_stats_cb(conf, o->stats_cb);
    rd_kafka_conf_set_opaque(conf, o->opaque);
    rk = rd_kafka_new(type, conf, errstr, errstr_size);
    if (rk) {
        conf = NULL; /* owned by rk now */
        if (type == RD_KAFKA_CONSUMER)
            rd_kafka_poll_set_consumer(rk);
    }
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return rk;
}

rd_kafka_t *fl_kafka_producer_new(const char *brokers,
                                  void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                  void *opaque, char *errstr, size_t errstr_size)
{
    fl_kafka_client_opts_t o = {.brokers = brokers, .dr_cb = dr_cb, .opaque = opaque};
    return fl_kafka_client_new(RD_KAFKA_PRODUCER, &o, errstr, errstr_size);
}

rd_kafka_t *fl_kafka_consumer_new(const char *brokers, const char *group, char *errstr,
                                  size_t errstr_size)
{
    fl_kafka_client_opts_t o = {.brokers = brokers, .group = group};
    return fl_kafka_client_new(RD_KAFKA_CONSUMER, &o, errstr, errstr_size);
}

fl_err_t fl_kafka_wait_ready(rd_kafka_t *rk, int wait_ms, char *errstr, size_t errstr_size)
{
    int64_t deadline = fl_mono_ms() + wait_ms;
    int attempt = 0;
    rd_kafka_resp_err_t err;

    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        err = rd_kafka_metadata(rk, 1, NULL, &md, 2000);
        if (!err) {
            int brokers = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (brokers > 0)
                return FL_OK;
        }
        if (fl_mono_ms() >= deadline)
            break;
        attempt++;
        fl_log_warn("kafka", "cluster not ready (attempt %d): %s; retrying", attempt,
                    rd_kafka_err2str(err));
        usleep((useconds_t)(attempt < 10 ? attempt * 100000 : 1000000));
    }
    snprintf(errstr, errstr_size, "Kafka not ready after %d ms: %s", wait_ms,
             rd_kafka_err2str(err));
    return FL_ERR_UNAVAILABLE;
}

fl_err_t fl_kafka_partition_count(rd_kafka_t *rk, const char *topic, int *partitions, char *errstr,
                                  size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);

    *partitions = -1;
    if (err) {
        snprintf(errstr, errstr_size, "metadata: %s", rd_kafka_err2str(err));
        return fl_kafka_err(err);
    }
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err)
            *partitions = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return FL_OK;
}
