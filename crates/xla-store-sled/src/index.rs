//! The index: where each record's current row is, and which rows name a
//! subject (a ticket, a device). It lives on disk, in the table beside
//! sled's files (see `table`), so a store of any size opens in no time and
//! resident memory does not grow with it; what each block holds (its key,
//! rows present and live) is a sled key per block, written in the commit's
//! batch.
//!
//! The table follows sled: a commit's batch carries a journal entry (the
//! blocks it wrote, the records it retracted), and the table is changed
//! once the batch is on disk. At a checkpoint the table is flushed and
//! records the last entry it holds; on open, the entries after it are
//! replayed, so a crash between a commit and its table change loses
//! nothing. Replaying is idempotent: a record points at the newest row the
//! journal names, in order. A table that is missing, damaged, or was
//! written while commits did not wait for the disk is rebuilt from the
//! blocks.
//!
//! A row is live when its record points at it. A replace leaves the old row
//! in its block, stale, and moves the pointer; a block whose stale rows
//! outnumber its live ones is compacted by the commit that tips it, and a
//! block with no live row is deleted. A subject's entries are never taken
//! back (a reader checks each row): they go when the table is rebuilt.

use super::StoreError;
use super::block::{
    Block, Fingerprint, RetiredRow, Row, stored_record_fingerprint, subject_fingerprint, subject_fingerprints,
};
use super::keys::{self, BlockKey};
use super::table::{Table, TableError};
use crate::OrStore;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::path::Path;
use std::sync::Arc;

/// Rows per block at most (slots are 20 bits).
pub(crate) const MAX_SLOTS: u32 = 1 << 20;

/// The table's directory in the store's directory.
pub(crate) const TABLE_DIR: &str = "index";

/// How often the table is checkpointed while commits come (and when the
/// store closes). A checkpoint writes the entries set since the last as a
/// run (see `table`): small runs are merged soon after, so checkpoints are
/// not frequent. A replay after a crash reads again the blocks written
/// since.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a row is: its block and its slot in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    pub block: u64,
    pub slot: u32,
}

impl Loc {
    fn pack(self) -> u64 {
        (self.block << 20) | u64::from(self.slot)
    }

    fn unpack(packed: u64) -> Loc {
        Loc {
            block: packed >> 20,
            slot: (packed & u64::from(MAX_SLOTS - 1)) as u32,
        }
    }
}

/// What the store knows of a block: a sled key of its own (`K`), written
/// in the batch that writes, compacts, retires or deletes the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub key: BlockKey,
    /// Slots holding a row, live or stale.
    pub present: u32,
    /// Rows their records point at.
    pub live: u32,
}

impl BlockMeta {
    /// The block's key, then present and live (big-endian).
    pub fn encode(&self) -> [u8; 29] {
        let mut bytes = [0; 29];
        bytes[..21].copy_from_slice(&self.key.key());
        bytes[21..25].copy_from_slice(&self.present.to_be_bytes());
        bytes[25..].copy_from_slice(&self.live.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<BlockMeta, StoreError> {
        let corrupt = || StoreError::corrupt("a block's record does not decode");
        let u32_at = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(corrupt)
        };
        Ok(BlockMeta {
            key: BlockKey::parse(bytes.get(..21).ok_or_else(corrupt)?).ok_or_else(corrupt)?,
            present: u32_at(21)?,
            live: u32_at(25)?,
        })
    }
}

/// The record of block `id`, if the block exists.
pub(crate) fn block_meta(db: &sled::Db, id: u64) -> Result<Option<BlockMeta>, StoreError> {
    db.get(keys::block_meta(id))
        .or_store()?
        .map(|bytes| BlockMeta::decode(&bytes))
        .transpose()
}

/// The locations of one record's rows: a handful, held inline.
pub(crate) type Locs = SmallVec<[Loc; 8]>;

/// The dimensions a row is listed under as a subject (dictionary ids).
/// Every subject dimension (`ticket`, `device`) but the ticket join's key:
/// the join keeps every row naming a ticket number under the number
/// already (`join::rows_of_number`: its tickets, openings and answers, and
/// since format 10 the rows of every other metric), so listing them in the
/// table too would only cost disk and time (four of an incident's nine
/// entries were such).
///
/// A block written before format 10 ([`SubjectDims::by_number_from`])
/// lists its rows of other metrics under the ticket in the table, as it
/// was written, when the table is rebuilt: the join holds no entry for them.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubjectDims {
    all: Vec<u32>,
    /// `all` without the join's key.
    joined: Vec<u32>,
    /// The metrics the join keeps.
    join_metrics: Vec<u32>,
    /// The first block whose rows of every metric the join lists under
    /// their number (blocks are numbered in the order they are written).
    by_number_from: u64,
}

