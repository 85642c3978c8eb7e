/*
 * fl_event.c - the event descriptor table, record keys and JSON conversion.
 *
 * The table below is the one place, besides the .avsc files, where an
 * event's fields are declared: the codec, the JSON conversion and the
 * validation all iterate over it, and the codec refuses to load a schema
 * that disagrees with it. Field order in the table is the schema order.
 *
 * Invariants: a zeroed fl_event_t is a valid empty event; every string of
 * an event is either NULL or a NUL-terminated malloc'd copy owned by it;
 * conversions never leave a half-filled event behind (on failure the
 * event is cleared). JSON input is untrusted: every member is checked for
 * presence and JSON type, and unknown members are refused, so a typo in a
 * producer's field name fails loudly instead of silently taking a default.
 *
 * Workload: one conversion per record on the produce path of the CLI and
 * the demo tools; lookups are linear scans over eight entries.
 */
#include "fl_event.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A field of fl_event_t described by its name, kind and offset. */
/* clang-format off */
#define FL_F(f, kind)        {#f, kind, offsetof(fl_event_t, f), 0}
#define FL_F_OPT_LONG(f, on) {#f, FL_FIELD_OPT_LONG, offsetof(fl_event_t, f), offsetof(fl_event_t, on)}
/* clang-format on */
#define FL_F_HEAD FL_F(event_id, FL_FIELD_STRING), FL_F(occurred_at, FL_FIELD_TIMESTAMP)

static const fl_event_desc_t fl_event_types[FL_EV__COUNT] = {
    [FL_EV_USER_REGISTERED] = {FL_EV_USER_REGISTERED,
                               "UserRegistered",
                               "users",
                               "user_id",
                               5,
                               {FL_F_HEAD, FL_F(user_id, FL_FIELD_LONG),
                                FL_F(handle, FL_FIELD_STRING),
                                FL_F(display_name, FL_FIELD_STRING)}},
    [FL_EV_USER_UPDATED] = {FL_EV_USER_UPDATED,
                            "UserUpdated",
                            "users",
                            "user_id",
                            5,
                            {FL_F_HEAD, FL_F(user_id, FL_FIELD_LONG),
                             FL_F(display_name, FL_FIELD_OPT_STRING),
                             FL_F(bio, FL_FIELD_OPT_STRING)}},
    [FL_EV_POST_CREATED] = {FL_EV_POST_CREATED,
                            "PostCreated",
                            "posts",
                            "author_id",
                            8,
                            {FL_F_HEAD, FL_F(post_id, FL_FIELD_LONG),
                             FL_F(author_id, FL_FIELD_LONG), FL_F(created_at, FL_FIELD_TIMESTAMP),
                             FL_F(text, FL_FIELD_STRING), FL_F(visibility, FL_FIELD_VISIBILITY),
                             FL_F_OPT_LONG(reply_to, has_reply_to)}},
    [FL_EV_POST_DELETED] = {FL_EV_POST_DELETED,
                            "PostDeleted",
                            "posts",
                            "author_id",
                            4,
                            {FL_F_HEAD, FL_F(post_id, FL_FIELD_LONG),
                             FL_F(author_id, FL_FIELD_LONG)}},
    [FL_EV_FOLLOW_ADDED] = {FL_EV_FOLLOW_ADDED,
                            "FollowAdded",
                            "follows",
                            "followee_id",
                            4,
                            {FL_F_HEAD, FL_F(follower_id, FL_FIELD_LONG),
                             FL_F(followee_id, FL_FIELD_LONG)}},
    [FL_EV_FOLLOW_REMOVED] = {FL_EV_FOLLOW_REMOVED,
                              "FollowRemoved",
                              "follows",
                              "followee_id",
                              4,
                              {FL_F_HEAD, FL_F(follower_id, FL_FIELD_LONG),
                               FL_F(followee_id, FL_FIELD_LONG)}},
    [FL_EV_LIKE_ADDED] = {FL_EV_LIKE_ADDED,
                          "LikeAdded",
                          "likes",
                          "post_id",
                          5,
                          {FL_F_HEAD, FL_F(user_id, FL_FIELD_LONG), FL_F(post_id, FL_FIELD_LONG),
                           FL_F(author_id, FL_FIELD_LONG)}},
    [FL_EV_LIKE_REMOVED] = {FL_EV_LIKE_REMOVED,
                            "LikeRemoved",
                            "likes",
                            "post_id",
                            5,
                            {FL_F_HEAD, FL_F(user_id, FL_FIELD_LONG), FL_F(post_id, FL_FIELD_LONG),
                             FL_F(author_id, FL_FIELD_LONG)}},
};

