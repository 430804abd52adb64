//! Committing a batch: its rows, the rollup cells they change, the
//! source's gaps, written metrics and cursor, in one transaction.
//!
//! Two locks keep concurrent writers exact, both advisory and held to the
//! end of the transaction: one per (tenant, source), so two commits of one
//! connector instance never decide "insert" for the same record at once;
//! and one per (tenant, metric, day) whose cells change, taken in sorted
//! order (no deadlock), so a cell is read and written back by one
//! transaction at a time, on any host.

use super::{Inner, OrStore, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tokio_postgres::Transaction;
use xla_store::{CommitBatch, CommitSummary, DAY_MS, JOIN_KEY, Rollup, UNROLLED_DIMENSIONS, day_of, is_rating};
use xla_types::{Layer, Observation};

/// A stored value as a commit reads it back.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub record_id: String,
    pub metric: String,
    pub at: i64,
    pub value: f64,
    pub layer: Layer,
    pub dimensions: Vec<(String, String)>,
    /// Retention dropped its raw row: what is kept has only the rolled-up
    /// dimensions, and the ticket number apart.
    pub retired: bool,
    /// A retired row's ticket number.
    pub ticket: Option<String>,
}

/// A rollup cell's key within a tenant: dimension and value `''` for the
/// cell of all the day's rows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CellKey {
    pub metric: String,
    pub dimension: String,
    pub day: i32,
    pub value: String,
}

/// What happens to one cell.
#[derive(Default)]
struct CellChange {
    removed: Vec<f64>,
    added: Vec<f64>,
}

/// The layer as stored (`experience`, `operational`, `technical`).
pub(crate) fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Experience => "experience",
        Layer::Operational => "operational",
        Layer::Technical => "technical",
    }
}

/// The layer of a stored name.
pub(crate) fn parse_layer(name: &str) -> Result<Layer, StoreError> {
    match name {
        "experience" => Ok(Layer::Experience),
        "operational" => Ok(Layer::Operational),
        "technical" => Ok(Layer::Technical),
        other => Err(StoreError::corrupt(format!("a stored layer `{other}` is not one"))),
    }
}

/// The advisory lock of a tenant: commits hold it shared, retention
/// exclusive.
pub(crate) fn tenant_lock(tenant: &str) -> i64 {
    lock_key(&[b"tenant", tenant.as_bytes()])
}

/// An advisory lock key for `parts`.
pub(crate) fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    xxhash_rust::xxh3::xxh3_64(&bytes) as i64
}

/// The batch's values in order, dimensions sorted, the last of each
/// (id, metric) kept.
fn values(batch: &CommitBatch) -> Vec<Observation> {
    let mut all: Vec<Observation> = batch.observations.clone();
    all.extend(batch.records.iter().flat_map(xla_types::Record::observations));
    for o in &mut all {
        // An empty value names nothing (sled drops it too).
        o.dimensions.retain(|(_, v)| !v.is_empty());
        o.dimensions.sort();
    }
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(all.len());
    for (i, o) in all.iter().enumerate() {
        last.insert((o.id.as_str(), o.metric.as_str()), i);
    }
    let keep: HashSet<usize> = last.into_values().collect();
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, o)| o)
        .collect()
}

/// Checks every part of the batch before anything is written.
fn check(batch: &CommitBatch) -> Result<(), StoreError> {
    batch.observations.iter().try_for_each(xla_store::check_observation)?;
    batch.records.iter().try_for_each(xla_store::check_record)?;
    check_text(batch)?;
    batch.retractions.iter().try_for_each(xla_store::check_retracted)?;
    for id in &batch.retracted_records {
        xla_types::Retraction::record(id.as_str()).check().map_err(|reason| {
            StoreError::BadRequest(format!(
                "the retracted record `{}` was refused: {reason}; nothing of its batch was stored",
                xla_types::untrusted::escape_capped(id, 100)
            ))
        })?;
    }
    Ok(())
}

