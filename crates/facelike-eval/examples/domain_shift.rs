//! Where the adapter can help: two labelled folders unlike LFW (ORL/AT&T: 40 people, small
//! greyscale faces; Yale: 15 people under harsh lighting), with descriptors from
//! face_recognition's pipeline (`scripts/make_domain_descriptors.py`; some faces are not
//! detected and are scored by the undetected policy). For each folder: pairs sampled from
//! the identity folders (seeded, identity-disjoint folds), the plain descriptors, an adapter
//! trained in-domain on the other folds' people, and an adapter trained on all of LFW.
//!
//! ```text
//! FACELIKE_SHARED=/path/to/shared cargo run --release -p facelike-eval --example domain_shift
//! ```

use facelike_eval::crossval::{adapted_scores, cross_validate_adapter};
use facelike_eval::verify::{evaluate_scored, score_pairs};
use facelike_eval::AdapterTraining;
use facelike_eval::{
    identity_of, sample_pairs, train, EvalOptions, Identity, SampleConfig, TrainConfig,
};
use facelike_types::Descriptor;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// `(path, descriptor or None)` in file order.
fn load(name: &str) -> Vec<(String, Option<Descriptor>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let text = std::fs::read_to_string(dir.join(format!("{name}_descriptors.txt"))).unwrap();
    let bytes = std::fs::read(dir.join(format!("{name}_descriptors.f32"))).unwrap();
    let mut vecs = bytes.chunks_exact(512).map(|c| {
        Descriptor(std::array::from_fn(|i| {
            f32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]])
        }))
    });
    text.lines()
        .map(|l| {
            let (path, found) = l.split_once('\t').unwrap();
            (
                path.to_string(),
                (found == "1").then(|| vecs.next().unwrap()),
            )
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = EvalOptions::default();
    // The LFW-trained adapter: all 7701 View-2 images.
    let (names, desc) = facelike_testdata::lfw_descriptors();
    let lfw: Vec<Descriptor> = desc.into_iter().map(Descriptor).collect();
    let lfw_labels: Vec<&str> = names.iter().map(|n| identity_of(n)).collect();
    let (lfw_adapter, _) = train(&lfw, &lfw_labels, &TrainConfig::default(), |_| {})?;

    for (name, folds) in [("att_faces", 10), ("yalefaces", 5)] {
        let faces = load(name);
        let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (p, _) in &faces {
            ids.entry(identity_of(p)).or_default().push(p.clone());
        }
        let gallery_ids: Vec<Identity> = ids
            .into_iter()
            .map(|(n, images)| Identity {
                name: n.to_string(),
                images,
            })
            .collect();
        let pairs = sample_pairs(
            &gallery_ids,
            &SampleConfig {
                folds,
                matched_per_fold: 100,
                mismatched_per_fold: 100,
                seed: 0,
            },
        )?;
        let lookup: HashMap<String, Option<Descriptor>> = faces.iter().cloned().collect();
        let detected: HashMap<String, Descriptor> = faces
            .iter()
            .filter_map(|(p, d)| d.map(|d| (p.clone(), d)))
            .collect();
        let (report, _) =
            facelike_eval::evaluate_pairs(&pairs, |p| lookup.get(p).copied().flatten(), &opts)?;
        println!(
            "== {name}: {} images, {} without a detected face, {} identities, {} pairs in {folds} folds",
            faces.len(),
            faces.len() - detected.len(),
            gallery_ids.len(),
            pairs.pairs.len()
        );
        print!("{}", report.summary());

        let cfg = TrainConfig {
            max_epochs: 300,
            patience: 30,
            validation_fraction: 0.15,
            ..TrainConfig::default()
        };
        let cv = cross_validate_adapter(&pairs, &detected, &cfg, &opts, |_, _| {})?;
        let lfw_scored = adapted_scores(&pairs, &detected, &lfw_adapter, &opts);
        // The adapters' starting point: the descriptors scaled to unit length, nothing learnt.
        let unit = facelike_eval::Adapter::identity(facelike_eval::AdapterKind::Linear, 0);
        let unit_report = evaluate_scored(
            &adapted_scores(&pairs, &detected, &unit, &opts),
            pairs.folds,
            &opts,
        )?;
        let lfw_report = evaluate_scored(&lfw_scored, pairs.folds, &opts)?;
        let base = score_pairs(&pairs, |p| detected.get(p).copied(), &opts);
        let base_report = evaluate_scored(&base.scored, pairs.folds, &opts)?;
        println!(
            "plain dlib descriptors:              {:.2}% ± {:.2}%  AUC {:.4}",
            100.0 * base_report.accuracy_mean,
            100.0 * base_report.accuracy_std,
            base_report.auc
        );
        println!(
            "unit-length descriptors (no adapter): {:.2}% ± {:.2}%  AUC {:.4}",
            100.0 * unit_report.accuracy_mean,
            100.0 * unit_report.accuracy_std,
            unit_report.auc
        );
        println!(
            "adapter trained on LFW (all folds):  {:.2}% ± {:.2}%  AUC {:.4}",
            100.0 * lfw_report.accuracy_mean,
            100.0 * lfw_report.accuracy_std,
            lfw_report.auc
        );
        println!(
            "adapter trained in-domain (k-fold):  {:.2}% ± {:.2}%  AUC {:.4}  (baseline in the same run {:.2}%)",
            100.0 * cv.adapter.mean,
            100.0 * cv.adapter.std,
            cv.adapter_auc,
            100.0 * cv.baseline.mean
        );
        // Paired comparison of the LFW adapter with the plain descriptors, pair by pair,
        // each with its own per-fold thresholds (McNemar's b and c).
        let right = |s: &facelike_eval::verify::ScoredPair,
                     r: &facelike_eval::VerificationReport| {
            let t = r.folds.iter().find(|f| f.fold == s.fold).unwrap().threshold;
            (s.distance <= t) == s.same
        };
        let (mut fixed, mut broken) = (0, 0);
        for (b, a) in base.scored.iter().zip(&lfw_scored) {
            match (right(b, &base_report), right(a, &lfw_report)) {
                (false, true) => fixed += 1,
                (true, false) => broken += 1,
                _ => {}
            }
        }
        println!(
            "LFW adapter vs plain, pair by pair: {fixed} pairs fixed, {broken} broken \
             (McNemar chi2 {:.1})",
            if fixed + broken > 0 {
                ((fixed as f64 - broken as f64).abs() - 1.0).powi(2) / (fixed + broken) as f64
            } else {
                0.0
            }
        );
        let epochs: Vec<usize> = cv.folds.iter().map(|f| f.training.best_epoch).collect();
        println!("in-domain best epochs per fold: {epochs:?}\n");
    }
    Ok(())
}
