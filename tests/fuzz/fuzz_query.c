/*
 * fuzz_query.c - libFuzzer target for fl_query_set() and fl_query_finish().
 *
 * The input is a query string (what follows '?'); query_split.h splits and
 * URL-decodes it as the HTTP library would and feeds the pairs to the
 * model for every endpoint shape the server has (the feed, a user's posts,
 * notifications, follower lists, and an endpoint taking nothing).
 * Properties, besides never crashing: an accepted query has a limit in
 * 1..100; its cursor is of the endpoint's kind (or ranked on the feed,
 * with order=ranked) and decodes again from its own encoding; a rejected
 * one comes with a NUL-terminated message. Seed corpus:
 * tests/fuzz/corpus/query (names carry the result for the feed; replayed
 * by tests/unit/test_api_model.c).
 *
 *   ./fuzz_query -max_len=4096 tests/fuzz/corpus/query
 */
#include "fl_api_model.h"
#include "query_split.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_query: %s\n", what);
    abort();
}

static void check_accepted(const fl_query_t *q, unsigned allowed, fl_cursor_kind_t kind)
{
    char enc[FL_CURSOR_MAX];
    fl_cursor_t again;

    if (q->limit < 1 || q->limit > 100)
        fail("accepted limit outside 1..100");
    if (!q->has_cursor)
        return;
    if (q->cursor.kind != kind && !((allowed & FL_Q_ORDER) && q->cursor.kind == FL_CURSOR_RANKED))
        fail("accepted a cursor of another endpoint's kind");
    if ((q->cursor.kind == FL_CURSOR_RANKED) != (q->order == FL_ORDER_RANKED))
        fail("accepted a cursor of the other order");
    fl_cursor_encode(&q->cursor, enc);
    if (fl_cursor_decode(enc, q->cursor.kind, &again) != FL_OK)
        fail("an accepted cursor does not decode again");
    if (memcmp(&again.pos, &q->cursor.pos, sizeof(again.pos)) ||
        again.snapshot_ms != q->cursor.snapshot_ms || again.offset != q->cursor.offset ||
        again.notif.created_at != q->cursor.notif.created_at ||
        again.notif.kind != q->cursor.notif.kind ||
        again.notif.actor_id != q->cursor.notif.actor_id ||
        again.notif.post_id != q->cursor.notif.post_id)
        fail("an accepted cursor decodes to something else");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        unsigned allowed;
        fl_cursor_kind_t kind;
    } endpoints[] = {
        {FL_Q_LIMIT | FL_Q_CURSOR | FL_Q_ORDER | FL_Q_EXPLAIN, FL_CURSOR_CHRONO}, /* feed */
        {FL_Q_LIMIT | FL_Q_CURSOR, FL_CURSOR_CHRONO},                             /* posts */
        {FL_Q_LIMIT | FL_Q_CURSOR, FL_CURSOR_NOTIF},
        {FL_Q_LIMIT | FL_Q_CURSOR, FL_CURSOR_FOLLOW},
        {0, FL_CURSOR_CHRONO},
    };

    for (size_t e = 0; e < sizeof(endpoints) / sizeof(endpoints[0]); e++) {
        fl_query_t q;
        char why[160];
        fl_err_t err;

        fl_query_init(&q);
        memset(why, 'x', sizeof(why));
        err = fl_test_query_apply((const char *)data, size, &q, endpoints[e].allowed,
                                  endpoints[e].kind, why, sizeof(why));
        if (err == FL_OK)
            check_accepted(&q, endpoints[e].allowed, endpoints[e].kind);
        else if (err == FL_ERR_INVALID && !memchr(why, '\0', sizeof(why)))
            fail("a rejection without a NUL-terminated message");
    }
    return 0;
}
