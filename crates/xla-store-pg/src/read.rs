//! Reads: cursors, gaps, raw rows, a subject's rows, rollups and the
//! metrics stored.

use super::retention::{CUTOFFS, Cutoffs};
use super::write::{parse_layer, stored_of};
use super::{Inner, OrStore, StoreError};
use xla_store::{
    DAY_MS, MetricStats, Provenance, Rollup, Rollups, SUBJECT_DIMENSIONS, SeriesQuery, SourceGap, StoreStats,
    StoredMetric, StoredObservation, UNROLLED_DIMENSIONS, bucket_start, day_of, is_rating,
};
use xla_types::Observation;

/// The cursor stored for a connector instance.
pub(crate) async fn cursor(inner: &Inner, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
    let row = inner
        .client()
        .await?
        .query_opt(
            "SELECT cursor FROM cursors WHERE tenant_id = $1 AND source = $2",
            &[&tenant, &source],
        )
        .await
        .or_store()?;
    Ok(row.map(|row| row.get(0)))
}

/// The open gaps of every source of a tenant, by source then span, each
/// with the metrics its source has stored.
pub(crate) async fn gaps(inner: &Inner, tenant: &str) -> Result<Vec<SourceGap>, StoreError> {
    let client = inner.client().await?;
    let rows = client
        .query(
            "SELECT g.source, g.gaps, \
                    ARRAY(SELECT metric FROM written_metrics w \
                          WHERE w.tenant_id = g.tenant_id AND w.source = g.source ORDER BY metric) \
             FROM gaps g WHERE g.tenant_id = $1",
            &[&tenant],
        )
        .await
        .or_store()?;
    let mut all = Vec::new();
    for row in rows {
        let source: String = row.get(0);
        let gaps: Vec<xla_types::Gap> =
            serde_json::from_value(row.get(1)).map_err(|e| StoreError::corrupt(format!("stored gaps: {e}")))?;
        let metrics: Vec<String> = row.get(2);
        all.extend(gaps.into_iter().map(|gap| SourceGap {
            source: source.clone(),
            gap,
            metrics: metrics.clone(),
        }));
    }
    all.sort_by(|a, b| (&a.source, a.gap.span).cmp(&(&b.source, b.gap.span)));
    Ok(all)
}

/// Columns of a stored observation as [`stored_observation`] reads them.
const OBSERVATION_COLUMNS: &str =
    "o.tenant_id, o.source, o.record_id, o.metric, o.at, o.value, o.layer, o.dimensions, p.provenance";

/// A [`StoredObservation`] from [`OBSERVATION_COLUMNS`].
fn stored_observation(row: &tokio_postgres::Row) -> Result<StoredObservation, StoreError> {
    let stored = stored_of(row, 2)?;
    let provenance: Provenance =
        serde_json::from_value(row.get(8)).map_err(|e| StoreError::corrupt(format!("a stored provenance: {e}")))?;
    Ok(StoredObservation {
        tenant: row.get(0),
        source: row.get(1),
        observation: Observation {
            id: stored.record_id,
            metric: stored.metric,
            layer: stored.layer,
            value: stored.value,
            at: stored.at,
            dimensions: stored.dimensions,
        },
        provenance,
    })
}

