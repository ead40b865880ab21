//! Look-alike search over a gallery: k nearest faces, or identities ranked by their nearest
//! face, exact or through the persisted HNSW graph.

use crate::error::{GalleryError, Result};
use crate::hnsw::{Hnsw, HnswParams};
use crate::ivf::{Ivf, IvfParams};
use crate::matrix::{FaceMatrix, IdentityHit, RowHit};
use crate::store::Gallery;
use facelike_types::descriptor::DESCRIPTOR_LEN;
use facelike_types::DescriptorKind;
use facelike_types::{Descriptor, Metric, Rect};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Galleries with at least this many faces are searched through an approximate index by
/// default ([`SearchMode::Auto`]). Below it the exact scan takes under ~3 ms on two cores
/// (see the crate benchmark), and an index would cost more than it saves.
pub const ANN_THRESHOLD: usize = 100_000;

/// Default HNSW search breadth. HNSW recall@10 on dlib-like data falls with gallery size
/// (0.9995 on LFW's 7k faces at ef 96, 0.95 on 1M synthetic faces at ef 512); see the crate
/// documentation.
pub const DEFAULT_EF: usize = 128;

/// The approximate index kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnKind {
    /// Inverted file with 8-bit codes ([`crate::ivf`]): the default, measured faster at
    /// equal recall on a million dlib-like faces, and built 8× faster.
    #[default]
    Ivf,
    /// Hierarchical navigable small-world graph ([`crate::hnsw`]).
    Hnsw,
}

impl std::str::FromStr for AnnKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ivf" => Ok(AnnKind::Ivf),
            "hnsw" => Ok(AnnKind::Hnsw),
            _ => Err(format!("unknown index kind {s:?}: use ivf or hnsw")),
        }
    }
}

/// A loaded approximate index.
#[derive(Debug)]
pub enum Ann {
    /// An inverted file ([`AnnKind::Ivf`]).
    Ivf(Ivf),
    /// An HNSW graph ([`AnnKind::Hnsw`]).
    Hnsw(Hnsw),
}

impl Ann {
    /// The metric the index was built for; searches with another metric scan exactly.
    pub fn metric(&self) -> Metric {
        match self {
            Ann::Ivf(i) => i.metric(),
            Ann::Hnsw(h) => h.metric(),
        }
    }
    /// Bytes the index holds.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Ann::Ivf(i) => i.memory_bytes(),
            Ann::Hnsw(h) => h.memory_bytes(),
        }
    }
    /// Faces indexed.
    pub fn len(&self) -> usize {
        match self {
            Ann::Ivf(i) => i.len(),
            Ann::Hnsw(h) => h.len(),
        }
    }
    /// Whether no face is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Which kind of index this is.
    pub fn kind(&self) -> AnnKind {
        match self {
            Ann::Ivf(_) => AnnKind::Ivf,
            Ann::Hnsw(_) => AnnKind::Hnsw,
        }
    }
}

/// IVF cells scanned per query when [`SearchOptions::nprobe`] is 0: `9·√cells`, which gave
/// recall@10 ≥ 0.99 on 100k and 1M synthetic dlib-like faces (22% and 13% of the cells).
pub fn auto_nprobe(cells: usize) -> usize {
    ((9.0 * (cells as f64).sqrt()).ceil() as usize).clamp(1, cells.max(1))
}

/// face_recognition's same-person tolerance (raw dlib descriptors, L2).
pub const DEFAULT_TOLERANCE: f32 = facelike_types::DEFAULT_TOLERANCE;

/// What a search ranks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchBy {
    /// The k nearest faces.
    #[default]
    Face,
    /// The k nearest identities, each ranked by its nearest face.
    Identity,
}

impl std::str::FromStr for SearchBy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "face" | "faces" => Ok(SearchBy::Face),
            "identity" | "identities" | "person" => Ok(SearchBy::Identity),
            _ => Err(format!("unknown search mode {s:?}: use face or identity")),
        }
    }
}

