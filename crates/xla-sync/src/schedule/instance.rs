//! A configured connector instance made ready to sync: its plugin loaded
//! from the plugin directory, its outbound policy built (grants,
//! credentials, the process's upstream rate limits), and the target the
//! sync engine writes under. `xla-host sync` and the scheduler share it.

use crate::SyncSetup;
use crate::SyncTarget;
use crate::config::{ConfigError, ConnectorInstance};
use std::path::PathBuf;
use std::sync::Arc;
use xla_runtime::outbound::{Grant, GrantError, OutboundPolicy, RateLimits};
use xla_runtime::plugins::{LoadedPlugin, MANIFEST_FILE, Manifest, PluginLoadError, PluginPre, load_plugin};
use xla_runtime::{ConnectorPre, ConnectorSession, Limits, Runtime};

/// Why an instance cannot be made ready to sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// The plugin's manifest is missing or unreadable.
    #[error(
        "instance `{instance}` names plugin `{plugin}`, but {} is missing or bad ({reason}); build the plugins (`cargo xtask build-plugins`) or fix `[plugins] dir`",
        path.display()
    )]
    Manifest {
        /// Instance.
        instance: String,
        /// The plugin it names.
        plugin: String,
        /// The manifest file looked for.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The component did not load (tampered, unpinned, wrong world...).
    #[error("instance `{instance}`: {source}")]
    Load {
        /// Instance.
        instance: String,
        /// The loader's error.
        source: Box<PluginLoadError>,
    },
    /// The plugin is a scorer.
    #[error("instance `{instance}` names {plugin}, which is a scorer; a [[connectors]] entry needs a connector plugin")]
    NotAConnector {
        /// Instance.
        instance: String,
        /// The plugin, name and version.
        plugin: String,
    },
    /// A credential's secret could not be read.
    #[error("instance `{instance}`: {source}")]
    Credentials {
        /// Instance.
        instance: String,
        /// The config's error (never the secret).
        source: ConfigError,
    },
    /// A grant or a manifest host does not parse.
    #[error("instance `{instance}`: {source}")]
    Grants {
        /// Instance.
        instance: String,
        /// The bad origin pattern.
        source: GrantError,
    },
}

/// A connector instance ready to sync: a session per run (or one reused
/// across runs), all under the same policy and limits.
pub struct SyncInstance {
    target: SyncTarget,
    upstreams: Vec<String>,
    pre: ConnectorPre,
    limits: Limits,
    policy: Arc<OutboundPolicy>,
}

impl SyncInstance {
    /// Loads the instance's plugin and builds its policy; requests to an
    /// origin in `rate_limits` wait for that origin's shared token bucket.
    pub fn prepare(
        runtime: &Runtime,
        config: SyncSetup<'_>,
        instance: &ConnectorInstance,
        rate_limits: Option<Arc<RateLimits>>,
    ) -> Result<SyncInstance, InstanceError> {
        let plugin = load_instance_plugin(runtime, config, instance)?;
        let PluginPre::Connector(pre) = &plugin.pre else {
            return Err(InstanceError::NotAConnector {
                instance: instance.name.clone(),
                plugin: plugin.id().to_string(),
            });
        };
        let limits = config.limits.clone().with(instance.limits.as_ref());
        let credentials = instance
            .resolve_credentials()
            .map_err(|source| InstanceError::Credentials {
                instance: instance.name.clone(),
                source,
            })?;
        let mut policy =
            OutboundPolicy::new(&plugin.manifest.hosts, &instance.grants, credentials, &limits).map_err(|source| {
                InstanceError::Grants {
                    instance: instance.name.clone(),
                    source,
                }
            })?;
        if let Some(rate_limits) = rate_limits {
            policy = policy.with_rate_limits(rate_limits);
        }
        let target = SyncTarget {
            instance: instance.name.clone(),
            tenant: instance.tenant.clone(),
            config: instance.config_json(),
            plugin: plugin.manifest.name.clone(),
            version: plugin.manifest.version.clone(),
            sha256: plugin.manifest.sha256.clone(),
        };
        Ok(SyncInstance {
            target,
            upstreams: upstreams(&instance.grants),
            pre: pre.clone(),
            limits,
            policy: Arc::new(policy),
        })
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.target.instance
    }

    /// What the sync engine needs to know of it.
    pub fn target(&self) -> &SyncTarget {
        &self.target
    }

    /// Its upstreams: one per grant, sorted (see [`upstream`]).
    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }

    /// Time left of the longest hold the host has on the instance's
    /// upstreams (one asked to come back later, or its rate limit rule's
    /// budget is spent), if any.
    pub fn held_for(&self) -> Option<std::time::Duration> {
        let hold = self.policy.hold()?;
        Some(hold.remaining(self.policy.now_ms())).filter(|left| !left.is_zero())
    }

    /// A new session (one plugin instance, created on its first call).
    pub fn session(&self) -> ConnectorSession {
        self.pre.session(self.limits.clone(), Some(Arc::clone(&self.policy)))
    }
}

/// The upstream a grant names, as `[[sync.upstreams]]` keys it: the origin
/// written in full (`https://acme.service-now.com:443`), so two spellings
/// of one origin are one upstream. A wildcard grant is its own upstream,
/// under its text.
pub fn upstream(grant: &str) -> String {
    Grant::parse(grant)
        .ok()
        .and_then(|grant| grant.origin())
        .map_or_else(|| grant.trim().to_string(), |origin| origin.to_string())
}

fn upstreams(grants: &[String]) -> Vec<String> {
    let mut upstreams: Vec<String> = grants.iter().map(|grant| upstream(grant)).collect();
    upstreams.sort();
    upstreams.dedup();
    upstreams
}

/// Loads the plugin an instance names from the plugin directory.
pub fn load_instance_plugin(
    runtime: &Runtime,
    config: SyncSetup<'_>,
    instance: &ConnectorInstance,
) -> Result<LoadedPlugin, InstanceError> {
    let dir = config.plugins.dir.join(&instance.plugin);
    let path = dir.join(MANIFEST_FILE);
    let manifest = Manifest::from_file(&path).map_err(|e| InstanceError::Manifest {
        instance: instance.name.clone(),
        plugin: instance.plugin.clone(),
        path: path.clone(),
        reason: e.to_string(),
    })?;
    load_plugin(runtime, &dir.join(&manifest.wasm), &config.plugins.pins).map_err(|source| InstanceError::Load {
        instance: instance.name.clone(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_origin_is_one_upstream_however_it_is_spelled() {
        assert_eq!(
            upstream("https://ACME.service-now.com/"),
            "https://acme.service-now.com:443"
        );
        assert_eq!(upstream("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(upstream("https://*.nexthink.cloud"), "https://*.nexthink.cloud");
        let grants = ["https://a.example".to_string(), "https://a.example:443".to_string()];
        assert_eq!(upstreams(&grants), vec!["https://a.example:443".to_string()]);
    }
}
