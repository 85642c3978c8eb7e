/*
 * fl_replay.h - `feedline replay` and `feedline generations`: rebuilding
 * stores and projections from the topics into a new generation beside the
 * live one, and switching the live generation.
 *
 * A generation is a folder DIR/gN holding topology.yaml (the topology of
 * generation N: its sinks' own consumer groups "gN.<group>",
 * endpoints.redis_db and endpoints.postgres_schema naming where its
 * projections are kept) and state/ (a link to the stores it shares with
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
    "replay NAME... [--dir DIR] [--state-dir DIR] [--switch] [--caught-up N]\n"                    \
    "               [--timeout SECONDS]"
#define FL_REPLAY_HELP                                                                             \
    "Rebuilds projections from the topics into a new generation while the live one\n"              \
    "keeps serving: NAME is a sink, redis or postgres (or the sink's name in the\n"                \
    "topology). The new generation has consumer groups of its own (gN.<group>), a\n"               \
    "Redis database of its own (where its sink publishes nothing) and a PostgreSQL\n"              \
    "schema feedline_gN; it reads the live generation's topics and shares its\n"                   \
    "stores. The sinks run one after the other (the binaries beside this one, logs\n"              \
    "in DIR/gN/logs), each with a progress line, until caught up (lag at most\n"                   \
    "--caught-up records, 1000); then they stop and each stage's time and rate are\n"              \
    "printed (and kept in DIR/gN/replay.json). The new generation stays beside the\n"              \
    "live one, for `feedline --topology DIR/gN/topology.yaml verify --against\n"                   \
    "DIR/live/topology.yaml`; --switch makes it live at once (`feedline generations\n"             \
    "switch`). Rebuilding the stores (processors, --all) into a generation is not\n"               \
    "built yet: their topics would need names of their own.\n"                                     \
    "DIR is $FEEDLINE_GENERATIONS or .generations; --state-dir is generation 0's\n"                \
    "stores (default $FEEDLINE_STATE_DIR or .state).\n"                                            \
    "Exit status: 0 built (and switched), 1 failure, 2 usage.\n"

#define FL_GENERATIONS_USAGE "generations [--dir DIR] [list | newest | switch N]"
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
    "measure the new generation's lag.\n"

/* `feedline replay` (argv[0] "replay") over the live topology topo, loaded
 * from topo_path; the exit status. */
int fl_replay_cmd(const fl_topology_t *topo, const char *topo_path, volatile sig_atomic_t *stop,
                  int argc, char **argv);

/* `feedline generations` (argv[0] "generations"). */
int fl_generations_cmd(const char *topo_path, int argc, char **argv);

#endif
