//! `facelike eval pairs|folder` and `facelike train`: verification benchmark and triplet-loss
//! adapter training, over facelike-eval.

use crate::opts::EncodeArgs;
use crate::progress::Progress;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use facelike_api::eval::{
    sample_pairs, scan_labelled_folder, AdapterKind, EvalOptions, Mining, PairList, SampleConfig,
    ThresholdRule, TrainConfig, UndetectedPolicy, VerifyOptions,
};
use facelike_api::Metric;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// LFW View 2 style verification on a pairs file (LFW pairs.txt, or a TSV from `eval folder`).
    Pairs(PairsArgs),
    /// The same protocol on a labelled folder (`DIR/<identity>/*`), pairs sampled with a seed.
    Folder(FolderArgs),
}

#[derive(Args)]
pub struct ProtocolArgs {
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Pairs with a face that was not detected: reject (distance +inf, the default), worst, or
    /// exclude.
    #[arg(long, default_value = "reject")]
    pub undetected: UndetectedPolicy,
    /// Threshold choice on the nine training folds: range-midpoint (default) or widest-interval.
    #[arg(long, default_value = "range-midpoint")]
    pub threshold_rule: ThresholdRule,
    /// Where HOG finds no face, try the CNN detector (upsample 1) before giving up.
    #[arg(long)]
    pub cnn_fallback: bool,
    /// Where no face is found, describe this fixed rectangle (L,T,R,B) instead — the LFW
    /// descriptors in ../shared/golden used the median LFW rect 67,80,175,187.
    #[arg(long, value_parser = crate::opts::parse_rect)]
    pub fallback_rect: Option<facelike_api::Rect>,
    /// Write the ROC curve picture here (PNG).
    #[arg(long)]
    pub roc: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub encode: EncodeArgs,
}

#[derive(Args)]
pub struct PairsArgs {
    #[arg(long)]
    pub pairs: PathBuf,
    /// Folder the pair paths are relative to (LFW: the folder of person folders).
    #[arg(long)]
    pub root: PathBuf,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
}

#[derive(Args)]
pub struct FolderArgs {
    pub dir: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
    #[arg(long, default_value_t = 300)]
    pub matched: usize,
    #[arg(long, default_value_t = 300)]
    pub mismatched: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save the sampled pairs (TSV) to rerun them with `eval pairs`.
    #[arg(long)]
    pub save_pairs: Option<PathBuf>,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
}

pub fn eval(cmd: &EvalCommand) -> Result<usize> {
    match cmd {
        EvalCommand::Pairs(a) => {
            let pairs = PairList::read(&a.pairs)?;
            run_protocol(&pairs, &a.root, &a.protocol)
        }
        EvalCommand::Folder(a) => {
            let ids = scan_labelled_folder(&a.dir)?;
            let pairs = sample_pairs(
                &ids,
                &SampleConfig {
                    folds: a.folds,
                    matched_per_fold: a.matched,
                    mismatched_per_fold: a.mismatched,
                    seed: a.seed,
                },
            )?;
            if let Some(p) = &a.save_pairs {
                pairs.write_tsv(p)?;
            }
            run_protocol(&pairs, &a.dir, &a.protocol)
        }
    }
}

fn run_protocol(pairs: &PairList, root: &Path, a: &ProtocolArgs) -> Result<usize> {
    let progress = Progress::new(pairs.unique_images().len() as u64, "images");
    let r = facelike_api::eval::verify_pairs(
        pairs,
        root,
        &VerifyOptions {
            encode: a.encode.options(),
            protocol: EvalOptions {
                metric: a.metric,
                undetected: a.undetected,
                threshold_rule: a.threshold_rule,
                ..Default::default()
            },
            cnn_fallback: a.cnn_fallback,
            fallback_rect: a.fallback_rect,
            roc: a.roc.clone(),
        },
        &|error| {
            if let Some(e) = error {
                progress.println(&format!("error: {e}"));
            }
            progress.inc();
        },
    )?;
    progress.finish();
    if a.json {
        println!("{}", serde_json::to_string(&r.report)?);
    } else {
        println!("{}", r.report.summary());
    }
    Ok(r.errors.len())
}

#[derive(Args)]
pub struct TrainArgs {
    /// A gallery of raw dlib descriptors (made by `facelike index`).
    #[arg(long, short)]
    pub gallery: PathBuf,
    /// The adapter file to write (safetensors).
    #[arg(long, short)]
    pub out: PathBuf,
    /// linear, or residual (a 128-H-128 MLP with a skip connection).
    #[arg(long, default_value = "linear")]
    pub kind: String,
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// semihard (FaceNet) or batchhard.
    #[arg(long, default_value = "semihard")]
    pub mining: Mining,
    #[arg(long, default_value_t = 0.2)]
    pub alpha: f64,
    /// P identities per batch.
    #[arg(long, default_value_t = 32)]
    pub identities: usize,
    /// K faces per identity.
    #[arg(long, default_value_t = 4)]
    pub faces: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-3)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 60)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub patience: usize,
    /// Share of identities held out for validation and early stopping.
    #[arg(long, default_value_t = 0.1)]
    pub validation: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Loss-curve picture (PNG); default: OUT with .png.
    #[arg(long)]
    pub loss_png: Option<PathBuf>,
}

pub fn train(a: &TrainArgs) -> Result<usize> {
    let kind = match a.kind.as_str() {
        "linear" => AdapterKind::Linear,
        "residual" | "mlp" => AdapterKind::Residual { hidden: a.hidden },
        other => bail!("unknown adapter kind {other:?}: use linear or residual"),
    };
    let cfg = TrainConfig {
        kind,
        alpha: a.alpha,
        identities_per_batch: a.identities,
        faces_per_identity: a.faces,
        mining: a.mining,
        learning_rate: a.lr,
        weight_decay: a.weight_decay,
        max_epochs: a.epochs,
        patience: a.patience,
        validation_fraction: a.validation,
        seed: a.seed,
        ..Default::default()
    };
    let t = facelike_api::eval::train(&a.gallery, &a.out, a.loss_png.as_deref(), &cfg, |e| {
        eprintln!(
            "epoch {:>3}/{}: train loss {:.5}  active {:.1}%  validation loss {:.5}{}",
            e.epoch,
            e.max_epochs,
            e.train_loss,
            100.0 * e.active_fraction,
            e.val_loss,
            if e.improved { "  (best)" } else { "" }
        );
    })?;
    let report = &t.report;
    println!(
        "{}",
        serde_json::json!({"adapter": t.adapter.display().to_string(), "loss_curve": t.loss_curve.display().to_string(), "best_epoch": report.best_epoch,
            "initial_val_loss": report.initial_val_loss, "best_val_loss": report.best_val_loss, "threshold": report.threshold,
            "train_identities": report.train_identities, "val_identities": report.val_identities, "stopped_early": report.stopped_early})
    );
    Ok(0)
}
