//! The PostgreSQL store: XLA Host's [`xla_store::Store`] on PostgreSQL, for
//! those who outgrow one machine, and for several hosts sharing one
//! database.
//!
//! `tenant_id` leads every key (each table of tenant data can be
//! distributed by it on Citus); observations are partitioned by month;
//! rollups, cursors, gaps and the run log have tables of their own (see
//! `migrations/`). A batch, the rollup cells it changes and its cursor
//! commit in one transaction; rollup cells are locked in key order, so two
//! hosts committing at once wait for each other instead of deadlocking.
//!
//! The ticket join is kept at write time (see `joined`), as on sled: a
//! survey answer counts under its ticket's dimensions, and grouping by them
//! or the scorecard's ticket outcomes are reads of a few rows per day. Both
//! backends pass the same conformance suite.
#![deny(missing_docs)]

mod join;
mod joined;
mod lease;
mod partitions;
mod read;
mod retention;
mod runs;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod write;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use xla_store::{
    CommitBatch, CommitSummary, GroupThrough, GroupedThrough, Lease, LeaseGrant, LeaseRequest, RetentionSummary,
    RetiredDay, Rollups, RunRecord, SeriesQuery, SourceGap, Store, StoreError, StoreStats, StoredMetric,
    StoredObservation, SubjectQuery, SubjectRow, TokenRecord,
};

pub use schema::SCHEMA_VERSION;

/// The backend's name in errors.
const BACKEND: &str = "postgres";

/// Connections the pool keeps at most.
const POOL_SIZE: usize = 16;

/// How often a store reads the database's data version, so that report
/// caches notice what other hosts committed.
const VERSION_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// A PostgreSQL error as a store error.
pub(crate) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    StoreError::backend(BACKEND, error)
}

/// `?` on a PostgreSQL result.
pub(crate) trait OrStore<T> {
    /// The result with the error turned into a [`StoreError`].
    fn or_store(self) -> Result<T, StoreError>;
}

impl<T> OrStore<T> for Result<T, tokio_postgres::Error> {
    fn or_store(self) -> Result<T, StoreError> {
        self.map_err(pg_error)
    }
}

/// The store of one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pool: Pool,
    /// `host:port/database`, never a password: for logs and errors.
    location: String,
    /// The last data version seen (see [`Store::data_version`]).
    version: AtomicU64,
    /// Month partitions known to exist.
    partitions: partitions::Known,
    /// Token records read lately (see `tokens`).
    tokens: tokens::Recent,
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or a
    /// `key=value` connection string, as libpq takes them) and brings its
    /// schema up to [`SCHEMA_VERSION`], creating it in an empty database.
    /// Connections are plain (no TLS): a database on this host or a
    /// private network.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] for a malformed connection string;
    /// [`StoreError::Version`] for a database written by a newer build;
    /// backend errors when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::BadRequest(format!("the PostgreSQL connection string is not valid: {e}")))?;
        let location = location(&config);
        cut_off_sessions_end(&mut config);
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::backend(BACKEND, e))?;
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                location,
                version: AtomicU64::new(0),
                partitions: partitions::Known::default(),
                tokens: tokens::Recent::default(),
            }),
        };
        let mut client = store.inner.client().await?;
        schema::migrate(&mut client, &store.inner.location).await?;
        store.inner.partitions.ahead(&mut client).await?;
        store.inner.refresh_version(&client).await?;
        watch_version(&store.inner);
        Ok(store)
    }

    /// Records a tenant's retention cutoffs copied from another store
    /// (`xla-host store migrate`): unix ms, each aligned down to its UTC
    /// day; metric `None` is the tenant-wide cutoff, which covers metrics
    /// written later too. A cutoff never moves back. Restore them before
    /// the retired days under them.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] for a cutoff in the future; backend errors.
    pub async fn restore_cutoffs(&self, tenant: &str, cutoffs: &[(Option<String>, i64)]) -> Result<(), StoreError> {
        retention::restore_cutoffs(&self.inner, tenant, cutoffs).await
    }

    /// Restores one retired UTC day of a tenant's metric copied from
    /// another store (`xla-host store migrate`): the day's rollup cells and
    /// retired rows become the copy's, exactly (whatever they were: running
    /// it again changes nothing), and the ticket join is settled again for
    /// what they changed. A row without its record id keeps its key from
    /// the copy (`RetiredRecord::key`): no later record of the source
    /// replaces it.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] for a day not before a cutoff this store
    /// has ([`PgStore::restore_cutoffs`] first), a row dated outside its
    /// day or a damaged sketch; a backend error for a row whose record is
    /// stored raw here; backend errors.
    pub async fn restore_retired_day(&self, tenant: &str, metric: &str, copy: &RetiredDay) -> Result<(), StoreError> {
        retention::restore_retired_day(&self.inner, tenant, metric, copy).await
    }
}

/// Reads the data version every [`VERSION_POLL`] while the store lives:
/// commits on other hosts move it too.
fn watch_version(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(VERSION_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { break };
            let read = match inner.client().await {
                Ok(client) => inner.refresh_version(&client).await.map(drop),
                Err(error) => Err(error),
            };
            if let Err(error) = read {
                tracing::debug!(store = %inner.location, %error, "the data version could not be read");
            }
        }
    });
}

