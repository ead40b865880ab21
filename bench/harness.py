#!/usr/bin/env python3
"""The one timing harness behind every benchmark in bench/ (see bench/README.md).

It owns:

* locating things: the repository, the shared data (`--shared`, else $FACELIKE_SHARED, else
  ../shared beside the repository), the models ($FACELIKE_MODELS, else
  $XDG_CACHE_HOME/facelike/models, else ~/.cache/facelike/models), facelike's binaries
  (`--facelike`, else $CARGO_TARGET_DIR/release, else target/release) and the reference
  Pythons (bench/.venv: dlib-bin + face_recognition; bench/.venv-openblas: dlib built
  against OpenBLAS by bench/build_dlib_openblas.sh);
* timing: every side measures in its own process, the same way — one warm-up call, then
  `runs` timed calls, the median kept (stages under a millisecond: loops of 500 calls) — and
  the harness runs the sides in interleaved rounds (round 1: A B C, round 2: C B A, ...), so
  that a noisy neighbour on a shared machine hits every side alike. Each figure printed is
  the median over the rounds of those per-round medians, with the min–max over the rounds;
  each ratio is the median of the per-round (paired) ratios, with their range;
* the in-process workers of the Python side (`python harness.py worker NAME JSON`, run under
  the reference's own Python, printing one JSON line; the Rust side is `facelike bench` or
  a facelike example binary, which measure the same way in Rust);
* the table (plain or Markdown), headed by the CPU model, the load average, the threads and
  which kernels ran (facelike's `bench` JSON says whether its networks ran on the AVX-512
  kernels or the portable path; /proc/cpuinfo gives the CPU's widest SIMD).

The harness itself needs only the standard library; the workers need what their side needs
(dlib, numpy, Pillow, face_recognition; openTSNE and scikit-learn for t-SNE).
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
VENVS = {"dlib-bin": BENCH / ".venv", "dlib+OpenBLAS": BENCH / ".venv-openblas"}
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


# ---------------------------------------------------------------------------------------
# Locating things


def shared_dir(arg=None) -> Path:
    d = Path(arg or os.environ.get("FACELIKE_SHARED") or REPO.parent / "shared")
    if not (d / "data").is_dir() or not (d / "golden").is_dir():
        sys.exit(f"shared data not found at {d}: set FACELIKE_SHARED or pass --shared")
    return d.resolve()


def models_dir(arg=None) -> Path:
    if arg:
        return Path(arg)
    if os.environ.get("FACELIKE_MODELS"):
        return Path(os.environ["FACELIKE_MODELS"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facelike" / "models"


def target_dir() -> Path:
    t = os.environ.get("CARGO_TARGET_DIR")
    return Path(t) if t else REPO / "target"


def facelike_bin(arg=None, example=None) -> Path:
    """facelike's CLI (or one of its examples), built with --release."""
    if example:
        return target_dir() / "release" / "examples" / example
    return Path(arg) if arg else target_dir() / "release" / "facelike"


def cargo_build(*args):
    """`cargo build --release -q ARGS` in the repository (a no-op when up to date)."""
    subprocess.run(["cargo", "build", "--release", "-q", *args], cwd=REPO, check=True)


def reference_python(name, arg=None):
    """The Python of reference `name` (a key of VENVS): `arg`, else the venv's, else this
    interpreter where it can import dlib (dlib-bin only)."""
    if arg:
        return arg
    py = VENVS[name] / "bin" / "python"
    if py.is_file():
        return str(py)
    if name == "dlib-bin":
        ok = subprocess.run([sys.executable, "-c", "import dlib, face_recognition"], capture_output=True)
        if ok.returncode == 0:
            return sys.executable
    sys.exit(f"no Python for {name}: create {VENVS[name]} (bench/compare.sh makes bench/.venv, "
             "bench/build_dlib_openblas.sh bench/.venv-openblas)")


def golden_chips(shared: Path, count):
    """The golden 150x150 chips: the first `count` of chips_face_recognition (sorted), or
    with count "all" every face of the two golden files."""
    if str(count) == "all":
        return [str(p) for p, _ in golden_descriptors(shared).items()]
    chips = [str(c) for c in sorted((shared / "golden" / "chips_face_recognition").glob("*.png"))[: int(count)]]
    if not chips:
        sys.exit(f"no golden chips under {shared}/golden: set FACELIKE_SHARED or pass --shared")
    return chips


