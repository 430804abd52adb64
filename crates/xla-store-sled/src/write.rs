//! Committing a batch: new blocks of rows, the rollup sets they change, the
//! dictionary, the cursor and the index's journal entry in one atomic sled
//! batch; the index's table follows once it is on disk. A replayed record changes nothing; a changed
//! record replaces the old one and every rollup it touched follows.

use super::block::{
    Block, Fingerprint, RecordId, RetiredRow, Row, Value, frame, record_fingerprint, stored_record_fingerprint,
};
use super::dict::Dictionary;
use super::index::{BlockMeta, Changes, Index, Loc, Locs, SubjectDims, block_meta};
use super::keys::layer_code;
use super::keys::{self, BlockKey, DAY_MS, SetKey};
use super::ops::Ops;
use super::read::provenance_key;
use super::rollup::RollupSet;
use super::{Inner, OrStore, Sled};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeSet;
use std::sync::Arc;
use xla_store::{CommitBatch, CommitSummary, Prepared, Retracted, Rollup, StoreError, is_rating};
use xla_types::{Layer, Name, Observation};

/// Rows per block: few enough that compacting one is cheap, enough that a
/// batch of ten thousand is a few dozen writes.
const BLOCK_ROWS: usize = 512;

/// A block read because one of its rows is being replaced.
enum OldBlock {
    Live(Block<Row>),
    Retired(Block<RetiredRow>),
}

/// Rollup cells of one set touched by the commit, and the cells that lost
/// an extreme (their min or max must be recomputed from rows).
#[derive(Default)]
struct TouchedSet {
    cells: RollupSet,
    dirty: BTreeSet<u32>,
}

/// The touched rollup sets of one metric and day, by dimension key. A row
/// counts in its day's total and in one cell per rolled-up dimension: a
/// handful of keys, found by a short scan after one hash lookup per row
/// instead of one per cell.
type DaySets = Vec<(u32, TouchedSet)>;

/// A block this commit writes, with its id.
type FreshBlock = (u64, Block<Row>);

/// A row's dimensions: rolled up (dictionary ids) and per-subject (inline).
type SplitDimensions = (Arc<[(u32, u32)]>, Arc<[(u32, String)]>);

/// What a record's values share, worked out once per record: its split
/// dimensions and the fingerprints of the subjects its rows are listed
/// under (see `index::SubjectDims`).
#[derive(Clone)]
struct Shared {
    dims: Arc<[(u32, u32)]>,
    inline: Arc<[(u32, String)]>,
    subjects: Arc<[Fingerprint]>,
}

/// The commit being built.
struct Work<'a> {
    db: &'a sled::Db,
    index: &'a Index,
    tenant: u32,
    source: u32,
    provenance: u32,
    /// The dimensions a row is listed under as a subject.
    subjects: SubjectDims,
    /// Old blocks read (rows of them replaced or retracted), with their records.
    old: HashMap<u64, (BlockMeta, OldBlock)>,
    /// Rows leaving each old block.
    lost: HashMap<u64, u32>,
    /// Locations of rows this commit replaces or retracts.
    replaced: HashSet<Loc>,
    /// Blocks that lost a retracted row: rewritten without it whatever
    /// their fill, so the row cannot come back on open.
    rewrite: HashSet<u64>,
    /// New blocks by (metric, day); the last of each is the open one.
    fresh: HashMap<(u32, i32), Vec<FreshBlock>>,
    /// Touched rollup sets by (metric, day), then by dimension key.
    sets: HashMap<(u32, i32), DaySets>,
    changes: Changes,
    /// The subjects of the record being added and its rows so far.
    open_subjects: Option<(Arc<[Fingerprint]>, Locs)>,
    next_block: u64,
    /// The ticket join's names, and the rows of it this commit adds and takes out.
    roles: super::join::Roles,
    join: super::join::Events,
}

impl Sled {
    /// Commits `batch` atomically. An error before its sled batch is applied
    /// stores nothing of it; one after (flushing it to disk, or changing the
    /// index's table) may leave it stored, and sending it again changes
    /// nothing.
    pub(crate) fn commit(&self, batch: &CommitBatch) -> Result<CommitSummary, StoreError> {
        let mut inner = self.lock()?;
        // Under the writers' lock: a run whose lease was taken over writes
        // nothing behind its successor.
        self.leases.check(&batch.tenant, &batch.source, batch.lease)?;
        // A reopen that failed left sled closed: try again first.
        self.reopen_if_closed()?;
        let result = self.commit_locked(&mut inner, batch);
        if result.is_ok() {
            // Between two commits, under the writers' lock: nothing half
            // done. The batch is stored whatever happens to the reopen.
            self.reopen_if_due();
        }
        if let Err(error) = &result {
            // Ids handed out for a failed batch may not have been written, and
            // the disk may hold more or less than memory thinks: reread both.
            inner.dict = Dictionary::load(&*self.db()?)?;
            inner.index = None;
            if is_index_damaged(error) {
                // Nothing of the batch was written; without its table the
                // index is rebuilt from the blocks on the next use.
                let table = self.path.join(super::index::TABLE_DIR);
                if let Err(e) = super::table::remove(&table) {
                    tracing::warn!(table = %table.display(), error = %e, "a damaged index table could not be removed");
                }
            }
        }
        result
    }

