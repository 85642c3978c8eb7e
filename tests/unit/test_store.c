/*
 * test_store.c - fl_store (state/fl_store.h): the pending batch with
 * read-your-writes over a committed key-value store, the merged
 * bidirectional iterator, the change walk, commit and abort, restore
 * staging.
 *
 * The main test is a model test (SQLite's bitvec test): random operations
 * with fixed seeds on both backends, compared with a reference made of two
 * plain arrays indexed by a small sorted key universe, one for the
 * committed state and one for the pending changes (puts, tombstones,
 * restore-staged entries). The universe (tag 0x10, 0x11, 0x12 or 0xff, then
 * 1 to 3 bytes out of 00 01 02 80 fe ff) makes colliding writes, nested
 * prefixes, prefix ends and all-0xff prefixes common.
 *
 * Iteration walks are checked after every move. fl_store.h lets writes
 * made while an iterator is open be seen or not, so a walk remembers the
 * keys written during it ("touched") and every value they had: a returned
 * entry must be in the prefix, beyond the previous position, and present
 * at some moment of the walk; and no entry present throughout the walk may
 * be skipped. With no writes during a walk this is exactly the merged view.
 * Full forward and backward scans, every key's get, the change walk and
 * the committed store itself are compared exactly and often.
 *
 * A failure message names the backend, seed and step, and a run replays
 * identically. RocksDB stores live in mkdtemp directories the fixture
 * removes, also after a failed assertion. Regression tests are named after
 * what broke.
 */
#include <criterion/criterion.h>

#include "fl_kv.h"
#include "fl_kv_backend.h"
#include "fl_store.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers: randomness, temp dirs, keys ---- */

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

#define MAX_DIRS 4
static char tmp_dirs[MAX_DIRS][64];
static int n_tmp_dirs;

static const char *mk_tmpdir(void)
{
    cr_assert_lt(n_tmp_dirs, MAX_DIRS);
    char *d = tmp_dirs[n_tmp_dirs];
    snprintf(d, sizeof(tmp_dirs[0]), "/tmp/fl_test_store_XXXXXX");
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

static bool has_prefix(const void *k, size_t kl, const void *p, size_t pl)
{
    return kl >= pl && (pl == 0 || memcmp(k, p, pl) == 0);
}

/* Hex of a key for messages; a few rotating buffers so that one message
 * can show several keys. */
static const char *hex(const void *k, size_t kl)
{
    static char bufs[4][80];
    static int next;
    char *b = bufs[next++ % 4];
    size_t o = 0;
    b[0] = '\0';
    for (size_t i = 0; i < kl && o + 3 < sizeof(bufs[0]); i++)
        o += (size_t)snprintf(b + o, sizeof(bufs[0]) - o, "%02x", ((const uint8_t *)k)[i]);
    if (kl == 0)
        snprintf(b, sizeof(bufs[0]), "(empty)");
    return b;
}

/* A byte-string literal as two arguments, pointer and length:
 * KEY(0x10, 0xff) is a 2-byte key. */
#define KEY(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

#define STORE_NAME "timeline"
#define CHANGELOG  "feedline.timeline-changelog"
#define PARTITION  3

/* dir NULL: the in-memory backend. */
static fl_kv_t *open_kv(const char *dir)
{
    char err[512] = "";
    fl_kv_t *kv = NULL;
    if (!dir) {
        kv = fl_kv_mem_new();
        cr_assert_not_null(kv);
        return kv;
    }
    fl_err_t rc = fl_kv_rocksdb_open(dir, NULL, &kv, err, sizeof(err));
    cr_assert_eq(rc, FL_OK, "open %s: %s (%s)", dir, fl_err_str(rc), err);
    return kv;
}

/* cache_bytes 0: no read cache. */
static fl_store_t *open_store_cached(const char *dir, size_t cache_bytes)
{
    fl_store_t *s = fl_store_new(open_kv(dir), STORE_NAME, CHANGELOG, PARTITION);
    cr_assert_not_null(s);
    cr_assert_eq(fl_store_set_cache(s, cache_bytes), FL_OK);
    return s;
}

static fl_store_t *open_store(const char *dir)
{
    return open_store_cached(dir, 0);
}

/* ---- helpers for the focused tests: values are C strings ---- */

static void put_ok(fl_store_t *s, const uint8_t *k, size_t kl, const char *v)
{
    fl_err_t rc = fl_store_put(s, k, kl, v, strlen(v));
    cr_assert_eq(rc, FL_OK, "put %s: %s", hex(k, kl), fl_store_errmsg(s));
}

static void del_ok(fl_store_t *s, const uint8_t *k, size_t kl)
{
    fl_err_t rc = fl_store_delete(s, k, kl);
    cr_assert_eq(rc, FL_OK, "delete %s: %s", hex(k, kl), fl_store_errmsg(s));
}

static void restore_ok(fl_store_t *s, const uint8_t *k, size_t kl, const char *v)
{
    fl_err_t rc = fl_store_restore_apply(s, k, kl, v, v ? strlen(v) : 0);
    cr_assert_eq(rc, FL_OK, "restore %s: %s", hex(k, kl), fl_store_errmsg(s));
}

static void commit_ok(fl_store_t *s, const fl_store_offset_t *offs, size_t n, int64_t clpos)
{
    fl_err_t rc = fl_store_commit(s, offs, n, clpos);
    cr_assert_eq(rc, FL_OK, "commit: %s", fl_store_errmsg(s));
    cr_assert_eq(fl_store_pending(s), 0);
}

/* v NULL: expect the key to be absent. */
static void expect_get(fl_store_t *s, const uint8_t *k, size_t kl, const char *v)
{
    char buf[64];
    size_t vl = 999;
    bool found = v == NULL;
    fl_err_t rc = fl_store_get(s, k, kl, buf, sizeof(buf), &vl, &found);
    cr_assert_eq(rc, FL_OK, "get %s: %s", hex(k, kl), fl_store_errmsg(s));
    if (!v) {
        cr_assert(!found, "get %s: found, expected absent", hex(k, kl));
        return;
    }
    cr_assert(found, "get %s: absent, expected '%s'", hex(k, kl), v);
    cr_assert(vl == strlen(v) && memcmp(buf, v, vl) == 0, "get %s: '%.*s', expected '%s'",
              hex(k, kl), (int)vl, buf, v);
}

/* The iterator stands on k with value v; k NULL: it is not valid. */
static void expect_at(const fl_store_iter_t *it, const uint8_t *k, size_t kl, const char *v)
{
    size_t ikl, ivl;
    const void *ik = fl_store_iter_key(it, &ikl);
    const void *iv = fl_store_iter_value(it, &ivl);
    cr_assert_eq(fl_store_iter_status(it), FL_OK);
    if (!k) {
        cr_assert(!fl_store_iter_valid(it), "expected the end, iterator at %s", hex(ik, ikl));
        cr_assert(ik == NULL && ikl == 0);
        return;
    }
    cr_assert(fl_store_iter_valid(it), "expected %s, iterator not valid", hex(k, kl));
    cr_assert(key_cmp(ik, ikl, k, kl) == 0, "iterator at %s, expected %s", hex(ik, ikl),
              hex(k, kl));
    cr_assert(ivl == strlen(v) && memcmp(iv, v, ivl) == 0, "at %s: '%.*s', expected '%s'",
              hex(k, kl), (int)ivl, (const char *)iv, v);
}

#define END NULL, 0, NULL

/* The whole prefix as "key=value key=value", forward (dir 1) or backward. */
static const char *scan_str(fl_store_t *s, const uint8_t *p, size_t pl, int dir)
{
    static char out[2048];
    size_t o = 0;
    fl_store_iter_t *it;
    out[0] = '\0';
    cr_assert_eq(fl_store_iter_new(s, p, pl, &it), FL_OK, "%s", fl_store_errmsg(s));
    if (dir > 0)
        fl_store_iter_seek_first(it);
    else
        fl_store_iter_seek_last(it);
    for (; fl_store_iter_valid(it); dir > 0 ? fl_store_iter_next(it) : fl_store_iter_prev(it)) {
        size_t kl, vl;
        const void *k = fl_store_iter_key(it, &kl);
        const void *v = fl_store_iter_value(it, &vl);
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=%.*s", o ? " " : "", hex(k, kl),
                              (int)vl, (const char *)v);
        cr_assert_lt(o, sizeof(out) - 1);
    }
    cr_assert_eq(fl_store_iter_status(it), FL_OK);
    fl_store_iter_free(it);
    return out;
}

/* ---- the model ---- */

#define VMAX    16
#define U_TAGS  4
#define U_ALPHA 6
#define U_MAX   (U_TAGS * (U_ALPHA + U_ALPHA * U_ALPHA + U_ALPHA * U_ALPHA * U_ALPHA))
#define MAX_VER 512

static const uint8_t u_tags[U_TAGS] = {0x10, 0x11, 0x12, 0xff};
static const uint8_t u_alpha[U_ALPHA] = {0x00, 0x01, 0x02, 0x80, 0xfe, 0xff};

static const char *const off_topics[2] = {"posts", "follows"};

enum { P_NONE, P_PUT, P_DEL };

typedef struct {
    uint8_t b[4];
    uint8_t len;
} ukey_t;

typedef struct {
    bool present;
    uint8_t vl;
    uint8_t v[VMAX];
} cslot_t;

typedef struct {
    uint8_t st; /* P_NONE, P_PUT, P_DEL */
    bool restored;
    uint8_t vl;
    uint8_t v[VMAX];
} pslot_t;

/* One state a key had during a walk. */
typedef struct {
    uint16_t i;
    bool present;
    uint8_t vl;
    uint8_t v[VMAX];
} ver_t;

typedef struct {
    const char *backend;
    const char *dir;    /* NULL: memory */
    size_t cache_bytes; /* the store's read cache, 0: none */
    bool background;    /* commits write in the background */
    fl_store_t *s;
    uint64_t seed, rng;
    int step;
    char ctx[160];
    /* the universe, sorted, and the reference state indexed by it */
    size_t n;
    ukey_t u[U_MAX];
    cslot_t c[U_MAX];
    pslot_t p[U_MAX];
    bool off_has[4];
    int64_t off[4]; /* slot: topic index * 2 + partition */
    int64_t clpos;
    /* the walk in progress */
    bool walking;
    bool touched[U_MAX];
    ver_t ver[MAX_VER];
    size_t nver;
} model_t;

static int ukey_cmp(const void *a, const void *b)
{
    const ukey_t *x = a, *y = b;
    return key_cmp(x->b, x->len, y->b, y->len);
}

static void universe_build(model_t *m)
{
    m->n = 0;
    for (int t = 0; t < U_TAGS; t++)
        for (int len = 1; len <= 3; len++) {
            int combos = len == 1   ? U_ALPHA
                         : len == 2 ? U_ALPHA * U_ALPHA
                                    : U_ALPHA * U_ALPHA * U_ALPHA;
            for (int c = 0; c < combos; c++) {
                ukey_t *k = &m->u[m->n++];
                int x = c;
                k->b[0] = u_tags[t];
                for (int j = 0; j < len; j++) {
                    k->b[1 + j] = u_alpha[x % U_ALPHA];
                    x /= U_ALPHA;
                }
                k->len = (uint8_t)(1 + len);
            }
        }
    cr_assert_eq(m->n, U_MAX);
    qsort(m->u, m->n, sizeof(m->u[0]), ukey_cmp);
}

