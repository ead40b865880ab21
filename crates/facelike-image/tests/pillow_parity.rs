//! Pixels of real photos (from `../shared/data`) equal Pillow's `convert("RGB")`, via sha256
//! digests recorded with Pillow 13.0.0 in `tests/data/pillow_rgb_sha256.tsv`.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("FACELIKE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let data = dir.join("data");
    assert!(
        data.is_dir(),
        "test data missing: expected the shared folder at {} (set FACELIKE_SHARED to the folder \
         holding data/ and golden/; CI provides it beside the repository)",
        dir.display()
    );
    data
}

#[test]
fn decoded_pixels_equal_pillow() {
    let data = shared_data();
    let table = include_str!("data/pillow_rgb_sha256.tsv");
    let opts = facelike_image::LoadOptions {
        exif_orientation: false,
        ..Default::default()
    };
    let mut checked = 0;
    let mut mismatched = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let img = facelike_image::load_with(data.join(f[0]), &opts).unwrap();
        assert_eq!(
            (img.width().to_string(), img.height().to_string()),
            (f[2].to_string(), f[3].to_string()),
            "{}",
            f[0]
        );
        let digest = format!("{:x}", Sha256::digest(img.as_raw()));
        if digest != f[4] {
            mismatched.push(format!("{} ({})", f[0], f[1]));
        }
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} images checked");
    assert!(
        mismatched.is_empty(),
        "pixels differ from Pillow for: {mismatched:?}"
    );
}
