//! The index's table on disk: 128-bit fingerprints to 64-bit values, kept as
//! sorted runs in a directory beside sled's files (`index/`), the way a
//! log-structured merge tree keeps them.
//!
//! Why not sled keys: sled 0.34 writes about 65,000 small keys a second
//! here, and the index takes several entries per stored value. Why not a
//! hash table in a file (the layout before this one): every commit changes
//! entries all over it, so each checkpoint wrote most of its pages back;
//! past a few gigabytes that outran the disk and a bulk import crawled.
//! Runs are written once, front to back, and merged in the background.
//!
//! ```text
//! index/MANIFEST       magic, store id, applied journal entry, flags, next run id,
//!                      the runs oldest first (id, entries), checksum
//! index/run-<id>.xla   header (64 B): magic, entries, store id, filter blocks, checksum
//!                      entries: key (u128 LE), value (u64 LE), 24 B each, ascending by key
//!                      fences: the first key of each group of 128 entries (u128 LE)
//!                      filter: a blocked Bloom filter, 64-byte blocks, 64-aligned
//! ```
//!
//! Writes go to a hash map in memory (the memtable), which becomes a run
//! once it holds [`FLUSH_AT`] entries, and at each checkpoint. A lookup
//! tries the memtable, then the runs newest first: a run's filter (10 bits
//! an entry, about 1 % false positives, one cache line per probe) rules
//! most runs out, and its fences lead to the one group of 3 KiB that a
//! binary search finds the key in. Runs of like size are merged in a
//! background thread, [`FANOUT`] into one, so a store holds a few runs per
//! size tier and an entry is rewritten about log4(entries / FLUSH_AT)
//! times. A value of 0 removes a key: it stays as a tombstone until a merge
//! takes in the oldest run.
//!
//! Keys are fingerprints (xxh3), uniform in their 128 bits: the filter
//! takes its block from the high half and its bits from the low half.
//!
//! Durability: a run is synced before a manifest names it, and the manifest
//! is replaced whole (written beside, synced, renamed, the directory
//! synced). On open, files the manifest does not name (left by a crash
//! during a flush or a merge) are deleted. The manifest's `applied` is the
//! journal entry the runs hold everything up to; they may hold more (runs
//! flushed or merged since), and replaying the journal over them is
//! idempotent (see `index`). Runs carry no checksum over their entries: a
//! page damaged on disk is caught where the index is checked against the
//! blocks (a commit), not here.

use memmap2::{Mmap, MmapMut};
use rustc_hash::FxHashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use thiserror::Error;

/// The manifest's file in the table's directory.
const MANIFEST: &str = "MANIFEST";
/// Where the next manifest is written before it replaces the last.
const MANIFEST_NEW: &str = "MANIFEST.new";
const MANIFEST_MAGIC: &[u8; 8] = b"XLAMAN01";
const RUN_MAGIC: &[u8; 8] = b"XLARUN01";
/// Bytes before a run's first entry.
const RUN_HEADER: usize = 64;
/// Bytes per entry: key and value.
const ENTRY: usize = 24;
/// Entries per fence: 3 KiB, a page or two to search.
const GROUP: usize = 128;
/// Bytes per filter block: a cache line.
const FILTER_BLOCK: usize = 64;
/// Filter bits per entry: about 1 % false positives with [`FILTER_PROBES`].
const FILTER_BITS: u64 = 10;
/// Bits set per key, 9 bits of the key's low half each.
const FILTER_PROBES: u32 = 7;
/// Entries the memtable holds before it becomes a run: at most 64 MiB of
/// memory. (Small in unit tests, so that they flush and merge.)
const FLUSH_AT: usize = if cfg!(test) { 1000 } else { 1 << 20 };
/// Runs of one size tier merged into one.
const FANOUT: usize = 4;
/// Merges under way at most, each in a thread: two, so that small runs are
/// merged while a large merge takes its time.
const MAX_MERGES: usize = 2;
/// Runs past which any [`FANOUT`] consecutive ones are merged, the smallest
/// first, whatever their tiers: a merge's run that stayed in a low tier
/// (its keys overwrote each other) can sit where no group of its tier forms.
const MAX_RUNS: usize = 3 * FANOUT;
/// Manifest flag: the table was written while commits did not wait for the
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
    dir: PathBuf,
    /// The store it indexes: a table copied from another store is not used.
    store: u64,
    /// The last journal entry whose changes the runs named by the manifest
    /// hold.
    applied: u64,
    flags: u64,
    next_run: u64,
    /// Entries set since the last flush: the newest of all.
    memtable: FxHashMap<u128, u64>,
    /// Oldest first: a key's value is the newest run's that has it.
    runs: Vec<Arc<Run>>,
    /// Merges under way, of disjoint runs.
    merges: Vec<Merge>,
    /// Whether a manifest names this table's runs (a table created for a
    /// rebuild has none until its first checkpoint).
    manifested: bool,
}

