/*
 * fl_topology.c - load and validate topology/feedline.yaml: the public
 * API, the top level, endpoints and settings, the endpoints' environment
 * overrides, and printing.
 *
 * Loading is two passes. The first (fl_yaml_tree.c) turns libyaml's events
 * into a tree of nodes, each carrying its 1-based line, so block and flow
 * style reach the second pass looking the same. The second checks the
 * tree against the schema (unknown keys are errors) and builds the
 * fl_topology_t: the top level, endpoints and settings here, then the
 * cross-referenced sections in fl_topology_graph.c (topics, stores,
 * processors, sinks; their invariants are listed there), and last the
 * read API's section (fl_topology_api.c). The first error wins; errors are
 * "NAME:LINE: message". Environment overrides come after the checks: they
 * are deployment facts, not topology.
 *
 * Workload: a file of a few kilobytes read once at start-up.
 */
#include "fl_topology_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FL_TOPO_DEFAULT_PATH        "topology/feedline.yaml"
#define FL_TOPO_DEFAULT_GENERATIONS FL_GENERATIONS_DEFAULT_DIR
#define FL_TOPO_MAX_FILE            (16u * 1024u * 1024u)

static const char *const top_keys[] = {"version", "app",    "topic_prefix", "endpoints", "settings",
                                       "topics",  "stores", "processors",   "sinks",     "api",
                                       NULL};

