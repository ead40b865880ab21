//! The direct convolution's grid form (see the parent module): one layer through the
//! polyphase copy into any output layout, one sample from bordered planes to bordered
//! planes (read in place for 3×3 stride-1 layers), and a chain of layers passing their
//! grids on; all run the register-blocked kernel over the output grid.

use super::small::Small;
use super::{small_block, DirectConv, Packed, SMALL_PLANE};
use crate::kernels::run_block;
use crate::layout::bytes::MappedBytes;
use crate::layout::padded::PaddedPlanes;
use crate::layout::planes::{Layout, Planes};
use crate::layout::polyphase::{fill_polyphase, fill_polyphase_bytes, Geometry};
use crate::layout::tensor::Tensor;
use crate::simd::{Shared, LANES};
use crate::team::{parallel_chunks_mut, parallel_for, parallel_for_coarse};
use std::cell::RefCell;

/// Output positions per parallel task (several register blocks: the task's input window and
/// the weights stay in L2 while it sweeps every output-channel block over it).
const TASK_POSITIONS: usize = 2048;

thread_local! {
    /// Two grids and a polyphase input for `forward_chain_par`, reused between calls.
    static CHAIN_BUFFERS: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
    /// The polyphase input and the output grid, reused between calls on the calling thread.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A convolution's input: float planes, or bytes converted on the way in.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Planes(Planes<'a>),
    Bytes(MappedBytes<'a>),
}

impl Input<'_> {
    pub(super) fn shape(&self) -> (usize, usize, usize) {
        match self {
            Input::Planes(p) => (p.c, p.h, p.w),
            Input::Bytes(b) => (b.channels(), b.h, b.w),
        }
    }
}

