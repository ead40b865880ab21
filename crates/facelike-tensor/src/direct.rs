//! Direct convolution with AVX-512: no column matrix, for large single inputs (a detector's
//! tiled image pyramid).
//!
//! The input is copied once into a zero-padded *polyphase* layout: for stride `sy × sx`, each
//! channel holds `sy·sx` planes, plane `(a, b)` keeping the padded rows `a, a + sy, …` and
//! columns `b, b + sx, …`. Output `(oy, ox)` is then computed on a grid as wide as a phase
//! plane (`wh` columns; those past the real output width are computed and dropped), and every
//! filter tap `(ky, kx)` reads the input at `p + offset(ky, kx)` for output index
//! `p = oy·wh + ox`: a contiguous run for any run of outputs, across row ends too. So the
//! kernel sweeps the whole output plane as one long vector, 16 outputs per register, keeping a
//! block of `OCB` output channels × `NV` registers of outputs in registers while it walks all
//! `in × kh × kw` taps: per tap, `NV` loads and `OCB` weight broadcasts feed `OCB·NV` FMAs.
//!
//! Sums run over (channel, ky, kx) in that order, with fused multiply-adds; results differ
//! from the im2col path by float rounding only.

use crate::padded::PaddedPlanes;
use crate::team::{parallel_chunks_mut, parallel_for, parallel_for_coarse};
use crate::{BatchTensor, Conv2d, Epilogue, Tensor};
use std::cell::RefCell;

/// Floats per vector register.
pub(crate) const LANES: usize = 16;

/// Output positions per parallel task (several register blocks: the task's input window and
/// the weights stay in L2 while it sweeps every output-channel block over it).
const TASK_POSITIONS: usize = 2048;

thread_local! {
    /// The small-plane form's padded input and position-major result, reused between calls.
    static SMALL_BUFFERS: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
    /// Two grids and a polyphase input for `forward_chain_par`, reused between calls.
    static CHAIN_BUFFERS: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
    /// The polyphase input and the output grid, reused between calls on the calling thread.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

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
    const ALL: [Block; 5] = [
        Block::C8V3,
        Block::C9V3,
        Block::C5V5,
        Block::C1V8,
        Block::C16V1,
    ];
}

/// Weights packed for one block shape: `[channel block][in][kh·kw][OCB]`, padded with zero
/// filters, and one bias per padded output channel.
#[derive(Clone, Debug)]
struct Packed {
    block: Block,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// A convolution prepared for [`DirectConv::forward_par`]; built only where the CPU has
/// AVX-512F (see [`DirectConv::new`]).
#[derive(Clone, Debug)]
pub struct DirectConv {
    pub out_channels: usize,
    pub in_channels: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_y: usize,
    pub stride_x: usize,
    pub pad_y: usize,
    pub pad_x: usize,
    /// The weights packed for each block shape this layer may use (chosen per input size).
    packed: Vec<Packed>,
    /// For outputs of at most [`SMALL_PLANE`] positions, per block shape: the weights
    /// transposed in blocks of output channels, `[channel block][in·kh·kw][NV·16]`, padded
    /// with zero filters (see `forward_small`).
    transposed: Vec<(Block, Vec<f32>)>,
}

/// Output planes up to this many positions take the small-plane form: the output channels
/// in the vector lanes and the positions broadcast, so that a 3×3 plane does not fill 16
/// lanes with 9 positions.
const SMALL_PLANE: usize = 64;

/// The register block of the small-plane form for a plane of `positions` outputs: the
/// kernel's channels are positions here, its vectors output channels.
fn small_block(positions: usize) -> Block {
    match positions {
        1 => Block::C1V8,
        2..=9 => Block::C9V2,
        // One block of positions reads every weight once (a 4×4 plane at 256 channels has
        // 2.4 MB of them, more than the L2 cache).
        10..=16 => Block::C16V1,
        _ => Block::C8V2,
    }
}

/// A C × H × W input, borrowed from a [`Tensor`] or a one-sample [`BatchTensor`].
#[derive(Clone, Copy)]
pub(crate) struct Planes<'a> {
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    /// Floats from one row to the next, and from one channel to the next (`w` and `h · w`
    /// when packed; wider for a direct convolution's output grid).
    pub(crate) row_pitch: usize,
    pub(crate) chan_pitch: usize,
    /// Where element (0, 0, 0) is in `data`.
    pub(crate) start: usize,
    /// Rows and columns of zeros around each plane in `data` (a [`PaddedPlanes`] has one).
    pub(crate) border: usize,
    pub(crate) data: &'a [f32],
}

