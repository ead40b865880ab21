//! Felzenszwalb HOG ("FHOG") features exactly as dlib's `extract_fhog_features` computes them
//! for RGB images (`dlib-spec.md` §6.3).
//!
//! The detector's scores are sums of tens of thousands of float32 products, so every float
//! operation here happens in the order dlib's build performs it:
//!
//! * columns `1, 9, 17, …` are handled eight at a time by dlib's SIMD loop and the remaining
//!   right-hand columns by a scalar loop. The two paths differ in the colour-channel tie-break
//!   (SIMD prefers the later channel, scalar the earlier one) and in how the bilinear vote
//!   weights are multiplied (`vy·(vx·v)` versus `(vy·vx)·v`);
//! * histogram votes are added pixel by pixel in row-major order;
//! * the four block normalisations of a cell are SIMD lanes, and the sum over the lanes is the
//!   SSE4.1 dot-product order `(l0 + l1) + (l2 + l3)` of the `dlib-bin` wheel (built with AVX,
//!   hence `DLIB_HAVE_SSE41`).

use facelike_image::RgbImage;

/// Number of feature planes per cell: 18 signed + 9 unsigned orientations + 4 energies.
pub const FHOG_PLANES: usize = 31;

/// FHOG features: [`FHOG_PLANES`] planes of `rows × cols` float32, plane-major.
///
/// The planes include the zero border dlib adds for a filter of `filter_rows × filter_cols`
/// cells: `(filter_rows − 1)/2` rows on top, `filter_rows/2` at the bottom, likewise for
/// columns. An image too small for one cell gives `rows == cols == 0`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FhogPlanes {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl FhogPlanes {
    /// One plane, `rows × cols` row-major.
    pub fn plane(&self, i: usize) -> &[f32] {
        let n = self.rows * self.cols;
        &self.data[i * n..(i + 1) * n]
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0 || self.cols == 0
    }
}

/// The 9 unsigned orientation directions, as float32 values converted from dlib's double
/// literals.
fn directions() -> [[f32; 2]; 9] {
    const D: [[f64; 2]; 9] = [
        [1.0000, 0.0000],
        [0.9397, 0.3420],
        [0.7660, 0.6428],
        [0.500, 0.8660],
        [0.1736, 0.9848],
        [-0.1736, 0.9848],
        [-0.5000, 0.8660],
        [-0.7660, 0.6428],
        [-0.9397, 0.3420],
    ];
    D.map(|d| [d[0] as f32, d[1] as f32])
}

/// The 18-bin orientation of gradient `(gx, gy)`: the direction with the largest
/// `|dot|`, strict comparisons from 0 (a zero gradient lands in bin 0).
#[inline(always)]
fn orientation(dirs: &[[f32; 2]; 9], gx: f32, gy: f32) -> usize {
    let mut best_dot = 0.0f32;
    let mut best_o = 0usize;
    for (o, d) in dirs.iter().enumerate() {
        let dot = gx * d[0] + gy * d[1];
        if dot > best_dot {
            best_dot = dot;
            best_o = o;
        } else if -dot > best_dot {
            best_dot = -dot;
            best_o = o + 9;
        }
    }
    best_o
}

/// Horizontal sum of four SIMD lanes in the order of `_mm_dp_ps(1, v, 0xff)`.
#[inline(always)]
fn lane_sum(v: [f32; 4]) -> f32 {
    (v[0] + v[1]) + (v[2] + v[3])
}

/// Per-pixel gradient of the channel with the largest squared magnitude.
/// `later_wins_ties` selects dlib's SIMD rule (ties go to the later channel).
#[inline(always)]
fn max_channel_gradient(
    up: &[u8],
    mid: &[u8],
    down: &[u8],
    x: usize,
    later_wins_ties: bool,
) -> (i32, i32, i32) {
    let mut g = [(0i32, 0i32, 0i32); 3];
    for (ch, gc) in g.iter_mut().enumerate() {
        let gx = mid[(x + 1) * 3 + ch] as i32 - mid[(x - 1) * 3 + ch] as i32;
        let gy = down[x * 3 + ch] as i32 - up[x * 3 + ch] as i32;
        *gc = (gx, gy, gx * gx + gy * gy);
    }
    if later_wins_ties {
        let t = if g[0].2 > g[1].2 { g[0] } else { g[1] };
        if t.2 > g[2].2 {
            t
        } else {
            g[2]
        }
    } else {
        let mut t = g[0];
        if g[1].2 > t.2 {
            t = g[1];
        }
        if g[2].2 > t.2 {
            t = g[2];
        }
        t
    }
}

