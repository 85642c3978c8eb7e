/*
 * fl_skl.h - internal ordered byte-string map (a skiplist) behind the
 * in-memory store and the write batch. Not part of the public API.
 *
 * Insertion is split in two so that callers can apply a group of changes
 * atomically: fl__skl_node_new() allocates (and may fail), fl__skl_insert()
 * links a prepared node and never allocates or fails. A node carries one
 * caller-defined flag byte (the batch marks tombstones with it).
 */
#ifndef FL_SKL_H
#define FL_SKL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl__skl fl__skl_t;
typedef struct fl__skl_node fl__skl_node_t;

/* Returns NULL when out of memory. The seed makes node heights, and so
 * the structure's shape, deterministic. */
fl__skl_t *fl__skl_new(uint64_t seed);
/* The same, with nodes carved from chunks that only fl__skl_clear and
 * fl__skl_free give back (see fl_skl.c): for maps emptied wholesale. */
fl__skl_t *fl__skl_new_arena(uint64_t seed);
void fl__skl_free(fl__skl_t *s);
void fl__skl_clear(fl__skl_t *s);

/* A node not yet linked; NULL when out of memory. Key and value are copied. */
fl__skl_node_t *fl__skl_node_new(fl__skl_t *s, const void *key, size_t klen, const void *val,
                                 size_t vlen, uint8_t flags);
/* Frees a node never linked (NULL allowed); a no-op for an arena map's node. */
void fl__skl_node_free(fl__skl_node_t *n);

/* Links n, which the map then owns; a node with an equal key is replaced and freed. */
void fl__skl_insert(fl__skl_t *s, fl__skl_node_t *n);
/* Unlinks and frees the node with this key; false when there is none. */
bool fl__skl_remove(fl__skl_t *s, const void *key, size_t klen);

fl__skl_node_t *fl__skl_find(const fl__skl_t *s, const void *key, size_t klen);
/* When a node with this key and a value of vlen bytes exists, overwrites
 * its value and flags in place (one hash probe, no allocation) and returns
 * true; otherwise changes nothing and returns false. */
bool fl__skl_overwrite(fl__skl_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                       uint8_t flags);
/* First node whose key is >= key, NULL past the end. */
fl__skl_node_t *fl__skl_seek(const fl__skl_t *s, const void *key, size_t klen);
/* Last node whose key is < key, or <= key when inclusive; NULL if none. */
fl__skl_node_t *fl__skl_seek_before(const fl__skl_t *s, const void *key, size_t klen,
                                    bool inclusive);
fl__skl_node_t *fl__skl_first(const fl__skl_t *s);
fl__skl_node_t *fl__skl_last(const fl__skl_t *s);
fl__skl_node_t *fl__skl_next(const fl__skl_node_t *n);

/* The same bounded to the keys that start with prefix (plen bytes): NULL
 * where the unbounded operation would give a node without it. With a
 * prefix of a tag and an id (fl_keys.h) or longer, they search that
 * prefix's keys only, however many others the map holds. */
fl__skl_node_t *fl__skl_seek_in(const fl__skl_t *s, const void *key, size_t klen,
                                const void *prefix, size_t plen);
fl__skl_node_t *fl__skl_seek_before_in(const fl__skl_t *s, const void *key, size_t klen,
                                       bool inclusive, const void *prefix, size_t plen);
fl__skl_node_t *fl__skl_next_in(const fl__skl_node_t *n, const void *prefix, size_t plen);

const void *fl__skl_key(const fl__skl_node_t *n, size_t *len);
const void *fl__skl_value(const fl__skl_node_t *n, size_t *len);
uint8_t fl__skl_flags(const fl__skl_node_t *n);

size_t fl__skl_count(const fl__skl_t *s);
/* Sum of key and value lengths of the linked nodes. */
uint64_t fl__skl_bytes(const fl__skl_t *s);

#endif
