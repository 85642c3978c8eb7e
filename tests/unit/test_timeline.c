/*
 * test_timeline.c - the timeline processor's rules (fl_timeline.h)
 * through the topology test driver: timeline operations are built with
 * fl_tlop_encode and piped raw on feedline.timeline-ops into the task of
 * one partition, with the small settings of
 * tests/data/topology/driver.yaml (timeline_cap 6, 4 partitions).
 *
 * After every record the test compares the whole store with a model kept
 * here (a list of entries per user), checks that the stored count equals
 * the entries, and checks the changelog the record produced: one record
 * per changed (user, post), a tombstone for each removal and trim, and
 * nothing at all for a no-op.
 *
 * The file is built twice: as test_timeline, one record per batch in
 * memory; and as test_timeline_batched, FL_TEST_BATCH records per batch
 * on RocksDB with background writes, as the runtime runs the processor,
 * so that the store is compared with the model through its pending and
 * flushing layers. There a record's changes reach the changelog only
 * when its batch commits: a no-op is checked with the store's write
 * counter instead, and exact changelog records in the single-record
 * build only.
 */
#include <criterion/criterion.h>

#include "fl_driver.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_timeline.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPART 4
#define TPART 2 /* the task under test */
#define CAP   6
#define MAXU  8
#define MAXE  64

#ifndef FL_TEST_BATCH
#define FL_TEST_BATCH 1
#endif
static const bool batched = FL_TEST_BATCH > 1;
static const fl_driver_opts_t opts = {.backend =
                                          FL_TEST_BATCH > 1 ? FL_DRIVER_ROCKSDB : FL_DRIVER_MEMORY,
                                      .batch_records = FL_TEST_BATCH};

static fl_topology_t *topo;
static fl_driver_t *drv;
static uint64_t last_writes; /* store writes of the last record */
static char errstr[512];

static int32_t part(int64_t id)
{
    return fl_partition_for_id(id, NPART);
}

/* The n-th (from 0) user id >= 1 in partition p. */
static int64_t user_in(int32_t p, int n)
{
    for (int64_t id = 1;; id++)
        if (part(id) == p && n-- == 0)
            return id;
}

/* ---- the model: each user's entries, any order ---- */

typedef struct entry {
    int64_t post, author, created_at;
} entry_t;

typedef struct model_user {
    int64_t user;
    entry_t e[MAXE];
    size_t n;
    bool marked; /* the trim mark: the newest entry the cap dropped */
    entry_t mark;
} model_user_t;

static model_user_t model[MAXU];
static size_t n_model;

static model_user_t *model_get(int64_t user)
{
    for (size_t i = 0; i < n_model; i++)
        if (model[i].user == user)
            return &model[i];
    cr_assert_lt(n_model, (size_t)MAXU);
    model[n_model] = (model_user_t){.user = user};
    return &model[n_model++];
}

/* a newer than b: by created_at, then post id */
static bool newer(const entry_t *a, const entry_t *b)
{
    return a->created_at > b->created_at || (a->created_at == b->created_at && a->post > b->post);
}

static int cmp_newest_first(const void *pa, const void *pb)
{
    const entry_t *a = pa, *b = pb;
    return newer(a, b) ? -1 : newer(b, a) ? 1 : 0;
}

static void setup(void)
{
    char path[4096], err[512] = "";
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/tests/data/topology/driver.yaml", dir && *dir ? dir : ".");
    topo = fl_topology_load(path, err, sizeof(err));
    cr_assert_not_null(topo, "topology: %s", err);
    cr_assert_eq(topo->settings.timeline_cap, CAP);
    cr_assert_eq(fl_topology_topic(topo, FL_TOPIC_TIMELINE_OPS)->partitions, NPART);
    drv = fl_driver_new_opts(topo, &fl_timeline_processor, TPART, &opts, err, sizeof(err));
    cr_assert_not_null(drv, "driver: %s", err);
    n_model = 0;
}

static void teardown(void)
{
    fl_driver_free(drv);
    drv = NULL;
    fl_topology_free(topo);
    topo = NULL;
}

TestSuite(timeline, .init = setup, .fini = teardown);

static fl_store_t *store(void)
{
    fl_store_t *s = fl_driver_store(drv, FL_STORE_TIMELINES);
    cr_assert_not_null(s);
    return s;
}

/* ---- reading the store ---- */

/* user's entries from the store, newest first (the store keeps them oldest
 * first, so walk backwards). */
