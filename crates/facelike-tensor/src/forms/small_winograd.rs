//! One sample's 3×3, stride-1, padding-1 layers on small planes (up to 8×8) by Winograd's
//! F(2×2, 3×3), with the output channels in the vector lanes.
//!
//! An 8×8 plane has 16 tiles of 2×2 outputs: the input transform takes all 16 at once, one
//! per lane (each of a patch's 16 values is one gather from the zero-bordered plane), and the
//! 16 products per tile run on the direct convolution's small-plane kernel, which broadcasts
//! a tile's transformed input and multiplies it by 16 filters at a time: 16 multiply-adds
//! per input channel and tile where the direct form does 36. The output transform then has
//! 16 channels of one output position per register, scattered into the output planes.
//!
//! The transformed weights take 16/9 the memory of the plain ones; each is used by all
//! 16 tiles, so for 8×8 planes the layer stays bound by arithmetic, not by fetching them.
//! (For 4×4 planes, four tiles a weight, it would not.)

use crate::forms::conv::Conv2d;
#[cfg(target_arch = "x86_64")]
use crate::forms::transforms::{at2, bt2};
use crate::forms::transforms::{winograd_fits, winograd_weights};
use crate::kernels::{run_small, Block};
use crate::layout::padded::PaddedPlanes;
use crate::simd::{first_lanes, Prefetch, Shared, LANES};
use crate::team::parallel_for;
use std::cell::RefCell;

/// Values per transformed tile (4 × 4).
const Q16: usize = 16;

