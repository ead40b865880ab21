//! Which descriptor space a descriptor lives in, so that searches never compare across spaces,
//! and the map from dlib's raw descriptor into it.
//!
//! Three spaces exist: dlib's raw descriptors (face_recognition's; norms of 1.2–1.7), the same
//! scaled to unit length (FaceNet's convention), and the output of a trained adapter (unit
//! length). [`DescriptorKind`] is the name a gallery records; [`DescriptorSpace`] is the loaded
//! map with its same-person tolerance.

use crate::adapter::{Adapter, AdapterError};
use crate::descriptor::{Descriptor, Metric, DEFAULT_TOLERANCE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// The model that produced the descriptors of dlib's face recognition ResNet.
pub const DLIB_RESNET_V1: &str = "dlib_face_recognition_resnet_model_v1";

/// The space a descriptor lives in. Two descriptors are comparable only when their kinds are
/// equal: a gallery records the kind of its first face and refuses others.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DescriptorKind {
    /// The embedding model, e.g. [`DLIB_RESNET_V1`].
    pub model: String,
    /// Whether descriptors were scaled to unit length ([`Descriptor::normalized`]).
    pub normalized: bool,
    /// A learned adapter (e.g. a projection head) applied after the model, by id; `None` for
    /// the model's own output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
}

impl DescriptorKind {
    /// Raw dlib ResNet descriptors, as face_recognition produces them.
    pub fn dlib_raw() -> Self {
        DescriptorKind {
            model: DLIB_RESNET_V1.to_owned(),
            normalized: false,
            adapter: None,
        }
    }

    /// Unit-length dlib ResNet descriptors.
    pub fn dlib_normalized() -> Self {
        DescriptorKind {
            normalized: true,
            ..Self::dlib_raw()
        }
    }

    /// Short human-readable form, e.g. `dlib_face_recognition_resnet_model_v1/raw`.
    pub fn label(&self) -> String {
        let mut s = format!(
            "{}/{}",
            self.model,
            if self.normalized { "normalized" } else { "raw" }
        );
        if let Some(a) = &self.adapter {
            s.push_str("+adapter:");
            s.push_str(a);
        }
        s
    }
}

impl std::fmt::Display for DescriptorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// The same-person tolerance for a descriptor space and metric, where one is known.
///
/// Raw dlib descriptors with L2: face_recognition's 0.6. Other pairs: the threshold that
/// accepts as many of the 29,648,850 pairs of the 7,701 LFW View-2 descriptors as raw L2 ≤ 0.6
/// does (179,096 pairs, 0.604%), computed in float64; the decisions then agree with raw L2 ≤
/// 0.6 on 99.6–99.8% of pairs. `None` for other models and for adapters (their calibrated
/// threshold travels in the adapter file: [`DescriptorSpace::default_tolerance`]).
pub fn default_tolerance(kind: &DescriptorKind, metric: Metric) -> Option<f32> {
    if kind.model != DLIB_RESNET_V1 || kind.adapter.is_some() {
        return None;
    }
    Some(match (kind.normalized, metric) {
        (false, Metric::L2) => DEFAULT_TOLERANCE,
        (false, Metric::L1) => 5.3933,
        (true, Metric::L2) => 0.41927,
        (true, Metric::L1) => 3.7692,
        // Cosine ignores length: the same for raw and unit-length descriptors.
        (_, Metric::Cosine) => 0.087895,
    })
}

/// The space descriptors are delivered in: a map from dlib's raw descriptor, its gallery name
/// ([`DescriptorKind`]) and its same-person tolerance. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub enum DescriptorSpace {
    /// dlib's raw descriptors, as face_recognition returns them.
    #[default]
    Raw,
    /// Unit-length (FaceNet-style) descriptors.
    Unit,
    /// The output of a trained adapter (unit length).
    Adapter {
        /// The adapter's parameters.
        adapter: Arc<Adapter>,
        /// Its content id, `sha256:` and the first 16 hex digits of the file's SHA-256.
        id: String,
    },
}

