/*
 * test_api_model.c - the read API's pure model (fl_api_model.h): cursors,
 * id and query parameter validation, the visibility rule, the ordering and
 * dedupe of feed candidates, notification order and the ranking score.
 *
 * Cursor strings that should decode are written here by hand from the
 * encoding rules (a kind letter and big-endian 64-bit fields in lowercase
 * hex), not with fl_cursor_encode, so a round trip also checks the encoder
 * against the rules. Strings that end early are placed right before an
 * inaccessible page, so reading past their NUL faults in any build.
 * fl_pos_sort_unique is checked against a plain reference on random
 * arrays. The fuzz corpora of fuzz_cursor and fuzz_query are replayed
 * from $FEEDLINE_SOURCE_DIR/tests/fuzz/corpus (the repo root under ctest),
 * each file against its name.
 */
#include "fl_api_model.h"
#include "../fuzz/query_split.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FEED   (FL_Q_LIMIT | FL_Q_CURSOR | FL_Q_ORDER | FL_Q_EXPLAIN)
#define LIST   (FL_Q_LIMIT | FL_Q_CURSOR)
#define NKINDS 4

static const fl_cursor_kind_t kinds[NKINDS] = {FL_CURSOR_CHRONO, FL_CURSOR_RANKED, FL_CURSOR_NOTIF,
                                               FL_CURSOR_FOLLOW};

static const char *source_dir(void)
{
    const char *d = getenv("FEEDLINE_SOURCE_DIR");
    return d && *d ? d : ".";
}

/* ---- cursors ------------------------------------------------------------ */

/* kind letter + n fields as 16 lowercase hex digits each, two's complement */
static void mk(char *out, char kind, size_t n, const int64_t *f)
{
    out[0] = kind;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 1 + 16 * i, 17, "%016" PRIx64, (uint64_t)f[i]);
    out[1 + 16 * n] = '\0';
}

static void mk2(char *out, char kind, int64_t a, int64_t b)
{
    mk(out, kind, 2, (int64_t[]){a, b});
}

static void mk4(char *out, char kind, int64_t a, int64_t b, int64_t c, int64_t d)
{
    mk(out, kind, 4, (int64_t[]){a, b, c, d});
}

static bool cursor_eq(const fl_cursor_t *a, const fl_cursor_t *b)
{
    return a->kind == b->kind && a->pos.ts == b->pos.ts && a->pos.id == b->pos.id &&
           a->snapshot_ms == b->snapshot_ms && a->offset == b->offset &&
           a->notif.created_at == b->notif.created_at && a->notif.kind == b->notif.kind &&
           a->notif.actor_id == b->notif.actor_id && a->notif.post_id == b->notif.post_id;
}

/* the cursor and its string by the rules */
static void rule_string(const fl_cursor_t *c, char *out)
{
    switch (c->kind) {
    case FL_CURSOR_CHRONO:
    case FL_CURSOR_FOLLOW:
        mk2(out, (char)c->kind, c->pos.ts, c->pos.id);
        break;
    case FL_CURSOR_RANKED:
        mk4(out, 'r', c->snapshot_ms, c->pos.ts, c->pos.id, c->offset);
        break;
    case FL_CURSOR_NOTIF:
        mk4(out, 'n', c->notif.created_at, c->notif.kind, c->notif.actor_id, c->notif.post_id);
        break;
    }
}

static const fl_cursor_t edge_cursors[] = {
    {.kind = FL_CURSOR_CHRONO, .pos = {0, 1}},
    {.kind = FL_CURSOR_CHRONO, .pos = {0, INT64_MAX}},
    {.kind = FL_CURSOR_CHRONO, .pos = {INT64_MAX, 1}},
    {.kind = FL_CURSOR_CHRONO, .pos = {1700000000000, 0xabcdef}},
    {.kind = FL_CURSOR_FOLLOW, .pos = {0, 1}},
    {.kind = FL_CURSOR_FOLLOW, .pos = {INT64_MAX, INT64_MAX}},
    {.kind = FL_CURSOR_RANKED, .snapshot_ms = 0, .pos = {0, 1}, .offset = 1},
    {.kind = FL_CURSOR_RANKED,
     .snapshot_ms = INT64_MAX,
     .pos = {INT64_MAX, INT64_MAX},
     .offset = 100000},
    {.kind = FL_CURSOR_RANKED,
     .snapshot_ms = 1700000005000,
     .pos = {1700000000000, 101},
     .offset = 20},
    {.kind = FL_CURSOR_NOTIF, .notif = {0, FL_NOTIF_LIKE, 1, 1}},
    {.kind = FL_CURSOR_NOTIF, .notif = {0, FL_NOTIF_FOLLOW, 1, 0}},
    {.kind = FL_CURSOR_NOTIF, .notif = {INT64_MAX, FL_NOTIF_FOLLOW, INT64_MAX, INT64_MAX}},
    {.kind = FL_CURSOR_NOTIF, .notif = {1700000000000, FL_NOTIF_LIKE, 2, 101}},
};
#define NEDGE (sizeof(edge_cursors) / sizeof(edge_cursors[0]))

static size_t fields_of(fl_cursor_kind_t k)
{
    return k == FL_CURSOR_CHRONO || k == FL_CURSOR_FOLLOW ? 2 : 4;
}