/// dlib's `extract_fhog_features(img, hog, cell_size, filter_rows_padding, filter_cols_padding)`
/// for an RGB image (cell size ≥ 2).
pub fn extract_fhog_rgb(
    img: &RgbImage,
    cell_size: usize,
    filter_rows_padding: usize,
    filter_cols_padding: usize,
) -> FhogPlanes {
    assert!(
        cell_size >= 2,
        "cell size 1 uses a different dlib code path"
    );
    let (nr, nc) = (img.height() as i64, img.width() as i64);
    let cell_f = cell_size as f32;
    let cells_nr = ((nr as f32 / cell_f) as f64 + 0.5) as i64;
    let cells_nc = ((nc as f32 / cell_f) as f64 + 0.5) as i64;
    let hog_nr = (cells_nr - 2).max(0);
    let hog_nc = (cells_nc - 2).max(0);
    if cells_nr == 0 || cells_nc == 0 || hog_nr == 0 || hog_nc == 0 {
        return FhogPlanes::default();
    }
    let (cells_nr, cells_nc) = (cells_nr as usize, cells_nc as usize);
    let (hog_nr, hog_nc) = (hog_nr as usize, hog_nc as usize);

    // Histograms with a one-cell margin all round, 18 bins per cell.
    let hist_nc = cells_nc + 2;
    let mut hist = vec![0f32; (cells_nr + 2) * hist_nc * 18];
    let visible_nr = (cells_nr as i64 * cell_size as i64).min(nr) - 1;
    let visible_nc = (cells_nc as i64 * cell_size as i64).min(nc) - 1;
    // dlib's SIMD loop covers x = 1, 9, 17, … while x < visible_nc − 7.
    let mut simd_end = 1i64;
    while simd_end < visible_nc - 7 {
        simd_end += 8;
    }
    let dirs = directions();
    let raw = img.as_raw();
    let row_bytes = img.width() * 3;

    // Per-column vote geometry does not depend on the row.
    let mut col_geom: Vec<(usize, f32, f32)> = Vec::with_capacity(visible_nc.max(0) as usize);
    for x in 1..visible_nc.max(1) {
        if x < simd_end {
            let xp = (x as f32 + 0.5) / cell_f + 0.5;
            let ixp = xp as i32;
            let vx0 = xp - ixp as f32;
            let vx1 = 1.0f32 - vx0;
            // `ixp` already includes the +1 margin offset.
            col_geom.push((ixp as usize, vx0, vx1));
        } else {
            let xp = ((x as f64 + 0.5) / cell_size as f64 - 0.5) as f32;
            let ixp = xp.floor() as i32;
            let vx0 = xp - ixp as f32;
            let vx1 = (1.0 - vx0 as f64) as f32;
            col_geom.push(((ixp + 1) as usize, vx0, vx1));
        }
    }

    for y in 1..visible_nr.max(1) {
        let yp = ((y as f64 + 0.5) / cell_f as f64 - 0.5) as f32;
        let iyp = yp.floor() as i32;
        let vy0 = yp - iyp as f32;
        let vy1 = (1.0 - vy0 as f64) as f32;
        let (r0, r1) = ((iyp + 1) as usize, (iyp + 2) as usize);
        let yu = y as usize;
        let up = &raw[(yu - 1) * row_bytes..yu * row_bytes];
        let mid = &raw[yu * row_bytes..(yu + 1) * row_bytes];
        let down = &raw[(yu + 1) * row_bytes..(yu + 2) * row_bytes];
        for x in 1..visible_nc.max(1) {
            let simd = x < simd_end;
            let xu = x as usize;
            let (gx, gy, len) = max_channel_gradient(up, mid, down, xu, simd);
            let o = orientation(&dirs, gx as f32, gy as f32);
            let v = (len as f32).sqrt();
            let (c0, vx0, vx1) = col_geom[xu - 1];
            let (w11, w01, w10, w00) = if simd {
                let (a1, a0) = (vx1 * v, vx0 * v);
                (vy1 * a1, vy0 * a1, vy1 * a0, vy0 * a0)
            } else {
                (
                    (vy1 * vx1) * v,
                    (vy0 * vx1) * v,
                    (vy1 * vx0) * v,
                    (vy0 * vx0) * v,
                )
            };
            hist[(r0 * hist_nc + c0) * 18 + o] += w11;
            hist[(r1 * hist_nc + c0) * 18 + o] += w01;
            hist[(r0 * hist_nc + c0 + 1) * 18 + o] += w10;
            hist[(r1 * hist_nc + c0 + 1) * 18 + o] += w00;
        }
    }

    // Energy of each cell: sum over the 9 unsigned orientations of (h[o] + h[o+9])².
    let mut norm = vec![0f32; cells_nr * cells_nc];
    for r in 0..cells_nr {
        for c in 0..cells_nc {
            let h = &hist[((r + 1) * hist_nc + c + 1) * 18..][..18];
            let mut acc = 0f32;
            for o in 0..9 {
                let s = h[o] + h[o + 9];
                acc += s * s;
            }
            norm[r * cells_nc + c] = acc;
        }
    }

    let rows = hog_nr + filter_rows_padding - 1;
    let cols = hog_nc + filter_cols_padding - 1;
    let plane = rows * cols;
    let mut data = vec![0f32; FHOG_PLANES * plane];
    let (oy, ox) = ((filter_rows_padding - 1) / 2, (filter_cols_padding - 1) / 2);
    let eps = 0.0001f32;
    let texture_scale = (2.0 * 0.2357f64) as f32;
    let n_at = |r: usize, c: usize| norm[r * cells_nc + c];
    for y in 0..hog_nr {
        for x in 0..hog_nc {
            let z1 = [
                n_at(y + 1, x + 1),
                n_at(y, x + 1),
                n_at(y + 1, x),
                n_at(y, x),
            ];
            let z2 = [
                n_at(y + 1, x + 2),
                n_at(y, x + 2),
                n_at(y + 1, x + 1),
                n_at(y, x + 1),
            ];
            let z3 = [
                n_at(y + 2, x + 1),
                n_at(y + 1, x + 1),
                n_at(y + 2, x),
                n_at(y + 1, x),
            ];
            let z4 = [
                n_at(y + 2, x + 2),
                n_at(y + 1, x + 2),
                n_at(y + 2, x + 1),
                n_at(y + 1, x + 1),
            ];
            let mut nn = [0f32; 4];
            let mut n = [0f32; 4];
            for j in 0..4 {
                nn[j] = 0.2f32 * ((((z1[j] + z2[j]) + z3[j]) + z4[j]) + eps).sqrt();
                n[j] = 0.1f32 / nn[j];
            }
            let h = &hist[((y + 2) * hist_nc + x + 2) * 18..][..18];
            let at = (y + oy) * cols + x + ox;
            let clip = |v: f32, j: usize| (if v < nn[j] { v } else { nn[j] }) * n[j];
            let mut t = [0f32; 4];
            for o in (0..18).step_by(3) {
                let h0: [f32; 4] = std::array::from_fn(|j| clip(h[o], j));
                let h1: [f32; 4] = std::array::from_fn(|j| clip(h[o + 1], j));
                let h2: [f32; 4] = std::array::from_fn(|j| clip(h[o + 2], j));
                data[o * plane + at] = lane_sum(h0);
                data[(o + 1) * plane + at] = lane_sum(h1);
                data[(o + 2) * plane + at] = lane_sum(h2);
                for j in 0..4 {
                    t[j] += (h0[j] + h1[j]) + h2[j];
                }
            }
            for o in 0..9 {
                let s = h[o] + h[o + 9];
                let hs: [f32; 4] = std::array::from_fn(|j| clip(s, j));
                data[(18 + o) * plane + at] = lane_sum(hs);
            }
            for j in 0..4 {
                data[(27 + j) * plane + at] = t[j] * texture_scale;
            }
        }
    }
    FhogPlanes { rows, cols, data }
}
