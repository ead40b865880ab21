//! Activations kept in the layout a 3×3, stride-1, padding-1 direct convolution reads: each
//! channel an `(h + 2) × (w + 2)` plane with a zero border, then some slack (of no set
//! value: a kernel's last register block reads and writes there, for outputs that are
//! dropped). One face's
//! ResNet passes these from layer to layer, so no layer copies its input into a padded
//! buffer first, and the direct kernel writes its output grid straight into the next
//! layer's input (see `DirectConv::forward_padded`).
//!
//! The layer operations on these planes (the 2×2 average pool, the zero-padded sum) are in
//! `crate::ops::padded`.

use crate::layout::planes::{Layout, Planes};
use crate::layout::tensor::BatchTensor;
use std::cell::RefCell;
use std::thread::LocalKey;

/// Buffers of dropped [`PaddedPlanes`], reused on this thread: every float of a real
/// channel is written again, so a reused buffer is never zeroed (and never freed and
/// fetched from the allocator between layers).
const POOLED: usize = 8;
thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// `c` channels of `h × w`, each stored as a zero-bordered `(h + 2) × (w + 2)` plane
/// followed by slack up to `chan` floats.
#[derive(Debug)]
pub struct PaddedPlanes {
    /// Channels holding data.
    pub c: usize,
    /// Rows of each plane, not counting the zero border.
    pub h: usize,
    /// Columns of each plane, not counting the zero border.
    pub w: usize,
    /// Floats from one channel's plane to the next.
    pub(crate) chan: usize,
    /// At least `c · chan` floats (a convolution may write padding filters past `c`; a
    /// reused buffer may be longer still).
    pub(crate) data: Vec<f32>,
}

impl PaddedPlanes {
    /// Floats per channel for an `h × w` plane: the bordered plane and, for planes the
    /// grid form reads and writes (more than 64 positions), room for a direct kernel's last
    /// register block (up to 128 outputs past the end) and its taps.
    pub(crate) fn chan_for(h: usize, w: usize) -> usize {
        let slack = if h * w > 64 { 192 } else { 0 };
        ((h + 2) * (w + 2) + slack).next_multiple_of(16)
    }

    /// Storage for `alloc_channels ≥ c` channels; the contents are whatever a reused
    /// buffer held: the caller writes every float of the first `c` channels.
    pub(crate) fn uninit(c: usize, h: usize, w: usize, alloc_channels: usize) -> Self {
        let chan = Self::chan_for(h, w);
        let len = alloc_channels.max(c) * chan;
        // Longer is fine: only the first `alloc_channels` channels are used.
        let data = take_buffer(&POOL, len);
        PaddedPlanes {
            c,
            h,
            w,
            chan,
            data,
        }
    }

    /// The one sample of `x`, bordered.
    pub fn from_batch(x: &BatchTensor) -> Self {
        assert_eq!(x.n, 1, "padded planes hold one sample");
        let mut out = Self::uninit(x.c, x.h, x.w, x.c);
        let (h, w, chan, wh) = (x.h, x.w, out.chan, x.w + 2);
        for (src, plane) in x
            .data
            .chunks_exact((h * w).max(1))
            .zip(out.data.chunks_exact_mut(chan))
        {
            for (y, row) in src.chunks_exact(w.max(1)).enumerate().take(h) {
                plane[(y + 1) * wh + 1..][..w].copy_from_slice(row);
            }
            zero_border(plane, h, w);
        }
        out
    }

    /// The planes without their borders, as a one-sample batch.
    pub fn to_batch(&self) -> BatchTensor {
        let (h, w) = (self.h, self.w);
        let mut out = BatchTensor::zeros(self.c, 1, h, w);
        for (dst, plane) in out
            .data
            .chunks_exact_mut((h * w).max(1))
            .zip(self.data.chunks_exact(self.chan))
        {
            for (y, row) in dst.chunks_exact_mut(w.max(1)).enumerate().take(h) {
                row.copy_from_slice(&plane[(y + 1) * (w + 2) + 1..][..w]);
            }
        }
        out
    }

    /// Element `(c, y, x)` of the planes.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[c * self.chan + (y + 1) * (self.w + 2) + x + 1]
    }

    /// A view of the planes for the direct kernels (the border is part of it).
    pub(crate) fn planes(&self) -> Planes<'_> {
        Planes {
            c: self.c,
            h: self.h,
            w: self.w,
            row_pitch: self.w + 2,
            chan_pitch: self.chan,
            start: self.w + 3,
            border: 1,
            data: &self.data,
        }
    }
}

impl Layout {
    /// The planes of [`PaddedPlanes`] holding `h × w`.
    pub(crate) fn padded(h: usize, w: usize) -> Self {
        Layout {
            chan: PaddedPlanes::chan_for(h, w),
            row: w + 2,
            start: w + 3,
            border: true,
        }
    }
}

impl Drop for PaddedPlanes {
    fn drop(&mut self) {
        give_back_buffer(&POOL, std::mem::take(&mut self.data), POOLED);
    }
}

/// A buffer of at least `len` floats from `pool` (the smallest that fits), else a new one
/// of zeros. A reused buffer keeps whatever it held and is never shrunk.
pub(crate) fn take_buffer(pool: &'static LocalKey<RefCell<Vec<Vec<f32>>>>, len: usize) -> Vec<f32> {
    let mut data = pool
        .with(|p| {
            let mut p = p.borrow_mut();
            let best = p
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            best.map(|i| p.swap_remove(i))
        })
        .unwrap_or_default();
    if data.len() < len {
        data.resize(len, 0.0);
    }
    data
}

/// Puts `data` back into `pool` unless it already holds `most` buffers.
pub(crate) fn give_back_buffer(
    pool: &'static LocalKey<RefCell<Vec<Vec<f32>>>>,
    data: Vec<f32>,
    most: usize,
) {
    if data.capacity() > 0 {
        // A thread-local may already be gone while the thread exits.
        let _ = pool.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < most {
                p.push(data);
            }
        });
    }
}

/// Zeroes the border of one channel's bordered `h × w` plane.
pub(crate) fn zero_border(plane: &mut [f32], h: usize, w: usize) {
    let wh = w + 2;
    plane[..wh + 1].fill(0.0);
    for r in 1..=h {
        // The right border of row r and the left border of row r + 1.
        plane[r * wh + w + 1] = 0.0;
        plane[(r + 1) * wh] = 0.0;
    }
    plane[(h + 1) * wh..(h + 2) * wh].fill(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_and_zero_borders() {
        let x = BatchTensor::from_vec(3, 1, 4, 5, (0..60).map(|v| v as f32 + 1.0).collect());
        // A reused buffer full of junk must come back with clean borders.
        drop(PaddedPlanes {
            c: 1,
            h: 1,
            w: 1,
            chan: 4096,
            data: vec![f32::NAN; 4096],
        });
        let p = PaddedPlanes::from_batch(&x);
        assert_eq!(p.to_batch().data, x.data);
        assert_eq!(p.at(2, 3, 4), x.at(2, 0, 3, 4));
        for c in 0..3 {
            let plane = &p.data[c * p.chan..(c + 1) * p.chan];
            let interior: f32 = (0..4)
                .flat_map(|y| (0..5).map(move |x| (y, x)))
                .map(|(y, x)| plane[(y + 1) * 7 + x + 1])
                .sum();
            let all: f32 = plane[..6 * 7].iter().sum();
            assert_eq!(all, interior, "channel {c}: the border is zero");
        }
    }
}
