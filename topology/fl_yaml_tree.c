/*
 * fl_yaml_tree.c - pass 1 of the topology loader: libyaml events to a node
 * tree.
 *
 * Walks libyaml's event stream (yaml_parser_parse) and builds a small tree
 * of scalars, sequences and mappings, each node carrying its 1-based line.
 * It rejects duplicate keys, non-scalar keys, aliases, tags, NUL bytes and
 * more than one document, so block and flow style reach the schema checks
 * looking the same. Syntax errors carry the line libyaml marks, clamped to
 * the last line of the input. The way back, a string quoted for output
 * so any YAML reader takes it as that same string, lives here too.
 *
 * Workload: a document of a few kilobytes. Collections are capped
 * (FL_TOPO_MAX_ENTRIES) so the callers' quadratic uniqueness checks stay
 * cheap on hostile input, and nesting is capped (FL_TOPO_MAX_DEPTH) so the
 * recursive walk cannot exhaust the stack.
 */
#include "fl_topology_int.h"

#include <yaml.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int mark_line(yaml_mark_t m)
{
    return m.line >= (size_t)INT_MAX ? INT_MAX : (int)m.line + 1;
}

void fl__node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        fl__node_free(n->kids[i]);
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

bool fl__node_is_null(const node_t *n)
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
        fl__fail(c, 0, "out of memory");
        return;
    case YAML_READER_ERROR:
        /* Reader errors carry a byte offset rather than a mark. */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += buf[i] == '\n';
        fl__fail(c, line, "invalid YAML input: %s", p->problem ? p->problem : "unreadable");
        return;
    default:
        /* At end of input libyaml marks the line after the last one. */
        line = mark_line(p->problem_mark);
        if (line > last_line(buf, len))
            line = last_line(buf, len);
        if (p->context)
            fl__fail(c, line, "YAML syntax error: %s (%s at line %d)",
                     p->problem ? p->problem : "invalid document", p->context,
                     mark_line(p->context_mark));
        else
            fl__fail(c, line, "YAML syntax error: %s",
                     p->problem ? p->problem : "invalid document");
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
long fl__map_index(const node_t *map, const char *key, size_t len)
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
        fl__fail(c, line, "YAML tags are not supported ('%.*s')", FL_TOPO_SHOW, (const char *)tag);
        goto out;
    }

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        fl__fail(c, line, "YAML aliases are not supported");
        goto out;
    case YAML_SCALAR_EVENT:
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
            fl__fail(c, line, "strings must not contain NUL characters");
            goto out;
        }
        if (!(n = calloc(1, sizeof(*n))) || !(n->str = malloc(ev->data.scalar.length + 1))) {
            fl__fail(c, 0, "out of memory");
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
            fl__fail(c, line, "nesting deeper than %d levels", FL_TOPO_MAX_DEPTH);
            goto out;
        }
        if (!(n = calloc(1, sizeof(*n)))) {
            fl__fail(c, 0, "out of memory");
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
                fl__fail(c, kid->line, "mapping keys must be scalars");
                fl__node_free(kid);
                goto out;
            }
            if (is_key) {
                long prev = fl__map_index(n, kid->str, kid->len);
                if (prev >= 0) {
                    fl__fail(c, kid->line, "duplicate key '%.*s' (first at line %d)", FL_TOPO_SHOW,
                             kid->str, n->kids[prev]->line);
                    fl__node_free(kid);
                    goto out;
                }
            } else if (n->type == NODE_MAP && kid->type == NODE_SCALAR && kid->plain &&
                       kid->len == 0) {
                /* An empty value has no text of its own: point at its key. */
                kid->line = n->kids[n->n_kids - 1]->line;
            }
            if ((n->type == NODE_SEQ ? n->n_kids : n->n_kids / 2) >= FL_TOPO_MAX_ENTRIES) {
                fl__fail(c, kid->line, "more than %d entries in one collection",
                         FL_TOPO_MAX_ENTRIES);
                fl__node_free(kid);
                goto out;
            }
            if (node_push(n, kid) < 0) {
                fl__fail(c, 0, "out of memory");
                fl__node_free(kid);
                goto out;
            }
        }
        break;
    default:
        fl__fail(c, line, "unexpected YAML event");
        goto out;
    }
    *out = n;
    n = NULL;
    rc = 0;
out:
    fl__node_free(n);
    yaml_event_delete(ev);
    return rc;
}

/* Parses a whole stream holding exactly one document into a tree. */
node_t *fl__build_tree(ctx_t *c, const char *buf, size_t len)
{
    reader_t r = {.c = c, .buf = buf, .len = len};
    yaml_event_t ev;
    node_t *root = NULL;
    bool have_parser = false;

    if (!yaml_parser_initialize(&r.parser)) {
        fl__fail(c, 0, "out of memory");
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
        fl__fail(c, 1, "empty document: expected a mapping with version, app, endpoints, topics");
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
        fl__fail(c, mark_line(ev.start_mark), "only one YAML document is allowed");
        yaml_event_delete(&ev);
        goto out;
    }
    yaml_event_delete(&ev);
out:
    if (c->failed) {
        fl__node_free(root);
        root = NULL;
    }
    if (have_parser)
        yaml_parser_delete(&r.parser);
    return root;
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

void fl__print_str(FILE *out, const char *s)
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
