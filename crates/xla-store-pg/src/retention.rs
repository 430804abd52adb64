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

use super::{Inner, OrStore, StoreError};
use std::collections::HashMap;
use xla_store::{DAY_MS, JOIN_KEY, JOIN_TYPE_DIMENSION, RetentionSummary, UNROLLED_DIMENSIONS, day_of};

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
    let tx = client.transaction().await.or_store()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::write::tenant_lock(tenant)],
    )
    .await
    .or_store()?;
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
