/*
 * fl_rt_txn.c - the runtime's transaction (Kafka Streams' RecordCollector
 * and the commit of a task): every output, dead letter and changelog
 * record of a batch is produced into one Kafka transaction; after it
 * committed, the stores apply the batch's changes with its input offsets.
 * A batch that cannot commit is abandoned: the transaction is aborted,
 * the stores drop their pending changes and every task rewinds its inputs
 * to the offsets in its stores.
 *
 * Invariant: a store never holds changes whose transaction did not
 * commit. Workload: one transaction per batch (batch_max_records or
 * batch_max_ms), records produced with RD_KAFKA_MSG_F_COPY.
 */
#include "fl_kafka.h"
#include "fl_log.h"
#include "fl_rt_int.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fl__rt_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    rt_t *rt = opaque;
    if (m->err) {
        /* a batch that fails fails for thousands of records at once: the
         * first of each batch is logged, then every 10,000th */
        if (rt->delivery_failures++ % 10000 == 0)
            fl_log_error("runtime", "delivery to %s [%d] failed: %s (%d of this batch)",
                         rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err),
                         rt->delivery_failures);
        return;
    }
    /* A changelog record: its store's highest acknowledged offset. */
    int64_t *last = m->_private;
    if (last && m->offset > *last)
        *last = m->offset;
}

fl_err_t fl__rt_begin(rt_t *rt)
{
    if (rt->in_txn || rt->sink) /* a sink's producer is not transactional */
        return FL_OK;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(rt->producer);
    if (e) {
        fl_log_error("runtime", "begin_transaction: %s", rd_kafka_error_string(e));
        rt->fatal = true;
        rd_kafka_error_destroy(e);
        return FL_ERR_IO;
    }
    rt->in_txn = true;
    return FL_OK;
}

/* The producer's handle for topic, created on first use and kept; with
 * the table full, a handle the caller destroys (*owned). NULL when
 * librdkafka refuses the topic. */
static rd_kafka_topic_t *rt_topic(rt_t *rt, const char *name, bool *owned)
{
    const char *topic = RT_KAFKA(rt, name);
    *owned = false;
    for (int i = 0; i < rt->n_rkts; i++)
        if (strcmp(rd_kafka_topic_name(rt->rkts[i]), topic) == 0)
            return rt->rkts[i];
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rt->producer, topic, NULL);
    if (rkt && rt->n_rkts < FL_RT_MAX_OUT_TOPICS)
        rt->rkts[rt->n_rkts++] = rkt;
    else
        *owned = rkt != NULL;
    return rkt;
}

/* Produces one record in the open transaction; takes hdrs (may be NULL).
 * rd_kafka_producev, not produceva: the latter frees the headers itself
 * on failure in the librdkafka versions we build against. */
static fl_err_t rt_produce(rt_t *rt, const char *topic, int32_t partition, const void *key,
                           size_t klen, const void *val, size_t vlen, rd_kafka_headers_t *hdrs,
                           void *opaque)
{
    bool owned;
    fl_err_t err = fl__rt_begin(rt);
    if (err)
        goto fail;
    rd_kafka_topic_t *rkt = rt_topic(rt, topic, &owned);
    if (!rkt) {
        fl_log_error("runtime", "produce to %s: %s", topic,
                     rd_kafka_err2str(rd_kafka_last_error()));
        err = FL_ERR_INVALID;
        goto fail;
    }
    for (;;) {
        rd_kafka_resp_err_t kerr =
            hdrs ? rd_kafka_producev(
                       rt->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                       RD_KAFKA_V_KEY((void *)key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                       RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END)
                 : rd_kafka_producev(
                       rt->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                       RD_KAFKA_V_KEY((void *)key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
                       RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rt->producer, 50);
            continue;
        }
        if (owned)
            rd_kafka_topic_destroy(rkt);
        if (kerr) {
            char fatal[256] = "";
            bool is_fatal = rd_kafka_fatal_error(rt->producer, fatal, sizeof(fatal)) != 0;
            fl_log_error("runtime", "produce to %s [%d]: %s%s%s", topic, partition,
                         rd_kafka_err2str(kerr), is_fatal ? "; fatal: " : "", fatal);
            err = fl_kafka_err(kerr);
            /* Short of a fatal producer error, a record refused here (the
             * open transaction hit an abortable error: __STATE; the topic
             * refused until the metadata refreshes: an authorization
             * error, an unknown partition) costs the batch, not the
             * instance: it is aborted and redone with backoff. */
            if (is_fatal)
                rt->fatal = true;
            else if (!rt->sink && err == FL_ERR_IO)
                err = FL_ERR_UNAVAILABLE;
            goto fail;
        }
        return FL_OK;
    }
fail:
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    return err;
}

fl_err_t fl__rt_forward(void *opaque, const char *topic, int32_t partition, const void *key,
                        size_t klen, const void *val, size_t vlen)
{
    rt_t *rt = opaque;
    rt->batch.records_out++;
    /* Provenance: the input record this output came from, so that a
     * consumer (or a test) can tell a batch applied twice from two
     * outputs that happen to be equal. */
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, FL_RT_SOURCE_HEADER, -1, rt->source, -1);
    return rt_produce(rt, topic, partition, key, klen, val, vlen, h, NULL);
}

