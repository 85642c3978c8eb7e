/*
 * fl_runtime.c - the processor runtime (see fl_runtime.h).
 *
 * One thread does all the work: poll a batch, route each record to its
 * task (one per assigned partition), merge each task's inputs in
 * (timestamp, topic, offset) order, run the processor, then commit:
 * Kafka transaction first (outputs, dead letters, changelog records, an
 * offsets marker per task), RocksDB second. Only the metrics endpoint runs
 * on another thread (libmicrohttpd's), and it reads a text snapshot the
 * main thread renders under a mutex once a second.
 *
 * Invariants:
 * - a task's stores never hold changes whose transaction is not
 *   committed: stores commit only after commit_transaction succeeded;
 * - the input offsets in a store are the offsets after the last record
 *   whose effects are in that store; consumption of an assigned partition
 *   always resumes from them (never from Kafka's committed offsets);
 * - a store is used only after its changelog was replayed up to the
 *   changelog's committed end.
 *
 * Workload: batches of up to batch_max_records records or batch_max_ms;
 * one transaction per batch.
 */
#include "fl_runtime.h"
#include "fl_codec.h"
#include "fl_ctx_int.h"
#include "fl_kafka.h"
#include "fl_log.h"
#include "fl_topics.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The one process-wide flag: set by SIGINT/SIGTERM. */
static volatile sig_atomic_t fl_rt_stop;

static void fl_rt_on_signal(int sig)
{
    (void)sig;
    fl_rt_stop = 1;
}

#define FL_RT_MAX_INPUTS     8
#define FL_RT_MAX_STORES     8
#define FL_RT_MAX_OUT_TOPICS 16
#define FL_RT_MARKER_KEY     "\0offsets"
#define FL_RT_MARKER_KLEN    8
#define FL_RT_RESTORE_CHUNK  20000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- configuration ------------------------------------------------------------------------- */

typedef struct rt_opts {
    const char *topology_path;
    const char *schemas_dir;
    const char *state_dir;
    const char *instance;
    const char *metrics_addr;
    int max_idle_ms;
} rt_opts_t;

/* A buffered input record, decoded when it came from an input topic. */
typedef struct rt_entry {
    rd_kafka_message_t *m;
    fl_event_t ev;
    int64_t ts;
    fl_err_t decode_err;
    char *errmsg; /* decode/validation failure, malloc'd */
} rt_entry_t;

typedef struct rt_queue {
    rt_entry_t *v;
    size_t head, n, cap;
} rt_queue_t;

typedef struct rt_task {
    int32_t partition;
    fl_store_t **stores;
    rt_queue_t q[FL_RT_MAX_INPUTS];
    int64_t next_offset[FL_RT_MAX_INPUTS]; /* after the last processed record; -1 unknown */
    bool caught_up[FL_RT_MAX_INPUTS];
    int64_t known_end[FL_RT_MAX_INPUTS]; /* end offset asked of the broker at assignment */
    int64_t empty_since[FL_RT_MAX_INPUTS];
    bool dirty;                              /* processed records since the last commit */
    int64_t marker_offset[FL_RT_MAX_STORES]; /* set by the markers' delivery reports */
    fl_ctx_t ctx;
} rt_task_t;

#define FL_RT_MAX_COUNTERS 16

typedef struct rt_metrics {
    const char *counter_names[FL_RT_MAX_COUNTERS]; /* static strings from processors */
    uint64_t counters[FL_RT_MAX_COUNTERS];
    uint64_t records_in, records_out, dead_letters, batches, commits, commit_failures;
    double batch_ms_sum, commit_ms_sum;
    double phase_ms_sum[3]; /* of commits: changelog, transaction, stores */
    uint64_t restored_records;
} rt_metrics_t;

typedef struct rt {
    const fl_processor_def_t *def;
    rt_opts_t opts;
    fl_topology_t *topo;
    const fl_processor_t *proc;
    fl_codec_t *codec;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    /* Topic handles of the producer, by name: producing by name looks the
     * topic up under a lock for every record. */
    rd_kafka_topic_t *rkts[FL_RT_MAX_OUT_TOPICS];
    int n_rkts;
    bool input_is_event[FL_RT_MAX_INPUTS];
    rt_task_t **tasks; /* by partition; NULL when not assigned */
    int32_t n_partitions;
    bool in_txn;
    int delivery_failures;
    bool fatal;
    rt_metrics_t m;
    int64_t *lso; /* [input][partition] last stable offsets from librdkafka's
                   * statistics; -1 unknown, -2 fetched to the end */
    int assigned; /* partitions currently assigned */
    /* metrics endpoint */
    struct MHD_Daemon *mhd;
    pthread_mutex_t snap_lock;
    char *snapshot;
    int64_t last_snapshot_ms;
} rt_t;

static int input_index(const rt_t *rt, const char *topic)
{
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        if (!strcmp(rt->proc->inputs[i], topic))
            return (int)i;
    return -1;
}

/* ---- queues of buffered records -------------------------------------------------------------- */

static void entry_clear(rt_entry_t *e)
{
    if (e->m)
        rd_kafka_message_destroy(e->m);
    fl_event_clear(&e->ev);
    free(e->errmsg);
    memset(e, 0, sizeof(*e));
}

static int queue_push(rt_queue_t *q, rt_entry_t *e)
{
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
            q->head = 0;
        } else {
            size_t cap = q->cap ? q->cap * 2 : 256;
            rt_entry_t *nv = realloc(q->v, cap * sizeof(*nv));
            if (!nv)
                return -1;
            q->v = nv;
            q->cap = cap;
        }
    }
    q->v[q->head + q->n++] = *e;
    return 0;
}

static rt_entry_t *queue_front(rt_queue_t *q)
{
    return q->n ? &q->v[q->head] : NULL;
}

static void queue_pop(rt_queue_t *q)
{
    entry_clear(&q->v[q->head]);
    q->head++;
    q->n--;
    if (!q->n)
        q->head = 0;
}

