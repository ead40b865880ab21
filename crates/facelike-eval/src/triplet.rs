//! FaceNet's triplet loss (Schroff, Kalenichenko, Philbin 2015) and the choice of triplets.
//!
//! `L = mean over triplets of max(0, ‖f(a) − f(p)‖² − ‖f(a) − f(n)‖² + α)`, α = 0.2 on
//! L2-normalised embeddings.

use serde::Serialize;

/// FaceNet's margin.
pub const DEFAULT_ALPHA: f64 = 0.2;

/// Indices into a batch: anchor, positive (same identity), negative (other identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Triplet {
    /// Index of the anchor face.
    pub anchor: usize,
    /// Index of a face of the anchor's identity.
    pub positive: usize,
    /// Index of a face of another identity.
    pub negative: usize,
}

/// How triplets are chosen from a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mining {
    /// FaceNet's semi-hard negatives: every (anchor, positive) pair of the batch, with the
    /// closest negative that is still farther than the positive (`d(a,p) < d(a,n)`; the loss
    /// is non-zero when also `d(a,n) < d(a,p) + α`). When no negative is farther than the
    /// positive, the farthest negative is used (the least hard of the hard ones), as
    /// TensorFlow Addons' `triplet_semihard_loss` does.
    #[default]
    SemiHard,
    /// Batch-hard (Hermans, Beyer, Leibe 2017): per anchor, its farthest positive and its
    /// closest negative.
    BatchHard,
}

impl std::str::FromStr for Mining {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "semi-hard" | "semihard" => Ok(Mining::SemiHard),
            "batch-hard" | "batchhard" | "hard" => Ok(Mining::BatchHard),
            _ => Err(format!("unknown mining {s:?}: use semi-hard or batch-hard")),
        }
    }
}

/// Squared Euclidean distance.
pub fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// All pairwise squared distances (row-major n×n).
pub fn sq_dist_matrix<E: AsRef<[f64]>>(emb: &[E]) -> Vec<f64> {
    let n = emb.len();
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d = sq_dist(emb[i].as_ref(), emb[j].as_ref());
            m[i * n + j] = d;
            m[j * n + i] = d;
        }
    }
    m
}

/// Chooses the triplets of a batch with embeddings `emb` and identity `labels`.
pub fn mine<E: AsRef<[f64]>>(emb: &[E], labels: &[usize], mining: Mining) -> Vec<Triplet> {
    let n = emb.len();
    let d = sq_dist_matrix(emb);
    let mut out = Vec::new();
    for a in 0..n {
        let negatives = || (0..n).filter(move |&k| labels[k] != labels[a]);
        if negatives().next().is_none() {
            continue;
        }
        match mining {
            Mining::SemiHard => {
                for p in (0..n).filter(|&p| p != a && labels[p] == labels[a]) {
                    let dap = d[a * n + p];
                    let beyond = negatives()
                        .filter(|&k| d[a * n + k] > dap)
                        .min_by(|&x, &y| d[a * n + x].total_cmp(&d[a * n + y]));
                    let negative = beyond.unwrap_or_else(|| {
                        negatives()
                            .max_by(|&x, &y| d[a * n + x].total_cmp(&d[a * n + y]))
                            .expect("a negative exists")
                    });
                    out.push(Triplet {
                        anchor: a,
                        positive: p,
                        negative,
                    });
                }
            }
            Mining::BatchHard => {
                let Some(positive) = (0..n)
                    .filter(|&p| p != a && labels[p] == labels[a])
                    .max_by(|&x, &y| d[a * n + x].total_cmp(&d[a * n + y]))
                else {
                    continue;
                };
                let negative = negatives()
                    .min_by(|&x, &y| d[a * n + x].total_cmp(&d[a * n + y]))
                    .expect("a negative exists");
                out.push(Triplet {
                    anchor: a,
                    positive,
                    negative,
                });
            }
        }
    }
    out
}

/// The loss of one triplet.
pub fn triplet_loss_one(a: &[f64], p: &[f64], n: &[f64], alpha: f64) -> f64 {
    (sq_dist(a, p) - sq_dist(a, n) + alpha).max(0.0)
}

/// Mean loss over `triplets`, the gradient with respect to each embedding (same shape as
/// `emb`), and the fraction of triplets with non-zero loss.
///
/// For an active triplet: ∂/∂a = 2(n − p), ∂/∂p = 2(p − a), ∂/∂n = 2(a − n), each divided
/// by the number of triplets.
pub fn triplet_loss<E: AsRef<[f64]>>(
    emb: &[E],
    triplets: &[Triplet],
    alpha: f64,
) -> (f64, Vec<Vec<f64>>, f64) {
    let dim = emb.first().map_or(0, |e| e.as_ref().len());
    let mut grad = vec![vec![0.0; dim]; emb.len()];
    if triplets.is_empty() {
        return (0.0, grad, 0.0);
    }
    let scale = 1.0 / triplets.len() as f64;
    let (mut total, mut active) = (0.0, 0usize);
    for t in triplets {
        let (a, p, n) = (
            emb[t.anchor].as_ref(),
            emb[t.positive].as_ref(),
            emb[t.negative].as_ref(),
        );
        let l = triplet_loss_one(a, p, n, alpha);
        if l <= 0.0 {
            continue;
        }
        total += l;
        active += 1;
        for k in 0..dim {
            grad[t.anchor][k] += 2.0 * (n[k] - p[k]) * scale;
            grad[t.positive][k] += 2.0 * (p[k] - a[k]) * scale;
            grad[t.negative][k] += 2.0 * (a[k] - n[k]) * scale;
        }
    }
    (total * scale, grad, active as f64 / triplets.len() as f64)
}