void fl__rt_count(void *opaque, const char *name, uint64_t n)
{
    rt_t *rt = opaque;
    for (int i = 0; i < FL_RT_MAX_COUNTERS; i++) {
        if (!rt->m.counter_names[i])
            rt->m.counter_names[i] = name;
        if (rt->m.counter_names[i] == name || !strcmp(rt->m.counter_names[i], name)) {
            rt->m.counters[i] += n;
            return;
        }
    }
}

/* Sends the record to the dead-letter topic with its context headers. */
fl_err_t fl__rt_dead_letter(rt_t *rt, const rd_kafka_message_t *m, const char *stage,
                            fl_err_t cause, const char *msg)
{
    char part[16], off[24];
    rd_kafka_headers_t *h = NULL, *orig = NULL;

    if (!rd_kafka_message_headers(m, &orig) && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(6);
    snprintf(part, sizeof(part), "%d", m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    rd_kafka_header_add(h, "feedline.dlq.topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "feedline.dlq.partition", -1, part, -1);
    rd_kafka_header_add(h, "feedline.dlq.offset", -1, off, -1);
    rd_kafka_header_add(h, "feedline.dlq.stage", -1, stage, -1);
    rd_kafka_header_add(h, "feedline.dlq.group", -1, rt->proc->group, -1);
    rd_kafka_header_add(h, "feedline.dlq.error.class", -1, fl_err_str(cause), -1);
    rd_kafka_header_add(h, "feedline.dlq.error", -1, msg, -1);
    rt->batch.dead_letters++;
    fl_log_warn("runtime", "dead-lettered %s [%d] @%" PRId64 " (%s): %s",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset, stage, msg);
    /* A value too large even for the dead-letter topic is dead-lettered
     * without it: a bad record must never stop its partition. */
    bool too_big = m->len > FL_RT_DLQ_MAX_VALUE;
    if (too_big) {
        char size[24];
        snprintf(size, sizeof(size), "%zu", m->len);
        rd_kafka_header_add(h, "feedline.dlq.value.dropped", -1, size, -1);
    }
    return rt_produce(rt, FL_TOPIC_DLQ, RD_KAFKA_PARTITION_UA, m->key, m->key_len,
                      too_big ? NULL : m->payload, too_big ? 0 : m->len, h, NULL);
}

typedef struct changelog_ctx {
    rt_t *rt;
    const char *topic;
    int32_t partition;
    int64_t *last; /* the store's highest acknowledged changelog offset */
    fl_err_t err;
} changelog_ctx_t;

static int produce_change(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    changelog_ctx_t *c = arg;
    c->err =
        rt_produce(c->rt, c->topic, c->partition, key, klen, val, val ? vlen : 0, NULL, c->last);
    return c->err != FL_OK;
}

/* Drops every uncommitted change and re-reads each task's inputs from the
 * offsets in its stores. */
static void rewind_tasks(rt_t *rt)
{
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(8);
    for (int32_t p = 0; p < rt->n_partitions; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t || t->restoring)
            continue; /* a restoring task is paused and processed nothing */
        for (size_t s = 0; s < rt->proc->n_stores; s++)
            fl_store_abort(t->stores[s]);
        fl_merge_reset(t->merge);
        for (size_t i = 0; i < rt->proc->n_inputs; i++) {
            bool found = false;
            int64_t off = -1;
            if (rt->proc->n_stores &&
                fl_store_offset(t->stores[0], rt->proc->inputs[i], p, &off, &found)) {
                /* e.g. the last background write failed: restart, restore */
                fl_log_error("runtime", "rewind: store %s [%d]: %s", fl_store_name(t->stores[0]), p,
                             fl_store_errmsg(t->stores[0]));
                rt->fatal = true;
            }
            fl_merge_set_position(t->merge, i, found ? off : -1);
            rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, rt->proc->inputs[i]), p)->offset =
                found ? off : RD_KAFKA_OFFSET_BEGINNING;
        }
        t->dirty = false;
    }
    rd_kafka_error_t *e = tpl->cnt ? rd_kafka_seek_partitions(rt->consumer, tpl, 10000) : NULL;
    if (e) {
        fl_log_error("runtime", "rewind: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rt->fatal = true;
    }
    rd_kafka_topic_partition_list_destroy(tpl);
}

/* Aborts the open transaction, if any, and redoes the batch from the
 * stored offsets. */
void fl__rt_abandon_batch(rt_t *rt)
{
    if (rt->in_txn && !rt->fatal) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(rt->producer, 60000);
        if (e) {
            /* e.g. the coordinator, back from a restart, already aborted
             * it: the run loop renews the producer (fl_runtime.c) */
            fl_log_warn("runtime", "abort_transaction: %s", rd_kafka_error_string(e));
            rt->producer_stuck = true;
            rt->fatal = true;
            rd_kafka_error_destroy(e);
        }
    }
    rt->in_txn = false;
    memset(&rt->batch, 0, sizeof(rt->batch));
    rewind_tasks(rt);
}

