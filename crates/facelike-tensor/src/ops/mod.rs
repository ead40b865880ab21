//! Element-wise and pooling layers: affine, ReLU, max/average pooling, global average and
//! dlib's zero-padding residual add, with dlib's semantics; on packed tensors here, on
//! zero-bordered planes in [`padded`].
//!
//! They sit above the layouts and below the convolution forms (whose epilogues reuse
//! `add_relu` and `max_pool_rows`), and import no form.

mod padded;

use crate::layout::out_size;
use crate::layout::tensor::{BatchTensor, Tensor};

/// `y = gamma[c]·x + beta[c]` per channel, optionally followed by ReLU.
pub fn affine_inplace(x: &mut Tensor, gamma: &[f32], beta: &[f32], relu: bool) {
    let hw = x.h * x.w;
    for c in 0..x.c {
        let (g, b) = (gamma[c], beta[c]);
        for v in &mut x.data[c * hw..(c + 1) * hw] {
            let y = g * *v + b;
            *v = if relu { crate::simd::relu(y) } else { y };
        }
    }
}

/// `max(0, x)` on every element.
pub fn relu_inplace(x: &mut Tensor) {
    for v in &mut x.data {
        *v = crate::simd::relu(*v);
    }
}

/// The larger of two values, as one `maxps` (`f32::max` also orders NaNs, which keeps it
/// from vectorising; the networks never produce NaN).
#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// Pooling kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// The largest value in the window.
    Max,
    /// The mean of the window's values inside the plane (padding is not counted).
    Avg,
}

/// Pools `planes` consecutive H×W planes into OH×OW planes (dlib's windows: placed at
/// `o·stride − pad`, clipped to the plane; the average divides by the clipped window's size).
#[allow(clippy::too_many_arguments)]
fn pool_planes(
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    kind: Pool,
    kh: usize,
    kw: usize,
    stride_y: usize,
    stride_x: usize,
    pad_y: usize,
    pad_x: usize,
    parallel: bool,
) -> (Vec<f32>, usize, usize) {
    let oh = out_size(h, kh, stride_y, pad_y);
    let ow = out_size(w, kw, stride_x, pad_x);
    let mut out = vec![0f32; planes * oh * ow];
    if oh * ow == 0 {
        return (out, oh, ow);
    }
    // Window bounds depend only on the output coordinate: compute them once per axis.
    let bounds = |o: usize, stride: usize, pad: usize, k: usize, len: usize| {
        let start = (o * stride) as isize - pad as isize;
        let a = start.max(0) as usize;
        let b = ((start + k as isize).max(0) as usize).min(len);
        (a, b.max(a))
    };
    let ys: Vec<(usize, usize)> = (0..oh).map(|o| bounds(o, stride_y, pad_y, kh, h)).collect();
    let xs: Vec<(usize, usize)> = (0..ow).map(|o| bounds(o, stride_x, pad_x, kw, w)).collect();
    // Per output row: reduce the window's input rows column by column (contiguous, so it
    // vectorises), then each window's columns.
    // A few planes a piece: enough work per piece to pay for handing it out.
    let per_piece = 4;
    let piece = |i: usize, out: &mut [f32]| {
        let mut acc = vec![0f32; w];
        for (p, dst) in (i * per_piece..).zip(out.chunks_exact_mut(oh * ow)) {
            let src = &x[p * h * w..(p + 1) * h * w];
            for (&(ya, yb), dst_row) in ys.iter().zip(dst.chunks_exact_mut(ow.max(1))) {
                match kind {
                    Pool::Max => acc.fill(f32::NEG_INFINITY),
                    Pool::Avg => acc.fill(0.0),
                }
                for row in src[ya * w..yb * w].chunks_exact(w) {
                    match kind {
                        Pool::Max => acc.iter_mut().zip(row).for_each(|(a, v)| *a = max(*a, *v)),
                        Pool::Avg => acc.iter_mut().zip(row).for_each(|(a, v)| *a += *v),
                    }
                }
                // Windows wholly inside the row, a tap at a time (branch-free, strided reads);
                // the clipped ones at the edges one by one.
                let full = |&(xa, xb): &(usize, usize)| xb - xa == kw;
                let lo = xs.iter().position(full).unwrap_or(ow);
                let hi = lo + xs[lo..].iter().take_while(|b| full(b)).count();
                if hi > lo {
                    let inner = &mut dst_row[lo..hi];
                    let first = xs[lo].0;
                    inner.fill(match kind {
                        Pool::Max => f32::NEG_INFINITY,
                        Pool::Avg => 0.0,
                    });
                    for kx in 0..kw {
                        let taps = acc[first + kx..].iter().step_by(stride_x);
                        match kind {
                            Pool::Max => inner
                                .iter_mut()
                                .zip(taps)
                                .for_each(|(d, v)| *d = max(*d, *v)),
                            Pool::Avg => inner.iter_mut().zip(taps).for_each(|(d, v)| *d += *v),
                        }
                    }
                    if kind == Pool::Avg {
                        let n = ((yb - ya) * kw).max(1) as f32;
                        inner.iter_mut().for_each(|d| *d /= n);
                    }
                }
                for ox in (0..lo).chain(hi..ow) {
                    let (xa, xb) = xs[ox];
                    let window = &acc[xa..xb];
                    dst_row[ox] = match kind {
                        Pool::Max => window.iter().fold(f32::NEG_INFINITY, |m, v| max(m, *v)),
                        Pool::Avg => {
                            window.iter().sum::<f32>() / ((yb - ya) * (xb - xa)).max(1) as f32
                        }
                    };
                }
            }
        }
    };
    crate::team::parallel_chunks_mut(&mut out, per_piece * oh * ow, parallel, &piece);
    (out, oh, ow)
}

