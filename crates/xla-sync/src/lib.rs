//! The sync engine: runs a connector instance's pulls into the store.
//!
//! A run checks the connector, then pulls from the stored cursor until the
//! connector says there is no more. Each batch commits atomically with the
//! cursor that follows it, so a run killed at any point resumes exactly
//! where the last commit left off: nothing lost, nothing twice (a replayed
//! batch changes nothing). Failed calls are retried as [`retry`] decides;
//! every run is recorded in the store's run log, and holds the instance's
//! lease ([`lease`]) so hosts sharing a store never run one instance at once.
#![deny(missing_docs)]

pub mod config;
pub mod lease;
pub mod push;
pub mod retry;
pub mod schedule;

pub use retry::{Backoff, Decision};

use config::{ConnectorInstance, SyncConfig};
use xla_runtime::Limits;
use xla_runtime::config::PluginsConfig;
use xla_types::now_ms;

/// What the scheduler and instance preparation read of the host config:
/// the instances, `[sync]`, the default `[limits]` and `[plugins]`.
#[derive(Debug, Clone, Copy)]
pub struct SyncSetup<'a> {
    /// `[[connectors]]`.
    pub connectors: &'a [ConnectorInstance],
    /// `[sync]`.
    pub sync: &'a SyncConfig,
    /// `[limits]`, the defaults an instance's `limits` override.
    pub limits: &'a Limits,
    /// `[plugins]`: where the connectors' plugins live and their pins.
    pub plugins: &'a PluginsConfig,
}

use std::sync::Arc;
use std::time::Duration;
use xla_runtime::{ConnectorSession, RuntimeError};
use xla_store::{CommitBatch, CommitSummary, Provenance, Retracted, RunOutcome, RunRecord, Store, StoreError};
use xla_types::{Changes, Gap, Retraction};

/// What a run needs to know of its connector instance.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// Instance name (the store's source).
    pub instance: String,
    /// Tenant the data belongs to.
    pub tenant: String,
    /// The plugin config as JSON.
    pub config: String,
    /// Plugin name, version and sha256, kept with every row.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// sha256 of the component.
    pub sha256: String,
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Retries and waits.
    pub backoff: Backoff,
    /// Stop after this many pulls (the run is then `stopped`, and the next
    /// one resumes from the cursor).
    pub max_pulls: Option<u64>,
    /// The time-to-live of the instance's lease the run holds (renewed
    /// every third of it): how soon another host takes over the instance
    /// of a host that died ([`xla_store::DEFAULT_LEASE_TTL`] by default).
    pub lease_ttl: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            backoff: Backoff::default(),
            max_pulls: None,
            lease_ttl: xla_store::DEFAULT_LEASE_TTL,
        }
    }
}

/// What a run reports as it goes (a progress bar, a log).
pub trait Progress: Send {
    /// The run is in the run log as `record` (its id is `record.run`).
    fn started(&mut self, record: &RunRecord) {
        let _ = record;
    }

    /// A batch was committed; `record` holds the run's totals so far.
    fn batch(&mut self, record: &RunRecord, observations: usize) {
        let _ = (record, observations);
    }

    /// The connector said its data for a span is incomplete.
    fn partial(&mut self, gap: &Gap) {
        let _ = gap;
    }

