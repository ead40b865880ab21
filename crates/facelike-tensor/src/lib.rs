//! # facelike-tensor: the CPU kernels behind facelike's networks
//!
//! Tensors and the layer operations dlib's face networks need, with dlib's exact
//! semantics: cross-correlation convolution with bias, per-channel affine, ReLU, max/average
//! pooling over windows clipped to the image, and dlib's `add_prev` that zero-pads
//! mismatched shapes. Model code (facelike's ResNet and MMOD detector) lives elsewhere; this
//! crate only computes, and decides how.
//!
//! ## Modules, bottom to top
//!
//! Each module imports only modules above it in this list (never one below it), so
//! there is no import circle:
//!
//! - `simd`: the helpers every hand-written kernel shares (vector width, lane masks,
//!   splitting a row into column phases, the shared output pointer, prefetch requests,
//!   [`relu`], and whether AVX-512 may run: `FACELIKE_NO_AVX512` turns it off).
//! - `team`: the low-latency parallel loop (a caller plus spinning helpers, running alone
//!   when the machine stays crowded) that spreads one layer's steps over the cores.
//! - `layout`: how activations lie in memory: [`Tensor`] (C × H × W) and [`BatchTensor`]
//!   (C × N × H × W, so a batch's convolution is one GEMM), [`PaddedPlanes`] (zero-bordered
//!   planes one sample passes between direct-convolution layers), [`PhasePlanes`] (the
//!   polyphase layout of the one-sample Winograd form), the direct form's polyphase copy,
//!   and [`MappedBytes`] (an 8-bit image converted as the first layer lays it out).
//! - `kernels`: the register-blocked AVX-512 products the hand-written forms run on.
//! - `ops`: pooling, affine, ReLU, global average and the zero-padded residual add, on
//!   packed tensors and on bordered planes.
//! - `forms`: the convolution forms, each the same convolution computed another way:
//!   [`Conv2d`] (the layer; [`Conv2d::forward_reference`] is the definition the others are
//!   tested against, its fast path im2col + GEMM with the `gemm` crate, a few output rows
//!   at a time so that large inputs stay in cache), [`Winograd3x3`] (batched F(4×4, 3×3)),
//!   [`DirectConv`] (AVX-512 straight from a polyphase copy or from bordered planes; a
//!   detector's whole network in one chain with [`DirectConv::forward_chain_par`]),
//!   [`PhaseWinograd`] (F(2×2) or F(4×4) on phase planes) and [`SmallWinograd`] (F(2×2)
//!   with the filters in the lanes, for planes up to 8×8).
//! - `plan`: [`ConvPlan`], which prepares a layer's forms once for the input size it will
//!   see and chooses the form for each call (batch or one sample, by layout), so model code
//!   never names a form.
//!
//! `peak` measures one core's FMA throughput ([`peak_gflops_one_core`]) for reports.

mod forms;
mod kernels;
mod layout;
mod ops;
mod peak;
mod plan;
mod simd;
mod team;

pub use forms::conv::{Conv2d, Epilogue};
pub use forms::direct::DirectConv;
pub use forms::phase::PhaseWinograd;
pub use forms::small_winograd::SmallWinograd;
pub use forms::winograd::Winograd3x3;
pub use layout::bytes::MappedBytes;
pub use layout::padded::PaddedPlanes;
pub use layout::phase::PhasePlanes;
pub use layout::tensor::{BatchTensor, Tensor};
pub use ops::{
    add_zero_padded, add_zero_padded_batch, affine_inplace, global_avg_pool, global_avg_pool_batch,
    pool, pool_batch, pool_batch_with, relu_inplace, Pool,
};
pub use peak::peak_gflops_one_core;
pub use plan::{ConvForm, ConvPlan};
pub use simd::relu;

#[cfg(test)]
mod tests;
