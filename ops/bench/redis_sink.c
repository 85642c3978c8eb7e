/*
 * redis_sink.c - benchmark of the Redis sink's destination layer: timeline
 * changelog records through add() and flush() into a real Redis, as the
 * fan-out delivers them (each entry to a pseudo-random user, in time
 * order), in batches of --batch records.
 *
 *   feedline-bench-redis-sink [--users N] [--fill N] [--steady N]
 *                             [--batch N] [--listpack N]
 *
 * Phase "fill" brings every feed to --fill entries; phase "steady" then
 * delivers --steady more per user into full feeds (timeline_cap = --fill),
 * each insert followed by the tombstone of the feed's oldest entry, as the
 * timeline processor's changelog carries them. It prints per phase the
 * entries per second through flush, Redis CPU per entry (INFO cpu of the
 * server, so run it against a Redis of its own) and, after the fill, the
 * bytes of used_memory per feed entry. --listpack sets
 * zset-max-listpack-entries first (CONFIG SET). The server is FLUSHALLed:
 * point FEEDLINE_REDIS at a server that holds nothing else.
 */
#include "fl_keys.h"
#include "fl_redis_sink.h"
#include "fl_topology.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double info_field(redisContext *c, const char *section, const char *field)
{
    redisReply *r = redisCommand(c, "INFO %s", section);
    double v = -1;
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, field) : NULL;
    if (p)
        v = strtod(p + strlen(field) + 1, NULL);
    freeReplyObject(r);
    return v;
}

static double redis_cpu(redisContext *c)
{
    return info_field(c, "cpu", "used_cpu_user") + info_field(c, "cpu", "used_cpu_sys");
}

typedef struct bench {
    void *sink;
    int64_t offset;
    size_t in_batch, batch;
    double flush_s;
} bench_t;

static void flush_now(bench_t *b);

static void put(bench_t *b, int64_t user, int64_t created, int64_t post, int present)
{
    fl_key_t k;
    fl_key_timeline(&k, user, created, post);
    uint8_t v[8];
    fl_key_enc_i64(v, 1);
    char err[128];
    fl_proc_record_t r = {.topic = "feedline.timelines-changelog",
                          .partition = 0,
                          .offset = b->offset++,
                          .key = k.buf,
                          .key_len = k.len,
                          .value = present ? v : NULL,
                          .value_len = present ? 8 : 0};
    if (fl_redis_sink.add(b->sink, &r, err, sizeof(err))) {
        fprintf(stderr, "add: %s\n", err);
        exit(1);
    }
    if (++b->in_batch >= b->batch)
        flush_now(b);
}

