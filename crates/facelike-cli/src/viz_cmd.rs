//! `facelike pca`, `map` and `projector`: pictures of a gallery's face space.

use crate::space::{chip_thumbnail, EncodeOpts, Space};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use facelike::Metric;
use facelike_gallery::{Gallery, SearchBy, SearchIndex, SearchOptions};
use facelike_viz::{FaceItem, FaceMap, MapOptions, Method, Neighbour, QueryItem, TsneOptions};
use std::path::PathBuf;

/// Every face of a gallery as plain map items (with thumbnails when asked).
fn gallery_items(gallery: &Gallery, thumbnails: bool) -> Result<Vec<FaceItem>> {
    let (ids, identity_ids, data) = gallery.load_vectors(0)?;
    let names = gallery.identity_names()?;
    let faces = gallery.faces(&ids)?;
    let mut items = Vec::with_capacity(ids.len());
    for (k, f) in faces.into_iter().enumerate() {
        let identity = names
            .get(identity_ids[k] as usize)
            .cloned()
            .unwrap_or_default();
        let thumbnail = if thumbnails {
            gallery.thumbnail(f.id)?
        } else {
            None
        };
        items.push(FaceItem {
            identity,
            source: f.meta.image,
            descriptor: data[k * 128..(k + 1) * 128].to_vec(),
            thumbnail,
        });
    }
    if items.is_empty() {
        bail!("gallery {} has no faces", gallery.dir().display());
    }
    Ok(items)
}

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
    let g = Gallery::open_read_only(&a.gallery)?;
    let items = gallery_items(&g, false)?;
    let data: Vec<&[f32]> = items.iter().map(|i| i.descriptor.as_slice()).collect();
    let p = facelike_viz::Pca::fit(&data)?;
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
    pub encode: EncodeOpts,
}

pub fn map(a: &MapArgs) -> Result<usize> {
    if a.dims != 2 {
        bail!("only 2-D maps are drawn (--dims 2); 3-D coordinates are available through `facelike projector`");
    }
    let g = Gallery::open_read_only(&a.gallery)?;
    let is_html = a
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let items = gallery_items(&g, a.thumbnails || is_html || !a.query.is_empty())?;
    let mut queries = Vec::new();
    if !a.query.is_empty() {
        let space = Space::new(&a.encode, true)?;
        let index = SearchIndex::load(&g, &facelike_gallery::LoadOptions::default())?;
        let tolerance = space.default_tolerance(Metric::L2).unwrap_or(f32::INFINITY);
        for q in &a.query {
            let (_, faces) = space.encode_file(q)?;
            if faces.is_empty() {
                eprintln!("{}: no face found", q.display());
            }
            for (i, f) in faces.iter().enumerate() {
                let matches = index.search(
                    &f.descriptor,
                    &SearchOptions {
                        k: a.query_k,
                        by: SearchBy::Identity,
                        tolerance,
                        kind: space.kind(),
                        ..Default::default()
                    },
                )?;
                let stem = q
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                queries.push(QueryItem {
                    label: if faces.len() > 1 {
                        format!("{stem} #{i}")
                    } else {
                        stem
                    },
                    descriptor: f.descriptor.0.to_vec(),
                    thumbnail: f.chip.as_ref().map(chip_thumbnail),
                    nearest: matches
                        .iter()
                        .map(|m| Neighbour {
                            identity: m.identity.clone(),
                            distance: m.distance,
                        })
                        .collect(),
                });
            }
        }
    }
    let method = match a.method {
        MapMethod::Pca => Method::Pca,
        MapMethod::Tsne => Method::Tsne(TsneOptions {
            perplexity: a.perplexity,
            seed: a.seed,
            ..Default::default()
        }),
    };
    let progress = crate::progress::Progress::new(750, "t-SNE iterations");
    let mut last = 0;
    let map = FaceMap::build(items, queries, &method, |p| {
        for _ in last..p.iteration {
            progress.inc();
        }
        last = p.iteration;
    })?;
    progress.finish();
    let title = if a.title.is_empty() {
        format!("{} ({} faces)", g.dir().display(), map.points.len())
    } else {
        a.title.clone()
    };
    let opts = MapOptions {
        title,
        width: a.width,
        height: a.height,
        thumbnails: a.thumbnails,
        legend_max: a.legend,
        ..Default::default()
    };
    facelike_viz::write_map(&map, &opts, &a.out)?;
    eprintln!("{}", map.method_note);
    println!(
        "{}",
        serde_json::json!({"out": a.out.display().to_string(), "faces": map.points.len(), "queries": map.queries.len(), "kl_divergence": map.kl_divergence, "note": map.method_note})
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
    let g = Gallery::open_read_only(&a.gallery)?;
    let items = gallery_items(&g, true)?;
    let r = facelike_viz::projector::export(&items, &a.out, a.tile, &a.name)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(0)
}
