//! The `facelike` binary end to end: output format, and clear errors with non-zero exits for
//! missing models, bad model files, unreadable images and rectangles outside the image.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_facelike"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into(),
        String::from_utf8_lossy(&stderr).into(),
    )
}

fn obama() -> PathBuf {
    facelike_testdata::test_image("obama.jpg")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("facelike-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn encode_with_rect_prints_dlibs_landmarks_and_descriptor() {
    let models = facelike_testdata::models_dir();
    let (code, out, err) = run(bin()
        .env("FACELIKE_MODELS", &models)
        .args(["encode", "--rect", "349,142,617,409"])
        .arg(obama()));
    assert_eq!(code, 0, "{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["width"], 910);
    assert_eq!(v["height"], 1137);
    let face = &v["faces"][0];
    assert_eq!(face["rect"], serde_json::json!([349, 142, 617, 409]));
    assert_eq!(
        face["landmarks"],
        serde_json::json!([[570, 216], [528, 215], [424, 217], [463, 216], [496, 295]])
    );
    let e = floats(&face["embedding"]);
    assert_eq!(e.len(), 128);
    // docs/dlib-algorithms.md#reference-values: descriptor[0:4] of obama.jpg.
    for (a, b) in e.iter().zip([-0.091434, 0.130861, 0.013144, -0.057884]) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn encode_detects_faces_like_face_recognition() {
    let models = facelike_testdata::models_dir();
    let (code, out, err) = run(bin()
        .env("FACELIKE_MODELS", &models)
        .arg("encode")
        .arg(obama()));
    assert_eq!(code, 0, "{err}");
    let face = &json_lines(&out)[0]["faces"][0];
    // face_recognition's test_face_locations: (142, 617, 409, 349).
    assert_eq!(face["location"], serde_json::json!([142, 617, 409, 349]));
    assert!((face["score"].as_f64().unwrap() - 1.98541).abs() < 1e-4);
}

#[test]
fn encode_rects_file_and_normalize() {
    let models = facelike_testdata::models_dir();
    let d = tmpdir("rects");
    let list = d.join("rects.jsonl");
    std::fs::write(
        &list,
        format!(
            "{{\"image\": {:?}, \"rects\": [[349,142,617,409]]}}\n{{\"image\": {:?}, \"rects\": [[1,1,50,50]]}}\n",
            obama(),
            d.join("missing.jpg")
        ),
    )
    .unwrap();
    let (code, out, err) = run(bin()
        .env("FACELIKE_MODELS", &models)
        .args(["encode", "--normalize", "--rects"])
        .arg(&list));
    // One good line, one error line for the missing file; exit 2 = some files failed.
    assert_eq!(code, 2, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    let e = floats(&lines[0]["faces"][0]["embedding"]);
    let norm = e.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    assert!(lines[1]["error"].as_str().unwrap().contains("missing.jpg"));
    assert!(err.contains("missing.jpg"));
}

#[test]
fn missing_models_name_the_file_and_the_fetch_command() {
    let d = tmpdir("nomodels");
    let (code, _, err) = run(bin()
        .env("FACELIKE_MODELS", &d)
        .args(["encode", "--rect", "1,1,100,100"])
        .arg(obama()));
    assert_eq!(code, 1);
    assert!(
        err.contains("shape_predictor_5_face_landmarks.dat")
            || err.contains("dlib_face_recognition_resnet_model_v1.dat"),
        "{err}"
    );
    assert!(err.contains("facelike models fetch"), "{err}");
}

#[test]
fn bad_model_files_are_reported() {
    let models = facelike_testdata::models_dir();
    let d = tmpdir("badmodels");
    for f in facelike_testdata::MODEL_FILES {
        std::fs::copy(models.join(f), d.join(f)).unwrap();
    }
    // Truncated ResNet: caught by the size check, with the fetch command.
    let resnet = d.join("dlib_face_recognition_resnet_model_v1.dat");
    let bytes = std::fs::read(&resnet).unwrap();
    std::fs::write(&resnet, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err) = run(bin()
        .env("FACELIKE_MODELS", &d)
        .args(["encode", "--rect", "1,1,100,100"])
        .arg(obama()));
    assert_eq!(code, 1);
    assert!(
        err.contains("dlib_face_recognition_resnet_model_v1.dat") && err.contains("truncated"),
        "{err}"
    );
    // Same size but corrupt content: a parse error naming the file and the byte offset.
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[40..80] {
        *b = 0xEE;
    }
    std::fs::write(&resnet, &corrupt).unwrap();
    let (code, _, err) = run(bin()
        .env("FACELIKE_MODELS", &d)
        .args(["encode", "--rect", "1,1,100,100"])
        .arg(obama()));
    assert_eq!(code, 1);
    assert!(
        err.contains("dlib_face_recognition_resnet_model_v1.dat") && err.contains("byte"),
        "{err}"
    );
    // 127 MB of model copies: do not leave them in the temp dir.
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn unreadable_images_and_bad_rects_are_clear_errors() {
    let models = facelike_testdata::models_dir();
    let d = tmpdir("badimages");
    let junk = d.join("notes.jpg");
    std::fs::write(&junk, b"this is not an image").unwrap();
    let trunc = d.join("truncated.jpg");
    let jpg = std::fs::read(obama()).unwrap();
    std::fs::write(&trunc, &jpg[..jpg.len() / 2]).unwrap();
    let (code, out, err) = run(bin()
        .env("FACELIKE_MODELS", &models)
        .arg("encode")
        .arg(&junk)
        .arg(&trunc)
        .arg(obama()));
    assert_eq!(code, 2, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("unrecognised image format"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1]["error"].as_str().unwrap().contains("truncated"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2]["faces"].as_array().unwrap().len(),
        1,
        "the good file is still processed"
    );
    // A rect outside the image.
    let (code, out, _) = run(bin()
        .env("FACELIKE_MODELS", &models)
        .args(["encode", "--rect", "5000,5000,5100,5100"])
        .arg(obama()));
    assert_eq!(code, 2);
    assert!(out.contains("does not overlap the 910x1137 image"), "{out}");
    // A malformed rect is refused by the argument parser.
    let (code, _, err) = run(bin().args(["encode", "--rect", "1,2,3"]).arg(obama()));
    assert_ne!(code, 0);
    assert!(err.contains("L,T,R,B"), "{err}");
}

#[test]
fn embed_chip_equals_golden_descriptor() {
    let models = facelike_testdata::models_dir();
    let g = facelike_testdata::golden_face_recognition("cli::embed_chip_equals_golden_descriptor");
    let face = &g.images[0].faces[0];
    let chip = match face.chip_png() {
        Some(png) => png,
        // Core data: our chip of the face, checked to be dlib's (sha256 of its RGB bytes).
        None => {
            use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
            let opts = facelike::LoadOptions {
                exif_orientation: false,
                ..Default::default()
            };
            let photo = facelike_image::load_with(g.images[0].path(), &opts).unwrap();
            let shape = facelike::Landmarks {
                rect: facelike::Rect::new(face.rect[0], face.rect[1], face.rect[2], face.rect[3]),
                points: face
                    .landmarks5
                    .iter()
                    .map(|p| facelike::Point::new(p[0], p[1]))
                    .collect(),
            };
            let chip = extract_chip(
                &photo,
                &face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING).unwrap(),
            );
            assert_eq!(
                Some(facelike_testdata::sha256_hex(chip.as_raw())),
                face.chip_rgb_sha256,
                "not dlib's chip"
            );
            let png = tmpdir("chip").join("chip.png");
            chip.save_png(&png).unwrap();
            png
        }
    };
    let (code, out, err) = run(bin()
        .env("FACELIKE_MODELS", &models)
        .arg("embed-chip")
        .arg(&chip));
    assert_eq!(code, 0, "{err}");
    let e = floats(&json_lines(&out)[0]["embedding"]);
    let worst = e
        .iter()
        .zip(&face.descriptor_from_chip)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "{worst}");
}

#[test]
fn models_path_honours_the_environment() {
    let (code, out, _) = run(bin()
        .env("FACELIKE_MODELS", "/some/where")
        .args(["models", "path"]));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), Path::new("/some/where").display().to_string());
}
