/*
 * fl_topology_api.c - the read API's section of the topology (`api:`).
 *
 * One table (api_fields, with its nested tables) names every key, its
 * type, range, default and environment variable; reading, defaults,
 * printing and freeing all walk it, so a new key is one row. The section
 * and each of its keys are optional; unknown keys are errors, as
 * everywhere in the file ("unknown key 'x' in api.jwt", at the key's
 * line), and messages name a value by its dotted path (api.jwt.leeway_s).
 *
 * Order: defaults, then the file (each value checked on its own), then the
 * environment (FEEDLINE_JWT_SECRET, FEEDLINE_JWT_PUBLIC_KEY,
 * FEEDLINE_JWT_PRIVATE_KEY, FEEDLINE_DEV_LOGIN: deployment facts, like
 * the endpoints'; a boolean one is `true` or `false`, as in the file), then
 * the checks that relate fields, on the values in effect: HS256 needs a
 * secret of at least FL_API_JWT_SECRET_MIN bytes, EdDSA a public key
 * file. An override that breaks one is named in the message, since it has
 * no line.
 *
 * The loader never opens the key files: the read API and `feedline token`
 * do, relative to their working directory.
 */
#include "fl_topology_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV_JWT_SECRET  "FEEDLINE_JWT_SECRET"
#define ENV_JWT_PUBKEY  "FEEDLINE_JWT_PUBLIC_KEY"
#define ENV_JWT_PRIVKEY "FEEDLINE_JWT_PRIVATE_KEY"
#define ENV_DEV_LOGIN   "FEEDLINE_DEV_LOGIN"

typedef enum { F_INT, F_REAL, F_BOOL, F_STR, F_ALGS, F_MAP } ftype_t;

typedef struct field {
    const char *key;
    ftype_t type;
    size_t off;              /* of the value in fl_api_cfg_t; not for F_MAP */
    int64_t lo, hi;          /* F_INT: the range, both ends included */
    bool open;               /* F_REAL: must be > lo (else >= lo); no upper bound */
    int64_t def;             /* F_INT, F_BOOL, F_ALGS: the default */
    double rdef;             /* F_REAL: the default */
    const char *sdef;        /* F_STR: the default, NULL = not set */
    const char *env;         /* F_STR, F_BOOL: the variable that overrides it */
    bool secret;             /* F_STR: never printed */
    const struct field *sub; /* F_MAP: the nested section */
} field_t;

/* clang-format off */
#define OFF(m) offsetof(fl_api_cfg_t, m)
#define INT_F(k, m, l, h, d) {.key = k, .type = F_INT, .off = OFF(m), .lo = l, .hi = h, .def = d}
#define REAL_F(k, m, l, o, d) \
    {.key = k, .type = F_REAL, .off = OFF(m), .lo = l, .open = o, .rdef = d}
#define STR_F(k, m, d, e) {.key = k, .type = F_STR, .off = OFF(m), .sdef = d, .env = e}
#define MAP_F(k, s)       {.key = k, .type = F_MAP, .sub = s}
/* clang-format on */

static const field_t limits_fields[] = {
    INT_F("header_bytes", max_header_bytes, 1024, 65536, 8192),
    INT_F("query_bytes", max_query_bytes, 64, 65536, 2048),
    INT_F("body_bytes", max_body_bytes, 0, 1048576, 4096),
    {0},
};

static const field_t jwt_fields[] = {
    {.key = "algorithms", .type = F_ALGS, .off = OFF(jwt_algorithms), .def = FL_JWT_ALG_HS256},
    {.key = "secret",
     .type = F_STR,
     .off = OFF(jwt_secret),
     .sdef = FL_API_DEV_SECRET,
     .env = ENV_JWT_SECRET,
     .secret = true},
    STR_F("public_key_file", jwt_public_key_file, NULL, ENV_JWT_PUBKEY),
    STR_F("private_key_file", jwt_private_key_file, NULL, ENV_JWT_PRIVKEY),
    STR_F("issuer", jwt_issuer, NULL, NULL),
    STR_F("audience", jwt_audience, NULL, NULL),
    INT_F("leeway_s", jwt_leeway_s, 0, 300, 30),
    INT_F("max_bytes", jwt_max_bytes, 256, 16384, 4096),
    {0},
};

