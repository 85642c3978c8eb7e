/*
 * fl_grow.h - room for one more element of a growing array.
 */
#ifndef FL_GROW_H
#define FL_GROW_H

#include <stdlib.h>

/*
 * Returns v, or a copy with twice the capacity (first elements of size
 * elem for an empty array) when its len elements fill *cap: the caller
 * stores the result. NULL when memory ran out: v and *cap are unchanged.
 */
static inline void *fl_grow(void *v, size_t *cap, size_t len, size_t elem, size_t first)
{
    if (len < *cap)
        return v;
    size_t n = *cap ? *cap * 2 : first;
    void *nv = realloc(v, n * elem);
    if (nv)
        *cap = n;
    return nv;
}

#endif
