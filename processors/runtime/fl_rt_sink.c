/*
 * fl_rt_sink.c - the runtime's sink role (see fl_sink.h): the same
 * consumer group, assignment, batching, dead letters, metrics and
 * signals as a processor (fl_runtime.c), but no stores and no Kafka
 * transaction: the batch and its input offsets go into the destination in
 * one atomic write, and an assigned partition resumes from the offsets
 * claimed back from there.
 *
 * A batch's life: records are added as they are polled (a record that
 * cannot be decoded or applied is dead-lettered); at the end of the poll
 * window the dead letters are flushed to Kafka, then the destination is
 * written with the next offset of every partition the batch touched.
 *   - refused for now (destination down): every assigned partition is
 *     paused, the same batch is retried with backoff while the consumer
 *     keeps polling (so the group keeps the member), and once it went in
 *     the partitions resume from their positions;
 *   - fenced (a newer owner claimed a partition): the batch is dropped and
 *     nothing more is written until the next assignment;
 *   - lost (the destination no longer holds the sink's marker: flushed,
 *     restarted empty): the batch is dropped, the partitions are claimed
 *     again and consumed from the offsets read back (none: the beginning),
 *     which rebuilds the projection.
 * A claim that reads back an offset past its partition's end (the inputs
 * were recreated or truncated under a kept projection) wipes the
 * projection and claims again from the beginning (feedline_sink_wipes_total).
 * Dead letters are produced before the destination's write, outside any
 * transaction: a crash between the two repeats a dead letter (its headers
 * name its source record), it never loses one.
 */
#include "fl_log.h"
#include "fl_rt_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RT_SINK_NOT_ASSIGNED (-2)
#define RT_SINK_MAX_BACKOFF  5000

static size_t ix(const rt_t *rt, size_t input, int32_t partition)
{
    return input * (size_t)rt->n_partitions + (size_t)partition;
}

static size_t n_slots(const rt_t *rt)
{
    return rt->proc->n_inputs * (size_t)rt->n_partitions;
}

/* Sleeps ms unless a signal asks the process to stop. */
static void nap(rt_t *rt, int ms)
{
    for (int i = 0; i < ms && !*rt->stop; i += 50)
        usleep(50 * 1000);
}

int fl__rt_sink_setup(rt_t *rt)
{
    const fl_sink_cfg_t *cfg = fl_topology_sink(rt->topo, rt->def->name);
    if (!cfg) {
        fl_log_error("runtime", "sink %s is not in %s", rt->def->name, rt->opts.topology_path);
        return -1;
    }
    rt_sink_t *s = rt->sink;
    s->view = (fl_processor_t){.name = cfg->name,
                               .group = cfg->group,
                               .inputs = cfg->inputs,
                               .n_inputs = cfg->n_inputs,
                               .line = cfg->line};
    rt->proc = &s->view;
    return 0;
}

int fl__rt_sink_open(rt_t *rt)
{
    rt_sink_t *s = rt->sink;
    size_t n = n_slots(rt);
    s->pos = malloc(n * sizeof(*s->pos));
    s->touched = calloc(n, sizeof(*s->touched));
    s->parts = calloc(n, sizeof(*s->parts));
    s->next = calloc(n, sizeof(*s->next));
    if (!s->pos || !s->touched || !s->parts || !s->next)
        return -1;
    for (size_t i = 0; i < n; i++)
        s->pos[i] = RT_SINK_NOT_ASSIGNED;
    s->backoff_ms = 100;
    fl_sink_env_t env = {.topo = rt->topo, .name = rt->proc->name, .instance = rt->opts.instance};
    for (int attempt = 1, wait = 200; !*rt->stop; attempt++) {
        fl_err_t e = s->def->open(&env, &s->state);
        if (!e)
            return 0;
        if (!fl_err_retriable(e)) {
            fl_log_error("runtime", "sink %s: cannot open its destination: %s", rt->proc->name,
                         fl_err_str(e));
            return -1;
        }
        fl_log_warn("runtime", "sink %s: destination unavailable (attempt %d); retrying in %d ms",
                    rt->proc->name, attempt, wait);
        nap(rt, wait);
        wait = wait < RT_SINK_MAX_BACKOFF ? wait * 2 : RT_SINK_MAX_BACKOFF;
    }
    return -1;
}

