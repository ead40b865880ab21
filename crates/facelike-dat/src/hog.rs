//! `object_detector<scan_fhog_pyramid<pyramid_down<6>>>` streams (dlib's HOG face detector,
//! as written by `get_frontal_face_detector().save(path)`).

use crate::reader::{DatReader, Result};

/// Settings of the FHOG scanner.
#[derive(Clone, Debug, PartialEq)]
pub struct FhogScanner {
    /// Side of one HOG cell in pixels (1 to 64; 8 for dlib's face detector).
    pub cell_size: usize,
    /// Cells of padding added on each side of the detection window to size the filter.
    pub padding: usize,
    /// Detection window width in pixels.
    pub window_width: usize,
    /// Detection window height in pixels.
    pub window_height: usize,
    /// Most image pyramid levels scanned, the original image included.
    pub max_pyramid_levels: usize,
    /// Pyramid levels narrower than this many pixels are not scanned.
    pub min_pyramid_layer_width: usize,
    /// Pyramid levels shorter than this many pixels are not scanned.
    pub min_pyramid_layer_height: usize,
    /// Training-time regulariser (not used at inference).
    pub nuclear_norm_regularization_strength: f64,
    /// Length of the feature vector of one window: 31 FHOG planes × filter rows × filter
    /// columns, in cells. Each filter's `w` has one more value.
    pub num_dimensions: usize,
}

/// One linear filter over FHOG features plus its threshold `b` (the last element of `w`).
#[derive(Clone, Debug, PartialEq)]
pub struct HogFilter {
    /// `num_dimensions` weights, then the threshold `b`.
    pub w: Vec<f64>,
}

/// The contents of a HOG detector file.
#[derive(Clone, Debug, PartialEq)]
pub struct HogDetectorFile {
    /// The scanner settings shared by every filter.
    pub scanner: FhogScanner,
    /// `test_box_overlap` thresholds used for non-max suppression: (iou, percent covered).
    pub nms: (f64, f64),
    /// One or more filters (dlib's frontal detector has five, one per head pose); checked
    /// non-empty and `num_dimensions + 1` long.
    pub filters: Vec<HogFilter>,
}

fn small(r: &mut DatReader<'_>, what: &str, max: u64) -> Result<usize> {
    let at = r.position();
    let v = r.read_unsigned(what)?;
    if v > max {
        return Err(r.invalid(at, format!("{what} of at most {max}"), v.to_string()));
    }
    Ok(v as usize)
}

/// Parses a HOG detector stream (a file saved with `object_detector::save`), checking that
/// it holds at least one filter and that every filter matches the scanner's dimensions.
pub fn parse_hog_detector(r: &mut DatReader<'_>) -> Result<HogDetectorFile> {
    r.expect_i64(2, "object_detector version")?;
    r.expect_i64(1, "scan_fhog_pyramid version")?;
    let at = r.position();
    let max_size = r.read_unsigned("feature array max_size")?;
    let size = r.read_unsigned("feature array size")?;
    if max_size != 0 || size != 0 {
        return Err(r.invalid(
            at,
            "an empty cached feature array",
            format!("{size} of {max_size}"),
        ));
    }
    let at = r.position();
    let cell_size = r.read_i32("cell size")?;
    if !(1..=64).contains(&cell_size) {
        return Err(r.invalid(at, "a cell size of 1 to 64", cell_size.to_string()));
    }
    let padding = small(r, "padding", 1 << 16)?;
    let window_width = small(r, "window width", 1 << 16)?;
    let window_height = small(r, "window height", 1 << 16)?;
    let max_pyramid_levels = small(r, "max pyramid levels", 1 << 20)?;
    let min_pyramid_layer_width = small(r, "min pyramid layer width", 1 << 20)?;
    let min_pyramid_layer_height = small(r, "min pyramid layer height", 1 << 20)?;
    let nuclear_norm_regularization_strength = r.read_f64("nuclear norm strength")?;
    let dims_at = r.position();
    let num_dimensions = r.read_signed_len("num dimensions", 0)?;
    let nms = (r.read_f64("nms iou")?, r.read_f64("nms percent covered")?);
    let n = r.read_len("detector count", 4)?;
    let mut filters = Vec::with_capacity(n);
    for _ in 0..n {
        let wat = r.position();
        let m = r.read_matrix_f64("detector weights")?;
        if m.cols != 1 || m.rows != num_dimensions + 1 {
            return Err(r.invalid(
                wat,
                format!("a weight vector of {} values", num_dimensions + 1),
                format!("{}x{}", m.rows, m.cols),
            ));
        }
        filters.push(HogFilter { w: m.data });
    }
    if n == 0 {
        return Err(r.invalid(dims_at, "at least one detector", "none"));
    }
    r.expect_end()?;
    Ok(HogDetectorFile {
        scanner: FhogScanner {
            cell_size: cell_size as usize,
            padding,
            window_width,
            window_height,
            max_pyramid_levels,
            min_pyramid_layer_width,
            min_pyramid_layer_height,
            nuclear_norm_regularization_strength,
            num_dimensions,
        },
        nms,
        filters,
    })
}
