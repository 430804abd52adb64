//! The index's table on disk: 128-bit fingerprints to 64-bit values, in one
//! memory-mapped file beside sled's (`index.xla`).
//!
//! Why a file of our own and not sled keys: sled 0.34 writes about 65,000
//! small keys a second here, and the index takes several entries per
//! stored value. A mapped open-addressing table costs a probe what an
//! in-memory hash map costs, opens in no time whatever its size, and its
//! pages belong to the kernel's page cache, which writes them back and
//! drops them under memory pressure: resident memory does not have to grow
//! with the store.
//!
//! ```text
//! 0      header (4 KiB): magic, slot bits, used slots, applied journal entry, flags, store id, checksum
//! 4096   2^bits slots of 24 bytes: fingerprint (u128 LE, 0 = empty), value (u64 LE)
//! ```
//!
//! Linear probing from the fingerprint's high bits, at most three quarters
//! full; the table doubles into a new file past that, which replaces the
//! old one at the next checkpoint. A slot once taken is
//! never emptied in place (a removed entry keeps it with value 0 until the
//! table grows), so a write torn by a power loss can only damage entries
//! written since the last checkpoint, and the journal replay writes those
//! again (see `index`).

use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Bytes before the first slot.
const HEADER: usize = 4096;
/// Bytes per slot: fingerprint and value.
const SLOT: usize = 24;
/// Identifies the file and its layout version.
const MAGIC: &[u8; 8] = b"XLAIDX02";
/// The smallest table: 65,536 slots (1.5 MiB).
const MIN_BITS: u32 = 16;
/// The largest: 2^40 slots, far past any disk.
const MAX_BITS: u32 = 40;
/// A table grown to at most this many bytes is built in anonymous memory
/// and written to its file at the next checkpoint: new pages of a file cost
/// the kernel a slow zeroing each (a quarter of a sync's CPU at first), new
/// pages of memory a fast one. Larger tables grow in their files, so this
/// bounds what the table holds in memory of its own. (Smaller in unit tests,
/// so that they grow tables both ways.)
const IN_MEMORY: usize = if cfg!(test) { 4 << 20 } else { 256 << 20 };
/// Header flag: the table was written while commits did not wait for the
/// disk, so after a crash it may know of commits sled lost.
const FLAG_UNSAFE: u64 = 1;

