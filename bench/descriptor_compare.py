#!/usr/bin/env python3
"""dlib's face descriptor on every golden chip, checked against the golden
descriptor_from_chip values, with facelike beside it: `bench/bench.py descriptor --chips all`
(add --reference-only for dlib alone; `--limit N` is `--chips N`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

args = ["--chips" if a == "--limit" else a for a in sys.argv[1:]]
bench.main(["descriptor", "--chips", "all", *args])
