/*
 * feedline-loadgen - a living social network for feedline, as Kafka events.
 *
 * Generates the seeded network of fl_netgen.h and produces its events to
 * the input topics with the project's codec and producer (idempotent,
 * murmur2_random: the same partitions as every other producer). Two
 * phases, either or both:
 *   --backlog    every user, the follow graph, posts and likes, as fast as
 *                Kafka takes them;
 *   --rate R     a steady mix at R events/s for --duration seconds (0: until
 *                SIGINT/SIGTERM). Without --backlog the graph is rebuilt in
 *                memory from the same seed and sizes first.
 * With --out DIR the events go to DIR/<topic>.jsonl (the `feedline
 * produce` format) instead of Kafka, on a simulated clock: the same
 * options then give the same bytes.
 *
 * On a terminal a progress line shows rate, totals and ETA; otherwise only
 * a line at the start and one at the end. Nothing counts as produced before
 * its delivery report. Exit status: 0 done (or stopped by a signal), 1
 * Kafka or file failure, 2 usage.
 */
#include "fl_clock.h"
#include "fl_codec.h"
#include "fl_event.h"
#include "fl_kafka.h"
#include "fl_log.h"
#include "fl_netgen.h"
#include "fl_topology.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static const char *const topics[] = {"users", "follows", "posts", "likes"};
#define N_TOPICS 4

typedef struct lg {
    fl_netgen_opts_t o;
    const char *topology_path, *schemas_dir, *out_dir, *summary_path, *seeded_path;
    bool backlog, quiet, tty, already_seeded;
    double rate, duration_s;
    fl_topology_t *topo;
    fl_codec_t *codec;
    rd_kafka_t *rk;
    FILE *out[N_TOPICS];
    fl_netgen_t *g;
    int64_t sent, delivered, failed, per_topic[N_TOPICS];
    int64_t start_ms; /* occurred_at of the backlog's first event */
    int64_t backlog_events, steady_events;
    double backlog_s, steady_s;
    int64_t progress_at_us;
} lg_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    lg_t *lg = opaque;
    (void)rk;
    if (m->err) {
        if (!lg->failed)
            fl_log_error("loadgen", "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                         rd_kafka_err2str(m->err));
        lg->failed++;
    } else {
        lg->delivered++;
    }
}

static int topic_index(const char *topic)
{
    for (int i = 0; i < N_TOPICS; i++)
        if (!strcmp(topics[i], topic))
            return i;
    return -1;
}

/* Sends one event to Kafka or the file of its topic. -1 on a failure
 * that ends the run (logged). */
static int emit(lg_t *lg, fl_event_t *ev)
{
    const char *topic = fl_event_desc(ev->type)->topic;
    int ti = topic_index(topic);
    char err[512], key[32];
    if (lg->out_dir) {
        json_t *j = fl_event_to_json(ev);
        char *line = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        int bad = !line || fprintf(lg->out[ti], "%s\n", line) < 0;
        free(line);
        json_decref(j);
        if (bad) {
            fl_log_error("loadgen", "cannot write %s/%s.jsonl: %s", lg->out_dir, topic,
                         strerror(errno));
            return -1;
        }
        lg->sent++;
        lg->delivered++;
        lg->per_topic[ti]++;
        return 0;
    }
    const void *val;
    size_t vlen;
    if (fl_event_validate(ev, err, sizeof(err)) ||
        fl_codec_encode(lg->codec, ev, &val, &vlen, err, sizeof(err))) {
        fl_log_error("loadgen", "generated an event the contract refuses: %s", err);
        return -1;
    }
    fl_event_key(ev, key, sizeof(key));
    for (;;) {
        rd_kafka_resp_err_t kerr =
            rd_kafka_producev(lg->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)val, vlen),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL && !stop_flag) {
            rd_kafka_poll(lg->rk, 50);
            continue;
        }
        if (kerr) {
            fl_log_error("loadgen", "cannot produce to %s: %s", topic, rd_kafka_err2str(kerr));
            return -1;
        }
        break;
    }
    lg->sent++;
    lg->per_topic[ti]++;
    rd_kafka_poll(lg->rk, 0);
    return 0;
}

/* "1,234,567" for n >= 0 into buf. */
static const char *thousands(int64_t n, char *buf, size_t size)
{
    char raw[32];
    int len = snprintf(raw, sizeof(raw), "%" PRId64, n), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < size; i++) {
        if (i && (len - i) % 3 == 0 && raw[0] != '-')
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = 0;
    return buf;
}

