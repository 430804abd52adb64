//! Runs under leases: every run of an instance, scheduled, asked for or
//! pushed, holds the instance's lease in the store (see
//! [`xla_store::Lease`]), so hosts sharing a store never run one instance
//! at once, and a host that dies hands its instances over once its leases
//! run out.

use crate::SyncError;
use std::sync::OnceLock;
use std::time::Duration;
use xla_store::{Lease, LeaseGrant, LeaseRequest, Store, StoreError};
use xla_types::now_ms;

/// This process's name as a lease holder: `host/pid/nonce`, telling an
/// operator which machine ran a run, and unique even between containers
/// that share a hostname and run as pid 1 (the nonce is random).
pub fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let host = gethostname::gethostname();
        let host = xla_types::untrusted::escape_capped(&host.to_string_lossy(), 64).into_owned();
        let nonce = (crate::retry::jitter() * f64::from(u32::MAX)) as u32 ^ (now_ms() as u32);
        format!("{host}/{}/{nonce:08x}", std::process::id())
    })
}

/// A request for `tenant`'s `instance` lease by this process.
pub fn request(tenant: &str, instance: &str, ttl: Duration, scheduled: bool) -> LeaseRequest {
    LeaseRequest {
        tenant: tenant.to_string(),
        instance: instance.to_string(),
        holder: holder().to_string(),
        ttl,
        scheduled,
    }
}

/// The instance's lease for a run asked for now, waiting at most `within`
/// for another holder's run to end (polling every quarter second).
///
/// # Errors
/// [`SyncError::Busy`] when another holder still has it; [`SyncError::Store`].
pub async fn take(
    store: &dyn Store,
    tenant: &str,
    instance: &str,
    ttl: Duration,
    within: Duration,
) -> Result<Lease, SyncError> {
    let deadline = tokio::time::Instant::now() + within;
    let request = request(tenant, instance, ttl, false);
    loop {
        // The store may wait for another holder's commit: not past the deadline.
        let wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(1));
        let grant = match tokio::time::timeout(wait, store.acquire_lease(&request)).await {
            Ok(grant) => grant.map_err(|source| SyncError::Store {
                instance: instance.to_string(),
                source,
            })?,
            Err(_) => LeaseGrant::Held {
                holder: "a host whose commit holds the instance's lease".into(),
                expires: now_ms().saturating_add(xla_store::ttl_ms(ttl)),
            },
        };
        match grant {
            LeaseGrant::Granted(lease) => return Ok(lease),
            LeaseGrant::Held { holder, expires } if tokio::time::Instant::now() >= deadline => {
                return Err(SyncError::Busy {
                    instance: instance.to_string(),
                    holder: xla_types::untrusted::escape_capped(&holder, 200).into_owned(),
                    expires,
                });
            }
            // A request for now is never "not due"; held: wait a little.
            LeaseGrant::Held { .. } | LeaseGrant::NotDue { .. } => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Releases `lease` (the next scheduled run due `next_due` from now); a
/// failure is logged: the lease then runs out on its own.
pub async fn release(store: &dyn Store, lease: &Lease, next_due: Option<Duration>) {
    if let Err(error) = store.release_lease(lease, next_due).await {
        tracing::warn!(instance = %lease.instance, %error, "the instance's lease could not be released; it runs out on its own");
    }
}

/// When a run under `lease` that began at `started` ended: now, or, for a
/// run that `lost` the lease, when the lease ran out (it committed nothing
/// after), whichever came first.
pub(crate) fn run_ended(lease: &Lease, started: i64, lost: bool) -> i64 {
    let now = now_ms();
    if lost { now.min(lease.expires).max(started) } else { now }
}

/// Renews `lease` every third of its time-to-live for as long as it is
/// polled; returns only when the lease is lost: another holder took it, or
/// renewals failed until it ran out. A failed renewal is retried within a
/// second while the lease lasts.
pub(crate) async fn keep(store: &dyn Store, lease: &mut Lease) -> SyncError {
    let every = lease.ttl / 3;
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        match store.renew_lease(lease).await {
            Ok(()) => wait = every,
            Err(StoreError::LeaseLost { .. }) => break,
            Err(error) if now_ms() < lease.expires => {
                tracing::warn!(instance = %lease.instance, %error, "the instance's lease could not be renewed; trying again");
                wait = every.min(Duration::from_secs(1));
            }
            Err(error) => {
                tracing::error!(instance = %lease.instance, %error, "the instance's lease ran out: it could not be renewed");
                break;
            }
        }
    }
    SyncError::LeaseLost {
        instance: lease.instance.clone(),
    }
}
