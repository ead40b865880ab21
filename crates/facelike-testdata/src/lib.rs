//! # facelike-testdata: where the tests find photos, golden numbers and models
//!
//! Photos are never committed to the repository. There are three sources of test data:
//!
//! - **The shared folder** (`$FACELIKE_SHARED`, else `shared/` beside the checkout; CI
//!   provides it): real photos in `data/`, dlib's golden outputs (JSON, chips) in `golden/`.
//!   Tests that need it and do not find it print one line saying what was skipped
//!   ([`skip_without_shared`]) and pass.
//! - **The sample photos**: face_recognition 1.3.0's own test images, which
//!   `facelike samples fetch` downloads from PyPI into `$FACELIKE_SAMPLES` (else the cache
//!   folder beside the models, `~/.cache/facelike/samples`). See [`sample_photo`].
//! - **The core golden data** committed in this crate (`golden/core.json`): dlib's outputs
//!   for the sample photos (the entries of `shared/golden/face_recognition.json` whose photos
//!   are byte-identical to them), with a digest of dlib's chip pixels instead of the chip.
//!   Without the shared folder the golden tests run on these ([`golden_all`]).
//!
//! Model files come from `facelike models fetch` (`$FACELIKE_MODELS` or the per-user cache).
//!
//! The crate also holds test support that must not ship in the libraries: [`synthetic`]
//! dlib-like descriptors (for the gallery benchmarks), a deterministic [`fake`] encoder, and
//! the `gallery-crash-writer` binary of the gallery's kill -9 test ([`crash_writer`]).

pub mod fake;
pub mod synthetic;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The command that fetches the sample photos.
pub const SAMPLES_FETCH: &str = "cargo run --release --bin facelike -- samples fetch";

fn nonempty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where the shared folder is looked for: `$FACELIKE_SHARED`, else `<repo>/../shared`.
pub fn shared_location() -> PathBuf {
    nonempty_env("FACELIKE_SHARED")
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The shared folder, if it is there (with `data/` and `golden/`).
pub fn shared_dir() -> Option<PathBuf> {
    let dir = shared_location();
    (dir.join("data").is_dir() && dir.join("golden").is_dir()).then_some(dir)
}

/// The shared folder, for code that cannot run without it (benchmarks, examples).
pub fn require_shared() -> PathBuf {
    shared_dir().unwrap_or_else(|| {
        panic!(
            "test data missing: expected data/ and golden/ in {}.\n\
             This reads real photos and dlib's golden outputs from the project's shared \
             folder, which CI places beside the repository. Put it there (or set \
             FACELIKE_SHARED to its path) and run again.",
            shared_location().display()
        )
    })
}

/// The one-line note printed when something is skipped for want of the shared folder.
pub fn skip_note(what: &str) -> String {
    format!(
        "SKIPPED {what}: needs the shared folder (real photos + dlib golden outputs), not found \
         at {}; set FACELIKE_SHARED to it or place it beside the repository",
        shared_location().display()
    )
}

/// `true` (after printing [`skip_note`] on stderr) when the shared folder is missing: the
/// caller returns, and the test passes. `what` names what is skipped.
pub fn skip_without_shared(what: &str) -> bool {
    if shared_dir().is_some() {
        return false;
    }
    eprintln!("{}", skip_note(what));
    true
}

/// A photo under `shared/data/` (panics without the shared folder: see [`photo`]).
pub fn data_path(rel: &str) -> PathBuf {
    require_shared().join("data").join(rel)
}

/// A photo of `shared/data/` by its relative path: the shared copy when the shared folder is
/// there, else the byte-identical sample photo when there is one (see [`sample_photo`]), else
/// `None`.
pub fn photo(rel: &str) -> Option<PathBuf> {
    if let Some(d) = shared_dir() {
        return Some(d.join("data").join(rel));
    }
    core()
        .samples
        .iter()
        .find(|s| s.shared.iter().any(|p| p == rel))
        .map(|s| sample_photo(&s.name))
}

/// One of face_recognition's test images (`face_recognition/tests/test_images/NAME` in the
/// shared folder, or the identical sample photo).
pub fn test_image(name: &str) -> PathBuf {
    let rel = format!("face_recognition/tests/test_images/{name}");
    photo(&rel).unwrap_or_else(|| panic!("{rel} is not one of the sample photos"))
}

/// The folder of face_recognition's test images: the shared copy, else the samples folder.
pub fn test_images_dir() -> PathBuf {
    match shared_dir() {
        Some(d) => d.join("data/face_recognition/tests/test_images"),
        None => samples_dir_checked(),
    }
}

pub use facelike_image::samples_dir;

fn samples_dir_checked() -> PathBuf {
    let dir = samples_dir();
    for s in &core().samples {
        if !dir.join(&s.name).is_file() {
            panic!(
                "sample photo {} missing from {}.\nFetch face_recognition's test photos first: \
                 `{SAMPLES_FETCH}` (or set FACELIKE_SAMPLES), or provide the shared folder \
                 (FACELIKE_SHARED).",
                s.name,
                dir.display()
            );
        }
    }
    dir
}

/// A sample photo by file name, checked to be the one the core golden data describes
/// (sha256); panics saying how to fetch the samples when it is missing.
pub fn sample_photo(name: &str) -> PathBuf {
    if !core().samples.iter().any(|s| s.name == name) {
        panic!("{name} is not one of the sample photos");
    }
    let dir = samples_dir_checked();
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        for s in &core().samples {
            let p = dir.join(&s.name);
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            assert_eq!(
                sha256_hex(&bytes),
                s.sha256,
                "{} is not face_recognition 1.3.0's photo: fetch the samples again ({SAMPLES_FETCH})",
                p.display()
            );
        }
    });
    dir.join(name)
}