    /// A call failed and will be retried after `wait`.
    fn retry(&mut self, attempt: u32, wait: Duration, error: &RuntimeError) {
        let _ = (attempt, wait, error);
    }
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The connector failed and retrying did not help (or could not).
    #[error("sync of `{instance}` failed after {attempts} attempt(s) at {step}: {source}")]
    Connector {
        /// Instance.
        instance: String,
        /// `check` or `pull #N`.
        step: String,
        /// Attempts made.
        attempts: u32,
        /// The last error (boxed: a runtime error is large, a sync error is
        /// passed up often).
        source: Box<RuntimeError>,
    },
    /// The upstream kept throttling without saying when to come back, past
    /// the backoff's attempts.
    #[error(
        "sync of `{instance}` failed after {attempts} attempt(s) at {step}: {upstream} kept throttling ({reason}), backing off with jitter between attempts; the next run resumes from the committed cursor. If it persists, lower the upstream's `requests_per_second` in [[sync.upstreams]] or ask the source's administrator about its rate limits"
    )]
    Throttled {
        /// Instance.
        instance: String,
        /// `check` or `pull #N`.
        step: String,
        /// The upstream (its origin), or `the source` when the host did not see it.
        upstream: String,
        /// Attempts made.
        attempts: u32,
        /// What the upstream answered, as the host or the plugin saw it.
        reason: String,
    },
    /// The upstream said to come back later than the run may wait: the run
    /// stops here, not failed, and the next resumes from the committed
    /// cursor at that time (the scheduler starts it then).
    #[error(
        "sync of `{instance}` stopped at {step} without failing: {asked}; everything before is committed and the next run resumes from the cursor then"
    )]
    Deferred {
        /// Instance.
        instance: String,
        /// `check` or `pull #N`.
        step: String,
        /// How long the upstream asked for.
        wait: Duration,
        /// Who asked, why and until when: ``http://127.0.0.1:8080 asked to
        /// come back in 1740 s (it answered 429 with `Retry-After`), at
        /// 2026-10-05T12:30:00Z``.
        asked: String,
    },
    /// The connector keeps saying "more" without moving its cursor or
    /// returning anything: a bug in it, which would otherwise loop forever.
    #[error(
        "sync of `{instance}` stopped: the connector returned {pulls} empty batches in a row without moving its cursor while saying more follows; report it to the plugin's author"
    )]
    NoProgress {
        /// Instance.
        instance: String,
        /// Empty pulls in a row.
        pulls: u32,
    },
    /// The connector's `describe()` names another plugin than its manifest.
    #[error(
        "sync of `{instance}` refused: the connector's describe() says {described} but its plugin.toml says {manifest}; rebuild the plugin so both agree"
    )]
    Identity {
        /// Instance.
        instance: String,
        /// What `describe()` says.
        described: String,
        /// What the manifest says.
        manifest: String,
    },
    /// Another host (or process) runs the instance now.
    #[error(
        "sync of `{instance}` not started: {holder} is running it (its lease on the instance lasts until {}, unless renewed); try again once that run has ended", xla_runtime::outbound::throttle::date(*.expires)
    )]
    Busy {
        /// Instance.
        instance: String,
        /// The lease's holder (`host/pid/start`, escaped).
        holder: String,
        /// When its lease runs out unless renewed, unix ms.
        expires: i64,
    },
    /// The run lost the instance's lease (renewals failed until it ran
    /// out, or another host took it over): it stops, committing nothing more.
    #[error(
        "sync of `{instance}` stopped: this host lost the instance's lease (the store could not be reached to renew it in time, or the host was paused); another host may have taken the instance over, and the next run resumes from the last committed cursor"
    )]
    LeaseLost {
        /// Instance.
        instance: String,
    },
    /// The store refused or failed; nothing of the batch was stored.
    #[error("sync of `{instance}`: the store failed: {source}")]
    Store {
        /// Instance.
        instance: String,
        /// The store's error.
        source: StoreError,
    },
}

impl SyncError {
    /// Whether the run stopped because it lost the instance's lease.
    pub fn lost_lease(&self) -> bool {
        matches!(
            self,
            SyncError::LeaseLost { .. }
                | SyncError::Store {
                    source: StoreError::LeaseLost { .. },
                    ..
                }
        )
    }
}

/// A run only goes ahead with the plugin the instance's manifest names:
/// a component swapped or rebuilt under the same manifest is refused.
fn check_identity(target: &SyncTarget, info: &xla_runtime::ConnectorInfo) -> Result<(), SyncError> {
    if info.name == target.plugin && info.version == target.version {
        return Ok(());
    }
    Err(SyncError::Identity {
        instance: target.instance.clone(),
        described: format!("`{}` {}", info.name, info.version),
        manifest: format!("`{}` {}", target.plugin, target.version),
    })
}

/// Runs one sync of `target` through `session` into `store`, now: under
/// the instance's lease, released at the end.
///
/// # Errors
/// [`SyncError::Busy`] when another host or process runs the instance;
/// the errors of [`run_leased`].
pub async fn run(
    session: &mut ConnectorSession,
    store: &Arc<dyn Store>,
    target: &SyncTarget,
    options: &SyncOptions,
    progress: &mut dyn Progress,
) -> Result<RunRecord, SyncError> {
    let mut lease = lease::take(
        &**store,
        &target.tenant,
        &target.instance,
        options.lease_ttl,
        Duration::ZERO,
    )
    .await?;
    let result = run_leased(session, store, target, &mut lease, options, progress).await;
    lease::release(&**store, &lease, None).await;
    result
}

