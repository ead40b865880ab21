//! `kill -9` at random moments loses nothing committed and never leaves the store unreadable.
//!
//! A child process (facelike-testdata's src/bin/gallery-crash-writer.rs) indexes 2,000 files in batches of 8 and
//! prints each file's store key once its batch is committed. The test SIGKILLs it at random
//! moments, reopens the gallery, runs the full integrity check, and checks that every file
//! reported committed is stored with exactly the faces the (deterministic) encoder gives it.
//! The runs resume one another; a last run completes the index.

use facelike_gallery::{Gallery, ImageStatus};
use facelike_testdata::fake::fake_faces;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 2000;

/// The child's binary, built once per test run.
fn crash_writer() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(facelike_testdata::crash_writer)
}

fn content(i: usize) -> String {
    if i.is_multiple_of(37) {
        format!("fail {i}")
    } else if i.is_multiple_of(23) {
        format!("none {i}")
    } else if i.is_multiple_of(11) {
        format!("two {i}")
    } else {
        format!("photo {i}")
    }
}

struct Run {
    committed: Vec<String>,
    finished: bool,
}

fn run_child(gallery: &Path, photos: &Path, kill_after: Option<Duration>) -> Run {
    let mut child = Command::new(crash_writer())
        .arg(gallery)
        .arg(photos)
        .arg("8")
        // Pace the child the same on any machine, so kills land mid-run.
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn crash writer");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut committed = Vec::new();
        let mut finished = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(k) = line.strip_prefix("COMMITTED ") {
                committed.push(k.to_owned());
            } else if line.starts_with("DONE") {
                finished = true;
            }
        }
        Run {
            committed,
            finished,
        }
    });
    match kill_after {
        Some(d) => {
            let t0 = Instant::now();
            while t0.elapsed() < d {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            // Child::kill sends SIGKILL on Unix: no destructor, no flush, no clean close.
            let _ = child.kill();
            let status = child.wait().unwrap();
            let run = reader.join().unwrap();
            if !run.finished {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(9), "child died otherwise: {status:?}");
            }
            run
        }
        None => {
            let status = child.wait().unwrap();
            assert!(status.success(), "crash writer failed: {status:?}");
            reader.join().unwrap()
        }
    }
}

fn check(gallery: &Path, photos: &Path, committed: &HashSet<String>) {
    let mut g = Gallery::open(gallery).unwrap_or_else(|e| panic!("reopen after kill: {e}"));
    let report = g
        .verify()
        .unwrap_or_else(|e| panic!("integrity after kill: {e}"));
    assert!(report.checksums_verified);
    let stored: HashSet<String> = g.images().unwrap().into_iter().map(|r| r.path).collect();
    for key in committed {
        assert!(stored.contains(key), "committed file {key} lost");
        let name = Path::new(key).file_stem().unwrap().to_str().unwrap();
        let i: usize = name.parse().unwrap();
        let bytes = content(i).into_bytes();
        let rec = g.image(key).unwrap().unwrap();
        let expected = fake_faces(&bytes);
        match (&rec.status, expected) {
            (ImageStatus::Failed { reason }, Err(want)) => assert_eq!(reason, &want),
            (ImageStatus::Indexed { faces }, Ok(want)) => {
                let got = g.faces(faces).unwrap();
                assert_eq!(got.len(), want.len(), "{key}");
                for (f, w) in got.iter().zip(&want) {
                    assert_eq!(f.descriptor, w.descriptor, "{key}");
                    assert_eq!(f.meta.rect, w.rect, "{key}");
                    assert_eq!(g.thumbnail(f.id).unwrap(), w.thumbnail_png, "{key}");
                }
            }
            (s, e) => panic!("{key}: stored {s:?}, expected {e:?}"),
        }
    }
    assert!(photos.is_dir());
}

#[test]
fn kill_9_at_random_moments_loses_nothing_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let gallery = tmp.path().join("gallery");
    for i in 0..FILES {
        let dir = photos.join(format!("p{:02}", i % 40));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{i}.jpg")), content(i)).unwrap();
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill-time seed {seed}");
    let mut rng = facelike_testdata::synthetic::Rng::new(seed);

    let mut committed = HashSet::new();
    let mut killed_mid_run = 0;
    for round in 0..8 {
        let ms = 20 + rng.below(160) as u64;
        let run = run_child(&gallery, &photos, Some(Duration::from_millis(ms)));
        eprintln!(
            "round {round}: killed after {ms} ms, {} files reported committed",
            run.committed.len()
        );
        if !run.finished {
            killed_mid_run += 1;
        }
        committed.extend(run.committed);
        if gallery.join("gallery.redb").exists() {
            check(&gallery, &photos, &committed);
        }
        if run.finished {
            break;
        }
    }
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} kills landed mid-run: the test exercised too little"
    );

    // A last run resumes: skips what was committed and completes the index. (A batch can be
    // committed and the process killed before it reports so: such files are skipped now too.)
    let run = run_child(&gallery, &photos, None);
    assert!(run.finished);
    committed.extend(run.committed);
    let stored: HashSet<String> = Gallery::open(&gallery)
        .unwrap()
        .images()
        .unwrap()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(stored.len(), FILES);
    assert!(committed.is_subset(&stored));
    check(&gallery, &photos, &stored);
    let g = Gallery::open(&gallery).unwrap();
    let failed = (0..FILES).filter(|i| i % 37 == 0).count();
    assert_eq!(g.meta().failed_images as usize, failed);
    let faces: usize = (0..FILES)
        .map(|i| fake_faces(content(i).as_bytes()).map_or(0, |f| f.len()))
        .sum();
    assert_eq!(g.meta().faces as usize, faces, "no face stored twice");
}
