#!/usr/bin/env bash
# Sets up what is missing and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo test --all-targets "$@"
