//! dlib's resampling routines, reproduced bit for bit (see `docs/dlib-algorithms.md`,
//! sections `#resampling`, `#bilinear-resize`, `#pyramid-up` and `#pyramid-down-2-filter`).
//!
//! Detector scores depend on the exact pixel values of the upsampled and downsampled images,
//! so these functions follow dlib's arithmetic, including its 4-lane float32 SIMD loop and the
//! double-precision scalar tail, rather than a "nicer" bilinear filter.

use crate::RgbImage;
use rayon::prelude::*;

/// dlib's `resize_image(in, out, interpolate_bilinear)` for RGB → RGB (align-corners bilinear).
///
/// Columns are computed four at a time in float32 with the x position accumulated in float32
/// (as dlib's `simd4f` loop does) until the fourth lane's right neighbour would leave the
/// image; the remaining columns use double precision. Both paths truncate to u8.
pub fn resize_bilinear_rgb(src: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let mut out = RgbImage::new(out_w, out_h);
    if src.is_empty() || out_w == 0 || out_h == 0 {
        return out;
    }
    let plan = ResizePlan::new(src, out_w, out_h);
    // Rows are independent (given the y positions, accumulated above exactly as dlib does),
    // so large outputs are split into bands of rows computed in parallel.
    let threads = rayon::current_num_threads().max(1);
    let band = out_h.div_ceil(2 * threads).max(MIN_PARALLEL_ROWS);
    let row_bytes = out_w * 3;
    if band >= out_h {
        plan.rows(src, 0, out.as_raw_mut());
    } else {
        out.as_raw_mut()
            .par_chunks_mut(band * row_bytes)
            .enumerate()
            .for_each(|(i, rows)| plan.rows(src, i * band, rows));
    }
    out
}

/// Fewest output rows worth a parallel task.
const MIN_PARALLEL_ROWS: usize = 64;

/// Everything about a resize that does not depend on the output row.
struct ResizePlan {
    in_w: usize,
    in_h: usize,
    out_w: usize,
    x_scale: f64,
    /// The y position of every output row, accumulated in double as dlib does.
    ys: Vec<f64>,
    /// Number of output columns computed by dlib's 4-lane float32 loop.
    n_simd: usize,
    /// Per output byte of the SIMD part: source byte offset of the left neighbour and the
    /// horizontal weights `lr`, `1 − lr` (the same for the 3 channels of a pixel).
    left_at: Vec<usize>,
    lr_e: Vec<f32>,
    ilr_e: Vec<f32>,
}

impl ResizePlan {
    fn new(src: &RgbImage, out_w: usize, out_h: usize) -> Self {
        let (in_w, in_h) = (src.width(), src.height());
        let x_scale = (in_w as f64 - 1.0) / (out_w.saturating_sub(1).max(1)) as f64;
        let y_scale = (in_h as f64 - 1.0) / (out_h.saturating_sub(1).max(1)) as f64;
        let mut y = -y_scale;
        let ys = (0..out_h)
            .map(|_| {
                y += y_scale;
                y
            })
            .collect();

        // The SIMD lane positions do not depend on the row: compute them once.
        let x0 = -4.0 * x_scale;
        let mut lanes: [f32; 4] = [
            x0 as f32,
            (x0 + x_scale) as f32,
            (x0 + 2.0 * x_scale) as f32,
            (x0 + 3.0 * x_scale) as f32,
        ];
        let step = (4.0 * x_scale) as f32;
        let mut plan = ResizePlan {
            in_w,
            in_h,
            out_w,
            x_scale,
            ys,
            n_simd: 0,
            left_at: Vec::new(),
            lr_e: Vec::new(),
            ilr_e: Vec::new(),
        };
        loop {
            for l in lanes.iter_mut() {
                *l += step;
            }
            let left: [i32; 4] = lanes.map(|v| v as i32);
            if left[3] as i64 + 1 >= in_w as i64 || plan.n_simd + 4 > out_w {
                break;
            }
            for j in 0..4 {
                let lr = lanes[j] - left[j] as f32;
                for ch in 0..3 {
                    plan.left_at.push(left[j].max(0) as usize * 3 + ch);
                    plan.lr_e.push(lr);
                    plan.ilr_e.push(1.0 - lr);
                }
            }
            plan.n_simd += 4;
        }
        plan
    }

