/*
 * test_skl.c - the ordered map behind the pending batches and the
 * in-memory store, against a reference (a sorted array): keys in groups
 * that share their first 9 bytes (fl_skl.c), keys shorter than that and
 * of exactly that length, groups emptied and filled again, seeks now rare
 * and now after every change, clears midway.
 */
#include "fl_skl.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define KEYS 600

typedef struct ref {
    bool present[KEYS];
    int val[KEYS];
} ref_t;

/* Key i, in the order of i: ten keys per group "p%07d:" (9 bytes) -
 * the 8-byte "p%07d" (a group of its own, before the others), the group
 * key itself, then longer ones. */
/* A node's int value: values follow keys of any length, unaligned. */
static int node_int(const fl__skl_node_t *n)
{
    size_t vlen;
    int v;
    memcpy(&v, fl__skl_value(n, &vlen), sizeof(v));
    return v;
}

static int key_of(int i, char *buf)
{
    int g = i / 10, r = i % 10;
    if (r == 0)
        return snprintf(buf, 32, "p%07d", g);
    if (r == 1)
        return snprintf(buf, 32, "p%07d:", g);
    return snprintf(buf, 32, "p%07d:%c%s", g, 'a' + r, r % 3 ? "" : "-long-suffix");
}

static void check_walk(fl__skl_t *s, const ref_t *r)
{
    size_t count = 0;
    uint64_t bytes = 0;
    int i = 0;
    for (fl__skl_node_t *n = fl__skl_first(s); n; n = fl__skl_next(n)) {
        while (i < KEYS && !r->present[i])
            i++;
        cr_assert_lt(i, KEYS, "a node beyond the reference");
        char k[32];
        size_t klen, vlen;
        int kl = key_of(i, k);
        const void *key = fl__skl_key(n, &klen);
        fl__skl_value(n, &vlen);
        int v0 = node_int(n);
        cr_assert_eq(klen, (size_t)kl);
        cr_assert(memcmp(key, k, klen) == 0, "key %d out of order", i);
        cr_assert_eq(v0, r->val[i]);
        bytes += klen + vlen;
        count++;
        i++;
    }
    while (i < KEYS && !r->present[i])
        i++;
    cr_assert_eq(i, KEYS, "key %d missing from the walk", i);
    cr_assert_eq(fl__skl_count(s), count);
    cr_assert_eq(fl__skl_bytes(s), bytes);
}

static void check_seeks(fl__skl_t *s, const ref_t *r, int at)
{
    char k[32];
    int kl = key_of(at, k);
    int ge = at, lt = at - 1, le = at;
    while (ge < KEYS && !r->present[ge])
        ge++;
    while (lt >= 0 && !r->present[lt])
        lt--;
    while (le >= 0 && !r->present[le])
        le--;
    fl__skl_node_t *n = fl__skl_seek(s, k, (size_t)kl);
    cr_assert_eq(n != NULL, ge < KEYS);
    if (n)
        cr_assert_eq(node_int(n), r->val[ge]);
    n = fl__skl_seek_before(s, k, (size_t)kl, false);
    cr_assert_eq(n != NULL, lt >= 0);
    if (n)
        cr_assert_eq(node_int(n), r->val[lt]);
    n = fl__skl_seek_before(s, k, (size_t)kl, true);
    cr_assert_eq(n != NULL, le >= 0);
    if (n)
        cr_assert_eq(node_int(n), r->val[le]);
    int last = KEYS - 1;
    while (last >= 0 && !r->present[last])
        last--;
    n = fl__skl_last(s);
    cr_assert_eq(n != NULL, last >= 0);
    if (n)
        cr_assert_eq(node_int(n), r->val[last]);
}

static bool key_has(int i, const char *prefix, size_t plen)
{
    char k[32];
    int kl = key_of(i, k);
    return (size_t)kl >= plen && memcmp(k, prefix, plen) == 0;
}

static int val_of(const fl__skl_node_t *n)
{
    return n ? node_int(n) : -1;
}

/* The bounded operations from key at, within prefix: a group's 9 bytes,
 * longer, shorter, and the walk with fl__skl_next_in. */
