//! Where a PostgreSQL gallery lives: a libpq-style URL plus facelike's `schema` parameter,
//! and the password from the URL, `PGPASSWORD` or the password file.

use crate::error::{PgError, Result};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "facelike";

/// A parsed gallery location in PostgreSQL.
///
/// Accepted forms: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB?schema=NAME&…` (also
/// `postgresql://`), and libpq's `key=value` strings (`host=… user=… dbname=… schema=…`). Every
/// parameter but `schema` goes to the client as libpq would read it. When the URL carries no
/// password, `PGPASSWORD` is used, then the password file (`PGPASSFILE`, default
/// `~/.pgpass`). Missing user: `PGUSER`, then `USER`; missing host: `PGHOST`, then
/// `localhost`.
#[derive(Clone)]
pub struct PgLocation {
    config: postgres::Config,
    schema: String,
    redacted: String,
}

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLocation")
            .field("url", &self.redacted)
            .field("schema", &self.schema)
            .finish()
    }
}

impl std::fmt::Display for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Whether `s` names a PostgreSQL gallery (a `postgres://` or `postgresql://` URL) rather
/// than a folder.
pub fn is_postgres_url(s: &str) -> bool {
    let l = s.trim_start().to_ascii_lowercase();
    l.starts_with("postgres://") || l.starts_with("postgresql://")
}

/// `s` without the password of a URL's user-info or a `password=` pair.
pub fn redact(s: &str) -> String {
    if let Some(i) = s.find("://") {
        let rest = &s[i + 3..];
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{}{}{}", &s[..i + 3], user, &rest[at..]);
        }
        return s.to_string();
    }
    s.split_whitespace()
        .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

fn valid_schema(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && s.len() <= 63
}

impl PgLocation {
    /// Parses a gallery URL (see the type's documentation).
    pub fn parse(s: &str) -> Result<PgLocation> {
        let s = s.trim();
        let redacted = redact(s);
        let bad = |detail: String| PgError::Url {
            url: redacted.clone(),
            detail,
        };
        let mut schema = None;
        let client_str = if is_postgres_url(s) {
            match s.split_once('?') {
                None => s.to_string(),
                Some((base, query)) => {
                    let mut kept = Vec::new();
                    for pair in query.split('&').filter(|p| !p.is_empty()) {
                        match pair.split_once('=') {
                            Some(("schema", v)) => schema = Some(v.to_string()),
                            _ => kept.push(pair),
                        }
                    }
                    if kept.is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
            }
        } else if s.contains('=') {
            let mut kept = Vec::new();
            for kv in s.split_whitespace() {
                match kv.split_once('=') {
                    Some(("schema", v)) => schema = Some(v.to_string()),
                    _ => kept.push(kv),
                }
            }
            kept.join(" ")
        } else {
            return Err(bad(
                "expected postgres://USER@HOST:PORT/DB?schema=NAME or key=value pairs".into(),
            ));
        };
        let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        if !valid_schema(&schema) {
            return Err(bad(format!(
                "schema {schema:?} must be letters, digits and _ (not starting with a digit)"
            )));
        }
        let mut config = postgres::Config::from_str(&client_str).map_err(|e| bad(e.to_string()))?;
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into());
            config.user(&user);
        }
        if config.get_hosts().is_empty() {
            let host = std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into());
            config.host(&host);
        }
        if config.get_dbname().is_none() {
            let db = std::env::var("PGDATABASE")
                .ok()
                .or_else(|| config.get_user().map(str::to_string));
            if let Some(db) = db {
                config.dbname(&db);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("facelike");
        }
        if config.get_password().is_none() {
            if let Ok(pw) = std::env::var("PGPASSWORD") {
                config.password(pw);
            } else if let Some(pw) = pgpass_lookup(&config) {
                config.password(pw);
            }
        }
        Ok(PgLocation {
            config,
            schema,
            redacted,
        })
    }

    /// The schema holding the gallery's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The client configuration (password included).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The same server and database with another schema (tests, benchmarks).
    pub fn with_schema(&self, schema: &str) -> Result<PgLocation> {
        if !valid_schema(schema) {
            return Err(PgError::Invalid(format!("bad schema name {schema:?}")));
        }
        let mut l = self.clone();
        l.schema = schema.to_string();
        l.redacted = format!("{} (schema {schema})", redact_base(&self.redacted));
        Ok(l)
    }

    /// `user@host:port/db`, for messages.
    pub fn server(&self) -> String {
        format!(
            "{}@{}/{}",
            self.user(),
            self.host_port(),
            self.config.get_dbname().unwrap_or("")
        )
    }

    /// `host:port`.
    pub fn host_port(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// The user name.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }
}

fn redact_base(s: &str) -> &str {
    s.split(" (schema ").next().unwrap_or(s)
}

impl FromStr for PgLocation {
    type Err = PgError;
    fn from_str(s: &str) -> Result<Self> {
        PgLocation::parse(s)
    }
}

/// The password for this server, database and user from the password file, if any line
/// matches (`host:port:database:user:password`, `*` matches anything, `\` escapes).
fn pgpass_lookup(config: &postgres::Config) -> Option<String> {
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or("").to_string();
    let user = config.get_user().unwrap_or("").to_string();
    pgpass_match(&text, &[&host, &port, &db, &user])
}

/// The password of the first line of a password file matching `want` (host, port, db, user).
pub fn pgpass_match(text: &str, want: &[&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_taken_out_and_password_hidden() {
        let l =
            PgLocation::parse("postgres://u:secret@127.0.0.1:5555/db?schema=s1&sslmode=disable")
                .unwrap();
        assert_eq!(l.schema(), "s1");
        assert_eq!(
            l.to_string(),
            "postgres://u@127.0.0.1:5555/db?schema=s1&sslmode=disable"
        );
        assert_eq!(l.config().get_password(), Some(&b"secret"[..]));
        assert_eq!(l.server(), "u@127.0.0.1:5555/db");
        let kv = PgLocation::parse("host=h port=7 user=a dbname=d password=x schema=z").unwrap();
        assert_eq!(kv.schema(), "z");
        assert_eq!(kv.to_string(), "host=h port=7 user=a dbname=d schema=z");
        assert_eq!(kv.host_port(), "h:7");
    }

    #[test]
    fn bad_urls_are_one_line_errors() {
        let e = PgLocation::parse("postgres://u@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid PostgreSQL URL postgres://u@h:notaport/db"),
            "{e}"
        );
        let e = PgLocation::parse("postgres://u:pw@h/db?schema=a-b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema \"a-b\""), "{e}");
        assert!(!e.contains("pw"), "{e}");
        assert!(!is_postgres_url("galleries/celebs.g"));
        assert!(is_postgres_url("PostgreSQL://x"));
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:u:no\n127.0.0.1:*:db:u:pa\\:ss\n*:*:*:*:any\n";
        assert_eq!(
            pgpass_match(text, &["127.0.0.1", "5555", "db", "u"]).as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_match(text, &["h", "1", "x", "y"]).as_deref(),
            Some("any")
        );
        assert_eq!(pgpass_match("a:b:c:d:e", &["a", "b", "c", "x"]), None);
    }
}