Test(cursor, round_trip_every_kind_with_edge_values)
{
    for (size_t i = 0; i < NEDGE; i++) {
        const fl_cursor_t *c = &edge_cursors[i];
        char want[FL_CURSOR_MAX], got[FL_CURSOR_MAX];
        fl_cursor_t back;

        rule_string(c, want);
        memset(got, 'x', sizeof(got));
        fl_cursor_encode(c, got);
        cr_assert_str_eq(got, want, "cursor %zu", i);
        cr_assert_eq(strlen(got), 1 + 16 * fields_of(c->kind));
        cr_assert_lt(strlen(got), FL_CURSOR_MAX);
        cr_assert_eq(fl_cursor_decode(got, c->kind, &back), FL_OK, "%s", got);
        cr_assert(cursor_eq(&back, c), "%s decodes to another cursor", got);
    }
}

Test(cursor, other_kinds_strings_rejected)
{
    for (size_t i = 0; i < NEDGE; i++) {
        char s[FL_CURSOR_MAX];
        fl_cursor_t c;

        fl_cursor_encode(&edge_cursors[i], s);
        for (size_t k = 0; k < NKINDS; k++)
            if (kinds[k] != edge_cursors[i].kind)
                cr_assert_eq(fl_cursor_decode(s, kinds[k], &c), FL_ERR_INVALID, "%s as '%c'", s,
                             kinds[k]);
    }
}

Test(cursor, wrong_kind_letter_rejected)
{
    static const char letters[] = "xCRNFa0 \x7f\xff";
    for (size_t i = 0; i < NEDGE; i++) {
        char s[FL_CURSOR_MAX];
        fl_cursor_t c;

        for (size_t l = 0; l < sizeof(letters) - 1; l++) {
            fl_cursor_encode(&edge_cursors[i], s);
            s[0] = letters[l];
            cr_assert_eq(fl_cursor_decode(s, edge_cursors[i].kind, &c), FL_ERR_INVALID, "%s", s);
        }
        /* the letter of another kind on this kind's fields */
        for (size_t k = 0; k < NKINDS; k++) {
            fl_cursor_encode(&edge_cursors[i], s);
            s[0] = (char)kinds[k];
            if (kinds[k] != edge_cursors[i].kind &&
                fields_of(kinds[k]) == fields_of(edge_cursors[i].kind))
                cr_assert_eq(fl_cursor_decode(s, edge_cursors[i].kind, &c), FL_ERR_INVALID, "%s",
                             s);
        }
    }
}

Test(cursor, one_char_short_or_long_rejected)
{
    for (size_t i = 0; i < NEDGE; i++) {
        char s[FL_CURSOR_MAX + 1];
        size_t len;
        fl_cursor_t c;

        fl_cursor_encode(&edge_cursors[i], s);
        len = strlen(s);
        s[len] = '0';
        s[len + 1] = '\0';
        cr_assert_eq(fl_cursor_decode(s, edge_cursors[i].kind, &c), FL_ERR_INVALID, "%s", s);
        s[len - 1] = '\0';
        cr_assert_eq(fl_cursor_decode(s, edge_cursors[i].kind, &c), FL_ERR_INVALID, "%s", s);
    }
}

Test(cursor, uppercase_and_non_hex_rejected)
{
    static const char bad[] = "gG- +xz\n\t\x80";
    char s[FL_CURSOR_MAX];
    fl_cursor_t c;

    mk2(s, 'c', 0xABCDEF, 0xABCDEF); /* lowercase digits a-f in both fields */
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_CHRONO, &c), FL_OK, "%s", s);
    for (size_t i = 1; s[i]; i++) {
        char t[FL_CURSOR_MAX];
        if (s[i] < 'a')
            continue;
        memcpy(t, s, sizeof(t));
        t[i] = (char)(t[i] - 'a' + 'A');
        cr_assert_eq(fl_cursor_decode(t, FL_CURSOR_CHRONO, &c), FL_ERR_INVALID, "%s", t);
    }
    for (size_t i = 1; i < strlen(s); i++)
        for (size_t b = 0; b < sizeof(bad) - 1; b++) {
            char t[FL_CURSOR_MAX];
            memcpy(t, s, sizeof(t));
            t[i] = bad[b];
            cr_assert_eq(fl_cursor_decode(t, FL_CURSOR_CHRONO, &c), FL_ERR_INVALID,
                         "byte 0x%02x at %zu", (unsigned char)bad[b], i);
        }
}

Test(cursor, empty_and_null_rejected)
{
    fl_cursor_t c;
    for (size_t k = 0; k < NKINDS; k++) {
        cr_assert_eq(fl_cursor_decode("", kinds[k], &c), FL_ERR_INVALID);
        cr_assert_eq(fl_cursor_decode(NULL, kinds[k], &c), FL_ERR_INVALID);
    }
}

Test(cursor, negative_and_zero_fields_rejected)
{
    static const int64_t neg[] = {-1, INT64_MIN};
    char s[FL_CURSOR_MAX];
    fl_cursor_t c;

    for (size_t i = 0; i < 2; i++) {
        int64_t n = neg[i];
        mk2(s, 'c', n, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_CHRONO, &c), FL_ERR_INVALID, "%s", s);
        mk2(s, 'c', 1, n);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_CHRONO, &c), FL_ERR_INVALID, "%s", s);
        mk2(s, 'f', n, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_FOLLOW, &c), FL_ERR_INVALID, "%s", s);
        mk2(s, 'f', 1, n);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_FOLLOW, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'r', n, 1, 1, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_RANKED, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'r', 1, n, 1, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_RANKED, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'r', 1, 1, n, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_RANKED, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'r', 1, 1, 1, n);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_RANKED, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'n', n, 1, 1, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'n', 1, 1, n, 1);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_ERR_INVALID, "%s", s);
        mk4(s, 'n', 1, 1, 1, n);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_ERR_INVALID, "%s", s);
    }
    mk2(s, 'c', 1, 0);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_CHRONO, &c), FL_ERR_INVALID, "id 0");
    mk2(s, 'f', 1, 0);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_FOLLOW, &c), FL_ERR_INVALID, "user 0");
    mk4(s, 'r', 1, 1, 0, 1);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_RANKED, &c), FL_ERR_INVALID, "ranked id 0");
    mk4(s, 'n', 1, 1, 0, 1);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_ERR_INVALID, "actor 0");
}

