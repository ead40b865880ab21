//! Training an [`Adapter`] with triplet loss: P identities × K faces per batch, semi-hard (or
//! batch-hard) mining, Adam, a validation split by identity and early stopping.

use crate::adapter::{Adapter, AdapterKind, AdapterTraining, Grads};
use crate::error::{EvalError, Result};
use crate::rng::SplitMix64;
use crate::triplet::{mine, triplet_loss, Mining, DEFAULT_ALPHA};
use crate::verify::{choose_threshold, distance_f64, ScoredPair, ThresholdRule};
use facelike_types::{Descriptor, Metric};
use serde::Serialize;
use std::collections::BTreeMap;

/// Training settings. [`TrainConfig::default`] is the measured default (see the crate README).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainConfig {
    /// The adapter's architecture (linear or residual MLP).
    pub kind: AdapterKind,
    /// Triplet margin α.
    pub alpha: f64,
    /// P: identities per batch.
    pub identities_per_batch: usize,
    /// K: faces per identity (fewer when an identity has fewer).
    pub faces_per_identity: usize,
    /// How triplets are chosen within a batch.
    pub mining: Mining,
    /// Adam's step size.
    pub learning_rate: f64,
    /// L2 pull of the parameters back to their starting values (the identity map):
    /// keeps a small data set from dragging the adapter far from dlib's geometry.
    pub weight_decay: f64,
    /// Upper bound on the number of epochs (passes over the training identities).
    pub max_epochs: usize,
    /// Stop after this many epochs without a validation-loss improvement of `min_delta`;
    /// the best epoch's parameters are returned.
    pub patience: usize,
    /// The smallest drop in validation loss that counts as an improvement.
    pub min_delta: f64,
    /// Share of identities held out for validation (0: none, no early stopping).
    pub validation_fraction: f64,
    /// Seeds the validation split, the batches, the residual form's `W₁` and the pairs the
    /// threshold is calibrated on.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            kind: AdapterKind::Linear,
            alpha: DEFAULT_ALPHA,
            identities_per_batch: 32,
            faces_per_identity: 4,
            mining: Mining::SemiHard,
            learning_rate: 1e-3,
            weight_decay: 1e-3,
            max_epochs: 60,
            patience: 8,
            min_delta: 1e-5,
            validation_fraction: 0.1,
            seed: 1,
        }
    }
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochStats {
    /// The epoch's number, from 1.
    pub epoch: usize,
    /// [`TrainConfig::max_epochs`], for progress displays.
    pub max_epochs: usize,
    /// Mean triplet loss of the epoch's batches (while the parameters moved).
    pub train_loss: f64,
    /// Share of mined training triplets with non-zero loss.
    pub active_fraction: f64,
    /// Triplet loss on the fixed validation batches after the epoch (NaN without validation).
    pub val_loss: f64,
    /// This epoch is the best so far.
    pub improved: bool,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// The settings of the run.
    pub config: TrainConfig,
    /// Validation loss of the starting (identity) adapter.
    pub initial_val_loss: f64,
    /// One entry per epoch run.
    pub history: Vec<EpochStats>,
    /// The epoch whose parameters were kept (0: the starting adapter).
    pub best_epoch: usize,
    /// Validation loss of the kept parameters (NaN without validation).
    pub best_val_loss: f64,
    /// Training stopped on [`TrainConfig::patience`] before [`TrainConfig::max_epochs`].
    pub stopped_early: bool,
    /// Identities (with 2+ faces) used for training.
    pub train_identities: usize,
    /// Identities (with 2+ faces) held out for validation.
    pub val_identities: usize,
    /// Faces of the training identities.
    pub train_faces: usize,
    /// Faces of the validation identities.
    pub val_faces: usize,
    /// Identities with one face only: not usable as anchors, left out.
    pub single_face_identities: usize,
    /// The adapter's calibrated threshold (see [`calibrate_threshold`]).
    pub threshold: f64,
}

impl TrainReport {
    /// `(epoch, loss)` series for [`crate::plot::plot_loss`]: training and validation.
    pub fn loss_series(&self) -> Vec<(&'static str, Vec<(f64, f64)>)> {
        let train = self
            .history
            .iter()
            .map(|e| (e.epoch as f64, e.train_loss))
            .collect();
        let mut val = vec![(0.0, self.initial_val_loss)];
        val.extend(self.history.iter().map(|e| (e.epoch as f64, e.val_loss)));
        if self.initial_val_loss.is_nan() {
            return vec![("training", train)];
        }
        vec![("training", train), ("validation", val)]
    }
}

struct Adam {
    m: Grads,
    v: Grads,
    t: i32,
}

impl Adam {
    fn new(a: &Adapter) -> Adam {
        Adam {
            m: Grads::zeros_like(a),
            v: Grads::zeros_like(a),
            t: 0,
        }
    }

