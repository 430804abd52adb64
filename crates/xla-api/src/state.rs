//! What the routes read: the store, the scoring engine, and the host's
//! catalog (connector instances, plugins and XLAs from the config), fixed
//! for the life of the server.

use crate::cache::ResultCache;
use crate::config::ApiConfig;
use crate::limit::TokenLimiter;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use utoipa::ToSchema;
use xla_runtime::outbound::Secret;
use xla_score::{Engine, XlaDefinition};
use xla_store::Store;
use xla_sync::config::ConnectorInstance;
use xla_sync::push::Receiver;
use xla_sync::schedule::SyncControl;

/// Everything a request may need.
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Scorers over the store, for reports; `None` when no scorer loaded.
    pub engine: Option<Engine>,
    /// Instances, plugins and XLAs.
    pub catalog: Catalog,
    /// Limits.
    pub config: ApiConfig,
    /// Connector instances ready to take pushed bodies, by name.
    pub receivers: BTreeMap<String, Receiver>,
    /// Webhook secrets of the instances that have one, by name.
    pub webhook_secrets: BTreeMap<String, Secret>,
    /// The Prometheus recorder's handle, when one is installed (`/metrics`).
    pub metrics: Option<PrometheusHandle>,
    /// Computed results by data version.
    pub results: ResultCache,
    /// Requests per token.
    pub limiter: TokenLimiter,
    /// The scheduler's instances, to start runs now and show when the next
    /// is due; `None` when this server runs no syncs.
    pub sync: Option<Arc<SyncControl>>,
}

/// The host's configuration as the API shows it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Connector instances.
    pub instances: Vec<ConnectorInstance>,
    /// Loaded plugins.
    pub plugins: Vec<PluginEntry>,
    /// XLA definitions.
    pub xlas: Vec<XlaDefinition>,
}

/// A loaded plugin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginEntry {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `connector` or `scorer`.
    pub kind: String,
    /// The contract version it was built against.
    pub contract: String,
    /// SHA-256 of its component, lowercase hex.
    pub sha256: String,
    /// Whether the config pins that SHA-256.
    pub pinned: bool,
    /// The one tenant a client-specific scorer is bound to.
    pub tenant: Option<String>,
    /// What its `describe()` said.
    #[schema(value_type = Object)]
    pub describe: serde_json::Value,
    /// The metrics a connector emits (none for a scorer).
    pub metrics: Vec<xla_types::MetricInfo>,
}

impl Catalog {
    /// Every tenant the host knows of (instances' and XLAs'), sorted.
    pub fn tenants(&self) -> BTreeSet<&str> {
        self.instances
            .iter()
            .map(|i| i.tenant.as_str())
            .chain(self.xlas.iter().map(|x| x.tenant.as_str()))
            .collect()
    }

    /// The instance called `name` of `tenant`.
    pub fn instance(&self, tenant: &str, name: &str) -> Option<&ConnectorInstance> {
        self.instances.iter().find(|i| i.tenant == tenant && i.name == name)
    }

    /// The XLA `id` of `tenant`.
    pub fn xla(&self, tenant: &str, id: &str) -> Option<&XlaDefinition> {
        self.xlas.iter().find(|x| x.tenant == tenant && x.id == id)
    }
}
