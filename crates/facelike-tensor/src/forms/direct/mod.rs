//! Direct convolution with AVX-512: no column matrix, for large single inputs (a detector's
//! tiled image pyramid) and for one sample of a face network.
//!
//! The input is copied once into a zero-padded *polyphase* layout (`crate::layout::polyphase`):
//! for stride `sy × sx`, each channel holds `sy·sx` planes, plane `(a, b)` keeping the padded
//! rows `a, a + sy, …` and columns `b, b + sx, …`. Output `(oy, ox)` is then computed on a grid as wide as a phase
//! plane (`wh` columns; those past the real output width are computed and dropped), and every
//! filter tap `(ky, kx)` reads the input at `p + offset(ky, kx)` for output index
//! `p = oy·wh + ox`: a contiguous run for any run of outputs, across row ends too. So the
//! kernel sweeps the whole output plane as one long vector, 16 outputs per register, keeping a
//! block of `OCB` output channels × `NV` registers of outputs in registers while it walks all
//! `in × kh × kw` taps: per tap, `NV` loads and `OCB` weight broadcasts feed `OCB·NV` FMAs.
//!
//! Sums run over (channel, ky, kx) in that order, with fused multiply-adds; results differ
//! from the im2col path by float rounding only.
//!
//! This module holds [`DirectConv`], its packings and its one-call entry points; the grid
//! form's drivers (one layer, bordered planes, a chain of layers) are in `grid`, and the
//! small-plane form (output channels in the lanes, for planes of up to 64 outputs) in
//! `small`. The register-blocked products themselves are in `crate::kernels`.

mod grid;
mod small;

use crate::forms::conv::{Conv2d, Epilogue};
use crate::kernels::Block;
use crate::layout::bytes::MappedBytes;
use crate::layout::padded::PaddedPlanes;
use crate::layout::planes::{Layout, Planes};
use crate::layout::polyphase::Geometry;
use crate::layout::tensor::{BatchTensor, Tensor};
use crate::simd::LANES;
use grid::Input;

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
    /// Output channels (filters). Copied from the [`Conv2d`].
    pub out_channels: usize,
    /// Input channels each filter reads. Copied from the [`Conv2d`].
    pub in_channels: usize,
    /// Filter rows. Copied from the [`Conv2d`].
    pub kh: usize,
    /// Filter columns. Copied from the [`Conv2d`].
    pub kw: usize,
    /// Vertical stride, in input rows. Copied from the [`Conv2d`].
    pub stride_y: usize,
    /// Horizontal stride, in input columns. Copied from the [`Conv2d`].
    pub stride_x: usize,
    /// Zero rows added above and below the input. Copied from the [`Conv2d`].
    pub pad_y: usize,
    /// Zero columns added left and right of the input. Copied from the [`Conv2d`].
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

impl DirectConv {
    /// Whether this CPU can run direct convolutions. Setting `FACELIKE_NO_AVX512` in the
    /// environment turns them off, so the portable path can be tested on AVX-512 machines.
    pub fn supported() -> bool {
        crate::simd::avx512_allowed()
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
                    Some((k, s)) => crate::ops::pool(&y, crate::ops::Pool::Max, k, k, s, s, 0, 0),
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
}

#[cfg(test)]
mod tests {
    use super::DirectConv;
    use crate::forms::conv::Conv2d;
    use crate::layout::bytes::MappedBytes;

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
}
