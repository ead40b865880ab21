//! dlib's geometry types and rounding conventions.
//!
//! dlib rectangles are **inclusive**: `width = right − left + 1`. Converting a floating
//! rectangle to an integer one uses `lround` (half away from zero); converting a floating point
//! to an integer point uses `floor(x + 0.5)`.

use serde::{Deserialize, Serialize};

/// An integer pixel position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Point {
    /// Column, in pixels; grows to the right.
    pub x: i64,
    /// Row, in pixels; grows downwards.
    pub y: i64,
}

impl Point {
    /// The point at column `x`, row `y`.
    pub const fn new(x: i64, y: i64) -> Self {
        Point { x, y }
    }
}

/// A floating-point position.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DPoint {
    /// Column, in (sub)pixels.
    pub x: f64,
    /// Row, in (sub)pixels.
    pub y: f64,
}

impl DPoint {
    /// The point at column `x`, row `y`.
    pub const fn new(x: f64, y: f64) -> Self {
        DPoint { x, y }
    }
    /// dlib's `dpoint → point` conversion: `floor(v + 0.5)` per coordinate.
    #[inline]
    pub fn round(self) -> Point {
        Point::new(floor_i64(self.x + 0.5), floor_i64(self.y + 0.5))
    }
}

impl From<Point> for DPoint {
    fn from(p: Point) -> Self {
        DPoint::new(p.x as f64, p.y as f64)
    }
}

/// An inclusive integer rectangle `[left, top, right, bottom]`, as dlib reports faces.
/// It may extend past the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Leftmost column inside the rectangle.
    pub left: i64,
    /// Topmost row inside the rectangle.
    pub top: i64,
    /// Rightmost column inside the rectangle (inclusive).
    pub right: i64,
    /// Bottom row inside the rectangle (inclusive).
    pub bottom: i64,
}

impl Rect {
    /// The rectangle with these inclusive edges; not checked for `left <= right`.
    pub const fn new(left: i64, top: i64, right: i64, bottom: i64) -> Self {
        Rect {
            left,
            top,
            right,
            bottom,
        }
    }
    /// `right − left + 1`, or 0 when the rectangle is empty.
    pub fn width(&self) -> i64 {
        if self.right < self.left {
            0
        } else {
            self.right - self.left + 1
        }
    }
    /// `bottom − top + 1`, or 0 when the rectangle is empty.
    pub fn height(&self) -> i64 {
        if self.bottom < self.top {
            0
        } else {
            self.bottom - self.top + 1
        }
    }
    /// `width × height` in pixels; 0 when empty.
    pub fn area(&self) -> i64 {
        self.width() * self.height()
    }
    /// Whether the rectangle holds no pixel (`left > right` or `top > bottom`).
    pub fn is_empty(&self) -> bool {
        self.left > self.right || self.top > self.bottom
    }
    /// The overlap of both rectangles (dlib's `a.intersect(b)`); empty when they are disjoint.
    pub fn intersect(&self, o: &Rect) -> Rect {
        Rect::new(
            self.left.max(o.left),
            self.top.max(o.top),
            self.right.min(o.right),
            self.bottom.min(o.bottom),
        )
    }
    /// The smallest rectangle holding both (dlib's `a + b`).
    pub fn union_box(&self, o: &Rect) -> Rect {
        if self.is_empty() {
            return *o;
        }
        if o.is_empty() {
            return *self;
        }
        Rect::new(
            self.left.min(o.left),
            self.top.min(o.top),
            self.right.max(o.right),
            self.bottom.max(o.bottom),
        )
    }
    /// `[left, top, right, bottom]`.
    pub fn to_array(&self) -> [i64; 4] {
        [self.left, self.top, self.right, self.bottom]
    }
    /// face_recognition's `(top, right, bottom, left)` trimmed to an image of `width × height`:
    /// right and bottom are clamped to the width and height themselves, not width − 1.
    pub fn to_css_trimmed(&self, width: usize, height: usize) -> [i64; 4] {
        [
            self.top.max(0),
            self.right.min(width as i64),
            self.bottom.min(height as i64),
            self.left.max(0),
        ]
    }
}

