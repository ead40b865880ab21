//! dlib's HOG frontal face detector (`dlib.get_frontal_face_detector()`), with identical
//! rectangles and scores (`docs/dlib-algorithms.md#hog-detector` and `#python-layer`).
//!
//! The detector is `object_detector<scan_fhog_pyramid<pyramid_down<6>>>` with five linear
//! filters over 31-plane FHOG features. For each image:
//!
//! 1. the image is upsampled `upsample` times with `pyramid_up` (what face_recognition's
//!    `number_of_times_to_upsample` does);
//! 2. a pyramid of images, each 5/6 the size of the previous one, is built down to 64 pixels;
//! 3. FHOG features ([`crate::fhog`]) of every level are correlated with every filter, using
//!    dlib's rank-truncated separable form of each filter;
//! 4. every position scoring at least the filter's threshold becomes a candidate box;
//! 5. candidates from all levels and all five filters are sorted by score and greedily
//!    suppressed with [`boxes_overlap`];
//! 6. boxes are mapped back to the input image.
//!
//! Every float operation follows the order of dlib 20.0.1 as built in the `dlib-bin` wheel
//! (AVX build: SSE4.1 horizontal sums, 8-wide SIMD loops with scalar tails, its own SVD, GCC's
//! `std::sort`), so boxes, detector indices and scores are identical to dlib's: on the 182
//! golden images and 23 further reference cases the largest score difference is 2e-16, the
//! rounding of printing the double.
//!
//! The (level, filter) scans run in parallel on rayon's pool. Each writes its own result
//! slot and the slots are read in dlib's order, so the output never depends on the number of
//! threads or on scheduling.

mod filter;
mod svd;

use crate::cxxsort;
use crate::fhog::{extract_fhog_rgb, FhogPlanes, FHOG_PLANES};
use crate::geometry::Rect;
use crate::models::{read_model, Model, ModelError};
use facelike_dat::hog::{parse_hog_detector, HogDetectorFile};
use facelike_dat::DatReader;
use facelike_image::resample::{pyramid_down_rgb, pyramid_up_rgb};
use facelike_image::RgbImage;
use filter::{Area, Scratch};
use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, OnceLock};

thread_local! {
    /// Per-thread buffers for filtering (separable-pass scratch, saliency map).
    static SCRATCH: RefCell<(Scratch, Vec<f32>)> = RefCell::new((Scratch::default(), Vec::new()));
}

/// One detected face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HogDetection {
    /// The box in the input image, inclusive; it may extend past the image.
    pub rect: Rect,
    /// Detection confidence: filter score minus the filter's threshold (≥ `adjust_threshold`).
    pub score: f64,
    /// Which of the detector's filters fired (frontal face: 0 front, 1 left, 2 right,
    /// 3 front rotated left, 4 front rotated right).
    pub detector: usize,
}

/// One linear filter of the detector, in the form dlib scores with.
#[derive(Clone, Debug)]
struct FilterBank {
    /// `b`: a window scores a detection when its correlation is at least `b`.
    threshold: f64,
    kind: FilterKind,
}

#[derive(Clone, Debug)]
enum FilterKind {
    /// Per plane, the rank-1 components `(row filter, column filter)` in the order dlib adds
    /// them.
    Separable(Vec<Vec<(Vec<f32>, Vec<f32>)>>),
    /// Per plane, the full `filter_rows × filter_cols` filter, row-major.
    Full(Vec<Vec<f32>>),
}

/// dlib's HOG face detector, loaded from the file `get_frontal_face_detector().save()` writes.
#[derive(Clone, Debug)]
pub struct HogDetector {
    cell_size: usize,
    /// Filter size in cells (includes the scanner's padding).
    filter_rows: usize,
    filter_cols: usize,
    /// Size of the box a detection covers, in cells.
    box_rows: usize,
    box_cols: usize,
    max_pyramid_levels: usize,
    min_level_width: usize,
    min_level_height: usize,
    nms_iou: f64,
    nms_covered: f64,
    filters: Vec<FilterBank>,
}

/// The geometry of `pyramid_down<N>` (dlib's image_pyramid.h) for rectangles (also used by
/// [`crate::mmod`] to undo its upsampling).
pub(crate) mod pyramid {
    use crate::geometry::{lround, Rect};

    /// pyramid_down<6>: one level down, `(p − 0.3)·5/6`, rounded to integers.
    pub fn rect_down6(r: Rect) -> Rect {
        let ratio = 5.0 / 6.0;
        let f = |v: i64| lround((v as f64 - 0.3) * ratio);
        Rect::new(f(r.left), f(r.top), f(r.right), f(r.bottom))
    }

