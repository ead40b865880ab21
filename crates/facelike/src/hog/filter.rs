//! Correlating FHOG planes with a detector's filters, in dlib's float32 order
//! (`float_spatially_filter_image_separable` in *dlib/image_transforms/spatial_filtering.h*).
//!
//! For a separable component (row filter `f`, column filter `g`, both of length `L`), dlib
//! first filters every row of the plane with `f`, then filters the columns of that result
//! with `g` and adds it to the saliency map. Columns are handled eight at a time by a SIMD
//! loop with three interleaved accumulators (taps `0,3,6,…`, `1,4,7,…`, `2,5,8,…`, combined
//! as `a + (b + c)`); the last few columns of each row fall to a scalar loop that sums the
//! taps in order. Which columns are "SIMD" is fixed by where the loop starts, so each output
//! value here is computed with exactly the operation order dlib used for it, however this
//! code itself is vectorised.

/// Number of columns dlib's SIMD loop handles at once.
const LANES: usize = 8;

/// The interior ("non-border") area of a filtered plane: rows `row0..row1`, columns
/// `col0..col1` of the plane, which is where the saliency is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub row0: usize,
    pub row1: usize,
    pub col0: usize,
    pub col1: usize,
}

impl Area {
    /// The area dlib filters for a `rows × cols` plane and a filter of `frows × fcols` taps.
    pub fn for_plane(rows: usize, cols: usize, frows: usize, fcols: usize) -> Option<Area> {
        let (row0, col0) = (frows / 2, fcols / 2);
        let row1 = rows.checked_sub((frows - 1) / 2)?;
        let col1 = cols.checked_sub((fcols - 1) / 2)?;
        (row1 > row0 && col1 > col0).then_some(Area {
            row0,
            row1,
            col0,
            col1,
        })
    }
    pub fn height(&self) -> usize {
        self.row1 - self.row0
    }
    pub fn width(&self) -> usize {
        self.col1 - self.col0
    }
    /// Number of interior columns dlib processes with its 8-wide SIMD loop
    /// (`for (c = col0; c < col1 − 7; c += 8)`).
    pub fn simd_cols(&self) -> usize {
        let mut c = self.col0 as i64;
        while c < self.col1 as i64 - 7 {
            c += LANES as i64;
        }
        c as usize - self.col0
    }
}

/// Sum of `taps[n] · x(n)` in dlib's SIMD order, for `W` columns at once: three accumulators
/// over taps `n ≡ 0, 1, 2 (mod 3)` for as long as a full triple fits (`n < L − 2`), the
/// leftover taps into the first accumulator, then `a + (b + c)`.
#[inline(always)]
fn simd_order_dot<const W: usize>(taps: &[f32], x: impl Fn(usize) -> [f32; W]) -> [f32; W] {
    let len = taps.len();
    let mut a = [0f32; W];
    let mut b = [0f32; W];
    let mut c = [0f32; W];
    let mut n = 0;
    while n + 2 < len {
        let (p0, p1, p2) = (x(n), x(n + 1), x(n + 2));
        let (f0, f1, f2) = (taps[n], taps[n + 1], taps[n + 2]);
        for k in 0..W {
            a[k] += p0[k] * f0;
            b[k] += p1[k] * f1;
            c[k] += p2[k] * f2;
        }
        n += 3;
    }
    while n < len {
        let p = x(n);
        for k in 0..W {
            a[k] += p[k] * taps[n];
        }
        n += 1;
    }
    std::array::from_fn(|k| a[k] + (b[k] + c[k]))
}

/// Reusable buffers: the ring of row-filtered rows and the tail columns.
#[derive(Default)]
pub struct Scratch {
    ring: Vec<f32>,
    tails: Vec<[f32; LANES]>,
}

/// Applies one separable component to `plane` (`rows × cols`) and writes (`add == false`) or
/// adds (`add == true`) the result into `out`, which holds the interior `area` only
/// (`area.height() × area.width()`, row-major).
#[allow(clippy::too_many_arguments)]
pub fn separable_into(
    plane: &[f32],
    rows: usize,
    cols: usize,
    row_filter: &[f32],
    col_filter: &[f32],
    area: Area,
    scratch: &mut Scratch,
    out: &mut [f32],
    add: bool,
) {
    assert!(
        row_filter.len() <= MAX_TAPS && col_filter.len() <= MAX_TAPS,
        "filters longer than {MAX_TAPS} taps"
    );
    scratch.ring.resize(col_filter.len() * area.width(), 0.0);
    let job = Job {
        plane,
        rows,
        cols,
        row_filter,
        col_filter,
        area,
    };
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX. Only AVX is enabled (no FMA), and Rust never fuses
            // or reorders float operations, so the results are the same as without it.
            unsafe { separable_avx(&job, scratch, out, add) };
            return;
        }
    }
    separable_body(&job, scratch, out, add);
}

