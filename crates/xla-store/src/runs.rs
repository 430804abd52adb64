//! The sync run log: one record per run of a connector instance (start,
//! end, counts, error), kept beside the data it brought so that "when did
//! ServiceNow last sync, and did it fail?" has an answer after a restart.

use super::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// How a run ended.
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
    /// Retries after transient errors and rate limits.
    pub retries: u64,
    /// The error that ended the run, if any.
    pub error: Option<String>,
}

fn run_key(tenant: &str, instance: &str, run: u64) -> Vec<u8> {
    let mut key = run_prefix(tenant, instance);
    key.extend_from_slice(&run.to_be_bytes());
    key
}

/// `L`, then tenant and instance each length-prefixed, so one instance's runs
/// are one range and no name can run into another.
fn run_prefix(tenant: &str, instance: &str) -> Vec<u8> {
    let mut key = vec![b'L'];
    for part in [tenant, instance] {
        key.extend_from_slice(&(part.len() as u32).to_be_bytes());
        key.extend_from_slice(part.as_bytes());
    }
    key
}

impl Store {
    /// Starts a run: records it as running and returns it. A run of the same
    /// instance still marked running was cut short by its process: it is
    /// marked interrupted (one process syncs an instance at a time).
    pub fn begin_run(&self, tenant: &str, instance: &str, started: i64) -> Result<RunRecord, StoreError> {
        for mut run in self.runs(tenant, instance, 16)? {
            if run.outcome == RunOutcome::Running {
                run.outcome = RunOutcome::Interrupted;
                self.save_run(&run)?;
            }
        }
        // sled's id generator is monotonic across restarts.
        let run = self.db.generate_id()? + 1;
        let record = RunRecord {
            run,
            tenant: tenant.to_string(),
            instance: instance.to_string(),
            started,
            finished: None,
            outcome: RunOutcome::Running,
            batches: 0,
            inserted: 0,
            replaced: 0,
            unchanged: 0,
            retries: 0,
            error: None,
        };
        self.save_run(&record)?;
        Ok(record)
    }

    /// Writes a run's record (at its start, and when it ends).
    pub fn save_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(format!("encoding a run record: {e}")))?;
        self.db
            .insert(run_key(&record.tenant, &record.instance, record.run), bytes)?;
        if self.durable {
            self.db.flush()?;
        }
        Ok(())
    }

    /// The last `limit` runs of an instance, newest first.
    pub fn runs(&self, tenant: &str, instance: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.db
            .scan_prefix(run_prefix(tenant, instance))
            .rev()
            .take(limit)
            .map(|entry| {
                let (_, value) = entry?;
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt(format!("a run record: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_kept_newest_first_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let first = {
            let store = Store::open(&path).expect("open");
            let mut run = store.begin_run("acme", "sn", 1_000).expect("begin");
            run.outcome = RunOutcome::Completed;
            run.finished = Some(2_000);
            run.inserted = 42;
            store.save_run(&run).expect("save");
            store.begin_run("acme", "sn-2", 1_500).expect("other instance");
            run
        };
        let store = Store::open(&path).expect("reopen");
        let second = store.begin_run("acme", "sn", 3_000).expect("begin");
        assert!(second.run > first.run, "run ids increase across restarts");
        let runs = store.runs("acme", "sn", 10).expect("runs");
        assert_eq!(runs.len(), 2, "the other instance's run is not listed");
        assert_eq!((runs[0].run, runs[1].clone()), (second.run, first));
        // A run left running by a dead process is interrupted by the next.
        let third = store.begin_run("acme", "sn", 4_000).expect("begin");
        let runs = store.runs("acme", "sn", 10).expect("runs");
        assert_eq!((runs[0].run, runs[0].outcome), (third.run, RunOutcome::Running));
        assert_eq!((runs[1].run, runs[1].outcome), (second.run, RunOutcome::Interrupted));
        assert_eq!(runs[2].outcome, RunOutcome::Completed);
    }
}
