//! What the store keeps, per tenant and metric: the metrics stored (cheap,
//! one seek per metric) and their rows and sizes (a scan of every block and
//! rollup key, for `xla-host store stats`).

use super::block::{Block, RetiredRow, Row};
use super::index::block_meta;
use super::keys::{self, BlockKey, DAY_MS, SetKey};
use super::{OrStore, Sled};
use std::collections::BTreeMap;
use std::path::Path;
use xla_store::{MetricStats, StoreError, StoreStats, StoredMetric};
use xla_types::Layer;

/// A tenant's metric, as dictionary ids.
type MetricKey = (u32, u32);

impl Sled {
    /// Every tenant's metric with rows (raw or retired) and its layer, by
    /// one seek per metric over the block keys.
    pub(crate) fn stored_metrics(&self) -> Result<Vec<StoredMetric>, StoreError> {
        let mut layers: BTreeMap<MetricKey, Option<Layer>> = BTreeMap::new();
        for retired in [false, true] {
            for (metric, layer) in self.metrics_of_kind(retired)? {
                let known = layers.entry(metric).or_default();
                *known = known.or(layer);
            }
        }
        let inner = self.lock()?;
        let name = |id: u32| {
            inner
                .dict
                .string(id)
                .map(str::to_string)
                .ok_or_else(|| StoreError::corrupt("a block key names a string the dictionary lacks"))
        };
        let mut metrics = layers
            .into_iter()
            .map(|((tenant_id, metric_id), layer)| {
                Ok(StoredMetric {
                    tenant: name(tenant_id)?,
                    metric: name(metric_id)?,
                    layer,
                    retired_before: self.retired_cutoff(tenant_id, metric_id)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        metrics.sort_by(|a, b| (&a.tenant, &a.metric).cmp(&(&b.tenant, &b.metric)));
        Ok(metrics)
    }

    /// The metrics with live (or retired) blocks, each with the layer of
    /// its first row still there.
    pub(crate) fn metrics_of_kind(&self, retired: bool) -> Result<Vec<(MetricKey, Option<Layer>)>, StoreError> {
        let prefix = keys::blocks_prefix(retired);
        let mut found = Vec::new();
        let mut start = prefix.to_vec();
        'metrics: loop {
            let mut this: Option<(MetricKey, Option<Layer>)> = None;
            for entry in self.db()?.range(start.as_slice()..) {
                let (key, value) = entry.or_store()?;
                if !key.starts_with(&prefix) {
                    break;
                }
                let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
                let metric = (key.tenant, key.metric);
                match &mut this {
                    None => this = Some((metric, None)),
                    Some((current, _)) if *current != metric => break,
                    Some(_) => {}
                }
                let layer = first_layer(&value, retired)?;
                if let (Some(layer), Some((_, known))) = (layer, &mut this) {
                    *known = Some(layer);
                    break;
                }
            }
            let Some(((tenant, metric), layer)) = this else {
                break 'metrics;
            };
            found.push(((tenant, metric), layer));
            // Seek past this metric's blocks.
            let next = match metric.checked_add(1) {
                Some(metric) => (tenant, metric),
                None => match tenant.checked_add(1) {
                    Some(tenant) => (tenant, 0),
                    None => break,
                },
            };
            start = prefix.to_vec();
            start.extend_from_slice(&next.0.to_be_bytes());
            start.extend_from_slice(&next.1.to_be_bytes());
        }
        Ok(found)
    }

    /// Rows and sizes per tenant's metric: reads every block's record and
    /// every rollup key.
    pub(crate) fn stats(&self) -> Result<StoreStats, StoreError> {
        // The blocks' records (rows live) are complete once the index is open.
        self.lock()?.parts(&*self.db()?, &self.path)?;
        let mut all: BTreeMap<MetricKey, MetricStats> = BTreeMap::new();
        for retired in [false, true] {
            for entry in self.db()?.scan_prefix(keys::blocks_prefix(retired)) {
                let (key, value) = entry.or_store()?;
                let bytes = (key.len() + value.len()) as u64;
                let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
                let live = self.live_rows(&key, &value)?;
                let stats = all.entry((key.tenant, key.metric)).or_default();
                if retired {
                    stats.retired_rows += live;
                    stats.retired_bytes += bytes;
                } else {
                    stats.raw_rows += live;
                    stats.raw_bytes += bytes;
                    if live > 0 {
                        let day = i64::from(key.day) * DAY_MS;
                        stats.raw_from = Some(stats.raw_from.map_or(day, |d| d.min(day)));
                        stats.raw_to = Some(stats.raw_to.map_or(day, |d| d.max(day)));
                    }
                }
            }
        }
        for entry in self.db()?.scan_prefix(keys::rollups_prefix()) {
            let (key, value) = entry.or_store()?;
            let set = SetKey::parse(&key).ok_or_else(|| StoreError::corrupt("a rollup key does not parse"))?;
            let stats = all.entry((set.tenant, set.metric)).or_default();
            stats.rollup_cells += cells_in_set(&value)?;
            stats.rollup_bytes += (key.len() + value.len()) as u64;
        }
        let layers: BTreeMap<(String, String), Option<Layer>> = self
            .stored_metrics()?
            .into_iter()
            .map(|m| ((m.tenant, m.metric), m.layer))
            .collect();
        let mut metrics = Vec::with_capacity(all.len());
        {
            let inner = self.lock()?;
            for ((tenant, metric), mut stats) in all {
                let (Some(tenant_name), Some(metric_name)) = (inner.dict.string(tenant), inner.dict.string(metric))
                else {
                    return Err(StoreError::corrupt("a key names a string the dictionary lacks"));
                };
                stats.tenant = tenant_name.to_string();
                stats.metric = metric_name.to_string();
                stats.layer = layers
                    .get(&(stats.tenant.clone(), stats.metric.clone()))
                    .copied()
                    .flatten();
                stats.retired_before = self.retired_cutoff(tenant, metric)?;
                metrics.push(stats);
            }
        }
        metrics.sort_by(|a, b| (&a.tenant, &a.metric).cmp(&(&b.tenant, &b.metric)));
        Ok(StoreStats {
            metrics,
            disk_bytes: directory_bytes(&self.path),
        })
    }

    /// Rows of a block that count: from its record, or (should the record
    /// be missing) the rows it holds.
    fn live_rows(&self, key: &BlockKey, value: &[u8]) -> Result<u64, StoreError> {
        if let Some(meta) = block_meta(&*self.db()?, key.block)? {
            return Ok(u64::from(meta.live));
        }
        let present = if key.retired {
            Block::<RetiredRow>::decode(value)?.rows.iter().flatten().count()
        } else {
            Block::<Row>::decode(value)?.rows.iter().flatten().count()
        };
        Ok(present as u64)
    }
}

/// The layer of a block's first row still there.
fn first_layer(value: &[u8], retired: bool) -> Result<Option<Layer>, StoreError> {
    let code = if retired {
        Block::<RetiredRow>::decode(value)?
            .rows
            .into_iter()
            .flatten()
            .next()
            .map(|r| r.layer)
    } else {
        Block::<Row>::decode(value)?
            .rows
            .into_iter()
            .flatten()
            .next()
            .map(|r| r.layer)
    };
    Ok(code.map(keys::layer_from_code))
}

/// The cells of a stored rollup set, read from postcard's length prefix
/// (a map starts with its length as a varint) without decoding the cells.
fn cells_in_set(value: &[u8]) -> Result<u64, StoreError> {
    postcard::take_from_bytes::<u64>(value)
        .map(|(cells, _)| cells)
        .map_err(|e| StoreError::Corrupt(format!("stored rollups do not decode: {e}")))
}

/// Bytes of every file under `dir` (sled's files and the index's).
fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
