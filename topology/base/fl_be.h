/*
 * fl_be.h - big-endian integers, the byte order of every fixed-width
 * field feedline persists or sends (store keys and metadata, timeline
 * operations, the wire format's schema id): one copy for all of them.
 */
#ifndef FL_BE_H
#define FL_BE_H

#include <stdint.h>

static inline void fl_be_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t fl_be_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void fl_be_put64(uint8_t *p, uint64_t v)
{
    fl_be_put32(p, (uint32_t)(v >> 32));
    fl_be_put32(p + 4, (uint32_t)v);
}

static inline uint64_t fl_be_get64(const uint8_t *p)
{
    return (uint64_t)fl_be_get32(p) << 32 | fl_be_get32(p + 4);
}

#endif
