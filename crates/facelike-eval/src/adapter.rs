//! A small learned map on top of the frozen dlib descriptor, trained with triplet loss.
//!
//! Two shapes, both 128 → 128 with an L2-normalised output (FaceNet's embedding lives on the
//! unit sphere):
//!
//! * [`AdapterKind::Linear`]: `y = normalise(W x + b)`, started at `W = I`, `b = 0`;
//! * [`AdapterKind::Residual`]: `y = normalise(x + W₂ relu(W₁ x + b₁) + b₂)`, started with
//!   `W₂ = 0`, `b₂ = 0` and a He-initialised `W₁`.
//!
//! Both start as `normalise(x)`, so training departs from dlib's own geometry. `x` is the raw
//! dlib descriptor (not normalised; its norm is left for the adapter to use or ignore).
//! Parameters are f64 while training (so finite-difference checks are exact to ~1e-9) and
//! saved as f32 safetensors.

use crate::error::{EvalError, Result};
use crate::rng::SplitMix64;
use facelike::descriptor::DESCRIPTOR_LEN;
use facelike::Descriptor;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

const D: usize = DESCRIPTOR_LEN;

/// The adapter's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    Linear,
    Residual { hidden: usize },
}

impl std::fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdapterKind::Linear => write!(f, "linear"),
            AdapterKind::Residual { hidden } => write!(f, "residual-mlp-{hidden}"),
        }
    }
}

/// A trained (or identity-initialised) adapter. Apply it with [`Adapter::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct Adapter {
    pub kind: AdapterKind,
    /// Linear: `W` (128×128, row-major, out × in). Residual: `W₁` (hidden×128).
    pub w1: Vec<f64>,
    pub b1: Vec<f64>,
    /// Residual only: `W₂` (128×hidden) and `b₂`; empty for linear.
    pub w2: Vec<f64>,
    pub b2: Vec<f64>,
    /// The same-person threshold on L2 distance between adapted descriptors, when calibrated.
    pub threshold: Option<f64>,
    /// Free-form provenance saved in the file's metadata (training settings, data).
    pub notes: HashMap<String, String>,
}

/// Intermediate values of one forward pass, kept for the backward pass.
#[derive(Clone, Debug)]
pub struct ForwardCache {
    pub x: [f64; D],
    /// Residual only: the hidden pre-activation.
    pub h_pre: Vec<f64>,
    pub z: [f64; D],
    pub z_norm: f64,
    pub y: [f64; D],
}

/// Gradients with the parameters' shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    pub w1: Vec<f64>,
    pub b1: Vec<f64>,
    pub w2: Vec<f64>,
    pub b2: Vec<f64>,
}

impl Grads {
    pub fn zeros_like(a: &Adapter) -> Grads {
        Grads {
            w1: vec![0.0; a.w1.len()],
            b1: vec![0.0; a.b1.len()],
            w2: vec![0.0; a.w2.len()],
            b2: vec![0.0; a.b2.len()],
        }
    }
}

fn normalise(z: &[f64; D]) -> ([f64; D], f64) {
    let n = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n == 0.0 {
        return (*z, 0.0);
    }
    (z.map(|v| v / n), n)
}

impl Adapter {
    /// The adapter that only normalises: `normalise(x)`. `seed` draws `W₁` of the residual form.
    pub fn identity(kind: AdapterKind, seed: u64) -> Adapter {
        match kind {
            AdapterKind::Linear => {
                let mut w = vec![0.0; D * D];
                for i in 0..D {
                    w[i * D + i] = 1.0;
                }
                Adapter {
                    kind,
                    w1: w,
                    b1: vec![0.0; D],
                    w2: Vec::new(),
                    b2: Vec::new(),
                    threshold: None,
                    notes: HashMap::new(),
                }
            }
            AdapterKind::Residual { hidden } => {
                let mut rng = SplitMix64::new(seed);
                // dlib descriptor entries have a std of about 0.1, so unit-variance
                // He-initialised weights give hidden pre-activations of a similar scale.
                let scale = (2.0 / D as f64).sqrt();
                Adapter {
                    kind,
                    w1: (0..hidden * D).map(|_| rng.normal() * scale).collect(),
                    b1: vec![0.0; hidden],
                    w2: vec![0.0; D * hidden],
                    b2: vec![0.0; D],
                    threshold: None,
                    notes: HashMap::new(),
                }
            }
        }
    }

    fn hidden(&self) -> usize {
        match self.kind {
            AdapterKind::Linear => D,
            AdapterKind::Residual { hidden } => hidden,
        }
    }

