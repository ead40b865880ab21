#!/usr/bin/env python3
"""facelike against the Python reference (dlib-bin 20.0.1 + face_recognition 1.3.0), side by
side in one run, on the same images and the same machine.

For every stage it times the reference in this process (median of --runs calls after one
warm-up) and runs `facelike bench` (the same medians, measured in-process in Rust) right
after, then prints one table: stage, reference time, facelike time, ratio.

    bench/compare.sh            # creates bench/.venv with the reference if missing, then runs this
    python3 bench/compare.py [--runs 5] [--threads N] [--shared PATH] [--markdown]

Needs ../shared (or FACELIKE_SHARED) for the photos and golden chips, and the models
(`facelike models fetch`). facelike runs on all cores unless --threads is given; dlib's
calls are single-threaded (dlib-bin is built without BLAS or CUDA).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def shared_dir(arg):
    d = Path(arg or os.environ.get("FACELIKE_SHARED") or REPO.parent / "shared")
    if not (d / "data").is_dir():
        sys.exit(f"shared data not found at {d}: set FACELIKE_SHARED or pass --shared")
    return d


def models_dir():
    if os.environ.get("FACELIKE_MODELS"):
        return Path(os.environ["FACELIKE_MODELS"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facelike" / "models"


def median_secs(runs, f):
    f()
    ts = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def median_per_call(runs, calls, f):
    """Median over `runs` loops of `calls` calls, per call: for sub-millisecond stages, where
    one call is too short to time on its own."""
    return median_secs(runs, lambda: [f() for _ in range(calls)]) / calls


def load(p):
    return np.asarray(Image.open(p).convert("RGB"))


def reference(runs, models, chips, photos, folder):
    """Times the Python reference in this process; returns its figures."""
    ref = {}

    def load_all():
        return (dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
                dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
                dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
                dlib.get_frontal_face_detector(),
                dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat")))

    # Median of 3 loads after one: the files are then in the page cache, as for facelike.
    ref["load_all_models_s"] = median_secs(3, load_all)
    net, sp5, _, hog, cnn = load_all()

    chip_arrays = [load(c) for c in chips]
    for arr in chip_arrays:  # one pass over the chips to warm up, as facelike bench does
        net.compute_face_descriptor(arr)
    i = [0]

    def one():
        net.compute_face_descriptor(chip_arrays[i[0] % len(chip_arrays)])
        i[0] += 1

    ref["descriptor_single_s"] = median_secs(runs * len(chip_arrays), one)
    batch = [chip_arrays[k % len(chip_arrays)] for k in range(32)]
    ref["descriptor_batch32_faces_per_s"] = 32 / median_secs(max(1, runs // 2), lambda: net.compute_face_descriptor(batch))
    ref["detect"] = []
    for p in photos:
        img = load(p)
        rect = hog(img, 1)[0] if len(hog(img, 1)) else dlib.rectangle(0, 0, 99, 99)
        shape = sp5(img, rect)
        ref["detect"].append({
            "image": p.name,
            "hog_up1_s": median_secs(runs, lambda: hog(img, 1)),
            "cnn_up0_s": median_secs(max(1, runs // 2), lambda: cnn(img, 0)),
            "cnn_up1_s": median_secs(max(1, min(runs // 2, 2)), lambda: cnn(img, 1)),
            "landmarks5_s": median_per_call(runs, 500, lambda: sp5(img, rect)),
            "chip_s": median_per_call(runs, 500, lambda: dlib.get_face_chip(img, shape, 150, 0.25)),
        })
    # End to end as face_recognition does it (one process, its defaults).
    import face_recognition
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    t = time.perf_counter()
    nfaces = sum(len(face_recognition.face_encodings(face_recognition.load_image_file(f))) for f in files)
    secs = time.perf_counter() - t
    ref["encode_folder"] = {"images": len(files), "faces": nfaces, "seconds": secs, "images_per_s": len(files) / secs}
    ref["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    return ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="RAYON_NUM_THREADS for facelike (0 = all cores)")
    ap.add_argument("--shared")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--facelike", default=str(REPO / "target" / "release" / "facelike"))
    ap.add_argument("--openblas-python", help="a Python whose dlib was built from source against OpenBLAS "
                    "(bench/build_dlib_openblas.sh): its times become a second reference column")
    ap.add_argument("--reference-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    shared = shared_dir(a.shared)
    models = models_dir()
    data = shared / "data"
    chips = sorted((shared / "golden" / "chips_face_recognition").glob("*.png"))[:8]
    photos = [data / "face_recognition/examples/obama-480p.jpg", data / "face_recognition/examples/two_people.jpg"]
    folder = data / "face_recognition/examples/knn_examples"

    if a.reference_only:
        ref = reference(a.runs, models, chips, photos, folder)
        ref["dlib_version"] = dlib.__version__
        ref["dlib_blas"] = bool(getattr(dlib, "DLIB_USE_BLAS", False))
        print(json.dumps(ref))
        return
    ref = reference(a.runs, models, chips, photos, folder)
    blas = None
    if a.openblas_python:
        out = subprocess.run([a.openblas_python, __file__, "--reference-only", "--runs", str(a.runs),
                              "--shared", str(shared)], check=True, capture_output=True, text=True).stdout
        blas = json.loads(out)

    cmd = [a.facelike, "bench", "--runs", str(a.runs), "--folder", str(folder)]
    for c in chips:
        cmd += ["--chip", str(c)]
    for p in photos:
        cmd += ["--detect", str(p)]
    env = dict(os.environ)
    if a.threads:
        env["RAYON_NUM_THREADS"] = str(a.threads)
    ours = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)

    def rows_of(r):
        rows = [
            ("load all 5 models", r["load_all_models_s"], "s"),
            ("descriptor, one face (chip→128-D)", r["descriptor_single_s"], "s"),
            ("descriptor, batch of 32", r["descriptor_batch32_faces_per_s"], "faces/s"),
        ]
        for d in r["detect"]:
            for key, label in [("hog_up1_s", "HOG detect, upsample 1"), ("cnn_up0_s", "CNN detect, upsample 0"),
                               ("cnn_up1_s", "CNN detect, upsample 1"), ("landmarks5_s", "5-point landmarks"),
                               ("chip_s", "face chip 150x150")]:
                rows.append((f"{label}, {d['image']}", d[key], "s"))
        rows.append((f"encode folder ({ref['encode_folder']['images']} photos, {ref['encode_folder']['faces']} faces)",
                     r["encode_folder"]["images_per_s"], "images/s"))
        rows.append(("peak RSS of the whole run", r["peak_rss_kb"] / 1024, "MiB"))
        return rows

    ref_rows, our_rows = rows_of(ref), rows_of(ours)
    blas_rows = rows_of(blas) if blas else [None] * len(ref_rows)

    def fmt(v, unit):
        if unit == "s":
            if v < 1e-3:
                return f"{v * 1e6:.0f} µs"
            return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
        return f"{v:.1f} {unit}"

    def ratio(r, o, unit):
        x = (r / o) if unit in ("s", "MiB") else (o / r)
        return f"{x:.1f}x" if unit != "MiB" else f"{x:.2f}x less"

    load_avg = os.getloadavg()[0]
    gflop = ours["descriptor_flops_per_face"] / 1e9
    print(f"# {os.cpu_count()} CPUs, load average {load_avg:.1f}; facelike threads: {ours['threads']}; "
          f"dlib-bin {dlib.__version__} (single-threaded, no BLAS)"
          + (f"; dlib {blas['dlib_version']} built with OpenBLAS (BLAS in use: {blas['dlib_blas']})" if blas else "")
          + f"; descriptor cost {ours['descriptor_flops_per_face']:,} FLOP/face ({gflop:.3f} GFLOP)")
    peak = ours.get("peak_gflops_one_core")
    if peak:
        one = ours["descriptor_batch32_1thread_faces_per_s"]
        allt = ours["descriptor_batch32_faces_per_s"]
        print(f"# batch of 32: {one:.1f} faces/s on 1 thread ({one * gflop:.0f} GFLOP/s, {100 * one * gflop / peak:.0f}% of "
              f"one core's measured FMA peak {peak:.0f} GFLOP/s); {allt:.1f} faces/s on {ours['threads']} threads "
              f"({allt * gflop:.0f} GFLOP/s, {100 * allt * gflop / (peak * ours['threads']):.0f}% of {ours['threads']}x peak)")
    if a.markdown:
        if blas:
            print("| stage | dlib-bin | dlib + OpenBLAS | facelike | vs dlib-bin | vs OpenBLAS |\n|---|---|---|---|---|---|")
        else:
            print("| stage | Python reference | facelike | speed-up |\n|---|---|---|---|")
    for (name, r, unit), (_, o, _), b in zip(ref_rows, our_rows, blas_rows):
        cells = [name, fmt(r, unit)] + ([fmt(b[1], unit)] if blas else []) + [fmt(o, unit), ratio(r, o, unit)] \
            + ([ratio(b[1], o, unit)] if blas else [])
        if a.markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print(f"{cells[0]:<55} " + " ".join(f"{c:>14}" for c in cells[1:]))


if __name__ == "__main__":
    main()
