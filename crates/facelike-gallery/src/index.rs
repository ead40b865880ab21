//! Incremental, resumable, parallel indexing of photo files into a gallery.
//!
//! The caller supplies the encoder (photo → faces). Files are hashed and encoded on rayon's
//! pool while this thread commits finished files in batches: each batch is one transaction, so
//! a run that is interrupted (even by `kill -9`) keeps every batch it committed, and the next
//! run skips those files by their content hash.

use crate::error::Result;
use crate::scan::ImageSource;
use crate::store::{EncodedImage, Gallery, NewFace, PlanAction, PlannedImage};
use facelike_types::DescriptorKind;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// How to index.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Files per transaction. Larger batches commit faster overall; smaller ones lose less
    /// work to an interruption.
    pub batch_size: usize,
    /// Encode again files that failed before even if their content is unchanged.
    pub retry_failed: bool,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            batch_size: 64,
            retry_failed: false,
        }
    }
}

/// A file that could not be indexed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedImage {
    /// The file, as the source list gave it.
    pub path: PathBuf,
    /// The encoder's or reader's message.
    pub reason: String,
}

/// What an index run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IndexSummary {
    /// Files considered.
    pub images: usize,
    /// Files encoded and committed (including those with no face).
    pub indexed: usize,
    /// Of those, files re-encoded because their content changed.
    pub reindexed: usize,
    /// Faces added.
    pub faces: usize,
    /// Committed files in which the encoder found no face.
    pub no_faces: usize,
    /// Files skipped because the store already has them with the same content.
    pub skipped: usize,
    /// Files that could not be read or encoded (also recorded in the store, except files that
    /// could not even be read to hash them).
    pub failed: Vec<FailedImage>,
    /// Transactions committed.
    pub batches: usize,
}

/// Progress after each finished file and each commit (called on the committing thread).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexProgress<'a> {
    /// Files finished (encoded, failed or skipped) so far.
    pub done: usize,
    /// Files in this run (skipped ones included).
    pub total: usize,
    /// Faces found so far in this run, including those still waiting for their batch to commit.
    pub faces: usize,
    /// Batches committed so far: everything up to here survives an interruption.
    pub batches: usize,
    /// Store keys of the batch committed just now (empty when this call is not for a commit).
    pub committed: &'a [String],
}

/// Indexes `sources` into `gallery`: hashes every file, skips unchanged ones, encodes the rest
/// with `encode` in parallel (rayon), and commits batches of `options.batch_size` files.
///
/// `encode` returns the faces of one photo, or a reason for failure (which is stored and
/// reported, and does not stop the run). Store errors stop the run; the batches committed
/// before stay.
pub fn index_images<E, P>(
    gallery: &mut Gallery,
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
    let plan = gallery.plan(sources, options.retry_failed)?;
    let mut summary = IndexSummary {
        images: plan.len(),
        ..Default::default()
    };
    let mut prog = IndexProgress {
        total: plan.len(),
        ..Default::default()
    };
    let mut todo: Vec<&PlannedImage> = Vec::new();
    for p in &plan {
        match &p.action {
            PlanAction::SkipUnchanged => {
                summary.skipped += 1;
                prog.done += 1;
            }
            PlanAction::Unreadable(reason) => {
                summary.failed.push(FailedImage {
                    path: p.source.path.clone(),
                    reason: reason.clone(),
                });
                prog.done += 1;
            }
            PlanAction::Index | PlanAction::Reindex => todo.push(p),
        }
    }
    if !todo.is_empty() || prog.done > 0 {
        progress(&prog);
    }
    let batch_size = options.batch_size.max(1);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, EncodedImage)>(batch_size * 2);
    let result = std::thread::scope(|scope| -> Result<()> {
        // Owned by this closure, so an early return drops it and the encoders stop sending.
        let rx = rx;
        let todo_ref = &todo;
        let stop_ref = &stop;
        let encode_ref = &encode;
        scope.spawn(move || {
            use rayon::prelude::*;
            todo_ref
                .par_iter()
                .enumerate()
                .for_each_with(tx, |tx, (i, p)| {
                    if stop_ref.load(Ordering::Relaxed) {
                        return;
                    }
                    let outcome = encode_ref(&p.source.path);
                    let img = EncodedImage {
                        path: p.key.clone(),
                        identity: p.source.identity.clone(),
                        sha256: p.sha256.clone(),
                        outcome,
                    };
                    // The receiver is gone only after a store error; stop quietly then.
                    if tx.send((i, img)).is_err() {
                        stop_ref.store(true, Ordering::Relaxed);
                    }
                });
        });
        let mut batch: Vec<(usize, EncodedImage)> = Vec::with_capacity(batch_size);
        let mut commit = |batch: &mut Vec<(usize, EncodedImage)>,
                          summary: &mut IndexSummary,
                          prog: &mut IndexProgress<'_>,
                          progress: &mut P|
         -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let imgs: Vec<EncodedImage> = batch.iter().map(|(_, e)| e.clone()).collect();
            let r = gallery.commit_batch(kind, &imgs);
            let report = match r {
                Ok(r) => r,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            summary.batches += 1;
            prog.batches += 1;
            let keys: Vec<String> = batch.iter().map(|(_, e)| e.path.clone()).collect();
            progress(&IndexProgress {
                committed: &keys,
                ..prog.clone()
            });
            for (i, img) in batch.drain(..) {
                match img.outcome {
                    Ok(faces) => {
                        summary.indexed += 1;
                        if todo[i].action == PlanAction::Reindex {
                            summary.reindexed += 1;
                        }
                        if faces.is_empty() {
                            summary.no_faces += 1;
                        }
                    }
                    Err(reason) => summary.failed.push(FailedImage {
                        path: todo[i].source.path.clone(),
                        reason,
                    }),
                }
            }
            summary.faces += report.faces_added;
            Ok(())
        };
        for item in rx.iter() {
            prog.done += 1;
            if let Ok(f) = &item.1.outcome {
                prog.faces += f.len();
            }
            batch.push(item);
            if batch.len() >= batch_size {
                commit(&mut batch, &mut summary, &mut prog, &mut progress)?;
            } else {
                progress(&prog);
            }
        }
        commit(&mut batch, &mut summary, &mut prog, &mut progress)?;
        Ok(())
    });
    result?;
    summary.failed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(summary)
}
