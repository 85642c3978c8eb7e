/*
 * fl_skl.c - an ordered map by bytewise key: skiplists in two tiers.
 *
 * Keys are grouped by their first FL_SKL_GROUP bytes (the whole key when
 * shorter): the tag and the id of fl_keys.h, so a group is one user's
 * timeline, or one user's record. Each group is a small skiplist of its
 * nodes, and the non-empty groups are a skiplist of their own, ordered by
 * the group key. That order is the keys' order: for keys x of group g and
 * y of group h with g < h, x < y (a group key shorter than FL_SKL_GROUP is
 * its only key, so when g is a prefix of h it is x itself). A store's
 * pending batch holds ~10^5 keys between ~10^4 users, and the timeline
 * processor seeks one user's range between inserts: a search within the
 * user's group takes a few hops where one list of every key took some 40
 * comparisons and a dozen cache misses (half of the processor's thread).
 * A group also knows its last node at each level, so that a key above
 * all of its group's (a timeline's new post, the usual case) is appended
 * without a search.
 *
 * The groups' order is only needed to cross from one group to another
 * (a walk of every key, a seek to a group that holds nothing), never by
 * the hot paths, which stay within one group (fl__skl_seek_in and the
 * others bounded by a prefix of at least FL_SKL_GROUP bytes). So a group
 * that gains its first node goes on a list of loose groups, and the next
 * operation that crosses groups links them: sorted and merged with the
 * linked ones in one pass when there are many, one by one when few. A
 * batch of 10^4 new groups would otherwise pay 10^4 searches down the
 * groups' list (the fan-out's author records, one group each).
 *
 * Invariants: at every level of a group the nodes are in strictly
 * increasing key order, all with the group's prefix; a node of height h is
 * linked at levels 0..h-1 exactly; a group is in the groups' list iff it
 * holds a node; count and bytes match the linked nodes. Each node is one
 * allocation holding its forward pointers, key and value. There are no
 * back pointers: moving backwards is a search, O(log n) like a seek.
 *
 * Point lookups (fl__skl_find) go through a hash index instead of the
 * levels: a chained table over the same nodes (each node carries its hash
 * and chain link), grown to keep chains short; a bitset of eight bits per
 * slot, small enough to stay in the CPU's cache, rules out most absent
 * keys. Bits of removed nodes stay set until the index is rebuilt or
 * cleared. Groups have a hash table of their own, by group key.
 *
 * Workload: the topology test driver and unit tests keep up to ~10^6
 * entries in one map; write batches hold hundreds to 10^5. Heights are
 * drawn with p = 1/4 from a per-map xorshift generator, so the shape is
 * reproducible and no global state is involved. Not thread-safe.
 *
 * Arena maps (fl__skl_new_arena) serve maps that are emptied wholesale and
 * often, like a store's pending batch: nodes and groups are carved from
 * large chunks, a replaced or removed node's memory stays unused until the
 * next clear, and a clear costs nothing per node. The chunks are kept for
 * reuse. A group stays allocated (in its table) until the next clear, in
 * either kind of map, empty or not.
 */
#include "fl_skl.h"
#include "fl_state_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define FL_SKL_GROUP       9  /* a tag byte and a 64-bit id (fl_keys.h) */
#define FL_SKL_MAX_HEIGHT  20 /* groups: 4^20 before the top level stops helping */
#define FL_SKL_NODE_HEIGHT 12 /* nodes within a group: 4^12 */

typedef struct group group_t;

struct fl__skl_node {
    uint32_t klen;
    uint32_t vlen;
    uint8_t height;
    uint8_t flags;
    uint8_t in_arena;            /* carved from its map's chunks: freed with them */
    uint32_t hash;               /* of the key, low bits */
    struct fl__skl_node *hnext;  /* hash chain */
    group_t *g;                  /* the group of its key */
    struct fl__skl_node *next[]; /* height pointers, then key bytes, then value bytes */
};