    /// pyramid_down<6>: `levels` levels up, `p·6/5 + 0.3` per level in double, then rounded.
    pub fn rect_up6(r: Rect, levels: usize) -> Rect {
        let ratio = 6.0 / 5.0;
        let f = |v: i64| {
            let mut p = v as f64;
            for _ in 0..levels {
                p = p * ratio + 0.3;
            }
            lround(p)
        };
        Rect::new(f(r.left), f(r.top), f(r.right), f(r.bottom))
    }

    /// pyramid_down<2>: `levels` levels down, `p/2 − (1.25, 0.75)` per level, then rounded (the
    /// Python layer's undoing of `levels` upsamplings, for HOG and CNN detections alike).
    pub fn rect_down2(r: Rect, levels: u32) -> Rect {
        let f = |v: i64, off: f64| {
            let mut p = v as f64;
            for _ in 0..levels {
                p = p / 2.0 - off;
            }
            lround(p)
        };
        Rect::new(
            f(r.left, 1.25),
            f(r.top, 0.75),
            f(r.right, 1.25),
            f(r.bottom, 0.75),
        )
    }
}

/// dlib's `test_box_overlap(iou_thresh, percent_covered_thresh)(a, b)`: true when the
/// intersection is more than `iou_thresh` of the bounding box of both (not the true union),
/// or more than `covered_thresh` of either box. Boxes that do not intersect never overlap.
pub fn boxes_overlap(a: &Rect, b: &Rect, iou_thresh: f64, covered_thresh: f64) -> bool {
    let inner = a.intersect(b).area() as f64;
    if inner == 0.0 {
        return false;
    }
    let outer = a.union_box(b).area() as f64;
    inner / outer > iou_thresh
        || inner / a.area() as f64 > covered_thresh
        || inner / b.area() as f64 > covered_thresh
}

/// fhog.h's `fhog_to_image` for one point: cell → pixel at the centre of the cell.
fn fhog_to_image(p: (i64, i64), cell: i64, rows_pad: i64, cols_pad: i64) -> (i64, i64) {
    let x = (p.0 + 1 - (cols_pad - 1) / 2) * cell + 1;
    let y = (p.1 + 1 - (rows_pad - 1) / 2) * cell + 1;
    let half = cell / 2;
    (
        x + if x >= 0 { half } else { -half },
        y + if y >= 0 { half } else { -half },
    )
}

/// fhog.h's `image_to_fhog` for one point (C integer division, truncating toward zero).
fn image_to_fhog(p: (i64, i64), cell: i64, rows_pad: i64, cols_pad: i64) -> (i64, i64) {
    (
        (p.0 - 1) / cell - 1 + (cols_pad - 1) / 2,
        (p.1 - 1) / cell - 1 + (rows_pad - 1) / 2,
    )
}

/// dlib's `centered_rect(point(x, y), w, h)`.
fn centered_rect(x: i64, y: i64, w: i64, h: i64) -> Rect {
    let (l, t) = (x - w / 2, y - h / 2);
    Rect::new(l, t, l + w - 1, t + h - 1)
}

/// Builds dlib's `fhog_filterbank` from a weight vector (`build_fhog_filterbank`).
fn build_filterbank(w: &[f64], rows: usize, cols: usize) -> FilterBank {
    let size = rows * cols;
    let mut separable = Vec::with_capacity(FHOG_PLANES);
    let mut full = Vec::with_capacity(FHOG_PLANES);
    let mut num_separable = 0usize;
    for i in 0..FHOG_PLANES {
        let f = &w[i * size..(i + 1) * size];
        full.push(f.iter().map(|&v| v as f32).collect::<Vec<f32>>());
        let svd::Svd { u, w: sv, v } = svd::svd3(f, rows, cols);
        // rsort_columns(u, w) and rsort_columns(v, w): columns by singular value, largest
        // first, with std::sort over reverse iterators.
        let mut order: Vec<(f64, usize)> = sv.iter().copied().zip(0..).collect();
        cxxsort::sort_reversed_by(&mut order, |a, b| a.0 < b.0);
        let max_sv = sv.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let thresh = f64::max(1e-4, max_sv * 0.001);
        let mut comps = Vec::new();
        for &(s, j) in &order {
            // round_zeros(w, thresh) zeroes |s| < thresh; zero components are skipped.
            if !(s >= thresh || s <= -thresh) {
                continue;
            }
            let root = s.sqrt();
            let col: Vec<f32> = (0..rows).map(|r| (u[r * cols + j] * root) as f32).collect();
            let row: Vec<f32> = (0..cols).map(|c| (v[c * cols + j] * root) as f32).collect();
            comps.push((row, col));
        }
        num_separable += comps.len();
        separable.push(comps);
    }
    // Separable filtering is used unless it would be slower than the full filters.
    let use_full = num_separable as f64 > (FHOG_PLANES * rows.min(cols)) as f64 / 3.0;
    FilterBank {
        threshold: w[FHOG_PLANES * size],
        kind: if use_full {
            FilterKind::Full(full)
        } else {
            FilterKind::Separable(separable)
        },
    }
}

