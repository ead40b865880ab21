//! # facelike-testdata: where the tests find photos, golden numbers and models
//!
//! Photos are never committed to the repository. Tests read them from the `shared/` folder
//! that sits beside the checkout (CI provides it), or from `$FACELIKE_SHARED`. dlib's golden
//! outputs come from `shared/golden/`. Model files come from `facelike models fetch`
//! (`$FACELIKE_MODELS` or the per-user cache). When something is missing, the test fails with
//! a message saying how to get it.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `shared/` folder: `$FACELIKE_SHARED`, else `<repo>/../shared`.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("FACELIKE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if !dir.join("data").is_dir() || !dir.join("golden").is_dir() {
        panic!(
            "test data missing: expected data/ and golden/ in {}.\n\
             These tests read real photos and dlib's golden outputs from the project's shared \
             folder, which CI places beside the repository. Put it there (or set \
             FACELIKE_SHARED to its path) and run the tests again.",
            dir.display()
        );
    }
    dir
}

/// A photo under `shared/data/`.
pub fn data_path(rel: &str) -> PathBuf {
    shared_dir().join("data").join(rel)
}

/// The model directory (`facelike::models::models_dir`'s rule: `$FACELIKE_MODELS`, else the
/// per-user cache, an empty variable counting as unset), checked to hold every model file.
pub fn models_dir() -> PathBuf {
    let dir = facelike_image::models_dir();
    for f in MODEL_FILES {
        if !dir.join(f).is_file() {
            panic!(
                "model file {f} missing from {}.\nFetch the models first: \
                 `cargo run --release -p facelike-cli -- models fetch` (or set FACELIKE_MODELS).",
                dir.display()
            );
        }
    }
    dir
}

pub const MODEL_FILES: [&str; 5] = [
    "dlib_face_recognition_resnet_model_v1.dat",
    "shape_predictor_5_face_landmarks.dat",
    "shape_predictor_68_face_landmarks.dat",
    "mmod_human_face_detector.dat",
    "frontal_face_detector.dat",
];

/// `shared/golden/*.json`, as described in `shared/golden/README.md`.
#[derive(Debug, Deserialize)]
pub struct GoldenFile {
    pub images: Vec<GoldenImage>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenImage {
    /// Path relative to `shared/data/`.
    pub image: String,
    pub width: usize,
    pub height: usize,
    pub hog: GoldenHog,
    pub face_locations_hog: Vec<[i64; 4]>,
    pub cnn: Option<GoldenCnn>,
    pub faces: Vec<GoldenFace>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenHog {
    pub upsample: u32,
    pub adjust_threshold: f64,
    pub faces: Vec<GoldenHogFace>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenHogFace {
    pub rect: [i64; 4],
    pub score: f64,
    pub detector: usize,
}

#[derive(Debug, Deserialize)]
pub struct GoldenCnn {
    pub upsample: u32,
    pub faces: Vec<GoldenCnnFace>,
}

#[derive(Debug, Deserialize)]
pub struct GoldenCnnFace {
    pub rect: [i64; 4],
    pub confidence: f64,
}

#[derive(Debug, Deserialize)]
pub struct GoldenFace {
    pub rect: [i64; 4],
    pub landmarks5: Vec<[i64; 2]>,
    pub landmarks68: Vec<[i64; 2]>,
    /// Chip PNG path relative to `shared/golden/`.
    pub chip: String,
    pub descriptor: Vec<f64>,
    pub descriptor_from_chip: Vec<f64>,
    pub descriptor_68: Vec<f64>,
    pub descriptor_norm: f64,
}

impl GoldenImage {
    pub fn path(&self) -> PathBuf {
        data_path(&self.image)
    }
    pub fn is_png(&self) -> bool {
        self.image.to_lowercase().ends_with(".png")
    }
}

impl GoldenFace {
    pub fn chip_path(&self) -> PathBuf {
        shared_dir().join("golden").join(&self.chip)
    }
}

fn load(name: &str) -> GoldenFile {
    let p = shared_dir().join("golden").join(name);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", p.display()))
}

/// The 32 face_recognition images (36 faces).
pub fn face_recognition() -> GoldenFile {
    load("face_recognition.json")
}

/// The 150 sampled LFW images (157 faces).
pub fn lfw_sample() -> GoldenFile {
    load("lfw_sample.json")
}

/// Both golden files: 182 images, 193 faces.
pub fn all_images() -> Vec<GoldenImage> {
    let mut v = face_recognition().images;
    v.extend(lfw_sample().images);
    v
}

/// LFW View-2 descriptors: (relative paths, 7701 × 128 raw dlib descriptors).
pub fn lfw_descriptors() -> (Vec<String>, Vec<[f32; 128]>) {
    let g = shared_dir().join("golden");
    let names: Vec<String> = std::fs::read_to_string(g.join("lfw_descriptors.txt"))
        .expect("read lfw_descriptors.txt")
        .lines()
        .map(str::to_owned)
        .collect();
    let bytes = std::fs::read(g.join("lfw_descriptors.f32")).expect("read lfw_descriptors.f32");
    let v: Vec<[f32; 128]> = bytes
        .chunks_exact(512)
        .map(|c| {
            std::array::from_fn(|i| {
                f32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]])
            })
        })
        .collect();
    assert_eq!(names.len(), v.len());
    (names, v)
}
