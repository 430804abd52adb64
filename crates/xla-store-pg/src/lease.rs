//! Leases in the `leases` table, shared by every host on the database
//! (see [`xla_store::Lease`]). Expiry is judged by the server's clock
//! (`clock_timestamp()`), so hosts' clocks never need to agree.
//!
//! A takeover locks the instance's row `FOR UPDATE`; a commit under a lease
//! reads it `FOR KEY SHARE` in its own transaction, so a takeover waits for
//! a commit in progress to end and a commit after it sees the new token. A
//! renewal (an `UPDATE` of non-key columns) does not wait for commits.

use super::{Inner, OrStore, StoreError};
use std::time::Duration;
use tokio_postgres::GenericClient;
use xla_store::{Lease, LeaseGrant, LeaseRequest, LeaseState, Verdict, judge, lease_lost, ttl_ms};
use xla_types::now_ms;

/// A `timestamptz` expression as unix ms.
macro_rules! ms {
    ($column:literal) => {
        concat!("(extract(epoch FROM ", $column, ") * 1000)::bigint")
    };
}

/// Grants, refuses or defers `request` (see [`xla_store::judge`]).
pub(crate) async fn acquire(inner: &Inner, request: &LeaseRequest) -> Result<LeaseGrant, StoreError> {
    let mut client = inner.client().await?;
    let tx = client.transaction().await.or_store()?;
    let (tenant, instance) = (&request.tenant, &request.instance);
    // A commit under the lease holds its row until it ends; a holder cut
    // off mid-commit holds it until the server ends its session. Wait no
    // longer than a lease lasts: then the lease counts as held.
    tx.batch_execute(&format!("SET LOCAL lock_timeout = {}", ttl_ms(request.ttl)))
        .await
        .or_store()?;
    // A row to lock, never granted: released since 1970.
    tx.execute(
        "INSERT INTO leases (tenant_id, instance, holder, token, expires) VALUES ($1, $2, '', 0, to_timestamp(0)) \
         ON CONFLICT (tenant_id, instance) DO NOTHING",
        &[tenant, instance],
    )
    .await
    .or_store()?;
    let locked = tx
        .query_one(
            concat!(
                "SELECT holder, token, ",
                ms!("expires"),
                ", ",
                ms!("next_due"),
                " FROM leases WHERE tenant_id = $1 AND instance = $2 FOR UPDATE"
            ),
            &[tenant, instance],
        )
        .await;
    let row = match locked {
        Ok(row) => row,
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Ok(LeaseGrant::Held {
                holder: "a host whose commit has held the instance's lease row longer than a lease lasts".into(),
                expires: now_ms().saturating_add(ttl_ms(request.ttl)),
            });
        }
        Err(error) => return Err(super::pg_error(error)),
    };
    // The clock after the row lock: the wait for a commit may have been long.
    let now: i64 = tx
        .query_one(concat!("SELECT ", ms!("clock_timestamp()")), &[])
        .await
        .or_store()?
        .get(0);
    let host_now = now_ms();
    let state = LeaseState {
        holder: row.get(0),
        token: row.get::<_, i64>(1) as u64,
        expires: row.get(2),
        next_due: row.get(3),
    };
    let taken_from = match judge(Some(&state), request, now, host_now) {
        Verdict::Refuse(answer) => return Ok(answer),
        Verdict::Grant { taken_from } => taken_from,
    };
    let token: i64 = tx
        .query_one(
            "UPDATE leases SET holder = $3, token = nextval('lease_tokens'), \
             expires = clock_timestamp() + $4::float8 * interval '1 millisecond' \
             WHERE tenant_id = $1 AND instance = $2 RETURNING token",
            &[tenant, instance, &request.holder, &(ttl_ms(request.ttl) as f64)],
        )
        .await
        .or_store()?
        .get(0);
    tx.commit().await.or_store()?;
    Ok(LeaseGrant::Granted(Lease::granted(
        request,
        token as u64,
        host_now,
        taken_from,
    )))
}

/// Renews `lease` for its time-to-live from now (by the server's clock).
pub(crate) async fn renew(inner: &Inner, lease: &mut Lease) -> Result<(), StoreError> {
    let client = inner.client().await?;
    let host_now = now_ms();
    let renewed = client
        .query_opt(
            "UPDATE leases SET expires = clock_timestamp() + $4::float8 * interval '1 millisecond' \
             WHERE tenant_id = $1 AND instance = $2 AND token = $3 AND holder <> '' RETURNING 1",
            &[
                &lease.tenant,
                &lease.instance,
                &(lease.token as i64),
                &(ttl_ms(lease.ttl) as f64),
            ],
        )
        .await
        .or_store()?;
    if renewed.is_none() {
        return Err(lease_lost(&lease.tenant, &lease.instance, lease.token));
    }
    // Measured from before the request: never later than the server's.
    lease.expires = host_now.saturating_add(ttl_ms(lease.ttl));
    Ok(())
}

/// Releases `lease`, setting when the next scheduled run is due.
pub(crate) async fn release(inner: &Inner, lease: &Lease, next_due: Option<Duration>) -> Result<(), StoreError> {
    let next_due = next_due.map(|due| ttl_ms(due) as f64);
    inner
        .client()
        .await?
        .execute(
            "UPDATE leases SET holder = '', expires = clock_timestamp(), \
             next_due = COALESCE(clock_timestamp() + $4::float8 * interval '1 millisecond', next_due) \
             WHERE tenant_id = $1 AND instance = $2 AND token = $3",
            &[&lease.tenant, &lease.instance, &(lease.token as i64), &next_due],
        )
        .await
        .or_store()?;
    Ok(())
}

/// Checks, inside a write's transaction, that `token` is still the
/// instance's live lease, and keeps it so until the transaction ends (a
/// takeover waits). `None` (a write under no lease) always passes.
pub(crate) async fn check(
    client: &impl GenericClient,
    tenant: &str,
    instance: &str,
    token: Option<u64>,
) -> Result<(), StoreError> {
    let Some(token) = token else { return Ok(()) };
    let live: Option<bool> = client
        .query_opt(
            "SELECT token = $3 AND holder <> '' AND expires > clock_timestamp() FROM leases \
             WHERE tenant_id = $1 AND instance = $2 FOR KEY SHARE",
            &[&tenant, &instance, &(token as i64)],
        )
        .await
        .or_store()?
        .map(|row| row.get(0));
    match live {
        Some(true) => Ok(()),
        _ => Err(lease_lost(tenant, instance, token)),
    }
}
