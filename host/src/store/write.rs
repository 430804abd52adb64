//! Committing a batch: rows, index, rollups, dictionary and cursor in one
//! atomic sled batch. A replayed record changes nothing; a changed record
//! replaces the old one and every rollup it touched follows.

use super::dict::Dictionary;
use super::keys::{self, Cell};
use super::model::{Provenance, Row, StoredObservation, is_rating, layer_code, layer_from_code};
use super::rollup::Rollup;
use super::{Store, StoreError};
use crate::runtime::Observation;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One batch from a connector instance and the cursor that follows it.
#[derive(Debug, Clone, Copy)]
pub struct CommitBatch<'a> {
    /// Tenant the data belongs to.
    pub tenant: &'a str,
    /// Connector instance that emitted it.
    pub source: &'a str,
    /// Where it came from.
    pub provenance: &'a Provenance,
    /// The observations; a repeated (id, metric) keeps the last.
    pub observations: &'a [Observation],
    /// The cursor to store with it, if any.
    pub cursor: Option<&'a str>,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommitSummary {
    /// New rows.
    pub inserted: usize,
    /// Rows that replaced a stored row with other data.
    pub replaced: usize,
    /// Rows identical to what was stored (a replay).
    pub unchanged: usize,
}

/// The batch being built: key writes in order, plus what the rollups need.
struct Pending {
    ops: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    cells: HashMap<Cell, (Rollup, bool)>,
    /// Dictionary ids of the dimensions that get no rollup cells.
    unrolled: Vec<u32>,
}

impl Store {
    /// Commits `batch` atomically; on error nothing of it is stored.
    pub fn commit(&self, batch: CommitBatch<'_>) -> Result<CommitSummary, StoreError> {
        let mut dict = self.lock()?;
        let result = self.commit_locked(&mut dict, batch);
        if result.is_err() {
            // Ids handed out for the failed batch were never written.
            *dict = Dictionary::load(&self.db)?;
        }
        result
    }

    fn commit_locked(&self, dict: &mut Dictionary, batch: CommitBatch<'_>) -> Result<CommitSummary, StoreError> {
        let tenant = dict.intern(batch.tenant);
        let source = dict.intern(batch.source);
        let provenance = dict.intern(&provenance_key(batch.provenance));
        let mut pending = Pending {
            ops: BTreeMap::new(),
            cells: HashMap::new(),
            unrolled: keys::UNROLLED_DIMENSIONS.iter().map(|d| dict.intern(d)).collect(),
        };
        let mut summary = CommitSummary::default();
        let subjects: Vec<u32> = keys::SUBJECT_DIMENSIONS.iter().map(|d| dict.intern(d)).collect();
        for observation in last_of_each(batch.observations) {
            validate(observation)?;
            let metric = dict.intern(&observation.metric);
            let row = Row {
                value: observation.value,
                layer: layer_code(observation.layer),
                dimensions: sorted_dimensions(dict, observation),
                provenance,
            };
            let index_key = keys::index(tenant, source, &observation.id, metric);
            let new_key = keys::observation(tenant, metric, observation.at, source, &observation.id);
            let rating = is_rating(&observation.metric);
            if let Some(entry) = self.current(&pending, &index_key)? {
                let old_at = entry.at;
                let old_key = keys::observation(tenant, metric, old_at, source, &observation.id);
                let old_row = match entry.retired {
                    Some(row) => row,
                    None => self.row(&pending, &old_key)?,
                };
                if old_at == observation.at && old_row.same_data(&row) {
                    summary.unchanged += 1;
                    continue;
                }
                self.retract(&mut pending, tenant, metric, old_at, &old_row)?;
                for dim in subject_dimensions(&subjects, &old_row) {
                    pending
                        .ops
                        .insert(keys::subject(tenant, dim, metric, source, &observation.id), None);
                }
                pending.ops.insert(old_key, None);
                summary.replaced += 1;
            } else {
                summary.inserted += 1;
            }
            self.account(&mut pending, tenant, metric, observation.at, &row, rating)?;
            for dim in subject_dimensions(&subjects, &row) {
                pending.ops.insert(
                    keys::subject(tenant, dim, metric, source, &observation.id),
                    Some(Vec::new()),
                );
            }
            pending.ops.insert(new_key, Some(encode(&row)?));
            pending.ops.insert(index_key, Some(IndexEntry::live(observation.at)));
        }
        self.settle_cells(&mut pending, dict)?;
        if let Some(cursor) = batch.cursor {
            pending
                .ops
                .insert(keys::cursor(tenant, source), Some(cursor.as_bytes().to_vec()));
        }
        let mut ops = sled::Batch::default();
        dict.write_pending(&mut ops);
        for (key, value) in pending.ops {
            match value {
                Some(value) => ops.insert(key, value),
                None => ops.remove(key),
            }
        }
        self.db.apply_batch(ops)?;
        if self.durable {
            self.db.flush()?;
        }
        Ok(summary)
    }

