//! The sections of the host config this crate owns: `[[connectors]]`
//! (connector instances: plugin, tenant, config, grants, credentials,
//! limits, schedule) and `[sync]` (limits per upstream). The binary
//! composes them with the other crates' sections into one TOML file.

use serde::{Deserialize, Deserializer};
use std::path::PathBuf;
use std::time::Duration;
use xla_runtime::outbound::{Credential, CredentialKind, Grant, Origin, RateLimit, RateLimits, Secret};
use xla_runtime::{LimitOverrides, Limits};

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
    /// How long a run's lease on its instance lasts unless renewed
    /// (`60s` by default, renewed every third of it): when several hosts
    /// share a store, how soon another takes over the instances of a host
    /// that died. At least 3 s.
    #[serde(default)]
    pub lease_ttl: Option<String>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_concurrent_per_upstream: default_max_concurrent(),
            upstreams: Vec::new(),
            lease_ttl: None,
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
    /// The secret pushed bodies (`POST .../events`) are signed with
    /// (HMAC-SHA256 of the raw body in `X-Hub-Signature-256: sha256=<hex>`);
    /// without it, pushes need only a `write` token.
    #[serde(default)]
    pub webhook_secret: Option<SecretSource>,
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

/// What is wrong with a `[[connectors]]` or `[sync]` section.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
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
    /// A secret could not be read.
    #[error("credential for {origin}: {message}")]
    Secret {
        /// The origin it is for.
        origin: String,
        /// What is wrong (never the secret).
        message: String,
    },
}

/// Checks the connector instances against the default `limits` and the
/// runtime's `max_memory_mib`: unique names, limits that can work,
/// parseable grants, credential origins and schedules.
pub fn validate_instances(
    instances: &[ConnectorInstance],
    limits: &Limits,
    max_memory_mib: u64,
) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for instance in instances {
        let fail = |message: String| ConfigError::Instance {
            instance: instance.name.clone(),
            message,
        };
        if !names.insert(instance.name.as_str()) {
            return Err(fail("the name is used twice".into()));
        }
        for (field, value) in [("name", &instance.name), ("tenant", &instance.tenant)] {
            if !is_identifier(value) {
                return Err(fail(format!(
                    "`{field}` must be 1 to 64 ASCII letters, digits, `-`, `_` or `.` (it appears in URLs, metric labels and file names)"
                )));
            }
        }
        let limits = limits.clone().with(instance.limits.as_ref());
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
    Ok(())
}

/// Whether `value` may name an instance or a tenant: 1 to 64 of
/// `[A-Za-z0-9._-]`, so it is a URL path segment, a Prometheus label value
/// and a file name as it is.
pub fn is_identifier(value: &str) -> bool {
    xla_types::is_plain_name(value) && value != "." && value != ".."
}

impl SyncConfig {
    /// `lease_ttl` as a duration ([`xla_store::DEFAULT_LEASE_TTL`] when unset).
    ///
    /// # Errors
    /// [`ConfigError::Sync`] for a value that is not a duration of 3 s or more.
    pub fn lease_ttl(&self) -> Result<Duration, ConfigError> {
        let Some(text) = self.lease_ttl.as_deref().map(str::trim) else {
            return Ok(xla_store::DEFAULT_LEASE_TTL);
        };
        let fail = |why: String| ConfigError::Sync {
            scope: "[sync]".into(),
            message: format!("lease_ttl: {why}; write e.g. `lease_ttl = \"60s\"`, the default"),
        };
        let ttl = humantime::parse_duration(text).map_err(|e| fail(format!("`{text}` is not a duration ({e})")))?;
        if ttl < Duration::from_secs(3) {
            return Err(fail(format!(
                "`{text}` is shorter than 3 s (the lease is renewed every third of it)"
            )));
        }
        Ok(ttl)
    }

    /// Checks the limits: every count at least 1, every rate above 0, every
    /// origin an origin, and no origin twice.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.lease_ttl()?;
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

    /// Reads the webhook secret, if the instance has one.
    ///
    /// # Errors
    /// [`ConfigError::Secret`] when its variable or file cannot be read.
    pub fn webhook_secret(&self) -> Result<Option<Secret>, ConfigError> {
        self.webhook_secret
            .as_ref()
            .map(|source| source.read(&format!("webhook of `{}`", self.name)))
            .transpose()
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
    fn instance_names_and_tenants_must_be_url_safe_identifiers() {
        for good in ["acme", "acme-feed", "snow_prod.eu", "A1"] {
            assert!(is_identifier(good), "{good}");
        }
        let long = "x".repeat(65);
        for bad in ["", "acme corp", "a/b", "é", "..", ".", "a?b", long.as_str()] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
        let instance: ConnectorInstance =
            toml::from_str("name = \"feed\"\nplugin = \"json-feed\"\ntenant = \"acme corp\"\n").expect("parses");
        let error = validate_instances(&[instance], &Limits::default(), 4096).expect_err("refused");
        let message = error.to_string();
        assert!(message.contains("feed") && message.contains("`tenant`"), "{message}");
    }
}
