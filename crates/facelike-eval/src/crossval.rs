//! Honest evaluation of the adapter: for each fold k, train on the people of the other folds
//! only, pick the threshold on the other folds' pairs, test on fold k's pairs — and compare
//! with the plain descriptors under the same protocol.

use crate::adapter::Adapter;
use crate::error::{EvalError, Result};
use crate::identity_of;
use crate::pairs::PairList;
use crate::train::{train, EpochStats, TrainConfig, TrainReport};
use crate::verify::{
    accuracy_at, choose_threshold, evaluate_scored, score_pairs, EvalOptions, Roc, ScoredPair,
};
use facelike_types::{Descriptor, Metric};
use serde::Serialize;
use std::collections::HashMap;

/// One fold of [`cross_validate_adapter`].
#[derive(Clone, Debug, Serialize)]
pub struct AdapterFold {
    /// The tested fold, `0..folds`.
    pub fold: usize,
    /// Gallery faces the adapter was trained on (those of people outside this fold).
    pub train_faces: usize,
    /// Identities with 2+ faces among them (training and validation split together).
    pub train_identities: usize,
    /// Plain descriptors (the options' metric), threshold from the other folds.
    pub baseline_accuracy: f64,
    /// The plain descriptors' threshold, chosen on the other folds.
    pub baseline_threshold: f64,
    /// Adapted descriptors (L2), threshold from the other folds' pairs under this fold's
    /// adapter.
    pub adapter_accuracy: f64,
    /// The adapted descriptors' L2 threshold, chosen on the other folds' pairs.
    pub adapter_threshold: f64,
    /// How this fold's adapter trained.
    pub training: TrainReport,
}

/// Mean and population standard deviation of per-fold accuracies.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Population standard deviation (divides by n, not n − 1).
    pub std: f64,
}

