#!/usr/bin/env bash
# Scaling of seqrec batch with --jobs on a many-core machine: video
# (models/action on image folders, CNN + LSTM) and speech (models/kws on WAV
# files, mel + speech_embedding CNN + GRU). Inputs are generated here with
# numpy/Pillow (no ffmpeg needed), so it runs on a bare machine with Python.
#
#   scripts/bench_scaling.sh [SEQREC_BIN] [MAX_JOBS]
#
# Prints one line per (bundle, jobs): steps/s and speed-up over 1 job.
set -euo pipefail
BIN=${1:-target/release/seqrec}
MAX=${2:-$(nproc)}
W=${BENCH_DIR:-target/bench/scaling}
mkdir -p "$W"
python3 - "$W" "$MAX" <<'PY'
import sys, os, wave
import numpy as np
from PIL import Image
w, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for k in range(n):
    d = os.path.join(w, f"v{k:02d}")
    os.makedirs(d, exist_ok=True)
    base = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    for i in range(120):
        x0, y0 = (i * 2) % 80, (i * 3 + k) % 60
        Image.fromarray(base[y0:y0 + 240, x0:x0 + 320]).save(os.path.join(d, f"{i:04d}.jpg"), quality=90)
for k in range(2 * n):
    y = (0.1 * rng.standard_normal(16000 * 30)).clip(-1, 1)
    with wave.open(os.path.join(w, f"a{k:02d}.wav"), "wb") as f:
        f.setnchannels(1); f.setsampwidth(2); f.setframerate(16000)
        f.writeframes((y * 32767).astype("<i2").tobytes())
PY
run() {  # bundle jobs inputs...
    local b=$1 j=$2; shift 2
    "$BIN" batch "$@" --bundle "$b" --jobs "$j" --fps 15 --out /dev/null --stats-json "$W/s.json" 2>/dev/null
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); st=s["stages"]; n=st["embeddings"] or st["frames"]; w=s["wall_s"]; print("%.1f %.2f %d" % (n / w, w, n))' "$W/s.json"
}
for b in models/action models/kws; do
    if [ "$b" = models/action ]; then set -- "$W"/v*; else set -- "$W"/a*.wav; fi
    base=""
    for j in 1 2 4 8 16 32; do
        [ "$j" -le "$MAX" ] || break
        r=$(run "$b" "$j" "$@")
        v=${r%% *}
        [ -n "$base" ] || base=$v
        echo "$b jobs=$j: $(echo "$r" | cut -d' ' -f1) steps/s ($(echo "$r" | cut -d' ' -f3) steps in $(echo "$r" | cut -d' ' -f2) s), x$(python3 -c "print(round($v/$base,2))")"
    done
done
