//! The verification protocol: distances of pairs, thresholds chosen by cross-validation, ROC.
//!
//! LFW View 2 (Huang et al. 2007, "unrestricted/labelled outside data" setting): for each of
//! the 10 folds the threshold is chosen on the other nine and accuracy is measured on it; the
//! report gives the mean and the *population* standard deviation of the ten accuracies (as
//! NumPy's `std` and most published LFW tables do; LFW's README asks for the standard error,
//! which is this divided by √10 with one less degree of freedom).
//!
//! **Threshold rule.** A pair is called "same person" when `distance <= threshold`. On the
//! training pairs every threshold between two consecutive distinct distances gives the same
//! accuracy, so the candidates are the gaps between sorted distances. The default rule,
//! [`ThresholdRule::RangeMidpoint`], takes the midpoint of the whole range of best-accuracy
//! thresholds (lowest to highest). When the best thresholds form one interval (8 of the 10
//! LFW folds) that is its max-margin midpoint; when near-ties split them (a mismatched pair
//! sitting between two matched ones), it stays in the middle instead of committing to one
//! side, and the point chosen can then be one pair below the training optimum. This rule
//! reproduces the reference figure on the dlib LFW descriptors, 98.73% ± 0.44%;
//! [`ThresholdRule::WidestInterval`] (midpoint of the widest best interval, always optimal on
//! the training pairs) and "first best threshold" give 98.75% ± 0.45% (one pair more right).
//!
//! **Faces not detected.** Literature either drops such pairs (optimistic), or scores them as
//! failures. [`UndetectedPolicy::Reject`] (the default) scores a pair whose face was not
//! found as distance `+∞`: the system cannot confirm the match, so a matched pair is a false
//! reject and a mismatched pair a correct reject, at every threshold — what a deployed
//! verifier does. [`UndetectedPolicy::Worst`] counts every such pair as an error (matched
//! `+∞`, mismatched `−∞`), a pessimistic bound; [`UndetectedPolicy::Exclude`] drops them.
//! The report always lists the images and pair counts involved.
//!
//! ROC AUC, EER and TAR at a FAR are computed on all scored pairs pooled (not per fold: a
//! fold has only 300 mismatched pairs, too few for FAR 1e-3).

use crate::error::{EvalError, Result};
use crate::pairs::PairList;
use facelike_types::{Descriptor, Metric};
use serde::Serialize;
use std::collections::HashMap;

/// What to do with a pair when a face of it was not detected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UndetectedPolicy {
    /// Distance `+∞`: never accepted (error for matched pairs, correct for mismatched).
    #[default]
    Reject,
    /// Always an error: matched `+∞`, mismatched `−∞`.
    Worst,
    /// Left out of every figure (counted in `excluded_pairs`).
    Exclude,
}

impl std::str::FromStr for UndetectedPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "reject" => Ok(Self::Reject),
            "worst" | "wrong" => Ok(Self::Worst),
            "exclude" | "skip" => Ok(Self::Exclude),
            _ => Err(format!(
                "unknown undetected policy {s:?}: use reject, worst or exclude"
            )),
        }
    }
}

/// How the accuracy-maximising threshold is picked among equally good ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdRule {
    /// Midpoint between the lowest and the highest best-accuracy threshold.
    #[default]
    RangeMidpoint,
    /// Midpoint of the widest interval of best-accuracy thresholds (the lowest on a tie).
    WidestInterval,
}

impl std::str::FromStr for ThresholdRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "range-midpoint" | "range" => Ok(Self::RangeMidpoint),
            "widest-interval" | "widest" => Ok(Self::WidestInterval),
            _ => Err(format!(
                "unknown threshold rule {s:?}: use range-midpoint or widest-interval"
            )),
        }
    }
}

/// A pair reduced to what the protocol needs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScoredPair {
    /// Distance under the chosen metric (`±∞` for undetected faces, by policy).
    pub distance: f64,
    /// Ground truth: same identity.
    pub same: bool,
    /// Cross-validation fold, `0..folds`.
    pub fold: usize,
}

/// Distance between descriptors in f64 (the threshold search compares distances exactly).
pub fn distance_f64(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>()
            .sqrt(),
        Metric::L1 => a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum(),
        Metric::Cosine => {
            let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
            for (x, y) in a.iter().zip(b) {
                let (x, y) = (*x as f64, *y as f64);
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                1.0 - dot / (na.sqrt() * nb.sqrt())
            }
        }
    }
}

