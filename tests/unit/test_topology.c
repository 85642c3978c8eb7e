/*
 * test_topology.c - the topology loader and validator.
 *
 * Covers the real topology/feedline.yaml, defaults, flow versus block
 * style, environment overrides, the print/parse round trip, sinks, and one
 * test per validation error checking both the "x.yaml:LINE:" prefix and a
 * phrase of the message. Documents are built from numbered fragments so
 * the expected line of each error can be read off the source.
 *
 * Tests run with cwd = repo root; FEEDLINE_SOURCE_DIR, when set, locates
 * the real file and the fixtures under tests/data/topology/.
 */
#include "fl_topology.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_vars[] = {"FEEDLINE_KAFKA", "FEEDLINE_REDIS", "FEEDLINE_POSTGRES",
                                       "FEEDLINE_API", "FEEDLINE_TOPOLOGY"};

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

static void assert_same(const fl_topology_t *a, const fl_topology_t *b)
{
    cr_assert_str_eq(a->app, b->app);
    cr_assert_str_eq(a->endpoints.kafka, b->endpoints.kafka);
    cr_assert_str_eq(a->endpoints.redis, b->endpoints.redis);
    cr_assert_str_eq(a->endpoints.postgres, b->endpoints.postgres);
    cr_assert_str_eq(a->endpoints.api, b->endpoints.api);
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
    cr_assert_str_eq(fl_topology_default_path(), "topology/feedline.yaml");
    setenv("FEEDLINE_TOPOLOGY", "/etc/feedline/topology.yaml", 1);
    cr_assert_str_eq(fl_topology_default_path(), "/etc/feedline/topology.yaml");
    setenv("FEEDLINE_TOPOLOGY", "", 1);
    cr_assert_str_eq(fl_topology_default_path(), "topology/feedline.yaml");
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