Test(cursor, ranked_offset_bounds)
{
    static const struct {
        int64_t offset;
        fl_err_t want;
    } cases[] = {{0, FL_ERR_INVALID},      {1, FL_OK},
                 {99999, FL_OK},           {100000, FL_OK},
                 {100001, FL_ERR_INVALID}, {INT64_MAX, FL_ERR_INVALID}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char s[FL_CURSOR_MAX];
        fl_cursor_t c;
        mk4(s, 'r', 1700000005000, 1700000000000, 101, cases[i].offset);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_RANKED, &c), cases[i].want, "offset %" PRId64,
                     cases[i].offset);
    }
}

Test(cursor, notif_kind_must_be_like_or_follow)
{
    static const int64_t bad[] = {0, 3, -1, 256 + FL_NOTIF_LIKE, ((int64_t)1 << 32) + 1};
    char s[FL_CURSOR_MAX];
    fl_cursor_t c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mk4(s, 'n', 1, bad[i], 2, 101);
        cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_ERR_INVALID, "kind %" PRId64,
                     bad[i]);
    }
    mk4(s, 'n', 1, FL_NOTIF_LIKE, 2, 101);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_OK);
    cr_assert_eq(c.notif.kind, FL_NOTIF_LIKE);
    mk4(s, 'n', 1, FL_NOTIF_FOLLOW, 2, 0);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_NOTIF, &c), FL_OK);
    cr_assert_eq(c.notif.kind, FL_NOTIF_FOLLOW);
}

/* Copies s so that its NUL is the last readable byte: the next page is
 * inaccessible. The mapping is two pages at *map (munmap with 2 * page). */
static const char *at_page_end(const char *s, void **map)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = strlen(s) + 1;
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + page, page, PROT_NONE), 0);
    memcpy(m + page - n, s, n);
    *map = m;
    return m + page - n;
}

Test(cursor, decode_never_reads_past_the_nul)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    for (size_t i = 0; i < NEDGE; i++) {
        char full[FL_CURSOR_MAX];
        size_t len;

        fl_cursor_encode(&edge_cursors[i], full);
        len = strlen(full);
        /* every prefix, the full string included, as every kind */
        for (size_t cut = 0; cut <= len; cut++) {
            char pre[FL_CURSOR_MAX];
            void *map;
            const char *s;

            memcpy(pre, full, cut);
            pre[cut] = '\0';
            s = at_page_end(pre, &map);
            for (size_t k = 0; k < NKINDS; k++) {
                fl_cursor_t c;
                fl_err_t want =
                    cut == len && kinds[k] == edge_cursors[i].kind ? FL_OK : FL_ERR_INVALID;
                cr_assert_eq(fl_cursor_decode(s, kinds[k], &c), want, "'%s' as '%c'", s, kinds[k]);
            }
            munmap(map, 2 * page);
        }
    }
}

Test(cursor, nul_inside_ends_the_string)
{
    char s[2 * FL_CURSOR_MAX];
    fl_cursor_t c;

    mk2(s, 'c', 1700000000000, 101);
    /* a NUL in the middle: the decoder sees a short string */
    s[17] = '\0';
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_CHRONO, &c), FL_ERR_INVALID);
    /* a full cursor followed by a NUL and more: only the C string counts */
    mk2(s, 'c', 1700000000000, 101);
    memcpy(s + 34, "zz", 3);
    cr_assert_eq(fl_cursor_decode(s, FL_CURSOR_CHRONO, &c), FL_OK);
    cr_assert_eq(c.pos.id, 101);
}

/* ---- fl_id_parse -------------------------------------------------------- */

Test(id_parse, accepts_1_to_int64_max)
{
    int64_t v = 0;
    cr_assert(fl_id_parse("1", &v));
    cr_assert_eq(v, 1);
    cr_assert(fl_id_parse("42", &v));
    cr_assert_eq(v, 42);
    cr_assert(fl_id_parse("9223372036854775807", &v));
    cr_assert_eq(v, INT64_MAX);
}

Test(id_parse, rejects_zero_signs_spaces_overflow_and_junk)
{
    static const char *bad[] = {"0",
                                "01",
                                "00",
                                "-1",
                                "+1",
                                " 1",
                                "1 ",
                                "9223372036854775808",
                                "18446744073709551615",
                                "18446744073709551616",
                                "12345678901234567890",
                                "99999999999999999999",
                                "",
                                "1a",
                                "a1",
                                "0x1",
                                "1.0",
                                "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 77;
        cr_assert_not(fl_id_parse(bad[i], &v), "'%s' parsed", bad[i]);
        cr_assert_eq(v, 77, "'%s' wrote the output", bad[i]);
    }
    cr_assert_not(fl_id_parse(NULL, &(int64_t){0}));
}

/* ---- query parameters --------------------------------------------------- */

static char why[160];

static fl_err_t qset(fl_query_t *q, unsigned allowed, fl_cursor_kind_t kind, const char *key,
                     const char *value)
{
    why[0] = '\0';
    return fl_query_set(q, allowed, kind, key, value, why, sizeof(why));
}