/// Refuses text PostgreSQL cannot store (a NUL character in `text` or
/// `jsonb`) before anything is written, naming where it is.
fn check_text(batch: &CommitBatch) -> Result<(), StoreError> {
    let nul = |text: &str| text.contains('\0');
    let refuse = |id: &str, metric: &str| StoreError::BadObservation {
        id: xla_types::untrusted::escape_capped(id, 100).into_owned(),
        metric: xla_types::untrusted::escape_capped(metric, 100).into_owned(),
        reason: "it contains a NUL character, which the PostgreSQL store cannot keep".into(),
    };
    for o in &batch.observations {
        if nul(&o.id) || nul(&o.metric) || o.dimensions.iter().any(|(k, v)| nul(k) || nul(v)) {
            return Err(refuse(&o.id, &o.metric));
        }
    }
    for r in &batch.records {
        let metric = r.values.first().map_or("", |v| v.metric.as_str());
        if nul(&r.id) || r.values.iter().any(|v| nul(&v.metric)) || r.dimensions.iter().any(|(k, v)| nul(k) || nul(v)) {
            return Err(refuse(&r.id, metric));
        }
    }
    if [&batch.tenant, &batch.source]
        .into_iter()
        .chain(&batch.cursor)
        .any(|t| nul(t))
    {
        return Err(StoreError::BadRequest(
            "the batch's tenant, source or cursor contains a NUL character, which the PostgreSQL store cannot keep"
                .into(),
        ));
    }
    Ok(())
}

/// Commits `batch` (see [`xla_store::Store::commit`]).
pub(crate) async fn commit(inner: &Inner, batch: &CommitBatch) -> Result<CommitSummary, StoreError> {
    check(batch)?;
    let retracted: HashSet<(&str, &str)> = batch
        .retractions
        .iter()
        .map(|r| (r.id.as_str(), r.metric.as_str()))
        .collect();
    let whole: HashSet<&str> = batch.retracted_records.iter().map(String::as_str).collect();
    let kept: Vec<Observation> = values(batch)
        .into_iter()
        .filter(|o| !retracted.contains(&(o.id.as_str(), o.metric.as_str())) && !whole.contains(o.id.as_str()))
        .collect();
    let mut client = inner.client().await?;
    let months = kept.iter().map(|o| super::partitions::month_of(o.at)).collect();
    inner.partitions.ensure(&mut client, months).await?;
    // Read committed, whatever the database's default: each step reads
    // what the commits it waited for (its locks) wrote.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .or_store()?;
    let (tenant, source) = (batch.tenant.as_str(), batch.source.as_str());
    // Shared with other commits, exclusive with retention (which moves rows
    // and cutoffs this commit reads), then this instance's own.
    tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&tenant_lock(tenant)])
        .await
        .or_store()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key(&[b"source", tenant.as_bytes(), source.as_bytes()])],
    )
    .await
    .or_store()?;
    // A run whose lease was taken over writes nothing behind its successor,
    // and a takeover waits for this commit to end.
    super::lease::check(&*tx, tenant, source, batch.lease).await?;
    let provenance = save_provenance(&tx, tenant, &batch.provenance).await?;
    let mut wanted: Vec<(&str, &str)> = kept.iter().map(|o| (o.id.as_str(), o.metric.as_str())).collect();
    wanted.extend(retracted.iter().copied());
    let old = stored(&tx, tenant, source, &wanted, &batch.retracted_records).await?;

    let mut summary = CommitSummary::default();
    let mut removes: Vec<&Stored> = Vec::new();
    let mut inserts: Vec<&Observation> = Vec::new();
    for o in &kept {
        match old.get(&(o.id.clone(), o.metric.clone())) {
            Some(stored) if same(stored, o) => summary.unchanged += 1,
            Some(stored) => {
                removes.push(stored);
                inserts.push(o);
                summary.replaced += 1;
            }
            None => {
                inserts.push(o);
                summary.inserted += 1;
            }
        }
    }
    let mut dropped_keys: Vec<&Stored> = Vec::new();
    for stored in old.values() {
        let key = (stored.record_id.as_str(), stored.metric.as_str());
        if retracted.contains(&key) || whole.contains(stored.record_id.as_str()) {
            removes.push(stored);
            dropped_keys.push(stored);
            summary.retracted += 1;
        }
    }

    delete_rows(&tx, tenant, source, &removes).await?;
    delete_keys(&tx, tenant, source, &dropped_keys).await?;
    insert_rows(&tx, tenant, source, provenance, &inserts).await?;
    let cutoffs = super::retention::Cutoffs::new(tx.query(super::retention::CUTOFFS, &[&tenant]).await.or_store()?);
    settle_rollups(&tx, tenant, &cutoffs, &removes, &inserts).await?;
    // After the rollups' day locks: every commit takes its locks in the same order.
    super::joined::settle(&tx, tenant, source, &removes, &inserts).await?;
    if !batch.partial.is_empty() || !batch.complete.is_empty() {
        settle_gaps(&tx, tenant, source, batch).await?;
    }
    note_written(&tx, tenant, source, &inserts).await?;
    if let Some(cursor) = &batch.cursor {
        tx.execute(
            "INSERT INTO cursors (tenant_id, source, cursor) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, source) DO UPDATE SET cursor = EXCLUDED.cursor",
            &[&tenant, &source, cursor],
        )
        .await
        .or_store()?;
    }
    tx.commit().await.or_store()?;
    // After the commit, so a host that sees the version sees the data.
    inner.bump_version(&client).await?;
    Ok(summary)
}