/// An empty memtable with room for [`FLUSH_AT`] entries: growing it by
/// doubling moved every entry at each step and had the kernel zero each new,
/// larger table (a fifth of a sync's CPU went to zeroing pages). Its pages
/// are touched only as entries arrive, and a flush keeps the room.
fn memtable() -> FxHashMap<u128, u64> {
    FxHashMap::with_capacity_and_hasher(FLUSH_AT, Default::default())
}

impl Table {
    /// Opens the table in `dir` of the store `store`. `Ok(None)` when there
    /// is none, when its manifest or a run is not one this build wrote or is
    /// damaged, or when it is another store's (then the caller rebuilds it).
    pub fn open(dir: &Path, store: u64) -> Result<Option<Table>, TableError> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io(&path, "read", source)),
        };
        let Some(manifest) = Manifest::decode(&bytes).filter(|m| m.store == store) else {
            return Ok(None);
        };
        let mut runs = Vec::with_capacity(manifest.runs.len());
        for &(id, count) in &manifest.runs {
            match Run::open(&run_path(dir, id), id, store)? {
                Some(run) if run.count == count => runs.push(Arc::new(run)),
                _ => return Ok(None),
            }
        }
        remove_unnamed(dir, &manifest.runs)?;
        Ok(Some(Table {
            dir: dir.to_path_buf(),
            store,
            applied: manifest.applied,
            flags: manifest.flags,
            next_run: manifest.next_run,
            memtable: memtable(),
            runs,
            merges: Vec::new(),
            manifested: true,
        }))
    }

    /// Creates an empty table in `dir` for the store `store`, holding the
    /// journal up to `applied`, in place of any table there. It is the
    /// store's table from its first checkpoint: a crash before leaves none.
    pub fn create(dir: &Path, store: u64, applied: u64) -> Result<Table, TableError> {
        remove(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| io(dir, "created", e))?;
        Ok(Table {
            dir: dir.to_path_buf(),
            store,
            applied,
            flags: 0,
            next_run: 1,
            memtable: memtable(),
            runs: Vec::new(),
            merges: Vec::new(),
            manifested: false,
        })
    }

    /// The last journal entry whose changes the table holds durably.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Whether the table holds entries no manifest covers yet (a new table,
    /// or entries set since the last checkpoint).
    pub fn is_pending(&self) -> bool {
        !self.manifested || !self.memtable.is_empty()
    }

    /// Whether the table was written while commits did not wait for the disk
    /// and not checkpointed since.
    pub fn is_unsafe(&self) -> bool {
        self.flags & FLAG_UNSAFE != 0
    }

    /// Marks the table, on disk, as not to be trusted after a crash (the
    /// next checkpoint clears it): before the first write without durable
    /// commits. A crash then leads to a rebuild.
    pub fn mark_unsafe(&mut self) -> Result<(), TableError> {
        if !self.is_unsafe() {
            self.flags |= FLAG_UNSAFE;
            if self.manifested {
                self.write_manifest()?;
            }
        }
        Ok(())
    }

    /// The value of `key`, if it has a non-zero one.
    pub fn get(&self, key: u128) -> Option<u64> {
        let value = match self.memtable.get(&key) {
            Some(value) => *value,
            None => self.runs.iter().rev().find_map(|run| run.get(key))?,
        };
        (value != 0).then_some(value)
    }

    /// Sets the value of `key` (0 removes it). The memtable becomes a run
    /// when it is full.
    pub fn set(&mut self, key: u128, value: u64) -> Result<(), TableError> {
        self.memtable.insert(key, value);
        if self.memtable.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Makes what the table holds durable as of journal entry `applied`,
    /// clearing the unsafe flag: the memtable becomes a run, then the
    /// manifest names it.
    pub fn checkpoint(&mut self, applied: u64) -> Result<(), TableError> {
        self.flush()?;
        self.applied = applied;
        self.flags &= !FLAG_UNSAFE;
        self.write_manifest()?;
        self.manifested = true;
        Ok(())
    }

    /// Waits for the merges under way and takes their runs in.
    #[cfg(test)]
    fn finish_merges(&mut self) -> Result<(), TableError> {
        for merge in std::mem::take(&mut self.merges) {
            self.take_in(merge)?;
        }
        Ok(())
    }

    /// Writes the memtable as a new run (if it holds anything), takes in a
    /// finished merge, and starts the next one due.
    fn flush(&mut self) -> Result<(), TableError> {
        if !self.memtable.is_empty() {
            let mut entries: Vec<(u128, u64)> = self.memtable.drain().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            // With no older run, nothing is left for a tombstone to hide.
            let keep_tombstones = !self.runs.is_empty();
            let id = self.next_id();
            let bound = entries.len() as u64;
            let run = Run::write(
                &self.dir,
                (id, self.store),
                entries.into_iter().filter(|(_, v)| keep_tombstones || *v != 0),
                bound,
                &AtomicBool::new(false),
            )?
            .ok_or_else(|| io(&self.dir, "written", std::io::Error::other("the flush was cancelled")))?;
            self.runs.push(Arc::new(run));
        }
        let (done, going) = std::mem::take(&mut self.merges)
            .into_iter()
            .partition(Merge::is_finished);
        self.merges = going;
        for merge in done {
            self.take_in(merge)?;
        }
        while self.merges.len() < MAX_MERGES && self.start_merge() {}
        Ok(())
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_run;
        self.next_run += 1;
        id
    }

    /// Starts merging runs of one size tier when [`FANOUT`] or more of them
    /// that no merge is taking are consecutive. Whether it started one.
    fn start_merge(&mut self) -> bool {
        let counts: Vec<Option<u64>> = self
            .runs
            .iter()
            .map(|r| (!self.merges.iter().any(|m| m.inputs.contains(&r.id))).then_some(r.count))
            .collect();
        let Some(range) = due_merge(&counts) else { return false };
        let inputs: Vec<Arc<Run>> = self.runs[range.clone()].to_vec();
        // Tombstones hide older values; past the oldest run there are none.
        let drop_tombstones = range.start == 0;
        let id = self.next_id();
        let (dir, store) = (self.dir.clone(), self.store);
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        let ids = inputs.iter().map(|r| r.id).collect();
        let thread = std::thread::Builder::new()
            .name("xla-index-merge".into())
            .spawn(move || {
                let bound = inputs.iter().map(|r| r.count).sum();
                let merged = MergeIter::new(&inputs).filter(|(_, v)| !drop_tombstones || *v != 0);
                Run::write(&dir, (id, store), merged, bound, &stop)
            });
        match thread {
            Ok(thread) => {
                self.merges.push(Merge {
                    inputs: ids,
                    cancel,
                    thread,
                });
                true
            }
            // Runs unmerged are slower to search, not wrong: try again at
            // the next flush.
            Err(e) => {
                tracing::warn!(error = %e, "the index could not start a merge of its runs");
                false
            }
        }
    }

    /// Waits for `merge` and puts its run in place of the runs it merged.
    fn take_in(&mut self, merge: Merge) -> Result<(), TableError> {
        let (inputs, run) = merge.finish()?;
        self.install(inputs, run)
    }

    /// Replaces the runs `inputs` (consecutive: only merges remove runs, and
    /// merges under way take disjoint runs) by `run`, names it in the manifest, and deletes the
    /// inputs' files.
    fn install(&mut self, inputs: Vec<u64>, run: Option<Run>) -> Result<(), TableError> {
        let Some(run) = run else { return Ok(()) };
        let Some(start) = self.runs.iter().position(|r| Some(&r.id) == inputs.first()) else {
            return Ok(());
        };
        let end = start + inputs.len();
        if self
            .runs
            .get(start..end)
            .is_none_or(|r| r.iter().map(|r| r.id).ne(inputs.iter().copied()))
        {
            return Ok(());
        }
        self.runs.splice(start..end, [Arc::new(run)]);
        if self.manifested {
            self.write_manifest()?;
        }
        for id in inputs {
            let path = run_path(&self.dir, id);
            if let Err(e) = std::fs::remove_file(&path) {
                // Deleted on the next open: it is named by no manifest now.
                tracing::warn!(run = %path.display(), error = %e, "a merged index run could not be deleted");
            }
        }
        Ok(())
    }

    /// Replaces the manifest by one naming the runs held now.
    fn write_manifest(&self) -> Result<(), TableError> {
        let manifest = Manifest {
            store: self.store,
            applied: self.applied,
            flags: self.flags,
            next_run: self.next_run,
            runs: self.runs.iter().map(|r| (r.id, r.count)).collect(),
        };
        let new = self.dir.join(MANIFEST_NEW);
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&new)?;
            file.write_all(&manifest.encode())?;
            file.sync_all()
        };
        write().map_err(|e| io(&new, "written", e))?;
        // The runs' directory entries are durable before a manifest names
        // them (ext4 orders this anyway; POSIX does not promise it).
        sync_dir(&self.dir)?;
        let path = self.dir.join(MANIFEST);
        std::fs::rename(&new, &path).map_err(|e| io(&path, "renamed", e))?;
        sync_dir(&self.dir)
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // A merge's run is named by no manifest until installed: stop it;
        // the next open deletes what it wrote.
        for merge in &self.merges {
            merge.cancel.store(true, Ordering::Relaxed);
        }
        for merge in self.merges.drain(..) {
            let _ = merge.thread.join();
        }
    }
}

