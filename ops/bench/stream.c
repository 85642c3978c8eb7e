/*
 * stream.c - benchmark of the stream core's processing without Kafka: the
 * fan-out and timeline processors on RocksDB stores, through the topology
 * driver (the runtime's store layers, batches and changelog capture), on
 * the loadgen's seeded network.
 *
 *   feedline-bench-stream [--users N] [--posts-per-user X] [--following F]
 *                         [--likes-per-post L] [--seed S] [--batch N]
 *                         [--partition P] [--bulk] [--dir DIR]
 *
 * The backlog goes first through the fan-out of every partition (phase
 * "fanout", its timeline operations kept in memory), then those of
 * partition --partition (default 0; -1: every partition) through the
 * timeline processor (phase "timeline"). Each phase prints records/s and
 * deliveries/s (recipient-posts of the timeline operations) on one core,
 * the time of its final flush included. --bulk opens the stores in
 * bulk-load mode, as `feedline replay` does; --batch is the records per
 * commit (default: the topology's replay_batch_max_records). The network
 * options are the loadgen's, so a run here matches the replay benchmark's
 * workload partition for partition.
 */
#include "fl_driver.h"
#include "fl_fanout.h"
#include "fl_netgen.h"
#include "fl_partition.h"
#include "fl_timeline.h"
#include "fl_tlop.h"
#include "fl_topics.h"
#include "fl_topology.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FL_DEFAULT_TOPOLOGY
#define FL_DEFAULT_TOPOLOGY "topology/feedline.yaml"
#endif

typedef struct op_rec {
    void *key, *val;
    size_t klen, vlen;
    int32_t partition;
} op_rec_t;

typedef struct ops {
    op_rec_t *v;
    size_t n, cap;
    uint64_t deliveries[64]; /* per timeline-ops partition */
} ops_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (!q) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(q, p, n);
    return q;
}

/* Moves the fan-out's timeline operations out of d into ops. */
static void take_ops(fl_driver_t *d, ops_t *ops)
{
    size_t n;
    const fl_driver_record_t *r = fl_driver_outputs(d, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(r[i].topic, FL_TOPIC_TIMELINE_OPS) || !r[i].value)
            continue;
        if (ops->n == ops->cap) {
            ops->cap = ops->cap ? ops->cap * 2 : 4096;
            ops->v = realloc(ops->v, ops->cap * sizeof(*ops->v));
            if (!ops->v) {
                fprintf(stderr, "out of memory\n");
                exit(1);
            }
        }
        fl_tlop_t op;
        char err[256];
        if (fl_tlop_decode(r[i].value, r[i].vlen, &op, err, sizeof(err)) == FL_OK) {
            if (r[i].partition >= 0 && r[i].partition < 64)
                ops->deliveries[r[i].partition] += (uint64_t)op.n_posts * op.n_recipients;
            fl_tlop_clear(&op);
        }
        ops->v[ops->n++] =
            (op_rec_t){dup_bytes(r[i].key, r[i].klen), dup_bytes(r[i].value, r[i].vlen), r[i].klen,
                       r[i].vlen, r[i].partition};
    }
    fl_driver_clear_outputs(d);
}

