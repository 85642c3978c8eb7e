/*
 * test_partition.c - murmur2 partitioning agrees with the Java client and
 * with librdkafka's murmur2 partitioner.
 *
 * The Java vectors are those of Kafka's own UtilsTest.testMurmur2; the
 * librdkafka comparison covers every decimal key shape feedline uses.
 */
#include "fl_partition.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

Test(partition, java_murmur2_vectors)
{
    static const struct {
        const char *key;
        int32_t java;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq((int32_t)fl_murmur2(cases[i].key, strlen(cases[i].key)), cases[i].java,
                     "murmur2(%s)", cases[i].key);
}

Test(partition, agrees_with_librdkafka)
{
    char key[32];
    static const int32_t counts[] = {1, 2, 3, 4, 7, 8, 16, 100, 1024};
    for (int64_t id = -2000; id < 200000; id += (id < 1000 ? 1 : 97)) {
        int n = snprintf(key, sizeof(key), "%" PRId64, id);
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            int32_t ours = fl_partition_for_id(id, counts[c]);
            int32_t theirs =
                rd_kafka_msg_partitioner_murmur2(NULL, key, (size_t)n, counts[c], NULL, NULL);
            cr_assert_eq(ours, theirs, "key %s among %d partitions", key, counts[c]);
        }
    }
}

Test(partition, key_42_among_4)
{
    /* The integration test checks that the Java producer puts "42" here too. */
    int32_t p = fl_partition_for_key("42", 2, 4);
    cr_expect(p >= 0 && p < 4);
    cr_expect_eq(p, fl_partition_for_id(42, 4));
}
