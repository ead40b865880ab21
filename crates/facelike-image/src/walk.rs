//! Finding the image files among paths given by a user: the one list of extensions taken as
//! images, and the one folder walker every tool of the workspace uses.
//!
//! [`crate::load`] chooses its decoder from a file's content, never from its name, so a file
//! named explicitly is always taken whatever its extension. The extensions only decide which
//! files a *folder walk* picks up: [`IMAGE_EXTENSIONS`] lists exactly the conventional names of
//! the formats the loader decodes ([`Format::extensions`]), nothing it would refuse (no TIFF).
//!
//! [`image_files`] walks folders recursively in sorted order, skips hidden entries, can leave
//! out some folders (the gallery's own folder when it sits inside the photo folder), and
//! enters every folder at most once, recognised by its (device, inode), so symbolic-link loops
//! (`ln -s . again`) end and each file is listed once.

use crate::Format;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The file extensions (lower case) a folder walk takes as images: those of every
/// [`Format`] the loader decodes, in [`Format::ALL`] order. Matched case-insensitively.
pub const IMAGE_EXTENSIONS: [&str; 11] = [
    "jpg", "jpeg", "png", "gif", "webp", "bmp", "pbm", "pgm", "ppm", "pnm", "pam",
];

/// Whether `path`'s extension is one of [`IMAGE_EXTENSIONS`] (ignoring case).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// A folder that could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read folder {}: {source}", path.display())]
pub struct WalkError {
    /// The folder whose listing failed.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

/// How [`image_files`] walks folders. The default walks every depth, skips hidden entries and
/// excludes nothing.
#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    /// Also take entries whose names start with `.` (skipped by default: `.git`, `.thumbnails`,
    /// macOS's `._photo.jpg` resource forks). Paths given explicitly are taken either way.
    pub include_hidden: bool,
    /// Folders (or files) never entered nor listed, recognised by identity (device and inode),
    /// not by spelling. Paths that do not exist are ignored.
    pub exclude: Vec<PathBuf>,
    /// How deep files are taken below each given folder: `Some(1)` lists only its own files,
    /// `Some(2)` also those of its sub-folders, `None` every depth.
    pub max_depth: Option<usize>,
}

/// The files to process among `paths`, in order: a path that is not a folder is taken as it is
/// (whatever its extension, even if it does not exist: loading it reports the problem); a
/// folder gives the image files ([`is_image_path`]) below it, sorted by path (names compared
/// byte-wise, each folder's files and sub-folders in one order, depth first).
///
/// Within one call, every folder is entered at most once, recognised by (device, inode): a
/// folder reached again through a symbolic link (a loop, or a second link to the same folder)
/// or given twice gives nothing the second time, so every file of a folder is listed once.
/// Entries whose metadata cannot be read (a dangling link) are treated as files.
pub fn image_files<P: AsRef<Path>>(
    paths: &[P],
    opts: &WalkOptions,
) -> Result<Vec<PathBuf>, WalkError> {
    let mut w = Walker {
        opts,
        excluded: opts
            .exclude
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| file_id(p, &m)))
            .collect(),
        visited: HashSet::new(),
        out: Vec::new(),
    };
    for p in paths {
        let p = p.as_ref();
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let id = file_id(p, &m);
                if !w.excluded.contains(&id) && w.visited.insert(id) {
                    w.walk(p, 1)?;
                }
            }
            _ => w.out.push(p.to_path_buf()),
        }
    }
    Ok(w.out)
}

struct Walker<'a> {
    opts: &'a WalkOptions,
    excluded: HashSet<FileId>,
    visited: HashSet<FileId>,
    out: Vec<PathBuf>,
}

impl Walker<'_> {
    /// Lists `dir`, whose entries lie at `depth` below the given folder.
    fn walk(&mut self, dir: &Path, depth: usize) -> Result<(), WalkError> {
        let err = |source| WalkError {
            path: dir.to_path_buf(),
            source,
        };
        let mut names: Vec<OsString> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(err)? {
            names.push(e.map_err(err)?.file_name());
        }
        names.sort();
        for name in names {
            if !self.opts.include_hidden && name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = dir.join(&name);
            let meta = std::fs::metadata(&path).ok();
            let id = meta.as_ref().map(|m| file_id(&path, m));
            if id.as_ref().is_some_and(|id| self.excluded.contains(id)) {
                continue;
            }
            match (meta, id) {
                (Some(m), Some(id)) if m.is_dir() => {
                    let deeper = self.opts.max_depth.is_none_or(|d| depth < d);
                    if deeper && self.visited.insert(id) {
                        self.walk(&path, depth + 1)?;
                    }
                }
                _ => {
                    if is_image_path(&path) {
                        self.out.push(path);
                    }
                }
            }
        }
        Ok(())
    }
}

/// What identifies a file or folder whatever the path that reaches it.
#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(_path: &Path, m: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// Without inodes, the canonical path (links resolved) stands for the identity.
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(not(unix))]
fn file_id(path: &Path, _m: &std::fs::Metadata) -> FileId {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Format {
    /// Every format [`crate::load`] decodes.
    pub const ALL: [Format; 6] = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Webp,
        Format::Bmp,
        Format::Pnm,
    ];

    /// The conventional file extensions (lower case) of the format: together, in
    /// [`Format::ALL`] order, they make [`IMAGE_EXTENSIONS`].
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Jpeg => &["jpg", "jpeg"],
            Format::Png => &["png"],
            Format::Gif => &["gif"],
            Format::Webp => &["webp"],
            Format::Bmp => &["bmp"],
            // P1/P4 bitmaps, P2/P5 greymaps, P3/P6 pixmaps, P7 arbitrary maps.
            Format::Pnm => &["pbm", "pgm", "ppm", "pnm", "pam"],
        }
    }
}
