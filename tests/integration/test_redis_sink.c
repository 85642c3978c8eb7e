/*
 * test_redis_sink.c - the Redis sink's destination layer against a real
 * Redis (FEEDLINE_REDIS, else the topology's endpoint), through the
 * fl_sink_def_t callbacks with synthetic records; no Kafka.
 *
 * Every test starts from an empty Redis (FLUSHALL): it owns the server
 * while it runs. Engagement facts are encoded here from fl_engage.h's
 * documented wire format, so the sink is checked against the contract
 * rather than against the encoder it shares a header with.
 */
#include "fl_engage.h"
#include "fl_keys.h"
#include "fl_redis_int.h"
#include "fl_redis_sink.h"
#include "fl_topology.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define TL    "feedline.timelines-changelog"
#define POSTS "posts"
#define USERS "users"
#define ENG   "feedline.engagement"
#define CELEB "feedline.celebrities"

static fl_topology_t *topo;
static redisContext *ctl;

static redisContext *connect_to(const char *ep)
{
    char host[128];
    const char *colon = strrchr(ep, ':');
    cr_assert(colon, "endpoint %s", ep);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - ep), ep);
    redisContext *c = redisConnect(host, atoi(colon + 1));
    cr_assert(c && !c->err, "redis at %s: %s (start the stack, or set FEEDLINE_REDIS)", ep,
              c ? c->errstr : "?");
    return c;
}

static void setup(void)
{
    char err[512];
    topo = fl_topology_load(fl_topology_default_path(), err, sizeof(err));
    cr_assert(topo, "%s", err);
    ctl = connect_to(topo->endpoints.redis);
    freeReplyObject(redisCommand(ctl, "FLUSHALL"));
}

static pid_t own_redis = -1; /* a server a test started, stopped by teardown */

static void stop_redis(pid_t pid);

static void teardown(void)
{
    if (own_redis > 0)
        stop_redis(own_redis);
    redisFree(ctl);
    fl_topology_free(topo);
}

TestSuite(redis_sink, .init = setup, .fini = teardown);

static void *open_sink(const char *name)
{
    fl_sink_env_t env = {.topo = topo, .name = name, .instance = "0"};
    void *s = NULL;
    cr_assert_eq(fl_redis_sink.open(&env, &s), FL_OK);
    return s;
}

static int64_t claim1(void *s, const char *topic, int32_t p)
{
    fl_sink_part_t part = {topic, p};
    int64_t next = 0;
    cr_assert_eq(fl_redis_sink.claim(s, &part, 1, &next), FL_OK);
    return next;
}

static fl_err_t flush1(void *s, const char *topic, int32_t p, int64_t next)
{
    fl_sink_part_t part = {topic, p};
    return fl_redis_sink.flush(s, &part, &next, 1);
}

static fl_err_t add_raw(void *s, const char *topic, int64_t off, const void *k, size_t klen,
                        const void *v, size_t vlen)
{
    char err[256] = "";
    fl_proc_record_t r = {.topic = topic,
                          .partition = 0,
                          .offset = off,
                          .key = k,
                          .key_len = klen,
                          .value = v,
                          .value_len = vlen};
    return fl_redis_sink.add(s, &r, err, sizeof(err));
}

static void add_tl(void *s, int64_t off, int64_t user, int64_t created, int64_t post, int present)
{
    fl_key_t k;
    cr_assert_eq(fl_key_timeline(&k, user, created, post), FL_OK);
    uint8_t v[8];
    fl_key_enc_i64(v, 7);
    cr_assert_eq(add_raw(s, TL, off, k.buf, k.len, present ? v : NULL, present ? 8 : 0), FL_OK);
}

static void add_event(void *s, const char *topic, int64_t off, fl_event_t *ev)
{
    char err[256] = "";
    ev->event_id = "e";
    ev->occurred_at = 1;
    fl_proc_record_t r = {.topic = topic, .partition = 0, .offset = off, .event = ev};
    cr_assert_eq(fl_redis_sink.add(s, &r, err, sizeof(err)), FL_OK, "%s", err);
}

static void add_post(void *s, int64_t off, int64_t post, int64_t author, int64_t created)
{
    fl_event_t ev = {.type = FL_EV_POST_CREATED,
                     .post_id = post,
                     .author_id = author,
                     .created_at = created,
                     .visibility = FL_VIS_FOLLOWERS,
                     .text = "hello"};
    add_event(s, POSTS, off, &ev);
}

static void del_post(void *s, int64_t off, int64_t post, int64_t author)
{
    fl_event_t ev = {.type = FL_EV_POST_DELETED, .post_id = post, .author_id = author};
    add_event(s, POSTS, off, &ev);
}