impl SubjectDims {
    /// `all` subject dimensions; `join_key` and `join_metrics` as the
    /// ticket join names them (`join::Roles`); `by_number_from` as the
    /// store keeps it (`keys::ROWS_BY_NUMBER_FROM`; 0 in a store created
    /// by format 10 or later).
    pub fn new(all: Vec<u32>, join_key: Option<u32>, join_metrics: Vec<u32>, by_number_from: u64) -> SubjectDims {
        let joined = all.iter().copied().filter(|d| Some(*d) != join_key).collect();
        SubjectDims {
            all,
            joined,
            join_metrics,
            by_number_from,
        }
    }

    /// Whether the join lists the rows of every metric in block `block`
    /// under the number they name (a block written since format 10).
    pub fn by_number(&self, block: u64) -> bool {
        block >= self.by_number_from
    }

    /// The dimensions a row of `metric` in block `block` is listed under.
    pub fn of(&self, metric: u32, block: u64) -> &[u32] {
        if self.by_number(block) || self.join_metrics.contains(&metric) {
            &self.joined
        } else {
            &self.all
        }
    }

    /// The subjects a row this build writes is listed under, from its
    /// per-subject dimensions (its ticket is not one: the join lists it).
    pub fn fingerprints(&self, tenant: u32, inline: &[(u32, String)]) -> Arc<[Fingerprint]> {
        inline
            .iter()
            .filter(|(k, _)| self.joined.contains(k))
            .map(|(key, value)| subject_fingerprint(tenant, *key, value))
            .collect()
    }
}

/// The id the next block written gets (blocks are numbered from 1 in the
/// order they are written).
pub(crate) fn next_block(db: &sled::Db) -> Result<u64, StoreError> {
    Ok(meta_u64(db, keys::BLOCK_NEXT, "the block counter")?.unwrap_or(1))
}

/// The first block whose rows of every metric the join lists under their
/// ticket number ([`SubjectDims::new`]'s `by_number_from`).
pub(crate) fn rows_by_number_from(db: &sled::Db) -> Result<u64, StoreError> {
    Ok(meta_u64(db, keys::ROWS_BY_NUMBER_FROM, "the first block listed by number")?.unwrap_or(0))
}

/// What a commit changes in the index once its batch is on disk.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Records' new current rows.
    pub added: Vec<(Fingerprint, Loc)>,
    /// Records retracted, with the row that was current.
    pub retracted: Vec<(Fingerprint, Loc)>,
    /// Rows naming each subject, a record's together.
    pub subjects: Vec<(Fingerprint, Locs)>,
    /// The blocks written fresh (their rows are `added`).
    pub fresh: Vec<u64>,
}

/// A commit's journal entry: enough to redo its index changes from the
/// blocks (see the module's docs).
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    fresh: Vec<u64>,
    retracted: Vec<(u128, u64)>,
}

impl Changes {
    /// The journal entry to write in the commit's batch.
    pub fn journal(&self) -> Result<Vec<u8>, StoreError> {
        let journal = Journal {
            fresh: self.fresh.clone(),
            retracted: self.retracted.iter().map(|(f, loc)| (*f, loc.pack())).collect(),
        };
        postcard::to_allocvec(&journal).map_err(|e| StoreError::corrupt(format!("a journal entry: {e}")))
    }
}

pub(crate) struct Index {
    table: Table,
    /// The next block id to hand out.
    pub next_block: u64,
    /// The last journal entry written; the table holds its changes.
    journal: u64,
    /// When the table was last checkpointed.
    checkpointed: std::time::Instant,
}

