/*
 * fl_verify.c - `feedline verify`: is every user's feed the same wherever
 * it is kept?
 *
 * The reference is the timelines store: what its changelog holds at its
 * end (what a restore rebuilds the store from), or, with --store DIR...,
 * the store folders of a stopped feedline-timeline. Against it, the two
 * projections: Redis's feed:{U} sorted sets and PostgreSQL's feed_items.
 * Each place is read whole into a feed set (fl_digest.h), digested the
 * same way per partition of the user id, and compared user by user; a
 * user whose feed differs is printed with the posts only one side holds.
 * The places move while the pipeline runs: compare an idle pipeline
 * (`feedline lag` all 0).
 *
 * Exit status: 0 every place equal, 1 a difference, 3 a place could not be
 * read.
 */
#include "fl_verify.h"

#include "fl_digest.h"
#include "fl_inspect.h"
#include "fl_keys.h"
#include "fl_kv.h"
#include "fl_sink_store.h"
#include "fl_timeline.h"
#include "fl_topics.h"

#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_DIFFER     1
#define EXIT_UNREADABLE 3

/* The TIMELINE entries of kv into s, and the trim marks of its USER
 * records into marks. */
static fl_err_t feeds_from_kv(fl_kv_t *kv, fl_feed_set_t *s, fl_feed_marks_t *marks, char *err,
                              size_t err_size)
{
    static const uint8_t tags[2] = {FL_KEY_TAG_TIMELINE, FL_KEY_TAG_USER};
    fl_err_t rc = FL_OK;
    for (int f = 0; f < 2 && !rc; f++) {
        fl_kv_iter_t *it = NULL;
        if ((rc = fl_kv_iter_new(kv, &tags[f], 1, &it, err, err_size)))
            return rc;
        for (fl_kv_iter_seek_first(it); fl_kv_iter_valid(it) && !rc; fl_kv_iter_next(it)) {
            size_t klen, vlen;
            const void *k = fl_kv_iter_key(it, &klen);
            const void *v = fl_kv_iter_value(it, &vlen);
            int64_t u, t, p;
            fl_timeline_meta_t meta;
            bool ok = true;
            if (f == 0 && !fl_key_parse_timeline(k, klen, &u, &t, &p))
                ok = fl_feed_set_add(s, u, p, t);
            else if (f == 1 && !fl_key_parse_entity(k, klen, FL_KEY_TAG_USER, &u) &&
                     !fl_timeline_meta_parse(v, vlen, &meta) && meta.marked)
                ok = fl_feed_marks_add(marks, u, meta.mark_created_at, meta.mark_post_id);
            if (!ok) {
                snprintf(err, err_size, "%s", "out of memory");
                rc = FL_ERR_NOMEM;
            }
        }
        fl_kv_iter_free(it);
    }
    return rc;
}

static fl_err_t feeds_from_changelog(const fl_topology_t *topo, volatile sig_atomic_t *stop,
                                     fl_feed_set_t *s, fl_feed_marks_t *marks, char *err,
                                     size_t err_size)
{
    fl_kv_t *kv = fl_kv_mem_new();
    if (!kv) {
        snprintf(err, err_size, "%s", "out of memory");
        return FL_ERR_NOMEM;
    }
    fl_err_t rc = fl_inspect_load_timelines(topo, 0, kv, stop, err, err_size);
    if (!rc)
        rc = feeds_from_kv(kv, s, marks, err, err_size);
    fl_kv_free(kv);
    return rc;
}

static fl_err_t feeds_from_stores(char **dirs, int n, fl_feed_set_t *s, fl_feed_marks_t *marks,
                                  char *err, size_t err_size)
{
    for (int i = 0; i < n; i++) {
        fl_kv_t *kv = NULL;
        fl_kv_rocksdb_opts_t o = {.must_exist = true};
        char why[512];
        fl_err_t rc = fl_kv_rocksdb_open(dirs[i], &o, &kv, why, sizeof(why));
        if (!rc)
            rc = feeds_from_kv(kv, s, marks, why, sizeof(why));
        fl_kv_free(kv);
        if (rc) {
            snprintf(err, err_size, "%s: %s", dirs[i], why);
            return rc;
        }
    }
    return FL_OK;
}

