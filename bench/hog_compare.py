#!/usr/bin/env python3
"""dlib's HOG detector, and with --rust facelike's on 1 thread and on all threads:
`bench/bench.py hog` (which always includes facelike; without --rust this passes
--reference-only, as this script timed dlib alone)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

args = sys.argv[1:]
bench.main(["hog", *[a for a in args if a != "--rust"], *([] if "--rust" in args else ["--reference-only"])])
