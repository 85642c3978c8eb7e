/*
 * test_engagement.c - the engagement processor's rules (fl_engagement.h)
 * and the codec of its facts and edges (fl_engage.h), through the
 * topology test driver with tests/data/topology/driver.yaml: 4 partitions
 * of posts, follows, likes and feedline.engagement-edges, 3 of
 * feedline.engagement (so that a fact placed by the wrong partition count
 * shows).
 *
 * The fixture keeps one engagement and one affinity driver per partition
 * and routes each event by its key, as the producer's partitioner would.
 * The edges an engagement task forwards are piped on into the affinity
 * task of their partition, so that every test sees the whole chain; the
 * facts both forward are applied, in order, to a table of current facts
 * (a compacted topic's view: the last record of a key wins, a tombstone
 * removes it), and every fact is checked to sit in the partition of its
 * first id.
 *
 * Built twice, like test_fanout: one record per batch in memory, and
 * FL_TEST_BATCH records per batch on RocksDB with background writes.
 */
#include <criterion/criterion.h>

#include "fl_affinity.h"
#include "fl_driver.h"
#include "fl_engage.h"
#include "fl_engagement.h"
#include "fl_partition.h"
#include "fl_test_topology.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPART      4
#define FACT_PARTS 3
#define MAXFACTS   8192

#ifndef FL_TEST_BATCH
#define FL_TEST_BATCH 1
#endif
static const fl_driver_opts_t opts = {.backend =
                                          FL_TEST_BATCH > 1 ? FL_DRIVER_ROCKSDB : FL_DRIVER_MEMORY,
                                      .batch_records = FL_TEST_BATCH};

/* ---- the table of current facts ---- */

typedef struct fact_row {
    uint8_t key[FL_FACT_KEY_MAX];
    size_t klen;
    int64_t value;
} fact_row_t;

typedef struct facts {
    fact_row_t row[MAXFACTS];
    size_t n;
} facts_t;

static facts_t *table;

static fact_row_t *facts_find(facts_t *t, const void *key, size_t klen)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->row[i].klen == klen && !memcmp(t->row[i].key, key, klen))
            return &t->row[i];
    return NULL;
}

static void facts_set(facts_t *t, const void *key, size_t klen, bool present, int64_t value)
{
    fact_row_t *r = facts_find(t, key, klen);
    if (!present) {
        if (r)
            *r = t->row[--t->n];
        return;
    }
    if (!r) {
        cr_assert_lt(t->n, MAXFACTS);
        r = &t->row[t->n++];
        memcpy(r->key, key, klen);
        r->klen = klen;
    }
    r->value = value;
}

static fl_fact_t mkfact(fl_fact_kind_t kind, int64_t a, int64_t b, int64_t c)
{
    fl_fact_t f = {.kind = kind, .id = {a, b, c}, .present = true};
    if (kind == FL_FACT_NOTIFICATION)
        f.nkind = c ? FL_NOTIF_LIKE : FL_NOTIF_FOLLOW;
    return f;
}

/* The current value of a fact; false when it is absent. */
static bool fact_get(fl_fact_kind_t kind, int64_t a, int64_t b, int64_t c, int64_t *value)
{
    fl_fact_t f = mkfact(kind, a, b, c);
    uint8_t key[FL_FACT_KEY_MAX];
    fact_row_t *r = facts_find(table, key, fl_fact_key_encode(&f, key));
    if (r && value)
        *value = r->value;
    return r != NULL;
}

#define EXPECT_FACT(kind, a, b, c, want)                                                           \
    do {                                                                                           \
        int64_t v_ = 0;                                                                            \
        cr_assert(fact_get(kind, a, b, c, &v_),                                                    \
                  "fact %s(%" PRId64 ",%" PRId64 ",%" PRId64 ") absent", fl_fact_kind_str(kind),   \
                  (int64_t)(a), (int64_t)(b), (int64_t)(c));                                       \
        cr_assert_eq(v_, (int64_t)(want), "fact %s: %" PRId64 ", want %" PRId64,                   \
                     fl_fact_kind_str(kind), v_, (int64_t)(want));                                 \
    } while (0)
#define EXPECT_NO_FACT(kind, a, b, c)                                                              \
    cr_assert(!fact_get(kind, a, b, c, NULL),                                                      \
              "fact %s(%" PRId64 ",%" PRId64 ",%" PRId64 ") present", fl_fact_kind_str(kind),      \
              (int64_t)(a), (int64_t)(b), (int64_t)(c))

/* ---- fixture ---- */

