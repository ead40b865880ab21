#!/usr/bin/env bash
# Reproduces facelike-eval's figures: LFW View 2 on the shared dlib descriptors (plain
# protocol, ROC picture, 10-fold adapter evaluation) and the ORL/Yale domain-shift check.
# Output: bench/lfw_eval.md records what this printed; pictures go to target/lfw-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FACELIKE_SHARED:=$(pwd)/../shared}"
export FACELIKE_SHARED
cargo build --release -p facelike-eval --examples
./target/release/examples/lfw_benchmark --out target/lfw-bench "$@"
./target/release/examples/domain_shift
