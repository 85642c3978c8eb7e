/*
 * test_merge.c - the merge of a task's inputs (fl_merge.h) apart from
 * Kafka: the order of records, when an empty input is waited for and for
 * how long, what a rewind resets, and that every pushed item is freed.
 */
#include "fl_merge.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static const char *const names[] = {"follows", "posts"};
#define FOLLOWS 0
#define POSTS   1

static int live_items;

static void item_free(void *item)
{
    free(item);
    live_items--;
}

static void push(fl_merge_t *m, size_t i, int64_t ts, int64_t offset)
{
    int *item = malloc(sizeof(int));
    *item = (int)offset;
    live_items++;
    cr_assert_eq(fl_merge_push(m, i, ts, offset, item), 0);
}

static fl_merge_t *merge(int64_t idle, int64_t lag)
{
    live_items = 0;
    fl_merge_t *m = fl_merge_new(2, names, idle, lag, item_free);
    cr_assert_not_null(m);
    return m;
}

/* Pops what is ready at now into out (input * 1000 + offset), returns n. */
static size_t drain(fl_merge_t *m, int64_t now, int *out, size_t cap, fl_merge_state_t *last)
{
    size_t n = 0, i;
    fl_merge_state_t st;
    while ((st = fl_merge_next(m, now, &i)) == FL_MERGE_READY && n < cap) {
        out[n++] = (int)(i * 1000 + (size_t)fl_merge_head(m, i)->offset);
        fl_merge_pop(m, i);
    }
    if (last)
        *last = st;
    return n;
}

Test(merge, orders_by_timestamp_then_input_name_then_offset)
{
    fl_merge_t *m = merge(0, 30000);
    /* Both inputs buffered: (ts, name, offset). */
    push(m, POSTS, 10, 0);
    push(m, POSTS, 20, 1);
    push(m, POSTS, 20, 2);
    push(m, FOLLOWS, 20, 0);
    push(m, FOLLOWS, 5, 1); /* out of order within its input: offsets rule */
    fl_merge_eof(m, POSTS);
    fl_merge_eof(m, FOLLOWS);
    int out[8];
    size_t n = drain(m, 0, out, 8, NULL);
    /* posts@0 (10) < follows@0 (20, "follows" < "posts") < posts@1 < posts@2;
     * follows@1 (5) comes after follows@0 although its timestamp is lower:
     * an input's own order is never changed. */
    int want[] = {1000, 0, 1, 1001, 1002};
    cr_assert_eq(n, 5);
    for (size_t k = 0; k < n; k++)
        cr_expect_eq(out[k], want[k], "at %zu: %d != %d", k, out[k], want[k]);
    cr_assert_eq(fl_merge_position(m, POSTS), 3);
    cr_assert_eq(fl_merge_position(m, FOLLOWS), 2);
    fl_merge_free(m);
    cr_assert_eq(live_items, 0);
}

Test(merge, waits_for_an_input_known_to_hold_records)
{
    /* Replay: follows holds 5 records in Kafka beyond its position 0, none
     * fetched yet. Posts must not run ahead of them. */
    fl_merge_t *m = merge(0, 30000);
    fl_merge_set_position(m, FOLLOWS, 0);
    fl_merge_set_end(m, FOLLOWS, 5);
    push(m, POSTS, 100, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 1000, &i), FL_MERGE_WAITING);
    cr_assert_eq(i, FOLLOWS);
    cr_assert_eq(fl_merge_next(m, 1000 + 29999, &i), FL_MERGE_WAITING);
    /* The follows arrive: merged in order. */
    push(m, FOLLOWS, 50, 0);
    int out[4];
    fl_merge_state_t st;
    size_t n = drain(m, 31000, out, 4, &st);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0], 0); /* follows@0 first (ts 50) */
    /* follows is empty again, position 1 < end 5: still waited for. */
    cr_assert_eq(st, FL_MERGE_WAITING);
    fl_merge_free(m);
}

Test(merge, gives_up_on_a_lagging_input_after_the_limit_once)
{
    fl_merge_t *m = merge(0, 30000);
    fl_merge_set_position(m, FOLLOWS, 0);
    fl_merge_set_end(m, FOLLOWS, 5);
    push(m, POSTS, 100, 0);
    push(m, POSTS, 101, 1);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 30000, &i), FL_MERGE_READY);
    cr_assert_eq(i, POSTS);
    fl_merge_pop(m, POSTS);
    /* Expired: no new wait until follows delivers. */
    cr_assert_eq(fl_merge_next(m, 30001, &i), FL_MERGE_READY);
    uint64_t lag, idle;
    fl_merge_stats(m, &lag, &idle);
    cr_assert_eq(lag, 1);
    cr_assert_eq(idle, 0);
    /* the runtime's log line names the input and its end */
    cr_assert(fl_merge_lag_expired(m, FOLLOWS));
    cr_assert_not(fl_merge_lag_expired(m, POSTS));
    cr_assert_eq(fl_merge_end(m, FOLLOWS), 5);
    push(m, FOLLOWS, 102, 0); /* it delivers: the wait may start again */
    cr_assert_not(fl_merge_lag_expired(m, FOLLOWS));
    fl_merge_free(m);
}

Test(merge, caught_up_input_is_not_waited_for_with_max_idle_zero)
{
    fl_merge_t *m = merge(0, 30000);
    fl_merge_set_position(m, FOLLOWS, 7);
    fl_merge_set_end(m, FOLLOWS, 7);
    push(m, POSTS, 100, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_READY);
    cr_assert_eq(i, POSTS);
    fl_merge_free(m);
}

