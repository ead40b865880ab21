//! Face descriptor speed: one chip at a time, and batches of 16 on 1 and 2 threads.
//!
//! `cargo bench -p facelike --bench descriptor` (needs the models and the shared golden chips,
//! like the tests). Compare with `python3 bench/descriptor_compare.py`, which times dlib on
//! the same chips. The FLOP count per face is printed first, so that GFLOP/s = FLOPs / time.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use facelike::{DescriptorNet, RgbImage};
use std::hint::black_box;

fn chips(count: usize) -> Vec<RgbImage> {
    facelike_testdata::all_images()
        .iter()
        .flat_map(|img| img.faces.iter().map(|f| f.chip_path()))
        .take(count)
        .map(|p| facelike::load_image(&p).expect("golden chip"))
        .collect()
}

fn descriptor(c: &mut Criterion) {
    let net = DescriptorNet::load(&facelike_testdata::models_dir()).expect("ResNet model");
    let chips = chips(16);
    eprintln!(
        "ResNet: {} FLOPs per face (2 per multiply-add, convolutions + fc, direct form)",
        DescriptorNet::flops_per_face()
    );

    let mut group = c.benchmark_group("descriptor");
    group.sample_size(30);
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            (threads, pool)
        })
        .collect();
    group.throughput(Throughput::Elements(1));
    for (threads, pool) in &pools {
        let mut next = 0;
        group.bench_function(format!("one_face_{threads}_thread"), |b| {
            b.iter(|| {
                next = (next + 1) % chips.len();
                pool.install(|| black_box(net.compute(&chips[next]).expect("150x150")))
            })
        });
    }
    group.throughput(Throughput::Elements(chips.len() as u64));
    for (threads, pool) in &pools {
        group.bench_function(format!("batch_16_{threads}_thread"), |b| {
            b.iter(|| pool.install(|| black_box(net.compute_batch(&chips).expect("150x150"))))
        });
    }
    group.finish();
}

criterion_group!(benches, descriptor);
criterion_main!(benches);
