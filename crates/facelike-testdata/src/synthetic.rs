//! Synthetic descriptors that look like real dlib ones, for benchmarks at sizes no photo set
//! here reaches.
//!
//! [`SpreadModel::fit`] measures, on real descriptors grouped by identity, the global mean, the
//! pooled within-identity covariance `Σw` and the between-identity covariance `Σb` (the
//! covariance of identity means, less the share `E[1/n]·Σw` that within-identity noise adds to
//! a mean of `n` faces, clipped to be positive semi-definite), plus the distribution of faces
//! per identity. [`SpreadModel::generate`] then draws identity centres `μ + Σb^½ z` and faces
//! `centre + κ·s·Σw^½ z'`, with identity sizes drawn from the measured distribution. The
//! per-face scale `s = exp(σz − σ²)` (so `E[s²] = 1`) gives faces the uneven spread real photos
//! have (sharp frontal shots near the centre, blurred or profile ones far out): a plain
//! Gaussian puts every same-identity distance within a narrow band around `√(2 tr Σw)`.
//! `σ` and `κ` are fitted so that same-identity L2 distances have the mean and the coefficient
//! of variation measured on the real set.
//! [`pair_distance_stats`] compares real and synthetic sets on same- and different-identity
//! L2 distances.

use facelike::descriptor::DESCRIPTOR_LEN;
use std::collections::HashMap;

const D: usize = DESCRIPTOR_LEN;

/// A fitted mixture model of descriptors.
#[derive(Clone, Debug)]
pub struct SpreadModel {
    /// Global mean of the fitted descriptors (`D` values, raw dlib scale).
    pub mean: Vec<f64>,
    /// `Σb^½` and `Σw^½` as row-major `D × D` matrices (`V·diag(√λ)`).
    between_sqrt: Vec<f64>,
    within_sqrt: Vec<f64>,
    /// Faces per identity, as observed (drawn from uniformly).
    pub sizes: Vec<u32>,
    /// Trace of Σb (total variance between identities).
    pub between_trace: f64,
    /// Trace of Σw (total variance within identities).
    pub within_trace: f64,
    /// `σ`: log-normal spread of the per-face noise scale `s` (see the module doc).
    pub scale_sigma: f64,
    /// `κ`: gain on the within-identity noise, fitted so same-identity distances match.
    pub noise_gain: f64,
}

/// Small deterministic generator (xoshiro256**), with Gaussian draws by Box–Muller.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