struct Job<'a> {
    plane: &'a [f32],
    rows: usize,
    cols: usize,
    row_filter: &'a [f32],
    col_filter: &'a [f32],
    area: Area,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn separable_avx(job: &Job<'_>, scratch: &mut Scratch, out: &mut [f32], add: bool) {
    separable_body(job, scratch, out, add)
}

#[inline(always)]
fn separable_body(job: &Job<'_>, scratch: &mut Scratch, out: &mut [f32], add: bool) {
    // dlib's filters are 10 taps long; a fixed length lets the tap loops unroll.
    match (job.row_filter.len(), job.col_filter.len()) {
        (10, 10) => passes::<10, 10>(job, scratch, out, add),
        _ => passes::<0, 0>(job, scratch, out, add),
    }
}

/// Row pass then column pass. `RL`/`CL` are the filter lengths when known at compile time
/// (0: take them from the slices).
#[inline(always)]
fn passes<const RL: usize, const CL: usize>(
    job: &Job<'_>,
    scratch: &mut Scratch,
    out: &mut [f32],
    add: bool,
) {
    let rf = if RL == 0 {
        job.row_filter
    } else {
        &job.row_filter[..RL]
    };
    let cf = if CL == 0 {
        job.col_filter
    } else {
        &job.col_filter[..CL]
    };
    let cl = cf.len();
    let area = job.area;
    let width = area.width();
    let simd = area.simd_cols();
    // The row pass of plane row r goes to ring slot r % cl; as soon as cl rows are there,
    // the column pass produces output row r − (cl − 1). This is the same arithmetic as
    // filtering all rows first, but the intermediate rows stay in the L1 cache.
    let ring = &mut scratch.ring[..cl * width];
    for r in 0..job.rows {
        let src = &job.plane[r * job.cols..(r + 1) * job.cols];
        let slot = (r % cl) * width;
        row_filter_row(src, &mut ring[slot..slot + width], rf, simd);
        let Some(ro) = (r + 1).checked_sub(cl) else {
            continue;
        };
        if ro >= area.height() {
            break;
        }
        let orow = &mut out[ro * width..(ro + 1) * width];
        if CL == 0 {
            let mut offs = [0usize; MAX_TAPS];
            for (m, o) in offs[..cl].iter_mut().enumerate() {
                *o = ((ro + m) % cl) * width;
            }
            col_filter_row(|m| &ring[offs[m]..offs[m] + width], orow, cf, simd, add);
        } else {
            let rows: [&[f32]; CL] = std::array::from_fn(|m| {
                let o = ((ro + m) % cl) * width;
                &ring[o..o + width]
            });
            col_filter_row(|m| rows[m], orow, cf, simd, add);
        }
    }
    if simd < width {
        tail_columns(job, rf, cf, simd, &mut scratch.tails, out, add);
    }
}

/// Longest filter (in taps) this module accepts.
pub const MAX_TAPS: usize = 64;

/// Row filter for one row, SIMD columns only: output column i reads `src[i … i + L − 1]`.
#[inline(always)]
fn row_filter_row(src: &[f32], dst: &mut [f32], rf: &[f32], simd: usize) {
    let rl = rf.len();
    let mut i0 = 0;
    while i0 + 16 <= simd {
        let s = &src[i0..i0 + 16 + rl - 1];
        let v = simd_order_dot::<16>(rf, |n| s[n..n + 16].try_into().unwrap());
        dst[i0..i0 + 16].copy_from_slice(&v);
        i0 += 16;
    }
    while i0 + LANES <= simd {
        let s = &src[i0..i0 + LANES + rl - 1];
        let v = simd_order_dot::<LANES>(rf, |n| s[n..n + LANES].try_into().unwrap());
        dst[i0..i0 + LANES].copy_from_slice(&v);
        i0 += LANES;
    }
}