static void queue_free(rt_queue_t *q)
{
    while (q->n)
        queue_pop(q);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* ---- producing ------------------------------------------------------------------------------ */

static void rt_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    rt_t *rt = opaque;
    if (m->err) {
        rt->delivery_failures++;
        fl_log_error("runtime", "delivery to %s [%d] failed: %s", rd_kafka_topic_name(m->rkt),
                     m->partition, rd_kafka_err2str(m->err));
        return;
    }
    if (m->_private)
        *(int64_t *)m->_private = m->offset;
}

static fl_err_t rt_begin(rt_t *rt)
{
    if (rt->in_txn)
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
static rd_kafka_topic_t *rt_topic(rt_t *rt, const char *topic, bool *owned)
{
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
    fl_err_t err = rt_begin(rt);
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
            fl_log_error("runtime", "produce to %s [%d]: %s", topic, partition,
                         rd_kafka_err2str(kerr));
            err = fl_kafka_err(kerr);
            goto fail;
        }
        return FL_OK;
    }
fail:
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    return err;
}

static fl_err_t rt_forward(void *opaque, const char *topic, int32_t partition, const void *key,
                           size_t klen, const void *val, size_t vlen)
{
    rt_t *rt = opaque;
    rt->m.records_out++;
    return rt_produce(rt, topic, partition, key, klen, val, vlen, NULL, NULL);
}

static void rt_count(void *opaque, const char *name, uint64_t n)
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
static fl_err_t rt_dead_letter(rt_t *rt, const rd_kafka_message_t *m, const char *stage,
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
    rd_kafka_header_add(h, "feedline.dlq.error.class", -1, fl_err_str(cause), -1);
    rd_kafka_header_add(h, "feedline.dlq.error", -1, msg, -1);
    rt->m.dead_letters++;
    fl_log_warn("runtime", "dead-lettered %s [%d] @%" PRId64 " (%s): %s",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset, stage, msg);
    return rt_produce(rt, FL_TOPIC_DLQ, RD_KAFKA_PARTITION_UA, m->key, m->key_len, m->payload,
                      m->len, h, NULL);
}

/* Consumer statistics (once a second, served by the poll loop): keeps each
 * partition's last stable offset, the end a read-committed consumer can
 * reach, so that lag never counts transaction markers. (librdkafka's own
 * consumer_lag is relative to Kafka-committed offsets, which feedline does
 * not use.) */
static int rt_stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    rt_t *rt = opaque;
    json_t *root = json_loadb(json, json_len, 0, NULL), *topics = json_object_get(root, "topics");
    for (size_t i = 0; topics && i < rt->proc->n_inputs; i++) {
        json_t *parts = json_object_get(json_object_get(topics, rt->proc->inputs[i]), "partitions");
        for (int32_t p = 0; parts && p < rt->n_partitions; p++) {
            char key[16];
            snprintf(key, sizeof(key), "%d", p);
            json_t *part = json_object_get(parts, key);
            json_t *lso = json_object_get(part, "ls_offset");
            json_t *next = json_object_get(part, "next_offset");
            json_t *fetchq = json_object_get(part, "fetchq_cnt");
            int64_t v = json_is_integer(lso) ? json_integer_value(lso) : -1;
            /* Everything fetched was delivered and the fetcher stands at the
             * end: what lies between the last record and the end are only
             * transaction markers, which are not lag. */
            if (v >= 0 && json_is_integer(next) && json_integer_value(next) >= v &&
                json_is_integer(fetchq) && json_integer_value(fetchq) == 0)
                v = -2;
            rt->lso[i * (size_t)rt->n_partitions + (size_t)p] = v;
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

/* ---- tasks: stores, restore ------------------------------------------------------------------ */

static char *store_dir(const rt_t *rt, const char *store, int32_t partition)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s-%s/%s-%d", rt->opts.state_dir, rt->proc->name, rt->opts.instance,
                 store, partition) < 0)
        return NULL;
    return path;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* Encodes the task's input offsets as the marker value: "topic partition offset\n"... */
static size_t marker_value(const rt_t *rt, const rt_task_t *t, char *buf, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < rt->proc->n_inputs && len < cap; i++)
        if (t->next_offset[i] >= 0)
            len += (size_t)snprintf(buf + len, cap - len, "%s %d %" PRId64 "\n",
                                    rt->proc->inputs[i], t->partition, t->next_offset[i]);
    return len < cap ? len : cap;
}

/* Parses a marker value into offsets for the task's inputs (others ignored). */
static void marker_parse(const rt_t *rt, const void *val, size_t vlen, int64_t *offsets)
{
    char buf[2048], topic[256];
    int part;
    int64_t off;
    size_t n = vlen < sizeof(buf) - 1 ? vlen : sizeof(buf) - 1;

    memcpy(buf, val, n);
    buf[n] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "%255s %d %" SCNd64, topic, &part, &off) != 3)
            continue;
        int i = input_index(rt, topic);
        if (i >= 0)
            offsets[i] = off;
    }
}

static fl_err_t commit_restored(rt_t *rt, fl_store_t *s, const int64_t *offsets, int64_t position)
{
    fl_store_offset_t offs[FL_RT_MAX_INPUTS];
    size_t n = 0;
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        if (offsets[i] >= 0)
            offs[n++] = (fl_store_offset_t){rt->proc->inputs[i], fl_store_partition(s), offsets[i]};
    return fl_store_commit(s, offs, n, position);
}

/*
 * Replays the store's changelog partition from the store's position to the
 * committed end, then records the last marker's input offsets.
 */
