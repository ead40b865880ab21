//! The gallery jobs: index a folder of photos into a gallery, and search it by photo. Both
//! take a [`GalleryLocation`]: a folder (embedded store) or a `postgres://` URL.

use crate::engine::{EncodeOptions, Engine, Needs};
use crate::error::{ApiError, Result};
use crate::location::GalleryLocation;
use facelike::Metric;
use facelike_gallery::{
    index_images, scan_directory, AnnKind, AnnPolicy, Gallery, IndexSummary, NewFace,
    QueryFaceRecord, SearchBy, SearchIndex, SearchMode, SearchOptions,
};
use facelike_pg::{PgGallery, PgHnswParams};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings of [`index`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexOptions {
    /// How the photos become descriptors.
    pub encode: EncodeOptions,
    /// Files per committed transaction.
    pub batch_size: usize,
    /// Encode files that failed before again.
    pub retry_failed: bool,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            encode: EncodeOptions::default(),
            batch_size: facelike_gallery::IndexOptions::default().batch_size,
            retry_failed: false,
        }
    }
}

/// The gallery's counts after a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalleryCounts {
    /// Faces stored.
    pub faces: u64,
    /// Identities.
    pub identities: u32,
    /// Photos recorded.
    pub images: u64,
    /// The descriptor space's label.
    pub kind: String,
}

/// What [`index`] did, and the gallery after it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IndexReport {
    /// The run's counts and failed files.
    pub summary: IndexSummary,
    /// The gallery after the run.
    pub gallery: GalleryCounts,
}

/// Indexes the photos under `dir` (identities from `dir/<identity>/…`; photos directly in
/// `dir` take their file stem) into the gallery at `gallery` (a folder or a `postgres://`
/// URL), created if missing. Incremental, resumable and parallel; `progress(done, total)`
/// after each finished file. Files that fail are listed in the report and do not stop the
/// run. Galleries of [`facelike_gallery::ANN_THRESHOLD`] faces or more get their approximate
/// index now (embedded: the cached IVF; PostgreSQL: the HNSW index).
pub fn index(
    dir: &Path,
    gallery: impl Into<GalleryLocation>,
    o: &IndexOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<IndexReport> {
    let location: GalleryLocation = gallery.into();
    let pg = location.postgres()?;
    let sources = scan_directory(dir, location.dir())?;
    if sources.is_empty() {
        return Err(ApiError::Invalid(format!(
            "no photos found under {}",
            dir.display()
        )));
    }
    let engine = Engine::new(&o.encode, Needs::DETECT_WITH_CHIPS)?;
    let kind = engine.kind();
    let encode = |p: &Path| -> Result<Vec<NewFace>, String> {
        let (_, faces) = engine.encode_file(p).map_err(|e| e.to_string())?;
        Ok(faces
            .into_iter()
            .map(|f| NewFace {
                rect: f.rect,
                landmarks: f.landmarks,
                descriptor: f.descriptor,
                thumbnail_png: f.chip.as_ref().map(crate::chip_thumbnail),
            })
            .collect())
    };
    let gopts = facelike_gallery::IndexOptions {
        batch_size: o.batch_size,
        retry_failed: o.retry_failed,
    };
    if let Some(loc) = pg {
        let g = PgGallery::open_or_create(&loc)?;
        let summary = g.index_images(&sources, &kind, &gopts, encode, |p| {
            progress(p.done, p.total)
        })?;
        let stats = g.stats()?;
        if stats.faces as usize >= facelike_gallery::ANN_THRESHOLD {
            g.ensure_hnsw(PgHnswParams::default())?;
        }
        return Ok(IndexReport {
            summary,
            gallery: GalleryCounts {
                faces: stats.faces,
                identities: stats.identities,
                images: stats.images,
                kind: kind.label(),
            },
        });
    }
    let Some(dir_g) = location.dir() else {
        return Err(ApiError::Invalid(format!(
            "bad gallery location {location}"
        )));
    };
    let mut g = Gallery::open_or_create(dir_g)?;
    let summary = index_images(&mut g, &sources, &kind, &gopts, encode, |p| {
        progress(p.done, p.total)
    })?;
    let stats = g.stats()?;
    if stats.faces as usize >= facelike_gallery::ANN_THRESHOLD {
        // Build the approximate index now rather than at the first search.
        SearchIndex::load(&g, &facelike_gallery::LoadOptions::default())?;
    }
    Ok(IndexReport {
        summary,
        gallery: GalleryCounts {
            faces: stats.faces,
            identities: stats.identities,
            images: stats.images,
            kind: kind.label(),
        },
    })
}

/// Exact or approximate search, or the gallery's choice by size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exactness {
    /// Approximate from [`facelike_gallery::ANN_THRESHOLD`] faces.
    #[default]
    Auto,
    /// Always the approximate index.
    Ann,
    /// Never the approximate index.
    Exact,
}

