/*
 * fl_replay.h - `feedline replay` and `feedline generations`: rebuilding
 * stores and projections from the topics into a new generation beside the
 * live one, and switching the live generation.
 *
 * A generation is a folder DIR/gN holding topology.yaml (the topology of
 * generation N: topic_prefix "gN." for the topics its processors write,
 * its own consumer groups "gN.<group>", endpoints.redis_db and
 * endpoints.postgres_schema naming where its projections are kept) and
 * state/ (its processors' stores, or a link to the stores it shares with
 * the generation it came from). DIR/live links the live generation; with
 * no link the live generation is 0, the topology the command was given.
 * The live generation's projections are always in Redis database 0 and in
 * the PostgreSQL schema the server's search_path finds first: the names
 * other programs read. A switch moves them there in one step each (Redis
 * SWAPDB, a transaction of two ALTER SCHEMA ... RENAME), and parks the old
 * generation where the new one was.
 */
#ifndef FL_REPLAY_H
#define FL_REPLAY_H

#include "fl_topology.h"

#include <signal.h>

#define FL_REPLAY_USAGE                                                                            \
    "replay --all|NAME... [--dir DIR] [--state-dir DIR] [--switch] [--caught-up N]\n"              \
    "               [--timeout SECONDS] [--metrics-base PORT] [--until WHEN]"
#define FL_REPLAY_HELP                                                                             \
    "Rebuilds stores and projections from the topics into a new generation N while\n"              \
    "the live one keeps serving. NAME is a processor or a store (then every store is\n"            \
    "rebuilt, and both projections after them, as they read the stores'\n"                         \
    "changelogs), or a sink: redis or postgres (that projection alone, from the live\n"            \
    "generation's topics and stores); --all is everything. A generation of stores\n"               \
    "has its own topics in Kafka (every topic but the inputs under the prefix gN.,\n"              \
    "topic_prefix in its topology) and store folders (DIR/gN/state); every rebuilt\n"              \
    "program has its own consumer group (gN.<group>); the projections a Redis\n"                   \
    "database of their own (where the sink publishes nothing) and a PostgreSQL\n"                  \
    "schema feedline_gN. The programs (the binaries beside this one, logs in\n"                    \
    "DIR/gN/logs) run in stages: the processors that read input topics only, the\n"                \
    "processors after them, then the sinks together; each stage with a progress line\n"            \
    "until caught up (lag 0, or at most --caught-up records, 1000, for 5 s while the\n"            \
    "inputs grow). Then they stop, and each stage's time and rate are printed (and\n"              \
    "kept in DIR/gN/replay.json). The new generation stays beside the live one, for\n"             \
    "`feedline --topology DIR/gN/topology.yaml verify --against\n"                                 \
    "DIR/live/topology.yaml`; --switch makes it live at once (`feedline generations\n"             \
    "switch`: stop the live generation's processors and sinks first).\n"                           \
    "DIR is $FEEDLINE_GENERATIONS or .stack/generations; --state-dir is generation\n"              \
    "0's stores (default $FEEDLINE_STATE_DIR or .state). --metrics-base P: the i-th\n"             \
    "program (processors in topology order, then sinks) serves /metrics on\n"                      \
    "127.0.0.1:P+i (a benchmark samples them).\n"                                                  \
    "--until WHEN rebuilds the stores (and projections) as of a point in the\n"                    \
    "inputs: WHEN is a time (YYYY-MM-DDTHH:MM:SS[.mmm]Z, or milliseconds since the\n"              \
    "epoch: each input partition is read up to its first record stamped at or\n"                   \
    "after it, Kafka's record time) or TOPIC:PARTITION:OFFSET,... (those input\n"                  \
    "partitions up to the offset, excluded; the others to their ends).\n"                          \
    "Exit status: 0 built (and switched), 1 failure, 2 usage.\n"

#define FL_GENERATIONS_USAGE                                                                       \
    "generations [--dir DIR] [list | newest | switch N | init [--state-dir DIR]]"
#define FL_GENERATIONS_HELP                                                                        \
    "list (the default) prints every generation of DIR: its number, whether it is\n"               \
    "live, its Redis database, PostgreSQL schema and stores. newest prints the\n"                  \
    "highest number. switch N makes generation N live: Redis SWAPDB moves its\n"                   \
    "database to 0, one PostgreSQL transaction renames the live schema to\n"                       \
    "feedline_gK and N's to the live name, both topology files are rewritten and\n"                \
    "DIR/live is replaced (a rename): readers of the contract's keys and tables\n"                 \
    "see the new generation from one command to the next. Stop the live\n"                         \
    "generation's processors and sinks first (ops/pipeline replay does it all),\n"                 \
    "start generation N's after (topology DIR/live/topology.yaml, stores\n"                        \
    "DIR/live/state), and send the read API SIGHUP so that its health checks\n"                    \
    "measure the new generation's lag.\n"                                                          \
    "init writes generation 0 (DIR/g0 from the topology given, its stores\n"                       \
    "--state-dir, default $FEEDLINE_STATE_DIR or .state) and points DIR/live at it,\n"             \
    "while no other generation exists: programs started on DIR/live/topology.yaml\n"               \
    "then follow every switch (ops/pipeline up runs it).\n"

/* `feedline replay` (argv[0] "replay") over the live topology topo, loaded
 * from topo_path; the exit status. */
int fl_replay_cmd(const fl_topology_t *topo, const char *topo_path, volatile sig_atomic_t *stop,
                  int argc, char **argv);

/* `feedline generations` (argv[0] "generations"). */
int fl_generations_cmd(const char *topo_path, int argc, char **argv);

#endif
