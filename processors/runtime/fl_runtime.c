/*
 * fl_runtime.c - the processor runtime (see fl_runtime.h).
 *
 * One thread does all the work: poll a batch, route each record to its
 * task (one per assigned partition), merge each task's inputs in
 * (timestamp, topic, offset) order (fl_merge.h), run the processor, then
 * commit (fl_rt_txn.c): Kafka transaction first (outputs, dead letters,
 * changelog records, the input offsets with the group's metadata),
 * RocksDB second. This file holds the clients, group membership and
 * assignment, routing, bounded buffering and the loop; fl_rt_int.h lists
 * the other parts.
 *
 * Invariants:
 * - a task's stores never hold changes whose transaction is not
 *   committed: stores commit only after commit_transaction succeeded;
 * - the input offsets in a store are the offsets after the last record
 *   whose effects are in that store, and equal the group's committed
 *   offsets once the store's write landed; an assigned partition resumes
 *   from the group's committed offsets (fl_reconcile.h);
 * - a task processes records only after its stores replayed their
 *   changelogs up to the committed end; until then its inputs are paused.
 *
 * Workload: batches of up to batch_max_records records or batch_max_ms;
 * one transaction per batch.
 */
#include "fl_runtime.h"
#include "fl_codec.h"
#include "fl_kafka.h"
#include "fl_log.h"
#include "fl_rt_int.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one process-wide flag: set by SIGINT/SIGTERM. */
static volatile sig_atomic_t fl_rt_stop;

static void fl_rt_on_signal(int sig)
{
    (void)sig;
    fl_rt_stop = 1;
}

int64_t fl__rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fl__rt_input_index(const rt_t *rt, const char *topic)
{
    /* the topology's name or the name in Kafka: inputs of a generation
     * with a topic prefix are found by either */
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        if (!strcmp(rt->proc->inputs[i], topic) ||
            !strcmp(RT_KAFKA(rt, rt->proc->inputs[i]), topic))
            return (int)i;
    return -1;
}

int64_t fl__rt_until(const rt_t *rt, size_t input, int32_t partition)
{
    if (!rt->until || partition < 0 || partition >= rt->n_partitions)
        return INT64_MAX;
    return rt->until[input * (size_t)rt->n_partitions + (size_t)partition];
}

int64_t fl__rt_until_end(const rt_t *rt, size_t input, int32_t partition, int64_t end)
{
    int64_t until = fl__rt_until(rt, input, partition);
    return end > until ? until : end; /* until is never negative */
}

/*
 * --input-until TOPIC:PARTITION:OFFSET,...: the end of each named input
 * partition for a point-in-time rebuild (feedline replay --until). Topics
 * this program does not read are skipped (a replay gives every program the
 * same list); only input topics (the ones every generation shares) may be
 * bounded: a generation's own topics end where its programs stop.
 */
static int parse_until(rt_t *rt)
{
    if (!rt->opts.input_until)
        return 0;
    char err[512];
    fl_input_offset_t *v = NULL;
    size_t n_v = 0, n = rt->proc->n_inputs * (size_t)rt->n_partitions;
    if (fl_topology_parse_input_offsets(rt->topo, rt->opts.input_until, &v, &n_v, err,
                                        sizeof(err))) {
        fl_log_error("runtime", "--input-until: %s", err);
        return -1;
    }
    if (!(rt->until = malloc(n * sizeof(*rt->until)))) {
        free(v);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        rt->until[i] = INT64_MAX;
    int bounded = 0;
    for (size_t k = 0; k < n_v; k++) {
        int idx = fl__rt_input_index(rt, v[k].topic);
        if (idx >= 0) {
            rt->until[(size_t)idx * (size_t)rt->n_partitions + (size_t)v[k].partition] =
                v[k].offset;
            bounded++;
        }
    }
    free(v);
    fl_log_info("runtime", "reading %d input partitions up to the offsets of --input-until",
                bounded);
    return 0;
}

void fl__rt_entry_free(void *item)
{
    rt_entry_t *e = item;
    if (!e)
        return;
    if (e->m)
        rd_kafka_message_destroy(e->m);
    fl_event_clear(&e->ev);
    free(e->errmsg);
    free(e);
}

/* ---- rebalancing ----------------------------------------------------------------------------- */

static void close_all_tasks(rt_t *rt)
{
    for (int32_t p = 0; p < rt->n_partitions; p++) {
        fl__rt_task_free(rt, rt->tasks[p]);
        rt->tasks[p] = NULL;
    }
}

/* Pauses (or resumes) every input partition of task t. */
static void pause_task(rt_t *rt, rt_task_t *t, bool pause)
{
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, rt->proc->inputs[i]), t->partition);
    rd_kafka_resp_err_t kerr = pause ? rd_kafka_pause_partitions(rt->consumer, tpl)
                                     : rd_kafka_resume_partitions(rt->consumer, tpl);
    if (kerr)
        fl_log_warn("runtime", "%s task %d: %s", pause ? "pausing" : "resuming", t->partition,
                    rd_kafka_err2str(kerr));
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        t->input_paused[i] = pause;
    rd_kafka_topic_partition_list_destroy(tpl);
}

/* The group's committed offsets of every assigned partition into
 * committed[partition * n_inputs + input] (-1 none). Asked with
 * require_stable (a read_committed consumer), so a transaction in flight
 * that carries offsets is waited for. */
