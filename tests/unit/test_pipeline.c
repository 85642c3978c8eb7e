/*
 * test_pipeline.c - the fanout -> timeline pipeline against an oracle.
 *
 * A seeded random workload (300 users, 3000 events: posts of every
 * visibility, deletions including unknown ids and late creates, reused
 * post ids, follows and unfollows including duplicates and self-follows,
 * and a few "hot" authors whose follower counts swing across the
 * celebrity threshold and back) runs through four fan-out drivers (each
 * event routed to the partition of its key) whose timeline operations are
 * piped at once, in order, into four timeline drivers. Every event goes
 * all the way through before the next one starts.
 *
 * The oracle below applies the documented rules (fl_fanout.h,
 * fl_timeline.h, README "Fan-out rules") directly, in plain C, with
 * no stores and no wire formats: follower sets, a celebrity flag with
 * hysteresis, per-author outboxes (newest non-private live posts, capped),
 * timelines as sorted arrays capped by dropping the oldest after each
 * insert, deletions removing a post everywhere and unfollows removing
 * every post of the author. Post records are kept per partition, as a
 * fan-out task only knows the posts of its own partition. The drivers'
 * stores are compared with it every CHECK_EVERY events and at the end.
 *
 * The same workload is then run with every event, and every timeline
 * operation, delivered twice in a row: the second delivery must produce
 * nothing, and every store must end byte-identical to the first run's.
 *
 * Both runs are made in two modes: one record per batch in memory, and
 * as the runtime runs the processors, several records per batch (a
 * different size per task, so that batches end anywhere) on RocksDB with
 * background writes. The batched runs check "produced nothing" with the
 * stores' write counters, since a batch's changelog comes at its commit.
 * A model test then runs workloads in both modes side by side and
 * requires the same outputs, dead letters, offsets, stores and compacted
 * changelogs, and that each compacted changelog restores its store.
 */
#include <criterion/criterion.h>

#include "fl_driver.h"
#include "fl_fanout.h"
#include "fl_keys.h"
#include "fl_partition.h"
#include "fl_timeline.h"
#include "fl_tlop.h"
#include "fl_topics.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPART       4
#define NUSERS      300
#define NEVENTS     3000
#define NHOT        4
#define MAXPOST     16384
#define FUTURE_IDS  10000 /* ids deleted before creation start here */
#define CHECK_EVERY 50

/* from tests/data/topology/driver.yaml, checked at load */
#define THRESHOLD  5
#define HYSTERESIS 2
#define TL_CAP     6
#define BACKFILL   3
#define OUTBOX_CAP 4

static fl_topology_t *topo;

static void setup(void)
{
    char path[4096], err[512] = "";
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/tests/data/topology/driver.yaml", dir && *dir ? dir : ".");
    topo = fl_topology_load(path, err, sizeof(err));
    cr_assert_not_null(topo, "topology: %s", err);
    const fl_settings_t *s = &topo->settings;
    cr_assert(s->celebrity_threshold == THRESHOLD && s->celebrity_hysteresis == HYSTERESIS &&
                  s->timeline_cap == TL_CAP && s->backfill_size == BACKFILL &&
                  s->outbox_cap == OUTBOX_CAP,
              "driver.yaml settings changed; update the oracle's constants");
    cr_assert_eq(fl_topology_topic(topo, FL_TOPIC_POSTS)->partitions, NPART);
    cr_assert_eq(fl_topology_topic(topo, FL_TOPIC_FOLLOWS)->partitions, NPART);
    cr_assert_eq(fl_topology_topic(topo, FL_TOPIC_TIMELINE_OPS)->partitions, NPART);
}

/* Every driver alive, so that a failed assertion does not leave the
 * RocksDB directories of its pipelines behind. */
#define MAX_LIVE (4 * 2 * NPART)
static fl_driver_t *live[MAX_LIVE];

static void teardown(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        fl_driver_free(live[i]);
        live[i] = NULL;
    }
    fl_topology_free(topo);
    topo = NULL;
}

static void live_add(fl_driver_t *d)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (!live[i]) {
            live[i] = d;
            return;
        }
    cr_assert_fail("more than %d drivers alive", MAX_LIVE);
}

static void live_free(fl_driver_t *d)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == d)
            live[i] = NULL;
    fl_driver_free(d);
}

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 600);

static int32_t part(int64_t id)
{
    return fl_partition_for_id(id, NPART);
}

/* ---- randomness ---- */

static uint64_t rnd_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rnd_below(uint64_t *s, uint64_t n)
{
    return (int64_t)(rnd_next(s) % n);
}

/* ---- the oracle ---- */

typedef struct o_entry {
    int64_t created_at, post, author;
} o_entry_t;

enum { O_UNKNOWN = 0, O_LIVE, O_DELETED };

typedef struct o_post {
    int64_t author, created_at;
    fl_visibility_t vis;
    int state;
} o_post_t;

typedef struct oracle {
    o_post_t posts[NPART][MAXPOST];    /* per fan-out partition, by post id */
    bool edge[NUSERS + 1][NUSERS + 1]; /* [author][follower] */
    int followers[NUSERS + 1];
    bool celebrity[NUSERS + 1];
    o_entry_t outbox[NUSERS + 1][OUTBOX_CAP + 1];
    int outbox_n[NUSERS + 1];
    o_entry_t tl[NUSERS + 1][TL_CAP + 1];
    int tl_n[NUSERS + 1];
} oracle_t;

/* What an event must do: its verdict, and a celebrity record (-1 none). */
typedef struct o_result {
    fl_err_t verdict;
    int celebrity;
} o_result_t;

static bool o_newer(const o_entry_t *a, const o_entry_t *b)
{
    return a->created_at > b->created_at || (a->created_at == b->created_at && a->post > b->post);
}

