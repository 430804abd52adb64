//! Starting a run now, from outside the schedule (the API's
//! `POST .../sync`), and what the scheduler knows of each instance: whether
//! a run is requested or in progress, and when the next one is due.
//!
//! One [`InstanceControl`] per instance is shared by its job (which runs
//! the syncs) and by whoever triggers it. A run, scheduled or asked for,
//! holds the instance's phase from the moment it waits for its upstream
//! permits until it has ended, so a trigger in that time is refused as
//! busy: runs of one instance never overlap, whoever started them.
//!
//! Pushed data (webhooks, imports) is committed as a run of its own in the
//! instance's run log, so it takes the instance's slot too
//! ([`SyncControl::hold`]): a push waits for a run in progress to end (and
//! a run for a push), since the run log keeps one run of an instance open
//! at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, Notify, OwnedMutexGuard, oneshot};

/// Where an instance's runs stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing runs; the next run is the scheduled one (if any).
    #[default]
    Idle,
    /// A run was asked for and has not begun yet.
    Requested,
    /// A run waits for its upstream permits (`run` is `None`) or runs.
    Running {
        /// Its run id, once the run log has it.
        run: Option<u64>,
    },
    /// The instance takes no runs: the host is stopping, or the instance
    /// could not be made ready (see [`InstanceSchedule::unavailable`]).
    Closed,
}

/// What the scheduler knows of one instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceSchedule {
    /// Where its runs stand.
    pub phase: Phase,
    /// When its next scheduled run is due, unix ms; `None` for an instance
    /// without a schedule, or while a run is on.
    pub next_run: Option<i64>,
    /// Why it cannot run, if it cannot (its plugin did not load, a
    /// credential is missing...).
    pub unavailable: Option<String>,
}

/// Why a run cannot be started now.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TriggerError {
    /// No such instance runs in this host.
    #[error("no connector instance `{instance}` of tenant `{tenant}` runs in this host")]
    Unknown {
        /// Tenant.
        tenant: String,
        /// Instance.
        instance: String,
    },
    /// A run is requested or in progress; runs of one instance never overlap.
    #[error("{}", busy_message(*.run))]
    Busy {
        /// The run in progress, once it has an id.
        run: Option<u64>,
    },
    /// The instance cannot run.
    #[error("the instance cannot run: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

fn busy_message(run: Option<u64>) -> String {
    match run {
        Some(run) => format!("run {run} of this instance is in progress; try again once it has ended"),
        None => "a run of this instance is starting (it may be waiting for its upstream); try again once it has ended"
            .into(),
    }
}

/// How a requested run began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// It began and the run log calls it `run`.
    Run(u64),
    /// Another host (or process) sharing the store is running the
    /// instance: this one did not start a run.
    Elsewhere {
        /// That run's lease holder (`host/pid/start`).
        holder: String,
    },
    /// It has not begun within the wait (its upstream is busy); it will.
    Waiting,
    /// It ended before the run log had it (the store failed, or the host
    /// is stopping); the host's log says why.
    Failed,
}

/// A requested run, until it begins.
#[derive(Debug)]
pub struct Trigger(oneshot::Receiver<Started>);

impl Trigger {
    /// Waits at most `within` for the run to begin.
    pub async fn started(self, within: Duration) -> Started {
        match tokio::time::timeout(within, self.0).await {
            Ok(Ok(started)) => started,
            Ok(Err(_)) => Started::Failed,
            Err(_) => Started::Waiting,
        }
    }
}

/// The instances a scheduler runs, by tenant and name: what the API uses to
/// start runs and to show when the next one is due.
#[derive(Debug, Default, Clone)]
pub struct SyncControl {
    instances: BTreeMap<(String, String), Arc<InstanceControl>>,
}

impl SyncControl {
    pub(crate) fn insert(&mut self, tenant: &str, instance: &str, control: Arc<InstanceControl>) {
        self.instances
            .insert((tenant.to_string(), instance.to_string()), control);
    }

    fn get(&self, tenant: &str, instance: &str) -> Option<&Arc<InstanceControl>> {
        self.instances.get(&(tenant.to_string(), instance.to_string()))
    }

