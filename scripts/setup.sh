#!/usr/bin/env bash
# Installs what seqrec needs on a Debian/Ubuntu machine with Rust and Python 3:
#   - system packages (pkg-config and libasound2-dev to build cpal, libclang-dev to build the
#     camera bindings (nokhwa/v4l), ffmpeg to read video, the OpenGL/EGL, xkbcommon and X
#     cursor/randr/input libraries `live --window` loads at run time; others with --test),
#   - ONNX Runtime 1.31.1, unpacked from the onnxruntime PyPI wheel into .ort/ (no other download).
# Idempotent: installs only what is missing. As root it uses apt-get; otherwise it
# prints the exact command to run and stops.
#
# Usage: scripts/setup.sh [--test]     (--test adds what the test suite needs)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(pkg-config libasound2-dev libclang-dev ffmpeg
  libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6)
if [[ "${1:-}" == "--test" ]]; then
  # pulseaudio & co: the live microphone test; xvfb: the window tests (Mesa software GL);
  # nats-server: the cluster tests (each starts its own 3-node cluster, scripts/nats-cluster.sh).
  want+=(pulseaudio pulseaudio-utils libasound2-plugins xvfb nats-server)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "       run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi

lib=.ort/onnxruntime/capi/libonnxruntime.so.1.31.1
if [[ ! -f $lib ]]; then
  py=$(command -v python3 || true)
  if [[ -z $py ]]; then
    echo "setup: python3 not found; it is needed once to fetch ONNX Runtime from PyPI" >&2
    exit 1
  fi
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    else
      echo "setup: pip is missing; run: sudo apt-get install -y python3-pip" >&2
      exit 1
    fi
  fi
  echo "setup: unpacking ONNX Runtime 1.31.1 from the PyPI wheel into .ort/" >&2
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --target .ort onnxruntime==1.31.1 \
    || "$py" -m pip install --quiet --disable-pip-version-check --break-system-packages --no-deps --target .ort onnxruntime==1.31.1
fi
[[ -f $lib ]] || { echo "setup: $lib is still missing" >&2; exit 1; }
