//! Winograd F(4×4, 3×3) for one sample, on the direct kernels' layout and register blocks.
//!
//! [`crate::Winograd3x3`] runs its 36 products as `gemm` calls, which for one sample's few
//! tiles cost more in packing than they save. Here the padded input is split into 4 × 4
//! phases (the direct convolution's polyphase layout with stride 4), which lays the tiles
//! out on a grid where tile `t` reads input value `(i, j)` of its 6 × 6 patch at
//! `t + offset(i, j)`: the input transform then runs on 16 tiles per vector with plain loads,
//! the 36 products are the direct kernel with one tap per input channel, and the output
//! transform again works on 16 tiles at once.
//!
//! The transformed weights are [`crate::Winograd3x3`]'s; the sums differ from direct
//! convolution by float rounding (the tests bound it).

use crate::direct::{run_block, Block, Geometry, Planes, PolyphaseFill, Shared, LANES};
use crate::team::parallel_for;
use crate::{BatchTensor, Conv2d, DirectConv, Epilogue, Tensor, Winograd3x3};
use std::cell::RefCell;

/// Output tile side, input tile side, and values per transformed tile.
const M: usize = 4;
const A: usize = M + 2;
const A2: usize = A * A;

thread_local! {
    /// The output transform's tile outputs and row: reused between calls on one thread.
    #[cfg(target_arch = "x86_64")]
    static OUTPUT_SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// Polyphase input, transformed input, products: reused between calls on one thread.
    static BUFFERS: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// A 3×3 stride-1 convolution prepared for one-sample Winograd with the direct kernels;
/// built only where the CPU has AVX-512F.
#[derive(Clone, Debug)]
pub struct DirectWinograd {
    pub out_channels: usize,
    pub in_channels: usize,
    pub pad_y: usize,
    pub pad_x: usize,
    block: Block,
    /// Transformed weights `[q][channel block][in][OCB]`, padded with zero filters.
    u: Vec<f32>,
    bias: Vec<f32>,
    /// `OCB` zeros: the products have no bias (it is added after the output transform).
    zeros: Vec<f32>,
}

/// The tile grid of one call: `th` tile rows of `wh` tiles (the last column of tiles past the
/// output is computed and dropped), `tiles` rounded up to whole register blocks.
#[derive(Clone, Copy, Debug)]
struct Tiles {
    g: Geometry,
    th: usize,
    tw: usize,
}

impl DirectWinograd {
    /// Prepares `conv` for inputs of about `size` (height, width), which choose the register
    /// block; `None` unless `conv` is 3×3 stride 1 and the CPU has AVX-512F.
    pub fn new(conv: &Conv2d, size: (usize, usize)) -> Option<Self> {
        if !DirectConv::supported() {
            return None;
        }
        let w3 = Winograd3x3::new(conv)?;
        let (oc, ic) = (conv.out_channels, conv.in_channels);
        let mut d = DirectWinograd {
            out_channels: oc,
            in_channels: ic,
            pad_y: conv.pad_y,
            pad_x: conv.pad_x,
            block: Block::C8V3,
            u: Vec::new(),
            bias: conv.bias.clone().unwrap_or_else(|| vec![0.0; oc]),
            zeros: Vec::new(),
        };
        let t = d.tiles(size.0, size.1, Block::C16V1);
        let grid = t.th * t.g.wh;
        // Enough channel blocks (at least four) that both steps split well over threads.
        d.block = if grid > 64 && oc.is_multiple_of(8) {
            Block::C8V3
        } else {
            Block::choose(oc, grid)
        };
        let ocb = d.block.channels();
        let blocks = oc.div_ceil(ocb);
        let transformed = w3.transformed_weights();
        let mut u = vec![0f32; A2 * blocks * ic * ocb];
        for q in 0..A2 {
            for o in 0..oc {
                let (b, j) = (o / ocb, o % ocb);
                for c in 0..ic {
                    u[((q * blocks + b) * ic + c) * ocb + j] = transformed[(q * oc + o) * ic + c];
                }
            }
        }
        d.u = u;
        d.zeros = vec![0.0; ocb];
        Some(d)
    }

    /// Output height and width for an `h × w` input.
    pub fn out_shape(&self, h: usize, w: usize) -> (usize, usize) {
        (
            Conv2d::out_size(h, 3, 1, self.pad_y),
            Conv2d::out_size(w, 3, 1, self.pad_x),
        )
    }

    fn tiles(&self, h: usize, w: usize, block: Block) -> Tiles {
        let (oh, ow) = self.out_shape(h, w);
        let (th, tw) = (oh.div_ceil(M), ow.div_ceil(M));
        // Phase planes hold the padded input and every tile's 6×6 patch.
        let wh = (w + 2 * self.pad_x).div_ceil(M).max(tw + 1);
        let hh = (h + 2 * self.pad_y).div_ceil(M).max(th + 1);
        let step = block.vectors() * LANES;
        let grid = (th * wh).div_ceil(step) * step;
        let plane = (hh * wh).max(grid + wh + 1);
        Tiles {
            g: Geometry {
                oh,
                ow,
                wh,
                plane,
                chan: M * M * plane,
                grid,
            },
            th,
            tw,
        }
    }

    /// The convolution followed by `epilogue`, for a batch of one sample; with `parallel`,
    /// spread over rayon's threads.
    pub fn forward_batch_with(
        &self,
        x: &BatchTensor,
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) -> BatchTensor {
        assert_eq!(x.n, 1, "direct Winograd takes one sample");
        assert_eq!(x.c, self.in_channels, "conv input channels");
        let planes = Planes::packed(x.c, x.h, x.w, &x.data);
        let t = self.tiles(x.h, x.w, self.block);
        let g = t.g;
        let (oc, ic) = (self.out_channels, self.in_channels);
        let mut out = Tensor::zeros(oc, g.oh, g.ow);
        let plane = g.oh * g.ow;
        if plane == 0 || oc == 0 {
            return BatchTensor::from_tensor(out);
        }
        let residual_channels = epilogue.residual.map_or(0, |r| {
            assert!(
                r.len() % plane == 0 && r.len() <= out.data.len(),
                "residual must be a channel prefix of the output"
            );
            r.len() / plane
        });
        let ocb = self.block.channels();
        let blocks = oc.div_ceil(ocb);
        let tiles = g.grid;
        BUFFERS.with(|b| {
            let [input, v, m] = &mut *b.borrow_mut();
            input.resize(ic * g.chan, 0.0);
            v.resize(A2 * ic * tiles, 0.0);
            m.resize(A2 * blocks * ocb * tiles, 0.0);
            let offsets: Vec<usize> = (0..A2)
                .map(|q| {
                    let (i, j) = (q / A, q % A);
                    ((i % M) * M + j % M) * g.plane + (i / M) * g.wh + j / M
                })
                .collect();
            let parallel = parallel && rayon::current_num_threads() > 1;
            // Two steps, each one parallel loop: by input channel, its polyphase copy and
            // input transform (V[q][c][tile]); by output channel block, its 36 products
            // (M[q][o][tile]) and their output transforms with the epilogue.
            let fill = PolyphaseFill::new(planes, (M, M), (self.pad_y, self.pad_x), &g);
            let (ip, vp) = (Shared(input.as_mut_ptr()), Shared(v.as_mut_ptr()));
            let by_input = |c: usize| {
                // SAFETY: channel c alone writes its g.chan floats of `input` and
                // V[·][c][·]; `input` holds ic·g.chan floats.
                let chan =
                    unsafe { std::slice::from_raw_parts_mut(ip.get().add(c * g.chan), g.chan) };
                fill.channel(c, chan);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512F was detected in `new`; channel c's reads stay inside its
                // polyphase planes (see `tiles`).
                unsafe {
                    input_transform(chan.as_ptr(), &offsets, tiles, vp.get(), c, ic)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("built only with AVX-512F ({c}, {:?})", vp.get());
            };
            parallel_for(ic, parallel, &by_input);
            let (mp, op) = (Shared(m.as_mut_ptr()), Shared(out.data.as_mut_ptr()));
            let vref = &v[..];
            let by_output = |b: usize| {
                let k_len = ic * ocb;
                let step = self.block.vectors() * LANES;
                for q in 0..A2 {
                    let w = &self.u[(q * blocks + b) * k_len..][..k_len];
                    let src = vref[q * ic * tiles..].as_ptr();
                    for t0 in (0..tiles).step_by(step) {
                        // SAFETY: reads V[q][c][t0..t0 + step] for c < ic; writes rows
                        // b·ocb.. of M[q] at t0.., which only this task touches.
                        unsafe {
                            run_block(
                                self.block,
                                src.add(t0),
                                tiles,
                                &[0],
                                ic,
                                w,
                                &self.zeros,
                                false,
                                mp.get().add((q * blocks * ocb + b * ocb) * tiles + t0),
                                tiles,
                            );
                        }
                    }
                }
                for o in b * ocb..((b + 1) * ocb).min(oc) {
                    let res = (o < residual_channels)
                        .then(|| &epilogue.residual.expect("residual")[o * plane..(o + 1) * plane]);
                    // SAFETY: output channel o's plane, written by this task alone.
                    let dst =
                        unsafe { std::slice::from_raw_parts_mut(op.get().add(o * plane), plane) };
                    let mref = mp.get() as *const f32;
                    #[cfg(not(target_arch = "x86_64"))]
                    unreachable!(
                        "built only with AVX-512F ({o}, {}, {res:?}, {mref:?})",
                        dst.len()
                    );
                    // SAFETY: AVX-512F was detected in `new`; this task wrote rows b·ocb.. of
                    // every product above, and no other task writes them.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        output_transform(
                            mref,
                            o,
                            blocks * ocb,
                            &t,
                            self.bias[o],
                            res,
                            epilogue.relu,
                            dst,
                        )
                    };
                }
            };
            parallel_for(blocks, parallel, &by_output);
        });
        BatchTensor::from_tensor(out)
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m512, _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps};

/// F(4×4, 3×3)'s transforms along one axis, shared with the phase-plane form.
#[cfg(target_arch = "x86_64")]
use crate::phase::{at4 as at, bt4 as bt};

/// `Bᵀ d B` of channel `c`'s tiles, 16 at a time, into `v[q][c][tile]`.
///
/// # Safety
/// AVX-512F; `src + offsets[q] + tiles` readable; `v` holds `36 × ic × tiles` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// `nu` picks a column out of each row: an index loop says that most plainly.
#[allow(clippy::needless_range_loop)]
unsafe fn input_transform(
    src: *const f32,
    offsets: &[usize],
    tiles: usize,
    v: *mut f32,
    c: usize,
    ic: usize,
) {
    assert_eq!(offsets.len(), A2);
    for t0 in (0..tiles).step_by(LANES) {
        // Along x first (each patch row), then along y, as `Winograd3x3` does.
        let mut r = [[_mm512_set1_ps(0.0); A]; A];
        for (i, ri) in r.iter_mut().enumerate() {
            let row: [__m512; A] =
                std::array::from_fn(|j| _mm512_loadu_ps(src.add(offsets[i * A + j] + t0)));
            *ri = bt(row);
        }
        for nu in 0..A {
            let col = bt(std::array::from_fn(|i| r[i][nu]));
            for (xi, val) in col.into_iter().enumerate() {
                let q = xi * A + nu;
                _mm512_storeu_ps(v.add((q * ic + c) * tiles + t0), val);
            }
        }
    }
}

/// `Aᵀ m A` for output channel `o`, then bias, residual and ReLU into `dst` (`oh × ow`).
///
/// # Safety
/// AVX-512F; `m` points to `36 × rows × tiles` floats (`o < rows`) of which row `o` of every
/// product is written and not written concurrently (other rows may be).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn output_transform(
    m: *const f32,
    o: usize,
    rows: usize,
    t: &Tiles,
    bias: f32,
    residual: Option<&[f32]>,
    relu: bool,
    dst: &mut [f32],
) {
    let g = &t.g;
    let tiles = g.grid;
    assert!(o < rows);
    // The 4×4 outputs of every tile, phase by phase: y[r·4 + s][tile].
    // Scratch kept per thread: `y` is wholly written below before it is read.
    let mut scratch = OUTPUT_SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let (y, row_buf) = &mut scratch;
    y.resize(M * M * tiles, 0.0);
    row_buf.resize(t.tw * M, 0.0);
    let base = m;
    for t0 in (0..tiles).step_by(LANES) {
        let at_q = |q: usize| _mm512_loadu_ps(base.add((q * rows + o) * tiles + t0));
        // Along y first (each column), then along x, as `Winograd3x3` does.
        let mut s = [[_mm512_set1_ps(0.0); A]; M];
        for nu in 0..A {
            let col = at(std::array::from_fn(|i| at_q(i * A + nu)));
            for (yy, val) in col.into_iter().enumerate() {
                s[yy][nu] = val;
            }
        }
        for (yy, sr) in s.into_iter().enumerate() {
            for (xx, val) in at(sr).into_iter().enumerate() {
                _mm512_storeu_ps(y.as_mut_ptr().add((yy * M + xx) * tiles + t0), val);
            }
        }
    }
    let (oh, ow, wh, tw) = (g.oh, g.ow, g.wh, t.tw);
    debug_assert!(t.th * wh <= tiles && tw < wh);
    // One output row at a time: interleave the four column phases, then the epilogue on
    // the contiguous row (vectorised).
    for oy in 0..oh {
        let (ty, r) = (oy / M, oy % M);
        let phases: [&[f32]; M] =
            std::array::from_fn(|s| &y[(r * M + s) * tiles + ty * wh..][..tw]);
        for (tx, quad) in row_buf.chunks_exact_mut(M).enumerate() {
            quad[0] = phases[0][tx];
            quad[1] = phases[1][tx];
            quad[2] = phases[2][tx];
            quad[3] = phases[3][tx];
        }
        let vals = &row_buf[..ow];
        let row = &mut dst[oy * ow..(oy + 1) * ow];
        match (residual, relu) {
            (Some(res), true) => {
                let res = &res[oy * ow..(oy + 1) * ow];
                for ((d, v), rv) in row.iter_mut().zip(vals).zip(res) {
                    *d = crate::relu(*v + bias + *rv);
                }
            }
            (Some(res), false) => {
                let res = &res[oy * ow..(oy + 1) * ow];
                for ((d, v), rv) in row.iter_mut().zip(vals).zip(res) {
                    *d = *v + bias + *rv;
                }
            }
            (None, true) => {
                for (d, v) in row.iter_mut().zip(vals) {
                    *d = crate::relu(*v + bias);
                }
            }
            (None, false) => {
                for (d, v) in row.iter_mut().zip(vals) {
                    *d = *v + bias;
                }
            }
        }
    }
    OUTPUT_SCRATCH.with(|s| *s.borrow_mut() = scratch);
}
