/*
 * fl_pg_batch.c - decoding the sink's input records into collapsed rows
 * (fl_pg_batch.h) and the binary COPY encoding of those rows.
 *
 * One open-addressing hash index per table maps a row's keys to its
 * place in the table's row array, so that collapsing costs one probe per
 * record; a batch holds at most the runtime's batch_max_records rows per
 * table. Rows stay in first-seen order, which keeps the staged order and
 * thus a flush's writes the same for the same records.
 *
 * A record is checked whole before its row is touched, so an invalid one
 * leaves the batch as it was.
 */
#include "fl_pg_batch.h"
#include "fl_be.h"
#include "fl_celebrity.h"
#include "fl_engage.h"
#include "fl_grow.h"
#include "fl_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VSET(i) ((uint16_t)(1u << (i)))
#define SSET(j) ((uint16_t)(1u << (FL_PG_VALS + (j))))

typedef struct pg_table {
    fl_pg_row_t *rows;
    size_t n, cap;
    uint32_t *index; /* row position + 1; 0 = empty slot */
    size_t slots;    /* power of two, at least twice n */
} pg_table_t;

struct fl_pg_batch {
    pg_table_t t[FL_PG__TABLES];
};

fl_pg_batch_t *fl_pg_batch_new(void)
{
    return calloc(1, sizeof(fl_pg_batch_t));
}

static void row_clear_strings(fl_pg_row_t *r)
{
    for (int j = 0; j < FL_PG_STRS; j++) {
        free(r->s[j]);
        r->s[j] = NULL;
    }
}

void fl_pg_batch_clear(fl_pg_batch_t *b)
{
    for (int i = 0; i < FL_PG__TABLES; i++) {
        pg_table_t *t = &b->t[i];
        for (size_t r = 0; r < t->n; r++)
            row_clear_strings(&t->rows[r]);
        t->n = 0;
        if (t->index)
            memset(t->index, 0, t->slots * sizeof(*t->index));
    }
}

void fl_pg_batch_free(fl_pg_batch_t *b)
{
    if (!b)
        return;
    fl_pg_batch_clear(b);
    for (int i = 0; i < FL_PG__TABLES; i++) {
        free(b->t[i].rows);
        free(b->t[i].index);
    }
    free(b);
}

size_t fl_pg_batch_rows(const fl_pg_batch_t *b, fl_pg_table_t t, const fl_pg_row_t **rows)
{
    *rows = b->t[t].rows;
    return b->t[t].n;
}

size_t fl_pg_batch_size(const fl_pg_batch_t *b)
{
    size_t n = 0;
    for (int i = 0; i < FL_PG__TABLES; i++)
        n += b->t[i].n;
    return n;
}

static uint64_t key_hash(const int64_t k[FL_PG_KEYS])
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < FL_PG_KEYS; i++) {
        h ^= (uint64_t)k[i];
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    return h;
}

static fl_err_t table_grow(pg_table_t *t)
{
    fl_pg_row_t *rows = fl_grow(t->rows, &t->cap, t->n, sizeof(*rows), 64);
    if (!rows)
        return FL_ERR_NOMEM;
    t->rows = rows;
    if ((t->n + 1) * 2 > t->slots) {
        size_t slots = t->slots ? t->slots * 2 : 128;
        uint32_t *index = calloc(slots, sizeof(*index));
        if (!index)
            return FL_ERR_NOMEM;
        for (size_t r = 0; r < t->n; r++) {
            size_t s = key_hash(t->rows[r].k) & (slots - 1);
            while (index[s])
                s = (s + 1) & (slots - 1);
            index[s] = (uint32_t)(r + 1);
        }
        free(t->index);
        t->index = index;
        t->slots = slots;
    }
    return FL_OK;
}

/* The row of key k in table tab, a new empty one when the batch has none. */
static fl_err_t table_row(fl_pg_batch_t *b, fl_pg_table_t tab, int64_t k0, int64_t k1, int64_t k2,
                          int64_t k3, fl_pg_row_t **out)
{
    pg_table_t *t = &b->t[tab];
    const int64_t k[FL_PG_KEYS] = {k0, k1, k2, k3};
    fl_err_t err = table_grow(t);
    if (err)
        return err;
    size_t s = key_hash(k) & (t->slots - 1);
    for (; t->index[s]; s = (s + 1) & (t->slots - 1)) {
        fl_pg_row_t *r = &t->rows[t->index[s] - 1];
        if (!memcmp(r->k, k, sizeof(k))) {
            *out = r;
            return FL_OK;
        }
    }
    fl_pg_row_t *r = &t->rows[t->n];
    memset(r, 0, sizeof(*r));
    memcpy(r->k, k, sizeof(k));
    t->index[s] = (uint32_t)(++t->n);
    *out = r;
    return FL_OK;
}

