//! Faults against the real server: several indexers at once, `kill -9` of an indexer, the
//! server restarted in the middle of an index run and of a search, and the one-line errors
//! (wrong URL, wrong password, no `vector` extension, another descriptor space).
//!
//! The tests of this file take turns (one lock): the restart tests stop the server.

mod common;
use common::*;
use facelike_gallery::{scan_directory, IndexOptions, SearchMode, SearchOptions};
use facelike_pg::{PgError, PgGallery, PgLocation, RetryPolicy};
use facelike_types::{Descriptor, DescriptorKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn vectors(n: usize, seed: u64) -> Vec<[f32; 128]> {
    let mut rng = facelike_testdata::synthetic::Rng::new(seed);
    (0..n)
        .map(|_| std::array::from_fn(|_| (rng.gaussian() * 0.1) as f32))
        .collect()
}

fn names(n: usize, people: usize) -> Vec<String> {
    (0..n).map(|i| format!("p{:02}", i % people)).collect()
}

/// Faces, and faces that share a (photo, face index): must be 0.
fn counts(g: &PgGallery) -> (u64, i64) {
    let mut c = postgres::Config::clone(g.location().config())
        .connect(postgres::NoTls)
        .unwrap();
    let s = g.location().schema();
    let dups: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM (SELECT photo_id, face_index FROM \"{s}\".faces GROUP BY 1, 2 HAVING count(*) > 1) d"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    (g.stats().unwrap().faces, dups)
}

fn slow_encoder<'a>(
    v: &'a [[f32; 128]],
    pause: Duration,
) -> impl Fn(&Path) -> Result<Vec<facelike_gallery::NewFace>, String> + Sync + 'a {
    let inner = vector_encoder(v);
    move |p: &Path| {
        std::thread::sleep(pause);
        inner(p)
    }
}

