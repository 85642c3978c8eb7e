/*
 * test_codec.c - the event contract: descriptors, JSON conversion, the
 * Avro codec and its handling of hostile input.
 *
 * Schemas come from $FEEDLINE_SOURCE_DIR/schemas (the repo root when run
 * by ctest). Tests that need other schema sets (evolution, load errors)
 * copy the real directory into a temporary one and override files there.
 * Every sample event is written as canonical JSON, so one table drives the
 * Avro and the JSON round trips. Bodies for the malformed cases are built
 * by a tiny independent Avro writer below, which also checks that the
 * codec's own output is byte-identical to a hand-made encoding.
 */
#include "fl_codec.h"
#include "fl_event.h"

#include <avro.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fl_codec_t *codec;
static char err[512];

static const char *source_dir(void)
{
    const char *d = getenv("FEEDLINE_SOURCE_DIR");
    return d && *d ? d : ".";
}

static const char *schemas_dir(void)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/schemas", source_dir());
    return path;
}

static void codec_setup(void)
{
    err[0] = '\0';
    codec = fl_codec_new(schemas_dir(), err, sizeof(err));
    cr_assert_not_null(codec, "fl_codec_new: %s", err);
}

static void codec_teardown(void)
{
    fl_codec_free(codec);
    codec = NULL;
}

/* ---- samples: canonical JSON (compact, schema order) ------------------- */

static const char *const samples[] = {
    "{\"type\":\"UserRegistered\",\"event_id\":\"ev-1\",\"occurred_at\":1700000000000,"
    "\"user_id\":1,\"handle\":\"alice\",\"display_name\":\"Alice \xc3\x96stberg\"}",
    "{\"type\":\"UserUpdated\",\"event_id\":\"ev-2\",\"occurred_at\":1700000000001,"
    "\"user_id\":1,\"display_name\":\"Alice A.\",\"bio\":\"hi \xf0\x9f\x91\x8b\"}",
    "{\"type\":\"UserUpdated\",\"event_id\":\"ev-3\",\"occurred_at\":1700000000002,"
    "\"user_id\":2,\"display_name\":null,\"bio\":null}",
    "{\"type\":\"PostCreated\",\"event_id\":\"ev-4\",\"occurred_at\":1700000000003,"
    "\"post_id\":9007199254740993,\"author_id\":1,\"created_at\":1700000000003,"
    "\"text\":\"hello, world\",\"visibility\":\"PUBLIC\",\"reply_to\":null}",
    "{\"type\":\"PostCreated\",\"event_id\":\"ev-5\",\"occurred_at\":1700000000004,"
    "\"post_id\":43,\"author_id\":2,\"created_at\":1700000000004,"
    "\"text\":\"\",\"visibility\":\"FOLLOWERS\",\"reply_to\":42}",
    "{\"type\":\"PostCreated\",\"event_id\":\"ev-6\",\"occurred_at\":0,"
    "\"post_id\":9223372036854775807,\"author_id\":9223372036854775807,"
    "\"created_at\":-1,\"text\":\"line\\nbreak \\\"quoted\\\"\",\"visibility\":\"PRIVATE\","
    "\"reply_to\":9223372036854775807}",
    "{\"type\":\"PostDeleted\",\"event_id\":\"ev-7\",\"occurred_at\":1700000000005,"
    "\"post_id\":-9223372036854775808,\"author_id\":2}",
    "{\"type\":\"FollowAdded\",\"event_id\":\"ev-8\",\"occurred_at\":1700000000006,"
    "\"follower_id\":3,\"followee_id\":1}",
    "{\"type\":\"FollowRemoved\",\"event_id\":\"ev-9\",\"occurred_at\":1700000000007,"
    "\"follower_id\":3,\"followee_id\":1}",
    "{\"type\":\"LikeAdded\",\"event_id\":\"ev-10\",\"occurred_at\":1700000000008,"
    "\"user_id\":3,\"post_id\":43,\"author_id\":2}",
    "{\"type\":\"LikeRemoved\",\"event_id\":\"ev-11\",\"occurred_at\":1700000000009,"
    "\"user_id\":3,\"post_id\":43,\"author_id\":2}",
};
#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

static void sample_event(size_t i, fl_event_t *ev)
{
    json_error_t jerr;
    json_t *j = json_loads(samples[i], 0, &jerr);

    cr_assert_not_null(j, "sample %zu: %s", i, jerr.text);
    memset(ev, 0, sizeof(*ev));
    cr_assert_eq(fl_event_from_json(j, ev, err, sizeof(err)), FL_OK, "sample %zu: %s", i, err);
    json_decref(j);
}

static void assert_events_equal(const fl_event_t *a, const fl_event_t *b, const char *what)
{
    const fl_event_desc_t *d = fl_event_desc(a->type);

    cr_assert_eq(a->type, b->type, "%s: type %d != %d", what, a->type, b->type);
    cr_assert_not_null(d, "%s: no descriptor", what);
    for (size_t i = 0; i < d->n_fields; i++) {
        const fl_field_desc_t *f = &d->fields[i];
        const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
        int64_t la, lb;
        const char *sa, *sb;

        switch (f->kind) {
        case FL_FIELD_OPT_LONG:
            cr_assert_eq(*(const bool *)((const char *)a + f->has_offset),
                         *(const bool *)((const char *)b + f->has_offset), "%s: %s presence", what,
                         f->name);
            if (!*(const bool *)((const char *)a + f->has_offset))
                break;
            /* fall through */
        case FL_FIELD_LONG:
        case FL_FIELD_TIMESTAMP:
            memcpy(&la, pa, sizeof(la));
            memcpy(&lb, pb, sizeof(lb));
            cr_assert_eq(la, lb, "%s: %s %" PRId64 " != %" PRId64, what, f->name, la, lb);
            break;
        case FL_FIELD_STRING:
        case FL_FIELD_OPT_STRING:
            memcpy(&sa, pa, sizeof(sa));
            memcpy(&sb, pb, sizeof(sb));
            cr_assert_eq(!sa, !sb, "%s: %s presence", what, f->name);
            if (sa)
                cr_assert_str_eq(sa, sb, "%s: %s", what, f->name);
            break;
        case FL_FIELD_VISIBILITY:
            cr_assert_eq(a->visibility, b->visibility, "%s: visibility", what);
            break;
        }
    }
}

static bool event_is_zero(const fl_event_t *ev)
{
    static const fl_event_t zero;
    return !memcmp(ev, &zero, sizeof(zero));
}

/* ---- an independent Avro writer for hand-made bodies ------------------- */

typedef struct tbuf {
    uint8_t b[8192];
    size_t n;
} tbuf_t;

static void put_byte(tbuf_t *t, uint8_t v)
{
    cr_assert_lt(t->n, sizeof(t->b));
    t->b[t->n++] = v;
}

static void put_raw_varint(tbuf_t *t, uint64_t u)
{
    while (u >= 0x80) {
        put_byte(t, (uint8_t)(u | 0x80));
        u >>= 7;
    }
    put_byte(t, (uint8_t)u);
}

static void put_long(tbuf_t *t, int64_t v)
{
    uint64_t u = (uint64_t)v << 1;
    put_raw_varint(t, v < 0 ? ~u : u);
}