static size_t stored(int64_t user, entry_t *out, size_t cap)
{
    fl_store_iter_t *it = NULL;
    fl_key_t prefix;
    size_t n = 0;

    fl_key_entity(&prefix, FL_KEY_TAG_TIMELINE, user);
    cr_assert_eq(fl_store_iter_new(store(), prefix.buf, prefix.len, &it), FL_OK);
    for (fl_store_iter_seek_last(it); fl_store_iter_valid(it); fl_store_iter_prev(it)) {
        size_t klen, vlen;
        const void *key = fl_store_iter_key(it, &klen);
        const void *val = fl_store_iter_value(it, &vlen);
        int64_t owner;
        cr_assert_lt(n, cap);
        cr_assert_eq(fl_key_parse_timeline(key, klen, &owner, &out[n].created_at, &out[n].post),
                     FL_OK);
        cr_assert_eq(owner, user);
        cr_assert_eq(vlen, 8, "timeline value is the author");
        out[n].author = fl_key_dec_i64(val);
        n++;
    }
    cr_assert_eq(fl_store_iter_status(it), FL_OK);
    fl_store_iter_free(it);
    return n;
}

/* user's USER record (zero when absent). */
static fl_timeline_meta_t stored_meta(int64_t user)
{
    fl_key_t k;
    uint8_t v[FL_TIMELINE_META_MAX_SIZE];
    size_t vlen;
    bool found;
    fl_timeline_meta_t meta = {0};
    fl_key_entity(&k, FL_KEY_TAG_USER, user);
    cr_assert_eq(fl_store_get(store(), k.buf, k.len, v, sizeof(v), &vlen, &found), FL_OK);
    if (found)
        cr_assert_eq(fl_timeline_meta_parse(v, vlen, &meta), FL_OK, "USER value of %zu bytes",
                     vlen);
    return meta;
}

/* user's USER window (the oldest entries it lists, oldest first) into
 * t and p; its length. */
static int stored_window(int64_t user, int64_t *t, int64_t *p)
{
    fl_key_t k;
    uint8_t v[FL_TIMELINE_META_MAX_SIZE];
    size_t vlen = 0;
    bool found;
    fl_key_entity(&k, FL_KEY_TAG_USER, user);
    cr_assert_eq(fl_store_get(store(), k.buf, k.len, v, sizeof(v), &vlen, &found), FL_OK);
    int n = 0;
    for (size_t i = FL_TIMELINE_META_MARKED_SIZE; found && i + 16 <= vlen; i += 16, n++) {
        t[n] = fl_key_dec_i64(v + i);
        p[n] = fl_key_dec_i64(v + i + 8);
    }
    return n;
}

/* The store equals the model for every user the model knows, each
 * stored count equals the number of entries, and the USER window lists
 * exactly the oldest entries. */
static void check_store(const char *when)
{
    for (size_t u = 0; u < n_model; u++) {
        model_user_t *m = &model[u];
        entry_t got[MAXE];
        size_t n = stored(m->user, got, MAXE);
        int64_t count = -1;

        qsort(m->e, m->n, sizeof(m->e[0]), cmp_newest_first);
        cr_assert_eq(n, m->n, "%s: user %" PRId64 " has %zu entries, want %zu", when, m->user, n,
                     m->n);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(got[i].post, m->e[i].post,
                         "%s: user %" PRId64 " entry %zu is post %" PRId64 ", want %" PRId64, when,
                         m->user, i, got[i].post, m->e[i].post);
            cr_assert_eq(got[i].created_at, m->e[i].created_at);
            cr_assert_eq(got[i].author, m->e[i].author);
        }
        cr_assert_eq(fl_timeline_count(store(), m->user, &count), FL_OK);
        cr_assert_eq(count, (int64_t)n, "%s: user %" PRId64 " count %" PRId64 " but %zu entries",
                     when, m->user, count, n);
        int64_t wt[FL_TIMELINE_WINDOW], wp[FL_TIMELINE_WINDOW];
        int nw = stored_window(m->user, wt, wp);
        cr_assert_leq((size_t)nw, n, "%s: user %" PRId64 " window of %d, %zu entries", when,
                      m->user, nw, n);
        for (int i = 0; i < nw; i++)
            cr_assert(wt[i] == got[n - 1 - i].created_at && wp[i] == got[n - 1 - i].post,
                      "%s: user %" PRId64 " window entry %d is %" PRId64 "@%" PRId64
                      ", the %d-th oldest entry %" PRId64 "@%" PRId64,
                      when, m->user, i, wp[i], wt[i], i, got[n - 1 - i].post,
                      got[n - 1 - i].created_at);
        fl_timeline_meta_t meta = stored_meta(m->user);
        cr_assert_eq(meta.window, nw);
        cr_assert_eq(meta.marked, m->marked, "%s: user %" PRId64 " trim mark %s, want %s", when,
                     m->user, meta.marked ? "set" : "unset", m->marked ? "set" : "unset");
        if (m->marked)
            cr_assert(
                meta.mark_created_at == m->mark.created_at && meta.mark_post_id == m->mark.post,
                "%s: user %" PRId64 " trim mark %" PRId64 "@%" PRId64 ", want %" PRId64 "@%" PRId64,
                when, m->user, meta.mark_post_id, meta.mark_created_at, m->mark.post,
                m->mark.created_at);
    }
}

