//! The whole pipeline (photo → HOG → landmarks → chip → ResNet) against dlib's golden
//! descriptors for every golden image, with 5- and 68-point alignment.

use facelike::{Encoder, EncoderOptions, LandmarkModel, LoadOptions, Rect};
use facelike_testdata as td;

fn l2(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt()
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
fn detected_faces_and_descriptors_equal_dlib() {
    let enc5 = encoder(LandmarkModel::Five);
    let enc68 = encoder(LandmarkModel::SixtyEight);
    let opts = LoadOptions {
        exif_orientation: false,
        ..Default::default()
    };
    let (mut worst5, mut worst68, mut faces) = (0f64, 0f64, 0usize);
    let (mut worst_png, mut worst_jpeg) = (0f64, 0f64);
    let set = td::golden_all("pipeline_golden::detected_faces_and_descriptors_equal_dlib");
    for g in &set.images {
        let img = facelike_image::load_with(g.path(), &opts).unwrap();
        let got = enc5.encode(&img).unwrap();
        let rects: Vec<[i64; 4]> = got.iter().map(|f| f.rect.to_array()).collect();
        let want: Vec<[i64; 4]> = g.faces.iter().map(|f| f.rect).collect();
        assert_eq!(rects, want, "{}", g.image);
        let locs: Vec<[i64; 4]> = got.iter().map(|f| f.location(&img)).collect();
        assert_eq!(locs, g.face_locations_hog, "{}", g.image);
        let got68 = enc68.encode(&img).unwrap();
        for ((f, f68), w) in got.iter().zip(&got68).zip(&g.faces) {
            let d5 = l2(&f.descriptor.0, &w.descriptor);
            let d68 = l2(&f68.descriptor.0, &w.descriptor_68);
            worst5 = worst5.max(d5);
            worst68 = worst68.max(d68);
            if g.is_png() {
                worst_png = worst_png.max(d5);
            } else {
                worst_jpeg = worst_jpeg.max(d5);
            }
            faces += 1;
        }
    }
    eprintln!(
        "pipeline: {faces} faces; max L2 to dlib: 5-point {worst5:.2e} (PNG {worst_png:.2e}, JPEG {worst_jpeg:.2e}), 68-point {worst68:.2e}"
    );
    assert_eq!(faces, if set.full { 193 } else { set.faces() });
    assert!(
        worst_png <= 1e-3 && worst5 <= 1e-3 && worst68 <= 1e-3,
        "descriptor drift: {worst5} / {worst68}"
    );
}

#[test]
fn encode_at_given_rects_equals_dlib() {
    let enc = Encoder::new(EncoderOptions {
        models_dir: Some(td::models_dir()),
        load_detector: false,
        ..Default::default()
    })
    .unwrap();
    let opts = LoadOptions {
        exif_orientation: false,
        ..Default::default()
    };
    let mut worst = 0f64;
    for g in
        td::golden_face_recognition("pipeline_golden::encode_at_given_rects_equals_dlib").images
    {
        let img = facelike_image::load_with(g.path(), &opts).unwrap();
        let rects: Vec<Rect> = g
            .faces
            .iter()
            .map(|f| Rect::new(f.rect[0], f.rect[1], f.rect[2], f.rect[3]))
            .collect();
        for (f, w) in enc.encode_rects(&img, &rects).unwrap().iter().zip(&g.faces) {
            let lm: Vec<[i64; 2]> = f.landmarks.iter().map(|p| [p.x, p.y]).collect();
            assert_eq!(lm, w.landmarks5, "{}", g.image);
            worst = worst.max(l2(&f.descriptor.0, &w.descriptor));
        }
    }
    eprintln!("encode_rects: max L2 to dlib {worst:.2e}");
    assert!(worst <= 1e-3);
    // Rects that miss the image, or are inverted, are errors, not garbage.
    let img = facelike_image::load_with(td::test_image("obama.jpg"), &opts).unwrap();
    assert!(enc
        .encode_rects(&img, &[Rect::new(5000, 5000, 5100, 5100)])
        .is_err());
    assert!(enc.encode_rects(&img, &[Rect::new(10, 10, 5, 5)]).is_err());
}

#[test]
fn normalized_descriptors_have_unit_length() {
    let enc = Encoder::new(EncoderOptions {
        models_dir: Some(td::models_dir()),
        space: facelike::DescriptorSpace::Unit,
        ..Default::default()
    })
    .unwrap();
    let img = facelike_image::load(td::test_image("obama.jpg")).unwrap();
    let f = &enc.encode(&img).unwrap()[0];
    assert!((f.descriptor.norm() - 1.0).abs() < 1e-6);
    // Raw dlib descriptor norm for this face is 1.387167 (docs/dlib-algorithms.md#reference-values).
    let raw = Encoder::new(EncoderOptions {
        models_dir: Some(td::models_dir()),
        ..Default::default()
    })
    .unwrap();
    assert!((raw.encode(&img).unwrap()[0].descriptor.norm() - 1.387167).abs() < 1e-5);
}
