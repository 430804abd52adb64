//! Retention: raw observations older than a cutoff are dropped while the
//! rollups stay, so years of reports cost days of rows. Retention works in
//! whole UTC days per metric (or for all of a tenant's metrics at once): a
//! cutoff inside a day keeps that day.
//!
//! A retired row keeps its fingerprint, value and rolled-up dimensions (not
//! its id, time of day, per-subject dimensions or provenance), so if the
//! source later changes that record, the replace still takes the old value
//! out of the rollups exactly. A rollup cell of a retired day keeps count,
//! sum, histogram and sketch exact through such replaces; its min and max
//! are kept as they were, since the rows to recompute them are gone.
//!
//! Cutoffs are kept under `Mretired<tenant>` (every metric) and
//! `Mretired<tenant><metric>`; a metric's day is retired when either
//! cutoff passed it.

use super::block::{Block, RecordId, RetiredRow, Row, frame, stored_record_fingerprint};
use super::dict::Dictionary;
use super::index::{BlockMeta, Loc};
use super::keys::{self, BlockKey, DAY_MS, SetKey};
use super::ops::Ops;
use super::rollup::decode_set;
use super::{OrStore, Sled};
use xla_store::{RetentionSummary, RetiredDay, RetiredRecord, StoreError};

/// Blocks per atomic batch while retiring (the store's lock is held for one).
const RETENTION_BLOCKS: usize = 256;
/// Batches per `retire_before` call: a call's work is bounded, so a caller
/// stopping (a shutdown) waits for at most this much.
const RETENTION_BATCHES_PER_CALL: usize = 4;

/// One retention pass: a tenant's blocks (or one metric's) in
/// `[start, end)` of days before `cutoff_day`.
struct Pass {
    tenant: u32,
    cutoff_day: i32,
    start: Vec<u8>,
    end: Vec<u8>,
}

/// Where a cutoff is kept: a tenant's (every metric) or one metric's.
fn retired_key(tenant: u32, metric: Option<u32>) -> Vec<u8> {
    let mut key = b"Mretired".to_vec();
    key.extend_from_slice(&tenant.to_be_bytes());
    if let Some(metric) = metric {
        key.extend_from_slice(&metric.to_be_bytes());
    }
    key
}

impl Sled {
    /// Drops a tenant's raw observations of UTC days that ended by `cutoff`
    /// (unix ms), of one metric or of all; rollups and cursors stay.
    pub(crate) fn retire_before(
        &self,
        tenant: &str,
        metric: Option<&str>,
        cutoff: i64,
    ) -> Result<RetentionSummary, StoreError> {
        xla_store::check_cutoff(cutoff)?;
        let Some(pass) = self.plan_retirement(tenant, metric, cutoff)? else {
            return Ok(RetentionSummary::default());
        };
        // The lock is taken per batch of blocks, not for the whole pass:
        // syncs and reads go on while a large backlog retires.
        let mut summary = RetentionSummary::default();
        let mut resume = pass.start.clone();
        for batch in 1..=RETENTION_BATCHES_PER_CALL {
            let mut inner = self.lock()?;
            let step = self.retire_batch(&mut inner, &pass, &resume);
            if step.is_err() {
                // As after a failed commit: ids handed out for the batch (the
                // join's names) may not have been written.
                inner.dict = Dictionary::load(&*self.db()?)?;
                inner.index = None;
            }
            let (dropped, next) = step?;
            summary.dropped += dropped;
            match next {
                Some(next) => resume = next,
                None => break,
            }
            // The blocks retired so far are gone from the pass's range: the
            // next call starts where this one stopped.
            summary.more = batch == RETENTION_BATCHES_PER_CALL;
        }
        self.db()?.flush().or_store()?;
        Ok(summary)
    }