/* ---- piping operations ---- */

static fl_err_t pipe_bytes(const void *buf, size_t len)
{
    uint64_t writes = fl_store_writes(store());
    fl_driver_clear_outputs(drv);
    errstr[0] = '\0';
    fl_err_t err =
        fl_driver_pipe_raw(drv, FL_TOPIC_TIMELINE_OPS, "1", 1, buf, len, errstr, sizeof(errstr));
    last_writes = fl_store_writes(store()) - writes;
    return err;
}

static fl_err_t pipe_op(fl_tlop_kind_t kind, int64_t author, const fl_tlop_post_t *posts,
                        uint32_t n_posts, const int64_t *rcpt, uint32_t n_rcpt)
{
    fl_tlop_t op = {.op = kind,
                    .author_id = author,
                    .posts = (fl_tlop_post_t *)posts,
                    .n_posts = n_posts,
                    .recipients = (int64_t *)rcpt,
                    .n_recipients = n_rcpt};
    size_t size = fl_tlop_encoded_size(&op);
    unsigned char *buf = malloc(size);
    cr_assert_not_null(buf);
    cr_assert_eq(fl_tlop_encode(&op, buf), size);
    fl_err_t err = pipe_bytes(buf, size);
    free(buf);
    return err;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        fl_err_t e_ = (call);                                                                      \
        cr_assert_eq(e_, FL_OK, "%s: %s (%s)", #call, fl_err_str(e_), errstr);                     \
    } while (0)

/* Model: apply an insert (then trim) / removal. */
static void m_insert(int64_t user, fl_tlop_post_t p)
{
    model_user_t *m = model_get(user);
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].post == p.post_id && m->e[i].created_at == p.created_at)
            return;
    cr_assert_lt(m->n, (size_t)MAXE);
    m->e[m->n++] = (entry_t){p.post_id, p.author_id, p.created_at};
    qsort(m->e, m->n, sizeof(m->e[0]), cmp_newest_first);
    if (m->n > CAP) {
        m->n = CAP;
        if (!m->marked || newer(&m->e[CAP], &m->mark))
            m->mark = m->e[CAP];
        m->marked = true;
    }
}

static void m_remove(int64_t user, fl_tlop_post_t p)
{
    model_user_t *m = model_get(user);
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].post == p.post_id && m->e[i].created_at == p.created_at) {
            m->e[i] = m->e[--m->n];
            return;
        }
}

static void m_remove_author(int64_t user, int64_t author)
{
    model_user_t *m = model_get(user);
    for (size_t i = 0; i < m->n;)
        if (m->e[i].author == author)
            m->e[i] = m->e[--m->n];
        else
            i++;
}

/* ---- changelog checks ---- */

static size_t n_changelog(void)
{
    size_t n;
    fl_driver_changelog(drv, &n);
    return n;
}

/* The changelog of the last record holds exactly the TIMELINE records in
 * want (value NULL = tombstone) in any order, each once, plus USER count
 * records for the users in count_users (each with the model's count, a
 * tombstone for zero). */
typedef struct want_rec {
    int64_t user;
    int64_t post, created_at;
    bool tombstone;
} want_rec_t;

