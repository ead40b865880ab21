//! Export for TensorFlow's Embedding Projector (projector.tensorflow.org and TensorBoard).
//!
//! Files written into the output folder:
//! * `tensors.tsv` — one row per face, 128 tab-separated numbers, no header;
//! * `metadata.tsv` — a header row `identity<TAB>source`, then one row per face (with more than
//!   one column the projector requires the header);
//! * `sprite.png` — the face thumbnails in one square image, row-major, each
//!   `single_image_dim` pixels (blank where a face has no thumbnail); at most 8192×8192 pixels;
//! * `projector_config.json` — the standalone projector's config (`embeddings[]` with
//!   `tensorName`, `tensorShape`, `tensorPath`, `metadataPath`, `sprite`);
//! * `projector_config.pbtxt` — TensorBoard's `ProjectorConfig` text format.

use crate::map::FaceItem;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The projector's largest sprite side.
pub const MAX_SPRITE: u32 = 8192;

/// Why [`export`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The folder could not be created or a file could not be written.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No faces were given.
    #[error("nothing to export: the gallery has no faces")]
    Empty,
}

/// What was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProjectorExport {
    /// Faces written (rows of `tensors.tsv` and data rows of `metadata.tsv`).
    pub rows: usize,
    /// Values per row (the first face's descriptor length).
    pub dims: usize,
    /// The sprite's layout, when any face had a thumbnail.
    pub sprite: Option<SpriteInfo>,
    /// Every file written, in writing order.
    pub files: Vec<PathBuf>,
}

/// Layout of `sprite.png`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpriteInfo {
    /// Side of one thumbnail in pixels (the projector's `single_image_dim`).
    pub tile: u32,
    /// Thumbnails per row: ⌈√faces⌉.
    pub columns: u32,
    /// Sprite width in pixels (`columns × tile`).
    pub width: u32,
    /// Sprite height in pixels (rows used × `tile`).
    pub height: u32,
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ProjectorError> {
    std::fs::write(path, bytes).map_err(|source| ProjectorError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the projector files for `items` into `dir` (created if needed). `tile` is the
/// preferred thumbnail size in the sprite; it shrinks if the sprite would exceed 8192 pixels.
/// `name` is the tensor's name shown by the projector.
pub fn export(
    items: &[FaceItem],
    dir: &Path,
    tile: u32,
    name: &str,
) -> Result<ProjectorExport, ProjectorError> {
    if items.is_empty() {
        return Err(ProjectorError::Empty);
    }
    std::fs::create_dir_all(dir).map_err(|source| ProjectorError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let dims = items[0].descriptor.len();
    let mut tensors = String::with_capacity(items.len() * dims * 12);
    let mut meta = String::from("identity\tsource\n");
    for it in items {
        for (k, v) in it.descriptor.iter().enumerate() {
            if k > 0 {
                tensors.push('\t');
            }
            let _ = write!(tensors, "{v}");
        }
        tensors.push('\n');
        let _ = writeln!(meta, "{}\t{}", clean(&it.identity), clean(&it.source));
    }
    let mut files = Vec::new();
    for (f, body) in [("tensors.tsv", &tensors), ("metadata.tsv", &meta)] {
        let p = dir.join(f);
        write(&p, body.as_bytes())?;
        files.push(p);
    }
    let with_thumbs = items.iter().any(|i| i.thumbnail.is_some());
    let sprite = if with_thumbs {
        let columns = (items.len() as f64).sqrt().ceil() as u32;
        let tile = tile.min(MAX_SPRITE / columns).max(1);
        let side = columns * tile;
        let rows_used = (items.len() as u32).div_ceil(columns);
        let mut img = facelike_image::RgbImage::new(side as usize, (rows_used * tile) as usize);
        img.as_raw_mut().fill(255);
        for (n, it) in items.iter().enumerate() {
            let Some(png) = &it.thumbnail else { continue };
            let Ok(t) = facelike_image::decode(png, &facelike_image::LoadOptions::default()) else {
                continue;
            };
            let t = facelike_image::resample::resize_bilinear_rgb(&t, tile as usize, tile as usize);
            let (cx, cy) = ((n as u32 % columns) * tile, (n as u32 / columns) * tile);
            for y in 0..tile as usize {
                for x in 0..tile as usize {
                    img.set_pixel(cx as usize + x, cy as usize + y, t.pixel(x, y));
                }
            }
        }
        let p = dir.join("sprite.png");
        img.save_png(&p).map_err(|e| ProjectorError::Io {
            path: p.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        files.push(p);
        Some(SpriteInfo {
            tile,
            columns,
            width: side,
            height: rows_used * tile,
        })
    } else {
        None
    };
    let mut emb = serde_json::json!({
        "tensorName": name,
        "tensorShape": [items.len(), dims],
        "tensorPath": "tensors.tsv",
        "metadataPath": "metadata.tsv",
    });
    let mut pbtxt = format!("embeddings {{\n  tensor_name: {name:?}\n  tensor_path: \"tensors.tsv\"\n  metadata_path: \"metadata.tsv\"\n");
    if let Some(s) = &sprite {
        emb["sprite"] =
            serde_json::json!({"imagePath": "sprite.png", "singleImageDim": [s.tile, s.tile]});
        let _ = write!(pbtxt, "  sprite {{\n    image_path: \"sprite.png\"\n    single_image_dim: {t}\n    single_image_dim: {t}\n  }}\n", t = s.tile);
    }
    pbtxt.push_str("}\n");
    let json = serde_json::to_string_pretty(&serde_json::json!({ "embeddings": [emb] }))
        .expect("serialisable");
    for (f, body) in [
        ("projector_config.json", json),
        ("projector_config.pbtxt", pbtxt),
    ] {
        let p = dir.join(f);
        write(&p, body.as_bytes())?;
        files.push(p);
    }
    Ok(ProjectorExport {
        rows: items.len(),
        dims,
        sprite,
        files,
    })
}
