//! Scheduled syncs: every connector instance with a `schedule` is synced at
//! start (unless the store says a host sharing it, or this one before a
//! restart, ran it and the next run is not due yet), then again one interval
//! (plus up to 5 % jitter, at most 30 s) after each run *ends*, so runs of
//! one instance never overlap. With [`SchedulerOptions::on_demand`],
//! instances without a schedule are loaded too and run only when asked; any
//! instance can be asked for a run now through [`Scheduler::control`] (the
//! API's `POST .../sync`), which is refused while one of its runs is on.
//!
//! Runs against one upstream (the origin of a grant) share a semaphore of
//! `max_concurrent` permits: an instance takes one permit of each of its
//! upstreams, always in the same order so two instances never wait on each
//! other, and holds them for the whole run. The request rate per upstream is
//! a separate limit, enforced on every request by the outbound policy.
//!
//! When an upstream asks to be left alone for longer than a run waits (a 429
//! with `Retry-After: 1740`, a rate limit rule's budget spent until its
//! reset), the run stops without failing and the instance's next run is due
//! when the host's hold on the upstream ends, not a whole interval later,
//! and no instance on that upstream starts a run before then: the wait costs
//! a timer, not a run held open for half an hour.
//!
//! Several hosts may share one store: before each run the job takes the
//! instance's lease (see [`crate::lease`]); while another host holds it, the
//! job waits until that lease would run out, and a host that ran the
//! instance sets when the next scheduled run is due for every host, so the
//! instance runs on one host at a time and on its schedule, not once per
//! host.
//!
//! Shutdown: once the token is cancelled no run starts and every wait (for
//! the next interval, for a permit) ends at once. A run in progress may
//! finish within `grace`; past it, the run is cut at its next await point. A
//! cut loses nothing: each batch commits atomically with its cursor, and a
//! commit already started completes on its own blocking thread (or, reaching
//! the store after the cut run's lease was released, is refused whole and
//! read again by the next run); the pull in progress is discarded and read
//! again by the next run, and the run is logged `interrupted` with the
//! counts of the batches it had committed.

mod control;
mod instance;

use control::InstanceControl;
pub use control::{InstanceSchedule, Phase, Slot, Started, SyncControl, Trigger, TriggerError};
pub use instance::{InstanceError, SyncInstance, load_instance_plugin, upstream};

use super::{Progress, SyncOptions, lease};
use crate::SyncSetup;
use crate::config::{ConfigError, ConnectorInstance, SyncConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use xla_runtime::{ConnectorSession, Runtime};
use xla_store::{Lease, LeaseGrant, RunOutcome, RunRecord, Store, StoreError};
use xla_types::now_ms;

/// How the scheduler runs syncs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Retries and waits of each run.
    pub sync: SyncOptions,
    /// How long a run in progress at shutdown may go on before it is cut.
    pub grace: Duration,
    /// Also load the instances without a `schedule`, to run when asked
    /// (through [`Scheduler::control`]); one that cannot be made ready is
    /// logged and answers triggers with why, instead of failing the rest.
    pub on_demand: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            sync: SyncOptions::default(),
            grace: Duration::from_secs(20),
            on_demand: false,
        }
    }
}

/// Why the scheduler cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// No instance has a schedule, so there is nothing to run.
    #[error(
        "no connector instance has a `schedule`{known}; add e.g. `schedule = \"15m\"` to a [[connectors]] entry of the host config (`xla-host sync <instance>` syncs one on demand)"
    )]
    NothingScheduled {
        /// ` (instances: a, b)` or empty.
        known: String,
    },
    /// The config is wrong (a schedule, `[sync]`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An instance cannot be made ready.
    #[error(transparent)]
    Instance(#[from] InstanceError),
}

