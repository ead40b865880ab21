//! `facelike encode`, `detect` and `embed-chip`: one JSON line per image.

use crate::opts::EncodeArgs;
use crate::progress::Progress;
use anyhow::{bail, Result};
use facelike_api::encode::{self, Job};
use facelike_api::{EncodeOptions, Engine, Needs, Rect};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the jobs and prints one JSON line per image in input order; errors also on stderr.
fn print_records(engine: &Engine, jobs: &[(PathBuf, Job)]) -> Result<usize> {
    let progress = Progress::new(jobs.len() as u64, "images");
    let stdout = std::io::stdout();
    let failures = encode::encode(engine, jobs, &|| progress.inc(), |r| -> Result<()> {
        if let Some(e) = &r.error {
            progress.println(&format!("error: {e}"));
        }
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &r)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    })?;
    progress.finish();
    Ok(failures)
}

/// `facelike encode`.
pub fn encode(
    a: &EncodeArgs,
    rect: &[Rect],
    rects: Option<&Path>,
    inputs: &[PathBuf],
) -> Result<usize> {
    let jobs: Vec<(PathBuf, Job)> = if let Some(file) = rects {
        if !inputs.is_empty() {
            bail!("--rects FILE lists the images itself; do not also give image paths");
        }
        encode::read_rects_file(file)?
    } else if !rect.is_empty() {
        if inputs.len() != 1 || inputs[0].is_dir() {
            bail!("--rect needs exactly one image file (use --rects FILE.jsonl for several)");
        }
        vec![(inputs[0].clone(), Job::Rects(rect.to_vec()))]
    } else {
        if inputs.is_empty() {
            bail!("give image files or directories to encode (or --rect/--rects)");
        }
        encode::jobs_for(inputs, Job::Encode)?
    };
    let engine = encode::engine_for(&jobs, &a.options())?;
    print_records(&engine, &jobs)
}

/// `facelike detect`.
pub fn detect(o: &EncodeOptions, inputs: &[PathBuf]) -> Result<usize> {
    let jobs = encode::jobs_for(inputs, Job::Detect)?;
    let engine = Engine::new(o, Needs::DETECT)?;
    print_records(&engine, &jobs)
}

/// `facelike embed-chip`.
pub fn embed_chips(o: &EncodeOptions, chips: &[PathBuf]) -> Result<usize> {
    if chips.is_empty() {
        bail!("no chip images given");
    }
    let engine = Engine::new(
        o,
        Needs {
            detector: false,
            chips: false,
        },
    )?;
    let stdout = std::io::stdout();
    encode::embed_chips(&engine, chips, |r| -> Result<()> {
        if let Some(e) = &r.error {
            eprintln!("error: {e}");
        }
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &r)?;
        out.write_all(b"\n")?;
        Ok(())
    })
}
