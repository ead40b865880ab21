//! t-SNE (van der Maaten 2014, Barnes-Hut) with openTSNE's defaults.
//!
//! * Affinities: exact `k = min(N − 1, 3·perplexity)` nearest neighbours (Euclidean), a
//!   Gaussian per point whose width is found by bisection to match the perplexity, then
//!   `P = (P + Pᵀ) / ΣP`.
//! * Initialisation: the first two principal components, rescaled so the first has standard
//!   deviation 1e-4.
//! * Optimisation (openTSNE 1.0's defaults): 250 iterations with early exaggeration 12 and
//!   learning rate N/12, then 500 without exaggeration at learning rate N; momentum 0.8;
//!   delta-bar-delta gains (+0.2 / ×0.8, minimum 0.01); steps longer than 5 are shortened; the
//!   embedding is re-centred after every step. The gradient omits the constant 4, as openTSNE's
//!   does (its learning rates assume that).
//! * Repulsion by a Barnes-Hut quadtree (θ = 0.5), computed in parallel.
//! * The final KL divergence `Σ p log(p/q)` uses the exact normaliser `Z = Σ_{k≠l} (1 + d²)⁻¹`
//!   (an O(N²) sum, parallel; it is only done once).

use crate::pca::Pca;
use rayon::prelude::*;

/// Settings; [`TsneOptions::default`] is openTSNE's.
#[derive(Clone, Debug)]
pub struct TsneOptions {
    /// Effective number of neighbours per point (30); also sets `k = 3·perplexity` nearest
    /// neighbours for the affinities, and is capped at `(N − 1) / 3` for small data.
    pub perplexity: f64,
    /// Factor on the attractive forces during the first phase (12).
    pub early_exaggeration: f64,
    /// Iterations of the exaggerated phase (250).
    pub early_exaggeration_iter: usize,
    /// Iterations after it, without exaggeration (500).
    pub n_iter: usize,
    /// `None` = openTSNE's "auto": N / exaggeration in each phase.
    pub learning_rate: Option<f64>,
    /// Momentum of the gradient steps in both phases (0.8).
    pub momentum: f64,
    /// Barnes-Hut accuracy: a quadtree cell counts as one body when its size over its
    /// distance is below θ (0.5; 0 would be exact).
    pub theta: f64,
    /// Longest allowed step of a point per iteration, in embedding units (5).
    pub max_step_norm: f64,
    /// Seeds the tiny jitter that breaks ties between identical points (PCA initialisation is
    /// otherwise deterministic).
    pub seed: u64,
}

impl Default for TsneOptions {
    fn default() -> Self {
        TsneOptions {
            perplexity: 30.0,
            early_exaggeration: 12.0,
            early_exaggeration_iter: 250,
            n_iter: 500,
            learning_rate: None,
            momentum: 0.8,
            theta: 0.5,
            max_step_norm: 5.0,
            seed: 42,
        }
    }
}

/// Progress reported every 50 iterations and at the end.
#[derive(Clone, Copy, Debug)]
pub struct TsneProgress {
    /// Iterations done, from 1.
    pub iteration: usize,
    /// Iterations in all (`early_exaggeration_iter + n_iter`).
    pub total: usize,
}

/// A finished embedding.
#[derive(Clone, Debug)]
pub struct TsneResult {
    /// 2-D coordinates, one per input row in input order, centred on 0.
    pub embedding: Vec<[f64; 2]>,
    /// Final KL(P‖Q) with the exact normaliser.
    pub kl_divergence: f64,
    /// The perplexity asked for ([`TsneOptions::perplexity`], before any cap).
    pub perplexity: f64,
    /// Nearest neighbours per point used for the affinities.
    pub neighbours: usize,
}

/// Why [`tsne`] refused to run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TsneError {
    /// Fewer than 4 rows; the count given.
    #[error("t-SNE needs at least 4 points, got {0}")]
    TooFew(usize),
    /// The perplexity is zero, negative or not finite.
    #[error("perplexity must be positive, got {0}")]
    Perplexity(f64),
}