/// A `k × k` max pool at `stride` without padding (the windows of [`pool`]) of an `h × w`
/// plane whose rows start `pitch` floats apart, into `dst`, whose rows start `dst_pitch`
/// floats apart.
pub(crate) fn max_pool_rows(
    src: &[f32],
    pitch: usize,
    size: (usize, usize),
    k: usize,
    stride: usize,
    dst: &mut [f32],
    dst_pitch: usize,
) {
    let (h, w) = size;
    let oh = out_size(h, k, stride, 0);
    let ow = out_size(w, k, stride, 0);
    assert!(dst_pitch >= ow && (oh == 0 || dst.len() >= (oh - 1) * dst_pitch + ow));
    assert!(oh == 0 || src.len() >= (h - 1) * pitch + w);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present; the bounds are asserted above.
        unsafe { max_pool_rows_avx512(src, pitch, (h, w), k, stride, dst, dst_pitch) };
        return;
    }
    max_pool_rows_portable(src, pitch, h, w, k, stride, dst, dst_pitch)
}

/// [`max_pool_rows`] with AVX-512: the same maxima in the same order, 16 lanes at a time.
///
/// # Safety
/// AVX-512F; `src` holds `h` rows of `w` at `pitch`, `dst` the `oh` rows of `ow` at
/// `dst_pitch` (as `max_pool_rows` asserts).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn max_pool_rows_avx512(
    src: &[f32],
    pitch: usize,
    (h, w): (usize, usize),
    k: usize,
    stride: usize,
    dst: &mut [f32],
    dst_pitch: usize,
) {
    use std::arch::x86_64::*;
    let oh = out_size(h, k, stride, 0);
    let ow = out_size(w, k, stride, 0);
    let lanes = crate::simd::first_lanes;
    let low = _mm512_set1_ps(f32::NEG_INFINITY);
    if (k, stride) == (3, 2) {
        // The stem's pool, all in registers: each row's column maxima 16 at a time, then
        // the windows' taps 2·ox, 2·ox + 1, 2·ox + 2 as the maxima's even lanes, odd lanes
        // and even lanes one further on.
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        // Column maxima of input columns x.. of the window's rows (zero past the row: only
        // outputs past `ow` read them).
        let column = |oy: usize, x: usize| -> __m512 {
            if x >= w {
                return _mm512_setzero_ps();
            }
            let m = lanes(w - x);
            let mut a = low;
            for y in 2 * oy..2 * oy + 3 {
                let v = _mm512_maskz_loadu_ps(m, src.as_ptr().add(y * pitch + x));
                a = _mm512_max_ps(v, a);
            }
            a
        };
        for oy in 0..oh {
            let d = dst.as_mut_ptr().add(oy * dst_pitch);
            // Even lanes of the 32 column maxima from x: taps 2·ox for 16 outputs.
            let mut lo = column(oy, 0);
            let mut hi = column(oy, 16);
            let mut e = _mm512_permutex2var_ps(lo, even, hi);
            let mut ox = 0;
            while ox < ow {
                let o = _mm512_permutex2var_ps(lo, odd, hi);
                lo = column(oy, 2 * ox + 32);
                hi = column(oy, 2 * ox + 48);
                let next = _mm512_permutex2var_ps(lo, even, hi);
                // Taps 2·ox + 2: the even lanes shifted down one, the next chunk's first.
                let e2 = _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(
                    _mm512_castps_si512(next),
                    _mm512_castps_si512(e),
                ));
                let mut a = _mm512_max_ps(e, low);
                a = _mm512_max_ps(o, a);
                a = _mm512_max_ps(e2, a);
                _mm512_mask_storeu_ps(d.add(ox), lanes(ow - ox), a);
                e = next;
                ox += 16;
            }
        }
        return;
    }
    let pw = w.div_ceil(stride);
    let mut acc = vec![f32::NEG_INFINITY; stride * pw];
    let mut phases = vec![f32::NEG_INFINITY; stride * pw];
    for oy in 0..oh {
        // Rows: acc[x] = max over the window's rows (`max(v, acc)` is `v > acc ? v : acc`,
        // the scalar `max(acc, v)`).
        let mut x = 0;
        while x < w {
            let m = lanes(w - x);
            let mut a = low;
            for y in oy * stride..oy * stride + k {
                let v = _mm512_maskz_loadu_ps(m, src.as_ptr().add(y * pitch + x));
                a = _mm512_max_ps(v, a);
            }
            _mm512_mask_storeu_ps(acc.as_mut_ptr().add(x), m, a);
            x += 16;
        }
        crate::simd::deinterleave(&acc, stride, &mut phases, pw, pw);
        let d = dst.as_mut_ptr().add(oy * dst_pitch);
        let mut ox = 0;
        while ox < ow {
            let m = lanes(ow - ox);
            let mut a = low;
            for kx in 0..k {
                let at = (kx % stride) * pw + kx / stride + ox;
                let v = _mm512_maskz_loadu_ps(m, phases.as_ptr().add(at));
                a = _mm512_max_ps(v, a);
            }
            _mm512_mask_storeu_ps(d.add(ox), m, a);
            ox += 16;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn max_pool_rows_portable(
    src: &[f32],
    pitch: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    dst: &mut [f32],
    dst_pitch: usize,
) {
    // Bounds: asserted by `max_pool_rows`.
    let oh = out_size(h, k, stride, 0);
    let ow = out_size(w, k, stride, 0);
    // Rows first (contiguous, so it vectorises), then each window's columns, in the order
    // `pool` takes them: the row maxima split into their `stride` column phases, so that
    // tap kx of every window is one contiguous run of a phase.
    let pw = w.div_ceil(stride);
    let mut acc = vec![f32::NEG_INFINITY; stride * pw];
    let mut phases = vec![f32::NEG_INFINITY; stride * pw];
    for oy in 0..oh {
        let dst_row = &mut dst[oy * dst_pitch..oy * dst_pitch + ow];
        acc[..w].fill(f32::NEG_INFINITY);
        for y in oy * stride..oy * stride + k {
            let row = &src[y * pitch..y * pitch + w];
            acc.iter_mut().zip(row).for_each(|(a, v)| *a = max(*a, *v));
        }
        crate::simd::deinterleave(&acc, stride, &mut phases, pw, pw);
        dst_row.fill(f32::NEG_INFINITY);
        for kx in 0..k {
            let taps = &phases[(kx % stride) * pw + kx / stride..][..ow];
            dst_row
                .iter_mut()
                .zip(taps)
                .for_each(|(d, v)| *d = max(*d, *v));
        }
    }
}

/// `d = d + r` for each `d` of `dst` and `r` of `residual` (when given), then `relu(d)` when
/// `relu`: a residual block's epilogue, with AVX-512 where the CPU has it (16 lanes; the
/// crate's baseline build would run it 4 wide), the same operations either way.
pub(crate) fn add_relu(dst: &mut [f32], residual: Option<&[f32]>, relu: bool) {
    if let Some(r) = residual {
        assert_eq!(r.len(), dst.len(), "residual of the output's length");
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present; the lengths are equal (asserted).
        unsafe { add_relu_avx512(dst, residual, relu) };
        return;
    }
    match residual {
        Some(r) => dst.iter_mut().zip(r).for_each(|(d, r)| {
            let v = *d + *r;
            *d = if relu { crate::simd::relu(v) } else { v };
        }),
        None if relu => dst.iter_mut().for_each(|d| *d = crate::simd::relu(*d)),
        None => {}
    }
}

/// [`add_relu`] with AVX-512 (`max(v, 0)` is `v > 0 ? v : 0`, [`crate::relu`]).
///
/// # Safety
/// AVX-512F; `residual`, when given, as long as `dst`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_relu_avx512(dst: &mut [f32], residual: Option<&[f32]>, relu: bool) {
    use std::arch::x86_64::*;
    let n = dst.len();
    let d = dst.as_mut_ptr();
    let zero = _mm512_setzero_ps();
    let mut i = 0;
    while i < n {
        let m = crate::simd::first_lanes(n - i);
        let mut v = _mm512_maskz_loadu_ps(m, d.add(i));
        if let Some(r) = residual {
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r.as_ptr().add(i)));
        }
        if relu {
            v = _mm512_max_ps(v, zero);
        }
        _mm512_mask_storeu_ps(d.add(i), m, v);
        i += 16;
    }
}