static fl_err_t restore_store(rt_t *rt, fl_store_t *s, const char *changelog, int32_t partition)
{
    char err[512];
    int64_t position, lo = 0, hi = 0, applied = 0, t0 = now_ms(), last_log = t0;
    int64_t offsets[FL_RT_MAX_INPUTS];
    rd_kafka_t *c = NULL;
    rd_kafka_topic_partition_list_t *tpl = NULL;
    fl_err_t ret = fl_store_changelog_position(s, &position);
    bool any_marker = false;

    for (int i = 0; i < FL_RT_MAX_INPUTS; i++)
        offsets[i] = -1;
    if (ret)
        return ret;
    /* librdkafka consumers read committed records only by default. */
    c = fl_kafka_consumer_new(rt->topo->endpoints.kafka, NULL, err, sizeof(err));
    if (!c) {
        fl_log_error("runtime", "restore consumer: %s", err);
        ret = FL_ERR_CONFIG;
        goto out;
    }
    rd_kafka_resp_err_t kerr =
        rd_kafka_query_watermark_offsets(c, changelog, partition, &lo, &hi, 30000);
    if (kerr) {
        fl_log_error("runtime", "watermarks of %s [%d]: %s", changelog, partition,
                     rd_kafka_err2str(kerr));
        ret = fl_kafka_err(kerr);
        goto out;
    }
    if (position >= hi) {
        ret = FL_OK;
        goto out; /* up to date */
    }
    if (position < lo)
        position = lo; /* compacted or truncated below our position */
    fl_log_info("runtime", "restoring %s [%d] from %s offsets %" PRId64 "..%" PRId64,
                fl_store_name(s), partition, changelog, position, hi);
    tpl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tpl, changelog, partition)->offset = position;
    rd_kafka_assign(c, tpl);
    for (;;) {
        if (fl_rt_stop) {
            ret = FL_ERR_TIMEOUT;
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            break;
        }
        if (m->err) {
            fl_log_warn("runtime", "restore of %s [%d]: %s; retrying", fl_store_name(s), partition,
                        rd_kafka_message_errstr(m));
            fl_err_t e = fl_kafka_err(m->err);
            rd_kafka_message_destroy(m);
            if (fl_err_retriable(e))
                continue;
            ret = e;
            goto out;
        }
        if (m->key_len == FL_RT_MARKER_KLEN &&
            !memcmp(m->key, FL_RT_MARKER_KEY, FL_RT_MARKER_KLEN)) {
            marker_parse(rt, m->payload, m->len, offsets);
            any_marker = true;
        } else if (m->key_len > 0) {
            ret = fl_store_restore_apply(s, m->key, m->key_len, m->payload, m->len);
        }
        position = m->offset + 1;
        applied++;
        rd_kafka_message_destroy(m);
        if (ret)
            goto out;
        if (fl_store_pending(s) >= FL_RT_RESTORE_CHUNK) {
            ret = commit_restored(rt, s, offsets, position);
            if (ret)
                goto out;
        }
        if (now_ms() - last_log > 5000) {
            last_log = now_ms();
            fl_log_info("runtime",
                        "restoring %s [%d]: %" PRId64 " records, at %" PRId64 " of %" PRId64,
                        fl_store_name(s), partition, applied, position, hi);
        }
    }
    ret = commit_restored(rt, s, offsets, position);
    rt->m.restored_records += (uint64_t)applied;
    fl_log_info("runtime", "restored %s [%d]: %" PRId64 " records in %" PRId64 " ms%s",
                fl_store_name(s), partition, applied, now_ms() - t0,
                any_marker ? "" : " (no offsets marker)");
out:
    if (ret)
        fl_store_abort(s);
    if (tpl)
        rd_kafka_topic_partition_list_destroy(tpl);
    if (c) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    return ret;
}

static void task_free(rt_t *rt, rt_task_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < rt->proc->n_stores; i++)
        fl_store_free(t->stores ? t->stores[i] : NULL);
    free(t->stores);
    for (int i = 0; i < FL_RT_MAX_INPUTS; i++)
        queue_free(&t->q[i]);
    free(t);
}

static rt_task_t *task_open(rt_t *rt, int32_t partition)
{
    char err[512];
    rt_task_t *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->partition = partition;
    t->stores = calloc(rt->proc->n_stores ? rt->proc->n_stores : 1, sizeof(*t->stores));
    if (!t->stores)
        goto fail;
    for (size_t i = 0; i < rt->proc->n_stores; i++) {
        const char *name = rt->proc->stores[i];
        const char *changelog = fl_topology_store(rt->topo, name)->changelog;
        char *dir = store_dir(rt, name, partition);
        fl_kv_t *kv = NULL;
        fl_err_t e =
            dir && !mkdir_p(dir) ? fl_kv_rocksdb_open(dir, NULL, &kv, err, sizeof(err)) : FL_ERR_IO;
        if (e) {
            fl_log_error("runtime", "opening store %s at %s: %s", name, dir ? dir : "?",
                         e == FL_ERR_IO && !kv ? err : fl_err_str(e));
            free(dir);
            goto fail;
        }
        free(dir);
        t->stores[i] = fl_store_new(kv, name, changelog, partition);
        /* RocksDB applies each commit on the store's writer thread while
         * the next batch is processed. */
        if (!t->stores[i] ||
            fl_store_set_cache(t->stores[i], (size_t)rt->topo->settings.store_cache_bytes) ||
            fl_store_set_background_writes(t->stores[i], true) ||
            restore_store(rt, t->stores[i], changelog, partition))
            goto fail;
    }
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        bool found = false;
        t->next_offset[i] = -1;
        /* Every store holds the same offsets; the first one is read. */
        if (rt->proc->n_stores && fl_store_offset(t->stores[0], rt->proc->inputs[i], partition,
                                                  &t->next_offset[i], &found))
            goto fail;
        if (!found)
            t->next_offset[i] = -1;
        t->empty_since[i] = now_ms();
    }
    /* What is in Kafka already must be merged in order, even before the
     * first fetch of an input returns: ask the broker where each ends. */
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            rt->consumer, rt->proc->inputs[i], partition, &lo, &hi, 10000);
        t->known_end[i] = kerr ? -1 : hi;
        if (kerr)
            fl_log_warn("runtime", "end offset of %s [%d] unknown: %s", rt->proc->inputs[i],
                        partition, rd_kafka_err2str(kerr));
    }
    t->ctx.topo = rt->topo;
    t->ctx.proc = rt->proc;
    t->ctx.partition = partition;
    t->ctx.stores = t->stores;
    t->ctx.forward = rt_forward;
    t->ctx.count = rt_count;
    t->ctx.opaque = rt;
    return t;
