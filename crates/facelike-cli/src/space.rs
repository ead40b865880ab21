//! The descriptor space a command works in: raw dlib descriptors, unit-length ones, or the
//! output of a trained adapter (`--adapter FILE`), and the encoder that produces them.

use anyhow::{Context, Result};
use clap::Args;
use facelike::{
    Descriptor, DetectorKind, Encoder, EncoderOptions, Face, LandmarkModel, LoadOptions, RgbImage,
};
use facelike_eval::Adapter;
use facelike_gallery::DescriptorKind;
use std::path::{Path, PathBuf};

/// Options shared by every command that turns photos into descriptors.
#[derive(Args, Clone, Debug)]
pub struct EncodeOpts {
    /// Face detector: hog (face_recognition's default) or cnn.
    #[arg(long, default_value = "hog")]
    pub detector: DetectorKind,
    /// Times the image is upsampled before detection (finds smaller faces; slower).
    #[arg(long, default_value_t = 1)]
    pub upsample: u32,
    /// Landmark model used for alignment: 5 (default) or 68.
    #[arg(long, default_value_t = 5, value_parser = crate::parse_landmarks)]
    pub landmarks: u32,
    /// Average the descriptors of N jittered copies of each face (dlib's num_jitters).
    #[arg(long, default_value_t = 1)]
    pub jitters: u32,
    /// Unit-length (FaceNet-style) descriptors instead of dlib's raw ones.
    #[arg(long)]
    pub normalize: bool,
    /// Map descriptors through a trained adapter (from `facelike train`); implies unit length.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Refuse images with more pixels than this (checked from the header).
    #[arg(long, default_value_t = 100_000_000)]
    pub max_pixels: u64,
    /// Ignore EXIF orientation, as face_recognition/Pillow do.
    #[arg(long)]
    pub no_exif_rotate: bool,
}

impl EncodeOpts {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            max_pixels: self.max_pixels,
            exif_orientation: !self.no_exif_rotate,
        }
    }
}

/// An encoder plus the optional adapter: photo → faces with descriptors in one space.
pub struct Space {
    pub encoder: Encoder,
    pub adapter: Option<(Adapter, String)>,
    pub load: LoadOptions,
    pub normalize: bool,
}

impl Space {
    pub fn new(o: &EncodeOpts, keep_chips: bool) -> Result<Space> {
        let adapter = match &o.adapter {
            Some(p) => {
                let a =
                    Adapter::load(p).with_context(|| format!("loading adapter {}", p.display()))?;
                let id = adapter_id(p)?;
                Some((a, id))
            }
            None => None,
        };
        let encoder = Encoder::new(EncoderOptions {
            detector: o.detector,
            upsample: o.upsample,
            landmarks: LandmarkModel::from_points(o.landmarks).expect("clap allows only 5 or 68"),
            jitters: o.jitters,
            normalize: false,
            keep_chips,
            ..Default::default()
        })?;
        Ok(Space {
            encoder,
            adapter,
            load: o.load_options(),
            normalize: o.normalize,
        })
    }

    /// The gallery's name for this space.
    pub fn kind(&self) -> DescriptorKind {
        match &self.adapter {
            Some((_, id)) => DescriptorKind {
                adapter: Some(id.clone()),
                ..DescriptorKind::dlib_normalized()
            },
            None if self.normalize => DescriptorKind::dlib_normalized(),
            None => DescriptorKind::dlib_raw(),
        }
    }

    /// Maps a raw dlib descriptor into this space.
    pub fn map(&self, d: &Descriptor) -> Descriptor {
        match &self.adapter {
            Some((a, _)) => a.apply(d),
            None if self.normalize => d.normalized(),
            None => *d,
        }
    }

    /// The same-person tolerance on L2 in this space: the adapter's calibrated threshold, or
    /// face_recognition's 0.6 (raw), or its unit-length equivalent.
    pub fn default_tolerance(&self, metric: facelike::Metric) -> Option<f32> {
        match &self.adapter {
            Some((a, _)) if metric == facelike::Metric::L2 => a.threshold.map(|t| t as f32),
            Some(_) => None,
            None => facelike_gallery::default_tolerance(&self.kind(), metric),
        }
    }

    pub fn load_image(&self, path: &Path) -> Result<RgbImage> {
        Ok(facelike_image::load_with(path, &self.load)?)
    }

    /// Detects and describes every face of a photo, descriptors mapped into this space.
    pub fn encode_image(&self, img: &RgbImage) -> Result<Vec<Face>> {
        let mut faces = self.encoder.encode(img)?;
        for f in &mut faces {
            f.descriptor = self.map(&f.descriptor);
        }
        Ok(faces)
    }

    pub fn encode_file(&self, path: &Path) -> Result<(RgbImage, Vec<Face>)> {
        let img = self.load_image(path)?;
        let faces = self.encode_image(&img)?;
        Ok((img, faces))
    }
}

/// A short content id for an adapter file: the first 16 hex digits of its sha256.
fn adapter_id(p: &Path) -> Result<String> {
    let h = facelike::models::sha256_file(p)
        .with_context(|| format!("reading adapter {}", p.display()))?;
    Ok(format!("sha256:{}", &h[..16]))
}

/// A 64×64 thumbnail of an aligned chip, as PNG bytes (for galleries and pictures).
pub fn chip_thumbnail(chip: &RgbImage) -> Vec<u8> {
    let half = facelike::chip::pyramid_down2(chip);
    let src = if half.is_empty() { chip.clone() } else { half };
    facelike_image::resample::resize_bilinear_rgb(&src, 64, 64).to_png_bytes()
}