/// Runs one sync of `target` through `session` into `store` under `lease`
/// (the instance's, granted to this process), renewing it as the run goes;
/// the caller releases it.
///
/// # Errors
/// [`SyncError::LeaseLost`] when the lease could not be kept; the
/// connector's and the store's errors (see [`SyncError`]).
pub async fn run_leased(
    session: &mut ConnectorSession,
    store: &Arc<dyn Store>,
    target: &SyncTarget,
    lease: &mut xla_store::Lease,
    options: &SyncOptions,
    progress: &mut dyn Progress,
) -> Result<RunRecord, SyncError> {
    let store_error = |source| SyncError::Store {
        instance: target.instance.clone(),
        source,
    };
    let mut record = store.begin_run(lease, now_ms()).await.map_err(store_error)?;
    progress.started(&record);
    let token = lease.token;
    let result = tokio::select! {
        result = pull_all(session, store, target, options, progress, &mut record, token) => result,
        lost = lease::keep(&**store, lease) => Err(lost),
    };
    let lost = result.as_ref().is_err_and(SyncError::lost_lease);
    record.finished = Some(lease::run_ended(lease, record.started, lost));
    record.outcome = match &result {
        Ok(outcome) => *outcome,
        // Throttled for longer than a run waits: not a failure.
        Err(error @ SyncError::Deferred { .. }) => {
            record.error = Some(error.to_string());
            RunOutcome::Stopped
        }
        Err(error) => {
            record.error = Some(error.to_string());
            RunOutcome::Failed
        }
    };
    store.save_run(&record).await.map_err(store_error)?;
    count_run(&record);
    match result {
        Err(SyncError::Deferred { .. }) | Ok(_) => Ok(record),
        Err(error) => Err(error),
    }
}

/// Counts a finished run and what it committed, by instance.
pub(crate) fn count_run(record: &RunRecord) {
    let outcome = record.outcome.name();
    metrics::counter!("xla_sync_runs_total", "instance" => record.instance.clone(), "outcome" => outcome).increment(1);
    for (kind, n) in [
        ("inserted", record.inserted),
        ("replaced", record.replaced),
        ("unchanged", record.unchanged),
        ("retracted", record.retracted),
    ] {
        metrics::counter!("xla_observations_committed_total", "instance" => record.instance.clone(), "kind" => kind)
            .increment(n);
    }
}

async fn pull_all(
    session: &mut ConnectorSession,
    store: &Arc<dyn Store>,
    target: &SyncTarget,
    options: &SyncOptions,
    progress: &mut dyn Progress,
    record: &mut RunRecord,
    lease: u64,
) -> Result<RunOutcome, SyncError> {
    let provenance = Provenance {
        connector: target.instance.clone(),
        plugin: target.plugin.clone(),
        version: target.version.clone(),
        sha256: target.sha256.clone(),
        sync_run: record.run,
    };
    let mut cursor = store
        .cursor(&target.tenant, &target.instance)
        .await
        .map_err(|source| SyncError::Store {
            instance: target.instance.clone(),
            source,
        })?;
    let mut retries = retry::Retries::new(&options.backoff, session.outbound());
    let info = with_retries("describe", &mut retries, progress, record, target, async || {
        session.describe().await
    })
    .await?;
    check_identity(target, &info)?;
    with_retries("check", &mut retries, progress, record, target, async || {
        session.check(&target.config).await
    })
    .await?;
    // Batch N commits on a blocking thread while batch N+1 is pulled: the
    // connector and the store each keep a core busy. Commits stay in order,
    // one at a time, so the stored cursor only ever moves forward.
    let mut in_flight: Option<InFlight> = None;
    let mut pulls = 0_u64;
    let mut idle = 0;
    loop {
        pulls += 1;
        let step = format!("pull #{pulls}");
        let pulled = with_retries(&step, &mut retries, progress, record, target, async || {
            session.pull(&target.config, cursor.as_deref()).await
        })
        .await;
        // Settle the previous commit first: a failed one ends the run, and
        // a batch is only committed after the one before it.
        if let Some(flight) = in_flight.take() {
            settle(flight, target, record, progress).await?;
        }
        let batch = pulled?;
        let more = batch.more;
        // A connector that returns no cursor keeps the one it was given.
        let next = batch.cursor.clone().or(cursor.clone());
        idle = if more && batch.changes.is_empty() && next == cursor {
            idle + 1
        } else {
            0
        };
        if idle >= MAX_IDLE_PULLS {
            return Err(SyncError::NoProgress {
                instance: target.instance.clone(),
                pulls: idle,
            });
        }
        for gap in &batch.changes.partial {
            tracing::warn!(instance = %target.instance, start = gap.span.start, end = gap.span.end, reason = %gap.reason, "partial data");
            progress.partial(gap);
        }
        let partial = batch.changes.partial.clone();
        let commit = commit_batch(&target.tenant, &provenance, batch.changes, next.clone(), Some(lease));
        let flight = spawn_commit(store, commit, partial);
        cursor = next;
        let stop = if !more {
            Some(RunOutcome::Completed)
        } else if options.max_pulls.is_some_and(|max| pulls >= max) {
            Some(RunOutcome::Stopped)
        } else {
            None
        };
        match stop {
            Some(outcome) => {
                settle(flight, target, record, progress).await?;
                return Ok(outcome);
            }
            None => in_flight = Some(flight),
        }
    }
}

/// Empty pulls in a row, cursor unmoved and "more" said, before a run gives up.
const MAX_IDLE_PULLS: u32 = 3;

