/*
 * feedline_cli.c - the `feedline` command: produce events from JSON lines,
 * tail topics as JSON lines, print the topology, create topics, mint read
 * API tokens, show every program's lag (fl_lag_cmd.c), compare the feeds of
 * the store and both projections (fl_verify.c), and small codec tools
 * (encode, decode, partition) for checking the contract from other
 * languages.
 *
 * Bad input never stops `produce`: each bad line gets a message naming its
 * line number on stderr and is skipped; the summary at the end counts
 * produced and skipped lines. Nothing is reported as produced before its
 * delivery report says Kafka has it.
 *
 * Exit codes: 0 success, 1 failure (Kafka, configuration), 2 usage,
 * 3 produce finished but skipped bad lines.
 */
#include "fl_codec.h"
#include "fl_event.h"
#include "fl_inspect.h"
#include "fl_jwt.h"
#include "fl_kafka_admin.h"
#include "fl_lag_cmd.h"
#include "fl_replay.h"
#include "fl_verify.h"
#include "fl_keys.h"
#include "fl_kv.h"
#include "fl_log.h"
#include "fl_partition.h"
#include "fl_topics.h"
#include "fl_topology.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE   2
#define EXIT_SKIPPED 3

/* The one process-wide flag: set by SIGINT/SIGTERM, read by loops. */
static volatile sig_atomic_t fl_stop;

static void on_signal(int sig)
{
    (void)sig;
    fl_stop = 1;
}

typedef struct fl_cli {
    const char *topology_path;
    const char *schemas_dir;
    fl_topology_t *topo;
    fl_codec_t *codec;
} fl_cli_t;

typedef struct fl_command {
    const char *name;
    int (*run)(fl_cli_t *cli, int argc, char **argv);
    const char *usage;
    const char *help;
} fl_command_t;

static const fl_command_t *fl_command_find(const char *name);

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "feedline %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nsee 'feedline %s --help'\n", cmd);
    return EXIT_USAGE;
}

static int print_help(const fl_command_t *c, FILE *out)
{
    fprintf(out, "usage: feedline %s\n\n%s", c->usage, c->help);
    return 0;
}

static int want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

static int cli_topology(fl_cli_t *cli)
{
    char err[512];
    if (cli->topo)
        return 0;
    cli->topo = fl_topology_load(cli->topology_path, err, sizeof(err));
    if (!cli->topo) {
        fprintf(stderr, "feedline: %s\n", err);
        return -1;
    }
    return 0;
}

