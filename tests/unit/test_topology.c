/*
 * test_topology.c - the topology loader and validator.
 *
 * Covers the real topology/feedline.yaml, defaults, flow versus block
 * style, environment overrides, the print/parse round trip, sinks, the
 * read API's section, and one test per validation error checking both the "x.yaml:LINE:" prefix and
 * a phrase of the message. Documents are built from numbered fragments so the expected line of each
 * error can be read off the source.
 *
 * Tests run with cwd = repo root; FEEDLINE_SOURCE_DIR, when set, locates
 * the real file and the fixtures under tests/data/topology/.
 */
#include "fl_topology.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static const char *const env_vars[] = {"FEEDLINE_KAFKA",          "FEEDLINE_REDIS",
                                       "FEEDLINE_POSTGRES",       "FEEDLINE_API",
                                       "FEEDLINE_TOPOLOGY",       "FEEDLINE_JWT_SECRET",
                                       "FEEDLINE_JWT_PUBLIC_KEY", "FEEDLINE_JWT_PRIVATE_KEY",
                                       "FEEDLINE_DEV_LOGIN",      "FEEDLINE_GENERATIONS"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
}

TestSuite(topology, .init = clear_env);

/* path relative to the source tree; static buffer, one at a time. */
static const char *src_path(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");

    snprintf(buf, sizeof(buf), "%s/%s", dir && *dir ? dir : ".", rel);
    return buf;
}

static fl_topology_t *parse_ok(const char *yaml)
{
    char err[512] = "";
    fl_topology_t *t = fl_topology_parse(yaml, strlen(yaml), "x.yaml", err, sizeof(err));

    cr_assert_not_null(t, "expected the document to load, got: %s", err);
    return t;
}

/* The document must fail with a message starting at loc and containing phrase. */
static void expect_error(const char *yaml, size_t len, const char *loc, const char *phrase)
{
    char err[512] = "";
    fl_topology_t *t = fl_topology_parse(yaml, len, "x.yaml", err, sizeof(err));

    cr_assert_null(t, "expected an error '%s ... %s', but the document loaded", loc, phrase);
    cr_assert(strncmp(err, loc, strlen(loc)) == 0, "expected '%s' at the start of: %s", loc, err);
    cr_assert(strstr(err, phrase) != NULL, "expected '%s' in: %s", phrase, err);
}

#define EXPECT_ERROR(yaml, loc, phrase) expect_error(yaml, sizeof(yaml) - 1, loc, phrase)

/* Lines 1-3. */
#define HEAD                                                                                       \
    "version: 1\n"                                                                                 \
    "app: t\n"                                                                                     \
    "endpoints: {kafka: k, redis: r, postgres: p, api: a}\n"

/* Lines 4-8. */
#define TOPICS                                                                                     \
    "topics:\n"                                                                                    \
    "  - {name: in, partitions: 2, kind: input}\n"                                                 \
    "  - {name: in2, partitions: 2, kind: input}\n"                                                \
    "  - {name: log, partitions: 2, kind: changelog}\n"                                            \
    "  - {name: dlq, partitions: 1, kind: dlq}\n"

/* Lines 9-10. */
#define STORES                                                                                     \
    "stores:\n"                                                                                    \
    "  - {name: st, changelog: log}\n"

/* Lines 11-12. */
#define PROCS                                                                                      \
    "processors:\n"                                                                                \
    "  - {name: p, group: g, inputs: [in, in2], outputs: [dlq], stores: [st]}\n"

#define VALID HEAD TOPICS STORES PROCS

/* Lines 13-15, after VALID: sink s reads in (2 partitions) and dlq (1). */
#define SINKS                                                                                      \
    "sinks:\n"                                                                                     \
    "  - {name: s, group: gs, inputs: [in, dlq], destination: redis}\n"                            \
    "  - {name: s2, group: gs2, inputs: [log], destination: postgres}\n"

/* Settings from line 10 on. */
#define SETTINGS(body) HEAD TOPICS "settings:\n" body

/* Equal strings, or both NULL. */
static void assert_str_or_null(const char *a, const char *b, const char *what)
{
    if (!a || !b)
        cr_assert(a == b, "%s: '%s' versus '%s'", what, a ? a : "(null)", b ? b : "(null)");
    else
        cr_assert_str_eq(a, b, "%s", what);
}

/* Every field of the api section but the secret, which is never printed. */
static void assert_same_api(const fl_api_cfg_t *a, const fl_api_cfg_t *b)
{
    assert_str_or_null(a->jwt_public_key_file, b->jwt_public_key_file, "public_key_file");
    assert_str_or_null(a->jwt_private_key_file, b->jwt_private_key_file, "private_key_file");
    assert_str_or_null(a->jwt_issuer, b->jwt_issuer, "issuer");
    assert_str_or_null(a->jwt_audience, b->jwt_audience, "audience");
    cr_assert_eq(a->threads, b->threads);
    cr_assert_eq(a->max_connections, b->max_connections);
    cr_assert_eq(a->max_header_bytes, b->max_header_bytes);
    cr_assert_eq(a->max_query_bytes, b->max_query_bytes);
    cr_assert_eq(a->max_body_bytes, b->max_body_bytes);
    cr_assert_eq(a->jwt_algorithms, b->jwt_algorithms);
    cr_assert_eq(a->jwt_leeway_s, b->jwt_leeway_s);
    cr_assert_eq(a->jwt_max_bytes, b->jwt_max_bytes);
    cr_assert_eq(a->rate_per_s, b->rate_per_s);
    cr_assert_eq(a->rate_burst, b->rate_burst);
    cr_assert(a->rank_half_life_s == b->rank_half_life_s, "half_life_s");
    cr_assert(a->rank_w_recency == b->rank_w_recency, "recency");
    cr_assert(a->rank_w_likes == b->rank_w_likes, "likes");
    cr_assert(a->rank_w_affinity == b->rank_w_affinity, "affinity");
    cr_assert_eq(a->rank_candidates, b->rank_candidates);
    cr_assert_eq(a->stream_ping_s, b->stream_ping_s);
    cr_assert_eq(a->stream_max_clients, b->stream_max_clients);
    cr_assert_eq(a->dev_login, b->dev_login);
}

static void assert_same(const fl_topology_t *a, const fl_topology_t *b)
{
    assert_same_api(&a->api, &b->api);
    cr_assert_str_eq(a->app, b->app);
    cr_assert_str_eq(a->endpoints.kafka, b->endpoints.kafka);
    cr_assert_str_eq(a->endpoints.redis, b->endpoints.redis);
    cr_assert_str_eq(a->endpoints.postgres, b->endpoints.postgres);
    cr_assert_str_eq(a->endpoints.api, b->endpoints.api);
    cr_assert_eq(!a->topic_prefix, !b->topic_prefix);
    if (a->topic_prefix)
        cr_assert_str_eq(a->topic_prefix, b->topic_prefix);
    cr_assert_eq(a->endpoints.redis_db, b->endpoints.redis_db);
    cr_assert_eq(!a->endpoints.postgres_schema, !b->endpoints.postgres_schema);
    if (a->endpoints.postgres_schema)
        cr_assert_str_eq(a->endpoints.postgres_schema, b->endpoints.postgres_schema);
    cr_assert(memcmp(&a->settings, &b->settings, sizeof(a->settings)) == 0, "settings differ");
    cr_assert_eq(a->n_topics, b->n_topics);
    for (size_t i = 0; i < a->n_topics; i++) {
        cr_assert_str_eq(a->topics[i].name, b->topics[i].name);
        cr_assert_eq(a->topics[i].partitions, b->topics[i].partitions);
        cr_assert_eq(a->topics[i].kind, b->topics[i].kind);
    }
    cr_assert_eq(a->n_stores, b->n_stores);
    for (size_t i = 0; i < a->n_stores; i++) {
        cr_assert_str_eq(a->stores[i].name, b->stores[i].name);
        cr_assert_str_eq(a->stores[i].changelog, b->stores[i].changelog);
    }
    cr_assert_eq(a->n_processors, b->n_processors);
    for (size_t i = 0; i < a->n_processors; i++) {
        const fl_processor_t *p = &a->processors[i], *q = &b->processors[i];

        cr_assert_str_eq(p->name, q->name);
        cr_assert_str_eq(p->group, q->group);
        cr_assert_eq(p->n_inputs, q->n_inputs);
        for (size_t j = 0; j < p->n_inputs; j++)
            cr_assert_str_eq(p->inputs[j], q->inputs[j]);
        cr_assert_eq(p->n_outputs, q->n_outputs);
        for (size_t j = 0; j < p->n_outputs; j++)
            cr_assert_str_eq(p->outputs[j], q->outputs[j]);
        cr_assert_eq(p->n_stores, q->n_stores);
        for (size_t j = 0; j < p->n_stores; j++)
            cr_assert_str_eq(p->stores[j], q->stores[j]);
    }
    cr_assert_eq(a->n_sinks, b->n_sinks);
    for (size_t i = 0; i < a->n_sinks; i++) {
        const fl_sink_cfg_t *p = &a->sinks[i], *q = &b->sinks[i];

        cr_assert_str_eq(p->name, q->name);
        cr_assert_str_eq(p->group, q->group);
        cr_assert_eq(p->n_inputs, q->n_inputs);
        for (size_t j = 0; j < p->n_inputs; j++)
            cr_assert_str_eq(p->inputs[j], q->inputs[j]);
        cr_assert_eq(p->destination, q->destination);
    }
}

/* Prints t into a malloc'd string; caller frees. */
static char *print_to_string(const fl_topology_t *t, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);

    cr_assert_not_null(f);
    fl_topology_print(t, f);
    cr_assert_eq(fclose(f), 0);
    return buf;
}

/* Print, parse the output again, compare, and check printing is stable. */
static void assert_round_trip(const fl_topology_t *t)
{
    char err[512] = "";
    size_t len1, len2;
    char *text1 = print_to_string(t, &len1), *text2;
    fl_topology_t *again = fl_topology_parse(text1, len1, "printed.yaml", err, sizeof(err));

    cr_assert_not_null(again, "printed topology does not load: %s\n%s", err, text1);
    assert_same(t, again);
    text2 = print_to_string(again, &len2);
    cr_assert_str_eq(text1, text2);
    free(text1);
    free(text2);
    fl_topology_free(again);
}

/* ------------------------------------------------------------------ */
/* Valid documents                                                     */
/* ------------------------------------------------------------------ */

