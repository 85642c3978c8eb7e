/*
 * fl_inspect.h - readable JSON for feedline's internal records, so that
 * `feedline tail` and `feedline timeline` can show timeline operations
 * and store changelogs without anyone reading RocksDB files or bytes.
 */
#ifndef FL_INSPECT_H
#define FL_INSPECT_H

#include "fl_err.h"
#include "fl_kv.h"
#include "fl_topology.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* A store key (fl_keys.h layouts, or the runtime's offsets marker) as an
 * object naming its family and fields; NULL when unrecognised. */
json_t *fl_inspect_store_key(const void *key, size_t klen);

/* A store value, interpreted by the family of its key; NULL when
 * unrecognised. */
json_t *fl_inspect_store_value(const void *key, size_t klen, const void *val, size_t vlen);

/* A timeline operation (fl_tlop.h); NULL with a message in errstr when it
 * does not decode. */
json_t *fl_inspect_tlop(const void *val, size_t vlen, char *errstr, size_t errstr_size);

/* A record of feedline.engagement (fl_engage.h): the fact's key as an
 * object naming its kind and ids, into *key, and its value (a number, or
 * null for a tombstone) into *value; both new references. FL_ERR_INVALID
 * with a message in errstr when it does not decode (nothing is set). */
fl_err_t fl_inspect_fact(const void *key, size_t klen, const void *val, size_t vlen, json_t **keyj,
                         json_t **valj, char *errstr, size_t errstr_size);

/* An edge of feedline.engagement-edges; NULL with a message in errstr
 * when it does not decode. */
json_t *fl_inspect_edge(const void *val, size_t vlen, char *errstr, size_t errstr_size);

/*
 * Reads the timelines store's changelog from its beginning to its end
 * (committed records) into kv: the last record of a key wins, a tombstone
 * deletes, so kv ends as the store held it when its transactions
 * committed. Only user's partition and entries when user > 0, every
 * partition when 0. Stops early when *stop is set. FL_OK, or an error
 * with a message.
 */
fl_err_t fl_inspect_load_timelines(const fl_topology_t *topo, int64_t user, fl_kv_t *kv,
                                   volatile sig_atomic_t *stop, char *errstr, size_t errstr_size);

/* The same for any store of the topology: every record of its changelog
 * but the store's own (keys starting 0x00), every partition. */
fl_err_t fl_inspect_load_store(const fl_topology_t *topo, const char *store, fl_kv_t *kv,
                               volatile sig_atomic_t *stop, char *errstr, size_t errstr_size);

#endif