static void flush_now(bench_t *b)
{
    fl_sink_part_t part = {"feedline.timelines-changelog", 0};
    double t0 = now_s();
    fl_err_t e = fl_redis_sink.flush(b->sink, &part, &b->offset, 1);
    b->flush_s += now_s() - t0;
    if (e) {
        fprintf(stderr, "flush: %s\n", fl_err_str(e));
        exit(1);
    }
    b->in_batch = 0;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

int main(int argc, char **argv)
{
    long users = 2000, fill = 800, steady = 200, batch = 5000, listpack = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--users"))
            users = v;
        else if (!strcmp(argv[i], "--fill"))
            fill = v;
        else if (!strcmp(argv[i], "--steady"))
            steady = v;
        else if (!strcmp(argv[i], "--batch"))
            batch = v;
        else if (!strcmp(argv[i], "--listpack"))
            listpack = v;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char err[512];
    fl_topology_t *topo = fl_topology_load(fl_topology_default_path(), err, sizeof(err));
    if (!topo) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    topo->settings.timeline_cap = fill;
    char host[128];
    const char *colon = strrchr(topo->endpoints.redis, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - topo->endpoints.redis),
             topo->endpoints.redis);
    redisContext *c = redisConnect(host, atoi(colon + 1));
    if (!c || c->err) {
        fprintf(stderr, "redis %s: unreachable\n", topo->endpoints.redis);
        return 1;
    }
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    if (listpack >= 0)
        freeReplyObject(redisCommand(c, "CONFIG SET zset-max-listpack-entries %ld", listpack));
    redisReply *r = redisCommand(c, "CONFIG GET zset-max-listpack-entries");
    printf("zset-max-listpack-entries %s, users %ld, fill %ld, steady %ld, batch %ld\n",
           r->element[1]->str, users, fill, steady, batch);
    freeReplyObject(r);

    fl_sink_env_t env = {.topo = topo, .name = "bench", .instance = "0"};
    bench_t b = {.batch = (size_t)batch};
    fl_sink_part_t part = {"feedline.timelines-changelog", 0};
    int64_t next;
    if (fl_redis_sink.open(&env, &b.sink) || fl_redis_sink.claim(b.sink, &part, 1, &next)) {
        fprintf(stderr, "open/claim failed\n");
        return 1;
    }
    double mem0 = info_field(c, "memory", "used_memory");
    /* Entry j of user u: created_at and post id grow with the delivery. */
    int64_t seq = 0;
    int64_t *feeds = calloc((size_t)(users * fill), sizeof(int64_t));
    long *head = calloc((size_t)users, sizeof(long));
    for (int phase = 0; phase < 2; phase++) {
        long per_user = phase == 0 ? fill : steady;
        double cpu0 = redis_cpu(c), t0 = now_s();
        b.flush_s = 0;
        int64_t entries = 0;
        uint64_t total = (uint64_t)users * (uint64_t)per_user;
        long *left = malloc((size_t)users * sizeof(long));
        for (long u = 0; u < users; u++)
            left[u] = per_user;
        for (uint64_t i = 0; i < total; i++) {
            long u = (long)(mix(i + (uint64_t)phase * total) % (uint64_t)users);
            while (left[u] == 0)
                u = (u + 1) % users;
            left[u]--;
            seq++;
            int64_t *ring = &feeds[u * fill];
            put(&b, u + 1, 1767225600000 + seq, 1000000000 + seq, 1);
            if (phase == 1) {
                /* the processor trims the oldest entry and says so */
                int64_t old = ring[head[u]];
                put(&b, u + 1, 1767225600000 + old, 1000000000 + old, 0);
            }
            ring[head[u]] = seq;
            head[u] = (head[u] + 1) % fill;
            entries++;
        }
        free(left);
        if (b.in_batch)
            flush_now(&b);
        double wall = now_s() - t0, cpu = redis_cpu(c) - cpu0;
        printf("%s: %" PRId64 " entries, %.0f entries/s through flush (%.0f/s wall with add), "
               "Redis CPU %.2f us/entry\n",
               phase == 0 ? "fill" : "steady", entries, (double)entries / b.flush_s,
               (double)entries / wall, cpu * 1e6 / (double)entries);
        if (phase == 0) {
            double mem = info_field(c, "memory", "used_memory") - mem0;
            long long sample = 0, members = 0;
            for (long u = 1; u <= users && u <= 200; u++) {
                redisReply *m = redisCommand(c, "MEMORY USAGE feed:{%ld} SAMPLES 0", u);
                redisReply *z = redisCommand(c, "ZCARD feed:{%ld}", u);
                sample += m->integer;
                members += z->integer;
                freeReplyObject(m);
                freeReplyObject(z);
            }
            redisReply *enc = redisCommand(c, "OBJECT ENCODING feed:{1}");
            printf("memory: %.1f B/entry (used_memory), %.1f B/entry (MEMORY USAGE of %s "
                   "feeds)\n",
                   mem / (double)entries, (double)sample / (double)members, enc->str);
            freeReplyObject(enc);
        }
    }
    free(feeds);
    free(head);
    fl_redis_sink.close(b.sink);
    redisFree(c);
    fl_topology_free(topo);
    return 0;
}
