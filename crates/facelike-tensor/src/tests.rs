use super::*;

/// Deterministic values in [-1, 1) (a 64-bit LCG), so the tests need no rand crate.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    oc: usize,
    ic: usize,
    kh: usize,
    kw: usize,
    sy: usize,
    sx: usize,
    py: usize,
    px: usize,
    bias: bool,
    seed: u64,
) -> Conv2d {
    Conv2d {
        out_channels: oc,
        in_channels: ic,
        kh,
        kw,
        stride_y: sy,
        stride_x: sx,
        pad_y: py,
        pad_x: px,
        weights: noise(oc * ic * kh * kw, seed),
        bias: bias.then(|| noise(oc, seed + 1)),
    }
}

pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn conv_matches_hand_computed_values() {
    // 1 input channel 3x3, one 2x2 filter, stride 1, no pad.
    let x = Tensor::from_vec(1, 3, 3, (1..=9).map(|v| v as f32).collect());
    let conv = Conv2d {
        out_channels: 1,
        in_channels: 1,
        kh: 2,
        kw: 2,
        stride_y: 1,
        stride_x: 1,
        pad_y: 0,
        pad_x: 0,
        weights: vec![1.0, 0.0, 0.0, -1.0],
        bias: Some(vec![0.5]),
    };
    let expected = vec![
        1.0 - 5.0 + 0.5,
        2.0 - 6.0 + 0.5,
        4.0 - 8.0 + 0.5,
        5.0 - 9.0 + 0.5,
    ];
    let y = conv.forward_reference(&x);
    assert_eq!((y.h, y.w), (2, 2));
    assert_eq!(y.data, expected);
    assert_eq!(conv.forward(&x).data, expected);
}

#[test]
fn fast_conv_matches_reference_on_many_shapes() {
    // (oc, ic, kh, kw, sy, sx, py, px, h, w): odd/even kernels, strides 1–3, pads larger
    // and smaller than the kernel, inputs smaller than the kernel, the ResNet's and MMOD's layers.
    let cases = [
        (32, 3, 7, 7, 2, 2, 0, 0, 150, 150),
        (16, 3, 5, 5, 2, 2, 0, 0, 61, 47),
        (8, 16, 5, 5, 1, 1, 2, 2, 33, 29),
        (64, 32, 3, 3, 2, 2, 0, 0, 35, 35),
        (24, 24, 3, 3, 1, 1, 1, 1, 17, 17),
        (20, 12, 3, 3, 1, 1, 1, 1, 1, 1),
        (20, 12, 3, 3, 2, 2, 0, 0, 4, 4),
        (5, 4, 1, 1, 1, 1, 0, 0, 9, 7),
        (5, 4, 1, 1, 1, 1, 1, 1, 9, 7),
        (7, 3, 2, 4, 3, 2, 1, 3, 11, 13),
        (3, 2, 9, 9, 1, 1, 4, 4, 5, 6),
        (4, 2, 3, 3, 1, 1, 0, 0, 2, 2),
    ];
    for (i, &(oc, ic, kh, kw, sy, sx, py, px, h, w)) in cases.iter().enumerate() {
        let layer = conv(oc, ic, kh, kw, sy, sx, py, px, i % 2 == 0, i as u64);
        let x = Tensor::from_vec(ic, h, w, noise(ic * h * w, 100 + i as u64));
        let want = layer.forward_reference(&x);
        let got = layer.forward(&x);
        assert_eq!((got.c, got.h, got.w), (want.c, want.h, want.w), "case {i}");
        let tol = 1e-5 * (ic * kh * kw) as f32;
        let err = max_abs_diff(&got.data, &want.data);
        assert!(err <= tol, "case {i}: max diff {err} > {tol}");
        let par = layer.forward_par(&x, Epilogue::default());
        assert_eq!(par.data, got.data, "case {i}: parallel differs");
    }
}

