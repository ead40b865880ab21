//! A 2-D map of faces: gallery faces and query faces placed by PCA or t-SNE.

use crate::pca::Pca;
use crate::tsne::{tsne, TsneOptions, TsneProgress};
use std::collections::HashMap;

/// One gallery face to place on the map.
#[derive(Clone, Debug)]
pub struct FaceItem {
    /// The person's name; faces with equal names share a colour.
    pub identity: String,
    /// Where the face came from (the gallery's image path), shown on hover and exported.
    pub source: String,
    /// The face's descriptor (128 values for dlib), as stored: not normalised here.
    pub descriptor: Vec<f32>,
    /// A small face thumbnail as PNG bytes (from the gallery), if any.
    pub thumbnail: Option<Vec<u8>>,
}

/// A query face: placed with the gallery and linked to its nearest identities.
#[derive(Clone, Debug)]
pub struct QueryItem {
    /// Text written next to the query on the map (e.g. the photo's file stem).
    pub label: String,
    /// The query face's descriptor, comparable with the gallery's.
    pub descriptor: Vec<f32>,
    /// A small face thumbnail as PNG bytes, if any.
    pub thumbnail: Option<Vec<u8>>,
    /// Nearest identities and their distances, as the search found them.
    pub nearest: Vec<Neighbour>,
}

/// One of a query's nearest identities.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Neighbour {
    /// The identity's name, as in [`FaceItem::identity`].
    pub identity: String,
    /// The search's distance from the query to it (in the descriptor space, not the map's).
    pub distance: f32,
}

/// A placed face.
#[derive(Clone, Debug)]
pub struct MapPoint {
    /// From [`FaceItem::identity`].
    pub identity: String,
    /// From [`FaceItem::source`].
    pub source: String,
    /// Map coordinates (PCA or t-SNE units; y grows upwards, not pixels).
    pub xy: [f64; 2],
    /// From [`FaceItem::thumbnail`] (PNG bytes).
    pub thumbnail: Option<Vec<u8>>,
}

/// A placed query face.
#[derive(Clone, Debug)]
pub struct MapQuery {
    /// From [`QueryItem::label`].
    pub label: String,
    /// Map coordinates, in the same space as the gallery's [`MapPoint::xy`].
    pub xy: [f64; 2],
    /// From [`QueryItem::thumbnail`] (PNG bytes).
    pub thumbnail: Option<Vec<u8>>,
    /// From [`QueryItem::nearest`]; drawn as lines to those identities' centres.
    pub nearest: Vec<Neighbour>,
}

/// How to reduce 128-D to 2-D.
#[derive(Clone, Debug)]
pub enum Method {
    /// The first two principal components of the gallery; queries are projected onto them.
    Pca,
    /// t-SNE of gallery and queries together, with these settings.
    Tsne(TsneOptions),
}

/// Placed faces, ready to draw.
#[derive(Clone, Debug)]
pub struct FaceMap {
    /// The gallery faces, in the order given to [`FaceMap::build`].
    pub points: Vec<MapPoint>,
    /// The query faces, in the order given.
    pub queries: Vec<MapQuery>,
    /// e.g. "PCA (explained variance 9.1% + 6.2%)" or "t-SNE (perplexity 30, KL 1.23)".
    pub method_note: String,
    /// Final KL divergence when made by t-SNE.
    pub kl_divergence: Option<f64>,
}

/// Drawing options shared by PNG, SVG and HTML.
#[derive(Clone, Debug)]
pub struct MapOptions {
    /// Heading drawn at the top (none when empty).
    pub title: String,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Draw face thumbnails at the points.
    pub thumbnails: bool,
    /// Side of a drawn thumbnail in pixels (thumbnails are scaled to a square).
    pub thumbnail_size: u32,
    /// How many identities (the largest) get their own colour and legend entry.
    pub legend_max: usize,
    /// Write the names of the coloured identities at their centres.
    pub label_identities: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            title: String::new(),
            width: 1400,
            height: 1000,
            thumbnails: false,
            thumbnail_size: 28,
            legend_max: 20,
            label_identities: true,
        }
    }
}

