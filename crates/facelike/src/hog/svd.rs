//! The singular value decomposition dlib uses when it builds separable HOG filters
//! (`svd3` → `svd4` in *dlib/matrix/matrix_la.h*, the Golub–Reinsch algorithm from the
//! "Handbook for Automatic Computation, vol. II" as translated to C).
//!
//! The `dlib-bin` wheel is built without LAPACK, so this is the code that produced the
//! reference filters. Following its operations step for step in double precision gives the
//! same singular vectors to the last bit, which keeps the float32 filters, and so the scores,
//! identical. (A different SVD gives vectors that differ in the last few bits, i.e. score
//! differences around 1e-6.)

/// Result of [`svd3`]: `a = u · diag(w) · vᵀ` with `u` `rows × cols`, `w` `cols`, `v`
/// `cols × cols`, all row-major. Singular values are in the algorithm's order (unsorted).
pub struct Svd {
    pub u: Vec<f64>,
    pub w: Vec<f64>,
    pub v: Vec<f64>,
}

/// dlib's `svd3(a, u, w, v)` for a `rows × cols` row-major matrix.
pub fn svd3(a: &[f64], rows: usize, cols: usize) -> Svd {
    assert_eq!(a.len(), rows * cols);
    if rows >= cols {
        let (u, w, v) = svd4(a, rows, cols, cols);
        Svd { u, w, v }
    } else {
        // dlib decomposes the transpose with a full (cols × cols) left factor, swaps the
        // roles of u and v, then pads u and w with zeros to `cols` columns.
        let mut t = vec![0.0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = a[r * cols + c];
            }
        }
        let (uu, ww, vv) = svd4(&t, cols, rows, cols);
        // vv is rows × rows and becomes u (padded to rows × cols); uu (cols × cols) is v.
        let mut u = vec![0.0; rows * cols];
        for r in 0..rows {
            u[r * cols..r * cols + rows].copy_from_slice(&vv[r * rows..(r + 1) * rows]);
        }
        let mut w = ww;
        w.resize(cols, 0.0);
        Svd { u, w, v: uu }
    }
}

