/*
 * test_netgen.c - the load generator's network: the same options give the
 * same events, every event is one the pipeline accepts as meaningful (an
 * independent model here replays them: no self-follow, no unfollow of a
 * missing edge, no like of a missing or deleted post, deletes by the
 * author), the shape is what the README promises (celebrities above the
 * threshold, heavy-tailed degrees, the steady mix's proportions), and a
 * steady phase that rebuilds the backlog in memory continues it exactly.
 */
#include "fl_netgen.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Criterion reports every assertion to its runner: in a loop over
 * ~100,000 events only failures may talk to it. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_assert_fail(__VA_ARGS__);                                                           \
    } while (0)

static fl_netgen_opts_t small_opts(void)
{
    fl_netgen_opts_t o;
    fl_netgen_opts_default(&o);
    o.users = 3000;
    o.celebrity_threshold = 1000;
    o.start_ms = 1767225600000;
    o.run_id = "t";
    return o;
}

static fl_netgen_t *make(const fl_netgen_opts_t *o)
{
    char err[256] = "";
    fl_netgen_t *g = fl_netgen_new(o, err, sizeof(err));
    cr_assert_not_null(g, "fl_netgen_new: %s", err);
    return g;
}

/* One event as a JSON line (for comparing whole streams). */
static char *line_of(const fl_event_t *ev)
{
    json_t *j = fl_event_to_json(ev);
    CHECK(j, "event to JSON");
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

/* Hash of the next n events (backlog first, then steady at a fake clock). */
static uint64_t stream_hash(fl_netgen_t *g, int64_t steady, bool skip_backlog)
{
    uint64_t h = 1469598103934665603ull;
    fl_event_t ev = {0};
    if (skip_backlog)
        fl_netgen_backlog_skip(g);
    for (int64_t i = 0;; i++) {
        if (skip_backlog || !fl_netgen_backlog_next(g, &ev)) {
            if (steady-- <= 0)
                break;
            fl_netgen_steady_next(g, 1767300000000 + i / 4, &ev);
        }
        char *s = line_of(&ev);
        for (char *p = s; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        free(s);
        fl_event_clear(&ev);
    }
    return h;
}

Test(netgen, same_options_same_events)
{
    fl_netgen_opts_t o = small_opts();
    fl_netgen_t *a = make(&o), *b = make(&o);
    cr_expect_eq(stream_hash(a, 5000, false), stream_hash(b, 5000, false));
    fl_netgen_free(a);
    fl_netgen_free(b);
    o.seed = 2;
    fl_netgen_opts_t o1 = small_opts();
    a = make(&o1);
    b = make(&o);
    cr_expect_neq(stream_hash(a, 100, false), stream_hash(b, 100, false), "seeds must matter");
    fl_netgen_free(a);
    fl_netgen_free(b);
}

Test(netgen, steady_without_backlog_continues_it)
{
    fl_netgen_opts_t o = small_opts();
    fl_netgen_t *a = make(&o), *b = make(&o);
    fl_event_t ev = {0};
    while (fl_netgen_backlog_next(a, &ev))
        fl_event_clear(&ev);
    /* a emitted its backlog, b rebuilds it silently: same steady events. */
    cr_expect_eq(stream_hash(a, 3000, true), stream_hash(b, 3000, true));
    fl_netgen_free(a);
    fl_netgen_free(b);
}

/* ---- an independent model of what the events mean ------------------------- */

/* String keys to values, chained; glibc's hsearch hashes keys this alike
 * ("f12>34") into long clusters. */
typedef struct entry {
    struct entry *next;
    intptr_t value;
    char key[];
} entry_t;

#define MODEL_BUCKETS (1u << 18)

typedef struct model {
    entry_t **buckets;
} model_t;

static void model_init(model_t *m)
{
    m->buckets = calloc(MODEL_BUCKETS, sizeof(*m->buckets));
    cr_assert_not_null(m->buckets);
}

static void model_free(model_t *m)
{
    for (size_t i = 0; i < MODEL_BUCKETS; i++)
        for (entry_t *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(m->buckets);
}

static entry_t **model_slot(model_t *m, const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    entry_t **e = &m->buckets[(h ^ (h >> 29)) & (MODEL_BUCKETS - 1)];
    while (*e && strcmp((*e)->key, key))
        e = &(*e)->next;
    return e;
}

/* The value stored under key (0 when absent). */
static intptr_t model_get(model_t *m, const char *key)
{
    entry_t *e = *model_slot(m, key);
    return e ? e->value : 0;
}

static void model_set(model_t *m, const char *key, intptr_t v)
{
    entry_t **e = model_slot(m, key);
    if (!*e) {
        size_t len = strlen(key) + 1;
        CHECK((*e = calloc(1, sizeof(**e) + len)) != NULL, "out of memory");
        memcpy((*e)->key, key, len);
    }
    (*e)->value = v;
}

typedef struct tally {
    int64_t events, by_type[FL_EV__COUNT];
    int64_t *followers, *following;
    int64_t last_ms, last_post_id;
} tally_t;

/* Replays one event on the model and checks that it means something. */
static void check_event(model_t *m, tally_t *t, const fl_event_t *ev, const fl_netgen_opts_t *o,
                        bool backlog)
{
    char k[96], err[256];
    CHECK(fl_event_validate(ev, err, sizeof(err)) == FL_OK, "%s", err);
    if (backlog)
        CHECK(ev->occurred_at > t->last_ms, "backlog times strictly increase");
    else
        CHECK(ev->occurred_at >= t->last_ms, "steady times never go back");
    t->last_ms = ev->occurred_at;
    t->events++;
    t->by_type[ev->type]++;
    int64_t base = o->user_base, n = o->users;
    switch (ev->type) {
    case FL_EV_USER_REGISTERED:
        snprintf(k, sizeof(k), "u%lld", (long long)ev->user_id);
        CHECK(model_get(m, k) == 0, "registered twice");
        model_set(m, k, 1);
        CHECK(ev->handle && ev->display_name, "names");
        break;
    case FL_EV_USER_UPDATED:
        snprintf(k, sizeof(k), "u%lld", (long long)ev->user_id);
        CHECK(model_get(m, k) == 1, "update of an unknown user");
        CHECK(ev->display_name || ev->bio, "an update changes something");
        break;
    case FL_EV_FOLLOW_ADDED:
    case FL_EV_FOLLOW_REMOVED: {
        bool add = ev->type == FL_EV_FOLLOW_ADDED;
        CHECK(ev->follower_id != ev->followee_id, "self-follow");
        CHECK(ev->follower_id >= base && ev->follower_id < base + n, "follower id");
        CHECK(ev->followee_id >= base && ev->followee_id < base + n, "followee id");
        snprintf(k, sizeof(k), "f%lld>%lld", (long long)ev->follower_id,
                 (long long)ev->followee_id);
        CHECK(model_get(m, k) == (add ? 0 : 1), "%s",
              add ? "follow of an existing edge" : "unfollow of a missing edge");
        model_set(m, k, add);
        t->followers[ev->followee_id - base] += add ? 1 : -1;
        t->following[ev->follower_id - base] += add ? 1 : -1;
        break;
    }
    case FL_EV_POST_CREATED:
        CHECK(ev->post_id > t->last_post_id, "post ids increase");
        t->last_post_id = ev->post_id;
        CHECK(ev->created_at == ev->occurred_at, "created_at is occurred_at");
        CHECK(ev->text && *ev->text, "text");
        snprintf(k, sizeof(k), "p%lld", (long long)ev->post_id);
        /* value: author id * 4 + visibility, + 1 while alive */
        model_set(m, k, (intptr_t)(ev->author_id * 8 + ev->visibility * 2 + 1));
        if (ev->has_reply_to) {
            snprintf(k, sizeof(k), "p%lld", (long long)ev->reply_to);
            CHECK(model_get(m, k) != 0, "reply to an unknown post");
        }
        break;
    case FL_EV_POST_DELETED: {
        snprintf(k, sizeof(k), "p%lld", (long long)ev->post_id);
        intptr_t p = model_get(m, k);
        CHECK(p & 1, "delete of a missing or deleted post");
        CHECK(p / 8 == ev->author_id, "delete by someone else");
        model_set(m, k, p - 1);
        break;
    }
    case FL_EV_LIKE_ADDED:
    case FL_EV_LIKE_REMOVED: {
        bool add = ev->type == FL_EV_LIKE_ADDED;
        snprintf(k, sizeof(k), "p%lld", (long long)ev->post_id);
        intptr_t p = model_get(m, k);
        CHECK(p != 0, "like of an unknown post");
        CHECK(p / 8 == ev->author_id, "like naming the wrong author");
        if (add) {
            CHECK(p & 1, "like of a deleted post");
            CHECK(ev->user_id != ev->author_id, "self-like");
            CHECK((p / 2) % 4 != FL_VIS_PRIVATE, "like of a private post");
        }
        snprintf(k, sizeof(k), "l%lld:%lld", (long long)ev->user_id, (long long)ev->post_id);
        if (!add)
            CHECK(model_get(m, k) == 1, "unlike of a like not in force");
        model_set(m, k, add);
        break;
    }
    default:
        cr_assert_fail("unexpected type %d", ev->type);
    }
}

Test(netgen, every_event_means_something_and_the_shape_holds)
{
    fl_netgen_opts_t o = small_opts();
    fl_netgen_t *g = make(&o);
    model_t m;
    tally_t t = {0};
    fl_event_t ev = {0};
    model_init(&m);
    t.followers = calloc((size_t)o.users, sizeof(int64_t));
    t.following = calloc((size_t)o.users, sizeof(int64_t));
    int64_t total = fl_netgen_backlog_total(g);
    while (fl_netgen_backlog_next(g, &ev)) {
        check_event(&m, &t, &ev, &o, true);
        fl_event_clear(&ev);
    }
    cr_expect_eq(t.events, total, "the backlog has the size it announced");
    cr_expect_eq(t.by_type[FL_EV_USER_REGISTERED], o.users);
    /* A like drawn before anything can be liked becomes a post. */
    int64_t posts_asked = (int64_t)(o.users * o.posts_per_user);
    int64_t likes_asked = (int64_t)(posts_asked * o.likes_per_post);
    cr_expect_eq(t.by_type[FL_EV_POST_CREATED] + t.by_type[FL_EV_LIKE_ADDED],
                 posts_asked + likes_asked);
    cr_expect_geq(t.by_type[FL_EV_LIKE_ADDED], likes_asked * 99 / 100);

    /* Celebrities: more followers than the threshold, and it says so. */
    cr_assert_eq(fl_netgen_celebrities(g), 3);
    for (int64_t i = 0; i < 3; i++) {
        int64_t followers, id = fl_netgen_celebrity(g, i, &followers);
        cr_expect_gt(followers, o.celebrity_threshold, "celebrity %lld has %lld followers",
                     (long long)id, (long long)followers);
        cr_expect_eq(followers, t.followers[id - o.user_base]);
    }
    /* Heavy tails: the most followed regular user has many times the
     * median, and a few users follow many times the mean. */
    int64_t max_following = 0, over_100 = 0, edges = 0, max_regular = 0;
    for (int64_t u = 0; u < o.users; u++) {
        edges += t.following[u];
        if (t.following[u] > max_following)
            max_following = t.following[u];
        over_100 += t.following[u] > 100;
        if (t.followers[u] <= o.celebrity_threshold && t.followers[u] > max_regular)
            max_regular = t.followers[u];
        CHECK(fl_netgen_following(g, o.user_base + u) == t.following[u], "following of %lld",
              (long long)u);
    }
    cr_expect_eq(edges, fl_netgen_stats(g)->edges);
    cr_expect_gt(max_following, 10 * o.mean_following, "max out-degree %lld",
                 (long long)max_following);
    cr_expect_gt(over_100, 0);
    cr_expect_lt(over_100, o.users / 20);
    cr_expect_gt(max_regular, 100, "the most followed regular user has %lld",
                 (long long)max_regular);

    /* The steady mix: every event still meaningful, proportions as asked. */
    int64_t before[FL_EV__COUNT];
    memcpy(before, t.by_type, sizeof(before));
    const int64_t steady = 40000;
    for (int64_t i = 0; i < steady; i++) {
        fl_netgen_steady_next(g, 1767300000000 + i / 5, &ev);
        check_event(&m, &t, &ev, &o, false);
        fl_event_clear(&ev);
    }
    double likes = (double)(t.by_type[FL_EV_LIKE_ADDED] - before[FL_EV_LIKE_ADDED]) / steady;
    double posts = (double)(t.by_type[FL_EV_POST_CREATED] - before[FL_EV_POST_CREATED]) / steady;
    double unfollows =
        (double)(t.by_type[FL_EV_FOLLOW_REMOVED] - before[FL_EV_FOLLOW_REMOVED]) / steady;
    cr_expect(likes > 0.37 && likes < 0.43, "likes %.3f of the mix (40%%)", likes);
    cr_expect(posts > 0.30 && posts < 0.36, "posts %.3f of the mix (25%% + 8%% replies)", posts);
    cr_expect(unfollows > 0.04 && unfollows < 0.06, "unfollows %.3f (5%%)", unfollows);
    for (int64_t i = 0; i < 3; i++) {
        int64_t followers;
        fl_netgen_celebrity(g, i, &followers);
        cr_expect_gt(followers, o.celebrity_threshold, "celebrities stay above the threshold");
    }
    free(t.followers);
    free(t.following);
    model_free(&m);
    fl_netgen_free(g);
}

Test(netgen, options_that_cannot_work_are_refused)
{
    char err[256];
    fl_netgen_opts_t o = small_opts();
    o.celebrities = 2;
    o.celebrity_threshold = 5000;
    cr_expect_null(fl_netgen_new(&o, err, sizeof(err)));
    cr_expect(strstr(err, "threshold"), "%s", err);
    o.celebrities = -1; /* auto: none fit, none made */
    fl_netgen_t *g = make(&o);
    cr_expect_eq(fl_netgen_celebrities(g), 0);
    fl_netgen_free(g);
    o = small_opts();
    o.users = 1;
    cr_expect_null(fl_netgen_new(&o, err, sizeof(err)));
    cr_expect_eq(fl_netgen_parse_mix(&o, "post=1,like=2", err, sizeof(err)), FL_OK);
    cr_expect_eq(o.mix[FL_NG_LIKE], 2);
    cr_expect_eq(o.mix[FL_NG_FOLLOW], 0);
    cr_expect_eq(fl_netgen_parse_mix(&o, "posts=1", err, sizeof(err)), FL_ERR_INVALID);
    cr_expect_eq(fl_netgen_parse_mix(&o, "post=x", err, sizeof(err)), FL_ERR_INVALID);
    cr_expect_eq(fl_netgen_parse_mix(&o, "post=0", err, sizeof(err)), FL_ERR_INVALID);
    cr_expect_eq(fl_netgen_parse_mix(&o, "register=3", err, sizeof(err)), FL_ERR_INVALID);
}
