//! `facelike bench`: times each stage in-process and prints one JSON object, for
//! `bench/compare.py` to set beside the Python reference's times in one table.

use anyhow::{Context, Result};
use facelike::chip::{extract_chip, face_chip_details, CHIP_PADDING, CHIP_SIZE};
use facelike::{
    CnnDetector, DescriptorNet, Encoder, EncoderOptions, HogDetector, LoadOptions, Model, Rect,
    RgbImage, ShapePredictor,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Median seconds of `runs` calls after one warm-up call.
fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

/// Median over `runs` loops of `calls` calls, per call: for sub-millisecond stages (the same
/// rule as `bench/compare.py`).
fn median_per_call(runs: usize, calls: usize, mut f: impl FnMut()) -> f64 {
    median_secs(runs, || {
        for _ in 0..calls {
            f();
        }
    }) / calls as f64
}

fn load(p: &Path) -> Result<RgbImage> {
    Ok(facelike_image::load_with(
        p,
        &LoadOptions {
            exif_orientation: false,
            ..Default::default()
        },
    )?)
}

pub struct BenchArgs {
    pub runs: usize,
    pub chips: Vec<PathBuf>,
    pub detect_images: Vec<PathBuf>,
    pub folder: Option<PathBuf>,
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let dir = facelike::models::models_dir();
    let threads = rayon::current_num_threads();
    let mut out = serde_json::Map::new();
    out.insert("threads".into(), json!(threads));

    // Model loading: every model, as `facelike encode --detector cnn` plus HOG would. The
    // first load may read the files from disk; the median of 3 more (page cache warm) is the
    // figure set beside dlib's, which compare.py measures the same way.
    let load_all = || -> Result<_> {
        Ok((
            DescriptorNet::load(&dir)?,
            ShapePredictor::load(&dir, Model::ShapePredictor5)?,
            ShapePredictor::load(&dir, Model::ShapePredictor68)?,
            HogDetector::load(&dir)?,
            CnnDetector::load(&dir)?,
        ))
    };
    let t = Instant::now();
    let (net, sp5, _sp68, hog, cnn) = load_all()?;
    out.insert("load_first_s".into(), json!(t.elapsed().as_secs_f64()));
    out.insert(
        "load_all_models_s".into(),
        json!(median_secs(3, || drop(load_all()))),
    );

    if !a.chips.is_empty() {
        let chips: Vec<RgbImage> = a.chips.iter().map(|p| load(p)).collect::<Result<_>>()?;
        // One face at a time, each chip in turn, on the calling thread's pool, after a
        // pass over the chips (loading the other models has just pushed the network's
        // weights out of the caches).
        for chip in &chips {
            net.compute(chip)?;
        }
        let mut i = 0;
        let single = median_secs(a.runs * chips.len(), || {
            net.compute(&chips[i % chips.len()]).unwrap();
            i += 1;
        });
        out.insert("descriptor_single_s".into(), json!(single));
        let batch: Vec<RgbImage> = chips.iter().cycle().take(32).cloned().collect();
        let b = median_secs(a.runs, || {
            net.compute_batch(&batch).unwrap();
        });
        out.insert("descriptor_batch32_faces_per_s".into(), json!(32.0 / b));
        // The same batch on one thread, for the per-core rate.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        let b1 = pool.install(|| {
            median_secs(a.runs, || {
                net.compute_batch(&batch).unwrap();
            })
        });
        out.insert(
            "descriptor_batch32_1thread_faces_per_s".into(),
            json!(32.0 / b1),
        );
        out.insert(
            "peak_gflops_one_core".into(),
            json!(facelike_tensor::peak_gflops_one_core()),
        );
        out.insert(
            "descriptor_flops_per_face".into(),
            json!(DescriptorNet::flops_per_face()),
        );
    }

    let mut detect = Vec::new();
    for p in &a.detect_images {
        let img = load(p)?;
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let hog1 = median_secs(a.runs, || {
            hog.detect(&img, 1, 0.0);
        });
        let cnn0 = median_secs(a.runs, || {
            cnn.detect(&img, 0);
        });
        let cnn1 = median_secs(a.runs.min(3), || {
            cnn.detect(&img, 1);
        });
        let faces = hog.detect(&img, 1, 0.0);
        let rect = faces
            .first()
            .map(|f| f.rect)
            .unwrap_or(Rect::new(0, 0, 99, 99));
        let lm = median_per_call(a.runs, 500, || {
            std::hint::black_box(sp5.predict(&img, rect));
        });
        let shape = sp5.predict(&img, rect);
        let details = face_chip_details(&shape, CHIP_SIZE, CHIP_PADDING)?;
        let chip_t = median_per_call(a.runs, 500, || {
            std::hint::black_box(extract_chip(&img, &details));
        });
        detect.push(json!({"image": name, "hog_up1_s": hog1, "cnn_up0_s": cnn0, "cnn_up1_s": cnn1, "landmarks5_s": lm, "chip_s": chip_t}));
    }
    out.insert("detect".into(), json!(detect));

    if let Some(folder) = &a.folder {
        let files = facelike_image::image_files(std::slice::from_ref(folder), &Default::default())?;
        let enc = Encoder::new(EncoderOptions::default())?;
        let t = Instant::now();
        let opts = LoadOptions {
            exif_orientation: false,
            ..Default::default()
        };
        let faces: usize = {
            use rayon::prelude::*;
            files
                .par_iter()
                .map(|p| {
                    facelike_image::load_with(p, &opts)
                        .ok()
                        .and_then(|img| enc.encode(&img).ok())
                        .map_or(0, |f| f.len())
                })
                .sum()
        };
        let secs = t.elapsed().as_secs_f64();
        out.insert(
            "encode_folder".into(),
            json!({"folder": folder.display().to_string(), "images": files.len(), "faces": faces, "seconds": secs, "images_per_s": files.len() as f64 / secs}),
        );
    }
    out.insert(
        "peak_rss_kb".into(),
        json!(peak_rss_kb().context("reading /proc/self/status")?),
    );
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// VmHWM from /proc (Linux); 0 elsewhere.
fn peak_rss_kb() -> Result<u64> {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return Ok(0);
    };
    Ok(s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0))
}
