//! PNG pictures: ROC curves and training-loss curves.
//!
//! Text uses the font embedded by `facelike-plot`, so no system font or fontconfig is needed.

use crate::error::{EvalError, Result};
use crate::verify::Roc;
use facelike_plot::ensure_font;
use plotters::prelude::*;
use std::path::Path;

fn plot_err(path: &Path, e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot {
        path: path.to_owned(),
        problem: e.to_string(),
    }
}

/// Picture size in pixels.
pub const SIZE: (u32, u32) = (900, 680);

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

/// Draws ROC curves (TAR against FAR on a log axis) into a PNG at `path`. Each curve has a
/// legend label; FAR 0 is drawn at the left edge, which is 1/(2N) for the largest N.
pub fn plot_roc(path: &Path, title: &str, curves: &[(&str, &Roc)]) -> Result<()> {
    ensure_font();
    if curves.is_empty() {
        return Err(plot_err(path, "no curves to draw"));
    }
    let max_neg = curves
        .iter()
        .map(|c| c.1.mismatched)
        .max()
        .unwrap_or(1)
        .max(1);
    let x_min = 10f64.powf((0.5 / max_neg as f64).log10().floor());
    // Lowest TAR at the left edge, rounded down to a multiple of 0.05.
    let y_low = curves
        .iter()
        .map(|(_, r)| r.tar_at_far(x_min).0)
        .fold(1.0f64, f64::min);
    let y_min = ((y_low - 0.02) / 0.05).floor().max(0.0) * 0.05;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d((x_min..1.0f64).log_scale(), y_min..1.0f64)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("false accept rate (mismatched pairs accepted)")
        .y_desc("true accept rate (matched pairs accepted)")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, (label, roc)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // The step curve: a horizontal then a vertical move between operating points.
        let mut pts = Vec::with_capacity(2 * roc.points.len());
        let mut prev: Option<(f64, f64)> = None;
        for p in &roc.points {
            let x = p.far.max(x_min);
            if let Some((_, py)) = prev {
                pts.push((x, py));
            }
            pts.push((x, p.tar));
            prev = Some((x, p.tar));
        }
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(label.to_string())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// Draws loss curves (one per named series of `(epoch, loss)`) into a PNG at `path`.
pub fn plot_loss(path: &Path, title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    ensure_font();
    let all = series.iter().flat_map(|(_, s)| s.iter());
    let (mut x_max, mut y_max) = (1.0f64, 0.0f64);
    for &(x, y) in all {
        x_max = x_max.max(x);
        if y.is_finite() {
            y_max = y_max.max(y);
        }
    }
    if y_max <= 0.0 {
        y_max = 1.0;
    }
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max * 1.05)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("triplet loss")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.4}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, (label, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(label.to_string())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}
