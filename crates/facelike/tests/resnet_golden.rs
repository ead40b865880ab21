//! The ResNet descriptor against dlib's own outputs on every golden face chip, and its errors
//! on wrong inputs. Without the shared folder (no chip PNGs), on our chips of the core golden
//! faces, checked first to be dlib's chips (sha256 of their RGB bytes).

use facelike::resnet::{ChipSizeError, DescriptorNet, CHIP_SIZE};
use facelike::{Model, ModelError, RgbImage};
use facelike_testdata as td;
use std::sync::OnceLock;

fn net() -> &'static DescriptorNet {
    static NET: OnceLock<DescriptorNet> = OnceLock::new();
    NET.get_or_init(|| DescriptorNet::load(&td::models_dir()).expect("load the ResNet"))
}

/// Our chip of a core golden face, checked to equal dlib's.
fn our_chip(photo: &RgbImage, face: &td::GoldenFace, label: &str) -> RgbImage {
    use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING};
    let shape = facelike::Landmarks {
        rect: facelike::Rect::new(face.rect[0], face.rect[1], face.rect[2], face.rect[3]),
        points: face
            .landmarks5
            .iter()
            .map(|p| facelike::Point::new(p[0], p[1]))
            .collect(),
    };
    let chip = extract_chip(
        photo,
        &face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING).unwrap(),
    );
    let want = face.chip_rgb_sha256.as_deref().expect("chip digest");
    assert_eq!(
        td::sha256_hex(chip.as_raw()),
        want,
        "{label}: not dlib's chip"
    );
    chip
}

/// Every golden face: (chip, dlib's descriptor of the chip, label).
fn golden_chips() -> (Vec<(RgbImage, Vec<f64>, String)>, bool) {
    let mut out = Vec::new();
    let set = td::golden_all("resnet_golden::descriptors_match_dlib_on_all_golden_chips");
    for img in &set.images {
        let photo = (!set.full).then(|| {
            let opts = facelike::LoadOptions {
                exif_orientation: false,
                ..Default::default()
            };
            facelike_image::load_with(img.path(), &opts).unwrap()
        });
        for (i, face) in img.faces.iter().enumerate() {
            let chip = match &photo {
                Some(p) => our_chip(p, face, &format!("{} face {i}", img.image)),
                None => facelike::load_image(face.chip_path())
                    .unwrap_or_else(|e| panic!("chip of {} face {i}: {e}", img.image)),
            };
            out.push((
                chip,
                face.descriptor_from_chip.clone(),
                format!("{} face {i}", img.image),
            ));
        }
    }
    (out, set.full)
}

fn max_diff(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (*g as f64 - w).abs())
        .fold(0.0, f64::max)
}

#[test]
fn descriptors_match_dlib_on_all_golden_chips() {
    let (faces, full) = golden_chips();
    if full {
        assert_eq!(faces.len(), 193, "golden faces");
    }
    let chips: Vec<RgbImage> = faces.iter().map(|f| f.0.clone()).collect();
    let batch = net().compute_batch(&chips).expect("150x150 chips");
    assert_eq!(batch.len(), faces.len());

    let (mut worst_single, mut worst_batch) = (0f64, 0f64);
    let mut worst_face = String::new();
    for ((chip, want, label), from_batch) in faces.iter().zip(&batch) {
        let single = net().compute(chip).expect("150x150 chip");
        let e_single = max_diff(single.as_slice(), want);
        let e_batch = max_diff(from_batch.as_slice(), want);
        if e_single > worst_single {
            worst_single = e_single;
            worst_face = label.clone();
        }
        worst_batch = worst_batch.max(e_batch);
        // A real descriptor, not something near zero that would pass a loose tolerance.
        let norm = single.norm() as f64;
        assert!((1.0..2.0).contains(&norm), "{label}: norm {norm}");
    }
    eprintln!(
        "ResNet vs dlib over {} faces: max |diff| one at a time {worst_single:.3e} (worst: {worst_face}), batched {worst_batch:.3e}",
        faces.len()
    );
    assert!(
        worst_single <= 1e-4,
        "one at a time: {worst_single} on {worst_face}"
    );
    assert!(worst_batch <= 1e-4, "batched: {worst_batch}");

    // The plain im2col path (no Winograd, no shortcuts) on the same chips.
    let direct = net().clone().without_winograd();
    let got = direct.compute_batch(&chips).expect("150x150 chips");
    let worst_direct = faces
        .iter()
        .zip(&got)
        .map(|((_, want, _), d)| max_diff(d.as_slice(), want))
        .fold(0.0, f64::max);
    eprintln!("  im2col only: max |diff| {worst_direct:.3e}");
    assert!(worst_direct <= 1e-4, "im2col only: {worst_direct}");
}

