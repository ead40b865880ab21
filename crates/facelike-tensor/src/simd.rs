//! The vector-level helpers every hand-written kernel shares, and nothing else: the vector
//! width, lane masks, the split of a row into its column phases, the pointer that parallel
//! tasks share for disjoint writes, the prefetch request a kernel carries, a ReLU written so
//! that loops of it vectorise, and the one check that decides whether the AVX-512 kernels
//! may run at all.
//!
//! It is the bottom layer: it imports no other module of the crate, so the layouts, the
//! kernels, the layer operations and the convolution forms can all build on it without
//! importing one another for a helper.

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

/// Floats per vector register.
pub(crate) const LANES: usize = 16;

/// Whether this CPU may run the AVX-512 kernels: it has AVX-512F and `FACELIKE_NO_AVX512` is
/// not set in the environment (so the portable path can be tested on AVX-512 machines).
/// Decided once per process; [`crate::DirectConv::supported`] reports it.
pub(crate) fn avx512_allowed() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SUPPORTED.get_or_init(|| {
            std::env::var_os("FACELIKE_NO_AVX512").is_none() && is_x86_feature_detected!("avx512f")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
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

/// Cache lines for a kernel to prefetch while it runs: `lines` of 64 bytes from `at`.
/// Prefetching never faults, so `at` need only point into (or just past) an allocation.
#[derive(Clone, Copy)]
pub(crate) struct Prefetch {
    pub(crate) at: *const u8,
    pub(crate) lines: usize,
}

#[cfg(test)]
mod tests {
    use super::deinterleave;

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
