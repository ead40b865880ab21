#!/usr/bin/env bash
# facelike-eval's figures (LFW View 2 on the shared dlib descriptors, adapter, ORL/Yale domain
# shift; recorded in bench/lfw_eval.md): `bench/bench.py lfw-eval`. Extra arguments go to
# lfw_benchmark; pictures go to $CARGO_TARGET_DIR (or target)/lfw-bench/.
exec python3 "$(dirname "$0")/bench.py" lfw-eval "$@"
