/*
 * fl_netgen.c - the seeded social network of feedline-loadgen (see
 * fl_netgen.h for its shape and rules).
 *
 * Users are indices 0..n-1 (id = user_base + index). A seeded permutation
 * maps popularity ranks to users; ranks 0..k-1 are the celebrities, every
 * user follows each of them with the probability that gives it ~10% more
 * followers than the threshold, and regular follow targets are drawn by
 * Zipf over the other ranks. A second permutation ranks users by how much
 * they post. Edges live in per-user arrays plus one open-addressing set
 * (linear probing, backward-shift deletion) for membership; recent posts
 * and likes in fixed rings, which is what likes, replies, deletes and
 * unlikes draw from.
 */
#include "fl_netgen.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_BITS  16
#define RING_SIZE  (1u << RING_BITS)
#define MAX_DEGREE 2000
#define TRIES      16

static const char *const kind_names[FL_NG__KINDS] = {
    "post", "reply", "like", "unlike", "follow", "unfollow", "delete", "profile", "register"};

const char *fl_netgen_kind_name(fl_netgen_kind_t k)
{
    return k < FL_NG__KINDS ? kind_names[k] : NULL;
}

/* ---- randomness: xoshiro256** seeded through splitmix64 ------------------ */

typedef struct rng {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0 (the bias of the modulo is below 2^-40 here). */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* ---- a set of 64-bit keys (never 0) --------------------------------------- */

typedef struct keyset {
    uint64_t *slots;
    size_t cap; /* power of two */
    size_t len;
} keyset_t;

static uint64_t key_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static bool keyset_grow(keyset_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return false;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t k = s->slots[i];
        if (!k)
            continue;
        size_t j = key_hash(k) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = k;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return true;
}

static bool keyset_has(const keyset_t *s, uint64_t k)
{
    if (!s->cap)
        return false;
    for (size_t j = key_hash(k) & (s->cap - 1); s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == k)
            return true;
    return false;
}

/* Adds k; false when it was there already or memory ran out. */
static bool keyset_add(keyset_t *s, uint64_t k)
{
    if ((s->len + 1) * 2 > s->cap && !keyset_grow(s))
        return false;
    size_t j = key_hash(k) & (s->cap - 1);
    for (; s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == k)
            return false;
    s->slots[j] = k;
    s->len++;
    return true;
}

static void keyset_del(keyset_t *s, uint64_t k)
{
    if (!s->cap)
        return;
    size_t mask = s->cap - 1, j = key_hash(k) & mask;
    while (s->slots[j] && s->slots[j] != k)
        j = (j + 1) & mask;
    if (!s->slots[j])
        return;
    /* Backward shift: pull later entries of the run into the hole when
     * their home slot does not lie strictly between the hole and them. */
    size_t hole = j;
    for (size_t i = (j + 1) & mask; s->slots[i]; i = (i + 1) & mask) {
        size_t home = key_hash(s->slots[i]) & mask;
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            s->slots[hole] = s->slots[i];
            hole = i;
        }
    }
    s->slots[hole] = 0;
    s->len--;
}

/* ---- the model ------------------------------------------------------------ */

typedef struct ulist {
    int32_t *v;
    int32_t len, cap;
} ulist_t;

typedef struct post_slot {
    int64_t id;
    int32_t author;
    uint8_t vis;
    uint8_t alive;
} post_slot_t;

typedef struct like_slot {
    int64_t post_id;
    int32_t author;
    int32_t user;
} like_slot_t;

