/*
 * fl_cache.c - bounded cache of committed values (see fl_cache.h).
 *
 * A chained hash table finds entries; a ring of entry pointers is the
 * CLOCK: each hit sets an entry's reference bit, and eviction sweeps the
 * ring from the hand, clearing bits, and drops the first entry found
 * without one. Removing an entry moves the ring's last entry into its
 * slot, so the ring stays dense.
 *
 * Admission: a key read once is not worth a slot (the timeline's
 * existence checks read each new key once, and would flush out the USER
 * entries read on every batch), so a read miss is admitted only when a
 * "doorkeeper" bitset (TinyLFU's) has seen the key since its last reset;
 * the first miss only marks it. Refreshes never admit.
 *
 * A membership bitset (one bit per key hash, never a false negative)
 * answers most lookups of absent keys without touching the table: every
 * commit refreshes each of its changes, and most were never cached. Bits
 * of evicted keys stay set until the set is rebuilt from the ring, after
 * as many insertions as it has bytes.
 *
 * Workload: one lookup per store read that misses the pending batch (the
 * timeline's per-recipient USER read), one refresh per committed change.
 * Entries are small (a 9-byte key and a 40-byte value for USER), so the
 * per-entry overhead is counted in the budget.
 */
#include "fl_cache.h"
#include "fl_state_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next; /* hash chain */
    uint64_t hash;
    uint32_t slot; /* index in the ring */
    uint32_t klen, vlen;
    uint8_t present, ref;
    uint8_t data[]; /* key, then value */
} entry_t;

struct fl__cache {
    entry_t **buckets;
    size_t nbuckets; /* a power of two */
    entry_t **ring;
    size_t n, ring_cap, hand;
    size_t bytes, max_bytes;
    uint64_t hits, misses, evictions;
    uint64_t *door; /* the doorkeeper: 2^door_log2 bits */
    unsigned door_log2;
    size_t door_marks, door_reset_at;
    uint64_t *member; /* bit (h >> 24) of every cached key's hash h: same size as door */
    size_t member_adds;
};

#define INITIAL_SLOTS 1024
/* The table's bucket and the ring's slot for each entry, plus malloc's own. */
#define ENTRY_OVERHEAD (sizeof(entry_t) + 2 * sizeof(void *) + 16)
/* No single entry may take more than this share of the budget. */
#define MAX_ENTRY_SHARE 8
/* Doorkeeper: about one bit per 8 bytes of budget, at least 2^12 and at
 * most 2^24 bits, cleared after bits/8 marks (two probes: ~5% false
 * admissions at worst). */
#define DOOR_MIN_LOG2 12
#define DOOR_MAX_LOG2 24

static size_t entry_size(size_t klen, size_t vlen)
{
    return ENTRY_OVERHEAD + klen + vlen;
}

/* Bytes of each of the two bitsets (doorkeeper, membership): 2^door_log2 bits. */
static size_t bitset_bytes(const fl__cache_t *c)
{
    return ((size_t)1 << c->door_log2) / 8;
}

fl__cache_t *fl__cache_new(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    fl__cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->max_bytes = max_bytes;
    c->nbuckets = INITIAL_SLOTS;
    c->ring_cap = INITIAL_SLOTS;
    c->door_log2 = DOOR_MIN_LOG2;
    while (c->door_log2 < DOOR_MAX_LOG2 && ((size_t)1 << c->door_log2) < max_bytes / 8)
        c->door_log2++;
    c->door_reset_at = bitset_bytes(c);
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    c->ring = malloc(c->ring_cap * sizeof(*c->ring));
    c->door = calloc(bitset_bytes(c), 1);
    c->member = calloc(bitset_bytes(c), 1);
    if (!c->buckets || !c->ring || !c->door || !c->member) {
        fl__cache_free(c);
        return NULL;
    }
    return c;
}

void fl__cache_clear(fl__cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->ring[i]);
    memset(c->buckets, 0, c->nbuckets * sizeof(*c->buckets));
    memset(c->member, 0, bitset_bytes(c));
    c->member_adds = 0;
    c->n = 0;
    c->hand = 0;
    c->bytes = 0;
}

void fl__cache_free(fl__cache_t *c)
{
    if (!c)
        return;
    if (c->buckets && c->ring && c->member)
        fl__cache_clear(c);
    free(c->buckets);
    free(c->ring);
    free(c->door);
    free(c->member);
    free(c);
}

/* Marks h in the doorkeeper; true when both its bits were set already. */
static bool door_seen(fl__cache_t *c, uint64_t h)
{
    uint64_t mask = ((uint64_t)1 << c->door_log2) - 1;
    uint64_t b1 = h & mask, b2 = (h >> 32) & mask;
    uint64_t *w1 = &c->door[b1 >> 6], *w2 = &c->door[b2 >> 6];
    uint64_t m1 = (uint64_t)1 << (b1 & 63), m2 = (uint64_t)1 << (b2 & 63);
    if ((*w1 & m1) && (*w2 & m2))
        return true;
    if (++c->door_marks > c->door_reset_at) {
        memset(c->door, 0, bitset_bytes(c));
        c->door_marks = 0;
    }
    *w1 |= m1;
    *w2 |= m2;
    return false;
}

static uint64_t member_bit(const fl__cache_t *c, uint64_t h, size_t *word)
{
    uint64_t b = (h >> 24) & (((uint64_t)1 << c->door_log2) - 1);
    *word = (size_t)(b >> 6);
    return (uint64_t)1 << (b & 63);
}