impl DescriptorSpace {
    /// Raw or unit-length dlib descriptors.
    pub fn dlib(normalize: bool) -> Self {
        if normalize {
            DescriptorSpace::Unit
        } else {
            DescriptorSpace::Raw
        }
    }

    /// The space of the adapter in this file (from `facelike train`).
    pub fn load_adapter(path: &Path) -> Result<Self, AdapterError> {
        let bytes = std::fs::read(path).map_err(|source| AdapterError::Read {
            path: path.to_owned(),
            source,
        })?;
        let adapter =
            Adapter::from_safetensors(&bytes).map_err(|problem| AdapterError::Invalid {
                path: path.to_owned(),
                problem,
            })?;
        Ok(Self::with_adapter(adapter, &bytes))
    }

    /// The space of an adapter whose file holds `file_bytes` (they give the content id).
    pub fn with_adapter(adapter: Adapter, file_bytes: &[u8]) -> Self {
        let hex: String = Sha256::digest(file_bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        DescriptorSpace::Adapter {
            adapter: Arc::new(adapter),
            id: format!("sha256:{}", &hex[..16]),
        }
    }

    /// True for dlib's raw descriptors.
    pub fn is_raw(&self) -> bool {
        matches!(self, DescriptorSpace::Raw)
    }

    /// The gallery's name for this space.
    pub fn kind(&self) -> DescriptorKind {
        match self {
            DescriptorSpace::Raw => DescriptorKind::dlib_raw(),
            DescriptorSpace::Unit => DescriptorKind::dlib_normalized(),
            DescriptorSpace::Adapter { id, .. } => DescriptorKind {
                adapter: Some(id.clone()),
                ..DescriptorKind::dlib_normalized()
            },
        }
    }

    /// Maps a raw dlib descriptor into this space.
    pub fn map(&self, raw: &Descriptor) -> Descriptor {
        match self {
            DescriptorSpace::Raw => *raw,
            DescriptorSpace::Unit => raw.normalized(),
            DescriptorSpace::Adapter { adapter, .. } => adapter.apply(raw),
        }
    }

    /// The same-person tolerance in this space: the adapter's calibrated L2 threshold, or
    /// face_recognition's 0.6 (raw L2), or its calibrated equivalent ([`default_tolerance`]).
    pub fn default_tolerance(&self, metric: Metric) -> Option<f32> {
        match self {
            DescriptorSpace::Adapter { adapter, .. } if metric == Metric::L2 => {
                adapter.threshold.map(|t| t as f32)
            }
            DescriptorSpace::Adapter { .. } => None,
            _ => default_tolerance(&self.kind(), metric),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_name_map_and_calibrate() {
        let raw = Descriptor(std::array::from_fn(|i| if i == 0 { 3.0 } else { 0.0 }));
        assert_eq!(DescriptorSpace::Raw.map(&raw), raw);
        assert_eq!(DescriptorSpace::Unit.map(&raw).norm(), 1.0);
        assert_eq!(
            DescriptorSpace::Raw.kind().label(),
            "dlib_face_recognition_resnet_model_v1/raw"
        );
        assert_eq!(
            DescriptorSpace::Unit.default_tolerance(Metric::L2),
            Some(0.41927)
        );
        assert_eq!(
            DescriptorSpace::Raw.default_tolerance(Metric::L2),
            Some(0.6)
        );
        let mut a = Adapter::zeros(crate::AdapterKind::Linear);
        a.threshold = Some(0.9);
        let s = DescriptorSpace::with_adapter(a, b"bytes");
        assert_eq!(s.default_tolerance(Metric::L2), Some(0.9));
        assert_eq!(s.default_tolerance(Metric::L1), None);
        // sha256("bytes") = 3ab2...; the id keeps 16 hex digits.
        let kind = s.kind();
        assert!(kind.adapter.as_deref().unwrap().starts_with("sha256:"));
        assert_eq!(kind.adapter.as_deref().unwrap().len(), 7 + 16);
        assert_eq!(default_tolerance(&kind, Metric::L2), None);
    }
}