#[test]
fn batched_conv_with_residual_and_relu_matches_per_sample_reference() {
    let layer = conv(12, 6, 3, 3, 1, 1, 1, 1, true, 7);
    let samples: Vec<Tensor> = (0..3)
        .map(|i| Tensor::from_vec(6, 9, 8, noise(6 * 9 * 8, 20 + i)))
        .collect();
    let batch = BatchTensor::stack(&samples);
    // The residual covers 5 of the 12 output channels: dlib's channel zero-padding.
    let residual = noise(5 * 3 * 9 * 8, 99);
    let out = layer.forward_batch(
        &batch,
        Epilogue {
            residual: Some(&residual),
            relu: true,
        },
    );
    assert_eq!((out.c, out.n, out.h, out.w), (12, 3, 9, 8));
    let res = BatchTensor::from_vec(5, 3, 9, 8, residual.clone());
    for (i, s) in samples.iter().enumerate() {
        let mut want = add_zero_padded(&layer.forward_reference(s), &res.sample(i));
        relu_inplace(&mut want);
        let err = max_abs_diff(&out.sample(i).data, &want.data);
        assert!(err < 1e-4, "sample {i}: {err}");
    }
}

#[test]
fn folding_an_affine_layer_matches_applying_it() {
    let mut layer = conv(6, 4, 3, 3, 1, 1, 1, 1, true, 3);
    let x = Tensor::from_vec(4, 10, 10, noise(400, 4));
    let gamma = noise(6, 5);
    let beta = noise(6, 6);
    let mut want = layer.forward_reference(&x);
    affine_inplace(&mut want, &gamma, &beta, true);
    layer.fold_affine(&gamma, &beta);
    let got = layer.forward_with(&x, Epilogue::RELU);
    assert!(max_abs_diff(&got.data, &want.data) < 1e-5);
}

#[test]
fn zero_padded_add_matches_dlib_semantics() {
    let a = Tensor::from_vec(1, 2, 2, vec![1.0, 2.0, 3.0, 4.0]);
    let b = Tensor::from_vec(2, 1, 1, vec![10.0, 20.0]);
    let s = add_zero_padded(&a, &b);
    assert_eq!((s.c, s.h, s.w), (2, 2, 2));
    assert_eq!(s.data, vec![11.0, 2.0, 3.0, 4.0, 20.0, 0.0, 0.0, 0.0]);
    let sb = add_zero_padded_batch(&BatchTensor::from_tensor(a), &BatchTensor::from_tensor(b));
    assert_eq!(sb.into_tensor(), s);
}

#[test]
fn pooling() {
    let x = Tensor::from_vec(1, 3, 3, (1..=9).map(|v| v as f32).collect());
    assert_eq!(pool(&x, Pool::Max, 3, 3, 2, 2, 0, 0).data, vec![9.0]);
    assert_eq!(pool(&x, Pool::Avg, 2, 2, 2, 2, 0, 0).data, vec![3.0]);
    // Padded windows are clipped: the corner window covers 1,2,4,5.
    assert_eq!(
        pool(&x, Pool::Avg, 3, 3, 2, 2, 1, 1).data,
        vec![3.0, 4.0, 6.0, 7.0]
    );
    assert_eq!(global_avg_pool(&x), vec![5.0]);
    let b = BatchTensor::stack(&[x.clone(), x]);
    assert_eq!(
        pool_batch(&b, Pool::Max, 2, 2, 1, 1, 0, 0).data,
        vec![5.0, 6.0, 8.0, 9.0, 5.0, 6.0, 8.0, 9.0]
    );
    assert_eq!(global_avg_pool_batch(&b), vec![5.0, 5.0]);
    // Spread over threads in pieces of planes (a last piece shorter than the rest).
    let planes: Vec<Tensor> = (0..11)
        .map(|i| Tensor::from_vec(1, 13, 12, noise(13 * 12, 300 + i)))
        .collect();
    let b = BatchTensor::stack(&planes);
    for kind in [Pool::Max, Pool::Avg] {
        let serial = pool_batch(&b, kind, 3, 3, 2, 2, 1, 0);
        let par = pool_batch_with(&b, kind, (3, 3), (2, 2), (1, 0), true);
        assert_eq!(
            (par.c, par.n, par.h, par.w),
            (serial.c, serial.n, serial.h, serial.w)
        );
        assert_eq!(par.data, serial.data);
    }
}

