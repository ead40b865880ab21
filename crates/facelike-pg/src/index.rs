//! Indexing photos into a PostgreSQL gallery: plan by content hash, claim, encode in
//! parallel, commit each batch with a binary `COPY` inside one transaction, retrying through
//! broken connections.
//!
//! **No duplicates, nothing lost, several indexers at once.** Correctness rests on unique
//! constraints: `photos.path` is unique and `faces (photo_id, face_index)` is unique. A batch's
//! transaction upserts its photo rows (`INSERT … ON CONFLICT (path) DO UPDATE … WHERE` the
//! content, identity or status changed), which row-locks them; only the rows it actually wrote
//! come back (`RETURNING`), and only their faces are copied in, after the old faces of
//! replaced photos are deleted. Two indexers that encoded the same photo therefore store its
//! faces once: the second finds the row unchanged and writes nothing. To avoid encoding the
//! same photo twice, each indexer first *claims* the batch's paths with session-level
//! advisory locks (`pg_try_advisory_lock`); a path another indexer holds is left to it (and
//! counted as skipped). The server releases a session's locks when its connection ends, so a
//! `kill -9`ed indexer's claims vanish with it and the next run picks those files up; the
//! killed run loses only its open batch (uncommitted transaction).
//!
//! **Restarts.** Every batch is one transaction run through the connection's retry loop: when
//! the server goes away mid-batch the transaction is rolled back by the server, the indexer
//! reconnects with exponential backoff and replays the batch, which the upsert makes
//! idempotent.

use crate::error::Result;
use crate::store::PgGallery;
use facelike_gallery::{
    canonical_key, sha256_file, FailedImage, ImageSource, IndexOptions, IndexProgress,
    IndexSummary, NewFace,
};
use facelike_types::DescriptorKind;
use postgres::types::{ToSql, Type};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What to do with one source photo.
#[derive(Clone, Debug, PartialEq)]
enum Action {
    Skip,
    Index { reindex: bool },
    Unreadable(String),
}

struct Planned<'a> {
    source: &'a ImageSource,
    key: String,
    sha256: String,
    size: u64,
    action: Action,
}

struct Encoded {
    key: String,
    identity: String,
    sha256: String,
    size: u64,
    outcome: std::result::Result<Vec<NewFace>, String>,
}

/// What one committed batch wrote.
#[derive(Debug, Default)]
struct Written {
    faces: usize,
    /// Keys of the photos this batch wrote (the others were already stored unchanged).
    keys: HashSet<String>,
}

