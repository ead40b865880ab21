//! One sample's 3×3, stride-1, padding-1 layers by Winograd's F(m×m, 3×3) (m = 2 or 4), on
//! activations kept in an m × m polyphase layout from layer to layer.
//!
//! Each m×m block of outputs (a tile) comes from the (m+2)×(m+2) input patch around it:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, (m+2)² multiply-adds per input channel where the
//! direct form does 9·m² (16 against 36 for m = 2, 36 against 144 for m = 4). The
//! element-wise products over all channels are (m+2)² small matrix products, run on the
//! direct convolution's register-blocked kernel.
//!
//! The layout ([`PhasePlanes`], see `crate::layout::phase`) is what makes the transforms
//! cheap for one sample: 16 consecutive tiles' patch values are plain vector loads and
//! their outputs plain stores, so no layer copies, gathers or scatters its activations. (A
//! tile row may wrap into the next at its last patch column, which only a tile's last
//! output column reads, in exact arithmetic and in the transforms' floats alike; those
//! outputs lie past the plane's edge and are stored as zeros.)
//!
//! The transforms are short sums with small exact coefficients, so the results differ from
//! direct convolution's by float rounding alone (the tests bound it).

use crate::forms::conv::Conv2d;
#[cfg(target_arch = "x86_64")]
use crate::forms::transforms::{at2, at4, bt2, bt4};
use crate::forms::transforms::{winograd_fits, winograd_weights};
use crate::kernels::{run_block, Block};
use crate::layout::phase::{Geometry, PhasePlanes};
use crate::simd::{Shared, LANES};
use crate::team::parallel_for;
use std::cell::RefCell;
use std::sync::OnceLock;

