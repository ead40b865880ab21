#!/usr/bin/env python3
"""Descriptor speed, facelike against dlib-bin and dlib built with OpenBLAS, in interleaved
rounds: each round runs the three one after another on the same 8 golden chips, so a noisy
neighbour on a shared machine hits all three alike. Prints each round and the median of the
rounds' medians for one face at a time and for a batch of 32.

    python3 bench/descriptor_rounds.py [--rounds 5] [--runs 5] [--openblas-python PY] [--shared PATH]

The dlib-bin side runs under this Python; `--openblas-python` names one whose dlib uses BLAS
(bench/build_dlib_openblas.sh makes bench/.venv-openblas).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def worker(chips, model, runs):
    """Runs in the Python under test: prints one JSON line of medians."""
    import dlib
    import numpy as np
    from PIL import Image

    net = dlib.face_recognition_model_v1(model)
    arrays = [np.asarray(Image.open(c).convert("RGB")) for c in chips]
    for arr in arrays:  # one pass over the chips to warm up, as facelike bench does
        net.compute_face_descriptor(arr)
    one = []
    for k in range(runs * len(arrays)):
        t = time.perf_counter()
        net.compute_face_descriptor(arrays[k % len(arrays)])
        one.append(time.perf_counter() - t)
    batch = [arrays[k % len(arrays)] for k in range(32)]
    net.compute_face_descriptor(batch)
    b = []
    for _ in range(runs):
        t = time.perf_counter()
        net.compute_face_descriptor(batch)
        b.append(time.perf_counter() - t)
    print(json.dumps({"one_s": statistics.median(one), "batch32_faces_per_s": 32 / statistics.median(b),
                      "blas": bool(dlib.DLIB_USE_BLAS)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--openblas-python")
    ap.add_argument("--shared")
    ap.add_argument("--facelike", default=str(REPO / "target" / "release" / "facelike"))
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    models = Path(os.environ.get("FACELIKE_MODELS") or Path(cache) / "facelike" / "models")
    model = str(models / "dlib_face_recognition_resnet_model_v1.dat")
    if a.worker:
        return worker(a.worker, model, a.runs)
    shared = Path(a.shared or os.environ.get("FACELIKE_SHARED") or REPO.parent / "shared")
    chips = [str(c) for c in sorted((shared / "golden" / "chips_face_recognition").glob("*.png"))[:8]]
    if not chips:
        sys.exit(f"no golden chips under {shared}: set FACELIKE_SHARED or pass --shared")

    def python_side(py):
        out = subprocess.run([py, __file__, "--runs", str(a.runs), "--worker", *chips],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def facelike_side():
        cmd = [a.facelike, "bench", "--runs", str(a.runs)] + [x for c in chips for x in ("--chip", c)]
        d = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        return {"one_s": d["descriptor_single_s"], "batch32_faces_per_s": d["descriptor_batch32_faces_per_s"]}

    sides = [("dlib-bin", lambda: python_side(sys.executable))]
    if a.openblas_python:
        sides.append(("dlib+OpenBLAS", lambda: python_side(a.openblas_python)))
    sides.append(("facelike", facelike_side))
    got = {name: [] for name, _ in sides}
    for r in range(a.rounds):
        line = []
        for name, f in sides:
            d = f()
            got[name].append(d)
            line.append(f"{name} {d['one_s'] * 1e3:.2f} ms / {d['batch32_faces_per_s']:.1f} faces/s")
        print(f"round {r + 1}: " + "; ".join(line), flush=True)
    med = {n: (statistics.median(x["one_s"] for x in v), statistics.median(x["batch32_faces_per_s"] for x in v))
           for n, v in got.items()}
    print(f"# median of {a.rounds} rounds, load average now {os.getloadavg()[0]:.1f}")
    print("| | one face | batch of 32 | facelike's speed-up (one / batch) |\n|---|---|---|---|")
    f1, fb = med["facelike"]
    for n, (one, b) in med.items():
        ratio = "" if n == "facelike" else f"{one / f1:.1f}x / {fb / b:.1f}x"
        print(f"| {n} | {one * 1e3:.2f} ms | {b:.1f} faces/s | {ratio} |")
    for n, v in got.items():
        if n != "facelike":
            per = sorted(x["one_s"] / y["one_s"] for x, y in zip(v, got["facelike"]))
            print(f"# one face, per-round speed-up over {n}: {per[0]:.1f}x to {per[-1]:.1f}x, "
                  f"median {statistics.median(per):.1f}x")


if __name__ == "__main__":
    main()
