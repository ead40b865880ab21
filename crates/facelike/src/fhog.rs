//! Felzenszwalb HOG ("FHOG") features exactly as dlib's `extract_fhog_features` computes them
//! for RGB images (`docs/dlib-algorithms.md#fhog`).
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
    /// Rows of each plane, in cells (border included).
    pub rows: usize,
    /// Columns of each plane, in cells (border included).
    pub cols: usize,
    /// [`FHOG_PLANES`] × `rows` × `cols` values, plane after plane, each row-major.
    pub data: Vec<f32>,
}

impl FhogPlanes {
    /// One plane, `rows × cols` row-major.
    pub fn plane(&self, i: usize) -> &[f32] {
        let n = self.rows * self.cols;
        &self.data[i * n..(i + 1) * n]
    }
    /// Whether the planes have no cells (the image was too small for one).
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

/// Horizontal sum of four SIMD lanes in the order of `_mm_dp_ps(1, v, 0xff)` (SSE4.1), which
/// reproduces dlib-bin's scores exactly; SSE2's `(l0 + l2) + (l1 + l3)` differs by ~1e-6.
#[inline(always)]
fn lane_sum(v: [f32; 4]) -> f32 {
    (v[0] + v[1]) + (v[2] + v[3])
}

/// Where each processed column votes: its left histogram column (with the +1 margin) and
/// its horizontal bilinear weights, computed the way dlib's SIMD or scalar loop does.
struct VoteGeometry {
    /// Histogram column of the left vote, per pixel column x = 1, 2, ….
    cols: Vec<usize>,
    vx0: Vec<f32>,
    vx1: Vec<f32>,
    /// Pixels `x − 1 < n_simd` are handled by dlib's SIMD loop.
    n_simd: usize,
}

impl VoteGeometry {
    fn new(cell_size: usize, visible_nc: i64, simd_end: i64) -> Self {
        let cell_f = cell_size as f32;
        let n = (visible_nc - 1).max(0) as usize;
        let mut g = VoteGeometry {
            cols: Vec::with_capacity(n),
            vx0: Vec::with_capacity(n),
            vx1: Vec::with_capacity(n),
            n_simd: ((simd_end - 1).max(0) as usize).min(n),
        };
        for x in 1..=n {
            let (col, vx0, vx1) = if x - 1 < g.n_simd {
                // SIMD: xp = (x + 0.5)/cell + 0.5 in float, truncated; the +1 margin is
                // already included.
                let xp = (x as f32 + 0.5) / cell_f + 0.5;
                let ixp = xp as i32;
                let vx0 = xp - ixp as f32;
                (ixp as usize, vx0, 1.0f32 - vx0)
            } else {
                let xp = ((x as f64 + 0.5) / cell_size as f64 - 0.5) as f32;
                let ixp = xp.floor() as i32;
                let vx0 = xp - ixp as f32;
                ((ixp + 1) as usize, vx0, (1.0 - vx0 as f64) as f32)
            };
            g.cols.push(col);
            g.vx0.push(vx0);
            g.vx1.push(vx1);
        }
        g
    }
}

/// Three consecutive image rows, de-interleaved into float planes (exact for u8 values), so
/// the per-pixel work vectorises.
struct PlanarRows<'a> {
    img: &'a RgbImage,
    /// Ring of 3 rows × 3 channels; slot `y % 3` holds row y.
    buf: Vec<f32>,
    loaded: [Option<usize>; 3],
}

impl<'a> PlanarRows<'a> {
    fn new(img: &'a RgbImage) -> Self {
        PlanarRows {
            img,
            buf: vec![0.0; 9 * img.width()],
            loaded: [None; 3],
        }
    }

    #[inline(always)]
    fn load(&mut self, y: usize) {
        let slot = y % 3;
        if self.loaded[slot] == Some(y) {
            return;
        }
        let w = self.img.width();
        let row = self.img.row(y);
        let dst = &mut self.buf[slot * 3 * w..(slot + 1) * 3 * w];
        let (r, rest) = dst.split_at_mut(w);
        let (g, b) = rest.split_at_mut(w);
        for (x, p) in row.chunks_exact(3).enumerate() {
            r[x] = p[0] as f32;
            g[x] = p[1] as f32;
            b[x] = p[2] as f32;
        }
        self.loaded[slot] = Some(y);
    }

    /// Rows `y − 1`, `y`, `y + 1`, each as 3 channel planes of the image width.
    #[inline(always)]
    fn rows_around(&mut self, y: usize) -> [&[f32]; 3] {
        self.load(y - 1);
        self.load(y);
        self.load(y + 1);
        let w = self.img.width();
        let slot = |yy: usize| &self.buf[(yy % 3) * 3 * w..(yy % 3 + 1) * 3 * w];
        [slot(y - 1), slot(y), slot(y + 1)]
    }
}