/// Fraction of pairs decided correctly by `distance <= threshold`.
pub fn accuracy_at(scored: &[ScoredPair], threshold: f64) -> f64 {
    if scored.is_empty() {
        return f64::NAN;
    }
    let right = scored
        .iter()
        .filter(|p| (p.distance <= threshold) == p.same)
        .count();
    right as f64 / scored.len() as f64
}

fn next_down(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return x;
    }
    if x == 0.0 {
        return -f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits - 1 } else { bits + 1 })
}

/// The accuracy-maximising threshold of `scored` (see the module doc for the rules).
pub fn choose_threshold(scored: &[ScoredPair], rule: ThresholdRule) -> f64 {
    if scored.is_empty() {
        return 0.0;
    }
    let mut v: Vec<(f64, bool)> = scored.iter().map(|p| (p.distance, p.same)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = v.len();
    let total_diff = v.iter().filter(|p| !p.1).count() as i64;
    // cut i accepts v[..i]; correct(i) = same in v[..i] + different in v[i..].
    // Only cuts between distinct distances (and both ends) can be realised by a threshold.
    let mut cuts: Vec<(usize, i64)> = Vec::with_capacity(n + 1);
    let (mut same_in, mut diff_in) = (0i64, 0i64);
    for i in 0..=n {
        if i == 0 || i == n || v[i - 1].0 < v[i].0 {
            cuts.push((i, same_in + (total_diff - diff_in)));
        }
        if i < n {
            if v[i].1 {
                same_in += 1;
            } else {
                diff_in += 1;
            }
        }
    }
    let best = cuts.iter().map(|c| c.1).max().unwrap_or(0);
    let lower = |i: usize| {
        if i == 0 {
            f64::NEG_INFINITY
        } else {
            v[i - 1].0
        }
    };
    let upper = |i: usize| if i == n { f64::INFINITY } else { v[i].0 };
    // Runs of consecutive best cuts; cut i's thresholds are [v[i-1], v[i]).
    let mut runs: Vec<(f64, f64)> = Vec::new();
    let mut k = 0;
    while k < cuts.len() {
        if cuts[k].1 != best {
            k += 1;
            continue;
        }
        let start = k;
        while k + 1 < cuts.len() && cuts[k + 1].1 == best {
            k += 1;
        }
        runs.push((lower(cuts[start].0), upper(cuts[k].0)));
        k += 1;
    }
    let best_interval = match rule {
        ThresholdRule::RangeMidpoint => match (runs.first(), runs.last()) {
            (Some(first), Some(last)) => Some((first.0, last.1)),
            _ => None,
        },
        ThresholdRule::WidestInterval => {
            runs.iter()
                .copied()
                .fold(None::<(f64, f64)>, |acc, r| match acc {
                    Some(b) if width(r.0, r.1) <= width(b.0, b.1) => Some(b),
                    _ => Some(r),
                })
        }
    };
    let (lo, hi) = best_interval.unwrap_or((0.0, 0.0));
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) => 0.5 * (lo + hi),
        // Accept everything up to and including lo.
        (true, false) => lo,
        // Reject everything from hi up.
        (false, true) => next_down(hi),
        (false, false) => {
            if lo == f64::NEG_INFINITY && hi == f64::INFINITY {
                0.0
            } else if lo == f64::INFINITY {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            }
        }
    }
}

fn width(lo: f64, hi: f64) -> f64 {
    let w = hi - lo;
    if w.is_nan() {
        0.0
    } else {
        w
    }
}

/// One operating point of a ROC curve: accepting `distance <= threshold`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RocPoint {
    /// The distance threshold (`−∞` for the first point, which accepts nothing).
    pub threshold: f64,
    /// False accept rate: mismatched pairs accepted / mismatched pairs.
    pub far: f64,
    /// True accept rate: matched pairs accepted / matched pairs.
    pub tar: f64,
}

/// A ROC curve: one point per distinct distance, from (0, 0) to (1, 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Roc {
    /// Operating points by increasing threshold (and so non-decreasing FAR and TAR).
    pub points: Vec<RocPoint>,
    /// Matched pairs scored.
    pub matched: usize,
    /// Mismatched pairs scored.
    pub mismatched: usize,
}

