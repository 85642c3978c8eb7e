/*
 * fl_digest.h - order-independent digests of feeds, the same for every
 * place that holds them (the timelines store or its changelog, Redis's
 * feed:{U}, PostgreSQL's feed_items), so that `feedline verify` can say
 * whether two of them are equal and, when not, which users and posts
 * differ.
 *
 * A feed set is every (user, post, created_at) entry a place holds, in any
 * order. A user's digest hashes their entries sorted by post id; a
 * partition's digest is the sum (mod 2^64) of its users' digests mixed
 * with their ids, so that neither the order of users nor of entries
 * matters, and an empty feed adds nothing. Pure: no I/O.
 */
#ifndef FL_DIGEST_H
#define FL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_feed_entry {
    int64_t user_id;
    int64_t post_id;
    int64_t created_at; /* epoch ms */
    int64_t aux;        /* a fourth column of other relations' rows (0 in a feed) */
} fl_feed_entry_t;

typedef struct fl_feed_set {
    fl_feed_entry_t *v;
    size_t len, cap;
    bool sorted;
} fl_feed_set_t;

/* Appends an entry; false when memory ran out. */
bool fl_feed_set_add(fl_feed_set_t *s, int64_t user_id, int64_t post_id, int64_t created_at);

/* Appends a row of another relation (fl_verify_facts.h): the same
 * digests and differences, the columns named by the relation. */
bool fl_feed_set_add_row(fl_feed_set_t *s, int64_t id, int64_t item, int64_t value, int64_t aux);

/* A 64-bit hash of n bytes, never 0 (a string field's value in a row,
 * a store record's key and value). */
int64_t fl_digest_bytes(const void *p, size_t n);

/* Sorts by (user, post) and drops exact repeats (a place cannot hold an
 * entry twice; a reader that sees one twice, e.g. a changelog read with
 * a compaction in flight, must not count it twice). */
void fl_feed_set_sort(fl_feed_set_t *s);

void fl_feed_set_free(fl_feed_set_t *s);

/* Digest of n entries of one user, sorted by post id. */
uint64_t fl_feed_user_digest(const fl_feed_entry_t *v, size_t n);

/* Users with at least one entry, and the sum of their digests per
 * partition of the user id (the timelines changelog's partitioning) into
 * out[partitions]. s must be sorted. */
size_t fl_feed_partition_digests(const fl_feed_set_t *s, int32_t partitions, uint64_t *out);

/* Called for each user whose entries differ between a and b, with the
 * entries only a holds and those only b holds (an entry whose created_at
 * differs is in both lists). Returning false stops the walk. */
typedef bool (*fl_feed_diff_cb)(void *ctx, int64_t user_id, const fl_feed_entry_t *only_a,
                                size_t n_a, const fl_feed_entry_t *only_b, size_t n_b);

/* Cuts at marks: a place that keeps only each user's newest rows (a
 * timeline at its cap, fl_timeline.h; Redis's notifications) is exact only
 * above the highest row it ever dropped, its user's mark; two such places
 * are compared strictly above the higher of their marks. A mark set holds
 * one row per user, sorted; cmp orders a user's rows. */
typedef int (*fl_feed_row_cmp)(const fl_feed_entry_t *a, const fl_feed_entry_t *b);

/* A timeline's order: (created_at, post id). */
int fl_feed_row_cmp_timeline(const fl_feed_entry_t *a, const fl_feed_entry_t *b);

/* Merges the rows of m (sorted by user, any number per user) into marks,
 * keeping each user's highest by cmp. False when memory ran out (marks
 * unchanged). */
bool fl_feed_marks_merge(const fl_feed_set_t *m, fl_feed_set_t *marks, fl_feed_row_cmp cmp);

/* out = the rows of s (sorted) strictly above their user's mark, the rest
 * counted in *below; out is sorted. False when memory ran out. */
bool fl_feed_set_cut(const fl_feed_set_t *s, const fl_feed_set_t *marks, fl_feed_row_cmp cmp,
                     fl_feed_set_t *out, size_t *below);

/* Compares two sorted sets user by user; returns how many users differ
 * (the callback sees them in user order, and may be NULL). */
size_t fl_feed_diff(const fl_feed_set_t *a, const fl_feed_set_t *b, fl_feed_diff_cb cb, void *ctx);

#endif
