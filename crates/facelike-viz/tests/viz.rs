//! PCA against scikit-learn, t-SNE quality, pictures, the HTML page in headless Chromium, and
//! the projector files, on the real LFW descriptors.

use facelike_viz::map::{FaceItem, QueryItem};
use facelike_viz::{projector, tsne, FaceMap, MapOptions, Method, Neighbour, Pca, TsneOptions};
use std::path::{Path, PathBuf};

fn lfw() -> (Vec<String>, Vec<[f32; 128]>) {
    facelike_testdata::lfw_descriptors()
}

fn identity(path: &str) -> String {
    path.split('/').next().unwrap().to_string()
}

/// LFW identities with at least `min` descriptors.
fn lfw_subset(min: usize) -> Vec<FaceItem> {
    let (names, d) = lfw();
    let mut count = std::collections::HashMap::new();
    for n in &names {
        *count.entry(identity(n)).or_insert(0usize) += 1;
    }
    names
        .iter()
        .zip(&d)
        .filter(|(n, _)| count[&identity(n)] >= min)
        .map(|(n, v)| FaceItem {
            identity: identity(n),
            source: n.clone(),
            descriptor: v.to_vec(),
            thumbnail: None,
        })
        .collect()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("facelike-viz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small synthetic thumbnail (a coloured square), as PNG bytes.
fn thumb(seed: u8) -> Vec<u8> {
    let mut img = facelike_image::RgbImage::new(32, 32);
    for y in 0..32 {
        for x in 0..32 {
            img.set_pixel(x, y, [seed.wrapping_mul(37), (x * 8) as u8, (y * 8) as u8]);
        }
    }
    img.to_png_bytes()
}

#[test]
fn pca_explained_variance_equals_scikit_learn() {
    if facelike_testdata::skip_without_shared(
        "facelike-viz viz::pca_explained_variance_equals_scikit_learn",
    ) {
        return;
    }
    #[derive(serde::Deserialize)]
    struct G {
        explained_variance: Vec<f64>,
        explained_variance_ratio: Vec<f64>,
        components_0_1: Vec<Vec<f64>>,
    }
    let g: G = serde_json::from_str(include_str!("data/pca_lfw_sklearn.json")).unwrap();
    let (_, d) = lfw();
    let p = Pca::fit(&d).unwrap();
    let worst_ratio = p
        .explained_variance_ratio
        .iter()
        .zip(&g.explained_variance_ratio)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let worst_var = p
        .explained_variance
        .iter()
        .zip(&g.explained_variance)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "PCA vs sklearn: max |ratio diff| {worst_ratio:.2e}, max |variance diff| {worst_var:.2e}"
    );
    assert!(worst_ratio <= 1e-6 && worst_var <= 1e-6);
    // The leading axes agree up to sign (sklearn flips by the largest component of U).
    for (a, b) in p.components.iter().zip(&g.components_0_1) {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(dot.abs() > 1.0 - 1e-9, "component mismatch: dot {dot}");
    }
}

#[test]
fn tsne_on_lfw_separates_identities() {
    if facelike_testdata::skip_without_shared("facelike-viz viz::tsne_on_lfw_separates_identities")
    {
        return;
    }
    let items = lfw_subset(8);
    let data: Vec<&[f32]> = items.iter().map(|i| i.descriptor.as_slice()).collect();
    let mut calls = 0;
    let r = tsne::tsne(&data, &TsneOptions::default(), |_| calls += 1).unwrap();
    assert_eq!(calls, 15, "progress every 50 of 750 iterations");
    let knn = tsne::knn_preservation(&data, &r.embedding, 10);
    // Same-identity nearest neighbour in 2-D, as a measure of separation.
    let n = items.len();
    let mut same = 0;
    for i in 0..n {
        let j = (0..n)
            .filter(|&j| j != i)
            .min_by(|&a, &b| {
                let d = |k: usize| {
                    (r.embedding[i][0] - r.embedding[k][0]).powi(2)
                        + (r.embedding[i][1] - r.embedding[k][1]).powi(2)
                };
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        same += (items[i].identity == items[j].identity) as usize;
    }
    eprintln!(
        "t-SNE on {n} LFW faces: KL {:.3}, 10-NN kept {knn:.3}, 1-NN same identity {:.3}",
        r.kl_divergence,
        same as f64 / n as f64
    );
    assert!(r.kl_divergence > 0.1 && r.kl_divergence < 2.0);
    assert!(knn > 0.35, "10-NN preservation {knn}");
    assert!(same as f64 / n as f64 > 0.9);
}

fn small_map(thumbs: bool) -> FaceMap {
    let mut items = lfw_subset(10);
    if thumbs {
        for (k, it) in items.iter_mut().enumerate() {
            it.thumbnail = Some(thumb(k as u8));
        }
    }
    let q = QueryItem {
        label: "me".into(),
        descriptor: items[0].descriptor.clone(),
        thumbnail: Some(thumb(7)),
        nearest: vec![Neighbour {
            identity: items[0].identity.clone(),
            distance: 0.31,
        }],
    };
    FaceMap::build(items, vec![q], &Method::Pca, |_| {}).unwrap()
}

#[test]
fn png_and_svg_pictures() {
    if facelike_testdata::skip_without_shared("facelike-viz viz::png_and_svg_pictures") {
        return;
    }
    let dir = tmp("pics");
    let map = small_map(true);
    let opts = MapOptions {
        title: "LFW".into(),
        thumbnails: true,
        ..Default::default()
    };
    for f in ["map.png", "map.svg"] {
        facelike_viz::write_map(&map, &opts, &dir.join(f)).unwrap();
    }
    let png = facelike_image::load(dir.join("map.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1400, 1000));
    // Something besides white was drawn: the points, the legend, the thumbnails.
    let coloured = png
        .as_raw()
        .chunks(3)
        .filter(|p| p != &[255, 255, 255])
        .count();
    assert!(coloured > 10_000, "only {coloured} drawn pixels");
    let svg = std::fs::read_to_string(dir.join("map.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.matches("<circle").count() >= map.points.len());
    assert!(svg.contains("data:image/png;base64,"));
    let top = map.identity_ranks(1).into_keys().next().unwrap();
    assert!(
        svg.contains(&top.replace('_', " ")),
        "the largest identity is labelled"
    );
    let e = facelike_viz::write_map(&map, &opts, &dir.join("map.gif")).unwrap_err();
    assert!(e.to_string().contains("map.gif"));
}

#[test]
fn projector_files_parse_back() {
    if facelike_testdata::skip_without_shared("facelike-viz viz::projector_files_parse_back") {
        return;
    }
    let dir = tmp("projector");
    let mut items = lfw_subset(10);
    for (k, it) in items.iter_mut().enumerate().filter(|(k, _)| k % 3 != 0) {
        it.thumbnail = Some(thumb(k as u8));
    }
    let out = projector::export(&items, &dir, 48, "lfw").unwrap();
    let tensors = std::fs::read_to_string(dir.join("tensors.tsv")).unwrap();
    let rows: Vec<Vec<f32>> = tensors
        .lines()
        .map(|l| l.split('\t').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), items.len());
    assert!(rows.iter().all(|r| r.len() == 128));
    assert_eq!(rows[5], items[5].descriptor);
    let meta = std::fs::read_to_string(dir.join("metadata.tsv")).unwrap();
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(lines[0], "identity\tsource");
    assert_eq!(lines.len(), items.len() + 1);
    assert_eq!(
        lines[1],
        format!("{}\t{}", items[0].identity, items[0].source)
    );
    let sprite = facelike_image::load(dir.join("sprite.png")).unwrap();
    let info = out.sprite.unwrap();
    let cols = (items.len() as f64).sqrt().ceil() as usize;
    assert_eq!(info.columns as usize, cols);
    assert_eq!(sprite.width(), cols * info.tile as usize);
    assert_eq!(
        sprite.height(),
        items.len().div_ceil(cols) * info.tile as usize
    );
    assert!(sprite.width() <= 8192 && sprite.height() <= 8192);
    // Tile 1 (row 0, column 1) holds thumbnail 1 (its red channel is 37).
    assert_eq!(sprite.pixel(info.tile as usize + 3, 3)[0], 37);
    // Tile 0 has no thumbnail and stays blank.
    assert_eq!(sprite.pixel(3, 3), [255, 255, 255]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("projector_config.json")).unwrap())
            .unwrap();
    let e = &cfg["embeddings"][0];
    assert_eq!(e["tensorShape"], serde_json::json!([items.len(), 128]));
    assert_eq!(
        e["sprite"]["singleImageDim"],
        serde_json::json!([info.tile, info.tile])
    );
    let pbtxt = std::fs::read_to_string(dir.join("projector_config.pbtxt")).unwrap();
    assert!(
        pbtxt.contains("tensor_path: \"tensors.tsv\"")
            && pbtxt.contains("metadata_path: \"metadata.tsv\"")
    );
    assert_eq!(
        pbtxt
            .matches(&format!("single_image_dim: {}", info.tile))
            .count(),
        2
    );
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FACELIKE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn html_map_works_offline_in_chromium() {
    if facelike_testdata::skip_without_shared(
        "facelike-viz viz::html_map_works_offline_in_chromium",
    ) {
        return;
    }
    let dir = tmp("html");
    let map = small_map(true);
    let page = dir.join("map.html");
    facelike_viz::write_map(
        &map,
        &MapOptions {
            title: "LFW".into(),
            ..Default::default()
        },
        &page,
    )
    .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page must not reference the network"
    );
    let Some(chrome) = chromium() else {
        // CI installs Chromium and must run this; elsewhere say what is missing and go on.
        if std::env::var_os("CI").is_some() {
            panic!("Chromium is needed for this test: `apt-get install chromium` (CI installs it), or set FACELIKE_CHROMIUM");
        }
        eprintln!("skipped html_map_works_offline_in_chromium: no Chromium (`apt-get install chromium`, or set FACELIKE_CHROMIUM)");
        return;
    };
    let profile = dir.join("profile");
    let out = std::process::Command::new(&chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--virtual-time-budget=5000",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}#selftest", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start =
        dom.find("<pre id=\"selftest\">").expect("page loaded") + "<pre id=\"selftest\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let result: serde_json::Value = serde_json::from_str(&dom[start..end].replace("&quot;", "\""))
        .unwrap_or_else(|e| panic!("self-test output {:?}: {e}", &dom[start..end]));
    eprintln!("chromium self-test: {result}");
    assert_eq!(result["points_total"], map.points.len());
    assert_eq!(
        result["points_drawn"],
        map.points.len(),
        "every point drawn"
    );
    assert_eq!(
        result["hover_ok"], true,
        "hovering a face shows its thumbnail"
    );
    assert_eq!(result["network_refs"], 0);
    let _ = Path::new(&chrome);
}
