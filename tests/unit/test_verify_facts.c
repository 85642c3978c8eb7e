/*
 * test_verify_facts.c - the rows of `feedline verify`'s other relations:
 * a fourth column in digests and differences, the description of a row,
 * and notifications compared at Redis's cap.
 */
#include "fl_verify_facts.h"

#include <criterion/criterion.h>
#include <string.h>

Test(verify_facts, aux_column_counts_in_digest_and_difference)
{
    fl_feed_set_t a = {0}, b = {0};
    cr_assert(fl_feed_set_add_row(&a, 1, 0, 100, 7)); /* follow by 7 */
    cr_assert(fl_feed_set_add_row(&b, 1, 0, 100, 8)); /* follow by 8 */
    fl_feed_set_sort(&a);
    fl_feed_set_sort(&b);
    cr_assert_neq(fl_feed_user_digest(a.v, a.len), fl_feed_user_digest(b.v, b.len));
    cr_assert_eq(fl_feed_diff(&a, &b, NULL, NULL), 1);
    /* two rows that differ only in aux are two rows */
    cr_assert(fl_feed_set_add_row(&a, 1, 0, 100, 8));
    fl_feed_set_sort(&a);
    cr_assert_eq(a.len, 2);
    /* a feed entry's digest does not depend on the new column */
    fl_feed_set_t f = {0};
    cr_assert(fl_feed_set_add(&f, 5, 50, 500));
    fl_feed_entry_t e = {5, 50, 500, 0};
    cr_assert_eq(fl_feed_user_digest(f.v, 1), fl_feed_user_digest(&e, 1));
    fl_feed_set_free(&a);
    fl_feed_set_free(&b);
    fl_feed_set_free(&f);
}

Test(verify_facts, rows_are_described_by_their_relation)
{
    char buf[160];
    fl_fact_describe(FL_VREL_NOTIFICATIONS, &(fl_feed_entry_t){1, 9, 1000, 7}, buf, sizeof(buf));
    cr_assert_str_eq(buf, "like by 7 of post 9 at 1000");
    fl_fact_describe(FL_VREL_NOTIFICATIONS, &(fl_feed_entry_t){1, 0, 1000, 7}, buf, sizeof(buf));
    cr_assert_str_eq(buf, "follow by 7 at 1000");
    fl_fact_describe(FL_VREL_POSTS, &(fl_feed_entry_t){3, 6, 12, 0}, buf, sizeof(buf));
    cr_assert_str_eq(buf, "like_count=12");
    fl_fact_describe(FL_VREL_USERS, &(fl_feed_entry_t){3, 1, 0x10, 0}, buf, sizeof(buf));
    cr_assert_str_eq(buf, "handle=#0000000000000010");
    fl_fact_describe(FL_VREL_FOLLOWS, &(fl_feed_entry_t){3, 42, 0, 0}, buf, sizeof(buf));
    cr_assert_str_eq(buf, "followee 42");
    cr_assert_str_eq(fl_fact_name(FL_VREL_AFFINITY), "affinity");
}

/* user 1: PostgreSQL holds 5 notifications, Redis (cap 3) the newest 3 and
 * the mark of the 2 it trimmed (post 102); user 2: the same 2 in both, never
 * trimmed; user 3: only in PostgreSQL. */
static void fill(fl_feed_set_t *pg, fl_feed_set_t *redis, fl_feed_set_t *marks)
{
    for (int k = 1; k <= 5; k++) {
        cr_assert(fl_feed_set_add_row(pg, 1, 100 + k, 1000 + k, 10 + k));
        if (k >= 3)
            cr_assert(fl_feed_set_add_row(redis, 1, 100 + k, 1000 + k, 10 + k));
    }
    cr_assert(fl_feed_set_add_row(marks, 1, 102, 1002, 12));
    for (int k = 1; k <= 2; k++) {
        cr_assert(fl_feed_set_add_row(pg, 2, 0, 2000, 20 + k));
        cr_assert(fl_feed_set_add_row(redis, 2, 0, 2000, 20 + k));
    }
    cr_assert(fl_feed_set_add_row(pg, 3, 300, 3000, 30));
    fl_feed_set_sort(pg);
    fl_feed_set_sort(redis);
    fl_feed_set_sort(marks);
}

static size_t diff_above(const fl_feed_set_t *pg, const fl_feed_set_t *redis,
                         const fl_feed_set_t *m, size_t *below_pg, size_t *below_redis)
{
    fl_feed_set_t marks = {0}, a = {0}, b = {0};
    cr_assert(fl_feed_marks_merge(m, &marks, fl_facts_notif_cmp));
    cr_assert(fl_feed_set_cut(pg, &marks, fl_facts_notif_cmp, &a, below_pg));
    cr_assert(fl_feed_set_cut(redis, &marks, fl_facts_notif_cmp, &b, below_redis));
    size_t n = fl_feed_diff(&a, &b, NULL, NULL);
    fl_feed_set_free(&a);
    fl_feed_set_free(&b);
    fl_feed_set_free(&marks);
    return n;
}