static int fetch_committed(rt_t *rt, const rd_kafka_topic_partition_list_t *parts,
                           int64_t *committed)
{
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 1; attempt <= 30 && !*rt->stop; attempt++) {
        kerr = rd_kafka_committed(rt->consumer, tpl, 10000);
        if (!kerr)
            break;
        fl_log_warn("runtime", "committed offsets (attempt %d): %s", attempt,
                    rd_kafka_err2str(kerr));
        sleep(1);
    }
    for (int i = 0; !kerr && i < tpl->cnt; i++) {
        int idx = fl__rt_input_index(rt, tpl->elems[i].topic);
        int32_t p = tpl->elems[i].partition;
        if (idx >= 0 && p >= 0 && p < rt->n_partitions && !tpl->elems[i].err)
            committed[(size_t)p * rt->proc->n_inputs + (size_t)idx] =
                tpl->elems[i].offset >= 0 ? tpl->elems[i].offset : -1;
    }
    rd_kafka_topic_partition_list_destroy(tpl);
    return kerr ? -1 : 0;
}

static void rt_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rt_t *rt = opaque;

    if (rt->sink) {
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
            fl__rt_sink_assign(rt, parts);
        else
            fl__rt_sink_revoke(rt);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Open every task (quick: restoring happens later, in the loop,
         * with the task's inputs paused), then assign each input at the
         * offset reconciled from the group's committed offsets and the
         * store's checkpoint (fl_rt_task.c). */
        size_t n = (size_t)rt->n_partitions * rt->proc->n_inputs;
        int64_t *committed = malloc(n * sizeof(*committed));
        for (size_t i = 0; committed && i < n; i++)
            committed[i] = -1;
        if (!committed || fetch_committed(rt, parts, committed)) {
            fl_log_error("runtime", "cannot read the group's committed offsets");
            rt->fatal = true;
        }
        for (int i = 0; i < parts->cnt && !rt->fatal; i++) {
            int32_t p = parts->elems[i].partition;
            if (p < 0 || p >= rt->n_partitions) {
                fl_log_error("runtime", "assigned partition %d outside the topology's %d", p,
                             rt->n_partitions);
                rt->fatal = true;
                continue;
            }
            if (!rt->tasks[p]) {
                rt->tasks[p] = fl__rt_task_open(rt, p, committed + (size_t)p * rt->proc->n_inputs);
                if (!rt->tasks[p])
                    rt->fatal = true;
            }
        }
        free(committed);
        for (int i = 0; i < parts->cnt && !rt->fatal; i++) {
            rt_task_t *t = rt->tasks[parts->elems[i].partition];
            int idx = fl__rt_input_index(rt, parts->elems[i].topic);
            int64_t pos = idx >= 0 ? fl_merge_position(t->merge, (size_t)idx) : -1;
            parts->elems[i].offset = pos >= 0 ? pos : RD_KAFKA_OFFSET_BEGINNING;
            if (idx >= 0)
                t->assigned_at[idx] = pos;
        }
        fl_log_info("runtime", "assigned %d partitions", parts->cnt);
        rd_kafka_assign(rk, rt->fatal ? NULL : parts);
        rt->assigned = rt->fatal ? 0 : parts->cnt;
        for (int32_t p = 0; p < rt->n_partitions && !rt->fatal; p++)
            if (rt->tasks[p] && rt->tasks[p]->restoring && !rt->tasks[p]->paused) {
                pause_task(rt, rt->tasks[p], true);
                rt->tasks[p]->paused = true;
            }
        if (!rt->fatal)
            fl__rt_cleanup_state_dirs(rt);
    } else {
        /* The loop never holds an uncommitted batch while polling, so
         * revocation only drops buffered, unprocessed records. */
        fl_log_info("runtime", "revoked %d partitions", parts->cnt);
        rd_kafka_assign(rk, NULL);
        rt->assigned = 0;
        for (size_t i = 0; i < rt->proc->n_inputs * (size_t)rt->n_partitions; i++)
            rt->lso[i] = -1;
        close_all_tasks(rt);
    }
}

/* Restores every task that must, a slice at a time; a task that finished
 * has its inputs moved to their final offsets and resumed. */
static void restore_tasks(rt_t *rt)
{
    for (int32_t p = 0; p < rt->n_partitions && !rt->fatal; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t || !t->restoring)
            continue;
        fl_err_t e = fl__rt_task_restore_step(rt, t, FL_RT_RESTORE_SLICE_MS);
        if (e) {
            fl_log_error("runtime", "restoring task %d: %s", p, fl_err_str(e));
            rt->fatal = true; /* a restart resumes the restore */
            return;
        }
        if (t->restoring)
            continue;
        /* Restored: an input whose offset changed (a rebuilt store with
         * no committed offsets starts from the beginning) is moved there;
         * records routed before the move are dropped with the merge's
         * queues, and librdkafka drops what it fetched before the seek. */
        rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(4);
        for (size_t i = 0; i < rt->proc->n_inputs; i++) {
            int64_t pos = fl_merge_position(t->merge, i);
            if (pos != t->assigned_at[i])
                rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, rt->proc->inputs[i]), p)
                    ->offset = pos >= 0 ? pos : RD_KAFKA_OFFSET_BEGINNING;
        }
        pause_task(rt, t, false);
        t->paused = false;
        if (tpl->cnt) {
            rd_kafka_error_t *err = rd_kafka_seek_partitions(rt->consumer, tpl, 10000);
            if (err) {
                fl_log_error("runtime", "task %d after restore: %s", p, rd_kafka_error_string(err));
                rd_kafka_error_destroy(err);
                rt->fatal = true;
            }
            int64_t positions[FL_RT_MAX_INPUTS];
            for (size_t i = 0; i < rt->proc->n_inputs; i++)
                positions[i] = fl_merge_position(t->merge, i);
            fl_merge_reset(t->merge);
            for (size_t i = 0; i < rt->proc->n_inputs; i++) {
                fl_merge_set_position(t->merge, i, positions[i]);
                fl_merge_set_end(t->merge, i, t->input_end[i]);
            }
        }
        rd_kafka_topic_partition_list_destroy(tpl);
        fl_log_info("runtime", "task %d restored in %" PRId64 " ms", p, fl__rt_now_ms() - t->rs_t0);
    }
}

