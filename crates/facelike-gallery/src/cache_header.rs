//! The layout the ANN cache files (HNSW graph, IVF cells) share, written and read in one place:
//!
//! ```text
//! magic     8 bytes       b"FLGHNSW1" or b"FLGIVF01"
//! length    u64 LE        size of the header that follows (at most 1 MiB)
//! header    JSON object   {"tag": <the caller's tag>, ...the index's own fields}
//! body      the index's arrays
//! ```
//!
//! Files are written atomically (a temporary file beside the target, synced, renamed over it).
//! Read errors are returned as the detail of a [`GalleryError::Cache`], which the caller names
//! the file in.

use crate::error::{GalleryError, Result};
use serde_json::Value;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

/// The largest header accepted on reading.
const MAX_HEADER: u64 = 1 << 20;

/// Writes `magic`, `header` and then what `body` writes to `path`, atomically.
pub(crate) fn save(
    path: &Path,
    magic: &[u8; 8],
    header: &Value,
    body: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let io = |e| GalleryError::io(&tmp, e);
    let f = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let h = serde_json::to_vec(header).expect("header serialises");
    w.write_all(magic).map_err(io)?;
    w.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
    w.write_all(&h).map_err(io)?;
    body(&mut w).map_err(io)?;
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| GalleryError::io(path, e))
}

/// Reads the magic and the header from `r`, leaving `r` at the start of the body. `what` names
/// the kind of cache in the error ("HNSW", "IVF").
pub(crate) fn read_header(
    r: &mut impl Read,
    magic: &[u8; 8],
    what: &str,
) -> std::result::Result<Value, String> {
    let mut m = [0u8; 8];
    if r.read_exact(&mut m).is_err() || &m != magic {
        return Err(format!("not an {what} cache file"));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .map_err(|_| "cut short in its header".to_string())?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(format!("header length {len} too long"));
    }
    let mut h = vec![0u8; len as usize];
    r.read_exact(&mut h)
        .map_err(|_| "cut short in its header".to_string())?;
    serde_json::from_slice(&h).map_err(|e| format!("header: {e}"))
}

/// A header field, which must be present.
pub(crate) fn field(header: &Value, k: &str) -> std::result::Result<Value, String> {
    header
        .get(k)
        .cloned()
        .ok_or_else(|| format!("header lacks {k}"))
}

/// A header field read as `T`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    header: &Value,
    k: &str,
) -> std::result::Result<T, String> {
    serde_json::from_value(field(header, k)?).map_err(|e| format!("header field {k}: {e}"))
}

/// A header field that must be a whole number.
pub(crate) fn number(header: &Value, k: &str) -> std::result::Result<u64, String> {
    field(header, k)?
        .as_u64()
        .ok_or_else(|| format!("header field {k} not a number"))
}

/// The caller's tag (null when absent).
pub(crate) fn tag(header: &Value) -> Value {
    header.get("tag").cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_magic_length_json_body() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.bin");
        let header = serde_json::json!({"tag": {"g": 3}, "n": 2});
        save(&p, b"FLGTEST1", &header, |w| w.write_all(&[9, 8, 7])).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let json = serde_json::to_vec(&header).unwrap();
        let mut want = b"FLGTEST1".to_vec();
        want.extend_from_slice(&(json.len() as u64).to_le_bytes());
        want.extend_from_slice(&json);
        want.extend_from_slice(&[9, 8, 7]);
        assert_eq!(bytes, want);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);

        let mut r = &bytes[..];
        let h = read_header(&mut r, b"FLGTEST1", "IVF").unwrap();
        assert_eq!(r, &[9, 8, 7]);
        assert_eq!(tag(&h), serde_json::json!({"g": 3}));
        assert_eq!(number(&h, "n"), Ok(2));
        assert_eq!(parse::<u32>(&h, "n"), Ok(2));
        assert_eq!(field(&h, "m"), Err("header lacks m".into()));
        assert_eq!(
            number(&h, "tag"),
            Err("header field tag not a number".into())
        );
        assert_eq!(tag(&serde_json::json!({})), Value::Null);
    }

    #[test]
    fn damage_is_described() {
        let err = |bytes: &[u8]| read_header(&mut &bytes[..], b"FLGTEST1", "IVF").unwrap_err();
        assert_eq!(err(b""), "not an IVF cache file");
        assert_eq!(err(b"FLGTEST2\0\0\0\0\0\0\0\0"), "not an IVF cache file");
        assert_eq!(err(b"FLGTEST1\x02\0"), "cut short in its header");
        assert_eq!(
            err(b"FLGTEST1\x05\0\0\0\0\0\0\0{}"),
            "cut short in its header"
        );
        assert!(err(b"FLGTEST1\0\0\0\0\x01\0\0\0").contains("too long"));
        assert!(err(b"FLGTEST1\x02\0\0\0\0\0\0\0{x").starts_with("header: "));
    }
}
