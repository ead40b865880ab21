//! Jittered descriptors (`num_jitters` 5 and 10) against dlib on a freshly loaded model, from
//! numbers recorded by scripts/make_jitter_golden.py.

use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
use facelike::jitter::Jitterer;
use facelike::{Descriptor, DescriptorNet, Landmarks, LoadOptions, Point, Rect};
use facelike_testdata as td;

#[derive(serde::Deserialize)]
struct Golden {
    faces: Vec<Face>,
}
#[derive(serde::Deserialize)]
struct Face {
    image: String,
    rect: [i64; 4],
    landmarks5: Vec<[i64; 2]>,
    jitters_5: Vec<f64>,
    jitters_10: Vec<f64>,
}

#[test]
fn jittered_descriptors_equal_dlib() {
    let golden: Golden = serde_json::from_str(include_str!("data/jitter_golden.json")).unwrap();
    let net = DescriptorNet::load(&td::models_dir()).unwrap();
    let mut worst = 0f64;
    let mut ran = 0;
    for f in &golden.faces {
        // Without the shared folder: the faces on photos that the sample photos equal.
        let Some(path) = td::photo(&f.image) else {
            eprintln!(
                "{}",
                td::skip_note(&format!("jittered descriptors of {}", f.image))
            );
            continue;
        };
        ran += 1;
        let img = facelike_image::load_with(
            path,
            &LoadOptions {
                exif_orientation: false,
                ..Default::default()
            },
        )
        .unwrap();
        let shape = Landmarks {
            rect: Rect::new(f.rect[0], f.rect[1], f.rect[2], f.rect[3]),
            points: f
                .landmarks5
                .iter()
                .map(|p| Point::new(p[0], p[1]))
                .collect(),
        };
        let chip = extract_chip(
            &img,
            &face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING).unwrap(),
        );
        for (n, want) in [(5usize, &f.jitters_5), (10, &f.jitters_10)] {
            let mut j = Jitterer::new();
            let crops: Vec<_> = (0..n).map(|_| j.jitter(&chip)).collect();
            let ds = net.compute_batch(&crops).unwrap();
            let mut acc = [0f32; 128];
            for d in &ds {
                for (a, v) in acc.iter_mut().zip(d.0) {
                    *a += v;
                }
            }
            let mean = Descriptor(acc.map(|v| v / n as f32));
            let err = mean
                .0
                .iter()
                .zip(want)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            eprintln!("{} jitters {n}: max |diff| {err:.2e}", f.image);
            worst = worst.max(err);
        }
    }
    assert!(ran > 0);
    // Without the exact random stream and geometry the error would be ~1e-2 (docs/dlib-algorithms.md#jitter).
    assert!(
        worst <= 1e-4,
        "jittered descriptor differs from dlib by {worst}"
    );
}