    /// Records the cutoff (before any row goes, so a crash half-way never
    /// leaves a day that looks complete but is not) and says which blocks
    /// the pass reads; `None` when the tenant or metric has stored nothing.
    fn plan_retirement(&self, tenant: &str, metric: Option<&str>, cutoff: i64) -> Result<Option<Pass>, StoreError> {
        let inner = self.lock()?;
        let Some(tenant_id) = inner.dict.id(tenant) else {
            return Ok(None);
        };
        let metric_id = match metric {
            None => None,
            Some(metric) => match inner.dict.id(metric) {
                Some(id) => Some(id),
                None => return Ok(None),
            },
        };
        let aligned = i64::from(keys::day_of(cutoff)) * DAY_MS;
        let stored = self.stored_cutoff(retired_key(tenant_id, metric_id))?;
        let cutoff = aligned.max(stored.unwrap_or(i64::MIN));
        if stored != Some(cutoff) {
            self.db()?
                .insert(retired_key(tenant_id, metric_id), &cutoff.to_be_bytes())
                .or_store()?;
            self.db()?.flush().or_store()?;
        }
        // A metric's pass also finishes what a tenant-wide pass cut short.
        let cutoff = match metric_id {
            Some(metric) => cutoff.max(self.retired_cutoff(tenant_id, metric)?.unwrap_or(i64::MIN)),
            None => cutoff,
        };
        let cutoff_day = keys::day_of(cutoff);
        let (start, end) = match metric_id {
            Some(metric) => keys::block_range(tenant_id, metric, i32::MIN, cutoff_day),
            None => (
                keys::tenant_blocks(tenant_id).to_vec(),
                keys::tenant_blocks_end(tenant_id),
            ),
        };
        Ok(Some(Pass {
            tenant: tenant_id,
            cutoff_day,
            start,
            end,
        }))
    }