static fl_topology_t *topo;
static fl_driver_t *eng[NPART], *aff[NPART];
static char errstr[512];
static size_t outputs_last; /* records the last event caused, edges and facts */
static uint64_t writes_last;

static void setup(void)
{
    char err[512] = "";

    topo = fl_test_driver_topology();
    cr_assert_eq(fl_topology_topic(topo, FL_TOPIC_ENGAGEMENT)->partitions, FACT_PARTS);
    for (int p = 0; p < NPART; p++) {
        eng[p] = fl_driver_new_opts(topo, &fl_engagement_processor, p, &opts, err, sizeof(err));
        cr_assert_not_null(eng[p], "driver: %s", err);
        aff[p] = fl_driver_new_opts(topo, &fl_affinity_processor, p, &opts, err, sizeof(err));
        cr_assert_not_null(aff[p], "driver: %s", err);
    }
    table = calloc(1, sizeof(*table));
    cr_assert_not_null(table);
}

static void teardown(void)
{
    for (int p = 0; p < NPART; p++) {
        fl_driver_free(eng[p]);
        fl_driver_free(aff[p]);
        eng[p] = aff[p] = NULL;
    }
    fl_topology_free(topo);
    topo = NULL;
    free(table);
    table = NULL;
}

TestSuite(engagement, .init = setup, .fini = teardown);

static uint64_t all_writes(void)
{
    uint64_t n = 0;
    for (int p = 0; p < NPART; p++)
        n += fl_store_writes(fl_driver_store(eng[p], FL_STORE_ENGAGEMENT)) +
             fl_store_writes(fl_driver_store(aff[p], FL_STORE_AFFINITY));
    return n;
}

static void apply_fact(const fl_driver_record_t *r)
{
    fl_fact_t f;
    char err[256];
    cr_assert_eq(fl_fact_decode(r->key, r->klen, r->value, r->vlen, &f, err, sizeof(err)), FL_OK,
                 "fact: %s", err);
    cr_assert_eq(r->partition, fl_partition_for_id(f.id[0], FACT_PARTS),
                 "%s fact of %" PRId64 " in partition %d", fl_fact_kind_str(f.kind), f.id[0],
                 r->partition);
    facts_set(table, r->key, r->klen, f.present, f.value);
}

/* Takes the outputs of d: facts into the table, edges on to affinity. */
static void drain(fl_driver_t *d)
{
    size_t n;
    const fl_driver_record_t *out = fl_driver_outputs(d, &n);
    outputs_last += n;
    for (size_t i = 0; i < n; i++) {
        const fl_driver_record_t *r = &out[i];
        if (!strcmp(r->topic, FL_TOPIC_ENGAGEMENT)) {
            apply_fact(r);
            continue;
        }
        cr_assert_str_eq(r->topic, FL_TOPIC_ENGAGE_EDGES);
        fl_driver_t *a = aff[r->partition];
        char err[512];
        fl_err_t e =
            fl_driver_pipe_raw(a, r->topic, r->key, r->klen, r->value, r->vlen, err, sizeof(err));
        cr_assert_eq(e, FL_OK, "affinity: %s (%s)", fl_err_str(e), err);
        size_t m;
        const fl_driver_record_t *fo = fl_driver_outputs(a, &m);
        outputs_last += m;
        for (size_t j = 0; j < m; j++) {
            cr_assert_str_eq(fo[j].topic, FL_TOPIC_ENGAGEMENT);
            apply_fact(&fo[j]);
        }
        fl_driver_clear_outputs(a);
    }
    fl_driver_clear_outputs(d);
}

static char event_id[] = "test-event";
static char text[] = "hello";
static int64_t clock_ms = 1000;

static fl_err_t pipe_ev(fl_event_t *ev, const char *topic, int64_t key)
{
    fl_driver_t *d = eng[fl_partition_for_id(key > 0 ? key : 1, NPART)];
    uint64_t w = all_writes();
    if (!ev->event_id)
        ev->event_id = event_id;
    if (!ev->occurred_at)
        ev->occurred_at = ++clock_ms;
    outputs_last = 0;
    errstr[0] = '\0';
    fl_err_t err = fl_driver_pipe_event(d, topic, ev, errstr, sizeof(errstr));
    drain(d);
    writes_last = all_writes() - w;
    return err;
}

static fl_err_t like_at(int64_t post, int64_t user, int64_t author, int64_t t)
{
    fl_event_t ev = {.type = FL_EV_LIKE_ADDED,
                     .occurred_at = t,
                     .post_id = post,
                     .user_id = user,
                     .author_id = author};
    return pipe_ev(&ev, FL_TOPIC_LIKES, post);
}