/// The instances of `config` with a schedule, and their intervals; an
/// error naming the `schedule` field when there is none, and the first bad
/// schedule or `[sync]` entry.
pub fn scheduled(config: SyncSetup<'_>) -> Result<Vec<(&ConnectorInstance, Duration)>, ScheduleError> {
    config.sync.validate()?;
    let mut scheduled = Vec::new();
    for instance in config.connectors {
        let interval = instance.interval().map_err(|message| ConfigError::Instance {
            instance: instance.name.clone(),
            message,
        })?;
        if let Some(interval) = interval {
            scheduled.push((instance, interval));
        }
    }
    if scheduled.is_empty() {
        let names: Vec<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
        let known = if names.is_empty() {
            " (the host config has no [[connectors]])".to_string()
        } else {
            format!(" (instances: {}, all manual)", names.join(", "))
        };
        return Err(ScheduleError::NothingScheduled { known });
    }
    Ok(scheduled)
}

/// A run that ended, as the scheduler reports it.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    /// Instance.
    pub instance: String,
    /// Wall time from the start of the run (after its permits) to its end.
    pub duration: Duration,
    /// The run log's record as the run ended; `None` only when the store
    /// failed before the run could be recorded.
    pub record: Option<RunRecord>,
    /// Why the run failed or was cut, if it did not complete.
    pub error: Option<String>,
}

impl FinishedRun {
    /// How it ended (`failed` when there is no record).
    pub fn outcome(&self) -> RunOutcome {
        self.record.as_ref().map_or(RunOutcome::Failed, |r| r.outcome)
    }
}

struct Job {
    instance: SyncInstance,
    /// `None`: it runs only when asked.
    interval: Option<Duration>,
    control: Arc<InstanceControl>,
    /// One semaphore per upstream, in the upstreams' sorted order.
    upstreams: Vec<Arc<Semaphore>>,
}

/// Runs scheduled syncs until shut down.
pub struct Scheduler {
    store: Arc<dyn Store>,
    limits: SyncConfig,
    options: SchedulerOptions,
    semaphores: BTreeMap<String, Arc<Semaphore>>,
    jobs: Vec<Job>,
    control: SyncControl,
}

impl Scheduler {
    /// An empty scheduler writing to `store`, with `limits` per upstream.
    pub fn new(store: Arc<dyn Store>, limits: &SyncConfig, options: SchedulerOptions) -> Scheduler {
        Scheduler {
            store,
            limits: limits.clone(),
            options,
            semaphores: BTreeMap::new(),
            jobs: Vec::new(),
            control: SyncControl::default(),
        }
    }

    /// A scheduler for every instance of `config` with a schedule (and,
    /// with [`SchedulerOptions::on_demand`], every other one), each with its
    /// plugin loaded and its policy built; requests share the config's
    /// per-upstream rate limits. Fails on the first scheduled instance that
    /// cannot be made ready, naming it, and, unless on demand, when none has
    /// a schedule.
    pub fn from_config(
        runtime: &Runtime,
        config: SyncSetup<'_>,
        store: Arc<dyn Store>,
        options: SchedulerOptions,
    ) -> Result<Scheduler, ScheduleError> {
        let on_demand = options.on_demand;
        let scheduled = match scheduled(config) {
            Err(ScheduleError::NothingScheduled { .. }) if on_demand => Vec::new(),
            other => other?,
        };
        let rate_limits = config.sync.rate_limits()?.map(Arc::new);
        let mut scheduler = Scheduler::new(store, config.sync, options);
        for (instance, interval) in scheduled {
            let ready = SyncInstance::prepare(runtime, config, instance, rate_limits.clone())?;
            scheduler.add(ready, interval);
        }
        if on_demand {
            for instance in config.connectors.iter().filter(|i| i.schedule.is_none()) {
                match SyncInstance::prepare(runtime, config, instance, rate_limits.clone()) {
                    Ok(ready) => scheduler.add_on_demand(ready),
                    Err(e) => {
                        tracing::warn!(instance = %instance.name, "cannot run on demand: {e}");
                        let control = Arc::new(InstanceControl::unavailable(e.to_string()));
                        scheduler.control.insert(&instance.tenant, &instance.name, control);
                    }
                }
            }
        }
        Ok(scheduler)
    }