Test(topology, real_file_loads)
{
    char err[512] = "";
    fl_topology_t *t = fl_topology_load(src_path("topology/feedline.yaml"), err, sizeof(err));
    const fl_topic_t *tp;
    const fl_processor_t *p;
    const fl_sink_cfg_t *k;

    cr_assert_not_null(t, "%s", err);
    cr_assert_str_eq(t->app, "feedline");
    cr_assert_str_eq(t->endpoints.kafka, "127.0.0.1:19092");
    cr_assert_str_eq(t->endpoints.redis, "127.0.0.1:16379");
    cr_assert_str_eq(t->endpoints.postgres,
                     "host=127.0.0.1 port=15432 dbname=feedline user=feedline");
    cr_assert_str_eq(t->endpoints.api, "127.0.0.1:18080");

    cr_assert_eq(t->settings.celebrity_threshold, 10000);
    cr_assert_eq(t->settings.celebrity_hysteresis, 1000);
    cr_assert_eq(t->settings.timeline_cap, 800);
    cr_assert_eq(t->settings.backfill_size, 200);
    cr_assert_eq(t->settings.outbox_cap, 800);
    cr_assert_eq(t->settings.batch_max_records, 5000);
    cr_assert_eq(t->settings.batch_max_ms, 50);
    cr_assert_eq(t->settings.replay_batch_max_records, 25000);
    cr_assert_eq(t->settings.replay_batch_max_ms, 200);

    cr_assert_eq(t->n_topics, 13);
    const char *inputs[] = {"users", "posts", "follows", "likes"};
    for (size_t i = 0; i < 4; i++) {
        tp = fl_topology_topic(t, inputs[i]);
        cr_assert_not_null(tp, "topic %s", inputs[i]);
        cr_assert_eq(tp->kind, FL_TOPIC_INPUT);
        cr_assert_eq(tp->partitions, 4);
    }
    tp = fl_topology_topic(t, "feedline.timeline-ops");
    cr_assert(tp && tp->kind == FL_TOPIC_INTERNAL && tp->partitions == 4);
    tp = fl_topology_topic(t, "feedline.celebrities");
    cr_assert(tp && tp->kind == FL_TOPIC_CHANGELOG && tp->partitions == 1);
    tp = fl_topology_topic(t, "feedline.timelines-changelog");
    cr_assert(tp && tp->kind == FL_TOPIC_CHANGELOG && tp->partitions == 4);
    tp = fl_topology_topic(t, "feedline.dlq");
    cr_assert(tp && tp->kind == FL_TOPIC_DLQ && tp->partitions == 1);
    for (size_t i = 1; i < t->n_topics; i++)
        cr_assert_gt(t->topics[i].line, t->topics[i - 1].line, "lines follow the file");

    cr_assert_eq(t->n_stores, 4);
    cr_assert_str_eq(fl_topology_store(t, "fanout-authors")->changelog,
                     "feedline.fanout-authors-changelog");
    cr_assert_str_eq(fl_topology_store(t, "timelines")->changelog, "feedline.timelines-changelog");

    cr_assert_eq(t->n_processors, 4);
    p = fl_topology_processor(t, "fanout");
    cr_assert_not_null(p);
    cr_assert_str_eq(p->group, "feedline-fanout");
    cr_assert_eq(p->n_inputs, 2);
    cr_assert_str_eq(p->inputs[0], "posts");
    cr_assert_str_eq(p->inputs[1], "follows");
    cr_assert_eq(p->n_outputs, 2);
    cr_assert_str_eq(p->outputs[0], "feedline.timeline-ops");
    cr_assert_str_eq(p->outputs[1], "feedline.celebrities");
    cr_assert_eq(p->n_stores, 1);
    cr_assert_str_eq(p->stores[0], "fanout-authors");
    cr_assert_gt(p->line, 0);
    p = fl_topology_processor(t, "timeline");
    cr_assert_not_null(p);
    cr_assert_str_eq(p->group, "feedline-timeline");
    cr_assert_eq(p->n_inputs, 1);
    cr_assert_eq(p->n_outputs, 0);
    cr_assert_eq(p->n_stores, 1);
    cr_assert_str_eq(p->stores[0], "timelines");
    p = fl_topology_processor(t, "engagement");
    cr_assert(p && p->n_inputs == 3 && p->n_outputs == 2 && p->n_stores == 1);
    cr_assert_str_eq(p->inputs[2], "likes");
    cr_assert_str_eq(p->stores[0], "engagement");
    p = fl_topology_processor(t, "affinity");
    cr_assert(p && p->n_inputs == 1 && p->n_outputs == 1 && p->n_stores == 1);
    cr_assert_str_eq(p->inputs[0], "feedline.engagement-edges");
    cr_assert_str_eq(p->outputs[0], "feedline.engagement");
    tp = fl_topology_topic(t, "feedline.engagement");
    cr_assert(tp && tp->kind == FL_TOPIC_CHANGELOG && tp->partitions == 4);

    cr_assert_eq(t->n_sinks, 2);
    k = fl_topology_sink(t, "redis");
    cr_assert_not_null(k);
    cr_assert_str_eq(k->group, "feedline-redis-sink");
    cr_assert_eq(k->destination, FL_SINK_REDIS);
    cr_assert_eq(k->n_inputs, 5);
    cr_assert_str_eq(k->inputs[0], "users");
    cr_assert_str_eq(k->inputs[4], "feedline.celebrities");
    cr_assert_gt(k->line, t->processors[t->n_processors - 1].line, "sinks come last");
    k = fl_topology_sink(t, "postgres");
    cr_assert_not_null(k);
    cr_assert_str_eq(k->group, "feedline-pg-sink");
    cr_assert_eq(k->destination, FL_SINK_POSTGRES);
    cr_assert_eq(k->n_inputs, 5);
    cr_assert_str_eq(k->inputs[3], "feedline.engagement");
    cr_assert_str_eq(k->inputs[4], "feedline.celebrities");

    cr_assert_null(fl_topology_topic(t, "nope"));
    cr_assert_null(fl_topology_store(t, "nope"));
    cr_assert_null(fl_topology_processor(t, "nope"));
    cr_assert_null(fl_topology_sink(t, "nope"));
    cr_assert_null(fl_topology_sink(t, "fanout"), "processors are not sinks");
    cr_assert_str_eq(t->path, src_path("topology/feedline.yaml"));
    fl_topology_free(t);
}

