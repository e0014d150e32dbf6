#!/usr/bin/env bash
# The README's live-window screenshots (docs/window_{speech,music,video}.png),
# made by `seqrec live --window --screenshot` under Xvfb: the keyword clip and
# the Monteverdi fixture played into the virtual microphone, and Debian
# opencv-doc's vtest.avi (real pedestrians) played at 30 fps as a live FFmpeg
# input. Needs: a release build, xvfb, scripts/vmic.sh's PulseAudio, opencv-doc.
#
# Usage: scripts/window_screenshots.sh [OUT_DIR]   (default docs/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs}
mkdir -p "$out"
bin=target/release/seqrec
[[ -x $bin ]] || { echo "build first: cargo build --release" >&2; exit 1; }
if [[ -z ${DISPLAY:-} ]]; then
  Xvfb :97 -screen 0 1280x1024x24 >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill $xvfb' EXIT
  export DISPLAY=:97
  sleep 1
fi
scripts/vmic.sh start >/dev/null
vmic_env=$(sed -n 's/^export //p' .vmic/env)

audio_shot() { # bundle clip seconds png
  env $vmic_env "$bin" live --bundle "$1" --format jsonl --window --duration "$3" \
    --screenshot "$4" > /dev/null &
  local pid=$!
  sleep 3
  scripts/vmic.sh play "$2"
  wait $pid
}
audio_shot models/kws fixtures/clips/kws/live_yes_down_right_go.wav 15 "$out/window_speech.png"
audio_shot models/genre fixtures/genre/monteverdi_16k.wav 14 "$out/window_music.png"
"$bin" live --bundle models/pose-action --format jsonl --window --duration 12 \
  --ffmpeg-input "-re -i /usr/share/doc/opencv-doc/examples/data/vtest.avi" \
  --screenshot "$out/window_video.png" > /dev/null
echo "wrote $out/window_{speech,music,video}.png"
