//! The HOG detector against dlib 20.0.1's outputs on the 182 golden images, and against the
//! values face_recognition's own test suite pins.

use facelike::hog::{boxes_overlap, HogDetector};
use facelike::{Rect, RgbImage};
use facelike_image::{load_with, LoadOptions};
use std::path::Path;
use std::sync::OnceLock;

fn detector() -> &'static HogDetector {
    static D: OnceLock<HogDetector> = OnceLock::new();
    D.get_or_init(|| {
        HogDetector::load(&facelike_testdata::models_dir()).expect("load the HOG detector")
    })
}

/// Loads a photo the way face_recognition does (no EXIF rotation).
fn load(path: &Path) -> RgbImage {
    let opts = LoadOptions {
        exif_orientation: false,
        ..LoadOptions::default()
    };
    load_with(path, &opts).unwrap_or_else(|e| panic!("{e}"))
}

fn css(img: &RgbImage, rect: &Rect) -> [i64; 4] {
    rect.to_css_trimmed(img.width(), img.height())
}

#[test]
fn all_golden_images_match_dlib() {
    let det = detector();
    let set = facelike_testdata::golden_all("hog_golden::all_golden_images_match_dlib");
    let images = set.images;
    if set.full {
        assert_eq!(images.len(), 182);
    }
    let mut max_err = 0f64;
    let mut worst = String::new();
    let mut faces = 0;
    let mut failures = Vec::new();
    for g in &images {
        let img = load(&g.path());
        assert_eq!(
            (img.width(), img.height()),
            (g.width, g.height),
            "{}",
            g.image
        );
        let dets = det.detect(&img, g.hog.upsample, g.hog.adjust_threshold);
        let got: Vec<([i64; 4], usize)> = dets
            .iter()
            .map(|d| (d.rect.to_array(), d.detector))
            .collect();
        let want: Vec<([i64; 4], usize)> =
            g.hog.faces.iter().map(|f| (f.rect, f.detector)).collect();
        if got != want {
            failures.push(format!("{}: got {got:?}, dlib {want:?}", g.image));
            continue;
        }
        for (d, f) in dets.iter().zip(&g.hog.faces) {
            let err = (d.score - f.score).abs();
            if err > max_err {
                max_err = err;
                worst = format!("{} ({} vs {})", g.image, d.score, f.score);
            }
            faces += 1;
        }
        let trimmed: Vec<[i64; 4]> = dets.iter().map(|d| css(&img, &d.rect)).collect();
        if trimmed != g.face_locations_hog {
            failures.push(format!(
                "{}: css {trimmed:?}, face_recognition {:?}",
                g.image, g.face_locations_hog
            ));
        }
    }
    eprintln!("{faces} faces; max |score - dlib| = {max_err:.3e} at {worst}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(max_err < 1e-3, "max score error {max_err} at {worst}");
}

/// `tests/data/hog_reference.json`, written by `scripts/hog_reference.py` from dlib 20.0.1.
#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<ReferenceCase>,
}

#[derive(serde::Deserialize)]
struct ReferenceCase {
    image: String,
    width: usize,
    height: usize,
    upsample: u32,
    adjust_threshold: f64,
    faces: Vec<facelike_testdata::GoldenHogFace>,
}

