//! HOG face detection speed, to compare with dlib (`bench/hog_compare.py` times dlib on the
//! same images).
//!
//! `cargo bench -p facelike --bench hog`; set `RAYON_NUM_THREADS=1` for the single-thread
//! figure (dlib runs on one thread).

use criterion::{criterion_group, criterion_main, Criterion};
use facelike::hog::HogDetector;
use facelike_image::resample::pyramid_up_rgb;
use facelike_image::{load_with, LoadOptions};
use std::hint::black_box;
use std::time::Duration;

/// The images `bench/hog_compare.py` uses, relative to `shared/data/`.
const IMAGES: [&str; 3] = [
    "face_recognition/examples/obama-480p.jpg",
    "face_recognition/examples/obama-720p.jpg",
    "face_recognition/tests/test_images/obama.jpg",
];

fn bench(c: &mut Criterion) {
    let det = HogDetector::load(&facelike_testdata::models_dir()).expect("HOG model");
    let opts = LoadOptions {
        exif_orientation: false,
        ..LoadOptions::default()
    };
    let mut group = c.benchmark_group("hog");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    for rel in IMAGES {
        let img = load_with(facelike_testdata::data_path(rel), &opts).expect("image");
        let name = rel.rsplit('/').next().unwrap();
        group.bench_function(format!("detect_upsample1/{name}"), |b| {
            b.iter(|| det.detect(black_box(&img), 1, 0.0))
        });
        if rel.ends_with("obama-480p.jpg") {
            group.bench_function(format!("detect_upsample0/{name}"), |b| {
                b.iter(|| det.detect(black_box(&img), 0, 0.0))
            });
            group.bench_function(format!("pyramid_up/{name}"), |b| {
                b.iter(|| pyramid_up_rgb(black_box(&img)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
