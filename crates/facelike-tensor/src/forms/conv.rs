//! 2-D convolution: im2col built a few output rows at a time, multiplied with `gemm`.

use crate::layout::tensor::{BatchTensor, Tensor};
use crate::simd::relu;
use rayon::prelude::*;
use std::cell::RefCell;

/// A 2-D convolution layer (cross-correlation, as dlib's `con_`).
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Output channels (filters).
    pub out_channels: usize,
    /// Input channels each filter reads.
    pub in_channels: usize,
    /// Filter rows.
    pub kh: usize,
    /// Filter columns.
    pub kw: usize,
    /// Vertical stride, in input rows.
    pub stride_y: usize,
    /// Horizontal stride, in input columns.
    pub stride_x: usize,
    /// Zero rows added above and below the input.
    pub pad_y: usize,
    /// Zero columns added left and right of the input.
    pub pad_x: usize,
    /// `out × in × kh × kw` weights (dlib's layout).
    pub weights: Vec<f32>,
    /// One bias per output channel, added to its sums; `None` adds nothing.
    pub bias: Option<Vec<f32>>,
}

/// What happens to each convolution output after its sum, while the output is still in cache.
///
/// The order is dlib's: bias, then `residual` (dlib's `add_prev`), then ReLU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// Added to the output. Laid out like the output (C × N × OH × OW) but may hold fewer
    /// channels: it then covers the first `residual.len() / (N·OH·OW)` channels and the rest
    /// get nothing added, which is dlib's zero-padded `add_prev` when only channels differ.
    pub residual: Option<&'a [f32]>,
    /// Clamp negative outputs to zero.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Just a ReLU.
    pub const RELU: Epilogue<'static> = Epilogue {
        residual: None,
        relu: true,
    };
}

/// Floats of im2col matrix built per GEMM call. Small enough that the column tile stays in the
/// L2 cache while the GEMM reads it; large enough that each call amortises packing the weights.
const TILE_FLOATS: usize = 96 * 1024;
/// ... but at least this many columns per GEMM: each call packs the whole weight matrix
/// again, which for the small late layers costs more than the column matrix's cache misses.
const MIN_TILE_COLUMNS: usize = 256;

