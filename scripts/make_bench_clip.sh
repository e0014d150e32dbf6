#!/usr/bin/env bash
# Creates a deterministic 10-minute 16 kHz mono 16-bit WAV for benchmarks.
# NOT committed (~19 MB): write it under target/ or /tmp.
#
#   scripts/make_bench_clip.sh target/bench/speech_10min_16k.wav
#
# Content: ~30 s of espeak-ng en-us speech (+1 s gap), looped and trimmed to
# exactly 600 s, mixed with low-level white noise (sox -R: seeded, repeatable).
# Requires espeak-ng and sox. Same tool versions => byte-identical output.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT.wav   (e.g. target/bench/speech_10min_16k.wav)" >&2
  exit 2
fi
OUTF=$1
mkdir -p "$(dirname "$OUTF")"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

TEXT="yes, no, stop. go left, then right. \
The quick brown fox jumps over the lazy dog. \
Turn the volume up, then turn it down again. \
One, two, three, four, five, six, seven, eight, nine, ten. \
Please open the window and close the door behind you. \
Navigate to the next item, select it, and confirm the choice. \
She sells sea shells by the sea shore on a sunny afternoon."

espeak-ng -v en-us -s 165 -w "$TMP/raw.wav" "$TEXT"
# 16 kHz, no dither, 0.5 s silence before / 0.5 s after each repetition
sox -D -R "$TMP/raw.wav" -r 16000 -c 1 -b 16 "$TMP/unit.wav" rate -v 16000 pad 0.5 0.5
UNIT_S=$(soxi -D "$TMP/unit.wav")
REPS=$(python3 -c "import math; print(math.ceil(600 / $UNIT_S))")
# 'repeat N' plays the input N+1 times
sox -D -R "$TMP/unit.wav" "$TMP/loop.wav" repeat "$REPS" trim 0 600
sox -D -R -n -r 16000 -c 1 -b 16 "$TMP/noise.wav" synth 600 whitenoise vol 0.02
sox -D -R -m -v 1.0 "$TMP/loop.wav" -v 1.0 "$TMP/noise.wav" -b 16 "$OUTF"
soxi "$OUTF" | grep -E 'Sample Rate|Channels|Precision|Duration'
