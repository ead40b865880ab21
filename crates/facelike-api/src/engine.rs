//! The options every photo-to-descriptor job shares, and the [`Engine`] they load: models, the
//! descriptor space and the image-loading rules, in one value that serves many threads.

use crate::error::{ApiError, Result};
use facelike::{
    DescriptorKind, DescriptorSpace, DetectorKind, Encoder, EncoderOptions, Face, LandmarkModel,
    LoadOptions, Metric, Rect, RgbImage,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// face_recognition's default number of upsamplings before detection.
pub const DEFAULT_UPSAMPLE: u32 = 1;
/// Images with more pixels than this are refused from their header by default.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// How photos become descriptors. The defaults are face_recognition's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EncodeOptions {
    /// Face detector: HOG (face_recognition's default) or CNN.
    pub detector: DetectorKind,
    /// Times the image is upsampled before detection (finds smaller faces; slower).
    pub upsample: u32,
    /// Landmark model used for alignment: 5 or 68 points.
    pub landmarks: u32,
    /// Descriptors of N jittered copies of each face averaged (dlib's `num_jitters`).
    pub jitters: u32,
    /// Unit-length (FaceNet-style) descriptors instead of dlib's raw ones.
    pub normalize: bool,
    /// A trained adapter (from `facelike train`) to map descriptors through; unit length.
    pub adapter: Option<PathBuf>,
    /// Images with more pixels than this are refused (checked from the header).
    pub max_pixels: u64,
    /// Apply the EXIF orientation (face_recognition/Pillow do not).
    pub exif_rotate: bool,
    /// Model directory; `None` means `$FACELIKE_MODELS` or the per-user cache.
    pub models_dir: Option<PathBuf>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            detector: DetectorKind::Hog,
            upsample: DEFAULT_UPSAMPLE,
            landmarks: 5,
            jitters: 1,
            normalize: false,
            adapter: None,
            max_pixels: DEFAULT_MAX_PIXELS,
            exif_rotate: true,
            models_dir: None,
        }
    }
}

impl EncodeOptions {
    /// face_recognition's own pipeline, exactly: HOG, upsample 1, 5-point alignment, raw
    /// descriptors, EXIF orientation ignored.
    pub fn face_recognition() -> Self {
        EncodeOptions {
            exif_rotate: false,
            ..Default::default()
        }
    }

    /// The image-loading rules these options ask for.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            max_pixels: self.max_pixels,
            exif_orientation: self.exif_rotate,
        }
    }

    /// The descriptor space these options ask for (loads the adapter file, if any).
    pub fn space(&self) -> Result<DescriptorSpace> {
        match &self.adapter {
            Some(p) => DescriptorSpace::load_adapter(p).map_err(|source| ApiError::Adapter {
                path: p.clone(),
                source,
            }),
            None => Ok(DescriptorSpace::dlib(self.normalize)),
        }
    }
}

/// What an [`Engine`] must be able to do beyond describing given rectangles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Load the detector (false when every face comes from a given rectangle or chip).
    pub detector: bool,
    /// Keep each face's aligned chip (for thumbnails).
    pub chips: bool,
}

impl Needs {
    /// Detection, no chips kept.
    pub const DETECT: Needs = Needs {
        detector: true,
        chips: false,
    };
    /// Detection, chips kept for thumbnails.
    pub const DETECT_WITH_CHIPS: Needs = Needs {
        detector: true,
        chips: true,
    };
}

/// Loaded models plus the options: photo → faces with descriptors in one space. `Sync`: one
/// engine serves every thread.
pub struct Engine {
    encoder: Encoder,
    load: LoadOptions,
    space: DescriptorSpace,
}

impl Engine {
    /// Loads the models the options and needs call for.
    pub fn new(o: &EncodeOptions, needs: Needs) -> Result<Engine> {
        let space = o.space()?;
        let landmarks = LandmarkModel::from_points(o.landmarks).ok_or_else(|| {
            ApiError::Invalid(format!(
                "landmark model must be 5 or 68, got {}",
                o.landmarks
            ))
        })?;
        let encoder = Encoder::new(EncoderOptions {
            models_dir: o.models_dir.clone(),
            detector: o.detector,
            upsample: o.upsample,
            landmarks,
            jitters: o.jitters,
            space: space.clone(),
            load_detector: needs.detector,
            keep_chips: needs.chips,
        })?;
        Ok(Engine {
            encoder,
            load: o.load_options(),
            space,
        })
    }

    /// The engine underneath (detector, landmarks, network).
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The descriptor space of every descriptor this engine returns.
    pub fn space(&self) -> &DescriptorSpace {
        &self.space
    }

    /// The gallery's name for this engine's descriptor space.
    pub fn kind(&self) -> DescriptorKind {
        self.space.kind()
    }

    /// The same-person tolerance: `given`, else the space's default for `metric`; an error
    /// when the space has none (an adapter without a calibrated threshold, say).
    pub fn tolerance(&self, metric: Metric, given: Option<f32>) -> Result<f32> {
        given
            .or_else(|| self.space.default_tolerance(metric))
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "no default tolerance for {} with metric {:?}: pass --tolerance",
                    self.kind().label(),
                    metric
                ))
            })
    }

    /// Reads an image with this engine's loading rules.
    pub fn load_image(&self, path: &Path) -> Result<RgbImage> {
        Ok(facelike_image::load_with(path, &self.load)?)
    }

    /// Detects and describes every face of an image.
    pub fn encode_image(&self, img: &RgbImage) -> Result<Vec<Face>> {
        Ok(self.encoder.encode(img)?)
    }

    /// Describes the faces at given rectangles.
    pub fn encode_rects(&self, img: &RgbImage, rects: &[Rect]) -> Result<Vec<Face>> {
        Ok(self.encoder.encode_rects(img, rects)?)
    }

    /// Reads a photo and detects and describes every face.
    pub fn encode_file(&self, path: &Path) -> Result<(RgbImage, Vec<Face>)> {
        let img = self.load_image(path)?;
        let faces = self.encode_image(&img)?;
        Ok((img, faces))
    }
}

/// A 64×64 thumbnail of an aligned chip, as PNG bytes (for galleries and pictures).
pub fn chip_thumbnail(chip: &RgbImage) -> Vec<u8> {
    let half = facelike::chip::pyramid_down2(chip);
    let src = if half.is_empty() { chip.clone() } else { half };
    facelike_image::resample::resize_bilinear_rgb(&src, 64, 64).to_png_bytes()
}
