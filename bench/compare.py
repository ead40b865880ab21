#!/usr/bin/env python3
"""Every stage, facelike against the Python reference: `bench/bench.py all` (kept as the
name README and bench/compare.sh use). Options: --runs, --rounds, --threads, --shared,
--markdown, --facelike, --openblas-python (see `bench/bench.py all --help`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

bench.main(["all", *sys.argv[1:]])