static void expect_changelog(const want_rec_t *want, size_t n_want, const int64_t *count_users,
                             size_t n_count_users)
{
    size_t n;
    const fl_driver_record_t *r = fl_driver_changelog(drv, &n);
    bool seen[MAXE] = {false}, seen_count[MAXU] = {false};

    if (batched) {
        cr_assert_gt(last_writes, 0, "the record changed nothing");
        return;
    }
    cr_assert_eq(n, n_want + n_count_users,
                 "changelog has %zu records, want %zu timeline + %zu count records", n, n_want,
                 n_count_users);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *k = r[i].key;
        cr_assert_str_eq(r[i].topic, FL_STORE_TIMELINES);
        cr_assert_eq(r[i].partition, TPART);
        if (k[0] == FL_KEY_TAG_TIMELINE) {
            int64_t user, t, p;
            cr_assert_eq(fl_key_parse_timeline(k, r[i].klen, &user, &t, &p), FL_OK);
            size_t j = 0;
            while (j < n_want && !(want[j].user == user && want[j].post == p))
                j++;
            cr_assert_lt(j, n_want,
                         "unexpected changelog record for user %" PRId64 " post %" PRId64 " (%s)",
                         user, p, r[i].value ? "put" : "tombstone");
            cr_assert(!seen[j], "two changelog records for user %" PRId64 " post %" PRId64, user,
                      p);
            seen[j] = true;
            cr_assert_eq(t, want[j].created_at);
            cr_assert_eq(r[i].value == NULL, want[j].tombstone,
                         "user %" PRId64 " post %" PRId64 ": want a %s", user, p,
                         want[j].tombstone ? "tombstone" : "put");
        } else {
            int64_t user;
            cr_assert_eq(fl_key_parse_entity(k, r[i].klen, FL_KEY_TAG_USER, &user), FL_OK,
                         "changelog key of neither TIMELINE nor USER");
            size_t j = 0;
            while (j < n_count_users && count_users[j] != user)
                j++;
            cr_assert_lt(j, n_count_users, "unexpected count record for user %" PRId64, user);
            cr_assert(!seen_count[j]);
            seen_count[j] = true;
            const model_user_t *mu = model_get(user);
            if (mu->n == 0 && !mu->marked) {
                cr_assert_null(r[i].value, "a zero count without a trim mark is a tombstone");
            } else {
                fl_timeline_meta_t meta;
                cr_assert_not_null(r[i].value);
                cr_assert(mu->marked ? r[i].vlen >= 56 && (r[i].vlen - 56) % 16 == 0
                                     : r[i].vlen == 40,
                          "count and bounds, then the mark and the window: %zu bytes", r[i].vlen);
                cr_assert_eq(fl_timeline_meta_parse(r[i].value, r[i].vlen, &meta), FL_OK);
                cr_assert_eq(meta.count, (int64_t)mu->n);
                cr_assert(!mu->marked || (meta.mark_created_at == mu->mark.created_at &&
                                          meta.mark_post_id == mu->mark.post));
            }
        }
    }
}

static void expect_no_changelog(const char *what)
{
    if (batched)
        cr_assert_eq(last_writes, 0, "%s: expected no store writes, got %" PRIu64, what,
                     last_writes);
    else
        cr_assert_eq(n_changelog(), 0, "%s: expected no changelog records, got %zu", what,
                     n_changelog());
}

/* ---- tests ---- */

Test(timeline, insert_then_duplicate_insert)
{
    int64_t u[2] = {user_in(TPART, 0), user_in(TPART, 1)};
    fl_tlop_post_t p = {100, 7, 5000};

    OK(pipe_op(FL_TLOP_INSERT, 0, &p, 1, u, 2));
    m_insert(u[0], p);
    m_insert(u[1], p);
    check_store("insert");
    expect_changelog((want_rec_t[]){{u[0], 100, 5000, false}, {u[1], 100, 5000, false}}, 2, u, 2);
    size_t n_out;
    fl_driver_outputs(drv, &n_out);
    cr_assert_eq(n_out, 0, "the timeline task forwards nothing");

    OK(pipe_op(FL_TLOP_INSERT, 0, &p, 1, u, 2));
    check_store("duplicate insert");
    expect_no_changelog("duplicate insert");

    /* one recipient new, one not: only the new one changes */
    int64_t w[2] = {u[0], user_in(TPART, 2)};
    OK(pipe_op(FL_TLOP_INSERT, 0, &p, 1, w, 2));
    m_insert(w[1], p);
    check_store("half-duplicate insert");
    expect_changelog((want_rec_t[]){{w[1], 100, 5000, false}}, 1, &w[1], 1);
    cr_assert_eq(fl_driver_dead_letters(drv), 0);
}

Test(timeline, remove_and_remove_of_absent)
{
    int64_t u = user_in(TPART, 0);
    fl_tlop_post_t p[2] = {{100, 7, 5000}, {101, 7, 5001}};

    OK(pipe_op(FL_TLOP_INSERT, 0, p, 2, &u, 1));
    m_insert(u, p[0]);
    m_insert(u, p[1]);
    check_store("insert two");

    OK(pipe_op(FL_TLOP_REMOVE, 0, &p[0], 1, &u, 1));
    m_remove(u, p[0]);
    check_store("remove");
    expect_changelog((want_rec_t[]){{u, 100, 5000, true}}, 1, &u, 1);

    OK(pipe_op(FL_TLOP_REMOVE, 0, &p[0], 1, &u, 1));
    check_store("remove again");
    expect_no_changelog("remove of a removed entry");

    fl_tlop_post_t never = {555, 7, 5000};
    OK(pipe_op(FL_TLOP_REMOVE, 0, &never, 1, &u, 1));
    expect_no_changelog("remove of an absent entry");
    int64_t other = user_in(TPART, 3);
    OK(pipe_op(FL_TLOP_REMOVE, 0, &p[1], 1, &other, 1));
    expect_no_changelog("remove from an empty timeline");

    /* removal of the last entry: count goes to zero (a tombstone) */
    OK(pipe_op(FL_TLOP_REMOVE, 0, &p[1], 1, &u, 1));
    m_remove(u, p[1]);
    check_store("remove last");
    expect_changelog((want_rec_t[]){{u, 101, 5001, true}}, 1, &u, 1);
    cr_assert_eq(fl_driver_dead_letters(drv), 0);
}