/* Bounded buffering: an input partition whose queue in the merge holds
 * buffered_records_per_partition records is paused (librdkafka drops what
 * it prefetched for it and later fetches again from the next offset not
 * delivered), and resumed once below half. */
static void bound_input(rt_t *rt, rt_task_t *t, size_t i)
{
    size_t hi = (size_t)rt->topo->settings.buffered_records_per_partition, lo = hi / 2;
    size_t n = fl_merge_buffered(t->merge, i);
    bool pause = !t->input_paused[i] && n >= hi;
    bool resume = t->input_paused[i] && n <= lo;
    if (t->paused || (!pause && !resume))
        return;
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, rt->proc->inputs[i]), t->partition);
    rd_kafka_resp_err_t kerr = pause ? rd_kafka_pause_partitions(rt->consumer, tpl)
                                     : rd_kafka_resume_partitions(rt->consumer, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    if (kerr)
        return;
    t->input_paused[i] = pause;
    rt->m.pauses += pause;
}

static void apply_bounds(rt_t *rt)
{
    for (int32_t p = 0; p < rt->n_partitions; p++)
        for (size_t i = 0; rt->tasks[p] && i < rt->proc->n_inputs; i++)
            bound_input(rt, rt->tasks[p], i);
}

void fl__rt_failpoint(rt_t *rt, const char *name)
{
#ifdef FL_FAILPOINTS
    if (!rt->failpoint || strcmp(rt->failpoint, name) || ++rt->failpoint_hits != rt->failpoint_at)
        return;
    if (rt->failpoint_sleep_s > 0) {
        fl_log_warn("runtime", "failpoint %s: sleeping %d s", name, rt->failpoint_sleep_s);
        sleep((unsigned)rt->failpoint_sleep_s);
        return;
    }
    fl_log_warn("runtime", "failpoint %s: %s", name,
                rt->failpoint_stop ? "stopping the process (SIGSTOP)" : "killing the process");
    kill(getpid(), rt->failpoint_stop ? SIGSTOP : SIGKILL);
#else
    (void)rt;
    (void)name;
#endif
}

fl_err_t fl__rt_decode(rt_t *rt, const rd_kafka_message_t *m, fl_event_t *ev, char *err,
                       size_t err_size)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    fl_err_t rc = m->payload
                      ? fl_codec_decode(rt->codec, m->payload, m->len, ev, NULL, err, err_size)
                      : (snprintf(err, err_size, "null value"), FL_ERR_INVALID);
    if (!rc && !fl_event_type_on_topic(ev->type, topic)) {
        snprintf(err, err_size, "%s events do not belong on %s", fl_event_desc(ev->type)->name,
                 topic);
        rc = FL_ERR_INVALID;
    }
    if (!rc)
        rc = fl_event_validate(ev, err, err_size);
    if (rc)
        fl_event_clear(ev);
    return rc;
}

static void route(rt_t *rt, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int idx = fl__rt_input_index(rt, topic);
    rt_task_t *t =
        m->partition >= 0 && m->partition < rt->n_partitions ? rt->tasks[m->partition] : NULL;
    if (idx < 0 || !t || t->restoring) {
        /* A restoring task's inputs are paused; whatever slipped through
         * before the pause is fetched again after the restore. */
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        fl_merge_eof(t->merge, (size_t)idx);
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->offset >= fl__rt_until(rt, (size_t)idx, m->partition)) {
        rd_kafka_message_destroy(m); /* past the point-in-time end */
        return;
    }
    rt_entry_t *e = calloc(1, sizeof(*e));
    if (!e) {
        rd_kafka_message_destroy(m);
        rt->fatal = true;
        return;
    }
    e->m = m;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    if (rt->input_is_event[idx]) {
        char err[512];
        fl_err_t rc = fl__rt_decode(rt, m, &e->ev, err, sizeof(err));
        if (rc) {
            e->decode_err = rc;
            e->errmsg = strdup(err);
            ts = INT64_MIN; /* dead letters go first: they touch no state */
        } else {
            ts = e->ev.occurred_at;
        }
    }
    if (fl_merge_push(t->merge, (size_t)idx, ts, m->offset, e))
        rt->fatal = true; /* the merge freed e */
    else                  /* at once: a loop drains up to FL_RT_DRAIN_MAX records */
        bound_input(rt, t, (size_t)idx);
}