    /// Computes output rows `first_row …` into `out` (whole rows).
    fn rows(&self, src: &RgbImage, first_row: usize, out: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx") {
                // SAFETY: the CPU supports AVX. Wider vectors change no result: the same
                // IEEE float operations run in the same order, and nothing is fused.
                unsafe { self.rows_avx(src, first_row, out) };
                return;
            }
        }
        self.rows_impl(src, first_row, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn rows_avx(&self, src: &RgbImage, first_row: usize, out: &mut [u8]) {
        self.rows_impl(src, first_row, out)
    }

    #[inline(always)]
    fn rows_impl(&self, src: &RgbImage, first_row: usize, out: &mut [u8]) {
        let (in_w, in_h, out_w, x_scale) = (self.in_w, self.in_h, self.out_w, self.x_scale);
        let n_simd = self.n_simd;
        let ne = n_simd * 3;
        let mut rows = GatheredRows::new(ne);
        let sdata = src.as_raw();
        let (lr_e, ilr_e) = (&self.lr_e[..ne], &self.ilr_e[..ne]);
        for (row, &y) in out.chunks_exact_mut(out_w * 3).zip(&self.ys[first_row..]) {
            let top = y.floor() as usize;
            let bottom = (top + 1).min(in_h - 1);
            let tb = y - top as f64;
            let tb_f = tb as f32;
            let inv_tb_f = (1.0 - tb) as f32;
            let (tl, tr, bl, br) = rows.get(src, &self.left_at, top, bottom);
            let (tl, tr, bl, br) = (&tl[..ne], &tr[..ne], &bl[..ne], &br[..ne]);
            let out_simd = &mut row[..ne];
            for k in 0..ne {
                let tlf = inv_tb_f * ilr_e[k];
                let trf = inv_tb_f * lr_e[k];
                let blf = tb_f * ilr_e[k];
                let brf = tb_f * lr_e[k];
                let (a, b, c, d) = (tl[k] as f32, tr[k] as f32, bl[k] as f32, br[k] as f32);
                let v = ((tlf * a + trf * b) + blf * c) + brf * d;
                // Truncation toward zero, as `simd4i(simd4f)` does. The weights sum to 1
                // within rounding, so 0 ≤ v < 256 and the plain conversion cannot overflow.
                debug_assert!((0.0..256.0).contains(&v));
                // SAFETY: v is finite and within i32's range (see above).
                out_simd[k] = unsafe { v.to_int_unchecked::<i32>() } as u8;
            }
            // The remaining columns in double precision, x accumulated from the first of them.
            let mut x = -x_scale + n_simd as f64 * x_scale;
            let top_row = &sdata[top * in_w * 3..(top + 1) * in_w * 3];
            let bottom_row = &sdata[bottom * in_w * 3..(bottom + 1) * in_w * 3];
            for c in n_simd..out_w {
                x += x_scale;
                let left = x.floor() as usize;
                let right = (left + 1).min(in_w - 1);
                let lr = x - left as f64;
                for ch in 0..3 {
                    let (tl, tr) = (
                        top_row[left * 3 + ch] as f64,
                        top_row[right * 3 + ch] as f64,
                    );
                    let (bl, br) = (
                        bottom_row[left * 3 + ch] as f64,
                        bottom_row[right * 3 + ch] as f64,
                    );
                    let v =
                        (1.0 - tb) * ((1.0 - lr) * tl + lr * tr) + tb * ((1.0 - lr) * bl + lr * br);
                    row[c * 3 + ch] = v as u8;
                }
            }
        }
    }
}

/// Source rows gathered at the SIMD columns' left and right neighbours, as floats, for the
/// two most recently used source rows (consecutive output rows mostly share them).
struct GatheredRows {
    /// (source row, left bytes, right bytes) per slot; one byte of slack at the end.
    slots: [(usize, Vec<u8>, Vec<u8>); 2],
}

impl GatheredRows {
    fn new(ne: usize) -> Self {
        let slot = || (usize::MAX, vec![0u8; ne + 1], vec![0u8; ne + 1]);
        GatheredRows {
            slots: [slot(), slot()],
        }
    }