/// Whether a stored value says the same as `o` (provenance aside: a replay
/// from a later run is unchanged). Of a retired row, the time, value,
/// layer, rolled-up dimensions and ticket number are left to compare.
fn same(stored: &Stored, o: &Observation) -> bool {
    let common = stored.at == o.at && stored.value.to_bits() == o.value.to_bits() && stored.layer == o.layer;
    if stored.retired {
        let rolled = o
            .dimensions
            .iter()
            .filter(|(k, _)| !UNROLLED_DIMENSIONS.contains(&k.as_str()));
        common && stored.dimensions.iter().eq(rolled) && stored.ticket.as_deref() == dimension(&o.dimensions, JOIN_KEY)
    } else {
        common && stored.dimensions == o.dimensions
    }
}

/// Stores the batch's provenance once per tenant and returns its id (a
/// hash of it).
async fn save_provenance(
    tx: &Transaction<'_>,
    tenant: &str,
    provenance: &xla_store::Provenance,
) -> Result<i64, StoreError> {
    let json = serde_json::to_value(provenance).map_err(|e| StoreError::corrupt(format!("a provenance: {e}")))?;
    let id = xxhash_rust::xxh3::xxh3_64(json.to_string().as_bytes()) as i64;
    tx.execute(
        "INSERT INTO provenances (tenant_id, id, provenance) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[&tenant, &id, &json],
    )
    .await
    .or_store()?;
    Ok(id)
}

/// The stored values among `wanted` (record id, metric) and of the whole
/// `records`, by (record id, metric), their keys locked.
async fn stored(
    tx: &Transaction<'_>,
    tenant: &str,
    source: &str,
    wanted: &[(&str, &str)],
    records: &[String],
) -> Result<HashMap<(String, String), Stored>, StoreError> {
    let mut ids: Vec<&str> = wanted.iter().map(|(id, _)| *id).collect();
    ids.extend(records.iter().map(String::as_str));
    ids.sort_unstable();
    ids.dedup();
    let wanted: HashSet<(&str, &str)> = wanted.iter().copied().collect();
    let whole: HashSet<&str> = records.iter().map(String::as_str).collect();
    // Keys in key order, as retention locks them.
    let rows = tx
        .query(
            "SELECT k.record_id, k.metric, k.at, coalesce(o.value, r.value), coalesce(o.layer, r.layer), \
                    coalesce(o.dimensions, r.dimensions), o.record_id IS NULL, r.ticket \
             FROM observation_keys k \
             LEFT JOIN observations o ON o.tenant_id = k.tenant_id AND o.metric = k.metric AND o.at = k.at \
                                     AND o.source = k.source AND o.record_id = k.record_id \
             LEFT JOIN retired_observations r ON r.tenant_id = k.tenant_id AND r.source = k.source \
                                             AND r.record_id = k.record_id AND r.metric = k.metric \
             WHERE k.tenant_id = $1 AND k.source = $2 AND k.record_id = ANY($3) \
             ORDER BY k.record_id, k.metric \
             FOR UPDATE OF k",
            &[&tenant, &source, &ids],
        )
        .await
        .or_store()?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let value: Option<f64> = row.get(3);
        if value.is_none() {
            return Err(StoreError::corrupt(
                "a stored value's key names a row that is neither raw nor retired",
            ));
        }
        let mut stored = stored_of(&row, 0)?;
        let key = (stored.record_id.as_str(), stored.metric.as_str());
        if !(wanted.contains(&key) || whole.contains(key.0)) {
            continue;
        }
        stored.retired = row.get(6);
        stored.ticket = row.get(7);
        found.insert((stored.record_id.clone(), stored.metric.clone()), stored);
    }
    Ok(found)
}

