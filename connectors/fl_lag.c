/*
 * fl_lag.c - positions against read_committed ends (fl_lag.h).
 *
 * One assign-only consumer does everything: the admin request for a
 * group's committed offsets, the watermark queries (a read_committed
 * client's ListOffsets answers the last stable offset) and the fetch that
 * finds each partition's first committed record at or after the position.
 * That fetch assigns the partitions not at their end (and resumes them: a
 * pause outlives an assignment), takes the first record or
 * end-of-partition event of each and pauses it, then unassigns
 * everything: librdkafka drops what it had queued for an assignment that
 * ended, and a record older than the position is never taken.
 *
 * Everything runs under one deadline per call; nothing here retries beyond
 * it, so a Kafka that does not answer costs the caller timeout_ms at most.
 */
#include "fl_lag.h"

#include "fl_clock.h"
#include "fl_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fl_lag {
    rd_kafka_t *rk;
    char *brokers; /* for messages */
};

fl_lag_part_t *fl_lag_parts(const fl_topology_t *t, char *const *inputs, size_t n_inputs, size_t *n)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n_inputs; i++) {
        const fl_topic_t *tp = fl_topology_topic(t, inputs[i]);
        total += tp ? (size_t)tp->partitions : 0;
    }
    fl_lag_part_t *parts = calloc(total ? total : 1, sizeof(*parts));
    if (!parts)
        return NULL;
    for (size_t i = 0; i < n_inputs; i++) {
        const fl_topic_t *tp = fl_topology_topic(t, inputs[i]);
        for (int32_t p = 0; tp && p < tp->partitions; p++)
            parts[k++] = (fl_lag_part_t){.topic = tp->name,
                                         .kafka = tp->kafka,
                                         .partition = p,
                                         .pos = FL_LAG_NONE,
                                         .end = -1,
                                         .first = -1,
                                         .lag = -1};
    }
    *n = total;
    return parts;
}

int64_t fl_lag_total(const fl_lag_part_t *parts, size_t n)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += parts[i].lag > 0 ? parts[i].lag : 0;
    return sum;
}

fl_lag_t *fl_lag_new(const char *brokers, bool quiet, char *errstr, size_t errstr_size)
{
    /* read_committed is librdkafka's default; said here because the
     * definition of lag depends on it. The fetch wants one record per
     * partition: small fetches and a small prefetch queue. (Not
     * queued.min.messages=1: with it librdkafka waits a second between a
     * partition's fetches.) */
    static const char *const props[][2] = {{"isolation.level", "read_committed"},
                                           {"max.partition.fetch.bytes", "65536"},
                                           {"queued.max.messages.kbytes", "1024"},
                                           {"log_level", "0"}};
    fl_kafka_client_opts_t o = {.brokers = brokers, .props = props, .n_props = quiet ? 4 : 3};
    fl_lag_t *l = calloc(1, sizeof(*l));

    if (!l) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(l->brokers = strdup(brokers))) {
        snprintf(errstr, errstr_size, "out of memory");
        fl_lag_free(l);
        return NULL;
    }
    if (!(l->rk = fl_kafka_client_new(RD_KAFKA_CONSUMER, &o, errstr, errstr_size))) {
        fl_lag_free(l);
        return NULL;
    }
    return l;
}

void fl_lag_free(fl_lag_t *l)
{
    if (!l)
        return;
    if (l->rk)
        rd_kafka_destroy(l->rk);
    free(l->brokers);
    free(l);
}

static int left_ms(int64_t deadline)
{
    int64_t left = deadline - fl_mono_ms();
    return left > 0 ? (int)left : 0;
}

fl_err_t fl_lag_ready(fl_lag_t *l, int timeout_ms, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(l->rk, 0, NULL, &md, timeout_ms);

    if (md)
        rd_kafka_metadata_destroy(md);
    if (!err)
        return FL_OK;
    snprintf(errstr, errstr_size, "Kafka at %s did not answer within %d ms: %s", l->brokers,
             timeout_ms, rd_kafka_err2str(err));
    return FL_ERR_UNAVAILABLE;
}

static fl_lag_part_t *find(fl_lag_part_t *parts, size_t n, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i].partition == partition && !strcmp(parts[i].kafka, topic))
            return &parts[i];
    return NULL;
}

/* One ListConsumerGroupOffsets round: FL_OK, FL_ERR_TIMEOUT when a
 * transaction's offsets are still unstable (ask again), or an error. */
