#!/usr/bin/env python3
"""facelike's benchmarks, one command with subcommands (bench/README.md says which measures
what; bench/harness.py owns the timing, the locating and the table):

    bench/bench.py all          every stage, facelike against dlib-bin (+ dlib with OpenBLAS)
    bench/bench.py descriptor   the face descriptor alone, one face and a batch of 32
    bench/bench.py hog          HOG detection: wall and CPU time, detections compared
    bench/bench.py tsne         t-SNE against openTSNE and scikit-learn (KL, 10-NN kept)
    bench/bench.py gallery      gallery search (cargo bench -p facelike-gallery --bench search)
    bench/bench.py lfw-eval     facelike-eval's LFW / adapter / domain-shift figures
    bench/bench.py lfw-pipeline LFW View 2 with facelike's own pipeline, one row per setting

Common options: --runs (timed calls per stage, after one warm-up), --rounds (interleaved
rounds), --shared, --models, --facelike, --openblas / --openblas-python, --markdown.
This runs under any Python 3; the reference's stages run under bench/.venv's Python.
"""
import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402

# The photos and folder of `all` (the README's table), and the HOG cases of
# crates/facelike/benches/hog.rs (same list, same order), relative to shared/data.
ALL_PHOTOS = ["face_recognition/examples/obama-480p.jpg", "face_recognition/examples/two_people.jpg"]
ALL_FOLDER = "face_recognition/examples/knn_examples"
HOG_CASES = [("face_recognition/examples/obama-480p.jpg", 1), ("face_recognition/examples/obama-480p.jpg", 0),
             ("face_recognition/examples/obama-720p.jpg", 1), ("face_recognition/tests/test_images/obama.jpg", 1)]


def common(p, runs, rounds):
    p.add_argument("--runs", type=int, default=runs, help=f"timed calls per stage after one warm-up ({runs})")
    p.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds ({rounds})")
    p.add_argument("--shared", help="the shared/ folder (default $FACELIKE_SHARED, else ../shared)")
    p.add_argument("--models", help="the models folder (default $FACELIKE_MODELS or ~/.cache/facelike/models)")
    p.add_argument("--facelike", help="facelike's binary (default $CARGO_TARGET_DIR or target, /release/facelike)")
    p.add_argument("--threads", type=int, default=0, help="RAYON_NUM_THREADS for facelike (0: all cores)")
    p.add_argument("--python", help="the dlib-bin reference's Python (default bench/.venv/bin/python)")
    p.add_argument("--openblas", action="store_true", help="add dlib built with OpenBLAS (bench/.venv-openblas)")
    p.add_argument("--openblas-python", help="a Python whose dlib uses BLAS (implies --openblas)")
    p.add_argument("--reference-only", action="store_true", help="time the reference(s) only")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")


def references(a):
    """[(name, python)] of the reference sides asked for."""
    refs = [("dlib-bin", H.reference_python("dlib-bin", a.python))]
    if a.openblas or a.openblas_python:
        refs.append(("dlib+OpenBLAS", H.reference_python("dlib+OpenBLAS", a.openblas_python)))
    return refs


def facelike_exe(a):
    exe = H.facelike_bin(a.facelike)
    if not exe.is_file():
        sys.exit(f"{exe} not found: cargo build --release -p facelike-cli (or pass --facelike)")
    return exe


def print_reference_meta(results):
    for name, rs in results.items():
        meta = rs[-1]["meta"]
        if "dlib_version" in meta:
            print("# " + H.describe_reference(name, meta))
            if name == "dlib-bin" and meta.get("golden_checked") and meta["golden_max_diff"] > 1e-5:
                sys.exit("dlib-bin's descriptors differ from the golden ones: wrong model or chips?")


def print_facelike_meta(results):
    meta = results["facelike"][-1]["meta"] if "facelike" in results else None
    if not meta:
        return
    print(f"# facelike: {meta['threads']} threads; network kernels: {H.kernel_label(meta)}")
    flops = meta.get("descriptor_flops_per_face")
    if flops:
        gflop = flops / 1e9
        line = f"# descriptor cost {flops:,} FLOP/face ({gflop:.3f} GFLOP)"
        peak = meta.get("peak_gflops_one_core")
        one = statistics.median(r["meta"]["descriptor_batch32_1thread_faces_per_s"] for r in results["facelike"])
        allt = statistics.median(r["descriptor_batch32_faces_per_s"] for r in results["facelike"])
        if peak:
            t = meta["threads"]
            line += (f"; batch of 32: {one:.1f} faces/s on 1 thread ({one * gflop:.0f} GFLOP/s, "
                     f"{100 * one * gflop / peak:.0f}% of one core's measured FMA peak {peak:.0f} GFLOP/s), "
                     f"{allt:.1f} faces/s on {t} threads ({100 * allt * gflop / (peak * t):.0f}% of {t}x peak)")
        print(line)


