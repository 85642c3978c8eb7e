# The programs ops/pipeline runs and where each serves its metrics, shared
# by ops/pipeline and ops/observe (whose Prometheus scrapes them). Sourced
# after common.sh, never run.

# name, and whether it keeps local state (processors), not (sinks), or is
# the API (metrics on its own listening address)
fl_programs=(fanout:state timeline:state engagement:state affinity:state redis-sink: pg-sink: api:api)
fl_port_base=${FEEDLINE_PIPELINE_PORT_BASE:-19101}
fl_api_addr=${FEEDLINE_API:-127.0.0.1:18080}

# The metrics address of program $1 (the i-th of fl_programs, $2).
fl_metrics_addr() {
    if [ "$1" = api ]; then echo "$fl_api_addr"; else echo "127.0.0.1:$((fl_port_base + $2))"; fi
}

# The live generation's topology and stores, once `ops/pipeline up` made
# $FEEDLINE_GENERATIONS/live (feedline generations init; a replay switch
# moves it); before that the topology file and the pipeline's own folder.
fl_live_topology() {
    if [ -L "$FEEDLINE_GENERATIONS/live" ]; then
        echo "$FEEDLINE_GENERATIONS/live/topology.yaml"
    else
        echo "$FEEDLINE_TOPOLOGY"
    fi
}
fl_live_state() {
    if [ -L "$FEEDLINE_GENERATIONS/live" ]; then
        echo "$FEEDLINE_GENERATIONS/live/state"
    else
        echo "$FL_STACK_DIR/pipeline/state"
    fi
}