/* A fact record as fl_engage.h lays it out; value < 0: a tombstone. */
static void add_fact(void *s, int64_t off, fl_fact_kind_t kind, int64_t a, int64_t b, int nkind,
                     int64_t c, int64_t value)
{
    uint8_t k[FL_FACT_KEY_MAX], v[FL_FACT_VALUE_LEN];
    size_t n = 0;
    k[n++] = (uint8_t)kind;
    fl_key_enc_i64(k + n, a), n += 8;
    if (kind >= FL_FACT_AFFINITY) {
        if (kind == FL_FACT_NOTIFICATION)
            k[n++] = (uint8_t)nkind;
        fl_key_enc_i64(k + n, b), n += 8;
    }
    if (kind == FL_FACT_NOTIFICATION)
        fl_key_enc_i64(k + n, c), n += 8;
    v[0] = 'E', v[1] = 1;
    fl_key_enc_i64(v + 2, value);
    cr_assert_eq(add_raw(s, ENG, off, k, n, value < 0 ? NULL : v, value < 0 ? 0 : sizeof(v)),
                 FL_OK);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctl, fmt, ap);
    va_end(ap);
    cr_assert(r, "redis: %s", ctl->errstr);
    return r;
}

static long long cmd_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctl, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "integer reply expected");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET as a string into buf ("" when absent). */
static const char *hget(char *buf, size_t size, const char *key, const char *field)
{
    redisReply *r = cmd("HGET %s %s", key, field);
    snprintf(buf, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

/* The members of a sorted set, lowest score first, joined by spaces. */
static const char *zmembers(char *buf, size_t size, const char *key)
{
    redisReply *r = cmd("ZRANGE %s 0 -1", key);
    buf[0] = '\0';
    for (size_t i = 0; i < r->elements; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "", r->element[i]->str);
    freeReplyObject(r);
    return buf;
}

/* Messages received on sub since the last call, joined by newlines. */
static const char *messages(redisContext *sub, char *buf, size_t size)
{
    /* A PING answered after every message published before it. */
    redisAppendCommand(sub, "PING");
    buf[0] = '\0';
    for (;;) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
        int done = strcmp(r->element[0]->str, "pong") == 0;
        if (strcmp(r->element[0]->str, "message") == 0)
            snprintf(buf + strlen(buf), size - strlen(buf), "%s\n", r->element[2]->str);
        freeReplyObject(r);
        if (done)
            return buf;
    }
}

static redisContext *subscribe(const char *channel)
{
    redisContext *sub = connect_to(topo->endpoints.redis);
    redisReply *r = redisCommand(sub, "SUBSCRIBE %s", channel);
    cr_assert(r);
    freeReplyObject(r);
    return sub;
}

#define UPD(p) "{\"event\":\"update\",\"post_id\":\"" #p "\"}\n"
#define DEL(p) "{\"event\":\"delete\",\"post_id\":\"" #p "\"}\n"

Test(redis_sink, feed_insert_remove_trim_and_publish)
{
    topo->settings.timeline_cap = 5;
    void *s = open_sink("t-feed");
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    redisContext *sub = subscribe("user:{42}");
    char buf[2048];

    add_tl(s, 0, 42, 1000, 101, 1);
    add_tl(s, 1, 42, 3000, 103, 1);
    add_tl(s, 2, 42, 2000, 102, 1);
    add_tl(s, 3, 43, 2000, 102, 1);
    cr_assert_eq(flush1(s, TL, 0, 4), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "101 102 103");
    redisReply *r = cmd("ZSCORE feed:{42} 103");
    cr_assert_str_eq(r->str, "3000");
    freeReplyObject(r);
    cr_assert_str_eq(messages(sub, buf, sizeof(buf)), UPD(101) UPD(102) UPD(103));

    /* removal, removal of an absent entry, duplicate insert, and an entry
     * inserted and removed in one batch: only the first changes the feed */
    add_tl(s, 4, 42, 2000, 102, 0);
    add_tl(s, 5, 42, 9000, 999, 0);
    add_tl(s, 6, 42, 1000, 101, 1);
    add_tl(s, 7, 42, 8000, 108, 1);
    add_tl(s, 8, 42, 8000, 108, 0);
    cr_assert_eq(flush1(s, TL, 0, 9), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "101 103");
    cr_assert_str_eq(messages(sub, buf, sizeof(buf)), DEL(102));

    /* past the cap (5) the lowest scores go: 101 and 103 */
    for (int i = 0; i < 5; i++)
        add_tl(s, 9 + i, 42, 4000 + i, 200 + i, 1);
    cr_assert_eq(flush1(s, TL, 0, 14), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "200 201 202 203 204");
    cr_assert_str_eq(messages(sub, buf, sizeof(buf)),
                     DEL(101) DEL(103) UPD(200) UPD(201) UPD(202) UPD(203) UPD(204));

    /* an entry older than a full feed never shows: no change, no message */
    add_tl(s, 14, 42, 10, 300, 1);
    cr_assert_eq(flush1(s, TL, 0, 15), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "200 201 202 203 204");
    cr_assert_str_eq(messages(sub, buf, sizeof(buf)), "");
    cr_assert_eq(claim1(s, TL, 0), 15);

    /* the store's other families are skipped, a bad value is refused */
    uint8_t user_key[9] = {FL_KEY_TAG_USER};
    char err[128];
    cr_assert_eq(add_raw(s, TL, 15, user_key, sizeof(user_key), "x", 1), FL_OK);
    fl_key_t k;
    fl_key_timeline(&k, 42, 1, 1);
    cr_assert_eq(add_raw(s, TL, 16, k.buf, k.len, "abc", 3), FL_ERR_INVALID);
    fl_proc_record_t bad = {.topic = "follows", .partition = 0, .offset = 0};
    cr_assert_eq(fl_redis_sink.add(s, &bad, err, sizeof(err)), FL_ERR_INVALID);
    cr_assert_eq(flush1(s, TL, 0, 17), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "200 201 202 203 204");

    redisFree(sub);
    fl_redis_sink.close(s);
}

Test(redis_sink, post_hash_and_like_counts_in_either_order)
{
    topo->settings.outbox_cap = 2;
    void *s = open_sink("t-posts");
    fl_sink_part_t parts[] = {{POSTS, 0}, {ENG, 0}};
    int64_t next[2];
    cr_assert_eq(fl_redis_sink.claim(s, parts, 2, next), FL_OK);
    char buf[256];

    /* created first, then liked */
    add_post(s, 0, 501, 9, 1000);
    add_fact(s, 0, FL_FACT_POST_LIKES, 501, 0, 0, 0, 3);
    /* liked first (another partition's order), then created, with reply_to */
    add_fact(s, 1, FL_FACT_POST_LIKES, 502, 0, 0, 0, 5);
    fl_event_t ev = {.type = FL_EV_POST_CREATED,
                     .post_id = 502,
                     .author_id = 9,
                     .created_at = 2000,
                     .visibility = FL_VIS_PUBLIC,
                     .text = "re",
                     .reply_to = 501,
                     .has_reply_to = true};
    add_event(s, POSTS, 1, &ev);
    next[0] = 2, next[1] = 2;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 2), FL_OK);

    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{501}", "author_id"), "9");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{501}", "created_at"), "1000");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{501}", "text"), "hello");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{501}", "visibility"), "FOLLOWERS");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{501}", "like_count"), "3");
    cr_assert_eq(cmd_int("HEXISTS post:{501} reply_to"), 0);
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{502}", "like_count"), "5");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{502}", "reply_to"), "501");
    cr_assert_eq(cmd_int("EXISTS post-likes:{502}"), 0);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "outbox:{9}"), "501 502");

    /* a like withdrawn to zero, a duplicate PostCreated changing nothing,
     * and the outbox capped at 2 */
    add_fact(s, 2, FL_FACT_POST_LIKES, 501, 0, 0, 0, -1);
    add_post(s, 2, 502, 9, 2000);
    add_post(s, 3, 503, 9, 3000);
    next[0] = 4, next[1] = 3;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 2), FL_OK);
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{501}", "like_count"), "0");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{502}", "like_count"), "5");
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{502}", "text"), "re");
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "outbox:{9}"), "502 503");
    cr_assert_eq(fl_redis_sink.claim(s, parts, 2, next), FL_OK);
    cr_assert_eq(next[0], 4);
    cr_assert_eq(next[1], 3);
    fl_redis_sink.close(s);
}

