//! Times `HogDetector::detect` the way `bench/hog_compare.py` times dlib, so both can be
//! printed side by side: median and minimum wall time and the median process CPU time
//! (all threads), over several runs after one warm-up.
//!
//! `cargo run --release -p facelike --example hog_time -- RUNS UPSAMPLE IMAGE...`
//! (`RAYON_NUM_THREADS=1` for one thread, as dlib uses.)

use facelike::hog::HogDetector;
use facelike_image::{load_with, LoadOptions};
use std::time::Instant;

/// Process CPU time in milliseconds (all threads), where the platform offers it.
#[cfg(target_os = "linux")]
fn cpu_ms() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, t: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    (rc == 0).then_some(t.sec as f64 * 1e3 + t.nsec as f64 * 1e-6)
}

#[cfg(not(target_os = "linux"))]
fn cpu_ms() -> Option<f64> {
    None
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: hog_time RUNS UPSAMPLE IMAGE...".into());
    }
    let runs: usize = args[0].parse()?;
    let upsample: u32 = args[1].parse()?;
    let det = HogDetector::load(&facelike::models::models_dir())?;
    let opts = LoadOptions {
        exif_orientation: false,
        ..LoadOptions::default()
    };
    println!(
        "facelike, {} threads, {runs} runs each",
        rayon::current_num_threads()
    );
    for path in &args[2..] {
        let img = load_with(path, &opts)?;
        let dets = det.detect(&img, upsample, 0.0);
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            let (t, c) = (Instant::now(), cpu_ms());
            std::hint::black_box(det.detect(&img, upsample, 0.0));
            wall.push(t.elapsed().as_secs_f64() * 1e3);
            if let (Some(a), Some(b)) = (c, cpu_ms()) {
                cpu.push(b - a);
            }
        }
        let min = wall.iter().copied().fold(f64::INFINITY, f64::min);
        let cpu = if cpu.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", median(&mut cpu))
        };
        let dets: Vec<_> = dets
            .iter()
            .map(|d| (d.rect.to_array(), (d.score * 1e5).round() / 1e5, d.detector))
            .collect();
        println!(
            "{:<40} {upsample:>2} {:>10} {:>10.1} {min:>8.1} {cpu:>8}  {dets:?}",
            path.rsplit('/').next().unwrap_or(path),
            format!("{}x{}", img.width(), img.height()),
            median(&mut wall),
        );
    }
    Ok(())
}
