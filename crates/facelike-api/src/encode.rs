//! The encode, detect and embed-chip jobs: photos (or chips) to one record per image, in
//! input order, bad files reported in their record while the batch carries on.

use crate::engine::{EncodeOptions, Engine, Needs};
use crate::error::{ApiError, Result};
use facelike::{Face, Rect, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One image's result: one output line of `facelike encode` / `detect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image's path as given.
    pub image: String,
    /// Width in pixels (absent when the image failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Height in pixels (absent when the image failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<usize>,
    /// The faces found (absent when the image failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<FaceRecord>>,
    /// Why the image failed, naming the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One face of an [`ImageRecord`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceRecord {
    /// dlib's inclusive `[left, top, right, bottom]`.
    pub rect: [i64; 4],
    /// face_recognition's `[top, right, bottom, left]`, clipped to the image.
    pub location: [i64; 4],
    /// HOG detection score, when HOG found the face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// CNN detection confidence, when the CNN found the face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Landmarks as integer `[x, y]` pixels (absent for detection only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Vec<[i64; 2]>>,
    /// The 128-D embedding (absent for detection only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl FaceRecord {
    /// The record of a described face.
    pub fn from_face(f: &Face, img: &RgbImage) -> Self {
        FaceRecord {
            rect: f.rect.to_array(),
            location: f.location(img),
            score: f.detection.score(),
            confidence: f.detection.confidence(),
            landmarks: Some(f.landmarks.iter().map(|p| [p.x, p.y]).collect()),
            embedding: Some(f.descriptor.0.to_vec()),
        }
    }
}

/// What to do with one image.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    /// Detect and describe every face.
    Encode,
    /// Describe the faces at these rectangles.
    Rects(Vec<Rect>),
    /// Detect only.
    Detect,
}

/// Every image of `inputs` (files, and image files found under folders) with the same job.
pub fn jobs_for(inputs: &[PathBuf], job: Job) -> Result<Vec<(PathBuf, Job)>> {
    Ok(crate::collect_images(inputs)?
        .into_iter()
        .map(|p| (p, job.clone()))
        .collect())
}

/// The engine a batch of jobs needs: the detector only when some job detects.
pub fn engine_for(jobs: &[(PathBuf, Job)], o: &EncodeOptions) -> Result<Engine> {
    let detecting = jobs.iter().any(|(_, j)| !matches!(j, Job::Rects(_)));
    Engine::new(
        o,
        Needs {
            detector: detecting,
            chips: false,
        },
    )
}

fn process(engine: &Engine, path: &Path, job: &Job) -> ImageRecord {
    let name = path.display().to_string();
    let result = (|| -> Result<(RgbImage, Vec<FaceRecord>)> {
        let img = engine.load_image(path)?;
        let faces = match job {
            Job::Encode => engine
                .encode_image(&img)?
                .iter()
                .map(|f| FaceRecord::from_face(f, &img))
                .collect(),
            Job::Rects(r) => engine
                .encode_rects(&img, r)?
                .iter()
                .map(|f| FaceRecord::from_face(f, &img))
                .collect(),
            Job::Detect => engine
                .encoder()
                .detect(&img)?
                .into_iter()
                .map(|d| FaceRecord {
                    rect: d.rect.to_array(),
                    location: d.rect.to_css_trimmed(img.width(), img.height()),
                    score: d.by.score(),
                    confidence: d.by.confidence(),
                    landmarks: None,
                    embedding: None,
                })
                .collect(),
        };
        Ok((img, faces))
    })();
    match result {
        Ok((img, faces)) => ImageRecord {
            image: name,
            width: Some(img.width()),
            height: Some(img.height()),
            faces: Some(faces),
            error: None,
        },
        Err(e) => ImageRecord {
            error: Some(name_in_message(&name, &e)),
            image: name,
            width: None,
            height: None,
            faces: None,
        },
    }
}

/// The error text, prefixed with the file name unless it already names it.
pub fn name_in_message(name: &str, e: &dyn std::fmt::Display) -> String {
    let msg = e.to_string();
    if msg.contains(name) {
        msg
    } else {
        format!("{name}: {msg}")
    }
}

/// Runs `jobs` in parallel and hands each image's record to `each`, in input order (images
/// run in parallel within chunks of a few per core). `done` is called once per finished image,
/// from any thread (for a progress bar). Returns the number of images that failed; `each`
/// may stop the run by returning an error (a closed output, say).
pub fn encode<E>(
    engine: &Engine,
    jobs: &[(PathBuf, Job)],
    done: &(dyn Fn() + Sync),
    mut each: impl FnMut(ImageRecord) -> Result<(), E>,
) -> Result<usize, E> {
    let mut failures = 0;
    let chunk = (rayon::current_num_threads() * 4).max(4);
    for part in jobs.chunks(chunk) {
        let records: Vec<ImageRecord> = part
            .par_iter()
            .map(|(p, job)| {
                let r = process(engine, p, job);
                done();
                r
            })
            .collect();
        for r in records {
            if r.error.is_some() {
                failures += 1;
            }
            each(r)?;
        }
    }
    Ok(failures)
}

/// `--rects FILE.jsonl`: lines of `{"image": PATH, "rects": [[L,T,R,B], ...]}`.
pub fn read_rects_file(path: &Path) -> Result<Vec<(PathBuf, Job)>> {
    #[derive(serde::Deserialize)]
    struct Line {
        image: PathBuf,
        rects: Vec<[i64; 4]>,
    }
    let text = std::fs::read_to_string(path).map_err(|source| ApiError::Io {
        what: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).map_err(|e| {
            ApiError::Invalid(format!(
                "{}:{}: expected {{\"image\": PATH, \"rects\": [[L,T,R,B], ...]}}: {e}",
                path.display(),
                i + 1
            ))
        })?;
        let rects = l
            .rects
            .iter()
            .map(|r| Rect::new(r[0], r[1], r[2], r[3]))
            .collect();
        jobs.push((l.image, Job::Rects(rects)));
    }
    Ok(jobs)
}

/// One chip's result: one output line of `facelike embed-chip`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChipRecord {
    /// The chip's path as given.
    pub image: String,
    /// The 128-D embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// Why the chip failed, naming the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Aligned 150×150 chips to embeddings, records in input order to `each`; returns the
/// number of chips that failed.
pub fn embed_chips<E>(
    engine: &Engine,
    chips: &[PathBuf],
    mut each: impl FnMut(ChipRecord) -> Result<(), E>,
) -> Result<usize, E> {
    let mut failures = 0;
    for part in chips.chunks(32) {
        let records: Vec<ChipRecord> = part
            .par_iter()
            .map(|p| {
                let image = p.display().to_string();
                let described = engine.load_image(p).and_then(|img| {
                    engine
                        .encoder()
                        .describe_chip(&img)
                        .map_err(|e| ApiError::Encode(format!("{image}: {e}")))
                });
                match described {
                    Ok(d) => ChipRecord {
                        image,
                        embedding: Some(d.0.to_vec()),
                        error: None,
                    },
                    Err(e) => ChipRecord {
                        error: Some(name_in_message(&image, &e)),
                        image,
                        embedding: None,
                    },
                }
            })
            .collect();
        for r in records {
            if r.error.is_some() {
                failures += 1;
            }
            each(r)?;
        }
    }
    Ok(failures)
}
