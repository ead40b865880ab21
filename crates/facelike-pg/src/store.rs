//! The gallery's tables in PostgreSQL: connecting (with one-line errors), versioned
//! migrations, the descriptor space, and reading faces back.

use crate::error::{is_transient, message, PgError, Result};
use crate::location::PgLocation;
use facelike_gallery::{FaceMeta, FaceRecord};
use facelike_types::{Descriptor, DescriptorKind, Point, Rect};
use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, NoTls};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The migrations, in order: (version, name, SQL with `{s}` for the quoted schema). Applied
/// inside one transaction under an advisory lock and recorded in `{s}.facelike_migrations`.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "photos, faces, identities, descriptor space",
    r#"
CREATE TABLE {s}.gallery (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    store_id text NOT NULL,
    kind jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {s}.gallery (store_id) VALUES (md5(random()::text || clock_timestamp()::text));
CREATE TABLE {s}.identities (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);
CREATE TABLE {s}.photos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path text NOT NULL UNIQUE,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    identity_id integer NOT NULL REFERENCES {s}.identities (id),
    status text NOT NULL CHECK (status IN ('indexed', 'failed')),
    error text,
    faces integer NOT NULL DEFAULT 0,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.faces (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    photo_id bigint NOT NULL REFERENCES {s}.photos (id) ON DELETE CASCADE,
    sha256 text NOT NULL,
    face_index integer NOT NULL,
    identity_id integer NOT NULL REFERENCES {s}.identities (id),
    rect bigint[] NOT NULL,
    landmarks bigint[] NOT NULL,
    descriptor vector(128) NOT NULL,
    thumbnail bytea,
    UNIQUE (photo_id, face_index)
);
CREATE INDEX ON {s}.faces (identity_id);
"#,
)];

/// The latest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// How long to keep retrying after the connection breaks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Give up when the connection has not come back within this time.
    pub max_wait: Duration,
    /// First pause; doubled after each failed attempt up to `max_pause`.
    pub first_pause: Duration,
    /// Longest pause between attempts.
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_wait: Duration::from_secs(60),
            first_pause: Duration::from_millis(100),
            max_pause: Duration::from_secs(3),
        }
    }
}

/// Counts of a PostgreSQL gallery.
#[derive(Clone, Debug, PartialEq)]
pub struct PgStats {
    /// The descriptor space; `None` until the first face is stored.
    pub kind: Option<DescriptorKind>,
    /// Photos recorded, indexed or failed.
    pub images: u64,
    /// Of those, photos recorded as failed.
    pub failed_images: u64,
    /// Faces stored.
    pub faces: u64,
    /// Identity names registered.
    pub identities: u32,
    /// Whether the HNSW index exists.
    pub hnsw: bool,
}

/// A gallery in a PostgreSQL schema. One connection, behind a mutex (searches from several
/// threads take turns); it is re-established with backoff when it breaks.
pub struct PgGallery {
    loc: PgLocation,
    client: Mutex<Client>,
    /// The `vector` type of this database (its OID is not fixed).
    vector_type: Type,
    pub(crate) retry: RetryPolicy,
    reconnects: std::sync::atomic::AtomicUsize,
    /// The descriptor space once known (it never changes after the first face).
    kind_cache: std::sync::OnceLock<DescriptorKind>,
    /// Set once the HNSW index has been seen (indexes are not dropped behind a searcher's back
    /// except by [`PgGallery::drop_hnsw`], which clears it).
    pub(crate) hnsw_seen: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PgGallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgGallery").field("loc", &self.loc).finish()
    }
}

/// `"name"`: the schema as an identifier (names are checked to be plain when parsed).
pub(crate) fn q(schema: &str) -> String {
    format!("\"{schema}\"")
}

fn connect_client(loc: &PgLocation) -> Result<Client> {
    loc.config().connect(NoTls).map_err(|e| {
        let m = message(&e);
        if e.code() == Some(&SqlState::INVALID_PASSWORD) || m.contains("password missing") {
            PgError::Auth {
                server: loc.host_port() + "/" + loc.config().get_dbname().unwrap_or_default(),
                user: loc.user().to_string(),
            }
        } else {
            PgError::Connect {
                server: loc.server(),
                detail: m,
            }
        }
    })
}