thread_local! {
    /// The transformed input `[ξ][in][16 tiles]`, shared by a call's tasks (written in its
    /// first step, read in its second); reused between calls on the calling thread.
    static TRANSFORMED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A task's products `[ξ][tile][16 filters]`, reused between tasks on one thread (the
    /// kernel writes all of them before the output transform reads them).
    static PRODUCTS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A 3×3, stride-1, padding-1 convolution for planes of up to 8×8 with even sides, prepared
/// for [`forward`](Self::forward); built only where the CPU has AVX-512F.
#[derive(Clone, Debug)]
pub struct SmallWinograd {
    /// Output channels (filters).
    pub out_channels: usize,
    /// Input channels each filter reads.
    pub in_channels: usize,
    /// Transformed weights `[ξ][channel block][in][16]`, padded with zero filters.
    u: Vec<f32>,
    bias: Vec<f32>,
}

impl SmallWinograd {
    /// `None` unless `conv` is 3×3, stride 1, padding 1 and the CPU has AVX-512F.
    pub fn new(conv: &Conv2d) -> Option<Self> {
        if !winograd_fits(conv) {
            return None;
        }
        let oc = conv.out_channels;
        let blocks = oc.div_ceil(LANES);
        let mut bias = conv.bias.clone().unwrap_or_else(|| vec![0.0; oc]);
        bias.resize(blocks * LANES, 0.0);
        Some(SmallWinograd {
            out_channels: oc,
            in_channels: conv.in_channels,
            u: winograd_weights(conv, LANES, 2),
            bias,
        })
    }

    /// Whether [`forward`](Self::forward) takes `h × w` planes.
    pub fn fits(h: usize, w: usize) -> bool {
        h > 0 && w > 0 && h.is_multiple_of(2) && w.is_multiple_of(2) && h * w <= 4 * Q16
    }

    /// The transformed weights, in the order [`forward`](Self::forward) reads them (for a
    /// previous layer to prefetch).
    pub fn weights(&self) -> &[f32] {
        &self.u
    }

    /// The layer on `x`, then `residual` added (dlib's `add_prev`: it may cover only the
    /// first channels) and the ReLU where `relu`; meanwhile `ahead`'s cache lines (the next
    /// layer's weights) are prefetched.
    pub fn forward(
        &self,
        x: &PaddedPlanes,
        residual: Option<&PaddedPlanes>,
        relu: bool,
        parallel: bool,
        ahead: &[f32],
    ) -> PaddedPlanes {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        assert!(Self::fits(x.h, x.w), "plane of {}×{}", x.h, x.w);
        let (ic, oc, h, w) = (self.in_channels, self.out_channels, x.h, x.w);
        if let Some(r) = residual {
            assert!(r.c <= oc && (r.h, r.w) == (h, w), "residual shape");
        }
        let (tw, tiles) = (w / 2, (h / 2) * (w / 2));
        let wh = w + 2;
        // Where each tile's patch starts in a bordered plane, and each output in one.
        let mut patch = [0i32; LANES];
        for (t, p) in patch.iter_mut().enumerate().take(tiles) {
            *p = ((2 * (t / tw)) * wh + 2 * (t % tw)) as i32;
        }
        let tile_mask = first_lanes(tiles);
        let blocks = oc.div_ceil(LANES);
        let mut out = PaddedPlanes::uninit(oc, h, w, oc);
        let out_chan = out.chan;
        TRANSFORMED.with(|v| {
            let mut v = v.borrow_mut();
            if v.len() < Q16 * ic * LANES {
                v.resize(Q16 * ic * LANES, 0.0);
            }
            let v_ptr = Shared(v.as_mut_ptr());
            // Step 1: Bᵀ d B for groups of input channels.
            let groups = ic.div_ceil(32);
            let transform = |g: usize| {
                let channels = g * 32..((g + 1) * 32).min(ic);
                // SAFETY: AVX-512F (checked in `new`); the gathers read bordered planes of
                // `x` (masked to real tiles); each group writes its own channels of `v`.
                unsafe { input_transform(x, channels, ic, &patch, tile_mask, v_ptr) };
            };
            parallel_for(groups, parallel, &transform);
            // Step 2: per block of 16 filters, the 16 products then Aᵀ m A.
            let v = &v[..Q16 * ic * LANES];
            let ahead_lines = (ahead.len() * 4).div_ceil(64);
            let dst = Shared(out.data.as_mut_ptr());
            let positions: [usize; LANES] = std::array::from_fn(|t| if t < tiles { t } else { 0 });
            let product = |b: usize| {
                PRODUCTS.with(|m| {
                    let mut m = m.borrow_mut();
                    if m.len() < Q16 * LANES * LANES {
                        m.resize(Q16 * LANES * LANES, 0.0);
                    }
                    let m: &mut [f32; Q16 * LANES * LANES] = (&mut m[..Q16 * LANES * LANES])
                        .try_into()
                        .expect("products");
                    let (l0, l1) = (b * ahead_lines / blocks, (b + 1) * ahead_lines / blocks);
                    for xi in 0..Q16 {
                        let share = (l1 - l0) * xi / Q16..(l1 - l0) * (xi + 1) / Q16;
                        let prefetch = Prefetch {
                            at: ahead
                                .as_ptr()
                                .cast::<u8>()
                                .wrapping_add((l0 + share.start) * 64),
                            lines: share.len(),
                        };
                        let wt = &self.u[(xi * blocks + b) * ic * LANES..][..ic * LANES];
                        // SAFETY: AVX-512F; `wt` holds ic·16 floats, the broadcasts read
                        // `v[ξ][c][t]` for c < ic, t < 16; `m[ξ]` holds 16 rows of 16.
                        unsafe {
                            run_small(
                                Block::C16V1,
                                wt.as_ptr(),
                                v.as_ptr().add(xi * ic * LANES),
                                LANES,
                                &[0],
                                ic,
                                &positions,
                                m.as_mut_ptr().add(xi * LANES * LANES),
                                LANES,
                                prefetch,
                            );
                        }
                    }
                    let filters = b * LANES..((b + 1) * LANES).min(oc);
                    // SAFETY: AVX-512F; block b's output planes belong to this task alone.
                    unsafe {
                        output_transform(
                            m,
                            filters.clone(),
                            &self.bias[b * LANES..][..LANES],
                            residual,
                            relu,
                            (h, w),
                            dst,
                            out_chan,
                        );
                        for o in filters {
                            let plane = std::slice::from_raw_parts_mut(
                                dst.get().add(o * out_chan),
                                out_chan,
                            );
                            crate::layout::padded::zero_border(plane, h, w);
                        }
                    }
                })
            };
            parallel_for(blocks, parallel, &product);
        });
        out
    }
}

/// `Bᵀ d B` of every tile for input channels `channels`, into `v[ξ][c][16]`.
///
/// # Safety
/// AVX-512F; `patch` holds the tiles' patch corners in a bordered plane of `x` (lanes in
/// `tile_mask`); `v` holds `16 · ic · 16` floats, and no other task writes these channels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_transform(
    x: &PaddedPlanes,
    channels: std::ops::Range<usize>,
    ic: usize,
    patch: &[i32; LANES],
    tile_mask: u16,
    v: Shared,
) {
    use std::arch::x86_64::*;
    let wh = x.w + 2;
    let base_idx = _mm512_loadu_si512(patch.as_ptr().cast());
    let zero = _mm512_setzero_ps();
    for c in channels {
        let plane = x.data.as_ptr().add(c * x.chan);
        let mut d = [[zero; 4]; 4];
        for (r, row) in d.iter_mut().enumerate() {
            for (col, val) in row.iter_mut().enumerate() {
                let idx = _mm512_add_epi32(base_idx, _mm512_set1_epi32((r * wh + col) as i32));
                *val = _mm512_mask_i32gather_ps::<4>(zero, tile_mask, idx, plane.cast());
            }
        }
        // Along y (each patch column), then along x.
        let mut s = [[zero; 4]; 4];
        for col in 0..4 {
            let column = bt2([d[0][col], d[1][col], d[2][col], d[3][col]]);
            for (r, v) in column.into_iter().enumerate() {
                s[r][col] = v;
            }
        }
        let out = v.get().add(c * LANES);
        for (r, row) in s.iter().enumerate() {
            for (col, val) in bt2(*row).iter().enumerate() {
                _mm512_storeu_ps(out.add((4 * r + col) * ic * LANES), *val);
            }
        }
    }
}

