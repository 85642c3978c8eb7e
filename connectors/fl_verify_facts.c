/*
 * fl_verify_facts.c - the relations of `feedline verify` beside the feeds,
 * read from Redis and PostgreSQL (see fl_verify_facts.h).
 */
#include "fl_verify_facts.h"

#include "fl_sink_store.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 30000

/* The fields of an entity, in item order (item = index + 1); a string
 * field's value is its hash. */
typedef struct field {
    const char *redis; /* the hash field */
    bool string;
    bool lower; /* compared in lower case */
} field_t;

static const field_t post_fields[] = {{"author_id", false, false}, {"created_at", false, false},
                                      {"text", true, false},       {"visibility", true, true},
                                      {"reply_to", false, false},  {"like_count", false, false}};
static const field_t user_fields[] = {{"handle", true, false},
                                      {"display_name", true, false},
                                      {"bio", true, false},
                                      {"followers_count", false, false},
                                      {"following_count", false, false},
                                      {"posts_count", false, false},
                                      {"is_celebrity", false, false}};
#define NPOST (sizeof(post_fields) / sizeof(post_fields[0]))
#define NUSER (sizeof(user_fields) / sizeof(user_fields[0]))

/* the relations, and after them the notifications' trim marks and the
 * feeds (read the same way) */
#define REL_MARKS FL_VREL_N
#define REL_FEEDS (FL_VREL_N + 1)
#define NRELS     (FL_VREL_N + 2)

static const struct rel {
    const char *name, *id;
    const char *match;   /* Redis SCAN pattern */
    const char *key_fmt; /* sscanf of the key */
    const char *redis;   /* the command per key */
    const field_t *fields;
    size_t nfields;
    const char *sql; /* id, then the fields in order, or the member's columns */
} rels[NRELS] = {
    [FL_VREL_POSTS] = {"posts", "post", "post:{*}", "post:{%lld}", "HGETALL %s", post_fields, NPOST,
                       "SELECT id, user_id, (extract(epoch FROM created_at) * 1000)::bigint,"
                       " content_text, privacy, reply_to, likes_count"
                       " FROM posts WHERE deleted_at IS NULL"},
    /* A user's counts may come before the user (user_counts): Redis keeps
     * them in user:{U} at once. */
    [FL_VREL_USERS] = {"users", "user", "user:{*}", "user:{%lld}", "HGETALL %s", user_fields, NUSER,
                       "SELECT coalesce(u.id, c.user_id), u.username, u.display_name, u.bio,"
                       " coalesce(c.followers_count, u.followers_count),"
                       " coalesce(c.following_count, u.following_count),"
                       " coalesce(c.posts_count, u.posts_count),"
                       " coalesce(c.is_celebrity, u.is_celebrity)::int"
                       " FROM users u FULL JOIN user_counts c ON c.user_id = u.id"},
    [FL_VREL_FOLLOWS] = {"follows", "follower", "following:{*}", "following:{%lld}", "SMEMBERS %s",
                         NULL, 0, "SELECT follower_id, following_id FROM follows"},
    [FL_VREL_AFFINITY] = {"affinity", "viewer", "affinity:{*}", "affinity:{%lld}", "HGETALL %s",
                          NULL, 0, "SELECT viewer_id, author_id, likes FROM affinity"},
    [FL_VREL_NOTIFICATIONS] = {"notifications", "user", "notif:{*}", "notif:{%lld}",
                               "ZRANGE %s 0 -1 WITHSCORES", NULL, 0,
                               "SELECT user_id, kind, actor_id, coalesce(post_id, 0),"
                               " (extract(epoch FROM created_at) * 1000)::bigint"
                               " FROM notifications"},
    [REL_FEEDS] = {"feeds", "user", "feed:{*}", "feed:{%lld}", "ZRANGE %s 0 -1 WITHSCORES", NULL, 0,
                   NULL},
    [REL_MARKS] = {"notification trim marks", "user", "notif-mark:{*}", "notif-mark:{%lld}",
                   "ZRANGE %s 0 -1 WITHSCORES", NULL, 0, NULL},
};

const char *fl_fact_name(fl_vrel_t rel)
{
    return rels[rel].name;
}

const char *fl_fact_id_name(fl_vrel_t rel)
{
    return rels[rel].id;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return false;
    long long v = strtoll(s, &end, 10);
    *out = v;
    return *end == 0;
}

/* One field's row; absent, '' and 0 are none. */
static bool add_field(fl_feed_set_t *s, int64_t id, size_t item, const field_t *f, const char *v,
                      size_t len)
{
    int64_t x = 0;
    char low[16];
    if (!v || !len)
        return true;
    if (f->lower && len < sizeof(low)) {
        /* a visibility: Redis keeps the schema's symbol (PUBLIC),
         * PostgreSQL the contract's word (public) */
        for (size_t i = 0; i < len; i++)
            low[i] = (char)tolower((unsigned char)v[i]);
        v = low;
    }
    if (f->string)
        x = fl_digest_bytes(v, len);
    else if (!parse_i64(v, &x))
        x = fl_digest_bytes(v, len); /* not a number: still compared */
    return !x || fl_feed_set_add_row(s, id, (int64_t)item, x, 0);
}