Test(redis_sink, deleted_posts_are_not_resurrected)
{
    void *s = open_sink("t-deletes");
    fl_sink_part_t parts[] = {{POSTS, 0}, {ENG, 0}};
    int64_t next[2];
    cr_assert_eq(fl_redis_sink.claim(s, parts, 2, next), FL_OK);
    char buf[256];

    add_post(s, 0, 601, 9, 1000);
    add_fact(s, 0, FL_FACT_POST_LIKES, 601, 0, 0, 0, 2);
    del_post(s, 1, 601, 9);
    add_post(s, 2, 601, 9, 1000); /* a duplicate after the delete */
    del_post(s, 3, 602, 9);       /* a delete before its create */
    add_post(s, 4, 602, 9, 2000);
    del_post(s, 5, 603, 8); /* another author's post: ignored */
    add_post(s, 6, 604, 9, 3000);
    del_post(s, 7, 604, 8);
    next[0] = 8, next[1] = 1;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 2), FL_OK);
    add_fact(s, 1, FL_FACT_POST_LIKES, 601, 0, 0, 0, 4); /* a like after the delete */
    next[1] = 2;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 2), FL_OK);

    cr_assert_eq(cmd_int("EXISTS post:{601} post:{602} post-likes:{601}"), 0);
    cr_assert_str_eq(hget(buf, sizeof(buf), "post:{604}", "author_id"), "9");
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "outbox:{9}"), "604");
    fl_redis_sink.close(s);
}

