//! # facelike-gallery: a face gallery on disk, and look-alike search at any size
//!
//! A *gallery* is a folder that stores, for every face found in a set of photos, its identity,
//! source path, the photo's SHA-256, the face rectangle, landmarks, 128-D descriptor and a
//! small thumbnail. It is embedded (no server): one [redb](https://docs.rs/redb) file plus
//! disposable caches.
//!
//! ```text
//! GALLERY/
//!   gallery.redb        the store (the only file that matters; see `store` for its tables)
//!   cache/hnsw-l2.bin   HNSW graph over the descriptors, rebuilt or extended when stale
//! ```
//!
//! This crate does not detect or encode faces: the caller passes an encoder closure (photo →
//! faces with rect, landmarks, [`facelike::Descriptor`], optional thumbnail PNG), so the
//! `facelike` CLI's commands stay thin:
//!
//! * `facelike index DIR --gallery G`: [`scan_directory`] → [`Gallery::open_or_create`] →
//!   [`index_images`] (prints the [`IndexSummary`]) → optionally [`SearchIndex::load`] with
//!   [`AnnPolicy::Always`] to have the graph ready for big galleries.
//! * `facelike search PHOTO --gallery G [-k 5] [--by face|identity] [--ann]`:
//!   [`Gallery::open_read_only`] → [`SearchIndex::load`] → per query face
//!   [`SearchIndex::search`] → [`QueryFaceRecord::new`] → one JSON line (serde) or
//!   [`QueryFaceRecord::csv_rows`].
//! * `facelike recognize`: [`SearchIndex::recognize`]; `facelike compare`: [`compare`].
//!
//! ## Store choice: redb
//!
//! redb 4.6 is a pure-Rust, ACID, copy-on-write B-tree store: 7 crates and about 22 s to
//! build, no C toolchain, one file. A commit is durable when `commit()` returns, and a crash
//! (`kill -9`, power loss) at any moment leaves the last committed state readable: the file
//! holds two commit slots and redb repairs its allocator state on the next open. The crate's
//! `kill -9` test checks exactly that with a real child process. rusqlite (bundled SQLite)
//! would give SQL, but costs a C build (~55 s, nearly all of it SQLite) and nothing here
//! needs queries beyond key lookups and key ranges. Only one process may write at a time
//! (redb's file lock); a second gets [`GalleryError::Locked`] naming the file.
//!
//! Records are small JSON documents (schema changes stay readable), except descriptors
//! (`identity id u32 + 128 × f32`, little-endian) and thumbnails (PNG bytes), which have their
//! own tables so that loading every descriptor for search touches nothing else.
//!
//! ## Indexing
//!
//! Incremental: each file is keyed by its canonical path and skipped when its SHA-256 is
//! unchanged. Resumable and crash-safe: encoded files are committed in batches, one
//! transaction per batch, with the faces, image records and counters of that batch; an
//! interrupted run loses at most the uncommitted batch and the next run skips everything
//! committed. Parallel: the encoder runs on rayon's pool while the calling thread commits.
//! Files that fail are recorded with their reason (and listed in the summary). Descriptors
//! carry a [`DescriptorKind`] (model, raw or normalised, adapter id); a gallery refuses faces
//! or queries of another kind, so spaces never mix.
//!
//! ## Search
//!
//! * **Exact** (default below [`ANN_THRESHOLD`] faces): all descriptors sit in one contiguous
//!   f32 matrix; a SIMD kernel (AVX-512 / AVX2 / baseline, chosen at run time) scores blocks
//!   of rows, a bounded heap keeps the top k, and rayon splits the rows across cores. The top
//!   candidates are re-scored in f64 with [`facelike::Metric::distance`], so reported
//!   distances equal face_recognition's.
//! * **By identity**: identities ranked by their nearest face, each with the mean distance
//!   over all its faces.
//! * **HNSW** (default from [`ANN_THRESHOLD`] faces, or on request): a graph over the matrix
//!   rows ([`hnsw`]), persisted in `cache/`, extended in place when the store only grew and
//!   rebuilt when faces were removed.
//!
//! Metrics: L2 (face_recognition's; tolerance 0.6 on raw descriptors), L1 and cosine.

pub mod error;
pub mod hnsw;
pub mod index;
pub mod ivf;
pub mod kernels;
pub mod kind;
pub mod matrix;
pub mod scan;
pub mod search;
pub mod store;
pub mod synthetic;

pub use error::{GalleryError, Result};
pub use hnsw::{Hnsw, HnswParams};
pub use index::{index_images, FailedImage, IndexOptions, IndexProgress, IndexSummary};
pub use ivf::{Ivf, IvfParams};
pub use kind::DescriptorKind;
pub use scan::{scan_directory, sha256_file, ImageSource};
pub use search::{
    auto_nprobe, compare, default_tolerance, Ann, AnnKind, AnnPolicy, AnnState, Comparison,
    LoadOptions, LoadReport, Match, MatchRecord, QueryFaceRecord, SearchBy, SearchIndex,
    SearchMode, SearchOptions, ANN_THRESHOLD, DEFAULT_EF,
};
pub use store::{
    canonical_key, BatchReport, EncodedImage, FaceMeta, FaceRecord, Gallery, GalleryStats,
    ImageRecord, ImageStatus, NewFace, PlanAction, PlannedImage, StoreMeta, VerifyReport,
};

/// A deterministic stand-in for the face encoder, shared by the crash-test child process and
/// the tests (not for production use).
#[doc(hidden)]
pub mod testing {
    use crate::store::NewFace;
    use facelike::{Descriptor, Point, Rect};
    use sha2::{Digest, Sha256};

    /// Faces "found" in a file's bytes: content starting with `fail` fails, `none` has no
    /// face, `two` has two faces, anything else one. Descriptors derive from the content's
    /// hash, so a test can recompute what must be stored.
    pub fn fake_faces(bytes: &[u8]) -> Result<Vec<NewFace>, String> {
        if bytes.starts_with(b"fail") {
            return Err("cannot decode: fake failure".into());
        }
        let n = if bytes.starts_with(b"none") {
            0
        } else if bytes.starts_with(b"two") {
            2
        } else {
            1
        };
        Ok((0..n).map(|i| fake_face(bytes, i)).collect())
    }

    /// The `i`-th fake face of some content.
    pub fn fake_face(bytes: &[u8], i: u32) -> NewFace {
        let mut h = Sha256::new();
        h.update(bytes);
        h.update(i.to_le_bytes());
        let seed = h.finalize();
        let mut rng = crate::synthetic::Rng::new(u64::from_le_bytes(seed[..8].try_into().unwrap()));
        let d: [f32; 128] = std::array::from_fn(|_| (rng.gaussian() * 0.05) as f32);
        NewFace {
            rect: Rect::new(10 * i as i64, 20, 10 * i as i64 + 80, 100),
            landmarks: (0..5).map(|k| Point::new(k, 2 * k + i as i64)).collect(),
            descriptor: Descriptor(d),
            thumbnail_png: Some(seed.to_vec().repeat(32)),
        }
    }
}