/* First universe index whose key is >= k. */
static size_t u_lb(const model_t *m, const void *k, size_t kl)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (key_cmp(m->u[mid].b, m->u[mid].len, k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static long u_find(const model_t *m, const void *k, size_t kl)
{
    size_t i = u_lb(m, k, kl);
    if (i < m->n && key_cmp(m->u[i].b, m->u[i].len, k, kl) == 0)
        return (long)i;
    return -1;
}

/* The merged view: pending over committed. */
static bool view(const model_t *m, size_t i, const uint8_t **v, size_t *vl)
{
    const pslot_t *p = &m->p[i];
    if (p->st == P_PUT) {
        *v = p->v;
        *vl = p->vl;
        return true;
    }
    if (p->st == P_DEL)
        return false;
    *v = m->c[i].v;
    *vl = m->c[i].vl;
    return m->c[i].present;
}

static void ver_add(model_t *m, size_t i)
{
    const uint8_t *v;
    size_t vl;
    ver_t *x;
    cr_assert_lt(m->nver, MAX_VER, "%s: too many writes in one walk", m->ctx);
    x = &m->ver[m->nver++];
    x->i = (uint16_t)i;
    x->present = view(m, i, &v, &vl);
    x->vl = x->present ? (uint8_t)vl : 0;
    if (x->present && vl)
        memcpy(x->v, v, vl);
}

/* Records a write in the reference (st P_PUT or P_DEL). */
static void m_write(model_t *m, size_t i, int st, const uint8_t *v, size_t vl, bool restored)
{
    if (m->walking && !m->touched[i]) {
        m->touched[i] = true;
        ver_add(m, i); /* the state the walk started with */
    }
    m->p[i].st = (uint8_t)st;
    m->p[i].restored = restored;
    m->p[i].vl = st == P_PUT ? (uint8_t)vl : 0;
    if (st == P_PUT && vl)
        memcpy(m->p[i].v, v, vl);
    if (m->walking)
        ver_add(m, i);
}

static size_t rand_value(model_t *m, uint8_t *v)
{
    size_t vl = rnd_below(&m->rng, 13);
    for (size_t j = 0; j < vl; j++)
        v[j] = (uint8_t)rnd_next(&m->rng);
    return vl;
}

static void do_put(model_t *m, size_t i)
{
    uint8_t v[VMAX];
    size_t vl = rand_value(m, v);
    /* an empty value may come as NULL */
    const void *vp = vl == 0 && rnd_below(&m->rng, 2) ? NULL : v;
    fl_err_t rc = fl_store_put(m->s, m->u[i].b, m->u[i].len, vp, vl);
    cr_assert_eq(rc, FL_OK, "%s: put %s: %s", m->ctx, hex(m->u[i].b, m->u[i].len),
                 fl_store_errmsg(m->s));
    m_write(m, i, P_PUT, v, vl, false);
}

static void do_delete(model_t *m, size_t i)
{
    fl_err_t rc = fl_store_delete(m->s, m->u[i].b, m->u[i].len);
    cr_assert_eq(rc, FL_OK, "%s: delete %s: %s", m->ctx, hex(m->u[i].b, m->u[i].len),
                 fl_store_errmsg(m->s));
    m_write(m, i, P_DEL, NULL, 0, false);
}

static void do_restore(model_t *m, size_t i)
{
    uint8_t v[VMAX];
    bool tomb = rnd_below(&m->rng, 3) == 0;
    size_t vl = tomb ? 0 : rand_value(m, v);
    fl_err_t rc = fl_store_restore_apply(m->s, m->u[i].b, m->u[i].len, tomb ? NULL : v, vl);
    cr_assert_eq(rc, FL_OK, "%s: restore %s: %s", m->ctx, hex(m->u[i].b, m->u[i].len),
                 fl_store_errmsg(m->s));
    m_write(m, i, tomb ? P_DEL : P_PUT, v, vl, true);
}

/* A random index, half of the time one whose key is in the merged view. */
static size_t pick_index(model_t *m, bool live_bias)
{
    if (live_bias && rnd_below(&m->rng, 2))
        for (int tries = 0; tries < 20; tries++) {
            size_t i = rnd_below(&m->rng, m->n);
            const uint8_t *v;
            size_t vl;
            if (view(m, i, &v, &vl))
                return i;
        }
    return rnd_below(&m->rng, m->n);
}

static void check_get(model_t *m, const uint8_t *k, size_t kl)
{
    long i = u_find(m, k, kl);
    const uint8_t *ev = NULL;
    size_t evl = 0;
    bool efound = i >= 0 && view(m, (size_t)i, &ev, &evl);
    uint8_t buf[VMAX + 1];
    size_t caps[] = {0, 1, 4, 8, VMAX, VMAX + 1};
    size_t cap = caps[rnd_below(&m->rng, sizeof(caps) / sizeof(caps[0]))];
    size_t vl = 12345;
    bool found = !efound;

    memset(buf, 0xaa, sizeof(buf));
    fl_err_t rc = fl_store_get(m->s, k, kl, cap ? buf : NULL, cap, &vl, &found);
    if (!efound) {
        cr_assert_eq(rc, FL_OK, "%s: get %s: %s", m->ctx, hex(k, kl), fl_store_errmsg(m->s));
        cr_assert(!found, "%s: get %s found a value, expected absent", m->ctx, hex(k, kl));
    } else if (evl > cap) {
        cr_assert_eq(rc, FL_ERR_OVERSIZED, "%s: get %s of %zu bytes into %zu: %s", m->ctx,
                     hex(k, kl), evl, cap, fl_err_str(rc));
        cr_assert(found && vl == evl, "%s: get %s oversized: found %d vlen %zu, expected %zu",
                  m->ctx, hex(k, kl), found, vl, evl);
    } else {
        cr_assert_eq(rc, FL_OK, "%s: get %s: %s", m->ctx, hex(k, kl), fl_store_errmsg(m->s));
        cr_assert(found, "%s: get %s absent, expected a value", m->ctx, hex(k, kl));
        cr_assert(vl == evl && (vl == 0 || memcmp(buf, ev, vl) == 0),
                  "%s: get %s returned another value (%zu bytes, expected %zu)", m->ctx, hex(k, kl),
                  vl, evl);
    }
}

static void check_pending_count(model_t *m)
{
    size_t want = 0;
    for (size_t i = 0; i < m->n; i++)
        want += m->p[i].st != P_NONE;
    cr_assert_eq(fl_store_pending(m->s), want, "%s: %zu pending, expected %zu", m->ctx,
                 fl_store_pending(m->s), want);
}

typedef struct {
    model_t *m;
    size_t next; /* universe index to look from */
    size_t seen;
    size_t stop_after; /* 0: never stop */
} changes_ck_t;

static int changes_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    changes_ck_t *c = arg;
    model_t *m = c->m;
    size_t i = c->next;
    while (i < m->n && (m->p[i].st == P_NONE || m->p[i].restored))
        i++;
    cr_assert_lt(i, m->n, "%s: change walk has an extra change %s", m->ctx, hex(key, klen));
    cr_assert(key_cmp(key, klen, m->u[i].b, m->u[i].len) == 0,
              "%s: change walk gives %s, expected %s", m->ctx, hex(key, klen),
              hex(m->u[i].b, m->u[i].len));
    if (m->p[i].st == P_DEL) {
        cr_assert_null(val, "%s: change %s should be a delete", m->ctx, hex(key, klen));
    } else {
        cr_assert_not_null(val, "%s: change %s should be a put", m->ctx, hex(key, klen));
        cr_assert(vlen == m->p[i].vl && (vlen == 0 || memcmp(val, m->p[i].v, vlen) == 0),
                  "%s: change %s has another value", m->ctx, hex(key, klen));
    }
    c->next = i + 1;
    c->seen++;
    return c->stop_after && c->seen == c->stop_after;
}

static void check_changes(model_t *m)
{
    changes_ck_t c = {m, 0, 0, 0};
    fl_err_t rc = fl_store_changes(m->s, changes_cb, &c);
    cr_assert_eq(rc, FL_OK, "%s: changes: %s", m->ctx, fl_store_errmsg(m->s));
    for (size_t i = c.next; i < m->n; i++)
        cr_assert(m->p[i].st == P_NONE || m->p[i].restored, "%s: change walk misses %s", m->ctx,
                  hex(m->u[i].b, m->u[i].len));
    /* stopping early reports FL_ERR_INVALID and changes nothing */
    if (c.seen > 0 && rnd_below(&m->rng, 4) == 0) {
        changes_ck_t d = {m, 0, 0, 1 + rnd_below(&m->rng, c.seen)};
        cr_assert_eq(fl_store_changes(m->s, changes_cb, &d), FL_ERR_INVALID, "%s", m->ctx);
        cr_assert_eq(d.seen, d.stop_after, "%s", m->ctx);
    }
}

typedef struct {
    model_t *m;
    size_t next;
} committed_ck_t;

static int committed_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    committed_ck_t *c = arg;
    model_t *m = c->m;
    size_t i = c->next;
    while (i < m->n && !m->c[i].present)
        i++;
    cr_assert_lt(i, m->n, "%s: committed store has an extra key %s", m->ctx, hex(key, klen));
    cr_assert(key_cmp(key, klen, m->u[i].b, m->u[i].len) == 0,
              "%s: committed store has %s, expected %s", m->ctx, hex(key, klen),
              hex(m->u[i].b, m->u[i].len));
    cr_assert(vlen == m->c[i].vl && (vlen == 0 || memcmp(val, m->c[i].v, vlen) == 0),
              "%s: committed %s has another value", m->ctx, hex(key, klen));
    c->next = i + 1;
    return 0;
}

/* The key-value store under the pending batch holds exactly the committed
 * reference, and the offsets are the committed ones. */
static void check_committed(model_t *m)
{
    char err[256] = "";
    committed_ck_t c = {m, 0};
    fl_err_t rc = fl_store_sync(m->s); /* the key-value store itself is read */
    cr_assert_eq(rc, FL_OK, "%s: sync: %s", m->ctx, fl_store_errmsg(m->s));
    rc = fl_kv_scan_prefix(fl_store_kv(m->s), NULL, 0, committed_cb, &c, err, sizeof(err));
    cr_assert_eq(rc, FL_OK, "%s: scan: %s", m->ctx, err);
    for (size_t i = c.next; i < m->n; i++)
        cr_assert(!m->c[i].present, "%s: committed store misses %s", m->ctx,
                  hex(m->u[i].b, m->u[i].len));
    for (int slot = 0; slot < 4; slot++) {
        int64_t off = -7;
        bool found = !m->off_has[slot];
        rc = fl_store_offset(m->s, off_topics[slot / 2], slot % 2, &off, &found);
        cr_assert_eq(rc, FL_OK, "%s: offset: %s", m->ctx, fl_store_errmsg(m->s));
        cr_assert_eq(found, m->off_has[slot], "%s: offset %s/%d", m->ctx, off_topics[slot / 2],
                     slot % 2);
        if (found)
            cr_assert_eq(off, m->off[slot], "%s: offset %s/%d", m->ctx, off_topics[slot / 2],
                         slot % 2);
    }
    int64_t pos = -7;
    rc = fl_store_changelog_position(m->s, &pos);
    cr_assert_eq(rc, FL_OK, "%s: changelog position: %s", m->ctx, fl_store_errmsg(m->s));
    cr_assert_eq(pos, m->clpos, "%s: changelog position %" PRId64 ", expected %" PRId64, m->ctx,
                 pos, m->clpos);
}

