//! The triplet-loss adapter's inference half: its file format and forward pass.
//!
//! An adapter is a small learned map on top of the frozen dlib descriptor, 128 → 128 with an
//! L2-normalised output (FaceNet's embedding lives on the unit sphere), in one of two shapes:
//!
//! * [`AdapterKind::Linear`]: `y = normalise(W x + b)`;
//! * [`AdapterKind::Residual`]: `y = normalise(x + W₂ relu(W₁ x + b₁) + b₂)`.
//!
//! `x` is the raw dlib descriptor (not normalised). Parameters are held as f64 (training in
//! `facelike-eval` needs exact finite-difference checks) and saved as f32 safetensors with
//! metadata `format = facelike-adapter`. Training (initialisation, gradients, the optimiser)
//! lives in `facelike-eval`; this module is what inference needs.

use crate::descriptor::{Descriptor, DESCRIPTOR_LEN};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const D: usize = DESCRIPTOR_LEN;

/// Reading or writing an adapter file; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The adapter file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The adapter file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not an adapter, or a damaged one.
    #[error("adapter file {path}: {problem}")]
    Invalid {
        /// The adapter file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The parameters could not be serialised.
    #[error("{0}")]
    Serialise(String),
}

/// The adapter's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    /// `y = normalise(W x + b)`.
    Linear,
    /// `y = normalise(x + W₂ relu(W₁ x + b₁) + b₂)` with a hidden layer of this width.
    Residual {
        /// Width of the hidden layer.
        hidden: usize,
    },
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
    /// The architecture.
    pub kind: AdapterKind,
    /// Linear: `W` (128×128, row-major, out × in). Residual: `W₁` (hidden×128).
    pub w1: Vec<f64>,
    /// Linear: `b` (128). Residual: `b₁` (hidden).
    pub b1: Vec<f64>,
    /// Residual only: `W₂` (128×hidden) and `b₂`; empty for linear.
    pub w2: Vec<f64>,
    /// Residual only: `b₂` (128).
    pub b2: Vec<f64>,
    /// The same-person threshold on L2 distance between adapted descriptors, when calibrated.
    pub threshold: Option<f64>,
    /// Free-form provenance saved in the file's metadata (training settings, data).
    pub notes: HashMap<String, String>,
}

/// Intermediate values of one forward pass, kept for the backward pass.
#[derive(Clone, Debug)]
pub struct ForwardCache {
    /// The input, as f64.
    pub x: [f64; D],
    /// Residual only: the hidden pre-activation.
    pub h_pre: Vec<f64>,
    /// The output before normalisation.
    pub z: [f64; D],
    /// `|z|`.
    pub z_norm: f64,
    /// The output, `z / |z|`.
    pub y: [f64; D],
}

fn normalise(z: &[f64; D]) -> ([f64; D], f64) {
    let n = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n == 0.0 {
        return (*z, 0.0);
    }
    (z.map(|v| v / n), n)
}

impl Adapter {
    /// An adapter of this shape with every parameter zero (training starts from
    /// `facelike_eval`'s identity initialisation instead).
    pub fn zeros(kind: AdapterKind) -> Adapter {
        let hidden = match kind {
            AdapterKind::Linear => D,
            AdapterKind::Residual { hidden } => hidden,
        };
        let (w2, b2) = match kind {
            AdapterKind::Linear => (Vec::new(), Vec::new()),
            AdapterKind::Residual { .. } => (vec![0.0; D * hidden], vec![0.0; D]),
        };
        Adapter {
            kind,
            w1: vec![0.0; hidden * D],
            b1: vec![0.0; hidden],
            w2,
            b2,
            threshold: None,
            notes: HashMap::new(),
        }
    }

    /// Width of the hidden layer (128 for the linear form).
    pub fn hidden(&self) -> usize {
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
    pub fn to_safetensors(&self) -> Result<Vec<u8>, AdapterError> {
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
            .map_err(|e| AdapterError::Serialise(format!("adapter tensors: {e}")))?;
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
            .map_err(|e| AdapterError::Serialise(format!("adapter serialisation: {e}")))
    }

    /// Writes the adapter to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), AdapterError> {
        let bytes = self.to_safetensors().map_err(|e| AdapterError::Invalid {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
        std::fs::write(path, bytes).map_err(|source| AdapterError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads an adapter file written by [`Adapter::save`].
    pub fn load(path: &Path) -> Result<Adapter, AdapterError> {
        let bytes = std::fs::read(path).map_err(|source| AdapterError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_safetensors(&bytes).map_err(|problem| AdapterError::Invalid {
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
        let mut a = Adapter::zeros(kind);
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

    #[test]
    fn zero_linear_adapter_outputs_its_input_normalised_only_when_weights_say_so() {
        let mut a = Adapter::zeros(AdapterKind::Linear);
        for i in 0..D {
            a.w1[i * D + i] = 1.0;
        }
        let x = Descriptor(std::array::from_fn(|i| (i as f32 * 0.37).sin() * 0.1));
        let y = a.apply(&x);
        let n = x.normalized();
        for (p, q) in y.0.iter().zip(n.0.iter()) {
            assert!((p - q).abs() < 1e-6, "{p} vs {q}");
        }
    }

    #[test]
    fn safetensors_round_trip_and_errors() {
        let mut a = Adapter::zeros(AdapterKind::Residual { hidden: 16 });
        a.w2.iter_mut()
            .enumerate()
            .for_each(|(i, w)| *w = (i as f64 * 0.37).sin() * 0.01);
        a.threshold = Some(0.875);
        a.notes.insert("trained_on".into(), "unit test".into());
        let b = Adapter::from_safetensors(&a.to_safetensors().unwrap()).unwrap();
        assert_eq!((b.kind, b.threshold), (a.kind, Some(0.875)));
        assert_eq!(
            b.notes.get("trained_on").map(String::as_str),
            Some("unit test")
        );
        for (x, y) in a.w2.iter().zip(&b.w2) {
            assert_eq!(*x as f32, *y as f32);
        }
        let err = Adapter::from_safetensors(b"not a file").unwrap_err();
        assert!(err.contains("not a safetensors file"), "{err}");
        let e = Adapter::load(Path::new("/nonexistent/adapter.safetensors")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/adapter.safetensors"),
            "{e}"
        );
    }
}