Test(redis_sink, users_counts_graph_affinity_notifications_celebrities)
{
    void *s = open_sink("t-users");
    fl_sink_part_t parts[] = {{USERS, 0}, {ENG, 0}, {CELEB, 0}};
    int64_t next[3];
    cr_assert_eq(fl_redis_sink.claim(s, parts, 3, next), FL_OK);
    char buf[256];

    fl_event_t reg = {
        .type = FL_EV_USER_REGISTERED, .user_id = 7, .handle = "ann", .display_name = "Ann"};
    add_event(s, USERS, 0, &reg);
    fl_event_t upd = {.type = FL_EV_USER_UPDATED, .user_id = 7, .bio = "hi"};
    add_event(s, USERS, 1, &upd);
    add_fact(s, 0, FL_FACT_FOLLOWERS, 7, 0, 0, 0, 12);
    add_fact(s, 1, FL_FACT_FOLLOWING, 7, 0, 0, 0, 3);
    add_fact(s, 2, FL_FACT_POSTS, 7, 0, 0, 0, 4);
    add_fact(s, 3, FL_FACT_FOLLOW, 9, 7, 0, 0, 1000); /* 7 follows 9 */
    add_fact(s, 4, FL_FACT_FOLLOW, 10, 7, 0, 0, 1000);
    add_fact(s, 5, FL_FACT_FOLLOW, 10, 7, 0, 0, -1); /* and unfollows 10 */
    add_fact(s, 6, FL_FACT_AFFINITY, 7, 9, 0, 0, 2);
    add_fact(s, 7, FL_FACT_AFFINITY, 7, 11, 0, 0, 1);
    add_fact(s, 8, FL_FACT_AFFINITY, 7, 11, 0, 0, -1);
    add_fact(s, 9, FL_FACT_NOTIFICATION, 7, 9, FL_NOTIF_LIKE, 501, 5000);
    add_fact(s, 10, FL_FACT_NOTIFICATION, 7, 9, FL_NOTIF_FOLLOW, 0, 6000);
    add_fact(s, 11, FL_FACT_NOTIFICATION, 7, 8, FL_NOTIF_LIKE, 501, 7000);
    add_fact(s, 12, FL_FACT_NOTIFICATION, 7, 8, FL_NOTIF_LIKE, 501, -1);
    add_fact(s, 13, FL_FACT_LIKE, 501, 7, 0, 0, 5000); /* not kept */
    const char *c1 = "{\"author_id\":9,\"celebrity\":true,\"followers\":10000,\"occurred_at\":1}";
    const char *c2 = "{\"author_id\":7,\"celebrity\":false,\"followers\":8000,\"occurred_at\":2}";
    cr_assert_eq(add_raw(s, CELEB, 0, "9", 1, c1, strlen(c1)), FL_OK);
    cr_assert_eq(add_raw(s, CELEB, 1, "7", 1, c2, strlen(c2)), FL_OK);
    cr_assert_eq(add_raw(s, CELEB, 2, "7", 1, "{\"author_id\":\"x\"}", 17), FL_ERR_INVALID);
    next[0] = 2, next[1] = 14, next[2] = 3;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 3), FL_OK);

    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "handle"), "ann");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "display_name"), "Ann");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "bio"), "hi");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "followers_count"), "12");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "following_count"), "3");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "posts_count"), "4");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "is_celebrity"), "0");
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{9}", "is_celebrity"), "1");
    cr_assert_eq(cmd_int("SISMEMBER celebrities 9"), 1);
    cr_assert_eq(cmd_int("SCARD celebrities"), 1);
    cr_assert_eq(cmd_int("SISMEMBER following:{7} 9"), 1);
    cr_assert_eq(cmd_int("SCARD following:{7}"), 1);
    cr_assert_str_eq(hget(buf, sizeof(buf), "affinity:{7}", "9"), "2");
    cr_assert_eq(cmd_int("HLEN affinity:{7}"), 1);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "notif:{7}"), "like:9:501 follow:9:0");
    cr_assert_eq(cmd_int("EXISTS like:{501}"), 0);

    /* a count back to zero (a tombstone) keeps the field at 0 */
    add_fact(s, 14, FL_FACT_FOLLOWERS, 7, 0, 0, 0, -1);
    next[1] = 15;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 3), FL_OK);
    cr_assert_str_eq(hget(buf, sizeof(buf), "user:{7}", "followers_count"), "0");
    fl_redis_sink.close(s);
}

/* notif:{U} keeps the newest FL_REDIS_NOTIF_CAP; the highest entry it
 * ever trimmed stays in notif-mark:{U}, so that a reader knows where the
 * list is exact (an old notification that comes after the trim can sit
 * below the mark). */
