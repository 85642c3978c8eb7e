/*
 * fl_topology.c - load and validate topology/feedline.yaml.
 *
 * Loading is two passes. The first walks libyaml's event stream
 * (yaml_parser_parse) and builds a small tree of scalars, sequences and
 * mappings, each node carrying its 1-based line; it rejects duplicate keys,
 * non-scalar keys, aliases, tags, NUL bytes and more than one document, so
 * block and flow style reach the second pass looking the same. The second
 * pass checks the tree against the schema (unknown keys are errors) and
 * builds the fl_topology_t: topics first, then stores (which refer to
 * topics), then processors (which refer to both), then sinks (which refer
 * to topics and to the processors' names and groups), so every cross
 * reference can be checked against what was already accepted, with the
 * line of the offending value. The first error wins; errors are
 * "NAME:LINE: message".
 *
 * Invariants of a returned topology: names are unique per kind and legal
 * Kafka names; exactly one dlq topic; every store's changelog is a topic of
 * kind changelog used by no other store; every reference names a known
 * topic or store; a processor's inputs share one partition count and its
 * stores' changelogs have that count too (one store instance per input
 * partition); a store belongs to at most one processor; a sink's inputs
 * are known topics of any partition counts; names are unique across
 * processors and sinks together, and so are consumer groups.
 *
 * Workload: a file of a few kilobytes read once at start-up. Collections
 * are capped (FL_TOPO_MAX_ENTRIES) so the quadratic uniqueness checks stay
 * cheap even on hostile input, and nesting is capped so the recursive
 * walk cannot exhaust the stack.
 */
#include "fl_topology.h"

#include <yaml.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FL_TOPO_DEFAULT_PATH  "topology/feedline.yaml"
#define FL_TOPO_MAX_FILE      (16u * 1024u * 1024u)
#define FL_TOPO_MAX_DEPTH     32
#define FL_TOPO_MAX_ENTRIES   10000
#define FL_TOPO_MAX_NAME      249 /* Kafka's limit for topic names */
#define FL_TOPO_MAX_PARTITION 1024
#define FL_TOPO_SHOW          80 /* longest user text quoted in a message */

typedef enum { NODE_SCALAR, NODE_SEQ, NODE_MAP } node_type_t;

/* One YAML node. A mapping keeps key, value, key, value... in kids. */
typedef struct node {
    node_type_t type;
    int line;
    bool plain; /* scalar written without quotes */
    char *str;  /* scalar text, NUL-terminated */
    size_t len;
    struct node **kids;
    size_t n_kids;
    size_t cap;
} node_t;

typedef struct ctx {
    const char *name;
    char *errstr;
    size_t errstr_size;
    bool failed;
} ctx_t;