/// A [`Stored`] from columns record_id, metric, at, value, layer,
/// dimensions starting at `first`.
pub(crate) fn stored_of(row: &tokio_postgres::Row, first: usize) -> Result<Stored, StoreError> {
    let dimensions: serde_json::Value = row.get(first + 5);
    Ok(Stored {
        record_id: row.get(first),
        metric: row.get(first + 1),
        at: row.get(first + 2),
        value: row.get(first + 3),
        layer: parse_layer(row.get(first + 4))?,
        dimensions: serde_json::from_value(dimensions)
            .map_err(|e| StoreError::corrupt(format!("stored dimensions: {e}")))?,
        retired: false,
        ticket: None,
    })
}

async fn delete_rows(tx: &Transaction<'_>, tenant: &str, source: &str, rows: &[&Stored]) -> Result<(), StoreError> {
    let (retired, raw): (Vec<&Stored>, Vec<&Stored>) = rows.iter().partition(|r| r.retired);
    if !retired.is_empty() {
        let ids: Vec<&str> = retired.iter().map(|r| r.record_id.as_str()).collect();
        let metrics: Vec<&str> = retired.iter().map(|r| r.metric.as_str()).collect();
        tx.execute(
            "DELETE FROM retired_observations WHERE tenant_id = $1 AND source = $2 \
             AND (record_id, metric) IN (SELECT * FROM unnest($3::text[], $4::text[]))",
            &[&tenant, &source, &ids, &metrics],
        )
        .await
        .or_store()?;
    }
    let rows = raw;
    if rows.is_empty() {
        return Ok(());
    }
    let metrics: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
    let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.record_id.as_str()).collect();
    tx.execute(
        "DELETE FROM observations WHERE tenant_id = $1 AND source = $2 \
         AND (metric, at, record_id) IN (SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[]))",
        &[&tenant, &source, &metrics, &ats, &ids],
    )
    .await
    .or_store()?;
    Ok(())
}

async fn delete_keys(tx: &Transaction<'_>, tenant: &str, source: &str, rows: &[&Stored]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.record_id.as_str()).collect();
    let metrics: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
    tx.execute(
        "DELETE FROM observation_keys WHERE tenant_id = $1 AND source = $2 \
         AND (record_id, metric) IN (SELECT * FROM unnest($3::text[], $4::text[]))",
        &[&tenant, &source, &ids, &metrics],
    )
    .await
    .or_store()?;
    Ok(())
}