/// dlib's pooling: window `k` at `stride`, `pad`; windows are clipped to the image and the
/// average divides by the clipped window's size.
#[allow(clippy::too_many_arguments)]
pub fn pool(
    x: &Tensor,
    kind: Pool,
    kh: usize,
    kw: usize,
    stride_y: usize,
    stride_x: usize,
    pad_y: usize,
    pad_x: usize,
) -> Tensor {
    let (data, oh, ow) = pool_planes(
        &x.data, x.c, x.h, x.w, kind, kh, kw, stride_y, stride_x, pad_y, pad_x, false,
    );
    Tensor::from_vec(x.c, oh, ow, data)
}

/// [`pool`] applied to every sample of a batch.
#[allow(clippy::too_many_arguments)]
pub fn pool_batch(
    x: &BatchTensor,
    kind: Pool,
    kh: usize,
    kw: usize,
    stride_y: usize,
    stride_x: usize,
    pad_y: usize,
    pad_x: usize,
) -> BatchTensor {
    pool_batch_with(
        x,
        kind,
        (kh, kw),
        (stride_y, stride_x),
        (pad_y, pad_x),
        false,
    )
}

/// [`pool_batch`] with its planes spread over the threads when `parallel` (one face's
/// 72×72 max pool is worth it).
pub fn pool_batch_with(
    x: &BatchTensor,
    kind: Pool,
    (kh, kw): (usize, usize),
    (stride_y, stride_x): (usize, usize),
    (pad_y, pad_x): (usize, usize),
    parallel: bool,
) -> BatchTensor {
    let (data, oh, ow) = pool_planes(
        &x.data,
        x.c * x.n,
        x.h,
        x.w,
        kind,
        kh,
        kw,
        stride_y,
        stride_x,
        pad_y,
        pad_x,
        parallel,
    );
    BatchTensor::from_vec(x.c, x.n, oh, ow, data)
}

