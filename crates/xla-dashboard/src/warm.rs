//! Keeps the dashboard's results warm: after new data lands (the store's
//! data version moves) and has been quiet for a while, computes every
//! view's results for each tenant's latest month into the API's result
//! cache, so the first viewer after a sync gets a page from memory, not
//! a month's scoring (seconds at a 275,000-employee month, see
//! `BENCHMARKS.md`). The API answers the same queries from the same
//! entries.

use crate::views::{follow_up, latest_month, lost_time, xot};
use std::sync::Arc;
use std::time::Duration;
use xla_api::ApiState;
use xla_api::results;

/// How often the data version is looked at.
const EVERY: Duration = Duration::from_secs(5);
/// How long the data must be quiet before warming (a sync commits many
/// batches; warming between them would be wasted).
const QUIET: Duration = Duration::from_secs(10);

/// Warms the results until `stop` resolves. Failures are logged and the
/// next version tries again.
pub async fn keep_warm(api: Arc<ApiState>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut warmed: Option<u64> = None;
    let mut seen = api.store.data_version();
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let version = api.store.data_version();
        if version != seen {
            seen = version;
            quiet_since = tokio::time::Instant::now();
            continue;
        }
        if warmed == Some(version) || quiet_since.elapsed() < QUIET || api.engine.is_none() {
            continue;
        }
        let started = std::time::Instant::now();
        for tenant in api.catalog.tenants() {
            if let Err(e) = warm(&api, tenant).await {
                tracing::warn!(tenant, "warming the dashboard's results: {e}");
            }
        }
        tracing::info!(
            version,
            ms = started.elapsed().as_millis() as u64,
            "dashboard results warm"
        );
        warmed = Some(version);
    }
}

/// Computes `tenant`'s views for its latest month into the cache.
///
/// # Errors
/// The first view that fails.
pub async fn warm(api: &ApiState, tenant: &str) -> Result<(), crate::PageError> {
    let window = latest_month(api, tenant).await?;
    for xla in api.catalog.xlas.iter().filter(|x| x.tenant == tenant) {
        results::report(api, xla, xla.period.containing(window.start)).await?;
    }
    // SLA beside XLA's default scorecard (by service, at the tenant's
    // targets) is the one the per-service X/O/T reads, this month's and the last.
    results::xot_slices(api, tenant, window, xot::slices_query(api, tenant, window)).await?;
    let engine = results::engine(api)?;
    for query in lost_time::queries(tenant).iter().chain([&follow_up::query(tenant)]) {
        if engine.has_scorer(&query.scorer) {
            results::scores(api, query, window).await?;
        }
    }
    Ok(())
}
