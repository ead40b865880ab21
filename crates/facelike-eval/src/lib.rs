//! # facelike-eval: how good are the descriptors, and can a small adapter make them better?
//!
//! * [`pairs`] — LFW `pairs.txt` / `people.txt`, a plain pairs format, deterministic pair
//!   sampling from a folder of identity sub-folders;
//! * [`verify`] — the LFW View-2 protocol (threshold chosen on nine folds, tested on the
//!   tenth), ROC, AUC, EER, TAR at a FAR, the calibrated threshold, undetected faces;
//! * [`plot`] — ROC and loss-curve PNGs (pure-Rust text from an embedded font);
//! * [`adapter`] — a 128→128 adapter (linear or residual MLP) on top of the frozen dlib
//!   descriptor, with hand-derived gradients, saved as safetensors;
//! * [`triplet`] — FaceNet's triplet loss, semi-hard and batch-hard mining;
//! * [`train`](mod@train) — P×K batches, Adam, a validation split by identity, early stopping;
//! * [`crossval`] — the adapter trained on the other folds' people, tested on each fold.
//!
//! The photo → descriptor pipeline is elsewhere: everything here takes
//! [`facelike_types::Descriptor`]s and identity labels.

pub mod adapter;
pub mod crossval;
pub mod error;
pub mod pairs;
pub mod plot;
pub mod rng;
pub mod train;
pub mod triplet;
pub mod verify;

pub use adapter::{Adapter, AdapterKind, AdapterTraining};
pub use error::{EvalError, Result};
pub use pairs::{
    sample_pairs, scan_labelled_folder, Identity, Pair, PairList, PeopleFolds, SampleConfig,
};
pub use train::{train, TrainConfig, TrainReport};
pub use verify::{
    evaluate_pairs, EvalOptions, Roc, ThresholdRule, UndetectedPolicy, VerificationReport,
};

/// The identity of an image path laid out as `<identity>/<file>`: its first component.
pub fn identity_of(path: &str) -> &str {
    path.split(['/', '\\']).next().unwrap_or(path)
}
