//! The embedded store: XLA Host's [`xla_store::Store`] on sled, exact under
//! crashes, nothing to install.
//!
//! One sled tree holds observations in blocks keyed for range scans by
//! tenant, metric and day; rollups per tenant, metric, day and dimension
//! value; connector cursors; the run log; and a string dictionary (see
//! `keys` for the layout). A batch of observations, the rollups it changes
//! and the cursor that follows it commit in one atomic batch, so a crash at
//! any point leaves either all of it or none of it. An index on disk (a
//! table beside sled's files, kept in step through a journal) finds a
//! record's current row for idempotent replace and a subject's rows across
//! sources (see `index`): opening a store costs the same whatever its size.
//!
//! sled's calls block (disk reads, the flush a durable commit waits for), so
//! [`SledStore`] runs each on tokio's blocking pool: a query never stalls an
//! async worker.
#![deny(missing_docs)]

mod block;
mod dict;
mod index;
mod join;
mod keys;
mod migrate;
mod ops;
mod query;
mod read;
mod retention;
mod rollup;
mod runs;
mod stats;
mod subjects;
mod table;
mod tokens;
mod write;

use async_trait::async_trait;
use dict::Dictionary;
use index::Index;
use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use xla_store::{
    CommitBatch, CommitSummary, GroupThrough, GroupedThrough, Lease, LeaseGrant, LeaseRequest, LocalLeases,
    RetentionSummary, RetiredDay, Rollups, RunRecord, SeriesQuery, SourceGap, Store, StoreError, StoreStats,
    StoredMetric, StoredObservation, SubjectQuery, SubjectRow, TokenRecord,
};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 10;

/// The backend's name in errors.
const BACKEND: &str = "sled";

/// A sled error as a store error.
pub(crate) fn sled_error(error: sled::Error) -> StoreError {
    StoreError::backend(BACKEND, error)
}

/// `?` on a sled result: `db.get(key).or_store()?`.
pub(crate) trait OrStore<T> {
    /// The result with a sled error turned into a [`StoreError`].
    fn or_store(self) -> Result<T, StoreError>;
}

impl<T> OrStore<T> for Result<T, sled::Error> {
    fn or_store(self) -> Result<T, StoreError> {
        self.map_err(sled_error)
    }
}

/// The store of one data directory, as the [`Store`] trait serves it.
#[derive(Clone)]
pub struct SledStore {
    sled: Arc<Sled>,
}

/// The store itself, with blocking methods.
pub(crate) struct Sled {
    /// sled's database, closed and opened again now and then to bound its
    /// recovery (see [`Sled::reopen_if_due`]); `None` only if that failed.
    db: RwLock<Option<sled::Db>>,
    /// Bytes handed to sled since it was opened, the measure of what its
    /// recovery would replay (see `ops`).
    logged: AtomicU64,
    /// After how many of those bytes sled is closed and opened again.
    reopen_after: AtomicU64,
    /// Dictionary and index, behind the lock that serialises writers.
    inner: Mutex<Inner>,
    /// Whether each commit waits for the disk.
    durable: AtomicBool,
    /// Bumped after every commit and retention (see [`Store::data_version`]).
    version: std::sync::atomic::AtomicU64,
    /// Where it is, for errors and logs.
    path: PathBuf,
    /// Instances' leases: in this process, the only one that opens the store.
    leases: LocalLeases,
}

/// What the store keeps in memory.
pub(crate) struct Inner {
    dict: Dictionary,
    /// Opened on first use: a store opened to read reports (rollups) never
    /// touches it, nor replays its journal.
    index: Option<Index>,
}