/* Symbol names of fl_visibility_t, in enum order (also the Avro symbols). */
static const char *const fl_visibility_names[] = {"PUBLIC", "FOLLOWERS", "PRIVATE"};

const fl_event_desc_t *fl_event_desc(fl_event_type_t type)
{
    if ((int)type <= (int)FL_EV_NONE || type >= FL_EV__COUNT)
        return NULL;
    return &fl_event_types[type];
}

fl_event_type_t fl_event_type_by_name(const char *name)
{
    if (!name)
        return FL_EV_NONE;
    for (int t = FL_EV_NONE + 1; t < FL_EV__COUNT; t++)
        if (!strcmp(fl_event_types[t].name, name))
            return (fl_event_type_t)t;
    return FL_EV_NONE;
}

bool fl_event_type_on_topic(fl_event_type_t type, const char *topic)
{
    const fl_event_desc_t *d = fl_event_desc(type);
    return d && topic && !strcmp(d->topic, topic);
}

const char *fl_visibility_name(fl_visibility_t v)
{
    if ((int)v < 0 || (int)v > (int)FL_VIS_PRIVATE)
        return NULL;
    return fl_visibility_names[v];
}

int fl_visibility_by_name(const char *name)
{
    for (int v = 0; name && v <= (int)FL_VIS_PRIVATE; v++)
        if (!strcmp(fl_visibility_names[v], name))
            return v;
    return -1;
}

void fl_event_key(const fl_event_t *ev, char *buf, size_t size)
{
    const fl_event_desc_t *d = ev ? fl_event_desc(ev->type) : NULL;

    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    if (!d)
        return;
    for (size_t i = 0; i < d->n_fields; i++) {
        if (strcmp(d->fields[i].name, d->key_field))
            continue;
        int64_t v;
        memcpy(&v, (const char *)ev + d->fields[i].offset, sizeof(v));
        snprintf(buf, size, "%" PRId64, v);
        return;
    }
}

void fl_event_clear(fl_event_t *ev)
{
    if (!ev)
        return;
    free(ev->event_id);
    free(ev->handle);
    free(ev->display_name);
    free(ev->bio);
    free(ev->text);
    memset(ev, 0, sizeof(*ev));
}

static fl_err_t fl_event_fail(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static fl_err_t fl_event_fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr && errstr_size) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return FL_ERR_INVALID;
}

static const fl_field_desc_t *fl_event_field(const fl_event_desc_t *d, const char *name)
{
    for (size_t i = 0; i < d->n_fields; i++)
        if (!strcmp(d->fields[i].name, name))
            return &d->fields[i];
    return NULL;
}

/* A copy of a JSON string; NULL (with *bad set) when it holds a NUL,
 * which a C string could not carry. */
static char *fl_event_json_strdup(const json_t *s, bool *bad)
{
    size_t n = json_string_length(s);
    const char *v = json_string_value(s);
    char *copy;

    *bad = memchr(v, '\0', n) != NULL;
    if (*bad)
        return NULL;
    copy = malloc(n + 1);
    if (copy) {
        memcpy(copy, v, n);
        copy[n] = '\0';
    }
    return copy;
}