static void check_bounded(fl__skl_t *s, const ref_t *r, int at, const char *prefix)
{
    char k[32];
    size_t plen = strlen(prefix);
    int kl = key_of(at, k);
    int ge = -1, lt = -1, le = -1;
    for (int i = 0; i < KEYS; i++) {
        if (!r->present[i] || !key_has(i, prefix, plen))
            continue;
        if (i >= at && ge < 0)
            ge = i;
        if (i < at)
            lt = i;
        if (i <= at)
            le = i;
    }
    fl__skl_node_t *n = fl__skl_seek_in(s, k, (size_t)kl, prefix, plen);
    cr_assert_eq(val_of(n), ge < 0 ? -1 : r->val[ge], "seek_in %d within %s", at, prefix);
    cr_assert_eq(val_of(fl__skl_seek_before_in(s, k, (size_t)kl, false, prefix, plen)),
                 lt < 0 ? -1 : r->val[lt], "seek_before_in %d within %s", at, prefix);
    cr_assert_eq(val_of(fl__skl_seek_before_in(s, k, (size_t)kl, true, prefix, plen)),
                 le < 0 ? -1 : r->val[le], "seek_before_in (inclusive) %d within %s", at, prefix);
    for (int i = ge < 0 ? KEYS : ge + 1; n; i++) { /* the walk meets every later key */
        n = fl__skl_next_in(n, prefix, plen);
        while (i < KEYS && !(r->present[i] && key_has(i, prefix, plen)))
            i++;
        cr_assert_eq(val_of(n), i < KEYS ? r->val[i] : -1, "next_in within %s", prefix);
    }
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* ordered_every: one ordered check per that many changes on average */
static void run_model(bool arena, uint64_t seed, int ordered_every, int steps)
{
    fl__skl_t *s = arena ? fl__skl_new_arena(seed) : fl__skl_new(seed);
    ref_t r = {0};
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    int next_val = 1;
    cr_assert(s);
    for (int step = 0; step < steps; step++) {
        int op = (int)(rnd(&x) % 100), i = (int)(rnd(&x) % KEYS);
        char k[32];
        int kl = key_of(i, k);
        if (op < 60) { /* insert or replace, with a value of varying size */
            int v[3] = {next_val++, 0, 0};
            size_t vlen = sizeof(int) * (1 + rnd(&x) % 3);
            if (rnd(&x) % 4 == 0 && fl__skl_overwrite(s, k, (size_t)kl, v, vlen, 0)) {
                cr_assert(r.present[i], "overwrite found an absent key");
            } else {
                fl__skl_node_t *n = fl__skl_node_new(s, k, (size_t)kl, v, vlen, 0);
                cr_assert(n);
                fl__skl_insert(s, n);
            }
            r.present[i] = true;
            r.val[i] = v[0];
        } else if (op < 80) {
            cr_assert_eq(fl__skl_remove(s, k, (size_t)kl), r.present[i]);
            r.present[i] = false;
        } else {
            fl__skl_node_t *n = fl__skl_find(s, k, (size_t)kl);
            cr_assert_eq(n != NULL, r.present[i]);
            if (n)
                cr_assert_eq(node_int(n), r.val[i]);
        }
        if (rnd(&x) % (uint64_t)ordered_every == 0)
            check_seeks(s, &r, (int)(rnd(&x) % KEYS));
        if (rnd(&x) % (uint64_t)ordered_every == 0) {
            int at = (int)(rnd(&x) % KEYS), g = at / 10 + (int)(rnd(&x) % 3) - 1;
            char p9[16], p10[16], p4[8];
            snprintf(p9, sizeof(p9), "p%07d:", g < 0 ? 0 : g);
            snprintf(p10, sizeof(p10), "p%07d:%c", g < 0 ? 0 : g, 'a' + (int)(rnd(&x) % 10));
            snprintf(p4, sizeof(p4), "p%03d", g / 1000); /* every group */
            check_bounded(s, &r, at, p9);
            check_bounded(s, &r, at, p10);
            check_bounded(s, &r, at, p4);
        }
        if (rnd(&x) % (uint64_t)(ordered_every * 8) == 0)
            check_walk(s, &r);
        if (step == steps / 2 && seed % 2) { /* a clear midway, as a commit does */
            fl__skl_clear(s);
            memset(&r, 0, sizeof(r));
            check_walk(s, &r);
        }
    }
    check_walk(s, &r);
    for (int i = 0; i < KEYS; i += 37)
        check_seeks(s, &r, i);
    fl__skl_free(s);
}

Test(skl, rare_ordered_operations)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        run_model(false, seed, 2000, 20000);
        run_model(true, seed, 2000, 20000);
    }
}

Test(skl, frequent_ordered_operations)
{
    for (uint64_t seed = 5; seed <= 8; seed++) {
        run_model(false, seed, 3, 20000);
        run_model(true, seed, 3, 20000);
    }
}

Test(skl, every_operation_ordered)
{
    run_model(false, 9, 1, 5000);
    run_model(true, 10, 1, 5000);
}
