//! `facelike index`, `search`, `compare` and `recognize`: flags to the library's options, and
//! its results printed as text, CSV or JSON.

use crate::opts::EncodeArgs;
use crate::progress::Progress;
use anyhow::Result;
use clap::Args;
use facelike_api::compare::{CompareOptions, FaceRef};
use facelike_api::gallery::{Exactness, IndexOptions, SearchJobOptions, Searcher};
use facelike_api::recognize::{RecognizeEvent, RecognizeOptions};
use facelike_api::{AnnKind, Metric, QueryFaceRecord, SearchBy};
use std::io::Write;
use std::path::PathBuf;
#[derive(Args)]
pub struct IndexArgs {
    /// Folder of photos: `DIR/<identity>/*.jpg`, or photos directly in DIR (named by file stem).
    pub dir: PathBuf,
    /// Gallery folder (created if missing), or postgres://USER@HOST:PORT/DB?schema=NAME.
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
    pub encode: EncodeArgs,
}

pub fn index(a: &IndexArgs) -> Result<usize> {
    let mut progress: Option<Progress> = None;
    let mut last = 0;
    let report = facelike_api::gallery::index(
        &a.dir,
        &a.gallery,
        &IndexOptions {
            encode: a.encode.options(),
            batch_size: a.batch_size,
            retry_failed: a.retry_failed,
        },
        |done, total| {
            let bar = progress.get_or_insert_with(|| Progress::new(total as u64, "photos"));
            for _ in last..done {
                bar.inc();
            }
            last = done;
        },
    )?;
    if let Some(p) = &progress {
        p.finish();
    }
    let (summary, g) = (&report.summary, &report.gallery);
    for f in &summary.failed {
        eprintln!("error: {}: {}", f.path.display(), f.reason);
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"summary": summary, "gallery": {"faces": g.faces, "identities": g.identities, "images": g.images, "kind": g.kind}})
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
            facelike_api::GalleryLocation::from(&a.gallery),
            g.faces,
            g.identities,
            g.images,
            g.kind
        );
    }
    Ok(summary.failed.len())
}

#[derive(Args)]
pub struct SearchArgs {
    /// Photos to look up.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    /// Gallery folder, or postgres://USER@HOST:PORT/DB?schema=NAME.
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
    pub encode: EncodeArgs,
}

pub fn search(a: &SearchArgs) -> Result<usize> {
    let searcher = Searcher::open(
        &a.gallery,
        &SearchJobOptions {
            encode: a.encode.options(),
            k: a.k,
            by: a.by,
            metric: a.metric,
            tolerance: a.tolerance,
            exactness: if a.ann {
                Exactness::Ann
            } else if a.exact {
                Exactness::Exact
            } else {
                Exactness::Auto
            },
            ann_kind: a.ann_kind,
        },
    )?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.csv {
        writeln!(out, "{}", csv_header(a.by))?;
    }
    let mut failures = 0;
    for photo in &a.photos {
        let records = match searcher.search_file(photo) {
            Ok(r) => r,
            Err(e) => {
                failures += 1;
                let msg = e.to_string();
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
        if records.is_empty() && !a.json && !a.csv {
            writeln!(out, "{}: no face found", photo.display())?;
        }
        for rec in &records {
            if a.json {
                serde_json::to_writer(&mut out, rec)?;
                writeln!(out)?;
            } else if a.csv {
                for row in csv_rows(rec, a.by) {
                    writeln!(out, "{row}")?;
                }
            } else {
                write_table(&mut out, rec, a.by, searcher.tolerance())?;
            }
        }
    }
    Ok(failures)
}

/// The CSV header matching [`csv_rows`].
fn csv_header(by: SearchBy) -> &'static str {
    match by {
        SearchBy::Face => "image,face,left,top,right,bottom,rank,identity,path,distance,same_person",
        SearchBy::Identity => {
            "image,face,left,top,right,bottom,rank,identity,path,distance,same_person,mean_distance,faces"
        }
    }
}

/// One CSV line per match (no trailing newline), fields quoted where needed.
fn csv_rows(r: &QueryFaceRecord, by: SearchBy) -> Vec<String> {
    r.matches
        .iter()
        .enumerate()
        .map(|(rank, m)| {
            let mut f = vec![
                csv_field(&r.image),
                r.face.to_string(),
                r.rect[0].to_string(),
                r.rect[1].to_string(),
                r.rect[2].to_string(),
                r.rect[3].to_string(),
                (rank + 1).to_string(),
                csv_field(&m.identity),
                csv_field(&m.path),
                format!("{:.6}", m.distance),
                m.same_person.to_string(),
            ];
            if by == SearchBy::Identity {
                f.push(
                    m.mean_distance
                        .map(|d| format!("{d:.6}"))
                        .unwrap_or_default(),
                );
                f.push(m.faces.map(|n| n.to_string()).unwrap_or_default());
            }
            f.join(",")
        })
        .collect()
}

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
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
    pub encode: EncodeArgs,
}

pub fn compare(a: &CompareArgs) -> Result<usize> {
    let report = facelike_api::compare::compare(
        &a.a,
        &a.b,
        &CompareOptions {
            encode: a.encode.options(),
            metric: a.metric,
            tolerance: a.tolerance,
        },
    )?;
    for p in &report.no_face {
        eprintln!("{}: no face found", p.display());
    }
    let mut out = std::io::stdout().lock();
    for r in &report.pairs {
        if a.json {
            serde_json::to_writer(&mut out, r)?;
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
                label(&r.a, report.faces[0]),
                label(&r.b, report.faces[1]),
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
                r.metric,
                r.distance,
                if r.same_person { "<=" } else { ">" },
                r.tolerance
            )?;
        }
    }
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

pub fn recognize(a: &RecognizeArgs) -> Result<usize> {
    let events = facelike_api::recognize::recognize(
        &a.known_people_folder,
        &a.image_to_check,
        &RecognizeOptions {
            tolerance: a.tolerance,
            show_distance: a.show_distance,
            models_dir: None,
        },
    )?;
    let mut out = std::io::stdout().lock();
    let mut failures = 0;
    for e in &events {
        match e {
            RecognizeEvent::Warning { message } => writeln!(out, "{message}")?,
            RecognizeEvent::Error { message } => {
                failures += 1;
                eprintln!("error: {message}");
            }
            RecognizeEvent::Verdict { .. } => {
                if let Some(line) = e.verdict_line(a.show_distance) {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use facelike_api::MatchRecord;

    #[test]
    fn search_records_as_csv() {
        let rec = QueryFaceRecord {
            image: "q.jpg".into(),
            face: 0,
            rect: [1, 2, 3, 4],
            matches: vec![MatchRecord {
                identity: "Ann, Lee".into(),
                path: "/photos/Ann, Lee/1.jpg".into(),
                distance: 0.5657,
                same_person: true,
                mean_distance: Some(0.5657),
                faces: Some(1),
            }],
        };
        assert_eq!(
            csv_rows(&rec, SearchBy::Face),
            ["q.jpg,0,1,2,3,4,1,\"Ann, Lee\",\"/photos/Ann, Lee/1.jpg\",0.565700,true"]
        );
        assert_eq!(
            csv_rows(&rec, SearchBy::Identity),
            ["q.jpg,0,1,2,3,4,1,\"Ann, Lee\",\"/photos/Ann, Lee/1.jpg\",0.565700,true,0.565700,1"]
        );
        assert!(csv_header(SearchBy::Identity).ends_with("mean_distance,faces"));
        assert_eq!(csv_field("say \"hi\""), r#""say ""hi""""#);
    }
}
