#!/usr/bin/env bash
# The one-command benchmark: facelike against the Python reference (dlib-bin + face_recognition),
# every stage side by side (`bench/bench.py all`). Creates bench/.venv with the reference if it
# is missing, builds facelike, fetches the models, then runs the harness; extra arguments go to
# it (e.g. --runs 5 --rounds 3 --markdown). With --openblas first, dlib built from source against
# OpenBLAS (bench/build_dlib_openblas.sh, run if bench/.venv-openblas is missing) becomes a
# second reference column.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=()
if [ "${1:-}" = "--openblas" ]; then
  shift
  [ -x bench/.venv-openblas/bin/python ] || bench/build_dlib_openblas.sh
  EXTRA=(--openblas)
fi
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q --disable-pip-version-check dlib-bin==20.0.1.post1 face_recognition_models==0.3.0 numpy pillow
  # face_recognition's own dependency on "dlib" would build dlib from source; dlib-bin provides it.
  bench/.venv/bin/pip install -q --disable-pip-version-check --no-deps face_recognition==1.3.0 Click
fi
cargo build --release --bin facelike
F="${CARGO_TARGET_DIR:-target}/release/facelike"
"$F" models fetch >/dev/null
exec bench/.venv/bin/python bench/bench.py all --facelike "$F" "${EXTRA[@]}" "$@"
