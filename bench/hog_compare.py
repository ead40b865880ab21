#!/usr/bin/env python3
"""Time dlib's HOG face detector and facelike's on the same images.

dlib: `detector.run(image, upsample, 0.0)`, the call face_recognition.face_locations(img, 1,
"hog") makes, on an image loaded with face_recognition.load_image_file. For each image the
median and minimum wall time and the median process CPU time over several runs (after one
warm-up) are printed, with the detections so the two can be compared by eye.

With --rust, the same is printed for facelike, through
`cargo run --release -p facelike --example hog_time`, once on one thread
(RAYON_NUM_THREADS=1; dlib's detector always uses one thread) and once on all threads.
The criterion benchmark `cargo bench -p facelike --bench hog` times the same images.

On a busy machine wall times are inflated; CPU time is the steadier figure.

Usage: python3 bench/hog_compare.py [--runs 9] [--shared PATH] [--rust]
Needs dlib (the dlib-bin wheel) and face_recognition.
"""
import argparse
import os
import statistics
import subprocess
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

HEADER = f"{'image':<40} {'up':>2} {'size':>10} {'median ms':>10} {'min ms':>8} {'cpu ms':>8}  detections"


def shared_dir(arg):
    if arg:
        return Path(arg)
    if os.environ.get("FACELIKE_SHARED"):
        return Path(os.environ["FACELIKE_SHARED"])
    return Path(__file__).resolve().parent.parent.parent / "shared"


def time_dlib(data, runs):
    detector = dlib.get_frontal_face_detector()
    print(f"dlib {dlib.__version__}, AVX={dlib.USE_AVX_INSTRUCTIONS}, 1 thread, {runs} runs each")
    print(HEADER)
    for rel, upsamples in IMAGES:
        img = face_recognition.load_image_file(str(data / rel))
        for up in upsamples:
            detector.run(img, up, 0.0)  # warm-up
            wall, cpu = [], []
            for _ in range(runs):
                t, c = time.perf_counter(), time.process_time()
                rects, scores, idx = detector.run(img, up, 0.0)
                wall.append((time.perf_counter() - t) * 1e3)
                cpu.append((time.process_time() - c) * 1e3)
            dets = [
                ([r.left(), r.top(), r.right(), r.bottom()], round(s, 5), i)
                for r, s, i in zip(rects, scores, idx)
            ]
            size = f"{img.shape[1]}x{img.shape[0]}"
            print(
                f"{rel.rsplit('/', 1)[-1]:<40} {up:>2} {size:>10} "
                f"{statistics.median(wall):>10.1f} {min(wall):>8.1f} "
                f"{statistics.median(cpu):>8.1f}  {dets}"
            )


def time_rust(data, runs, threads):
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    else:
        env.pop("RAYON_NUM_THREADS", None)
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "facelike", "--example", "hog_time"],
        cwd=repo, check=True,
    )
    exe = repo / "target" / "release" / "examples" / "hog_time"
    first = True
    for rel, upsamples in IMAGES:
        for up in upsamples:
            out = subprocess.run(
                [str(exe), str(runs), str(up), str(data / rel)],
                cwd=repo, env=env, check=True, capture_output=True, text=True,
            ).stdout.splitlines()
            if first:
                print(out[0])
                print(HEADER)
                first = False
            print(out[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="timed runs per image (after 1 warm-up)")
    ap.add_argument("--shared", help="the shared/ folder (default: $FACELIKE_SHARED or ../shared)")
    ap.add_argument("--rust", action="store_true", help="also time facelike (1 thread and all)")
    args = ap.parse_args()
    data = shared_dir(args.shared) / "data"
    time_dlib(data, args.runs)
    if args.rust:
        print()
        time_rust(data, args.runs, 1)
        print()
        time_rust(data, args.runs, None)


if __name__ == "__main__":
    main()