/* Inserts e into a newest-first array of *n (room for cap + 1) unless
 * present; then drops the oldest while above cap. */
static void o_insert(o_entry_t *arr, int *n, int cap, o_entry_t e)
{
    for (int i = 0; i < *n; i++)
        if (arr[i].post == e.post && arr[i].created_at == e.created_at)
            return;
    int i = *n;
    while (i > 0 && o_newer(&e, &arr[i - 1])) {
        arr[i] = arr[i - 1];
        i--;
    }
    arr[i] = e;
    (*n)++;
    if (*n > cap)
        *n = cap;
}

static void o_remove_at(o_entry_t *arr, int *n, int i)
{
    memmove(&arr[i], &arr[i + 1], (size_t)(*n - i - 1) * sizeof(*arr));
    (*n)--;
}

static void o_backfill(oracle_t *o, int64_t author, int64_t user)
{
    for (int i = 0; i < o->outbox_n[author] && i < BACKFILL; i++)
        o_insert(o->tl[user], &o->tl_n[user], TL_CAP, o->outbox[author][i]);
}

static o_result_t o_apply(oracle_t *o, const fl_event_t *ev)
{
    o_result_t r = {FL_OK, -1};

    switch (ev->type) {
    case FL_EV_POST_CREATED: {
        int64_t a = ev->author_id;
        o_post_t *p = &o->posts[part(a)][ev->post_id];
        if (p->state != O_UNKNOWN) {
            if (p->author != a)
                r.verdict = FL_ERR_INVALID;
            return r;
        }
        *p = (o_post_t){a, ev->created_at, ev->visibility, O_LIVE};
        o_entry_t e = {ev->created_at, ev->post_id, a};
        o_insert(o->tl[a], &o->tl_n[a], TL_CAP, e);
        if (ev->visibility == FL_VIS_PRIVATE)
            return r;
        o_insert(o->outbox[a], &o->outbox_n[a], OUTBOX_CAP, e);
        if (o->celebrity[a])
            return r;
        for (int f = 1; f <= NUSERS; f++)
            if (o->edge[a][f])
                o_insert(o->tl[f], &o->tl_n[f], TL_CAP, e);
        return r;
    }
    case FL_EV_POST_DELETED: {
        int64_t a = ev->author_id;
        o_post_t *p = &o->posts[part(a)][ev->post_id];
        if (p->state != O_UNKNOWN && p->author != a) {
            r.verdict = FL_ERR_INVALID;
            return r;
        }
        if (p->state == O_UNKNOWN) {
            *p = (o_post_t){a, 0, FL_VIS_PUBLIC, O_DELETED};
            return r;
        }
        if (p->state == O_DELETED)
            return r;
        p->state = O_DELETED;
        for (int i = 0; i < o->outbox_n[a]; i++)
            if (o->outbox[a][i].post == ev->post_id && o->outbox[a][i].created_at == p->created_at)
                o_remove_at(o->outbox[a], &o->outbox_n[a], i);
        /* removed everywhere */
        for (int u = 1; u <= NUSERS; u++)
            for (int i = 0; i < o->tl_n[u]; i++)
                if (o->tl[u][i].post == ev->post_id && o->tl[u][i].created_at == p->created_at)
                    o_remove_at(o->tl[u], &o->tl_n[u], i--);
        return r;
    }
    case FL_EV_FOLLOW_ADDED: {
        int64_t a = ev->followee_id, f = ev->follower_id;
        if (a == f) {
            r.verdict = FL_ERR_INVALID;
            return r;
        }
        if (o->edge[a][f])
            return r;
        o->edge[a][f] = true;
        o->followers[a]++;
        if (!o->celebrity[a] && o->followers[a] >= THRESHOLD) {
            o->celebrity[a] = true;
            r.celebrity = 1;
        }
        if (!o->celebrity[a])
            o_backfill(o, a, f);
        return r;
    }
    case FL_EV_FOLLOW_REMOVED: {
        int64_t a = ev->followee_id, f = ev->follower_id;
        if (a == f) {
            r.verdict = FL_ERR_INVALID;
            return r;
        }
        if (!o->edge[a][f])
            return r;
        o->edge[a][f] = false;
        o->followers[a]--;
        for (int i = 0; i < o->tl_n[f]; i++)
            if (o->tl[f][i].author == a)
                o_remove_at(o->tl[f], &o->tl_n[f], i--);
        if (o->celebrity[a] && o->followers[a] < THRESHOLD - HYSTERESIS) {
            o->celebrity[a] = false;
            r.celebrity = 0;
            for (int g = 1; g <= NUSERS; g++)
                if (o->edge[a][g])
                    o_backfill(o, a, g);
        }
        return r;
    }
    default:
        cr_assert_fail("oracle: unexpected event type %d", ev->type);
    }
    return r;
}

/* ---- the workload ---- */

static char event_id[] = "pipeline";
static char text[] = "post";

typedef struct workload {
    fl_event_t ev[NEVENTS];
    size_t n;
    /* generator statistics, to check the workload covers every case */
    int n_private, n_unknown_delete, n_late_create, n_reuse, n_self, n_dup_follow;
} workload_t;

