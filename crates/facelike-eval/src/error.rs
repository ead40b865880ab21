//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate; each variant names the file or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {problem}")]
    /// A pairs or people file is malformed.
    Parse {
        /// The file (or the name given for parsed text).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        problem: String,
    },
    /// Inputs or settings that cannot be used (too few identities, a fold without pairs…);
    /// the message says which.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot draw {path}: {problem}")]
    /// A PNG could not be drawn or saved.
    Plot {
        /// The picture's path.
        path: PathBuf,
        /// The drawing backend's message.
        problem: String,
    },
    /// An adapter could not be serialised, written or read.
    #[error(transparent)]
    Adapter(#[from] facelike_types::AdapterError),
}

/// `Result` with [`EvalError`] as the default error.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
