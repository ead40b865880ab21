//! 3×3 stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Each 4×4 block of outputs comes from a 6×6 input tile: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`.
//! The element-wise product over all channels is 36 independent GEMMs (one per position of the
//! 6×6 transformed tile), which do 36 multiply-adds where direct convolution does 144: a 4×
//! saving on the multiplies. The transforms cost a few adds per element; the transformed
//! weights take 4× the memory of the 3×3 ones, so this suits layers with many tiles and
//! moderate channel counts. Results differ from direct convolution by float rounding
//! (about 1e-6 relative here, measured in the tests).
//!
//! The transforms work on 8 values at once, one per vector lane, so that every load and
//! store is a contiguous 8-float block: for batches of 8 samples the lanes are the 8
//! samples' tiles at the same place (the input is re-laid out sample-innermost); otherwise
//! they are 8 channels of one tile (channel-innermost, with the GEMMs column-major).

use crate::forms::conv::{Conv2d, Epilogue};
use crate::layout::tensor::BatchTensor;
use rayon::prelude::*;
use std::cell::RefCell;

/// Output tile side (m) and input tile side (m + 2).
const M: usize = 4;
const A: usize = M + 2;
const A2: usize = A * A;
/// Tiles transformed together: one 256-bit register of f32 lanes per value.
const LANES: usize = 8;
/// Transformed inputs per chunk of tiles, in floats (1 MiB): a chunk's GEMM operands stay
/// in the L2 cache.
const CHUNK_FLOATS: usize = 256 * 1024;