/// Per-pixel results for one image row (pixels x = 1 … n).
struct PixelRow {
    gx: [Vec<f32>; 3],
    gy: [Vec<f32>; 3],
    len: [Vec<f32>; 3],
    sel_gx: Vec<f32>,
    sel_gy: Vec<f32>,
    sel_len: Vec<f32>,
    bin: Vec<u32>,
    /// Votes per pixel: (top-left, bottom-left, top-right, bottom-right) cells, i.e. dlib's
    /// v11, v01, v10, v00.
    w: [Vec<f32>; 4],
}

impl PixelRow {
    fn new(n: usize) -> Self {
        let z = || vec![0f32; n];
        PixelRow {
            gx: [z(), z(), z()],
            gy: [z(), z(), z()],
            len: [z(), z(), z()],
            sel_gx: z(),
            sel_gy: z(),
            sel_len: z(),
            bin: vec![0; n],
            w: [z(), z(), z(), z()],
        }
    }

    /// Gradients, channel selection and orientation bins for one row.
    #[inline(always)]
    fn compute(&mut self, rows: [&[f32]; 3], width: usize, n_simd: usize) {
        let n = self.bin.len();
        for ch in 0..3 {
            let up = &rows[0][ch * width..][1..n + 1];
            let mid = &rows[1][ch * width..(ch + 1) * width];
            let down = &rows[2][ch * width..][1..n + 1];
            let (left, right) = (&mid[..n], &mid[2..n + 2]);
            let gx = &mut self.gx[ch][..n];
            let gy = &mut self.gy[ch][..n];
            let len = &mut self.len[ch][..n];
            for i in 0..n {
                let a = right[i] - left[i];
                let b = down[i] - up[i];
                gx[i] = a;
                gy[i] = b;
                len[i] = a * a + b * b;
            }
        }
        // The channel with the largest squared gradient. dlib's SIMD loop lets ties go to
        // the later channel; its scalar loop to the earlier one.
        for (lo, hi, later_wins) in [(0, n_simd, true), (n_simd, n, false)] {
            let [l0, l1, l2] = self.len.each_ref().map(|v| &v[lo..hi]);
            let [x0, x1, x2] = self.gx.each_ref().map(|v| &v[lo..hi]);
            let [y0, y1, y2] = self.gy.each_ref().map(|v| &v[lo..hi]);
            let sx = &mut self.sel_gx[lo..hi];
            let sy = &mut self.sel_gy[lo..hi];
            let sl = &mut self.sel_len[lo..hi];
            for i in 0..hi - lo {
                let (a0, a1, a2) = (l0[i], l1[i], l2[i]);
                let (gx0, gx1, gx2) = (x0[i], x1[i], x2[i]);
                let (gy0, gy1, gy2) = (y0[i], y1[i], y2[i]);
                let (x, y, l) = if later_wins {
                    let first = a0 > a1;
                    let tx = if first { gx0 } else { gx1 };
                    let ty = if first { gy0 } else { gy1 };
                    let tl = if first { a0 } else { a1 };
                    let keep = tl > a2;
                    (
                        if keep { tx } else { gx2 },
                        if keep { ty } else { gy2 },
                        if keep { tl } else { a2 },
                    )
                } else {
                    let second = a1 > a0;
                    let tx = if second { gx1 } else { gx0 };
                    let ty = if second { gy1 } else { gy0 };
                    let tl = if second { a1 } else { a0 };
                    let third = a2 > tl;
                    (
                        if third { gx2 } else { tx },
                        if third { gy2 } else { ty },
                        if third { a2 } else { tl },
                    )
                };
                sx[i] = x;
                sy[i] = y;
                sl[i] = l;
            }
        }
        // Orientation: the direction with the largest |dot|, strict comparisons from 0.
        // Testing `dot` then `−dot` against the running best is the same as dlib's
        // if / else-if, since `dot > best ≥ 0` rules out `−dot > dot`.
        let dirs = directions();
        let (gx, gy) = (&self.sel_gx[..n], &self.sel_gy[..n]);
        let bins = &mut self.bin[..n];
        for i in 0..n {
            let (x, y) = (gx[i], gy[i]);
            let mut best = 0f32;
            // The bin is carried as a float, as in dlib's SIMD code, to keep the selects in
            // one type so the loop vectorises.
            let mut bin = 0f32;
            for (o, d) in dirs.iter().enumerate() {
                let dot = x * d[0] + y * d[1];
                let take = dot > best;
                best = if take { dot } else { best };
                bin = if take { o as f32 } else { bin };
                let take = -dot > best;
                best = if take { -dot } else { best };
                bin = if take { (o + 9) as f32 } else { bin };
            }
            bins[i] = bin as u32;
        }
    }

