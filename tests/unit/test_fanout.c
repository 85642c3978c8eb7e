/*
 * test_fanout.c - the fan-out processor's rules (fl_fanout.h), one test
 * per rule, through the topology test driver (fl_driver.h) with the small
 * settings of tests/data/topology/driver.yaml: celebrity_threshold 5,
 * hysteresis 2, timeline_cap 6, backfill_size 3, outbox_cap 4, and 4
 * partitions of posts, follows and feedline.timeline-ops.
 *
 * A fan-out task only sees the events of its partition, so the fixture
 * keeps one driver per partition and routes each event by its key
 * (author or followee) as the producer's partitioner would. Outputs are
 * decoded with fl_tlop_decode and checked for the grouping contract: one
 * record per destination partition, each recipient in its record's
 * partition. Every test also checks the changelog the event produced and,
 * for no-ops, that there is none.
 *
 * The file is built twice: as test_fanout, one record per batch in
 * memory; and as test_fanout_batched, FL_TEST_BATCH records per batch on
 * RocksDB with background writes, as the runtime runs the processor, so
 * that every rule is also checked against a store read through its
 * pending and flushing layers. There a record's changes reach the
 * changelog only when its batch commits: "changed nothing" is checked
 * with the store's write counter instead, and the checks on exact
 * changelog records are made in the single-record build only.
 */
#include <criterion/criterion.h>

#include "fl_driver.h"
#include "fl_fanout.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPART 4
#define MAXV  64

#ifndef FL_TEST_BATCH
#define FL_TEST_BATCH 1
#endif
static const bool batched = FL_TEST_BATCH > 1;
static const fl_driver_opts_t opts = {.backend =
                                          FL_TEST_BATCH > 1 ? FL_DRIVER_ROCKSDB : FL_DRIVER_MEMORY,
                                      .batch_records = FL_TEST_BATCH};

/* ---- fixture: one fan-out driver per partition ---- */

static fl_topology_t *topo;
static fl_driver_t *drv[NPART];
static fl_driver_t *last;    /* the driver that took the last event */
static uint64_t last_writes; /* the store writes it made */
static char errstr[512];

static void setup(void)
{
    char path[4096], err[512] = "";
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/tests/data/topology/driver.yaml", dir && *dir ? dir : ".");
    topo = fl_topology_load(path, err, sizeof(err));
    cr_assert_not_null(topo, "topology: %s", err);
    cr_assert_eq(topo->settings.celebrity_threshold, 5);
    cr_assert_eq(topo->settings.celebrity_hysteresis, 2);
    cr_assert_eq(topo->settings.backfill_size, 3);
    cr_assert_eq(topo->settings.outbox_cap, 4);
    for (int p = 0; p < NPART; p++) {
        drv[p] = fl_driver_new_opts(topo, &fl_fanout_processor, p, &opts, err, sizeof(err));
        cr_assert_not_null(drv[p], "driver: %s", err);
    }
}

static void teardown(void)
{
    for (int p = 0; p < NPART; p++) {
        fl_driver_free(drv[p]);
        drv[p] = NULL;
    }
    fl_topology_free(topo);
    topo = NULL;
}

TestSuite(fanout, .init = setup, .fini = teardown);

static int32_t part(int64_t id)
{
    return fl_partition_for_id(id, NPART);
}

/* The n-th (from 0) id >= from whose partition is p. */
static int64_t id_in(int32_t p, int64_t from, int n)
{
    for (int64_t id = from;; id++)
        if (part(id) == p && n-- == 0)
            return id;
}

/* An id >= from in the same partition as other, not equal to it. */
static int64_t id_like(int64_t other, int64_t from)
{
    for (int64_t id = from;; id++)
        if (id != other && part(id) == part(other))
            return id;
}

/* ---- events ---- */

static char event_id[] = "test-event";
static char text[] = "hello";

static fl_err_t pipe_ev(fl_event_t *ev, const char *topic, int64_t key)
{
    fl_driver_t *d = drv[part(key)];
    fl_store_t *s = fl_driver_store(d, FL_STORE_FANOUT);
    uint64_t writes = fl_store_writes(s);
    ev->event_id = event_id;
    fl_driver_clear_outputs(d);
    last = d;
    errstr[0] = '\0';
    fl_err_t err = fl_driver_pipe_event(d, topic, ev, errstr, sizeof(errstr));
    last_writes = fl_store_writes(s) - writes;
    return err;
}

static fl_err_t post(int64_t author, int64_t post_id, int64_t created_at, fl_visibility_t vis)
{
    fl_event_t ev = {.type = FL_EV_POST_CREATED,
                     .occurred_at = created_at,
                     .post_id = post_id,
                     .author_id = author,
                     .created_at = created_at,
                     .visibility = vis,
                     .text = text};
    return pipe_ev(&ev, FL_TOPIC_POSTS, author);
}

static fl_err_t del(int64_t author, int64_t post_id)
{
    fl_event_t ev = {
        .type = FL_EV_POST_DELETED, .occurred_at = 1, .post_id = post_id, .author_id = author};
    return pipe_ev(&ev, FL_TOPIC_POSTS, author);
}

static fl_err_t follow(int64_t followee, int64_t follower)
{
    fl_event_t ev = {.type = FL_EV_FOLLOW_ADDED,
                     .occurred_at = 1,
                     .follower_id = follower,
                     .followee_id = followee};
    return pipe_ev(&ev, FL_TOPIC_FOLLOWS, followee);
}

