/*
 * fl_reconcile.c - the rules for a store a task opens (see fl_reconcile.h).
 * Pure functions over a handful of offsets; called once per store and
 * assignment.
 */
#include "fl_reconcile.h"

static const char *const wipe_names[FL_WIPE__COUNT] = {
    [FL_WIPE_AHEAD_OF_CHANGELOG] = "ahead_of_changelog",
    [FL_WIPE_PAST_INPUT_END] = "offsets_past_input_end",
    [FL_WIPE_TOMBSTONES_EXPIRED] = "tombstones_expired",
    [FL_WIPE_NO_COMMITTED_OFFSETS] = "no_committed_offsets",
};

const char *fl_wipe_reason_name(int reason)
{
    return reason >= 0 && reason < FL_WIPE__COUNT ? wipe_names[reason] : "?";
}

bool fl_reconcile_behind(int64_t position, int64_t changelog_end)
{
    /* The store's last batch ended with its records at position - 1 and
     * the transaction's commit marker at position: an end of position + 1
     * holds nothing new. A changelog that holds anything beyond that (a
     * newer batch, or an aborted one) is replayed; replaying an aborted
     * batch reads nothing. A new store (position 0) is behind any
     * changelog that is not empty. */
    return position == 0 ? changelog_end > 0 : changelog_end - position >= 2;
}

int fl_reconcile_wipe(const fl_reconcile_in_t *in)
{
    if (in->position > in->changelog_end)
        return FL_WIPE_AHEAD_OF_CHANGELOG;
    for (size_t i = 0; i < in->n_inputs; i++) {
        if (in->local[i] < 0)
            continue;
        if (in->input_end[i] >= 0 && in->local[i] > in->input_end[i])
            return FL_WIPE_PAST_INPUT_END;
        /* The group's offsets were deleted with recreated topics, or
         * expired: the store's state matches no offset the group knows. */
        if (in->committed[i] < 0)
            return FL_WIPE_NO_COMMITTED_OFFSETS;
    }
    if (fl_reconcile_behind(in->position, in->changelog_end) && in->delete_retention_ms >= 0 &&
        in->committed_at_ms >= 0 && in->now_ms - in->committed_at_ms > in->delete_retention_ms)
        return FL_WIPE_TOMBSTONES_EXPIRED;
    return -1;
}