    /// The index entry of a record, seeing this batch's own writes.
    fn current(&self, pending: &Pending, index_key: &[u8]) -> Result<Option<IndexEntry>, StoreError> {
        let bytes = match pending.ops.get(index_key) {
            Some(Some(bytes)) => Some(bytes.clone()),
            Some(None) => None,
            None => self.db.get(index_key)?.map(|v| v.to_vec()),
        };
        bytes.map(|b| IndexEntry::decode(&b)).transpose()
    }

    fn row(&self, pending: &Pending, key: &[u8]) -> Result<Row, StoreError> {
        let bytes = match pending.ops.get(key) {
            Some(Some(bytes)) => bytes.clone(),
            _ => self
                .db
                .get(key)?
                .map(|v| v.to_vec())
                .ok_or_else(|| StoreError::corrupt("an index entry points at a missing observation"))?,
        };
        decode(&bytes)
    }

    /// The cells an observation counts in: the day's total and one per
    /// rolled-up dimension.
    fn cells_of<'r>(
        tenant: u32,
        metric: u32,
        at: i64,
        row: &'r Row,
        unrolled: &'r [u32],
    ) -> impl Iterator<Item = Cell> + 'r {
        let day = keys::day_of(at);
        let dims = row.dimensions.iter().copied().filter(|(k, _)| !unrolled.contains(k));
        std::iter::once((0, 0))
            .chain(dims)
            .map(move |(dim_key, dim_value)| Cell {
                tenant,
                metric,
                day,
                dim_key,
                dim_value,
            })
    }

    fn cell<'p>(&self, pending: &'p mut Pending, cell: Cell) -> Result<&'p mut (Rollup, bool), StoreError> {
        use std::collections::hash_map::Entry;
        Ok(match pending.cells.entry(cell) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let stored = match self.db.get(cell.key())? {
                    Some(bytes) => decode_rollup(&bytes)?,
                    None => Rollup::default(),
                };
                entry.insert((stored, false))
            }
        })
    }

    fn account(
        &self,
        pending: &mut Pending,
        tenant: u32,
        metric: u32,
        at: i64,
        row: &Row,
        rating: bool,
    ) -> Result<(), StoreError> {
        let cells: Vec<Cell> = Self::cells_of(tenant, metric, at, row, &pending.unrolled).collect();
        for cell in cells {
            let (rollup, _) = self.cell(pending, cell)?;
            rollup.add(row.value, rating);
        }
        Ok(())
    }

    fn retract(&self, pending: &mut Pending, tenant: u32, metric: u32, at: i64, row: &Row) -> Result<(), StoreError> {
        let cells: Vec<Cell> = Self::cells_of(tenant, metric, at, row, &pending.unrolled).collect();
        for cell in cells {
            let (rollup, dirty) = self.cell(pending, cell)?;
            if !rollup.remove(row.value) {
                *dirty = true;
            }
        }
        Ok(())
    }

    /// Writes every touched cell; a cell that lost an extreme is recomputed
    /// from its rows (as they will be after this batch).
    fn settle_cells(&self, pending: &mut Pending, dict: &Dictionary) -> Result<(), StoreError> {
        let cells: Vec<(Cell, (Rollup, bool))> = pending.cells.drain().collect();
        for (cell, (mut rollup, dirty)) in cells {
            // Rows of a day past retention are gone: its cell keeps count,
            // sum, histogram and sketch exact, and min/max as they were.
            if dirty && !self.retired(cell.tenant, cell.day)? {
                let metric = dict.string(cell.metric).unwrap_or_default().to_string();
                rollup = self.recompute(pending, cell, is_rating(&metric))?;
            }
            let value = if rollup.count == 0 {
                None
            } else {
                Some(encode_rollup(&rollup)?)
            };
            pending.ops.insert(cell.key(), value);
        }
        Ok(())
    }

    fn recompute(&self, pending: &Pending, cell: Cell, rating: bool) -> Result<Rollup, StoreError> {
        let from = i64::from(cell.day) * keys::DAY_MS;
        let (start, end) = keys::observation_range(cell.tenant, cell.metric, from, from + keys::DAY_MS);
        let mut rows: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for entry in self.db.range(start.clone()..end.clone()) {
            let (key, value) = entry?;
            rows.insert(key.to_vec(), Some(value.to_vec()));
        }
        for (key, value) in pending.ops.range(start..end) {
            rows.insert(key.clone(), value.clone());
        }
        let mut rollup = Rollup::default();
        for bytes in rows.values().flatten() {
            let row = decode(bytes)?;
            let counts = cell.dim_key == 0 || row.dimensions.contains(&(cell.dim_key, cell.dim_value));
            if counts {
                rollup.add(row.value, rating);
            }
        }
        Ok(rollup)
    }
}

