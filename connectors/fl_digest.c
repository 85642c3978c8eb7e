/*
 * fl_digest.c - feed digests and differences (see fl_digest.h).
 */
#include "fl_digest.h"

#include "fl_grow.h"
#include "fl_partition.h"

#include <stdlib.h>
#include <string.h>

bool fl_feed_set_add_row(fl_feed_set_t *s, int64_t id, int64_t item, int64_t value, int64_t aux)
{
    fl_feed_entry_t *v = fl_grow(s->v, &s->cap, s->len, sizeof(*v), 4096);
    if (!v)
        return false;
    s->v = v;
    s->v[s->len++] = (fl_feed_entry_t){id, item, value, aux};
    s->sorted = false;
    return true;
}

bool fl_feed_set_add(fl_feed_set_t *s, int64_t user_id, int64_t post_id, int64_t created_at)
{
    return fl_feed_set_add_row(s, user_id, post_id, created_at, 0);
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const fl_feed_entry_t *a = pa, *b = pb;
    int c = cmp_i64(a->user_id, b->user_id);
    if (!c)
        c = cmp_i64(a->post_id, b->post_id);
    if (!c)
        c = cmp_i64(a->created_at, b->created_at);
    return c ? c : cmp_i64(a->aux, b->aux);
}

void fl_feed_set_sort(fl_feed_set_t *s)
{
    if (s->len)
        qsort(s->v, s->len, sizeof(*s->v), cmp_entry);
    size_t o = 0;
    for (size_t i = 0; i < s->len; i++)
        if (!o || cmp_entry(&s->v[i], &s->v[o - 1]))
            s->v[o++] = s->v[i];
    s->len = o;
    s->sorted = true;
}

void fl_feed_set_free(fl_feed_set_t *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* splitmix64's finalizer: a good 64-bit mix. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t fl_feed_user_digest(const fl_feed_entry_t *v, size_t n)
{
    uint64_t h = 0x6A09E667F3BCC908ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h = mix(h ^ (uint64_t)v[i].post_id);
        h = mix(h ^ (uint64_t)v[i].created_at);
        if (v[i].aux) /* a feed's digests stay what they were */
            h = mix(h ^ (uint64_t)v[i].aux);
    }
    return h;
}

/* The end of the run of entries of v[i]'s user. */
int64_t fl_digest_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h = mix(h);
    return (int64_t)(h ? h : 1);
}

static size_t user_end(const fl_feed_set_t *s, size_t i)
{
    size_t j = i;
    while (j < s->len && s->v[j].user_id == s->v[i].user_id)
        j++;
    return j;
}

size_t fl_feed_partition_digests(const fl_feed_set_t *s, int32_t partitions, uint64_t *out)
{
    size_t users = 0;
    memset(out, 0, sizeof(*out) * (size_t)partitions);
    for (size_t i = 0, j; i < s->len; i = j) {
        j = user_end(s, i);
        int64_t u = s->v[i].user_id;
        out[fl_partition_for_id(u, partitions)] +=
            mix((uint64_t)u ^ fl_feed_user_digest(&s->v[i], j - i));
        users++;
    }
    return users;
}

/* Entries of a[0..na) missing from b[0..nb) (both sorted), into out. */
static size_t minus(const fl_feed_entry_t *a, size_t na, const fl_feed_entry_t *b, size_t nb,
                    fl_feed_entry_t *out)
{
    size_t i = 0, j = 0, o = 0;
    while (i < na) {
        int c = j < nb ? cmp_entry(&a[i], &b[j]) : -1;
        if (c < 0)
            out[o++] = a[i++];
        else if (c > 0)
            j++;
        else
            i++, j++;
    }
    return o;
}

/* &s->v[i], also for an empty set (no arithmetic on a null pointer). */
static const fl_feed_entry_t *at(const fl_feed_set_t *s, size_t i)
{
    return s->v ? s->v + i : NULL;
}

size_t fl_feed_diff(const fl_feed_set_t *a, const fl_feed_set_t *b, fl_feed_diff_cb cb, void *ctx)
{
    size_t i = 0, j = 0, differ = 0;
    bool go = true;
    while (i < a->len || j < b->len) {
        int64_t ua = i < a->len ? a->v[i].user_id : INT64_MAX;
        int64_t ub = j < b->len ? b->v[j].user_id : INT64_MAX;
        int64_t u = ua < ub ? ua : ub;
        size_t ie = ua == u ? user_end(a, i) : i, je = ub == u ? user_end(b, j) : j;
        size_t na = ie - i, nb = je - j;
        const fl_feed_entry_t *va = at(a, i), *vb = at(b, j);
        if (na != nb || fl_feed_user_digest(va, na) != fl_feed_user_digest(vb, nb)) {
            differ++;
            if (cb && go) {
                fl_feed_entry_t *oa = malloc(sizeof(*oa) * (na + 1));
                fl_feed_entry_t *ob = malloc(sizeof(*ob) * (nb + 1));
                if (oa && ob)
                    go = cb(ctx, u, oa, minus(va, na, vb, nb, oa), ob, minus(vb, nb, va, na, ob));
                free(oa);
                free(ob);
            }
        }
        i = ie;
        j = je;
    }
    return differ;
}

int fl_feed_row_cmp_timeline(const fl_feed_entry_t *a, const fl_feed_entry_t *b)
{
    int c = cmp_i64(a->created_at, b->created_at);
    return c ? c : cmp_i64(a->post_id, b->post_id);
}

bool fl_feed_marks_merge(const fl_feed_set_t *m, fl_feed_set_t *marks, fl_feed_row_cmp cmp)
{
    fl_feed_set_t out = {0};
    size_t i = 0, j = 0;
    bool ok = true;
    while (ok && (i < m->len || j < marks->len)) {
        const fl_feed_entry_t *hi = NULL;
        int64_t u = i < m->len && (j == marks->len || m->v[i].user_id <= marks->v[j].user_id)
                        ? m->v[i].user_id
                        : marks->v[j].user_id;
        size_t ie = i < m->len && m->v[i].user_id == u ? user_end(m, i) : i;
        for (size_t k = i; k < ie; k++)
            if (!hi || cmp(&m->v[k], hi) > 0)
                hi = &m->v[k];
        if (j < marks->len && marks->v[j].user_id == u) {
            if (!hi || cmp(&marks->v[j], hi) > 0)
                hi = &marks->v[j];
            j++;
        }
        ok = fl_feed_set_add_row(&out, u, hi->post_id, hi->created_at, hi->aux);
        i = ie;
    }
    if (!ok) {
        fl_feed_set_free(&out);
        return false;
    }
    out.sorted = true; /* one row per user, in user order */
    fl_feed_set_free(marks);
    *marks = out;
    return true;
}

bool fl_feed_set_cut(const fl_feed_set_t *s, const fl_feed_set_t *marks, fl_feed_row_cmp cmp,
                     fl_feed_set_t *out, size_t *below)
{
    size_t j = 0;
    *below = 0;
    for (size_t i = 0; i < s->len; i++) {
        const fl_feed_entry_t *e = &s->v[i];
        while (j < marks->len && marks->v[j].user_id < e->user_id)
            j++;
        if (j < marks->len && marks->v[j].user_id == e->user_id && cmp(e, &marks->v[j]) <= 0) {
            (*below)++;
            continue;
        }
        if (!fl_feed_set_add_row(out, e->user_id, e->post_id, e->created_at, e->aux))
            return false;
    }
    out->sorted = true;
    return true;
}
