/*
 * fl_ctx_int.h - the processor context as the runtime and the topology
 * test driver build it. Not for processor logic, which sees only
 * fl_proc.h.
 */
#ifndef FL_CTX_INT_H
#define FL_CTX_INT_H

#include "fl_proc.h"

/* Receives each forwarded record; key and value are borrowed for the call. */
typedef fl_err_t fl_ctx_forward_fn(void *opaque, const char *topic, int32_t partition,
                                   const void *key, size_t klen, const void *val, size_t vlen);

/* Receives counter increments (fl_ctx_count). */
typedef void fl_ctx_count_fn(void *opaque, const char *name, uint64_t n);

struct fl_ctx {
    const fl_topology_t *topo;
    const fl_processor_t *proc; /* the processor's topology entry */
    int32_t partition;
    fl_store_t **stores; /* one per proc->stores entry, same order; borrowed */
    fl_ctx_forward_fn *forward;
    fl_ctx_count_fn *count; /* may be NULL */
    void *opaque;
};

#endif
