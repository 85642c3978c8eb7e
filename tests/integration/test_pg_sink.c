/*
 * test_pg_sink.c - the PostgreSQL sink's callbacks against the real
 * PostgreSQL of the local stack (FEEDLINE_POSTGRES, else the topology's
 * endpoint), with synthetic records: no Kafka. Every test uses its own
 * sink name and ids, so runs share the database without meeting.
 * it_pg_sink_restart stops and starts PostgreSQL through ops/stack.
 */
#include "fl_engage.h"
#include "fl_keys.h"
#include "fl_pg_sink.h"
#include "fl_topology.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static fl_topology_t *topo;
static PGconn *db;
static int64_t base; /* ids of this test: base + small numbers */
static char sink_name[64];

static void setup(void)
{
    char errstr[256];
    struct timespec ts;
    topo = fl_topology_load(fl_topology_default_path(), errstr, sizeof(errstr));
    cr_assert(topo, "topology: %s", errstr);
    db = PQconnectdb(topo->endpoints.postgres);
    cr_assert(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    clock_gettime(CLOCK_REALTIME, &ts);
    base = ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000) * 100;
    snprintf(sink_name, sizeof(sink_name), "test-%lld", (long long)base);
}

static void teardown(void)
{
    PQfinish(db);
    fl_topology_free(topo);
}

TestSuite(it_pg_sink, .init = setup, .fini = teardown);

static void *sink_open(void)
{
    fl_sink_env_t env = {.topo = topo, .name = sink_name, .instance = "0"};
    void *st = NULL;
    fl_err_t err = fl_pg_sink.open(&env, &st);
    cr_assert_eq(err, FL_OK, "open: %s", fl_err_str(err));
    return st;
}

/* One value of a query with $1 = base (NULL when no row), as a string. */
static char *q(const char *sql)
{
    static char out[256];
    char b[24];
    const char *params[1] = {b};
    const Oid types[1] = {20}; /* int8 */
    snprintf(b, sizeof(b), "%lld", (long long)base);
    PGresult *res = PQexecParams(db, sql, 1, types, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(db));
    if (!PQntuples(res) || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return NULL;
    }
    snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

static void expect(const char *sql, const char *want)
{
    const char *got = q(sql);
    if (!want)
        cr_expect_null(got, "%s: got %s, want no value", sql, got);
    else
        cr_expect(got && !strcmp(got, want), "%s: got %s, want %s", sql, got ? got : "(none)",
                  want);
}

static int64_t next_offset = 0;

static void add(void *st, const fl_proc_record_t *rec)
{
    char errstr[256] = "";
    fl_proc_record_t r = *rec;
    r.offset = next_offset++;
    fl_err_t err = fl_pg_sink.add(st, &r, errstr, sizeof(errstr));
    cr_assert_eq(err, FL_OK, "add: %s %s", fl_err_str(err), errstr);
}

static void add_event(void *st, const char *topic, const fl_event_t *ev)
{
    fl_proc_record_t r = {.topic = topic, .event = ev};
    add(st, &r);
}

static void add_fact(void *st, fl_fact_kind_t kind, int64_t a, int64_t b, int64_t c, bool present,
                     int64_t value)
{
    fl_fact_t f = {.kind = kind, .id = {a, b, c}, .present = present, .value = value};
    uint8_t k[FL_FACT_KEY_MAX], v[FL_FACT_VALUE_LEN];
    if (kind == FL_FACT_NOTIFICATION)
        f.nkind = c ? FL_NOTIF_LIKE : FL_NOTIF_FOLLOW;
    size_t klen = fl_fact_key_encode(&f, k);
    size_t vlen = present ? fl_fact_value_encode(&f, v) : 0;
    fl_proc_record_t r = {.topic = "feedline.engagement",
                          .key = k,
                          .key_len = klen,
                          .value = present ? v : NULL,
                          .value_len = vlen};
    add(st, &r);
}

static void add_feed(void *st, int64_t user, int64_t created_at, int64_t post, int64_t author,
                     bool present)
{
    fl_key_t k;
    uint8_t v[8];
    fl_key_timeline(&k, user, created_at, post);
    fl_key_enc_i64(v, author);
    fl_proc_record_t r = {.topic = "feedline.timelines-changelog",
                          .key = k.buf,
                          .key_len = k.len,
                          .value = present ? v : NULL,
                          .value_len = present ? 8 : 0};
    add(st, &r);
}

static const fl_sink_part_t part0 = {"feedline.engagement", 0};

static void claim(void *st, int64_t want_next)
{
    int64_t next = 42;
    cr_assert_eq(fl_pg_sink.claim(st, &part0, 1, &next), FL_OK);
    cr_assert_eq(next, want_next);
}

static fl_err_t flush(void *st, int64_t next)
{
    return fl_pg_sink.flush(st, &part0, &next, 1);
}

Test(it_pg_sink, migrations_are_idempotent)
{
    void *a = sink_open(), *b = sink_open();
    fl_pg_sink.close(b);
    b = sink_open();
    expect("SELECT count(*) FROM schema_migrations WHERE version = 1 AND $1 > 0", "1");
    expect("SELECT name FROM schema_migrations WHERE version = 1 AND $1 > 0", "schema");
    fl_pg_sink.close(a);
    fl_pg_sink.close(b);
}

Test(it_pg_sink, claim_flush_and_offsets_read_back)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    cr_assert_eq(fl_pg_sink.check(st), FL_OK);
    add_fact(st, FL_FACT_LIKE, base + 1, base + 2, 0, true, 1000);
    cr_assert_eq(flush(st, 17), FL_OK);
    cr_assert_eq(flush(st, 18), FL_OK); /* an empty batch moves the offset too */
    fl_pg_sink.close(st);
    st = sink_open();
    claim(st, 18);
    expect("SELECT generation FROM sink_offsets WHERE sink = 'test-' || $1 AND partition = 0", "2");
    expect("SELECT extract(epoch from created_at) * 1000 FROM post_likes"
           " WHERE post_id = $1 + 1 AND user_id = $1 + 2",
           "1000.000000");
    char metrics[4096] = "";
    fl_pg_sink.metrics(st, metrics, sizeof(metrics));
    cr_expect(strstr(metrics, "feedline_pg_sink_flushes_total 0"), "%s", metrics);
    fl_pg_sink.close(st);
}

