//! Finding the photos of a folder and naming their identities.
//!
//! Layout: `DIR/<identity>/*.jpg` gives every photo under `DIR/<identity>/` (at any depth) the
//! identity `<identity>`; a photo directly in `DIR` takes its file stem (`DIR/alice.jpg` is
//! `alice`), which is how face_recognition's `known_people` folders are laid out.

use crate::error::{GalleryError, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// File extensions (lower case) taken as photos.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "bmp", "pnm", "ppm", "pgm", "pbm",
];

/// A photo to index and the identity its faces get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSource {
    pub path: PathBuf,
    pub identity: String,
}

/// Whether a path names a photo by its extension.
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Every photo under `dir`, sorted by path, with identities from the folder layout (see the
/// module doc). Hidden files and folders (names starting with `.`) are skipped, and so is
/// `exclude` (pass the gallery folder when it sits inside `dir`).
pub fn scan_directory(dir: &Path, exclude: Option<&Path>) -> Result<Vec<ImageSource>> {
    let meta = std::fs::metadata(dir).map_err(|e| GalleryError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(GalleryError::Invalid(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let exclude = exclude.and_then(|p| std::fs::canonicalize(p).ok());
    let mut out = Vec::new();
    for entry in read_dir_sorted(dir)? {
        if is_hidden(&entry) || is_excluded(&entry, exclude.as_deref()) {
            continue;
        }
        if entry.is_dir() {
            let identity = file_name(&entry);
            let mut files = Vec::new();
            walk(&entry, exclude.as_deref(), &mut files)?;
            out.extend(files.into_iter().map(|path| ImageSource {
                path,
                identity: identity.clone(),
            }));
        } else if is_image_path(&entry) {
            let identity = entry
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(ImageSource {
                path: entry,
                identity,
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, exclude: Option<&Path>, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in read_dir_sorted(dir)? {
        if is_hidden(&entry) || is_excluded(&entry, exclude) {
            continue;
        }
        if entry.is_dir() {
            walk(&entry, exclude, out)?;
        } else if is_image_path(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| GalleryError::io(dir, e))?;
    let mut v = Vec::new();
    for e in rd {
        v.push(e.map_err(|e| GalleryError::io(dir, e))?.path());
    }
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_hidden(p: &Path) -> bool {
    file_name(p).starts_with('.')
}

fn is_excluded(p: &Path, exclude: Option<&Path>) -> bool {
    match exclude {
        Some(x) => std::fs::canonicalize(p).map(|c| c == x).unwrap_or(false),
        None => false,
    }
}

/// SHA-256 of a file's bytes, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| GalleryError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| GalleryError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(to_hex(&h.finalize()))
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_from_folders_and_stems() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("alice/holiday")).unwrap();
        std::fs::create_dir_all(root.join("bob")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for (p, c) in [
            ("alice/1.jpg", "a1"),
            ("alice/holiday/2.PNG", "a2"),
            ("alice/notes.txt", "x"),
            ("bob/b.jpeg", "b"),
            ("carol.jpg", "c"),
            (".git/x.jpg", "g"),
            ("readme.md", "r"),
        ] {
            std::fs::write(root.join(p), c).unwrap();
        }
        let got: Vec<(String, String)> = scan_directory(root, None)
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s.path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    s.identity,
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("alice/1.jpg", "alice"),
            ("alice/holiday/2.PNG", "alice"),
            ("bob/b.jpeg", "bob"),
            ("carol.jpg", "carol"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            sha256_file(&root.join("carol.jpg")).unwrap(),
            // sha256("c")
            "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
        );
    }
}
