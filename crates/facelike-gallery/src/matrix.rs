//! The search-side copy of a gallery: every descriptor in one contiguous row-major f32 matrix,
//! and the exact (brute-force) k-nearest scan over it.

use crate::kernels::{inv_norm, score_block};
use facelike_types::descriptor::DESCRIPTOR_LEN;
use facelike_types::Metric;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

const D: usize = DESCRIPTOR_LEN;
/// Rows scored per kernel call: 512 rows = 256 KiB of descriptors, which stays in L2.
const BLOCK_ROWS: usize = 512;
/// Rows per parallel task.
const TASK_ROWS: usize = 16 * 1024;
/// Candidates kept beyond `k` by the f32 scan, re-ranked by the f64 distance, so that the
/// result equals an f64 brute-force ranking even where f32 rounding reorders near-ties.
const RERANK_MARGIN: usize = 8;

/// Descriptors of all faces, row `i` belonging to face `ids[i]` of identity `identities[i]`.
#[derive(Clone, Debug, Default)]
pub struct FaceMatrix {
    /// Store face id of each row, ascending (the store's key order).
    pub ids: Vec<u64>,
    /// Identity id of each row (an index into the gallery's identity names).
    pub identities: Vec<u32>,
    /// `len × 128` values, row-major.
    pub data: Vec<f32>,
    /// `1/|row|`, for cosine.
    pub inv_norms: Vec<f32>,
    /// Rows of each identity: `identity_rows[identity_start[i]..identity_start[i + 1]]`.
    identity_start: Vec<u32>,
    identity_rows: Vec<u32>,
}

/// One nearest face: its matrix row and distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowHit {
    /// Row in the [`FaceMatrix`].
    pub row: u32,
    /// Distance to the query under the search's metric, computed in f64 as
    /// [`Metric::distance`] does and rounded to f32.
    pub distance: f32,
}

/// One identity ranked by its nearest face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdentityHit {
    /// Identity id.
    pub identity: u32,
    /// The identity's nearest face.
    pub row: u32,
    /// Distance from the query to that face (as in [`RowHit::distance`]).
    pub distance: f32,
    /// Mean distance over all the identity's faces.
    pub mean_distance: f32,
    /// Number of faces the identity has in the matrix.
    pub faces: u32,
}

#[derive(Clone, Copy, PartialEq)]
struct Cand(f32, u32);
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// The `k` smallest (score, row) pairs seen, as a bounded max-heap.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }
    #[inline]
    pub(crate) fn bound(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map(|c| c.0).unwrap_or(f32::INFINITY)
        }
    }
    #[inline]
    pub(crate) fn push(&mut self, s: f32, row: u32) {
        if self.heap.len() < self.k {
            self.heap.push(Cand(s, row));
        } else if let Some(mut top) = self.heap.peek_mut() {
            if Cand(s, row) < *top {
                *top = Cand(s, row);
            }
        }
    }
    pub(crate) fn merge(mut self, o: TopK) -> TopK {
        for c in o.heap {
            self.push(c.0, c.1);
        }
        self
    }
    /// `(score, row)` pairs, smallest first.
    pub(crate) fn into_sorted(self) -> Vec<(f32, u32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.0, c.1))
            .collect()
    }
}

impl FaceMatrix {
    /// Builds the matrix (and per-identity row lists) from loaded rows.
    pub fn new(ids: Vec<u64>, identities: Vec<u32>, data: Vec<f32>) -> Self {
        assert_eq!(ids.len(), identities.len());
        assert_eq!(data.len(), ids.len() * D);
        let inv_norms = data.par_chunks_exact(D).map(inv_norm).collect();
        let mut m = FaceMatrix {
            ids,
            identities,
            data,
            inv_norms,
            identity_start: Vec::new(),
            identity_rows: Vec::new(),
        };
        m.rebuild_identity_rows();
        m
    }

    /// Appends rows (faces added to the store since this matrix was loaded).
    pub fn append(&mut self, ids: Vec<u64>, identities: Vec<u32>, data: Vec<f32>) {
        assert_eq!(data.len(), ids.len() * D);
        self.inv_norms
            .extend(data.chunks_exact(D).map(inv_norm).collect::<Vec<_>>());
        self.ids.extend(ids);
        self.identities.extend(identities);
        self.data.extend(data);
        self.rebuild_identity_rows();
    }

