/*
 * test_masto_model.c - the Mastodon surface's pure mappings
 * (fl_masto_model.h): the HTML of a status, ISO 8601 times, visibility
 * names, notification ids (round trip, and that their order as strings is
 * fl_notif_newer's) and Mastodon's query parameters.
 */
#include "fl_masto_model.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void html_is(const char *text, const char *want)
{
    char *got = fl_masto_html(text);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "text %s", text);
    free(got);
}

Test(masto_model, html_escapes_and_breaks_lines)
{
    html_is("", "<p></p>");
    html_is("plain", "<p>plain</p>");
    html_is("<b>&\"'", "<p>&lt;b&gt;&amp;&quot;&#39;</p>");
    html_is("one\ntwo", "<p>one<br />two</p>");
    html_is("one\r\ntwo", "<p>one<br />two</p>");
    html_is("para\n\nnext\n\n\nlast", "<p>para</p><p>next</p><p>last</p>");
    html_is("caf\xc3\xa9", "<p>caf\xc3\xa9</p>");
    html_is(NULL, "<p></p>");
}

Test(masto_model, times_are_utc_with_ms)
{
    char buf[FL_MASTO_TIME_MAX];

    fl_masto_time(0, buf);
    cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    fl_masto_time(1767225620123, buf);
    cr_assert_str_eq(buf, "2026-01-01T00:00:20.123Z");
    fl_masto_time(-1, buf);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    fl_masto_time(INT64_MAX, buf);
    cr_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
}

Test(masto_model, visibility_names)
{
    cr_assert_str_eq(fl_masto_visibility(FL_VIS_PUBLIC), "public");
    cr_assert_str_eq(fl_masto_visibility(FL_VIS_FOLLOWERS), "private");
    cr_assert_str_eq(fl_masto_visibility(FL_VIS_PRIVATE), "direct");
}

Test(masto_model, notification_ids_round_trip_and_sort)
{
    fl_notif_t v[] = {
        {1767225620000, FL_NOTIF_LIKE, 7, 1001}, {1767225620000, FL_NOTIF_FOLLOW, 7, 0},
        {1767225620000, FL_NOTIF_LIKE, 8, 1001}, {1767225620000, FL_NOTIF_LIKE, 8, 1002},
        {1767225620001, FL_NOTIF_LIKE, 1, 1},    {5, FL_NOTIF_FOLLOW, INT64_MAX, 0},
    };
    size_t n = sizeof(v) / sizeof(v[0]);
    char a[FL_MASTO_NOTIF_ID_LEN + 1], b[FL_MASTO_NOTIF_ID_LEN + 1];
    fl_notif_t back;

    for (size_t i = 0; i < n; i++) {
        fl_masto_notif_id(&v[i], a);
        cr_assert_eq(strlen(a), FL_MASTO_NOTIF_ID_LEN);
        cr_assert(fl_masto_notif_id_parse(a, &back), "%s", a);
        cr_assert(!memcmp(&back, &v[i], sizeof(back)) ||
                      (back.created_at == v[i].created_at && back.kind == v[i].kind &&
                       back.actor_id == v[i].actor_id && back.post_id == v[i].post_id),
                  "%s", a);
        for (size_t j = 0; j < n; j++) {
            fl_masto_notif_id(&v[j], b);
            cr_assert_eq(strcmp(a, b) > 0, fl_notif_newer(&v[i], &v[j]), "%s vs %s", a, b);
        }
    }
    cr_assert(!fl_masto_notif_id_parse("12", &back));
    cr_assert(!fl_masto_notif_id_parse("", &back));
    memset(a, '9', FL_MASTO_NOTIF_ID_LEN);
    a[FL_MASTO_NOTIF_ID_LEN] = '\0';
    cr_assert(!fl_masto_notif_id_parse(a, &back), "a leading 9");
    a[0] = '1';
    cr_assert(!fl_masto_notif_id_parse(a, &back), "fields past INT64_MAX");
}

Test(masto_model, query_parameters)
{
    fl_masto_query_t q;
    char why[128];

    fl_masto_query_init(&q);
    cr_assert_eq(q.limit, 20);
    cr_assert_eq(fl_masto_query_set(&q, "limit", "7", why, sizeof(why)), FL_OK);
    cr_assert_eq(q.limit, 7);
    cr_assert_eq(fl_masto_query_set(&q, "limit", "1000", why, sizeof(why)), FL_OK);
    cr_assert_eq(q.limit, 40, "clamped as Mastodon does");
    const char *bad_limits[] = {"0", "-1", "x", "", "1.5", "007"};
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++)
        cr_assert_eq(fl_masto_query_set(&q, "limit", bad_limits[i], why, sizeof(why)),
                     FL_ERR_INVALID, "limit=%s", bad_limits[i]);
    cr_assert_eq(fl_masto_query_set(&q, "max_id", "123", why, sizeof(why)), FL_OK);
    cr_assert_str_eq(q.max_id, "123");
    cr_assert_eq(fl_masto_query_set(&q, "since_id", "12a", why, sizeof(why)), FL_ERR_INVALID);
    cr_assert(strstr(why, "since_id"));
    cr_assert_eq(fl_masto_query_set(&q, "min_id", NULL, why, sizeof(why)), FL_ERR_INVALID);
    cr_assert_eq(fl_masto_query_set(&q, "exclude_types[]", "follow", why, sizeof(why)), FL_OK,
                 "unknown parameters are ignored");
    cr_assert_eq(fl_masto_query_set(&q, "pinned", "true", why, sizeof(why)), FL_OK);
    cr_assert(q.pinned);
}

Test(masto_model, hosts)
{
    cr_assert(fl_masto_host_ok("127.0.0.1:8080"));
    cr_assert(fl_masto_host_ok("[::1]:80"));
    cr_assert(fl_masto_host_ok("feed.example"));
    cr_assert(!fl_masto_host_ok(""));
    cr_assert(!fl_masto_host_ok(NULL));
    cr_assert(!fl_masto_host_ok("a>b"));
    cr_assert(!fl_masto_host_ok("a b"));
    cr_assert(!fl_masto_host_ok("evil/path"));
}