/// The consecutive runs to merge, if any are due: the newest group of
/// [`FANOUT`] or more consecutive runs of one size tier, given each run's
/// entries (`None`: a merge is taking it). Runs of a lower tier keep coming
/// while a merge makes one of a higher tier, so a due group may sit between
/// newer runs, not only at the end.
fn due_merge(counts: &[Option<u64>]) -> Option<Range<usize>> {
    let tier = |count: u64| {
        let (mut tier, mut cap) = (0u32, FLUSH_AT as u64);
        while count > cap {
            cap = cap.saturating_mul(FANOUT as u64);
            tier += 1;
        }
        tier
    };
    // A run a merge is taking is a tier of its own, which never merges.
    let tier = |count: Option<u64>| count.map_or(u32::MAX, tier);
    let mut end = counts.len();
    while end > 0 {
        let group = tier(counts[end - 1]);
        let start = counts[..end]
            .iter()
            .rposition(|c| tier(*c) != group)
            .map_or(0, |p| p + 1);
        if group == u32::MAX {
            end = start;
            continue;
        }
        if end - start >= FANOUT {
            return Some(start..end);
        }
        end = start;
    }
    if counts.len() <= MAX_RUNS {
        return None;
    }
    (0..=counts.len() - FANOUT)
        .filter_map(|start| {
            let window = &counts[start..start + FANOUT];
            window
                .iter()
                .try_fold(0u64, |sum, c| c.map(|c| sum.saturating_add(c)))
                .map(|size| (size, start))
        })
        .min()
        .map(|(_, start)| start..start + FANOUT)
}