static void progress(lg_t *lg, const char *phase, int64_t done, int64_t total, double elapsed_s,
                     bool final)
{
    int64_t now = fl_mono_us();
    if (!lg->tty || lg->quiet || (!final && now - lg->progress_at_us < 250000))
        return;
    lg->progress_at_us = now;
    char a[32], b[32], c[32];
    double rate = elapsed_s > 0 ? done / elapsed_s : 0;
    fprintf(stderr, "\r\033[K%s: %s", phase, thousands(done, a, sizeof(a)));
    if (total > 0)
        fprintf(stderr, " / %s events", thousands(total, b, sizeof(b)));
    else
        fprintf(stderr, " events");
    fprintf(stderr, "  %s ev/s  delivered %s", thousands((int64_t)rate, c, sizeof(c)),
            thousands(lg->delivered, b, sizeof(b)));
    if (total > 0 && rate > 0 && done < total)
        fprintf(stderr, "  ETA %.0f s", (total - done) / rate);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Records in topic (the sum of its partitions' high watermarks); -1 when
 * Kafka does not say. */
static int64_t topic_end(lg_t *lg, const char *topic)
{
    char err[256];
    int parts = -1;
    int64_t sum = 0;
    if (fl_kafka_partition_count(lg->rk, topic, &parts, err, sizeof(err)) || parts < 0)
        return -1;
    for (int p = 0; p < parts; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(lg->rk, topic, p, &lo, &hi, 5000))
            return -1;
        sum += hi;
    }
    return sum;
}

/* What a seeded file records: the network's options and how far each
 * input topic reached once its backlog was in Kafka. */
static json_t *seed_record(lg_t *lg)
{
    return json_pack("{sIsIsIsfsfsf}", "seed", (json_int_t)lg->o.seed, "users",
                     (json_int_t)lg->o.users, "user_base", (json_int_t)lg->o.user_base, "following",
                     lg->o.mean_following, "posts_per_user", lg->o.posts_per_user, "likes_per_post",
                     lg->o.likes_per_post);
}

/* True when the seeded file says this network's backlog is in the topics
 * already: same options, and no topic holds fewer records than it did
 * then (topics deleted or recreated since hold fewer). */
static bool seeded_before(lg_t *lg)
{
    json_error_t jerr;
    json_t *rec = json_load_file(lg->seeded_path, 0, &jerr), *want = seed_record(lg);
    bool same = rec && json_equal(json_object_get(rec, "network"), want);
    for (int i = 0; same && i < N_TOPICS; i++) {
        json_t *end = json_object_get(json_object_get(rec, "ends"), topics[i]);
        same = json_is_integer(end) && topic_end(lg, topics[i]) >= json_integer_value(end);
    }
    json_decref(rec);
    json_decref(want);
    return same;
}

/* The start of the backlog the seeded file records for this network, 0
 * when it records none or another network. */
static int64_t seeded_start_ms(lg_t *lg)
{
    if (!lg->seeded_path)
        return 0;
    json_t *rec = json_load_file(lg->seeded_path, 0, NULL), *want = seed_record(lg);
    json_t *start = json_object_get(rec, "start_ms");
    int64_t ms = rec && json_equal(json_object_get(rec, "network"), want) && json_is_integer(start)
                     ? (int64_t)json_integer_value(start)
                     : 0;
    json_decref(rec);
    json_decref(want);
    return ms;
}

/* The backlog starts at ms (0: so that it ends about now). */
static void set_start(lg_t *lg, int64_t ms)
{
    lg->start_ms = ms ? ms : fl_wall_ms() - fl_netgen_backlog_total(lg->g);
    fl_netgen_set_start_ms(lg->g, lg->start_ms);
}

static int write_seeded(lg_t *lg)
{
    json_t *ends = json_object(), *rec = json_object();
    for (int i = 0; i < N_TOPICS; i++)
        json_object_set_new(ends, topics[i], json_integer(topic_end(lg, topics[i])));
    json_object_set_new(rec, "network", seed_record(lg));
    json_object_set_new(rec, "ends", ends);
    json_object_set_new(rec, "start_ms", json_integer((json_int_t)lg->start_ms));
    int rc = json_dump_file(rec, lg->seeded_path, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(rec);
    if (rc)
        fl_log_error("loadgen", "cannot write %s", lg->seeded_path);
    return rc ? -1 : 0;
}

static int run_backlog(lg_t *lg)
{
    int64_t total = fl_netgen_backlog_total(lg->g), n = 0;
    int64_t t0 = fl_mono_us();
    fl_event_t ev = {0};
    while (!stop_flag && fl_netgen_backlog_next(lg->g, &ev)) {
        int rc = emit(lg, &ev);
        fl_event_clear(&ev);
        if (rc)
            return -1;
        n++;
        if ((n & 1023) == 0)
            progress(lg, "backlog", n, total, (fl_mono_us() - t0) / 1e6, false);
    }
    /* The backlog counts as done once Kafka has all of it. */
    while (lg->rk && lg->delivered + lg->failed < lg->sent && !stop_flag) {
        rd_kafka_poll(lg->rk, 100);
        progress(lg, "backlog", n, total, (fl_mono_us() - t0) / 1e6, false);
    }
    lg->backlog_events = n;
    lg->backlog_s = (fl_mono_us() - t0) / 1e6;
    progress(lg, "backlog", n, total, lg->backlog_s, true);
    return lg->failed ? -1 : 0;
}

static int run_steady(lg_t *lg)
{
    int64_t t0 = fl_mono_us(), n = 0;
    int64_t sim_start = lg->o.start_ms ? lg->o.start_ms : fl_wall_ms();
    int64_t limit = lg->duration_s > 0 ? (int64_t)llround(lg->rate * lg->duration_s) : INT64_MAX;
    fl_event_t ev = {0};
    while (!stop_flag && n < limit) {
        double elapsed = (fl_mono_us() - t0) / 1e6;
        int64_t due = lg->out_dir ? n + 1 : (int64_t)(elapsed * lg->rate) + 1;
        if (due > limit)
            due = limit;
        while (n < due && !stop_flag) {
            /* Files get a simulated clock, Kafka the wall clock. */
            int64_t now = lg->out_dir ? sim_start + (int64_t)(n * 1000.0 / lg->rate) : fl_wall_ms();
            fl_netgen_steady_next(lg->g, now, &ev);
            int rc = emit(lg, &ev);
            fl_event_clear(&ev);
            if (rc)
                return -1;
            n++;
        }
        if (lg->rk)
            rd_kafka_poll(lg->rk, 1);
        progress(lg, "steady", n, limit == INT64_MAX ? 0 : limit, (fl_mono_us() - t0) / 1e6, false);
        if (lg->failed)
            return -1;
    }
    lg->steady_events = n;
    lg->steady_s = (fl_mono_us() - t0) / 1e6;
    progress(lg, "steady", n, limit == INT64_MAX ? 0 : limit, lg->steady_s, true);
    return 0;
}

static json_t *summary_json(lg_t *lg)
{
    const fl_netgen_stats_t *st = fl_netgen_stats(lg->g);
    json_t *kinds = json_object(), *celebs = json_array(), *per_topic = json_object();
    for (int k = 0; k < FL_NG__KINDS; k++)
        json_object_set_new(kinds, fl_netgen_kind_name(k), json_integer(st->by_kind[k]));
    for (int64_t i = 0; i < fl_netgen_celebrities(lg->g); i++) {
        int64_t followers, id = fl_netgen_celebrity(lg->g, i, &followers);
        json_array_append_new(
            celebs, json_pack("{sIsI}", "id", (json_int_t)id, "followers", (json_int_t)followers));
    }
    for (int i = 0; i < N_TOPICS; i++)
        json_object_set_new(per_topic, topics[i], json_integer(lg->per_topic[i]));
    json_t *j = json_object();
    json_object_set_new(j, "seed", json_integer((json_int_t)lg->o.seed));
    json_object_set_new(j, "users", json_integer(lg->o.users));
    json_object_set_new(j, "user_base", json_integer(lg->o.user_base));
    json_object_set_new(j, "celebrity_threshold", json_integer(lg->o.celebrity_threshold));
    json_object_set_new(j, "celebrities", celebs);
    json_object_set_new(j, "demo_user", json_integer(fl_netgen_demo_user(lg->g)));
    json_object_set_new(j, "already_seeded", json_boolean(lg->already_seeded));
    json_object_set_new(j, "edges", json_integer(st->edges));
    json_object_set_new(j, "backlog_edges", json_integer(st->backlog_edges));
    json_object_set_new(j, "posts_live", json_integer(st->posts_live));
    json_object_set_new(j, "by_kind", kinds);
    json_object_set_new(j, "by_topic", per_topic);
    json_object_set_new(j, "delivered", json_integer(lg->delivered));
    json_object_set_new(j, "failed", json_integer(lg->failed));
    json_object_set_new(j, "backlog_events", json_integer(lg->backlog_events));
    json_object_set_new(j, "backlog_seconds", json_real(lg->backlog_s));
    json_object_set_new(j, "backlog_events_per_s",
                        json_real(lg->backlog_s > 0 ? lg->backlog_events / lg->backlog_s : 0));
    json_object_set_new(j, "steady_events", json_integer(lg->steady_events));
    json_object_set_new(j, "steady_seconds", json_real(lg->steady_s));
    json_object_set_new(j, "steady_events_per_s",
                        json_real(lg->steady_s > 0 ? lg->steady_events / lg->steady_s : 0));
    json_object_set_new(j, "target_rate", json_real(lg->rate));
    json_object_set_new(j, "stopped_by_signal", json_boolean(stop_flag));
    return j;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: feedline-loadgen [OPTIONS] (--backlog and/or --rate R)\n\n"
            "  --backlog            produce the whole network first, as fast as Kafka takes it\n"
            "  --rate R             then a steady mix at R events/s\n"
            "  --duration S         steady phase length in seconds (0: until SIGINT/SIGTERM)\n"
            "  --users N            users (20000), ids from --user-base (1)\n"
            "  --seed S             the network's seed (1)\n"
            "  --celebrities K      celebrities above the topology's threshold (3 if it fits)\n"
            "  --following F        mean regular followees per user (20)\n"
            "  --posts-per-user P   backlog posts per user (5)\n"
            "  --likes-per-post L   backlog likes per post (2)\n"
            "  --mix K=W,...        steady weights: post, reply, like, unlike, follow, unfollow,\n"
            "                       delete, profile (25,8,40,6,12,5,2,2)\n"
            "  --start-ms MS        occurred_at of the first backlog event (default: now minus\n"
            "                       the backlog's size in ms, so that it ends about now)\n"
            "  --run-id ID          prefix of steady event ids (default from the clock)\n"
            "  --out DIR            write DIR/<topic>.jsonl instead of producing\n"
            "  --summary FILE       write counts, celebrities, a demo user and rates as JSON\n"
            "  --seeded-file FILE   skip --backlog when FILE says this network is in Kafka\n"
            "                       already (and write it after producing a backlog); a\n"
            "                       steady run takes the backlog's start, hence its post\n"
            "                       ids, from it\n"
            "  --quiet              no progress line\n"
            "  --topology FILE, --schemas DIR\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "feedline-loadgen: %s wants a number from %g to %g, not '%s'\n", opt, lo,
                hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(lg_t *lg, int argc, char **argv)
{
    enum {
        O_BACKLOG = 256,
        O_RATE,
        O_DURATION,
        O_USERS,
        O_BASE,
        O_SEED,
        O_CELEB,
        O_FOLLOWING,
        O_PPU,
        O_LPP,
        O_MIX,
        O_START,
        O_RUN,
        O_OUT,
        O_SUMMARY,
        O_SEEDED,
        O_QUIET,
        O_TOPO,
        O_SCHEMAS,
        O_HELP
    };
    static const struct option opts[] = {{"backlog", no_argument, 0, O_BACKLOG},
                                         {"rate", required_argument, 0, O_RATE},
                                         {"duration", required_argument, 0, O_DURATION},
                                         {"users", required_argument, 0, O_USERS},
                                         {"user-base", required_argument, 0, O_BASE},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"celebrities", required_argument, 0, O_CELEB},
                                         {"following", required_argument, 0, O_FOLLOWING},
                                         {"posts-per-user", required_argument, 0, O_PPU},
                                         {"likes-per-post", required_argument, 0, O_LPP},
                                         {"mix", required_argument, 0, O_MIX},
                                         {"start-ms", required_argument, 0, O_START},
                                         {"run-id", required_argument, 0, O_RUN},
                                         {"out", required_argument, 0, O_OUT},
                                         {"summary", required_argument, 0, O_SUMMARY},
                                         {"seeded-file", required_argument, 0, O_SEEDED},
                                         {"quiet", no_argument, 0, O_QUIET},
                                         {"topology", required_argument, 0, O_TOPO},
                                         {"schemas", required_argument, 0, O_SCHEMAS},
                                         {"help", no_argument, 0, O_HELP},
                                         {0, 0, 0, 0}};
    char err[256];
    double v;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_BACKLOG:
            lg->backlog = true;
            break;
        case O_RATE:
            if (parse_num("--rate", optarg, 0.001, 10e6, &lg->rate))
                return -1;
            break;
        case O_DURATION:
            if (parse_num("--duration", optarg, 0, 1e9, &lg->duration_s))
                return -1;
            break;
        case O_USERS:
            if (parse_num("--users", optarg, 2, 50e6, &v))
                return -1;
            lg->o.users = (int64_t)v;
            break;
        case O_BASE:
            if (parse_num("--user-base", optarg, 1, 1e15, &v))
                return -1;
            lg->o.user_base = (int64_t)v;
            break;
        case O_SEED:
            if (parse_num("--seed", optarg, 0, 9e15, &v))
                return -1;
            lg->o.seed = (uint64_t)v;
            break;
        case O_CELEB:
            if (parse_num("--celebrities", optarg, 0, 1000, &v))
                return -1;
            lg->o.celebrities = (int64_t)v;
            break;
        case O_FOLLOWING:
            if (parse_num("--following", optarg, 0, 2000, &lg->o.mean_following))
                return -1;
            break;
        case O_PPU:
            if (parse_num("--posts-per-user", optarg, 0, 10000, &lg->o.posts_per_user))
                return -1;
            break;
        case O_LPP:
            if (parse_num("--likes-per-post", optarg, 0, 10000, &lg->o.likes_per_post))
                return -1;
            break;
        case O_MIX:
            if (fl_netgen_parse_mix(&lg->o, optarg, err, sizeof(err))) {
                fprintf(stderr, "feedline-loadgen: --%s\n", err);
                return -1;
            }
            break;
        case O_START:
            if (parse_num("--start-ms", optarg, 1, 1e15, &v))
                return -1;
            lg->o.start_ms = (int64_t)v;
            break;
        case O_RUN:
            lg->o.run_id = optarg;
            break;
        case O_OUT:
            lg->out_dir = optarg;
            break;
        case O_SUMMARY:
            lg->summary_path = optarg;
            break;
        case O_SEEDED:
            lg->seeded_path = optarg;
            break;
        case O_QUIET:
            lg->quiet = true;
            break;
        case O_TOPO:
            lg->topology_path = optarg;
            break;
        case O_SCHEMAS:
            lg->schemas_dir = optarg;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "feedline-loadgen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!lg->backlog && lg->rate <= 0) {
        fprintf(stderr, "feedline-loadgen: nothing to do: give --backlog and/or --rate R\n");
        return -1;
    }
    if (lg->out_dir && lg->rate > 0 && lg->duration_s <= 0) {
        fprintf(stderr, "feedline-loadgen: --out with --rate needs a --duration\n");
        return -1;
    }
    return 0;
}

static int open_outputs(lg_t *lg)
{
    char path[4096];
    if (mkdir(lg->out_dir, 0777) && errno != EEXIST) {
        fl_log_error("loadgen", "cannot create %s: %s", lg->out_dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < N_TOPICS; i++) {
        snprintf(path, sizeof(path), "%s/%s.jsonl", lg->out_dir, topics[i]);
        if (!(lg->out[i] = fopen(path, "w"))) {
            fl_log_error("loadgen", "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int write_summary(lg_t *lg)
{
    json_t *j = summary_json(lg);
    int rc = 0;
    if (lg->summary_path && json_dump_file(j, lg->summary_path, JSON_INDENT(2) | JSON_SORT_KEYS)) {
        fl_log_error("loadgen", "cannot write %s", lg->summary_path);
        rc = -1;
    }
    json_decref(j);
    return rc;
}

int main(int argc, char **argv)
{
    lg_t lg = {0};
    char err[512], run_id[64];
    int ret = 1;

    fl_log_init();
    fl_netgen_opts_default(&lg.o);
    lg.topology_path = fl_topology_default_path();
    lg.schemas_dir = fl_codec_default_dir();
    if (parse_args(&lg, argc, argv)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    lg.tty = isatty(STDERR_FILENO);
    if (!(lg.topo = fl_topology_load(lg.topology_path, err, sizeof(err)))) {
        fprintf(stderr, "feedline-loadgen: %s\n", err);
        return 1;
    }
    lg.o.celebrity_threshold = lg.topo->settings.celebrity_threshold;
    if (strcmp(lg.o.run_id, "loadgen") == 0) {
        snprintf(run_id, sizeof(run_id), "lg%" PRIu64 "-s%" PRId64, lg.o.seed, fl_wall_ms());
        lg.o.run_id = run_id;
    }

    int64_t t0 = fl_mono_us();
    if (!(lg.g = fl_netgen_new(&lg.o, err, sizeof(err)))) {
        fprintf(stderr, "feedline-loadgen: %s\n", err);
        goto out;
    }
    /* The backlog ends about now unless its start is given, or recorded
     * in the seeded file when that network is in Kafka: a steady run
     * after it must know the backlog's post ids, which the start fixes. */
    if (lg.o.start_ms)
        lg.start_ms = lg.o.start_ms;
    else
        set_start(&lg, seeded_start_ms(&lg));
    {
        char a[32], b[32];
        const fl_netgen_stats_t *st = fl_netgen_stats(lg.g);
        fl_log_info("loadgen",
                    "network of %s users (seed %" PRIu64 "), %s follow edges, %" PRId64
                    " celebrities above %" PRId64 " followers, built in %.1f s",
                    thousands(lg.o.users, a, sizeof(a)), lg.o.seed,
                    thousands(st->backlog_edges, b, sizeof(b)), fl_netgen_celebrities(lg.g),
                    lg.o.celebrity_threshold, (fl_mono_us() - t0) / 1e6);
    }

    if (lg.out_dir) {
        if (open_outputs(&lg))
            goto out;
    } else {
        if (!(lg.codec = fl_codec_new(lg.schemas_dir, err, sizeof(err))) ||
            !(lg.rk =
                  fl_kafka_producer_new(lg.topo->endpoints.kafka, dr_cb, &lg, err, sizeof(err)))) {
            fprintf(stderr, "feedline-loadgen: %s\n", err);
            goto out;
        }
        if (fl_kafka_wait_ready(lg.rk, 60000, err, sizeof(err))) {
            fprintf(stderr, "feedline-loadgen: %s\n", err);
            goto out;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if (lg.backlog && lg.seeded_path && lg.rk && seeded_before(&lg)) {
        fl_log_info("loadgen", "%s: this network is in Kafka already; not producing its backlog",
                    lg.seeded_path);
        lg.already_seeded = true;
        fl_netgen_backlog_skip(lg.g);
    } else if (lg.backlog) {
        if (!lg.o.start_ms)
            set_start(&lg, 0); /* produced anew: it ends about now */
        if (run_backlog(&lg) || (lg.seeded_path && lg.rk && !stop_flag && write_seeded(&lg)))
            goto out;
    } else {
        fl_netgen_backlog_skip(lg.g);
    }
    if (lg.rate > 0 && !stop_flag && run_steady(&lg))
        goto out;
    ret = 0;
out:
    if (lg.rk) {
        /* Whatever was handed to Kafka is accounted for before we report. */
        for (int i = 0; i < 300 && lg.delivered + lg.failed < lg.sent; i++)
            rd_kafka_flush(lg.rk, 100);
        if (lg.delivered + lg.failed < lg.sent) {
            fl_log_error("loadgen", "%" PRId64 " events not confirmed by Kafka after 30 s",
                         lg.sent - lg.delivered - lg.failed);
            ret = 1;
        }
        if (lg.failed)
            ret = 1;
    }
    for (int i = 0; i < N_TOPICS; i++)
        if (lg.out[i] && fclose(lg.out[i])) {
            fl_log_error("loadgen", "cannot write %s: %s", topics[i], strerror(errno));
            ret = 1;
        }
    if (lg.g) {
        char a[32], b[32];
        fl_log_info("loadgen",
                    "%s events delivered (%s failed): backlog %" PRId64
                    " in %.1f s, steady %" PRId64 " in %.1f s (%.0f ev/s)%s",
                    thousands(lg.delivered, a, sizeof(a)), thousands(lg.failed, b, sizeof(b)),
                    lg.backlog_events, lg.backlog_s, lg.steady_events, lg.steady_s,
                    lg.steady_s > 0 ? lg.steady_events / lg.steady_s : 0.0,
                    stop_flag ? ", stopped by a signal" : "");
        if (write_summary(&lg))
            ret = 1;
    }
    if (lg.rk)
        rd_kafka_destroy(lg.rk);
    fl_netgen_free(lg.g);
    fl_codec_free(lg.codec);
    fl_topology_free(lg.topo);
    return ret;
}