static void fail(ctx_t *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error only: later ones are usually consequences. */
static void fail(ctx_t *c, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->failed)
        return;
    c->failed = true;
    if (!c->errstr || c->errstr_size == 0)
        return;
    if (line > 0)
        n = snprintf(c->errstr, c->errstr_size, "%s:%d: ", c->name, line);
    else
        n = snprintf(c->errstr, c->errstr_size, "%s: ", c->name);
    if (n < 0 || (size_t)n >= c->errstr_size)
        return;
    va_start(ap, fmt);
    vsnprintf(c->errstr + n, c->errstr_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Pass 1: libyaml events to a node tree                              */
/* ------------------------------------------------------------------ */

static int mark_line(yaml_mark_t m)
{
    return m.line >= (size_t)INT_MAX ? INT_MAX : (int)m.line + 1;
}

static void node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static int node_push(node_t *parent, node_t *kid)
{
    if (parent->n_kids == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        node_t **kids = realloc(parent->kids, cap * sizeof(*kids));
        if (!kids)
            return -1;
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->n_kids++] = kid;
    return 0;
}

static bool node_is_null(const node_t *n)
{
    if (n->type != NODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
           !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

/* The number of the last line of the input (1 for empty input). */
static int last_line(const char *buf, size_t len)
{
    int lines = 1;

    for (size_t i = 0; i + 1 < len; i++)
        lines += buf[i] == '\n';
    return lines;
}

static void syntax_error(ctx_t *c, yaml_parser_t *p, const char *buf, size_t len)
{
    int line;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        fail(c, 0, "out of memory");
        return;
    case YAML_READER_ERROR:
        /* Reader errors carry a byte offset rather than a mark. */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += buf[i] == '\n';
        fail(c, line, "invalid YAML input: %s", p->problem ? p->problem : "unreadable");
        return;
    default:
        /* At end of input libyaml marks the line after the last one. */
        line = mark_line(p->problem_mark);
        if (line > last_line(buf, len))
            line = last_line(buf, len);
        if (p->context)
            fail(c, line, "YAML syntax error: %s (%s at line %d)",
                 p->problem ? p->problem : "invalid document", p->context,
                 mark_line(p->context_mark));
        else
            fail(c, line, "YAML syntax error: %s", p->problem ? p->problem : "invalid document");
        return;
    }
}

typedef struct reader {
    ctx_t *c;
    yaml_parser_t parser;
    const char *buf;
    size_t len;
} reader_t;

static int next_event(reader_t *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev)) {
        syntax_error(r->c, &r->parser, r->buf, r->len);
        return -1;
    }
    return 0;
}

/* Index of key's key node in map->kids, or -1. */
static long map_index(const node_t *map, const char *key, size_t len)
{
    for (size_t i = 0; i + 1 < map->n_kids; i += 2)
        if (map->kids[i]->len == len && !memcmp(map->kids[i]->str, key, len))
            return (long)i;
    return -1;
}

/*
 * Builds the node for the event ev and everything nested in it. Always
 * deletes ev. On success *out owns the new node.
 */
static int build_node(reader_t *r, yaml_event_t *ev, int depth, node_t **out)
{
    ctx_t *c = r->c;
    node_t *n = NULL;
    yaml_event_t kid_ev;
    yaml_char_t *tag = NULL;
    yaml_event_type_t end_type;
    int line = mark_line(ev->start_mark);
    int rc = -1;

    *out = NULL;
    if (ev->type == YAML_SCALAR_EVENT)
        tag = ev->data.scalar.tag;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        tag = ev->data.sequence_start.tag;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        tag = ev->data.mapping_start.tag;
    if (tag) {
        fail(c, line, "YAML tags are not supported ('%.*s')", FL_TOPO_SHOW, (const char *)tag);
        goto out;
    }

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        fail(c, line, "YAML aliases are not supported");
        goto out;
    case YAML_SCALAR_EVENT:
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
            fail(c, line, "strings must not contain NUL characters");
            goto out;
        }
        if (!(n = calloc(1, sizeof(*n))) || !(n->str = malloc(ev->data.scalar.length + 1))) {
            fail(c, 0, "out of memory");
            goto out;
        }
        n->type = NODE_SCALAR;
        n->line = line;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->len = ev->data.scalar.length;
        memcpy(n->str, ev->data.scalar.value, n->len + 1);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (depth >= FL_TOPO_MAX_DEPTH) {
            fail(c, line, "nesting deeper than %d levels", FL_TOPO_MAX_DEPTH);
            goto out;
        }
        if (!(n = calloc(1, sizeof(*n)))) {
            fail(c, 0, "out of memory");
            goto out;
        }
        n->type = ev->type == YAML_SEQUENCE_START_EVENT ? NODE_SEQ : NODE_MAP;
        n->line = line;
        end_type = n->type == NODE_SEQ ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT;
        for (;;) {
            node_t *kid = NULL;
            bool is_key = n->type == NODE_MAP && n->n_kids % 2 == 0;

            if (next_event(r, &kid_ev) < 0)
                goto out;
            if (kid_ev.type == end_type) {
                yaml_event_delete(&kid_ev);
                break;
            }
            if (build_node(r, &kid_ev, depth + 1, &kid) < 0)
                goto out;
            if (is_key && kid->type != NODE_SCALAR) {
                fail(c, kid->line, "mapping keys must be scalars");
                node_free(kid);
                goto out;
            }
            if (is_key) {
                long prev = map_index(n, kid->str, kid->len);
                if (prev >= 0) {
                    fail(c, kid->line, "duplicate key '%.*s' (first at line %d)", FL_TOPO_SHOW,
                         kid->str, n->kids[prev]->line);
                    node_free(kid);
                    goto out;
                }
            } else if (n->type == NODE_MAP && kid->type == NODE_SCALAR && kid->plain &&
                       kid->len == 0) {
                /* An empty value has no text of its own: point at its key. */
                kid->line = n->kids[n->n_kids - 1]->line;
            }
            if ((n->type == NODE_SEQ ? n->n_kids : n->n_kids / 2) >= FL_TOPO_MAX_ENTRIES) {
                fail(c, kid->line, "more than %d entries in one collection", FL_TOPO_MAX_ENTRIES);
                node_free(kid);
                goto out;
            }
            if (node_push(n, kid) < 0) {
                fail(c, 0, "out of memory");
                node_free(kid);
                goto out;
            }
        }
        break;
    default:
        fail(c, line, "unexpected YAML event");
        goto out;
    }
    *out = n;
    n = NULL;
    rc = 0;
out:
    node_free(n);
    yaml_event_delete(ev);
    return rc;
}

/* Parses a whole stream holding exactly one document into a tree. */
static node_t *build_tree(ctx_t *c, const char *buf, size_t len)
{
    reader_t r = {.c = c, .buf = buf, .len = len};
    yaml_event_t ev;
    node_t *root = NULL;
    bool have_parser = false;

    if (!yaml_parser_initialize(&r.parser)) {
        fail(c, 0, "out of memory");
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)buf, len);

    if (next_event(&r, &ev) < 0)
        goto out;
    yaml_event_delete(&ev); /* stream start */
    if (next_event(&r, &ev) < 0)
        goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        fail(c, 1, "empty document: expected a mapping with version, app, endpoints, topics");
        goto out;
    }
    yaml_event_delete(&ev); /* document start */
    if (next_event(&r, &ev) < 0)
        goto out;
    if (build_node(&r, &ev, 0, &root) < 0)
        goto out;
    if (next_event(&r, &ev) < 0)
        goto out;
    yaml_event_delete(&ev); /* document end */
    if (next_event(&r, &ev) < 0)
        goto out;
    if (ev.type != YAML_STREAM_END_EVENT) {
        fail(c, mark_line(ev.start_mark), "only one YAML document is allowed");
        yaml_event_delete(&ev);
        goto out;
    }
    yaml_event_delete(&ev);
out:
    if (c->failed) {
        node_free(root);
        root = NULL;
    }
    if (have_parser)
        yaml_parser_delete(&r.parser);
    return root;
}

/* ------------------------------------------------------------------ */
/* Pass 2: the tree checked against the schema                         */
/* ------------------------------------------------------------------ */

static const char *node_kind(const node_t *n)
{
    if (node_is_null(n))
        return "null";
    switch (n->type) {
    case NODE_SCALAR:
        return "a scalar";
    case NODE_SEQ:
        return "a sequence";
    default:
        return "a mapping";
    }
}

/* The value for key in map, or NULL; *key_line gets the key's line. */
static const node_t *map_get(const node_t *map, const char *key, int *key_line)
{
    long i = map_index(map, key, strlen(key));

    if (i < 0)
        return NULL;
    if (key_line)
        *key_line = map->kids[i]->line;
    return map->kids[i + 1];
}