/// Lower-case hex sha256 of some bytes (photos; a chip's RGB bytes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// The model files [`models_dir`] requires, by file name (`facelike models fetch` installs
/// them): the ResNet descriptor network, the 5- and 68-point shape predictors, the CNN (MMOD)
/// detector and the HOG frontal face detector.
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
    /// One entry per photo, in the file's order.
    pub images: Vec<GoldenImage>,
}

/// dlib's and face_recognition's outputs for one photo (as decoded, without EXIF rotation).
#[derive(Debug, Deserialize)]
pub struct GoldenImage {
    /// Path relative to `shared/data/` (or, in the core data, to the samples folder).
    pub image: String,
    /// Photo width in pixels.
    pub width: usize,
    /// Photo height in pixels.
    pub height: usize,
    /// dlib's HOG detector run on the photo.
    pub hog: GoldenHog,
    /// face_recognition's `face_locations(img)` (HOG, one upsample): `[top, right, bottom,
    /// left]` per face, clipped to the image with right and bottom clamped to the width and
    /// height themselves.
    pub face_locations_hog: Vec<[i64; 4]>,
    /// dlib's CNN (MMOD) detector run on the photo, where it was run.
    pub cnn: Option<GoldenCnn>,
    /// The HOG-detected faces with their landmarks, chips and descriptors, in detection order.
    pub faces: Vec<GoldenFace>,
    /// The folder `image` is relative to.
    #[serde(skip)]
    root: PathBuf,
}

/// dlib's HOG frontal face detector, `detector.run(img, upsample, adjust_threshold)`.
#[derive(Debug, Deserialize)]
pub struct GoldenHog {
    /// Times the photo was upsampled (doubled) before detection.
    pub upsample: u32,
    /// Added to each filter's threshold: a detection needs `score >= adjust_threshold`.
    pub adjust_threshold: f64,
    /// The detections, in dlib's order.
    pub faces: Vec<GoldenHogFace>,
}

/// One HOG detection.
#[derive(Debug, Deserialize)]
pub struct GoldenHogFace {
    /// dlib's rectangle in photo pixels, `[left, top, right, bottom]`, inclusive; it may
    /// extend past the photo.
    pub rect: [i64; 4],
    /// Filter score minus the filter's threshold.
    pub score: f64,
    /// Which of the detector's five filters fired (0 front, 1 left, 2 right, 3 front rotated
    /// left, 4 front rotated right).
    pub detector: usize,
}

/// dlib's CNN (MMOD) face detector, `cnn_face_detection_model_v1(img, upsample)`.
#[derive(Debug, Deserialize)]
pub struct GoldenCnn {
    /// Times the photo was upsampled (doubled) before detection.
    pub upsample: u32,
    /// The detections, in dlib's order.
    pub faces: Vec<GoldenCnnFace>,
}

