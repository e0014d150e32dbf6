#!/usr/bin/env bash
# Cost of one models/pose-action stream (MoveNet Lightning on the tracked
# crop + pose features + LSTM head), on this machine's cores.
#
#   scripts/bench_pose.sh [RUNS]      (default 3)
#
# 1. Batch: `seqrec batch vtest.avi --jobs 1` (Debian opencv-doc, 795 frames
#    of 768x576 at 10 fps), median wall time of RUNS -> frames per second,
#    and seqrec's own per-stage split (--stats-json) of the last run. The
#    tracked crop needs each frame's keypoints before the next frame is cut,
#    so frames run one at a time (no batching across frames).
# 2. Live at 30 fps: `seqrec live --ffmpeg-input "-re -i vtest30.mp4"` for
#    20 s, where vtest30.mp4 is vtest.avi at 30 fps
#    (frames repeated, 768x576, made here with FFmpeg): the frames per second
#    it keeps up with and the frames the capture queue dropped (0 = it keeps
#    up with 30 fps), with the bundle as shipped (head at 15 fps) and with
#    every frame through MoveNet and the head.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[[ -f $video ]] || { echo "needs $video (apt install opencv-doc)" >&2; exit 1; }
mkdir -p target/bench
cargo build --release --quiet
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
times=$(for _ in $(seq "$runs"); do
  s=$(date +%s.%N)
  ./target/release/seqrec batch "$video" --bundle models/pose-action --jobs 1 --emit summary \
    --stats-json target/bench/pose_stats.json --out target/bench/pose_summary.jsonl
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
done | median)
printf 'batch: median %.2f s for 795 frames = %.1f frames/s (%d cores)\n' \
  "$times" "$(echo "795 / $times" | bc -l)" "$(nproc)"
echo "  last run's stages (seqrec --stats-json):"
python3 -c "import json; s=json.load(open('target/bench/pose_stats.json'))['stages']; f=s['frames']; print('  ', ', '.join(f'{k[:-2]} {1000 * v / f:.2f} ms/frame' for k, v in s.items() if k.endswith('_s')))"
clip=target/bench/vtest30.mp4
[[ -f $clip ]] || ffmpeg -v error -y -i "$video" -vf fps=30 -c:v libx264 -preset veryfast -crf 18 "$clip"
./target/release/seqrec live --bundle models/pose-action --ffmpeg-input "-re -i $clip" \
  --duration 20 --stats 2>&1 | grep -E "fps|dropped|embedder" | sed 's/^/live 30 fps: /' || true
# The bundle runs the head at 15 fps (its training rate), so the run above
# processes every second frame. The same with every frame through MoveNet
# and the head (the manifest without its fps cap):
b=target/bench/pose-action-30fps
mkdir -p "$b"
sed -e "s|^onnx = \"|onnx = \"$PWD/models/pose-action/|" -e "/^fps = /d" models/pose-action/bundle.toml >"$b/bundle.toml"
./target/release/seqrec live --bundle "$b" --ffmpeg-input "-re -i $clip" \
  --duration 20 --stats 2>&1 | grep -E "fps|dropped|embedder" | sed 's/^/live 30 fps, every frame: /' || true