static void do_commit(model_t *m)
{
    fl_store_offset_t offs[4];
    size_t n = rnd_below(&m->rng, 5);
    int slots[4];
    uint64_t r = rnd_below(&m->rng, 8);
    int64_t clpos = r < 4 ? -1 : r == 4 ? 0 : (int64_t)rnd_below(&m->rng, 1000000);

    for (size_t j = 0; j < n; j++) {
        /* the same slot twice in one commit: the last one wins */
        slots[j] = (int)rnd_below(&m->rng, 4);
        offs[j] = (fl_store_offset_t){off_topics[slots[j] / 2], slots[j] % 2,
                                      (int64_t)rnd_below(&m->rng, 1000000)};
    }
    fl_err_t rc = fl_store_commit(m->s, offs, n, clpos);
    cr_assert_eq(rc, FL_OK, "%s: commit: %s", m->ctx, fl_store_errmsg(m->s));
    for (size_t i = 0; i < m->n; i++) {
        pslot_t *p = &m->p[i];
        if (p->st == P_PUT) {
            m->c[i].present = true;
            m->c[i].vl = p->vl;
            memcpy(m->c[i].v, p->v, p->vl);
        } else if (p->st == P_DEL) {
            m->c[i].present = false;
        }
        p->st = P_NONE;
        p->restored = false;
    }
    for (size_t j = 0; j < n; j++) {
        m->off_has[slots[j]] = true;
        m->off[slots[j]] = offs[j].offset;
    }
    if (clpos >= 0)
        m->clpos = clpos;
    /* With background writes, most commits leave their write in flight
     * for the operations that follow. */
    if (!m->background || rnd_below(&m->rng, 4) == 0)
        check_committed(m);
}

static void clear_pending(model_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        m->p[i].st = P_NONE;
        m->p[i].restored = false;
    }
}

/* ---- iteration walks ---- */

typedef struct {
    uint8_t p[8];
    size_t pl;
} prefix_t;

static void pick_prefix(model_t *m, prefix_t *px)
{
    static const struct {
        uint8_t b[5];
        uint8_t len;
    } special[] = {
        {{0xff}, 1},
        {{0xff, 0xff}, 2},
        {{0xff, 0xff, 0xff}, 3},
        {{0x12, 0xff}, 2},
        {{0x12, 0xff, 0xff}, 3},
        {{0x13}, 1},
        {{0x0f}, 1},
        {{0x01}, 1},
        {{0xff, 0xff, 0xff, 0xff, 0xff}, 5},
        {{0x10, 0x00}, 2},
        {{0x11, 0x80, 0xff}, 3},
    };
    uint64_t r = rnd_below(&m->rng, 100);
    const ukey_t *k = &m->u[rnd_below(&m->rng, m->n)];
    if (r < 10) {
        px->pl = 0;
    } else if (r < 85) {
        /* 1 to 4 bytes of a universe key: a tag, a range, or a whole key */
        px->pl = 1 + rnd_below(&m->rng, k->len);
        memcpy(px->p, k->b, px->pl);
    } else {
        size_t j = rnd_below(&m->rng, sizeof(special) / sizeof(special[0]));
        px->pl = special[j].len;
        memcpy(px->p, special[j].b, px->pl);
    }
}

/* A seek target: a universe key, the prefix, a key just past it, a
 * random byte string (possibly empty or starting with 0x00), or the
 * current key. */
static size_t pick_target(model_t *m, const prefix_t *px, const uint8_t *cur, size_t curl,
                          uint8_t *t)
{
    uint64_t r = rnd_below(&m->rng, 100);
    size_t tl;
    if (r < 45) {
        const ukey_t *k = &m->u[rnd_below(&m->rng, m->n)];
        memcpy(t, k->b, k->len);
        return k->len;
    }
    if (r < 55) {
        memcpy(t, px->p, px->pl);
        return px->pl;
    }
    if (r < 65) {
        /* the prefix followed by 0xff bytes, or with its last byte bumped */
        memcpy(t, px->p, px->pl);
        tl = px->pl;
        if (tl && rnd_below(&m->rng, 2)) {
            if (t[tl - 1] < 0xff)
                t[tl - 1]++;
            return tl;
        }
        for (int j = 0; j < 4; j++)
            t[tl++] = 0xff;
        return tl;
    }
    if (r < 80 && curl) {
        memcpy(t, cur, curl);
        return curl;
    }
    tl = rnd_below(&m->rng, 6);
    for (size_t j = 0; j < tl; j++) {
        uint64_t x = rnd_below(&m->rng, 10);
        t[j] = x < 6 ? u_alpha[x] : u_tags[x - 6];
    }
    return tl;
}

/* Present at every moment of the walk so far (so it may not be skipped),
 * and the value is one it had (for a key on which the iterator stands). */
static bool always_present(const model_t *m, size_t i)
{
    const uint8_t *v;
    size_t vl;
    if (!m->touched[i])
        return view(m, i, &v, &vl);
    for (size_t j = 0; j < m->nver; j++)
        if (m->ver[j].i == i && !m->ver[j].present)
            return false;
    return true;
}

static bool value_seen(const model_t *m, size_t i, const void *val, size_t vl)
{
    const uint8_t *v;
    size_t evl;
    if (!m->touched[i])
        return view(m, i, &v, &evl) && evl == vl && (vl == 0 || memcmp(v, val, vl) == 0);
    for (size_t j = 0; j < m->nver; j++)
        if (m->ver[j].i == i && m->ver[j].present && m->ver[j].vl == vl &&
            (vl == 0 || memcmp(m->ver[j].v, val, vl) == 0))
            return true;
    return false;
}

/*
 * Checks the iterator after a move in direction dir from a bound: the
 * entry it stands on lies beyond the bound (at it when inclusive) and in
 * the prefix, existed during the walk with that value, and no entry
 * present throughout the walk lies between the bound and it (or beyond
 * the bound when the iterator reached the end). bk NULL: no bound (a
 * seek to the first or last entry).
 */
static void check_move(model_t *m, const fl_store_iter_t *it, const prefix_t *px, const uint8_t *bk,
                       size_t bkl, bool inclusive, int dir)
{
    size_t kl = 0, vl = 0;
    const uint8_t *k = fl_store_iter_key(it, &kl);
    const uint8_t *v = fl_store_iter_value(it, &vl);
    bool valid = fl_store_iter_valid(it);

    cr_assert_eq(fl_store_iter_status(it), FL_OK, "%s: iterator status %s", m->ctx,
                 fl_err_str(fl_store_iter_status(it)));
    if (valid) {
        cr_assert_not_null(k, "%s", m->ctx);
        long i = u_find(m, k, kl);
        cr_assert(i >= 0, "%s: iterator at %s, a key never written", m->ctx, hex(k, kl));
        cr_assert(has_prefix(k, kl, px->p, px->pl), "%s: iterator at %s, outside prefix %s", m->ctx,
                  hex(k, kl), hex(px->p, px->pl));
        if (bk) {
            int c = key_cmp(k, kl, bk, bkl) * dir;
            cr_assert(c > 0 || (inclusive && c == 0), "%s: iterator at %s, not %s %s", m->ctx,
                      hex(k, kl), dir > 0 ? (inclusive ? ">=" : ">") : (inclusive ? "<=" : "<"),
                      hex(bk, bkl));
        }
        cr_assert(value_seen(m, (size_t)i, v, vl), "%s: iterator at %s with a value it never had",
                  m->ctx, hex(k, kl));
    } else {
        cr_assert(k == NULL && kl == 0 && v == NULL && vl == 0, "%s: invalid iterator has a key",
                  m->ctx);
    }
    for (size_t j = 0; j < m->n; j++) {
        const ukey_t *u = &m->u[j];
        if (!has_prefix(u->b, u->len, px->p, px->pl) || !always_present(m, j))
            continue;
        if (bk) {
            int c = key_cmp(u->b, u->len, bk, bkl) * dir;
            if (c < 0 || (c == 0 && !inclusive))
                continue;
        }
        cr_assert(valid && key_cmp(u->b, u->len, k, kl) * dir >= 0,
                  "%s: iterator skipped %s (prefix %s, from %s, now at %s)", m->ctx,
                  hex(u->b, u->len), hex(px->p, px->pl), bk ? hex(bk, bkl) : "the edge",
                  valid ? hex(k, kl) : "the end");
    }
}

/* A universe index in the prefix near the current key (or anywhere in the
 * prefix); -1 if the prefix holds no universe key. */
static long pick_in_prefix(model_t *m, const prefix_t *px, const uint8_t *cur, size_t curl)
{
    size_t lo = u_lb(m, px->p, px->pl), hi = lo;
    while (hi < m->n && has_prefix(m->u[hi].b, m->u[hi].len, px->p, px->pl))
        hi++;
    if (hi == lo)
        return -1;
    if (curl && rnd_below(&m->rng, 3)) {
        long c = (long)u_lb(m, cur, curl) + (long)rnd_below(&m->rng, 7) - 3;
        if (c >= (long)lo && c < (long)hi)
            return c;
    }
    return (long)(lo + rnd_below(&m->rng, hi - lo));
}

static long pick_outside_prefix(model_t *m, const prefix_t *px)
{
    for (int tries = 0; tries < 20; tries++) {
        size_t i = rnd_below(&m->rng, m->n);
        if (!has_prefix(m->u[i].b, m->u[i].len, px->p, px->pl))
            return (long)i;
    }
    return -1;
}

static void do_walk(model_t *m)
{
    prefix_t px;
    fl_store_iter_t *it = NULL;
    uint8_t cur[8], t[16];
    size_t curl = 0; /* 0: not valid */
    int steps = 1 + (int)rnd_below(&m->rng, 40);
    size_t base = strlen(m->ctx);

    pick_prefix(m, &px);
    fl_err_t rc = fl_store_iter_new(m->s, px.p, px.pl, &it);
    cr_assert_eq(rc, FL_OK, "%s: iter_new: %s", m->ctx, fl_store_errmsg(m->s));
    m->walking = true;
    m->nver = 0;
    memset(m->touched, 0, sizeof(m->touched));

    for (int st = 0; st < steps; st++) {
        uint64_t r = rnd_below(&m->rng, 100);
        if (st == 0 || r < 15) {
            uint64_t kind = rnd_below(&m->rng, 4);
            snprintf(m->ctx + base, sizeof(m->ctx) - base, " walk %s step %d %s", hex(px.p, px.pl),
                     st,
                     kind == 0   ? "seek_first"
                     : kind == 1 ? "seek_last"
                     : kind == 2 ? "seek"
                                 : "seek_for_prev");
            if (kind == 0) {
                fl_store_iter_seek_first(it);
                check_move(m, it, &px, NULL, 0, true, 1);
            } else if (kind == 1) {
                fl_store_iter_seek_last(it);
                check_move(m, it, &px, NULL, 0, true, -1);
            } else if (kind == 2) {
                size_t tl = pick_target(m, &px, cur, curl, t);
                fl_store_iter_seek(it, t, tl);
                check_move(m, it, &px, t, tl, true, 1);
            } else {
                size_t tl = pick_target(m, &px, cur, curl, t);
                fl_store_iter_seek_for_prev(it, t, tl);
                check_move(m, it, &px, t, tl, true, -1);
            }
        } else if (r < 85 || curl == 0) {
            int dir = r < 50 ? 1 : -1;
            snprintf(m->ctx + base, sizeof(m->ctx) - base, " walk %s step %d %s from %s",
                     hex(px.p, px.pl), st, dir > 0 ? "next" : "prev",
                     curl ? hex(cur, curl) : "the end");
            if (dir > 0)
                fl_store_iter_next(it);
            else
                fl_store_iter_prev(it);
            if (curl)
                check_move(m, it, &px, cur, curl, false, dir);
            else
                cr_assert(!fl_store_iter_valid(it), "%s: a move from the end revived", m->ctx);
        } else if (r < 91) {
            /* deleting the current entry, then moving on, is safe */
            snprintf(m->ctx + base, sizeof(m->ctx) - base, " walk %s step %d delete current %s",
                     hex(px.p, px.pl), st, hex(cur, curl));
            do_delete(m, (size_t)u_find(m, cur, curl));
            size_t kl;
            const void *k = fl_store_iter_key(it, &kl);
            cr_assert(fl_store_iter_valid(it) && key_cmp(k, kl, cur, curl) == 0,
                      "%s: the current key is no longer readable", m->ctx);
            continue;
        } else if (r < 95) {
            long i = pick_outside_prefix(m, &px);
            snprintf(m->ctx + base, sizeof(m->ctx) - base, " walk %s step %d write outside",
                     hex(px.p, px.pl), st);
            if (i >= 0) {
                if (rnd_below(&m->rng, 2))
                    do_put(m, (size_t)i);
                else
                    do_delete(m, (size_t)i);
            }
            continue;
        } else {
            long i = pick_in_prefix(m, &px, cur, curl);
            snprintf(m->ctx + base, sizeof(m->ctx) - base, " walk %s step %d write inside",
                     hex(px.p, px.pl), st);
            if (i >= 0) {
                if (rnd_below(&m->rng, 2))
                    do_put(m, (size_t)i);
                else
                    do_delete(m, (size_t)i);
            }
            continue;
        }
        if (fl_store_iter_valid(it)) {
            const void *k = fl_store_iter_key(it, &curl);
            memcpy(cur, k, curl);
        } else {
            curl = 0;
        }
    }
    fl_store_iter_free(it);
    m->walking = false;
    m->ctx[base] = '\0';
}