struct group {
    group_t *hnext; /* the groups' hash chain */
    fl__skl_t *map;
    uint32_t hash;
    uint8_t klen;
    uint8_t height;  /* the nodes' levels in use, >= 1 */
    uint8_t gheight; /* levels in the groups' list */
    bool linked;     /* in the groups' list */
    bool loose;      /* in the map's loose list, not linked */
    uint8_t key[FL_SKL_GROUP];
    size_t count;
    fl__skl_node_t *head[FL_SKL_NODE_HEIGHT]; /* the first node at each level */
    fl__skl_node_t *tail[FL_SKL_NODE_HEIGHT]; /* the last, NULL when none */
    group_t *gnext[];                         /* gheight pointers */
};

/* A chunk of an arena map's node memory. */
typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(max_align_t) uint8_t mem[];
} chunk_t;

#define FL_SKL_CHUNK (256 * 1024)
/* Emptied chunks kept for reuse, at most; a clear after an unusually large
 * batch gives the rest back. */
#define FL_SKL_SPARE_MAX (128 * FL_SKL_CHUNK)

struct fl__skl {
    group_t *ghead;  /* sentinel of the groups' list, full height, no key */
    int gheight;     /* levels of the groups' list in use, >= 1 */
    bool arena;      /* nodes come from chunks; clearing resets them */
    chunk_t *chunks; /* every chunk, the one in use first... */
    chunk_t *spare;  /* ...and those emptied by a clear, for reuse */
    size_t count;
    uint64_t bytes;
    uint64_t rng;
    fl__skl_node_t **tab; /* the nodes' hash index; NULL until the first insert */
    size_t tab_size;      /* a power of two */
    uint64_t *filter;     /* 8 * tab_size bits: bit (hash >> 7) of every linked node */
    group_t **gtab;       /* the groups' hash table; NULL until the first node */
    size_t gtab_size, ngroups;
    group_t **loose; /* groups with nodes, not yet linked */
    size_t nloose, loose_cap, nlinked;
};

#define FL_SKL_TAB_MIN 64

static uint8_t *node_key(const fl__skl_node_t *n)
{
    return (uint8_t *)&n->next[n->height];
}

/* Bytewise order, eight bytes at a time: the keys of fl_keys.h are a tag
 * and big-endian 64-bit fields, so most comparisons end in the first or
 * second word without a call to memcmp. */
int fl__key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    const uint8_t *x = a, *y = b;
    size_t min = alen < blen ? alen : blen;
    while (min >= 8) {
        uint64_t u, v;
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        if (u != v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            u = __builtin_bswap64(u);
            v = __builtin_bswap64(v);
#endif
            return u < v ? -1 : 1;
        }
        x += 8;
        y += 8;
        min -= 8;
    }
    int c = min ? memcmp(x, y, min) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int random_height(fl__skl_t *s, int max)
{
    int h = 1;
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    /* two bits per level: each further level with probability 1/4 */
    while (h < max && (x & 3) == 0) {
        h++;
        x >>= 2;
    }
    return h;
}

static size_t group_len(size_t klen)
{
    return klen < FL_SKL_GROUP ? klen : FL_SKL_GROUP;
}

fl__skl_t *fl__skl_new(uint64_t seed)
{
    fl__skl_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ghead = calloc(1, sizeof(group_t) + FL_SKL_MAX_HEIGHT * sizeof(group_t *));
    if (!s->ghead) {
        free(s);
        return NULL;
    }
    s->ghead->gheight = FL_SKL_MAX_HEIGHT;
    s->gheight = 1;
    s->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    return s;
}

static void node_release(fl__skl_node_t *n)
{
    if (n && !n->in_arena)
        free(n);
}