    /// Asks for a run of `tenant`'s `instance` now; it begins as soon as
    /// its upstream permits allow.
    ///
    /// # Errors
    /// [`TriggerError::Unknown`] for an instance this host does not run,
    /// [`TriggerError::Busy`] while a run is requested or on,
    /// [`TriggerError::Unavailable`] when it cannot run.
    pub fn trigger(&self, tenant: &str, instance: &str) -> Result<Trigger, TriggerError> {
        let control = self.get(tenant, instance).ok_or_else(|| TriggerError::Unknown {
            tenant: tenant.to_string(),
            instance: instance.to_string(),
        })?;
        control.request()
    }

    /// The instance's slot, held while pushed data is committed: waits at
    /// most `within` for a run in progress to end. `Ok(None)` for an
    /// instance this scheduler does not run (nothing else commits for it here).
    ///
    /// # Errors
    /// [`TriggerError::Busy`] when a run still holds the slot after `within`.
    pub async fn hold(&self, tenant: &str, instance: &str, within: Duration) -> Result<Option<Slot>, TriggerError> {
        let Some(control) = self.get(tenant, instance) else {
            return Ok(None);
        };
        let slot = Arc::clone(&control.slot);
        match tokio::time::timeout(within, slot.lock_owned()).await {
            Ok(guard) => Ok(Some(Slot { _guard: guard })),
            Err(_) => Err(TriggerError::Busy {
                run: match control.snapshot().phase {
                    Phase::Running { run } => run,
                    _ => None,
                },
            }),
        }
    }

    /// What the scheduler knows of `tenant`'s `instance`, if it runs here.
    pub fn schedule(&self, tenant: &str, instance: &str) -> Option<InstanceSchedule> {
        self.get(tenant, instance).map(|control| control.snapshot())
    }
}

/// The instance's slot, held by a run or a push until it is dropped.
#[derive(Debug)]
pub struct Slot {
    _guard: OwnedMutexGuard<()>,
}

/// One instance's phase, shared by its job and its triggers.
#[derive(Debug, Default)]
pub(crate) struct InstanceControl {
    state: Mutex<State>,
    wake: Notify,
    /// Held by the run in progress or the push being committed.
    slot: Arc<AsyncMutex<()>>,
}

#[derive(Debug, Default)]
struct State {
    schedule: InstanceSchedule,
    waiters: Vec<oneshot::Sender<Started>>,
}

