//! `facelike index`, `search`, `compare` and `recognize`: thin shells over facelike-gallery.

use crate::progress::Progress;
use crate::space::{chip_thumbnail, EncodeOpts, Space};
use anyhow::{bail, Context, Result};
use clap::Args;
use facelike::{Descriptor, Metric};
use facelike_gallery::{
    index_images, scan_directory, AnnKind, AnnPolicy, Gallery, IndexOptions, NewFace,
    QueryFaceRecord, SearchBy, SearchIndex, SearchMode, SearchOptions,
};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct IndexArgs {
    /// Folder of photos: DIR/<identity>/*.jpg, or photos directly in DIR (named by file stem).
    pub dir: PathBuf,
    /// Gallery folder (created if missing).
    #[arg(long, short)]
    pub gallery: PathBuf,
    /// Files per committed transaction.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Encode files that failed before again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub encode: EncodeOpts,
}

pub fn index(a: &IndexArgs) -> Result<usize> {
    let sources = scan_directory(&a.dir, Some(&a.gallery))?;
    if sources.is_empty() {
        bail!("no photos found under {}", a.dir.display());
    }
    let space = Space::new(&a.encode, true)?;
    let kind = space.kind();
    let mut gallery = Gallery::open_or_create(&a.gallery)?;
    let progress = Progress::new(sources.len() as u64, "photos");
    let encode = |p: &Path| -> Result<Vec<NewFace>, String> {
        let (_, faces) = space.encode_file(p).map_err(|e| format!("{e:#}"))?;
        Ok(faces
            .into_iter()
            .map(|f| NewFace {
                rect: f.rect,
                landmarks: f.landmarks,
                descriptor: f.descriptor,
                thumbnail_png: f.chip.as_ref().map(chip_thumbnail),
            })
            .collect())
    };
    let mut last = 0;
    let summary = index_images(
        &mut gallery,
        &sources,
        &kind,
        &IndexOptions {
            batch_size: a.batch_size,
            retry_failed: a.retry_failed,
        },
        encode,
        |p| {
            for _ in last..p.done {
                progress.inc();
            }
            last = p.done;
        },
    )?;
    progress.finish();
    let stats = gallery.stats()?;
    if stats.faces as usize >= facelike_gallery::ANN_THRESHOLD {
        // Build the approximate index now rather than at the first search.
        SearchIndex::load(&gallery, &facelike_gallery::LoadOptions::default())?;
    }
    for f in &summary.failed {
        eprintln!("error: {}: {}", f.path.display(), f.reason);
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"summary": summary, "gallery": {"faces": stats.faces, "identities": stats.identities, "images": stats.images, "kind": kind.label()}})
        );
    } else {
        println!(
            "{} photos: {} indexed ({} re-indexed), {} skipped (unchanged), {} without a face, {} failed; {} faces added.\nGallery {}: {} faces of {} identities from {} photos ({}).",
            summary.images,
            summary.indexed,
            summary.reindexed,
            summary.skipped,
            summary.no_faces,
            summary.failed.len(),
            summary.faces,
            a.gallery.display(),
            stats.faces,
            stats.identities,
            stats.images,
            kind.label()
        );
    }
    Ok(summary.failed.len())
}

#[derive(Args)]
pub struct SearchArgs {
    /// Photos to look up.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    #[arg(long, short)]
    pub gallery: PathBuf,
    /// How many matches per query face.
    #[arg(short, long, default_value_t = 5)]
    pub k: usize,
    /// Rank faces, or identities by their nearest face.
    #[arg(long, default_value = "face")]
    pub by: SearchBy,
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Same-person tolerance (default: 0.6 on raw L2, calibrated equivalents otherwise).
    #[arg(long)]
    pub tolerance: Option<f32>,
    /// Use the approximate index (IVF; HNSW with --ann-kind hnsw) even for small galleries.
    #[arg(long)]
    pub ann: bool,
    /// Never use the approximate index.
    #[arg(long, conflicts_with = "ann")]
    pub exact: bool,
    #[arg(long, default_value = "ivf")]
    pub ann_kind: AnnKind,
    /// One JSON line per query face.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV, one row per match.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub encode: EncodeOpts,
}

