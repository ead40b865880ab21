//! The compare job: every face pair of two photos with their distances and the same-person
//! verdict.

use crate::engine::{EncodeOptions, Engine, Needs};
use crate::error::Result;
use facelike::{Descriptor, Metric};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings of [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompareOptions {
    /// How the photos become descriptors.
    pub encode: EncodeOptions,
    /// Metric of the same-person verdict.
    pub metric: Metric,
    /// Same-person tolerance; `None`: the descriptor space's default (0.6 on raw L2).
    pub tolerance: Option<f32>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            encode: EncodeOptions::default(),
            metric: Metric::L2,
            tolerance: None,
        }
    }
}

/// One face of a compared pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceRef {
    /// The photo's path as given.
    pub image: String,
    /// The face's index in the photo, in the order `encode` gives.
    pub face: usize,
    /// dlib's inclusive `[left, top, right, bottom]`.
    pub rect: [i64; 4],
}

/// One face pair: one JSON line of `facelike compare --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    /// The face of the first photo.
    pub a: FaceRef,
    /// The face of the second photo.
    pub b: FaceRef,
    /// Euclidean distance.
    pub l2: f32,
    /// Manhattan distance.
    pub l1: f32,
    /// `1 − cos`.
    pub cosine: f32,
    /// L2 between the unit-length descriptors (raw descriptors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_normalized: Option<f32>,
    /// The verdict's metric.
    pub metric: Metric,
    /// The verdict's tolerance.
    pub tolerance: f32,
    /// The distance in `metric`.
    pub distance: f32,
    /// `distance <= tolerance`.
    pub same_person: bool,
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// Number of faces in each photo.
    pub faces: [usize; 2],
    /// Every pair, first photo's faces outermost.
    pub pairs: Vec<PairRecord>,
    /// The photos in which no face was found.
    pub no_face: Vec<PathBuf>,
}

/// Distances and verdict between two descriptors in one space.
pub fn pair_record(
    a: FaceRef,
    b: FaceRef,
    (da, db): (&Descriptor, &Descriptor),
    raw: bool,
    metric: Metric,
    tolerance: f32,
) -> PairRecord {
    let distance = da.distance(db, metric);
    PairRecord {
        a,
        b,
        l2: da.distance(db, Metric::L2),
        l1: da.distance(db, Metric::L1),
        cosine: da.distance(db, Metric::Cosine),
        l2_normalized: raw.then(|| da.normalized().distance(&db.normalized(), Metric::L2)),
        metric,
        tolerance,
        distance,
        same_person: distance <= tolerance,
    }
}

/// Every face pair of photos `a` and `b`: distances and the same-person verdict.
pub fn compare(a: &Path, b: &Path, o: &CompareOptions) -> Result<CompareReport> {
    let engine = Engine::new(&o.encode, Needs::DETECT)?;
    let tolerance = engine.tolerance(o.metric, o.tolerance)?;
    let (fa, fb) = rayon::join(|| engine.encode_file(a), || engine.encode_file(b));
    let (_, fa) = fa?;
    let (_, fb) = fb?;
    let no_face = [(a, &fa), (b, &fb)]
        .into_iter()
        .filter(|(_, f)| f.is_empty())
        .map(|(p, _)| p.to_path_buf())
        .collect();
    let raw = engine.space().is_raw();
    let face_ref = |p: &Path, i: usize, f: &facelike::Face| FaceRef {
        image: p.display().to_string(),
        face: i,
        rect: f.rect.to_array(),
    };
    let mut pairs = Vec::with_capacity(fa.len() * fb.len());
    for (i, x) in fa.iter().enumerate() {
        for (j, y) in fb.iter().enumerate() {
            pairs.push(pair_record(
                face_ref(a, i, x),
                face_ref(b, j, y),
                (&x.descriptor, &y.descriptor),
                raw,
                o.metric,
                tolerance,
            ));
        }
    }
    Ok(CompareReport {
        faces: [fa.len(), fb.len()],
        pairs,
        no_face,
    })
}
