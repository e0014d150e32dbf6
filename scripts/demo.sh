#!/usr/bin/env bash
# Sets up what is missing and runs seqrec on a bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
mkdir -p target/demo
./target/release/seqrec features fixtures/clips/speech_16k.wav --bundle models/speech-features \
  --out target/demo/speech_16k.logmel.npy
