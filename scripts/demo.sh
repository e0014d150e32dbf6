#!/usr/bin/env bash
# Sets up what is missing, builds, and runs seqrec on bundled examples:
#  1. the features a speech model sees, for a speech clip;
#  2. recognition of beeps and whistles in the bundled test clips (events as
#     JSON Lines, one PNG per clip in target/demo/plots, per-stage statistics).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
mkdir -p target/demo
echo "== seqrec features: log-mel of fixtures/clips/speech_16k.wav"
./target/release/seqrec features fixtures/clips/speech_16k.wav --bundle models/speech-features \
  --out target/demo/speech_16k.logmel.npy
echo
echo "== seqrec batch: tone detector (fixtures/bundles/tone) on fixtures/clips/tone/"
./target/release/seqrec batch fixtures/clips/tone --bundle fixtures/bundles/tone \
  --plot target/demo/plots --stats
echo
echo "plots: target/demo/plots/"