/// Settings of a [`Searcher`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchJobOptions {
    /// How query photos become descriptors (must be the gallery's space).
    pub encode: EncodeOptions,
    /// Matches per query face.
    pub k: usize,
    /// Rank faces, or identities by their nearest face.
    pub by: SearchBy,
    /// The distance.
    pub metric: Metric,
    /// Same-person tolerance; `None`: the space's default.
    pub tolerance: Option<f32>,
    /// Exact or approximate.
    pub exactness: Exactness,
    /// Which approximate index.
    pub ann_kind: AnnKind,
}

impl Default for SearchJobOptions {
    fn default() -> Self {
        SearchJobOptions {
            encode: EncodeOptions::default(),
            k: 5,
            by: SearchBy::Face,
            metric: Metric::L2,
            tolerance: None,
            exactness: Exactness::Auto,
            ann_kind: AnnKind::Ivf,
        }
    }
}

// One per searcher: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Embedded {
        gallery: Gallery,
        index: SearchIndex,
    },
    Postgres(PgGallery),
}

/// A gallery opened for search with the engine that encodes query photos.
pub struct Searcher {
    engine: Engine,
    backend: Backend,
    options: SearchOptions,
}

impl Searcher {
    /// Opens `gallery` (a folder or a `postgres://` URL) read-only, loads its search index
    /// (embedded) or checks its HNSW index (PostgreSQL; built when `exactness` is
    /// [`Exactness::Ann`] and it is missing), and the models.
    pub fn open(gallery: impl Into<GalleryLocation>, o: &SearchJobOptions) -> Result<Searcher> {
        let location: GalleryLocation = gallery.into();
        let engine = Engine::new(&o.encode, Needs::DETECT)?;
        let tolerance = engine.tolerance(o.metric, o.tolerance)?;
        let mode = match o.exactness {
            Exactness::Ann => SearchMode::Ann,
            Exactness::Exact => SearchMode::Exact,
            Exactness::Auto => SearchMode::Auto,
        };
        let options = SearchOptions {
            k: o.k,
            by: o.by,
            metric: o.metric,
            tolerance,
            mode,
            kind: engine.kind(),
            ..Default::default()
        };
        if let Some(loc) = location.postgres()? {
            let g = PgGallery::open(&loc)?;
            g.check_query_kind(&options.kind)?;
            if o.exactness == Exactness::Ann && o.metric == Metric::L2 {
                g.ensure_hnsw(PgHnswParams::default())?;
            }
            return Ok(Searcher {
                engine,
                backend: Backend::Postgres(g),
                options,
            });
        }
        let Some(dir) = location.dir() else {
            return Err(ApiError::Invalid(format!(
                "bad gallery location {location}"
            )));
        };
        let g = Gallery::open_read_only(dir)?;
        let index = SearchIndex::load(
            &g,
            &facelike_gallery::LoadOptions {
                metric: o.metric,
                ann: match o.exactness {
                    Exactness::Ann => AnnPolicy::Always,
                    Exactness::Exact => AnnPolicy::Never,
                    Exactness::Auto => AnnPolicy::Auto,
                },
                kind: o.ann_kind,
                ..Default::default()
            },
        )?;
        Ok(Searcher {
            engine,
            backend: Backend::Embedded { gallery: g, index },
            options,
        })
    }

    /// The same-person tolerance in use.
    pub fn tolerance(&self) -> f32 {
        self.options.tolerance
    }

    /// Every face of `photo` with its nearest faces or identities (empty: no face found).
    pub fn search_file(&self, photo: &Path) -> Result<Vec<QueryFaceRecord>> {
        let (_, faces) = self.engine.encode_file(photo)?;
        faces
            .iter()
            .enumerate()
            .map(|(i, f)| match &self.backend {
                Backend::Embedded { gallery, index } => {
                    let matches = index.search(&f.descriptor, &self.options)?;
                    Ok(QueryFaceRecord::new(
                        gallery,
                        photo.display().to_string(),
                        i,
                        f.rect,
                        &matches,
                    )?)
                }
                Backend::Postgres(g) => {
                    let matches = g.search(&f.descriptor, &self.options)?;
                    Ok(g.query_record(photo.display().to_string(), i, f.rect, &matches)?)
                }
            })
            .collect()
    }
}
