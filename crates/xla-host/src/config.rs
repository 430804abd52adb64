//! The host's configuration: one TOML file, with environment overrides for
//! the paths an operator most often changes (`XLA_HOST_PLUGINS_DIR`,
//! `XLA_HOST_CACHE_DIR`).
//!
//! ```toml
//! [plugins]
//! dir = "/var/lib/xla-host/plugins"
//! pins = { require = true, sha256 = { servicenow = "9f2c…" } }
//!
//! [limits]            # defaults for every plugin call
//! deadline_ms = 30000
//! memory_mib = 256
//!
//! [sync]              # limits per upstream (an instance's granted origins)
//! max_concurrent_per_upstream = 2
//!
//! [[sync.upstreams]]
//! origin = "https://acme.service-now.com"
//! max_concurrent = 1
//! requests_per_second = 5.0
//! burst = 10
//!
//! [[connectors]]
//! name = "acme-servicenow"
//! plugin = "servicenow"
//! tenant = "acme"
//! schedule = "15m"    # `xla-host serve` syncs it every 15 minutes
//! grants = ["https://acme.service-now.com"]
//! config = { instance_url = "https://acme.service-now.com" }
//!
//! [[connectors.credentials]]
//! origin = "https://acme.service-now.com"
//! kind = "basic"
//! username = "svc_xla"
//! password = { env = "ACME_SN_PASSWORD" }
//!
//! [store.retention]   # days of raw rows kept; rollups are kept forever
//! raw_days = 730
//! layers = { technical = 90 }
//! metrics = { dex_score = 30 }
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xla_runtime::Limits;
pub use xla_runtime::config::{PluginsConfig, RuntimeConfig};
use xla_store::{Backend, Store, StoreConfig, StoreError};
use xla_store_sled::SledStore;
pub use xla_sync::config::{ConnectorInstance, CredentialConfig, SecretSource, SyncConfig, UpstreamConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Where plugins live and how they are pinned.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Runtime settings.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Default limits for every plugin call.
    #[serde(default)]
    pub limits: Limits,
    /// Connector instances.
    #[serde(default)]
    pub connectors: Vec<ConnectorInstance>,
    /// Where the data lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// The HTTP API of `serve`.
    #[serde(default)]
    pub api: xla_api::ApiConfig,
    /// Limits per upstream for syncs.
    #[serde(default)]
    pub sync: SyncConfig,
    /// XLA definitions (`[[xla]]`, see [`crate::score::definition`]).
    #[serde(default)]
    pub xla: Vec<crate::score::XlaDefinition>,
}

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
    /// Limits that cannot work.
    #[error("{scope}: {message}")]
    Limits {
        /// Where: `[limits]`.
        scope: String,
        /// What is wrong.
        message: String,
    },
    /// `[[connectors]]` or `[sync]` is wrong.
    #[error(transparent)]
    Sync(#[from] xla_sync::config::ConfigError),
    /// An XLA definition is wrong.
    #[error(transparent)]
    Xla(#[from] crate::score::DefinitionError),
    /// `[store.retention]` is wrong; the message names the rule.
    #[error("{0}")]
    Retention(String),
}

impl HostConfig {
    /// Reads a config file, applies environment overrides and validates it.
    pub fn load(path: &Path) -> Result<HostConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = HostConfig::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        config.apply_env();
        config.validate()?;
        Ok(config)
    }

    /// Parses config text (no environment overrides, no validation).
    pub fn parse(text: &str) -> Result<HostConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The XLA definition with this id.
    pub fn xla(&self, id: &str) -> Option<&crate::score::XlaDefinition> {
        self.xla.iter().find(|x| x.id == id)
    }

    /// Defaults plus environment overrides, for running without a file.
    pub fn from_env() -> HostConfig {
        let mut config = HostConfig::default();
        config.apply_env();
        config
    }

    fn apply_env(&mut self) {
        if let Some(dir) = std::env::var_os("XLA_HOST_PLUGINS_DIR") {
            self.plugins.dir = dir.into();
        }
        if let Some(dir) = std::env::var_os("XLA_HOST_CACHE_DIR") {
            self.runtime.cache_dir = Some(dir.into());
        }
    }

    /// Whether `[limits]` or a connector's `limits` set `fuel`: the runtime
    /// then counts fuel ([`crate::runtime::RuntimeOptions::meter_fuel`]),
    /// which costs every guest instruction, so it does not otherwise.
    pub fn sets_fuel(&self) -> bool {
        self.limits.fuel.is_some()
            || self
                .connectors
                .iter()
                .any(|c| c.limits.as_ref().is_some_and(|l| l.fuel.is_some()))
    }

    /// Checks what serde cannot: sensible limits, unique names, parseable
    /// grants and origins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max_memory_mib = self.runtime.max_memory_mib;
        self.limits
            .validate(max_memory_mib)
            .map_err(|message| ConfigError::Limits {
                scope: "[limits]".into(),
                message,
            })?;
        let mut ids = std::collections::HashSet::new();
        for xla in &self.xla {
            xla.validate()?;
            if !ids.insert(xla.id.as_str()) {
                return Err(ConfigError::Xla(crate::score::DefinitionError {
                    xla: xla.id.clone(),
                    field: "id",
                    why: "is used by two XLAs; give each its own".into(),
                }));
            }
        }
        self.store.retention.validate().map_err(ConfigError::Retention)?;
        xla_sync::config::validate_instances(&self.connectors, &self.limits, max_memory_mib)?;
        Ok(self.sync.validate()?)
    }

    /// What the sync engine reads of this config.
    pub fn sync_setup(&self) -> xla_sync::SyncSetup<'_> {
        xla_sync::SyncSetup {
            connectors: &self.connectors,
            sync: &self.sync,
            limits: &self.limits,
            plugins: &self.plugins,
        }
    }

    /// The connector instance called `name`.
    pub fn connector(&self, name: &str) -> Option<&ConnectorInstance> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// Opens the configured store: sled's in `data_dir` when given (the
    /// command line's `--data-dir`), else in [`HostConfig::data_dir`]; or
    /// PostgreSQL's at [`HostConfig::store_url`].
    ///
    /// # Errors
    /// The store's own: a foreign or locked directory, another format, a
    /// database that cannot be reached; [`StoreError::BadRequest`] for a
    /// PostgreSQL store without a connection string, or in a build without
    /// the `postgres` feature.
    pub async fn open_store(&self, data_dir: Option<&Path>) -> Result<Arc<dyn Store>, StoreError> {
        match self.store.backend {
            Backend::Sled => {
                let dir = data_dir.map_or_else(|| self.data_dir(), Path::to_path_buf);
                Ok(Arc::new(SledStore::open(&dir)?))
            }
            Backend::Postgres => {
                if let Some(dir) = data_dir {
                    tracing::warn!(data_dir = %dir.display(), "the store is PostgreSQL: the data directory is not used");
                }
                self.open_postgres().await
            }
        }
    }

    /// The PostgreSQL store's connection string: `[store] url`, else the
    /// environment's `XLA_HOST_STORE_URL`.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] when neither gives one.
    pub fn store_url(&self) -> Result<String, StoreError> {
        self.store
            .url
            .clone()
            .or_else(|| std::env::var("XLA_HOST_STORE_URL").ok().filter(|u| !u.is_empty()))
            .ok_or_else(|| {
                StoreError::BadRequest(
                    "[store] backend = \"postgres\" needs a connection string: set [store] url, or XLA_HOST_STORE_URL \
                     (postgres://user:password@host/database)"
                        .into(),
                )
            })
    }

    #[cfg(feature = "postgres")]
    async fn open_postgres(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(xla_store_pg::PgStore::connect(&self.store_url()?).await?))
    }

    #[cfg(not(feature = "postgres"))]
    async fn open_postgres(&self) -> Result<Arc<dyn Store>, StoreError> {
        Err(StoreError::BadRequest(
            "[store] backend = \"postgres\", but this build has no PostgreSQL store: build xla-host with its \
             `postgres` feature (on by default)"
                .into(),
        ))
    }

    /// Opens the configured store like [`HostConfig::open_store`], but only
    /// one that exists: for commands that inspect a store, where a mistyped
    /// `--data-dir` must not leave a new, empty store behind.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] naming the place and how to give it; the
    /// store's own otherwise.
    pub async fn open_existing_store(&self, data_dir: Option<&Path>) -> Result<Arc<dyn Store>, StoreError> {
        match self.store.backend {
            Backend::Sled => {
                let dir = data_dir.map_or_else(|| self.data_dir(), Path::to_path_buf);
                let empty = std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_none());
                if empty {
                    return Err(StoreError::NotFound {
                        location: dir.display().to_string(),
                    });
                }
                self.open_store(Some(&dir)).await
            }
            Backend::Postgres => self.open_store(data_dir).await,
        }
    }

    /// The data directory: configured, or the user's data directory, or
    /// `xla-data` in the working directory.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.store.dir {
            return dir.clone();
        }
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local").join("share")))
            .map_or_else(|| PathBuf::from("xla-data"), |base| base.join("xla-host").join("data"))
    }

    /// The compile cache directory: configured, or the user's cache directory.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.runtime.cache_dir {
            return Some(dir.clone());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("xla-host").join("compiled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use xla_runtime::outbound::Origin;

    #[test]
    fn a_full_config_parses() {
        let text = r#"
[plugins]
dir = "/srv/plugins"
pins = { require = true, sha256 = { json-feed = "ab" } }

[limits]
deadline_ms = 5000

[[connectors]]
name = "feed"
plugin = "json-feed"
tenant = "acme"
grants = ["http://127.0.0.1:8080"]
config = { base_url = "http://127.0.0.1:8080/xla" }

[[connectors.credentials]]
origin = "http://127.0.0.1:8080"
kind = "bearer"
token = { env = "XLA_TEST_UNSET_TOKEN" }
"#;
        let config = HostConfig::parse(text).expect("parses");
        config.validate().expect("valid");
        assert!(config.plugins.pins.require);
        assert_eq!(config.limits.deadline_ms, 5000);
        assert_eq!(config.limits.memory_mib, Limits::default().memory_mib);
        let feed = config.connector("feed").expect("instance");
        assert_eq!(feed.config_json(), r#"{"base_url":"http://127.0.0.1:8080/xla"}"#);
        let error = feed.resolve_credentials().unwrap_err().to_string();
        assert!(error.contains("XLA_TEST_UNSET_TOKEN"), "{error}");
    }

    #[test]
    fn fuel_is_counted_only_when_a_limit_sets_it() {
        assert!(
            !HostConfig::parse("[limits]\nmemory_mib = 64")
                .expect("parses")
                .sets_fuel()
        );
        assert!(HostConfig::parse("[limits]\nfuel = 1000").expect("parses").sets_fuel());
        let instance = "[[connectors]]\nname='a'\nplugin='p'\nlimits = { fuel = 1000 }";
        assert!(HostConfig::parse(instance).expect("parses").sets_fuel());
    }

    #[test]
    fn instance_limits_override_only_what_they_name() {
        let text = "[limits]\nmemory_mib = 64\n[[connectors]]\nname='a'\nplugin='p'\nlimits = { deadline_ms = 900 }";
        let config = HostConfig::parse(text).expect("parses");
        config.validate().expect("valid");
        let instance = config.connector("a").expect("instance");
        let limits = config.limits.clone().with(instance.limits.as_ref());
        assert_eq!((limits.memory_mib, limits.deadline_ms), (64, 900));
        let too_big = HostConfig::parse("[limits]\nmemory_mib = 999999").expect("parses");
        assert!(too_big.validate().unwrap_err().to_string().contains("max_memory_mib"));
    }

    fn validated(text: &str) -> Result<HostConfig, String> {
        let config = HostConfig::parse(text)?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn retention_reads_per_layer_and_metric_and_names_a_bad_rule() {
        let config =
            validated("[store.retention]\nraw_days = 730\nlayers = { technical = 90 }\nmetrics = { dex_score = 30 }")
                .expect("valid");
        let retention = &config.store.retention;
        assert_eq!(
            retention.days_for("dex_score", Some(xla_types::Layer::Technical)),
            Some((30, xla_store::RetentionRule::Metric))
        );
        assert_eq!(
            retention.days_for("boot_duration_seconds", Some(xla_types::Layer::Technical)),
            Some((90, xla_store::RetentionRule::Layer))
        );
        let zero = validated("[store.retention]\nlayers = { technical = 0 }").expect_err("zero days");
        assert!(zero.contains("layers.technical = 0"), "{zero}");
        let typo = validated("[store.retention]\nlayer = { technical = 90 }").expect_err("unknown key");
        assert!(typo.contains("unknown field `layer`"), "{typo}");
        let layer = validated("[store.retention]\nlayers = { telemetry = 90 }").expect_err("unknown layer");
        assert!(layer.contains("unknown field `telemetry`"), "{layer}");
    }

    #[test]
    fn schedules_are_intervals_or_manual() {
        let config = validated(
            "[[connectors]]\nname='a'\nplugin='p'\nschedule='15m'\n\
             [[connectors]]\nname='b'\nplugin='p'\nschedule='manual'\n\
             [[connectors]]\nname='c'\nplugin='p'\n\
             [[connectors]]\nname='d'\nplugin='p'\nschedule='1d'\n\
             [[connectors]]\nname='e'\nplugin='p'\nschedule='30s'\n",
        )
        .expect("valid");
        let interval = |name: &str| config.connector(name).expect("instance").interval().expect("valid");
        assert_eq!(interval("a"), Some(Duration::from_secs(15 * 60)));
        assert_eq!(interval("b"), None);
        assert_eq!(interval("c"), None);
        assert_eq!(interval("d"), Some(Duration::from_secs(86_400)));
        assert_eq!(interval("e"), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_bad_schedule_names_the_instance_and_what_to_write() {
        for bad in ["'every quarter hour'", "'0s'", "'-5m'", "'15'"] {
            let text = format!("[[connectors]]\nname='sn'\nplugin='p'\nschedule={bad}");
            let error = validated(&text).unwrap_err();
            assert!(
                error.contains("`sn`") && error.contains("schedule") && error.contains("\"15m\""),
                "{bad}: {error}"
            );
        }
        let error = HostConfig::parse("[[connectors]]\nname='sn'\nplugin='p'\nschedule=15").unwrap_err();
        assert!(error.contains("schedule"), "{error}");
    }

    #[test]
    fn sync_limits_default_and_override_per_origin() {
        let config = validated(
            r#"
[sync]
max_concurrent_per_upstream = 3

[[sync.upstreams]]
origin = "https://ACME.service-now.com/"
max_concurrent = 1
requests_per_second = 5
burst = 10

[[sync.upstreams]]
origin = "https://acme.eu.happysignals.com"
requests_per_second = 0.5
"#,
        )
        .expect("valid");
        assert_eq!(config.sync.max_concurrent("https://acme.service-now.com:443"), 1);
        assert_eq!(config.sync.max_concurrent("https://acme.eu.happysignals.com:443"), 3);
        assert_eq!(config.sync.max_concurrent("https://other.example:443"), 3);
        let rates = config.sync.rate_limits().expect("valid").expect("some");
        let sn = rates
            .limit(&Origin::parse("https://acme.service-now.com").expect("origin"))
            .expect("limited");
        assert_eq!((sn.requests_per_second(), sn.burst()), (5.0, 10));
        let hs = rates
            .limit(&Origin::parse("https://acme.eu.happysignals.com").expect("origin"))
            .expect("limited");
        assert_eq!(hs.burst(), 1, "the default burst is the rate rounded up");
        assert_eq!(HostConfig::default().sync.max_concurrent_per_upstream, 2);
        assert!(HostConfig::default().sync.rate_limits().expect("valid").is_none());
    }

    #[test]
    fn bad_sync_limits_name_the_field_and_what_to_write() {
        let cases = [
            (
                "[sync]\nmax_concurrent_per_upstream = 0",
                "max_concurrent_per_upstream = 2",
            ),
            ("[sync]\nmax_concurrent_per_upstream = -1", "1 or more"),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\nmax_concurrent = 0",
                "max_concurrent = 1",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\nmax_concurrent = -2",
                "1 or more",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\nrequests_per_second = 0",
                "requests_per_second = 5",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\nrequests_per_second = -3.5",
                "above 0",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\nrequests_per_second = 1\nburst = 0",
                "burst must be 1 or more",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\nburst = 4",
                "burst needs requests_per_second",
            ),
            (
                "[[sync.upstreams]]\norigin = 'a.example'\nmax_concurrent = 1",
                "scheme://host",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://*.example'\nmax_concurrent = 1",
                "wildcards",
            ),
            (
                "[[sync.upstreams]]\norigin = 'https://a.example'\n[[sync.upstreams]]\norigin = 'https://A.example:443'",
                "two entries",
            ),
            ("[sync]\nmax_concurrency = 1", "max_concurrency"),
        ];
        for (text, expected) in cases {
            let error = validated(text).unwrap_err();
            assert!(error.contains(expected), "{text}\n=> {error}");
            let names_where = error.contains("[sync]")
                || error.contains("sync.upstreams")
                || error.contains("max_concurrent")
                || error.contains("origin");
            assert!(names_where, "{text}\n=> {error}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_grants_are_named() {
        let error = HostConfig::parse("[plugins]\ndirr = 'x'").unwrap_err();
        assert!(error.contains("dirr"), "{error}");
        let config = HostConfig::parse("[[connectors]]\nname='a'\nplugin='p'\ngrants=['acme.com']").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`a`") && error.contains("acme.com"), "{error}");
    }
}