/// The value of `key` among `dimensions`.
pub(crate) fn dimension<'d>(dimensions: &'d [(String, String)], key: &str) -> Option<&'d str> {
    dimensions.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn insert_rows(
    tx: &Transaction<'_>,
    tenant: &str,
    source: &str,
    provenance: i64,
    rows: &[&Observation],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let metrics: Vec<&str> = rows.iter().map(|o| o.metric.as_str()).collect();
    let ats: Vec<i64> = rows.iter().map(|o| o.at).collect();
    let ids: Vec<&str> = rows.iter().map(|o| o.id.as_str()).collect();
    let values: Vec<f64> = rows.iter().map(|o| o.value).collect();
    let layers: Vec<&str> = rows.iter().map(|o| layer_name(o.layer)).collect();
    let dimensions: Vec<serde_json::Value> = rows
        .iter()
        .map(|o| serde_json::to_value(&o.dimensions))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::corrupt(format!("encoding dimensions: {e}")))?;
    let tickets: Vec<Option<&str>> = rows.iter().map(|o| dimension(&o.dimensions, "ticket")).collect();
    let devices: Vec<Option<&str>> = rows.iter().map(|o| dimension(&o.dimensions, "device")).collect();
    tx.execute(
        "INSERT INTO observations (tenant_id, metric, at, source, record_id, value, layer, dimensions, provenance_id, ticket, device) \
         SELECT $1, m, a, $2, r, v, l, d, $3, t, dv \
         FROM unnest($4::text[], $5::bigint[], $6::text[], $7::float8[], $8::text[], $9::jsonb[], $10::text[], $11::text[]) \
              AS u(m, a, r, v, l, d, t, dv)",
        &[&tenant, &source, &provenance, &metrics, &ats, &ids, &values, &layers, &dimensions, &tickets, &devices],
    )
    .await
    .or_store()?;
    tx.execute(
        "INSERT INTO observation_keys (tenant_id, source, record_id, metric, at) \
         SELECT $1, $2, r, m, a FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u(r, m, a) \
         ON CONFLICT (tenant_id, source, record_id, metric) DO UPDATE SET at = EXCLUDED.at",
        &[&tenant, &source, &ids, &metrics, &ats],
    )
    .await
    .or_store()?;
    Ok(())
}

/// The cells a value counts in: every row of its day, and each rolled-up
/// dimension's value.
fn cells_of<'d>(metric: &str, at: i64, dimensions: &'d [(String, String)]) -> impl Iterator<Item = CellKey> + 'd {
    let (metric, day) = (metric.to_string(), day_of(at));
    let all = CellKey {
        metric: metric.clone(),
        dimension: String::new(),
        day,
        value: String::new(),
    };
    std::iter::once(all).chain(
        dimensions
            .iter()
            .filter(|(k, _)| !UNROLLED_DIMENSIONS.contains(&k.as_str()))
            .map(move |(k, v)| CellKey {
                metric: metric.clone(),
                dimension: k.clone(),
                day,
                value: v.clone(),
            }),
    )
}

/// Applies the batch's removed and added values to their cells, exactly:
/// a cell whose minimum or maximum was removed is recomputed from the rows
/// (on a day retention retired, the rows are gone: min and max stay).
async fn settle_rollups(
    tx: &Transaction<'_>,
    tenant: &str,
    cutoffs: &super::retention::Cutoffs,
    removes: &[&Stored],
    inserts: &[&Observation],
) -> Result<(), StoreError> {
    let mut changes: BTreeMap<CellKey, CellChange> = BTreeMap::new();
    for stored in removes {
        for key in cells_of(&stored.metric, stored.at, &stored.dimensions) {
            changes.entry(key).or_default().removed.push(stored.value);
        }
    }
    for o in inserts {
        for key in cells_of(&o.metric, o.at, &o.dimensions) {
            changes.entry(key).or_default().added.push(o.value);
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let days: BTreeSet<(&str, i32)> = changes.keys().map(|k| (k.metric.as_str(), k.day)).collect();
    for (metric, day) in &days {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&lock_key(&[
                b"day",
                tenant.as_bytes(),
                metric.as_bytes(),
                &day.to_be_bytes(),
            ])],
        )
        .await
        .or_store()?;
    }
    let mut cells = read_cells(tx, tenant, changes.keys()).await?;
    let mut recompute: Vec<CellKey> = Vec::new();
    for (key, change) in &changes {
        let rating = is_rating(&key.metric);
        let cell = cells.entry(key.clone()).or_default();
        let mut exact = true;
        for value in &change.removed {
            exact &= cell.remove(*value);
        }
        if exact || cutoffs.retired(&key.metric, key.day) {
            for value in &change.added {
                cell.add(*value, rating);
            }
        } else {
            recompute.push(key.clone());
        }
    }
    for key in recompute {
        let cell = cell_from_rows(tx, tenant, &key).await?;
        cells.insert(key, cell);
    }
    write_cells(tx, tenant, &cells).await
}