impl PgGallery {
    fn plan<'a>(&self, sources: &'a [ImageSource], retry_failed: bool) -> Result<Vec<Planned<'a>>> {
        type Hashed = (String, std::result::Result<(String, u64), String>);
        let hashed: Vec<Hashed> = sources
            .par_iter()
            .map(|src| {
                let key =
                    canonical_key(&src.path).unwrap_or_else(|_| src.path.display().to_string());
                let h = sha256_file(&src.path)
                    .map_err(|e| e.to_string())
                    .and_then(|h| {
                        std::fs::metadata(&src.path)
                            .map(|m| (h, m.len()))
                            .map_err(|e| format!("{}: {e}", src.path.display()))
                    });
                (key, h)
            })
            .collect();
        let keys: Vec<String> = hashed.iter().map(|h| h.0.clone()).collect();
        let s = self.s();
        let stored: HashMap<String, (String, String, String)> =
            self.with_retry("planning the index run", |c| {
                Ok(c.query(
                    &format!(
                        "SELECT p.path, p.sha256, i.name, p.status FROM {s}.photos p
                         JOIN {s}.identities i ON i.id = p.identity_id WHERE p.path = ANY($1)"
                    ),
                    &[&keys],
                )?
                .into_iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
                .collect())
            })?;
        Ok(sources
            .iter()
            .zip(hashed)
            .map(|(source, (key, h))| match h {
                Err(reason) => Planned {
                    source,
                    key,
                    sha256: String::new(),
                    size: 0,
                    action: Action::Unreadable(reason),
                },
                Ok((sha256, size)) => {
                    let action = match stored.get(&key) {
                        None => Action::Index { reindex: false },
                        Some((sha, ident, status)) => {
                            if *sha == sha256
                                && *ident == source.identity
                                && (status == "indexed" || !retry_failed)
                            {
                                Action::Skip
                            } else {
                                Action::Index {
                                    reindex: *sha != sha256 || *ident != source.identity,
                                }
                            }
                        }
                    };
                    Planned {
                        source,
                        key,
                        sha256,
                        size,
                        action,
                    }
                }
            })
            .collect())
    }

    fn lock_key(&self, path: &str) -> String {
        format!("facelike:{}:{path}", self.location().schema())
    }

    /// Claims `keys` for this indexer; returns those it got.
    fn claim(&self, keys: &[String]) -> Result<HashSet<String>> {
        let locks: Vec<String> = keys.iter().map(|k| self.lock_key(k)).collect();
        let got: Vec<i32> = self.with_retry("claiming photos", |c| {
            Ok(c.query(
                "SELECT i::int4 FROM unnest($1::text[]) WITH ORDINALITY AS t(k, i)
                 WHERE pg_try_advisory_lock(hashtextextended(k, 0))",
                &[&locks],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
        })?;
        Ok(got
            .into_iter()
            .filter_map(|i| keys.get(i as usize - 1).cloned())
            .collect())
    }

    fn release(&self, keys: &[String]) -> Result<()> {
        let locks: Vec<String> = keys.iter().map(|k| self.lock_key(k)).collect();
        // A lock lost with a broken connection is already gone: nothing to undo.
        self.with_retry("releasing claims", |c| {
            c.execute(
                "SELECT pg_advisory_unlock(hashtextextended(k, 0)) FROM unnest($1::text[]) k",
                &[&locks],
            )
        })?;
        Ok(())
    }

    /// One transaction: identities, photo upserts, old faces out, new faces in by binary COPY.
    fn commit(&self, batch: &[Encoded]) -> Result<Written> {
        let s = self.s();
        let vt = self.vector_type().clone();
        self.with_retry("committing a batch", |c| {
            let mut tx = c.transaction()?;
            let names: Vec<String> = {
                let mut n: Vec<String> = batch.iter().map(|e| e.identity.clone()).collect();
                n.sort();
                n.dedup();
                n
            };
            tx.execute(
                &format!(
                    "INSERT INTO {s}.identities (name) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING"
                ),
                &[&names],
            )?;
            let ident: HashMap<String, i32> = tx
                .query(
                    &format!("SELECT name, id FROM {s}.identities WHERE name = ANY($1)"),
                    &[&names],
                )?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let paths: Vec<&str> = batch.iter().map(|e| e.key.as_str()).collect();
            let shas: Vec<&str> = batch.iter().map(|e| e.sha256.as_str()).collect();
            let sizes: Vec<i64> = batch.iter().map(|e| e.size as i64).collect();
            let idents: Vec<i32> = batch
                .iter()
                .map(|e| ident.get(&e.identity).copied().unwrap_or(0))
                .collect();
            let statuses: Vec<&str> = batch
                .iter()
                .map(|e| if e.outcome.is_ok() { "indexed" } else { "failed" })
                .collect();
            let errors: Vec<Option<&str>> = batch
                .iter()
                .map(|e| e.outcome.as_ref().err().map(String::as_str))
                .collect();
            let nfaces: Vec<i32> = batch
                .iter()
                .map(|e| e.outcome.as_ref().map(|f| f.len() as i32).unwrap_or(0))
                .collect();
            let rows = tx.query(
                &format!(
                    "INSERT INTO {s}.photos AS p (path, sha256, size, identity_id, status, error, faces)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int4[], $5::text[], $6::text[], $7::int4[])
                     ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size,
                         identity_id = EXCLUDED.identity_id, status = EXCLUDED.status, error = EXCLUDED.error,
                         faces = EXCLUDED.faces, indexed_at = now()
                     WHERE (p.sha256, p.identity_id, p.status, p.error) IS DISTINCT FROM
                           (EXCLUDED.sha256, EXCLUDED.identity_id, EXCLUDED.status, EXCLUDED.error)
                        OR p.status = 'failed'
                     RETURNING p.id, p.path"
                ),
                &[&paths, &shas, &sizes, &idents, &statuses, &errors, &nfaces],
            )?;
            let written: HashMap<String, i64> =
                rows.into_iter().map(|r| (r.get(1), r.get(0))).collect();
            let ids: Vec<i64> = written.values().copied().collect();
            tx.execute(&format!("DELETE FROM {s}.faces WHERE photo_id = ANY($1)"), &[&ids])?;
            let mut faces = 0usize;
            {
                let sink = tx.copy_in(&format!(
                    "COPY {s}.faces (photo_id, sha256, face_index, identity_id, rect, landmarks, descriptor, thumbnail) FROM STDIN (FORMAT binary)"
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
                        Type::BYTEA,
                    ],
                );
                for (e, &identity) in batch.iter().zip(&idents) {
                    let (Some(&photo), Ok(list)) = (written.get(&e.key), &e.outcome) else {
                        continue;
                    };
                    for (i, f) in list.iter().enumerate() {
                        let rect = f.rect.to_array().to_vec();
                        let lm: Vec<i64> = f.landmarks.iter().flat_map(|p| [p.x, p.y]).collect();
                        let v = pgvector::Vector::from(f.descriptor.0.to_vec());
                        let fi = i as i32;
                        let row: [&(dyn ToSql + Sync); 8] = [
                            &photo,
                            &e.sha256,
                            &fi,
                            &identity,
                            &rect,
                            &lm,
                            &v,
                            &f.thumbnail_png,
                        ];
                        w.write(&row)?;
                        faces += 1;
                    }
                }
                w.finish()?;
            }
            tx.commit()?;
            Ok(Written {
                faces,
                keys: written.into_keys().collect(),
            })
        })
    }

    /// Indexes `sources` into the gallery: hashes every file, skips those stored unchanged,
    /// claims the rest batch by batch, encodes a batch in parallel (rayon) and commits it in
    /// one transaction. `encode` returns a photo's faces or why it failed (stored, reported,
    /// not fatal). Database errors stop the run after the retries; the committed batches stay.
    pub fn index_images<E, P>(
        &self,
        sources: &[ImageSource],
        kind: &DescriptorKind,
        options: &IndexOptions,
        encode: E,
        mut progress: P,
    ) -> Result<IndexSummary>
    where
        E: Fn(&Path) -> std::result::Result<Vec<NewFace>, String> + Sync,
        P: FnMut(&IndexProgress<'_>),
    {
        let plan = self.plan(sources, options.retry_failed)?;
        let mut summary = IndexSummary {
            images: plan.len(),
            ..Default::default()
        };
        let mut prog = IndexProgress {
            total: plan.len(),
            ..Default::default()
        };
        let mut todo = Vec::new();
        for p in &plan {
            match &p.action {
                Action::Skip => {
                    summary.skipped += 1;
                    prog.done += 1;
                }
                Action::Unreadable(reason) => {
                    summary.failed.push(FailedImage {
                        path: p.source.path.clone(),
                        reason: reason.clone(),
                    });
                    prog.done += 1;
                }
                Action::Index { .. } => todo.push(p),
            }
        }
        if prog.done > 0 {
            progress(&prog);
        }
        if !todo.is_empty() {
            self.check_or_set_kind(kind)?;
        }
        for chunk in todo.chunks(options.batch_size.max(1)) {
            let keys: Vec<String> = chunk.iter().map(|p| p.key.clone()).collect();
            let mine = self.claim(&keys)?;
            let work: Vec<&&Planned> = chunk.iter().filter(|p| mine.contains(&p.key)).collect();
            let busy = chunk.len() - work.len();
            summary.skipped += busy;
            prog.done += busy;
            let encoded: Vec<Encoded> = work
                .par_iter()
                .map(|p| Encoded {
                    key: p.key.clone(),
                    identity: p.source.identity.clone(),
                    sha256: p.sha256.clone(),
                    size: p.size,
                    outcome: encode(&p.source.path),
                })
                .collect();
            let committed = if encoded.is_empty() {
                Written::default()
            } else {
                self.commit(&encoded)?
            };
            let claimed: Vec<String> = work.iter().map(|p| p.key.clone()).collect();
            self.release(&claimed)?;
            if !encoded.is_empty() {
                summary.batches += 1;
                prog.batches += 1;
            }
            summary.faces += committed.faces;
            let mut done_keys = Vec::new();
            for (p, e) in work.iter().zip(&encoded) {
                prog.done += 1;
                if !committed.keys.contains(&e.key) {
                    // Another indexer stored this photo, unchanged, in the meantime.
                    summary.skipped += 1;
                    continue;
                }
                done_keys.push(e.key.clone());
                match &e.outcome {
                    Ok(faces) => {
                        summary.indexed += 1;
                        prog.faces += faces.len();
                        if p.action == (Action::Index { reindex: true }) {
                            summary.reindexed += 1;
                        }
                        if faces.is_empty() {
                            summary.no_faces += 1;
                        }
                    }
                    Err(reason) => summary.failed.push(FailedImage {
                        path: p.source.path.clone(),
                        reason: reason.clone(),
                    }),
                }
            }
            progress(&IndexProgress {
                committed: &done_keys,
                ..prog.clone()
            });
        }
        summary.failed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(summary)
    }
}