#[test]
fn other_upsampling_and_thresholds_match_dlib() {
    let det = detector();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hog_reference.json");
    let refs: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(refs.cases.len() >= 20);
    let mut max_err = 0f64;
    let mut failures = Vec::new();
    let mut skipped = 0;
    for c in &refs.cases {
        // Without the shared folder: the cases on photos that the sample photos equal.
        let Some(path) = facelike_testdata::photo(&c.image) else {
            skipped += 1;
            continue;
        };
        let img = load(&path);
        assert_eq!(
            (img.width(), img.height()),
            (c.width, c.height),
            "{}",
            c.image
        );
        let dets = det.detect(&img, c.upsample, c.adjust_threshold);
        let got: Vec<([i64; 4], usize)> = dets
            .iter()
            .map(|d| (d.rect.to_array(), d.detector))
            .collect();
        let want: Vec<([i64; 4], usize)> = c.faces.iter().map(|f| (f.rect, f.detector)).collect();
        if got != want {
            failures.push(format!(
                "{} upsample {} adjust {}: got {got:?}, dlib {want:?}",
                c.image, c.upsample, c.adjust_threshold
            ));
            continue;
        }
        for (d, f) in dets.iter().zip(&c.faces) {
            max_err = max_err.max((d.score - f.score).abs());
        }
    }
    eprintln!("max |score - dlib| = {max_err:.3e}");
    if skipped > 0 {
        eprintln!(
            "{}",
            facelike_testdata::skip_note(&format!(
                "{skipped} of {} hog_reference.json cases",
                refs.cases.len()
            ))
        );
        assert!(skipped < refs.cases.len(), "no case ran");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(max_err < 1e-6, "max score error {max_err}");
}

#[test]
fn face_recognition_test_suite_values() {
    let det = detector();
    let tests = facelike_testdata::test_image;
    let locate = |name: &str| {
        let img = load(&tests(name));
        let dets = det.detect(&img, 1, 0.0);
        dets.iter().map(|d| css(&img, &d.rect)).collect::<Vec<_>>()
    };
    assert_eq!(locate("obama.jpg"), vec![[142, 617, 409, 349]]);
    assert_eq!(locate("obama_partial_face.jpg"), vec![[142, 191, 365, 0]]);
    assert_eq!(
        locate("obama_partial_face2.jpg"),
        vec![[142, 551, 409, 349]]
    );
    let b = locate("32bit.png");
    assert_eq!(b.len(), 1);
    assert_eq!((b[0][0], b[0][2]), (290, 558));

    let img = load(&tests("obama.jpg"));
    let d0 = det.detect(&img, 0, 0.0);
    assert_eq!(d0.len(), 1);
    assert_eq!(d0[0].rect, Rect::new(366, 136, 624, 394));
    assert!((d0[0].score - 2.41536).abs() < 1e-5, "{}", d0[0].score);
    assert_eq!(d0[0].detector, 0);
}

#[test]
fn no_face_and_tiny_images() {
    let det = detector();
    // dlib finds no face in this photo of dogs.
    match facelike_testdata::photo("dlib_faces/dogs.jpg") {
        Some(p) => assert!(det.detect(&load(&p), 1, 0.0).is_empty()),
        None => eprintln!("{}", facelike_testdata::skip_note("dogs.jpg (no face)")),
    }
    for (w, h) in [
        (0, 0),
        (1, 1),
        (2, 3),
        (7, 7),
        (17, 9),
        (40, 40),
        (80, 30),
        (90, 90),
    ] {
        let img = RgbImage::new(w, h);
        for up in 0..3 {
            assert!(
                det.detect(&img, up, 0.0).is_empty(),
                "{w}x{h} upsample {up}"
            );
        }
    }
    // A flat image has no gradients, so every filter scores 0 and nothing fires even with
    // a very permissive threshold below zero... except that a threshold under −b lets zero
    // scores through: then every window is a candidate and NMS must still terminate.
    let flat = RgbImage::from_raw(100, 100, vec![128; 100 * 100 * 3]).unwrap();
    assert!(det.detect(&flat, 0, 0.0).is_empty());
    let all = det.detect(&flat, 0, -10.0);
    assert!(!all.is_empty());
    for (i, a) in all.iter().enumerate() {
        for b in &all[..i] {
            assert!(!boxes_overlap(
                &a.rect,
                &b.rect,
                0.33008212188056446,
                0.7885714285714286
            ));
        }
    }
}

#[test]
fn bad_model_files_are_errors() {
    let dir = facelike_testdata::models_dir();
    let path = dir.join("frontal_face_detector.dat");
    let bytes = std::fs::read(&path).unwrap();
    // Truncated: the error names the file and the byte offset.
    let e = HogDetector::from_bytes(&bytes[..1000], &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("frontal_face_detector.dat") && e.contains("byte"),
        "{e}"
    );
    // Another model is not a HOG detector.
    let other = std::fs::read(dir.join("mmod_human_face_detector.dat")).unwrap();
    let e = HogDetector::from_bytes(&other, Path::new("mmod.dat"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mmod.dat") && e.contains("byte"), "{e}");
    // Empty.
    let e = HogDetector::from_bytes(&[], Path::new("empty.dat"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty.dat"), "{e}");
}