fail:
    task_free(rt, t);
    return NULL;
}

/* ---- rebalancing ----------------------------------------------------------------------------- */

static void close_all_tasks(rt_t *rt)
{
    for (int32_t p = 0; p < rt->n_partitions; p++) {
        task_free(rt, rt->tasks[p]);
        rt->tasks[p] = NULL;
    }
}

static void rt_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rt_t *rt = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Open every task first, then assign each input at the offsets in
         * its stores: never Kafka's committed offsets. */
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (p < 0 || p >= rt->n_partitions) {
                fl_log_error("runtime", "assigned partition %d outside the topology's %d", p,
                             rt->n_partitions);
                rt->fatal = true;
                continue;
            }
            if (!rt->tasks[p] && !rt->fatal) {
                rt->tasks[p] = task_open(rt, p);
                if (!rt->tasks[p])
                    rt->fatal = true;
            }
        }
        for (int i = 0; i < parts->cnt && !rt->fatal; i++) {
            rt_task_t *t = rt->tasks[parts->elems[i].partition];
            int idx = input_index(rt, parts->elems[i].topic);
            parts->elems[i].offset = idx >= 0 && t->next_offset[idx] >= 0
                                         ? t->next_offset[idx]
                                         : RD_KAFKA_OFFSET_BEGINNING;
        }
        fl_log_info("runtime", "assigned %d partitions", parts->cnt);
        rd_kafka_assign(rk, rt->fatal ? NULL : parts);
        rt->assigned = rt->fatal ? 0 : parts->cnt;
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

/* ---- the batch ------------------------------------------------------------------------------- */

static void route(rt_t *rt, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int idx = input_index(rt, topic);
    rt_task_t *t =
        m->partition >= 0 && m->partition < rt->n_partitions ? rt->tasks[m->partition] : NULL;
    if (idx < 0 || !t) {
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        t->caught_up[idx] = true;
        rd_kafka_message_destroy(m);
        return;
    }
    rt_entry_t e = {.m = m, .ts = rd_kafka_message_timestamp(m, NULL)};
    if (rt->input_is_event[idx]) {
        char err[512];
        fl_err_t rc = m->payload ? fl_codec_decode(rt->codec, m->payload, m->len, &e.ev, NULL, err,
                                                   sizeof(err))
                                 : (snprintf(err, sizeof(err), "null value"), FL_ERR_INVALID);
        if (!rc && !fl_event_type_on_topic(e.ev.type, topic)) {
            snprintf(err, sizeof(err), "%s events do not belong on %s",
                     fl_event_desc(e.ev.type)->name, topic);
            rc = FL_ERR_INVALID;
        }
        if (!rc)
            rc = fl_event_validate(&e.ev, err, sizeof(err));
        if (rc) {
            fl_event_clear(&e.ev);
            e.decode_err = rc;
            e.errmsg = strdup(err);
            e.ts = INT64_MIN; /* dead letters go first: they touch no state */
        } else {
            e.ts = e.ev.occurred_at;
        }
    }
    t->caught_up[idx] = false;
    rt->m.records_in++;
    if (queue_push(&t->q[idx], &e)) {
        entry_clear(&e);
        rt->fatal = true;
    }
}

/*
 * True when input i of task t is empty but must be waited for: records
 * are known to exist beyond what was processed (the end offset asked at
 * assignment or the high watermark of the last fetch says so: wait, up to
 * FL_RT_MAX_LAG_WAIT_MS), or nothing is known and the input has been
 * empty for less than max_idle_ms. This is what makes the
 * merge deterministic when the inputs are already in Kafka, as in a replay.
 */
#define FL_RT_MAX_LAG_WAIT_MS 30000
static bool must_wait(rt_t *rt, rt_task_t *t, size_t i, int64_t now)
{
    int64_t lo = -1, hi = -1;
    if (t->caught_up[i])
        return false;
    if (rd_kafka_get_watermark_offsets(rt->consumer, rt->proc->inputs[i], t->partition, &lo, &hi))
        hi = -1;
    if (t->known_end[i] > hi)
        hi = t->known_end[i];
    if (hi >= 0) {
        int64_t pos = t->next_offset[i] >= 0 ? t->next_offset[i] : lo >= 0 ? lo : 0;
        if (hi <= pos)
            return false; /* caught up */
        if (now - t->empty_since[i] < FL_RT_MAX_LAG_WAIT_MS)
            return true;
        fl_log_warn("runtime", "%s [%d] has records but delivered none for %d ms; merging past it",
                    rt->proc->inputs[i], t->partition, FL_RT_MAX_LAG_WAIT_MS);
        return false;
    }
    return now - t->empty_since[i] < rt->opts.max_idle_ms;
}

/*
 * Picks the input whose head comes next in (timestamp, topic, offset)
 * order, or -1 when an empty input may still deliver an earlier record.
 */
static int next_input(rt_t *rt, rt_task_t *t, int64_t now)
{
    int best = -1;
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        rt_entry_t *e = queue_front(&t->q[i]);
        if (!e) {
            if (rt->proc->n_inputs > 1 && must_wait(rt, t, i, now))
                return -1;
            continue;
        }
        if (best < 0) {
            best = (int)i;
            continue;
        }
        rt_entry_t *b = queue_front(&t->q[best]);
        int c = e->ts < b->ts   ? -1
                : e->ts > b->ts ? 1
                                : strcmp(rt->proc->inputs[i], rt->proc->inputs[best]);
        if (c < 0)
            best = (int)i;
    }
    return best;
}