static int cli_codec(fl_cli_t *cli)
{
    char err[512];
    if (cli->codec)
        return 0;
    cli->codec = fl_codec_new(cli->schemas_dir, err, sizeof(err));
    if (!cli->codec) {
        fprintf(stderr, "feedline: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- produce ------------------------------------------------------------ */

typedef struct produce_state {
    long delivered;
    long failed;
} produce_state_t;

static void produce_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_state_t *st = opaque;
    if (m->err) {
        st->failed++;
        fprintf(stderr, "feedline produce: delivery failed for line %ld: %s\n",
                (long)(intptr_t)m->_private, rd_kafka_err2str(m->err));
    } else {
        st->delivered++;
    }
}

/* Parses, validates and encodes one line. FL_OK with the framed value in
 * val and vlen and the key in key; otherwise a message in err. */
static fl_err_t produce_line(fl_cli_t *cli, const char *topic, const char *line, fl_event_t *ev,
                             char *key, size_t key_size, const void **val, size_t *vlen, char *err,
                             size_t err_size)
{
    json_error_t jerr;
    fl_err_t rc;
    json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);

    if (!obj) {
        snprintf(err, err_size, "not JSON: %s (column %d)", jerr.text, jerr.column);
        return FL_ERR_INVALID;
    }
    rc = fl_event_from_json(obj, ev, err, err_size);
    json_decref(obj);
    if (rc)
        return rc;
    if (!fl_event_type_on_topic(ev->type, topic)) {
        snprintf(err, err_size, "%s events do not belong on topic %s (they go to %s)",
                 fl_event_desc(ev->type)->name, topic, fl_event_desc(ev->type)->topic);
        return FL_ERR_INVALID;
    }
    rc = fl_event_validate(ev, err, err_size);
    if (rc)
        return rc;
    fl_event_key(ev, key, key_size);
    return fl_codec_encode(cli->codec, ev, val, vlen, err, err_size);
}

static int cmd_produce(fl_cli_t *cli, int argc, char **argv)
{
    char err[512], key[32];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, skipped = 0, sent = 0;
    produce_state_t st = {0, 0};
    rd_kafka_t *rk = NULL;
    int ret = 1;

    if (argc != 2)
        return usage_error("produce", "%s", "expected exactly one TOPIC");
    const char *topic = argv[1];
    if (cli_topology(cli) || cli_codec(cli))
        return 1;
    if (!fl_topology_topic(cli->topo, topic) ||
        fl_topology_topic(cli->topo, topic)->kind != FL_TOPIC_INPUT)
        return usage_error("produce", "'%s' is not an input topic of the topology", topic);

    rk = fl_kafka_producer_new(cli->topo->endpoints.kafka, produce_dr, &st, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "feedline produce: %s\n", err);
        goto out;
    }
    while (!fl_stop && (n = getline(&line, &cap, stdin)) >= 0) {
        fl_event_t ev = {0};
        const void *val;
        size_t vlen;
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue; /* blank lines are not events */
        if (produce_line(cli, topic, line, &ev, key, sizeof(key), &val, &vlen, err, sizeof(err))) {
            fprintf(stderr, "stdin:%ld: skipped: %s\n", lineno, err);
            skipped++;
            fl_event_clear(&ev);
            continue;
        }
        fl_event_clear(&ev);
        for (;;) {
            rd_kafka_resp_err_t kerr = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)lineno), RD_KAFKA_V_END);
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100);
                continue;
            }
            if (kerr) {
                fprintf(stderr, "feedline produce: line %ld: %s\n", lineno, rd_kafka_err2str(kerr));
                goto out;
            }
            break;
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
    /* Every message is accounted for before we report: delivered or failed. */
    while (rd_kafka_outq_len(rk) > 0 && st.delivered + st.failed < sent)
        rd_kafka_flush(rk, 1000);
    fprintf(stderr, "feedline produce: %ld events produced to %s, %ld lines skipped", st.delivered,
            topic, skipped);
    if (st.failed)
        fprintf(stderr, ", %ld failed", st.failed);
    fputc('\n', stderr);
    ret = st.failed || fl_stop ? 1 : skipped ? EXIT_SKIPPED : 0;
out:
    free(line);
    if (rk) {
        rd_kafka_flush(rk, 10000);
        rd_kafka_destroy(rk);
    }
    return ret;
}

/* ---- tail ---------------------------------------------------------------- */

/* The value of a record of an input (or dead-letter) topic: the event. */
static void tail_event(fl_cli_t *cli, const rd_kafka_message_t *m, json_t *o)
{
    char err[512];
    fl_event_t ev = {0};
    int32_t sid = -1;
    fl_err_t rc = fl_codec_decode(cli->codec, m->payload, m->len, &ev, &sid, err, sizeof(err));
    if (sid >= 0)
        json_object_set_new(o, "schema_id", json_integer(sid));
    if (rc) {
        json_object_set_new(o, "error", json_string(err));
        json_object_set_new(o, "value_size", json_integer((json_int_t)m->len));
    } else {
        json_object_set_new(o, "value", fl_event_to_json(&ev));
    }
    fl_event_clear(&ev);
}

