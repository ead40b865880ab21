//! Distance kernels over 128-wide f32 rows, written so the compiler vectorises them.
//!
//! Each kernel keeps 16 independent lane accumulators (no float reassociation is needed, so
//! LLVM emits plain vector adds), and is compiled three times: AVX-512, AVX2+FMA and the
//! baseline target, chosen once at run time. They rank candidates; the distances reported to
//! users are recomputed in f64 by [`facelike_types::Metric::distance`] so they equal
//! face_recognition's numbers.

use facelike_types::descriptor::DESCRIPTOR_LEN;
use facelike_types::Metric;

const D: usize = DESCRIPTOR_LEN;
const LANES: usize = 16;

/// A ranking score that increases with distance: squared L2, L1, or `1 − cos`.
const L2: u8 = 0;
const L1: u8 = 1;
const COS: u8 = 2;

#[inline(always)]
fn score_row<const M: u8>(q: &[f32; D], q_inv_norm: f32, r: &[f32; D], r_inv_norm: f32) -> f32 {
    let mut acc = [0f32; LANES];
    match M {
        L2 => {
            for c in 0..D / LANES {
                for l in 0..LANES {
                    let d = q[c * LANES + l] - r[c * LANES + l];
                    acc[l] += d * d;
                }
            }
        }
        L1 => {
            for c in 0..D / LANES {
                for l in 0..LANES {
                    acc[l] += (q[c * LANES + l] - r[c * LANES + l]).abs();
                }
            }
        }
        _ => {
            for c in 0..D / LANES {
                for l in 0..LANES {
                    acc[l] += q[c * LANES + l] * r[c * LANES + l];
                }
            }
        }
    }
    // Pairwise reduction: short dependency chain, and the same order on every target.
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    if M == COS {
        1.0 - acc[0] * q_inv_norm * r_inv_norm
    } else {
        acc[0]
    }
}

#[inline(always)]
fn score_block_m<const M: u8>(
    q: &[f32; D],
    qn: f32,
    rows: &[f32],
    inv_norms: &[f32],
    out: &mut [f32],
) {
    for (i, (r, o)) in rows.chunks_exact(D).zip(out.iter_mut()).enumerate() {
        let r: &[f32; D] = r.try_into().unwrap();
        let inv = if M == COS { inv_norms[i] } else { 0.0 };
        *o = score_row::<M>(q, qn, r, inv);
    }
}

#[inline(always)]
fn score_one_body(metric: Metric, q: &[f32; D], qn: f32, r: &[f32; D], rn: f32) -> f32 {
    match metric {
        Metric::L2 => score_row::<L2>(q, qn, r, rn),
        Metric::L1 => score_row::<L1>(q, qn, r, rn),
        Metric::Cosine => score_row::<COS>(q, qn, r, rn),
    }
}