impl Index {
    /// Opens the index of the store in `dir`: the table, with the journal
    /// entries after its last checkpoint replayed, or a table rebuilt from
    /// the blocks. `subject_dims` say which dimensions of a row name its
    /// subjects.
    pub fn open(db: &sled::Db, dir: &Path, subject_dims: &SubjectDims) -> Result<Index, StoreError> {
        let next_block = next_block(db)?;
        let journal = meta_u64(db, keys::JOURNAL_LAST, "the journal counter")?.unwrap_or(0);
        let store = store_id(db, dir)?;
        let path = dir.join(TABLE_DIR);
        let table = Table::open(&path, store).map_err(table_error)?;
        if let Some(table) = table.filter(|t| !t.is_unsafe() && t.applied() <= journal) {
            let mut index = Index {
                table,
                next_block,
                journal,
                checkpointed: std::time::Instant::now(),
            };
            if index.replay(db, subject_dims)? {
                return Ok(index);
            }
            tracing::warn!(store = %dir.display(), "the index's journal has a gap: rebuilding it from the blocks");
        }
        Index::rebuild(db, (&path, store), subject_dims, next_block, journal)
    }

    /// Redoes the journal entries after the table's checkpoint. `false` when
    /// one of them is missing (a table older than the journal kept): then
    /// only a rebuild can bring the table up to date.
    fn replay(&mut self, db: &sled::Db, subject_dims: &SubjectDims) -> Result<bool, StoreError> {
        let from = self.table.applied();
        if from == self.journal {
            return Ok(true);
        }
        // The entries replayed may be in sled's memory only (a commit whose
        // flush failed): a merge during the replay may write a manifest
        // naming runs that hold them, so they reach the disk first.
        db.flush().or_store()?;
        let mut expected = from + 1;
        for entry in db.range(keys::journal(expected)..=keys::journal(self.journal)) {
            let (key, value) = entry.or_store()?;
            if key.as_ref() != keys::journal(expected) {
                return Ok(false);
            }
            expected += 1;
            // An entry that does not decode cannot be replayed: rebuild.
            let Ok(journal) = postcard::from_bytes::<Journal>(&value) else {
                return Ok(false);
            };
            // Whatever the record points at now: the row the table holds may
            // be an older one that a commit since the checkpoint replaced,
            // and whose replacement this retraction took back.
            for (fingerprint, _) in journal.retracted {
                self.table.set(fingerprint, 0).map_err(table_error)?;
            }
            for id in journal.fresh {
                // A block deleted since holds no current row.
                let Some(meta) = block_meta(db, id)? else { continue };
                let Some(bytes) = db.get(meta.key.key()).or_store()? else {
                    continue;
                };
                let (records, subjects) = rows_of(meta.key, &bytes, subject_dims)?;
                for (fingerprint, loc) in records {
                    self.table.set(fingerprint, loc.pack()).map_err(table_error)?;
                }
                for (subject, loc) in subjects {
                    self.add_subject(subject, [loc])?;
                }
            }
        }
        if expected != self.journal + 1 {
            return Ok(false);
        }
        tracing::info!(
            entries = self.journal - from,
            "the index caught up with the store's journal"
        );
        // The replayed entries may not be on disk yet (a commit that failed
        // after its batch, without durable commits): the checkpoint must not
        // claim them before they are.
        db.flush().or_store()?;
        self.checkpoint(db)?;
        Ok(true)
    }

