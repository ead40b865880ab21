//! `facelike pca`, `map` and `projector`: pictures of a gallery's face space.

use crate::opts::EncodeArgs;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use facelike_api::map::MapJobOptions;
use std::path::PathBuf;

#[derive(Args)]
pub struct PcaArgs {
    #[arg(long, short)]
    pub gallery: PathBuf,
    /// Components to print.
    #[arg(long, default_value_t = 10)]
    pub components: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn pca(a: &PcaArgs) -> Result<usize> {
    let p = facelike_api::map::pca(&a.gallery)?;
    let n = a.components.min(p.dim);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"samples": p.samples, "explained_variance": &p.explained_variance[..n], "explained_variance_ratio": &p.explained_variance_ratio[..n]})
        );
    } else {
        println!("PCA of {} faces ({} dimensions)", p.samples, p.dim);
        println!(
            "{:>9} {:>12} {:>10} {:>10}",
            "component", "variance", "ratio", "cumulative"
        );
        let mut cum = 0.0;
        for k in 0..n {
            cum += p.explained_variance_ratio[k];
            println!(
                "{:>9} {:>12.6} {:>9.2}% {:>9.2}%",
                k + 1,
                p.explained_variance[k],
                100.0 * p.explained_variance_ratio[k],
                100.0 * cum
            );
        }
    }
    Ok(0)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MapMethod {
    Pca,
    Tsne,
}

#[derive(Args)]
pub struct MapArgs {
    #[arg(long, short)]
    pub gallery: PathBuf,
    #[arg(long, value_enum, default_value = "tsne")]
    pub method: MapMethod,
    /// Only 2-D maps are drawn.
    #[arg(long, default_value_t = 2)]
    pub dims: usize,
    /// Output: .png, .svg, .html (self-contained, interactive) or .tsv (the 2-D coordinates).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Draw face thumbnails at the points (PNG/SVG; the HTML page always shows them on hover).
    #[arg(long)]
    pub thumbnails: bool,
    /// Highlight the faces of this photo, with lines to their nearest identities.
    #[arg(long)]
    pub query: Vec<PathBuf>,
    /// Nearest identities linked to each query face.
    #[arg(long, default_value_t = 3)]
    pub query_k: usize,
    #[arg(long, default_value_t = 30.0)]
    pub perplexity: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value = "")]
    pub title: String,
    /// Identities with their own colour, legend entry and label (the largest first).
    #[arg(long, default_value_t = 20)]
    pub legend: usize,
    #[arg(long, default_value_t = 1400)]
    pub width: u32,
    #[arg(long, default_value_t = 1000)]
    pub height: u32,
    #[command(flatten)]
    pub encode: EncodeArgs,
}

pub fn map(a: &MapArgs) -> Result<usize> {
    if a.dims != 2 {
        bail!("only 2-D maps are drawn (--dims 2); 3-D coordinates are available through `facelike projector`");
    }
    let progress = crate::progress::Progress::new(750, "t-SNE iterations");
    let mut last = 0;
    let r = facelike_api::map::map(
        &a.gallery,
        &a.out,
        &MapJobOptions {
            method: match a.method {
                MapMethod::Pca => facelike_api::map::MapMethod::Pca,
                MapMethod::Tsne => facelike_api::map::MapMethod::Tsne,
            },
            thumbnails: a.thumbnails,
            queries: a.query.clone(),
            query_k: a.query_k,
            perplexity: a.perplexity,
            seed: a.seed,
            title: a.title.clone(),
            legend: a.legend,
            width: a.width,
            height: a.height,
            encode: a.encode.options(),
        },
        |iteration| {
            for _ in last..iteration {
                progress.inc();
            }
            last = iteration;
        },
    )?;
    progress.finish();
    for q in &r.no_face {
        eprintln!("{}: no face found", q.display());
    }
    eprintln!("{}", r.note);
    println!(
        "{}",
        serde_json::json!({"out": r.out, "faces": r.faces, "queries": r.queries, "kl_divergence": r.kl_divergence, "note": r.note})
    );
    Ok(0)
}

#[derive(Args)]
pub struct ProjectorArgs {
    #[arg(long, short)]
    pub gallery: PathBuf,
    #[arg(long, short)]
    pub out: PathBuf,
    /// Thumbnail size in the sprite (shrunk if the sprite would exceed 8192 px).
    #[arg(long, default_value_t = 48)]
    pub tile: u32,
    /// Tensor name shown by the projector.
    #[arg(long, default_value = "facelike")]
    pub name: String,
}

pub fn projector(a: &ProjectorArgs) -> Result<usize> {
    let r = facelike_api::map::projector(&a.gallery, &a.out, a.tile, &a.name)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(0)
}