static void gen_workload(workload_t *w, uint64_t seed)
{
    uint64_t rs = seed;
    static bool edge[NUSERS + 1][NUSERS + 1];
    int64_t hot[NHOT];
    int64_t created[MAXPOST], n_created = 0; /* post ids created (author in c_author) */
    int64_t c_author[MAXPOST];
    /* Ids deleted before being created, each created later at most once.
     * They come from their own range so that no two live posts ever share
     * a timeline key (post id, created_at): the same id from two authors
     * of different partitions is an input error no fan-out task can see,
     * and what a timeline holds then is not a rule the oracle models.
     * Reused ids get a created_at of their own for the same reason. */
    int64_t future[64], n_future = 0, n_future_ids = 0;
    int64_t next_post = 1;
    const int64_t base = 1700000000000;

    memset(edge, 0, sizeof(edge));
    memset(w, 0, sizeof(*w));
    for (int h = 0; h < NHOT; h++)
        hot[h] = 1 + rnd_below(&rs, NUSERS);

    for (int step = 0; step < NEVENTS; step++) {
        fl_event_t *ev = &w->ev[w->n++];
        int r = (int)rnd_below(&rs, 100);
        int64_t now = base + 10 * step;

        ev->event_id = event_id;
        ev->occurred_at = now;
        if (r < 35) { /* PostCreated */
            int64_t a =
                rnd_below(&rs, 5) == 0 ? hot[rnd_below(&rs, NHOT)] : 1 + rnd_below(&rs, NUSERS);
            /* buckets of 40 steps, up to 10 buckets late: many ties on
             * created_at, posts older than what timelines and outboxes hold */
            int64_t id, t = base + 1000 * ((step + rnd_below(&rs, 401)) / 40);
            int k = (int)rnd_below(&rs, 100);
            if (k < 4 && n_created) { /* reuse: duplicate, or another author's id */
                int64_t j = rnd_below(&rs, n_created);
                id = created[j];
                if (c_author[j] != a)
                    w->n_reuse++;
                t = now + 7; /* unique, never ties with another post's key */
            } else if (k < 8 && n_future) {
                int64_t j = rnd_below(&rs, n_future);
                id = future[j];
                future[j] = future[--n_future];
                w->n_late_create++;
            } else {
                id = next_post++;
                cr_assert_lt(id, FUTURE_IDS);
            }
            cr_assert_lt(id, MAXPOST);
            ev->type = FL_EV_POST_CREATED;
            ev->author_id = a;
            ev->post_id = id;
            ev->created_at = t;
            ev->text = text;
            int v = (int)rnd_below(&rs, 4);
            ev->visibility = v == 0 ? FL_VIS_PRIVATE : v == 1 ? FL_VIS_FOLLOWERS : FL_VIS_PUBLIC;
            w->n_private += ev->visibility == FL_VIS_PRIVATE;
            created[n_created] = id;
            c_author[n_created++] = a;
        } else if (r < 45) { /* PostDeleted */
            int k = (int)rnd_below(&rs, 100);
            ev->type = FL_EV_POST_DELETED;
            if (k < 15 || !n_created) { /* unknown: an id created later, if ever */
                if (n_future && rnd_below(&rs, 3) == 0) {
                    ev->post_id = future[rnd_below(&rs, n_future)]; /* deleted again */
                } else {
                    ev->post_id = FUTURE_IDS + n_future_ids++;
                    if (n_future < 64)
                        future[n_future++] = ev->post_id;
                }
                ev->author_id = 1 + rnd_below(&rs, NUSERS);
                cr_assert_lt(ev->post_id, MAXPOST);
                w->n_unknown_delete++;
            } else {
                int64_t j = rnd_below(&rs, n_created);
                ev->post_id = created[j];
                ev->author_id = c_author[j];
                if (k < 22) /* by someone else */
                    ev->author_id = 1 + rnd_below(&rs, NUSERS);
            }
        } else if (r < 65) { /* hot authors: phases of growth and decline */
            int h = (int)rnd_below(&rs, NHOT);
            int64_t a = hot[h], f = 1 + rnd_below(&rs, NUSERS);
            bool grow = ((step / 200) + h) % 2 == 0;
            if (!grow) {
                int64_t start = rnd_below(&rs, NUSERS);
                for (int i = 0; i < NUSERS; i++) {
                    int64_t g = 1 + (start + i) % NUSERS;
                    if (edge[a][g]) {
                        f = g;
                        break;
                    }
                }
            }
            ev->type = grow ? FL_EV_FOLLOW_ADDED : FL_EV_FOLLOW_REMOVED;
            ev->followee_id = a;
            ev->follower_id = f;
        } else { /* random follows and unfollows */
            bool add = r < 88;
            int64_t a = 1 + rnd_below(&rs, NUSERS), f = 1 + rnd_below(&rs, NUSERS);
            int k = (int)rnd_below(&rs, 100);
            if (k < 3) {
                f = a;
                w->n_self++;
            } else if (k < 60 && !(add && k >= 10)) {
                /* an existing edge of a (a duplicate follow, or a real unfollow) */
                int64_t start = rnd_below(&rs, NUSERS);
                for (int i = 0; i < NUSERS; i++) {
                    int64_t g = 1 + (start + i) % NUSERS;
                    if (edge[a][g]) {
                        f = g;
                        break;
                    }
                }
            }
            ev->type = add ? FL_EV_FOLLOW_ADDED : FL_EV_FOLLOW_REMOVED;
            ev->followee_id = a;
            ev->follower_id = f;
        }
        if (ev->type == FL_EV_FOLLOW_ADDED && ev->followee_id != ev->follower_id) {
            w->n_dup_follow += edge[ev->followee_id][ev->follower_id];
            edge[ev->followee_id][ev->follower_id] = true;
        } else if (ev->type == FL_EV_FOLLOW_REMOVED) {
            edge[ev->followee_id][ev->follower_id] = false;
        }
    }
}

static int64_t event_key(const fl_event_t *ev)
{
    return ev->type == FL_EV_POST_CREATED || ev->type == FL_EV_POST_DELETED ? ev->author_id
                                                                            : ev->followee_id;
}

static const char *event_topic(const fl_event_t *ev)
{
    return ev->type == FL_EV_POST_CREATED || ev->type == FL_EV_POST_DELETED ? FL_TOPIC_POSTS
                                                                            : FL_TOPIC_FOLLOWS;
}