static void check(fl_err_t e, const char *what, const char *err)
{
    if (e) {
        fprintf(stderr, "%s: %s (%s)\n", what, fl_err_str(e), err);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    fl_netgen_opts_t no;
    fl_netgen_opts_default(&no);
    no.users = 12000;
    no.posts_per_user = 8.34;
    no.mean_following = 50;
    no.likes_per_post = 2;
    no.seed = 42;
    const char *topo_path = FL_DEFAULT_TOPOLOGY, *dir = NULL;
    long batch = 0;
    int only = 0;
    bool bulk = false;
    static const struct option lo[] = {{"users", required_argument, NULL, 'u'},
                                       {"posts-per-user", required_argument, NULL, 'p'},
                                       {"following", required_argument, NULL, 'f'},
                                       {"likes-per-post", required_argument, NULL, 'l'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"batch", required_argument, NULL, 'b'},
                                       {"partition", required_argument, NULL, 'P'},
                                       {"bulk", no_argument, NULL, 'B'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {"topology", required_argument, NULL, 't'},
                                       {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        switch (c) {
        case 'u':
            no.users = atoll(optarg);
            break;
        case 'p':
            no.posts_per_user = atof(optarg);
            break;
        case 'f':
            no.mean_following = atof(optarg);
            break;
        case 'l':
            no.likes_per_post = atof(optarg);
            break;
        case 's':
            no.seed = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            batch = atol(optarg);
            break;
        case 'P':
            only = atoi(optarg);
            break;
        case 'B':
            bulk = true;
            break;
        case 'd':
            dir = optarg;
            break;
        case 't':
            topo_path = optarg;
            break;
        default:
            fprintf(stderr, "usage: feedline-bench-stream [--users N] [--posts-per-user X] "
                            "[--following F] [--likes-per-post L] [--seed S] [--batch N] "
                            "[--partition P] [--bulk] [--dir DIR] [--topology FILE]\n");
            return 2;
        }
    }
    char err[512];
    fl_topology_t *topo = fl_topology_load(topo_path, err, sizeof(err));
    if (!topo) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    no.celebrity_threshold = topo->settings.celebrity_threshold;
    if (batch <= 0)
        batch = (long)topo->settings.replay_batch_max_records;
    fl_netgen_t *g = fl_netgen_new(&no, err, sizeof(err));
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int32_t in_parts = fl_topology_topic(topo, "posts")->partitions;
    int32_t op_parts = fl_topology_topic(topo, FL_TOPIC_TIMELINE_OPS)->partitions;
    fl_driver_opts_t dopts = {.backend = FL_DRIVER_ROCKSDB,
                              .batch_records = (size_t)batch,
                              .tmp_dir = dir,
                              .runtime_sizes = true,
                              .bulk = bulk};
    fl_driver_t *fan[64];
    if (in_parts > 64 || op_parts > 64) {
        fprintf(stderr, "more than 64 partitions\n");
        return 1;
    }
    for (int32_t p = 0; p < in_parts; p++) {
        fan[p] = fl_driver_new_opts(topo, &fl_fanout_processor, p, &dopts, err, sizeof(err));
        if (!fan[p]) {
            fprintf(stderr, "fanout driver: %s\n", err);
            return 1;
        }
    }

    /* Phase 1: the backlog through the fan-out. */
    ops_t ops = {0};
    uint64_t events = 0, fan_in = 0;
    fl_event_t ev;
    memset(&ev, 0, sizeof(ev));
    double t0 = now_s();
    while (fl_netgen_backlog_next(g, &ev)) {
        const char *topic = fl_event_desc(ev.type)->topic;
        events++;
        if (!strcmp(topic, "posts") || !strcmp(topic, "follows")) {
            char key[32];
            fl_event_key(&ev, key, sizeof(key));
            int32_t p = fl_partition_for_key(key, strlen(key), in_parts);
            fl_err_t e = fl_driver_pipe_event(fan[p], topic, &ev, err, sizeof(err));
            if (e && e != FL_ERR_INVALID)
                check(e, "fanout", err);
            fan_in++;
            take_ops(fan[p], &ops);
        }
        fl_event_clear(&ev);
    }
    for (int32_t p = 0; p < in_parts; p++) {
        check(fl_driver_flush(fan[p], err, sizeof(err)), "fanout flush", err);
        take_ops(fan[p], &ops);
    }
    double t1 = now_s();
    uint64_t all_deliveries = 0;
    for (int32_t p = 0; p < op_parts; p++)
        all_deliveries += ops.deliveries[p];
    printf("network: %" PRId64 " users, %" PRIu64 " events, %" PRIu64
           " to the fan-out, %zu timeline operations, %" PRIu64 " deliveries\n",
           no.users, events, fan_in, ops.n, all_deliveries);
    printf("fanout: %" PRIu64 " records in %.2f s: %.0f records/s, %.0f deliveries/s "
           "(every partition, one core)\n",
           fan_in, t1 - t0, fan_in / (t1 - t0), all_deliveries / (t1 - t0));
    for (int32_t p = 0; p < in_parts; p++)
        fl_driver_free(fan[p]);

    /* Phase 2: the timeline operations of one partition (or all). */
    for (int32_t p = 0; p < op_parts; p++) {
        if (only >= 0 && p != only)
            continue;
        fl_driver_t *tl =
            fl_driver_new_opts(topo, &fl_timeline_processor, p, &dopts, err, sizeof(err));
        if (!tl) {
            fprintf(stderr, "timeline driver: %s\n", err);
            return 1;
        }
        uint64_t recs = 0;
        double t2 = now_s();
        for (size_t i = 0; i < ops.n; i++) {
            if (ops.v[i].partition != p)
                continue;
            check(fl_driver_pipe_raw(tl, FL_TOPIC_TIMELINE_OPS, ops.v[i].key, ops.v[i].klen,
                                     ops.v[i].val, ops.v[i].vlen, err, sizeof(err)),
                  "timeline", err);
            recs++;
            if (recs % (uint64_t)batch == 0)
                fl_driver_clear_outputs(tl); /* the changelog of committed batches */
        }
        check(fl_driver_flush(tl, err, sizeof(err)), "timeline flush", err);
        fl_driver_clear_outputs(tl);
        fl_driver_free(tl); /* closing flushes RocksDB's memtables (bulk mode) */
        double t3 = now_s();
        printf("timeline [%d]: %" PRIu64 " records, %" PRIu64
               " deliveries in %.2f s: %.0f records/s, %.0f deliveries/s (one core)\n",
               p, recs, ops.deliveries[p], t3 - t2, recs / (t3 - t2),
               ops.deliveries[p] / (t3 - t2));
    }
    for (size_t i = 0; i < ops.n; i++) {
        free(ops.v[i].key);
        free(ops.v[i].val);
    }
    free(ops.v);
    fl_netgen_free(g);
    fl_topology_free(topo);
    return 0;
}
