/*
 * fl_ctx.c - the processor context's functions (fl_proc.h), shared by the
 * runtime and the topology test driver so that processors are tested
 * through the very code that runs them.
 *
 * fl__ctx_process enforces the one rule about rejected records: the
 * processor must reject before it writes or forwards anything, because
 * neither the runtime nor the driver can take back part of a batch. The
 * check costs two counter reads per store per record; it is on in
 * release builds too, since its violation commits half a record.
 */
#include "fl_ctx_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

fl_store_t *fl_ctx_store(fl_ctx_t *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->proc->n_stores; i++)
        if (!strcmp(ctx->proc->stores[i], name))
            return ctx->stores[i];
    return NULL;
}

int32_t fl_ctx_partition(const fl_ctx_t *ctx)
{
    return ctx->partition;
}

const fl_settings_t *fl_ctx_settings(const fl_ctx_t *ctx)
{
    return &ctx->topo->settings;
}

int32_t fl_ctx_partitions(const fl_ctx_t *ctx, const char *topic)
{
    const fl_topic_t *t = fl_topology_topic(ctx->topo, topic);
    return t ? t->partitions : -1;
}

fl_err_t fl_ctx_forward(fl_ctx_t *ctx, const char *topic, int32_t partition, const void *key,
                        size_t klen, const void *val, size_t vlen)
{
    bool is_output = false;
    ctx->forwards++;
    for (size_t i = 0; i < ctx->proc->n_outputs; i++)
        if (!strcmp(ctx->proc->outputs[i], topic))
            is_output = true;
    int32_t parts = fl_ctx_partitions(ctx, topic);
    if (!is_output || partition < 0 || partition >= parts)
        return FL_ERR_CONFIG;
    /* A record is never at fault for a failed forward: an FL_ERR_INVALID
     * passed up would have it dead-lettered after what it already wrote. */
    fl_err_t err = ctx->forward(ctx->opaque, topic, partition, key, klen, val, vlen);
    return err == FL_ERR_INVALID ? FL_ERR_CONFIG : err;
}

void fl_ctx_count(fl_ctx_t *ctx, const char *name, uint64_t n)
{
    if (ctx->count)
        ctx->count(ctx->opaque, name, n);
}

static uint64_t store_writes(const fl_ctx_t *ctx)
{
    uint64_t n = 0;
    /* A sum of monotonic counters changes exactly when one of them does. */
    for (size_t i = 0; i < ctx->proc->n_stores; i++)
        n += fl_store_writes(ctx->stores[i]);
    return n;
}

fl_err_t fl__ctx_process(fl_ctx_t *ctx, const fl_processor_def_t *def, const fl_proc_record_t *rec,
                         char *errstr, size_t errstr_size)
{
    uint64_t writes = store_writes(ctx), forwards = ctx->forwards;
    char why[256];

    fl_err_t err = def->process(ctx, rec, errstr, errstr_size);
    if (err != FL_ERR_INVALID)
        return err;
    writes = store_writes(ctx) - writes;
    forwards = ctx->forwards - forwards;
    if (!writes && !forwards)
        return FL_ERR_INVALID;
    snprintf(why, sizeof(why), "%s", errstr && errstr_size ? errstr : "");
    if (errstr && errstr_size)
        snprintf(errstr, errstr_size,
                 "processor %s rejected %s [%" PRId32 "] @%" PRId64 " after %" PRIu64
                 " store writes and %" PRIu64
                 " forwards: a rejected record must change nothing (a bug in the processor): %s",
                 def->name, rec->topic, rec->partition, rec->offset, writes, forwards, why);
    return FL_ERR_CORRUPT;
}