    /// Schedules `instance` every `interval` (from the end of each run).
    pub fn add(&mut self, instance: SyncInstance, interval: Duration) {
        self.push(instance, Some(interval));
    }

    /// Adds `instance` to run only when asked, through [`Scheduler::control`].
    pub fn add_on_demand(&mut self, instance: SyncInstance) {
        self.push(instance, None);
    }

    fn push(&mut self, instance: SyncInstance, interval: Option<Duration>) {
        let upstreams = instance
            .upstreams()
            .iter()
            .map(|upstream| {
                let permits = self.limits.max_concurrent(upstream).max(1) as usize;
                Arc::clone(
                    self.semaphores
                        .entry(upstream.clone())
                        .or_insert_with(|| Arc::new(Semaphore::new(permits))),
                )
            })
            .collect();
        let control = Arc::new(InstanceControl::default());
        let target = instance.target();
        self.control
            .insert(&target.tenant, &target.instance, Arc::clone(&control));
        self.jobs.push(Job {
            instance,
            interval,
            control,
            upstreams,
        });
    }

    /// Starting runs now and reading each instance's phase, for as long as
    /// the scheduler runs (afterwards every instance answers that the host
    /// is stopping).
    pub fn control(&self) -> Arc<SyncControl> {
        Arc::new(self.control.clone())
    }

    /// The instances and their intervals (`None`: on demand only).
    pub fn schedule(&self) -> impl Iterator<Item = (&str, Option<Duration>)> {
        self.jobs.iter().map(|job| (job.instance.name(), job.interval))
    }

    /// Runs every instance on its schedule until `shutdown` is cancelled,
    /// calling `on_finish` after each run. Returns once no run is left and
    /// no commit of a cut run is still in flight.
    pub async fn run<F>(self, shutdown: CancellationToken, on_finish: F)
    where
        F: Fn(&FinishedRun) + Send + Sync + 'static,
    {
        let on_finish: Arc<dyn Fn(&FinishedRun) + Send + Sync> = Arc::new(on_finish);
        let mut threads = Vec::new();
        for job in self.jobs {
            let name = job.instance.name().to_string();
            let context = Context {
                store: Arc::clone(&self.store),
                options: self.options.clone(),
                shutdown: shutdown.clone(),
                on_finish: Arc::clone(&on_finish),
            };
            let (done, ended) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new().name(format!("sync {name}")).spawn(move || {
                job_thread(job, context);
                let _ = done.send(());
            });
            match spawned {
                Ok(_) => threads.push((name, ended)),
                Err(e) => {
                    tracing::error!(instance = %name, "cannot start the instance's thread; it is not scheduled: {e}")
                }
            }
        }
        for (name, ended) in threads {
            if ended.await.is_err() {
                tracing::error!(instance = %name, "the instance's scheduler thread panicked");
            }
        }
    }
}

/// Runs one instance's schedule on this thread, on a runtime of its own.
///
/// A thread per instance because the sync engine's future is not `Send`
/// as the compiler sees it (its retry closures borrow with higher-ranked
/// lifetimes), so it cannot be spawned on the shared runtime. Dropping the
/// thread's runtime waits for its blocking tasks, so a commit a cut run
/// started has ended when the thread does.
fn job_thread(job: Job, context: Context) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(instance = %job.instance.name(), "cannot start the instance's runtime; it is not scheduled: {e}");
            return;
        }
    };
    let span = tracing::info_span!("schedule", instance = %job.instance.name());
    runtime.block_on(job_loop(job, context).instrument(span));
}

/// What every job shares.
struct Context {
    store: Arc<dyn Store>,
    options: SchedulerOptions,
    shutdown: CancellationToken,
    on_finish: Arc<dyn Fn(&FinishedRun) + Send + Sync>,
}

