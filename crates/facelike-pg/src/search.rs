//! Search in PostgreSQL: exact (`ORDER BY descriptor <-> $1 LIMIT k`, sequential scan) and
//! approximate through a pgvector HNSW index (`vector_l2_ops`, `hnsw.ef_search` per query),
//! by face or by identity. The database ranks; the top candidates (plus a margin) are
//! re-scored here in f64 with [`facelike_types::Metric::distance`], so distances and order
//! equal the embedded store's exactly.

use crate::error::{PgError, Result};
use crate::store::PgGallery;
use facelike_gallery::{Match, MatchRecord, QueryFaceRecord, SearchBy, SearchMode, SearchOptions};
use facelike_types::{Descriptor, Metric, Rect};
use std::collections::HashMap;
use std::time::Instant;

/// Name of the HNSW index on `faces.descriptor` (L2).
pub const HNSW_INDEX: &str = "faces_descriptor_hnsw";

/// Extra candidates fetched beyond k, re-scored exactly (as the embedded store's margin).
const MARGIN: usize = 8;

/// pgvector's largest `hnsw.ef_search`.
pub const MAX_EF_SEARCH: usize = 1000;

/// Parameters of the HNSW index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgHnswParams {
    /// Links per node (`m`, pgvector's default 16).
    pub m: u32,
    /// Build breadth (`ef_construction`, pgvector's default 64).
    pub ef_construction: u32,
}

impl Default for PgHnswParams {
    fn default() -> Self {
        PgHnswParams {
            m: 16,
            ef_construction: 64,
        }
    }
}

/// A candidate face: (id, identity's database id, descriptor, identity name).
type Cand = (i64, i32, Vec<f32>, String);

fn cand(r: postgres::Row) -> Cand {
    let v: pgvector::Vector = r.get(2);
    (r.get(0), r.get(1), v.to_vec(), r.get(3))
}

fn operator(metric: Metric) -> &'static str {
    match metric {
        Metric::L2 => "<->",
        Metric::L1 => "<+>",
        Metric::Cosine => "<=>",
    }
}

