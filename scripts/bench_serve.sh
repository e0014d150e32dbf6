#!/usr/bin/env bash
# Load benchmark of `seqrec serve` on loopback (issue 15): for each bundle
# and stream count, a fresh server (release build) and the load generator
# (examples/serve_load.rs) with N streams paced at real time; batching on
# and off. One JSON line per run on stdout; a table at the end.
#
#   scripts/bench_serve.sh                      # the README table
#   BUNDLES="kws-logmel" COUNTS="1 10 100 1000" SECONDS_PER_RUN=20 scripts/bench_serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLES=${BUNDLES:-"kws-logmel kws vad"}
COUNTS=${COUNTS:-"1 10 100 1000"}
MODES=${MODES:-"on off"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
CHUNK_MS=${CHUNK_MS:-100}
OUT=${OUT:-target/bench_serve.jsonl}
cargo build --release --quiet --bin seqrec --example serve_load
BIN=target/release/seqrec
LOAD=target/release/examples/serve_load
clip=fixtures/clips/kws/live_yes_down_right_go.wav
: > "$OUT"
port=18600
for b in $BUNDLES; do
  for mode in $MODES; do
    for n in $COUNTS; do
      port=$((port + 1))
      flag=""; [ "$mode" = off ] && flag="--no-batching"
      $BIN serve --listen 127.0.0.1:$port --bundle "$b=models/$b" --max-streams 100000 $flag 2> target/bench_serve_server.log &
      pid=$!
      for _ in $(seq 100); do grep -q "listening on" target/bench_serve_server.log && break; sleep 0.1; done
      idle_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
      line=$($LOAD --addr 127.0.0.1:$port --bundle "$b" --clip $clip --streams "$n" \
        --seconds "$SECONDS_PER_RUN" --chunk-ms "$CHUNK_MS" --server-pid $pid)
      kill -TERM $pid; wait $pid || true
      echo "$line" | python3 -c "import json,sys; d=json.load(sys.stdin); d.update(batching='$mode', idle_rss_kib=$idle_rss); print(json.dumps(d))" | tee -a "$OUT"
    done
  done
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| bundle | batching | streams | keeps up | p50 ms | p99 ms | server cores | CPU ms per stream-second | memory per stream (KiB) |")
print("|---|---|---|---|---|---|---|---|---|")
for d in rows:
    mem = (d["server_rss_kib_mid_run"] - d["idle_rss_kib"]) / d["streams"] if d.get("server_rss_kib_mid_run") else float("nan")
    print(f"| {d['bundle']} | {d['batching']} | {d['streams']} | {'yes' if d['keeps_up'] else 'no'} | {d['p50_ms']:.1f} | {d['p99_ms']:.1f} | {d['server_cores']:.2f} | {d['cpu_ms_per_stream_s']:.2f} | {mem:.0f} |")
PY