thread_local! {
    /// A chunk's transformed inputs and products, reused between calls on one thread.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A 3×3, stride-1, padding-1 convolution prepared for [`PhasePlanes`] of one tile side;
/// built only where the CPU has AVX-512F.
#[derive(Clone, Debug)]
pub struct PhaseWinograd {
    /// Output channels (filters).
    pub out_channels: usize,
    /// Input channels each filter reads.
    pub in_channels: usize,
    /// The output tile side (2 or 4).
    pub tile: usize,
    block: Block,
    /// Transformed weights `[ξ][channel block][in][OCB]`, padded with zero filters.
    u: Vec<f32>,
    bias: Vec<f32>,
    /// `OCB` zeros: the products have no bias (it is added after the output transform).
    zeros: Vec<f32>,
    /// The lane masks and offsets of the first input geometry seen (a layer of one network
    /// always sees the same), so that calls do not recompute them.
    plan: OnceLock<Plan>,
}

/// What [`PhaseWinograd::forward`] derives from the input's geometry alone.
#[derive(Clone, Debug)]
struct Plan {
    geometry: Geometry,
    /// `masks[v·m² + dy·m + dx]`: the lanes of tile vector `v` with a real output `(dy, dx)`.
    masks: Vec<u16>,
    /// Where patch value `(r, c)` of tile 0 is (index `r·(m+2) + c`), and where output
    /// `(dy, dx)` of tile 0 goes (index `dy·m + dx`), in a channel.
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// Where each phase's first tile output is: phase (a, b) takes output (dy, dx) with
    /// dy + 1 ≡ a, dx + 1 ≡ b (mod m).
    heads: Vec<usize>,
}

impl Plan {
    fn new(g: Geometry) -> Self {
        let (m, a) = (g.m, g.m + 2);
        Plan {
            geometry: g,
            masks: (0..g.vectors)
                .flat_map(|v| (0..m * m).map(move |k| g.valid(v, k / m, k % m)))
                .collect(),
            inputs: (0..a * a).map(|k| g.at(k / a, k % a)).collect(),
            outputs: (0..m * m).map(|k| g.out_at(k / m, k % m)).collect(),
            heads: (0..m * m)
                .map(|k| g.out_at((k / m + m - 1) % m, (k % m + m - 1) % m) % g.phase_len)
                .collect(),
        }
    }

    /// Zeroes what no tile writes in `channels` of the output at `dst`: each phase's head
    /// before its first output (`heads`) and its tail after its last (`tails`): the border
    /// above and left, and past the plane.
    ///
    /// # Safety
    /// `dst` holds these channels of the plan's geometry, and no other task writes there.
    unsafe fn zero_unwritten(
        &self,
        dst: Shared,
        channels: std::ops::Range<usize>,
        heads: bool,
        tails: bool,
    ) {
        let g = &self.geometry;
        let written = g.vectors * LANES;
        for c in channels {
            let chan = std::slice::from_raw_parts_mut(dst.get().add(c * g.chan()), g.chan());
            for (phase, &off) in chan.chunks_exact_mut(g.phase_len).zip(&self.heads) {
                if heads {
                    phase[..off].fill(0.0);
                }
                if tails {
                    phase[off + written..].fill(0.0);
                }
            }
        }
    }
}

impl PhaseWinograd {
    /// F(`tile`×`tile`, 3×3) for `conv` (`tile` 2 or 4); `None` unless `conv` is 3×3,
    /// stride 1, padding 1 and the CPU has AVX-512F.
    pub fn new(conv: &Conv2d, tile: usize) -> Option<Self> {
        if !winograd_fits(conv) || !matches!(tile, 2 | 4) {
            return None;
        }
        let oc = conv.out_channels;
        // One tile vector by 16 filters: a task per vector, so that two threads share a
        // plane's vectors evenly.
        let block = Block::C16V1;
        let ocb = block.channels();
        let blocks = oc.div_ceil(ocb);
        let mut bias = conv.bias.clone().unwrap_or_else(|| vec![0.0; oc]);
        bias.resize(blocks * ocb, 0.0);
        Some(PhaseWinograd {
            out_channels: oc,
            in_channels: conv.in_channels,
            tile,
            block,
            u: winograd_weights(conv, ocb, tile),
            bias,
            zeros: vec![0.0; ocb],
            plan: OnceLock::new(),
        })
    }

    /// The transformed weights, in the order [`forward`](Self::forward) reads them (for a
    /// previous layer to prefetch).
    pub fn weights(&self) -> &[f32] {
        &self.u
    }

    /// The layer on `x` (laid out for this layer's tile side), then `residual` added
    /// (dlib's `add_prev`: the output's size and layout, and its first channels or all of
    /// them) and the ReLU where `relu`; meanwhile `ahead`'s cache lines (the next layer's
    /// weights) are prefetched towards the L2 cache, a share per task.
    pub fn forward(
        &self,
        x: &PhasePlanes,
        residual: Option<&PhasePlanes>,
        relu: bool,
        parallel: bool,
        ahead: &[f32],
    ) -> PhasePlanes {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        assert_eq!(x.tile(), self.tile, "phase layout's tile side");
        let g = x.geometry;
        let (ic, oc, m) = (self.in_channels, self.out_channels, self.tile);
        let a2 = (m + 2) * (m + 2);
        if let Some(r) = residual {
            assert!(r.c <= oc && r.geometry == g, "residual shape");
        }
        let mut out = PhasePlanes::uninit(oc, x.h, x.w, m);
        let cv = self.block.vectors();
        // Chunks of whole register blocks of tile vectors, none past the layout's.
        let padded_vectors = g.vectors.next_multiple_of(cv);
        assert_eq!(padded_vectors, g.vectors, "a block of one tile vector");
        let fresh;
        let plan = match self.plan.get_or_init(|| Plan::new(g)) {
            p if p.geometry == g => p,
            _ => {
                fresh = Plan::new(g);
                &fresh
            }
        };
        let (masks, inputs, outputs) = (&plan.masks, &plan.inputs, &plan.outputs);
        let dst = Shared(out.data.as_mut_ptr());
        let (ocb, blocks) = (self.block.channels(), oc.div_ceil(self.block.channels()));
        let chunks = padded_vectors / cv;
        // Few chunks (a 17×17 plane has two vectors of 4×4 tiles): each also split by
        // filters, so that no thread waits long for the other's last piece; each part
        // transforms its chunk's inputs again, a small cost against its products.
        let parts = (4 / chunks).clamp(1, blocks);
        let ahead_lines = (ahead.len() * 4).div_ceil(64);
        let task = |piece: usize| {
            let (chunk, part) = (piece / parts, piece % parts);
            let pieces = chunks * parts;
            let share = piece * ahead_lines / pieces..(piece + 1) * ahead_lines / pieces;
            let filter_blocks = part * blocks / parts..(part + 1) * blocks / parts;
            let filters = filter_blocks.start * ocb..(filter_blocks.end * ocb).min(oc);
            // SAFETY: the heads and tails of these filters' channels lie outside every
            // tile's outputs, and only this chunk's part for them zeroes them.
            unsafe {
                plan.zero_unwritten(dst, filters.clone(), chunk == 0, chunk + 1 == chunks);
            }
            SCRATCH.with(|s| {
                let (v_buf, m_buf) = &mut *s.borrow_mut();
                let cols = cv * LANES;
                // One cache line more per ξ than the values take: streams a power of two
                // apart alias in the L1 cache's sets.
                let v_stride = ic * cols + LANES;
                let m_stride = blocks * ocb * cols + LANES;
                if v_buf.len() < a2 * v_stride {
                    v_buf.resize(a2 * v_stride, 0.0);
                }
                if m_buf.len() < a2 * m_stride {
                    m_buf.resize(a2 * m_stride, 0.0);
                }
                let first = chunk * cv;
                let tiles = Tiles {
                    g: &g,
                    first,
                    count: cv,
                };
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("built only with AVX-512F");
                // SAFETY: AVX-512F (checked in `new`); the chunk's loads stay inside the
                // phase planes (`phase_len` covers the vectors plus `pitch + 1`), and its
                // stores are its own tiles' outputs.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    if m == 2 {
                        input_transform::<4, 2, F2>(&x.data, &tiles, inputs, ic, v_buf, v_stride);
                    } else {
                        input_transform::<6, 4, F4>(&x.data, &tiles, inputs, ic, v_buf, v_stride);
                    }
                    // The task's share of `ahead`, a part per product.
                    let per_product = share.len().div_ceil(a2);
                    let mut line = share.start;
                    for xi in 0..a2 {
                        let end = (line + per_product).min(share.end);
                        for line in line..end {
                            let at = ahead.as_ptr().cast::<i8>().wrapping_add(line * 64);
                            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                                at,
                            );
                        }
                        line = end;
                        let src = v_buf.as_ptr().add(xi * v_stride);
                        for b in filter_blocks.clone() {
                            let w = &self.u[(xi * blocks + b) * ic * ocb..][..ic * ocb];
                            let mp = m_buf.as_mut_ptr().add(xi * m_stride + b * ocb * cols);
                            run_block(
                                self.block,
                                src,
                                cols,
                                &[0],
                                ic,
                                w,
                                &self.zeros,
                                false,
                                mp,
                                cols,
                            );
                        }
                    }
                    let epilogue = Epilogue {
                        bias: &self.bias,
                        residual: residual.map(|r| &r.data[..r.c * g.chan()]),
                        relu,
                        masks,
                        outputs,
                        dst,
                    };
                    if m == 2 {
                        output_transform::<4, 2, F2>(m_buf, m_stride, filters, &tiles, &epilogue);
                    } else {
                        output_transform::<6, 4, F4>(m_buf, m_stride, filters, &tiles, &epilogue);
                    }
                }
            })
        };
        parallel_for(chunks * parts, parallel, &task);
        out
    }
}