void fl__rt_sink_free(rt_t *rt)
{
    rt_sink_t *s = rt->sink;
    if (!s)
        return;
    if (s->state)
        s->def->close(s->state);
    s->state = NULL;
    free(s->pos);
    free(s->touched);
    free(s->parts);
    free(s->next);
    s->pos = s->next = NULL;
    s->touched = NULL;
    s->parts = NULL;
}

/* Pauses or resumes every assigned partition. */
static void pause_all(rt_t *rt, bool pause)
{
    rd_kafka_topic_partition_list_t *tpl = NULL;
    if (rt->sink->paused == pause || rd_kafka_assignment(rt->consumer, &tpl) || !tpl)
        return;
    rd_kafka_resp_err_t kerr = pause ? rd_kafka_pause_partitions(rt->consumer, tpl)
                                     : rd_kafka_resume_partitions(rt->consumer, tpl);
    if (kerr)
        fl_log_warn("runtime", "%s the sink's partitions: %s", pause ? "pausing" : "resuming",
                    rd_kafka_err2str(kerr));
    rt->sink->paused = pause;
    rd_kafka_topic_partition_list_destroy(tpl);
}

/* Moves every assigned partition to its position (records polled and
 * dropped while the batch waited are fetched again). */
static void seek_to_positions(rt_t *rt)
{
    rt_sink_t *s = rt->sink;
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        for (int32_t p = 0; p < rt->n_partitions; p++) {
            int64_t pos = s->pos[ix(rt, i, p)];
            if (pos != RT_SINK_NOT_ASSIGNED)
                rd_kafka_topic_partition_list_add(tpl, RT_KAFKA(rt, rt->proc->inputs[i]), p)
                    ->offset = pos >= 0 ? pos : RD_KAFKA_OFFSET_BEGINNING;
        }
    if (tpl->cnt) {
        rd_kafka_error_t *err = rd_kafka_seek_partitions(rt->consumer, tpl, 10000);
        if (err) {
            fl_log_error("runtime", "sink %s: seek: %s", rt->proc->name,
                         rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
            rt->fatal = true; /* a restart resumes from the destination's offsets */
        }
    }
    rd_kafka_topic_partition_list_destroy(tpl);
}

/* Drops the open batch: the records it held are read again from the
 * positions the destination keeps. */
static void drop_batch(rt_t *rt)
{
    rt_sink_t *s = rt->sink;
    if (s->in_batch || s->pending)
        s->def->discard(s->state);
    memset(s->touched, 0, n_slots(rt) * sizeof(*s->touched));
    s->in_batch = 0;
    s->pending = false;
    rt->batch.records_in = rt->batch.records_out = rt->batch.dead_letters = 0;
}

/* Runs op (claim, or wipe when wipe) against the destination, retried
 * with backoff while it is unavailable; 0, or -1 (logged) when it failed
 * or the process is stopping. */
static int with_retries(rt_t *rt, size_t n, bool wipe)
{
    rt_sink_t *s = rt->sink;
    const char *what = wipe ? "wiping the projection" : "claiming partitions";
    fl_err_t e = FL_OK;
    for (int attempt = 1, wait = 200; !*rt->stop; attempt++) {
        e = wipe ? s->def->wipe(s->state) : s->def->claim(s->state, s->parts, n, s->next);
        if (!e || !fl_err_retriable(e))
            break;
        fl_log_warn("runtime", "sink %s: %s (%zu partitions): %s (attempt %d); retrying in %d ms",
                    rt->proc->name, what, n, fl_err_str(e), attempt, wait);
        nap(rt, wait);
        wait = wait < RT_SINK_MAX_BACKOFF ? wait * 2 : RT_SINK_MAX_BACKOFF;
    }
    if (e || *rt->stop) {
        if (e)
            fl_log_error("runtime", "sink %s: %s: %s", rt->proc->name, what, fl_err_str(e));
        return -1;
    }
    return 0;
}

/* The first claimed part (s->parts, s->next) whose offset lies past its
 * partition's end, or -1; its end in *end. When an end cannot be read
 * (the broker away again), the offsets are taken as they are (logged):
 * the claim does not wait out a timeout per partition. */
static int past_end(rt_t *rt, size_t n, int64_t *end)
{
    rt_sink_t *s = rt->sink;
    for (size_t i = 0; i < n; i++) {
        int64_t lo, hi;
        if (s->next[i] < 0)
            continue;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            rt->consumer, RT_KAFKA(rt, s->parts[i].topic), s->parts[i].partition, &lo, &hi, 5000);
        if (kerr) {
            fl_log_warn("runtime",
                        "sink %s: the end of %s [%d] is unknown (%s): the claimed offsets "
                        "are taken as they are",
                        rt->proc->name, s->parts[i].topic, s->parts[i].partition,
                        rd_kafka_err2str(kerr));
            return -1;
        }
        if (s->next[i] > hi) {
            *end = hi;
            return (int)i;
        }
    }
    return -1;
}

