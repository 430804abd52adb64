//! What a backend is asked to write: a batch of observations from one
//! connector instance and the cursor that follows it, committed together or
//! not at all.

use crate::{Provenance, StoreError};
use xla_types::{Gap, Observation, Record, Span};

/// One batch from a connector instance and the cursor that follows it.
///
/// Applied in this order: `observations`, `records`, `retractions` (a key
/// both written and retracted ends retracted), `partial`, `complete`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitBatch {
    /// Tenant the data belongs to.
    pub tenant: String,
    /// Connector instance that emitted it.
    pub source: String,
    /// Where it came from.
    pub provenance: Provenance,
    /// The observations; a repeated (id, metric) keeps the last.
    pub observations: Vec<Observation>,
    /// Records, each stored as one observation per value
    /// ([`Record::observations`]) after `observations`, without repeating
    /// the id and dimensions per value: how a connector's batch arrives.
    pub records: Vec<Record>,
    /// Stored values that no longer count: removed from the rows and from
    /// every rollup exactly. Retracting what is not stored changes nothing.
    pub retractions: Vec<Retracted>,
    /// Ids of records none of whose values count any more: every value the
    /// source has stored for the id is retracted, whatever its metric (so a
    /// connector that declares a pattern such as `*` can retract a whole
    /// record too), and none this batch sends for it is stored.
    pub retracted_records: Vec<String>,
    /// Spans of source time this batch leaves incomplete.
    pub partial: Vec<Gap>,
    /// Spans now complete: the source's stored gaps inside them close.
    pub complete: Vec<Span>,
    /// The cursor to store with it, if any.
    pub cursor: Option<String>,
    /// The fencing token of the lease the run committing it holds
    /// ([`crate::Lease::token`]): the store refuses the batch with
    /// [`crate::StoreError::LeaseLost`] once the source's lease has a newer
    /// grant or ran out. `None` commits under no lease.
    pub lease: Option<u64>,
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

/// Checks a record against the rules every path applies ([`Record::check`]),
/// as [`check_observation`] does for an observation.
///
/// # Errors
/// [`StoreError::BadObservation`] naming the record's id and its first
/// metric, escaped and capped (they come from a plugin).
pub fn check_record(r: &Record) -> Result<(), StoreError> {
    r.check().map_err(|reason| StoreError::BadObservation {
        id: xla_types::untrusted::escape_capped(&r.id, 100).into_owned(),
        metric: xla_types::untrusted::escape_capped(r.values.first().map_or("", |v| v.metric.as_str()), 100)
            .into_owned(),
        reason: reason.to_string(),
    })
}

/// Checks a retraction's id and metric as for a record.
///
/// # Errors
/// [`StoreError::BadObservation`] naming them, escaped and capped.
pub fn check_retracted(r: &Retracted) -> Result<(), StoreError> {
    xla_types::Retraction::metrics(r.id.as_str(), [r.metric.as_str()])
        .check()
        .map_err(|reason| StoreError::BadObservation {
            id: xla_types::untrusted::escape_capped(&r.id, 100).into_owned(),
            metric: xla_types::untrusted::escape_capped(&r.metric, 100).into_owned(),
            reason: reason.to_string(),
        })
}

/// One stored value to retract: the source record's id and the metric.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Retracted {
    /// The source record's id.
    pub id: String,
    /// The metric.
    pub metric: String,
}

impl Retracted {
    /// The value of `metric` of record `id`.
    pub fn new(id: impl Into<String>, metric: impl Into<String>) -> Self {
        Retracted {
            id: id.into(),
            metric: metric.into(),
        }
    }
}

/// A gap a connector instance reported and has not closed: its data for
/// `span` is known incomplete.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceGap {
    /// The connector instance.
    pub source: String,
    /// The span and why.
    #[serde(flatten)]
    pub gap: Gap,
    /// The metrics this source has stored, sorted: the ones the gap may
    /// leave incomplete. Empty when the source has stored nothing yet, so
    /// the gap may concern any metric.
    pub metrics: Vec<String>,
}

impl SourceGap {
    /// Whether a value computed from `metrics` may be missing data of this gap.
    pub fn concerns<S: AsRef<str>>(&self, metrics: &[S]) -> bool {
        self.metrics.is_empty() || metrics.iter().any(|m| self.metrics.iter().any(|g| g == m.as_ref()))
    }
}

/// The open gaps of one source after `partial` opened some and `complete`
/// closed those inside its spans; the same gap reported twice is kept once.
pub fn merge_gaps(mut open: Vec<Gap>, partial: &[Gap], complete: &[Span]) -> Vec<Gap> {
    for gap in partial {
        if !open.contains(gap) {
            open.push(gap.clone());
        }
    }
    open.retain(|gap| !complete.iter().any(|span| span.contains(&gap.span)));
    open.sort_by(|a, b| (a.span, &a.reason).cmp(&(b.span, &b.reason)));
    open
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
    /// Stored rows retracted.
    #[serde(default)]
    pub retracted: usize,
}
