#!/usr/bin/env python3
"""Record dlib's HOG detections for the cases the golden files do not cover.

shared/golden has every image at upsample 1, adjust_threshold 0. This adds other upsampling
amounts, negative thresholds (many candidates, so non-max suppression across the five filters
and score ties get exercised) and dlib's own crowded example photos. The output is committed
as crates/facelike/tests/data/hog_reference.json (numbers only, no pixels).

Usage: python3 scripts/hog_reference.py [--shared PATH] > crates/facelike/tests/data/hog_reference.json
Needs dlib (the dlib-bin wheel, 20.0.1) and face_recognition (for its image loader).
"""
import argparse
import json
import os
from pathlib import Path

import dlib
import face_recognition

# (image relative to shared/data, upsample, adjust_threshold)
CASES = [
    ("face_recognition/tests/test_images/obama.jpg", 0, 0.0),
    ("face_recognition/tests/test_images/obama.jpg", 2, 0.0),
    ("face_recognition/examples/obama_small.jpg", 3, 0.0),
    ("face_recognition/examples/knn_examples/test/obama_and_biden.jpg", 0, 0.0),
    ("face_recognition/examples/two_people.jpg", 1, -0.5),
    ("face_recognition/tests/test_images/32bit.png", 0, -1.0),
    ("lfw_deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", 1, -1.0),
    ("lfw_deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", 2, 0.5),
    ("lfw_deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", 0, -2.5),
    ("dlib_faces/2007_007763.jpg", 1, 0.0),
    ("dlib_faces/2008_001009.jpg", 1, 0.0),
    ("dlib_faces/2008_001322.jpg", 1, 0.0),
    ("dlib_faces/2008_002079.jpg", 1, 0.0),
    ("dlib_faces/2008_002470.jpg", 1, 0.0),
    ("dlib_faces/2008_002506.jpg", 1, 0.0),
    ("dlib_faces/2008_004176.jpg", 1, 0.0),
    ("dlib_faces/2008_007676.jpg", 1, 0.0),
    ("dlib_faces/2009_004587.jpg", 1, 0.0),
    ("dlib_faces/bald_guys.jpg", 1, 0.0),
    ("dlib_faces/bald_guys.jpg", 0, -0.3),
    ("dlib_faces/Tom_Cruise_avp_2014_4.jpg", 1, 0.0),
    ("dlib_faces/dogs.jpg", 1, 0.0),
    ("dlib_faces/dogs.jpg", 0, -1.5),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", help="the shared/ folder (default: $FACELIKE_SHARED or ../shared)")
    args = ap.parse_args()
    shared = Path(
        args.shared
        or os.environ.get("FACELIKE_SHARED")
        or Path(__file__).resolve().parent.parent.parent / "shared"
    )
    detector = dlib.get_frontal_face_detector()
    out = []
    for rel, up, adjust in CASES:
        img = face_recognition.load_image_file(str(shared / "data" / rel))
        rects, scores, idx = detector.run(img, up, adjust)
        out.append(
            {
                "image": rel,
                "width": int(img.shape[1]),
                "height": int(img.shape[0]),
                "upsample": up,
                "adjust_threshold": adjust,
                "faces": [
                    {
                        "rect": [r.left(), r.top(), r.right(), r.bottom()],
                        "score": s,
                        "detector": int(i),
                    }
                    for r, s, i in zip(rects, scores, idx)
                ],
            }
        )
    doc = {"dlib_version": dlib.__version__, "cases": out}
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