static fl_err_t qfinish(fl_query_t *q)
{
    why[0] = '\0';
    return fl_query_finish(q, why, sizeof(why));
}

/* each of bad[0..n) for key on the feed: rejected with a message naming key */
static void expect_rejected(fl_query_t *q, const char *key, const char *const *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(qset(q, FEED, FL_CURSOR_CHRONO, key, bad[i]), FL_ERR_INVALID, "%s='%s'", key,
                     bad[i] ? bad[i] : "(no value)");
        cr_assert(strstr(why, key), "%s='%s': %s", key, bad[i] ? bad[i] : "(no value)", why);
    }
}

Test(query, defaults)
{
    fl_query_t q;
    fl_query_init(&q);
    cr_assert_eq(q.limit, 20);
    cr_assert_not(q.has_cursor);
    cr_assert_eq(q.order, FL_ORDER_CHRONO);
    cr_assert_not(q.explain);
    cr_assert_eq(qfinish(&q), FL_OK);
}

Test(query, limit_1_and_100_accepted)
{
    fl_query_t q;
    fl_query_init(&q);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_CHRONO, "limit", "1"), FL_OK);
    cr_assert_eq(q.limit, 1);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_CHRONO, "limit", "100"), FL_OK);
    cr_assert_eq(q.limit, 100);
    cr_assert_eq(qfinish(&q), FL_OK);
}

Test(query, bad_limit_rejected_naming_limit)
{
    static const char *bad[] = {"0", "101", "-1", "abc", "", "1000", "020", "1.5", " 5", NULL};
    fl_query_t q;

    fl_query_init(&q);
    expect_rejected(&q, "limit", bad, sizeof(bad) / sizeof(bad[0]));
    cr_assert_eq(q.limit, 20, "a rejected value changed the limit");
}

Test(query, unknown_parameter_rejected_naming_it)
{
    fl_query_t q;
    char key[100], named[40];

    fl_query_init(&q);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "foo", "bar"), FL_ERR_INVALID);
    cr_assert(strstr(why, "'foo'"), "%s", why);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "Limit", "5"), FL_ERR_INVALID);
    cr_assert(strstr(why, "'Limit'"), "%s", why);

    /* a long name: the message holds its first 32 bytes only */
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, key, "1"), FL_ERR_INVALID);
    snprintf(named, sizeof(named), "'%.32s'", key);
    cr_assert(strstr(why, named), "%s", why);
    cr_assert_null(strstr(why, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"), "%s", why); /* 33 */
}

Test(query, parameter_the_endpoint_does_not_take_rejected)
{
    static const struct {
        unsigned allowed;
        const char *key, *value;
    } cases[] = {
        {LIST, "order", "ranked"},
        {LIST, "explain", "1"},
        {0, "limit", "5"},
        {0, "cursor", "c"},
        {FEED & ~FL_Q_LIMIT, "limit", "5"},
        {FEED & ~FL_Q_EXPLAIN, "explain", "0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_query_t q;
        fl_query_init(&q);
        cr_assert_eq(qset(&q, cases[i].allowed, FL_CURSOR_CHRONO, cases[i].key, cases[i].value),
                     FL_ERR_INVALID, "%s", cases[i].key);
        cr_assert(strstr(why, cases[i].key), "%s: %s", cases[i].key, why);
    }
}

Test(query, order_chrono_or_ranked)
{
    fl_query_t q;
    fl_query_init(&q);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "order", "ranked"), FL_OK);
    cr_assert_eq(q.order, FL_ORDER_RANKED);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "order", "chrono"), FL_OK);
    cr_assert_eq(q.order, FL_ORDER_CHRONO);
    static const char *bad[] = {"Ranked", "", "ranked ", "rank", "1"};
    expect_rejected(&q, "order", bad, sizeof(bad) / sizeof(bad[0]));
    cr_assert_eq(q.order, FL_ORDER_CHRONO);
}

Test(query, explain_1_0_true_false)
{
    static const struct {
        const char *v;
        bool want;
    } ok[] = {{"1", true}, {"0", false}, {"true", true}, {"false", false}};
    fl_query_t q;

    fl_query_init(&q);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "explain", ok[i].v), FL_OK, "%s", ok[i].v);
        cr_assert_eq(q.explain, ok[i].want, "%s", ok[i].v);
    }
    static const char *bad[] = {"yes", "TRUE", "", "2", "01"};
    expect_rejected(&q, "explain", bad, sizeof(bad) / sizeof(bad[0]));
    cr_assert_not(q.explain);
}

Test(query, ranked_cursor_on_the_feed_needs_order_ranked)
{
    char r[FL_CURSOR_MAX];
    fl_query_t q;

    mk4(r, 'r', 1700000005000, 1700000000000, 101, 20);
    fl_query_init(&q);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "cursor", r), FL_OK, "%s", why);
    cr_assert(q.has_cursor);
    cr_assert_eq(q.cursor.kind, FL_CURSOR_RANKED);
    cr_assert_eq(q.cursor.offset, 20);
    cr_assert_eq(qfinish(&q), FL_ERR_INVALID);
    cr_assert(strstr(why, "cursor"), "%s", why);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "order", "ranked"), FL_OK);
    cr_assert_eq(qfinish(&q), FL_OK, "%s", why);

    /* the order given first */
    fl_query_init(&q);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "order", "ranked"), FL_OK);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "cursor", r), FL_OK);
    cr_assert_eq(qfinish(&q), FL_OK, "%s", why);
}

