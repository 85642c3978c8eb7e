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
 * Then (unless --feeds) the relations both projections hold beside the
 * feeds (fl_verify_facts.h): posts, users and their counts, follows,
 * affinity and notifications, Redis against PostgreSQL, and with
 * --against each against the other generation's.
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
#include "fl_verify_facts.h"

#include <getopt.h>
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
static fl_err_t feeds_from_kv(fl_kv_t *kv, fl_feed_set_t *s, fl_feed_set_t *marks, char *err,
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
                ok = fl_feed_set_add(marks, u, meta.mark_post_id, meta.mark_created_at);
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
                                     fl_feed_set_t *s, fl_feed_set_t *marks, char *err,
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

static fl_err_t feeds_from_stores(char **dirs, int n, fl_feed_set_t *s, fl_feed_set_t *marks,
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
    if (rc == FL_ERR_NOMEM || rc == FL_ERR_INVALID) /* else the server's message stands */
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
    int rel; /* a fl_vrel_t, or -1: feeds */
    int shown, max_users;
    json_t *users; /* --json: the differing users (or entities) */
} report_t;

static void describe(const report_t *r, const fl_feed_entry_t *e, char *buf, size_t size)
{
    if (r->rel < 0)
        snprintf(buf, size, "%" PRId64 "@%" PRId64, e->post_id, e->created_at);
    else
        fl_fact_describe((fl_vrel_t)r->rel, e, buf, size);
}

static void print_entries(const report_t *r, const char *where, const fl_feed_entry_t *v, size_t n)
{
    char buf[160];
    printf("    only in %s (%zu):", where, n);
    for (size_t i = 0; i < n && i < 10; i++) {
        describe(r, &v[i], buf, sizeof(buf));
        printf("%s %s", i && r->rel >= 0 ? "," : "", buf);
    }
    printf("%s\n", n > 10 ? " ..." : "");
}

static json_t *entries_json(const report_t *r, const fl_feed_entry_t *v, size_t n)
{
    json_t *a = json_array();
    char buf[160];
    for (size_t i = 0; i < n; i++) {
        describe(r, &v[i], buf, sizeof(buf));
        json_array_append_new(a, r->rel < 0
                                     ? json_pack("{sIsI}", "post_id", (json_int_t)v[i].post_id,
                                                 "created_at", (json_int_t)v[i].created_at)
                                     : json_string(buf));
    }
    return a;
}

static bool on_diff(void *ctx, int64_t user, const fl_feed_entry_t *oa, size_t na,
                    const fl_feed_entry_t *ob, size_t nb)
{
    report_t *r = ctx;
    const char *id = r->rel < 0 ? "user" : fl_fact_id_name((fl_vrel_t)r->rel);
    if (r->users) {
        char k[32];
        snprintf(k, sizeof(k), "%s_id", id);
        json_array_append_new(r->users, json_pack("{sIsoso}", k, (json_int_t)user,
                                                  "only_in_reference", entries_json(r, oa, na),
                                                  "only_here", entries_json(r, ob, nb)));
    } else {
        printf("  %s %" PRId64 ":\n", id, user);
        if (na)
            print_entries(r, r->ref, oa, na);
        if (nb)
            print_entries(r, r->other, ob, nb);
    }
    return ++r->shown < r->max_users;
}

/* ---- the other relations --------------------------------------------------- */

/* this generation's PostgreSQL, Redis; then --against's */
#define NFPLACES 4

/* One relation in every wanted place, each compared with the reference
 * (this generation's PostgreSQL, or its Redis with --only redis);
 * notifications at a Redis place's cap (fl_verify_facts.h). 0 equal, 1 a
 * difference, 3 a place could not be read. */
static int verify_rel(fl_vrel_t rel, const fl_topology_t *topo, const fl_topology_t *other,
                      const bool wanted[NFPLACES], int max_users, json_t *out)
{
    static const char *const names[NFPLACES] = {"postgres", "redis", "against_postgres",
                                                "against_redis"};
    fl_feed_set_t sets[NFPLACES] = {0}, marks[2] = {0}; /* the Redis places' trim marks */
    char err[1024];
    int ret = 0, ref = wanted[0] ? 0 : 1;
    for (int i = 0; i < NFPLACES; i++) {
        if (!wanted[i])
            continue;
        const fl_topology_t *pt = i < 2 ? topo : other;
        err[0] = 0;
        fl_err_t rc = i % 2 == 0 ? fl_facts_from_pg(pt, rel, &sets[i], err, sizeof(err))
                                 : fl_facts_from_redis(pt, rel, &sets[i], err, sizeof(err));
        if (rc) {
            fprintf(stderr, "feedline verify: %s %s: %s\n", names[i], fl_fact_name(rel), err);
            ret = EXIT_UNREADABLE;
        }
        fl_feed_set_sort(&sets[i]);
        if (!rc && rel == FL_VREL_NOTIFICATIONS && i % 2 == 1) {
            rc = fl_facts_notif_marks_from_redis(pt, &marks[i / 2], err, sizeof(err));
            if (rc) {
                fprintf(stderr, "feedline verify: %s notification trim marks: %s\n", names[i], err);
                ret = EXIT_UNREADABLE;
            }
            fl_feed_set_sort(&marks[i / 2]);
        }
    }
    json_t *o = out ? json_object() : NULL;
    uint64_t dref = 0;
    size_t nref = ret ? 0 : fl_feed_partition_digests(&sets[ref], 1, &dref);
    if (!ret && !o)
        printf("%s: %zu %ss, %zu rows in %s (digest %016" PRIx64 ")\n", fl_fact_name(rel), nref,
               fl_fact_id_name(rel), sets[ref].len, names[ref], dref);
    else if (!ret)
        json_object_update_new(o, json_pack("{sssIsIsI}", "reference", names[ref], "ids",
                                            (json_int_t)nref, "rows", (json_int_t)sets[ref].len,
                                            "digest", (json_int_t)dref));
    for (int i = ref + 1; ret != EXIT_UNREADABLE && i < NFPLACES; i++) {
        if (!wanted[i])
            continue;
        fl_feed_set_t a = {0}, b = {0}, floors = {0};
        size_t below_a = 0, below_b = 0;
        const bool capped = rel == FL_VREL_NOTIFICATIONS && (i % 2 == 1 || ref == 1);
        bool ok = true;
        if (capped) {
            if (ref == 1)
                ok = fl_feed_marks_merge(&marks[0], &floors, fl_facts_notif_cmp);
            if (ok && i % 2 == 1)
                ok = fl_feed_marks_merge(&marks[i / 2], &floors, fl_facts_notif_cmp);
            ok = ok && fl_feed_set_cut(&sets[ref], &floors, fl_facts_notif_cmp, &a, &below_a) &&
                 fl_feed_set_cut(&sets[i], &floors, fl_facts_notif_cmp, &b, &below_b);
        }
        if (!ok) {
            fprintf(stderr, "feedline verify: out of memory\n");
            ret = EXIT_UNREADABLE;
        } else {
            const fl_feed_set_t *pa = capped ? &a : &sets[ref], *pb = capped ? &b : &sets[i];
            report_t r = {names[ref], names[i], (int)rel, 0, max_users, o ? json_array() : NULL};
            size_t differ = fl_feed_diff(pa, pb, NULL, NULL);
            uint64_t d = 0;
            size_t n = fl_feed_partition_digests(&sets[i], 1, &d);
            if (!o) {
                printf("  %s: ", names[i]);
                if (differ)
                    printf("%zu %ss differ (%zu %ss, %zu rows here)", differ, fl_fact_id_name(rel),
                           n, fl_fact_id_name(rel), sets[i].len);
                else
                    printf("equal (%zu %ss, %zu rows, digest %016" PRIx64 ")", n,
                           fl_fact_id_name(rel), sets[i].len, d);
                if (capped)
                    printf(", compared above the trim marks of %zu users (%zu and %zu at or "
                           "below them)",
                           floors.len, below_a, below_b);
                printf("\n");
            }
            if (differ) {
                fl_feed_diff(pa, pb, on_diff, &r);
                ret = EXIT_DIFFER;
            }
            if (o) {
                json_t *p = json_pack("{sbsIsIsIso}", "equal", !differ, "differ",
                                      (json_int_t)differ, "rows", (json_int_t)sets[i].len, "digest",
                                      (json_int_t)d, "shown", r.users);
                if (capped)
                    json_object_update_new(p, json_pack("{sIsIsI}", "users_with_trim_mark",
                                                        (json_int_t)floors.len, "reference_below",
                                                        (json_int_t)below_a, "below",
                                                        (json_int_t)below_b));
                json_object_set_new(o, names[i], p);
            }
        }
        fl_feed_set_free(&a);
        fl_feed_set_free(&b);
        fl_feed_set_free(&floors);
    }
    if (o)
        json_object_set_new(out, fl_fact_name(rel), o);
    for (int i = 0; i < NFPLACES; i++)
        fl_feed_set_free(&sets[i]);
    fl_feed_set_free(&marks[0]);
    fl_feed_set_free(&marks[1]);
    return ret;
}

/* ---- the other stores, generation against generation ------------------------ */

static uint64_t record_digest(const void *k, size_t kl, const void *v, size_t vl)
{
    return (uint64_t)fl_digest_bytes(k, kl) * 0x9E3779B97F4A7C15ull ^
           (uint64_t)fl_digest_bytes(v, vl);
}

static void print_key(const char *what, const void *k, size_t kl)
{
    json_t *j = fl_inspect_store_key(k, kl);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    printf("    %s: %s\n", what, s ? s : "(a key of no known layout)");
    free(s);
    json_decref(j);
}

/* Every store but the timelines (compared above as feeds): its changelog
 * read to its end in this generation and in other's, compared record by
 * record (the store's own 0x00 records aside): a replay from the same
 * inputs in the same merge order makes the same records. 0 equal, 1 a
 * difference, 3 unreadable. */
static int verify_stores(const fl_topology_t *topo, const fl_topology_t *other,
                         volatile sig_atomic_t *stop, int max_shown, json_t *out)
{
    int ret = 0;
    char err[1024];
    for (size_t i = 0; i < topo->n_stores && ret != EXIT_UNREADABLE; i++) {
        const char *name = topo->stores[i].name;
        if (!strcmp(name, FL_STORE_TIMELINES))
            continue;
        fl_kv_t *kv[2] = {fl_kv_mem_new(), fl_kv_mem_new()};
        fl_kv_iter_t *it[2] = {NULL, NULL};
        fl_err_t rc = kv[0] && kv[1] ? FL_OK : FL_ERR_NOMEM;
        snprintf(err, sizeof(err), "%s", "out of memory");
        for (int g = 0; g < 2 && !rc; g++)
            rc = fl_inspect_load_store(g ? other : topo, name, kv[g], stop, err, sizeof(err));
        for (int g = 0; g < 2 && !rc; g++)
            if (!(rc = fl_kv_iter_new(kv[g], NULL, 0, &it[g], err, sizeof(err))))
                fl_kv_iter_seek_first(it[g]);
        if (rc) {
            fprintf(stderr, "feedline verify: store %s: %s\n", name, err);
            ret = EXIT_UNREADABLE;
        }
        uint64_t digest[2] = {0, 0};
        size_t records[2] = {0, 0}, only[2] = {0, 0}, changed = 0;
        int shown = 0;
        json_t *keys = out ? json_array() : NULL;
        if (!rc && !out)
            printf("store %s:\n", name);
        while (!rc && (fl_kv_iter_valid(it[0]) || fl_kv_iter_valid(it[1]))) {
            size_t kl[2] = {0, 0}, vl[2] = {0, 0};
            const void *k[2] = {NULL, NULL}, *v[2] = {NULL, NULL};
            for (int g = 0; g < 2; g++)
                if (fl_kv_iter_valid(it[g])) {
                    k[g] = fl_kv_iter_key(it[g], &kl[g]);
                    v[g] = fl_kv_iter_value(it[g], &vl[g]);
                }
            int c = !k[0] ? 1 : !k[1] ? -1 : memcmp(k[0], k[1], kl[0] < kl[1] ? kl[0] : kl[1]);
            if (!c && k[0] && k[1])
                c = kl[0] < kl[1] ? -1 : kl[0] > kl[1];
            const char *what = NULL;
            int at = c <= 0 ? 0 : 1;
            for (int g = 0; g < 2; g++)
                if ((g == 0 && c <= 0) || (g == 1 && c >= 0)) {
                    digest[g] += record_digest(k[g], kl[g], v[g], vl[g]);
                    records[g]++;
                }
            if (c < 0)
                only[0]++, what = "only in this generation";
            else if (c > 0)
                only[1]++, what = "only in --against's";
            else if (vl[0] != vl[1] || memcmp(v[0], v[1], vl[0]))
                changed++, what = "value differs";
            if (what && shown++ < max_shown) {
                if (keys)
                    json_array_append_new(keys, json_pack("{ssso*}", "difference", what, "key",
                                                          fl_inspect_store_key(k[at], kl[at])));
                else
                    print_key(what, k[at], kl[at]);
            }
            for (int g = 0; g < 2; g++)
                if ((g == 0 && c <= 0) || (g == 1 && c >= 0))
                    fl_kv_iter_next(it[g]);
        }
        const size_t differ = only[0] + only[1] + changed;
        if (!rc && !out)
            printf("  this generation %zu records (digest %016" PRIx64 "), against %zu (%016" PRIx64
                   "): %s",
                   records[0], digest[0], records[1], digest[1], differ ? "" : "equal\n");
        if (!rc && !out && differ)
            printf("%zu only here, %zu only there, %zu values differ\n", only[0], only[1], changed);
        if (!rc && out)
            json_object_set_new(out, name,
                                json_pack("{sbsIsIsIsIsIsIso}", "equal", !differ, "records",
                                          (json_int_t)records[0], "against_records",
                                          (json_int_t)records[1], "digest", (json_int_t)digest[0],
                                          "against_digest", (json_int_t)digest[1], "only_here",
                                          (json_int_t)only[0], "only_against", (json_int_t)only[1],
                                          "differ", keys));
        else
            json_decref(keys);
        if (!rc && differ)
            ret = EXIT_DIFFER;
        for (int g = 0; g < 2; g++) {
            fl_kv_iter_free(it[g]);
            fl_kv_free(kv[g]);
        }
    }
    return ret;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: feedline %s\n", FL_VERIFY_USAGE);
}

/* this topology's store, Redis, PostgreSQL; then --against's */
#define NPLACES 6

int fl_verify_cmd(const fl_topology_t *topo, volatile sig_atomic_t *stop, int argc, char **argv)
{
    static const struct option opts[] = {{"store", no_argument, 0, 's'},
                                         {"only", required_argument, 0, 'o'},
                                         {"max-users", required_argument, 0, 'm'},
                                         {"json", no_argument, 0, 'j'},
                                         {"against", required_argument, 0, 'a'},
                                         {"feeds", no_argument, 0, 'f'},
                                         {0, 0, 0, 0}};
    fl_topology_t *other = NULL;
    bool from_stores = false, json = false, want_redis = true, want_pg = true, feeds_only = false;
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
        } else if (c == 'f') {
            feeds_only = true;
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
        fl_feed_set_t marks; /* a store's trim marks (places 0 and 3) */
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
                : i % 3 == 1 ? fl_facts_feeds_from_redis(pt, &p->set, err, sizeof(err))
                             : feeds_from_pg(pt, &p->set, err, sizeof(err));
        if (p->rc) {
            fprintf(stderr, "feedline verify: %s: %s\n", p->name, err);
            ret = EXIT_UNREADABLE;
            continue;
        }
        fl_feed_set_sort(&p->set);
        fl_feed_set_sort(&p->marks);
        p->digest = calloc((size_t)parts, sizeof(*p->digest));
        p->users = fl_feed_partition_digests(&p->set, parts, p->digest);
    }
    /* --against: the trim marks of both stores, and the reference above them */
    fl_feed_set_t marks = {0};
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
            if (!fl_feed_marks_merge(&places[i].marks, &marks, fl_feed_row_cmp_timeline))
                goto nomem;
        marked = marks.len;
        if (!fl_feed_set_cut(&places[0].set, &marks, fl_feed_row_cmp_timeline, &ref_above,
                             &ref_below))
            goto nomem;
    }
    for (int i = 1; i < NPLACES; i++) {
        struct place *p = &places[i];
        if (!p->wanted)
            continue;
        const bool above = i >= 3;
        fl_feed_set_t here = {0};
        size_t below = 0;
        if (above && !fl_feed_set_cut(&p->set, &marks, fl_feed_row_cmp_timeline, &here, &below)) {
            fl_feed_set_free(&here);
            goto nomem;
        }
        const fl_feed_set_t *a = above ? &ref_above : &places[0].set, *b = above ? &here : &p->set;
        report_t r = {places[0].name, p->name, -1, 0, max_users, json ? json_array() : NULL};
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
    /* Then the relations beside the feeds that both projections hold. */
    const bool fwanted[NFPLACES] = {want_pg, want_redis, other && want_pg, other && want_redis};
    json_t *rels = json && !feeds_only ? json_object() : NULL;
    for (int rel = 0; rel < FL_VREL_N && !feeds_only; rel++) {
        int r = verify_rel((fl_vrel_t)rel, topo, other, fwanted, max_users, rels);
        if (r > ret)
            ret = r;
    }
    if (rels)
        json_object_set_new(out, "relations", rels);
    /* And the other stores, between generations. */
    if (other && !feeds_only) {
        json_t *stores = json ? json_object() : NULL;
        int r = verify_stores(topo, other, stop, max_users, stores);
        if (r > ret)
            ret = r;
        if (stores)
            json_object_set_new(out, "stores", stores);
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
    fl_feed_set_free(&marks);
    fl_feed_set_free(&ref_above);
    json_decref(out);
    for (int i = 0; i < NPLACES; i++) {
        fl_feed_set_free(&places[i].set);
        fl_feed_set_free(&places[i].marks);
        free(places[i].digest);
    }
    fl_topology_free(other);
    return ret;
}