/// Exact scan or approximate graph search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// The approximate index when one was loaded for the search's metric (galleries of
    /// [`ANN_THRESHOLD`] faces or more, or loaded with [`AnnPolicy::Always`]); exact otherwise.
    #[default]
    Auto,
    /// Scan every face (exact k nearest, whatever the gallery size).
    Exact,
    /// The approximate index (IVF or HNSW); an error if none was loaded for the search's
    /// metric.
    Ann,
}

/// One search's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Results wanted: faces, or identities with [`SearchBy::Identity`].
    pub k: usize,
    /// Rank faces or identities.
    pub by: SearchBy,
    /// Distance measure; [`Metric::L2`] on raw dlib descriptors is face_recognition's.
    pub metric: Metric,
    /// Same-person verdict: `distance <= tolerance`.
    pub tolerance: f32,
    /// Exact scan or approximate index.
    pub mode: SearchMode,
    /// HNSW breadth (ignored by exact search and IVF).
    /// HNSW breadth (ignored by exact search and IVF).
    pub ef: usize,
    /// IVF cells to scan; 0 for [`auto_nprobe`] (ignored by exact search and HNSW).
    pub nprobe: usize,
    /// The space the query descriptors are in; must equal the gallery's.
    pub kind: DescriptorKind,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            k: 5,
            by: SearchBy::Face,
            metric: Metric::L2,
            tolerance: DEFAULT_TOLERANCE,
            mode: SearchMode::Auto,
            ef: DEFAULT_EF,
            nprobe: 0,
            kind: DescriptorKind::dlib_raw(),
        }
    }
}

/// Whether to have an approximate index ready when loading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnnPolicy {
    /// For galleries of [`ANN_THRESHOLD`] faces or more.
    #[default]
    Auto,
    /// Whatever the gallery size.
    Always,
    /// No index: every search scans exactly.
    Never,
}

/// How to load a [`SearchIndex`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// The metric the index is built for (searches with another metric scan exactly).
    pub metric: Metric,
    /// Whether to have an approximate index.
    pub ann: AnnPolicy,
    /// Which approximate index to load or build.
    pub kind: AnnKind,
    /// HNSW build parameters (used when `kind` is [`AnnKind::Hnsw`]; a cached graph of
    /// another `m` is rebuilt).
    pub params: HnswParams,
    /// IVF build parameters (used when `kind` is [`AnnKind::Ivf`]).
    pub ivf: IvfParams,
    /// Write a built or extended index back to the gallery's cache folder.
    pub persist: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            metric: Metric::L2,
            ann: AnnPolicy::Auto,
            kind: AnnKind::Ivf,
            params: HnswParams::default(),
            ivf: IvfParams::default(),
            persist: true,
        }
    }
}

/// What happened to the approximate index while loading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnState {
    /// Not wanted (small gallery or [`AnnPolicy::Never`]).
    None,
    /// Read from the cache, up to date.
    Loaded,
    /// Read from the cache and brought up to date by inserting the faces added since.
    Extended {
        /// Faces inserted.
        added: usize,
    },
    /// Built from scratch (no usable cache: `reason`).
    Built {
        /// Why the cache could not be used (none, stale, unreadable, outgrown).
        reason: String,
    },
}

/// Timings and cache outcomes of [`SearchIndex::load`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// Faces loaded.
    pub faces: usize,
    /// Identity names loaded.
    pub identities: usize,
    /// Time spent reading the descriptors, in seconds.
    pub load_seconds: f64,
    /// What happened to the approximate index.
    pub ann: AnnState,
    /// Time spent loading, extending or building the approximate index, in seconds.
    pub ann_seconds: f64,
    /// A cache that could not be written (search still works; the next load rebuilds).
    pub cache_warning: Option<String>,
}

