//! Pillow's `Image.thumbnail((1600, 1600), LANCZOS)` (what face_recognition's CLI does to big
//! photos) reproduced bit for bit: sha256 digests recorded with Pillow 13.0.0.
//!
//! Pillow 13 resizes some tall images vertically first (python-pillow/Pillow#9549), with a
//! rule we have not reproduced; facelike always resizes horizontally first, as Pillow 12 and
//! earlier do; for the two photos here Pillow 13 also goes horizontally first.

use sha2::{Digest, Sha256};

#[test]
fn lanczos_thumbnails_equal_pillow() {
    let cases = [
        (
            "face_recognition/tests/test_images/obama3.jpg",
            (983, 1600),
            "f8277299b6cf1eb674e769f05a86efb4fb3a7cd25e6c6414262635762f5c3fa2",
        ),
        (
            "face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
            (1600, 1142),
            "8303eee6da6bc1983830ac9901d9dd9c8b17d6f0f13e2e520b028cd971daad12",
        ),
    ];
    let opts = facelike_image::LoadOptions {
        exif_orientation: false,
        ..Default::default()
    };
    for (rel, size, digest) in cases {
        let Some(path) = facelike_testdata::photo(rel) else {
            eprintln!("{}", facelike_testdata::skip_note(rel));
            continue;
        };
        let img = facelike_image::load_with(path, &opts).unwrap();
        let (w, h) =
            facelike_image::resample::pillow_thumbnail_size(img.width(), img.height(), 1600, 1600)
                .unwrap();
        assert_eq!((w, h), size, "{rel}");
        let t = facelike_image::resample::pillow_lanczos_resize(&img, w, h);
        assert_eq!(format!("{:x}", Sha256::digest(t.as_raw())), digest, "{rel}");
    }
    assert_eq!(
        facelike_image::resample::pillow_thumbnail_size(910, 1137, 1600, 1600),
        None
    );
}
