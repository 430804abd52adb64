//! The sync run log: one JSON record per run of a connector instance; run
//! ids from one sequence (unique in the store, increasing).

use super::{Inner, OrStore, StoreError};
use tokio_postgres::GenericClient;
use xla_store::{Lease, RunRecord};

fn encode(record: &RunRecord) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(record).map_err(|e| StoreError::corrupt(format!("encoding a run record: {e}")))
}

fn decode(value: serde_json::Value) -> Result<RunRecord, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::corrupt(format!("a run record: {e}")))
}

/// Starts a run under `lease`, in one transaction that holds the lease:
/// the instance's runs still marked running were cut short by their
/// process and are marked interrupted.
pub(crate) async fn begin(inner: &Inner, lease: &Lease, started: i64) -> Result<RunRecord, StoreError> {
    let mut client = inner.client().await?;
    let tx = client.transaction().await.or_store()?;
    super::lease::check(&*tx, &lease.tenant, &lease.instance, Some(lease.token)).await?;
    for mut run in before(&*tx, &lease.tenant, &lease.instance, None, 16).await? {
        if run.interrupt(lease, started) {
            save(&*tx, &run).await?;
        }
    }
    let id: i64 = tx.query_one("SELECT nextval('run_ids')", &[]).await.or_store()?.get(0);
    let record = RunRecord::start(id as u64, lease, started);
    // A new id: an insert that fails loudly should it not be new.
    tx.execute(
        "INSERT INTO runs (tenant_id, instance, run, record) VALUES ($1, $2, $3, $4)",
        &[
            &record.tenant,
            &record.instance,
            &(record.run as i64),
            &encode(&record)?,
        ],
    )
    .await
    .or_store()?;
    tx.commit().await.or_store()?;
    Ok(record)
}

/// Writes a run's record; a stored record that has ended is kept (see
/// [`xla_store::Store::save_run`]).
pub(crate) async fn save(client: &impl GenericClient, record: &RunRecord) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO runs (tenant_id, instance, run, record) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, instance, run) DO UPDATE SET record = EXCLUDED.record \
             WHERE runs.record->>'outcome' = 'running'",
            &[&record.tenant, &record.instance, &(record.run as i64), &encode(record)?],
        )
        .await
        .or_store()?;
    // A record copied from another store (`xla-host store migrate`) keeps
    // its id: later runs' ids must come after it.
    client
        .execute(
            "SELECT setval('run_ids', $1) FROM run_ids WHERE NOT is_called OR last_value < $1",
            &[&(record.run as i64)],
        )
        .await
        .or_store()?;
    Ok(())
}

/// At most `limit` runs below `before` (all without it), newest first.
pub(crate) async fn before(
    client: &impl GenericClient,
    tenant: &str,
    instance: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<RunRecord>, StoreError> {
    let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT record FROM runs WHERE tenant_id = $1 AND instance = $2 AND run < $3 ORDER BY run DESC LIMIT $4",
            &[&tenant, &instance, &before, &limit],
        )
        .await
        .or_store()?;
    rows.into_iter().map(|row| decode(row.get(0))).collect()
}

/// The run `run` of an instance.
pub(crate) async fn one(
    inner: &Inner,
    tenant: &str,
    instance: &str,
    run: u64,
) -> Result<Option<RunRecord>, StoreError> {
    let Ok(run) = i64::try_from(run) else { return Ok(None) };
    let row = inner
        .client()
        .await?
        .query_opt(
            "SELECT record FROM runs WHERE tenant_id = $1 AND instance = $2 AND run = $3",
            &[&tenant, &instance, &run],
        )
        .await
        .or_store()?;
    row.map(|row| decode(row.get(0))).transpose()
}

/// How many runs of an instance the log holds.
pub(crate) async fn count(inner: &Inner, tenant: &str, instance: &str) -> Result<u64, StoreError> {
    let row = inner
        .client()
        .await?
        .query_one(
            "SELECT count(*) FROM runs WHERE tenant_id = $1 AND instance = $2",
            &[&tenant, &instance],
        )
        .await
        .or_store()?;
    Ok(row.get::<_, i64>(0) as u64)
}
