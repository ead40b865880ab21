//! Triplet loss against hand-computed values, its gradients and the adapter's hand-derived
//! backward pass against central finite differences, and mining by definition.

use facelike_eval::adapter::{Adapter, AdapterKind, AdapterTraining, Grads};
use facelike_eval::rng::SplitMix64;
use facelike_eval::triplet::{mine, sq_dist, triplet_loss, Mining, Triplet, DEFAULT_ALPHA};

fn t(anchor: usize, positive: usize, negative: usize) -> Triplet {
    Triplet {
        anchor,
        positive,
        negative,
    }
}

#[test]
fn triplet_loss_matches_hand_computation() {
    // a at the origin, p at squared distance 0.25; n1 far (1.0: loss 0), n2 at 0.25:
    // 0.25 − 0.25 + 0.2 = 0.2. Mean over the two triplets: 0.1.
    let emb = vec![
        vec![0.0, 0.0],
        vec![0.3, 0.4],
        vec![0.6, 0.8],
        vec![0.5, 0.0],
    ];
    let (loss, g, active) = triplet_loss(&emb, &[t(0, 1, 2), t(0, 1, 3)], DEFAULT_ALPHA);
    assert!((loss - 0.1).abs() < 1e-15, "{loss}");
    assert_eq!(active, 0.5);
    // Only the active triplet contributes, divided by 2 triplets:
    // ∂a = 2(n − p)/2 = (0.2, −0.4), ∂p = 2(p − a)/2 = (0.3, 0.4), ∂n = 2(a − n)/2 = (−0.5, 0).
    let want = [[0.2, -0.4], [0.3, 0.4], [0.0, 0.0], [-0.5, 0.0]];
    for (gi, wi) in g.iter().zip(want) {
        for (x, y) in gi.iter().zip(wi) {
            assert!((x - y).abs() < 1e-15, "{g:?}");
        }
    }
}

fn random_emb(rng: &mut SplitMix64, n: usize, dim: usize, scale: f64) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| (0..dim).map(|_| rng.normal() * scale).collect())
        .collect()
}

#[test]
fn triplet_loss_gradient_matches_finite_differences() {
    let mut rng = SplitMix64::new(11);
    let emb = random_emb(&mut rng, 6, 16, 0.15);
    let triplets = [t(0, 1, 2), t(1, 0, 3), t(4, 5, 0), t(5, 4, 2), t(2, 3, 4)];
    let (_, g, active) = triplet_loss(&emb, &triplets, DEFAULT_ALPHA);
    assert!(active > 0.5, "too few active triplets to test: {active}");
    let h = 1e-6;
    for i in 0..emb.len() {
        for k in 0..16 {
            let mut plus = emb.clone();
            let mut minus = emb.clone();
            plus[i][k] += h;
            minus[i][k] -= h;
            let fd = (triplet_loss(&plus, &triplets, DEFAULT_ALPHA).0
                - triplet_loss(&minus, &triplets, DEFAULT_ALPHA).0)
                / (2.0 * h);
            assert!(
                (fd - g[i][k]).abs() < 1e-8,
                "emb[{i}][{k}]: {fd} vs {}",
                g[i][k]
            );
        }
    }
}

