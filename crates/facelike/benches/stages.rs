//! Each stage of the photo-to-descriptor pipeline on face_recognition's example photos: model
//! loading, CNN detection (upsample 0 and 1), 5-point landmarks, the 150x150 chip, and the whole
//! `Encoder::encode` with HOG and with CNN detection. `bench/compare.sh` sets the same stages
//! beside dlib's times; this is the criterion view of them.
//!
//! `cargo bench -p facelike --bench stages` (needs `../shared` and `facelike models fetch`).

use criterion::{criterion_group, criterion_main, Criterion};
use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
use facelike::{
    CnnDetector, DescriptorNet, DetectorKind, Encoder, EncoderOptions, HogDetector, Model,
    ShapePredictor,
};
use facelike_image::{load_with, LoadOptions};
use std::hint::black_box;
use std::time::Duration;

const PHOTOS: [&str; 2] = [
    "face_recognition/examples/obama-480p.jpg",
    "face_recognition/examples/two_people.jpg",
];

fn stages(c: &mut Criterion) {
    let dir = facelike_testdata::models_dir();
    let mut group = c.benchmark_group("stages");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));
    group.bench_function("load_all_models", |b| {
        b.iter(|| {
            (
                DescriptorNet::load(&dir).unwrap(),
                ShapePredictor::load(&dir, Model::ShapePredictor5).unwrap(),
                ShapePredictor::load(&dir, Model::ShapePredictor68).unwrap(),
                HogDetector::load(&dir).unwrap(),
                CnnDetector::load(&dir).unwrap(),
            )
        })
    });
    let cnn = CnnDetector::load(&dir).unwrap();
    let hog = HogDetector::load(&dir).unwrap();
    let sp5 = ShapePredictor::load(&dir, Model::ShapePredictor5).unwrap();
    let options = |detector| EncoderOptions {
        models_dir: Some(dir.clone()),
        detector,
        ..EncoderOptions::default()
    };
    let hog_encoder = Encoder::new(options(DetectorKind::Hog)).unwrap();
    let cnn_encoder = Encoder::new(options(DetectorKind::Cnn)).unwrap();
    let load = LoadOptions {
        exif_orientation: false,
        ..LoadOptions::default()
    };
    for rel in PHOTOS {
        let img = load_with(facelike_testdata::data_path(rel), &load).expect("photo");
        let name = rel.rsplit('/').next().unwrap();
        group.bench_function(format!("cnn_upsample0/{name}"), |b| {
            b.iter(|| cnn.detect(black_box(&img), 0))
        });
        group.bench_function(format!("cnn_upsample1/{name}"), |b| {
            b.iter(|| cnn.detect(black_box(&img), 1))
        });
        let rect = hog.detect(&img, 1, 0.0)[0].rect;
        group.bench_function(format!("landmarks5/{name}"), |b| {
            b.iter(|| sp5.predict(black_box(&img), rect))
        });
        let shape = sp5.predict(&img, rect);
        let details = face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING).unwrap();
        group.bench_function(format!("chip/{name}"), |b| {
            b.iter(|| extract_chip(black_box(&img), &details))
        });
        group.bench_function(format!("encode_hog/{name}"), |b| {
            b.iter(|| hog_encoder.encode(black_box(&img)).unwrap())
        });
        group.bench_function(format!("encode_cnn/{name}"), |b| {
            b.iter(|| cnn_encoder.encode(black_box(&img)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