Test(it_pg_sink, older_owner_is_fenced_and_writes_nothing)
{
    void *old = sink_open(), *new = sink_open();
    claim(old, FL_SINK_NO_OFFSET);
    claim(new, FL_SINK_NO_OFFSET);
    add_fact(old, FL_FACT_FOLLOW, base + 1, base + 2, 0, true, 5);
    add_feed(old, base + 1, 7, base + 3, base + 4, true);
    cr_assert_eq(flush(old, 100), FL_ERR_FENCED);
    expect("SELECT 1 FROM follows WHERE following_id = $1 + 1", NULL);
    expect("SELECT 1 FROM feed_items WHERE user_id = $1 + 1", NULL);
    expect("SELECT next_offset FROM sink_offsets WHERE sink = 'test-' || $1", NULL);
    /* the fenced batch is gone: the older handle writes nothing later either */
    cr_assert_eq(flush(old, 100), FL_ERR_FENCED);
    add_fact(new, FL_FACT_FOLLOW, base + 1, base + 9, 0, true, 5);
    cr_assert_eq(flush(new, 50), FL_OK);
    expect("SELECT follower_id - $1 FROM follows WHERE following_id = $1 + 1", "9");
    expect("SELECT next_offset FROM sink_offsets WHERE sink = 'test-' || $1", "50");
    fl_pg_sink.close(old);
    fl_pg_sink.close(new);
}