/* A required key; line is where the enclosing entry starts. */
static const node_t *need(ctx_t *c, const node_t *map, const char *key, int line, const char *where)
{
    const node_t *v = map_get(map, key, NULL);

    if (!v)
        fail(c, line, "missing required key '%s' in %s", key, where);
    return v;
}

/* Rejects any key of map that is not in the NULL-terminated allowed list. */
static int check_keys(ctx_t *c, const node_t *map, const char *where, const char *const *allowed)
{
    for (size_t i = 0; i < map->n_kids; i += 2) {
        const node_t *k = map->kids[i];
        size_t j = 0;

        while (allowed[j] && strcmp(k->str, allowed[j]))
            j++;
        if (!allowed[j]) {
            fail(c, k->line, "unknown key '%.*s' in %s", FL_TOPO_SHOW, k->str, where);
            return -1;
        }
    }
    return 0;
}

static int expect_map(ctx_t *c, const node_t *n, const char *what)
{
    if (n->type == NODE_MAP)
        return 0;
    fail(c, n->line, "%s must be a mapping, got %s", what, node_kind(n));
    return -1;
}

static int expect_seq(ctx_t *c, const node_t *n, const char *what)
{
    if (n->type == NODE_SEQ)
        return 0;
    fail(c, n->line, "%s must be a sequence, got %s", what, node_kind(n));
    return -1;
}

