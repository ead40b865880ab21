//! Two small file-system rules shared by the crates above this one (it is the lowest crate of
//! the workspace they all reach, test support included, without a dependency cycle).

use std::io::Read;
use std::path::{Path, PathBuf};

/// The SHA-256 of a file's bytes, as lower-case hex (read in 64 KiB pieces, never whole).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The model directory: `$FACELIKE_MODELS`, else `$XDG_CACHE_HOME/facelike/models`, else
/// `~/.cache/facelike/models` (else `.cache/facelike/models` without a home). A variable set
/// to the empty string counts as unset.
///
/// `facelike::models::models_dir` and the test support's `models_dir` are this function.
pub fn models_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var("FACELIKE_MODELS") {
        return PathBuf::from(d);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("facelike").join("models")
}

/// The sample photos' folder (`facelike samples fetch`): `$FACELIKE_SAMPLES` (empty counts as
/// unset), else `samples/` beside [`models_dir`].
pub fn samples_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FACELIKE_SAMPLES").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    models_dir()
        .parent()
        .map(|p| p.join("samples"))
        .unwrap_or_else(|| PathBuf::from("samples"))
}