static bool member_maybe(const fl__cache_t *c, uint64_t h)
{
    size_t w;
    uint64_t m = member_bit(c, h, &w);
    return (c->member[w] & m) != 0;
}

/* Sets h's bit; rebuilds the set from the live entries first when bits
 * of evicted keys may have piled up. */
static void member_add(fl__cache_t *c, uint64_t h)
{
    size_t w, bytes = bitset_bytes(c);
    if (++c->member_adds > bytes) {
        memset(c->member, 0, bytes);
        for (size_t i = 0; i < c->n; i++) {
            uint64_t m = member_bit(c, c->ring[i]->hash, &w);
            c->member[w] |= m;
        }
        c->member_adds = c->n;
    }
    uint64_t m = member_bit(c, h, &w);
    c->member[w] |= m;
}

static entry_t **chain_of(fl__cache_t *c, uint64_t h)
{
    return &c->buckets[h & (c->nbuckets - 1)];
}

/* The link that points at the entry for key (*link NULL when absent). */
static entry_t **find_link(fl__cache_t *c, const void *key, size_t klen, uint64_t h)
{
    entry_t **link = chain_of(c, h);
    for (entry_t *e = *link; e; link = &e->next, e = e->next) {
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return link;
    }
    return link;
}

/* Unlinks e (found through link) from the table and the ring, and frees it. */
static void remove_entry(fl__cache_t *c, entry_t **link, entry_t *e)
{
    *link = e->next;
    size_t last = c->n - 1;
    if (e->slot != last) {
        c->ring[e->slot] = c->ring[last];
        c->ring[e->slot]->slot = e->slot;
    }
    c->n = last;
    if (c->hand >= c->n)
        c->hand = 0;
    c->bytes -= entry_size(e->klen, e->vlen);
    free(e);
}

static void evict_one(fl__cache_t *c)
{
    for (;;) {
        entry_t *e = c->ring[c->hand];
        if (e->ref) {
            e->ref = 0;
            c->hand = c->hand + 1 < c->n ? c->hand + 1 : 0;
            continue;
        }
        remove_entry(c, find_link(c, e->data, e->klen, e->hash), e);
        c->evictions++;
        return;
    }
}

/* Doubles the table; on allocation failure chains just grow longer. */
static void grow_table(fl__cache_t *c)
{
    size_t nb = c->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < c->n; i++) {
        entry_t *e = c->ring[i];
        entry_t **head = &b[e->hash & (nb - 1)];
        e->next = *head;
        *head = e;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

bool fl__cache_get(fl__cache_t *c, const void *key, size_t klen, const void **val, size_t *vlen,
                   bool *present)
{
    uint64_t h = fl__key_hash(key, klen);
    entry_t *e = member_maybe(c, h) ? *find_link(c, key, klen, h) : NULL;
    if (!e) {
        c->misses++;
        return false;
    }
    e->ref = 1;
    c->hits++;
    *present = e->present;
    *vlen = e->vlen;
    *val = e->data + e->klen;
    return true;
}

/* only_if_cached: a refresh; otherwise a read miss, subject to admission. */
static void store(fl__cache_t *c, const void *key, size_t klen, bool present, const void *val,
                  size_t vlen, bool only_if_cached)
{
    uint64_t h = fl__key_hash(key, klen);
    entry_t **link = NULL, *e = NULL;
    uint8_t ref = 0; /* a new entry earns its reference bit by a hit */

    if (member_maybe(c, h)) {
        link = find_link(c, key, klen, h);
        e = *link;
    } else if (only_if_cached) {
        return;
    }

    if (!present)
        vlen = 0;
    if (e && e->vlen == vlen) { /* same size: overwrite in place */
        e->present = present;
        if (vlen)
            memcpy(e->data + klen, val, vlen);
        return;
    }
    if (e) {
        ref = e->ref;
        remove_entry(c, link, e);
    } else if (only_if_cached || !door_seen(c, h)) {
        return;
    }
    size_t size = entry_size(klen, vlen);
    if (size > c->max_bytes / MAX_ENTRY_SHARE || klen > UINT32_MAX)
        return;
    if (c->n == c->ring_cap) {
        entry_t **r = realloc(c->ring, c->ring_cap * 2 * sizeof(*r));
        if (!r)
            return;
        c->ring = r;
        c->ring_cap *= 2;
    }
    while (c->n && c->bytes + size > c->max_bytes)
        evict_one(c);
    e = malloc(sizeof(*e) + klen + vlen);
    if (!e)
        return;
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->present = present;
    e->ref = ref;
    memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    if (c->n >= c->nbuckets)
        grow_table(c);
    link = chain_of(c, h);
    e->next = *link;
    *link = e;
    member_add(c, h);
    e->slot = (uint32_t)c->n;
    c->ring[c->n++] = e;
    c->bytes += size;
}

void fl__cache_put(fl__cache_t *c, const void *key, size_t klen, bool present, const void *val,
                   size_t vlen)
{
    store(c, key, klen, present, val, vlen, false);
}

void fl__cache_refresh(fl__cache_t *c, const void *key, size_t klen, bool present, const void *val,
                       size_t vlen)
{
    store(c, key, klen, present, val, vlen, true);
}

void fl__cache_stats(const fl__cache_t *c, fl__cache_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!c)
        return;
    st->hits = c->hits;
    st->misses = c->misses;
    st->evictions = c->evictions;
    st->entries = c->n;
    st->bytes = c->bytes;
    st->max_bytes = c->max_bytes;
}