/// The pg-dev.sh of this checkout, when it runs the test server (restart tests need it).
fn dev_script(url: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-dev.sh");
    let out = Command::new(&script).arg("url").output().ok()?;
    let ours = String::from_utf8_lossy(&out.stdout).trim() == url.trim();
    if !ours {
        let msg = "restart tests need the server of scripts/pg-dev.sh (FACELIKE_TEST_PG_URL=$(scripts/pg-dev.sh url))";
        if std::env::var("FACELIKE_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return None;
    }
    Some(script)
}

fn restart(script: &Path) {
    let st = Command::new(script)
        .args(["restart", "fast"])
        .status()
        .unwrap();
    assert!(st.success(), "pg-dev.sh restart failed");
}

#[test]
fn several_indexers_at_once_store_every_face_once() {
    let Some(url) = server() else { return };
    let _t = turn();
    let tmp = tempfile::tempdir().unwrap();
    let v = vectors(600, 3);
    let n = names(600, 20);
    // Folder a: photos 0..400, folder b: 400..600 (both written with their global index).
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for (i, name) in n.iter().enumerate() {
        let root = if i < 400 { &a } else { &b };
        write(root, &format!("{name}/{i:05}.jpg"), &format!("vec:{i}"));
    }
    let loc = fresh(&url, "conc");
    let kind = DescriptorKind::dlib_raw();
    let opts = IndexOptions {
        batch_size: 16,
        retry_failed: false,
    };
    // Three indexers on folder a, two on folder b, all at once, each with its own connection.
    let summaries: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = [&a, &a, &a, &b, &b]
            .into_iter()
            .map(|dir| {
                let loc = loc.clone();
                let (v, kind, opts) = (&v, &kind, &opts);
                s.spawn(move || {
                    let g = PgGallery::open_or_create(&loc).unwrap();
                    let src = scan_directory(dir, None).unwrap();
                    g.index_images(
                        &src,
                        kind,
                        opts,
                        slow_encoder(v, Duration::from_millis(2)),
                        |_| {},
                    )
                    .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let g = PgGallery::open(&loc).unwrap();
    assert_eq!(counts(&g), (600, 0));
    let indexed_a: usize = summaries[..3].iter().map(|s| s.indexed).sum();
    let indexed_b: usize = summaries[3..].iter().map(|s| s.indexed).sum();
    // Claims split the work: every photo encoded and committed by exactly one indexer.
    assert_eq!((indexed_a, indexed_b), (400, 200), "{summaries:?}");
    let faces: usize = summaries.iter().map(|s| s.faces).sum();
    assert_eq!(faces, 600);
    assert_eq!(g.identity_names().unwrap().len(), 20);
    cleanup(g);
}

/// The child of the kill -9 test: indexes `FACELIKE_PG_CHILD_DIR` slowly into the gallery at
/// `FACELIKE_PG_CHILD_URL`. Does nothing unless those are set (run by the parent only).
#[test]
#[ignore = "child process of kill_9_of_an_indexer_loses_only_its_open_batch"]
fn child_indexer() {
    let (Ok(url), Ok(dir)) = (
        std::env::var("FACELIKE_PG_CHILD_URL"),
        std::env::var("FACELIKE_PG_CHILD_DIR"),
    ) else {
        return;
    };
    let schema = std::env::var("FACELIKE_PG_CHILD_SCHEMA").unwrap();
    let loc = PgLocation::parse(&url)
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    let v = vectors(300, 5);
    let g = PgGallery::open_or_create(&loc).unwrap();
    let src = scan_directory(Path::new(&dir), None).unwrap();
    g.index_images(
        &src,
        &DescriptorKind::dlib_raw(),
        &IndexOptions {
            batch_size: 10,
            retry_failed: false,
        },
        slow_encoder(&v, Duration::from_millis(30)),
        |_| {},
    )
    .unwrap();
}

#[test]
fn kill_9_of_an_indexer_loses_only_its_open_batch() {
    let Some(url) = server() else { return };
    let _t = turn();
    let tmp = tempfile::tempdir().unwrap();
    let v = vectors(300, 5);
    vector_photos(tmp.path(), &names(300, 10));
    let loc = fresh(&url, "kill");
    let g = PgGallery::open_or_create(&loc).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_indexer", "--nocapture"])
        .env("FACELIKE_PG_CHILD_URL", &url)
        .env("FACELIKE_PG_CHILD_DIR", tmp.path())
        .env("FACELIKE_PG_CHILD_SCHEMA", loc.schema())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while g.stats().unwrap().images < 50 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "child made no progress"
        );
        assert!(child.try_wait().unwrap().is_none(), "child ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What it committed is whole: one face per photo recorded, no duplicates.
    let before = g.stats().unwrap();
    assert!(before.images >= 50 && before.images < 300, "{before:?}");
    assert_eq!(counts(&g), (before.images, 0));
    // Its claims died with its connection: a new run does the rest at once.
    let src = scan_directory(tmp.path(), None).unwrap();
    let s = g
        .index_images(
            &src,
            &DescriptorKind::dlib_raw(),
            &IndexOptions::default(),
            vector_encoder(&v),
            |_| {},
        )
        .unwrap();
    assert_eq!(s.skipped as u64, before.images);
    assert_eq!(s.indexed as u64, 300 - before.images);
    assert_eq!(counts(&g), (300, 0));
    cleanup(g);
}

#[test]
fn server_restart_mid_index_is_retried_and_resumed() {
    let Some(url) = server() else { return };
    let Some(script) = dev_script(&url) else {
        return;
    };
    let _t = turn();
    let tmp = tempfile::tempdir().unwrap();
    let v = vectors(200, 9);
    vector_photos(tmp.path(), &names(200, 10));
    let loc = fresh(&url, "restart");
    let mut g = PgGallery::open_or_create(&loc).unwrap();
    g.set_retry(RetryPolicy {
        max_wait: Duration::from_secs(60),
        ..Default::default()
    });
    let src = scan_directory(tmp.path(), None).unwrap();
    let watcher = PgGallery::open(&loc).unwrap();
    let summary = std::thread::scope(|s| {
        let h = s.spawn(|| {
            g.index_images(
                &src,
                &DescriptorKind::dlib_raw(),
                &IndexOptions {
                    batch_size: 8,
                    retry_failed: false,
                },
                slow_encoder(&v, Duration::from_millis(15)),
                |_| {},
            )
        });
        let t = Instant::now();
        while watcher.stats().unwrap().images < 40 {
            assert!(t.elapsed() < Duration::from_secs(120));
            std::thread::sleep(Duration::from_millis(20));
        }
        restart(&script);
        h.join().unwrap()
    })
    .expect("the indexer rides out the restart");
    assert!(g.reconnects() >= 1, "no reconnect happened");
    // A batch whose COMMIT reached the server just before it went down is found stored
    // unchanged on replay and counted as skipped; nothing is lost or doubled either way.
    assert_eq!(summary.indexed + summary.skipped, 200, "{summary:?}");
    assert!(
        summary.faces <= 200 && summary.faces + 8 >= 200,
        "{summary:?}"
    );
    assert_eq!(counts(&g), (200, 0));

    // A search across a restart: the broken connection is re-established, same answer.
    let q = Descriptor(v[17]);
    let o = SearchOptions {
        mode: SearchMode::Exact,
        ..Default::default()
    };
    let first = g.search(&q, &o).unwrap();
    restart(&script);
    let again = g.search(&q, &o).unwrap();
    assert_eq!(first, again);
    // With no retry window, a broken connection is one clear error.
    g.set_retry(RetryPolicy {
        max_wait: Duration::ZERO,
        ..Default::default()
    });
    restart(&script);
    let e = g.search(&q, &o).unwrap_err().to_string();
    assert!(
        e.starts_with("lost the connection to PostgreSQL gallery"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    cleanup(PgGallery::open(&loc).unwrap());
}

#[test]
fn wrong_url_password_and_missing_vector_are_one_line_errors() {
    let Some(url) = server() else { return };
    let _t = turn();
    let base = PgLocation::parse(&url).unwrap();
    let one_line = |e: PgError| {
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        s
    };
    // Nothing listening.
    let e = one_line(
        PgGallery::open(&PgLocation::parse("postgres://u:pw@127.0.0.1:1/db").unwrap()).unwrap_err(),
    );
    assert!(
        e.starts_with("cannot connect to PostgreSQL at u@127.0.0.1:1/db"),
        "{e}"
    );
    assert!(!e.contains("pw"));
    // Not a URL.
    let e = one_line(PgLocation::parse("postgres://u@h:99999999/db").unwrap_err());
    assert!(e.starts_with("invalid PostgreSQL URL"), "{e}");
    // Wrong password (the password never shows).
    let wrong = format!(
        "postgres://postgres:not-the-password@{}/postgres",
        base.host_port()
    );
    let e = one_line(PgGallery::open(&PgLocation::parse(&wrong).unwrap()).unwrap_err());
    assert!(e.contains("refused the password of user postgres"), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");

    // A database without pgvector, and a user who may not install it.
    let mut admin = base.config().connect(postgres::NoTls).unwrap();
    let db = format!("novector_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
        format!("DROP ROLE IF EXISTS plain_{db}"),
        format!("CREATE ROLE plain_{db} LOGIN PASSWORD 'plainpw'"),
        format!("GRANT CREATE ON DATABASE {db} TO plain_{db}"),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    let plain = format!("postgres://plain_{db}:plainpw@{}/{db}", base.host_port());
    let e = one_line(PgGallery::open_or_create(&PgLocation::parse(&plain).unwrap()).unwrap_err());
    assert!(
        e.starts_with(&format!(
            "database plain_{db}@{}/{db} has no `vector` extension",
            base.host_port()
        )),
        "{e}"
    );
    assert!(e.contains("permission denied"), "{e}");
    admin.batch_execute(&format!("DROP DATABASE {db}")).unwrap();
    admin
        .batch_execute(&format!("DROP ROLE plain_{db}"))
        .unwrap();

    // A schema written by a newer facelike.
    let loc = fresh(&url, "newer");
    let g = PgGallery::open_or_create(&loc).unwrap();
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".facelike_migrations (version, name) VALUES (99, 'future')",
                loc.schema()
            ),
            &[],
        )
        .unwrap();
    drop(g);
    let e = one_line(PgGallery::open(&loc).unwrap_err());
    assert!(
        e.contains("has schema version 99; this facelike knows up to 1"),
        "{e}"
    );
    admin
        .batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", loc.schema()))
        .unwrap();
}

#[test]
fn another_descriptor_space_is_refused_and_reindex_is_incremental() {
    let Some(url) = server() else { return };
    let _t = turn();
    let tmp = tempfile::tempdir().unwrap();
    let v = vectors(30, 11);
    vector_photos(tmp.path(), &names(30, 3));
    write(tmp.path(), "p00/broken.jpg", "not a vector photo");
    let loc = fresh(&url, "kind");
    let g = PgGallery::open_or_create(&loc).unwrap();
    let src = scan_directory(tmp.path(), None).unwrap();
    let raw = DescriptorKind::dlib_raw();
    let o = IndexOptions::default();
    let s = g
        .index_images(&src, &raw, &o, vector_encoder(&v), |_| {})
        .unwrap();
    assert_eq!((s.indexed, s.faces, s.failed.len()), (30, 30, 1));
    assert!(s.failed[0].reason.contains("not a vector photo"));
    assert_eq!(g.stats().unwrap().failed_images, 1);
    // Unchanged: all skipped (the failed file too, unless retried).
    let s = g
        .index_images(&src, &raw, &o, vector_encoder(&v), |_| {})
        .unwrap();
    assert_eq!((s.indexed, s.skipped), (0, 31));
    // A changed file replaces its faces.
    write(tmp.path(), "p01/00001.jpg", "vec:2");
    let s = g
        .index_images(&src, &raw, &o, vector_encoder(&v), |_| {})
        .unwrap();
    assert_eq!((s.indexed, s.reindexed, s.faces), (1, 1, 1));
    assert_eq!(counts(&g), (30, 0));
    // Another space: refused for indexing and for queries, naming both.
    write(tmp.path(), "p02/new.jpg", "vec:3");
    let src = scan_directory(tmp.path(), None).unwrap();
    let unit = DescriptorKind::dlib_normalized();
    let e = g
        .index_images(&src, &unit, &o, vector_encoder(&v), |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "holds {} descriptors; refusing to mix in {}",
            raw.label(),
            unit.label()
        )),
        "{e}"
    );
    let e = g
        .search(
            &Descriptor(v[0]),
            &SearchOptions {
                kind: unit,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing to mix in"), "{e}");
    cleanup(g);
}