/* A notification's member, `like:ACTOR:POST` or `follow:ACTOR:0`, as a row
 * (user, post or 0, created_at, actor): a follow names no post. */
static bool add_notification(fl_feed_set_t *s, int64_t user, const char *member, int64_t t)
{
    long long actor, post;
    if (sscanf(member, "like:%lld:%lld", &actor, &post) == 2 && post > 0)
        return fl_feed_set_add_row(s, user, post, t, actor);
    if (sscanf(member, "follow:%lld:%lld", &actor, &post) == 2 && post == 0)
        return fl_feed_set_add_row(s, user, 0, t, actor);
    /* not a member the sink writes: a row no other place has */
    return fl_feed_set_add_row(s, user, -1, t, fl_digest_bytes(member, strlen(member)));
}

static bool rows_from_reply(int rel, fl_feed_set_t *s, int64_t id, const redisReply *r)
{
    const struct rel *d = &rels[rel];
    bool ok = true;
    if (rel == FL_VREL_FOLLOWS) {
        for (size_t i = 0; ok && i < r->elements; i++) {
            int64_t f;
            ok = fl_feed_set_add_row(s, id,
                                     parse_i64(r->element[i]->str, &f)
                                         ? f
                                         : -fl_digest_bytes(r->element[i]->str, r->element[i]->len),
                                     0, 0);
        }
        return ok;
    }
    for (size_t i = 0; ok && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        int64_t author, likes;
        if (rel == REL_FEEDS) {
            ok = fl_feed_set_add(s, id, strtoll(k->str, NULL, 10), (int64_t)strtod(v->str, NULL));
        } else if (rel == FL_VREL_NOTIFICATIONS || rel == REL_MARKS) {
            ok = add_notification(s, id, k->str, (int64_t)strtod(v->str, NULL));
        } else if (rel == FL_VREL_AFFINITY) {
            ok = !parse_i64(k->str, &author) ||
                 fl_feed_set_add_row(s, id, author, parse_i64(v->str, &likes) ? likes : -1, 0);
        } else {
            size_t f = 0;
            while (f < d->nfields && strcmp(d->fields[f].redis, k->str))
                f++;
            /* a field beyond the contract's: the sink's own, not compared */
            if (f < d->nfields)
                ok = add_field(s, id, f + 1, &d->fields[f], v->str, v->len);
        }
    }
    return ok;
}

static fl_err_t scan_redis(const fl_topology_t *topo, int rel, fl_feed_set_t *s, char *err,
                           size_t err_size)
{
    const struct rel *d = &rels[rel];
    char cursor[32] = "0";
    fl_err_t rc = FL_OK;
    redisContext *c = fl_sink_store_redis_connect(&topo->endpoints, TIMEOUT_MS, err, err_size);
    if (!c)
        return FL_ERR_UNAVAILABLE;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, d->match);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(err, err_size, "Redis SCAN: %s",
                     r ? r->str ? r->str : "bad reply" : c->errstr);
            freeReplyObject(r);
            rc = FL_ERR_UNAVAILABLE;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            redisAppendCommand(c, d->redis, keys->element[i]->str);
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *z = NULL;
            long long id = 0;
            int got = redisGetReply(c, (void **)&z);
            if (rc) {
                /* drain the pipeline */
            } else if (got != REDIS_OK || !z || z->type != REDIS_REPLY_ARRAY) {
                snprintf(err, err_size, "Redis %s: %s", keys->element[i]->str,
                         z && z->str ? z->str : c->errstr);
                rc = FL_ERR_UNAVAILABLE;
            } else if (sscanf(keys->element[i]->str, d->key_fmt, &id) == 1 &&
                       !rows_from_reply(rel, s, id, z)) {
                snprintf(err, err_size, "%s", "out of memory");
                rc = FL_ERR_NOMEM;
            }
            freeReplyObject(z);
            if (got != REDIS_OK)
                break;
        }
        freeReplyObject(r);
    } while (!rc && strcmp(cursor, "0"));
    redisFree(c);
    return rc;
}

fl_err_t fl_facts_from_redis(const fl_topology_t *topo, fl_vrel_t rel, fl_feed_set_t *s, char *err,
                             size_t err_size)
{
    return scan_redis(topo, (int)rel, s, err, err_size);
}

fl_err_t fl_facts_notif_marks_from_redis(const fl_topology_t *topo, fl_feed_set_t *marks, char *err,
                                         size_t err_size)
{
    return scan_redis(topo, REL_MARKS, marks, err, err_size);
}

fl_err_t fl_facts_feeds_from_redis(const fl_topology_t *topo, fl_feed_set_t *s, char *err,
                                   size_t err_size)
{
    return scan_redis(topo, REL_FEEDS, s, err, err_size);
}

