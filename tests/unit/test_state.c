/*
 * test_state.c - the state-store library: key encodings, a model test of
 * the RocksDB and in-memory backends against a trivial reference (a sorted
 * array), atomic commit of state + offsets across reopen and kill -9, the
 * format-version check, bulk-restore mode.
 *
 * Every random test uses fixed seeds, so a failure names the seed and the
 * step and replays identically. RocksDB stores live in mkdtemp directories
 * under /tmp that the fixture removes, also after a failed assertion.
 */
#include <criterion/criterion.h>

#include "fl_keys.h"
#include "fl_kv.h"
#include "fl_kv_backend.h"

#include <ftw.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers: randomness, temp dirs ---- */

static uint64_t rnd_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return rnd_next(s) % n;
}

static int64_t rnd_i64(uint64_t *s)
{
    static const int64_t special[] = {INT64_MIN, INT64_MIN + 1, -2,       -1, 0, 1,
                                      2,         INT64_MAX - 1, INT64_MAX};
    uint64_t u;
    int64_t v;
    switch (rnd_below(s, 4)) {
    case 0:
        return special[rnd_below(s, sizeof(special) / sizeof(special[0]))];
    case 1:
        return (int64_t)rnd_below(s, 2001) - 1000;
    default:
        u = rnd_next(s);
        memcpy(&v, &u, sizeof(v));
        return v;
    }
}

#define MAX_DIRS 4
static char tmp_dirs[MAX_DIRS][64];
static int n_tmp_dirs;

