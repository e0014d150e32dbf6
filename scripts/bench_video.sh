#!/usr/bin/env bash
# Video throughput, seqrec vs the Python loop (scripts/video/python_loop.py),
# side by side on the same clip, same models, same decimation; medians of
# RUNS runs each, then the live check (real-time FFmpeg source, no
# decimation: every frame through the CNN at 224x224).
#
#   scripts/bench_video.sh [RUNS]       # default 5
#
# Needs: a release build (cargo build --release), ffmpeg, pyenv python3 with
# numpy, onnxruntime, Pillow. Prints one line per run and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BUNDLE=models/action
BIN=target/release/seqrec
OUT=target/bench/video
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release --quiet

# A 20 s 640x360 30 fps H.264 clip with motion (FFmpeg's testsrc2).
CLIP=$OUT/testsrc2_640x360_30fps_20s.mp4
[ -f "$CLIP" ] || ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=30 -t 20 \
    -c:v libx264 -preset fast -pix_fmt yuv420p "$CLIP"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "clip: $CLIP; bundle: $BUNDLE; $(nproc) cores"
: >"$OUT/seqrec.txt"; for b in 1 4 16; do : >"$OUT/python_b$b.txt"; done
now() { date +%s.%N; }
# Whole processes, start to exit (imports, model loading, ffprobe, decoding,
# CNN, head): frames through the CNN / process wall time.
for i in $(seq "$RUNS"); do
    t0=$(now)
    "$BIN" batch "$CLIP" --bundle "$BUNDLE" --out /dev/null --stats-json "$OUT/stats.json" 2>/dev/null
    t1=$(now)
    n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"]["embeddings"])' "$OUT/stats.json")
    echo "$(echo "$n / ($t1 - $t0)" | bc -l) $(echo "$t1 - $t0" | bc -l) $n" >>"$OUT/seqrec.txt"
    for b in 1 4 16; do
        t0=$(now)
        n=$(python3 scripts/video/python_loop.py "$CLIP" --bundle "$BUNDLE" --batch $b --threads "$(nproc)" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["frames_run"])')
        t1=$(now)
        f=$OUT/python_b$b.txt
        echo "$(echo "$n / ($t1 - $t0)" | bc -l) $(echo "$t1 - $t0" | bc -l) $n" >>"$f"
    done
    printf 'run %d: seqrec %.1f fps; python loop batch 1 %.1f, batch 4 %.1f, batch 16 %.1f fps\n' "$i" \
        "$(tail -1 "$OUT/seqrec.txt" | cut -d' ' -f1)" "$(tail -1 "$OUT/python_b1.txt" | cut -d' ' -f1)" \
        "$(tail -1 "$OUT/python_b4.txt" | cut -d' ' -f1)" "$(tail -1 "$OUT/python_b16.txt" | cut -d' ' -f1)"
done
S=$(cut -d' ' -f1 "$OUT/seqrec.txt" | median)
echo "frames through the CNN: seqrec $(tail -1 "$OUT/seqrec.txt" | cut -d' ' -f3), python $(tail -1 "$OUT/python_b1.txt" | cut -d' ' -f3)"
best=0
for b in 1 4 16; do
    P=$(cut -d' ' -f1 "$OUT/python_b$b.txt" | median)
    printf 'median frames/s (whole process): seqrec %.1f, python loop batch %d %.1f: ratio %.2fx\n' "$S" "$b" "$P" "$(echo "$S / $P" | bc -l)"
    best=$(echo "if ($P > $best) $P else $best" | bc -l)
done
printf 'ratio seqrec / best python loop: %.2fx  (goal >= 1.5x)\n' "$(echo "$S / $best" | bc -l)"
"$BIN" batch "$CLIP" --bundle "$BUNDLE" --out /dev/null --stats 2>&1 | grep -A2 '^stats'

# Live: a real-time 30 fps 640x360 FFmpeg source for 10 s, every frame
# through the CNN (the bundle's fps decimation removed), batch 1.
LIVE=$OUT/live_bundle
rm -rf "$LIVE"; cp -r "$BUNDLE" "$LIVE"
sed -i '/^fps *=/d' "$LIVE/bundle.toml"
"$BIN" live --bundle "$LIVE" --format jsonl --stats-json "$OUT/live.json" \
    --ffmpeg-input "-re -f lavfi -i testsrc2=size=640x360:rate=30:duration=10" >/dev/null 2>"$OUT/live.err" || true
tail -1 "$OUT/live.err"
python3 - "$OUT/live.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
st = s["stages"]
print(f"live: {st['embeddings']} frames through the CNN in {s['wall_s']:.1f} s = "
      f"{st['embeddings'] / s['wall_s']:.1f} fps, dropped {s['dropped_chunks']} (goal >= 30 fps, 0 dropped); "
      f"CNN {1e3 * st['embed_s'] / max(1, st['embeddings']):.1f} ms/frame, head {1e3 * st['sequence_s'] / max(1, st['embeddings']):.2f} ms/frame")
if s.get("latency_ms"):
    print("latency (frame arrival -> event) ms:", s["latency_ms"])
EOF
