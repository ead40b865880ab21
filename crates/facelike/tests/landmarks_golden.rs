//! Landmarks and chips against dlib's golden outputs for all 193 golden faces (without the
//! shared folder: the core golden data's faces, chips checked against digests of dlib's).

use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
use facelike::{Landmarks, LoadOptions, Model, Point, Rect, ShapePredictor};
use facelike_testdata as td;

fn load(path: &std::path::Path) -> facelike::RgbImage {
    facelike_image::load_with(
        path,
        &LoadOptions {
            exif_orientation: false,
            ..Default::default()
        },
    )
    .unwrap()
}

fn rect(r: [i64; 4]) -> Rect {
    Rect::new(r[0], r[1], r[2], r[3])
}

fn points(v: &[[i64; 2]]) -> Vec<Point> {
    v.iter().map(|p| Point::new(p[0], p[1])).collect()
}

#[test]
fn landmarks_equal_dlib_on_every_golden_face() {
    let dir = td::models_dir();
    let sp5 = ShapePredictor::load(&dir, Model::ShapePredictor5).unwrap();
    let sp68 = ShapePredictor::load(&dir, Model::ShapePredictor68).unwrap();
    let (mut total, mut exact, mut max_err) = (0usize, 0usize, 0i64);
    let mut faces = 0;
    let set = td::golden_all("landmarks_golden::landmarks_equal_dlib_on_every_golden_face");
    for g in &set.images {
        let img = load(&g.path());
        for f in &g.faces {
            faces += 1;
            for (sp, want) in [(&sp5, &f.landmarks5), (&sp68, &f.landmarks68)] {
                let got = sp.predict(&img, rect(f.rect)).points;
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(points(want)) {
                    total += 1;
                    let e = (a.x - b.x).abs().max((a.y - b.y).abs());
                    exact += (e == 0) as usize;
                    max_err = max_err.max(e);
                }
            }
        }
    }
    eprintln!("landmarks: {faces} faces, {exact}/{total} points exact, max error {max_err} px");
    assert_eq!(faces, if set.full { 193 } else { set.faces() });
    assert!(max_err <= 1, "a landmark is {max_err} px off");
    assert!(
        exact as f64 >= 0.99 * total as f64,
        "only {exact}/{total} exact"
    );
}

#[test]
fn chips_equal_dlib_on_every_golden_face() {
    let (mut max_diff, mut diff_px, mut px, mut faces) = (0u8, 0usize, 0usize, 0usize);
    let set = td::golden_all("landmarks_golden::chips_equal_dlib_on_every_golden_face");
    for g in &set.images {
        let img = load(&g.path());
        for f in &g.faces {
            let shape = Landmarks {
                rect: rect(f.rect),
                points: points(&f.landmarks5),
            };
            let details = face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING).unwrap();
            let chip = extract_chip(&img, &details);
            let Some(png) = f.chip_png() else {
                // Core data: dlib's chip is known by the sha256 of its RGB bytes.
                assert_eq!((chip.width(), chip.height()), (CHIP_SIZE, CHIP_SIZE));
                let want = f.chip_rgb_sha256.as_deref().expect("chip digest");
                assert_eq!(td::sha256_hex(chip.as_raw()), want, "{} chip", g.image);
                px += chip.as_raw().len();
                faces += 1;
                continue;
            };
            let want = load(&png);
            assert_eq!((chip.width(), chip.height()), (want.width(), want.height()));
            let mut this = 0;
            for (a, b) in chip.as_raw().iter().zip(want.as_raw()) {
                let d = a.abs_diff(*b);
                max_diff = max_diff.max(d);
                this += (d > 0) as usize;
            }
            if this > 0 {
                eprintln!("{} face: {this} differing values", g.image);
            }
            diff_px += this;
            px += chip.as_raw().len();
            faces += 1;
        }
    }
    eprintln!("chips: {faces} faces, {diff_px}/{px} channel values differ, max diff {max_diff}");
    assert_eq!(faces, if set.full { 193 } else { set.faces() });
    assert!(max_diff <= 1, "chip values differ by up to {max_diff}");
}

#[test]
fn face_recognition_test_pins() {
    // tests/test_face_recognition.py: obama.jpg's 5-point nose tip on the HOG rect (its 68-point
    // chin claim is in face_recognition_claims.rs).
    let dir = td::models_dir();
    let img = load(&td::test_image("obama.jpg"));
    let r = Rect::new(349, 142, 617, 409);
    let sp5 = ShapePredictor::load(&dir, Model::ShapePredictor5).unwrap();
    let five = sp5.predict(&img, r).points;
    assert_eq!(five[4], Point::new(496, 295));
    assert_eq!(five[0], Point::new(570, 216));
    // Chip details of obama.jpg (docs/dlib-algorithms.md#chip-details): rect (350.596, 123.067)-(646.072, 418.543), angle -0.00444128.
    let d = face_chip_details(&sp5.predict(&img, r), CHIP_SIZE, CHIP_PADDING).unwrap();
    assert!(
        (d.rect.left - 350.596).abs() < 1e-3 && (d.rect.bottom - 418.543).abs() < 1e-3,
        "{d:?}"
    );
    assert!((d.angle + 0.00444128).abs() < 1e-7, "{d:?}");
}

#[test]
fn rects_outside_the_image_and_bad_part_counts() {
    let dir = td::models_dir();
    let sp5 = ShapePredictor::load(&dir, Model::ShapePredictor5).unwrap();
    let img = load(&td::test_image("obama.jpg"));
    // A rect hanging off the top-left corner: feature pixels outside read as 0, no panic.
    let l = sp5.predict(&img, Rect::new(-300, -300, 50, 50));
    assert_eq!(l.points.len(), 5);
    let chip = extract_chip(&img, &face_chip_details(&l, 150, 0.25).unwrap());
    assert_eq!(chip.width(), 150);
    let bad = Landmarks {
        rect: Rect::new(0, 0, 10, 10),
        points: vec![Point::new(1, 1); 7],
    };
    assert_eq!(
        face_chip_details(&bad, 150, 0.25),
        Err(facelike::chip::ChipError::PartCount(7))
    );
}

#[test]
fn bad_shape_predictor_files_are_reported() {
    let dir = td::models_dir();
    let bytes = std::fs::read(dir.join("shape_predictor_5_face_landmarks.dat")).unwrap();
    let tmp = std::env::temp_dir().join(format!("facelike-sp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let p = tmp.join("truncated.dat");
    std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    let e = ShapePredictor::from_bytes(&bytes[..bytes.len() / 3], &p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated.dat") && e.contains("byte"), "{e}");
    let other = std::fs::read(dir.join("mmod_human_face_detector.dat")).unwrap();
    let e = ShapePredictor::from_bytes(&other, &tmp.join("mmod.dat"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mmod.dat"), "{e}");
    std::fs::remove_dir_all(&tmp).ok();
}
