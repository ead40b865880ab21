//! A deterministic stand-in for the face encoder, shared by the crash-test child process
//! (`gallery-crash-writer`) and the gallery tests. Moved here from `facelike_gallery::testing`.

use crate::synthetic::Rng;
use facelike::{Descriptor, Point, Rect};
use facelike_gallery::NewFace;
use sha2::{Digest, Sha256};

/// Faces "found" in a file's bytes: content starting with `fail` fails, `none` has no
/// face, `two` has two faces, anything else one. Descriptors derive from the content's
/// hash, so a test can recompute what must be stored.
pub fn fake_faces(bytes: &[u8]) -> Result<Vec<NewFace>, String> {
    if bytes.starts_with(b"fail") {
        return Err("cannot decode: fake failure".into());
    }
    let n = if bytes.starts_with(b"none") {
        0
    } else if bytes.starts_with(b"two") {
        2
    } else {
        1
    };
    Ok((0..n).map(|i| fake_face(bytes, i)).collect())
}

/// The `i`-th fake face of some content.
pub fn fake_face(bytes: &[u8], i: u32) -> NewFace {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(i.to_le_bytes());
    let seed = h.finalize();
    let mut rng = Rng::new(u64::from_le_bytes(seed[..8].try_into().unwrap()));
    let d: [f32; 128] = std::array::from_fn(|_| (rng.gaussian() * 0.05) as f32);
    NewFace {
        rect: Rect::new(10 * i as i64, 20, 10 * i as i64 + 80, 100),
        landmarks: (0..5).map(|k| Point::new(k, 2 * k + i as i64)).collect(),
        descriptor: Descriptor(d),
        thumbnail_png: Some(seed.to_vec().repeat(32)),
    }
}
