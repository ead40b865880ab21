#!/usr/bin/env python3
"""facelike's t-SNE against openTSNE and scikit-learn on the same face embeddings, in one run.

The embeddings are a facelike gallery's descriptors (e.g. LFW identities with >= 10 images:
`facelike index LFW10_DIR --gallery G`). For each method it reports the wall time, the KL
divergence of the final map — all computed here the same way: openTSNE's perplexity-30
affinities (exact nearest neighbours) against the exact Student-t similarities of the map —
and 10-NN preservation (the share of each face's 10 nearest neighbours in 128-D that are
among its 10 nearest in 2-D).

    python3 bench/tsne_compare.py --gallery G [--facelike target/release/facelike] [--threads 2]

Needs `pip install openTSNE scikit-learn`. Each library runs with its own defaults (openTSNE:
PCA init, exaggeration 12 for 250 iterations, then 500; scikit-learn: max_iter 1000) and
`n_jobs` = --threads.
"""
import argparse, os, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def knn_indices(x, k):
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) if len(x) <= 3000 else None
    if d is None:
        from sklearn.neighbors import NearestNeighbors
        return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1)[:, :k]


def knn_preservation(x, y, k=10):
    a, b = knn_indices(x, k), knn_indices(y, k)
    return np.mean([len(set(a[i]) & set(b[i])) / k for i in range(len(x))])


def kl_divergence(P, y):
    """KL(P||Q) for a sparse symmetric P (sums to 1) and the exact Q of embedding y."""
    n = len(y)
    sq = (y ** 2).sum(1)
    z = 0.0
    for s in range(0, n, 1024):
        d = sq[s:s + 1024, None] + sq[None, :] - 2 * y[s:s + 1024] @ y.T
        w = 1.0 / (1.0 + np.maximum(d, 0))
        w[np.arange(w.shape[0]), np.arange(s, s + w.shape[0])] = 0
        z += w.sum()
    P = P.tocoo()
    diff = y[P.row] - y[P.col]
    q = 1.0 / (1.0 + (diff ** 2).sum(1)) / z
    p = P.data
    return float(np.sum(p * np.log(p / q)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gallery", required=True)
    ap.add_argument("--facelike", default=str(REPO / "target" / "release" / "facelike"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    import openTSNE, sklearn
    from openTSNE.affinity import PerplexityBasedNN
    from sklearn.manifold import TSNE as SkTSNE

    tmp = Path(tempfile.mkdtemp(prefix="tsne-compare-"))
    subprocess.run([a.facelike, "projector", "--gallery", a.gallery, "--out", str(tmp / "proj")], check=True, capture_output=True)
    x = np.loadtxt(tmp / "proj" / "tensors.tsv", delimiter="\t", dtype=np.float64)
    print(f"# {len(x)} faces x {x.shape[1]} from {a.gallery}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"openTSNE {openTSNE.__version__}, scikit-learn {sklearn.__version__}, threads {a.threads}")
    P = PerplexityBasedNN(x, perplexity=30, method="exact", n_jobs=a.threads, random_state=a.seed).P

    results = []
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    t = time.perf_counter()
    subprocess.run([a.facelike, "map", "--gallery", a.gallery, "--method", "tsne", "--seed", str(a.seed), "--out", str(tmp / "facelike.tsv")],
                   check=True, capture_output=True, env=env)
    secs = time.perf_counter() - t
    y = np.loadtxt(tmp / "facelike.tsv", delimiter="\t", skiprows=1, usecols=(0, 1))
    results.append(("facelike", secs, y))

    t = time.perf_counter()
    y = np.asarray(openTSNE.TSNE(n_jobs=a.threads, random_state=a.seed).fit(x))
    results.append(("openTSNE (BH/FFT auto)", time.perf_counter() - t, y))

    t = time.perf_counter()
    y = SkTSNE(n_components=2, perplexity=30, init="pca", learning_rate="auto", n_jobs=a.threads, random_state=a.seed).fit_transform(x)
    results.append(("scikit-learn (Barnes-Hut)", time.perf_counter() - t, y))

    print("| method | wall time | KL divergence | 10-NN preserved |\n|---|---|---|---|")
    for name, secs, y in results:
        print(f"| {name} | {secs:.1f} s | {kl_divergence(P, y):.4f} | {knn_preservation(x, y):.3f} |")


if __name__ == "__main__":
    main()