/// Removes the table in `dir`, if any (and a table file of the layout
/// before this one beside it).
pub(crate) fn remove(dir: &Path) -> Result<(), TableError> {
    for result in [
        std::fs::remove_dir_all(dir),
        std::fs::remove_file(with_suffix(dir, ".xla")),
    ] {
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(dir, "removed", e)),
        }
    }
    Ok(())
}

/// A merge under way in a thread of its own.
struct Merge {
    /// The ids of the runs merged, oldest first.
    inputs: Vec<u64>,
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<Result<Option<Run>, TableError>>,
}

impl Merge {
    fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the merge: the runs it merged and the run it wrote
    /// (`None` if it was cancelled).
    fn finish(self) -> Result<(Vec<u64>, Option<Run>), TableError> {
        let run = self.thread.join().map_err(|_| {
            io(
                Path::new("index"),
                "merged",
                std::io::Error::other("the merge thread panicked"),
            )
        })??;
        Ok((self.inputs, run))
    }
}

/// One sorted run, mapped.
struct Run {
    id: u64,
    count: u64,
    map: Mmap,
    fences_at: usize,
    filter_at: usize,
    filter_blocks: u64,
}

impl Run {
    /// Opens the run `id` at `path`. `Ok(None)` when it is missing, not one
    /// this build wrote, another store's, or not as long as its header says.
    fn open(path: &Path, id: u64, store: u64) -> Result<Option<Run>, TableError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io(path, "opened", source)),
        };
        let map = map(&file, path)?;
        // A filter has a block at least: a lookup reads one.
        let Some(header) = RunHeader::read(&map).filter(|h| h.store == store && h.filter_blocks > 0) else {
            return Ok(None);
        };
        let Some(layout) = Layout::of(header.count, header.filter_blocks) else {
            return Ok(None);
        };
        if map.len() != layout.len {
            return Ok(None);
        }
        Ok(Some(Run {
            id,
            count: header.count,
            map,
            fences_at: layout.fences_at,
            filter_at: layout.filter_at,
            filter_blocks: header.filter_blocks,
        }))
    }

    /// Writes the run `id` of the store `store` in `dir` from `entries`
    /// (ascending by key, at most `bound` of them), synced. `Ok(None)` when
    /// `cancel` was set on the way (its file is gone then).
    fn write(
        dir: &Path,
        (id, store): (u64, u64),
        entries: impl Iterator<Item = (u128, u64)>,
        bound: u64,
        cancel: &AtomicBool,
    ) -> Result<Option<Run>, TableError> {
        let path = run_path(dir, id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io(&path, "created", e))?;
        let written = write_entries(&file, entries, cancel).map_err(|e| io(&path, "written", e))?;
        let Some((count, fences)) = written else {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        };
        let filter_blocks = filter_blocks_for(bound.max(count));
        let layout = Layout::of(count, filter_blocks)
            .ok_or_else(|| io(&path, "written", std::io::Error::other("a run too large to address")))?;
        file.set_len(layout.len as u64).map_err(|e| io(&path, "grown", e))?;
        let mut map = map_mut(&file, &path)?;
        for (i, fence) in fences.iter().enumerate() {
            let at = layout.fences_at + i * 16;
            map[at..at + 16].copy_from_slice(&fence.to_le_bytes());
        }
        for i in 0..count as usize {
            let at = RUN_HEADER + i * ENTRY;
            let key = u128_at(&map, at);
            let (block, bits) = filter_place(key, filter_blocks);
            let block_at = layout.filter_at + block * FILTER_BLOCK;
            for bit in bits {
                map[block_at + bit / 8] |= 1 << (bit % 8);
            }
        }
        RunHeader {
            count,
            store,
            filter_blocks,
        }
        .write(&mut map[..RUN_HEADER]);
        map.flush().map_err(|e| io(&path, "synced", e))?;
        file.sync_all().map_err(|e| io(&path, "synced", e))?;
        let map = map.make_read_only().map_err(|e| io(&path, "mapped", e))?;
        random_access(&map);
        Ok(Some(Run {
            id,
            count,
            map,
            fences_at: layout.fences_at,
            filter_at: layout.filter_at,
            filter_blocks,
        }))
    }

    /// The value this run holds for `key` (0: a tombstone).
    fn get(&self, key: u128) -> Option<u64> {
        if !self.may_hold(key) {
            return None;
        }
        let groups = self.count.div_ceil(GROUP as u64) as usize;
        // The last group whose first key is at most `key`.
        let group = (0..groups)
            .partition_point_by(|g| self.fence(g) <= key)
            .checked_sub(1)?;
        let first = group * GROUP;
        let last = (first + GROUP).min(self.count as usize);
        let found = (first..last).partition_point_by(|i| self.entry(i).0 < key);
        let (k, value) = (found < last).then(|| self.entry(found))?;
        (k == key).then_some(value)
    }

    fn may_hold(&self, key: u128) -> bool {
        let (block, bits) = filter_place(key, self.filter_blocks);
        let at = self.filter_at + block * FILTER_BLOCK;
        let block = &self.map[at..at + FILTER_BLOCK];
        bits.into_iter().all(|bit| block[bit / 8] & (1 << (bit % 8)) != 0)
    }

    fn fence(&self, group: usize) -> u128 {
        let at = self.fences_at + group * 16;
        u128_at(&self.map, at)
    }

    fn entry(&self, i: usize) -> (u128, u64) {
        let at = RUN_HEADER + i * ENTRY;
        let value = u64::from_le_bytes(self.map[at + 16..at + ENTRY].try_into().unwrap_or_default());
        (u128_at(&self.map, at), value)
    }
}