async fn job_loop(job: Job, context: Context) {
    // One session for all the instance's runs: the plugin instance stays
    // warm and the OAuth token cached between runs.
    let mut session = job.instance.session();
    let control = &job.control;
    // A scheduled instance runs at start; an on-demand one when asked.
    let mut due = job.interval.map(|_| tokio::time::Instant::now());
    loop {
        tokio::select! {
            biased;
            () = context.shutdown.cancelled() => break,
            () = control.requested_run() => {}
            () = until(due) => {}
        }
        let asked = control.starting();
        // The slot first (a push being committed ends in moments), then the
        // upstream permits, which may be held for a whole run of another instance.
        let slot = tokio::select! {
            biased;
            () = context.shutdown.cancelled() => break,
            slot = control.slot() => slot,
        };
        let permits = tokio::select! {
            biased;
            () = context.shutdown.cancelled() => break,
            permits = acquire(&job.upstreams) => permits,
        };
        let Some(permits) = permits else {
            break;
        };
        // Then the instance's lease: another host sharing the store may be
        // running it, or have just run it.
        let answer = tokio::select! {
            biased;
            () = context.shutdown.cancelled() => break,
            answer = take_lease(&job, &context, asked) => answer,
        };
        let mut lease = match answer {
            Ok(LeaseGrant::Granted(lease)) => lease,
            other => {
                drop(permits);
                drop(slot);
                due = not_granted(other, job.interval, control);
                control.ended(due.map(|at| {
                    now_ms().saturating_add(at.duration_since(tokio::time::Instant::now()).as_millis() as i64)
                }));
                continue;
            }
        };
        let finished = run_once(&job.instance, &mut session, &context, control, &mut lease).await;
        drop(permits);
        drop(slot);
        log(&finished);
        (context.on_finish)(&finished);
        let wait = next_wait(job.interval, job.instance.held_for(), finished.outcome());
        // Every host sharing the store waits for this due time.
        lease::release(&*context.store, &lease, wait).await;
        due = wait.map(|wait| tokio::time::Instant::now() + wait);
        control.ended(wait.map(|wait| now_ms().saturating_add(wait.as_millis() as i64)));
    }
    control.close();
}

/// Asks for the instance's lease for a run, scheduled or `asked` for. A
/// due time further off than this host's interval was set under a longer
/// schedule (the config changed since): this host's schedule holds, and the
/// lease is asked for again as for a run asked for now.
async fn take_lease(job: &Job, context: &Context, asked: bool) -> Result<LeaseGrant, StoreError> {
    let target = job.instance.target();
    let ttl = context.options.sync.lease_ttl;
    let mut request = lease::request(&target.tenant, &target.instance, ttl, !asked);
    let answer = context.store.acquire_lease(&request).await?;
    let longest = job.interval.map(|interval| interval + MAX_JITTER);
    match (&answer, longest) {
        (LeaseGrant::NotDue { due }, Some(longest)) if due.saturating_sub(now_ms()) > longest.as_millis() as i64 => {
            tracing::info!(
                due,
                "the stored due time was set under a longer schedule; this host's schedule holds"
            );
            request.scheduled = false;
            context.store.acquire_lease(&request).await
        }
        _ => Ok(answer),
    }
}

/// The most [`jitter`] adds.
const MAX_JITTER: Duration = Duration::from_secs(30);