/// One result of a search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Match {
    /// Store id of the matched face (for identity searches: the identity's nearest face).
    pub face_id: u64,
    /// The matched face's identity.
    pub identity: String,
    /// Query-to-face distance under [`SearchOptions::metric`], computed in f64 and rounded
    /// to f32 (for L2, exactly face_recognition's `face_distance`).
    pub distance: f32,
    /// `distance <= tolerance`.
    pub same_person: bool,
    /// Identity searches: mean distance over all the identity's faces.
    pub mean_distance: Option<f32>,
    /// Identity searches: how many faces the identity has.
    pub identity_faces: Option<u32>,
}

/// A loaded gallery, ready to search: the descriptor matrix and, for big galleries, the graph.
pub struct SearchIndex {
    /// The gallery folder (empty for [`SearchIndex::from_parts`]), for error messages.
    source: PathBuf,
    matrix: FaceMatrix,
    names: Vec<String>,
    kind: Option<DescriptorKind>,
    ann: Option<Ann>,
    report: LoadReport,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("faces", &self.matrix.len())
            .field("kind", &self.kind)
            .field("ann", &self.ann)
            .finish()
    }
}

fn ann_cache_path(g: &Gallery, kind: AnnKind, metric: Metric) -> PathBuf {
    let m = match metric {
        Metric::L2 => "l2",
        Metric::L1 => "l1",
        Metric::Cosine => "cosine",
    };
    let k = match kind {
        AnnKind::Ivf => "ivf",
        AnnKind::Hnsw => "hnsw",
    };
    g.cache_dir().join(format!("{k}-{m}.bin"))
}

impl SearchIndex {
    /// Loads every descriptor of `gallery`, and the approximate index when `options.ann` asks
    /// for one: read from the cache if it matches the store, extended if the store only grew
    /// since, rebuilt otherwise (and written back when `options.persist`).
    pub fn load(gallery: &Gallery, options: &LoadOptions) -> Result<SearchIndex> {
        let t0 = Instant::now();
        let (ids, idents, data) = gallery.load_vectors(0)?;
        let names = gallery.identity_names()?;
        let matrix = FaceMatrix::new(ids, idents, data);
        if matrix.identity_count() > names.len() {
            return Err(GalleryError::Corrupt {
                path: gallery.store_path().to_path_buf(),
                detail: "a face refers to an unknown identity".into(),
            });
        }
        let mut report = LoadReport {
            faces: matrix.len(),
            identities: names.len(),
            load_seconds: t0.elapsed().as_secs_f64(),
            ann: AnnState::None,
            ann_seconds: 0.0,
            cache_warning: None,
        };
        let want = match options.ann {
            AnnPolicy::Always => true,
            AnnPolicy::Never => false,
            AnnPolicy::Auto => matrix.len() >= ANN_THRESHOLD,
        };
        let mut ann = None;
        if want {
            let t1 = Instant::now();
            let (h, state, warning) = load_or_build_ann(gallery, &matrix, options);
            report.ann = state;
            report.cache_warning = warning;
            report.ann_seconds = t1.elapsed().as_secs_f64();
            ann = Some(h);
        }
        Ok(SearchIndex {
            source: gallery.dir().to_path_buf(),
            matrix,
            names,
            kind: gallery.kind().cloned(),
            ann,
            report,
        })
    }

    /// An index over descriptors held in memory (no store): benchmarks, tests, and callers
    /// with their own storage. `identities[i]` indexes `names`.
    pub fn from_parts(
        ids: Vec<u64>,
        identities: Vec<u32>,
        data: Vec<f32>,
        names: Vec<String>,
        kind: Option<DescriptorKind>,
    ) -> Result<SearchIndex> {
        if data.len() != ids.len() * DESCRIPTOR_LEN || identities.len() != ids.len() {
            return Err(GalleryError::Invalid(
                "ids, identities and data lengths disagree".into(),
            ));
        }
        if identities.iter().any(|&i| i as usize >= names.len()) {
            return Err(GalleryError::Invalid("identity id without a name".into()));
        }
        let matrix = FaceMatrix::new(ids, identities, data);
        Ok(SearchIndex {
            source: PathBuf::new(),
            report: LoadReport {
                faces: matrix.len(),
                identities: names.len(),
                load_seconds: 0.0,
                ann: AnnState::None,
                ann_seconds: 0.0,
                cache_warning: None,
            },
            matrix,
            names,
            kind,
            ann: None,
        })
    }