static void event_str(const fl_event_t *ev, char *buf, size_t size)
{
    switch (ev->type) {
    case FL_EV_POST_CREATED:
        snprintf(buf, size, "PostCreated(author %" PRId64 ", post %" PRId64 ", t %" PRId64 ", %s)",
                 ev->author_id, ev->post_id, ev->created_at, fl_visibility_name(ev->visibility));
        break;
    case FL_EV_POST_DELETED:
        snprintf(buf, size, "PostDeleted(author %" PRId64 ", post %" PRId64 ")", ev->author_id,
                 ev->post_id);
        break;
    default:
        snprintf(buf, size, "%s(followee %" PRId64 ", follower %" PRId64 ")",
                 ev->type == FL_EV_FOLLOW_ADDED ? "FollowAdded" : "FollowRemoved", ev->followee_id,
                 ev->follower_id);
    }
}

/* ---- the drivers ---- */

/* How the drivers run: the batch sizes of the fan-out and timeline tasks
 * of partition 0, growing by step with the partition. */
typedef struct run_mode {
    const char *name;
    fl_driver_backend_t backend;
    size_t fan_batch, tl_batch, step;
} run_mode_t;

static const run_mode_t single = {"single records in memory", FL_DRIVER_MEMORY, 1, 1, 0};
static const run_mode_t batched = {"batches on RocksDB", FL_DRIVER_ROCKSDB, 7, 19, 4};

typedef struct pipeline {
    fl_driver_t *fan[NPART];
    fl_driver_t *tl[NPART];
    bool batched;
    int times; /* deliveries of each timeline operation */
    int n_celebrity_records;
} pipeline_t;

static void pipeline_new(pipeline_t *p, int times, const run_mode_t *m)
{
    char err[256];
    memset(p, 0, sizeof(*p));
    p->times = times;
    p->batched = m->fan_batch > 1 || m->tl_batch > 1;
    for (int i = 0; i < NPART; i++) {
        fl_driver_opts_t fo = {.backend = m->backend,
                               .batch_records = m->fan_batch + (size_t)i * m->step};
        fl_driver_opts_t to = {.backend = m->backend,
                               .batch_records = m->tl_batch + (size_t)i * m->step};
        p->fan[i] = fl_driver_new_opts(topo, &fl_fanout_processor, i, &fo, err, sizeof(err));
        cr_assert_not_null(p->fan[i], "driver: %s", err);
        live_add(p->fan[i]);
        p->tl[i] = fl_driver_new_opts(topo, &fl_timeline_processor, i, &to, err, sizeof(err));
        cr_assert_not_null(p->tl[i], "driver: %s", err);
        live_add(p->tl[i]);
    }
}

/* Commits every open batch. */
static void pipeline_flush(pipeline_t *p)
{
    char err[512] = "";
    for (int i = 0; i < NPART; i++) {
        cr_assert_eq(fl_driver_flush(p->fan[i], err, sizeof(err)), FL_OK, "flush: %s", err);
        cr_assert_eq(fl_driver_flush(p->tl[i], err, sizeof(err)), FL_OK, "flush: %s", err);
    }
}

/* Store writes of one driver's task so far. */
static uint64_t writes_of(fl_driver_t *d, const char *store)
{
    return fl_store_writes(fl_driver_store(d, store));
}

/* What the last record changed: its changelog records with one record
 * per batch, its store writes (committed later) with more. */
static uint64_t changes_of(const pipeline_t *p, fl_driver_t *d, const char *store,
                           uint64_t writes_before)
{
    size_t n_cl;
    if (p->batched)
        return writes_of(d, store) - writes_before;
    fl_driver_changelog(d, &n_cl);
    return n_cl;
}

static void pipeline_free(pipeline_t *p)
{
    for (int i = 0; i < NPART; i++) {
        live_free(p->fan[i]);
        live_free(p->tl[i]);
    }
}

/* Pipes ev into its fan-out task and every timeline operation it emits,
 * in order, into the timeline task of the record's partition (p->times
 * times in a row, the repeats having to change nothing). Returns
 * the fan-out's result; *celebrity gets the status published (-1 none). */
static fl_err_t pipeline_pipe(pipeline_t *p, const fl_event_t *ev, int *celebrity, size_t *n_out,
                              const char *where)
{
    char err[512] = "";
    fl_driver_t *d = p->fan[part(event_key(ev))];
    size_t n;

    fl_driver_clear_outputs(d);
    fl_err_t res = fl_driver_pipe_event(d, event_topic(ev), ev, err, sizeof(err));
    cr_assert(res == FL_OK || res == FL_ERR_INVALID, "%s: fan-out failed: %s (%s)", where,
              fl_err_str(res), err);
    const fl_driver_record_t *out = fl_driver_outputs(d, &n);
    *celebrity = -1;
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(out[i].topic, FL_TOPIC_CELEBRITIES)) {
            json_error_t jerr;
            json_t *v = json_loadb(out[i].value, out[i].vlen, 0, &jerr);
            cr_assert_not_null(v, "%s: celebrity record is not JSON", where);
            cr_assert_eq(*celebrity, -1, "%s: two celebrity records", where);
            *celebrity = json_is_true(json_object_get(v, "celebrity"));
            cr_assert_eq(json_integer_value(json_object_get(v, "author_id")), event_key(ev));
            json_decref(v);
            p->n_celebrity_records++;
            continue;
        }
        cr_assert_str_eq(out[i].topic, FL_TOPIC_TIMELINE_OPS, "%s", where);
        cr_assert(out[i].partition >= 0 && out[i].partition < NPART);
        fl_driver_t *t = p->tl[out[i].partition];
        for (int k = 0; k < p->times; k++) {
            uint64_t n_cl, writes = writes_of(t, FL_STORE_TIMELINES);
            fl_driver_clear_outputs(t);
            fl_err_t e = fl_driver_pipe_raw(t, FL_TOPIC_TIMELINE_OPS, out[i].key, out[i].klen,
                                            out[i].value, out[i].vlen, err, sizeof(err));
            cr_assert_eq(e, FL_OK, "%s: timeline task %d rejected output %zu: %s (%s)", where,
                         out[i].partition, i, fl_err_str(e), err);
            n_cl = changes_of(p, t, FL_STORE_TIMELINES, writes);
            cr_assert(k == 0 || n_cl == 0,
                      "%s: output %zu delivered again changed the timelines (%" PRIu64 ")", where,
                      i, n_cl);
        }
        fl_driver_clear_outputs(t);
    }
    return res;
}