Test(redis_sink, notifications_are_capped_with_a_trim_mark)
{
    void *s = open_sink("t-notif-cap");
    fl_sink_part_t parts[] = {{ENG, 0}};
    int64_t next[1];
    cr_assert_eq(fl_redis_sink.claim(s, parts, 1, next), FL_OK);
    char buf[256];
    int64_t off = 0;
    /* cap + 2 likes of post 900 by actors 1000.., times 10000.. */
    for (int k = 0; k < FL_REDIS_NOTIF_CAP + 2; k++, off++)
        add_fact(s, off, FL_FACT_NOTIFICATION, 77, 1000 + k, FL_NOTIF_LIKE, 900, 10000 + k);
    next[0] = off;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 1), FL_OK);
    cr_assert_eq(cmd_int("ZCARD notif:{77}"), FL_REDIS_NOTIF_CAP);
    /* the two oldest went; the mark is the higher of them */
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "notif-mark:{77}"), "like:1001:900");
    cr_assert_eq(cmd_int("ZCOUNT notif-mark:{77} 10001 10001"), 1);
    /* a withdrawal, then an old one: under the cap, kept below the mark,
     * and the mark stays */
    add_fact(s, off++, FL_FACT_NOTIFICATION, 77, 1100, FL_NOTIF_LIKE, 900, -1);
    add_fact(s, off++, FL_FACT_NOTIFICATION, 77, 5, FL_NOTIF_FOLLOW, 0, 500);
    next[0] = off;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 1), FL_OK);
    cr_assert_eq(cmd_int("ZCARD notif:{77}"), FL_REDIS_NOTIF_CAP);
    cr_assert_eq(cmd_int("ZCOUNT notif:{77} 500 500"), 1);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "notif-mark:{77}"), "like:1001:900");
    /* one more trims the old one: the mark keeps the higher */
    add_fact(s, off++, FL_FACT_NOTIFICATION, 77, 2000, FL_NOTIF_LIKE, 900, 90000);
    next[0] = off;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 1), FL_OK);
    cr_assert_eq(cmd_int("ZCOUNT notif:{77} 500 500"), 0);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "notif-mark:{77}"), "like:1001:900");
    fl_redis_sink.close(s);
}

Test(redis_sink, an_older_owner_is_fenced_and_writes_nothing)
{
    void *a = open_sink("t-fence"), *b = open_sink("t-fence");
    char buf[256];
    cr_assert_eq(claim1(a, TL, 0), FL_SINK_NO_OFFSET);
    add_tl(a, 0, 42, 1000, 101, 1);
    cr_assert_eq(flush1(a, TL, 0, 1), FL_OK);

    cr_assert_eq(claim1(b, TL, 0), 1);
    add_tl(a, 1, 42, 2000, 102, 1);
    cr_assert_eq(flush1(a, TL, 0, 2), FL_ERR_FENCED);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "101");
    cr_assert_str_eq(hget(buf, sizeof(buf), "feedline:sink:{t-fence}", "off:" TL "/0"), "1");

    add_tl(b, 1, 42, 3000, 103, 1);
    cr_assert_eq(flush1(b, TL, 0, 2), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "101 103");
    cr_assert_str_eq(hget(buf, sizeof(buf), "feedline:sink:{t-fence}", "gen:" TL "/0"), "2");
    fl_redis_sink.close(a);
    fl_redis_sink.close(b);
}

Test(redis_sink, a_flushed_redis_is_lost_and_rebuilt)
{
    void *s = open_sink("t-lost");
    char buf[256];
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    add_tl(s, 0, 42, 1000, 101, 1);
    cr_assert_eq(flush1(s, TL, 0, 1), FL_OK);
    cr_assert_eq(fl_redis_sink.check(s), FL_OK);

    freeReplyObject(cmd("FLUSHALL"));
    cr_assert_eq(fl_redis_sink.check(s), FL_ERR_LOST);
    add_tl(s, 1, 42, 2000, 102, 1);
    cr_assert_eq(flush1(s, TL, 0, 2), FL_ERR_LOST);
    cr_assert_eq(cmd_int("EXISTS feed:{42}"), 0);

    /* claimed again: no offsets, rebuilt from the beginning */
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    cr_assert_eq(fl_redis_sink.check(s), FL_OK);
    add_tl(s, 0, 42, 1000, 101, 1);
    add_tl(s, 1, 42, 2000, 102, 1);
    cr_assert_eq(flush1(s, TL, 0, 2), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "101 102");
    fl_redis_sink.close(s);
}

Test(redis_sink, an_instance_that_claimed_under_a_recreated_marker_is_lost)
{
    void *a = open_sink("t-epoch"), *b = open_sink("t-epoch");
    cr_assert_eq(claim1(a, TL, 0), FL_SINK_NO_OFFSET);
    cr_assert_eq(claim1(b, TL, 1), FL_SINK_NO_OFFSET);
    freeReplyObject(cmd("FLUSHALL"));
    cr_assert_eq(claim1(a, TL, 0), FL_SINK_NO_OFFSET); /* a new marker */
    add_tl(b, 0, 43, 1000, 101, 1);
    fl_sink_part_t p1 = {TL, 1};
    int64_t next = 1;
    cr_assert_eq(fl_redis_sink.flush(b, &p1, &next, 1), FL_ERR_LOST);
    cr_assert_eq(fl_redis_sink.check(b), FL_ERR_LOST);
    cr_assert_eq(fl_redis_sink.check(a), FL_OK);
    fl_redis_sink.close(a);
    fl_redis_sink.close(b);
}

