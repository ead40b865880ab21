//! A hierarchical navigable small-world graph (Malkov & Yashunin) over the rows of a
//! [`FaceMatrix`], for approximate k-nearest search in big galleries.
//!
//! Written here rather than taken from hnsw_rs so that the graph indexes the gallery's one
//! contiguous matrix by row number (no copy of the vectors, no per-point allocation), uses the
//! same SIMD kernels as the exact scan, and persists as a few flat arrays. Links are stored in
//! fixed-size slots (`count, ids…`) per node and layer; during a parallel build each node's
//! slot is guarded by its own lock, as in hnswlib.

use crate::cache_header;
use crate::error::{GalleryError, Result};
use crate::kernels::score_one;
use crate::matrix::FaceMatrix;
use facelike_types::descriptor::DESCRIPTOR_LEN;
use facelike_types::Metric;
use rayon::prelude::*;
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;

const D: usize = DESCRIPTOR_LEN;
const MAGIC: &[u8; 8] = b"FLGHNSW1";
const NONE: u32 = u32::MAX;

/// Graph shape and build effort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// Links per node on the upper layers; layer 0 keeps `2 m`.
    pub m: usize,
    /// Candidate list size while inserting (higher: better graph, slower build).
    pub ef_construction: usize,
    /// Seed of the level draws.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 100,
            seed: 0x5eed_f00d,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
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

/// Per-thread "visited" marks, reset in O(1) by bumping a generation counter.
struct Visited {
    marks: Vec<u32>,
    gen: u32,
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), gen: 0 }) };
}

/// The graph. Rows `0..len()` of the matrix it was built over are its nodes.
pub struct Hnsw {
    metric: Metric,
    params: HnswParams,
    levels: Vec<u8>,
    /// `(entry node, top level)`.
    entry: Mutex<(u32, u8)>,
    /// Per node: `[count, id × 2m]`.
    links0: Vec<AtomicU32>,
    /// Per node with level ≥ 1: start of its `level` slots of `[count, id × m]` in `links_up`.
    upper_offset: Vec<u32>,
    links_up: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("metric", &self.metric)
            .field("params", &self.params)
            .field("nodes", &self.len())
            .finish()
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Hnsw {
    fn m0(&self) -> usize {
        2 * self.params.m
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The metric the graph was built with; searches use the same one.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The parameters it was built with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Bytes held by the graph.
    pub fn memory_bytes(&self) -> usize {
        self.levels.len()
            + self.links0.len() * 4
            + self.upper_offset.len() * 4
            + self.links_up.len() * 4
            + self.locks.len() * std::mem::size_of::<Mutex<()>>()
    }

    fn draw_level(&self, node: usize) -> u8 {
        let u = (splitmix(self.params.seed ^ (node as u64).wrapping_mul(0x2545_f491_4f6c_dd1d))
            >> 11) as f64
            / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-(1.0 - u).ln() * ml).floor() as u64).min(15) as u8
    }

    /// An empty graph to insert into.
    pub fn new(metric: Metric, params: HnswParams) -> Self {
        // Links are copied into fixed stack buffers of 256 slots.
        let params = HnswParams {
            m: params.m.clamp(2, 127),
            ef_construction: params.ef_construction.max(1),
            ..params
        };
        Hnsw {
            metric,
            params,
            levels: Vec::new(),
            entry: Mutex::new((NONE, 0)),
            links0: Vec::new(),
            upper_offset: Vec::new(),
            links_up: Vec::new(),
            locks: Vec::new(),
        }
    }

    /// Builds the graph over every row of `m` (in parallel).
    pub fn build(matrix: &FaceMatrix, metric: Metric, params: HnswParams) -> Self {
        let mut h = Hnsw::new(metric, params);
        h.extend(matrix);
        h
    }

    /// Inserts the rows of `matrix` beyond the ones already in the graph (the matrix grew by
    /// appending). Rows are inserted in parallel.
    pub fn extend(&mut self, matrix: &FaceMatrix) {
        let old = self.len();
        let n = matrix.len();
        if n <= old {
            return;
        }
        let (m, m0) = (self.params.m, self.m0());
        for node in old..n {
            let l = self.draw_level(node);
            self.levels.push(l);
            if l > 0 {
                self.upper_offset.push(self.links_up.len() as u32);
                self.links_up
                    .extend((0..l as usize * (m + 1)).map(|_| AtomicU32::new(0)));
            } else {
                self.upper_offset.push(NONE);
            }
        }
        self.links0
            .extend((0..(n - old) * (m0 + 1)).map(|_| AtomicU32::new(0)));
        self.locks.extend((old..n).map(|_| Mutex::new(())));
        let mut first = old;
        {
            let mut e = self.entry.lock().unwrap();
            if e.0 == NONE {
                *e = (old as u32, self.levels[old]);
                first = old + 1;
            }
        }
        let this = &*self;
        (first..n).into_par_iter().for_each(|node| {
            this.insert(matrix, node as u32);
        });
    }