/* ---- comparing the drivers with the oracle ---- */

static void check_timelines(pipeline_t *p, const oracle_t *o, const char *where)
{
    static o_entry_t got[NUSERS + 1][TL_CAP + 1];
    static int got_n[NUSERS + 1];
    const uint8_t tag = FL_KEY_TAG_TIMELINE;

    memset(got_n, 0, sizeof(got_n));
    for (int32_t tp = 0; tp < NPART; tp++) {
        fl_store_t *s = fl_driver_store(p->tl[tp], FL_STORE_TIMELINES);
        fl_store_iter_t *it = NULL;
        cr_assert_eq(fl_store_iter_new(s, &tag, 1, &it), FL_OK);
        /* Timeline keys are oldest first: walk backwards for newest first. */
        for (fl_store_iter_seek_last(it); fl_store_iter_valid(it); fl_store_iter_prev(it)) {
            size_t klen, vlen;
            const void *key = fl_store_iter_key(it, &klen);
            const void *val = fl_store_iter_value(it, &vlen);
            int64_t u, t, post;
            cr_assert_eq(fl_key_parse_timeline(key, klen, &u, &t, &post), FL_OK);
            cr_assert(u >= 1 && u <= NUSERS, "%s: timeline of unknown user %" PRId64, where, u);
            cr_assert_eq(part(u), tp, "%s: user %" PRId64 " stored in partition %d", where, u, tp);
            cr_assert_lt(got_n[u], TL_CAP, "%s: user %" PRId64 " has more than %d entries", where,
                         u, TL_CAP);
            cr_assert_eq(vlen, 8);
            got[u][got_n[u]++] = (o_entry_t){t, post, fl_key_dec_i64(val)};
        }
        cr_assert_eq(fl_store_iter_status(it), FL_OK);
        fl_store_iter_free(it);
    }
    for (int u = 1; u <= NUSERS; u++) {
        char g[256] = "", w[256] = "";
        size_t gl = 0, wl = 0;
        for (int i = 0; i < got_n[u]; i++)
            gl += (size_t)snprintf(g + gl, sizeof(g) - gl, " %" PRId64 "@%" PRId64, got[u][i].post,
                                   got[u][i].created_at);
        for (int i = 0; i < o->tl_n[u]; i++)
            wl += (size_t)snprintf(w + wl, sizeof(w) - wl, " %" PRId64 "@%" PRId64,
                                   o->tl[u][i].post, o->tl[u][i].created_at);
        cr_assert_eq(got_n[u], o->tl_n[u], "%s: user %d timeline:%s\n  oracle:%s", where, u, g, w);
        for (int i = 0; i < got_n[u]; i++) {
            cr_assert(got[u][i].post == o->tl[u][i].post &&
                          got[u][i].created_at == o->tl[u][i].created_at &&
                          got[u][i].author == o->tl[u][i].author,
                      "%s: user %d entry %d differs; timeline:%s\n  oracle:%s", where, u, i, g, w);
        }
        int64_t count = -1;
        fl_store_t *s = fl_driver_store(p->tl[part(u)], FL_STORE_TIMELINES);
        cr_assert_eq(fl_timeline_count(s, u, &count), FL_OK);
        cr_assert_eq(count, got_n[u], "%s: user %d count %" PRId64 " with %d entries", where, u,
                     count, got_n[u]);
    }
}

static void check_authors(pipeline_t *p, const oracle_t *o, const char *where)
{
    for (int a = 1; a <= NUSERS; a++) {
        fl_store_t *s = fl_driver_store(p->fan[part(a)], FL_STORE_FANOUT);
        fl_fanout_author_t au;
        fl_store_iter_t *it = NULL;
        fl_key_t prefix;
        int n = 0;

        cr_assert_eq(fl_fanout_author_get(s, a, &au), FL_OK);
        cr_assert_eq(au.followers, o->followers[a],
                     "%s: author %d has %" PRId64 " followers, oracle %d", where, a, au.followers,
                     o->followers[a]);
        cr_assert_eq(au.celebrity, o->celebrity[a], "%s: author %d celebrity %d, oracle %d", where,
                     a, au.celebrity, o->celebrity[a]);
        cr_assert_eq(au.outbox, o->outbox_n[a],
                     "%s: author %d outbox counter %" PRId64 ", oracle %d", where, a, au.outbox,
                     o->outbox_n[a]);

        fl_key_entity(&prefix, FL_KEY_TAG_OUTBOX, a);
        cr_assert_eq(fl_store_iter_new(s, prefix.buf, prefix.len, &it), FL_OK);
        for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
            size_t klen;
            const void *key = fl_store_iter_key(it, &klen);
            int64_t owner, t, post;
            cr_assert_eq(fl_key_parse_recent(key, klen, FL_KEY_TAG_OUTBOX, &owner, &t, &post),
                         FL_OK);
            cr_assert_lt(n, o->outbox_n[a], "%s: author %d outbox longer than the oracle's", where,
                         a);
            cr_assert(post == o->outbox[a][n].post && t == o->outbox[a][n].created_at,
                      "%s: author %d outbox entry %d is %" PRId64 ", oracle %" PRId64, where, a, n,
                      post, o->outbox[a][n].post);
            n++;
        }
        fl_store_iter_free(it);
        cr_assert_eq(n, o->outbox_n[a], "%s: author %d outbox has %d entries", where, a, n);

        n = 0;
        fl_key_entity(&prefix, FL_KEY_TAG_FOLLOWER, a);
        cr_assert_eq(fl_store_iter_new(s, prefix.buf, prefix.len, &it), FL_OK);
        for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
            size_t klen;
            const void *key = fl_store_iter_key(it, &klen);
            int64_t x, f;
            cr_assert_eq(fl_key_parse_edge(key, klen, FL_KEY_TAG_FOLLOWER, &x, &f), FL_OK);
            cr_assert(f >= 1 && f <= NUSERS && o->edge[a][f],
                      "%s: stored edge %d <- %" PRId64 " unknown to the oracle", where, a, f);
            n++;
        }
        fl_store_iter_free(it);
        cr_assert_eq(n, o->followers[a], "%s: author %d has %d follower edges", where, a, n);
    }
}

