//! # facelike: faces to dlib-identical 128-D descriptors, in Rust
//!
//! The data flows one way: image → detect → landmarks → chip → embed → (normalise).
//! Each arrow is a module with one job:
//!
//! * [`models`] — where dlib's `.dat` files live and how they are checked;
//! * [`shape_predictor`] — 5- and 68-point landmarks ([`ShapePredictor`]);
//! * [`chip`] — aligned 150×150 face chips ([`chip::extract_chip`]) and [`jitter`];
//! * [`resnet`] — dlib's ResNet that turns a 150×150 face chip into a [`Descriptor`];
//! * [`pipeline`] — the whole job: [`Encoder`] turns a photo into [`Face`]s;
//! * [`hog`] — dlib's HOG frontal face detector (face_recognition's `model="hog"`), on
//!   [`fhog`] features;
//! * [`mmod`] — dlib's MMOD CNN face detector (`model="cnn"`);
//!
//! The plain types that cross crate boundaries ([`Descriptor`], [`Metric`], [`Rect`],
//! [`Point`], [`DetectedBy`], [`DescriptorSpace`]) live in `facelike-types` and are re-exported
//! here, with its [`descriptor`] and [`geometry`] modules.
//!
//! Numbers equal dlib 20.0.1's (what Python's `face_recognition` uses); the tests check them
//! against golden outputs recorded from dlib.

pub mod chip;
pub use facelike_types::{descriptor, geometry};
mod cxxsort;
pub mod fhog;
pub mod hog;
pub mod jitter;
pub mod mmod;
pub mod models;
pub mod pipeline;
pub mod resnet;
pub mod shape_predictor;
pub mod transform;

pub use facelike_image::{load as load_image, ImageError, LoadOptions, RgbImage};
pub use facelike_types::{
    Descriptor, DescriptorKind, DescriptorSpace, DetectedBy, Metric, DEFAULT_TOLERANCE,
};
pub use geometry::{DPoint, DRect, Point, Rect};
pub use hog::{HogDetection, HogDetector};
pub use mmod::{CnnDetection, CnnDetector};
pub use models::{Model, ModelError};
pub use pipeline::{
    Detection, DetectorKind, EncodeError, Encoder, EncoderOptions, Face, LandmarkModel,
};
pub use resnet::{ChipSizeError, DescriptorNet};
pub use shape_predictor::{Landmarks, ShapePredictor};