Test(redis_sink, a_wipe_deletes_the_sinks_keys_and_every_claim)
{
    void *a = open_sink("t-wipe"), *b = open_sink("t-wipe");
    cr_assert_eq(claim1(a, TL, 0), FL_SINK_NO_OFFSET);
    cr_assert_eq(claim1(b, POSTS, 0), FL_SINK_NO_OFFSET);
    add_tl(a, 0, 42, 1000, 101, 1);
    cr_assert_eq(flush1(a, TL, 0, 1), FL_OK);
    add_post(b, 0, 101, 7, 1000);
    del_post(b, 1, 102, 7);
    cr_assert_eq(flush1(b, POSTS, 0, 2), FL_OK);
    freeReplyObject(cmd("SET ratelimit:{42} 1"));
    freeReplyObject(cmd("SET unrelated 1"));
    freeReplyObject(cmd("HSET feedline:sink:{other} epoch x"));
    cr_assert_eq(cmd_int("EXISTS feed:{42} post:{101} post-deleted:{102}"), 3);

    cr_assert_eq(fl_redis_sink.wipe(a), FL_OK);
    cr_assert_eq(cmd_int("EXISTS feed:{42} post:{101} post-deleted:{102} outbox:{7} user:{7}"), 0);
    cr_assert_eq(cmd_int("EXISTS feedline:sink:{t-wipe}"), 0);
    /* what is not the sink's stays */
    cr_assert_eq(cmd_int("EXISTS ratelimit:{42} unrelated feedline:sink:{other}"), 3);
    /* the other instance's claim went with the marker */
    add_post(b, 2, 103, 7, 2000);
    cr_assert_eq(flush1(b, POSTS, 0, 3), FL_ERR_LOST);
    cr_assert_eq(cmd_int("EXISTS post:{103}"), 0);
    /* claimed again: from the beginning */
    cr_assert_eq(claim1(a, TL, 0), FL_SINK_NO_OFFSET);
    cr_assert_eq(claim1(b, POSTS, 0), FL_SINK_NO_OFFSET);
    add_tl(a, 0, 42, 1000, 101, 1);
    cr_assert_eq(flush1(a, TL, 0, 1), FL_OK);
    cr_assert_eq(cmd_int("EXISTS feed:{42}"), 1);
    fl_redis_sink.close(a);
    fl_redis_sink.close(b);
}

Test(redis_sink, a_dropped_connection_is_unavailable_then_retried_with_the_batch)
{
    void *s = open_sink("t-reconnect");
    char buf[256];
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    add_tl(s, 0, 42, 1000, 101, 1);
    /* what a restart that kept the data looks like to the sink: its
     * connection gone and the script cache empty */
    freeReplyObject(cmd("CLIENT KILL TYPE normal SKIPME yes"));
    freeReplyObject(cmd("SCRIPT FLUSH"));
    cr_assert_eq(flush1(s, TL, 0, 1), FL_ERR_UNAVAILABLE);
    cr_assert_eq(cmd_int("EXISTS feed:{42}"), 0);
    cr_assert_eq(flush1(s, TL, 0, 1), FL_OK);
    cr_assert_str_eq(zmembers(buf, sizeof(buf), "feed:{42}"), "101");
    cr_assert_eq(claim1(s, TL, 0), 1);
    fl_redis_sink.close(s);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_redis(int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        /* its output must not hold the test runner's pipes open */
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1), dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    cr_assert(pid > 0);
    own_redis = pid;
    for (int i = 0; i < 100; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        int ok = c && !c->err;
        redisFree(c);
        if (ok)
            return pid;
        usleep(50 * 1000);
    }
    cr_assert_fail("redis-server on port %d did not start", port);
    return -1;
}

static void stop_redis(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    own_redis = -1;
}

Test(redis_sink, a_restarted_redis_is_unavailable_then_lost_then_rebuilt)
{
    int port = free_port();
    pid_t pid = start_redis(port);
    char ep[32];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
    free(topo->endpoints.redis);
    topo->endpoints.redis = strdup(ep);
    void *s = open_sink("t-restart");
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    add_tl(s, 0, 42, 1000, 101, 1);
    cr_assert_eq(flush1(s, TL, 0, 1), FL_OK);

    stop_redis(pid);
    add_tl(s, 1, 42, 2000, 102, 1);
    cr_assert_eq(flush1(s, TL, 0, 2), FL_ERR_UNAVAILABLE);
    cr_assert_eq(fl_redis_sink.check(s), FL_ERR_UNAVAILABLE);
    cr_assert_eq(flush1(s, TL, 0, 2), FL_ERR_UNAVAILABLE);

    pid = start_redis(port); /* empty: no persistence, as the stack runs it */
    cr_assert_eq(flush1(s, TL, 0, 2), FL_ERR_LOST);
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    add_tl(s, 0, 42, 1000, 101, 1);
    add_tl(s, 1, 42, 2000, 102, 1);
    cr_assert_eq(flush1(s, TL, 0, 2), FL_OK);
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *r = redisCommand(c, "ZCARD feed:{42}");
    cr_assert_eq(r->integer, 2);
    freeReplyObject(r);
    redisFree(c);
    fl_redis_sink.close(s);
    stop_redis(pid);
}