/* ---- whole-store dumps, to compare runs ---- */

typedef struct dump {
    uint8_t *buf;
    size_t len, cap;
} dump_t;

static void dump_add(dump_t *d, const void *p, size_t n)
{
    if (d->len + n > d->cap) {
        d->cap = (d->len + n) * 2;
        d->buf = realloc(d->buf, d->cap);
        cr_assert_not_null(d->buf);
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
}

static void dump_store(dump_t *d, fl_store_t *s)
{
    fl_store_iter_t *it = NULL;
    uint64_t entries = 0;

    cr_assert_eq(fl_store_iter_new(s, NULL, 0, &it), FL_OK);
    for (fl_store_iter_seek_first(it); fl_store_iter_valid(it); fl_store_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *key = fl_store_iter_key(it, &klen);
        const void *val = fl_store_iter_value(it, &vlen);
        if (klen && key[0] == 0x00)
            continue; /* metadata: input offsets differ between runs */
        dump_add(d, &klen, sizeof(klen));
        dump_add(d, key, klen);
        dump_add(d, &vlen, sizeof(vlen));
        dump_add(d, val, vlen);
        entries++;
    }
    cr_assert_eq(fl_store_iter_status(it), FL_OK);
    fl_store_iter_free(it);
    dump_add(d, &entries, sizeof(entries));
}

static void dump_pipeline(dump_t *d, pipeline_t *p)
{
    for (int i = 0; i < NPART; i++) {
        dump_store(d, fl_driver_store(p->fan[i], FL_STORE_FANOUT));
        dump_store(d, fl_driver_store(p->tl[i], FL_STORE_TIMELINES));
    }
}

/* ---- the runs ---- */

typedef struct stats {
    int invalid, celebrity_on, celebrity_off, max_followers;
} stats_t;

/* Runs the workload, each event (and each timeline operation) delivered
 * `times` times in a row, and checks it step by step against a fresh
 * oracle; dumps the stores. */
static void run(const workload_t *w, uint64_t seed, int times, const run_mode_t *m, dump_t *out,
                stats_t *st)
{
    oracle_t *o = calloc(1, sizeof(*o));
    pipeline_t p;
    char where[256], desc[160];

    cr_assert_not_null(o);
    pipeline_new(&p, times, m);
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < w->n; i++) {
        const fl_event_t *ev = &w->ev[i];
        o_result_t want = o_apply(o, ev);
        event_str(ev, desc, sizeof(desc));
        for (int k = 0; k < times; k++) {
            int celebrity;
            size_t n_out;
            snprintf(where, sizeof(where), "%s, seed %" PRIu64 " event %zu %s, delivery %d",
                     m->name, seed, i, desc, k + 1);
            fl_driver_t *d = p.fan[part(event_key(ev))];
            size_t dl = fl_driver_dead_letters(d);
            uint64_t writes = writes_of(d, FL_STORE_FANOUT);
            fl_err_t res = pipeline_pipe(&p, ev, &celebrity, &n_out, where);
            cr_assert_eq(res, want.verdict, "%s: fan-out returned %s, oracle says %s", where,
                         fl_err_str(res), fl_err_str(want.verdict));
            cr_assert_eq(fl_driver_dead_letters(d), dl + (res == FL_ERR_INVALID));
            if (k == 0) {
                cr_assert_eq(celebrity, want.celebrity,
                             "%s: celebrity record %d, oracle %d (-1: none)", where, celebrity,
                             want.celebrity);
            } else {
                uint64_t n_cl = changes_of(&p, d, FL_STORE_FANOUT, writes);
                cr_assert_eq(n_out, 0, "%s: a duplicate produced %zu outputs", where, n_out);
                cr_assert_eq(n_cl, 0, "%s: a duplicate changed the store (%" PRIu64 ")", where,
                             n_cl);
            }
        }
        st->invalid += want.verdict == FL_ERR_INVALID;
        st->celebrity_on += want.celebrity == 1;
        st->celebrity_off += want.celebrity == 0;
        for (int a = 1; a <= NUSERS; a++)
            if (o->followers[a] > st->max_followers)
                st->max_followers = o->followers[a];
        if ((i + 1) % CHECK_EVERY == 0 || i + 1 == w->n) {
            snprintf(where, sizeof(where), "%s, seed %" PRIu64 " x%d, after event %zu %s", m->name,
                     seed, times, i, desc);
            check_timelines(&p, o, where);
            check_authors(&p, o, where);
        }
    }
    for (int i = 0; i < NPART; i++)
        cr_assert_eq(fl_driver_dead_letters(p.tl[i]), 0);
    pipeline_flush(&p);
    dump_pipeline(out, &p);
    pipeline_free(&p);
    free(o);
}

