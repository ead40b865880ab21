#!/usr/bin/env python3
"""scikit-learn's PCA of the LFW View-2 descriptors (shared/golden/lfw_descriptors.f32), as
golden numbers for crates/facelike-viz/tests: explained variance and its ratio for all 128
components, and the first two components."""
import json, os, sys
import numpy as np, sklearn
from sklearn.decomposition import PCA

shared = os.environ.get("FACELIKE_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
x = np.fromfile(os.path.join(shared, "golden", "lfw_descriptors.f32"), dtype="<f4").reshape(-1, 128)
p = PCA(n_components=128, svd_solver="full").fit(x.astype(np.float64))
out = {
    "generator": f"scikit-learn {sklearn.__version__} PCA(n_components=128, svd_solver='full') on float64",
    "samples": int(x.shape[0]),
    "explained_variance": p.explained_variance_.tolist(),
    "explained_variance_ratio": p.explained_variance_ratio_.tolist(),
    "components_0_1": p.components_[:2].tolist(),
}
dest = os.path.join(os.path.dirname(__file__), "..", "crates", "facelike-viz", "tests", "data", "pca_lfw_sklearn.json")
json.dump(out, open(dest, "w"))
print("wrote", dest)