/// A task's tile vectors: `first..first + count` of geometry `g`.
struct Tiles<'a> {
    g: &'a Geometry,
    first: usize,
    count: usize,
}

/// What follows the output transform: bias, residual, ReLU, then the store of each output
/// `(dy, dx)` (index `dy·m + dx`) at `outputs[k] + t` of its channel, masked by
/// `masks[v·m² + k]` (zeros elsewhere).
struct Epilogue<'a> {
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    relu: bool,
    masks: &'a [u16],
    outputs: &'a [usize],
    dst: Shared,
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::__m512;

/// The input and output transforms of one tile size along one axis, 16 tiles per vector:
/// `Bᵀ x` over a patch side of `A` values, `Aᵀ x` from `A` products to `M` outputs.
#[cfg(target_arch = "x86_64")]
trait Transforms<const A: usize, const M: usize> {
    unsafe fn bt(d: [__m512; A]) -> [__m512; A];
    unsafe fn at(m: [__m512; A]) -> [__m512; M];
}

/// F(2×2, 3×3).
#[cfg(target_arch = "x86_64")]
struct F2;
/// F(4×4, 3×3).
#[cfg(target_arch = "x86_64")]
struct F4;

#[cfg(target_arch = "x86_64")]
impl Transforms<4, 2> for F2 {
    #[inline(always)]
    unsafe fn bt(d: [__m512; 4]) -> [__m512; 4] {
        bt2(d)
    }
    #[inline(always)]
    unsafe fn at(m: [__m512; 4]) -> [__m512; 2] {
        at2(m)
    }
}