Test(query, ranked_cursor_where_the_endpoint_does_not_order_rejected)
{
    char r[FL_CURSOR_MAX];
    fl_query_t q;

    mk4(r, 'r', 1700000005000, 1700000000000, 101, 20);
    fl_query_init(&q);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_CHRONO, "cursor", r), FL_ERR_INVALID);
    cr_assert(strstr(why, "cursor"), "%s", why);
    cr_assert_not(q.has_cursor);
}

Test(query, chrono_cursor_with_order_ranked_rejected_by_finish)
{
    char c[FL_CURSOR_MAX];
    fl_query_t q;

    mk2(c, 'c', 1700000000000, 101);
    fl_query_init(&q);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "cursor", c), FL_OK, "%s", why);
    cr_assert_eq(q.cursor.kind, FL_CURSOR_CHRONO);
    cr_assert_eq(qfinish(&q), FL_OK, "%s", why);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "order", "ranked"), FL_OK);
    cr_assert_eq(qfinish(&q), FL_ERR_INVALID);
    cr_assert(strstr(why, "cursor"), "%s", why);
}

Test(query, cursor_of_another_kind_rejected)
{
    char c[FL_CURSOR_MAX], n[FL_CURSOR_MAX], f[FL_CURSOR_MAX];
    fl_query_t q;

    mk2(c, 'c', 1700000000000, 101);
    mk4(n, 'n', 1700000000000, FL_NOTIF_LIKE, 2, 101);
    mk2(f, 'f', 1700000000000, 7);
    fl_query_init(&q);
    /* a notification cursor where a chrono one is wanted, feed or posts */
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "cursor", n), FL_ERR_INVALID);
    cr_assert(strstr(why, "cursor"), "%s", why);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_CHRONO, "cursor", n), FL_ERR_INVALID);
    cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, "cursor", f), FL_ERR_INVALID);
    cr_assert_not(q.has_cursor);
    /* and the reverse on notifications and follower lists */
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_NOTIF, "cursor", c), FL_ERR_INVALID);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_FOLLOW, "cursor", c), FL_ERR_INVALID);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_NOTIF, "cursor", n), FL_OK, "%s", why);
    cr_assert_eq(q.cursor.kind, FL_CURSOR_NOTIF);
    cr_assert_eq(qfinish(&q), FL_OK, "%s", why);
    fl_query_init(&q);
    cr_assert_eq(qset(&q, LIST, FL_CURSOR_FOLLOW, "cursor", f), FL_OK, "%s", why);
    cr_assert_eq(qfinish(&q), FL_OK, "%s", why);
}

/* the longest run of ch in s */
static size_t run_of(const char *s, char ch)
{
    size_t best = 0, cur = 0;
    for (; *s; s++) {
        cur = *s == ch ? cur + 1 : 0;
        best = cur > best ? cur : best;
    }
    return best;
}

Test(query, messages_hold_only_a_few_bytes_of_a_hostile_value)
{
    static const char *keys[] = {"limit", "cursor", "order", "explain"};
    size_t n = 10 * 1024;
    char *big = malloc(n + 1);
    fl_query_t q;

    cr_assert_not_null(big);
    for (size_t fill = 0; fill < 3; fill++) {
        /* Z, digits (a limit-looking value), hex (a cursor-looking one) */
        memset(big, fill == 0 ? 'Z' : fill == 1 ? '9' : 'c', n);
        big[n] = '\0';
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            fl_query_init(&q);
            cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, keys[i], big), FL_ERR_INVALID, "%s",
                         keys[i]);
            cr_assert(strstr(why, keys[i]), "%s", why);
            cr_assert_leq(run_of(why, big[0]), 8, "%s: %s", keys[i], why);
            cr_assert_lt(strlen(why), 100, "%s", why);
        }
        /* a hostile name: at most its first 32 bytes */
        fl_query_init(&q);
        cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, big, "1"), FL_ERR_INVALID);
        cr_assert_leq(run_of(why, big[0]), 32, "%s", why);
        cr_assert_lt(strlen(why), 100, "%s", why);
    }
    free(big);
}

Test(query, message_fits_a_small_buffer)
{
    char small[8];
    fl_query_t q;

    fl_query_init(&q);
    memset(small, 'x', sizeof(small));
    cr_assert_eq(fl_query_set(&q, FEED, FL_CURSOR_CHRONO, "unknown", "v", small, sizeof(small)),
                 FL_ERR_INVALID);
    cr_assert(memchr(small, '\0', sizeof(small)), "not NUL-terminated");
}

/* true when s is well-formed UTF-8 (shortest forms, no surrogates) */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n;
        uint32_t cp;
        if (*p < 0x80) {
            p++;
            continue;
        }
        if ((*p & 0xE0) == 0xC0)
            n = 1, cp = *p & 0x1F;
        else if ((*p & 0xF0) == 0xE0)
            n = 2, cp = *p & 0x0F;
        else if ((*p & 0xF8) == 0xF0)
            n = 3, cp = *p & 0x07;
        else
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

/*
 * BUG (connectors/api/fl_api_model.c, fl_query_set): the message for an
 * unknown parameter copies the raw name with '%.32s'. Names arrive
 * URL-decoded, so they can hold any byte ("%FF" is 0xff), and the 32-byte
 * cut can split a multi-byte character ("é" at bytes 32-33). The message
 * then is not UTF-8, and the server's JSON error body (json_string() in
 * fl__api_error) drops it: the client gets a 400 without a message. The
 * message should stay UTF-8 (escape or drop bytes that are not, and cut
 * on a character boundary). Left failing until fl_query_set is fixed.
 */
