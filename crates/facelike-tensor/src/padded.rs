//! Activations kept in the layout a 3×3, stride-1, padding-1 direct convolution reads: each
//! channel an `(h + 2) × (w + 2)` plane with a zero border, then some slack (of no set
//! value: a kernel's last register block reads and writes there, for outputs that are
//! dropped). One face's
//! ResNet passes these from layer to layer, so no layer copies its input into a padded
//! buffer first, and the direct kernel writes its output grid straight into the next
//! layer's input (see `DirectConv::forward_padded`).

use crate::direct::Planes;
use crate::BatchTensor;
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
    pub c: usize,
    pub h: usize,
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

    /// A 2×2 average pool at stride 2 (no padding), with [`crate::pool`]'s arithmetic:
    /// dlib's down-sampling blocks' shortcut. `parallel`: up to 8 pieces of channels, for
    /// outputs of at least 8192 floats.
    pub fn avg_pool_2x2(&self, parallel: bool) -> PaddedPlanes {
        let (oh, ow) = (self.h / 2, self.w / 2);
        let mut out = Self::uninit(self.c, oh, ow, self.c);
        let (wh, owh, chan) = (self.w + 2, ow + 2, out.chan);
        let pool_channel = |c: usize, dst: &mut [f32]| {
            let src = &self.data[c * self.chan..(c + 1) * self.chan];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                assert!(dst.len() >= chan && (oh == 0 || (2 * oh + 1) * wh <= src.len()));
                // SAFETY: AVX-512F is present; rows 1..=2·oh of the source and 1..=oh of
                // the destination (bordered, pitches wh and owh) are inside the slices.
                unsafe { avg_pool_2x2_avx512(src, wh, dst, owh, oh, ow) };
                zero_border(dst, oh, ow);
                return;
            }
            for oy in 0..oh {
                let r0 = &src[(2 * oy + 1) * wh + 1..][..2 * ow];
                let r1 = &src[(2 * oy + 2) * wh + 1..][..2 * ow];
                let row = &mut dst[(oy + 1) * owh + 1..][..ow];
                for (ox, d) in row.iter_mut().enumerate() {
                    // Rows first, then columns, each sum from zero, then the division.
                    let left = (0.0 + r0[2 * ox]) + r1[2 * ox];
                    let right = (0.0 + r0[2 * ox + 1]) + r1[2 * ox + 1];
                    *d = ((0.0 + left) + right) / 4.0;
                }
            }
            zero_border(dst, oh, ow);
        };
        // A few pieces, and none for small outputs: a 2×2 result of 256 channels is less
        // work than handing out 64 pieces of 4 channels.
        let parallel = parallel && self.c * oh * ow >= 8192;
        let per_piece = self.c.div_ceil(8).max(1);
        let data = &mut out.data[..self.c * chan];
        crate::team::parallel_chunks_mut(data, per_piece * chan, parallel, &|piece, dst| {
            for (i, plane) in dst.chunks_exact_mut(chan).enumerate() {
                pool_channel(piece * per_piece + i, plane);
            }
        });
        out
    }

    /// dlib's `add_prev` of planes of different shapes (as [`crate::add_zero_padded`]: the
    /// larger of each dimension, each input counting as zero where it has no data),
    /// followed by a ReLU.
    pub fn add_zero_padded_relu(a: &PaddedPlanes, b: &PaddedPlanes) -> PaddedPlanes {
        // The larger input first, copied whole (its zero border too), then the smaller one
        // added over its part of each plane, then the ReLU over each plane. The same values
        // as summing from zero (0 + a + b): the two differ only in the sign of a zero sum,
        // which the ReLU makes +0 either way.
        let (big, small) = if (a.h, a.w) >= (b.h, b.w) {
            (a, b)
        } else {
            (b, a)
        };
        let (c, h, w) = (a.c.max(b.c), a.h.max(b.h), a.w.max(b.w));
        let mut out = Self::uninit(c, h, w, c);
        let (wh, chan) = (w + 2, out.chan);
        if (big.h, big.w) != (h, w) {
            // Neither covers the other: the general case, element by element.
            for (ch, plane) in out.data.chunks_exact_mut(chan).take(c).enumerate() {
                for y in 0..h {
                    for x in 0..w {
                        let mut v = 0.0;
                        for src in [a, b] {
                            if ch < src.c && y < src.h && x < src.w {
                                v += src.at(ch, y, x);
                            }
                        }
                        plane[(y + 1) * wh + x + 1] = crate::relu(v);
                    }
                }
                zero_border(plane, h, w);
            }
            return out;
        }
        let plane_len = (h + 2) * wh;
        for (ch, plane) in out.data.chunks_exact_mut(chan).take(c).enumerate() {
            let plane = &mut plane[..plane_len];
            if ch < big.c {
                plane.copy_from_slice(&big.data[ch * big.chan..][..plane_len]);
            } else {
                plane.fill(0.0);
            }
            if ch < small.c {
                let from = &small.data[ch * small.chan..];
                for y in 0..small.h {
                    let row = &mut plane[(y + 1) * wh + 1..][..small.w];
                    let src = &from[(y + 1) * (small.w + 2) + 1..][..small.w];
                    for (d, v) in row.iter_mut().zip(src) {
                        *d += *v;
                    }
                }
            }
            crate::ops::add_relu(plane, None, true);
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

/// [`PaddedPlanes::avg_pool_2x2`] of one bordered plane (row pitch `wh`) into another
/// (`owh`), with AVX-512: each pair of rows summed, the sums' even and odd columns picked
/// apart, added and divided, in the scalar version's order.
///
/// # Safety
/// AVX-512F; `src` holds rows `1..=2·oh` at pitch `wh` (each with `2·ow + 1` columns from
/// 1), `dst` rows `1..=oh` at pitch `owh` (`ow + 1` columns from 1).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avg_pool_2x2_avx512(
    src: &[f32],
    wh: usize,
    dst: &mut [f32],
    owh: usize,
    oh: usize,
    ow: usize,
) {
    use std::arch::x86_64::*;
    let lanes = crate::direct::first_lanes;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let (zero, four) = (_mm512_setzero_ps(), _mm512_set1_ps(4.0));
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for oy in 0..oh {
        let r0 = s.add((2 * oy + 1) * wh + 1);
        let r1 = s.add((2 * oy + 2) * wh + 1);
        let row = d.add((oy + 1) * owh + 1);
        let mut ox = 0;
        while ox < ow {
            // Input columns 2·ox.. (2·ow of them in the row).
            let left = 2 * (ow - ox);
            let (m0, m1) = (lanes(left), lanes(left.saturating_sub(16)));
            let x = 2 * ox;
            let a0 = _mm512_maskz_loadu_ps(m0, r0.add(x));
            let a1 = _mm512_maskz_loadu_ps(m1, r0.wrapping_add(x + 16));
            let b0 = _mm512_maskz_loadu_ps(m0, r1.add(x));
            let b1 = _mm512_maskz_loadu_ps(m1, r1.wrapping_add(x + 16));
            // Column sums from zero: (0 + top) + bottom.
            let s0 = _mm512_add_ps(_mm512_add_ps(zero, a0), b0);
            let s1 = _mm512_add_ps(_mm512_add_ps(zero, a1), b1);
            let l = _mm512_permutex2var_ps(s0, even, s1);
            let r = _mm512_permutex2var_ps(s0, odd, s1);
            let v = _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(zero, l), r), four);
            _mm512_mask_storeu_ps(row.add(ox), lanes(ow - ox), v);
            ox += 16;
        }
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
    fn pooling_and_the_zero_padded_sum_equal_the_packed_ones() {
        let noise = |len: usize, k: usize| -> Vec<f32> {
            (0..len)
                .map(|i| (((i * 7919 + k * 104729) % 2003) as f32 - 1001.0) / 997.0)
                .collect()
        };
        for (c, h) in [(32, 35), (64, 17), (128, 8), (256, 4), (3, 1)] {
            let x = BatchTensor::from_vec(c, 1, h, h, noise(c * h * h, h));
            for parallel in [false, true] {
                let got = PaddedPlanes::from_batch(&x).avg_pool_2x2(parallel);
                let want = crate::pool_batch(&x, crate::Pool::Avg, 2, 2, 2, 2, 0, 0);
                assert_eq!(got.to_batch().data, want.data, "{c}x{h}x{h}");
            }
        }
        // The network's case (the larger plane has more channels), the smaller plane with
        // more channels, and neither plane covering the other.
        for ((ca, ha, wa), (cb, hb, wb)) in [
            ((256, 4, 4), (128, 3, 3)),
            ((64, 4, 4), (128, 3, 3)),
            ((8, 4, 3), (16, 3, 4)),
        ] {
            let a = BatchTensor::from_vec(ca, 1, ha, wa, noise(ca * ha * wa, 1));
            let b = BatchTensor::from_vec(cb, 1, hb, wb, noise(cb * hb * wb, 2));
            let mut want = crate::add_zero_padded_batch(&a, &b);
            want.data.iter_mut().for_each(|v| *v = crate::relu(*v));
            let again = PaddedPlanes::from_batch(&want);
            let plane = (want.h + 2) * (want.w + 2);
            for (p, q) in [(&a, &b), (&b, &a)] {
                let got = PaddedPlanes::add_zero_padded_relu(
                    &PaddedPlanes::from_batch(p),
                    &PaddedPlanes::from_batch(q),
                );
                assert_eq!(
                    got.to_batch().data,
                    want.data,
                    "{ca}x{ha}x{wa} + {cb}x{hb}x{wb}"
                );
                for ch in 0..want.c {
                    let at = ch * got.chan;
                    assert_eq!(
                        got.data[at..at + plane],
                        again.data[ch * again.chan..][..plane]
                    );
                }
            }
        }
    }

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