static json_t *tail_record_json(fl_cli_t *cli, const rd_kafka_message_t *m)
{
    const char *kafka = rd_kafka_topic_name(m->rkt), *topic = kafka;
    json_t *o = json_object();
    char err[512];

    /* the topology's name of the topic (its name in Kafka may carry a
     * generation's prefix), which says how to decode it */
    const fl_topic_t *tp = fl_topology_topic_by_kafka(cli->topo, kafka);
    if (tp)
        topic = tp->name;
    json_object_set_new(o, "topic", json_string(kafka));
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(o, "timestamp", json_integer(rd_kafka_message_timestamp(m, NULL)));

    /* Store changelogs and the engagement facts have binary keys; every
     * other topic a text key. */
    json_t *key = NULL, *fact = NULL;
    if (!strcmp(topic, FL_TOPIC_ENGAGEMENT)) {
        if (fl_inspect_fact(m->key, m->key_len, m->payload, m->len, &key, &fact, err, sizeof(err)))
            json_object_set_new(o, "error", json_string(err));
    } else if (tp && tp->kind == FL_TOPIC_CHANGELOG && m->key) {
        key = fl_inspect_store_key(m->key, m->key_len);
    }
    json_object_set_new(o, "key",
                        key      ? key
                        : m->key ? json_stringn(m->key, m->key_len)
                                 : json_null());

    rd_kafka_headers_t *hdrs = NULL;
    if (!rd_kafka_message_headers(m, &hdrs) && hdrs) {
        json_t *h = json_object();
        const char *name;
        const void *v;
        size_t vs;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &v, &vs); i++)
            json_object_set_new(h, name, v ? json_stringn(v, vs) : json_null());
        json_object_set_new(o, "headers", h);
    }
    if (fact || json_object_get(o, "error")) {
        if (fact)
            json_object_set_new(o, "value", fact);
        return o;
    }
    if (!m->payload) {
        json_object_set_new(o, "value", json_null()); /* tombstone */
        return o;
    }
    if (!strcmp(topic, FL_TOPIC_ENGAGE_EDGES)) {
        json_t *v = fl_inspect_edge(m->payload, m->len, err, sizeof(err));
        json_object_set_new(o, v ? "value" : "error", v ? v : json_string(err));
    } else if (!strcmp(topic, FL_TOPIC_TIMELINE_OPS)) {
        json_t *v = fl_inspect_tlop(m->payload, m->len, err, sizeof(err));
        json_object_set_new(o, v ? "value" : "error", v ? v : json_string(err));
    } else if (key) {
        json_t *v = fl_inspect_store_value(m->key, m->key_len, m->payload, m->len);
        json_object_set_new(o, "value", v ? v : json_string("(unrecognised)"));
    } else if (tp && tp->kind == FL_TOPIC_CHANGELOG) {
        json_t *v = json_loadb(m->payload, m->len, 0, NULL);
        json_object_set_new(o, "value", v ? v : json_stringn(m->payload, m->len));
    } else {
        tail_event(cli, m, o);
    }
    return o;
}

static int cmd_tail(fl_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"from-beginning", no_argument, NULL, 'b'},
                                         {"exit-at-end", no_argument, NULL, 'e'},
                                         {"max", required_argument, NULL, 'm'},
                                         {NULL, 0, NULL, 0}};
    int from_beginning = 0, exit_at_end = 0, c, parts = -1, ret = 1;
    long max = -1, printed = 0;
    char err[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *tpl = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'b')
            from_beginning = 1;
        else if (c == 'e')
            exit_at_end = 1;
        else if (c == 'm')
            max = strtol(optarg, NULL, 10);
        else
            return usage_error("tail", "%s", "unknown option");
    }
    if (optind != argc - 1)
        return usage_error("tail", "%s", "expected exactly one TOPIC");
    if (cli_topology(cli) || cli_codec(cli))
        return 1;
    /* a topology topic by its name there (a generation's prefix applied) */
    const char *topic = fl_topology_kafka_name(cli->topo, argv[optind]);

    rk = fl_kafka_consumer_new(cli->topo->endpoints.kafka, NULL, err, sizeof(err));
    if (!rk || fl_kafka_wait_ready(rk, 30000, err, sizeof(err)) ||
        fl_kafka_partition_count(rk, topic, &parts, err, sizeof(err))) {
        fprintf(stderr, "feedline tail: %s\n", err);
        goto out;
    }
    if (parts < 0) {
        fprintf(stderr, "feedline tail: topic %s does not exist\n", topic);
        goto out;
    }
    tpl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tpl, topic, p)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    if (rd_kafka_assign(rk, tpl)) {
        fprintf(stderr, "feedline tail: assign failed\n");
        goto out;
    }
    int at_end = 0;
    while (!fl_stop && (max < 0 || printed < max)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            if (exit_at_end && ++at_end >= parts)
                break;
            continue;
        }
        if (m->err) {
            fl_err_t rc = fl_kafka_err(m->err);
            fprintf(stderr, "feedline tail: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fl_err_retriable(rc))
                continue;
            goto out;
        }
        json_t *o = tail_record_json(cli, m);
        rd_kafka_message_destroy(m);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
        printed++;
    }
    fflush(stdout);
    ret = 0;
