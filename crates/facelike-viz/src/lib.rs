//! # facelike-viz: see the face space
//!
//! * [`pca`] — exact PCA (streamed f64 covariance, nalgebra's symmetric eigensolver), with
//!   scikit-learn's conventions;
//! * [`tsne`] — Barnes-Hut t-SNE with openTSNE's defaults, seeded, with the final KL divergence;
//! * [`map`] — faces placed in 2-D ([`map::FaceMap`]) with their identities, sources, thumbnails
//!   and query faces;
//! * [`picture`] — PNG and SVG maps (points coloured by identity, legend, labels, optional
//!   thumbnails and query highlights);
//! * [`html`] — one self-contained interactive HTML page (pan/zoom, hover for the face);
//! * [`projector`] — files for TensorFlow's Embedding Projector and TensorBoard.
//!
//! Inputs are plain data (identity, source, descriptor, optional thumbnail PNG), so this crate
//! does not depend on the gallery or the encoder.

pub mod html;
pub mod map;
pub mod pca;
pub mod picture;
pub mod projector;
pub mod tsne;

pub use map::{FaceItem, FaceMap, MapOptions, Method, Neighbour, QueryItem};
pub use pca::Pca;
pub use tsne::{TsneOptions, TsneResult};

use std::path::Path;

/// Writes the map to `path`, choosing PNG, SVG, HTML or TSV (the 2-D coordinates, with
/// identity and source) by its extension.
pub fn write_map(
    map: &FaceMap,
    opts: &MapOptions,
    path: &Path,
) -> Result<(), picture::PictureError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => picture::write_png(&picture::scene(map, opts), path),
        Some("svg") => picture::write_svg(&picture::scene(map, opts), path),
        Some("tsv") => {
            let mut t = String::from("x\ty\tidentity\tsource\n");
            for p in &map.points {
                t.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    p.xy[0], p.xy[1], p.identity, p.source
                ));
            }
            std::fs::write(path, t).map_err(|e| picture::PictureError::Write {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
        Some("html") | Some("htm") => {
            std::fs::write(path, html::html_string(map, opts)).map_err(|e| {
                picture::PictureError::Write {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            })
        }
        _ => Err(picture::PictureError::Format {
            path: path.to_path_buf(),
        }),
    }
}