static fl_err_t unfollow(int64_t followee, int64_t follower)
{
    fl_event_t ev = {.type = FL_EV_FOLLOW_REMOVED,
                     .occurred_at = 1,
                     .follower_id = follower,
                     .followee_id = followee};
    return pipe_ev(&ev, FL_TOPIC_FOLLOWS, followee);
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        fl_err_t e_ = (call);                                                                      \
        cr_assert_eq(e_, FL_OK, "%s: %s (%s)", #call, fl_err_str(e_), errstr);                     \
    } while (0)

/* ---- outputs ---- */

static size_t n_outputs(void)
{
    size_t n;
    fl_driver_outputs(last, &n);
    return n;
}

static size_t n_changelog(void)
{
    size_t n;
    fl_driver_changelog(last, &n);
    return n;
}

static void expect_nothing(const char *what)
{
    cr_assert_eq(n_outputs(), 0, "%s: expected no outputs, got %zu", what, n_outputs());
    if (batched)
        cr_assert_eq(last_writes, 0, "%s: expected no store writes, got %" PRIu64, what,
                     last_writes);
    else
        cr_assert_eq(n_changelog(), 0, "%s: expected no changelog records, got %zu", what,
                     n_changelog());
}

/* The decoded timeline operations of the last event, in output order. */
typedef struct ops {
    fl_tlop_t op[MAXV];
    int32_t partition[MAXV];
    char key[MAXV][32];
    size_t n;
    size_t n_celebrity; /* records on feedline.celebrities */
    json_t *celebrity;  /* the last one, parsed */
} ops_t;

static void ops_free(ops_t *o)
{
    for (size_t i = 0; i < o->n; i++)
        fl_tlop_clear(&o->op[i]);
    json_decref(o->celebrity);
    memset(o, 0, sizeof(*o));
}

/* Decodes every output and checks what holds for any fan-out output: the
 * topic is an output of fanout; each recipient of a timeline-ops record
 * lives in the record's partition; within one kind of operation with the
 * same posts, no two records go to the same partition. */
static void ops_load(ops_t *o)
{
    size_t n;
    const fl_driver_record_t *r = fl_driver_outputs(last, &n);

    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(r[i].topic, FL_TOPIC_CELEBRITIES)) {
            json_error_t jerr;
            cr_assert_eq(r[i].partition, 0);
            json_decref(o->celebrity);
            o->celebrity = json_loadb(r[i].value, r[i].vlen, 0, &jerr);
            cr_assert_not_null(o->celebrity, "celebrity record is not JSON: %s", jerr.text);
            o->n_celebrity++;
            continue;
        }
        cr_assert_str_eq(r[i].topic, FL_TOPIC_TIMELINE_OPS);
        cr_assert_lt(o->n, (size_t)MAXV);
        char err[256] = "";
        fl_err_t e = fl_tlop_decode(r[i].value, r[i].vlen, &o->op[o->n], err, sizeof(err));
        cr_assert_eq(e, FL_OK, "output %zu does not decode: %s", i, err);
        cr_assert_lt(r[i].klen, sizeof(o->key[0]));
        memcpy(o->key[o->n], r[i].key, r[i].klen);
        o->partition[o->n] = r[i].partition;
        const fl_tlop_t *op = &o->op[o->n];
        cr_assert_gt(op->n_recipients, 0, "record without recipients");
        for (uint32_t k = 0; k < op->n_recipients; k++)
            cr_assert_eq(part(op->recipients[k]), r[i].partition,
                         "recipient %" PRId64 " (partition %d) in a record for partition %d",
                         op->recipients[k], part(op->recipients[k]), r[i].partition);
        for (size_t j = 0; j < o->n; j++) {
            const fl_tlop_t *q = &o->op[j];
            if (q->op != op->op || q->n_posts != op->n_posts || o->partition[j] != r[i].partition)
                continue;
            bool same = q->author_id == op->author_id;
            for (uint32_t k = 0; same && k < op->n_posts; k++)
                same = q->posts[k].post_id == op->posts[k].post_id;
            cr_assert(!same, "two %s records for partition %d", fl_tlop_kind_str(op->op),
                      r[i].partition);
        }
        o->n++;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every record of kind has exactly posts (in this order; NULL/0 for
 * REMOVE_AUTHOR, which must name author) and together they reach exactly
 * the recipients in want (any order, none twice). Records keyed by key. */
static void expect_op(const ops_t *o, fl_tlop_kind_t kind, int64_t key, const int64_t *posts,
                      size_t n_posts, const int64_t *want, size_t n_want)
{
    int64_t got[MAXV], exp[MAXV];
    size_t n_got = 0;
    char keystr[32];

    snprintf(keystr, sizeof(keystr), "%" PRId64, key);
    for (size_t i = 0; i < o->n; i++) {
        const fl_tlop_t *op = &o->op[i];
        if (op->op != kind)
            continue;
        cr_assert_str_eq(o->key[i], keystr, "record key");
        if (kind == FL_TLOP_REMOVE_AUTHOR) {
            cr_assert_eq(op->author_id, key, "REMOVE_AUTHOR names author %" PRId64, op->author_id);
            cr_assert_eq(op->n_posts, 0);
        }
        cr_assert_eq(op->n_posts, n_posts, "%s record with %u posts, want %zu",
                     fl_tlop_kind_str(kind), op->n_posts, n_posts);
        for (size_t k = 0; k < n_posts; k++) {
            cr_assert_eq(op->posts[k].post_id, posts[k],
                         "%s post %zu: got %" PRId64 ", want %" PRId64, fl_tlop_kind_str(kind), k,
                         op->posts[k].post_id, posts[k]);
            cr_assert_eq(op->posts[k].author_id, key, "post author");
        }
        for (uint32_t k = 0; k < op->n_recipients; k++) {
            cr_assert_lt(n_got, (size_t)MAXV);
            got[n_got++] = op->recipients[k];
        }
    }
    cr_assert_eq(n_got, n_want, "%s reaches %zu recipients, want %zu", fl_tlop_kind_str(kind),
                 n_got, n_want);
    memcpy(exp, want, n_want * sizeof(*want));
    qsort(got, n_got, sizeof(*got), cmp_i64);
    qsort(exp, n_want, sizeof(*exp), cmp_i64);
    for (size_t k = 0; k < n_got; k++) {
        if (k)
            cr_assert_neq(got[k], got[k - 1], "recipient %" PRId64 " twice", got[k]);
        cr_assert_eq(got[k], exp[k], "recipient %" PRId64 " where %" PRId64 " was expected", got[k],
                     exp[k]);
    }
}

static size_t count_kind(const ops_t *o, fl_tlop_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++)
        n += o->op[i].op == kind;
    return n;
}