impl MeanStd {
    /// The mean and population standard deviation of `v` (0 and 0 when empty).
    pub fn of(v: &[f64]) -> MeanStd {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
        MeanStd { mean, std }
    }
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterCrossValidation {
    /// Per-fold test accuracy of the plain descriptors.
    pub baseline: MeanStd,
    /// Per-fold test accuracy of the adapted descriptors.
    pub adapter: MeanStd,
    /// ROC AUC of the plain descriptors, all pairs pooled.
    pub baseline_auc: f64,
    /// ROC AUC of the adapted descriptors, each fold scored by its own adapter, pooled.
    pub adapter_auc: f64,
    /// TAR at FAR ≤ 10⁻³ of the plain descriptors, pooled.
    #[serde(rename = "baseline_tar_at_far_1e-3")]
    pub baseline_tar_at_far_1e_3: f64,
    /// TAR at FAR ≤ 10⁻³ of the adapted descriptors, pooled.
    #[serde(rename = "adapter_tar_at_far_1e-3")]
    pub adapter_tar_at_far_1e_3: f64,
    /// One entry per fold, in fold order.
    pub folds: Vec<AdapterFold>,
    /// Each fold's pairs scored by that fold's adapter, pooled (for a ROC picture).
    #[serde(skip)]
    pub adapter_roc: Roc,
    /// The plain descriptors' ROC over all pairs.
    #[serde(skip)]
    pub baseline_roc: Roc,
    /// Per pair, in the order of the pair list: (baseline distance, adapted distance).
    #[serde(skip)]
    pub distances: Vec<(ScoredPair, ScoredPair)>,
}

/// For each fold `k` of an identity-disjoint pair list: trains an adapter on the labelled
/// `gallery` faces (`<identity>/<file>` paths) whose identity is not in fold `k`'s pairs,
/// then scores fold `k` with it. Images of the pairs missing from the gallery count as
/// undetected (the options' policy). `progress(fold, epoch)` follows the training.
pub fn cross_validate_adapter(
    pairs: &PairList,
    gallery: &HashMap<String, Descriptor>,
    cfg: &TrainConfig,
    opts: &EvalOptions,
    mut progress: impl FnMut(usize, &EpochStats),
) -> Result<AdapterCrossValidation> {
    if !pairs.identity_disjoint {
        return Err(EvalError::Invalid(
            "adapter cross-validation needs folds that share no identity".into(),
        ));
    }
    let mut fold_of: HashMap<&str, usize> = HashMap::new();
    for p in &pairs.pairs {
        for im in [&p.a, &p.b] {
            fold_of.insert(identity_of(im), p.fold);
        }
    }
    let mut names: Vec<&String> = gallery.keys().collect();
    names.sort();
    let base = score_pairs(pairs, |p| gallery.get(p).copied(), opts);
    let base_report = evaluate_scored(&base.scored, pairs.folds, opts)?;
    let adapted_opts = EvalOptions {
        metric: Metric::L2,
        ..opts.clone()
    };
    let mut folds = Vec::new();
    let mut pooled: Vec<ScoredPair> = Vec::new();
    for k in 0..pairs.folds {
        let train_names: Vec<&String> = names
            .iter()
            .copied()
            .filter(|n| fold_of.get(identity_of(n)) != Some(&k))
            .collect();
        let descriptors: Vec<Descriptor> = train_names.iter().map(|n| gallery[*n]).collect();
        let labels: Vec<&str> = train_names.iter().map(|n| identity_of(n)).collect();
        let (adapter, report) = train(&descriptors, &labels, cfg, |e| progress(k, e))?;
        let scored = adapted_scores(pairs, gallery, &adapter, &adapted_opts);
        let (train_pairs, test_pairs): (Vec<ScoredPair>, Vec<ScoredPair>) =
            scored.iter().partition(|p| p.fold != k);
        let threshold = choose_threshold(&train_pairs, opts.threshold_rule);
        let base_fold = base_report
            .folds
            .iter()
            .find(|f| f.fold == k)
            .ok_or_else(|| EvalError::Invalid(format!("fold {k} has no pairs")))?;
        folds.push(AdapterFold {
            fold: k,
            train_faces: descriptors.len(),
            train_identities: report.train_identities + report.val_identities,
            baseline_accuracy: base_fold.accuracy,
            baseline_threshold: base_fold.threshold,
            adapter_accuracy: accuracy_at(&test_pairs, threshold),
            adapter_threshold: threshold,
            training: report,
        });
        pooled.extend(test_pairs);
    }
    // pooled is in fold order; put it back in pair-list order next to the baseline.
    let mut by_fold: Vec<std::vec::IntoIter<ScoredPair>> = (0..pairs.folds)
        .map(|k| {
            pooled
                .iter()
                .copied()
                .filter(|p| p.fold == k)
                .collect::<Vec<_>>()
                .into_iter()
        })
        .collect();
    let distances: Vec<(ScoredPair, ScoredPair)> = base
        .scored
        .iter()
        .map(|b| (*b, by_fold[b.fold].next().expect("same pairs per fold")))
        .collect();
    let adapter_roc = Roc::new(&pooled);
    let baseline_roc = Roc::new(&base.scored);
    let b: Vec<f64> = folds.iter().map(|f| f.baseline_accuracy).collect();
    let a: Vec<f64> = folds.iter().map(|f| f.adapter_accuracy).collect();
    Ok(AdapterCrossValidation {
        baseline: MeanStd::of(&b),
        adapter: MeanStd::of(&a),
        baseline_auc: baseline_roc.auc(),
        adapter_auc: adapter_roc.auc(),
        baseline_tar_at_far_1e_3: baseline_roc.tar_at_far(1e-3).0,
        adapter_tar_at_far_1e_3: adapter_roc.tar_at_far(1e-3).0,
        folds,
        adapter_roc,
        baseline_roc,
        distances,
    })
}

/// All pairs scored with `adapter` applied to the gallery's descriptors.
pub fn adapted_scores(
    pairs: &PairList,
    gallery: &HashMap<String, Descriptor>,
    adapter: &Adapter,
    opts: &EvalOptions,
) -> Vec<ScoredPair> {
    score_pairs(pairs, |p| gallery.get(p).map(|d| adapter.apply(d)), opts).scored
}
