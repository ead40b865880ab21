//! How activations lie in memory, and nothing else: the packed tensors the layer API takes
//! and returns, and the layouts the hand-written kernels read and write in place.
//!
//! - [`tensor`]: [`Tensor`](tensor::Tensor) (C × H × W) and
//!   [`BatchTensor`](tensor::BatchTensor) (C × N × H × W), packed.
//! - [`planes`]: borrowed views of C × H × W planes at any pitch (`Planes`), and where a
//!   kernel writes its output (`Layout`).
//! - [`padded`]: [`PaddedPlanes`](padded::PaddedPlanes), zero-bordered planes one sample's
//!   activations pass between direct-convolution layers in, with the per-thread buffer pool.
//! - [`phase`]: [`PhasePlanes`](phase::PhasePlanes), the m × m polyphase layout the
//!   one-sample Winograd form reads and writes.
//! - [`polyphase`]: the zero-padded stride-phase copy the direct grid form reads (its
//!   `Geometry` and the fills from float planes or from bytes).
//! - [`bytes`]: [`MappedBytes`](bytes::MappedBytes), an 8-bit image standing for floats.
//!
//! Layouts sit below the kernels, the layer operations and the convolution forms: they
//! import only [`crate::simd`] and [`crate::team`], never a form, so any form can take any
//! layout.

pub(crate) mod bytes;
pub(crate) mod padded;
pub(crate) mod phase;
pub(crate) mod planes;
pub(crate) mod polyphase;
pub(crate) mod tensor;

/// Output size along one axis of a window of `k` swept at `stride` over `input` values
/// padded by `pad` on each side: `1 + (in + 2·pad − k) / stride`, or 0 if the window does
/// not fit ([`crate::Conv2d::out_size`], and the pools').
pub(crate) fn out_size(input: usize, k: usize, stride: usize, pad: usize) -> usize {
    if input + 2 * pad < k {
        0
    } else {
        1 + (input + 2 * pad - k) / stride
    }
}
