//! Every claim of face_recognition 1.3.0's own test suite (tests/test_face_recognition.py)
//! that applies to the library, reproduced on the same images. The CLI claims are in the
//! facelike-cli tests.

use facelike::{
    CnnDetector, DetectorKind, Encoder, EncoderOptions, HogDetector, LandmarkModel, Model,
    RgbImage, ShapePredictor,
};
use facelike_testdata as td;

fn img(name: &str) -> RgbImage {
    facelike::load_image(td::test_image(name)).unwrap()
}

fn encoder(landmarks: LandmarkModel) -> Encoder {
    Encoder::new(EncoderOptions {
        models_dir: Some(td::models_dir()),
        landmarks,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn test_load_image_file_and_32bit() {
    let a = img("obama.jpg");
    assert_eq!((a.height(), a.width()), (1137, 910));
    let b = img("32bit.png");
    assert_eq!((b.height(), b.width()), (1200, 626));
}

#[test]
fn test_raw_face_locations_hog_and_cnn() {
    let hog = HogDetector::load(&td::models_dir()).unwrap();
    let cnn = CnnDetector::load(&td::models_dir()).unwrap();
    let o = img("obama.jpg");
    let d = hog.detect(&o, 1, 0.0);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].rect.top, d[0].rect.bottom), (142, 409));
    let c = cnn.detect(&o, 1);
    assert_eq!(c.len(), 1);
    assert!((c[0].rect.top - 144).abs() <= 25 && (c[0].rect.bottom - 389).abs() <= 25);
    let p = img("32bit.png");
    let d = hog.detect(&p, 1, 0.0);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].rect.top, d[0].rect.bottom), (290, 558));
    let c = cnn.detect(&p, 1);
    assert_eq!(c.len(), 1);
    assert!((c[0].rect.top - 259).abs() <= 25 && (c[0].rect.bottom - 552).abs() <= 25);
}

#[test]
fn test_face_locations_and_partial_faces() {
    let hog = HogDetector::load(&td::models_dir()).unwrap();
    let loc = |name: &str| {
        let i = img(name);
        hog.detect(&i, 1, 0.0)
            .iter()
            .map(|d| d.rect.to_css_trimmed(i.width(), i.height()))
            .collect::<Vec<_>>()
    };
    assert_eq!(loc("obama.jpg"), vec![[142, 617, 409, 349]]);
    assert_eq!(loc("obama_partial_face.jpg"), vec![[142, 191, 365, 0]]);
    assert_eq!(loc("obama_partial_face2.jpg"), vec![[142, 551, 409, 349]]);
    // test_cnn_face_locations: within 25 px of (144, 608, 389, 363).
    let cnn = CnnDetector::load(&td::models_dir()).unwrap();
    let o = img("obama.jpg");
    let c = cnn.detect(&o, 1)[0]
        .rect
        .to_css_trimmed(o.width(), o.height());
    for (a, b) in c.iter().zip([144, 608, 389, 363]) {
        assert!((a - b).abs() <= 25, "{c:?}");
    }
}

#[test]
fn test_batched_face_locations() {
    // Three copies of obama.jpg at upsample 0: each (154, 611, 390, 375); raw top/bottom 154/390.
    let cnn = CnnDetector::load(&td::models_dir()).unwrap();
    let o = img("obama.jpg");
    for _ in 0..3 {
        let d = cnn.detect(&o, 0);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].rect.top, d[0].rect.bottom), (154, 390));
        assert_eq!(
            d[0].rect.to_css_trimmed(o.width(), o.height()),
            [154, 611, 390, 375]
        );
    }
}

#[test]
fn test_face_landmarks_large_and_small() {
    let hog = HogDetector::load(&td::models_dir()).unwrap();
    let o = img("obama.jpg");
    let rect = hog.detect(&o, 1, 0.0)[0].rect;
    let sp68 = ShapePredictor::load(&td::models_dir(), Model::ShapePredictor68).unwrap();
    let pts = sp68.predict(&o, rect).points;
    assert_eq!(pts.len(), 68);
    assert_eq!((pts[10].x, pts[10].y), (552, 399));
    let chin: Vec<(i64, i64)> = pts[..17].iter().map(|p| (p.x, p.y)).collect();
    assert_eq!(
        chin,
        [
            (369, 220),
            (372, 254),
            (378, 289),
            (384, 322),
            (395, 353),
            (414, 382),
            (437, 407),
            (464, 424),
            (495, 428),
            (527, 420),
            (552, 399),
            (576, 372),
            (594, 344),
            (604, 314),
            (610, 282),
            (613, 250),
            (615, 219)
        ]
    );
    let sp5 = ShapePredictor::load(&td::models_dir(), Model::ShapePredictor5).unwrap();
    let nose = sp5.predict(&o, rect).points[4];
    assert_eq!((nose.x, nose.y), (496, 295));
}

#[test]
fn test_face_encodings_small_and_large_and_distances() {
    for lm in [LandmarkModel::Five, LandmarkModel::SixtyEight] {
        let e = encoder(lm);
        let faces = e.encode(&img("obama.jpg")).unwrap();
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].descriptor.0.len(), 128);
    }
    // test_face_distance / test_compare_faces: obama2 and obama3 within 0.6 of obama, biden not.
    let e = encoder(LandmarkModel::Five);
    let enc = |n: &str| e.encode(&img(n)).unwrap()[0].descriptor;
    let a1 = enc("obama.jpg");
    let d: Vec<f32> = [enc("obama2.jpg"), enc("obama3.jpg"), enc("biden.jpg")]
        .iter()
        .map(|x| x.distance(&a1, facelike::Metric::L2))
        .collect();
    assert!(d[0] <= 0.6 && d[1] <= 0.6 && d[2] > 0.6, "{d:?}");
    let same: Vec<bool> = [enc("obama2.jpg"), enc("obama3.jpg"), enc("biden.jpg")]
        .iter()
        .map(|x| x.same_person(&a1, 0.6))
        .collect();
    assert_eq!(same, vec![true, true, false]);
}

#[test]
fn no_face_gives_an_empty_list() {
    let e = Encoder::new(EncoderOptions {
        models_dir: Some(td::models_dir()),
        detector: DetectorKind::Cnn,
        upsample: 0,
        ..Default::default()
    })
    .unwrap();
    // dlib's dogs.jpg has no human face for either detector.
    match td::photo("dlib_faces/dogs.jpg") {
        Some(p) => {
            let dogs = facelike::load_image(p).unwrap();
            assert!(encoder(LandmarkModel::Five)
                .encode(&dogs)
                .unwrap()
                .is_empty());
            assert!(e.encode(&dogs).unwrap().is_empty());
        }
        None => eprintln!("{}", td::skip_note("dogs.jpg (no face)")),
    }
    assert!(e.encode(&RgbImage::new(1, 1)).unwrap().is_empty());
}
