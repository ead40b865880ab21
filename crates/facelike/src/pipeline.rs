//! The whole job, photo to descriptors: detect → landmarks → chip → ResNet → (normalise).
//!
//! ```no_run
//! let encoder = facelike::Encoder::new(facelike::EncoderOptions::default())?;
//! let image = facelike::load_image("obama.jpg")?;
//! for face in encoder.encode(&image)? {
//!     println!("{:?} {:?}", face.rect, &face.descriptor.0[..4]);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Models are loaded once by [`Encoder::new`] (only those the options need) and shared by
//! every call; an `Encoder` is `Sync`, so one encoder serves many threads.

use crate::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
use crate::hog::HogDetector;
use crate::jitter::Jitterer;
use crate::mmod::CnnDetector;
use crate::models::{Model, ModelError};
use crate::resnet::DescriptorNet;
use crate::shape_predictor::ShapePredictor;
use facelike_image::RgbImage;
use facelike_types::{Descriptor, DescriptorSpace, DetectedBy, Point, Rect};
use std::path::{Path, PathBuf};

/// Which face detector finds the faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// dlib's HOG frontal face detector (face_recognition's default).
    #[default]
    Hog,
    /// dlib's MMOD CNN detector: slower, finds more poses and small faces.
    Cnn,
}

impl std::str::FromStr for DetectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hog" => Ok(DetectorKind::Hog),
            "cnn" => Ok(DetectorKind::Cnn),
            _ => Err(format!("unknown detector {s:?}: use hog or cnn")),
        }
    }
}

/// How faces are aligned before the ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LandmarkModel {
    /// 5-point model (face_recognition's default for encodings; CC0).
    #[default]
    Five,
    /// 68-point model (face_recognition's `model="large"`; trained on iBUG 300-W, not for
    /// commercial use).
    SixtyEight,
}

impl LandmarkModel {
    /// The shape predictor file this choice loads.
    pub fn model(self) -> Model {
        match self {
            LandmarkModel::Five => Model::ShapePredictor5,
            LandmarkModel::SixtyEight => Model::ShapePredictor68,
        }
    }
    /// The model with `n` landmarks (5 or 68); `None` for any other count.
    pub fn from_points(n: u32) -> Option<Self> {
        match n {
            5 => Some(LandmarkModel::Five),
            68 => Some(LandmarkModel::SixtyEight),
            _ => None,
        }
    }
}

/// Settings of an [`Encoder`]; the defaults are face_recognition's.
#[derive(Clone, Debug)]
pub struct EncoderOptions {
    /// Model directory; `None` means [`crate::models::models_dir`].
    pub models_dir: Option<PathBuf>,
    /// Which detector [`Encoder::detect`] and [`Encoder::encode`] use (default HOG).
    pub detector: DetectorKind,
    /// How many times the image is doubled before detection (face_recognition: 1).
    pub upsample: u32,
    /// Which shape predictor aligns the faces (default 5 points).
    pub landmarks: LandmarkModel,
    /// Number of jittered chips averaged per face; `<= 1` means none (dlib's rule).
    pub jitters: u32,
    /// The space descriptors are delivered in: dlib's raw ones (face_recognition's), unit
    /// length, or through a trained adapter.
    pub space: DescriptorSpace,
    /// Load the detector even if only `encode_rects` will be used (false saves load time).
    pub load_detector: bool,
    /// Keep each face's aligned 150×150 chip in [`Face::chip`] (for thumbnails).
    pub keep_chips: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            models_dir: None,
            detector: DetectorKind::Hog,
            upsample: 1,
            landmarks: LandmarkModel::Five,
            jitters: 1,
            space: DescriptorSpace::Raw,
            load_detector: true,
            keep_chips: false,
        }
    }
}

/// One face found in a photo.
#[derive(Clone, Debug)]
pub struct Face {
    /// dlib's inclusive `[left, top, right, bottom]`; may extend past the image.
    pub rect: Rect,
    /// What found the face, with its score or confidence.
    pub detection: DetectedBy,
    /// The landmark model's points, integer pixels.
    pub landmarks: Vec<Point>,
    /// The descriptor, in [`EncoderOptions::space`].
    pub descriptor: Descriptor,
    /// The aligned chip, when [`EncoderOptions::keep_chips`] is set.
    pub chip: Option<RgbImage>,
}

impl Face {
    /// face_recognition's `(top, right, bottom, left)`, clipped as it clips.
    pub fn location(&self, image: &RgbImage) -> [i64; 4] {
        self.rect.to_css_trimmed(image.width(), image.height())
    }
}

/// A face found by a detector, before landmarks and descriptor.
#[derive(Clone, Debug)]
pub struct Detection {
    /// dlib's inclusive `[left, top, right, bottom]`; may extend past the image.
    pub rect: Rect,
    /// What found it, with its score or confidence.
    pub by: DetectedBy,
}

/// Why an [`Encoder`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Detection was asked for, but the encoder was built without a detector.
    #[error("the {0:?} detector was not loaded (EncoderOptions::load_detector is false)")]
    NoDetector(DetectorKind),
    /// A rectangle given to [`Encoder::encode_rects`] lies wholly outside the image.
    #[error("face rectangle {rect} (left, top, right, bottom) does not overlap the {width}x{height} image")]
    RectOutside {
        /// The rectangle given (dlib's inclusive rectangle).
        rect: Rect,
        /// The image width in pixels.
        width: usize,
        /// The image height in pixels.
        height: usize,
    },
    /// A rectangle given to [`Encoder::encode_rects`] has no pixels.
    #[error("face rectangle {0} is empty (right < left or bottom < top)")]
    EmptyRect(Rect),
}