def golden_descriptors(shared: Path):
    """{chip path: dlib's descriptor of that chip} from the golden files, in their order."""
    out = {}
    for name in ("face_recognition.json", "lfw_sample.json"):
        data = json.loads((shared / "golden" / name).read_text())
        for image in data["images"]:
            for face in image["faces"]:
                out[shared / "golden" / face["chip"]] = face["descriptor_from_chip"]
    return out


# ---------------------------------------------------------------------------------------
# Machine description


def cpu_info():
    """(model name from /proc/cpuinfo, the widest SIMD its flags report)."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    if "avx512f" in flags:
        simd = "avx512f"
    elif {"avx2", "fma"} <= flags:
        simd = "avx2+fma"
    elif flags:
        simd = "sse2"
    else:
        simd = platform.machine()
    return model or platform.processor() or "unknown CPU", simd


def kernel_label(facelike_json=None):
    """Which of facelike's network kernels ran: from its `bench` JSON where it says, else
    inferred from /proc/cpuinfo the way facelike-tensor decides."""
    model, simd = cpu_info()
    k = (facelike_json or {}).get("kernels")
    if k:
        network, simd, how = k["network"], k["cpu_simd"], "as facelike reported"
    else:
        no512 = bool(os.environ.get("FACELIKE_NO_AVX512"))
        network, how = ("avx512" if simd == "avx512f" and not no512 else "portable"), "inferred from /proc/cpuinfo"
    names = {"avx512": "AVX-512 kernels", "portable": "portable path (im2col + GEMM, no AVX-512)"}
    return f"{names.get(network, network)}; CPU SIMD {simd} ({how})"


def machine_line(threads=None):
    model, _ = cpu_info()
    line = f"# {model}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    return line + (f"; facelike threads: {threads}" if threads else "")


# ---------------------------------------------------------------------------------------
# Timing


def median_secs(runs, f):
    """Median seconds of `runs` calls of f after one warm-up call (facelike bench's rule)."""
    f()
    ts = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def median_per_call(runs, calls, f):
    """Median over `runs` loops of `calls` calls, per call: for sub-millisecond stages."""
    return median_secs(runs, lambda: [f() for _ in range(calls)]) / calls


def run_json(cmd, env=None):
    """Runs a worker or facelike; returns the JSON object its last stdout line holds."""
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd[:4]))} ... failed ({p.returncode}):\n{p.stderr[-4000:]}")
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        return json.loads(p.stdout.strip().splitlines()[-1])


def rounds(sides, count, log=sys.stderr):
    """Runs every side once per round, in interleaved rounds (the order reversed every other
    round). `sides`: [(name, f)], f() returning {stage key: value}, plus optional "meta".
    Returns {name: [per-round dicts]}."""
    got = {name: [] for name, _ in sides}
    for r in range(count):
        order = sides if r % 2 == 0 else sides[::-1]
        for name, f in order:
            t = time.perf_counter()
            got[name].append(f())
            print(f"# round {r + 1}/{count}: {name} done in {time.perf_counter() - t:.1f} s", file=log, flush=True)
    return got


# ---------------------------------------------------------------------------------------
# The table

# unit -> (better is lower?)
LOWER_IS_BETTER = {"s": True, "MiB": True, "faces/s": False, "images/s": False}


def fmt(v, unit):
    if v is None:
        return "–"
    if unit == "s":
        if v < 1e-3:
            return f"{v * 1e6:.0f} µs"
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    return f"{v:.1f} {unit}"


def fmt_range(vs, unit):
    return fmt(vs[0], unit) if min(vs) == max(vs) else f"{fmt(min(vs), unit)}–{fmt(max(vs), unit)}"


