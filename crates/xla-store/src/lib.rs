//! The store: unified XLA observations in sled, exact under crashes.
//!
//! One sled tree holds observations in blocks keyed for range scans by
//! tenant, metric and day; rollups per tenant, metric, day and dimension
//! value; connector cursors; and a string dictionary (see `keys` for the
//! layout). A batch of observations, the rollups it changes and the cursor
//! that follows it commit in one atomic batch, so a crash at any point leaves
//! either all of it or none of it. An in-memory index, rebuilt from the
//! blocks on first use, finds a record's current row for idempotent replace and a
//! subject's rows across sources (see `index`).
//!
//! This module knows nothing of plugins or the API: it stores what it is given.
#![deny(missing_docs)]

mod block;
mod dict;
mod index;
mod keys;
mod model;
mod query;
mod read;
mod retention;
mod rollup;
mod runs;
mod subjects;
#[cfg(test)]
mod tests;
mod write;

pub use model::{Provenance, StoredObservation, is_rating};
pub use query::{
    Aggregation, Breakdown, BreakdownRow, Bucket, SeriesPoint, SeriesQuery, bucket_start, evaluate, happiness,
};
pub use retention::RetentionSummary;
pub use rollup::{Rollup, Sketch};
pub use runs::{RunOutcome, RunRecord};
pub use subjects::{GroupThrough, SubjectQuery};
pub use write::{CommitBatch, CommitSummary};

use dict::Dictionary;
use index::Index;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory holds something that is not an XLA Host store.
    #[error("{path} is not an XLA Host data directory ({reason}); point --data-dir at an empty or existing store")]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store was written by another format version.
    #[error(
        "{path} holds store format {found}; this build reads format {FORMAT_VERSION}. Use a matching xla-host, or export and re-import"
    )]
    Version {
        /// The directory.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Another process has the store open.
    #[error(
        "{path} is in use by another process (one xla-host at a time per data directory); stop it or use another --data-dir"
    )]
    Locked {
        /// The directory.
        path: PathBuf,
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
    /// sled failed (I/O, corruption).
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    /// An observation cannot be stored; nothing of its batch was.
    #[error("observation `{id}` (metric `{metric}`) was refused: {reason}; nothing of its batch was stored")]
    BadObservation {
        /// Its id.
        id: String,
        /// Its metric.
        metric: String,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(reason: &str) -> StoreError {
        StoreError::Corrupt(reason.to_string())
    }
}

/// The store of one data directory.
pub struct Store {
    db: sled::Db,
    /// Dictionary and index, behind the lock that serialises writers.
    inner: Mutex<Inner>,
    durable: bool,
}

/// What the store keeps in memory.
pub(crate) struct Inner {
    dict: Dictionary,
    /// Built on first use: a store opened to read reports (rollups) never
    /// pays for reading every block.
    index: Option<Index>,
}

impl Inner {
    /// The dictionary and the index, rebuilding the index if it is not built yet.
    fn parts(&mut self, db: &sled::Db) -> Result<(&mut Dictionary, &mut Index), StoreError> {
        let index = match &mut self.index {
            Some(index) => index,
            empty => {
                let subjects: Vec<u32> = keys::SUBJECT_DIMENSIONS
                    .iter()
                    .filter_map(|d| self.dict.id(d))
                    .collect();
                empty.insert(Index::rebuild(db, &subjects)?)
            }
        };
        Ok((&mut self.dict, index))
    }
}

impl Store {
    /// Opens (or creates) the store in `path`, checking its format.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        check_directory(path)?;
        let db = open_sled(path)?;
        match db.get(keys::FORMAT)? {
            Some(bytes) => {
                let found = u32::from_be_bytes(
                    bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| StoreError::corrupt("the format version is not 4 bytes"))?,
                );
                if found != FORMAT_VERSION {
                    return Err(StoreError::Version {
                        path: path.to_path_buf(),
                        found,
                    });
                }
            }
            None if db.is_empty() => {
                db.insert(keys::FORMAT, &FORMAT_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            None => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    reason: "a sled database without an XLA Host format version".into(),
                });
            }
        }
        let dict = Dictionary::load(&db)?;
        Ok(Store {
            db,
            inner: Mutex::new(Inner { dict, index: None }),
            durable: true,
        })
    }

    /// Whether each commit waits for the disk (the default). Turning it off
    /// keeps atomicity but may lose the last half second on a crash.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    /// The cursor stored for a connector instance of a tenant.
    pub fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        let inner = self.lock()?;
        let (Some(tenant), Some(source)) = (inner.dict.id(tenant), inner.dict.id(source)) else {
            return Ok(None);
        };
        Ok(self
            .db
            .get(keys::cursor(tenant, source))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every stored observation of a tenant's metric in `[from, to)` (raw rows).
    pub fn observations(
        &self,
        tenant: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredObservation>, StoreError> {
        read::read_range(&self.db, &mut *self.lock()?, tenant, metric, from, to)
    }

    /// Every observation of one subject across metrics and sources, oldest
    /// first: `subject("acme", "ticket", "INC0012345")` gives the ticket's
    /// rating, lost time, SLA and reassignments. Subjects are the `ticket`
    /// and `device` dimensions.
    pub fn subject(&self, tenant: &str, dimension: &str, value: &str) -> Result<Vec<StoredObservation>, StoreError> {
        read::read_subject(&self.db, &mut *self.lock()?, tenant, dimension, value)
    }

    /// The rollup cell of a tenant's metric on a UTC day (days since the
    /// epoch), for all rows or for rows with one dimension value.
    pub fn rollup(
        &self,
        tenant: &str,
        metric: &str,
        day: i32,
        dimension: Option<(&str, &str)>,
    ) -> Result<Rollup, StoreError> {
        let inner = self.lock()?;
        let dict = &inner.dict;
        let (Some(tenant), Some(metric)) = (dict.id(tenant), dict.id(metric)) else {
            return Ok(Rollup::default());
        };
        let (dim_key, dim_value) = match dimension {
            None => (0, 0),
            Some((k, v)) => match (dict.id(k), dict.id(v)) {
                (Some(k), Some(v)) => (k, v),
                _ => return Ok(Rollup::default()),
            },
        };
        let set = keys::SetKey {
            tenant,
            metric,
            day,
            dim_key,
        };
        Ok(match self.db.get(set.key())? {
            Some(bytes) => rollup::decode_set(&bytes)?.remove(&dim_value).unwrap_or_default(),
            None => Rollup::default(),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::corrupt("a writer panicked while holding the store"))
    }
}

/// How long to wait for a store this process just closed: sled's flusher
/// thread lets go of the directory lock a moment after the last handle drops.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(256 * 1024 * 1024)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::Other && e.to_string().contains("lock") => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_))) => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
            Err(other) => return Err(StoreError::Sled(other)),
        }
    }
}

/// Refuses a directory that is plainly something else before sled touches it.
fn check_directory(path: &Path) -> Result<(), StoreError> {
    if !path.exists() {
        return Ok(());
    }
    if !path.is_dir() {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            reason: "it is a file, not a directory".into(),
        });
    }
    let entries: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let is_sled = entries.iter().any(|n| n == "conf" || n == "db");
    if !entries.is_empty() && !is_sled {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            reason: format!(
                "it holds other files ({})",
                entries.into_iter().take(3).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(())
}