Test(query, unknown_parameter_message_is_utf8)
{
    static const char *keys[] = {
        "\xff",                                    /* %FF */
        "caf\xc3",                                 /* a truncated sequence in the name itself */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9", /* 31 bytes, then é across the cut */
        "\xed\xa0\x80",                            /* a surrogate */
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        fl_query_t q;
        fl_query_init(&q);
        cr_assert_eq(qset(&q, FEED, FL_CURSOR_CHRONO, keys[i], "1"), FL_ERR_INVALID);
        cr_expect(utf8_valid(why), "key %zu: the message is not UTF-8", i);
    }
}

/* ---- ordering and dedupe ------------------------------------------------ */

Test(pos, sort_newest_first_ties_by_id_descending)
{
    fl_pos_t v[] = {{10, 1}, {30, 2}, {20, 5}, {20, 9}, {20, 7}, {0, 3}, {30, 1}};
    /* id 1 twice (ts 10 and 30): only the newest copy stays */
    const fl_pos_t want[] = {{30, 2}, {30, 1}, {20, 9}, {20, 7}, {20, 5}, {0, 3}};
    size_t n = fl_pos_sort_unique(v, sizeof(v) / sizeof(v[0]));

    cr_assert_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        cr_assert(v[i].ts == want[i].ts && v[i].id == want[i].id,
                  "at %zu: (%" PRId64 ", %" PRId64 ")", i, v[i].ts, v[i].id);
}

Test(pos, distinct_ids_only_sorted)
{
    fl_pos_t v[] = {{10, 4}, {30, 2}, {20, 5}, {20, 9}, {20, 7}, {0, 3}, {30, 1}};
    const fl_pos_t want[] = {{30, 2}, {30, 1}, {20, 9}, {20, 7}, {20, 5}, {10, 4}, {0, 3}};
    size_t n = fl_pos_sort_unique(v, 7);

    cr_assert_eq(n, 7);
    for (size_t i = 0; i < n; i++)
        cr_assert(v[i].ts == want[i].ts && v[i].id == want[i].id, "at %zu", i);
}

Test(pos, exact_duplicates_removed_keeping_one)
{
    fl_pos_t v[] = {{5, 1}, {5, 1}, {5, 1}, {7, 2}, {7, 2}};
    size_t n = fl_pos_sort_unique(v, 5);

    cr_assert_eq(n, 2);
    cr_assert(v[0].ts == 7 && v[0].id == 2);
    cr_assert(v[1].ts == 5 && v[1].id == 1);
}

Test(pos, empty_and_single)
{
    fl_pos_t v[] = {{1, 1}};
    cr_assert_eq(fl_pos_sort_unique(NULL, 0), 0);
    cr_assert_eq(fl_pos_sort_unique(v, 1), 1);
    cr_assert(v[0].ts == 1 && v[0].id == 1);
}

/* the reference: insertion sort newest first, then keep the first (the
 * newest) copy of each id, in order */
static size_t ref_sort_unique(fl_pos_t *v, size_t n)
{
    size_t out = 0;

    for (size_t i = 1; i < n; i++) {
        fl_pos_t x = v[i];
        size_t j = i;
        while (j > 0 && (x.ts > v[j - 1].ts || (x.ts == v[j - 1].ts && x.id > v[j - 1].id))) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < out; j++)
            seen = seen || v[j].id == v[i].id;
        if (!seen)
            v[out++] = v[i];
    }
    return out;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    /* xorshift64: fixed seed, the same arrays every run */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

Test(pos, model_random_arrays_match_reference)
{
    for (int round = 0; round < 1000; round++) {
        size_t n = (size_t)(rng() % 64);
        /* small ranges so ties on ts and repeated ids are common */
        int64_t ts_range = (int64_t)(rng() % 8) + 1, id_range = (int64_t)(rng() % 40) + 1;
        fl_pos_t got[64], want[64];
        size_t ng, nw;

        for (size_t i = 0; i < n; i++) {
            got[i].ts = (int64_t)(rng() % (uint64_t)ts_range);
            got[i].id = (int64_t)(rng() % (uint64_t)id_range) + 1;
            if (rng() % 50 == 0)
                got[i].ts = INT64_MAX;
        }
        memcpy(want, got, n * sizeof(got[0]));
        ng = fl_pos_sort_unique(got, n);
        nw = ref_sort_unique(want, n);
        cr_assert_eq(ng, nw, "round %d: %zu items, got %zu want %zu", round, n, ng, nw);
        for (size_t i = 0; i < ng; i++)
            cr_assert(got[i].ts == want[i].ts && got[i].id == want[i].id,
                      "round %d at %zu: (%" PRId64 ", %" PRId64 ") want (%" PRId64 ", %" PRId64 ")",
                      round, i, got[i].ts, got[i].id, want[i].ts, want[i].id);
    }
}

Test(pos, newer_is_a_strict_order)
{
    cr_assert(fl_pos_newer((fl_pos_t){2, 1}, (fl_pos_t){1, 9}));
    cr_assert(fl_pos_newer((fl_pos_t){1, 9}, (fl_pos_t){1, 8}));
    cr_assert_not(fl_pos_newer((fl_pos_t){1, 8}, (fl_pos_t){1, 8}));
    cr_assert_not(fl_pos_newer((fl_pos_t){1, 8}, (fl_pos_t){1, 9}));
}

/* ---- visibility --------------------------------------------------------- */

