//! What a backend is asked to write: a batch of observations from one
//! connector instance and the cursor that follows it, committed together or
//! not at all.

use crate::{Provenance, StoreError};
use xla_types::Observation;

/// One batch from a connector instance and the cursor that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitBatch {
    /// Tenant the data belongs to.
    pub tenant: String,
    /// Connector instance that emitted it.
    pub source: String,
    /// Where it came from.
    pub provenance: Provenance,
    /// The observations; a repeated (id, metric) keeps the last.
    pub observations: Vec<Observation>,
    /// The cursor to store with it, if any.
    pub cursor: Option<String>,
}

/// Checks an observation against the rules every path applies
/// ([`Observation::check`]). A backend checks each observation before it
/// writes anything, so a batch with one bad observation stores nothing.
///
/// # Errors
/// [`StoreError::BadObservation`] naming the observation, its id and metric
/// escaped and capped (they come from a plugin).
pub fn check_observation(o: &Observation) -> Result<(), StoreError> {
    o.check().map_err(|reason| StoreError::BadObservation {
        id: xla_types::untrusted::escape_capped(&o.id, 100).into_owned(),
        metric: xla_types::untrusted::escape_capped(&o.metric, 100).into_owned(),
        reason: reason.to_string(),
    })
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitSummary {
    /// New rows.
    pub inserted: usize,
    /// Rows that replaced a stored row with other data.
    pub replaced: usize,
    /// Rows identical to what was stored (a replay).
    pub unchanged: usize,
}

/// What retention did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionSummary {
    /// Raw observations dropped.
    pub dropped: u64,
}
