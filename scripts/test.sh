#!/usr/bin/env bash
# Sets up what is missing and runs the whole test suite (what CI runs),
# including the live microphone test on a private PulseAudio virtual microphone and the
# live window tests on a private Xvfb display, and the cluster tests on local NATS clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/vmic.sh start >/dev/null
# A private X display for the `live --window` tests: the first free :N from :90.
n=90
while [[ -e /tmp/.X$n-lock || -e /tmp/.X11-unix/X$n ]]; do n=$((n + 1)); done
Xvfb ":$n" -screen 0 1280x1024x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do [[ -e /tmp/.X11-unix/X$n ]] && break; sleep 0.1; done
[[ -e /tmp/.X11-unix/X$n ]] || { echo "test.sh: Xvfb :$n did not start" >&2; exit 1; }
trap 'scripts/vmic.sh stop >/dev/null 2>&1 || true; kill $xvfb_pid 2>/dev/null || true' EXIT
export SEQREC_VMIC_ENV=$PWD/.vmic/env SEQREC_REQUIRE_VMIC=1
export DISPLAY=:$n SEQREC_REQUIRE_DISPLAY=1
# tests/cluster.rs starts local 3-node nats-server clusters; fail, do not skip, without one.
export SEQREC_REQUIRE_NATS=1
cargo test --all-targets "$@"
cargo test --doc "$@"