Test(topology, minimal_document_takes_defaults)
{
    fl_topology_t *t = parse_ok(HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\n");

    cr_assert_eq(t->settings.celebrity_threshold, 10000);
    cr_assert_eq(t->settings.celebrity_hysteresis, 1000);
    cr_assert_eq(t->settings.timeline_cap, 800);
    cr_assert_eq(t->settings.backfill_size, 200);
    cr_assert_eq(t->settings.outbox_cap, 800);
    cr_assert_eq(t->settings.batch_max_records, 5000);
    cr_assert_eq(t->settings.batch_max_ms, 50);
    cr_assert_eq(t->n_topics, 1);
    cr_assert_eq(t->n_stores, 0);
    cr_assert_eq(t->n_processors, 0);
    cr_assert_eq(t->n_sinks, 0);
    cr_assert_null(t->sinks);
    fl_topology_free(t);
}

Test(topology, partial_settings_keep_other_defaults)
{
    fl_topology_t *t = parse_ok(SETTINGS("  timeline_cap: 100\n  batch_max_ms: +7\n"));

    cr_assert_eq(t->settings.timeline_cap, 100);
    cr_assert_eq(t->settings.batch_max_ms, 7);
    cr_assert_eq(t->settings.celebrity_threshold, 10000);
    cr_assert_eq(t->settings.outbox_cap, 800);
    fl_topology_free(t);
}

Test(topology, flow_and_block_style_agree)
{
    char err[512] = "";
    fl_topology_t *flow = parse_ok(VALID);
    fl_topology_t *block =
        fl_topology_load(src_path("tests/data/topology/block-style.yaml"), err, sizeof(err));

    cr_assert_not_null(block, "%s", err);
    assert_same(flow, block);
    cr_assert_eq(fl_topology_topic(block, "in2")->line, 14);
    cr_assert_eq(fl_topology_processor(block, "p")->line, 27);
    fl_topology_free(flow);
    fl_topology_free(block);
}

Test(topology, whole_document_in_flow_style)
{
    fl_topology_t *t =
        parse_ok("{version: 1, app: t, endpoints: {kafka: k, redis: r, postgres: p, api: a},\n"
                 " settings: {timeline_cap: 10, backfill_size: 5},\n"
                 " topics: [{name: dlq, partitions: 1, kind: dlq}], stores: [], processors: []}\n");

    cr_assert_eq(t->settings.timeline_cap, 10);
    cr_assert_eq(t->settings.backfill_size, 5);
    cr_assert_eq(t->n_topics, 1);
    fl_topology_free(t);
}

Test(topology, quoted_strings_are_strings)
{
    fl_topology_t *t =
        parse_ok("version: 1\n"
                 "app: 'my app'\n"
                 "endpoints: {kafka: \"h:1,h:2\", redis: 'r', postgres: \"a=b c=d\", "
                 "api: 8080}\n"
                 "topics: [{name: \"dlq\", partitions: 1, kind: dlq}]\n");

    cr_assert_str_eq(t->app, "my app");
    cr_assert_str_eq(t->endpoints.kafka, "h:1,h:2");
    cr_assert_str_eq(t->endpoints.api, "8080");
    cr_assert_str_eq(t->topics[0].name, "dlq");
    fl_topology_free(t);
}

Test(topology, env_overrides_endpoints)
{
    fl_topology_t *t;

    setenv("FEEDLINE_KAFKA", "broker:9092", 1);
    setenv("FEEDLINE_REDIS", "cache:6379", 1);
    setenv("FEEDLINE_POSTGRES", "host=db dbname=x", 1);
    setenv("FEEDLINE_API", "0.0.0.0:80", 1);
    t = parse_ok(VALID);
    cr_assert_str_eq(t->endpoints.kafka, "broker:9092");
    cr_assert_str_eq(t->endpoints.redis, "cache:6379");
    cr_assert_str_eq(t->endpoints.postgres, "host=db dbname=x");
    cr_assert_str_eq(t->endpoints.api, "0.0.0.0:80");
    fl_topology_free(t);
}

Test(topology, empty_env_does_not_override)
{
    fl_topology_t *t;

    setenv("FEEDLINE_KAFKA", "", 1);
    setenv("FEEDLINE_API", "api:1", 1);
    t = parse_ok(VALID);
    cr_assert_str_eq(t->endpoints.kafka, "k");
    cr_assert_str_eq(t->endpoints.redis, "r");
    cr_assert_str_eq(t->endpoints.api, "api:1");
    fl_topology_free(t);
}

Test(topology, env_does_not_bypass_validation)
{
    setenv("FEEDLINE_KAFKA", "broker:9092", 1);
    EXPECT_ERROR("version: 1\napp: t\nendpoints: {redis: r, postgres: p, api: a}\n"
                 "topics: [{name: dlq, partitions: 1, kind: dlq}]\n",
                 "x.yaml:3:", "missing required key 'kafka'");
}

Test(topology, default_path)
{
    /* no live generation where FEEDLINE_GENERATIONS points */
    setenv("FEEDLINE_GENERATIONS", "/nonexistent/feedline-generations", 1);
    cr_assert_str_eq(fl_topology_default_path(), "topology/feedline.yaml");
    setenv("FEEDLINE_TOPOLOGY", "/etc/feedline/topology.yaml", 1);
    cr_assert_str_eq(fl_topology_default_path(), "/etc/feedline/topology.yaml");
    setenv("FEEDLINE_TOPOLOGY", "", 1);
    cr_assert_str_eq(fl_topology_default_path(), "topology/feedline.yaml");
}

Test(topology, default_path_is_the_live_generations)
{
    char dir[] = "/tmp/feedline-gens-XXXXXX", path[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/g2", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/live", dir);
    cr_assert_eq(symlink("g2", path), 0);
    snprintf(path, sizeof(path), "%s/g2/topology.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    setenv("FEEDLINE_GENERATIONS", dir, 1);
    char want[256];
    snprintf(want, sizeof(want), "%s/live/topology.yaml", dir);
    cr_assert_str_eq(fl_topology_default_path(), want);
    /* FEEDLINE_TOPOLOGY still wins */
    setenv("FEEDLINE_TOPOLOGY", "/etc/feedline/topology.yaml", 1);
    cr_assert_str_eq(fl_topology_default_path(), "/etc/feedline/topology.yaml");
    unlink(path);
    snprintf(path, sizeof(path), "%s/live", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/g2", dir);
    rmdir(path);
    rmdir(dir);
}

Test(topology, print_round_trip_real_file)
{
    char err[512] = "";
    fl_topology_t *t = fl_topology_load(src_path("topology/feedline.yaml"), err, sizeof(err));
    size_t len;
    char *text;

    cr_assert_not_null(t, "%s", err);
    assert_round_trip(t);
    text = print_to_string(t, &len);
    cr_assert_not_null(strstr(text, "\nsettings:\n"));
    cr_assert_not_null(strstr(text, "  batch_max_ms: 50\n"), "all settings printed:\n%s", text);
    cr_assert_not_null(strstr(text, "    outputs: []\n"), "empty lists printed:\n%s", text);
    cr_assert_not_null(strstr(text, "\nsinks:\n  - name: redis\n    group: feedline-redis-sink\n"),
                       "sinks printed:\n%s", text);
    cr_assert_not_null(strstr(text, "    destination: postgres\n"), "%s", text);
    cr_assert_null(strchr(text, '{'), "block style only:\n%s", text);
    free(text);
    fl_topology_free(t);
}

Test(topology, print_round_trip_awkward_strings)
{
    fl_topology_t *t;

    setenv("FEEDLINE_KAFKA", "1234", 1);
    setenv("FEEDLINE_REDIS", "null", 1);
    setenv("FEEDLINE_POSTGRES", "host=db # not a comment: \"quoted\" back\\slash\ttab\nline", 1);
    setenv("FEEDLINE_API", "- [x]: {y} & *z !t %u 'q' caf\xc3\xa9", 1);
    t = parse_ok("version: 1\napp: \"yes\"\n"
                 "endpoints: {kafka: k, redis: r, postgres: p, api: a}\n"
                 "topics: [{name: '123', partitions: 1, kind: dlq}, {name: true, partitions: 1, "
                 "kind: input}]\n"
                 "processors: [{name: 'off', group: 'a: b', inputs: ['123'], outputs: [], "
                 "stores: []}]\n"
                 "sinks: [{name: 'null', group: 'x # y', inputs: ['true', '123'], "
                 "destination: postgres}]\n");
    clear_env();
    cr_assert_str_eq(t->app, "yes");
    cr_assert_str_eq(t->topics[1].name, "true");
    cr_assert_str_eq(fl_topology_sink(t, "null")->group, "x # y");
    assert_round_trip(t);
    fl_topology_free(t);
}

Test(topology, print_round_trip_settings)
{
    fl_topology_t *t =
        parse_ok(SETTINGS("  celebrity_threshold: 9223372036854775807\n"
                          "  celebrity_hysteresis: 0\n  backfill_size: 0\n  outbox_cap: 0\n"));

    cr_assert_eq(t->settings.celebrity_threshold, INT64_MAX);
    assert_round_trip(t);
    fl_topology_free(t);
}

/* ------------------------------------------------------------------ */
/* Files and YAML syntax                                               */
/* ------------------------------------------------------------------ */

Test(topology, missing_file)
{
    char err[512] = "";
    fl_topology_t *t = fl_topology_load("/nonexistent/feedline.yaml", err, sizeof(err));

    cr_assert_null(t);
    cr_assert(strncmp(err, "/nonexistent/feedline.yaml: ", 28) == 0, "%s", err);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);
}

Test(topology, error_from_file_names_the_file)
{
    char err[512] = "";
    char loc[4200];
    const char *path = src_path("tests/data/topology/not-copartitioned.yaml");
    fl_topology_t *t = fl_topology_load(path, err, sizeof(err));

    cr_assert_null(t);
    snprintf(loc, sizeof(loc), "%s:14: ", path);
    cr_assert(strncmp(err, loc, strlen(loc)) == 0, "expected '%s' in: %s", loc, err);
    cr_assert_not_null(strstr(err, "co-partitioned"), "%s", err);
}

Test(topology, small_errstr_is_terminated)
{
    char err[8];
    fl_topology_t *t = fl_topology_parse("version: 2\n", 11, "x.yaml", err, sizeof(err));

    cr_assert_null(t);
    cr_assert_str_eq(err, "x.yaml:");
    cr_assert_null(fl_topology_parse("version: 2\n", 11, "x.yaml", NULL, 0));
}

Test(topology, yaml_syntax_error_line)
{
    EXPECT_ERROR(HEAD "topics:\n  - name: a: b\n", "x.yaml:5:", "YAML syntax error");
}

Test(topology, yaml_unclosed_flow_line)
{
    /* libyaml notices at end of input; the line is clamped to the last one. */
    EXPECT_ERROR(HEAD "topics: [{name: a, partitions: 1\n",
                 "x.yaml:4:", "while parsing a flow mapping at line 4");
}

Test(topology, yaml_invalid_utf8_line)
{
    EXPECT_ERROR(HEAD "app2: \xff\xfe\n", "x.yaml:4:", "invalid YAML input");
}

Test(topology, empty_document)
{
    EXPECT_ERROR("# nothing here\n", "x.yaml:1:", "empty document");
}

Test(topology, top_level_not_a_mapping)
{
    EXPECT_ERROR("- version\n- app\n", "x.yaml:1:", "must be a mapping");
}

Test(topology, two_documents)
{
    EXPECT_ERROR(VALID "---\n" VALID, "x.yaml:13:", "only one YAML document");
}

Test(topology, aliases_rejected)
{
    EXPECT_ERROR("version: &v 1\napp: *v\n", "x.yaml:2:", "aliases are not supported");
}

Test(topology, tags_rejected)
{
    EXPECT_ERROR("version: 1\napp: !!str t\n", "x.yaml:2:", "tags are not supported");
}

Test(topology, nul_in_string)
{
    EXPECT_ERROR("version: 1\napp: \"a\\0b\"\n", "x.yaml:2:", "NUL");
}

Test(topology, nesting_too_deep)
{
    EXPECT_ERROR(
        "version: 1\napp: t\nx: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]\n",
        "x.yaml:3:", "nesting deeper");
}

Test(topology, non_scalar_key)
{
    EXPECT_ERROR("version: 1\n? [a, b]\n: c\n", "x.yaml:2:", "keys must be scalars");
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

Test(topology, unknown_top_level_key)
{
    EXPECT_ERROR(HEAD TOPICS "sources: []\n",
                 "x.yaml:9:", "unknown key 'sources' in the top level");
}

Test(topology, unknown_key_in_endpoints)
{
    EXPECT_ERROR("version: 1\napp: t\nendpoints:\n  kafka: k\n  rediss: r\n",
                 "x.yaml:5:", "unknown key 'rediss' in endpoints");
}

Test(topology, unknown_key_in_settings)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: 5\n  timline_cap: 5\n"),
                 "x.yaml:11:", "unknown key 'timline_cap' in settings");
}

Test(topology, unknown_key_in_topic)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: a, partitions: 1, kind: dlq,\n     retention: 5}\n",
                 "x.yaml:6:", "unknown key 'retention' in topic entry");
}

Test(topology, unknown_key_in_store)
{
    EXPECT_ERROR(HEAD TOPICS "stores:\n  - {name: s, changelog: log, ttl: 1}\n",
                 "x.yaml:10:", "unknown key 'ttl' in store entry");
}

Test(topology, unknown_key_in_processor)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n    inputs: [in]\n"
                             "    threads: 4\n",
                 "x.yaml:13:", "unknown key 'threads' in processor entry");
}

Test(topology, duplicate_top_level_key)
{
    EXPECT_ERROR(HEAD "app: again\n", "x.yaml:4:", "duplicate key 'app' (first at line 2)");
}

Test(topology, duplicate_key_in_flow_mapping)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: a, partitions: 1,\n     name: b, kind: dlq}\n",
                 "x.yaml:6:", "duplicate key 'name'");
}

Test(topology, missing_version)
{
    EXPECT_ERROR("app: t\n", "x.yaml:1:", "missing required key 'version'");
}

Test(topology, missing_topics)
{
    EXPECT_ERROR(HEAD, "x.yaml:1:", "missing required key 'topics'");
}

Test(topology, missing_endpoint)
{
    EXPECT_ERROR("version: 1\napp: t\n\nendpoints:\n  kafka: k\n  redis: r\n  postgres: p\n",
                 "x.yaml:4:", "missing required key 'api' in endpoints");
}

Test(topology, endpoint_not_a_string)
{
    EXPECT_ERROR("version: 1\napp: t\nendpoints:\n  kafka: k\n  redis: {host: r}\n",
                 "x.yaml:5:", "endpoints.redis must be a string");
}

Test(topology, endpoint_null)
{
    EXPECT_ERROR("version: 1\napp: t\nendpoints:\n  kafka:\n  redis: r\n",
                 "x.yaml:4:", "endpoints.kafka must be a string, got null");
}

Test(topology, app_empty)
{
    EXPECT_ERROR("version: 1\napp: ''\n", "x.yaml:2:", "app must not be empty");
}

Test(topology, endpoints_not_a_mapping)
{
    EXPECT_ERROR("version: 1\napp: t\nendpoints: [k, r]\n",
                 "x.yaml:3:", "endpoints must be a mapping");
}

Test(topology, topics_not_a_sequence)
{
    EXPECT_ERROR(HEAD "topics: {name: a}\n", "x.yaml:4:", "topics must be a sequence");
}

/* ------------------------------------------------------------------ */
/* Integers                                                            */
/* ------------------------------------------------------------------ */

Test(topology, version_must_be_1)
{
    EXPECT_ERROR("\nversion: 2\n", "x.yaml:2:", "unsupported version 2");
}

Test(topology, version_not_integer)
{
    EXPECT_ERROR("version: 1abc\n", "x.yaml:1:", "version must be an integer, got '1abc'");
}

Test(topology, integer_trailing_garbage)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: 12abc\n"),
                 "x.yaml:10:", "timeline_cap must be an integer, got '12abc'");
}

Test(topology, integer_float)
{
    EXPECT_ERROR(SETTINGS("  batch_max_ms: 1.5\n"),
                 "x.yaml:10:", "batch_max_ms must be an integer, got '1.5'");
}