/// Stored observations of a tenant matching `condition` (on `o`, its
/// parameters after the tenant's `$1`), in `order`.
async fn stored_observations(
    inner: &Inner,
    condition: &str,
    order: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<StoredObservation>, StoreError> {
    let rows = inner
        .client()
        .await?
        .query(
            &format!(
                "SELECT {OBSERVATION_COLUMNS} FROM observations o \
                 JOIN provenances p ON p.tenant_id = o.tenant_id AND p.id = o.provenance_id \
                 WHERE o.tenant_id = $1 AND {condition} ORDER BY {order}"
            ),
            params,
        )
        .await
        .or_store()?;
    rows.iter().map(stored_observation).collect()
}

/// Every stored observation of a tenant's metric in `[from, to)`, oldest first.
pub(crate) async fn observations(
    inner: &Inner,
    tenant: &str,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<StoredObservation>, StoreError> {
    stored_observations(
        inner,
        "o.metric = $2 AND o.at >= $3 AND o.at < $4",
        "o.at, o.source, o.record_id",
        &[&tenant, &metric, &from, &to],
    )
    .await
}

/// Every observation of one subject across metrics and sources, oldest first.
pub(crate) async fn subject(
    inner: &Inner,
    tenant: &str,
    dimension: &str,
    value: &str,
) -> Result<Vec<StoredObservation>, StoreError> {
    // The column is named for the dimension: only the subject dimensions have one.
    let Some(column) = SUBJECT_DIMENSIONS.iter().find(|d| **d == dimension) else {
        return Ok(Vec::new());
    };
    stored_observations(
        inner,
        &format!("o.{column} = $2"),
        "o.at, o.metric, o.source, o.record_id",
        &[&tenant, &value],
    )
    .await
}

/// A rollup cell from columns count, sum, min, max, histogram, sketch
/// starting at `first`.
pub(crate) fn rollup_of(row: &tokio_postgres::Row, first: usize) -> Result<Rollup, StoreError> {
    let count: i64 = row.get(first);
    let histogram: Option<Vec<i64>> = row.get(first + 4);
    let histogram = match histogram {
        None => None,
        Some(counts) => {
            let counts: Vec<u64> = counts.into_iter().map(|c| c.max(0) as u64).collect();
            Some(
                <[u64; 11]>::try_from(counts)
                    .map_err(|_| StoreError::corrupt("a stored histogram does not have 11 counts"))?,
            )
        }
    };
    let sketch: xla_store::Sketch =
        serde_json::from_value(row.get(first + 5)).map_err(|e| StoreError::corrupt(format!("a stored sketch: {e}")))?;
    if !sketch.is_sane() {
        return Err(StoreError::corrupt("a stored sketch is out of range"));
    }
    Ok(Rollup {
        count: count.max(0) as u64,
        sum: row.get(first + 1),
        min: row.get(first + 2),
        max: row.get(first + 3),
        histogram,
        sketch,
    })
}

/// Rollup cells merged per (bucket, group) for `query`: from the cells,
/// except when a filter and a group-by name two dimensions, or one names a
/// per-subject dimension (no cells): then from the rows.
pub(crate) async fn rollups(inner: &Inner, query: &SeriesQuery) -> Result<Rollups, StoreError> {
    let mut out = Rollups::new();
    if query.from >= query.to {
        return Ok(out);
    }
    let (from_day, to_day) = (day_of(query.from), day_of(query.to - 1) + 1);
    let filter_key = query.filter.as_ref().map(|(k, _)| k.as_str());
    let group_key = query.group_by.as_deref();
    let unrolled = |k: Option<&str>| k.is_some_and(|k| UNROLLED_DIMENSIONS.contains(&k));
    let two = matches!((filter_key, group_key), (Some(f), Some(g)) if f != g);
    let client = inner.client().await?;
    if two || unrolled(filter_key) || unrolled(group_key) {
        let cutoffs = Cutoffs::new(client.query(CUTOFFS, &[&query.tenant]).await.or_store()?);
        if cutoffs.retired(&query.metric, from_day) {
            return Err(StoreError::RetiredRows {
                what: "a filter and a group-by on two different dimensions, or on a per-subject dimension".into(),
            });
        }
        return from_rows(&client, query, (from_day, to_day)).await;
    }
    let dimension = filter_key.or(group_key).unwrap_or("");
    let filter_value = query.filter.as_ref().map(|(_, v)| v.as_str());
    let rows = client
        .query(
            "SELECT day, value, count, sum, min, max, histogram, sketch FROM rollups \
             WHERE tenant_id = $1 AND metric = $2 AND dimension = $3 AND day >= $4 AND day < $5 \
               AND ($6::text IS NULL OR value = $6)",
            &[
                &query.tenant,
                &query.metric,
                &dimension,
                &from_day,
                &to_day,
                &filter_value,
            ],
        )
        .await
        .or_store()?;
    for row in rows {
        let day: i32 = row.get(0);
        let value: String = row.get(1);
        let bucket = bucket_start(i64::from(day) * DAY_MS, query.bucket);
        let group = group_key.map(|_| value);
        out.entry((bucket, group)).or_default().merge(&rollup_of(&row, 2)?);
    }
    Ok(out)
}

/// A series query answered from the window's rows.
async fn from_rows(
    client: &tokio_postgres::Client,
    query: &SeriesQuery,
    (from_day, to_day): (i32, i32),
) -> Result<Rollups, StoreError> {
    let (key, value) = match &query.filter {
        Some((k, v)) => (Some(k.as_str()), Some(v.as_str())),
        None => (None, None),
    };
    let rows = client
        .query(
            &format!(
                "SELECT at, value, dimensions FROM observations \
                 WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4 \
                   AND ($5::text IS NULL OR {})",
                super::write::HAS_DIMENSION
            ),
            &[
                &query.tenant,
                &query.metric,
                &(i64::from(from_day) * DAY_MS),
                &(i64::from(to_day) * DAY_MS),
                &key,
                &value,
            ],
        )
        .await
        .or_store()?;
    let rating = is_rating(&query.metric);
    let mut out = Rollups::new();
    for row in rows {
        let at: i64 = row.get(0);
        let group = match &query.group_by {
            None => None,
            Some(g) => {
                let dimensions: Vec<(String, String)> = serde_json::from_value(row.get(2))
                    .map_err(|e| StoreError::corrupt(format!("stored dimensions: {e}")))?;
                match dimensions.into_iter().find(|(k, _)| k == g) {
                    Some((_, v)) => Some(v),
                    None => continue,
                }
            }
        };
        out.entry((bucket_start(at, query.bucket), group))
            .or_default()
            .add(row.get(1), rating);
    }
    Ok(out)
}

/// Every (tenant, metric) any source wrote, as `w`.
const WRITTEN: &str = "(SELECT DISTINCT tenant_id, metric FROM written_metrics)";

/// The layer of one of `w`'s rows, raw or retired.
const LAYER: &str = "coalesce( \
    (SELECT o.layer FROM observations o WHERE o.tenant_id = w.tenant_id AND o.metric = w.metric LIMIT 1), \
    (SELECT r.layer FROM retired_observations r WHERE r.tenant_id = w.tenant_id AND r.metric = w.metric LIMIT 1))";

/// `w`'s retention cutoff, the tenant's or its own, whichever is later.
const RETIRED_BEFORE: &str =
    "(SELECT max(c.cutoff) FROM retired c WHERE c.tenant_id = w.tenant_id AND c.metric IN ('', w.metric))";

/// What the store keeps per tenant and metric: rows, bytes (PostgreSQL's
/// own sizes of the rows, `pg_column_size`), the days raw rows cover,
/// retention's cutoff, and the database's size on disk.
pub(crate) async fn stats(inner: &Inner) -> Result<StoreStats, StoreError> {
    let client = inner.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT w.tenant_id, w.metric, {LAYER}, {RETIRED_BEFORE}, \
                        raw.rows, raw.bytes, raw.first, raw.last, ret.rows, ret.bytes, cells.rows, cells.bytes \
                 FROM {WRITTEN} w \
                 CROSS JOIN LATERAL (SELECT count(*), coalesce(sum(pg_column_size(o.*)), 0)::bigint, min(o.at), max(o.at) \
                      FROM observations o WHERE o.tenant_id = w.tenant_id AND o.metric = w.metric) \
                      AS raw(rows, bytes, first, last) \
                 CROSS JOIN LATERAL (SELECT count(*), coalesce(sum(pg_column_size(r.*)), 0)::bigint \
                      FROM retired_observations r WHERE r.tenant_id = w.tenant_id AND r.metric = w.metric) \
                      AS ret(rows, bytes) \
                 CROSS JOIN LATERAL (SELECT count(*), coalesce(sum(pg_column_size(c.*)), 0)::bigint \
                      FROM rollups c WHERE c.tenant_id = w.tenant_id AND c.metric = w.metric) \
                      AS cells(rows, bytes) \
                 ORDER BY 1, 2"
            ),
            &[],
        )
        .await
        .or_store()?;
    let day_start = |at: Option<i64>| at.map(|at| i64::from(day_of(at)) * DAY_MS);
    let metrics = rows
        .iter()
        .map(|row| {
            let layer: Option<&str> = row.get(2);
            let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
            Ok(MetricStats {
                tenant: row.get(0),
                metric: row.get(1),
                layer: layer.map(parse_layer).transpose()?,
                retired_before: row.get(3),
                raw_rows: count(4),
                raw_bytes: count(5),
                raw_from: day_start(row.get(6)),
                raw_to: day_start(row.get(7)),
                retired_rows: count(8),
                retired_bytes: count(9),
                rollup_cells: count(10),
                rollup_bytes: count(11),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let disk: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .or_store()?
        .get(0);
    Ok(StoreStats {
        metrics,
        disk_bytes: disk.max(0) as u64,
    })
}

/// Every metric of every tenant that has rows stored, with the layer of
/// one of its rows, ordered by tenant, then metric.
pub(crate) async fn stored_metrics(inner: &Inner) -> Result<Vec<StoredMetric>, StoreError> {
    let rows = inner
        .client()
        .await?
        .query(
            &format!("SELECT w.tenant_id, w.metric, {LAYER}, {RETIRED_BEFORE} FROM {WRITTEN} w ORDER BY 1, 2"),
            &[],
        )
        .await
        .or_store()?;
    rows.iter()
        .map(|row| {
            let layer: Option<&str> = row.get(2);
            Ok(StoredMetric {
                tenant: row.get(0),
                metric: row.get(1),
                layer: layer.map(parse_layer).transpose()?,
                retired_before: row.get(3),
            })
        })
        .collect()
}
