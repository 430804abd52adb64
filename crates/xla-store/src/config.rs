//! `[store]`: which backend keeps the data, and where.

use serde::Deserialize;
use std::path::PathBuf;

/// `[store]` of the host's config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend; `sled` (embedded, the default).
    #[serde(default)]
    pub backend: Backend,
    /// sled's data directory; defaults to the user's data directory.
    pub dir: Option<PathBuf>,
    /// `[store.retention]`: days of raw rows kept per metric or layer.
    #[serde(default)]
    pub retention: crate::RetentionPolicy,
}

/// A store backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// sled, embedded in the process: nothing to install.
    #[default]
    Sled,
}
