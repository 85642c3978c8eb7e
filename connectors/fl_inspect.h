/*
 * fl_inspect.h - readable JSON for feedline's internal records, so that
 * `feedline tail` and `feedline timeline` can show timeline operations
 * and store changelogs without anyone reading RocksDB files or bytes.
 */
#ifndef FL_INSPECT_H
#define FL_INSPECT_H

#include <jansson.h>
#include <stddef.h>

/* A store key (fl_keys.h layouts, or the runtime's offsets marker) as an
 * object naming its family and fields; NULL when unrecognised. */
json_t *fl_inspect_store_key(const void *key, size_t klen);

/* A store value, interpreted by the family of its key; NULL when
 * unrecognised. */
json_t *fl_inspect_store_value(const void *key, size_t klen, const void *val, size_t vlen);

/* A timeline operation (fl_tlop.h); NULL with a message in errstr when it
 * does not decode. */
json_t *fl_inspect_tlop(const void *val, size_t vlen, char *errstr, size_t errstr_size);

#endif