Test(visible, matrix)
{
    enum { AUTHOR, FOLLOWER, STRANGER };
    static const bool want[3][3] = {
        /* author follower stranger */
        [FL_VIS_PUBLIC] = {true, true, true},
        [FL_VIS_FOLLOWERS] = {true, true, false},
        [FL_VIS_PRIVATE] = {true, false, false},
    };
    for (int vis = 0; vis < 3; vis++) {
        fl_post_t p = {.post_id = 101, .author_id = 1, .visibility = vis};
        cr_assert_eq(fl_post_visible(&p, 1, false), want[vis][AUTHOR], "%s, author",
                     fl_vis_str(vis));
        cr_assert_eq(fl_post_visible(&p, 1, true), want[vis][AUTHOR], "%s, author",
                     fl_vis_str(vis));
        cr_assert_eq(fl_post_visible(&p, 2, true), want[vis][FOLLOWER], "%s, follower",
                     fl_vis_str(vis));
        cr_assert_eq(fl_post_visible(&p, 3, false), want[vis][STRANGER], "%s, stranger",
                     fl_vis_str(vis));
    }
}

Test(visible, parse_and_str)
{
    cr_assert_eq(fl_vis_parse("public"), FL_VIS_PUBLIC);
    cr_assert_eq(fl_vis_parse("followers"), FL_VIS_FOLLOWERS);
    cr_assert_eq(fl_vis_parse("private"), FL_VIS_PRIVATE);
    /* Redis keeps the schema's spelling (PUBLIC), PostgreSQL the API's */
    cr_assert_eq(fl_vis_parse("PUBLIC"), FL_VIS_PUBLIC);
    cr_assert_eq(fl_vis_parse("Followers"), FL_VIS_FOLLOWERS);
    cr_assert_eq(fl_vis_parse("publics"), -1);
    cr_assert_eq(fl_vis_parse(""), -1);
    cr_assert_eq(fl_vis_parse(NULL), -1);
    for (int v = 0; v < 3; v++)
        cr_assert_eq(fl_vis_parse(fl_vis_str(v)), v);
}

/* ---- notifications ------------------------------------------------------ */

Test(notif, sort_by_created_kind_actor_post_descending)
{
    fl_notif_t v[] = {
        {100, FL_NOTIF_LIKE, 5, 10},  {200, FL_NOTIF_LIKE, 1, 1}, {100, FL_NOTIF_FOLLOW, 1, 0},
        {100, FL_NOTIF_LIKE, 5, 11},  {100, FL_NOTIF_LIKE, 6, 1}, {50, FL_NOTIF_FOLLOW, 9, 0},
        {100, FL_NOTIF_FOLLOW, 2, 0},
    };
    const fl_notif_t want[] = {
        {200, FL_NOTIF_LIKE, 1, 1},  {100, FL_NOTIF_FOLLOW, 2, 0}, {100, FL_NOTIF_FOLLOW, 1, 0},
        {100, FL_NOTIF_LIKE, 6, 1},  {100, FL_NOTIF_LIKE, 5, 11},  {100, FL_NOTIF_LIKE, 5, 10},
        {50, FL_NOTIF_FOLLOW, 9, 0},
    };
    size_t n = sizeof(v) / sizeof(v[0]);

    fl_notif_sort(v, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(v[i].created_at == want[i].created_at && v[i].kind == want[i].kind &&
                      v[i].actor_id == want[i].actor_id && v[i].post_id == want[i].post_id,
                  "at %zu", i);
    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert(fl_notif_newer(&v[i], &v[i + 1]), "at %zu", i);
        cr_assert_not(fl_notif_newer(&v[i + 1], &v[i]), "at %zu", i);
    }
    cr_assert_not(fl_notif_newer(&v[0], &v[0]));
}

/* ---- ranking ------------------------------------------------------------ */

static const fl_rank_weights_t W = {
    .half_life_s = 3600, .recency = 2.0, .likes = 0.5, .affinity = 0.25};

Test(rank, recency_at_age_0_is_the_weight)
{
    fl_score_t s = fl_rank_score(&W, 1700000000000, 1700000000000, 0, 0);
    cr_assert_eq(s.recency, W.recency);
    cr_assert_eq(s.likes, 0.0);
    cr_assert_eq(s.affinity, 0.0);
    cr_assert_eq(s.total, W.recency);
}

Test(rank, recency_halves_at_one_half_life)
{
    int64_t now = 1700000000000;
    fl_score_t s = fl_rank_score(&W, now, now - (int64_t)(W.half_life_s * 1000), 0, 0);
    cr_assert_float_eq(s.recency, W.recency / 2, 1e-12);
    s = fl_rank_score(&W, now, now - 2 * (int64_t)(W.half_life_s * 1000), 0, 0);
    cr_assert_float_eq(s.recency, W.recency / 4, 1e-12);
}

Test(rank, likes_and_affinity_are_logarithmic)
{
    static const int64_t counts[] = {0, 1, 2, 10, 1000, 1000000};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        fl_score_t s = fl_rank_score(&W, 0, 0, counts[i], counts[i]);
        cr_assert_float_eq(s.likes, W.likes * log(1.0 + (double)counts[i]), 1e-9, "%" PRId64,
                           counts[i]);
        cr_assert_float_eq(s.affinity, W.affinity * log(1.0 + (double)counts[i]), 1e-9, "%" PRId64,
                           counts[i]);
    }
}

Test(rank, negative_counts_clamp_to_0)
{
    fl_score_t s = fl_rank_score(&W, 0, 0, -5, INT64_MIN);
    cr_assert_eq(s.likes, 0.0);
    cr_assert_eq(s.affinity, 0.0);
}

Test(rank, future_created_at_counts_as_age_0)
{
    fl_score_t s = fl_rank_score(&W, 1000, 999999999, 0, 0);
    cr_assert_eq(s.recency, W.recency);
}