/// Column filter for one output row, SIMD columns only: tap m reads the row-filtered row
/// `row(m)`.
#[inline(always)]
fn col_filter_row<'r>(
    row: impl Fn(usize) -> &'r [f32],
    orow: &mut [f32],
    cf: &[f32],
    simd: usize,
    add: bool,
) {
    let mut i0 = 0;
    while i0 + 16 <= simd {
        let v = simd_order_dot::<16>(cf, |m| row(m)[i0..i0 + 16].try_into().unwrap());
        add_or_store(&mut orow[i0..i0 + 16], &v, add);
        i0 += 16;
    }
    while i0 + LANES <= simd {
        let v = simd_order_dot::<LANES>(cf, |m| row(m)[i0..i0 + LANES].try_into().unwrap());
        add_or_store(&mut orow[i0..i0 + LANES], &v, add);
        i0 += LANES;
    }
}

/// Rows (or output rows) handled together in the tail columns, so that several independent
/// accumulation chains are in flight.
const TAIL_GROUP: usize = 4;

/// The scalar-tail columns (at most 7, right of the SIMD columns) of both passes. dlib sums
/// their taps one after another into a single accumulator; each tail value here is such a
/// chain, with the chains of [`TAIL_GROUP`] rows interleaved.
#[inline(always)]
fn tail_columns(
    job: &Job<'_>,
    rf: &[f32],
    cf: &[f32],
    simd: usize,
    tails: &mut Vec<[f32; LANES]>,
    out: &mut [f32],
    add: bool,
) {
    let (rl, cl) = (rf.len(), cf.len());
    let width = job.area.width();
    let nt = width - simd;
    // Row pass: tails[r][j] for the tail column simd + j of every plane row; its inputs are
    // plane columns simd + j … simd + j + rl − 1, zero-padded past the row's end.
    tails.clear();
    tails.resize(job.rows, [0.0; LANES]);
    for r0 in (0..job.rows).step_by(TAIL_GROUP) {
        let mut pads = [[0f32; LANES + MAX_TAPS]; TAIL_GROUP];
        for (q, pad) in pads.iter_mut().enumerate() {
            if r0 + q < job.rows {
                let src = &job.plane[(r0 + q) * job.cols + simd..(r0 + q + 1) * job.cols];
                pad[..src.len()].copy_from_slice(src);
            }
        }
        let mut acc = [[0f32; LANES]; TAIL_GROUP];
        for (n, &f) in rf.iter().enumerate() {
            for q in 0..TAIL_GROUP {
                for j in 0..LANES {
                    acc[q][j] += pads[q][n + j] * f;
                }
            }
        }
        for (q, a) in acc.iter().enumerate() {
            if let Some(t) = tails.get_mut(r0 + q) {
                *t = *a;
            }
        }
    }
    // Column pass: output row ro, tail column j sums tails[ro + m][j] over the taps m.
    let height = job.area.height();
    debug_assert!(height + cl - 1 <= job.rows && rl > 0);
    for ro0 in (0..height).step_by(TAIL_GROUP) {
        let mut acc = [[0f32; LANES]; TAIL_GROUP];
        for (m, &g) in cf.iter().enumerate() {
            for (q, aq) in acc.iter_mut().enumerate() {
                let t = tails.get(ro0 + q + m).copied().unwrap_or([0.0; LANES]);
                for j in 0..LANES {
                    aq[j] += t[j] * g;
                }
            }
        }
        for (q, a) in acc.iter().enumerate().take(height.saturating_sub(ro0)) {
            let ro = ro0 + q;
            add_or_store(&mut out[ro * width + simd..(ro + 1) * width], &a[..nt], add);
        }
    }
}

#[inline(always)]
fn add_or_store(o: &mut [f32], v: &[f32], add: bool) {
    if add {
        for (o, v) in o.iter_mut().zip(v) {
            *o += *v;
        }
    } else {
        o.copy_from_slice(v);
    }
}