/* True once the open batch holds batch_max_records records or has been
 * processed for FL_RT_MAX_PROCESS_MS: what the merge still holds (after a
 * long wait for one input, or a backlog buffered up to the bound) goes
 * into the next batches, so that no transaction grows without bound and
 * times out. */
static bool batch_full(const rt_t *rt)
{
    return rt->batch.records_in >= (uint64_t)rt->topo->settings.batch_max_records ||
           fl__rt_now_ms() >= rt->batch_deadline_ms;
}

/* Runs the processor on the records of task t that the merge lets go,
 * until the batch is full. */
static fl_err_t process_task(rt_t *rt, rt_task_t *t, int64_t now)
{
    char err[512];
    size_t i;

    /* The broker's end of each input, as of the last fetch: tells the
     * merge which empty input still holds records. */
    for (size_t k = 0; k < rt->proc->n_inputs && rt->proc->n_inputs > 1; k++) {
        int64_t lo = -1, hi = -1;
        if (!rd_kafka_get_watermark_offsets(rt->consumer, RT_KAFKA(rt, rt->proc->inputs[k]),
                                            t->partition, &lo, &hi))
            fl_merge_set_end(t->merge, k, fl__rt_until_end(rt, k, t->partition, hi));
    }
    if (t->restoring)
        return FL_OK;
    while (!rt->fatal && !batch_full(rt) && fl_merge_next(t->merge, now, &i) == FL_MERGE_READY) {
        rt_entry_t *e = fl_merge_head(t->merge, i)->item;
        fl_err_t rc;
        if (e->decode_err) {
            rc = fl__rt_dead_letter(rt, e->m, "decode", e->decode_err, e->errmsg);
        } else {
            fl_proc_record_t rec = {.topic = rt->proc->inputs[i],
                                    .partition = t->partition,
                                    .offset = e->m->offset,
                                    .timestamp = rd_kafka_message_timestamp(e->m, NULL),
                                    .key = e->m->key,
                                    .key_len = e->m->key_len,
                                    .value = e->m->payload,
                                    .value_len = e->m->len,
                                    .event = rt->input_is_event[i] ? &e->ev : NULL};
            snprintf(rt->source, sizeof(rt->source), "%s/%d/%" PRId64, rec.topic, rec.partition,
                     rec.offset);
            rc = fl__rt_begin(rt);
            if (!rc)
                rc = fl__ctx_process(&t->ctx, rt->def, &rec, err, sizeof(err));
            if (rc == FL_ERR_INVALID)
                rc = fl__rt_dead_letter(rt, e->m, rt->def->name, rc, err);
            else if (rc)
                fl_log_error("runtime", "%s failed on %s [%d] @%" PRId64 ": %s", rt->def->name,
                             rec.topic, rec.partition, rec.offset, err);
        }
        if (rc)
            return rc;
        t->dirty = true;
        rt->batch.records_in++;
        fl_merge_pop(t->merge, i);
    }
    uint64_t lag_giveups, idle_giveups;
    fl_merge_stats(t->merge, &lag_giveups, &idle_giveups);
    if (lag_giveups > t->lag_giveups_logged) {
        t->lag_giveups_logged = lag_giveups;
        /* What the fetcher says of it, to tell a slow broker from a stall. */
        for (size_t k = 0; k < rt->proc->n_inputs; k++) {
            if (!fl_merge_lag_expired(t->merge, k))
                continue;
            const struct rt_fetch *f = &rt->fetch[k * (size_t)rt->n_partitions + t->partition];
            fl_log_warn("runtime",
                        "task %d: %s holds records (end %" PRId64 ", position %" PRId64
                        ") but delivered none for %d ms; merging past it (fetcher: %s, %" PRId64
                        " queued, next offset %" PRId64 ", high watermark %" PRId64 ")",
                        t->partition, rt->proc->inputs[k], fl_merge_end(t->merge, k),
                        fl_merge_position(t->merge, k), FL_RT_MAX_LAG_WAIT_MS, f->state, f->fetchq,
                        f->next_offset, f->hi_offset);
        }
    }
    return FL_OK;
}

static rd_kafka_t *make_producer(rt_t *rt)
{
    char err[512], txid[256];
    /* One transactional id per instance: with the group's metadata in
     * every transaction (KIP-447) it need not name the partitions. */
    snprintf(txid, sizeof(txid), "%s-%s", rt->proc->group, rt->opts.instance);
    /* A sink produces dead letters only, outside any transaction (its
     * offsets live in the destination): idempotent, flushed before the
     * destination's write, so a crash in between repeats a dead letter
     * (README "Sink guarantees"). */
    const char *const props[][2] = {
        {rt->sink ? "enable.idempotence" : "transactional.id", rt->sink ? "true" : txid},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        /* a dead letter carries a value of up to 1 MiB plus its context
         * headers */
        {"message.max.bytes", "2097152"},
        {"transaction.timeout.ms", "15000"},
        /* The coordinator answers a call that comes while the previous
         * transaction's markers are still being written with a retriable
         * CONCURRENT_TRANSACTIONS; the default 100 ms backoff then stalls
         * every batch (the Java client uses 20 ms for this). */
        {"retry.backoff.ms", "5"},
        /* a processor's records must be in before its transaction times
         * out; a sink's dead letters wait for the broker however long it
         * is away (0: no timeout) */
        {"message.timeout.ms", rt->sink ? "0" : "15000"}};
    fl_kafka_client_opts_t o = {.brokers = rt->topo->endpoints.kafka,
                                .props = props,
                                .n_props = sizeof(props) / sizeof(props[0]),
                                .dr_cb = fl__rt_dr_cb,
                                .opaque = rt};
    rd_kafka_t *rk = fl_kafka_client_new(RD_KAFKA_PRODUCER, &o, err, sizeof(err));
    if (!rk) {
        fl_log_error("runtime", "producer: %s", err);
        return NULL;
    }
    if (rt->sink)
        return rk;
    /* Fences any earlier incarnation of this instance and aborts its open
     * transaction; retried while the cluster comes up. */
    for (int attempt = 1; !*rt->stop; attempt++) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
        if (!e)
            return rk;
        fl_log_warn("runtime", "init_transactions (attempt %d): %s", attempt,
                    rd_kafka_error_string(e));
        bool retry = rd_kafka_error_is_retriable(e) && attempt < 30;
        rd_kafka_error_destroy(e);
        if (!retry)
            break;
        sleep(attempt < 5 ? 1 : 2);
    }
    rd_kafka_destroy(rk);
    return NULL;
}