Test(it_pg_sink, duplicate_keys_in_one_batch_collapse)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    fl_event_t reg = {.type = FL_EV_USER_REGISTERED,
                      .occurred_at = 1000,
                      .user_id = base + 1,
                      .handle = "ann",
                      .display_name = "Ann"};
    fl_event_t upd = {.type = FL_EV_USER_UPDATED,
                      .occurred_at = 2000,
                      .user_id = base + 1,
                      .bio = "tab\there, quote ' and \\ back"};
    add_event(st, "users", &reg);
    add_event(st, "users", &upd);
    add_fact(st, FL_FACT_LIKE, base + 5, base + 6, 0, true, 1);
    add_fact(st, FL_FACT_LIKE, base + 5, base + 6, 0, false, 0);
    add_fact(st, FL_FACT_LIKE, base + 5, base + 6, 0, true, 3);
    add_fact(st, FL_FACT_LIKE, base + 5, base + 7, 0, true, 4);
    add_fact(st, FL_FACT_LIKE, base + 5, base + 7, 0, false, 0);
    add_fact(st, FL_FACT_FOLLOWERS, base + 1, 0, 0, true, 1);
    add_fact(st, FL_FACT_FOLLOWERS, base + 1, 0, 0, true, 2);
    add_fact(st, FL_FACT_FOLLOWING, base + 1, 0, 0, true, 7);
    add_feed(st, base + 1, 10, base + 11, base + 2, true);
    add_feed(st, base + 1, 10, base + 11, base + 2, false);
    add_feed(st, base + 1, 11, base + 12, base + 2, true);
    add_feed(st, base + 1, 11, base + 12, base + 3, true);
    cr_assert_eq(flush(st, 20), FL_OK);
    expect("SELECT username || '/' || display_name || '/' || bio FROM users WHERE id = $1 + 1",
           "ann/Ann/tab\there, quote ' and \\ back");
    expect("SELECT followers_count || '/' || following_count || '/' || posts_count"
           " FROM users WHERE id = $1 + 1",
           "2/7/0");
    expect("SELECT extract(epoch from created_at) * 1000 || '/' ||"
           " extract(epoch from updated_at) * 1000 FROM users WHERE id = $1 + 1",
           "1000.000000/2000.000000");
    expect("SELECT string_agg((user_id - $1)::text || ':' ||"
           " (extract(epoch from created_at) * 1000)::int, ',') FROM post_likes"
           " WHERE post_id = $1 + 5",
           "6:3");
    expect("SELECT string_agg((post_id - $1)::text || ':' || (author_id - $1), ',')"
           " FROM feed_items WHERE user_id = $1 + 1",
           "12:3");
    fl_pg_sink.close(st);
}

Test(it_pg_sink, withdrawn_facts_delete_rows)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    add_fact(st, FL_FACT_LIKE, base + 1, base + 2, 0, true, 1);
    add_fact(st, FL_FACT_FOLLOW, base + 3, base + 4, 0, true, 1);
    add_fact(st, FL_FACT_NOTIFICATION, base + 3, base + 4, 0, true, 9);        /* follow */
    add_fact(st, FL_FACT_NOTIFICATION, base + 3, base + 2, base + 1, true, 8); /* like */
    add_fact(st, FL_FACT_AFFINITY, base + 2, base + 3, 0, true, 1);
    add_feed(st, base + 4, 5, base + 1, base + 3, true);
    cr_assert_eq(flush(st, 6), FL_OK);
    expect("SELECT count(*) FROM notifications WHERE user_id = $1 + 3", "2");
    expect("SELECT kind FROM notifications WHERE user_id = $1 + 3 AND post_id IS NULL", "follow");
    /* the same facts again: nothing doubles */
    add_fact(st, FL_FACT_NOTIFICATION, base + 3, base + 4, 0, true, 9);
    cr_assert_eq(flush(st, 7), FL_OK);
    expect("SELECT count(*) FROM notifications WHERE user_id = $1 + 3", "2");
    add_fact(st, FL_FACT_LIKE, base + 1, base + 2, 0, false, 0);
    add_fact(st, FL_FACT_FOLLOW, base + 3, base + 4, 0, false, 0);
    add_fact(st, FL_FACT_NOTIFICATION, base + 3, base + 4, 0, false, 0);
    add_fact(st, FL_FACT_AFFINITY, base + 2, base + 3, 0, false, 0);
    add_feed(st, base + 4, 5, base + 1, base + 3, false);
    cr_assert_eq(flush(st, 12), FL_OK);
    expect("SELECT count(*) FROM post_likes WHERE post_id = $1 + 1", "0");
    expect("SELECT count(*) FROM follows WHERE following_id = $1 + 3", "0");
    expect("SELECT count(*) FROM affinity WHERE viewer_id = $1 + 2", "0");
    expect("SELECT count(*) FROM feed_items WHERE user_id = $1 + 4", "0");
    expect("SELECT kind FROM notifications WHERE user_id = $1 + 3", "like");
    fl_pg_sink.close(st);
}