Test(redis_sink, a_large_batch_is_split_into_atomic_chunks)
{
    void *s = open_sink("t-split");
    fl_sink_part_t parts[] = {{TL, 0}, {TL, 1}};
    int64_t next[2];
    cr_assert_eq(fl_redis_sink.claim(s, parts, 2, next), FL_OK);
    /* ~4 chunks' worth of entries over 400 users of both parts */
    int n = 4 * FL_REDIS_CHUNK_BYTES / 48;
    for (int i = 0; i < n; i++) {
        fl_key_t k;
        fl_key_timeline(&k, 1 + i % 400, 1000 + i, 10000 + i);
        uint8_t v[8];
        fl_key_enc_i64(v, 7);
        char err[128];
        fl_proc_record_t r = {.topic = TL,
                              .partition = i % 2,
                              .offset = 100 + i / 2,
                              .key = k.buf,
                              .key_len = k.len,
                              .value = v,
                              .value_len = 8};
        cr_assert_eq(fl_redis_sink.add(s, &r, err, sizeof(err)), FL_OK);
    }
    next[0] = 100 + n / 2 + 5, next[1] = 100 + n / 2 + 7;
    cr_assert_eq(fl_redis_sink.flush(s, parts, next, 2), FL_OK);
    char m[4096] = "";
    fl_redis_sink.metrics(s, m, sizeof(m));
    cr_assert(strstr(m, "feedline_redis_sink_scripts_total 4") ||
                  strstr(m, "feedline_redis_sink_scripts_total 5"),
              "%s", m);
    long long total = 0;
    for (int u = 1; u <= 400; u++)
        total += cmd_int("ZCARD feed:{%d}", u);
    cr_assert_eq(total, n);
    char buf[64];
    cr_assert_eq(atoll(hget(buf, sizeof(buf), "feedline:sink:{t-split}", "off:" TL "/0")), next[0]);
    cr_assert_eq(atoll(hget(buf, sizeof(buf), "feedline:sink:{t-split}", "off:" TL "/1")), next[1]);
    fl_redis_sink.close(s);
}

/* ---- feeds against a reference model ---- */

#define M_USERS 3
#define M_POSTS 300
#define M_CAP   40

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lines "user event post" of every message since the last call, sorted,
 * joined by newlines into buf. */
static const char *pmessages(redisContext *sub, char *buf, size_t size)
{
    char *lines[4096];
    size_t n = 0;
    redisAppendCommand(sub, "PING");
    for (;;) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
        int done = strcmp(r->element[0]->str, "pong") == 0;
        if (strcmp(r->element[0]->str, "pmessage") == 0) {
            long long user = 0, post = 0;
            char ev[16];
            cr_assert_eq(sscanf(r->element[2]->str, "user:{%lld}", &user), 1);
            cr_assert_eq(sscanf(r->element[3]->str, "{\"event\":\"%15[a-z]\",\"post_id\":\"%lld\"}",
                                ev, &post),
                         2);
            cr_assert_lt(n, 4096);
            char line[64];
            snprintf(line, sizeof(line), "%lld %s %lld", user, ev, post);
            lines[n++] = strdup(line);
        }
        freeReplyObject(r);
        if (done)
            break;
    }
    qsort(lines, n, sizeof(lines[0]), cmp_str);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        snprintf(buf + strlen(buf), size - strlen(buf), "%s\n", lines[i]);
        free(lines[i]);
    }
    return buf;
}

/* Post p's created_at: a permutation, so scores are unique and the order
 * of arrival (by post id) is not the order of scores. */
static int64_t m_created(int64_t p)
{
    return 1000 + (p * 7919) % (M_USERS * M_POSTS + 1);
}

/* Random batches of inserts (out of score order, repeated ones, more than
 * the bulk path's threshold per user or fewer) and removals: after every
 * batch each feed holds exactly the model's newest M_CAP entries, still a
 * listpack, and the messages are exactly the model's changes. */