/* A non-empty string; *out is a copy the caller owns. */
static int get_str(ctx_t *c, const node_t *n, const char *what, char **out)
{
    *out = NULL;
    if (n->type != NODE_SCALAR || node_is_null(n)) {
        fail(c, n->line, "%s must be a string, got %s", what, node_kind(n));
        return -1;
    }
    if (n->len == 0) {
        fail(c, n->line, "%s must not be empty", what);
        return -1;
    }
    if (!(*out = strdup(n->str))) {
        fail(c, 0, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * A decimal integer written as a plain scalar. Quoted numbers, floats,
 * trailing garbage and leading zeros (octal in YAML 1.1, decimal in 1.2)
 * are refused rather than guessed at.
 */
static int get_int(ctx_t *c, const node_t *n, const char *what, int64_t *out)
{
    const char *s = n->str, *d;
    char *end = NULL;
    long long v;

    if (n->type != NODE_SCALAR || node_is_null(n)) {
        fail(c, n->line, "%s must be an integer, got %s", what, node_kind(n));
        return -1;
    }
    if (!n->plain) {
        fail(c, n->line, "%s must be an integer, got the quoted string '%.*s'", what, FL_TOPO_SHOW,
             s);
        return -1;
    }
    d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*d < '0' || *d > '9') {
        fail(c, n->line, "%s must be an integer, got '%.*s'", what, FL_TOPO_SHOW, s);
        return -1;
    }
    for (const char *p = d; *p; p++) {
        if (*p < '0' || *p > '9') {
            fail(c, n->line, "%s must be an integer, got '%.*s'", what, FL_TOPO_SHOW, s);
            return -1;
        }
    }
    if (d[0] == '0' && d[1]) {
        fail(c, n->line, "%s: leading zeros are not allowed in '%.*s'", what, FL_TOPO_SHOW, s);
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end) {
        fail(c, n->line, "%s is out of range: '%.*s'", what, FL_TOPO_SHOW, s);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/*
 * Topic, store and processor names: Kafka's legal topic characters and
 * length, so every name is safe in topic names, directory names and
 * metric labels alike.
 */
static int check_name(ctx_t *c, const char *name, int line, const char *what)
{
    size_t len = strlen(name);

    if (len > FL_TOPO_MAX_NAME) {
        fail(c, line, "%s name '%.*s...' is longer than %d characters", what, 40, name,
             FL_TOPO_MAX_NAME);
        return -1;
    }
    if (!strcmp(name, ".") || !strcmp(name, "..")) {
        fail(c, line, "%s name '%s' is not allowed", what, name);
        return -1;
    }
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';

        if (ok)
            continue;
        if (ch > 0x20 && ch < 0x7f)
            fail(c, line,
                 "%s name '%.*s' has an illegal character '%c' (allowed: a-z A-Z 0-9 . _ -)", what,
                 FL_TOPO_SHOW, name, ch);
        else
            fail(c, line,
                 "%s name '%.*s' has an illegal character 0x%02x (allowed: a-z A-Z 0-9 . _ -)",
                 what, FL_TOPO_SHOW, name, ch);
        return -1;
    }
    return 0;
}

/* Kafka refuses topics whose names differ only in '.' versus '_'. */
static bool names_collide(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '.' ? '_' : *a, y = *b == '.' ? '_' : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

static const char *const top_keys[] = {"version", "app",        "endpoints", "settings", "topics",
                                       "stores",  "processors", "sinks",     NULL};

static int read_endpoints(ctx_t *c, fl_topology_t *t, const node_t *map, int key_line)
{
    static const char *const keys[] = {"kafka", "redis", "postgres", "api", NULL};
    char **slots[] = {&t->endpoints.kafka, &t->endpoints.redis, &t->endpoints.postgres,
                      &t->endpoints.api};
    char what[64];

    if (expect_map(c, map, "endpoints") < 0 || check_keys(c, map, "endpoints", keys) < 0)
        return -1;
    for (size_t i = 0; keys[i]; i++) {
        const node_t *v = need(c, map, keys[i], key_line, "endpoints");

        snprintf(what, sizeof(what), "endpoints.%s", keys[i]);
        if (!v || get_str(c, v, what, slots[i]) < 0)
            return -1;
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
    S__COUNT
};

static const struct setting {
    const char *key;
    size_t off;
    int64_t def;
} settings_tab[S__COUNT] = {
    [S_THRESHOLD] = {"celebrity_threshold", offsetof(fl_settings_t, celebrity_threshold), 10000},
    [S_HYSTERESIS] = {"celebrity_hysteresis", offsetof(fl_settings_t, celebrity_hysteresis), 1000},
    [S_TIMELINE_CAP] = {"timeline_cap", offsetof(fl_settings_t, timeline_cap), 800},
    [S_BACKFILL] = {"backfill_size", offsetof(fl_settings_t, backfill_size), 200},
    [S_OUTBOX] = {"outbox_cap", offsetof(fl_settings_t, outbox_cap), 800},
    [S_BATCH_RECORDS] = {"batch_max_records", offsetof(fl_settings_t, batch_max_records), 5000},
    [S_BATCH_MS] = {"batch_max_ms", offsetof(fl_settings_t, batch_max_ms), 50},
    [S_STORE_CACHE] = {"store_cache_bytes", offsetof(fl_settings_t, store_cache_bytes), 8 << 20},
    [S_BUFFERED] = {"buffered_records_per_partition",
                    offsetof(fl_settings_t, buffered_records_per_partition), 50000},
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
    if (expect_map(c, map, "settings") < 0)
        return -1;
    for (size_t k = 0; k < map->n_kids; k += 2) {
        const node_t *key = map->kids[k];
        size_t i = 0;

        while (i < S__COUNT && strcmp(key->str, settings_tab[i].key))
            i++;
        if (i == S__COUNT) {
            fail(c, key->line, "unknown key '%.*s' in settings", FL_TOPO_SHOW, key->str);
            return -1;
        }
        if (get_int(c, map->kids[k + 1], settings_tab[i].key, setting_slot(s, i)) < 0)
            return -1;
        lines[i] = map->kids[k + 1]->line;
    }

    if (s->celebrity_threshold <= 0) {
        fail(c, lines[S_THRESHOLD], "celebrity_threshold must be > 0, got %" PRId64,
             s->celebrity_threshold);
        return -1;
    }
    if (s->celebrity_hysteresis < 0) {
        fail(c, lines[S_HYSTERESIS], "celebrity_hysteresis must be >= 0, got %" PRId64,
             s->celebrity_hysteresis);
        return -1;
    }
    if (s->celebrity_hysteresis >= s->celebrity_threshold) {
        fail(c, blame(lines, S_THRESHOLD, S_HYSTERESIS, key_line),
             "celebrity_hysteresis (%" PRId64 ") must be less than celebrity_threshold (%" PRId64
             ")",
             s->celebrity_hysteresis, s->celebrity_threshold);
        return -1;
    }
    if (s->timeline_cap <= 0) {
        fail(c, lines[S_TIMELINE_CAP], "timeline_cap must be > 0, got %" PRId64, s->timeline_cap);
        return -1;
    }
    if (s->backfill_size < 0) {
        fail(c, lines[S_BACKFILL], "backfill_size must be >= 0, got %" PRId64, s->backfill_size);
        return -1;
    }
    if (s->outbox_cap < s->backfill_size) {
        fail(c, blame(lines, S_BACKFILL, S_OUTBOX, key_line),
             "outbox_cap (%" PRId64 ") must be >= backfill_size (%" PRId64 ")", s->outbox_cap,
             s->backfill_size);
        return -1;
    }
    if (s->batch_max_records <= 0) {
        fail(c, lines[S_BATCH_RECORDS], "batch_max_records must be > 0, got %" PRId64,
             s->batch_max_records);
        return -1;
    }
    if (s->batch_max_ms <= 0) {
        fail(c, lines[S_BATCH_MS], "batch_max_ms must be > 0, got %" PRId64, s->batch_max_ms);
        return -1;
    }
    if (s->store_cache_bytes < 0 || s->store_cache_bytes > ((int64_t)1 << 40)) {
        fail(c, lines[S_STORE_CACHE], "store_cache_bytes must be between 0 and 2^40, got %" PRId64,
             s->store_cache_bytes);
        return -1;
    }
    if (s->buffered_records_per_partition <= 0) {
        fail(c, lines[S_BUFFERED], "buffered_records_per_partition must be > 0, got %" PRId64,
             s->buffered_records_per_partition);
        return -1;
    }
    return 0;
}

static bool parse_kind(const char *s, fl_topic_kind_t *kind)
{
    static const fl_topic_kind_t kinds[] = {FL_TOPIC_INPUT, FL_TOPIC_INTERNAL, FL_TOPIC_CHANGELOG,
                                            FL_TOPIC_DLQ};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!strcmp(s, fl_topic_kind_str(kinds[i]))) {
            *kind = kinds[i];
            return true;
        }
    }
    return false;
}

static int read_topics(ctx_t *c, fl_topology_t *t, const node_t *seq, int key_line)
{
    static const char *const keys[] = {"name", "partitions", "kind", NULL};
    const fl_topic_t *dlq = NULL;
    char what[FL_TOPO_MAX_NAME + 64];

    if (expect_seq(c, seq, "topics") < 0)
        return -1;
    if (!(t->topics = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->topics)))) {
        fail(c, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++) {
        const node_t *e = seq->kids[i], *name, *parts, *kind;
        fl_topic_t *tp = &t->topics[t->n_topics];
        int64_t n;

        if (expect_map(c, e, "a topic entry") < 0 || check_keys(c, e, "topic entry", keys) < 0)
            return -1;
        if (!(name = need(c, e, "name", e->line, "topic entry")) ||
            !(parts = need(c, e, "partitions", e->line, "topic entry")) ||
            !(kind = need(c, e, "kind", e->line, "topic entry")))
            return -1;
        tp->line = e->line;
        if (get_str(c, name, "topic name", &tp->name) < 0)
            return -1;
        t->n_topics++;
        if (check_name(c, tp->name, name->line, "topic") < 0)
            return -1;
        for (size_t j = 0; j + 1 < t->n_topics; j++) {
            if (!strcmp(t->topics[j].name, tp->name)) {
                fail(c, name->line, "duplicate topic '%s' (first at line %d)", tp->name,
                     t->topics[j].line);
                return -1;
            }
            if (names_collide(t->topics[j].name, tp->name)) {
                fail(c, name->line,
                     "topic '%s' collides with topic '%s' (line %d): Kafka treats '.' and "
                     "'_' alike",
                     tp->name, t->topics[j].name, t->topics[j].line);
                return -1;
            }
        }
        snprintf(what, sizeof(what), "topic '%s' partitions", tp->name);
        if (get_int(c, parts, what, &n) < 0)
            return -1;
        if (n < 1 || n > FL_TOPO_MAX_PARTITION) {
            fail(c, parts->line, "topic '%s': partitions must be between 1 and %d, got %" PRId64,
                 tp->name, FL_TOPO_MAX_PARTITION, n);
            return -1;
        }
        tp->partitions = (int)n;
        if (kind->type != NODE_SCALAR || !parse_kind(kind->str, &tp->kind)) {
            fail(c, kind->line,
                 "topic '%s': unknown kind '%.*s' (expected input, internal, changelog or dlq)",
                 tp->name, FL_TOPO_SHOW, kind->type == NODE_SCALAR ? kind->str : "");
            return -1;
        }
        if (tp->kind == FL_TOPIC_DLQ) {
            if (dlq) {
                fail(c, kind->line,
                     "topic '%s': there must be exactly one topic of kind dlq, '%s' (line %d) "
                     "is already one",
                     tp->name, dlq->name, dlq->line);
                return -1;
            }
            dlq = tp;
        }
    }
    if (!dlq) {
        fail(c, key_line, "no topic of kind dlq: there must be exactly one");
        return -1;
    }
    return 0;
}

static int read_stores(ctx_t *c, fl_topology_t *t, const node_t *seq)
{
    static const char *const keys[] = {"name", "changelog", NULL};
    char what[FL_TOPO_MAX_NAME + 64];

    if (expect_seq(c, seq, "stores") < 0)
        return -1;
    if (!(t->stores = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->stores)))) {
        fail(c, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++) {
        const node_t *e = seq->kids[i], *name, *log;
        fl_store_def_t *st = &t->stores[t->n_stores];
        const fl_topic_t *topic;

        if (expect_map(c, e, "a store entry") < 0 || check_keys(c, e, "store entry", keys) < 0)
            return -1;
        if (!(name = need(c, e, "name", e->line, "store entry")) ||
            !(log = need(c, e, "changelog", e->line, "store entry")))
            return -1;
        st->line = e->line;
        if (get_str(c, name, "store name", &st->name) < 0)
            return -1;
        t->n_stores++;
        if (check_name(c, st->name, name->line, "store") < 0)
            return -1;
        for (size_t j = 0; j + 1 < t->n_stores; j++) {
            if (!strcmp(t->stores[j].name, st->name)) {
                fail(c, name->line, "duplicate store '%s' (first at line %d)", st->name,
                     t->stores[j].line);
                return -1;
            }
        }
        snprintf(what, sizeof(what), "store '%s' changelog", st->name);
        if (get_str(c, log, what, &st->changelog) < 0)
            return -1;
        if (!(topic = fl_topology_topic(t, st->changelog))) {
            fail(c, log->line, "store '%s': changelog topic '%.*s' is not defined in topics",
                 st->name, FL_TOPO_SHOW, st->changelog);
            return -1;
        }
        if (topic->kind != FL_TOPIC_CHANGELOG) {
            fail(c, log->line, "store '%s': changelog topic '%s' has kind %s, expected changelog",
                 st->name, topic->name, fl_topic_kind_str(topic->kind));
            return -1;
        }
        for (size_t j = 0; j + 1 < t->n_stores; j++) {
            if (!strcmp(t->stores[j].changelog, st->changelog)) {
                fail(c, log->line,
                     "store '%s': changelog topic '%s' is already used by store '%s' (line %d)",
                     st->name, st->changelog, t->stores[j].name, t->stores[j].line);
                return -1;
            }
        }
    }
    return 0;
}

/*
 * A sequence of distinct non-empty strings, e.g. a processor's inputs;
 * kind and name ("processor", "fanout") say whose it is in messages.
 */
static int read_list(ctx_t *c, const node_t *seq, const char *kind, const char *name,
                     const char *field, char ***out, size_t *n_out)
{
    char what[FL_TOPO_MAX_NAME + 64];

    snprintf(what, sizeof(what), "%s '%s' %s", kind, name, field);
    if (expect_seq(c, seq, what) < 0)
        return -1;
    if (!(*out = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(**out)))) {
        fail(c, 0, "out of memory");
        return -1;
    }
    snprintf(what, sizeof(what), "an entry of %s '%s' %s", kind, name, field);
    for (size_t i = 0; i < seq->n_kids; i++) {
        if (get_str(c, seq->kids[i], what, &(*out)[*n_out]) < 0)
            return -1;
        (*n_out)++;
        for (size_t j = 0; j < i; j++) {
            if (!strcmp((*out)[j], (*out)[i])) {
                fail(c, seq->kids[i]->line, "%s '%s': '%.*s' is listed twice in %s", kind, name,
                     FL_TOPO_SHOW, (*out)[i], field);
                return -1;
            }
        }
    }
    return 0;
}

