//! Exact principal component analysis of descriptors.
//!
//! The covariance is accumulated in f64 over chunks in parallel (so a million 128-D vectors
//! take one pass and 128×128 memory), then diagonalised with nalgebra's symmetric eigensolver.
//! Conventions follow scikit-learn's `PCA`: centred data, variances with `n − 1` in the
//! denominator, components sorted by decreasing variance, each component's sign fixed so that
//! its largest-magnitude loading is positive (sklearn's `svd_flip` on the loadings).

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Dimension of the input vectors.
    pub dim: usize,
    /// Mean of the input vectors (`dim` values), subtracted before projecting.
    pub mean: Vec<f64>,
    /// Principal axes, one row of `dim` values per component, by decreasing variance.
    pub components: Vec<Vec<f64>>,
    /// Variance along each component (sklearn's `explained_variance_`).
    pub explained_variance: Vec<f64>,
    /// Share of the total variance per component (sklearn's `explained_variance_ratio_`).
    pub explained_variance_ratio: Vec<f64>,
    /// Number of vectors fitted.
    pub samples: usize,
}

/// Why [`Pca::fit`] failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PcaError {
    /// Fewer than 2 vectors (the `n − 1` variance is undefined); the count given.
    #[error("PCA needs at least 2 vectors, got {0}")]
    TooFew(usize),
    /// Vectors of different lengths: the first vector's and the first differing one's.
    #[error("vectors have different lengths ({0} and {1})")]
    Ragged(usize, usize),
}

impl Pca {
    /// Fits all components of `data` (rows of equal length).
    pub fn fit<R: AsRef<[f32]> + Sync>(data: &[R]) -> Result<Pca, PcaError> {
        let n = data.len();
        if n < 2 {
            return Err(PcaError::TooFew(n));
        }
        let dim = data[0].as_ref().len();
        if let Some(r) = data.iter().find(|r| r.as_ref().len() != dim) {
            return Err(PcaError::Ragged(dim, r.as_ref().len()));
        }
        const CHUNK: usize = 4096;
        // Pass 1: the mean.
        let sum = data
            .par_chunks(CHUNK)
            .map(|c| {
                let mut s = vec![0f64; dim];
                for r in c {
                    for (a, v) in s.iter_mut().zip(r.as_ref()) {
                        *a += *v as f64;
                    }
                }
                s
            })
            .reduce(|| vec![0f64; dim], add);
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        // Pass 2: the scatter matrix of centred rows (upper triangle), chunk by chunk.
        let scatter = data
            .par_chunks(CHUNK)
            .map(|c| {
                let mut m = vec![0f64; dim * dim];
                let mut x = vec![0f64; dim];
                for r in c {
                    for ((xi, v), mu) in x.iter_mut().zip(r.as_ref()).zip(&mean) {
                        *xi = *v as f64 - mu;
                    }
                    for i in 0..dim {
                        let xi = x[i];
                        let row = &mut m[i * dim..(i + 1) * dim];
                        for j in i..dim {
                            row[j] += xi * x[j];
                        }
                    }
                }
                m
            })
            .reduce(|| vec![0f64; dim * dim], add);
        let cov = DMatrix::from_fn(dim, dim, |i, j| {
            let (a, b) = if i <= j { (i, j) } else { (j, i) };
            scatter[a * dim + b] / (n - 1) as f64
        });
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| {
            eig.eigenvalues[b]
                .partial_cmp(&eig.eigenvalues[a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let mut components = Vec::with_capacity(dim);
        let mut explained_variance = Vec::with_capacity(dim);
        for &k in &order {
            let mut v: Vec<f64> = eig.eigenvectors.column(k).iter().copied().collect();
            let big = v
                .iter()
                .copied()
                .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            components.push(v);
            explained_variance.push(eig.eigenvalues[k].max(0.0));
        }
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        Ok(Pca {
            dim,
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
            samples: n,
        })
    }

    /// Coordinates of `x` on the first `dims` components.
    pub fn project(&self, x: &[f32], dims: usize) -> Vec<f64> {
        self.components[..dims.min(self.components.len())]
            .iter()
            .map(|c| {
                c.iter()
                    .zip(x)
                    .zip(&self.mean)
                    .map(|((a, v), m)| a * (*v as f64 - m))
                    .sum()
            })
            .collect()
    }

    /// Projects every row (in parallel).
    pub fn project_all<R: AsRef<[f32]> + Sync>(&self, data: &[R], dims: usize) -> Vec<Vec<f64>> {
        data.par_iter()
            .map(|r| self.project(r.as_ref(), dims))
            .collect()
    }
}

fn add(mut a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    for (x, y) in a.iter_mut().zip(&b) {
        *x += y;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_axis() {
        // Points along (3, 4)/5 with a little orthogonal spread.
        let data: Vec<[f32; 2]> = (0..200)
            .map(|i| {
                let t = i as f32 - 100.0;
                let e = if i % 2 == 0 { 0.5 } else { -0.5 };
                [0.6 * t - 0.8 * e + 10.0, 0.8 * t + 0.6 * e - 3.0]
            })
            .collect();
        let p = Pca::fit(&data).unwrap();
        assert!(
            (p.components[0][0] - 0.6).abs() < 1e-3 && (p.components[0][1] - 0.8).abs() < 1e-3,
            "{:?}",
            p.components[0]
        );
        assert!((p.mean[0] - (0.6 * -0.5 + 10.0)).abs() < 1e-4);
        assert!(p.explained_variance_ratio[0] > 0.999);
        let sum: f64 = p.explained_variance_ratio.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);
        assert_eq!(Pca::fit(&data[..1]).unwrap_err(), PcaError::TooFew(1));
    }
}