/// Why the table cannot be used.
#[derive(Debug, Error)]
pub(crate) enum TableError {
    #[error("the index file {path} could not be {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

/// An open table.
pub(crate) struct Table {
    /// Where the table lives once checkpointed (`index.xla`).
    home: PathBuf,
    /// Its file: `home`, or a grown table not yet checkpointed.
    path: PathBuf,
    /// `None` while the table is in anonymous memory (grown, and not
    /// checkpointed since; see [`IN_MEMORY`]).
    file: Option<File>,
    map: MmapMut,
    bits: u32,
    /// Slots taken (removed entries included). After a crash it may count
    /// fewer than are taken (it is written at checkpoints): growing recounts.
    used: u64,
    /// The last journal entry whose changes are in the table, durably.
    applied: u64,
    flags: u64,
    /// The store it indexes: a table copied from another store is not used.
    store: u64,
}

impl Table {
    /// Opens the table at `path` of the store `store`. `Ok(None)` when there
    /// is none, when its header is not one this build wrote, or when it is
    /// another store's (then the caller rebuilds it).
    pub fn open(path: &Path, store: u64) -> Result<Option<Table>, TableError> {
        // A table grown since the last checkpoint is not durable: the one
        // at `path` and the journal since its checkpoint are.
        for leftover in [with_suffix(path, ".grow"), with_suffix(path, ".new")] {
            let _ = std::fs::remove_file(leftover);
        }
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io(path, "opened", source)),
        };
        let len = file.metadata().map_err(|e| io(path, "read", e))?.len();
        if len < HEADER as u64 {
            return Ok(None);
        }
        let map = map(&file, path, false)?;
        let Some(header) = Header::read(&map[..HEADER]).filter(|h| h.store == store) else {
            return Ok(None);
        };
        if len != HEADER as u64 + ((SLOT as u64) << header.bits) {
            return Ok(None);
        }
        Ok(Some(Table {
            home: path.to_path_buf(),
            path: path.to_path_buf(),
            file: Some(file),
            map,
            bits: header.bits,
            used: header.used,
            applied: header.applied,
            flags: header.flags,
            store,
        }))
    }

    /// Creates an empty table for the store `store`, with room for
    /// `entries` before it grows. It replaces any table at `path` at its
    /// first checkpoint: a crash before leaves no new table there.
    pub fn create(path: &Path, store: u64, entries: u64, applied: u64) -> Result<Table, TableError> {
        let pending = with_suffix(path, ".new");
        Table::create_at(path, &pending, bits_for(entries), (applied, 0, store))
    }

    /// A new empty table in the file `path`, to live at `home` once
    /// checkpointed, with the header fields (applied, flags, store) given.
    fn create_at(
        home: &Path,
        path: &Path,
        bits: u32,
        (applied, flags, store): (u64, u64, u64),
    ) -> Result<Table, TableError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io(path, "created", e))?;
        file.set_len(HEADER as u64 + ((SLOT as u64) << bits))
            .map_err(|e| io(path, "sized", e))?;
        let map = map(&file, path, bits > MIN_BITS)?;
        Ok(Table {
            home: home.to_path_buf(),
            path: path.to_path_buf(),
            file: Some(file),
            map,
            bits,
            used: 0,
            applied,
            flags,
            store,
        })
    }

    /// The last journal entry whose changes the table holds durably.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Whether the table is not in its file at home yet (new or grown
    /// since the last checkpoint).
    pub fn is_pending(&self) -> bool {
        self.file.is_none() || self.path != self.home
    }

    /// Whether the table was written while commits did not wait for the disk
    /// and not checkpointed since.
    pub fn is_unsafe(&self) -> bool {
        self.flags & FLAG_UNSAFE != 0
    }

    /// Marks the table, on disk, as not to be trusted after a crash (the
    /// next checkpoint clears it): before the first write without durable
    /// commits, and while a rebuild fills it. A crash then leads to a
    /// rebuild.
    pub fn mark_unsafe(&mut self) -> Result<(), TableError> {
        if !self.is_unsafe() {
            self.flags |= FLAG_UNSAFE;
            self.write_header();
            if self.file.is_some() {
                self.map
                    .flush_range(0, HEADER)
                    .map_err(|e| io(&self.path, "flushed", e))?;
            }
        }
        Ok(())
    }

    /// Slots taken, for sizing a rebuild.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The value of `fingerprint`, if it has a non-zero one.
    pub fn get(&self, fingerprint: u128) -> Option<u64> {
        let key = key_of(fingerprint);
        let mask = self.mask();
        let mut slot = self.start(key);
        for _ in 0..=mask {
            match self.slot(slot) {
                (0, _) => return None,
                (k, value) if k == key => return (value != 0).then_some(value),
                _ => slot = (slot + 1) & mask,
            }
        }
        None
    }

    /// Sets the value of `fingerprint` (0 removes it), growing the table when
    /// it is three quarters full.
    pub fn set(&mut self, fingerprint: u128, value: u64) -> Result<(), TableError> {
        let key = key_of(fingerprint);
        if let Some(slot) = self.find_or_free(key) {
            if self.slot(slot).0 == 0 {
                if value == 0 {
                    return Ok(());
                }
                if (self.used + 1) * 4 > (3u64 << self.bits) {
                    self.grow()?;
                    return self.set(fingerprint, value);
                }
                self.used += 1;
            }
            self.write_slot(slot, key, value);
            return Ok(());
        }
        // Full (the used count was behind after a crash): grow and retry.
        self.grow()?;
        self.set(fingerprint, value)
    }

    /// Makes what the table holds durable as of journal entry `applied`,
    /// clearing the unsafe flag: the data first, then the header, then (for
    /// a table grown since the last checkpoint) its move home.
    pub fn checkpoint(&mut self, applied: u64) -> Result<(), TableError> {
        if self.file.is_none() {
            self.applied = applied;
            self.flags &= !FLAG_UNSAFE;
            self.write_header();
            return self.write_out();
        }
        self.map.flush().map_err(|e| io(&self.path, "flushed", e))?;
        self.applied = applied;
        self.flags &= !FLAG_UNSAFE;
        self.write_header();
        self.map
            .flush_range(0, HEADER)
            .map_err(|e| io(&self.path, "flushed", e))?;
        if self.path != self.home {
            let home = self.home.clone();
            self.rename_to(&home)?;
        }
        Ok(())
    }

    fn mask(&self) -> usize {
        (1usize << self.bits) - 1
    }

    fn start(&self, key: u128) -> usize {
        (key >> (128 - self.bits)) as usize
    }

    /// The slot holding `key`, or the free slot where it would go.
    fn find_or_free(&self, key: u128) -> Option<usize> {
        let mask = self.mask();
        let mut slot = self.start(key);
        for _ in 0..=mask {
            let (k, _) = self.slot(slot);
            if k == 0 || k == key {
                return Some(slot);
            }
            slot = (slot + 1) & mask;
        }
        None
    }

    fn slot(&self, slot: usize) -> (u128, u64) {
        let at = HEADER + slot * SLOT;
        let bytes = &self.map[at..at + SLOT];
        let mut key = [0u8; 16];
        key.copy_from_slice(&bytes[..16]);
        let mut value = [0u8; 8];
        value.copy_from_slice(&bytes[16..]);
        (u128::from_le_bytes(key), u64::from_le_bytes(value))
    }

    fn write_slot(&mut self, slot: usize, key: u128, value: u64) {
        let at = HEADER + slot * SLOT;
        // The value first: a slot is never seen taken with a stale value.
        self.map[at + 16..at + SLOT].copy_from_slice(&value.to_le_bytes());
        self.map[at..at + 16].copy_from_slice(&key.to_le_bytes());
    }

    /// Doubles the table into a new file: every entry with a value is
    /// moved, removed ones are dropped. The new file replaces the old at the
    /// next checkpoint, so a crash before it leaves the old one.
    fn grow(&mut self) -> Result<(), TableError> {
        let entries = (0..=self.mask())
            .map(|slot| self.slot(slot))
            .filter(|(key, value)| *key != 0 && *value != 0)
            .count() as u64;
        let bits = bits_for(entries + 1).max(self.bits + 1).min(MAX_BITS);
        let pending = with_suffix(&self.home, ".new");
        let growing = with_suffix(&self.home, ".grow");
        let len = HEADER + (SLOT << bits);
        let mut grown = if len <= IN_MEMORY {
            Table {
                home: self.home.clone(),
                path: pending.clone(),
                file: None,
                map: MmapMut::map_anon(len).map_err(|e| io(&pending, "allocated", e))?,
                bits,
                used: 0,
                applied: self.applied,
                flags: self.flags,
                store: self.store,
            }
        } else {
            Table::create_at(&self.home, &growing, bits, (self.applied, self.flags, self.store))?
        };
        for slot in 0..=self.mask() {
            let (key, value) = self.slot(slot);
            if key != 0 && value != 0 {
                let free = grown
                    .find_or_free(key)
                    .ok_or_else(|| io(&self.path, "grown", std::io::Error::other("the new table is full")))?;
                grown.write_slot(free, key, value);
                grown.used += 1;
            }
        }
        // Not durable yet, and not needed to be: until the next checkpoint
        // moves it home, a crash leaves the table there was at the last
        // checkpoint, and the journal since then is replayed over it.
        // (Flushing here wrote the whole table at every doubling: half of
        // an ingest's time at ten million rows.)
        if grown.file.is_some() {
            std::fs::rename(&growing, &pending).map_err(|e| io(&pending, "renamed", e))?;
            grown.path = pending;
        }
        *self = grown;
        Ok(())
    }

    /// Writes a table held in memory to a new file that then replaces the
    /// one at home: the slots, then the header, then a sync. The table
    /// stays in memory. The writes bypass the page cache where the file
    /// system allows (`O_DIRECT`): copying into it cost as much as the
    /// zeroing this saves.
    fn write_out(&mut self) -> Result<(), TableError> {
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        let path = with_suffix(&self.home, ".new");
        let create = |direct: bool| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(if direct { libc::O_DIRECT } else { 0 })
                .open(&path)
        };
        // The slots, then the header that makes them a table, then a sync.
        let write = |file: File| {
            file.write_all_at(&self.map[HEADER..], HEADER as u64)?;
            file.write_all_at(&self.map[..HEADER], 0)?;
            file.sync_all()
        };
        let direct = create(true).and_then(write);
        if direct.is_err() {
            // Some file systems refuse O_DIRECT at open, others at the write.
            create(false).and_then(write).map_err(|e| io(&path, "written", e))?;
        }
        self.path = path;
        let home = self.home.clone();
        self.rename_to(&home)
    }

    /// Moves the file to `path` and makes the move durable.
    fn rename_to(&mut self, path: &Path) -> Result<(), TableError> {
        std::fs::rename(&self.path, path).map_err(|e| io(path, "renamed", e))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(path, "synced", e))?;
        }
        self.path = path.to_path_buf();
        Ok(())
    }

    fn write_header(&mut self) {
        let header = Header {
            bits: self.bits,
            used: self.used,
            applied: self.applied,
            flags: self.flags,
            store: self.store,
        };
        header.write(&mut self.map[..HEADER]);
    }
}

