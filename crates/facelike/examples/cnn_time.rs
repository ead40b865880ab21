//! Times `CnnDetector::detect` on images: median and minimum wall time over RUNS after one
//! warm-up, at the given upsampling.
//!
//! `cargo run --release -p facelike --example cnn_time -- RUNS UPSAMPLE IMAGE...`

use facelike::CnnDetector;
use facelike_image::{load_with, LoadOptions};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: cnn_time RUNS UPSAMPLE IMAGE...".into());
    }
    let runs: usize = args[0].parse()?;
    let upsample: u32 = args[1].parse()?;
    let det = CnnDetector::load(&facelike::models::models_dir())?;
    let opts = LoadOptions {
        exif_orientation: false,
        ..LoadOptions::default()
    };
    for path in &args[2..] {
        let img = load_with(path, &opts)?;
        let found = det.detect(&img, upsample).len();
        let mut t: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let s = Instant::now();
                det.detect(&img, upsample);
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        t.sort_by(f64::total_cmp);
        let gflop = det.flops(img.width(), img.height(), upsample) as f64 / 1e9;
        println!(
            "{path}: {}x{}, upsample {upsample}: median {:.1} ms, min {:.1} ms, {found} faces; {gflop:.2} GFLOP, {:.1} GFLOP/s at the median",
            img.width(),
            img.height(),
            t[t.len() / 2],
            t[0],
            gflop / t[t.len() / 2] * 1e3,
        );
    }
    Ok(())
}
