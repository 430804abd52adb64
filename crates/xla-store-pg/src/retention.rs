//! Retention: raw rows of whole UTC days before a cutoff move to
//! `retired_observations`, keeping only what the rollups and the ticket
//! join need (value, layer, rolled-up dimensions, time, ticket number and
//! type); rollups stay. Cutoffs per tenant (metric `''`: every metric) and
//! per metric only ever move forward, and are recorded before any row
//! moves, so a crash half-way never leaves a day that looks complete.
//!
//! A rollup cell of a retired day keeps count, sum, histogram and sketch
//! exact through later replaces; its min and max are kept as they were, the
//! rows to recompute them being gone (as on sled).

use super::write::{CellKey, layer_name, write_cells};
use super::{Inner, OrStore, StoreError};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::Transaction;
use xla_store::{
    DAY_MS, JOIN_KEY, JOIN_TYPE_DIMENSION, RetentionSummary, RetiredDay, RetiredRecord, UNROLLED_DIMENSIONS, day_of,
};

/// Rows moved per call: a call's work is bounded, so a caller stopping (a
/// shutdown) waits for at most this much.
const RETENTION_ROWS: i64 = 20_000;

/// Drops a tenant's raw rows of UTC days that ended by `cutoff` (see
/// [`xla_store::Store::retire_before`]).
pub(crate) async fn retire_before(
    inner: &Inner,
    tenant: &str,
    metric: Option<&str>,
    cutoff: i64,
) -> Result<RetentionSummary, StoreError> {
    xla_store::check_cutoff(cutoff)?;
    let mut client = inner.client().await?;
    let metric = metric.unwrap_or("");
    let known = client
        .query_opt(
            "SELECT 1 FROM written_metrics WHERE tenant_id = $1 AND ($2 = '' OR metric = $2) LIMIT 1",
            &[&tenant, &metric],
        )
        .await
        .or_store()?;
    if known.is_none() {
        return Ok(RetentionSummary::default());
    }
    let aligned = i64::from(day_of(cutoff)) * DAY_MS;
    // Exclusive with the tenant's commits (which read rows and cutoffs),
    // and with another retention pass; the cutoff commits with the rows it
    // moves, so a crash never leaves a day that looks complete but is not.
    let tx = exclusive(&mut client, tenant).await?;
    tx.execute(
        "INSERT INTO retired (tenant_id, metric, cutoff) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, metric) DO UPDATE SET cutoff = greatest(retired.cutoff, EXCLUDED.cutoff)",
        &[&tenant, &metric, &aligned],
    )
    .await
    .or_store()?;
    // A metric's pass also finishes what a tenant-wide pass cut short.
    let cutoff: i64 = tx
        .query_one(
            "SELECT max(cutoff) FROM retired WHERE tenant_id = $1 AND metric IN ('', $2)",
            &[&tenant, &metric],
        )
        .await
        .or_store()?
        .get(0);
    let unrolled: Vec<&str> = UNROLLED_DIMENSIONS.to_vec();
    let moved = tx
        .execute(
            "WITH victims AS ( \
                 SELECT o.tenant_id, o.metric, o.at, o.source, o.record_id \
                 FROM observations o \
                 WHERE o.tenant_id = $1 AND ($2 = '' OR o.metric = $2) AND o.at < $3 \
                 LIMIT $4), \
             moved AS ( \
                 DELETE FROM observations o USING victims v \
                 WHERE o.tenant_id = v.tenant_id AND o.metric = v.metric AND o.at = v.at \
                   AND o.source = v.source AND o.record_id = v.record_id \
                 RETURNING o.*) \
             INSERT INTO retired_observations \
                 (tenant_id, source, record_id, metric, at, value, layer, dimensions, ticket, ticket_type) \
             SELECT tenant_id, source, record_id, metric, at, value, layer, \
                    (SELECT coalesce(jsonb_agg(e), '[]'::jsonb) FROM jsonb_array_elements(dimensions) e \
                     WHERE NOT (e->>0 = ANY($5))), \
                    (SELECT e->>1 FROM jsonb_array_elements(dimensions) e WHERE e->>0 = $6), \
                    (SELECT e->>1 FROM jsonb_array_elements(dimensions) e WHERE e->>0 = $7) \
             FROM moved",
            &[
                &tenant,
                &metric,
                &cutoff,
                &RETENTION_ROWS,
                &unrolled,
                &JOIN_KEY,
                &JOIN_TYPE_DIMENSION,
            ],
        )
        .await
        .or_store()?;
    tx.commit().await.or_store()?;
    inner.bump_version(&client).await?;
    Ok(RetentionSummary {
        dropped: moved,
        more: moved as i64 == RETENTION_ROWS,
    })
}

