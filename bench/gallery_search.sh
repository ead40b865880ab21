#!/usr/bin/env bash
# Gallery search benchmark (crates/facelike-gallery/benches/search.rs):
# real LFW View-2 descriptors, then N synthetic dlib-like descriptors fitted to LFW's
# between/within-identity spread. Reports exact top-10 latency, HNSW build time and memory,
# HNSW latency and recall@10 against exact search.
#
#   bench/gallery_search.sh            # 1,000,000 synthetic faces, 200 queries, 2 threads
#   N=100000 bench/gallery_search.sh   # quicker
#
# Needs the shared folder (FACELIKE_SHARED, default ../shared beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FACELIKE_SHARED:=$(cd .. && pwd)/shared}"
export FACELIKE_SHARED
N="${N:-1000000}"
QUERIES="${QUERIES:-200}"
THREADS="${THREADS:-2}"
EF="${EF:-96,128,256,384,512,768}"
M="${M:-16}"
EFC="${EFC:-128}"
cargo bench -p facelike-gallery --bench search -- \
  --n "$N" --queries "$QUERIES" --threads "$THREADS" --ef "$EF" --m "$M" --efc "$EFC"