/* Number of distinct partitions among recipients. */
static size_t n_partitions_of(const int64_t *ids, size_t n)
{
    bool seen[NPART] = {false};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!seen[part(ids[i])])
            k++;
        seen[part(ids[i])] = true;
    }
    return k;
}

static fl_fanout_author_t author_of(int64_t a)
{
    fl_fanout_author_t out;
    fl_store_t *s = fl_driver_store(drv[part(a)], FL_STORE_FANOUT);
    cr_assert_not_null(s);
    cr_assert_eq(fl_fanout_author_get(s, a, &out), FL_OK);
    return out;
}

/* The author's outbox, newest first, from the store. Returns the count. */
static size_t outbox_of(int64_t a, int64_t *posts, size_t cap)
{
    fl_store_t *s = fl_driver_store(drv[part(a)], FL_STORE_FANOUT);
    fl_store_iter_t *it = NULL;
    fl_key_t prefix;
    size_t n = 0;
    int64_t prev_t = INT64_MAX, prev_p = INT64_MAX;

    fl_key_entity(&prefix, FL_KEY_TAG_OUTBOX, a);
    cr_assert_eq(fl_store_iter_new(s, prefix.buf, prefix.len, &it), FL_OK);
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t klen, vlen;
        const void *key = fl_store_iter_key(it, &klen);
        int64_t owner, t, p;
        cr_assert_eq(fl_key_parse_recent(key, klen, FL_KEY_TAG_OUTBOX, &owner, &t, &p), FL_OK);
        cr_assert_eq(owner, a);
        fl_store_iter_value(it, &vlen);
        cr_assert_eq(vlen, 1, "outbox value is the visibility byte");
        cr_assert(t < prev_t || (t == prev_t && p < prev_p), "outbox not newest first");
        prev_t = t;
        prev_p = p;
        cr_assert_lt(n, cap);
        posts[n++] = p;
    }
    cr_assert_eq(fl_store_iter_status(it), FL_OK);
    fl_store_iter_free(it);
    return n;
}

static void expect_outbox(int64_t a, const int64_t *want, size_t n_want)
{
    int64_t got[MAXV];
    size_t n = outbox_of(a, got, MAXV);
    cr_assert_eq(n, n_want, "outbox of %" PRId64 " has %zu posts, want %zu", a, n, n_want);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "outbox[%zu] = %" PRId64 ", want %" PRId64, i, got[i],
                     want[i]);
    cr_assert_eq(author_of(a).outbox, (int64_t)n_want, "outbox counter");
}

/* The last event's changelog records: on the fan-out store's name, in the
 * task's partition; returns how many have a key with tag. */
static size_t changelog_with_tag(uint8_t tag)
{
    size_t n, k = 0;
    const fl_driver_record_t *r = fl_driver_changelog(last, &n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(r[i].topic, FL_STORE_FANOUT);
        cr_assert_eq(r[i].partition, fl_store_partition(fl_driver_store(last, FL_STORE_FANOUT)),
                     "changelog record in partition %d of a task of another partition",
                     r[i].partition);
        k += r[i].klen > 0 && ((const uint8_t *)r[i].key)[0] == tag;
    }
    return k;
}

/* Followers of author a: one per partition, then more, n in all. */
static void make_followers(int64_t a, int64_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = id_in((int32_t)(i % NPART), 1000, (int)(i / NPART));
        OK(follow(a, f[i]));
    }
}

/* ---- PostCreated ---- */

static void check_fanout_to_followers(fl_visibility_t vis)
{
    const int64_t a = 1;
    int64_t f[4], want[5];
    ops_t o;

    make_followers(a, f, 4);
    cr_assert_eq(author_of(a).followers, 4);
    cr_assert(!author_of(a).celebrity);

    OK(post(a, 500, 10000, vis));
    ops_load(&o);
    want[0] = a;
    memcpy(want + 1, f, sizeof(f));
    int64_t p = 500;
    expect_op(&o, FL_TLOP_INSERT, a, &p, 1, want, 5);
    cr_assert_eq(o.n, n_partitions_of(want, 5), "one record per destination partition");
    cr_assert_eq(o.n_celebrity, 0);
    cr_assert_eq(o.op[0].posts[0].created_at, 10000);
    ops_free(&o);
    expect_outbox(a, &p, 1);
    if (!batched)
        cr_assert_gt(changelog_with_tag(FL_KEY_TAG_POST), 0);
}