    /// Builds the table from every block (a store opened for the first time
    /// by this build, or whose table is missing or unsafe), and writes each
    /// block's record. Memory: one entry per block, not per row.
    fn rebuild(
        db: &sled::Db,
        (path, store): (&Path, u64),
        subject_dims: &SubjectDims,
        next_block: u64,
        journal: u64,
    ) -> Result<Index, StoreError> {
        tracing::info!(table = %path.display(), "building the store's index from its blocks");
        // The old table goes first (`Table::create`), and the new one has a
        // manifest only at its first checkpoint, once whole: a crash
        // half-way leaves no table, so the next open rebuilds again.
        let table = Table::create(path, store, journal).map_err(table_error)?;
        let mut index = Index {
            table,
            next_block,
            journal,
            checkpointed: std::time::Instant::now(),
        };
        let mut metas: rustc_hash::FxHashMap<u64, BlockMeta> = Default::default();
        for retired in [false, true] {
            for entry in db.scan_prefix(keys::blocks_prefix(retired)) {
                let (key, value) = entry.or_store()?;
                let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
                index.next_block = index.next_block.max(key.block.saturating_add(1));
                let (records, subjects) = rows_of(key, &value, subject_dims)?;
                metas.insert(
                    key.block,
                    BlockMeta {
                        key,
                        present: records.len() as u32,
                        live: 0,
                    },
                );
                // A replace always writes a newer block: the newest row of a record wins.
                for (fingerprint, loc) in records {
                    let current = index.record(fingerprint);
                    if current.is_none_or(|current| current.block < loc.block) {
                        index.table.set(fingerprint, loc.pack()).map_err(table_error)?;
                        live_moves(&mut metas, current, Some(loc));
                    }
                }
                for (subject, loc) in subjects {
                    index.add_subject(subject, [loc])?;
                }
            }
        }
        for entry in db.scan_prefix(keys::TOMBSTONES) {
            let (key, value) = entry.or_store()?;
            let fingerprint = key
                .get(1..17)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(u128::from_le_bytes)
                .ok_or_else(|| StoreError::corrupt("a tombstone key is not a fingerprint"))?;
            let bound = <[u8; 8]>::try_from(value.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::corrupt("a tombstone is not 8 bytes"))?;
            let current = index.record(fingerprint);
            if current.is_some_and(|loc| loc.block < bound) {
                index.table.set(fingerprint, 0).map_err(table_error)?;
                live_moves(&mut metas, current, None);
            }
        }
        let (mut ops, mut stale) = (sled::Batch::default(), 0);
        for entry in db.scan_prefix([keys::BLOCK_META]) {
            let (key, _) = entry.or_store()?;
            ops.remove(key);
            stale += 1;
        }
        if metas.is_empty() && stale == 0 {
            // A new store: nothing to make durable yet (its first
            // checkpoint comes after its first commits).
            return Ok(index);
        }
        for (id, meta) in &metas {
            ops.insert(&keys::block_meta(*id), &meta.encode());
        }
        db.apply_batch(ops).or_store()?;
        db.flush().or_store()?;
        index.checkpoint(db)?;
        Ok(index)
    }

    /// Where a record's current row is.
    pub fn record(&self, fingerprint: Fingerprint) -> Option<Loc> {
        self.table.get(fingerprint).map(Loc::unpack)
    }

    /// Whether the row at `loc` is its record's current row.
    pub fn is_live(&self, fingerprint: Fingerprint, loc: Loc) -> bool {
        self.table.get(fingerprint) == Some(loc.pack())
    }

    /// Rows that may belong to a subject, each once (stale ones included:
    /// check each).
    pub fn subject(&self, fingerprint: Fingerprint) -> Vec<Loc> {
        let count = self.subject_rows(fingerprint);
        // Numbered with none missing: a count damaged on disk ends at the
        // first number with no entry rather than probing up to it.
        let mut locs: Vec<Loc> = (0..count)
            .map_while(|n| self.table.get(subject_slot(fingerprint, n)))
            .map(Loc::unpack)
            .collect();
        locs.sort_unstable_by_key(|loc| (loc.block, loc.slot));
        locs.dedup();
        locs
    }

    /// The journal entry the next commit writes.
    pub fn next_journal(&self) -> u64 {
        self.journal + 1
    }

    /// Applies the changes of a commit whose batch (with journal entry
    /// [`Index::next_journal`]) reached sled. `durable`: whether it reached
    /// the disk; if not, the table is marked to be rebuilt after a crash.
    pub fn apply(&mut self, db: &sled::Db, changes: Changes, durable: bool) -> Result<(), StoreError> {
        if !durable {
            self.table.mark_unsafe().map_err(table_error)?;
        }
        self.journal += 1;
        for (fingerprint, loc) in changes.retracted {
            self.take_back(fingerprint, loc)?;
        }
        for (fingerprint, loc) in changes.added {
            self.table.set(fingerprint, loc.pack()).map_err(table_error)?;
        }
        for (subject, locs) in changes.subjects {
            self.add_subject(subject, locs)?;
        }
        if durable && self.checkpointed.elapsed() >= CHECKPOINT_EVERY {
            self.checkpoint(db)?;
        }
        Ok(())
    }

    /// Whether the table on disk holds everything (nothing to checkpoint):
    /// a store that was only read closes without writing.
    pub fn is_checkpointed(&self) -> bool {
        self.journal == self.table.applied() && !self.table.is_pending() && !self.table.is_unsafe()
    }

