//! The convolution kernels side by side on the layer shapes facelike's networks run:
//! im2col + packed GEMM, the direct AVX-512 kernel (on packed and on bordered planes),
//! batched Winograd F(4x4,3x3), and the one-sample Winograd forms the ResNet runs: on
//! polyphase planes (F(2x2) and F(4x4)) and on small planes (filters in the lanes). The
//! one-sample forms read and write their own layouts (`PaddedPlanes`, `PhasePlanes`), as
//! between two layers of one face. Throughput is in FLOPs (2 per multiply-add), so criterion's
//! "elem/s" reads as FLOP/s.
//!
//! `cargo bench -p facelike-tensor --bench conv` (`FACELIKE_NO_AVX512=1` shows the portable
//! path alone).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use facelike_tensor::{
    BatchTensor, Conv2d, DirectConv, Epilogue, PaddedPlanes, PhasePlanes, PhaseWinograd,
    SmallWinograd, Tensor, Winograd3x3,
};

/// Deterministic values in [-1, 1).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One layer shape: output and input channels, kernel side, stride, padding, input size.
struct Shape {
    name: &'static str,
    oc: usize,
    ic: usize,
    k: usize,
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
}

const SHAPES: &[Shape] = &[
    // The ResNet's stem on a 150x150 chip.
    Shape {
        name: "resnet_stem_32x3_7x7s2_150",
        oc: 32,
        ic: 3,
        k: 7,
        stride: 2,
        pad: 0,
        h: 150,
        w: 150,
    },
    // The ResNet's most expensive kind: 3x3 on the 35x35 level.
    Shape {
        name: "resnet_3x3_32x32_35",
        oc: 32,
        ic: 32,
        k: 3,
        stride: 1,
        pad: 1,
        h: 35,
        w: 35,
    },
    // The 17x17 and 8x8 levels.
    Shape {
        name: "resnet_3x3_64x64_17",
        oc: 64,
        ic: 64,
        k: 3,
        stride: 1,
        pad: 1,
        h: 17,
        w: 17,
    },
    Shape {
        name: "resnet_3x3_128x128_8",
        oc: 128,
        ic: 128,
        k: 3,
        stride: 1,
        pad: 1,
        h: 8,
        w: 8,
    },
    // Deep, small planes.
    Shape {
        name: "resnet_3x3_256x256_3",
        oc: 256,
        ic: 256,
        k: 3,
        stride: 1,
        pad: 1,
        h: 3,
        w: 3,
    },
    // The MMOD detector's 5x5 layers on a 480p pyramid level.
    Shape {
        name: "mmod_5x5_45x45_120x160",
        oc: 45,
        ic: 45,
        k: 5,
        stride: 1,
        pad: 2,
        h: 120,
        w: 160,
    },
];

fn layer(s: &Shape) -> Conv2d {
    Conv2d {
        out_channels: s.oc,
        in_channels: s.ic,
        kh: s.k,
        kw: s.k,
        stride_y: s.stride,
        stride_x: s.stride,
        pad_y: s.pad,
        pad_x: s.pad,
        weights: noise(s.oc * s.ic * s.k * s.k, 1),
        bias: Some(noise(s.oc, 2)),
    }
}

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv");
    group.sample_size(20);
    for s in SHAPES {
        let conv = layer(s);
        let x = Tensor::from_vec(s.ic, s.h, s.w, noise(s.ic * s.h * s.w, 3));
        let xb = BatchTensor::from_vec(s.ic, 1, s.h, s.w, x.data.clone());
        group.throughput(Throughput::Elements(conv.flops(s.h, s.w)));
        group.bench_with_input(BenchmarkId::new("im2col_gemm", s.name), &x, |b, x| {
            b.iter(|| conv.forward_par(x, Epilogue::default()))
        });
        if let Some(direct) = DirectConv::new(&conv, &[(s.h, s.w)]) {
            group.bench_with_input(BenchmarkId::new("direct", s.name), &x, |b, x| {
                b.iter(|| direct.forward_with(x, Epilogue::default(), true))
            });
        }
        if s.k == 3 && s.stride == 1 {
            if let Some(wino) = Winograd3x3::new(&conv) {
                group.bench_with_input(BenchmarkId::new("winograd_batch", s.name), &xb, |b, x| {
                    b.iter(|| wino.forward_batch_par(x, Epilogue::default()))
                });
            }
            let padded = PaddedPlanes::from_batch(&xb);
            if let Some(direct) = DirectConv::new(&conv, &[(s.h, s.w)]) {
                group.bench_with_input(
                    BenchmarkId::new("direct_padded", s.name),
                    &padded,
                    |b, x| b.iter(|| direct.forward_padded(x, Some(x), true, true, &[])),
                );
            }
            for tile in [2, 4] {
                if let Some(pw) = PhaseWinograd::new(&conv, tile) {
                    let phases = PhasePlanes::from_padded(&padded, tile, true);
                    let id = BenchmarkId::new(format!("winograd_phase_f{tile}"), s.name);
                    group.bench_with_input(id, &phases, |b, x| {
                        b.iter(|| pw.forward(x, Some(x), true, true, &[]))
                    });
                }
            }
            if SmallWinograd::fits(s.h, s.w) {
                if let Some(sw) = SmallWinograd::new(&conv) {
                    group.bench_with_input(
                        BenchmarkId::new("winograd_small", s.name),
                        &padded,
                        |b, x| b.iter(|| sw.forward(x, Some(x), true, true, &[])),
                    );
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
