//! Times the face descriptor network on golden face chips: one face at a time and batches of
//! 32, on the current rayon pool (`RAYON_NUM_THREADS` to choose), with the FLOP rate (the
//! direct form's FLOPs per face over the time) as a fraction of this machine's peak, measured
//! first with a loop of independent fused multiply-adds on one core.
//!
//! `cargo run --release -p facelike --example descriptor_time -- RUNS CHIP.png...`

use facelike::DescriptorNet;
use std::time::Instant;

/// Process CPU time in milliseconds (all threads), where the platform offers it.
#[cfg(target_os = "linux")]
fn cpu_ms() -> f64 {
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
    unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.sec as f64 * 1e3 + t.nsec as f64 * 1e-6
}

#[cfg(not(target_os = "linux"))]
fn cpu_ms() -> f64 {
    0.0
}

/// Median and minimum milliseconds of `runs` calls after one warm-up call.
fn time_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
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
    let cpu0 = cpu_ms();
    let (one, one_min) = time_ms(runs * chips.len(), || {
        net.compute(&chips[i % chips.len()]).unwrap();
        i += 1;
    });
    let one_cpu = (cpu_ms() - cpu0) / i as f64;
    let batch: Vec<_> = chips.iter().cycle().take(32).cloned().collect();
    // For profiling the single-face path alone.
    let runs = if std::env::var_os("DESCRIPTOR_TIME_ONE_ONLY").is_some() {
        0
    } else {
        runs
    };
    let (b, _) = time_ms(runs, || {
        net.compute_batch(&batch).unwrap();
    });
    let threads = rayon::current_num_threads();
    let peak = facelike_tensor::peak_gflops_one_core();
    let share = |gflops: f64| {
        peak.map_or(String::new(), |p| {
            format!(
                ", {:.0}% of {threads}x{p:.0}",
                100.0 * gflops / (p * threads as f64)
            )
        })
    };
    let (one_rate, batch_rate) = (gflop / one * 1e3, 32.0 * gflop / b * 1e3);
    println!(
        "{threads} threads: one face {one:.2} ms (min {one_min:.2} ms, {one_rate:.1} GFLOP/s direct-form{}; CPU {one_cpu:.2} ms), batch of 32 {:.1} faces/s ({batch_rate:.1} GFLOP/s{}); {gflop:.3} GFLOP/face",
        share(one_rate),
        32e3 / b,
        share(batch_rate),
    );
    Ok(())
}