out:
    if (tpl)
        rd_kafka_topic_partition_list_destroy(tpl);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return ret;
}

/* ---- topology, topics, codec tools ------------------------------------------------ */

static int cmd_topology(fl_cli_t *cli, int argc, char **argv)
{
    if (argc != 1)
        return usage_error("topology", "%s", "takes no arguments");
    if (cli_topology(cli))
        return 1;
    fl_topology_print(cli->topo, stdout);
    return 0;
}

static int cmd_topics(fl_cli_t *cli, int argc, char **argv)
{
    char err[512];
    int wait_s = 0, ret = 1;
    rd_kafka_t *rk = NULL;

    if (argc < 2 || strcmp(argv[1], "create"))
        return usage_error("topics", "%s", "expected 'create'");
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--wait") && i + 1 < argc)
            wait_s = atoi(argv[++i]);
        else
            return usage_error("topics", "unexpected argument '%s'", argv[i]);
    }
    if (cli_topology(cli))
        return 1;
    rk = fl_kafka_admin_new(cli->topo->endpoints.kafka, err, sizeof(err));
    if (!rk || fl_kafka_wait_ready(rk, wait_s * 1000, err, sizeof(err)) ||
        fl_kafka_create_topics(rk, cli->topo, stdout, err, sizeof(err))) {
        fprintf(stderr, "feedline topics: %s\n", err);
        goto out;
    }
    ret = 0;
out:
    if (rk)
        rd_kafka_destroy(rk);
    return ret;
}

static int cmd_decode(fl_cli_t *cli, int argc, char **argv)
{
    static unsigned char buf[FL_CODEC_MAX_MESSAGE + 1];
    char err[512];
    fl_event_t ev = {0};
    int32_t sid = -1;

    if (argc != 1)
        return usage_error("decode", "%s", "takes no arguments");
    if (cli_codec(cli))
        return 1;
    size_t n = fread(buf, 1, sizeof(buf), stdin);
    fl_err_t rc = fl_codec_decode(cli->codec, buf, n, &ev, &sid, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "feedline decode: %s: %s\n", fl_err_str(rc), err);
        return 1;
    }
    json_t *o = fl_event_to_json(&ev);
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
    fl_event_clear(&ev);
    return 0;
}

static int cmd_encode(fl_cli_t *cli, int argc, char **argv)
{
    char err[512];
    json_error_t jerr;
    fl_event_t ev = {0};
    const void *val;
    size_t vlen;
    int ret = 1;

    if (argc != 1)
        return usage_error("encode", "%s", "takes no arguments");
    if (cli_codec(cli))
        return 1;
    json_t *o = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        fprintf(stderr, "feedline encode: not JSON: %s\n", jerr.text);
        return 1;
    }
    if (fl_event_from_json(o, &ev, err, sizeof(err)) || fl_event_validate(&ev, err, sizeof(err)) ||
        fl_codec_encode(cli->codec, &ev, &val, &vlen, err, sizeof(err))) {
        fprintf(stderr, "feedline encode: %s\n", err);
        goto out;
    }
    ret = fwrite(val, 1, vlen, stdout) == vlen ? 0 : 1;
out:
    json_decref(o);
    fl_event_clear(&ev);
    return ret;
}

static int cmd_partition(fl_cli_t *cli, int argc, char **argv)
{
    char *end;
    int32_t parts;

    if (argc != 3)
        return usage_error("partition", "%s", "expected TOPIC|COUNT KEY");
    long n = strtol(argv[1], &end, 10);
    if (*argv[1] && !*end) {
        if (n < 1 || n > 1024)
            return usage_error("partition", "partition count '%s' out of range", argv[1]);
        parts = (int32_t)n;
    } else {
        if (cli_topology(cli))
            return 1;
        const fl_topic_t *t = fl_topology_topic(cli->topo, argv[1]);
        if (!t)
            return usage_error("partition", "unknown topic '%s'", argv[1]);
        parts = t->partitions;
    }
    printf("%d\n", fl_partition_for_key(argv[2], strlen(argv[2]), parts));
    return 0;
}

/* ---- token ---------------------------------------------------------------- */

/* Mints with the topology's api.jwt keys and policy, so the token is one
 * the read API accepts (issuer and audience included). */