/* Exact comparison of a whole prefix, both directions, with the view. */
static void check_scan(model_t *m, const prefix_t *px)
{
    fl_store_iter_t *it;
    fl_err_t rc = fl_store_iter_new(m->s, px->p, px->pl, &it);
    cr_assert_eq(rc, FL_OK, "%s: iter_new: %s", m->ctx, fl_store_errmsg(m->s));
    for (int dir = 1; dir >= -1; dir -= 2) {
        long i = dir > 0 ? 0 : (long)m->n - 1;
        if (dir > 0)
            fl_store_iter_seek_first(it);
        else
            fl_store_iter_seek_last(it);
        for (;; i += dir) {
            const uint8_t *ev = NULL;
            size_t evl = 0;
            while (i >= 0 && i < (long)m->n &&
                   !(has_prefix(m->u[i].b, m->u[i].len, px->p, px->pl) &&
                     view(m, (size_t)i, &ev, &evl)))
                i += dir;
            bool want = i >= 0 && i < (long)m->n;
            cr_assert_eq(fl_store_iter_valid(it), want, "%s: scan %s %s: expected %s", m->ctx,
                         hex(px->p, px->pl), dir > 0 ? "forward" : "backward",
                         want ? hex(m->u[i].b, m->u[i].len) : "the end");
            if (!want)
                break;
            size_t kl, vl;
            const void *k = fl_store_iter_key(it, &kl);
            const void *v = fl_store_iter_value(it, &vl);
            cr_assert(key_cmp(k, kl, m->u[i].b, m->u[i].len) == 0,
                      "%s: scan %s %s at %s, expected %s", m->ctx, hex(px->p, px->pl),
                      dir > 0 ? "forward" : "backward", hex(k, kl), hex(m->u[i].b, m->u[i].len));
            cr_assert(vl == evl && (vl == 0 || memcmp(v, ev, vl) == 0),
                      "%s: scan at %s: another value", m->ctx, hex(k, kl));
            if (dir > 0)
                fl_store_iter_next(it);
            else
                fl_store_iter_prev(it);
        }
        cr_assert_eq(fl_store_iter_status(it), FL_OK, "%s", m->ctx);
    }
    fl_store_iter_free(it);
}

static void check_full(model_t *m)
{
    prefix_t px = {.pl = 0};
    for (size_t i = 0; i < m->n; i++)
        check_get(m, m->u[i].b, m->u[i].len);
    check_scan(m, &px);
    pick_prefix(m, &px);
    check_scan(m, &px);
    check_changes(m);
    check_pending_count(m);
}

static fl_store_t *model_open(model_t *m)
{
    fl_store_t *s = open_store_cached(m->dir, m->cache_bytes);
    cr_assert_eq(fl_store_set_background_writes(s, m->background), FL_OK, "%s", fl_store_errmsg(s));
    return s;
}

static void model_run(const char *backend, const char *dir, uint64_t seed, int nops,
                      size_t cache_bytes, bool background)
{
    model_t *m = calloc(1, sizeof(*m));
    cr_assert_not_null(m);
    universe_build(m);
    m->backend = backend;
    m->dir = dir;
    m->seed = seed;
    m->rng = seed;
    m->cache_bytes = cache_bytes;
    m->background = background;
    m->s = model_open(m);

    for (m->step = 0; m->step < nops; m->step++) {
        uint64_t r = rnd_below(&m->rng, 1000);
        snprintf(m->ctx, sizeof(m->ctx), "%s seed %" PRIu64 " step %d", backend, seed, m->step);
        if (r < 280) {
            do_put(m, pick_index(m, false));
        } else if (r < 400) {
            do_delete(m, pick_index(m, true)); /* present, or often absent */
        } else if (r < 540) {
            size_t i = pick_index(m, true);
            check_get(m, m->u[i].b, m->u[i].len);
        } else if (r < 560) {
            /* a key outside the universe: a shorter, longer or foreign one */
            uint8_t k[6];
            size_t kl = 1 + rnd_below(&m->rng, 5);
            for (size_t j = 0; j < kl; j++)
                k[j] = u_alpha[rnd_below(&m->rng, U_ALPHA)];
            k[0] = (uint8_t)(0x0f + rnd_below(&m->rng, 5));
            check_get(m, k, kl);
        } else if (r < 590) {
            do_commit(m);
        } else if (r < 605) {
            fl_store_abort(m->s);
            clear_pending(m);
            check_committed(m);
        } else if (r < 625) {
            do_restore(m, pick_index(m, true));
        } else if (r < 735) {
            do_walk(m);
        } else if (r < 755) {
            check_changes(m);
        } else if (r < 758 && dir) {
            /* a crash before the commit: the pending batch is lost */
            fl_store_free(m->s);
            m->s = model_open(m);
            clear_pending(m);
            check_committed(m);
        } else {
            size_t i = pick_index(m, false);
            check_get(m, m->u[i].b, m->u[i].len);
        }
        check_pending_count(m);
        if (m->step % 64 == 63)
            check_full(m);
    }
    check_full(m);
    do_commit(m);
    check_full(m);
    fl_store_free(m->s);
    free(m);
}

static const uint64_t model_seeds[] = {1, 2, 3, 0xfeed, 77, 31337};
#define MODEL_OPS 3000

Test(store_model, memory, .timeout = 300)
{
    for (size_t i = 0; i < sizeof(model_seeds) / sizeof(model_seeds[0]); i++)
        model_run("memory", NULL, model_seeds[i], MODEL_OPS, 0, false);
}

/* A read cache far smaller than the universe: reads mix hits, misses
 * and evictions, and commits and aborts must keep every answer right. */
#define MODEL_CACHE_BYTES 2048

Test(store_model, memory_cached, .timeout = 300)
{
    for (size_t i = 0; i < sizeof(model_seeds) / sizeof(model_seeds[0]); i++)
        model_run("memory+cache", NULL, model_seeds[i], MODEL_OPS, MODEL_CACHE_BYTES, false);
}

/* Every seed on a fresh RocksDB store; odd seeds add the cache when
 * cache_odd, every seed has it when cache_all. */
static void model_rocksdb(const char *name, bool cache_all, bool cache_odd, bool background)
{
    for (size_t i = 0; i < sizeof(model_seeds) / sizeof(model_seeds[0]); i++) {
        char err[256], label[64];
        const char *dir = mk_tmpdir();
        bool cache = cache_all || (cache_odd && i % 2);
        snprintf(label, sizeof(label), "%s%s", name, cache ? "+cache" : "");
        model_run(label, dir, model_seeds[i], MODEL_OPS, cache ? MODEL_CACHE_BYTES : 0, background);
        cr_assert_eq(fl_kv_rocksdb_destroy(dir, err, sizeof(err)), FL_OK, "%s", err);
        rm_tmpdirs();
    }
}

Test(store_model, rocksdb, .fini = rm_tmpdirs, .timeout = 300)
{
    model_rocksdb("rocksdb", false, false, false);
}

Test(store_model, rocksdb_cached, .fini = rm_tmpdirs, .timeout = 300)
{
    model_rocksdb("rocksdb", true, false, false);
}

/* Background writes, with and without the cache: reads, walks, aborts
 * and restores run while the last commit's write is in flight. */
Test(store_model, rocksdb_background, .fini = rm_tmpdirs, .timeout = 300)
{
    model_rocksdb("rocksdb+background", false, true, true);
}

/* ---- restore staging ---- */

TestSuite(store, .timeout = 60);
TestSuite(store_regress, .timeout = 60);

typedef struct {
    char buf[512];
    size_t o;
} changes_str_t;

static int changes_str_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    changes_str_t *c = arg;
    c->o += (size_t)snprintf(c->buf + c->o, sizeof(c->buf) - c->o, "%s%s%s%.*s", c->o ? " " : "",
                             hex(key, klen), val ? "=" : " deleted", val ? (int)vlen : 0,
                             val ? (const char *)val : "");
    return 0;
}

/* The pending changes as "key=value key deleted". */
static const char *changes_str(fl_store_t *s)
{
    static changes_str_t c;
    c.o = 0;
    c.buf[0] = '\0';
    cr_assert_eq(fl_store_changes(s, changes_str_cb, &c), FL_OK);
    return c.buf;
}

static void restore_checks(const char *dir)
{
    fl_store_t *s = open_store(dir);
    fl_store_offset_t off = {"posts", 0, 7};
    int64_t pos;
    bool found;

    put_ok(s, KEY(0x10, 0x01), "a");
    put_ok(s, KEY(0x10, 0x02), "b");
    put_ok(s, KEY(0x10, 0x03), "c");
    commit_ok(s, NULL, 0, -1);

    /* restore overwrites b, deletes c, adds d; a processor deletes a, adds e */
    restore_ok(s, KEY(0x10, 0x02), "rb");
    restore_ok(s, KEY(0x10, 0x03), NULL);
    restore_ok(s, KEY(0x10, 0x04), "rd");
    restore_ok(s, KEY(0x10, 0x06), NULL); /* a tombstone for an absent key */
    del_ok(s, KEY(0x10, 0x01));
    put_ok(s, KEY(0x10, 0x05), "pe");
    cr_assert_eq(fl_store_pending(s), 6);

    expect_get(s, KEY(0x10, 0x01), NULL);
    expect_get(s, KEY(0x10, 0x02), "rb");
    expect_get(s, KEY(0x10, 0x03), NULL);
    expect_get(s, KEY(0x10, 0x04), "rd");
    expect_get(s, KEY(0x10, 0x05), "pe");
    expect_get(s, KEY(0x10, 0x06), NULL);
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "1002=rb 1004=rd 1005=pe");
    cr_assert_str_eq(scan_str(s, KEY(0x10), -1), "1005=pe 1004=rd 1002=rb");
    cr_assert_str_eq(scan_str(s, NULL, 0, 1), "1002=rb 1004=rd 1005=pe");

    /* only the processor's changes go to the changelog */
    cr_assert_str_eq(changes_str(s), "1001 deleted 1005=pe");
    /* a processor write over a restored entry is a change like any other */
    put_ok(s, KEY(0x10, 0x04), "pd");
    cr_assert_str_eq(changes_str(s), "1001 deleted 1004=pd 1005=pe");
    cr_assert_eq(fl_store_pending(s), 6);

    cr_assert_eq(fl_store_changelog_position(s, &pos), FL_OK);
    cr_assert_eq(pos, 0);
    commit_ok(s, &off, 1, 42);
    cr_assert_str_eq(changes_str(s), "");
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "1002=rb 1004=pd 1005=pe");
    cr_assert_eq(fl_store_changelog_position(s, &pos), FL_OK);
    cr_assert_eq(pos, 42);
    /* -1 leaves the position alone */
    restore_ok(s, KEY(0x10, 0x02), NULL);
    commit_ok(s, NULL, 0, -1);
    cr_assert_eq(fl_store_changelog_position(s, &pos), FL_OK);
    cr_assert_eq(pos, 42);
    cr_assert_eq(fl_store_offset(s, CHANGELOG, PARTITION, &pos, &found), FL_OK);
    cr_assert(found && pos == 42);

    if (dir) {
        fl_store_free(s);
        s = open_store(dir);
    }
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "1004=pd 1005=pe");
    cr_assert_eq(fl_store_offset(s, "posts", 0, &pos, &found), FL_OK);
    cr_assert(found && pos == 7);
    cr_assert_eq(fl_store_changelog_position(s, &pos), FL_OK);
    cr_assert_eq(pos, 42);

    /* staged restore entries are dropped by an abort like any change */
    restore_ok(s, KEY(0x10, 0x07), "x");
    fl_store_abort(s);
    expect_get(s, KEY(0x10, 0x07), NULL);
    cr_assert_eq(fl_store_pending(s), 0);
    fl_store_free(s);
}

