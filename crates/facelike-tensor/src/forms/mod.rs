//! The convolution forms: each computes the same convolution (dlib's cross-correlation with
//! bias, then the [`Epilogue`](conv::Epilogue)) a different way, fastest for different
//! shapes, batch sizes and layouts.
//!
//! - [`conv`]: the layer itself, [`Conv2d`](conv::Conv2d): the reference loops and im2col +
//!   GEMM (any shape, any batch, portable).
//! - [`winograd`]: [`Winograd3x3`](winograd::Winograd3x3), F(4×4, 3×3) on batches through
//!   GEMMs (portable, AVX2 transforms).
//! - [`direct`]: [`DirectConv`](direct::DirectConv), AVX-512 kernels straight from a
//!   polyphase copy or from bordered planes (one large image, or one sample).
//! - [`phase`]: [`PhaseWinograd`](phase::PhaseWinograd), F(2×2) or F(4×4) for one sample on
//!   [`PhasePlanes`](crate::PhasePlanes) (AVX-512).
//! - [`small_winograd`]: [`SmallWinograd`](small_winograd::SmallWinograd), F(2×2) with the
//!   filters in the lanes for one sample's planes of up to 8×8 (AVX-512).
//! - [`transforms`]: what the two one-sample Winograd forms share.
//!
//! Which form runs where is not decided here but in [`crate::plan`]. The forms build on the
//! layouts, the kernels and the layer operations below them; among themselves the order is
//! `conv` ← `winograd` ← `transforms` ← `phase`, `small_winograd`, and `conv` ← `direct`.

pub(crate) mod conv;
pub(crate) mod direct;
pub(crate) mod phase;
pub(crate) mod small_winograd;
pub(crate) mod transforms;
pub(crate) mod winograd;