fn check_adapter_gradients(kind: AdapterKind) {
    let mut rng = SplitMix64::new(5);
    // Descriptor-like inputs: entries of about ±0.1, norms about 1.2.
    let xs: Vec<[f32; 128]> = (0..6)
        .map(|_| std::array::from_fn(|_| (rng.normal() * 0.1) as f32))
        .collect();
    let mut a = Adapter::identity(kind, 3);
    // Move away from the identity start so that every parameter has a gradient (the
    // residual branch's W2 = 0 would otherwise zero W1's).
    for p in
        a.w1.iter_mut()
            .chain(a.b1.iter_mut())
            .chain(a.w2.iter_mut())
            .chain(a.b2.iter_mut())
    {
        *p += rng.normal() * 0.05;
    }
    // Fixed triplets (mining held still) and margin 2, which keeps every triplet active:
    // the loss is then smooth around the point in every direction.
    let triplets = [t(0, 1, 2), t(1, 0, 3), t(4, 5, 0), t(5, 4, 2), t(2, 3, 4)];
    let alpha_loss = |a: &Adapter, g: Option<&mut Grads>| {
        let caches: Vec<_> = xs.iter().map(|x| a.forward(x)).collect();
        let emb: Vec<&[f64]> = caches.iter().map(|c| &c.y[..]).collect();
        let (loss, dy, active) = triplet_loss(&emb, &triplets, 2.0);
        assert_eq!(active, 1.0);
        if let Some(g) = g {
            for (c, d) in caches.iter().zip(&dy) {
                a.backward(c, d.as_slice().try_into().unwrap(), g);
            }
        }
        loss
    };
    let mut g = Grads::zeros_like(&a);
    alpha_loss(&a, Some(&mut g));
    let h = 1e-6;
    let mut checked = 0;
    for tensor in 0..4 {
        let len = [a.w1.len(), a.b1.len(), a.w2.len(), a.b2.len()][tensor];
        for _ in 0..(len.min(40)) {
            let i = rng.below(len);
            let analytic = [&g.w1, &g.b1, &g.w2, &g.b2][tensor][i];
            let shifted = |delta: f64| {
                let mut b = a.clone();
                [&mut b.w1, &mut b.b1, &mut b.w2, &mut b.b2][tensor][i] += delta;
                alpha_loss(&b, None)
            };
            let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
            let tol = 1e-7 + 1e-5 * analytic.abs();
            assert!(
                (fd - analytic).abs() < tol,
                "{kind} tensor {tensor}[{i}]: finite difference {fd} vs {analytic}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 80);
}

#[test]
fn linear_adapter_gradients_match_finite_differences() {
    check_adapter_gradients(AdapterKind::Linear);
}

#[test]
fn residual_adapter_gradients_match_finite_differences() {
    check_adapter_gradients(AdapterKind::Residual { hidden: 24 });
}

#[test]
fn semi_hard_mining_picks_the_closest_negative_beyond_the_positive() {
    // One dimension, anchor at 0: positive at squared distance 0.1; negatives at 0.05
    // (hard: closer than the positive), 0.15 and 0.25 (semi-hard: within α = 0.2), 0.5 (easy).
    let at = |d2: f64| vec![d2.sqrt()];
    let emb = vec![at(0.0), at(0.1), at(0.05), at(0.25), at(0.15), at(0.5)];
    let labels = [0, 0, 1, 2, 3, 4];
    let semi = mine(&emb, &labels, Mining::SemiHard);
    let from_anchor: Vec<&Triplet> = semi.iter().filter(|t| t.anchor == 0).collect();
    assert_eq!(from_anchor.len(), 1);
    assert_eq!(from_anchor[0].negative, 4, "the 0.15 negative");
    let hard = mine(&emb, &labels, Mining::BatchHard);
    let h0 = hard.iter().find(|t| t.anchor == 0).unwrap();
    assert_eq!((h0.positive, h0.negative), (1, 2), "the 0.05 negative");
    // Anchors without a positive (labels 1..4) produce no triplet.
    assert!(semi.iter().all(|t| t.anchor <= 1));
}

#[test]
fn semi_hard_mining_obeys_the_definition_on_random_batches() {
    let mut rng = SplitMix64::new(99);
    for round in 0..20 {
        let labels: Vec<usize> = (0..24).map(|i| i / 4).collect();
        let emb = random_emb(&mut rng, 24, 8, 0.2 + 0.05 * round as f64);
        let triplets = mine(&emb, &labels, Mining::SemiHard);
        // Every ordered (anchor, positive) pair: 6 identities × 4 × 3.
        assert_eq!(triplets.len(), 6 * 4 * 3);
        for tr in &triplets {
            let (a, p, n) = (tr.anchor, tr.positive, tr.negative);
            assert!(a != p && labels[a] == labels[p] && labels[n] != labels[a]);
            let dap = sq_dist(&emb[a], &emb[p]);
            let dan = sq_dist(&emb[a], &emb[n]);
            let negs: Vec<f64> = (0..24)
                .filter(|&k| labels[k] != labels[a])
                .map(|k| sq_dist(&emb[a], &emb[k]))
                .collect();
            let semi_hard_exists = negs.iter().any(|&d| d > dap && d < dap + DEFAULT_ALPHA);
            if negs.iter().any(|&d| d > dap) {
                assert!(dan > dap, "chosen negative is not beyond the positive");
                assert!(
                    negs.iter().all(|&d| d <= dap || d >= dan),
                    "not the closest beyond"
                );
                if semi_hard_exists {
                    assert!(
                        dan < dap + DEFAULT_ALPHA,
                        "a semi-hard negative was skipped"
                    );
                }
            } else {
                assert!(
                    negs.iter().all(|&d| d <= dan),
                    "fallback is not the farthest"
                );
            }
        }
    }
}