Test(fanout, public_post_reaches_author_and_every_follower)
{
    check_fanout_to_followers(FL_VIS_PUBLIC);
}

Test(fanout, followers_only_post_is_fanned_out_like_public)
{
    check_fanout_to_followers(FL_VIS_FOLLOWERS);
}

Test(fanout, follow_with_empty_outbox_emits_nothing)
{
    OK(follow(1, 2));
    cr_assert_eq(n_outputs(), 0);
    cr_assert_gt(batched ? last_writes : n_changelog(), 0, "the edge and the counter are stored");
    cr_assert_eq(author_of(1).followers, 1);
}

Test(fanout, private_post_reaches_only_the_author_and_stays_out_of_the_outbox)
{
    const int64_t a = 1;
    int64_t f[3];
    ops_t o;

    make_followers(a, f, 3);
    OK(post(a, 500, 10000, FL_VIS_PRIVATE));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){500}, 1, &a, 1);
    cr_assert_eq(o.n, 1);
    ops_free(&o);
    expect_outbox(a, NULL, 0);
    if (!batched)
        cr_assert_eq(changelog_with_tag(FL_KEY_TAG_OUTBOX), 0);

    /* A new follower is not backfilled with it either. */
    int64_t g = id_in(2, 5000, 0);
    OK(follow(a, g));
    cr_assert_eq(n_outputs(), 0);

    /* Its deletion still reaches the author (and followers, harmlessly). */
    OK(del(a, 500));
    ops_load(&o);
    int64_t want[5] = {a, f[0], f[1], f[2], g};
    expect_op(&o, FL_TLOP_REMOVE, a, (int64_t[]){500}, 1, want, 5);
    ops_free(&o);
}

/* ---- duplicates: every input type, delivered twice, changes nothing the second time ---- */

Test(fanout, duplicate_delivery_of_every_event_type_is_a_no_op)
{
    const int64_t a = 1, b = id_in(part(1), 2, 0);
    int64_t f = id_in(1, 1000, 0), g = id_in(2, 1000, 0);

#define TWICE(call, what)                                                                          \
    do {                                                                                           \
        OK(call);                                                                                  \
        size_t dl_ = fl_driver_dead_letters(last);                                                 \
        OK(call);                                                                                  \
        expect_nothing(what);                                                                      \
        cr_assert_eq(fl_driver_dead_letters(last), dl_);                                           \
    } while (0)

    TWICE(follow(a, f), "duplicate FollowAdded (empty outbox)");
    TWICE(post(a, 500, 10000, FL_VIS_PUBLIC), "duplicate PostCreated public");
    TWICE(post(a, 501, 10001, FL_VIS_FOLLOWERS), "duplicate PostCreated followers");
    TWICE(post(a, 502, 10002, FL_VIS_PRIVATE), "duplicate PostCreated private");
    TWICE(follow(a, g), "duplicate FollowAdded (with backfill)");
    TWICE(del(a, 500), "duplicate PostDeleted");
    TWICE(del(a, 502), "duplicate PostDeleted of a private post");
    TWICE(del(a, 999), "duplicate PostDeleted of an unknown post");
    TWICE(post(a, 999, 10003, FL_VIS_PUBLIC), "PostCreated after its deletion, twice");
    TWICE(unfollow(a, f), "duplicate FollowRemoved");
    TWICE(unfollow(a, 77), "duplicate FollowRemoved without follow");
    TWICE(post(b, 600, 10004, FL_VIS_PUBLIC), "duplicate PostCreated, second author");
#undef TWICE

    /* Invalid events stay invalid the second time, and keep nothing. */
    size_t dl = fl_driver_dead_letters(drv[part(a)]);
    cr_assert_eq(follow(a, a), FL_ERR_INVALID);
    cr_assert_eq(follow(a, a), FL_ERR_INVALID);
    expect_nothing("self-follow");
    cr_assert_eq(post(b, 501, 10005, FL_VIS_PUBLIC), FL_ERR_INVALID);
    cr_assert_eq(post(b, 501, 10005, FL_VIS_PUBLIC), FL_ERR_INVALID);
    expect_nothing("post id of another author");
    cr_assert_eq(fl_driver_dead_letters(drv[part(a)]), dl + 4);

    fl_fanout_author_t au = author_of(a);
    cr_assert_eq(au.followers, 1);
    expect_outbox(a, (int64_t[]){501}, 1);
}

/* ---- PostDeleted ---- */

Test(fanout, delete_removes_from_author_and_followers_once)
{
    const int64_t a = 1;
    int64_t f[4], want[5];
    ops_t o;

    make_followers(a, f, 4);
    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    OK(post(a, 501, 10001, FL_VIS_PUBLIC));
    OK(del(a, 500));
    ops_load(&o);
    want[0] = a;
    memcpy(want + 1, f, sizeof(f));
    expect_op(&o, FL_TLOP_REMOVE, a, (int64_t[]){500}, 1, want, 5);
    cr_assert_eq(o.n, n_partitions_of(want, 5));
    cr_assert_eq(o.op[0].posts[0].created_at, 10000, "removal names the stored created_at");
    ops_free(&o);
    expect_outbox(a, (int64_t[]){501}, 1);

    OK(del(a, 500));
    expect_nothing("second PostDeleted");
    expect_outbox(a, (int64_t[]){501}, 1);
}