/// A candidate before non-max suppression.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    /// The raw filter output (float32 saliency widened to double, as dlib stores it).
    saliency: f64,
    rect: Rect,
}

impl HogDetector {
    /// Loads `frontal_face_detector.dat` from `models_dir`.
    pub fn load(models_dir: &Path) -> Result<Self, ModelError> {
        let (path, bytes) = read_model(models_dir, Model::HogFrontalFace)?;
        Self::from_bytes(&bytes, &path)
    }

    /// Parses a serialised `object_detector<scan_fhog_pyramid<pyramid_down<6>>>`; `path` is
    /// only used in error messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let mut r = DatReader::new(bytes, path);
        let file: HogDetectorFile = parse_hog_detector(&mut r)?;
        Self::from_parsed(&file, path)
    }

    fn from_parsed(file: &HogDetectorFile, path: &Path) -> Result<Self, ModelError> {
        let s = &file.scanner;
        let bad = |message: String| ModelError::Unexpected {
            path: path.to_path_buf(),
            message,
        };
        if s.cell_size < 2 {
            return Err(bad(format!(
                "HOG cell size {} is not supported (need at least 2)",
                s.cell_size
            )));
        }
        if s.window_width == 0 || s.window_height == 0 || s.max_pyramid_levels == 0 {
            return Err(bad("HOG detection window or pyramid depth is zero".into()));
        }
        // compute_fhog_window_size: the window in cells, grown by the padding.
        let cell = s.cell_size as i64;
        let win = centered_rect(0, 0, s.window_width as i64, s.window_height as i64);
        let tl = image_to_fhog((win.left, win.top), cell, 1, 1);
        let br = image_to_fhog((win.right, win.bottom), cell, 1, 1);
        let pad = s.padding as i64;
        let filter_cols = (br.0 - tl.0 + 1 + 2 * pad).max(0) as usize;
        let filter_rows = (br.1 - tl.1 + 1 + 2 * pad).max(0) as usize;
        let dims = FHOG_PLANES * filter_rows * filter_cols;
        if dims == 0 || dims != s.num_dimensions {
            return Err(bad(format!(
                "HOG scanner stores {} dimensions but a {}x{} window with cell size {} and \
                 padding {} needs {dims}",
                s.num_dimensions, s.window_width, s.window_height, s.cell_size, s.padding
            )));
        }
        let (iou, covered) = file.nms;
        if !((0.0..=1.0).contains(&iou) && (0.0..=1.0).contains(&covered)) {
            return Err(bad(format!(
                "non-max suppression thresholds {iou}, {covered} are outside [0, 1]"
            )));
        }
        let filters = file
            .filters
            .iter()
            .map(|f| {
                if f.w.iter().any(|v| !v.is_finite()) {
                    Err(bad("HOG filter weights contain NaN or infinity".into()))
                } else {
                    Ok(build_filterbank(&f.w, filter_rows, filter_cols))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HogDetector {
            cell_size: s.cell_size,
            filter_rows,
            filter_cols,
            box_rows: filter_rows - 2 * s.padding,
            box_cols: filter_cols - 2 * s.padding,
            max_pyramid_levels: s.max_pyramid_levels,
            min_level_width: s.min_pyramid_layer_width,
            min_level_height: s.min_pyramid_layer_height,
            nms_iou: iou,
            nms_covered: covered,
            filters,
        })
    }

    /// Number of linear filters (5 for the frontal face detector).
    pub fn num_filters(&self) -> usize {
        self.filters.len()
    }

    /// face_recognition's call (`detector.run(img, upsample, adjust_threshold)`): upsample
    /// `upsample` times with `pyramid_up`, scan, suppress overlaps, and map the boxes back to
    /// `img` with `pyramid_down<2>::rect_down`. Detections come best first.
    ///
    /// `adjust_threshold` lowers (negative) or raises the score needed for a detection;
    /// face_recognition uses 0. Each upsampling quadruples the number of pixels (and the
    /// memory and time needed), as in dlib.
    pub fn detect(
        &self,
        img: &RgbImage,
        upsample: u32,
        adjust_threshold: f64,
    ) -> Vec<HogDetection> {
        if img.is_empty() {
            return Vec::new();
        }
        if upsample == 0 {
            return self.detect_at_scale(img, adjust_threshold);
        }
        let mut up = pyramid_up_rgb(img);
        for _ in 1..upsample {
            up = pyramid_up_rgb(&up);
        }
        let mut dets = self.detect_at_scale(&up, adjust_threshold);
        for d in &mut dets {
            d.rect = pyramid::rect_down2(d.rect, upsample);
        }
        dets
    }

    /// Number of pyramid levels dlib scans for an image of this size.
    fn num_levels(&self, width: usize, height: usize) -> usize {
        let mut rect = Rect::new(0, 0, width as i64 - 1, height as i64 - 1);
        let mut levels = 0;
        loop {
            rect = pyramid::rect_down6(rect);
            levels += 1;
            if !(rect.width() >= self.min_level_width as i64
                && rect.height() >= self.min_level_height as i64
                && levels < self.max_pyramid_levels)
            {
                break;
            }
        }
        levels
    }

    /// `object_detector::operator()(img, dets, adjust_threshold)` without any upsampling.
    fn detect_at_scale(&self, img: &RgbImage, adjust_threshold: f64) -> Vec<HogDetection> {
        let levels = self.num_levels(img.width(), img.height());
        let nf = self.filters.len();
        // Every (filter, level) scan is independent, so they run in parallel; each result
        // has its own slot, and the slots are read back in dlib's order, so the output does
        // not depend on scheduling.
        let images: Vec<OnceLock<RgbImage>> = (0..levels).map(|_| OnceLock::new()).collect();
        let found: Vec<OnceLock<Vec<Candidate>>> =
            (0..nf * levels).map(|_| OnceLock::new()).collect();
        rayon::scope(|s| {
            let (images, found) = (&images, &found);
            for l in 0..levels {
                // The image pyramid: each level is pyramid_down<6> of the previous one.
                if l > 0 {
                    let prev = if l == 1 {
                        img
                    } else {
                        images[l - 1].get().unwrap()
                    };
                    let _ = images[l].set(pyramid_down_rgb(prev, 6));
                }
                s.spawn(move |s| {
                    let level_img = if l == 0 {
                        img
                    } else {
                        images[l].get().unwrap()
                    };
                    let feats = Arc::new(extract_fhog_rgb(
                        level_img,
                        self.cell_size,
                        self.filter_rows,
                        self.filter_cols,
                    ));
                    for (fi, bank) in self.filters.iter().enumerate() {
                        let feats = Arc::clone(&feats);
                        s.spawn(move |_| {
                            let thresh = bank.threshold + adjust_threshold;
                            let cands = SCRATCH.with(|scratch| {
                                let (scr, sal) = &mut *scratch.borrow_mut();
                                let mut cands = Vec::new();
                                self.scan_level(&feats, bank, l, thresh, scr, sal, &mut cands);
                                cands
                            });
                            let _ = found[fi * levels + l].set(cands);
                        });
                    }
                });
            }
        });

        // Candidates per filter, in dlib's order: levels in turn, row-major within a level,
        // then sorted by saliency, highest first.
        let mut all: Vec<(f64, usize, Rect)> = Vec::new();
        for (fi, bank) in self.filters.iter().enumerate() {
            let mut cands: Vec<Candidate> = (0..levels)
                .flat_map(|l| found[fi * levels + l].get().into_iter().flatten().copied())
                .collect();
            cxxsort::sort_reversed_by(&mut cands, |a, b| a.saliency < b.saliency);
            all.extend(
                cands
                    .iter()
                    .map(|c| (c.saliency - bank.threshold, fi, c.rect)),
            );
        }

        // Non-max suppression over all filters together.
        if self.filters.len() > 1 {
            cxxsort::sort_reversed_by(&mut all, |a, b| a.0 < b.0);
        }
        let mut kept: Vec<HogDetection> = Vec::new();
        for &(score, detector, rect) in &all {
            if kept
                .iter()
                .any(|k| boxes_overlap(&k.rect, &rect, self.nms_iou, self.nms_covered))
            {
                continue;
            }
            kept.push(HogDetection {
                rect,
                score,
                detector,
            });
        }
        kept
    }

    /// Correlates one pyramid level with one filter and appends every position scoring at
    /// least `thresh` (as a box in the scanned image).
    #[allow(clippy::too_many_arguments)]
    fn scan_level(
        &self,
        f: &FhogPlanes,
        bank: &FilterBank,
        level: usize,
        thresh: f64,
        scratch: &mut Scratch,
        saliency: &mut Vec<f32>,
        out: &mut Vec<Candidate>,
    ) {
        if f.is_empty() {
            return;
        }
        let Some(area) = Area::for_plane(f.rows, f.cols, self.filter_rows, self.filter_cols) else {
            return;
        };
        saliency.clear();
        saliency.resize(area.height() * area.width(), 0.0);
        let mut written = false;
        match &bank.kind {
            FilterKind::Separable(planes) => {
                for (i, comps) in planes.iter().enumerate() {
                    for (row, col) in comps {
                        filter::separable_into(
                            f.plane(i),
                            f.rows,
                            f.cols,
                            row,
                            col,
                            area,
                            scratch,
                            saliency,
                            written,
                        );
                        written = true;
                    }
                }
            }
            FilterKind::Full(planes) => {
                for (i, w) in planes.iter().enumerate() {
                    filter::full_into(
                        f.plane(i),
                        f.cols,
                        w,
                        self.filter_rows,
                        self.filter_cols,
                        area,
                        saliency,
                        written,
                    );
                    written = true;
                }
            }
        }
        if !written {
            // No filter component at all: dlib's scan area stays empty.
            return;
        }
        let cell = self.cell_size as i64;
        let (rp, cp) = (self.filter_rows as i64, self.filter_cols as i64);
        for ro in 0..area.height() {
            let row = &saliency[ro * area.width()..(ro + 1) * area.width()];
            for (ci, &s) in row.iter().enumerate() {
                if (s as f64) >= thresh {
                    let (r, c) = ((area.row0 + ro) as i64, (area.col0 + ci) as i64);
                    let b = centered_rect(c, r, self.box_cols as i64, self.box_rows as i64);
                    let tl = fhog_to_image((b.left, b.top), cell, rp, cp);
                    let br = fhog_to_image((b.right, b.bottom), cell, rp, cp);
                    let rect = pyramid::rect_up6(Rect::new(tl.0, tl.1, br.0, br.1), level);
                    out.push(Candidate {
                        saliency: s as f64,
                        rect,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhog_mappings() {
        // The 80x80 window is 10x10 cells; a detection box is 73x73 pixels at level 0.
        let win = centered_rect(0, 0, 80, 80);
        assert_eq!((win.left, win.right), (-40, 39));
        assert_eq!(image_to_fhog((win.left, win.top), 8, 1, 1), (-6, -6));
        assert_eq!(image_to_fhog((win.right, win.bottom), 8, 1, 1), (3, 3));
        let b = centered_rect(10, 10, 10, 10);
        let tl = fhog_to_image((b.left, b.top), 8, 10, 10);
        let br = fhog_to_image((b.right, b.bottom), 8, 10, 10);
        assert_eq!((tl, br), ((21, 21), (93, 93)));
        // Left of the image the half-cell offset flips sign, so boxes there are wider.
        let b = centered_rect(5, 5, 10, 10);
        let tl = fhog_to_image((b.left, b.top), 8, 10, 10);
        assert_eq!(tl, (-27, -27));
    }

    #[test]
    fn overlap_uses_bounding_box() {
        let a = Rect::new(0, 0, 9, 9);
        let b = Rect::new(5, 0, 14, 9);
        // inner 50, bounding box 150: 0.333 > 0.33.
        assert!(boxes_overlap(&a, &b, 0.33, 1.0));
        assert!(!boxes_overlap(&a, &b, 0.34, 1.0));
        assert!(!boxes_overlap(&a, &Rect::new(10, 10, 20, 20), 0.0, 0.0));
        // Containment trips the covered test.
        assert!(boxes_overlap(&a, &Rect::new(2, 2, 4, 4), 0.9, 0.5));
    }

    #[test]
    fn pyramid_geometry() {
        assert_eq!(
            pyramid::rect_down2(Rect::new(700, 286, 1236, 820), 1),
            Rect::new(349, 142, 617, 409)
        );
        assert_eq!(
            pyramid::rect_up6(Rect::new(1, 1, 10, 10), 0),
            Rect::new(1, 1, 10, 10)
        );
    }
}