/* topic_prefix: characters Kafka takes in a topic name, at most 32. */
static int read_prefix(ctx_t *c, fl_topology_t *t, const node_t *v, int line)
{
    if (fl__get_str(c, v, "topic_prefix", &t->topic_prefix) < 0)
        return -1;
    size_t len = strlen(t->topic_prefix);
    bool ok = len >= 1 && len <= 32;
    for (const char *p = t->topic_prefix; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '_' || *p == '-';
    if (!ok) {
        fl__fail(c, line, "topic_prefix must be 1 to 32 of [A-Za-z0-9._-]");
        return -1;
    }
    return 0;
}

/* Every topic's name in Kafka, once the topics and the prefix are read. */
/* Every topic's name in Kafka: its own for inputs, else prefixed. */
static int kafka_names(fl_topology_t *t)
{
    for (size_t i = 0; i < t->n_topics; i++) {
        fl_topic_t *tp = &t->topics[i];
        const char *pre = tp->kind == FL_TOPIC_INPUT || !t->topic_prefix ? "" : t->topic_prefix;
        free(tp->kafka);
        if (asprintf(&tp->kafka, "%s%s", pre, tp->name) < 0) {
            tp->kafka = NULL;
            return -1;
        }
    }
    return 0;
}

int fl_topology_set_topic_prefix(fl_topology_t *t, const char *prefix)
{
    char *p = prefix ? strdup(prefix) : NULL;
    if (prefix && !p)
        return -1;
    free(t->topic_prefix);
    t->topic_prefix = p;
    return kafka_names(t);
}

const char *fl_topology_kafka_name(const fl_topology_t *t, const char *name)
{
    const fl_topic_t *tp = fl_topology_topic(t, name);
    return tp ? tp->kafka : name;
}

const fl_topic_t *fl_topology_topic_by_kafka(const fl_topology_t *t, const char *kafka)
{
    for (size_t i = 0; i < t->n_topics; i++)
        if (!strcmp(t->topics[i].kafka, kafka))
            return &t->topics[i];
    return NULL;
}

fl_err_t fl_topology_parse_input_offsets(const fl_topology_t *t, const char *spec,
                                         fl_input_offset_t **out, size_t *n, char *errstr,
                                         size_t errstr_size)
{
    size_t cap = 1;
    for (const char *c = spec; *c; c++)
        cap += *c == ',';
    char *copy = strdup(spec), *save = NULL;
    fl_input_offset_t *v = calloc(cap, sizeof(*v));
    fl_err_t rc = copy && v ? FL_OK : FL_ERR_NOMEM;
    *n = 0;
    for (char *tok = rc ? NULL : strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        /* TOPIC:PARTITION:OFFSET, split at the last two colons */
        char *c2 = strrchr(tok, ':'), *c1 = NULL, *end = NULL;
        if (c2) {
            *c2 = 0;
            c1 = strrchr(tok, ':');
            *c2 = ':';
        }
        const fl_topic_t *tp = NULL;
        if (c1) {
            *c1 = 0;
            tp = fl_topology_topic(t, tok);
            *c1 = ':';
        }
        long part = c1 ? strtol(c1 + 1, &end, 10) : -1;
        long long off = end && end == c2 && end > c1 + 1 ? strtoll(c2 + 1, &end, 10) : -1;
        if (!tp || tp->kind != FL_TOPIC_INPUT || part < 0 || part >= tp->partitions || off < 0 ||
            *end || end == c2 + 1) {
            snprintf(errstr, errstr_size, "%s is not INPUT_TOPIC:PARTITION:OFFSET of the topology",
                     tok);
            rc = FL_ERR_INVALID;
            break;
        }
        v[(*n)++] = (fl_input_offset_t){tp->name, (int32_t)part, off};
    }
    free(copy);
    if (rc || !*n) {
        free(v);
        v = NULL;
    }
    if (rc == FL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory");
    *out = v;
    return rc;
}

/* A PostgreSQL schema name feedline may put in search_path unquoted. */
static bool schema_name_ok(const char *s)
{
    if (!*s || strlen(s) > 63 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static int read_endpoints(ctx_t *c, fl_topology_t *t, const node_t *map, int key_line)
{
    static const char *const keys[] = {"kafka",    "redis",           "postgres", "api",
                                       "redis_db", "postgres_schema", NULL};
    char **slots[] = {&t->endpoints.kafka, &t->endpoints.redis, &t->endpoints.postgres,
                      &t->endpoints.api};
    char what[64];
    const node_t *v;
    int line;

    if (fl__expect_map(c, map, "endpoints") < 0 || fl__check_keys(c, map, "endpoints", keys) < 0)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        v = fl__need(c, map, keys[i], key_line, "endpoints");
        snprintf(what, sizeof(what), "endpoints.%s", keys[i]);
        if (!v || fl__get_str(c, v, what, slots[i]) < 0)
            return -1;
    }
    /* Where a generation other than the live one is kept (feedline replay):
     * a Redis database number and a PostgreSQL schema. */
    if ((v = fl__map_get(map, "redis_db", &line))) {
        if (fl__get_int(c, v, "endpoints.redis_db", &t->endpoints.redis_db) < 0)
            return -1;
        if (t->endpoints.redis_db < 0 || t->endpoints.redis_db > 1023) {
            fl__fail(c, line, "endpoints.redis_db must be 0..1023");
            return -1;
        }
    }
    if ((v = fl__map_get(map, "postgres_schema", &line))) {
        if (fl__get_str(c, v, "endpoints.postgres_schema", &t->endpoints.postgres_schema) < 0)
            return -1;
        if (!schema_name_ok(t->endpoints.postgres_schema)) {
            fl__fail(c, line,
                     "endpoints.postgres_schema must be a lower-case name ([a-z_][a-z0-9_]*)");
            return -1;
        }
    }
    return 0;
}

enum {
    S_THRESHOLD,
    S_HYSTERESIS,
    S_TIMELINE_CAP,
    S_BACKFILL,
    S_OUTBOX,
    S_BATCH_RECORDS,
    S_BATCH_MS,
    S_STORE_CACHE,
    S_BUFFERED,
    S_REPLAY_RECORDS,
    S_REPLAY_MS,
    S__COUNT
};

/* min: the smallest value allowed (1: "> 0", 0: ">= 0"); NO_MIN for the
 * settings checked by a rule of their own in read_settings */
#define NO_MIN INT64_MIN

static const struct setting {
    const char *key;
    size_t off;
    int64_t def, min;
} settings_tab[S__COUNT] = {
    [S_THRESHOLD] = {"celebrity_threshold", offsetof(fl_settings_t, celebrity_threshold), 10000, 1},
    [S_HYSTERESIS] = {"celebrity_hysteresis", offsetof(fl_settings_t, celebrity_hysteresis), 1000,
                      0},
    [S_TIMELINE_CAP] = {"timeline_cap", offsetof(fl_settings_t, timeline_cap), 800, 1},
    [S_BACKFILL] = {"backfill_size", offsetof(fl_settings_t, backfill_size), 200, 0},
    [S_OUTBOX] = {"outbox_cap", offsetof(fl_settings_t, outbox_cap), 800, NO_MIN},
    [S_BATCH_RECORDS] = {"batch_max_records", offsetof(fl_settings_t, batch_max_records), 5000, 1},
    [S_BATCH_MS] = {"batch_max_ms", offsetof(fl_settings_t, batch_max_ms), 50, 1},
    [S_STORE_CACHE] = {"store_cache_bytes", offsetof(fl_settings_t, store_cache_bytes), 8 << 20,
                       NO_MIN},
    [S_BUFFERED] = {"buffered_records_per_partition",
                    offsetof(fl_settings_t, buffered_records_per_partition), 50000, 1},
    [S_REPLAY_RECORDS] = {"replay_batch_max_records",
                          offsetof(fl_settings_t, replay_batch_max_records), 25000, 1},
    [S_REPLAY_MS] = {"replay_batch_max_ms", offsetof(fl_settings_t, replay_batch_max_ms), 200, 1},
};

static int64_t *setting_slot(fl_settings_t *s, size_t i)
{
    return (int64_t *)(void *)((char *)s + settings_tab[i].off);
}

/* The line to blame for a relation between two settings: b's if written, else a's. */
static int blame(const int *lines, int a, int b, int fallback)
{
    return lines[b] ? lines[b] : lines[a] ? lines[a] : fallback;
}

/* map may be NULL: every setting then takes its default. */
static int read_settings(ctx_t *c, fl_topology_t *t, const node_t *map, int key_line)
{
    fl_settings_t *s = &t->settings;
    int lines[S__COUNT] = {0};

    for (size_t i = 0; i < S__COUNT; i++)
        *setting_slot(s, i) = settings_tab[i].def;
    if (!map)
        return 0;
    if (fl__expect_map(c, map, "settings") < 0)
        return -1;
    for (size_t k = 0; k < map->n_kids; k += 2) {
        const node_t *key = map->kids[k];
        size_t i = 0;

        while (i < S__COUNT && strcmp(key->str, settings_tab[i].key))
            i++;
        if (i == S__COUNT) {
            fl__fail(c, key->line, "unknown key '%.*s' in settings", FL_TOPO_SHOW, key->str);
            return -1;
        }
        if (fl__get_int(c, map->kids[k + 1], settings_tab[i].key, setting_slot(s, i)) < 0)
            return -1;
        lines[i] = map->kids[k + 1]->line;
    }

    for (size_t i = 0; i < S__COUNT; i++) {
        int64_t v = *setting_slot(s, i), min = settings_tab[i].min;
        if (min != NO_MIN && v < min) {
            fl__fail(c, lines[i], "%s must be %s, got %" PRId64, settings_tab[i].key,
                     min == 1 ? "> 0" : ">= 0", v);
            return -1;
        }
    }
    if (s->celebrity_hysteresis >= s->celebrity_threshold) {
        fl__fail(c, blame(lines, S_THRESHOLD, S_HYSTERESIS, key_line),
                 "celebrity_hysteresis (%" PRId64
                 ") must be less than celebrity_threshold (%" PRId64 ")",
                 s->celebrity_hysteresis, s->celebrity_threshold);
        return -1;
    }
    if (s->outbox_cap < s->backfill_size) {
        fl__fail(c, blame(lines, S_BACKFILL, S_OUTBOX, key_line),
                 "outbox_cap (%" PRId64 ") must be >= backfill_size (%" PRId64 ")", s->outbox_cap,
                 s->backfill_size);
        return -1;
    }
    if (s->store_cache_bytes < 0 || s->store_cache_bytes > ((int64_t)1 << 40)) {
        fl__fail(c, lines[S_STORE_CACHE],
                 "store_cache_bytes must be between 0 and 2^40, got %" PRId64,
                 s->store_cache_bytes);
        return -1;
    }
    return 0;
}

/* Fills t from the tree; on failure t holds whatever was read so far. */
static int read_topology(ctx_t *c, fl_topology_t *t, const node_t *root)
{
    const node_t *v;
    int64_t version;
    int line = 0;

    if (fl__expect_map(c, root, "the top level") < 0 ||
        fl__check_keys(c, root, "the top level", top_keys) < 0)
        return -1;

    if (!(v = fl__need(c, root, "version", root->line, "the top level")) ||
        fl__get_int(c, v, "version", &version) < 0)
        return -1;
    if (version != 1) {
        fl__fail(c, v->line, "unsupported version %" PRId64 " (this loader reads version 1)",
                 version);
        return -1;
    }
    if (!(v = fl__need(c, root, "app", root->line, "the top level")) ||
        fl__get_str(c, v, "app", &t->app) < 0)
        return -1;
    if ((v = fl__map_get(root, "topic_prefix", &line)) && read_prefix(c, t, v, line) < 0)
        return -1;
    if (!(v = fl__need(c, root, "endpoints", root->line, "the top level")))
        return -1;
    fl__map_get(root, "endpoints", &line);
    if (read_endpoints(c, t, v, line) < 0)
        return -1;
    v = fl__map_get(root, "settings", &line);
    if (read_settings(c, t, v, line) < 0)
        return -1;
    if (!(v = fl__need(c, root, "topics", root->line, "the top level")))
        return -1;
    fl__map_get(root, "topics", &line);
    if (fl__read_topics(c, t, v, line) < 0)
        return -1;
    if (kafka_names(t) < 0) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    if ((v = fl__map_get(root, "stores", NULL)) && fl__read_stores(c, t, v) < 0)
        return -1;
    if ((v = fl__map_get(root, "processors", NULL)) && fl__read_processors(c, t, v) < 0)
        return -1;
    if ((v = fl__map_get(root, "sinks", NULL)) && fl__read_sinks(c, t, v) < 0)
        return -1;
    /* Last: it applies its own environment overrides once it is valid. */
    if (fl__read_api(c, &t->api, fl__map_get(root, "api", NULL)) < 0)
        return -1;
    return 0;
}

int fl__env_override(ctx_t *c, const char *var, char **slot)
{
    const char *v = getenv(var);
    char *copy;

    if (!v || !*v)
        return 0;
    if (!(copy = strdup(v))) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

/* Overrides come after validation: they are deployment facts, not topology. */
static int apply_env(ctx_t *c, fl_topology_t *t)
{
    static const char *const vars[] = {"FEEDLINE_KAFKA", "FEEDLINE_REDIS", "FEEDLINE_POSTGRES",
                                       "FEEDLINE_API"};
    char **slots[] = {&t->endpoints.kafka, &t->endpoints.redis, &t->endpoints.postgres,
                      &t->endpoints.api};

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (fl__env_override(c, vars[i], slots[i]) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

fl_topology_t *fl_topology_parse(const char *yaml, size_t len, const char *name, char *errstr,
                                 size_t errstr_size)
{
    ctx_t c = {.name = name ? name : "<memory>", .errstr = errstr, .errstr_size = errstr_size};
    node_t *root = NULL;
    fl_topology_t *t = NULL;

    if (errstr && errstr_size)
        errstr[0] = '\0';
    if (!yaml && len) {
        fl__fail(&c, 0, "no document given");
        goto out;
    }
    if (len > FL_TOPO_MAX_FILE) {
        fl__fail(&c, 0, "document is larger than %u bytes", FL_TOPO_MAX_FILE);
        goto out;
    }
    if (!(root = fl__build_tree(&c, yaml ? yaml : "", len)))
        goto out;
    if (!(t = calloc(1, sizeof(*t))) || !(t->path = strdup(c.name))) {
        fl__fail(&c, 0, "out of memory");
        goto out;
    }
    if (read_topology(&c, t, root) < 0 || apply_env(&c, t) < 0)
        goto out;
out:
    fl__node_free(root);
    if (c.failed) {
        fl_topology_free(t);
        t = NULL;
    }
    return t;
}

fl_topology_t *fl_topology_load(const char *path, char *errstr, size_t errstr_size)
{
    ctx_t c = {.name = path ? path : "<null>", .errstr = errstr, .errstr_size = errstr_size};
    fl_topology_t *t = NULL;
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (errstr && errstr_size)
        errstr[0] = '\0';
    if (!path) {
        fl__fail(&c, 0, "no topology file given");
        goto out;
    }
    if (!(f = fopen(path, "rb"))) {
        fl__fail(&c, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        size_t got;

        if (len == cap) {
            char *grown;

            if (cap >= FL_TOPO_MAX_FILE) {
                fl__fail(&c, 0, "file is larger than %u bytes", FL_TOPO_MAX_FILE);
                goto out;
            }
            cap = cap ? cap * 2 : 8192;
            if (!(grown = realloc(buf, cap))) {
                fl__fail(&c, 0, "out of memory");
                goto out;
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                fl__fail(&c, 0, "cannot read: %s", strerror(errno));
                goto out;
            }
            break;
        }
    }
    t = fl_topology_parse(buf, len, path, errstr, errstr_size);
out:
    if (f)
        fclose(f);
    free(buf);
    return t;
}

const fl_topic_t *fl_topology_topic(const fl_topology_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->n_topics; i++)
        if (!strcmp(t->topics[i].name, name))
            return &t->topics[i];
    return NULL;
}

const fl_store_def_t *fl_topology_store(const fl_topology_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->n_stores; i++)
        if (!strcmp(t->stores[i].name, name))
            return &t->stores[i];
    return NULL;
}

const fl_processor_t *fl_topology_processor(const fl_topology_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->n_processors; i++)
        if (!strcmp(t->processors[i].name, name))
            return &t->processors[i];
    return NULL;
}

const fl_sink_cfg_t *fl_topology_sink(const fl_topology_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->n_sinks; i++)
        if (!strcmp(t->sinks[i].name, name))
            return &t->sinks[i];
    return NULL;
}

const char *fl_topology_default_path(void)
{
    static char live[4096];
    const char *env = getenv("FEEDLINE_TOPOLOGY"), *gens = getenv("FEEDLINE_GENERATIONS");

    if (env && *env)
        return env;
    /* after a feedline replay switch, the live generation's */
    snprintf(live, sizeof(live), "%s/live/topology.yaml",
             gens && *gens ? gens : FL_TOPO_DEFAULT_GENERATIONS);
    return access(live, R_OK) == 0 ? live : FL_TOPO_DEFAULT_PATH;
}

const char *fl_topic_kind_str(fl_topic_kind_t kind)
{
    switch (kind) {
    case FL_TOPIC_INPUT:
        return "input";
    case FL_TOPIC_INTERNAL:
        return "internal";
    case FL_TOPIC_CHANGELOG:
        return "changelog";
    case FL_TOPIC_DLQ:
        return "dlq";
    }
    return "unknown";
}

const char *fl_sink_kind_str(fl_sink_kind_t kind)
{
    switch (kind) {
    case FL_SINK_REDIS:
        return "redis";
    case FL_SINK_POSTGRES:
        return "postgres";
    }
    return "unknown";
}

static void print_list(FILE *out, const char *key, char *const *items, size_t n)
{
    if (n == 0) {
        fprintf(out, "    %s: []\n", key);
        return;
    }
    fprintf(out, "    %s:\n", key);
    for (size_t i = 0; i < n; i++) {
        fputs("      - ", out);
        fl__print_str(out, items[i]);
        fputc('\n', out);
    }
}

static void print_topology(const fl_topology_t *t, FILE *out, bool secrets)
{
    static const char *const ep_keys[] = {"kafka", "redis", "postgres", "api"};
    const char *eps[4];
    fl_settings_t s;

    if (!t || !out)
        return;
    eps[0] = t->endpoints.kafka;
    eps[1] = t->endpoints.redis;
    eps[2] = t->endpoints.postgres;
    eps[3] = t->endpoints.api;
    s = t->settings;
    fputs("# feedline topology as loaded, environment overrides applied\n", out);
    fputs("version: 1\napp: ", out);
    fl__print_str(out, t->app);
    if (t->topic_prefix) {
        fputs("\ntopic_prefix: ", out);
        fl__print_str(out, t->topic_prefix);
    }
    fputs("\n\nendpoints:\n", out);
    for (size_t i = 0; i < 4; i++) {
        fprintf(out, "  %s: ", ep_keys[i]);
        fl__print_str(out, eps[i]);
        fputc('\n', out);
    }
    if (t->endpoints.redis_db)
        fprintf(out, "  redis_db: %" PRId64 "\n", t->endpoints.redis_db);
    if (t->endpoints.postgres_schema) {
        fputs("  postgres_schema: ", out);
        fl__print_str(out, t->endpoints.postgres_schema);
        fputc('\n', out);
    }
    fputs("\nsettings:\n", out);
    for (size_t i = 0; i < S__COUNT; i++)
        fprintf(out, "  %s: %" PRId64 "\n", settings_tab[i].key, *setting_slot(&s, i));

    fl__api_print(&t->api, out, secrets);

    fputs(t->n_topics ? "\ntopics:\n" : "\ntopics: []\n", out);
    for (size_t i = 0; i < t->n_topics; i++) {
        fputs("  - name: ", out);
        fl__print_str(out, t->topics[i].name);
        fprintf(out, "\n    partitions: %d\n    kind: %s\n", t->topics[i].partitions,
                fl_topic_kind_str(t->topics[i].kind));
    }
    fputs(t->n_stores ? "\nstores:\n" : "\nstores: []\n", out);
    for (size_t i = 0; i < t->n_stores; i++) {
        fputs("  - name: ", out);
        fl__print_str(out, t->stores[i].name);
        fputs("\n    changelog: ", out);
        fl__print_str(out, t->stores[i].changelog);
        fputc('\n', out);
    }
    fputs(t->n_processors ? "\nprocessors:\n" : "\nprocessors: []\n", out);
    for (size_t i = 0; i < t->n_processors; i++) {
        const fl_processor_t *p = &t->processors[i];

        fputs("  - name: ", out);
        fl__print_str(out, p->name);
        fputs("\n    group: ", out);
        fl__print_str(out, p->group);
        fputc('\n', out);
        print_list(out, "inputs", p->inputs, p->n_inputs);
        print_list(out, "outputs", p->outputs, p->n_outputs);
        print_list(out, "stores", p->stores, p->n_stores);
    }
    fputs(t->n_sinks ? "\nsinks:\n" : "\nsinks: []\n", out);
    for (size_t i = 0; i < t->n_sinks; i++) {
        const fl_sink_cfg_t *k = &t->sinks[i];

        fputs("  - name: ", out);
        fl__print_str(out, k->name);
        fputs("\n    group: ", out);
        fl__print_str(out, k->group);
        fputc('\n', out);
        print_list(out, "inputs", k->inputs, k->n_inputs);
        fprintf(out, "    destination: %s\n", fl_sink_kind_str(k->destination));
    }
}

void fl_topology_print(const fl_topology_t *t, FILE *out)
{
    print_topology(t, out, false);
}

void fl_topology_write(const fl_topology_t *t, FILE *out)
{
    print_topology(t, out, true);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void fl_topology_free(fl_topology_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_topics; i++) {
        free(t->topics[i].name);
        free(t->topics[i].kafka);
    }
    free(t->topics);
    for (size_t i = 0; i < t->n_stores; i++) {
        free(t->stores[i].name);
        free(t->stores[i].changelog);
    }
    free(t->stores);
    for (size_t i = 0; i < t->n_processors; i++) {
        fl_processor_t *p = &t->processors[i];
        free(p->name);
        free(p->group);
        free_strv(p->inputs, p->n_inputs);
        free_strv(p->outputs, p->n_outputs);
        free_strv(p->stores, p->n_stores);
    }
    free(t->processors);
    for (size_t i = 0; i < t->n_sinks; i++) {
        fl_sink_cfg_t *k = &t->sinks[i];
        free(k->name);
        free(k->group);
        free_strv(k->inputs, k->n_inputs);
    }
    free(t->sinks);
    free(t->endpoints.kafka);
    free(t->endpoints.redis);
    free(t->endpoints.postgres);
    free(t->endpoints.postgres_schema);
    free(t->endpoints.api);
    fl__api_free(&t->api);
    free(t->app);
    free(t->topic_prefix);
    free(t->path);
    free(t);
}