/*
 * A processor's or sink's inputs: a non-empty list of defined topics.
 * key_line is the line of the inputs key, blamed for an empty list.
 */
static int read_inputs(ctx_t *c, const fl_topology_t *t, const node_t *seq, int key_line,
                       const char *kind, const char *name, char ***out, size_t *n_out)
{
    if (read_list(c, seq, kind, name, "inputs", out, n_out) < 0)
        return -1;
    if (*n_out == 0) {
        fail(c, key_line, "%s '%s': inputs must not be empty", kind, name);
        return -1;
    }
    for (size_t i = 0; i < *n_out; i++) {
        if (!fl_topology_topic(t, (*out)[i])) {
            fail(c, seq->kids[i]->line, "%s '%s': input topic '%.*s' is not defined in topics",
                 kind, name, FL_TOPO_SHOW, (*out)[i]);
            return -1;
        }
    }
    return 0;
}

/*
 * Processors and sinks are both consumer groups: their names share one
 * namespace (instance names, metric labels), and so do their groups, as a
 * group shared by two would split the partitions between them. Checks the
 * consumer just read, of kind "processor" or "sink", against the first
 * n_procs processors and n_sinks sinks.
 */
static int check_consumer(ctx_t *c, const fl_topology_t *t, size_t n_procs, size_t n_sinks,
                          const char *kind, const char *name, const char *group, int name_line,
                          int group_line)
{
    for (size_t i = 0; i < n_procs + n_sinks; i++) {
        bool sink = i >= n_procs;
        const char *qkind = sink ? "sink" : "processor";
        const char *qname = sink ? t->sinks[i - n_procs].name : t->processors[i].name;
        const char *qgroup = sink ? t->sinks[i - n_procs].group : t->processors[i].group;
        int qline = sink ? t->sinks[i - n_procs].line : t->processors[i].line;

        if (!strcmp(qname, name)) {
            if (!strcmp(qkind, kind))
                fail(c, name_line, "duplicate %s '%s' (first at line %d)", kind, name, qline);
            else
                fail(c, name_line,
                     "%s '%s': the name is already used by %s '%s' (line %d); processors and "
                     "sinks share one namespace",
                     kind, name, qkind, qname, qline);
            return -1;
        }
        if (!strcmp(qgroup, group)) {
            fail(c, group_line,
                 "%s '%s': consumer group '%.*s' is already used by %s '%s' (line %d)", kind, name,
                 FL_TOPO_SHOW, group, qkind, qname, qline);
            return -1;
        }
    }
    return 0;
}

