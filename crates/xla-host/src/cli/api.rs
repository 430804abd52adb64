//! Composing and running the HTTP API and the dashboard for `serve`: the catalog from the
//! config and the plugins directory, the scoring engine, the socket, and a
//! graceful stop on the shared shutdown token.

use super::report;
use crate::api::{self, ApiState, Catalog, PluginEntry};
use crate::config::HostConfig;
use crate::plugins::{PluginPre, discover};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::sync::push::Receiver;
use crate::sync::schedule::SyncControl;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A running API server.
pub(crate) struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Waits for the server to finish its requests after shutdown, at most `grace`.
    pub async fn stopped(self, grace: Duration) {
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!("the API server failed: {e}"),
            Ok(Err(e)) => tracing::error!("the API server task failed: {e}"),
            Err(_) => eprintln!("requests still running after the grace were cut"),
        }
    }
}

/// Binds `addr` and serves the API until `shutdown`.
pub(crate) async fn start(
    config: &HostConfig,
    runtime: &Runtime,
    store: Arc<dyn Store>,
    sync: Option<Arc<SyncControl>>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<Server> {
    let mut state = state(config, runtime, store).await?;
    state.sync = sync;
    let state = Arc::new(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for the API (--listen or [api] listen)"))?;
    let addr = listener.local_addr().context("the API socket's address")?;
    // Results of the dashboard's views are computed after new data lands.
    let stop = shutdown.clone();
    tokio::spawn(xla_dashboard::keep_warm(state.clone(), async move {
        stop.cancelled().await
    }));
    // The dashboard shares the socket, the state and the layers.
    let app = api::app_with(state.clone(), xla_dashboard::router(state));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    });
    Ok(Server { addr, task })
}

/// The API's state: the store, the engine with the XLAs' scorers, and the catalog.
pub(crate) async fn state(config: &HostConfig, runtime: &Runtime, store: Arc<dyn Store>) -> Result<ApiState> {
    let engine = if config.xla.is_empty() {
        None
    } else {
        Some(report::engine(config, store.clone(), &config.xla, xla_dashboard::VIEW_SCORERS).await?)
    };
    let mut receivers = BTreeMap::new();
    let mut webhook_secrets = BTreeMap::new();
    for instance in &config.connectors {
        match Receiver::prepare(runtime, config.sync_setup(), instance).await {
            Ok(receiver) => {
                receivers.insert(instance.name.clone(), receiver);
            }
            Err(e) => tracing::warn!(instance = %instance.name, "takes no pushed data (webhooks, imports): {e}"),
        }
        if let Some(secret) = instance.webhook_secret()? {
            webhook_secrets.insert(instance.name.clone(), secret);
        }
    }
    Ok(ApiState {
        store,
        engine,
        catalog: catalog(config, runtime).await?,
        config: config.api.clone(),
        receivers,
        webhook_secrets,
        results: Default::default(),
        limiter: api::TokenLimiter::new(config.api.requests_per_second),
        sync: None,
        metrics: match api::install_metrics() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!("/metrics is off: {e}");
                None
            }
        },
    })
}

async fn catalog(config: &HostConfig, runtime: &Runtime) -> Result<Catalog> {
    let dir = &config.plugins.dir;
    let found = if dir.is_dir() {
        discover(runtime, dir, &config.plugins.pins).with_context(|| format!("reading plugins in {}", dir.display()))?
    } else {
        Vec::new()
    };
    let mut plugins = Vec::new();
    for plugin in found.into_iter().filter_map(|d| d.result.ok()) {
        let m = &plugin.manifest;
        let (describe, metrics) = match &plugin.pre {
            PluginPre::Connector(pre) => match pre.session(config.limits.clone(), None).describe().await {
                Ok(info) => (serde_json::to_value(&info).unwrap_or_default(), info.metrics),
                Err(e) => {
                    tracing::warn!(plugin = %m.name, "describe() failed; the API lists it without: {e}");
                    (serde_json::Value::Null, Vec::new())
                }
            },
            PluginPre::Scorer(pre) => match pre.session(config.limits.clone()).describe().await {
                Ok(info) => (serde_json::to_value(&info).unwrap_or_default(), Vec::new()),
                Err(e) => {
                    tracing::warn!(plugin = %m.name, "describe() failed; the API lists it without: {e}");
                    (serde_json::Value::Null, Vec::new())
                }
            },
        };
        plugins.push(PluginEntry {
            name: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind.to_string(),
            contract: m.contract.clone(),
            sha256: m.sha256.clone(),
            pinned: config.plugins.pins.sha256.contains_key(&m.name),
            tenant: config.plugins.tenants.get(&m.name).cloned(),
            describe,
            metrics,
        });
    }
    Ok(Catalog {
        instances: config.connectors.clone(),
        plugins,
        xlas: config.xla.clone(),
    })
}
