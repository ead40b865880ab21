//! Writes `golden/core.json` from the shared folder and the sample photos:
//!
//! ```text
//! FACELIKE_SHARED=/path/to/shared cargo run --release -p facelike-testdata --example make_core
//! ```
//!
//! `samples`: each sample photo (`facelike samples fetch`), its sha256 and the photos of
//! `shared/data/` with the same bytes. `images`: the entries of
//! `shared/golden/face_recognition.json` for `face_recognition/tests/test_images/*` (the
//! samples), with `image` made relative to the samples folder and, for each face,
//! `chip_rgb_sha256`: the sha256 of dlib's chip decoded to RGB bytes (the chips themselves are
//! cut from photos and are never committed).

use facelike_testdata as td;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<String>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, root, out);
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let h = td::sha256_hex(&std::fs::read(&p).unwrap());
            out.entry(h).or_default().push(rel);
        }
    }
}

fn main() {
    let shared = td::require_shared();
    let samples = td::samples_dir();
    let mut names: Vec<String> = std::fs::read_dir(&samples)
        .unwrap_or_else(|e| panic!("{}: {e} (run `{}`)", samples.display(), td::SAMPLES_FETCH))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    names.sort();
    let data = shared.join("data");
    let mut by_hash = BTreeMap::new();
    walk(&data.join("face_recognition"), &data, &mut by_hash);
    let mut sample_list = Vec::new();
    for n in &names {
        let h = td::sha256_hex(&std::fs::read(samples.join(n)).unwrap());
        let same = by_hash.get(&h).cloned().unwrap_or_default();
        assert!(
            same.contains(&format!("face_recognition/tests/test_images/{n}")),
            "{n} differs from shared's copy"
        );
        sample_list.push(json!({"name": n, "sha256": h, "shared": same}));
    }
    let golden = shared.join("golden");
    let fr: Value = serde_json::from_str(
        &std::fs::read_to_string(golden.join("face_recognition.json")).unwrap(),
    )
    .unwrap();
    let mut images = Vec::new();
    for img in fr["images"].as_array().unwrap() {
        let rel = img["image"].as_str().unwrap();
        let Some(name) = rel.strip_prefix("face_recognition/tests/test_images/") else {
            continue;
        };
        assert!(names.iter().any(|n| n == name), "{name} is not a sample");
        let mut img = img.clone();
        img["image"] = json!(name);
        for face in img["faces"].as_array_mut().unwrap() {
            let chip = golden.join(face["chip"].as_str().unwrap());
            let rgb = facelike_image::load(&chip).unwrap();
            assert_eq!((rgb.width(), rgb.height()), (150, 150));
            face["chip_rgb_sha256"] = json!(td::sha256_hex(rgb.as_raw()));
        }
        images.push(img);
    }
    assert_eq!(images.len(), names.len());
    // One line per sample and per image: small diffs when regenerated.
    let mut out = String::from("{\n\"about\": ");
    out += &serde_json::to_string(
        "dlib 20.0.1's golden outputs (shared/golden/face_recognition.json) for face_recognition \
         1.3.0's test photos, as `facelike samples fetch` gets them; chips replaced by the sha256 \
         of their RGB bytes. Written by crates/facelike-testdata/examples/make_core.rs.",
    )
    .unwrap();
    out += ",\n\"samples\": [\n";
    let lines: Vec<String> = sample_list.iter().map(|v| v.to_string()).collect();
    out += &lines.join(",\n");
    out += "\n],\n\"images\": [\n";
    let lines: Vec<String> = images.iter().map(|v| v.to_string()).collect();
    out += &lines.join(",\n");
    out += "\n]\n}\n";
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/core.json");
    std::fs::write(&dest, out).unwrap();
    let faces: usize = images
        .iter()
        .map(|i| i["faces"].as_array().unwrap().len())
        .sum();
    eprintln!(
        "wrote {} ({} images, {faces} faces)",
        dest.display(),
        images.len()
    );
}