Test(rank, total_is_the_sum_of_parts)
{
    int64_t now = 1700000000000;
    for (int i = 0; i < 50; i++) {
        fl_score_t s = fl_rank_score(&W, now, now - i * 600000, i * 7, i * 3);
        cr_assert_eq(s.total, s.recency + s.likes + s.affinity, "%d", i);
        cr_assert_gt(s.recency, 0.0);
        cr_assert_leq(s.recency, W.recency);
    }
}

Test(rank, order_by_score_then_post_id_descending)
{
    fl_post_t posts[] = {
        {.post_id = 10}, {.post_id = 30}, {.post_id = 20}, {.post_id = 40}, {.post_id = 50}};
    fl_score_t scores[] = {
        {.total = 1.0}, {.total = 2.0}, {.total = 2.0}, {.total = 0.5}, {.total = 2.0}};
    const int64_t want[] = {50, 30, 20, 10, 40};
    size_t idx[5];

    for (int round = 0; round < 20; round++) {
        /* the same items in another starting order rank the same */
        for (size_t i = 0; i < 5; i++)
            idx[i] = (i + (size_t)round) % 5;
        if (round % 2)
            for (size_t i = 0; i < 2; i++) {
                size_t t = idx[i];
                idx[i] = idx[4 - i];
                idx[4 - i] = t;
            }
        fl_rank_order(idx, 5, scores, posts);
        for (size_t i = 0; i < 5; i++)
            cr_assert_eq(posts[idx[i]].post_id, want[i], "round %d at %zu", round, i);
    }
    fl_rank_order(idx, 0, scores, posts);
}

/* ---- the fuzz corpora --------------------------------------------------- */

/* Reads every ok-/err- file of corpus/<sub> and calls check on it. */
static size_t replay(const char *sub, void (*check)(const char *name, const char *s, size_t n))
{
    char dir[4096];
    DIR *dp;
    struct dirent *de;
    size_t files = 0;

    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", source_dir(), sub);
    dp = opendir(dir);
    cr_assert_not_null(dp, "%s", dir);
    while ((de = readdir(dp))) {
        char path[8192], *data;
        long n;
        FILE *f;

        if (de->d_name[0] == '.')
            continue;
        cr_assert(!strncmp(de->d_name, "ok-", 3) || !strncmp(de->d_name, "err-", 4),
                  "corpus file %s must be named ok-* or err-*", de->d_name);
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        data = malloc((size_t)n + 1);
        cr_assert_not_null(data);
        cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
        data[n] = '\0';
        fclose(f);
        check(de->d_name, data, (size_t)n);
        free(data);
        files++;
    }
    closedir(dp);
    return files;
}

static size_t cursor_oks;

static void check_cursor_file(const char *name, const char *s, size_t n)
{
    static const char *names[NKINDS] = {"ok-chrono-", "ok-ranked-", "ok-notif-", "ok-follow-"};
    int want = -1;

    (void)n;
    for (int k = 0; k < NKINDS; k++)
        if (!strncmp(name, names[k], strlen(names[k])))
            want = k;
    cr_assert(want >= 0 || !strncmp(name, "err-", 4), "%s: ok- files name their kind", name);
    for (int k = 0; k < NKINDS; k++) {
        fl_cursor_t c;
        char again[FL_CURSOR_MAX];
        fl_err_t got = fl_cursor_decode(s, kinds[k], &c);

        cr_assert_eq(got, k == want ? FL_OK : FL_ERR_INVALID, "%s as '%c'", name, kinds[k]);
        if (got != FL_OK)
            continue;
        fl_cursor_encode(&c, again);
        cr_assert_str_eq(again, s, "%s re-encodes differently", name);
        cursor_oks++;
    }
}

Test(corpus, cursor_replay_matches_file_names)
{
    size_t files = replay("cursor", check_cursor_file);
    cr_assert_geq(files, 15, "cursor corpus has only %zu files", files);
    cr_assert_geq(cursor_oks, 4, "cursor corpus has only %zu ok- files", cursor_oks);
}

static size_t query_oks;

static void check_query_file(const char *name, const char *s, size_t n)
{
    fl_query_t q;
    char msg[160] = "";
    fl_err_t got;

    fl_query_init(&q);
    got = fl_test_query_apply(s, n, &q, FEED, FL_CURSOR_CHRONO, msg, sizeof(msg));
    if (!strncmp(name, "ok-", 3)) {
        cr_assert_eq(got, FL_OK, "%s: %s", name, msg);
        cr_assert(q.limit >= 1 && q.limit <= 100, "%s", name);
        query_oks++;
        return;
    }
    cr_assert_eq(got, FL_ERR_INVALID, "%s accepted", name);
    /* err-<param>-...: the message names <param> */
    char param[32];
    const char *end = strchr(name + 4, '-');
    size_t len = end ? (size_t)(end - (name + 4)) : strlen(name + 4);
    cr_assert_lt(len, sizeof(param), "%s", name);
    memcpy(param, name + 4, len);
    param[len] = '\0';
    if (!strcmp(param, "unknown"))
        cr_assert(strstr(msg, "unknown parameter"), "%s: %s", name, msg);
    else
        cr_assert(strstr(msg, param), "%s: the message does not name %s: %s", name, param, msg);
    cr_assert_lt(strlen(msg), 100, "%s: %s", name, msg);
}

Test(corpus, query_replay_matches_file_names)
{
    size_t files = replay("query", check_query_file);
    cr_assert_geq(files, 15, "query corpus has only %zu files", files);
    cr_assert_geq(query_oks, 4, "query corpus has only %zu ok- files", query_oks);
}
