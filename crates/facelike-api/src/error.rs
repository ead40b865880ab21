//! Every way a job can fail; each message names the file or input at fault.

use std::path::PathBuf;

/// An error from one of the jobs. Messages are meant for people: they name the file and the
/// problem, and the front ends print them as they are.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A model file is missing, truncated or not the right file.
    #[error(transparent)]
    Model(#[from] facelike::ModelError),
    /// An image could not be read or decoded (the message names the file).
    #[error(transparent)]
    Image(#[from] facelike::ImageError),
    /// A folder could not be listed (the message names it).
    #[error(transparent)]
    Walk(#[from] facelike_image::WalkError),
    /// The engine refused an input (a rectangle outside the image, a chip of the wrong size).
    #[error("{0}")]
    Encode(String),
    /// The gallery could not be read or written.
    #[error(transparent)]
    Gallery(#[from] facelike_gallery::GalleryError),
    /// A PostgreSQL gallery could not be reached, read or written (one line naming the
    /// server, never the password).
    #[error(transparent)]
    Postgres(#[from] facelike_pg::PgError),
    /// An adapter file could not be read.
    #[error("loading adapter {path}: {source}")]
    Adapter {
        /// The adapter file.
        path: PathBuf,
        /// What went wrong.
        source: facelike_types::AdapterError,
    },
    /// The evaluation or training failed.
    #[error(transparent)]
    Eval(#[from] facelike_eval::EvalError),
    /// A picture of the face space could not be made.
    #[error("{0}")]
    Viz(String),
    /// A file or folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot read folder", ...).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The job's inputs do not make sense together (the message says why).
    #[error("{0}")]
    Invalid(String),
}

impl From<facelike::EncodeError> for ApiError {
    fn from(e: facelike::EncodeError) -> Self {
        match e {
            facelike::EncodeError::Model(m) => ApiError::Model(m),
            other => ApiError::Encode(other.to_string()),
        }
    }
}

macro_rules! viz_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::Viz(e.to_string())
            }
        }
    )*};
}
viz_errors!(
    facelike_viz::picture::PictureError,
    facelike_viz::projector::ProjectorError,
    facelike_viz::map::MapError,
    facelike_viz::pca::PcaError
);

/// The result type of the jobs.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