/// `G` (6×3), exact in f64: the filter transform.
pub(crate) const G: [[f64; 3]; A] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Buffers reused between calls on one thread.
#[derive(Default)]
struct Scratch {
    /// The zero-padded input, re-laid out for the lanes (see the module docs).
    padded: Vec<f32>,
    /// Transformed input of one chunk: 36 × in × columns.
    v: Vec<f32>,
    /// Products of one chunk: 36 × out × columns.
    m: Vec<f32>,
    /// The output in whole tiles, laid out like `padded`.
    full: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

type Lanes = [f32; LANES];

#[inline(always)]
fn load(src: &[f32], at: usize) -> Lanes {
    src[at..at + LANES].try_into().expect("8 lanes")
}

#[inline(always)]
fn store(dst: &mut [f32], at: usize, v: &Lanes) {
    let d: &mut Lanes = (&mut dst[at..at + LANES]).try_into().expect("8 lanes");
    *d = *v;
}

/// `Bᵀ x` for one 6-vector of lanes (the input transform along one axis).
#[inline(always)]
fn bt(x: [&Lanes; A]) -> [Lanes; A] {
    let mut r = [[0f32; LANES]; A];
    for l in 0..LANES {
        let (d0, d1, d2, d3, d4, d5) = (x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]);
        r[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        r[1][l] = -4.0 * (d1 + d2) + (d3 + d4);
        r[2][l] = 4.0 * (d1 - d2) + (d4 - d3);
        r[3][l] = 2.0 * (d3 - d1) + (d4 - d2);
        r[4][l] = 2.0 * (d1 - d3) + (d4 - d2);
        r[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    r
}

/// `Aᵀ x` for one 6-vector of lanes (the output transform along one axis).
#[inline(always)]
fn at(x: [&Lanes; A]) -> [Lanes; M] {
    let mut r = [[0f32; LANES]; M];
    for l in 0..LANES {
        let (m0, m1, m2, m3, m4, m5) = (x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]);
        let (s12, d12, s34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        r[0][l] = m0 + s12 + s34;
        r[1][l] = d12 + 2.0 * d34;
        r[2][l] = s12 + 4.0 * s34;
        r[3][l] = d12 + 8.0 * d34 + m5;
    }
    r
}

/// `Bᵀ d B` for 8 tiles, given each patch row `i` as its six columns; calls `put(q, v)` for
/// the 36 results in row-major order.
// `nu` picks a column out of each row: an index loop says that most plainly.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn input_tiles(rows: &[[Lanes; A]; A], mut put: impl FnMut(usize, &Lanes)) {
    // Along x first (each patch row), then along y.
    let mut r = [[[0f32; LANES]; A]; A];
    for (ri, d) in r.iter_mut().zip(rows) {
        *ri = bt([&d[0], &d[1], &d[2], &d[3], &d[4], &d[5]]);
    }
    for nu in 0..A {
        let col = bt([
            &r[0][nu], &r[1][nu], &r[2][nu], &r[3][nu], &r[4][nu], &r[5][nu],
        ]);
        for (xi, v) in col.iter().enumerate() {
            put(xi * A + nu, v);
        }
    }
}

/// `Aᵀ m A` for 8 tiles: the 4×4 outputs, row-major.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn output_tiles(m: &[[Lanes; A]; A]) -> [[Lanes; M]; M] {
    let mut s = [[[0f32; LANES]; A]; M];
    for nu in 0..A {
        let col = at([
            &m[0][nu], &m[1][nu], &m[2][nu], &m[3][nu], &m[4][nu], &m[5][nu],
        ]);
        for (yy, v) in col.iter().enumerate() {
            s[yy][nu] = *v;
        }
    }
    let mut y = [[[0f32; LANES]; M]; M];
    for (yr, sr) in y.iter_mut().zip(&s) {
        *yr = at([&sr[0], &sr[1], &sr[2], &sr[3], &sr[4], &sr[5]]);
    }
    y
}

/// How the 8 lanes of the transforms are filled.
#[derive(Clone, Copy)]
enum Layout {
    /// Lanes are 8 samples (the batch is a multiple of 8).
    Samples,
    /// Lanes are 8 channels.
    Channels,
}

/// A 3×3 stride-1 convolution prepared for Winograd F(4×4, 3×3).
#[derive(Clone, Debug)]
pub struct Winograd3x3 {
    /// Output channels (filters).
    pub out_channels: usize,
    /// Input channels each filter reads.
    pub in_channels: usize,
    /// Zero rows added above and below the input (from the [`Conv2d`]).
    pub pad_y: usize,
    /// Zero columns added left and right of the input (from the [`Conv2d`]).
    pub pad_x: usize,
    /// Transformed weights: 36 matrices of `out × in`.
    u: Vec<f32>,
    bias: Vec<f32>,
}

/// A pointer shared by threads that write disjoint elements through it.
#[derive(Clone, Copy)]
struct SharedPtr(*mut f32);
// SAFETY: only used where each thread writes its own elements (see `gemms`).
unsafe impl Send for SharedPtr {}
unsafe impl Sync for SharedPtr {}

impl SharedPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Geometry shared by the steps of one call.
struct Plan {
    /// Spread the GEMMs over rayon's threads.
    parallel: bool,
    n: usize,
    oh: usize,
    ow: usize,
    th: usize,
    tw: usize,
    /// Padded input covering whole tiles.
    ph: usize,
    pw: usize,
}

impl Winograd3x3 {
    /// Transforms a 3×3 stride-1 convolution's weights; `None` for any other kernel.
    pub fn new(conv: &Conv2d) -> Option<Self> {
        if (conv.kh, conv.kw, conv.stride_y, conv.stride_x) != (3, 3, 1, 1) {
            return None;
        }
        let (oc, ic) = (conv.out_channels, conv.in_channels);
        // G g Gᵀ of every (out, in) filter, in f64 rounded once, written straight into the
        // GEMMs' position-major layout. One task per output channel (a 256-channel layer has
        // 65536 filters; this is most of the descriptor network's load time), eight input
        // channels at a time so that the f64 arithmetic runs in vector lanes.
        let mut u = Vec::<f32>::with_capacity(A2 * oc * ic);
        let dst = SharedPtr(u.as_mut_ptr());
        // Index loops over the small fixed matrices read most plainly as the formulas.
        #[allow(clippy::needless_range_loop)]
        (0..oc).into_par_iter().for_each(|o| {
            const F: usize = 8;
            for c0 in (0..ic).step_by(F) {
                let nf = F.min(ic - c0);
                let mut g = [[0f64; F]; 9];
                for f in 0..nf {
                    let w = &conv.weights[(o * ic + c0 + f) * 9..][..9];
                    for (t, v) in w.iter().enumerate() {
                        g[t][f] = *v as f64;
                    }
                }
                // gg = G g (6×3), then G gg ᵀ... row by row: u_ij = Σ_k gg_ik G_jk.
                let mut gg = [[[0f64; F]; 3]; A];
                for i in 0..A {
                    for j in 0..3 {
                        for f in 0..F {
                            gg[i][j][f] =
                                G[i][0] * g[j][f] + G[i][1] * g[3 + j][f] + G[i][2] * g[6 + j][f];
                        }
                    }
                }
                for i in 0..A {
                    for j in 0..A {
                        let mut v = [0f32; F];
                        for f in 0..F {
                            v[f] = (gg[i][0][f] * G[j][0]
                                + gg[i][1][f] * G[j][1]
                                + gg[i][2][f] * G[j][2]) as f32;
                        }
                        let q = i * A + j;
                        // SAFETY: element (q, o, c0..c0+nf) of the A2 × oc × ic buffer; no
                        // other task writes row o.
                        unsafe {
                            let to = dst.get().add((q * oc + o) * ic + c0);
                            if nf == F {
                                // A constant length: a vector store, not a call to memmove.
                                std::ptr::copy_nonoverlapping(v.as_ptr(), to, F);
                            } else {
                                std::ptr::copy_nonoverlapping(v.as_ptr(), to, nf);
                            }
                        }
                    }
                }
            }
        });
        // SAFETY: the loop above wrote every (q, o, c) element.
        unsafe { u.set_len(A2 * oc * ic) };
        Some(Winograd3x3 {
            out_channels: oc,
            in_channels: ic,
            pad_y: conv.pad_y,
            pad_x: conv.pad_x,
            u,
            bias: conv.bias.clone().unwrap_or_else(|| vec![0.0; oc]),
        })
    }