static int subscribe(rt_t *rt);

static rd_kafka_t *make_consumer(rt_t *rt)
{
    char err[512], member[256];
    /* Static membership: a restarted instance takes its partitions back at
     * once instead of waiting for a rebalance. */
    snprintf(member, sizeof(member), "%s-%s", rt->proc->group, rt->opts.instance);
    const char *const props[][2] = {
        {"isolation.level", "read_committed"}, {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},     {"max.poll.interval.ms", "300000"},
        {"group.instance.id", member},         {"statistics.interval.ms", "1000"}};
    fl_kafka_client_opts_t o = {.brokers = rt->topo->endpoints.kafka,
                                .group = rt->proc->group,
                                .props = props,
                                .n_props = sizeof(props) / sizeof(props[0]),
                                .rebalance_cb = rt_rebalance_cb,
                                .stats_cb = fl__rt_stats_cb,
                                .opaque = rt};
    rd_kafka_t *rk = fl_kafka_client_new(RD_KAFKA_CONSUMER, &o, err, sizeof(err));
    if (!rk)
        fl_log_error("runtime", "consumer: %s", err);
    return rk;
}

/* delete.retention.ms of every store's changelog, from the broker (-1
 * when it cannot be read: then no store is wiped for its age). */
static void read_changelog_retention(rt_t *rt)
{
    char err[512];
    for (size_t s = 0; s < FL_RT_MAX_STORES; s++)
        rt->changelog_delete_retention_ms[s] = -1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rt->producer);
    rd_kafka_ConfigResource_t *res[FL_RT_MAX_STORES];
    size_t n = rt->proc->n_stores;
    for (size_t s = 0; s < n; s++)
        res[s] = rd_kafka_ConfigResource_new(
            RD_KAFKA_RESOURCE_TOPIC,
            RT_KAFKA(rt, fl_topology_store(rt->topo, rt->proc->stores[s])->changelog));
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rt->producer, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opts, 10000, err, sizeof(err));
    if (n)
        rd_kafka_DescribeConfigs(rt->producer, res, n, opts, q);
    rd_kafka_event_t *ev = n ? rd_kafka_queue_poll(q, 15000) : NULL;
    const rd_kafka_DescribeConfigs_result_t *r =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t cnt = 0;
    const rd_kafka_ConfigResource_t **rs =
        r ? rd_kafka_DescribeConfigs_result_resources(r, &cnt) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        size_t nc = 0;
        const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[i], &nc);
        for (size_t s = 0; s < n; s++) {
            if (strcmp(rd_kafka_ConfigResource_name(rs[i]),
                       RT_KAFKA(rt, fl_topology_store(rt->topo, rt->proc->stores[s])->changelog)))
                continue;
            for (size_t k = 0; k < nc; k++)
                if (!strcmp(rd_kafka_ConfigEntry_name(ce[k]), "delete.retention.ms") &&
                    rd_kafka_ConfigEntry_value(ce[k]))
                    rt->changelog_delete_retention_ms[s] = atoll(rd_kafka_ConfigEntry_value(ce[k]));
        }
    }
    if (!cnt)
        fl_log_warn("runtime", "cannot read the changelogs' delete.retention.ms%s%s",
                    ev ? ": " : "", ev ? rd_kafka_event_error_string(ev) : "");
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    for (size_t s = 0; s < n; s++)
        rd_kafka_ConfigResource_destroy(res[s]);
    rd_kafka_queue_destroy(q);
}

