//! dlib's MMOD CNN face detector (`cnn_face_detection_model_v1` with
//! `mmod_human_face_detector.dat`), with dlib's boxes (`docs/dlib-algorithms.md#mmod`).
//!
//! 1. The image (optionally doubled `upsample` times with `pyramid_up`) is packed with all its
//!    5/6-scaled versions into one tiled canvas, each level resized from the previous tile with
//!    dlib's float bilinear resize;
//! 2. a small fully convolutional network (three stride-2 5×5 convolutions, three 5×5
//!    convolutions, a 9×9 scorer) turns the canvas into a score map at 1/8 resolution;
//! 3. every cell scoring above 0 is an 80×80 window in canvas coordinates, mapped back through
//!    the tile it falls in to the input image;
//! 4. windows are sorted by score and greedily suppressed with dlib's `test_box_overlap`.
//!
//! Batch-norm layers are folded into the convolutions on load, so the scores differ from dlib's
//! only by float summation order (about 1e-6). Where the CPU has AVX-512F the network runs as
//! one chain of direct convolutions (`facelike_tensor::DirectConv::forward_chain_par`).

use crate::cxxsort;
use crate::geometry::{DPoint, DRect, Point, Rect};
use crate::hog::boxes_overlap;
use crate::hog::pyramid::rect_down2;
use crate::models::{read_model, Model, ModelError};
use facelike_dat::dnn::{parse_dnn, InputLayer, Layer, LossLayer};
use facelike_dat::DatReader;
use facelike_image::resample::pyramid_up_rgb;
use facelike_image::RgbImage;
use facelike_tensor::{Conv2d, DirectConv, Epilogue, Tensor};
use rayon::prelude::*;
use std::path::Path;

/// One detected face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CnnDetection {
    /// The box in the input image, inclusive; it may extend past the image.
    pub rect: Rect,
    /// The network's score for the window (> 0).
    pub confidence: f64,
}

/// A convolution (with any following affine layer folded in) and whether a ReLU follows.
struct Stage {
    conv: Conv2d,
    relu: bool,
    /// The same convolution for the direct AVX-512 kernel, where the CPU has it.
    direct: Option<DirectConv>,
}

/// The loaded detector.
pub struct CnnDetector {
    stages: Vec<Stage>,
    avg: [f32; 3],
    padding: usize,
    outer_padding: usize,
    window: (f64, f64),
    nms: (f64, f64),
    /// Output cell (c, r) ↦ input position `stride·(c, r) + offset`.
    stride: f64,
    offset: f64,
}

impl std::fmt::Debug for CnnDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CnnDetector({} convolutions)", self.stages.len())
    }
}

impl CnnDetector {
    /// Loads `mmod_human_face_detector.dat` from the model directory.
    pub fn load(models_dir: &Path) -> Result<Self, ModelError> {
        let (path, bytes) = read_model(models_dir, Model::MmodDetector)?;
        Self::from_bytes(&bytes, &path)
    }

