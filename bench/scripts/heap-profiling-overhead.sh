#!/usr/bin/env bash
# Measures what jemalloc's always-on heap sampling (lg_prof_sample:19, for
# /debug/pprof/heap) costs ingest: the same binary with sampling on (the default) and
# off (_RJEM_MALLOC_CONF=prof:false), a fresh server each, one warm-up run that
# creates the series, then RUNS measured runs of tsdb-bench remote_write.
#   usage: bench/scripts/heap-profiling-overhead.sh [target/release] [RUNS] [POINTS]
set -euo pipefail
bin=${1:-target/release}
runs=${2:-3}
points=${3:-60}
port=18183
series=${SERIES:-10000}
. "$(dirname "$0")/lib.sh"
for conf in "prof:true" "prof:false"; do
  _RJEM_MALLOC_CONF=$conf bench_start
  bench_load 1 "$start_ms" > /dev/null
  rates=()
  for r in $(seq 1 "$runs"); do
    out=$(bench_load "$points" $(( start_ms + r * 700000 )))
    rates+=("$(bench_rate "$out")")
    echo "malloc_conf=$conf run=$r rate=${rates[-1]}"
  done
  echo "malloc_conf=$conf median_rate=$(bench_median "${rates[@]}") samples/s"
  bench_stop
done