static int setup(rt_t *rt)
{
    char err[512];

    rt->topo = fl_topology_load(rt->opts.topology_path, err, sizeof(err));
    if (!rt->topo) {
        fl_log_error("runtime", "%s", err);
        return -1;
    }
    if (rt->opts.rebuild) {
        /* A rebuild reads a backlog nobody waits for: fewer, larger
         * transactions (each costs a commit round trip and a marker). */
        rt->topo->settings.batch_max_records = rt->topo->settings.replay_batch_max_records;
        rt->topo->settings.batch_max_ms = rt->topo->settings.replay_batch_max_ms;
        fl_log_info("runtime", "rebuild: batches of up to %" PRId64 " records or %" PRId64 " ms",
                    rt->topo->settings.batch_max_records, rt->topo->settings.batch_max_ms);
    }
    if (rt->sink && fl__rt_sink_setup(rt))
        return -1;
    if (!rt->sink)
        rt->proc = fl_topology_processor(rt->topo, rt->def->name);
    if (!rt->proc || rt->proc->n_inputs == 0 || rt->proc->n_inputs > FL_RT_MAX_INPUTS ||
        rt->proc->n_stores > FL_RT_MAX_STORES) {
        fl_log_error("runtime", "%s %s missing from %s or has no inputs",
                     rt->sink ? "sink" : "processor", rt->def->name, rt->opts.topology_path);
        return -1;
    }
    /* A processor's inputs are co-partitioned; a sink's need not be, and
     * its partition numbers range over the largest input. */
    rt->n_partitions = 0;
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        const fl_topic_t *t = fl_topology_topic(rt->topo, rt->proc->inputs[i]);
        if (t->partitions > rt->n_partitions)
            rt->n_partitions = t->partitions;
        rt->input_is_event[i] = t->kind == FL_TOPIC_INPUT;
        if (rt->input_is_event[i] && !rt->codec) {
            rt->codec = fl_codec_new(rt->opts.schemas_dir, err, sizeof(err));
            if (!rt->codec) {
                fl_log_error("runtime", "%s", err);
                return -1;
            }
        }
    }
    if (!fl_topology_topic(rt->topo, FL_TOPIC_DLQ)) {
        fl_log_error("runtime", "the topology has no %s topic", FL_TOPIC_DLQ);
        return -1;
    }
    rt->tasks = calloc((size_t)rt->n_partitions, sizeof(*rt->tasks));
    rt->lso = malloc(rt->proc->n_inputs * (size_t)rt->n_partitions * sizeof(*rt->lso));
    rt->fetch = calloc(rt->proc->n_inputs * (size_t)rt->n_partitions, sizeof(*rt->fetch));
    if (!rt->tasks || !rt->lso || !rt->fetch)
        return -1;
    for (size_t i = 0; i < rt->proc->n_inputs * (size_t)rt->n_partitions; i++)
        rt->lso[i] = -1;
    if (parse_until(rt))
        return -1;
    if (rt->sink && fl__rt_sink_open(rt))
        return -1;
    if (fl__rt_metrics_start(rt))
        return -1;
    rt->producer = make_producer(rt);
    if (!rt->producer)
        return -1;
    if (!rt->sink)
        read_changelog_retention(rt);
#ifdef FL_FAILPOINTS
    /* FEEDLINE_FAILPOINT=NAME[:N[:stop|:sleep=S]] */
    const char *fp = getenv("FEEDLINE_FAILPOINT");
    if (fp && *fp) {
        static char name[64];
        char *colon;
        snprintf(name, sizeof(name), "%s", fp);
        rt->failpoint_at = 1;
        if ((colon = strchr(name, ':'))) {
            *colon = 0;
            rt->failpoint_at = strtol(colon + 1, &colon, 10);
            rt->failpoint_stop = colon && !strcmp(colon, ":stop");
            if (colon && !strncmp(colon, ":sleep=", 7))
                rt->failpoint_sleep_s = atoi(colon + 7);
        }
        rt->failpoint = name;
        fl_log_warn("runtime", "failpoint %s armed at pass %ld (%s)", name, rt->failpoint_at,
                    rt->failpoint_sleep_s ? "sleep"
                    : rt->failpoint_stop  ? "stop"
                                          : "kill");
    }
#endif
    rt->consumer = make_consumer(rt);
    if (!rt->consumer)
        return -1;
    if (subscribe(rt))
        return -1;
    if (rt->sink)
        fl_log_info("runtime", "sink %s started: group %s, instance %s", rt->proc->name,
                    rt->proc->group, rt->opts.instance);
    else
        fl_log_info("runtime", "%s started: group %s, instance %s, %d partitions, state in %s",
                    rt->proc->name, rt->proc->group, rt->opts.instance, rt->n_partitions,
                    rt->opts.state_dir);
    return 0;
}