    /// Parses an MMOD network file; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let wrong = |message: String| ModelError::Unexpected {
            path: path.to_path_buf(),
            message: format!("not an MMOD face detector: {message}"),
        };
        let mut r = DatReader::new(bytes, path);
        let file = parse_dnn(&mut r)?;
        let opts = match &file.loss {
            LossLayer::Mmod(o) => o,
            other => return Err(wrong(format!("the loss layer is {other:?}"))),
        };
        if opts.windows.len() != 1 || opts.use_bounding_box_regression {
            return Err(wrong(format!(
                "{} detector windows (one expected, without box regression)",
                opts.windows.len()
            )));
        }
        let (avg, padding, outer_padding) = match file.input {
            InputLayer::RgbPyramid {
                avg,
                pyramid_padding,
                pyramid_outer_padding,
            } => (
                avg,
                pyramid_padding as usize,
                pyramid_outer_padding as usize,
            ),
            other => return Err(wrong(format!("the input layer is {other:?}"))),
        };
        let mut stages: Vec<Stage> = Vec::new();
        let mut channels = 3usize;
        for (i, layer) in file.layers.iter().enumerate() {
            match layer {
                Layer::Conv { num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x, params, use_bias, use_relu } => {
                    let n = num_filters * nr * nc;
                    if n == 0 || params.data.len() < n || (params.data.len() - if *use_bias { *num_filters } else { 0 }) % n != 0 {
                        return Err(wrong(format!("layer {i}: convolution parameters do not match its shape")));
                    }
                    let k = (params.data.len() - if *use_bias { *num_filters } else { 0 }) / n;
                    if k != channels {
                        return Err(wrong(format!("layer {i}: convolution expects {k} channels, gets {channels}")));
                    }
                    let wlen = num_filters * k * nr * nc;
                    stages.push(Stage {
                        conv: Conv2d {
                            out_channels: *num_filters,
                            in_channels: k,
                            kh: *nr,
                            kw: *nc,
                            stride_y: *stride_y,
                            stride_x: *stride_x,
                            pad_y: *pad_y,
                            pad_x: *pad_x,
                            weights: params.data[..wlen].to_vec(),
                            bias: use_bias.then(|| params.data[wlen..].to_vec()),
                        },
                        relu: *use_relu,
                        direct: None,
                    });
                    channels = *num_filters;
                }
                Layer::Affine { gamma, beta, per_channel: true, disabled: false } => {
                    let s = stages.last_mut().filter(|s| !s.relu && gamma.len() == s.conv.out_channels);
                    match s {
                        Some(s) => s.conv.fold_affine(gamma, beta),
                        None => return Err(wrong(format!("layer {i}: an affine layer that does not follow a convolution"))),
                    }
                }
                Layer::Relu { disabled: false } => match stages.last_mut() {
                    Some(s) if !s.relu => s.relu = true,
                    _ => return Err(wrong(format!("layer {i}: a ReLU that does not follow a convolution"))),
                },
                other => return Err(wrong(format!("layer {i} is {other:?}; only convolutions, affine and ReLU layers are supported"))),
            }
        }
        if stages.is_empty() || channels != 1 {
            return Err(wrong(format!(
                "the network ends with {channels} channels (one score map expected)"
            )));
        }
        for s in &mut stages {
            // Any large input: detection canvases are hundreds of pixels a side.
            s.direct = DirectConv::new(&s.conv, &[(512, 512)]);
        }
        // Compose dlib's `map_output_to_input` (p·stride − pad + k/2) from the output back.
        let (mut stride, mut offset) = (1.0f64, 0.0f64);
        for s in stages.iter().rev() {
            let c = &s.conv;
            if c.stride_x != c.stride_y || c.pad_x != c.pad_y || c.kh != c.kw {
                return Err(wrong("anisotropic convolutions are not supported".into()));
            }
            offset = offset * c.stride_x as f64 - c.pad_x as f64 + (c.kw / 2) as f64;
            stride *= c.stride_x as f64;
        }
        Ok(CnnDetector {
            stages,
            avg,
            padding,
            outer_padding,
            window: (opts.windows[0].width as f64, opts.windows[0].height as f64),
            nms: opts.overlaps_nms,
            stride,
            offset,
        })
    }

    /// face_recognition's `cnn_face_detector(img, upsample)`: boxes in the input image, best
    /// first.
    pub fn detect(&self, img: &RgbImage, upsample: u32) -> Vec<CnnDetection> {
        if img.is_empty() {
            return Vec::new();
        }
        let mut scaled = None;
        for _ in 0..upsample {
            scaled = Some(pyramid_up_rgb(scaled.as_ref().unwrap_or(img)));
        }
        let dets = self.detect_at_scale(scaled.as_ref().unwrap_or(img));
        dets.into_iter()
            .map(|d| CnnDetection {
                rect: rect_down2(d.rect, upsample),
                confidence: d.confidence,
            })
            .collect()
    }

    /// Floating-point operations (2 per multiply-add) of the network's convolutions for a
    /// `width × height` image at `upsample`: the work [`detect`](Self::detect) does, for
    /// reporting achieved FLOP rates.
    pub fn flops(&self, width: usize, height: usize, upsample: u32) -> u64 {
        let (mut w, mut h) = (width, height);
        for _ in 0..upsample {
            (w, h) = (2 * w, 2 * h);
        }
        let Some(p) = TiledPyramid::new(h, w, self.padding, self.outer_padding) else {
            return 0;
        };
        let (mut h, mut w) = (p.rows, p.cols);
        let mut total = 0;
        for s in &self.stages {
            total += s.conv.flops(h, w);
            (h, w) = s.conv.out_shape(h, w);
        }
        total
    }

    fn detect_at_scale(&self, img: &RgbImage) -> Vec<CnnDetection> {
        let Some(pyramid) =
            TiledPyramid::new(img.height(), img.width(), self.padding, self.outer_padding)
        else {
            return Vec::new();
        };
        let mut x = pyramid.build(img, self.avg);
        // Every stage must leave a non-empty map (else there is nothing to find).
        let (mut h, mut w) = (x.h, x.w);
        for s in &self.stages {
            (h, w) = s.conv.out_shape(h, w);
            if h == 0 || w == 0 {
                return Vec::new();
            }
        }
        let direct: Option<Vec<(&DirectConv, bool)>> = self
            .stages
            .iter()
            .map(|s| s.direct.as_ref().map(|d| (d, s.relu)))
            .collect();
        match direct {
            Some(layers) => x = DirectConv::forward_chain_par(&layers, &x),
            None => {
                for s in &self.stages {
                    x = s.conv.forward_par(
                        &x,
                        Epilogue {
                            residual: None,
                            relu: s.relu,
                        },
                    );
                }
            }
        }
        // Candidates, in dlib's scan order, then sorted by score as dlib's std::sort does.
        let mut cands: Vec<(f64, DRect)> = Vec::new();
        for r in 0..x.h {
            for c in 0..x.w {
                let score = x.data[r * x.w + c] as f64;
                if score > 0.0 {
                    let p = DPoint::new(
                        self.stride * c as f64 + self.offset,
                        self.stride * r as f64 + self.offset,
                    );
                    let window = DRect::centered(p, self.window.0, self.window.1);
                    cands.push((score, pyramid.to_image(window)));
                }
            }
        }
        cxxsort::sort_reversed_by(&mut cands, |a, b| a.0 < b.0);
        let mut kept: Vec<CnnDetection> = Vec::new();
        for (score, r) in cands {
            let rect = r.round();
            if kept
                .iter()
                .any(|k| boxes_overlap(&k.rect, &rect, self.nms.0, self.nms.1))
            {
                continue;
            }
            kept.push(CnnDetection {
                rect,
                confidence: score,
            });
        }
        kept
    }
}