#[test]
fn winograd_matches_reference() {
    // Output sizes that are and are not multiples of the 4x4 tile; pads 0, 1, 2; a residual
    // covering some channels; batches.
    let cases = [
        (32, 32, 1, 35, 35, 2),
        (64, 64, 1, 17, 17, 3),
        (16, 8, 0, 9, 13, 2),
        (8, 8, 2, 5, 4, 1),
        (8, 4, 1, 1, 1, 2),
        (24, 12, 1, 8, 8, 3),
        // Batches of 8 and more take the sample-lane layout (plus tile rows for the rest).
        (16, 16, 1, 17, 17, 8),
        (12, 8, 1, 4, 4, 9),
        (8, 8, 0, 10, 7, 16),
        (256, 256, 1, 4, 4, 8),
        (32, 32, 1, 35, 35, 1),
    ];
    for (i, &(oc, ic, pad, h, w, n)) in cases.iter().enumerate() {
        let layer = conv(oc, ic, 3, 3, 1, 1, pad, pad, true, 40 + i as u64);
        let wino = Winograd3x3::new(&layer).expect("3x3 stride 1");
        let samples: Vec<Tensor> = (0..n)
            .map(|b| Tensor::from_vec(ic, h, w, noise(ic * h * w, 60 + (i * 10 + b) as u64)))
            .collect();
        let batch = BatchTensor::stack(&samples);
        let (oh, ow) = layer.out_shape(h, w);
        let residual = noise((oc / 2) * n * oh * ow, 7);
        let ep = Epilogue {
            residual: Some(&residual),
            relu: i % 2 == 0,
        };
        let got = wino.forward_batch(&batch, ep);
        let want = layer.forward_batch(&batch, ep);
        // Spreading the GEMMs over threads changes no sum's order.
        assert_eq!(
            wino.forward_batch_par(&batch, ep).data,
            got.data,
            "case {i}"
        );
        assert_eq!(
            layer.forward_batch_par(&batch, ep).data,
            want.data,
            "case {i}"
        );
        assert_eq!(
            (got.c, got.n, got.h, got.w),
            (want.c, want.n, want.h, want.w)
        );
        let err = max_abs_diff(&got.data, &want.data);
        // Inputs and weights are in [-1, 1): sums of ic*9 terms of that size.
        assert!(err < 2e-5 * (ic * 9) as f32, "case {i}: {err}");
        if i == 0 {
            // The direct GEMM path itself against the naive loops.
            let naive = layer.forward_reference(&samples[0]);
            let mut naive = add_zero_padded(
                &naive,
                &BatchTensor::from_vec(oc / 2, n, oh, ow, residual.clone()).sample(0),
            );
            relu_inplace(&mut naive);
            assert!(max_abs_diff(&got.sample(0).data, &naive.data) < 2e-5 * (ic * 9) as f32);
        }
    }
    assert!(Winograd3x3::new(&conv(4, 4, 3, 3, 2, 2, 0, 0, true, 1)).is_none());
}

#[test]
fn padding_wider_than_the_input_matches_the_reference() {
    // A 9x9 "same" convolution (pad 4) over inputs narrower or shorter than the padding.
    for (h, w) in [(1, 1), (3, 2), (2, 7), (5, 3)] {
        let conv = Conv2d {
            out_channels: 2,
            in_channels: 3,
            kh: 9,
            kw: 9,
            stride_y: 1,
            stride_x: 1,
            pad_y: 4,
            pad_x: 4,
            weights: (0..2 * 3 * 81)
                .map(|i| ((i * 37 % 17) as f32 - 8.0) / 10.0)
                .collect(),
            bias: Some(vec![0.5, -0.25]),
        };
        let x = Tensor::from_vec(
            3,
            h,
            w,
            (0..3 * h * w).map(|i| (i as f32 * 0.3).sin()).collect(),
        );
        let (a, b) = (conv.forward(&x), conv.forward_reference(&x));
        assert_eq!((a.h, a.w), (h, w));
        for (p, q) in a.data.iter().zip(&b.data) {
            assert!((p - q).abs() < 1e-5, "{h}x{w}: {p} vs {q}");
        }
    }
}