#[test]
fn chips_of_the_wrong_size_are_refused() {
    let small = RgbImage::new(100, 100);
    assert_eq!(
        net().compute(&small).unwrap_err(),
        ChipSizeError {
            index: 0,
            width: 100,
            height: 100
        }
    );
    let mut chips = vec![RgbImage::new(CHIP_SIZE, CHIP_SIZE); 3];
    chips.push(RgbImage::new(150, 151));
    let err = net().compute_batch(&chips).unwrap_err();
    assert_eq!(
        (err.index, err.width, err.height),
        (3, 150, 151),
        "batch error names the chip"
    );
    assert!(err.to_string().contains("150x151"), "{err}");
}

fn model_bytes(model: Model) -> (std::path::PathBuf, Vec<u8>) {
    let path = td::models_dir().join(model.file_name());
    let bytes = std::fs::read(&path).expect("read model");
    (path, bytes)
}

#[test]
fn a_truncated_model_file_is_reported_with_file_and_offset() {
    let (_, bytes) = model_bytes(Model::FaceRecognitionResnet);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(Model::FaceRecognitionResnet.file_name());
    // Cut inside the header, inside the stack of layer versions, inside a weight tensor and
    // one byte before the end.
    for cut in [5, 300, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).expect("write truncated copy");
        let msg = match DescriptorNet::from_bytes(&bytes[..cut], &path) {
            Ok(_) => panic!("a model cut at byte {cut} loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains(&path.display().to_string()),
            "cut {cut}: no file name in {msg:?}"
        );
        assert!(msg.contains("byte"), "cut {cut}: no byte offset in {msg:?}");
        // Loading from the directory stops at the size check, also naming the file.
        match DescriptorNet::load(dir.path()) {
            Err(ModelError::WrongSize {
                path: p, actual, ..
            }) => {
                assert_eq!((p, actual), (path.clone(), cut as u64));
            }
            other => panic!("cut {cut}: expected a size error, got {other:?}"),
        }
    }
}

#[test]
fn other_model_files_are_refused_clearly() {
    // Not a DNN at all.
    let (sp_path, sp) = model_bytes(Model::ShapePredictor5);
    let err = DescriptorNet::from_bytes(&sp, &sp_path).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ModelError::Unreadable { .. }),
        "shape predictor: {msg}"
    );
    assert!(
        msg.contains("shape_predictor_5_face_landmarks.dat")
            && msg.contains("as dlib's face recognition ResNet")
            && msg.contains("at byte"),
        "{msg}"
    );

    // A DNN, but a different network: the MMOD detector.
    let (mmod_path, mmod) = model_bytes(Model::MmodDetector);
    let err = DescriptorNet::from_bytes(&mmod, &mmod_path).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ModelError::WrongNetwork { .. }),
        "mmod detector: {msg}"
    );
    assert!(msg.contains("mmod_human_face_detector.dat"), "{msg}");
}

#[test]
fn flop_count_follows_the_architecture() {
    // Each conv: 2 · filters · in · 3 · 3 · out², written out layer by layer.
    let c3 = |inp: u64, f: u64, out: u64| 2 * f * inp * 9 * out * out;
    let stem = 2 * 32 * 3 * 49 * 72 * 72;
    let level4 = 6 * c3(32, 32, 35);
    let level3 = c3(32, 64, 17) + 7 * c3(64, 64, 17);
    let level2 = c3(64, 128, 8) + 5 * c3(128, 128, 8);
    // The down conv gives 3x3, the zero-padded sum 4x4, where the next convs run.
    let level1 = c3(128, 256, 3) + c3(256, 256, 3) + 4 * c3(256, 256, 4);
    let level0 = c3(256, 256, 1) + c3(256, 256, 1);
    let fc = 2 * 256 * 128;
    let want = stem + level4 + level3 + level2 + level1 + level0 + fc;
    assert_eq!(DescriptorNet::flops_per_face(), want);
}