impl Roc {
    /// The ROC curve of `scored`, all folds pooled.
    pub fn new(scored: &[ScoredPair]) -> Roc {
        let mut v: Vec<(f64, bool)> = scored.iter().map(|p| (p.distance, p.same)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let pos = v.iter().filter(|p| p.1).count();
        let neg = v.len() - pos;
        let rate = |k: usize, of: usize| if of == 0 { 0.0 } else { k as f64 / of as f64 };
        let mut points = vec![RocPoint {
            threshold: f64::NEG_INFINITY,
            far: 0.0,
            tar: 0.0,
        }];
        let (mut tp, mut fp) = (0, 0);
        let mut i = 0;
        while i < v.len() {
            let d = v[i].0;
            while i < v.len() && v[i].0 == d {
                if v[i].1 {
                    tp += 1;
                } else {
                    fp += 1;
                }
                i += 1;
            }
            points.push(RocPoint {
                threshold: d,
                far: rate(fp, neg),
                tar: rate(tp, pos),
            });
        }
        Roc {
            points,
            matched: pos,
            mismatched: neg,
        }
    }

    /// Area under the curve = P(d_matched < d_mismatched) + ½ P(tie) (trapezoids over the
    /// step curve, which is the same thing).
    pub fn auc(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].far - w[0].far) * 0.5 * (w[1].tar + w[0].tar))
            .sum()
    }

    /// Equal error rate: where FAR = FRR (= 1 − TAR), linearly interpolated between the two
    /// operating points that straddle it; with the interpolated threshold.
    pub fn eer(&self) -> (f64, f64) {
        let p = &self.points;
        for k in 1..p.len() {
            let (a, b) = (p[k - 1], p[k]);
            let (fa, ra) = (a.far, 1.0 - a.tar);
            let (fb, rb) = (b.far, 1.0 - b.tar);
            if fb >= rb {
                let den = (fb - fa) - (rb - ra);
                let t = if den > 0.0 { (ra - fa) / den } else { 0.0 };
                let t = t.clamp(0.0, 1.0);
                let th = if a.threshold.is_finite() && b.threshold.is_finite() {
                    a.threshold + t * (b.threshold - a.threshold)
                } else {
                    b.threshold
                };
                return (fa + t * (fb - fa), th);
            }
        }
        (f64::NAN, f64::NAN)
    }

    /// The highest TAR among operating points with FAR ≤ `far`, and its threshold. With `N`
    /// mismatched pairs the resolution is 1/N (3000 on LFW: FAR 1e-3 allows 3 false accepts).
    pub fn tar_at_far(&self, far: f64) -> (f64, f64) {
        self.points
            .iter()
            .filter(|p| p.far <= far + 1e-12)
            .map(|p| (p.tar, p.threshold))
            .fold(
                (0.0, f64::NEG_INFINITY),
                |a, b| if b.0 > a.0 { b } else { a },
            )
    }
}

/// How [`evaluate_pairs`] scores pairs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalOptions {
    /// Descriptor distance (L2 by default, dlib's).
    pub metric: Metric,
    /// What to do with pairs whose face was not detected.
    pub undetected: UndetectedPolicy,
    /// How a threshold is picked among equally accurate ones.
    pub threshold_rule: ThresholdRule,
    /// Also report the accuracy at this fixed threshold (face_recognition's 0.6 by default).
    pub fixed_threshold: Option<f64>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            metric: Metric::L2,
            undetected: UndetectedPolicy::Reject,
            threshold_rule: ThresholdRule::RangeMidpoint,
            fixed_threshold: Some(facelike_types::DEFAULT_TOLERANCE as f64),
        }
    }
}

/// One cross-validation fold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FoldResult {
    /// The fold, `0..folds`.
    pub fold: usize,
    /// Chosen on the other folds.
    pub threshold: f64,
    /// On this fold.
    pub accuracy: f64,
    /// Scored pairs in this fold.
    pub pairs: usize,
}

/// Accuracy at a threshold given in advance (not tuned on the data).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FixedThresholdResult {
    /// The threshold ([`EvalOptions::fixed_threshold`]).
    pub threshold: f64,
    /// Fraction of all scored pairs decided correctly at it.
    pub accuracy: f64,
}