#[inline(always)]
fn score_block_body(
    metric: Metric,
    q: &[f32; D],
    q_inv_norm: f32,
    rows: &[f32],
    inv_norms: &[f32],
    out: &mut [f32],
) {
    match metric {
        Metric::L2 => score_block_m::<L2>(q, q_inv_norm, rows, inv_norms, out),
        Metric::L1 => score_block_m::<L1>(q, q_inv_norm, rows, inv_norms, out),
        Metric::Cosine => score_block_m::<COS>(q, q_inv_norm, rows, inv_norms, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn score_block_avx512(
    metric: Metric,
    q: &[f32; D],
    qn: f32,
    rows: &[f32],
    inv: &[f32],
    out: &mut [f32],
) {
    score_block_body(metric, q, qn, rows, inv, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn score_block_avx2(
    metric: Metric,
    q: &[f32; D],
    qn: f32,
    rows: &[f32],
    inv: &[f32],
    out: &mut [f32],
) {
    score_block_body(metric, q, qn, rows, inv, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn score_one_avx512(metric: Metric, q: &[f32; D], qn: f32, r: &[f32; D], rn: f32) -> f32 {
    score_one_body(metric, q, qn, r, rn)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn score_one_avx2(metric: Metric, q: &[f32; D], qn: f32, r: &[f32; D], rn: f32) -> f32 {
    score_one_body(metric, q, qn, r, rn)
}

/// Cosine against a row of 8-bit codes: the plain dot product `Σ q·c` (the caller turns it
/// into a distance).
#[inline(always)]
fn code_row<const M: u8>(q: &[f32; D], c: &[u8; D]) -> f32 {
    let mut acc = [0f32; LANES];
    for k in 0..D / LANES {
        for l in 0..LANES {
            acc[l] += q[k * LANES + l] * c[k * LANES + l] as f32;
        }
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0]
}

/// Integer form for L2 and L1 with the query quantised too: widening u8 arithmetic that
/// compiles to packed multiply-adds.
#[inline(always)]
fn code_row_int<const M: u8>(q: &[u8; D], c: &[u8; D]) -> f32 {
    const W: usize = 32;
    let mut acc = [0i32; W];
    for k in 0..D / W {
        for l in 0..W {
            let d = q[k * W + l] as i32 - c[k * W + l] as i32;
            if M == L2 {
                acc[l] += d * d;
            } else {
                acc[l] += d.abs();
            }
        }
    }
    acc.iter().sum::<i32>() as f32
}

#[inline(always)]
fn code_block_body(metric: Metric, q: &[f32; D], codes: &[u8], out: &mut [f32]) {
    #[inline(always)]
    fn go<const M: u8>(q: &[f32; D], codes: &[u8], out: &mut [f32]) {
        if M == COS {
            for (c, o) in codes.chunks_exact(D).zip(out.iter_mut()) {
                *o = code_row::<M>(q, c.try_into().unwrap());
            }
        } else {
            let qc: [u8; D] = std::array::from_fn(|j| q[j].round().clamp(0.0, 255.0) as u8);
            for (c, o) in codes.chunks_exact(D).zip(out.iter_mut()) {
                *o = code_row_int::<M>(&qc, c.try_into().unwrap());
            }
        }
    }
    match metric {
        Metric::L2 => go::<L2>(q, codes, out),
        Metric::L1 => go::<L1>(q, codes, out),
        Metric::Cosine => go::<COS>(q, codes, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn code_block_avx512(metric: Metric, q: &[f32; D], codes: &[u8], out: &mut [f32]) {
    code_block_body(metric, q, codes, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn code_block_avx2(metric: Metric, q: &[f32; D], codes: &[u8], out: &mut [f32]) {
    code_block_body(metric, q, codes, out)
}

/// Scores of rows of 8-bit codes (row-major, 128 per row) against a query already mapped
/// to code units (see [`crate::ivf`]): L2 `Σ(q−c)²` and L1 `Σ|q−c|` with the query rounded
/// to codes as well; cosine the dot product `Σ q·c` with the query as given.
pub fn score_codes(metric: Metric, q: &[f32; D], codes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(codes.len(), out.len() * D);
    match level() {
        // SAFETY: the variant was chosen because the CPU reports these features.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { code_block_avx512(metric, q, codes, out) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { code_block_avx2(metric, q, codes, out) },
        Level::Baseline => code_block_body(metric, q, codes, out),
    }
}

const BLOCK: usize = 8;

/// For 8 rows at once, the index of the nearest centre by L2 (`|c|² − 2 x·c`, the `|x|²`
/// term being common): each centre is loaded once per 8 rows, which is what makes k-means
/// assignment fast when the centres do not fit in L1.
#[inline(always)]
fn dot_row(a: &[f32; D], b: &[f32; D]) -> f32 {
    let mut acc = [0f32; LANES];
    for c in 0..D / LANES {
        for l in 0..LANES {
            acc[l] += a[c * LANES + l] * b[c * LANES + l];
        }
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0]
}

#[inline(always)]
fn nearest8_body(rows: &[f32], centres: &[f32], centre_sq: &[f32], out: &mut [u32]) {
    let n = rows.len() / D;
    let mut best = [(f32::INFINITY, 0u32); BLOCK];
    for (ci, c) in centres.chunks_exact(D).enumerate() {
        let c: &[f32; D] = c.try_into().unwrap();
        for (r, x) in rows.chunks_exact(D).enumerate() {
            let s = centre_sq[ci] - 2.0 * dot_row(x.try_into().unwrap(), c);
            if s < best[r].0 {
                best[r] = (s, ci as u32);
            }
        }
    }
    for r in 0..n {
        out[r] = best[r].1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn nearest8_avx512(rows: &[f32], centres: &[f32], sq: &[f32], out: &mut [u32]) {
    nearest8_body(rows, centres, sq, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest8_avx2(rows: &[f32], centres: &[f32], sq: &[f32], out: &mut [u32]) {
    nearest8_body(rows, centres, sq, out)
}

/// Index of the nearest centre (L2) for each row of `rows` (row-major, 128 wide); `centre_sq`
/// holds `|c|²` per centre.
pub fn nearest_centres_l2(rows: &[f32], centres: &[f32], centre_sq: &[f32], out: &mut [u32]) {
    for (rb, ob) in rows.chunks(D * BLOCK).zip(out.chunks_mut(BLOCK)) {
        match level() {
            // SAFETY: the variant was chosen because the CPU reports these features.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { nearest8_avx512(rb, centres, centre_sq, ob) },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { nearest8_avx2(rb, centres, centre_sq, ob) },
            Level::Baseline => nearest8_body(rb, centres, centre_sq, ob),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("FACELIKE_NO_SIMD").is_none() {
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                {
                    return Level::Avx512;
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Level::Avx2;
                }
            }
        }
        Level::Baseline
    })
}

/// Name of the kernel variant in use (for benchmark reports).
pub fn simd_level() -> &'static str {
    match level() {
        Level::Baseline => "baseline",
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => "avx2+fma",
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => "avx512",
    }
}

/// Ranking scores of `rows` (row-major, 128 wide) against `q` into `out` (one per row).
/// `inv_norms` holds `1/|row|` per row and is read only for cosine.
pub fn score_block(
    metric: Metric,
    q: &[f32; D],
    q_inv_norm: f32,
    rows: &[f32],
    inv_norms: &[f32],
    out: &mut [f32],
) {
    debug_assert_eq!(rows.len(), out.len() * D);
    match level() {
        // SAFETY: the variant was chosen because the CPU reports these features.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { score_block_avx512(metric, q, q_inv_norm, rows, inv_norms, out) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { score_block_avx2(metric, q, q_inv_norm, rows, inv_norms, out) },
        Level::Baseline => score_block_body(metric, q, q_inv_norm, rows, inv_norms, out),
    }
}

/// Ranking score of one row.
#[inline]
pub fn score_one(
    metric: Metric,
    q: &[f32; D],
    q_inv_norm: f32,
    r: &[f32; D],
    r_inv_norm: f32,
) -> f32 {
    match level() {
        // SAFETY: as in `score_block`.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { score_one_avx512(metric, q, q_inv_norm, r, r_inv_norm) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { score_one_avx2(metric, q, q_inv_norm, r, r_inv_norm) },
        Level::Baseline => score_one_body(metric, q, q_inv_norm, r, r_inv_norm),
    }
}

/// Turns a ranking score into the metric's distance (f32; good for ranking and for HNSW).
#[inline]
pub fn score_to_distance(metric: Metric, s: f32) -> f32 {
    match metric {
        Metric::L2 => s.max(0.0).sqrt(),
        _ => s,
    }
}

/// `1/|v|` (0 for a zero vector, which makes its cosine distance 1 as in facelike).
pub fn inv_norm(v: &[f32]) -> f32 {
    let n = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if n == 0.0 {
        0.0
    } else {
        (1.0 / n) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_f64_reference() {
        let mut s = 12345u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let rows: Vec<f32> = (0..D * 37).map(|_| next()).collect();
        let q: [f32; D] = std::array::from_fn(|_| next());
        let inv: Vec<f32> = rows.chunks_exact(D).map(inv_norm).collect();
        for metric in [Metric::L2, Metric::L1, Metric::Cosine] {
            let mut out = vec![0f32; 37];
            score_block(metric, &q, inv_norm(&q), &rows, &inv, &mut out);
            for (i, r) in rows.chunks_exact(D).enumerate() {
                let want = metric.distance(&q, r);
                let got = score_to_distance(metric, out[i]);
                assert!(
                    (got - want).abs() < 1e-5,
                    "{metric:?} row {i}: {got} vs {want}"
                );
                let one = score_one(metric, &q, inv_norm(&q), r.try_into().unwrap(), inv[i]);
                assert_eq!(one, out[i]);
            }
        }
    }
}
