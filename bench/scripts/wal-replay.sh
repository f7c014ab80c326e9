#!/usr/bin/env bash
# Measures WAL replay speed: imports SERIES x POINTS samples (default 1000 x 10000 =
# 10M) with --wal-sync=never and a memtable large enough that nothing is flushed,
# kills the server with SIGKILL, restarts it and prints each shard's `replaying WAL`
# line (samples and duration_ms) and the samples/s per shard.
#   usage: bench/scripts/wal-replay.sh [path/to/tsdb] [SERIES] [POINTS]
set -euo pipefail
bin=${1:-target/release/tsdb}
series=${2:-1000}
points=${3:-10000}
port=18090
work=$(mktemp -d)
trap 'pkill -f "listen=127.0.0.1:$port" || true; rm -rf "$work"' EXIT
python3 - "$work" "$series" "$points" <<'PY'
import json, sys
work, series, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = 1700000000000
per_file = 100
for part in range((series + per_file - 1) // per_file):
    with open(f"{work}/part{part:04d}.jsonl", "w") as f:
        for sid in range(part * per_file, min(series, (part + 1) * per_file)):
            # 100 ms apart so the head spans less than a block range and stays in memory.
            ts = [t0 + i * 100 for i in range(points)]
            vals = [float((i * 7 + sid) % 1000) / 4 for i in range(points)]
            f.write(json.dumps({"metric": {"__name__": "node_metric", "instance": f"host-{sid}:9100",
                                           "job": "node", "idx": str(sid)},
                                "values": vals, "timestamps": ts}) + "\n")
PY
args=(start "--listen=127.0.0.1:$port" "--data-dir=$work/data" --wal-sync=never --memtable-size=16GB --compaction-enabled=false)
"$bin" "${args[@]}" > "$work/log1" 2>&1 &
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.1; done
for f in "$work"/part*.jsonl; do
  curl -sf -XPOST --data-binary @"$f" "http://127.0.0.1:$port/api/v1/import"
done
pkill -9 -f "listen=127.0.0.1:$port"
wait 2>/dev/null || true
"$bin" "${args[@]}" > "$work/log2" 2>&1 &
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.05; done
grep '"replaying WAL"' "$work/log2" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    rate = r["samples"] / max(r["duration_ms"], 1) * 1000
    print("shard %d: %d samples in %d ms = %.1f M samples/s" % (r["shard"], r["samples"], r["duration_ms"], rate / 1e6))
'
