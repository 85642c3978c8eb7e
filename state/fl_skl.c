/*
 * fl_skl.c - a skiplist ordered by bytewise key comparison.
 *
 * Invariants: at every level the nodes are in strictly increasing key
 * order (no two nodes share a key); a node of height h is linked at levels
 * 0..h-1 exactly; count and bytes match the linked nodes. Each node is one
 * allocation holding its forward pointers, key and value, so a lookup
 * touches one cache line per hop and freeing is a single free().
 *
 * There are no back pointers: moving backwards is a search for the last
 * key below the current one, O(log n) like a seek, which keeps nodes small
 * for the forward scans that dominate.
 *
 * Point lookups (fl__skl_find) go through a hash index instead of the
 * levels: a chained table over the same nodes (each node carries its hash
 * and chain link), grown to keep chains short. A store's read misses its
 * pending batch far more often than it hits it, and a miss in a skiplist
 * of 10^5 nodes costs some 40 key comparisons; in the table, one probe.
 * A miss rarely gets even that far: a bitset of eight bits per slot,
 * small enough to stay in the CPU's cache, rules out most absent keys.
 * Bits of removed nodes stay set until the index is rebuilt or cleared.
 *
 * Workload: the topology test driver and unit tests keep up to ~10^6
 * entries in one map; write batches hold hundreds to thousands. Heights
 * are drawn with p = 1/4 from a per-map xorshift generator, so the shape
 * is reproducible and no global state is involved. Not thread-safe.
 *
 * Linking is deferred: an insert puts the node in the hash index and on a
 * list of loose nodes, and the next ordered operation (a seek, first,
 * last) links them all. A store's pending batch takes some 10^5 inserts
 * between seeks, and linking them one by one cost half of the timeline
 * processor's thread (a dozen cache misses per insert down the levels):
 * settling sorts the loose nodes and, when there are many, merges them
 * with the linked ones and relinks every level in one pass; a few are
 * linked one by one. The invariants above hold for the linked nodes; the
 * loose ones have keys distinct from each other and from every linked
 * node (an insert replaces an equal key wherever it is).
 *
 * Arena maps (fl__skl_new_arena) serve maps that are emptied wholesale and
 * often, like a store's pending batch: nodes are carved from large chunks,
 * a replaced or removed node's memory stays unused until the next clear,
 * and a clear costs nothing per node. The chunks are kept for reuse.
 */
#include "fl_skl.h"
#include "fl_state_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define FL_SKL_MAX_HEIGHT 20 /* 4^20 nodes before the top level stops helping */