struct fl_netgen {
    fl_netgen_opts_t o;
    char *run_id;
    rng_t rng;
    int32_t n, k;
    int32_t *rank_user;   /* popularity rank -> user */
    double *follow_cdf;   /* regular ranks k..n-1, Zipf */
    int32_t *active_user; /* posting rank -> user */
    double *active_cdf;   /* posting ranks, Zipf */
    double celeb_p;       /* chance a user follows a given celebrity */
    ulist_t *following;   /* per user: followee indices */
    int32_t *followers;   /* per user: follower count */
    keyset_t edges;       /* (follower << 32 | followee) + 1 */
    keyset_t liked;       /* like_key() of the likes in force (a collision only skips a like) */
    int64_t *last_post;   /* per user: newest live post id, 0 none */
    post_slot_t *posts;   /* ring of recent posts */
    uint32_t posts_head, posts_len;
    like_slot_t *likes; /* recent likes, unordered (unlikes swap-remove) */
    uint32_t likes_len, likes_next;
    uint32_t mix_total;
    /* backlog progress */
    int64_t total, emitted;
    int32_t reg_next, edge_u, edge_j;
    int64_t posts_left, likes_left;
    /* time */
    int64_t last_ms, seq;
    int64_t steady_n;
    fl_netgen_stats_t stats;
};

void fl_netgen_opts_default(fl_netgen_opts_t *o)
{
    static const unsigned mix[FL_NG__KINDS] = {
        [FL_NG_POST] = 25,   [FL_NG_REPLY] = 8,    [FL_NG_LIKE] = 40,  [FL_NG_UNLIKE] = 6,
        [FL_NG_FOLLOW] = 12, [FL_NG_UNFOLLOW] = 5, [FL_NG_DELETE] = 2, [FL_NG_PROFILE] = 2,
    };
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->users = 20000;
    o->user_base = 1;
    o->celebrities = -1;
    o->celebrity_threshold = 10000;
    o->mean_following = 20;
    o->posts_per_user = 5;
    o->likes_per_post = 2;
    o->start_ms = 0;
    o->run_id = "loadgen";
    memcpy(o->mix, mix, sizeof(mix));
}

fl_err_t fl_netgen_parse_mix(fl_netgen_opts_t *o, const char *spec, char *errstr,
                             size_t errstr_size)
{
    unsigned mix[FL_NG__KINDS] = {0}, total = 0;
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, "=,");
        int kind = -1;
        for (int i = 0; i < FL_NG_REGISTER; i++)
            if (strlen(kind_names[i]) == len && !strncmp(p, kind_names[i], len))
                kind = i;
        if (kind < 0 || p[len] != '=') {
            snprintf(errstr, errstr_size,
                     "mix: expected KIND=WEIGHT (post, reply, like, unlike, follow, unfollow, "
                     "delete, profile) at '%s'",
                     p);
            return FL_ERR_INVALID;
        }
        char *end;
        unsigned long w = strtoul(p + len + 1, &end, 10);
        if (end == p + len + 1 || (*end && *end != ',') || w > 1000000) {
            snprintf(errstr, errstr_size, "mix: weight of %s is not a number up to 1000000",
                     kind_names[kind]);
            return FL_ERR_INVALID;
        }
        mix[kind] = (unsigned)w;
        total += (unsigned)w;
        p = *end ? end + 1 : end;
    }
    if (!total) {
        snprintf(errstr, errstr_size, "%s", "mix: every weight is 0");
        return FL_ERR_INVALID;
    }
    memcpy(o->mix, mix, sizeof(mix));
    return FL_OK;
}

static int64_t user_id(const fl_netgen_t *g, int32_t u)
{
    return g->o.user_base + u;
}

static uint64_t edge_key(int32_t u, int32_t v)
{
    return ((uint64_t)(uint32_t)u << 32 | (uint32_t)v) + 1;
}

static uint64_t like_key(int64_t post_id, int32_t u)
{
    return key_hash((uint64_t)post_id * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)u) | 1;
}

/* Zipf(s) cumulative weights over n ranks. */
static double *zipf_cdf(int32_t n, double s)
{
    double *cdf = malloc(sizeof(*cdf) * (size_t)(n > 0 ? n : 1)), sum = 0;
    if (!cdf)
        return NULL;
    for (int32_t i = 0; i < n; i++)
        cdf[i] = sum += pow(i + 1.0, -s);
    return cdf;
}