static int cmd_token(fl_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
                                         {"alg", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    char err[512], *end, *tok = NULL;
    long long ttl = 3600, user;
    unsigned alg = 0;
    int c, ret = 1;
    fl_jwt_t *j = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't') {
            errno = 0;
            ttl = strtoll(optarg, &end, 10);
            if (!*optarg || *end || errno || ttl <= 0)
                return usage_error("token", "'%s' is not a lifetime in seconds", optarg);
        } else if (c == 'a' && !strcmp(optarg, "HS256")) {
            alg = FL_JWT_ALG_HS256;
        } else if (c == 'a' && !strcmp(optarg, "EdDSA")) {
            alg = FL_JWT_ALG_EDDSA;
        } else if (c == 'a') {
            return usage_error("token", "unknown algorithm '%s' (HS256 or EdDSA)", optarg);
        } else {
            return usage_error("token", "%s", "unknown option");
        }
    }
    if (optind != argc - 1)
        return usage_error("token", "%s", "expected exactly one USER id");
    errno = 0;
    user = strtoll(argv[optind], &end, 10);
    if (!*argv[optind] || *end || errno || user <= 0)
        return usage_error("token", "'%s' is not a user id", argv[optind]);
    if (cli_topology(cli))
        return 1;
    j = fl_jwt_new(&cli->topo->api, err, sizeof(err));
    if (!j || !(tok = fl_jwt_mint(j, alg, user, (int64_t)time(NULL), ttl, err, sizeof(err)))) {
        fprintf(stderr, "feedline token: %s\n", err);
        goto out;
    }
    printf("%s\n", tok);
    ret = 0;
out:
    free(tok);
    fl_jwt_free(j);
    return ret;
}

/* Prints the timelines held in kv (TIMELINE keys), one JSON line per user,
 * newest entry first (the keys are oldest first: walk backwards): every
 * entry when full, post ids only otherwise. Users come in descending id
 * order. */
