//! Aligned face chips: dlib's `get_face_chip_details` and `extract_image_chip`.
//!
//! The landmarks are fitted (similarity transform) to a template face placed in a padded
//! square; the chip is then sampled bilinearly from the photo — through a 2× image pyramid
//! when the face is much larger than the chip, so that downsampling does not alias. Pixel
//! values are truncated, not rounded, and samples whose 2×2 neighbourhood leaves the image are
//! black, as in dlib.
//!
//! The geometry and sampling rules are in `docs/dlib-algorithms.md#chip-details` and
//! `#chip-extraction`.

use crate::geometry::{floor_i64, lround, DPoint, DRect, Rect};
use crate::shape_predictor::Landmarks;
use crate::transform::{find_similarity_transform, rotate_point, AffineTransform};
use facelike_image::RgbImage;

/// Side of the chip the descriptor network expects.
pub const CHIP_SIZE: usize = 150;
/// The padding face_recognition (dlib's Python API) uses around the template face.
pub const CHIP_PADDING: f64 = 0.25;

/// Where in the photo a chip is cut: a rotated rectangle and the output size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChipDetails {
    /// The chip's area in photo pixel coordinates, unrotated: the chip covers this rectangle
    /// turned by `angle` about its centre.
    pub rect: DRect,
    /// Rotation in radians.
    pub angle: f64,
    /// Output height in pixels.
    pub rows: usize,
    /// Output width in pixels.
    pub cols: usize,
}

/// Why chip details could not be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChipError {
    /// The landmarks are neither the 5-point nor the 68-point layout; holds the count.
    #[error("face chips need 5 or 68 landmarks, got {0}")]
    PartCount(usize),
    /// A chip size of 0 was asked for.
    #[error("chip size must be positive")]
    ZeroSize,
}

/// The 5-point template (dlib's `get_face_chip_details`), in the model's part order.
const TEMPLATE_5: [(f64, f64); 5] = [
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
];

/// Mean positions of 68-point parts 17..=67 in the unit square: published constants of dlib's
/// `get_face_chip_details` (dlib/image_transforms/interpolation.h, Boost licence).
const MEAN_FACE_X: [f64; 51] = [
    0.000213256,
    0.0752622,
    0.18113,
    0.29077,
    0.393397,
    0.586856,
    0.689483,
    0.799124,
    0.904991,
    0.98004,
    0.490127,
    0.490127,
    0.490127,
    0.490127,
    0.36688,
    0.426036,
    0.490127,
    0.554217,
    0.613373,
    0.121737,
    0.187122,
    0.265825,
    0.334606,
    0.260918,
    0.182743,
    0.645647,
    0.714428,
    0.793132,
    0.858516,
    0.79751,
    0.719335,
    0.254149,
    0.340985,
    0.428858,
    0.490127,
    0.551395,
    0.639268,
    0.726104,
    0.642159,
    0.556721,
    0.490127,
    0.423532,
    0.338094,
    0.290379,
    0.428096,
    0.490127,
    0.552157,
    0.689874,
    0.553364,
    0.490127,
    0.42689,
];
const MEAN_FACE_Y: [f64; 51] = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
    0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345,
    0.587326, 0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852,
    0.178758, 0.216423, 0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388,
    0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746,
    0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];

/// dlib's `get_face_chip_details(shape, size, padding)`.
///
/// With 68 points only 33 are used: the eyebrows (17–26) and the lower lip (55–59, 65–67) are
/// ignored because they move with expression.
pub fn face_chip_details(
    landmarks: &Landmarks,
    size: usize,
    padding: f64,
) -> Result<ChipDetails, ChipError> {
    if size == 0 {
        return Err(ChipError::ZeroSize);
    }
    let scale_template = |x: f64, y: f64| {
        DPoint::new(
            (padding + x) / (2.0 * padding + 1.0) * size as f64,
            (padding + y) / (2.0 * padding + 1.0) * size as f64,
        )
    };
    let mut from = Vec::new();
    let mut to = Vec::new();
    match landmarks.points.len() {
        5 => {
            for (i, &(x, y)) in TEMPLATE_5.iter().enumerate() {
                from.push(scale_template(x, y));
                to.push(DPoint::from(landmarks.points[i]));
            }
        }
        68 => {
            for i in 17..68 {
                if (55..=59).contains(&i) || (65..=67).contains(&i) || (17..=26).contains(&i) {
                    continue;
                }
                from.push(scale_template(MEAN_FACE_X[i - 17], MEAN_FACE_Y[i - 17]));
                to.push(DPoint::from(landmarks.points[i]));
            }
        }
        n => return Err(ChipError::PartCount(n)),
    }
    Ok(chip_details_from_points(&from, &to, size, size))
}