static fl_err_t process_task(rt_t *rt, rt_task_t *t, int64_t now)
{
    char err[512];
    int i;

    while (!rt->fatal && (i = next_input(rt, t, now)) >= 0) {
        rt_entry_t *e = queue_front(&t->q[i]);
        fl_err_t rc;
        if (e->decode_err) {
            rc = rt_dead_letter(rt, e->m, "decode", e->decode_err, e->errmsg);
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
            rc = rt_begin(rt);
            if (!rc)
                rc = rt->def->process(&t->ctx, &rec, err, sizeof(err));
            if (rc == FL_ERR_INVALID)
                rc = rt_dead_letter(rt, e->m, rt->def->name, rc, err);
            else if (rc)
                fl_log_error("runtime", "%s failed on %s [%d] @%" PRId64 ": %s", rt->def->name,
                             rec.topic, rec.partition, rec.offset, err);
        }
        if (rc)
            return rc;
        t->next_offset[i] = e->m->offset + 1;
        t->dirty = true;
        queue_pop(&t->q[i]);
        if (!t->q[i].n)
            t->empty_since[i] = now;
    }
    return FL_OK;
}

typedef struct changelog_ctx {
    rt_t *rt;
    const char *topic;
    int32_t partition;
    fl_err_t err;
} changelog_ctx_t;

static int produce_change(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    changelog_ctx_t *c = arg;
    c->err = rt_produce(c->rt, c->topic, c->partition, key, klen, val, val ? vlen : 0, NULL, NULL);
    return c->err != FL_OK;
}

/* Drops every uncommitted change and re-reads each task's inputs from the
 * offsets in its stores. */
static void rewind_tasks(rt_t *rt)
{
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(8);
    for (int32_t p = 0; p < rt->n_partitions; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t)
            continue;
        for (size_t s = 0; s < rt->proc->n_stores; s++)
            fl_store_abort(t->stores[s]);
        for (size_t i = 0; i < rt->proc->n_inputs; i++) {
            bool found = false;
            queue_free(&t->q[i]);
            t->caught_up[i] = false;
            t->next_offset[i] = -1;
            if (rt->proc->n_stores &&
                fl_store_offset(t->stores[0], rt->proc->inputs[i], p, &t->next_offset[i], &found)) {
                /* e.g. the last background write failed: restart, restore */
                fl_log_error("runtime", "rewind: store %s [%d]: %s", fl_store_name(t->stores[0]), p,
                             fl_store_errmsg(t->stores[0]));
                rt->fatal = true;
            }
            if (!found)
                t->next_offset[i] = -1;
            rd_kafka_topic_partition_list_add(tpl, rt->proc->inputs[i], p)->offset =
                found ? t->next_offset[i] : RD_KAFKA_OFFSET_BEGINNING;
        }
        t->dirty = false;
    }
    rd_kafka_error_t *e = rd_kafka_seek_partitions(rt->consumer, tpl, 10000);
    if (e) {
        fl_log_error("runtime", "rewind: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rt->fatal = true;
    }
    rd_kafka_topic_partition_list_destroy(tpl);
}

/* Aborts the open transaction, if any, and redoes the batch from the
 * stored offsets. */
static void abandon_batch(rt_t *rt)
{
    if (rt->in_txn && !rt->fatal) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(rt->producer, 60000);
        if (e) {
            fl_log_error("runtime", "abort_transaction: %s", rd_kafka_error_string(e));
            rt->fatal = true;
            rd_kafka_error_destroy(e);
        }
    }
    rt->in_txn = false;
    rewind_tasks(rt);
}

/*
 * Commits the batch: changelog records and a marker per dirty task into
 * the open transaction, commit it, then commit every store. On a failed
 * transaction the batch is abandoned and redone.
 */
static fl_err_t commit_batch(rt_t *rt)
{
    int64_t t0 = now_ms(), t1, t2;
    fl_err_t err = FL_OK;
    bool any = false;

    for (int32_t p = 0; p < rt->n_partitions && !err; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t || !t->dirty)
            continue;
        any = true;
        for (size_t s = 0; s < rt->proc->n_stores && !err; s++) {
            const fl_store_t *st = t->stores[s];
            changelog_ctx_t c = {rt, fl_topology_store(rt->topo, fl_store_name(st))->changelog, p,
                                 FL_OK};
            err = fl_store_changes(t->stores[s], produce_change, &c);
            if (c.err)
                err = c.err;
            if (!err) {
                char val[2048];
                size_t vlen = marker_value(rt, t, val, sizeof(val));
                t->marker_offset[s] = -1;
                err = rt_produce(rt, c.topic, p, FL_RT_MARKER_KEY, FL_RT_MARKER_KLEN, val, vlen,
                                 NULL, &t->marker_offset[s]);
            }
        }
    }
    if (!any && !rt->in_txn)
        return FL_OK;
    t1 = now_ms();
    if (!err) {
        rt->delivery_failures = 0;
        for (int attempt = 0;; attempt++) {
            rd_kafka_error_t *e = rd_kafka_commit_transaction(rt->producer, 60000);
            if (!e)
                break;
            fl_log_warn("runtime", "commit_transaction (attempt %d): %s", attempt + 1,
                        rd_kafka_error_string(e));
            if (rd_kafka_error_is_retriable(e) && attempt < 10 && !fl_rt_stop) {
                rd_kafka_error_destroy(e);
                usleep((useconds_t)(100000 << (attempt < 5 ? attempt : 5)));
                continue;
            }
            if (rd_kafka_error_is_fatal(e))
                rt->fatal = true;
            err = FL_ERR_UNAVAILABLE;
            rd_kafka_error_destroy(e);
            break;
        }
    }
    if (err) {
        rt->m.commit_failures++;
        abandon_batch(rt);
        return err;
    }
    rt->in_txn = false;
    t2 = now_ms();
    /* The transaction is in Kafka: now the stores, each with its offsets. */
    for (int32_t p = 0; p < rt->n_partitions && !err; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t || !t->dirty)
            continue;
        fl_store_offset_t offs[FL_RT_MAX_INPUTS];
        size_t n = 0;
        for (size_t i = 0; i < rt->proc->n_inputs; i++)
            if (t->next_offset[i] >= 0)
                offs[n++] = (fl_store_offset_t){rt->proc->inputs[i], p, t->next_offset[i]};
        for (size_t s = 0; s < rt->proc->n_stores && !err; s++) {
            /* The store now reflects its changelog up to its marker. */
            int64_t pos = t->marker_offset[s] >= 0 ? t->marker_offset[s] + 1 : -1;
            err = fl_store_commit(t->stores[s], offs, n, pos);
            if (err)
                fl_log_error("runtime", "committing store %s [%d]: %s", fl_store_name(t->stores[s]),
                             p, fl_store_errmsg(t->stores[s]));
        }
        t->dirty = false;
    }
    if (err)
        rt->fatal = true; /* the store is behind its changelog: restart restores it */
    rt->m.commits++;
    rt->m.commit_ms_sum += (double)(now_ms() - t0);
    rt->m.phase_ms_sum[0] += (double)(t1 - t0);
    rt->m.phase_ms_sum[1] += (double)(t2 - t1);
    rt->m.phase_ms_sum[2] += (double)(now_ms() - t2);
    return err;
}

