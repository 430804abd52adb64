//! Reading rows back: a metric's live rows over a range of days, one
//! subject's rows across metrics and sources, and stored rows with their
//! strings restored.

use super::block::{Block, Row, stored_record_fingerprint, subject_fingerprint};
use super::dict::Dictionary;
use super::index::{Index, Loc, block_meta};
use super::join::RowOfNumber;
use super::keys::layer_from_code;
use super::keys::{self, BlockKey, DAY_MS};
use super::{Inner, StoreError};
use crate::OrStore;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use xla_store::{Provenance, StoredObservation};
use xla_types::Observation;

/// Where a row came from: its block's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub source: u32,
    pub provenance: u32,
    /// The row's place: its block and slot.
    pub block: u64,
    pub slot: u32,
}

/// Calls `visit` with every live row of a tenant's metric on days
/// `[from_day, to_day)`, with its time.
pub(crate) fn for_each_live_row(
    db: &sled::Db,
    index: &Index,
    (tenant, metric): (u32, u32),
    (from_day, to_day): (i32, i32),
    mut visit: impl FnMut(Origin, i64, &Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (start, end) = keys::block_range(tenant, metric, from_day, to_day);
    for entry in db.range(start..end) {
        let (key, value) = entry.or_store()?;
        let key = BlockKey::parse(&key).ok_or_else(|| StoreError::corrupt("a block key does not parse"))?;
        let block: Block<Row> = Block::decode(&value)?;
        // A block none of whose rows was replaced needs no check per row.
        let all_live = block_meta(db, key.block)?.is_some_and(|m| m.live == m.present);
        let origin = Origin {
            source: block.source,
            provenance: block.provenance,
            block: key.block,
            slot: 0,
        };
        let day_start = i64::from(key.day) * DAY_MS;
        for (slot, row) in block.rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let live = all_live || {
                let loc = Loc {
                    block: key.block,
                    slot: slot as u32,
                };
                index.is_live(stored_record_fingerprint(tenant, block.source, metric, &row.id), loc)
            };
            if live {
                let origin = Origin {
                    slot: slot as u32,
                    ..origin
                };
                visit(origin, day_start + i64::from(row.offset), row)?;
            }
        }
    }
    Ok(())
}