/* The input offsets of every dirty task, for the transaction. */
static rd_kafka_topic_partition_list_t *batch_offsets(rt_t *rt)
{
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(8);
    for (int32_t p = 0; p < rt->n_partitions; p++) {
        rt_task_t *t = rt->tasks[p];
        for (size_t i = 0; t && t->dirty && i < rt->proc->n_inputs; i++)
            if (fl_merge_position(t->merge, i) >= 0)
                rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, rt->proc->inputs[i]), p)
                    ->offset = fl_merge_position(t->merge, i);
    }
    return tpl;
}

/* True for the errors of a member the group no longer counts in the
 * generation that owns the partitions: a zombie (KIP-447). */
static bool is_fenced(const rd_kafka_error_t *e)
{
    switch (rd_kafka_error_code(e)) {
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
        return true;
    default:
        return false;
    }
}

/* One transactional call, as txn_step runs it. */
typedef struct txn_call {
    rt_t *rt;
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *cgmd;
} txn_call_t;

/*
 * Sends the batch's input offsets with the consumer group's metadata into
 * the transaction: the group coordinator refuses them from a member of an
 * older generation, so a paused instance whose partitions moved on cannot
 * commit a batch for them (exactly-once v2, KIP-447).
 */
static rd_kafka_error_t *send_offsets(txn_call_t *c)
{
    return rd_kafka_send_offsets_to_transaction(c->rt->producer, c->offsets, c->cgmd, 30000);
}

static rd_kafka_error_t *commit(txn_call_t *c)
{
    return rd_kafka_commit_transaction(c->rt->producer, 60000);
}

/* Runs a transactional call, retried with backoff while retriable; a
 * fenced member is not retried (the batch is aborted and redone by the
 * partitions' new owner) and a fatal error stops the instance. */
static fl_err_t txn_step(txn_call_t *c, const char *what, rd_kafka_error_t *(*call)(txn_call_t *))
{
    rt_t *rt = c->rt;
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *e = call(c);
        if (!e)
            return FL_OK;
        bool fenced = is_fenced(e);
        if (fenced)
            rt->m.fenced++;
        fl_log_warn("runtime", "%s (attempt %d): %s%s", what, attempt + 1, rd_kafka_error_string(e),
                    fenced ? "; the group has moved on: the batch is aborted" : "");
        if (!fenced && rd_kafka_error_is_retriable(e) && attempt < 10 && !*rt->stop) {
            rd_kafka_error_destroy(e);
            usleep((useconds_t)(100000 << (attempt < 5 ? attempt : 5)));
            continue;
        }
        if (rd_kafka_error_is_fatal(e))
            rt->fatal = true;
        rd_kafka_error_destroy(e);
        return FL_ERR_UNAVAILABLE;
    }
}

/* The offsets call on its own thread: its round trips to the transaction
 * and group coordinators overlap the production of the changelog records
 * (produce is thread-safe; no other transactional call runs meanwhile). */
typedef struct offsets_job {
    txn_call_t call;
    fl_err_t err;
} offsets_job_t;

static void *offsets_thread(void *arg)
{
    offsets_job_t *j = arg;
    j->err = j->call.offsets->cnt ? txn_step(&j->call, "send_offsets_to_transaction", send_offsets)
                                  : FL_OK;
    return NULL;
}

