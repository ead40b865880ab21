//! Times loading each model file (read + parse + any weight preparation), median of RUNS.
//!
//! `cargo run --release -p facelike --example load_time -- [RUNS [MODEL-NAME-PART]]`

use facelike::{CnnDetector, DescriptorNet, HogDetector, Model, ShapePredictor};
use std::time::Instant;

/// Median milliseconds of `runs` loads; each model is dropped after its clock stops.
fn median_ms<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            let model = f();
            let ms = s.elapsed().as_secs_f64() * 1e3;
            drop(model);
            ms
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(5), |s| s.parse())?;
    let dir = facelike::models::models_dir();
    let mut total = 0.0;
    let only = std::env::args().nth(2);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let mut row = |name: &str, ms: f64| {
        total += ms;
        println!("{name:<28} {ms:8.1} ms");
    };
    if wanted("resnet") {
        row(
            "resnet",
            median_ms(runs, || DescriptorNet::load(&dir).unwrap()),
        );
    }
    if wanted("shape predictor 5") {
        row(
            "shape predictor 5",
            median_ms(runs, || {
                ShapePredictor::load(&dir, Model::ShapePredictor5).unwrap()
            }),
        );
    }
    if wanted("shape predictor 68") {
        row(
            "shape predictor 68",
            median_ms(runs, || {
                ShapePredictor::load(&dir, Model::ShapePredictor68).unwrap()
            }),
        );
    }
    if wanted("hog") {
        row("hog", median_ms(runs, || HogDetector::load(&dir).unwrap()));
    }
    if wanted("mmod") {
        row("mmod", median_ms(runs, || CnnDetector::load(&dir).unwrap()));
    }
    println!("{:<28} {total:8.1} ms", "sum of medians");
    Ok(())
}
