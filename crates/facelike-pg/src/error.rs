//! Errors of the PostgreSQL backend: each is one line naming the server (never the password)
//! and the problem.

use postgres::error::SqlState;

/// Everything that can go wrong with a PostgreSQL gallery.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The `postgres://` URL (or `key=value` string) could not be understood.
    #[error("invalid PostgreSQL URL {url}: {detail}")]
    Url {
        /// The URL as given, password removed.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No server answered at the address.
    #[error("cannot connect to PostgreSQL at {server}: {detail}")]
    Connect {
        /// `user@host:port/db`.
        server: String,
        /// The client's message.
        detail: String,
    },
    /// The server refused the user's password (or it has none to give).
    #[error("PostgreSQL at {server} refused the password of user {user} (check the URL, PGPASSWORD or ~/.pgpass)")]
    Auth {
        /// `host:port/db`.
        server: String,
        /// The user name.
        user: String,
    },
    /// The database lacks pgvector and the user may not install it.
    #[error("database {server} has no `vector` extension (pgvector) and it could not be created: {detail}; install pgvector and run CREATE EXTENSION vector as a superuser")]
    NoVector {
        /// `user@host:port/db`.
        server: String,
        /// The server's message.
        detail: String,
    },
    /// The schema was written by a newer facelike.
    #[error("gallery {gallery} has schema version {found}; this facelike knows up to {known}: upgrade facelike")]
    NewerSchema {
        /// The gallery (URL without password).
        gallery: String,
        /// Version recorded in the database.
        found: i32,
        /// Latest migration of this build.
        known: i32,
    },
    /// Descriptors of another space than the gallery's.
    #[error("gallery {gallery} holds {stored} descriptors; refusing to mix in {given}")]
    KindMismatch {
        /// The gallery (URL without password).
        gallery: String,
        /// The gallery's descriptor kind label.
        stored: String,
        /// The kind offered.
        given: String,
    },
    /// The connection broke and retrying did not bring it back.
    #[error("lost the connection to PostgreSQL gallery {gallery} during {during} and could not get it back: {detail}")]
    ConnectionLost {
        /// The gallery (URL without password).
        gallery: String,
        /// What was being done.
        during: String,
        /// The last error.
        detail: String,
    },
    /// A statement failed.
    #[error("PostgreSQL gallery {gallery}: {during}: {detail}")]
    Query {
        /// The gallery (URL without password).
        gallery: String,
        /// What was being done.
        during: String,
        /// The server's or client's message.
        detail: String,
    },
    /// Stored data that does not decode (wrong dimension, negative ids, bad JSON).
    #[error("PostgreSQL gallery {gallery} holds bad data: {detail}")]
    BadData {
        /// The gallery (URL without password).
        gallery: String,
        /// What was wrong.
        detail: String,
    },
    /// A caller-side mistake.
    #[error("{0}")]
    Invalid(String),
    /// Reading or hashing a source photo failed in a way that stops the run.
    #[error(transparent)]
    Gallery(#[from] facelike_gallery::GalleryError),
}

/// Result with [`PgError`].
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// The message of a client error: the server's own message for database errors (without the
/// `db error:` prefix), the client's otherwise, on one line.
pub(crate) fn message(e: &postgres::Error) -> String {
    let s = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let m = inner.to_string();
                if !s.contains(&m) {
                    s = format!("{s}: {m}");
                }
                src = inner.source();
            }
            s
        }
    };
    s.replace('\n', " ")
}

/// Whether retrying after reconnecting may help: the connection broke, the server is
/// shutting down or starting, or a transaction lost a serialisation race.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(c) => {
            let s = c.code();
            s.starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
        }
    }
}