#[test]
fn direct_conv_matches_reference() {
    if !DirectConv::supported() {
        eprintln!("no AVX-512F: direct convolution not tested");
        return;
    }
    // The MMOD detector's layer kinds, and odd sizes, strides and channel counts.
    let cases = [
        // oc, ic, k, stride, pad, h, w
        (16, 3, 5, 2, 0, 37, 50),
        (32, 16, 5, 2, 0, 21, 30),
        (45, 32, 5, 1, 2, 13, 17),
        (45, 45, 5, 1, 2, 9, 40),
        (1, 45, 9, 1, 4, 12, 11),
        (7, 4, 3, 1, 1, 5, 6),
        (10, 3, 3, 3, 1, 10, 11),
        (9, 2, 5, 2, 3, 3, 2),
        (16, 3, 5, 2, 0, 5, 5),
        // The ResNet's kinds: small planes with many channels.
        (32, 3, 7, 2, 0, 30, 30),
        (64, 32, 3, 2, 0, 17, 17),
        (32, 64, 3, 1, 1, 8, 8),
        (256, 128, 3, 1, 1, 3, 3),
        (48, 40, 3, 1, 1, 1, 1),
        (40, 24, 3, 1, 1, 4, 4),
        (20, 6, 3, 2, 0, 9, 11),
        // Small planes read from padded or unpadded planes, partial blocks of positions and
        // of channels.
        (24, 10, 3, 2, 1, 9, 9),
        (33, 7, 3, 1, 1, 7, 7),
        (17, 5, 3, 2, 0, 5, 5),
        (64, 48, 3, 2, 0, 8, 8),
        (70, 9, 3, 1, 1, 8, 8),
        (40, 12, 3, 2, 0, 4, 4),
        (16, 3, 3, 1, 1, 5, 3),
    ];
    for (i, &(oc, ic, k, s, p, h, w)) in cases.iter().enumerate() {
        for relu in [false, true] {
            let layer = conv(oc, ic, k, k, s, s, p, p, true, 100 + i as u64);
            let x = Tensor::from_vec(ic, h, w, noise(ic * h * w, 7 + i as u64));
            let mut want = layer.forward_reference(&x);
            if relu {
                relu_inplace(&mut want);
            }
            let direct = DirectConv::new(&layer, &[(h, w)]).unwrap();
            let got = direct.forward_par(&x, relu);
            assert_eq!((got.c, got.h, got.w), (want.c, want.h, want.w), "case {i}");
            let err = max_abs_diff(&got.data, &want.data);
            assert!(err < 1e-4, "case {i} relu {relu}: max error {err}");
            // With a residual over a channel prefix, on one thread and on all.
            let keep = (oc / 2).max(1);
            let residual = noise(keep * got.h * got.w, 50 + i as u64);
            let mut want = layer.forward_reference(&x);
            for (v, r) in want.data.iter_mut().zip(&residual) {
                *v += *r;
            }
            if relu {
                relu_inplace(&mut want);
            }
            for parallel in [false, true] {
                let epilogue = Epilogue {
                    residual: Some(&residual),
                    relu,
                };
                let got = direct.forward_with(&x, epilogue, parallel);
                let err = max_abs_diff(&got.data, &want.data);
                assert!(err < 1e-4, "case {i} residual relu {relu}: max error {err}");
            }
        }
    }
}

#[test]
fn direct_chain_equals_layer_by_layer() {
    if !DirectConv::supported() {
        return;
    }
    // The MMOD detector's shapes, scaled down: strided 5×5s, same-padded 5×5s, a 9×9 scorer.
    let shapes = [
        (8, 3, 5, 2, 0, true),
        (12, 8, 5, 2, 0, true),
        (9, 12, 5, 1, 2, true),
        (9, 9, 5, 1, 2, false),
        (1, 9, 9, 1, 4, false),
    ];
    let layers: Vec<(DirectConv, bool)> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(oc, ic, k, s, p, relu))| {
            let conv = conv(oc, ic, k, k, s, s, p, p, true, 500 + i as u64);
            (DirectConv::new(&conv, &[(512, 512)]).unwrap(), relu)
        })
        .collect();
    let refs: Vec<(&DirectConv, bool)> = layers.iter().map(|(l, r)| (l, *r)).collect();
    for (h, w) in [(97, 131), (40, 41), (20, 20)] {
        let x = Tensor::from_vec(3, h, w, noise(3 * h * w, h as u64));
        let mut want = x.clone();
        for (l, relu) in &refs {
            want = l.forward_par(&want, *relu);
        }
        let got = DirectConv::forward_chain_par(&refs, &x);
        assert_eq!((got.c, got.h, got.w), (want.c, want.h, want.w), "{h}x{w}");
        assert_eq!(got.data, want.data, "{h}x{w}");
    }
}