/* Claims parts in the destination, retried while it is unavailable, and
 * sets each part's offset and position from what it returned. Offsets
 * past their partitions' ends come from another history of the inputs
 * (topics recreated or truncated under a kept projection): resuming there
 * would skip the new records and keep the old ones, so the projection is
 * wiped and every partition claimed again from the beginning. */
static int claim(rt_t *rt, rd_kafka_topic_partition_list_t *parts)
{
    rt_sink_t *s = rt->sink;
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int idx = fl__rt_input_index(rt, parts->elems[i].topic);
        if (idx < 0 || parts->elems[i].partition < 0 ||
            parts->elems[i].partition >= rt->n_partitions) {
            fl_log_error("runtime", "sink %s: assigned %s [%d], not an input partition",
                         rt->proc->name, parts->elems[i].topic, parts->elems[i].partition);
            return -1;
        }
        s->parts[n].topic = rt->proc->inputs[idx];
        s->parts[n++].partition = parts->elems[i].partition;
    }
    if (with_retries(rt, n, false))
        return -1;
    rt->m.sink_claims++;
    int64_t end = 0;
    int bad = past_end(rt, n, &end);
    if (bad >= 0) {
        fl_log_error("runtime",
                     "sink %s: the destination holds offset %" PRId64 " for %s [%d], past the "
                     "partition's end %" PRId64 ": it was written from another history of the "
                     "inputs (topics recreated or truncated); wiping the projection and "
                     "rebuilding it from the beginning",
                     rt->proc->name, s->next[bad], s->parts[bad].topic, s->parts[bad].partition,
                     end);
        if (with_retries(rt, n, true) || with_retries(rt, n, false))
            return -1;
        rt->m.sink_wipes++;
        rt->m.sink_claims++;
    }
    for (size_t i = 0; i < n; i++) {
        int idx = fl__rt_input_index(rt, s->parts[i].topic);
        int64_t next = s->next[i] >= 0 ? s->next[i] : -1;
        s->pos[ix(rt, (size_t)idx, s->parts[i].partition)] = next;
        parts->elems[i].offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
    }
    return 0;
}

void fl__rt_sink_assign(rt_t *rt, rd_kafka_topic_partition_list_t *parts)
{
    rt_sink_t *s = rt->sink;
    drop_batch(rt);
    s->fenced = s->paused = false;
    s->backoff_ms = 100;
    if (claim(rt, parts)) {
        rt->fatal = true;
        rd_kafka_assign(rt->consumer, NULL);
        return;
    }
    fl_log_info("runtime", "sink %s: assigned %d partitions", rt->proc->name, parts->cnt);
    rd_kafka_assign(rt->consumer, parts);
    /* A partition this instance paused (fenced, destination down) before
     * it lost it must not stay paused when it comes back. */
    rd_kafka_resume_partitions(rt->consumer, parts);
    rt->assigned = parts->cnt;
}

void fl__rt_sink_revoke(rt_t *rt)
{
    rt_sink_t *s = rt->sink;
    fl_log_info("runtime", "sink %s: revoked", rt->proc->name);
    drop_batch(rt);
    rd_kafka_assign(rt->consumer, NULL);
    rt->assigned = 0;
    s->paused = s->fenced = false;
    for (size_t i = 0; i < n_slots(rt); i++) {
        s->pos[i] = RT_SINK_NOT_ASSIGNED;
        rt->lso[i] = -1;
    }
}