thread_local! {
    static COLUMNS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Raw output pointer shared by tiles that write disjoint columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every tile writes a disjoint set of output elements (its own column range).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl Conv2d {
    /// Output size along one axis: `1 + (in + 2·pad − k) / stride`, or 0 if the kernel does not fit.
    pub fn out_size(input: usize, k: usize, stride: usize, pad: usize) -> usize {
        crate::layout::out_size(input, k, stride, pad)
    }

    /// Output height and width for an `h × w` input.
    pub fn out_shape(&self, h: usize, w: usize) -> (usize, usize) {
        (
            Self::out_size(h, self.kh, self.stride_y, self.pad_y),
            Self::out_size(w, self.kw, self.stride_x, self.pad_x),
        )
    }

    /// Length of one filter: `in × kh × kw` (the GEMM's inner dimension).
    pub fn filter_len(&self) -> usize {
        self.in_channels * self.kh * self.kw
    }

    /// Floating-point operations (2 per multiply-add) for one `h × w` input.
    pub fn flops(&self, h: usize, w: usize) -> u64 {
        let (oh, ow) = self.out_shape(h, w);
        2 * (self.out_channels * self.filter_len() * oh * ow) as u64
    }

    /// Folds a following per-channel affine layer `y = gamma·x + beta` into this layer's
    /// weights and bias, as inference engines fold batch-norm: the result differs from
    /// conv-then-affine only by float rounding.
    pub fn fold_affine(&mut self, gamma: &[f32], beta: &[f32]) {
        assert_eq!(gamma.len(), self.out_channels, "affine gamma length");
        assert_eq!(beta.len(), self.out_channels, "affine beta length");
        let len = self.filter_len();
        for (o, filter) in self.weights.chunks_exact_mut(len).enumerate() {
            for v in filter {
                *v *= gamma[o];
            }
        }
        let bias = (0..self.out_channels)
            .map(|o| gamma[o] * self.bias.as_ref().map_or(0.0, |b| b[o]) + beta[o])
            .collect();
        self.bias = Some(bias);
    }

    /// Reference implementation: direct loops, accumulating in f32. The definition the fast
    /// path is tested against.
    pub fn forward_reference(&self, x: &Tensor) -> Tensor {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = Tensor::zeros(self.out_channels, oh, ow);
        for o in 0..self.out_channels {
            let b = self.bias.as_ref().map_or(0.0, |b| b[o]);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f32;
                    for i in 0..self.in_channels {
                        for ky in 0..self.kh {
                            let iy = (oy * self.stride_y + ky) as isize - self.pad_y as isize;
                            if iy < 0 || iy >= x.h as isize {
                                continue;
                            }
                            for kx in 0..self.kw {
                                let ix = (ox * self.stride_x + kx) as isize - self.pad_x as isize;
                                if ix < 0 || ix >= x.w as isize {
                                    continue;
                                }
                                let wv = self.weights
                                    [((o * self.in_channels + i) * self.kh + ky) * self.kw + kx];
                                acc += wv * x.at(i, iy as usize, ix as usize);
                            }
                        }
                    }
                    out.data[(o * oh + oy) * ow + ox] = acc + b;
                }
            }
        }
        out
    }

    /// The convolution (plus bias), on one thread.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, Epilogue::default())
    }

    /// The convolution followed by `epilogue`, on one thread.
    pub fn forward_with(&self, x: &Tensor, epilogue: Epilogue<'_>) -> Tensor {
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = Tensor::zeros(self.out_channels, oh, ow);
        self.run(&x.data, x.c, 1, x.h, x.w, &mut out.data, epilogue, false);
        out
    }

    /// Like [`forward_with`](Self::forward_with), with the output rows split across rayon's
    /// threads: for one large input (a detector's image pyramid) on several cores.
    pub fn forward_par(&self, x: &Tensor, epilogue: Epilogue<'_>) -> Tensor {
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = Tensor::zeros(self.out_channels, oh, ow);
        self.run(&x.data, x.c, 1, x.h, x.w, &mut out.data, epilogue, true);
        out
    }

    /// The convolution of every sample of a batch followed by `epilogue`, on one thread.
    pub fn forward_batch(&self, x: &BatchTensor, epilogue: Epilogue<'_>) -> BatchTensor {
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = BatchTensor::zeros(self.out_channels, x.n, oh, ow);
        self.run(&x.data, x.c, x.n, x.h, x.w, &mut out.data, epilogue, false);
        out
    }

    /// [`forward_batch`](Self::forward_batch) on all of rayon's threads: tiles of output
    /// rows in parallel, or, for a layer that is a single tile, the GEMM split across them.
    pub fn forward_batch_par(&self, x: &BatchTensor, epilogue: Epilogue<'_>) -> BatchTensor {
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = BatchTensor::zeros(self.out_channels, x.n, oh, ow);
        self.run(&x.data, x.c, x.n, x.h, x.w, &mut out.data, epilogue, true);
        out
    }

    /// im2col + GEMM over tiles of whole output rows; `x` and `out` are C × N × H × W.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        x: &[f32],
        c: usize,
        n: usize,
        h: usize,
        w: usize,
        out: &mut [f32],
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) {
        assert_eq!(c, self.in_channels, "conv input channels");
        assert_eq!(x.len(), c * n * h * w, "conv input size");
        assert_eq!(
            self.weights.len(),
            self.out_channels * self.filter_len(),
            "conv weight count"
        );
        let (oh, ow) = self.out_shape(h, w);
        let cols_total = n * oh * ow;
        assert_eq!(
            out.len(),
            self.out_channels * cols_total,
            "conv output size"
        );
        if let Some(r) = epilogue.residual {
            assert!(
                cols_total > 0 && r.len() % cols_total == 0 && r.len() <= out.len(),
                "residual must be a channel prefix of the output"
            );
        }
        if cols_total == 0 || self.out_channels == 0 {
            return;
        }
        let k = self.filter_len();
        if k == 0 {
            let dst = OutPtr(out.as_mut_ptr());
            self.finish_tile(dst, cols_total, 0, cols_total, epilogue);
            return;
        }
        let dst = OutPtr(out.as_mut_ptr());
        // A 1×1 stride-1 unpadded convolution reads its input as the column matrix directly.
        let threads = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        let gemm_threads = |tiles: usize| {
            if threads > 1 && tiles < threads {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            }
        };
        let kernel = (self.kh, self.kw, self.stride_y, self.stride_x);
        if kernel == (1, 1, 1, 1) && (self.pad_y, self.pad_x) == (0, 0) {
            let par = gemm_threads(1);
            // SAFETY: `x` is the in × cols_total column matrix; `dst` spans out × cols_total.
            unsafe { self.gemm_tile(dst, cols_total, 0, cols_total, x.as_ptr(), cols_total, par) };
            self.finish_tile(dst, cols_total, 0, cols_total, epilogue);
            return;
        }
        // For strided convolutions, split each input row into its stride phases once, so
        // that the column matrix is built from contiguous runs.
        let (sx, wp) = (self.stride_x, w.div_ceil(self.stride_x));
        let phased;
        let src: &[f32] = if sx == 1 {
            x
        } else {
            let mut p = vec![0f32; c * n * h * sx * wp];
            for (row, prow) in x.chunks_exact(w).zip(p.chunks_exact_mut(sx * wp)) {
                for (ix, v) in row.iter().enumerate() {
                    prow[(ix % sx) * wp + ix / sx] = *v;
                }
            }
            phased = p;
            &phased
        };
        let rows_total = n * oh;
        let rows_per_tile = (TILE_FLOATS / (k * ow))
            .max(MIN_TILE_COLUMNS.div_ceil(ow))
            .clamp(1, rows_total);
        let tiles = rows_total.div_ceil(rows_per_tile);
        let par = gemm_threads(tiles);
        let do_tile = |t: usize| {
            let r0 = t * rows_per_tile;
            let r1 = (r0 + rows_per_tile).min(rows_total);
            let cols = (r1 - r0) * ow;
            COLUMNS.with(|buf| {
                let mut buf = buf.borrow_mut();
                if buf.len() < k * cols {
                    buf.resize(k * cols, 0.0);
                }
                let col = &mut buf[..k * cols];
                self.im2col(src, wp, n, h, w, oh, ow, r0, r1, col);
                // SAFETY: `dst` spans OC × cols_total floats; this tile writes columns
                // r0·ow..r1·ow of each row, which no other tile touches.
                unsafe { self.gemm_tile(dst, cols_total, r0 * ow, cols, col.as_ptr(), cols, par) };
            });
            self.finish_tile(dst, cols_total, r0 * ow, cols, epilogue);
        };
        if threads > 1 && tiles > 1 {
            (0..tiles).into_par_iter().for_each(do_tile);
        } else {
            (0..tiles).for_each(do_tile);
        }
    }

    /// `out[:, col0..col0+cols] = W · columns`, where `columns` is `k × cols` with row stride
    /// `rhs_rs`.
    ///
    /// # Safety
    /// `dst` must point to `out_channels × cols_total` floats, `rhs` to a `k × cols` matrix
    /// with row stride `rhs_rs`, and no other thread may write the same columns.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_tile(
        &self,
        dst: OutPtr,
        cols_total: usize,
        col0: usize,
        cols: usize,
        rhs: *const f32,
        rhs_rs: usize,
        parallelism: gemm::Parallelism,
    ) {
        let k = self.filter_len();
        gemm::gemm(
            self.out_channels,
            cols,
            k,
            dst.0.add(col0),
            1,
            cols_total as isize,
            false,
            self.weights.as_ptr(),
            1,
            k as isize,
            rhs,
            1,
            rhs_rs as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }

    /// Applies bias and `epilogue` to columns `col0..col0+cols` of every output channel.
    fn finish_tile(
        &self,
        dst: OutPtr,
        cols_total: usize,
        col0: usize,
        cols: usize,
        epilogue: Epilogue<'_>,
    ) {
        let residual_channels = epilogue.residual.map_or(0, |r| r.len() / cols_total);
        for o in 0..self.out_channels {
            // SAFETY: as in `gemm_tile`: this row segment belongs to this tile alone.
            let row =
                unsafe { std::slice::from_raw_parts_mut(dst.0.add(o * cols_total + col0), cols) };
            let b = self.bias.as_ref().map_or(0.0, |b| b[o]);
            let res = epilogue
                .residual
                .filter(|_| o < residual_channels)
                .map(|r| &r[o * cols_total + col0..o * cols_total + col0 + cols]);
            match (res, epilogue.relu) {
                (Some(r), true) => {
                    for (v, r) in row.iter_mut().zip(r) {
                        *v = relu(*v + b + *r);
                    }
                }
                (Some(r), false) => {
                    for (v, r) in row.iter_mut().zip(r) {
                        *v = *v + b + *r;
                    }
                }
                (None, true) => {
                    for v in row.iter_mut() {
                        *v = relu(*v + b);
                    }
                }
                (None, false) => {
                    if b != 0.0 {
                        for v in row.iter_mut() {
                            *v += b;
                        }
                    }
                }
            }
        }
    }

    /// Builds the `k × cols` column matrix for output rows `r0..r1`, where output row `r`
    /// is row `r % oh` of sample `r / oh`. Row `(c·kh + ky)·kw + kx` of the matrix holds the
    /// input values that filter tap meets; outside the input they are zero.
    ///
    /// `src` is the input with each row split into `stride_x` phases of `wp` values (phase
    /// `p` holds columns `p, p + stride_x, …`; for stride 1 it is the input itself), so that
    /// every tap reads a contiguous run of each row.
    #[allow(clippy::too_many_arguments)]
    fn im2col(
        &self,
        src: &[f32],
        wp: usize,
        n: usize,
        h: usize,
        w: usize,
        oh: usize,
        ow: usize,
        r0: usize,
        r1: usize,
        col: &mut [f32],
    ) {
        let cols = (r1 - r0) * ow;
        let (sy, sx, py, px) = (self.stride_y, self.stride_x, self.pad_y, self.pad_x);
        let row_len = sx * wp;
        // "Same" stride-1 convolution: output rows are as wide as input rows, so a run of
        // rows of one sample is one shifted block copy plus zeroed edge columns.
        let same_width = sx == 1 && sy == 1 && ow == w;
        let mut dst_rows = col.chunks_exact_mut(cols);
        for c in 0..self.in_channels {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let dst_row = dst_rows.next().expect("column matrix has k rows");
                    let kxp = kx as isize - px as isize;
                    if same_width {
                        let mut r = r0;
                        while r < r1 {
                            let b = r / oh;
                            // Rows of this sample in the tile, and those whose tap is inside.
                            let run_end = r1.min((b + 1) * oh);
                            let iy_of = |oy: usize| oy as isize + ky as isize - py as isize;
                            let first = (r..run_end)
                                .find(|&q| iy_of(q - b * oh) >= 0)
                                .unwrap_or(run_end);
                            let last = (first..run_end)
                                .find(|&q| iy_of(q - b * oh) >= h as isize)
                                .unwrap_or(run_end);
                            dst_row[(r - r0) * ow..(first - r0) * ow].fill(0.0);
                            dst_row[(last - r0) * ow..(run_end - r0) * ow].fill(0.0);
                            if last > first {
                                let iy0 = iy_of(first - b * oh) as usize;
                                let len = (last - first) * w;
                                let base = ((c * n + b) * h + iy0) * w;
                                let dst = &mut dst_row[(first - r0) * ow..(last - r0) * ow];
                                let skip_front = (-kxp).max(0) as usize;
                                let skip_back = kxp.max(0) as usize;
                                let from = (base as isize + skip_front as isize + kxp) as usize;
                                if skip_front >= w || skip_back >= w {
                                    // The tap falls outside every row (input narrower than
                                    // the padding): the whole block is padding.
                                    dst.fill(0.0);
                                } else {
                                    let count = len.saturating_sub(skip_front + skip_back);
                                    dst[skip_front..skip_front + count]
                                        .copy_from_slice(&src[from..from + count]);
                                    for row in dst.chunks_exact_mut(w) {
                                        row[..skip_front].fill(0.0);
                                        row[w - skip_back..].fill(0.0);
                                    }
                                }
                            }
                            r = run_end;
                        }
                        continue;
                    }
                    // Output columns whose tap lands inside the input: ix = ox·sx + kxp.
                    let lo = px.saturating_sub(kx).div_ceil(sx).min(ow);
                    let hi = if w + px > kx {
                        ((w + px - kx - 1) / sx + 1).clamp(lo, ow)
                    } else {
                        lo
                    };
                    let phase = kxp.rem_euclid(sx as isize);
                    // Column ox of this tap is element ox + offset of the phase's run.
                    let offset = (kxp - phase) / sx as isize;
                    let run_start = (phase as usize * wp) as isize + lo as isize + offset;
                    let (mut b, mut oy) = (r0 / oh, r0 % oh);
                    for seg in dst_row.chunks_exact_mut(ow) {
                        let iy = (oy * sy + ky) as isize - py as isize;
                        if iy < 0 || iy >= h as isize {
                            seg.fill(0.0);
                        } else {
                            let row = &src[((c * n + b) * h + iy as usize) * row_len..][..row_len];
                            seg[..lo].fill(0.0);
                            seg[hi..].fill(0.0);
                            if hi > lo {
                                let at = run_start as usize;
                                seg[lo..hi].copy_from_slice(&row[at..at + (hi - lo)]);
                            }
                        }
                        oy += 1;
                        if oy == oh {
                            oy = 0;
                            b += 1;
                        }
                    }
                }
            }
        }
    }
}