def table(stages, results, ratios, markdown=False, out=sys.stdout):
    """Prints one row per stage: each side's median over rounds [min–max], then for each
    (fast, slow) pair of `ratios` fast's speed-up over slow: the median of the paired
    per-round ratios [range]. A bare side name stands for (it, every other side).

    stages: [(key, label, unit)]; results: {side: [per-round {key: value}]}."""
    sides = list(results)
    if isinstance(ratios, str):
        ratios = [(ratios, o) for o in sides if o != ratios]
    ratios = [(f, s) for f, s in ratios if f in results and s in results]
    nrounds = max(len(v) for v in results.values())
    head = ["stage"] + sides + [f"{f} vs {s}" for f, s in ratios]
    rows = []
    for key, label, unit in stages:
        vals = {s: [r[key] for r in results[s] if r.get(key) is not None] for s in sides}
        if not any(vals.values()):
            continue
        cells = [label]
        for s in sides:
            v = vals[s]
            cell = fmt(statistics.median(v), unit) if v else "–"
            if len(v) > 1:
                cell += f" [{fmt_range(v, unit)}]"
            cells.append(cell)
        for fast, slow in ratios:
            pairs = [(a.get(key), b.get(key)) for a, b in zip(results[slow], results[fast])]
            pairs = [(a, b) for a, b in pairs if a and b]
            if not pairs:
                cells.append("–")
                continue
            rs = sorted(a / b if LOWER_IS_BETTER[unit] else b / a for a, b in pairs)
            cell = f"{statistics.median(rs):.2f}x less" if unit == "MiB" else f"{statistics.median(rs):.1f}x"
            if len(rs) > 1:
                cell += f" [{rs[0]:.2f}–{rs[-1]:.2f}]" if unit == "MiB" else f" [{rs[0]:.1f}–{rs[-1]:.1f}]"
            cells.append(cell)
        rows.append(cells)
    print(f"# {nrounds} interleaved round(s); each cell: median over rounds [min–max]; "
          "speed-ups: median of the per-round ratios [range]", file=out)
    if markdown:
        print("| " + " | ".join(head) + " |", file=out)
        print("|" + "---|" * len(head), file=out)
        for c in rows:
            print("| " + " | ".join(c) + " |", file=out)
    else:
        w0 = max(len(c[0]) for c in [head] + rows)
        ws = [max(len(c[i]) for c in [head] + rows) for i in range(1, len(head))]
        for c in [head] + rows:
            print(f"{c[0]:<{w0}}  " + "  ".join(f"{x:>{w}}" for x, w in zip(c[1:], ws)), file=out)


# ---------------------------------------------------------------------------------------
# `facelike bench` and the reference's all-stages worker share one JSON schema

DETECT_STAGES = [("hog_up1_s", "HOG detect, upsample 1"), ("cnn_up0_s", "CNN detect, upsample 0"),
                 ("cnn_up1_s", "CNN detect, upsample 1"), ("landmarks5_s", "5-point landmarks"),
                 ("chip_s", "face chip 150x150")]


def stage_values(d):
    """Flattens a `facelike bench` / reference worker JSON into {stage key: value}."""
    v = {k: d.get(k) for k in ("load_all_models_s", "descriptor_single_s", "descriptor_batch32_faces_per_s")}
    for det in d.get("detect", []):
        for key, _ in DETECT_STAGES:
            v[f"{key}:{det['image']}"] = det[key]
    if "encode_folder" in d:
        v["encode_folder"] = d["encode_folder"]["images_per_s"]
    if d.get("peak_rss_kb"):
        v["peak_rss_mib"] = d["peak_rss_kb"] / 1024
    v["meta"] = d
    return v


def stage_list(photos, folder_meta=None):
    """[(key, label, unit)] of the stages `stage_values` makes, in table order."""
    st = [("load_all_models_s", "load all 5 models", "s"),
          ("descriptor_single_s", "descriptor, one face (chip→128-D)", "s"),
          ("descriptor_batch32_faces_per_s", "descriptor, batch of 32", "faces/s")]
    for p in photos:
        st += [(f"{key}:{Path(p).name}", f"{label}, {Path(p).name}", "s") for key, label in DETECT_STAGES]
    if folder_meta:
        st.append(("encode_folder", f"encode folder ({folder_meta['images']} photos, {folder_meta['faces']} faces)",
                   "images/s"))
    st.append(("peak_rss_mib", "peak RSS of the whole run", "MiB"))
    return st


def facelike_bench(exe, runs, chips=(), photos=(), folder=None, threads=0):
    """One `facelike bench` run (its in-process medians) as stage values."""
    cmd = [exe, "bench", "--runs", str(runs)]
    for c in chips:
        cmd += ["--chip", c]
    for p in photos:
        cmd += ["--detect", p]
    if folder:
        cmd += ["--folder", folder]
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    return stage_values(run_json(cmd, env))


def worker_cmd(python, name, **args):
    return [python, str(Path(__file__).resolve()), "worker", name, json.dumps(args)]