Test(verify_facts, notifications_are_compared_above_the_trim_marks)
{
    fl_feed_set_t pg = {0}, redis = {0}, m = {0};
    size_t below_pg, below_redis;
    fill(&pg, &redis, &m);
    /* user 3 has no mark: their notification is compared, and missing */
    cr_assert_eq(diff_above(&pg, &redis, &m, &below_pg, &below_redis), 1);
    cr_assert_eq(below_pg, 2);
    cr_assert_eq(below_redis, 0);
    cr_assert(fl_feed_set_add_row(&redis, 3, 300, 3000, 30));
    fl_feed_set_sort(&redis);
    cr_assert_eq(diff_above(&pg, &redis, &m, &below_pg, &below_redis), 0);

    /* an old notification kept below the mark (it came after the trim) is
     * not compared; one lost above the mark is found */
    cr_assert(fl_feed_set_add_row(&redis, 1, 100, 900, 1));
    fl_feed_set_t r2 = {0};
    for (size_t i = 0; i < redis.len; i++)
        if (redis.v[i].post_id != 104)
            cr_assert(fl_feed_set_add_row(&r2, redis.v[i].user_id, redis.v[i].post_id,
                                          redis.v[i].created_at, redis.v[i].aux));
    fl_feed_set_sort(&redis);
    fl_feed_set_sort(&r2);
    cr_assert_eq(diff_above(&pg, &redis, &m, &below_pg, &below_redis), 0);
    cr_assert_eq(below_redis, 1);
    cr_assert_eq(diff_above(&pg, &r2, &m, &below_pg, &below_redis), 1); /* user 1 lacks 104 */
    fl_feed_set_free(&r2);
    fl_feed_set_free(&m);
    fl_feed_set_free(&pg);
    fl_feed_set_free(&redis);
}

Test(verify_facts, two_capped_places_are_cut_at_the_higher_mark)
{
    fl_feed_set_t m = {0}, merged = {0};
    cr_assert(fl_feed_set_add_row(&m, 1, 101, 1001, 1));
    cr_assert(fl_feed_set_add_row(&m, 2, 201, 2001, 1));
    fl_feed_set_sort(&m);
    cr_assert(fl_feed_marks_merge(&m, &merged, fl_facts_notif_cmp));
    fl_feed_set_t m2 = {0};
    cr_assert(fl_feed_set_add_row(&m2, 1, 103, 1003, 1)); /* higher for user 1 */
    cr_assert(fl_feed_set_add_row(&m2, 2, 200, 2000, 1)); /* lower for user 2 */
    cr_assert(fl_feed_set_add_row(&m2, 3, 300, 3000, 1)); /* user 3's only */
    fl_feed_set_sort(&m2);
    cr_assert(fl_feed_marks_merge(&m2, &merged, fl_facts_notif_cmp));
    cr_assert_eq(merged.len, 3);
    cr_assert_eq(merged.v[0].post_id, 103);
    cr_assert_eq(merged.v[1].post_id, 201);
    cr_assert_eq(merged.v[2].post_id, 300);
    fl_feed_set_free(&m);
    fl_feed_set_free(&m2);
    fl_feed_set_free(&merged);
}

Test(verify_facts, ties_at_one_time_follow_redis_member_order)
{
    /* At one score Redis orders by member bytes: "follow:..." before
     * "like:...", and "like:12:..." before "like:9:...". The mark is
     * like:12:5: like:9:5 is above it, follow:99:0 below. */
    fl_feed_set_t pg = {0}, m = {0}, marks = {0}, out = {0};
    size_t below;
    cr_assert(fl_feed_set_add_row(&m, 1, 5, 1000, 12));  /* like:12:5 */
    cr_assert(fl_feed_set_add_row(&pg, 1, 5, 1000, 9));  /* like:9:5 */
    cr_assert(fl_feed_set_add_row(&pg, 1, 5, 1000, 12)); /* like:12:5, the mark */
    cr_assert(fl_feed_set_add_row(&pg, 1, 0, 1000, 99)); /* follow:99:0 */
    fl_feed_set_sort(&pg);
    fl_feed_set_sort(&m);
    cr_assert(fl_feed_marks_merge(&m, &marks, fl_facts_notif_cmp));
    cr_assert(fl_feed_set_cut(&pg, &marks, fl_facts_notif_cmp, &out, &below));
    cr_assert_eq(below, 2);
    cr_assert_eq(out.len, 1);
    cr_assert_eq(out.v[0].aux, 9);
    fl_feed_set_free(&pg);
    fl_feed_set_free(&m);
    fl_feed_set_free(&marks);
    fl_feed_set_free(&out);
}