impl InstanceControl {
    /// An instance that cannot run, and says why.
    pub(crate) fn unavailable(reason: String) -> InstanceControl {
        let control = InstanceControl::default();
        let mut state = control.lock();
        state.schedule.phase = Phase::Closed;
        state.schedule.unavailable = Some(reason);
        drop(state);
        control
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields, valid after any panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn snapshot(&self) -> InstanceSchedule {
        self.lock().schedule.clone()
    }

    fn request(&self) -> Result<Trigger, TriggerError> {
        let mut state = self.lock();
        match state.schedule.phase {
            Phase::Idle => {}
            Phase::Requested => return Err(TriggerError::Busy { run: None }),
            Phase::Running { run } => return Err(TriggerError::Busy { run }),
            Phase::Closed => {
                return Err(TriggerError::Unavailable {
                    reason: state
                        .schedule
                        .unavailable
                        .clone()
                        .unwrap_or_else(|| "the host is stopping".into()),
                });
            }
        }
        state.schedule.phase = Phase::Requested;
        let (sender, receiver) = oneshot::channel();
        state.waiters.push(sender);
        drop(state);
        self.wake.notify_one();
        Ok(Trigger(receiver))
    }

    /// Takes the instance's slot for a run (waiting for a push to end).
    pub(crate) async fn slot(&self) -> Slot {
        Slot {
            _guard: Arc::clone(&self.slot).lock_owned().await,
        }
    }

    /// Whether a run was asked for and has not begun.
    pub(crate) fn requested(&self) -> bool {
        self.lock().schedule.phase == Phase::Requested
    }

    /// Waits until a run is asked for. A wake-up left over from a request
    /// a scheduled run already served is skipped.
    pub(crate) async fn requested_run(&self) {
        loop {
            self.wake.notified().await;
            if self.requested() {
                return;
            }
        }
    }

    /// A run (scheduled or requested) waits for its permits; returns
    /// whether it was asked for (a request it serves).
    pub(crate) fn starting(&self) -> bool {
        let mut state = self.lock();
        let requested = state.schedule.phase == Phase::Requested;
        if state.schedule.phase != Phase::Closed {
            state.schedule.phase = Phase::Running { run: None };
            state.schedule.next_run = None;
        }
        requested
    }

    /// The run log has the run as `run`: whoever asked for it learns it.
    pub(crate) fn began(&self, run: u64) {
        let mut state = self.lock();
        if state.schedule.phase != Phase::Closed {
            state.schedule.phase = Phase::Running { run: Some(run) };
        }
        for waiter in state.waiters.drain(..) {
            let _ = waiter.send(Started::Run(run));
        }
    }

    /// Another holder runs the instance: whoever asked for a run learns who.
    pub(crate) fn elsewhere(&self, holder: &str) {
        let mut state = self.lock();
        for waiter in state.waiters.drain(..) {
            let _ = waiter.send(Started::Elsewhere {
                holder: holder.to_string(),
            });
        }
    }

    /// The run ended; the next scheduled one is due at `next_run`.
    pub(crate) fn ended(&self, next_run: Option<i64>) {
        let mut state = self.lock();
        // A requester whose run never reached the run log learns it failed.
        state.waiters.clear();
        if state.schedule.phase != Phase::Closed {
            state.schedule.phase = Phase::Idle;
            state.schedule.next_run = next_run;
        }
    }

    /// The instance takes no more runs (the host is stopping).
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.schedule.phase = Phase::Closed;
        state.schedule.next_run = None;
        state.waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control() -> (SyncControl, Arc<InstanceControl>) {
        let instance = Arc::new(InstanceControl::default());
        let mut control = SyncControl::default();
        control.insert("acme", "snow", Arc::clone(&instance));
        (control, instance)
    }

    #[tokio::test]
    async fn a_requested_run_learns_its_id_and_a_second_request_is_refused_until_it_ends() {
        let (control, instance) = control();
        let trigger = control.trigger("acme", "snow").expect("idle");
        assert_eq!(
            control.trigger("acme", "snow").unwrap_err(),
            TriggerError::Busy { run: None }
        );
        instance.starting();
        instance.began(7);
        assert_eq!(trigger.started(Duration::from_secs(5)).await, Started::Run(7));
        assert_eq!(
            control.trigger("acme", "snow").unwrap_err(),
            TriggerError::Busy { run: Some(7) }
        );
        instance.ended(Some(1_000));
        let schedule = control.schedule("acme", "snow").expect("known");
        assert_eq!((schedule.phase, schedule.next_run), (Phase::Idle, Some(1_000)));
        assert!(control.trigger("acme", "snow").is_ok());
    }

    #[tokio::test]
    async fn unknown_closed_and_unavailable_instances_say_so() {
        let (control, instance) = control();
        assert!(matches!(
            control.trigger("globex", "snow"),
            Err(TriggerError::Unknown { .. })
        ));
        let trigger = control.trigger("acme", "snow").expect("idle");
        instance.close();
        assert_eq!(trigger.started(Duration::from_secs(5)).await, Started::Failed);
        assert!(matches!(
            control.trigger("acme", "snow"),
            Err(TriggerError::Unavailable { reason }) if reason.contains("stopping")
        ));
        let mut control = SyncControl::default();
        control.insert(
            "acme",
            "broken",
            Arc::new(InstanceControl::unavailable("no plugin".into())),
        );
        assert!(matches!(
            control.trigger("acme", "broken"),
            Err(TriggerError::Unavailable { reason }) if reason == "no plugin"
        ));
    }

    #[tokio::test]
    async fn a_wake_up_left_by_a_served_request_does_not_start_another_run() {
        let (control, instance) = control();
        let _trigger = control.trigger("acme", "snow").expect("idle");
        // A scheduled run begins first and serves the request.
        instance.starting();
        instance.began(1);
        instance.ended(None);
        let waited = tokio::time::timeout(Duration::from_millis(50), instance.requested_run()).await;
        assert!(waited.is_err(), "no run is requested any more");
    }
}