static void run_seed(uint64_t seed, const run_mode_t *m)
{
    workload_t *w = malloc(sizeof(*w));
    dump_t once = {0}, twice = {0};
    stats_t st1, st2;

    cr_assert_not_null(w);
    gen_workload(w, seed);
    run(w, seed, 1, m, &once, &st1);
    run(w, seed, 2, m, &twice, &st2);

    cr_log_info("seed %" PRIu64 ": %d invalid events, %d celebrity crossings up, %d down, "
                "max %d followers; %d private posts, %d unknown deletes, %d late creates, "
                "%d reused ids, %d self-follows, %d duplicate follows",
                seed, st1.invalid, st1.celebrity_on, st1.celebrity_off, st1.max_followers,
                w->n_private, w->n_unknown_delete, w->n_late_create, w->n_reuse, w->n_self,
                w->n_dup_follow);
    /* the workload covered what it is meant to */
    cr_assert_gt(st1.invalid, 0, "seed %" PRIu64 ": no invalid events", seed);
    cr_assert_gt(st1.celebrity_on, 1, "seed %" PRIu64 ": too few celebrity crossings", seed);
    cr_assert_gt(st1.celebrity_off, 1, "seed %" PRIu64 ": too few crossings back", seed);
    cr_assert_gt(w->n_private, 0);
    cr_assert_gt(w->n_unknown_delete, 0);
    cr_assert_gt(w->n_late_create, 0);
    cr_assert_gt(w->n_reuse, 0);
    cr_assert_gt(w->n_self, 0);
    cr_assert_gt(w->n_dup_follow, 0);

    cr_assert_eq(once.len, twice.len, "seed %" PRIu64 ": stores differ after duplicate delivery",
                 seed);
    cr_assert(!memcmp(once.buf, twice.buf, once.len),
              "seed %" PRIu64 ": stores differ after duplicate delivery", seed);
    free(once.buf);
    free(twice.buf);
    free(w);
}

Test(pipeline, seed_1)
{
    run_seed(1, &single);
}

Test(pipeline, seed_2)
{
    run_seed(2, &single);
}

Test(pipeline, seed_3)
{
    run_seed(3, &single);
}

Test(pipeline, seed_20261122)
{
    run_seed(20261122, &single);
}

Test(pipeline, seed_deadbeef)
{
    run_seed(0xdeadbeef, &single);
}

/* The oracle again, several records per batch on RocksDB. */
Test(pipeline, seed_1_batched)
{
    run_seed(1, &batched);
}

Test(pipeline, seed_deadbeef_batched)
{
    run_seed(0xdeadbeef, &batched);
}

/* ---- model test: batches on RocksDB end as single records in memory ---- */

/* Runs the workload once through a new pipeline, every timeline operation
 * piped on at once, nothing cleared: the drivers keep every output and
 * changelog record; then commits what is open. */
static void run_kept(const workload_t *w, const run_mode_t *m, pipeline_t *p)
{
    char err[512] = "";

    pipeline_new(p, 1, m);
    for (size_t i = 0; i < w->n; i++) {
        const fl_event_t *ev = &w->ev[i];
        fl_driver_t *d = p->fan[part(event_key(ev))];
        size_t from, n;
        fl_driver_outputs(d, &from);
        fl_err_t res = fl_driver_pipe_event(d, event_topic(ev), ev, err, sizeof(err));
        cr_assert(res == FL_OK || res == FL_ERR_INVALID, "%s, event %zu: %s (%s)", m->name, i,
                  fl_err_str(res), err);
        const fl_driver_record_t *out = fl_driver_outputs(d, &n);
        for (size_t k = from; k < n; k++) {
            if (strcmp(out[k].topic, FL_TOPIC_TIMELINE_OPS))
                continue;
            res = fl_driver_pipe_raw(p->tl[out[k].partition], FL_TOPIC_TIMELINE_OPS, out[k].key,
                                     out[k].klen, out[k].value, out[k].vlen, err, sizeof(err));
            cr_assert_eq(res, FL_OK, "%s, event %zu: timeline: %s (%s)", m->name, i,
                         fl_err_str(res), err);
        }
    }
    pipeline_flush(p);
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (!alen || !memcmp(a, b, alen));
}

static void expect_same_records(const fl_driver_record_t *a, size_t na, const fl_driver_record_t *b,
                                size_t nb, const char *where)
{
    cr_assert_eq(na, nb, "%s: %zu records, then %zu", where, na, nb);
    for (size_t i = 0; i < na; i++)
        cr_assert(!strcmp(a[i].topic, b[i].topic) && a[i].partition == b[i].partition &&
                      same_bytes(a[i].key, a[i].klen, b[i].key, b[i].klen) &&
                      (a[i].value == NULL) == (b[i].value == NULL) &&
                      same_bytes(a[i].value, a[i].vlen, b[i].value, b[i].vlen),
                  "%s: record %zu differs", where, i);
}

static int cmp_record_key(const void *pa, const void *pb)
{
    const fl_driver_record_t *a = *(const fl_driver_record_t *const *)pa;
    const fl_driver_record_t *b = *(const fl_driver_record_t *const *)pb;
    int c = fl_key_cmp(a->key, a->klen, b->key, b->klen);
    /* Records of one key keep their changelog order: they lie in one array. */
    return c ? c : (a > b) - (a < b);
}

/*
 * The changelog compacted as Kafka compacts it (the last record of each
 * key, tombstones included) into cl, and what restoring it gives (the
 * last values, without the tombstones) into restored, in dump_store's
 * format. Returns the number of changelog records.
 */