/// The row's dimensions that name a subject.
fn subject_dimensions<'r>(subjects: &'r [u32], row: &'r Row) -> impl Iterator<Item = (u32, u32)> + 'r {
    row.dimensions.iter().copied().filter(|(k, _)| subjects.contains(k))
}

/// An index entry: where the record's row is, or, once retention dropped
/// the row, the row itself, so a later replace can still take its old
/// contribution out of the rollups.
pub(crate) struct IndexEntry {
    pub at: i64,
    pub retired: Option<Row>,
}

impl IndexEntry {
    pub fn live(at: i64) -> Vec<u8> {
        at.to_be_bytes().to_vec()
    }

    pub fn retired(at: i64, row: &Row) -> Result<Vec<u8>, StoreError> {
        let mut bytes = at.to_be_bytes().to_vec();
        bytes.extend_from_slice(&encode(row)?);
        Ok(bytes)
    }

    pub fn decode(bytes: &[u8]) -> Result<IndexEntry, StoreError> {
        let (at, rest) = bytes
            .split_at_checked(8)
            .ok_or_else(|| StoreError::corrupt("an index entry is too short"))?;
        let at = i64::from_be_bytes(
            at.try_into()
                .map_err(|_| StoreError::corrupt("an index entry is too short"))?,
        );
        let retired = if rest.is_empty() { None } else { Some(decode(rest)?) };
        Ok(IndexEntry { at, retired })
    }
}

fn provenance_key(p: &Provenance) -> String {
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

/// The last observation of each (id, metric), in first-seen order.
fn last_of_each(observations: &[Observation]) -> Vec<&Observation> {
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, o) in observations.iter().enumerate() {
        last.insert((o.id.as_str(), o.metric.as_str()), i);
    }
    let keep: HashSet<usize> = last.into_values().collect();
    observations
        .iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, o)| o)
        .collect()
}

fn validate(o: &Observation) -> Result<(), StoreError> {
    let refuse = |reason: &str| StoreError::BadObservation {
        id: o.id.chars().take(100).collect(),
        metric: o.metric.chars().take(100).collect(),
        reason: reason.to_string(),
    };
    if o.id.is_empty() || o.id.len() > 512 {
        return Err(refuse("the id must be 1 to 512 bytes"));
    }
    if o.metric.is_empty() || o.metric.len() > 128 {
        return Err(refuse("the metric name must be 1 to 128 bytes"));
    }
    if !o.value.is_finite() {
        return Err(refuse("the value is not a finite number"));
    }
    let mut keys: Vec<&str> = o.dimensions.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(refuse("a dimension key appears twice"));
    }
    Ok(())
}

fn sorted_dimensions(dict: &mut Dictionary, o: &Observation) -> Vec<(u32, u32)> {
    let mut dims: Vec<(u32, u32)> = o
        .dimensions
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (dict.intern(k), dict.intern(v)))
        .collect();
    dims.sort_unstable();
    dims
}