static void row_set_v(fl_pg_row_t *r, int i, int64_t v)
{
    r->v[i] = v;
    r->set |= VSET(i);
}

static bool row_has_v(const fl_pg_row_t *r, int i)
{
    return r->set & VSET(i);
}

/* Takes a copy of s (NULL: leaves the field as it is). */
static fl_err_t row_set_s(fl_pg_row_t *r, int j, const char *s)
{
    if (!s)
        return FL_OK;
    char *c = strdup(s);
    if (!c)
        return FL_ERR_NOMEM;
    free(r->s[j]);
    r->s[j] = c;
    r->set |= SSET(j);
    return FL_OK;
}

/* A time the server would refuse, on every retry: the record's fault. */
static bool time_refused(int64_t ms, const char *what, char *errstr, size_t errstr_size)
{
    if (ms >= FL_PG_TIME_MIN_MS && ms < FL_PG_TIME_END_MS)
        return false;
    snprintf(errstr, errstr_size, "%s %lld ms is outside timestamptz's range", what, (long long)ms);
    return true;
}

/* The last record of a set table's key wins whole. */
static fl_err_t set_row(fl_pg_batch_t *b, fl_pg_table_t tab, const int64_t k[FL_PG_KEYS],
                        bool present, int64_t v0)
{
    fl_pg_row_t *r;
    fl_err_t err = table_row(b, tab, k[0], k[1], k[2], k[3], &r);
    if (err)
        return err;
    row_clear_strings(r);
    r->set = 0;
    r->del = !present;
    if (present)
        row_set_v(r, 0, v0);
    return FL_OK;
}

static fl_err_t add_user(fl_pg_batch_t *b, const fl_event_t *ev, char *errstr, size_t errstr_size)
{
    fl_pg_row_t *r;
    fl_err_t err;

    if (ev->type != FL_EV_USER_REGISTERED && ev->type != FL_EV_USER_UPDATED) {
        snprintf(errstr, errstr_size, "event type %d does not belong on %s", (int)ev->type,
                 FL_PG_TOPIC_USERS);
        return FL_ERR_INVALID;
    }
    if (ev->type == FL_EV_USER_REGISTERED && (!ev->handle || !ev->display_name)) {
        snprintf(errstr, errstr_size, "UserRegistered without handle or display_name");
        return FL_ERR_INVALID;
    }
    if (time_refused(ev->occurred_at, "occurred_at", errstr, errstr_size))
        return FL_ERR_INVALID;
    if ((err = table_row(b, FL_PG_USERS, ev->user_id, 0, 0, 0, &r)))
        return err;
    if (ev->type == FL_EV_USER_REGISTERED) {
        if (!row_has_v(r, 0))
            row_set_v(r, 0, ev->occurred_at);
        row_set_v(r, 2, 1);
        if ((err = row_set_s(r, 0, ev->handle)))
            return err;
    } else if (!row_has_v(r, 2)) {
        row_set_v(r, 2, 0);
    }
    row_set_v(r, 1, ev->occurred_at);
    if ((err = row_set_s(r, 1, ev->display_name)))
        return err;
    return row_set_s(r, 2, ev->bio);
}

static const char *privacy_name(fl_visibility_t v)
{
    switch (v) {
    case FL_VIS_PUBLIC:
        return "public";
    case FL_VIS_FOLLOWERS:
        return "followers";
    case FL_VIS_PRIVATE:
        return "private";
    }
    return NULL;
}