/* Every feed:{U} sorted set: SCAN, then ZRANGE ... WITHSCORES pipelined. */
static fl_err_t feeds_from_redis(const fl_topology_t *topo, fl_feed_set_t *s, char *err,
                                 size_t err_size)
{
    char cursor[32] = "0";
    fl_err_t rc = FL_OK;
    redisContext *c = fl_sink_store_redis_connect(&topo->endpoints, 30000, err, err_size);
    if (!c)
        return FL_ERR_UNAVAILABLE;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH feed:{*} COUNT 1000", cursor);
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
            redisAppendCommand(c, "ZRANGE %s 0 -1 WITHSCORES", keys->element[i]->str);
        for (size_t i = 0; i < keys->elements && !rc; i++) {
            redisReply *z = NULL;
            long long u = 0;
            if (redisGetReply(c, (void **)&z) != REDIS_OK || !z || z->type != REDIS_REPLY_ARRAY ||
                sscanf(keys->element[i]->str, "feed:{%lld}", &u) != 1) {
                snprintf(err, err_size, "Redis ZRANGE %s: %s", keys->element[i]->str,
                         z && z->str ? z->str : c->errstr);
                rc = FL_ERR_UNAVAILABLE;
            }
            for (size_t j = 0; !rc && j + 1 < z->elements; j += 2)
                if (!fl_feed_set_add(s, u, strtoll(z->element[j]->str, NULL, 10),
                                     (int64_t)strtod(z->element[j + 1]->str, NULL)))
                    rc = FL_ERR_NOMEM;
            freeReplyObject(z);
        }
        freeReplyObject(r);
    } while (!rc && strcmp(cursor, "0"));
    redisFree(c);
    return rc;
}

/* feed_items as COPY text: user_id, post_id, created_at in epoch ms. */
static fl_err_t feeds_from_pg(const fl_topology_t *topo, fl_feed_set_t *s, char *err,
                              size_t err_size)
{
    char *ci = fl_sink_store_pg_conninfo(&topo->endpoints, 30000);
    PGconn *c = ci ? PQconnectdb(ci) : NULL;
    fl_err_t rc = FL_OK;
    free(ci);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, err_size, "PostgreSQL: %s", c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return FL_ERR_UNAVAILABLE;
    }
    PGresult *res = PQexec(c, "COPY (SELECT user_id, post_id, "
                              "(extract(epoch FROM created_at) * 1000)::bigint FROM feed_items) "
                              "TO STDOUT");
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        snprintf(err, err_size, "PostgreSQL feed_items: %s", PQerrorMessage(c));
        rc = FL_ERR_UNAVAILABLE;
    }
    PQclear(res);
    char *row;
    int n;
    while (!rc && (n = PQgetCopyData(c, &row, 0)) > 0) {
        long long u, p, t;
        if (sscanf(row, "%lld\t%lld\t%lld", &u, &p, &t) != 3)
            rc = FL_ERR_INVALID;
        else if (!fl_feed_set_add(s, u, p, t))
            rc = FL_ERR_NOMEM;
        PQfreemem(row);
    }
    if (rc)
        snprintf(err, err_size, "PostgreSQL feed_items: %s",
                 rc == FL_ERR_NOMEM ? "out of memory" : "a row that does not parse");
    while ((res = PQgetResult(c))) {
        if (!rc && PQresultStatus(res) != PGRES_COMMAND_OK) {
            snprintf(err, err_size, "PostgreSQL feed_items: %s", PQerrorMessage(c));
            rc = FL_ERR_UNAVAILABLE;
        }
        PQclear(res);
    }
    PQfinish(c);
    return rc;
}

/* ---- report ---------------------------------------------------------------- */

typedef struct report {
    const char *ref, *other;
    int shown, max_users;
    json_t *users; /* --json: the differing users */
} report_t;

static void print_entries(const char *where, const fl_feed_entry_t *v, size_t n)
{
    printf("    only in %s (%zu):", where, n);
    for (size_t i = 0; i < n && i < 10; i++)
        printf(" %" PRId64 "@%" PRId64, v[i].post_id, v[i].created_at);
    printf("%s\n", n > 10 ? " ..." : "");
}

static json_t *entries_json(const fl_feed_entry_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{sIsI}", "post_id", (json_int_t)v[i].post_id,
                                           "created_at", (json_int_t)v[i].created_at));
    return a;
}