impl<'a> Planes<'a> {
    /// Packed C × H × W planes.
    pub(crate) fn packed(c: usize, h: usize, w: usize, data: &'a [f32]) -> Self {
        Planes {
            c,
            h,
            w,
            row_pitch: w,
            chan_pitch: h * w,
            start: 0,
            border: 0,
            data,
        }
    }
}

impl<'a> From<&'a Tensor> for Planes<'a> {
    fn from(t: &'a Tensor) -> Self {
        Planes::packed(t.c, t.h, t.w, &t.data)
    }
}

/// An image of interleaved 8-bit channels (RGB), byte `v` of channel `c` standing for the
/// float `(v − offsets[c]) · scale`, computed in that order in f32 (dlib's input layer:
/// the mean subtracted, then a power-of-two scale): a network's input before conversion.
/// The first layer converts it while laying it out for the kernel (one pass over the pixels
/// instead of two).
#[derive(Clone, Copy)]
pub struct MappedBytes<'a> {
    /// `h · w · offsets.len()` bytes, row-major, channels interleaved.
    pub data: &'a [u8],
    pub h: usize,
    pub w: usize,
    /// One per channel.
    pub offsets: &'a [f32],
    pub scale: f32,
}

impl MappedBytes<'_> {
    /// Channels.
    pub fn channels(&self) -> usize {
        self.offsets.len()
    }

    /// The float channel `c` stands for with byte `v`.
    #[inline(always)]
    pub fn value(&self, c: usize, v: u8) -> f32 {
        (v as f32 - self.offsets[c]) * self.scale
    }

    /// The float tensor these bytes stand for (one sample).
    pub fn to_batch(&self) -> BatchTensor {
        let c = self.channels();
        assert_eq!(
            self.data.len(),
            self.h * self.w * c,
            "bytes of an h × w × c image"
        );
        let mut data = Vec::with_capacity(c * self.h * self.w);
        for ch in 0..c {
            let table: [f32; 256] = std::array::from_fn(|v| self.value(ch, v as u8));
            data.extend(self.data.chunks_exact(c).map(|px| table[px[ch] as usize]));
        }
        BatchTensor::from_vec(c, 1, self.h, self.w, data)
    }
}

/// A convolution's input: float planes, or bytes converted on the way in.
#[derive(Clone, Copy)]
enum Input<'a> {
    Planes(Planes<'a>),
    Bytes(MappedBytes<'a>),
}

impl Input<'_> {
    fn shape(&self) -> (usize, usize, usize) {
        match self {
            Input::Planes(p) => (p.c, p.h, p.w),
            Input::Bytes(b) => (b.channels(), b.h, b.w),
        }
    }
}

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

/// Where a layer's output (or a residual) keeps element `(c, y, x)`: at
/// `c·chan + start + y·row + x`; with `border`, each channel is a bordered plane of
/// [`PaddedPlanes`] whose border (and slack) the writer zeroes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) chan: usize,
    pub(crate) row: usize,
    pub(crate) start: usize,
    pub(crate) border: bool,
}

impl Layout {
    /// Packed `h × w` planes.
    pub(crate) fn packed(h: usize, w: usize) -> Self {
        Layout {
            chan: h * w,
            row: w,
            start: 0,
            border: false,
        }
    }

    /// The planes of [`PaddedPlanes`] holding `h × w`.
    pub(crate) fn padded(h: usize, w: usize) -> Self {
        Layout {
            chan: PaddedPlanes::chan_for(h, w),
            row: w + 2,
            start: w + 3,
            border: true,
        }
    }

    /// Offset of `(y, x)` within a channel.
    pub(crate) fn at(self, y: usize, x: usize) -> usize {
        self.start + y * self.row + x
    }

    /// Whether an `h × w` plane fits in a channel.
    fn fits(self, h: usize, w: usize) -> bool {
        h == 0 || w == 0 || (self.row >= w && self.at(h - 1, w - 1) < self.chan)
    }
}

