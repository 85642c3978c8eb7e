/*
 * redis_sink.c - benchmark of the Redis sink's destination layer: timeline
 * changelog records through add() and flush() into a real Redis, as the
 * fan-out delivers them (each entry to a pseudo-random user, in time
 * order), in batches of --batch records.
 *
 *   feedline-bench-redis-sink [--mode delivery|changelog|live] [--users N]
 *                             [--fill N] [--steady N] [--batch N] [--listpack N]
 *
 * Mode "delivery" (the default) has two phases. Phase "fill" brings every feed to --fill entries;
 * phase "steady" then delivers --steady more per user into full feeds (timeline_cap = --fill), each
 * insert followed by the tombstone of the feed's oldest entry, as the timeline processor's
 * changelog carries them. It prints per phase the entries per second through flush, Redis CPU per
 * entry (INFO cpu of the server, so run it against a Redis of its own) and, after the fill, the
 * bytes of used_memory per feed entry.
 *
 * Mode "changelog" replays a backlog as the timelines changelog holds it:
 * in key order, each user's entries contiguous and oldest first, into
 * empty feeds. Feed sizes are a mix like the workload's: 60% of the users
 * get 20-300 entries, 25% 300---fill, 15% --fill to 1.5x --fill (full
 * feeds that trim). Mode "live" starts from feeds already half full (half
 * the users) or full (the others, with tombstones of the oldest entry as
 * in "steady"), written directly, and delivers 1-2 new entries per user
 * per batch, --steady entries per user in all.
 *
 * --listpack sets
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

typedef struct phase {
    const char *name;
    double cpu0, t0;
    int64_t entries;
} phase_t;

static void phase_begin(phase_t *ph, bench_t *b, redisContext *c, const char *name)
{
    ph->name = name;
    ph->entries = 0;
    b->flush_s = 0;
    ph->cpu0 = redis_cpu(c);
    ph->t0 = now_s();
}

static void phase_end(phase_t *ph, bench_t *b, redisContext *c)
{
    if (b->in_batch)
        flush_now(b);
    double wall = now_s() - ph->t0, cpu = redis_cpu(c) - ph->cpu0;
    printf("%s: %" PRId64 " entries, %.0f entries/s through flush (%.0f/s wall with add), "
           "Redis CPU %.2f us/entry\n",
           ph->name, ph->entries, (double)ph->entries / b->flush_s, (double)ph->entries / wall,
           cpu * 1e6 / (double)ph->entries);
}

static void memory_report(redisContext *c, double mem0, int64_t entries, long users)
{
    double mem = info_field(c, "memory", "used_memory") - mem0;
    long long sample = 0, members = 0;
    for (long u = 1; u <= users && u <= 200; u++) {
        redisReply *m = redisCommand(c, "MEMORY USAGE feed:{%ld} SAMPLES 0", u);
        redisReply *z = redisCommand(c, "ZCARD feed:{%ld}", u);
        sample += m->type == REDIS_REPLY_INTEGER ? m->integer : 0;
        members += z->integer;
        freeReplyObject(m);
        freeReplyObject(z);
    }
    redisReply *enc = redisCommand(c, "OBJECT ENCODING feed:{1}");
    printf("memory: %.1f B/entry (used_memory), %.1f B/entry (MEMORY USAGE of %s feeds)\n",
           mem / (double)entries, (double)sample / (double)members,
           enc->type == REDIS_REPLY_STRING ? enc->str : "no");
    freeReplyObject(enc);
}

/* Entries of user u (1-based) in the changelog mode's mix of feed sizes. */
static long backlog_size(long u, long cap)
{
    uint64_t h = mix((uint64_t)u * 0x9e3779b97f4a7c15ULL);
    long pct = (long)(h % 100), r = (long)((h >> 8) % 1000);
    if (pct < 60)
        return 20 + r * 280 / 1000;
    if (pct < 85)
        return 300 + r * (cap - 300) / 1000;
    return cap + r * (cap / 2) / 1000;
}

/* The backlog in key order: user by user, each oldest first. */
static void run_changelog(bench_t *b, redisContext *c, long users, long cap)
{
    double mem0 = info_field(c, "memory", "used_memory");
    phase_t ph;
    phase_begin(&ph, b, c, "changelog");
    int64_t seq = 0, kept = 0;
    for (long u = 1; u <= users; u++) {
        long n = backlog_size(u, cap);
        for (long j = 0; j < n; j++) {
            seq++;
            put(b, u, 1767225600000 + seq * 7, 1000000000 + seq, 1);
        }
        ph.entries += n;
        kept += n < cap ? n : cap;
    }
    phase_end(&ph, b, c);
    memory_report(c, mem0, kept, users);
}

/* Writes user u's feed of n entries (scores 1767225600000 + post - 1e9)
 * directly: a skiplist built and then stored once as a listpack. */