/// `svd4(u_mode, withv = true, a, u, q, v)` for an `m × n` matrix with `m ≥ n`; `ucols` is
/// `n` (skinny U) or `m` (full U). Returns `(u: m × ucols, q: n, v: n × n)`.
#[allow(clippy::many_single_char_names)]
fn svd4(a: &[f64], m: usize, n: usize, ucols: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut eps = f64::EPSILON;
    let tol = f64::MIN_POSITIVE / eps;
    let mut e = vec![0.0f64; n];
    let mut q = vec![0.0f64; n];
    let mut u = vec![0.0f64; m * ucols];
    let mut v = vec![0.0f64; n * n];
    let uc = ucols;
    macro_rules! u {
        ($i:expr, $j:expr) => {
            u[($i) * uc + ($j)]
        };
    }
    macro_rules! v {
        ($i:expr, $j:expr) => {
            v[($i) * n + ($j)]
        };
    }
    for i in 0..m {
        for j in 0..n {
            u!(i, j) = a[i * n + j];
        }
    }

    // Householder reduction to bidiagonal form.
    let (mut g, mut x) = (0.0f64, 0.0f64);
    let mut l = 0usize;
    for i in 0..n {
        e[i] = g;
        let mut s = 0.0;
        l = i + 1;
        for j in i..m {
            s += u!(j, i) * u!(j, i);
        }
        if s < tol {
            g = 0.0;
        } else {
            let f = u!(i, i);
            g = if f < 0.0 { s.sqrt() } else { -s.sqrt() };
            let h = f * g - s;
            u!(i, i) = f - g;
            for j in l..n {
                let mut s = 0.0;
                for k in i..m {
                    s += u!(k, i) * u!(k, j);
                }
                let f = s / h;
                for k in i..m {
                    u!(k, j) += f * u!(k, i);
                }
            }
        }
        q[i] = g;
        let mut s = 0.0;
        for j in l..n {
            s += u!(i, j) * u!(i, j);
        }
        if s < tol {
            g = 0.0;
        } else {
            let f = u!(i, i + 1);
            g = if f < 0.0 { s.sqrt() } else { -s.sqrt() };
            let h = f * g - s;
            u!(i, i + 1) = f - g;
            for j in l..n {
                e[j] = u!(i, j) / h;
            }
            for j in l..m {
                let mut s = 0.0;
                for k in l..n {
                    s += u!(j, k) * u!(i, k);
                }
                for k in l..n {
                    u!(j, k) += s * e[k];
                }
            }
        }
        let y = q[i].abs() + e[i].abs();
        if y > x {
            x = y;
        }
    }

    // Accumulation of right-hand transformations.
    for i in (0..n).rev() {
        if g != 0.0 {
            let h = u!(i, i + 1) * g;
            for j in l..n {
                v!(j, i) = u!(i, j) / h;
            }
            for j in l..n {
                let mut s = 0.0;
                for k in l..n {
                    s += u!(i, k) * v!(k, j);
                }
                for k in l..n {
                    v!(k, j) += s * v!(k, i);
                }
            }
        }
        for j in l..n {
            v!(i, j) = 0.0;
            v!(j, i) = 0.0;
        }
        v!(i, i) = 1.0;
        g = e[i];
        l = i;
    }

    // Accumulation of left-hand transformations.
    for i in n..m {
        for j in n..uc {
            u!(i, j) = 0.0;
        }
        if i < uc {
            u!(i, i) = 1.0;
        }
    }
    for i in (0..n).rev() {
        let l = i + 1;
        let g = q[i];
        for j in l..uc {
            u!(i, j) = 0.0;
        }
        if g != 0.0 {
            let h = u!(i, i) * g;
            for j in l..uc {
                let mut s = 0.0;
                for k in l..m {
                    s += u!(k, i) * u!(k, j);
                }
                let f = s / h;
                for k in i..m {
                    u!(k, j) += f * u!(k, i);
                }
            }
            for j in i..m {
                u!(j, i) /= g;
            }
        } else {
            for j in i..m {
                u!(j, i) = 0.0;
            }
        }
        u!(i, i) += 1.0;
    }

    // Diagonalisation of the bidiagonal form.
    eps *= x;
    'outer: for k in (0..n).rev() {
        let mut iter = 0;
        loop {
            // Test for splitting. e[0] is always 0, so the scan stops at l = 0 at the latest.
            let mut l = k;
            let mut cancel = false;
            loop {
                if e[l].abs() <= eps {
                    break;
                }
                if q[l - 1].abs() <= eps {
                    cancel = true;
                    break;
                }
                l -= 1;
            }
            if cancel {
                // Cancellation of e[l] (l > 0).
                let mut c = 0.0;
                let mut s = 1.0;
                let l1 = l - 1;
                for i in l..=k {
                    let f = s * e[i];
                    e[i] *= c;
                    if f.abs() <= eps {
                        break;
                    }
                    let g = q[i];
                    let h = (f * f + g * g).sqrt();
                    q[i] = h;
                    c = g / h;
                    s = -f / h;
                    for j in 0..m {
                        let y = u!(j, l1);
                        let z = u!(j, i);
                        u!(j, l1) = y * c + z * s;
                        u!(j, i) = -y * s + z * c;
                    }
                }
            }
            // Test for convergence.
            let z = q[k];
            if l == k {
                if z < 0.0 {
                    q[k] = -z;
                    for j in 0..n {
                        v!(j, k) = -v!(j, k);
                    }
                }
                break;
            }
            iter += 1;
            if iter > 300 {
                // dlib gives up on this and all remaining singular values.
                break 'outer;
            }
            // Shift from the bottom 2×2 minor.
            let mut x = q[l];
            let mut y = q[k - 1];
            let mut g = e[k - 1];
            let mut h = e[k];
            let mut f = ((y - z) * (y + z) + (g - h) * (g + h)) / (2.0 * h * y);
            g = (f * f + 1.0).sqrt();
            f = ((x - z) * (x + z) + h * (y / (if f < 0.0 { f - g } else { f + g }) - h)) / x;
            // Next QR transformation.
            let mut c = 1.0;
            let mut s = 1.0;
            for i in l + 1..=k {
                g = e[i];
                y = q[i];
                h = s * g;
                g *= c;
                let mut z = (f * f + h * h).sqrt();
                e[i - 1] = z;
                c = f / z;
                s = h / z;
                f = x * c + g * s;
                g = -x * s + g * c;
                h = y * s;
                y *= c;
                for j in 0..n {
                    let xx = v!(j, i - 1);
                    let zz = v!(j, i);
                    v!(j, i - 1) = xx * c + zz * s;
                    v!(j, i) = -xx * s + zz * c;
                }
                z = (f * f + h * h).sqrt();
                q[i - 1] = z;
                if z != 0.0 {
                    c = f / z;
                    s = h / z;
                }
                f = c * g + s * y;
                x = -s * g + c * y;
                for j in 0..m {
                    let yy = u!(j, i - 1);
                    let zz = u!(j, i);
                    u!(j, i - 1) = yy * c + zz * s;
                    u!(j, i) = -yy * s + zz * c;
                }
            }
            e[l] = 0.0;
            e[k] = f;
            q[k] = x;
        }
    }
    (u, q, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &[f64], rows: usize, cols: usize) {
        let Svd { u, w, v } = svd3(a, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                let rec: f64 = (0..cols)
                    .map(|j| u[r * cols + j] * w[j] * v[c * cols + j])
                    .sum();
                assert!(
                    (rec - a[r * cols + c]).abs() < 1e-12,
                    "{rec} vs {}",
                    a[r * cols + c]
                );
            }
        }
        assert!(w.iter().all(|&s| s >= 0.0));
        // v is orthogonal.
        for i in 0..cols {
            for j in 0..cols {
                let d: f64 = (0..cols).map(|k| v[k * cols + i] * v[k * cols + j]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn reconstructs() {
        let a: Vec<f64> = (0..100)
            .map(|i| ((i * 37 % 23) as f64 - 11.0) / 7.0)
            .collect();
        check(&a, 10, 10);
        check(&a[..30], 6, 5);
        check(&a[..30], 5, 6);
        // Rank-deficient.
        let b: Vec<f64> = (0..16).map(|i| ((i % 4) * (i / 4)) as f64).collect();
        check(&b, 4, 4);
    }
}
