#!/usr/bin/env bash
# PostgreSQL + pgvector gallery benchmark (crates/facelike-pg/benches/pg.rs): ingest of N
# synthetic dlib-like descriptors through binary COPY, HNSW build, exact and HNSW search
# p50/p99 with recall@10, beside the embedded store's exact and IVF figures on the same
# descriptors. Starts a server with scripts/pg-dev.sh unless FACELIKE_TEST_PG_URL is set.
#   bench/pg_bench.sh                       # 100,000 faces (~2 min on 2 cores)
#   N=1000000 bench/pg_bench.sh             # 1M faces (~20 min; HNSW build dominates)
#   N=100000 EF=100,400 M=16 EFC=128 bench/pg_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${FACELIKE_TEST_PG_URL:-}" ]; then
  FACELIKE_TEST_PG_URL="$(scripts/pg-dev.sh start)"
  export FACELIKE_TEST_PG_URL
fi
export FACELIKE_SHARED="${FACELIKE_SHARED:-$PWD/../shared}"
exec cargo bench -p facelike-pg --bench pg -- --n "${N:-100000}" --queries "${QUERIES:-100}" \
  --exact-queries "${EXACT_QUERIES:-30}" --ef "${EF:-40,100,200,400,800}" --m "${M:-16}" \
  --efc "${EFC:-64}" "$@"