/* ---- metrics --------------------------------------------------------------------------------- */

static enum MHD_Result rt_http(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    rt_t *rt = cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned status = MHD_HTTP_OK;
    char *body;

    if (strcmp(method, "GET")) {
        body = strdup("{\"error\":\"method not allowed\"}\n");
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (!strcmp(url, "/metrics")) {
        pthread_mutex_lock(&rt->snap_lock);
        body = strdup(rt->snapshot ? rt->snapshot : "");
        pthread_mutex_unlock(&rt->snap_lock);
    } else if (!strcmp(url, "/healthz")) {
        body = strdup("{\"status\":\"ok\"}\n");
    } else {
        body = strdup("{\"error\":\"not found\"}\n");
        status = MHD_HTTP_NOT_FOUND;
    }
    if (!body)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type",
                            !strcmp(url, "/metrics") ? "text/plain; version=0.0.4"
                                                     : "application/json");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The stores' read caches: hits, misses, evictions and size. */
static void metrics_cache(rt_t *rt, FILE *f)
{
    static const char *const names[] = {"hits_total", "misses_total", "evictions_total", "bytes"};
    for (size_t m = 0; m < sizeof(names) / sizeof(names[0]); m++) {
        fprintf(f, "# TYPE feedline_store_cache_%s %s\n", names[m], m < 3 ? "counter" : "gauge");
        for (int32_t p = 0; p < rt->n_partitions; p++) {
            rt_task_t *t = rt->tasks[p];
            for (size_t s = 0; t && s < rt->proc->n_stores; s++) {
                fl_store_cache_stats_t st;
                fl_store_cache_stats(t->stores[s], &st);
                uint64_t v = m == 0   ? st.hits
                             : m == 1 ? st.misses
                             : m == 2 ? st.evictions
                                      : st.bytes;
                fprintf(f, "feedline_store_cache_%s{store=\"%s\",partition=\"%d\"} %" PRIu64 "\n",
                        names[m], fl_store_name(t->stores[s]), p, v);
            }
        }
    }
}

static void render_metrics(rt_t *rt)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    const char *n = rt->proc->name;

    if (!f)
        return;
    fprintf(f, "# TYPE feedline_records_in_total counter\n");
    fprintf(f, "feedline_records_in_total{processor=\"%s\"} %" PRIu64 "\n", n, rt->m.records_in);
    fprintf(f, "# TYPE feedline_records_out_total counter\n");
    fprintf(f, "feedline_records_out_total{processor=\"%s\"} %" PRIu64 "\n", n, rt->m.records_out);
    fprintf(f, "# TYPE feedline_dead_letters_total counter\n");
    fprintf(f, "feedline_dead_letters_total{processor=\"%s\"} %" PRIu64 "\n", n,
            rt->m.dead_letters);
    fprintf(f, "# TYPE feedline_batches_total counter\n");
    fprintf(f, "feedline_batches_total{processor=\"%s\"} %" PRIu64 "\n", n, rt->m.batches);
    fprintf(f, "# TYPE feedline_batch_seconds_sum counter\n");
    fprintf(f, "feedline_batch_seconds_sum{processor=\"%s\"} %.3f\n", n, rt->m.batch_ms_sum / 1e3);
    fprintf(f, "# TYPE feedline_commits_total counter\n");
    fprintf(f, "feedline_commits_total{processor=\"%s\"} %" PRIu64 "\n", n, rt->m.commits);
    fprintf(f, "# TYPE feedline_commit_failures_total counter\n");
    fprintf(f, "feedline_commit_failures_total{processor=\"%s\"} %" PRIu64 "\n", n,
            rt->m.commit_failures);
    fprintf(f, "# TYPE feedline_commit_seconds_sum counter\n");
    fprintf(f, "feedline_commit_seconds_sum{processor=\"%s\"} %.3f\n", n,
            rt->m.commit_ms_sum / 1e3);
    /* Where commits spend their time: producing the changelogs, committing
     * the Kafka transaction (waiting for every record's acknowledgement),
     * writing the stores. */
    fprintf(f, "# TYPE feedline_commit_phase_seconds_sum counter\n");
    for (int i = 0; i < 3; i++)
        fprintf(f, "feedline_commit_phase_seconds_sum{processor=\"%s\",phase=\"%s\"} %.3f\n", n,
                i == 0   ? "changelog"
                : i == 1 ? "transaction"
                         : "stores",
                rt->m.phase_ms_sum[i] / 1e3);
    fprintf(f, "# TYPE feedline_assigned_partitions gauge\n");
    fprintf(f, "feedline_assigned_partitions{processor=\"%s\"} %d\n", n, rt->assigned);
    fprintf(f, "# TYPE feedline_restored_records_total counter\n");
    fprintf(f, "feedline_restored_records_total{processor=\"%s\"} %" PRIu64 "\n", n,
            rt->m.restored_records);
    for (int i = 0; i < FL_RT_MAX_COUNTERS && rt->m.counter_names[i]; i++) {
        fprintf(f, "# TYPE feedline_%s_total counter\n", rt->m.counter_names[i]);
        fprintf(f, "feedline_%s_total{processor=\"%s\"} %" PRIu64 "\n", rt->m.counter_names[i], n,
                rt->m.counters[i]);
    }
    fprintf(f, "# TYPE feedline_consumer_lag gauge\n");
    fprintf(f, "# TYPE feedline_store_entries gauge\n");
    fprintf(f, "# TYPE feedline_store_bytes gauge\n");
    for (int32_t p = 0; p < rt->n_partitions; p++) {
        rt_task_t *t = rt->tasks[p];
        if (!t)
            continue;
        for (size_t i = 0; i < rt->proc->n_inputs; i++) {
            int64_t lso = rt->lso[i * (size_t)rt->n_partitions + (size_t)p];
            int64_t pos = t->next_offset[i] > 0 ? t->next_offset[i] : 0;
            if (lso == -1)
                continue; /* not known yet */
            /* -2: fetched to the end; only records still buffered remain. */
            int64_t lag = lso == -2 ? (int64_t)t->q[i].n : lso > pos ? lso - pos : 0;
            fprintf(f,
                    "feedline_consumer_lag{processor=\"%s\",topic=\"%s\",partition=\"%d\"} "
                    "%" PRId64 "\n",
                    n, rt->proc->inputs[i], p, lag);
        }
        for (size_t s = 0; s < rt->proc->n_stores; s++) {
            fl_kv_stats_t st;
            if (fl_kv_stats(fl_store_kv(t->stores[s]), &st, NULL, 0))
                continue;
            fprintf(f, "feedline_store_entries{store=\"%s\",partition=\"%d\"} %" PRIu64 "\n",
                    fl_store_name(t->stores[s]), p, st.entries);
            fprintf(f, "feedline_store_bytes{store=\"%s\",partition=\"%d\"} %" PRIu64 "\n",
                    fl_store_name(t->stores[s]), p, st.bytes);
        }
    }
    metrics_cache(rt, f);
    fclose(f);
    pthread_mutex_lock(&rt->snap_lock);
    free(rt->snapshot);
    rt->snapshot = buf;
    pthread_mutex_unlock(&rt->snap_lock);
}

