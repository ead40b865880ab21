//! Training the triplet-loss adapter: its initialisation and gradients.
//!
//! The adapter itself (architecture, forward pass, file format) is
//! [`facelike_types::adapter`], which inference needs without this crate. Both shapes start as
//! `normalise(x)`, so training departs from dlib's own geometry: the linear form at `W = I`,
//! `b = 0`; the residual form with `W₂ = 0`, `b₂ = 0` and a He-initialised `W₁`.

use crate::rng::SplitMix64;
pub use facelike_types::adapter::{Adapter, AdapterKind, ForwardCache};
use facelike_types::descriptor::DESCRIPTOR_LEN;

const D: usize = DESCRIPTOR_LEN;

/// Gradients with the parameters' shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    /// ∂L/∂`w1` (linear: `W`, 128×128; residual: `W₁`, hidden×128; row-major).
    pub w1: Vec<f64>,
    /// ∂L/∂`b1`.
    pub b1: Vec<f64>,
    /// ∂L/∂`w2` (residual only; empty for linear).
    pub w2: Vec<f64>,
    /// ∂L/∂`b2` (residual only; empty for linear).
    pub b2: Vec<f64>,
}

impl Grads {
    /// All-zero gradients shaped like `a`'s parameters, ready to accumulate into.
    pub fn zeros_like(a: &Adapter) -> Grads {
        Grads {
            w1: vec![0.0; a.w1.len()],
            b1: vec![0.0; a.b1.len()],
            w2: vec![0.0; a.w2.len()],
            b2: vec![0.0; a.b2.len()],
        }
    }
}

/// Training operations on an [`Adapter`] (bring the trait into scope to call them).
pub trait AdapterTraining {
    /// The adapter that only normalises: `normalise(x)`. `seed` draws `W₁` of the residual form.
    fn identity(kind: AdapterKind, seed: u64) -> Self;
    /// Adds to `grads` the gradient of the loss given `dy = ∂L/∂y` for one sample.
    fn backward(&self, cache: &ForwardCache, dy: &[f64; D], grads: &mut Grads);
}

impl AdapterTraining for Adapter {
    /// The adapter that only normalises: `normalise(x)`. `seed` draws `W₁` of the residual form.
    fn identity(kind: AdapterKind, seed: u64) -> Adapter {
        match kind {
            AdapterKind::Linear => {
                let mut w = vec![0.0; D * D];
                for i in 0..D {
                    w[i * D + i] = 1.0;
                }
                Adapter {
                    w1: w,
                    ..Adapter::zeros(kind)
                }
            }
            AdapterKind::Residual { hidden } => {
                let mut rng = SplitMix64::new(seed);
                // dlib descriptor entries have a std of about 0.1, so unit-variance
                // He-initialised weights give hidden pre-activations of a similar scale.
                let scale = (2.0 / D as f64).sqrt();
                Adapter {
                    w1: (0..hidden * D).map(|_| rng.normal() * scale).collect(),
                    ..Adapter::zeros(kind)
                }
            }
        }
    }

    /// Adds to `grads` the gradient of the loss given `dy = ∂L/∂y` for one sample.
    // Index loops mirror the matrix formulas (row o of W, column j of W₂) more plainly than
    // zipped iterators would.
    #[allow(clippy::needless_range_loop)]
    fn backward(&self, cache: &ForwardCache, dy: &[f64; D], grads: &mut Grads) {
        if cache.z_norm == 0.0 {
            return;
        }
        // y = z/|z|  ⇒  ∂L/∂z = (dy − y (y·dy)) / |z|
        let ydy: f64 = cache.y.iter().zip(dy).map(|(a, b)| a * b).sum();
        let dz: [f64; D] = std::array::from_fn(|i| (dy[i] - cache.y[i] * ydy) / cache.z_norm);
        match self.kind {
            AdapterKind::Linear => {
                for o in 0..D {
                    grads.b1[o] += dz[o];
                    let g = &mut grads.w1[o * D..(o + 1) * D];
                    for (gi, xi) in g.iter_mut().zip(&cache.x) {
                        *gi += dz[o] * xi;
                    }
                }
            }
            AdapterKind::Residual { hidden } => {
                let mut dh = vec![0.0; hidden];
                for o in 0..D {
                    grads.b2[o] += dz[o];
                    let row = &self.w2[o * hidden..(o + 1) * hidden];
                    let g = &mut grads.w2[o * hidden..(o + 1) * hidden];
                    for j in 0..hidden {
                        let h = cache.h_pre[j].max(0.0);
                        g[j] += dz[o] * h;
                        dh[j] += row[j] * dz[o];
                    }
                }
                for j in 0..hidden {
                    if cache.h_pre[j] <= 0.0 {
                        continue;
                    }
                    grads.b1[j] += dh[j];
                    let g = &mut grads.w1[j * D..(j + 1) * D];
                    for (gi, xi) in g.iter_mut().zip(&cache.x) {
                        *gi += dh[j] * xi;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facelike_types::Descriptor;

    fn sample(seed: u64) -> [f32; D] {
        let mut r = SplitMix64::new(seed);
        std::array::from_fn(|_| (r.normal() * 0.1) as f32)
    }

    #[test]
    fn identity_adapter_only_normalises() {
        let x = Descriptor(sample(1));
        for kind in [AdapterKind::Linear, AdapterKind::Residual { hidden: 32 }] {
            let y = Adapter::identity(kind, 3).apply(&x);
            let n = x.normalized();
            for (a, b) in y.0.iter().zip(n.0.iter()) {
                assert!((a - b).abs() < 1e-6, "{kind}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn safetensors_round_trip_keeps_values_threshold_and_notes() {
        let mut a = Adapter::identity(AdapterKind::Residual { hidden: 16 }, 9);
        a.w2.iter_mut()
            .enumerate()
            .for_each(|(i, w)| *w = (i as f64 * 0.37).sin() * 0.01);
        a.threshold = Some(0.875);
        a.notes.insert("trained_on".into(), "unit test".into());
        let bytes = a.to_safetensors().unwrap();
        let b = Adapter::from_safetensors(&bytes).unwrap();
        assert_eq!(b.kind, a.kind);
        assert_eq!(b.threshold, Some(0.875));
        assert_eq!(
            b.notes.get("trained_on").map(String::as_str),
            Some("unit test")
        );
        for (x, y) in a.w2.iter().zip(&b.w2) {
            assert_eq!(*x as f32, *y as f32);
        }
        let err = Adapter::from_safetensors(b"not a file").unwrap_err();
        assert!(err.contains("not a safetensors file"), "{err}");
    }
}
