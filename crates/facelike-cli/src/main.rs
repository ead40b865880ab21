//! `facelike`: the command-line shell over the facelike library.

mod fetch;

use anyhow::Result;
use clap::{Parser, Subcommand};
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

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
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
    }
    Ok(())
}