Test(it_pg_sink, posts_are_soft_deleted_and_never_undeleted)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    fl_event_t c1 = {.type = FL_EV_POST_CREATED,
                     .occurred_at = 100,
                     .post_id = base + 1,
                     .author_id = base + 9,
                     .created_at = 100,
                     .text = "one",
                     .visibility = FL_VIS_FOLLOWERS};
    fl_event_t d2 = {
        .type = FL_EV_POST_DELETED, .occurred_at = 200, .post_id = base + 2, .author_id = base + 9};
    fl_event_t c2 = {.type = FL_EV_POST_CREATED,
                     .occurred_at = 300,
                     .post_id = base + 2,
                     .author_id = base + 9,
                     .created_at = 300,
                     .text = "two"};
    add_fact(st, FL_FACT_POST_LIKES, base + 1, 0, 0, true, 4); /* before its post */
    add_event(st, "posts", &c1);
    add_event(st, "posts", &d2);
    cr_assert_eq(flush(st, 3), FL_OK);
    expect("SELECT content_text || '/' || privacy || '/' || likes_count FROM posts"
           " WHERE id = $1 + 1 AND deleted_at IS NULL",
           "one/followers/4");
    add_event(st, "posts", &c2); /* a delete came first: stays deleted */
    fl_event_t other = {
        .type = FL_EV_POST_DELETED, .occurred_at = 400, .post_id = base + 1, .author_id = base + 8};
    add_event(st, "posts", &other); /* another author's delete is ignored */
    cr_assert_eq(flush(st, 5), FL_OK);
    expect("SELECT count(*) FROM posts WHERE id = $1 + 2 AND deleted_at IS NOT NULL", "1");
    expect("SELECT 1 FROM posts WHERE id = $1 + 1 AND deleted_at IS NULL", "1");
    fl_event_t d1 = {
        .type = FL_EV_POST_DELETED, .occurred_at = 500, .post_id = base + 1, .author_id = base + 9};
    add_event(st, "posts", &d1);
    add_event(st, "posts", &c1); /* a replayed create does not undelete */
    cr_assert_eq(flush(st, 7), FL_OK);
    expect("SELECT content_text || '/' || extract(epoch from deleted_at) * 1000 FROM posts"
           " WHERE id = $1 + 1",
           "one/500.000000");
    add_fact(st, FL_FACT_POST_LIKES, base + 1, 0, 0, false, 0);
    cr_assert_eq(flush(st, 8), FL_OK);
    expect("SELECT likes_count FROM posts WHERE id = $1 + 1", "0");
    fl_pg_sink.close(st);
}

Test(it_pg_sink, counts_before_registration_make_no_user)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    add_fact(st, FL_FACT_POSTS, base + 1, 0, 0, true, 3);
    fl_event_t upd = {.type = FL_EV_USER_UPDATED,
                      .occurred_at = 50,
                      .user_id = base + 1,
                      .display_name = "early"};
    add_event(st, "users", &upd);
    cr_assert_eq(flush(st, 2), FL_OK);
    expect("SELECT 1 FROM users WHERE id = $1 + 1", NULL);
    expect("SELECT posts_count FROM user_counts WHERE user_id = $1 + 1", "3");
    fl_event_t reg = {.type = FL_EV_USER_REGISTERED,
                      .occurred_at = 60,
                      .user_id = base + 1,
                      .handle = "bo",
                      .display_name = "Bo"};
    add_event(st, "users", &reg);
    cr_assert_eq(flush(st, 3), FL_OK);
    expect("SELECT display_name || '/' || posts_count FROM users WHERE id = $1 + 1", "Bo/3");
    fl_pg_sink.close(st);
}

