//! An inverted-file index (IVF-flat): k-means cells over the descriptors, each cell's vectors
//! stored contiguously, a query scanning only the cells whose centres are nearest.
//!
//! Measured alternative to [`crate::hnsw`] for galleries of a million faces on few cores: the
//! HNSW graph's random row reads miss the cache on every hop, while a cell scan streams rows
//! through the same SIMD kernel as the exact search, and k-means builds in seconds where the
//! graph takes minutes (numbers in the crate documentation).

use crate::cache_header;
use crate::error::{GalleryError, Result};
use crate::kernels::{inv_norm, nearest_centres_l2, score_block, score_codes};
use crate::matrix::FaceMatrix;
use crate::synthetic::Rng;
use facelike_types::descriptor::DESCRIPTOR_LEN;
use facelike_types::Metric;
use rayon::prelude::*;
use std::io::{Read, Write};
use std::path::Path;

const D: usize = DESCRIPTOR_LEN;
const MAGIC: &[u8; 8] = b"FLGIVF01";

/// Cell count and training effort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IvfParams {
    /// Number of cells; 0 picks `4·√n` (about 250 faces per cell at a million).
    pub lists: usize,
    /// Training points per cell (a sample of the gallery).
    pub train_per_list: usize,
    /// k-means iterations.
    pub iterations: usize,
    /// Seed of the random training sample and of re-seeding cells left empty by k-means.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams {
            lists: 0,
            train_per_list: 40,
            iterations: 8,
            seed: 0x1f1f_2024,
        }
    }
}

/// The index: centres, and the matrix rows of each cell with a contiguous copy of their
/// descriptors.
#[derive(Clone, Debug)]
pub struct Ivf {
    metric: Metric,
    params: IvfParams,
    centroids: Vec<f32>,
    centroid_inv_norms: Vec<f32>,
    /// Cell of each matrix row.
    assignment: Vec<u32>,
    list_start: Vec<u32>,
    list_rows: Vec<u32>,
    /// 8-bit codes of each cell's rows, contiguous: `code = round((x − lo) / step)`.
    list_codes: Vec<u8>,
    list_inv_norms: Vec<f32>,
    lo: f32,
    step: f32,
    /// Rows the cells were trained on: an index whose gallery has grown far past this is
    /// rebuilt rather than extended (see [`Ivf::needs_retraining`]).
    trained_rows: usize,
}

/// Candidates kept from the 8-bit scan and re-ranked with the exact distance: quantisation
/// moves distances by about 0.01, far less than the gap between the 10th and 60th neighbour.
pub const RERANK: usize = 60;

/// Index of the nearest centre (L2) for each row of `rows`, in parallel.
fn nearest_centroids(centroids: &[f32], rows: &[f32]) -> Vec<u32> {
    let sq: Vec<f32> = centroids
        .chunks_exact(D)
        .map(|c| c.iter().map(|x| x * x).sum())
        .collect();
    let mut out = vec![0u32; rows.len() / D];
    out.par_chunks_mut(256)
        .zip(rows.par_chunks(256 * D))
        .for_each(|(o, r)| nearest_centres_l2(r, centroids, &sq, o));
    out
}

impl Ivf {
    /// The metric candidates are scored with (the cells themselves are trained with L2).
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The parameters it was built with, `lists` resolved to the actual cell count.
    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// Number of cells.
    pub fn lists(&self) -> usize {
        self.list_start.len() - 1
    }

    /// Number of rows indexed.
    pub fn len(&self) -> usize {
        self.assignment.len()
    }

    /// Whether no row is indexed.
    pub fn is_empty(&self) -> bool {
        self.assignment.is_empty()
    }

    /// Bytes held (the contiguous copy of the descriptors dominates).
    pub fn memory_bytes(&self) -> usize {
        (self.centroids.len()
            + self.centroid_inv_norms.len()
            + self.assignment.len()
            + self.list_start.len()
            + self.list_rows.len()
            + self.list_inv_norms.len())
            * 4
            + self.list_codes.len()
    }

