//! Which convolution form runs, decided inside this crate: a [`ConvPlan`] is built once per
//! layer from its [`Conv2d`] and the side of the (square) input it will see, prepares only
//! the forms that can run at that size, and then picks one per call: for a batch, by the
//! batch size and input shape; for one sample, by the layout the activations are in
//! (zero-bordered [`PaddedPlanes`] or [`PhasePlanes`]).
//!
//! Model code says what it needs computed (this layer on this batch, or on one sample's
//! planes, with this residual and ReLU) and never names a form. The rules, per call:
//!
//! - A 3×3, stride-1, padding-1 layer on a 1×1 input: only its centre tap touches the
//!   input, so it runs as that 1×1 convolution (the direct kernel's small-plane form for one
//!   sample where the CPU has AVX-512F, else im2col + GEMM).
//! - One sample, where the CPU has AVX-512F (and `FACELIKE_NO_AVX512` is not set): the direct
//!   kernel ([`DirectConv`]) on a packed batch of one; on bordered planes, Winograd F(2×2)
//!   with the filters in the lanes ([`SmallWinograd`]) for 8×8 inputs, else the direct
//!   kernel; on phase planes, [`PhaseWinograd`] (F(4×4) from 32×32 up, F(2×2) from 9×9).
//! - Otherwise: batched Winograd F(4×4) ([`Winograd3x3`]) where [`Winograd3x3::pays_off`]
//!   for the call's batch, else im2col + GEMM ([`Conv2d`]); spread over rayon's threads
//!   when asked.
//!
//! It sits at the top of the crate: it imports the forms and the layouts, and nothing
//! imports it.

use crate::forms::conv::{Conv2d, Epilogue};
use crate::forms::direct::DirectConv;
use crate::forms::phase::PhaseWinograd;
use crate::forms::small_winograd::SmallWinograd;
use crate::forms::winograd::Winograd3x3;
use crate::layout::padded::PaddedPlanes;
use crate::layout::phase::PhasePlanes;
use crate::layout::tensor::BatchTensor;
use std::sync::OnceLock;

/// A convolution form, as [`ConvPlan`] chooses it for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvForm {
    /// im2col + GEMM over every tap ([`Conv2d::forward_batch`]).
    Gemm,
    /// The centre tap alone, as a 1×1 im2col + GEMM: all of a 3×3, stride-1, padding-1
    /// layer that touches a 1×1 input.
    CentreTap,
    /// Batched Winograd F(4×4, 3×3) ([`Winograd3x3`]).
    Winograd,
    /// The direct AVX-512 kernel ([`DirectConv`]), of the centre tap where the layer runs
    /// as its centre tap.
    Direct,
    /// Winograd on phase planes ([`PhaseWinograd`]).
    PhaseWinograd,
    /// Winograd F(2×2, 3×3) with the filters in the lanes ([`SmallWinograd`]).
    SmallWinograd,
}

/// One convolution layer with the forms that can run it at its input size, and the rules
/// that choose among them (see the module docs).
#[derive(Clone, Debug)]
pub struct ConvPlan {
    conv: Conv2d,
    /// The side of this layer's (square) input.
    side: usize,
    /// The largest batch a call will pass: Winograd is prepared only where it pays for it.
    max_batch: usize,
    /// Winograd F(4×4, 3×3), for stride 1, where it pays for batches; prepared on first use
    /// (one sample at a time never needs it where the direct kernels run).
    winograd: OnceLock<Option<Winograd3x3>>,
    /// The centre tap alone as a 1×1 convolution: all that touches a 1×1 input at stride 1
    /// with padding 1.
    centre: Option<Conv2d>,
    /// The direct AVX-512 kernel, for one sample at a time (where the CPU has AVX-512F): of
    /// the centre tap where `centre` is set, else of `conv`.
    /// Every one-sample layer without `phase` uses it. (F(4×4, 3×3) on the direct kernels
    /// measured slower than it: its transforms went through a polyphase copy of the input
    /// per layer.)
    direct: Option<DirectConv>,
    /// Winograd on phase planes, for one sample's stride-1 layers on planes of 9×9 and more
    /// (where the CPU has AVX-512F): F(4×4, 3×3) from 32×32, else F(2×2, 3×3).
    phase: Option<PhaseWinograd>,
    /// Winograd F(2×2, 3×3) with the filters in the vector lanes, for one sample's stride-1
    /// layers on 8×8 planes (where the CPU has AVX-512F).
    small: Option<SmallWinograd>,
}

