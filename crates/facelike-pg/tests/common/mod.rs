//! Shared by the PostgreSQL tests: the server from `FACELIKE_TEST_PG_URL`, a fresh schema per
//! test, photo folders whose "encoding" is known.
#![allow(dead_code)]

use facelike_gallery::NewFace;
use facelike_pg::{PgGallery, PgLocation};
use facelike_types::{Descriptor, Point, Rect};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The test server's URL, or `None` after printing how to get one (a failure in CI, where
/// `FACELIKE_REQUIRE_ALL=1`).
pub fn server() -> Option<String> {
    match std::env::var("FACELIKE_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let msg = "PostgreSQL tests need a server: start one with scripts/pg-dev.sh start and set FACELIKE_TEST_PG_URL=$(scripts/pg-dev.sh url)";
            if std::env::var("FACELIKE_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

static N: AtomicUsize = AtomicUsize::new(0);

/// A schema name unique to this process and call.
pub fn fresh_schema(tag: &str) -> String {
    format!(
        "t_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A location for a new, empty gallery on the test server (schema dropped first).
pub fn fresh(url: &str, tag: &str) -> PgLocation {
    PgLocation::parse(url)
        .unwrap()
        .with_schema(&fresh_schema(tag))
        .unwrap()
}

/// Drops the test's schema.
pub fn cleanup(g: PgGallery) {
    g.drop_gallery().unwrap();
}

pub fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Photos `root/<identity>/<i>.jpg` whose content is `vec:<i>`: the encoder below gives them
/// descriptor `vectors[i]`.
pub fn vector_photos(root: &Path, identities: &[String]) {
    for (i, ident) in identities.iter().enumerate() {
        write(root, &format!("{ident}/{i:05}.jpg"), &format!("vec:{i}"));
    }
}

/// The encoder of [`vector_photos`].
pub fn vector_encoder<'a>(
    vectors: &'a [[f32; 128]],
) -> impl Fn(&Path) -> Result<Vec<NewFace>, String> + Sync + 'a {
    move |p: &Path| {
        let s = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
        let i: usize = s
            .strip_prefix("vec:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("not a vector photo: {s}"))?;
        Ok(vec![NewFace {
            rect: Rect::new(i as i64, 1, i as i64 + 10, 11),
            landmarks: vec![Point::new(1, 2), Point::new(3, 4)],
            descriptor: Descriptor(vectors[i]),
            thumbnail_png: None,
        }])
    }
}