Test(it_pg_sink, invalid_records_are_refused_whole)
{
    void *st = sink_open();
    char errstr[256] = "";
    uint8_t k[3] = {FL_FACT_LIKE, 1, 2};
    fl_proc_record_t r = {.topic = "feedline.engagement", .key = k, .key_len = sizeof(k)};
    cr_expect_eq(fl_pg_sink.add(st, &r, errstr, sizeof(errstr)), FL_ERR_INVALID);
    uint8_t tk[25] = {FL_KEY_TAG_TIMELINE};
    fl_proc_record_t t = {.topic = "feedline.timelines-changelog",
                          .key = tk,
                          .key_len = 25,
                          .value = "abc",
                          .value_len = 3};
    cr_expect_eq(fl_pg_sink.add(st, &t, errstr, sizeof(errstr)), FL_ERR_INVALID);
    uint8_t uk[9] = {FL_KEY_TAG_USER};
    fl_proc_record_t u = {.topic = "feedline.timelines-changelog",
                          .key = uk,
                          .key_len = 9,
                          .value = "x",
                          .value_len = 1};
    cr_expect_eq(fl_pg_sink.add(st, &u, errstr, sizeof(errstr)), FL_OK); /* skipped */
    fl_proc_record_t o = {.topic = "likes"};
    cr_expect_eq(fl_pg_sink.add(st, &o, errstr, sizeof(errstr)), FL_ERR_CONFIG);
    fl_pg_sink.close(st);
}

/* New rows of set tables are COPYed straight into the table; a batch
 * that re-applies rows already there is refused by the unique index and
 * must fall back to the staged upsert, with the same result. */
Test(it_pg_sink, direct_copy_falls_back_for_rows_already_there)
{
    void *st = sink_open();
    char metrics[8192] = "";
    claim(st, FL_SINK_NO_OFFSET);
    add_feed(st, base + 1, -1, base + 11, base + 2, true); /* 1969-12-31 23:59:59.999 */
    add_feed(st, base + 1, 1700000000123, base + 12, base + 2, true);
    add_fact(st, FL_FACT_LIKE, base + 5, base + 6, 0, true, 1700000000456);
    add_fact(st, FL_FACT_FOLLOW, base + 7, base + 8, 0, true, 3);
    add_fact(st, FL_FACT_NOTIFICATION, base + 7, base + 8, 0, true, 4);        /* follow */
    add_fact(st, FL_FACT_NOTIFICATION, base + 7, base + 6, base + 5, true, 5); /* like */
    cr_assert_eq(flush(st, 6), FL_OK);
    expect("SELECT string_agg(created_at::text, ',' ORDER BY post_id) FROM feed_items"
           " WHERE user_id = $1 + 1",
           "1969-12-31 23:59:59.999+00,2023-11-14 22:13:20.123+00");
    expect("SELECT created_at::text FROM post_likes WHERE post_id = $1 + 5",
           "2023-11-14 22:13:20.456+00");
    expect("SELECT count(*) FROM notifications WHERE user_id = $1 + 7", "2");
    fl_pg_sink.metrics(st, metrics, sizeof(metrics));
    cr_expect(strstr(metrics, "feedline_pg_sink_direct_copies_total{table=\"feed_items\"} 1"), "%s",
              metrics);
    cr_expect(strstr(metrics, "feedline_pg_sink_direct_fallbacks_total{table=\"feed_items\"} 0"),
              "%s", metrics);
    char xmin[32];
    snprintf(xmin, sizeof(xmin), "%s",
             q("SELECT xmin::text FROM feed_items WHERE user_id = $1 + 1 AND post_id = $1 + 11"));

    /* a replay of the same rows, one changed, one new, one collapsed */
    add_feed(st, base + 1, -1, base + 11, base + 2, true);            /* unchanged */
    add_feed(st, base + 1, 1700000000123, base + 12, base + 3, true); /* new author */
    add_feed(st, base + 1, 1700000000999, base + 13, base + 2, true); /* new row */
    add_feed(st, base + 1, 1700000000999, base + 13, base + 4, true); /* last wins */
    add_fact(st, FL_FACT_LIKE, base + 5, base + 6, 0, true, 1700000000457);
    add_fact(st, FL_FACT_FOLLOW, base + 7, base + 8, 0, true, 3);
    add_fact(st, FL_FACT_NOTIFICATION, base + 7, base + 8, 0, true, 4);
    add_fact(st, FL_FACT_NOTIFICATION, base + 7, base + 6, base + 5, true, 6);
    cr_assert_eq(flush(st, 14), FL_OK);
    expect("SELECT string_agg((post_id - $1) || ':' || (author_id - $1), ',' ORDER BY post_id)"
           " FROM feed_items WHERE user_id = $1 + 1",
           "11:2,12:3,13:4");
    expect("SELECT xmin::text FROM feed_items WHERE user_id = $1 + 1 AND post_id = $1 + 11", xmin);
    expect("SELECT created_at::text FROM post_likes WHERE post_id = $1 + 5",
           "2023-11-14 22:13:20.457+00");
    expect("SELECT string_agg(kind || ':' || (extract(epoch from created_at) * 1000)::int, ','"
           " ORDER BY kind) FROM notifications WHERE user_id = $1 + 7",
           "follow:4,like:6");
    expect("SELECT count(*) FROM follows WHERE following_id = $1 + 7", "1");
    metrics[0] = '\0';
    fl_pg_sink.metrics(st, metrics, sizeof(metrics));
    cr_expect(strstr(metrics, "feedline_pg_sink_direct_fallbacks_total{table=\"feed_items\"} 1"),
              "%s", metrics);
    cr_expect(strstr(metrics, "feedline_pg_sink_direct_fallbacks_total{table=\"notifications\"} 1"),
              "%s", metrics);

    /* after a refusal the next flush stages at once, then tries again */
    add_feed(st, base + 1, 1700000001000, base + 14, base + 2, true);
    cr_assert_eq(flush(st, 15), FL_OK);
    add_feed(st, base + 1, 1700000001001, base + 15, base + 2, true);
    cr_assert_eq(flush(st, 16), FL_OK);
    metrics[0] = '\0';
    fl_pg_sink.metrics(st, metrics, sizeof(metrics));
    cr_expect(strstr(metrics, "feedline_pg_sink_direct_copies_total{table=\"feed_items\"} 3"), "%s",
              metrics);
    expect("SELECT count(*) FROM feed_items WHERE user_id = $1 + 1", "5");
    fl_pg_sink.close(st);
}

