//! The in-memory index: where each record's current row is, which rows
//! belong to a subject, and what each block holds. It is rebuilt from the
//! blocks on first use after the store opens, and changed right after a
//! commit's batch is applied; a failed commit drops it to be rebuilt.
//!
//! Why in memory: sled 0.34 writes about 65,000 small keys a second here,
//! so an on-disk entry per record would cap ingest far below the store's
//! aim. The price is RAM (about 100 bytes per live observation) and a scan
//! of the blocks on first use.
//!
//! A row is live when the index points at it. A replace leaves the old row
//! in its block, stale, and moves the pointer; a block whose stale rows
//! outnumber its live ones is compacted by the commit that tips it, and a
//! block with no live row is deleted.

use super::StoreError;
use super::block::{Block, Fingerprint, RetiredRow, Row, stored_record_fingerprint, subject_fingerprints};
use super::keys::{self, BlockKey};
use crate::OrStore;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Rows per block at most (slots are 20 bits).
pub(crate) const MAX_SLOTS: u32 = 1 << 20;

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

/// What the index knows of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub key: BlockKey,
    /// Slots holding a row, live or stale.
    pub present: u32,
    /// Rows the index points at.
    pub live: u32,
}

/// A change to apply once its commit is on disk.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A block was written or rewritten.
    Block(BlockMeta),
    /// A record's current row.
    Record(Fingerprint, Loc),
    /// The rows of one record that name a subject (one per metric value).
    SubjectAdd(Fingerprint, Locs),
    SubjectRemove(Fingerprint, Loc),
    /// A block was deleted.
    BlockGone(u64),
    /// A record was retracted: it has no current row.
    RecordGone(Fingerprint, Loc),
}

/// The locations of one record's rows: a handful, held inline.
pub(crate) type Locs = SmallVec<[Loc; 8]>;

/// Fingerprints are already uniform hashes: fold, do not rehash.
#[derive(Default, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = (value as u64) ^ ((value >> 64) as u64);
    }
}

type FoldMap<V> = HashMap<Fingerprint, V, BuildHasherDefault<FoldHasher>>;

#[derive(Debug, Default)]
pub(crate) struct Index {
    records: FoldMap<u64>,
    subjects: FoldMap<SmallVec<[u64; 2]>>,
    blocks: rustc_hash::FxHashMap<u64, BlockMeta>,
    /// The next block id to hand out.
    pub next_block: u64,
}