/* Memory for a node or group of size bytes from an arena map's chunks. */
static void *arena_alloc(fl__skl_t *s, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    chunk_t *c = s->chunks;
    if (!c || c->size - c->used < size) {
        if (s->spare && s->spare->size >= size) {
            c = s->spare;
            s->spare = c->next;
        } else {
            size_t cap = size > FL_SKL_CHUNK ? size : FL_SKL_CHUNK;
            c = malloc(sizeof(*c) + cap);
            if (!c)
                return NULL;
            c->size = cap;
        }
        c->used = 0;
        c->next = s->chunks;
        s->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += size;
    return p;
}

void fl__skl_clear(fl__skl_t *s)
{
    if (!s)
        return;
    if (s->arena) {
        size_t kept = 0;
        for (chunk_t *c = s->spare; c; c = c->next)
            kept += c->size;
        while (s->chunks) { /* every node and group lives in them */
            chunk_t *c = s->chunks;
            s->chunks = c->next;
            if (kept + c->size > FL_SKL_SPARE_MAX) {
                free(c);
                continue;
            }
            kept += c->size;
            c->next = s->spare;
            s->spare = c;
        }
    } else {
        for (size_t b = 0; b < s->gtab_size; b++) {
            group_t *g = s->gtab[b], *gn;
            for (; g; g = gn) {
                gn = g->hnext;
                for (fl__skl_node_t *n = g->head[0], *next; n; n = next) {
                    next = n->next[0];
                    free(n);
                }
                free(g);
            }
        }
    }
    memset(s->ghead->gnext, 0, FL_SKL_MAX_HEIGHT * sizeof(group_t *));
    s->gheight = 1;
    if (s->gtab && s->gtab_size > 4 * (s->ngroups > FL_SKL_TAB_MIN ? s->ngroups : FL_SKL_TAB_MIN)) {
        free(s->gtab); /* sized for an unusually large batch (as the index below) */
        s->gtab = NULL;
        s->gtab_size = 0;
    } else if (s->gtab) {
        memset(s->gtab, 0, s->gtab_size * sizeof(*s->gtab));
    }
    s->ngroups = 0;
    s->nloose = 0;
    s->nlinked = 0;
    if (s->tab && s->tab_size > 4 * (s->count > FL_SKL_TAB_MIN ? s->count : FL_SKL_TAB_MIN)) {
        /* An index sized for an unusually large batch: clearing it at every
         * later commit would cost more than growing a new one. */
        free(s->tab);
        free(s->filter);
        s->tab = NULL;
        s->filter = NULL;
        s->tab_size = 0;
    } else if (s->tab) {
        memset(s->tab, 0, s->tab_size * sizeof(*s->tab));
        memset(s->filter, 0, s->tab_size);
    }
    s->count = 0;
    s->bytes = 0;
}

void fl__skl_free(fl__skl_t *s)
{
    if (!s)
        return;
    fl__skl_clear(s);
    while (s->spare) {
        chunk_t *c = s->spare;
        s->spare = c->next;
        free(c);
    }
    free(s->tab);
    free(s->filter);
    free(s->gtab);
    free(s->loose);
    free(s->ghead);
    free(s);
}

fl__skl_t *fl__skl_new_arena(uint64_t seed)
{
    fl__skl_t *s = fl__skl_new(seed);
    if (s)
        s->arena = true;
    return s;
}

/* ---- groups ---- */

static group_t *group_find(const fl__skl_t *s, const void *key, size_t glen, uint32_t h)
{
    if (!s->gtab)
        return NULL;
    for (group_t *g = s->gtab[h & (s->gtab_size - 1)]; g; g = g->hnext)
        if (g->hash == h && g->klen == glen && memcmp(g->key, key, glen) == 0)
            return g;
    return NULL;
}

/* The group of key, if it was ever made (it may hold no node). */
static group_t *key_group(const fl__skl_t *s, const void *key, size_t klen)
{
    size_t glen = group_len(klen);
    return group_find(s, key, glen, (uint32_t)fl__key_hash(key, glen));
}

/* The group of key, made when there is none; NULL when out of memory. */
static group_t *group_get(fl__skl_t *s, const void *key, size_t klen)
{
    size_t glen = group_len(klen);
    uint32_t h = (uint32_t)fl__key_hash(key, glen);
    group_t *g = group_find(s, key, glen, h);
    if (g)
        return g;
    if (s->ngroups + 1 > s->gtab_size) { /* at most one group per slot on average */
        size_t want = s->gtab_size ? 2 * s->gtab_size : FL_SKL_TAB_MIN;
        group_t **t = calloc(want, sizeof(*t));
        if (!t)
            return NULL;
        for (size_t b = 0; b < s->gtab_size; b++)
            for (group_t *x = s->gtab[b], *xn; x; x = xn) {
                xn = x->hnext;
                x->hnext = t[x->hash & (want - 1)];
                t[x->hash & (want - 1)] = x;
            }
        free(s->gtab);
        s->gtab = t;
        s->gtab_size = want;
    }
    int gh = random_height(s, FL_SKL_MAX_HEIGHT);
    size_t size = sizeof(*g) + (size_t)gh * sizeof(group_t *);
    g = s->arena ? arena_alloc(s, size) : malloc(size);
    if (!g)
        return NULL;
    memset(g, 0, size);
    g->hash = h;
    g->map = s;
    g->klen = (uint8_t)glen;
    g->height = 1;
    g->gheight = (uint8_t)gh;
    memcpy(g->key, key, glen);
    g->hnext = s->gtab[h & (s->gtab_size - 1)];
    s->gtab[h & (s->gtab_size - 1)] = g;
    s->ngroups++;
    return g;
}

/* Fills update[] with the last group before key (a group key) at every
 * level of the groups' list and returns the first group >= key. */
static group_t *groups_ge(const fl__skl_t *s, const void *key, size_t klen, group_t **update)
{
    group_t *x = s->ghead;
    for (int i = s->gheight - 1; i >= 0; i--) {
        group_t *nx;
        while ((nx = x->gnext[i]) && fl__key_cmp(nx->key, nx->klen, key, klen) < 0)
            x = nx;
        if (update)
            update[i] = x;
    }
    return x->gnext[0];
}

static void group_link(fl__skl_t *s, group_t *g)
{
    group_t *update[FL_SKL_MAX_HEIGHT];
    groups_ge(s, g->key, g->klen, update);
    if (g->gheight > s->gheight) {
        for (int i = s->gheight; i < g->gheight; i++)
            update[i] = s->ghead;
        s->gheight = g->gheight;
    }
    for (int i = 0; i < g->gheight; i++) {
        g->gnext[i] = update[i]->gnext[i];
        update[i]->gnext[i] = g;
    }
    g->linked = true;
    s->nlinked++;
}

static void group_unlink(fl__skl_t *s, group_t *g)
{
    group_t *update[FL_SKL_MAX_HEIGHT];
    FL_STATE_CHECK(groups_ge(s, g->key, g->klen, update) == g);
    for (int i = 0; i < g->gheight; i++) {
        FL_STATE_CHECK(update[i]->gnext[i] == g);
        update[i]->gnext[i] = g->gnext[i];
    }
    while (s->gheight > 1 && !s->ghead->gnext[s->gheight - 1])
        s->gheight--;
    g->linked = false;
    s->nlinked--;
}

static int cmp_group(const void *pa, const void *pb)
{
    const group_t *a = *(group_t *const *)pa, *b = *(group_t *const *)pb;
    return fl__key_cmp(a->key, a->klen, b->key, b->klen);
}

/* Links every loose group that holds a node. Never fails: without memory
 * for the merge they are linked one by one. */
static void settle(fl__skl_t *s)
{
    size_t k = 0;
    if (!s->nloose)
        return;
    for (size_t i = 0; i < s->nloose; i++) { /* an emptied one just leaves */
        group_t *g = s->loose[i];
        g->loose = false;
        if (g->count)
            s->loose[k++] = g;
    }
    s->nloose = 0;
    qsort(s->loose, k, sizeof(*s->loose), cmp_group);
    size_t total = s->nlinked + k;
    group_t **all = k && k * 16 >= s->nlinked ? malloc(total * sizeof(*all)) : NULL;
    if (!all) {
        for (size_t i = 0; i < k; i++)
            group_link(s, s->loose[i]);
        return;
    }
    size_t o = 0, j = 0;
    for (group_t *x = s->ghead->gnext[0]; x; x = x->gnext[0]) {
        while (j < k && cmp_group(&s->loose[j], &x) < 0)
            all[o++] = s->loose[j++];
        all[o++] = x;
    }
    while (j < k)
        all[o++] = s->loose[j++];
    FL_STATE_CHECK(o == total);
    group_t *last[FL_SKL_MAX_HEIGHT];
    int height = 1;
    for (int i = 0; i < FL_SKL_MAX_HEIGHT; i++)
        last[i] = s->ghead;
    for (size_t i = 0; i < o; i++) {
        group_t *x = all[i];
        x->linked = true;
        for (int l = 0; l < x->gheight; l++) {
            last[l]->gnext[l] = x;
            last[l] = x;
        }
        if (x->gheight > height)
            height = x->gheight;
    }
    for (int i = 0; i < FL_SKL_MAX_HEIGHT; i++)
        last[i]->gnext[i] = NULL;
    s->gheight = height;
    s->nlinked = total;
    free(all);
}

/* Group g gained its first node: loose until an operation crosses groups. */
static void group_filled(fl__skl_t *s, group_t *g)
{
    if (g->linked || g->loose)
        return;
    if (s->nloose == s->loose_cap) {
        size_t cap = s->loose_cap ? 2 * s->loose_cap : 256;
        group_t **l = realloc(s->loose, cap * sizeof(*l));
        if (!l) {
            group_link(s, g); /* no memory to defer: linked now */
            return;
        }
        s->loose = l;
        s->loose_cap = cap;
    }
    s->loose[s->nloose++] = g;
    g->loose = true;
}

/* ---- nodes ---- */

fl__skl_node_t *fl__skl_node_new(fl__skl_t *s, const void *key, size_t klen, const void *val,
                                 size_t vlen, uint8_t flags)
{
    fl__skl_node_t *n;
    int h;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return NULL;
    group_t *g = group_get(s, key, klen);
    if (!g)
        return NULL;
    h = random_height(s, FL_SKL_NODE_HEIGHT);
    size_t size = sizeof(*n) + (size_t)h * sizeof(fl__skl_node_t *) + klen + vlen;
    n = s->arena ? arena_alloc(s, size) : malloc(size);
    if (!n)
        return NULL;
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    n->height = (uint8_t)h;
    n->flags = flags;
    n->in_arena = s->arena;
    n->hash = (uint32_t)fl__key_hash(key, klen);
    n->hnext = NULL;
    n->g = g;
    memset(n->next, 0, (size_t)h * sizeof(fl__skl_node_t *));
    if (klen)
        memcpy(node_key(n), key, klen);
    if (vlen)
        memcpy(node_key(n) + klen, val, vlen);
    return n;
}

void fl__skl_node_free(fl__skl_node_t *n)
{
    node_release(n);
}

/* Within group g: fills update[] with the link before key at every level
 * (NULL: the group's head) and returns the first node >= key (NULL at the
 * group's end). */
static fl__skl_node_t *find_ge(const group_t *g, const void *key, size_t klen,
                               fl__skl_node_t **update)
{
    fl__skl_node_t *x = NULL; /* the head */
    for (int i = g->height - 1; i >= 0; i--) {
        fl__skl_node_t *nx;
        while ((nx = x ? x->next[i] : g->head[i]) &&
               fl__key_cmp(node_key(nx), nx->klen, key, klen) < 0)
            x = nx;
        if (update)
            update[i] = x;
    }
    return x ? x->next[0] : g->head[0];
}

static fl__skl_node_t **link_at(group_t *g, fl__skl_node_t *before, int level)
{
    return before ? &before->next[level] : &g->head[level];
}

/* The chain link that points at n. */
static fl__skl_node_t **chain_link(fl__skl_t *s, const fl__skl_node_t *n)
{
    fl__skl_node_t **l = &s->tab[n->hash & (s->tab_size - 1)];
    while (*l != n) {
        FL_STATE_CHECK(*l);
        l = &(*l)->hnext;
    }
    return l;
}

/* The filter's bit for hash h: 8 * tab_size bits, apart from the slot's bits. */
static uint64_t filter_bit(const fl__skl_t *s, uint32_t h, size_t *word)
{
    size_t b = (h >> 7) & (8 * s->tab_size - 1);
    *word = b >> 6;
    return (uint64_t)1 << (b & 63);
}

static void chain_add(fl__skl_t *s, fl__skl_node_t *n)
{
    fl__skl_node_t **l = &s->tab[n->hash & (s->tab_size - 1)];
    size_t w;
    uint64_t m = filter_bit(s, n->hash, &w);
    n->hnext = *l;
    *l = n;
    s->filter[w] |= m;
}

/* Sizes the index for one more node: at most one node per slot on average.
 * Without memory for a larger table the chains just grow longer. */
static void index_reserve(fl__skl_t *s)
{
    size_t want = s->tab_size ? s->tab_size : FL_SKL_TAB_MIN;
    while (want < s->count + 1)
        want *= 2;
    if (want == s->tab_size)
        return;
    fl__skl_node_t **t = calloc(want, sizeof(*t));
    uint64_t *f = calloc(want / 8, sizeof(*f)); /* 8 * want bits */
    if (!t || !f) {
        free(t);
        free(f);
        return;
    }
    free(s->tab);
    free(s->filter);
    s->tab = t;
    s->filter = f;
    s->tab_size = want;
    for (size_t b = 0; b < s->gtab_size; b++)
        for (group_t *g = s->gtab[b]; g; g = g->hnext)
            for (fl__skl_node_t *n = g->head[0]; n; n = n->next[0])
                chain_add(s, n);
}

/* Unlinks n (found with update[]) from its group and the index. */
static void unlink_node(fl__skl_t *s, fl__skl_node_t *n, fl__skl_node_t **update)
{
    group_t *g = n->g;
    for (int i = 0; i < n->height; i++) {
        fl__skl_node_t **l = link_at(g, update[i], i);
        FL_STATE_CHECK(*l == n);
        *l = n->next[i];
        if (g->tail[i] == n)
            g->tail[i] = update[i];
    }
    while (g->height > 1 && !g->head[g->height - 1])
        g->height--;
    if (s->tab)
        *chain_link(s, n) = n->hnext;
    FL_STATE_CHECK(s->count > 0 && g->count > 0);
    s->count--;
    g->count--;
    s->bytes -= (uint64_t)n->klen + n->vlen;
}

void fl__skl_insert(fl__skl_t *s, fl__skl_node_t *n)
{
    fl__skl_node_t *update[FL_SKL_NODE_HEIGHT];
    group_t *g = n->g;
    fl__skl_node_t *last = g->tail[0];
    int i;

    if (last && fl__key_cmp(node_key(last), last->klen, node_key(n), n->klen) < 0) {
        for (i = 0; i < g->height; i++) /* above every key: after each level's last */
            update[i] = g->tail[i];
    } else {
        fl__skl_node_t *old = find_ge(g, node_key(n), n->klen, update);
        if (old && fl__key_cmp(node_key(old), old->klen, node_key(n), n->klen) == 0) {
            unlink_node(s, old, update);
            node_release(old);
        }
    }
    if (n->height > g->height) {
        for (i = g->height; i < n->height; i++)
            update[i] = NULL;
        g->height = n->height;
    }
    index_reserve(s); /* before n is linked: a rebuild walks the list */
    if (s->tab)
        chain_add(s, n);
    for (i = 0; i < n->height; i++) {
        fl__skl_node_t **l = link_at(g, update[i], i);
        n->next[i] = *l;
        *l = n;
        if (!n->next[i])
            g->tail[i] = n;
    }
    if (!g->count)
        group_filled(s, g);
    g->count++;
    s->count++;
    s->bytes += (uint64_t)n->klen + n->vlen;
}

bool fl__skl_remove(fl__skl_t *s, const void *key, size_t klen)
{
    fl__skl_node_t *update[FL_SKL_NODE_HEIGHT];
    group_t *g = key_group(s, key, klen);
    fl__skl_node_t *n = g ? find_ge(g, key, klen, update) : NULL;
    if (!n || fl__key_cmp(node_key(n), n->klen, key, klen) != 0)
        return false;
    unlink_node(s, n, update);
    if (g->count == 0 && g->linked)
        group_unlink(s, g);
    node_release(n);
    return true;
}

fl__skl_node_t *fl__skl_find(const fl__skl_t *s, const void *key, size_t klen)
{
    if (!s->tab) { /* no memory for the index: search the group */
        group_t *g = key_group(s, key, klen);
        fl__skl_node_t *n = g ? find_ge(g, key, klen, NULL) : NULL;
        return n && fl__key_cmp(node_key(n), n->klen, key, klen) == 0 ? n : NULL;
    }
    uint32_t h = (uint32_t)fl__key_hash(key, klen);
    size_t w;
    uint64_t m = filter_bit(s, h, &w);
    if (!(s->filter[w] & m))
        return NULL;
    for (fl__skl_node_t *n = s->tab[h & (s->tab_size - 1)]; n; n = n->hnext)
        if (n->hash == h && n->klen == klen && memcmp(node_key(n), key, klen) == 0)
            return n;
    return NULL;
}

bool fl__skl_overwrite(fl__skl_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                       uint8_t flags)
{
    fl__skl_node_t *n = fl__skl_find(s, key, klen);
    if (!n || n->vlen != vlen)
        return false;
    if (vlen)
        memcpy(node_key(n) + klen, val, vlen);
    n->flags = flags;
    return true;
}

/* ---- order ---- */

static fl__skl_node_t *group_last(const group_t *g)
{
    return g->tail[0];
}

/* The last node of the last group before the group key (key, glen). */
static fl__skl_node_t *last_before_group(const fl__skl_t *s, const void *key, size_t glen)
{
    group_t *update[FL_SKL_MAX_HEIGHT];
    groups_ge(s, key, glen, update);
    return update[0] == s->ghead ? NULL : group_last(update[0]);
}

/* The ordered operations take a const map but may link its loose groups
 * (fl_skl.h: none of this is thread-safe anyway). */
static void settle_c(const fl__skl_t *s)
{
    settle((fl__skl_t *)s);
}

fl__skl_node_t *fl__skl_seek(const fl__skl_t *s, const void *key, size_t klen)
{
    size_t glen = group_len(klen);
    group_t *g = key_group(s, key, klen);
    if (g && g->count) {
        fl__skl_node_t *n = find_ge(g, key, klen, NULL);
        if (n)
            return n;
        settle_c(s);
        return g->gnext[0] ? g->gnext[0]->head[0] : NULL;
    }
    /* no node has key's group: the first group above it holds the answer */
    settle_c(s);
    group_t *next = groups_ge(s, key, glen, NULL);
    return next ? next->head[0] : NULL;
}

fl__skl_node_t *fl__skl_seek_before(const fl__skl_t *s, const void *key, size_t klen,
                                    bool inclusive)
{
    fl__skl_node_t *update[FL_SKL_NODE_HEIGHT];
    size_t glen = group_len(klen);
    group_t *g = key_group(s, key, klen);
    if (g && g->count) {
        fl__skl_node_t *n = find_ge(g, key, klen, update);
        if (inclusive && n && fl__key_cmp(node_key(n), n->klen, key, klen) == 0)
            return n;
        if (update[0])
            return update[0];
    }
    settle_c(s);
    return last_before_group(s, key, glen);
}

fl__skl_node_t *fl__skl_last(const fl__skl_t *s)
{
    settle_c(s);
    group_t *x = s->ghead;
    for (int i = s->gheight - 1; i >= 0; i--)
        while (x->gnext[i])
            x = x->gnext[i];
    return x == s->ghead ? NULL : group_last(x);
}

fl__skl_node_t *fl__skl_first(const fl__skl_t *s)
{
    settle_c(s);
    group_t *g = s->ghead->gnext[0];
    return g ? g->head[0] : NULL;
}

fl__skl_node_t *fl__skl_next(const fl__skl_node_t *n)
{
    if (n->next[0])
        return n->next[0];
    settle(n->g->map);
    group_t *g = n->g->gnext[0];
    return g ? g->head[0] : NULL;
}

/* ---- bounded to a prefix ---- */

static bool has_prefix(const fl__skl_node_t *n, const void *prefix, size_t plen)
{
    return n->klen >= plen && memcmp(node_key(n), prefix, plen) == 0;
}

/* The group of every key with this prefix (plen >= FL_SKL_GROUP); NULL when empty. */
static group_t *prefix_group(const fl__skl_t *s, const void *prefix)
{
    group_t *g = key_group(s, prefix, FL_SKL_GROUP);
    return g && g->count ? g : NULL;
}

fl__skl_node_t *fl__skl_seek_in(const fl__skl_t *s, const void *key, size_t klen,
                                const void *prefix, size_t plen)
{
    fl__skl_node_t *n;
    if (plen >= FL_SKL_GROUP) {
        group_t *g = prefix_group(s, prefix);
        if (!g)
            return NULL;
        if (fl__key_cmp(key, klen, prefix, plen) < 0) { /* below the prefix: from its start */
            key = prefix;
            klen = plen;
        }
        n = find_ge(g, key, klen, NULL);
    } else {
        n = fl__skl_seek(s, key, klen);
    }
    return n && has_prefix(n, prefix, plen) ? n : NULL;
}

fl__skl_node_t *fl__skl_seek_before_in(const fl__skl_t *s, const void *key, size_t klen,
                                       bool inclusive, const void *prefix, size_t plen)
{
    fl__skl_node_t *n;
    uint8_t up[64];
    size_t ulen = plen <= sizeof(up) ? plen : 0;
    if (ulen) { /* the prefix's successor: its last byte below 0xff raised */
        memcpy(up, prefix, plen);
        while (ulen && up[ulen - 1] == 0xff)
            ulen--;
    }
    if (plen >= FL_SKL_GROUP && ulen) {
        fl__skl_node_t *update[FL_SKL_NODE_HEIGHT];
        group_t *g = prefix_group(s, prefix);
        if (!g)
            return NULL;
        up[ulen - 1]++;
        if (fl__key_cmp(key, klen, up, ulen) >= 0) { /* above the prefix: from its end */
            key = up;
            klen = ulen;
            inclusive = false;
        }
        n = find_ge(g, key, klen, update);
        if (!inclusive || !n || fl__key_cmp(node_key(n), n->klen, key, klen) != 0)
            n = update[0];
    } else {
        n = fl__skl_seek_before(s, key, klen, inclusive);
    }
    return n && has_prefix(n, prefix, plen) ? n : NULL;
}

fl__skl_node_t *fl__skl_next_in(const fl__skl_node_t *n, const void *prefix, size_t plen)
{
    fl__skl_node_t *m = plen >= FL_SKL_GROUP ? n->next[0] : fl__skl_next(n);
    return m && has_prefix(m, prefix, plen) ? m : NULL;
}

const void *fl__skl_key(const fl__skl_node_t *n, size_t *len)
{
    *len = n->klen;
    return node_key(n);
}

const void *fl__skl_value(const fl__skl_node_t *n, size_t *len)
{
    *len = n->vlen;
    return node_key(n) + n->klen;
}

uint8_t fl__skl_flags(const fl__skl_node_t *n)
{
    return n->flags;
}

size_t fl__skl_count(const fl__skl_t *s)
{
    return s->count;
}

uint64_t fl__skl_bytes(const fl__skl_t *s)
{
    return s->bytes;
}