Test(topology, integer_exponent)
{
    EXPECT_ERROR(SETTINGS("  batch_max_records: 1e3\n"), "x.yaml:10:", "must be an integer");
}

Test(topology, integer_overflow)
{
    EXPECT_ERROR(SETTINGS("  celebrity_threshold: 9223372036854775808\n"),
                 "x.yaml:10:", "celebrity_threshold is out of range");
}

Test(topology, integer_quoted)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: \"800\"\n"), "x.yaml:10:", "quoted string");
}

Test(topology, integer_leading_zero)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: 0800\n"), "x.yaml:10:", "leading zeros");
}

Test(topology, integer_empty)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap:\n"),
                 "x.yaml:10:", "timeline_cap must be an integer, got null");
}

Test(topology, integer_sequence)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: [1]\n"),
                 "x.yaml:10:", "timeline_cap must be an integer, got a sequence");
}

Test(topology, partitions_overflow)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: a, partitions: 4294967297, kind: dlq}\n",
                 "x.yaml:5:", "partitions must be between 1 and 1024, got 4294967297");
}

/* ------------------------------------------------------------------ */
/* Settings ranges                                                     */
/* ------------------------------------------------------------------ */

Test(topology, settings_not_a_mapping)
{
    EXPECT_ERROR(HEAD TOPICS "settings: [1]\n", "x.yaml:9:", "settings must be a mapping");
}

Test(topology, celebrity_threshold_positive)
{
    EXPECT_ERROR(SETTINGS("  celebrity_hysteresis: 0\n  celebrity_threshold: 0\n"),
                 "x.yaml:11:", "celebrity_threshold must be > 0");
}

Test(topology, celebrity_hysteresis_negative)
{
    EXPECT_ERROR(SETTINGS("  celebrity_hysteresis: -1\n"),
                 "x.yaml:10:", "celebrity_hysteresis must be >= 0");
}

Test(topology, celebrity_hysteresis_below_threshold)
{
    EXPECT_ERROR(SETTINGS("  celebrity_threshold: 100\n  celebrity_hysteresis: 100\n"),
                 "x.yaml:11:", "celebrity_hysteresis (100) must be less than celebrity_threshold");
}

Test(topology, default_hysteresis_blames_threshold)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: 5\n  celebrity_threshold: 500\n"), "x.yaml:11:",
                 "celebrity_hysteresis (1000) must be less than celebrity_threshold (500)");
}

Test(topology, timeline_cap_positive)
{
    EXPECT_ERROR(SETTINGS("  timeline_cap: 0\n"), "x.yaml:10:", "timeline_cap must be > 0");
}

Test(topology, backfill_size_nonnegative)
{
    EXPECT_ERROR(SETTINGS("  backfill_size: -5\n"), "x.yaml:10:", "backfill_size must be >= 0");
}

Test(topology, outbox_cap_at_least_backfill)
{
    EXPECT_ERROR(SETTINGS("  backfill_size: 10\n  outbox_cap: 9\n"),
                 "x.yaml:11:", "outbox_cap (9) must be >= backfill_size (10)");
}

Test(topology, batch_max_records_positive)
{
    EXPECT_ERROR(SETTINGS("  batch_max_records: 0\n"),
                 "x.yaml:10:", "batch_max_records must be > 0");
}

Test(topology, batch_max_ms_positive)
{
    EXPECT_ERROR(SETTINGS("  batch_max_ms: -1\n"), "x.yaml:10:", "batch_max_ms must be > 0");
}

Test(topology, replay_batches_positive)
{
    EXPECT_ERROR(SETTINGS("  replay_batch_max_records: 0\n"),
                 "x.yaml:10:", "replay_batch_max_records must be > 0");
    EXPECT_ERROR(SETTINGS("  replay_batch_max_ms: 0\n"),
                 "x.yaml:10:", "replay_batch_max_ms must be > 0");
}

/* ------------------------------------------------------------------ */
/* Topics                                                              */
/* ------------------------------------------------------------------ */

Test(topology, topic_duplicate)
{
    EXPECT_ERROR(HEAD TOPICS "  - {name: in2, partitions: 2, kind: input}\n",
                 "x.yaml:9:", "duplicate topic 'in2' (first at line 6)");
}

Test(topology, topic_collides_dot_underscore)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: a.b, partitions: 1, kind: dlq}\n"
                      "  - {name: a_b, partitions: 1, kind: input}\n",
                 "x.yaml:6:", "collides with topic 'a.b'");
}

Test(topology, topic_name_empty)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: '', partitions: 1, kind: dlq}\n",
                 "x.yaml:5:", "topic name must not be empty");
}

Test(topology, topic_name_illegal_character)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: dlq, partitions: 1, kind: dlq}\n"
                      "  - {name: 'bad/name', partitions: 1, kind: input}\n",
                 "x.yaml:6:", "illegal character '/'");
}

Test(topology, topic_name_space)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: 'a b', partitions: 1, kind: dlq}\n",
                 "x.yaml:5:", "illegal character 0x20");
}

Test(topology, topic_name_too_long)
{
    char name[251], doc[1024];

    memset(name, 'a', 250);
    name[250] = '\0';
    snprintf(doc, sizeof(doc), HEAD "topics:\n  - {name: %s, partitions: 1, kind: dlq}\n", name);
    expect_error(doc, strlen(doc), "x.yaml:5:", "longer than 249 characters");
    name[249] = '\0';
    snprintf(doc, sizeof(doc), HEAD "topics:\n  - {name: %s, partitions: 1, kind: dlq}\n", name);
    fl_topology_free(parse_ok(doc));
}

Test(topology, topic_name_dot)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: '..', partitions: 1, kind: dlq}\n",
                 "x.yaml:5:", "topic name '..' is not allowed");
}

Test(topology, topic_missing_partitions)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: dlq, partitions: 1, kind: dlq}\n"
                      "  - name: x\n    kind: input\n",
                 "x.yaml:6:", "missing required key 'partitions' in topic entry");
}

Test(topology, topic_partitions_zero)
{
    EXPECT_ERROR(HEAD "topics:\n  - name: dlq\n    partitions: 0\n    kind: dlq\n",
                 "x.yaml:6:", "topic 'dlq': partitions must be between 1 and 1024, got 0");
}

Test(topology, topic_partitions_too_many)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: dlq, partitions: 1025, kind: dlq}\n",
                 "x.yaml:5:", "partitions must be between 1 and 1024, got 1025");
}

Test(topology, topic_partitions_1024_ok)
{
    fl_topology_free(parse_ok(HEAD "topics:\n  - {name: dlq, partitions: 1024, kind: dlq}\n"));
}

Test(topology, topic_kind_unknown)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: dlq, partitions: 1, kind: dlq}\n"
                      "  - name: x\n    partitions: 1\n    kind: compacted\n",
                 "x.yaml:8:", "unknown kind 'compacted'");
}

Test(topology, topic_entry_not_a_mapping)
{
    EXPECT_ERROR(HEAD "topics:\n  - {name: dlq, partitions: 1, kind: dlq}\n  - users\n",
                 "x.yaml:6:", "topic entry must be a mapping");
}

Test(topology, dlq_missing)
{
    EXPECT_ERROR(HEAD "\ntopics:\n  - {name: a, partitions: 1, kind: input}\n",
                 "x.yaml:5:", "no topic of kind dlq");
}

Test(topology, dlq_twice)
{
    EXPECT_ERROR(HEAD TOPICS "  - {name: dlq2, partitions: 1, kind: dlq}\n",
                 "x.yaml:9:", "exactly one topic of kind dlq");
}

/* ------------------------------------------------------------------ */
/* Stores                                                              */
/* ------------------------------------------------------------------ */

Test(topology, store_duplicate)
{
    EXPECT_ERROR(HEAD TOPICS STORES "  - {name: st, changelog: log}\n",
                 "x.yaml:11:", "duplicate store 'st' (first at line 10)");
}

Test(topology, store_changelog_undefined)
{
    EXPECT_ERROR(HEAD TOPICS "stores:\n  - name: s\n    changelog: nope\n",
                 "x.yaml:11:", "changelog topic 'nope' is not defined");
}

Test(topology, store_changelog_wrong_kind)
{
    EXPECT_ERROR(HEAD TOPICS "stores:\n  - {name: s, changelog: in}\n",
                 "x.yaml:10:", "has kind input, expected changelog");
}

Test(topology, store_changelog_shared)
{
    EXPECT_ERROR(HEAD TOPICS STORES "  - {name: s2, changelog: log}\n",
                 "x.yaml:11:", "changelog topic 'log' is already used by store 'st'");
}

Test(topology, store_missing_changelog)
{
    EXPECT_ERROR(HEAD TOPICS "stores:\n  - {name: s}\n",
                 "x.yaml:10:", "missing required key 'changelog' in store entry");
}

Test(topology, store_name_illegal)
{
    EXPECT_ERROR(HEAD TOPICS "stores:\n  - {name: 'a/../b', changelog: log}\n",
                 "x.yaml:10:", "store name 'a/../b' has an illegal character");
}

/* ------------------------------------------------------------------ */
/* Processors                                                          */
/* ------------------------------------------------------------------ */

Test(topology, processor_duplicate_name)
{
    EXPECT_ERROR(VALID "  - {name: p, group: g2, inputs: [in]}\n",
                 "x.yaml:13:", "duplicate processor 'p' (first at line 12)");
}

Test(topology, processor_duplicate_group)
{
    EXPECT_ERROR(VALID "  - {name: q, group: g, inputs: [in]}\n",
                 "x.yaml:13:", "consumer group 'g' is already used by processor 'p'");
}

Test(topology, processor_unknown_input)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n    inputs:\n"
                             "      - in\n      - nope\n",
                 "x.yaml:14:", "input topic 'nope' is not defined");
}

Test(topology, processor_unknown_output)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n    inputs: [in]\n"
                             "    outputs: [dlq, nope]\n",
                 "x.yaml:13:", "output topic 'nope' is not defined");
}

Test(topology, processor_unknown_store)
{
    EXPECT_ERROR(HEAD TOPICS STORES "processors:\n  - {name: p, group: g, inputs: [in],\n"
                                    "     stores: [nope]}\n",
                 "x.yaml:13:", "store 'nope' is not defined");
}

Test(topology, processor_inputs_empty)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n    inputs: []\n",
                 "x.yaml:12:", "inputs must not be empty");
}

Test(topology, processor_inputs_missing)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n",
                 "x.yaml:10:", "missing required key 'inputs' in processor entry");
}

Test(topology, processor_input_listed_twice)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n    inputs:\n"
                             "      - in\n      - in\n",
                 "x.yaml:14:", "'in' is listed twice in inputs");
}

Test(topology, processor_outputs_null)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - name: p\n    group: g\n    inputs: [in]\n"
                             "    outputs:\n",
                 "x.yaml:13:", "processor 'p' outputs must be a sequence, got null");
}