static fl_err_t add_post(fl_pg_batch_t *b, const fl_event_t *ev, char *errstr, size_t errstr_size)
{
    fl_pg_row_t *r;
    fl_err_t err;
    const char *privacy = NULL;

    if (ev->type == FL_EV_POST_CREATED) {
        if (!(privacy = privacy_name(ev->visibility)) || !ev->text) {
            snprintf(errstr, errstr_size, "PostCreated without text or with visibility %d",
                     (int)ev->visibility);
            return FL_ERR_INVALID;
        }
    } else if (ev->type != FL_EV_POST_DELETED) {
        snprintf(errstr, errstr_size, "event type %d does not belong on %s", (int)ev->type,
                 FL_PG_TOPIC_POSTS);
        return FL_ERR_INVALID;
    }
    if (ev->type == FL_EV_POST_CREATED
            ? time_refused(ev->created_at, "created_at", errstr, errstr_size)
            : time_refused(ev->occurred_at, "occurred_at", errstr, errstr_size))
        return FL_ERR_INVALID;
    if ((err = table_row(b, FL_PG_POSTS, ev->post_id, 0, 0, 0, &r)))
        return err;
    if (ev->type == FL_EV_POST_CREATED) {
        /* a post seen before, live or deleted, keeps what it has */
        if (row_has_v(r, 4) || row_has_v(r, 2))
            return FL_OK;
        row_set_v(r, 0, ev->author_id);
        row_set_v(r, 1, ev->created_at);
        if (ev->has_reply_to)
            row_set_v(r, 3, ev->reply_to);
        row_set_v(r, 4, 1);
        if ((err = row_set_s(r, 0, ev->text)))
            return err;
        return row_set_s(r, 1, privacy);
    }
    if (row_has_v(r, 2) || (row_has_v(r, 0) && r->v[0] != ev->author_id))
        return FL_OK;
    row_set_v(r, 0, ev->author_id);
    row_set_v(r, 2, ev->occurred_at);
    return FL_OK;
}

static fl_err_t add_timeline(fl_pg_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                             size_t errstr_size)
{
    int64_t user, created_at, post;
    const uint8_t *k = rec->key;

    /* the changelog also carries the per-user counts and the store's
     * own markers: only timeline entries are feed items */
    if (!rec->key_len || k[0] != FL_KEY_TAG_TIMELINE)
        return FL_OK;
    if (fl_key_parse_timeline(rec->key, rec->key_len, &user, &created_at, &post)) {
        snprintf(errstr, errstr_size, "malformed timeline key (%zu bytes)", rec->key_len);
        return FL_ERR_INVALID;
    }
    if (rec->value && rec->value_len != 8) {
        snprintf(errstr, errstr_size, "timeline value of %zu bytes, want 8", rec->value_len);
        return FL_ERR_INVALID;
    }
    if (time_refused(created_at, "timeline created_at", errstr, errstr_size))
        return FL_ERR_INVALID;
    const int64_t key[FL_PG_KEYS] = {user, created_at, post, 0};
    return set_row(b, FL_PG_FEED_ITEMS, key, rec->value != NULL,
                   rec->value ? fl_key_dec_i64(rec->value) : 0);
}

static fl_err_t add_fact(fl_pg_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                         size_t errstr_size)
{
    fl_fact_t f;
    fl_pg_row_t *r;
    fl_err_t err =
        fl_fact_decode(rec->key, rec->key_len, rec->value, rec->value_len, &f, errstr, errstr_size);
    if (err)
        return err;
    int64_t v = f.present ? f.value : 0;
    switch (f.kind) {
    case FL_FACT_POST_LIKES:
    case FL_FACT_FOLLOWERS:
    case FL_FACT_FOLLOWING:
    case FL_FACT_POSTS:
    case FL_FACT_AFFINITY:
        /* the columns are int: a count out of range would fail every
         * retry of the batch, so it is the record's fault */
        if (v < 0 || v > INT32_MAX) {
            snprintf(errstr, errstr_size, "fact %d: count %lld out of range", (int)f.kind,
                     (long long)v);
            return FL_ERR_INVALID;
        }
        break;
    case FL_FACT_NOTIFICATION:
        if (f.nkind != FL_NOTIF_LIKE && f.nkind != FL_NOTIF_FOLLOW) {
            snprintf(errstr, errstr_size, "notification kind %d", (int)f.nkind);
            return FL_ERR_INVALID;
        }
        /* its value is a time, as a like's or a follow's */
        /* fall through */
    case FL_FACT_LIKE:
    case FL_FACT_FOLLOW:
        if (f.present && time_refused(v, "the fact's time", errstr, errstr_size))
            return FL_ERR_INVALID;
        break;
    default:
        snprintf(errstr, errstr_size, "fact kind %d", (int)f.kind);
        return FL_ERR_INVALID;
    }
    switch (f.kind) {
    case FL_FACT_POST_LIKES:
        if ((err = table_row(b, FL_PG_POST_COUNTS, f.id[0], 0, 0, 0, &r)))
            return err;
        row_set_v(r, 0, v);
        return FL_OK;
    case FL_FACT_FOLLOWERS:
    case FL_FACT_FOLLOWING:
    case FL_FACT_POSTS:
        if ((err = table_row(b, FL_PG_USER_COUNTS, f.id[0], 0, 0, 0, &r)))
            return err;
        row_set_v(r, f.kind - FL_FACT_FOLLOWERS, v);
        return FL_OK;
    case FL_FACT_AFFINITY: {
        const int64_t k[FL_PG_KEYS] = {f.id[0], f.id[1], 0, 0};
        return set_row(b, FL_PG_AFFINITY, k, f.present, v);
    }
    case FL_FACT_NOTIFICATION: {
        const int64_t k[FL_PG_KEYS] = {f.id[0], (int64_t)f.nkind, f.id[1], f.id[2]};
        return set_row(b, FL_PG_NOTIFICATIONS, k, f.present, v);
    }
    case FL_FACT_LIKE: {
        const int64_t k[FL_PG_KEYS] = {f.id[0], f.id[1], 0, 0};
        return set_row(b, FL_PG_POST_LIKES, k, f.present, v);
    }
    default: {
        const int64_t k[FL_PG_KEYS] = {f.id[0], f.id[1], 0, 0};
        return set_row(b, FL_PG_FOLLOWS, k, f.present, v);
    }
    }
}