pub fn search(a: &SearchArgs) -> Result<usize> {
    let space = Space::new(&a.encode, false)?;
    let gallery = Gallery::open_read_only(&a.gallery)?;
    let tolerance = match a.tolerance.or_else(|| space.default_tolerance(a.metric)) {
        Some(t) => t,
        None => bail!(
            "no default tolerance for {} with metric {:?}: pass --tolerance",
            space.kind().label(),
            a.metric
        ),
    };
    let index = SearchIndex::load(
        &gallery,
        &facelike_gallery::LoadOptions {
            metric: a.metric,
            ann: if a.ann {
                AnnPolicy::Always
            } else if a.exact {
                AnnPolicy::Never
            } else {
                AnnPolicy::Auto
            },
            kind: a.ann_kind,
            ..Default::default()
        },
    )?;
    let opts = SearchOptions {
        k: a.k,
        by: a.by,
        metric: a.metric,
        tolerance,
        mode: if a.ann {
            SearchMode::Ann
        } else if a.exact {
            SearchMode::Exact
        } else {
            SearchMode::Auto
        },
        kind: space.kind(),
        ..Default::default()
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.csv {
        writeln!(out, "{}", QueryFaceRecord::csv_header(a.by))?;
    }
    let mut failures = 0;
    for photo in &a.photos {
        let faces = match space.encode_file(photo) {
            Ok((_, f)) => f,
            Err(e) => {
                failures += 1;
                let msg = format!("{e:#}");
                eprintln!("error: {msg}");
                if a.json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"image": photo.display().to_string(), "error": msg})
                    )?;
                }
                continue;
            }
        };
        if faces.is_empty() && !a.json && !a.csv {
            writeln!(out, "{}: no face found", photo.display())?;
        }
        for (i, f) in faces.iter().enumerate() {
            let matches = index.search(&f.descriptor, &opts)?;
            let rec =
                QueryFaceRecord::new(&gallery, photo.display().to_string(), i, f.rect, &matches)?;
            if a.json {
                serde_json::to_writer(&mut out, &rec)?;
                writeln!(out)?;
            } else if a.csv {
                for row in rec.csv_rows(a.by) {
                    writeln!(out, "{row}")?;
                }
            } else {
                write_table(&mut out, &rec, a.by, tolerance)?;
            }
        }
    }
    Ok(failures)
}

fn write_table(
    out: &mut impl Write,
    r: &QueryFaceRecord,
    by: SearchBy,
    tolerance: f32,
) -> Result<()> {
    writeln!(
        out,
        "{}  face {}  [{}, {}, {}, {}]",
        r.image, r.face, r.rect[0], r.rect[1], r.rect[2], r.rect[3]
    )?;
    let by_id = by == SearchBy::Identity;
    writeln!(
        out,
        "  {:>4}  {:<32} {:>9} {:>6}{}  source",
        "rank",
        "identity",
        "distance",
        "same?",
        if by_id { "  mean dist  faces" } else { "" }
    )?;
    for (k, m) in r.matches.iter().enumerate() {
        let extra = if by_id {
            format!(
                "  {:>9.4} {:>6}",
                m.mean_distance.unwrap_or(f32::NAN),
                m.faces.unwrap_or(0)
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:>4}  {:<32} {:>9.4} {:>6}{}  {}",
            k + 1,
            m.identity,
            m.distance,
            if m.same_person { "yes" } else { "no" },
            extra,
            m.path
        )?;
    }
    if r.matches.is_empty() {
        writeln!(out, "  (the gallery is empty)")?;
    }
    writeln!(out, "  same person: distance <= {tolerance}")?;
    Ok(())
}

#[derive(Args)]
pub struct CompareArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Metric of the same-person verdict.
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Same-person tolerance (default 0.6 on raw L2, as face_recognition).
    #[arg(long)]
    pub tolerance: Option<f32>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub encode: EncodeOpts,
}