Test(merge, caught_up_input_is_waited_for_max_idle_ms)
{
    /* Live traffic: follows reported its end; posts has a record. The task
     * waits max_idle_ms (from the moment it first found follows empty),
     * then merges past follows until follows delivers again. */
    fl_merge_t *m = merge(200, 30000);
    fl_merge_set_position(m, FOLLOWS, 3);
    fl_merge_eof(m, FOLLOWS);
    fl_merge_set_end(m, FOLLOWS, 9); /* a stale high watermark: eof wins */
    push(m, POSTS, 100, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 1000, &i), FL_MERGE_WAITING);
    cr_assert_eq(i, FOLLOWS);
    cr_assert_eq(fl_merge_next(m, 1199, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 1200, &i), FL_MERGE_READY);
    fl_merge_pop(m, POSTS);
    push(m, POSTS, 101, 1);
    cr_assert_eq(fl_merge_next(m, 1201, &i), FL_MERGE_READY, "an expired wait stays expired");
    fl_merge_pop(m, POSTS);
    /* follows delivers, then goes empty again: a new wait. */
    push(m, FOLLOWS, 102, 3);
    push(m, POSTS, 103, 2);
    cr_assert_eq(fl_merge_next(m, 1300, &i), FL_MERGE_READY);
    cr_assert_eq(i, FOLLOWS);
    fl_merge_pop(m, FOLLOWS);
    fl_merge_eof(m, FOLLOWS);
    cr_assert_eq(fl_merge_next(m, 1300, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 1500, &i), FL_MERGE_READY);
    uint64_t lag, idle;
    fl_merge_stats(m, &lag, &idle);
    cr_assert_eq(idle, 2);
    fl_merge_free(m);
    cr_assert_eq(live_items, 0);
}

Test(merge, unknown_end_waits_like_caught_up)
{
    fl_merge_t *m = merge(50, 30000);
    push(m, POSTS, 100, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 49, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 50, &i), FL_MERGE_READY);
    fl_merge_free(m);
}

Test(merge, negative_max_idle_never_waits)
{
    fl_merge_t *m = merge(-1, 30000);
    fl_merge_set_position(m, FOLLOWS, 0);
    fl_merge_set_end(m, FOLLOWS, 5);
    push(m, POSTS, 100, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_READY);
    fl_merge_free(m);
}

Test(merge, wait_clock_starts_when_another_input_has_records)
{
    /* Both empty for a long time: no clock runs. When posts gets a record
     * the wait for follows starts then, not at the last pop. */
    fl_merge_t *m = merge(200, 30000);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_EMPTY);
    cr_assert_eq(fl_merge_next(m, 10000, &i), FL_MERGE_EMPTY);
    push(m, POSTS, 100, 0);
    cr_assert_eq(fl_merge_next(m, 10000, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 10199, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 10200, &i), FL_MERGE_READY);
    fl_merge_free(m);
}

Test(merge, reset_after_a_rewind_restarts_the_clocks)
{
    /* Regression: after a rewind the old clock made the 30 s give-up fire
     * at once. */
    fl_merge_t *m = merge(0, 30000);
    fl_merge_set_position(m, FOLLOWS, 0);
    fl_merge_set_end(m, FOLLOWS, 5);
    push(m, POSTS, 100, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_WAITING);
    fl_merge_reset(m);
    cr_assert_eq(live_items, 0, "reset frees the buffered items");
    cr_assert_eq(fl_merge_position(m, POSTS), -1);
    fl_merge_set_position(m, FOLLOWS, 0);
    fl_merge_set_position(m, POSTS, 0);
    fl_merge_set_end(m, FOLLOWS, 5);
    push(m, POSTS, 100, 0);
    cr_assert_eq(fl_merge_next(m, 29000, &i), FL_MERGE_WAITING,
                 "the wait is counted from after the rewind");
    cr_assert_eq(fl_merge_next(m, 29000 + 29999, &i), FL_MERGE_WAITING);
    cr_assert_eq(fl_merge_next(m, 29000 + 30000, &i), FL_MERGE_READY);
    fl_merge_free(m);
}

Test(merge, single_input_never_waits)
{
    live_items = 0;
    fl_merge_t *m = fl_merge_new(1, names, 1000, 30000, item_free);
    push(m, 0, 5, 0);
    size_t i;
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_READY);
    fl_merge_pop(m, 0);
    cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_EMPTY);
    fl_merge_free(m);
}

Test(merge, grows_and_keeps_order_across_wraparound)
{
    fl_merge_t *m = merge(0, 30000);
    fl_merge_eof(m, FOLLOWS);
    int64_t next_pop = 0;
    for (int64_t off = 0; off < 5000; off++) {
        push(m, POSTS, off, off);
        if (off % 3 == 0) {
            size_t i;
            cr_assert_eq(fl_merge_next(m, 0, &i), FL_MERGE_READY);
            cr_assert_eq(fl_merge_head(m, i)->offset, next_pop);
            fl_merge_pop(m, i);
            next_pop++;
        }
    }
    cr_assert_eq(fl_merge_buffered(m, POSTS), (size_t)(5000 - next_pop));
    int *out = malloc(5000 * sizeof(int));
    size_t n = drain(m, 0, out, 5000, NULL);
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(out[k], 1000 + (int)(next_pop + (int64_t)k));
    free(out);
    fl_merge_free(m);
    cr_assert_eq(live_items, 0);
}