/// The little-endian u128 at `at` of a run (in bounds: the run's layout
/// was checked against its length when it was opened or written).
fn u128_at(map: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(map[at..at + 16].try_into().unwrap_or_default())
}

/// Binary search over a range of indexes (`slice::partition_point` needs a
/// slice; these entries live in a mapped file).
trait PartitionPoint {
    fn partition_point_by(self, pred: impl Fn(usize) -> bool) -> usize;
}

impl PartitionPoint for Range<usize> {
    /// The first index in the range for which `pred` is false (`pred` true
    /// for a prefix of it, false after).
    fn partition_point_by(self, pred: impl Fn(usize) -> bool) -> usize {
        let (mut low, mut high) = (self.start, self.end);
        while low < high {
            let middle = low + (high - low) / 2;
            if pred(middle) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }
}

/// Writes `entries` after a blank header, then their fences: the count and
/// the fences, or `None` when `cancel` was set.
fn write_entries(
    file: &File,
    entries: impl Iterator<Item = (u128, u64)>,
    cancel: &AtomicBool,
) -> std::io::Result<Option<(u64, Vec<u128>)>> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0; RUN_HEADER])?;
    let (mut count, mut fences) = (0u64, Vec::new());
    for (key, value) in entries {
        if count % GROUP as u64 == 0 {
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            fences.push(key);
        }
        out.write_all(&key.to_le_bytes())?;
        out.write_all(&value.to_le_bytes())?;
        count += 1;
    }
    out.flush()?;
    Ok(Some((count, fences)))
}

/// Where a run's parts are.
struct Layout {
    fences_at: usize,
    filter_at: usize,
    len: usize,
}

impl Layout {
    /// `None` past what this machine can address.
    fn of(count: u64, filter_blocks: u64) -> Option<Layout> {
        let count = usize::try_from(count).ok()?;
        let fences_at = count.checked_mul(ENTRY)?.checked_add(RUN_HEADER)?;
        let fences = count.div_ceil(GROUP).checked_mul(16)?;
        let filter_at = fences_at.checked_add(fences)?.checked_next_multiple_of(FILTER_BLOCK)?;
        let filter = usize::try_from(filter_blocks).ok()?.checked_mul(FILTER_BLOCK)?;
        Some(Layout {
            fences_at,
            filter_at,
            len: filter_at.checked_add(filter)?,
        })
    }
}

/// Filter blocks for `entries`: [`FILTER_BITS`] each, one block at least.
fn filter_blocks_for(entries: u64) -> u64 {
    (entries.saturating_mul(FILTER_BITS))
        .div_ceil(FILTER_BLOCK as u64 * 8)
        .max(1)
}

/// A key's filter block, and the bits it sets in it.
fn filter_place(key: u128, blocks: u64) -> (usize, [usize; FILTER_PROBES as usize]) {
    let high = (key >> 64) as u64;
    // The high half scaled to the block count: a multiply, not a division.
    let block = ((u128::from(high) * u128::from(blocks)) >> 64) as usize;
    let low = key as u64;
    let bits = std::array::from_fn(|i| ((low >> (9 * i)) & 511) as usize);
    (block, bits)
}

/// Several runs' entries in key order, the newest run's value for a key
/// found in more than one.
struct MergeIter<'r> {
    runs: &'r [Arc<Run>],
    /// Each run's next entry.
    at: Vec<usize>,
}

impl<'r> MergeIter<'r> {
    fn new(runs: &'r [Arc<Run>]) -> MergeIter<'r> {
        MergeIter {
            runs,
            at: vec![0; runs.len()],
        }
    }
}

impl Iterator for MergeIter<'_> {
    type Item = (u128, u64);