static void run_batches(rt_t *rt)
{
    const fl_settings_t *cfg = &rt->topo->settings;
    int backoff_ms = 100;

    while (!*rt->stop && !rt->fatal) {
        restore_tasks(rt);
        if (rt->fatal)
            break;
        int64_t start = fl__rt_now_ms(), deadline = start + cfg->batch_max_ms;
        int64_t polled = 0;
        /* A batch's worth of records, waiting up to batch_max_ms for them;
         * then, without waiting, what librdkafka already holds, up to
         * FL_RT_DRAIN_MAX. Its queue is one FIFO for every partition: an
         * input whose records sit behind a backlog of the other inputs'
         * would reach the merge only a batch at a time after that backlog,
         * and the merge would stop waiting for it (FL_RT_MAX_LAG_WAIT_MS)
         * and take the others out of order. What outgrows the merge's
         * bound per partition is paused (apply_bounds). */
        const int64_t cap = rt->sink                                   ? cfg->batch_max_records
                            : cfg->batch_max_records > FL_RT_DRAIN_MAX ? cfg->batch_max_records
                                                                       : FL_RT_DRAIN_MAX;
        while (polled < cap && !*rt->stop) {
            int64_t left = polled < cfg->batch_max_records ? deadline - fl__rt_now_ms() : 0;
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rt->consumer, left > 0 ? (int)left : 0);
            if (!m) {
                if (left <= 0)
                    break;
                continue;
            }
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                /* Another member joined with this instance's
                 * group.instance.id: two processes run as one instance,
                 * or the coordinator came back from a restart and took
                 * this member's rejoin for a newer one (renew_fenced_consumer). */
                char why[512];
                rd_kafka_resp_err_t e = rd_kafka_fatal_error(rt->consumer, why, sizeof(why));
                fl_log_error("runtime", "consumer: fatal error: %s", why);
                rd_kafka_message_destroy(m);
                rt->consumer_fenced = e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
                rt->fatal = true;
                break;
            }
            if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fl_log_warn("runtime", "consumer: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            if (rt->sink)
                fl__rt_sink_route(rt, m);
            else
                route(rt, m);
            polled++;
        }
        if (rt->sink) {
            fl__rt_sink_commit(rt);
            rd_kafka_poll(rt->producer, 0);
            if (rt->mhd && fl__rt_now_ms() - rt->last_snapshot_ms >= 1000) {
                rt->last_snapshot_ms = fl__rt_now_ms();
                fl__rt_metrics_render(rt);
            }
            continue;
        }
        fl_err_t err = FL_OK;
        int64_t now = fl__rt_now_ms();
        /* Each batch starts with the next partition: a full batch does not
         * leave the same tasks waiting every time. */
        rt->batch_deadline_ms = now + FL_RT_MAX_PROCESS_MS;
        int32_t first = rt->next_task % rt->n_partitions;
        rt->next_task = (first + 1) % rt->n_partitions;
        for (int32_t k = 0; k < rt->n_partitions && !err && !rt->fatal && !batch_full(rt); k++) {
            int32_t p = (first + k) % rt->n_partitions;
            if (rt->tasks[p])
                err = process_task(rt, rt->tasks[p], now);
        }
        if (rt->fatal || (err && !fl_err_retriable(err) && err != FL_ERR_TIMEOUT)) {
            rt->fatal = true; /* the open transaction is aborted at exit */
            break;
        }
        apply_bounds(rt);
        if (!err) {
            err = fl__rt_commit_batch(rt);
        } else {
            if (rt->in_txn) /* e.g. a record refused: the batch is redone */
                rt->m.commit_failures++;
            fl__rt_abandon_batch(rt);
        }
        rd_kafka_poll(rt->producer, 0);
        if (err) {
            fl_log_warn("runtime", "batch not committed (%s); retrying in %d ms", fl_err_str(err),
                        backoff_ms);
            usleep((useconds_t)backoff_ms * 1000);
            backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
        } else {
            backoff_ms = 100;
            rt->m.batches++;
            rt->m.batch_ms_sum += (double)(fl__rt_now_ms() - start);
        }
        if (rt->mhd && fl__rt_now_ms() - rt->last_snapshot_ms >= 1000) {
            rt->last_snapshot_ms = fl__rt_now_ms();
            fl__rt_metrics_render(rt);
        }
    }
}

/*
 * Records a fence of a client (times: the last FL_RT_FENCES fences, oldest
 * first) and tells whether they came as a storm: FL_RT_FENCES within
 * 30 s. A broker restart fences each client about once; two processes
 * running as one instance fence each other back and forth within
 * seconds. true (logged) when this instance must stop.
 */
static bool fence_storm(int64_t *times, const char *client, const char *instance)
{
    int64_t now = fl__rt_now_ms();
    memmove(times, times + 1, (FL_RT_FENCES - 1) * sizeof(*times));
    times[FL_RT_FENCES - 1] = now;
    if (!times[0] || now - times[0] >= 30000)
        return false;
    fl_log_error("runtime",
                 "%s fenced %d times in %" PRId64 " ms: another process runs as instance %s; "
                 "stopping",
                 client, FL_RT_FENCES, now - times[0], instance);
    return true;
}

/*
 * A processor whose producer Kafka fenced while this instance still owns
 * its partitions: the transaction coordinator aborted a transaction open
 * longer than transaction.timeout.ms (the main thread stalled: an
 * overloaded machine, a long store write) and bumped the producer's
 * epoch. As Kafka Streams does under exactly-once v2, the instance starts
 * a new producer with the same transactional id (init_transactions fences
 * the old epoch) and redoes the batch from its stores' offsets; the
 * consumer group never noticed. A broker restart fences it too. A storm
 * of fences (fence_storm) is another process running as this instance:
 * that one stops. true when the instance can go on.
 */