static fl_err_t like(int64_t post, int64_t user, int64_t author)
{
    return like_at(post, user, author, 0);
}

static fl_err_t unlike(int64_t post, int64_t user, int64_t author)
{
    fl_event_t ev = {
        .type = FL_EV_LIKE_REMOVED, .post_id = post, .user_id = user, .author_id = author};
    return pipe_ev(&ev, FL_TOPIC_LIKES, post);
}

static fl_err_t follow_ev(fl_event_type_t type, int64_t followee, int64_t follower)
{
    fl_event_t ev = {.type = type, .followee_id = followee, .follower_id = follower};
    return pipe_ev(&ev, FL_TOPIC_FOLLOWS, followee);
}

static fl_err_t follow(int64_t followee, int64_t follower)
{
    return follow_ev(FL_EV_FOLLOW_ADDED, followee, follower);
}

static fl_err_t unfollow(int64_t followee, int64_t follower)
{
    return follow_ev(FL_EV_FOLLOW_REMOVED, followee, follower);
}

static fl_err_t post_ev(fl_event_type_t type, int64_t author, int64_t post)
{
    fl_event_t ev = {.type = type, .author_id = author, .post_id = post, .text = text};
    ev.created_at = type == FL_EV_POST_CREATED ? clock_ms : 0;
    return pipe_ev(&ev, FL_TOPIC_POSTS, author);
}

