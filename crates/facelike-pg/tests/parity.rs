//! The PostgreSQL gallery against the embedded one, built from the same photos with the same
//! encoder: exact search gives the same top-k, identities and distances (within 1e-6, in
//! fact equal), by face and by identity, for every metric; HNSW reaches recall@10 ≥ 0.99.

mod common;
use common::*;
use facelike_gallery::{
    scan_directory, Gallery, IndexOptions, LoadOptions, SearchBy, SearchIndex, SearchMode,
    SearchOptions,
};
use facelike_pg::{PgGallery, PgHnswParams};
use facelike_types::{Descriptor, DescriptorKind, Metric};

fn compare(
    emb: &SearchIndex,
    pg: &PgGallery,
    queries: &[[f32; 128]],
    by: SearchBy,
    metric: Metric,
) -> usize {
    let mut compared = 0;
    for q in queries {
        let o = SearchOptions {
            k: 10,
            by,
            metric,
            mode: SearchMode::Exact,
            tolerance: 0.6,
            ..Default::default()
        };
        let a = emb.search(&Descriptor(*q), &o).unwrap();
        let b = pg.search(&Descriptor(*q), &o).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.identity, y.identity, "{by:?} {metric:?}");
            assert!((x.distance - y.distance).abs() <= 1e-6, "{x:?} vs {y:?}");
            assert_eq!(x.same_person, y.same_person);
            assert_eq!(x.identity_faces, y.identity_faces);
            match (x.mean_distance, y.mean_distance) {
                (Some(m), Some(n)) => assert!((m - n).abs() <= 1e-6),
                (None, None) => {}
                other => panic!("mean distance {other:?}"),
            }
            compared += 1;
        }
    }
    compared
}

fn build_both(
    tag: &str,
    url: &str,
    names: &[String],
    vectors: &[[f32; 128]],
) -> (tempfile::TempDir, Gallery, PgGallery) {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    vector_photos(&photos, names);
    let sources = scan_directory(&photos, None).unwrap();
    let kind = DescriptorKind::dlib_raw();
    let opts = IndexOptions {
        batch_size: 500,
        retry_failed: false,
    };
    let mut emb = Gallery::open_or_create(&tmp.path().join("g")).unwrap();
    let se = facelike_gallery::index_images(
        &mut emb,
        &sources,
        &kind,
        &opts,
        vector_encoder(vectors),
        |_| {},
    )
    .unwrap();
    let pg = PgGallery::open_or_create(&fresh(url, tag)).unwrap();
    let sp = pg
        .index_images(&sources, &kind, &opts, vector_encoder(vectors), |_| {})
        .unwrap();
    assert_eq!(se.faces, sp.faces);
    assert_eq!(se.indexed, sp.indexed);
    assert_eq!(pg.stats().unwrap().faces as usize, vectors.len());
    (tmp, emb, pg)
}