Test(fanout, delete_of_unknown_post_emits_nothing_and_blocks_a_late_create)
{
    const int64_t a = 1;
    int64_t f[2];

    make_followers(a, f, 2);
    OK(del(a, 500));
    cr_assert_eq(n_outputs(), 0);
    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    expect_nothing("PostCreated after its deletion");
    expect_outbox(a, NULL, 0);
    /* A new follower gets nothing either. */
    OK(follow(a, id_in(3, 5000, 0)));
    cr_assert_eq(n_outputs(), 0);
}

Test(fanout, post_id_reused_by_another_author_is_dead_lettered)
{
    const int64_t a = 1, b = id_like(1, 2);
    int64_t f = id_in(0, 1000, 0);

    OK(follow(a, f));
    OK(follow(b, f));
    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    size_t dl = fl_driver_dead_letters(last);

    cr_assert_eq(post(b, 500, 20000, FL_VIS_PUBLIC), FL_ERR_INVALID);
    cr_assert_neq(errstr[0], '\0', "an invalid record comes with a message");
    expect_nothing("reused post id");
    cr_assert_eq(fl_driver_dead_letters(last), dl + 1);
    expect_outbox(b, NULL, 0);
    expect_outbox(a, (int64_t[]){500}, 1);

    /* Deleting it as the other author is invalid too. */
    cr_assert_eq(del(b, 500), FL_ERR_INVALID);
    expect_nothing("delete by another author");
    cr_assert_eq(fl_driver_dead_letters(last), dl + 2);

    /* It still belongs to a: a's delete works. */
    ops_t o;
    OK(del(a, 500));
    ops_load(&o);
    expect_op(&o, FL_TLOP_REMOVE, a, (int64_t[]){500}, 1, (int64_t[]){a, f}, 2);
    ops_free(&o);
}

/* ---- FollowAdded / FollowRemoved ---- */

Test(fanout, follow_backfills_newest_non_private_live_posts_to_the_follower_only)
{
    const int64_t a = 1;
    int64_t f[2];
    ops_t o;

    make_followers(a, f, 2);
    /* created_at out of id order, one tie (broken by post id, larger newer) */
    OK(post(a, 501, 10300, FL_VIS_PUBLIC));
    OK(post(a, 502, 10100, FL_VIS_FOLLOWERS));
    OK(post(a, 503, 10300, FL_VIS_PUBLIC));
    OK(post(a, 504, 10200, FL_VIS_PUBLIC));
    OK(post(a, 505, 10900, FL_VIS_PRIVATE)); /* newest, private */
    expect_outbox(a, (int64_t[]){503, 501, 504, 502}, 4);

    int64_t g = id_in(2, 5000, 0);
    OK(follow(a, g));
    ops_load(&o);
    cr_assert_eq(o.n, 1, "backfill is one record");
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){503, 501, 504}, 3, &g, 1);
    cr_assert_eq(o.op[0].posts[0].created_at, 10300);
    cr_assert_eq(o.op[0].posts[2].created_at, 10200);
    ops_free(&o);

    /* A deleted post leaves the backfill. */
    OK(del(a, 501));
    int64_t h = id_in(3, 5000, 0);
    OK(follow(a, h));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){503, 504, 502}, 3, &h, 1);
    ops_free(&o);
    expect_outbox(a, (int64_t[]){503, 504, 502}, 3);
}

Test(fanout, duplicate_follow_is_a_no_op_and_self_follow_is_dead_lettered)
{
    const int64_t a = 1;
    int64_t f = id_in(0, 1000, 0);

    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    OK(follow(a, f));
    cr_assert_eq(n_outputs(), 1);
    OK(follow(a, f));
    expect_nothing("duplicate follow");
    cr_assert_eq(author_of(a).followers, 1);

    size_t dl = fl_driver_dead_letters(last);
    cr_assert_eq(follow(a, a), FL_ERR_INVALID);
    cr_assert_neq(errstr[0], '\0');
    expect_nothing("self-follow");
    cr_assert_eq(fl_driver_dead_letters(last), dl + 1);
    cr_assert_eq(author_of(a).followers, 1);

    /* An unfollow of oneself is just as invalid. */
    cr_assert_eq(unfollow(a, a), FL_ERR_INVALID);
    expect_nothing("self-unfollow");
}

Test(fanout, unfollow_removes_the_authors_posts_from_the_ex_follower)
{
    const int64_t a = 1;
    int64_t f[3];
    ops_t o;

    make_followers(a, f, 3);
    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    OK(unfollow(a, f[1]));
    ops_load(&o);
    cr_assert_eq(o.n, 1);
    expect_op(&o, FL_TLOP_REMOVE_AUTHOR, a, NULL, 0, &f[1], 1);
    ops_free(&o);
    cr_assert_eq(author_of(a).followers, 2);

    /* Later posts skip the ex-follower. */
    OK(post(a, 501, 10001, FL_VIS_PUBLIC));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){501}, 1, (int64_t[]){a, f[0], f[2]}, 3);
    ops_free(&o);

    /* Unfollow without follow: nothing. */
    OK(unfollow(a, id_in(0, 5000, 0)));
    expect_nothing("unfollow without follow");
    OK(unfollow(a, f[1]));
    expect_nothing("second unfollow");
    cr_assert_eq(author_of(a).followers, 2);
}