/// Sets the session up: search path (the gallery's schema, then pgvector's).
fn prepare_session(client: &mut Client, loc: &PgLocation, vector_schema: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "SET search_path = {}, {}",
            q(loc.schema()),
            q(vector_schema)
        ))
        .map_err(|e| PgError::Query {
            gallery: loc.to_string(),
            during: "setting the search path".into(),
            detail: message(&e),
        })
}

/// Makes sure pgvector is installed in the database; returns its schema.
fn ensure_vector(client: &mut Client, loc: &PgLocation) -> Result<String> {
    let find = |c: &mut Client| -> Result<Option<String>> {
        let row = c
            .query_opt(
                "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
                &[],
            )
            .map_err(|e| PgError::Query {
                gallery: loc.to_string(),
                during: "looking for pgvector".into(),
                detail: message(&e),
            })?;
        Ok(row.map(|r| r.get(0)))
    };
    if let Some(s) = find(client)? {
        return Ok(s);
    }
    if let Err(e) = client.batch_execute("CREATE EXTENSION IF NOT EXISTS vector") {
        // Another process may have created it at the same moment.
        if let Some(s) = find(client)? {
            return Ok(s);
        }
        return Err(PgError::NoVector {
            server: loc.server(),
            detail: message(&e),
        });
    }
    find(client)?.ok_or_else(|| PgError::NoVector {
        server: loc.server(),
        detail: "CREATE EXTENSION vector left no extension".into(),
    })
}

fn schema_version(client: &mut Client, loc: &PgLocation) -> Result<Option<i32>> {
    let qe = |e: postgres::Error| PgError::Query {
        gallery: loc.to_string(),
        during: "reading the schema version".into(),
        detail: message(&e),
    };
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{}.facelike_migrations", q(loc.schema()))],
        )
        .map_err(qe)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: Option<i32> = client
        .query_one(
            &format!(
                "SELECT max(version) FROM {}.facelike_migrations",
                q(loc.schema())
            ),
            &[],
        )
        .map_err(qe)?
        .get(0);
    Ok(Some(v.unwrap_or(0)))
}

