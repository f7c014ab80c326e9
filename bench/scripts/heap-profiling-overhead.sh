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
series=10000
for conf in "prof:true" "prof:false"; do
  work=$(mktemp -d)
  _RJEM_MALLOC_CONF=$conf "$bin/tsdb" start "--listen=127.0.0.1:$port" "--data-dir=$work/data" > "$work/log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.05; done
  start_ms=$(( ($(date +%s) - 6000) * 1000 ))
  load() {
    "$bin/tsdb-bench" load --url "http://127.0.0.1:$port" --series $series --points "$1" \
      --samples-per-request 2000 --connections 4 --start-ms "$2" 2>&1
  }
  load 1 "$start_ms" > /dev/null
  rates=()
  for r in $(seq 1 "$runs"); do
    out=$(load "$points" $(( start_ms + r * 700000 )))
    rates+=("$(echo "$out" | awk '/^rate/ {print $2}')")
    echo "malloc_conf=$conf run=$r rate=${rates[-1]}"
  done
  median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "malloc_conf=$conf median_rate=$median samples/s"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
done