/// dlib's `chip_details(chip_points, img_points, dims)`.
pub fn chip_details_from_points(
    chip_points: &[DPoint],
    img_points: &[DPoint],
    rows: usize,
    cols: usize,
) -> ChipDetails {
    let t = find_similarity_transform(chip_points, img_points);
    let (px, py) = (t.m[0][0], t.m[1][0]);
    let angle = py.atan2(px);
    let scale = px.hypot(py);
    let center = t.apply(DPoint::new(cols as f64 / 2.0, rows as f64 / 2.0));
    ChipDetails {
        rect: DRect::centered(center, cols as f64 * scale, rows as f64 * scale),
        angle,
        rows,
        cols,
    }
}

/// dlib's `pyramid_down<2>::rect_down` on a floating rectangle: `p/2 − (1.25, 0.75)`.
fn rect_down(r: &DRect) -> DRect {
    DRect::new(
        r.left / 2.0 - 1.25,
        r.top / 2.0 - 0.75,
        r.right / 2.0 - 1.25,
        r.bottom / 2.0 - 0.75,
    )
}

fn is_empty(r: &DRect) -> bool {
    r.left > r.right || r.top > r.bottom
}

fn area(r: &DRect) -> f64 {
    if is_empty(r) {
        0.0
    } else {
        r.width() * r.height()
    }
}

/// dlib's `pyramid_down<2>` on RGB: a separable [1 4 6 4 1] filter with integer sums, taking
/// every other pixel, divided by 256 with truncation. Output is `((H−3)/2) × ((W−3)/2)`.
pub fn pyramid_down2(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    if w <= 8 || h <= 8 {
        return RgbImage::new(0, 0);
    }
    let (ow, oh) = ((w - 3) / 2, (h - 3) / 2);
    let src = img.as_raw();
    // Horizontal pass over every input row, into u16 (max 16·255 fits).
    let mut tmp = vec![0u16; h * ow * 3];
    for y in 0..h {
        let row = &src[y * w * 3..(y + 1) * w * 3];
        let out = &mut tmp[y * ow * 3..(y + 1) * ow * 3];
        for c in 0..ow {
            let x = 2 * c;
            for ch in 0..3 {
                let p = |k: usize| row[(x + k) * 3 + ch] as u16;
                out[c * 3 + ch] = p(0) + 4 * p(1) + 6 * p(2) + 4 * p(3) + p(4);
            }
        }
    }
    let mut out = RgbImage::new(ow, oh);
    let od = out.as_raw_mut();
    for r in 0..oh {
        let y = 2 * r;
        let rows: [&[u16]; 5] =
            std::array::from_fn(|k| &tmp[(y + k) * ow * 3..(y + k + 1) * ow * 3]);
        let o = &mut od[r * ow * 3..(r + 1) * ow * 3];
        for i in 0..ow * 3 {
            let s = rows[0][i] as u32
                + 4 * rows[1][i] as u32
                + 6 * rows[2][i] as u32
                + 4 * rows[3][i] as u32
                + rows[4][i] as u32;
            o[i] = (s / 256) as u8;
        }
    }
    out
}

fn sub_image(img: &RgbImage, r: &Rect) -> RgbImage {
    let (w, h) = (r.width().max(0) as usize, r.height().max(0) as usize);
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        let sy = r.top as usize + y;
        let src = &img.row(sy)[r.left as usize * 3..(r.left as usize + w) * 3];
        out.as_raw_mut()[y * w * 3..(y + 1) * w * 3].copy_from_slice(src);
    }
    out
}

/// Every byte value as a double.
static U8_TO_F64: [f64; 256] = {
    let mut t = [0f64; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f64;
        i += 1;
    }
    t
};