    fn slot(&self, node: u32, layer: u8) -> &[AtomicU32] {
        if layer == 0 {
            let w = self.m0() + 1;
            &self.links0[node as usize * w..(node as usize + 1) * w]
        } else {
            let w = self.params.m + 1;
            let start = self.upper_offset[node as usize] as usize + (layer as usize - 1) * w;
            &self.links_up[start..start + w]
        }
    }

    /// Copies a node's links on a layer into `buf`, returning how many there are.
    #[inline]
    fn read_links(&self, node: u32, layer: u8, buf: &mut [u32], locked: bool) -> usize {
        let _g = locked.then(|| self.locks[node as usize].lock().unwrap());
        let s = self.slot(node, layer);
        let c = (s[0].load(Relaxed) as usize).min(s.len() - 1);
        for i in 0..c {
            buf[i] = s[1 + i].load(Relaxed);
        }
        c
    }

    fn write_links(&self, node: u32, layer: u8, ids: &[u32]) {
        let s = self.slot(node, layer);
        for (i, &id) in ids.iter().enumerate() {
            s[1 + i].store(id, Relaxed);
        }
        s[0].store(ids.len() as u32, Relaxed);
    }

    #[inline]
    fn score(&self, matrix: &FaceMatrix, q: &[f32; D], qn: f32, row: u32) -> f32 {
        score_one(
            self.metric,
            q,
            qn,
            matrix.row(row as usize),
            matrix.inv_norms[row as usize],
        )
    }

    fn insert(&self, matrix: &FaceMatrix, node: u32) {
        let q = matrix.row(node as usize);
        let qn = matrix.inv_norms[node as usize];
        let level = self.levels[node as usize];
        let mut guard = Some(self.entry.lock().unwrap());
        let (entry, top) = **guard.as_ref().unwrap();
        // Keep the global lock only while inserting a node that raises the top level.
        if level <= top {
            guard = None;
        }
        let mut ep = Cand(self.score(matrix, q, qn, entry), entry);
        let mut buf = vec![0u32; self.m0() + 1];
        let mut layer = top;
        while layer > level {
            ep = self.greedy(matrix, q, qn, ep, layer, &mut buf, true);
            layer -= 1;
        }
        let mut eps = vec![ep];
        let mut lc = level.min(top);
        loop {
            let w = self.search_layer(matrix, q, qn, &eps, self.params.ef_construction, lc, true);
            let chosen = self.select(matrix, &w, self.params.m);
            {
                let _g = self.locks[node as usize].lock().unwrap();
                let ids: Vec<u32> = chosen.iter().map(|c| c.1).collect();
                self.write_links(node, lc, &ids);
            }
            for c in &chosen {
                self.link_back(matrix, c.1, node, c.0, lc, &mut buf);
            }
            eps = w;
            if lc == 0 {
                break;
            }
            lc -= 1;
        }
        if let Some(mut g) = guard {
            if level > g.1 {
                *g = (node, level);
            }
        }
    }

    /// Adds `new` to `node`'s links on `layer`, shrinking them with the heuristic when full.
    fn link_back(
        &self,
        matrix: &FaceMatrix,
        node: u32,
        new: u32,
        score: f32,
        layer: u8,
        buf: &mut [u32],
    ) {
        let cap = if layer == 0 { self.m0() } else { self.params.m };
        let _g = self.locks[node as usize].lock().unwrap();
        let n = self.read_links(node, layer, buf, false);
        if buf[..n].contains(&new) {
            return;
        }
        if n < cap {
            buf[n] = new;
            self.write_links(node, layer, &buf[..n + 1]);
            return;
        }
        let base = matrix.row(node as usize);
        let bn = matrix.inv_norms[node as usize];
        let mut cands: Vec<Cand> = buf[..n]
            .iter()
            .map(|&r| Cand(self.score(matrix, base, bn, r), r))
            .collect();
        cands.push(Cand(score, new));
        cands.sort_unstable();
        let kept = self.select(matrix, &cands, cap);
        let ids: Vec<u32> = kept.iter().map(|c| c.1).collect();
        self.write_links(node, layer, &ids);
    }

