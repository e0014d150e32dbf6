#!/usr/bin/env bash
# Cost of one models/genre stream on one core: `seqrec batch --jobs 1` pinned
# to CPU 0 (taskset) on 10 minutes of music, with the embedder batching up to
# 16 windows per ONNX Runtime call (the bundle's setting) and with 1 (what a
# live stream does). Prints the median wall time, the real-time factor, and
# seqrec's own per-stage split (--stats-json) of the last run.
#
#   scripts/bench_genre.sh [RUNS]      (default 5 runs per setting)
#
# Input: fixtures/genre/bach_16k.wav looped to 600 s (sox). The work per
# second does not depend on the music: one 187x96 musicnn window per
# 62 frames (0.992 s), one GRU step per window.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
clip=target/bench/music_10min_16k.wav
if [[ ! -f $clip ]]; then
  mkdir -p target/bench
  mapfile -t parts < <(for _ in $(seq 75); do echo fixtures/genre/bach_16k.wav; done)
  sox "${parts[@]}" "$clip"
fi
secs=$(soxi -D "$clip")
cargo build --release --quiet
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for batch in 16 1; do
  b=target/bench/genre-batch$batch
  mkdir -p "$b"
  # The shipped manifest with absolute model paths and this batch size.
  sed -e "s|^onnx = \"|onnx = \"$PWD/models/genre/|" -e "s|^batch = .*||" models/genre/bundle.toml |
    awk -v n="$batch" '{print} /^\[embedder\]/{print "batch = " n}' >"$b/bundle.toml"
  times=$(for _ in $(seq "$runs"); do
    s=$(date +%s.%N)
    taskset -c 0 ./target/release/seqrec batch "$clip" --bundle "$b" --jobs 1 --emit summary \
      --stats-json target/bench/genre_stats.json --out target/bench/genre_summary.jsonl
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
  done | median)
  printf 'embedder batch %2d: median %.3f s for %.0f s of music = %.0fx real time on one core\n' \
    "$batch" "$times" "$secs" "$(echo "$secs / $times" | bc -l)"
  echo "  last run's stages (seqrec --stats-json):"
  sed 's/^/    /' target/bench/genre_stats.json
done