impl ConvPlan {
    /// The plan for `conv` on square inputs of side `side`, called with batches of at most
    /// `max_batch` samples. Only the forms a call can choose at that size are built:
    /// Winograd's weights take 4× the memory (9.4 MB for a 256-channel layer).
    pub fn new(conv: Conv2d, side: usize, max_batch: usize) -> Self {
        let size = side;
        let centre = (size == 1
            && (conv.kh, conv.kw, conv.stride_y, conv.stride_x) == (3, 3, 1, 1)
            && (conv.pad_y, conv.pad_x) == (1, 1))
            .then(|| Conv2d {
                out_channels: conv.out_channels,
                in_channels: conv.in_channels,
                kh: 1,
                kw: 1,
                stride_y: 1,
                stride_x: 1,
                pad_y: 0,
                pad_x: 0,
                weights: conv.weights.iter().skip(4).step_by(9).copied().collect(),
                bias: conv.bias.clone(),
            });
        let direct = match &centre {
            // One sample's 1×1 input: the centre tap in the small-plane form.
            Some(c) => DirectConv::new(c, &[(1, 1)]),
            None => DirectConv::new(&conv, &[(size, size)]),
        };
        // 4×4 tiles where a plane has enough of them to spread over the threads (35×35:
        // 81 tiles, 6 vectors), else 2×2 (17×17: 25 tiles of 4×4 were 2 vectors; measured
        // slower there, and their weights, 4× the plain ones, crowd the caches).
        let tile = if size >= 32 { 4 } else { 2 };
        let phase = (size >= 9)
            .then(|| PhaseWinograd::new(&conv, tile))
            .flatten();
        let small = (size == 8).then(|| SmallWinograd::new(&conv)).flatten();
        ConvPlan {
            conv,
            side,
            max_batch,
            winograd: OnceLock::new(),
            centre,
            direct,
            phase,
            small,
        }
    }

    /// Drops every form but im2col + GEMM over all taps (no Winograd, no centre tap, no
    /// direct kernels): slower, and the closest to dlib's own arithmetic.
    pub fn disable_fast_forms(&mut self) {
        self.winograd = OnceLock::from(None);
        self.centre = None;
        self.direct = None;
        self.phase = None;
        self.small = None;
    }

    /// The layer.
    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// The side of the square input the plan was built for.
    pub fn side(&self) -> usize {
        self.side
    }

    /// Output height and width for an `h × w` input.
    pub fn out_shape(&self, h: usize, w: usize) -> (usize, usize) {
        self.conv.out_shape(h, w)
    }

    /// The form [`forward_batch`](Self::forward_batch) runs for `n` samples of `h × w`.
    pub fn batch_form(&self, n: usize, h: usize, w: usize) -> ConvForm {
        if self.centre.is_some() && (h, w) == (1, 1) {
            return if self.direct.is_some() && n == 1 {
                ConvForm::Direct
            } else {
                ConvForm::CentreTap
            };
        }
        if n == 1 && self.direct.is_some() && self.centre.is_none() {
            return ConvForm::Direct;
        }
        if self.winograd().is_some_and(|wino| wino.pays_off(n, h, w)) {
            ConvForm::Winograd
        } else {
            ConvForm::Gemm
        }
    }