/* owner[i] names the processor that already uses store i, or NULL. */
static int read_processor(ctx_t *c, fl_topology_t *t, const node_t *e, const char **owner)
{
    static const char *const keys[] = {"name", "group", "inputs", "outputs", "stores", NULL};
    fl_processor_t *p = &t->processors[t->n_processors];
    const node_t *name, *group, *inputs, *outputs, *stores;
    int partitions = 0, inputs_line = 0;
    char what[FL_TOPO_MAX_NAME + 64];

    if (expect_map(c, e, "a processor entry") < 0 || check_keys(c, e, "processor entry", keys) < 0)
        return -1;
    if (!(name = need(c, e, "name", e->line, "processor entry")) ||
        !(group = need(c, e, "group", e->line, "processor entry")) ||
        !(inputs = need(c, e, "inputs", e->line, "processor entry")))
        return -1;
    outputs = map_get(e, "outputs", NULL);
    stores = map_get(e, "stores", NULL);
    map_get(e, "inputs", &inputs_line);
    p->line = e->line;
    if (get_str(c, name, "processor name", &p->name) < 0)
        return -1;
    t->n_processors++;
    if (check_name(c, p->name, name->line, "processor") < 0)
        return -1;
    snprintf(what, sizeof(what), "processor '%s' group", p->name);
    if (get_str(c, group, what, &p->group) < 0)
        return -1;
    if (check_consumer(c, t, t->n_processors - 1, 0, "processor", p->name, p->group, name->line,
                       group->line) < 0)
        return -1;

    if (read_inputs(c, t, inputs, inputs_line, "processor", p->name, &p->inputs, &p->n_inputs) < 0)
        return -1;
    for (size_t i = 0; i < p->n_inputs; i++) {
        const fl_topic_t *topic = fl_topology_topic(t, p->inputs[i]);

        if (i == 0) {
            partitions = topic->partitions;
        } else if (topic->partitions != partitions) {
            fail(c, inputs->kids[i]->line,
                 "processor '%s': input '%s' has %d partitions but '%s' has %d; a processor's "
                 "inputs must be co-partitioned",
                 p->name, topic->name, topic->partitions, p->inputs[0], partitions);
            return -1;
        }
    }

    if (outputs) {
        if (read_list(c, outputs, "processor", p->name, "outputs", &p->outputs, &p->n_outputs) < 0)
            return -1;
        for (size_t i = 0; i < p->n_outputs; i++) {
            if (!fl_topology_topic(t, p->outputs[i])) {
                fail(c, outputs->kids[i]->line,
                     "processor '%s': output topic '%.*s' is not defined in topics", p->name,
                     FL_TOPO_SHOW, p->outputs[i]);
                return -1;
            }
        }
    }

    if (stores) {
        if (read_list(c, stores, "processor", p->name, "stores", &p->stores, &p->n_stores) < 0)
            return -1;
        for (size_t i = 0; i < p->n_stores; i++) {
            const fl_store_def_t *st = fl_topology_store(t, p->stores[i]);
            const fl_topic_t *log;
            int line = stores->kids[i]->line;
            size_t idx;

            if (!st) {
                fail(c, line, "processor '%s': store '%.*s' is not defined in stores", p->name,
                     FL_TOPO_SHOW, p->stores[i]);
                return -1;
            }
            idx = (size_t)(st - t->stores);
            if (owner[idx]) {
                fail(c, line,
                     "processor '%s': store '%s' already belongs to processor '%s'; a store "
                     "has one owner",
                     p->name, st->name, owner[idx]);
                return -1;
            }
            owner[idx] = p->name;
            log = fl_topology_topic(t, st->changelog);
            if (log->partitions != partitions) {
                fail(c, line,
                     "processor '%s': store '%s' changelog '%s' has %d partitions but the "
                     "inputs have %d; a store needs one changelog partition per input partition",
                     p->name, st->name, log->name, log->partitions, partitions);
                return -1;
            }
        }
    }
    return 0;
}

