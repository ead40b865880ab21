//! Face landmarks: dlib's `shape_predictor` (Kazemi & Sullivan's ensemble of regression trees).
//!
//! Given a face rectangle, the mean shape is refined by 15 cascades of 500 depth-4 trees whose
//! splits compare the intensities of two "feature pixels" placed relative to the current shape.
//! Every detail follows dlib so that the integer landmark positions are identical: integer grey
//! `(R+G+B)/3`, feature pixels outside the image read as 0, the shape-to-shape similarity fit in
//! double cast to float, float32 accumulation of leaf values, `floor(x + 0.5)` rounding.
//!
//! The algorithm is in `docs/dlib-algorithms.md#shape-predictor`, the file layout in
//! `docs/dlib-formats.md#shape-predictor-file`.

use crate::geometry::{DPoint, Point, Rect};
use crate::models::{self, Model, ModelError};
use crate::transform::find_similarity_transform;
use facelike_dat::shape_predictor::parse_shape_predictor;
use facelike_dat::DatReader;
use facelike_image::RgbImage;
use std::path::Path;

/// Asks for the cache lines of `data` ahead of use (a hint; no effect on results).
#[inline(always)]
fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(16) {
        // SAFETY: prefetching a valid address has no side effects.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                line.as_ptr() as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// dlib's `full_object_detection`: the face rectangle and its landmark points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landmarks {
    /// The face rectangle the landmarks were predicted in (dlib's inclusive rectangle).
    pub rect: Rect,
    /// The landmarks in photo pixel coordinates, in the model's part order (5 or 68 points),
    /// rounded to integers as dlib does.
    pub points: Vec<Point>,
}

/// One cascade, flattened for cache-friendly evaluation.
struct Cascade {
    /// Per feature pixel: the anchor landmark and the normalised offset from it.
    anchors: Vec<u32>,
    deltas: Vec<[f32; 2]>,
    /// Per tree: `splits_per_tree` splits of (idx1, idx2, threshold).
    splits: Vec<(u32, u32, f32)>,
    /// Per tree: `splits_per_tree + 1` leaves of `2 × parts` floats.
    leaves: Vec<f32>,
    trees: usize,
    splits_per_tree: usize,
}

/// A loaded shape predictor (5- or 68-point for faces, any part count in general).
pub struct ShapePredictor {
    initial_shape: Vec<f32>,
    cascades: Vec<Cascade>,
}

impl std::fmt::Debug for ShapePredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ShapePredictor({} parts, {} cascades)",
            self.num_parts(),
            self.cascades.len()
        )
    }
}

impl ShapePredictor {
    /// Loads `shape_predictor_5_face_landmarks.dat` or `…_68_…` from the model directory.
    pub fn load(models_dir: &Path, model: Model) -> Result<Self, ModelError> {
        let (path, bytes) = models::read_model(models_dir, model)?;
        Self::from_bytes(&bytes, &path)
    }