Test(redis_sink, feeds_match_a_model_over_random_batches)
{
    topo->settings.timeline_cap = M_CAP;
    void *s = open_sink("t-model");
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    redisContext *sub = connect_to(topo->endpoints.redis);
    freeReplyObject(redisCommand(sub, "PSUBSCRIBE user:{*}"));
    static unsigned char in[M_USERS][M_POSTS]; /* the model: entry present */
    static char got[1 << 17], want[1 << 17];
    unsigned seed = 12345;
    int64_t off = 0;
    for (int batch = 0; batch < 60; batch++) {
        int n = 1 + (int)(rand_r(&seed) % (batch % 3 == 0 ? 12 : 150));
        static signed char last[M_USERS][M_POSTS]; /* -1 none, 0 removed, 1 inserted */
        memset(last, -1, sizeof(last));
        for (int i = 0; i < n; i++) {
            int u = (int)(rand_r(&seed) % M_USERS);
            int p = (int)(rand_r(&seed) % M_POSTS);
            int present = rand_r(&seed) % 5 != 0;
            int64_t post = 1 + u * M_POSTS + p;
            add_tl(s, off++, u + 1, m_created(post), post, present);
            last[u][p] = (signed char)present;
        }
        cr_assert_eq(flush1(s, TL, 0, off), FL_OK);
        char *lines[4096];
        size_t nl = 0;
        for (int u = 0; u < M_USERS; u++) {
            unsigned char added[M_POSTS] = {0};
            for (int p = 0; p < M_POSTS; p++) {
                if (last[u][p] == 0 && in[u][p]) {
                    in[u][p] = 0;
                    lines[nl] = malloc(64);
                    snprintf(lines[nl++], 64, "%d delete %d", u + 1, 1 + u * M_POSTS + p);
                } else if (last[u][p] == 1 && !in[u][p]) {
                    in[u][p] = added[p] = 1;
                }
            }
            /* past the cap the lowest scores go */
            int count = 0;
            for (int p = 0; p < M_POSTS; p++)
                count += in[u][p];
            while (count > M_CAP) {
                int low = -1;
                for (int p = 0; p < M_POSTS; p++)
                    if (in[u][p] && (low < 0 || m_created(1 + u * M_POSTS + p) <
                                                    m_created(1 + u * M_POSTS + low)))
                        low = p;
                in[u][low] = 0, count--;
                if (added[low]) {
                    added[low] = 0;
                } else {
                    lines[nl] = malloc(64);
                    snprintf(lines[nl++], 64, "%d delete %d", u + 1, 1 + u * M_POSTS + low);
                }
            }
            for (int p = 0; p < M_POSTS; p++) {
                if (added[p]) {
                    lines[nl] = malloc(64);
                    snprintf(lines[nl++], 64, "%d update %d", u + 1, 1 + u * M_POSTS + p);
                }
            }
            /* the feed: the model's entries by score */
            char key[32];
            snprintf(key, sizeof(key), "feed:{%d}", u + 1);
            redisReply *r = cmd("ZRANGE %s 0 -1 WITHSCORES", key);
            cr_assert_eq(r->elements, 2 * (size_t)count, "batch %d user %d", batch, u + 1);
            int64_t prev = -1;
            for (size_t i = 0; i < r->elements; i += 2) {
                int64_t post = atoll(r->element[i]->str), sc = atoll(r->element[i + 1]->str);
                int p = (int)(post - 1 - u * M_POSTS);
                cr_assert(p >= 0 && p < M_POSTS && in[u][p], "batch %d: %s", batch,
                          r->element[i]->str);
                cr_assert_eq(sc, m_created(post));
                cr_assert_gt(sc, prev);
                prev = sc;
            }
            freeReplyObject(r);
            if (count > 0) {
                r = cmd("OBJECT ENCODING %s", key);
                cr_assert_str_eq(r->str, "listpack");
                freeReplyObject(r);
            }
        }
        qsort(lines, nl, sizeof(lines[0]), cmp_str);
        want[0] = '\0';
        for (size_t i = 0; i < nl; i++) {
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s\n", lines[i]);
            free(lines[i]);
        }
        cr_assert_str_eq(pmessages(sub, got, sizeof(got)), want, "batch %d", batch);
    }
    cr_assert_eq(cmd_int("EXISTS feedline:sink:{tmp}"), 0);
    redisFree(sub);
    fl_redis_sink.close(s);
}

/* A full feed of 800 that gets 900 newer entries in one batch passes the
 * listpack limit (1024) before the trim: it must end a listpack again,
 * holding exactly the newest 800. */
Test(redis_sink, a_bulk_insert_past_the_listpack_limit_leaves_a_listpack)
{
    topo->settings.timeline_cap = 800;
    void *s = open_sink("t-bulk");
    cr_assert_eq(claim1(s, TL, 0), FL_SINK_NO_OFFSET);
    int64_t off = 0;
    for (int i = 0; i < 800; i++, off++)
        add_tl(s, off, 7, 1000 + i, 5000 + i, 1);
    cr_assert_eq(flush1(s, TL, 0, off), FL_OK);
    redisContext *sub = subscribe("user:{7}");
    for (int i = 800; i < 1700; i++, off++)
        add_tl(s, off, 7, 1000 + i, 5000 + i, 1);
    cr_assert_eq(flush1(s, TL, 0, off), FL_OK);
    cr_assert_eq(cmd_int("ZCARD feed:{7}"), 800);
    redisReply *r = cmd("OBJECT ENCODING feed:{7}");
    cr_assert_str_eq(r->str, "listpack");
    freeReplyObject(r);
    r = cmd("ZRANGE feed:{7} 0 -1");
    for (size_t i = 0; i < r->elements; i++)
        cr_assert_eq(atoll(r->element[i]->str), 5900 + (long long)i);
    freeReplyObject(r);
    /* 800 old entries go, the 100 new ones that fall off at once say nothing */
    static char buf[1 << 17];
    messages(sub, buf, sizeof(buf));
    int upd = 0, del = 0;
    for (char *p = buf; (p = strstr(p, "\"event\":\"")); p += 9)
        p[9] == 'u' ? upd++ : del++;
    cr_assert_eq(upd, 800);
    cr_assert_eq(del, 800);
    cr_assert(!strstr(buf, "\"5899\"") && strstr(buf, "\"5900\"") && strstr(buf, "\"5799\""));
    redisFree(sub);
    fl_redis_sink.close(s);
}
