/*
 * fl_driver.c - topology test driver (see fl_driver.h).
 *
 * A batch is what the runtime makes of one poll: records processed one
 * after the other against the stores' pending changes, then one commit
 * that captures every store's changes as changelog records and applies
 * them with the offsets. The driver keeps the same order of calls, so
 * that a processor tested here meets the store layers (pending batch,
 * the background writer's flushing layer, the read cache) as it does in
 * production.
 *
 * Invariants: outside a batch every store has no pending change; the
 * outputs of the open batch are those from batch_outputs on (fewer when
 * the test cleared them); a topic's committed offset is at most its next.
 *
 * Workload: unit tests, up to a few hundred thousand records; captured
 * records are kept in growable arrays and freed with the driver.
 */
#include "fl_driver.h"
#include "fl_ctx_int.h"
#include "fl_grow.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RocksDB stores of tests hold little: small caches and write buffers
 * keep many drivers cheap, and make RocksDB flush memtables sooner. */
#define FL_DRIVER_ROCKSDB_CACHE (4u << 20)
#define FL_DRIVER_ROCKSDB_WBUF  (1u << 20)

typedef struct rec_list {
    fl_driver_record_t *v;
    size_t n, cap;
} rec_list_t;

/* A topic piped so far and its offsets. */
typedef struct topic_pos {
    char *topic;
    int64_t next;      /* offset of the next record piped */
    int64_t committed; /* next offset as of the last commit */
} topic_pos_t;

struct fl_driver {
    const fl_processor_def_t *def;
    fl_ctx_t ctx;
    size_t batch_records;
    char *dir; /* RocksDB's temporary directory; NULL in memory */
    rec_list_t outputs;
    rec_list_t changelog;
    size_t batch_outputs; /* first output of the open batch */
    size_t in_batch;      /* records of the open batch */
    size_t dead_letters;  /* committed */
    size_t batch_dead_letters;
    topic_pos_t *topics;
    size_t n_topics;
};

static void rec_free(fl_driver_record_t *r)
{
    free(r->topic);
    free(r->key);
    free(r->value);
}

static void list_truncate(rec_list_t *l, size_t n)
{
    while (l->n > n)
        rec_free(&l->v[--l->n]);
}

