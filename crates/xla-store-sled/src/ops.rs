//! A batch of sled writes that knows its size, and the periodic reopen that
//! size drives.
//!
//! sled 0.34 writes the snapshot of its page table only when a database is
//! opened; opening replays the log written since that snapshot. A store
//! opened once and written for months would replay all of it on the next
//! start (38 s for 22 GB here, at the disk's speed). So the store counts the
//! bytes it hands sled, and past [`REOPEN_AFTER`] it closes sled and opens it
//! again between two commits: that open replays what was written since the
//! last one (still in the page cache) and writes a fresh snapshot, and the
//! next start replays at most about as much.

use super::{OrStore, Sled, StoreError};
use sled::IVec;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Bytes handed to sled after which it is closed and opened again. sled logs
/// more than it is handed (node splits, consolidated pages): a start replays
/// a few times this at most, about a second at this machine's disk speed.
pub(crate) const REOPEN_AFTER: u64 = 256 * 1024 * 1024;

/// Writes applied to sled as one atomic batch, counting their bytes.
#[derive(Default)]
pub(crate) struct Ops {
    batch: sled::Batch,
    bytes: u64,
}

impl Ops {
    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += (key.len() + value.len()) as u64;
        self.batch.insert(key, value);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<IVec>) {
        let key = key.into();
        self.bytes += key.len() as u64;
        self.batch.remove(key);
    }
}

impl Sled {
    /// Applies `ops` to `db` atomically and counts them toward sled's recovery.
    pub(crate) fn apply(&self, db: &sled::Db, ops: Ops) -> Result<(), StoreError> {
        self.logged.fetch_add(ops.bytes, Ordering::Relaxed);
        db.apply_batch(ops.batch).or_store()
    }

    /// Closes sled and opens it again if its bound of bytes (by default
    /// [`REOPEN_AFTER`]; see `SledStore::set_reopen_after`) were handed to
    /// it since it was opened and no reader holds it now (else the next
    /// commit tries again). Called by a writer between commits, under the
    /// writers' lock: nothing is half written, and the index and dictionary
    /// stay as they are (sled's contents do not change). A failure is
    /// logged, leaves sled closed (every call says so) and is retried by
    /// the next commit; what was committed is on disk.
    pub(crate) fn reopen_if_due(&self) {
        if self.logged.load(Ordering::Relaxed) < self.reopen_after.load(Ordering::Relaxed) {
            return;
        }
        let Some(mut db) = self.db.try_write() else {
            return;
        };
        let started = Instant::now();
        if let Some(open) = db.take() {
            if let Err(error) = open.flush() {
                *db = Some(open);
                tracing::error!(store = %self.path.display(), %error, "sled could not be flushed before its periodic reopen; it stays open");
                return;
            }
            // The last handle: dropping it lets go of the directory.
            drop(open);
        }
        match super::open_sled(&self.path) {
            Ok(open) => *db = Some(open),
            Err(error) => {
                tracing::error!(store = %self.path.display(), %error, "sled could not be opened again after its periodic close; the next commit tries again");
                return;
            }
        }
        let logged = self.logged.swap(0, Ordering::Relaxed);
        let elapsed = started.elapsed();
        tracing::debug!(
            store = %self.path.display(),
            logged_mib = logged / (1024 * 1024),
            elapsed_ms = elapsed.as_millis() as u64,
            "sled closed and opened again to bound its recovery"
        );
    }

    /// Opens sled again if a reopen failed and left it closed.
    ///
    /// # Errors
    /// Why it still cannot be opened.
    pub(crate) fn reopen_if_closed(&self) -> Result<(), StoreError> {
        if self.db.read().is_some() {
            return Ok(());
        }
        let Some(mut db) = self.db.try_write() else {
            return Ok(());
        };
        if db.is_none() {
            *db = Some(super::open_sled(&self.path).map_err(|error| {
                StoreError::backend(
                    super::BACKEND,
                    std::io::Error::other(format!(
                        "sled could not be opened again after its periodic close: {error}; restart the host"
                    )),
                )
            })?);
            self.logged.store(0, Ordering::Relaxed);
        }
        Ok(())
    }
}