static void put_bytes(tbuf_t *t, const void *s, size_t n)
{
    put_long(t, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        put_byte(t, ((const uint8_t *)s)[i]);
}

static void put_str(tbuf_t *t, const char *s)
{
    put_bytes(t, s, strlen(s));
}

static void put_header(tbuf_t *t, uint32_t id)
{
    put_byte(t, 0);
    put_byte(t, (uint8_t)(id >> 24));
    put_byte(t, (uint8_t)(id >> 16));
    put_byte(t, (uint8_t)(id >> 8));
    put_byte(t, (uint8_t)id);
}

/* PostCreated v2 (id 9) with the given raw visibility and union indexes. */
static void post_v2(tbuf_t *t, int64_t vis, int64_t branch, int64_t reply_to)
{
    t->n = 0;
    put_header(t, 9);
    put_str(t, "ev-hand");
    put_long(t, 1700000000000);
    put_long(t, 42);
    put_long(t, 7);
    put_long(t, 1699999999000);
    put_str(t, "hand made");
    put_long(t, vis);
    put_long(t, branch);
    if (branch == 1)
        put_long(t, reply_to);
}

static fl_err_t decode(const void *data, size_t len, fl_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    err[0] = '\0';
    return fl_codec_decode(codec, data, len, ev, NULL, err, sizeof(err));
}

static void expect_decode(const void *data, size_t len, fl_err_t want, const char *what)
{
    fl_event_t ev;
    fl_err_t got = decode(data, len, &ev);
    cr_log_info("%s: %s", what, got ? err : "ok");
    cr_assert_eq(got, want, "%s: got %s (%s), want %s", what, fl_err_str(got), err,
                 fl_err_str(want));
    if (want != FL_OK) {
        cr_assert(event_is_zero(&ev), "%s: event not cleared on failure", what);
        cr_assert_neq(err[0], '\0', "%s: no error message", what);
    }
    fl_event_clear(&ev);
}

/* ---- descriptors -------------------------------------------------------- */

Test(event, descriptors)
{
    static const struct {
        fl_event_type_t type;
        const char *name, *topic, *key;
    } want[] = {
        {FL_EV_USER_REGISTERED, "UserRegistered", "users", "user_id"},
        {FL_EV_USER_UPDATED, "UserUpdated", "users", "user_id"},
        {FL_EV_POST_CREATED, "PostCreated", "posts", "author_id"},
        {FL_EV_POST_DELETED, "PostDeleted", "posts", "author_id"},
        {FL_EV_FOLLOW_ADDED, "FollowAdded", "follows", "followee_id"},
        {FL_EV_FOLLOW_REMOVED, "FollowRemoved", "follows", "followee_id"},
        {FL_EV_LIKE_ADDED, "LikeAdded", "likes", "post_id"},
        {FL_EV_LIKE_REMOVED, "LikeRemoved", "likes", "post_id"},
    };

    cr_assert_null(fl_event_desc(FL_EV_NONE));
    cr_assert_null(fl_event_desc(FL_EV__COUNT));
    cr_assert_null(fl_event_desc((fl_event_type_t)-1));
    cr_assert_eq(fl_event_type_by_name("PostEdited"), FL_EV_NONE);
    cr_assert_eq(fl_event_type_by_name(NULL), FL_EV_NONE);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const fl_event_desc_t *d = fl_event_desc(want[i].type);
        cr_assert_not_null(d);
        cr_assert_str_eq(d->name, want[i].name);
        cr_assert_str_eq(d->topic, want[i].topic);
        cr_assert_str_eq(d->key_field, want[i].key);
        cr_assert_eq(fl_event_type_by_name(want[i].name), want[i].type);
        cr_assert(fl_event_type_on_topic(want[i].type, want[i].topic));
        cr_assert_not(fl_event_type_on_topic(want[i].type, "feedline.dlq"));
        cr_assert_str_eq(d->fields[0].name, "event_id");
        cr_assert_str_eq(d->fields[1].name, "occurred_at");
        cr_assert_leq(d->n_fields, FL_EVENT_MAX_FIELDS);
    }
    cr_assert_not(fl_event_type_on_topic(FL_EV_NONE, "users"));
    cr_assert_not(fl_event_type_on_topic(FL_EV_POST_CREATED, NULL));
    cr_assert_str_eq(fl_visibility_name(FL_VIS_FOLLOWERS), "FOLLOWERS");
    cr_assert_null(fl_visibility_name((fl_visibility_t)3));
    cr_assert_eq(fl_visibility_by_name("PRIVATE"), FL_VIS_PRIVATE);
    cr_assert_eq(fl_visibility_by_name("private"), -1);
}

Test(event, keys)
{
    static const char *const want[N_SAMPLES] = {
        "1", "1", "2", "1", "2", "9223372036854775807", "2", "1", "1", "43", "43",
    };
    char key[32];
    fl_event_t ev;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        sample_event(i, &ev);
        fl_event_key(&ev, key, sizeof(key));
        cr_assert_str_eq(key, want[i], "sample %zu", i);
        fl_event_clear(&ev);
        cr_assert(event_is_zero(&ev));
    }
    fl_event_key(&ev, key, sizeof(key)); /* FL_EV_NONE */
    cr_assert_str_eq(key, "");
    fl_event_clear(NULL);
}

/* ---- JSON --------------------------------------------------------------- */

Test(json, round_trip_every_type)
{
    for (size_t i = 0; i < N_SAMPLES; i++) {
        fl_event_t ev, back;
        json_t *j, *j2;
        char *text;

        sample_event(i, &ev);
        j = fl_event_to_json(&ev);
        cr_assert_not_null(j, "sample %zu", i);
        text = json_dumps(j, JSON_COMPACT);
        cr_assert_str_eq(text, samples[i], "JSON -> event -> JSON, sample %zu", i);
        memset(&back, 0, sizeof(back));
        cr_assert_eq(fl_event_from_json(j, &back, err, sizeof(err)), FL_OK, "%s", err);
        assert_events_equal(&ev, &back, "event -> JSON -> event");
        j2 = fl_event_to_json(&back);
        cr_assert(json_equal(j, j2));
        free(text);
        json_decref(j);
        json_decref(j2);
        fl_event_clear(&ev);
        fl_event_clear(&back);
    }
}

Test(json, fields_land_in_the_struct)
{
    fl_event_t ev;

    sample_event(4, &ev);
    cr_assert_eq(ev.type, FL_EV_POST_CREATED);
    cr_assert_str_eq(ev.event_id, "ev-5");
    cr_assert_eq(ev.occurred_at, 1700000000004);
    cr_assert_eq(ev.post_id, 43);
    cr_assert_eq(ev.author_id, 2);
    cr_assert_eq(ev.created_at, 1700000000004);
    cr_assert_str_eq(ev.text, "");
    cr_assert_eq(ev.visibility, FL_VIS_FOLLOWERS);
    cr_assert(ev.has_reply_to);
    cr_assert_eq(ev.reply_to, 42);
    cr_assert_null(ev.handle);
    fl_event_clear(&ev);

    /* Optional members may be missing as well as null. */
    json_t *j = json_loads("{\"type\":\"UserUpdated\",\"event_id\":\"e\",\"occurred_at\":1,"
                           "\"user_id\":5,\"bio\":\"b\"}",
                           0, NULL);
    memset(&ev, 0, sizeof(ev));
    cr_assert_eq(fl_event_from_json(j, &ev, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_null(ev.display_name);
    cr_assert_str_eq(ev.bio, "b");
    json_decref(j);
    fl_event_clear(&ev);
}

Test(json, errors_name_the_field)
{
    static const struct {
        const char *json, *needle;
    } cases[] = {
        /* missing required field */
        {"{\"type\":\"PostCreated\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1,\"created_at\":1,\"visibility\":\"PUBLIC\"}",
         "\"text\""},
        {"{\"type\":\"PostCreated\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1,\"created_at\":1,\"text\":\"t\"}",
         "\"visibility\""},
        {"{\"type\":\"FollowAdded\",\"event_id\":\"e\",\"occurred_at\":1,\"follower_id\":1,"
         "\"followee_id\":null}",
         "\"followee_id\""},
        /* wrong JSON type */
        {"{\"type\":\"PostDeleted\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":\"1\","
         "\"author_id\":1}",
         "\"post_id\""},
        {"{\"type\":\"PostDeleted\",\"event_id\":\"e\",\"occurred_at\":1.5,\"post_id\":1,"
         "\"author_id\":1}",
         "\"occurred_at\""},
        {"{\"type\":\"PostDeleted\",\"event_id\":7,\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1}",
         "\"event_id\""},
        {"{\"type\":\"UserUpdated\",\"event_id\":\"e\",\"occurred_at\":1,\"user_id\":1,"
         "\"bio\":true}",
         "\"bio\""},
        {"{\"type\":\"PostCreated\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1,\"created_at\":1,\"text\":\"t\",\"visibility\":\"SECRET\"}",
         "SECRET"},
        {"{\"type\":\"PostCreated\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1,\"created_at\":1,\"text\":\"t\",\"visibility\":0}",
         "\"visibility\""},
        {"{\"type\":\"PostCreated\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1,\"created_at\":1,\"text\":\"t\",\"visibility\":\"PUBLIC\","
         "\"reply_to\":\"3\"}",
         "\"reply_to\""},
        /* unknown member */
        {"{\"type\":\"PostDeleted\",\"event_id\":\"e\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1,\"authorId\":1}",
         "authorId"},
        {"{\"type\":\"LikeAdded\",\"event_id\":\"e\",\"occurred_at\":1,\"user_id\":1,"
         "\"post_id\":1,\"author_id\":1,\"text\":\"x\"}",
         "\"text\""},
        /* unknown or missing type */
        {"{\"type\":\"PostEdited\",\"event_id\":\"e\"}", "PostEdited"},
        {"{\"event_id\":\"e\"}", "\"type\""},
        {"{\"type\":3}", "\"type\""},
        {"[1,2]", "object"},
        /* a NUL cannot live in a C string */
        {"{\"type\":\"PostDeleted\",\"event_id\":\"a\\u0000b\",\"occurred_at\":1,\"post_id\":1,"
         "\"author_id\":1}",
         "\"event_id\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL, &jerr);
        fl_event_t ev;

        cr_assert_not_null(j, "case %zu: %s", i, jerr.text);
        memset(&ev, 0, sizeof(ev));
        err[0] = '\0';
        cr_assert_eq(fl_event_from_json(j, &ev, err, sizeof(err)), FL_ERR_INVALID, "case %zu", i);
        cr_assert(strstr(err, cases[i].needle), "case %zu: \"%s\" does not name %s", i, err,
                  cases[i].needle);
        cr_assert(event_is_zero(&ev), "case %zu: event not cleared", i);
        json_decref(j);
    }
    cr_assert_eq(fl_event_from_json(NULL, &(fl_event_t){0}, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_null(fl_event_to_json(&(fl_event_t){0}));
}

Test(json, invalid_utf8_is_not_emitted)
{
    fl_event_t ev;

    sample_event(6, &ev);
    free(ev.event_id);
    ev.event_id = strdup("bad \xff byte");
    cr_assert_null(fl_event_to_json(&ev));
    fl_event_clear(&ev);
}

Test(event, validate)
{
    fl_event_t ev;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        sample_event(i, &ev);
        fl_err_t want = (i == 5 || i == 6) ? FL_ERR_INVALID : FL_OK; /* -1, INT64_MIN */
        cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), want, "sample %zu: %s", i, err);
        fl_event_clear(&ev);
    }

    sample_event(3, &ev);
    ev.post_id = 0;
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "post_id"), "%s", err);
    ev.post_id = 1;
    ev.occurred_at = -5;
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "occurred_at"), "%s", err);
    ev.occurred_at = 5;
    ev.has_reply_to = true;
    ev.reply_to = -1;
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
    ev.reply_to = 3;
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_OK, "%s", err);
    ev.visibility = (fl_visibility_t)9;
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
    ev.visibility = FL_VIS_PUBLIC;
    ev.event_id[0] = '\0';
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "event_id"), "%s", err);
    free(ev.text);
    ev.text = NULL;
    ev.event_id[0] = 'e';
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "text"), "%s", err);
    fl_event_clear(&ev);
    cr_assert_eq(fl_event_validate(&ev, err, sizeof(err)), FL_ERR_INVALID);
}