    /// Parses a shape predictor stream; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let mut r = DatReader::new(bytes, path);
        let file = parse_shape_predictor(&mut r)?;
        let dims = file.initial_shape.len();
        let mut cascades = Vec::with_capacity(file.forests.len());
        let anchors = file.anchor_idx.into_iter().zip(file.deltas);
        for (c, (forest, (anchors, deltas))) in file.forests.into_iter().zip(anchors).enumerate() {
            let splits_per_tree = forest.tree_splits.first().map_or(0, |&n| n as usize);
            if forest
                .tree_splits
                .iter()
                .any(|&n| n as usize != splits_per_tree)
            {
                return Err(ModelError::Unexpected {
                    path: path.to_path_buf(),
                    message: format!("cascade {c} mixes trees of different depths"),
                });
            }
            debug_assert_eq!(
                forest.leaf_values.len(),
                forest.len() * (splits_per_tree + 1) * dims
            );
            cascades.push(Cascade {
                anchors,
                deltas,
                splits: forest
                    .splits
                    .iter()
                    .map(|s| (s.idx1, s.idx2, s.thresh))
                    .collect(),
                trees: forest.len(),
                leaves: forest.leaf_values,
                splits_per_tree,
            });
        }
        Ok(ShapePredictor {
            initial_shape: file.initial_shape,
            cascades,
        })
    }

    /// The number of landmarks the model predicts (5 or 68 for dlib's models).
    pub fn num_parts(&self) -> usize {
        self.initial_shape.len() / 2
    }

    /// The landmarks of the face in `rect` (dlib's `shape_predictor::operator()`).
    pub fn predict(&self, img: &RgbImage, rect: Rect) -> Landmarks {
        let parts = self.num_parts();
        let mut shape = self.initial_shape.clone();
        let reference: Vec<DPoint> = (0..parts)
            .map(|i| {
                DPoint::new(
                    self.initial_shape[2 * i] as f64,
                    self.initial_shape[2 * i + 1] as f64,
                )
            })
            .collect();
        // The rect's corners (0,0), (1,0), (1,1) in normalised shape space.
        let (sx, sy) = (
            (rect.right - rect.left) as f64,
            (rect.bottom - rect.top) as f64,
        );
        let (ox, oy) = (rect.left as f64, rect.top as f64);
        let to_image = |x: f32, y: f32| DPoint::new(sx * x as f64 + ox, sy * y as f64 + oy).round();
        let (w, h) = (img.width() as i64, img.height() as i64);
        let data = img.as_raw();
        let mut current: Vec<DPoint> = Vec::with_capacity(parts);
        let mut values: Vec<f32> = Vec::new();
        let mut leaves: Vec<usize> = Vec::new();
        for cascade in &self.cascades {
            current.clear();
            current.extend(
                (0..parts).map(|i| DPoint::new(shape[2 * i] as f64, shape[2 * i + 1] as f64)),
            );
            let t = find_similarity_transform(&reference, &current);
            let a = [
                [t.m[0][0] as f32, t.m[0][1] as f32],
                [t.m[1][0] as f32, t.m[1][1] as f32],
            ];
            values.clear();
            for (&anchor, d) in cascade.anchors.iter().zip(&cascade.deltas) {
                let ax = shape[2 * anchor as usize];
                let ay = shape[2 * anchor as usize + 1];
                let x = a[0][0] * d[0] + a[0][1] * d[1] + ax;
                let y = a[1][0] * d[0] + a[1][1] * d[1] + ay;
                let p = to_image(x, y);
                let v = if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                    let i = (p.y as usize * img.width() + p.x as usize) * 3;
                    ((data[i] as u32 + data[i + 1] as u32 + data[i + 2] as u32) / 3) as f32
                } else {
                    0.0
                };
                values.push(v);
            }
            let n_split = cascade.splits_per_tree;
            let dims = shape.len();
            // The trees only read the feature pixels, not the shape: find every tree's leaf
            // first (prefetching it), then add the leaves in tree order. The leaf loads
            // (megabytes of them, mostly cache misses) then overlap instead of each waiting
            // behind the next tree's walk.
            leaves.clear();
            for tree in 0..cascade.trees {
                let splits = &cascade.splits[tree * n_split..(tree + 1) * n_split];
                let mut node = 0usize;
                while node < n_split {
                    let (i1, i2, th) = splits[node];
                    node = if values[i1 as usize] - values[i2 as usize] > th {
                        2 * node + 1
                    } else {
                        2 * node + 2
                    };
                }
                let leaf = tree * (n_split + 1) + (node - n_split);
                prefetch(&cascade.leaves[leaf * dims..(leaf + 1) * dims]);
                leaves.push(leaf);
            }
            for &leaf in &leaves {
                let delta = &cascade.leaves[leaf * dims..(leaf + 1) * dims];
                for (s, d) in shape.iter_mut().zip(delta) {
                    *s += d;
                }
            }
        }
        let points = (0..parts)
            .map(|i| to_image(shape[2 * i], shape[2 * i + 1]))
            .collect();
        Landmarks { rect, points }
    }
}
