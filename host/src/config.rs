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
//! ```

use crate::plugins::Pins;
use crate::runtime::outbound::{Credential, CredentialKind, Grant, Origin, RateLimit, RateLimits, Secret};
use crate::runtime::{LimitOverrides, Limits};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Limits per upstream for syncs.
    #[serde(default)]
    pub sync: SyncConfig,
    /// XLA definitions (`[[xla]]`, see [`crate::score::definition`]).
    #[serde(default)]
    pub xla: Vec<crate::score::XlaDefinition>,
}

/// `[sync]`: how hard the host may press each upstream. An instance's
/// upstreams are the origins of its grants; an instance with several grants
/// is limited under each.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Scheduled runs of instances sharing an upstream at once (default 2).
    #[serde(default = "default_max_concurrent", deserialize_with = "count")]
    pub max_concurrent_per_upstream: u32,
    /// Per-origin overrides: concurrency and a request rate.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_concurrent_per_upstream: default_max_concurrent(),
            upstreams: Vec::new(),
        }
    }
}

fn default_max_concurrent() -> u32 {
    2
}

/// One `[[sync.upstreams]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The origin, `scheme://host[:port]`, as an instance's grant names it.
    pub origin: String,
    /// Scheduled runs against it at once; default `max_concurrent_per_upstream`.
    #[serde(default, deserialize_with = "optional_count")]
    pub max_concurrent: Option<u32>,
    /// Requests per second from every instance together (no limit if unset).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Requests at once after an idle spell; default: the rate rounded up.
    #[serde(default, deserialize_with = "optional_count")]
    pub burst: Option<u32>,
}

/// A whole number the TOML may write as any integer; a negative one is
/// refused here with what to write (zero is refused by `validate`, which
/// names the table).
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let value = i64::deserialize(deserializer)?;
    u32::try_from(value)
        .map_err(|_| serde::de::Error::custom(format!("expected a whole number of 1 or more (e.g. 2), found {value}")))
}

fn optional_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    count(deserializer).map(Some)
}

/// `[store]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Data directory; defaults to the user's data directory.
    pub dir: Option<PathBuf>,
}

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of plugins (one subdirectory each, with `plugin.toml`).
    #[serde(default = "default_plugins_dir")]
    pub dir: PathBuf,
    /// sha256 pins.
    #[serde(default)]
    pub pins: Pins,
    /// Client-specific scorers, each bound to the one tenant it may score:
    /// `tenants = { acme-gain-share = "acme" }`. Pin them too.
    #[serde(default)]
    pub tenants: std::collections::BTreeMap<String, String>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: default_plugins_dir(),
            pins: Pins::default(),
            tenants: Default::default(),
        }
    }
}

fn default_plugins_dir() -> PathBuf {
    PathBuf::from("target/plugins")
}

/// `[runtime]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Compile cache directory; defaults to the user's cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Largest memory cap any plugin may be given, in MiB (sizes the pool).
    #[serde(default = "default_max_memory_mib")]
    pub max_memory_mib: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_memory_mib: default_max_memory_mib(),
        }
    }
}

fn default_max_memory_mib() -> u64 {
    crate::runtime::RuntimeOptions::default().max_memory_mib
}

/// One `[[connectors]]` entry: a plugin bound to a tenant, a config, grants
/// and credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorInstance {
    /// Instance name, unique in the file.
    pub name: String,
    /// Plugin name.
    pub plugin: String,
    /// Tenant the data belongs to.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Origins the instance may reach (intersected with the plugin's manifest).
    #[serde(default)]
    pub grants: Vec<String>,
    /// Credentials added by the host, per origin.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// The plugin's config, passed to it as JSON.
    #[serde(default = "empty_table")]
    pub config: toml::Table,
    /// Limits overriding some of `[limits]` for this instance.
    #[serde(default)]
    pub limits: Option<LimitOverrides>,
    /// How often `xla-host serve` syncs it: an interval such as `30s`,
    /// `15m`, `1h` or `1d`, counted from the end of the previous run;
    /// absent or `manual` for never (only `xla-host sync`).
    #[serde(default)]
    pub schedule: Option<String>,
}

fn default_tenant() -> String {
    "default".into()
}

fn empty_table() -> toml::Table {
    toml::Table::new()
}

/// Where a secret comes from: `{ env = "VAR" }` or `{ file = "/run/secrets/x" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Environment variable holding the secret.
    pub env: Option<String>,
    /// File holding the secret (trailing newline ignored).
    pub file: Option<PathBuf>,
}