/* ---- the codec: happy paths --------------------------------------------- */

Test(codec, schema_ids, .init = codec_setup, .fini = codec_teardown)
{
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_USER_REGISTERED), 1);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_USER_UPDATED), 2);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_POST_CREATED), 9);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_POST_DELETED), 4);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_FOLLOW_ADDED), 5);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_FOLLOW_REMOVED), 6);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_LIKE_ADDED), 7);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_LIKE_REMOVED), 8);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_NONE), -1);
    cr_assert_eq(fl_codec_schema_id(NULL, FL_EV_LIKE_REMOVED), -1);
}

Test(codec, default_dir_and_env)
{
    unsetenv("FEEDLINE_SCHEMAS");
    cr_assert_str_eq(fl_codec_default_dir(), "schemas");
    setenv("FEEDLINE_SCHEMAS", schemas_dir(), 1);
    cr_assert_str_eq(fl_codec_default_dir(), schemas_dir());
    fl_codec_t *c = fl_codec_new(NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    fl_codec_free(c);
    unsetenv("FEEDLINE_SCHEMAS");
    fl_codec_free(NULL);
}

Test(codec, round_trip_every_type, .init = codec_setup, .fini = codec_teardown)
{
    for (int pass = 0; pass < 3; pass++) { /* scratch values are reused */
        for (size_t i = 0; i < N_SAMPLES; i++) {
            fl_event_t ev, back;
            const void *out;
            size_t len;
            int32_t sid = -1;
            const uint8_t *b;

            sample_event(i, &ev);
            cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK,
                         "sample %zu: %s", i, err);
            b = out;
            cr_assert_gt(len, FL_CODEC_HEADER_SIZE);
            cr_assert_eq(b[0], FL_CODEC_MAGIC);
            cr_assert_eq(
                (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]),
                fl_codec_schema_id(codec, ev.type));
            memset(&back, 0, sizeof(back));
            cr_assert_eq(fl_codec_decode(codec, out, len, &back, &sid, err, sizeof(err)), FL_OK,
                         "sample %zu: %s", i, err);
            cr_assert_eq(sid, fl_codec_schema_id(codec, ev.type));
            assert_events_equal(&ev, &back, samples[i]);
            fl_event_clear(&ev);
            fl_event_clear(&back);
        }
    }
}

Test(codec, output_matches_an_independent_encoding, .init = codec_setup, .fini = codec_teardown)
{
    fl_event_t ev;
    const void *out;
    size_t len;
    tbuf_t t;

    memset(&ev, 0, sizeof(ev));
    ev.type = FL_EV_POST_CREATED;
    ev.event_id = strdup("ev-hand");
    ev.occurred_at = 1700000000000;
    ev.post_id = 42;
    ev.author_id = 7;
    ev.created_at = 1699999999000;
    ev.text = strdup("hand made");
    ev.visibility = FL_VIS_PRIVATE;
    ev.has_reply_to = true;
    ev.reply_to = -3;
    post_v2(&t, 2, 1, -3);
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_eq(len, t.n);
    cr_assert_arr_eq(out, t.b, t.n);
    fl_event_clear(&ev);
}

Test(codec, v1_record_read_with_current_v2, .init = codec_setup, .fini = codec_teardown)
{
    fl_event_t ev, back;
    const void *out;
    size_t len;
    int32_t sid = 0;

    sample_event(4, &ev); /* FOLLOWERS, reply_to 42 */
    cr_assert_eq(fl_codec_encode_version(codec, &ev, 1, &out, &len, err, sizeof(err)), FL_OK, "%s",
                 err);
    cr_assert_eq(((const uint8_t *)out)[4], 3, "v1 of PostCreated is id 3");
    memset(&back, 0, sizeof(back));
    cr_assert_eq(fl_codec_decode(codec, out, len, &back, &sid, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_eq(sid, 3);
    cr_assert_not(back.has_reply_to, "reply_to takes its default (null)");
    cr_assert_eq(back.reply_to, 0);
    ev.has_reply_to = false;
    ev.reply_to = 0;
    assert_events_equal(&ev, &back, "v1 -> v2");
    fl_event_clear(&ev);
    fl_event_clear(&back);

    cr_assert_eq(fl_codec_encode_version(codec, &back, 7, &out, &len, err, sizeof(err)),
                 FL_ERR_INVALID, "no type");
    sample_event(0, &ev);
    cr_assert_eq(fl_codec_encode_version(codec, &ev, 2, &out, &len, err, sizeof(err)),
                 FL_ERR_SCHEMA, "UserRegistered v2 is not listed");
    fl_event_clear(&ev);
}

Test(codec, v2_record_read_with_reader_pinned_to_v1, .init = codec_setup, .fini = codec_teardown)
{
    fl_event_t ev, back;
    const void *out;
    size_t len;

    cr_assert_eq(fl_codec_set_reader_version(codec, "PostCreated", 3), FL_ERR_SCHEMA);
    cr_assert_eq(fl_codec_set_reader_version(codec, "PostEdited", 1), FL_ERR_SCHEMA);
    cr_assert_eq(fl_codec_set_reader_version(codec, "PostCreated", 1), FL_OK);
    cr_assert_eq(fl_codec_schema_id(codec, FL_EV_POST_CREATED), 9, "still writes v2");

    sample_event(5, &ev); /* PRIVATE, reply_to INT64_MAX */
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK, "%s", err);
    memset(&back, 0, sizeof(back));
    cr_assert_eq(fl_codec_decode(codec, out, len, &back, NULL, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_not(back.has_reply_to, "a v1 reader has no reply_to");
    cr_assert_eq(back.visibility, FL_VIS_PRIVATE);
    cr_assert_str_eq(back.text, ev.text);
    fl_event_clear(&back);

    /* v1 records still decode with the pinned reader. */
    cr_assert_eq(fl_codec_encode_version(codec, &ev, 1, &out, &len, err, sizeof(err)), FL_OK);
    cr_assert_eq(decode(out, len, &back), FL_OK, "%s", err);
    cr_assert_not(back.has_reply_to);
    fl_event_clear(&back);

    /* Back to current: reply_to comes through again. */
    cr_assert_eq(fl_codec_set_reader_version(codec, "PostCreated", 2), FL_OK);
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK);
    cr_assert_eq(decode(out, len, &back), FL_OK, "%s", err);
    assert_events_equal(&ev, &back, "unpinned");
    fl_event_clear(&back);
    fl_event_clear(&ev);
}

Test(codec, encode_errors, .init = codec_setup, .fini = codec_teardown)
{
    fl_event_t ev;
    const void *out;
    size_t len;

    memset(&ev, 0, sizeof(ev));
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_ERR_INVALID);

    sample_event(3, &ev);
    free(ev.text);
    ev.text = NULL;
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "text"), "%s", err);
    ev.text = strdup("bad \xc3\x28 utf-8");
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "UTF-8"), "%s", err);
    free(ev.text);
    ev.text = strdup("ok");
    ev.visibility = (fl_visibility_t)3;
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert(strstr(err, "visibility"), "%s", err);
    ev.visibility = FL_VIS_PUBLIC;

    /* A body over the limit is refused, one just under it is fine. */
    free(ev.text);
    ev.text = malloc(FL_CODEC_MAX_MESSAGE);
    memset(ev.text, 'x', FL_CODEC_MAX_MESSAGE - 1);
    ev.text[FL_CODEC_MAX_MESSAGE - 1] = '\0';
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_ERR_OVERSIZED);
    ev.text[FL_CODEC_MAX_MESSAGE - 100] = '\0';
    cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_leq(len, FL_CODEC_MAX_MESSAGE);
    fl_event_t back;
    cr_assert_eq(decode(out, len, &back), FL_OK, "%s", err);
    cr_assert_eq(strlen(back.text), FL_CODEC_MAX_MESSAGE - 100);
    fl_event_clear(&back);
    fl_event_clear(&ev);
}

