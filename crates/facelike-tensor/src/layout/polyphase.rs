//! The zero-padded *polyphase* copy the direct convolution's grid form reads: for stride
//! `sy × sx`, each channel holds `sy·sx` planes, plane `(a, b)` keeping the padded rows
//! `a, a + sy, …` and columns `b, b + sx, …`, so that every filter tap reads a contiguous run
//! for any run of outputs (see `crate::forms::direct`). [`Geometry`] says where everything
//! lies for one call; the fills copy float planes, or convert bytes, into it.

use crate::layout::bytes::MappedBytes;
use crate::layout::planes::Planes;
#[cfg(target_arch = "x86_64")]
use crate::simd::LANES;
use crate::simd::{deinterleave, Shared};
use crate::team::{parallel_chunks_mut, parallel_for};

/// Geometry of one call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    /// Columns of each phase plane (the output grid's width).
    pub(crate) wh: usize,
    /// Floats between phase planes and between channels of the polyphase input.
    pub(crate) plane: usize,
    pub(crate) chan: usize,
    /// Grid outputs (`oh · wh`) rounded up to whole register blocks.
    pub(crate) grid: usize,
}

/// Copies `x` into the zero-padded polyphase layout (module docs), each channel a piece of
/// a parallel loop when `parallel`. `input` is resized to `x.c · g.chan` floats.
pub(crate) fn fill_polyphase(
    x: Planes<'_>,
    strides: (usize, usize),
    pads: (usize, usize),
    g: &Geometry,
    input: &mut Vec<f32>,
    parallel: bool,
) {
    input.resize(x.c * g.chan, 0.0);
    let fill = PolyphaseFill::new(x, strides, pads, g);
    parallel_chunks_mut(&mut input[..x.c * g.chan], g.chan, parallel, &|c, dst| {
        fill.channel(c, dst)
    });
}

/// Fills channels of the polyphase layout one at a time (for callers that go on to use each
/// channel at once, on the same thread).
pub(crate) struct PolyphaseFill<'a> {
    x: Planes<'a>,
    sy: usize,
    sx: usize,
    py: usize,
    px: usize,
    g: Geometry,
    /// Where each input column goes within its phase row (strides other than 1, 2, 4).
    columns: Vec<usize>,
}

impl<'a> PolyphaseFill<'a> {
    pub(crate) fn new(
        x: Planes<'a>,
        (sy, sx): (usize, usize),
        (py, px): (usize, usize),
        g: &Geometry,
    ) -> Self {
        // (x + px) % sx selects the phase plane, (x + px) / sx the column.
        let columns = (0..x.w)
            .map(|c| ((c + px) % sx) * g.plane + (c + px) / sx)
            .collect();
        PolyphaseFill {
            x,
            sy,
            sx,
            py,
            px,
            g: *g,
            columns,
        }
    }

    /// Writes channel `c` into `dst` (`g.chan` floats), padding and slack zeroed.
    pub(crate) fn channel(&self, c: usize, dst: &mut [f32]) {
        let (x, g) = (&self.x, &self.g);
        let (sy, sx, py, px) = (self.sy, self.sx, self.py, self.px);
        let (h, w) = (x.h, x.w);
        let at = x.start + c * x.chan_pitch;
        let len = if h == 0 || w == 0 {
            0
        } else {
            (h - 1) * x.row_pitch + w
        };
        let src = &x.data[at..at + len];
        let dst = &mut dst[..g.chan];
        zero_unfilled(dst, g, (sy, sx), (py, px), (h, w));
        // Rows followed by enough zeros of the planes' own border (and no padding on the
        // left) are split into phases where they lie, without a padded copy first.
        let tail = (sx * g.wh).saturating_sub(w);
        let in_place = px == 0 && tail <= 2 * x.border && x.row_pitch == w + 2 * x.border;
        let mut padded_row = vec![0f32; if sx > 1 && !in_place { sx * g.wh } else { 0 }];
        for y in 0..h {
            let row = &src[y * x.row_pitch..y * x.row_pitch + w];
            let yy = y + py;
            let (a, r) = (yy % sy, yy / sy);
            let base = a * sx * g.plane + r * g.wh;
            if sx == 1 {
                dst[base + px..base + px + w].copy_from_slice(row);
            } else if (sx == 2 || sx == 4) && in_place {
                let from = &x.data[at + y * x.row_pitch..][..w + tail];
                deinterleave(from, sx, &mut dst[base..], g.plane, g.wh);
            } else if sx == 2 || sx == 4 {
                // The padded row, then every phase row whole (its padding included).
                padded_row[px..px + w].copy_from_slice(row);
                deinterleave(&padded_row, sx, &mut dst[base..], g.plane, g.wh);
            } else {
                let d = &mut dst[base..];
                for (v, &at) in row.iter().zip(&self.columns) {
                    d[at] = *v;
                }
            }
        }
    }
}