    fn commit_locked(&self, inner: &mut Inner, batch: &CommitBatch) -> Result<CommitSummary, StoreError> {
        let db = &*self.db()?;
        let (dict, index) = inner.parts(db, &self.path)?;
        let tenant = dict.intern(&batch.tenant);
        let unrolled: Vec<u32> = keys::UNROLLED_DIMENSIONS.iter().map(|d| dict.intern(d)).collect();
        let roles = super::join::Roles::new(dict);
        let subjects = SubjectDims::new(
            keys::SUBJECT_DIMENSIONS.iter().map(|d| dict.intern(d)).collect(),
            Some(roles.key),
            roles.metrics(),
            super::index::rows_by_number_from(db)?,
        );
        let mut work = Work {
            db,
            index,
            tenant,
            source: dict.intern(&batch.source),
            provenance: dict.intern(&provenance_key(&batch.provenance)),
            subjects,
            old: HashMap::default(),
            lost: HashMap::default(),
            replaced: HashSet::default(),
            rewrite: HashSet::default(),
            fresh: HashMap::default(),
            sets: HashMap::default(),
            changes: Changes::default(),
            open_subjects: None,
            next_block: index.next_block,
            roles,
            join: super::join::Events::default(),
        };
        let mut summary = CommitSummary::default();
        // A record is checked once, not once per value.
        batch.records.iter().try_for_each(xla_store::check_record)?;
        batch
            .retracted_records
            .iter()
            .try_for_each(|id| check_retracted_id(id))?;
        // A connector sends a record's metrics one after another with the
        // same dimensions: split them once.
        let mut last_split: Option<(Dims<'_>, Shared)> = None;
        let mut last_id: Option<(&str, RecordId)> = None;
        // Dictionary ids of the batch's shared names, by address: a record
        // from a 0.2 connector names the same strings as the records before it.
        let mut named: HashMap<(usize, usize), u32> = HashMap::default();
        // A key both written and retracted in one batch ends retracted.
        let retracted: HashSet<(&str, &str)> = batch
            .retractions
            .iter()
            .map(|r| (r.id.as_str(), r.metric.as_str()))
            .collect();
        let whole: HashSet<&str> = batch.retracted_records.iter().map(String::as_str).collect();
        // The metrics this batch stores, for the source's written set.
        let mut written: Vec<u32> = Vec::new();
        let values = last_of_each(batch, values(batch));
        let mut kept = Vec::with_capacity(values.len());
        for observation in values {
            if let Some(o) = observation.unchecked {
                xla_store::check_observation(o)?;
            }
            if !(retracted.contains(&(observation.id, observation.metric)) || whole.contains(observation.id)) {
                kept.push(observation);
            }
        }
        // Each value's record, and where the index has it, in loops of their
        // own: a probe of a large index misses the cache, and in a loop that
        // does nothing else the processor overlaps the misses, where in the
        // loop below each one waited alone.
        let keyed: Vec<(u32, Fingerprint)> = kept
            .iter()
            .map(|o| {
                let metric = dict.intern(o.metric);
                (metric, record_fingerprint(tenant, work.source, metric, o.id))
            })
            .collect();
        let found: Vec<Option<Loc>> = keyed.iter().map(|(_, f)| work.index.record(*f)).collect();
        for ((observation, (metric, fingerprint)), found) in kept.into_iter().zip(keyed).zip(found) {
            if let Some(loc) = found {
                work.check_found(fingerprint, loc)?;
            }
            if !written.contains(&metric) {
                written.push(metric);
            }
            let day = keys::day_of(observation.at);
            let shared = match &last_split {
                // The values of one record share its dimensions: the pointer
                // check saves comparing them.
                Some((dimensions, shared)) if dimensions.same_as(observation.dimensions) => shared.clone(),
                _ => {
                    let (dims, inline) = split_dimensions(dict, &mut named, &unrolled, observation.dimensions);
                    let subjects = work.subjects.fingerprints(tenant, &inline);
                    let shared = Shared { dims, inline, subjects };
                    last_split = Some((observation.dimensions, shared.clone()));
                    shared
                }
            };
            let id = match &last_id {
                Some((text, id)) if std::ptr::eq(*text, observation.id) => id.clone(),
                _ => {
                    let id = RecordId::new(observation.id);
                    last_id = Some((observation.id, id.clone()));
                    id
                }
            };
            let row = Row {
                id,
                offset: (observation.at - i64::from(day) * DAY_MS) as u32,
                value: Value::new(observation.value),
                layer: layer_code(observation.layer),
                dims: shared.dims,
                inline: shared.inline,
            };
            let rating = is_rating(observation.metric);
            if let Some(loc) = found {
                if work.unchanged(loc, &row, day)? {
                    summary.unchanged += 1;
                    continue;
                }
                work.retract(loc)?;
                summary.replaced += 1;
            } else {
                summary.inserted += 1;
            }
            work.insert(fingerprint, metric, day, row, rating, &shared.subjects)?;
        }
        let mut ops = Ops::default();
        for retraction in &batch.retractions {
            summary.retracted += usize::from(work.retract_record(dict, retraction, &mut ops)?);
        }
        // The metrics the source stored before this batch: read once, for
        // whole-record retractions and to grow the set.
        let stored = if written.is_empty() && batch.retracted_records.is_empty() {
            Vec::new()
        } else {
            self.written(tenant, work.source)?
        };
        if !batch.retracted_records.is_empty() {
            // Only metrics stored before this batch can hold a row of a
            // whole record retracted now (this batch writes none for it).
            for id in &batch.retracted_records {
                for metric in &stored {
                    summary.retracted += usize::from(work.retract_value(id, *metric, &mut ops)?);
                }
            }
        }
        work.settle_blocks(&mut ops)?;
        self.settle_sets(&mut work, dict, &mut ops)?;
        super::join::settle(db, dict, &work.roles, tenant, std::mem::take(&mut work.join), &mut ops)?;
        dict.write_pending(&mut ops);
        ops.insert(keys::BLOCK_NEXT, &work.next_block.to_be_bytes());
        let journal = work.index.next_journal();
        ops.insert(&keys::journal(journal), work.changes.journal()?);
        ops.insert(keys::JOURNAL_LAST, &journal.to_be_bytes());
        if let Some(cursor) = &batch.cursor {
            ops.insert(keys::cursor(tenant, work.source), cursor.as_bytes());
        }
        if !batch.partial.is_empty() || !batch.complete.is_empty() {
            self.settle_gaps(tenant, work.source, batch, &mut ops)?;
        }
        note_written(keys::written(tenant, work.source), stored, written, &mut ops)?;
        let (changes, next_block) = (work.changes, work.next_block);
        self.apply(db, ops)?;
        let durable = self.durable();
        if durable {
            db.flush().or_store()?;
        }
        // The table follows sled, never leads it: after a crash the journal
        // entry in the batch brings it up to date (see `index`). If this
        // fails, the commit's error reopens the index, which replays it.
        index.next_block = next_block;
        index.apply(db, changes, durable)?;
        Ok(summary)
    }

    /// Writes the source's open gaps after `batch` opened and closed some.
    fn settle_gaps(&self, tenant: u32, source: u32, batch: &CommitBatch, ops: &mut Ops) -> Result<(), StoreError> {
        let key = keys::gaps(tenant, source);
        let open: Vec<xla_types::Gap> = match self.db()?.get(&key).or_store()? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| StoreError::corrupt(format!("stored gaps: {e}")))?
            }
            None => Vec::new(),
        };
        let open = xla_store::merge_gaps(open, &batch.partial, &batch.complete);
        if open.is_empty() {
            ops.remove(key);
        } else {
            let bytes = serde_json::to_vec(&open).map_err(|e| StoreError::corrupt(format!("gaps: {e}")))?;
            ops.insert(key, bytes);
        }
        Ok(())
    }

    /// The metrics (dictionary ids, sorted) a source has written.
    pub(crate) fn written(&self, tenant: u32, source: u32) -> Result<Vec<u32>, StoreError> {
        match self.db()?.get(keys::written(tenant, source)).or_store()? {
            Some(bytes) => postcard::from_bytes(&bytes)
                .map_err(|e| StoreError::corrupt(format!("a source's written metrics do not decode: {e}"))),
            None => Ok(Vec::new()),
        }
    }

    /// Writes every touched rollup set; a cell that lost an extreme is
    /// recomputed from the rows of its day as they are after this commit.
    fn settle_sets(&self, work: &mut Work<'_>, dict: &Dictionary, ops: &mut Ops) -> Result<(), StoreError> {
        let mut day_rows: HashMap<(u32, i32), Vec<Row>> = HashMap::default();
        let tenant = work.tenant;
        let sets: Vec<(SetKey, TouchedSet)> = work
            .sets
            .drain()
            .flat_map(|((metric, day), sets)| {
                sets.into_iter().map(move |(dim_key, set)| {
                    let key = SetKey {
                        tenant,
                        metric,
                        day,
                        dim_key,
                    };
                    (key, set)
                })
            })
            .collect();
        for (key, mut set) in sets {
            // Rows of a day past retention are gone: its cells keep count,
            // sum, histogram and sketch exact, and min/max as they were.
            if !set.dirty.is_empty() && !self.retired(key.tenant, key.metric, key.day)? {
                let rows = match day_rows.entry((key.metric, key.day)) {
                    std::collections::hash_map::Entry::Occupied(rows) => rows.into_mut(),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(work.rows_after(key.metric, key.day)?)
                    }
                };
                let rating = dict.string(key.metric).is_some_and(is_rating);
                for value in &set.dirty {
                    let mut cell = Rollup::default();
                    let counts = |row: &&Row| key.dim_key == 0 || row.dims.contains(&(key.dim_key, *value));
                    for row in rows.iter().filter(counts) {
                        cell.add(row.value.get(), rating);
                    }
                    set.cells.insert(*value, cell);
                }
            }
            set.cells.retain(|_, cell| cell.count > 0);
            if set.cells.is_empty() {
                ops.remove(&key.key());
            } else {
                ops.insert(&key.key(), super::rollup::encode_set(&set.cells)?);
            }
        }
        Ok(())
    }
}