/// A tenant's cutoffs (`$1`: the tenant), for [`Cutoffs::new`].
pub(crate) const CUTOFFS: &str = "SELECT metric, cutoff FROM retired WHERE tenant_id = $1";

/// A tenant's retention cutoffs (see [`cutoffs`]).
pub(crate) struct Cutoffs(HashMap<String, i64>);

impl Cutoffs {
    /// The cutoffs from the rows of [`CUTOFFS`]: before each, a metric's
    /// raw rows may be gone; metric `''` holds the tenant-wide one.
    pub(crate) fn new(rows: Vec<tokio_postgres::Row>) -> Cutoffs {
        Cutoffs(rows.into_iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Whether raw rows of `metric` on `day` may be gone.
    pub(crate) fn retired(&self, metric: &str, day: i32) -> bool {
        let cutoff = self.0.get("").copied().max(self.0.get(metric).copied());
        cutoff.is_some_and(|cutoff| i64::from(day) * DAY_MS < cutoff)
    }
}

/// Rows per statement when restoring: bounded bind messages.
const RESTORE_ROWS: usize = 10_000;

/// A name from another store, safe in an error message.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    xla_types::untrusted::escape_capped(text, 200)
}

/// A transaction exclusive with the tenant's commits and retention, read
/// committed whatever the database's default (each step reads what the
/// commits it waited for wrote).
async fn exclusive<'c>(
    client: &'c mut deadpool_postgres::Client,
    tenant: &str,
) -> Result<deadpool_postgres::Transaction<'c>, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .or_store()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::write::tenant_lock(tenant)],
    )
    .await
    .or_store()?;
    Ok(tx)
}

/// Records a tenant's retention cutoffs copied from another store (see
/// [`crate::PgStore::restore_cutoffs`]); a cutoff never moves back.
pub(crate) async fn restore_cutoffs(
    inner: &Inner,
    tenant: &str,
    cutoffs: &[(Option<String>, i64)],
) -> Result<(), StoreError> {
    for (_, cutoff) in cutoffs {
        xla_store::check_cutoff(*cutoff)?;
    }
    let mut client = inner.client().await?;
    let tx = exclusive(&mut client, tenant).await?;
    for (metric, cutoff) in cutoffs {
        let aligned = i64::from(day_of(*cutoff)) * DAY_MS;
        tx.execute(
            "INSERT INTO retired (tenant_id, metric, cutoff) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, metric) DO UPDATE SET cutoff = greatest(retired.cutoff, EXCLUDED.cutoff)",
            &[&tenant, &metric.as_deref().unwrap_or(""), &aligned],
        )
        .await
        .or_store()?;
    }
    tx.commit().await.or_store()?;
    inner.bump_version(&client).await?;
    Ok(())
}

/// Restores a retired day of a tenant's metric copied from another store
/// (see [`crate::PgStore::restore_retired_day`]): in one transaction,
/// exclusive with the tenant's commits, the day's cells and retired rows
/// are replaced by the copy's, and the ticket join is settled again for
/// what they changed.
pub(crate) async fn restore_retired_day(
    inner: &Inner,
    tenant: &str,
    metric: &str,
    copy: &RetiredDay,
) -> Result<(), StoreError> {
    let start = i64::from(copy.day) * DAY_MS;
    let date = xla_store::utc_date(start);
    if let Some(row) = copy.rows.iter().find(|r| day_of(r.at) != copy.day) {
        return Err(StoreError::BadRequest(format!(
            "a retired row of `{}` (`{}`) is dated outside its day {date}",
            shown(metric),
            shown(&row.key)
        )));
    }
    let mut client = inner.client().await?;
    let tx = exclusive(&mut client, tenant).await?;
    let cutoffs = Cutoffs::new(tx.query(CUTOFFS, &[&tenant]).await.or_store()?);
    if !cutoffs.retired(metric, copy.day) {
        return Err(StoreError::BadRequest(format!(
            "{date} of `{}` is not before a retention cutoff this store has: restore the cutoffs first",
            shown(metric)
        )));
    }
    let gone = replace_retired_rows(&tx, tenant, metric, start, &copy.rows).await?;
    replace_cells(&tx, tenant, metric, copy).await?;
    if super::joined::joins(metric) {
        super::joined::settle_restored(&tx, (tenant, metric), &gone, &copy.rows).await?;
    }
    tx.commit().await.or_store()?;
    inner.bump_version(&client).await?;
    Ok(())
}

