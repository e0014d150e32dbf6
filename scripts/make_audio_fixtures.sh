#!/usr/bin/env bash
# Regenerates the small audio-decoding fixtures in fixtures/audio/ (used by tests/audio_decode.rs).
#
# Every file is 0.2 s of a synthetic, analytically known signal, so tests can compare the decoded
# samples against the formula:
#   channel 0 (left)  : 0.5 * sin(2*pi*440*t)
#   channel 1 (right) : 0.5 * sin(2*pi*1000*t)
#   channel 2 (3-ch)  : 0.5 * sin(2*pi*660*t)
#   sine1k            : 0.5 * sin(2*pi*1000*t), mono
# The mono downmix of the stereo files is therefore 0.25*sin(2*pi*440*t) + 0.25*sin(2*pi*1000*t).
#
# Requires: ffmpeg (with libmp3lame and libvorbis). `-bitexact` and `-map_metadata -1` keep the
# output byte-for-byte reproducible (no encoder-version tags).
# Usage: scripts/make_audio_fixtures.sh      (run from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=fixtures/audio
mkdir -p "$OUT"

DUR=0.2
L='0.5*sin(2*PI*440*t)'
R='0.5*sin(2*PI*1000*t)'
C='0.5*sin(2*PI*660*t)'

# gen RATE EXPR OUTFILE [ffmpeg output options...]
gen() {
  local rate=$1 expr=$2 out=$3
  shift 3
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "aevalsrc=${expr}:s=${rate}:d=${DUR}" \
    -map_metadata -1 -fflags +bitexact -flags:a +bitexact "$@" "$OUT/$out"
}

# --- WAV, stereo, 16 kHz: every PCM sample format ----------------------------------------------
gen 16000 "$L|$R" stereo_16000_u8.wav  -c:a pcm_u8
gen 16000 "$L|$R" stereo_16000_s16.wav -c:a pcm_s16le
gen 16000 "$L|$R" stereo_16000_s24.wav -c:a pcm_s24le
gen 16000 "$L|$R" stereo_16000_s32.wav -c:a pcm_s32le
gen 16000 "$L|$R" stereo_16000_f32.wav -c:a pcm_f32le

# --- WAV, stereo, 44.1 kHz (resampling source) --------------------------------------------------
gen 44100 "$L|$R" stereo_44100_s16.wav -c:a pcm_s16le
gen 44100 "$L|$R" stereo_44100_f32.wav -c:a pcm_f32le

# --- WAV, 3 channels, 16 kHz --------------------------------------------------------------------
gen 16000 "$L|$R|$C" 3ch_16000_s16.wav -c:a pcm_s16le

# --- WAV, mono pure 1 kHz tone at 44.1 kHz (frequency check after resampling) ------------------
gen 44100 "$R" sine1k_44100_s16.wav -c:a pcm_s16le

# --- compressed formats, stereo, 44.1 kHz -------------------------------------------------------
gen 44100 "$L|$R" stereo_44100.flac -c:a flac -sample_fmt s16
gen 44100 "$L|$R" stereo_44100.mp3  -c:a libmp3lame -b:a 96k
gen 44100 "$L|$R" stereo_44100.ogg  -c:a libvorbis -q:a 4

for f in "$OUT"/*.wav "$OUT"/*.flac "$OUT"/*.mp3 "$OUT"/*.ogg; do
  printf '%-28s %7d bytes  ' "$(basename "$f")" "$(stat -c %s "$f")"
  ffprobe -v error -show_entries stream=codec_name,sample_rate,channels,duration_ts \
    -of csv=p=0 "$f"
done
du -ch "$OUT"/*.wav "$OUT"/*.flac "$OUT"/*.mp3 "$OUT"/*.ogg | tail -1