impl Work<'_> {
    /// Retracts the stored row of `retraction`, if any: out of the rollups,
    /// the index and (on disk) its block, with a tombstone so an older
    /// version cannot come back on open. Says whether a row was stored.
    fn retract_record(&mut self, dict: &Dictionary, retraction: &Retracted, ops: &mut Ops) -> Result<bool, StoreError> {
        xla_store::check_retracted(retraction)?;
        // A metric the store has never seen has no rows to retract.
        let Some(metric) = dict.id(&retraction.metric) else {
            return Ok(false);
        };
        self.retract_value(&retraction.id, metric, ops)
    }

    /// Retracts the stored value of `metric` of record `id`, if any; see
    /// [`Work::retract_record`].
    fn retract_value(&mut self, id: &str, metric: u32, ops: &mut Ops) -> Result<bool, StoreError> {
        let fingerprint = record_fingerprint(self.tenant, self.source, metric, id);
        let Some(loc) = self.index.record(fingerprint) else {
            return Ok(false);
        };
        self.check_found(fingerprint, loc)?;
        if self.replaced.contains(&loc) {
            return Ok(false);
        }
        self.retract(loc)?;
        self.rewrite.insert(loc.block);
        self.changes.retracted.push((fingerprint, loc));
        ops.insert(keys::tombstone(fingerprint), &self.next_block.to_be_bytes());
        Ok(true)
    }

    /// Checks that the row the index gives for a record is that record's:
    /// anything else means the index does not match the blocks (a damaged
    /// or foreign table), and the commit stops before writing anything.
    fn check_found(&mut self, fingerprint: Fingerprint, loc: Loc) -> Result<(), StoreError> {
        let tenant = self.tenant;
        let (meta, block) = self.old_block(loc)?;
        let slot = loc.slot as usize;
        let same = match block {
            OldBlock::Live(block) => block.rows.get(slot).and_then(Option::as_ref).is_some_and(|row| {
                stored_record_fingerprint(tenant, block.source, meta.key.metric, &row.id) == fingerprint
            }),
            OldBlock::Retired(block) => block
                .rows
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|row| u128::from_le_bytes(row.fingerprint) == fingerprint),
        };
        if same { Ok(()) } else { Err(index_damaged()) }
    }

    /// Reads the block holding `loc` (once per commit) and its record.
    fn old_block(&mut self, loc: Loc) -> Result<(BlockMeta, &OldBlock), StoreError> {
        let missing = index_damaged;
        let (meta, block) = match self.old.entry(loc.block) {
            std::collections::hash_map::Entry::Occupied(old) => old.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let meta = block_meta(self.db, loc.block)?.ok_or_else(missing)?;
                let bytes = self.db.get(meta.key.key()).or_store()?.ok_or_else(missing)?;
                let block = if meta.key.retired {
                    OldBlock::Retired(Block::decode(&bytes)?)
                } else {
                    OldBlock::Live(Block::decode(&bytes)?)
                };
                slot.insert((meta, block))
            }
        };
        Ok((*meta, block))
    }

    /// Whether the stored row at `loc` already says what `row` says.
    fn unchanged(&mut self, loc: Loc, row: &Row, day: i32) -> Result<bool, StoreError> {
        let (meta, block) = self.old_block(loc)?;
        let old_day = meta.key.day;
        let slot = loc.slot as usize;
        Ok(match block {
            OldBlock::Live(block) => block
                .rows
                .get(slot)
                .and_then(Option::as_ref)
                .ok_or_else(missing_row)?
                .same_data(old_day, row, day),
            // A retired row kept only what the rollups need; a record that
            // says the same there is a replay.
            OldBlock::Retired(block) => {
                let old = block.rows.get(slot).and_then(Option::as_ref).ok_or_else(missing_row)?;
                let same = old_day == day
                    && old.value.get().to_bits() == row.value.get().to_bits()
                    && old.layer == row.layer
                    && old.dims[..] == row.dims[..];
                // The ticket join needs what a retired row lost: its number and time.
                let join = (self.tenant, meta.key.metric, old_day);
                let number = self.roles.number(&row.inline);
                let at = i64::from(day) * DAY_MS + i64::from(row.offset);
                // A row the join never saw had no ticket number.
                same && (self.roles.role(meta.key.metric).is_none()
                    || super::join::same_retired(self.db, join, (loc.block, loc.slot), number, at)?
                        .unwrap_or(number.is_none()))
            }
        })
    }

    /// Takes the row at `loc` out of the rollups, and out of the ticket
    /// number it names. (Its subjects' entries in the index stay: a reader
    /// checks that each row is live.)
    fn retract(&mut self, loc: Loc) -> Result<(), StoreError> {
        let join_key = self.roles.key;
        // A row of a block written before format 10 is listed in the index,
        // not under its number: nothing to take out of the join.
        let listed = self.subjects.by_number(loc.block);
        let (meta, block) = self.old_block(loc)?;
        let key = meta.key;
        let slot = loc.slot as usize;
        // A retired row lost the number it named, and retention took its
        // listing out when it retired it.
        let (value, dims, fingerprint, number) = match block {
            OldBlock::Live(block) => {
                let row = block.rows.get(slot).and_then(Option::as_ref).ok_or_else(missing_row)?;
                let fingerprint = stored_record_fingerprint(key.tenant, block.source, key.metric, &row.id);
                let number = listed
                    .then(|| super::join::number_under(join_key, &row.inline).map(str::to_string))
                    .flatten();
                (row.value.get(), row.dims.to_vec(), fingerprint, number)
            }
            OldBlock::Retired(block) => {
                let row = block.rows.get(slot).and_then(Option::as_ref).ok_or_else(missing_row)?;
                (
                    row.value.get(),
                    row.dims.clone(),
                    u128::from_le_bytes(row.fingerprint),
                    None,
                )
            }
        };
        let role = self.roles.role(key.metric);
        // A row of another metric is listed under the number it names; one
        // of the join's own leaves the number below.
        if role.is_none() {
            self.join.listed.extend(number.map(|number| super::join::Listed {
                number,
                loc: (loc.block, loc.slot),
                add: false,
            }));
        }
        if let Some(role) = role {
            self.join.removed.push(super::join::Removed {
                loc: (loc.block, loc.slot),
                role,
                metric: key.metric,
                day: key.day,
                fingerprint,
            });
        }
        let db = self.db;
        let sets = self.sets.entry((key.metric, key.day)).or_default();
        for (set, dim_value) in cells(key.tenant, key.metric, key.day, &dims) {
            let touched = touched(db, set, sets)?;
            let cell = touched.cells.entry(dim_value).or_default();
            if !cell.remove(value) {
                touched.dirty.insert(dim_value);
            }
        }
        *self.lost.entry(loc.block).or_default() += 1;
        self.replaced.insert(loc);
        Ok(())
    }

    /// Adds a row to this commit's open block for its metric and day.
    fn insert(
        &mut self,
        fingerprint: Fingerprint,
        metric: u32,
        day: i32,
        row: Row,
        rating: bool,
        subjects: &Arc<[Fingerprint]>,
    ) -> Result<(), StoreError> {
        let prepared = Prepared::new(row.value.get(), rating);
        let db = self.db;
        let sets = self.sets.entry((metric, day)).or_default();
        for (set, dim_value) in cells(self.tenant, metric, day, &row.dims) {
            touched(db, set, sets)?
                .cells
                .entry(dim_value)
                .or_default()
                .add_prepared(&prepared);
        }
        let blocks = self.fresh.entry((metric, day)).or_default();
        if blocks.last().is_none_or(|(_, block)| block.rows.len() >= BLOCK_ROWS) {
            blocks.push((
                self.next_block,
                Block {
                    source: self.source,
                    provenance: self.provenance,
                    rows: Vec::new(),
                },
            ));
            self.next_block += 1;
        }
        let Some((id, block)) = blocks.last_mut() else {
            return Err(StoreError::corrupt("no open block"));
        };
        let loc = Loc {
            block: *id,
            slot: block.rows.len() as u32,
        };
        // The number it names: a row of the join's metrics joins it, a row of
        // another metric is listed under it.
        let number = self.roles.number(&row.inline).map(str::to_string);
        match self.roles.role(metric) {
            Some(role) => self.join.added.push(super::join::Added {
                loc: (loc.block, loc.slot),
                role,
                metric,
                day,
                at: i64::from(day) * DAY_MS + i64::from(row.offset),
                fingerprint,
                value: row.value.get(),
                dims: row.dims.clone(),
                number,
            }),
            None => self.join.listed.extend(number.map(|number| super::join::Listed {
                number,
                loc: (loc.block, loc.slot),
                add: true,
            })),
        }
        block.rows.push(Some(row));
        self.note_subjects(subjects, loc);
        self.changes.added.push((fingerprint, loc));
        Ok(())
    }

    /// Notes that the row at `loc` names `subjects`. The rows of one record
    /// share one list of subjects: their locations reach the index as one
    /// change per subject, not one per row.
    fn note_subjects(&mut self, subjects: &Arc<[Fingerprint]>, loc: Loc) {
        if subjects.is_empty() {
            return;
        }
        match &mut self.open_subjects {
            Some((open, locs)) if Arc::ptr_eq(open, subjects) => locs.push(loc),
            _ => {
                self.close_subjects();
                self.open_subjects = Some((subjects.clone(), Locs::from_elem(loc, 1)));
            }
        }
    }

    /// Turns the open record's subject locations into index changes.
    fn close_subjects(&mut self) {
        if let Some((subjects, locs)) = self.open_subjects.take() {
            for subject in subjects.iter() {
                self.changes.subjects.push((*subject, locs.clone()));
            }
        }
    }

    /// Whether the row of `fingerprint` at `loc` is current once this commit lands.
    fn live_after(&self, fingerprint: Fingerprint, loc: Loc) -> bool {
        self.index.is_live(fingerprint, loc) && !self.replaced.contains(&loc)
    }

    /// Writes the new blocks and their records, and compacts, deletes or
    /// recounts the old blocks that rows left.
    fn settle_blocks(&mut self, ops: &mut Ops) -> Result<(), StoreError> {
        self.close_subjects();
        for ((metric, day), blocks) in &self.fresh {
            for (id, block) in blocks {
                let key = BlockKey {
                    tenant: self.tenant,
                    metric: *metric,
                    day: *day,
                    block: *id,
                    retired: false,
                };
                ops.insert(&key.key(), frame(block.encode_rows()));
                let rows = block.rows.len() as u32;
                let meta = BlockMeta {
                    key,
                    present: rows,
                    live: rows,
                };
                ops.insert(&keys::block_meta(*id), &meta.encode());
                self.changes.fresh.push(*id);
            }
        }
        for (id, lost) in &self.lost {
            let (meta, _) = self
                .old
                .get(id)
                .ok_or_else(|| StoreError::corrupt("a block lost rows but was not read"))?;
            let live = meta
                .live
                .checked_sub(*lost)
                .ok_or_else(|| StoreError::corrupt("more rows left a block than it held"))?;
            if live == 0 {
                ops.remove(&meta.key.key());
                ops.remove(&keys::block_meta(*id));
            } else if live * 2 < meta.present || self.rewrite.contains(id) {
                let bytes = self.compact(meta)?;
                ops.insert(&meta.key.key(), bytes);
                let meta = BlockMeta {
                    present: live,
                    live,
                    ..*meta
                };
                ops.insert(&keys::block_meta(*id), &meta.encode());
            } else {
                ops.insert(&keys::block_meta(*id), &BlockMeta { live, ..*meta }.encode());
            }
        }
        Ok(())
    }

    /// An old block with its stale rows dropped (slots keep their places).
    fn compact(&self, meta: &BlockMeta) -> Result<Vec<u8>, StoreError> {
        let (_, block) = self
            .old
            .get(&meta.key.block)
            .ok_or_else(|| StoreError::corrupt("compacting a block that was not read"))?;
        let at = |slot: usize| Loc {
            block: meta.key.block,
            slot: slot as u32,
        };
        match block {
            OldBlock::Live(block) => {
                let mut block = block.clone();
                for (slot, row) in block.rows.iter_mut().enumerate() {
                    let stale = row.as_ref().is_some_and(|r| {
                        let fingerprint =
                            stored_record_fingerprint(meta.key.tenant, block.source, meta.key.metric, &r.id);
                        !self.live_after(fingerprint, at(slot))
                    });
                    if stale {
                        *row = None;
                    }
                }
                Ok(frame(block.encode_rows()))
            }
            OldBlock::Retired(block) => {
                let mut block = block.clone();
                for (slot, row) in block.rows.iter_mut().enumerate() {
                    let stale = row
                        .as_ref()
                        .is_some_and(|r| !self.live_after(u128::from_le_bytes(r.fingerprint), at(slot)));
                    if stale {
                        *row = None;
                    }
                }
                block.encode().map(frame)
            }
        }
    }

    /// The rows of a metric's day as they are once this commit lands.
    fn rows_after(&self, metric: u32, day: i32) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        let (start, end) = keys::block_range(self.tenant, metric, day, day + 1);
        for entry in self.db.range(start..end) {
            let (key, value) = entry.or_store()?;
            let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            let block: Block<Row> = Block::decode(&value)?;
            for (slot, row) in block.rows.into_iter().enumerate() {
                let Some(row) = row else { continue };
                let fingerprint = stored_record_fingerprint(self.tenant, block.source, metric, &row.id);
                let loc = Loc {
                    block: key.block,
                    slot: slot as u32,
                };
                if self.live_after(fingerprint, loc) {
                    rows.push(row);
                }
            }
        }
        if let Some(blocks) = self.fresh.get(&(metric, day)) {
            rows.extend(blocks.iter().flat_map(|(_, b)| b.rows.iter().flatten().cloned()));
        }
        Ok(rows)
    }
}