static int read_processors(ctx_t *c, fl_topology_t *t, const node_t *seq)
{
    const char **owner = NULL;
    int rc = -1;

    if (expect_seq(c, seq, "processors") < 0)
        goto out;
    if (!(t->processors = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->processors))) ||
        !(owner = calloc(t->n_stores ? t->n_stores : 1, sizeof(*owner)))) {
        fail(c, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < seq->n_kids; i++)
        if (read_processor(c, t, seq->kids[i], owner) < 0)
            goto out;
    rc = 0;
out:
    free(owner);
    return rc;
}

static bool parse_sink_kind(const char *s, fl_sink_kind_t *kind)
{
    static const fl_sink_kind_t kinds[] = {FL_SINK_REDIS, FL_SINK_POSTGRES};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!strcmp(s, fl_sink_kind_str(kinds[i]))) {
            *kind = kinds[i];
            return true;
        }
    }
    return false;
}

/*
 * Read after the processors, whose names and groups it must not reuse
 * (check_consumer). Its inputs may have any partition counts: a sink
 * applies each partition on its own.
 */
static int read_sink(ctx_t *c, fl_topology_t *t, const node_t *e)
{
    static const char *const keys[] = {"name", "group", "inputs", "destination", NULL};
    fl_sink_cfg_t *k = &t->sinks[t->n_sinks];
    const node_t *name, *group, *inputs, *dest;
    int inputs_line = 0;
    char what[FL_TOPO_MAX_NAME + 64];

    if (expect_map(c, e, "a sink entry") < 0 || check_keys(c, e, "sink entry", keys) < 0)
        return -1;
    if (!(name = need(c, e, "name", e->line, "sink entry")) ||
        !(group = need(c, e, "group", e->line, "sink entry")) ||
        !(inputs = need(c, e, "inputs", e->line, "sink entry")) ||
        !(dest = need(c, e, "destination", e->line, "sink entry")))
        return -1;
    map_get(e, "inputs", &inputs_line);
    k->line = e->line;
    if (get_str(c, name, "sink name", &k->name) < 0)
        return -1;
    t->n_sinks++;
    if (check_name(c, k->name, name->line, "sink") < 0)
        return -1;
    snprintf(what, sizeof(what), "sink '%s' group", k->name);
    if (get_str(c, group, what, &k->group) < 0)
        return -1;
    if (check_consumer(c, t, t->n_processors, t->n_sinks - 1, "sink", k->name, k->group, name->line,
                       group->line) < 0)
        return -1;

    if (read_inputs(c, t, inputs, inputs_line, "sink", k->name, &k->inputs, &k->n_inputs) < 0)
        return -1;
    if (dest->type != NODE_SCALAR || node_is_null(dest)) {
        fail(c, dest->line, "sink '%s': destination must be redis or postgres, got %s", k->name,
             node_kind(dest));
        return -1;
    }
    if (!parse_sink_kind(dest->str, &k->destination)) {
        fail(c, dest->line, "sink '%s': unknown destination '%.*s' (expected redis or postgres)",
             k->name, FL_TOPO_SHOW, dest->str);
        return -1;
    }
    return 0;
}

static int read_sinks(ctx_t *c, fl_topology_t *t, const node_t *seq)
{
    if (expect_seq(c, seq, "sinks") < 0)
        return -1;
    if (!(t->sinks = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->sinks)))) {
        fail(c, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++)
        if (read_sink(c, t, seq->kids[i]) < 0)
            return -1;
    return 0;
}

/* Fills t from the tree; on failure t holds whatever was read so far. */
static int read_topology(ctx_t *c, fl_topology_t *t, const node_t *root)
{
    const node_t *v;
    int64_t version;
    int line = 0;

    if (expect_map(c, root, "the top level") < 0 ||
        check_keys(c, root, "the top level", top_keys) < 0)
        return -1;

    if (!(v = need(c, root, "version", root->line, "the top level")) ||
        get_int(c, v, "version", &version) < 0)
        return -1;
    if (version != 1) {
        fail(c, v->line, "unsupported version %" PRId64 " (this loader reads version 1)", version);
        return -1;
    }
    if (!(v = need(c, root, "app", root->line, "the top level")) ||
        get_str(c, v, "app", &t->app) < 0)
        return -1;
    if (!(v = need(c, root, "endpoints", root->line, "the top level")))
        return -1;
    map_get(root, "endpoints", &line);
    if (read_endpoints(c, t, v, line) < 0)
        return -1;
    v = map_get(root, "settings", &line);
    if (read_settings(c, t, v, line) < 0)
        return -1;
    if (!(v = need(c, root, "topics", root->line, "the top level")))
        return -1;
    map_get(root, "topics", &line);
    if (read_topics(c, t, v, line) < 0)
        return -1;
    if ((v = map_get(root, "stores", NULL)) && read_stores(c, t, v) < 0)
        return -1;
    if ((v = map_get(root, "processors", NULL)) && read_processors(c, t, v) < 0)
        return -1;
    if ((v = map_get(root, "sinks", NULL)) && read_sinks(c, t, v) < 0)
        return -1;
    return 0;
}

