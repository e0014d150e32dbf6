#!/usr/bin/env bash
# Batch real-time factor of a KWS-sized bundle (log-mel 40 -> LSTM 2x128 -> 12
# classes, fixtures/bundles/kws-bench) on one core, and scaling with --jobs.
#
#   scripts/bench_batch.sh [RUNS]       (default 5 runs per setting; prints medians)
#
# Input: the 10-minute benchmark clip (scripts/make_bench_clip.sh) cut into
# 20 files of 30 s, so --jobs has files to spread.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
clip=target/bench/speech_10min_16k.wav
dir=target/bench/batch30s
[[ -f $clip ]] || scripts/make_bench_clip.sh "$clip"
if [[ ! -f $dir/part19.wav ]]; then
  mkdir -p "$dir"
  for i in $(seq 0 19); do
    sox "$clip" "$dir/part$(printf %02d "$i").wav" trim $((i * 30)) 30
  done
fi
cargo build --release --quiet
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for backend in native ort; do
  for jobs in 1 2; do
    times=$(for _ in $(seq "$runs"); do
      s=$(date +%s.%N)
      ./target/release/seqrec batch "$dir" --bundle fixtures/bundles/kws-bench --backend "$backend" \
        --jobs "$jobs" --out target/bench/batch.jsonl 2>/dev/null || true
      e=$(date +%s.%N)
      echo "$e - $s" | bc -l
    done | median)
    printf '%-6s --jobs %d: median %.3f s for 600 s of audio = %.0fx real time\n' \
      "$backend" "$jobs" "$times" "$(echo "600 / $times" | bc -l)"
  done
done