    /// Makes the table durable as of the last journal entry and drops the
    /// entries before it. The caller has made sled's batches durable.
    pub fn checkpoint(&mut self, db: &sled::Db) -> Result<(), StoreError> {
        self.table.checkpoint(self.journal).map_err(table_error)?;
        self.checkpointed = std::time::Instant::now();
        // Entries up to the checkpoint are never replayed again; if removing
        // them is lost in a crash, the next checkpoint removes them.
        let mut ops = sled::Batch::default();
        for entry in db.range(keys::journal(0)..=keys::journal(self.journal)) {
            let (key, _) = entry.or_store()?;
            ops.remove(key);
        }
        db.apply_batch(ops).or_store()
    }

    /// A retracted record no longer has a current row (unless a later
    /// change already moved it elsewhere).
    fn take_back(&mut self, fingerprint: Fingerprint, loc: Loc) -> Result<(), StoreError> {
        if self.is_live(fingerprint, loc) {
            self.table.set(fingerprint, 0).map_err(table_error)?;
        }
        Ok(())
    }

    /// How many numbered entries a subject has: its count entry's value.
    fn subject_rows(&self, fingerprint: Fingerprint) -> u64 {
        self.table.get(subject_count(fingerprint)).unwrap_or(0)
    }

    /// Adds rows to a subject's entries, numbered after its last, and
    /// counts them.
    fn add_subject(&mut self, fingerprint: Fingerprint, locs: impl IntoIterator<Item = Loc>) -> Result<(), StoreError> {
        let first = self.subject_rows(fingerprint);
        let mut next = first;
        for loc in locs {
            self.table
                .set(subject_slot(fingerprint, next), loc.pack())
                .map_err(table_error)?;
            next += 1;
        }
        if next != first {
            self.table.set(subject_count(fingerprint), next).map_err(table_error)?;
        }
        Ok(())
    }
}

/// Counts a record's current row moving from `from` to `to` in the blocks' live counts.
fn live_moves(metas: &mut rustc_hash::FxHashMap<u64, BlockMeta>, from: Option<Loc>, to: Option<Loc>) {
    if let Some(meta) = from.and_then(|loc| metas.get_mut(&loc.block)) {
        meta.live = meta.live.saturating_sub(1);
    }
    if let Some(meta) = to.and_then(|loc| metas.get_mut(&loc.block)) {
        meta.live += 1;
    }
}

/// The table key of a subject's `n`th row.
fn subject_slot(fingerprint: Fingerprint, n: u64) -> Fingerprint {
    let mut bytes = [0u8; 25];
    bytes[0] = b'n';
    bytes[1..17].copy_from_slice(&fingerprint.to_le_bytes());
    bytes[17..].copy_from_slice(&n.to_le_bytes());
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

/// The table key of a subject's count of rows.
fn subject_count(fingerprint: Fingerprint) -> Fingerprint {
    let mut bytes = [0u8; 17];
    bytes[0] = b'c';
    bytes[1..].copy_from_slice(&fingerprint.to_le_bytes());
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

/// The rows a block holds: each record's fingerprint and location, and the
/// subjects its live rows are listed under (`subject_dims`; retired rows
/// name none).
type BlockRows = (Vec<(Fingerprint, Loc)>, Vec<(Fingerprint, Loc)>);

fn rows_of(key: BlockKey, bytes: &[u8], subject_dims: &SubjectDims) -> Result<BlockRows, StoreError> {
    let at = |slot: usize| Loc {
        block: key.block,
        slot: slot as u32,
    };
    let (mut records, mut subjects) = (Vec::new(), Vec::new());
    if key.retired {
        let block: Block<RetiredRow> = Block::decode(bytes)?;
        for (slot, row) in block.rows.iter().enumerate() {
            if let Some(row) = row {
                records.push((u128::from_le_bytes(row.fingerprint), at(slot)));
            }
        }
    } else {
        let block: Block<Row> = Block::decode(bytes)?;
        for (slot, row) in block.rows.iter().enumerate() {
            let Some(row) = row else { continue };
            records.push((
                stored_record_fingerprint(key.tenant, block.source, key.metric, &row.id),
                at(slot),
            ));
            for subject in subject_fingerprints(key.tenant, subject_dims.of(key.metric, key.block), &row.inline) {
                subjects.push((subject, at(slot)));
            }
        }
    }
    Ok((records, subjects))
}

/// The store's identity, made on first use: its index table carries it, so
/// a table copied from another store is rebuilt rather than trusted.
fn store_id(db: &sled::Db, dir: &Path) -> Result<u64, StoreError> {
    if let Some(id) = meta_u64(db, keys::STORE_ID, "the store's id")? {
        return Ok(id);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{now} {} {}", std::process::id(), dir.display());
    let id = xxhash_rust::xxh3::xxh3_64(seed.as_bytes());
    // Durable with the next flush: the table that carries it reaches its
    // file only at a checkpoint, which comes after one.
    db.insert(keys::STORE_ID, &id.to_be_bytes()).or_store()?;
    Ok(id)
}

/// A big-endian u64 kept under `key` (`what` names it in an error).
fn meta_u64(db: &sled::Db, key: &[u8], what: &str) -> Result<Option<u64>, StoreError> {
    db.get(key)
        .or_store()?
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::corrupt(format!("{what} is not 8 bytes")))
        })
        .transpose()
}

