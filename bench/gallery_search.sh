#!/usr/bin/env bash
# Gallery search benchmark (crates/facelike-gallery/benches/search.rs):
# real LFW View-2 descriptors, then N synthetic dlib-like descriptors fitted to LFW's
# between/within-identity spread. Reports exact top-10 latency, IVF and (with HNSW=1) HNSW
# build time, memory, latency and recall@10 against exact search, and store throughput.
#
#   bench/gallery_search.sh                 # 1,000,000 faces, exact + IVF (~3 min)
#   HNSW=1 bench/gallery_search.sh          # also the HNSW graph (~12 min more at 1M)
#   N=100000 HNSW=1 bench/gallery_search.sh # quicker
#
# Needs the shared folder (FACELIKE_SHARED, default ../shared beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FACELIKE_SHARED:=$(cd .. && pwd)/shared}"
export FACELIKE_SHARED
N="${N:-1000000}"
QUERIES="${QUERIES:-200}"
THREADS="${THREADS:-2}"
NPROBE="${NPROBE:-0,384,512,768}"
EF="${EF:-128,256,512,1024}"
M="${M:-16}"
EFC="${EFC:-128}"
STORE_N="${STORE_N:-200000}"
extra=()
[ "${HNSW:-0}" = 1 ] || extra+=(--no-ann)
cargo bench -p facelike-gallery --bench search -- \
  --n "$N" --queries "$QUERIES" --threads "$THREADS" --nprobe "$NPROBE" \
  --ef "$EF" --m "$M" --efc "$EFC" --store-n "$STORE_N" "${extra[@]}"
