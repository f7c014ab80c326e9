#!/usr/bin/env bash
# Compares tsdb's ingest with the io_uring and the epoll driver of its runtime (monoio),
# same binary, same load: for each driver and WAL sync mode, a fresh server, one
# warm-up run that creates the series, then RUNS measured runs of tsdb-bench.
#   usage: bench/scripts/driver-compare.sh [target/release] [RUNS] [POINTS]
set -euo pipefail
bin=${1:-target/release}
runs=${2:-3}
points=${3:-60}
port=18182
series=${SERIES:-10000}
. "$(dirname "$0")/lib.sh"
for sync in interval always; do
  for driver in io-uring epoll; do
    bench_start "--io-driver=$driver" "--wal-sync=$sync"
    bench_load 1 "$start_ms" > /dev/null
    rates=()
    for r in $(seq 1 "$runs"); do
      out=$(bench_load "$points" $(( start_ms + r * 700000 )))
      rates+=("$(bench_rate "$out")")
      echo "sync=$sync driver=$driver run=$r rate=${rates[-1]} p99=$(bench_p99 "$out")"
    done
    echo "sync=$sync driver=$driver median_rate=$(bench_median "${rates[@]}") samples/s"
    bench_stop
  done
done
