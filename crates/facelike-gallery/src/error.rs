//! Errors of the gallery: each names the file or folder it is about.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing or searching a gallery.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The store file exists but is not a readable gallery (damaged, truncated, not a redb file,
    /// or written by an incompatible version).
    #[error("gallery store {path} is unreadable: {detail}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What was wrong, from redb or the decoder.
        detail: String,
    },
    /// The store file is held by another process (an index run still going?).
    #[error("gallery store {path} is in use by another process: {detail}")]
    Locked {
        /// The store file.
        path: PathBuf,
        /// redb's message.
        detail: String,
    },
    /// `open` was asked for a gallery that does not exist.
    #[error("no gallery at {path} (create one by indexing a folder into it)")]
    NotFound {
        /// The gallery folder asked for.
        path: PathBuf,
    },
    /// Descriptors of another space (model, normalisation, adapter) than the gallery's.
    #[error("gallery {path} holds {stored} descriptors; refusing to mix in {given}")]
    KindMismatch {
        /// The gallery folder.
        path: PathBuf,
        /// Label of the gallery's descriptor kind
        /// ([`DescriptorKind::label`](facelike_types::DescriptorKind::label)).
        stored: String,
        /// Label of the kind offered.
        given: String,
    },
    /// An operation of the key-value store failed after the file was opened.
    #[error("gallery store {path}: {detail}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// redb's message.
        detail: String,
    },
    /// A cache file beside the store (matrix or HNSW index) is damaged. Caches are rebuilt from
    /// the store, so callers normally never see this.
    #[error("gallery cache {path} is unreadable: {detail}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// A caller-side mistake: bad argument values.
    #[error("{0}")]
    Invalid(String),
}

/// Result with [`GalleryError`].
pub type Result<T, E = GalleryError> = std::result::Result<T, E>;

impl GalleryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GalleryError::Io {
            path: path.into(),
            source,
        }
    }
}