static bool on_diff(void *ctx, int64_t user, const fl_feed_entry_t *oa, size_t na,
                    const fl_feed_entry_t *ob, size_t nb)
{
    report_t *r = ctx;
    if (r->users) {
        json_array_append_new(r->users, json_pack("{sIsoso}", "user_id", (json_int_t)user,
                                                  "only_in_reference", entries_json(oa, na),
                                                  "only_here", entries_json(ob, nb)));
    } else {
        printf("  user %" PRId64 ":\n", user);
        if (na)
            print_entries(r->ref, oa, na);
        if (nb)
            print_entries(r->other, ob, nb);
    }
    return ++r->shown < r->max_users;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: feedline %s\n", FL_VERIFY_USAGE);
}

/* this topology's store, Redis, PostgreSQL; then --against's */
#define NPLACES 6

int fl_verify_cmd(const fl_topology_t *topo, volatile sig_atomic_t *stop, int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", no_argument, 0, 's'},           {"only", required_argument, 0, 'o'},
        {"max-users", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
        {"against", required_argument, 0, 'a'},   {0, 0, 0, 0}};
    fl_topology_t *other = NULL;
    bool from_stores = false, json = false, want_redis = true, want_pg = true;
    int max_users = 20, c;
    char err[1024];
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's') {
            from_stores = true;
        } else if (c == 'o' && !strcmp(optarg, "redis")) {
            want_pg = false;
        } else if (c == 'o' && !strcmp(optarg, "postgres")) {
            want_redis = false;
        } else if (c == 'm' && atoi(optarg) > 0) {
            max_users = atoi(optarg);
        } else if (c == 'j') {
            json = true;
        } else if (c == 'a' && !other) {
            if (!(other = fl_topology_load(optarg, err, sizeof(err)))) {
                fprintf(stderr, "feedline verify: --against: %s\n", err);
                return 2;
            }
        } else {
            usage(stderr);
            fl_topology_free(other);
            return 2;
        }
    }
    if (from_stores == (optind == argc)) {
        usage(stderr);
        fl_topology_free(other);
        return 2;
    }

    const fl_store_def_t *st = fl_topology_store(topo, FL_STORE_TIMELINES);
    const fl_topic_t *cl = st ? fl_topology_topic(topo, st->changelog) : NULL;
    int32_t parts = cl ? cl->partitions : 1;
    struct place {
        const char *name;
        bool wanted;
        fl_feed_set_t set;
        fl_feed_marks_t marks; /* a store's (places 0 and 3) */
        uint64_t *digest;
        size_t users;
        fl_err_t rc;
    } places[NPLACES] = {
        {.name = from_stores ? "the store folders" : "the timelines changelog", .wanted = true},
        {.name = "redis", .wanted = want_redis},
        {.name = "postgres", .wanted = want_pg},
        /* --against: the same three places of another generation */
        {.name = "against_changelog", .wanted = other != NULL},
        {.name = "against_redis", .wanted = other && want_redis},
        {.name = "against_postgres", .wanted = other && want_pg}};
    int ret = 0;
    json_t *out = json ? json_object() : NULL;

    for (int i = 0; i < NPLACES; i++) {
        struct place *p = &places[i];
        const fl_topology_t *pt = i < 3 ? topo : other;
        if (!p->wanted)
            continue;
        err[0] = 0;
        p->rc = i == 0 && from_stores ? feeds_from_stores(argv + optind, argc - optind, &p->set,
                                                          &p->marks, err, sizeof(err))
                : i % 3 == 0 ? feeds_from_changelog(pt, stop, &p->set, &p->marks, err, sizeof(err))
                : i % 3 == 1 ? feeds_from_redis(pt, &p->set, err, sizeof(err))
                             : feeds_from_pg(pt, &p->set, err, sizeof(err));
        if (p->rc) {
            fprintf(stderr, "feedline verify: %s: %s\n", p->name, err);
            ret = EXIT_UNREADABLE;
            continue;
        }
        fl_feed_set_sort(&p->set);
        fl_feed_marks_sort(&p->marks);
        p->digest = calloc((size_t)parts, sizeof(*p->digest));
        p->users = fl_feed_partition_digests(&p->set, parts, p->digest);
    }
    /* --against: the trim marks of both stores, and the reference above them */
    fl_feed_marks_t marks = {0};
    fl_feed_set_t ref_above = {0};
    size_t ref_below = 0, marked = 0;
    if (ret)
        goto out;

    if (!json) {
        printf("feeds: %zu users, %zu entries in %s\n", places[0].users, places[0].set.len,
               places[0].name);
        printf("%-9s %-18s", "partition", "store");
        for (int i = 1; i < NPLACES; i++)
            if (places[i].wanted)
                printf(" %-20s", places[i].name);
        printf("\n");
        for (int32_t q = 0; q < parts; q++) {
            printf("%-9d %016" PRIx64 "  ", q, places[0].digest[q]);
            for (int i = 1; i < NPLACES; i++)
                if (places[i].wanted)
                    printf(" %016" PRIx64 " %-3s", places[i].digest[q],
                           places[i].digest[q] == places[0].digest[q] ? "=" : "!=");
            printf("\n");
        }
    } else {
        json_object_set_new(out, "reference", json_string(places[0].name));
        json_object_set_new(out, "users", json_integer((json_int_t)places[0].users));
        json_object_set_new(out, "entries", json_integer((json_int_t)places[0].set.len));
    }
    /* Another generation's timelines were built from the same operations
     * in another order: compared above the higher of the two trim marks
     * of each user (fl_timeline.h), exactly everywhere else. */
    if (other) {
        for (int i = 0; i < 4; i += 3)
            for (size_t k = 0; k < places[i].marks.len; k++) {
                const fl_feed_mark_t *mk = &places[i].marks.v[k];
                if (!fl_feed_marks_add(&marks, mk->user_id, mk->created_at, mk->post_id))
                    goto nomem;
            }
        fl_feed_marks_sort(&marks);
        marked = marks.len;
        if (!fl_feed_set_above_marks(&places[0].set, &marks, &ref_above, &ref_below))
            goto nomem;
    }
    for (int i = 1; i < NPLACES; i++) {
        struct place *p = &places[i];
        if (!p->wanted)
            continue;
        const bool above = i >= 3;
        fl_feed_set_t here = {0};
        size_t below = 0;
        if (above && !fl_feed_set_above_marks(&p->set, &marks, &here, &below)) {
            fl_feed_set_free(&here);
            goto nomem;
        }
        const fl_feed_set_t *a = above ? &ref_above : &places[0].set, *b = above ? &here : &p->set;
        report_t r = {places[0].name, p->name, 0, max_users, json ? json_array() : NULL};
        if (!json)
            printf("%s: ", p->name);
        size_t differ = fl_feed_diff(a, b, NULL, NULL);
        if (!json && !differ)
            printf("equal (%zu users, %zu entries)", p->users, p->set.len);
        else if (!json)
            printf("%zu of %zu users differ (%zu entries here)", differ,
                   places[0].users > p->users ? places[0].users : p->users, p->set.len);
        if (!json && above)
            printf(", compared above the trim marks of %zu users (%zu and %zu entries at or "
                   "below them)",
                   marked, ref_below, below);
        if (!json)
            printf("\n");
        if (differ) {
            fl_feed_diff(a, b, on_diff, &r);
            ret = EXIT_DIFFER;
        }
        if (json) {
            json_t *o = json_pack("{sbsIsIso}", "equal", !differ, "differ", (json_int_t)differ,
                                  "entries", (json_int_t)p->set.len, "users_shown", r.users);
            if (above)
                json_object_update_new(o, json_pack("{sIsIsI}", "users_with_trim_mark",
                                                    (json_int_t)marked, "reference_below_marks",
                                                    (json_int_t)ref_below, "below_marks",
                                                    (json_int_t)below));
            json_object_set_new(out, p->name, o);
        }
        fl_feed_set_free(&here);
    }
    if (json) {
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
    }
    goto out;
nomem:
    fprintf(stderr, "feedline verify: out of memory\n");
    ret = EXIT_UNREADABLE;
out:
    fl_feed_marks_free(&marks);
    fl_feed_set_free(&ref_above);
    json_decref(out);
    for (int i = 0; i < NPLACES; i++) {
        fl_feed_set_free(&places[i].set);
        fl_feed_marks_free(&places[i].marks);
        free(places[i].digest);
    }
    fl_topology_free(other);
    return ret;
}
