#!/usr/bin/env python3
"""facelike's t-SNE against openTSNE and scikit-learn on a gallery's descriptors:
`bench/bench.py tsne --gallery G` (needs openTSNE and scikit-learn in bench/.venv)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

bench.main(["tsne", *sys.argv[1:]])
