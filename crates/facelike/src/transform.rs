//! Point transforms: dlib's similarity fit (Umeyama) and affine maps, in double precision.
//!
//! The fit is described in `docs/dlib-algorithms.md#similarity-transform`.

use crate::geometry::DPoint;

/// `x ↦ m·x + b`, as dlib's `point_transform_affine`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineTransform {
    /// Row-major 2×2 linear part.
    pub m: [[f64; 2]; 2],
    /// Translation, added after the linear part.
    pub b: [f64; 2],
}

impl AffineTransform {
    /// The image of `p`: `m·p + b`.
    #[inline]
    pub fn apply(&self, p: DPoint) -> DPoint {
        DPoint::new(
            self.m[0][0] * p.x + self.m[0][1] * p.y + self.b[0],
            self.m[1][0] * p.x + self.m[1][1] * p.y + self.b[1],
        )
    }

    /// The affine map taking three points onto three others. dlib fits this by least squares
    /// (`find_affine_transform`); with three points the fit is exact, so it is solved directly.
    pub fn from_three_points(from: [DPoint; 3], to: [DPoint; 3]) -> Option<Self> {
        // Solve [fx fy 1] * [m | b]^T = to for three points: a 3x3 linear system per output row.
        let det = (from[1].x - from[0].x) * (from[2].y - from[0].y)
            - (from[2].x - from[0].x) * (from[1].y - from[0].y);
        if det == 0.0 {
            return None;
        }
        let solve = |t0: f64, t1: f64, t2: f64| -> [f64; 3] {
            let (dx1, dy1) = (from[1].x - from[0].x, from[1].y - from[0].y);
            let (dx2, dy2) = (from[2].x - from[0].x, from[2].y - from[0].y);
            let (dt1, dt2) = (t1 - t0, t2 - t0);
            let a = (dt1 * dy2 - dt2 * dy1) / det;
            let c = (dx1 * dt2 - dx2 * dt1) / det;
            [a, c, t0 - a * from[0].x - c * from[0].y]
        };
        let rx = solve(to[0].x, to[1].x, to[2].x);
        let ry = solve(to[0].y, to[1].y, to[2].y);
        Some(AffineTransform {
            m: [[rx[0], rx[1]], [ry[0], ry[1]]],
            b: [rx[2], ry[2]],
        })
    }
}

/// dlib's `find_similarity_transform(from, to)`: the least-squares rotation + uniform scale +
/// translation (Umeyama 1991, eqs. 34–43), in double precision.
///
/// For 2-D points the SVD has a closed form: with the cross-covariance Σ = [[p, q], [r, s]],
/// the best proper rotation has angle `atan2(r − q, p + s)` and `trace(D·S)` equals
/// `hypot(p + s, r − q)`, the case analysis on det(Σ) that dlib performs included.
pub fn find_similarity_transform(from: &[DPoint], to: &[DPoint]) -> AffineTransform {
    assert_eq!(from.len(), to.len());
    let n = from.len() as f64;
    let (mut mfx, mut mfy, mut mtx, mut mty) = (0.0, 0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        mfx += f.x;
        mfy += f.y;
        mtx += t.x;
        mty += t.y;
    }
    mfx /= n;
    mfy /= n;
    mtx /= n;
    mty /= n;
    let mut sigma_from = 0.0;
    let (mut p, mut q, mut r, mut s) = (0.0, 0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f.x - mfx, f.y - mfy);
        let (tx, ty) = (t.x - mtx, t.y - mty);
        sigma_from += fx * fx + fy * fy;
        p += tx * fx;
        q += tx * fy;
        r += ty * fx;
        s += ty * fy;
    }
    sigma_from /= n;
    p /= n;
    q /= n;
    r /= n;
    s /= n;
    let (sin_num, cos_num) = (r - q, p + s);
    let norm = sin_num.hypot(cos_num);
    let (cos_a, sin_a) = if norm == 0.0 {
        (1.0, 0.0)
    } else {
        (cos_num / norm, sin_num / norm)
    };
    let c = if sigma_from != 0.0 {
        1.0 / sigma_from * norm
    } else {
        1.0
    };
    let m = [[c * cos_a, -c * sin_a], [c * sin_a, c * cos_a]];
    let b = [
        mtx - (m[0][0] * mfx + m[0][1] * mfy),
        mty - (m[1][0] * mfx + m[1][1] * mfy),
    ];
    AffineTransform { m, b }
}

/// Rotates `p` about `center` by `angle` radians (dlib's `rotate_point`).
#[inline]
pub fn rotate_point(center: DPoint, p: DPoint, angle: f64) -> DPoint {
    let (s, c) = (angle.sin(), angle.cos());
    let (dx, dy) = (p.x - center.x, p.y - center.y);
    DPoint::new(c * dx - s * dy + center.x, s * dx + c * dy + center.y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let (sc, ang, tx, ty) = (2.5f64, 0.3f64, 10.0, -4.0);
        let from: Vec<DPoint> = [(0.0, 0.0), (1.0, 0.0), (0.3, 2.0), (5.0, 1.0)]
            .iter()
            .map(|&(x, y)| DPoint::new(x, y))
            .collect();
        let to: Vec<DPoint> = from
            .iter()
            .map(|p| {
                DPoint::new(
                    sc * (ang.cos() * p.x - ang.sin() * p.y) + tx,
                    sc * (ang.sin() * p.x + ang.cos() * p.y) + ty,
                )
            })
            .collect();
        let t = find_similarity_transform(&from, &to);
        for (f, g) in from.iter().zip(&to) {
            let h = t.apply(*f);
            assert!((h.x - g.x).abs() < 1e-9 && (h.y - g.y).abs() < 1e-9);
        }
    }

    #[test]
    fn reflections_are_fitted_by_a_rotation() {
        // A mirrored point set: the best similarity is still a proper rotation (det > 0).
        let from: Vec<DPoint> = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
            .iter()
            .map(|&(x, y)| DPoint::new(x, y))
            .collect();
        let to: Vec<DPoint> = from.iter().map(|p| DPoint::new(-p.x, p.y)).collect();
        let t = find_similarity_transform(&from, &to);
        let det = t.m[0][0] * t.m[1][1] - t.m[0][1] * t.m[1][0];
        assert!(det >= 0.0);
    }

    #[test]
    fn three_point_affine_is_exact() {
        let from = [
            DPoint::new(0.0, 0.0),
            DPoint::new(149.0, 0.0),
            DPoint::new(0.0, 149.0),
        ];
        let to = [
            DPoint::new(10.0, 20.0),
            DPoint::new(310.0, 25.0),
            DPoint::new(5.0, 320.0),
        ];
        let t = AffineTransform::from_three_points(from, to).unwrap();
        for (f, g) in from.iter().zip(&to) {
            let h = t.apply(*f);
            assert!((h.x - g.x).abs() < 1e-9 && (h.y - g.y).abs() < 1e-9);
        }
    }
}