static size_t dead_letters(void)
{
    size_t n = 0;
    for (int p = 0; p < NPART; p++)
        n += fl_driver_dead_letters(eng[p]) + fl_driver_dead_letters(aff[p]);
    return n;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        fl_err_t e_ = (call);                                                                      \
        cr_assert_eq(e_, FL_OK, "%s: %s (%s)", #call, fl_err_str(e_), errstr);                     \
    } while (0)

#define NOTHING(call)                                                                              \
    do {                                                                                           \
        OK(call);                                                                                  \
        cr_assert_eq(outputs_last, 0, "%s: %zu outputs", #call, outputs_last);                     \
        cr_assert_eq(writes_last, 0, "%s: %" PRIu64 " store writes", #call, writes_last);          \
    } while (0)

#define DEAD(call)                                                                                 \
    do {                                                                                           \
        size_t d_ = dead_letters();                                                                \
        cr_assert_eq((call), FL_ERR_INVALID, "%s: expected invalid", #call);                       \
        cr_assert_neq(errstr[0], '\0', "%s: no message", #call);                                   \
        cr_assert_eq(dead_letters(), d_ + 1, "%s: not dead-lettered", #call);                      \
        cr_assert_eq(outputs_last, 0, "%s: %zu outputs", #call, outputs_last);                     \
        cr_assert_eq(writes_last, 0, "%s: %" PRIu64 " store writes", #call, writes_last);          \
    } while (0)

/* ---- likes ---- */

Test(engagement, like_publishes_like_count_notification_and_affinity)
{
    OK(like_at(100, 7, 3, 5000));
    cr_assert_eq(outputs_last, 5, "like, count, notification, edge, affinity: %zu", outputs_last);
    EXPECT_FACT(FL_FACT_LIKE, 100, 7, 0, 5000);
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
    EXPECT_FACT(FL_FACT_NOTIFICATION, 3, 7, 100, 5000);
    EXPECT_FACT(FL_FACT_AFFINITY, 7, 3, 0, 1);
    OK(like_at(100, 8, 3, 5001));
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 2);
    OK(like_at(101, 7, 3, 5002));
    EXPECT_FACT(FL_FACT_AFFINITY, 7, 3, 0, 2);
    cr_assert_eq(table->n, 10);
}

Test(engagement, duplicate_like_changes_nothing)
{
    OK(like_at(100, 7, 3, 5000));
    NOTHING(like_at(100, 7, 3, 6000));
    EXPECT_FACT(FL_FACT_LIKE, 100, 7, 0, 5000);
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
}

Test(engagement, unlike_without_like_changes_nothing)
{
    NOTHING(unlike(100, 7, 3));
    OK(like(100, 8, 3));
    NOTHING(unlike(100, 7, 3));
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
}

Test(engagement, unlike_withdraws_everything_down_to_tombstones)
{
    OK(like(100, 7, 3));
    OK(like(100, 8, 3));
    OK(unlike(100, 7, 3));
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
    EXPECT_NO_FACT(FL_FACT_LIKE, 100, 7, 0);
    EXPECT_NO_FACT(FL_FACT_NOTIFICATION, 3, 7, 100);
    EXPECT_NO_FACT(FL_FACT_AFFINITY, 7, 3, 0);
    OK(unlike(100, 8, 3));
    cr_assert_eq(table->n, 0, "every fact withdrawn, %zu left", table->n);
    /* and the stores hold nothing either: counts at 0 are deleted */
    for (int p = 0; p < NPART; p++) {
        cr_assert_eq(fl_driver_flush(eng[p], errstr, sizeof(errstr)), FL_OK, "%s", errstr);
        cr_assert_eq(fl_driver_flush(aff[p], errstr, sizeof(errstr)), FL_OK, "%s", errstr);
        fl_store_iter_t *it;
        cr_assert_eq(
            fl_store_iter_new(fl_driver_store(eng[p], FL_STORE_ENGAGEMENT), "\x40", 1, &it), FL_OK);
        fl_store_iter_seek_first(it);
        cr_assert(!fl_store_iter_valid(it), "a like is left in partition %d", p);
        fl_store_iter_free(it);
        cr_assert_eq(fl_store_iter_new(fl_driver_store(aff[p], FL_STORE_AFFINITY), "\x50", 1, &it),
                     FL_OK);
        fl_store_iter_seek_first(it);
        cr_assert(!fl_store_iter_valid(it), "a count is left in partition %d", p);
        fl_store_iter_free(it);
    }
}

Test(engagement, tombstones_are_null_values)
{
    OK(like(100, 7, 3));
    fl_driver_t *d = eng[fl_partition_for_id(100, NPART)];
    fl_event_t ev = {.type = FL_EV_LIKE_REMOVED,
                     .event_id = event_id,
                     .occurred_at = ++clock_ms,
                     .post_id = 100,
                     .user_id = 7,
                     .author_id = 3};
    OK(fl_driver_pipe_event(d, FL_TOPIC_LIKES, &ev, errstr, sizeof(errstr)));
    size_t n, facts = 0;
    const fl_driver_record_t *out = fl_driver_outputs(d, &n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(out[i].topic, FL_TOPIC_ENGAGEMENT)) {
            cr_assert_null(out[i].value, "fact %zu is not a tombstone", i);
            facts++;
        }
    cr_assert_eq(facts, 3, "like, count and notification tombstones: %zu", facts);
    drain(d);
}

Test(engagement, relike_after_unlike_notifies_again_with_the_new_time)
{
    OK(like_at(100, 7, 3, 5000));
    OK(unlike(100, 7, 3));
    EXPECT_NO_FACT(FL_FACT_NOTIFICATION, 3, 7, 100);
    OK(like_at(100, 7, 3, 9000));
    EXPECT_FACT(FL_FACT_NOTIFICATION, 3, 7, 100, 9000);
    EXPECT_FACT(FL_FACT_LIKE, 100, 7, 0, 9000);
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
    EXPECT_FACT(FL_FACT_AFFINITY, 7, 3, 0, 1);
}

Test(engagement, self_like_counts_without_notification)
{
    OK(like_at(100, 3, 3, 5000));
    EXPECT_FACT(FL_FACT_LIKE, 100, 3, 0, 5000);
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
    EXPECT_NO_FACT(FL_FACT_NOTIFICATION, 3, 3, 100);
    EXPECT_FACT(FL_FACT_AFFINITY, 3, 3, 0, 1);
    OK(unlike(100, 3, 3));
    cr_assert_eq(table->n, 0);
}

Test(engagement, unlike_uses_the_stored_author)
{
    OK(like(100, 7, 3));
    OK(unlike(100, 7, 99)); /* names another author: the stored one wins */
    EXPECT_NO_FACT(FL_FACT_NOTIFICATION, 3, 7, 100);
    EXPECT_NO_FACT(FL_FACT_AFFINITY, 7, 3, 0);
    cr_assert_eq(table->n, 0);
}

Test(engagement, like_naming_another_author_than_the_posts_likes_is_invalid)
{
    OK(like(100, 7, 3));
    DEAD(like(100, 8, 4));
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
}

/* ---- follows ---- */

Test(engagement, follow_and_unfollow)
{
    OK(follow(3, 7));
    EXPECT_FACT(FL_FACT_FOLLOW, 3, 7, 0, clock_ms);
    EXPECT_FACT(FL_FACT_FOLLOWERS, 3, 0, 0, 1);
    EXPECT_FACT(FL_FACT_NOTIFICATION, 3, 7, 0, clock_ms);
    EXPECT_FACT(FL_FACT_FOLLOWING, 7, 0, 0, 1);
    int64_t at = clock_ms;
    NOTHING(follow(3, 7));
    EXPECT_FACT(FL_FACT_FOLLOW, 3, 7, 0, at);
    OK(follow(4, 7));
    EXPECT_FACT(FL_FACT_FOLLOWING, 7, 0, 0, 2);
    OK(follow(3, 8));
    EXPECT_FACT(FL_FACT_FOLLOWERS, 3, 0, 0, 2);
    OK(unfollow(3, 7));
    EXPECT_NO_FACT(FL_FACT_FOLLOW, 3, 7, 0);
    EXPECT_NO_FACT(FL_FACT_NOTIFICATION, 3, 7, 0);
    EXPECT_FACT(FL_FACT_FOLLOWERS, 3, 0, 0, 1);
    EXPECT_FACT(FL_FACT_FOLLOWING, 7, 0, 0, 1);
    NOTHING(unfollow(3, 7));
    OK(unfollow(4, 7));
    OK(unfollow(3, 8));
    cr_assert_eq(table->n, 0, "%zu facts left", table->n);
}

Test(engagement, self_follow_is_invalid_and_counts_nowhere)
{
    DEAD(follow(3, 3));
    DEAD(unfollow(3, 3));
    cr_assert_eq(table->n, 0);
}

/* ---- posts ---- */

Test(engagement, posts_count_live_posts)
{
    OK(post_ev(FL_EV_POST_CREATED, 3, 100));
    EXPECT_FACT(FL_FACT_POSTS, 3, 0, 0, 1);
    NOTHING(post_ev(FL_EV_POST_CREATED, 3, 100));
    OK(post_ev(FL_EV_POST_CREATED, 3, 101));
    EXPECT_FACT(FL_FACT_POSTS, 3, 0, 0, 2);
    OK(post_ev(FL_EV_POST_DELETED, 3, 100));
    EXPECT_FACT(FL_FACT_POSTS, 3, 0, 0, 1);
    NOTHING(post_ev(FL_EV_POST_DELETED, 3, 100));
    NOTHING(post_ev(FL_EV_POST_CREATED, 3, 100)); /* deleted ids stay deleted */
    OK(post_ev(FL_EV_POST_DELETED, 3, 101));
    EXPECT_NO_FACT(FL_FACT_POSTS, 3, 0, 0);
}

Test(engagement, delete_before_create_is_remembered)
{
    OK(post_ev(FL_EV_POST_DELETED, 3, 100));
    cr_assert_eq(outputs_last, 0);
    NOTHING(post_ev(FL_EV_POST_CREATED, 3, 100));
    EXPECT_NO_FACT(FL_FACT_POSTS, 3, 0, 0);
}

Test(engagement, post_ids_of_another_author_are_invalid)
{
    /* Two authors of one partition, so that one task sees both. */
    int64_t a = 3, b = a + 1;
    while (fl_partition_for_id(b, NPART) != fl_partition_for_id(a, NPART))
        b++;
    OK(post_ev(FL_EV_POST_CREATED, a, 100));
    DEAD(post_ev(FL_EV_POST_CREATED, b, 100));
    DEAD(post_ev(FL_EV_POST_DELETED, b, 100));
    EXPECT_FACT(FL_FACT_POSTS, a, 0, 0, 1);
    EXPECT_NO_FACT(FL_FACT_POSTS, b, 0, 0);
}

/* ---- invalid records ---- */

Test(engagement, invalid_records_are_dead_lettered_and_change_nothing)
{
    OK(like(100, 7, 3));
    DEAD(like(100, 0, 3));
    DEAD(like(100, 7, -3));
    DEAD(like(-100, 7, 3));
    DEAD(follow(3, 0));
    DEAD(post_ev(FL_EV_POST_CREATED, 3, 0));
    /* in another task's partition */
    fl_event_t ev = {.type = FL_EV_LIKE_ADDED,
                     .event_id = event_id,
                     .occurred_at = 1,
                     .post_id = 100,
                     .user_id = 8,
                     .author_id = 3};
    fl_driver_t *wrong = eng[(fl_partition_for_id(100, NPART) + 1) % NPART];
    size_t d = dead_letters();
    cr_assert_eq(fl_driver_pipe_event(wrong, FL_TOPIC_LIKES, &ev, errstr, sizeof(errstr)),
                 FL_ERR_INVALID);
    cr_assert_eq(dead_letters(), d + 1);
    /* an event of another topic */
    cr_assert_eq(fl_driver_pipe_event(eng[fl_partition_for_id(100, NPART)], FL_TOPIC_POSTS, &ev,
                                      errstr, sizeof(errstr)),
                 FL_ERR_INVALID);
    /* an empty event id */
    ev.event_id = (char *)"";
    cr_assert_eq(fl_driver_pipe_event(eng[fl_partition_for_id(100, NPART)], FL_TOPIC_LIKES, &ev,
                                      errstr, sizeof(errstr)),
                 FL_ERR_INVALID);
    cr_assert_eq(dead_letters(), d + 3);
    size_t n;
    for (int p = 0; p < NPART; p++) {
        fl_driver_outputs(eng[p], &n);
        cr_assert_eq(n, 0);
    }
    EXPECT_FACT(FL_FACT_POST_LIKES, 100, 0, 0, 1);
    cr_assert_eq(table->n, 4);
}

/* ---- the codec ---- */

static void round_trip(fl_fact_t f)
{
    uint8_t key[FL_FACT_KEY_MAX], val[FL_FACT_VALUE_LEN];
    fl_fact_t g;
    size_t klen = fl_fact_key_encode(&f, key);
    size_t vlen = f.present ? fl_fact_value_encode(&f, val) : 0;
    cr_assert_eq(
        fl_fact_decode(key, klen, f.present ? val : NULL, vlen, &g, errstr, sizeof(errstr)), FL_OK,
        "%s", errstr);
    cr_assert_eq(g.kind, f.kind);
    cr_assert_eq(g.present, f.present);
    cr_assert_eq(g.value, f.present ? f.value : 0);
    for (int i = 0; i < fl_fact_id_count(f.kind); i++)
        cr_assert_eq(g.id[i], f.id[i], "%s id %d", fl_fact_kind_str(f.kind), i);
    if (f.kind == FL_FACT_NOTIFICATION)
        cr_assert_eq(g.nkind, f.nkind);
}

Test(engagement, fact_codec_round_trips_every_kind)
{
    for (int k = FL_FACT_POST_LIKES; k <= FL_FACT_FOLLOW; k++) {
        fl_fact_t f = mkfact((fl_fact_kind_t)k, INT64_MAX, 1, k == FL_FACT_NOTIFICATION ? 5 : 0);
        f.value = INT64_MIN;
        round_trip(f);
        f.present = false;
        f.value = 0;
        round_trip(f);
    }
    fl_fact_t n = mkfact(FL_FACT_NOTIFICATION, 9, 8, 0); /* a follow notification */
    n.value = 1767225620000;
    round_trip(n);
    uint8_t key[FL_FACT_KEY_MAX];
    cr_assert_eq(fl_fact_key_encode(&n, key), FL_FACT_KEY_MAX);
    cr_assert_eq(key[9], FL_NOTIF_FOLLOW, "nkind sits between recipient and actor");
}

Test(engagement, fact_keys_sort_by_id)
{
    uint8_t a[FL_FACT_KEY_MAX], b[FL_FACT_KEY_MAX];
    fl_fact_t x = mkfact(FL_FACT_LIKE, -5, 1, 0), y = mkfact(FL_FACT_LIKE, 3, 1, 0);
    size_t n = fl_fact_key_encode(&x, a);
    fl_fact_key_encode(&y, b);
    cr_assert_lt(memcmp(a, b, n), 0);
}

#define REJECT(k, kl, v, vl)                                                                       \
    do {                                                                                           \
        fl_fact_t f_;                                                                              \
        errstr[0] = '\0';                                                                          \
        cr_assert_eq(fl_fact_decode(k, kl, v, vl, &f_, errstr, sizeof(errstr)), FL_ERR_INVALID,    \
                     "accepted %s", #k);                                                           \
        cr_assert_neq(errstr[0], '\0');                                                            \
    } while (0)

Test(engagement, fact_decoder_rejects_malformed_bytes)
{
    fl_fact_t f = mkfact(FL_FACT_NOTIFICATION, 3, 7, 100);
    f.value = 5;
    uint8_t key[FL_FACT_KEY_MAX + 1], val[FL_FACT_VALUE_LEN + 1];
    size_t klen = fl_fact_key_encode(&f, key), vlen = fl_fact_value_encode(&f, val);

    REJECT(key, (size_t)0, val, vlen);
    REJECT(NULL, (size_t)0, NULL, (size_t)0);
    REJECT(key, klen - 1, val, vlen);
    REJECT(key, klen + 1, val, vlen);
    REJECT(key, klen, val, vlen - 1);
    REJECT(key, klen, val, vlen + 1);
    val[0] = 'X';
    REJECT(key, klen, val, vlen);
    val[0] = 'E';
    val[1] = 2;
    REJECT(key, klen, val, vlen);
    val[1] = 1;
    key[9] = 3; /* unknown notification kind */
    REJECT(key, klen, val, vlen);
    key[9] = FL_NOTIF_FOLLOW; /* a follow notification naming a post */
    REJECT(key, klen, val, vlen);
    key[9] = FL_NOTIF_LIKE;
    key[0] = 0;
    REJECT(key, klen, NULL, (size_t)0);
    key[0] = 9;
    REJECT(key, klen, NULL, (size_t)0);
    key[0] = FL_FACT_NOTIFICATION;
    cr_assert_eq(fl_fact_decode(key, klen, val, vlen, &f, errstr, sizeof(errstr)), FL_OK, "%s",
                 errstr);
}

Test(engagement, edge_codec_round_trips_and_rejects_malformed_bytes)
{
    fl_edge_t e = {FL_EDGE_LIKE, true, 7, 3, 100, 5000}, g;
    uint8_t v[FL_EDGE_LEN + 1];
    cr_assert_eq(fl_edge_encode(&e, v), FL_EDGE_LEN);
    cr_assert_eq(fl_edge_decode(v, FL_EDGE_LEN, &g, errstr, sizeof(errstr)), FL_OK, "%s", errstr);
    cr_assert(g.kind == e.kind && g.added && g.a == 7 && g.b == 3 && g.post == 100 && g.at == 5000);
    fl_edge_t fo = {FL_EDGE_FOLLOW, false, 7, 3, 0, 0};
    fl_edge_encode(&fo, v);
    cr_assert_eq(fl_edge_decode(v, FL_EDGE_LEN, &g, errstr, sizeof(errstr)), FL_OK, "%s", errstr);
    cr_assert(g.kind == FL_EDGE_FOLLOW && !g.added && g.post == 0);

    struct {
        size_t at;
        uint8_t byte;
    } bad[] = {{0, 'E'}, {1, 2}, {2, 0}, {2, 3}, {3, 2}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fl_edge_encode(&e, v);
        v[bad[i].at] = bad[i].byte;
        cr_assert_eq(fl_edge_decode(v, FL_EDGE_LEN, &g, errstr, sizeof(errstr)), FL_ERR_INVALID,
                     "byte %zu = %u accepted", bad[i].at, bad[i].byte);
    }
    fl_edge_encode(&e, v);
    cr_assert_eq(fl_edge_decode(v, FL_EDGE_LEN - 1, &g, errstr, sizeof(errstr)), FL_ERR_INVALID);
    cr_assert_eq(fl_edge_decode(v, FL_EDGE_LEN + 1, &g, errstr, sizeof(errstr)), FL_ERR_INVALID);
    cr_assert_eq(fl_edge_decode(NULL, 0, &g, errstr, sizeof(errstr)), FL_ERR_INVALID);
    fl_edge_t bad_ids[] = {{FL_EDGE_LIKE, true, 0, 3, 100, 1},
                           {FL_EDGE_LIKE, true, 7, -3, 100, 1},
                           {FL_EDGE_LIKE, true, 7, 3, 0, 1},
                           {FL_EDGE_FOLLOW, true, 7, 3, 100, 1},
                           {FL_EDGE_LIKE, true, 7, 3, 100, -1}};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        fl_edge_encode(&bad_ids[i], v);
        cr_assert_eq(fl_edge_decode(v, FL_EDGE_LEN, &g, errstr, sizeof(errstr)), FL_ERR_INVALID,
                     "edge %zu accepted", i);
    }
}

/* ---- model test ---- */

#define M_USERS 12
#define M_POSTS 16

/* The reference: plain arrays, the rules of fl_engagement.h spelled out. */
typedef struct model {
    int64_t liked[M_POSTS + 1][M_USERS + 1];   /* created_at, 0: not liked */
    int64_t follows[M_USERS + 1][M_USERS + 1]; /* [followee][follower] created_at */
    int post_state[M_POSTS + 1];               /* 0 unknown, 1 live, 2 deleted */
} model_t;

static int64_t author_of(int64_t post)
{
    return 1 + post % M_USERS;
}

static void model_facts(const model_t *m, facts_t *want)
{
    uint8_t key[FL_FACT_KEY_MAX];
#define PUT(f, v)                                                                                  \
    do {                                                                                           \
        fl_fact_t f_ = (f);                                                                        \
        facts_set(want, key, fl_fact_key_encode(&f_, key), true, (v));                             \
    } while (0)
    int64_t affinity[M_USERS + 1][M_USERS + 1] = {{0}}, posts[M_USERS + 1] = {0};
    for (int p = 1; p <= M_POSTS; p++) {
        int64_t n = 0, a = author_of(p);
        for (int u = 1; u <= M_USERS; u++) {
            if (!m->liked[p][u])
                continue;
            n++;
            affinity[u][a]++;
            PUT(mkfact(FL_FACT_LIKE, p, u, 0), m->liked[p][u]);
            if (u != a)
                PUT(mkfact(FL_FACT_NOTIFICATION, a, u, p), m->liked[p][u]);
        }
        if (n)
            PUT(mkfact(FL_FACT_POST_LIKES, p, 0, 0), n);
        posts[a] += m->post_state[p] == 1;
    }
    for (int a = 1; a <= M_USERS; a++) {
        int64_t followers = 0, following = 0;
        for (int u = 1; u <= M_USERS; u++) {
            if (m->follows[a][u]) {
                followers++;
                PUT(mkfact(FL_FACT_FOLLOW, a, u, 0), m->follows[a][u]);
                PUT(mkfact(FL_FACT_NOTIFICATION, a, u, 0), m->follows[a][u]);
            }
            following += m->follows[u][a] != 0;
            if (affinity[a][u])
                PUT(mkfact(FL_FACT_AFFINITY, a, u, 0), affinity[a][u]);
        }
        if (followers)
            PUT(mkfact(FL_FACT_FOLLOWERS, a, 0, 0), followers);
        if (following)
            PUT(mkfact(FL_FACT_FOLLOWING, a, 0, 0), following);
        if (posts[a])
            PUT(mkfact(FL_FACT_POSTS, a, 0, 0), posts[a]);
    }
#undef PUT
}

Test(engagement, random_operations_match_a_model)
{
    model_t *m = calloc(1, sizeof(*m));
    facts_t *want = calloc(1, sizeof(*want));
    unsigned seed = 20260101;
    size_t expect_dead = 0;

    cr_assert(m && want);
    srand(seed);
    for (int i = 0; i < 3000; i++) {
        int op = rand() % 6;
        int64_t p = 1 + rand() % M_POSTS, u = 1 + rand() % M_USERS, v = 1 + rand() % M_USERS;
        int64_t t = ++clock_ms;
        switch (op) {
        case 0:
        case 1: /* likes dominate, as in real traffic */
            OK(like_at(p, u, author_of(p), t));
            if (!m->liked[p][u])
                m->liked[p][u] = t;
            break;
        case 2:
            OK(unlike(p, u, author_of(p)));
            m->liked[p][u] = 0;
            break;
        case 3:
        case 4:
            if (u == v) {
                expect_dead++;
                cr_assert_eq(op == 3 ? follow(u, v) : unfollow(u, v), FL_ERR_INVALID);
                break;
            }
            OK(op == 3 ? follow(u, v) : unfollow(u, v));
            if (op == 3 && !m->follows[u][v])
                m->follows[u][v] = clock_ms;
            else if (op == 4)
                m->follows[u][v] = 0;
            break;
        default:
            if (rand() % 3) {
                OK(post_ev(FL_EV_POST_CREATED, author_of(p), p));
                if (!m->post_state[p])
                    m->post_state[p] = 1;
            } else {
                OK(post_ev(FL_EV_POST_DELETED, author_of(p), p));
                m->post_state[p] = 2;
            }
        }
    }
    for (int d = 0; d < NPART; d++) {
        OK(fl_driver_flush(eng[d], errstr, sizeof(errstr)));
        OK(fl_driver_flush(aff[d], errstr, sizeof(errstr)));
    }
    cr_assert_eq(dead_letters(), expect_dead);
    model_facts(m, want);
    for (size_t i = 0; i < want->n; i++) {
        fact_row_t *r = facts_find(table, want->row[i].key, want->row[i].klen);
        fl_fact_t f;
        fl_fact_decode(want->row[i].key, want->row[i].klen, NULL, 0, &f, errstr, sizeof(errstr));
        cr_assert_not_null(r, "missing %s(%" PRId64 ",%" PRId64 ",%" PRId64 ")",
                           fl_fact_kind_str(f.kind), f.id[0], f.id[1], f.id[2]);
        cr_assert_eq(r->value, want->row[i].value,
                     "%s(%" PRId64 ",%" PRId64 ",%" PRId64 ") = %" PRId64 ", model %" PRId64,
                     fl_fact_kind_str(f.kind), f.id[0], f.id[1], f.id[2], r->value,
                     want->row[i].value);
    }
    cr_assert_eq(table->n, want->n, "%zu facts, the model has %zu", table->n, want->n);
    free(m);
    free(want);
}