/* feedline.celebrities: the author's status, whether or not the user is
 * registered yet (user_counts keeps it). A tombstone changes nothing. */
static fl_err_t add_celebrity(fl_pg_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                              size_t errstr_size)
{
    int64_t author;
    bool celebrity;
    fl_pg_row_t *r;
    if (!rec->value)
        return FL_OK;
    fl_err_t err =
        fl_celebrity_decode(rec->value, rec->value_len, &author, &celebrity, errstr, errstr_size);
    if (!err)
        err = table_row(b, FL_PG_USER_COUNTS, author, 0, 0, 0, &r);
    if (!err)
        row_set_v(r, 3, celebrity);
    return err;
}

fl_err_t fl_pg_batch_add(fl_pg_batch_t *b, const fl_proc_record_t *rec, char *errstr,
                         size_t errstr_size)
{
    const char *topic = rec->topic ? rec->topic : "";
    bool users = !strcmp(topic, FL_PG_TOPIC_USERS), posts = !strcmp(topic, FL_PG_TOPIC_POSTS);

    if (users || posts) {
        if (!rec->event) {
            snprintf(errstr, errstr_size, "record of %s without a decoded event", topic);
            return FL_ERR_INVALID;
        }
        return users ? add_user(b, rec->event, errstr, errstr_size)
                     : add_post(b, rec->event, errstr, errstr_size);
    }
    if (!strcmp(topic, FL_PG_TOPIC_TIMELINES))
        return add_timeline(b, rec, errstr, errstr_size);
    if (!strcmp(topic, FL_PG_TOPIC_ENGAGEMENT))
        return add_fact(b, rec, errstr, errstr_size);
    if (!strcmp(topic, FL_PG_TOPIC_CELEBRITIES))
        return add_celebrity(b, rec, errstr, errstr_size);
    snprintf(errstr, errstr_size, "topic %s is not an input of the PostgreSQL sink", topic);
    return FL_ERR_CONFIG;
}

void fl_pg_buf_free(fl_pg_buf_t *buf)
{
    free(buf->p);
    memset(buf, 0, sizeof(*buf));
}

static uint8_t *buf_reserve(fl_pg_buf_t *buf, size_t n)
{
    if (buf->len + n > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + n)
            cap *= 2;
        uint8_t *p = realloc(buf->p, cap);
        if (!p)
            return NULL;
        buf->p = p;
        buf->cap = cap;
    }
    uint8_t *at = buf->p + buf->len;
    buf->len += n;
    return at;
}

/* One field: int32 length (-1 for NULL), then the bytes. */
static bool put_field(fl_pg_buf_t *buf, const void *data, int32_t len)
{
    uint8_t *p = buf_reserve(buf, 4 + (size_t)(len > 0 ? len : 0));
    if (!p)
        return false;
    fl_be_put32(p, (uint32_t)len);
    if (len > 0)
        memcpy(p + 4, data, (size_t)len);
    return true;
}

static bool put_i64(fl_pg_buf_t *buf, int64_t v)
{
    uint8_t be[8];
    fl_be_put64(be, (uint64_t)v);
    return put_field(buf, be, 8);
}