/// Zeroes what a polyphase fill of an `h × w` channel leaves unwritten in `dst` (its
/// `g.chan` floats): the padding rows and columns and the slack.
fn zero_unfilled(
    dst: &mut [f32],
    g: &Geometry,
    (sy, sx): (usize, usize),
    (py, px): (usize, usize),
    (h, w): (usize, usize),
) {
    let dst = &mut dst[..g.chan];
    if g.chan <= 1 << 14 {
        // Small planes: one memset beats zeroing each phase's borders.
        dst.fill(0.0);
        return;
    }
    for a in 0..sy {
        for b in 0..sx {
            let plane = &mut dst[(a * sx + b) * g.plane..][..g.plane];
            // Rows of this phase that hold input rows: yy = r·sy + a in py..py+h.
            let r0 = py.saturating_sub(a).div_ceil(sy);
            let r1 = (py + h).saturating_sub(a).div_ceil(sy).max(r0);
            let c0 = px.saturating_sub(b).div_ceil(sx);
            let c1 = (px + w).saturating_sub(b).div_ceil(sx).max(c0);
            plane[..r0 * g.wh].fill(0.0);
            plane[r1 * g.wh..].fill(0.0);
            for row in plane[r0 * g.wh..r1 * g.wh].chunks_exact_mut(g.wh) {
                row[..c0].fill(0.0);
                row[c1..].fill(0.0);
            }
        }
    }
}

/// [`fill_polyphase`] of the floats `x` stands for: each byte goes through its channel's
/// table straight to its place in the polyphase layout.
pub(crate) fn fill_polyphase_bytes(
    x: MappedBytes<'_>,
    (sy, sx): (usize, usize),
    (py, px): (usize, usize),
    g: &Geometry,
    input: &mut Vec<f32>,
    parallel: bool,
) {
    let c = x.channels();
    let (h, w) = (x.h, x.w);
    assert_eq!(x.data.len(), h * w * c, "bytes of an h × w × c image");
    input.resize(c * g.chan, 0.0);
    if h == 0 || w == 0 {
        input.fill(0.0);
        return;
    }
    // Where each input column goes within its phase row.
    let columns: Vec<usize> = (0..w)
        .map(|col| ((col + px) % sx) * g.plane + (col + px) / sx)
        .collect();
    // Every row's writes stay inside its channel: the last row's base plus the farthest
    // column is below `g.chan` (the polyphase planes hold the padded input).
    let row_base = |y: usize| ((y + py) % sy) * sx * g.plane + ((y + py) / sy) * g.wh;
    let last = (0..h).map(row_base).max().unwrap_or(0);
    assert!(last + columns.iter().max().unwrap_or(&0) < g.chan);
    // The vector form picks each phase's bytes out of 128 with one permute.
    #[cfg(target_arch = "x86_64")]
    let vbmi = px == 0
        && c * sx <= 8
        && is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("avx512bw");
    // The zeros around the rows first (the padding and slack; all of a small channel),
    // then the rows, in pieces of rows with every channel of them in one piece: each
    // pixel's bytes are read once.
    let chan = g.chan;
    for dst in input[..c * chan].chunks_exact_mut(chan) {
        zero_unfilled(dst, g, (sy, sx), (py, px), (h, w));
    }
    const PIECES: usize = 6;
    let rows_per = h.div_ceil(PIECES);
    let out = Shared(input.as_mut_ptr());
    parallel_for(PIECES, parallel, &|piece| {
        // Writes go through the pointer: the pieces write rows y0..y1 of every channel,
        // disjoint from every other piece's, all inside the buffer (asserted above, per
        // channel).
        let all = out.get();
        let (y0, y1) = (piece * rows_per, ((piece + 1) * rows_per).min(h));
        for y in y0..y1 {
            let row = &x.data[y * w * c..(y + 1) * w * c];
            let base = row_base(y);
            #[cfg(target_arch = "x86_64")]
            if vbmi {
                // SAFETY: VBMI was detected and c·sx ≤ 8; each phase row of `count`
                // columns starts at ch·chan + base + b·plane, inside channel ch (its last
                // element is some base + columns[i], asserted above).
                unsafe {
                    map_row_avx512(
                        row,
                        c,
                        sx,
                        w,
                        x.offsets,
                        x.scale,
                        all.add(base),
                        chan,
                        g.plane,
                    );
                }
                continue;
            }
            for ch in 0..c {
                for (i, &at) in columns.iter().enumerate() {
                    // SAFETY: i < w, so i·c + ch is inside the row; ch·chan + base + at is
                    // inside channel ch (asserted above) and this piece's alone.
                    unsafe {
                        let v = *row.get_unchecked(i * c + ch);
                        *all.add(ch * chan + base + at) = x.value(ch, v);
                    }
                }
            }
        }
    });
}

