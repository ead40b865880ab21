//! Training on a small real gallery (LFW descriptors of 120 people) lowers the validation
//! loss, reports progress, and the saved adapter loads back to the same map.

use facelike_eval::adapter::{Adapter, AdapterKind};
use facelike_eval::plot::plot_loss;
use facelike_eval::{identity_of, train, TrainConfig};
use facelike_types::Descriptor;
use std::collections::BTreeMap;

fn small_gallery() -> (Vec<Descriptor>, Vec<String>) {
    let (names, desc) = facelike_testdata::lfw_descriptors();
    let mut by_person: BTreeMap<String, Vec<Descriptor>> = BTreeMap::new();
    for (n, d) in names.iter().zip(desc) {
        by_person
            .entry(identity_of(n).to_string())
            .or_default()
            .push(Descriptor(d));
    }
    let mut descriptors = Vec::new();
    let mut labels = Vec::new();
    for (person, faces) in by_person
        .into_iter()
        .filter(|(_, f)| f.len() >= 4)
        .take(120)
    {
        for d in faces {
            descriptors.push(d);
            labels.push(person.clone());
        }
    }
    (descriptors, labels)
}

#[test]
fn training_on_real_descriptors_lowers_validation_loss() {
    if facelike_testdata::skip_without_shared(
        "facelike-eval train::training_on_real_descriptors_lowers_validation_loss",
    ) {
        return;
    }
    let (descriptors, labels) = small_gallery();
    assert!(descriptors.len() > 600, "{} faces", descriptors.len());
    for kind in [AdapterKind::Linear, AdapterKind::Residual { hidden: 64 }] {
        let cfg = TrainConfig {
            kind,
            max_epochs: 8,
            patience: 8,
            validation_fraction: 0.25,
            identities_per_batch: 16,
            ..TrainConfig::default()
        };
        let mut epochs_seen = Vec::new();
        let (adapter, report) =
            train(&descriptors, &labels, &cfg, |e| epochs_seen.push(e.epoch)).unwrap();
        assert_eq!(epochs_seen, (1..=report.history.len()).collect::<Vec<_>>());
        assert_eq!(report.val_identities, 30);
        assert!(report.initial_val_loss > 0.02, "{report:?}");
        assert!(
            report.best_val_loss < 0.7 * report.initial_val_loss,
            "{kind}: validation loss {} -> {}",
            report.initial_val_loss,
            report.best_val_loss
        );
        let threshold = adapter.threshold.expect("calibrated");
        assert!(threshold > 0.0 && threshold < 2.0, "{threshold}");

        // Saved and loaded, the adapter maps descriptors the same way (f32 weights).
        let dir = std::env::temp_dir().join(format!("facelike-eval-train-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{kind}.safetensors"));
        adapter.save(&file).unwrap();
        let back = Adapter::load(&file).unwrap();
        assert_eq!(back.kind, kind);
        assert_eq!(back.threshold.map(|t| t as f32), Some(threshold as f32));
        for d in descriptors.iter().take(50) {
            let (a, b) = (adapter.apply(d), back.apply(d));
            assert!((a.norm() - 1.0).abs() < 1e-5);
            let diff =
                a.0.iter()
                    .zip(b.0.iter())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
            assert!(diff < 1e-5, "{diff}");
        }
        let png = dir.join(format!("{kind}-loss.png"));
        plot_loss(&png, "test", &report.loss_series()).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 5_000);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn training_rejects_inconsistent_input() {
    let d = vec![Descriptor::default(); 3];
    let err = train(&d, &["a", "b"], &TrainConfig::default(), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("3 descriptors but 2 labels"),
        "{err}"
    );
    let err = train(&d, &["a", "a", "b"], &TrainConfig::default(), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("identities with 2+ faces"),
        "{err}"
    );
}
