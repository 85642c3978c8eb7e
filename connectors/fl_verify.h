/*
 * fl_verify.h - `feedline verify`: every user's feed in the timelines
 * store, in Redis and in PostgreSQL, compared by order-independent digests
 * (fl_digest.h), with the users and posts that differ.
 */
#ifndef FL_VERIFY_H
#define FL_VERIFY_H

#include "fl_topology.h"

#include <signal.h>

#define FL_VERIFY_USAGE                                                                            \
    "verify [--store DIR...] [--against TOPOLOGY] [--only redis|postgres] [--max-users N] "        \
    "[--feeds] [--json]"
#define FL_VERIFY_HELP                                                                             \
    "Compares every user's feed where it is kept: the timelines store (its changelog read\n"       \
    "to its end, or with --store the folders of a stopped feedline-timeline), Redis's\n"           \
    "feed:{U} and PostgreSQL's feed_items. Prints each place's digest per partition (the\n"        \
    "same order-independent hash for all three) and, for each user whose feed differs from\n"      \
    "the store's, the posts only one side holds (--max-users of them, 20). --only compares\n"      \
    "one projection; --json prints the result as JSON. --against TOPOLOGY compares the\n"          \
    "three places of another generation too (DIR/gN/topology.yaml of feedline replay)\n"           \
    "with this one's store: a rebuild against the live result. Where the timeline cap\n"           \
    "trimmed a timeline, what lies below its trim mark depends on the order in which the\n"        \
    "operations of different authors met, so generations are compared above the higher\n"          \
    "of each user's two marks. Compare an idle pipeline (feedline lag all 0): the places\n"        \
    "move while it runs. Then, unless --feeds, what both projections hold beside the feeds:\n"     \
    "posts (their fields and like counts), users (profile and counts), follows, affinity and\n"    \
    "notifications, PostgreSQL against Redis (notifications above each user's trim mark in\n"      \
    "Redis, which keeps the newest 200) and against --against's, down to the id and field;\n"      \
    "with --against the other stores too, record by record.\n"                                     \
    "Exit status: 0 all equal, 1 a difference, 3 a place could not be read.\n"

/* Runs the command (argv[0] is "verify"); returns the exit status. */
int fl_verify_cmd(const fl_topology_t *topo, volatile sig_atomic_t *stop, int argc, char **argv);

#endif
