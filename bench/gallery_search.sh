#!/usr/bin/env bash
# Gallery search benchmark (crates/facelike-gallery/benches/search.rs): `bench/bench.py gallery`.
# The environment variables N, QUERIES, THREADS, NPROBE, EF, M, EFC, STORE_N and HNSW=1 set
# its defaults, as before:
#   bench/gallery_search.sh                 # 1,000,000 faces, exact + IVF (~3 min)
#   HNSW=1 bench/gallery_search.sh          # also the HNSW graph (~12 min more at 1M)
#   N=100000 HNSW=1 bench/gallery_search.sh # quicker
exec python3 "$(dirname "$0")/bench.py" gallery "$@"
