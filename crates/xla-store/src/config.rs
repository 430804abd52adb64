//! `[store]`: which backend keeps the data, and where.

use serde::Deserialize;
use std::path::PathBuf;

/// `[store]` of the host's config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend; `sled` (embedded, the default) or `postgres`.
    #[serde(default)]
    pub backend: Backend,
    /// sled's data directory; defaults to the user's data directory.
    pub dir: Option<PathBuf>,
    /// PostgreSQL's connection string (`postgres://user:password@host/db`,
    /// or libpq's `key=value` form), for `backend = "postgres"`; the
    /// environment's `XLA_HOST_STORE_URL` when not set here (keeps a
    /// password out of the file).
    pub url: Option<String>,
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
    /// PostgreSQL (Citus-ready), for several hosts sharing one database.
    Postgres,
}