Test(topology, processor_not_copartitioned)
{
    EXPECT_ERROR(HEAD TOPICS "  - {name: wide, partitions: 8, kind: input}\n"
                             "processors:\n  - name: p\n    group: g\n    inputs:\n"
                             "      - in\n      - in2\n      - wide\n",
                 "x.yaml:16:",
                 "input 'wide' has 8 partitions but 'in' has 2; a processor's inputs must be "
                 "co-partitioned");
}

Test(topology, processor_store_changelog_partitions)
{
    EXPECT_ERROR(HEAD TOPICS "  - {name: wide, partitions: 8, kind: input}\n" STORES
                             "processors:\n  - name: p\n    group: g\n    inputs: [wide]\n"
                             "    stores: [st]\n",
                 "x.yaml:16:", "store 'st' changelog 'log' has 2 partitions but the inputs have 8");
}

Test(topology, processor_store_two_owners)
{
    EXPECT_ERROR(VALID "  - {name: q, group: g2, inputs: [in], stores: [st]}\n",
                 "x.yaml:13:", "store 'st' already belongs to processor 'p'");
}

Test(topology, processor_name_illegal)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - {name: 'p q', group: g, inputs: [in]}\n",
                 "x.yaml:10:", "processor name 'p q' has an illegal character");
}

Test(topology, processor_group_missing)
{
    EXPECT_ERROR(HEAD TOPICS "processors:\n  - {name: p, inputs: [in]}\n",
                 "x.yaml:10:", "missing required key 'group' in processor entry");
}

/* ------------------------------------------------------------------ */
/* Sinks                                                               */
/* ------------------------------------------------------------------ */

Test(topology, sinks_valid)
{
    fl_topology_t *t = parse_ok(VALID SINKS);
    const fl_sink_cfg_t *k;

    cr_assert_eq(t->n_sinks, 2);
    k = fl_topology_sink(t, "s");
    cr_assert_not_null(k);
    cr_assert_eq(k, &t->sinks[0]);
    cr_assert_str_eq(k->group, "gs");
    cr_assert_eq(k->n_inputs, 2);
    cr_assert_str_eq(k->inputs[0], "in");
    cr_assert_str_eq(k->inputs[1], "dlq");
    cr_assert_eq(k->destination, FL_SINK_REDIS);
    cr_assert_eq(k->line, 14);
    k = fl_topology_sink(t, "s2");
    cr_assert_not_null(k);
    cr_assert_eq(k->destination, FL_SINK_POSTGRES);
    cr_assert_eq(k->line, 15);
    cr_assert_null(fl_topology_sink(t, "p"));
    cr_assert_null(fl_topology_processor(t, "s"));
    cr_assert_str_eq(fl_sink_kind_str(FL_SINK_REDIS), "redis");
    cr_assert_str_eq(fl_sink_kind_str(FL_SINK_POSTGRES), "postgres");
    fl_topology_free(t);
}

Test(topology, sinks_flow_and_block_style_agree)
{
    char err[512] = "";
    fl_topology_t *flow = parse_ok(VALID SINKS);
    fl_topology_t *block =
        fl_topology_load(src_path("tests/data/topology/sinks.yaml"), err, sizeof(err));

    cr_assert_not_null(block, "%s", err);
    assert_same(flow, block);
    cr_assert_eq(fl_topology_sink(block, "s2")->line, 45);
    fl_topology_free(flow);
    fl_topology_free(block);
}

Test(topology, sinks_empty_section)
{
    fl_topology_t *t = parse_ok(VALID "sinks: []\n");

    cr_assert_eq(t->n_sinks, 0);
    assert_round_trip(t);
    fl_topology_free(t);
}

Test(topology, sink_inputs_need_not_be_copartitioned)
{
    fl_topology_t *t = parse_ok(HEAD TOPICS "  - {name: wide, partitions: 8, kind: input}\n"
                                            "sinks:\n"
                                            "  - name: s\n    group: gs\n"
                                            "    inputs: [in, wide, dlq]\n"
                                            "    destination: postgres\n");
    const fl_sink_cfg_t *k = fl_topology_sink(t, "s");

    cr_assert_eq(t->n_processors, 0);
    cr_assert_not_null(k);
    cr_assert_eq(k->n_inputs, 3);
    cr_assert_eq(fl_topology_topic(t, k->inputs[0])->partitions, 2);
    cr_assert_eq(fl_topology_topic(t, k->inputs[1])->partitions, 8);
    cr_assert_eq(fl_topology_topic(t, k->inputs[2])->partitions, 1);
    fl_topology_free(t);
}

Test(topology, print_round_trip_sinks)
{
    fl_topology_t *t = parse_ok(VALID SINKS);
    size_t len;
    char *text = print_to_string(t, &len);

    assert_round_trip(t);
    cr_assert_not_null(strstr(text, "\nsinks:\n  - name: s\n    group: gs\n    inputs:\n"
                                    "      - in\n      - dlq\n    destination: redis\n"),
                       "%s", text);
    free(text);
    fl_topology_free(t);
}

Test(topology, sinks_not_a_sequence)
{
    EXPECT_ERROR(VALID "sinks: {name: s}\n", "x.yaml:13:", "sinks must be a sequence");
}

Test(topology, sink_entry_not_a_mapping)
{
    EXPECT_ERROR(VALID "sinks:\n  - redis\n", "x.yaml:14:", "a sink entry must be a mapping");
}

Test(topology, sink_unknown_key)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, group: gs, inputs: [in], destination: redis,\n"
                       "     batch: 5}\n",
                 "x.yaml:15:", "unknown key 'batch' in sink entry");
}

Test(topology, sink_missing_destination)
{
    EXPECT_ERROR(VALID "sinks:\n  - name: s\n    group: gs\n    inputs: [in]\n",
                 "x.yaml:14:", "missing required key 'destination' in sink entry");
}

Test(topology, sink_bad_destination)
{
    EXPECT_ERROR(
        VALID "sinks:\n  - name: s\n    group: gs\n    inputs: [in]\n"
              "    destination: mysql\n",
        "x.yaml:17:", "sink 's': unknown destination 'mysql' (expected redis or postgres)");
}

Test(topology, sink_destination_null)
{
    EXPECT_ERROR(VALID "sinks:\n  - name: s\n    group: gs\n    inputs: [in]\n"
                       "    destination:\n",
                 "x.yaml:17:", "sink 's': destination must be redis or postgres, got null");
}

Test(topology, sink_destination_case_matters)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, group: gs, inputs: [in], destination: Redis}\n",
                 "x.yaml:14:", "unknown destination 'Redis'");
}

Test(topology, sink_missing_group)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, inputs: [in], destination: redis}\n",
                 "x.yaml:14:", "missing required key 'group' in sink entry");
}

Test(topology, sink_missing_inputs)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, group: gs, destination: redis}\n",
                 "x.yaml:14:", "missing required key 'inputs' in sink entry");
}

Test(topology, sink_unknown_input)
{
    EXPECT_ERROR(VALID "sinks:\n  - name: s\n    group: gs\n    inputs:\n"
                       "      - in\n      - nope\n    destination: redis\n",
                 "x.yaml:18:", "sink 's': input topic 'nope' is not defined in topics");
}

Test(topology, sink_input_is_a_store_not_a_topic)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, group: gs, inputs: [st], destination: redis}\n",
                 "x.yaml:14:", "input topic 'st' is not defined in topics");
}

Test(topology, sink_inputs_empty)
{
    EXPECT_ERROR(VALID "sinks:\n  - name: s\n    group: gs\n    inputs: []\n"
                       "    destination: redis\n",
                 "x.yaml:16:", "sink 's': inputs must not be empty");
}

Test(topology, sink_inputs_not_a_sequence)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, group: gs, inputs: in, destination: redis}\n",
                 "x.yaml:14:", "sink 's' inputs must be a sequence");
}

Test(topology, sink_input_listed_twice)
{
    EXPECT_ERROR(VALID "sinks:\n  - name: s\n    group: gs\n    inputs:\n"
                       "      - in\n      - in\n    destination: redis\n",
                 "x.yaml:18:", "sink 's': 'in' is listed twice in inputs");
}

Test(topology, sink_duplicate_name)
{
    EXPECT_ERROR(VALID SINKS "  - {name: s, group: gs3, inputs: [in], destination: postgres}\n",
                 "x.yaml:16:", "duplicate sink 's' (first at line 14)");
}

Test(topology, sink_duplicate_group)
{
    EXPECT_ERROR(VALID SINKS "  - {name: s3, group: gs, inputs: [in], destination: postgres}\n",
                 "x.yaml:16:", "sink 's3': consumer group 'gs' is already used by sink 's'");
}

Test(topology, sink_group_of_a_processor)
{
    EXPECT_ERROR(
        VALID "sinks:\n  - name: s\n    group: g\n    inputs: [in]\n"
              "    destination: redis\n",
        "x.yaml:15:", "sink 's': consumer group 'g' is already used by processor 'p' (line 12)");
}

Test(topology, sink_name_of_a_processor)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: p, group: gs, inputs: [in], destination: redis}\n",
                 "x.yaml:14:", "sink 'p': the name is already used by processor 'p' (line 12)");
}

Test(topology, sink_name_illegal)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: 'a b', group: gs, inputs: [in], destination: redis}\n",
                 "x.yaml:14:", "sink name 'a b' has an illegal character 0x20");
}

Test(topology, sink_name_empty)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: '', group: gs, inputs: [in], destination: redis}\n",
                 "x.yaml:14:", "sink name must not be empty");
}

Test(topology, sink_group_empty)
{
    EXPECT_ERROR(VALID "sinks:\n  - {name: s, group: '', inputs: [in], destination: redis}\n",
                 "x.yaml:14:", "sink 's' group must not be empty");
}

/* ------------------------------------------------------------------ */
/* The read API's section                                              */
/* ------------------------------------------------------------------ */

/* Lines 1-4, then `api:` on line 5 and body from line 6. */
#define API(body) HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\napi:\n" body

/* A document's expected error: a row of the tables below. */
typedef struct bad_doc {
    const char *yaml;
    const char *loc;
    const char *phrase;
} bad_doc_t;

static void expect_errors(const bad_doc_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(rows[i].yaml, strlen(rows[i].yaml), rows[i].loc, rows[i].phrase);
}

#define EXPECT_ERRORS(rows) expect_errors(rows, sizeof(rows) / sizeof(rows[0]))

