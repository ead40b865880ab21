//! The register-blocked AVX-512 products, and nothing else: the block shapes (output
//! channels × vectors of outputs) and the two inner kernels every hand-written convolution
//! form runs on. `kernel` sums `OCB` output channels × `NV` vectors of consecutive grid
//! positions over (channel, tap), the input read at per-tap offsets (the direct grid form,
//! and the Winograd products with one tap per channel); `small_kernel` has the output
//! channels in the lanes and broadcasts each position's input (small planes, and the
//! small-plane Winograd products).
//!
//! Kept apart from the forms so that the direct convolution and the one-sample Winograd
//! forms share one copy of them without importing each other; they know nothing of layouts
//! (callers hand them pointers, offsets and pitches).

use crate::simd::Prefetch;
#[cfg(target_arch = "x86_64")]
use crate::simd::LANES;

/// A register-blocking shape: output channels × vectors of outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    /// 8 channels × 3 vectors.
    C8V3,
    /// 9 channels × 3 vectors.
    C9V3,
    /// 5 channels × 5 vectors.
    C5V5,
    /// 1 channel × 8 vectors.
    C1V8,
    /// 16 channels × 1 vector: for small planes (a few 16-output vectors in all).
    C16V1,
    /// 9 × 2 and 8 × 2: in the small-plane form, 9 or 8 output positions × 32 channels.
    C9V2,
    C8V2,
}

impl Block {
    /// The block for `oc` output channels over a grid of about `positions` outputs.
    pub(crate) fn choose(oc: usize, positions: usize) -> Block {
        if oc == 1 {
            Block::C1V8
        } else if positions <= 128 && oc.is_multiple_of(16) {
            Block::C16V1
        } else if oc.is_multiple_of(9) {
            Block::C9V3
        } else if oc.is_multiple_of(5) && !oc.is_multiple_of(8) {
            Block::C5V5
        } else {
            Block::C8V3
        }
    }
    pub(crate) fn channels(self) -> usize {
        match self {
            Block::C8V3 => 8,
            Block::C9V3 => 9,
            Block::C5V5 => 5,
            Block::C1V8 => 1,
            Block::C16V1 => 16,
            Block::C9V2 => 9,
            Block::C8V2 => 8,
        }
    }
    pub(crate) fn vectors(self) -> usize {
        match self {
            Block::C8V3 | Block::C9V3 => 3,
            Block::C5V5 => 5,
            Block::C1V8 => 8,
            Block::C16V1 => 1,
            Block::C9V2 | Block::C8V2 => 2,
        }
    }
    pub(crate) const ALL: [Block; 5] = [
        Block::C8V3,
        Block::C9V3,
        Block::C5V5,
        Block::C1V8,
        Block::C16V1,
    ];
}

/// Runs [`kernel`] with the register block `block`.
///
/// # Safety
/// As for [`kernel`], with `OCB`, `NV` those of `block`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn run_block(
    block: Block,
    src: *const f32,
    chan: usize,
    offsets: &[usize],
    ic: usize,
    w: &[f32],
    bias: &[f32],
    relu: bool,
    dst: *mut f32,
    out_stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    match block {
        Block::C8V3 => kernel::<8, 3>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
        Block::C9V3 => kernel::<9, 3>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
        Block::C5V5 => kernel::<5, 5>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
        Block::C1V8 => kernel::<1, 8>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
        Block::C16V1 => kernel::<16, 1>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
        Block::C9V2 => kernel::<9, 2>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
        Block::C8V2 => kernel::<8, 2>(src, chan, offsets, ic, w, bias, relu, dst, out_stride),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct kernels are only built on x86_64 with AVX-512F");
}

