//! The machine's measured floating-point peak.

use std::time::Instant;

/// One core's f32 FMA peak in GFLOP/s, measured with independent fused multiply-adds in
/// registers (AVX-512, else AVX2+FMA; `None` elsewhere): the yardstick for the FLOP rates the
/// benchmarks report. Takes about 0.1 s.
pub fn peak_gflops_one_core() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn run512(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mut acc = [_mm512_set1_ps(0.0); 12];
            let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            for _ in 0..iters {
                for x in acc.iter_mut() {
                    *x = _mm512_fmadd_ps(*x, a, b);
                }
            }
            acc.iter().map(|x| _mm512_reduce_add_ps(*x)).sum()
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn run256(iters: u64) -> f32 {
            use std::arch::x86_64::*;
            let mut acc = [_mm256_set1_ps(0.0); 12];
            let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            for _ in 0..iters {
                for x in acc.iter_mut() {
                    *x = _mm256_fmadd_ps(*x, a, b);
                }
            }
            let mut out = [0f32; 8];
            for x in acc {
                _mm256_storeu_ps(out.as_mut_ptr(), x);
            }
            out.iter().sum()
        }
        let (lanes, run): (f64, unsafe fn(u64) -> f32) = if is_x86_feature_detected!("avx512f") {
            (16.0, run512)
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            (8.0, run256)
        } else {
            return None;
        };
        let iters = 1_000_000u64;
        // SAFETY: the features were detected above.
        unsafe { std::hint::black_box(run(iters / 10)) };
        let best = (0..20)
            .map(|_| {
                let t = Instant::now();
                // SAFETY: as above.
                std::hint::black_box(unsafe { run(iters) });
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        Some(iters as f64 * 12.0 * lanes * 2.0 / best / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