Test(timeline, remove_author_removes_only_that_authors_posts)
{
    int64_t u[2] = {user_in(TPART, 0), user_in(TPART, 1)};
    fl_tlop_post_t a[3] = {{100, 7, 5000}, {102, 7, 5002}, {104, 7, 5004}};
    fl_tlop_post_t b[2] = {{101, 8, 5001}, {103, 8, 5003}};

    OK(pipe_op(FL_TLOP_INSERT, 0, a, 3, &u[0], 1));
    OK(pipe_op(FL_TLOP_INSERT, 0, b, 2, u, 2));
    for (int i = 0; i < 3; i++)
        m_insert(u[0], a[i]);
    for (int i = 0; i < 2; i++) {
        m_insert(u[0], b[i]);
        m_insert(u[1], b[i]);
    }
    check_store("setup");

    OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, 7, NULL, 0, u, 2));
    m_remove_author(u[0], 7);
    check_store("remove author 7");
    expect_changelog(
        (want_rec_t[]){{u[0], 100, 5000, true}, {u[0], 102, 5002, true}, {u[0], 104, 5004, true}},
        3, &u[0], 1);

    OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, 7, NULL, 0, u, 2));
    expect_no_changelog("remove author again");
    OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, 9, NULL, 0, u, 2));
    expect_no_changelog("remove of an author with no entries");
    int64_t empty = user_in(TPART, 4);
    OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, 8, NULL, 0, &empty, 1));
    expect_no_changelog("remove author from an empty timeline");

    OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, 8, NULL, 0, u, 2));
    m_remove_author(u[0], 8);
    m_remove_author(u[1], 8);
    check_store("remove author 8");
    expect_changelog((want_rec_t[]){{u[0], 101, 5001, true},
                                    {u[0], 103, 5003, true},
                                    {u[1], 101, 5001, true},
                                    {u[1], 103, 5003, true}},
                     4, u, 2);
}

Test(timeline, cap_trims_the_oldest_by_created_at_then_post_id)
{
    int64_t u = user_in(TPART, 0);
    /* six entries; 202 and 205 tie on created_at with 200 (201 is older) */
    fl_tlop_post_t p[6] = {{200, 7, 5000}, {201, 7, 4000}, {202, 7, 5000},
                           {203, 8, 6000}, {204, 8, 7000}, {205, 8, 5000}};

    for (int i = 0; i < 6; i++) {
        OK(pipe_op(FL_TLOP_INSERT, 0, &p[i], 1, &u, 1));
        m_insert(u, p[i]);
        check_store("fill");
    }

    /* 7th, newest: drops 201 (oldest created_at). The count stays 6 but the
     * USER record changes: its bounds moved. */
    fl_tlop_post_t q = {206, 9, 8000};
    OK(pipe_op(FL_TLOP_INSERT, 0, &q, 1, &u, 1));
    m_insert(u, q);
    check_store("7th insert");
    expect_changelog((want_rec_t[]){{u, 206, 8000, false}, {u, 201, 4000, true}}, 2, &u, 1);

    /* next: ties at 5000 among 200, 202, 205: the lowest post id is the oldest */
    fl_tlop_post_t r = {207, 9, 5500};
    OK(pipe_op(FL_TLOP_INSERT, 0, &r, 1, &u, 1));
    m_insert(u, r);
    check_store("8th insert");
    expect_changelog((want_rec_t[]){{u, 207, 5500, false}, {u, 200, 5000, true}}, 2, &u, 1);

    /* A post tied with the oldest but with a larger id is newer: it stays. */
    fl_tlop_post_t s = {210, 9, 5000};
    OK(pipe_op(FL_TLOP_INSERT, 0, &s, 1, &u, 1));
    m_insert(u, s);
    check_store("tie, larger id");
    expect_changelog((want_rec_t[]){{u, 210, 5000, false}, {u, 202, 5000, true}}, 2, &u, 1);

    /* A removal makes room; trimmed entries do not come back. */
    OK(pipe_op(FL_TLOP_REMOVE, 0, &q, 1, &u, 1));
    m_remove(u, q);
    check_store("remove in a full timeline");
    OK(pipe_op(FL_TLOP_INSERT, 0, &p[1], 1, &u, 1)); /* the long-trimmed 201 */
    m_insert(u, p[1]);
    check_store("reinsert after a removal");
}