/// A credential in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CredentialConfig {
    /// HTTP Basic.
    Basic {
        /// Destination origin.
        origin: String,
        /// User name.
        username: String,
        /// Password source.
        password: SecretSource,
    },
    /// Static bearer token.
    Bearer {
        /// Destination origin.
        origin: String,
        /// Token source.
        token: SecretSource,
    },
    /// OAuth2 client credentials.
    Oauth2 {
        /// Destination origin.
        origin: String,
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret source.
        client_secret: SecretSource,
        /// Scope, if any.
        #[serde(default)]
        scope: Option<String>,
    },
    /// OAuth2 password grant (ServiceNow's `/oauth_token.do`).
    #[serde(rename = "oauth2-password")]
    Oauth2Password {
        /// Destination origin.
        origin: String,
        /// Token endpoint.
        token_url: String,
        /// Client id.
        client_id: String,
        /// Client secret source.
        client_secret: SecretSource,
        /// Integration user.
        username: String,
        /// Its password source.
        password: SecretSource,
    },
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
        /// Where: `[limits]` or an instance.
        scope: String,
        /// What is wrong.
        message: String,
    },
    /// A connector instance is wrong.
    #[error("connector instance `{instance}`: {message}")]
    Instance {
        /// Instance name.
        instance: String,
        /// What is wrong.
        message: String,
    },
    /// `[sync]` is wrong.
    #[error("{scope}: {message}")]
    Sync {
        /// Where: `[sync]` or one `[[sync.upstreams]]` entry.
        scope: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// An XLA definition is wrong.
    #[error(transparent)]
    Xla(#[from] crate::score::DefinitionError),
    /// A secret could not be read.
    #[error("credential for {origin}: {message}")]
    Secret {
        /// The origin it is for.
        origin: String,
        /// What is wrong (never the secret).
        message: String,
    },
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
        let mut names = std::collections::HashSet::new();
        for instance in &self.connectors {
            let fail = |message: String| ConfigError::Instance {
                instance: instance.name.clone(),
                message,
            };
            if !names.insert(instance.name.as_str()) {
                return Err(fail("the name is used twice".into()));
            }
            let limits = self.limits.clone().with(instance.limits.as_ref());
            limits
                .validate(max_memory_mib)
                .map_err(|m| fail(format!("limits: {m}")))?;
            for grant in &instance.grants {
                Grant::parse(grant).map_err(|e| fail(format!("grants: {e}")))?;
            }
            for credential in &instance.credentials {
                Origin::parse(credential.origin()).map_err(|e| fail(format!("credentials: {e}")))?;
            }
            instance.interval().map_err(fail)?;
        }
        self.sync.validate()
    }

    /// The connector instance called `name`.
    pub fn connector(&self, name: &str) -> Option<&ConnectorInstance> {
        self.connectors.iter().find(|c| c.name == name)
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

impl SyncConfig {
    /// Checks the limits: every count at least 1, every rate above 0, every
    /// origin an origin, and no origin twice.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent_per_upstream == 0 {
            return Err(ConfigError::Sync {
                scope: "[sync]".into(),
                message: "max_concurrent_per_upstream must be 1 or more (scheduled runs against one upstream at once); write e.g. `max_concurrent_per_upstream = 2`, the default".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for upstream in &self.upstreams {
            let origin = upstream.origin()?;
            let fail = |message: String| ConfigError::Sync {
                scope: format!("[[sync.upstreams]] origin = \"{}\"", upstream.origin),
                message,
            };
            if !seen.insert(origin.clone()) {
                return Err(fail(format!("{origin} has two entries; merge them into one")));
            }
            if upstream.max_concurrent == Some(0) {
                return Err(fail(format!(
                    "max_concurrent must be 1 or more; write e.g. `max_concurrent = 1`, or leave it out for the default of {}",
                    self.max_concurrent_per_upstream
                )));
            }
            upstream.rate_limit().map_err(fail)?;
        }
        Ok(())
    }

    /// Scheduled runs allowed at once against `upstream` (an origin as
    /// [`Origin`]'s `Display` writes it, or a wildcard grant's text).
    pub fn max_concurrent(&self, upstream: &str) -> u32 {
        self.upstreams
            .iter()
            .find(|u| u.origin().is_ok_and(|o| o.to_string() == upstream))
            .and_then(|u| u.max_concurrent)
            .unwrap_or(self.max_concurrent_per_upstream)
    }

    /// The request rate limits of every upstream that has one, as one
    /// registry for the process; `None` when no upstream is rate-limited.
    pub fn rate_limits(&self) -> Result<Option<RateLimits>, ConfigError> {
        let mut limits = Vec::new();
        for upstream in &self.upstreams {
            let rate = upstream.rate_limit().map_err(|message| ConfigError::Sync {
                scope: format!("[[sync.upstreams]] origin = \"{}\"", upstream.origin),
                message,
            })?;
            if let Some(rate) = rate {
                limits.push((upstream.origin()?, rate));
            }
        }
        Ok((!limits.is_empty()).then(|| RateLimits::new(limits)))
    }
}

impl UpstreamConfig {
    /// The origin, parsed.
    pub fn origin(&self) -> Result<Origin, ConfigError> {
        Origin::parse(&self.origin).map_err(|e| ConfigError::Sync {
            scope: "[[sync.upstreams]]".into(),
            message: format!("origin: {e}"),
        })
    }

    /// The request rate, if the entry sets one.
    fn rate_limit(&self) -> Result<Option<RateLimit>, String> {
        match (self.requests_per_second, self.burst) {
            (None, None) => Ok(None),
            (None, Some(_)) => {
                Err("burst needs requests_per_second; add e.g. `requests_per_second = 5`, or remove burst".into())
            }
            (Some(rate), burst) => RateLimit::new(rate, burst).map(Some).map_err(|e| e.to_string()),
        }
    }
}

impl ConnectorInstance {
    /// How often the scheduler syncs the instance; `None` for never (no
    /// `schedule`, or `manual`). The message of an error says what to write.
    pub fn interval(&self) -> Result<Option<Duration>, String> {
        let Some(text) = self.schedule.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if text.eq_ignore_ascii_case("manual") {
            return Ok(None);
        }
        let advice =
            "write an interval such as `schedule = \"15m\"` (units s, m, h, d), or `\"manual\"` to sync only on demand";
        let interval = humantime::parse_duration(text)
            .map_err(|e| format!("schedule: `{text}` is not an interval ({e}); {advice}"))?;
        if interval.is_zero() {
            return Err(format!("schedule: `{text}` is no time at all; {advice}"));
        }
        Ok(Some(interval))
    }

    /// The plugin config as the JSON string the plugin receives.
    pub fn config_json(&self) -> String {
        serde_json::to_string(&self.config).unwrap_or_else(|_| "{}".into())
    }

    /// Reads every credential's secret.
    pub fn resolve_credentials(&self) -> Result<Vec<Credential>, ConfigError> {
        self.credentials.iter().map(CredentialConfig::resolve).collect()
    }
}

impl CredentialConfig {
    /// The origin the credential is for.
    pub fn origin(&self) -> &str {
        match self {
            CredentialConfig::Basic { origin, .. }
            | CredentialConfig::Bearer { origin, .. }
            | CredentialConfig::Oauth2 { origin, .. }
            | CredentialConfig::Oauth2Password { origin, .. } => origin,
        }
    }

    /// Reads the secret and builds the credential.
    pub fn resolve(&self) -> Result<Credential, ConfigError> {
        let origin_text = self.origin();
        let origin = Origin::parse(origin_text).map_err(|e| ConfigError::Secret {
            origin: origin_text.into(),
            message: e.to_string(),
        })?;
        let read = |source: &SecretSource| source.read(origin_text);
        let kind = match self {
            CredentialConfig::Basic { username, password, .. } => CredentialKind::Basic {
                username: username.clone(),
                password: read(password)?,
            },
            CredentialConfig::Bearer { token, .. } => CredentialKind::Bearer { token: read(token)? },
            CredentialConfig::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scope,
                ..
            } => CredentialKind::OAuth2ClientCredentials {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret: read(client_secret)?,
                scope: scope.clone(),
            },
            CredentialConfig::Oauth2Password {
                token_url,
                client_id,
                client_secret,
                username,
                password,
                ..
            } => CredentialKind::OAuth2Password {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret: read(client_secret)?,
                username: username.clone(),
                password: read(password)?,
            },
        };
        Ok(Credential::new(origin, kind))
    }
}

impl SecretSource {
    fn read(&self, origin: &str) -> Result<Secret, ConfigError> {
        let fail = |message: String| ConfigError::Secret {
            origin: origin.into(),
            message,
        };
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| fail(format!("environment variable `{var}` is not set"))),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
                .map_err(|e| fail(format!("cannot read secret file {}: {e}", path.display()))),
            _ => Err(fail("give exactly one of `env` or `file`".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