static bool row_selected(const fl_pg_row_t *r, fl_pg_rows_t which)
{
    return which == FL_PG_ROWS_ALL || r->del == (which == FL_PG_ROWS_DELETES);
}

size_t fl_pg_batch_count(const fl_pg_batch_t *b, fl_pg_table_t t, fl_pg_rows_t which)
{
    const pg_table_t *tab = &b->t[t];
    size_t n = 0;
    for (size_t i = 0; i < tab->n; i++)
        n += row_selected(&tab->rows[i], which);
    return n;
}

/* Microseconds since 2000-01-01 (PostgreSQL's binary timestamptz) of a
 * time add() accepted: cannot overflow. */
static int64_t pg_time(int64_t ms)
{
    return (ms - 946684800000LL) * 1000;
}

/* One field of r as col says. */
static bool put_col(fl_pg_buf_t *buf, const fl_pg_row_t *r, fl_pg_col_t col)
{
    int src = col.src;
    int64_t v;

    if (src == FL_PG_DEL) {
        uint8_t del = r->del;
        return put_field(buf, &del, 1);
    }
    if (src >= FL_PG_S(0)) {
        const char *str = r->s[src - FL_PG_S(0)];
        return str ? put_field(buf, str, (int32_t)strlen(str)) : put_field(buf, NULL, -1);
    }
    if (src >= FL_PG_V(0)) {
        if (!row_has_v(r, src - FL_PG_V(0)))
            return put_field(buf, NULL, -1);
        v = r->v[src - FL_PG_V(0)];
    } else {
        v = r->k[src];
    }
    switch ((fl_pg_type_t)col.type) {
    case FL_PG_TIME:
        return put_i64(buf, pg_time(v));
    case FL_PG_NKIND:
        return v == 1 ? put_field(buf, "like", 4) : put_field(buf, "follow", 6);
    case FL_PG_INT8_NZ:
        return v ? put_i64(buf, v) : put_field(buf, NULL, -1);
    default:
        return put_i64(buf, v);
    }
}

fl_err_t fl_pg_batch_copy_encode(const fl_pg_batch_t *b, fl_pg_table_t t, const fl_pg_col_t *cols,
                                 int ncols, fl_pg_rows_t which, fl_pg_buf_t *buf)
{
    /* PGCOPY signature, flags, header extension length */
    static const uint8_t header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    const pg_table_t *tab = &b->t[t];
    uint8_t *p;

    buf->len = 0;
    if (!(p = buf_reserve(buf, sizeof(header))))
        return FL_ERR_NOMEM;
    memcpy(p, header, sizeof(header));
    for (size_t i = 0; i < tab->n; i++) {
        const fl_pg_row_t *r = &tab->rows[i];
        bool ok = true;
        if (!row_selected(r, which))
            continue;
        if (!(p = buf_reserve(buf, 2)))
            return FL_ERR_NOMEM;
        p[0] = (uint8_t)(ncols >> 8);
        p[1] = (uint8_t)ncols;
        for (int c = 0; ok && c < ncols; c++)
            ok = put_col(buf, r, cols[c]);
        if (!ok)
            return FL_ERR_NOMEM;
    }
    if (!(p = buf_reserve(buf, 2)))
        return FL_ERR_NOMEM;
    p[0] = p[1] = 0xff;
    return FL_OK;
}

fl_err_t fl_pg_batch_array_encode(const fl_pg_batch_t *b, fl_pg_table_t t, fl_pg_col_t col,
                                  fl_pg_rows_t which, fl_pg_buf_t *buf)
{
    /* ndim, has-nulls flag, element type (int8 20, timestamptz 1184),
     * then the one dimension's length and lower bound */
    const pg_table_t *tab = &b->t[t];
    uint8_t *p;

    buf->len = 0;
    if (!(p = buf_reserve(buf, 20)))
        return FL_ERR_NOMEM;
    fl_be_put32(p, 1);
    fl_be_put32(p + 4, 0);
    fl_be_put32(p + 8, col.type == FL_PG_TIME ? 1184 : 20);
    fl_be_put32(p + 12, (uint32_t)fl_pg_batch_count(b, t, which));
    fl_be_put32(p + 16, 1);
    for (size_t i = 0; i < tab->n; i++)
        if (row_selected(&tab->rows[i], which) && !put_col(buf, &tab->rows[i], col))
            return FL_ERR_NOMEM;
    return FL_OK;
}
