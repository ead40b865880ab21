//! Times 5-point landmarks and face-chip extraction on the first HOG face of each image
//! (median of RUNS calls after one warm-up), as `facelike bench` does.
//!
//! `cargo run --release -p facelike --example chip_time -- RUNS IMAGE...`

use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
use facelike::{HogDetector, Model, ShapePredictor};
use facelike_image::{load_with, LoadOptions};
use std::time::Instant;

fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: chip_time RUNS IMAGE...".into());
    }
    let runs: usize = args[0].parse()?;
    let dir = facelike::models::models_dir();
    let hog = HogDetector::load(&dir)?;
    let sp5 = ShapePredictor::load(&dir, Model::ShapePredictor5)?;
    let opts = LoadOptions {
        exif_orientation: false,
        ..LoadOptions::default()
    };
    for path in &args[1..] {
        let img = load_with(path, &opts)?;
        let Some(face) = hog.detect(&img, 1, 0.0).first().map(|d| d.rect) else {
            println!("{path}: no face");
            continue;
        };
        let lm = median_us(runs, || {
            sp5.predict(&img, face);
        });
        let shape = sp5.predict(&img, face);
        let details = face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING)?;
        let chip = median_us(runs, || {
            extract_chip(&img, &details);
        });
        println!("{path}: landmarks {lm:.1} us, chip {chip:.1} us");
    }
    Ok(())
}
