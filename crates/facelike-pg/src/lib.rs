//! # facelike-pg: face galleries in PostgreSQL + pgvector
//!
//! The second gallery backend, for galleries shared by several indexers and servers or too
//! big for one machine's memory: the same jobs as the embedded store
//! ([`facelike_gallery`]), on a PostgreSQL database with the
//! [pgvector](https://github.com/pgvector/pgvector) extension. `facelike-api` picks it when
//! `--gallery` is a URL: `postgres://USER[:PASSWORD]@HOST:PORT/DB?schema=NAME` (or libpq
//! `key=value` pairs; password from the URL, `PGPASSWORD` or `~/.pgpass`; see
//! [`PgLocation`]). One gallery is one schema (default `facelike`).
//!
//! ## Schema (created and migrated by facelike)
//!
//! Versioned migrations ([`store::MIGRATIONS`]) run in one transaction under an advisory
//! lock and are recorded in `SCHEMA.facelike_migrations` (version, name, time); a schema from
//! a newer facelike is refused. Tables:
//!
//! | table | columns |
//! |---|---|
//! | `gallery` | one row: `store_id`, `kind` (the descriptor space, JSON; fixed by the first face, other spaces refused), `created_at` |
//! | `identities` | `id`, `name` (unique) |
//! | `photos` | `id`, `path` (unique, canonical), `sha256`, `size`, `identity_id`, `status` (`indexed`/`failed`), `error`, `faces`, `indexed_at` |
//! | `faces` | `id`, `photo_id`, `sha256`, `face_index` (unique with `photo_id`), `identity_id`, `rect` (int8\[4\]), `landmarks` (int8\[\], x y pairs), `descriptor` `vector(128)`, `thumbnail` (PNG bytea) |
//!
//! Faces are unique on (photo, face index), the photo being its canonical path with the
//! content's SHA-256 beside it: the embedded store keys files by path, and the two backends
//! must give the same results on the same folder (a byte-identical copy in another identity's
//! folder is a face of that identity too).
//!
//! ## Indexing
//!
//! [`PgGallery::index_images`]: binary `COPY` of each batch inside one transaction,
//! resumable and idempotent, several indexers at once (unique constraints and upserts for
//! correctness, session advisory locks to share the work), retried with backoff through a
//! server restart. The details are in [`index`].
//!
//! ## Search
//!
//! [`PgGallery::search`]: exact by `ORDER BY descriptor <-> $1 LIMIT k` with index scans
//! disabled, or approximate through a pgvector HNSW index ([`PgGallery::ensure_hnsw`],
//! `vector_l2_ops`, `m` and `ef_construction` from [`PgHnswParams`], `hnsw.ef_search` per
//! query, iterative scans on); by face or by identity (nearest face, mean over all faces).
//! The database ranks, facelike re-scores the top k + 8 in f64: the results equal the
//! embedded store's (tested on LFW's 7,701 descriptors and synthetic sets).
//!
//! ## Errors
//!
//! One line each, naming the server without its password: a bad URL, no server, a refused
//! password, no `vector` extension, a schema from a newer facelike, another descriptor
//! space, a connection lost for longer than the retry window ([`PgError`]).

mod bulk;
pub mod error;
pub mod index;
pub mod location;
pub mod search;
pub mod shard;
pub mod store;

pub use error::{PgError, Result};
pub use location::{is_postgres_url, redact, PgLocation, DEFAULT_SCHEMA};
pub use search::{PgHnswParams, HNSW_INDEX, MAX_EF_SEARCH};
pub use shard::{search_shards, shard_of};
pub use store::{PgGallery, PgStats, RetryPolicy};
