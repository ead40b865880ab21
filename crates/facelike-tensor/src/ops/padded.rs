//! The layer operations one sample's ResNet runs on zero-bordered planes
//! ([`PaddedPlanes`]): the 2×2 average pool of a down-sampling block's shortcut and dlib's
//! zero-padded residual sum, each equal to its packed form in [`crate::ops`].

use crate::layout::padded::{zero_border, PaddedPlanes};

impl PaddedPlanes {
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
                        plane[(y + 1) * wh + x + 1] = crate::simd::relu(v);
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
    let lanes = crate::simd::first_lanes;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::tensor::BatchTensor;

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
                let want = crate::ops::pool_batch(&x, crate::ops::Pool::Avg, 2, 2, 2, 2, 0, 0);
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
            let mut want = crate::ops::add_zero_padded_batch(&a, &b);
            want.data
                .iter_mut()
                .for_each(|v| *v = crate::simd::relu(*v));
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
}
