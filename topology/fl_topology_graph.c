/*
 * fl_topology_graph.c - the topology's cross-referenced sections: topics,
 * stores, processors and sinks.
 *
 * Read in that order, so every reference is checked against what was
 * already accepted, with the line of the offending value: stores refer to
 * topics, processors to both, sinks to topics and to the processors' names
 * and groups.
 *
 * Invariants of what it accepts: names are unique per kind and legal Kafka
 * names; exactly one dlq topic; every store's changelog is a topic of kind
 * changelog used by no other store; every reference names a known topic
 * or store; a processor's inputs share one partition count and its stores'
 * changelogs have that count too (one store instance per input
 * partition); a store belongs to at most one processor; a sink's inputs
 * are known topics of any partition counts; names are unique across
 * processors and sinks together, and so are consumer groups.
 */
#include "fl_topology_int.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Topic, store and processor names: Kafka's legal topic characters and
 * length, so every name is safe in topic names, directory names and
 * metric labels alike.
 */
static int check_name(ctx_t *c, const char *name, int line, const char *what)
{
    size_t len = strlen(name);

    if (len > FL_TOPO_MAX_NAME) {
        fl__fail(c, line, "%s name '%.*s...' is longer than %d characters", what, 40, name,
                 FL_TOPO_MAX_NAME);
        return -1;
    }
    if (!strcmp(name, ".") || !strcmp(name, "..")) {
        fl__fail(c, line, "%s name '%s' is not allowed", what, name);
        return -1;
    }
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';

        if (ok)
            continue;
        if (ch > 0x20 && ch < 0x7f)
            fl__fail(c, line,
                     "%s name '%.*s' has an illegal character '%c' (allowed: a-z A-Z 0-9 . _ -)",
                     what, FL_TOPO_SHOW, name, ch);
        else
            fl__fail(c, line,
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

int fl__read_topics(ctx_t *c, fl_topology_t *t, const node_t *seq, int key_line)
{
    static const char *const keys[] = {"name", "partitions", "kind", NULL};
    const fl_topic_t *dlq = NULL;
    char what[FL_TOPO_MAX_NAME + 64];

    if (fl__expect_seq(c, seq, "topics") < 0)
        return -1;
    if (!(t->topics = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->topics)))) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++) {
        const node_t *e = seq->kids[i], *name, *parts, *kind;
        fl_topic_t *tp = &t->topics[t->n_topics];
        int64_t n;

        if (fl__expect_map(c, e, "a topic entry") < 0 ||
            fl__check_keys(c, e, "topic entry", keys) < 0)
            return -1;
        if (!(name = fl__need(c, e, "name", e->line, "topic entry")) ||
            !(parts = fl__need(c, e, "partitions", e->line, "topic entry")) ||
            !(kind = fl__need(c, e, "kind", e->line, "topic entry")))
            return -1;
        tp->line = e->line;
        if (fl__get_str(c, name, "topic name", &tp->name) < 0)
            return -1;
        t->n_topics++;
        if (check_name(c, tp->name, name->line, "topic") < 0)
            return -1;
        for (size_t j = 0; j + 1 < t->n_topics; j++) {
            if (!strcmp(t->topics[j].name, tp->name)) {
                fl__fail(c, name->line, "duplicate topic '%s' (first at line %d)", tp->name,
                         t->topics[j].line);
                return -1;
            }
            if (names_collide(t->topics[j].name, tp->name)) {
                fl__fail(c, name->line,
                         "topic '%s' collides with topic '%s' (line %d): Kafka treats '.' and "
                         "'_' alike",
                         tp->name, t->topics[j].name, t->topics[j].line);
                return -1;
            }
        }
        snprintf(what, sizeof(what), "topic '%s' partitions", tp->name);
        if (fl__get_int(c, parts, what, &n) < 0)
            return -1;
        if (n < 1 || n > FL_TOPO_MAX_PARTITION) {
            fl__fail(c, parts->line,
                     "topic '%s': partitions must be between 1 and %d, got %" PRId64, tp->name,
                     FL_TOPO_MAX_PARTITION, n);
            return -1;
        }
        tp->partitions = (int)n;
        if (kind->type != NODE_SCALAR || !parse_kind(kind->str, &tp->kind)) {
            fl__fail(c, kind->line,
                     "topic '%s': unknown kind '%.*s' (expected input, internal, changelog or dlq)",
                     tp->name, FL_TOPO_SHOW, kind->type == NODE_SCALAR ? kind->str : "");
            return -1;
        }
        if (tp->kind == FL_TOPIC_DLQ) {
            if (dlq) {
                fl__fail(c, kind->line,
                         "topic '%s': there must be exactly one topic of kind dlq, '%s' (line %d) "
                         "is already one",
                         tp->name, dlq->name, dlq->line);
                return -1;
            }
            dlq = tp;
        }
    }
    if (!dlq) {
        fl__fail(c, key_line, "no topic of kind dlq: there must be exactly one");
        return -1;
    }
    return 0;
}