static void prefill(redisContext *c, long u, const int64_t *posts, long n)
{
    size_t argc = 3 + 2 * (size_t)n + 2;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *len = malloc(argc * sizeof(*len));
    char *buf = malloc(argc * 24);
    char tmp[64], key[64];
    snprintf(tmp, sizeof(tmp), "bench-tmp:{%ld}", u);
    snprintf(key, sizeof(key), "feed:{%ld}", u);
    size_t a = 0;
    argv[a++] = "ZADD", argv[a++] = tmp, argv[a++] = "0";
    /* a first member longer than zset-max-listpack-value: a skiplist */
    argv[a++] = "a-member-longer-than-sixty-four-bytes-makes-the-new-set-a-skiplist";
    for (long j = 0; j < n; j++) {
        char *sc = buf + 48 * j, *m = sc + 24;
        snprintf(sc, 24, "%" PRId64, 1767225600000 + posts[j] - 1000000000);
        snprintf(m, 24, "%" PRId64, posts[j]);
        argv[a++] = sc, argv[a++] = m;
    }
    for (size_t i = 0; i < a; i++)
        len[i] = strlen(argv[i]);
    redisAppendCommandArgv(c, (int)a, argv, len);
    redisAppendCommand(c, "ZREM %s %s", tmp, argv[3]);
    redisAppendCommand(c, "ZUNIONSTORE %s 1 %s", key, tmp);
    redisAppendCommand(c, "DEL %s", tmp);
    for (int i = 0; i < 4; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "prefill failed\n");
            exit(1);
        }
        freeReplyObject(r);
    }
    free(argv);
    free(len);
    free(buf);
}

/* New entries into feeds half full (odd users) or full (even users). */
static void run_live(bench_t *b, redisContext *c, long users, long cap, long per_user)
{
    int64_t *feeds = calloc((size_t)(users * cap), sizeof(int64_t));
    long *head = calloc((size_t)users, sizeof(long)), *size = calloc((size_t)users, sizeof(long));
    int64_t seq = 0;
    for (long u = 0; u < users; u++) {
        size[u] = u % 2 ? cap / 2 : cap;
        for (long j = 0; j < size[u]; j++)
            feeds[u * cap + j] = 1000000000 + ++seq;
        prefill(c, u + 1, &feeds[u * cap], size[u]);
        head[u] = size[u] % cap;
    }
    phase_t ph;
    phase_begin(&ph, b, c, "live");
    /* rounds of 1-2 entries per user; a full feed also drops its oldest */
    long *left = malloc((size_t)users * sizeof(long));
    for (long u = 0; u < users; u++)
        left[u] = per_user;
    for (int more = 1; more;) {
        more = 0;
        for (long u = 0; u < users; u++) {
            long k = 1 + (long)(mix((uint64_t)(seq * 31 + u)) % 2);
            for (; k > 0 && left[u] > 0; k--, left[u]--) {
                int64_t post = 1000000000 + ++seq;
                put(b, u + 1, 1767225600000 + post - 1000000000, post, 1);
                int64_t *slot = &feeds[u * cap + head[u]];
                if (size[u] == cap)
                    put(b, u + 1, 1767225600000 + *slot - 1000000000, *slot, 0);
                else
                    size[u]++;
                *slot = post;
                head[u] = (head[u] + 1) % cap;
                ph.entries++;
            }
            more |= left[u] > 0;
        }
    }
    phase_end(&ph, b, c);
    free(left);
    free(feeds);
    free(head);
    free(size);
}

int main(int argc, char **argv)
{
    long users = 2000, fill = 800, steady = 200, batch = 5000, listpack = -1;
    const char *mode = "delivery";
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (!strcmp(argv[i], "--mode"))
            mode = argv[i + 1];
        else if (!strcmp(argv[i], "--users"))
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
    printf("mode %s, zset-max-listpack-entries %s, users %ld, fill %ld, steady %ld, batch %ld\n",
           mode, r->element[1]->str, users, fill, steady, batch);
    freeReplyObject(r);

    fl_sink_env_t env = {.topo = topo, .name = "bench", .instance = "0"};
    bench_t b = {.batch = (size_t)batch};
    fl_sink_part_t part = {"feedline.timelines-changelog", 0};
    int64_t next;
    if (fl_redis_sink.open(&env, &b.sink) || fl_redis_sink.claim(b.sink, &part, 1, &next)) {
        fprintf(stderr, "open/claim failed\n");
        return 1;
    }
    if (strcmp(mode, "delivery") && strcmp(mode, "changelog") && strcmp(mode, "live")) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (mode[0] != 'd') {
        if (mode[0] == 'c')
            run_changelog(&b, c, users, fill);
        else
            run_live(&b, c, users, fill, steady);
        fl_redis_sink.close(b.sink);
        redisFree(c);
        fl_topology_free(topo);
        return 0;
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
