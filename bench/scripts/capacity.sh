#!/usr/bin/env bash
# Capacity figures for docs/RUNBOOK.md: bytes per sample on disk after a flush, and
# memory per head series, under tsdb-bench's node-exporter-like series (15 s apart).
# Usage: bench/scripts/capacity.sh  (after cargo build --release -p tsdb -p tsdb-bench;
# BIN, BENCH, SERIES and POINTS override the defaults). Uses port 18080.
set -euo pipefail
BIN=${BIN:-target/release/tsdb}; BENCH=${BENCH:-target/release/tsdb-bench}
SERIES=${SERIES:-100000}; POINTS=${POINTS:-120}
DIR=$(mktemp -d); URL=http://127.0.0.1:18080
"$BIN" start --listen=127.0.0.1:18080 --data-dir="$DIR/data" --shards=2 >"$DIR/log" &
PID=$!; trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
curl -fsS --retry 50 --retry-connrefused --retry-delay 1 -o /dev/null $URL/-/ready
alloc() { curl -fsS $URL/metrics | awk '$1=="tsdb_memory_alloc_bytes"{print $2}'; }
rss() { awk '/VmRSS/{print $2*1024}' /proc/$PID/status; }
a0=$(alloc); r0=$(rss)
"$BENCH" load --url $URL --series "$SERIES" --points "$POINTS" --interval 15s >/dev/null
a1=$(alloc); r1=$(rss)
curl -fsS -X POST $URL/api/v1/admin/flush
blocks=$(du -sb "$DIR/data/blocks" | cut -f1)
samples=$((SERIES * POINTS))
echo "series=$SERIES samples=$samples"
echo "head: allocated $(( (a1 - a0) / SERIES )) B/series, RSS $(( (r1 - r0) / SERIES )) B/series ($POINTS samples each)"
echo "blocks: $blocks B, $(echo "scale=2; $blocks / $samples" | bc) B/sample"