impl Rng {
    /// A generator seeded from `seed` (the state is expanded with SplitMix64).
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
            spare: None,
        }
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }
    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
    /// A standard normal draw (mean 0, variance 1); Box–Muller makes two at a time and keeps
    /// the second for the next call.
    pub fn gaussian(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// Eigen-decomposition of a symmetric `n × n` matrix (cyclic Jacobi): (eigenvalues,
/// eigenvectors as the columns of a row-major matrix).
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum::<f64>();
        if off <= 1e-22 * scale.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// `V·diag(√max(λ,0))` of a symmetric PSD-ish matrix: a square root with negatives clipped.
/// Also returns the trace and the sum of squared eigenvalues.
fn psd_sqrt(a: &[f64]) -> (Vec<f64>, f64, f64) {
    let (vals, vecs) = symmetric_eigen(a, D);
    let mut out = vec![0.0; D * D];
    let (mut trace, mut sq) = (0.0, 0.0);
    for j in 0..D {
        let l = vals[j].max(0.0);
        trace += l;
        sq += l * l;
        let s = l.sqrt();
        for i in 0..D {
            out[i * D + j] = vecs[i * D + j] * s;
        }
    }
    (out, trace, sq)
}

/// `E[√((s1² + s2²)/2)]` for independent scales `s = exp(σz − σ²)` (Monte Carlo, fixed seed).
fn mean_sqrt_scale(sigma: f64) -> f64 {
    let mut rng = Rng::new(99);
    let n = 40_000;
    let mut acc = 0.0;
    for _ in 0..n {
        let s1 = (sigma * rng.gaussian() - sigma * sigma).exp();
        let s2 = (sigma * rng.gaussian() - sigma * sigma).exp();
        acc += ((s1 * s1 + s2 * s2) / 2.0).sqrt();
    }
    acc / n as f64
}

impl SpreadModel {
    /// Fits the model on descriptors labelled by identity.
    pub fn fit(identities: &[String], descriptors: &[[f32; D]]) -> SpreadModel {
        assert_eq!(identities.len(), descriptors.len());
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, name) in identities.iter().enumerate() {
            groups.entry(name.as_str()).or_default().push(i);
        }
        let mut names: Vec<&str> = groups.keys().copied().collect();
        names.sort_unstable();
        let mut mean = vec![0.0; D];
        for d in descriptors {
            for j in 0..D {
                mean[j] += d[j] as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= descriptors.len() as f64);

        let mut within = vec![0.0; D * D];
        let mut dof = 0usize;
        let mut means: Vec<Vec<f64>> = Vec::new();
        let mut inv_n_sum = 0.0;
        let mut sizes = Vec::new();
        for name in &names {
            let rows = &groups[name];
            sizes.push(rows.len() as u32);
            let mut mu = vec![0.0; D];
            for &r in rows {
                for j in 0..D {
                    mu[j] += descriptors[r][j] as f64;
                }
            }
            mu.iter_mut().for_each(|m| *m /= rows.len() as f64);
            if rows.len() >= 2 {
                for &r in rows {
                    let x: Vec<f64> = (0..D).map(|j| descriptors[r][j] as f64 - mu[j]).collect();
                    for a in 0..D {
                        for b in 0..D {
                            within[a * D + b] += x[a] * x[b];
                        }
                    }
                }
                dof += rows.len() - 1;
            }
            inv_n_sum += 1.0 / rows.len() as f64;
            means.push(mu);
        }
        within.iter_mut().for_each(|w| *w /= dof.max(1) as f64);
        let k = means.len() as f64;
        let mut between = vec![0.0; D * D];
        for mu in &means {
            let x: Vec<f64> = (0..D).map(|j| mu[j] - mean[j]).collect();
            for a in 0..D {
                for b in 0..D {
                    between[a * D + b] += x[a] * x[b];
                }
            }
        }
        let inv_n = inv_n_sum / k;
        for (b, w) in between.iter_mut().zip(&within) {
            *b = *b / (k - 1.0).max(1.0) - inv_n * w;
        }
        let (between_sqrt, between_trace, _) = psd_sqrt(&between);
        let (within_sqrt, within_trace, within_sq) = psd_sqrt(&within);

        // Same-identity L2 distances of the real set: mean and coefficient of variation.
        let mut dists = Vec::new();
        for name in &names {
            let rows = &groups[name];
            for a in 0..rows.len() {
                for b in a + 1..rows.len() {
                    let d = facelike::descriptor::l2(&descriptors[rows[a]], &descriptors[rows[b]]);
                    dists.push(d as f64);
                }
            }
        }
        let (real_mean, real_cv) = if dists.is_empty() {
            ((2.0 * within_trace).sqrt(), 0.0)
        } else {
            let m = dists.iter().sum::<f64>() / dists.len() as f64;
            let v = dists.iter().map(|d| (d - m) * (d - m)).sum::<f64>() / dists.len() as f64;
            (m, v.sqrt() / m)
        };
        // Plain Gaussian noise: d² = Σ 2λ χ²₁, so CV(d) ≈ CV(d²)/2 = √(2Σλ²) / (2 tr).
        let base_cv = (2.0 * within_sq).sqrt() / (2.0 * within_trace).max(1e-300);
        let base_mean = (2.0 * within_trace).sqrt() * (1.0 - base_cv * base_cv / 2.0);
        // With scales, d = √S·b (S = (s1²+s2²)/2, E[S] = 1): CV²(d) = (1 + c0²)/E[√S]² − 1.
        let target = ((1.0 + base_cv * base_cv) / (1.0 + real_cv * real_cv)).sqrt();
        let (mut lo, mut hi) = (0.0f64, 1.5f64);
        if mean_sqrt_scale(0.0) <= target {
            hi = 0.0;
        }
        for _ in 0..30 {
            let mid = 0.5 * (lo + hi);
            if mean_sqrt_scale(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let scale_sigma = 0.5 * (lo + hi);
        let noise_gain = real_mean / (mean_sqrt_scale(scale_sigma) * base_mean).max(1e-300);
        SpreadModel {
            mean,
            between_sqrt,
            within_sqrt,
            sizes,
            between_trace,
            within_trace,
            scale_sigma,
            noise_gain,
        }
    }

    fn draw(sqrt: &[f64], rng: &mut Rng, out: &mut [f64]) {
        let z: Vec<f64> = (0..D).map(|_| rng.gaussian()).collect();
        for i in 0..D {
            let row = &sqrt[i * D..(i + 1) * D];
            out[i] = row.iter().zip(&z).map(|(a, b)| a * b).sum();
        }
    }

    /// `n` synthetic faces: (identity id per face, row-major `n × 128` matrix). Identity ids
    /// count up from 0; faces of one identity are contiguous. Parallel and deterministic for a
    /// given seed.
    pub fn generate(&self, n: usize, seed: u64) -> (Vec<u32>, Vec<f32>) {
        use rayon::prelude::*;
        let mut rng = Rng::new(seed);
        let mut identities = Vec::with_capacity(n);
        let mut id = 0u32;
        while identities.len() < n {
            let size = self.sizes[rng.below(self.sizes.len())] as usize;
            let size = size.min(n - identities.len());
            identities.extend(std::iter::repeat_n(id, size));
            id += 1;
        }
        // Each identity's draws come from its own stream, so the result does not depend on
        // how rayon splits the work.
        let mut starts = vec![0usize];
        for i in 1..n {
            if identities[i] != identities[i - 1] {
                starts.push(i);
            }
        }
        starts.push(n);
        let mut data = vec![0f32; n * D];
        let mut chunks: Vec<&mut [f32]> = Vec::with_capacity(starts.len());
        let mut rest = data.as_mut_slice();
        for w in starts.windows(2) {
            let (a, b) = rest.split_at_mut((w[1] - w[0]) * D);
            chunks.push(a);
            rest = b;
        }
        chunks.into_par_iter().enumerate().for_each(|(ident, out)| {
            let mut rng = Rng::new(seed ^ (ident as u64 + 1).wrapping_mul(0xd134_2543_de82_ef95));
            let mut centre = vec![0.0; D];
            Self::draw(&self.between_sqrt, &mut rng, &mut centre);
            let mut noise = vec![0.0; D];
            let sigma = self.scale_sigma;
            for face in out.chunks_exact_mut(D) {
                Self::draw(&self.within_sqrt, &mut rng, &mut noise);
                let s = self.noise_gain * (sigma * rng.gaussian() - sigma * sigma).exp();
                for j in 0..D {
                    face[j] = (self.mean[j] + centre[j] + s * noise[j]) as f32;
                }
            }
        });
        (identities, data)
    }
}

/// Mean and standard deviation of L2 distances between faces of the same identity and of
/// different identities (up to `samples` random pairs each).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PairStats {
    /// Mean L2 distance between two faces of the same identity.
    pub same_mean: f64,
    /// Standard deviation of same-identity L2 distances.
    pub same_std: f64,
    /// Mean L2 distance between faces of different identities.
    pub diff_mean: f64,
    /// Standard deviation of different-identity L2 distances.
    pub diff_std: f64,
    /// Fraction of same-identity pairs within 0.6 (face_recognition's default tolerance).
    pub same_within_06: f64,
    /// Fraction of different-identity pairs within 0.6 (false matches at that tolerance).
    pub diff_within_06: f64,
}

/// Same/different-identity L2 distance statistics over random pairs.
pub fn pair_distance_stats(
    identities: &[u32],
    data: &[f32],
    samples: usize,
    seed: u64,
) -> PairStats {
    let n = identities.len();
    let mut by_ident: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, &id) in identities.iter().enumerate() {
        by_ident.entry(id).or_default().push(i);
    }
    let multi: Vec<&Vec<usize>> = by_ident.values().filter(|v| v.len() >= 2).collect();
    let mut rng = Rng::new(seed);
    let row = |i: usize| &data[i * D..(i + 1) * D];
    let mut same = Vec::new();
    let mut diff = Vec::new();
    if !multi.is_empty() {
        for _ in 0..samples {
            let g = multi[rng.below(multi.len())];
            let a = rng.below(g.len());
            let mut b = rng.below(g.len() - 1);
            if b >= a {
                b += 1;
            }
            same.push(facelike::descriptor::l2(row(g[a]), row(g[b])) as f64);
        }
    }
    for _ in 0..samples {
        let a = rng.below(n);
        let b = rng.below(n);
        if identities[a] != identities[b] {
            diff.push(facelike::descriptor::l2(row(a), row(b)) as f64);
        }
    }
    let ms = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64).sqrt();
        (m, s)
    };
    let frac = |v: &[f64]| v.iter().filter(|&&x| x <= 0.6).count() as f64 / v.len().max(1) as f64;
    let (same_mean, same_std) = ms(&same);
    let (diff_mean, diff_std) = ms(&diff);
    PairStats {
        same_mean,
        same_std,
        diff_mean,
        diff_std,
        same_within_06: frac(&same),
        diff_within_06: frac(&diff),
    }
}

/// Identity labels of LFW descriptor paths (`Name/Name_0001.jpg` → `Name`).
pub fn lfw_identity(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises() {
        let n = 4;
        let a = [
            4.0, 1.0, 0.5, 0.0, 1.0, 3.0, 0.2, 0.1, 0.5, 0.2, 2.0, 0.3, 0.0, 0.1, 0.3, 1.0,
        ];
        let (vals, v) = symmetric_eigen(&a, n);
        // A v_j = λ_j v_j for every column j.
        for j in 0..n {
            for i in 0..n {
                let av: f64 = (0..n).map(|k| a[i * n + k] * v[k * n + j]).sum();
                assert!((av - vals[j] * v[i * n + j]).abs() < 1e-9);
            }
        }
        let trace: f64 = vals.iter().sum();
        assert!((trace - 10.0).abs() < 1e-9);
    }
}
