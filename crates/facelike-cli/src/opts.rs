//! The command-line options every photo-to-descriptor command shares, parsed once into
//! [`facelike_api::EncodeOptions`].

use clap::Args;
use facelike_api::{DetectorKind, EncodeOptions, DEFAULT_MAX_PIXELS, DEFAULT_UPSAMPLE};
use std::path::PathBuf;

/// The detector and how hard it looks.
#[derive(Args, Clone, Debug)]
pub struct DetectorArgs {
    /// Face detector: hog (face_recognition's default) or cnn.
    #[arg(long, default_value = "hog")]
    pub detector: DetectorKind,
    /// Times the image is upsampled before detection (finds smaller faces; slower).
    #[arg(long, default_value_t = DEFAULT_UPSAMPLE)]
    pub upsample: u32,
}

/// How images are read.
#[derive(Args, Clone, Debug)]
pub struct ImageArgs {
    /// Refuse images with more pixels than this (checked from the header).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Ignore EXIF orientation, as face_recognition/Pillow do.
    #[arg(long)]
    pub no_exif_rotate: bool,
}

/// Options shared by every command that turns photos into descriptors.
#[derive(Args, Clone, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub detector: DetectorArgs,
    /// Landmark model used for alignment: 5 (default, as face_recognition) or 68.
    #[arg(long, default_value_t = 5, value_parser = parse_landmarks)]
    pub landmarks: u32,
    /// Average the descriptors of N jittered copies of each face (dlib's num_jitters).
    #[arg(long, default_value_t = 1)]
    pub jitters: u32,
    /// Unit-length (FaceNet-style) embeddings instead of dlib's raw descriptors.
    #[arg(long)]
    pub normalize: bool,
    /// Map embeddings through a trained adapter (from `facelike train`; unit length).
    #[arg(long, conflicts_with = "normalize")]
    pub adapter: Option<PathBuf>,
    #[command(flatten)]
    pub image: ImageArgs,
}

impl ImageArgs {
    /// These image options on top of `o`.
    pub fn apply(&self, o: EncodeOptions) -> EncodeOptions {
        EncodeOptions {
            max_pixels: self.max_pixels,
            exif_rotate: !self.no_exif_rotate,
            ..o
        }
    }
}

impl DetectorArgs {
    /// These detector options on top of `o`.
    pub fn apply(&self, o: EncodeOptions) -> EncodeOptions {
        EncodeOptions {
            detector: self.detector,
            upsample: self.upsample,
            ..o
        }
    }
}

impl EncodeArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> EncodeOptions {
        let o = EncodeOptions {
            landmarks: self.landmarks,
            jitters: self.jitters,
            normalize: self.normalize,
            adapter: self.adapter.clone(),
            ..Default::default()
        };
        self.image.apply(self.detector.apply(o))
    }
}

/// `--landmarks`: 5 or 68.
pub fn parse_landmarks(s: &str) -> Result<u32, String> {
    match s {
        "5" => Ok(5),
        "68" => Ok(68),
        _ => Err(format!("landmark model must be 5 or 68, got {s:?}")),
    }
}

/// `--rect L,T,R,B`.
pub fn parse_rect(s: &str) -> Result<facelike_api::Rect, String> {
    let v: Vec<i64> = s
        .split(',')
        .map(|t| t.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected L,T,R,B integers, got {s:?}"))?;
    if v.len() != 4 {
        return Err(format!("expected 4 numbers L,T,R,B, got {}", v.len()));
    }
    if v[2] < v[0] || v[3] < v[1] {
        return Err(format!("rect {s:?} has right < left or bottom < top"));
    }
    Ok(facelike_api::Rect::new(v[0], v[1], v[2], v[3]))
}