/// A host that hangs or loses the network mid-transaction must not keep
/// its locks (a lease row, advisory locks) for the kernel's two-hour TCP
/// timeout: the server ends a session idle inside a transaction after a
/// minute, and TCP keepalives notice a vanished peer within about one.
fn cut_off_sessions_end(config: &mut tokio_postgres::Config) {
    const IDLE: &str = "-c idle_in_transaction_session_timeout=60000";
    let options = match config.get_options() {
        Some(given) if given.contains("idle_in_transaction_session_timeout") => given.to_string(),
        Some(given) => format!("{given} {IDLE}"),
        None => IDLE.to_string(),
    };
    config
        .options(&options)
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(30));
}

/// `host:port/database` of a connection config, without user or password.
fn location(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

impl Inner {
    /// Advances the database's data version after a change committed, and
    /// takes it as this store's.
    pub(crate) async fn bump_version(&self, client: &tokio_postgres::Client) -> Result<(), StoreError> {
        let version: i64 = client
            .query_one("SELECT nextval('data_versions')", &[])
            .await
            .or_store()?
            .get(0);
        self.version.fetch_max(version as u64, Ordering::AcqRel);
        Ok(())
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::backend(
                BACKEND,
                std::io::Error::other(format!(
                    "no connection to the PostgreSQL store at {}: {e}",
                    self.location
                )),
            )
        })
    }

    /// Reads the database's data version (advanced by every host's commits).
    pub(crate) async fn refresh_version(&self, client: &tokio_postgres::Client) -> Result<u64, StoreError> {
        let row = client
            .query_one("SELECT last_value, is_called FROM data_versions", &[])
            .await
            .or_store()?;
        let (last, called): (i64, bool) = (row.get(0), row.get(1));
        let version = if called { last as u64 } else { 0 };
        self.version.fetch_max(version, Ordering::AcqRel);
        Ok(version)
    }
}

#[async_trait]
impl Store for PgStore {
    fn describe(&self) -> String {
        format!("PostgreSQL store at {}", self.inner.location)
    }

    fn data_version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    async fn commit(&self, batch: CommitBatch) -> Result<CommitSummary, StoreError> {
        write::commit(&self.inner, &batch).await
    }

    async fn gaps(&self, tenant: &str) -> Result<Vec<SourceGap>, StoreError> {
        read::gaps(&self.inner, tenant).await
    }

    async fn instances(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .inner
            .client()
            .await?
            .query(
                "SELECT tenant_id, source FROM cursors UNION SELECT tenant_id, instance FROM runs ORDER BY 1, 2",
                &[],
            )
            .await
            .or_store()?;
        Ok(rows.into_iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError> {
        read::cursor(&self.inner, tenant, source).await
    }

    async fn acquire_lease(&self, request: &LeaseRequest) -> Result<LeaseGrant, StoreError> {
        lease::acquire(&self.inner, request).await
    }

    async fn renew_lease(&self, lease: &mut Lease) -> Result<(), StoreError> {
        lease::renew(&self.inner, lease).await
    }

    async fn release_lease(&self, lease: &Lease, next_due: Option<std::time::Duration>) -> Result<(), StoreError> {
        lease::release(&self.inner, lease, next_due).await
    }

    async fn begin_run(&self, lease: &Lease, started: i64) -> Result<RunRecord, StoreError> {
        runs::begin(&self.inner, lease, started).await
    }

    async fn save_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        runs::save(&**self.inner.client().await?, record).await
    }

    async fn runs_before(
        &self,
        tenant: &str,
        instance: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        runs::before(&**self.inner.client().await?, tenant, instance, before, limit).await
    }

    async fn run(&self, tenant: &str, instance: &str, run: u64) -> Result<Option<RunRecord>, StoreError> {
        runs::one(&self.inner, tenant, instance, run).await
    }

    async fn run_count(&self, tenant: &str, instance: &str) -> Result<u64, StoreError> {
        runs::count(&self.inner, tenant, instance).await
    }

    async fn observations(
        &self,
        tenant: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredObservation>, StoreError> {
        read::observations(&self.inner, tenant, metric, from, to).await
    }

    async fn subject(&self, tenant: &str, dimension: &str, value: &str) -> Result<Vec<StoredObservation>, StoreError> {
        read::subject(&self.inner, tenant, dimension, value).await
    }

    async fn rollups(&self, query: &SeriesQuery) -> Result<Rollups, StoreError> {
        read::rollups(&self.inner, query).await
    }

    async fn subject_rows(&self, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError> {
        join::subject_rows(&self.inner, query).await
    }

    async fn grouped_through(&self, query: &GroupThrough) -> Result<GroupedThrough, StoreError> {
        join::grouped_through(&self.inner, query).await
    }

    async fn ticket_outcomes(
        &self,
        tenant: &str,
        group_by: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Option<xla_store::OutcomesBySlice>, StoreError> {
        join::ticket_outcomes(&self.inner, tenant, group_by, from, to).await
    }

    async fn save_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        tokens::save(&self.inner, token).await
    }

    async fn note_token_use(&self, id: &str, at: i64) -> Result<(), StoreError> {
        tokens::note_use(&self.inner, id, at).await
    }

    async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        tokens::one(&self.inner, id).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        tokens::all(&self.inner).await
    }

    async fn retire_before(
        &self,
        tenant: &str,
        metric: Option<&str>,
        cutoff: i64,
    ) -> Result<RetentionSummary, StoreError> {
        retention::retire_before(&self.inner, tenant, metric, cutoff).await
    }

    async fn stored_metrics(&self) -> Result<Vec<StoredMetric>, StoreError> {
        read::stored_metrics(&self.inner).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        read::stats(&self.inner).await
    }
}