    /// The four bilinear votes of each pixel, multiplied in the order of dlib's SIMD
    /// (`vy·(vx·v)`) or scalar (`(vy·vx)·v`) loop.
    #[inline(always)]
    fn weights(&mut self, g: &VoteGeometry, vy0: f32, vy1: f32) {
        let n = self.bin.len();
        let ns = g.n_simd;
        let len = &self.sel_len[..n];
        let [w11, w01, w10, w00] = self.w.each_mut().map(|w| &mut w[..n]);
        let (vx0, vx1) = (&g.vx0[..n], &g.vx1[..n]);
        for i in 0..ns {
            let v = len[i].sqrt();
            let (a1, a0) = (vx1[i] * v, vx0[i] * v);
            w11[i] = vy1 * a1;
            w01[i] = vy0 * a1;
            w10[i] = vy1 * a0;
            w00[i] = vy0 * a0;
        }
        for i in ns..n {
            let v = len[i].sqrt();
            let (x0, x1) = (vx0[i], vx1[i]);
            w11[i] = (vy1 * x1) * v;
            w01[i] = (vy0 * x1) * v;
            w10[i] = (vy1 * x0) * v;
            w00[i] = (vy0 * x0) * v;
        }
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
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX. Wider vectors change no result: every operation
            // is the same IEEE float operation in the same order, and nothing is fused.
            return unsafe {
                extract_fhog_rgb_avx(img, cell_size, filter_rows_padding, filter_cols_padding)
            };
        }
    }
    extract_fhog_rgb_impl(img, cell_size, filter_rows_padding, filter_cols_padding)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn extract_fhog_rgb_avx(
    img: &RgbImage,
    cell_size: usize,
    filter_rows_padding: usize,
    filter_cols_padding: usize,
) -> FhogPlanes {
    extract_fhog_rgb_impl(img, cell_size, filter_rows_padding, filter_cols_padding)
}

#[inline(always)]
fn extract_fhog_rgb_impl(
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
    let geom = VoteGeometry::new(cell_size, visible_nc, simd_end);
    let width = img.width();
    let n = geom.cols.len();
    if n > 0 && visible_nr > 1 {
        let mut planar = PlanarRows::new(img);
        let mut px = PixelRow::new(n);
        for y in 1..visible_nr as usize {
            let yp = ((y as f64 + 0.5) / cell_f as f64 - 0.5) as f32;
            let iyp = yp.floor() as i32;
            let vy0 = yp - iyp as f32;
            let vy1 = (1.0 - vy0 as f64) as f32;
            let rows = planar.rows_around(y);
            px.compute(rows, width, geom.n_simd);
            px.weights(&geom, vy0, vy1);
            // Votes are added pixel by pixel, in dlib's order, into hist rows iyp+1 and iyp+2.
            let r0 = (iyp + 1) as usize * hist_nc * 18;
            let r1 = (iyp + 2) as usize * hist_nc * 18;
            let (cols, bins) = (&geom.cols[..n], &px.bin[..n]);
            let [w11, w01, w10, w00] = px.w.each_ref().map(|w| &w[..n]);
            for i in 0..n {
                let at = cols[i] * 18 + bins[i] as usize;
                hist[r0 + at] += w11[i];
                hist[r1 + at] += w01[i];
                hist[r0 + at + 18] += w10[i];
                hist[r1 + at + 18] += w00[i];
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_image(w: usize, h: usize, seed: u64) -> RgbImage {
        let mut s = seed;
        let data = (0..w * h * 3)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Smooth ramps plus noise, with flat patches that make channel ties.
                let x = (i / 3) % w;
                if x % 23 < 5 {
                    100
                } else {
                    ((x * 3 + (s >> 60) as usize) & 0xff) as u8
                }
            })
            .collect();
        RgbImage::from_raw(w, h, data).unwrap()
    }

    #[test]
    fn vectorised_build_matches_portable_build() {
        // The dispatcher picks the AVX build where available; the portable build must give
        // the same bits.
        for (w, h) in [(97, 61), (64, 64), (33, 200), (17, 17)] {
            let img = noise_image(w, h, (w * h) as u64);
            let a = extract_fhog_rgb(&img, 8, 10, 10);
            let b = extract_fhog_rgb_impl(&img, 8, 10, 10);
            assert_eq!((a.rows, a.cols), (b.rows, b.cols));
            assert!(a
                .data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    #[test]
    fn sizes_and_borders() {
        // 97x61: 12x8 cells (x/8 + 0.5 truncated), so 10x6 output cells plus the 9-cell border.
        let f = extract_fhog_rgb(&noise_image(97, 61, 1), 8, 10, 10);
        assert_eq!((f.rows, f.cols), (6 + 9, 10 + 9));
        for p in 0..FHOG_PLANES {
            let plane = f.plane(p);
            for r in 0..f.rows {
                for c in 0..f.cols {
                    let inside = (4..4 + 6).contains(&r) && (4..4 + 10).contains(&c);
                    assert!(inside || plane[r * f.cols + c] == 0.0);
                }
            }
        }
        // Too small for one output cell.
        assert!(extract_fhog_rgb(&noise_image(12, 12, 2), 8, 10, 10).is_empty());
        assert!(!extract_fhog_rgb(&noise_image(20, 20, 2), 8, 10, 10).is_empty());
        assert!(extract_fhog_rgb(&RgbImage::new(0, 0), 8, 10, 10).is_empty());
    }
}
