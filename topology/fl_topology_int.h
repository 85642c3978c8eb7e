/*
 * fl_topology_int.h - what the topology loader's files share; not for use
 * outside topology/.
 *
 * The loader is split along its passes: fl_yaml_tree.c turns libyaml's
 * events into a tree of nodes (pass 1), fl_topology_schema.c holds the
 * typed, schema-checked reads of single nodes that every section reader
 * uses (pass 2), fl_topology_graph.c reads the cross-referenced sections
 * (topics, stores, processors, sinks), fl_topology_api.c reads the read
 * API's section, and fl_topology.c reads the rest and holds the public
 * API.
 *
 * Errors: every reader reports through fl__fail(), which keeps the first
 * message only, as "NAME:LINE: message"; a function that fails returns -1
 * (or NULL) after calling it. Strings a reader returns are malloc'd copies
 * the caller owns; nodes are borrowed from the tree, which lives until
 * fl__node_free() of its root.
 */
#ifndef FL_TOPOLOGY_INT_H
#define FL_TOPOLOGY_INT_H

#include "fl_topology.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* Records the first error only: later ones are usually consequences. A
 * line of 0 gives "NAME: message". */
void fl__fail(ctx_t *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- pass 1 (fl_yaml_tree.c) ---- */

/* Parses a whole stream holding exactly one document into a tree; NULL on
 * error. Caller frees with fl__node_free(). */
node_t *fl__build_tree(ctx_t *c, const char *buf, size_t len);
void fl__node_free(node_t *n);

/* A plain scalar YAML reads as null: empty, ~, null, Null, NULL. */
bool fl__node_is_null(const node_t *n);

/* Index of key's key node in map->kids, or -1. */
long fl__map_index(const node_t *map, const char *key, size_t len);

/* Writes s as a YAML scalar any reader takes as that same string: plain
 * when that is safe, else double-quoted. */
void fl__print_str(FILE *out, const char *s);

/* ---- pass 2's building blocks (fl_topology_schema.c) ---- */

/* "null", "a scalar", "a sequence" or "a mapping", for messages. */
const char *fl__node_kind(const node_t *n);

/* The value for key in map, or NULL; *key_line (may be NULL) gets the key's line. */
const node_t *fl__map_get(const node_t *map, const char *key, int *key_line);

/* A required key; line is where the enclosing entry starts. */
const node_t *fl__need(ctx_t *c, const node_t *map, const char *key, int line, const char *where);

/* Rejects any key of map that is not in the NULL-terminated allowed list. */
int fl__check_keys(ctx_t *c, const node_t *map, const char *where, const char *const *allowed);

int fl__expect_map(ctx_t *c, const node_t *n, const char *what);
int fl__expect_seq(ctx_t *c, const node_t *n, const char *what);

/* A non-empty string; *out is a copy the caller owns. */
int fl__get_str(ctx_t *c, const node_t *n, const char *what, char **out);

/* A decimal integer written as a plain scalar (see the definition). */
int fl__get_int(ctx_t *c, const node_t *n, const char *what, int64_t *out);

/* A finite decimal number written as a plain scalar (see the definition). */
int fl__get_real(ctx_t *c, const node_t *n, const char *what, double *out);

/* true or false, written plain. */
int fl__get_bool(ctx_t *c, const node_t *n, const char *what, bool *out);

/* Replaces *slot (malloc'd or NULL) with a copy of $var when var is set
 * and not empty (fl_topology.c). */
int fl__env_override(ctx_t *c, const char *var, char **slot);

/* ---- the cross-referenced sections (fl_topology_graph.c) ---- */

/* In this order, each checked against what the ones before accepted. On
 * failure t holds what was read so far, for fl_topology_free(). */
int fl__read_topics(ctx_t *c, fl_topology_t *t, const node_t *seq, int key_line);
int fl__read_stores(ctx_t *c, fl_topology_t *t, const node_t *seq);
int fl__read_processors(ctx_t *c, fl_topology_t *t, const node_t *seq);
int fl__read_sinks(ctx_t *c, fl_topology_t *t, const node_t *seq);

/* ---- the read API's section (fl_topology_api.c) ---- */

/*
 * Fills a with the defaults, then with what map (the value of the `api`
 * key; NULL when the file has none) says, then applies the section's
 * environment overrides and checks the fields that relate to each other
 * on the values in effect. a must start zeroed; on failure it holds what
 * was read so far, for fl__api_free().
 */
int fl__read_api(ctx_t *c, fl_api_cfg_t *a, const node_t *map);

/* Writes the section as YAML, the secret left out. */
void fl__api_print(const fl_api_cfg_t *a, FILE *out, bool secrets);

/* Frees the section's strings (not a itself). */
void fl__api_free(fl_api_cfg_t *a);

#endif