    fn step(&mut self, a: &mut Adapter, g: &Grads, lr: f64) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        let update = |p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]| {
            for i in 0..p.len() {
                m[i] = B1 * m[i] + (1.0 - B1) * g[i];
                v[i] = B2 * v[i] + (1.0 - B2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + EPS);
            }
        };
        update(&mut a.w1, &g.w1, &mut self.m.w1, &mut self.v.w1);
        update(&mut a.b1, &g.b1, &mut self.m.b1, &mut self.v.b1);
        update(&mut a.w2, &g.w2, &mut self.m.w2, &mut self.v.w2);
        update(&mut a.b2, &g.b2, &mut self.m.b2, &mut self.v.b2);
    }
}

/// Loss of one batch (indices into `data`) under `adapter`, and optionally its gradient.
///
/// Mines the batch's triplets with `mining` on the adapter's (unit-length) outputs and returns
/// `(mean triplet loss, share of triplets with non-zero loss)`; when `grads` is given, the
/// gradient of the mean loss is added to it.
pub fn batch_loss(
    adapter: &Adapter,
    data: &[Descriptor],
    labels: &[usize],
    batch: &[usize],
    mining: Mining,
    alpha: f64,
    grads: Option<&mut Grads>,
) -> (f64, f64) {
    let caches: Vec<_> = batch.iter().map(|&i| adapter.forward(&data[i].0)).collect();
    let emb: Vec<&[f64]> = caches.iter().map(|c| &c.y[..]).collect();
    let lab: Vec<usize> = batch.iter().map(|&i| labels[i]).collect();
    let triplets = mine(&emb, &lab, mining);
    let (loss, dy, active) = triplet_loss(&emb, &triplets, alpha);
    if let Some(g) = grads {
        for (c, d) in caches.iter().zip(&dy) {
            if d.iter().any(|v| *v != 0.0) {
                let d: [f64; 128] = d.as_slice().try_into().expect("128-D gradient");
                adapter.backward(c, &d, g);
            }
        }
    }
    (loss, active)
}

fn make_batches(
    groups: &[Vec<usize>],
    p: usize,
    k: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    rng.shuffle(&mut order);
    order
        .chunks(p)
        .filter(|c| c.len() >= 2)
        .map(|chunk| {
            let mut batch = Vec::with_capacity(chunk.len() * k);
            for &g in chunk {
                let mut faces = groups[g].clone();
                rng.shuffle(&mut faces);
                batch.extend(faces.into_iter().take(k));
            }
            batch
        })
        .collect()
}

