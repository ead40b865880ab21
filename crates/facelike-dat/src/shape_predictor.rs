//! `shape_predictor` streams: Kazemi & Sullivan regression-tree cascades.

use crate::reader::{DatReader, Result};

/// One pixel-difference split of a regression tree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitFeature {
    /// Index of the first feature pixel in the cascade's feature pixel list.
    pub idx1: u32,
    /// Index of the second feature pixel in the cascade's feature pixel list.
    pub idx2: u32,
    /// Go to the left child (`2i+1`) when intensity(`idx1`) − intensity(`idx2`) exceeds this,
    /// else to the right (`2i+2`); intensities are 0-255 grey values as `f32`.
    pub thresh: f32,
}

/// One cascade's forest, flattened: the trees' splits and leaves concatenated in file order.
///
/// Each tree is a complete binary tree stored as an array (node `i` has children `2i+1` and
/// `2i+2`) with one more leaf than splits; each leaf is a shape delta of `2 × parts` floats
/// (x0, y0, x1, y1, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Forest {
    /// The number of splits of each tree, in order.
    pub tree_splits: Vec<u32>,
    /// Every tree's splits, tree after tree.
    pub splits: Vec<SplitFeature>,
    /// Every tree's leaves, tree after tree, `2 × parts` floats each.
    pub leaf_values: Vec<f32>,
}

impl Forest {
    /// The number of trees.
    pub fn len(&self) -> usize {
        self.tree_splits.len()
    }
    /// Whether the forest has no trees.
    pub fn is_empty(&self) -> bool {
        self.tree_splits.is_empty()
    }
}

/// The contents of a shape predictor file.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapePredictorFile {
    /// Mean shape in rect-normalised coordinates, `2 × parts` floats.
    pub initial_shape: Vec<f32>,
    /// One forest per cascade.
    pub forests: Vec<Forest>,
    /// `anchor_idx[cascade][feature]`: the landmark each feature pixel is anchored to.
    pub anchor_idx: Vec<Vec<u32>>,
    /// `deltas[cascade][feature]`: offset of the feature pixel from its anchor, normalised.
    pub deltas: Vec<Vec<[f32; 2]>>,
}

impl ShapePredictorFile {
    /// The number of landmarks (68 for dlib's face landmark model, 5 for the small one).
    pub fn num_parts(&self) -> usize {
        self.initial_shape.len() / 2
    }
}

fn read_u32(r: &mut DatReader<'_>, what: &str) -> Result<u32> {
    let at = r.position();
    let v = r.read_unsigned(what)?;
    u32::try_from(v).map_err(|_| r.invalid(at, format!("a 32-bit {what}"), v.to_string()))
}

/// Parses a shape predictor stream and checks its internal consistency (every index in range),
/// so the predictor can index without bounds surprises.
pub fn parse_shape_predictor(r: &mut DatReader<'_>) -> Result<ShapePredictorFile> {
    r.expect_i64(1, "shape_predictor version")?;
    let at = r.position();
    let init = r.read_matrix_f32("initial shape")?;
    if init.cols != 1 || init.rows == 0 || init.rows % 2 != 0 {
        return Err(r.invalid(
            at,
            "an initial shape column vector of 2 x parts floats",
            format!("{}x{}", init.rows, init.cols),
        ));
    }
    let dims = init.rows;
    let initial_shape = init.data;
    let n_cascades = r.read_len("cascade count", 1)?;
    let mut forests = Vec::with_capacity(n_cascades);
    for _ in 0..n_cascades {
        let n_trees = r.read_len("tree count", 2)?;
        let mut forest = Forest {
            tree_splits: Vec::with_capacity(n_trees),
            splits: Vec::new(),
            leaf_values: Vec::new(),
        };
        for _ in 0..n_trees {
            let n_splits = r.read_len("split count", 8)?;
            let n_splits32 = u32::try_from(n_splits).map_err(|_| {
                r.invalid(r.position(), "a 32-bit split count", n_splits.to_string())
            })?;
            forest.splits.reserve(n_splits);
            for _ in 0..n_splits {
                let idx1 = read_u32(r, "split idx1")?;
                let idx2 = read_u32(r, "split idx2")?;
                let thresh = r.read_f32("split threshold")?;
                forest.splits.push(SplitFeature { idx1, idx2, thresh });
            }
            let leaves_at = r.position();
            let n_leaves = r.read_len("leaf count", 4)?;
            if n_leaves != n_splits + 1 {
                return Err(r.invalid(
                    leaves_at,
                    format!("{} leaves for {} splits", n_splits + 1, n_splits),
                    n_leaves.to_string(),
                ));
            }
            if forest.leaf_values.is_empty() {
                // All trees of a cascade usually have the same size: reserve for them all
                // once (bounded by what the rest of the file could hold, 4 bytes a float).
                let guess = (n_trees * n_leaves * dims).min(r.remaining() / 4);
                forest.leaf_values.reserve(guess);
            }
            for _ in 0..n_leaves {
                let lat = r.position();
                let (rows, cols) = r.read_matrix_f32_into("leaf value", &mut forest.leaf_values)?;
                if rows * cols != dims {
                    return Err(r.invalid(
                        lat,
                        format!("a leaf of {dims} floats"),
                        format!("{rows}x{cols}"),
                    ));
                }
            }
            forest.tree_splits.push(n_splits32);
        }
        forests.push(forest);
    }
    let at = r.position();
    let n_anchor = r.read_len("anchor cascade count", 1)?;
    if n_anchor != n_cascades {
        return Err(r.invalid(
            at,
            format!("{n_cascades} anchor lists"),
            n_anchor.to_string(),
        ));
    }
    let mut anchor_idx = Vec::with_capacity(n_anchor);
    for _ in 0..n_anchor {
        let n = r.read_len("anchor count", 2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let aat = r.position();
            let a = read_u32(r, "anchor index")?;
            if a as usize >= dims / 2 {
                return Err(r.invalid(aat, format!("an anchor below {}", dims / 2), a.to_string()));
            }
            v.push(a);
        }
        anchor_idx.push(v);
    }
    let at = r.position();
    let n_delta = r.read_len("delta cascade count", 1)?;
    if n_delta != n_cascades {
        return Err(r.invalid(at, format!("{n_cascades} delta lists"), n_delta.to_string()));
    }
    let mut deltas = Vec::with_capacity(n_delta);
    for anchors in &anchor_idx {
        let dat = r.position();
        let n = r.read_len("delta count", 8)?;
        if n != anchors.len() {
            return Err(r.invalid(dat, format!("{} deltas", anchors.len()), n.to_string()));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push([r.read_f32("delta x")?, r.read_f32("delta y")?]);
        }
        deltas.push(v);
    }
    // Every split must name feature pixels that exist.
    for (c, forest) in forests.iter().enumerate() {
        let n_feat = anchor_idx[c].len() as u32;
        {
            if let Some(s) = forest
                .splits
                .iter()
                .find(|s| s.idx1 >= n_feat || s.idx2 >= n_feat)
            {
                return Err(r.invalid(
                    r.position(),
                    format!("split indices below the {n_feat} feature pixels of cascade {c}"),
                    format!("{} / {}", s.idx1, s.idx2),
                ));
            }
        }
    }
    r.expect_end()?;
    Ok(ShapePredictorFile {
        initial_shape,
        forests,
        anchor_idx,
        deltas,
    })
}
