//! Retention: raw observations older than a cutoff are dropped while the
//! rollups stay, so years of reports cost days of rows.
//!
//! A dropped row's index entry keeps the row itself, so if the source later
//! changes that record, the replace still takes the old value out of the
//! rollups exactly. A rollup cell of a retired day keeps count, sum,
//! histogram and sketch exact through such replaces; its min and max are
//! kept as they were, since the rows to recompute them are gone.

use super::keys::{self, DAY_MS};
use super::write::{IndexEntry, decode};
use super::{Store, StoreError};

/// Operations per atomic batch while dropping rows.
const RETENTION_BATCH: usize = 10_000;

/// What retention did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionSummary {
    /// Raw observations dropped.
    pub dropped: u64,
}

fn retired_key(tenant: u32) -> Vec<u8> {
    let mut key = b"Mretired".to_vec();
    key.extend_from_slice(&tenant.to_be_bytes());
    key
}

impl Store {
    /// Drops a tenant's raw observations observed before `cutoff` (unix ms);
    /// rollups, cursors and index entries stay.
    pub fn retire_before(&self, tenant: &str, cutoff: i64) -> Result<RetentionSummary, StoreError> {
        let dict = self.lock()?;
        let Some(tenant_id) = dict.id(tenant) else {
            return Ok(RetentionSummary::default());
        };
        let subjects: Vec<u32> = keys::SUBJECT_DIMENSIONS.iter().filter_map(|d| dict.id(d)).collect();
        // The cutoff is recorded before any row goes, so a crash half-way
        // never leaves a day that looks complete but is not.
        let cutoff = cutoff.max(self.retired_cutoff(tenant_id)?.unwrap_or(i64::MIN));
        self.db.insert(retired_key(tenant_id), &cutoff.to_be_bytes())?;
        self.db.flush()?;

        let mut summary = RetentionSummary::default();
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let prefix = {
            let mut p = vec![b'O'];
            p.extend_from_slice(&tenant_id.to_be_bytes());
            p
        };
        for entry in self.db.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let parsed = keys::parse_observation(&key)
                .ok_or_else(|| StoreError::corrupt("an observation key does not parse"))?;
            if parsed.at >= cutoff {
                continue;
            }
            let (at, metric, source, id) = (parsed.at, parsed.metric, parsed.source, parsed.id);
            let row = decode(&value)?;
            batch.remove(key.to_vec());
            batch.insert(
                keys::index(tenant_id, source, &id, metric),
                IndexEntry::retired(at, &row)?,
            );
            for dim in row.dimensions.iter().copied().filter(|(k, _)| subjects.contains(k)) {
                batch.remove(keys::subject(tenant_id, dim, metric, source, &id));
            }
            summary.dropped += 1;
            in_batch += 1;
            if in_batch == RETENTION_BATCH {
                self.db.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(summary)
    }

    /// Whether rows of `day` may have been dropped by retention.
    pub(crate) fn retired(&self, tenant: u32, day: i32) -> Result<bool, StoreError> {
        Ok(self
            .retired_cutoff(tenant)?
            .is_some_and(|cutoff| i64::from(day) * DAY_MS < cutoff))
    }

    fn retired_cutoff(&self, tenant: u32) -> Result<Option<i64>, StoreError> {
        self.db
            .get(retired_key(tenant))?
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
