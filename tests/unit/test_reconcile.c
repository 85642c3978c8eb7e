/*
 * test_reconcile.c - the rules for a store a task opens (fl_reconcile.h):
 * when it is wiped and why, when it replays its changelog, where inputs
 * resume. Each case is a scenario of the README's "Processing guarantees".
 */
#include "fl_reconcile.h"

#include <criterion/criterion.h>

#define DAY (24 * 3600 * 1000LL)

static int64_t local[2], input_end[2], committed[2];

/* A store at changelog position 1000 of a changelog ending at 1001 (its
 * own last transaction's marker), offsets 50/60 of inputs ending at
 * 80/90 that the group committed too, last committed a minute ago. */
static fl_reconcile_in_t healthy(void)
{
    local[0] = 50, local[1] = 60;
    input_end[0] = 80, input_end[1] = 90;
    committed[0] = 50, committed[1] = 60;
    return (fl_reconcile_in_t){.position = 1000,
                               .changelog_end = 1001,
                               .n_inputs = 2,
                               .local = local,
                               .input_end = input_end,
                               .committed = committed,
                               .committed_at_ms = 10 * DAY - 60000,
                               .now_ms = 10 * DAY,
                               .delete_retention_ms = DAY};
}

Test(reconcile, a_healthy_store_is_kept)
{
    fl_reconcile_in_t in = healthy();
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
    cr_assert_not(fl_reconcile_behind(in.position, in.changelog_end),
                  "only its own commit marker follows");
}

Test(reconcile, behind_means_records_past_the_commit_marker)
{
    cr_assert(fl_reconcile_behind(1000, 1002), "one record of a newer batch + its marker");
    cr_assert_not(fl_reconcile_behind(1000, 1001));
    cr_assert_not(fl_reconcile_behind(1000, 1000));
    cr_assert(fl_reconcile_behind(0, 1), "a new store and a changelog that is not empty");
    cr_assert_not(fl_reconcile_behind(0, 0));
}

Test(reconcile, store_ahead_of_its_changelog_is_wiped)
{
    /* The topics were recreated: the new changelog is shorter. */
    fl_reconcile_in_t in = healthy();
    in.changelog_end = 10;
    cr_assert_eq(fl_reconcile_wipe(&in), FL_WIPE_AHEAD_OF_CHANGELOG);
}

Test(reconcile, offsets_past_an_inputs_end_are_wiped)
{
    fl_reconcile_in_t in = healthy();
    input_end[1] = 59;
    cr_assert_eq(fl_reconcile_wipe(&in), FL_WIPE_PAST_INPUT_END);
    input_end[1] = -1; /* unknown end: no verdict from it */
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
}

Test(reconcile, offsets_the_group_lacks_are_wiped)
{
    fl_reconcile_in_t in = healthy();
    committed[0] = -1;
    cr_assert_eq(fl_reconcile_wipe(&in), FL_WIPE_NO_COMMITTED_OFFSETS);
    /* An input the store never read needs no committed offset. */
    local[0] = -1;
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
}

Test(reconcile, old_store_behind_its_changelog_is_wiped)
{
    /* Offline for two days while another instance wrote the changelog and
     * compaction may have dropped the tombstones it needs. */
    fl_reconcile_in_t in = healthy();
    in.committed_at_ms = in.now_ms - 2 * DAY;
    in.changelog_end = 5000;
    cr_assert_eq(fl_reconcile_wipe(&in), FL_WIPE_TOMBSTONES_EXPIRED);
    /* Just as old but current: nothing to replay, nothing missed. */
    in.changelog_end = 1001;
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
    /* Behind but recent: replaying is exact. */
    in.changelog_end = 5000;
    in.committed_at_ms = in.now_ms - DAY + 1;
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
    /* Retention unknown, or no commit time kept: no verdict. */
    in.committed_at_ms = in.now_ms - 2 * DAY;
    in.delete_retention_ms = -1;
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
    in.delete_retention_ms = DAY;
    in.committed_at_ms = -1;
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
}

Test(reconcile, a_new_store_is_never_wiped)
{
    local[0] = local[1] = -1;
    committed[0] = committed[1] = -1;
    input_end[0] = input_end[1] = 100;
    fl_reconcile_in_t in = {.position = 0,
                            .changelog_end = 0,
                            .n_inputs = 2,
                            .local = local,
                            .input_end = input_end,
                            .committed = committed,
                            .committed_at_ms = -1,
                            .now_ms = DAY,
                            .delete_retention_ms = DAY};
    cr_assert_eq(fl_reconcile_wipe(&in), -1);
}

Test(reconcile, reason_names)
{
    cr_assert_str_eq(fl_wipe_reason_name(FL_WIPE_TOMBSTONES_EXPIRED), "tombstones_expired");
    cr_assert_str_eq(fl_wipe_reason_name(-1), "?");
    cr_assert_str_eq(fl_wipe_reason_name(FL_WIPE__COUNT), "?");
}
