//! The gallery store: a folder holding one redb file (the truth) and disposable caches.
//!
//! Tables of `gallery.redb` (all written only inside one transaction per batch):
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"meta"` | JSON [`StoreMeta`]: format version, store id, descriptor kind, counters |
//! | `images` | canonical path | JSON [`ImageRecord`]: sha256, identity, indexed face ids or failure reason |
//! | `faces` | face id (u64) | JSON [`FaceMeta`]: image path and SHA-256, face index, identity, rect, landmarks |
//! | `vectors` | face id | identity id (u32 LE) + 128 × f32 LE: what search loads |
//! | `thumbs` | face id | PNG bytes from the caller |
//! | `identity_ids` / `identity_names` | name / id | id / name |
//!
//! Face ids only grow and are never reused, so "faces added since generation g" is a key range,
//! which lets the caches be brought up to date incrementally.

use crate::error::{GalleryError, Result};
use crate::scan::{sha256_file, ImageSource};
use facelike_types::descriptor::DESCRIPTOR_LEN;
use facelike_types::DescriptorKind;
use facelike_types::{Descriptor, Point, Rect};
use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Name of the store file inside a gallery folder.
pub const STORE_FILE: &str = "gallery.redb";
/// Name of the cache folder inside a gallery folder.
pub const CACHE_DIR: &str = "cache";
/// Version of the table layout; a store of another version is refused with a clear error.
pub const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const FACES: TableDefinition<u64, &[u8]> = TableDefinition::new("faces");
const VECTORS: TableDefinition<u64, &[u8]> = TableDefinition::new("vectors");
const THUMBS: TableDefinition<u64, &[u8]> = TableDefinition::new("thumbs");
const IDENTITY_IDS: TableDefinition<&str, u32> = TableDefinition::new("identity_ids");
const IDENTITY_NAMES: TableDefinition<u32, &str> = TableDefinition::new("identity_names");

const VECTOR_BYTES: usize = 4 + 4 * DESCRIPTOR_LEN;

/// Store-wide facts, kept under one key so that a batch updates them atomically.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreMeta {
    /// Table layout version ([`FORMAT_VERSION`] when written by this crate).
    pub format: u32,
    /// Random id given at creation: caches of another store (same folder, recreated) never match.
    pub store_id: String,
    /// The descriptor space, fixed by the first committed face.
    pub kind: Option<DescriptorKind>,
    /// Bumped by every commit that adds or removes faces.
    pub generation: u64,
    /// Bumped by every commit that removes faces: caches with another value are rebuilt whole.
    pub removals: u64,
    /// The id the next stored face gets (ids are never reused).
    pub next_face_id: u64,
    /// Faces stored now.
    pub faces: u64,
    /// Files recorded now, indexed or failed.
    pub images: u64,
    /// Of those, files recorded as failed.
    pub failed_images: u64,
    /// Identity names registered; their ids are `0..identities`. Names stay registered when
    /// their faces are removed.
    pub identities: u32,
}

/// What the store knows about one source file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Canonical absolute path (the table key).
    pub path: String,
    /// SHA-256 of the file's bytes when it was indexed (lower-case hex).
    pub sha256: String,
    /// The identity the file's faces were stored under.
    pub identity: String,
    /// Whether it was encoded, and its faces or failure.
    pub status: ImageStatus,
    /// Seconds since the Unix epoch.
    pub indexed_at: u64,
}

/// Outcome of indexing one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Encoded; these faces were stored (possibly none).
    Indexed {
        /// Ids of the faces stored for this file, in the encoder's order.
        faces: Vec<u64>,
    },
    /// Could not be decoded or encoded; the reason is kept so reports can list it.
    Failed {
        /// The encoder's or decoder's message.
        reason: String,
    },
}

/// A face's metadata (everything but the descriptor and thumbnail).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceMeta {
    /// Store key (canonical path) of the source file.
    pub image: String,
    /// SHA-256 of the source file (as in its [`ImageRecord`]).
    #[serde(default)]
    pub sha256: String,
    /// Index of the face within its image, in the encoder's order.
    pub index: u32,
    /// The identity name, as in the image's record.
    pub identity: String,
    /// The face's box in the source image's pixels (dlib's inclusive rectangle; may extend
    /// past the image).
    pub rect: Rect,
    /// The landmark points the encoder used, in image pixels, in its model's order.
    pub landmarks: Vec<Point>,
}

/// A stored face, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceRecord {
    /// The face id (the key of the `faces` and `vectors` tables).
    pub id: u64,
    /// Its metadata.
    pub meta: FaceMeta,
    /// Dense id of its identity (see [`Gallery::identity_names`]).
    pub identity_id: u32,
    /// The descriptor as stored, in the gallery's [`DescriptorKind`] space.
    pub descriptor: Descriptor,
}

/// A face produced by the caller's encoder, to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFace {
    /// The face's box in the photo's pixels (dlib's inclusive rectangle).
    pub rect: Rect,
    /// The landmark points in photo pixels, in the shape model's order.
    pub landmarks: Vec<Point>,
    /// The descriptor, in the space of the `kind` the batch is committed with (raw or
    /// unit-length as that kind says).
    pub descriptor: Descriptor,
    /// A small picture of the face (PNG bytes, e.g. 64×64) for later contact sheets.
    pub thumbnail_png: Option<Vec<u8>>,
}

/// One file's encoding result, ready to commit.
#[derive(Clone, Debug)]
pub struct EncodedImage {
    /// The path as the store keys it (see [`canonical_key`]).
    pub path: String,
    /// The identity its faces are stored under.
    pub identity: String,
    /// SHA-256 of the file's bytes (lower-case hex), for skipping it when unchanged.
    pub sha256: String,
    /// The faces found, or why the file could not be encoded.
    pub outcome: std::result::Result<Vec<NewFace>, String>,
}

/// What one committed batch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Files committed (new, replaced or failed).
    pub images: usize,
    /// Faces stored.
    pub faces_added: usize,
    /// Faces dropped with the older records of re-indexed files.
    pub faces_removed: usize,
    /// Files recorded as failed.
    pub failed: usize,
    /// The store's generation after the commit.
    pub generation: u64,
}

/// Counts for `facelike gallery info`-style reports.
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryStats {
    /// The descriptor space; `None` until the first face is stored.
    pub kind: Option<DescriptorKind>,
    /// Files recorded, indexed or failed.
    pub images: u64,
    /// Of those, files recorded as failed.
    pub failed_images: u64,
    /// Faces stored.
    pub faces: u64,
    /// Identity names registered (including any left without faces).
    pub identities: u32,
    /// Commits so far that added or removed faces.
    pub generation: u64,
    /// Size of the store file on disk, in bytes (0 when it cannot be read).
    pub store_bytes: u64,
}

/// What [`Gallery::verify`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Image records checked.
    pub images: usize,
    /// Faces checked.
    pub faces: usize,
    /// Whether redb's page checksums were verified too (only for read-write opens).
    pub checksums_verified: bool,
}

/// The key under which a file is stored: its canonical absolute path, so that indexing the
/// same folder from another working directory finds the same records.
pub fn canonical_key(path: &Path) -> Result<String> {
    let c = std::fs::canonicalize(path).map_err(|e| GalleryError::io(path, e))?;
    Ok(c.to_string_lossy().into_owned())
}

enum Db {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// An open gallery. See the crate documentation for the layout.
pub struct Gallery {
    dir: PathBuf,
    store_path: PathBuf,
    db: Db,
    meta: StoreMeta,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "internal error while reading the file".to_owned()
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn new_store_id(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(t.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(dir.to_string_lossy().as_bytes());
    crate::scan::to_hex(&h.finalize()[..8])
}

impl Gallery {
    /// Opens the gallery in `dir`, creating the folder and an empty store if there is none.
    pub fn open_or_create(dir: &Path) -> Result<Gallery> {
        std::fs::create_dir_all(dir).map_err(|e| GalleryError::io(dir, e))?;
        let store_path = dir.join(STORE_FILE);
        let fresh = !store_path.exists();
        let db = open_rw(&store_path, true)?;
        let mut g = Gallery {
            dir: dir.to_path_buf(),
            store_path,
            db: Db::ReadWrite(db),
            meta: StoreMeta {
                format: FORMAT_VERSION,
                store_id: String::new(),
                kind: None,
                generation: 0,
                removals: 0,
                next_face_id: 0,
                faces: 0,
                images: 0,
                failed_images: 0,
                identities: 0,
            },
        };
        match g.read_meta()? {
            Some(m) => g.meta = m,
            None if fresh || g.is_empty_store()? => g.initialise()?,
            None => {
                return Err(GalleryError::Corrupt {
                    path: g.store_path.clone(),
                    detail: "a redb file without gallery metadata (not a facelike gallery?)".into(),
                })
            }
        }
        g.check_format()?;
        Ok(g)
    }

    /// Opens an existing gallery for reading and writing.
    pub fn open(dir: &Path) -> Result<Gallery> {
        let store_path = Self::existing_store(dir)?;
        let db = open_rw(&store_path, false)?;
        Self::finish_open(dir, store_path, Db::ReadWrite(db))
    }

    /// Opens an existing gallery read-only (several processes may search at once). A store
    /// left unclean by a crash needs one read-write open first, which repairs it.
    pub fn open_read_only(dir: &Path) -> Result<Gallery> {
        let store_path = Self::existing_store(dir)?;
        let r = catch_unwind(AssertUnwindSafe(|| {
            redb::Builder::new().open_read_only(&store_path)
        }));
        let db = match r {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_error(&store_path, e)),
            Err(p) => {
                return Err(GalleryError::Corrupt {
                    path: store_path,
                    detail: panic_text(p),
                })
            }
        };
        Self::finish_open(dir, store_path, Db::ReadOnly(db))
    }

    fn existing_store(dir: &Path) -> Result<PathBuf> {
        let store_path = dir.join(STORE_FILE);
        if !store_path.is_file() {
            return Err(GalleryError::NotFound {
                path: dir.to_path_buf(),
            });
        }
        Ok(store_path)
    }

    fn finish_open(dir: &Path, store_path: PathBuf, db: Db) -> Result<Gallery> {
        let mut g = Gallery {
            dir: dir.to_path_buf(),
            store_path,
            db,
            meta: StoreMeta {
                format: 0,
                store_id: String::new(),
                kind: None,
                generation: 0,
                removals: 0,
                next_face_id: 0,
                faces: 0,
                images: 0,
                failed_images: 0,
                identities: 0,
            },
        };
        g.meta = g.read_meta()?.ok_or_else(|| GalleryError::Corrupt {
            path: g.store_path.clone(),
            detail: "no gallery metadata (not a facelike gallery?)".into(),
        })?;
        g.check_format()?;
        Ok(g)
    }

    fn check_format(&self) -> Result<()> {
        if self.meta.format != FORMAT_VERSION {
            return Err(GalleryError::Corrupt {
                path: self.store_path.clone(),
                detail: format!(
                    "store format {} but this build reads format {FORMAT_VERSION}",
                    self.meta.format
                ),
            });
        }
        Ok(())
    }

    /// The gallery folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The redb file.
    pub fn store_path(&self) -> &Path {
        &self.store_path
    }

    /// The folder of disposable caches (matrix snapshot, HNSW graphs).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.join(CACHE_DIR)
    }

    /// Store-wide facts as of the last commit seen by this handle.
    pub fn meta(&self) -> &StoreMeta {
        &self.meta
    }

    /// The descriptor space, once a face has been stored.
    pub fn kind(&self) -> Option<&DescriptorKind> {
        self.meta.kind.as_ref()
    }

    fn store_err(&self, e: impl std::fmt::Display) -> GalleryError {
        GalleryError::Store {
            path: self.store_path.clone(),
            detail: e.to_string(),
        }
    }

    fn corrupt(&self, detail: impl Into<String>) -> GalleryError {
        GalleryError::Corrupt {
            path: self.store_path.clone(),
            detail: detail.into(),
        }
    }

    /// Runs a read against the store, turning a panic inside redb (which a file damaged from
    /// outside can cause) into an error that names the file.
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(p) => Err(self.corrupt(panic_text(p))),
        }
    }

    fn begin_read(&self) -> Result<ReadTransaction> {
        let r = match &self.db {
            Db::ReadWrite(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        };
        r.map_err(|e| self.store_err(e))
    }

    fn begin_write(&self) -> Result<WriteTransaction> {
        match &self.db {
            Db::ReadWrite(db) => db.begin_write().map_err(|e| self.store_err(e)),
            Db::ReadOnly(_) => Err(GalleryError::Invalid(format!(
                "gallery {} was opened read-only",
                self.dir.display()
            ))),
        }
    }

    fn is_empty_store(&self) -> Result<bool> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let n = tx.list_tables().map_err(|e| self.store_err(e))?.count();
            Ok(n == 0)
        })
    }

    fn initialise(&mut self) -> Result<()> {
        self.meta.store_id = new_store_id(&self.dir);
        let tx = self.begin_write()?;
        {
            // Create every table so that readers never meet a missing one.
            let mut m = tx.open_table(META).map_err(|e| self.store_err(e))?;
            let json = serde_json::to_vec(&self.meta).expect("meta serialises");
            m.insert("meta", json.as_slice())
                .map_err(|e| self.store_err(e))?;
            tx.open_table(IMAGES).map_err(|e| self.store_err(e))?;
            tx.open_table(FACES).map_err(|e| self.store_err(e))?;
            tx.open_table(VECTORS).map_err(|e| self.store_err(e))?;
            tx.open_table(THUMBS).map_err(|e| self.store_err(e))?;
            tx.open_table(IDENTITY_IDS).map_err(|e| self.store_err(e))?;
            tx.open_table(IDENTITY_NAMES)
                .map_err(|e| self.store_err(e))?;
        }
        tx.commit().map_err(|e| self.store_err(e))
    }

    fn read_meta(&self) -> Result<Option<StoreMeta>> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = match tx.open_table(META) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.store_err(e)),
            };
            let v = t.get("meta").map_err(|e| self.store_err(e))?;
            match v {
                None => Ok(None),
                Some(v) => serde_json::from_slice(v.value())
                    .map(Some)
                    .map_err(|e| self.corrupt(format!("metadata: {e}"))),
            }
        })
    }

    /// Re-reads the store-wide facts (another handle may have committed since).
    pub fn refresh(&mut self) -> Result<()> {
        if let Some(m) = self.read_meta()? {
            self.meta = m;
        }
        Ok(())
    }

    /// Counts of what is stored.
    pub fn stats(&self) -> Result<GalleryStats> {
        let store_bytes = std::fs::metadata(&self.store_path)
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(GalleryStats {
            kind: self.meta.kind.clone(),
            images: self.meta.images,
            failed_images: self.meta.failed_images,
            faces: self.meta.faces,
            identities: self.meta.identities,
            generation: self.meta.generation,
            store_bytes,
        })
    }

    /// The stored record of a file (looked up by [`canonical_key`]), if any.
    pub fn image(&self, key: &str) -> Result<Option<ImageRecord>> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = tx.open_table(IMAGES).map_err(|e| self.store_err(e))?;
            let v = t.get(key).map_err(|e| self.store_err(e))?;
            v.map(|v| decode_json(self, "image record", v.value()))
                .transpose()
        })
    }

    /// Every image record, in path order.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = tx.open_table(IMAGES).map_err(|e| self.store_err(e))?;
            let mut out = Vec::new();
            for r in t.iter().map_err(|e| self.store_err(e))? {
                let (_, v) = r.map_err(|e| self.store_err(e))?;
                out.push(decode_json(self, "image record", v.value())?);
            }
            Ok(out)
        })
    }

    /// Image records whose files no longer exist (moved or deleted since indexing).
    pub fn missing_images(&self) -> Result<Vec<String>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|r| !Path::new(&r.path).exists())
            .map(|r| r.path)
            .collect())
    }

    /// Identity names by id (index = identity id).
    pub fn identity_names(&self) -> Result<Vec<String>> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = tx
                .open_table(IDENTITY_NAMES)
                .map_err(|e| self.store_err(e))?;
            let mut out = Vec::new();
            for r in t.iter().map_err(|e| self.store_err(e))? {
                let (k, v) = r.map_err(|e| self.store_err(e))?;
                let id = k.value() as usize;
                if id != out.len() {
                    return Err(self.corrupt(format!("identity ids not dense at {id}")));
                }
                out.push(v.value().to_owned());
            }
            Ok(out)
        })
    }

    /// Faces by id, with descriptors. Unknown ids are skipped.
    pub fn faces(&self, ids: &[u64]) -> Result<Vec<FaceRecord>> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let ft = tx.open_table(FACES).map_err(|e| self.store_err(e))?;
            let vt = tx.open_table(VECTORS).map_err(|e| self.store_err(e))?;
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                let Some(m) = ft.get(id).map_err(|e| self.store_err(e))? else {
                    continue;
                };
                let meta: FaceMeta = decode_json(self, "face record", m.value())?;
                let v = vt
                    .get(id)
                    .map_err(|e| self.store_err(e))?
                    .ok_or_else(|| self.corrupt(format!("face {id} has no descriptor")))?;
                let (identity_id, descriptor) = decode_vector(v.value())
                    .ok_or_else(|| self.corrupt(format!("face {id}: bad descriptor bytes")))?;
                out.push(FaceRecord {
                    id,
                    meta,
                    identity_id,
                    descriptor,
                });
            }
            Ok(out)
        })
    }

    /// A face's thumbnail PNG, if the encoder supplied one.
    pub fn thumbnail(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = tx.open_table(THUMBS).map_err(|e| self.store_err(e))?;
            Ok(t.get(id)
                .map_err(|e| self.store_err(e))?
                .map(|v| v.value().to_vec()))
        })
    }

    /// Descriptors of faces with id `>= from_id`, in id order: (ids, identity ids, row-major
    /// 128-wide matrix). Search loads the gallery through this.
    pub fn load_vectors(&self, from_id: u64) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = tx.open_table(VECTORS).map_err(|e| self.store_err(e))?;
            let n = t.len().map_err(|e| self.store_err(e))? as usize;
            let mut ids = Vec::with_capacity(if from_id == 0 { n } else { 0 });
            let mut idents = Vec::with_capacity(ids.capacity());
            let mut data = Vec::with_capacity(ids.capacity() * DESCRIPTOR_LEN);
            for r in t.range(from_id..).map_err(|e| self.store_err(e))? {
                let (k, v) = r.map_err(|e| self.store_err(e))?;
                let bytes = v.value();
                if bytes.len() != VECTOR_BYTES {
                    return Err(self.corrupt(format!("face {}: bad descriptor bytes", k.value())));
                }
                ids.push(k.value());
                idents.push(u32::from_le_bytes(bytes[..4].try_into().unwrap()));
                data.extend(
                    bytes[4..]
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
                );
            }
            Ok((ids, idents, data))
        })
    }

    /// Hashes the sources (in parallel) and decides for each whether it must be (re)indexed.
    /// A file whose path is stored with the same SHA-256 is skipped; so is a file that failed
    /// before with the same content, unless `retry_failed`.
    pub fn plan(&self, sources: &[ImageSource], retry_failed: bool) -> Result<Vec<PlannedImage>> {
        use rayon::prelude::*;
        // (source, Ok((store key, sha256)) or Err(why it could not be read))
        type Hashed = (ImageSource, std::result::Result<(String, String), String>);
        let hashed: Vec<Hashed> = sources
            .par_iter()
            .map(|s| {
                let r = canonical_key(&s.path)
                    .and_then(|k| {
                        sha256_file(&s.path)
                            .map(|h| (k, h))
                            .map_err(|e| GalleryError::io(&s.path, e))
                    })
                    .map_err(|e| e.to_string());
                (s.clone(), r)
            })
            .collect();
        self.guarded(|| {
            let tx = self.begin_read()?;
            let t = tx.open_table(IMAGES).map_err(|e| self.store_err(e))?;
            let mut out = Vec::with_capacity(hashed.len());
            for (source, r) in hashed {
                let planned = match r {
                    Err(reason) => PlannedImage {
                        key: source.path.to_string_lossy().into_owned(),
                        sha256: String::new(),
                        source,
                        action: PlanAction::Unreadable(reason),
                    },
                    Ok((key, sha256)) => {
                        let prev: Option<ImageRecord> = t
                            .get(key.as_str())
                            .map_err(|e| self.store_err(e))?
                            .map(|v| decode_json(self, "image record", v.value()))
                            .transpose()?;
                        let action = match prev {
                            Some(p)
                                if p.sha256 == sha256
                                    && p.identity == source.identity
                                    && (!retry_failed
                                        || matches!(p.status, ImageStatus::Indexed { .. })) =>
                            {
                                PlanAction::SkipUnchanged
                            }
                            Some(_) => PlanAction::Reindex,
                            None => PlanAction::Index,
                        };
                        PlannedImage {
                            source,
                            key,
                            sha256,
                            action,
                        }
                    }
                };
                out.push(planned);
            }
            Ok(out)
        })
    }

    /// Commits one batch of encoded images in a single transaction: either all of it is in the
    /// store afterwards, or (on error or crash) none of it. Re-indexed files lose their old
    /// faces in the same transaction.
    pub fn commit_batch(
        &mut self,
        kind: &DescriptorKind,
        batch: &[EncodedImage],
    ) -> Result<BatchReport> {
        if let Some(k) = &self.meta.kind {
            if k != kind {
                return Err(GalleryError::KindMismatch {
                    path: self.dir.clone(),
                    stored: k.label(),
                    given: kind.label(),
                });
            }
        }
        let mut meta = self.meta.clone();
        let mut report = BatchReport {
            images: batch.len(),
            ..Default::default()
        };
        let tx = self.begin_write()?;
        {
            let e = |e: redb::TableError| self.store_err(e);
            let mut images = tx.open_table(IMAGES).map_err(e)?;
            let mut faces = tx.open_table(FACES).map_err(e)?;
            let mut vectors = tx.open_table(VECTORS).map_err(e)?;
            let mut thumbs = tx.open_table(THUMBS).map_err(e)?;
            let mut ident_ids = tx.open_table(IDENTITY_IDS).map_err(e)?;
            let mut ident_names = tx.open_table(IDENTITY_NAMES).map_err(e)?;
            let se = |e: redb::StorageError| self.store_err(e);
            for img in batch {
                let old = images
                    .remove(img.path.as_str())
                    .map_err(se)?
                    .map(|v| decode_json::<ImageRecord>(self, "image record", v.value()))
                    .transpose()?;
                if let Some(old) = old {
                    meta.images -= 1;
                    match old.status {
                        ImageStatus::Indexed { faces: ids } => {
                            for id in ids {
                                faces.remove(id).map_err(se)?;
                                vectors.remove(id).map_err(se)?;
                                thumbs.remove(id).map_err(se)?;
                                meta.faces -= 1;
                                report.faces_removed += 1;
                            }
                        }
                        ImageStatus::Failed { .. } => meta.failed_images -= 1,
                    }
                }
                let status = match &img.outcome {
                    Err(reason) => {
                        meta.failed_images += 1;
                        report.failed += 1;
                        ImageStatus::Failed {
                            reason: reason.clone(),
                        }
                    }
                    Ok(new_faces) => {
                        let identity_id = if new_faces.is_empty() {
                            0
                        } else {
                            let existing = ident_ids.get(img.identity.as_str()).map_err(se)?;
                            match existing.map(|v| v.value()) {
                                Some(id) => id,
                                None => {
                                    let id = meta.identities;
                                    meta.identities += 1;
                                    ident_ids.insert(img.identity.as_str(), id).map_err(se)?;
                                    ident_names.insert(id, img.identity.as_str()).map_err(se)?;
                                    id
                                }
                            }
                        };
                        let mut ids = Vec::with_capacity(new_faces.len());
                        for (i, f) in new_faces.iter().enumerate() {
                            let id = meta.next_face_id;
                            meta.next_face_id += 1;
                            let fm = FaceMeta {
                                image: img.path.clone(),
                                sha256: img.sha256.clone(),
                                index: i as u32,
                                identity: img.identity.clone(),
                                rect: f.rect,
                                landmarks: f.landmarks.clone(),
                            };
                            let json = serde_json::to_vec(&fm).expect("face meta serialises");
                            faces.insert(id, json.as_slice()).map_err(se)?;
                            let v = encode_vector(identity_id, &f.descriptor);
                            vectors.insert(id, v.as_slice()).map_err(se)?;
                            if let Some(png) = &f.thumbnail_png {
                                thumbs.insert(id, png.as_slice()).map_err(se)?;
                            }
                            ids.push(id);
                        }
                        meta.faces += ids.len() as u64;
                        report.faces_added += ids.len();
                        ImageStatus::Indexed { faces: ids }
                    }
                };
                meta.images += 1;
                let rec = ImageRecord {
                    path: img.path.clone(),
                    sha256: img.sha256.clone(),
                    identity: img.identity.clone(),
                    status,
                    indexed_at: now_unix(),
                };
                let json = serde_json::to_vec(&rec).expect("image record serialises");
                images
                    .insert(img.path.as_str(), json.as_slice())
                    .map_err(se)?;
            }
            if report.faces_added > 0 && meta.kind.is_none() {
                meta.kind = Some(kind.clone());
            }
            if report.faces_added > 0 || report.faces_removed > 0 {
                meta.generation += 1;
            }
            if report.faces_removed > 0 {
                meta.removals += 1;
            }
            let mut mt = tx.open_table(META).map_err(e)?;
            let json = serde_json::to_vec(&meta).expect("meta serialises");
            mt.insert("meta", json.as_slice()).map_err(se)?;
        }
        tx.commit().map_err(|e| self.store_err(e))?;
        report.generation = meta.generation;
        self.meta = meta;
        Ok(report)
    }

    /// Removes the records (and faces) of these store keys; returns how many were present.
    pub fn remove_images(&mut self, keys: &[String]) -> Result<usize> {
        let mut meta = self.meta.clone();
        let mut removed = 0;
        let mut faces_removed = 0;
        let tx = self.begin_write()?;
        {
            let e = |e: redb::TableError| self.store_err(e);
            let se = |e: redb::StorageError| self.store_err(e);
            let mut images = tx.open_table(IMAGES).map_err(e)?;
            let mut faces = tx.open_table(FACES).map_err(e)?;
            let mut vectors = tx.open_table(VECTORS).map_err(e)?;
            let mut thumbs = tx.open_table(THUMBS).map_err(e)?;
            for k in keys {
                let old = images
                    .remove(k.as_str())
                    .map_err(se)?
                    .map(|v| decode_json::<ImageRecord>(self, "image record", v.value()))
                    .transpose()?;
                let Some(old) = old else { continue };
                removed += 1;
                meta.images -= 1;
                match old.status {
                    ImageStatus::Indexed { faces: ids } => {
                        for id in ids {
                            faces.remove(id).map_err(se)?;
                            vectors.remove(id).map_err(se)?;
                            thumbs.remove(id).map_err(se)?;
                            meta.faces -= 1;
                            faces_removed += 1;
                        }
                    }
                    ImageStatus::Failed { .. } => meta.failed_images -= 1,
                }
            }
            if faces_removed > 0 {
                meta.generation += 1;
                meta.removals += 1;
            }
            let mut mt = tx.open_table(META).map_err(e)?;
            let json = serde_json::to_vec(&meta).expect("meta serialises");
            mt.insert("meta", json.as_slice()).map_err(se)?;
        }
        tx.commit().map_err(|e| self.store_err(e))?;
        self.meta = meta;
        Ok(removed)
    }

    /// Checks the store: redb's page checksums (read-write opens only) and the gallery's own
    /// invariants (every image's faces exist with a descriptor; every face belongs to an image;
    /// counters match). Slow on big stores; meant for `--verify` and tests.
    pub fn verify(&mut self) -> Result<VerifyReport> {
        let mut checksums_verified = false;
        if let Db::ReadWrite(db) = &mut self.db {
            let path = self.store_path.clone();
            match catch_unwind(AssertUnwindSafe(|| db.check_integrity())) {
                Ok(Ok(_)) => checksums_verified = true,
                Ok(Err(e)) => {
                    return Err(GalleryError::Corrupt {
                        path,
                        detail: e.to_string(),
                    })
                }
                Err(p) => {
                    return Err(GalleryError::Corrupt {
                        path,
                        detail: panic_text(p),
                    })
                }
            }
        }
        self.refresh()?;
        let images = self.images()?;
        let (ids, idents, data) = self.load_vectors(0)?;
        let names = self.identity_names()?;
        let mut face_image: HashMap<u64, &str> = HashMap::new();
        let mut failed = 0u64;
        for r in &images {
            match &r.status {
                ImageStatus::Indexed { faces } => {
                    for f in faces {
                        if face_image.insert(*f, &r.path).is_some() {
                            return Err(self.corrupt(format!("face {f} listed twice")));
                        }
                    }
                }
                ImageStatus::Failed { .. } => failed += 1,
            }
        }
        if face_image.len() != ids.len() {
            return Err(self.corrupt(format!(
                "{} faces listed by images but {} descriptors stored",
                face_image.len(),
                ids.len()
            )));
        }
        let metas = self.faces(&ids)?;
        if metas.len() != ids.len() {
            return Err(self.corrupt("some descriptors have no face record"));
        }
        for (i, f) in metas.iter().enumerate() {
            if face_image.get(&f.id).copied() != Some(f.meta.image.as_str()) {
                return Err(self.corrupt(format!("face {} not listed by its image", f.id)));
            }
            if names.get(idents[i] as usize) != Some(&f.meta.identity) {
                return Err(self.corrupt(format!("face {}: identity id mismatch", f.id)));
            }
            if f.descriptor.0.as_slice() != &data[i * DESCRIPTOR_LEN..(i + 1) * DESCRIPTOR_LEN] {
                return Err(self.corrupt(format!("face {}: descriptor mismatch", f.id)));
            }
            if f.id >= self.meta.next_face_id {
                return Err(self.corrupt(format!("face {} beyond next_face_id", f.id)));
            }
        }
        let m = &self.meta;
        if m.images != images.len() as u64
            || m.faces != ids.len() as u64
            || m.failed_images != failed
            || m.identities as usize != names.len()
        {
            return Err(self.corrupt(format!(
                "counters disagree with contents: meta says {} images, {} faces, {} failed, \
                 {} identities; found {}, {}, {}, {}",
                m.images,
                m.faces,
                m.failed_images,
                m.identities,
                images.len(),
                ids.len(),
                failed,
                names.len()
            )));
        }
        Ok(VerifyReport {
            images: images.len(),
            faces: ids.len(),
            checksums_verified,
        })
    }
}

/// One source file and what [`Gallery::plan`] decided for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedImage {
    /// The file and its identity, as given.
    pub source: ImageSource,
    /// The store key ([`canonical_key`]); the given path when that could not be resolved.
    pub key: String,
    /// SHA-256 of the file (empty when unreadable).
    pub sha256: String,
    /// What indexing must do with it.
    pub action: PlanAction,
}

/// What indexing must do with a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanAction {
    /// Not in the store yet.
    Index,
    /// In the store with other content (or identity): encode again and replace.
    Reindex,
    /// In the store with the same content and identity.
    SkipUnchanged,
    /// Could not be read to hash it.
    Unreadable(String),
}

fn open_rw(path: &Path, create: bool) -> Result<Database> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let b = redb::Builder::new();
        if create {
            b.create(path)
        } else {
            b.open(path)
        }
    }));
    match r {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(path, e)),
        Err(p) => Err(GalleryError::Corrupt {
            path: path.to_path_buf(),
            detail: panic_text(p),
        }),
    }
}

fn open_error(path: &Path, e: redb::DatabaseError) -> GalleryError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => GalleryError::Locked {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData
                && io.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            GalleryError::io(path, io)
        }
        other => GalleryError::Corrupt {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

fn decode_json<T: for<'a> Deserialize<'a>>(g: &Gallery, what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| g.corrupt(format!("{what}: {e}")))
}

fn encode_vector(identity: u32, d: &Descriptor) -> [u8; VECTOR_BYTES] {
    let mut out = [0u8; VECTOR_BYTES];
    out[..4].copy_from_slice(&identity.to_le_bytes());
    for (i, v) in d.0.iter().enumerate() {
        out[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_vector(bytes: &[u8]) -> Option<(u32, Descriptor)> {
    if bytes.len() != VECTOR_BYTES {
        return None;
    }
    let id = u32::from_le_bytes(bytes[..4].try_into().ok()?);
    let mut d = [0f32; DESCRIPTOR_LEN];
    for (i, c) in bytes[4..].chunks_exact(4).enumerate() {
        d[i] = f32::from_le_bytes(c.try_into().ok()?);
    }
    Some((id, Descriptor(d)))
}