    /// Builds (or replaces) an in-memory HNSW graph; nothing is persisted.
    pub fn build_hnsw(&mut self, metric: Metric, params: HnswParams) {
        self.ann = Some(Ann::Hnsw(Hnsw::build(&self.matrix, metric, params)));
    }

    /// Builds (or replaces) an in-memory IVF index; nothing is persisted.
    pub fn build_ivf(&mut self, metric: Metric, params: IvfParams) {
        self.ann = Some(Ann::Ivf(Ivf::build(&self.matrix, metric, params)));
    }

    /// What loading did.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The descriptor matrix searched exactly.
    pub fn matrix(&self) -> &FaceMatrix {
        &self.matrix
    }

    /// The approximate index, when one was loaded or built.
    pub fn ann(&self) -> Option<&Ann> {
        self.ann.as_ref()
    }

    /// Identity names by id.
    pub fn identity_names(&self) -> &[String] {
        &self.names
    }

    /// Number of faces.
    pub fn len(&self) -> usize {
        self.matrix.len()
    }

    /// Whether the index holds no face.
    pub fn is_empty(&self) -> bool {
        self.matrix.is_empty()
    }

    /// Bytes held by the matrix and graph.
    pub fn memory_bytes(&self) -> usize {
        self.matrix.memory_bytes() + self.ann.as_ref().map_or(0, |h| h.memory_bytes())
    }