/// The verification figures. The first eight fields are the JSON contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerificationReport {
    /// Mean of the per-fold test accuracies (fraction, not percent).
    pub accuracy_mean: f64,
    /// Population standard deviation of the per-fold accuracies.
    pub accuracy_std: f64,
    /// ROC AUC over all scored pairs.
    pub auc: f64,
    /// Equal error rate over all scored pairs (fraction).
    pub eer: f64,
    /// Highest TAR with FAR ≤ 10⁻³, all scored pairs.
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e_3: f64,
    /// The threshold chosen by the same rule on all scored pairs: the calibrated tolerance to
    /// use on new data (`distance <= threshold` means same person).
    pub threshold: f64,
    /// Pairs in the list.
    pub pairs: usize,
    /// Distinct images in which no face was found.
    pub undetected: usize,
    /// Pairs with at least one undetected image.
    pub undetected_pairs: usize,
    /// Pairs left out ([`UndetectedPolicy::Exclude`]).
    pub excluded_pairs: usize,
    /// The policy used for undetected faces.
    pub undetected_policy: UndetectedPolicy,
    /// The threshold rule used.
    pub threshold_rule: ThresholdRule,
    /// The images in which no face was found, sorted.
    pub undetected_images: Vec<String>,
    /// The descriptor distance used.
    pub metric: Metric,
    /// Matched pairs scored.
    pub matched: usize,
    /// Mismatched pairs scored.
    pub mismatched: usize,
    /// Per-fold thresholds and accuracies.
    pub folds: Vec<FoldResult>,
    /// Copied from [`PairList::identity_disjoint`]: no person is in two folds.
    pub identity_disjoint_folds: bool,
    /// The (interpolated) threshold at the EER.
    pub eer_threshold: f64,
    /// The threshold of [`VerificationReport::tar_at_far_1e_3`].
    #[serde(rename = "tar_at_far_1e-3_threshold")]
    pub tar_at_far_1e_3_threshold: f64,
    /// Accuracy at [`EvalOptions::fixed_threshold`], when one was given.
    pub fixed_threshold: Option<FixedThresholdResult>,
}

impl VerificationReport {
    /// A human-readable summary (percentages).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "pairs: {} ({} matched, {} mismatched) in {} folds{}\n\
             accuracy: {:.2}% ± {:.2}% (threshold chosen on the other folds)\n\
             ROC AUC: {:.5}   EER: {:.2}% (threshold {:.4})\n\
             TAR at FAR 1e-3: {:.2}% (threshold {:.4})\n\
             calibrated threshold ({} distance, all pairs): {:.4}\n",
            self.pairs,
            self.matched,
            self.mismatched,
            self.folds.len(),
            if self.identity_disjoint_folds {
                ""
            } else {
                " (folds share identities)"
            },
            100.0 * self.accuracy_mean,
            100.0 * self.accuracy_std,
            self.auc,
            100.0 * self.eer,
            self.eer_threshold,
            100.0 * self.tar_at_far_1e_3,
            self.tar_at_far_1e_3_threshold,
            format!("{:?}", self.metric).to_lowercase(),
            self.threshold,
        );
        if let Some(f) = &self.fixed_threshold {
            s += &format!(
                "accuracy at fixed threshold {:.4}: {:.2}%\n",
                f.threshold,
                100.0 * f.accuracy
            );
        }
        s += &format!(
            "undetected: {} images in {} pairs (policy: {:?}{})\n",
            self.undetected,
            self.undetected_pairs,
            self.undetected_policy,
            if self.excluded_pairs > 0 {
                format!(", {} pairs excluded", self.excluded_pairs)
            } else {
                String::new()
            }
        );
        let per_fold: Vec<String> = self
            .folds
            .iter()
            .map(|f| format!("{:.2}", 100.0 * f.accuracy))
            .collect();
        s += &format!("per fold: {}\n", per_fold.join(" "));
        s
    }
}

/// Pairs turned into distances, with what was missing.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredPairs {
    /// The pairs kept, in pair-list order.
    pub scored: Vec<ScoredPair>,
    /// Images in which no face was found, sorted.
    pub undetected_images: Vec<String>,
    /// Pairs with at least one undetected image.
    pub undetected_pairs: usize,
    /// Pairs left out ([`UndetectedPolicy::Exclude`]).
    pub excluded_pairs: usize,
}