static bool rows_from_pg(fl_vrel_t rel, fl_feed_set_t *s, const PGresult *res)
{
    const struct rel *d = &rels[rel];
    int64_t id, a = 0, b = 0, t = 0;
    if (!parse_i64(PQgetvalue(res, 0, 0), &id))
        return true; /* no id: nothing a reader finds */
    const char *v1 = PQgetvalue(res, 0, 1);
    switch (rel) {
    case FL_VREL_FOLLOWS:
        return !parse_i64(v1, &a) || fl_feed_set_add_row(s, id, a, 0, 0);
    case FL_VREL_AFFINITY:
        return !parse_i64(v1, &a) || !parse_i64(PQgetvalue(res, 0, 2), &b) ||
               fl_feed_set_add_row(s, id, a, b, 0);
    case FL_VREL_NOTIFICATIONS: {
        char member[80];
        parse_i64(PQgetvalue(res, 0, 2), &a);
        parse_i64(PQgetvalue(res, 0, 3), &b);
        parse_i64(PQgetvalue(res, 0, 4), &t);
        snprintf(member, sizeof(member), "%s:%" PRId64 ":%" PRId64, v1, a, b);
        return add_notification(s, id, member, t);
    }
    default:
        for (size_t f = 0; f < d->nfields; f++)
            if (!PQgetisnull(res, 0, (int)f + 1) &&
                !add_field(s, id, f + 1, &d->fields[f], PQgetvalue(res, 0, (int)f + 1),
                           (size_t)PQgetlength(res, 0, (int)f + 1)))
                return false;
        return true;
    }
}

/* The query one row at a time (single-row mode): the tables can be large. */
fl_err_t fl_facts_from_pg(const fl_topology_t *topo, fl_vrel_t rel, fl_feed_set_t *s, char *err,
                          size_t err_size)
{
    char *ci = fl_sink_store_pg_conninfo(&topo->endpoints, TIMEOUT_MS);
    PGconn *c = ci ? PQconnectdb(ci) : NULL;
    fl_err_t rc = FL_OK;
    free(ci);
    if (!c || PQstatus(c) != CONNECTION_OK || !PQsendQuery(c, rels[rel].sql) ||
        !PQsetSingleRowMode(c)) {
        snprintf(err, err_size, "PostgreSQL: %s", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return FL_ERR_UNAVAILABLE;
    }
    PGresult *res;
    while ((res = PQgetResult(c))) {
        ExecStatusType st = PQresultStatus(res);
        if (rc) {
            /* drain */
        } else if (st == PGRES_SINGLE_TUPLE) {
            if (!rows_from_pg(rel, s, res)) {
                snprintf(err, err_size, "%s", "out of memory");
                rc = FL_ERR_NOMEM;
            }
        } else if (st != PGRES_TUPLES_OK) {
            snprintf(err, err_size, "PostgreSQL %s: %s", rels[rel].name, PQerrorMessage(c));
            rc = FL_ERR_UNAVAILABLE;
        }
        PQclear(res);
    }
    PQfinish(c);
    return rc;
}

void fl_fact_describe(fl_vrel_t rel, const fl_feed_entry_t *e, char *buf, size_t size)
{
    const struct rel *d = &rels[rel];
    switch (rel) {
    case FL_VREL_FOLLOWS:
        snprintf(buf, size, "followee %" PRId64, e->post_id);
        break;
    case FL_VREL_AFFINITY:
        snprintf(buf, size, "author %" PRId64 ": %" PRId64 " likes", e->post_id, e->created_at);
        break;
    case FL_VREL_NOTIFICATIONS:
        if (e->post_id > 0)
            snprintf(buf, size, "like by %" PRId64 " of post %" PRId64 " at %" PRId64, e->aux,
                     e->post_id, e->created_at);
        else if (e->post_id == 0)
            snprintf(buf, size, "follow by %" PRId64 " at %" PRId64, e->aux, e->created_at);
        else
            snprintf(buf, size, "an unknown member (#%016" PRIx64 ") at %" PRId64, (uint64_t)e->aux,
                     e->created_at);
        break;
    default:
        if (e->post_id < 1 || (size_t)e->post_id > d->nfields)
            snprintf(buf, size, "field %" PRId64 "=%" PRId64, e->post_id, e->created_at);
        else if (d->fields[e->post_id - 1].string)
            snprintf(buf, size, "%s=#%016" PRIx64, d->fields[e->post_id - 1].redis,
                     (uint64_t)e->created_at);
        else
            snprintf(buf, size, "%s=%" PRId64, d->fields[e->post_id - 1].redis, e->created_at);
    }
}

/* ---- notifications at the cap ---------------------------------------------- */

/* Redis's order of a user's notifications: score, then member (bytes). */
int fl_facts_notif_cmp(const fl_feed_entry_t *a, const fl_feed_entry_t *b)
{
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? -1 : 1;
    char ma[80], mb[80];
    snprintf(ma, sizeof(ma), "%s:%" PRId64 ":%" PRId64, a->post_id ? "like" : "follow", a->aux,
             a->post_id);
    snprintf(mb, sizeof(mb), "%s:%" PRId64 ":%" PRId64, b->post_id ? "like" : "follow", b->aux,
             b->post_id);
    return strcmp(ma, mb);
}