/// One CNN detection.
#[derive(Debug, Deserialize)]
pub struct GoldenCnnFace {
    /// dlib's rectangle in photo pixels, `[left, top, right, bottom]`, inclusive.
    pub rect: [i64; 4],
    /// The network's detection confidence (dlib's `mmod_rectangle.confidence`).
    pub confidence: f64,
}

/// One HOG-detected face: its landmarks, dlib's aligned chip and dlib's descriptors.
#[derive(Debug, Deserialize)]
pub struct GoldenFace {
    /// The HOG detection rectangle, `[left, top, right, bottom]` in photo pixels, inclusive.
    pub rect: [i64; 4],
    /// The 5-point shape predictor's landmarks, `[x, y]` in whole photo pixels.
    pub landmarks5: Vec<[i64; 2]>,
    /// The 68-point shape predictor's landmarks, `[x, y]` in whole photo pixels.
    pub landmarks68: Vec<[i64; 2]>,
    /// Chip PNG path relative to `shared/golden/`.
    pub chip: String,
    /// Core data only: sha256 of dlib's chip as decoded RGB bytes (150 × 150 × 3, row-major).
    #[serde(default)]
    pub chip_rgb_sha256: Option<String>,
    /// dlib's 128-d descriptor from the photo with the 5-point landmarks: raw, not
    /// unit-length; dlib's f32 values stored as f64.
    pub descriptor: Vec<f64>,
    /// dlib's descriptor computed from the saved chip alone (`compute_face_descriptor` on the
    /// 150 × 150 chip), raw; tests of the network use it so chip extraction cannot add error.
    pub descriptor_from_chip: Vec<f64>,
    /// dlib's descriptor from the photo with the 68-point landmarks, raw.
    pub descriptor_68: Vec<f64>,
    /// L2 norm of [`descriptor`](Self::descriptor).
    pub descriptor_norm: f64,
    /// `shared/golden/` when the entry comes from the shared folder.
    #[serde(skip)]
    golden_dir: Option<PathBuf>,
}

impl GoldenImage {
    /// The photo's path on disk: [`image`](Self::image) under the shared `data/` folder or
    /// the samples folder.
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.image)
    }
    /// Whether the photo is a PNG, judged by its extension.
    pub fn is_png(&self) -> bool {
        self.image.to_lowercase().ends_with(".png")
    }
}

impl GoldenFace {
    /// dlib's chip PNG; panics for core entries (no chips are committed: see [`Self::chip_png`]).
    pub fn chip_path(&self) -> PathBuf {
        self.chip_png()
            .unwrap_or_else(|| panic!("{}: dlib's chip PNGs are in the shared folder", self.chip))
    }
    /// dlib's chip PNG when the entry comes from the shared folder.
    pub fn chip_png(&self) -> Option<PathBuf> {
        self.golden_dir.as_ref().map(|g| g.join(&self.chip))
    }
}

fn load(name: &str) -> GoldenFile {
    let shared = require_shared();
    let golden = shared.join("golden");
    let p = golden.join(name);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    let mut f: GoldenFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", p.display()));
    for img in &mut f.images {
        img.root = shared.join("data");
        for face in &mut img.faces {
            face.golden_dir = Some(golden.clone());
        }
    }
    f
}

/// The 32 face_recognition images (36 faces). Needs the shared folder.
pub fn face_recognition() -> GoldenFile {
    load("face_recognition.json")
}

/// The 150 sampled LFW images (157 faces). Needs the shared folder.
pub fn lfw_sample() -> GoldenFile {
    load("lfw_sample.json")
}

/// Both golden files: 182 images, 193 faces. Needs the shared folder.
pub fn all_images() -> Vec<GoldenImage> {
    let mut v = face_recognition().images;
    v.extend(lfw_sample().images);
    v
}

/// `golden/core.json`: which sample photos equal which shared photos, and dlib's outputs for
/// them.
#[derive(Debug, Deserialize)]
struct Core {
    samples: Vec<Sample>,
    images: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    sha256: String,
    /// The byte-identical photos of `shared/data/`.
    shared: Vec<String>,
}

const CORE_JSON: &str = include_str!("../golden/core.json");

fn core() -> &'static Core {
    static CORE: OnceLock<Core> = OnceLock::new();
    CORE.get_or_init(|| serde_json::from_str(CORE_JSON).expect("golden/core.json"))
}