    /// Makes sure `row` is gathered, without evicting the slot holding `keep`.
    #[inline(always)]
    fn load(&mut self, src: &RgbImage, left_at: &[usize], row: usize, keep: usize) {
        if self.slots.iter().any(|s| s.0 == row) {
            return;
        }
        let i = if self.slots[0].0 == keep { 1 } else { 0 };
        let raw = src.as_raw();
        let data = &raw[row * src.width() * 3..];
        let (at_row, l, r) = &mut self.slots[i];
        let ne = left_at.len();
        // Pixel by pixel: the left and right neighbours are 6 consecutive bytes, copied as
        // two 4-byte words (the 4th byte is overwritten by the next pixel or is slack).
        let mut k = 0;
        while k < ne {
            let at = left_at[k];
            if at + 7 <= data.len() {
                let lw: [u8; 4] = data[at..at + 4].try_into().unwrap();
                let rw: [u8; 4] = data[at + 3..at + 7].try_into().unwrap();
                l[k..k + 4].copy_from_slice(&lw);
                r[k..k + 4].copy_from_slice(&rw);
            } else {
                l[k..k + 3].copy_from_slice(&data[at..at + 3]);
                r[k..k + 3].copy_from_slice(&data[at + 3..at + 6]);
            }
            k += 3;
        }
        *at_row = row;
    }

    /// `(top-left, top-right, bottom-left, bottom-right)` per SIMD output byte.
    #[inline(always)]
    fn get(
        &mut self,
        src: &RgbImage,
        left_at: &[usize],
        top: usize,
        bottom: usize,
    ) -> (&[u8], &[u8], &[u8], &[u8]) {
        self.load(src, left_at, top, bottom);
        self.load(src, left_at, bottom, top);
        let slot = |row: usize| &self.slots[if self.slots[0].0 == row { 0 } else { 1 }];
        let (t, b) = (slot(top), slot(bottom));
        (&t.1, &t.2, &b.1, &b.2)
    }
}

/// Size of dlib's `pyramid_up` output for pyramid_down<2> geometry: `(2W + 2) × (2H + 1)`,
/// from `rect_up([0, 0, W−1, H−1])` with `point_up(p) = (p + (1.25, 0.75))·2` and `lround`.
pub fn pyramid_up_size(width: usize, height: usize) -> (usize, usize) {
    let right = (((width as f64 - 1.0) + 1.25) * 2.0).round() as usize;
    let bottom = (((height as f64 - 1.0) + 0.75) * 2.0).round() as usize;
    (right + 1, bottom + 1)
}

/// dlib's `pyramid_up(img)` (used by the detectors' `upsample` option): a bilinear resize to
/// [`pyramid_up_size`].
pub fn pyramid_up_rgb(src: &RgbImage) -> RgbImage {
    if src.is_empty() {
        return RgbImage::new(0, 0);
    }
    let (w, h) = pyramid_up_size(src.width(), src.height());
    resize_bilinear_rgb(src, w, h)
}

/// Size of dlib's `pyramid_down<N>` output: `⌊(N−1)·W/N⌋ × ⌊(N−1)·H/N⌋` (integer arithmetic).
pub fn pyramid_down_size(width: usize, height: usize, n: usize) -> (usize, usize) {
    ((n - 1) * width / n, (n - 1) * height / n)
}

/// dlib's `pyramid_down<N>()(img, down)` for RGB images with `N ≥ 4` (the HOG detector uses
/// `N = 6`): a bilinear resize to [`pyramid_down_size`]. (`pyramid_down<2>` and `<3>` are
/// filtered algorithms in dlib and are not this function.)
pub fn pyramid_down_rgb(src: &RgbImage, n: usize) -> RgbImage {
    assert!(n >= 4, "pyramid_down<{n}> is not a plain resize in dlib");
    let (w, h) = pyramid_down_size(src.width(), src.height(), n);
    resize_bilinear_rgb(src, w, h)
}

// ---------------------------------------------------------------------------------------------
// Pillow's resampling (libImaging/Resample.c), for face_recognition's CLI, which shrinks big
// photos with `Image.thumbnail((1600, 1600), LANCZOS)` before encoding them.