/* ---- the codec: malformed input ----------------------------------------- */

Test(malformed, magic_and_schema_id, .init = codec_setup, .fini = codec_teardown)
{
    fl_event_t ev;
    int32_t sid = 12345;
    tbuf_t t;

    post_v2(&t, 0, 0, 0);
    expect_decode(t.b, t.n, FL_OK, "baseline");
    t.b[0] = 0x01;
    expect_decode(t.b, t.n, FL_ERR_MAGIC, "magic 0x01");
    t.b[0] = '{';
    expect_decode(t.b, t.n, FL_ERR_MAGIC, "JSON instead of Avro");
    expect_decode(t.b, 1, FL_ERR_MAGIC, "lone wrong magic byte");
    t.b[0] = 0;

    static const uint32_t bad_ids[] = {0, 10, 0x7fffffff, 0x80000000, 0xffffffff, 0x00000109};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        t.b[1] = (uint8_t)(bad_ids[i] >> 24);
        t.b[2] = (uint8_t)(bad_ids[i] >> 16);
        t.b[3] = (uint8_t)(bad_ids[i] >> 8);
        t.b[4] = (uint8_t)bad_ids[i];
        memset(&ev, 0, sizeof(ev));
        cr_assert_eq(fl_codec_decode(codec, t.b, t.n, &ev, &sid, err, sizeof(err)),
                     FL_ERR_SCHEMA_ID, "id %" PRIu32, bad_ids[i]);
        cr_assert_eq((uint32_t)sid, bad_ids[i], "schema_id is reported");
        cr_assert(event_is_zero(&ev));
    }
}

Test(malformed, truncated, .init = codec_setup, .fini = codec_teardown)
{
    tbuf_t t;

    post_v2(&t, 1, 1, 123456789);
    expect_decode(NULL, 0, FL_ERR_TRUNCATED, "NULL, 0");
    expect_decode(t.b, 0, FL_ERR_TRUNCATED, "empty");
    expect_decode(t.b, 3, FL_ERR_TRUNCATED, "3 bytes");
    expect_decode(t.b, FL_CODEC_HEADER_SIZE, FL_ERR_TRUNCATED, "header only");

    /* Every cut of every record, hand-made and encoded. */
    for (size_t cut = 1; cut < t.n; cut++) {
        char what[128];
        snprintf(what, sizeof(what), "hand-made PostCreated cut at %zu of %zu", cut, t.n);
        expect_decode(t.b, cut, FL_ERR_TRUNCATED, what);
    }
    for (size_t i = 0; i < N_SAMPLES; i++) {
        fl_event_t ev;
        const void *out;
        size_t len;
        uint8_t copy[512];

        sample_event(i, &ev);
        cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK);
        cr_assert_leq(len, sizeof(copy));
        memcpy(copy, out, len);
        for (size_t cut = 1; cut < len; cut++) {
            char what[128];
            snprintf(what, sizeof(what), "sample %zu cut at %zu of %zu", i, cut, len);
            expect_decode(copy, cut, FL_ERR_TRUNCATED, what);
        }
        fl_event_clear(&ev);
    }
}

static size_t max_alloc;
static struct avro_allocator_state saved_allocator;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    if (nsize > max_alloc)
        max_alloc = nsize;
    return saved_allocator.alloc(ud, ptr, osize, nsize);
}

Test(malformed, oversized, .init = codec_setup, .fini = codec_teardown)
{
    uint8_t *big = calloc(1, FL_CODEC_MAX_MESSAGE + 1);
    tbuf_t t;

    expect_decode(big, FL_CODEC_MAX_MESSAGE + 1, FL_ERR_OVERSIZED, "message above the limit");
    big[0] = 0x7f; /* the size check comes first, whatever the bytes */
    expect_decode(big, FL_CODEC_MAX_MESSAGE + 1, FL_ERR_OVERSIZED, "above the limit, bad magic");
    free(big);

    /* A string length of 2^40 in a 12-byte message: refused before avro-c
     * (which would try to allocate it) ever sees it. */
    t.n = 0;
    put_header(&t, 1);
    put_long(&t, (int64_t)1 << 40);
    put_str(&t, "x");
    saved_allocator = AVRO_CURRENT_ALLOCATOR;
    max_alloc = 0;
    avro_set_allocator(counting_alloc, saved_allocator.user_data);
    expect_decode(t.b, t.n, FL_ERR_OVERSIZED, "string length 2^40");
    cr_assert(strstr(err, "event_id"), "names the field: %s", err);

    /* The largest length a varint can carry, and lengths just past the
     * limit or the data. */
    t.n = 0;
    put_header(&t, 1);
    put_long(&t, INT64_MAX);
    expect_decode(t.b, t.n, FL_ERR_OVERSIZED, "string length INT64_MAX");
    t.n = 0;
    put_header(&t, 1);
    put_long(&t, FL_CODEC_MAX_MESSAGE + 1);
    expect_decode(t.b, t.n, FL_ERR_OVERSIZED, "string length limit + 1");
    t.n = 0;
    put_header(&t, 1);
    put_long(&t, 1000);
    put_str(&t, "short");
    expect_decode(t.b, t.n, FL_ERR_TRUNCATED, "string length past the data");
    avro_set_allocator(saved_allocator.alloc, saved_allocator.user_data);
    cr_assert_lt(max_alloc, 4096, "avro-c allocated %zu bytes", max_alloc);
}

Test(malformed, trailing_bytes, .init = codec_setup, .fini = codec_teardown)
{
    tbuf_t t;

    post_v2(&t, 0, 0, 0);
    put_byte(&t, 0);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "one trailing byte");
    cr_assert(strstr(err, "left over"), "%s", err);
    post_v2(&t, 0, 1, 5);
    put_str(&t, "another record glued on");
    expect_decode(t.b, t.n, FL_ERR_INVALID, "trailing garbage");
}