enum Detector {
    Hog(HogDetector),
    Cnn(CnnDetector),
}

/// Loaded models plus settings: photo → faces with descriptors.
pub struct Encoder {
    options: EncoderOptions,
    detector: Option<Detector>,
    landmarks: ShapePredictor,
    net: DescriptorNet,
}

impl Encoder {
    /// Loads the models the options need.
    pub fn new(options: EncoderOptions) -> Result<Self, ModelError> {
        let dir = options
            .models_dir
            .clone()
            .unwrap_or_else(crate::models::models_dir);
        Self::with_dir(&dir, options)
    }

    fn with_dir(dir: &Path, options: EncoderOptions) -> Result<Self, ModelError> {
        let detector = if options.load_detector {
            Some(match options.detector {
                DetectorKind::Hog => Detector::Hog(HogDetector::load(dir)?),
                DetectorKind::Cnn => Detector::Cnn(CnnDetector::load(dir)?),
            })
        } else {
            None
        };
        let landmarks = ShapePredictor::load(dir, options.landmarks.model())?;
        let net = DescriptorNet::load(dir)?;
        Ok(Encoder {
            options,
            detector,
            landmarks,
            net,
        })
    }

    /// The options the encoder was built with.
    pub fn options(&self) -> &EncoderOptions {
        &self.options
    }

    /// Finds faces only.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, EncodeError> {
        match &self.detector {
            None => Err(EncodeError::NoDetector(self.options.detector)),
            Some(Detector::Hog(d)) => Ok(d
                .detect(image, self.options.upsample, 0.0)
                .into_iter()
                .map(|h| Detection {
                    rect: h.rect,
                    by: DetectedBy::Hog {
                        score: h.score,
                        filter: h.detector,
                    },
                })
                .collect()),
            Some(Detector::Cnn(d)) => Ok(d
                .detect(image, self.options.upsample)
                .into_iter()
                .map(|c| Detection {
                    rect: c.rect,
                    by: DetectedBy::Cnn {
                        confidence: c.confidence,
                    },
                })
                .collect()),
        }
    }

    /// Detects, aligns and describes every face (face_recognition's `face_encodings`).
    pub fn encode(&self, image: &RgbImage) -> Result<Vec<Face>, EncodeError> {
        let detections = self.detect(image)?;
        self.describe(image, detections)
    }

    /// Describes faces at given rectangles (face_recognition's `known_face_locations`).
    pub fn encode_rects(&self, image: &RgbImage, rects: &[Rect]) -> Result<Vec<Face>, EncodeError> {
        for r in rects {
            if r.is_empty() {
                return Err(EncodeError::EmptyRect(*r));
            }
            let img = Rect::new(0, 0, image.width() as i64 - 1, image.height() as i64 - 1);
            if r.intersect(&img).is_empty() {
                return Err(EncodeError::RectOutside {
                    rect: *r,
                    width: image.width(),
                    height: image.height(),
                });
            }
        }
        let detections = rects
            .iter()
            .map(|r| Detection {
                rect: *r,
                by: DetectedBy::Given,
            })
            .collect();
        self.describe(image, detections)
    }

    /// Landmarks, chips and descriptors for detected faces; chips of all faces in the photo go
    /// through the network as one batch.
    pub fn describe(
        &self,
        image: &RgbImage,
        detections: Vec<Detection>,
    ) -> Result<Vec<Face>, EncodeError> {
        let mut shapes = Vec::with_capacity(detections.len());
        let mut chips = Vec::new();
        let mut kept = Vec::new();
        let jitters = self.options.jitters.max(1) as usize;
        for d in &detections {
            let shape = self.landmarks.predict(image, d.rect);
            let details = face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING)
                .expect("5- or 68-point shapes always have chip details");
            let chip = extract_chip(image, &details);
            if self.options.keep_chips {
                kept.push(chip.clone());
            }
            if jitters > 1 {
                // Each face is jittered as dlib does on a freshly loaded model: reproducible, and
                // independent of the order in which faces are processed.
                let mut j = Jitterer::new();
                for _ in 0..jitters {
                    chips.push(j.jitter(&chip));
                }
            } else {
                chips.push(chip);
            }
            shapes.push(shape);
        }
        let descriptors = self
            .net
            .compute_batch(&chips)
            .expect("chips are always CHIP_SIZE");
        let mut faces = Vec::with_capacity(detections.len());
        let mut kept = kept.into_iter();
        for (i, (d, shape)) in detections.into_iter().zip(shapes).enumerate() {
            let descs = &descriptors[i * jitters..(i + 1) * jitters];
            let raw = if jitters > 1 {
                mean_f32(descs)
            } else {
                descs[0]
            };
            faces.push(Face {
                rect: d.rect,
                detection: d.by,
                landmarks: shape.points,
                descriptor: self.options.space.map(&raw),
                chip: kept.next(),
            });
        }
        Ok(faces)
    }

    /// The descriptor of an already aligned 150×150 chip.
    pub fn describe_chip(
        &self,
        chip: &RgbImage,
    ) -> Result<Descriptor, crate::resnet::ChipSizeError> {
        Ok(self.options.space.map(&self.net.compute(chip)?))
    }
}

/// dlib averages jittered descriptors in float32, summing in order then dividing.
fn mean_f32(ds: &[Descriptor]) -> Descriptor {
    let mut acc = [0f32; 128];
    for d in ds {
        for (a, v) in acc.iter_mut().zip(d.0.iter()) {
            *a += v;
        }
    }
    let n = ds.len() as f32;
    Descriptor(acc.map(|v| v / n))
}
