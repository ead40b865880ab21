//! The direct convolution's small-plane form (see the parent module): for outputs of up
//! to 64 positions, the output channels in the vector lanes and each position's input
//! broadcast, so that a 3×3 plane does not fill 16 lanes with 9 positions; the result is
//! position-major and transposed back while the epilogue is applied.

use super::{small_block, DirectConv};
use crate::forms::conv::Epilogue;
use crate::kernels::run_small;
use crate::layout::planes::{Layout, Planes};
use crate::layout::tensor::Tensor;
#[cfg(target_arch = "x86_64")]
use crate::simd::first_lanes;
use crate::simd::{Prefetch, Shared, LANES};
use crate::team::{parallel_chunks_mut, parallel_for};
use std::cell::RefCell;

thread_local! {
    /// The small-plane form's padded input and position-major result, reused between calls.
    static SMALL_BUFFERS: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// The small-plane form's arguments besides input and output.
#[derive(Clone, Copy)]
pub(super) struct Small<'a> {
    pub(super) transposed: &'a [f32],
    /// Residual values, their layout and how many channels they cover.
    pub(super) residual: Option<(&'a [f32], Layout, usize)>,
    pub(super) relu: bool,
    pub(super) parallel: bool,
    pub(super) ahead: &'a [f32],
}

impl DirectConv {
    /// The small-plane form: the transposed weights times the input windows of blocks of
    /// output positions (each input value broadcast from the padded planes), with the output
    /// channels in the vector lanes; the result is position-major and transposed back while
    /// the epilogue is applied.
    pub(super) fn forward_small(
        &self,
        x: Planes<'_>,
        transposed: &[f32],
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) -> Tensor {
        let (oh, ow) = self.out_shape(x.h, x.w);
        let mut out = Tensor::zeros(self.out_channels, oh, ow);
        let layout = Layout::packed(oh, ow);
        let residual = epilogue.residual.map(|r| {
            assert!(
                r.len() % (oh * ow) == 0 && r.len() <= out.data.len(),
                "residual must be a channel prefix of the output"
            );
            (r, layout, r.len() / (oh * ow))
        });
        let small = Small {
            transposed,
            residual,
            relu: epilogue.relu,
            parallel,
            ahead: &[],
        };
        self.small_into(x, &small, &mut out.data, layout);
        out
    }

    /// The small-plane form: output channels in the vector lanes, each position's input
    /// broadcast. Writes channel `o` of the output at `out[o·layout.chan..]` in `layout`
    /// (its border zeroed where the layout has one).
    pub(super) fn small_into(
        &self,
        x: Planes<'_>,
        small: &Small<'_>,
        out: &mut [f32],
        layout: Layout,
    ) {
        let Small {
            transposed,
            residual,
            relu,
            parallel,
            ahead,
        } = *small;
        let (oh, ow) = self.out_shape(x.h, x.w);
        let (oc, positions) = (self.out_channels, oh * ow);
        assert!(out.len() >= oc * layout.chan && layout.fits(oh, ow));
        let block = small_block(positions);
        let (pb, ob) = (block.channels(), block.vectors() * LANES);
        let pos_blocks = positions.div_ceil(pb);
        let oc_blocks = oc.div_ceil(ob);
        let oc_pad = oc_blocks * ob;
        let taps = self.kh * self.kw;
        let k = self.in_channels * taps;
        if let Some((r, l, channels)) = residual {
            assert!(channels <= oc && l.fits(oh, ow) && r.len() >= channels * l.chan);
        }
        let (sy, sx, py, px) = (self.stride_y, self.stride_x, self.pad_y, self.pad_x);
        // The kernel broadcasts each position's input straight from zero-padded planes: a
        // column matrix would be nine copies of the input, gathered one float at a time, and
        // cost about a third as much as the products. Inputs with a wide enough zero border
        // (or no padding) are read in place.
        let mut padded = SMALL_BUFFERS.with(|b| std::mem::take(&mut b.borrow_mut()[0]));
        let (src, chan, wp): (&[f32], usize, usize) = if x.border >= py.max(px) {
            let origin = x.start - py * x.row_pitch - px;
            (&x.data[origin..], x.chan_pitch, x.row_pitch)
        } else {
            let (hp, wp) = (x.h + 2 * py, x.w + 2 * px);
            padded.clear();
            padded.resize(x.c * hp * wp, 0.0);
            for (c, dst) in padded.chunks_exact_mut(hp * wp).enumerate() {
                for y in 0..x.h {
                    let at = x.start + c * x.chan_pitch + y * x.row_pitch;
                    dst[(y + py) * wp + px..][..x.w].copy_from_slice(&x.data[at..at + x.w]);
                }
            }
            (&padded, hp * wp, wp)
        };
        let tap_off: Vec<usize> = (0..self.kh)
            .flat_map(|ky| (0..self.kw).map(move |kx| ky * wp + kx))
            .collect();
        // Position p's window starts at pos_off[p]; the last block repeats its last position
        // (computed and dropped).
        let pos_off: Vec<usize> = (0..pos_blocks * pb)
            .map(|p| p.min(positions - 1))
            .map(|p| (p / ow) * sy * wp + (p % ow) * sx)
            .collect();
        // Every position and channel of `result` is written before it is read: no zeroing.
        let mut result = SMALL_BUFFERS.with(|b| std::mem::take(&mut b.borrow_mut()[1]));
        result.resize(pos_blocks * pb * oc_pad, 0.0);
        let res_ptr = Shared(result.as_mut_ptr());
        let last_tap = tap_off.last().copied().unwrap_or(0);
        let last_pos = pos_off.iter().copied().max().unwrap_or(0);
        assert!(
            self.in_channels == 0
                || (self.in_channels - 1) * chan + last_pos + last_tap < src.len()
        );
        // SAFETY (for callers): AVX-512F was detected in `new`. Reads channel block o's
        // k × ob transposed weights and, per channel, taps of positions inside the (padded)
        // input (asserted above); writes positions blk·pb.. at channels o·ob.. of `result`.
        // Each kernel call pulls an equal share of `ahead`'s cache lines.
        let calls = pos_blocks * oc_blocks;
        let ahead_lines = (ahead.len() * 4).div_ceil(64);
        // Only where this layer has steps enough to spread them over (at most two lines a
        // step). Layers that read their own weights several times (one pass per block of
        // positions) prefetch too: an 8×8 layer's share of its weights and of the next
        // layer's (at most 1.2 MB a thread, the next stride-2 layer's) fit the L2 together,
        // and measured per layer, what the next layers save outweighs the slower reuse.
        let ahead_lines = if ahead_lines <= 2 * calls * k {
            ahead_lines
        } else {
            0
        };
        let product = |blk: usize, o: usize| unsafe {
            let j = o * pos_blocks + blk;
            let (l0, l1) = (j * ahead_lines / calls, (j + 1) * ahead_lines / calls);
            let prefetch = Prefetch {
                // Lines of `ahead`, which pointer arithmetic alone touches (no reads).
                at: ahead.as_ptr().cast::<u8>().wrapping_add(l0 * 64),
                lines: l1 - l0,
            };
            run_small(
                block,
                transposed[o * k * ob..(o + 1) * k * ob].as_ptr(),
                src.as_ptr(),
                chan,
                &tap_off,
                self.in_channels,
                &pos_off[blk * pb..(blk + 1) * pb],
                res_ptr.get().add(blk * pb * oc_pad + o * ob),
                oc_pad,
                prefetch,
            );
        };
        // Channels o0.. back to channel-major, with bias, residual and ReLU.
        // SAFETY (for callers): every position of those channels of `result` is written and
        // no task writes them any more.
        #[cfg(target_arch = "x86_64")]
        let finish = |o0: usize, dst: &mut [f32]| {
            let channels = dst.len().div_ceil(layout.chan);
            // Every plane written is whole (only the last may lack trailing slack).
            assert!(
                channels == 0 || (channels - 1) * layout.chan + layout.at(oh - 1, ow) <= dst.len()
            );
            assert!(o0 + channels <= oc && positions * oc_pad <= result.len());
            // The residual's planes from channel o0, and how many of them there are.
            let res = residual.and_then(|(r, l, rc)| {
                let rc = rc.saturating_sub(o0).min(channels);
                assert!(rc == 0 || r.len() >= (o0 + rc - 1) * l.chan + l.at(oh - 1, ow));
                (rc > 0).then(|| (r[o0 * l.chan..].as_ptr(), l, rc))
            });
            let bias = &self.packed[0].bias[o0..o0 + channels];
            // SAFETY: AVX-512F was detected in `new`; the bounds are asserted above; the
            // result's positions and channels o0.. are final (see above).
            unsafe {
                finish_small_avx512(
                    res_ptr.get(),
                    oc_pad,
                    (oh, ow),
                    o0,
                    bias,
                    res,
                    relu,
                    dst.as_mut_ptr(),
                    layout,
                );
            }
            if layout.border {
                for plane in dst.chunks_mut(layout.chan) {
                    crate::layout::padded::zero_border(&mut plane[..layout.chan], oh, ow);
                }
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let finish = |_: usize, _: &mut [f32]| {
            unreachable!("direct kernels are only built on x86_64 with AVX-512F")
        };
        let threads = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        if oc_blocks >= 2 * threads {
            // Enough channel blocks to go round: each task takes every position of its
            // channels and finishes them while they are in cache, saving a parallel step.
            let out_ptr = Shared(out.as_mut_ptr());
            let run = |o: usize| {
                for blk in 0..pos_blocks {
                    product(blk, o);
                }
                let channels = ob.min(oc - o * ob);
                // SAFETY: channels o·ob.. of `out` belong to this task alone.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(
                        out_ptr.get().add(o * ob * layout.chan),
                        channels * layout.chan,
                    )
                };
                finish(o * ob, dst);
            };
            parallel_for(oc_blocks, parallel, &run);
        } else {
            let run = |task: usize| product(task / oc_blocks, task % oc_blocks);
            parallel_for(pos_blocks * oc_blocks, parallel, &run);
            let out = &mut out[..oc * layout.chan];
            parallel_chunks_mut(out, 16 * layout.chan, parallel, &|piece, dst| {
                finish(piece * 16, dst)
            });
        }
        SMALL_BUFFERS.with(|b| *b.borrow_mut() = [padded, result]);
    }
}

/// The small-plane form's epilogue with AVX-512: channels `o0..o0 + bias.len()` of the
/// position-major `result` (`[position][oc_pad]`) into their planes at `dst` (channel
/// `o0 + i` at `dst + i·layout.chan`), as `relu((result + bias) + residual)`, the residual
/// (its first channel's plane, layout, channels from `o0`) where given: 16 positions of one
/// channel per gather, stored a row's run at a time.
///
/// # Safety
/// AVX-512F; `result` holds `oh·ow` positions of `oc_pad` floats; `dst` and the residual
/// hold every `(y, x)` of their planes for those channels (as `small_into` asserts).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn finish_small_avx512(
    result: *const f32,
    oc_pad: usize,
    (oh, ow): (usize, usize),
    o0: usize,
    bias: &[f32],
    residual: Option<(*const f32, Layout, usize)>,
    relu: bool,
    dst: *mut f32,
    layout: Layout,
) {
    use std::arch::x86_64::*;
    let positions = oh * ow;
    let step = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(oc_pad as i32),
    );
    let zero = _mm512_setzero_ps();
    for (i, &b) in bias.iter().enumerate() {
        let o = o0 + i;
        let plane = dst.add(i * layout.chan);
        let res = residual
            .filter(|&(_, _, rc)| i < rc)
            .map(|(r, l, _)| (r.add(i * l.chan), l));
        let b = _mm512_set1_ps(b);
        let mut p0 = 0;
        while p0 < positions {
            let n = (positions - p0).min(LANES);
            let valid = first_lanes(n);
            let v = _mm512_mask_i32gather_ps::<4>(
                zero,
                valid,
                step,
                result.add(p0 * oc_pad + o).cast(),
            );
            let v = _mm512_add_ps(v, b);
            // Row by row: lanes a..e of this run are positions p0 + a.. of row y.
            let mut p = p0;
            while p < p0 + n {
                let (y, x) = (p / ow, p % ow);
                let e = (p0 + n).min((y + 1) * ow);
                let lane = p - p0;
                let m: __mmask16 = (((1u32 << (e - p)) - 1) << lane) as __mmask16;
                let mut t = v;
                if let Some((r, l)) = res {
                    // Lane j reads r[l.at(y, x) − lane + j]: only lanes of this row's run.
                    let at = r.wrapping_add(l.at(y, x)).wrapping_sub(lane);
                    t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, at));
                }
                if relu {
                    t = _mm512_max_ps(t, zero);
                }
                let at = plane.wrapping_add(layout.at(y, x)).wrapping_sub(lane);
                _mm512_mask_storeu_ps(at, m, t);
                p = e;
            }
            p0 += LANES;
        }
    }
}
