/*
 * fl_merge.c - the merge of one task's inputs (see fl_merge.h).
 *
 * Each input's queue is a ring buffer that doubles when full; a task
 * rarely holds more than a pause bound's worth of records per input
 * (buffered_records_per_partition), so the rings stay small. Choosing
 * the next record is a scan over at most FL_MERGE_MAX inputs (two in
 * practice).
 *
 * Invariants: an input's wait clocks are -1 unless the task found the
 * input empty while another input had records and the input received
 * nothing since; position only moves forward except through
 * fl_merge_set_position and fl_merge_reset.
 */
#include "fl_merge.h"

#include <stdlib.h>
#include <string.h>

#define FL_MERGE_MAX 8

typedef struct merge_input {
    fl_merge_entry_t *v;
    size_t head, n, cap;
    int64_t position;
    int64_t end;
    bool eof;
    /* Wait clocks: when the task first found the input empty while another
     * had records (-1: not waiting), and whether the wait expired. */
    int64_t lag_since, idle_since;
    bool lag_expired, idle_expired;
} merge_input_t;

struct fl_merge {
    size_t n;
    const char *const *names;
    int64_t max_idle_ms, max_lag_wait_ms;
    fl_merge_free_fn *free_fn;
    uint64_t lag_giveups, idle_giveups;
    merge_input_t in[FL_MERGE_MAX];
};

fl_merge_t *fl_merge_new(size_t n, const char *const *names, int64_t max_idle_ms,
                         int64_t max_lag_wait_ms, fl_merge_free_fn *free_fn)
{
    if (n == 0 || n > FL_MERGE_MAX)
        return NULL;
    fl_merge_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n = n;
    m->names = names;
    m->max_idle_ms = max_idle_ms;
    m->max_lag_wait_ms = max_lag_wait_ms;
    m->free_fn = free_fn;
    for (size_t i = 0; i < n; i++) {
        m->in[i].position = -1;
        m->in[i].end = -1;
        m->in[i].lag_since = m->in[i].idle_since = -1;
    }
    return m;
}

static void input_clear(fl_merge_t *m, merge_input_t *in)
{
    for (size_t k = 0; k < in->n; k++) {
        fl_merge_entry_t *e = &in->v[(in->head + k) % in->cap];
        if (m->free_fn)
            m->free_fn(e->item);
    }
    in->head = in->n = 0;
}

void fl_merge_free(fl_merge_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        input_clear(m, &m->in[i]);
        free(m->in[i].v);
    }
    free(m);
}

int fl_merge_push(fl_merge_t *m, size_t i, int64_t ts, int64_t offset, void *item)
{
    merge_input_t *in = &m->in[i];
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 256;
        fl_merge_entry_t *nv = malloc(cap * sizeof(*nv));
        if (!nv) {
            if (m->free_fn)
                m->free_fn(item);
            return -1;
        }
        for (size_t k = 0; k < in->n; k++)
            nv[k] = in->v[(in->head + k) % in->cap];
        free(in->v);
        in->v = nv;
        in->cap = cap;
        in->head = 0;
    }
    in->v[(in->head + in->n++) % in->cap] = (fl_merge_entry_t){ts, offset, item};
    in->eof = false;
    in->lag_since = in->idle_since = -1;
    in->lag_expired = in->idle_expired = false;
    return 0;
}

void fl_merge_eof(fl_merge_t *m, size_t i)
{
    /* Records still buffered were fetched before the end was reached. */
    m->in[i].eof = true;
}

void fl_merge_set_end(fl_merge_t *m, size_t i, int64_t end)
{
    if (end > m->in[i].end)
        m->in[i].end = end;
}

void fl_merge_set_position(fl_merge_t *m, size_t i, int64_t position)
{
    m->in[i].position = position;
}

int64_t fl_merge_position(const fl_merge_t *m, size_t i)
{
    return m->in[i].position;
}

const fl_merge_entry_t *fl_merge_head(const fl_merge_t *m, size_t i)
{
    const merge_input_t *in = &m->in[i];
    return in->n ? &in->v[in->head] : NULL;
}

size_t fl_merge_buffered(const fl_merge_t *m, size_t i)
{
    return m->in[i].n;
}

/* True when the empty input in must still be waited for at now. */
static bool must_wait(fl_merge_t *m, merge_input_t *in, int64_t now)
{
    if (m->max_idle_ms < 0)
        return false;
    bool lagging = !in->eof && in->end >= 0 && in->end > (in->position >= 0 ? in->position : 0);
    if (lagging) {
        if (in->lag_expired)
            return false;
        if (in->lag_since < 0)
            in->lag_since = now;
        if (now - in->lag_since < m->max_lag_wait_ms)
            return true;
        in->lag_expired = true;
        m->lag_giveups++;
        return false;
    }
    if (in->idle_expired || m->max_idle_ms == 0)
        return false;
    if (in->idle_since < 0)
        in->idle_since = now;
    if (now - in->idle_since < m->max_idle_ms)
        return true;
    in->idle_expired = true;
    m->idle_giveups++;
    return false;
}

fl_merge_state_t fl_merge_next(fl_merge_t *m, int64_t now, size_t *input)
{
    int best = -1;
    size_t n_empty = 0;

    for (size_t i = 0; i < m->n; i++) {
        const fl_merge_entry_t *e = fl_merge_head(m, i);
        if (!e) {
            n_empty++;
            continue;
        }
        if (best < 0) {
            best = (int)i;
            continue;
        }
        const fl_merge_entry_t *b = fl_merge_head(m, (size_t)best);
        int c = e->ts < b->ts ? -1 : e->ts > b->ts ? 1 : strcmp(m->names[i], m->names[best]);
        if (c < 0)
            best = (int)i;
    }
    if (best < 0) {
        /* Nothing to merge: no input is waited for (an expired wait stays
         * expired until the input delivers). */
        for (size_t i = 0; i < m->n; i++)
            m->in[i].lag_since = m->in[i].idle_since = -1;
        return FL_MERGE_EMPTY;
    }
    if (n_empty && m->n > 1) {
        /* Every empty input's clock starts now, not only the first's. */
        int waited = -1;
        for (size_t i = 0; i < m->n; i++)
            if (!m->in[i].n && must_wait(m, &m->in[i], now) && waited < 0)
                waited = (int)i;
        if (waited >= 0) {
            *input = (size_t)waited;
            return FL_MERGE_WAITING;
        }
    }
    *input = (size_t)best;
    return FL_MERGE_READY;
}

void fl_merge_pop(fl_merge_t *m, size_t i)
{
    merge_input_t *in = &m->in[i];
    if (!in->n)
        return;
    fl_merge_entry_t *e = &in->v[in->head];
    in->position = e->offset + 1;
    if (m->free_fn)
        m->free_fn(e->item);
    in->head = (in->head + 1) % in->cap;
    in->n--;
}

void fl_merge_reset(fl_merge_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        merge_input_t *in = &m->in[i];
        input_clear(m, in);
        in->position = -1;
        in->end = -1;
        in->eof = false;
        in->lag_since = in->idle_since = -1;
        in->lag_expired = in->idle_expired = false;
    }
}

bool fl_merge_lag_expired(const fl_merge_t *m, size_t i)
{
    return m->in[i].lag_expired;
}

int64_t fl_merge_end(const fl_merge_t *m, size_t i)
{
    return m->in[i].end;
}

void fl_merge_stats(const fl_merge_t *m, uint64_t *lag_giveups, uint64_t *idle_giveups)
{
    *lag_giveups = m->lag_giveups;
    *idle_giveups = m->idle_giveups;
}
