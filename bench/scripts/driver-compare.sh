#!/usr/bin/env bash
# Compares tsdb's ingest with the io_uring and the epoll driver of its runtime (monoio),
# same binary, same load: for each driver and WAL sync mode, a fresh server, one
# warm-up run that creates the series, then RUNS measured runs of tsdb-bench.
#   usage: bench/scripts/driver-compare.sh [target/release] [RUNS]
set -euo pipefail
bin=${1:-target/release}
runs=${2:-3}
port=18182
series=10000
for sync in interval always; do
  for driver in io-uring epoll; do
    work=$(mktemp -d)
    "$bin/tsdb" start "--listen=127.0.0.1:$port" "--data-dir=$work/data" "--io-driver=$driver" "--wal-sync=$sync" > "$work/log" 2>&1 &
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
      out=$(load 60 $(( start_ms + r * 700000 )))
      rates+=("$(echo "$out" | awk '/^rate/ {print $2}')")
      p99=$(echo "$out" | awk '/^latency/ {print $7}')
      echo "sync=$sync driver=$driver run=$r rate=${rates[-1]} p99=$p99"
    done
    median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "sync=$sync driver=$driver median_rate=$median samples/s"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$work"
  done
done