    fn rebuild_identity_rows(&mut self) {
        let n_ident = self
            .identities
            .iter()
            .map(|&i| i as usize + 1)
            .max()
            .unwrap_or(0);
        let mut start = vec![0u32; n_ident + 1];
        for &i in &self.identities {
            start[i as usize + 1] += 1;
        }
        for i in 0..n_ident {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut rows = vec![0u32; self.identities.len()];
        for (r, &i) in self.identities.iter().enumerate() {
            rows[fill[i as usize] as usize] = r as u32;
            fill[i as usize] += 1;
        }
        self.identity_start = start;
        self.identity_rows = rows;
    }

    /// Number of faces.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the matrix holds no face.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `i` of the matrix.
    pub fn row(&self, i: usize) -> &[f32; D] {
        self.data[i * D..(i + 1) * D].try_into().unwrap()
    }

    /// Matrix rows of one identity.
    pub fn rows_of_identity(&self, identity: u32) -> &[u32] {
        let i = identity as usize;
        if i + 1 >= self.identity_start.len() {
            return &[];
        }
        &self.identity_rows[self.identity_start[i] as usize..self.identity_start[i + 1] as usize]
    }

    /// Number of identities with at least one row (ids are dense, so this is max id + 1).
    pub fn identity_count(&self) -> usize {
        self.identity_start.len().saturating_sub(1)
    }

    /// Bytes held (descriptors, norms, ids, identity lists).
    pub fn memory_bytes(&self) -> usize {
        self.data.len() * 4
            + self.inv_norms.len() * 4
            + self.ids.len() * 8
            + self.identities.len() * 4
            + self.identity_start.len() * 4
            + self.identity_rows.len() * 4
    }

    /// The f64 distance face_recognition would report between `q` and row `row`.
    pub fn exact_distance(&self, metric: Metric, q: &[f32; D], row: u32) -> f32 {
        metric.distance(q, self.row(row as usize))
    }

    /// Exact k nearest rows, nearest first, scanning every row (in parallel over row ranges).
    pub fn nearest(&self, q: &[f32; D], k: usize, metric: Metric) -> Vec<RowHit> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let keep = k + RERANK_MARGIN;
        let qn = inv_norm(q);
        let top = self
            .data
            .par_chunks(TASK_ROWS * D)
            .enumerate()
            .map(|(t, chunk)| {
                let base = t * TASK_ROWS;
                let mut top = TopK::new(keep);
                let mut buf = [0f32; BLOCK_ROWS];
                for (b, block) in chunk.chunks(BLOCK_ROWS * D).enumerate() {
                    let n = block.len() / D;
                    let r0 = base + b * BLOCK_ROWS;
                    score_block(
                        metric,
                        q,
                        qn,
                        block,
                        &self.inv_norms[r0..r0 + n],
                        &mut buf[..n],
                    );
                    let mut bound = top.bound();
                    for (i, &s) in buf[..n].iter().enumerate() {
                        if s <= bound {
                            top.push(s, (r0 + i) as u32);
                            bound = top.bound();
                        }
                    }
                }
                top
            })
            .reduce(|| TopK::new(keep), TopK::merge);
        self.rerank(q, metric, top.heap.into_iter().map(|c| c.1), k)
    }

    /// Exact distances for candidate rows, sorted (distance, then row), truncated to `k`.
    pub fn rerank(
        &self,
        q: &[f32; D],
        metric: Metric,
        rows: impl Iterator<Item = u32>,
        k: usize,
    ) -> Vec<RowHit> {
        let mut hits: Vec<RowHit> = rows
            .map(|row| RowHit {
                row,
                distance: self.exact_distance(metric, q, row),
            })
            .collect();
        hits.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.row.cmp(&b.row)));
        hits.truncate(k);
        hits
    }

    /// Exact k nearest identities, ranked by their nearest face, each with the mean distance
    /// over all its faces.
    pub fn nearest_identities(&self, q: &[f32; D], k: usize, metric: Metric) -> Vec<IdentityHit> {
        let n_ident = self.identity_count();
        if k == 0 || n_ident == 0 {
            return Vec::new();
        }
        let qn = inv_norm(q);
        let threads = rayon::current_num_threads().max(1);
        let per = self.len().div_ceil(threads).max(1);
        // Per identity: best score and its row, one array per thread, merged.
        let best = (0..threads)
            .into_par_iter()
            .map(|t| {
                let mut best = vec![(f32::INFINITY, u32::MAX); n_ident];
                let lo = (t * per).min(self.len());
                let hi = ((t + 1) * per).min(self.len());
                let mut buf = [0f32; BLOCK_ROWS];
                let mut r0 = lo;
                while r0 < hi {
                    let n = (hi - r0).min(BLOCK_ROWS);
                    score_block(
                        metric,
                        q,
                        qn,
                        &self.data[r0 * D..(r0 + n) * D],
                        &self.inv_norms[r0..r0 + n],
                        &mut buf[..n],
                    );
                    for (i, &s) in buf[..n].iter().enumerate() {
                        let r = r0 + i;
                        let slot = &mut best[self.identities[r] as usize];
                        if s < slot.0 {
                            *slot = (s, r as u32);
                        }
                    }
                    r0 += n;
                }
                best
            })
            .reduce(
                || vec![(f32::INFINITY, u32::MAX); n_ident],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        if y.0 < x.0 || (y.0 == x.0 && y.1 < x.1) {
                            *x = y;
                        }
                    }
                    a
                },
            );
        let mut top = TopK::new(k + RERANK_MARGIN);
        for (i, (s, row)) in best.iter().enumerate() {
            if *row != u32::MAX {
                top.push(*s, i as u32);
            }
        }
        self.identity_hits(q, metric, top.heap.into_iter().map(|c| c.1), k)
    }

    /// Exact statistics of candidate identities, ranked by nearest face, truncated to `k`.
    pub fn identity_hits(
        &self,
        q: &[f32; D],
        metric: Metric,
        identities: impl Iterator<Item = u32>,
        k: usize,
    ) -> Vec<IdentityHit> {
        let mut hits: Vec<IdentityHit> = identities
            .filter_map(|identity| {
                let rows = self.rows_of_identity(identity);
                let mut best = RowHit {
                    row: u32::MAX,
                    distance: f32::INFINITY,
                };
                let mut sum = 0f64;
                for &r in rows {
                    let d = self.exact_distance(metric, q, r);
                    sum += d as f64;
                    if d < best.distance || (d == best.distance && r < best.row) {
                        best = RowHit {
                            row: r,
                            distance: d,
                        };
                    }
                }
                (!rows.is_empty()).then(|| IdentityHit {
                    identity,
                    row: best.row,
                    distance: best.distance,
                    mean_distance: (sum / rows.len() as f64) as f32,
                    faces: rows.len() as u32,
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.identity.cmp(&b.identity))
        });
        hits.truncate(k);
        hits
    }
}