/*
 * Commits the batch: the input offsets of every dirty task (sent while
 * the changelog records are produced) and the changelog records into the
 * open transaction, commit it, then commit every store with the same
 * offsets. On a failed transaction the batch is abandoned and redone.
 */
fl_err_t fl__rt_commit_batch(rt_t *rt)
{
    int64_t t0 = fl__rt_now_ms(), t1, t2;
    fl_err_t err = FL_OK;
    bool any = false;

    for (int32_t p = 0; p < rt->n_partitions && !any; p++)
        any = rt->tasks[p] && rt->tasks[p]->dirty;
    if (!any && !rt->in_txn)
        return FL_OK;
    err = fl__rt_begin(rt);
    offsets_job_t job = {.call = {rt, NULL, NULL}};
    pthread_t th;
    bool started = false;
    if (!err) {
        fl__rt_failpoint(rt, "before-offsets");
        job.call.offsets = batch_offsets(rt);
        job.call.cgmd = rd_kafka_consumer_group_metadata(rt->consumer);
        started = !pthread_create(&th, NULL, offsets_thread, &job);
        if (!started)
            offsets_thread(&job);
    }
    for (int32_t p = 0; p < rt->n_partitions && !err; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t || !t->dirty)
            continue;
        for (size_t s = 0; s < rt->proc->n_stores && !err; s++) {
            const fl_store_t *st = t->stores[s];
            t->changelog_last[s] = -1;
            changelog_ctx_t c = {rt, fl_topology_store(rt->topo, fl_store_name(st))->changelog, p,
                                 &t->changelog_last[s], FL_OK};
            err = fl_store_changes(t->stores[s], produce_change, &c);
            if (c.err)
                err = c.err;
        }
    }
    int64_t t_offsets = fl__rt_now_ms();
    if (started)
        pthread_join(th, NULL);
    if (job.call.offsets) {
        if (!err)
            err = job.err;
        rd_kafka_consumer_group_metadata_destroy(job.call.cgmd);
        rd_kafka_topic_partition_list_destroy(job.call.offsets);
    }
    t1 = fl__rt_now_ms();
    if (!err) {
        fl__rt_failpoint(rt, "before-commit");
        rt->delivery_failures = 0;
        err = txn_step(&job.call, "commit_transaction", commit);
    }
    if (err) {
        rt->m.commit_failures++;
        fl__rt_abandon_batch(rt);
        return err;
    }
    rt->in_txn = false;
    fl__rt_failpoint(rt, "after-commit");
    t2 = fl__rt_now_ms();
    /* The transaction is in Kafka: now the stores, each with its offsets
     * and the time of the commit. */
    int64_t wall = fl__rt_wall_ms();
    for (int32_t p = 0; p < rt->n_partitions && !err; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t || !t->dirty)
            continue;
        fl_store_offset_t offs[FL_RT_MAX_INPUTS + 1];
        size_t n = 0;
        for (size_t i = 0; i < rt->proc->n_inputs; i++)
            if (fl_merge_position(t->merge, i) >= 0)
                offs[n++] =
                    (fl_store_offset_t){rt->proc->inputs[i], p, fl_merge_position(t->merge, i)};
        offs[n++] = (fl_store_offset_t){FL_RT_COMMITTED_AT, p, wall};
        for (size_t s = 0; s < rt->proc->n_stores && !err; s++) {
            /* The store now reflects its changelog up to its last record. */
            int64_t pos = t->changelog_last[s] >= 0 ? t->changelog_last[s] + 1 : -1;
            err = fl_store_commit(t->stores[s], offs, n, pos);
            if (err)
                fl_log_error("runtime", "committing store %s [%d]: %s", fl_store_name(t->stores[s]),
                             p, fl_store_errmsg(t->stores[s]));
        }
        t->dirty = false;
    }
    if (err)
        rt->fatal = true; /* the store is behind its changelog: restart restores it */
    /* Counted once committed: a batch that is redone is not counted twice. */
    rt->m.records_in += rt->batch.records_in;
    rt->m.records_out += rt->batch.records_out;
    rt->m.dead_letters += rt->batch.dead_letters;
    memset(&rt->batch, 0, sizeof(rt->batch));
    rt->m.commits++;
    rt->m.commit_ms_sum += (double)(fl__rt_now_ms() - t0);
    rt->m.phase_ms_sum[0] += (double)(t_offsets - t0);
    rt->m.phase_ms_sum[1] += (double)(t1 - t_offsets);
    rt->m.phase_ms_sum[2] += (double)(t2 - t1);
    rt->m.phase_ms_sum[3] += (double)(fl__rt_now_ms() - t2);
    return err;
}