Test(malformed, enum_and_union_indexes, .init = codec_setup, .fini = codec_teardown)
{
    static const int64_t bad[] = {3, 4, -1, 1000, INT32_MAX, INT32_MIN};
    tbuf_t t;

    for (int64_t vis = 0; vis < 3; vis++) {
        post_v2(&t, vis, 0, 0);
        expect_decode(t.b, t.n, FL_OK, "valid visibility");
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[128];
        snprintf(what, sizeof(what), "enum index %" PRId64, bad[i]);
        post_v2(&t, bad[i], 0, 0);
        expect_decode(t.b, t.n, FL_ERR_INVALID, what);
        cr_assert(strstr(err, "visibility"), "%s", err);
        snprintf(what, sizeof(what), "union index %" PRId64, bad[i] == 3 ? 2 : bad[i]);
        post_v2(&t, 0, bad[i] == 3 ? 2 : bad[i], 1);
        expect_decode(t.b, t.n, FL_ERR_INVALID, what);
        cr_assert(strstr(err, "reply_to"), "%s", err);
    }
    /* Indexes beyond int range: the varint itself is too long for an int. */
    post_v2(&t, (int64_t)1 << 40, 0, 0);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "enum index 2^40");
}

Test(malformed, varints_and_strings, .init = codec_setup, .fini = codec_teardown)
{
    tbuf_t t;

    /* 11-byte varint for occurred_at. */
    t.n = 0;
    put_header(&t, 5);
    put_str(&t, "e");
    for (int i = 0; i < 10; i++)
        put_byte(&t, 0x80);
    put_byte(&t, 0x00);
    put_long(&t, 1);
    put_long(&t, 2);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "11-byte varint");

    /* 10-byte varint whose last byte overflows 64 bits. */
    t.n = 0;
    put_header(&t, 5);
    put_str(&t, "e");
    for (int i = 0; i < 9; i++)
        put_byte(&t, 0xff);
    put_byte(&t, 0x02);
    put_long(&t, 1);
    put_long(&t, 2);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "varint overflow");

    /* The longest legal varints decode. */
    t.n = 0;
    put_header(&t, 5);
    put_str(&t, "e");
    put_long(&t, INT64_MIN);
    put_long(&t, INT64_MAX);
    put_long(&t, -1);
    fl_event_t ev;
    cr_assert_eq(decode(t.b, t.n, &ev), FL_OK, "%s", err);
    cr_assert_eq(ev.occurred_at, INT64_MIN);
    cr_assert_eq(ev.follower_id, INT64_MAX);
    cr_assert_eq(ev.followee_id, -1);
    fl_event_clear(&ev);

    static const struct {
        const char *bytes;
        size_t n;
        const char *what;
    } strs[] = {
        {"a\0b", 3, "NUL inside a string"},        {"\xff", 1, "invalid UTF-8 byte"},
        {"\xc0\xaf", 2, "overlong UTF-8"},         {"\xed\xa0\x80", 3, "UTF-16 surrogate"},
        {"\xf4\x90\x80\x80", 4, "above U+10FFFF"}, {"\xe2\x82", 2, "cut UTF-8 sequence"},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        t.n = 0;
        put_header(&t, 5);
        put_bytes(&t, strs[i].bytes, strs[i].n);
        put_long(&t, 1);
        put_long(&t, 2);
        put_long(&t, 3);
        expect_decode(t.b, t.n, FL_ERR_INVALID, strs[i].what);
    }

    t.n = 0;
    put_header(&t, 5);
    put_long(&t, -2); /* negative length */
    put_long(&t, 1);
    put_long(&t, 2);
    put_long(&t, 3);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "negative string length");
}

/* xorshift64*: a fixed-seed generator, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

Test(malformed, random_mutations_never_crash, .init = codec_setup, .fini = codec_teardown)
{
    uint8_t seeds[N_SAMPLES + 1][256];
    size_t seed_len[N_SAMPLES + 1];
    size_t counts[FL_ERR__COUNT] = {0};
    fl_event_t ev;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        const void *out;
        sample_event(i, &ev);
        cr_assert_eq(fl_codec_encode(codec, &ev, &out, &seed_len[i], err, sizeof(err)), FL_OK);
        memcpy(seeds[i], out, seed_len[i]);
        fl_event_clear(&ev);
    }
    {
        const void *out;
        sample_event(4, &ev); /* a v1 PostCreated too */
        cr_assert_eq(
            fl_codec_encode_version(codec, &ev, 1, &out, &seed_len[N_SAMPLES], err, sizeof(err)),
            FL_OK);
        memcpy(seeds[N_SAMPLES], out, seed_len[N_SAMPLES]);
        fl_event_clear(&ev);
    }

    for (int iter = 0; iter < 20000; iter++) {
        size_t s = rng() % (N_SAMPLES + 1);
        uint8_t buf[512];
        size_t n = seed_len[s];
        int muts = 1 + (int)(rng() % 4);

        memcpy(buf, seeds[s], n);
        for (int m = 0; m < muts; m++) {
            size_t pos = n ? rng() % n : 0;
            switch (rng() % 7) {
            case 0: /* flip a bit */
                if (n)
                    buf[pos] ^= (uint8_t)(1u << (rng() % 8));
                break;
            case 1: /* random byte */
                if (n)
                    buf[pos] = (uint8_t)rng();
                break;
            case 2: /* interesting byte */ {
                static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x02, 0x06};
                if (n)
                    buf[pos] = vals[rng() % sizeof(vals)];
                break;
            }
            case 3: /* insert */
                if (n < sizeof(buf)) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = (uint8_t)rng();
                    n++;
                }
                break;
            case 4: /* delete */
                if (n) {
                    memmove(buf + pos, buf + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            case 5: /* truncate */
                n = pos;
                break;
            case 6: /* run of continuation bytes */ {
                size_t run = 1 + rng() % 12;
                for (size_t k = 0; k < run && pos + k < n; k++)
                    buf[pos + k] = 0xff;
                break;
            }
            }
        }
        if (rng() % 4) /* keep the header valid most of the time */
            memcpy(buf, seeds[s], n < FL_CODEC_HEADER_SIZE ? n : FL_CODEC_HEADER_SIZE);

        fl_err_t rc = decode(buf, n, &ev);
        cr_assert_lt((int)rc, (int)FL_ERR__COUNT);
        counts[rc]++;
        if (rc == FL_OK) {
            /* Whatever decodes must re-encode and decode to the same event. */
            const void *out;
            size_t len;
            fl_event_t again;
            json_t *j;
            cr_assert_eq(fl_codec_encode(codec, &ev, &out, &len, err, sizeof(err)), FL_OK,
                         "iteration %d: %s", iter, err);
            memset(&again, 0, sizeof(again));
            cr_assert_eq(fl_codec_decode(codec, out, len, &again, NULL, err, sizeof(err)), FL_OK);
            assert_events_equal(&ev, &again, "mutant re-encoded");
            j = fl_event_to_json(&ev);
            cr_assert_not_null(j, "decoded events are valid JSON");
            json_decref(j);
            fl_event_clear(&again);
        } else {
            cr_assert(event_is_zero(&ev));
        }
        fl_event_clear(&ev);
    }
    cr_log_info("mutants: ok %zu invalid %zu truncated %zu oversized %zu magic %zu id %zu",
                counts[FL_OK], counts[FL_ERR_INVALID], counts[FL_ERR_TRUNCATED],
                counts[FL_ERR_OVERSIZED], counts[FL_ERR_MAGIC], counts[FL_ERR_SCHEMA_ID]);
    cr_assert_gt(counts[FL_OK], 0);
    cr_assert_gt(counts[FL_ERR_INVALID], 0);
    cr_assert_gt(counts[FL_ERR_TRUNCATED], 0);
}

/* ---- schema evolution and load errors, in temporary schema dirs -------- */

typedef struct override {
    const char *file;    /* name inside the schemas dir */
    const char *content; /* NULL: delete the file */
} override_t;

static void write_file(const char *path, const char *content, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(content, 1, n, f), n);
    fclose(f);
}

