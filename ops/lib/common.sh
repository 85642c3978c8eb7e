# Shared shell settings for ops/ scripts: paths, ports and small helpers.
# Sourced, never run. Everything can be overridden from the environment.

FL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FL_KAFKA_VERSION=3.9.1
FL_CACHE=${FEEDLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/feedline}
FL_KAFKA_LIBS=$FL_CACHE/kafka-$FL_KAFKA_VERSION/libs
FL_STACK_DIR=${FEEDLINE_STACK_DIR:-$FL_ROOT/.stack}
FL_BUILD_DIR=${FEEDLINE_BUILD_DIR:-$FL_ROOT/build}
FL_BIN=$FL_BUILD_DIR/bin

FL_KAFKA_PORT=${FEEDLINE_KAFKA_PORT:-19092}
FL_KAFKA_CONTROLLER_PORT=${FEEDLINE_KAFKA_CONTROLLER_PORT:-19093}
FL_REDIS_PORT=${FEEDLINE_REDIS_PORT:-16379}
FL_PG_PORT=${FEEDLINE_PG_PORT:-15432}
FL_PG_BIN=${FEEDLINE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

export FEEDLINE_KAFKA=${FEEDLINE_KAFKA:-127.0.0.1:$FL_KAFKA_PORT}
export FEEDLINE_REDIS=${FEEDLINE_REDIS:-127.0.0.1:$FL_REDIS_PORT}
export FEEDLINE_POSTGRES=${FEEDLINE_POSTGRES:-host=127.0.0.1 port=$FL_PG_PORT dbname=feedline user=feedline}

export FEEDLINE_TOPOLOGY=${FEEDLINE_TOPOLOGY:-$FL_ROOT/topology/feedline.yaml}
# generations of feedline replay: DIR/gN, DIR/live (fl_replay.h); the
# pipeline runs the live one (fl_live_topology in pipeline.sh)
export FEEDLINE_GENERATIONS=${FEEDLINE_GENERATIONS:-$FL_STACK_DIR/generations}
export FEEDLINE_SCHEMAS=${FEEDLINE_SCHEMAS:-$FL_ROOT/schemas}

fl_say() { printf '%s\n' "$*" >&2; }
fl_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
fl_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# True when the process named by pid file $1 runs; a killed one whose
# parent has not reaped it yet (a zombie) is dead.
fl_pid_alive() {
    local pid
    [ -f "$1" ] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null &&
        ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$pid/stat" 2>/dev/null
}

# True when something accepts TCP connections on 127.0.0.1:$1.
fl_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# fl_wait_for SECONDS DESCRIPTION CHECK COMMAND...: polls COMMAND until it
# succeeds. CHECK runs before each poll and fails the script itself when
# waiting is pointless (say, the server being waited for has exited).
fl_wait_for() {
    local secs=$1 what=$2 check=$3 i
    shift 3
    for ((i = 0; i < secs * 5; i++)); do
        "$check"
        "$@" && return 0
        sleep 0.2
    done
    fl_die "$what not ready after ${secs}s"
}

# fl_show_logs FILE...: the last 30 lines of each non-empty FILE, on stderr.
fl_show_logs() {
    local f
    for f; do
        [ -s "$f" ] || continue
        fl_say "== last 30 lines of $f"
        tail -n 30 "$f" >&2
    done
}