/// The stored cells among `keys`.
async fn read_cells<'k>(
    tx: &Transaction<'_>,
    tenant: &str,
    keys: impl Iterator<Item = &'k CellKey>,
) -> Result<BTreeMap<CellKey, Rollup>, StoreError> {
    let (mut metrics, mut dimensions, mut days, mut values) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for key in keys {
        metrics.push(key.metric.as_str());
        dimensions.push(key.dimension.as_str());
        days.push(key.day);
        values.push(key.value.as_str());
    }
    let rows = tx
        .query(
            "SELECT metric, dimension, day, value, count, sum, min, max, histogram, sketch FROM rollups \
             WHERE tenant_id = $1 AND (metric, dimension, day, value) IN \
                   (SELECT * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]))",
            &[&tenant, &metrics, &dimensions, &days, &values],
        )
        .await
        .or_store()?;
    let mut cells = BTreeMap::new();
    for row in rows {
        let key = CellKey {
            metric: row.get(0),
            dimension: row.get(1),
            day: row.get(2),
            value: row.get(3),
        };
        cells.insert(key, super::read::rollup_of(&row, 4)?);
    }
    Ok(cells)
}

/// Whether a row's `dimensions` hold the pair ($5, $6): key and value
/// compared as such (a JSON containment test would take `["v", "k"]` for
/// `["k", "v"]`).
pub(crate) const HAS_DIMENSION: &str =
    "EXISTS (SELECT 1 FROM jsonb_array_elements(dimensions) e WHERE e->>0 = $5 AND e->>1 = $6)";

/// A cell computed from the rows its key selects.
async fn cell_from_rows(tx: &Transaction<'_>, tenant: &str, key: &CellKey) -> Result<Rollup, StoreError> {
    let (from, to) = (i64::from(key.day) * DAY_MS, (i64::from(key.day) + 1) * DAY_MS);
    let rows = if key.dimension.is_empty() {
        tx.query(
            "SELECT value FROM observations WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4",
            &[&tenant, &key.metric, &from, &to],
        )
        .await
    } else {
        tx.query(
            &format!(
                "SELECT value FROM observations WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4 \
                 AND {HAS_DIMENSION}"
            ),
            &[&tenant, &key.metric, &from, &to, &key.dimension, &key.value],
        )
        .await
    }
    .or_store()?;
    let rating = is_rating(&key.metric);
    let mut cell = Rollup::default();
    for row in rows {
        cell.add(row.get(0), rating);
    }
    Ok(cell)
}

/// Writes cells back; an empty cell is deleted.
pub(crate) async fn write_cells(
    tx: &Transaction<'_>,
    tenant: &str,
    cells: &BTreeMap<CellKey, Rollup>,
) -> Result<(), StoreError> {
    let (empty, full): (Vec<_>, Vec<_>) = cells.iter().partition(|(_, cell)| cell.count == 0);
    if !empty.is_empty() {
        let metrics: Vec<&str> = empty.iter().map(|(k, _)| k.metric.as_str()).collect();
        let dimensions: Vec<&str> = empty.iter().map(|(k, _)| k.dimension.as_str()).collect();
        let days: Vec<i32> = empty.iter().map(|(k, _)| k.day).collect();
        let values: Vec<&str> = empty.iter().map(|(k, _)| k.value.as_str()).collect();
        tx.execute(
            "DELETE FROM rollups WHERE tenant_id = $1 AND (metric, dimension, day, value) IN \
             (SELECT * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]))",
            &[&tenant, &metrics, &dimensions, &days, &values],
        )
        .await
        .or_store()?;
    }
    if full.is_empty() {
        return Ok(());
    }
    let metrics: Vec<&str> = full.iter().map(|(k, _)| k.metric.as_str()).collect();
    let dimensions: Vec<&str> = full.iter().map(|(k, _)| k.dimension.as_str()).collect();
    let days: Vec<i32> = full.iter().map(|(k, _)| k.day).collect();
    let values: Vec<&str> = full.iter().map(|(k, _)| k.value.as_str()).collect();
    let counts: Vec<i64> = full.iter().map(|(_, c)| c.count as i64).collect();
    let sums: Vec<f64> = full.iter().map(|(_, c)| c.sum).collect();
    let mins: Vec<f64> = full.iter().map(|(_, c)| c.min).collect();
    let maxes: Vec<f64> = full.iter().map(|(_, c)| c.max).collect();
    // A histogram per cell as JSON (`null` for a metric without one): SQL
    // arrays of arrays must be rectangular and cannot hold a NULL row.
    let histograms: Vec<serde_json::Value> = full
        .iter()
        .map(|(_, c)| serde_json::json!(c.histogram.map(|h| h.to_vec())))
        .collect();
    let sketches: Vec<serde_json::Value> = full
        .iter()
        .map(|(_, c)| serde_json::to_value(&c.sketch))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::corrupt(format!("encoding a sketch: {e}")))?;
    tx.execute(
        "INSERT INTO rollups (tenant_id, metric, dimension, day, value, count, sum, min, max, histogram, sketch) \
         SELECT $1, m, dim, d, v, c, s, mn, mx, \
                CASE WHEN jsonb_typeof(h) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(h)::bigint) END, sk \
         FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::float8[], $8::float8[], \
                     $9::float8[], $10::jsonb[], $11::jsonb[]) AS u(m, dim, d, v, c, s, mn, mx, h, sk) \
         ON CONFLICT (tenant_id, metric, dimension, day, value) DO UPDATE SET \
             count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max, \
             histogram = EXCLUDED.histogram, sketch = EXCLUDED.sketch",
        &[
            &tenant,
            &metrics,
            &dimensions,
            &days,
            &values,
            &counts,
            &sums,
            &mins,
            &maxes,
            &histograms,
            &sketches,
        ],
    )
    .await
    .or_store()?;
    Ok(())
}