/// A full (non-separable) `frows × fcols` filter, summed row by row in scalar order and added
/// to `out`. dlib only uses this when the separable form would be slower, which is never the
/// case for the frontal face detector; dlib's own loop for it is vectorised, so results may
/// differ from dlib's in the last bits.
#[allow(clippy::too_many_arguments)]
pub fn full_into(
    plane: &[f32],
    cols: usize,
    filter: &[f32],
    frows: usize,
    fcols: usize,
    area: Area,
    out: &mut [f32],
    add: bool,
) {
    let width = area.width();
    for ro in 0..area.height() {
        for i in 0..width {
            let mut t = 0f32;
            for m in 0..frows {
                let src = &plane[(ro + m) * cols + i..][..fcols];
                for n in 0..fcols {
                    t += src[n] * filter[m * fcols + n];
                }
            }
            let o = &mut out[ro * width + i];
            if add {
                *o += t;
            } else {
                *o = t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectorised_build_matches_portable_build_and_dlib_order() {
        let (rows, cols) = (31, 45);
        let plane: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.3) * 0.7)
            .collect();
        let rf: Vec<f32> = (0..10).map(|i| (i as f32 * 0.37).sin()).collect();
        let cf: Vec<f32> = (0..10).map(|i| (i as f32 * 0.91).cos() * 0.5).collect();
        let area = Area::for_plane(rows, cols, 10, 10).unwrap();
        assert_eq!(
            (area.height(), area.width(), area.simd_cols()),
            (22, 36, 32)
        );
        let n = area.height() * area.width();
        let (mut a, mut b) = (vec![0.5f32; n], vec![0.5f32; n]);
        let mut scratch = Scratch::default();
        separable_into(
            &plane,
            rows,
            cols,
            &rf,
            &cf,
            area,
            &mut scratch,
            &mut a,
            true,
        );
        let job = Job {
            plane: &plane,
            rows,
            cols,
            row_filter: &rf,
            col_filter: &cf,
            area,
        };
        scratch.ring.resize(10 * area.width(), 0.0);
        separable_body(&job, &mut scratch, &mut b, true);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));

        // Spelled out: dlib's SIMD order for column 0 and scalar order for the last column.
        let row_simd = |r: usize, i: usize| {
            let t = |n: usize| plane[r * cols + i + n] * rf[n];
            let a = (((0.0 + t(0)) + t(3)) + t(6)) + t(9);
            let b = ((0.0 + t(1)) + t(4)) + t(7);
            let c = ((0.0 + t(2)) + t(5)) + t(8);
            a + (b + c)
        };
        let row_scalar =
            |r: usize, i: usize| (0..10).fold(0f32, |acc, n| acc + plane[r * cols + i + n] * rf[n]);
        let col = |ro: usize, i: usize, row: &dyn Fn(usize, usize) -> f32| {
            let t = |m: usize| row(ro + m, i) * cf[m];
            let a = (((0.0 + t(0)) + t(3)) + t(6)) + t(9);
            let b = ((0.0 + t(1)) + t(4)) + t(7);
            let c = ((0.0 + t(2)) + t(5)) + t(8);
            a + (b + c)
        };
        let col_scalar = |ro: usize, i: usize, row: &dyn Fn(usize, usize) -> f32| {
            (0..10).fold(0f32, |acc, m| acc + row(ro + m, i) * cf[m])
        };
        let w = area.width();
        for ro in 0..area.height() {
            assert_eq!(a[ro * w].to_bits(), (col(ro, 0, &row_simd) + 0.5).to_bits());
            let last = w - 1;
            assert_eq!(
                a[ro * w + last].to_bits(),
                (col_scalar(ro, last, &row_scalar) + 0.5).to_bits()
            );
        }
    }

    #[test]
    fn full_filter_agrees_with_its_separable_form() {
        let (rows, cols) = (14, 23);
        let plane: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32) / 101.0)
            .collect();
        let rf: Vec<f32> = (0..10).map(|i| 0.1 * i as f32 - 0.4).collect();
        let cf: Vec<f32> = (0..10).map(|i| (i as f32 * 0.5).sin()).collect();
        let full: Vec<f32> = (0..100).map(|k| cf[k / 10] * rf[k % 10]).collect();
        let area = Area::for_plane(rows, cols, 10, 10).unwrap();
        let n = area.height() * area.width();
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        separable_into(
            &plane,
            rows,
            cols,
            &rf,
            &cf,
            area,
            &mut Scratch::default(),
            &mut a,
            false,
        );
        full_into(&plane, cols, &full, 10, 10, area, &mut b, false);
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
            "{a:?} vs {b:?}"
        );
    }
}