#[test]
fn direct_conv_with_max_pool_equals_the_two_in_a_row() {
    if !DirectConv::supported() {
        eprintln!("no AVX-512F: direct convolution not tested");
        return;
    }
    // oc, ic, k, stride, pad, h, w, pool k, pool stride: the ResNet's stem (on a smaller
    // chip and on a whole one), odd sizes (pooled rows of 33: three runs of 16 lanes, the
    // last of one), and a small plane.
    let cases = [
        (32, 3, 7, 2, 0, 60, 60, 3, 2),
        (8, 3, 7, 2, 0, 150, 150, 3, 2),
        (8, 2, 3, 1, 1, 41, 67, 3, 2),
        (13, 5, 3, 1, 1, 20, 17, 2, 2),
        (16, 4, 3, 1, 1, 6, 6, 3, 2),
    ];
    for (i, &(oc, ic, k, s, p, h, w, pk, ps)) in cases.iter().enumerate() {
        let layer = conv(oc, ic, k, k, s, s, p, p, true, 400 + i as u64);
        let x = BatchTensor::from_tensor(Tensor::from_vec(
            ic,
            h,
            w,
            noise(ic * h * w, 410 + i as u64),
        ));
        let direct = DirectConv::new(&layer, &[(h, w)]).unwrap();
        for relu in [false, true] {
            let epilogue = Epilogue {
                residual: None,
                relu,
            };
            for parallel in [false, true] {
                let y = direct.forward_batch_with(&x, epilogue, parallel);
                let want = pool_batch(&y, Pool::Max, pk, pk, ps, ps, 0, 0);
                let got = direct.forward_max_pool_batch(&x, relu, pk, ps, parallel);
                assert_eq!(
                    (got.c, got.n, got.h, got.w),
                    (want.c, want.n, want.h, want.w)
                );
                assert_eq!(
                    got.data, want.data,
                    "case {i} relu {relu} parallel {parallel}"
                );
                let padded = direct.forward_max_pool_padded(&x, relu, pk, ps, parallel);
                assert_eq!(padded.to_batch().data, want.data, "case {i}: bordered");
                let again = PaddedPlanes::from_batch(&want);
                let bordered = (want.h + 2) * (want.w + 2);
                for c in 0..oc {
                    assert_eq!(
                        padded.data[c * padded.chan..][..bordered],
                        again.data[c * again.chan..][..bordered],
                        "case {i}: channel {c}'s border"
                    );
                }
            }
        }
        // And close to the reference.
        let mut want = layer.forward_reference(&x.sample(0));
        relu_inplace(&mut want);
        let want = pool(&want, Pool::Max, pk, pk, ps, ps, 0, 0);
        let got = direct.forward_max_pool_batch(&x, true, pk, ps, true);
        let err = max_abs_diff(&got.data, &want.data);
        assert!(err < 1e-4, "case {i}: max error {err}");
    }
}

