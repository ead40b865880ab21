//! The face-space jobs: PCA, maps (PCA or t-SNE pictures) and Embedding Projector export.

use crate::engine::{EncodeOptions, Engine, Needs};
use crate::error::{ApiError, Result};
use crate::location::{GalleryLocation, OpenGallery};
use facelike::Metric;
use facelike_gallery::{SearchBy, SearchOptions};
use facelike_viz::{FaceItem, FaceMap, MapOptions, Method, Neighbour, QueryItem, TsneOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every face of a gallery as plain map items (with thumbnails when asked).
pub fn gallery_items(gallery: &OpenGallery, thumbnails: bool) -> Result<Vec<FaceItem>> {
    let (ids, identity_ids, data) = gallery.load_vectors()?;
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
        return Err(ApiError::Invalid(format!(
            "gallery {} has no faces",
            gallery.name()
        )));
    }
    Ok(items)
}

/// The principal components of a gallery's descriptors.
pub fn pca(gallery: impl Into<GalleryLocation>) -> Result<facelike_viz::Pca> {
    let g = OpenGallery::open_read_only(&gallery.into())?;
    let items = gallery_items(&g, false)?;
    let data: Vec<&[f32]> = items.iter().map(|i| i.descriptor.as_slice()).collect();
    Ok(facelike_viz::Pca::fit(&data)?)
}

/// How the faces are placed in 2-D.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MapMethod {
    /// The first two principal components.
    Pca,
    /// Barnes-Hut t-SNE.
    #[default]
    Tsne,
}

/// Settings of [`map`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapJobOptions {
    /// PCA or t-SNE.
    pub method: MapMethod,
    /// Draw face thumbnails at the points (PNG/SVG; HTML always shows them on hover).
    pub thumbnails: bool,
    /// Photos whose faces are highlighted, with lines to their nearest identities.
    pub queries: Vec<PathBuf>,
    /// Nearest identities linked to each query face.
    pub query_k: usize,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// t-SNE seed.
    pub seed: u64,
    /// Title; empty: the gallery's folder and face count.
    pub title: String,
    /// Identities with their own colour, legend entry and label (the largest first).
    pub legend: usize,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// How query photos become descriptors.
    pub encode: EncodeOptions,
}

impl Default for MapJobOptions {
    fn default() -> Self {
        MapJobOptions {
            method: MapMethod::Tsne,
            thumbnails: false,
            queries: Vec::new(),
            query_k: 3,
            perplexity: 30.0,
            seed: 42,
            title: String::new(),
            legend: 20,
            width: 1400,
            height: 1000,
            encode: EncodeOptions::default(),
        }
    }
}

/// What [`map`] wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapReport {
    /// The file written.
    pub out: String,
    /// Faces placed.
    pub faces: usize,
    /// Query faces placed.
    pub queries: usize,
    /// t-SNE's final KL divergence.
    pub kl_divergence: Option<f64>,
    /// How the map was made.
    pub note: String,
    /// Query photos in which no face was found.
    #[serde(skip)]
    pub no_face: Vec<PathBuf>,
}

/// The 2-D map of a gallery (with query faces placed on it), written to `out` as PNG, SVG,
/// HTML or TSV by its extension. `progress(iteration)` during t-SNE.
pub fn map(
    gallery: impl Into<GalleryLocation>,
    out: &Path,
    o: &MapJobOptions,
    mut progress: impl FnMut(usize),
) -> Result<MapReport> {
    let g = OpenGallery::open_read_only(&gallery.into())?;
    let is_html = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let items = gallery_items(&g, o.thumbnails || is_html || !o.queries.is_empty())?;
    let mut queries = Vec::new();
    let mut no_face = Vec::new();
    if !o.queries.is_empty() {
        let engine = Engine::new(&o.encode, Needs::DETECT_WITH_CHIPS)?;
        let index = g.search_index()?;
        let tolerance = engine
            .space()
            .default_tolerance(Metric::L2)
            .unwrap_or(f32::INFINITY);
        for q in &o.queries {
            let (_, faces) = engine.encode_file(q)?;
            if faces.is_empty() {
                no_face.push(q.clone());
            }
            for (i, f) in faces.iter().enumerate() {
                let matches = index.search(
                    &f.descriptor,
                    &SearchOptions {
                        k: o.query_k,
                        by: SearchBy::Identity,
                        tolerance,
                        kind: engine.kind(),
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
                    thumbnail: f.chip.as_ref().map(crate::chip_thumbnail),
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
    let method = match o.method {
        MapMethod::Pca => Method::Pca,
        MapMethod::Tsne => Method::Tsne(TsneOptions {
            perplexity: o.perplexity,
            seed: o.seed,
            ..Default::default()
        }),
    };
    let map = FaceMap::build(items, queries, &method, |p| progress(p.iteration))?;
    let title = if o.title.is_empty() {
        format!("{} ({} faces)", g.name(), map.points.len())
    } else {
        o.title.clone()
    };
    let opts = MapOptions {
        title,
        width: o.width,
        height: o.height,
        thumbnails: o.thumbnails,
        legend_max: o.legend,
        ..Default::default()
    };
    facelike_viz::write_map(&map, &opts, out)?;
    Ok(MapReport {
        out: out.display().to_string(),
        faces: map.points.len(),
        queries: map.queries.len(),
        kl_divergence: map.kl_divergence,
        note: map.method_note.clone(),
        no_face,
    })
}

/// Writes the files of TensorFlow's Embedding Projector for a gallery into `out`.
pub fn projector(
    gallery: impl Into<GalleryLocation>,
    out: &Path,
    tile: u32,
    name: &str,
) -> Result<facelike_viz::projector::ProjectorExport> {
    let g = OpenGallery::open_read_only(&gallery.into())?;
    let items = gallery_items(&g, true)?;
    Ok(facelike_viz::projector::export(&items, out, tile, name)?)
}