/// Applies the missing migrations in one transaction under an advisory lock, so that several
/// processes opening a new gallery at once create it once.
fn migrate(client: &mut Client, loc: &PgLocation) -> Result<()> {
    let s = q(loc.schema());
    let qe = |during: &str| {
        let during = during.to_string();
        move |e: postgres::Error| PgError::Query {
            gallery: loc.to_string(),
            during: during.clone(),
            detail: message(&e),
        }
    };
    let mut tx = client.transaction().map_err(qe("migrating"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!("facelike-migrate:{}", loc.schema())],
    )
    .map_err(qe("taking the migration lock"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.facelike_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .map_err(qe("creating the schema"))?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.facelike_migrations"),
            &[],
        )
        .map_err(qe("reading the schema version"))?
        .get(0);
    if current > latest_version() {
        return Err(PgError::NewerSchema {
            gallery: loc.to_string(),
            found: current,
            known: latest_version(),
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(&sql.replace("{s}", &s))
            .map_err(qe(&format!("applying migration {version} ({name})")))?;
        tx.execute(
            &format!("INSERT INTO {s}.facelike_migrations (version, name) VALUES ($1, $2)"),
            &[version, name],
        )
        .map_err(qe("recording a migration"))?;
    }
    tx.commit().map_err(qe("committing the migrations"))?;
    Ok(())
}

impl PgGallery {
    /// Connects, installs pgvector if missing (when allowed), creates or migrates the schema.
    pub fn open_or_create(loc: &PgLocation) -> Result<PgGallery> {
        Self::open_impl(loc, true)
    }

    /// Connects to an existing gallery (an error naming the schema if there is none);
    /// migrates an older schema.
    pub fn open(loc: &PgLocation) -> Result<PgGallery> {
        Self::open_impl(loc, false)
    }

    fn open_impl(loc: &PgLocation, create: bool) -> Result<PgGallery> {
        let mut client = connect_client(loc)?;
        let vschema = ensure_vector(&mut client, loc)?;
        match schema_version(&mut client, loc)? {
            None if !create => {
                return Err(PgError::Invalid(format!(
                    "no gallery in {loc} (schema {} has no facelike tables; create one with facelike index DIR --gallery URL)",
                    loc.schema()
                )))
            }
            Some(v) if v == latest_version() => {}
            _ => migrate(&mut client, loc)?,
        }
        prepare_session(&mut client, loc, &vschema)?;
        let vector_type = client
            .prepare("SELECT $1::vector")
            .map_err(|e| PgError::Query {
                gallery: loc.to_string(),
                during: "looking up the vector type".into(),
                detail: message(&e),
            })?
            .params()[0]
            .clone();
        Ok(PgGallery {
            loc: loc.clone(),
            client: Mutex::new(client),
            vector_type,
            retry: RetryPolicy::default(),
            reconnects: Default::default(),
            kind_cache: Default::default(),
            hnsw_seen: Default::default(),
        })
    }

    /// Sets how long broken connections are retried.
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// Times the connection was re-established so far.
    pub fn reconnects(&self) -> usize {
        self.reconnects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the gallery lives.
    pub fn location(&self) -> &PgLocation {
        &self.loc
    }

    /// The schema, quoted.
    pub(crate) fn s(&self) -> String {
        q(self.loc.schema())
    }

    pub(crate) fn vector_type(&self) -> &Type {
        &self.vector_type
    }

    fn lock(&self) -> MutexGuard<'_, Client> {
        // A panic while holding the lock leaves a usable client; take it back.
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection; when the connection breaks (server restarted, network),
    /// reconnects with exponential backoff for up to [`RetryPolicy::max_wait`] and runs `f`
    /// again from the start. `f` must therefore be a whole transaction (or read-only).
    pub(crate) fn with_retry<T>(
        &self,
        during: &str,
        mut f: impl FnMut(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut client = self.lock();
        let start = Instant::now();
        let mut pause = self.retry.first_pause;
        loop {
            let err = match f(&mut client) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !is_transient(&err) {
                return Err(PgError::Query {
                    gallery: self.loc.to_string(),
                    during: during.to_string(),
                    detail: message(&err),
                });
            }
            let mut last = message(&err);
            // Reconnect with backoff.
            loop {
                if start.elapsed() + pause > self.retry.max_wait {
                    return Err(PgError::ConnectionLost {
                        gallery: self.loc.to_string(),
                        during: during.to_string(),
                        detail: last,
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(self.retry.max_pause);
                match connect_client(&self.loc).and_then(|mut c| {
                    let vs = ensure_vector(&mut c, &self.loc)?;
                    prepare_session(&mut c, &self.loc, &vs)?;
                    Ok(c)
                }) {
                    Ok(c) => {
                        *client = c;
                        self.reconnects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                    Err(e) => last = e.to_string(),
                }
            }
        }
    }

    /// Query error for `during`.
    pub(crate) fn bad(&self, detail: impl Into<String>) -> PgError {
        PgError::BadData {
            gallery: self.loc.to_string(),
            detail: detail.into(),
        }
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i32> {
        let s = self.s();
        self.with_retry("reading the schema version", |c| {
            Ok(c.query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {s}.facelike_migrations"),
                &[],
            )?
            .get(0))
        })
    }

    /// The gallery's descriptor space; `None` until the first face is stored.
    pub fn kind(&self) -> Result<Option<DescriptorKind>> {
        if let Some(k) = self.kind_cache.get() {
            return Ok(Some(k.clone()));
        }
        let s = self.s();
        let v: Option<String> = self.with_retry("reading the descriptor space", |c| {
            Ok(
                c.query_one(&format!("SELECT kind::text FROM {s}.gallery"), &[])?
                    .get(0),
            )
        })?;
        let k: Option<DescriptorKind> = v
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| self.bad(format!("descriptor space: {e}")))?;
        if let Some(k) = &k {
            let _ = self.kind_cache.set(k.clone());
        }
        Ok(k)
    }

    /// Fixes the descriptor space at the first face; an error when `kind` differs from it.
    pub(crate) fn check_or_set_kind(&self, kind: &DescriptorKind) -> Result<()> {
        let s = self.s();
        let stored = match self.kind()? {
            Some(k) => k,
            None => {
                let json = serde_json::to_string(kind)
                    .map_err(|e| PgError::Invalid(format!("descriptor space: {e}")))?;
                self.with_retry("recording the descriptor space", |c| {
                    c.execute(
                        &format!(
                            "UPDATE {s}.gallery SET kind = $1::text::jsonb WHERE kind IS NULL"
                        ),
                        &[&json],
                    )
                })?;
                self.kind()?.unwrap_or_else(|| kind.clone())
            }
        };
        if &stored != kind {
            return Err(PgError::KindMismatch {
                gallery: self.loc.to_string(),
                stored: stored.label(),
                given: kind.label(),
            });
        }
        Ok(())
    }

    /// An error unless queries of `kind` may search this gallery (an empty gallery accepts all).
    pub fn check_query_kind(&self, kind: &DescriptorKind) -> Result<()> {
        match self.kind()? {
            Some(stored) if &stored != kind => Err(PgError::KindMismatch {
                gallery: self.loc.to_string(),
                stored: stored.label(),
                given: kind.label(),
            }),
            _ => Ok(()),
        }
    }

    /// Counts.
    pub fn stats(&self) -> Result<PgStats> {
        let s = self.s();
        let (images, failed, faces, identities, hnsw): (i64, i64, i64, i64, bool) = self
            .with_retry("counting", |c| {
                let r = c.query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM {s}.photos),
                                (SELECT count(*) FROM {s}.photos WHERE status = 'failed'),
                                (SELECT count(*) FROM {s}.faces),
                                (SELECT count(*) FROM {s}.identities),
                                to_regclass($1) IS NOT NULL"
                    ),
                    &[&format!("{s}.{}", crate::search::HNSW_INDEX)],
                )?;
                Ok((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            })?;
        Ok(PgStats {
            kind: self.kind()?,
            images: images as u64,
            failed_images: failed as u64,
            faces: faces as u64,
            identities: identities as u32,
            hnsw,
        })
    }

    /// (database id, name) of every identity, by id.
    fn identity_rows(&self) -> Result<Vec<(i32, String)>> {
        let s = self.s();
        self.with_retry("reading identities", |c| {
            Ok(c.query(
                &format!("SELECT id, name FROM {s}.identities ORDER BY id"),
                &[],
            )?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// Identity names; the dense ids of [`PgGallery::load_vectors`] index this list.
    pub fn identity_names(&self) -> Result<Vec<String>> {
        Ok(self.identity_rows()?.into_iter().map(|r| r.1).collect())
    }

    /// Database identity id → dense index into [`PgGallery::identity_names`].
    pub(crate) fn identity_index(&self) -> Result<(HashMap<i32, u32>, Vec<String>)> {
        let rows = self.identity_rows()?;
        let map = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0, i as u32))
            .collect();
        Ok((map, rows.into_iter().map(|r| r.1).collect()))
    }

    /// Every face: (face ids, dense identity ids, descriptors row by row), by face id, read
    /// with a binary COPY.
    pub fn load_vectors(&self) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
        let (idx, _) = self.identity_index()?;
        let s = self.s();
        let vt = self.vector_type.clone();
        let rows = self.with_retry("reading descriptors", |c| {
            let reader = c.copy_out(&format!(
                "COPY (SELECT id, identity_id, descriptor FROM {s}.faces ORDER BY id) TO STDOUT (FORMAT binary)"
            ))?;
            let it = postgres::binary_copy::BinaryCopyOutIter::new(
                reader,
                &[Type::INT8, Type::INT4, vt.clone()],
            );
            use postgres::fallible_iterator::FallibleIterator;
            let mut out = Vec::new();
            let mut it = it;
            while let Some(row) = it.next()? {
                let id: i64 = row.try_get(0)?;
                let ident: i32 = row.try_get(1)?;
                let v: pgvector::Vector = row.try_get(2)?;
                out.push((id, ident, v));
            }
            Ok(out)
        })?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut idents = Vec::with_capacity(rows.len());
        let mut data = Vec::with_capacity(rows.len() * 128);
        for (id, ident, v) in rows {
            let s = v.as_slice();
            if s.len() != 128 {
                return Err(self.bad(format!("face {id} has {} dimensions", s.len())));
            }
            ids.push(id as u64);
            idents.push(
                *idx.get(&ident)
                    .ok_or_else(|| self.bad(format!("face {id}: unknown identity {ident}")))?,
            );
            data.extend_from_slice(s);
        }
        Ok((ids, idents, data))
    }

    /// The records of these faces (missing ids are left out), in the order asked.
    pub fn faces(&self, ids: &[u64]) -> Result<Vec<FaceRecord>> {
        let (idx, _) = self.identity_index()?;
        let s = self.s();
        let want: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let rows = self.with_retry("reading faces", |c| {
            c.query(
                &format!(
                    "SELECT f.id, p.path, f.sha256, f.face_index, i.name, f.rect, f.landmarks, f.descriptor, f.identity_id
                     FROM {s}.faces f JOIN {s}.photos p ON p.id = f.photo_id JOIN {s}.identities i ON i.id = f.identity_id
                     WHERE f.id = ANY($1)"
                ),
                &[&want],
            )
        })?;
        let mut by_id = HashMap::new();
        for r in rows {
            let id: i64 = r.get(0);
            let rect: Vec<i64> = r.get(5);
            let lm: Vec<i64> = r.get(6);
            let v: pgvector::Vector = r.get(7);
            let ident: i32 = r.get(8);
            if rect.len() != 4 || !lm.len().is_multiple_of(2) {
                return Err(self.bad(format!("face {id}: bad rect or landmarks")));
            }
            let descriptor = Descriptor::from_slice(v.as_slice())
                .ok_or_else(|| self.bad(format!("face {id}: not 128 dimensions")))?;
            let face_index: i32 = r.get(3);
            by_id.insert(
                id as u64,
                FaceRecord {
                    id: id as u64,
                    meta: FaceMeta {
                        image: r.get(1),
                        sha256: r.get(2),
                        index: face_index as u32,
                        identity: r.get(4),
                        rect: Rect::new(rect[0], rect[1], rect[2], rect[3]),
                        landmarks: lm.chunks_exact(2).map(|p| Point::new(p[0], p[1])).collect(),
                    },
                    identity_id: idx.get(&ident).copied().unwrap_or(u32::MAX),
                    descriptor,
                },
            );
        }
        Ok(ids.iter().filter_map(|i| by_id.remove(i)).collect())
    }

    /// Source photo path of each of these faces.
    pub fn face_paths(&self, ids: &[u64]) -> Result<HashMap<u64, String>> {
        let s = self.s();
        let want: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        self.with_retry("reading face paths", |c| {
            Ok(c.query(
                &format!(
                    "SELECT f.id, p.path FROM {s}.faces f JOIN {s}.photos p ON p.id = f.photo_id WHERE f.id = ANY($1)"
                ),
                &[&want],
            )?
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
        })
    }

    /// The face's thumbnail (PNG bytes), if one was stored.
    pub fn thumbnail(&self, id: u64) -> Result<Option<Vec<u8>>> {
        let s = self.s();
        self.with_retry("reading a thumbnail", |c| {
            Ok(c.query_opt(
                &format!("SELECT thumbnail FROM {s}.faces WHERE id = $1"),
                &[&(id as i64)],
            )?
            .and_then(|r| r.get(0)))
        })
    }

    /// Drops the gallery's schema and everything in it (tests and benchmarks).
    pub fn drop_gallery(self) -> Result<()> {
        let s = self.s();
        self.with_retry("dropping the gallery", |c| {
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
        })
    }
}