/* A time PostgreSQL cannot hold would fail every retry of its batch. */
Test(it_pg_sink, times_outside_timestamptz_are_refused)
{
    void *st = sink_open();
    char errstr[256] = "";
    fl_key_t k;
    uint8_t v[8];
    fl_key_timeline(&k, base + 1, INT64_MAX / 2, base + 2);
    fl_key_enc_i64(v, base + 3);
    fl_proc_record_t t = {.topic = "feedline.timelines-changelog",
                          .key = k.buf,
                          .key_len = k.len,
                          .value = v,
                          .value_len = 8};
    cr_expect_eq(fl_pg_sink.add(st, &t, errstr, sizeof(errstr)), FL_ERR_INVALID);
    cr_expect(strstr(errstr, "timestamptz"), "%s", errstr);
    fl_event_t reg = {.type = FL_EV_USER_REGISTERED,
                      .occurred_at = INT64_MIN,
                      .user_id = base + 1,
                      .handle = "ann",
                      .display_name = "Ann"};
    fl_proc_record_t u = {.topic = "users", .event = &reg};
    cr_expect_eq(fl_pg_sink.add(st, &u, errstr, sizeof(errstr)), FL_ERR_INVALID);
    fl_pg_sink.close(st);
}

Test(it_pg_sink, lost_offsets_are_reported)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    cr_assert_eq(flush(st, 5), FL_OK);
    q("DELETE FROM sink_offsets WHERE sink = 'test-' || $1 RETURNING 1");
    cr_assert_eq(fl_pg_sink.check(st), FL_ERR_LOST);
    add_fact(st, FL_FACT_LIKE, base + 1, base + 2, 0, true, 1);
    cr_assert_eq(flush(st, 6), FL_ERR_LOST);
    expect("SELECT 1 FROM post_likes WHERE post_id = $1 + 1", NULL);
    claim(st, FL_SINK_NO_OFFSET);
    fl_pg_sink.close(st);
}

