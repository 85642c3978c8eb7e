/*
 * fl_kafka_admin.c - topic creation from the topology (`feedline topics
 * create`, which `ops/stack up` runs). Start-up and tooling only: clarity
 * wins over speed, metadata is fetched whole.
 */
#include "fl_kafka_admin.h"
#include "fl_log.h"

#include <stdlib.h>
#include <string.h>

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
            if (!strcmp(md->topics[j].topic, tp->kafka) && !md->topics[j].err)
                existing = md->topics[j].partition_cnt;
        if (existing >= 0) {
            if (existing != tp->partitions) {
                snprintf(errstr, errstr_size,
                         "topic %s exists with %d partitions, the topology says %d", tp->kafka,
                         existing, tp->partitions);
                ret = FL_ERR_CONFIG;
                goto out;
            }
            if (report)
                fprintf(report, "topic %-40s exists  (%d partitions, %s)\n", tp->kafka, existing,
                        fl_topic_kind_str(tp->kind));
            continue;
        }
        char e[256];
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(tp->kafka, tp->partitions, -1, e, sizeof(e));
        if (!nt) {
            snprintf(errstr, errstr_size, "topic %s: %s", tp->kafka, e);
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
        const fl_topic_t *tp = fl_topology_topic_by_kafka(t, name);
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
