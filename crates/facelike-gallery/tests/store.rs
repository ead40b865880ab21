//! Store and indexing: incremental skip by content hash, failures recorded, kinds kept apart,
//! damaged store files reported by name, caches kept in step with the store.

use facelike_gallery::*;
use facelike_testdata::fake::{fake_face, fake_faces};
use facelike_types::{Descriptor, Metric, Rect};
use std::path::Path;

fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn index(g: &mut Gallery, photos: &Path, retry_failed: bool) -> IndexSummary {
    let sources = scan_directory(photos, None).unwrap();
    let opts = IndexOptions {
        batch_size: 3,
        retry_failed,
    };
    index_images(
        g,
        &sources,
        &DescriptorKind::dlib_raw(),
        &opts,
        |p| fake_faces(&std::fs::read(p).map_err(|e| e.to_string())?),
        |_| {},
    )
    .unwrap()
}

fn photo_set(root: &Path) {
    write(root, "alice/1.jpg", "alice one");
    write(root, "alice/2.jpg", "two alice faces");
    write(root, "bob/1.jpg", "bob one");
    write(root, "bob/broken.jpg", "fail: truncated jpeg");
    write(root, "bob/empty.jpg", "none here");
    write(root, "carol.png", "carol");
}

#[test]
fn incremental_index_skips_unchanged_files_by_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let gdir = tmp.path().join("g");
    photo_set(&photos);

    let mut g = Gallery::open_or_create(&gdir).unwrap();
    let s = index(&mut g, &photos, false);
    assert_eq!(s.images, 6);
    assert_eq!(s.indexed, 5);
    assert_eq!(s.skipped, 0);
    assert_eq!(s.no_faces, 1);
    // alice/1, bob/1, carol: one face each; "two alice faces": two.
    assert_eq!(s.faces, 5);
    assert_eq!(s.failed.len(), 1);
    assert!(s.failed[0].path.ends_with("bob/broken.jpg"));
    assert!(s.failed[0].reason.contains("fake failure"));
    assert_eq!(s.batches, 2);
    let v = g.verify().unwrap();
    assert_eq!((v.images, v.faces), (6, 5));
    assert!(v.checksums_verified);
    // The failure is recorded in the store.
    let key = canonical_key(&photos.join("bob/broken.jpg")).unwrap();
    match g.image(&key).unwrap().unwrap().status {
        ImageStatus::Failed { reason } => assert!(reason.contains("fake failure")),
        other => panic!("expected failure record, got {other:?}"),
    }

    // Second run: nothing changed, everything skipped (failures too, unless asked).
    let s = index(&mut g, &photos, false);
    assert_eq!((s.indexed, s.skipped, s.faces, s.batches), (0, 6, 0, 0));
    let gen = g.meta().generation;
    let s = index(&mut g, &photos, true);
    assert_eq!((s.indexed, s.skipped, s.failed.len()), (0, 5, 1));
    assert_eq!(g.meta().generation, gen, "a failed retry adds no face");

    // Change one file's content: only it is re-encoded, its old face replaced.
    let key = canonical_key(&photos.join("alice/1.jpg")).unwrap();
    let old_ids = match g.image(&key).unwrap().unwrap().status {
        ImageStatus::Indexed { faces } => faces,
        s => panic!("{s:?}"),
    };
    write(&photos, "alice/1.jpg", "two faces now");
    let s = index(&mut g, &photos, false);
    assert_eq!((s.indexed, s.reindexed, s.skipped, s.faces), (1, 1, 5, 2));
    let rec = g.image(&key).unwrap().unwrap();
    assert_eq!(
        rec.sha256,
        sha256_file(&photos.join("alice/1.jpg")).unwrap()
    );
    let new_ids = match rec.status {
        ImageStatus::Indexed { faces } => faces,
        s => panic!("{s:?}"),
    };
    assert_eq!(new_ids.len(), 2);
    assert!(g.faces(&old_ids).unwrap().is_empty(), "old faces removed");
    let faces = g.faces(&new_ids).unwrap();
    assert_eq!(
        faces[1].descriptor,
        fake_face(b"two faces now", 1).descriptor
    );
    assert_eq!(faces[1].meta.identity, "alice");
    assert_eq!(faces[1].meta.index, 1);
    assert_eq!(faces[1].meta.sha256, rec.sha256);
    assert_eq!(
        g.thumbnail(new_ids[0]).unwrap(),
        fake_face(b"two faces now", 0).thumbnail_png
    );
    let v = g.verify().unwrap();
    assert_eq!((v.images, v.faces), (6, 6));

    // Indexing from another working directory (relative paths) finds the same records.
    let s = {
        let sources: Vec<ImageSource> = scan_directory(&photos, None)
            .unwrap()
            .into_iter()
            .map(|s| ImageSource {
                path: Path::new(&photos)
                    .join("..")
                    .join("photos")
                    .join(s.path.strip_prefix(&photos).unwrap()),
                ..s
            })
            .collect();
        index_images(
            &mut g,
            &sources,
            &DescriptorKind::dlib_raw(),
            &IndexOptions::default(),
            |_| Err("must not be called".into()),
            |_| {},
        )
        .unwrap()
    };
    assert_eq!(s.skipped, 6);

    // Deleted files can be found and pruned.
    std::fs::remove_file(photos.join("carol.png")).unwrap();
    let missing = g.missing_images().unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(g.remove_images(&missing).unwrap(), 1);
    let v = g.verify().unwrap();
    assert_eq!((v.images, v.faces), (5, 5));

    // Reopening sees the same state; identities from folders and stems.
    drop(g);
    let g = Gallery::open_read_only(&gdir).unwrap();
    assert_eq!(g.meta().faces, 5);
    let mut names = g.identity_names().unwrap();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
}