/// The small-plane form's arguments besides input and output.
#[derive(Clone, Copy)]
struct Small<'a> {
    transposed: &'a [f32],
    /// Residual values, their layout and how many channels they cover.
    residual: Option<(&'a [f32], Layout, usize)>,
    relu: bool,
    parallel: bool,
    ahead: &'a [f32],
}

/// A pointer shared by tasks that touch disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub(crate) *mut f32);
// SAFETY: tasks write disjoint ranges (see each use).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}
impl Shared {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

impl DirectConv {
    /// Whether this CPU can run direct convolutions. Setting `FACELIKE_NO_AVX512` in the
    /// environment turns them off, so the portable path can be tested on AVX-512 machines.
    pub fn supported() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            *SUPPORTED.get_or_init(|| {
                std::env::var_os("FACELIKE_NO_AVX512").is_none()
                    && is_x86_feature_detected!("avx512f")
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Packs `conv`'s weights for the direct kernel; `None` where the CPU lacks AVX-512F.
    /// `sizes`: the input sizes (height, width) the layer will see, which decide the
    /// register blocks to prepare; inputs of other sizes use the nearest prepared one.
    pub fn new(conv: &Conv2d, sizes: &[(usize, usize)]) -> Option<Self> {
        if !Self::supported() || conv.stride_x == 0 || conv.stride_y == 0 || sizes.is_empty() {
            return None;
        }
        let mut d = DirectConv {
            out_channels: conv.out_channels,
            in_channels: conv.in_channels,
            kh: conv.kh,
            kw: conv.kw,
            stride_y: conv.stride_y,
            stride_x: conv.stride_x,
            pad_y: conv.pad_y,
            pad_x: conv.pad_x,
            packed: Vec::new(),
            transposed: Vec::new(),
        };
        let small = |&&(h, w): &&(usize, usize)| {
            let (oh, ow) = conv.out_shape(h, w);
            oh * ow <= SMALL_PLANE
        };
        for &(h, w) in sizes.iter().filter(|s| small(s)) {
            let (oh, ow) = conv.out_shape(h, w);
            let block = small_block(oh * ow);
            if d.transposed.iter().any(|(b, _)| *b == block) {
                continue;
            }
            let k = conv.filter_len();
            let width = block.vectors() * LANES;
            let blocks = conv.out_channels.div_ceil(width);
            let mut t = vec![0f32; blocks * k * width];
            for (o, filter) in conv.weights.chunks_exact(k).enumerate() {
                let (b, j) = (o / width, o % width);
                for (i, v) in filter.iter().enumerate() {
                    t[(b * k + i) * width + j] = *v;
                }
            }
            d.transposed.push((block, t));
        }
        let mut blocks: Vec<Block> = sizes
            .iter()
            .filter(|s| !small(s))
            .map(|&(h, w)| d.block_for(h, w))
            .collect();
        if blocks.is_empty() {
            // Still have one packing for other sizes.
            blocks.push(d.block_for(64, 64));
        }
        blocks.dedup();
        for block in Block::ALL.into_iter().filter(|b| blocks.contains(b)) {
            let ocb = block.channels();
            let nb = conv.out_channels.div_ceil(ocb);
            let (ic, taps) = (conv.in_channels, conv.kh * conv.kw);
            let mut weights = vec![0f32; nb * ic * taps * ocb];
            for o in 0..conv.out_channels {
                let (b, j) = (o / ocb, o % ocb);
                for c in 0..ic {
                    for t in 0..taps {
                        weights[((b * ic + c) * taps + t) * ocb + j] =
                            conv.weights[(o * ic + c) * taps + t];
                    }
                }
            }
            let mut bias = vec![0f32; nb * ocb];
            if let Some(b) = &conv.bias {
                bias[..conv.out_channels].copy_from_slice(b);
            }
            d.packed.push(Packed {
                block,
                weights,
                bias,
            });
        }
        Some(d)
    }

    /// The block shape for an `h × w` input.
    fn block_for(&self, h: usize, w: usize) -> Block {
        let (oh, _) = self.out_shape(h, w);
        let wh = (w + 2 * self.pad_x).div_ceil(self.stride_x);
        Block::choose(self.out_channels, oh * wh)
    }

    /// The prepared packing for an `h × w` input.
    fn packed_for(&self, h: usize, w: usize) -> &Packed {
        let want = self.block_for(h, w);
        self.packed
            .iter()
            .find(|p| p.block == want)
            .unwrap_or(&self.packed[0])
    }

    /// Output height and width for an `h × w` input.
    pub fn out_shape(&self, h: usize, w: usize) -> (usize, usize) {
        (
            Conv2d::out_size(h, self.kh, self.stride_y, self.pad_y),
            Conv2d::out_size(w, self.kw, self.stride_x, self.pad_x),
        )
    }

    fn geometry(&self, h: usize, w: usize, block: Block) -> Geometry {
        let (oh, ow) = self.out_shape(h, w);
        let (sy, sx) = (self.stride_y, self.stride_x);
        let hh = (h + 2 * self.pad_y).div_ceil(sy);
        let wh = (w + 2 * self.pad_x).div_ceil(sx);
        let step = block.vectors() * LANES;
        let grid = (oh * wh).div_ceil(step) * step;
        // The last register block reads up to `grid + largest tap offset` in the last phase
        // plane of the last channel: give every plane room for that, so reads stay inside.
        let max_tap = ((self.kh - 1) / sy) * wh + (self.kw - 1) / sx;
        let plane = (hh * wh).max(grid + max_tap);
        Geometry {
            oh,
            ow,
            wh,
            plane,
            chan: sy * sx * plane,
            grid,
        }
    }

    /// The convolution plus bias (and a ReLU if `relu`), spread over rayon's threads.
    pub fn forward_par(&self, x: &Tensor, relu: bool) -> Tensor {
        self.forward_with(
            x,
            Epilogue {
                residual: None,
                relu,
            },
            true,
        )
    }

    /// The convolution followed by `epilogue` (bias, residual, ReLU: see [`Epilogue`]); with
    /// `parallel`, spread over rayon's threads.
    pub fn forward_with(&self, x: &Tensor, epilogue: Epilogue<'_>, parallel: bool) -> Tensor {
        self.forward_planes(x, epilogue, parallel, None)
    }

    /// [`forward_with`](Self::forward_with) for a batch of one sample (laid out as a tensor).
    pub fn forward_batch_with(
        &self,
        x: &BatchTensor,
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) -> BatchTensor {
        assert_eq!(x.n, 1, "direct convolution takes one sample");
        let view = Planes::packed(x.c, x.h, x.w, &x.data);
        BatchTensor::from_tensor(self.forward_planes(view, epilogue, parallel, None))
    }

    /// The packed weights a call on an `h × w` input reads (for another layer's
    /// [`forward_padded`](Self::forward_padded) to fetch ahead).
    pub fn weights_for(&self, h: usize, w: usize) -> &[f32] {
        let (oh, ow) = self.out_shape(h, w);
        if oh * ow <= SMALL_PLANE && oh * ow > 0 {
            let want = small_block(oh * ow);
            if let Some((_, t)) = self.transposed.iter().find(|(b, _)| *b == want) {
                return t;
            }
        }
        &self.packed_for(h, w).weights
    }

    /// [`forward_batch_with`](Self::forward_batch_with) (bias, and ReLU if `relu`) followed
    /// by a `k × k` max pool at `stride` with no padding, taken from the kernel's output grid
    /// (the convolution's own output is never stored). Equal to the two in a row.
    pub fn forward_max_pool_batch(
        &self,
        x: &BatchTensor,
        relu: bool,
        k: usize,
        stride: usize,
        parallel: bool,
    ) -> BatchTensor {
        assert_eq!(x.n, 1, "direct convolution takes one sample");
        assert!(k > 0 && stride > 0, "pool window and stride");
        let view = Planes::packed(x.c, x.h, x.w, &x.data);
        let epilogue = Epilogue {
            residual: None,
            relu,
        };
        BatchTensor::from_tensor(self.forward_planes(view, epilogue, parallel, Some((k, stride))))
    }

    /// `max_pool`: `(k, stride)` of a max pool (no padding) applied to the result, while
    /// the grid is still in cache; with no residual.
    fn forward_planes<'x>(
        &self,
        x: impl Into<Planes<'x>>,
        epilogue: Epilogue<'_>,
        parallel: bool,
        max_pool: Option<(usize, usize)>,
    ) -> Tensor {
        let x: Planes<'x> = x.into();
        assert_eq!(x.c, self.in_channels, "conv input channels");
        assert!(
            max_pool.is_none() || epilogue.residual.is_none(),
            "no residual before a pool"
        );
        let (oh, ow) = self.out_shape(x.h, x.w);
        if oh * ow <= SMALL_PLANE && oh * ow > 0 {
            let want = small_block(oh * ow);
            if let Some((_, t)) = self.transposed.iter().find(|(b, _)| *b == want) {
                let y = self.forward_small(x, t, epilogue, parallel);
                return match max_pool {
                    Some((k, s)) => crate::pool(&y, crate::Pool::Max, k, k, s, s, 0, 0),
                    None => y,
                };
            }
        }
        let (out_h, out_w) = self.pooled_shape(x.h, x.w, max_pool);
        let mut out = Tensor::zeros(self.out_channels, out_h, out_w);
        let residual = epilogue.residual.map(|r| {
            assert!(
                r.len() % (oh * ow).max(1) == 0 && r.len() <= oh * ow * self.out_channels,
                "residual must be a channel prefix of the output"
            );
            (r, Layout::packed(oh, ow), r.len() / (oh * ow).max(1))
        });
        let layout = Layout::packed(out_h, out_w);
        self.grid_into(
            Input::Planes(x),
            residual,
            epilogue.relu,
            parallel,
            max_pool,
            &mut out.data,
            layout,
        );
        out
    }

    /// Output height and width for an `h × w` input, after the max pool if any.
    fn pooled_shape(&self, h: usize, w: usize, max_pool: Option<(usize, usize)>) -> (usize, usize) {
        let (oh, ow) = self.out_shape(h, w);
        match max_pool {
            Some((k, s)) => (Conv2d::out_size(oh, k, s, 0), Conv2d::out_size(ow, k, s, 0)),
            None => (oh, ow),
        }
    }

    /// The grid form (the module docs) into `out` in `layout`: the convolution, bias,
    /// `residual` (values, their layout, their channels), ReLU if `relu`, then the max pool
    /// if any (with no residual).
    #[allow(clippy::too_many_arguments)]
    fn grid_into(
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
                    crate::padded::zero_border(plane, out_h, out_w);
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
                                    *d = crate::relu(*v);
                                }
                            }
                            None => row.copy_from_slice(s),
                            Some((r, l)) => {
                                let r = &r[l.at(oy, 0)..][..g.ow];
                                for ((d, v), r) in row.iter_mut().zip(s).zip(r) {
                                    let v = *v + *r;
                                    *d = if relu { crate::relu(v) } else { v };
                                }
                            }
                        }
                    }
                }
                if layout.border {
                    crate::padded::zero_border(dst, out_h, out_w);
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

    /// [`forward_max_pool_batch`](Self::forward_max_pool_batch) into bordered planes.
    pub fn forward_max_pool_padded(
        &self,
        x: &BatchTensor,
        relu: bool,
        k: usize,
        stride: usize,
        parallel: bool,
    ) -> PaddedPlanes {
        assert_eq!(x.n, 1, "direct convolution takes one sample");
        assert!(k > 0 && stride > 0, "pool window and stride");
        let (oh, ow) = self.out_shape(x.h, x.w);
        if oh * ow <= SMALL_PLANE {
            let y = self.forward_max_pool_batch(x, relu, k, stride, parallel);
            return PaddedPlanes::from_batch(&y);
        }
        let view = Planes::packed(x.c, x.h, x.w, &x.data);
        self.pool_into_padded(Input::Planes(view), relu, (k, stride), parallel)
    }

    /// [`forward_max_pool_padded`](Self::forward_max_pool_padded) of the floats `x` stands
    /// for, converting them while they are laid out for the kernel; equal to it on
    /// [`MappedBytes::to_batch`].
    pub fn forward_max_pool_padded_bytes(
        &self,
        x: MappedBytes<'_>,
        relu: bool,
        k: usize,
        stride: usize,
        parallel: bool,
    ) -> PaddedPlanes {
        assert_eq!(x.channels(), self.in_channels, "conv input channels");
        assert_eq!(x.data.len(), x.h * x.w * x.channels(), "bytes of the image");
        assert!(k > 0 && stride > 0, "pool window and stride");
        let (oh, ow) = self.out_shape(x.h, x.w);
        if oh * ow <= SMALL_PLANE {
            return self.forward_max_pool_padded(&x.to_batch(), relu, k, stride, parallel);
        }
        self.pool_into_padded(Input::Bytes(x), relu, (k, stride), parallel)
    }

    /// The grid form with a max pool, into new bordered planes.
    fn pool_into_padded(
        &self,
        x: Input<'_>,
        relu: bool,
        pool: (usize, usize),
        parallel: bool,
    ) -> PaddedPlanes {
        let (_, h, w) = x.shape();
        let (out_h, out_w) = self.pooled_shape(h, w, Some(pool));
        let oc = self.out_channels;
        let mut out = PaddedPlanes::uninit(oc, out_h, out_w, oc);
        let layout = Layout::padded(out_h, out_w);
        self.grid_into(x, None, relu, parallel, Some(pool), &mut out.data, layout);
        out
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
            crate::padded::zero_border(plane, oh, ow);
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

    /// The small-plane form: the transposed weights times the input windows of blocks of
    /// output positions (each input value broadcast from the padded planes), with the output
    /// channels in the vector lanes; the result is position-major and transposed back while
    /// the epilogue is applied.
    fn forward_small(
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
    fn small_into(&self, x: Planes<'_>, small: &Small<'_>, out: &mut [f32], layout: Layout) {
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
                    crate::padded::zero_border(&mut plane[..layout.chan], oh, ow);
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
fn fill_polyphase_bytes(
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

/// The mask of the first `n` lanes of a 16-float vector (all of them for `n ≥ 16`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn first_lanes(n: usize) -> std::arch::x86_64::__mmask16 {
    if n >= LANES {
        !0
    } else {
        (1u16 << n) - 1
    }
}

/// `dst[b·pitch + k] = src[stride·k + b]` for every phase `b < stride` and `k < count`:
/// splits a padded row into its column phases (stride 2 or 4 with AVX-512, else plainly).
pub(crate) fn deinterleave(
    src: &[f32],
    stride: usize,
    dst: &mut [f32],
    pitch: usize,
    count: usize,
) {
    assert!(src.len() >= stride * count && dst.len() >= (stride - 1) * pitch + count);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if (stride == 2 || stride == 4) && is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was just detected; the bounds were asserted above.
        done = unsafe { deinterleave_avx512(src, stride, dst, pitch, count) };
    }
    for b in 0..stride {
        for k in done..count {
            dst[b * pitch + k] = src[stride * k + b];
        }
    }
}

/// [`deinterleave`] 16 values of each phase at a time (the last group masked); returns
/// how many values of each phase it wrote (all).
///
/// # Safety
/// AVX-512F, and the bounds [`deinterleave`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn deinterleave_avx512(
    src: &[f32],
    stride: usize,
    dst: &mut [f32],
    pitch: usize,
    count: usize,
) -> usize {
    use std::arch::x86_64::*;
    let first = first_lanes;
    // Pointers past the data are formed (wrapping) but only used under masks that keep
    // every access inside `src` and `dst`: masked-off lanes are never touched.
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    // Inputs at and past `limit` are not read (masked to zero).
    let limit = stride * count;
    let mut k = 0;
    if stride == 2 {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        while k < count {
            let at = 2 * k;
            let v0 = _mm512_maskz_loadu_ps(first(limit - at), s.wrapping_add(at));
            let v1 = _mm512_maskz_loadu_ps(
                first(limit.saturating_sub(at + 16)),
                s.wrapping_add(at + 16),
            );
            let m = first(count - k);
            _mm512_mask_storeu_ps(d.wrapping_add(k), m, _mm512_permutex2var_ps(v0, even, v1));
            _mm512_mask_storeu_ps(
                d.wrapping_add(pitch + k),
                m,
                _mm512_permutex2var_ps(v0, odd, v1),
            );
            k += LANES;
        }
    } else {
        // Phase b of 64 values: lanes 0..8 pick b, b+4, … from (v0, v1), the same from
        // (v2, v3), then the two halves are joined.
        let pick = |b: i32| {
            _mm512_setr_epi32(
                b,
                b + 4,
                b + 8,
                b + 12,
                b + 16,
                b + 20,
                b + 24,
                b + 28,
                b,
                b + 4,
                b + 8,
                b + 12,
                b + 16,
                b + 20,
                b + 24,
                b + 28,
            )
        };
        let picks = [pick(0), pick(1), pick(2), pick(3)];
        let join = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
        while k < count {
            let at = 4 * k;
            let v0 = _mm512_maskz_loadu_ps(first(limit - at), s.wrapping_add(at));
            let v1 = _mm512_maskz_loadu_ps(
                first(limit.saturating_sub(at + 16)),
                s.wrapping_add(at + 16),
            );
            let v2 = _mm512_maskz_loadu_ps(
                first(limit.saturating_sub(at + 32)),
                s.wrapping_add(at + 32),
            );
            let v3 = _mm512_maskz_loadu_ps(
                first(limit.saturating_sub(at + 48)),
                s.wrapping_add(at + 48),
            );
            let m = first(count - k);
            for (b, p) in picks.iter().enumerate() {
                let lo = _mm512_permutex2var_ps(v0, *p, v1);
                let hi = _mm512_permutex2var_ps(v2, *p, v3);
                let out = _mm512_permutex2var_ps(lo, join, hi);
                _mm512_mask_storeu_ps(d.wrapping_add(b * pitch + k), m, out);
            }
            k += LANES;
        }
    }
    count
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

/// Cache lines for a kernel to prefetch while it runs: `lines` of 64 bytes from `at`.
/// Prefetching never faults, so `at` need only point into (or just past) an allocation.
#[derive(Clone, Copy)]
pub(crate) struct Prefetch {
    pub(crate) at: *const u8,
    pub(crate) lines: usize,
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

#[cfg(test)]
mod tests {
    use super::deinterleave;
    use crate::{Conv2d, DirectConv, MappedBytes};

    #[test]
    fn bytes_converted_on_the_way_in_equal_converted_floats() {
        if !DirectConv::supported() {
            return;
        }
        let offsets = [122.782, 117.001, 104.298];
        // The stem (7×7/2, no padding: the vector fill), a padded stride-1 layer and a
        // padded stride-2 one (the plain fill), on odd and even sizes.
        for (k, stride, pad, size) in [(7, 2, 0, 150), (7, 2, 0, 37), (3, 1, 1, 21), (3, 2, 1, 30)]
        {
            let conv = Conv2d {
                out_channels: 16,
                in_channels: 3,
                kh: k,
                kw: k,
                stride_y: stride,
                stride_x: stride,
                pad_y: pad,
                pad_x: pad,
                weights: (0..16 * 3 * k * k)
                    .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
                    .collect(),
                bias: Some((0..16).map(|o| o as f32 * 0.01).collect()),
            };
            let d = DirectConv::new(&conv, &[(size, size)]).unwrap();
            let bytes: Vec<u8> = (0..size * size * 3)
                .map(|i| ((i * 31) % 256) as u8)
                .collect();
            let x = MappedBytes {
                data: &bytes,
                h: size,
                w: size,
                offsets: &offsets,
                scale: 1.0 / 256.0,
            };
            let floats = x.to_batch();
            // Each value as dlib's input layer computes it.
            for (ch, &avg) in offsets.iter().enumerate() {
                for (i, px) in bytes.chunks_exact(3).enumerate() {
                    let want = (px[ch] as f32 - avg) / 256.0;
                    assert_eq!(floats.data[ch * size * size + i], want);
                }
            }
            for parallel in [false, true] {
                let got = d.forward_max_pool_padded_bytes(x, true, 3, 2, parallel);
                let want = d.forward_max_pool_padded(&floats, true, 3, 2, parallel);
                assert_eq!(
                    got.to_batch().data,
                    want.to_batch().data,
                    "{k}x{k}/{stride} pad {pad} on {size}x{size}"
                );
                assert!(got.to_batch().data.iter().any(|v| *v > 0.0));
            }
        }
    }

    #[test]
    fn deinterleave_splits_phases_for_every_length() {
        for stride in [2, 3, 4] {
            for count in [0, 1, 5, 15, 16, 17, 40, 64, 65] {
                let src: Vec<f32> = (0..stride * count + 3).map(|i| i as f32).collect();
                let pitch = count + 7;
                let mut dst = vec![-1f32; stride * pitch];
                deinterleave(&src, stride, &mut dst, pitch, count);
                for b in 0..stride {
                    for k in 0..pitch {
                        let want = if k < count {
                            (stride * k + b) as f32
                        } else {
                            -1.0
                        };
                        assert_eq!(dst[b * pitch + k], want, "stride {stride} count {count}");
                    }
                }
            }
        }
    }
}