    /// Output height and width for an `h × w` input.
    pub fn out_shape(&self, h: usize, w: usize) -> (usize, usize) {
        (
            Conv2d::out_size(h, 3, 1, self.pad_y),
            Conv2d::out_size(w, 3, 1, self.pad_x),
        )
    }

    /// Whether Winograd beats im2col for `n` samples of `h × w` (measured on the ResNet's
    /// layers): most of each 4×4 tile must be real output, and either 8 samples fill the
    /// transforms' vector lanes or there are at least 8 tiles to amortise the weights, which
    /// are 4× larger than the 3×3 ones.
    pub fn pays_off(&self, n: usize, h: usize, w: usize) -> bool {
        let (oh, ow) = self.out_shape(h, w);
        let tiles = n * oh.div_ceil(M) * ow.div_ceil(M);
        let used = (n * oh * ow) as f64 / (tiles * M * M).max(1) as f64;
        used >= 0.7 && (n >= LANES || tiles >= LANES)
    }

    /// The convolution of every sample followed by `epilogue` (as [`Conv2d::forward_batch`]).
    pub fn forward_batch(&self, x: &BatchTensor, epilogue: Epilogue<'_>) -> BatchTensor {
        self.forward(x, epilogue, false)
    }

    /// [`forward_batch`](Self::forward_batch) with its 36 GEMMs spread over rayon's threads.
    pub fn forward_batch_par(&self, x: &BatchTensor, epilogue: Epilogue<'_>) -> BatchTensor {
        self.forward(x, epilogue, rayon::current_num_threads() > 1)
    }

