/*
 * fl_topology_schema.c - the building blocks of the topology loader's
 * pass 2: the first-error context, and typed reads of single tree nodes
 * that check them against the schema.
 *
 * Each read either stores a value or fails with the node's line and a
 * message naming the field ("what") and what was found instead, so every
 * section reader reports alike. Scalars are taken as written: a quoted
 * number is a string, a plain empty value or ~ is null, and no YAML 1.1
 * guessing (octal, sexagesimal, yes/no) happens.
 */
#include "fl_topology_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fl__fail(ctx_t *c, int line, const char *fmt, ...)
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

const char *fl__node_kind(const node_t *n)
{
    if (fl__node_is_null(n))
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
const node_t *fl__map_get(const node_t *map, const char *key, int *key_line)
{
    long i = fl__map_index(map, key, strlen(key));

    if (i < 0)
        return NULL;
    if (key_line)
        *key_line = map->kids[i]->line;
    return map->kids[i + 1];
}

/* A required key; line is where the enclosing entry starts. */
const node_t *fl__need(ctx_t *c, const node_t *map, const char *key, int line, const char *where)
{
    const node_t *v = fl__map_get(map, key, NULL);

    if (!v)
        fl__fail(c, line, "missing required key '%s' in %s", key, where);
    return v;
}

/* Rejects any key of map that is not in the NULL-terminated allowed list. */
int fl__check_keys(ctx_t *c, const node_t *map, const char *where, const char *const *allowed)
{
    for (size_t i = 0; i < map->n_kids; i += 2) {
        const node_t *k = map->kids[i];
        size_t j = 0;

        while (allowed[j] && strcmp(k->str, allowed[j]))
            j++;
        if (!allowed[j]) {
            fl__fail(c, k->line, "unknown key '%.*s' in %s", FL_TOPO_SHOW, k->str, where);
            return -1;
        }
    }
    return 0;
}

int fl__expect_map(ctx_t *c, const node_t *n, const char *what)
{
    if (n->type == NODE_MAP)
        return 0;
    fl__fail(c, n->line, "%s must be a mapping, got %s", what, fl__node_kind(n));
    return -1;
}

int fl__expect_seq(ctx_t *c, const node_t *n, const char *what)
{
    if (n->type == NODE_SEQ)
        return 0;
    fl__fail(c, n->line, "%s must be a sequence, got %s", what, fl__node_kind(n));
    return -1;
}

/* A non-empty string; *out is a copy the caller owns. */
int fl__get_str(ctx_t *c, const node_t *n, const char *what, char **out)
{
    *out = NULL;
    if (n->type != NODE_SCALAR || fl__node_is_null(n)) {
        fl__fail(c, n->line, "%s must be a string, got %s", what, fl__node_kind(n));
        return -1;
    }
    if (n->len == 0) {
        fl__fail(c, n->line, "%s must not be empty", what);
        return -1;
    }
    if (!(*out = strdup(n->str))) {
        fl__fail(c, 0, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * The checks every typed scalar shares: a plain (unquoted), non-null
 * scalar, else a message "WHAT must be TYPE, got ...". Returns 0 or -1.
 */
static int plain_scalar(ctx_t *c, const node_t *n, const char *what, const char *type)
{
    if (n->type != NODE_SCALAR || fl__node_is_null(n)) {
        fl__fail(c, n->line, "%s must be %s, got %s", what, type, fl__node_kind(n));
        return -1;
    }
    if (!n->plain) {
        fl__fail(c, n->line, "%s must be %s, got the quoted string '%.*s'", what, type,
                 FL_TOPO_SHOW, n->str);
        return -1;
    }
    return 0;
}

/* Fails with "WHAT must be TYPE, got 'TEXT'"; always returns -1. */
static int not_a(ctx_t *c, const node_t *n, const char *what, const char *type)
{
    fl__fail(c, n->line, "%s must be %s, got '%.*s'", what, type, FL_TOPO_SHOW, n->str);
    return -1;
}

/*
 * A decimal integer written as a plain scalar. Quoted numbers, floats,
 * trailing garbage and leading zeros (octal in YAML 1.1, decimal in 1.2)
 * are refused rather than guessed at.
 */
int fl__get_int(ctx_t *c, const node_t *n, const char *what, int64_t *out)
{
    const char *s = n->str, *d;
    char *end = NULL;
    long long v;

    if (plain_scalar(c, n, what, "an integer") < 0)
        return -1;
    d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*d < '0' || *d > '9')
        return not_a(c, n, what, "an integer");
    for (const char *p = d; *p; p++)
        if (*p < '0' || *p > '9')
            return not_a(c, n, what, "an integer");
    if (d[0] == '0' && d[1]) {
        fl__fail(c, n->line, "%s: leading zeros are not allowed in '%.*s'", what, FL_TOPO_SHOW, s);
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end) {
        fl__fail(c, n->line, "%s is out of range: '%.*s'", what, FL_TOPO_SHOW, s);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/*
 * A finite decimal number written as a plain scalar: digits, a point and
 * an exponent ("21600", "0.35", "1e-3", ".5"). Hex floats, YAML's .inf and
 * .nan, C's inf and nan, and trailing garbage are refused; so is a value
 * strtod cannot hold (1e309, and 1e-400, which would silently become 0).
 * feedline never calls setlocale(), so strtod reads '.' as the point.
 */
int fl__get_real(ctx_t *c, const node_t *n, const char *what, double *out)
{
    const char *s = n->str, *d;
    char *end = NULL;
    double v;

    if (plain_scalar(c, n, what, "a number") < 0)
        return -1;
    d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!((*d >= '0' && *d <= '9') || *d == '.') || d[strspn(d, "0123456789.eE+-")])
        return not_a(c, n, what, "a number");
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end)
        return not_a(c, n, what, "a number");
    if (errno == ERANGE || !isfinite(v)) {
        fl__fail(c, n->line, "%s is out of range: '%.*s'", what, FL_TOPO_SHOW, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* true or false, plain and in lower case: none of YAML 1.1's yes/no/on/off. */
int fl__get_bool(ctx_t *c, const node_t *n, const char *what, bool *out)
{
    if (plain_scalar(c, n, what, "true or false") < 0)
        return -1;
    if (strcmp(n->str, "true") && strcmp(n->str, "false"))
        return not_a(c, n, what, "true or false");
    *out = n->str[0] == 't';
    return 0;
}