fn table_error(error: TableError) -> StoreError {
    StoreError::backend(super::BACKEND, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_records_round_trip() {
        let meta = BlockMeta {
            key: BlockKey {
                tenant: 1,
                metric: 2,
                day: -3,
                block: 4,
                retired: true,
            },
            present: 512,
            live: 7,
        };
        assert_eq!(BlockMeta::decode(&meta.encode()).unwrap(), meta);
        assert!(BlockMeta::decode(&meta.encode()[..20]).is_err());
    }

    #[test]
    fn a_subject_finds_every_row_however_many() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let mut index = Index::open(&db, dir.path(), &SubjectDims::default()).unwrap();
        for count in [1u64, 2, 3, 5, 64, 1000] {
            let subject = u128::from(count) * 7919;
            let locs: Vec<Loc> = (0..count)
                .map(|i| Loc {
                    block: 1 + i / 3,
                    slot: (i % 3) as u32,
                })
                .collect();
            // In pieces, as commits add them.
            for piece in locs.chunks(7) {
                index.add_subject(subject, piece.iter().copied()).unwrap();
            }
            assert_eq!(index.subject(subject), locs, "{count} rows");
        }
        assert!(index.subject(1).is_empty());
    }

    /// A block written before format 10 lists its row of another metric
    /// under the ticket when the table is rebuilt (the join holds no entry
    /// for it); a block written since lists it under its other subjects
    /// only (the join lists it under the number); a row of the join's
    /// metrics is never listed under its ticket.
    #[test]
    fn a_rebuilt_table_lists_a_ticket_only_for_blocks_of_earlier_formats() {
        use crate::block::{RecordId, Value};
        let (ticket, device, reassignments, resolved) = (1, 2, 10, 11);
        let dims = SubjectDims::new(vec![ticket, device], Some(ticket), vec![resolved], 500);
        let row = Row {
            id: RecordId::new("INC0001"),
            offset: 0,
            value: Value::new(2.0),
            layer: 0,
            dims: Arc::from(Vec::new()),
            inline: Arc::from(vec![(ticket, "INC0001".to_string()), (device, "LAPTOP-1".to_string())]),
        };
        let bytes = Block {
            source: 1,
            provenance: 1,
            rows: vec![Some(row.clone())],
        }
        .encode()
        .unwrap();
        let listed = |metric: u32, block: u64| {
            let key = BlockKey {
                tenant: 3,
                metric,
                day: 0,
                block,
                retired: false,
            };
            let (records, subjects) = rows_of(key, &bytes, &dims).unwrap();
            assert_eq!(records.len(), 1);
            let mut subjects: Vec<Fingerprint> = subjects.into_iter().map(|(s, _)| s).collect();
            subjects.sort_unstable();
            subjects
        };
        let mut both = vec![
            subject_fingerprint(3, ticket, "INC0001"),
            subject_fingerprint(3, device, "LAPTOP-1"),
        ];
        both.sort_unstable();
        let device_only = vec![subject_fingerprint(3, device, "LAPTOP-1")];
        assert_eq!(listed(reassignments, 499), both, "written before format 10");
        assert_eq!(listed(reassignments, 500), device_only, "written since");
        assert_eq!(listed(resolved, 499), device_only, "the join's own rows");
        assert_eq!(
            &*dims.fingerprints(3, &row.inline),
            &device_only[..],
            "what a commit lists"
        );
    }

    #[test]
    fn locations_pack_and_unpack() {
        let loc = Loc {
            block: 123_456_789,
            slot: MAX_SLOTS - 1,
        };
        assert_eq!(Loc::unpack(loc.pack()), loc);
    }
}
