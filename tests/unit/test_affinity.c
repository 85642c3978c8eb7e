/*
 * test_affinity.c - the affinity processor's rules (fl_affinity.h), fed
 * with hand-made edges (fl_engage.h) through the topology test driver and
 * tests/data/topology/driver.yaml (4 partitions of the edges topic, 3 of
 * feedline.engagement). The edges feedline-engagement really publishes
 * reach it in test_engagement.c, which runs both processors together.
 */
#include <criterion/criterion.h>

#include "fl_affinity.h"
#include "fl_driver.h"
#include "fl_engage.h"
#include "fl_partition.h"
#include "fl_test_topology.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPART      4
#define FACT_PARTS 3

static fl_topology_t *topo;
static fl_driver_t *drv[NPART];
static char errstr[512];

static void setup(void)
{
    char err[512] = "";

    topo = fl_test_driver_topology();
    for (int p = 0; p < NPART; p++) {
        drv[p] = fl_driver_new(topo, &fl_affinity_processor, p, err, sizeof(err));
        cr_assert_not_null(drv[p], "driver: %s", err);
    }
}

static void teardown(void)
{
    for (int p = 0; p < NPART; p++)
        fl_driver_free(drv[p]);
    fl_topology_free(topo);
}

TestSuite(affinity, .init = setup, .fini = teardown);

/* The one fact the last edge produced, decoded; n is the outputs' count. */
typedef struct result {
    fl_err_t err;
    size_t n;
    fl_fact_t fact;
} result_t;

static result_t pipe_to(int32_t p, const char *key, const void *val, size_t vlen)
{
    result_t r = {0};
    size_t n;

    fl_driver_clear_outputs(drv[p]);
    r.err = fl_driver_pipe_raw(drv[p], FL_TOPIC_ENGAGE_EDGES, key, strlen(key), val, vlen, errstr,
                               sizeof(errstr));
    const fl_driver_record_t *out = fl_driver_outputs(drv[p], &n);
    r.n = n;
    if (n == 1) {
        char err[256];
        cr_assert_str_eq(out[0].topic, FL_TOPIC_ENGAGEMENT);
        cr_assert_eq(fl_fact_decode(out[0].key, out[0].klen, out[0].value, out[0].vlen, &r.fact,
                                    err, sizeof(err)),
                     FL_OK, "%s", err);
        cr_assert_eq(out[0].partition, fl_partition_for_id(r.fact.id[0], FACT_PARTS));
    }
    return r;
}

static result_t edge(fl_edge_kind_t kind, bool added, int64_t a, int64_t b, int64_t post)
{
    fl_edge_t e = {kind, added, a, b, post, 1000};
    uint8_t v[FL_EDGE_LEN];
    char key[24];
    snprintf(key, sizeof(key), "%" PRId64, a);
    fl_edge_encode(&e, v);
    return pipe_to(fl_partition_for_id(a, NPART), key, v, sizeof(v));
}

static void expect(result_t r, fl_fact_kind_t kind, int64_t a, int64_t b, int64_t count)
{
    cr_assert_eq(r.err, FL_OK, "%s", errstr);
    cr_assert_eq(r.n, 1, "%zu outputs", r.n);
    cr_assert_eq(r.fact.kind, kind);
    cr_assert_eq(r.fact.id[0], a);
    if (kind == FL_FACT_AFFINITY)
        cr_assert_eq(r.fact.id[1], b);
    cr_assert_eq(r.fact.present, count > 0);
    cr_assert_eq(r.fact.value, count);
}

static void expect_nothing(result_t r)
{
    cr_assert_eq(r.err, FL_OK, "%s", errstr);
    cr_assert_eq(r.n, 0, "%zu outputs", r.n);
}