    /// The layer on a batch, followed by `epilogue`, by the fastest exact-enough form for
    /// this batch and input size. `parallel`: spread the work of this one layer over the
    /// threads.
    pub fn forward_batch(
        &self,
        x: &BatchTensor,
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) -> BatchTensor {
        match self.batch_form(x.n, x.h, x.w) {
            ConvForm::Direct => self
                .direct
                .as_ref()
                .expect("the direct form is prepared")
                .forward_batch_with(x, epilogue, parallel),
            ConvForm::CentreTap => self
                .centre
                .as_ref()
                .expect("the centre tap is prepared")
                .forward_batch(x, epilogue),
            ConvForm::Winograd => {
                let wino = self.winograd().expect("Winograd is prepared");
                if parallel {
                    wino.forward_batch_par(x, epilogue)
                } else {
                    wino.forward_batch(x, epilogue)
                }
            }
            ConvForm::Gemm if parallel => self.conv.forward_batch_par(x, epilogue),
            ConvForm::Gemm => self.conv.forward_batch(x, epilogue),
            ConvForm::PhaseWinograd | ConvForm::SmallWinograd => {
                unreachable!("one-sample layouts only")
            }
        }
    }

    /// Whether one sample can run on bordered planes
    /// ([`forward_padded`](Self::forward_padded)): the CPU has AVX-512F and the fast forms
    /// are on.
    pub fn has_padded_form(&self) -> bool {
        self.direct.is_some()
    }

    /// The form [`forward_padded`](Self::forward_padded) runs on `h × w` planes (`None`
    /// without one).
    pub fn padded_form(&self, h: usize, w: usize) -> Option<ConvForm> {
        match (&self.small, &self.direct) {
            (Some(_), _) if (h, w) == (self.side, self.side) => Some(ConvForm::SmallWinograd),
            (_, Some(_)) => Some(ConvForm::Direct),
            (_, None) => None,
        }
    }

    /// One sample's layer on bordered planes, then `residual` added (a channel prefix of the
    /// output, of its size) and the ReLU where `relu`; meanwhile `ahead` (the next layer's
    /// [`one_sample_weights`](Self::one_sample_weights)) is pulled towards the caches. By
    /// the small-plane Winograd form where the layer has one for this size, else by the
    /// direct kernel (see [`DirectConv::forward_padded`]).
    ///
    /// # Panics
    /// Without a padded form ([`has_padded_form`](Self::has_padded_form)), or where the
    /// layer runs as its centre tap and `x` is not 1×1.
    pub fn forward_padded(
        &self,
        x: &PaddedPlanes,
        residual: Option<&PaddedPlanes>,
        relu: bool,
        parallel: bool,
        ahead: &[f32],
    ) -> PaddedPlanes {
        // The centre tap is all of the layer only on a 1×1 input.
        assert!(self.centre.is_none() || (x.h, x.w) == (1, 1));
        match &self.small {
            Some(s) if (x.h, x.w) == (self.side, self.side) => {
                s.forward(x, residual, relu, parallel, ahead)
            }
            _ => self
                .direct
                .as_ref()
                .expect("one sample on bordered planes needs the direct kernels")
                .forward_padded(x, residual, relu, parallel, ahead),
        }
    }

    /// The tile side of the phase planes this layer takes one sample in (`None` where it
    /// has no phase-plane form).
    pub fn phase_tile(&self) -> Option<usize> {
        self.phase.as_ref().map(|p| p.tile)
    }

    /// One sample's layer on phase planes of [`phase_tile`](Self::phase_tile), as
    /// [`PhaseWinograd::forward`].
    ///
    /// # Panics
    /// Without a phase-plane form.
    pub fn forward_phase(
        &self,
        x: &PhasePlanes,
        residual: Option<&PhasePlanes>,
        relu: bool,
        parallel: bool,
        ahead: &[f32],
    ) -> PhasePlanes {
        self.phase
            .as_ref()
            .expect("the layer has a phase-plane form")
            .forward(x, residual, relu, parallel, ahead)
    }

    /// The weights this layer reads for one sample, in the form it takes there (none
    /// without a one-sample form): for the previous layer to prefetch.
    pub fn one_sample_weights(&self) -> &[f32] {
        match (&self.phase, &self.small, &self.direct) {
            (Some(p), _, _) => p.weights(),
            (None, Some(s), _) => s.weights(),
            (None, None, Some(d)) => d.weights_for(self.side, self.side),
            (None, None, None) => &[],
        }
    }

