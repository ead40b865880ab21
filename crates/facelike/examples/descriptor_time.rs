//! Times the face descriptor network on golden face chips: one face at a time and batches of
//! 32, on the current rayon pool (`RAYON_NUM_THREADS` to choose), with the FLOP rate.
//!
//! `cargo run --release -p facelike --example descriptor_time -- RUNS CHIP.png...`

use facelike::DescriptorNet;
use std::time::Instant;

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: descriptor_time RUNS CHIP.png...".into());
    }
    let runs: usize = args[0].parse()?;
    let chips = args[1..]
        .iter()
        .map(facelike::load_image)
        .collect::<Result<Vec<_>, _>>()?;
    let net = DescriptorNet::load(&facelike::models::models_dir())?;
    let gflop = DescriptorNet::flops_per_face() as f64 / 1e9;
    let mut i = 0;
    let one = median_ms(runs * chips.len(), || {
        net.compute(&chips[i % chips.len()]).unwrap();
        i += 1;
    });
    let batch: Vec<_> = chips.iter().cycle().take(32).cloned().collect();
    // For profiling the single-face path alone.
    let runs = if std::env::var_os("DESCRIPTOR_TIME_ONE_ONLY").is_some() {
        0
    } else {
        runs
    };
    let b = median_ms(runs, || {
        net.compute_batch(&batch).unwrap();
    });
    println!(
        "{} threads: one face {one:.2} ms ({:.1} GFLOP/s direct-form), batch of 32 {:.1} faces/s ({:.1} GFLOP/s); {gflop:.3} GFLOP/face",
        rayon::current_num_threads(),
        gflop / one * 1e3,
        32e3 / b,
        32.0 * gflop / b * 1e3
    );
    Ok(())
}