Test(affinity, likes_of_an_authors_posts_count_once_each)
{
    expect(edge(FL_EDGE_LIKE, true, 7, 3, 100), FL_FACT_AFFINITY, 7, 3, 1);
    expect(edge(FL_EDGE_LIKE, true, 7, 3, 101), FL_FACT_AFFINITY, 7, 3, 2);
    expect_nothing(edge(FL_EDGE_LIKE, true, 7, 3, 101));
    expect(edge(FL_EDGE_LIKE, true, 7, 4, 102), FL_FACT_AFFINITY, 7, 4, 1);
    expect(edge(FL_EDGE_LIKE, false, 7, 3, 100), FL_FACT_AFFINITY, 7, 3, 1);
    expect_nothing(edge(FL_EDGE_LIKE, false, 7, 3, 100));
    expect(edge(FL_EDGE_LIKE, false, 7, 3, 101), FL_FACT_AFFINITY, 7, 3, 0); /* a tombstone */
}

Test(affinity, follows_count_followees)
{
    expect(edge(FL_EDGE_FOLLOW, true, 7, 3, 0), FL_FACT_FOLLOWING, 7, 0, 1);
    expect_nothing(edge(FL_EDGE_FOLLOW, true, 7, 3, 0));
    expect(edge(FL_EDGE_FOLLOW, true, 7, 4, 0), FL_FACT_FOLLOWING, 7, 0, 2);
    expect_nothing(edge(FL_EDGE_FOLLOW, false, 7, 5, 0));
    expect(edge(FL_EDGE_FOLLOW, false, 7, 3, 0), FL_FACT_FOLLOWING, 7, 0, 1);
    expect(edge(FL_EDGE_FOLLOW, false, 7, 4, 0), FL_FACT_FOLLOWING, 7, 0, 0);
    expect_nothing(edge(FL_EDGE_FOLLOW, false, 7, 4, 0));
}

Test(affinity, a_like_and_a_follow_of_one_pair_are_apart)
{
    expect(edge(FL_EDGE_FOLLOW, true, 7, 3, 0), FL_FACT_FOLLOWING, 7, 0, 1);
    expect(edge(FL_EDGE_LIKE, true, 7, 3, 100), FL_FACT_AFFINITY, 7, 3, 1);
    expect(edge(FL_EDGE_FOLLOW, false, 7, 3, 0), FL_FACT_FOLLOWING, 7, 0, 0);
    expect_nothing(edge(FL_EDGE_LIKE, true, 7, 3, 100));
}

static void expect_dead(result_t r, fl_driver_t *d, size_t before)
{
    cr_assert_eq(r.err, FL_ERR_INVALID, "accepted: %s", fl_err_str(r.err));
    cr_assert_neq(errstr[0], '\0');
    cr_assert_eq(r.n, 0);
    cr_assert_eq(fl_driver_dead_letters(d), before + 1);
}

Test(affinity, invalid_edges_are_dead_lettered)
{
    int32_t p = fl_partition_for_id(7, NPART);
    fl_driver_t *d = drv[p];
    fl_store_t *s = fl_driver_store(d, FL_STORE_AFFINITY);
    fl_edge_t e = {FL_EDGE_LIKE, true, 7, 3, 100, 1000};
    uint8_t v[FL_EDGE_LEN];
    fl_edge_encode(&e, v);
    uint64_t writes = fl_store_writes(s);

    expect_dead(pipe_to(p, "7", v, sizeof(v) - 1), d, 0);
    expect_dead(pipe_to(p, "7", NULL, 0), d, 1);
    expect_dead(pipe_to(p, "8", v, sizeof(v)), d, 2); /* not keyed by its viewer */
    v[0] = 'T';
    expect_dead(pipe_to(p, "7", v, sizeof(v)), d, 3);
    /* in another task's partition */
    int64_t other = 8;
    while (fl_partition_for_id(other, NPART) == p)
        other++;
    char key[24];
    snprintf(key, sizeof(key), "%" PRId64, other);
    e.a = other;
    fl_edge_encode(&e, v);
    expect_dead(pipe_to(p, key, v, sizeof(v)), d, 4);
    cr_assert_eq(fl_store_writes(s), writes, "an invalid edge wrote to the store");
}