fl_err_t fl_event_from_json(const json_t *obj, fl_event_t *ev, char *errstr, size_t errstr_size)
{
    fl_err_t err = FL_OK;
    const fl_event_desc_t *d;
    const json_t *jtype, *v;
    const char *key;
    fl_event_t tmp;

    memset(&tmp, 0, sizeof(tmp));
    if (!ev)
        return fl_event_fail(errstr, errstr_size, "no event to fill");
    if (!json_is_object(obj)) {
        err = fl_event_fail(errstr, errstr_size, "event is not a JSON object");
        goto out;
    }
    jtype = json_object_get(obj, "type");
    if (!jtype) {
        err = fl_event_fail(errstr, errstr_size, "missing field \"type\"");
        goto out;
    }
    if (!json_is_string(jtype)) {
        err = fl_event_fail(errstr, errstr_size, "field \"type\": expected a string");
        goto out;
    }
    d = fl_event_desc(fl_event_type_by_name(json_string_value(jtype)));
    if (!d) {
        err = fl_event_fail(errstr, errstr_size, "unknown event type \"%.64s\"",
                            json_string_value(jtype));
        goto out;
    }
    tmp.type = d->type;

    /* Unknown members first: a misspelt optional field would otherwise
     * pass as "absent". The cast is safe: iteration does not modify. */
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, "type") && !fl_event_field(d, key)) {
            err = fl_event_fail(errstr, errstr_size, "%s: unknown member \"%.64s\"", d->name, key);
            goto out;
        }
    }

    for (size_t i = 0; i < d->n_fields; i++) {
        const fl_field_desc_t *f = &d->fields[i];
        char *base = (char *)&tmp;
        bool optional = f->kind == FL_FIELD_OPT_STRING || f->kind == FL_FIELD_OPT_LONG;
        bool bad = false;

        v = json_object_get(obj, f->name);
        if (!v || json_is_null(v)) {
            if (optional)
                continue;
            err = fl_event_fail(errstr, errstr_size, "%s: missing field \"%s\"", d->name, f->name);
            goto out;
        }
        switch (f->kind) {
        case FL_FIELD_LONG:
        case FL_FIELD_TIMESTAMP:
        case FL_FIELD_OPT_LONG: {
            if (!json_is_integer(v)) {
                err = fl_event_fail(errstr, errstr_size, "%s: field \"%s\": expected an integer",
                                    d->name, f->name);
                goto out;
            }
            int64_t n = (int64_t)json_integer_value(v);
            memcpy(base + f->offset, &n, sizeof(n));
            if (f->kind == FL_FIELD_OPT_LONG)
                *(bool *)(base + f->has_offset) = true;
            break;
        }
        case FL_FIELD_STRING:
        case FL_FIELD_OPT_STRING: {
            if (!json_is_string(v)) {
                err = fl_event_fail(errstr, errstr_size, "%s: field \"%s\": expected a string",
                                    d->name, f->name);
                goto out;
            }
            char *s = fl_event_json_strdup(v, &bad);
            if (bad) {
                err = fl_event_fail(errstr, errstr_size,
                                    "%s: field \"%s\": contains a NUL character", d->name, f->name);
                goto out;
            }
            if (!s) {
                err = FL_ERR_NOMEM;
                fl_event_fail(errstr, errstr_size, "out of memory");
                goto out;
            }
            memcpy(base + f->offset, &s, sizeof(s));
            break;
        }
        case FL_FIELD_VISIBILITY: {
            int vis;
            if (!json_is_string(v)) {
                err = fl_event_fail(errstr, errstr_size,
                                    "%s: field \"%s\": expected a string (PUBLIC, FOLLOWERS or "
                                    "PRIVATE)",
                                    d->name, f->name);
                goto out;
            }
            vis = fl_visibility_by_name(json_string_value(v));
            if (vis < 0) {
                err = fl_event_fail(errstr, errstr_size,
                                    "%s: field \"%s\": unknown symbol \"%.32s\" (expected PUBLIC, "
                                    "FOLLOWERS or PRIVATE)",
                                    d->name, f->name, json_string_value(v));
                goto out;
            }
            tmp.visibility = (fl_visibility_t)vis;
            break;
        }
        }
    }

out:
    if (err) {
        fl_event_clear(&tmp);
        if (ev)
            memset(ev, 0, sizeof(*ev));
        return err;
    }
    *ev = tmp;
    return FL_OK;
}