/// dlib's `transform_image` with `interpolate_bilinear`: chip pixel (c, r) samples `map(c, r)`.
///
/// `map.apply` is evaluated as ((m·c) + (m'·r)) + b, the same operations in the same order,
/// with the products by c and by r computed once per column and per row.
fn transform_bilinear(src: &RgbImage, map: &AffineTransform, rows: usize, cols: usize) -> RgbImage {
    let mut out = RgbImage::new(cols, rows);
    let (w, h) = (src.width() as i64, src.height() as i64);
    let s = src.as_raw();
    let o = out.as_raw_mut();
    let [[m00, m01], [m10, m11]] = map.m;
    let [b0, b1] = map.b;
    let col_terms: Vec<(f64, f64)> = (0..cols)
        .map(|c| (m00 * c as f64, m10 * c as f64))
        .collect();
    for (r, orow) in o.chunks_exact_mut(cols * 3).enumerate() {
        let (ry0, ry1) = (m01 * r as f64, m11 * r as f64);
        for (&(cx0, cx1), px) in col_terms.iter().zip(orow.chunks_exact_mut(3)) {
            let (x, y) = (cx0 + ry0 + b0, cx1 + ry1 + b1);
            let (left, top) = (floor_i64(x), floor_i64(y));
            if !(left >= 0 && top >= 0 && left + 1 < w && top + 1 < h) {
                continue;
            }
            let lr = x - left as f64;
            let tb = y - top as f64;
            let i = ((top * w + left) * 3) as usize;
            let j = i + (w * 3) as usize;
            let (tl, tr) = (&s[i..i + 6], &s[j..j + 6]);
            // Bytes to doubles by table: a load instead of a conversion that waits on its
            // destination register.
            let f = |b: u8| U8_TO_F64[b as usize];
            for ch in 0..3 {
                let (t0, t1) = (f(tl[ch]), f(tl[3 + ch]));
                let (u0, u1) = (f(tr[ch]), f(tr[3 + ch]));
                let v = (1.0 - tb) * ((1.0 - lr) * t0 + lr * t1) + tb * ((1.0 - lr) * u0 + lr * u1);
                px[ch] = v as u8;
            }
        }
    }
    out
}

/// Cuts the chip described by `details` out of `img` (dlib's `extract_image_chip` with bilinear
/// interpolation).
pub fn extract_chip(img: &RgbImage, details: &ChipDetails) -> RgbImage {
    let size = (details.rows * details.cols) as f64;
    let rect = details.rect;
    if details.rows == 0 || details.cols == 0 || is_empty(&rect) {
        return RgbImage::new(details.cols, details.rows);
    }
    // How deep the pyramid must go so the last step is at most a 2x reduction.
    let mut grow = 2.0f64;
    let mut r = rect_down(&rect);
    while area(&r) > size {
        r = rect_down(&r);
        grow = grow * 2.0 + 2.0;
    }
    // Bounding box of the rotated rectangle, grown for the filter's border, within the image.
    let center = rect.center();
    let corners = [
        DPoint::new(rect.left, rect.top),
        DPoint::new(rect.right, rect.top),
        DPoint::new(rect.left, rect.bottom),
        DPoint::new(rect.right, rect.bottom),
    ]
    .map(|p| rotate_point(center, p, details.angle));
    let mut bb = DRect::new(
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for p in corners {
        bb.left = bb.left.min(p.x);
        bb.top = bb.top.min(p.y);
        bb.right = bb.right.max(p.x);
        bb.bottom = bb.bottom.max(p.y);
    }
    let grown = DRect::new(
        (bb.left - grow).max(0.0),
        (bb.top - grow).max(0.0),
        (bb.right + grow).min(img.width() as f64 - 1.0),
        (bb.bottom + grow).min(img.height() as f64 - 1.0),
    );
    if is_empty(&grown) {
        // The chip lies wholly outside the image: dlib yields an all-black chip.
        return RgbImage::new(details.cols, details.rows);
    }
    let bbox = Rect::new(
        lround(grown.left),
        lround(grown.top),
        lround(grown.right),
        lround(grown.bottom),
    );
    let crop = sub_image(img, &bbox);

    let mut level: isize = -1;
    let mut r = DRect::new(
        rect.left - bbox.left as f64,
        rect.top - bbox.top as f64,
        rect.right - bbox.left as f64,
        rect.bottom - bbox.top as f64,
    );
    while area(&rect_down(&r)) > size {
        level += 1;
        r = rect_down(&r);
    }
    let c = r.center();
    let (cols, rows) = (details.cols as f64, details.rows as f64);
    let from = [
        DPoint::new(0.0, 0.0),
        DPoint::new(cols - 1.0, 0.0),
        DPoint::new(0.0, rows - 1.0),
    ];
    let to = [
        rotate_point(c, DPoint::new(r.left, r.top), details.angle),
        rotate_point(c, DPoint::new(r.right, r.top), details.angle),
        rotate_point(c, DPoint::new(r.left, r.bottom), details.angle),
    ];
    let map = match AffineTransform::from_three_points(from, to) {
        Some(m) => m,
        None => return RgbImage::new(details.cols, details.rows),
    };
    if level < 0 {
        return transform_bilinear(&crop, &map, details.rows, details.cols);
    }
    let mut src = pyramid_down2(&crop);
    for _ in 0..level {
        src = pyramid_down2(&src);
    }
    transform_bilinear(&src, &map, details.rows, details.cols)
}
