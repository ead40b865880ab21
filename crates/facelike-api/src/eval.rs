//! The measuring jobs: the LFW View-2 verification protocol on photos, and training a
//! triplet-loss adapter on a gallery.

use crate::engine::{EncodeOptions, Engine, Needs};
use crate::error::{ApiError, Result};
use crate::location::{GalleryLocation, OpenGallery};
use facelike::{Descriptor, DetectorKind, Face, Rect};
use facelike_eval::train::EpochStats;
pub use facelike_eval::{EvalOptions, PairList, TrainConfig, TrainReport, VerificationReport};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

// The protocol's and the trainer's settings, for front ends that set them.
pub use facelike_eval::triplet::Mining;
pub use facelike_eval::{
    sample_pairs, scan_labelled_folder, AdapterKind, SampleConfig, ThresholdRule, UndetectedPolicy,
};

/// Settings of [`verify_pairs`].
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// How the photos become descriptors.
    pub encode: EncodeOptions,
    /// The protocol's settings (metric, undetected faces, threshold rule).
    pub protocol: EvalOptions,
    /// Where HOG finds no face, try the CNN detector (upsample 1) before giving up.
    pub cnn_fallback: bool,
    /// Where no face is found, describe this rectangle instead.
    pub fallback_rect: Option<Rect>,
    /// Write the ROC curve picture here (PNG).
    pub roc: Option<PathBuf>,
}

/// What [`verify_pairs`] measured.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The protocol's report.
    pub report: VerificationReport,
    /// Errors of images that could not be read (each names the file).
    pub errors: Vec<String>,
}

/// The face nearest the image centre, as the LFW descriptors in `../shared` were made.
pub fn central_face(faces: &[Face], w: usize, h: usize) -> Option<Descriptor> {
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    faces
        .iter()
        .min_by(|a, b| {
            let d = |f: &Face| {
                let (x, y) = (
                    (f.rect.left + f.rect.right) as f64 / 2.0,
                    (f.rect.top + f.rect.bottom) as f64 / 2.0,
                );
                (x - cx).powi(2) + (y - cy).powi(2)
            };
            d(a).total_cmp(&d(b))
        })
        .map(|f| f.descriptor)
}

/// The verification protocol on `pairs` of photos under `root`: one descriptor per image (the
/// face nearest the centre), thresholds chosen on nine folds and tested on the tenth.
/// `progress` after each image, from any thread.
pub fn verify_pairs(
    pairs: &PairList,
    root: &Path,
    o: &VerifyOptions,
    progress: &(dyn Fn(Option<&str>) + Sync),
) -> Result<VerifyReport> {
    let engine = Engine::new(&o.encode, Needs::DETECT)?;
    let fallback = if o.cnn_fallback {
        Some(Engine::new(
            &EncodeOptions {
                detector: DetectorKind::Cnn,
                upsample: 1,
                ..o.encode.clone()
            },
            Needs::DETECT,
        )?)
    } else {
        None
    };
    let images: Vec<String> = pairs
        .unique_images()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let encoded: Vec<(String, std::result::Result<Option<Descriptor>, String>)> = images
        .par_iter()
        .map(|rel| {
            let path = facelike_eval::pairs::resolve(root, rel);
            let d = match engine.load_image(&path) {
                Ok(img) => {
                    let (w, h) = (img.width(), img.height());
                    let mut d = engine
                        .encode_image(&img)
                        .ok()
                        .and_then(|f| central_face(&f, w, h));
                    if d.is_none() {
                        if let Some(cnn) = &fallback {
                            d = cnn
                                .encode_image(&img)
                                .ok()
                                .and_then(|f| central_face(&f, w, h));
                        }
                    }
                    if d.is_none() {
                        if let Some(r) = o.fallback_rect {
                            d = engine
                                .encode_rects(&img, &[r])
                                .ok()
                                .and_then(|f| f.first().map(|f| f.descriptor));
                        }
                    }
                    Ok(d)
                }
                Err(e) => Err(e.to_string()),
            };
            progress(d.as_ref().err().map(String::as_str));
            (rel.clone(), d)
        })
        .collect();
    let mut errors = Vec::new();
    let mut found: HashMap<String, Option<Descriptor>> = HashMap::with_capacity(encoded.len());
    for (rel, d) in encoded {
        match d {
            Ok(d) => {
                found.insert(rel, d);
            }
            Err(e) => {
                errors.push(e);
                found.insert(rel, None);
            }
        }
    }
    let (report, roc) =
        facelike_eval::evaluate_pairs(pairs, |rel| found.get(rel).copied().flatten(), &o.protocol)?;
    if let Some(p) = &o.roc {
        facelike_eval::plot::plot_roc(
            p,
            &format!("ROC, {} pairs (AUC {:.4})", report.pairs, report.auc),
            &[("facelike", &roc)],
        )?;
    }
    Ok(VerifyReport { report, errors })
}

/// What [`train`] wrote.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The adapter file.
    pub adapter: PathBuf,
    /// The loss-curve picture.
    pub loss_curve: PathBuf,
    /// The training report.
    pub report: TrainReport,
}

/// Trains a triplet-loss adapter on the raw descriptors of `gallery` and writes it to `out`
/// (safetensors) with its loss curve (`loss_png`, default: `out` with `.png`).
pub fn train(
    gallery: impl Into<GalleryLocation>,
    out: &Path,
    loss_png: Option<&Path>,
    cfg: &TrainConfig,
    progress: impl FnMut(&EpochStats),
) -> Result<TrainOutcome> {
    let g = OpenGallery::open_read_only(&gallery.into())?;
    if let Some(k) = g.kind()? {
        if k.normalized || k.adapter.is_some() {
            return Err(ApiError::Invalid(format!(
                "gallery {} holds {} descriptors; train on a gallery of raw dlib descriptors",
                g.name(),
                k.label()
            )));
        }
    }
    let (_, identity_ids, data) = g.load_vectors()?;
    let names = g.identity_names()?;
    let descriptors: Vec<Descriptor> = data
        .chunks_exact(128)
        .filter_map(Descriptor::from_slice)
        .collect();
    let labels: Vec<&str> = identity_ids
        .iter()
        .map(|i| names.get(*i as usize).map(String::as_str).unwrap_or(""))
        .collect();
    let (adapter, report) = facelike_eval::train(&descriptors, &labels, cfg, progress)?;
    adapter
        .save(out)
        .map_err(|e| ApiError::Invalid(format!("writing {}: {e}", out.display())))?;
    let png = loss_png
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.with_extension("png"));
    facelike_eval::plot::plot_loss(&png, "triplet loss", &report.loss_series())?;
    Ok(TrainOutcome {
        adapter: out.to_owned(),
        loss_curve: png,
        report,
    })
}