Test(timeline, older_than_all_insert_into_a_full_timeline_only_raises_the_mark)
{
    int64_t u = user_in(TPART, 0);
    for (int i = 0; i < CAP; i++) {
        fl_tlop_post_t p = {300 + i, 7, 5000 + i};
        OK(pipe_op(FL_TLOP_INSERT, 0, &p, 1, &u, 1));
        m_insert(u, p);
    }
    check_store("full");

    /* the cap drops it at once: no entry is written, only the mark */
    fl_tlop_post_t old = {299, 7, 4000};
    OK(pipe_op(FL_TLOP_INSERT, 0, &old, 1, &u, 1));
    m_insert(u, old);
    check_store("older than all");
    expect_changelog(NULL, 0, &u, 1);
    OK(pipe_op(FL_TLOP_INSERT, 0, &old, 1, &u, 1));
    expect_no_changelog("the same older-than-all insert again");

    /* tied with the oldest (5000, 300) but a smaller id: older too, and
     * newer than the mark, which rises to it */
    fl_tlop_post_t tie = {250, 7, 5000};
    OK(pipe_op(FL_TLOP_INSERT, 0, &tie, 1, &u, 1));
    m_insert(u, tie);
    check_store("tie, smaller id");
    expect_changelog(NULL, 0, &u, 1);
    OK(pipe_op(FL_TLOP_INSERT, 0, &old, 1, &u, 1));
    expect_no_changelog("an insert below the mark into a full timeline");
}

Test(timeline, the_trim_mark_outlives_the_entries)
{
    int64_t u = user_in(TPART, 0);
    fl_tlop_post_t p[CAP + 1];
    for (int i = 0; i < CAP + 1; i++) {
        p[i] = (fl_tlop_post_t){600 + i, 7, 6000 + i};
        OK(pipe_op(FL_TLOP_INSERT, 0, &p[i], 1, &u, 1));
        m_insert(u, p[i]);
    }
    check_store("one past the cap");
    OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, 7, NULL, 0, &u, 1));
    m_remove_author(u, 7);
    check_store("every entry removed");
    want_rec_t w[CAP];
    for (int i = 0; i < CAP; i++)
        w[i] = (want_rec_t){u, 601 + i, 6001 + i, true};
    expect_changelog(w, CAP, &u, 1); /* USER stays: count 0 and the mark */
    /* below the mark, with room again: kept (the mark only says what
     * above it is exact) */
    OK(pipe_op(FL_TLOP_INSERT, 0, &p[0], 1, &u, 1));
    m_insert(u, p[0]);
    check_store("reinsert of the trimmed entry");
}

Test(timeline, multi_post_insert_beyond_the_cap)
{
    int64_t u[3] = {user_in(TPART, 0), user_in(TPART, 1), user_in(TPART, 2)};
    fl_tlop_post_t pre[4] = {{400, 7, 1000}, {401, 7, 9000}, {402, 7, 3000}, {403, 7, 7000}};
    OK(pipe_op(FL_TLOP_INSERT, 0, pre, 4, &u[0], 1));
    for (int i = 0; i < 4; i++)
        m_insert(u[0], pre[i]);
    check_store("pre");

    /* a backfill-shaped op: newest first, three posts x three users */
    fl_tlop_post_t bf[5] = {
        {500, 8, 8000}, {501, 8, 6000}, {502, 8, 2000}, {503, 8, 500}, {504, 8, 400}};
    OK(pipe_op(FL_TLOP_INSERT, 0, bf, 5, u, 3));
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 5; i++)
            m_insert(u[k], bf[i]);
    check_store("backfill");
    /* u[0]: 401 500 403 501 402 502 stay; 400 trimmed; 503, 504 never kept */
    want_rec_t w[] = {{u[0], 500, 8000, false}, {u[0], 501, 6000, false}, {u[0], 502, 2000, false},
                      {u[0], 400, 1000, true},  {u[1], 500, 8000, false}, {u[1], 501, 6000, false},
                      {u[1], 502, 2000, false}, {u[1], 503, 500, false},  {u[1], 504, 400, false},
                      {u[2], 500, 8000, false}, {u[2], 501, 6000, false}, {u[2], 502, 2000, false},
                      {u[2], 503, 500, false},  {u[2], 504, 400, false}};
    expect_changelog(w, sizeof(w) / sizeof(w[0]), u, 3);
}

Test(timeline, recipient_in_another_partition_dead_letters_the_whole_record)
{
    int64_t good = user_in(TPART, 0), bad = user_in((TPART + 1) % NPART, 0);
    fl_tlop_post_t p = {100, 7, 5000};
    int64_t r[3] = {good, user_in(TPART, 1), bad};

    cr_assert_eq(pipe_op(FL_TLOP_INSERT, 0, &p, 1, r, 3), FL_ERR_INVALID);
    cr_assert_neq(errstr[0], '\0');
    cr_assert_eq(fl_driver_dead_letters(drv), 1);
    model_get(good);
    model_get(r[1]);
    check_store("after the invalid insert");
    expect_no_changelog("invalid record");

    /* the same for the other kinds, against a non-empty timeline */
    OK(pipe_op(FL_TLOP_INSERT, 0, &p, 1, &good, 1));
    m_insert(good, p);
    int64_t r2[2] = {good, bad};
    cr_assert_eq(pipe_op(FL_TLOP_REMOVE, 0, &p, 1, r2, 2), FL_ERR_INVALID);
    expect_no_changelog("invalid remove");
    cr_assert_eq(pipe_op(FL_TLOP_REMOVE_AUTHOR, 7, NULL, 0, r2, 2), FL_ERR_INVALID);
    expect_no_changelog("invalid remove author");
    check_store("after the invalid removals");
    cr_assert_eq(fl_driver_dead_letters(drv), 3);
}