#[derive(Serialize)]
struct FaceRef {
    image: String,
    face: usize,
    rect: [i64; 4],
}

#[derive(Serialize)]
struct PairRecord {
    a: FaceRef,
    b: FaceRef,
    l2: f32,
    l1: f32,
    cosine: f32,
    /// L2 between the unit-length descriptors (raw descriptors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    l2_normalized: Option<f32>,
    metric: Metric,
    tolerance: f32,
    distance: f32,
    same_person: bool,
}

pub fn compare(a: &CompareArgs) -> Result<usize> {
    let space = Space::new(&a.encode, false)?;
    let tolerance = match a.tolerance.or_else(|| space.default_tolerance(a.metric)) {
        Some(t) => t,
        None => bail!(
            "no default tolerance for {} with metric {:?}: pass --tolerance",
            space.kind().label(),
            a.metric
        ),
    };
    let (fa, fb) = rayon::join(|| space.encode_file(&a.a), || space.encode_file(&a.b));
    let (_, fa) = fa?;
    let (_, fb) = fb?;
    for (p, f) in [(&a.a, &fa), (&a.b, &fb)] {
        if f.is_empty() {
            eprintln!("{}: no face found", p.display());
        }
    }
    let raw = space.adapter.is_none() && !space.normalize;
    let mut out = std::io::stdout().lock();
    let mut any_same = false;
    for (i, x) in fa.iter().enumerate() {
        for (j, y) in fb.iter().enumerate() {
            let (dx, dy): (&Descriptor, &Descriptor) = (&x.descriptor, &y.descriptor);
            let distance = dx.distance(dy, a.metric);
            let r = PairRecord {
                a: FaceRef {
                    image: a.a.display().to_string(),
                    face: i,
                    rect: x.rect.to_array(),
                },
                b: FaceRef {
                    image: a.b.display().to_string(),
                    face: j,
                    rect: y.rect.to_array(),
                },
                l2: dx.distance(dy, Metric::L2),
                l1: dx.distance(dy, Metric::L1),
                cosine: dx.distance(dy, Metric::Cosine),
                l2_normalized: raw.then(|| dx.normalized().distance(&dy.normalized(), Metric::L2)),
                metric: a.metric,
                tolerance,
                distance,
                same_person: distance <= tolerance,
            };
            any_same |= r.same_person;
            if a.json {
                serde_json::to_writer(&mut out, &r)?;
                writeln!(out)?;
            } else {
                let label = |f: &FaceRef, n: usize| {
                    if n > 1 {
                        format!("{} #{}", f.image, f.face)
                    } else {
                        f.image.clone()
                    }
                };
                writeln!(
                    out,
                    "{} vs {}: L2 {:.4}  L1 {:.4}  cosine {:.4}{}  -> {} ({:?} {:.4} {} {})",
                    label(&r.a, fa.len()),
                    label(&r.b, fb.len()),
                    r.l2,
                    r.l1,
                    r.cosine,
                    r.l2_normalized
                        .map(|v| format!("  unit-length L2 {v:.4}"))
                        .unwrap_or_default(),
                    if r.same_person {
                        "same person"
                    } else {
                        "different people"
                    },
                    a.metric,
                    distance,
                    if r.same_person { "<=" } else { ">" },
                    tolerance
                )?;
            }
        }
    }
    let _ = any_same;
    Ok(0)
}

#[derive(Args)]
pub struct RecognizeArgs {
    /// Folder of known people: one photo per person, named after them.
    pub known_people_folder: PathBuf,
    /// A photo or a folder of photos to check.
    pub image_to_check: PathBuf,
    /// Accepted for compatibility; facelike uses all cores (RAYON_NUM_THREADS limits them).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub cpus: i64,
    #[arg(long, default_value_t = 0.6)]
    pub tolerance: f64,
    /// Print the distance too (true/false, as face_recognition's click option).
    #[arg(long, default_value = "false", value_parser = parse_click_bool, action = clap::ArgAction::Set)]
    pub show_distance: bool,
}

fn parse_click_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not a valid boolean")),
    }
}

