#!/usr/bin/env bash
# LFW View 2 with facelike's own pipeline, one row per configuration (README table):
# `bench/bench.py lfw-pipeline` (--rows N for the first N only). About 2 min per row on 2
# cores, 15 min with 10 jitters.
exec python3 "$(dirname "$0")/bench.py" lfw-pipeline "$@"