impl Inner {
    /// The dictionary and the index, opening the index if it is not open yet.
    fn parts(&mut self, db: &sled::Db, dir: &Path) -> Result<(&mut Dictionary, &mut Index), StoreError> {
        let index = match &mut self.index {
            Some(index) => index,
            empty => {
                // Names not in the dictionary yet are in no block either.
                let subjects = index::SubjectDims::new(
                    keys::SUBJECT_DIMENSIONS
                        .iter()
                        .filter_map(|d| self.dict.id(d))
                        .collect(),
                    self.dict.id(xla_store::JOIN_KEY),
                    join::metric_names().filter_map(|m| self.dict.id(m)).collect(),
                    index::rows_by_number_from(db)?,
                );
                empty.insert(Index::open(db, dir, &subjects)?)
            }
        };
        Ok((&mut self.dict, index))
    }
}

/// A store closed cleanly leaves its index checkpointed: the next open
/// replays nothing.
impl Drop for Sled {
    fn drop(&mut self) {
        let Ok(inner) = self.inner.get_mut() else { return };
        let Some(db) = self.db.get_mut() else { return };
        if let Some(index) = inner.index.as_mut().filter(|index| !index.is_checkpointed()) {
            let closed = db.flush().map_err(sled_error).and_then(|_| index.checkpoint(db));
            if let Err(error) = closed {
                // The journal is still there: the next open replays it.
                tracing::warn!(store = %self.path.display(), %error, "the store's index was not checkpointed on close");
            }
        }
    }
}

