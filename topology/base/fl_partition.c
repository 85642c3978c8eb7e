/*
 * fl_partition.c - Kafka-compatible murmur2 partitioning (see header).
 *
 * Arithmetic is done on uint32_t so the Java int overflow semantics are
 * reproduced exactly without signed-overflow undefined behaviour.
 */
#include "fl_partition.h"

#include <inttypes.h>
#include <stdio.h>

uint32_t fl_murmur2(const void *key, size_t len)
{
    const unsigned char *data = key;
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;

    for (size_t i = 0; i < n4; i++) {
        const unsigned char *p = data + i * 4;
        uint32_t k =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = data + n4 * 4;
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int32_t fl_partition_for_key(const void *key, size_t len, int32_t partitions)
{
    return (int32_t)((fl_murmur2(key, len) & 0x7fffffffu) % (uint32_t)partitions);
}

int32_t fl_partition_for_id(int64_t id, int32_t partitions)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, id);
    return fl_partition_for_key(buf, (size_t)n, partitions);
}