    fn forward(&self, x: &BatchTensor, epilogue: Epilogue<'_>, parallel: bool) -> BatchTensor {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = BatchTensor::zeros(self.out_channels, x.n, oh, ow);
        let cols_total = x.n * oh * ow;
        if cols_total == 0 || self.out_channels == 0 {
            return out;
        }
        if let Some(r) = epilogue.residual {
            assert!(
                r.len() % cols_total == 0 && r.len() <= out.data.len(),
                "residual must be a channel prefix of the output"
            );
        }
        let (th, tw) = (oh.div_ceil(M), ow.div_ceil(M));
        let plan = Plan {
            parallel,
            n: x.n,
            oh,
            ow,
            th,
            tw,
            ph: th * M + 2,
            pw: tw * M + 2,
        };
        // Taken out of the thread-local (not borrowed in a closure) so that the loops below
        // are compiled inside `run_avx2`, with its target features.
        let mut scratch = SCRATCH.with(|s| s.take());
        let whole_blocks = x.n / LANES * LANES;
        let parts = [
            (Layout::Samples, 0..whole_blocks),
            (Layout::Channels, whole_blocks..x.n),
        ];
        for (layout, samples) in parts {
            if samples.is_empty() {
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                unsafe {
                    self.run_avx2(layout, &plan, x, samples, epilogue, &mut out, &mut scratch)
                };
                continue;
            }
            self.run(layout, &plan, x, samples, epilogue, &mut out, &mut scratch);
        }
        SCRATCH.with(|s| s.replace(scratch));
        out
    }

    /// [`run`](Self::run) compiled for AVX2, so the transforms use 8-wide vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn run_avx2(
        &self,
        layout: Layout,
        plan: &Plan,
        x: &BatchTensor,
        samples: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
        out: &mut BatchTensor,
        scratch: &mut Scratch,
    ) {
        self.run(layout, plan, x, samples, epilogue, out, scratch)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        layout: Layout,
        plan: &Plan,
        x: &BatchTensor,
        samples: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
        out: &mut BatchTensor,
        scratch: &mut Scratch,
    ) {
        match layout {
            Layout::Samples => self.run_samples(plan, x, samples, epilogue, out, scratch),
            Layout::Channels => self.run_channels(plan, x, samples, epilogue, out, scratch),
        }
    }