/// The touched set `key` among its day's `sets`, read from disk the first
/// time this commit touches it.
fn touched<'s>(db: &sled::Db, key: SetKey, sets: &'s mut DaySets) -> Result<&'s mut TouchedSet, StoreError> {
    let slot = match sets.iter().position(|(dim_key, _)| *dim_key == key.dim_key) {
        Some(slot) => slot,
        None => {
            let cells = match db.get(key.key()).or_store()? {
                Some(bytes) => super::rollup::decode_set(&bytes)?,
                None => RollupSet::new(),
            };
            let set = TouchedSet {
                cells,
                dirty: BTreeSet::new(),
            };
            sets.push((key.dim_key, set));
            sets.len() - 1
        }
    };
    Ok(&mut sets[slot].1)
}

/// Writes the source's written set (`key`) as `known` plus `metrics`, only
/// when that adds a metric.
fn note_written(key: Vec<u8>, mut known: Vec<u32>, metrics: Vec<u32>, ops: &mut Ops) -> Result<(), StoreError> {
    let before = known.len();
    known.extend(metrics);
    known.sort_unstable();
    known.dedup();
    if known.len() != before {
        let bytes = postcard::to_allocvec(&known).map_err(|e| StoreError::corrupt(format!("a written set: {e}")))?;
        ops.insert(key, bytes);
    }
    Ok(())
}