pub(crate) fn encode(row: &Row) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(row).map_err(|e| StoreError::Corrupt(format!("encoding a row: {e}")))
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Row, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("a stored row does not decode: {e}")))
}

fn encode_rollup(rollup: &Rollup) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(rollup).map_err(|e| StoreError::Corrupt(format!("encoding a rollup: {e}")))
}

pub(crate) fn decode_rollup(bytes: &[u8]) -> Result<Rollup, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("a stored rollup does not decode: {e}")))
}

/// Raw rows of a tenant's metric in `[from, to)`, strings restored.
pub(crate) fn read_range(
    db: &sled::Db,
    dict: &Dictionary,
    tenant: &str,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<StoredObservation>, StoreError> {
    let (Some(tenant_id), Some(metric_id)) = (dict.id(tenant), dict.id(metric)) else {
        return Ok(Vec::new());
    };
    let (start, end) = keys::observation_range(tenant_id, metric_id, from, to);
    let mut out = Vec::new();
    for entry in db.range(start..end) {
        let (key, value) = entry?;
        let parsed =
            keys::parse_observation(&key).ok_or_else(|| StoreError::corrupt("an observation key does not parse"))?;
        out.push(restore(
            dict,
            tenant,
            metric_id,
            parsed.at,
            parsed.source,
            parsed.id,
            &decode(&value)?,
        )?);
    }
    Ok(out)
}

/// Every observation of one subject (say `ticket` = `INC0012345`), across
/// metrics and sources.
pub(crate) fn read_subject(
    db: &sled::Db,
    dict: &Dictionary,
    tenant: &str,
    dimension: &str,
    value: &str,
) -> Result<Vec<StoredObservation>, StoreError> {
    let (Some(tenant_id), Some(dim_key), Some(dim_value)) = (dict.id(tenant), dict.id(dimension), dict.id(value))
    else {
        return Ok(Vec::new());
    };
    let prefix = keys::subject_prefix(tenant_id, (dim_key, dim_value));
    let mut out = Vec::new();
    for entry in db.scan_prefix(&prefix) {
        let (key, _) = entry?;
        let rest = key.get(prefix.len()..).unwrap_or_default();
        let (Some(metric), Some(source)) = (
            rest.get(0..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes),
            rest.get(4..8).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes),
        ) else {
            return Err(StoreError::corrupt("a subject key is too short"));
        };
        let id = String::from_utf8_lossy(rest.get(8..).unwrap_or_default()).into_owned();
        let entry = db
            .get(keys::index(tenant_id, source, &id, metric))?
            .ok_or_else(|| StoreError::corrupt("a subject entry has no index entry"))?;
        let at = IndexEntry::decode(&entry)?.at;
        let row = db
            .get(keys::observation(tenant_id, metric, at, source, &id))?
            .ok_or_else(|| StoreError::corrupt("an index entry points at a missing observation"))?;
        out.push(restore(dict, tenant, metric, at, source, id, &decode(&row)?)?);
    }
    out.sort_by(|a, b| (a.observation.at, &a.observation.metric).cmp(&(b.observation.at, &b.observation.metric)));
    Ok(out)
}

/// A stored row with its strings restored from the dictionary.
fn restore(
    dict: &Dictionary,
    tenant: &str,
    metric: u32,
    at: i64,
    source: u32,
    id: String,
    row: &Row,
) -> Result<StoredObservation, StoreError> {
    let name = |id: u32| {
        dict.string(id)
            .map(str::to_string)
            .ok_or_else(|| StoreError::corrupt("a dictionary id is missing"))
    };
    let dimensions = row
        .dimensions
        .iter()
        .map(|(k, v)| Ok((name(*k)?, name(*v)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let provenance = dict
        .string(row.provenance)
        .and_then(provenance_from_key)
        .ok_or_else(|| StoreError::corrupt("provenance is missing"))?;
    Ok(StoredObservation {
        tenant: tenant.to_string(),
        source: name(source)?,
        observation: Observation {
            id,
            metric: name(metric)?,
            layer: layer_from_code(row.layer),
            value: row.value,
            at,
            dimensions,
        },
        provenance,
    })
}