struct fl__skl_node {
    uint32_t klen;
    uint32_t vlen;
    uint8_t height;
    uint8_t flags;
    uint8_t in_arena; /* carved from its map's chunks: freed with them */
    uint8_t loose;    /* in the loose list (at lidx), not linked */
    uint32_t hash;    /* of the key, low bits */
    uint32_t lidx;
    struct fl__skl_node *hnext;  /* hash chain */
    struct fl__skl_node *next[]; /* height pointers, then key bytes, then value bytes */
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
#define FL_SKL_SPARE_MAX (16 * FL_SKL_CHUNK)

struct fl__skl {
    fl__skl_node_t *head; /* sentinel of full height, no key */
    bool arena;           /* nodes come from chunks; clearing resets them */
    chunk_t *chunks;      /* every chunk, the one in use first... */
    chunk_t *spare;       /* ...and those emptied by a clear, for reuse */
    int height;           /* levels in use, >= 1 */
    size_t count;
    uint64_t bytes;
    uint64_t rng;
    fl__skl_node_t **tab;   /* the hash index; NULL until the first insert */
    size_t tab_size;        /* a power of two */
    uint64_t *filter;       /* 8 * tab_size bits: bit (hash >> 7) of every indexed node */
    fl__skl_node_t **loose; /* inserted, not yet linked; only while tab exists */
    size_t nloose, loose_cap;
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

static int random_height(fl__skl_t *s)
{
    int h = 1;
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    /* two bits per level: each further level with probability 1/4 */
    while (h < FL_SKL_MAX_HEIGHT && (x & 3) == 0) {
        h++;
        x >>= 2;
    }
    return h;
}

fl__skl_t *fl__skl_new(uint64_t seed)
{
    fl__skl_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->head = calloc(1, sizeof(fl__skl_node_t) + FL_SKL_MAX_HEIGHT * sizeof(fl__skl_node_t *));
    if (!s->head) {
        free(s);
        return NULL;
    }
    s->head->height = FL_SKL_MAX_HEIGHT;
    s->height = 1;
    s->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    return s;
}

static void node_release(fl__skl_node_t *n)
{
    if (n && !n->in_arena)
        free(n);
}

/* Memory for a node of size bytes from an arena map's chunks. */
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
    fl__skl_node_t *n, *next;
    if (!s)
        return;
    if (s->arena) {
        size_t kept = 0;
        for (chunk_t *c = s->spare; c; c = c->next)
            kept += c->size;
        while (s->chunks) { /* every node lives in them */
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
        for (n = s->head->next[0]; n; n = next) {
            next = n->next[0];
            free(n);
        }
        for (size_t i = 0; i < s->nloose; i++)
            free(s->loose[i]);
    }
    s->nloose = 0;
    memset(s->head->next, 0, FL_SKL_MAX_HEIGHT * sizeof(fl__skl_node_t *));
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
    s->height = 1;
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
    free(s->loose);
    free(s->head);
    free(s);
}

fl__skl_t *fl__skl_new_arena(uint64_t seed)
{
    fl__skl_t *s = fl__skl_new(seed);
    if (s)
        s->arena = true;
    return s;
}

fl__skl_node_t *fl__skl_node_new(fl__skl_t *s, const void *key, size_t klen, const void *val,
                                 size_t vlen, uint8_t flags)
{
    fl__skl_node_t *n;
    int h;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return NULL;
    h = random_height(s);
    size_t size = sizeof(*n) + (size_t)h * sizeof(fl__skl_node_t *) + klen + vlen;
    n = s->arena ? arena_alloc(s, size) : malloc(size);
    if (!n)
        return NULL;
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    n->height = (uint8_t)h;
    n->flags = flags;
    n->in_arena = s->arena;
    n->loose = 0;
    n->lidx = 0;
    n->hash = (uint32_t)fl__key_hash(key, klen);
    n->hnext = NULL;
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

/* Fills update[] with the last node before key at every level and returns
 * the first node >= key (NULL at the end). */
static fl__skl_node_t *find_ge(const fl__skl_t *s, const void *key, size_t klen,
                               fl__skl_node_t **update)
{
    fl__skl_node_t *x = s->head;
    for (int i = s->height - 1; i >= 0; i--) {
        fl__skl_node_t *nx;
        while ((nx = x->next[i]) && fl__key_cmp(node_key(nx), nx->klen, key, klen) < 0)
            x = nx;
        if (update)
            update[i] = x;
    }
    return x->next[0];
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
    for (fl__skl_node_t *n = s->head->next[0]; n; n = n->next[0])
        chain_add(s, n);
    for (size_t i = 0; i < s->nloose; i++)
        chain_add(s, s->loose[i]);
}

/* Unlinks linked node n from the levels (not from the index). */
static void unlink_levels(fl__skl_t *s, fl__skl_node_t *n)
{
    fl__skl_node_t *update[FL_SKL_MAX_HEIGHT];
    fl__skl_node_t *x = find_ge(s, node_key(n), n->klen, update);
    FL_STATE_CHECK(x == n);
    for (int i = 0; i < n->height; i++) {
        FL_STATE_CHECK(update[i]->next[i] == n);
        update[i]->next[i] = n->next[i];
    }
    while (s->height > 1 && !s->head->next[s->height - 1])
        s->height--;
}

/* Takes loose node n off the loose list (the last one takes its place). */
static void loose_drop(fl__skl_t *s, fl__skl_node_t *n)
{
    fl__skl_node_t *last = s->loose[--s->nloose];
    FL_STATE_CHECK(s->loose[n->lidx] == n);
    s->loose[n->lidx] = last;
    last->lidx = n->lidx;
    n->loose = 0;
}

/* Links n, whose key no linked node has. */
static void link_one(fl__skl_t *s, fl__skl_node_t *n)
{
    fl__skl_node_t *update[FL_SKL_MAX_HEIGHT];
    find_ge(s, node_key(n), n->klen, update);
    if (n->height > s->height) {
        for (int i = s->height; i < n->height; i++)
            update[i] = s->head;
        s->height = n->height;
    }
    for (int i = 0; i < n->height; i++) {
        n->next[i] = update[i]->next[i];
        update[i]->next[i] = n;
    }
}

static int cmp_node(const void *pa, const void *pb)
{
    const fl__skl_node_t *a = *(fl__skl_node_t *const *)pa, *b = *(fl__skl_node_t *const *)pb;
    return fl__key_cmp(node_key(a), a->klen, node_key(b), b->klen);
}

/* Links every loose node. Never fails: without memory for the merge the
 * nodes are linked one by one. */
static void settle(fl__skl_t *s)
{
    size_t k = s->nloose, linked = s->count - k;
    if (!k)
        return;
    qsort(s->loose, k, sizeof(*s->loose), cmp_node);
    fl__skl_node_t **all = k * 16 >= linked ? malloc(s->count * sizeof(*all)) : NULL;
    if (!all) {
        for (size_t i = 0; i < k; i++) {
            s->loose[i]->loose = 0;
            link_one(s, s->loose[i]);
        }
        s->nloose = 0;
        return;
    }
    /* merge the linked list with the sorted loose nodes, then relink */
    size_t o = 0, j = 0;
    for (fl__skl_node_t *x = s->head->next[0]; x; x = x->next[0]) {
        while (j < k && cmp_node(&s->loose[j], &x) < 0)
            all[o++] = s->loose[j++];
        all[o++] = x;
    }
    while (j < k)
        all[o++] = s->loose[j++];
    FL_STATE_CHECK(o == s->count);
    fl__skl_node_t *last[FL_SKL_MAX_HEIGHT];
    int height = 1;
    for (int i = 0; i < FL_SKL_MAX_HEIGHT; i++)
        last[i] = s->head;
    for (size_t i = 0; i < o; i++) {
        fl__skl_node_t *x = all[i];
        x->loose = 0;
        for (int l = 0; l < x->height; l++) {
            last[l]->next[l] = x;
            last[l] = x;
        }
        if (x->height > height)
            height = x->height;
    }
    for (int i = 0; i < FL_SKL_MAX_HEIGHT; i++)
        last[i]->next[i] = NULL;
    s->height = height;
    s->nloose = 0;
    free(all);
}

static fl__skl_node_t *index_find(const fl__skl_t *s, const void *key, size_t klen, uint32_t h)
{
    size_t w;
    uint64_t m = filter_bit(s, h, &w);
    if (!(s->filter[w] & m))
        return NULL;
    for (fl__skl_node_t *n = s->tab[h & (s->tab_size - 1)]; n; n = n->hnext)
        if (n->hash == h && n->klen == klen && memcmp(node_key(n), key, klen) == 0)
            return n;
    return NULL;
}

/* Takes n out of the map and frees it. */
static void drop(fl__skl_t *s, fl__skl_node_t *n)
{
    if (n->loose)
        loose_drop(s, n);
    else
        unlink_levels(s, n);
    if (s->tab)
        *chain_link(s, n) = n->hnext;
    FL_STATE_CHECK(s->count > 0);
    s->count--;
    s->bytes -= (uint64_t)n->klen + n->vlen;
    node_release(n);
}

void fl__skl_insert(fl__skl_t *s, fl__skl_node_t *n)
{
    index_reserve(s); /* before n is indexed: a rebuild walks the nodes */
    if (s->tab) {
        fl__skl_node_t *old = index_find(s, node_key(n), n->klen, n->hash);
        if (old && old->loose) { /* n takes its place in the loose list */
            s->loose[old->lidx] = n;
            n->lidx = old->lidx;
            n->loose = 1;
            old->loose = 0;
            *chain_link(s, old) = old->hnext;
            s->count--;
            s->bytes -= (uint64_t)old->klen + old->vlen;
            node_release(old);
        } else {
            if (old)
                drop(s, old);
            if (s->nloose == s->loose_cap) {
                size_t cap = s->loose_cap ? 2 * s->loose_cap : 256;
                fl__skl_node_t **l = realloc(s->loose, cap * sizeof(*l));
                if (l) {
                    s->loose = l;
                    s->loose_cap = cap;
                }
            }
            if (s->nloose < s->loose_cap) {
                n->lidx = (uint32_t)s->nloose;
                n->loose = 1;
                s->loose[s->nloose++] = n;
            } else {
                link_one(s, n);
            }
        }
        chain_add(s, n);
    } else { /* no memory for the index: no loose nodes either */
        fl__skl_node_t *old = find_ge(s, node_key(n), n->klen, NULL);
        if (old && fl__key_cmp(node_key(old), old->klen, node_key(n), n->klen) == 0)
            drop(s, old);
        link_one(s, n);
    }
    s->count++;
    s->bytes += (uint64_t)n->klen + n->vlen;
}

bool fl__skl_remove(fl__skl_t *s, const void *key, size_t klen)
{
    fl__skl_node_t *n = fl__skl_find(s, key, klen);
    if (!n)
        return false;
    drop(s, n);
    return true;
}

fl__skl_node_t *fl__skl_find(const fl__skl_t *s, const void *key, size_t klen)
{
    if (!s->tab) { /* no memory for the index: search the levels */
        fl__skl_node_t *n = find_ge(s, key, klen, NULL);
        return n && fl__key_cmp(node_key(n), n->klen, key, klen) == 0 ? n : NULL;
    }
    return index_find(s, key, klen, (uint32_t)fl__key_hash(key, klen));
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

fl__skl_node_t *fl__skl_seek(fl__skl_t *s, const void *key, size_t klen)
{
    settle(s);
    return find_ge(s, key, klen, NULL);
}

fl__skl_node_t *fl__skl_seek_before(fl__skl_t *s, const void *key, size_t klen, bool inclusive)
{
    fl__skl_node_t *update[FL_SKL_MAX_HEIGHT];
    settle(s);
    fl__skl_node_t *n = find_ge(s, key, klen, update);
    if (inclusive && n && fl__key_cmp(node_key(n), n->klen, key, klen) == 0)
        return n;
    return update[0] == s->head ? NULL : update[0];
}

fl__skl_node_t *fl__skl_last(fl__skl_t *s)
{
    settle(s);
    fl__skl_node_t *x = s->head;
    for (int i = s->height - 1; i >= 0; i--)
        while (x->next[i])
            x = x->next[i];
    return x == s->head ? NULL : x;
}

fl__skl_node_t *fl__skl_first(fl__skl_t *s)
{
    settle(s);
    return s->head->next[0];
}

fl__skl_node_t *fl__skl_next(const fl__skl_node_t *n)
{
    return n->next[0];
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
