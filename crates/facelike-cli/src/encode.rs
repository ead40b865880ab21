//! `facelike encode`, `facelike detect` and `facelike embed-chip`: one JSON line per image.

use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use facelike::{Encoder, Face, LoadOptions, Rect, RgbImage};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One output line of `encode` / `detect`.
#[derive(Serialize)]
pub struct ImageRecord {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<FaceRecord>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct FaceRecord {
    /// dlib's inclusive `[left, top, right, bottom]`.
    pub rect: [i64; 4],
    /// face_recognition's `[top, right, bottom, left]`, clipped to the image.
    pub location: [i64; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Vec<[i64; 2]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl FaceRecord {
    pub fn from_face(f: &Face, img: &RgbImage) -> Self {
        FaceRecord {
            rect: f.rect.to_array(),
            location: f.location(img),
            score: f.score,
            confidence: f.confidence,
            landmarks: Some(f.landmarks.iter().map(|p| [p.x, p.y]).collect()),
            embedding: Some(f.descriptor.0.to_vec()),
        }
    }
}

/// What to do with each image.
pub enum Job {
    /// Detect and describe every face.
    Encode,
    /// Describe the faces at these rectangles.
    Rects(Vec<Rect>),
    /// Detect only.
    Detect,
}

pub fn load_image(path: &Path, opts: &LoadOptions) -> Result<RgbImage> {
    Ok(facelike_image::load_with(path, opts)?)
}

/// Maps raw descriptors into the output space (an adapter), if any.
pub type DescriptorMap<'a> =
    Option<&'a (dyn Fn(&facelike::Descriptor) -> facelike::Descriptor + Sync)>;

fn process(
    encoder: &Encoder,
    path: &Path,
    job: &Job,
    opts: &LoadOptions,
    map: DescriptorMap<'_>,
) -> ImageRecord {
    let name = path.display().to_string();
    let result = (|| -> Result<(RgbImage, Vec<FaceRecord>)> {
        let img = load_image(path, opts)?;
        let faces = match job {
            Job::Encode => mapped(encoder.encode(&img)?, map)
                .iter()
                .map(|f| FaceRecord::from_face(f, &img))
                .collect(),
            Job::Rects(r) => mapped(encoder.encode_rects(&img, r)?, map)
                .iter()
                .map(|f| FaceRecord::from_face(f, &img))
                .collect(),
            Job::Detect => encoder
                .detect(&img)?
                .into_iter()
                .map(|d| FaceRecord {
                    rect: d.rect.to_array(),
                    location: d.rect.to_css_trimmed(img.width(), img.height()),
                    score: d.score,
                    confidence: d.confidence,
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
fn name_in_message(name: &str, e: &anyhow::Error) -> String {
    let msg = format!("{e:#}");
    if msg.contains(name) {
        msg
    } else {
        format!("{name}: {msg}")
    }
}

/// Runs `jobs` in parallel and prints one JSON line per image, in input order. Bad files are
/// reported on stderr and in their line, and the run carries on. Returns the number of failures.
fn mapped(mut faces: Vec<Face>, map: DescriptorMap<'_>) -> Vec<Face> {
    if let Some(m) = map {
        for f in &mut faces {
            f.descriptor = m(&f.descriptor);
        }
    }
    faces
}

pub fn run_batch(
    encoder: &Encoder,
    jobs: Vec<(PathBuf, Job)>,
    opts: &LoadOptions,
    map: DescriptorMap<'_>,
) -> Result<usize> {
    let progress = Progress::new(jobs.len() as u64, "images");
    let stdout = std::io::stdout();
    let mut failures = 0;
    // Chunks keep the output in input order while images inside a chunk run in parallel.
    let chunk = (rayon::current_num_threads() * 4).max(4);
    for part in jobs.chunks(chunk) {
        let records: Vec<ImageRecord> = part
            .par_iter()
            .map(|(p, job)| {
                let r = process(encoder, p, job, opts, map);
                progress.inc();
                r
            })
            .collect();
        let mut out = stdout.lock();
        for r in records {
            if let Some(e) = &r.error {
                failures += 1;
                progress.println(&format!("error: {e}"));
            }
            serde_json::to_writer(&mut out, &r)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    progress.finish();
    Ok(failures)
}

/// `--rects FILE.jsonl`: lines of `{"image": PATH, "rects": [[L,T,R,B], ...]}`.
pub fn read_rects_file(path: &Path) -> Result<Vec<(PathBuf, Job)>> {
    #[derive(serde::Deserialize)]
    struct Line {
        image: PathBuf,
        rects: Vec<[i64; 4]>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"image\": PATH, \"rects\": [[L,T,R,B], ...]}}",
                path.display(),
                i + 1
            )
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

/// Parses `L,T,R,B`.
pub fn parse_rect(s: &str) -> Result<Rect, String> {
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
    Ok(Rect::new(v[0], v[1], v[2], v[3]))
}

#[derive(Serialize)]
struct ChipRecord {
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `facelike embed-chip CHIP.png...`.
pub fn embed_chips(encoder: &Encoder, chips: &[PathBuf], opts: &LoadOptions) -> Result<usize> {
    if chips.is_empty() {
        bail!("no chip images given");
    }
    let mut failures = 0;
    let stdout = std::io::stdout();
    for part in chips.chunks(32) {
        let records: Vec<ChipRecord> = part
            .par_iter()
            .map(|p| {
                let image = p.display().to_string();
                let described = load_image(p, opts)
                    .and_then(|img| encoder.describe_chip(&img).with_context(|| image.clone()));
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
        let mut out = stdout.lock();
        for r in records {
            if let Some(e) = &r.error {
                failures += 1;
                eprintln!("error: {e}");
            }
            serde_json::to_writer(&mut out, &r)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(failures)
}
