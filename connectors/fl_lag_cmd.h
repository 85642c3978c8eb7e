/*
 * fl_lag_cmd.h - `feedline lag`, the command's own file (the rest of the
 * command is feedline_cli.c).
 */
#ifndef FL_LAG_CMD_H
#define FL_LAG_CMD_H

#include "fl_topology.h"

#define FL_LAG_CMD_USAGE "lag [--json] [--timeout SECONDS] [PROGRAM...]"
#define FL_LAG_CMD_HELP                                                                            \
    "Prints how far each processor and sink of the topology is behind, per input\n"                \
    "partition, with a total per program:\n"                                                       \
    "  position  the next offset it reads: a processor's consumer group's committed\n"             \
    "            offset, a sink's offset stored in its destination (the Redis marker,\n"           \
    "            PostgreSQL's sink_offsets); '-' when none (it starts at the beginning)\n"         \
    "  end       the partition's last stable offset (what read_committed reaches)\n"               \
    "  lag       end minus the offset of the first committed record at or after the\n"             \
    "            position: transaction markers alone are no lag, so a caught-up\n"                 \
    "            pipeline shows 0; markers within a backlog count, one per batch;\n"               \
    "            'past end' when the position lies past the end (the topic was\n"                  \
    "            recreated or truncated; a sink then wipes and rebuilds at its claim)\n"           \
    "PROGRAM names (fanout, redis, ...) limit the output to those processors or\n"                 \
    "sinks. --json prints one JSON object instead of the table. --timeout bounds\n"                \
    "the wait for each store (default 10 s).\n"                                                    \
    "Exit status: 0 every lag measured; 1 a store (Kafka, Redis, PostgreSQL) did\n"                \
    "not answer in time: the rest is still printed, '?' (null in JSON) where\n"                    \
    "unknown; 2 usage.\n"

/* Runs the command (argv[0] is "lag") over topology t; the exit status. */
int fl_lag_cmd(const fl_topology_t *t, int argc, char **argv);

#endif