    fn next(&mut self) -> Option<(u128, u64)> {
        // A handful of runs: a scan for the least key beats a heap.
        let mut least: Option<(u128, u64)> = None;
        for (run, &at) in self.runs.iter().zip(&self.at) {
            if (at as u64) < run.count {
                let (key, value) = run.entry(at);
                // Newer runs come later: on a tie the later one wins.
                if least.is_none_or(|(k, _)| key <= k) {
                    least = Some((key, value));
                }
            }
        }
        let (key, value) = least?;
        for (run, at) in self.runs.iter().zip(self.at.iter_mut()) {
            if (*at as u64) < run.count && run.entry(*at).0 == key {
                *at += 1;
            }
        }
        Some((key, value))
    }
}

/// The manifest's fields.
#[derive(Debug, PartialEq)]
struct Manifest {
    store: u64,
    applied: u64,
    flags: u64,
    next_run: u64,
    /// (id, entries), oldest first.
    runs: Vec<(u64, u64)>,
}

impl Manifest {
    /// Magic, store, applied, flags, next run, run count, runs, then an
    /// xxh3 of all that (little-endian throughout).
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(56 + 16 * self.runs.len());
        bytes.extend_from_slice(MANIFEST_MAGIC);
        for field in [
            self.store,
            self.applied,
            self.flags,
            self.next_run,
            self.runs.len() as u64,
        ] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        for (id, count) in &self.runs {
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&count.to_le_bytes());
        }
        let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// The manifest in `bytes`, if it is one this build wrote and intact.
    fn decode(bytes: &[u8]) -> Option<Manifest> {
        let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        if body.get(..8)? != MANIFEST_MAGIC
            || u64::from_le_bytes(checksum.try_into().ok()?) != xxhash_rust::xxh3::xxh3_64(body)
        {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?));
        let runs = usize::try_from(u64_at(40)?).ok()?;
        if body.len() != 48usize.checked_add(runs.checked_mul(16)?)? {
            return None;
        }
        Some(Manifest {
            store: u64_at(8)?,
            applied: u64_at(16)?,
            flags: u64_at(24)?,
            next_run: u64_at(32)?,
            runs: (0..runs)
                .map(|i| Some((u64_at(48 + 16 * i)?, u64_at(56 + 16 * i)?)))
                .collect::<Option<_>>()?,
        })
    }
}

/// A run's header fields.
struct RunHeader {
    count: u64,
    store: u64,
    filter_blocks: u64,
}

impl RunHeader {
    fn read(map: &[u8]) -> Option<RunHeader> {
        if map.get(..8)? != RUN_MAGIC {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_le_bytes(map.get(at..at + 8)?.try_into().ok()?));
        if u64_at(32)? != xxhash_rust::xxh3::xxh3_64(map.get(..32)?) {
            return None;
        }
        Some(RunHeader {
            count: u64_at(8)?,
            store: u64_at(16)?,
            filter_blocks: u64_at(24)?,
        })
    }

    fn write(&self, header: &mut [u8]) {
        header[..8].copy_from_slice(RUN_MAGIC);
        header[8..16].copy_from_slice(&self.count.to_le_bytes());
        header[16..24].copy_from_slice(&self.store.to_le_bytes());
        header[24..32].copy_from_slice(&self.filter_blocks.to_le_bytes());
        let checksum = xxhash_rust::xxh3::xxh3_64(&header[..32]);
        header[32..40].copy_from_slice(&checksum.to_le_bytes());
    }
}

fn run_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("run-{id:016x}.xla"))
}

/// Deletes the runs in `dir` that `named` does not list, and a manifest
/// half written: what a crash during a flush or a merge leaves.
fn remove_unnamed(dir: &Path, named: &[(u64, u64)]) -> Result<(), TableError> {
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, "listed", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, "listed", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let id = name
            .strip_prefix("run-")
            .and_then(|n| n.strip_suffix(".xla"))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let unnamed = match id {
            Some(id) => !named.iter().any(|(n, _)| *n == id),
            None => name == MANIFEST_NEW,
        };
        if unnamed {
            std::fs::remove_file(entry.path()).map_err(|e| io(&entry.path(), "removed", e))?;
        }
    }
    Ok(())
}

/// Maps `file` for reading.
#[allow(unsafe_code)]
fn map(file: &File, path: &Path) -> Result<Mmap, TableError> {
    // SAFETY: a mapped file changed by someone else breaks Rust's aliasing
    // rules. Runs are ours and never change once written: they sit in a
    // store directory that sled has locked for this process, and a run is
    // written whole before it is mapped for reading.
    let map = unsafe { Mmap::map(file) }.map_err(|e| io(path, "mapped", e))?;
    random_access(&map);
    Ok(map)
}

/// Tells the kernel a run is read at random: no read-ahead, and no mapping
/// of the neighbouring cached pages at each fault (fault-around), which
/// would count sixteen pages of a run in the process's resident memory for
/// each entry read.
fn random_access(map: &Mmap) {
    if let Err(e) = map.advise(memmap2::Advice::Random) {
        tracing::debug!(error = %e, "the index could not advise random reads of a run");
    }
}

