//! Reproduces the LFW View-2 figures of facelike-eval from the shared dlib descriptors:
//! the plain protocol (98.73% ± 0.44%), the ROC picture, and the adapter's 10-fold honest
//! evaluation (train on the people of nine folds, test on the tenth).
//!
//! ```text
//! FACELIKE_SHARED=/path/to/shared cargo run --release -p facelike-eval --example lfw_benchmark -- \
//!     [--out DIR] [--kind linear|residual:H] [--mining semi-hard|batch-hard] [--lr X] [--wd X] \
//!     [--epochs N] [--patience N] [--no-adapter] [--json]
//! ```

use facelike_eval::adapter::AdapterKind;
use facelike_eval::crossval::cross_validate_adapter;
use facelike_eval::plot::{plot_loss, plot_roc};
use facelike_eval::AdapterTraining;
use facelike_eval::{evaluate_pairs, EvalOptions, PairList, TrainConfig};
use facelike_types::Descriptor;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let out = PathBuf::from(get("--out").unwrap_or_else(|| "target/lfw-bench".into()));
    std::fs::create_dir_all(&out)?;

    let (names, desc) = facelike_testdata::lfw_descriptors();
    let gallery: HashMap<String, Descriptor> = names
        .into_iter()
        .zip(desc.into_iter().map(Descriptor))
        .collect();
    let pairs = PairList::read(&facelike_testdata::data_path("lfw_pairs/pairs.txt"))?;
    let opts = EvalOptions::default();
    let t0 = Instant::now();
    let (report, roc) = evaluate_pairs(&pairs, |p| gallery.get(p).copied(), &opts)?;
    println!(
        "== LFW View 2, raw dlib descriptors, L2 ({:.2?})",
        t0.elapsed()
    );
    print!("{}", report.summary());
    if has("--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let unit = facelike_eval::Adapter::identity(AdapterKind::Linear, 0);
    let (unit_report, _) =
        evaluate_pairs(&pairs, |p| gallery.get(p).map(|d| unit.apply(d)), &opts)?;
    println!(
        "unit-length descriptors (the adapters' starting point): {:.2}% ± {:.2}%, AUC {:.5}, threshold {:.4}",
        100.0 * unit_report.accuracy_mean,
        100.0 * unit_report.accuracy_std,
        unit_report.auc,
        unit_report.threshold
    );
    let roc_path = out.join("roc_lfw.png");
    plot_roc(
        &roc_path,
        "LFW View 2: dlib ResNet descriptors",
        &[("dlib, L2", &roc)],
    )?;
    println!("ROC picture: {}", roc_path.display());
    if has("--no-adapter") {
        return Ok(());
    }

    let mut cfg = TrainConfig::default();
    if let Some(k) = get("--kind") {
        cfg.kind = match k.split_once(':') {
            Some(("residual", h)) => AdapterKind::Residual { hidden: h.parse()? },
            None if k == "residual" => AdapterKind::Residual { hidden: 256 },
            _ if k == "linear" => AdapterKind::Linear,
            _ => return Err(format!("unknown --kind {k}").into()),
        };
    }
    if let Some(m) = get("--mining") {
        cfg.mining = m.parse()?;
    }
    if let Some(v) = get("--lr") {
        cfg.learning_rate = v.parse()?;
    }
    if let Some(v) = get("--wd") {
        cfg.weight_decay = v.parse()?;
    }
    if let Some(v) = get("--epochs") {
        cfg.max_epochs = v.parse()?;
    }
    if let Some(v) = get("--patience") {
        cfg.patience = v.parse()?;
    }
    println!(
        "\n== adapter {} ({:?} mining, lr {}, weight decay {}, P×K {}×{}, ≤{} epochs, patience {})",
        cfg.kind,
        cfg.mining,
        cfg.learning_rate,
        cfg.weight_decay,
        cfg.identities_per_batch,
        cfg.faces_per_identity,
        cfg.max_epochs,
        cfg.patience
    );
    let t0 = Instant::now();
    let cv = cross_validate_adapter(&pairs, &gallery, &cfg, &opts, |_, _| {})?;
    println!(
        "fold  train faces/ids  best epoch  val loss start→best  baseline acc (thr)  adapter acc (thr)"
    );
    for f in &cv.folds {
        println!(
            "{:>4}  {:>6}/{:<6}  {:>10}  {:.5}→{:.5}     {:.2}% ({:.4})     {:.2}% ({:.4})",
            f.fold,
            f.train_faces,
            f.train_identities,
            f.training.best_epoch,
            f.training.initial_val_loss,
            f.training.best_val_loss,
            100.0 * f.baseline_accuracy,
            f.baseline_threshold,
            100.0 * f.adapter_accuracy,
            f.adapter_threshold
        );
    }
    println!(
        "baseline: {:.2}% ± {:.2}%  AUC {:.5}  TAR@FAR1e-3 {:.2}%",
        100.0 * cv.baseline.mean,
        100.0 * cv.baseline.std,
        cv.baseline_auc,
        100.0 * cv.baseline_tar_at_far_1e_3
    );
    println!(
        "adapter:  {:.2}% ± {:.2}%  AUC {:.5}  TAR@FAR1e-3 {:.2}%   ({:.1?} for 10 trainings)",
        100.0 * cv.adapter.mean,
        100.0 * cv.adapter.std,
        cv.adapter_auc,
        100.0 * cv.adapter_tar_at_far_1e_3,
        t0.elapsed()
    );
    // Which pairs change: decided right by one and wrong by the other.
    let thr_b: Vec<f64> = cv.folds.iter().map(|f| f.baseline_threshold).collect();
    let thr_a: Vec<f64> = cv.folds.iter().map(|f| f.adapter_threshold).collect();
    let (mut fixed, mut broken) = (0, 0);
    for (b, a) in &cv.distances {
        let rb = (b.distance <= thr_b[b.fold]) == b.same;
        let ra = (a.distance <= thr_a[a.fold]) == a.same;
        match (rb, ra) {
            (false, true) => fixed += 1,
            (true, false) => broken += 1,
            _ => {}
        }
    }
    println!("pairs the adapter gets right and the baseline wrong: {fixed}; the reverse: {broken}");
    let roc_path = out.join("roc_lfw_adapter.png");
    plot_roc(
        &roc_path,
        "LFW View 2: with and without the adapter (10-fold)",
        &[
            ("dlib, L2", &cv.baseline_roc),
            (
                &format!("adapter {}, trained on the other 9 folds", cfg.kind),
                &cv.adapter_roc,
            ),
        ],
    )?;
    let loss_path = out.join("loss_fold0.png");
    plot_loss(
        &loss_path,
        &format!("Triplet loss, adapter {} (LFW folds 1-9)", cfg.kind),
        &cv.folds[0].training.loss_series(),
    )?;
    println!("pictures: {}, {}", roc_path.display(), loss_path.display());
    if has("--json") {
        println!("{}", serde_json::to_string_pretty(&cv)?);
    }
    Ok(())
}