/// Sparse symmetric affinities in CSR form.
struct Affinities {
    row_start: Vec<usize>,
    col: Vec<u32>,
    val: Vec<f64>,
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Exact k nearest neighbours of every row (excluding itself), squared distances ascending.
fn knn<R: AsRef<[f32]> + Sync>(data: &[R], k: usize) -> Vec<Vec<(u32, f32)>> {
    data.par_iter()
        .enumerate()
        .map(|(i, a)| {
            let a = a.as_ref();
            let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
            for (j, b) in data.iter().enumerate() {
                if i == j {
                    continue;
                }
                let d = sq_dist(a, b.as_ref());
                if best.len() < k {
                    best.push((j as u32, d));
                    if best.len() == k {
                        best.sort_by(|x, y| x.1.total_cmp(&y.1));
                    }
                } else if d < best[k - 1].1 {
                    let pos = best.partition_point(|x| x.1 <= d);
                    best.insert(pos, (j as u32, d));
                    best.pop();
                }
            }
            best.sort_by(|x, y| x.1.total_cmp(&y.1));
            best
        })
        .collect()
}

/// Conditional probabilities p_{j|i} with entropy ln(perplexity), by bisection on the
/// Gaussian precision.
fn conditional_row(dists: &[(u32, f32)], perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let (mut beta, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
    let d0 = dists.first().map_or(0.0, |d| d.1 as f64);
    let mut p = vec![0f64; dists.len()];
    for _ in 0..200 {
        let mut sum = 0.0;
        for (pi, d) in p.iter_mut().zip(dists) {
            // Shift by the nearest distance for numerical stability (cancels on normalising).
            *pi = (-(d.1 as f64 - d0) * beta).exp();
            sum += *pi;
        }
        let mut h = 0.0;
        for (pi, d) in p.iter_mut().zip(dists) {
            *pi /= sum;
            if *pi > 0.0 {
                h += *pi * (d.1 as f64 - d0) * beta;
            }
        }
        h += sum.ln();
        if (h - target).abs() < 1e-8 {
            break;
        }
        if h > target {
            lo = beta;
            beta = if hi.is_finite() {
                (beta + hi) / 2.0
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
    p
}

fn affinities<R: AsRef<[f32]> + Sync>(data: &[R], perplexity: f64) -> (Affinities, usize) {
    let n = data.len();
    let k = (3.0 * perplexity).floor().max(1.0) as usize;
    let k = k.min(n - 1);
    let perplexity = perplexity.min(k as f64 / 3.0).max(1.0);
    let nn = knn(data, k);
    let rows: Vec<Vec<f64>> = nn
        .par_iter()
        .map(|d| conditional_row(d, perplexity))
        .collect();
    // Symmetrise: P + Pᵀ, then normalise to sum 1.
    let mut entries: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (i, (d, p)) in nn.iter().zip(&rows).enumerate() {
        for ((j, _), v) in d.iter().zip(p) {
            entries[i].push((*j, *v));
            entries[*j as usize].push((i as u32, *v));
        }
    }
    let mut row_start = Vec::with_capacity(n + 1);
    let mut col = Vec::new();
    let mut val = Vec::new();
    let mut total = 0.0;
    for e in entries.iter_mut() {
        row_start.push(col.len());
        e.sort_by_key(|x| x.0);
        let mut last: Option<u32> = None;
        for &(j, v) in e.iter() {
            if last == Some(j) {
                *val.last_mut().unwrap() += v;
            } else {
                col.push(j);
                val.push(v);
                last = Some(j);
            }
            total += v;
        }
    }
    row_start.push(col.len());
    for v in &mut val {
        *v /= total;
    }
    (
        Affinities {
            row_start,
            col,
            val,
        },
        k,
    )
}

/// A quadtree cell for Barnes-Hut.
#[derive(Clone, Copy)]
struct Cell {
    cx: f64,
    cy: f64,
    half: f64,
    mass: f64,
    com: [f64; 2],
    /// First child index (4 consecutive) or 0 for a leaf.
    child: u32,
    /// For a leaf: the point index, or u32::MAX when empty.
    point: u32,
}

struct QuadTree {
    cells: Vec<Cell>,
}

impl QuadTree {
    fn build(y: &[[f64; 2]]) -> QuadTree {
        let (mut minx, mut miny, mut maxx, mut maxy) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in y {
            minx = minx.min(p[0]);
            maxx = maxx.max(p[0]);
            miny = miny.min(p[1]);
            maxy = maxy.max(p[1]);
        }
        let half = ((maxx - minx).max(maxy - miny) / 2.0).max(1e-12) * (1.0 + 1e-9);
        let root = Cell {
            cx: (minx + maxx) / 2.0,
            cy: (miny + maxy) / 2.0,
            half,
            mass: 0.0,
            com: [0.0; 2],
            child: 0,
            point: u32::MAX,
        };
        let mut t = QuadTree {
            cells: Vec::with_capacity(4 * y.len() + 1),
        };
        t.cells.push(root);
        for (i, p) in y.iter().enumerate() {
            t.insert(0, i as u32, *p, y, 0);
        }
        t
    }

    fn quadrant(c: &Cell, p: [f64; 2]) -> usize {
        (p[0] > c.cx) as usize + 2 * (p[1] > c.cy) as usize
    }

    fn insert(&mut self, cell: usize, i: u32, p: [f64; 2], y: &[[f64; 2]], depth: usize) {
        {
            let c = &mut self.cells[cell];
            let m = c.mass;
            c.com = [
                (c.com[0] * m + p[0]) / (m + 1.0),
                (c.com[1] * m + p[1]) / (m + 1.0),
            ];
            c.mass = m + 1.0;
        }
        let c = self.cells[cell];
        if c.child == 0 {
            if c.point == u32::MAX {
                self.cells[cell].point = i;
                return;
            }
            // Duplicate points (or too deep): keep them together in this leaf.
            let other = y[c.point as usize];
            if depth > 48 || (other[0] == p[0] && other[1] == p[1]) {
                return;
            }
            let first = self.cells.len() as u32;
            let h = c.half / 2.0;
            for q in 0..4 {
                self.cells.push(Cell {
                    cx: c.cx + if q & 1 == 1 { h } else { -h },
                    cy: c.cy + if q & 2 == 2 { h } else { -h },
                    half: h,
                    mass: 0.0,
                    com: [0.0; 2],
                    child: 0,
                    point: u32::MAX,
                });
            }
            self.cells[cell].child = first;
            self.cells[cell].point = u32::MAX;
            let q = Self::quadrant(&c, other);
            self.insert(first as usize + q, c.point, other, y, depth + 1);
        }
        let c = self.cells[cell];
        let q = Self::quadrant(&c, p);
        self.insert(c.child as usize + q, i, p, y, depth + 1);
    }

    /// Unnormalised repulsive force on point `i` and its contribution to Z.
    fn repulsion(&self, i: usize, p: [f64; 2], theta2: f64) -> ([f64; 2], f64) {
        let mut f = [0.0; 2];
        let mut z = 0.0;
        let mut stack = vec![0usize];
        while let Some(ci) = stack.pop() {
            let c = &self.cells[ci];
            if c.mass == 0.0 {
                continue;
            }
            let dx = p[0] - c.com[0];
            let dy = p[1] - c.com[1];
            let d2 = dx * dx + dy * dy;
            let is_leaf = c.child == 0;
            if is_leaf && c.point == i as u32 && c.mass == 1.0 {
                continue;
            }
            let width = 2.0 * c.half;
            if is_leaf || width * width < theta2 * d2 {
                // For a leaf holding duplicates of this point, exclude the point itself.
                let mass = if is_leaf && d2 == 0.0 {
                    c.mass - 1.0
                } else {
                    c.mass
                };
                let q = 1.0 / (1.0 + d2);
                z += mass * q;
                let w = mass * q * q;
                f[0] += w * dx;
                f[1] += w * dy;
            } else {
                for k in 0..4 {
                    stack.push(c.child as usize + k);
                }
            }
        }
        (f, z)
    }
}

/// Splitmix64: a tiny seeded generator for the tie-breaking jitter.
fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs t-SNE on `data` (rows of equal length) to 2-D.
pub fn tsne<R: AsRef<[f32]> + Sync>(
    data: &[R],
    opts: &TsneOptions,
    mut progress: impl FnMut(TsneProgress),
) -> Result<TsneResult, TsneError> {
    let n = data.len();
    if n < 4 {
        return Err(TsneError::TooFew(n));
    }
    if opts.perplexity <= 0.0 || !opts.perplexity.is_finite() {
        return Err(TsneError::Perplexity(opts.perplexity));
    }
    let (p, k) = affinities(data, opts.perplexity);
    let pca = Pca::fit(data).expect("n >= 4 rows of equal length");
    let mut y: Vec<[f64; 2]> = data
        .iter()
        .map(|r| {
            let v = pca.project(r.as_ref(), 2);
            [v[0], v.get(1).copied().unwrap_or(0.0)]
        })
        .collect();
    let mean0 = y.iter().map(|v| v[0]).sum::<f64>() / n as f64;
    let std0 = (y.iter().map(|v| (v[0] - mean0).powi(2)).sum::<f64>() / n as f64).sqrt();
    let scale = if std0 > 0.0 { 1e-4 / std0 } else { 1.0 };
    let mut rng = opts.seed;
    for v in y.iter_mut() {
        v[0] = v[0] * scale + (splitmix(&mut rng) - 0.5) * 1e-10;
        v[1] = v[1] * scale + (splitmix(&mut rng) - 0.5) * 1e-10;
    }
    let total = opts.early_exaggeration_iter + opts.n_iter;
    let mut update = vec![[0f64; 2]; n];
    let mut gains = vec![[1f64; 2]; n];
    let theta2 = opts.theta * opts.theta;
    for it in 0..total {
        let exag = if it < opts.early_exaggeration_iter {
            opts.early_exaggeration
        } else {
            1.0
        };
        let lr = opts.learning_rate.unwrap_or(n as f64 / exag);
        let tree = QuadTree::build(&y);
        let rep: Vec<([f64; 2], f64)> = (0..n)
            .into_par_iter()
            .map(|i| tree.repulsion(i, y[i], theta2))
            .collect();
        let z: f64 = rep.iter().map(|r| r.1).sum();
        let grad: Vec<[f64; 2]> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut a = [0.0; 2];
                for e in p.row_start[i]..p.row_start[i + 1] {
                    let j = p.col[e] as usize;
                    let dx = y[i][0] - y[j][0];
                    let dy = y[i][1] - y[j][1];
                    let w = p.val[e] / (1.0 + dx * dx + dy * dy);
                    a[0] += w * dx;
                    a[1] += w * dy;
                }
                [exag * a[0] - rep[i].0[0] / z, exag * a[1] - rep[i].0[1] / z]
            })
            .collect();
        for i in 0..n {
            for d in 0..2 {
                if (update[i][d] > 0.0) != (grad[i][d] > 0.0) {
                    gains[i][d] += 0.2;
                } else {
                    gains[i][d] = gains[i][d] * 0.8 + 0.01;
                }
                update[i][d] = opts.momentum * update[i][d] - lr * gains[i][d] * grad[i][d];
            }
            let norm = (update[i][0] * update[i][0] + update[i][1] * update[i][1]).sqrt();
            if norm > opts.max_step_norm {
                update[i][0] *= opts.max_step_norm / norm;
                update[i][1] *= opts.max_step_norm / norm;
            }
            y[i][0] += update[i][0];
            y[i][1] += update[i][1];
        }
        let (mx, my) = (
            y.iter().map(|v| v[0]).sum::<f64>() / n as f64,
            y.iter().map(|v| v[1]).sum::<f64>() / n as f64,
        );
        for v in y.iter_mut() {
            v[0] -= mx;
            v[1] -= my;
        }
        if (it + 1) % 50 == 0 || it + 1 == total {
            progress(TsneProgress {
                iteration: it + 1,
                total,
            });
        }
    }
    let kl = kl_divergence(&p, &y);
    Ok(TsneResult {
        embedding: y,
        kl_divergence: kl,
        perplexity: opts.perplexity,
        neighbours: k,
    })
}

/// Exact KL(P‖Q) of an embedding for sparse P (Q normalised over all pairs).
fn kl_divergence(p: &Affinities, y: &[[f64; 2]]) -> f64 {
    let n = y.len();
    let z: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut s = 0.0;
            for j in 0..n {
                if i != j {
                    let dx = y[i][0] - y[j][0];
                    let dy = y[i][1] - y[j][1];
                    s += 1.0 / (1.0 + dx * dx + dy * dy);
                }
            }
            s
        })
        .sum();
    let mut kl = 0.0;
    for i in 0..n {
        for e in p.row_start[i]..p.row_start[i + 1] {
            let j = p.col[e] as usize;
            let pij = p.val[e];
            if pij > 0.0 {
                let dx = y[i][0] - y[j][0];
                let dy = y[i][1] - y[j][1];
                let q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
                kl += pij * (pij / q.max(1e-300)).ln();
            }
        }
    }
    kl
}

/// Exact KL(P‖Q) of any 2-D embedding of `data`, with this module's affinities: for comparing
/// embeddings made by other tools on the same footing.
pub fn kl_of_embedding<R: AsRef<[f32]> + Sync>(
    data: &[R],
    embedding: &[[f64; 2]],
    perplexity: f64,
) -> f64 {
    let (p, _) = affinities(data, perplexity);
    kl_divergence(&p, embedding)
}

/// Fraction of each point's `k` nearest neighbours in the input space that are also among its
/// `k` nearest in the embedding, averaged over points.
pub fn knn_preservation<R: AsRef<[f32]> + Sync>(
    data: &[R],
    embedding: &[[f64; 2]],
    k: usize,
) -> f64 {
    let hi = knn(data, k);
    let low: Vec<[f32; 2]> = embedding
        .iter()
        .map(|v| [v[0] as f32, v[1] as f32])
        .collect();
    let lo = knn(&low, k);
    let kept: usize = hi
        .par_iter()
        .zip(&lo)
        .map(|(a, b)| a.iter().filter(|x| b.iter().any(|y| y.0 == x.0)).count())
        .sum();
    kept as f64 / (k * data.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(per: usize, centres: usize, dim: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut s = seed;
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for c in 0..centres {
            let centre: Vec<f32> = (0..dim).map(|_| (splitmix(&mut s) * 20.0) as f32).collect();
            for _ in 0..per {
                data.push(
                    centre
                        .iter()
                        .map(|v| v + (splitmix(&mut s) - 0.5) as f32)
                        .collect(),
                );
                labels.push(c);
            }
        }
        (data, labels)
    }

    #[test]
    fn perplexity_is_matched() {
        let d: Vec<(u32, f32)> = (0..90)
            .map(|j| (j as u32, (j as f32 * 0.37).powi(2) * 0.01 + 0.5))
            .collect();
        let p = conditional_row(&d, 30.0);
        let h: f64 = -p
            .iter()
            .filter(|v| **v > 0.0)
            .map(|v| v * v.ln())
            .sum::<f64>();
        assert!((h.exp() - 30.0).abs() < 1e-4, "perplexity {}", h.exp());
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn separates_clusters_and_is_reproducible() {
        let (data, labels) = clusters(40, 5, 16, 7);
        let opts = TsneOptions {
            perplexity: 10.0,
            n_iter: 300,
            ..Default::default()
        };
        let a = tsne(&data, &opts, |_| {}).unwrap();
        let b = tsne(&data, &opts, |_| {}).unwrap();
        assert_eq!(a.embedding, b.embedding, "same seed, same result");
        // Every point's nearest embedded neighbour is in its own cluster.
        let n = data.len();
        let mut right = 0;
        for i in 0..n {
            let j = (0..n)
                .filter(|&j| j != i)
                .min_by(|&x, &y| {
                    let dx = |k: usize| {
                        (a.embedding[i][0] - a.embedding[k][0]).powi(2)
                            + (a.embedding[i][1] - a.embedding[k][1]).powi(2)
                    };
                    dx(x).partial_cmp(&dx(y)).unwrap()
                })
                .unwrap();
            right += (labels[i] == labels[j]) as usize;
        }
        assert_eq!(right, n);
        assert!(
            a.kl_divergence > 0.0 && a.kl_divergence < 1.0,
            "KL {}",
            a.kl_divergence
        );
        assert!(knn_preservation(&data, &a.embedding, 10) > 0.5);
    }

    #[test]
    fn bad_inputs() {
        let d = vec![vec![0f32; 3]; 3];
        assert_eq!(
            tsne(&d, &TsneOptions::default(), |_| {}).unwrap_err(),
            TsneError::TooFew(3)
        );
        let d = vec![vec![0f32; 3]; 10];
        let e = tsne(
            &d,
            &TsneOptions {
                perplexity: -1.0,
                ..Default::default()
            },
            |_| {},
        )
        .unwrap_err();
        assert_eq!(e, TsneError::Perplexity(-1.0));
        // Identical points do not hang or produce NaN.
        let r = tsne(
            &d,
            &TsneOptions {
                perplexity: 2.0,
                n_iter: 50,
                early_exaggeration_iter: 20,
                ..Default::default()
            },
            |_| {},
        )
        .unwrap();
        assert!(r
            .embedding
            .iter()
            .all(|v| v[0].is_finite() && v[1].is_finite()));
    }
}