Test(store, restore_entries_visible_uncaptured_committed_memory)
{
    restore_checks(NULL);
}

Test(store, restore_entries_visible_uncaptured_committed_rocksdb, .fini = rm_tmpdirs)
{
    restore_checks(mk_tmpdir());
}

/* ---- focused edge cases ---- */

static void empty_checks(const char *dir)
{
    static const struct {
        uint8_t b[3];
        uint8_t len;
    } prefixes[] = {{{0}, 0}, {{0x10}, 1}, {{0xff}, 1}, {{0xff, 0xff}, 2}, {{0x10, 0x00, 0xff}, 3}};
    fl_store_t *s = open_store(dir);
    int64_t pos = -1;
    bool found = true;

    cr_assert_str_eq(fl_store_name(s), STORE_NAME);
    cr_assert_eq(fl_store_partition(s), PARTITION);
    cr_assert_not_null(fl_store_kv(s));
    cr_assert_eq(fl_store_pending(s), 0);
    expect_get(s, KEY(0x10, 0x01), NULL);
    cr_assert_str_eq(changes_str(s), "");
    cr_assert_eq(fl_store_changelog_position(s, &pos), FL_OK);
    cr_assert_eq(pos, 0);
    cr_assert_eq(fl_store_offset(s, "posts", 0, &pos, &found), FL_OK);
    cr_assert(!found);

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        fl_store_iter_t *it;
        cr_assert_eq(fl_store_iter_new(s, prefixes[i].b, prefixes[i].len, &it), FL_OK);
        /* not positioned yet: not valid, and moving does nothing */
        expect_at(it, END);
        fl_store_iter_next(it);
        expect_at(it, END);
        fl_store_iter_prev(it);
        expect_at(it, END);
        fl_store_iter_seek_first(it);
        expect_at(it, END);
        fl_store_iter_seek_last(it);
        expect_at(it, END);
        fl_store_iter_seek(it, KEY(0x10, 0x05));
        expect_at(it, END);
        fl_store_iter_seek(it, NULL, 0);
        expect_at(it, END);
        fl_store_iter_prev(it);
        expect_at(it, END);
        fl_store_iter_free(it);
    }
    fl_store_iter_free(NULL);

    /* an empty commit still records offsets and the position */
    fl_store_offset_t off = {"posts", 0, 5};
    commit_ok(s, &off, 1, 9);
    cr_assert_eq(fl_store_offset(s, "posts", 0, &pos, &found), FL_OK);
    cr_assert(found && pos == 5);
    cr_assert_eq(fl_store_changelog_position(s, &pos), FL_OK);
    cr_assert_eq(pos, 9);
    fl_store_abort(s);
    fl_store_free(s);
    fl_store_free(NULL);
}

/* One batch far larger than the next: the pending list's index, its
 * chunks and the kv batch's run shrink back, and every answer stays right
 * across the change of size (background writes on RocksDB included). */
static void large_then_small_checks(fl_store_t *s)
{
    enum { BIG = 200000 };
    uint8_t k[5] = {0x10, 0, 0, 0, 0};
    char v[16];
    size_t n = 0;

    for (uint32_t i = 0; i < BIG; i++) {
        k[1] = (uint8_t)(i >> 24), k[2] = (uint8_t)(i >> 16), k[3] = (uint8_t)(i >> 8);
        k[4] = (uint8_t)i;
        snprintf(v, sizeof(v), "big%u", i);
        put_ok(s, k, sizeof(k), v);
    }
    commit_ok(s, NULL, 0, -1);
    for (int round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < 10; i++) { /* rewrite ten keys, delete ten */
            k[1] = 0, k[2] = (uint8_t)(round + 1), k[3] = 0, k[4] = (uint8_t)i;
            snprintf(v, sizeof(v), "small%d-%u", round, i);
            put_ok(s, k, sizeof(k), v);
            expect_get(s, k, sizeof(k), v);
            k[4] = (uint8_t)(i + 100);
            cr_assert_eq(fl_store_delete(s, k, sizeof(k)), FL_OK);
            expect_get(s, k, sizeof(k), NULL);
        }
        commit_ok(s, NULL, 0, -1);
    }
    k[1] = 0, k[2] = 3, k[3] = 0, k[4] = 9;
    expect_get(s, k, sizeof(k), "small2-9");
    k[1] = 0, k[2] = 0x01, k[3] = 0x86, k[4] = 0xa0; /* an untouched big key */
    expect_get(s, k, sizeof(k), "big100000");
    fl_store_iter_t *it = NULL;
    cr_assert_eq(fl_store_iter_new(s, k, 1, &it), FL_OK);
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it))
        n++;
    fl_store_iter_free(it);
    cr_assert_eq(n, BIG - 30, "entries after the small batches: %zu", n);
}

Test(store, large_then_small_batches_memory)
{
    fl_store_t *s = open_store(NULL);
    large_then_small_checks(s);
    fl_store_free(s);
}

Test(store, large_then_small_batches_rocksdb_background, .fini = rm_tmpdirs, .timeout = 120)
{
    fl_store_t *s = open_store(mk_tmpdir());
    cr_assert_eq(fl_store_set_background_writes(s, true), FL_OK);
    large_then_small_checks(s);
    fl_store_free(s);
}

Test(store, empty_store_memory)
{
    empty_checks(NULL);
}

Test(store, empty_store_rocksdb, .fini = rm_tmpdirs)
{
    empty_checks(mk_tmpdir());
}

static void all_ff_checks(const char *dir)
{
    fl_store_t *s = open_store(dir);
    fl_store_iter_t *it;

    put_ok(s, KEY(0xfe, 0xff), "below");
    put_ok(s, KEY(0xff), "ff");
    put_ok(s, KEY(0xff, 0x01), "ff01");
    put_ok(s, KEY(0xff, 0xff), "ffff");
    put_ok(s, KEY(0xff, 0xff, 0x00), "ffff00");
    put_ok(s, KEY(0xff, 0xff, 0xff), "ffffff");
    commit_ok(s, NULL, 0, -1);

    /* committed only */
    cr_assert_str_eq(scan_str(s, KEY(0xff, 0xff), -1), "ffffff=ffffff ffff00=ffff00 ffff=ffff");
    cr_assert_str_eq(scan_str(s, KEY(0xff), -1),
                     "ffffff=ffffff ffff00=ffff00 ffff=ffff ff01=ff01 ff=ff");
    cr_assert_str_eq(scan_str(s, KEY(0xff, 0xff, 0xff, 0xff), -1), "");

    /* the last pending key is outside the prefix (below it) */
    put_ok(s, KEY(0xff, 0x01, 0x01), "p");
    cr_assert_eq(fl_store_iter_new(s, KEY(0xff, 0xff), &it), FL_OK);
    fl_store_iter_seek_last(it);
    expect_at(it, KEY(0xff, 0xff, 0xff), "ffffff");
    fl_store_iter_free(it);

    /* a pending key past every committed one, then a tombstone on it */
    put_ok(s, KEY(0xff, 0xff, 0xff, 0xff), "top");
    cr_assert_eq(fl_store_iter_new(s, KEY(0xff, 0xff), &it), FL_OK);
    fl_store_iter_seek_last(it);
    expect_at(it, KEY(0xff, 0xff, 0xff, 0xff), "top");
    fl_store_iter_prev(it);
    expect_at(it, KEY(0xff, 0xff, 0xff), "ffffff");
    fl_store_iter_next(it);
    expect_at(it, KEY(0xff, 0xff, 0xff, 0xff), "top");
    fl_store_iter_next(it);
    expect_at(it, END);
    fl_store_iter_free(it);

    del_ok(s, KEY(0xff, 0xff, 0xff, 0xff));
    del_ok(s, KEY(0xff, 0xff, 0xff));
    cr_assert_eq(fl_store_iter_new(s, KEY(0xff, 0xff), &it), FL_OK);
    fl_store_iter_seek_last(it);
    expect_at(it, KEY(0xff, 0xff, 0x00), "ffff00");
    fl_store_iter_free(it);
    cr_assert_str_eq(scan_str(s, NULL, 0, -1), "ffff00=ffff00 ffff=ffff ff0101=p ff01=ff01 ff=ff "
                                               "feff=below");
    cr_assert_str_eq(scan_str(s, KEY(0xff, 0xff), 1), "ffff=ffff ffff00=ffff00");

    /* the empty prefix: seek_last starts from the very end */
    cr_assert_eq(fl_store_iter_new(s, NULL, 0, &it), FL_OK);
    fl_store_iter_seek_last(it);
    expect_at(it, KEY(0xff, 0xff, 0x00), "ffff00");
    fl_store_iter_free(it);
    fl_store_free(s);
}

Test(store, all_ff_prefix_seek_last_memory)
{
    all_ff_checks(NULL);
}

Test(store, all_ff_prefix_seek_last_rocksdb, .fini = rm_tmpdirs)
{
    all_ff_checks(mk_tmpdir());
}