/// When to try again after the lease was not granted: when the other
/// holder's lease would run out (it is renewed while its run goes, and
/// released with the next due time when it ends), or at the due time it
/// set; a run asked for learns who runs the instance. `None`: only when
/// asked (an instance without a schedule).
fn not_granted(
    answer: Result<LeaseGrant, StoreError>,
    interval: Option<Duration>,
    control: &InstanceControl,
) -> Option<tokio::time::Instant> {
    let in_ms = |at: i64| Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0));
    let wait = match answer {
        Ok(LeaseGrant::Held { holder, expires }) => {
            tracing::debug!(%holder, "another host runs the instance");
            control.elsewhere(&holder);
            in_ms(expires) + Duration::from_secs(1).mul_f64(super::retry::jitter())
        }
        Ok(LeaseGrant::NotDue { due }) => {
            tracing::debug!(due, "another host ran the instance; the next run is due later");
            let wait = in_ms(due);
            wait + jitter(interval.unwrap_or(wait))
        }
        Ok(LeaseGrant::Granted(_)) => Duration::ZERO,
        Err(error) => {
            tracing::warn!(%error, "the instance's lease could not be asked for; trying again");
            interval.map_or(LEASE_RETRY, |interval| interval.min(LEASE_RETRY))
        }
    };
    interval.map(|_| tokio::time::Instant::now() + wait)
}

/// How soon a scheduled instance asks again for a lease the store could
/// not be asked for (unreachable).
const LEASE_RETRY: Duration = Duration::from_secs(30);

/// How long after a run the next one starts: one interval, but never
/// while the host holds the instance's upstream (`held`, the time left of
/// the longest hold); a run that stopped because its upstream asked to come
/// back later is resumed when the hold ends, even before its interval or
/// without a schedule (it did not finish). Instances held together come
/// back a little apart, as after any interval.
fn next_wait(interval: Option<Duration>, held: Option<Duration>, outcome: RunOutcome) -> Option<Duration> {
    match (interval, held) {
        (_, Some(held)) if outcome == RunOutcome::Stopped => Some(held + jitter(held)),
        (Some(interval), held) => Some((interval + jitter(interval)).max(held.unwrap_or_default())),
        (None, _) => None,
    }
}