/// Maps `file` for reading and writing. `populate`: fault every page in
/// now, for a new table about to be filled: one pass of the kernel instead
/// of a fault per page (a tenth of an ingest's time when faulted one by one).
#[allow(unsafe_code)]
fn map(file: &File, path: &Path, populate: bool) -> Result<MmapMut, TableError> {
    let mut options = memmap2::MmapOptions::new();
    if populate {
        options.populate();
    }
    // SAFETY: a mapped file changed by someone else breaks Rust's aliasing
    // rules. This one is ours: it sits in a store directory that sled has
    // locked for this process, and nothing in the process maps it twice
    // (a table is opened once per open store, and dropped before reopening).
    unsafe { options.map_mut(file) }.map_err(|e| io(path, "mapped", e))
}

/// `path` with `suffix` added to its name: where a table is written before
/// it is checkpointed (`.new`), and while it is being grown (`.grow`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Slot bits for `entries` at most three quarters full.
fn bits_for(entries: u64) -> u32 {
    let slots = entries.saturating_mul(4) / 3 + 1;
    (u64::BITS - slots.saturating_sub(1).leading_zeros()).clamp(MIN_BITS, MAX_BITS)
}

/// A fingerprint as a key: 0 marks an empty slot, so it is moved to 1.
fn key_of(fingerprint: u128) -> u128 {
    fingerprint.max(1)
}

