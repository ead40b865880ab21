#!/usr/bin/env python3
"""Records dlib's jittered descriptors (num_jitters=5 and 10, each on a freshly loaded model,
the only reproducible case) for a few golden faces, as numbers only, into
crates/facelike/tests/data/jitter_golden.json. Needs dlib-bin, face_recognition_models and
../shared (or FACELIKE_SHARED)."""
import json, os, sys
import dlib, numpy as np, face_recognition_models as frm
from PIL import Image

shared = os.environ.get("FACELIKE_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
gold = json.load(open(os.path.join(shared, "golden", "face_recognition.json")))
picks = ["face_recognition/tests/test_images/obama.jpg", "face_recognition/examples/biden.jpg",
         "face_recognition/examples/alex-lacamoire.png"]
out = {"generator": f"dlib {dlib.__version__}", "faces": []}
for im in gold["images"]:
    if im["image"] not in picks:
        continue
    img = np.asarray(Image.open(os.path.join(shared, "data", im["image"])).convert("RGB"))
    f = im["faces"][0]
    rect = dlib.rectangle(*f["rect"])
    shape = dlib.full_object_detection(rect, [dlib.point(x, y) for x, y in f["landmarks5"]])
    entry = {"image": im["image"], "rect": f["rect"], "landmarks5": f["landmarks5"]}
    for n in (5, 10):
        enc = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        entry[f"jitters_{n}"] = list(enc.compute_face_descriptor(img, shape, n))
    out["faces"].append(entry)
dest = os.path.join(os.path.dirname(__file__), "..", "crates", "facelike", "tests", "data", "jitter_golden.json")
json.dump(out, open(dest, "w"), indent=1)
print("wrote", dest, len(out["faces"]), "faces")