/* Every one of these must be dead-lettered and change nothing. */
static void expect_garbage(const void *buf, size_t len, const char *what)
{
    size_t dl = fl_driver_dead_letters(drv);
    fl_err_t err = pipe_bytes(buf, len);
    cr_assert_eq(err, FL_ERR_INVALID, "%s (%zu bytes): got %s", what, len, fl_err_str(err));
    cr_assert_neq(errstr[0], '\0', "%s: no message", what);
    cr_assert_eq(fl_driver_dead_letters(drv), dl + 1);
    expect_no_changelog(what);
}

Test(timeline, garbage_and_truncated_records_are_dead_lettered)
{
    int64_t u[2] = {user_in(TPART, 0), user_in(TPART, 1)};
    fl_tlop_post_t p[2] = {{100, 7, 5000}, {101, 7, 5001}};
    fl_tlop_t op = {
        .op = FL_TLOP_INSERT, .posts = p, .n_posts = 2, .recipients = u, .n_recipients = 2};
    unsigned char buf[256], tmp[256];
    size_t size = fl_tlop_encode(&op, buf);

    model_get(u[0]);
    model_get(u[1]);
    cr_assert_eq(size, fl_tlop_encoded_size(&op));
    for (size_t len = 0; len < size; len++)
        expect_garbage(len ? buf : NULL, len, "truncated");
    cr_assert_eq(fl_driver_dead_letters(drv), size);

    memcpy(tmp, buf, size);
    tmp[size] = 0;
    expect_garbage(tmp, size + 1, "trailing byte");
    memcpy(tmp, buf, size);
    tmp[0] = 'X';
    expect_garbage(tmp, size, "bad magic");
    memcpy(tmp, buf, size);
    tmp[1] = 2;
    expect_garbage(tmp, size, "bad version");
    for (unsigned k = 0; k < 256; k++) {
        if (k >= FL_TLOP_INSERT && k <= FL_TLOP_REMOVE_AUTHOR)
            continue;
        memcpy(tmp, buf, size);
        tmp[2] = (unsigned char)k;
        expect_garbage(tmp, size, "bad op");
    }
    /* counts that claim more than the bytes: rejected before allocating */
    memcpy(tmp, buf, size);
    tmp[16] = tmp[17] = tmp[18] = tmp[19] = 0xff;
    expect_garbage(tmp, size, "huge n_posts");
    memcpy(tmp, buf, size);
    size_t rc = FL_TLOP_HEADER_SIZE + 2 * 24;
    tmp[rc] = tmp[rc + 1] = tmp[rc + 2] = tmp[rc + 3] = 0xff;
    expect_garbage(tmp, size, "huge n_recipients");

    /* pseudo-random bytes */
    uint64_t x = 0x1234567;
    for (int i = 0; i < 200; i++) {
        size_t len = 1 + (size_t)(i % 120);
        for (size_t k = 0; k < len; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            tmp[k] = (unsigned char)(x >> 56);
        }
        if (i % 2)
            tmp[0] = 'T', tmp[1] = 1; /* past the magic */
        expect_garbage(tmp, len, "random bytes");
    }
    check_store("after garbage");

    /* and the intact record still applies */
    OK(pipe_bytes(buf, size));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++)
            m_insert(u[k], p[i]);
    check_store("intact record");
}

/* A TIMELINE key that does not parse, met while trimming for the second
 * post of an insert, was reported as FL_ERR_INVALID after the first post
 * had trimmed and inserted: the runtime dead-lettered the operation and
 * committed half of it. */