#[test]
fn direct_conv_on_padded_planes_equals_the_packed_path() {
    if !DirectConv::supported() {
        eprintln!("no AVX-512F: direct convolution not tested");
        return;
    }
    // oc, ic, k, stride, pad, h, w, residual channels: the ResNet's layers (in place on the
    // grid, small planes, a stride-2 layer through the packed path, a 1×1 centre tap), odd
    // channel counts and a channel-prefix residual.
    let cases = [
        (32, 32, 3, 1, 1, 35, 35, 32),
        (64, 64, 3, 1, 1, 17, 17, 32),
        (13, 5, 3, 1, 1, 20, 17, 0),
        (64, 32, 3, 2, 0, 35, 35, 0),
        (128, 128, 3, 1, 1, 8, 8, 64),
        (256, 256, 3, 1, 1, 4, 4, 256),
        (256, 256, 3, 1, 1, 3, 3, 0),
        (256, 128, 3, 2, 0, 8, 8, 0),
        (256, 256, 1, 1, 0, 1, 1, 0),
    ];
    for (i, &(oc, ic, k, s, p, h, w, rc)) in cases.iter().enumerate() {
        let layer = conv(oc, ic, k, k, s, s, p, p, true, 500 + i as u64);
        let x = BatchTensor::from_tensor(Tensor::from_vec(
            ic,
            h,
            w,
            noise(ic * h * w, 510 + i as u64),
        ));
        let direct = DirectConv::new(&layer, &[(h, w)]).unwrap();
        let (oh, ow) = direct.out_shape(h, w);
        let res = BatchTensor::from_tensor(Tensor::from_vec(
            rc,
            oh,
            ow,
            noise(rc * oh * ow, 520 + i as u64),
        ));
        let xp = PaddedPlanes::from_batch(&x);
        let rp = PaddedPlanes::from_batch(&res);
        for relu in [false, true] {
            for parallel in [false, true] {
                let want = direct.forward_batch_with(
                    &x,
                    Epilogue {
                        residual: (rc > 0).then_some(&res.data[..]),
                        relu,
                    },
                    parallel,
                );
                // Twice: the second output reuses the first's dropped buffer.
                for _ in 0..2 {
                    let got =
                        direct.forward_padded(&xp, (rc > 0).then_some(&rp), relu, parallel, &[]);
                    assert_eq!((got.c, got.h, got.w), (oc, oh, ow));
                    assert_eq!(
                        got.to_batch().data,
                        want.data,
                        "case {i} relu {relu} parallel {parallel}"
                    );
                    // The border is zero.
                    let again = PaddedPlanes::from_batch(&got.to_batch());
                    let bordered = (oh + 2) * (ow + 2);
                    for c in 0..oc {
                        assert_eq!(
                            got.data[c * got.chan..][..bordered],
                            again.data[c * again.chan..][..bordered]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn phase_winograd_matches_reference() {
    if !DirectConv::supported() {
        eprintln!("no AVX-512F: phase Winograd not tested");
        return;
    }
    // The ResNet's one-face sizes, even and odd sides, channel counts off the register block.
    let cases = [
        // oc, ic, h, w, residual channels (the 17×17 level's first block adds a shortcut of
        // half its channels)
        (32, 32, 35, 35, 32),
        (64, 64, 17, 17, 64),
        (64, 64, 17, 17, 32),
        (16, 16, 8, 8, 16),
        (13, 7, 10, 15, 5),
        (9, 4, 3, 40, 9),
        (8, 5, 1, 1, 8),
        (24, 3, 2, 5, 24),
    ];
    for (i, &(oc, ic, h, w, rc)) in cases.iter().enumerate() {
        for tile in [2, 4] {
            let layer = conv(oc, ic, 3, 3, 1, 1, 1, 1, true, 600 + i as u64);
            let x = Tensor::from_vec(ic, h, w, noise(ic * h * w, 610 + i as u64));
            let res = Tensor::from_vec(rc, h, w, noise(rc * h * w, 620 + i as u64));
            let wino = PhaseWinograd::new(&layer, tile).unwrap();
            let phases = |t: &Tensor, parallel: bool| {
                let padded = PaddedPlanes::from_batch(&BatchTensor::from_tensor(t.clone()));
                PhasePlanes::from_padded(&padded, tile, parallel)
            };
            let (xp, rp) = (phases(&x, false), phases(&res, true));
            // The layout round-trips, with and without threads.
            assert!(xp.same_layout_values(&phases(&x, true)), "case {i}");
            for parallel in [false, true] {
                assert_eq!(xp.to_padded(parallel).to_batch().data, x.data, "case {i}");
            }
            let plain = layer.forward_reference(&x);
            // Lines to prefetch meanwhile (another layer's weights, as in the network).
            let ahead = noise(3000, 5);
            for (with_residual, relu, parallel) in [
                (false, false, false),
                (false, true, true),
                (true, true, false),
                (true, false, true),
            ] {
                let mut want = plain.clone();
                if with_residual {
                    for (v, r) in want.data.iter_mut().zip(&res.data) {
                        *v += *r;
                    }
                }
                if relu {
                    relu_inplace(&mut want);
                }
                // Twice: the second output reuses the first's dropped buffer.
                let mut first = None;
                for _ in 0..2 {
                    let got =
                        wino.forward(&xp, with_residual.then_some(&rp), relu, parallel, &ahead);
                    let padded = got.to_padded(parallel);
                    let dense = padded.to_batch();
                    assert_eq!((dense.c, dense.h, dense.w), (oc, h, w));
                    let err = max_abs_diff(&dense.data, &want.data);
                    assert!(
                        err < 2e-5 * (ic * 9) as f32,
                        "case {i} tile {tile} {with_residual} {relu} {parallel}: max error {err}"
                    );
                    // Every float the next layer reads is what a fresh conversion would hold:
                    // zeros in the border and past the plane.
                    let again = PhasePlanes::from_padded(&padded, tile, !parallel);
                    assert!(got.same_layout_values(&again), "case {i}: border not zero");
                    match &first {
                        None => first = Some(dense.data),
                        Some(f) => assert_eq!(f, &dense.data, "case {i}: threads changed a sum"),
                    }
                }
            }
        }
    }
}

#[test]
fn small_winograd_matches_reference() {
    if !DirectConv::supported() {
        eprintln!("no AVX-512F: small-plane Winograd not tested");
        return;
    }
    // The ResNet's 8×8 layers (one with a residual of half the channels, as after its
    // down-sampling block), and smaller and oblong planes, filters off the block of 16.
    let cases = [
        // oc, ic, h, w, residual channels
        (128, 128, 8, 8, 128),
        (128, 128, 8, 8, 64),
        (40, 24, 4, 6, 7),
        (16, 3, 2, 2, 0),
        (5, 9, 2, 8, 5),
    ];
    for (i, &(oc, ic, h, w, rc)) in cases.iter().enumerate() {
        assert!(SmallWinograd::fits(h, w));
        let layer = conv(oc, ic, 3, 3, 1, 1, 1, 1, true, 700 + i as u64);
        let x = Tensor::from_vec(ic, h, w, noise(ic * h * w, 710 + i as u64));
        let res = Tensor::from_vec(rc, h, w, noise(rc * h * w, 720 + i as u64));
        let wino = SmallWinograd::new(&layer).unwrap();
        let xp = PaddedPlanes::from_batch(&BatchTensor::from_tensor(x.clone()));
        let rp = PaddedPlanes::from_batch(&BatchTensor::from_tensor(res.clone()));
        let plain = layer.forward_reference(&x);
        let ahead = noise(5000, 1);
        for (relu, parallel) in [(false, false), (true, true), (true, false)] {
            let mut want = plain.clone();
            for (v, r) in want.data.iter_mut().zip(&res.data) {
                *v += *r;
            }
            if relu {
                relu_inplace(&mut want);
            }
            // Twice: the second output reuses the first's dropped buffer.
            let mut first = None;
            for _ in 0..2 {
                let got = wino.forward(&xp, (rc > 0).then_some(&rp), relu, parallel, &ahead);
                assert_eq!((got.c, got.h, got.w), (oc, h, w));
                let dense = got.to_batch();
                let err = max_abs_diff(&dense.data, &want.data);
                assert!(
                    err < 2e-5 * (ic * 9) as f32,
                    "case {i} {relu} {parallel}: max error {err}"
                );
                // The border is zero.
                let again = PaddedPlanes::from_batch(&dense);
                let bordered = (h + 2) * (w + 2);
                for c in 0..oc {
                    assert_eq!(
                        got.data[c * got.chan..][..bordered],
                        again.data[c * again.chan..][..bordered],
                        "case {i} channel {c}"
                    );
                }
                match &first {
                    None => first = Some(dense.data),
                    Some(f) => assert_eq!(f, &dense.data, "case {i}: threads changed a sum"),
                }
            }
        }
    }
}