static fl_err_t group_round(fl_lag_t *l, const char *group, fl_lag_part_t *parts, size_t n,
                            int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_AdminOptions_t *opt =
        rd_kafka_AdminOptions_new(l->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(l->rk);
    rd_kafka_event_t *ev = NULL;
    rd_kafka_error_t *e;
    fl_err_t err = FL_OK;
    char buf[256];

    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(tpl, parts[i].kafka, parts[i].partition);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, tpl);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, buf, sizeof(buf));
    if ((e = rd_kafka_AdminOptions_set_require_stable_offsets(opt, 1)))
        rd_kafka_error_destroy(e);
    rd_kafka_ListConsumerGroupOffsets(l->rk, &req, 1, opt, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 500);
    if (!ev) {
        snprintf(errstr, errstr_size, "committed offsets of group %s: no answer within %d ms",
                 group, timeout_ms);
        err = FL_ERR_TIMEOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "committed offsets of group %s: %s", group,
                 rd_kafka_event_error_string(ev));
        err = fl_kafka_err(rd_kafka_event_error(ev));
        if (!fl_err_retriable(err))
            err = FL_ERR_UNAVAILABLE;
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_group_result_t **groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
    for (size_t g = 0; g < cnt; g++) {
        const rd_kafka_error_t *ge = rd_kafka_group_result_error(groups[g]);
        if (ge) {
            snprintf(errstr, errstr_size, "committed offsets of group %s: %s", group,
                     rd_kafka_error_string(ge));
            err = rd_kafka_error_code(ge) == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT
                      ? FL_ERR_TIMEOUT
                      : FL_ERR_UNAVAILABLE;
            goto out;
        }
        const rd_kafka_topic_partition_list_t *got = rd_kafka_group_result_partitions(groups[g]);
        for (int i = 0; got && i < got->cnt; i++) {
            const rd_kafka_topic_partition_t *el = &got->elems[i];
            fl_lag_part_t *p = find(parts, n, el->topic, el->partition);
            if (el->err) {
                snprintf(errstr, errstr_size, "committed offset of group %s, %s [%d]: %s", group,
                         el->topic, (int)el->partition, rd_kafka_err2str(el->err));
                err = el->err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT ? FL_ERR_TIMEOUT
                                                                          : FL_ERR_UNAVAILABLE;
                goto out;
            }
            if (p)
                p->pos = el->offset >= 0 ? el->offset : FL_LAG_NONE;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_topic_partition_list_destroy(tpl);
    return err;
}

fl_err_t fl_lag_group_positions(fl_lag_t *l, const char *group, fl_lag_part_t *parts, size_t n,
                                int timeout_ms, char *errstr, size_t errstr_size)
{
    int64_t deadline = fl_mono_ms() + timeout_ms;
    fl_err_t err;

    for (size_t i = 0; i < n; i++)
        parts[i].pos = FL_LAG_NONE;
    if (!n)
        return FL_OK;
    /* an unstable offset (a transaction carrying offsets is in flight) is
     * asked again until the deadline */
    while ((err = group_round(l, group, parts, n, left_ms(deadline) ? left_ms(deadline) : 1, errstr,
                              errstr_size)) == FL_ERR_TIMEOUT &&
           left_ms(deadline) > 100)
        usleep(100000);
    return err;
}

/* The partition's end and where a fetch must start; false with a message
 * when the broker did not answer. */
static bool query_end(fl_lag_t *l, fl_lag_part_t *p, int timeout_ms, int64_t *from, char *errstr,
                      size_t errstr_size)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(l->rk, p->kafka, p->partition, &lo, &hi, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "end of %s [%d]: %s", p->kafka, (int)p->partition,
                 rd_kafka_err2str(err));
        return false;
    }
    p->end = hi;
    /* below the log's start (retention, compaction) reads from the start */
    *from = p->pos > lo ? p->pos : lo;
    return true;
}

static void settle(fl_lag_part_t *p, int64_t first)
{
    p->first = first < p->end ? first : p->end;
    p->lag = p->end - p->first;
}

fl_err_t fl_lag_measure(fl_lag_t *l, fl_lag_part_t *parts, size_t n, int timeout_ms, char *errstr,
                        size_t errstr_size)
{
    int64_t deadline = fl_mono_ms() + timeout_ms;
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
    int64_t *from = calloc(n ? n : 1, sizeof(*from));
    fl_err_t err = FL_OK;
    int pending = 0;
    char last[256] = "";

    if (!from) {
        rd_kafka_topic_partition_list_destroy(tpl);
        snprintf(errstr, errstr_size, "out of memory");
        return FL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        parts[i].end = parts[i].first = parts[i].lag = -1;
        if (!query_end(l, &parts[i], left_ms(deadline) ? left_ms(deadline) : 1, &from[i], errstr,
                       errstr_size)) {
            err = FL_ERR_UNAVAILABLE;
            goto out;
        }
        if (from[i] >= parts[i].end) {
            settle(&parts[i], parts[i].end);
        } else {
            rd_kafka_topic_partition_list_add(tpl, parts[i].kafka, parts[i].partition)->offset =
                from[i];
            pending++;
        }
    }
    if (!pending)
        goto out;
    /* a partition paused by an earlier measurement stays paused */
    rd_kafka_resp_err_t kerr = rd_kafka_assign(l->rk, tpl);
    if (!kerr)
        kerr = rd_kafka_resume_partitions(l->rk, tpl);
    if (kerr) {
        snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(kerr));
        err = fl_kafka_err(kerr) ? fl_kafka_err(kerr) : FL_ERR_UNAVAILABLE;
        goto out;
    }
    while (pending > 0 && left_ms(deadline) > 0) {
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(l->rk, left_ms(deadline) < 100 ? left_ms(deadline) : 100);
        if (!m)
            continue;
        fl_lag_part_t *p =
            m->rkt ? find(parts, n, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
        size_t i = p ? (size_t)(p - parts) : 0;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            snprintf(last, sizeof(last), "%s", rd_kafka_message_errstr(m));
        } else if (p && p->lag < 0 && (m->err || m->offset >= from[i])) {
            /* end of partition: nothing committed between from and the end */
            settle(p, m->err ? p->end : m->offset);
            pending--;
            rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(one, p->kafka, p->partition);
            rd_kafka_pause_partitions(l->rk, one);
            rd_kafka_topic_partition_list_destroy(one);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(l->rk, NULL);
    if (pending > 0) {
        for (size_t i = 0; i < n; i++)
            if (parts[i].lag < 0) {
                snprintf(errstr, errstr_size, "no record or end of %s [%d] within %d ms%s%s",
                         parts[i].topic, (int)parts[i].partition, timeout_ms, last[0] ? ": " : "",
                         last);
                break;
            }
        err = FL_ERR_TIMEOUT;
    }
out:
    free(from);
    rd_kafka_topic_partition_list_destroy(tpl);
    return err;
}