static int print_timelines(fl_kv_t *kv, bool full)
{
    fl_kv_iter_t *it = NULL;
    uint8_t tag = FL_KEY_TAG_TIMELINE;
    json_t *cur = NULL, *list = NULL;
    int64_t cur_user = 0;
    char err[256];

    if (fl_kv_iter_new(kv, &tag, 1, &it, err, sizeof(err)))
        return -1;
    for (fl_kv_iter_seek_last(it);; fl_kv_iter_prev(it)) {
        bool valid = fl_kv_iter_valid(it);
        int64_t u = 0, t = 0, p = 0;
        size_t klen = 0, vlen = 0;
        const void *k = valid ? fl_kv_iter_key(it, &klen) : NULL;
        const uint8_t *v = valid ? fl_kv_iter_value(it, &vlen) : NULL;
        if (valid && fl_key_parse_timeline(k, klen, &u, &t, &p))
            continue;
        if (cur && (!valid || u != cur_user)) {
            json_object_set_new(cur, "entries", json_integer((json_int_t)json_array_size(list)));
            json_object_set_new(cur, "timeline", list);
            json_dumpf(cur, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
            json_decref(cur);
            cur = NULL;
        }
        if (!valid)
            break;
        if (!cur) {
            cur_user = u;
            cur = json_pack("{s:I}", "user_id", (json_int_t)u);
            list = json_array();
        }
        if (full)
            json_array_append_new(list, json_pack("{s:I, s:I, s:I}", "post_id", (json_int_t)p,
                                                  "author_id",
                                                  (json_int_t)(vlen == 8 ? fl_key_dec_i64(v) : 0),
                                                  "created_at", (json_int_t)t));
        else
            json_array_append_new(list, json_integer(p));
    }
    fl_kv_iter_free(it);
    return 0;
}

/* `timeline --all --store DIR...`: the timelines as the local RocksDB
 * stores hold them (a stopped processor's folders), so that a restored
 * store can be compared with what its changelog or an oracle says. */
static int timeline_from_stores(int argc, char **argv)
{
    char err[512];
    int ret = 0;
    for (int i = 0; i < argc; i++) {
        fl_kv_t *kv = NULL;
        fl_kv_rocksdb_opts_t o = {.must_exist = true};
        if (fl_kv_rocksdb_open(argv[i], &o, &kv, err, sizeof(err))) {
            fprintf(stderr, "feedline timeline: %s: %s\n", argv[i], err);
            return 1;
        }
        if (print_timelines(kv, false))
            ret = 1;
        fl_kv_free(kv);
    }
    return ret;
}

static int cmd_timeline(fl_cli_t *cli, int argc, char **argv)
{
    char err[512], *end = NULL;
    fl_kv_t *kv = NULL;
    bool all = argc == 2 && !strcmp(argv[1], "--all");
    int64_t user = 0;
    int ret = 1;

    if (argc >= 4 && !strcmp(argv[1], "--all") && !strcmp(argv[2], "--store"))
        return timeline_from_stores(argc - 3, argv + 3);
    if (argc != 2)
        return usage_error("timeline", "%s", "expected a USER id, --all or --all --store DIR...");
    if (!all) {
        user = strtoll(argv[1], &end, 10);
        if (!*argv[1] || *end)
            return usage_error("timeline", "'%s' is not a user id", argv[1]);
    }
    if (cli_topology(cli))
        return 1;
    kv = fl_kv_mem_new();
    if (!kv ||
        fl_inspect_load_timelines(cli->topo, all ? 0 : user, kv, &fl_stop, err, sizeof(err))) {
        fprintf(stderr, "feedline timeline: %s\n", kv ? err : "out of memory");
        goto out;
    }
    if (!all) {
        /* A user with no entries still gets a line. */
        fl_kv_stats_t stats;
        if (!fl_kv_stats(kv, &stats, NULL, 0) && stats.entries == 0)
            printf("{\"user_id\":%" PRId64 ",\"entries\":0,\"timeline\":[]}\n", user);
    }
    ret = print_timelines(kv, !all) ? 1 : 0;
out:
    fl_kv_free(kv);
    return ret;
}

static int cmd_verify(fl_cli_t *cli, int argc, char **argv)
{
    if (cli_topology(cli))
        return 1;
    return fl_verify_cmd(cli->topo, &fl_stop, argc, argv);
}

static int cmd_replay(fl_cli_t *cli, int argc, char **argv)
{
    if (cli_topology(cli))
        return 1;
    return fl_replay_cmd(cli->topo, cli->topology_path, &fl_stop, argc, argv);
}

static int cmd_generations(fl_cli_t *cli, int argc, char **argv)
{
    return fl_generations_cmd(cli->topology_path, argc, argv);
}

static int cmd_lag(fl_cli_t *cli, int argc, char **argv)
{
    if (cli_topology(cli))
        return 1;
    return fl_lag_cmd(cli->topo, argc, argv);
}

static int cmd_help(fl_cli_t *cli, int argc, char **argv);

static const fl_command_t fl_commands[] = {
    {"produce", cmd_produce, "produce TOPIC",
     "Reads events as JSON lines from stdin and produces them to the input TOPIC as\n"
     "Avro (Confluent wire format), keyed by the topic's key field, with the\n"
     "idempotent producer and the Java-compatible murmur2 partitioner. Each line is\n"
     "an object with a \"type\" member (e.g. \"PostCreated\") and the fields of that\n"
     "event's schema. Bad lines are reported with their line number and skipped.\n"
     "Exit status: 0 all produced, 1 Kafka failure, 3 some lines skipped.\n"},
    {"tail", cmd_tail, "tail TOPIC [--from-beginning] [--exit-at-end] [--max N]",
     "Prints the records of TOPIC as JSON lines with topic, partition, offset,\n"
     "timestamp, key, headers and the decoded value: events of input and dead-letter\n"
     "topics (with their schema id, or an error when the value does not decode),\n"
     "timeline operations, store changelog keys and values (null = tombstone). Starts at the end "
     "unless --from-beginning;\n"
     "--exit-at-end stops once every partition has been read to its end.\n"},
    {"timeline", cmd_timeline, "timeline USER|--all|--all --store DIR...",
     "Prints USER's current timeline, newest first, rebuilt from the timelines\n"
     "store's changelog: one JSON line with every entry.\n"
     "--all prints every user's timeline as post ids, one line per user.\n"
     "--all --store DIR... prints them from local store folders instead (a stopped\n"
     "processor's <state-dir>/timeline-<instance>/timelines-<partition>).\n"},
    {"topology", cmd_topology, "topology",
     "Prints the topology file as loaded and validated, environment overrides applied.\n"},
    {"topics", cmd_topics, "topics create [--wait SECONDS]",
     "Creates every topic of the topology that is missing (input and dlq topics with\n"
     "unlimited retention, changelogs compacted) and checks the partition counts of\n"
     "existing ones. --wait retries until the cluster answers.\n"},
    {"lag", cmd_lag, FL_LAG_CMD_USAGE, FL_LAG_CMD_HELP},
    {"verify", cmd_verify, FL_VERIFY_USAGE, FL_VERIFY_HELP},
    {"replay", cmd_replay, FL_REPLAY_USAGE, FL_REPLAY_HELP},
    {"generations", cmd_generations, FL_GENERATIONS_USAGE, FL_GENERATIONS_HELP},
    {"token", cmd_token, "token USER [--ttl SECONDS] [--alg HS256|EdDSA]",
     "Prints a bearer token for the read API naming USER as the viewer, signed\n"
     "with the topology's api.jwt keys (HS256: the secret or FEEDLINE_JWT_SECRET;\n"
     "EdDSA: the private key file) and carrying its issuer and audience. --ttl is\n"
     "the lifetime (default 3600 s); --alg picks the algorithm (default: the first\n"
     "pinned one with a signing key).\n"},
    {"encode", cmd_encode, "encode",
     "Reads one JSON event from stdin and writes its framed Avro bytes to stdout.\n"},
    {"decode", cmd_decode, "decode",
     "Reads one framed Avro value from stdin and prints the event as JSON.\n"},
    {"partition", cmd_partition, "partition TOPIC|COUNT KEY",
     "Prints the partition of KEY under the murmur2 partitioner, among the\n"
     "partitions of a topology TOPIC or among COUNT partitions.\n"},
    {"help", cmd_help, "help [COMMAND]", "Shows help for feedline or one command.\n"},
};

static const fl_command_t *fl_command_find(const char *name)
{
    for (size_t i = 0; i < sizeof(fl_commands) / sizeof(fl_commands[0]); i++)
        if (!strcmp(fl_commands[i].name, name))
            return &fl_commands[i];
    return NULL;
}

static void main_usage(FILE *out)
{
    fprintf(out, "usage: feedline [--topology FILE] [--schemas DIR] COMMAND [ARGS]\n\n"
                 "Options (before the command):\n"
                 "  --topology FILE  topology file (default $FEEDLINE_TOPOLOGY or "
                 "topology/feedline.yaml)\n"
                 "  --schemas DIR    schema folder (default $FEEDLINE_SCHEMAS or schemas)\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(fl_commands) / sizeof(fl_commands[0]); i++)
        fprintf(out, "  %s\n", fl_commands[i].usage);
    fprintf(out, "\nEnvironment: FEEDLINE_KAFKA, FEEDLINE_REDIS, FEEDLINE_POSTGRES and "
                 "FEEDLINE_API override the topology's endpoints.\n");
}

static int cmd_help(fl_cli_t *cli, int argc, char **argv)
{
    const fl_command_t *c = argc > 1 ? fl_command_find(argv[1]) : NULL;
    if (argc > 1 && !c)
        return usage_error("help", "unknown command '%s'", argv[1]);
    if (c)
        return print_help(c, stdout);
    main_usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    fl_cli_t cli = {fl_topology_default_path(), fl_codec_default_dir(), NULL, NULL};
    int i = 1, ret;

    fl_log_init();
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--topology") && i + 1 < argc)
            cli.topology_path = argv[++i];
        else if (!strcmp(argv[i], "--schemas") && i + 1 < argc)
            cli.schemas_dir = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            main_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "feedline: unknown option '%s'\n", argv[i]);
            main_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    const fl_command_t *c = fl_command_find(argv[i]);
    if (!c) {
        fprintf(stderr, "feedline: unknown command '%s'\n", argv[i]);
        main_usage(stderr);
        return EXIT_USAGE;
    }
    if (want_help(argc - i, argv + i))
        return print_help(c, stdout);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ret = c->run(&cli, argc - i, argv + i);
    fl_codec_free(cli.codec);
    fl_topology_free(cli.topo);
    return ret;
}