/// Calls `call` until it succeeds or the backoff gives up (see [`retry`]).
async fn with_retries<T, F>(
    step: &str,
    retries: &mut retry::Retries<'_>,
    progress: &mut dyn Progress,
    record: &mut RunRecord,
    target: &SyncTarget,
    mut call: F,
) -> Result<T, SyncError>
where
    F: AsyncFnMut() -> Result<T, RuntimeError>,
{
    let mut attempt = 1;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let (decision, hold) = retries.decide(attempt, &error, retry::jitter());
        let (wait, spent) = match decision {
            Decision::Retry(wait) => (wait, true),
            // Told waits spend no attempt and are no retry of a failure.
            Decision::Wait(wait) => (wait, false),
            Decision::Defer(wait) => return Err(retry::deferred(target, step, wait, hold.as_ref(), &error)),
            Decision::Fail if retry::is_throttle(&error, hold.as_ref()) => {
                return Err(retry::throttled(target, step, attempt, hold.as_ref(), &error));
            }
            Decision::Fail => {
                return Err(SyncError::Connector {
                    instance: target.instance.clone(),
                    step: step.to_string(),
                    attempts: attempt,
                    source: Box::new(error),
                });
            }
        };
        tracing::warn!(instance = %target.instance, %step, attempt, ?wait, %error, "retrying");
        progress.retry(attempt, wait, &error);
        tokio::time::sleep(wait).await;
        if spent {
            attempt += 1;
            record.retries += 1;
        }
    }
}

/// A batch being committed.
struct InFlight {
    observations: usize,
    partial: Vec<Gap>,
    commit: tokio::task::JoinHandle<Result<CommitSummary, StoreError>>,
}

/// What the store is asked to write for a connector's changes: its records
/// as they came (the store keeps one row per metric value; moved, not
/// copied into one observation per value, which cost a copy of the id and
/// every dimension per value), each retraction that names metrics expanded
/// to them, and the ids of whole records retracted (the store retracts
/// every value it holds for them, whatever the connector declares).
pub(crate) fn commit_batch(
    tenant: &str,
    provenance: &Provenance,
    changes: Changes,
    cursor: Option<String>,
    lease: Option<u64>,
) -> CommitBatch {
    let (whole, some): (Vec<Retraction>, Vec<Retraction>) =
        changes.retractions.into_iter().partition(|r| r.metrics.is_empty());
    CommitBatch {
        tenant: tenant.to_string(),
        // The provenance names the instance: the store's source.
        source: provenance.connector.clone(),
        provenance: provenance.clone(),
        observations: Vec::new(),
        records: changes.records,
        retractions: some.iter().flat_map(retracted).collect(),
        retracted_records: whole.into_iter().map(|r| r.id).collect(),
        partial: changes.partial,
        complete: changes.complete,
        cursor,
        lease,
    }
}

/// The stored values a retraction that names metrics covers.
fn retracted(retraction: &Retraction) -> impl Iterator<Item = Retracted> + '_ {
    retraction
        .metrics
        .iter()
        .map(|m| Retracted::new(retraction.id.as_str(), m.as_str()))
}

/// Starts committing a batch in a task of its own, so the next pull runs
/// while the store writes (a commit waits for the disk).
fn spawn_commit(store: &Arc<dyn Store>, batch: CommitBatch, partial: Vec<Gap>) -> InFlight {
    let store = Arc::clone(store);
    let observations = batch.observations.len() + batch.records.iter().map(|r| r.values.len()).sum::<usize>();
    let commit = tokio::spawn(async move { store.commit(batch).await });
    InFlight {
        observations,
        partial,
        commit,
    }
}

/// Adds a commit's counts and gaps to the run record.
pub(crate) fn count_commit(record: &mut RunRecord, summary: &CommitSummary, partial: &[Gap]) {
    record.batches += 1;
    record.inserted += summary.inserted as u64;
    record.replaced += summary.replaced as u64;
    record.unchanged += summary.unchanged as u64;
    record.retracted += summary.retracted as u64;
    for gap in partial {
        if !record.partial.contains(gap) {
            record.partial.push(gap.clone());
        }
    }
}

/// Waits for a commit and counts it in the run record.
async fn settle(
    flight: InFlight,
    target: &SyncTarget,
    record: &mut RunRecord,
    progress: &mut dyn Progress,
) -> Result<(), SyncError> {
    let store_error = |source| SyncError::Store {
        instance: target.instance.clone(),
        source,
    };
    let summary = flight
        .commit
        .await
        .map_err(|e| store_error(StoreError::Corrupt(format!("the commit task failed: {e}"))))?
        .map_err(store_error)?;
    count_commit(record, &summary, &flight.partial);
    progress.batch(record, flight.observations);
    Ok(())
}
