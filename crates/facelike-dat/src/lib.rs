//! # facelike-dat: dlib's serialisation format
//!
//! dlib saves its models (`.dat` files) with its own binary encoding: sign-and-length prefixed
//! little-endian integers, floats as mantissa/exponent integer pairs, ASCII bools, row-major
//! matrices and raw float32 tensors. This crate reads that encoding and the three record kinds
//! facelike needs: DNN networks ([`dnn`]), shape predictors ([`shape_predictor`]) and HOG
//! object detectors ([`hog`]).
//!
//! Every error names the file, the byte offset and what was expected; every length field is
//! checked against the bytes left before anything is allocated, so a truncated or corrupt file
//! is reported, never a panic or a huge allocation. The format itself, field by field, is
//! described in `docs/dlib-formats.md`.
//!
//! ```
//! use facelike_dat::DatReader;
//! let bytes = [0x02, 0x80, 0x12];
//! let mut r = DatReader::new(&bytes, "example.dat");
//! assert_eq!(r.read_signed("count").unwrap(), 4736);
//! ```

pub mod dnn;
pub mod hog;
mod mapped;
mod reader;
pub mod shape_predictor;

pub use mapped::FileBytes;
pub use reader::{read_file, DatError, DatReader, Matrix, Result, Tensor};
