//! What can go wrong in a store, in the host's terms: no variant carries a
//! backend's type, so callers never depend on which backend runs.

use std::error::Error;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The location holds something that is not an XLA Host store.
    #[error(
        "{location} is not an XLA Host store ({reason}); point [store] (or --data-dir) at an empty or existing store"
    )]
    Foreign {
        /// The directory or database.
        location: String,
        /// What was found.
        reason: String,
    },
    /// The store was written by another format (or schema) version.
    #[error(
        "{location} holds store format {found}; this build reads format {supported}. Use a matching xla-host, or export and re-import"
    )]
    Version {
        /// The directory or database.
        location: String,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Another process has the store open.
    #[error(
        "{location} is in use by another process (one xla-host at a time per data directory); stop it or use another --data-dir"
    )]
    Locked {
        /// The directory.
        location: String,
    },
    /// No store is there, where one was expected to exist already.
    #[error(
        "no store in {location}: give the data directory with --data-dir (or XLA_HOST_DATA, or [store] dir in the host config)"
    )]
    NotFound {
        /// The directory.
        location: String,
    },
    /// The query needs raw rows that retention dropped.
    #[error(
        "{what} needs raw rows, and retention dropped those of this window; start the window after the retention cutoff, or filter and group by one dimension (rollups answer that)"
    )]
    RetiredRows {
        /// The kind of query.
        what: String,
    },
    /// A request the store cannot honour, and why.
    #[error("{0}")]
    BadRequest(String),
    /// The backend failed (I/O, a lost connection); the source says how.
    #[error("{backend} storage error: {source}")]
    Backend {
        /// Which backend (`sled`, `postgres`).
        backend: &'static str,
        /// Its error.
        source: Box<dyn Error + Send + Sync>,
    },
    /// A stored value does not decode.
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    /// An observation cannot be stored; nothing of its batch was.
    #[error("observation `{id}` (metric `{metric}`) was refused: {reason}; nothing of its batch was stored")]
    BadObservation {
        /// Its id (escaped).
        id: String,
        /// Its metric (escaped).
        metric: String,
        /// Why.
        reason: String,
    },
    /// A commit or renewal under a lease the instance no longer grants
    /// this holder: it ran out, or another holder took it over.
    #[error(
        "the lease on `{instance}` (tenant `{tenant}`, token {token}) was lost: it ran out or another host took the instance over; nothing of this write was stored; the next run resumes from the last committed cursor (a push: send it again)"
    )]
    LeaseLost {
        /// Tenant.
        tenant: String,
        /// Connector instance.
        instance: String,
        /// The lost lease's fencing token.
        token: u64,
    },
}

impl StoreError {
    /// A stored value that does not decode, and what it was.
    pub fn corrupt(reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt(reason.into())
    }

    /// A backend's own error.
    pub fn backend(backend: &'static str, source: impl Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend {
            backend,
            source: Box::new(source),
        }
    }
}
