#!/usr/bin/env bash
# LFW View 2 with facelike's own pipeline, one row per configuration (README table).
# Needs ../shared (or FACELIKE_SHARED). About 2 min per row on 2 cores, 15 min with 10 jitters.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FACELIKE_SHARED:=$(cd .. && pwd)/shared}"
cargo build --release --bin facelike
F=target/release/facelike
P=(eval pairs --pairs "$FACELIKE_SHARED/data/lfw_pairs/pairs.txt" --root "$FACELIKE_SHARED/data/lfw_deepfunneled" --json)
row() { echo "== $*"; "$F" "${P[@]}" "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: d[k] for k in ["accuracy_mean","accuracy_std","auc","eer","tar_at_far_1e-3","threshold","undetected"]}, "at 0.6:", d["fixed_threshold"]["accuracy"])'; }
row
row --fallback-rect 67,80,175,187
row --cnn-fallback --roc target/lfw_roc.png
row --cnn-fallback --landmarks 68
row --cnn-fallback --jitters 10
row --cnn-fallback --jitters 10 --landmarks 68
