#!/usr/bin/env python3
"""Time dlib's face descriptor on the golden 150x150 chips, one face at a time.

Reference numbers for facelike's ResNet (crates/facelike/benches/descriptor.rs): this calls
dlib's `face_recognition_model_v1.compute_face_descriptor(chip)` (the overload that takes an
aligned 150x150 RGB chip, so no detection or alignment is timed) on every chip PNG under
shared/golden/, and prints the median, mean and best seconds per face, plus faces/s.

    python3 bench/descriptor_compare.py [--shared PATH] [--models PATH] [--rounds N] [--limit N]

It also checks the descriptors against the golden `descriptor_from_chip` values, so a wrong
model or chip set cannot pass silently. The machine is shared: run it when nothing else is
running, and compare with `cargo bench -p facelike --bench descriptor` run the same way.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
MODEL = "dlib_face_recognition_resnet_model_v1.dat"


def default_models_dir() -> Path:
    if os.environ.get("FACELIKE_MODELS"):
        return Path(os.environ["FACELIKE_MODELS"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "facelike" / "models"


def default_shared_dir() -> Path:
    if os.environ.get("FACELIKE_SHARED"):
        return Path(os.environ["FACELIKE_SHARED"])
    return REPO.parent / "shared"


def golden_faces(shared: Path):
    """(chip path, golden descriptor) for every face of the two golden files."""
    faces = []
    for name in ("face_recognition.json", "lfw_sample.json"):
        data = json.loads((shared / "golden" / name).read_text())
        for image in data["images"]:
            for face in image["faces"]:
                faces.append((shared / "golden" / face["chip"], face["descriptor_from_chip"]))
    return faces


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=default_shared_dir())
    ap.add_argument("--models", type=Path, default=default_models_dir())
    ap.add_argument("--rounds", type=int, default=3, help="passes over all chips (default 3)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N chips")
    args = ap.parse_args()

    model_path = args.models / MODEL
    if not model_path.is_file():
        sys.exit(f"{model_path} is missing: run `facelike models fetch` or pass --models")
    if not (args.shared / "golden").is_dir():
        sys.exit(f"no golden/ folder in {args.shared}: pass --shared or set FACELIKE_SHARED")

    faces = golden_faces(args.shared)
    if args.limit:
        faces = faces[: args.limit]
    chips = [np.asarray(Image.open(p).convert("RGB")) for p, _ in faces]
    encoder = dlib.face_recognition_model_v1(str(model_path))

    # Warm-up, and a check that this is the reference the golden numbers came from.
    worst = 0.0
    for chip, (_, want) in zip(chips, faces):
        got = np.asarray(encoder.compute_face_descriptor(chip))
        worst = max(worst, float(np.abs(got - np.asarray(want)).max()))
    if worst > 1e-5:
        sys.exit(f"dlib's descriptors differ from the golden ones by {worst:g}: wrong model?")

    times = []
    for _ in range(args.rounds):
        for chip in chips:
            t = time.perf_counter()
            encoder.compute_face_descriptor(chip)
            times.append(time.perf_counter() - t)

    median = statistics.median(times)
    print(f"dlib {dlib.__version__} compute_face_descriptor(150x150 chip), one face at a time")
    print(f"  faces timed:      {len(times)} ({len(chips)} chips x {args.rounds} rounds)")
    print(f"  DLIB_USE_BLAS:    {getattr(dlib, 'DLIB_USE_BLAS', 'unknown')}")
    print(f"  median s/face:    {median:.5f}")
    print(f"  mean s/face:      {statistics.fmean(times):.5f}")
    print(f"  best s/face:      {min(times):.5f}")
    print(f"  faces/s (median): {1.0 / median:.1f}")
    print(f"  max |diff| vs golden descriptor_from_chip: {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
