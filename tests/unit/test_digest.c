/*
 * test_digest.c - feed digests for `feedline verify`: independent of the
 * order of entries and users, sensitive to any entry added, lost or
 * re-timed, and a difference names the user and the entries on each side.
 */
#include "fl_digest.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static void fill(fl_feed_set_t *s, uint64_t seed, bool reverse)
{
    /* 300 users, up to 40 entries each, added in one order or its reverse */
    fl_feed_entry_t all[300 * 40];
    size_t n = 0;
    uint64_t x = seed;
    for (int64_t u = 1; u <= 300; u++)
        for (int64_t k = 0; k < (u * 7) % 41; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            all[n++] = (fl_feed_entry_t){u, 1000 * u + k, 1767225600000 + (int64_t)(x >> 44), 0};
        }
    for (size_t i = 0; i < n; i++) {
        const fl_feed_entry_t *e = &all[reverse ? n - 1 - i : i];
        cr_assert(fl_feed_set_add(s, e->user_id, e->post_id, e->created_at));
    }
    fl_feed_set_sort(s);
}

static void digests(const fl_feed_set_t *s, uint64_t out[8])
{
    fl_feed_partition_digests(s, 8, out);
}

Test(digest, order_does_not_matter)
{
    fl_feed_set_t a = {0}, b = {0};
    uint64_t da[8], db[8];
    fill(&a, 1, false);
    fill(&b, 1, true);
    digests(&a, da);
    digests(&b, db);
    cr_expect_arr_eq(da, db, sizeof(da));
    cr_expect_eq(fl_feed_diff(&a, &b, NULL, NULL), 0);
    /* a repeat read (a changelog read twice over) is not a difference */
    cr_assert(fl_feed_set_add(&b, a.v[5].user_id, a.v[5].post_id, a.v[5].created_at));
    fl_feed_set_sort(&b);
    cr_expect_eq(fl_feed_diff(&a, &b, NULL, NULL), 0);
    fl_feed_set_free(&a);
    fl_feed_set_free(&b);
}

typedef struct seen {
    int64_t user;
    size_t only_a, only_b;
    int64_t post_a, post_b;
    int calls;
} seen_t;

static bool record(void *ctx, int64_t user, const fl_feed_entry_t *oa, size_t na,
                   const fl_feed_entry_t *ob, size_t nb)
{
    seen_t *s = ctx;
    s->user = user;
    s->only_a = na;
    s->only_b = nb;
    s->post_a = na ? oa[0].post_id : 0;
    s->post_b = nb ? ob[0].post_id : 0;
    s->calls++;
    return true;
}

Test(digest, a_lost_an_extra_and_a_retimed_entry_are_found)
{
    fl_feed_set_t a = {0}, b = {0};
    uint64_t da[8], db[8];
    fill(&a, 2, false);
    fill(&b, 2, false);
    size_t victim = a.len / 2;
    fl_feed_entry_t lost = b.v[victim];
    b.v[victim] = b.v[b.len - 1]; /* lose one entry */
    b.len--;
    fl_feed_set_sort(&b);
    seen_t s = {0};
    cr_expect_eq(fl_feed_diff(&a, &b, record, &s), 1);
    cr_expect_eq(s.user, lost.user_id);
    cr_expect_eq(s.only_a, 1);
    cr_expect_eq(s.only_b, 0);
    cr_expect_eq(s.post_a, lost.post_id);
    digests(&a, da);
    digests(&b, db);
    cr_expect_arr_neq(da, db, sizeof(da));

    /* put it back one millisecond off: both sides name it */
    cr_assert(fl_feed_set_add(&b, lost.user_id, lost.post_id, lost.created_at + 1));
    fl_feed_set_sort(&b);
    s = (seen_t){0};
    cr_expect_eq(fl_feed_diff(&a, &b, record, &s), 1);
    cr_expect_eq(s.only_a, 1);
    cr_expect_eq(s.only_b, 1);
    cr_expect_eq(s.post_a, lost.post_id);
    cr_expect_eq(s.post_b, lost.post_id);

    /* a whole user that only b has */
    cr_assert(fl_feed_set_add(&b, 999999, 1, 2));
    fl_feed_set_sort(&b);
    s = (seen_t){0};
    cr_expect_eq(fl_feed_diff(&a, &b, record, &s), 2);
    cr_expect_eq(s.user, 999999);
    cr_expect_eq(s.only_b, 1);
    cr_expect_eq(s.calls, 2);
    fl_feed_set_free(&a);
    fl_feed_set_free(&b);
}