static const field_t rate_fields[] = {
    INT_F("requests_per_s", rate_per_s, 0, 1000000, 50),
    INT_F("burst", rate_burst, 0, 1000000, 100),
    {0},
};

static const field_t ranking_fields[] = {
    REAL_F("half_life_s", rank_half_life_s, 0, true, 21600),
    REAL_F("recency", rank_w_recency, 0, false, 1.0),
    REAL_F("likes", rank_w_likes, 0, false, 0.35),
    REAL_F("affinity", rank_w_affinity, 0, false, 0.5),
    INT_F("candidates", rank_candidates, 1, FL_API_MAX_CANDIDATES, 200),
    {0},
};

static const field_t stream_fields[] = {
    INT_F("ping_s", stream_ping_s, 1, 3600, 20),
    INT_F("max_clients", stream_max_clients, 1, 1000000, 20000),
    {0},
};

static const field_t cache_fields[] = {
    INT_F("entries", cache_entries, 0, 100000000, 200000),
    INT_F("ttl_ms", cache_ttl_ms, 0, 60000, 1000),
    {0},
};

static const field_t api_fields[] = {
    INT_F("threads", threads, 0, 256, 0),
    INT_F("max_connections", max_connections, 1, 1000000, 20000),
    MAP_F("limits", limits_fields),
    MAP_F("jwt", jwt_fields),
    MAP_F("rate_limit", rate_fields),
    MAP_F("ranking", ranking_fields),
    MAP_F("stream", stream_fields),
    MAP_F("cache", cache_fields),
    {.key = "dev_login", .type = F_BOOL, .off = OFF(dev_login), .def = false, .env = ENV_DEV_LOGIN},
    {0},
};

/* The algorithms as written in the file, in the order they are printed. */
static const struct alg {
    const char *name;
    unsigned bit;
} algs[] = {{"HS256", FL_JWT_ALG_HS256}, {"EdDSA", FL_JWT_ALG_EDDSA}};

#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

static void *slot(fl_api_cfg_t *a, const field_t *f)
{
    return (char *)a + f->off;
}

static const void *cslot(const fl_api_cfg_t *a, const field_t *f)
{
    return (const char *)a + f->off;
}