/// The committed core golden data (`golden/core.json`): dlib's outputs for the 7 sample
/// photos, with paths in the samples folder (panics saying how to fetch them when missing).
pub fn golden_core() -> Vec<GoldenImage> {
    let dir = samples_dir_checked();
    let mut v: Vec<GoldenImage> =
        serde_json::from_value(core().images.clone()).expect("golden/core.json images");
    for img in &mut v {
        img.root = dir.clone();
        // Checks the photo's sha256.
        sample_photo(&img.image);
    }
    v
}

/// A set of golden images: the whole shared set, or the core set without the shared folder.
pub struct GoldenSet {
    /// The golden images of the set.
    pub images: Vec<GoldenImage>,
    /// `true` for the shared set (the tests' full counts apply).
    pub full: bool,
}

impl GoldenSet {
    /// Total number of faces over all images.
    pub fn faces(&self) -> usize {
        self.images.iter().map(|g| g.faces.len()).sum()
    }
    /// Prints which set a test runs on when it is the core one.
    fn note(self, what: &str) -> Self {
        if !self.full {
            eprintln!(
                "{what}: running on the core golden data ({} sample photos, {} faces); {}",
                self.images.len(),
                self.faces(),
                skip_note("the rest of the golden set")
            );
        }
        self
    }
}

/// All 182 golden images with the shared folder, else the core set. `what` names the test
/// (for the one-line note printed when it runs on the core set).
pub fn golden_all(what: &str) -> GoldenSet {
    match shared_dir() {
        Some(_) => GoldenSet {
            images: all_images(),
            full: true,
        },
        None => GoldenSet {
            images: golden_core(),
            full: false,
        }
        .note(what),
    }
}

/// face_recognition's 32 golden images with the shared folder, else the core set.
pub fn golden_face_recognition(what: &str) -> GoldenSet {
    match shared_dir() {
        Some(_) => GoldenSet {
            images: face_recognition().images,
            full: true,
        },
        None => GoldenSet {
            images: golden_core(),
            full: false,
        }
        .note(what),
    }
}

/// LFW View-2 descriptors: (relative paths, 7701 × 128 raw dlib descriptors). Needs the
/// shared folder.
pub fn lfw_descriptors() -> (Vec<String>, Vec<[f32; 128]>) {
    let g = require_shared().join("golden");
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

/// The `gallery-crash-writer` binary (a bin of this crate), for facelike-gallery's kill -9
/// test. `env!("CARGO_BIN_EXE_…")` only names binaries of the test's own package, so this
/// looks in the calling test's target folder (`<target>/<profile>/`, the parent of the test
/// executable's `deps/`). When the binary is missing or older than the sources it is built
/// from (this crate, facelike-gallery, facelike), it runs `cargo build` for it first, with
/// the test's profile and target folder.
pub fn crash_writer() -> PathBuf {
    testdata_bin("gallery-crash-writer")
}

fn newest_source(dir: &Path, newest: &mut std::time::SystemTime) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            newest_source(&p, newest);
        } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
            *newest = (*newest).max(t);
        }
    }
}

fn testdata_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps folder");
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("profile folder")
    } else {
        deps
    };
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = std::time::UNIX_EPOCH;
    for c in ["facelike-testdata", "facelike-gallery", "facelike"] {
        newest_source(&manifest.join("..").join(c).join("src"), &mut newest);
        newest_source(&manifest.join("..").join(c).join("Cargo.toml"), &mut newest);
    }
    let fresh = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= newest);
    if fresh {
        return bin;
    }
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "test".to_owned(),
        Some(p) => p.to_owned(),
        None => "release".to_owned(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building {name} (a binary of facelike-testdata) with --profile {profile} into {}",
        profile_dir.display()
    );
    let status = std::process::Command::new(&cargo)
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest.join("Cargo.toml"))
        .args([
            "-p",
            "facelike-testdata",
            "--bin",
            name,
            "--profile",
            &profile,
        ])
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target folder"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
    assert!(status.success(), "cargo build of {name} failed: {status}");
    assert!(
        bin.is_file(),
        "{} missing after cargo build (a --target build? build it with `cargo build -p \
         facelike-testdata --bin {name}`)",
        bin.display()
    );
    bin
}