static void tombstone_edge_checks(const char *dir)
{
    fl_store_t *s = open_store(dir);
    fl_store_iter_t *it;

    put_ok(s, KEY(0x10, 0x01), "1");
    put_ok(s, KEY(0x10, 0x02), "2");
    put_ok(s, KEY(0x10, 0x03), "3");
    put_ok(s, KEY(0x10, 0x04), "4");
    put_ok(s, KEY(0x11, 0x01), "next-prefix");
    put_ok(s, KEY(0x0f, 0xff), "prev-prefix");
    commit_ok(s, NULL, 0, -1);

    /* tombstones on the first and the last committed entry of the prefix */
    del_ok(s, KEY(0x10, 0x01));
    del_ok(s, KEY(0x10, 0x04));
    cr_assert_eq(fl_store_iter_new(s, KEY(0x10), &it), FL_OK);
    fl_store_iter_seek_first(it);
    expect_at(it, KEY(0x10, 0x02), "2");
    fl_store_iter_prev(it); /* prev from the first entry: the end */
    expect_at(it, END);
    fl_store_iter_next(it); /* and it stays there */
    expect_at(it, END);
    fl_store_iter_seek_last(it);
    expect_at(it, KEY(0x10, 0x03), "3");
    fl_store_iter_next(it);
    expect_at(it, END);
    fl_store_iter_prev(it);
    expect_at(it, END);
    fl_store_iter_seek(it, KEY(0x10, 0x01));
    expect_at(it, KEY(0x10, 0x02), "2");
    fl_store_iter_seek(it, KEY(0x10, 0x03, 0x00));
    expect_at(it, END);
    fl_store_iter_free(it);

    /* a run of tombstones, pending-only entries deleted again */
    put_ok(s, KEY(0x10, 0x00), "p0");
    del_ok(s, KEY(0x10, 0x00));
    put_ok(s, KEY(0x10, 0x05), "p5");
    del_ok(s, KEY(0x10, 0x05));
    del_ok(s, KEY(0x10, 0x02));
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "1003=3");
    cr_assert_str_eq(scan_str(s, KEY(0x10), -1), "1003=3");
    del_ok(s, KEY(0x10, 0x03));
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "");
    cr_assert_str_eq(scan_str(s, KEY(0x10), -1), "");
    cr_assert_str_eq(scan_str(s, NULL, 0, 1), "0fff=prev-prefix 1101=next-prefix");
    cr_assert_str_eq(scan_str(s, NULL, 0, -1), "1101=next-prefix 0fff=prev-prefix");
    cr_assert_eq(fl_store_pending(s), 6);
    cr_assert_str_eq(changes_str(s),
                     "1000 deleted 1001 deleted 1002 deleted 1003 deleted 1004 deleted 1005 "
                     "deleted");

    /* prev from the first entry when it comes from the pending side */
    fl_store_abort(s);
    put_ok(s, KEY(0x10, 0x00), "p0");
    cr_assert_eq(fl_store_iter_new(s, KEY(0x10), &it), FL_OK);
    fl_store_iter_seek_first(it);
    expect_at(it, KEY(0x10, 0x00), "p0");
    fl_store_iter_prev(it);
    expect_at(it, END);
    fl_store_iter_seek(it, KEY(0x10, 0x01));
    expect_at(it, KEY(0x10, 0x01), "1");
    fl_store_iter_prev(it);
    expect_at(it, KEY(0x10, 0x00), "p0");
    fl_store_iter_prev(it);
    expect_at(it, END);
    fl_store_iter_free(it);
    fl_store_free(s);
}

Test(store, tombstones_on_first_and_last_memory)
{
    tombstone_edge_checks(NULL);
}

Test(store, tombstones_on_first_and_last_rocksdb, .fini = rm_tmpdirs)
{
    tombstone_edge_checks(mk_tmpdir());
}

static void seek_outside_checks(const char *dir)
{
    fl_store_t *s = open_store(dir);
    fl_store_iter_t *it;

    put_ok(s, KEY(0x10, 0xff), "before");
    put_ok(s, KEY(0x11), "p");
    put_ok(s, KEY(0x11, 0x05), "c5");
    put_ok(s, KEY(0x12), "after");
    commit_ok(s, NULL, 0, -1);
    put_ok(s, KEY(0x11, 0x00), "p0");
    put_ok(s, KEY(0x11, 0xff, 0xff), "pff");

    cr_assert_eq(fl_store_iter_new(s, KEY(0x11), &it), FL_OK);
    /* before the prefix: its first entry */
    fl_store_iter_seek(it, KEY(0x10, 0xff, 0xff));
    expect_at(it, KEY(0x11), "p");
    fl_store_iter_seek(it, KEY(0x01));
    expect_at(it, KEY(0x11), "p");
    fl_store_iter_seek(it, NULL, 0);
    expect_at(it, KEY(0x11), "p");
    fl_store_iter_seek(it, KEY(0x00, 0x00));
    expect_at(it, KEY(0x11), "p");
    /* inside */
    fl_store_iter_seek(it, KEY(0x11, 0x00, 0x00));
    expect_at(it, KEY(0x11, 0x05), "c5");
    fl_store_iter_seek(it, KEY(0x11, 0xff));
    expect_at(it, KEY(0x11, 0xff, 0xff), "pff");
    fl_store_iter_prev(it);
    expect_at(it, KEY(0x11, 0x05), "c5");
    /* beyond the prefix: the end */
    fl_store_iter_seek(it, KEY(0x11, 0xff, 0xff, 0x00));
    expect_at(it, END);
    fl_store_iter_seek(it, KEY(0x12));
    expect_at(it, END);
    fl_store_iter_seek(it, KEY(0xff, 0xff, 0xff));
    expect_at(it, END);
    fl_store_iter_free(it);

    /* a prefix no key has, between two that exist */
    cr_assert_eq(fl_store_iter_new(s, KEY(0x11, 0x01), &it), FL_OK);
    fl_store_iter_seek_first(it);
    expect_at(it, END);
    fl_store_iter_seek_last(it);
    expect_at(it, END);
    fl_store_iter_seek(it, KEY(0x11));
    expect_at(it, END);
    fl_store_iter_free(it);
    fl_store_free(s);
}

Test(store, seek_before_and_beyond_prefix_memory)
{
    seek_outside_checks(NULL);
}

Test(store, seek_before_and_beyond_prefix_rocksdb, .fini = rm_tmpdirs)
{
    seek_outside_checks(mk_tmpdir());
}

/* Deleting (or overwriting) every entry as the iterator reaches it, both
 * directions, entries from both sides of the merge. */
static void delete_current_checks(const char *dir)
{
    fl_store_t *s = open_store(dir);
    fl_store_iter_t *it;
    int n;

    for (int i = 1; i <= 8; i += 2)
        put_ok(s, KEY(0x10, (uint8_t)i), "c");
    commit_ok(s, NULL, 0, -1);
    for (int i = 2; i <= 8; i += 2)
        put_ok(s, KEY(0x10, (uint8_t)i), "p");
    put_ok(s, KEY(0x10, 0x03), "p"); /* a pending overwrite of a committed entry */

    cr_assert_eq(fl_store_iter_new(s, KEY(0x10), &it), FL_OK);
    n = 0;
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t kl;
        const uint8_t *k = fl_store_iter_key(it, &kl);
        cr_assert_eq(k[1], n + 1);
        if (k[1] % 2)
            put_ok(s, k, kl, "over");
        del_ok(s, k, kl);
        n++;
    }
    cr_assert_eq(n, 8);
    cr_assert_eq(fl_store_iter_status(it), FL_OK);
    fl_store_iter_free(it);
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "");

    fl_store_abort(s);
    for (int i = 2; i <= 8; i += 2)
        put_ok(s, KEY(0x10, (uint8_t)i), "p");
    cr_assert_eq(fl_store_iter_new(s, KEY(0x10), &it), FL_OK);
    n = 8;
    for (fl_store_iter_seek_last(it); fl_store_iter_valid(it); fl_store_iter_prev(it)) {
        size_t kl;
        const uint8_t *k = fl_store_iter_key(it, &kl);
        cr_assert_eq(k[1], n);
        put_ok(s, k, kl, "over"); /* overwriting the current entry is fine too */
        n--;
    }
    cr_assert_eq(n, 0);
    fl_store_iter_free(it);
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1),
                     "1001=over 1002=over 1003=over 1004=over 1005=over 1006=over 1007=over "
                     "1008=over");
    fl_store_free(s);
}

Test(store, delete_current_while_iterating_memory)
{
    delete_current_checks(NULL);
}

Test(store, delete_current_while_iterating_rocksdb, .fini = rm_tmpdirs)
{
    delete_current_checks(mk_tmpdir());
}

/* Pending changes survive a failed commit, which can then be retried. */
Test(store, failed_commit_keeps_pending_batch)
{
    fl_store_t *s = open_store(NULL);
    fl_store_offset_t bad = {"no spaces allowed", 0, 1}, good = {"posts", 1, 3};
    int64_t off;
    bool found;

    put_ok(s, KEY(0x10, 0x01), "a");
    del_ok(s, KEY(0x10, 0x02));
    cr_assert_eq(fl_store_commit(s, &bad, 1, 5), FL_ERR_INVALID);
    cr_assert_neq(fl_store_errmsg(s)[0], '\0');
    cr_assert_eq(fl_store_pending(s), 2);
    expect_get(s, KEY(0x10, 0x01), "a");
    cr_assert_str_eq(changes_str(s), "1001=a 1002 deleted");
    cr_assert_eq(fl_store_changelog_position(s, &off), FL_OK);
    cr_assert_eq(off, 0);
    char err[64];
    void *v;
    size_t vl;
    cr_assert_eq(fl_kv_get(fl_store_kv(s), KEY(0x10, 0x01), &v, &vl, &found, err, sizeof(err)),
                 FL_OK);
    cr_assert(!found, "a failed commit applied a change");
    commit_ok(s, &good, 1, 5);
    expect_get(s, KEY(0x10, 0x01), "a");
    cr_assert_eq(fl_store_offset(s, "posts", 1, &off, &found), FL_OK);
    cr_assert(found && off == 3);
    fl_store_free(s);
}

Test(store, bad_arguments_change_nothing)
{
    fl_store_t *s = open_store(NULL);
    fl_store_iter_t *it = (fl_store_iter_t *)&it;
    static uint8_t big[FL_KV_VALUE_MAX + 1];
    char buf[4];
    size_t vl;
    bool found;

    big[0] = 0x10;
    cr_assert_eq(fl_store_put(s, KEY(0x00, 0x01), "x", 1), FL_ERR_INVALID);
    cr_assert_neq(fl_store_errmsg(s)[0], '\0');
    cr_assert_eq(fl_store_delete(s, KEY(0x00)), FL_ERR_INVALID);
    cr_assert_eq(fl_store_restore_apply(s, KEY(0x00, 0x76), "x", 1), FL_ERR_INVALID);
    cr_assert_eq(fl_store_put(s, "", 0, "x", 1), FL_ERR_INVALID);
    cr_assert_neq(fl_store_put(s, big, FL_KV_KEY_MAX + 1, "x", 1), FL_OK);
    cr_assert_eq(fl_store_put(s, KEY(0x10), big, FL_KV_VALUE_MAX + 1), FL_ERR_OVERSIZED);
    cr_assert_eq(fl_store_pending(s), 0);
    /* the limits themselves are fine */
    cr_assert_eq(fl_store_put(s, big, FL_KV_KEY_MAX, "x", 1), FL_OK);
    cr_assert_eq(fl_store_put(s, KEY(0x10), big, FL_KV_VALUE_MAX), FL_OK);
    commit_ok(s, NULL, 0, -1);
    /* reads of reserved keys are refused too; a short buffer is reported */
    cr_assert_eq(fl_store_get(s, KEY(0x00, 0x76), buf, sizeof(buf), &vl, &found), FL_ERR_INVALID);
    cr_assert_eq(fl_store_get(s, KEY(0x10), buf, sizeof(buf), &vl, &found), FL_ERR_OVERSIZED);
    cr_assert(found && vl == FL_KV_VALUE_MAX);
    /* the same from the pending side */
    put_ok(s, KEY(0x11), "hello");
    cr_assert_eq(fl_store_get(s, KEY(0x11), buf, sizeof(buf), &vl, &found), FL_ERR_OVERSIZED);
    cr_assert(found && vl == 5);
    cr_assert_neq(fl_store_errmsg(s)[0], '\0');
    /* an iterator over reserved keys */
    cr_assert_eq(fl_store_iter_new(s, KEY(0x00), &it), FL_ERR_INVALID);
    cr_assert_null(it);
    fl_store_free(s);
}

/* ---- regressions ---- */

/*
 * A backend that can fail its iterators, as RocksDB does on an I/O error
 * (Valid() false, a non-OK status): a sorted array of at most 32 small
 * entries. The test holds the handle and sets fail_iter or fail_write,
 * and reads gets, the number of point reads that reached it.
 */
typedef struct {
    uint8_t k[16], v[16];
    size_t kl, vl;
} fent_t;

typedef struct {
    fent_t e[32];
    size_t n;
    bool fail_iter, fail_write;
    int gets;
} fkv_t;

typedef struct {
    fkv_t *kv;
    const uint8_t *lo, *hi;
    size_t lolen, hilen;
    long pos;
} fkv_iter_t;

