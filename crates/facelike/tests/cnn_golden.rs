//! The MMOD CNN detector against dlib's golden boxes and confidences.

use facelike::{CnnDetector, LoadOptions, Rect};
use facelike_testdata as td;

fn load(path: std::path::PathBuf) -> facelike::RgbImage {
    facelike_image::load_with(
        path,
        &LoadOptions {
            exif_orientation: false,
            ..Default::default()
        },
    )
    .unwrap()
}

fn iou(a: &Rect, b: &Rect) -> f64 {
    let i = a.intersect(b).area() as f64;
    i / ((a.area() + b.area()) as f64 - i)
}

#[test]
fn boxes_and_confidences_equal_dlib_on_golden_images() {
    let det = CnnDetector::load(&td::models_dir()).unwrap();
    let (mut images, mut faces, mut exact, mut worst_conf, mut worst_iou) = (0, 0, 0, 0f64, 1f64);
    let set = td::golden_all("cnn_golden::boxes_and_confidences_equal_dlib_on_golden_images");
    for g in &set.images {
        let Some(cnn) = &g.cnn else { continue };
        let img = load(g.path());
        let got = det.detect(&img, cnn.upsample);
        assert_eq!(got.len(), cnn.faces.len(), "{}: {:?}", g.image, got);
        for (d, w) in got.iter().zip(&cnn.faces) {
            let want = Rect::new(w.rect[0], w.rect[1], w.rect[2], w.rect[3]);
            exact += (d.rect == want) as usize;
            worst_iou = worst_iou.min(iou(&d.rect, &want));
            worst_conf = worst_conf.max((d.confidence - w.confidence).abs());
            faces += 1;
        }
        images += 1;
    }
    eprintln!("cnn: {images} images, {faces} faces, {exact} rects identical, max confidence error {worst_conf:.2e}, min IoU {worst_iou:.4}");
    let want_images = if set.full {
        100
    } else {
        set.images.iter().filter(|g| g.cnn.is_some()).count()
    };
    assert!(
        images >= want_images,
        "only {images} golden images have a cnn entry"
    );
    assert!(worst_iou >= 0.98, "a box has IoU {worst_iou} with dlib's");
    assert!(
        exact * 100 >= faces * 99,
        "only {exact}/{faces} rects identical"
    );
    assert!(worst_conf <= 0.01);
}

#[test]
fn spec_reference_vectors() {
    let det = CnnDetector::load(&td::models_dir()).unwrap();
    let img = load(td::test_image("obama.jpg"));
    let d0 = det.detect(&img, 0);
    assert_eq!(d0.len(), 1);
    assert_eq!(d0[0].rect, Rect::new(375, 154, 611, 390));
    assert!((d0[0].confidence - 1.1024).abs() < 1e-4);
    // face_recognition's test_batched_face_locations: css (154, 611, 390, 375).
    assert_eq!(
        d0[0].rect.to_css_trimmed(img.width(), img.height()),
        [154, 611, 390, 375]
    );
    let d1 = det.detect(&img, 1);
    assert_eq!(d1[0].rect, Rect::new(354, 135, 599, 379));
    assert!((d1[0].confidence - 1.1056).abs() < 1e-4);
    let Some(path) = td::photo("face_recognition/examples/knn_examples/test/obama_and_biden.jpg")
    else {
        eprintln!(
            "{}",
            td::skip_note("cnn spec vectors on obama_and_biden.jpg")
        );
        return;
    };
    let img = load(path);
    let got: Vec<(Rect, f64)> = det
        .detect(&img, 0)
        .iter()
        .map(|d| (d.rect, d.confidence))
        .collect();
    let want = [
        (Rect::new(1625, 1059, 1761, 1196), 1.0953),
        (Rect::new(1131, 377, 1327, 573), 1.0868),
        (Rect::new(733, 436, 929, 633), 1.0560),
    ];
    assert_eq!(got.len(), 3);
    for ((r, c), (wr, wc)) in got.iter().zip(want) {
        assert_eq!(*r, wr);
        assert!((c - wc).abs() < 1e-4, "{c} vs {wc}");
    }
}

#[test]
fn tiny_images_and_bad_model_files() {
    let det = CnnDetector::load(&td::models_dir()).unwrap();
    for (w, h) in [(1, 1), (10, 10), (40, 3), (79, 79)] {
        let img = facelike::RgbImage::new(w, h);
        assert!(det.detect(&img, 0).is_empty());
        assert!(det.detect(&img, 1).is_empty());
    }
    let bytes = std::fs::read(td::models_dir().join("mmod_human_face_detector.dat")).unwrap();
    let e = CnnDetector::from_bytes(&bytes[..bytes.len() - 100], std::path::Path::new("cut.dat"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut.dat") && e.contains("byte"), "{e}");
    let other =
        std::fs::read(td::models_dir().join("dlib_face_recognition_resnet_model_v1.dat")).unwrap();
    let e = CnnDetector::from_bytes(&other, std::path::Path::new("resnet.dat"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("resnet.dat") && e.contains("not an MMOD"), "{e}");
}