def cmd_all(a):
    """Every stage of the pipeline (compare.sh's table)."""
    shared, models = H.shared_dir(a.shared), H.models_dir(a.models)
    data = shared / "data"
    chips = H.golden_chips(shared, a.chips)
    photos = [str(data / p) for p in ALL_PHOTOS if not a.photos or Path(p).name in a.photos.split(",")]
    folder = str(data / ALL_FOLDER)
    def reference(py):
        return H.reference_bench(py, a.runs, models, chips, photos, folder, shared=shared, cnn_runs=a.cnn_runs)

    sides = [(name, lambda py=py: reference(py)) for name, py in references(a)]
    if not a.reference_only:
        exe = facelike_exe(a)
        sides.append(("facelike", lambda: H.facelike_bench(exe, a.runs, chips, photos, folder, a.threads)))
    results = H.rounds(sides, a.rounds)
    folder_meta = results["dlib-bin"][0]["meta"]["encode_folder"]
    print(H.machine_line())
    print_reference_meta(results)
    print_facelike_meta(results)
    if a.cnn_runs:
        print(f"# the references' CNN stages: median of {a.cnn_runs} call(s) after one warm-up "
              f"(facelike's: {a.runs} at upsample 0, {min(a.runs, 3)} at upsample 1)")
    for name, rs in results.items():
        f = rs[-1]["meta"]["encode_folder"]
        if f["faces"] != folder_meta["faces"]:
            print(f"# note: {name} found {f['faces']} faces in the folder, dlib-bin {folder_meta['faces']}")
    H.table(H.stage_list(photos, folder_meta), results, "facelike", a.markdown)


def cmd_descriptor(a):
    """The descriptor alone, in interleaved rounds (was descriptor_rounds.py and, with
    --chips all --reference-only, descriptor_compare.py)."""
    shared, models = H.shared_dir(a.shared), H.models_dir(a.models)
    if not (models / H.DESCRIPTOR_MODEL).is_file():
        sys.exit(f"{models / H.DESCRIPTOR_MODEL} is missing: run `facelike models fetch` or pass --models")
    chips = H.golden_chips(shared, a.chips)
    sides = [(name, lambda py=py: H.reference_bench(py, a.runs, models, chips, load=False, shared=shared))
             for name, py in references(a)]
    if not a.reference_only:
        exe = facelike_exe(a)
        sides.append(("facelike", lambda: H.facelike_bench(exe, a.runs, chips, threads=a.threads)))
    results = H.rounds(sides, a.rounds)
    print(H.machine_line() + f"; {len(chips)} golden chips, {a.runs} runs over them per round")
    print_reference_meta(results)
    print_facelike_meta(results)
    stages = [s for s in H.stage_list([]) if s[0].startswith("descriptor")]
    H.table(stages, results, "facelike", a.markdown)


def parse_hog_time(line):
    """One result line of crates/facelike/examples/hog_time.rs."""
    head, _, dets = line.partition("  [")
    name, up, size, med, best, cpu = head.split()
    return {"image": name, "up": int(up), "size": size, "median_s": float(med) / 1e3, "min_s": float(best) / 1e3,
            "cpu_s": None if cpu == "-" else float(cpu) / 1e3, "detections": ast.literal_eval("[" + dets)}


def same_detections(x, y):
    return len(x) == len(y) and all(list(a[0]) == list(b[0]) and abs(a[1] - b[1]) < 2e-5 and a[2] == b[2]
                                    for a, b in zip(x, y))