/// `Aᵀ m A` of every tile for the filters `filters` (one block of at most 16), plus bias,
/// residual and ReLU, scattered into the output planes.
///
/// # Safety
/// AVX-512F; `m` is `[ξ][tile][16 filters]`; `dst` holds the output planes (`chan` floats
/// each) and no other task writes these filters' planes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform(
    m: &[f32; Q16 * LANES * LANES],
    filters: std::ops::Range<usize>,
    bias: &[f32],
    residual: Option<&PaddedPlanes>,
    relu: bool,
    (h, w): (usize, usize),
    dst: Shared,
    chan: usize,
) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    let b = _mm512_loadu_ps(bias.as_ptr());
    let lanes = first_lanes(filters.len());
    let first = filters.start;
    // Filter f's plane starts at (f − first)·chan from the block's first.
    let planes = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(chan as i32),
    );
    let res = residual.map(|r| {
        let planes = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(r.chan as i32),
        );
        let keep = first_lanes(r.c.saturating_sub(first)) & lanes;
        (r.data.as_ptr().add(first.min(r.c) * r.chan), planes, keep)
    });
    let (tw, wh) = (w / 2, w + 2);
    let out = dst.get().add(first * chan);
    for t in 0..(h / 2) * tw {
        let (ty, tx) = (t / tw, t % tw);
        let mut mm = [[zero; 4]; 4];
        for (r, row) in mm.iter_mut().enumerate() {
            for (c, val) in row.iter_mut().enumerate() {
                *val = _mm512_loadu_ps(m.as_ptr().add(((4 * r + c) * LANES + t) * LANES));
            }
        }
        let mut s = [[zero; 4]; 2];
        for c in 0..4 {
            let [s0, s1] = at2([mm[0][c], mm[1][c], mm[2][c], mm[3][c]]);
            (s[0][c], s[1][c]) = (s0, s1);
        }
        for (dy, row) in s.iter().enumerate() {
            for (dx, val) in at2(*row).iter().enumerate() {
                let at = (2 * ty + dy + 1) * wh + 2 * tx + dx + 1;
                let mut r = _mm512_add_ps(*val, b);
                if let Some((rp, rplanes, keep)) = res {
                    let idx = _mm512_add_epi32(rplanes, _mm512_set1_epi32(at as i32));
                    let add = _mm512_mask_i32gather_ps::<4>(zero, keep, idx, rp.cast());
                    r = _mm512_add_ps(r, add);
                }
                if relu {
                    r = _mm512_max_ps(r, zero);
                }
                let idx = _mm512_add_epi32(planes, _mm512_set1_epi32(at as i32));
                _mm512_mask_i32scatter_ps::<4>(out.cast(), lanes, idx, r);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_transform(
    _: &PaddedPlanes,
    _: std::ops::Range<usize>,
    _: usize,
    _: &[i32; LANES],
    _: u16,
    _: Shared,
) {
    unreachable!("built only with AVX-512F")
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform(
    _: &[f32; Q16 * LANES * LANES],
    _: std::ops::Range<usize>,
    _: &[f32],
    _: Option<&PaddedPlanes>,
    _: bool,
    (_, _): (usize, usize),
    _: Shared,
    _: usize,
) {
    unreachable!("built only with AVX-512F")
}
