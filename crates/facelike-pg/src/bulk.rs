//! Bulk loading of descriptors that come without photo files (benchmarks, moving a gallery
//! from another store): the same binary `COPY` as indexing, one transaction per batch.

use crate::error::{PgError, Result};
use crate::store::PgGallery;
use facelike_types::DescriptorKind;
use postgres::types::{ToSql, Type};

impl PgGallery {
    /// Stores `identities.len()` faces: face `i` has identity `names[identities[i]]` and
    /// descriptor `data[128 i .. 128 (i + 1)]`. Each batch of `batch` faces is one transaction
    /// with one stand-in photo row (`path` = `bulk:<tag>:<batch number>`, no file); `tag`
    /// keeps loads apart. Returns the faces stored.
    pub fn ingest(
        &self,
        kind: &DescriptorKind,
        tag: &str,
        names: &[String],
        identities: &[u32],
        data: &[f32],
        batch: usize,
    ) -> Result<usize> {
        if data.len() != identities.len() * 128
            || identities.iter().any(|&i| i as usize >= names.len())
        {
            return Err(PgError::Invalid(
                "ingest: identities, names and data disagree".into(),
            ));
        }
        self.check_or_set_kind(kind)?;
        let s = self.s();
        self.with_retry("registering identities", |c| {
            c.execute(
                &format!(
                    "INSERT INTO {s}.identities (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING"
                ),
                &[&names],
            )
        })?;
        let ids: std::collections::HashMap<String, i32> =
            self.with_retry("reading identities", |c| {
                Ok(
                    c.query(&format!("SELECT name, id FROM {s}.identities"), &[])?
                        .into_iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect(),
                )
            })?;
        let db_ident: Vec<i32> = names
            .iter()
            .map(|n| ids.get(n).copied().unwrap_or(0))
            .collect();
        let vt = self.vector_type().clone();
        let batch = batch.max(1);
        let mut stored = 0;
        for (b, start) in (0..identities.len()).step_by(batch).enumerate() {
            let end = (start + batch).min(identities.len());
            let path = format!("bulk:{tag}:{b}");
            let n = self.with_retry("bulk loading", |c| {
                let mut tx = c.transaction()?;
                let row = tx.query_opt(
                    &format!(
                        "INSERT INTO {s}.photos (path, sha256, size, identity_id, status, faces)
                         VALUES ($1, '', 0, $2, 'indexed', $3) ON CONFLICT (path) DO NOTHING RETURNING id"
                    ),
                    &[&path, &db_ident[identities[start] as usize], &((end - start) as i32)],
                )?;
                // Already loaded (a replay after a broken connection): nothing to do.
                let Some(row) = row else { return Ok(0) };
                let photo: i64 = row.get(0);
                let sink = tx.copy_in(&format!(
                    "COPY {s}.faces (photo_id, sha256, face_index, identity_id, rect, landmarks, descriptor) FROM STDIN (FORMAT binary)"
                ))?;
                let mut w = postgres::binary_copy::BinaryCopyInWriter::new(
                    sink,
                    &[
                        Type::INT8,
                        Type::TEXT,
                        Type::INT4,
                        Type::INT4,
                        Type::INT8_ARRAY,
                        Type::INT8_ARRAY,
                        vt.clone(),
                    ],
                );
                let empty = String::new();
                let rect: Vec<i64> = vec![0, 0, 0, 0];
                let lm: Vec<i64> = Vec::new();
                for i in start..end {
                    let fi = (i - start) as i32;
                    let v = pgvector::Vector::from(data[i * 128..(i + 1) * 128].to_vec());
                    let row: [&(dyn ToSql + Sync); 7] = [
                        &photo,
                        &empty,
                        &fi,
                        &db_ident[identities[i] as usize],
                        &rect,
                        &lm,
                        &v,
                    ];
                    w.write(&row)?;
                }
                let n = w.finish()?;
                tx.commit()?;
                Ok(n as usize)
            })?;
            stored += n;
        }
        Ok(stored)
    }
}