/// Why [`FaceMap::build`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// PCA could not be fitted (too few faces, descriptors of different lengths).
    #[error(transparent)]
    Pca(#[from] crate::pca::PcaError),
    /// t-SNE could not run (too few faces, a bad perplexity).
    #[error(transparent)]
    Tsne(#[from] crate::tsne::TsneError),
}

impl FaceMap {
    /// Places gallery faces and queries together with `method`.
    pub fn build(
        items: Vec<FaceItem>,
        queries: Vec<QueryItem>,
        method: &Method,
        progress: impl FnMut(TsneProgress),
    ) -> Result<FaceMap, MapError> {
        let data: Vec<&[f32]> = items
            .iter()
            .map(|i| i.descriptor.as_slice())
            .chain(queries.iter().map(|q| q.descriptor.as_slice()))
            .collect();
        let (xy, note, kl) = match method {
            Method::Pca => {
                // The axes come from the gallery alone; queries are projected onto them.
                let gallery: Vec<&[f32]> = items.iter().map(|i| i.descriptor.as_slice()).collect();
                let pca = Pca::fit(&gallery)?;
                let xy: Vec<[f64; 2]> = data
                    .iter()
                    .map(|r| {
                        let v = pca.project(r, 2);
                        [v[0], v.get(1).copied().unwrap_or(0.0)]
                    })
                    .collect();
                let r = &pca.explained_variance_ratio;
                (
                    xy,
                    format!(
                        "PCA: components 1 and 2 explain {:.1}% and {:.1}% of the variance",
                        100.0 * r[0],
                        100.0 * r.get(1).unwrap_or(&0.0)
                    ),
                    None,
                )
            }
            Method::Tsne(o) => {
                let res = tsne(&data, o, progress)?;
                (
                    res.embedding,
                    format!(
                        "t-SNE: perplexity {}, final KL divergence {:.3}",
                        o.perplexity, res.kl_divergence
                    ),
                    Some(res.kl_divergence),
                )
            }
        };
        let n = items.len();
        let points = items
            .into_iter()
            .zip(&xy)
            .map(|(i, p)| MapPoint {
                identity: i.identity,
                source: i.source,
                xy: *p,
                thumbnail: i.thumbnail,
            })
            .collect();
        let queries = queries
            .into_iter()
            .zip(&xy[n..])
            .map(|(q, p)| MapQuery {
                label: q.label,
                xy: *p,
                thumbnail: q.thumbnail,
                nearest: q.nearest,
            })
            .collect();
        Ok(FaceMap {
            points,
            queries,
            method_note: note,
            kl_divergence: kl,
        })
    }

    /// (min x, min y, max x, max y) over points and queries.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        let mut b = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in self
            .points
            .iter()
            .map(|p| p.xy)
            .chain(self.queries.iter().map(|q| q.xy))
        {
            b = (b.0.min(p[0]), b.1.min(p[1]), b.2.max(p[0]), b.3.max(p[1]));
        }
        if b.0 > b.2 {
            return (0.0, 0.0, 1.0, 1.0);
        }
        b
    }

    /// The `max` identities with most faces, ranked 0.. (ties broken by name).
    pub fn identity_ranks(&self, max: usize) -> HashMap<String, usize> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for p in &self.points {
            *counts.entry(&p.identity).or_default() += 1;
        }
        let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(max)
            .enumerate()
            .map(|(r, (name, _))| (name.to_string(), r))
            .collect()
    }

    /// The coordinate-wise median of an identity's points.
    pub fn identity_centre(&self, identity: &str) -> Option<[f64; 2]> {
        let mut xs: Vec<f64> = Vec::new();
        let mut ys: Vec<f64> = Vec::new();
        for p in self.points.iter().filter(|p| p.identity == identity) {
            xs.push(p.xy[0]);
            ys.push(p.xy[1]);
        }
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        ys.sort_by(f64::total_cmp);
        Some([xs[xs.len() / 2], ys[ys.len() / 2]])
    }
}

impl MapPoint {
    /// The thumbnail scaled to `size`×`size`: (w, h, RGB bytes, PNG bytes of the scaled image).
    pub fn decoded_thumbnail(&self, size: u32) -> Option<(u32, u32, Vec<u8>, Vec<u8>)> {
        let bytes = self.thumbnail.as_ref()?;
        let img = facelike_image::decode(bytes, &facelike_image::LoadOptions::default()).ok()?;
        let s = size as usize;
        let scaled = if img.width() == s && img.height() == s {
            img
        } else {
            facelike_image::resample::resize_bilinear_rgb(&img, s, s)
        };
        let png = scaled.to_png_bytes();
        Some((size, size, scaled.into_raw(), png))
    }
}