/// Checks the id of a whole record retracted, as a record's id is checked.
fn check_retracted_id(id: &str) -> Result<(), StoreError> {
    xla_types::Retraction::record(id).check().map_err(|reason| {
        StoreError::BadRequest(format!(
            "the retracted record `{}` was refused: {reason}; nothing of its batch was stored",
            xla_types::untrusted::escape_capped(id, 100)
        ))
    })
}

fn missing_row() -> StoreError {
    index_damaged()
}

/// How a commit's error says the index does not match the blocks.
const INDEX_DAMAGED: &str = "the store's index does not match its blocks";

fn index_damaged() -> StoreError {
    StoreError::corrupt(format!(
        "{INDEX_DAMAGED} (its table, {}, was damaged or copied from another store); nothing of the \
         batch was stored, and the index is rebuilt from the blocks on the next use: run the sync again",
        super::index::TABLE_DIR
    ))
}

fn is_index_damaged(error: &StoreError) -> bool {
    matches!(error, StoreError::Corrupt(reason) if reason.starts_with(INDEX_DAMAGED))
}

/// The rollup cells a row counts in: its day's total (dimension 0) and one
/// per rolled-up dimension.
fn cells(tenant: u32, metric: u32, day: i32, dims: &[(u32, u32)]) -> impl Iterator<Item = (SetKey, u32)> + '_ {
    std::iter::once((0, 0))
        .chain(dims.iter().copied())
        .map(move |(dim_key, value)| {
            (
                SetKey {
                    tenant,
                    metric,
                    day,
                    dim_key,
                },
                value,
            )
        })
}