#[test]
fn exact_search_equals_the_embedded_store_on_lfw() {
    let Some(url) = server() else { return };
    if facelike_testdata::skip_without_shared("PostgreSQL parity on LFW descriptors") {
        return;
    }
    let (paths, vectors) = facelike_testdata::lfw_descriptors();
    let names: Vec<String> = paths
        .iter()
        .map(|p| facelike_testdata::synthetic::lfw_identity(p).to_string())
        .collect();
    let (_tmp, emb, pg) = build_both("lfw", &url, &names, &vectors);
    let index = SearchIndex::load(
        &emb,
        &LoadOptions {
            ann: facelike_gallery::AnnPolicy::Never,
            ..Default::default()
        },
    )
    .unwrap();
    // Queries: every 97th gallery descriptor (its own face at distance 0 comes first) and
    // midpoints of neighbours (not in the gallery).
    let mut queries: Vec<[f32; 128]> = vectors.iter().step_by(97).copied().collect();
    for w in vectors.windows(2).step_by(211) {
        queries.push(std::array::from_fn(|i| 0.5 * (w[0][i] + w[1][i])));
    }
    let mut n = 0;
    for metric in [Metric::L2, Metric::L1, Metric::Cosine] {
        n += compare(&index, &pg, &queries, SearchBy::Face, metric);
    }
    n += compare(&index, &pg, &queries, SearchBy::Identity, Metric::L2);
    assert!(n > 4 * 10 * 100, "{n}");

    // Every face read back (path, identity, rect, landmarks, descriptor) equals the
    // embedded store's; face ids may differ (commit order).
    let (ids_e, _, _) = emb.load_vectors(0).unwrap();
    let (ids_p, _, data_p) = pg.load_vectors().unwrap();
    assert_eq!(ids_e.len(), ids_p.len());
    assert_eq!(data_p.len(), 128 * ids_p.len());
    let key = |f: &facelike_gallery::FaceRecord| (f.meta.image.clone(), f.meta.index);
    let mut fe: Vec<_> = emb.faces(&ids_e).unwrap();
    let mut fp: Vec<_> = pg.faces(&ids_p).unwrap();
    fe.sort_by_key(key);
    fp.sort_by_key(key);
    assert_eq!(fe.len(), fp.len());
    for (a, b) in fe.iter().zip(&fp) {
        assert!(a.meta == b.meta, "{:?} vs {:?}", a.meta, b.meta);
        assert!(
            a.descriptor == b.descriptor,
            "descriptor of {}",
            a.meta.image
        );
    }
    assert_eq!(
        emb.identity_names().unwrap().len(),
        pg.identity_names().unwrap().len()
    );

    // HNSW (m 16, ef_construction 64) at ef_search 100: recall@10 against exact.
    let secs = pg.ensure_hnsw(PgHnswParams::default()).unwrap();
    assert!(pg.has_hnsw().unwrap());
    let mut hit = 0;
    let mut total = 0;
    for q in &queries {
        let o = SearchOptions {
            k: 10,
            ef: 100,
            ..Default::default()
        };
        let exact = pg
            .search(
                &Descriptor(*q),
                &SearchOptions {
                    mode: SearchMode::Exact,
                    ..o.clone()
                },
            )
            .unwrap();
        let approx = pg
            .search(
                &Descriptor(*q),
                &SearchOptions {
                    mode: SearchMode::Ann,
                    ..o
                },
            )
            .unwrap();
        total += exact.len();
        hit += approx
            .iter()
            .filter(|m| exact.iter().any(|e| e.face_id == m.face_id))
            .count();
    }
    let recall = hit as f64 / total as f64;
    eprintln!("LFW 7,701 in PostgreSQL: HNSW built in {secs:.2} s, recall@10 {recall:.4}");
    assert!(recall >= 0.99, "recall@10 {recall}");
    cleanup(pg);
}

#[test]
fn exact_search_equals_the_embedded_store_on_synthetic_faces() {
    let Some(url) = server() else { return };
    // 3,000 descriptors in 300 identities: tight clusters around random centres.
    let mut rng = facelike_testdata::synthetic::Rng::new(7);
    let centres: Vec<[f32; 128]> = (0..300)
        .map(|_| std::array::from_fn(|_| (rng.gaussian() * 0.08) as f32))
        .collect();
    let mut names = Vec::new();
    let mut vectors = Vec::new();
    for i in 0..3000 {
        let c = &centres[i % 300];
        vectors.push(std::array::from_fn(|d| {
            c[d] + (rng.gaussian() * 0.03) as f32
        }));
        names.push(format!("person_{:03}", i % 300));
    }
    let (_tmp, emb, pg) = build_both("syn", &url, &names, &vectors);
    let index = SearchIndex::load(&emb, &LoadOptions::default()).unwrap();
    let queries: Vec<[f32; 128]> = (0..40)
        .map(|_| std::array::from_fn(|_| (rng.gaussian() * 0.08) as f32))
        .collect();
    let n = compare(&index, &pg, &queries, SearchBy::Face, Metric::L2)
        + compare(&index, &pg, &queries, SearchBy::Identity, Metric::L2)
        + compare(&index, &pg, &queries, SearchBy::Identity, Metric::Cosine);
    assert_eq!(n, 3 * 40 * 10);
    // recognize: the nearest identity within tolerance, as the embedded store says.
    for q in &queries[..10] {
        let o = SearchOptions {
            tolerance: 0.6,
            mode: SearchMode::Exact,
            ..Default::default()
        };
        assert_eq!(
            index
                .recognize(&Descriptor(*q), &o)
                .unwrap()
                .map(|m| m.identity),
            pg.recognize(&Descriptor(*q), &o)
                .unwrap()
                .map(|m| m.identity)
        );
    }
    cleanup(pg);
}