def cmd_hog(a):
    """dlib's HOG detector against facelike's on 1 thread (as dlib) and on all threads."""
    data = H.shared_dir(a.shared) / "data"
    cases = [(str(data / p), up) for p, up in HOG_CASES]
    sides = [(name, lambda py=py: H.run_json(H.worker_cmd(py, "hog", runs=a.runs, cases=cases)))
             for name, py in references(a)]
    if not a.reference_only:
        H.cargo_build("-p", "facelike", "--example", "hog_time")
        exe = H.facelike_bin(example="hog_time")

        def facelike(threads):
            env = dict(os.environ)
            env.pop("RAYON_NUM_THREADS", None)
            if threads:
                env["RAYON_NUM_THREADS"] = str(threads)
            out = []
            for path, up in cases:
                p = subprocess.run([str(exe), str(a.runs), str(up), path], env=env, check=True,
                                   capture_output=True, text=True)
                out.append(parse_hog_time(p.stdout.splitlines()[1]))
            return {"cases": out}

        sides.append(("facelike 1 thread", lambda: facelike(1)))
        sides.append((f"facelike {a.threads or os.cpu_count()} threads", lambda: facelike(a.threads)))
    raw = H.rounds(sides, a.rounds)
    results = {name: [{f"{k}:{i}": c[k] for i, c in enumerate(r["cases"]) for k in ("median_s", "min_s", "cpu_s")}
                      for r in rs] for name, rs in raw.items()}
    first = raw[next(iter(raw))][-1]
    print(H.machine_line() + f"; dlib {first.get('dlib_version', '?')} (1 thread, AVX "
          f"{'yes' if first.get('dlib_avx') else 'no'}); CPU SIMD {H.cpu_info()[1]} (facelike's HOG filters "
          "use AVX where the CPU has it)")
    stages = []
    for i, c in enumerate(first["cases"]):
        what = f"{c['image']} {c['size']}, upsample {c['up']}"
        stages += [(f"median_s:{i}", f"{what}: wall, median", "s"), (f"min_s:{i}", f"{what}: wall, min", "s"),
                   (f"cpu_s:{i}", f"{what}: CPU, median", "s")]
    H.table(stages, results, [(name, "dlib-bin") for name, _ in sides if name.startswith("facelike")], a.markdown)
    for i, c in enumerate(first["cases"]):
        print(f"# detections, {c['image']} upsample {c['up']}: {c['detections']}")
        for name, rs in raw.items():
            if not same_detections(rs[-1]["cases"][i]["detections"], c["detections"]):
                print(f"#   {name} differs: {rs[-1]['cases'][i]['detections']}")


def cmd_tsne(a):
    """facelike's t-SNE (`facelike map`, timed as a whole process) against openTSNE and
    scikit-learn (their fit timed in-process), same embeddings, same threads."""
    py = H.reference_python("dlib-bin", a.python)
    exe = facelike_exe(a)
    threads = a.threads or 2
    tmp = Path(tempfile.mkdtemp(prefix="tsne-bench-"))
    subprocess.run([str(exe), "projector", "--gallery", a.gallery, "--out", str(tmp / "proj")], check=True,
                   capture_output=True)
    x = str(tmp / "proj" / "tensors.tsv")
    maps = {"facelike": str(tmp / "facelike.tsv"), "openTSNE": str(tmp / "opentsne.tsv"),
            "scikit-learn": str(tmp / "sklearn.tsv")}
    versions = {}

    def facelike():
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        t = time.perf_counter()
        subprocess.run([str(exe), "map", "--gallery", a.gallery, "--method", "tsne", "--seed", str(a.seed),
                        "--out", maps["facelike"]], check=True, capture_output=True, env=env)
        return {"wall_s": time.perf_counter() - t}

    def library(method):
        d = H.run_json(H.worker_cmd(py, "tsne", method=method, x=x, out=maps[method], threads=threads, seed=a.seed))
        versions[method] = d["version"]
        return {"wall_s": d["seconds"]}

    sides = [("facelike", facelike), ("openTSNE", lambda: library("openTSNE")),
             ("scikit-learn", lambda: library("scikit-learn"))]
    results = H.rounds(sides, a.rounds)
    score = H.run_json(H.worker_cmd(py, "tsne-score", x=x, maps=maps, skip={"facelike": 1}, threads=threads,
                                    seed=a.seed))
    n = sum(1 for _ in open(x))
    print(H.machine_line(threads) + f"; {n} faces from {a.gallery}; openTSNE {versions['openTSNE']} (BH/FFT auto), "
          f"scikit-learn {versions['scikit-learn']} (Barnes-Hut), n_jobs {threads}")
    H.table([("wall_s", "wall time", "s")], results, "facelike", a.markdown)
    print("# last round's maps: " + "; ".join(f"{k}: KL {v['kl']:.4f}, 10-NN preserved {v['knn10']:.3f}"
                                              for k, v in score.items()))


def cmd_gallery(a):
    """Gallery search on real LFW descriptors plus synthetic dlib-like ones (facelike-gallery's
    harness-less `search` bench, which prints its own report)."""
    os.environ["FACELIKE_SHARED"] = str(H.shared_dir(a.shared))
    cmd = ["cargo", "bench", "-p", "facelike-gallery", "--bench", "search", "--", "--n", str(a.n),
           "--queries", str(a.queries), "--threads", str(a.threads), "--nprobe", a.nprobe, "--ef", a.ef,
           "--m", str(a.m), "--efc", str(a.efc), "--store-n", str(a.store_n)]
    if not a.hnsw:
        cmd.append("--no-ann")
    sys.exit(subprocess.run(cmd, cwd=H.REPO).returncode)


def cmd_lfw_eval(a, extra):
    """facelike-eval's examples: lfw_benchmark (extra arguments go to it) and domain_shift."""
    os.environ["FACELIKE_SHARED"] = str(H.shared_dir(a.shared))
    subprocess.run(["cargo", "build", "--release", "-p", "facelike-eval", "--examples"], cwd=H.REPO, check=True)
    ex = H.target_dir() / "release" / "examples"
    subprocess.run([str(ex / "lfw_benchmark"), "--out", str(H.target_dir() / "lfw-bench"), *extra], cwd=H.REPO,
                   check=True)
    subprocess.run([str(ex / "domain_shift")], cwd=H.REPO, check=True)