/// One value to store, from an observation or a record's value.
struct Stored<'b> {
    id: &'b str,
    metric: &'b str,
    layer: Layer,
    value: f64,
    at: i64,
    dimensions: Dims<'b>,
    /// The observation, still to check (a record is checked whole, first).
    unchecked: Option<&'b Observation>,
}

/// The batch's values in order: its observations, then each record's values.
fn values(batch: &CommitBatch) -> Vec<Stored<'_>> {
    let observations = batch.observations.iter().map(|o| Stored {
        id: &o.id,
        metric: &o.metric,
        layer: o.layer,
        value: o.value,
        at: o.at,
        dimensions: Dims::Text(&o.dimensions),
        unchecked: Some(o),
    });
    let records = batch.records.iter().flat_map(|r| {
        r.values.iter().map(move |v| Stored {
            id: &r.id,
            metric: &v.metric,
            layer: v.layer,
            value: v.value,
            at: r.at,
            dimensions: Dims::Names(&r.dimensions),
            unchecked: None,
        })
    });
    // Sized once: grown by doubling, a batch's values were copied some
    // fifteen times into ever larger, freshly faulted-in memory.
    let count = batch.observations.len() + batch.records.iter().map(|r| r.values.len()).sum::<usize>();
    let mut values = Vec::with_capacity(count);
    values.extend(observations.chain(records));
    values
}

