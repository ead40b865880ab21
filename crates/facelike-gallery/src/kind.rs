//! Which descriptor space a gallery holds, so that searches never compare across spaces.

use serde::{Deserialize, Serialize};

/// The model that produced the descriptors of dlib's face recognition ResNet.
pub const DLIB_RESNET_V1: &str = "dlib_face_recognition_resnet_model_v1";

/// The space a descriptor lives in. Two descriptors are comparable only when their kinds are
/// equal: a gallery records the kind of its first face and refuses others.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DescriptorKind {
    /// The embedding model, e.g. [`DLIB_RESNET_V1`].
    pub model: String,
    /// Whether descriptors were scaled to unit length ([`facelike::Descriptor::normalized`]).
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
