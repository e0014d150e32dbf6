#!/usr/bin/env bash
# Regenerates the small test clips in fixtures/clips/.
#   speech_16k.wav : espeak-ng speech, 16 kHz mono s16, 0.3 s silence padded at both ends
#   music_22k.wav  : synthetic (numpy, seeded) music, 22050 Hz mono s16
# Requires: espeak-ng, sox, python3 with numpy + soundfile.
# Usage: scripts/make_clips.sh            (run from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=fixtures/clips
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- speech -----------------------------------------------------------------
# espeak-ng writes 22050 Hz mono 16-bit WAV.
espeak-ng -v en-us -s 175 -w "$TMP/speech_raw.wav" "yes, no, stop. go left, then right."
# -D: no dither (keeps the output deterministic); rate -v: very-high-quality resampler.
sox -D "$TMP/speech_raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$OUT/speech_16k.wav" \
    rate -v 16000 pad 0.3 0.3

# --- music ------------------------------------------------------------------
python3 - "$OUT/music_22k.wav" <<'PY'
import sys
import numpy as np
import soundfile as sf

sr = 22050
dur = 3.0
n = int(sr * dur)
t = np.arange(n) / sr
rng = np.random.default_rng(12345)
y = np.zeros(n, dtype=np.float64)

def note(f0, start, length, amp=0.25, n_harm=6, decay=3.0):
    """Harmonic tone with 10 ms linear attack and exponential decay."""
    i0 = int(start * sr)
    i1 = min(n, i0 + int(length * sr))
    tt = np.arange(i1 - i0) / sr
    env = np.minimum(tt / 0.01, 1.0) * np.exp(-decay * tt)
    # 20 ms release at the end to avoid clicks
    rel = np.clip((length - tt) / 0.02, 0.0, 1.0)
    sig = np.zeros_like(tt)
    for h in range(1, n_harm + 1):
        sig += np.sin(2 * np.pi * f0 * h * tt) / h
    y[i0:i1] += amp * env * rel * sig

def drum(start, length=0.12, amp=0.5):
    """Noise burst + decaying 60 Hz thump."""
    i0 = int(start * sr)
    i1 = min(n, i0 + int(length * sr))
    tt = np.arange(i1 - i0) / sr
    env = np.exp(-tt / 0.025)
    burst = rng.standard_normal(i1 - i0)
    thump = np.sin(2 * np.pi * 60.0 * tt) * np.exp(-tt / 0.05)
    y[i0:i1] += amp * (0.6 * env * burst + thump)

# melody: C4 E4 G4 C5 (0.35 s each), then A4 B4
midi = [60, 64, 67, 72, 69, 71]
for k, m in enumerate(midi):
    f0 = 440.0 * 2 ** ((m - 69) / 12)
    note(f0, 0.1 + 0.35 * k, 0.33)
# final chord: C major (C4 E4 G4 C5), 0.8 s
for m in (60, 64, 67, 72):
    note(440.0 * 2 ** ((m - 69) / 12), 2.15, 0.8, amp=0.12, decay=1.5)
# drums every 0.5 s
for k in range(6):
    drum(0.05 + 0.5 * k)

y = 0.9 * y / np.max(np.abs(y))
pcm = np.round(y * 32767).astype(np.int16)
sf.write(sys.argv[1], pcm, sr, subtype="PCM_16")
PY

for f in "$OUT"/speech_16k.wav "$OUT"/music_22k.wav; do
  soxi "$f" | grep -E 'Sample Rate|Channels|Precision|Duration'
  ls -l "$f"
done