/* ---- the outbox ---- */

/* The author record's oldest bound: where a trim starts. */
static void expect_bound(int64_t a, int64_t t, int64_t p)
{
    fl_fanout_author_t au = author_of(a);
    cr_assert(au.bounded, "author %" PRId64 " has no oldest bound", a);
    cr_assert(au.oldest_t == t && au.oldest_p == p,
              "oldest bound (%" PRId64 ", %" PRId64 "), want (%" PRId64 ", %" PRId64 ")",
              au.oldest_t, au.oldest_p, t, p);
}

Test(fanout, outbox_keeps_the_newest_four_posts)
{
    const int64_t a = 1;

    OK(post(a, 503, 10030, FL_VIS_PUBLIC));
    expect_bound(a, 10030, 503);
    for (int i = 0; i < 10; i++)
        if (i != 3)
            OK(post(a, 500 + i, 10000 + 10 * i, FL_VIS_PUBLIC));
    expect_outbox(a, (int64_t[]){509, 508, 507, 506}, 4);
    expect_bound(a, 10060, 506);

    /* An older post than all four is not kept, and leaves the outbox as it
     * was: no OUTBOX change reaches the changelog. */
    OK(post(a, 400, 5000, FL_VIS_PUBLIC));
    expect_outbox(a, (int64_t[]){509, 508, 507, 506}, 4);
    if (!batched)
        cr_assert_eq(changelog_with_tag(FL_KEY_TAG_OUTBOX), 0,
                     "an outbox entry that was never kept must not be tombstoned");

    /* Ties on created_at are broken by post id, the larger being newer:
     * tied with the oldest (10060, 506) but smaller stays out, larger
     * displaces it. */
    OK(post(a, 450, 10060, FL_VIS_PUBLIC));
    expect_outbox(a, (int64_t[]){509, 508, 507, 506}, 4);
    if (!batched)
        cr_assert_eq(changelog_with_tag(FL_KEY_TAG_OUTBOX), 0);
    expect_bound(a, 10060, 506);
    OK(post(a, 650, 10060, FL_VIS_PUBLIC));
    expect_outbox(a, (int64_t[]){509, 508, 507, 650}, 4);
    expect_bound(a, 10060, 650);
    if (!batched)
        cr_assert_eq(changelog_with_tag(FL_KEY_TAG_OUTBOX), 2, "one put, one tombstone");

    /* A post between them displaces the oldest. */
    OK(post(a, 600, 10075, FL_VIS_FOLLOWERS));
    expect_outbox(a, (int64_t[]){509, 508, 600, 507}, 4);
    expect_bound(a, 10070, 507);
    if (!batched)
        cr_assert_eq(changelog_with_tag(FL_KEY_TAG_OUTBOX), 2, "one put, one tombstone");

    /* Deleting shrinks it; trimmed posts do not come back. */
    OK(del(a, 509));
    OK(del(a, 500)); /* trimmed long ago */
    expect_outbox(a, (int64_t[]){508, 600, 507}, 3);

    /* Deleting the oldest leaves the bound below the new oldest; the next
     * trims start there and move it up to what is left. */
    OK(del(a, 507));
    expect_outbox(a, (int64_t[]){508, 600}, 2);
    expect_bound(a, 10070, 507);
    OK(post(a, 700, 10100, FL_VIS_PUBLIC));
    OK(post(a, 701, 10110, FL_VIS_PUBLIC));
    expect_bound(a, 10070, 507); /* no trim yet */
    OK(post(a, 702, 10120, FL_VIS_PUBLIC));
    expect_outbox(a, (int64_t[]){702, 701, 700, 508}, 4);
    expect_bound(a, 10080, 508);
    OK(post(a, 703, 10130, FL_VIS_PUBLIC));
    expect_outbox(a, (int64_t[]){703, 702, 701, 700}, 4);
    expect_bound(a, 10100, 700);

    /* The backfill shows the same content. */
    ops_t o;
    int64_t f = id_in(1, 1000, 0);
    OK(follow(a, f));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){703, 702, 701}, 3, &f, 1); /* backfill_size 3 */
    ops_free(&o);
}

/* ---- celebrity status ---- */

static void expect_celebrity_record(const ops_t *o, int64_t a, bool celebrity, int64_t followers)
{
    size_t n;
    const fl_driver_record_t *r = fl_driver_outputs(last, &n);
    char key[32];

    cr_assert_eq(o->n_celebrity, 1, "expected one record on %s, got %zu", FL_TOPIC_CELEBRITIES,
                 o->n_celebrity);
    json_t *v = json_object_get(o->celebrity, "celebrity");
    cr_assert(json_is_boolean(v), "\"celebrity\" is a boolean");
    cr_assert_eq(json_is_true(v), celebrity, "\"celebrity\":%s expected",
                 celebrity ? "true" : "false");
    cr_assert_eq(json_integer_value(json_object_get(o->celebrity, "author_id")), a);
    cr_assert_eq(json_integer_value(json_object_get(o->celebrity, "followers")), followers);
    snprintf(key, sizeof(key), "%" PRId64, a);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].topic, FL_TOPIC_CELEBRITIES)) {
            cr_assert_eq(r[i].klen, strlen(key));
            cr_assert(!memcmp(r[i].key, key, r[i].klen), "celebrity record keyed by author");
        }
}

