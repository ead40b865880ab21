//! What the one-sample Winograd forms ([`crate::PhaseWinograd`], [`crate::SmallWinograd`])
//! share: which layers they take, their transformed weights, and the AVX-512 input and
//! output transforms of F(2×2, 3×3) and F(4×4, 3×3) along one axis, 16 tiles per vector.
//! Written once here so that neither form imports the other.

use crate::forms::conv::Conv2d;
use crate::simd::avx512_allowed;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m512, _mm512_add_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_sub_ps};

/// The filter transform `G` of F(2×2, 3×3) (4×3); F(4×4, 3×3)'s is `Winograd3x3`'s.
const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Whether `conv` is a 3×3, stride-1, padding-1 convolution and the CPU has AVX-512F: what
/// the one-sample Winograd forms take.
pub(crate) fn winograd_fits(conv: &Conv2d) -> bool {
    let shape = (
        conv.kh,
        conv.kw,
        conv.stride_y,
        conv.stride_x,
        conv.pad_y,
        conv.pad_x,
    );
    avx512_allowed() && shape == (3, 3, 1, 1, 1, 1)
}

/// Winograd F(m×m, 3×3)'s transformed weights `U = G g Gᵀ` of a 3×3 `conv`, for tile side
/// `m` (2 or 4), laid out `[ξ][block of ocb filters][in][ocb]` and padded with zero
/// filters; computed in f64 and rounded once.
pub(crate) fn winograd_weights(conv: &Conv2d, ocb: usize, m: usize) -> Vec<f32> {
    let g_rows: &[[f64; 3]] = if m == 2 {
        &G2
    } else {
        &crate::forms::winograd::G
    };
    let a = g_rows.len();
    let (oc, ic) = (conv.out_channels, conv.in_channels);
    let blocks = oc.div_ceil(ocb);
    let mut u = vec![0f32; a * a * blocks * ocb * ic];
    for o in 0..oc {
        for i in 0..ic {
            let g = &conv.weights[(o * ic + i) * 9..][..9];
            let gg: Vec<[f64; 3]> = g_rows
                .iter()
                .map(|gr| {
                    std::array::from_fn(|c| (0..3).map(|k| gr[k] * g[k * 3 + c] as f64).sum())
                })
                .collect();
            for (r, gg_row) in gg.iter().enumerate() {
                for (c, g_row) in g_rows.iter().enumerate() {
                    let v: f64 = (0..3).map(|k| gg_row[k] * g_row[k]).sum();
                    let at = (((r * a + c) * blocks + o / ocb) * ic + i) * ocb + o % ocb;
                    u[at] = v as f32;
                }
            }
        }
    }
    u
}

/// F(2×2, 3×3)'s `Bᵀ x` along one axis, 16 tiles per vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn bt2(d: [__m512; 4]) -> [__m512; 4] {
    [
        _mm512_sub_ps(d[0], d[2]),
        _mm512_add_ps(d[1], d[2]),
        _mm512_sub_ps(d[2], d[1]),
        _mm512_sub_ps(d[1], d[3]),
    ]
}

/// F(2×2, 3×3)'s `Aᵀ x` along one axis.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn at2(m: [__m512; 4]) -> [__m512; 2] {
    [
        _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]),
        _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]),
    ]
}

/// F(4×4, 3×3)'s `Bᵀ x` along one axis (the same expressions as `Winograd3x3`'s).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn bt4(d: [__m512; 6]) -> [__m512; 6] {
    let (k2, k4, k5) = (
        _mm512_set1_ps(2.0),
        _mm512_set1_ps(4.0),
        _mm512_set1_ps(5.0),
    );
    let add = |a, b| _mm512_add_ps(a, b);
    let sub = |a, b| _mm512_sub_ps(a, b);
    let mul = |a, b| _mm512_mul_ps(a, b);
    [
        add(sub(mul(k4, d[0]), mul(k5, d[2])), d[4]),
        add(mul(_mm512_set1_ps(-4.0), add(d[1], d[2])), add(d[3], d[4])),
        add(mul(k4, sub(d[1], d[2])), sub(d[4], d[3])),
        add(mul(k2, sub(d[3], d[1])), sub(d[4], d[2])),
        add(mul(k2, sub(d[1], d[3])), sub(d[4], d[2])),
        add(sub(mul(k4, d[1]), mul(k5, d[3])), d[5]),
    ]
}

/// F(4×4, 3×3)'s `Aᵀ x` along one axis (the same expressions as `Winograd3x3`'s).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn at4(m: [__m512; 6]) -> [__m512; 4] {
    let add = |a, b| _mm512_add_ps(a, b);
    let sub = |a, b| _mm512_sub_ps(a, b);
    let mul = |a, b| _mm512_mul_ps(a, b);
    let (s12, d12, s34, d34) = (
        add(m[1], m[2]),
        sub(m[1], m[2]),
        add(m[3], m[4]),
        sub(m[3], m[4]),
    );
    [
        add(add(m[0], s12), s34),
        add(d12, mul(_mm512_set1_ps(2.0), d34)),
        add(s12, mul(_mm512_set1_ps(4.0), s34)),
        add(add(d12, mul(_mm512_set1_ps(8.0), d34)), m[5]),
    ]
}
