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

use super::block::{Block, RetiredRow, Row, frame, stored_record_fingerprint};
use super::index::{BlockMeta, Loc};
use super::keys::{self, BlockKey, DAY_MS};
use super::{OrStore, Sled};
use xla_store::{RetentionSummary, StoreError};

/// Blocks per atomic batch while retiring.
const RETENTION_BLOCKS: usize = 256;

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
        // A cutoff only ever moves forward, so one in the future (seconds
        // taken for milliseconds) would retire every day to come.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MAX, |d| d.as_millis() as i64);
        if cutoff > now {
            return Err(StoreError::BadRequest(format!(
                "the retention cutoff {cutoff} is in the future; give unix milliseconds before now"
            )));
        }
        let mut inner = self.lock()?;
        let result = self.retire_locked(&mut inner, tenant, metric, cutoff);
        if result.is_err() {
            inner.index = None;
        }
        result
    }

    fn retire_locked(
        &self,
        inner: &mut super::Inner,
        tenant: &str,
        metric: Option<&str>,
        cutoff: i64,
    ) -> Result<RetentionSummary, StoreError> {
        let (dict, index) = inner.parts(&self.db, &self.path)?;
        let Some(tenant_id) = dict.id(tenant) else {
            return Ok(RetentionSummary::default());
        };
        let metric_id = match metric {
            None => None,
            Some(metric) => match dict.id(metric) {
                Some(id) => Some(id),
                None => return Ok(RetentionSummary::default()),
            },
        };
        // The cutoff is recorded before any row goes, so a crash half-way
        // never leaves a day that looks complete but is not.
        let aligned = i64::from(keys::day_of(cutoff)) * DAY_MS;
        let stored = self.stored_cutoff(retired_key(tenant_id, metric_id))?;
        let cutoff = aligned.max(stored.unwrap_or(i64::MIN));
        if stored != Some(cutoff) {
            self.db
                .insert(retired_key(tenant_id, metric_id), &cutoff.to_be_bytes())
                .or_store()?;
            self.db.flush().or_store()?;
        }

        let cutoff_day = keys::day_of(cutoff);
        let scan = match metric_id {
            Some(metric) => {
                let (from, to) = keys::block_range(tenant_id, metric, i32::MIN, cutoff_day);
                self.db.range(from..to)
            }
            None => self.db.scan_prefix(keys::tenant_blocks(tenant_id)),
        };
        let mut summary = RetentionSummary::default();
        let (mut ops, mut in_batch) = (sled::Batch::default(), 0);
        for entry in scan {
            let (key, value) = entry.or_store()?;
            let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
            if key.day >= cutoff_day {
                continue;
            }
            let block: Block<Row> = Block::decode(&value)?;
            let mut rows = Vec::with_capacity(block.rows.len());
            for (slot, row) in block.rows.iter().enumerate() {
                let loc = Loc {
                    block: key.block,
                    slot: slot as u32,
                };
                let kept = row.as_ref().and_then(|row| {
                    let fingerprint = stored_record_fingerprint(tenant_id, block.source, key.metric, &row.id);
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
            let live = rows.iter().flatten().count() as u32;
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
            summary.dropped += u64::from(live);
            in_batch += 1;
            if in_batch == RETENTION_BLOCKS {
                self.db.apply_batch(std::mem::take(&mut ops)).or_store()?;
                in_batch = 0;
            }
        }
        self.db.apply_batch(ops).or_store()?;
        self.db.flush().or_store()?;
        Ok(summary)
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
        self.db
            .get(key)
            .or_store()?
            .map(|v| {
                let array: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::corrupt("a retention cutoff is not 8 bytes"))?;
                Ok(i64::from_be_bytes(array))
            })
            .transpose()
    }
}