impl PgGallery {
    /// Whether the HNSW index exists.
    pub fn has_hnsw(&self) -> Result<bool> {
        use std::sync::atomic::Ordering;
        if self.hnsw_seen.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let name = format!("{}.{HNSW_INDEX}", self.s());
        let there: bool = self.with_retry("looking for the HNSW index", |c| {
            Ok(c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])?
                .get(0))
        })?;
        self.hnsw_seen.store(there, Ordering::Relaxed);
        Ok(there)
    }

    /// Creates the HNSW index (L2) if missing; returns the seconds it took (0 when it was
    /// there). pgvector keeps it up to date on later inserts.
    pub fn ensure_hnsw(&self, p: PgHnswParams) -> Result<f64> {
        if self.has_hnsw()? {
            return Ok(0.0);
        }
        let s = self.s();
        let t = Instant::now();
        self.with_retry("building the HNSW index", |c| {
            c.batch_execute(&format!(
                "CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON {s}.faces USING hnsw (descriptor vector_l2_ops) WITH (m = {}, ef_construction = {})",
                p.m, p.ef_construction
            ))
        })?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// Drops the HNSW index if present.
    pub fn drop_hnsw(&self) -> Result<()> {
        let s = self.s();
        self.with_retry("dropping the HNSW index", |c| {
            c.batch_execute(&format!("DROP INDEX IF EXISTS {s}.{HNSW_INDEX}"))
        })?;
        self.hnsw_seen
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether a search with these options uses the HNSW index (L2 only); an error for
    /// [`SearchMode::Ann`] without one.
    pub fn uses_ann(&self, o: &SearchOptions) -> Result<bool> {
        let fits = o.metric == Metric::L2 && self.has_hnsw()?;
        match o.mode {
            SearchMode::Exact => Ok(false),
            SearchMode::Auto => Ok(fits),
            SearchMode::Ann if fits => Ok(true),
            SearchMode::Ann => Err(PgError::Invalid(format!(
                "gallery {} has no HNSW index for {:?}: build it with --ann (L2 only)",
                self.location(),
                o.metric
            ))),
        }
    }

    /// Candidate faces `(id, identity db id, descriptor)` in the database's order.
    fn candidates(
        &self,
        q: &[f32],
        limit: usize,
        metric: Metric,
        ann: bool,
        ef: usize,
    ) -> Result<Vec<Cand>> {
        let s = self.s();
        let qv = pgvector::Vector::from(q.to_vec());
        let op = operator(metric);
        let limit = limit as i64;
        let settings = if ann {
            format!(
                "SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = relaxed_order",
                ef.clamp(1, MAX_EF_SEARCH)
            )
        } else {
            "SET LOCAL enable_indexscan = off".to_string()
        };
        self.with_retry("searching", |c| {
            let mut tx = c.transaction()?;
            tx.batch_execute(&settings)?;
            let rows = tx.query(
                &format!(
                    "SELECT c.id, c.identity_id, c.descriptor, i.name FROM
                       (SELECT id, identity_id, descriptor FROM {s}.faces ORDER BY descriptor {op} $1 LIMIT $2) c
                     JOIN {s}.identities i ON i.id = c.identity_id"
                ),
                &[&qv, &limit],
            )?;
            tx.commit()?;
            Ok(rows.into_iter().map(cand).collect())
        })
    }

    /// The nearest identities by their nearest face, from the database (exact scan).
    fn nearest_identity_ids(&self, q: &[f32], limit: usize, metric: Metric) -> Result<Vec<i32>> {
        let s = self.s();
        let qv = pgvector::Vector::from(q.to_vec());
        let op = operator(metric);
        let limit = limit as i64;
        self.with_retry("searching identities", |c| {
            Ok(c.query(
                &format!(
                    "SELECT identity_id FROM {s}.faces GROUP BY identity_id ORDER BY min(descriptor {op} $1), identity_id LIMIT $2"
                ),
                &[&qv, &limit],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    /// Every face of these identities.
    fn faces_of(&self, identities: &[i32]) -> Result<Vec<Cand>> {
        let s = self.s();
        self.with_retry("reading identities' faces", |c| {
            Ok(c.query(
                &format!(
                    "SELECT f.id, f.identity_id, f.descriptor, i.name FROM {s}.faces f
                     JOIN {s}.identities i ON i.id = f.identity_id
                     WHERE f.identity_id = ANY($1) ORDER BY f.id"
                ),
                &[&identities],
            )?
            .into_iter()
            .map(cand)
            .collect())
        })
    }

    /// The k nearest faces (or identities) of one query descriptor, nearest first, with the
    /// same distances, order and fields as [`facelike_gallery::SearchIndex::search`].
    pub fn search(&self, query: &Descriptor, o: &SearchOptions) -> Result<Vec<Match>> {
        self.check_query_kind(&o.kind)?;
        if o.k == 0 {
            return Ok(Vec::new());
        }
        let ann = self.uses_ann(o)?;
        let q = &query.0;
        match o.by {
            SearchBy::Face => {
                let cands =
                    self.candidates(q, o.k + MARGIN, o.metric, ann, o.ef.max(o.k + MARGIN))?;
                let mut hits: Vec<(f32, i64, String)> = cands
                    .into_iter()
                    .map(|(id, _, v, name)| (o.metric.distance(q, &v), id, name))
                    .collect();
                hits.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                hits.truncate(o.k);
                Ok(hits
                    .into_iter()
                    .map(|(d, id, name)| Match {
                        face_id: id as u64,
                        identity: name,
                        distance: d,
                        same_person: d <= o.tolerance,
                        mean_distance: None,
                        identity_faces: None,
                    })
                    .collect())
            }
            SearchBy::Identity => {
                let idents: Vec<i32> = if ann {
                    let want = (o.k * 8).max(64);
                    let cands = self.candidates(q, want, o.metric, true, o.ef.max(want))?;
                    let mut seen = std::collections::HashSet::new();
                    cands
                        .into_iter()
                        .map(|c| c.1)
                        .filter(|i| seen.insert(*i))
                        .collect()
                } else {
                    self.nearest_identity_ids(q, o.k + MARGIN, o.metric)?
                };
                // Exact statistics over all faces of the candidate identities.
                let mut per: HashMap<i32, (f32, i64, f64, u32, String)> = HashMap::new();
                for (id, ident, v, name) in self.faces_of(&idents)? {
                    let d = o.metric.distance(q, &v);
                    let e = per
                        .entry(ident)
                        .or_insert((f32::INFINITY, i64::MAX, 0.0, 0, name));
                    if d < e.0 || (d == e.0 && id < e.1) {
                        e.0 = d;
                        e.1 = id;
                    }
                    e.2 += d as f64;
                    e.3 += 1;
                }
                let mut hits = Vec::new();
                // Ties between identities go to the one registered first, as in the
                // embedded store.
                for (ident, (d, id, sum, n, name)) in per {
                    hits.push((
                        ident,
                        Match {
                            face_id: id as u64,
                            identity: name,
                            distance: d,
                            same_person: d <= o.tolerance,
                            mean_distance: Some((sum / n as f64) as f32),
                            identity_faces: Some(n),
                        },
                    ));
                }
                hits.sort_by(|a, b| a.1.distance.total_cmp(&b.1.distance).then(a.0.cmp(&b.0)));
                hits.truncate(o.k);
                Ok(hits.into_iter().map(|h| h.1).collect())
            }
        }
    }

    /// face_recognition-style recognition: the nearest identity if within tolerance.
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

    /// One query face's record with its matches' source photos resolved (as
    /// [`QueryFaceRecord::new`] does for the embedded store).
    pub fn query_record(
        &self,
        image: impl Into<String>,
        face: usize,
        rect: Rect,
        matches: &[Match],
    ) -> Result<QueryFaceRecord> {
        let ids: Vec<u64> = matches.iter().map(|m| m.face_id).collect();
        let path_of = self.face_paths(&ids)?;
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