int fl__read_stores(ctx_t *c, fl_topology_t *t, const node_t *seq)
{
    static const char *const keys[] = {"name", "changelog", NULL};
    char what[FL_TOPO_MAX_NAME + 64];

    if (fl__expect_seq(c, seq, "stores") < 0)
        return -1;
    if (!(t->stores = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->stores)))) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++) {
        const node_t *e = seq->kids[i], *name, *log;
        fl_store_def_t *st = &t->stores[t->n_stores];
        const fl_topic_t *topic;

        if (fl__expect_map(c, e, "a store entry") < 0 ||
            fl__check_keys(c, e, "store entry", keys) < 0)
            return -1;
        if (!(name = fl__need(c, e, "name", e->line, "store entry")) ||
            !(log = fl__need(c, e, "changelog", e->line, "store entry")))
            return -1;
        st->line = e->line;
        if (fl__get_str(c, name, "store name", &st->name) < 0)
            return -1;
        t->n_stores++;
        if (check_name(c, st->name, name->line, "store") < 0)
            return -1;
        for (size_t j = 0; j + 1 < t->n_stores; j++) {
            if (!strcmp(t->stores[j].name, st->name)) {
                fl__fail(c, name->line, "duplicate store '%s' (first at line %d)", st->name,
                         t->stores[j].line);
                return -1;
            }
        }
        snprintf(what, sizeof(what), "store '%s' changelog", st->name);
        if (fl__get_str(c, log, what, &st->changelog) < 0)
            return -1;
        if (!(topic = fl_topology_topic(t, st->changelog))) {
            fl__fail(c, log->line, "store '%s': changelog topic '%.*s' is not defined in topics",
                     st->name, FL_TOPO_SHOW, st->changelog);
            return -1;
        }
        if (topic->kind != FL_TOPIC_CHANGELOG) {
            fl__fail(c, log->line,
                     "store '%s': changelog topic '%s' has kind %s, expected changelog", st->name,
                     topic->name, fl_topic_kind_str(topic->kind));
            return -1;
        }
        for (size_t j = 0; j + 1 < t->n_stores; j++) {
            if (!strcmp(t->stores[j].changelog, st->changelog)) {
                fl__fail(c, log->line,
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
    if (fl__expect_seq(c, seq, what) < 0)
        return -1;
    if (!(*out = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(**out)))) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    snprintf(what, sizeof(what), "an entry of %s '%s' %s", kind, name, field);
    for (size_t i = 0; i < seq->n_kids; i++) {
        if (fl__get_str(c, seq->kids[i], what, &(*out)[*n_out]) < 0)
            return -1;
        (*n_out)++;
        for (size_t j = 0; j < i; j++) {
            if (!strcmp((*out)[j], (*out)[i])) {
                fl__fail(c, seq->kids[i]->line, "%s '%s': '%.*s' is listed twice in %s", kind, name,
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
        fl__fail(c, key_line, "%s '%s': inputs must not be empty", kind, name);
        return -1;
    }
    for (size_t i = 0; i < *n_out; i++) {
        if (!fl_topology_topic(t, (*out)[i])) {
            fl__fail(c, seq->kids[i]->line, "%s '%s': input topic '%.*s' is not defined in topics",
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
                fl__fail(c, name_line, "duplicate %s '%s' (first at line %d)", kind, name, qline);
            else
                fl__fail(c, name_line,
                         "%s '%s': the name is already used by %s '%s' (line %d); processors and "
                         "sinks share one namespace",
                         kind, name, qkind, qname, qline);
            return -1;
        }
        if (!strcmp(qgroup, group)) {
            fl__fail(c, group_line,
                     "%s '%s': consumer group '%.*s' is already used by %s '%s' (line %d)", kind,
                     name, FL_TOPO_SHOW, group, qkind, qname, qline);
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

    if (fl__expect_map(c, e, "a processor entry") < 0 ||
        fl__check_keys(c, e, "processor entry", keys) < 0)
        return -1;
    if (!(name = fl__need(c, e, "name", e->line, "processor entry")) ||
        !(group = fl__need(c, e, "group", e->line, "processor entry")) ||
        !(inputs = fl__need(c, e, "inputs", e->line, "processor entry")))
        return -1;
    outputs = fl__map_get(e, "outputs", NULL);
    stores = fl__map_get(e, "stores", NULL);
    fl__map_get(e, "inputs", &inputs_line);
    p->line = e->line;
    if (fl__get_str(c, name, "processor name", &p->name) < 0)
        return -1;
    t->n_processors++;
    if (check_name(c, p->name, name->line, "processor") < 0)
        return -1;
    snprintf(what, sizeof(what), "processor '%s' group", p->name);
    if (fl__get_str(c, group, what, &p->group) < 0)
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
            fl__fail(c, inputs->kids[i]->line,
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
                fl__fail(c, outputs->kids[i]->line,
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
                fl__fail(c, line, "processor '%s': store '%.*s' is not defined in stores", p->name,
                         FL_TOPO_SHOW, p->stores[i]);
                return -1;
            }
            idx = (size_t)(st - t->stores);
            if (owner[idx]) {
                fl__fail(c, line,
                         "processor '%s': store '%s' already belongs to processor '%s'; a store "
                         "has one owner",
                         p->name, st->name, owner[idx]);
                return -1;
            }
            owner[idx] = p->name;
            log = fl_topology_topic(t, st->changelog);
            if (log->partitions != partitions) {
                fl__fail(
                    c, line,
                    "processor '%s': store '%s' changelog '%s' has %d partitions but the "
                    "inputs have %d; a store needs one changelog partition per input partition",
                    p->name, st->name, log->name, log->partitions, partitions);
                return -1;
            }
        }
    }
    return 0;
}

int fl__read_processors(ctx_t *c, fl_topology_t *t, const node_t *seq)
{
    const char **owner = NULL;
    int rc = -1;

    if (fl__expect_seq(c, seq, "processors") < 0)
        goto out;
    if (!(t->processors = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->processors))) ||
        !(owner = calloc(t->n_stores ? t->n_stores : 1, sizeof(*owner)))) {
        fl__fail(c, 0, "out of memory");
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

    if (fl__expect_map(c, e, "a sink entry") < 0 || fl__check_keys(c, e, "sink entry", keys) < 0)
        return -1;
    if (!(name = fl__need(c, e, "name", e->line, "sink entry")) ||
        !(group = fl__need(c, e, "group", e->line, "sink entry")) ||
        !(inputs = fl__need(c, e, "inputs", e->line, "sink entry")) ||
        !(dest = fl__need(c, e, "destination", e->line, "sink entry")))
        return -1;
    fl__map_get(e, "inputs", &inputs_line);
    k->line = e->line;
    if (fl__get_str(c, name, "sink name", &k->name) < 0)
        return -1;
    t->n_sinks++;
    if (check_name(c, k->name, name->line, "sink") < 0)
        return -1;
    snprintf(what, sizeof(what), "sink '%s' group", k->name);
    if (fl__get_str(c, group, what, &k->group) < 0)
        return -1;
    if (check_consumer(c, t, t->n_processors, t->n_sinks - 1, "sink", k->name, k->group, name->line,
                       group->line) < 0)
        return -1;

    if (read_inputs(c, t, inputs, inputs_line, "sink", k->name, &k->inputs, &k->n_inputs) < 0)
        return -1;
    if (dest->type != NODE_SCALAR || fl__node_is_null(dest)) {
        fl__fail(c, dest->line, "sink '%s': destination must be redis or postgres, got %s", k->name,
                 fl__node_kind(dest));
        return -1;
    }
    if (!parse_sink_kind(dest->str, &k->destination)) {
        fl__fail(c, dest->line,
                 "sink '%s': unknown destination '%.*s' (expected redis or postgres)", k->name,
                 FL_TOPO_SHOW, dest->str);
        return -1;
    }
    return 0;
}

int fl__read_sinks(ctx_t *c, fl_topology_t *t, const node_t *seq)
{
    if (fl__expect_seq(c, seq, "sinks") < 0)
        return -1;
    if (!(t->sinks = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*t->sinks)))) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++)
        if (read_sink(c, t, seq->kids[i]) < 0)
            return -1;
    return 0;
}