LFW_ROWS = [[], ["--fallback-rect", "67,80,175,187"], ["--cnn-fallback", "--roc", "{target}/lfw_roc.png"],
            ["--cnn-fallback", "--landmarks", "68"], ["--cnn-fallback", "--jitters", "10"],
            ["--cnn-fallback", "--jitters", "10", "--landmarks", "68"]]


def cmd_lfw_pipeline(a):
    """`facelike eval pairs` on LFW View 2, one row per configuration (the README's table)."""
    shared = H.shared_dir(a.shared)
    if not a.facelike:
        H.cargo_build("--bin", "facelike")
    exe = facelike_exe(a)
    base = [str(exe), "eval", "pairs", "--pairs", str(shared / "data/lfw_pairs/pairs.txt"),
            "--root", str(shared / "data/lfw_deepfunneled"), "--json"]
    rows = LFW_ROWS[: a.rows] if a.rows else LFW_ROWS
    keys = ["accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-3", "threshold", "undetected"]
    print("| flags | " + " | ".join(keys) + " | accuracy at 0.6 | time |\n|" + "---|" * (len(keys) + 3), flush=True)
    for flags in rows:
        flags = [f.format(target=H.target_dir()) for f in flags]
        t = time.perf_counter()
        d = H.run_json(base + flags)
        cells = [" ".join(flags) or "(defaults)"] + [str(d[k]) for k in keys]
        cells += [str(d["fixed_threshold"]["accuracy"]), f"{time.perf_counter() - t:.0f} s"]
        print("| " + " | ".join(cells) + " |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("all", help="every stage against the reference (bench/compare.sh)")
    common(p, runs=5, rounds=2)
    p.add_argument("--chips", default="8", help="golden chips for the descriptor: N or all (8)")
    p.add_argument("--photos", help="detection photos, comma-separated file names (default: "
                   + ", ".join(Path(p).name for p in ALL_PHOTOS) + ")")
    p.add_argument("--cnn-runs", type=int, help="the references' CNN stages: this many timed calls "
                   "(default: facelike's rule, --runs at upsample 0 and min(--runs, 3) at upsample 1)")
    p = sub.add_parser("descriptor", help="the descriptor alone, one face and a batch of 32")
    common(p, runs=5, rounds=5)
    p.add_argument("--chips", default="8", help="golden chips: N or all (8)")
    p = sub.add_parser("hog", help="HOG detection, wall and CPU time")
    common(p, runs=9, rounds=1)
    p = sub.add_parser("tsne", help="t-SNE against openTSNE and scikit-learn")
    common(p, runs=1, rounds=1)
    p.add_argument("--gallery", required=True, help="a facelike gallery (facelike index DIR --gallery G)")
    p.add_argument("--seed", type=int, default=42)
    env = os.environ.get
    p = sub.add_parser("gallery", help="gallery search (exact, IVF, HNSW), cargo bench")
    p.add_argument("--shared")
    p.add_argument("--n", type=int, default=int(env("N", 1_000_000)))
    p.add_argument("--queries", type=int, default=int(env("QUERIES", 200)))
    p.add_argument("--threads", type=int, default=int(env("THREADS", 2)))
    p.add_argument("--nprobe", default=env("NPROBE", "0,384,512,768"))
    p.add_argument("--ef", default=env("EF", "128,256,512,1024"))
    p.add_argument("--m", type=int, default=int(env("M", 16)))
    p.add_argument("--efc", type=int, default=int(env("EFC", 128)))
    p.add_argument("--store-n", type=int, default=int(env("STORE_N", 200_000)))
    p.add_argument("--hnsw", action="store_true", default=env("HNSW", "0") == "1", help="also the HNSW graph")
    p = sub.add_parser("lfw-eval", help="facelike-eval's LFW, adapter and domain-shift figures")
    p.add_argument("--shared")
    p = sub.add_parser("lfw-pipeline", help="LFW View 2 with facelike's own pipeline")
    p.add_argument("--shared")
    p.add_argument("--facelike")
    p.add_argument("--rows", type=int, default=0, help="only the first N configurations")
    a, extra = ap.parse_known_args(argv)
    if extra and a.cmd != "lfw-eval":
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if a.cmd == "lfw-eval":
        return cmd_lfw_eval(a, extra)
    {"all": cmd_all, "descriptor": cmd_descriptor, "hog": cmd_hog, "tsne": cmd_tsne, "gallery": cmd_gallery,
     "lfw-pipeline": cmd_lfw_pipeline}[a.cmd](a)


if __name__ == "__main__":
    main()