static int32_t cdf_pick(rng_t *r, const double *cdf, int32_t n)
{
    double x = rng_unit(r) * cdf[n - 1];
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int32_t *permutation(rng_t *r, int32_t n)
{
    int32_t *p = malloc(sizeof(*p) * (size_t)n);
    if (!p)
        return NULL;
    for (int32_t i = 0; i < n; i++)
        p[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)rng_below(r, (uint64_t)i + 1), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

static bool edge_add(fl_netgen_t *g, int32_t u, int32_t v)
{
    ulist_t *l = &g->following[u];
    if (u == v || keyset_has(&g->edges, edge_key(u, v)))
        return false;
    if (l->len == l->cap) {
        int32_t cap = l->cap ? l->cap * 2 : 8;
        int32_t *nv = realloc(l->v, sizeof(*nv) * (size_t)cap);
        if (!nv)
            return false;
        l->v = nv;
        l->cap = cap;
    }
    if (!keyset_add(&g->edges, edge_key(u, v)))
        return false;
    l->v[l->len++] = v;
    g->followers[v]++;
    g->stats.edges++;
    return true;
}

static void edge_del(fl_netgen_t *g, int32_t u, int32_t j)
{
    ulist_t *l = &g->following[u];
    int32_t v = l->v[j];
    keyset_del(&g->edges, edge_key(u, v));
    l->v[j] = l->v[--l->len];
    g->followers[v]--;
    g->stats.edges--;
}

/* A regular (non-celebrity) followee by popularity. */
static int32_t pick_regular(fl_netgen_t *g)
{
    return g->rank_user[g->k + cdf_pick(&g->rng, g->follow_cdf, g->n - g->k)];
}

static int32_t pick_author(fl_netgen_t *g)
{
    return g->active_user[cdf_pick(&g->rng, g->active_cdf, g->n)];
}

static void build_graph(fl_netgen_t *g)
{
    /* Pareto out-degrees with shape 1.6 and the requested mean. */
    const double shape = 1.6, xm = g->o.mean_following * (shape - 1) / shape;
    int32_t regular = g->n - g->k, cap = regular - 1 < MAX_DEGREE ? regular - 1 : MAX_DEGREE;
    for (int32_t u = 0; u < g->n; u++) {
        for (int32_t c = 0; c < g->k; c++)
            if (rng_unit(&g->rng) < g->celeb_p)
                edge_add(g, u, g->rank_user[c]);
        double d = xm / pow(1.0 - rng_unit(&g->rng), 1.0 / shape);
        int32_t want = d > cap ? cap : (int32_t)d;
        for (int32_t i = 0, tries = 0; i < want && tries < want * 4 + TRIES; tries++)
            if (edge_add(g, u, pick_regular(g)))
                i++;
    }
    g->stats.backlog_edges = g->stats.edges;
}

void fl_netgen_free(fl_netgen_t *g)
{
    if (!g)
        return;
    if (g->following)
        for (int32_t u = 0; u < g->n; u++)
            free(g->following[u].v);
    free(g->following);
    free(g->followers);
    free(g->edges.slots);
    free(g->liked.slots);
    free(g->rank_user);
    free(g->follow_cdf);
    free(g->active_user);
    free(g->active_cdf);
    free(g->last_post);
    free(g->posts);
    free(g->likes);
    free(g->run_id);
    free(g);
}

fl_netgen_t *fl_netgen_new(const fl_netgen_opts_t *o, char *errstr, size_t errstr_size)
{
    if (o->users < 2 || o->users > 50000000) {
        snprintf(errstr, errstr_size, "users must be between 2 and 50,000,000 (got %lld)",
                 (long long)o->users);
        return NULL;
    }
    if (o->user_base < 1 || o->celebrity_threshold < 1 || o->mean_following < 0 ||
        o->posts_per_user < 0 || o->likes_per_post < 0 || o->start_ms < 0) {
        snprintf(errstr, errstr_size, "%s",
                 "user base and threshold must be positive, rates and start not negative");
        return NULL;
    }
    /* A celebrity needs ~10% more followers than the threshold, from the
     * other users. */
    int64_t need = o->celebrity_threshold + o->celebrity_threshold / 10 + 10;
    int64_t k = o->celebrities;
    if (k < 0)
        k = o->users - 1 >= need + need / 20 ? 3 : 0;
    if (k > 0 && o->users - 1 < need) {
        snprintf(errstr, errstr_size,
                 "%lld users cannot give a celebrity more than the threshold of %lld followers "
                 "(needs %lld users)",
                 (long long)o->users, (long long)o->celebrity_threshold, (long long)need + 1);
        return NULL;
    }
    if (k > o->users / 4) {
        snprintf(errstr, errstr_size, "%lld celebrities among %lld users are too many",
                 (long long)k, (long long)o->users);
        return NULL;
    }
    unsigned mix_total = 0;
    for (int i = 0; i < FL_NG_REGISTER; i++)
        mix_total += o->mix[i];
    if (!mix_total) {
        snprintf(errstr, errstr_size, "%s", "the steady mix has no event kind");
        return NULL;
    }

    fl_netgen_t *g = calloc(1, sizeof(*g));
    if (!g)
        goto nomem;
    g->o = *o;
    g->run_id = strdup(o->run_id ? o->run_id : "loadgen");
    g->n = (int32_t)o->users;
    g->k = (int32_t)k;
    g->mix_total = mix_total;
    rng_seed(&g->rng, o->seed);
    g->rank_user = permutation(&g->rng, g->n);
    g->active_user = permutation(&g->rng, g->n);
    g->follow_cdf = zipf_cdf(g->n - g->k, 1.0);
    g->active_cdf = zipf_cdf(g->n, 0.8);
    g->following = calloc((size_t)g->n, sizeof(*g->following));
    g->followers = calloc((size_t)g->n, sizeof(*g->followers));
    g->last_post = calloc((size_t)g->n, sizeof(*g->last_post));
    g->posts = calloc(RING_SIZE, sizeof(*g->posts));
    g->likes = calloc(RING_SIZE, sizeof(*g->likes));
    if (!g->run_id || !g->rank_user || !g->active_user || !g->follow_cdf || !g->active_cdf ||
        !g->following || !g->followers || !g->last_post || !g->posts || !g->likes)
        goto nomem;
    g->celeb_p = k ? (double)need / (double)(g->n - 1) : 0;
    if (g->celeb_p > 1)
        g->celeb_p = 1;
    build_graph(g);

    g->posts_left = (int64_t)llround(o->posts_per_user * (double)o->users);
    g->likes_left = (int64_t)llround(o->likes_per_post * (double)g->posts_left);
    g->total = g->n + g->stats.edges + g->posts_left + g->likes_left;
    g->last_ms = o->start_ms - 1;
    return g;
nomem:
    fl_netgen_free(g);
    snprintf(errstr, errstr_size, "%s", "out of memory building the network");
    return NULL;
}

void fl_netgen_set_start_ms(fl_netgen_t *g, int64_t start_ms)
{
    g->o.start_ms = start_ms;
    g->last_ms = start_ms - 1;
}

int64_t fl_netgen_backlog_total(const fl_netgen_t *g)
{
    return g->total;
}

int64_t fl_netgen_backlog_left(const fl_netgen_t *g)
{
    return g->total - g->emitted;
}

const fl_netgen_stats_t *fl_netgen_stats(const fl_netgen_t *g)
{
    return &g->stats;
}

int64_t fl_netgen_celebrities(const fl_netgen_t *g)
{
    return g->k;
}

int64_t fl_netgen_celebrity(const fl_netgen_t *g, int64_t i, int64_t *followers)
{
    int32_t u = g->rank_user[i];
    if (followers)
        *followers = g->followers[u];
    return user_id(g, u);
}

int64_t fl_netgen_demo_user(const fl_netgen_t *g)
{
    int32_t best = 0;
    bool best_celeb = false;
    for (int32_t u = 0; u < g->n; u++) {
        bool celeb = false;
        for (int32_t c = 0; c < g->k && !celeb; c++)
            celeb = keyset_has(&g->edges, edge_key(u, g->rank_user[c]));
        if ((celeb && !best_celeb) ||
            (celeb == best_celeb && g->following[u].len > g->following[best].len)) {
            best = u;
            best_celeb = celeb;
        }
    }
    return user_id(g, best);
}

static int32_t user_index(const fl_netgen_t *g, int64_t id)
{
    int64_t u = id - g->o.user_base;
    return u >= 0 && u < g->n ? (int32_t)u : -1;
}

int64_t fl_netgen_followers(const fl_netgen_t *g, int64_t id)
{
    int32_t u = user_index(g, id);
    return u < 0 ? -1 : g->followers[u];
}

int64_t fl_netgen_following(const fl_netgen_t *g, int64_t id)
{
    int32_t u = user_index(g, id);
    return u < 0 ? -1 : g->following[u].len;
}

bool fl_netgen_follows(const fl_netgen_t *g, int64_t follower_id, int64_t followee_id)
{
    int32_t u = user_index(g, follower_id), v = user_index(g, followee_id);
    return u >= 0 && v >= 0 && keyset_has(&g->edges, edge_key(u, v));
}

/* ---- event construction ----------------------------------------------------- */

static const char *const first_names[] = {
    "Ada",     "Alan",    "Grace",     "Linus",    "Barbara", "Dennis",   "Radia", "Ken",
    "Frances", "Edsger",  "Donald",    "Margaret", "John",    "Leslie",   "Shafi", "Tim",
    "Hedy",    "Niklaus", "Katherine", "Vint",     "Sophie",  "Guido",    "Anita", "Bjarne",
    "Mary",    "Rob",     "Jean",      "Butler",   "Adele",   "Yukihiro", "Joan",  "Brian"};
static const char *const last_names[] = {
    "Ito",      "Okafor",  "Lindqvist", "Moreau", "Novak",    "Haddad", "Kowalski", "Santos",
    "Nakamura", "Schmidt", "Ferreira",  "Rossi",  "Petrov",   "Dubois", "Kim",      "Larsen",
    "Mbeki",    "Quinn",   "Varga",     "Tanaka", "Oliveira", "Weber",  "Costa",    "Murphy"};
static const char *const words[] = {
    "kafka",  "stream",  "offset",  "replay",  "timeline",  "cache",  "merge",  "batch",
    "store",  "graph",   "fan-out", "outbox",  "partition", "commit", "lag",    "feed",
    "coffee", "morning", "release", "deploy",  "weekend",   "music",  "garden", "city",
    "train",  "rain",    "sunset",  "book",    "team",      "idea",   "launch", "bug",
    "fixed",  "shipped", "today",   "tonight", "finally",   "new",    "great",  "quiet"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof(buf), f, ap);
    va_end(ap);
    return strdup(buf);
}

static char *post_text(fl_netgen_t *g, int64_t n)
{
    char buf[256];
    size_t len = 0;
    int nw = 4 + (int)rng_below(&g->rng, 8);
    for (int i = 0; i < nw && len < sizeof(buf) - 24; i++) {
        const char *w = words[rng_below(&g->rng, COUNT(words))];
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? " " : "", w);
    }
    if (rng_below(&g->rng, 4) == 0)
        snprintf(buf + len, sizeof(buf) - len, " #%lld", (long long)n);
    if (buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
    return strdup(buf);
}

/* The next occurred_at: the backlog's is 1 ms after the last event, a
 * steady one is now unless time went back. */
static int64_t next_ms(fl_netgen_t *g, int64_t now_ms)
{
    int64_t ms = now_ms > g->last_ms ? now_ms : g->last_ms;
    if (ms != g->last_ms)
        g->seq = 0;
    g->last_ms = ms;
    return ms;
}

/* A post id for created_at ms: ms * 1024 + a sequence within the ms
 * (moving to the next ms when 1024 posts share one). */
static int64_t next_post_id(fl_netgen_t *g, int64_t *ms)
{
    if (g->seq >= 1024) {
        *ms = ++g->last_ms;
        g->seq = 0;
    }
    return *ms * 1024 + g->seq++;
}

static void set_event_id(fl_netgen_t *g, fl_event_t *ev, bool backlog)
{
    if (backlog)
        ev->event_id =
            fmt("lg%llu-%d-b%lld", (unsigned long long)g->o.seed, g->n, (long long)g->emitted);
    else
        ev->event_id = fmt("%s-%lld", g->run_id, (long long)g->steady_n++);
}

static void emit_register(fl_netgen_t *g, fl_event_t *ev, int32_t u)
{
    int64_t id = user_id(g, u);
    ev->type = FL_EV_USER_REGISTERED;
    ev->user_id = id;
    ev->handle = fmt("u%lld", (long long)id);
    ev->display_name = fmt("%s %s", first_names[(uint64_t)id % COUNT(first_names)],
                           last_names[((uint64_t)id / COUNT(first_names)) % COUNT(last_names)]);
    g->stats.by_kind[FL_NG_REGISTER]++;
}

static void emit_follow(fl_netgen_t *g, fl_event_t *ev, int32_t u, int32_t v, bool add)
{
    ev->type = add ? FL_EV_FOLLOW_ADDED : FL_EV_FOLLOW_REMOVED;
    ev->follower_id = user_id(g, u);
    ev->followee_id = user_id(g, v);
    g->stats.by_kind[add ? FL_NG_FOLLOW : FL_NG_UNFOLLOW]++;
}

/* A recent post from the ring, newer ones likelier; NULL when none. */
static post_slot_t *recent_post(fl_netgen_t *g)
{
    if (!g->posts_len)
        return NULL;
    double x = rng_unit(&g->rng);
    uint32_t back = (uint32_t)(x * x * g->posts_len);
    return &g->posts[(g->posts_head - 1 - back) & (RING_SIZE - 1)];
}

static void emit_post(fl_netgen_t *g, fl_event_t *ev, int64_t ms, bool reply)
{
    int32_t a = pick_author(g);
    post_slot_t *to = NULL;
    if (reply)
        for (int t = 0; t < TRIES && !to; t++) {
            to = recent_post(g);
            if (to && (!to->alive || to->vis != FL_VIS_PUBLIC))
                to = NULL;
        }
    double x = rng_unit(&g->rng);
    fl_visibility_t vis = x < 0.80 ? FL_VIS_PUBLIC : x < 0.95 ? FL_VIS_FOLLOWERS : FL_VIS_PRIVATE;
    int64_t id = next_post_id(g, &ms);
    ev->type = FL_EV_POST_CREATED;
    ev->occurred_at = ms;
    ev->created_at = ms;
    ev->post_id = id;
    ev->author_id = user_id(g, a);
    ev->visibility = vis;
    ev->text = post_text(g, g->stats.by_kind[FL_NG_POST] + g->stats.by_kind[FL_NG_REPLY]);
    if (to) {
        ev->has_reply_to = true;
        ev->reply_to = to->id;
    }
    g->posts[g->posts_head] = (post_slot_t){id, a, (uint8_t)vis, 1};
    g->posts_head = (g->posts_head + 1) & (RING_SIZE - 1);
    if (g->posts_len < RING_SIZE)
        g->posts_len++;
    if (vis != FL_VIS_PRIVATE)
        g->last_post[a] = id;
    g->stats.posts_live++;
    g->stats.by_kind[to ? FL_NG_REPLY : FL_NG_POST]++;
}

/* A like: a user likes the newest post of someone they follow, or a recent
 * public post. false when no post can be liked. */
static bool emit_like(fl_netgen_t *g, fl_event_t *ev)
{
    for (int t = 0; t < TRIES; t++) {
        int32_t u = (int32_t)rng_below(&g->rng, (uint64_t)g->n), a = -1;
        int64_t post = 0;
        ulist_t *l = &g->following[u];
        if (l->len && rng_below(&g->rng, 3)) {
            a = l->v[rng_below(&g->rng, (uint64_t)l->len)];
            post = g->last_post[a];
        } else {
            post_slot_t *s = recent_post(g);
            if (s && s->alive && s->vis == FL_VIS_PUBLIC) {
                a = s->author;
                post = s->id;
            }
        }
        if (!post || a == u || !keyset_add(&g->liked, like_key(post, u)))
            continue;
        ev->type = FL_EV_LIKE_ADDED;
        ev->user_id = user_id(g, u);
        ev->post_id = post;
        ev->author_id = user_id(g, a);
        like_slot_t *s;
        if (g->likes_len < RING_SIZE) {
            s = &g->likes[g->likes_len++];
        } else {
            /* The oldest remembered like is forgotten: it can no longer be
             * undone here, and may be given again (likes are idempotent). */
            s = &g->likes[g->likes_next++ % RING_SIZE];
            keyset_del(&g->liked, like_key(s->post_id, s->user));
        }
        *s = (like_slot_t){post, a, u};
        g->stats.by_kind[FL_NG_LIKE]++;
        return true;
    }
    return false;
}

static bool emit_unlike(fl_netgen_t *g, fl_event_t *ev)
{
    if (!g->likes_len)
        return false;
    uint32_t i = (uint32_t)rng_below(&g->rng, g->likes_len);
    like_slot_t s = g->likes[i];
    g->likes[i] = g->likes[--g->likes_len];
    keyset_del(&g->liked, like_key(s.post_id, s.user));
    ev->type = FL_EV_LIKE_REMOVED;
    ev->user_id = user_id(g, s.user);
    ev->post_id = s.post_id;
    ev->author_id = user_id(g, s.author);
    g->stats.by_kind[FL_NG_UNLIKE]++;
    return true;
}

static bool emit_delete(fl_netgen_t *g, fl_event_t *ev)
{
    for (int t = 0; t < TRIES; t++) {
        post_slot_t *s = recent_post(g);
        if (!s || !s->alive)
            continue;
        s->alive = 0;
        if (g->last_post[s->author] == s->id)
            g->last_post[s->author] = 0;
        ev->type = FL_EV_POST_DELETED;
        ev->post_id = s->id;
        ev->author_id = user_id(g, s->author);
        g->stats.posts_live--;
        g->stats.by_kind[FL_NG_DELETE]++;
        return true;
    }
    return false;
}

static bool emit_new_follow(fl_netgen_t *g, fl_event_t *ev)
{
    /* Celebrities get their share of new edges, so unfollows do not wear
     * them down below the threshold. */
    double celeb_share = g->stats.edges ? (double)g->k * g->celeb_p * g->n / g->stats.edges : 0;
    for (int t = 0; t < TRIES; t++) {
        int32_t u = (int32_t)rng_below(&g->rng, (uint64_t)g->n);
        int32_t v = g->k && rng_unit(&g->rng) < celeb_share
                        ? g->rank_user[rng_below(&g->rng, (uint64_t)g->k)]
                        : pick_regular(g);
        if (edge_add(g, u, v)) {
            emit_follow(g, ev, u, v, true);
            return true;
        }
    }
    return false;
}

static bool emit_unfollow(fl_netgen_t *g, fl_event_t *ev)
{
    for (int t = 0; t < TRIES; t++) {
        int32_t u = (int32_t)rng_below(&g->rng, (uint64_t)g->n);
        ulist_t *l = &g->following[u];
        if (!l->len)
            continue;
        int32_t j = (int32_t)rng_below(&g->rng, (uint64_t)l->len), v = l->v[j];
        edge_del(g, u, j);
        emit_follow(g, ev, u, v, false);
        return true;
    }
    return false;
}

static void emit_profile(fl_netgen_t *g, fl_event_t *ev)
{
    int32_t u = (int32_t)rng_below(&g->rng, (uint64_t)g->n);
    int64_t id = user_id(g, u);
    ev->type = FL_EV_USER_UPDATED;
    ev->user_id = id;
    if (rng_below(&g->rng, 2))
        ev->bio = fmt("Into %s and %s.", words[rng_below(&g->rng, COUNT(words))],
                      words[rng_below(&g->rng, COUNT(words))]);
    else
        ev->display_name = fmt("%s %s", first_names[rng_below(&g->rng, COUNT(first_names))],
                               last_names[((uint64_t)id / COUNT(first_names)) % COUNT(last_names)]);
    g->stats.by_kind[FL_NG_PROFILE]++;
}

/* One backlog event's body (occurred_at set by the caller); false at the end. */
static bool backlog_body(fl_netgen_t *g, fl_event_t *ev, int64_t ms)
{
    if (g->reg_next < g->n) {
        emit_register(g, ev, g->reg_next++);
        return true;
    }
    while (g->edge_u < g->n) {
        ulist_t *l = &g->following[g->edge_u];
        if (g->edge_j < l->len) {
            int32_t v = l->v[g->edge_j++];
            ev->type = FL_EV_FOLLOW_ADDED;
            ev->follower_id = user_id(g, g->edge_u);
            ev->followee_id = user_id(g, v);
            g->stats.by_kind[FL_NG_FOLLOW]++;
            return true;
        }
        g->edge_u++;
        g->edge_j = 0;
    }
    if (g->posts_left + g->likes_left == 0)
        return false;
    bool like =
        (int64_t)rng_below(&g->rng, (uint64_t)(g->posts_left + g->likes_left)) >= g->posts_left;
    if (like && emit_like(g, ev)) {
        g->likes_left--;
        return true;
    }
    /* A like with nothing to like yet becomes a post: the total holds. */
    if (g->posts_left)
        g->posts_left--;
    else
        g->likes_left--;
    emit_post(g, ev, ms, rng_below(&g->rng, 10) == 0);
    return true;
}

bool fl_netgen_backlog_next(fl_netgen_t *g, fl_event_t *ev)
{
    if (g->emitted >= g->total)
        return false;
    int64_t ms = next_ms(g, g->last_ms + 1);
    if (!backlog_body(g, ev, ms))
        return false;
    if (!ev->occurred_at)
        ev->occurred_at = ms;
    set_event_id(g, ev, true);
    g->emitted++;
    return true;
}

void fl_netgen_backlog_skip(fl_netgen_t *g)
{
    fl_event_t ev = {0};
    while (fl_netgen_backlog_next(g, &ev))
        fl_event_clear(&ev);
}

void fl_netgen_steady_next(fl_netgen_t *g, int64_t now_ms, fl_event_t *ev)
{
    int64_t ms = next_ms(g, now_ms);
    uint32_t x = (uint32_t)rng_below(&g->rng, g->mix_total);
    int kind = 0;
    while (x >= g->o.mix[kind]) {
        x -= g->o.mix[kind];
        kind++;
    }
    bool done = false;
    switch ((fl_netgen_kind_t)kind) {
    case FL_NG_LIKE:
        done = emit_like(g, ev);
        break;
    case FL_NG_UNLIKE:
        done = emit_unlike(g, ev) || emit_like(g, ev);
        break;
    case FL_NG_FOLLOW:
        done = emit_new_follow(g, ev);
        break;
    case FL_NG_UNFOLLOW:
        done = emit_unfollow(g, ev) || emit_new_follow(g, ev);
        break;
    case FL_NG_DELETE:
        done = emit_delete(g, ev);
        break;
    case FL_NG_PROFILE:
        emit_profile(g, ev);
        done = true;
        break;
    default:
        break;
    }
    /* A kind with nothing to act on (no post to like yet) becomes a post. */
    if (!done)
        emit_post(g, ev, ms, kind == FL_NG_REPLY);
    if (!ev->occurred_at)
        ev->occurred_at = ms;
    set_event_id(g, ev, false);
}
