//! Scatter-gather search over a gallery split into shards (schemas, databases or servers),
//! the way a gallery of 100M+ faces is served (see `docs/scaling.md`).
//!
//! Split by **identity hash** ([`shard_of`]): every face of an identity lands in the same
//! shard, so both searches merge exactly. By face: the global k nearest are among the union of
//! each shard's k nearest. By identity: an identity's nearest face and mean distance are
//! computed whole inside its one shard. Merging re-sorts by the exact distances the shards
//! computed (ties by shard order), so the result equals one gallery holding everything.

use crate::error::Result;
use crate::store::PgGallery;
use facelike_gallery::{Match, SearchOptions};
use facelike_types::Descriptor;

/// The shard (of `shards`) an identity's faces belong to: FNV-1a of the name, so every
/// indexer and server computes the same split without coordination.
pub fn shard_of(identity: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// Searches every shard (in parallel, one connection each) and merges their top k. Returns
/// (shard index, match) pairs: face ids are only unique within a shard.
pub fn search_shards(
    shards: &[PgGallery],
    query: &Descriptor,
    o: &SearchOptions,
) -> Result<Vec<(usize, Match)>> {
    use rayon::prelude::*;
    let per: Vec<Result<Vec<Match>>> = shards.par_iter().map(|g| g.search(query, o)).collect();
    let mut all = Vec::new();
    for (i, r) in per.into_iter().enumerate() {
        all.extend(r?.into_iter().map(|m| (i, m)));
    }
    all.sort_by(|a, b| a.1.distance.total_cmp(&b.1.distance).then(a.0.cmp(&b.0)));
    all.truncate(o.k);
    Ok(all)
}