    fn check_kind(&self, kind: &DescriptorKind) -> Result<()> {
        match &self.kind {
            Some(k) if k != kind => Err(GalleryError::KindMismatch {
                path: self.source.clone(),
                stored: k.label(),
                given: kind.label(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether a search with these options goes through the approximate index; an error for
    /// [`SearchMode::Ann`] without a fitting one.
    pub fn uses_ann(&self, o: &SearchOptions) -> Result<bool> {
        let graph_fits = self.ann.as_ref().is_some_and(|h| h.metric() == o.metric);
        match o.mode {
            SearchMode::Exact => Ok(false),
            SearchMode::Auto => Ok(graph_fits),
            SearchMode::Ann if graph_fits => Ok(true),
            SearchMode::Ann => Err(GalleryError::Invalid(format!(
                "no approximate index for metric {:?}: load with AnnPolicy::Always and that metric",
                o.metric
            ))),
        }
    }

    /// The k nearest faces (or identities) of one query descriptor, nearest first.
    pub fn search(&self, query: &Descriptor, o: &SearchOptions) -> Result<Vec<Match>> {
        self.check_kind(&o.kind)?;
        let q = &query.0;
        let ann = self.uses_ann(o)?;
        Ok(match o.by {
            SearchBy::Face => {
                let hits = if ann {
                    self.ann_faces(q, o.k, o)
                } else {
                    self.matrix.nearest(q, o.k, o.metric)
                };
                hits.into_iter().map(|h| self.face_match(h, o)).collect()
            }
            SearchBy::Identity => {
                let hits = if ann {
                    self.ann_identities(q, o.k, o)
                } else {
                    self.matrix.nearest_identities(q, o.k, o.metric)
                };
                hits.into_iter()
                    .map(|h| self.identity_match(h, o))
                    .collect()
            }
        })
    }

    /// face_recognition-style recognition: the nearest identity if it is within tolerance.
    pub fn recognize(&self, query: &Descriptor, o: &SearchOptions) -> Result<Option<Match>> {
        let o = SearchOptions {
            k: 1,
            by: SearchBy::Identity,
            ..o.clone()
        };
        Ok(self
            .search(query, &o)?
            .into_iter()
            .next()
            .filter(|m| m.same_person))
    }

    /// Candidate rows from the approximate index, `want` or more, best first.
    fn ann_candidates(
        &self,
        q: &[f32; DESCRIPTOR_LEN],
        want: usize,
        o: &SearchOptions,
    ) -> Vec<u32> {
        match self.ann.as_ref().expect("checked by uses_ann") {
            Ann::Hnsw(h) => h
                .search(&self.matrix, q, want, o.ef.max(want))
                .into_iter()
                .map(|c| c.1)
                .collect(),
            Ann::Ivf(i) => {
                let np = if o.nprobe == 0 {
                    auto_nprobe(i.lists())
                } else {
                    o.nprobe
                };
                i.candidates(q, want, np)
            }
        }
    }

    fn ann_faces(&self, q: &[f32; DESCRIPTOR_LEN], k: usize, o: &SearchOptions) -> Vec<RowHit> {
        let cands = self.ann_candidates(q, k + 8, o);
        self.matrix.rerank(q, o.metric, cands.into_iter(), k)
    }

    fn ann_identities(
        &self,
        q: &[f32; DESCRIPTOR_LEN],
        k: usize,
        o: &SearchOptions,
    ) -> Vec<IdentityHit> {
        // Identities with many faces fill the face list; ask for enough faces to see k
        // distinct identities in the usual case.
        let cands = self.ann_candidates(q, (k * 8).max(64), o);
        let mut seen = std::collections::HashSet::new();
        let idents: Vec<u32> = cands
            .into_iter()
            .map(|r| self.matrix.identities[r as usize])
            .filter(|i| seen.insert(*i))
            .collect();
        self.matrix
            .identity_hits(q, o.metric, idents.into_iter(), k)
    }

    fn face_match(&self, h: RowHit, o: &SearchOptions) -> Match {
        let ident = self.matrix.identities[h.row as usize];
        Match {
            face_id: self.matrix.ids[h.row as usize],
            identity: self.names[ident as usize].clone(),
            distance: h.distance,
            same_person: h.distance <= o.tolerance,
            mean_distance: None,
            identity_faces: None,
        }
    }

    fn identity_match(&self, h: IdentityHit, o: &SearchOptions) -> Match {
        Match {
            face_id: self.matrix.ids[h.row as usize],
            identity: self.names[h.identity as usize].clone(),
            distance: h.distance,
            same_person: h.distance <= o.tolerance,
            mean_distance: Some(h.mean_distance),
            identity_faces: Some(h.faces),
        }
    }
}

fn load_or_build_ann(
    g: &Gallery,
    matrix: &FaceMatrix,
    o: &LoadOptions,
) -> (Ann, AnnState, Option<String>) {
    let path = ann_cache_path(g, o.kind, o.metric);
    let meta = g.meta();
    let mut state = AnnState::Built {
        reason: "no cache".into(),
    };
    let loaded: Option<Result<(Ann, serde_json::Value)>> = path.exists().then(|| match o.kind {
        AnnKind::Hnsw => Hnsw::load(&path).map(|(h, t)| (Ann::Hnsw(h), t)),
        AnnKind::Ivf => Ivf::load(&path, matrix).map(|(i, t)| (Ann::Ivf(i), t)),
    });
    let mut index = None;
    match loaded {
        None => {}
        Some(Err(e)) => {
            state = AnnState::Built {
                reason: e.to_string(),
            }
        }
        Some(Ok((a, tag))) => {
            let n = a.len();
            let same_shape = match (&a, o.kind) {
                (Ann::Hnsw(h), AnnKind::Hnsw) => h.params().m == o.params.m,
                (Ann::Ivf(_), AnnKind::Ivf) => true,
                _ => false,
            };
            let fits = tag.get("store_id").and_then(|v| v.as_str()) == Some(&meta.store_id)
                && tag.get("removals").and_then(|v| v.as_u64()) == Some(meta.removals)
                && n <= matrix.len()
                && (n == 0
                    || tag.get("last_face_id").and_then(|v| v.as_u64()) == Some(matrix.ids[n - 1]))
                && a.metric() == o.metric
                && same_shape;
            let outgrown = matches!(&a, Ann::Ivf(i) if i.needs_retraining(matrix.len()));
            if fits && !outgrown {
                index = Some(a);
            } else if fits {
                state = AnnState::Built {
                    reason: "the gallery has doubled since the IVF cells were trained".into(),
                };
            } else {
                state = AnnState::Built {
                    reason: "cache is stale (faces removed, or another store)".into(),
                };
            }
        }
    }
    let mut changed = true;
    let a = match index {
        Some(mut a) => {
            let added = matrix.len() - a.len();
            if added == 0 {
                state = AnnState::Loaded;
                changed = false;
            } else {
                match &mut a {
                    Ann::Hnsw(h) => h.extend(matrix),
                    Ann::Ivf(i) => i.extend(matrix),
                }
                state = AnnState::Extended { added };
            }
            a
        }
        None => match o.kind {
            AnnKind::Hnsw => Ann::Hnsw(Hnsw::build(matrix, o.metric, o.params)),
            AnnKind::Ivf => Ann::Ivf(Ivf::build(matrix, o.metric, o.ivf)),
        },
    };
    let mut warning = None;
    if changed && o.persist {
        let tag = serde_json::json!({
            "store_id": meta.store_id,
            "removals": meta.removals,
            "generation": meta.generation,
            "last_face_id": matrix.ids.last(),
        });
        let r = std::fs::create_dir_all(g.cache_dir())
            .map_err(|e| GalleryError::io(g.cache_dir(), e))
            .and_then(|_| match &a {
                Ann::Hnsw(h) => h.save(&path, &tag),
                Ann::Ivf(i) => i.save(&path, &tag),
            });
        if let Err(e) = r {
            warning = Some(e.to_string());
        }
    }
    (a, state, warning)
}

/// One match of a search result, with the matched face's source photo resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// The matched face's identity.
    pub identity: String,
    /// The matched face's source photo.
    pub path: String,
    /// As [`Match::distance`].
    pub distance: f32,
    /// As [`Match::same_person`].
    pub same_person: bool,
    /// Identity searches only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_distance: Option<f32>,
    /// Identity searches only: the identity's number of faces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<u32>,
}

/// One query face and its matches: one JSON line of `facelike search --json`:
/// `{"image": PATH, "face": I, "rect": [L,T,R,B], "matches": [{"identity", "path", "distance",
/// "same_person"}, …]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryFaceRecord {
    /// The query photo, as the caller names it.
    pub image: String,
    /// Index of the query face within that photo.
    pub face: usize,
    /// The query face's box, `[left, top, right, bottom]` in photo pixels (dlib's inclusive
    /// rectangle).
    pub rect: [i64; 4],
    /// The matches, nearest first.
    pub matches: Vec<MatchRecord>,
}

impl QueryFaceRecord {
    /// Resolves the matches' source paths in `gallery` and assembles the record.
    pub fn new(
        gallery: &Gallery,
        image: impl Into<String>,
        face: usize,
        rect: Rect,
        matches: &[Match],
    ) -> Result<Self> {
        let ids: Vec<u64> = matches.iter().map(|m| m.face_id).collect();
        let faces = gallery.faces(&ids)?;
        let path_of: std::collections::HashMap<u64, String> =
            faces.into_iter().map(|f| (f.id, f.meta.image)).collect();
        Ok(QueryFaceRecord {
            image: image.into(),
            face,
            rect: rect.to_array(),
            matches: matches
                .iter()
                .map(|m| MatchRecord {
                    identity: m.identity.clone(),
                    path: path_of.get(&m.face_id).cloned().unwrap_or_default(),
                    distance: m.distance,
                    same_person: m.same_person,
                    mean_distance: m.mean_distance,
                    faces: m.identity_faces,
                })
                .collect(),
        })
    }
}