void fl__rt_sink_route(rt_t *rt, rd_kafka_message_t *m)
{
    rt_sink_t *s = rt->sink;
    int idx = fl__rt_input_index(rt, rd_kafka_topic_name(m->rkt));
    size_t k = idx >= 0 && m->partition >= 0 && m->partition < rt->n_partitions
                   ? ix(rt, (size_t)idx, m->partition)
                   : 0;
    /* Not ours, or polled while the batch waits (fetched again later), or
     * fetched before a seek back. */
    if (m->err || idx < 0 || m->partition < 0 || m->partition >= rt->n_partitions ||
        s->pos[k] == RT_SINK_NOT_ASSIGNED || s->pending || s->fenced ||
        (s->pos[k] >= 0 && m->offset < s->pos[k]) ||
        m->offset >= fl__rt_until(rt, (size_t)idx, m->partition)) { /* past --input-until */
        rd_kafka_message_destroy(m);
        return;
    }
    char err[512];
    fl_event_t ev;
    memset(&ev, 0, sizeof(ev));
    const char *stage = "decode";
    fl_err_t rc = rt->input_is_event[idx] ? fl__rt_decode(rt, m, &ev, err, sizeof(err)) : FL_OK;
    if (!rc) {
        fl_proc_record_t rec = {.topic = rt->proc->inputs[idx],
                                .partition = m->partition,
                                .offset = m->offset,
                                .timestamp = rd_kafka_message_timestamp(m, NULL),
                                .key = m->key,
                                .key_len = m->key_len,
                                .value = m->payload,
                                .value_len = m->len,
                                .event = rt->input_is_event[idx] ? &ev : NULL};
        stage = rt->proc->name;
        rc = s->def->add(s->state, &rec, err, sizeof(err));
        if (rc && rc != FL_ERR_INVALID) {
            fl_log_error("runtime", "sink %s failed on %s [%d] @%" PRId64 ": %s (%s)",
                         rt->proc->name, rec.topic, rec.partition, rec.offset, fl_err_str(rc), err);
            rt->fatal = true; /* a restart redoes the batch from the destination */
        }
    }
    if (rc && !rt->fatal && fl__rt_dead_letter(rt, m, stage, rc, err))
        rt->fatal = true;
    fl_event_clear(&ev);
    s->pos[k] = m->offset + 1;
    s->touched[k] = true;
    s->in_batch++;
    rt->batch.records_in++;
    rd_kafka_message_destroy(m);
}

/* The destination lost the sink's marker: claim the assignment again and
 * consume it from what the destination holds now (the beginning). */
static void rebuild(rt_t *rt)
{
    rd_kafka_topic_partition_list_t *tpl = NULL;
    fl_log_warn("runtime",
                "sink %s: the destination lost its data (its marker is gone): rebuilding the "
                "assigned partitions from Kafka",
                rt->proc->name);
    rt->m.sink_rebuilds++;
    drop_batch(rt);
    if (rd_kafka_assignment(rt->consumer, &tpl) || !tpl) {
        rt->fatal = true;
        return;
    }
    if (claim(rt, tpl))
        rt->fatal = true;
    rd_kafka_topic_partition_list_destroy(tpl);
    if (rt->fatal)
        return;
    pause_all(rt, false);
    seek_to_positions(rt);
}

static void idle_check(rt_t *rt, int64_t now)
{
    rt_sink_t *s = rt->sink;
    if (!s->def->check || !rt->assigned || now - s->last_check_ms < 1000)
        return;
    s->last_check_ms = now;
    fl_err_t e = s->def->check(s->state);
    if (e == FL_ERR_LOST)
        rebuild(rt);
    else if (e)
        fl_log_warn("runtime", "sink %s: destination check: %s", rt->proc->name, fl_err_str(e));
}