static size_t fkv_lb(const fkv_t *f, const void *k, size_t kl)
{
    size_t i = 0;
    while (i < f->n && key_cmp(f->e[i].k, f->e[i].kl, k, kl) < 0)
        i++;
    return i;
}

static fl_err_t fkv_get(void *self, const void *key, size_t klen, fl_kv_value_fn *fn, void *arg,
                        bool *found, char *errstr, size_t errstr_size)
{
    fkv_t *f = self;
    size_t i = fkv_lb(f, key, klen);
    f->gets++;
    *found = i < f->n && key_cmp(f->e[i].k, f->e[i].kl, key, klen) == 0;
    return *found ? fn(arg, f->e[i].v, f->e[i].vl) : FL_OK;
}

static fl_err_t fkv_write(void *self, const fl_kv_op_t *ops, size_t n, char *errstr,
                          size_t errstr_size)
{
    fkv_t *f = self;
    if (f->fail_write) {
        snprintf(errstr, errstr_size, "injected write error");
        return FL_ERR_IO;
    }
    for (size_t j = 0; j < n; j++) {
        size_t i = fkv_lb(f, ops[j].key, ops[j].klen);
        bool hit = i < f->n && key_cmp(f->e[i].k, f->e[i].kl, ops[j].key, ops[j].klen) == 0;
        if (ops[j].del) {
            if (hit) {
                memmove(&f->e[i], &f->e[i + 1], (f->n - i - 1) * sizeof(f->e[0]));
                f->n--;
            }
            continue;
        }
        cr_assert(ops[j].klen <= 16 && ops[j].vlen <= 16, "test backend: entry too large");
        if (!hit) {
            cr_assert_lt(f->n, 32, "test backend full");
            memmove(&f->e[i + 1], &f->e[i], (f->n - i) * sizeof(f->e[0]));
            f->n++;
        }
        memcpy(f->e[i].k, ops[j].key, ops[j].klen);
        f->e[i].kl = ops[j].klen;
        if (ops[j].vlen)
            memcpy(f->e[i].v, ops[j].val, ops[j].vlen);
        f->e[i].vl = ops[j].vlen;
    }
    return FL_OK;
}

static fl_err_t fkv_iter_new(void *self, const void *lo, size_t lolen, const void *hi, size_t hilen,
                             void **itp, char *errstr, size_t errstr_size)
{
    fkv_iter_t *it = calloc(1, sizeof(*it));
    cr_assert_not_null(it);
    *it = (fkv_iter_t){self, lo, hi, lolen, hilen, -1};
    *itp = it;
    return FL_OK;
}

static bool fkv_in_range(const fkv_iter_t *it)
{
    const fent_t *e;
    if (it->pos < 0 || it->pos >= (long)it->kv->n)
        return false;
    e = &it->kv->e[it->pos];
    return key_cmp(e->k, e->kl, it->lo, it->lolen) >= 0 &&
           (!it->hi || key_cmp(e->k, e->kl, it->hi, it->hilen) < 0);
}

static void fkv_seek(void *p, const void *key, size_t klen)
{
    fkv_iter_t *it = p;
    it->pos = (long)fkv_lb(it->kv, key, klen);
}

static void fkv_seek_for_prev(void *p, const void *key, size_t klen)
{
    fkv_iter_t *it = p;
    size_t i = fkv_lb(it->kv, key, klen);
    bool hit = i < it->kv->n && key_cmp(it->kv->e[i].k, it->kv->e[i].kl, key, klen) == 0;
    it->pos = hit ? (long)i : (long)i - 1;
}

static void fkv_seek_last(void *p)
{
    fkv_iter_t *it = p;
    it->pos = it->hi ? (long)fkv_lb(it->kv, it->hi, it->hilen) - 1 : (long)it->kv->n - 1;
}

static void fkv_next(void *p)
{
    fkv_iter_t *it = p;
    if (it->pos < (long)it->kv->n)
        it->pos++;
}

static void fkv_prev(void *p)
{
    fkv_iter_t *it = p;
    if (it->pos >= 0)
        it->pos--;
}

static bool fkv_valid(const void *p)
{
    const fkv_iter_t *it = p;
    return !it->kv->fail_iter && fkv_in_range(it);
}

static const void *fkv_key(const void *p, size_t *klen)
{
    const fkv_iter_t *it = p;
    *klen = it->kv->e[it->pos].kl;
    return it->kv->e[it->pos].k;
}

static const void *fkv_value(const void *p, size_t *vlen)
{
    const fkv_iter_t *it = p;
    *vlen = it->kv->e[it->pos].vl;
    return it->kv->e[it->pos].v;
}

static fl_err_t fkv_status(const void *p, char *errstr, size_t errstr_size)
{
    const fkv_iter_t *it = p;
    if (!it->kv->fail_iter)
        return FL_OK;
    snprintf(errstr, errstr_size, "injected read error");
    return FL_ERR_IO;
}

static void fkv_iter_free(void *p)
{
    free(p);
}

static fl_err_t fkv_stats(void *self, fl_kv_stats_t *st, char *errstr, size_t errstr_size)
{
    st->entries = ((fkv_t *)self)->n;
    st->bytes = 0;
    return FL_OK;
}

static fl_err_t fkv_flush(void *self, char *errstr, size_t errstr_size)
{
    return FL_OK;
}

static fl_err_t fkv_close(void *self, char *errstr, size_t errstr_size)
{
    free(self);
    return FL_OK;
}

static const fl_kv_backend_t fkv_backend = {
    "faulty",      fkv_get,       fkv_write, fkv_iter_new, fkv_seek,  fkv_seek_for_prev,
    fkv_seek_last, fkv_next,      fkv_prev,  fkv_valid,    fkv_key,   fkv_value,
    fkv_status,    fkv_iter_free, fkv_stats, fkv_flush,    fkv_close, false,
};

/* The same, claiming concurrent writes: only for tests whose background
 * writes fail before touching the entries (fail_write). */
static const fl_kv_backend_t fkv_backend_bg = {
    "faulty-bg",   fkv_get,       fkv_write, fkv_iter_new, fkv_seek,  fkv_seek_for_prev,
    fkv_seek_last, fkv_next,      fkv_prev,  fkv_valid,    fkv_key,   fkv_value,
    fkv_status,    fkv_iter_free, fkv_stats, fkv_flush,    fkv_close, true,
};

static fl_store_t *open_faulty_store_with(const fl_kv_backend_t *be, fkv_t **fp)
{
    char err[256] = "";
    fl_kv_t *kv;
    fkv_t *f = calloc(1, sizeof(*f));
    cr_assert_not_null(f);
    cr_assert_eq(fl_kv_from_backend(be, f, &kv, err, sizeof(err)), FL_OK, "%s", err);
    fl_store_t *s = fl_store_new(kv, STORE_NAME, CHANGELOG, PARTITION);
    cr_assert_not_null(s);
    *fp = f;
    return s;
}

static fl_store_t *open_faulty_store(fkv_t **fp)
{
    return open_faulty_store_with(&fkv_backend, fp);
}

/* A read error of the committed store's iterator used to leave the merged
 * iterator valid on its previous entry, so `for (...; valid; next)` never
 * ended; it must end the iteration and report the error. */
Test(store_regress, iter_read_error_ends_iteration)
{
    fkv_t *f;
    fl_store_t *s = open_faulty_store(&f);
    fl_store_iter_t *it;

    put_ok(s, KEY(0x10, 0x01), "a");
    put_ok(s, KEY(0x10, 0x02), "b");
    put_ok(s, KEY(0x10, 0x03), "c");
    commit_ok(s, NULL, 0, -1);
    put_ok(s, KEY(0x10, 0x04), "pending");
    cr_assert_str_eq(scan_str(s, KEY(0x10), 1), "1001=a 1002=b 1003=c 1004=pending");

    cr_assert_eq(fl_store_iter_new(s, KEY(0x10), &it), FL_OK);
    /* next */
    fl_store_iter_seek_first(it);
    expect_at(it, KEY(0x10, 0x01), "a");
    f->fail_iter = true;
    fl_store_iter_next(it);
    cr_assert(!fl_store_iter_valid(it), "iterator still valid after a read error");
    cr_assert_eq(fl_store_iter_status(it), FL_ERR_IO);
    fl_store_iter_next(it);
    cr_assert(!fl_store_iter_valid(it));
    /* prev */
    f->fail_iter = false;
    fl_store_iter_seek(it, KEY(0x10, 0x02));
    expect_at(it, KEY(0x10, 0x02), "b");
    f->fail_iter = true;
    fl_store_iter_prev(it);
    cr_assert(!fl_store_iter_valid(it), "iterator still valid after a read error");
    cr_assert_eq(fl_store_iter_status(it), FL_ERR_IO);
    /* seeks */
    f->fail_iter = false;
    fl_store_iter_seek_last(it);
    expect_at(it, KEY(0x10, 0x04), "pending");
    f->fail_iter = true;
    fl_store_iter_seek_first(it);
    cr_assert(!fl_store_iter_valid(it), "iterator still valid after a read error");
    cr_assert_eq(fl_store_iter_status(it), FL_ERR_IO);
    f->fail_iter = false;
    fl_store_iter_seek_first(it);
    expect_at(it, KEY(0x10, 0x01), "a");
    f->fail_iter = true;
    fl_store_iter_seek_last(it);
    cr_assert(!fl_store_iter_valid(it), "iterator still valid after a read error");
    cr_assert_eq(fl_store_iter_status(it), FL_ERR_IO);

    /* the loop every caller writes terminates */
    int n = 0;
    f->fail_iter = false;
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
        cr_assert_lt(++n, 10, "iteration does not end");
        f->fail_iter = n == 2;
    }
    cr_assert_eq(n, 2);
    cr_assert_eq(fl_store_iter_status(it), FL_ERR_IO);
    fl_store_iter_free(it);
    f->fail_iter = false;
    fl_store_free(s);
}

/* NULL key or value pointers with a non-zero length used to be copied
 * from (a crash); they are bad arguments, as in fl_kv. */
Test(store_regress, null_key_or_value_with_length_rejected)
{
    fl_store_t *s = open_store(NULL);
    cr_assert_eq(fl_store_put(s, KEY(0x10), NULL, 3), FL_ERR_INVALID);
    cr_assert_eq(fl_store_restore_apply(s, KEY(0x10), NULL, 3), FL_OK); /* NULL: a tombstone */
    cr_assert_eq(fl_store_put(s, NULL, 2, "x", 1), FL_ERR_INVALID);
    cr_assert_eq(fl_store_delete(s, NULL, 2), FL_ERR_INVALID);
    cr_assert_eq(fl_store_restore_apply(s, NULL, 2, "x", 1), FL_ERR_INVALID);
    cr_assert_eq(fl_store_pending(s), 1);
    cr_assert_eq(fl_store_put(s, KEY(0x11), NULL, 0), FL_OK); /* an empty value */
    expect_get(s, KEY(0x11), "");
    fl_store_free(s);
}

/* A get with no buffer (NULL, capacity 0) of an empty pending value used
 * to pass NULL to memcpy (undefined behaviour, caught by UBSan); fl_kv
 * accepts such a buffer for committed values. */
Test(store_regress, get_empty_value_into_null_buffer)
{
    fl_store_t *s = open_store(NULL);
    size_t vl = 99;
    bool found = false;
    put_ok(s, KEY(0x10), "");
    put_ok(s, KEY(0x11), "x");
    cr_assert_eq(fl_store_get(s, KEY(0x10), NULL, 0, &vl, &found), FL_OK);
    cr_assert(found && vl == 0);
    cr_assert_eq(fl_store_get(s, KEY(0x11), NULL, 0, &vl, &found), FL_ERR_OVERSIZED);
    cr_assert(found && vl == 1);
    commit_ok(s, NULL, 0, -1);
    vl = 99;
    found = false;
    cr_assert_eq(fl_store_get(s, KEY(0x10), NULL, 0, &vl, &found), FL_OK);
    cr_assert(found && vl == 0);
    fl_store_free(s);
}

