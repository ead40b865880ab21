//! Child process of the gallery's `kill -9` test (crates/facelike-gallery/tests/crash.rs):
//! indexes every file of a folder into a gallery with a fake, deterministic encoder, and
//! prints `COMMITTED <store key>` for each file right after the batch holding it has been
//! committed. The test kills this process at random moments and checks that every file it
//! reported is in the store, intact.
//!
//! Usage: `gallery-crash-writer GALLERY_DIR PHOTOS_DIR BATCH_SIZE`

use facelike_gallery::{index_images, scan_directory, DescriptorKind, IndexOptions, NewFace};
use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: gallery-crash-writer GALLERY_DIR PHOTOS_DIR BATCH_SIZE");
        std::process::exit(2);
    }
    let gallery_dir = Path::new(&args[1]);
    let photos = Path::new(&args[2]);
    let batch_size: usize = args[3].parse().expect("batch size");
    let mut g = match facelike_gallery::Gallery::open_or_create(gallery_dir) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("open: {e}");
            std::process::exit(1);
        }
    };
    let sources = scan_directory(photos, None).expect("scan");
    let stdout = std::io::stdout();
    let opts = IndexOptions {
        batch_size,
        retry_failed: false,
    };
    let r = index_images(
        &mut g,
        &sources,
        &DescriptorKind::dlib_raw(),
        &opts,
        fake_encode,
        |prog| {
            if !prog.committed.is_empty() {
                let mut out = stdout.lock();
                for k in prog.committed {
                    writeln!(out, "COMMITTED {k}").unwrap();
                }
                out.flush().unwrap();
            }
        },
    );
    match r {
        Ok(s) => {
            println!(
                "DONE indexed={} skipped={} failed={} faces={}",
                s.indexed,
                s.skipped,
                s.failed.len(),
                s.faces
            );
        }
        Err(e) => {
            eprintln!("index: {e}");
            std::process::exit(1);
        }
    }
}

/// The test's stand-in for the face encoder: see `facelike_testdata::fake`.
fn fake_encode(p: &Path) -> Result<Vec<NewFace>, String> {
    let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
    // Spread the work so that kills land both while encoding and while committing.
    std::thread::sleep(std::time::Duration::from_millis(1));
    facelike_testdata::fake::fake_faces(&bytes)
}
