//! The committed core golden data (`golden/core.json`) is what the shared folder says: its
//! entries are those of `shared/golden/face_recognition.json` for the sample photos, its chip
//! digests are those of dlib's chip PNGs, and the photos it maps to the samples have the
//! recorded sha256. Regenerate it with `examples/make_core.rs`.

use facelike_testdata as td;
use serde_json::Value;

#[test]
fn core_golden_data_equals_the_shared_golden_data() {
    let core: Value = serde_json::from_str(include_str!("../golden/core.json")).unwrap();
    let samples = core["samples"].as_array().unwrap();
    let images = core["images"].as_array().unwrap();
    assert_eq!(samples.len(), 7);
    assert_eq!(images.len(), 7);
    let Some(shared) = td::shared_dir() else {
        eprintln!(
            "{}",
            td::skip_note("core.json against the shared golden data")
        );
        return;
    };
    for s in samples {
        for rel in s["shared"].as_array().unwrap() {
            let p = shared.join("data").join(rel.as_str().unwrap());
            assert_eq!(
                td::sha256_hex(&std::fs::read(&p).unwrap()),
                s["sha256"].as_str().unwrap(),
                "{}",
                p.display()
            );
        }
    }
    let golden = shared.join("golden");
    let fr: Value = serde_json::from_str(
        &std::fs::read_to_string(golden.join("face_recognition.json")).unwrap(),
    )
    .unwrap();
    let mut faces = 0;
    for img in images {
        let name = img["image"].as_str().unwrap();
        let rel = format!("face_recognition/tests/test_images/{name}");
        let want = fr["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["image"] == rel.as_str())
            .unwrap_or_else(|| panic!("{rel} not in face_recognition.json"));
        let mut ours = img.clone();
        ours["image"] = Value::from(rel.clone());
        for (face, w) in ours["faces"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(want["faces"].as_array().unwrap())
        {
            let digest = face
                .as_object_mut()
                .unwrap()
                .remove("chip_rgb_sha256")
                .expect("chip digest");
            let chip = facelike_image::load(golden.join(w["chip"].as_str().unwrap())).unwrap();
            assert_eq!(digest, td::sha256_hex(chip.as_raw()).as_str(), "{rel}");
            faces += 1;
        }
        assert_eq!(&ours, want, "{rel}");
    }
    assert!(faces >= 7, "{faces} faces");
}