static size_t dump_compacted(fl_driver_t *d, dump_t *cl, dump_t *restored)
{
    size_t n, kept = 0;
    const fl_driver_record_t *r = fl_driver_changelog(d, &n);
    const fl_driver_record_t **v = malloc((n ? n : 1) * sizeof(*v));
    uint64_t entries = 0;

    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = &r[i];
    qsort(v, n, sizeof(*v), cmp_record_key);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && fl_key_cmp(v[i]->key, v[i]->klen, v[i + 1]->key, v[i + 1]->klen) == 0)
            continue; /* a later record of the key follows */
        uint8_t tombstone = v[i]->value == NULL;
        dump_add(cl, &v[i]->klen, sizeof(v[i]->klen));
        dump_add(cl, v[i]->key, v[i]->klen);
        dump_add(cl, &tombstone, 1);
        kept++;
        if (tombstone)
            continue;
        dump_add(cl, &v[i]->vlen, sizeof(v[i]->vlen));
        dump_add(cl, v[i]->value, v[i]->vlen);
        dump_add(restored, &v[i]->klen, sizeof(v[i]->klen));
        dump_add(restored, v[i]->key, v[i]->klen);
        dump_add(restored, &v[i]->vlen, sizeof(v[i]->vlen));
        dump_add(restored, v[i]->value, v[i]->vlen);
        entries++;
    }
    dump_add(restored, &entries, sizeof(entries));
    free(v);
    cr_assert_gt(kept, 0);
    return n;
}

static void expect_same_dump(const dump_t *a, const dump_t *b, const char *where)
{
    cr_assert(same_bytes(a->buf, a->len, b->buf, b->len), "%s differ (%zu and %zu bytes)", where,
              a->len, b->len);
}

/* Task a (single records in memory) and task b (batches on RocksDB) of
 * one partition ended the same; adds their changelog sizes to ncl. */
static void expect_same_task(fl_driver_t *a, fl_driver_t *b, const char *store,
                             const char *const *inputs, size_t n_inputs, size_t ncl[2],
                             const char *where)
{
    char what[256];
    size_t na, nb;
    dump_t sa = {0}, sb = {0}, cla = {0}, clb = {0}, ra = {0}, rb = {0};

    const fl_driver_record_t *oa = fl_driver_outputs(a, &na);
    const fl_driver_record_t *ob = fl_driver_outputs(b, &nb);
    snprintf(what, sizeof(what), "%s: outputs", where);
    expect_same_records(oa, na, ob, nb, what);
    cr_assert_eq(fl_driver_dead_letters(a), fl_driver_dead_letters(b), "%s: dead letters", where);
    for (size_t i = 0; i < n_inputs; i++) {
        int64_t off[2] = {-1, -1};
        bool found[2];
        cr_assert_eq(fl_store_offset(fl_driver_store(a, store), inputs[i],
                                     fl_store_partition(fl_driver_store(a, store)), &off[0],
                                     &found[0]),
                     FL_OK);
        cr_assert_eq(fl_store_offset(fl_driver_store(b, store), inputs[i],
                                     fl_store_partition(fl_driver_store(b, store)), &off[1],
                                     &found[1]),
                     FL_OK);
        cr_assert(found[0] == found[1] && off[0] == off[1],
                  "%s: offset of %s: %" PRId64 " and %" PRId64, where, inputs[i], off[0], off[1]);
    }
    dump_store(&sa, fl_driver_store(a, store));
    dump_store(&sb, fl_driver_store(b, store));
    snprintf(what, sizeof(what), "%s: stores", where);
    expect_same_dump(&sa, &sb, what);
    ncl[0] += dump_compacted(a, &cla, &ra);
    ncl[1] += dump_compacted(b, &clb, &rb);
    snprintf(what, sizeof(what), "%s: compacted changelogs", where);
    expect_same_dump(&cla, &clb, what);
    snprintf(what, sizeof(what), "%s: the store and what its changelog restores", where);
    expect_same_dump(&ra, &sa, what);
    free(sa.buf);
    free(sb.buf);
    free(cla.buf);
    free(clb.buf);
    free(ra.buf);
    free(rb.buf);
}

static void expect_batches_end_as_single_records(uint64_t seed)
{
    static const char *const fan_inputs[] = {FL_TOPIC_POSTS, FL_TOPIC_FOLLOWS};
    static const char *const tl_inputs[] = {FL_TOPIC_TIMELINE_OPS};
    workload_t *w = malloc(sizeof(*w));
    pipeline_t a, b;
    size_t ncl[2] = {0, 0};
    char where[128];

    cr_assert_not_null(w);
    gen_workload(w, seed);
    run_kept(w, &single, &a);
    run_kept(w, &batched, &b);
    for (int i = 0; i < NPART; i++) {
        snprintf(where, sizeof(where), "seed %" PRIu64 ", fan-out task %d", seed, i);
        expect_same_task(a.fan[i], b.fan[i], FL_STORE_FANOUT, fan_inputs, 2, ncl, where);
        snprintf(where, sizeof(where), "seed %" PRIu64 ", timeline task %d", seed, i);
        expect_same_task(a.tl[i], b.tl[i], FL_STORE_TIMELINES, tl_inputs, 1, ncl, where);
    }
    /* Batches keep one record per key changed in them. */
    cr_assert_lt(ncl[1], ncl[0], "seed %" PRIu64 ": %zu changelog records in batches, %zu alone",
                 seed, ncl[1], ncl[0]);
    cr_log_info("seed %" PRIu64 ": %zu changelog records one record per batch, %zu in batches",
                seed, ncl[0], ncl[1]);
    pipeline_free(&a);
    pipeline_free(&b);
    free(w);
}

Test(pipeline, batches_on_rocksdb_end_as_single_records_in_memory_seed_7)
{
    expect_batches_end_as_single_records(7);
}

Test(pipeline, batches_on_rocksdb_end_as_single_records_in_memory_seed_20261122)
{
    expect_batches_end_as_single_records(20261122);
}