static void assert_api_defaults(const fl_api_cfg_t *a)
{
    cr_assert_eq(a->threads, 0);
    cr_assert_eq(a->max_connections, 20000);
    cr_assert_eq(a->max_header_bytes, 8192);
    cr_assert_eq(a->max_query_bytes, 2048);
    cr_assert_eq(a->max_body_bytes, 4096);
    cr_assert_eq(a->jwt_algorithms, FL_JWT_ALG_HS256);
    cr_assert_str_eq(a->jwt_secret, FL_API_DEV_SECRET);
    cr_assert_geq(strlen(FL_API_DEV_SECRET), FL_API_JWT_SECRET_MIN);
    cr_assert_null(a->jwt_public_key_file);
    cr_assert_null(a->jwt_private_key_file);
    cr_assert_null(a->jwt_issuer);
    cr_assert_null(a->jwt_audience);
    cr_assert_eq(a->jwt_leeway_s, 30);
    cr_assert_eq(a->jwt_max_bytes, 4096);
    cr_assert_eq(a->rate_per_s, 50);
    cr_assert_eq(a->rate_burst, 100);
    cr_assert(a->rank_half_life_s == 21600.0);
    cr_assert(a->rank_w_recency == 1.0);
    cr_assert(a->rank_w_likes == 0.35);
    cr_assert(a->rank_w_affinity == 0.5);
    cr_assert_eq(a->rank_candidates, 200);
    cr_assert_eq(a->stream_ping_s, 20);
    cr_assert_eq(a->stream_max_clients, 20000);
    cr_assert_eq(a->dev_login, false);
}