fn io(path: &Path, action: &'static str, source: std::io::Error) -> TableError {
    TableError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The header's fields (the rest of its page is zero).
struct Header {
    bits: u32,
    used: u64,
    applied: u64,
    flags: u64,
    store: u64,
}

impl Header {
    /// The header in `page`, if it is one this build wrote and intact.
    fn read(page: &[u8]) -> Option<Header> {
        if page.get(..8)? != MAGIC {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_le_bytes(page.get(at..at + 8)?.try_into().ok()?));
        if u64_at(48)? != xxhash_rust::xxh3::xxh3_64(page.get(..48)?) {
            return None;
        }
        let bits = u32::try_from(u64_at(8)?).ok()?;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return None;
        }
        Some(Header {
            bits,
            used: u64_at(16)?,
            applied: u64_at(24)?,
            flags: u64_at(32)?,
            store: u64_at(40)?,
        })
    }

    fn write(&self, page: &mut [u8]) {
        page[..8].copy_from_slice(MAGIC);
        page[8..16].copy_from_slice(&u64::from(self.bits).to_le_bytes());
        page[16..24].copy_from_slice(&self.used.to_le_bytes());
        page[24..32].copy_from_slice(&self.applied.to_le_bytes());
        page[32..40].copy_from_slice(&self.flags.to_le_bytes());
        page[40..48].copy_from_slice(&self.store.to_le_bytes());
        let checksum = xxhash_rust::xxh3::xxh3_64(&page[..48]);
        page[48..56].copy_from_slice(&checksum.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: u64 = 0x5eed;

    fn fingerprint(i: u64) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes())
    }

    #[test]
    fn entries_survive_growth_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xla");
        let mut table = Table::create(&path, STORE, 0, 0).unwrap();
        let n = 200_000u64;
        for i in 0..n {
            table.set(fingerprint(i), i + 1).unwrap();
        }
        // Removed entries read as absent, and are dropped when it grows.
        for i in (0..n).step_by(3) {
            table.set(fingerprint(i), 0).unwrap();
        }
        assert!(table.bits > MIN_BITS, "the table grew");
        table.checkpoint(7).unwrap();
        drop(table);
        let table = Table::open(&path, STORE).unwrap().expect("the table reopens");
        assert_eq!(table.applied(), 7);
        for i in 0..n {
            let expected = (i % 3 != 0).then_some(i + 1);
            assert_eq!(table.get(fingerprint(i)), expected, "entry {i}");
        }
        assert_eq!(table.get(fingerprint(n + 1)), None);
    }

    #[test]
    fn entries_whose_place_is_near_the_end_survive_growth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xla");
        let mut table = Table::create(&path, STORE, 0, 0).unwrap();
        // Keys whose high bits are all ones crowd the last slots and wrap
        // around to the first, in the old table and the new.
        let crowded = |i: u64| u128::MAX - u128::from(i) * 7;
        let n = 60_000u64;
        for i in 0..n {
            let key = if i % 10 == 0 { crowded(i) } else { fingerprint(i) };
            table.set(key, i + 1).unwrap();
        }
        assert!(table.bits > MIN_BITS, "the table grew");
        for i in 0..n {
            let key = if i % 10 == 0 { crowded(i) } else { fingerprint(i) };
            assert_eq!(table.get(key), Some(i + 1), "entry {i}");
        }
        assert_eq!(table.used(), n);
    }

    #[test]
    fn a_table_full_because_its_count_was_behind_grows_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xla");
        let mut table = Table::create(&path, STORE, 0, 0).unwrap();
        let slots = 1u64 << MIN_BITS;
        // As after crashes: the count says empty while every slot is taken.
        for i in 0..slots {
            table.used = 0;
            table.set(fingerprint(i), i + 1).unwrap();
        }
        assert_eq!(table.bits, MIN_BITS);
        table.set(fingerprint(slots), slots + 1).unwrap();
        assert_eq!(table.bits, MIN_BITS + 1, "a full table grows");
        for i in 0..=slots {
            assert_eq!(table.get(fingerprint(i)), Some(i + 1), "entry {i}");
        }
        assert_eq!(table.used(), slots + 1, "growing counts again");
    }

    #[test]
    fn a_table_grown_since_its_checkpoint_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xla");
        let mut table = Table::create(&path, STORE, 0, 0).unwrap();
        table.set(fingerprint(0), 1).unwrap();
        table.checkpoint(4).unwrap();
        for i in 1..60_000 {
            table.set(fingerprint(i), i + 1).unwrap();
        }
        assert!(table.bits > MIN_BITS, "the table grew");
        // A crash now: the grown table was never checkpointed.
        drop(table);
        let table = Table::open(&path, STORE).unwrap().expect("the checkpointed table");
        assert_eq!((table.bits, table.applied()), (MIN_BITS, 4));
        assert_eq!(table.get(fingerprint(0)), Some(1));
        assert!(!with_suffix(&path, ".new").exists(), "the grown file is gone");
    }

    #[test]
    fn a_damaged_or_foreign_header_asks_for_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xla");
        assert!(Table::open(&path, STORE).unwrap().is_none(), "no file");
        let mut table = Table::create(&path, STORE, 10, 3).unwrap();
        table.set(fingerprint(1), 5).unwrap();
        table.checkpoint(3).unwrap();
        drop(table);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(Table::open(&path, STORE).unwrap().is_none(), "a checksum mismatch");
        let mut table = Table::create(&path, STORE, 10, 3).unwrap();
        table.checkpoint(3).unwrap();
        drop(table);
        assert!(
            Table::open(&path, STORE + 1).unwrap().is_none(),
            "another store's table"
        );
        std::fs::write(&path, b"not an index").unwrap();
        assert!(Table::open(&path, STORE).unwrap().is_none(), "a short file");
    }

    #[test]
    fn the_unsafe_flag_lasts_until_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xla");
        let mut table = Table::create(&path, STORE, 10, 0).unwrap();
        table.checkpoint(0).unwrap();
        table.mark_unsafe().unwrap();
        drop(table);
        let mut table = Table::open(&path, STORE).unwrap().unwrap();
        assert!(table.is_unsafe());
        table.checkpoint(1).unwrap();
        drop(table);
        assert!(!Table::open(&path, STORE).unwrap().unwrap().is_unsafe());
    }

    #[test]
    fn sizes_fit_their_entries() {
        assert_eq!(bits_for(0), MIN_BITS);
        assert!((3u64 << bits_for(1_000_000)) / 4 >= 1_000_000);
        assert!(bits_for(1_000_000) <= 21);
    }
}