json_t *fl_event_to_json(const fl_event_t *ev)
{
    const fl_event_desc_t *d = ev ? fl_event_desc(ev->type) : NULL;
    json_t *obj = NULL;

    if (!d)
        return NULL;
    obj = json_object();
    if (!obj || json_object_set_new(obj, "type", json_string(d->name)))
        goto fail;
    for (size_t i = 0; i < d->n_fields; i++) {
        const fl_field_desc_t *f = &d->fields[i];
        const char *base = (const char *)ev;
        json_t *v = NULL;
        int64_t n;
        const char *s;

        switch (f->kind) {
        case FL_FIELD_LONG:
        case FL_FIELD_TIMESTAMP:
            memcpy(&n, base + f->offset, sizeof(n));
            v = json_integer((json_int_t)n);
            break;
        case FL_FIELD_OPT_LONG:
            memcpy(&n, base + f->offset, sizeof(n));
            v = *(const bool *)(base + f->has_offset) ? json_integer((json_int_t)n) : json_null();
            break;
        case FL_FIELD_STRING:
        case FL_FIELD_OPT_STRING:
            memcpy(&s, base + f->offset, sizeof(s));
            /* json_string() refuses invalid UTF-8: that makes v NULL and
             * the whole conversion fail, rather than emit bad JSON. */
            v = s ? json_string(s) : json_null();
            break;
        case FL_FIELD_VISIBILITY:
            s = fl_visibility_name(ev->visibility);
            v = s ? json_string(s) : NULL;
            break;
        }
        if (!v || json_object_set_new(obj, f->name, v))
            goto fail;
    }
    return obj;

fail:
    json_decref(obj);
    return NULL;
}

fl_err_t fl_event_validate(const fl_event_t *ev, char *errstr, size_t errstr_size)
{
    const fl_event_desc_t *d = ev ? fl_event_desc(ev->type) : NULL;

    if (!d)
        return fl_event_fail(errstr, errstr_size, "unknown event type %d", ev ? (int)ev->type : -1);
    if (!ev->event_id || !ev->event_id[0])
        return fl_event_fail(errstr, errstr_size, "%s: field \"event_id\" is missing or empty",
                             d->name);
    for (size_t i = 0; i < d->n_fields; i++) {
        const fl_field_desc_t *f = &d->fields[i];
        const char *base = (const char *)ev;
        int64_t n;
        const char *s;

        switch (f->kind) {
        case FL_FIELD_LONG:
            memcpy(&n, base + f->offset, sizeof(n));
            if (n <= 0)
                return fl_event_fail(errstr, errstr_size,
                                     "%s: field \"%s\" must be a positive id, got %" PRId64,
                                     d->name, f->name, n);
            break;
        case FL_FIELD_OPT_LONG:
            memcpy(&n, base + f->offset, sizeof(n));
            if (*(const bool *)(base + f->has_offset) && n <= 0)
                return fl_event_fail(errstr, errstr_size,
                                     "%s: field \"%s\" must be a positive id, got %" PRId64,
                                     d->name, f->name, n);
            break;
        case FL_FIELD_TIMESTAMP:
            memcpy(&n, base + f->offset, sizeof(n));
            if (n < 0)
                return fl_event_fail(errstr, errstr_size,
                                     "%s: field \"%s\" must be a non-negative timestamp, got "
                                     "%" PRId64,
                                     d->name, f->name, n);
            break;
        case FL_FIELD_STRING:
            memcpy(&s, base + f->offset, sizeof(s));
            if (!s)
                return fl_event_fail(errstr, errstr_size, "%s: missing field \"%s\"", d->name,
                                     f->name);
            break;
        case FL_FIELD_OPT_STRING:
            break;
        case FL_FIELD_VISIBILITY:
            if (!fl_visibility_name(ev->visibility))
                return fl_event_fail(errstr, errstr_size, "%s: field \"%s\": bad value %d", d->name,
                                     f->name, (int)ev->visibility);
            break;
        }
    }
    return FL_OK;
}