#[test]
fn kinds_do_not_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let mut g = Gallery::open_or_create(tmp.path()).unwrap();
    let img = |name: &str| EncodedImage {
        path: format!("/nonexistent/{name}.jpg"),
        identity: name.into(),
        sha256: "00".into(),
        outcome: Ok(vec![fake_face(name.as_bytes(), 0)]),
    };
    g.commit_batch(&DescriptorKind::dlib_raw(), &[img("a")])
        .unwrap();
    let err = g
        .commit_batch(&DescriptorKind::dlib_normalized(), &[img("b")])
        .unwrap_err();
    assert!(matches!(err, GalleryError::KindMismatch { .. }), "{err}");
    assert!(err.to_string().contains("normalized"), "{err}");

    let idx = SearchIndex::load(&g, &LoadOptions::default()).unwrap();
    let q = fake_face(b"a", 0).descriptor;
    let opts = SearchOptions {
        kind: DescriptorKind::dlib_normalized(),
        ..Default::default()
    };
    assert!(matches!(
        idx.search(&q, &opts),
        Err(GalleryError::KindMismatch { .. })
    ));
    let hits = idx.search(&q, &SearchOptions::default()).unwrap();
    assert_eq!(hits[0].identity, "a");
    assert_eq!(hits[0].distance, 0.0);
}