impl std::fmt::Display for Rect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}, {}, {}, {}]",
            self.left, self.top, self.right, self.bottom
        )
    }
}

/// A floating-point rectangle (dlib's `drectangle`), also inclusive-style.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DRect {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Right edge (inclusive: `width = right − left + 1`).
    pub right: f64,
    /// Bottom edge (inclusive: `height = bottom − top + 1`).
    pub bottom: f64,
}

impl DRect {
    /// The rectangle with these edges; not checked for `left <= right`.
    pub const fn new(left: f64, top: f64, right: f64, bottom: f64) -> Self {
        DRect {
            left,
            top,
            right,
            bottom,
        }
    }
    /// `right − left + 1`, or 0 when `right < left`.
    pub fn width(&self) -> f64 {
        if self.right < self.left {
            0.0
        } else {
            self.right - self.left + 1.0
        }
    }
    /// `bottom − top + 1`, or 0 when `bottom < top`.
    pub fn height(&self) -> f64 {
        if self.bottom < self.top {
            0.0
        } else {
            self.bottom - self.top + 1.0
        }
    }
    /// `width × height`.
    pub fn area(&self) -> f64 {
        self.width() * self.height()
    }
    /// The midpoint of the edges, `((left + right)/2, (top + bottom)/2)`, unrounded.
    pub fn center(&self) -> DPoint {
        DPoint::new(
            (self.left + self.right) / 2.0,
            (self.top + self.bottom) / 2.0,
        )
    }
    /// dlib's `centered_drect(p, w, h)`: spans `p ± (w − 1)/2`.
    pub fn centered(p: DPoint, width: f64, height: f64) -> DRect {
        let (hw, hh) = ((width - 1.0) / 2.0, (height - 1.0) / 2.0);
        DRect::new(p.x - hw, p.y - hh, p.x + hw, p.y + hh)
    }
    /// Conversion to an integer rectangle with `lround` per side.
    pub fn round(&self) -> Rect {
        Rect::new(
            lround(self.left),
            lround(self.top),
            lround(self.right),
            lround(self.bottom),
        )
    }
}

impl From<Rect> for DRect {
    fn from(r: Rect) -> Self {
        DRect::new(r.left as f64, r.top as f64, r.right as f64, r.bottom as f64)
    }
}

/// `v.floor() as i64` (saturating, NaN to 0) without a call into libm, which is what
/// `f64::floor` becomes on x86-64 without SSE4.1: hot in landmark and chip sampling.
#[inline(always)]
pub fn floor_i64(v: f64) -> i64 {
    let t = v as i64;
    // Truncation rounds negative non-integers up; step them down (saturating at i64::MIN).
    if (t as f64) > v {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// C's `lround`: nearest integer, halves away from zero.
#[inline]
pub fn lround(v: f64) -> i64 {
    v.round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn floor_i64_equals_floor_then_cast() {
        let mut vals = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            -1.5,
            2.999999,
            -2.000001,
            1e15 + 0.5,
            -1e15 - 0.5,
            4503599627370495.5,
            -4503599627370495.5,
            9.3e18,
            -9.3e18,
            9.223372036854775e18,
            -9.223372036854775e18,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
        ];
        let mut s = 1u64;
        for _ in 0..10000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            vals.push(((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4000.0);
        }
        for v in vals {
            assert_eq!(floor_i64(v), v.floor() as i64, "{v}");
        }
    }

    #[test]
    fn conventions() {
        assert_eq!(lround(2.5), 3);
        assert_eq!(lround(-2.5), -3);
        assert_eq!(DPoint::new(-2.5, 2.5).round(), Point::new(-2, 3));
        let r = Rect::new(349, 142, 617, 409);
        assert_eq!(r.width(), 269);
        assert_eq!(
            Rect::new(-10, 142, 200, 365).to_css_trimmed(191, 491),
            [142, 191, 365, 0]
        );
        let d = DRect::centered(DPoint::new(10.0, 10.0), 80.0, 80.0);
        assert_eq!((d.left, d.right), (-29.5, 49.5));
    }
}