    /// The Winograd form, prepared on first use: only the layers and sizes where it can pay
    /// (its weights take 4× the memory, 9.4 MB for a 256-channel layer).
    fn winograd(&self) -> Option<&Winograd3x3> {
        let size = self.side;
        self.winograd
            .get_or_init(|| {
                Winograd3x3::new(&self.conv)
                    .filter(|w| w.pays_off(self.max_batch, size, size) && size > 1)
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::relu_inplace;
    use crate::tests::{conv, max_abs_diff, noise};

    /// The forms a [`ConvPlan`] should choose, by the rules it documents, each run directly.
    fn by_form(
        form: ConvForm,
        layer: &Conv2d,
        side: usize,
        x: &BatchTensor,
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) -> BatchTensor {
        let centre = || Conv2d {
            kh: 1,
            kw: 1,
            pad_y: 0,
            pad_x: 0,
            weights: layer.weights.iter().skip(4).step_by(9).copied().collect(),
            ..layer.clone()
        };
        match form {
            ConvForm::Direct if side == 1 => DirectConv::new(&centre(), &[(1, 1)])
                .unwrap()
                .forward_batch_with(x, epilogue, parallel),
            ConvForm::Direct => DirectConv::new(layer, &[(side, side)])
                .unwrap()
                .forward_batch_with(x, epilogue, parallel),
            ConvForm::CentreTap => centre().forward_batch(x, epilogue),
            ConvForm::Winograd if parallel => Winograd3x3::new(layer)
                .unwrap()
                .forward_batch_par(x, epilogue),
            ConvForm::Winograd => Winograd3x3::new(layer).unwrap().forward_batch(x, epilogue),
            ConvForm::Gemm if parallel => layer.forward_batch_par(x, epilogue),
            ConvForm::Gemm => layer.forward_batch(x, epilogue),
            other => panic!("{other:?} is no batch form"),
        }
    }

    #[test]
    fn conv_plan_chooses_by_its_rules_and_runs_the_forms_unchanged() {
        let avx512 = DirectConv::supported();
        // The ResNet's levels (35, 17, 8, 4 and the last block's 1×1), and a down-sampling conv.
        let cases = [
            // oc, ic, stride, pad, side
            (16, 8, 1, 1, 35),
            (16, 16, 1, 1, 17),
            (32, 16, 1, 1, 8),
            (32, 32, 1, 1, 4),
            (16, 16, 1, 1, 1),
            (16, 8, 2, 0, 9),
        ];
        const MAX_BATCH: usize = 16;
        for (i, &(oc, ic, s, p, side)) in cases.iter().enumerate() {
            let layer = conv(oc, ic, 3, 3, s, s, p, p, true, 500 + i as u64);
            let plan = ConvPlan::new(layer.clone(), side, MAX_BATCH);
            assert_eq!(plan.side(), side);
            assert_eq!(plan.out_shape(side, side), layer.out_shape(side, side));
            let wino =
                Winograd3x3::new(&layer).filter(|w| w.pays_off(MAX_BATCH, side, side) && side > 1);
            let centre = side == 1 && (s, p) == (1, 1);
            for n in [1, 3, MAX_BATCH] {
                let want_form = if centre {
                    if avx512 && n == 1 {
                        ConvForm::Direct
                    } else {
                        ConvForm::CentreTap
                    }
                } else if avx512 && n == 1 {
                    ConvForm::Direct
                } else if wino.as_ref().is_some_and(|w| w.pays_off(n, side, side)) {
                    ConvForm::Winograd
                } else {
                    ConvForm::Gemm
                };
                assert_eq!(
                    plan.batch_form(n, side, side),
                    want_form,
                    "case {i}, {n} samples"
                );
                let x = BatchTensor::from_vec(
                    ic,
                    n,
                    side,
                    side,
                    noise(ic * n * side * side, 40 + i as u64),
                );
                for parallel in [false, true] {
                    let got = plan.forward_batch(&x, Epilogue::RELU, parallel);
                    let want = by_form(want_form, &layer, side, &x, Epilogue::RELU, parallel);
                    assert_eq!(got.data, want.data, "case {i}, {n} samples, {want_form:?}");
                    for k in 0..n {
                        let mut reference = layer.forward_reference(&x.sample(k));
                        relu_inplace(&mut reference);
                        let err = max_abs_diff(&got.sample(k).data, &reference.data);
                        assert!(err < 2e-5 * (ic * 9) as f32, "case {i}: max error {err}");
                    }
                }
            }
            // One sample's layouts.
            assert_eq!(plan.has_padded_form(), avx512);
            let phase_tile =
                (avx512 && side >= 9 && (s, p) == (1, 1)).then_some(if side >= 32 { 4 } else { 2 });
            assert_eq!(plan.phase_tile(), phase_tile, "case {i}");
            if !avx512 {
                assert_eq!(plan.padded_form(side, side), None);
                assert!(plan.one_sample_weights().is_empty());
                continue;
            }
            let x =
                BatchTensor::from_vec(ic, 1, side, side, noise(ic * side * side, 60 + i as u64));
            let padded = PaddedPlanes::from_batch(&x);
            let (oh, ow) = layer.out_shape(side, side);
            let residual = PaddedPlanes::from_batch(&BatchTensor::from_vec(
                oc / 2,
                1,
                oh,
                ow,
                noise(oc / 2 * oh * ow, 80 + i as u64),
            ));
            let ahead = noise(4096, 1);
            let got = plan.forward_padded(&padded, Some(&residual), true, true, &ahead);
            let small = (side == 8).then(|| SmallWinograd::new(&layer)).flatten();
            let (form, want, weights) = match &small {
                Some(sw) => (
                    ConvForm::SmallWinograd,
                    sw.forward(&padded, Some(&residual), true, true, &ahead),
                    sw.weights().to_vec(),
                ),
                None => {
                    let d = if centre {
                        let c = Conv2d {
                            kh: 1,
                            kw: 1,
                            pad_y: 0,
                            pad_x: 0,
                            weights: layer.weights.iter().skip(4).step_by(9).copied().collect(),
                            ..layer.clone()
                        };
                        DirectConv::new(&c, &[(1, 1)]).unwrap()
                    } else {
                        DirectConv::new(&layer, &[(side, side)]).unwrap()
                    };
                    let y = d.forward_padded(&padded, Some(&residual), true, true, &ahead);
                    (ConvForm::Direct, y, d.weights_for(side, side).to_vec())
                }
            };
            assert_eq!(plan.padded_form(side, side), Some(form), "case {i}");
            assert_eq!(
                got.to_batch().data,
                want.to_batch().data,
                "case {i}: {form:?}"
            );
            if let Some(tile) = phase_tile {
                let pw = PhaseWinograd::new(&layer, tile).unwrap();
                let phases = PhasePlanes::from_padded(&padded, tile, true);
                let res = PhasePlanes::from_padded(&residual, tile, true);
                let got = plan.forward_phase(&phases, Some(&res), true, true, &ahead);
                let want = pw.forward(&phases, Some(&res), true, true, &ahead);
                assert!(got.same_layout_values(&want), "case {i}: phase planes");
                assert_eq!(plan.one_sample_weights(), pw.weights());
            } else {
                assert_eq!(plan.one_sample_weights(), &weights[..], "case {i}");
            }
        }
    }

    #[test]
    fn conv_plan_without_fast_forms_runs_im2col_alone() {
        for (side, n) in [(35, 1), (17, 16), (1, 1), (8, 1)] {
            let layer = conv(16, 16, 3, 3, 1, 1, 1, 1, true, 700 + side as u64);
            let mut plan = ConvPlan::new(layer.clone(), side, 16);
            plan.disable_fast_forms();
            assert_eq!(plan.batch_form(n, side, side), ConvForm::Gemm);
            assert!(!plan.has_padded_form());
            assert_eq!(plan.phase_tile(), None);
            assert_eq!(plan.padded_form(side, side), None);
            assert!(plan.one_sample_weights().is_empty());
            let x = BatchTensor::from_vec(16, n, side, side, noise(16 * n * side * side, 9));
            for parallel in [false, true] {
                let got = plan.forward_batch(&x, Epilogue::default(), parallel);
                let want = by_form(
                    ConvForm::Gemm,
                    &layer,
                    side,
                    &x,
                    Epilogue::default(),
                    parallel,
                );
                assert_eq!(got.data, want.data, "{side}x{side}, {n} samples");
            }
        }
    }
}