Test(digest, empty_sets_agree_and_an_entry_moved_between_users_is_seen)
{
    fl_feed_set_t a = {0}, b = {0};
    uint64_t da[8], db[8];
    fl_feed_set_sort(&a);
    fl_feed_set_sort(&b);
    cr_expect_eq(fl_feed_partition_digests(&a, 8, da), 0);
    cr_expect_eq(fl_feed_diff(&a, &b, NULL, NULL), 0);
    /* the same entries, one of them under another user */
    cr_assert(fl_feed_set_add(&a, 1, 10, 100));
    cr_assert(fl_feed_set_add(&a, 2, 20, 200));
    cr_assert(fl_feed_set_add(&b, 1, 10, 100));
    cr_assert(fl_feed_set_add(&b, 1, 20, 200));
    fl_feed_set_sort(&a);
    fl_feed_set_sort(&b);
    digests(&a, da);
    digests(&b, db);
    cr_expect_arr_neq(da, db, sizeof(da));
    cr_expect_eq(fl_feed_diff(&a, &b, NULL, NULL), 2);
    fl_feed_set_free(&a);
    fl_feed_set_free(&b);
}

/* Two generations of one user's timeline that the cap trimmed in another
 * order: they differ at and below the marks, agree above the higher one.
 * A difference above it is still seen. */
Test(digest, generations_agree_above_the_higher_trim_mark)
{
    fl_feed_set_t a = {0}, b = {0}, a_above = {0}, b_above = {0}, raw = {0}, m = {0};
    size_t below_a, below_b;
    /* user 1: a kept 10@100 (its mark 9@90), b kept 12@95 instead (mark
     * 10@100); both hold 20@200 and 30@300. User 2 has no mark. */
    int64_t ea[][3] = {{1, 10, 100}, {1, 20, 200}, {1, 30, 300}, {2, 5, 50}};
    int64_t eb[][3] = {{1, 12, 95}, {1, 20, 200}, {1, 30, 300}, {2, 5, 50}};
    for (int i = 0; i < 4; i++) {
        cr_assert(fl_feed_set_add(&a, ea[i][0], ea[i][1], ea[i][2]));
        cr_assert(fl_feed_set_add(&b, eb[i][0], eb[i][1], eb[i][2]));
    }
    fl_feed_set_sort(&a);
    fl_feed_set_sort(&b);
    cr_assert_eq(fl_feed_diff(&a, &b, NULL, NULL), 1);
    cr_assert(fl_feed_set_add(&raw, 1, 10, 100)); /* b's mark, given first */
    cr_assert(fl_feed_set_add(&raw, 1, 9, 90));   /* a's mark */
    fl_feed_set_sort(&raw);
    cr_assert(fl_feed_marks_merge(&raw, &m, fl_feed_row_cmp_timeline));
    cr_assert_eq(m.len, 1, "one mark per user, the higher");
    cr_assert_eq(m.v[0].created_at, 100);
    cr_assert(fl_feed_set_cut(&a, &m, fl_feed_row_cmp_timeline, &a_above, &below_a));
    cr_assert(fl_feed_set_cut(&b, &m, fl_feed_row_cmp_timeline, &b_above, &below_b));
    cr_expect_eq(below_a, 1, "10@100 is at the mark");
    cr_expect_eq(below_b, 1, "12@95 is below it");
    cr_expect_eq(fl_feed_diff(&a_above, &b_above, NULL, NULL), 0);
    cr_expect_eq(a_above.len, 3);

    /* the same entry at the mark but a lost one above it: a difference */
    fl_feed_set_t c = {0}, c_above = {0};
    size_t below_c;
    cr_assert(fl_feed_set_add(&c, 1, 12, 95));
    cr_assert(fl_feed_set_add(&c, 1, 30, 300));
    cr_assert(fl_feed_set_add(&c, 2, 5, 50));
    fl_feed_set_sort(&c);
    cr_assert(fl_feed_set_cut(&c, &m, fl_feed_row_cmp_timeline, &c_above, &below_c));
    cr_expect_eq(fl_feed_diff(&a_above, &c_above, NULL, NULL), 1);
    fl_feed_set_free(&a);
    fl_feed_set_free(&b);
    fl_feed_set_free(&c);
    fl_feed_set_free(&a_above);
    fl_feed_set_free(&b_above);
    fl_feed_set_free(&c_above);
    fl_feed_set_free(&raw);
    fl_feed_set_free(&m);
}
