//! Pixels of real photos (from `../shared/data`) equal Pillow's `convert("RGB")`, via sha256
//! digests recorded with Pillow 13.0.0 in `tests/data/pillow_rgb_sha256.tsv`. Without the
//! shared folder, on the photos of the table that the sample photos equal.

use sha2::{Digest, Sha256};

#[test]
fn decoded_pixels_equal_pillow() {
    let full = facelike_testdata::shared_dir().is_some();
    let table = include_str!("data/pillow_rgb_sha256.tsv");
    let opts = facelike_image::LoadOptions {
        exif_orientation: false,
        ..Default::default()
    };
    let mut checked = 0;
    let mut mismatched = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let Some(path) = facelike_testdata::photo(f[0]) else {
            continue;
        };
        let img = facelike_image::load_with(path, &opts).unwrap();
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
    if full {
        assert!(checked >= 70, "only {checked} images checked");
    } else {
        eprintln!(
            "{checked} sample photos checked; {}",
            facelike_testdata::skip_note("the other photos of pillow_rgb_sha256.tsv")
        );
        assert!(checked >= 7, "only {checked} images checked");
    }
    assert!(
        mismatched.is_empty(),
        "pixels differ from Pillow for: {mismatched:?}"
    );
}
