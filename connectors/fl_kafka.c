/*
 * fl_kafka.c - librdkafka configuration, readiness and topic creation.
 *
 * Everything here runs at start-up or in command-line tools, never on a
 * record's path, so clarity wins over speed: metadata is fetched whole.
 */
#include "fl_kafka.h"
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

static int64_t fl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fl_err_t fl_kafka_wait_ready(rd_kafka_t *rk, int wait_ms, char *errstr, size_t errstr_size)
{
    int64_t deadline = fl_now_ms() + wait_ms;
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
        if (fl_now_ms() >= deadline)
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

static const char *const fl_kind_configs[][3][2] = {
    [FL_TOPIC_INPUT] = {{"retention.ms", "-1"}, {"retention.bytes", "-1"}, {NULL, NULL}},
    [FL_TOPIC_INTERNAL] = {{"retention.ms", "604800000"}, {NULL, NULL}, {NULL, NULL}},
    [FL_TOPIC_CHANGELOG] = {{"cleanup.policy", "compact"},
                            {"min.cleanable.dirty.ratio", "0.3"},
                            {NULL, NULL}},
    /* Dead letters keep values of up to the contract's 1 MiB plus their
     * context headers (the runtime's producer allows 2 MiB per record). */
    [FL_TOPIC_DLQ] = {{"retention.ms", "-1"},
                      {"retention.bytes", "-1"},
                      {"max.message.bytes", "4194304"}},
};

fl_err_t fl_kafka_create_topics(rd_kafka_t *rk, const fl_topology_t *t, FILE *report, char *errstr,
                                size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_NewTopic_t **nts = calloc(t->n_topics ? t->n_topics : 1, sizeof(*nts));
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    size_t n_new = 0;
    fl_err_t ret = FL_OK;
    rd_kafka_resp_err_t err;

    if (!nts)
        return FL_ERR_NOMEM;
    err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (err) {
        snprintf(errstr, errstr_size, "metadata: %s", rd_kafka_err2str(err));
        ret = fl_kafka_err(err);
        goto out;
    }
    for (size_t i = 0; i < t->n_topics; i++) {
        const fl_topic_t *tp = &t->topics[i];
        int existing = -1;
        for (int j = 0; j < md->topic_cnt; j++)
            if (!strcmp(md->topics[j].topic, tp->name) && !md->topics[j].err)
                existing = md->topics[j].partition_cnt;
        if (existing >= 0) {
            if (existing != tp->partitions) {
                snprintf(errstr, errstr_size,
                         "topic %s exists with %d partitions, the topology says %d", tp->name,
                         existing, tp->partitions);
                ret = FL_ERR_CONFIG;
                goto out;
            }
            if (report)
                fprintf(report, "topic %-40s exists  (%d partitions, %s)\n", tp->name, existing,
                        fl_topic_kind_str(tp->kind));
            continue;
        }
        char e[256];
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(tp->name, tp->partitions, -1, e, sizeof(e));
        if (!nt) {
            snprintf(errstr, errstr_size, "topic %s: %s", tp->name, e);
            ret = FL_ERR_CONFIG;
            goto out;
        }
        nts[n_new++] = nt;
        for (int k = 0; k < 3 && fl_kind_configs[tp->kind][k][0]; k++)
            rd_kafka_NewTopic_set_config(nt, fl_kind_configs[tp->kind][k][0],
                                         fl_kind_configs[tp->kind][k][1]);
    }
    if (n_new == 0)
        goto out;

    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, 30000, NULL, 0);
    rd_kafka_CreateTopics(rk, nts, n_new, opts, q);
    ev = rd_kafka_queue_poll(q, 60000);
    if (!ev || rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "CreateTopics: %s",
                 ev ? rd_kafka_event_error_string(ev) : "timed out");
        ret = ev ? fl_kafka_err(rd_kafka_event_error(ev)) : FL_ERR_TIMEOUT;
        goto out;
    }
    size_t n_res = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n_res);
    for (size_t i = 0; i < n_res; i++) {
        rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        const fl_topic_t *tp = fl_topology_topic(t, name);
        if (terr && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errstr_size, "creating topic %s: %s", name,
                     rd_kafka_topic_result_error_string(res[i]));
            ret = fl_kafka_err(terr);
            goto out;
        }
        if (report && tp)
            fprintf(report, "topic %-40s created (%d partitions, %s)\n", name, tp->partitions,
                    fl_topic_kind_str(tp->kind));
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    if (nts) {
        rd_kafka_NewTopic_destroy_array(nts, n_new);
        free(nts);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    return ret;
}