/// Fixed-point precision of Pillow's 8-bit resampling coefficients.
const PILLOW_PRECISION_BITS: u32 = 32 - 8 - 2;

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos3(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis: per output pixel the
/// first input index and the integer weights.
fn pillow_coeffs(in_size: usize, out_size: usize) -> (Vec<(usize, usize)>, Vec<i32>, usize) {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 3.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut kk = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax =
            (((center + support + 0.5) as i64).min(in_size as i64) as usize).saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = lanczos3((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kv) in k.iter().enumerate().take(xmax) {
            let v = if ww != 0.0 { kv / ww } else { *kv };
            let scaled = v * (1u32 << PILLOW_PRECISION_BITS) as f64;
            kk[xx * ksize + x] = if v < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    (bounds, kk, ksize)
}

fn pillow_clip8(v: i64) -> u8 {
    let s = v >> PILLOW_PRECISION_BITS;
    s.clamp(0, 255) as u8
}

/// Pillow's `Image.resize((w, h), LANCZOS)` for RGB: a horizontal pass, then a vertical one,
/// with 22-bit fixed-point weights and rounding, as `ImagingResample` does.
pub fn pillow_lanczos_resize(src: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (w, h) = (src.width(), src.height());
    let horiz = if out_w != w {
        let (bounds, kk, ksize) = pillow_coeffs(w, out_w);
        let mut tmp = RgbImage::new(out_w, h);
        let s = src.as_raw();
        let t = tmp.as_raw_mut();
        for y in 0..h {
            for (xx, &(xmin, xmax)) in bounds.iter().enumerate() {
                let k = &kk[xx * ksize..xx * ksize + xmax];
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PILLOW_PRECISION_BITS - 1);
                    for (x, kv) in k.iter().enumerate() {
                        ss += s[(y * w + xmin + x) * 3 + c] as i64 * *kv as i64;
                    }
                    t[(y * out_w + xx) * 3 + c] = pillow_clip8(ss);
                }
            }
        }
        tmp
    } else {
        src.clone()
    };
    if out_h == h {
        return horiz;
    }
    let (bounds, kk, ksize) = pillow_coeffs(h, out_h);
    let mut out = RgbImage::new(out_w, out_h);
    let s = horiz.as_raw();
    let o = out.as_raw_mut();
    for (yy, &(ymin, ymax)) in bounds.iter().enumerate() {
        let k = &kk[yy * ksize..yy * ksize + ymax];
        for x in 0..out_w {
            for c in 0..3 {
                let mut ss: i64 = 1 << (PILLOW_PRECISION_BITS - 1);
                for (y, kv) in k.iter().enumerate() {
                    ss += s[((ymin + y) * out_w + x) * 3 + c] as i64 * *kv as i64;
                }
                o[(yy * out_w + x) * 3 + c] = pillow_clip8(ss);
            }
        }
    }
    out
}

/// The size Pillow's `Image.thumbnail((max_w, max_h))` picks: aspect kept, each side rounded
/// down or up, whichever keeps the aspect closer. `None` when the image already fits.
pub fn pillow_thumbnail_size(
    width: usize,
    height: usize,
    max_w: usize,
    max_h: usize,
) -> Option<(usize, usize)> {
    if max_w >= width && max_h >= height {
        return None;
    }
    let aspect = width as f64 / height as f64;
    let (mut x, mut y) = (max_w, max_h);
    let pick = |n: f64, key: &dyn Fn(f64) -> f64| -> usize {
        let (f, c) = (n.floor(), n.ceil());
        // min() keeps the first of equal keys: floor.
        let best = if key(c) < key(f) { c } else { f };
        (best as usize).max(1)
    };
    if x as f64 / y as f64 >= aspect {
        let yy = y as f64;
        x = pick(yy * aspect, &|n| (aspect - n / yy).abs());
    } else {
        let xx = x as f64;
        y = pick(xx / aspect, &|n| {
            if n == 0.0 {
                0.0
            } else {
                (aspect - xx / n).abs()
            }
        });
    }
    Some((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_up_size_matches_dlib() {
        // 1137 rows x 910 cols -> 2275 x 1822 (verified against dlib).
        assert_eq!(pyramid_up_size(910, 1137), (1822, 2275));
    }

    #[test]
    fn resize_keeps_corners_and_constant_images() {
        let mut img = RgbImage::new(7, 5);
        for y in 0..5 {
            for x in 0..7 {
                img.set_pixel(x, y, [(x * 30) as u8, (y * 50) as u8, 77]);
            }
        }
        let up = resize_bilinear_rgb(&img, 16, 11);
        assert_eq!(up.pixel(0, 0), img.pixel(0, 0));
        // The accumulated y lands a hair short of the last row and dlib truncates: 199, not 200.
        let (a, b) = (up.pixel(15, 10), img.pixel(6, 4));
        assert!(
            (0..3).all(|c| a[c] <= b[c] && b[c] - a[c] <= 1),
            "{a:?} vs {b:?}"
        );
        assert!((0..11).all(|y| (0..16).all(|x| up.pixel(x, y)[2] == 77)));
        // A linear ramp is reproduced to within truncation.
        let v = up.pixel(8, 0)[0] as f64;
        let expect = 8.0 * 6.0 / 15.0 * 30.0;
        assert!((v - expect).abs() <= 1.0, "{v} vs {expect}");
    }

    /// dlib's RGB bilinear resize written pixel by pixel, without the row gathering and
    /// column tables of [`resize_bilinear_rgb`].
    fn resize_reference(src: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
        let mut out = RgbImage::new(out_w, out_h);
        let (in_w, in_h) = (src.width(), src.height());
        let xs = (in_w as f64 - 1.0) / (out_w.saturating_sub(1).max(1)) as f64;
        let ys = (in_h as f64 - 1.0) / (out_h.saturating_sub(1).max(1)) as f64;
        // SIMD lanes: x accumulated in float32 from x0 = −4·xs, four columns at a time.
        let x0 = -4.0 * xs;
        let mut lanes = [
            x0 as f32,
            (x0 + xs) as f32,
            (x0 + 2.0 * xs) as f32,
            (x0 + 3.0 * xs) as f32,
        ];
        let step = (4.0 * xs) as f32;
        let mut cols = Vec::new();
        loop {
            lanes.iter_mut().for_each(|l| *l += step);
            if lanes[3] as i32 + 1 >= in_w as i32 || cols.len() + 4 > out_w {
                break;
            }
            cols.extend(lanes);
        }
        let mut y = -ys;
        for r in 0..out_h {
            y += ys;
            let top = y.floor() as usize;
            let bottom = (top + 1).min(in_h - 1);
            let tb = y - top as f64;
            for c in 0..out_w {
                let p = if c < cols.len() {
                    let left = cols[c] as i32 as usize;
                    let lr = cols[c] - left as f32;
                    let (itb, tbf, ilr) = ((1.0 - tb) as f32, tb as f32, 1.0 - lr);
                    let (a, b) = (src.pixel(left, top), src.pixel(left + 1, top));
                    let (d, e) = (src.pixel(left, bottom), src.pixel(left + 1, bottom));
                    std::array::from_fn(|ch| {
                        let v = (((itb * ilr) * a[ch] as f32 + (itb * lr) * b[ch] as f32)
                            + (tbf * ilr) * d[ch] as f32)
                            + (tbf * lr) * e[ch] as f32;
                        v as u8
                    })
                } else {
                    let x = (0..=c).fold(-xs + cols.len() as f64 * xs, |x, k| {
                        if k >= cols.len() {
                            x + xs
                        } else {
                            x
                        }
                    });
                    let left = x.floor() as usize;
                    let right = (left + 1).min(in_w - 1);
                    let lr = x - left as f64;
                    let (a, b) = (src.pixel(left, top), src.pixel(right, top));
                    let (d, e) = (src.pixel(left, bottom), src.pixel(right, bottom));
                    std::array::from_fn(|ch| {
                        let v = (1.0 - tb) * ((1.0 - lr) * a[ch] as f64 + lr * b[ch] as f64)
                            + tb * ((1.0 - lr) * d[ch] as f64 + lr * e[ch] as f64);
                        v as u8
                    })
                };
                out.set_pixel(c, r, p);
            }
        }
        out
    }

    #[test]
    fn optimised_resize_equals_pixel_by_pixel() {
        let mut seed = 99u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let (w, h) = (53, 41);
        let data: Vec<u8> = (0..w * h * 3).map(|_| rnd() as u8).collect();
        let img = RgbImage::from_raw(w, h, data).unwrap();
        // Up, slightly down, 5/6 down, more than 2x down (rows skipped), 1-pixel outputs.
        for (ow, oh) in [
            (108, 83),
            (50, 40),
            (44, 34),
            (20, 9),
            (7, 19),
            (1, 1),
            (1, 5),
            (5, 1),
            (53, 41),
        ] {
            let fast = resize_bilinear_rgb(&img, ow, oh);
            assert_eq!(
                fast.as_raw(),
                resize_reference(&img, ow, oh).as_raw(),
                "{w}x{h} -> {ow}x{oh}"
            );
            // The portable build (no AVX) in one band gives the same bytes.
            let mut portable = vec![0u8; ow * oh * 3];
            ResizePlan::new(&img, ow, oh).rows_impl(&img, 0, &mut portable);
            assert_eq!(fast.as_raw(), &portable[..]);
        }
        assert_eq!(pyramid_down_size(910, 1137, 6), (758, 947));
        let down = pyramid_down_rgb(&img, 6);
        assert_eq!((down.width(), down.height()), (44, 34));
    }
}