impl DirectConv {
    /// The grid form (the module docs) into `out` in `layout`: the convolution, bias,
    /// `residual` (values, their layout, their channels), ReLU if `relu`, then the max pool
    /// if any (with no residual).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn grid_into(
        &self,
        x: Input<'_>,
        residual: Option<(&[f32], Layout, usize)>,
        relu: bool,
        parallel: bool,
        max_pool: Option<(usize, usize)>,
        out: &mut [f32],
        layout: Layout,
    ) {
        let (_, h, w) = x.shape();
        let packed = self.packed_for(h, w);
        let g = self.geometry(h, w, packed.block);
        let (out_h, out_w) = self.pooled_shape(h, w, max_pool);
        if g.oh * g.ow == 0 || out_h * out_w == 0 || self.out_channels == 0 {
            if layout.border {
                for plane in out.chunks_exact_mut(layout.chan).take(self.out_channels) {
                    crate::layout::padded::zero_border(plane, out_h, out_w);
                }
            }
            return;
        }
        assert!(out.len() >= self.out_channels * layout.chan && layout.fits(out_h, out_w));
        let residual_channels = residual.map_or(0, |(r, l, channels)| {
            assert!(channels <= self.out_channels && r.len() >= channels * l.chan);
            assert!(l.fits(g.oh, g.ow), "residual of the output's size");
            channels
        });
        // Large planes are worth threads for the copies too.
        let copy_par = parallel;
        BUFFERS.with(|b| {
            let (input, grid) = &mut *b.borrow_mut();
            let strides = (self.stride_y, self.stride_x);
            let pads = (self.pad_y, self.pad_x);
            match x {
                Input::Planes(x) => fill_polyphase(x, strides, pads, &g, input, copy_par),
                Input::Bytes(x) => fill_polyphase_bytes(x, strides, pads, &g, input, copy_par),
            }
            let ocb = packed.block.channels();
            let blocks = self.out_channels.div_ceil(ocb);
            grid.resize(blocks * ocb * g.grid, 0.0);
            // The ReLU can go in the kernel unless a residual comes between.
            let kernel_relu = relu && residual_channels == 0;
            // Keep only the real output columns, adding the residual; `src` is channel o's
            // row of the grid, `dst` its plane of `out`.
            let finish = |o: usize, src: &[f32], dst: &mut [f32]| {
                if let Some((k, s)) = max_pool {
                    let rows = &mut dst[layout.start..];
                    crate::ops::max_pool_rows(src, g.wh, (g.oh, g.ow), k, s, rows, layout.row);
                } else {
                    let res = residual
                        .filter(|_| o < residual_channels)
                        .map(|(r, l, _)| (&r[o * l.chan..], l));
                    for oy in 0..g.oh {
                        let row = &mut dst[layout.at(oy, 0)..][..g.ow];
                        let s = &src[oy * g.wh..oy * g.wh + g.ow];
                        match res {
                            None if relu && !kernel_relu => {
                                for (d, v) in row.iter_mut().zip(s) {
                                    *d = crate::simd::relu(*v);
                                }
                            }
                            None => row.copy_from_slice(s),
                            Some((r, l)) => {
                                let r = &r[l.at(oy, 0)..][..g.ow];
                                for ((d, v), r) in row.iter_mut().zip(s).zip(r) {
                                    let v = *v + *r;
                                    *d = if relu { crate::simd::relu(v) } else { v };
                                }
                            }
                        }
                    }
                }
                if layout.border {
                    crate::layout::padded::zero_border(dst, out_h, out_w);
                }
            };
            let out_ptr = Shared(out.as_mut_ptr());
            let oc = self.out_channels;
            // Channel block b, once its grid rows are final: finished by the task that
            // computed them, while they are in cache.
            let after = |b: usize, grid: *const f32| {
                for o in b * ocb..((b + 1) * ocb).min(oc) {
                    // SAFETY: channel o's grid row is final and written by no one else; its
                    // plane of `out` belongs to this task alone.
                    let (src, dst) = unsafe {
                        (
                            std::slice::from_raw_parts(grid.add(o * g.grid), g.grid),
                            std::slice::from_raw_parts_mut(
                                out_ptr.get().add(o * layout.chan),
                                layout.chan,
                            ),
                        )
                    };
                    finish(o, src, dst);
                }
            };
            let fused = self.compute(
                packed,
                input,
                &g,
                kernel_relu,
                grid,
                g.grid,
                parallel,
                Some(&after),
            );
            if !fused {
                let out = &mut out[..oc * layout.chan];
                parallel_chunks_mut(out, layout.chan, copy_par, &|o, dst| {
                    finish(o, &grid[o * g.grid..], dst)
                });
            }
        });
    }

    /// One sample from bordered planes to bordered planes: the convolution, its bias, then
    /// `residual` (a channel prefix of the output, of its size) added, then a ReLU if
    /// `relu`. `ahead`: the weights the next step will read (from
    /// [`weights_for`](Self::weights_for)), pulled towards the caches a little per kernel
    /// step while this layer computes, so the next layer does not wait on memory for them:
    /// one face streams every weight once, 22 MB in all, and the late layers' (2.4 MB each)
    /// otherwise arrive slower than the kernel uses them. (Only the small-plane form
    /// prefetches; elsewhere `ahead` is unused.)
    /// A 3×3, stride-1, padding-1 layer reads its input in place and its kernel writes the
    /// output grid straight into the output planes (the grid's row pitch is the bordered
    /// row's: only the border needs zeroing after); small planes take the small-plane form,
    /// reading in place too; other layers go through
    /// [`forward_batch_with`](Self::forward_batch_with)'s path and are copied in.
    pub fn forward_padded(
        &self,
        x: &PaddedPlanes,
        residual: Option<&PaddedPlanes>,
        relu: bool,
        parallel: bool,
        ahead: &[f32],
    ) -> PaddedPlanes {
        assert_eq!(x.c, self.in_channels, "conv input channels");
        let (oh, ow) = self.out_shape(x.h, x.w);
        let oc = self.out_channels;
        if let Some(r) = residual {
            assert!(
                r.c <= oc && (r.h, r.w) == (oh, ow),
                "residual must be a channel prefix of the output"
            );
        }
        let layout = Layout::padded(oh, ow);
        if oh * ow <= SMALL_PLANE && oh * ow > 0 {
            let want = small_block(oh * ow);
            if let Some((_, transposed)) = self.transposed.iter().find(|(b, _)| *b == want) {
                let mut out = PaddedPlanes::uninit(oc, oh, ow, oc);
                let small = Small {
                    transposed,
                    residual: residual.map(|r| (&r.data[..], layout, r.c)),
                    relu,
                    parallel,
                    ahead,
                };
                self.small_into(x.planes(), &small, &mut out.data, layout);
                return out;
            }
        }
        let in_place = (
            self.kh,
            self.kw,
            self.stride_y,
            self.stride_x,
            self.pad_y,
            self.pad_x,
        ) == (3, 3, 1, 1, 1, 1);
        let packed = self.packed_for(x.h, x.w);
        let mut g = self.geometry(x.h, x.w, packed.block);
        if !in_place || oh * ow == 0 || x.chan < g.chan || layout.at(0, 0) + g.grid > layout.chan {
            // Through the polyphase copy, the output written into bordered planes.
            let mut out = PaddedPlanes::uninit(oc, oh, ow, oc);
            let res = residual.map(|r| (&r.data[..], layout, r.c));
            let x = Input::Planes(x.planes());
            self.grid_into(x, res, relu, parallel, None, &mut out.data, layout);
            return out;
        }
        // The input planes are the polyphase layout of a stride-1 layer: read them in place.
        (g.plane, g.chan) = (x.chan, x.chan);
        let ocb = packed.block.channels();
        let blocks = oc.div_ceil(ocb);
        let mut out = PaddedPlanes::uninit(oc, oh, ow, blocks * ocb);
        let chan = out.chan;
        let out_ptr = Shared(out.data.as_mut_ptr());
        // Channel o's planes once its grid is final: residual, ReLU, border.
        let finish = |o: usize| {
            // SAFETY: channel o's plane is final and belongs to the calling task alone.
            let plane =
                unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(o * chan), chan) };
            // The rows as one run from the first output to the last: the border columns
            // in between are zeroed after.
            let (first, last) = (layout.at(0, 0), layout.at(oh - 1, ow));
            match residual {
                Some(r) if o < r.c => {
                    let r = &r.data[o * chan..(o + 1) * chan];
                    crate::ops::add_relu(&mut plane[first..last], Some(&r[first..last]), relu);
                }
                // Past the residual's channels: the ReLU the kernel left out.
                Some(_) if relu => crate::ops::add_relu(&mut plane[first..last], None, true),
                _ => {}
            }
            crate::layout::padded::zero_border(plane, oh, ow);
        };
        let after = |b: usize, _: *const f32| {
            for o in b * ocb..((b + 1) * ocb).min(oc) {
                finish(o);
            }
        };
        let kernel_relu = relu && residual.is_none();
        let grid = &mut out.data[layout.at(0, 0)..];
        let fused = self.compute(
            packed,
            &x.data,
            &g,
            kernel_relu,
            grid,
            chan,
            parallel,
            Some(&after),
        );
        if !fused {
            parallel_for(oc, parallel, &finish);
        }
        out
    }

    /// Several convolutions in a row, each followed by its bias and, where its flag says, a
    /// ReLU: `layers[0]` takes `x`, each next one the previous output. Spread over all
    /// threads, for large planes (a detector's pyramid): each output goes straight from the
    /// kernel's grid into the next layer's padded polyphase input, never compacted in
    /// between. Equal to calling [`forward_par`](Self::forward_par) layer by layer.
    pub fn forward_chain_par(layers: &[(&DirectConv, bool)], x: &Tensor) -> Tensor {
        let Some(((last, _), _)) = layers.split_last() else {
            return x.clone();
        };
        // Grids alternate between two buffers: one read while the other is written. They
        // and the polyphase input are kept between calls on this thread (fresh pages cost
        // more to fault in than to fill).
        let [g0, g1, mut input] = CHAIN_BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
        let mut grids = [g0, g1];
        let (mut c, mut h, mut w) = (x.c, x.h, x.w);
        // Where the current input lives: the tensor, or grid buffer 0 or 1 with its pitches.
        let mut source: Option<(usize, usize, usize)> = None;
        for (i, (layer, relu)) in layers.iter().enumerate() {
            assert_eq!(c, layer.in_channels, "conv input channels");
            let packed = layer.packed_for(h, w);
            let g = layer.geometry(h, w, packed.block);
            if g.oh == 0 || g.ow == 0 || layer.out_channels == 0 {
                let [g0, g1] = grids;
                CHAIN_BUFFERS.with(|b| *b.borrow_mut() = [g0, g1, input]);
                return Tensor::zeros(last.out_channels, 0, 0);
            }
            let planes = match source {
                None => Planes::packed(c, h, w, &x.data),
                Some((buf, row_pitch, chan_pitch)) => Planes {
                    c,
                    h,
                    w,
                    row_pitch,
                    chan_pitch,
                    start: 0,
                    border: 0,
                    data: &grids[buf],
                },
            };
            fill_polyphase(
                planes,
                (layer.stride_y, layer.stride_x),
                (layer.pad_y, layer.pad_x),
                &g,
                &mut input,
                true,
            );
            let out = i % 2;
            let ocb = packed.block.channels();
            let grid = &mut grids[out];
            grid.resize(layer.out_channels.div_ceil(ocb) * ocb * g.grid, 0.0);
            layer.compute(packed, &input, &g, *relu, grid, g.grid, true, None);
            source = Some((out, g.wh, g.grid));
            (c, h, w) = (layer.out_channels, g.oh, g.ow);
        }
        let (buf, row_pitch, chan_pitch) = source.expect("at least one layer ran");
        let grid = &grids[buf];
        let mut out = Tensor::zeros(c, h, w);
        parallel_chunks_mut(&mut out.data, h * w, true, &|o, dst| {
            let src = &grid[o * chan_pitch..];
            for (oy, row) in dst.chunks_exact_mut(w).enumerate() {
                row.copy_from_slice(&src[oy * row_pitch..oy * row_pitch + w]);
            }
        });
        let [g0, g1] = grids;
        CHAIN_BUFFERS.with(|b| *b.borrow_mut() = [g0, g1, input]);
        out
    }

    /// Fills `grid` (`[out channel][out_pitch]`, `g.grid` outputs of each) from the
    /// polyphase input. Where one task
    /// computes all of a channel block's positions (small planes), that task then calls
    /// `after` with the block's index and the grid; returns whether it did so for every block.
    #[allow(clippy::too_many_arguments)]
    fn compute(
        &self,
        packed: &Packed,
        input: &[f32],
        g: &Geometry,
        relu: bool,
        grid: &mut [f32],
        out_pitch: usize,
        parallel: bool,
        after: Option<&(dyn Fn(usize, *const f32) + Sync)>,
    ) -> bool {
        let (sy, sx) = (self.stride_y, self.stride_x);
        let offsets: Vec<usize> = (0..self.kh)
            .flat_map(|ky| {
                (0..self.kw).map(move |kx| {
                    ((ky % sy) * sx + kx % sx) * g.plane + (ky / sy) * g.wh + kx / sx
                })
            })
            .collect();
        let block = packed.block;
        let step = block.vectors() * LANES;
        let ocb = block.channels();
        let blocks = self.out_channels.div_ceil(ocb);
        // Small planes: split the output channels too, so every thread has work.
        let threads = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        // A whole plane per task where a task's channel block of the grid stays in L2 and
        // there are channel blocks enough to go round: the block is then finished (`after`)
        // while still in cache.
        let whole = after.is_some() && blocks >= 2 * threads && ocb * g.grid * 4 <= 256 << 10;
        let task = if whole {
            g.grid
        } else {
            TASK_POSITIONS.div_ceil(step) * step
        };
        let position_tasks = g.grid.div_ceil(task);
        let groups = if threads > 1 && position_tasks < 4 * threads {
            blocks
        } else {
            1
        };
        let per_group = blocks.div_ceil(groups);
        let out = Shared(grid.as_mut_ptr());
        assert!(out_pitch >= g.grid && grid.len() >= (blocks * ocb - 1) * out_pitch + g.grid);
        assert!(input.len() >= self.in_channels * g.chan);
        let k_len = self.in_channels * offsets.len() * ocb;
        // One position task: each channel block is final when its task leaves it.
        let fused = after.is_some() && position_tasks == 1;
        let run = |t: usize| {
            let (pt, grp) = (t / groups, t % groups);
            let p0 = pt * task;
            let p1 = (p0 + task).min(g.grid);
            for b in grp * per_group..((grp + 1) * per_group).min(blocks) {
                let w = &packed.weights[b * k_len..(b + 1) * k_len];
                let bias = &packed.bias[b * ocb..(b + 1) * ocb];
                let mut p = p0;
                while p < p1 {
                    // SAFETY: AVX-512F was detected in `new`. Reads: channel c < in, tap
                    // offset ≤ the plane's slack, p + step ≤ g.grid, all inside `input`
                    // (see `geometry`). Writes: rows b·ocb.. of the grid at p..p + step,
                    // which belong to this task alone.
                    unsafe {
                        let dst = out.get().add(b * ocb * out_pitch + p);
                        let src = input.as_ptr().add(p);
                        let ic = self.in_channels;
                        run_block(
                            block, src, g.chan, &offsets, ic, w, bias, relu, dst, out_pitch,
                        );
                    }
                    p += step;
                }
                if let (Some(after), true) = (after, fused) {
                    after(b, out.get());
                }
            }
        };
        if threads > 1 && groups == 1 {
            // Many position tasks: a large plane.
            parallel_for_coarse(position_tasks, &run);
        } else {
            parallel_for(position_tasks * groups, threads > 1, &run);
        }
        fused
    }
}
