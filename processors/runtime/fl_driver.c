/*
 * fl_driver.c - topology test driver (see fl_driver.h).
 *
 * Workload: unit tests, up to a few hundred thousand records; captured
 * records are kept in growable arrays and freed with the driver.
 */
#include "fl_driver.h"
#include "fl_ctx_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec_list {
    fl_driver_record_t *v;
    size_t n, cap;
} rec_list_t;

struct fl_driver {
    const fl_processor_def_t *def;
    fl_ctx_t ctx;
    rec_list_t outputs;
    rec_list_t changelog;
    int64_t next_offset;
    size_t dead_letters;
};

static void rec_free(fl_driver_record_t *r)
{
    free(r->topic);
    free(r->key);
    free(r->value);
}

static void list_clear(rec_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        rec_free(&l->v[i]);
    l->n = 0;
}

static fl_err_t list_push(rec_list_t *l, const char *topic, int32_t partition, const void *key,
                          size_t klen, const void *val, size_t vlen)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        fl_driver_record_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv)
            return FL_ERR_NOMEM;
        l->v = nv;
        l->cap = cap;
    }
    fl_driver_record_t *r = &l->v[l->n];
    memset(r, 0, sizeof(*r));
    r->topic = strdup(topic);
    r->partition = partition;
    r->key = malloc(klen ? klen : 1);
    r->klen = klen;
    if (val) {
        r->value = malloc(vlen ? vlen : 1);
        r->vlen = vlen;
    }
    if (!r->topic || !r->key || (val && !r->value)) {
        rec_free(r);
        return FL_ERR_NOMEM;
    }
    memcpy(r->key, key, klen);
    if (val)
        memcpy(r->value, val, vlen);
    l->n++;
    return FL_OK;
}

static fl_err_t driver_forward(void *opaque, const char *topic, int32_t partition, const void *key,
                               size_t klen, const void *val, size_t vlen)
{
    fl_driver_t *d = opaque;
    return list_push(&d->outputs, topic, partition, key, klen, val, vlen);
}

fl_driver_t *fl_driver_new(const fl_topology_t *topo, const fl_processor_def_t *def,
                           int32_t partition, char *errstr, size_t errstr_size)
{
    const fl_processor_t *proc = fl_topology_processor(topo, def->name);
    fl_driver_t *d = NULL;

    if (!proc) {
        snprintf(errstr, errstr_size, "processor %s is not in the topology", def->name);
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    d->def = def;
    d->ctx.topo = topo;
    d->ctx.proc = proc;
    d->ctx.partition = partition;
    d->ctx.forward = driver_forward;
    d->ctx.opaque = d;
    d->ctx.stores = calloc(proc->n_stores ? proc->n_stores : 1, sizeof(*d->ctx.stores));
    if (!d->ctx.stores)
        goto nomem;
    for (size_t i = 0; i < proc->n_stores; i++) {
        const char *changelog = fl_topology_store(topo, proc->stores[i])->changelog;
        d->ctx.stores[i] = fl_store_new(fl_kv_mem_new(), proc->stores[i], changelog, partition);
        /* The runtime's read cache too, so that tests exercise it. */
        if (!d->ctx.stores[i] ||
            fl_store_set_cache(d->ctx.stores[i], (size_t)topo->settings.store_cache_bytes))
            goto nomem;
    }
    return d;
nomem:
    snprintf(errstr, errstr_size, "out of memory");
    fl_driver_free(d);
    return NULL;
}

void fl_driver_free(fl_driver_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; d->ctx.stores && i < d->ctx.proc->n_stores; i++)
        fl_store_free(d->ctx.stores[i]);
    free(d->ctx.stores);
    list_clear(&d->outputs);
    list_clear(&d->changelog);
    free(d->outputs.v);
    free(d->changelog.v);
    free(d);
}

typedef struct capture {
    fl_driver_t *d;
    const char *store;
    int32_t partition; /* the store's: a task's changelog partition is its own */
    fl_err_t err;
} capture_t;

static int capture_change(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    capture_t *c = arg;
    c->err = list_push(&c->d->changelog, c->store, c->partition, key, klen, val, vlen);
    return c->err != FL_OK;
}

/* Commits (or, after a failure, aborts) every store of the task. A
 * rejected record has changed nothing (fl__ctx_process checks it) and
 * commits its offset, as the runtime's dead-lettered records do. */
static fl_err_t finish_batch(fl_driver_t *d, const char *topic, fl_err_t result)
{
    fl_err_t err = FL_OK;
    fl_store_offset_t off = {topic, d->ctx.partition, ++d->next_offset};
    bool failed = result && result != FL_ERR_INVALID;

    for (size_t i = 0; i < d->ctx.proc->n_stores; i++) {
        fl_store_t *s = d->ctx.stores[i];
        if (failed) {
            fl_store_abort(s);
            continue;
        }
        capture_t c = {d, fl_store_name(s), fl_store_partition(s), FL_OK};
        err = fl_store_changes(s, capture_change, &c);
        if (c.err)
            err = c.err;
        if (!err)
            err = fl_store_commit(s, &off, 1, -1);
        if (err)
            return err;
    }
    if (result == FL_ERR_INVALID)
        d->dead_letters++;
    return result;
}

static fl_err_t pipe_record(fl_driver_t *d, const fl_proc_record_t *rec, char *errstr,
                            size_t errstr_size)
{
    size_t n_out = d->outputs.n;
    fl_err_t result = fl__ctx_process(&d->ctx, d->def, rec, errstr, errstr_size);
    if (result) {
        while (d->outputs.n > n_out)
            rec_free(&d->outputs.v[--d->outputs.n]);
    }
    return finish_batch(d, rec->topic, result);
}

fl_err_t fl_driver_pipe_event(fl_driver_t *d, const char *topic, const fl_event_t *ev, char *errstr,
                              size_t errstr_size)
{
    fl_proc_record_t rec = {.topic = topic,
                            .partition = d->ctx.partition,
                            .offset = d->next_offset,
                            .timestamp = ev->occurred_at,
                            .event = ev};
    return pipe_record(d, &rec, errstr, errstr_size);
}

fl_err_t fl_driver_pipe_raw(fl_driver_t *d, const char *topic, const void *key, size_t klen,
                            const void *val, size_t vlen, char *errstr, size_t errstr_size)
{
    fl_proc_record_t rec = {.topic = topic,
                            .partition = d->ctx.partition,
                            .offset = d->next_offset,
                            .key = key,
                            .key_len = klen,
                            .value = val,
                            .value_len = vlen};
    return pipe_record(d, &rec, errstr, errstr_size);
}

const fl_driver_record_t *fl_driver_outputs(const fl_driver_t *d, size_t *n)
{
    *n = d->outputs.n;
    return d->outputs.v;
}

const fl_driver_record_t *fl_driver_changelog(const fl_driver_t *d, size_t *n)
{
    *n = d->changelog.n;
    return d->changelog.v;
}

void fl_driver_clear_outputs(fl_driver_t *d)
{
    list_clear(&d->outputs);
    list_clear(&d->changelog);
}

fl_store_t *fl_driver_store(fl_driver_t *d, const char *name)
{
    return fl_ctx_store(&d->ctx, name);
}

size_t fl_driver_dead_letters(const fl_driver_t *d)
{
    return d->dead_letters;
}
