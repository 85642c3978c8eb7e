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
    uint64_t forwards; /* fl_ctx_forward calls; fl__ctx_process compares them */
};

/*
 * Processes one record: def->process with the context, and the check of
 * the rule of fl_proc.h that a rejected record changed nothing. Every
 * store's write counter (fl_store_writes) and the context's forward
 * counter are read before and after; a processor that returns
 * FL_ERR_INVALID after writing to a store or forwarding has a bug that
 * would commit half a record and dead-letter the rest, so the result is
 * FL_ERR_CORRUPT instead, with a message naming the processor and its
 * own message, and the caller must stop rather than dead-letter it.
 * Otherwise the processor's result and message are returned as they are.
 * The runtime and the test driver both process every record through it.
 */
fl_err_t fl__ctx_process(fl_ctx_t *ctx, const fl_processor_def_t *def, const fl_proc_record_t *rec,
                         char *errstr, size_t errstr_size);

#endif