    /// The neighbour-selection heuristic: walk candidates nearest first and keep one only if
    /// it is nearer to the base than to every one kept, which spreads links in all directions.
    fn select(&self, matrix: &FaceMatrix, sorted: &[Cand], m: usize) -> Vec<Cand> {
        let mut out: Vec<Cand> = Vec::with_capacity(m);
        for &c in sorted {
            if out.len() >= m {
                break;
            }
            let row = matrix.row(c.1 as usize);
            let rn = matrix.inv_norms[c.1 as usize];
            let good = out.iter().all(|o| self.score(matrix, row, rn, o.1) >= c.0);
            if good {
                out.push(c);
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn greedy(
        &self,
        matrix: &FaceMatrix,
        q: &[f32; D],
        qn: f32,
        mut ep: Cand,
        layer: u8,
        buf: &mut [u32],
        locked: bool,
    ) -> Cand {
        loop {
            let mut changed = false;
            let n = self.read_links(ep.1, layer, buf, locked);
            for &r in &buf[..n] {
                let s = self.score(matrix, q, qn, r);
                if s < ep.0 {
                    ep = Cand(s, r);
                    changed = true;
                }
            }
            if !changed {
                return ep;
            }
        }
    }

    /// Best-first search of one layer from `eps`; returns up to `ef` nodes, nearest first.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        matrix: &FaceMatrix,
        q: &[f32; D],
        qn: f32,
        eps: &[Cand],
        ef: usize,
        layer: u8,
        locked: bool,
    ) -> Vec<Cand> {
        VISITED.with(|v| {
            let mut v = v.borrow_mut();
            if v.marks.len() < self.len() {
                v.marks.resize(self.len(), 0);
            }
            v.gen = v.gen.wrapping_add(1);
            if v.gen == 0 {
                v.marks.iter_mut().for_each(|m| *m = 0);
                v.gen = 1;
            }
            let gen = v.gen;
            let mut cands: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef * 2);
            let mut best: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
            for &e in eps {
                if v.marks[e.1 as usize] != gen {
                    v.marks[e.1 as usize] = gen;
                    cands.push(Reverse(e));
                    best.push(e);
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
            let mut buf = [0u32; 256];
            let mut fresh = [0u32; 256];
            while let Some(Reverse(c)) = cands.pop() {
                if best.len() >= ef && c.0 > best.peek().unwrap().0 {
                    break;
                }
                let n = self.read_links(c.1, layer, &mut buf, locked);
                // Collect the unvisited neighbours and start fetching their rows before
                // scoring any: the loads are random and dominate the cost.
                let mut nf = 0;
                for &r in &buf[..n] {
                    if v.marks[r as usize] != gen {
                        v.marks[r as usize] = gen;
                        prefetch_row(matrix, r);
                        fresh[nf] = r;
                        nf += 1;
                    }
                }
                for &r in &fresh[..nf] {
                    let s = self.score(matrix, q, qn, r);
                    if best.len() < ef || s < best.peek().unwrap().0 {
                        cands.push(Reverse(Cand(s, r)));
                        best.push(Cand(s, r));
                        if best.len() > ef {
                            best.pop();
                        }
                    }
                }
            }
            best.into_sorted_vec()
        })
    }

    /// Approximate `k` nearest rows to `q`: `(ranking score, row)`, nearest first. `ef` (at
    /// least `k`) trades speed for recall. `matrix` must be the one the graph was built over
    /// (possibly grown since).
    pub fn search(
        &self,
        matrix: &FaceMatrix,
        q: &[f32; D],
        k: usize,
        ef: usize,
    ) -> Vec<(f32, u32)> {
        let (entry, top) = *self.entry.lock().unwrap();
        if entry == NONE || k == 0 {
            return Vec::new();
        }
        let qn = crate::kernels::inv_norm(q);
        let mut buf = vec![0u32; self.m0() + 1];
        let mut ep = Cand(self.score(matrix, q, qn, entry), entry);
        for layer in (1..=top).rev() {
            ep = self.greedy(matrix, q, qn, ep, layer, &mut buf, false);
        }
        let mut w = self.search_layer(matrix, q, qn, &[ep], ef.max(k), 0, false);
        w.truncate(k);
        w.into_iter().map(|c| (c.0, c.1)).collect()
    }

    /// Writes the graph (atomically: a temporary file renamed over `path`), tagged with a
    /// caller's header (store id, generation…) that [`Hnsw::load`] hands back.
    pub fn save(&self, path: &Path, tag: &serde_json::Value) -> Result<()> {
        let (entry, top) = *self.entry.lock().unwrap();
        let header = serde_json::json!({
            "tag": tag,
            "metric": self.metric,
            "params": self.params,
            "nodes": self.len(),
            "entry": entry,
            "top": top,
            "links_up": self.links_up.len(),
        });
        cache_header::save(path, MAGIC, &header, |w| {
            w.write_all(&self.levels)?;
            write_u32s(w, self.links0.iter().map(|a| a.load(Relaxed)))?;
            write_u32s(w, self.upper_offset.iter().copied())?;
            write_u32s(w, self.links_up.iter().map(|a| a.load(Relaxed)))
        })
    }

    /// Reads a graph written by [`Hnsw::save`], checking its structure; returns it with its tag.
    pub fn load(path: &Path) -> Result<(Hnsw, serde_json::Value)> {
        let bad = |detail: String| GalleryError::Cache {
            path: path.to_path_buf(),
            detail,
        };
        let f = std::fs::File::open(path).map_err(|e| GalleryError::io(path, e))?;
        let mut r = std::io::BufReader::with_capacity(1 << 20, f);
        let header = cache_header::read_header(&mut r, MAGIC, "HNSW").map_err(bad)?;
        let metric: Metric = cache_header::parse(&header, "metric").map_err(bad)?;
        let params: HnswParams = cache_header::parse(&header, "params").map_err(bad)?;
        let as_u64 = |k: &str| cache_header::number(&header, k).map_err(bad);
        let nodes = as_u64("nodes")? as usize;
        let entry = as_u64("entry")? as u32;
        let top = as_u64("top")? as u8;
        let n_up = as_u64("links_up")? as usize;
        if params.m < 2 || params.m > 127 || nodes > u32::MAX as usize / 2 {
            return Err(bad("implausible parameters".into()));
        }
        let mut levels = vec![0u8; nodes];
        r.read_exact(&mut levels).map_err(|e| bad(e.to_string()))?;
        let m0 = 2 * params.m;
        let links0 = read_u32s(&mut r, nodes * (m0 + 1)).map_err(|e| bad(e.to_string()))?;
        let upper_offset = read_u32s(&mut r, nodes).map_err(|e| bad(e.to_string()))?;
        let links_up = read_u32s(&mut r, n_up).map_err(|e| bad(e.to_string()))?;
        let mut rest = [0u8; 1];
        if r.read(&mut rest).map_err(|e| bad(e.to_string()))? != 0 {
            return Err(bad("trailing bytes".into()));
        }
        // Structure check: every link names a node, every count fits its slot, offsets fit.
        let n32 = nodes as u32;
        if nodes > 0 && (entry >= n32 || levels[entry as usize] != top) {
            return Err(bad("bad entry point".into()));
        }
        for (i, s) in links0.chunks_exact(m0 + 1).enumerate() {
            let c = s[0] as usize;
            if c > m0 || s[1..=c].iter().any(|&x| x >= n32) || levels[i] > 15 {
                return Err(bad(format!("bad links at node {i}")));
            }
        }
        for (i, &o) in upper_offset.iter().enumerate() {
            let l = levels[i] as usize;
            if l == 0 {
                continue;
            }
            let w = params.m + 1;
            let end = o as usize + l * w;
            if o == NONE || end > n_up {
                return Err(bad(format!("bad upper offset at node {i}")));
            }
            for s in links_up[o as usize..end].chunks_exact(w) {
                let c = s[0] as usize;
                if c > params.m
                    || s[1..=c]
                        .iter()
                        .any(|&x| x >= n32 || levels[x as usize] == 0)
                {
                    return Err(bad(format!("bad upper links at node {i}")));
                }
            }
        }
        let tag = cache_header::tag(&header);
        Ok((
            Hnsw {
                metric,
                params,
                entry: Mutex::new(if nodes == 0 { (NONE, 0) } else { (entry, top) }),
                locks: (0..nodes).map(|_| Mutex::new(())).collect(),
                levels,
                links0: links0.into_iter().map(AtomicU32::new).collect(),
                upper_offset,
                links_up: links_up.into_iter().map(AtomicU32::new).collect(),
            },
            tag,
        ))
    }
}

#[inline(always)]
fn prefetch_row(matrix: &FaceMatrix, row: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = matrix.row(row as usize).as_ptr() as *const i8;
        // SAFETY: prefetching is a hint; the addresses lie inside the row's slice.
        #[allow(unused_unsafe)]
        unsafe {
            for line in 0..(D * 4 / 64) {
                _mm_prefetch(p.add(line * 64), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (matrix, row);
}

fn write_u32s(w: &mut impl Write, v: impl Iterator<Item = u32>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for x in v {
        buf.extend_from_slice(&x.to_le_bytes());
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

fn read_u32s(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u32>> {
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; 1 << 16];
    let mut left = n * 4;
    while left > 0 {
        let take = left.min(buf.len());
        r.read_exact(&mut buf[..take])?;
        out.extend(
            buf[..take]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap())),
        );
        left -= take;
    }
    Ok(out)
}