/// face_recognition's `image_files_in_folder`: `re.match(r'.*\.(jpg|jpeg|png)', name, re.I)`,
/// so the extension may be followed by anything (`a.jpg.bak` matches). Sorted by name
/// (Python's `os.listdir` order is the file system's, which cannot be reproduced).
fn fr_image_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("cannot read folder {}", folder.display()))?
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
        let (m, e) = s.split_once('e').expect("exponent form");
        let e: i32 = e.parse().expect("exponent");
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

pub fn recognize(a: &RecognizeArgs) -> Result<usize> {
    let space = Space::new(
        &EncodeOpts {
            detector: facelike::DetectorKind::Hog,
            upsample: 1,
            landmarks: 5,
            jitters: 1,
            normalize: false,
            adapter: None,
            max_pixels: 100_000_000,
            no_exif_rotate: true,
        },
        false,
    )?;
    let mut out = std::io::stdout().lock();
    // Known people, in name order; warnings go to stdout as click.echo prints them.
    let known_files = fr_image_files(&a.known_people_folder)?;
    let encoded: Vec<(PathBuf, Result<Vec<facelike::Face>>)> = known_files
        .par_iter()
        .map(|f| (f.clone(), space.encode_file(f).map(|x| x.1)))
        .collect();
    let mut names = Vec::new();
    let mut known: Vec<Descriptor> = Vec::new();
    let mut failures = 0;
    for (file, faces) in encoded {
        let faces = match faces {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e:#}");
                failures += 1;
                continue;
            }
        };
        let f = file.display();
        if faces.len() > 1 {
            writeln!(
                out,
                "WARNING: More than one face found in {f}. Only considering the first face."
            )?;
        }
        if faces.is_empty() {
            writeln!(out, "WARNING: No faces found in {f}. Ignoring file.")?;
        } else {
            names.push(
                file.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
            known.push(faces[0].descriptor);
        }
    }
    let to_check = if a.image_to_check.is_dir() {
        fr_image_files(&a.image_to_check)?
    } else {
        vec![a.image_to_check.clone()]
    };
    let results: Vec<(PathBuf, Result<Vec<Descriptor>>)> = to_check
        .par_iter()
        .map(|p| {
            let r = space.load_image(p).and_then(|img| {
                // face_recognition shrinks photos larger than 1600 px with Pillow's LANCZOS thumbnail.
                let img = match facelike_image::resample::pillow_thumbnail_size(
                    img.width(),
                    img.height(),
                    1600,
                    1600,
                ) {
                    Some((w, h)) if img.width().max(img.height()) > 1600 => {
                        facelike_image::resample::pillow_lanczos_resize(&img, w, h)
                    }
                    _ => img,
                };
                Ok(space
                    .encode_image(&img)?
                    .into_iter()
                    .map(|f| f.descriptor)
                    .collect())
            });
            (p.clone(), r)
        })
        .collect();
    let line = |name: &str, file: &Path, distance: Option<f64>| {
        if a.show_distance {
            format!(
                "{},{},{}",
                file.display(),
                name,
                distance.map(python_float).unwrap_or_else(|| "None".into())
            )
        } else {
            format!("{},{}", file.display(), name)
        }
    };
    for (file, r) in results {
        let unknown = match r {
            Ok(u) => u,
            Err(e) => {
                eprintln!("error: {e:#}");
                failures += 1;
                continue;
            }
        };
        for u in &unknown {
            let d: Vec<f64> = known
                .iter()
                .map(|k| facelike::descriptor::l2_f64(&k.0, &u.0))
                .collect();
            let mut any = false;
            for (name, dist) in names.iter().zip(&d) {
                if *dist <= a.tolerance {
                    any = true;
                    writeln!(out, "{}", line(name, &file, Some(*dist)))?;
                }
            }
            if !any {
                writeln!(out, "{}", line("unknown_person", &file, None))?;
            }
        }
        if unknown.is_empty() {
            writeln!(out, "{}", line("no_persons_found", &file, None))?;
        }
    }
    Ok(failures)
}
