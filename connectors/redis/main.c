/*
 * main.c - feedline-redis-sink: the sink runtime (consumer group, batches,
 * dead letters, metrics, signals) around the Redis destination layer.
 */
#include "fl_redis_sink.h"

int main(int argc, char **argv)
{
    return fl_sink_main(&fl_redis_sink, argc, argv);
}