    /// The 36 GEMMs of one chunk, `M[q] (out × cols) = U[q] (out × in) · V[q] (in × cols)`,
    /// on this thread or spread over rayon's. V[q] starts at `v[q·v_q]` with element (c, col)
    /// at `c·v_rs + col·v_cs`; M[q] likewise in `m`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gemms(
        &self,
        parallel: bool,
        cols: usize,
        v: &[f32],
        (v_q, v_rs, v_cs): (usize, usize, usize),
        m: &mut [f32],
        (m_q, m_rs, m_cs): (usize, usize, usize),
    ) {
        let (oc, ic) = (self.out_channels, self.in_channels);
        let last = |q: usize, rows: usize, rs: usize, cs: usize, stride_q: usize| {
            q * stride_q + (rows - 1) * rs + (cols - 1) * cs
        };
        if cols == 0 || oc == 0 || ic == 0 {
            return;
        }
        assert!(last(A2 - 1, ic, v_rs, v_cs, v_q) < v.len());
        assert!(last(A2 - 1, oc, m_rs, m_cs, m_q) < m.len());
        let (v, m) = (SharedPtr(v.as_ptr() as *mut f32), SharedPtr(m.as_mut_ptr()));
        let one = |q: usize| {
            // SAFETY: U[q], V[q] and M[q] lie inside `u`, `v` and `m` (the asserts above
            // check the last element of the last q); GEMMs of different q write disjoint
            // elements of M.
            unsafe {
                gemm::gemm(
                    oc,
                    cols,
                    ic,
                    m.get().add(q * m_q),
                    m_cs as isize,
                    m_rs as isize,
                    false,
                    self.u.as_ptr().add(q * oc * ic),
                    1,
                    ic as isize,
                    v.get().add(q * v_q),
                    v_cs as isize,
                    v_rs as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        };
        if parallel {
            (0..A2).into_par_iter().for_each(one);
        } else {
            (0..A2).for_each(one);
        }
    }

    /// Writes one output row of channel `o`, sample `b`, from `value(ox)`, adding bias and
    /// residual and applying the ReLU.
    #[inline(always)]
    fn finish_row(
        &self,
        plan: &Plan,
        epilogue: Epilogue<'_>,
        out: &mut [f32],
        (o, b, oy): (usize, usize, usize),
        value: impl Fn(usize) -> f32,
    ) {
        let cols_total = plan.n * plan.oh * plan.ow;
        let idx = ((o * plan.n + b) * plan.oh + oy) * plan.ow;
        let dst = &mut out[idx..idx + plan.ow];
        let bias = self.bias[o];
        let residual = epilogue
            .residual
            .filter(|r| (o + 1) * cols_total <= r.len())
            .map(|r| &r[idx..idx + plan.ow]);
        let relu = epilogue.relu;
        match residual {
            Some(r) => {
                for (ox, (d, r)) in dst.iter_mut().zip(r).enumerate() {
                    let v = value(ox) + bias + *r;
                    *d = if relu { crate::simd::relu(v) } else { v };
                }
            }
            None => {
                for (ox, d) in dst.iter_mut().enumerate() {
                    let v = value(ox) + bias;
                    *d = if relu { crate::simd::relu(v) } else { v };
                }
            }
        }
    }

    /// Lanes = 8 channels. `padded` and `full` are laid out (channel block, sample, row,
    /// column, channel lane); the GEMM operands are column-major with the channels of one
    /// tile contiguous: V is (column, q, in channel) and M (column, q, out channel).
    #[inline(always)]
    fn run_channels(
        &self,
        plan: &Plan,
        x: &BatchTensor,
        samples: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
        out: &mut BatchTensor,
        scratch: &mut Scratch,
    ) {
        let (ic, oc) = (self.in_channels, self.out_channels);
        let Plan {
            th, tw, ph, pw, oh, ..
        } = *plan;
        let (fh, fw) = (th * M, tw * M);
        let ns = samples.len();
        let (icb, ocb) = (ic.div_ceil(LANES), oc.div_ceil(LANES));
        let (icp, ocp) = (icb * LANES, ocb * LANES);
        let Scratch {
            padded, v, m, full, ..
        } = scratch;
        padded.resize(icb * ns * ph * pw * LANES, 0.0);
        // Zero only the padding (and the lanes of missing channels): the rest is overwritten.
        let (py0, px0, h, w) = (self.pad_y, self.pad_x, x.h, x.w);
        for plane in padded.chunks_exact_mut(ph * pw * LANES) {
            plane[..py0 * pw * LANES].fill(0.0);
            plane[(py0 + h) * pw * LANES..].fill(0.0);
            for row in plane[py0 * pw * LANES..(py0 + h) * pw * LANES].chunks_exact_mut(pw * LANES)
            {
                row[..px0 * LANES].fill(0.0);
                row[(px0 + w) * LANES..].fill(0.0);
            }
        }
        if ic % LANES != 0 {
            padded[(icb - 1) * ns * ph * pw * LANES..].fill(0.0);
        }
        for c in 0..ic {
            let (cb, l) = (c / LANES, c % LANES);
            for (s, b) in samples.clone().enumerate() {
                let plane = x.plane(c, b);
                for (y, row) in plane.chunks_exact(w).enumerate() {
                    let at = (((cb * ns + s) * ph + y + py0) * pw + px0) * LANES + l;
                    for (d, v) in padded[at..].iter_mut().step_by(LANES).zip(row) {
                        *d = *v;
                    }
                }
            }
        }
        full.resize(ocb * ns * fh * fw * LANES, 0.0);
        let tiles = ns * th * tw;
        let chunk = (CHUNK_FLOATS / (A2 * icp.max(ocp))).clamp(16, tiles.max(16));
        v.resize(A2 * icp * chunk, 0.0);
        m.resize(A2 * ocp * chunk, 0.0);
        let tile_of = |t: usize| {
            let (s, r) = (t / (th * tw), t % (th * tw));
            (s, (r / tw) * M, (r % tw) * M)
        };
        let mut t0 = 0;
        while t0 < tiles {
            let tc = chunk.min(tiles - t0);
            for t in t0..t0 + tc {
                let (s, y0, x0) = tile_of(t);
                let col = t - t0;
                for cb in 0..icb {
                    let base = ((cb * ns + s) * ph + y0) * pw + x0;
                    let mut d = [[[0f32; LANES]; A]; A];
                    for (i, row) in d.iter_mut().enumerate() {
                        for (j, cell) in row.iter_mut().enumerate() {
                            *cell = load(padded, (base + i * pw + j) * LANES);
                        }
                    }
                    input_tiles(&d, |q, val| {
                        store(v, (col * A2 + q) * icp + cb * LANES, val)
                    });
                }
            }
            // Column-major: element (channel, column) at column·36·icp + channel.
            self.gemms(
                plan.parallel,
                tc,
                v,
                (icp, 1, A2 * icp),
                m,
                (ocp, 1, A2 * ocp),
            );
            for t in t0..t0 + tc {
                let (s, y0, x0) = tile_of(t);
                let col = t - t0;
                for ob in 0..ocb {
                    let mut mm = [[[0f32; LANES]; A]; A];
                    for (q, cell) in mm.iter_mut().flatten().enumerate() {
                        *cell = load(m, (col * A2 + q) * ocp + ob * LANES);
                    }
                    let y = output_tiles(&mm);
                    let base = ((ob * ns + s) * fh + y0) * fw + x0;
                    for (yy, row) in y.iter().enumerate() {
                        for (xx, val) in row.iter().enumerate() {
                            store(full, (base + yy * fw + xx) * LANES, val);
                        }
                    }
                }
            }
            t0 += tc;
        }
        for o in 0..oc {
            let (ob, l) = (o / LANES, o % LANES);
            for (s, b) in samples.clone().enumerate() {
                for oy in 0..oh {
                    let at = ((ob * ns + s) * fh + oy) * fw * LANES + l;
                    let src = &full[at..at + (plan.ow - 1) * LANES + 1];
                    self.finish_row(plan, epilogue, &mut out.data, (o, b, oy), |ox| {
                        src[ox * LANES]
                    });
                }
            }
        }
    }

    /// Lanes = 8 samples. `padded` and `full` are laid out (channel, sample block, row,
    /// column, sample lane), so each tile value of 8 samples is one contiguous block.
    #[inline(always)]
    fn run_samples(
        &self,
        plan: &Plan,
        x: &BatchTensor,
        samples: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
        out: &mut BatchTensor,
        scratch: &mut Scratch,
    ) {
        let (ic, oc) = (self.in_channels, self.out_channels);
        let Plan {
            th,
            tw,
            ph,
            pw,
            oh,
            ow,
            ..
        } = *plan;
        let (fh, fw) = (th * M, tw * M);
        let blocks = samples.len() / LANES;
        let Scratch {
            padded, v, m, full, ..
        } = scratch;
        padded.resize(ic * blocks * ph * pw * LANES, 0.0);
        // Zero only the padding: everything else is overwritten below.
        let (py0, px0, h, w) = (self.pad_y, self.pad_x, x.h, x.w);
        for plane in padded.chunks_exact_mut(ph * pw * LANES) {
            plane[..py0 * pw * LANES].fill(0.0);
            plane[(py0 + h) * pw * LANES..].fill(0.0);
            for row in plane[py0 * pw * LANES..(py0 + h) * pw * LANES].chunks_exact_mut(pw * LANES)
            {
                row[..px0 * LANES].fill(0.0);
                row[(px0 + w) * LANES..].fill(0.0);
            }
        }
        for c in 0..ic {
            for (s, b) in samples.clone().enumerate() {
                let (kb, l) = (s / LANES, s % LANES);
                let plane = x.plane(c, b);
                for (y, row) in plane.chunks_exact(x.w).enumerate() {
                    let at = (((c * blocks + kb) * ph + y + self.pad_y) * pw + self.pad_x) * LANES;
                    for (xx, v) in row.iter().enumerate() {
                        padded[at + xx * LANES + l] = *v;
                    }
                }
            }
        }
        // Every value of `full` is written before it is read: no need to clear it.
        full.resize(oc * blocks * fh * fw * LANES, 0.0);
        let tiles = blocks * th * tw;
        let chunk = (CHUNK_FLOATS / (A2 * ic.max(oc) * LANES)).clamp(16, tiles.max(16));
        v.resize(A2 * ic * chunk * LANES, 0.0);
        m.resize(A2 * oc * chunk * LANES, 0.0);
        let tile_of = |t: usize| {
            let (kb, r) = (t / (th * tw), t % (th * tw));
            (kb, (r / tw) * M, (r % tw) * M)
        };
        let mut t0 = 0;
        while t0 < tiles {
            let tc = chunk.min(tiles - t0);
            let pitch = tc * LANES;
            for c in 0..ic {
                for t in t0..t0 + tc {
                    let (kb, y0, x0) = tile_of(t);
                    let base = ((c * blocks + kb) * ph + y0) * pw + x0;
                    let mut d = [[[0f32; LANES]; A]; A];
                    for (i, row) in d.iter_mut().enumerate() {
                        for (j, cell) in row.iter_mut().enumerate() {
                            *cell = load(padded, (base + i * pw + j) * LANES);
                        }
                    }
                    let col = (t - t0) * LANES;
                    input_tiles(&d, |q, val| store(v, (c * A2 + q) * pitch + col, val));
                }
            }
            // Layout (channel, q, column): element (channel, column) at channel·36·pitch + column.
            self.gemms(
                plan.parallel,
                pitch,
                v,
                (pitch, A2 * pitch, 1),
                m,
                (pitch, A2 * pitch, 1),
            );
            for o in 0..oc {
                for t in t0..t0 + tc {
                    let (kb, y0, x0) = tile_of(t);
                    let col = (t - t0) * LANES;
                    let mut mm = [[[0f32; LANES]; A]; A];
                    for (q, cell) in mm.iter_mut().flatten().enumerate() {
                        *cell = load(m, (o * A2 + q) * pitch + col);
                    }
                    let y = output_tiles(&mm);
                    let base = ((o * blocks + kb) * fh + y0) * fw + x0;
                    for (yy, row) in y.iter().enumerate() {
                        for (xx, val) in row.iter().enumerate() {
                            store(full, (base + yy * fw + xx) * LANES, val);
                        }
                    }
                }
            }
            t0 += tc;
        }
        for o in 0..oc {
            for (s, b) in samples.clone().enumerate() {
                let (kb, l) = (s / LANES, s % LANES);
                for oy in 0..oh {
                    let at = ((o * blocks + kb) * fh + oy) * fw * LANES + l;
                    let src = &full[at..at + (ow - 1) * LANES + 1];
                    self.finish_row(plan, epilogue, &mut out.data, (o, b, oy), |ox| {
                        src[ox * LANES]
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn weight_transform_equals_the_plain_f64_formula() {
        // Channel counts that leave partial blocks of eight.
        for (oc, ic) in [(3, 5), (16, 13), (9, 24)] {
            let mut s = 12345u64 + (oc * ic) as u64;
            let weights: Vec<f32> = (0..oc * ic * 9)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect();
            let conv = Conv2d {
                out_channels: oc,
                in_channels: ic,
                kh: 3,
                kw: 3,
                stride_y: 1,
                stride_x: 1,
                pad_y: 1,
                pad_x: 1,
                weights,
                bias: None,
            };
            let w = Winograd3x3::new(&conv).unwrap();
            for o in 0..oc {
                for c in 0..ic {
                    let g = &conv.weights[(o * ic + c) * 9..][..9];
                    for i in 0..A {
                        for j in 0..A {
                            let gg = |k: usize| -> f64 {
                                (0..3).map(|t| G[i][t] * g[t * 3 + k] as f64).sum()
                            };
                            let want: f64 = (0..3).map(|k| gg(k) * G[j][k]).sum();
                            let got = w.u[((i * A + j) * oc + o) * ic + c];
                            assert_eq!(got, want as f32, "o={o} c={c} q={}", i * A + j);
                        }
                    }
                }
            }
        }
    }
}