/// Replaces the retired rows (and their keys) of `metric` on the day from
/// `start` by `rows`; the replaced rows' sources, record ids and ticket
/// numbers.
async fn replace_retired_rows(
    tx: &Transaction<'_>,
    tenant: &str,
    metric: &str,
    start: i64,
    rows: &[RetiredRecord],
) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
    let gone = tx
        .query(
            "WITH gone AS ( \
                 DELETE FROM retired_observations WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4 \
                 RETURNING source, record_id, ticket), \
             keys AS ( \
                 DELETE FROM observation_keys k USING gone g \
                 WHERE k.tenant_id = $1 AND k.metric = $2 AND k.source = g.source AND k.record_id = g.record_id) \
             SELECT source, record_id, ticket FROM gone",
            &[&tenant, &metric, &start, &(start + DAY_MS)],
        )
        .await
        .or_store()?;
    let gone = gone
        .into_iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    for chunk in rows.chunks(RESTORE_ROWS) {
        insert_retired_rows(tx, tenant, metric, chunk).await?;
    }
    let written = rows
        .iter()
        .map(|r| (r.source.as_str(), metric, layer_name(r.layer)))
        .collect();
    super::write::insert_written(tx, tenant, written).await?;
    Ok(gone)
}

/// Inserts retired rows and their keys (a key a raw row holds is refused
/// by the database: a record is raw or retired, not both).
async fn insert_retired_rows(
    tx: &Transaction<'_>,
    tenant: &str,
    metric: &str,
    rows: &[RetiredRecord],
) -> Result<(), StoreError> {
    let sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
    let layers: Vec<&str> = rows.iter().map(|r| layer_name(r.layer)).collect();
    let dimensions: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::to_value(super::joined::rolled_up(&r.dimensions).collect::<Vec<_>>()))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::corrupt(format!("encoding dimensions: {e}")))?;
    let tickets: Vec<Option<&str>> = rows.iter().map(|r| r.ticket.as_deref()).collect();
    let types: Vec<Option<&str>> = rows
        .iter()
        .map(|r| super::write::dimension(&r.dimensions, JOIN_TYPE_DIMENSION))
        .collect();
    tx.execute(
        "INSERT INTO observation_keys (tenant_id, source, record_id, metric, at) \
         SELECT $1, s, r, $2, a FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u(s, r, a)",
        &[&tenant, &metric, &sources, &ids, &ats],
    )
    .await
    .or_store()?;
    tx.execute(
        "INSERT INTO retired_observations \
             (tenant_id, source, record_id, metric, at, value, layer, dimensions, ticket, ticket_type) \
         SELECT $1, s, r, $2, a, v, l, d, t, tt \
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::float8[], $7::text[], $8::jsonb[], $9::text[], $10::text[]) \
              AS u(s, r, a, v, l, d, t, tt)",
        &[&tenant, &metric, &sources, &ids, &ats, &values, &layers, &dimensions, &tickets, &types],
    )
    .await
    .or_store()?;
    Ok(())
}

/// Replaces the day's rollup cells of `metric` by the copy's.
async fn replace_cells(tx: &Transaction<'_>, tenant: &str, metric: &str, copy: &RetiredDay) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM rollups WHERE tenant_id = $1 AND metric = $2 AND day = $3",
        &[&tenant, &metric, &copy.day],
    )
    .await
    .or_store()?;
    let mut cells = BTreeMap::new();
    for (dimension, cell) in &copy.cells {
        let (dimension, value) = dimension.clone().unwrap_or_default();
        if !cell.sketch.is_sane() {
            return Err(StoreError::BadRequest(format!(
                "a copied rollup cell of `{}` on {} has a quantile sketch out of range",
                shown(metric),
                xla_store::utc_date(i64::from(copy.day) * DAY_MS)
            )));
        }
        cells.insert(
            CellKey {
                metric: metric.to_string(),
                dimension,
                day: copy.day,
                value,
            },
            cell.clone(),
        );
    }
    write_cells(tx, tenant, &cells).await
}