/// The last value of each (id, metric), in batch order.
fn last_of_each<'b>(batch: &CommitBatch, values: Vec<Stored<'b>>) -> Vec<Stored<'b>> {
    // The usual batch: records only, each id once. A record names each
    // metric once (checked), so every (id, metric) is then unique too: one
    // hash per record instead of one per value.
    if batch.observations.is_empty() {
        let mut ids: HashSet<&str> = HashSet::with_capacity_and_hasher(batch.records.len(), Default::default());
        if batch.records.iter().all(|r| ids.insert(r.id.as_str())) {
            return values;
        }
    }
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity_and_hasher(values.len(), Default::default());
    for (i, v) in values.iter().enumerate() {
        last.insert((v.id, v.metric), i);
    }
    if last.len() == values.len() {
        return values;
    }
    let keep: HashSet<usize> = last.into_values().collect();
    values
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, v)| v)
        .collect()
}

/// A value's dimensions: an observation's text pairs, or a record's names.
#[derive(Clone, Copy)]
enum Dims<'b> {
    Text(&'b [(String, String)]),
    Names(&'b [(Name, Name)]),
}

impl Dims<'_> {
    /// Whether `other` holds the same pairs: the values of one record share
    /// its dimensions, so the pointer check usually settles it.
    fn same_as(&self, other: Dims<'_>) -> bool {
        match (*self, other) {
            (Dims::Text(a), Dims::Text(b)) => std::ptr::eq(a, b) || a == b,
            (Dims::Names(a), Dims::Names(b)) => std::ptr::eq(a, b) || a == b,
            _ => false,
        }
    }
}

/// Rolled-up dimensions as dictionary ids and per-subject ones inline, each
/// sorted by key; empty values are dropped. `named` caches the ids of
/// shared names by address for the length of one commit.
fn split_dimensions(
    dict: &mut Dictionary,
    named: &mut HashMap<(usize, usize), u32>,
    unrolled: &[u32],
    dimensions: Dims<'_>,
) -> SplitDimensions {
    let (mut dims, mut inline) = (Vec::new(), Vec::new());
    match dimensions {
        Dims::Text(pairs) => {
            for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
                let key = dict.intern(k);
                if unrolled.contains(&key) {
                    inline.push((key, v.clone()));
                } else {
                    dims.push((key, dict.intern(v)));
                }
            }
        }
        Dims::Names(pairs) => {
            let mut intern = |name: &Name| -> u32 { *named.entry(name.address()).or_insert_with(|| dict.intern(name)) };
            for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
                let key = intern(k);
                if unrolled.contains(&key) {
                    inline.push((key, v.to_string()));
                } else {
                    dims.push((key, intern(v)));
                }
            }
        }
    }
    dims.sort_unstable();
    inline.sort_unstable();
    (dims.into(), inline.into())
}
