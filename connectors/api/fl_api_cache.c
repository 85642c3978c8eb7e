/*
 * fl_api_cache.c - the hydration cache (fl_api_cache.h): SHARDS shards,
 * each a FIFO ring of entries with a chained hash index over it. Keys are
 * id << 1 for posts, id << 1 | 1 for authors. Work per lookup: one hash,
 * a short chain walk and a copy of the entry's strings under the shard's
 * mutex; an insert over a full ring first unlinks the entry it replaces.
 */
#include "fl_api_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64

typedef struct entry {
    uint64_t key;
    int64_t at;
    uint32_t next; /* index + 1 in the ring of the next entry of the bucket */
    bool used;
    fl_post_t post; /* posts: text owned; authors: handle, display_name owned */
} entry_t;

typedef struct shard {
    pthread_mutex_t mu;
    entry_t *ring;
    size_t cap, head;
    uint32_t *buckets; /* index + 1, 0: empty */
    size_t n_buckets;  /* a power of two */
} shard_t;

struct fl_api_cache {
    int64_t ttl_ms;
    shard_t shards[SHARDS];
    atomic_uint_fast64_t hits, misses;
};

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

fl_api_cache_t *fl_api_cache_new(size_t max_entries, int64_t ttl_ms)
{
    fl_api_cache_t *c = calloc(1, sizeof(*c));
    size_t per = max_entries / SHARDS + 1;

    if (!c)
        return NULL;
    c->ttl_ms = ttl_ms;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        s->n_buckets = 1;
        while (s->n_buckets < per * 2)
            s->n_buckets <<= 1;
        s->cap = per;
        s->ring = calloc(per, sizeof(*s->ring));
        s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
        pthread_mutex_init(&s->mu, NULL);
        if (!s->ring || !s->buckets) {
            fl_api_cache_free(c);
            return NULL;
        }
    }
    return c;
}

void fl_api_cache_free(fl_api_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        for (size_t k = 0; s->ring && k < s->cap; k++)
            fl_post_clear(&s->ring[k].post);
        free(s->ring);
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

static shard_t *shard_of(fl_api_cache_t *c, uint64_t key, uint64_t *h)
{
    *h = mix(key);
    return &c->shards[*h % SHARDS];
}

/* The live entry for key, or NULL; the shard's mutex held. */
static entry_t *find(shard_t *s, uint64_t h, uint64_t key)
{
    for (uint32_t i = s->buckets[(h >> 8) & (s->n_buckets - 1)]; i; i = s->ring[i - 1].next)
        if (s->ring[i - 1].key == key)
            return &s->ring[i - 1];
    return NULL;
}

/* The entry to (re)write for key: the existing one, or the ring's oldest,
 * unlinked and emptied. */
static entry_t *slot_for(shard_t *s, uint64_t h, uint64_t key)
{
    entry_t *e = find(s, h, key);
    uint32_t *b;

    if (e) {
        fl_post_clear(&e->post);
        return e;
    }
    e = &s->ring[s->head];
    if (e->used) {
        uint64_t oh = mix(e->key);
        uint32_t self = (uint32_t)(s->head + 1);
        for (b = &s->buckets[(oh >> 8) & (s->n_buckets - 1)]; *b; b = &s->ring[*b - 1].next)
            if (*b == self) {
                *b = e->next;
                break;
            }
        fl_post_clear(&e->post);
    }
    b = &s->buckets[(h >> 8) & (s->n_buckets - 1)];
    e->key = key;
    e->used = true;
    e->next = *b;
    *b = (uint32_t)(s->head + 1);
    s->head = (s->head + 1) % s->cap;
    return e;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

bool fl_api_cache_get_post(fl_api_cache_t *c, int64_t post_id, int64_t now_ms, fl_post_t *out)
{
    uint64_t key = (uint64_t)post_id << 1, h;
    shard_t *s = shard_of(c, key, &h);
    entry_t *e;
    bool hit = false;

    pthread_mutex_lock(&s->mu);
    if ((e = find(s, h, key)) && now_ms - e->at < c->ttl_ms) {
        *out = e->post;
        out->handle = out->display_name = NULL;
        out->text = strdup(e->post.text ? e->post.text : "");
        hit = out->text != NULL;
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return hit;
}

void fl_api_cache_put_post(fl_api_cache_t *c, const fl_post_t *p, int64_t now_ms)
{
    uint64_t key = (uint64_t)p->post_id << 1, h;
    shard_t *s = shard_of(c, key, &h);
    char *text = strdup(p->text ? p->text : "");
    entry_t *e;

    if (!text || c->ttl_ms <= 0) {
        free(text);
        return;
    }
    pthread_mutex_lock(&s->mu);
    e = slot_for(s, h, key);
    e->post = *p;
    e->post.text = text;
    e->post.handle = e->post.display_name = NULL;
    e->at = now_ms;
    pthread_mutex_unlock(&s->mu);
}

bool fl_api_cache_get_user(fl_api_cache_t *c, int64_t user_id, int64_t now_ms, char **handle,
                           char **display_name)
{
    uint64_t key = (uint64_t)user_id << 1 | 1, h;
    shard_t *s = shard_of(c, key, &h);
    entry_t *e;
    bool hit = false;

    *handle = *display_name = NULL;
    pthread_mutex_lock(&s->mu);
    if ((e = find(s, h, key)) && now_ms - e->at < c->ttl_ms) {
        *handle = dup_or_null(e->post.handle);
        *display_name = dup_or_null(e->post.display_name);
        hit = !e->post.handle || (*handle && *display_name);
        if (!hit) {
            free(*handle);
            free(*display_name);
            *handle = *display_name = NULL;
        }
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return hit;
}

void fl_api_cache_put_user(fl_api_cache_t *c, int64_t user_id, const char *handle,
                           const char *display_name, int64_t now_ms)
{
    uint64_t key = (uint64_t)user_id << 1 | 1, h;
    shard_t *s = shard_of(c, key, &h);
    char *hd = dup_or_null(handle), *dn = dup_or_null(handle ? display_name : NULL);
    entry_t *e;

    if (c->ttl_ms <= 0 || (handle && (!hd || !dn))) {
        free(hd);
        free(dn);
        return;
    }
    pthread_mutex_lock(&s->mu);
    e = slot_for(s, h, key);
    memset(&e->post, 0, sizeof(e->post));
    e->post.handle = hd;
    e->post.display_name = dn;
    e->at = now_ms;
    pthread_mutex_unlock(&s->mu);
}

void fl_api_cache_stats(const fl_api_cache_t *c, uint64_t *hits, uint64_t *misses)
{
    *hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
    *misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
}