/// Mean over each whole channel plane (dlib's `avg_pool_everything`): a C-vector.
pub fn global_avg_pool(x: &Tensor) -> Vec<f32> {
    let hw = (x.h * x.w) as f32;
    (0..x.c)
        .map(|c| x.plane(c).iter().sum::<f32>() / hw)
        .collect()
}

/// [`global_avg_pool`] for every sample: a C × N matrix (row-major, channel-major like the batch).
pub fn global_avg_pool_batch(x: &BatchTensor) -> Vec<f32> {
    let hw = x.h * x.w;
    x.data
        .chunks_exact(hw.max(1))
        .map(|p| p.iter().sum::<f32>() / hw as f32)
        .collect()
}

/// dlib's `add_prev` for tensors of different shapes: the result has the larger of each
/// dimension; each input contributes where it has data, elsewhere counts as zero.
pub fn add_zero_padded(a: &Tensor, b: &Tensor) -> Tensor {
    let (c, h, w) = (a.c.max(b.c), a.h.max(b.h), a.w.max(b.w));
    let mut out = Tensor::zeros(c, h, w);
    for src in [a, b] {
        for ch in 0..src.c {
            for y in 0..src.h {
                let o = (ch * h + y) * w;
                let s = (ch * src.h + y) * src.w;
                for x in 0..src.w {
                    out.data[o + x] += src.data[s + x];
                }
            }
        }
    }
    out
}

/// [`add_zero_padded`] sample by sample; both batches must hold the same number of samples.
pub fn add_zero_padded_batch(a: &BatchTensor, b: &BatchTensor) -> BatchTensor {
    assert_eq!(a.n, b.n, "add_zero_padded_batch: batch sizes differ");
    let (c, n, h, w) = (a.c.max(b.c), a.n, a.h.max(b.h), a.w.max(b.w));
    let mut out = BatchTensor::zeros(c, n, h, w);
    for src in [a, b] {
        for ch in 0..src.c {
            for i in 0..n {
                let sp = src.plane(ch, i);
                let dp = out.plane_mut(ch, i);
                for (srow, drow) in sp.chunks_exact(src.w).zip(dp.chunks_exact_mut(w)) {
                    for (d, s) in drow.iter_mut().zip(srow) {
                        *d += *s;
                    }
                }
            }
        }
    }
    out
}
