#!/usr/bin/env bash
# Cluster benchmark: `seqrec submit` with 1, 2, 3 workers against `seqrec batch` on the
# same files, and the takeover time of a live stream whose owner is kill -9'd.
# Starts its own 3-node nats-server cluster (scripts/nats-cluster.sh).
#   scripts/bench_cluster.sh [FILES=48] [KILLS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test >/dev/null
cargo build --release --quiet --bin seqrec --example cluster_bench
target/release/examples/cluster_bench target/release/seqrec "${1:-48}" "${2:-5}"
