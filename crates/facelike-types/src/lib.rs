//! # facelike-types: the plain types every facelike crate shares
//!
//! The bottom of the crate graph. Everything that crosses a crate boundary lives here, so that
//! the gallery, the evaluation, the pictures and every front end depend on these types and not
//! on the engine that computes them:
//!
//! * [`descriptor`] — the 128-D [`Descriptor`], [`Metric`] and the L2/L1/cosine distances
//!   (L2 summed as numpy sums it, so distances equal face_recognition's `face_distance`);
//! * [`geometry`] — dlib's inclusive [`Rect`], [`Point`], [`DPoint`] and its rounding rules;
//! * [`detection`] — what found a face: [`DetectedBy`], one variant per detector;
//! * [`space`] — which descriptor space a descriptor lives in ([`DescriptorKind`], the name a
//!   gallery records) and [`DescriptorSpace`], the map from dlib's raw descriptor into it
//!   (raw, unit length, or a trained adapter) with its same-person tolerance;
//! * [`adapter`] — the inference half of the triplet-loss adapter: its file format and
//!   forward pass (training lives in `facelike-eval`).
//!
//! No I/O beyond reading an adapter file, no threads, no printing.

#![forbid(unsafe_code)]

pub mod adapter;
pub mod descriptor;
pub mod detection;
pub mod geometry;
pub mod space;

pub use adapter::{Adapter, AdapterError, AdapterKind};
pub use descriptor::{Descriptor, Metric, DEFAULT_TOLERANCE, DESCRIPTOR_LEN};
pub use detection::DetectedBy;
pub use geometry::{DPoint, DRect, Point, Rect};
pub use space::{default_tolerance, DescriptorKind, DescriptorSpace, DLIB_RESNET_V1};