    /// Retires up to [`RETENTION_BLOCKS`] blocks of `pass` from `resume` on,
    /// in one atomic batch: the raw rows dropped, and where the next batch
    /// starts (`None`: the pass is done).
    fn retire_batch(
        &self,
        inner: &mut super::Inner,
        pass: &Pass,
        resume: &[u8],
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let db = &*self.db()?;
        let (dict, index) = inner.parts(db, &self.path)?;
        let roles = super::join::Roles::new(dict);
        // Blocks written before format 10 list their rows in the index, not
        // the join: nothing of theirs to take out there.
        let listed_from = super::index::rows_by_number_from(db)?;
        // The metrics whose rows the join keeps as answers: only their
        // blocks have `Z` slots that want their ids.
        let answers: Vec<u32> = xla_store::JOINED_METRICS.iter().filter_map(|m| dict.id(m)).collect();
        let mut ops = Ops::default();
        // The join's names, if this store never had them, stored with the batch.
        dict.write_pending(&mut ops);
        // Rows of other metrics leaving the numbers that list them. Settled
        // into the batch as listings only: `join::settle` then writes `Y`
        // alone (it reads `Z` from sled, not from this batch, so rows of the
        // join's own must not go through it here: their ids kept in `Z`
        // below would be overwritten).
        let mut unlisted = super::join::Events::default();
        let (mut dropped, mut in_batch) = (0u64, 0);
        for entry in db.range(resume..pass.end.as_slice()) {
            let (raw_key, value) = entry.or_store()?;
            let key = BlockKey::parse(&raw_key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            if key.day >= pass.cutoff_day {
                continue;
            }
            if in_batch == RETENTION_BLOCKS {
                super::join::settle(db, dict, &roles, pass.tenant, unlisted, &mut ops)?;
                self.apply(db, ops)?;
                return Ok((dropped, Some(raw_key.to_vec())));
            }
            let block: Block<Row> = Block::decode(&value)?;
            let mut rows = Vec::with_capacity(block.rows.len());
            for (slot, row) in block.rows.iter().enumerate() {
                let loc = Loc {
                    block: key.block,
                    slot: slot as u32,
                };
                let kept = row.as_ref().and_then(|row| {
                    let fingerprint = stored_record_fingerprint(pass.tenant, block.source, key.metric, &row.id);
                    if !index.is_live(fingerprint, loc) {
                        return None;
                    }
                    Some(RetiredRow {
                        fingerprint: fingerprint.to_le_bytes(),
                        value: row.value,
                        layer: row.layer,
                        dims: row.dims.to_vec(),
                    })
                });
                rows.push(kept);
            }
            // A retired row no longer names its number: the join stops
            // listing it (a row of its own metrics it keeps, through `Z`).
            // A stale row's listing went when it was replaced.
            if roles.role(key.metric).is_none() && key.block >= listed_from {
                let live_rows = block
                    .rows
                    .iter()
                    .zip(&rows)
                    .map(|(row, kept)| kept.as_ref().and(row.as_ref()));
                unlisted.listed.extend(live_rows.enumerate().filter_map(|(slot, row)| {
                    Some(super::join::Listed {
                        number: roles.number(&row?.inline)?.to_string(),
                        loc: (key.block, slot as u32),
                        add: false,
                    })
                }));
            }
            let live = rows.iter().flatten().count() as u32;
            // The join keeps a retiring answer's record id (the retired row
            // keeps none): its unmatched examples and a copy of the store
            // name it.
            if answers.contains(&key.metric) {
                let ids: Vec<Option<&RecordId>> = block
                    .rows
                    .iter()
                    .zip(&rows)
                    .map(|(row, kept)| kept.as_ref().and(row.as_ref()).map(|row| &row.id))
                    .collect();
                super::join::keep_retiring_ids(db, (pass.tenant, key.metric, key.day), key.block, &ids, &mut ops)?;
            }
            ops.remove(&key.key());
            if live == 0 {
                ops.remove(&keys::block_meta(key.block));
            } else {
                let retired = BlockKey { retired: true, ..key };
                let block = Block {
                    source: block.source,
                    provenance: block.provenance,
                    rows,
                };
                ops.insert(&retired.key(), frame(block.encode()?));
                let meta = BlockMeta {
                    key: retired,
                    present: live,
                    live,
                };
                ops.insert(&keys::block_meta(key.block), &meta.encode());
            }
            dropped += u64::from(live);
            in_batch += 1;
        }
        super::join::settle(db, dict, &roles, pass.tenant, unlisted, &mut ops)?;
        self.apply(db, ops)?;
        Ok((dropped, None))
    }

    /// Whether rows of a tenant's metric on `day` may have been dropped by
    /// retention.
    pub(crate) fn retired(&self, tenant: u32, metric: u32, day: i32) -> Result<bool, StoreError> {
        Ok(self
            .retired_cutoff(tenant, metric)?
            .is_some_and(|cutoff| i64::from(day) * DAY_MS < cutoff))
    }

    /// Whether rows of any of `metrics` on `day` may have been dropped.
    pub(crate) fn any_retired(&self, tenant: u32, metrics: &[u32], day: i32) -> Result<bool, StoreError> {
        for &metric in metrics {
            if self.retired(tenant, metric, day)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The cutoff in effect for a tenant's metric: the later of the
    /// tenant's and the metric's own.
    pub(crate) fn retired_cutoff(&self, tenant: u32, metric: u32) -> Result<Option<i64>, StoreError> {
        let all = self.stored_cutoff(retired_key(tenant, None))?;
        let own = self.stored_cutoff(retired_key(tenant, Some(metric)))?;
        Ok(all.max(own))
    }

    fn stored_cutoff(&self, key: Vec<u8>) -> Result<Option<i64>, StoreError> {
        self.db()?.get(key).or_store()?.map(|v| decode_cutoff(&v)).transpose()
    }
}

/// A stored cutoff: unix ms, 8 bytes big-endian.
fn decode_cutoff(bytes: &[u8]) -> Result<i64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt("a retention cutoff is not 8 bytes"))?;
    Ok(i64::from_be_bytes(array))
}

/// A dictionary id's string; a missing one is damage.
fn name(dict: &Dictionary, id: u32) -> Result<String, StoreError> {
    dict.string(id)
        .map(str::to_string)
        .ok_or_else(|| StoreError::corrupt("a stored dictionary id names nothing"))
}

impl Sled {
    /// A tenant's retention cutoffs as stored (unix ms): the tenant-wide
    /// one (metric `None`, which also covers metrics written later) and
    /// each metric's own.
    pub(crate) fn retention_cutoffs(&self, tenant: &str) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let inner = self.lock()?;
        let Some(tenant_id) = inner.dict.id(tenant) else {
            return Ok(Vec::new());
        };
        let prefix = retired_key(tenant_id, None);
        let mut cutoffs = Vec::new();
        for entry in self.db()?.scan_prefix(&prefix) {
            let (key, value) = entry.or_store()?;
            let metric = match &key[prefix.len()..] {
                [] => None,
                id => {
                    let id: [u8; 4] = id
                        .try_into()
                        .map_err(|_| StoreError::corrupt("a retention cutoff's key does not parse"))?;
                    Some(name(&inner.dict, u32::from_be_bytes(id))?)
                }
            };
            cutoffs.push((metric, decode_cutoff(&value)?));
        }
        Ok(cutoffs)
    }

