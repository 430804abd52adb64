//! The sync run log: one record per run of a connector instance (start,
//! end, counts, error), kept beside the data it brought so that "when did
//! ServiceNow last sync, and did it fail?" has an answer after a restart.

use super::{OrStore, Sled, keys};
use xla_store::{Lease, RunOutcome, RunRecord, StoreError};

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

/// Every (tenant, instance) with runs: one seek per instance (past its
/// last run), not a scan of the log.
pub(crate) fn instances(db: &sled::Db) -> Result<Vec<(String, String)>, StoreError> {
    let mut found = Vec::new();
    let mut from = vec![b'L'];
    while let Some(entry) = db.range(from.clone()..).next() {
        let (key, _) = entry.or_store()?;
        let Some((tenant, instance)) = parse_prefix(&key) else {
            break;
        };
        let mut past = run_prefix(&tenant, &instance);
        past.extend_from_slice(&[0xff; 9]);
        found.push((tenant, instance));
        from = past;
    }
    Ok(found)
}

/// Tenant and instance of a run key (`L`, each length-prefixed).
fn parse_prefix(key: &[u8]) -> Option<(String, String)> {
    let mut rest = key.strip_prefix(b"L")?;
    let mut part = || {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let text = std::str::from_utf8(rest.get(4..4 + len)?).ok()?.to_string();
        rest = &rest[4 + len..];
        Some(text)
    };
    Some((part()?, part()?))
}

impl Sled {
    /// Starts a run under `lease`: records it as running and returns it.
    /// Runs of the instance still marked running were cut short by their
    /// process: they are marked interrupted.
    pub(crate) fn begin_run(&self, lease: &Lease, started: i64) -> Result<RunRecord, StoreError> {
        self.leases.check(&lease.tenant, &lease.instance, Some(lease.token))?;
        for mut run in self.runs_before(&lease.tenant, &lease.instance, None, 16)? {
            if run.interrupt(lease, started) {
                self.save_run(&run)?;
            }
        }
        let run = self.next_run_id()?;
        let record = RunRecord::start(run, lease, started);
        self.save_run(&record)?;
        Ok(record)
    }

    /// The next run id: one more than the last, from a counter of the
    /// store's own. sled's id generator, which earlier builds used, skips
    /// millions on every open (and the store opens sled again now and then):
    /// a store without the counter starts it there, so ids keep increasing.
    fn next_run_id(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let seed = match db.contains_key(keys::RUN_NEXT).or_store()? {
            true => 0,
            false => db.generate_id().or_store()?,
        };
        let next = db
            .update_and_fetch(keys::RUN_NEXT, |old| {
                let last = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(seed, u64::from_be_bytes);
                Some((last + 1).to_be_bytes().to_vec())
            })
            .or_store()?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::corrupt("the run counter is not 8 bytes"))?;
        Ok(next)
    }

    /// Writes a run's record (at its start, and when it ends); a stored
    /// record that has ended is kept (see [`xla_store::Store::save_run`]).
    pub(crate) fn save_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(format!("encoding a run record: {e}")))?;
        let ended = |stored: &[u8]| decode(stored).is_ok_and(|r| r.outcome != RunOutcome::Running);
        self.db()?
            .update_and_fetch(run_key(&record.tenant, &record.instance, record.run), |old| match old {
                Some(stored) if ended(stored) => Some(stored.to_vec()),
                _ => Some(bytes.clone()),
            })
            .or_store()?;
        if self.durable() {
            self.db()?.flush().or_store()?;
        }
        Ok(())
    }

    /// At most `limit` runs of an instance below run id `before` (all
    /// without it), newest first: a reverse range scan, decoding only what
    /// it returns.
    pub(crate) fn runs_before(
        &self,
        tenant: &str,
        instance: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let prefix = run_prefix(tenant, instance);
        // Held while the entries are read: an iterator keeps sled open.
        let db = self.db()?;
        let entries = match before {
            None => db.scan_prefix(&prefix),
            Some(before) => db.range(prefix..run_key(tenant, instance, before)),
        };
        let mut records = Vec::new();
        for entry in entries.rev().take(limit) {
            records.push(decode(&entry.or_store()?.1)?);
        }
        Ok(records)
    }

    /// The run `run` of an instance.
    pub(crate) fn run(&self, tenant: &str, instance: &str, run: u64) -> Result<Option<RunRecord>, StoreError> {
        self.db()?
            .get(run_key(tenant, instance, run))
            .or_store()?
            .map(|value| decode(&value))
            .transpose()
    }

    /// How many runs of an instance the log holds (keys only are counted).
    pub(crate) fn run_count(&self, tenant: &str, instance: &str) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.db()?.scan_prefix(run_prefix(tenant, instance)) {
            entry.or_store()?;
            count += 1;
        }
        Ok(count)
    }
}

fn decode(value: &[u8]) -> Result<RunRecord, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt(format!("a run record: {e}")))
}
