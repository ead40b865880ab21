//! # facelike-tensor: the CPU kernels behind facelike's networks
//!
//! A single-sample tensor type ([`Tensor`], channels × height × width, f32), a batched one
//! ([`BatchTensor`], channels × samples × height × width) and the layer operations dlib's face
//! networks need, with dlib's exact semantics: cross-correlation convolution with bias,
//! per-channel affine, ReLU, max/average pooling over windows clipped to the image, and dlib's
//! `add_prev` that zero-pads mismatched shapes.
//!
//! Convolution runs as im2col + GEMM (the `gemm` crate, which picks AVX2/AVX-512/NEON kernels
//! at run time), building the column matrix a few output rows at a time so that large inputs
//! (a detector's image pyramid) stay in cache. [`Conv2d::forward_reference`] keeps the direct
//! loops as the definition the fast path is tested against. [`Winograd3x3`] computes stride-1
//! 3×3 convolutions with 4× fewer multiplications (F(4×4, 3×3)), for layers with enough tiles.
//!
//! Where the CPU has AVX-512F, one large image or one sample runs on hand-written kernels
//! instead: [`DirectConv`] convolves directly from a zero-padded polyphase copy of the input
//! (no column matrix; [`DirectConv::forward_chain_par`] passes a whole detector network's
//! planes from layer to layer in that form), with a small-plane form that puts output
//! channels in the vector lanes for the late layers of a face network, and
//! [`DirectConv::forward_padded`] passes one sample's activations between layers as
//! [`PaddedPlanes`] (zero-bordered planes each kernel reads in place and writes straight
//! into, fetching the next layer's weights as it goes), the first layer taking the image's
//! bytes as [`MappedBytes`] and converting them as it lays them out; [`DirectWinograd`] is
//! F(4×4, 3×3) on the same kernels for one sample, and [`PhaseWinograd`] F(2×2, 3×3) or
//! F(4×4, 3×3) on activations passed between layers as [`PhasePlanes`] (a polyphase layout
//! in which 16 tiles' transform inputs and outputs are plain vector loads and stores), with
//! [`SmallWinograd`] its form for planes of up to 8×8 (filters in the lanes). Their steps are spread over the cores by a
//! low-latency loop (a caller plus spinning helpers) that runs alone when the machine stays
//! crowded.
//!
//! Model code (facelike's ResNet and MMOD detector) lives elsewhere; this crate only computes.

mod conv;
mod direct;
mod direct_winograd;
mod ops;
mod padded;
mod peak;
mod phase;
mod small_winograd;
mod team;
mod winograd;

pub use conv::{Conv2d, Epilogue};
pub use direct::{DirectConv, MappedBytes};
pub use direct_winograd::DirectWinograd;
pub use ops::{
    add_zero_padded, add_zero_padded_batch, affine_inplace, global_avg_pool, global_avg_pool_batch,
    pool, pool_batch, pool_batch_with, relu_inplace, Pool,
};
pub use padded::PaddedPlanes;
pub use peak::peak_gflops_one_core;
pub use phase::{PhasePlanes, PhaseWinograd};
pub use small_winograd::SmallWinograd;
pub use winograd::Winograd3x3;

/// `max(0, v)`, written so that loops of it vectorise (`f32::max` orders NaNs, which keeps
/// it scalar; for NaN input this returns 0 where dlib's `max` would pass the NaN on).
#[inline(always)]
pub fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// A C×H×W float tensor, row-major within each channel plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Tensor {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }
    pub fn from_vec(c: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            c * h * w,
            "tensor data does not match its shape"
        );
        Tensor { c, h, w, data }
    }
    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
    pub fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

/// A batch of `n` samples stored channel-major: C × N × H × W.
///
/// This layout makes a convolution over the whole batch one GEMM whose columns run over
/// (sample, row, column), so the small late layers of a network still give the GEMM wide
/// matrices; per-channel operations (bias, affine) touch one contiguous run per channel; and
/// dlib's channel zero-padding in `add_prev` becomes "add to a prefix". A batch of one is
/// laid out exactly like a [`Tensor`].
#[derive(Clone, Debug, PartialEq)]
pub struct BatchTensor {
    pub c: usize,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl BatchTensor {
    pub fn zeros(c: usize, n: usize, h: usize, w: usize) -> Self {
        BatchTensor {
            c,
            n,
            h,
            w,
            data: vec![0.0; c * n * h * w],
        }
    }
    pub fn from_vec(c: usize, n: usize, h: usize, w: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            c * n * h * w,
            "batch tensor data does not match its shape"
        );
        BatchTensor { c, n, h, w, data }
    }
    /// A batch holding one sample (no copy: the layouts coincide).
    pub fn from_tensor(t: Tensor) -> Self {
        BatchTensor {
            c: t.c,
            n: 1,
            h: t.h,
            w: t.w,
            data: t.data,
        }
    }
    /// Stacks samples of one shape into a batch.
    pub fn stack(samples: &[Tensor]) -> Self {
        let first = samples.first().expect("stack needs at least one sample");
        let (c, h, w) = (first.c, first.h, first.w);
        let mut b = BatchTensor::zeros(c, samples.len(), h, w);
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(
                (s.c, s.h, s.w),
                (c, h, w),
                "stacked samples differ in shape"
            );
            for ch in 0..c {
                b.plane_mut(ch, i).copy_from_slice(s.plane(ch));
            }
        }
        b
    }
    /// Sample `i` as a C×H×W tensor (a copy).
    pub fn sample(&self, i: usize) -> Tensor {
        let mut t = Tensor::zeros(self.c, self.h, self.w);
        let hw = self.h * self.w;
        for ch in 0..self.c {
            t.data[ch * hw..(ch + 1) * hw].copy_from_slice(self.plane(ch, i));
        }
        t
    }
    /// The H×W plane of channel `c`, sample `i`.
    pub fn plane(&self, c: usize, i: usize) -> &[f32] {
        let hw = self.h * self.w;
        let at = (c * self.n + i) * hw;
        &self.data[at..at + hw]
    }
    pub fn plane_mut(&mut self, c: usize, i: usize) -> &mut [f32] {
        let hw = self.h * self.w;
        let at = (c * self.n + i) * hw;
        &mut self.data[at..at + hw]
    }
    #[inline]
    pub fn at(&self, c: usize, i: usize, y: usize, x: usize) -> f32 {
        self.data[((c * self.n + i) * self.h + y) * self.w + x]
    }
    /// Converts a one-sample batch back into a tensor (no copy).
    pub fn into_tensor(self) -> Tensor {
        assert_eq!(self.n, 1, "into_tensor needs a batch of one");
        Tensor {
            c: self.c,
            h: self.h,
            w: self.w,
            data: self.data,
        }
    }
}

#[cfg(test)]
mod tests;