/// Waits until `due`, or forever when there is none.
async fn until(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// One permit of each upstream, taken in the upstreams' sorted order (so
/// no two instances each hold what the other waits for); `None` if a
/// semaphore was closed.
async fn acquire(upstreams: &[Arc<Semaphore>]) -> Option<Vec<OwnedSemaphorePermit>> {
    let mut permits = Vec::with_capacity(upstreams.len());
    for semaphore in upstreams {
        permits.push(Arc::clone(semaphore).acquire_owned().await.ok()?);
    }
    Some(permits)
}

/// Up to 5 % of the interval, at most 30 s, so instances on one interval
/// drift apart instead of hitting their upstreams together.
fn jitter(interval: Duration) -> Duration {
    let most = interval.mul_f64(0.05).min(MAX_JITTER);
    most.mul_f64(super::retry::jitter())
}

async fn run_once(
    instance: &SyncInstance,
    session: &mut ConnectorSession,
    context: &Context,
    control: &Arc<InstanceControl>,
    lease: &mut Lease,
) -> FinishedRun {
    let target = instance.target();
    let started = Instant::now();
    let started_ms = now_ms();
    let holder = lease.holder.clone();
    let mut progress = LastBatch {
        record: None,
        control: Arc::clone(control),
    };
    let mut run = Box::pin(super::run_leased(
        session,
        &context.store,
        target,
        lease,
        &context.options.sync,
        &mut progress,
    ));
    let grace = context.options.grace;
    let cut = async {
        context.shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = &mut run => Some(result),
        () = cut => None,
    };
    // Dropping the run cuts it; a commit it started goes on to the end.
    drop(run);
    let (record, error) = match result {
        Some(Ok(record)) => (Some(record), None),
        Some(Err(error)) => (
            last_record(&*context.store, instance, started_ms, &holder).await,
            Some(error.to_string()),
        ),
        None => {
            let record = close_cut_run(&*context.store, instance, progress.record, started_ms, grace, &holder).await;
            let error = record.as_ref().and_then(|r| r.error.clone());
            (record, error.or_else(|| Some("cut by shutdown".into())))
        }
    };
    FinishedRun {
        instance: instance.name().to_string(),
        duration: started.elapsed(),
        record,
        error,
    }
}

/// The instance's newest run of `holder` (this process), if it began at or
/// after `started_ms` (a failed run saves its record before returning its
/// error); never a run another host began since.
async fn last_record(store: &dyn Store, instance: &SyncInstance, started_ms: i64, holder: &str) -> Option<RunRecord> {
    let target = instance.target();
    let runs = store.runs(&target.tenant, &target.instance, 4).await.ok()?;
    runs.into_iter()
        .find(|run| run.started >= started_ms && run.holder.as_deref() == Some(holder))
}

/// Logs a run cut by shutdown as `interrupted`, with the counts of the
/// batches it had committed.
async fn close_cut_run(
    store: &dyn Store,
    instance: &SyncInstance,
    last_batch: Option<RunRecord>,
    started_ms: i64,
    grace: Duration,
    holder: &str,
) -> Option<RunRecord> {
    let mut record = match last_batch {
        Some(record) => record,
        None => last_record(store, instance, started_ms, holder).await?,
    };
    if record.outcome != RunOutcome::Running {
        return Some(record);
    }
    record.finished = Some(now_ms());
    record.outcome = RunOutcome::Interrupted;
    record.error = Some(format!(
        "cut by shutdown after a grace of {:.1} s; the next run resumes from the last committed cursor",
        grace.as_secs_f64()
    ));
    if let Err(e) = store.save_run(&record).await {
        tracing::error!(instance = %record.instance, "cannot record the cut run: {e}");
    }
    Some(record)
}

fn log(finished: &FinishedRun) {
    let duration = finished.duration;
    match (&finished.record, &finished.error) {
        (Some(r), None) => tracing::info!(
            instance = %finished.instance, outcome = ?r.outcome, run = r.run, batches = r.batches,
            inserted = r.inserted, replaced = r.replaced, unchanged = r.unchanged, retries = r.retries, ?duration,
            "scheduled sync finished"
        ),
        (record, error) => tracing::warn!(
            instance = %finished.instance, outcome = ?finished.outcome(), run = record.as_ref().map(|r| r.run),
            inserted = record.as_ref().map(|r| r.inserted), ?duration, error = error.as_deref().unwrap_or_default(),
            "scheduled sync did not complete"
        ),
    }
}

/// Keeps the run record as of the last committed batch, for a run that is
/// cut before it can save its own, and tells whoever asked for the run its id.
struct LastBatch {
    record: Option<RunRecord>,
    control: Arc<InstanceControl>,
}

impl Progress for LastBatch {
    fn started(&mut self, record: &RunRecord) {
        self.control.began(record.run);
    }

    fn batch(&mut self, record: &RunRecord, _observations: usize) {
        self.record = Some(record.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// field case 05-servicenow-throttling.json, A_long_wait: the run
    /// stopped on a 1740 s wait is resumed then, not an interval later.
    #[test]
    fn field_case_05_a_a_deferred_run_resumes_when_the_hold_ends() {
        let held = Some(Duration::from_secs(1740));
        for interval in [Some(15 * MINUTE), Some(24 * 60 * MINUTE), None] {
            let wait = next_wait(interval, held, RunOutcome::Stopped).expect("resumed");
            assert!(
                wait >= Duration::from_secs(1740) && wait <= Duration::from_secs(1770),
                "{wait:?}"
            );
        }
        // A run that completed keeps its interval, but never starts held.
        let wait = next_wait(Some(15 * MINUTE), held, RunOutcome::Completed).expect("scheduled");
        assert_eq!(wait, Duration::from_secs(1740));
        let wait = next_wait(Some(15 * MINUTE), None, RunOutcome::Completed).expect("scheduled");
        assert!(wait >= 15 * MINUTE && wait <= 15 * MINUTE + Duration::from_secs(30));
        assert_eq!(next_wait(None, None, RunOutcome::Stopped), None, "on demand, not held");
    }
}