/// The layout of dlib's tiled image pyramid (`compute_tiled_image_pyramid_details` with
/// `pyramid_down<6>`): level 0 and its 5/6-scaled copies packed into one canvas.
struct TiledPyramid {
    rects: Vec<Rect>,
    rows: usize,
    cols: usize,
}

impl TiledPyramid {
    fn new(nr: usize, nc: usize, padding: usize, outer: usize) -> Option<Self> {
        if nr == 0 || nc == 0 {
            return None;
        }
        let (padding, outer) = (padding as i64, outer as i64);
        let (mut h, mut w) = (nr as i64, nc as i64);
        let mut rects = vec![Rect::new(0, 0, w - 1, h - 1)];
        let rate = 5.0 / 6.0;
        loop {
            h = (rate * h as f64).floor() as i64;
            w = (rate * w as f64).floor() as i64;
            if h * w == 0 || h < 5 {
                break;
            }
            rects.push(Rect::new(0, 0, w - 1, h - 1));
        }
        let h0 = rects[0].height();
        let w0 = rects[0].width();
        let total_height: i64 =
            rects.iter().map(|r| r.height() + padding).sum::<i64>() - 2 * padding;
        let (mut height, mut prev_width) = (0i64, 0i64);
        for r in &rects {
            if r.width() <= w0 - prev_width - padding && (height - h0) * 2 >= total_height - h0 {
                break;
            }
            height += r.height() + padding;
            prev_width = r.width();
        }
        height -= padding;
        let rows = (height + 2 * outer) as usize;
        let cols = (w0 + 2 * outer) as usize;
        let mut y = outer;
        let mut i = 0;
        while y < height + outer && i < rects.len() {
            let r = rects[i];
            rects[i] = Rect::new(r.left + outer, r.top + y, r.right + outer, r.bottom + y);
            y += rects[i].height() + padding;
            i += 1;
        }
        y -= padding;
        while i < rects.len() {
            // The second column grows upward from the bottom right, right-aligned.
            let p1 = Point::new(outer + w0 - 1, y - 1);
            let p2 = Point::new(p1.x - rects[i].right, p1.y - rects[i].bottom);
            let rect = Rect::new(
                p1.x.min(p2.x),
                p1.y.min(p2.y),
                p1.x.max(p2.x),
                p1.y.max(p2.y),
            );
            if !rects[0].intersect(&rect).is_empty() {
                break;
            }
            rects[i] = rect;
            y -= rect.height() + padding;
            i += 1;
        }
        rects.truncate(i);
        Some(TiledPyramid { rects, rows, cols })
    }

