//! A gallery split by identity hash over three schemas, searched by scatter-gather, answers
//! exactly as the whole gallery does (by face and by identity): the layout docs/scaling.md
//! proposes for galleries beyond one server.

mod common;
use common::*;
use facelike_gallery::{scan_directory, IndexOptions, SearchBy, SearchMode, SearchOptions};
use facelike_pg::{search_shards, shard_of, PgGallery};
use facelike_types::{Descriptor, DescriptorKind};

#[test]
fn identity_hash_shards_answer_as_one_gallery() {
    let Some(url) = server() else { return };
    let mut rng = facelike_testdata::synthetic::Rng::new(21);
    let centres: Vec<[f32; 128]> = (0..150)
        .map(|_| std::array::from_fn(|_| (rng.gaussian() * 0.08) as f32))
        .collect();
    let mut names = Vec::new();
    let mut vectors = Vec::new();
    for i in 0..1200 {
        let c = &centres[i % 150];
        vectors.push(std::array::from_fn(|d| {
            c[d] + (rng.gaussian() * 0.03) as f32
        }));
        names.push(format!("person_{:03}", i % 150));
    }
    let tmp = tempfile::tempdir().unwrap();
    vector_photos(tmp.path(), &names);
    let sources = scan_directory(tmp.path(), None).unwrap();
    let kind = DescriptorKind::dlib_raw();
    let o = IndexOptions::default();
    let whole = PgGallery::open_or_create(&fresh(&url, "whole")).unwrap();
    whole
        .index_images(&sources, &kind, &o, vector_encoder(&vectors), |_| {})
        .unwrap();
    let shards: Vec<PgGallery> = (0..3)
        .map(|_| PgGallery::open_or_create(&fresh(&url, "shard")).unwrap())
        .collect();
    for (i, g) in shards.iter().enumerate() {
        let mine: Vec<_> = sources
            .iter()
            .filter(|s| shard_of(&s.identity, 3) == i)
            .cloned()
            .collect();
        assert!(!mine.is_empty());
        g.index_images(&mine, &kind, &o, vector_encoder(&vectors), |_| {})
            .unwrap();
    }
    let total: u64 = shards.iter().map(|g| g.stats().unwrap().faces).sum();
    assert_eq!(total, 1200);
    for t in 0..25 {
        let q: [f32; 128] = std::array::from_fn(|_| (rng.gaussian() * 0.08) as f32);
        for by in [SearchBy::Face, SearchBy::Identity] {
            let so = SearchOptions {
                k: 10,
                by,
                mode: SearchMode::Exact,
                ..Default::default()
            };
            let a = whole.search(&Descriptor(q), &so).unwrap();
            let b = search_shards(&shards, &Descriptor(q), &so).unwrap();
            assert_eq!(a.len(), b.len());
            for (x, (_, y)) in a.iter().zip(&b) {
                assert_eq!(
                    (&x.identity, x.distance, x.mean_distance, x.identity_faces),
                    (&y.identity, y.distance, y.mean_distance, y.identity_faces),
                    "query {t} {by:?}"
                );
            }
        }
    }
    cleanup(whole);
    for g in shards {
        cleanup(g);
    }
}