#[cfg(target_arch = "x86_64")]
impl Transforms<6, 4> for F4 {
    #[inline(always)]
    unsafe fn bt(d: [__m512; 6]) -> [__m512; 6] {
        bt4(d)
    }
    #[inline(always)]
    unsafe fn at(m: [__m512; 6]) -> [__m512; 4] {
        at4(m)
    }
}

/// `Bᵀ d B` (patch side `A`) for every input channel of the task's tile vectors, into
/// `v[ξ][channel][count·16]` at `xi_stride` floats per ξ.
///
/// # Safety
/// AVX-512F; `x` holds `ic` channels of the tiles' geometry, `inputs` the `A²` patch
/// offsets, and every load stays inside them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
unsafe fn input_transform<const A: usize, const M: usize, T: Transforms<A, M>>(
    x: &[f32],
    tiles: &Tiles<'_>,
    inputs: &[usize],
    ic: usize,
    v: &mut [f32],
    xi_stride: usize,
) {
    use std::arch::x86_64::*;
    let cols = tiles.count * LANES;
    for c in 0..ic {
        let base = x.as_ptr().add(c * tiles.g.chan());
        for k in 0..tiles.count {
            let t = (tiles.first + k) * LANES;
            // Along y (each patch column), then along x.
            let mut s = [[_mm512_setzero_ps(); A]; A];
            for col in 0..A {
                let column = T::bt(std::array::from_fn(|r| {
                    _mm512_loadu_ps(base.add(inputs[r * A + col] + t))
                }));
                for r in 0..A {
                    s[r][col] = column[r];
                }
            }
            let out = v.as_mut_ptr().add(c * cols + k * LANES);
            for (r, row) in s.iter().enumerate() {
                for (col, val) in T::bt(*row).iter().enumerate() {
                    _mm512_storeu_ps(out.add((r * A + col) * xi_stride), *val);
                }
            }
        }
    }
}

/// `Aᵀ m A` (patch side `A`, tile side `M`) for every output channel of the task's tile
/// vectors, then the epilogue.
///
/// # Safety
/// AVX-512F; `m` holds `m[ξ][channel][count·16]` at `xi_stride` floats per ξ; the
/// epilogue's `dst` holds `oc` channels of the tiles' geometry, its `residual` (if any) the
/// first channels, whole; no other task stores these tiles' outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
unsafe fn output_transform<const A: usize, const M: usize, T: Transforms<A, M>>(
    m: &[f32],
    xi_stride: usize,
    filters: std::ops::Range<usize>,
    tiles: &Tiles<'_>,
    e: &Epilogue<'_>,
) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    let (cols, chan) = (tiles.count * LANES, tiles.g.chan());
    for o in filters {
        let b = _mm512_set1_ps(e.bias[o]);
        let residual = e.residual.filter(|r| o * chan < r.len());
        for k in 0..tiles.count {
            let src = m.as_ptr().add(o * cols + k * LANES);
            // Along y (each column of products), then along x.
            let mut s = [[zero; A]; M];
            for c in 0..A {
                let column = T::at(std::array::from_fn(|r| {
                    _mm512_loadu_ps(src.add((r * A + c) * xi_stride))
                }));
                for dy in 0..M {
                    s[dy][c] = column[dy];
                }
            }
            let v = tiles.first + k;
            let t = v * LANES;
            for (dy, row) in s.iter().enumerate() {
                for (dx, val) in T::at(*row).iter().enumerate() {
                    let idx = dy * M + dx;
                    let off = o * chan + e.outputs[idx] + t;
                    let mut r = _mm512_add_ps(*val, b);
                    if let Some(res) = residual {
                        r = _mm512_add_ps(r, _mm512_loadu_ps(res.as_ptr().add(off)));
                    }
                    if e.relu {
                        r = _mm512_max_ps(r, zero);
                    }
                    let keep = e.masks[v * M * M + idx];
                    _mm512_storeu_ps(e.dst.get().add(off), _mm512_maskz_mov_ps(keep, r));
                }
            }
        }
    }
}