    /// Number of trainable numbers.
    pub fn parameter_count(&self) -> usize {
        self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    /// Forward pass on a raw descriptor, keeping what the backward pass needs.
    pub fn forward(&self, x: &[f32; D]) -> ForwardCache {
        let x: [f64; D] = x.map(|v| v as f64);
        let mut z = [0.0; D];
        let mut h_pre = Vec::new();
        match self.kind {
            AdapterKind::Linear => {
                for (o, zo) in z.iter_mut().enumerate() {
                    let row = &self.w1[o * D..(o + 1) * D];
                    *zo = self.b1[o] + row.iter().zip(&x).map(|(w, v)| w * v).sum::<f64>();
                }
            }
            AdapterKind::Residual { hidden } => {
                h_pre = (0..hidden)
                    .map(|j| {
                        let row = &self.w1[j * D..(j + 1) * D];
                        self.b1[j] + row.iter().zip(&x).map(|(w, v)| w * v).sum::<f64>()
                    })
                    .collect();
                for (o, zo) in z.iter_mut().enumerate() {
                    let row = &self.w2[o * hidden..(o + 1) * hidden];
                    *zo = x[o]
                        + self.b2[o]
                        + row
                            .iter()
                            .zip(&h_pre)
                            .map(|(w, h)| w * h.max(0.0))
                            .sum::<f64>();
                }
            }
        }
        let (y, z_norm) = normalise(&z);
        ForwardCache {
            x,
            h_pre,
            z,
            z_norm,
            y,
        }
    }

    /// Adds to `grads` the gradient of the loss given `dy = ∂L/∂y` for one sample.
    // Index loops mirror the matrix formulas (row o of W, column j of W₂) more plainly than
    // zipped iterators would.
    #[allow(clippy::needless_range_loop)]
    pub fn backward(&self, cache: &ForwardCache, dy: &[f64; D], grads: &mut Grads) {
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

    /// The adapted, unit-length descriptor.
    pub fn apply(&self, d: &Descriptor) -> Descriptor {
        Descriptor(self.forward(&d.0).y.map(|v| v as f32))
    }

    /// Parameters as (name, shape, values), in file order.
    fn tensors(&self) -> Vec<(&'static str, Vec<usize>, &[f64])> {
        match self.kind {
            AdapterKind::Linear => vec![
                ("linear.weight", vec![D, D], &self.w1[..]),
                ("linear.bias", vec![D], &self.b1[..]),
            ],
            AdapterKind::Residual { hidden } => vec![
                ("fc1.weight", vec![hidden, D], &self.w1[..]),
                ("fc1.bias", vec![hidden], &self.b1[..]),
                ("fc2.weight", vec![D, hidden], &self.w2[..]),
                ("fc2.bias", vec![D], &self.b2[..]),
            ],
        }
    }

    /// The safetensors bytes: f32 tensors `linear.{weight,bias}` or `fc1.*`/`fc2.*`, and
    /// metadata `format = facelike-adapter`, `kind`, `hidden`, `threshold`, plus the notes.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let bufs: Vec<(&str, Vec<usize>, Vec<u8>)> = self
            .tensors()
            .into_iter()
            .map(|(n, s, v)| {
                let bytes = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
                (n, s, bytes)
            })
            .collect();
        let views = bufs
            .iter()
            .map(|(n, s, b)| {
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                    .map(|v| (n.to_string(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EvalError::Invalid(format!("adapter tensors: {e}")))?;
        let mut meta = self.notes.clone();
        meta.insert("format".into(), "facelike-adapter".into());
        meta.insert("version".into(), "1".into());
        meta.insert(
            "kind".into(),
            match self.kind {
                AdapterKind::Linear => "linear".into(),
                AdapterKind::Residual { .. } => "residual_mlp".into(),
            },
        );
        meta.insert("hidden".into(), self.hidden().to_string());
        meta.insert(
            "input".into(),
            "raw dlib_face_recognition_resnet_model_v1 descriptor (128)".into(),
        );
        meta.insert("output".into(), "L2-normalised 128-D embedding".into());
        if let Some(t) = self.threshold {
            meta.insert("threshold".into(), format!("{t}"));
        }
        safetensors::serialize(views, Some(meta))
            .map_err(|e| EvalError::Invalid(format!("adapter serialisation: {e}")))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_safetensors().map_err(|e| EvalError::Adapter {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
        std::fs::write(path, bytes).map_err(|source| EvalError::Write {
            path: path.to_owned(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<Adapter> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_safetensors(&bytes).map_err(|problem| EvalError::Adapter {
            path: path.to_owned(),
            problem,
        })
    }

    /// Parses what [`Adapter::to_safetensors`] writes; the error says what is wrong.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Adapter, String> {
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format!("not a safetensors file: {e}"))?;
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
        let mut meta = metadata.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("facelike-adapter") {
            return Err("metadata lacks format = facelike-adapter".into());
        }
        let hidden: usize = meta
            .get("hidden")
            .and_then(|h| h.parse().ok())
            .ok_or("metadata lacks a numeric `hidden`")?;
        let kind = match meta.get("kind").map(String::as_str) {
            Some("linear") => AdapterKind::Linear,
            Some("residual_mlp") if hidden > 0 => AdapterKind::Residual { hidden },
            other => return Err(format!("unknown adapter kind {other:?}")),
        };
        let threshold = match meta.get("threshold") {
            Some(t) => Some(
                t.parse::<f64>()
                    .map_err(|_| format!("bad threshold {t:?}"))?,
            ),
            None => None,
        };
        let mut a = Adapter::identity(kind, 0);
        let shapes: Vec<(&str, Vec<usize>)> =
            a.tensors().into_iter().map(|(n, s, _)| (n, s)).collect();
        let mut values = Vec::new();
        for (name, shape) in shapes {
            let t = st
                .tensor(name)
                .map_err(|_| format!("tensor {name} missing"))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(format!(
                    "tensor {name}: expected F32 {shape:?}, found {:?} {:?}",
                    t.dtype(),
                    t.shape()
                ));
            }
            let v: Vec<f64> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(format!("tensor {name} holds non-finite values"));
            }
            values.push(v);
        }
        let mut it = values.into_iter();
        a.w1 = it.next().unwrap_or_default();
        a.b1 = it.next().unwrap_or_default();
        if let AdapterKind::Residual { .. } = kind {
            a.w2 = it.next().unwrap_or_default();
            a.b2 = it.next().unwrap_or_default();
        }
        for k in [
            "format",
            "version",
            "kind",
            "hidden",
            "input",
            "output",
            "threshold",
        ] {
            meta.remove(k);
        }
        a.threshold = threshold;
        a.notes = meta;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