/* Overrides come after validation: they are deployment facts, not topology. */
static int apply_env(ctx_t *c, fl_topology_t *t)
{
    static const char *const vars[] = {"FEEDLINE_KAFKA", "FEEDLINE_REDIS", "FEEDLINE_POSTGRES",
                                       "FEEDLINE_API"};
    char **slots[] = {&t->endpoints.kafka, &t->endpoints.redis, &t->endpoints.postgres,
                      &t->endpoints.api};

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        char *copy;

        if (!v || !*v)
            continue;
        if (!(copy = strdup(v))) {
            fail(c, 0, "out of memory");
            return -1;
        }
        free(*slots[i]);
        *slots[i] = copy;
    }
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
        fail(&c, 0, "no document given");
        goto out;
    }
    if (len > FL_TOPO_MAX_FILE) {
        fail(&c, 0, "document is larger than %u bytes", FL_TOPO_MAX_FILE);
        goto out;
    }
    if (!(root = build_tree(&c, yaml ? yaml : "", len)))
        goto out;
    if (!(t = calloc(1, sizeof(*t))) || !(t->path = strdup(c.name))) {
        fail(&c, 0, "out of memory");
        goto out;
    }
    if (read_topology(&c, t, root) < 0 || apply_env(&c, t) < 0)
        goto out;
out:
    node_free(root);
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
        fail(&c, 0, "no topology file given");
        goto out;
    }
    if (!(f = fopen(path, "rb"))) {
        fail(&c, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        size_t got;

        if (len == cap) {
            char *grown;

            if (cap >= FL_TOPO_MAX_FILE) {
                fail(&c, 0, "file is larger than %u bytes", FL_TOPO_MAX_FILE);
                goto out;
            }
            cap = cap ? cap * 2 : 8192;
            if (!(grown = realloc(buf, cap))) {
                fail(&c, 0, "out of memory");
                goto out;
            }
            buf = grown;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                fail(&c, 0, "cannot read: %s", strerror(errno));
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
    const char *env = getenv("FEEDLINE_TOPOLOGY");

    return env && *env ? env : FL_TOPO_DEFAULT_PATH;
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

/*
 * Plain only for text every YAML reader takes as that same string: a
 * letter first, a small safe alphabet, and none of YAML 1.1's null and
 * boolean words. Everything else is double-quoted.
 */
static bool print_plain_ok(const char *s)
{
    static const char *const words[] = {"null", "true", "false", "yes", "no",
                                        "on",   "off",  "y",     "n",   NULL};

    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == '/'))
            return false;
    }
    for (size_t i = 0; words[i]; i++)
        if (!strcasecmp(s, words[i]))
            return false;
    return true;
}

static void print_str(FILE *out, const char *s)
{
    if (print_plain_ok(s)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
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
        print_str(out, items[i]);
        fputc('\n', out);
    }
}

void fl_topology_print(const fl_topology_t *t, FILE *out)
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
    print_str(out, t->app);
    fputs("\n\nendpoints:\n", out);
    for (size_t i = 0; i < 4; i++) {
        fprintf(out, "  %s: ", ep_keys[i]);
        print_str(out, eps[i]);
        fputc('\n', out);
    }
    fputs("\nsettings:\n", out);
    for (size_t i = 0; i < S__COUNT; i++)
        fprintf(out, "  %s: %" PRId64 "\n", settings_tab[i].key, *setting_slot(&s, i));

    fputs(t->n_topics ? "\ntopics:\n" : "\ntopics: []\n", out);
    for (size_t i = 0; i < t->n_topics; i++) {
        fputs("  - name: ", out);
        print_str(out, t->topics[i].name);
        fprintf(out, "\n    partitions: %d\n    kind: %s\n", t->topics[i].partitions,
                fl_topic_kind_str(t->topics[i].kind));
    }
    fputs(t->n_stores ? "\nstores:\n" : "\nstores: []\n", out);
    for (size_t i = 0; i < t->n_stores; i++) {
        fputs("  - name: ", out);
        print_str(out, t->stores[i].name);
        fputs("\n    changelog: ", out);
        print_str(out, t->stores[i].changelog);
        fputc('\n', out);
    }
    fputs(t->n_processors ? "\nprocessors:\n" : "\nprocessors: []\n", out);
    for (size_t i = 0; i < t->n_processors; i++) {
        const fl_processor_t *p = &t->processors[i];

        fputs("  - name: ", out);
        print_str(out, p->name);
        fputs("\n    group: ", out);
        print_str(out, p->group);
        fputc('\n', out);
        print_list(out, "inputs", p->inputs, p->n_inputs);
        print_list(out, "outputs", p->outputs, p->n_outputs);
        print_list(out, "stores", p->stores, p->n_stores);
    }
    fputs(t->n_sinks ? "\nsinks:\n" : "\nsinks: []\n", out);
    for (size_t i = 0; i < t->n_sinks; i++) {
        const fl_sink_cfg_t *k = &t->sinks[i];

        fputs("  - name: ", out);
        print_str(out, k->name);
        fputs("\n    group: ", out);
        print_str(out, k->group);
        fputc('\n', out);
        print_list(out, "inputs", k->inputs, k->n_inputs);
        fprintf(out, "    destination: %s\n", fl_sink_kind_str(k->destination));
    }
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
    for (size_t i = 0; i < t->n_topics; i++)
        free(t->topics[i].name);
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
    free(t->endpoints.api);
    free(t->app);
    free(t->path);
    free(t);
}