/// Distances of `pairs` under `opts` (metric, undetected policy), calling `lookup` once per
/// distinct image (`None`: no face detected).
pub fn score_pairs(
    pairs: &PairList,
    mut lookup: impl FnMut(&str) -> Option<Descriptor>,
    opts: &EvalOptions,
) -> ScoredPairs {
    let mut cache: HashMap<&str, Option<Descriptor>> = HashMap::new();
    for im in pairs.unique_images() {
        cache.insert(im, lookup(im));
    }
    let mut undetected_images: Vec<String> = cache
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(k, _)| k.to_string())
        .collect();
    undetected_images.sort();
    let mut scored = Vec::with_capacity(pairs.pairs.len());
    let (mut undetected_pairs, mut excluded_pairs) = (0, 0);
    for p in &pairs.pairs {
        let (a, b) = (&cache[p.a.as_str()], &cache[p.b.as_str()]);
        let distance = match (a, b) {
            (Some(a), Some(b)) => distance_f64(opts.metric, &a.0, &b.0),
            _ => {
                undetected_pairs += 1;
                match opts.undetected {
                    UndetectedPolicy::Reject => f64::INFINITY,
                    UndetectedPolicy::Worst if p.same => f64::INFINITY,
                    UndetectedPolicy::Worst => f64::NEG_INFINITY,
                    UndetectedPolicy::Exclude => {
                        excluded_pairs += 1;
                        continue;
                    }
                }
            }
        };
        scored.push(ScoredPair {
            distance,
            same: p.same,
            fold: p.fold,
        });
    }
    ScoredPairs {
        scored,
        undetected_images,
        undetected_pairs,
        excluded_pairs,
    }
}

/// Scores `pairs` with the descriptors `lookup` returns (`None`: no face detected), calling
/// it once per distinct image, and runs the protocol. Also returns the ROC curve.
pub fn evaluate_pairs(
    pairs: &PairList,
    lookup: impl FnMut(&str) -> Option<Descriptor>,
    opts: &EvalOptions,
) -> Result<(VerificationReport, Roc)> {
    let s = score_pairs(pairs, lookup, opts);
    let mut report = evaluate_scored(&s.scored, pairs.folds, opts)?;
    report.pairs = pairs.pairs.len();
    report.undetected = s.undetected_images.len();
    report.undetected_images = s.undetected_images;
    report.undetected_pairs = s.undetected_pairs;
    report.excluded_pairs = s.excluded_pairs;
    report.identity_disjoint_folds = pairs.identity_disjoint;
    let roc = Roc::new(&s.scored);
    Ok((report, roc))
}

/// The protocol on already-scored pairs (folds `0..folds`).
pub fn evaluate_scored(
    scored: &[ScoredPair],
    folds: usize,
    opts: &EvalOptions,
) -> Result<VerificationReport> {
    let matched = scored.iter().filter(|p| p.same).count();
    let mismatched = scored.len() - matched;
    if matched == 0 || mismatched == 0 {
        return Err(EvalError::Invalid(format!(
            "verification needs matched and mismatched pairs; have {matched} matched and \
             {mismatched} mismatched"
        )));
    }
    let mut fold_results = Vec::new();
    for k in 0..folds {
        let test: Vec<ScoredPair> = scored.iter().copied().filter(|p| p.fold == k).collect();
        if test.is_empty() {
            continue;
        }
        let train: Vec<ScoredPair> = scored.iter().copied().filter(|p| p.fold != k).collect();
        // With a single fold there is nothing else to train on: the threshold is then
        // chosen on the fold itself (reported as such by folds.len() == 1).
        let threshold = choose_threshold(
            if train.is_empty() { &test } else { &train },
            opts.threshold_rule,
        );
        fold_results.push(FoldResult {
            fold: k,
            threshold,
            accuracy: accuracy_at(&test, threshold),
            pairs: test.len(),
        });
    }
    let accs: Vec<f64> = fold_results.iter().map(|f| f.accuracy).collect();
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
    let roc = Roc::new(scored);
    let (eer, eer_threshold) = roc.eer();
    let (tar, tar_threshold) = roc.tar_at_far(1e-3);
    Ok(VerificationReport {
        accuracy_mean: mean,
        accuracy_std: std,
        auc: roc.auc(),
        eer,
        tar_at_far_1e_3: tar,
        threshold: choose_threshold(scored, opts.threshold_rule),
        pairs: scored.len(),
        undetected: 0,
        undetected_pairs: 0,
        excluded_pairs: 0,
        undetected_policy: opts.undetected,
        threshold_rule: opts.threshold_rule,
        undetected_images: Vec::new(),
        metric: opts.metric,
        matched,
        mismatched,
        folds: fold_results,
        identity_disjoint_folds: true,
        eer_threshold,
        tar_at_far_1e_3_threshold: tar_threshold,
        fixed_threshold: opts.fixed_threshold.map(|t| FixedThresholdResult {
            threshold: t,
            accuracy: accuracy_at(scored, t),
        }),
    })
}