    /// The 3-plane float canvas: level 0 is `(pixel − avg)/256`, each further level a float
    /// bilinear resize of the previous tile.
    fn build(&self, img: &RgbImage, avg: [f32; 3]) -> Tensor {
        let (rows, cols) = (self.rows, self.cols);
        let mut t = Tensor::zeros(3, rows, cols);
        let r0 = self.rects[0];
        t.data
            .par_chunks_mut(rows * cols)
            .enumerate()
            .for_each(|(ch, plane)| {
                for y in 0..img.height() {
                    let src = img.row(y);
                    let dst = &mut plane[(r0.top as usize + y) * cols + r0.left as usize..]
                        [..img.width()];
                    for (x, d) in dst.iter_mut().enumerate() {
                        *d = ((src[3 * x + ch] as f32 - avg[ch]) as f64 / 256.0) as f32;
                    }
                }
                for i in 1..self.rects.len() {
                    resize_tile_f32(plane, cols, &self.rects[i - 1], &self.rects[i]);
                }
            });
        t
    }

    /// dlib's `tiled_pyramid_to_image` for a window: through the tile nearest its centre.
    fn to_image(&self, r: DRect) -> DRect {
        let c = r.center().round();
        let mut idx = 0;
        let mut best = f64::INFINITY;
        for (i, t) in self.rects.iter().enumerate() {
            if c.x >= t.left && c.x <= t.right && c.y >= t.top && c.y <= t.bottom {
                idx = i;
                break;
            }
            let nx = c.x.clamp(t.left, t.right);
            let ny = c.y.clamp(t.top, t.bottom);
            let d = (((nx - c.x) * (nx - c.x) + (ny - c.y) * (ny - c.y)) as f64).sqrt();
            if d < best {
                best = d;
                idx = i;
            }
        }
        let t = self.rects[idx];
        let up = |mut v: f64| {
            for _ in 0..idx {
                v = v * (6.0 / 5.0) + 0.3;
            }
            v
        };
        DRect::new(
            up(r.left - t.left as f64),
            up(r.top - t.top as f64),
            up(r.right - t.left as f64),
            up(r.bottom - t.top as f64),
        )
    }
}

