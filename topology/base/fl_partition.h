/*
 * fl_partition.h - the Java client's default partitioner for keyed records.
 *
 * Every feedline producer, and every upstream producer, must place a key
 * in the same partition, or co-partitioning of posts and follows breaks.
 * This is Kafka's murmur2 (seed 0x9747b28c) over the key bytes, masked to
 * a positive int, modulo the partition count: the same as the Java
 * client's BuiltInPartitioner and librdkafka's murmur2_random partitioner
 * for non-empty keys. Pure and allocation-free, so processor logic can use
 * it to pick destination partitions.
 */
#ifndef FL_PARTITION_H
#define FL_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's murmur2 hash of len bytes. */
uint32_t fl_murmur2(const void *key, size_t len);

/* Partition of key among partitions (> 0). */
int32_t fl_partition_for_key(const void *key, size_t len, int32_t partitions);

/* Partition of the decimal string of id, the key format of every topic. */
int32_t fl_partition_for_id(int64_t id, int32_t partitions);

#endif
