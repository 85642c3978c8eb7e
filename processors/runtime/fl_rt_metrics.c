/*
 * fl_rt_metrics.c - the runtime's metrics: librdkafka's statistics (for
 * consumer lag), the Prometheus text the processing thread renders once a
 * second, and the HTTP endpoint (libmicrohttpd's own thread) that serves
 * the last rendering under snap_lock. Nothing here blocks processing.
 */
#include "fl_log.h"
#include "fl_rt_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consumer statistics (once a second, served by the poll loop): keeps each
 * partition's last stable offset, the end a read-committed consumer can
 * reach, so that lag never counts transaction markers. (librdkafka's own
 * consumer_lag is relative to Kafka-committed offsets, which feedline does
 * not use.) */
int fl__rt_stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
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
            struct rt_fetch *f = &rt->fetch[i * (size_t)rt->n_partitions + (size_t)p];
            const char *state = json_string_value(json_object_get(part, "fetch_state"));
            json_t *hi = json_object_get(part, "hi_offset");
            snprintf(f->state, sizeof(f->state), "%s", state ? state : "?");
            f->fetchq = json_is_integer(fetchq) ? json_integer_value(fetchq) : -1;
            f->next_offset = json_is_integer(next) ? json_integer_value(next) : -1;
            f->hi_offset = json_is_integer(hi) ? json_integer_value(hi) : -1;
            int64_t v = json_is_integer(lso) ? json_integer_value(lso) : -1;
            /* Everything fetched was delivered and the fetcher stands at the
             * end: what lies between the last record and the end are only
             * transaction markers, which are not lag. */
            if (v >= 0 && json_is_integer(next) && json_integer_value(next) >= v &&
                json_is_integer(fetchq) && json_integer_value(fetchq) == 0)
                v = -2;
            /* a point-in-time rebuild's input ends at its bound */
            rt->lso[i * (size_t)rt->n_partitions + (size_t)p] = fl__rt_until_end(rt, i, p, v);
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

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

void fl__rt_metrics_render(rt_t *rt)
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
    static const char *const phases[] = {"changelog", "offsets", "transaction", "stores"};
    for (int i = 0; i < 4; i++)
        fprintf(f, "feedline_commit_phase_seconds_sum{processor=\"%s\",phase=\"%s\"} %.3f\n", n,
                phases[i], rt->m.phase_ms_sum[i] / 1e3);
    fprintf(f, "# TYPE feedline_fenced_batches_total counter\n");
    fprintf(f, "feedline_fenced_batches_total{processor=\"%s\"} %" PRIu64 "\n", n, rt->m.fenced);
    fprintf(f, "# TYPE feedline_producer_resets_total counter\n");
    fprintf(f, "feedline_producer_resets_total{processor=\"%s\"} %" PRIu64 "\n", n,
            rt->m.producer_resets);
    fprintf(f, "# TYPE feedline_consumer_resets_total counter\n");
    fprintf(f, "feedline_consumer_resets_total{processor=\"%s\"} %" PRIu64 "\n", n,
            rt->m.consumer_resets);
    fprintf(f, "# TYPE feedline_store_wipes_total counter\n");
    for (int i = 0; i < FL_WIPE__COUNT; i++)
        fprintf(f, "feedline_store_wipes_total{processor=\"%s\",reason=\"%s\"} %" PRIu64 "\n", n,
                fl_wipe_reason_name(i), rt->m.wipes[i]);
    fprintf(f, "# TYPE feedline_state_dirs_removed_total counter\n");
    fprintf(f, "feedline_state_dirs_removed_total{processor=\"%s\"} %" PRIu64 "\n", n,
            rt->m.dirs_removed);
    fprintf(f, "# TYPE feedline_input_pauses_total counter\n");
    fprintf(f, "feedline_input_pauses_total{processor=\"%s\"} %" PRIu64 "\n", n, rt->m.pauses);
    int restoring = 0;
    for (int32_t p = 0; p < rt->n_partitions; p++)
        restoring += rt->tasks[p] && rt->tasks[p]->restoring;
    fprintf(f, "# TYPE feedline_restoring_tasks gauge\n");
    fprintf(f, "feedline_restoring_tasks{processor=\"%s\"} %d\n", n, restoring);
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
    if (rt->sink) {
        fl__rt_sink_metrics(rt, f);
        goto done;
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
            int64_t pos = fl_merge_position(t->merge, i) > 0 ? fl_merge_position(t->merge, i) : 0;
            if (lso == -1)
                continue; /* not known yet */
            /* -2: fetched to the end; only records still buffered remain. */
            int64_t lag = lso == -2   ? (int64_t)fl_merge_buffered(t->merge, i)
                          : lso > pos ? lso - pos
                                      : 0;
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
done:
    fclose(f);
    pthread_mutex_lock(&rt->snap_lock);
    free(rt->snapshot);
    rt->snapshot = buf;
    pthread_mutex_unlock(&rt->snap_lock);
}

int fl__rt_metrics_start(rt_t *rt)
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
