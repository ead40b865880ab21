//! The recognize job: face_recognition's command-line tool (`face_recognition KNOWN UNKNOWN`),
//! with its rules: which files it reads, its 1600-pixel shrink, its warnings, its verdicts and
//! the way it prints distances.

use crate::engine::{EncodeOptions, Engine, Needs};
use crate::error::{ApiError, Result};
use facelike::Descriptor;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// face_recognition's default tolerance.
pub const DEFAULT_TOLERANCE: f64 = 0.6;

/// Settings of [`recognize`]: face_recognition's options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecognizeOptions {
    /// Same-person tolerance on raw L2.
    pub tolerance: f64,
    /// Print the distance after the name.
    pub show_distance: bool,
    /// Model directory; `None`: the default one.
    pub models_dir: Option<PathBuf>,
}

impl Default for RecognizeOptions {
    fn default() -> Self {
        RecognizeOptions {
            tolerance: DEFAULT_TOLERANCE,
            show_distance: false,
            models_dir: None,
        }
    }
}

/// One thing face_recognition's tool says, in its order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecognizeEvent {
    /// A warning about a known person's photo (face_recognition prints it on stdout).
    Warning {
        /// The warning's text.
        message: String,
    },
    /// A file that could not be read (on stderr; face_recognition would stop with a trace).
    Error {
        /// The error's text, naming the file.
        message: String,
    },
    /// One verdict line: a known name, `unknown_person` or `no_persons_found`.
    Verdict {
        /// The checked photo.
        file: PathBuf,
        /// The name, `unknown_person` or `no_persons_found`.
        name: String,
        /// The distance to that known person (None for the two special names).
        distance: Option<f64>,
    },
}

impl RecognizeEvent {
    /// The line face_recognition prints for a verdict: `path,name[,distance]`.
    pub fn verdict_line(&self, show_distance: bool) -> Option<String> {
        let RecognizeEvent::Verdict {
            file,
            name,
            distance,
        } = self
        else {
            return None;
        };
        Some(if show_distance {
            format!(
                "{},{},{}",
                file.display(),
                name,
                distance.map(python_float).unwrap_or_else(|| "None".into())
            )
        } else {
            format!("{},{}", file.display(), name)
        })
    }
}

/// face_recognition's `image_files_in_folder`: `re.match(r'.*\.(jpg|jpeg|png)', name, re.I)`,
/// so the extension may be followed by anything (`a.jpg.bak` matches). Sorted by name
/// (Python's `os.listdir` order is the file system's, which cannot be reproduced).
pub fn image_files_in_folder(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|source| ApiError::Io {
            what: "cannot read folder",
            path: folder.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_ascii_lowercase();
            [".jpg", ".jpeg", ".png"].iter().any(|ext| n.contains(ext))
        })
        .map(|e| folder.join(e.file_name()))
        .collect();
    v.sort();
    Ok(v)
}

/// Python's `str(float)`: the shortest representation that reads back, with ".0" on integers.
pub fn python_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Python switches to exponent form: 1e-05, 1.5e+16.
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// face_recognition shrinks photos larger than 1600 px with Pillow's LANCZOS thumbnail.
fn shrink_as_face_recognition(img: facelike::RgbImage) -> facelike::RgbImage {
    match facelike_image::resample::pillow_thumbnail_size(img.width(), img.height(), 1600, 1600) {
        Some((w, h)) if img.width().max(img.height()) > 1600 => {
            facelike_image::resample::pillow_lanczos_resize(&img, w, h)
        }
        _ => img,
    }
}

/// Who is in `image_to_check` (a photo or a folder), among the known people of
/// `known_people_folder` (one photo each, named after them): what face_recognition's tool
/// prints, in its order.
pub fn recognize(
    known_people_folder: &Path,
    image_to_check: &Path,
    o: &RecognizeOptions,
) -> Result<Vec<RecognizeEvent>> {
    let engine = Engine::new(
        &EncodeOptions {
            models_dir: o.models_dir.clone(),
            ..EncodeOptions::face_recognition()
        },
        Needs::DETECT,
    )?;
    let mut events = Vec::new();
    let known_files = image_files_in_folder(known_people_folder)?;
    let encoded: Vec<(PathBuf, Result<Vec<facelike::Face>>)> = known_files
        .par_iter()
        .map(|f| (f.clone(), engine.encode_file(f).map(|x| x.1)))
        .collect();
    let mut names = Vec::new();
    let mut known: Vec<Descriptor> = Vec::new();
    for (file, faces) in encoded {
        let faces = match faces {
            Ok(f) => f,
            Err(e) => {
                events.push(RecognizeEvent::Error {
                    message: e.to_string(),
                });
                continue;
            }
        };
        let f = file.display();
        if faces.len() > 1 {
            events.push(RecognizeEvent::Warning {
                message: format!(
                    "WARNING: More than one face found in {f}. Only considering the first face."
                ),
            });
        }
        if faces.is_empty() {
            events.push(RecognizeEvent::Warning {
                message: format!("WARNING: No faces found in {f}. Ignoring file."),
            });
        } else {
            names.push(
                file.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
            known.push(faces[0].descriptor);
        }
    }
    let to_check = if image_to_check.is_dir() {
        image_files_in_folder(image_to_check)?
    } else {
        vec![image_to_check.to_path_buf()]
    };
    let results: Vec<(PathBuf, Result<Vec<Descriptor>>)> = to_check
        .par_iter()
        .map(|p| {
            let r = engine.load_image(p).and_then(|img| {
                Ok(engine
                    .encode_image(&shrink_as_face_recognition(img))?
                    .into_iter()
                    .map(|f| f.descriptor)
                    .collect())
            });
            (p.clone(), r)
        })
        .collect();
    let verdict = |file: &Path, name: &str, distance| RecognizeEvent::Verdict {
        file: file.to_path_buf(),
        name: name.to_owned(),
        distance,
    };
    for (file, r) in results {
        let unknown = match r {
            Ok(u) => u,
            Err(e) => {
                events.push(RecognizeEvent::Error {
                    message: e.to_string(),
                });
                continue;
            }
        };
        for u in &unknown {
            let mut any = false;
            for (name, k) in names.iter().zip(&known) {
                let dist = facelike::descriptor::l2_f64(&k.0, &u.0);
                if dist <= o.tolerance {
                    any = true;
                    events.push(verdict(&file, name, Some(dist)));
                }
            }
            if !any {
                events.push(verdict(&file, "unknown_person", None));
            }
        }
        if unknown.is_empty() {
            events.push(verdict(&file, "no_persons_found", None));
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_matches_python_str() {
        for (v, s) in [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (1e-5, "1e-05"),
            (0.00012, "0.00012"),
            (1.5e16, "1.5e+16"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(python_float(v), s);
        }
    }

    #[test]
    fn verdict_lines_as_face_recognition_prints_them() {
        let v = RecognizeEvent::Verdict {
            file: "a/b.jpg".into(),
            name: "obama".into(),
            distance: Some(0.25),
        };
        assert_eq!(v.verdict_line(false).unwrap(), "a/b.jpg,obama");
        assert_eq!(v.verdict_line(true).unwrap(), "a/b.jpg,obama,0.25");
        let n = RecognizeEvent::Verdict {
            file: "c.png".into(),
            name: "unknown_person".into(),
            distance: None,
        };
        assert_eq!(n.verdict_line(true).unwrap(), "c.png,unknown_person,None");
    }
}