#[test]
fn damaged_or_foreign_store_file_is_reported_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    // Garbage where the store should be.
    let gdir = tmp.path().join("garbage");
    std::fs::create_dir_all(&gdir).unwrap();
    let store = gdir.join("gallery.redb");
    std::fs::write(&store, vec![0x5au8; 10_000]).unwrap();
    for r in [
        Gallery::open(&gdir),
        Gallery::open_or_create(&gdir),
        Gallery::open_read_only(&gdir),
    ] {
        let err = r.unwrap_err();
        eprintln!("garbage store: {err}");
        assert!(matches!(err, GalleryError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(&*store.to_string_lossy()), "{err}");
    }

    // A real gallery, truncated to its first page.
    let gdir = tmp.path().join("truncated");
    {
        let mut g = Gallery::open_or_create(&gdir).unwrap();
        let batch: Vec<EncodedImage> = (0..200)
            .map(|i| EncodedImage {
                path: format!("/x/{i}.jpg"),
                identity: format!("p{}", i % 7),
                sha256: "00".into(),
                outcome: Ok(vec![fake_face(&[i as u8, 1], 0)]),
            })
            .collect();
        g.commit_batch(&DescriptorKind::dlib_raw(), &batch).unwrap();
    }
    let store = gdir.join("gallery.redb");
    let bytes = std::fs::read(&store).unwrap();
    std::fs::write(&store, &bytes[..4096]).unwrap();
    let err = Gallery::open(&gdir).unwrap_err();
    eprintln!("truncated store: {err}");
    assert!(
        matches!(err, GalleryError::Corrupt { .. } | GalleryError::Io { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&*store.to_string_lossy()), "{err}");

    // Bytes overwritten in the middle of a real gallery: opening, loading for search or
    // verifying reports the file; nothing panics, nothing is silently trusted by `verify`.
    let gdir = tmp.path().join("scribbled");
    {
        let mut g = Gallery::open_or_create(&gdir).unwrap();
        let batch: Vec<EncodedImage> = (0..300)
            .map(|i| EncodedImage {
                path: format!("/x/{i}.jpg"),
                identity: format!("p{}", i % 7),
                sha256: "00".into(),
                outcome: Ok(vec![fake_face(&[i as u8, 2], 0)]),
            })
            .collect();
        g.commit_batch(&DescriptorKind::dlib_raw(), &batch).unwrap();
    }
    let store = gdir.join("gallery.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 8192].iter_mut().for_each(|b| *b = 0xa5);
    std::fs::write(&store, &bytes).unwrap();
    let outcome = Gallery::open(&gdir).and_then(|mut g| {
        SearchIndex::load(&g, &LoadOptions::default())?;
        g.verify()
    });
    let err = outcome.expect_err("damage must be detected");
    eprintln!("scribbled store: {err}");
    assert!(err.to_string().contains(&*store.to_string_lossy()), "{err}");

    // Not a gallery at all.
    let err = Gallery::open(&tmp.path().join("nothing")).unwrap_err();
    assert!(matches!(err, GalleryError::NotFound { .. }), "{err}");
}

#[test]
fn a_second_writer_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let _g = Gallery::open_or_create(tmp.path()).unwrap();
    let err = Gallery::open(tmp.path()).unwrap_err();
    assert!(matches!(err, GalleryError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("gallery.redb"), "{err}");
}

#[test]
fn ann_caches_follow_the_store() {
    for kind in [AnnKind::Hnsw, AnnKind::Ivf] {
        ann_cache_follows_the_store(kind);
    }
}

fn ann_cache_follows_the_store(kind: AnnKind) {
    let tmp = tempfile::tempdir().unwrap();
    let mut g = Gallery::open_or_create(tmp.path()).unwrap();
    let batch = |lo: usize, hi: usize| -> Vec<EncodedImage> {
        (lo..hi)
            .map(|i| EncodedImage {
                path: format!("/x/{i}.jpg"),
                identity: format!("p{}", i % 50),
                sha256: format!("{i}"),
                outcome: Ok(vec![fake_face(format!("{i}").as_bytes(), 0)]),
            })
            .collect()
    };
    g.commit_batch(&DescriptorKind::dlib_raw(), &batch(0, 600))
        .unwrap();
    let opts = LoadOptions {
        ann: AnnPolicy::Always,
        kind,
        ..Default::default()
    };
    let idx = SearchIndex::load(&g, &opts).unwrap();
    assert!(
        matches!(idx.report().ann, AnnState::Built { .. }),
        "{:?}",
        idx.report()
    );
    let name = match kind {
        AnnKind::Hnsw => "hnsw-l2.bin",
        AnnKind::Ivf => "ivf-l2.bin",
    };
    let cache = g.cache_dir().join(name);
    assert!(cache.is_file());
    let idx = SearchIndex::load(&g, &opts).unwrap();
    assert_eq!(idx.report().ann, AnnState::Loaded);

    // The store grows: the graph is extended, and finds the new faces.
    g.commit_batch(&DescriptorKind::dlib_raw(), &batch(600, 700))
        .unwrap();
    let idx = SearchIndex::load(&g, &opts).unwrap();
    assert_eq!(idx.report().ann, AnnState::Extended { added: 100 });
    let q = fake_face(b"650", 0).descriptor;
    let o = SearchOptions {
        mode: SearchMode::Ann,
        k: 1,
        ..Default::default()
    };
    let hit = &idx.search(&q, &o).unwrap()[0];
    assert_eq!((hit.identity.as_str(), hit.distance), ("p0", 0.0));
    assert_eq!(
        SearchIndex::load(&g, &opts).unwrap().report().ann,
        AnnState::Loaded
    );

    // Faces removed: rebuilt.
    g.remove_images(&["/x/3.jpg".to_string()]).unwrap();
    let idx = SearchIndex::load(&g, &opts).unwrap();
    assert!(matches!(idx.report().ann, AnnState::Built { .. }));
    assert_eq!(idx.ann().unwrap().len(), 699);

    // A damaged cache is rebuilt, never trusted.
    let mut bytes = std::fs::read(&cache).unwrap();
    let n = bytes.len();
    bytes[n - 100..].iter_mut().for_each(|b| *b = 0xff);
    std::fs::write(&cache, &bytes).unwrap();
    let idx = SearchIndex::load(&g, &opts).unwrap();
    match &idx.report().ann {
        AnnState::Built { reason } => assert!(reason.contains(name), "{reason}"),
        s => panic!("{s:?}"),
    }
    std::fs::write(&cache, b"short").unwrap();
    let idx = SearchIndex::load(&g, &opts).unwrap();
    assert!(matches!(idx.report().ann, AnnState::Built { .. }));

    // The gallery more than doubles: IVF cells are retrained, the graph just grows.
    g.commit_batch(&DescriptorKind::dlib_raw(), &batch(700, 1500))
        .unwrap();
    let idx = SearchIndex::load(&g, &opts).unwrap();
    match (kind, &idx.report().ann) {
        (AnnKind::Ivf, AnnState::Built { reason }) => assert!(reason.contains("doubled")),
        (AnnKind::Hnsw, AnnState::Extended { added }) => assert_eq!(*added, 800),
        (k, s) => panic!("{k:?}: {s:?}"),
    }
}

#[test]
fn json_and_csv_records_have_the_cli_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let mut g = Gallery::open_or_create(tmp.path()).unwrap();
    let mut near = fake_face(b"x", 0);
    near.descriptor = Descriptor([0.1; 128]);
    g.commit_batch(
        &DescriptorKind::dlib_raw(),
        &[EncodedImage {
            path: "/photos/Ann, Lee/1.jpg".into(),
            identity: "Ann, Lee".into(),
            sha256: "00".into(),
            outcome: Ok(vec![near]),
        }],
    )
    .unwrap();
    let idx = SearchIndex::load(&g, &LoadOptions::default()).unwrap();
    let q = Descriptor([0.15; 128]);
    let matches = idx.search(&q, &SearchOptions::default()).unwrap();
    let rec = QueryFaceRecord::new(&g, "q.jpg", 0, Rect::new(1, 2, 3, 4), &matches).unwrap();
    let json = serde_json::to_string(&rec).unwrap();
    let d = Metric::L2.distance(&[0.15; 128], &[0.1; 128]);
    assert_eq!(
        json,
        format!(
            r#"{{"image":"q.jpg","face":0,"rect":[1,2,3,4],"matches":[{{"identity":"Ann, Lee","path":"/photos/Ann, Lee/1.jpg","distance":{},"same_person":true}}]}}"#,
            serde_json::to_string(&d).unwrap()
        )
    );
    // The CSV form of these records is the CLI's (facelike-cli gallery_cmd tests).
    let o = SearchOptions {
        by: SearchBy::Identity,
        ..Default::default()
    };
    let m = idx.search(&q, &o).unwrap();
    let rec = QueryFaceRecord::new(&g, "q.jpg", 0, Rect::new(1, 2, 3, 4), &m).unwrap();
    let v: serde_json::Value = serde_json::to_value(&rec).unwrap();
    assert_eq!(v["matches"][0]["faces"], 1);
    assert_eq!(v["matches"][0]["mean_distance"].as_f64().unwrap() as f32, d);
}

#[test]
fn an_empty_gallery_searches_to_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Gallery::open_or_create(tmp.path()).unwrap();
    for kind in [AnnKind::Ivf, AnnKind::Hnsw] {
        let idx = SearchIndex::load(
            &g,
            &LoadOptions {
                ann: AnnPolicy::Always,
                kind,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(idx.is_empty());
        let q = Descriptor([0.1; 128]);
        for by in [SearchBy::Face, SearchBy::Identity] {
            for mode in [SearchMode::Exact, SearchMode::Ann] {
                let o = SearchOptions {
                    by,
                    mode,
                    ..Default::default()
                };
                assert!(idx.search(&q, &o).unwrap().is_empty());
            }
        }
        assert_eq!(idx.recognize(&q, &SearchOptions::default()).unwrap(), None);
    }
}