/// Opens and closes the source's gaps as the batch says.
async fn settle_gaps(tx: &Transaction<'_>, tenant: &str, source: &str, batch: &CommitBatch) -> Result<(), StoreError> {
    let open: Vec<xla_types::Gap> = match tx
        .query_opt(
            "SELECT gaps FROM gaps WHERE tenant_id = $1 AND source = $2 FOR UPDATE",
            &[&tenant, &source],
        )
        .await
        .or_store()?
    {
        Some(row) => {
            serde_json::from_value(row.get(0)).map_err(|e| StoreError::corrupt(format!("stored gaps: {e}")))?
        }
        None => Vec::new(),
    };
    let gaps = xla_store::merge_gaps(open, &batch.partial, &batch.complete);
    let json = serde_json::to_value(&gaps).map_err(|e| StoreError::corrupt(format!("encoding gaps: {e}")))?;
    tx.execute(
        "INSERT INTO gaps (tenant_id, source, gaps) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, source) DO UPDATE SET gaps = EXCLUDED.gaps",
        &[&tenant, &source, &json],
    )
    .await
    .or_store()?;
    Ok(())
}

/// Adds the metrics the batch stored to the source's written set.
async fn note_written(
    tx: &Transaction<'_>,
    tenant: &str,
    source: &str,
    rows: &[&Observation],
) -> Result<(), StoreError> {
    let written: BTreeSet<(&str, &str, &str)> = rows
        .iter()
        .map(|o| (source, o.metric.as_str(), layer_name(o.layer)))
        .collect();
    insert_written(tx, tenant, written).await
}

/// Records (source, metric, layer) triples in the written set.
pub(crate) async fn insert_written(
    tx: &Transaction<'_>,
    tenant: &str,
    written: BTreeSet<(&str, &str, &str)>,
) -> Result<(), StoreError> {
    if written.is_empty() {
        return Ok(());
    }
    let (mut sources, mut metrics, mut layers) = (Vec::new(), Vec::new(), Vec::new());
    for (source, metric, layer) in written {
        sources.push(source);
        metrics.push(metric);
        layers.push(layer);
    }
    tx.execute(
        "INSERT INTO written_metrics (tenant_id, source, metric, layer) \
         SELECT $1, s, m, l FROM unnest($2::text[], $3::text[], $4::text[]) AS u(s, m, l) ON CONFLICT DO NOTHING",
        &[&tenant, &sources, &metrics, &layers],
    )
    .await
    .or_store()?;
    Ok(())
}