static bool renew_fenced_producer(rt_t *rt)
{
    char why[512];
    rd_kafka_resp_err_t e = rt->producer && !rt->sink
                                ? rd_kafka_fatal_error(rt->producer, why, sizeof(why))
                                : RD_KAFKA_RESP_ERR_NO_ERROR;
    bool stuck = rt->producer_stuck && !rt->sink;
    rt->producer_stuck = false;
    if (stuck) {
        /* its transaction could not even be aborted (fl__rt_abandon_batch):
         * a new producer's init_transactions aborts it */
        fl_log_warn("runtime", "a new producer aborts the transaction the old one could not, "
                               "then redoes the batch from the stores' offsets");
        sleep(1);
    } else if (e != RD_KAFKA_RESP_ERR__FENCED && e != RD_KAFKA_RESP_ERR_PRODUCER_FENCED &&
               e != RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
        return false;
    } else if (fence_storm(rt->producer_fences, "producer", rt->opts.instance)) {
        return false;
    } else {
        fl_log_warn("runtime",
                    "producer fenced (%s): Kafka aborted the open transaction; a new producer "
                    "redoes the batch from the stores' offsets",
                    why);
    }
    for (int i = 0; i < rt->n_rkts; i++)
        rd_kafka_topic_destroy(rt->rkts[i]);
    rt->n_rkts = 0;
    rd_kafka_purge(rt->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rt->producer);
    rt->in_txn = false;
    rt->fatal = false;
    if (!(rt->producer = make_producer(rt))) {
        rt->fatal = true;
        return false;
    }
    fl__rt_abandon_batch(rt); /* nothing open: drops pending changes, rewinds */
    rt->delivery_failures = 0;
    rt->m.producer_resets++;
    return !rt->fatal;
}

static int subscribe(rt_t *rt)
{
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        rd_kafka_topic_partition_list_add(sub, RT_KAFKA(rt, rt->proc->inputs[i]),
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(rt->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (kerr)
        fl_log_error("runtime", "subscribe: %s", rd_kafka_err2str(kerr));
    return kerr ? -1 : 0;
}

/*
 * A consumer the group fenced by its own group.instance.id. After the
 * group coordinator restarts (a broker killed or stopped), a static
 * member's rejoin can be registered under a new member id while the old
 * one still heartbeats; the broker then fences the old one, which
 * librdkafka treats as fatal. Like a fenced producer, the first fence is
 * survived: the consumer is closed (its partitions revoked, the tasks
 * closed with nothing uncommitted: the loop holds no batch while it
 * polls) and a new one joins; the stores and offsets decide where each
 * partition resumes, as after any rebalance. A storm of fences
 * (fence_storm) is another process running as this instance: that one
 * stops. true when the instance can go on.
 */
static bool renew_fenced_consumer(rt_t *rt)
{
    if (!rt->consumer_fenced)
        return false;
    rt->consumer_fenced = false;
    if (fence_storm(rt->consumer_fences, "consumer", rt->opts.instance))
        return false;
    fl_log_warn("runtime", "consumer fenced by its own group.instance.id (the group coordinator "
                           "restarted): a new consumer joins the group");
    rd_kafka_consumer_close(rt->consumer);
    rd_kafka_destroy(rt->consumer);
    close_all_tasks(rt);
    rt->assigned = 0;
    for (size_t i = 0; i < rt->proc->n_inputs * (size_t)rt->n_partitions; i++)
        rt->lso[i] = -1;
    rt->fatal = false;
    if (!(rt->consumer = make_consumer(rt)) || subscribe(rt)) {
        rt->fatal = true;
        return false;
    }
    rt->m.consumer_resets++;
    return true;
}

static void run_loop(rt_t *rt)
{
    do
        run_batches(rt);
    while (!*rt->stop && rt->fatal && (renew_fenced_consumer(rt) || renew_fenced_producer(rt)));
}

/* Runs a processor (sink NULL) or a sink: one core for both roles. */
static int rt_main(const fl_processor_def_t *def, rt_sink_t *sink, int argc, char **argv)
{
    rt_t rt = {.def = def, .sink = sink, .stop = &fl_rt_stop};
    int ret = 1;

    fl_log_init();
    int rc = fl__rt_parse_opts(def, sink != NULL, argc, argv, &rt.opts);
    if (rc)
        return rc == 1 ? 0 : 2;
    signal(SIGINT, fl_rt_on_signal);
    signal(SIGTERM, fl_rt_on_signal);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&rt.snap_lock, NULL);
    if (setup(&rt) == 0) {
        run_loop(&rt);
        ret = rt.fatal ? 1 : 0;
    }
    fl_log_info("runtime", "%s stopping (%s)", def->name, rt.fatal ? "fatal error" : "signal");
    if (rt.consumer) {
        rd_kafka_consumer_close(rt.consumer); /* revokes: closes the tasks */
        rd_kafka_destroy(rt.consumer);
    }
    if (rt.tasks)
        close_all_tasks(&rt);
    fl__rt_sink_free(&rt);
    if (rt.producer) {
        if (rt.in_txn) {
            rd_kafka_error_t *e = rd_kafka_abort_transaction(rt.producer, 10000);
            if (e)
                rd_kafka_error_destroy(e);
        }
        for (int i = 0; i < rt.n_rkts; i++)
            rd_kafka_topic_destroy(rt.rkts[i]);
        rd_kafka_destroy(rt.producer);
    }
    if (rt.mhd)
        MHD_stop_daemon(rt.mhd);
    free(rt.snapshot);
    free(rt.tasks);
    free(rt.lso);
    free(rt.fetch);
    free(rt.until);
    fl_codec_free(rt.codec);
    fl_topology_free(rt.topo);
    pthread_mutex_destroy(&rt.snap_lock);
    return ret;
}

int fl_runtime_main(const fl_processor_def_t *def, int argc, char **argv)
{
    return rt_main(def, NULL, argc, argv);
}

int fl_sink_main(const fl_sink_def_t *def, int argc, char **argv)
{
    rt_sink_t sink = {.def = def, .pdef = {.name = def->name}};
    return rt_main(&sink.pdef, &sink, argc, argv);
}