Test(fanout, celebrity_threshold_with_hysteresis)
{
    const int64_t a = 1;
    int64_t f[7];
    ops_t o;

    for (int i = 0; i < 7; i++)
        f[i] = id_in((int32_t)(i % NPART), 1000, i / NPART);

    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    for (int i = 0; i < 4; i++) {
        OK(follow(a, f[i]));
        ops_load(&o);
        cr_assert_eq(o.n_celebrity, 0, "no celebrity at %d followers", i + 1);
        expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){500}, 1, &f[i], 1);
        ops_free(&o);
    }
    cr_assert(!author_of(a).celebrity);

    /* Regular author: fanned out to all four. */
    OK(post(a, 501, 10001, FL_VIS_PUBLIC));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){501}, 1, (int64_t[]){a, f[0], f[1], f[2], f[3]},
              5);
    ops_free(&o);

    /* The fifth follower makes a celebrity: one status record, and (the
     * author being a celebrity now) no backfill. */
    OK(follow(a, f[4]));
    ops_load(&o);
    expect_celebrity_record(&o, a, true, 5);
    cr_assert_eq(count_kind(&o, FL_TLOP_INSERT), 0, "no backfill from a celebrity");
    ops_free(&o);
    cr_assert(author_of(a).celebrity);
    cr_assert_eq(author_of(a).followers, 5);

    /* Posts of a celebrity reach only the author, and are kept in the outbox. */
    OK(post(a, 502, 10002, FL_VIS_PUBLIC));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){502}, 1, &a, 1);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.n_celebrity, 0);
    ops_free(&o);
    OK(post(a, 503, 10003, FL_VIS_FOLLOWERS));
    OK(post(a, 504, 10004, FL_VIS_PRIVATE));
    expect_outbox(a, (int64_t[]){503, 502, 501, 500}, 4);

    /* A sixth follower: no record, no backfill. */
    OK(follow(a, f[5]));
    ops_load(&o);
    cr_assert_eq(o.n, 0);
    cr_assert_eq(o.n_celebrity, 0);
    ops_free(&o);

    /* Down to 4 and 3 (>= 5 - 2): still a celebrity, no flap. */
    OK(unfollow(a, f[5]));
    OK(unfollow(a, f[4]));
    ops_load(&o);
    cr_assert_eq(o.n_celebrity, 0, "no flap at 4 followers");
    expect_op(&o, FL_TLOP_REMOVE_AUTHOR, a, NULL, 0, &f[4], 1);
    cr_assert_eq(o.n, 1);
    ops_free(&o);
    cr_assert(author_of(a).celebrity);
    OK(follow(a, f[4])); /* back to 5: already one, no record */
    ops_load(&o);
    cr_assert_eq(o.n_celebrity, 0, "no flap back to 5");
    cr_assert_eq(o.n, 0);
    ops_free(&o);
    OK(unfollow(a, f[4]));
    OK(unfollow(a, f[3]));
    ops_load(&o);
    cr_assert_eq(o.n_celebrity, 0, "no flap at 3 followers");
    ops_free(&o);
    cr_assert(author_of(a).celebrity);
    cr_assert_eq(author_of(a).followers, 3);

    /* At 2 (< 5 - 2): regular again; the newest three outbox posts go to
     * every remaining follower, and the ex-follower loses the author. */
    OK(unfollow(a, f[2]));
    ops_load(&o);
    expect_celebrity_record(&o, a, false, 2);
    expect_op(&o, FL_TLOP_REMOVE_AUTHOR, a, NULL, 0, &f[2], 1);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){503, 502, 501}, 3, (int64_t[]){f[0], f[1]}, 2);
    ops_free(&o);
    cr_assert(!author_of(a).celebrity);

    /* Posts are fanned out again. */
    OK(post(a, 505, 10005, FL_VIS_PUBLIC));
    ops_load(&o);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){505}, 1, (int64_t[]){a, f[0], f[1]}, 3);
    ops_free(&o);

    /* Crossing up again works: 3, 4 regular (with backfill), 5 celebrity. */
    OK(follow(a, f[2]));
    ops_load(&o);
    cr_assert_eq(o.n_celebrity, 0);
    expect_op(&o, FL_TLOP_INSERT, a, (int64_t[]){505, 503, 502}, 3, &f[2], 1);
    ops_free(&o);
    OK(follow(a, f[3]));
    ops_load(&o);
    cr_assert_eq(o.n_celebrity, 0);
    ops_free(&o);
    OK(follow(a, f[6]));
    ops_load(&o);
    expect_celebrity_record(&o, a, true, 5);
    cr_assert_eq(o.n, 0);
    ops_free(&o);
    cr_assert(author_of(a).celebrity);

    /* Deleting a celebrity's post still reaches every follower. */
    OK(del(a, 502));
    ops_load(&o);
    expect_op(&o, FL_TLOP_REMOVE, a, (int64_t[]){502}, 1,
              (int64_t[]){a, f[0], f[1], f[2], f[3], f[6]}, 6);
    ops_free(&o);
}

