//! The API's state over the month's store, as `serve` builds it, for the
//! benchmarks that serve it (the API, the dashboard): the month's engine
//! and XLAs, no per-token limit (the benchmarks measure the server), and a
//! read token of the month's tenant.

use super::month;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;
use xla_host::api::auth::{self, TokenRequest};
use xla_host::api::{ApiConfig, ApiState, Catalog, TokenLimiter};
use xla_host::store::{Scope, Store};

/// The state and a read token of [`month::TENANT`].
pub async fn state(store: Arc<dyn Store>) -> Result<(Arc<ApiState>, String)> {
    let (engine, xlas) = month::engine(store.clone()).await?;
    let config = ApiConfig {
        requests_per_second: u32::MAX,
        ..ApiConfig::default()
    };
    let request = TokenRequest {
        name: "bench".into(),
        tenant: Some(month::TENANT.into()),
        scope: Scope::Read,
        expires: None,
    };
    let token = auth::issue(&*store, request, xla_host::types::now_ms()).await?.token;
    let state = ApiState {
        store,
        engine: Some(engine),
        catalog: Catalog {
            instances: Vec::new(),
            plugins: Vec::new(),
            xlas,
        },
        limiter: TokenLimiter::new(config.requests_per_second),
        config,
        receivers: BTreeMap::new(),
        webhook_secrets: BTreeMap::new(),
        metrics: None,
        results: Default::default(),
        sync: None,
    };
    Ok((Arc::new(state), token))
}

/// Serves `app` on 127.0.0.1:0; its base URL.
pub async fn on_loopback(app: axum::Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}
