//! The sections of the host config this crate owns: `[plugins]` (where
//! plugins live, pins, tenant-bound scorers) and `[runtime]` (compile cache,
//! pool size). `[limits]` is [`crate::Limits`]. The binary composes them with
//! the other crates' sections into one TOML file.

use crate::plugins::Pins;
use serde::Deserialize;
use std::path::PathBuf;

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
    crate::RuntimeOptions::default().max_memory_mib
}