static int set_defaults(ctx_t *c, fl_api_cfg_t *a, const field_t *fs)
{
    for (const field_t *f = fs; f->key; f++) {
        switch (f->type) {
        case F_INT:
            *(int64_t *)slot(a, f) = f->def;
            break;
        case F_REAL:
            *(double *)slot(a, f) = f->rdef;
            break;
        case F_BOOL:
            *(bool *)slot(a, f) = f->def != 0;
            break;
        case F_ALGS:
            *(unsigned *)slot(a, f) = (unsigned)f->def;
            break;
        case F_STR:
            if (f->sdef && !(*(char **)slot(a, f) = strdup(f->sdef))) {
                fl__fail(c, 0, "out of memory");
                return -1;
            }
            break;
        case F_MAP:
            if (set_defaults(c, a, f->sub) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

/* A non-empty list of known algorithms, none twice, into a bit set. */
static int read_algs(ctx_t *c, const node_t *seq, const char *what, unsigned *out)
{
    unsigned set = 0;

    if (fl__expect_seq(c, seq, what) < 0)
        return -1;
    if (seq->n_kids == 0) {
        fl__fail(c, seq->line, "%s must not be empty (expected HS256, EdDSA or both)", what);
        return -1;
    }
    for (size_t i = 0; i < seq->n_kids; i++) {
        const node_t *e = seq->kids[i];
        size_t j = 0;

        if (e->type != NODE_SCALAR || fl__node_is_null(e)) {
            fl__fail(c, e->line, "an entry of %s must be HS256 or EdDSA, got %s", what,
                     fl__node_kind(e));
            return -1;
        }
        while (j < N_ALGS && strcmp(e->str, algs[j].name))
            j++;
        if (j == N_ALGS) {
            fl__fail(c, e->line, "%s: unknown algorithm '%.*s' (expected HS256 or EdDSA)", what,
                     FL_TOPO_SHOW, e->str);
            return -1;
        }
        if (set & algs[j].bit) {
            fl__fail(c, e->line, "%s: '%s' is listed twice", what, algs[j].name);
            return -1;
        }
        set |= algs[j].bit;
    }
    *out = set;
    return 0;
}

static int read_section(ctx_t *c, fl_api_cfg_t *a, const node_t *map, const char *path,
                        const field_t *fs);

/* One value; what is its dotted path, for messages. */
static int read_field(ctx_t *c, fl_api_cfg_t *a, const node_t *v, const char *what,
                      const field_t *f)
{
    int64_t n;
    double x;

    switch (f->type) {
    case F_INT:
        if (fl__get_int(c, v, what, &n) < 0)
            return -1;
        if (n < f->lo || n > f->hi) {
            fl__fail(c, v->line, "%s must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
                     what, f->lo, f->hi, n);
            return -1;
        }
        *(int64_t *)slot(a, f) = n;
        return 0;
    case F_REAL:
        if (fl__get_real(c, v, what, &x) < 0)
            return -1;
        if (f->open ? !(x > (double)f->lo) : !(x >= (double)f->lo)) {
            fl__fail(c, v->line, "%s must be %s %" PRId64 ", got %s", what,
                     f->open ? ">" : ">=", f->lo, v->str);
            return -1;
        }
        *(double *)slot(a, f) = x;
        return 0;
    case F_BOOL:
        return fl__get_bool(c, v, what, (bool *)slot(a, f));
    case F_ALGS:
        return read_algs(c, v, what, (unsigned *)slot(a, f));
    case F_STR:
        free(*(char **)slot(a, f));
        return fl__get_str(c, v, what, (char **)slot(a, f));
    case F_MAP:
        return read_section(c, a, v, what, f->sub);
    }
    return -1;
}

/* A mapping whose keys are the rows of fs; path is its dotted name. */
static int read_section(ctx_t *c, fl_api_cfg_t *a, const node_t *map, const char *path,
                        const field_t *fs)
{
    char what[96];

    if (fl__expect_map(c, map, path) < 0)
        return -1;
    for (size_t k = 0; k < map->n_kids; k += 2) {
        const node_t *key = map->kids[k];
        const field_t *f = fs;

        while (f->key && strcmp(key->str, f->key))
            f++;
        if (!f->key) {
            fl__fail(c, key->line, "unknown key '%.*s' in %s", FL_TOPO_SHOW, key->str, path);
            return -1;
        }
        snprintf(what, sizeof(what), "%s.%s", path, f->key);
        if (read_field(c, a, map->kids[k + 1], what, f) < 0)
            return -1;
    }
    return 0;
}

/* A boolean variable, set and not empty: `true` or `false`, as in the file. */
static int env_bool(ctx_t *c, const char *var, bool *out)
{
    const char *v = getenv(var);

    if (!v || !*v)
        return 0;
    if (strcmp(v, "true") && strcmp(v, "false")) {
        fl__fail(c, 0, "%s must be true or false, got '%.*s'", var, FL_TOPO_SHOW, v);
        return -1;
    }
    *out = v[0] == 't';
    return 0;
}

static int apply_env(ctx_t *c, fl_api_cfg_t *a, const field_t *fs)
{
    for (const field_t *f = fs; f->key; f++) {
        if (f->type == F_MAP && apply_env(c, a, f->sub) < 0)
            return -1;
        if (!f->env)
            continue;
        if (f->type == F_BOOL ? env_bool(c, f->env, (bool *)slot(a, f)) < 0
                              : fl__env_override(c, f->env, (char **)slot(a, f)) < 0)
            return -1;
    }
    return 0;
}

/* The value at api.jwt.KEY in the file, or NULL. */
static const node_t *jwt_node(const node_t *map, const char *key)
{
    const node_t *jwt = map ? fl__map_get(map, "jwt", NULL) : NULL;

    return jwt ? fl__map_get(jwt, key, NULL) : NULL;
}

/* The line of the entry EdDSA in api.jwt.algorithms: read_algs accepted
 * the list, so when the bit is set the entry is there. */
static int eddsa_line(const node_t *map)
{
    const node_t *seq = jwt_node(map, "algorithms");

    for (size_t i = 0; seq && i < seq->n_kids; i++)
        if (!strcmp(seq->kids[i]->str, "EdDSA"))
            return seq->kids[i]->line;
    return 0;
}

/* The relations between the jwt fields, on the values in effect. */
static int check_jwt(ctx_t *c, const fl_api_cfg_t *a, const node_t *map)
{
    const char *env = getenv(ENV_JWT_SECRET);
    const node_t *secret = jwt_node(map, "secret"); /* the default is long enough */
    size_t len = a->jwt_secret ? strlen(a->jwt_secret) : 0;

    if ((a->jwt_algorithms & FL_JWT_ALG_HS256) && len < FL_API_JWT_SECRET_MIN) {
        if (env && *env)
            fl__fail(c, 0, "%s is %zu bytes; HS256 needs a secret of at least %d bytes",
                     ENV_JWT_SECRET, len, FL_API_JWT_SECRET_MIN);
        else
            fl__fail(c, secret ? secret->line : 0,
                     "api.jwt.secret is %zu bytes; HS256 needs a secret of at least %d bytes", len,
                     FL_API_JWT_SECRET_MIN);
        return -1;
    }
    if ((a->jwt_algorithms & FL_JWT_ALG_EDDSA) && !a->jwt_public_key_file) {
        fl__fail(c, eddsa_line(map),
                 "api.jwt.algorithms lists EdDSA, which needs api.jwt.public_key_file (or %s)",
                 ENV_JWT_PUBKEY);
        return -1;
    }
    return 0;
}

int fl__read_api(ctx_t *c, fl_api_cfg_t *a, const node_t *map)
{
    if (set_defaults(c, a, api_fields) < 0)
        return -1;
    if (map && read_section(c, a, map, "api", api_fields) < 0)
        return -1;
    if (apply_env(c, a, api_fields) < 0)
        return -1;
    return check_jwt(c, a, map);
}

/*
 * A whole number as "21600.0", so the printed file shows a number the
 * loader reads as a float; anything else as the shortest text strtod
 * reads back as x ("0.35", not "0.34999999999999998").
 */
static void print_real(FILE *out, double x)
{
    char buf[32];

    if (x > -1e15 && x < 1e15 && x == (double)(int64_t)x) {
        fprintf(out, "%.1f", x);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, out);
}

static void print_section(const fl_api_cfg_t *a, FILE *out, const field_t *fs, int indent,
                          bool secrets)
{
    for (const field_t *f = fs; f->key; f++) {
        const char *s;

        if (f->type == F_STR && ((f->secret && !secrets) || !*(char *const *)cslot(a, f))) {
            /* A comment keeps the printed file loadable with the default. */
            fprintf(out, "%*s# %s: %s\n", indent, "", f->key,
                    f->secret ? "set, not printed" : "not set");
            continue;
        }
        fprintf(out, "%*s%s:", indent, "", f->key);
        switch (f->type) {
        case F_INT:
            fprintf(out, " %" PRId64 "\n", *(const int64_t *)cslot(a, f));
            break;
        case F_REAL:
            fputc(' ', out);
            print_real(out, *(const double *)cslot(a, f));
            fputc('\n', out);
            break;
        case F_BOOL:
            fputs(*(const bool *)cslot(a, f) ? " true\n" : " false\n", out);
            break;
        case F_ALGS:
            s = " [";
            for (size_t j = 0; j < N_ALGS; j++) {
                if (!(*(const unsigned *)cslot(a, f) & algs[j].bit))
                    continue;
                fprintf(out, "%s%s", s, algs[j].name);
                s = ", ";
            }
            fputs("]\n", out);
            break;
        case F_STR:
            fputc(' ', out);
            fl__print_str(out, *(char *const *)cslot(a, f));
            fputc('\n', out);
            break;
        case F_MAP:
            fputc('\n', out);
            print_section(a, out, f->sub, indent + 2, secrets);
            break;
        }
    }
}

void fl__api_print(const fl_api_cfg_t *a, FILE *out, bool secrets)
{
    fputs("\napi:\n", out);
    print_section(a, out, api_fields, 2, secrets);
}

static void free_strings(fl_api_cfg_t *a, const field_t *fs)
{
    for (const field_t *f = fs; f->key; f++) {
        if (f->type == F_MAP) {
            free_strings(a, f->sub);
        } else if (f->type == F_STR) {
            free(*(char **)slot(a, f));
            *(char **)slot(a, f) = NULL;
        }
    }
}

void fl__api_free(fl_api_cfg_t *a)
{
    free_strings(a, api_fields);
}
