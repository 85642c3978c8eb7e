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