impl Index {
    /// Reads every block. `subject_dims` are the dictionary ids of the
    /// dimensions that name subjects.
    pub fn rebuild(db: &sled::Db, subject_dims: &[u32]) -> Result<Index, StoreError> {
        let mut index = Index {
            next_block: 1,
            ..Index::default()
        };
        // Sized up front from the last commit's counts: growing a table of
        // millions rehashes it, and that was most of a rebuild's time.
        if let Some(bytes) = db.get(keys::INDEX_SIZE).or_store()? {
            let count = |range: std::ops::Range<usize>| {
                bytes
                    .get(range)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes)
            };
            // A hint, not trusted: a damaged value must not reserve the machine.
            const MOST: u64 = 100_000_000;
            index.records.reserve(count(0..8).min(MOST) as usize);
            index.subjects.reserve(count(8..16).min(MOST) as usize);
        }
        if let Some(bytes) = db.get(keys::BLOCK_NEXT).or_store()? {
            let array: [u8; 8] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::corrupt("the block counter is not 8 bytes"))?;
            index.next_block = u64::from_be_bytes(array);
        }
        for entry in db.scan_prefix(keys::blocks_prefix(false)) {
            let (key, value) = entry.or_store()?;
            let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            let block: Block<Row> = Block::decode(&value)?;
            index.note_block(key, block.rows.iter().flatten().count());
            for (slot, row) in block.rows.iter().enumerate() {
                let Some(row) = row else { continue };
                let loc = Loc {
                    block: key.block,
                    slot: slot as u32,
                };
                let fingerprint = stored_record_fingerprint(key.tenant, block.source, key.metric, &row.id);
                index.point_if_newer(fingerprint, loc);
                for subject in subject_fingerprints(key.tenant, subject_dims, &row.inline) {
                    index.add_subject(subject, [loc]);
                }
            }
        }
        for entry in db.scan_prefix(keys::blocks_prefix(true)) {
            let (key, value) = entry.or_store()?;
            let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            let block: Block<RetiredRow> = Block::decode(&value)?;
            index.note_block(key, block.rows.iter().flatten().count());
            for (slot, row) in block.rows.iter().enumerate() {
                if let Some(row) = row {
                    let loc = Loc {
                        block: key.block,
                        slot: slot as u32,
                    };
                    index.point_if_newer(u128::from_le_bytes(row.fingerprint), loc);
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
            if index.record(fingerprint).is_some_and(|loc| loc.block < bound) {
                index.records.remove(&fingerprint);
            }
        }
        for packed in index.records.values() {
            if let Some(meta) = index.blocks.get_mut(&Loc::unpack(*packed).block) {
                meta.live += 1;
            }
        }
        Ok(index)
    }

    fn note_block(&mut self, key: BlockKey, present: usize) {
        self.next_block = self.next_block.max(key.block.saturating_add(1));
        self.blocks.insert(
            key.block,
            BlockMeta {
                key,
                present: present as u32,
                live: 0,
            },
        );
    }

    /// A replace always writes a newer block, so the newest row of a record wins.
    fn point_if_newer(&mut self, fingerprint: Fingerprint, loc: Loc) {
        let current = self.records.entry(fingerprint).or_insert(loc.pack());
        if Loc::unpack(*current).block < loc.block {
            *current = loc.pack();
        }
    }

    /// Each location is added once (a row is written once), so no check:
    /// a device with a year of daily rows must not make adding quadratic.
    /// A record's rows come together: its subject's list grows once for them.
    fn add_subject(&mut self, fingerprint: Fingerprint, locs: impl IntoIterator<Item = Loc>) {
        self.subjects
            .entry(fingerprint)
            .or_default()
            .extend(locs.into_iter().map(Loc::pack));
    }

    /// Where a record's current row is.
    pub fn record(&self, fingerprint: Fingerprint) -> Option<Loc> {
        self.records.get(&fingerprint).copied().map(Loc::unpack)
    }

    /// Whether the row at `loc` is its record's current row.
    pub fn is_live(&self, fingerprint: Fingerprint, loc: Loc) -> bool {
        self.records.get(&fingerprint) == Some(&loc.pack())
    }

    /// Rows that may belong to a subject (stale ones included: check each).
    pub fn subject(&self, fingerprint: Fingerprint) -> impl Iterator<Item = Loc> + '_ {
        self.subjects
            .get(&fingerprint)
            .into_iter()
            .flatten()
            .map(|packed| Loc::unpack(*packed))
    }

    pub fn block(&self, id: u64) -> Option<&BlockMeta> {
        self.blocks.get(&id)
    }

    /// Records and subjects, as a sizing hint for the next rebuild.
    pub fn size_hint(&self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&(self.records.len() as u64).to_be_bytes());
        bytes[8..].copy_from_slice(&(self.subjects.len() as u64).to_be_bytes());
        bytes
    }

    /// Applies the changes of a commit that reached the disk.
    pub fn apply(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Block(meta) => {
                    let live = self.blocks.get(&meta.key.block).map_or(0, |m| m.live);
                    self.blocks.insert(meta.key.block, BlockMeta { live, ..meta });
                }
                Change::Record(fingerprint, loc) => {
                    if let Some(old) = self.records.insert(fingerprint, loc.pack())
                        && let Some(meta) = self.blocks.get_mut(&Loc::unpack(old).block)
                    {
                        meta.live = meta.live.saturating_sub(1);
                    }
                    if let Some(meta) = self.blocks.get_mut(&loc.block) {
                        meta.live += 1;
                    }
                }
                Change::SubjectAdd(fingerprint, locs) => self.add_subject(fingerprint, locs),
                Change::SubjectRemove(fingerprint, loc) => {
                    if let Some(locs) = self.subjects.get_mut(&fingerprint) {
                        locs.retain(|l| *l != loc.pack());
                        if locs.is_empty() {
                            self.subjects.remove(&fingerprint);
                        }
                    }
                }
                Change::BlockGone(id) => {
                    self.blocks.remove(&id);
                }
                Change::RecordGone(fingerprint, loc) => {
                    if self.records.get(&fingerprint) == Some(&loc.pack()) {
                        self.records.remove(&fingerprint);
                        if let Some(meta) = self.blocks.get_mut(&loc.block) {
                            meta.live = meta.live.saturating_sub(1);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_pack_and_unpack() {
        let loc = Loc {
            block: 123_456_789,
            slot: MAX_SLOTS - 1,
        };
        assert_eq!(Loc::unpack(loc.pack()), loc);
    }
}
