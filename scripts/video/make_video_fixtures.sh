#!/usr/bin/env bash
# Makes the small video fixtures in fixtures/video/ with FFmpeg's lavfi sources (nothing is
# downloaded; license: made here, MIT). Deterministic for a given FFmpeg build.
#   scripts/video/make_video_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=fixtures/video
mkdir -p "$out/frames"
ff=(ffmpeg -hide_banner -v error -y -nostdin)
src="testsrc2=size=160x120:rate=25"

# 1 s H.264 in MP4 (25 fps, 25 frames).
"${ff[@]}" -f lavfi -i "$src:duration=1" -c:v libx264 -preset veryfast -crf 32 -pix_fmt yuv420p \
  -g 25 -bf 0 -flags +bitexact -fflags +bitexact "$out/testsrc2_160x120_25fps.mp4"
# 1 s VP9 in WebM (15 fps, 15 frames), mandelbrot.
"${ff[@]}" -f lavfi -i "mandelbrot=size=128x96:rate=15" -t 1 -c:v libvpx-vp9 -b:v 0 -crf 45 \
  -deadline realtime -cpu-used 8 -pix_fmt yuv420p -flags +bitexact "$out/mandelbrot_128x96_15fps.webm"
# 0.8 s MJPEG in AVI (10 fps, 8 frames).
"${ff[@]}" -f lavfi -i "testsrc=size=96x64:rate=10:duration=0.8" -c:v mjpeg -q:v 12 -pix_fmt yuvj420p \
  -flags +bitexact "$out/testsrc_96x64_10fps.avi"
# 1.2 s H.264 in MKV (30 fps, 36 frames), odd size 98x62 (4:2:0 needs even).
"${ff[@]}" -f lavfi -i "testsrc2=size=98x62:rate=30:duration=1.2" -c:v libx264 -preset veryfast -crf 34 \
  -pix_fmt yuv420p -bf 0 -flags +bitexact "$out/testsrc2_98x62_30fps.mkv"
# Audio only: 0.5 s of a 440 Hz sine in M4A (AAC).
"${ff[@]}" -f lavfi -i "sine=frequency=440:duration=0.5" -c:a aac -b:a 32k "$out/audio_only.m4a"
# Corrupt: the MP4 cut to half its length (its moov index is at the end, so it is lost) ...
mp4="$out/testsrc2_160x120_25fps.mp4"
head -c $(( $(stat -c %s "$mp4") / 2 )) "$mp4" > "$out/truncated.mp4"
# ... and 4 KiB of pseudo-random bytes named .mp4 (fixed seed).
python3 -c "import random; r = random.Random(7); open('$out/random_bytes.mp4', 'wb').write(bytes(r.randrange(256) for _ in range(4096)))"
# A folder of 4 frames (80x60): two PNG, one JPEG, one BMP; names sort in frame order.
"${ff[@]}" -f lavfi -i "testsrc2=size=80x60:rate=4:duration=1" -frames:v 4 "$out/frames/f%02d.png"
"${ff[@]}" -i "$out/frames/f03.png" -q:v 3 "$out/frames/f03.jpg"
"${ff[@]}" -i "$out/frames/f04.png" "$out/frames/f04.bmp"
rm "$out/frames/f03.png" "$out/frames/f04.png"
du -ch "$out" | tail -1