static fl_err_t list_push(rec_list_t *l, const char *topic, int32_t partition, const void *key,
                          size_t klen, const void *val, size_t vlen)
{
    fl_driver_record_t *nv = fl_grow(l->v, &l->cap, l->n, sizeof(*nv), 64);
    if (!nv)
        return FL_ERR_NOMEM;
    l->v = nv;
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

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Opens store i of the task on the driver's backend. */
static fl_err_t open_store(fl_driver_t *d, size_t i, const fl_driver_opts_t *opts, char *errstr,
                           size_t errstr_size)
{
    const fl_topology_t *topo = d->ctx.topo;
    const char *name = d->ctx.proc->stores[i];
    const char *changelog = fl_topology_store(topo, name)->changelog;
    fl_kv_t *kv = NULL;
    char *path = NULL;
    fl_err_t err = FL_OK;

    if (opts->backend == FL_DRIVER_ROCKSDB) {
        fl_kv_rocksdb_opts_t ro = {.bulk_restore = opts->bulk};
        if (!opts->runtime_sizes) {
            ro.block_cache_bytes = FL_DRIVER_ROCKSDB_CACHE;
            ro.write_buffer_bytes = FL_DRIVER_ROCKSDB_WBUF;
        }
        if (asprintf(&path, "%s/%s", d->dir, name) < 0) {
            path = NULL;
            err = FL_ERR_NOMEM;
            goto out;
        }
        err = fl_kv_rocksdb_open(path, &ro, &kv, errstr, errstr_size);
        if (err)
            goto out;
    } else if (!(kv = fl_kv_mem_new())) {
        err = FL_ERR_NOMEM;
        goto out;
    }
    d->ctx.stores[i] = fl_store_new(kv, name, changelog, d->ctx.partition);
    if (!d->ctx.stores[i]) {
        err = FL_ERR_NOMEM;
        goto out;
    }
    /* The runtime's read cache and writer thread, so that tests exercise them. */
    err = fl_store_set_cache(d->ctx.stores[i], (size_t)topo->settings.store_cache_bytes);
    if (!err && opts->backend == FL_DRIVER_ROCKSDB)
        err = fl_store_set_background_writes(d->ctx.stores[i], true);
    if (err)
        snprintf(errstr, errstr_size, "store %s: %s", name, fl_store_errmsg(d->ctx.stores[i]));
out:
    if (err == FL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory");
    free(path);
    return err;
}

fl_driver_t *fl_driver_new_opts(const fl_topology_t *topo, const fl_processor_def_t *def,
                                int32_t partition, const fl_driver_opts_t *opts, char *errstr,
                                size_t errstr_size)
{
    static const fl_driver_opts_t defaults = {.backend = FL_DRIVER_MEMORY, .batch_records = 1};
    const fl_processor_t *proc = fl_topology_processor(topo, def->name);
    fl_driver_t *d = NULL;

    if (!opts)
        opts = &defaults;
    if (!proc) {
        snprintf(errstr, errstr_size, "processor %s is not in the topology", def->name);
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    d->def = def;
    d->batch_records = opts->batch_records ? opts->batch_records : 1;
    d->ctx.topo = topo;
    d->ctx.proc = proc;
    d->ctx.partition = partition;
    d->ctx.forward = driver_forward;
    d->ctx.opaque = d;
    d->ctx.stores = calloc(proc->n_stores ? proc->n_stores : 1, sizeof(*d->ctx.stores));
    if (!d->ctx.stores)
        goto nomem;
    if (opts->backend == FL_DRIVER_ROCKSDB) {
        const char *tmp = opts->tmp_dir ? opts->tmp_dir : getenv("TMPDIR");
        if (asprintf(&d->dir, "%s/feedline-driver-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
            d->dir = NULL;
            goto nomem;
        }
        if (!mkdtemp(d->dir)) {
            snprintf(errstr, errstr_size, "cannot create a directory like %s", d->dir);
            free(d->dir);
            d->dir = NULL;
            goto fail;
        }
    }
    for (size_t i = 0; i < proc->n_stores; i++)
        if (open_store(d, i, opts, errstr, errstr_size))
            goto fail;
    return d;
nomem:
    snprintf(errstr, errstr_size, "out of memory");
fail:
    fl_driver_free(d);
    return NULL;
}

fl_driver_t *fl_driver_new(const fl_topology_t *topo, const fl_processor_def_t *def,
                           int32_t partition, char *errstr, size_t errstr_size)
{
    return fl_driver_new_opts(topo, def, partition, NULL, errstr, errstr_size);
}

void fl_driver_free(fl_driver_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; d->ctx.stores && i < d->ctx.proc->n_stores; i++)
        fl_store_free(d->ctx.stores[i]);
    free(d->ctx.stores);
    if (d->dir)
        nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d->dir);
    list_truncate(&d->outputs, 0);
    list_truncate(&d->changelog, 0);
    free(d->outputs.v);
    free(d->changelog.v);
    for (size_t i = 0; i < d->n_topics; i++)
        free(d->topics[i].topic);
    free(d->topics);
    free(d);
}

/* The offsets of topic, added at 0 on first use; NULL when out of memory. */
static topic_pos_t *topic_pos(fl_driver_t *d, const char *topic)
{
    for (size_t i = 0; i < d->n_topics; i++)
        if (!strcmp(d->topics[i].topic, topic))
            return &d->topics[i];
    topic_pos_t *nt = realloc(d->topics, (d->n_topics + 1) * sizeof(*nt));
    if (!nt)
        return NULL;
    d->topics = nt;
    nt = &d->topics[d->n_topics];
    *nt = (topic_pos_t){strdup(topic), 0, 0};
    if (!nt->topic)
        return NULL;
    d->n_topics++;
    return nt;
}

/* Drops everything of the open batch, as an aborted transaction would. */
static void abandon_batch(fl_driver_t *d)
{
    for (size_t i = 0; i < d->ctx.proc->n_stores; i++)
        fl_store_abort(d->ctx.stores[i]);
    list_truncate(&d->outputs, d->batch_outputs);
    for (size_t i = 0; i < d->n_topics; i++)
        d->topics[i].next = d->topics[i].committed;
    d->batch_dead_letters = 0;
    d->in_batch = 0;
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

/* Captures and commits every store's changes with every topic's next
 * offset; on failure the batch is abandoned. */
static fl_err_t commit_batch(fl_driver_t *d, char *errstr, size_t errstr_size)
{
    fl_store_offset_t *offs = NULL;
    fl_store_t *s = NULL;
    size_t captured = d->changelog.n;
    fl_err_t err = FL_OK;

    if (!d->in_batch)
        return FL_OK;
    offs = calloc(d->n_topics ? d->n_topics : 1, sizeof(*offs));
    if (!offs) {
        err = FL_ERR_NOMEM;
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < d->n_topics; i++)
        offs[i] = (fl_store_offset_t){d->topics[i].topic, d->ctx.partition, d->topics[i].next};
    /* All changelog records first, as the runtime produces them before
     * any store commits. */
    for (size_t i = 0; i < d->ctx.proc->n_stores && !err; i++) {
        s = d->ctx.stores[i];
        capture_t c = {d, fl_store_name(s), fl_store_partition(s), FL_OK};
        err = fl_store_changes(s, capture_change, &c);
        if (c.err)
            err = c.err;
    }
    if (err) /* as an aborted transaction: none of its changelog records */
        list_truncate(&d->changelog, captured);
    for (size_t i = 0; i < d->ctx.proc->n_stores && !err; i++) {
        s = d->ctx.stores[i];
        err = fl_store_commit(s, offs, d->n_topics, -1);
    }
    if (err) {
        snprintf(errstr, errstr_size, "committing store %s: %s", fl_store_name(s),
                 fl_store_errmsg(s));
        goto out;
    }
    for (size_t i = 0; i < d->n_topics; i++)
        d->topics[i].committed = d->topics[i].next;
    d->dead_letters += d->batch_dead_letters;
    d->batch_dead_letters = 0;
    d->in_batch = 0;
    d->batch_outputs = d->outputs.n;
out:
    if (err)
        abandon_batch(d);
    free(offs);
    return err;
}

static fl_err_t pipe_record(fl_driver_t *d, fl_proc_record_t *rec, char *errstr, size_t errstr_size)
{
    topic_pos_t *t = topic_pos(d, rec->topic);
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return FL_ERR_NOMEM;
    }
    rec->offset = t->next;
    fl_err_t result = fl__ctx_process(&d->ctx, d->def, rec, errstr, errstr_size);
    if (result && result != FL_ERR_INVALID) {
        abandon_batch(d);
        return result;
    }
    t->next++;
    d->batch_dead_letters += result == FL_ERR_INVALID;
    if (++d->in_batch >= d->batch_records) {
        fl_err_t err = commit_batch(d, errstr, errstr_size);
        if (err)
            return err;
    }
    return result;
}

fl_err_t fl_driver_pipe_event(fl_driver_t *d, const char *topic, const fl_event_t *ev, char *errstr,
                              size_t errstr_size)
{
    fl_proc_record_t rec = {
        .topic = topic, .partition = d->ctx.partition, .timestamp = ev->occurred_at, .event = ev};
    return pipe_record(d, &rec, errstr, errstr_size);
}

fl_err_t fl_driver_pipe_raw(fl_driver_t *d, const char *topic, const void *key, size_t klen,
                            const void *val, size_t vlen, char *errstr, size_t errstr_size)
{
    fl_proc_record_t rec = {.topic = topic,
                            .partition = d->ctx.partition,
                            .key = key,
                            .key_len = klen,
                            .value = val,
                            .value_len = vlen};
    return pipe_record(d, &rec, errstr, errstr_size);
}

fl_err_t fl_driver_flush(fl_driver_t *d, char *errstr, size_t errstr_size)
{
    fl_err_t err = commit_batch(d, errstr, errstr_size);
    for (size_t i = 0; i < d->ctx.proc->n_stores && !err; i++) {
        err = fl_store_sync(d->ctx.stores[i]);
        if (err)
            snprintf(errstr, errstr_size, "store %s: %s", fl_store_name(d->ctx.stores[i]),
                     fl_store_errmsg(d->ctx.stores[i]));
    }
    return err;
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
    list_truncate(&d->outputs, 0);
    list_truncate(&d->changelog, 0);
    d->batch_outputs = 0;
}

fl_store_t *fl_driver_store(fl_driver_t *d, const char *name)
{
    return fl_ctx_store(&d->ctx, name);
}

size_t fl_driver_dead_letters(const fl_driver_t *d)
{
    return d->dead_letters + d->batch_dead_letters;
}
