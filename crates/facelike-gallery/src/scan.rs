//! Finding the photos of a folder and naming their identities.
//!
//! Layout: `DIR/<identity>/*.jpg` gives every photo under `DIR/<identity>/` (at any depth) the
//! identity `<identity>`; a photo directly in `DIR` takes its file stem (`DIR/alice.jpg` is
//! `alice`), which is how face_recognition's `known_people` folders are laid out.

use crate::error::{GalleryError, Result};
use facelike_image::WalkOptions;
use std::path::{Path, PathBuf};

/// The shared file hash (lower-case hex SHA-256), re-exported where the gallery always had it.
pub use facelike_image::sha256_file;

/// A photo to index and the identity its faces get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSource {
    /// The photo file.
    pub path: PathBuf,
    /// The name every face found in it is stored under.
    pub identity: String,
}

/// Every photo under `dir`, sorted by path, with identities from the folder layout (see the
/// module doc). Photos are found by [`facelike_image::image_files`]: by extension
/// ([`facelike_image::IMAGE_EXTENSIONS`], any case), hidden files and folders (names starting
/// with `.`) skipped, every folder entered once however many links lead to it, and `exclude`
/// left out (pass the gallery folder when it sits inside `dir`).
pub fn scan_directory(dir: &Path, exclude: Option<&Path>) -> Result<Vec<ImageSource>> {
    let meta = std::fs::metadata(dir).map_err(|e| GalleryError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(GalleryError::Invalid(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let opts = WalkOptions {
        exclude: exclude.into_iter().map(Path::to_path_buf).collect(),
        ..Default::default()
    };
    let files = facelike_image::image_files(&[dir], &opts)
        .map_err(|e| GalleryError::io(e.path, e.source))?;
    Ok(files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(dir)
                .expect("the walk stays under its folder");
            let mut parts = rel.components();
            let first = parts
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let identity = if parts.next().is_some() {
                // DIR/<identity>/…/photo
                first.unwrap_or_default()
            } else {
                // DIR/photo: its stem.
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            ImageSource { path, identity }
        })
        .collect())
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