impl Sled {
    /// Opens (or creates) the store in `path`, checking its format.
    fn open(path: &Path) -> Result<Sled, StoreError> {
        check_directory(path)?;
        let db = open_sled(path)?;
        match db.get(keys::FORMAT).or_store()? {
            Some(bytes) => {
                let found = u32::from_be_bytes(
                    bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| StoreError::corrupt("the format version is not 4 bytes"))?,
                );
                if (migrate::OLDEST..FORMAT_VERSION).contains(&found) {
                    migrate::upgrade(&db, path, found)?;
                } else if found != FORMAT_VERSION {
                    return Err(StoreError::Version {
                        location: path.display().to_string(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None if db.is_empty() => {
                db.insert(keys::FORMAT, &FORMAT_VERSION.to_be_bytes()).or_store()?;
                db.flush().or_store()?;
            }
            None => {
                return Err(StoreError::Foreign {
                    location: path.display().to_string(),
                    reason: "a sled database without an XLA Host format version".into(),
                });
            }
        }
        let dict = Dictionary::load(&db)?;
        let sled = Sled {
            db: RwLock::new(Some(db)),
            logged: AtomicU64::new(0),
            reopen_after: AtomicU64::new(ops::REOPEN_AFTER),
            inner: Mutex::new(Inner { dict, index: None }),
            durable: AtomicBool::new(true),
            version: std::sync::atomic::AtomicU64::new(0),
            path: path.to_path_buf(),
            leases: LocalLeases::default(),
        };
        if sled.db()?.contains_key(keys::JOIN_REBUILD).or_store()? {
            sled.rebuild_join()?;
        }
        Ok(sled)
    }

    /// Whether each commit waits for the disk.
    fn durable(&self) -> bool {
        self.durable.load(Ordering::Relaxed)
    }

    /// The cursor stored for a connector instance of a tenant.
    fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        let inner = self.lock()?;
        let (Some(tenant), Some(source)) = (inner.dict.id(tenant), inner.dict.id(source)) else {
            return Ok(None);
        };
        Ok(self
            .db()?
            .get(keys::cursor(tenant, source))
            .or_store()?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every (tenant, instance) with a cursor or runs, sorted.
    fn instances(&self) -> Result<Vec<(String, String)>, StoreError> {
        let inner = self.lock()?;
        let db = self.db()?;
        let mut found = std::collections::BTreeSet::new();
        for entry in db.scan_prefix([keys::CURSOR]) {
            let (key, _) = entry.or_store()?;
            let id = |at: usize| {
                key.get(at..at + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .and_then(|b| inner.dict.string(u32::from_be_bytes(b)))
                    .map(str::to_string)
                    .ok_or_else(|| StoreError::corrupt("a cursor key names no tenant or source"))
            };
            found.insert((id(1)?, id(5)?));
        }
        found.extend(runs::instances(&db)?);
        Ok(found.into_iter().collect())
    }

    /// The open gaps of every source of a tenant, by source then span.
    fn gaps(&self, tenant: &str) -> Result<Vec<SourceGap>, StoreError> {
        let inner = self.lock()?;
        let Some(tenant) = inner.dict.id(tenant) else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for entry in self.db()?.scan_prefix(keys::gaps_prefix(tenant)) {
            let (key, value) = entry.or_store()?;
            let source_id = key
                .get(5..9)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::corrupt("a gap key names no source"))?;
            let source = inner
                .dict
                .string(source_id)
                .ok_or_else(|| StoreError::corrupt("a gap key names no source"))?;
            let gaps: Vec<xla_types::Gap> =
                serde_json::from_slice(&value).map_err(|e| StoreError::corrupt(format!("stored gaps: {e}")))?;
            let mut metrics = self
                .written(tenant, source_id)?
                .into_iter()
                .map(|id| inner.dict.string(id).map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| StoreError::corrupt("a written metric is not in the dictionary"))?;
            metrics.sort();
            all.extend(gaps.into_iter().map(|gap| SourceGap {
                source: source.to_string(),
                gap,
                metrics: metrics.clone(),
            }));
        }
        all.sort_by(|a, b| (&a.source, a.gap.span).cmp(&(&b.source, b.gap.span)));
        Ok(all)
    }

    /// Every stored observation of a tenant's metric in `[from, to)` (raw rows).
    fn observations(
        &self,
        tenant: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredObservation>, StoreError> {
        // The writers' lock first, as every path takes them: a reader holding
        // the database while it waits would keep a reopen from happening.
        let mut inner = self.lock()?;
        read::read_range((&*self.db()?, &self.path), &mut inner, tenant, metric, from, to)
    }

    /// Every observation of one subject across metrics and sources, oldest
    /// first: `subject("acme", "ticket", "INC0012345")` gives the ticket's
    /// rating, lost time, SLA and reassignments. Subjects are the `ticket`
    /// and `device` dimensions.
    fn subject(&self, tenant: &str, dimension: &str, value: &str) -> Result<Vec<StoredObservation>, StoreError> {
        let mut inner = self.lock()?;
        read::read_subject((&*self.db()?, &self.path), &mut inner, tenant, dimension, value)
    }

    /// sled's database, shared with other readers. Only
    /// [`Sled::reopen_if_due`] takes the lock for writing, and only if it is
    /// free at once: a thread may hold this twice without a deadlock. Take
    /// the writers' lock (if needed) first: a reader holding this while it
    /// waits for the writers' lock would put a reopen off.
    fn db(&self) -> Result<MappedRwLockReadGuard<'_, sled::Db>, StoreError> {
        RwLockReadGuard::try_map(self.db.read(), Option::as_ref).map_err(|_| {
            StoreError::backend(
                BACKEND,
                std::io::Error::other(format!(
                    "the store in {} is closed: sled could not be opened again after its periodic \
                     close (the log says why); what it stored is on disk: the next commit tries again, \
                     or restart the host",
                    self.path.display()
                )),
            )
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
                        location: path.display().to_string(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_))) => {
                return Err(StoreError::Foreign {
                    location: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
            Err(other) => return Err(sled_error(other)),
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
            location: path.display().to_string(),
            reason: "it is a file, not a directory".into(),
        });
    }
    let entries: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| StoreError::backend(BACKEND, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let is_sled = entries.iter().any(|n| n == "conf" || n == "db");
    if !entries.is_empty() && !is_sled {
        return Err(StoreError::Foreign {
            location: path.display().to_string(),
            reason: format!(
                "it holds other files ({})",
                entries.into_iter().take(3).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(())
}

impl SledStore {
    /// Opens (or creates) the store in the directory `path`, checking its
    /// format. Blocking: call it before serving, or on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Foreign`] for a directory holding something else,
    /// [`StoreError::Version`] for another format, [`StoreError::Locked`]
    /// when another process has it open, backend errors for I/O.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        Ok(SledStore {
            sled: Arc::new(Sled::open(path)?),
        })
    }

    /// Whether each commit waits for the disk (the default). Turning it off
    /// keeps atomicity but may lose the last half second on a crash: for
    /// tests and benchmarks.
    pub fn set_durable(&self, durable: bool) {
        self.sled.durable.store(durable, Ordering::Relaxed);
    }

    /// After how many bytes handed to sled the store closes sled and opens
    /// it again between two commits (default 256 MiB), which bounds what the
    /// next start replays: sled 0.34 replays its log since it was last
    /// opened. Smaller bounds a start more tightly and costs a pause (a
    /// fraction of a second at the default) more often; for tests and tuning.
    pub fn set_reopen_after(&self, bytes: u64) {
        self.sled.reopen_after.store(bytes, Ordering::Relaxed);
    }

    /// A tenant's retention cutoffs as stored (unix ms, a UTC day's start):
    /// the tenant-wide one (metric `None`, covering metrics written later
    /// too) and each metric's own, to copy into another backend.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for damaged keys.
    pub async fn retention_cutoffs(&self, tenant: &str) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let tenant = tenant.to_owned();
        self.blocking(move |sled| sled.retention_cutoffs(&tenant)).await
    }

    /// The retention cutoff of a tenant's metric (unix ms, a UTC day's
    /// start) and the days before it that have rollup cells, oldest first
    /// (days since the unix epoch): the days [`SledStore::retired_day`]
    /// exports. `None` when retention retired none of its days.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for damaged keys.
    pub async fn retired_days(&self, tenant: &str, metric: &str) -> Result<Option<(i64, Vec<i32>)>, StoreError> {
        let (tenant, metric) = (tenant.to_owned(), metric.to_owned());
        self.blocking(move |sled| sled.retired_days(&tenant, &metric)).await
    }

    /// One retired day of a tenant's metric (days since the unix epoch) as
    /// this store keeps it, to copy into another backend: its rollup cells
    /// exactly, and its retired rows that still count. sled keeps a retired
    /// row's fingerprint, not its record id (a survey answer's or SLA
    /// record's id excepted, which the ticket join keeps), and its time only for rows of the
    /// ticket join.
    ///
    /// # Errors
    /// Backend errors; [`StoreError::Corrupt`] for damaged data.
    pub async fn retired_day(&self, tenant: &str, metric: &str, day: i32) -> Result<RetiredDay, StoreError> {
        let (tenant, metric) = (tenant.to_owned(), metric.to_owned());
        self.blocking(move |sled| sled.retired_day(&tenant, &metric, day)).await
    }

    /// Runs `work` against the store on tokio's blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Sled) -> Result<T, StoreError> + Send + 'static,
    {
        let sled = Arc::clone(&self.sled);
        tokio::task::spawn_blocking(move || work(&sled))
            .await
            .map_err(|e| StoreError::corrupt(format!("a store task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SledStore {
    fn describe(&self) -> String {
        format!("sled store in {}", self.sled.path.display())
    }

    fn data_version(&self) -> u64 {
        self.sled.version.load(Ordering::Acquire)
    }

    async fn commit(&self, batch: CommitBatch) -> Result<CommitSummary, StoreError> {
        let result = self.blocking(move |sled| sled.commit(&batch)).await;
        // Even a failed commit may have changed the disk: move on either way.
        self.sled.version.fetch_add(1, Ordering::AcqRel);
        result
    }

    async fn instances(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.blocking(Sled::instances).await
    }

    async fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        let (tenant, source) = (tenant.to_owned(), source.to_owned());
        self.blocking(move |sled| sled.cursor(&tenant, &source)).await
    }

    async fn acquire_lease(&self, request: &LeaseRequest) -> Result<LeaseGrant, StoreError> {
        Ok(self.sled.leases.acquire(request))
    }

    async fn renew_lease(&self, lease: &mut Lease) -> Result<(), StoreError> {
        self.sled.leases.renew(lease)
    }

    async fn release_lease(&self, lease: &Lease, next_due: Option<std::time::Duration>) -> Result<(), StoreError> {
        self.sled.leases.release(lease, next_due);
        Ok(())
    }

    async fn begin_run(&self, lease: &Lease, started: i64) -> Result<RunRecord, StoreError> {
        let lease = lease.clone();
        self.blocking(move |sled| sled.begin_run(&lease, started)).await
    }

    async fn save_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.blocking(move |sled| sled.save_run(&record)).await
    }

    async fn runs_before(
        &self,
        tenant: &str,
        instance: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let (tenant, instance) = (tenant.to_owned(), instance.to_owned());
        self.blocking(move |sled| sled.runs_before(&tenant, &instance, before, limit))
            .await
    }

    async fn gaps(&self, tenant: &str) -> Result<Vec<SourceGap>, StoreError> {
        let tenant = tenant.to_owned();
        self.blocking(move |sled| sled.gaps(&tenant)).await
    }

    async fn run(&self, tenant: &str, instance: &str, run: u64) -> Result<Option<RunRecord>, StoreError> {
        let (tenant, instance) = (tenant.to_owned(), instance.to_owned());
        self.blocking(move |sled| sled.run(&tenant, &instance, run)).await
    }

    async fn run_count(&self, tenant: &str, instance: &str) -> Result<u64, StoreError> {
        let (tenant, instance) = (tenant.to_owned(), instance.to_owned());
        self.blocking(move |sled| sled.run_count(&tenant, &instance)).await
    }

    async fn observations(
        &self,
        tenant: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredObservation>, StoreError> {
        let (tenant, metric) = (tenant.to_owned(), metric.to_owned());
        self.blocking(move |sled| sled.observations(&tenant, &metric, from, to))
            .await
    }

    async fn subject(&self, tenant: &str, dimension: &str, value: &str) -> Result<Vec<StoredObservation>, StoreError> {
        let (tenant, dimension, value) = (tenant.to_owned(), dimension.to_owned(), value.to_owned());
        self.blocking(move |sled| sled.subject(&tenant, &dimension, &value))
            .await
    }

    async fn rollups(&self, query: &SeriesQuery) -> Result<Rollups, StoreError> {
        let query = query.clone();
        self.blocking(move |sled| sled.rollups(&query)).await
    }

    async fn subject_rows(&self, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError> {
        let query = query.clone();
        self.blocking(move |sled| sled.subject_rows(&query)).await
    }

    async fn grouped_through(&self, query: &GroupThrough) -> Result<GroupedThrough, StoreError> {
        let query = query.clone();
        self.blocking(move |sled| sled.grouped_through(&query)).await
    }

    async fn ticket_outcomes(
        &self,
        tenant: &str,
        group_by: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Option<xla_store::OutcomesBySlice>, StoreError> {
        let (tenant, group_by) = (tenant.to_string(), group_by.map(str::to_string));
        self.blocking(move |sled| sled.ticket_outcomes(&tenant, group_by.as_deref(), from, to))
            .await
    }

    async fn save_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let token = token.clone();
        self.blocking(move |sled| sled.save_token(&token)).await
    }

    async fn note_token_use(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let id = id.to_string();
        self.blocking(move |sled| sled.note_token_use(&id, at)).await
    }

    async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |sled| sled.token(&id)).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.blocking(|sled| sled.tokens()).await
    }

    async fn retire_before(
        &self,
        tenant: &str,
        metric: Option<&str>,
        cutoff: i64,
    ) -> Result<RetentionSummary, StoreError> {
        let (tenant, metric) = (tenant.to_owned(), metric.map(str::to_owned));
        let result = self
            .blocking(move |sled| sled.retire_before(&tenant, metric.as_deref(), cutoff))
            .await;
        self.sled.version.fetch_add(1, Ordering::AcqRel);
        result
    }

    async fn stored_metrics(&self) -> Result<Vec<StoredMetric>, StoreError> {
        self.blocking(|sled| sled.stored_metrics()).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.blocking(|sled| sled.stats()).await
    }
}
