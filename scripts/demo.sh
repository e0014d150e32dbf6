#!/usr/bin/env bash
# Sets up what is missing, builds, and runs seqrec on bundled examples:
#  1. keyword spotting (models/kws: Google speech_embedding + a GRU head) on
#     the bundled keyword clips: events as JSON Lines, per-stage statistics;
#  1b. your own word: `seqrec enroll` from 4 recordings of "banana", then
#     the enrolled bundle on new recordings;
#  2. voice activity (models/vad, Silero VAD) on a clip with pauses;
#  3. camera-motion recognition (models/action: EfficientNet-Lite0 features +
#     LSTM) on two bundled H.264 videos;
#  4. music genre (models/genre: musicnn + a GRU head), one summary per file;
#  5. the beep/whistle test detector with one PNG plot per clip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
S=./target/release/seqrec
mkdir -p target/demo
echo "== keywords: seqrec batch fixtures/clips/kws --bundle models/kws"
$S batch fixtures/clips/kws --bundle models/kws --stats
echo "(the words spoken in each clip: fixtures/clips/kws/expected.json; the model misses and confuses"
echo " some of them at its strict default thresholds — see models/kws/README.md)"
echo
echo "== your own word: seqrec enroll --keyword banana from 4 recordings, then batch on a clip with"
echo "   3 new noisy 'banana's and 2 'window's (fixtures/clips/enroll/banana_test.json: where)"
$S enroll --bundle models/kws --keyword banana --out target/demo/banana --force \
  fixtures/clips/enroll/banana_enroll_{0,1,2,3}.wav
$S batch fixtures/clips/enroll/banana_test.wav --bundle target/demo/banana
echo
echo "== speech segments: seqrec batch fixtures/clips/vad/speech_pauses.wav --bundle models/vad"
$S batch fixtures/clips/vad/speech_pauses.wav --bundle models/vad
echo
echo "== camera motion: seqrec batch fixtures/clips/action --bundle models/action"
$S batch fixtures/clips/action --bundle models/action
echo
echo "== music genre: seqrec batch fixtures/genre --bundle models/genre --emit summary"
$S batch fixtures/genre --bundle models/genre --emit summary
echo "(monteverdi: classical, right; bach, a piano-only chorale: country, a known error — models/genre/README.md)"
echo
echo "== beeps and whistles, with plots: seqrec batch fixtures/clips/tone --bundle fixtures/bundles/tone --plot target/demo/plots"
$S batch fixtures/clips/tone --bundle fixtures/bundles/tone --plot target/demo/plots
echo
echo "plots: target/demo/plots/; model cards: models/*/README.md"