def reference_bench(python, runs, models, chips=(), photos=(), folder=None, load=True, shared=None, cnn_runs=None):
    """One run of the reference worker (the same stages, measured the same way) as stage
    values. shared: where the golden descriptors of the chips are, to check the warm-up
    descriptors against."""
    return stage_values(run_json(worker_cmd(python, "reference", runs=runs, models=str(models), chips=list(chips),
                                            photos=list(photos), folder=folder, load=load,
                                            shared=str(shared) if shared else None, cnn_runs=cnn_runs)))


def describe_reference(name, meta):
    s = f"{name}: dlib {meta['dlib_version']}, BLAS {'yes' if meta['dlib_blas'] else 'no'}, " \
        f"AVX {'yes' if meta.get('dlib_avx') else 'no'}"
    if meta.get("golden_checked"):
        s += f"; its descriptors of {meta['golden_checked']} chips differ from the golden ones by " \
             f"at most {meta['golden_max_diff']:.1e}"
    return s


# ---------------------------------------------------------------------------------------
# Workers (run under the reference's Python)


def _load_rgb(p):
    import numpy as np
    from PIL import Image
    return np.asarray(Image.open(p).convert("RGB"))


def worker_reference(a):
    """dlib + face_recognition, the stages of `facelike bench`, measured by its rules: the
    median of `runs` calls after one warm-up (CNN at upsample 1: min(runs, 3) calls; both CNN
    stages `cnn_runs` calls where given, to save time on a slow reference), loops of 500 calls
    for landmarks and chips, one pass over the chips before the one-face timing."""
    import resource

    import dlib
    import numpy as np

    runs, models = a["runs"], Path(a["models"])
    out = {"dlib_version": dlib.__version__, "dlib_blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
           "dlib_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)), "threads": 1}

    def load_all():
        return (dlib.face_recognition_model_v1(str(models / DESCRIPTOR_MODEL)),
                dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
                dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
                dlib.get_frontal_face_detector(),
                dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat")))

    if a["load"]:
        # Median of 3 loads after one: the files are then in the page cache, as for facelike.
        out["load_all_models_s"] = median_secs(3, load_all)
        net, sp5, _, hog, cnn = load_all()
    else:
        net = dlib.face_recognition_model_v1(str(models / DESCRIPTOR_MODEL))

    if a["chips"]:
        chips = [_load_rgb(c) for c in a["chips"]]
        golden = {str(k): v for k, v in golden_descriptors(Path(a["shared"])).items()} if a["shared"] else {}
        worst, checked = 0.0, 0
        for path, arr in zip(a["chips"], chips):  # the warm-up pass, checked against golden
            got = np.asarray(net.compute_face_descriptor(arr))
            if path in golden:
                worst = max(worst, float(np.abs(got - np.asarray(golden[path])).max()))
                checked += 1
        out["golden_checked"], out["golden_max_diff"] = checked, worst
        i = [0]

        def one():
            net.compute_face_descriptor(chips[i[0] % len(chips)])
            i[0] += 1

        out["descriptor_single_s"] = median_secs(runs * len(chips), one)
        batch = [chips[k % len(chips)] for k in range(32)]
        out["descriptor_batch32_faces_per_s"] = 32 / median_secs(runs, lambda: net.compute_face_descriptor(batch))

    out["detect"] = []
    for p in a["photos"]:
        img = _load_rgb(p)
        found = hog(img, 1)
        rect = found[0] if len(found) else dlib.rectangle(0, 0, 99, 99)
        shape = sp5(img, rect)
        out["detect"].append({
            "image": Path(p).name,
            "hog_up1_s": median_secs(runs, lambda: hog(img, 1)),
            "cnn_up0_s": median_secs(a.get("cnn_runs") or runs, lambda: cnn(img, 0)),
            "cnn_up1_s": median_secs(a.get("cnn_runs") or min(runs, 3), lambda: cnn(img, 1)),
            "landmarks5_s": median_per_call(runs, 500, lambda: sp5(img, rect)),
            "chip_s": median_per_call(runs, 500, lambda: dlib.get_face_chip(img, shape, 150, 0.25)),
        })

    if a["folder"]:
        # End to end as face_recognition does it (one process, its defaults), timed once.
        import face_recognition
        files = sorted(p for p in Path(a["folder"]).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        t = time.perf_counter()
        faces = sum(len(face_recognition.face_encodings(face_recognition.load_image_file(f))) for f in files)
        secs = time.perf_counter() - t
        out["encode_folder"] = {"images": len(files), "faces": faces, "seconds": secs,
                                "images_per_s": len(files) / secs}
    out["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def hog_times(runs, call):
    """(median wall s, min wall s, median process CPU s, last result) of `runs` calls after
    one warm-up: the rule of crates/facelike/examples/hog_time.rs."""
    call()
    wall, cpu = [], []
    for _ in range(max(1, runs)):
        t, c = time.perf_counter(), time.process_time()
        res = call()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), min(wall), statistics.median(cpu), res


def worker_hog(a):
    """dlib's HOG detector as face_recognition.face_locations(img, up, "hog") calls it:
    detector.run(image, upsample, 0.0) on images loaded by face_recognition."""
    import dlib
    import face_recognition
    det = dlib.get_frontal_face_detector()
    out = {"dlib_version": dlib.__version__, "dlib_avx": bool(dlib.USE_AVX_INSTRUCTIONS), "cases": []}
    for path, up in a["cases"]:
        img = face_recognition.load_image_file(path)
        med, best, cpu, (rects, scores, idx) = hog_times(a["runs"], lambda: det.run(img, up, 0.0))
        dets = [([r.left(), r.top(), r.right(), r.bottom()], round(s, 5), i) for r, s, i in zip(rects, scores, idx)]
        out["cases"].append({"image": Path(path).name, "up": up, "size": f"{img.shape[1]}x{img.shape[0]}",
                             "median_s": med, "min_s": best, "cpu_s": cpu, "detections": dets})
    return out


def worker_tsne(a):
    """Times one t-SNE library's fit in-process on the embeddings in a["x"] (a TSV); writes
    the map to a["out"]."""
    import numpy as np
    x = np.loadtxt(a["x"], delimiter="\t", dtype=np.float64)
    threads, seed = a["threads"], a["seed"]
    if a["method"] == "openTSNE":
        import openTSNE
        t = time.perf_counter()
        y = np.asarray(openTSNE.TSNE(n_jobs=threads, random_state=seed).fit(x))
        secs = time.perf_counter() - t
        version = openTSNE.__version__
    else:
        import sklearn
        from sklearn.manifold import TSNE
        t = time.perf_counter()
        y = TSNE(n_components=2, perplexity=30, init="pca", learning_rate="auto", n_jobs=threads,
                 random_state=seed).fit_transform(x)
        secs = time.perf_counter() - t
        version = sklearn.__version__
    np.savetxt(a["out"], y, delimiter="\t")
    return {"seconds": secs, "version": version}


def worker_tsne_score(a):
    """KL divergence (openTSNE's perplexity-30 affinities, exact neighbours, against the
    exact Student-t similarities of each map) and 10-NN preservation of every map."""
    import numpy as np
    from openTSNE.affinity import PerplexityBasedNN
    x = np.loadtxt(a["x"], delimiter="\t", dtype=np.float64)
    P = PerplexityBasedNN(x, perplexity=30, method="exact", n_jobs=a["threads"], random_state=a["seed"]).P

    def knn_indices(z, k):
        if len(z) > 3000:
            from sklearn.neighbors import NearestNeighbors
            return NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z, return_distance=False)[:, 1:]
        d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1)[:, :k]

    def knn_preservation(y, k=10):
        p, q = knn_indices(x, k), knn_indices(y, k)
        return float(np.mean([len(set(p[i]) & set(q[i])) / k for i in range(len(x))]))

    def kl_divergence(y):
        sq = (y ** 2).sum(1)
        z = 0.0
        for s in range(0, len(y), 1024):
            d = sq[s:s + 1024, None] + sq[None, :] - 2 * y[s:s + 1024] @ y.T
            w = 1.0 / (1.0 + np.maximum(d, 0))
            w[np.arange(w.shape[0]), np.arange(s, s + w.shape[0])] = 0
            z += w.sum()
        C = P.tocoo()
        q = 1.0 / (1.0 + ((y[C.row] - y[C.col]) ** 2).sum(1)) / z
        return float(np.sum(C.data * np.log(C.data / q)))

    out = {}
    for name, path in a["maps"].items():
        y = np.loadtxt(path, delimiter="\t", usecols=(0, 1), skiprows=a["skip"].get(name, 0))
        out[name] = {"kl": kl_divergence(y), "knn10": knn_preservation(y)}
    return out


WORKERS = {"reference": worker_reference, "hog": worker_hog, "tsne": worker_tsne, "tsne-score": worker_tsne_score}

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        print(json.dumps(WORKERS[sys.argv[2]](json.loads(sys.argv[3]))))
    else:
        sys.exit("harness.py is a module (and the reference's worker); run bench/bench.py")
