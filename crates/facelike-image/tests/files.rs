//! The shared file hash and model-directory rule.

use facelike_image::{models_dir, sha256_file};
use std::path::PathBuf;

#[test]
fn sha256_of_a_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c");
    std::fs::write(&p, "c").unwrap();
    assert_eq!(
        sha256_file(&p).unwrap(),
        "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
    );
    // Bigger than one read.
    std::fs::write(&p, vec![0u8; 200_000]).unwrap();
    assert_eq!(sha256_file(&p).unwrap().len(), 64);
    assert!(sha256_file(&d.path().join("missing")).is_err());
}

/// The only test of this binary that touches the environment.
#[test]
fn empty_variables_count_as_unset() {
    std::env::set_var("FACELIKE_MODELS", "/m");
    assert_eq!(models_dir(), PathBuf::from("/m"));
    std::env::set_var("FACELIKE_MODELS", "");
    std::env::set_var("XDG_CACHE_HOME", "/xdg");
    assert_eq!(models_dir(), PathBuf::from("/xdg/facelike/models"));
    std::env::set_var("XDG_CACHE_HOME", "");
    std::env::set_var("HOME", "/home/someone");
    assert_eq!(
        models_dir(),
        PathBuf::from("/home/someone/.cache/facelike/models")
    );
    std::env::remove_var("FACELIKE_MODELS");
    std::env::remove_var("XDG_CACHE_HOME");
    assert_eq!(
        models_dir(),
        PathBuf::from("/home/someone/.cache/facelike/models")
    );
}
