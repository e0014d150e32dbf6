#!/usr/bin/env bash
# Sets up what is missing and runs the whole test suite (what CI runs),
# including the live microphone test on a private PulseAudio virtual microphone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/vmic.sh start >/dev/null
trap 'scripts/vmic.sh stop >/dev/null 2>&1 || true' EXIT
export SEQREC_VMIC_ENV=$PWD/.vmic/env SEQREC_REQUIRE_VMIC=1
cargo test --all-targets "$@"
cargo test --doc "$@"
