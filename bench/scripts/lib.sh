# Shared by the ingest scripts (driver-compare.sh, heap-profiling-overhead.sh): start a
# fresh tsdb, wait until it is ready, send tsdb-bench loads, take the median, stop it.
# Source it after setting `bin` (the directory holding tsdb and tsdb-bench), `port`
# and `series`. Environment assignments before `bench_start` reach the server
# (`_RJEM_MALLOC_CONF=prof:false bench_start --wal-sync=always`).

# Starts tsdb on a new temporary directory with the extra arguments given; sets
# `work`, `pid` and `start_ms` (100 minutes ago, room for the measured runs), and
# returns once /-/ready answers. Fails if the server exits first.
bench_start() {
  work=$(mktemp -d)
  "$bin/tsdb" start "--listen=127.0.0.1:$port" "--data-dir=$work/data" "$@" > "$work/log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "tsdb exited before it was ready; log:" >&2
      cat "$work/log" >&2
      return 1
    fi
    sleep 0.05
  done
  start_ms=$(( ($(date +%s) - 6000) * 1000 ))
}

# bench_load POINTS START_MS: one tsdb-bench load of `series` series, its report on
# stdout.
bench_load() {
  "$bin/tsdb-bench" load --url "http://127.0.0.1:$port" --series "$series" --points "$1" \
    --samples-per-request 2000 --connections 4 --start-ms "$2" 2>&1
}

# bench_rate REPORT / bench_p99 REPORT: accepted samples/s and p99 latency (ms) of a
# load report.
bench_rate() { echo "$1" | awk '/^rate/ {print $2}'; }
bench_p99() { echo "$1" | awk '/^latency/ {print $7}'; }

# bench_median NUMBER...: the median (the upper one of an even count).
bench_median() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# Stops the server bench_start started and removes its directory.
bench_stop() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