Test(timeline, damaged_key_met_while_trimming_is_corruption_not_a_dead_letter)
{
    int64_t u = user_in(TPART, 0), count = -1;
    fl_key_t k;
    uint8_t author[8];

    for (int i = 0; i < CAP; i++) {
        fl_tlop_post_t p = {300 + i, 7, 5000 + i};
        OK(pipe_op(FL_TLOP_INSERT, 0, &p, 1, &u, 1));
    }
    /* Right after the oldest entry, as damage would leave it. */
    OK(fl_driver_flush(drv, errstr, sizeof(errstr))); /* not into an open batch */
    fl_key_timeline(&k, u, 5000, 300);
    k.buf[k.len++] = 0x01;
    fl_key_enc_i64(author, 7);
    cr_assert_eq(fl_store_put(store(), k.buf, k.len, author, sizeof(author)), FL_OK);
    cr_assert_eq(fl_store_commit(store(), NULL, 0, -1), FL_OK);

    fl_tlop_post_t newer[2] = {{400, 8, 9000}, {401, 8, 9001}};
    fl_err_t err = pipe_op(FL_TLOP_INSERT, 0, newer, 2, &u, 1);
    cr_assert_eq(err, FL_ERR_CORRUPT, "got %s (%s)", fl_err_str(err), errstr);
    cr_assert_null(strstr(errstr, "rejected"), "the processor returned FL_ERR_INVALID: %s", errstr);
    cr_assert_eq(fl_driver_dead_letters(drv), 0);
    cr_assert_eq(n_changelog(), 0, "an operation stopped by corruption was committed");
    cr_assert_eq(fl_store_pending(store()), 0, "an operation stopped by corruption was kept");
    cr_assert_eq(fl_timeline_count(store(), u, &count), FL_OK);
    cr_assert_eq(count, CAP, "the first post's trim and insert were kept");
}

/* Every rule at once, against the model after every operation: inserts
 * with ties, older-than-all inserts into full timelines, multi-post and
 * multi-recipient operations, removals inside and outside the window,
 * removals by author. The window of the oldest entries (fl_timeline.c)
 * must stay exact through all of them, or a trim would drop the wrong
 * entry; check_store compares it with the entries themselves. */
Test(timeline, random_operations_match_the_model)
{
    int64_t users[3] = {user_in(TPART, 0), user_in(TPART, 1), user_in(TPART, 2)};
    uint64_t x = 0x9e3779b97f4a7c15u;
    int windowed = 0;
#define RND(n) (x ^= x << 13, x ^= x >> 7, x ^= x << 17, (int64_t)(x % (uint64_t)(n)))
    for (int step = 0; step < 2500; step++) {
        char when[64];
        int64_t rc[3];
        uint32_t n_rc = (uint32_t)(1 + (RND(4) == 0 ? RND(3) : 0));
        for (uint32_t i = 0; i < n_rc; i++)
            rc[i] = users[(i + (uint32_t)RND(3)) % 3];
        if (n_rc > 1 && rc[0] == rc[1])
            n_rc = 1; /* recipients are distinct */
        if (n_rc > 2 && (rc[2] == rc[0] || rc[2] == rc[1]))
            n_rc = 2;
        int64_t kind = RND(20);
        if (kind < 13) { /* insert 1-3 posts; ids encode created_at so ties repeat */
            fl_tlop_post_t p[3];
            uint32_t n = (uint32_t)(1 + (RND(5) == 0 ? RND(3) : 0));
            for (uint32_t i = 0; i < n; i++) {
                int64_t t = 1000 + RND(40) * 10 + step / 50 * 10;
                p[i] = (fl_tlop_post_t){t * 4 + RND(4), 1 + RND(3), t};
                for (uint32_t j = 0; j < i; j++)
                    if (p[j].post_id == p[i].post_id)
                        p[i].post_id += 1000000 * (i + 1); /* distinct in one operation */
            }
            OK(pipe_op(FL_TLOP_INSERT, 0, p, n, rc, n_rc));
            for (uint32_t r = 0; r < n_rc; r++)
                for (uint32_t i = 0; i < n; i++)
                    m_insert(rc[r], p[i]);
        } else if (kind < 19) { /* remove one present entry (often the oldest) or an absent one */
            model_user_t *m = model_get(rc[0]);
            fl_tlop_post_t p = {999999, 1, 1};
            if (m->n > 0) {
                qsort(m->e, m->n, sizeof(m->e[0]), cmp_newest_first);
                size_t i = RND(2) ? m->n - 1 - (size_t)RND(m->n < 3 ? m->n : 3) : (size_t)RND(m->n);
                p = (fl_tlop_post_t){m->e[i].post, m->e[i].author, m->e[i].created_at};
            }
            OK(pipe_op(FL_TLOP_REMOVE, 0, &p, 1, rc, 1));
            m_remove(rc[0], p);
        } else {
            int64_t author = 1 + RND(3);
            OK(pipe_op(FL_TLOP_REMOVE_AUTHOR, author, NULL, 0, rc, n_rc));
            for (uint32_t r = 0; r < n_rc; r++)
                m_remove_author(rc[r], author);
        }
        snprintf(when, sizeof(when), "step %d", step);
        check_store(when);
        int64_t wt[FL_TIMELINE_WINDOW], wp[FL_TIMELINE_WINDOW];
        windowed += stored_window(users[0], wt, wp) > 0;
    }
#undef RND
    cr_assert_gt(windowed, 500, "the window was used in only %d steps", windowed);
}