/// Trains an adapter on `descriptors` labelled with identity `labels` (any strings; equal
/// strings are one person). `progress` is called after every epoch.
pub fn train<S: AsRef<str>>(
    descriptors: &[Descriptor],
    labels: &[S],
    cfg: &TrainConfig,
    mut progress: impl FnMut(&EpochStats),
) -> Result<(Adapter, TrainReport)> {
    if descriptors.len() != labels.len() {
        return Err(EvalError::Invalid(format!(
            "train: {} descriptors but {} labels",
            descriptors.len(),
            labels.len()
        )));
    }
    if cfg.identities_per_batch < 2 || cfg.faces_per_identity < 2 {
        return Err(EvalError::Invalid(
            "train: batches need at least 2 identities and 2 faces per identity".into(),
        ));
    }
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        by_name.entry(l.as_ref()).or_default().push(i);
    }
    let mut label_ids = vec![0usize; labels.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut singles = 0;
    for (id, (_, faces)) in by_name.iter().enumerate() {
        for &f in faces {
            label_ids[f] = id;
        }
        if faces.len() >= 2 {
            groups.push(faces.clone());
        } else {
            singles += 1;
        }
    }
    let mut rng = SplitMix64::new(cfg.seed);
    rng.shuffle(&mut groups);
    let n_val = if cfg.validation_fraction > 0.0 {
        ((groups.len() as f64 * cfg.validation_fraction).round() as usize).max(2)
    } else {
        0
    };
    if groups.len() < n_val + 2 {
        return Err(EvalError::Invalid(format!(
            "train: {} identities with 2+ faces; need at least {} ({} for validation)",
            groups.len(),
            n_val + 2,
            n_val
        )));
    }
    let val_groups: Vec<Vec<usize>> = groups[..n_val].to_vec();
    let train_groups: Vec<Vec<usize>> = groups[n_val..].to_vec();
    let mut val_rng = SplitMix64::new(cfg.seed ^ 0x005E_ED0F_7A11);
    let val_batches = make_batches(
        &val_groups,
        cfg.identities_per_batch,
        cfg.faces_per_identity,
        &mut val_rng,
    );
    let val_loss = |a: &Adapter| {
        if val_batches.is_empty() {
            return f64::NAN;
        }
        val_batches
            .iter()
            .map(|b| batch_loss(a, descriptors, &label_ids, b, cfg.mining, cfg.alpha, None).0)
            .sum::<f64>()
            / val_batches.len() as f64
    };

    let start = Adapter::identity(cfg.kind, cfg.seed);
    let mut adapter = start.clone();
    let mut adam = Adam::new(&adapter);
    let initial_val_loss = val_loss(&adapter);
    let (mut best, mut best_loss, mut best_epoch) = (adapter.clone(), initial_val_loss, 0);
    let mut history = Vec::new();
    let mut stale = 0;
    let mut stopped_early = false;
    for epoch in 1..=cfg.max_epochs {
        let batches = make_batches(
            &train_groups,
            cfg.identities_per_batch,
            cfg.faces_per_identity,
            &mut rng,
        );
        let (mut sum, mut act) = (0.0, 0.0);
        for b in &batches {
            let mut g = Grads::zeros_like(&adapter);
            let (l, a) = batch_loss(
                &adapter,
                descriptors,
                &label_ids,
                b,
                cfg.mining,
                cfg.alpha,
                Some(&mut g),
            );
            if cfg.weight_decay > 0.0 {
                let pull = |g: &mut [f64], p: &[f64], p0: &[f64]| {
                    for i in 0..g.len() {
                        g[i] += cfg.weight_decay * (p[i] - p0[i]);
                    }
                };
                pull(&mut g.w1, &adapter.w1, &start.w1);
                pull(&mut g.b1, &adapter.b1, &start.b1);
                pull(&mut g.w2, &adapter.w2, &start.w2);
                pull(&mut g.b2, &adapter.b2, &start.b2);
            }
            adam.step(&mut adapter, &g, cfg.learning_rate);
            sum += l;
            act += a;
        }
        let nb = batches.len().max(1) as f64;
        let vl = val_loss(&adapter);
        let improved = if vl.is_nan() {
            true
        } else {
            vl < best_loss - cfg.min_delta
        };
        if improved {
            best = adapter.clone();
            best_loss = vl;
            best_epoch = epoch;
            stale = 0;
        } else {
            stale += 1;
        }
        let stats = EpochStats {
            epoch,
            max_epochs: cfg.max_epochs,
            train_loss: sum / nb,
            active_fraction: act / nb,
            val_loss: vl,
            improved,
        };
        progress(&stats);
        history.push(stats);
        if !vl.is_nan() && stale >= cfg.patience {
            stopped_early = true;
            break;
        }
    }
    let threshold = calibrate_threshold(&best, descriptors, labels, cfg.seed);
    best.threshold = Some(threshold);
    best.notes.insert("kind".into(), cfg.kind.to_string());
    best.notes.insert(
        "training".into(),
        serde_json::to_string(cfg).unwrap_or_default(),
    );
    best.notes
        .insert("best_epoch".into(), best_epoch.to_string());
    best.notes
        .insert("faces".into(), descriptors.len().to_string());
    best.notes
        .insert("identities".into(), by_name.len().to_string());
    let report = TrainReport {
        config: cfg.clone(),
        initial_val_loss,
        history,
        best_epoch,
        best_val_loss: best_loss,
        stopped_early,
        train_identities: train_groups.len(),
        val_identities: val_groups.len(),
        train_faces: train_groups.iter().map(Vec::len).sum(),
        val_faces: val_groups.iter().map(Vec::len).sum(),
        single_face_identities: singles,
        threshold,
    };
    Ok((best, report))
}

/// The accuracy-maximising L2 threshold in the adapter's space, chosen (by the rule of
/// [`crate::verify::choose_threshold`]) on up to 3000 matched and 3000 mismatched pairs
/// sampled from the labelled descriptors with `seed`.
pub fn calibrate_threshold<S: AsRef<str>>(
    adapter: &Adapter,
    descriptors: &[Descriptor],
    labels: &[S],
    seed: u64,
) -> f64 {
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        by_name.entry(l.as_ref()).or_default().push(i);
    }
    let gallery: Vec<crate::pairs::Identity> = by_name
        .iter()
        .map(|(n, f)| crate::pairs::Identity {
            name: n.to_string(),
            images: f.iter().map(|i| format!("{i:09}")).collect(),
        })
        .collect();
    let cfg = crate::pairs::SampleConfig {
        folds: 1,
        matched_per_fold: 3000,
        mismatched_per_fold: 3000,
        seed,
    };
    let Ok(pairs) = crate::pairs::sample_pairs(&gallery, &cfg) else {
        return f64::NAN;
    };
    let emb = |s: &str| adapter.apply(&descriptors[s.parse::<usize>().unwrap_or(0)]);
    let scored: Vec<ScoredPair> = pairs
        .pairs
        .iter()
        .map(|p| ScoredPair {
            distance: distance_f64(Metric::L2, &emb(&p.a).0, &emb(&p.b).0),
            same: p.same,
            fold: 0,
        })
        .collect();
    choose_threshold(&scored, ThresholdRule::default())
}