Test(topology, api_defaults_when_absent)
{
    fl_topology_t *t = parse_ok(HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\n");

    assert_api_defaults(&t->api);
    fl_topology_free(t);
}

Test(topology, api_empty_sections_take_defaults)
{
    fl_topology_t *t = parse_ok(API("  limits: {}\n  jwt: {}\n  rate_limit: {}\n  ranking: {}\n"
                                    "  stream: {}\n"));

    assert_api_defaults(&t->api);
    fl_topology_free(t);
}

Test(topology, api_partial_section_keeps_other_defaults)
{
    fl_topology_t *t = parse_ok(API("  jwt:\n    leeway_s: 0\n  ranking: {likes: 2}\n"));

    cr_assert_eq(t->api.jwt_leeway_s, 0);
    cr_assert(t->api.rank_w_likes == 2.0);
    cr_assert_eq(t->api.jwt_max_bytes, 4096);
    cr_assert_str_eq(t->api.jwt_secret, FL_API_DEV_SECRET);
    cr_assert(t->api.rank_w_affinity == 0.5);
    cr_assert_eq(t->api.max_connections, 20000);
    fl_topology_free(t);
}

/* The shipped file writes the defaults out, and sets issuer and audience. */
Test(topology, api_real_file)
{
    char err[512] = "";
    fl_topology_t *t = fl_topology_load(src_path("topology/feedline.yaml"), err, sizeof(err));
    fl_api_cfg_t a;

    cr_assert_not_null(t, "%s", err);
    a = t->api;
    cr_assert_str_eq(a.jwt_issuer, "feedline");
    cr_assert_str_eq(a.jwt_audience, "feedline-api");
    a.jwt_issuer = a.jwt_audience = NULL;
    assert_api_defaults(&a);
    fl_topology_free(t);
}

Test(topology, api_every_key_in_block_style)
{
    fl_topology_t *t = parse_ok(API("  threads: 256\n"
                                    "  max_connections: 1\n"
                                    "  limits:\n"
                                    "    header_bytes: 65536\n"
                                    "    query_bytes: 64\n"
                                    "    body_bytes: 0\n"
                                    "  jwt:\n"
                                    "    algorithms: [EdDSA, HS256]\n"
                                    "    secret: 0123456789abcdef0123456789abcdef\n"
                                    "    public_key_file: keys/pub.pem\n"
                                    "    private_key_file: /etc/feedline/jwt key.pem\n"
                                    "    issuer: 'https://id.example'\n"
                                    "    audience: api\n"
                                    "    leeway_s: 300\n"
                                    "    max_bytes: 256\n"
                                    "  rate_limit:\n"
                                    "    requests_per_s: 0\n"
                                    "    burst: 1000000\n"
                                    "  ranking:\n"
                                    "    half_life_s: 1e-3\n"
                                    "    recency: 0\n"
                                    "    likes: .5\n"
                                    "    affinity: +1.25e2\n"
                                    "    candidates: 1000\n"
                                    "  stream:\n"
                                    "    ping_s: 3600\n"
                                    "    max_clients: 1000000\n"
                                    "  dev_login: true\n"));
    const fl_api_cfg_t *a = &t->api;

    cr_assert_eq(a->threads, 256);
    cr_assert_eq(a->max_connections, 1);
    cr_assert_eq(a->max_header_bytes, 65536);
    cr_assert_eq(a->max_query_bytes, 64);
    cr_assert_eq(a->max_body_bytes, 0);
    cr_assert_eq(a->jwt_algorithms, FL_JWT_ALG_HS256 | FL_JWT_ALG_EDDSA);
    cr_assert_str_eq(a->jwt_secret, "0123456789abcdef0123456789abcdef");
    cr_assert_str_eq(a->jwt_public_key_file, "keys/pub.pem");
    cr_assert_str_eq(a->jwt_private_key_file, "/etc/feedline/jwt key.pem");
    cr_assert_str_eq(a->jwt_issuer, "https://id.example");
    cr_assert_str_eq(a->jwt_audience, "api");
    cr_assert_eq(a->jwt_leeway_s, 300);
    cr_assert_eq(a->jwt_max_bytes, 256);
    cr_assert_eq(a->rate_per_s, 0);
    cr_assert_eq(a->rate_burst, 1000000);
    cr_assert(a->rank_half_life_s == 1e-3);
    cr_assert(a->rank_w_recency == 0.0);
    cr_assert(a->rank_w_likes == 0.5);
    cr_assert(a->rank_w_affinity == 125.0);
    cr_assert_eq(a->rank_candidates, 1000);
    cr_assert_eq(a->stream_ping_s, 3600);
    cr_assert_eq(a->stream_max_clients, 1000000);
    cr_assert_eq(a->dev_login, true);
    assert_round_trip(t);
    fl_topology_free(t);
}

Test(topology, api_print_never_shows_the_secret)
{
    static const char secret[] = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
    fl_topology_t *t;
    size_t len;
    char *text;

    setenv("FEEDLINE_JWT_SECRET", secret, 1);
    t = parse_ok(API("  jwt: {secret: another-secret-another-secret-another}\n"
                     "  ranking: {likes: 0.1, affinity: 1e20}\n"));
    unsetenv("FEEDLINE_JWT_SECRET");
    cr_assert_str_eq(t->api.jwt_secret, secret);
    text = print_to_string(t, &len);
    cr_assert_null(strstr(text, "s3cr3t"), "the secret is printed:\n%s", text);
    cr_assert_null(strstr(text, "another-secret"), "%s", text);
    cr_assert_not_null(strstr(text, "\napi:\n  threads: 0\n"), "%s", text);
    cr_assert_not_null(strstr(text, "    # secret: set, not printed\n"), "%s", text);
    cr_assert_not_null(strstr(text, "    algorithms: [HS256]\n"), "%s", text);
    cr_assert_not_null(strstr(text, "    half_life_s: 21600.0\n"), "%s", text);
    cr_assert_not_null(strstr(text, "    likes: 0.1\n"), "shortest form:\n%s", text);
    cr_assert_not_null(strstr(text, "    affinity: 1e+20\n"), "%s", text);
    cr_assert_not_null(strstr(text, "  dev_login: false\n"), "%s", text);
    /* The printed file loads (with the default secret in place of the hidden one). */
    assert_round_trip(t);
    free(text);
    fl_topology_free(t);
}

Test(topology, api_not_a_mapping)
{
    static const bad_doc_t rows[] = {
        {API("  3\n"), "x.yaml:6:", "api must be a mapping, got a scalar"},
        {HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\napi:\n",
         "x.yaml:5:", "api must be a mapping, got null"},
        {API("  limits: [1]\n"), "x.yaml:6:", "api.limits must be a mapping, got a sequence"},
        {API("  jwt: HS256\n"), "x.yaml:6:", "api.jwt must be a mapping, got a scalar"},
        {API("  rate_limit:\n"), "x.yaml:6:", "api.rate_limit must be a mapping, got null"},
        {API("  ranking: 1\n"), "x.yaml:6:", "api.ranking must be a mapping"},
        {API("  stream: [ ]\n"), "x.yaml:6:", "api.stream must be a mapping"},
    };

    EXPECT_ERRORS(rows);
}

Test(topology, api_unknown_keys)
{
    static const bad_doc_t rows[] = {
        {API("  threads: 1\n  thread: 2\n"), "x.yaml:7:", "unknown key 'thread' in api"},
        {API("  limits:\n    header_bytes: 2048\n    uri_bytes: 1\n"),
         "x.yaml:8:", "unknown key 'uri_bytes' in api.limits"},
        {API("  jwt:\n    algorithm: [HS256]\n"),
         "x.yaml:7:", "unknown key 'algorithm' in api.jwt"},
        {API("  rate_limit: {requests_per_s: 1, window_s: 1}\n"),
         "x.yaml:6:", "unknown key 'window_s' in api.rate_limit"},
        {API("  ranking:\n    likes: 1\n\n    comments: 1\n"),
         "x.yaml:9:", "unknown key 'comments' in api.ranking"},
        {API("  stream:\n    ping: 20\n"), "x.yaml:7:", "unknown key 'ping' in api.stream"},
        {API("  threads: 1\n  threads: 2\n"),
         "x.yaml:7:", "duplicate key 'threads' (first at line 6)"},
    };

    EXPECT_ERRORS(rows);
}

Test(topology, api_integer_ranges)
{
    static const bad_doc_t rows[] = {
        {API("  threads: 257\n"), "x.yaml:6:", "api.threads must be between 0 and 256, got 257"},
        {API("  threads: -1\n"), "x.yaml:6:", "api.threads must be between 0 and 256, got -1"},
        {API("  max_connections: 0\n"),
         "x.yaml:6:", "api.max_connections must be between 1 and 1000000, got 0"},
        {API("  max_connections: 1000001\n"), "x.yaml:6:", "api.max_connections must be between"},
        {API("  limits:\n    header_bytes: 1023\n"),
         "x.yaml:7:", "api.limits.header_bytes must be between 1024 and 65536, got 1023"},
        {API("  limits: {header_bytes: 65537}\n"), "x.yaml:6:", "api.limits.header_bytes"},
        {API("  limits:\n    query_bytes: 63\n"),
         "x.yaml:7:", "api.limits.query_bytes must be between 64 and 65536, got 63"},
        {API("  limits:\n    body_bytes: 1048577\n"),
         "x.yaml:7:", "api.limits.body_bytes must be between 0 and 1048576, got 1048577"},
        {API("  limits:\n    body_bytes: -1\n"), "x.yaml:7:", "api.limits.body_bytes"},
        {API("  jwt:\n    leeway_s: 301\n"),
         "x.yaml:7:", "api.jwt.leeway_s must be between 0 and 300, got 301"},
        {API("  jwt:\n    max_bytes: 255\n"),
         "x.yaml:7:", "api.jwt.max_bytes must be between 256 and 16384, got 255"},
        {API("  jwt:\n    max_bytes: 16385\n"), "x.yaml:7:", "api.jwt.max_bytes"},
        {API("  rate_limit:\n    requests_per_s: 1000001\n"),
         "x.yaml:7:", "api.rate_limit.requests_per_s must be between 0 and 1000000, got 1000001"},
        {API("  rate_limit:\n    burst: -1\n"),
         "x.yaml:7:", "api.rate_limit.burst must be between 0 and 1000000, got -1"},
        {API("  ranking:\n    candidates: 0\n"),
         "x.yaml:7:", "api.ranking.candidates must be between 1 and 1000, got 0"},
        {API("  ranking:\n    candidates: 1001\n"), "x.yaml:7:", "api.ranking.candidates"},
        {API("  stream:\n    ping_s: 0\n"),
         "x.yaml:7:", "api.stream.ping_s must be between 1 and 3600, got 0"},
        {API("  stream:\n    ping_s: 3601\n"), "x.yaml:7:", "api.stream.ping_s"},
        {API("  stream:\n    max_clients: 0\n"),
         "x.yaml:7:", "api.stream.max_clients must be between 1 and 1000000, got 0"},
        {API("  threads: 1.5\n"), "x.yaml:6:", "api.threads must be an integer, got '1.5'"},
        {API("  threads: '4'\n"), "x.yaml:6:", "api.threads must be an integer, got the quoted"},
    };

    EXPECT_ERRORS(rows);
}

Test(topology, api_float_edge_cases)
{
    static const bad_doc_t rows[] = {
        {API("  ranking:\n    likes: 1e309\n"),
         "x.yaml:7:", "api.ranking.likes is out of range: '1e309'"},
        {API("  ranking:\n    likes: -1e309\n"), "x.yaml:7:", "is out of range: '-1e309'"},
        {API("  ranking:\n    likes: 1e-400\n"), "x.yaml:7:", "is out of range: '1e-400'"},
        {API("  ranking:\n    likes: nan\n"),
         "x.yaml:7:", "api.ranking.likes must be a number, got 'nan'"},
        {API("  ranking:\n    likes: .nan\n"), "x.yaml:7:", "must be a number, got '.nan'"},
        {API("  ranking:\n    likes: inf\n"), "x.yaml:7:", "must be a number, got 'inf'"},
        {API("  ranking:\n    likes: -.inf\n"), "x.yaml:7:", "must be a number, got '-.inf'"},
        {API("  ranking:\n    likes: 1.0x\n"),
         "x.yaml:7:", "api.ranking.likes must be a number, got '1.0x'"},
        {API("  ranking:\n    likes: 0x10\n"), "x.yaml:7:", "must be a number, got '0x10'"},
        {API("  ranking:\n    likes: 1e\n"), "x.yaml:7:", "must be a number, got '1e'"},
        {API("  ranking:\n    likes: 1.2.3\n"), "x.yaml:7:", "must be a number, got '1.2.3'"},
        {API("  ranking:\n    likes: .\n"), "x.yaml:7:", "must be a number, got '.'"},
        {API("  ranking:\n    likes: '0.5'\n"),
         "x.yaml:7:", "api.ranking.likes must be a number, got the quoted string '0.5'"},
        {API("  ranking:\n    likes:\n"), "x.yaml:7:", "must be a number, got null"},
        {API("  ranking:\n    likes: [1]\n"), "x.yaml:7:", "must be a number, got a sequence"},
        {API("  ranking:\n    likes: -0.1\n"),
         "x.yaml:7:", "api.ranking.likes must be >= 0, got -0.1"},
        {API("  ranking:\n    recency: -1\n"), "x.yaml:7:", "api.ranking.recency must be >= 0"},
        {API("  ranking:\n    affinity: -2e-5\n"),
         "x.yaml:7:", "api.ranking.affinity must be >= 0, got -2e-5"},
        {API("  ranking:\n    half_life_s: 0\n"),
         "x.yaml:7:", "api.ranking.half_life_s must be > 0, got 0"},
        {API("  ranking:\n    half_life_s: -3600\n"),
         "x.yaml:7:", "api.ranking.half_life_s must be > 0, got -3600"},
    };

    EXPECT_ERRORS(rows);
}

Test(topology, api_floats_accepted)
{
    fl_topology_t *t = parse_ok(API("  ranking: {half_life_s: 7, recency: -0.0, likes: 1E3, "
                                    "affinity: 1e-300}\n"));

    cr_assert(t->api.rank_half_life_s == 7.0);
    cr_assert(t->api.rank_w_recency == 0.0);
    cr_assert(t->api.rank_w_likes == 1000.0);
    cr_assert_gt(t->api.rank_w_affinity, 0.0);
    fl_topology_free(t);
}

Test(topology, api_booleans)
{
    static const bad_doc_t rows[] = {
        {API("  dev_login: yes\n"), "x.yaml:6:", "api.dev_login must be true or false, got 'yes'"},
        {API("  dev_login: True\n"), "x.yaml:6:", "must be true or false, got 'True'"},
        {API("  dev_login: 1\n"), "x.yaml:6:", "must be true or false, got '1'"},
        {API("  dev_login: 'true'\n"),
         "x.yaml:6:", "api.dev_login must be true or false, got the quoted string 'true'"},
        {API("  dev_login:\n"), "x.yaml:6:", "must be true or false, got null"},
    };
    fl_topology_t *t = parse_ok(API("  dev_login: true\n"));

    cr_assert_eq(t->api.dev_login, true);
    fl_topology_free(t);
    t = parse_ok(API("  dev_login: false\n"));
    cr_assert_eq(t->api.dev_login, false);
    fl_topology_free(t);
    EXPECT_ERRORS(rows);
}

Test(topology, api_jwt_algorithms)
{
    static const bad_doc_t rows[] = {
        {API("  jwt:\n    algorithms: []\n"), "x.yaml:7:", "api.jwt.algorithms must not be empty"},
        {API("  jwt:\n    algorithms: HS256\n"),
         "x.yaml:7:", "api.jwt.algorithms must be a sequence, got a scalar"},
        {API("  jwt:\n    algorithms:\n      - HS256\n      - RS256\n"),
         "x.yaml:9:", "api.jwt.algorithms: unknown algorithm 'RS256' (expected HS256 or EdDSA)"},
        {API("  jwt:\n    algorithms: [hs256]\n"), "x.yaml:7:", "unknown algorithm 'hs256'"},
        {API("  jwt:\n    algorithms: [none]\n"), "x.yaml:7:", "unknown algorithm 'none'"},
        {API("  jwt:\n    algorithms:\n      - HS256\n      - HS256\n"),
         "x.yaml:9:", "api.jwt.algorithms: 'HS256' is listed twice"},
        {API("  jwt:\n    algorithms: [~]\n"),
         "x.yaml:7:", "an entry of api.jwt.algorithms must be HS256 or EdDSA, got null"},
    };
    fl_topology_t *t = parse_ok(API("  jwt:\n    algorithms: [EdDSA]\n"
                                    "    public_key_file: pub.pem\n"));

    cr_assert_eq(t->api.jwt_algorithms, FL_JWT_ALG_EDDSA);
    fl_topology_free(t);
    EXPECT_ERRORS(rows);
}

Test(topology, api_jwt_strings)
{
    static const bad_doc_t rows[] = {
        {API("  jwt:\n    issuer: ''\n"), "x.yaml:7:", "api.jwt.issuer must not be empty"},
        {API("  jwt:\n    audience:\n"),
         "x.yaml:7:", "api.jwt.audience must be a string, got null"},
        {API("  jwt:\n    public_key_file: [a]\n"),
         "x.yaml:7:", "api.jwt.public_key_file must be a string, got a sequence"},
        {API("  jwt:\n    secret: {a: b}\n"), "x.yaml:7:", "api.jwt.secret must be a string"},
    };

    EXPECT_ERRORS(rows);
}

Test(topology, api_hs256_needs_a_long_secret)
{
    static const bad_doc_t rows[] = {
        {API("  jwt:\n    leeway_s: 1\n    secret: short\n"),
         "x.yaml:8:", "api.jwt.secret is 5 bytes; HS256 needs a secret of at least 32 bytes"},
        {API("  jwt:\n    secret: 0123456789abcdef0123456789abcde\n"),
         "x.yaml:7:", "api.jwt.secret is 31 bytes"},
        {API("  jwt:\n    algorithms: [EdDSA, HS256]\n    public_key_file: k\n"
             "    secret: short\n"),
         "x.yaml:9:", "api.jwt.secret is 5 bytes"},
    };
    fl_topology_t *t = parse_ok(API("  jwt:\n    secret: 0123456789abcdef0123456789abcdef\n"));

    cr_assert_str_eq(t->api.jwt_secret, "0123456789abcdef0123456789abcdef");
    fl_topology_free(t);
    /* Without HS256 the secret is not used, so its length does not matter. */
    t = parse_ok(API("  jwt: {algorithms: [EdDSA], public_key_file: k, secret: short}\n"));
    cr_assert_str_eq(t->api.jwt_secret, "short");
    fl_topology_free(t);
    EXPECT_ERRORS(rows);
}

Test(topology, api_eddsa_needs_a_public_key)
{
    EXPECT_ERROR(API("  jwt:\n    algorithms:\n      - HS256\n      - EdDSA\n"
                     "    private_key_file: k.pem\n"),
                 "x.yaml:9:",
                 "api.jwt.algorithms lists EdDSA, which needs api.jwt.public_key_file (or "
                 "FEEDLINE_JWT_PUBLIC_KEY)");
    EXPECT_ERROR(API("  jwt: {algorithms: [HS256, EdDSA]}\n"),
                 "x.yaml:6:", "lists EdDSA, which needs api.jwt.public_key_file");
}

Test(topology, api_env_overrides)
{
    fl_topology_t *t;

    setenv("FEEDLINE_JWT_SECRET", "from-the-environment-0123456789abcdef", 1);
    setenv("FEEDLINE_JWT_PUBLIC_KEY", "/run/secrets/jwt.pub", 1);
    setenv("FEEDLINE_JWT_PRIVATE_KEY", "/run/secrets/jwt.pem", 1);
    t = parse_ok(API("  jwt:\n    algorithms: [HS256, EdDSA]\n    public_key_file: file.pub\n"));
    clear_env();
    cr_assert_str_eq(t->api.jwt_secret, "from-the-environment-0123456789abcdef");
    cr_assert_str_eq(t->api.jwt_public_key_file, "/run/secrets/jwt.pub");
    cr_assert_str_eq(t->api.jwt_private_key_file, "/run/secrets/jwt.pem");
    fl_topology_free(t);
}

/* parse_ok() with var=value in the environment, unset again before returning. */
static fl_topology_t *parse_ok_with_env(const char *var, const char *value, const char *yaml)
{
    fl_topology_t *t;

    setenv(var, value, 1);
    t = parse_ok(yaml);
    unsetenv(var);
    return t;
}

/* FEEDLINE_DEV_LOGIN turns the development login on or off whatever the
 * file says; empty leaves the file's value; anything but true or false
 * fails the load, naming the variable. */
Test(topology, api_env_dev_login)
{
    fl_topology_t *t = parse_ok_with_env("FEEDLINE_DEV_LOGIN", "true", API("  dev_login: false\n"));

    cr_assert_eq(t->api.dev_login, true);
    fl_topology_free(t);
    t = parse_ok_with_env("FEEDLINE_DEV_LOGIN", "false", API("  dev_login: true\n"));
    cr_assert_eq(t->api.dev_login, false);
    fl_topology_free(t);
    t = parse_ok_with_env("FEEDLINE_DEV_LOGIN", "", API("  dev_login: true\n"));
    cr_assert_eq(t->api.dev_login, true);
    fl_topology_free(t);
    t = parse_ok_with_env("FEEDLINE_DEV_LOGIN", "true",
                          HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\n");
    cr_assert_eq(t->api.dev_login, true);
    fl_topology_free(t);
    setenv("FEEDLINE_DEV_LOGIN", "yes", 1);
    EXPECT_ERROR(API("  dev_login: false\n"),
                 "x.yaml: ", "FEEDLINE_DEV_LOGIN must be true or false, got 'yes'");
    setenv("FEEDLINE_DEV_LOGIN", "1", 1);
    EXPECT_ERROR(API("  dev_login: false\n"), "x.yaml: ", "got '1'");
    unsetenv("FEEDLINE_DEV_LOGIN");
}

/* The checks that relate fields judge the values in effect. */
Test(topology, api_env_supplies_what_the_file_lacks)
{
    fl_topology_t *t =
        parse_ok_with_env("FEEDLINE_JWT_SECRET", "from-the-environment-0123456789abcdef",
                          API("  jwt: {secret: placeholder}\n"));

    cr_assert_str_eq(t->api.jwt_secret, "from-the-environment-0123456789abcdef");
    fl_topology_free(t);
    t = parse_ok_with_env("FEEDLINE_JWT_PUBLIC_KEY", "jwt.pub",
                          API("  jwt: {algorithms: [EdDSA]}\n"));
    cr_assert_str_eq(t->api.jwt_public_key_file, "jwt.pub");
    fl_topology_free(t);
}

Test(topology, api_env_secret_too_short)
{
    setenv("FEEDLINE_JWT_SECRET", "tooshort", 1);
    EXPECT_ERROR(API("  jwt: {secret: 0123456789abcdef0123456789abcdef}\n"), "x.yaml: ",
                 "FEEDLINE_JWT_SECRET is 8 bytes; HS256 needs a secret of at least 32 bytes");
    EXPECT_ERROR(HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\n",
                 "x.yaml: ", "FEEDLINE_JWT_SECRET is 8 bytes");
    unsetenv("FEEDLINE_JWT_SECRET");
}

Test(topology, api_env_empty_does_not_override)
{
    fl_topology_t *t;

    setenv("FEEDLINE_JWT_SECRET", "", 1);
    setenv("FEEDLINE_JWT_PUBLIC_KEY", "", 1);
    t = parse_ok(API("  jwt: {algorithms: [HS256, EdDSA], public_key_file: k.pub}\n"));
    clear_env();
    cr_assert_str_eq(t->api.jwt_secret, FL_API_DEV_SECRET);
    cr_assert_str_eq(t->api.jwt_public_key_file, "k.pub");
    fl_topology_free(t);
}

Test(topology, api_env_does_not_bypass_validation)
{
    setenv("FEEDLINE_JWT_SECRET", "from-the-environment-0123456789abcdef", 1);
    EXPECT_ERROR(API("  jwt:\n    secret: short\n    leeway: 1\n"),
                 "x.yaml:8:", "unknown key 'leeway' in api.jwt");
    EXPECT_ERROR(API("  jwt:\n    secret: ''\n"), "x.yaml:7:", "api.jwt.secret must not be empty");
    unsetenv("FEEDLINE_JWT_SECRET");
}

/* ------------------------------------------------------------------ */
/* A generation's endpoints (feedline replay)                          */
/* ------------------------------------------------------------------ */

Test(topology, generation_endpoints_load_and_print)
{
    fl_topology_t *t = parse_ok("version: 1\napp: t\n"
                                "endpoints: {kafka: k, redis: r, postgres: p, api: a,\n"
                                "            redis_db: 3, postgres_schema: feedline_g3}\n"
                                "topics: [{name: dlq, partitions: 1, kind: dlq}]\n");
    cr_assert_eq(t->endpoints.redis_db, 3);
    cr_assert_str_eq(t->endpoints.postgres_schema, "feedline_g3");
    size_t len;
    char *text = print_to_string(t, &len);
    cr_assert(strstr(text, "  redis_db: 3\n") && strstr(text, "  postgres_schema: feedline_g3\n"),
              "%s", text);
    free(text);
    assert_round_trip(t);
    fl_topology_free(t);
    /* the live generation's: database 0, no schema, neither printed */
    t = parse_ok(HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\n");
    cr_assert_eq(t->endpoints.redis_db, 0);
    cr_assert_null(t->endpoints.postgres_schema);
    text = print_to_string(t, &len);
    cr_assert_null(strstr(text, "redis_db"));
    cr_assert_null(strstr(text, "postgres_schema"));
    free(text);
    fl_topology_free(t);
}

Test(topology, generation_endpoints_are_checked)
{
    EXPECT_ERROR("version: 1\napp: t\n"
                 "endpoints: {kafka: k, redis: r, postgres: p, api: a, redis_db: 1024}\n"
                 "topics: [{name: dlq, partitions: 1, kind: dlq}]\n",
                 "x.yaml:3", "redis_db must be 0..1023");
    /* the schema goes into search_path unquoted: nothing but a plain name */
    EXPECT_ERROR("version: 1\napp: t\n"
                 "endpoints: {kafka: k, redis: r, postgres: p, api: a,\n"
                 "            postgres_schema: \"x; drop table users\"}\n"
                 "topics: [{name: dlq, partitions: 1, kind: dlq}]\n",
                 "x.yaml:4", "postgres_schema must be a lower-case name");
    EXPECT_ERROR("version: 1\napp: t\n"
                 "endpoints: {kafka: k, redis: r, postgres: p, api: a, postgres_schema: Gen}\n"
                 "topics: [{name: dlq, partitions: 1, kind: dlq}]\n",
                 "x.yaml:3", "postgres_schema must be a lower-case name");
}

Test(topology, write_keeps_the_secret_print_does_not)
{
    fl_topology_t *t = parse_ok(HEAD "topics: [{name: dlq, partitions: 1, kind: dlq}]\n"
                                     "api: {jwt: {secret: 0123456789abcdef0123456789abcdef-x}}\n");
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    fl_topology_write(t, f);
    fclose(f);
    cr_assert(strstr(buf, "0123456789abcdef0123456789abcdef-x"), "%s", buf);
    char err[512] = "";
    fl_topology_t *again = fl_topology_parse(buf, len, "written.yaml", err, sizeof(err));
    cr_assert_not_null(again, "%s", err);
    cr_assert_str_eq(again->api.jwt_secret, t->api.jwt_secret);
    fl_topology_free(again);
    free(buf);
    char *text = print_to_string(t, &len);
    cr_assert_null(strstr(text, "0123456789abcdef0123456789abcdef-x"));
    free(text);
    fl_topology_free(t);
}

Test(topology, topic_prefix_names_every_topic_but_the_inputs_in_kafka)
{
    fl_topology_t *t = parse_ok("version: 1\napp: t\ntopic_prefix: g3.\n"
                                "endpoints: {kafka: k, redis: r, postgres: p, api: a}\n" TOPICS);
    cr_assert_str_eq(t->topic_prefix, "g3.");
    cr_assert_str_eq(fl_topology_kafka_name(t, "in"), "in");
    cr_assert_str_eq(fl_topology_kafka_name(t, "log"), "g3.log");
    cr_assert_str_eq(fl_topology_kafka_name(t, "dlq"), "g3.dlq");
    /* the topology's own names are unchanged: the programs' logic uses them */
    cr_assert_not_null(fl_topology_topic(t, "log"));
    cr_assert_null(fl_topology_topic(t, "g3.log"));
    cr_assert_str_eq(fl_topology_kafka_name(t, "not-a-topic"), "not-a-topic");
    /* and back: what a record's topic name in Kafka is in the topology */
    cr_assert_str_eq(fl_topology_topic_by_kafka(t, "g3.log")->name, "log");
    cr_assert_str_eq(fl_topology_topic_by_kafka(t, "in")->name, "in");
    cr_assert_null(fl_topology_topic_by_kafka(t, "log"), "log is g3.log in Kafka");
    /* a replay's generation sets its own prefix; none names them plainly */
    cr_assert_eq(fl_topology_set_topic_prefix(t, "g4."), 0);
    cr_assert_str_eq(fl_topology_kafka_name(t, "log"), "g4.log");
    cr_assert_str_eq(fl_topology_kafka_name(t, "in"), "in");
    cr_assert_eq(fl_topology_set_topic_prefix(t, NULL), 0);
    cr_assert_str_eq(fl_topology_kafka_name(t, "log"), "log");
    cr_assert_eq(fl_topology_set_topic_prefix(t, "g3."), 0);
    size_t len;
    char *text = print_to_string(t, &len);
    cr_assert(strstr(text, "topic_prefix: g3.\n"), "%s", text);
    free(text);
    assert_round_trip(t);
    fl_topology_free(t);
    t = parse_ok(HEAD TOPICS);
    cr_assert_null(t->topic_prefix);
    cr_assert_str_eq(fl_topology_kafka_name(t, "log"), "log");
    fl_topology_free(t);
    EXPECT_ERROR("version: 1\napp: t\ntopic_prefix: \"g 3\"\n"
                 "endpoints: {kafka: k, redis: r, postgres: p, api: a}\n" TOPICS,
                 "x.yaml:3", "topic_prefix must be 1 to 32 of [A-Za-z0-9._-]");
}

Test(topology, input_offsets_list_names_input_partitions_only)
{
    fl_topology_t *t = parse_ok(HEAD TOPICS);
    fl_input_offset_t *v = NULL;
    size_t n = 9;
    char err[256] = "";
    cr_assert_eq(
        fl_topology_parse_input_offsets(t, "in:0:12,in2:1:0,in:1:7", &v, &n, err, sizeof(err)),
        FL_OK, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0].topic, "in");
    cr_assert_eq(v[0].partition, 0);
    cr_assert_eq(v[0].offset, 12);
    cr_assert_str_eq(v[1].topic, "in2");
    cr_assert_eq(v[1].partition, 1);
    cr_assert_eq(v[1].offset, 0);
    cr_assert_eq(v[2].offset, 7);
    free(v);
    const char *bad[] = {"log:0:5", "nosuch:0:5", "in:2:5",  "in:-1:5", "in:0:-3",
                         "in:0:",   "in::5",      "in:0:5x", "in:0",    "in:0:5,dlq:0:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        v = (fl_input_offset_t *)1;
        cr_assert_eq(fl_topology_parse_input_offsets(t, bad[i], &v, &n, err, sizeof(err)),
                     FL_ERR_INVALID, "%s accepted", bad[i]);
        cr_assert_null(v, "%s", bad[i]);
        cr_assert(strstr(err, "is not INPUT_TOPIC:PARTITION:OFFSET"), "%s: %s", bad[i], err);
    }
    fl_topology_free(t);
}
