//! The sync run log: one record per run of a connector instance (start,
//! end, counts, error), kept beside the data it brought so that "when did
//! ServiceNow last sync, and did it fail?" has an answer after a restart.

use serde::{Deserialize, Serialize};

/// How a run ended.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Still running.
    Running,
    /// The process ended during the run (killed, crashed); the next run
    /// resumed from the last committed cursor.
    Interrupted,
    /// Pulled until the connector had no more.
    Completed,
    /// Stopped early on purpose (a pull limit).
    Stopped,
    /// Failed: see `error`.
    Failed,
}

/// One sync run of a connector instance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id, unique in the store and increasing.
    pub run: u64,
    /// Tenant.
    pub tenant: String,
    /// Connector instance.
    pub instance: String,
    /// Start, unix ms.
    pub started: i64,
    /// End, unix ms, once ended.
    pub finished: Option<i64>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Batches committed.
    pub batches: u64,
    /// Observations inserted, replaced and unchanged.
    pub inserted: u64,
    /// Replaced.
    pub replaced: u64,
    /// Unchanged (replays).
    pub unchanged: u64,
    /// Stored values retracted.
    #[serde(default)]
    pub retracted: u64,
    /// Gaps the connector reported in this run: spans whose data it knows
    /// is incomplete (a truncated export, a cap reached).
    #[serde(default)]
    pub partial: Vec<xla_types::Gap>,
    /// Retries after transient errors and rate limits.
    pub retries: u64,
    /// The error that ended the run, if any.
    pub error: Option<String>,
    /// The holder of the instance's lease the run ran under (`host/pid/...`:
    /// which host ran it); absent in runs logged before leases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

impl RunRecord {
    /// Run `run` of the instance `lease` is for, started at `started`
    /// (unix ms) and running under it.
    pub fn start(run: u64, lease: &crate::Lease, started: i64) -> RunRecord {
        RunRecord {
            run,
            tenant: lease.tenant.clone(),
            instance: lease.instance.clone(),
            started,
            finished: None,
            outcome: RunOutcome::Running,
            batches: 0,
            inserted: 0,
            replaced: 0,
            unchanged: 0,
            retracted: 0,
            partial: Vec::new(),
            retries: 0,
            error: None,
            holder: Some(lease.holder.clone()),
        }
    }

    /// Marks a run still `running` when `lease` was granted as interrupted:
    /// its holder is gone. It ended when its holder's lease ran out, if the
    /// lease was taken from that holder (nothing it did after counts: its
    /// commits were refused), else at `now`. A run that has ended is left
    /// as it is; returns whether it changed.
    pub fn interrupt(&mut self, lease: &crate::Lease, now: i64) -> bool {
        if self.outcome != RunOutcome::Running {
            return false;
        }
        let (ended, why) = match &lease.taken_from {
            Some(lapsed) => (
                lapsed.expired.min(now),
                format!(
                    "its host ({}) stopped renewing the instance's lease (killed, hung or cut off from the store); {} took over",
                    self.holder.as_deref().unwrap_or(&lapsed.holder),
                    lease.holder
                ),
            ),
            None => (now, "its process ended during the run".to_string()),
        };
        self.finished = Some(ended.max(self.started));
        self.outcome = RunOutcome::Interrupted;
        self.error
            .get_or_insert(format!("{why}; the next run resumed from the last committed cursor"));
        true
    }
}

impl RunOutcome {
    /// The outcome as it is written in JSON and metrics (`completed`).
    pub fn name(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Completed => "completed",
            RunOutcome::Stopped => "stopped",
            RunOutcome::Failed => "failed",
        }
    }
}