static int start_metrics(rt_t *rt)
{
    const char *addr = rt->opts.metrics_addr;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    struct sockaddr_in sa = {0};

    if (!addr || !*addr)
        return 0;
    if (!colon) {
        fl_log_error("runtime", "--metrics wants HOST:PORT, got %s", addr);
        return -1;
    }
    char host[64];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fl_log_error("runtime", "--metrics: bad IPv4 address %s", host);
        return -1;
    }
    rt->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                               rt_http, rt, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!rt->mhd) {
        fl_log_error("runtime", "cannot serve metrics on %s", addr);
        return -1;
    }
    fl_log_info("runtime", "metrics on http://%s/metrics", addr);
    return 0;
}

/* ---- start-up and the loop ------------------------------------------------------------------- */

static void usage(const fl_processor_def_t *def, FILE *out)
{
    fprintf(out,
            "usage: feedline-%s [options]\n\n"
            "Runs the %s processor: joins consumer group of the topology's processor entry,\n"
            "restores its stores from their changelogs and processes until SIGINT/SIGTERM.\n\n"
            "Options:\n"
            "  --topology FILE   topology file   (default $FEEDLINE_TOPOLOGY or "
            "topology/feedline.yaml)\n"
            "  --schemas DIR     schema folder   (default $FEEDLINE_SCHEMAS or schemas)\n"
            "  --state-dir DIR   local stores    (default $FEEDLINE_STATE_DIR or .state)\n"
            "  --instance ID     instance id, unique per running instance; names the\n"
            "                    transactional producer and the store folder (default 0)\n"
            "  --metrics H:P     serve /metrics and /healthz on H:P (default off)\n"
            "  --max-idle-ms N   how long a task waits for an empty input before merging\n"
            "                    past it (default 200)\n",
            def->name, def->name);
}

