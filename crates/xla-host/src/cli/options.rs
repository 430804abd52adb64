//! Options shared by several commands: the host config, limits, grants and
//! credentials given on the command line.

use crate::config::HostConfig;
use crate::runtime::outbound::{Credential, CredentialKind, Origin, Secret};
use crate::runtime::{Limits, Runtime, RuntimeOptions};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::Path;

/// Loads the host config file, or defaults with environment overrides.
pub(crate) fn host_config(path: Option<&Path>) -> Result<HostConfig> {
    match path {
        Some(path) => Ok(HostConfig::load(path)?),
        None => Ok(HostConfig::from_env()),
    }
}

/// The runtime for this process, with the configured compile cache; it
/// counts fuel when the config sets a fuel limit.
pub(crate) fn runtime(config: &HostConfig) -> Result<Runtime> {
    start_runtime(config, config.sets_fuel())
}

/// [`runtime`] for a command that also takes limits on its command line.
pub(crate) fn runtime_for(config: &HostConfig, limits: &LimitArgs) -> Result<Runtime> {
    start_runtime(config, config.sets_fuel() || limits.fuel.is_some())
}

fn start_runtime(config: &HostConfig, meter_fuel: bool) -> Result<Runtime> {
    let options = RuntimeOptions {
        cache_dir: config.cache_dir(),
        max_memory_mib: config.runtime.max_memory_mib,
        meter_fuel,
        ..RuntimeOptions::default()
    };
    Runtime::new(options).context("starting the Wasm runtime")
}

/// `--data-dir` of the commands that work on an existing store.
#[derive(Debug, Args)]
pub(crate) struct DataDirArg {
    /// Data directory.
    #[arg(long, env = "XLA_HOST_DATA", value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

/// Per-call limits on the command line, over the config's `[limits]`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LimitArgs {
    /// Wall-clock deadline of each plugin call, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub deadline_ms: Option<u64>,
    /// Memory cap of the plugin instance, in MiB.
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Fuel per call (about one unit per Wasm instruction); unlimited if unset.
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
}

impl LimitArgs {
    /// `limits` with the command line's overrides, checked against the pool.
    pub fn apply(&self, limits: Limits, config: &HostConfig) -> Result<Limits> {
        let overrides = crate::runtime::LimitOverrides {
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
            fuel: self.fuel,
            ..Default::default()
        };
        let limits = limits.with(Some(&overrides));
        limits
            .validate(config.runtime.max_memory_mib)
            .map_err(|m| anyhow::anyhow!("limits: {m}"))?;
        Ok(limits)
    }
}

/// `--config` value: inline JSON, or `@file`.
pub(crate) fn read_json_arg(value: &str) -> Result<String> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading config file {path}"))?,
        None => value.to_string(),
    };
    serde_json::from_str::<serde_json::Value>(&text).with_context(|| {
        format!(
            "--config must be JSON or @file with JSON; got `{}`",
            text.chars().take(80).collect::<String>()
        )
    })?;
    Ok(text)
}

/// Parses `--credential ORIGIN=KIND:ENV_VAR`. The variable holds the secret:
/// `user:password` for `basic`, the token for `bearer`, and for `oauth2` a
/// JSON object `{"token_url", "client_id", "client_secret", "scope"}`.
pub(crate) fn parse_credential(arg: &str) -> Result<Credential> {
    let (origin, rest) = arg
        .rsplit_once('=')
        .with_context(|| format!("--credential `{arg}`: expected ORIGIN=KIND:ENV_VAR"))?;
    let (kind, var) = rest
        .split_once(':')
        .with_context(|| format!("--credential `{arg}`: expected ORIGIN=KIND:ENV_VAR"))?;
    let origin = Origin::parse(origin).with_context(|| format!("--credential `{arg}`"))?;
    let secret =
        std::env::var(var).with_context(|| format!("--credential `{arg}`: environment variable `{var}` is not set"))?;
    let kind = match kind {
        "basic" => {
            let (username, password) = secret
                .split_once(':')
                .with_context(|| format!("--credential `{arg}`: `{var}` must hold user:password"))?;
            CredentialKind::Basic {
                username: username.to_string(),
                password: Secret::new(password),
            }
        }
        "bearer" => CredentialKind::Bearer {
            token: Secret::new(secret),
        },
        "oauth2" => oauth2_from_json(arg, var, &secret)?,
        other => bail!("--credential `{arg}`: unknown kind `{other}`; use basic, bearer or oauth2"),
    };
    Ok(Credential::new(origin, kind))
}

fn oauth2_from_json(arg: &str, var: &str, secret: &str) -> Result<CredentialKind> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OAuth {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    }
    // Never echo the value: it holds the client secret.
    let oauth: OAuth = serde_json::from_str(secret).map_err(|_| {
        anyhow::anyhow!(
            "--credential `{arg}`: `{var}` must hold JSON {{\"token_url\", \"client_id\", \"client_secret\", \"scope\"}}"
        )
    })?;
    Ok(CredentialKind::OAuth2ClientCredentials {
        token_url: oauth.token_url,
        client_id: oauth.client_id,
        client_secret: Secret::new(oauth.client_secret),
        scope: oauth.scope,
    })
}