/* ---- the read cache ---- */

TestSuite(store_cache, .timeout = 60);

/* Reads are answered from the cache once a key is admitted (on its
 * second miss), absent keys too; a commit refreshes what is cached, so
 * no read sees an old value. */
Test(store_cache, hits_and_refresh)
{
    fkv_t *f;
    fl_store_t *s = open_faulty_store(&f);
    fl_store_cache_stats_t st;

    cr_assert_eq(fl_store_set_cache(s, 1 << 16), FL_OK);
    put_ok(s, KEY(0x10, 0x01), "a");
    commit_ok(s, NULL, 0, -1);
    f->gets = 0; /* opening read the store's version */
    expect_get(s, KEY(0x10, 0x01), "a");
    expect_get(s, KEY(0x10, 0x02), NULL);
    cr_assert_eq(f->gets, 2);
    fl_store_cache_stats(s, &st);
    cr_assert_eq(st.entries, 0, "a key read once was admitted");
    expect_get(s, KEY(0x10, 0x01), "a");
    expect_get(s, KEY(0x10, 0x02), NULL);
    cr_assert_eq(f->gets, 4);
    expect_get(s, KEY(0x10, 0x01), "a");
    expect_get(s, KEY(0x10, 0x02), NULL);
    cr_assert_eq(f->gets, 4, "cached keys reached the backend");

    /* a pending change wins over the cache; the commit refreshes it */
    put_ok(s, KEY(0x10, 0x01), "a2");
    put_ok(s, KEY(0x10, 0x02), "b");
    expect_get(s, KEY(0x10, 0x01), "a2");
    commit_ok(s, NULL, 0, -1);
    expect_get(s, KEY(0x10, 0x01), "a2");
    expect_get(s, KEY(0x10, 0x02), "b");
    del_ok(s, KEY(0x10, 0x01));
    commit_ok(s, NULL, 0, -1);
    expect_get(s, KEY(0x10, 0x01), NULL);
    cr_assert_eq(f->gets, 4, "refreshed keys reached the backend");

    /* a value of another size replaces the entry */
    put_ok(s, KEY(0x10, 0x02), "longer value");
    commit_ok(s, NULL, 0, -1);
    expect_get(s, KEY(0x10, 0x02), "longer value");

    /* written but never read: not cached, read from the backend */
    put_ok(s, KEY(0x10, 0x03), "c");
    commit_ok(s, NULL, 0, -1);
    expect_get(s, KEY(0x10, 0x03), "c");
    cr_assert_eq(f->gets, 5);

    fl_store_cache_stats(s, &st);
    cr_assert_eq(st.misses, 5);
    cr_assert_eq(st.entries, 2);
    cr_assert_eq(st.hits, 6);
    fl_store_free(s);
}

/* An aborted batch, or one whose commit failed, leaves the cache holding
 * only committed values. */
Test(store_cache, abort_and_failed_commit)
{
    fkv_t *f;
    fl_store_t *s = open_faulty_store(&f);

    cr_assert_eq(fl_store_set_cache(s, 1 << 16), FL_OK);
    put_ok(s, KEY(0x10, 0x01), "a");
    commit_ok(s, NULL, 0, -1);
    for (int i = 0; i < 2; i++) { /* admitted on the second miss */
        expect_get(s, KEY(0x10, 0x01), "a");
        expect_get(s, KEY(0x10, 0x02), NULL);
    }
    fl_store_cache_stats_t st;
    fl_store_cache_stats(s, &st);
    cr_assert_eq(st.entries, 2);

    put_ok(s, KEY(0x10, 0x01), "x");
    put_ok(s, KEY(0x10, 0x02), "y");
    fl_store_abort(s);
    expect_get(s, KEY(0x10, 0x01), "a");
    expect_get(s, KEY(0x10, 0x02), NULL);

    put_ok(s, KEY(0x10, 0x01), "x");
    put_ok(s, KEY(0x10, 0x02), "y");
    f->fail_write = true;
    cr_assert_eq(fl_store_commit(s, NULL, 0, -1), FL_ERR_IO);
    f->fail_write = false;
    expect_get(s, KEY(0x10, 0x01), "x"); /* still pending */
    fl_store_abort(s);
    expect_get(s, KEY(0x10, 0x01), "a");
    expect_get(s, KEY(0x10, 0x02), NULL);
    fl_store_free(s);
}

/* Commits refresh cached keys long after the membership bits of evicted
 * keys have been rebuilt many times over: no read ever sees a stale value. */
Test(store_cache, refresh_survives_membership_rebuilds)
{
    fl_store_t *s = open_store(NULL);
    fl_store_cache_stats_t st;
    uint8_t k[3] = {0x10, 0, 0};
    char v[16];

    cr_assert_eq(fl_store_set_cache(s, 4096), FL_OK);
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 200; i++) {
            k[1] = (uint8_t)(i >> 8);
            k[2] = (uint8_t)i;
            snprintf(v, sizeof(v), "r%d-%d", round, i);
            put_ok(s, k, sizeof(k), v);
        }
        commit_ok(s, NULL, 0, -1);
        for (int pass = 0; pass < 2; pass++) { /* the second pass is admitted */
            for (int i = 0; i < 200; i++) {
                k[1] = (uint8_t)(i >> 8);
                k[2] = (uint8_t)i;
                snprintf(v, sizeof(v), "r%d-%d", round, i);
                expect_get(s, k, sizeof(k), v);
            }
        }
    }
    fl_store_cache_stats(s, &st);
    cr_assert_gt(st.hits, 0);
    cr_assert_gt(st.evictions, 600, "too few evictions to rebuild the set: %" PRIu64, st.evictions);
    fl_store_free(s);
}

/* The budget holds under many keys: entries are evicted, answers stay right. */
Test(store_cache, eviction_keeps_budget)
{
    fl_store_t *s = open_store(NULL);
    fl_store_cache_stats_t st;
    const size_t budget = 4096;
    uint8_t k[3] = {0x10, 0, 0};
    char v[8];

    cr_assert_eq(fl_store_set_cache(s, budget), FL_OK);
    for (int i = 0; i < 300; i++) {
        k[1] = (uint8_t)(i >> 8);
        k[2] = (uint8_t)i;
        snprintf(v, sizeof(v), "v%d", i);
        put_ok(s, k, sizeof(k), v);
    }
    commit_ok(s, NULL, 0, -1);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++) {
            k[1] = (uint8_t)(i >> 8);
            k[2] = (uint8_t)i;
            snprintf(v, sizeof(v), "v%d", i);
            expect_get(s, k, sizeof(k), v);
            fl_store_cache_stats(s, &st);
            cr_assert_leq(st.bytes, budget, "cache over its budget: %zu", st.bytes);
        }
    }
    fl_store_cache_stats(s, &st);
    cr_assert_gt(st.evictions, 0);
    cr_assert_gt(st.entries, 0);
    /* turning the cache off */
    cr_assert_eq(fl_store_set_cache(s, 0), FL_OK);
    fl_store_cache_stats(s, &st);
    cr_assert_eq(st.entries, 0);
    expect_get(s, k, sizeof(k), "v299");
    fl_store_free(s);
}

/* An empty committed value read into no buffer (NULL, capacity 0) was
 * cached as an absent key, found by the model test: presence is not
 * "has a value pointer". */
Test(store_regress, cache_keeps_empty_value_present)
{
    fl_store_t *s = open_store_cached(NULL, 1 << 16);
    size_t vl;
    bool found;

    cr_assert_eq(fl_store_put(s, KEY(0x10, 0x01), "", 0), FL_OK);
    commit_ok(s, NULL, 0, -1);
    for (int i = 0; i < 3; i++) { /* miss, admitted miss, hit */
        found = false;
        cr_assert_eq(fl_store_get(s, KEY(0x10, 0x01), NULL, 0, &vl, &found), FL_OK);
        cr_assert(found && vl == 0, "read %d: the empty value is gone", i);
    }
    fl_store_free(s);
}

/* The in-memory backend cannot be written from another thread. */
Test(store, background_writes_need_rocksdb)
{
    fl_store_t *s = open_store(NULL);
    cr_assert_eq(fl_store_set_background_writes(s, true), FL_ERR_INVALID);
    cr_assert_eq(fl_store_set_background_writes(s, false), FL_OK);
    fl_store_free(s);
}

/* The write counter counts every put and delete call, failed ones too,
 * and nothing else: reads, iteration, restore staging, commits and aborts
 * leave it as it is. */
Test(store, write_counter_counts_put_and_delete_calls)
{
    fl_store_t *s = open_store(NULL);
    fl_store_offset_t off = {"posts", 0, 1};
    char buf[4];
    size_t vl;
    bool found;

    cr_assert_eq(fl_store_writes(s), 0);
    put_ok(s, KEY(0x10, 0x01), "a");
    put_ok(s, KEY(0x10, 0x01), "a"); /* the same value again is a write too */
    del_ok(s, KEY(0x10, 0x02));
    cr_assert_eq(fl_store_writes(s), 3);
    cr_assert_eq(fl_store_put(s, KEY(0x00, 0x01), "x", 1), FL_ERR_INVALID);
    cr_assert_eq(fl_store_writes(s), 4, "a refused write is a write call");
    cr_assert_eq(fl_store_get(s, KEY(0x10, 0x01), buf, sizeof(buf), &vl, &found), FL_OK);
    cr_assert_eq(fl_store_restore_apply(s, KEY(0x10, 0x03), "r", 1), FL_OK);
    commit_ok(s, &off, 1, -1);
    put_ok(s, KEY(0x10, 0x04), "b");
    fl_store_abort(s);
    cr_assert_eq(fl_store_writes(s), 5);
    fl_store_free(s);
}

/* A background write that fails is reported by the next commit, and the
 * cache forgets the batch it was refreshed with. */
Test(store_regress, background_write_failure_reported)
{
    fkv_t *f;
    fl_store_t *s = open_faulty_store_with(&fkv_backend_bg, &f);
    fl_store_offset_t off = {"posts", 0, 9};
    int64_t o;
    bool found;

    cr_assert_eq(fl_store_set_cache(s, 1 << 16), FL_OK);
    put_ok(s, KEY(0x10, 0x01), "a");
    commit_ok(s, &off, 1, -1);
    for (int i = 0; i < 2; i++)
        expect_get(s, KEY(0x10, 0x01), "a"); /* cached */

    cr_assert_eq(fl_store_set_background_writes(s, true), FL_OK);
    put_ok(s, KEY(0x10, 0x01), "lost");
    f->fail_write = true;
    off.offset = 20;
    cr_assert_eq(fl_store_commit(s, &off, 1, -1), FL_OK); /* handed over */
    expect_get(s, KEY(0x10, 0x01), "lost"); /* the flushing layer, until the write ends */
    put_ok(s, KEY(0x10, 0x02), "b");
    cr_assert_eq(fl_store_commit(s, NULL, 0, -1), FL_ERR_IO, "the failure went unreported");
    cr_assert(strstr(fl_store_errmsg(s), "injected write error"), "%s", fl_store_errmsg(s));
    f->fail_write = false;
    /* the store holds what was written, the cache no longer claims more */
    fl_store_abort(s);
    expect_get(s, KEY(0x10, 0x01), "a");
    cr_assert_eq(fl_store_offset(s, "posts", 0, &o, &found), FL_OK);
    cr_assert(found && o == 9, "offset %" PRId64, o);
    fl_store_free(s);
}