    /// Trains the cells on a sample of `matrix` and assigns every row.
    pub fn build(matrix: &FaceMatrix, metric: Metric, params: IvfParams) -> Ivf {
        let n = matrix.len();
        let lists = if params.lists == 0 {
            ((4.0 * (n as f64).sqrt()) as usize).max(1)
        } else {
            params.lists
        }
        .min(n.max(1));
        let params = IvfParams { lists, ..params };
        if n == 0 {
            // One empty cell, so that searches and later extensions work unchanged.
            let mut ivf = Ivf {
                metric,
                params,
                centroids: vec![0.0; D],
                centroid_inv_norms: vec![0.0],
                assignment: Vec::new(),
                list_start: Vec::new(),
                list_rows: Vec::new(),
                list_codes: Vec::new(),
                list_inv_norms: Vec::new(),
                lo: -1.0,
                step: 2.0 / 255.0,
                trained_rows: 0,
            };
            ivf.lay_out(matrix);
            return ivf;
        }
        let mut rng = Rng::new(params.seed);
        // Training sample: a random subset (all rows when small).
        let want = (lists * params.train_per_list.max(1)).min(n);
        let mut sample_rows: Vec<usize> = if want == n {
            (0..n).collect()
        } else {
            let mut v: Vec<usize> = (0..n).collect();
            for i in 0..want {
                let j = i + rng.below(n - i);
                v.swap(i, j);
            }
            v.truncate(want);
            v
        };
        sample_rows.sort_unstable();
        let sample: Vec<f32> = sample_rows
            .iter()
            .flat_map(|&r| matrix.row(r).iter().copied())
            .collect();
        // Initial centres: distinct sample points.
        let mut centroids: Vec<f32> = (0..lists)
            .flat_map(|i| sample[(i * want / lists) * D..(i * want / lists + 1) * D].to_vec())
            .collect();
        let ns = want;
        for _ in 0..params.iterations {
            // Cells are trained with L2 whatever the search metric: means minimise it.
            let assign = nearest_centroids(&centroids, &sample);
            let mut sums = vec![0f64; lists * D];
            let mut counts = vec![0u32; lists];
            for (i, &c) in assign.iter().enumerate() {
                counts[c as usize] += 1;
                let s = &mut sums[c as usize * D..(c as usize + 1) * D];
                for (a, &x) in s.iter_mut().zip(&sample[i * D..(i + 1) * D]) {
                    *a += x as f64;
                }
            }
            for c in 0..lists {
                if counts[c] == 0 {
                    // Re-seed an empty cell on a random sample point.
                    let p = rng.below(ns);
                    centroids[c * D..(c + 1) * D].copy_from_slice(&sample[p * D..(p + 1) * D]);
                } else {
                    for j in 0..D {
                        centroids[c * D + j] = (sums[c * D + j] / counts[c] as f64) as f32;
                    }
                }
            }
        }
        let centroid_inv_norms: Vec<f32> = centroids.chunks_exact(D).map(inv_norm).collect();
        let assignment = nearest_centroids(&centroids, &matrix.data);
        let mut ivf = Ivf {
            metric,
            params,
            centroids,
            centroid_inv_norms,
            assignment,
            list_start: Vec::new(),
            list_rows: Vec::new(),
            list_codes: Vec::new(),
            list_inv_norms: Vec::new(),
            lo: 0.0,
            step: 1.0,
            trained_rows: n,
        };
        ivf.set_quantiser(matrix);
        ivf.lay_out(matrix);
        ivf
    }

    /// Whether the gallery (now `rows` faces) has doubled since the cells were trained: the
    /// cells would then be too big and no longer follow the data, so rebuild.
    pub fn needs_retraining(&self, rows: usize) -> bool {
        rows > 2 * self.trained_rows.max(1)
    }

