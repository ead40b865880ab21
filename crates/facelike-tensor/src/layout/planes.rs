//! Borrowed views of C × H × W float planes at any row and channel pitch, with or without a
//! zero border ([`Planes`]: what the direct kernels read), and where a layer's output or a
//! residual keeps each element ([`Layout`]: packed here, or the planes of
//! [`PaddedPlanes`](crate::PaddedPlanes), whose `Layout::padded` is in `crate::layout::padded`).

use crate::layout::tensor::Tensor;

/// A C × H × W input, borrowed from a [`Tensor`] or a one-sample [`BatchTensor`](crate::BatchTensor).
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
    /// Rows and columns of zeros around each plane in `data` (a [`PaddedPlanes`](crate::PaddedPlanes) has one).
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

/// Where a layer's output (or a residual) keeps element `(c, y, x)`: at
/// `c·chan + start + y·row + x`; with `border`, each channel is a bordered plane of
/// [`PaddedPlanes`](crate::PaddedPlanes) whose border (and slack) the writer zeroes.
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

    /// Offset of `(y, x)` within a channel.
    pub(crate) fn at(self, y: usize, x: usize) -> usize {
        self.start + y * self.row + x
    }

    /// Whether an `h × w` plane fits in a channel.
    pub(crate) fn fits(self, h: usize, w: usize) -> bool {
        h == 0 || w == 0 || (self.row >= w && self.at(h - 1, w - 1) < self.chan)
    }
}