static int parse_opts(const fl_processor_def_t *def, int argc, char **argv, rt_opts_t *o)
{
    static const struct option lo[] = {{"topology", required_argument, NULL, 't'},
                                       {"schemas", required_argument, NULL, 's'},
                                       {"state-dir", required_argument, NULL, 'd'},
                                       {"instance", required_argument, NULL, 'i'},
                                       {"metrics", required_argument, NULL, 'm'},
                                       {"max-idle-ms", required_argument, NULL, 'w'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    o->topology_path = fl_topology_default_path();
    o->schemas_dir = fl_codec_default_dir();
    o->state_dir = getenv("FEEDLINE_STATE_DIR") ? getenv("FEEDLINE_STATE_DIR") : ".state";
    o->instance = getenv("FEEDLINE_INSTANCE") ? getenv("FEEDLINE_INSTANCE") : "0";
    o->metrics_addr = NULL;
    o->max_idle_ms = 200;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            o->topology_path = optarg;
            break;
        case 's':
            o->schemas_dir = optarg;
            break;
        case 'd':
            o->state_dir = optarg;
            break;
        case 'i':
            o->instance = optarg;
            break;
        case 'm':
            o->metrics_addr = optarg;
            break;
        case 'w':
            o->max_idle_ms = atoi(optarg);
            break;
        case 'h':
            usage(def, stdout);
            return 1;
        default:
            usage(def, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(def, stderr);
        return 2;
    }
    return 0;
}

static rd_kafka_t *make_producer(rt_t *rt)
{
    char err[512], txid[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(txid, sizeof(txid), "%s-%s", rt->proc->group, rt->opts.instance);
    const char *props[][2] = {{"bootstrap.servers", rt->topo->endpoints.kafka},
                              {"transactional.id", txid},
                              {"enable.idempotence", "true"},
                              {"acks", "all"},
                              {"partitioner", "murmur2_random"},
                              {"linger.ms", "5"},
                              {"batch.num.messages", "10000"},
                              {"queue.buffering.max.messages", "1000000"},
                              {"compression.type", "lz4"},
                              {"transaction.timeout.ms", "15000"}};
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err))) {
            fl_log_error("runtime", "producer config %s: %s", props[i][0], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, rt_dr_cb);
    rd_kafka_conf_set_opaque(conf, rt);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fl_log_error("runtime", "producer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* Fences any earlier incarnation of this instance and aborts its open
     * transaction; retried while the cluster comes up. */
    for (int attempt = 1; !fl_rt_stop; attempt++) {
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

static rd_kafka_t *make_consumer(rt_t *rt)
{
    char err[512], member[256];
    /* Static membership: a restarted instance takes its partitions back at
     * once instead of waiting for a rebalance. */
    snprintf(member, sizeof(member), "%s-%s", rt->proc->group, rt->opts.instance);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[][2] = {{"bootstrap.servers", rt->topo->endpoints.kafka},
                              {"group.id", rt->proc->group},
                              {"partition.assignment.strategy", "range"},
                              {"enable.auto.commit", "false"},
                              {"enable.auto.offset.store", "false"},
                              {"auto.offset.reset", "earliest"},
                              {"isolation.level", "read_committed"},
                              {"enable.partition.eof", "true"},
                              {"fetch.wait.max.ms", "50"},
                              {"session.timeout.ms", "10000"},
                              {"heartbeat.interval.ms", "1000"},
                              {"max.poll.interval.ms", "300000"},
                              {"group.instance.id", member},
                              {"statistics.interval.ms", "1000"}};
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err))) {
            fl_log_error("runtime", "consumer config %s: %s", props[i][0], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_rebalance_cb(conf, rt_rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, rt_stats_cb);
    rd_kafka_conf_set_opaque(conf, rt);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        fl_log_error("runtime", "consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int setup(rt_t *rt)
{
    char err[512];

    rt->topo = fl_topology_load(rt->opts.topology_path, err, sizeof(err));
    if (!rt->topo) {
        fl_log_error("runtime", "%s", err);
        return -1;
    }
    rt->proc = fl_topology_processor(rt->topo, rt->def->name);
    if (!rt->proc || rt->proc->n_inputs == 0 || rt->proc->n_inputs > FL_RT_MAX_INPUTS ||
        rt->proc->n_stores > FL_RT_MAX_STORES) {
        fl_log_error("runtime", "processor %s missing from %s or has no inputs", rt->def->name,
                     rt->opts.topology_path);
        return -1;
    }
    rt->n_partitions = fl_topology_topic(rt->topo, rt->proc->inputs[0])->partitions;
    for (size_t i = 0; i < rt->proc->n_inputs; i++) {
        const fl_topic_t *t = fl_topology_topic(rt->topo, rt->proc->inputs[i]);
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
    if (!rt->tasks || !rt->lso)
        return -1;
    for (size_t i = 0; i < rt->proc->n_inputs * (size_t)rt->n_partitions; i++)
        rt->lso[i] = -1;
    if (start_metrics(rt))
        return -1;
    rt->producer = make_producer(rt);
    if (!rt->producer)
        return -1;
    rt->consumer = make_consumer(rt);
    if (!rt->consumer)
        return -1;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < rt->proc->n_inputs; i++)
        rd_kafka_topic_partition_list_add(sub, rt->proc->inputs[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(rt->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (kerr) {
        fl_log_error("runtime", "subscribe: %s", rd_kafka_err2str(kerr));
        return -1;
    }
    fl_log_info("runtime", "%s started: group %s, instance %s, %d partitions, state in %s",
                rt->proc->name, rt->proc->group, rt->opts.instance, rt->n_partitions,
                rt->opts.state_dir);
    return 0;
}

static void run_loop(rt_t *rt)
{
    const fl_settings_t *cfg = &rt->topo->settings;
    int backoff_ms = 100;

    while (!fl_rt_stop && !rt->fatal) {
        int64_t start = now_ms(), deadline = start + cfg->batch_max_ms;
        int64_t polled = 0;
        while (polled < cfg->batch_max_records && !fl_rt_stop) {
            int64_t left = deadline - now_ms();
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rt->consumer, left > 0 ? (int)left : 0);
            if (!m) {
                if (left <= 0)
                    break;
                continue;
            }
            if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fl_log_warn("runtime", "consumer: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            route(rt, m);
            polled++;
        }
        fl_err_t err = FL_OK;
        int64_t now = now_ms();
        for (int32_t p = 0; p < rt->n_partitions && !err && !rt->fatal; p++)
            if (rt->tasks[p])
                err = process_task(rt, rt->tasks[p], now);
        if (err && !fl_err_retriable(err) && err != FL_ERR_TIMEOUT) {
            rt->fatal = true;
            break;
        }
        if (!err)
            err = commit_batch(rt);
        else
            abandon_batch(rt);
        rd_kafka_poll(rt->producer, 0);
        if (err) {
            fl_log_warn("runtime", "batch not committed (%s); retrying in %d ms", fl_err_str(err),
                        backoff_ms);
            usleep((useconds_t)backoff_ms * 1000);
            backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
        } else {
            backoff_ms = 100;
            rt->m.batches++;
            rt->m.batch_ms_sum += (double)(now_ms() - start);
        }
        if (rt->mhd && now_ms() - rt->last_snapshot_ms >= 1000) {
            rt->last_snapshot_ms = now_ms();
            render_metrics(rt);
        }
    }
}

int fl_runtime_main(const fl_processor_def_t *def, int argc, char **argv)
{
    rt_t rt = {.def = def};
    int ret = 1;

    fl_log_init();
    int rc = parse_opts(def, argc, argv, &rt.opts);
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
    fl_codec_free(rt.codec);
    fl_topology_free(rt.topo);
    pthread_mutex_destroy(&rt.snap_lock);
    return ret;
}