    /// The cutoff of a tenant's metric and the days before it that have
    /// rollup cells, oldest first: the days [`Sled::retired_day`] exports.
    /// `None` when retention retired none of the metric's days.
    pub(crate) fn retired_days(&self, tenant: &str, metric: &str) -> Result<Option<(i64, Vec<i32>)>, StoreError> {
        let (tenant_id, metric_id) = {
            let inner = self.lock()?;
            match (inner.dict.id(tenant), inner.dict.id(metric)) {
                (Some(tenant), Some(metric)) => (tenant, metric),
                _ => return Ok(None),
            }
        };
        let Some(cutoff) = self.retired_cutoff(tenant_id, metric_id)? else {
            return Ok(None);
        };
        let (start, end) = keys::rollup_range(tenant_id, metric_id, i32::MIN, keys::day_of(cutoff));
        let mut days: Vec<i32> = Vec::new();
        for entry in self.db()?.range(start..end) {
            let (key, _) = entry.or_store()?;
            let set = SetKey::parse(&key).ok_or_else(|| StoreError::corrupt("a rollup key does not parse"))?;
            if days.last() != Some(&set.day) {
                days.push(set.day);
            }
        }
        Ok(Some((cutoff, days)))
    }

    /// A retired day of a tenant's metric as this store keeps it: its
    /// rollup cells and its retired rows that still count, each with its
    /// ticket number, time and (an answer's) record id where the ticket
    /// join kept them. A row keeps no record id otherwise: its key is its
    /// fingerprint.
    pub(crate) fn retired_day(&self, tenant: &str, metric: &str, day: i32) -> Result<RetiredDay, StoreError> {
        let db = &*self.db()?;
        let mut inner = self.lock()?;
        let (dict, index) = inner.parts(db, &self.path)?;
        let mut exported = RetiredDay {
            day,
            ..RetiredDay::default()
        };
        let (Some(tenant_id), Some(metric_id)) = (dict.id(tenant), dict.id(metric)) else {
            return Ok(exported);
        };
        let (start, end) = keys::rollup_range(tenant_id, metric_id, day, day + 1);
        for entry in db.range(start..end) {
            let (key, value) = entry.or_store()?;
            let set = SetKey::parse(&key).ok_or_else(|| StoreError::corrupt("a rollup key does not parse"))?;
            for (value_id, cell) in decode_set(&value)? {
                let dimension = match set.dim_key {
                    0 => None,
                    key => Some((name(dict, key)?, name(dict, value_id)?)),
                };
                exported.cells.push((dimension, cell));
            }
        }
        let block_key = |day: i32| {
            BlockKey {
                tenant: tenant_id,
                metric: metric_id,
                day,
                block: 0,
                retired: true,
            }
            .key()
        };
        for entry in db.range(block_key(day)..block_key(day + 1)) {
            let (raw_key, value) = entry.or_store()?;
            let key = BlockKey::parse(&raw_key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            let block: Block<RetiredRow> = Block::decode(&value)?;
            let source = name(dict, block.source)?;
            let joined = super::join::retired_slots(db, (tenant_id, metric_id, day), key.block)?;
            for (slot, row) in block.rows.iter().enumerate() {
                let Some(row) = row else { continue };
                let fingerprint = u128::from_le_bytes(row.fingerprint);
                let loc = Loc {
                    block: key.block,
                    slot: slot as u32,
                };
                if !index.is_live(fingerprint, loc) {
                    continue;
                }
                let join = joined.get(slot).cloned().flatten();
                let in_join = join.is_some();
                let join = join.unwrap_or_default();
                let mut dimensions = Vec::with_capacity(row.dims.len());
                for &(key, value) in &row.dims {
                    dimensions.push((name(dict, key)?, name(dict, value)?));
                }
                dimensions.sort();
                exported.rows.push(RetiredRecord {
                    source: source.clone(),
                    key: join.id.clone().unwrap_or_else(|| format!("{fingerprint:032x}")),
                    record_id: join.id,
                    at: join.at.unwrap_or(i64::from(day) * DAY_MS),
                    value: row.value.get(),
                    layer: keys::layer_from_code(row.layer),
                    dimensions,
                    ticket: join.number,
                    joined: in_join,
                });
            }
        }
        Ok(exported)
    }
}