/// Maps a run being written, for its fences, filter and header.
#[allow(unsafe_code)]
fn map_mut(file: &File, path: &Path) -> Result<MmapMut, TableError> {
    // SAFETY: as for `map`: the file is new, this process's, and only this
    // mapping writes it until it is made read-only.
    unsafe { MmapMut::map_mut(file) }.map_err(|e| io(path, "mapped", e))
}

fn sync_dir(dir: &Path) -> Result<(), TableError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "synced", e))
}

/// `path` with `suffix` added to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io(path: &Path, action: &'static str, source: std::io::Error) -> TableError {
    TableError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: u64 = 0x5eed;

    fn key(i: u64) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes())
    }

    /// Sets `n` entries (i → i + 1), then removes every third and replaces
    /// every fifth by i + 7, through several flushes and merges.
    fn fill(table: &mut Table, n: u64) {
        for i in 0..n {
            table.set(key(i), i + 1).unwrap();
        }
        for i in (0..n).step_by(3) {
            table.set(key(i), 0).unwrap();
        }
        for i in (0..n).step_by(5) {
            table.set(key(i), i + 7).unwrap();
        }
    }

    fn expected(i: u64) -> Option<u64> {
        if i.is_multiple_of(5) {
            Some(i + 7)
        } else {
            (!i.is_multiple_of(3)).then_some(i + 1)
        }
    }

    fn assert_holds(table: &Table, n: u64) {
        for i in 0..n {
            assert_eq!(table.get(key(i)), expected(i), "entry {i}");
        }
        assert_eq!(table.get(key(n + 1)), None);
    }

    fn run_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("run-"))
            .count()
    }

    #[test]
    fn entries_survive_flushes_merges_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut table = Table::create(&path, STORE, 0).unwrap();
        let n = 40_000u64;
        fill(&mut table, n);
        // Read while merges may be under way, then once they are done.
        assert_holds(&table, n);
        table.finish_merges().unwrap();
        assert_holds(&table, n);
        assert!(table.runs.len() < 20, "runs merged: {}", table.runs.len());
        table.checkpoint(7).unwrap();
        table.finish_merges().unwrap();
        table.checkpoint(7).unwrap();
        let runs = table.runs.len();
        drop(table);
        let table = Table::open(&path, STORE).unwrap().expect("the table reopens");
        assert_eq!(table.applied(), 7);
        assert_eq!(table.runs.len(), runs);
        assert_eq!(run_files(&path), runs, "merged runs' files are gone");
        assert_holds(&table, n);
    }

    #[test]
    fn a_merge_takes_in_the_newest_run_of_a_key_and_drops_tombstones_at_the_bottom() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut table = Table::create(&path, STORE, 0).unwrap();
        // Four runs, each (re)setting the same keys: the last wins; the
        // third removes key 1, the fourth sets it again.
        for round in 1..=4u64 {
            for i in 0..(FLUSH_AT as u64 - 1) {
                let value = if round == 3 && i == 1 { 0 } else { round * 100 + i };
                table.set(key(i), value).unwrap();
            }
            table
                .set(key(1_000_000 + round), if round == 4 { 0 } else { round })
                .unwrap();
            table.flush().unwrap();
        }
        assert_eq!(table.merges.len(), 1, "four runs of one tier start a merge");
        table.finish_merges().unwrap();
        assert_eq!(table.runs.len(), 1);
        for i in 0..(FLUSH_AT as u64 - 1) {
            assert_eq!(table.get(key(i)), Some(400 + i));
        }
        assert_eq!(
            table.get(key(1_000_004)),
            None,
            "a tombstone hides nothing below the oldest run"
        );
        assert_eq!(table.get(key(1_000_003)), Some(3));
        // Each key once, and the tombstone dropped.
        assert_eq!(table.runs[0].count, FLUSH_AT as u64 - 1 + 3);
    }

    #[test]
    fn a_crash_leaves_the_table_of_the_last_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut table = Table::create(&path, STORE, 0).unwrap();
        table.set(key(0), 1).unwrap();
        table.checkpoint(4).unwrap();
        // Two runs flushed that no manifest names yet (too few to merge),
        // as a crash leaves them.
        for i in 1..(3 * FLUSH_AT as u64) {
            table.set(key(i), i + 1).unwrap();
        }
        assert!(table.merges.is_empty());
        drop(table.memtable.drain());
        std::mem::forget(table);
        assert_eq!(run_files(&path), 3);
        std::fs::write(path.join(MANIFEST_NEW), b"half a manifest").unwrap();
        let table = Table::open(&path, STORE).unwrap().expect("the checkpointed table");
        assert_eq!((table.applied(), table.runs.len()), (4, 1));
        assert_eq!(table.get(key(0)), Some(1));
        assert_eq!(table.get(key(1)), None);
        assert_eq!(run_files(&path), 1, "runs the manifest does not name are deleted");
        assert!(!path.join(MANIFEST_NEW).exists());
    }

    #[test]
    fn a_damaged_or_foreign_table_asks_for_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        assert!(Table::open(&path, STORE).unwrap().is_none(), "no table");
        let mut table = Table::create(&path, STORE, 3).unwrap();
        table.set(key(1), 5).unwrap();
        table.checkpoint(3).unwrap();
        drop(table);
        assert!(
            Table::open(&path, STORE + 1).unwrap().is_none(),
            "another store's table"
        );
        let manifest = std::fs::read(path.join(MANIFEST)).unwrap();
        let mut damaged = manifest.clone();
        damaged[20] ^= 1;
        std::fs::write(path.join(MANIFEST), &damaged).unwrap();
        assert!(Table::open(&path, STORE).unwrap().is_none(), "a checksum mismatch");
        std::fs::write(path.join(MANIFEST), b"short").unwrap();
        assert!(Table::open(&path, STORE).unwrap().is_none(), "a short manifest");
        std::fs::write(path.join(MANIFEST), &manifest).unwrap();
        let run = run_path(&path, 1);
        let bytes = std::fs::read(&run).unwrap();
        std::fs::write(&run, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Table::open(&path, STORE).unwrap().is_none(), "a truncated run");
        std::fs::remove_file(&run).unwrap();
        assert!(Table::open(&path, STORE).unwrap().is_none(), "a missing run");
        // A table created over it replaces it whole, and the file of the
        // layout before this one goes with it.
        std::fs::write(with_suffix(&path, ".xla"), b"old table").unwrap();
        let table = Table::create(&path, STORE, 0).unwrap();
        assert!(!with_suffix(&path, ".xla").exists());
        assert_eq!(run_files(&path), 0);
        assert!(table.is_pending());
    }

    #[test]
    fn the_unsafe_flag_lasts_until_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut table = Table::create(&path, STORE, 0).unwrap();
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
    fn a_table_dropped_during_a_merge_leaves_no_stray_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut table = Table::create(&path, STORE, 0).unwrap();
        for i in 0..(4 * FLUSH_AT as u64) {
            table.set(key(i), i + 1).unwrap();
        }
        table.checkpoint(1).unwrap();
        drop(table);
        let table = Table::open(&path, STORE).unwrap().unwrap();
        assert_eq!(run_files(&path), table.runs.len(), "the merge's run is gone");
        assert_holds_plain(&table, 4 * FLUSH_AT as u64);
    }

    fn assert_holds_plain(table: &Table, n: u64) {
        for i in 0..n {
            assert_eq!(table.get(key(i)), Some(i + 1), "entry {i}");
        }
    }

    #[test]
    fn manifests_round_trip_and_runs_are_laid_out() {
        let manifest = Manifest {
            store: 1,
            applied: 2,
            flags: 3,
            next_run: 9,
            runs: vec![(4, 5), (6, 7)],
        };
        assert_eq!(Manifest::decode(&manifest.encode()), Some(manifest));
        assert_eq!(filter_blocks_for(0), 1);
        assert_eq!(filter_blocks_for(1024), 20, "10 bits an entry, 512 a block");
        let layout = Layout::of(129, 1).unwrap();
        assert_eq!(layout.fences_at, 64 + 129 * 24);
        assert_eq!(layout.filter_at % 64, 0);
        assert!(Layout::of(u64::MAX, 1).is_none());
    }

    #[test]
    fn merges_are_due_for_four_runs_of_a_tier_wherever_they_are() {
        let small = FLUSH_AT as u64 / 2;
        let middle = FLUSH_AT as u64 * 3;
        let large = FLUSH_AT as u64 * 10;
        let due = |counts: &[u64]| due_merge(&counts.iter().copied().map(Some).collect::<Vec<_>>());
        assert_eq!(due(&[]), None);
        assert_eq!(due(&[large, small, small, small]), None);
        assert_eq!(due(&[large, small, small, small, small]), Some(1..5));
        // Four of a tier made by merges while newer small runs came.
        assert_eq!(due(&[large, middle, middle, middle, middle, small, small]), Some(1..5));
        assert_eq!(due(&[middle, middle, small, middle, middle]), None);
        // Runs a merge is taking are left out, and break a group.
        let (s, m) = (Some(small), Some(middle));
        assert_eq!(due_merge(&[m, m, m, m, None, s, s, s, s]), Some(5..9));
        assert_eq!(due_merge(&[m, m, m, m, None, s, s]), Some(0..4));
        assert_eq!(due_merge(&[s, s, None, s, s]), None);
        // Past MAX_RUNS, the smallest four consecutive runs free of merges.
        let mut mixed = vec![Some(large), Some(large), None];
        mixed.extend([m, m, s, m, m, s, m, m, s]);
        assert_eq!(due_merge(&mixed), None, "twelve runs and no group of a tier");
        mixed.extend([s, s]);
        assert_eq!(due_merge(&mixed), Some(10..14), "three small and one middle");
    }
}