/* A copy of the real schemas dir with some files replaced or deleted. */
static char *make_schema_dir(const override_t *ov, size_t n_ov)
{
    char *dir = strdup("/tmp/fl-codec-test-XXXXXX");
    DIR *dp;
    struct dirent *de;

    cr_assert_not_null(mkdtemp(dir));
    dp = opendir(schemas_dir());
    cr_assert_not_null(dp);
    while ((de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        char src[8192], dst[8192];
        FILE *f;
        char buf[65536];
        size_t n;

        if (strcmp(de->d_name, "ids.tsv") && (len < 5 || strcmp(de->d_name + len - 5, ".avsc")))
            continue;
        snprintf(src, sizeof(src), "%s/%s", schemas_dir(), de->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", dir, de->d_name);
        f = fopen(src, "rb");
        cr_assert_not_null(f);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        write_file(dst, buf, n);
    }
    closedir(dp);
    for (size_t i = 0; i < n_ov; i++) {
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, ov[i].file);
        if (ov[i].content)
            write_file(path, ov[i].content, strlen(ov[i].content));
        else
            unlink(path);
    }
    return dir;
}

static void remove_schema_dir(char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *de;

    while (dp && (de = readdir(dp))) {
        char path[8192];
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (dp)
        closedir(dp);
    rmdir(dir);
    free(dir);
}

#define REC(name)                                                                                  \
    "{\"type\":\"record\",\"name\":\"" name "\",\"namespace\":\"dev.feedline.events\","
#define TS(name)                                                                                   \
    "{\"name\":\"" name "\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}"
#define F_STR(name)  "{\"name\":\"" name "\",\"type\":\"string\"}"
#define F_LONG(name) "{\"name\":\"" name "\",\"type\":\"long\"}"
#define POST_HEAD                                                                                  \
    REC("PostCreated")                                                                             \
    "\"fields\":[" F_STR("event_id") "," TS("occurred_at") "," F_LONG("post_id") "," F_LONG(       \
        "author_id") "," TS("created_at")
#define TEXT  "," F_STR("text")
#define SYMS3 "\"PUBLIC\",\"FOLLOWERS\",\"PRIVATE\""
#define VIS(syms, enum_extra)                                                                      \
    ",{\"name\":\"visibility\",\"type\":{\"type\":\"enum\",\"name\":\"Visibility\",\"symbols\":"   \
    "[" syms "]" enum_extra "},\"default\":\"PUBLIC\"}"
#define ENUM_DEFAULT ",\"default\":\"PUBLIC\""
#define REPLY        ",{\"name\":\"reply_to\",\"type\":[\"null\",\"long\"],\"default\":null}"
#define END          "]}"

#define IDS_BASE                                                                                   \
    "# id\trecord\tversion\tfile\n"                                                                \
    "1\tUserRegistered\t1\tUserRegistered.v1.avsc\n"                                               \
    "2\tUserUpdated\t1\tUserUpdated.v1.avsc\n"                                                     \
    "3\tPostCreated\t1\tPostCreated.v1.avsc\n"                                                     \
    "4\tPostDeleted\t1\tPostDeleted.v1.avsc\n"                                                     \
    "5\tFollowAdded\t1\tFollowAdded.v1.avsc\n"                                                     \
    "6\tFollowRemoved\t1\tFollowRemoved.v1.avsc\n"                                                 \
    "7\tLikeAdded\t1\tLikeAdded.v1.avsc\n"                                                         \
    "8\tLikeRemoved\t1\tLikeRemoved.v1.avsc\n"

static fl_codec_t *codec_with(const override_t *ov, size_t n, char **dir)
{
    fl_codec_t *c;

    *dir = make_schema_dir(ov, n);
    err[0] = '\0';
    c = fl_codec_new(*dir, err, sizeof(err));
    cr_assert_not_null(c, "fl_codec_new: %s", err);
    return c;
}

Test(evolution, missing_field_takes_the_reader_default)
{
    /* An old writer without visibility: the reader's default applies. */
    static const override_t ov[] = {{"PostCreated.v1.avsc", POST_HEAD TEXT END}};
    char *dir;
    fl_codec_t *c = codec_with(ov, 1, &dir);
    fl_event_t ev, back;
    const void *out;
    size_t len;

    sample_event(5, &ev); /* PRIVATE */
    cr_assert_eq(fl_codec_encode_version(c, &ev, 1, &out, &len, err, sizeof(err)), FL_OK, "%s",
                 err);
    memset(&back, 0, sizeof(back));
    cr_assert_eq(fl_codec_decode(c, out, len, &back, NULL, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_eq(back.visibility, FL_VIS_PUBLIC, "default of the reader");
    cr_assert_not(back.has_reply_to);
    cr_assert_str_eq(back.text, ev.text);
    cr_assert_eq(back.post_id, ev.post_id);
    fl_event_clear(&back);

    /* That old version cannot be the reader: it lacks a required field. */
    cr_assert_eq(fl_codec_set_reader_version(c, "PostCreated", 1), FL_ERR_SCHEMA);
    cr_assert_eq(fl_codec_encode(c, &ev, &out, &len, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_codec_decode(c, out, len, &back, NULL, err, sizeof(err)), FL_OK, "%s", err);
    assert_events_equal(&ev, &back, "after a refused pin");
    fl_event_clear(&back);
    fl_event_clear(&ev);
    fl_codec_free(c);
    remove_schema_dir(dir);
}

Test(evolution, required_string_default)
{
    static const override_t ov[] = {
        {"PostCreated.v1.avsc", POST_HEAD VIS(SYMS3, ENUM_DEFAULT) END},
        {"PostCreated.v2.avsc", POST_HEAD ",{\"name\":\"text\",\"type\":\"string\",\"default\":"
                                          "\"(no text)\"}" VIS(SYMS3, ENUM_DEFAULT) REPLY END},
    };
    char *dir;
    fl_codec_t *c = codec_with(ov, 2, &dir);
    fl_event_t ev, back;
    const void *out;
    size_t len;

    sample_event(3, &ev);
    cr_assert_eq(fl_codec_encode_version(c, &ev, 1, &out, &len, err, sizeof(err)), FL_OK, "%s",
                 err);
    memset(&back, 0, sizeof(back));
    cr_assert_eq(fl_codec_decode(c, out, len, &back, NULL, err, sizeof(err)), FL_OK, "%s", err);
    cr_assert_str_eq(back.text, "(no text)");
    fl_event_clear(&back);
    fl_event_clear(&ev);
    fl_codec_free(c);
    remove_schema_dir(dir);
}

Test(evolution, enum_symbols_map_by_name)
{
    static const override_t ov[] = {
        {"PostCreated.v1.avsc", POST_HEAD TEXT VIS("\"PRIVATE\",\"FOLLOWERS\",\"PUBLIC\"", "") END},
    };
    char *dir;
    fl_codec_t *c = codec_with(ov, 1, &dir);
    fl_event_t ev, back;
    const void *out;
    size_t len;

    sample_event(3, &ev);
    for (int vis = 0; vis < 3; vis++) {
        ev.visibility = (fl_visibility_t)vis;
        cr_assert_eq(fl_codec_encode_version(c, &ev, 1, &out, &len, err, sizeof(err)), FL_OK, "%s",
                     err);
        /* The writer's index is its own order: PRIVATE is 0 there. */
        cr_assert_eq(((const uint8_t *)out)[len - 1], (uint8_t)((2 - vis) * 2));
        memset(&back, 0, sizeof(back));
        cr_assert_eq(fl_codec_decode(c, out, len, &back, NULL, err, sizeof(err)), FL_OK, "%s", err);
        cr_assert_eq(back.visibility, (fl_visibility_t)vis, "symbol %d", vis);
        fl_event_clear(&back);
    }
    fl_event_clear(&ev);
    fl_codec_free(c);
    remove_schema_dir(dir);
}

/* PostCreated v1 body (id 3) with a raw visibility index; lang adds the
 * writer-only string field of the "lang" schema below. */
static void post_v1(tbuf_t *t, int64_t vis, const char *lang)
{
    t->n = 0;
    put_header(t, 3);
    put_str(t, "ev-v1");
    put_long(t, 1);
    put_long(t, 2);
    put_long(t, 3);
    put_long(t, 4);
    put_str(t, "text");
    if (lang)
        put_str(t, lang);
    put_long(t, vis);
}

Test(evolution, unknown_writer_symbol_takes_the_enum_default)
{
    static const override_t with_default[] = {
        {"PostCreated.v1.avsc",
         POST_HEAD TEXT VIS("\"PUBLIC\",\"FOLLOWERS\",\"PRIVATE\",\"UNLISTED\"", "") END},
    };
    static const override_t without_default[] = {
        {"PostCreated.v1.avsc",
         POST_HEAD TEXT VIS("\"PUBLIC\",\"FOLLOWERS\",\"PRIVATE\",\"UNLISTED\"", "") END},
        {"PostCreated.v2.avsc", POST_HEAD TEXT VIS(SYMS3, "") REPLY END},
    };
    char *dir;
    fl_codec_t *saved = codec;
    tbuf_t t;
    fl_event_t ev;

    codec = codec_with(with_default, 1, &dir);
    post_v1(&t, 3, NULL);
    cr_assert_eq(decode(t.b, t.n, &ev), FL_OK, "%s", err);
    cr_assert_eq(ev.visibility, FL_VIS_PUBLIC);
    fl_event_clear(&ev);
    post_v1(&t, 2, NULL);
    cr_assert_eq(decode(t.b, t.n, &ev), FL_OK, "%s", err);
    cr_assert_eq(ev.visibility, FL_VIS_PRIVATE);
    fl_event_clear(&ev);
    post_v1(&t, 4, NULL);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "index past the writer's symbols");
    fl_codec_free(codec);
    remove_schema_dir(dir);

    /* Without an enum default the unknown symbol cannot be read. */
    codec = codec_with(without_default, 2, &dir);
    post_v1(&t, 3, NULL);
    expect_decode(t.b, t.n, FL_ERR_INVALID, "unknown symbol, no default");
    post_v1(&t, 1, NULL);
    expect_decode(t.b, t.n, FL_OK, "known symbol");
    fl_codec_free(codec);
    remove_schema_dir(dir);
    codec = saved;
}

Test(evolution, writer_only_field_is_skipped)
{
    static const override_t ov[] = {
        {"PostCreated.v1.avsc",
         POST_HEAD TEXT ",{\"name\":\"lang\",\"type\":\"string\"}" VIS(SYMS3, ENUM_DEFAULT) END},
    };
    char *dir;
    fl_codec_t *saved = codec;
    tbuf_t t;
    fl_event_t ev;
    const void *out;
    size_t len;

    codec = codec_with(ov, 1, &dir);
    post_v1(&t, 1, "en");
    cr_assert_eq(decode(t.b, t.n, &ev), FL_OK, "%s", err);
    cr_assert_str_eq(ev.text, "text");
    cr_assert_eq(ev.visibility, FL_VIS_FOLLOWERS);
    post_v1(&t, 1, "\xff");
    expect_decode(t.b, t.n, FL_ERR_INVALID, "skipped fields are checked too");
    /* The codec cannot fill lang, so it does not write v1. */
    cr_assert_eq(fl_codec_encode_version(codec, &ev, 1, &out, &len, err, sizeof(err)),
                 FL_ERR_SCHEMA);
    cr_assert(strstr(err, "lang"), "%s", err);
    /* Nor can v1 be the reader: v2 records lack lang and it has no default. */
    cr_assert_eq(fl_codec_set_reader_version(codec, "PostCreated", 1), FL_ERR_SCHEMA);
    fl_event_clear(&ev);
    fl_codec_free(codec);
    remove_schema_dir(dir);
    codec = saved;
}

/* A writer-only field of every Avro type, which the reader skips: the
 * walk must check each of them before avro-c skips them. */
#define EXTRAS                                                                                     \
    ",{\"name\":\"n\",\"type\":\"int\"},{\"name\":\"ok\",\"type\":\"boolean\"},"                   \
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"                    \
    "{\"name\":\"blob\",\"type\":\"bytes\"},"                                                      \
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Four\",\"size\":4}},"                \
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"                      \
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"                        \
    "{\"name\":\"nulls\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"                       \
    "{\"name\":\"node\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":"    \
    "\"next\",\"type\":[\"null\",\"Node\"]}]}}"
#define N_EXTRAS 10

static void put_extra(tbuf_t *t, int i)
{
    switch (i) {
    case 0:
        put_long(t, -5);
        break;
    case 1:
        put_byte(t, 1);
        break;
    case 2:
        for (int k = 0; k < 4; k++)
            put_byte(t, 0x40);
        break;
    case 3:
        for (int k = 0; k < 8; k++)
            put_byte(t, 0x3f);
        break;
    case 4:
        put_bytes(t, "\x00\xff", 2);
        break;
    case 5:
        put_byte(t, 1), put_byte(t, 2), put_byte(t, 3), put_byte(t, 4);
        break;
    case 6:
        put_long(t, 2), put_str(t, "a"), put_str(t, "b"), put_long(t, 0);
        break;
    case 7: /* one block with a byte size: key "k", value 7 */
        put_long(t, -1), put_long(t, 3), put_str(t, "k"), put_long(t, 7), put_long(t, 0);
        break;
    case 8:
        put_long(t, 3), put_long(t, 0);
        break;
    case 9: /* Node -> Node -> null */
        put_long(t, 1), put_long(t, 1), put_long(t, 0);
        break;
    }
}

/* PostCreated v1 with the extras; field bad replaced by the bytes of rep. */
static void post_extras(tbuf_t *t, int bad, const tbuf_t *rep)
{
    t->n = 0;
    put_header(t, 3);
    put_str(t, "ev-x");
    put_long(t, 1), put_long(t, 2), put_long(t, 3), put_long(t, 4);
    put_str(t, "text");
    for (int i = 0; i < N_EXTRAS; i++) {
        if (i != bad) {
            put_extra(t, i);
            continue;
        }
        for (size_t k = 0; k < rep->n; k++)
            put_byte(t, rep->b[k]);
    }
    put_long(t, 2); /* PRIVATE */
}

Test(evolution, walk_checks_every_avro_type)
{
    static const override_t ov[] = {
        {"PostCreated.v1.avsc", POST_HEAD TEXT EXTRAS VIS(SYMS3, ENUM_DEFAULT) END},
    };
    char *dir;
    fl_codec_t *saved = codec;
    fl_event_t ev;
    tbuf_t t, rep;

    codec = codec_with(ov, 1, &dir);
    post_extras(&t, -1, NULL);
    cr_assert_eq(decode(t.b, t.n, &ev), FL_OK, "%s", err);
    cr_assert_str_eq(ev.text, "text");
    cr_assert_eq(ev.visibility, FL_VIS_PRIVATE);
    fl_event_clear(&ev);
    for (size_t cut = FL_CODEC_HEADER_SIZE; cut < t.n; cut++) {
        char what[64];
        snprintf(what, sizeof(what), "cut at %zu", cut);
        expect_decode(t.b, cut, FL_ERR_TRUNCATED, what);
    }

    static const struct {
        int field;
        fl_err_t want;
        const char *what;
    } cases[] = {
        {0, FL_ERR_INVALID, "int varint of 6 bytes"},
        {0, FL_ERR_INVALID, "int above 2^31"},
        {1, FL_ERR_INVALID, "boolean 2"},
        {4, FL_ERR_OVERSIZED, "bytes length 2^40"},
        {6, FL_ERR_OVERSIZED, "array block of 2^40 items"},
        {6, FL_ERR_INVALID, "array block count INT64_MIN"},
        {6, FL_ERR_INVALID, "array item not UTF-8"},
        {7, FL_ERR_INVALID, "map block size that does not match"},
        {7, FL_ERR_INVALID, "map key not UTF-8"},
        {8, FL_ERR_OVERSIZED, "1000 nulls in a small message"},
        {8, FL_ERR_OVERSIZED, "many blocks of nulls"},
        {9, FL_ERR_INVALID, "union index 2 in a nested record"},
        {9, FL_ERR_INVALID, "nesting 40 deep"},
        {9, FL_OK, "nesting 10 deep"},
        {8, FL_OK, "a null array in two blocks"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rep.n = 0;
        switch (i) {
        case 0:
            for (int k = 0; k < 5; k++)
                put_byte(&rep, 0x80);
            put_byte(&rep, 0x01);
            break;
        case 1:
            put_long(&rep, (int64_t)1 << 33);
            break;
        case 2:
            put_byte(&rep, 2);
            break;
        case 3:
            put_long(&rep, (int64_t)1 << 40);
            break;
        case 4:
            put_long(&rep, (int64_t)1 << 40);
            break;
        case 5:
            put_long(&rep, INT64_MIN);
            break;
        case 6:
            put_long(&rep, 1), put_bytes(&rep, "\xff", 1), put_long(&rep, 0);
            break;
        case 7:
            put_long(&rep, -1), put_long(&rep, 4), put_str(&rep, "k"), put_long(&rep, 7);
            put_long(&rep, 0), put_long(&rep, 0);
            break;
        case 8:
            put_long(&rep, 1), put_bytes(&rep, "\xc3", 1), put_long(&rep, 7), put_long(&rep, 0);
            break;
        case 9:
            put_long(&rep, 1000), put_long(&rep, 0);
            break;
        case 10:
            for (int k = 0; k < 60; k++)
                put_long(&rep, 60);
            put_long(&rep, 0);
            break;
        case 11:
            put_long(&rep, 1), put_long(&rep, 2);
            break;
        case 12:
        case 13:
            for (int k = 0; k < (i == 12 ? 40 : 10); k++)
                put_long(&rep, 1);
            put_long(&rep, 0);
            break;
        case 14:
            put_long(&rep, 2), put_long(&rep, -3), put_long(&rep, 0), put_long(&rep, 0);
            break;
        }
        post_extras(&t, cases[i].field, &rep);
        expect_decode(t.b, t.n, cases[i].want, cases[i].what);
    }
    fl_codec_free(codec);
    remove_schema_dir(dir);
    codec = saved;
}

Test(evolution, load_errors)
{
    static const struct {
        override_t ov[2];
        const char *needle;
    } cases[] = {
        {{{"ids.tsv", NULL}}, "ids.tsv"},
        {{{"ids.tsv", "1\tUserRegistered\t1\n"}}, "columns"},
        {{{"ids.tsv", "1\tUserRegistered\t1\tUserRegistered.v1.avsc\textra\n"}}, "columns"},
        {{{"ids.tsv", "x\tUserRegistered\t1\tUserRegistered.v1.avsc\n"}}, "bad schema id"},
        {{{"ids.tsv", "0\tUserRegistered\t1\tUserRegistered.v1.avsc\n"}}, "bad schema id"},
        {{{"ids.tsv", "1\tUserRegistered\tv1\tUserRegistered.v1.avsc\n"}}, "bad version"},
        {{{"ids.tsv", "1\tPostEdited\t1\tPostCreated.v1.avsc\n"}}, "PostEdited"},
        {{{"ids.tsv", "1\tUserRegistered\t1\t../schemas/UserRegistered.v1.avsc\n"}}, "inside"},
        {{{"ids.tsv", "1\tUserRegistered\t1\t/etc/passwd\n"}}, "inside"},
        {{{"ids.tsv", IDS_BASE "3\tPostCreated\t2\tPostCreated.v2.avsc\n"}}, "duplicate"},
        {{{"ids.tsv", IDS_BASE "9\tPostCreated\t1\tPostCreated.v2.avsc\n"}}, "duplicate"},
        {{{"ids.tsv", "1\tUserRegistered\t1\tUserRegistered.v1.avsc\n"}}, "no schema for"},
        {{{"PostDeleted.v1.avsc", NULL}}, "PostDeleted.v1.avsc"},
        {{{"PostCreated.v2.avsc", "{\"type\": \"record\", "}}, "PostCreated.v2.avsc"},
        {{{"PostCreated.v2.avsc", REC("PostCreated") "\"fields\":[{\"name\":\"x\",\"type\":"
                                                     "\"nosuchtype\"}]}"}},
         "PostCreated.v2.avsc"},
        {{{"UserRegistered.v1.avsc",
           REC("UserRegistered") "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"}," TS(
               "occurred_at") ",{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"handle\","
                              "\"type\":\"string\"},{\"name\":\"display_name\",\"type\":"
                              "\"string\"}]}"}},
         "user_id"},
        {{{"FollowAdded.v1.avsc",
           REC("FollowAdded") "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":"
                              "\"occurred_at\",\"type\":\"long\"},{\"name\":\"follower_id\","
                              "\"type\":\"long\"},{\"name\":\"followee_id\",\"type\":\"long\"}]}"}},
         "occurred_at"},
        {{{"PostCreated.v2.avsc", POST_HEAD TEXT VIS(SYMS3, ENUM_DEFAULT) END}}, "reply_to"},
        {{{"PostCreated.v2.avsc",
           "{\"type\":\"record\",\"name\":\"PostCreated\",\"namespace\":\"com.example\","
           "\"fields\":[]}"}},
         "expected record"},
        {{{"PostDeleted.v1.avsc",
           REC("FollowAdded") "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"}]}"}},
         "expected record"},
        {{{"PostCreated.v2.avsc",
           POST_HEAD TEXT VIS(SYMS3, ENUM_DEFAULT) ",{\"name\":\"reply_to\",\"type\":[\"null\","
                                                   "\"long\"]}" END}},
         "reply_to\" is not in v1 and has no default"},
        {{{"PostCreated.v2.avsc", POST_HEAD TEXT VIS(SYMS3, ENUM_DEFAULT) ",{\"name\":\"reply_to\","
                                                                          "\"type\":[\"null\","
                                                                          "\"long\"],\"default\":"
                                                                          "5}" END}},
         "reply_to"},
        {{{"PostCreated.v2.avsc",
           POST_HEAD TEXT VIS("\"PUBLIC\",\"FOLLOWERS\",\"PRIVATE\",\"UNLISTED\"", ENUM_DEFAULT)
               REPLY END}},
         "UNLISTED"},
        {{{"PostCreated.v2.avsc",
           POST_HEAD TEXT VIS("\"PUBLIC\",\"FOLLOWERS\"", ENUM_DEFAULT) REPLY END}},
         "PRIVATE"},
        {{{"PostCreated.v2.avsc", POST_HEAD TEXT VIS(SYMS3, ENUM_DEFAULT) REPLY
           ",{\"name\":\"lang\",\"type\":\"string\",\"default\":"
           "\"en\"}" END}},
         "lang"},
        {{{"PostCreated.v2.avsc",
           POST_HEAD TEXT VIS(SYMS3, ENUM_DEFAULT) REPLY ",{\"name\":\"lang\",\"type\":"
                                                         "\"string\"}" END}},
         "lang"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cases[i].ov[1].file ? 2 : 1;
        char *dir = make_schema_dir(cases[i].ov, n);
        fl_codec_t *c;

        err[0] = '\0';
        c = fl_codec_new(dir, err, sizeof(err));
        cr_assert_null(c, "case %zu loaded", i);
        cr_log_info("load error %zu: %s", i, err);
        cr_assert(strstr(err, cases[i].needle), "case %zu: \"%s\" does not mention %s", i, err,
                  cases[i].needle);
        remove_schema_dir(dir);
    }
    cr_assert_null(fl_codec_new("/nonexistent/schemas", err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/schemas/ids.tsv"), "%s", err);
}

/* ---- the fuzz corpus ---------------------------------------------------- */

Test(corpus, replay_matches_file_names, .init = codec_setup, .fini = codec_teardown)
{
    static const struct {
        const char *prefix;
        fl_err_t err;
    } classes[] = {
        {"ok-", FL_OK},
        {"err-magic", FL_ERR_MAGIC},
        {"err-schema-id", FL_ERR_SCHEMA_ID},
        {"err-truncated", FL_ERR_TRUNCATED},
        {"err-oversized", FL_ERR_OVERSIZED},
        {"err-invalid", FL_ERR_INVALID},
    };
    char dir[4096];
    DIR *dp;
    struct dirent *de;
    size_t files = 0, oks = 0;

    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/codec", source_dir());
    dp = opendir(dir);
    cr_assert_not_null(dp, "%s", dir);
    while ((de = readdir(dp))) {
        char path[8192];
        uint8_t *data;
        long n;
        FILE *f;
        fl_event_t ev;
        fl_err_t got;
        size_t k;

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
        data = malloc(n ? (size_t)n : 1);
        cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
        fclose(f);

        got = decode(data, (size_t)n, &ev);
        for (k = 0; k < sizeof(classes) / sizeof(classes[0]); k++)
            if (!strncmp(de->d_name, classes[k].prefix, strlen(classes[k].prefix)))
                break;
        if (k < sizeof(classes) / sizeof(classes[0]))
            cr_assert_eq(got, classes[k].err, "%s: got %s (%s)", de->d_name, fl_err_str(got), err);
        else
            cr_assert_neq(got, FL_OK, "%s decoded", de->d_name);
        if (got == FL_OK)
            oks++;
        fl_event_clear(&ev);
        free(data);
        files++;
    }
    closedir(dp);
    cr_assert_geq(files, 20, "corpus has only %zu files", files);
    cr_assert_geq(oks, 8, "corpus has only %zu ok- files", oks);
}
