#!/usr/bin/env python3
"""Descriptors of two labelled face folders outside LFW, for the adapter's domain-shift check.

For each image of shared/data/{att_faces,yalefaces}/<person>/<file> (sorted), runs
face_recognition's default pipeline (HOG detector with upsample 1, the face nearest the image
centre, 5-point alignment, one jitter) like golden/lfw_descriptors.*, and writes
crates/facelike-eval/testdata/<name>_descriptors.txt (one line per image: relative path, then
a tab and 1 if a face was found, 0 if not) and <name>_descriptors.f32 (little-endian float32,
128 per detected image, in file order). Numbers only: no pixels are stored.

Needs dlib 20.0.1 (dlib-bin) and face_recognition 1.3.0. Run from the repository root:
    python3 scripts/make_domain_descriptors.py /path/to/shared
"""
import os
import sys

import numpy as np
import face_recognition

shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join("..", "shared")
out_dir = os.path.join("crates", "facelike-eval", "testdata")
os.makedirs(out_dir, exist_ok=True)
EXT = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".pgm", ".ppm")

for name in ["att_faces", "yalefaces"]:
    root = os.path.join(shared, "data", name)
    lines, vecs = [], []
    for person in sorted(os.listdir(root)):
        pdir = os.path.join(root, person)
        if not os.path.isdir(pdir) or person.startswith("."):
            continue
        for f in sorted(os.listdir(pdir)):
            if not f.lower().endswith(EXT):
                continue
            img = face_recognition.load_image_file(os.path.join(pdir, f))
            h, w = img.shape[:2]
            locs = face_recognition.face_locations(img, 1, "hog")
            rel = f"{person}/{f}"
            if not locs:
                lines.append(f"{rel}\t0")
                continue
            cy, cx = h / 2, w / 2
            loc = min(locs, key=lambda l: ((l[0] + l[2]) / 2 - cy) ** 2 + ((l[1] + l[3]) / 2 - cx) ** 2)
            enc = face_recognition.face_encodings(img, [loc])[0]
            lines.append(f"{rel}\t1")
            vecs.append(np.asarray(enc, dtype="<f4"))
    with open(os.path.join(out_dir, f"{name}_descriptors.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    np.stack(vecs).astype("<f4").tofile(os.path.join(out_dir, f"{name}_descriptors.f32"))
    print(name, len(lines), "images,", len(vecs), "with a face")
