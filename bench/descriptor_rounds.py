#!/usr/bin/env python3
"""Descriptor speed in interleaved rounds, facelike against dlib-bin (and with
--openblas-python PY, dlib built with OpenBLAS): `bench/bench.py descriptor`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

bench.main(["descriptor", *sys.argv[1:]])
