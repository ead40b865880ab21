#!/usr/bin/env python3
"""Time dlib's HOG face detector on the images the Rust bench uses.

The Rust side: `cargo bench -p facelike --bench hog` (add RAYON_NUM_THREADS=1 for one
thread; dlib's detector always runs on one thread). This script prints dlib's median and
minimum over several runs of `detector.run(image, upsample, 0.0)`, the call
face_recognition.face_locations(img, 1, "hog") makes, plus the detections so the two can be
compared by eye.

Usage: python3 bench/hog_compare.py [--runs 9] [--shared PATH]
Needs dlib (the dlib-bin wheel) and face_recognition.
"""
import argparse
import os
import statistics
import time
from pathlib import Path

import dlib
import face_recognition

# Same list, same order as crates/facelike/benches/hog.rs.
IMAGES = [
    ("face_recognition/examples/obama-480p.jpg", [1, 0]),
    ("face_recognition/examples/obama-720p.jpg", [1]),
    ("face_recognition/tests/test_images/obama.jpg", [1]),
]


def shared_dir(arg):
    if arg:
        return Path(arg)
    if os.environ.get("FACELIKE_SHARED"):
        return Path(os.environ["FACELIKE_SHARED"])
    return Path(__file__).resolve().parent.parent.parent / "shared"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="timed runs per image (after 1 warm-up)")
    ap.add_argument("--shared", help="the shared/ folder (default: $FACELIKE_SHARED or ../shared)")
    args = ap.parse_args()
    data = shared_dir(args.shared) / "data"
    detector = dlib.get_frontal_face_detector()
    print(f"dlib {dlib.__version__}, AVX={dlib.USE_AVX_INSTRUCTIONS}, {args.runs} runs each")
    print(f"{'image':<40} {'up':>2} {'size':>10} {'median ms':>10} {'min ms':>8}  detections")
    for rel, upsamples in IMAGES:
        img = face_recognition.load_image_file(str(data / rel))
        for up in upsamples:
            detector.run(img, up, 0.0)  # warm-up
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                rects, scores, idx = detector.run(img, up, 0.0)
                times.append((time.perf_counter() - t) * 1e3)
            dets = [
                ((r.left(), r.top(), r.right(), r.bottom()), round(s, 5), i)
                for r, s, i in zip(rects, scores, idx)
            ]
            size = f"{img.shape[1]}x{img.shape[0]}"
            print(
                f"{rel.rsplit('/', 1)[-1]:<40} {up:>2} {size:>10} "
                f"{statistics.median(times):>10.1f} {min(times):>8.1f}  {dets}"
            )


if __name__ == "__main__":
    main()