static const char *mk_tmpdir(void)
{
    cr_assert_lt(n_tmp_dirs, MAX_DIRS);
    char *d = tmp_dirs[n_tmp_dirs];
    snprintf(d, sizeof(tmp_dirs[0]), "/tmp/fl_test_state_XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
    n_tmp_dirs++;
    return d;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tmpdirs(void)
{
    for (int i = 0; i < n_tmp_dirs; i++)
        nftw(tmp_dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    n_tmp_dirs = 0;
}

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static int sign(int64_t x)
{
    return x < 0 ? -1 : x > 0 ? 1 : 0;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

static fl_kv_t *open_rdb(const char *dir, bool bulk)
{
    fl_kv_rocksdb_opts_t o = {.bulk_restore = bulk};
    char err[512] = "";
    fl_kv_t *kv = NULL;
    fl_err_t rc = fl_kv_rocksdb_open(dir, &o, &kv, err, sizeof(err));
    cr_assert_eq(rc, FL_OK, "open %s: %s (%s)", dir, fl_err_str(rc), err);
    return kv;
}

static void close_ok(fl_kv_t *kv)
{
    char err[512] = "";
    fl_err_t rc = fl_kv_close(kv, err, sizeof(err));
    cr_assert_eq(rc, FL_OK, "close: %s", err);
}

/* ---- key encodings ---- */

Test(keys, i64_order_and_roundtrip)
{
    uint64_t s = 42;
    for (int i = 0; i < 200000; i++) {
        int64_t a = rnd_i64(&s), b = rnd_i64(&s);
        uint8_t ea[8], eb[8], da[8], db[8];
        fl_key_enc_i64(ea, a);
        fl_key_enc_i64(eb, b);
        fl_key_enc_i64_desc(da, a);
        fl_key_enc_i64_desc(db, b);
        cr_assert_eq(sign(memcmp(ea, eb, 8)), cmp_i64(a, b), "asc %" PRId64 " vs %" PRId64, a, b);
        cr_assert_eq(sign(memcmp(da, db, 8)), cmp_i64(b, a), "desc %" PRId64 " vs %" PRId64, a, b);
        cr_assert_eq(fl_key_dec_i64(ea), a);
        cr_assert_eq(fl_key_dec_i64_desc(da), a);
    }
    uint8_t lo[8], hi[8];
    fl_key_enc_i64(lo, INT64_MIN);
    fl_key_enc_i64(hi, INT64_MAX);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(lo[i], 0x00);
        cr_assert_eq(hi[i], 0xff);
    }
}

typedef struct {
    int64_t owner, t, post;
    fl_key_t key;
} recent_t;

static int recent_by_key(const void *a, const void *b)
{
    const recent_t *x = a, *y = b;
    return key_cmp(x->key.buf, x->key.len, y->key.buf, y->key.len);
}

Test(keys, recent_layout_order_and_roundtrip)
{
    enum { N = 5000 };
    static recent_t v[N];
    uint64_t s = 7;
    /* narrow ranges as well as wide ones, so ties on owner and time occur */
    for (int i = 0; i < N; i++) {
        bool narrow = rnd_below(&s, 2);
        v[i].owner = narrow ? (int64_t)rnd_below(&s, 5) - 2 : rnd_i64(&s);
        v[i].t = narrow ? (int64_t)rnd_below(&s, 5) - 2 : rnd_i64(&s);
        v[i].post = narrow ? (int64_t)rnd_below(&s, 5) - 2 : rnd_i64(&s);
        cr_assert_eq(fl_key_recent(&v[i].key, FL_KEY_TAG_TIMELINE, v[i].owner, v[i].t, v[i].post),
                     FL_OK);
        cr_assert_eq(v[i].key.len, 25);
    }
    qsort(v, N, sizeof(v[0]), recent_by_key);
    for (int i = 1; i < N; i++) {
        const recent_t *a = &v[i - 1], *b = &v[i];
        /* owner ascending, then created_at descending, then post_id descending */
        int c = cmp_i64(a->owner, b->owner);
        if (!c)
            c = cmp_i64(b->t, a->t);
        if (!c)
            c = cmp_i64(b->post, a->post);
        cr_assert_leq(c, 0, "tuple order broken at %d", i);
    }
    for (int i = 0; i < N; i++) {
        int64_t o, t, p;
        cr_assert_eq(
            fl_key_parse_recent(v[i].key.buf, v[i].key.len, FL_KEY_TAG_TIMELINE, &o, &t, &p),
            FL_OK);
        cr_assert(o == v[i].owner && t == v[i].t && p == v[i].post);
    }
}

/* Timeline keys sort oldest first within a user: (user, created_at, post)
 * ascending, and a user's keys all share the (TIMELINE, user) prefix. */
Test(keys, timeline_layout_order_and_roundtrip)
{
    uint64_t seed = 0x7113;
    for (int i = 0; i < 20000; i++) {
        int64_t a[3], b[3];
        fl_key_t ka, kb, prefix;
        for (int j = 0; j < 3; j++) {
            a[j] = rnd_i64(&seed) % 4;
            b[j] = rnd_below(&seed, 2) ? a[j] : rnd_i64(&seed);
        }
        cr_assert_eq(fl_key_timeline(&ka, a[0], a[1], a[2]), FL_OK);
        cr_assert_eq(fl_key_timeline(&kb, b[0], b[1], b[2]), FL_OK);
        int want = 0;
        for (int j = 0; j < 3 && !want; j++)
            want = a[j] < b[j] ? -1 : a[j] > b[j];
        int got = fl_key_cmp(ka.buf, ka.len, kb.buf, kb.len);
        cr_assert_eq(got < 0 ? -1 : got > 0, want);
        int64_t u, t, p;
        cr_assert_eq(fl_key_parse_timeline(ka.buf, ka.len, &u, &t, &p), FL_OK);
        cr_assert(u == a[0] && t == a[1] && p == a[2]);
        fl_key_entity(&prefix, FL_KEY_TAG_TIMELINE, a[0]);
        cr_assert_eq(memcmp(ka.buf, prefix.buf, prefix.len), 0);
    }
}

Test(keys, edge_and_entity_order_prefix_roundtrip)
{
    uint64_t s = 99;
    for (int i = 0; i < 50000; i++) {
        int64_t a1 = rnd_i64(&s), a2 = rnd_i64(&s), b1 = rnd_i64(&s), b2 = rnd_i64(&s);
        fl_key_t ka, kb, pa;
        if (rnd_below(&s, 3) == 0)
            b1 = a1;
        cr_assert_eq(fl_key_edge(&ka, FL_KEY_TAG_FOLLOWER, a1, a2), FL_OK);
        cr_assert_eq(fl_key_edge(&kb, FL_KEY_TAG_FOLLOWER, b1, b2), FL_OK);
        int want = cmp_i64(a1, b1) ? cmp_i64(a1, b1) : cmp_i64(a2, b2);
        cr_assert_eq(key_cmp(ka.buf, ka.len, kb.buf, kb.len), want);
        /* the entity key of `from` is a prefix of all its edges */
        cr_assert_eq(fl_key_entity(&pa, FL_KEY_TAG_FOLLOWER, a1), FL_OK);
        cr_assert_eq(pa.len, 9);
        cr_assert_eq(memcmp(pa.buf, ka.buf, pa.len), 0);
        int64_t f, t, id;
        cr_assert_eq(fl_key_parse_edge(ka.buf, ka.len, FL_KEY_TAG_FOLLOWER, &f, &t), FL_OK);
        cr_assert(f == a1 && t == a2);
        cr_assert_eq(fl_key_parse_entity(pa.buf, pa.len, FL_KEY_TAG_FOLLOWER, &id), FL_OK);
        cr_assert_eq(id, a1);
    }
}

Test(keys, truncated_foreign_and_bad_keys_rejected)
{
    fl_key_t k;
    int64_t a, b, c;
    cr_assert_eq(fl_key_recent(&k, FL_KEY_TAG_OUTBOX, 1, 2, 3), FL_OK);
    for (size_t len = 0; len < k.len; len++)
        cr_assert_eq(fl_key_parse_recent(k.buf, len, FL_KEY_TAG_OUTBOX, &a, &b, &c),
                     FL_ERR_TRUNCATED, "prefix of %zu bytes", len);
    cr_assert_eq(fl_key_parse_recent(NULL, 0, FL_KEY_TAG_OUTBOX, &a, &b, &c), FL_ERR_TRUNCATED);
    /* trailing bytes, wrong tag, another layout */
    uint8_t longer[26];
    memcpy(longer, k.buf, 25);
    longer[25] = 0;
    cr_assert_eq(fl_key_parse_recent(longer, 26, FL_KEY_TAG_OUTBOX, &a, &b, &c), FL_ERR_INVALID);
    cr_assert_eq(fl_key_parse_recent(k.buf, k.len, FL_KEY_TAG_TIMELINE, &a, &b, &c),
                 FL_ERR_INVALID);
    cr_assert_eq(fl_key_parse_edge(k.buf, k.len, FL_KEY_TAG_OUTBOX, &a, &b), FL_ERR_INVALID);
    cr_assert_eq(fl_key_parse_entity(k.buf, 8, FL_KEY_TAG_OUTBOX, &a), FL_ERR_TRUNCATED);
    /* tag 0 is metadata; a tag must come first */
    cr_assert_eq(fl_key_entity(&k, 0, 5), FL_ERR_INVALID);
    fl_key_init(&k);
    fl_key_append_i64(&k, 1);
    fl_key_append_tag(&k, FL_KEY_TAG_POST);
    cr_assert_eq(fl_key_status(&k), FL_ERR_INVALID);
    /* overflow is sticky and leaves the length within bounds */
    fl_key_init(&k);
    fl_key_append_tag(&k, FL_KEY_TAG_POST);
    for (int i = 0; i < 10; i++)
        fl_key_append_i64(&k, i);
    fl_key_append_u8(&k, 1);
    cr_assert_eq(fl_key_status(&k), FL_ERR_OVERSIZED);
    cr_assert_leq(k.len, FL_KEY_MAX);
    /* the reader checks the tag position */
    fl_key_reader_t r;
    uint8_t u;
    fl_key_reader_init(&r, "\x30", 1);
    cr_assert_eq(fl_key_read_u8(&r, &u), FL_OK);
    cr_assert_eq(fl_key_read_tag(&r, 0x30), FL_ERR_INVALID);
    cr_assert_eq(fl_key_read_u8(&r, &u), FL_ERR_TRUNCATED);
    cr_assert_eq(fl_key_read_end(&r), FL_OK);
}

/* ---- basic store behaviour, run on both backends ---- */

static void basic_checks(fl_kv_t *kv)
{
    char err[256];
    void *v;
    size_t vl;
    bool found;
    uint8_t buf[8];

    cr_assert_eq(fl_kv_get(kv, "\x01k", 2, &v, &vl, &found, err, sizeof(err)), FL_OK);
    cr_assert(!found && v == NULL);
    cr_assert_eq(fl_kv_put(kv, "\x01k", 2, "hello", 5, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_get(kv, "\x01k", 2, &v, &vl, &found, err, sizeof(err)), FL_OK);
    cr_assert(found && vl == 5 && !memcmp(v, "hello", 5));
    free(v);
    /* an empty value is found and non-NULL */
    cr_assert_eq(fl_kv_put(kv,
                           "\x01"
                           "e",
                           2, "", 0, err, sizeof(err)),
                 FL_OK);
    cr_assert_eq(fl_kv_get(kv,
                           "\x01"
                           "e",
                           2, &v, &vl, &found, err, sizeof(err)),
                 FL_OK);
    cr_assert(found && vl == 0 && v != NULL);
    free(v);
    /* caller buffer: fits, and does not fit */
    cr_assert_eq(fl_kv_get_buf(kv, "\x01k", 2, buf, 5, &vl, &found, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_get_buf(kv, "\x01k", 2, buf, 4, &vl, &found, err, sizeof(err)),
                 FL_ERR_OVERSIZED);
    cr_assert(found && vl == 5);
    /* delete, and delete of an absent key */
    cr_assert_eq(fl_kv_delete(kv, "\x01k", 2, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_delete(kv, "\x01k", 2, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_get_buf(kv, "\x01k", 2, buf, 4, &vl, &found, err, sizeof(err)), FL_OK);
    cr_assert(!found);
    /* reserved, empty and oversized keys; oversized values */
    cr_assert_eq(fl_kv_put(kv, FL_KV_META_VERSION_KEY, 2, "x", 1, err, sizeof(err)),
                 FL_ERR_INVALID);
    cr_assert(strstr(err, "reserved") != NULL, "%s", err);
    cr_assert_eq(fl_kv_delete(kv, "\x00", 1, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_get(kv, "\x00v", 2, &v, &vl, &found, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_put(kv, "", 0, "x", 1, err, sizeof(err)), FL_ERR_INVALID);
    static uint8_t big[FL_KV_VALUE_MAX + 1];
    big[0] = 1;
    cr_assert_eq(fl_kv_put(kv, big, FL_KV_KEY_MAX + 1, "x", 1, err, sizeof(err)), FL_ERR_OVERSIZED);
    cr_assert_eq(fl_kv_put(kv, "\x01k", 2, big, sizeof(big), err, sizeof(err)), FL_ERR_OVERSIZED);
    cr_assert_eq(fl_kv_put(kv, "\x01k", 2, big, FL_KV_VALUE_MAX, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_put(kv, big, FL_KV_KEY_MAX, "x", 1, err, sizeof(err)), FL_OK);
    fl_kv_iter_t *it;
    cr_assert_eq(fl_kv_iter_new(kv, "\x00", 1, &it, err, sizeof(err)), FL_ERR_INVALID);
    /* user iteration never shows metadata */
    fl_kv_batch_t *b = fl_kv_batch_new();
    cr_assert_eq(fl_kv_batch_set_offset(b, "posts", 0, 10, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_batch_commit(kv, b, err, sizeof(err)), FL_OK);
    fl_kv_batch_free(b);
    cr_assert_eq(fl_kv_iter_new(kv, NULL, 0, &it, err, sizeof(err)), FL_OK);
    int n = 0;
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it)) {
        size_t kl;
        const uint8_t *k = fl_kv_iter_key(it, &kl);
        cr_assert_neq(k[0], 0);
        n++;
    }
    cr_assert_eq(n, 3);
    cr_assert_eq(fl_kv_iter_status(it, err, sizeof(err)), FL_OK);
    fl_kv_iter_free(it);
}

Test(kv, basic_memory)
{
    fl_kv_t *kv = fl_kv_mem_new();
    cr_assert_not_null(kv);
    cr_assert_str_eq(fl_kv_name(kv), "memory");
    basic_checks(kv);
    fl_kv_stats_t st;
    cr_assert_eq(fl_kv_stats(kv, &st, NULL, 0), FL_OK);
    cr_assert_eq(st.entries, 3); /* metadata not counted */
    fl_kv_free(kv);
    fl_kv_free(NULL);
    cr_assert_eq(fl_kv_close(NULL, NULL, 0), FL_OK);
}

Test(kv, basic_rocksdb, .fini = rm_tmpdirs)
{
    fl_kv_t *kv = open_rdb(mk_tmpdir(), false);
    cr_assert_str_eq(fl_kv_name(kv), "rocksdb");
    basic_checks(kv);
    fl_kv_stats_t st;
    cr_assert_eq(fl_kv_stats(kv, &st, NULL, 0), FL_OK);
    cr_assert_gt(st.entries, 0);
    cr_assert_eq(fl_kv_flush(kv, NULL, 0), FL_OK);
    close_ok(kv);
}

/* ---- the model test ---- */

typedef struct {
    uint8_t *k, *v;
    size_t kl, vl;
} ent_t;

typedef struct {
    ent_t *e;
    size_t n, cap;
} ref_t;

static size_t ref_lb(const ref_t *r, const void *k, size_t kl)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (key_cmp(r->e[mid].k, r->e[mid].kl, k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const ent_t *ref_get(const ref_t *r, const void *k, size_t kl)
{
    size_t i = ref_lb(r, k, kl);
    if (i < r->n && key_cmp(r->e[i].k, r->e[i].kl, k, kl) == 0)
        return &r->e[i];
    return NULL;
}

static void *memdup(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    cr_assert_not_null(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

static void ref_put(ref_t *r, const void *k, size_t kl, const void *v, size_t vl)
{
    size_t i = ref_lb(r, k, kl);
    if (i < r->n && key_cmp(r->e[i].k, r->e[i].kl, k, kl) == 0) {
        free(r->e[i].v);
        r->e[i].v = memdup(v, vl);
        r->e[i].vl = vl;
        return;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->e = realloc(r->e, r->cap * sizeof(*r->e));
        cr_assert_not_null(r->e);
    }
    memmove(&r->e[i + 1], &r->e[i], (r->n - i) * sizeof(*r->e));
    r->e[i] = (ent_t){memdup(k, kl), memdup(v, vl), kl, vl};
    r->n++;
}

static void ref_del(ref_t *r, const void *k, size_t kl)
{
    size_t i = ref_lb(r, k, kl);
    if (i < r->n && key_cmp(r->e[i].k, r->e[i].kl, k, kl) == 0) {
        free(r->e[i].k);
        free(r->e[i].v);
        memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(*r->e));
        r->n--;
    }
}

static void ref_free(ref_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].k);
        free(r->e[i].v);
    }
    free(r->e);
    memset(r, 0, sizeof(*r));
}

static const char *const topics[] = {"posts", "follows", "feedline.fanout-out"};
#define N_TOPICS     3
#define N_PARTITIONS 3

typedef struct {
    uint64_t rng;
    unsigned seed;
    int step;
    const char *dir;
    fl_kv_t *store[2]; /* 0: memory, 1: rocksdb */
    bool bulk;         /* the RocksDB store is open in bulk-restore mode */
    ref_t ref;
    int64_t offsets[N_TOPICS][N_PARTITIONS]; /* -1: never set */
} model_t;

static const char *const store_names[2] = {"memory", "rocksdb"};

/* A key from a small universe (~180 keys) so that writes collide and
 * prefixes nest: the three feedline layouts plus raw keys of 1..3 bytes
 * built from edge bytes. */
static size_t gen_key(model_t *m, uint8_t *out)
{
    static const int64_t ids[] = {INT64_MIN, -1, 0, 1, 7, INT64_MAX};
    static const uint8_t first[] = {0x01, 0x10, 0xff};
    static const uint8_t rest[] = {0x00, 0x01, 0x7f, 0xfe, 0xff};
    fl_key_t k;
    size_t len;
    switch (rnd_below(&m->rng, 4)) {
    case 0:
        fl_key_recent(&k, FL_KEY_TAG_TIMELINE, ids[rnd_below(&m->rng, 4)],
                      ids[rnd_below(&m->rng, 6)], ids[rnd_below(&m->rng, 2) + 2]);
        break;
    case 1:
        fl_key_edge(&k, FL_KEY_TAG_FOLLOWER, ids[rnd_below(&m->rng, 5)],
                    ids[rnd_below(&m->rng, 5)]);
        break;
    case 2:
        fl_key_entity(&k, FL_KEY_TAG_POST, ids[rnd_below(&m->rng, 6)]);
        break;
    default:
        len = 1 + rnd_below(&m->rng, 3);
        out[0] = first[rnd_below(&m->rng, 3)];
        for (size_t i = 1; i < len; i++)
            out[i] = rest[rnd_below(&m->rng, 5)];
        return len;
    }
    cr_assert_eq(fl_key_status(&k), FL_OK);
    memcpy(out, k.buf, k.len);
    return k.len;
}

static size_t gen_value(model_t *m, uint8_t *out, size_t cap)
{
    size_t len = rnd_below(&m->rng, 10) == 0 ? rnd_below(&m->rng, cap) : rnd_below(&m->rng, 40);
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)rnd_next(&m->rng);
    return len;
}

#define CTX "seed %u step %d" /* callers pass m->seed, m->step last */

static void model_check_all(model_t *m)
{
    char err[512];
    for (int s = 0; s < 2; s++) {
        fl_kv_iter_t *it;
        size_t i = 0;
        cr_assert_eq(fl_kv_iter_new(m->store[s], NULL, 0, &it, err, sizeof(err)), FL_OK);
        for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it), i++) {
            size_t kl, vl;
            const void *k = fl_kv_iter_key(it, &kl);
            const void *v = fl_kv_iter_value(it, &vl);
            cr_assert_lt(i, m->ref.n, "%s has extra entries; " CTX, store_names[s], m->seed,
                         m->step);
            cr_assert(key_cmp(k, kl, m->ref.e[i].k, m->ref.e[i].kl) == 0,
                      "%s key %zu differs; " CTX, store_names[s], i, m->seed, m->step);
            cr_assert(vl == m->ref.e[i].vl && (vl == 0 || !memcmp(v, m->ref.e[i].v, vl)),
                      "%s value %zu differs; " CTX, store_names[s], i, m->seed, m->step);
        }
        cr_assert_eq(fl_kv_iter_status(it, err, sizeof(err)), FL_OK, "%s", err);
        cr_assert_eq(i, m->ref.n, "%s has %zu entries, reference %zu; " CTX, store_names[s], i,
                     m->ref.n, m->seed, m->step);
        fl_kv_iter_free(it);
    }
    fl_kv_stats_t st;
    cr_assert_eq(fl_kv_stats(m->store[0], &st, err, sizeof(err)), FL_OK);
    cr_assert_eq(st.entries, m->ref.n, CTX, m->seed, m->step);
}

static void model_check_offsets(model_t *m)
{
    char err[512];
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < N_TOPICS; t++)
            for (int p = 0; p < N_PARTITIONS; p++) {
                int64_t off;
                bool found;
                cr_assert_eq(
                    fl_kv_get_offset(m->store[s], topics[t], p, &off, &found, err, sizeof(err)),
                    FL_OK, "%s", err);
                cr_assert_eq(found, m->offsets[t][p] >= 0, "%s %s/%d; " CTX, store_names[s],
                             topics[t], p, m->seed, m->step);
                if (found)
                    cr_assert_eq(off, m->offsets[t][p], "%s %s/%d; " CTX, store_names[s], topics[t],
                                 p, m->seed, m->step);
            }
}

static void model_put(model_t *m, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    char err[512];
    for (int s = 0; s < 2; s++)
        cr_assert_eq(fl_kv_put(m->store[s], k, kl, v, vl, err, sizeof(err)), FL_OK, "%s", err);
    ref_put(&m->ref, k, kl, v, vl);
}

static void model_del(model_t *m, const uint8_t *k, size_t kl)
{
    char err[512];
    for (int s = 0; s < 2; s++)
        cr_assert_eq(fl_kv_delete(m->store[s], k, kl, err, sizeof(err)), FL_OK, "%s", err);
    ref_del(&m->ref, k, kl);
}

static void op_get(model_t *m)
{
    uint8_t k[64];
    char err[512];
    size_t kl = gen_key(m, k);
    const ent_t *want = ref_get(&m->ref, k, kl);
    for (int s = 0; s < 2; s++) {
        void *v;
        size_t vl;
        bool found;
        cr_assert_eq(fl_kv_get(m->store[s], k, kl, &v, &vl, &found, err, sizeof(err)), FL_OK);
        cr_assert_eq(found, want != NULL, "%s get; " CTX, store_names[s], m->seed, m->step);
        if (want)
            cr_assert(vl == want->vl && !memcmp(v, want->v, vl), "%s value; " CTX, store_names[s],
                      m->seed, m->step);
        free(v);
        /* and through a caller buffer of random size */
        uint8_t buf[64];
        size_t cap = rnd_below(&m->rng, sizeof(buf) + 1);
        fl_err_t rc = fl_kv_get_buf(m->store[s], k, kl, buf, cap, &vl, &found, NULL, 0);
        cr_assert_eq(found, want != NULL);
        if (want) {
            cr_assert_eq(vl, want->vl);
            cr_assert_eq(rc, vl > cap ? FL_ERR_OVERSIZED : FL_OK);
            if (rc == FL_OK)
                cr_assert(!memcmp(buf, want->v, vl));
        }
    }
}

static bool has_prefix(const ent_t *e, const uint8_t *p, size_t pl)
{
    return e->kl >= pl && (pl == 0 || !memcmp(e->k, p, pl));
}

/* Expected entry: the first within the prefix at or after key (strictly
 * after if strict), or with !forward the last at or before it; key NULL
 * means past the end in that direction. A linear scan, as plain as it gets. */
static const ent_t *ref_cursor(const model_t *m, const uint8_t *p, size_t pl, const void *key,
                               size_t kl, bool forward, bool strict)
{
    for (size_t j = 0; j < m->ref.n; j++) {
        const ent_t *e = &m->ref.e[forward ? j : m->ref.n - 1 - j];
        int c = key ? key_cmp(e->k, e->kl, key, kl) : (forward ? 1 : -1);
        if (!has_prefix(e, p, pl))
            continue;
        if (forward ? (strict ? c > 0 : c >= 0) : (strict ? c < 0 : c <= 0))
            return e;
    }
    return NULL;
}

static void expect_iter(model_t *m, fl_kv_iter_t *it, int s, const ent_t *want, const char *what)
{
    size_t kl, vl;
    const void *k, *v;
    cr_assert_eq(fl_kv_iter_valid(it), want != NULL, "%s %s valid; " CTX, store_names[s], what,
                 m->seed, m->step);
    if (!want) {
        cr_assert_eq(fl_kv_iter_status(it, NULL, 0), FL_OK);
        return;
    }
    k = fl_kv_iter_key(it, &kl);
    v = fl_kv_iter_value(it, &vl);
    cr_assert(key_cmp(k, kl, want->k, want->kl) == 0, "%s %s key; " CTX, store_names[s], what,
              m->seed, m->step);
    cr_assert(vl == want->vl && (vl == 0 || !memcmp(v, want->v, vl)), "%s %s value; " CTX,
              store_names[s], what, m->seed, m->step);
}

/* Iterates both stores side by side from a random start within a random
 * prefix, in random directions, sometimes writing to the store between
 * steps. */
static void op_iterate(model_t *m)
{
    uint8_t p[64], seek[64], cur[64], curv[8192];
    size_t pl, sl, curl = 0, curvl = 0;
    int start = (int)rnd_below(&m->rng, 4);
    bool forward = start < 2;
    fl_kv_iter_t *it[2];
    char err[512];
    const ent_t *want;

    pl = gen_key(m, p);
    pl = rnd_below(&m->rng, 4) == 0 ? 0 : rnd_below(&m->rng, pl + 1);
    sl = gen_key(m, seek);
    if (rnd_below(&m->rng, 2)) {
        /* often start inside the prefix */
        memcpy(seek, p, pl);
        if (sl < pl)
            sl = pl;
    }
    for (int s = 0; s < 2; s++) {
        cr_assert_eq(fl_kv_iter_new(m->store[s], p, pl, &it[s], err, sizeof(err)), FL_OK, "%s",
                     err);
        switch (start) {
        case 0:
            fl_kv_iter_seek_first(it[s]);
            break;
        case 1:
            fl_kv_iter_seek(it[s], seek, sl);
            break;
        case 2:
            fl_kv_iter_seek_last(it[s]);
            break;
        default:
            fl_kv_iter_seek_for_prev(it[s], seek, sl);
            break;
        }
    }
    if (start == 0 || start == 2)
        want = ref_cursor(m, p, pl, NULL, 0, forward, false);
    else
        want = ref_cursor(m, p, pl, seek, sl, forward, false);
    for (int steps = 0; steps < 60; steps++) {
        for (int s = 0; s < 2; s++)
            expect_iter(m, it[s], s, want, forward ? "forward" : "backward");
        if (!want)
            break;
        curl = want->kl;
        curvl = want->vl;
        memcpy(cur, want->k, curl);
        memcpy(curv, want->v, curvl);
        if (rnd_below(&m->rng, 8) == 0) {
            /* a write while iterating: the current entry stays readable */
            uint8_t k[64], v[64];
            size_t kl;
            switch (rnd_below(&m->rng, 4)) {
            case 0:
                model_del(m, cur, curl);
                break;
            case 1:
                model_put(m, cur, curl, v, gen_value(m, v, sizeof(v)));
                break;
            case 2:
                kl = gen_key(m, k);
                model_put(m, k, kl, v, gen_value(m, v, sizeof(v)));
                break;
            default:
                kl = gen_key(m, k);
                model_del(m, k, kl);
                break;
            }
            ent_t saved = {cur, curv, curl, curvl};
            for (int s = 0; s < 2; s++)
                expect_iter(m, it[s], s, &saved, "after write");
        }
        if (rnd_below(&m->rng, 7) == 0)
            forward = !forward;
        for (int s = 0; s < 2; s++) {
            if (forward)
                fl_kv_iter_next(it[s]);
            else
                fl_kv_iter_prev(it[s]);
        }
        want = ref_cursor(m, p, pl, cur, curl, forward, true);
    }
    for (int s = 0; s < 2; s++)
        fl_kv_iter_free(it[s]);
}

typedef struct {
    ent_t *seen;
    size_t n, cap, stop_after;
} scan_list_t;

static int scan_list(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    scan_list_t *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->seen = realloc(l->seen, l->cap * sizeof(*l->seen));
    }
    l->seen[l->n++] = (ent_t){memdup(k, kl), memdup(v, vl), kl, vl};
    return l->stop_after && l->n >= l->stop_after;
}

static void op_scan(model_t *m)
{
    uint8_t p[64];
    size_t pl = gen_key(m, p);
    size_t stop = rnd_below(&m->rng, 3) == 0 ? 1 + rnd_below(&m->rng, 5) : 0;
    char err[512];
    pl = rnd_below(&m->rng, pl + 1);
    for (int s = 0; s < 2; s++) {
        scan_list_t l = {NULL, 0, 0, stop};
        size_t i = pl ? ref_lb(&m->ref, p, pl) : 0, j;
        cr_assert_eq(fl_kv_scan_prefix(m->store[s], p, pl, scan_list, &l, err, sizeof(err)), FL_OK,
                     "%s", err);
        for (j = 0; j < l.n; j++, i++) {
            cr_assert_lt(i, m->ref.n);
            cr_assert(has_prefix(&m->ref.e[i], p, pl), "%s scan; " CTX, store_names[s], m->seed,
                      m->step);
            cr_assert(key_cmp(l.seen[j].k, l.seen[j].kl, m->ref.e[i].k, m->ref.e[i].kl) == 0);
            cr_assert(l.seen[j].vl == m->ref.e[i].vl &&
                      !memcmp(l.seen[j].v, m->ref.e[i].v, l.seen[j].vl));
            free(l.seen[j].k);
            free(l.seen[j].v);
        }
        if (!stop || l.n < stop)
            cr_assert(i == m->ref.n || !has_prefix(&m->ref.e[i], p, pl), "%s scan short; " CTX,
                      store_names[s], m->seed, m->step);
        free(l.seen);
    }
}

static void op_batch(model_t *m)
{
    fl_kv_batch_t *b[2] = {fl_kv_batch_new(), fl_kv_batch_new()};
    int n = 1 + (int)rnd_below(&m->rng, 20);
    bool discard = rnd_below(&m->rng, 15) == 0;
    /* ops are applied to the reference only if the batch is committed:
     * record them as (key, value or tombstone) in order */
    struct {
        uint8_t k[64], v[300];
        size_t kl, vl;
        bool del;
    } *ops = calloc((size_t)n, sizeof(*ops));
    int64_t offs[N_TOPICS][N_PARTITIONS];
    char err[512];

    cr_assert(b[0] && b[1] && ops);
    memcpy(offs, m->offsets, sizeof(offs));
    for (int i = 0; i < n; i++) {
        if (i > 0 && rnd_below(&m->rng, 4) == 0) {
            /* hit a key of this batch again */
            int j = (int)rnd_below(&m->rng, (uint64_t)i);
            memcpy(ops[i].k, ops[j].k, ops[i].kl = ops[j].kl);
        } else {
            ops[i].kl = gen_key(m, ops[i].k);
        }
        ops[i].del = rnd_below(&m->rng, 3) == 0;
        if (!ops[i].del)
            ops[i].vl = gen_value(m, ops[i].v, sizeof(ops[i].v));
    }
    /* Half the batches add their keys in ascending order (a stable sort:
     * a key written twice keeps its order), as a store's commit does; a
     * repeated key then moves the batch's run into its map midway. */
    if (rnd_below(&m->rng, 2) == 0) {
        for (int i = 1; i < n; i++) {
            for (int j = i; j > 0 && key_cmp(ops[j - 1].k, ops[j - 1].kl, ops[j].k, ops[j].kl) > 0;
                 j--) {
                uint8_t tmp[sizeof(*ops)];
                memcpy(tmp, &ops[j], sizeof(*ops));
                memcpy(&ops[j], &ops[j - 1], sizeof(*ops));
                memcpy(&ops[j - 1], tmp, sizeof(*ops));
            }
        }
    }
    for (int i = 0; i < n; i++) {
        for (int s = 0; s < 2; s++) {
            fl_err_t rc = ops[i].del
                              ? fl_kv_batch_delete(b[s], ops[i].k, ops[i].kl, err, sizeof(err))
                              : fl_kv_batch_put(b[s], ops[i].k, ops[i].kl, ops[i].v, ops[i].vl, err,
                                                sizeof(err));
            cr_assert_eq(rc, FL_OK, "%s", err);
        }
        if (rnd_below(&m->rng, 3) == 0) {
            int t = (int)rnd_below(&m->rng, N_TOPICS), p = (int)rnd_below(&m->rng, N_PARTITIONS);
            int64_t off =
                rnd_below(&m->rng, 10) == 0 ? INT64_MAX : (int64_t)rnd_below(&m->rng, 1000000);
            for (int s = 0; s < 2; s++)
                cr_assert_eq(fl_kv_batch_set_offset(b[s], topics[t], p, off, err, sizeof(err)),
                             FL_OK, "%s", err);
            offs[t][p] = off;
        }
    }
    /* invalid additions change nothing */
    cr_assert_eq(fl_kv_batch_put(b[0], "\x00x", 2, "", 0, NULL, 0), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_set_offset(b[0], "bad topic", 0, 1, NULL, 0), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_set_offset(b[0], "posts", -1, 1, NULL, 0), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_set_offset(b[0], "posts", 0, -1, NULL, 0), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_count(b[0]), fl_kv_batch_count(b[1]));
    cr_assert_leq(fl_kv_batch_count(b[0]), (size_t)n * 2);

    if (discard) {
        for (int s = 0; s < 2; s++) {
            fl_kv_batch_clear(b[s]);
            cr_assert_eq(fl_kv_batch_count(b[s]), 0);
            cr_assert_eq(fl_kv_batch_commit(m->store[s], b[s], err, sizeof(err)), FL_OK);
        }
    } else {
        for (int s = 0; s < 2; s++) {
            cr_assert_eq(fl_kv_batch_commit(m->store[s], b[s], err, sizeof(err)), FL_OK, "%s", err);
            cr_assert_eq(fl_kv_batch_count(b[s]), 0);
        }
        for (int i = 0; i < n; i++) {
            if (ops[i].del)
                ref_del(&m->ref, ops[i].k, ops[i].kl);
            else
                ref_put(&m->ref, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
        }
        memcpy(m->offsets, offs, sizeof(offs));
    }
    free(ops);
    fl_kv_batch_free(b[0]);
    fl_kv_batch_free(b[1]);
}

static void model_reopen(model_t *m)
{
    close_ok(m->store[1]);
    m->bulk = rnd_below(&m->rng, 3) == 0;
    m->store[1] = open_rdb(m->dir, m->bulk);
}

static void run_model(unsigned seed, int steps)
{
    model_t m_ = {0}, *m = &m_;
    m->seed = seed;
    m->rng = seed;
    m->dir = mk_tmpdir();
    memset(m->offsets, 0xff, sizeof(m->offsets)); /* all -1 */
    m->store[0] = fl_kv_mem_new();
    cr_assert_not_null(m->store[0]);
    m->store[1] = open_rdb(m->dir, false);

    for (m->step = 0; m->step < steps; m->step++) {
        uint64_t r = rnd_below(&m->rng, 100);
        uint8_t k[64], v[4096];
        size_t kl;
        if (r < 25) {
            kl = gen_key(m, k);
            model_put(m, k, kl, v, gen_value(m, v, sizeof(v)));
        } else if (r < 35) {
            if (m->ref.n && rnd_below(&m->rng, 2)) {
                const ent_t *e = &m->ref.e[rnd_below(&m->rng, m->ref.n)];
                kl = e->kl;
                memcpy(k, e->k, kl);
            } else {
                kl = gen_key(m, k);
            }
            model_del(m, k, kl);
        } else if (r < 52) {
            op_batch(m);
        } else if (r < 67) {
            op_get(m);
        } else if (r < 85) {
            op_iterate(m);
        } else if (r < 92) {
            op_scan(m);
        } else if (r < 95) {
            model_reopen(m);
            model_check_offsets(m);
        } else {
            model_check_offsets(m);
        }
        model_check_all(m);
    }
    model_check_offsets(m);
    fl_kv_free(m->store[0]);
    close_ok(m->store[1]);
    /* a last normal reopen sees everything */
    m->store[1] = open_rdb(m->dir, false);
    m->store[0] = fl_kv_mem_new();
    for (size_t i = 0; i < m->ref.n; i++)
        cr_assert_eq(fl_kv_put(m->store[0], m->ref.e[i].k, m->ref.e[i].kl, m->ref.e[i].v,
                               m->ref.e[i].vl, NULL, 0),
                     FL_OK);
    model_check_all(m);
    fl_kv_free(m->store[0]);
    close_ok(m->store[1]);
    ref_free(&m->ref);
}

Test(model, seed_1, .fini = rm_tmpdirs)
{
    run_model(1, 3000);
}

Test(model, seed_2, .fini = rm_tmpdirs)
{
    run_model(2, 3000);
}

Test(model, seed_3, .fini = rm_tmpdirs)
{
    run_model(3, 3000);
}

Test(model, seed_4, .fini = rm_tmpdirs)
{
    run_model(0xfeed, 3000);
}

/* ---- iterator edge cases ---- */

static void cursor_checks(fl_kv_t *kv)
{
    char err[256];
    fl_kv_iter_t *it, *other;
    size_t kl;
    const uint8_t *k;
    for (uint8_t i = 1; i <= 9; i++) {
        uint8_t key[2] = {0x01, i};
        cr_assert_eq(fl_kv_put(kv, key, 2, &i, 1, err, sizeof(err)), FL_OK);
    }
    cr_assert_eq(fl_kv_iter_new(kv, "\x01", 1, &it, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_iter_new(kv, NULL, 0, &other, err, sizeof(err)), FL_OK);
    cr_assert(!fl_kv_iter_valid(it), "unpositioned");
    fl_kv_iter_seek(it, "\x01\x03", 2);
    /* delete the current entry and the next two: the cursor skips them */
    cr_assert_eq(fl_kv_delete(kv, "\x01\x03", 2, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_delete(kv, "\x01\x04", 2, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_delete(kv, "\x01\x05", 2, err, sizeof(err)), FL_OK);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 2 && k[1] == 3, "detached entry stays readable");
    fl_kv_iter_next(it);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(fl_kv_iter_valid(it) && k[1] == 6);
    /* insert just ahead: the cursor sees it */
    cr_assert_eq(fl_kv_put(kv, "\x01\x06\x00", 3, "x", 1, err, sizeof(err)), FL_OK);
    fl_kv_iter_next(it);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 3 && k[1] == 6 && k[2] == 0);
    /* a batch commit detaches too */
    fl_kv_batch_t *b = fl_kv_batch_new();
    cr_assert_eq(fl_kv_batch_delete(b, "\x01\x07", 2, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_batch_commit(kv, b, err, sizeof(err)), FL_OK);
    fl_kv_batch_free(b);
    fl_kv_iter_next(it);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(k[1] == 8);
    fl_kv_iter_next(it);
    fl_kv_iter_next(it);
    cr_assert(!fl_kv_iter_valid(it));
    fl_kv_iter_next(it); /* no-op past the end */
    cr_assert(!fl_kv_iter_valid(it));
    cr_assert_eq(fl_kv_iter_status(it, err, sizeof(err)), FL_OK);
    /* backwards: 01 01, 01 02, 01 06, 01 06 00, 01 08, 01 09 are left */
    fl_kv_iter_seek_last(it);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(fl_kv_iter_valid(it) && kl == 2 && k[1] == 9);
    cr_assert_eq(fl_kv_delete(kv, "\x01\x09", 2, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_delete(kv, "\x01\x08", 2, err, sizeof(err)), FL_OK);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 2 && k[1] == 9, "detached entry stays readable");
    fl_kv_iter_prev(it);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 3 && k[1] == 6 && k[2] == 0);
    fl_kv_iter_prev(it);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 2 && k[1] == 6);
    fl_kv_iter_next(it); /* change of direction */
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 3 && k[1] == 6);
    fl_kv_iter_seek_for_prev(it, "\x01\x05", 2);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 2 && k[1] == 2);
    fl_kv_iter_seek_for_prev(it, "\x01\xff\xff", 3);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 3 && k[1] == 6);
    fl_kv_iter_seek_for_prev(it, "\x02", 1); /* past the prefix: its last key */
    k = fl_kv_iter_key(it, &kl);
    cr_assert(kl == 3 && k[1] == 6);
    fl_kv_iter_seek_for_prev(it, "\x01", 1); /* before every key of the prefix */
    cr_assert(!fl_kv_iter_valid(it));
    fl_kv_iter_seek_first(it);
    fl_kv_iter_prev(it);
    cr_assert(!fl_kv_iter_valid(it));
    cr_assert_eq(fl_kv_iter_status(it, err, sizeof(err)), FL_OK);
    /* seeking outside the prefix clamps or ends */
    fl_kv_iter_seek(it, "\x00", 1);
    k = fl_kv_iter_key(it, &kl);
    cr_assert(fl_kv_iter_valid(it) && k[1] == 1);
    fl_kv_iter_seek(it, "\x02", 1);
    cr_assert(!fl_kv_iter_valid(it));
    /* a store closed under open iterators: they fail cleanly */
    fl_kv_iter_seek_first(other);
    cr_assert(fl_kv_iter_valid(other));
    close_ok(kv);
    cr_assert(!fl_kv_iter_valid(other));
    cr_assert_eq(fl_kv_iter_status(other, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "closed") != NULL);
    fl_kv_iter_next(other);
    fl_kv_iter_seek_first(other);
    cr_assert(!fl_kv_iter_valid(other));
    fl_kv_iter_free(other);
    fl_kv_iter_free(it);
    fl_kv_iter_free(NULL);
}

Test(iter, cursor_across_writes_memory)
{
    cursor_checks(fl_kv_mem_new());
}

Test(iter, cursor_across_writes_rocksdb, .fini = rm_tmpdirs)
{
    cursor_checks(open_rdb(mk_tmpdir(), false));
}

/* A store holding only metadata looks empty in both directions. */
static void metadata_hidden_checks(fl_kv_t *kv)
{
    fl_kv_batch_t *b = fl_kv_batch_new();
    fl_kv_iter_t *it;
    cr_assert_eq(fl_kv_batch_set_offset(b, "posts", 0, 1, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_batch_commit(kv, b, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_iter_new(kv, NULL, 0, &it, NULL, 0), FL_OK);
    fl_kv_iter_seek_last(it);
    cr_assert(!fl_kv_iter_valid(it));
    fl_kv_iter_seek_for_prev(it, "\xff\xff", 2);
    cr_assert(!fl_kv_iter_valid(it));
    fl_kv_iter_seek_first(it);
    cr_assert(!fl_kv_iter_valid(it));
    /* one user key: prev from it stops, never reaching metadata */
    cr_assert_eq(fl_kv_put(kv, "\x01", 1, "", 0, NULL, 0), FL_OK);
    fl_kv_iter_seek_last(it);
    cr_assert(fl_kv_iter_valid(it));
    fl_kv_iter_prev(it);
    cr_assert(!fl_kv_iter_valid(it));
    cr_assert_eq(fl_kv_iter_status(it, NULL, 0), FL_OK);
    fl_kv_iter_free(it);
    fl_kv_batch_free(b);
    close_ok(kv);
}

Test(iter, metadata_never_visible_memory)
{
    metadata_hidden_checks(fl_kv_mem_new());
}

Test(iter, metadata_never_visible_rocksdb, .fini = rm_tmpdirs)
{
    metadata_hidden_checks(open_rdb(mk_tmpdir(), false));
}

static int count_and_stop(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    int *n = arg;
    return ++*n == 2;
}

Test(iter, prefix_of_ff_bytes_and_early_stop)
{
    fl_kv_t *kv = fl_kv_mem_new();
    int n = 0;
    cr_assert_eq(fl_kv_put(kv, "\xff\xff", 2, "a", 1, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_put(kv, "\xff\xff\xff", 3, "b", 1, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_put(kv, "\xff\xff\xff\x00", 4, "c", 1, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_put(kv, "\xfe", 1, "d", 1, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_scan_prefix(kv, "\xff\xff", 2, count_and_stop, &n, NULL, 0), FL_OK);
    cr_assert_eq(n, 2);
    fl_kv_iter_t *it;
    cr_assert_eq(fl_kv_iter_new(kv, "\xff\xff\xff", 3, &it, NULL, 0), FL_OK);
    n = 0;
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it))
        n++;
    cr_assert_eq(n, 2);
    fl_kv_iter_free(it);
    fl_kv_free(kv);
}

/* ---- offsets, atomicity, format version, bulk restore ---- */

typedef struct {
    char topic[256];
    int32_t partition;
    int64_t offset;
} off_seen_t;

static int collect_offset(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    off_seen_t *o = arg;
    while (o->topic[0])
        o++;
    snprintf(o->topic, sizeof(o->topic), "%s", topic);
    o->partition = partition;
    o->offset = offset;
    return 0;
}

Test(offsets, survive_reopen_and_list_in_order, .fini = rm_tmpdirs)
{
    const char *dir = mk_tmpdir();
    char err[256], longname[251];
    fl_kv_t *kv = open_rdb(dir, false);
    fl_kv_batch_t *b = fl_kv_batch_new();
    memset(longname, 'a', 249);
    longname[249] = '\0';
    cr_assert_eq(fl_kv_batch_set_offset(b, "posts", 1, 5, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_batch_set_offset(b, "posts", 0, 7, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_batch_set_offset(b, "posts", 0, 9, err, sizeof(err)), FL_OK); /* wins */
    cr_assert_eq(fl_kv_batch_set_offset(b, longname, 2147483647, 0, err, sizeof(err)), FL_OK);
    longname[249] = 'a';
    longname[250] = '\0';
    cr_assert_eq(fl_kv_batch_set_offset(b, longname, 0, 0, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_set_offset(b, "", 0, 0, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_set_offset(b, NULL, 0, 0, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_eq(fl_kv_batch_count(b), 3);
    cr_assert_eq(fl_kv_batch_commit(kv, b, err, sizeof(err)), FL_OK);
    close_ok(kv);
    kv = open_rdb(dir, false);
    int64_t off;
    bool found;
    cr_assert_eq(fl_kv_get_offset(kv, "posts", 0, &off, &found, err, sizeof(err)), FL_OK);
    cr_assert(found && off == 9);
    cr_assert_eq(fl_kv_get_offset(kv, "posts", 1, &off, &found, err, sizeof(err)), FL_OK);
    cr_assert(found && off == 5);
    cr_assert_eq(fl_kv_get_offset(kv, "posts", 2, &off, &found, err, sizeof(err)), FL_OK);
    cr_assert(!found && off == -1);
    cr_assert_eq(fl_kv_get_offset(kv, "po sts", 2, &off, &found, err, sizeof(err)), FL_ERR_INVALID);
    off_seen_t seen[4];
    memset(seen, 0, sizeof(seen));
    cr_assert_eq(fl_kv_offsets_foreach(kv, collect_offset, seen, err, sizeof(err)), FL_OK);
    /* by topic (length first, as the key encodes it), then partition */
    cr_assert_str_eq(seen[0].topic, "posts");
    cr_assert(seen[0].partition == 0 && seen[0].offset == 9);
    cr_assert(seen[1].partition == 1 && seen[1].offset == 5);
    cr_assert(strlen(seen[2].topic) == 249 && seen[2].partition == 2147483647);
    cr_assert_eq(seen[3].topic[0], '\0');
    fl_kv_batch_free(b);
    close_ok(kv);
}

Test(atomic, batch_with_offsets_all_or_nothing_across_reopen, .fini = rm_tmpdirs)
{
    const char *dir = mk_tmpdir();
    char err[256];
    fl_kv_t *kv = open_rdb(dir, false);
    fl_kv_batch_t *b = fl_kv_batch_new();
    for (int64_t i = 0; i < 100; i++) {
        fl_key_t k;
        fl_key_edge(&k, FL_KEY_TAG_FOLLOWER, 1, i);
        cr_assert_eq(fl_kv_batch_put(b, k.buf, k.len, "1", 1, err, sizeof(err)), FL_OK);
    }
    cr_assert_eq(fl_kv_batch_set_offset(b, "follows", 3, 100, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_kv_batch_commit(kv, b, err, sizeof(err)), FL_OK);
    /* a second batch built but never committed */
    for (int64_t i = 0; i < 100; i++) {
        fl_key_t k;
        fl_key_edge(&k, FL_KEY_TAG_FOLLOWER, 2, i);
        cr_assert_eq(fl_kv_batch_put(b, k.buf, k.len, "1", 1, err, sizeof(err)), FL_OK);
    }
    cr_assert_eq(fl_kv_batch_set_offset(b, "follows", 3, 200, err, sizeof(err)), FL_OK);
    fl_kv_batch_free(b);
    close_ok(kv);

    kv = open_rdb(dir, false);
    int64_t off;
    bool found;
    cr_assert_eq(fl_kv_get_offset(kv, "follows", 3, &off, &found, err, sizeof(err)), FL_OK);
    cr_assert(found && off == 100);
    fl_key_t p1, p2;
    fl_key_entity(&p1, FL_KEY_TAG_FOLLOWER, 1);
    fl_key_entity(&p2, FL_KEY_TAG_FOLLOWER, 2);
    int n1 = 0, n2 = 0;
    cr_assert_eq(fl_kv_scan_prefix(kv, p1.buf, p1.len, count_and_stop, &n1, err, sizeof(err)),
                 FL_OK);
    cr_assert_eq(n1, 2); /* stopped at 2: there are entries */
    n1 = 0;
    fl_kv_iter_t *it;
    cr_assert_eq(fl_kv_iter_new(kv, p1.buf, p1.len, &it, err, sizeof(err)), FL_OK);
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it))
        n1++;
    fl_kv_iter_free(it);
    cr_assert_eq(n1, 100);
    cr_assert_eq(fl_kv_iter_new(kv, p2.buf, p2.len, &it, err, sizeof(err)), FL_OK);
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it))
        n2++;
    fl_kv_iter_free(it);
    cr_assert_eq(n2, 0);
    close_ok(kv);
}

/* The child commits batches forever: batch i writes 20 keys (i, j), sets a
 * counter key to i + 1 and the input offset to i + 1. Killed with SIGKILL
 * at a random moment, the store must hold exactly batches 0..offset-1. */
#define KILL_KEYS 20

static void kill_child(const char *dir, int progress_fd)
{
    char err[512];
    fl_kv_t *kv = NULL;
    fl_kv_batch_t *b = fl_kv_batch_new();
    int64_t next = 0;
    bool found;
    if (fl_kv_rocksdb_open(dir, NULL, &kv, err, sizeof(err)) ||
        fl_kv_get_offset(kv, "posts", 0, &next, &found, err, sizeof(err)))
        _exit(2);
    if (!found)
        next = 0;
    for (int64_t i = next;; i++) {
        uint8_t cnt[8];
        fl_key_t k;
        for (int64_t j = 0; j < KILL_KEYS; j++) {
            fl_key_edge(&k, FL_KEY_TAG_LIKE, i, j);
            if (fl_kv_batch_put(b, k.buf, k.len, "v", 1, err, sizeof(err)))
                _exit(3);
        }
        fl_key_enc_i64(cnt, i + 1);
        fl_key_entity(&k, FL_KEY_TAG_USER, 0);
        if (fl_kv_batch_put(b, k.buf, k.len, cnt, 8, err, sizeof(err)) ||
            fl_kv_batch_set_offset(b, "posts", 0, i + 1, err, sizeof(err)) ||
            fl_kv_batch_commit(kv, b, err, sizeof(err)))
            _exit(4);
        if (i == next + 50 && write(progress_fd, "x", 1) != 1)
            _exit(5);
    }
}

Test(atomic, kill9_during_commits_loses_or_splits_nothing, .fini = rm_tmpdirs, .timeout = 60)
{
    const char *dir = mk_tmpdir();
    uint64_t s = 1234;
    int64_t last = 0;
    for (int round = 0; round < 4; round++) {
        int fds[2];
        char c;
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            kill_child(dir, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        cr_assert_eq(read(fds[0], &c, 1), 1, "child made no progress");
        close(fds[0]);
        struct timespec ts = {0, (long)rnd_below(&s, 20) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status), "child exited early with %d", WEXITSTATUS(status));

        fl_kv_t *kv = open_rdb(dir, false);
        char err[256];
        int64_t off, cnt;
        bool found;
        uint8_t cbuf[8];
        size_t vl;
        fl_key_t k;
        cr_assert_eq(fl_kv_get_offset(kv, "posts", 0, &off, &found, err, sizeof(err)), FL_OK);
        cr_assert(found && off > last, "round %d: offset %" PRId64 " after %" PRId64, round, off,
                  last);
        fl_key_entity(&k, FL_KEY_TAG_USER, 0);
        cr_assert_eq(fl_kv_get_buf(kv, k.buf, k.len, cbuf, 8, &vl, &found, err, sizeof(err)),
                     FL_OK);
        cnt = fl_key_dec_i64(cbuf);
        cr_assert(found && vl == 8 && cnt == off, "counter %" PRId64 " offset %" PRId64, cnt, off);
        /* every batch below the offset complete, nothing at or above it */
        fl_kv_iter_t *it;
        fl_key_t p;
        fl_key_init(&p);
        fl_key_append_tag(&p, FL_KEY_TAG_LIKE);
        cr_assert_eq(fl_kv_iter_new(kv, p.buf, p.len, &it, err, sizeof(err)), FL_OK);
        int64_t n = 0;
        for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it), n++) {
            size_t kl;
            const void *key = fl_kv_iter_key(it, &kl);
            int64_t i, j;
            cr_assert_eq(fl_key_parse_edge(key, kl, FL_KEY_TAG_LIKE, &i, &j), FL_OK);
            cr_assert(i == n / KILL_KEYS && j == n % KILL_KEYS, "entry %" PRId64, n);
        }
        fl_kv_iter_free(it);
        cr_assert_eq(n, off * KILL_KEYS, "round %d: %" PRId64 " entries for offset %" PRId64, round,
                     n, off);
        last = off;
        close_ok(kv);
    }
}

static void rdb_raw_put(const char *dir, const char *k, size_t kl, const char *v, size_t vl)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    char *err = NULL;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_t *db = rocksdb_open(o, dir, &err);
    cr_assert_null(err, "%s", err);
    if (k) {
        rocksdb_put(db, wo, k, kl, v, vl, &err);
        cr_assert_null(err, "%s", err);
    }
    rocksdb_close(db);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
}

Test(format, wrong_version_and_foreign_db_rejected, .fini = rm_tmpdirs)
{
    const char *dir = mk_tmpdir(), *foreign = mk_tmpdir(), *empty = mk_tmpdir();
    char err[512] = "";
    fl_kv_t *kv = open_rdb(dir, false);
    cr_assert_eq(fl_kv_put(kv, "\x10k", 2, "v", 1, NULL, 0), FL_OK);
    close_ok(kv);
    /* reopen of our own version is fine */
    close_ok(open_rdb(dir, false));
    /* version 99 written behind our back */
    rdb_raw_put(dir, FL_KV_META_VERSION_KEY, FL_KV_META_VERSION_KLEN, "\0\0\0\x63", 4);
    kv = NULL;
    cr_assert_eq(fl_kv_rocksdb_open(dir, NULL, &kv, err, sizeof(err)), FL_ERR_CORRUPT);
    cr_assert_null(kv);
    cr_assert(strstr(err, "format version 99") && strstr(err, "version 1"), "%s", err);
    /* a malformed version value */
    rdb_raw_put(dir, FL_KV_META_VERSION_KEY, FL_KV_META_VERSION_KLEN, "\x01", 1);
    cr_assert_eq(fl_kv_rocksdb_open(dir, NULL, &kv, err, sizeof(err)), FL_ERR_CORRUPT);
    cr_assert(strstr(err, "format version"), "%s", err);
    /* a RocksDB database with data but no version is not ours */
    rdb_raw_put(foreign, "hello", 5, "world", 5);
    cr_assert_eq(fl_kv_rocksdb_open(foreign, NULL, &kv, err, sizeof(err)), FL_ERR_CORRUPT);
    cr_assert(strstr(err, "not a feedline state store"), "%s", err);
    /* an empty RocksDB database is adopted */
    rdb_raw_put(empty, NULL, 0, NULL, 0);
    close_ok(open_rdb(empty, false));
    /* must_exist refuses to create */
    fl_kv_rocksdb_opts_t o = {.must_exist = true};
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", empty);
    cr_assert_eq(fl_kv_rocksdb_open(missing, &o, &kv, err, sizeof(err)), FL_ERR_IO);
    cr_assert_null(kv);
}

Test(rocksdb, second_open_of_a_locked_store_is_retriable, .fini = rm_tmpdirs)
{
    const char *dir = mk_tmpdir();
    char err[512] = "";
    fl_kv_t *kv = open_rdb(dir, false), *kv2 = NULL;
    fl_err_t rc = fl_kv_rocksdb_open(dir, NULL, &kv2, err, sizeof(err));
    cr_assert_eq(rc, FL_ERR_UNAVAILABLE, "%s: %s", fl_err_str(rc), err);
    cr_assert(fl_err_retriable(rc));
    cr_assert_null(kv2);
    close_ok(kv);
    close_ok(open_rdb(dir, false));
    cr_assert_eq(fl_kv_rocksdb_destroy(dir, err, sizeof(err)), FL_OK, "%s", err);
}

/* Fills kv with n entries in batches of 500, each with its offset. */
static void fill(fl_kv_t *kv, int n, uint64_t seed)
{
    fl_kv_batch_t *b = fl_kv_batch_new();
    char err[256];
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        fl_key_t k;
        uint8_t v[32];
        size_t vl = rnd_below(&s, sizeof(v));
        for (size_t j = 0; j < vl; j++)
            v[j] = (uint8_t)rnd_next(&s);
        fl_key_recent(&k, FL_KEY_TAG_TIMELINE, (int64_t)rnd_below(&s, 100), rnd_i64(&s), i);
        cr_assert_eq(fl_kv_batch_put(b, k.buf, k.len, v, vl, err, sizeof(err)), FL_OK);
        if (rnd_below(&s, 10) == 0) {
            fl_kv_batch_delete(b, k.buf, k.len, err, sizeof(err));
        }
        if ((i + 1) % 500 == 0 || i + 1 == n) {
            cr_assert_eq(fl_kv_batch_set_offset(b, "feedline.timelines-changelog", 0, i + 1, err,
                                                sizeof(err)),
                         FL_OK);
            cr_assert_eq(fl_kv_batch_commit(kv, b, err, sizeof(err)), FL_OK, "%s", err);
        }
    }
    fl_kv_batch_free(b);
}

static void assert_same_content(fl_kv_t *a, fl_kv_t *b)
{
    fl_kv_iter_t *ia, *ib;
    size_t n = 0;
    cr_assert_eq(fl_kv_iter_new(a, NULL, 0, &ia, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_iter_new(b, NULL, 0, &ib, NULL, 0), FL_OK);
    fl_kv_iter_seek_first(ia);
    fl_kv_iter_seek_first(ib);
    for (; fl_kv_iter_valid(ia); fl_kv_iter_next(ia), fl_kv_iter_next(ib), n++) {
        size_t akl, bkl, avl, bvl;
        cr_assert(fl_kv_iter_valid(ib), "second store ends at %zu", n);
        const void *ak = fl_kv_iter_key(ia, &akl), *bk = fl_kv_iter_key(ib, &bkl);
        const void *av = fl_kv_iter_value(ia, &avl), *bv = fl_kv_iter_value(ib, &bvl);
        cr_assert(key_cmp(ak, akl, bk, bkl) == 0 && avl == bvl && (!avl || !memcmp(av, bv, avl)),
                  "entry %zu differs", n);
    }
    cr_assert(!fl_kv_iter_valid(ib));
    cr_assert_gt(n, 0);
    fl_kv_iter_free(ia);
    fl_kv_iter_free(ib);
}

Test(bulk, restore_then_normal_reopen_is_identical, .fini = rm_tmpdirs)
{
    const char *dir = mk_tmpdir();
    fl_kv_t *mem = fl_kv_mem_new(), *kv = open_rdb(dir, true);
    fill(mem, 20000, 5);
    fill(kv, 20000, 5);
    assert_same_content(mem, kv); /* readable while restoring */
    close_ok(kv);                 /* flushes */
    kv = open_rdb(dir, false);
    assert_same_content(mem, kv);
    int64_t a, b;
    bool fa, fb;
    cr_assert_eq(fl_kv_get_offset(mem, "feedline.timelines-changelog", 0, &a, &fa, NULL, 0), FL_OK);
    cr_assert_eq(fl_kv_get_offset(kv, "feedline.timelines-changelog", 0, &b, &fb, NULL, 0), FL_OK);
    cr_assert(fa && fb && a == b && a == 20000);
    close_ok(kv);
    fl_kv_free(mem);
}

Test(bulk, interrupted_restore_is_refused_until_finished, .fini = rm_tmpdirs)
{
    const char *dir = mk_tmpdir();
    char err[512] = "";
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* dies without closing: unflushed bulk writes and the marker remain */
        fl_kv_t *kv = NULL;
        if (fl_kv_rocksdb_open(dir, &(fl_kv_rocksdb_opts_t){.bulk_restore = true}, &kv, NULL, 0))
            _exit(2);
        fill(kv, 3000, 9);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fl_kv_t *kv = NULL;
    cr_assert_eq(fl_kv_rocksdb_open(dir, NULL, &kv, err, sizeof(err)), FL_ERR_CORRUPT);
    cr_assert(strstr(err, "interrupted bulk restore"), "%s", err);
    /* resume in bulk mode, finish, and the normal open works */
    kv = open_rdb(dir, true);
    fill(kv, 3000, 9);
    close_ok(kv);
    kv = open_rdb(dir, false);
    fl_kv_t *mem = fl_kv_mem_new();
    fill(mem, 3000, 9);
    assert_same_content(mem, kv);
    close_ok(kv);
    fl_kv_free(mem);
}

Test(memory, many_entries_stay_ordered)
{
    enum { N = 200000 };
    fl_kv_t *kv = fl_kv_mem_new();
    uint64_t s = 77;
    fl_kv_batch_t *b = fl_kv_batch_new();
    for (int i = 0; i < N; i++) {
        fl_key_t k;
        fl_key_edge(&k, FL_KEY_TAG_FOLLOWER, rnd_i64(&s), i);
        if (i % 2)
            cr_assert_eq(fl_kv_put(kv, k.buf, k.len, &i, sizeof(i), NULL, 0), FL_OK);
        else
            cr_assert_eq(fl_kv_batch_put(b, k.buf, k.len, &i, sizeof(i), NULL, 0), FL_OK);
        if (i % 1000 == 999)
            cr_assert_eq(fl_kv_batch_commit(kv, b, NULL, 0), FL_OK);
    }
    fl_kv_stats_t st;
    cr_assert_eq(fl_kv_stats(kv, &st, NULL, 0), FL_OK);
    cr_assert_eq(st.entries, N);
    fl_kv_iter_t *it;
    uint8_t prev[FL_KEY_MAX];
    size_t prevl = 0, n = 0;
    cr_assert_eq(fl_kv_iter_new(kv, NULL, 0, &it, NULL, 0), FL_OK);
    for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it); fl_kv_iter_next(it), n++) {
        size_t kl;
        const void *k = fl_kv_iter_key(it, &kl);
        if (n)
            cr_assert_lt(key_cmp(prev, prevl, k, kl), 0);
        memcpy(prev, k, prevl = kl);
        if (n % 2)
            fl_kv_delete(kv, k, kl, NULL, 0); /* delete every other, while iterating */
    }
    cr_assert_eq(n, N);
    fl_kv_iter_free(it);
    cr_assert_eq(fl_kv_stats(kv, &st, NULL, 0), FL_OK);
    cr_assert_eq(st.entries, N / 2);
    fl_kv_batch_free(b);
    fl_kv_free(kv);
}