Test(fanout, driver_changelog_is_in_the_task_partition)
{
    int64_t a = id_in(3, 1, 0);
    OK(post(a, 500, 10000, FL_VIS_PUBLIC));
    OK(fl_driver_flush(last, errstr, sizeof(errstr))); /* a batch's changelog comes at its commit */
    size_t n;
    const fl_driver_record_t *r = fl_driver_changelog(last, &n);
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(r[i].partition, 3, "changelog record %zu in partition %d", i, r[i].partition);
}

/* ---- regressions: no dead letter after a write ---- */

/* A stored key committed behind the processor's back, as damage would. */
static void inject(int64_t owner, const fl_key_t *k, const void *val, size_t vlen)
{
    fl_store_t *s = fl_driver_store(drv[part(owner)], FL_STORE_FANOUT);
    OK(fl_driver_flush(drv[part(owner)], errstr, sizeof(errstr))); /* not into an open batch */
    cr_assert_eq(fl_store_put(s, k->buf, k->len, val, vlen), FL_OK);
    cr_assert_eq(fl_store_commit(s, NULL, 0, -1), FL_OK, "%s", fl_store_errmsg(s));
}

static fl_key_t with_extra_byte(fl_key_t k)
{
    k.buf[k.len++] = 0x01;
    return k;
}

/* The failure after a write must be the processor's own diagnosis, not
 * the context's check catching an FL_ERR_INVALID. */
static void expect_stopped(fl_err_t got, fl_err_t want, size_t dead_letters, const char *what)
{
    cr_assert_eq(got, want, "%s: got %s (%s)", what, fl_err_str(got), errstr);
    cr_assert_null(strstr(errstr, "rejected"), "%s: the processor returned FL_ERR_INVALID: %s",
                   what, errstr);
    cr_assert_eq(fl_driver_dead_letters(last), dead_letters, "%s was dead-lettered", what);
    cr_assert_eq(n_outputs(), 0, "%s: outputs kept", what);
    cr_assert_eq(n_changelog(), 0, "%s: changes committed", what);
    cr_assert_eq(fl_store_pending(fl_driver_store(last, FL_STORE_FANOUT)), 0,
                 "%s: changes left pending", what);
}

/* A FOLLOWER or OUTBOX key that does not parse was reported as
 * FL_ERR_INVALID after the post, outbox, edge and counter were written:
 * the runtime dead-lettered the event and committed half of it. */
Test(fanout, damaged_stored_key_is_corruption_not_a_dead_letter)
{
    const int64_t a = 1;
    int64_t f = id_in(0, 1000, 0), g = id_in(1, 1000, 0);
    fl_key_t k;

    OK(follow(a, f));
    fl_key_edge(&k, FL_KEY_TAG_FOLLOWER, a, g);
    k = with_extra_byte(k);
    inject(a, &k, "", 0);
    expect_stopped(post(a, 500, 10000, FL_VIS_PUBLIC), FL_ERR_CORRUPT, 0,
                   "post with a damaged follower key");
    expect_stopped(post(a, 500, 10000, FL_VIS_PUBLIC), FL_ERR_CORRUPT, 0,
                   "the same post again: it was not kept");
    expect_outbox(a, NULL, 0);

    const int64_t b = id_like(a, 2);
    uint8_t vis = FL_VIS_PUBLIC;
    fl_key_recent(&k, FL_KEY_TAG_OUTBOX, b, 10000, 600);
    k = with_extra_byte(k);
    inject(b, &k, &vis, 1);
    expect_stopped(follow(b, f), FL_ERR_CORRUPT, 0, "follow backfilled from a damaged outbox key");
    cr_assert_eq(author_of(b).followers, 0, "the follow was kept");
}

/* A topology in which fanout may not write feedline.timeline-ops made
 * every post fail as FL_ERR_INVALID after its post record was written:
 * each one dead-lettered while the store took it. */
Test(fanout, undeclared_output_stops_instead_of_dead_lettering)
{
    char path[4096], err[512] = "", *yaml = NULL;
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");
    const char *from = "outputs: [feedline.timeline-ops, feedline.celebrities]";
    const char *to = "outputs: [feedline.celebrities]";
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/tests/data/topology/driver.yaml", dir && *dir ? dir : ".");
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp);
    cr_assert_eq(getdelim(&yaml, &len, '\0', fp) > 0, true);
    fclose(fp);
    char *at = strstr(yaml, from);
    cr_assert_not_null(at, "driver.yaml changed: no fanout outputs line");
    memmove(at + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
    memcpy(at, to, strlen(to));
    fl_topology_t *t = fl_topology_parse(yaml, strlen(yaml), "no-timeline-ops", err, sizeof(err));
    cr_assert_not_null(t, "topology: %s", err);
    fl_driver_t *d = fl_driver_new_opts(t, &fl_fanout_processor, part(1), &opts, err, sizeof(err));
    cr_assert_not_null(d, "driver: %s", err);

    fl_driver_t *saved = drv[part(1)];
    drv[part(1)] = d;
    expect_stopped(post(1, 500, 10000, FL_VIS_PRIVATE), FL_ERR_CONFIG, 0,
                   "post with no timeline-ops output");
    expect_stopped(post(1, 500, 10000, FL_VIS_PRIVATE), FL_ERR_CONFIG, 0,
                   "the same post again: it was not kept");
    drv[part(1)] = saved;
    fl_driver_free(d);
    fl_topology_free(t);
    free(yaml);
}