/// Runs [`small_kernel`] with the register block `block` of the small-plane form.
///
/// # Safety
/// As for [`small_kernel`], with `PB`, `NV` the channels and vectors of `block`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn run_small(
    block: Block,
    wt: *const f32,
    src: *const f32,
    chan: usize,
    taps: &[usize],
    ic: usize,
    pos: &[usize],
    dst: *mut f32,
    out_stride: usize,
    pf: Prefetch,
) {
    #[cfg(target_arch = "x86_64")]
    match block {
        Block::C1V8 => small_kernel::<1, 8>(wt, src, chan, taps, ic, pos, dst, out_stride, pf),
        Block::C9V2 => small_kernel::<9, 2>(wt, src, chan, taps, ic, pos, dst, out_stride, pf),
        Block::C16V1 => small_kernel::<16, 1>(wt, src, chan, taps, ic, pos, dst, out_stride, pf),
        Block::C8V2 => small_kernel::<8, 2>(wt, src, chan, taps, ic, pos, dst, out_stride, pf),
        _ => unreachable!("not a small-plane block"),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct kernels are only built on x86_64 with AVX-512F");
}

/// One register block of the small-plane form: `PB` output positions × `NV·16` output
/// channels. Position `j`'s input for channel `c` and tap `t` is `src[c·chan + pos[j] +
/// taps[t]]`, broadcast; the weights `wt` are `[c][t][NV·16]`. Sums start at zero (the bias
/// comes after) and run over (channel, tap) in order, as in [`kernel`].
///
/// # Safety
/// AVX-512F must be available; `pos` holds `PB` offsets and every `c·chan + pos[j] + taps[t]`
/// (for `c < ic`) lies inside the input at `src`; `wt` holds `ic · taps · NV·16` floats;
/// `dst + j·out_stride + NV·16` must be writable for `j < PB`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn small_kernel<const PB: usize, const NV: usize>(
    wt: *const f32,
    src: *const f32,
    chan: usize,
    taps: &[usize],
    ic: usize,
    pos: &[usize],
    dst: *mut f32,
    out_stride: usize,
    pf: Prefetch,
) {
    use std::arch::x86_64::*;
    let pos: [usize; PB] = pos[..PB].try_into().expect("PB positions");
    let mut acc = [[_mm512_setzero_ps(); NV]; PB];
    let mut wp = wt;
    // Prefetches per step, spreading `pf` over the steps.
    let per_step = pf.lines.div_ceil((ic * taps.len()).max(1));
    let (mut pf_at, mut pf_left) = (pf.at, pf.lines);
    for c in 0..ic {
        let base = src.add(c * chan);
        for &t in taps {
            let s = base.add(t);
            for _ in 0..per_step.min(pf_left) {
                _mm_prefetch::<_MM_HINT_T1>(pf_at.cast::<i8>());
                pf_at = pf_at.wrapping_add(64);
                pf_left -= 1;
            }
            let mut w = [_mm512_setzero_ps(); NV];
            for (v, wv) in w.iter_mut().enumerate() {
                *wv = _mm512_loadu_ps(wp.add(v * LANES));
            }
            wp = wp.add(NV * LANES);
            for (row, &p) in acc.iter_mut().zip(&pos) {
                let xj = _mm512_set1_ps(*s.add(p));
                for (a, wv) in row.iter_mut().zip(&w) {
                    *a = _mm512_fmadd_ps(*wv, xj, *a);
                }
            }
        }
    }
    for (j, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            _mm512_storeu_ps(dst.add(j * out_stride + v * LANES), *a);
        }
    }
}

/// One register block: `OCB` output channels × `NV·16` consecutive grid positions.
///
/// # Safety
/// AVX-512F must be available; `src + c·chan + offsets[t] + NV·16` must stay inside the input
/// for every channel `c < ic` and tap `t`; `w` holds `ic · taps · OCB` floats, `bias` `OCB`;
/// `dst + j·out_stride + NV·16` must be writable for `j < OCB`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<const OCB: usize, const NV: usize>(
    src: *const f32,
    chan: usize,
    offsets: &[usize],
    ic: usize,
    w: &[f32],
    bias: &[f32],
    relu: bool,
    dst: *mut f32,
    out_stride: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); NV]; OCB];
    for (j, row) in acc.iter_mut().enumerate() {
        let b = _mm512_set1_ps(bias[j]);
        for a in row.iter_mut() {
            *a = b;
        }
    }
    let taps = offsets.len();
    let mut wp = w.as_ptr();
    for c in 0..ic {
        let base = src.add(c * chan);
        for &off in offsets.iter().take(taps) {
            let s = base.add(off);
            let mut x = [_mm512_setzero_ps(); NV];
            for (v, xv) in x.iter_mut().enumerate() {
                *xv = _mm512_loadu_ps(s.add(v * LANES));
            }
            for row in acc.iter_mut() {
                let wj = _mm512_set1_ps(*wp);
                wp = wp.add(1);
                for (a, xv) in row.iter_mut().zip(&x) {
                    *a = _mm512_fmadd_ps(*xv, wj, *a);
                }
            }
        }
    }
    let zero = _mm512_setzero_ps();
    for (j, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            let r = if relu { _mm512_max_ps(*a, zero) } else { *a };
            _mm512_storeu_ps(dst.add(j * out_stride + v * LANES), r);
        }
    }
}
