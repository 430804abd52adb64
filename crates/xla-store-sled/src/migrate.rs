//! Upgrades of older store formats, applied on open in one atomic batch.

use super::keys::{self, BlockKey};
use super::{FORMAT_VERSION, OrStore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use xla_store::StoreError;

/// The oldest format this build upgrades.
pub(crate) const OLDEST: u32 = 2;

/// Brings a store of format `found` (at least [`OLDEST`]) up to
/// [`FORMAT_VERSION`].
pub(crate) fn upgrade(db: &sled::Db, dir: &Path, found: u32) -> Result<(), StoreError> {
    if found == 2 {
        written_sets(db)?;
    }
    // Format 3 kept the index in memory, rebuilt on every open. Format 4
    // keeps it in a table on disk with a record per block (`K`), both built
    // from the blocks the first time the index is used: a table left by
    // anything else must not be trusted.
    if found < 4 {
        super::table::remove(&dir.join(super::index::TABLE_DIR)).map_err(|e| StoreError::backend(super::BACKEND, e))?;
    }
    // Format 5 may compress blocks (`block::frame`); the bare blocks of
    // format 4 read as they are, so only the version changes: a build of
    // format 4 refuses the store rather than misread a compressed block.
    //
    // Format 6 keeps the ticket join (`join`), built from the rows once the
    // store is open; the marker stays until that is done.
    //
    // Format 7 may keep deltas beside a join bucket (`join::bucket`); a
    // format-6 bucket reads as a bucket without deltas, so only the version
    // changes: a build of format 6 refuses the store rather than read a
    // bucket without its deltas.
    //
    // Format 8 may keep an answer's record id in its `Z` slot as bytes
    // (`join::SlotId`), and no longer lists a ticket's rows of the join's
    // metrics under the ticket in the index (`index::SubjectDims`: a read
    // of the ticket finds them through the join). A format-7 slot's text
    // id reads as it is and its index entries are read too, so only the
    // version changes: a build of format 7 refuses the store rather than
    // fail on a slot it cannot decode or miss a ticket's rows.
    //
    // Format 9 writes an answer's record id into its `Z` slot only when
    // retention retires its row (the live row's block holds it until then:
    // 16 bytes a sys_id, kept once), keys an answer's `Y` entry by its
    // row's place rather than its record fingerprint, and stores an
    // answer's value as a block stores one. A slot of format 7 or 8 reads
    // as it is, an answer entry of formats 6 to 8 is keyed by the place it
    // holds as it is read (`join::keyed_by_place`), so only the version
    // changes: a build of format 8 refuses the store rather than fail on
    // an entry it cannot decode or list unmatched answers without ids.
    //
    // Format 10 lists a row of any metric naming a ticket number under the
    // number in the join (`join::Entry::Row`), not under the ticket in the
    // index. The blocks written before stay listed in the index (a rebuilt
    // table lists them again: `keys::ROWS_BY_NUMBER_FROM`), so only the
    // version changes otherwise: a build of format 9 refuses the store
    // rather than miss a ticket's rows or fail on an entry it cannot decode.
    let mut batch = sled::Batch::default();
    if found < 10 {
        let next = super::index::next_block(db)?;
        batch.insert(keys::ROWS_BY_NUMBER_FROM, &next.to_be_bytes());
    }
    if found < 6 {
        batch.insert(keys::JOIN_REBUILD, &[1]);
    }
    batch.insert(keys::FORMAT, &FORMAT_VERSION.to_be_bytes());
    db.apply_batch(batch).or_store()?;
    db.flush().or_store()?;
    Ok(())
}

/// Format 2 kept no per-source written metric sets (key `W`), which say
/// which metrics a source's gaps and whole-record retractions concern:
/// derive them from the blocks (every block names its source), live and
/// retired, and write them with the new format version.
fn written_sets(db: &sled::Db) -> Result<(), StoreError> {
    let mut sets: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
    for retired in [false, true] {
        for entry in db.scan_prefix(keys::blocks_prefix(retired)) {
            let (key, value) = entry.or_store()?;
            let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            let source = super::block::stored_source(&value)?;
            sets.entry((key.tenant, source)).or_default().insert(key.metric);
        }
    }
    let mut batch = sled::Batch::default();
    for ((tenant, source), metrics) in sets {
        let metrics: Vec<u32> = metrics.into_iter().collect();
        let bytes = postcard::to_allocvec(&metrics).map_err(|e| StoreError::corrupt(format!("a written set: {e}")))?;
        batch.insert(keys::written(tenant, source), bytes);
    }
    db.apply_batch(batch).or_store()?;
    db.flush().or_store()?;
    Ok(())
}
