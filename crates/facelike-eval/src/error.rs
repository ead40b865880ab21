use std::path::PathBuf;

/// Everything that can go wrong in this crate; each variant names the file or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {problem}")]
    Parse {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot draw {path}: {problem}")]
    Plot { path: PathBuf, problem: String },
    #[error(transparent)]
    Adapter(#[from] facelike_types::AdapterError),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;