/// dlib's `resize_image` for float planes (align-corners bilinear): four columns at a time in
/// float32 with x accumulated in float32, then a tail whose rows mix float and double as dlib's
/// code does. Reads tile `src` of `plane` and writes tile `dst` of the same plane.
fn resize_tile_f32(plane: &mut [f32], stride: usize, src: &Rect, dst: &Rect) {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (dst.width() as usize, dst.height() as usize);
    let (sx0, sy0) = (src.left as usize, src.top as usize);
    let (dx0, dy0) = (dst.left as usize, dst.top as usize);
    let x_scale = (in_w as f64 - 1.0) / (out_w.saturating_sub(1).max(1)) as f64;
    let y_scale = (in_h as f64 - 1.0) / (out_h.saturating_sub(1).max(1)) as f64;
    let x0 = -4.0 * x_scale;
    let mut lanes = [
        x0 as f32,
        (x0 + x_scale) as f32,
        (x0 + 2.0 * x_scale) as f32,
        (x0 + 3.0 * x_scale) as f32,
    ];
    let step = (4.0 * x_scale) as f32;
    let mut cols: Vec<(usize, f32, f32)> = Vec::with_capacity(out_w);
    loop {
        for l in lanes.iter_mut() {
            *l += step;
        }
        let left = lanes.map(|v| v as i32);
        if left[3] as i64 + 1 >= in_w as i64 || cols.len() + 4 > out_w {
            break;
        }
        for j in 0..4 {
            let lr = lanes[j] - left[j] as f32;
            cols.push((left[j].max(0) as usize, lr, 1.0 - lr));
        }
    }
    let n_simd = cols.len();
    let mut row_buf = vec![0f32; out_w];
    let mut y = -y_scale;
    for r in 0..out_h {
        y += y_scale;
        let top = y.floor() as usize;
        let bottom = (top + 1).min(in_h - 1);
        let tb = y - top as f64;
        let (tb_f, inv_tb_f) = (tb as f32, (1.0 - tb) as f32);
        let trow = &plane[(sy0 + top) * stride + sx0..][..in_w];
        let brow = &plane[(sy0 + bottom) * stride + sx0..][..in_w];
        for (c, &(l, lr, inv_lr)) in cols.iter().enumerate() {
            let (tlf, trf, blf, brf) = (inv_tb_f * inv_lr, inv_tb_f * lr, tb_f * inv_lr, tb_f * lr);
            row_buf[c] = ((tlf * trow[l] + trf * trow[l + 1]) + blf * brow[l]) + brf * brow[l + 1];
        }
        let mut x = -x_scale + n_simd as f64 * x_scale;
        for v in row_buf.iter_mut().skip(n_simd) {
            x += x_scale;
            let l = x.floor() as usize;
            let rr = (l + 1).min(in_w - 1);
            let lr = (x - l as f64) as f32;
            let top_mix = (1.0 - lr) * trow[l] + lr * trow[rr];
            let bot_mix = (1.0 - lr) * brow[l] + lr * brow[rr];
            *v = ((1.0 - tb) * top_mix as f64 + tb * bot_mix as f64) as f32;
        }
        plane[(dy0 + r) * stride + dx0..][..out_w].copy_from_slice(&row_buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiled_pyramid_layout_matches_dlib() {
        // docs/dlib-algorithms.md#mmod-tiled-pyramid (rows x columns): 1137x910 -> canvas
        // 4139x932 with 29 tiles; 1428x2000 -> 5183x2022 with 30 tiles, the first two
        // (11,11)-(2010,1438) and (11,1449)-(1676,2638).
        let p = TiledPyramid::new(1137, 910, 10, 11).unwrap();
        assert_eq!((p.rows, p.cols, p.rects.len()), (4139, 932, 29));
        let p = TiledPyramid::new(1428, 2000, 10, 11).unwrap();
        assert_eq!((p.rows, p.cols, p.rects.len()), (5183, 2022, 30));
        assert_eq!(p.rects[0], Rect::new(11, 11, 2010, 1438));
        assert_eq!(p.rects[1], Rect::new(11, 1449, 1676, 2638));
        assert!(TiledPyramid::new(0, 10, 10, 11).is_none());
    }
}