/// Raw rows of a tenant's metric in `[from, to)`, strings restored, by time.
pub(crate) fn read_range(
    (db, dir): (&sled::Db, &Path),
    inner: &mut Inner,
    tenant: &str,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<StoredObservation>, StoreError> {
    let (dict, index) = inner.parts(db, dir)?;
    let (dict, index) = (&*dict, &*index);
    let (Some(tenant_id), Some(metric_id)) = (dict.id(tenant), dict.id(metric)) else {
        return Ok(Vec::new());
    };
    if from >= to {
        return Ok(Vec::new());
    }
    let days = (keys::day_of(from), keys::day_of(to - 1) + 1);
    let mut out = Vec::new();
    for_each_live_row(db, index, (tenant_id, metric_id), days, |origin, at, row| {
        if (from..to).contains(&at) {
            out.push(restore(dict, tenant, metric_id, origin, at, row)?);
        }
        Ok(())
    })?;
    out.sort_by(|a, b| {
        (a.observation.at, &a.source, &a.observation.id).cmp(&(b.observation.at, &b.source, &b.observation.id))
    });
    Ok(out)
}

/// Every observation of one subject (say `ticket` = `INC0012345`), across
/// metrics and sources, oldest first.
pub(crate) fn read_subject(
    (db, dir): (&sled::Db, &Path),
    inner: &mut Inner,
    tenant: &str,
    dimension: &str,
    value: &str,
) -> Result<Vec<StoredObservation>, StoreError> {
    let (dict, index) = inner.parts(db, dir)?;
    let (dict, index) = (&*dict, &*index);
    let (Some(tenant_id), Some(dim)) = (dict.id(tenant), dict.id(dimension)) else {
        return Ok(Vec::new());
    };
    let mut by_block: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    for loc in index.subject(subject_fingerprint(tenant_id, dim, value)) {
        by_block.entry(loc.block).or_default().insert(loc.slot);
    }
    // A ticket's rows are not listed under it in the index
    // (`index::SubjectDims`): the join keeps them under the number. (Blocks
    // of an earlier format list some of them there too: each row once.)
    if dimension == xla_store::JOIN_KEY {
        for row in super::join::rows_of_number(db, tenant_id, value)? {
            let loc = match row {
                RowOfNumber::Record(fingerprint) => index.record(fingerprint),
                RowOfNumber::At(block, slot) => Some(Loc { block, slot }),
            };
            if let Some(loc) = loc {
                by_block.entry(loc.block).or_default().insert(loc.slot);
            }
        }
    }
    let mut out = Vec::new();
    for (id, slots) in by_block {
        let Some(meta) = block_meta(db, id)?.filter(|m| !m.key.retired) else {
            continue;
        };
        let Some(bytes) = db.get(meta.key.key()).or_store()? else {
            continue;
        };
        let block: Block<Row> = Block::decode(&bytes)?;
        let origin = Origin {
            source: block.source,
            provenance: block.provenance,
            block: id,
            slot: 0,
        };
        for slot in slots {
            let Some(Some(row)) = block.rows.get(slot as usize) else {
                continue;
            };
            let fingerprint = stored_record_fingerprint(tenant_id, block.source, meta.key.metric, &row.id);
            let names_subject = row.inline.iter().any(|(k, v)| *k == dim && v == value);
            if names_subject && index.is_live(fingerprint, Loc { block: id, slot }) {
                let at = i64::from(meta.key.day) * DAY_MS + i64::from(row.offset);
                out.push(restore(dict, tenant, meta.key.metric, origin, at, row)?);
            }
        }
    }
    out.sort_by(|a, b| (a.observation.at, &a.observation.metric).cmp(&(b.observation.at, &b.observation.metric)));
    Ok(out)
}

/// A stored row with its strings restored from the dictionary.
pub(crate) fn restore(
    dict: &Dictionary,
    tenant: &str,
    metric: u32,
    origin: Origin,
    at: i64,
    row: &Row,
) -> Result<StoredObservation, StoreError> {
    let name = |id: u32| {
        dict.string(id)
            .map(str::to_string)
            .ok_or_else(|| StoreError::corrupt("a dictionary id is missing"))
    };
    let mut dimensions = row
        .dims
        .iter()
        .map(|(k, v)| Ok((name(*k)?, name(*v)?)))
        .chain(row.inline.iter().map(|(k, v)| Ok((name(*k)?, v.clone()))))
        .collect::<Result<Vec<_>, StoreError>>()?;
    dimensions.sort();
    let provenance = dict
        .string(origin.provenance)
        .and_then(provenance_from_key)
        .ok_or_else(|| StoreError::corrupt("provenance is missing"))?;
    Ok(StoredObservation {
        tenant: tenant.to_string(),
        source: name(origin.source)?,
        observation: Observation {
            id: row.id.to_text(),
            metric: name(metric)?,
            layer: layer_from_code(row.layer),
            value: row.value.get(),
            at,
            dimensions,
        },
        provenance,
    })
}

/// Provenance as one dictionary string.
pub(crate) fn provenance_key(p: &Provenance) -> String {
    format!(
        "prov\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        p.connector, p.plugin, p.version, p.sha256, p.sync_run
    )
}

fn provenance_from_key(s: &str) -> Option<Provenance> {
    let mut parts = s.strip_prefix("prov\u{1f}")?.split('\u{1f}');
    Some(Provenance {
        connector: parts.next()?.to_string(),
        plugin: parts.next()?.to_string(),
        version: parts.next()?.to_string(),
        sha256: parts.next()?.to_string(),
        sync_run: parts.next()?.parse().ok()?,
    })
}