/// One row of `w` pixels of `c` interleaved byte channels into the polyphase layout at
/// stride `stride` (no padding): for every channel `ch` and phase `b`,
/// `d[ch·chan + b·plane + k] = (row[(stride·k + b)·c + ch] − offsets[ch]) · scale`. Each
/// step loads the 128 bytes holding 16 columns of every phase and channel (`c · stride ≤ 8`)
/// and picks each phase of each channel out with one permute.
///
/// # Safety
/// AVX-512F/BW/VBMI; `c · stride ≤ 8`; `row.len() == w·c`; `offsets.len() == c`; `d` valid
/// for writes at `ch·chan + b·plane + k` for every channel, phase and `k` of the row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[allow(clippy::too_many_arguments)]
unsafe fn map_row_avx512(
    row: &[u8],
    c: usize,
    stride: usize,
    w: usize,
    offsets: &[f32],
    scale: f32,
    d: *mut f32,
    chan: usize,
    plane: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(c * stride <= 8 && row.len() == w * c && offsets.len() == c);
    let step = stride * c;
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let lanes = _mm512_mullo_epi32(lane, _mm512_set1_epi32(step as i32));
    let scale = _mm512_set1_ps(scale);
    let len = row.len();
    let s = row.as_ptr();
    let mut k = 0;
    // Columns of phase b: those x = stride·k + b < w.
    let count = |b: usize| w.saturating_sub(b).div_ceil(stride);
    while k < count(0) {
        let at = k * step;
        // Bytes at..at + 128, those past the row masked off (never read).
        let left = len - at;
        let m0: __mmask64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
        let m1: __mmask64 = if left >= 128 {
            !0
        } else if left > 64 {
            (1u64 << (left - 64)) - 1
        } else {
            0
        };
        let lo = _mm512_maskz_loadu_epi8(m0, s.add(at).cast());
        let hi = _mm512_maskz_loadu_epi8(m1, s.wrapping_add(at + 64).cast());
        for (ch, &offset) in offsets.iter().enumerate() {
            let offset = _mm512_set1_ps(offset);
            for b in 0..stride {
                let n = count(b).saturating_sub(k).min(LANES);
                if n == 0 {
                    continue;
                }
                // Lane j takes byte j·step + b·c + ch of the 128 loaded.
                let first = _mm512_set1_epi32((b * c + ch) as i32);
                let pick =
                    _mm512_castsi128_si512(_mm512_cvtepi32_epi8(_mm512_add_epi32(lanes, first)));
                let bytes = _mm512_permutex2var_epi8(lo, pick, hi);
                let index = _mm512_cvtepu8_epi32(_mm512_castsi512_si128(bytes));
                // The same two roundings as `MappedBytes::value`.
                let values = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(index), offset), scale);
                let at = d.add(ch * chan + b * plane + k);
                if n == LANES {
                    _mm512_storeu_ps(at, values);
                } else {
                    _mm512_mask_storeu_ps(at, (1u16 << n) - 1, values);
                }
            }
        }
        k += LANES;
    }
}