/* One value of sql, which names the test's schema as %s (no $1). */
static char *q_in(const char *schema, const char *sql_fmt)
{
    static char out[64];
    char sql[512];
    snprintf(sql, sizeof(sql), sql_fmt, schema, schema);
    PGresult *res = PQexec(db, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(db));
    snprintf(out, sizeof(out), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return out;
}

Test(it_pg_sink, a_wipe_empties_the_tables_and_loses_every_claim)
{
    /* a schema of its own: a wipe empties every table of its schema */
    char schema[64];
    snprintf(schema, sizeof(schema), "it_wipe_%lld", (long long)base);
    free(topo->endpoints.postgres_schema);
    topo->endpoints.postgres_schema = strdup(schema);
    void *a = sink_open(), *b = sink_open();
    const fl_sink_part_t part1 = {"feedline.timelines-changelog", 1};
    int64_t next = 42;
    claim(a, FL_SINK_NO_OFFSET);
    cr_assert_eq(fl_pg_sink.claim(b, &part1, 1, &next), FL_OK);
    add_fact(a, FL_FACT_LIKE, base + 1, base + 2, 0, true, 1);
    cr_assert_eq(flush(a, 1), FL_OK);
    add_feed(b, base + 3, 1000, base + 4, base + 5, true);
    next = 1;
    cr_assert_eq(fl_pg_sink.flush(b, &part1, &next, 1), FL_OK);
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.post_likes"), "1");
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.feed_items"), "1");

    cr_assert_eq(fl_pg_sink.wipe(a), FL_OK);
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.post_likes"), "0");
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.feed_items"), "0");
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.sink_offsets"), "0");
    cr_assert_str_eq(q_in(schema, "SELECT count(*) > 0 FROM %s.schema_migrations"), "t",
                     "the migrations stay recorded");
    /* the other instance's claim is gone with its row */
    add_feed(b, base + 3, 2000, base + 6, base + 5, true);
    next = 2;
    cr_assert_eq(fl_pg_sink.flush(b, &part1, &next, 1), FL_ERR_LOST);
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.feed_items"), "0");
    claim(a, FL_SINK_NO_OFFSET);
    add_fact(a, FL_FACT_LIKE, base + 1, base + 2, 0, true, 1);
    cr_assert_eq(flush(a, 1), FL_OK);
    cr_assert_str_eq(q_in(schema, "SELECT count(*) FROM %s.post_likes"), "1");
    fl_pg_sink.close(a);
    fl_pg_sink.close(b);
    char drop[128];
    snprintf(drop, sizeof(drop), "DROP SCHEMA %s CASCADE", schema);
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    PQclear(PQexec(db, drop));
}

static void stack(const char *what)
{
    char cmd[1024];
    const char *src = getenv("FEEDLINE_SOURCE_DIR");
    snprintf(cmd, sizeof(cmd), "bash '%s/ops/stack' %s >/dev/null", src ? src : ".", what);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

Test(it_pg_sink, restart_gives_unavailable_then_nothing_is_lost)
{
    void *st = sink_open();
    claim(st, FL_SINK_NO_OFFSET);
    add_fact(st, FL_FACT_LIKE, base + 1, base + 2, 0, true, 1);
    cr_assert_eq(flush(st, 1), FL_OK);
    PQfinish(db);
    stack("pg-down");
    add_fact(st, FL_FACT_LIKE, base + 1, base + 3, 0, true, 2);
    fl_err_t err = flush(st, 2);
    cr_expect_eq(err, FL_ERR_UNAVAILABLE, "%s", fl_err_str(err));
    cr_expect_eq(flush(st, 2), FL_ERR_UNAVAILABLE); /* reconnecting fails too */
    cr_expect_eq(fl_pg_sink.check(st), FL_ERR_UNAVAILABLE);
    stack("pg-up");
    cr_assert_eq(flush(st, 2), FL_OK); /* the kept batch */
    add_fact(st, FL_FACT_LIKE, base + 1, base + 4, 0, true, 3);
    cr_assert_eq(flush(st, 3), FL_OK);
    db = PQconnectdb(topo->endpoints.postgres);
    cr_assert(PQstatus(db) == CONNECTION_OK);
    expect("SELECT count(*) FROM post_likes WHERE post_id = $1 + 1", "3");
    expect("SELECT next_offset FROM sink_offsets WHERE sink = 'test-' || $1", "3");
    char metrics[4096] = "";
    fl_pg_sink.metrics(st, metrics, sizeof(metrics));
    cr_expect(strstr(metrics, "feedline_pg_sink_flushes_total 3"), "%s", metrics);
    fl_pg_sink.close(st);
}