void fl__rt_sink_commit(rt_t *rt)
{
    rt_sink_t *s = rt->sink;
    int64_t now = fl__rt_now_ms();
    if (s->fenced || rt->fatal)
        return;
    if (!s->pending && !s->in_batch) {
        idle_check(rt, now);
        return;
    }
    if (s->pending && now < s->retry_at)
        return;
    size_t n = 0;
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        for (int32_t p = 0; p < rt->n_partitions; p++) {
            size_t k = ix(rt, i, p);
            if (!s->touched[k])
                continue;
            s->parts[n].topic = rt->proc->inputs[i];
            s->parts[n].partition = p;
            s->next[n++] = s->pos[k];
        }
    /* Dead letters first: once the destination moved past a record, its
     * dead letter must be in Kafka. With the broker away they wait in the
     * producer (no message timeout) and the batch waits with them. */
    fl_err_t e = FL_OK;
    const char *what = "destination refused the batch";
    if (rt->batch.dead_letters && rd_kafka_flush(rt->producer, 1000)) {
        e = FL_ERR_UNAVAILABLE;
        what = "dead letters not acknowledged yet";
    } else if (rt->delivery_failures) {
        rt->fatal = true; /* not retriable; logged by the delivery report */
        return;
    } else {
        e = s->def->flush(s->state, s->parts, s->next, n);
    }
    int64_t done = fl__rt_now_ms();
    if (!e) {
        rt->m.sink_flushes++;
        rt->m.batches++;
        rt->m.commits++;
        rt->m.sink_flush_ms_sum += (double)(done - now);
        rt->m.records_in += rt->batch.records_in;
        rt->m.dead_letters += rt->batch.dead_letters;
        rt->batch.records_in = rt->batch.dead_letters = 0;
        memset(s->touched, 0, n_slots(rt) * sizeof(*s->touched));
        s->in_batch = 0;
        if (s->pending) {
            fl_log_info("runtime", "sink %s: destination back; batch written", rt->proc->name);
            s->pending = false;
            pause_all(rt, false);
            seek_to_positions(rt);
        }
        s->backoff_ms = 100;
        return;
    }
    if (e == FL_ERR_FENCED) {
        fl_log_error("runtime",
                     "sink %s: fenced: a newer owner claimed a partition of this batch; nothing "
                     "written, and nothing more until the next assignment",
                     rt->proc->name);
        rt->m.fenced++;
        drop_batch(rt);
        pause_all(rt, true);
        s->fenced = true;
        return;
    }
    if (e == FL_ERR_LOST) {
        rebuild(rt);
        return;
    }
    if (!fl_err_retriable(e)) {
        fl_log_error("runtime", "sink %s: flush: %s", rt->proc->name, fl_err_str(e));
        rt->fatal = true;
        return;
    }
    rt->m.sink_retries++;
    rt->m.commit_failures++;
    fl_log_warn("runtime", "sink %s: %s (%s); retrying in %d ms", rt->proc->name, what,
                fl_err_str(e), s->backoff_ms);
    if (!s->pending) {
        s->pending = true;
        pause_all(rt, true);
    }
    s->retry_at = done + s->backoff_ms;
    s->backoff_ms = s->backoff_ms < RT_SINK_MAX_BACKOFF ? s->backoff_ms * 2 : RT_SINK_MAX_BACKOFF;
}

void fl__rt_sink_metrics(rt_t *rt, FILE *f)
{
    rt_sink_t *s = rt->sink;
    const char *n = rt->proc->name;
    const struct {
        const char *name;
        uint64_t v;
    } counters[] = {{"sink_flushes_total", rt->m.sink_flushes},
                    {"sink_retries_total", rt->m.sink_retries},
                    {"sink_rebuilds_total", rt->m.sink_rebuilds},
                    {"sink_claims_total", rt->m.sink_claims},
                    {"sink_wipes_total", rt->m.sink_wipes}};
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        fprintf(f, "# TYPE feedline_%s counter\n", counters[i].name);
        fprintf(f, "feedline_%s{processor=\"%s\"} %" PRIu64 "\n", counters[i].name, n,
                counters[i].v);
    }
    fprintf(f, "# TYPE feedline_sink_flush_seconds_sum counter\n");
    fprintf(f, "feedline_sink_flush_seconds_sum{processor=\"%s\"} %.3f\n", n,
            rt->m.sink_flush_ms_sum / 1e3);
    fprintf(f, "# TYPE feedline_sink_waiting gauge\n");
    fprintf(f, "feedline_sink_waiting{processor=\"%s\"} %d\n", n, s->pending || s->fenced);
    fprintf(f, "# TYPE feedline_consumer_lag gauge\n");
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        for (int32_t p = 0; p < rt->n_partitions; p++) {
            size_t k = ix(rt, i, p);
            int64_t pos = s->pos[k], lso = rt->lso[k];
            if (pos == RT_SINK_NOT_ASSIGNED || lso == -1)
                continue;
            int64_t lag = lso == -2 ? 0 : lso > pos ? lso - (pos > 0 ? pos : 0) : 0;
            fprintf(f,
                    "feedline_consumer_lag{processor=\"%s\",topic=\"%s\",partition=\"%d\"} "
                    "%" PRId64 "\n",
                    n, rt->proc->inputs[i], p, lag);
        }
    if (s->def->metrics && s->state) {
        char buf[8192];
        buf[0] = 0;
        s->def->metrics(s->state, buf, sizeof(buf));
        fputs(buf, f);
    }
}
