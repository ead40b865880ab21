//! # facelike-api: one call per job, for every front end
//!
//! The command-line tool, the Python package and the HTTP server are thin shells over this
//! crate: they turn their inputs into one options struct per job, call one function, and
//! print or send the serde-friendly result. No front end holds an algorithm or a
//! compatibility rule; they live here or below.
//!
//! | job | call | result |
//! |---|---|---|
//! | encode / detect | [`encode::encode`] with [`encode::Job`]s on an [`Engine`] | one [`encode::ImageRecord`] per image, in order |
//! | embed chips | [`encode::embed_chips`] | one [`encode::ChipRecord`] per chip |
//! | compare | [`compare::compare`] with [`compare::CompareOptions`] | [`compare::CompareReport`] |
//! | recognize | [`recognize::recognize`] (face_recognition's CLI rules) | [`recognize::RecognizeEvent`]s |
//! | index | [`gallery::index`] with [`gallery::IndexOptions`] | [`gallery::IndexReport`] |
//! | search | [`gallery::Searcher::open`] then [`gallery::Searcher::search_file`] | [`facelike_gallery::QueryFaceRecord`]s |
//! | map / pca / projector | [`map::map`], [`map::pca`], [`map::projector`] | [`map::MapReport`], … |
//! | evaluate / train | [`eval::verify_pairs`], [`eval::train`] | [`eval::VerifyReport`], [`eval::TrainOutcome`] |
//!
//! Every gallery job takes a [`GalleryLocation`]: a folder (the embedded redb store) or a
//! `postgres://` URL (the PostgreSQL + pgvector backend, `facelike-pg`); anything that
//! converts into one works (`&Path`, `&PathBuf`, `&str`: a string or path that is a
//! `postgres://` / `postgresql://` URL names the database, anything else a folder).
//!
//! Every photo-to-descriptor job takes the same [`EncodeOptions`] (defaults: face_recognition's),
//! whose [`Engine`] holds the loaded models and the descriptor space. Jobs over many files
//! report a bad file in its record and carry on; errors ([`ApiError`]) name the file and the
//! problem. Nothing here prints.
//!
//! ```no_run
//! use facelike_api::{encode, EncodeOptions};
//! let jobs = encode::jobs_for(&["photos/".into()], encode::Job::Encode)?;
//! let engine = encode::engine_for(&jobs, &EncodeOptions::default())?;
//! let failed = encode::encode(&engine, &jobs, &|| {}, |record| {
//!     println!("{}", serde_json::to_string(&record).unwrap());
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod compare;
pub mod encode;
mod engine;
mod error;
pub mod eval;
pub mod gallery;
pub mod location;
pub mod map;
pub mod recognize;

pub use engine::{
    chip_thumbnail, EncodeOptions, Engine, Needs, DEFAULT_MAX_PIXELS, DEFAULT_UPSAMPLE,
};
pub use error::{ApiError, Result};
pub use facelike_image::{is_image_path, IMAGE_EXTENSIONS};
pub use location::{GalleryLocation, OpenGallery};

/// The image files of `inputs`: files given directly (whatever their name), and image files
/// found under folders, walked recursively in sorted order, each file once.
pub fn collect_images(inputs: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    Ok(facelike_image::image_files(inputs, &Default::default())?)
}

// The types results are made of, so that front ends need no other facelike crate.
pub use facelike::{DetectorKind, Face, LandmarkModel, RgbImage};
pub use facelike_gallery::{AnnKind, MatchRecord, QueryFaceRecord, SearchBy};
pub use facelike_types::{
    Descriptor, DescriptorKind, DescriptorSpace, DetectedBy, Metric, Point, Rect,
};
