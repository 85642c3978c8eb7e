/*
 * fl_ctx.c - the processor context's functions (fl_proc.h), shared by the
 * runtime and the topology test driver so that processors are tested
 * through the very code that runs them.
 */
#include "fl_ctx_int.h"

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
    for (size_t i = 0; i < ctx->proc->n_outputs; i++)
        if (!strcmp(ctx->proc->outputs[i], topic))
            is_output = true;
    int32_t parts = fl_ctx_partitions(ctx, topic);
    if (!is_output || partition < 0 || partition >= parts)
        return FL_ERR_INVALID;
    return ctx->forward(ctx->opaque, topic, partition, key, klen, val, vlen);
}

void fl_ctx_count(fl_ctx_t *ctx, const char *name, uint64_t n)
{
    if (ctx->count)
        ctx->count(ctx->opaque, name, n);
}