    /// One code range for all dimensions (dlib descriptor values share one scale), from the
    /// data's extremes.
    fn set_quantiser(&mut self, matrix: &FaceMatrix) {
        let (lo, hi) = matrix
            .data
            .par_chunks(1 << 16)
            .map(|c| {
                c.iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                        (a.min(x), b.max(x))
                    })
            })
            .reduce(
                || (f32::INFINITY, f32::NEG_INFINITY),
                |(a, b), (c, d)| (a.min(c), b.max(d)),
            );
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (-1.0, 1.0)
        };
        self.lo = lo;
        self.step = (hi - lo) / 255.0;
    }

    fn encode(&self, x: &[f32], out: &mut [u8]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = ((v - self.lo) / self.step).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Copies each cell's rows together (counting sort by cell).
    fn lay_out(&mut self, matrix: &FaceMatrix) {
        let lists = self.centroid_inv_norms.len();
        let mut start = vec![0u32; lists + 1];
        for &c in &self.assignment {
            start[c as usize + 1] += 1;
        }
        for i in 0..lists {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut rows = vec![0u32; self.assignment.len()];
        for (r, &c) in self.assignment.iter().enumerate() {
            rows[fill[c as usize] as usize] = r as u32;
            fill[c as usize] += 1;
        }
        let mut codes = vec![0u8; rows.len() * D];
        codes
            .par_chunks_exact_mut(D)
            .zip(rows.par_iter())
            .for_each(|(out, &r)| self.encode(matrix.row(r as usize), out));
        self.list_inv_norms = rows.iter().map(|&r| matrix.inv_norms[r as usize]).collect();
        self.list_start = start;
        self.list_rows = rows;
        self.list_codes = codes;
    }

    /// Assigns rows appended to the matrix since the build to their nearest cells.
    pub fn extend(&mut self, matrix: &FaceMatrix) {
        let old = self.assignment.len();
        if matrix.len() <= old {
            return;
        }
        let add = nearest_centroids(&self.centroids, &matrix.data[old * D..]);
        self.assignment.extend(add);
        self.lay_out(matrix);
    }

    /// Candidate rows for the `k` nearest: scans the 8-bit codes of the `nprobe` cells
    /// nearest to `q` and returns the best `k + RERANK` rows by approximate score, for the
    /// caller to re-rank exactly ([`FaceMatrix::rerank`]).
    pub fn candidates(&self, q: &[f32; D], k: usize, nprobe: usize) -> Vec<u32> {
        let lists = self.lists();
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let qn = inv_norm(q);
        let mut cs = vec![0f32; lists];
        score_block(
            self.metric,
            q,
            qn,
            &self.centroids,
            &self.centroid_inv_norms,
            &mut cs,
        );
        let mut order: Vec<u32> = (0..lists as u32).collect();
        let nprobe = nprobe.clamp(1, lists);
        if nprobe < lists {
            order
                .select_nth_unstable_by(nprobe, |a, b| cs[*a as usize].total_cmp(&cs[*b as usize]));
            order.truncate(nprobe);
        }
        // The query in code units (L2, L1); cosine takes the raw query and a dot product.
        let qt: [f32; D] = match self.metric {
            Metric::Cosine => *q,
            _ => std::array::from_fn(|j| (q[j] - self.lo) / self.step),
        };
        let qsum: f32 = q.iter().sum();
        let keep = k + RERANK;
        let scan = |cells: &[u32]| {
            let mut top = crate::matrix::TopK::new(keep);
            let mut buf = vec![0f32; 512];
            for &c in cells {
                let (a, b) = (
                    self.list_start[c as usize] as usize,
                    self.list_start[c as usize + 1] as usize,
                );
                let mut s = a;
                while s < b {
                    let e = (s + 512).min(b);
                    let out = &mut buf[..e - s];
                    score_codes(self.metric, &qt, &self.list_codes[s * D..e * D], out);
                    if self.metric == Metric::Cosine {
                        // x ≈ lo + step·c, so q·x ≈ lo·Σq + step·(q·c).
                        for (i, v) in out.iter_mut().enumerate() {
                            let dot = self.lo * qsum + self.step * *v;
                            *v = 1.0 - dot * qn * self.list_inv_norms[s + i];
                        }
                    }
                    let mut bound = top.bound();
                    for (i, &v) in out.iter().enumerate() {
                        if v <= bound {
                            top.push(v, self.list_rows[s + i]);
                            bound = top.bound();
                        }
                    }
                    s = e;
                }
            }
            top
        };
        // Two halves in parallel: enough for two cores, little overhead for small probes.
        let half = order.len() / 2;
        let (a, b) = rayon::join(|| scan(&order[..half]), || scan(&order[half..]));
        a.merge(b)
            .into_sorted()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// Writes centres and assignments (the cell copies are rebuilt from the matrix on load).
    pub fn save(&self, path: &Path, tag: &serde_json::Value) -> Result<()> {
        let header = serde_json::json!({
            "tag": tag,
            "metric": self.metric,
            "params": self.params,
            "lists": self.lists(),
            "rows": self.len(),
            "trained_rows": self.trained_rows,
        });
        let mut buf = Vec::with_capacity(self.centroids.len() * 4 + self.assignment.len() * 4);
        self.centroids
            .iter()
            .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        self.assignment
            .iter()
            .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        cache_header::save(path, MAGIC, &header, |w| w.write_all(&buf))
    }

    /// Reads an index written by [`Ivf::save`] for `matrix` (whose first rows it covers),
    /// checking its structure; returns it with its tag.
    pub fn load(path: &Path, matrix: &FaceMatrix) -> Result<(Ivf, serde_json::Value)> {
        let bad = |detail: String| GalleryError::Cache {
            path: path.to_path_buf(),
            detail,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| GalleryError::io(path, e))?;
        let mut body = &bytes[..];
        let header = cache_header::read_header(&mut body, MAGIC, "IVF").map_err(bad)?;
        let metric: Metric = cache_header::parse(&header, "metric").map_err(bad)?;
        let params: IvfParams = cache_header::parse(&header, "params").map_err(bad)?;
        let lists = cache_header::number(&header, "lists").map_err(bad)? as usize;
        let rows = cache_header::number(&header, "rows").map_err(bad)? as usize;
        let trained_rows = header
            .get("trained_rows")
            .and_then(|v| v.as_u64())
            .map_or(rows, |v| v as usize);
        if lists == 0 || body.len() != (lists * D + rows) * 4 || rows > matrix.len() {
            return Err(bad("size does not match its header or the gallery".into()));
        }
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let centroids = f32s(&body[..lists * D * 4]);
        let assignment: Vec<u32> = body[lists * D * 4..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if assignment.iter().any(|&c| c as usize >= lists)
            || centroids.iter().any(|x| !x.is_finite())
        {
            return Err(bad("cell ids or centres out of range".into()));
        }
        let centroid_inv_norms = centroids.chunks_exact(D).map(inv_norm).collect();
        let mut ivf = Ivf {
            metric,
            params,
            centroids,
            centroid_inv_norms,
            assignment,
            list_start: Vec::new(),
            list_rows: Vec::new(),
            list_codes: Vec::new(),
            list_inv_norms: Vec::new(),
            lo: 0.0,
            step: 1.0,
            trained_rows,
        };
        ivf.set_quantiser(matrix);
        ivf.lay_out(matrix);
        let tag = cache_header::tag(&header);
        Ok((ivf, tag))
    }
}
