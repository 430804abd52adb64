//! The store's model and contract: what XLA Host keeps (observations with
//! their provenance, rollups, connector cursors, the sync run log) and the
//! async [`Store`] trait every backend implements.
//!
//! The rest of the host depends on this crate only: the sync engine commits
//! batches through `Arc<dyn Store>`, scoring and the API read rollups and
//! rows through it. A backend crate (`xla-store-sled`, the embedded default)
//! implements the trait and passes the [`conformance`] suite, which holds the
//! rules every backend keeps:
//!
//! - a batch and its cursor commit atomically; on error nothing of it is stored;
//! - a replayed record changes nothing; a changed one replaces the old and
//!   every rollup it touched follows exactly;
//! - every rollup query equals the same query computed from the raw rows;
//! - retention drops raw rows and keeps rollups exact through later replaces.
//!
//! No backend type appears here: a [`StoreError`] names what went wrong in
//! the host's terms, with the backend's own error as its source.
#![deny(missing_docs)]

mod commit;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod join;
mod lease;
mod model;
mod query;
mod retention;
mod rollup;
mod runs;
mod subjects;
mod tokens;

pub use commit::{
    CommitBatch, CommitSummary, Retracted, SourceGap, check_observation, check_record, check_retracted, merge_gaps,
};
pub use config::{Backend, StoreConfig};
pub use error::StoreError;
pub use join::{
    JOIN_KEY, JOIN_OPENING, JOIN_TYPE_DIMENSION, JOIN_VIA, JOINED_METRICS, OUTCOME_RATING_METRIC, OUTCOME_SLA_METRIC,
    OutcomesBySlice, TicketCandidate, TicketOutcome, TicketOutcomes, is_joined_metric, is_later_rating, pick_ticket,
};
pub use lease::{
    DEFAULT_LEASE_TTL, LapsedHolder, Lease, LeaseGrant, LeaseRequest, LeaseState, LocalLeases, Verdict, judge,
    lease_lost, ttl_ms,
};
pub use model::{
    DAY_MS, Provenance, SUBJECT_DIMENSIONS, StoredObservation, UNROLLED_DIMENSIONS, day_of, is_rating, utc_date,
    whole_days,
};
pub use query::{
    Aggregation, Breakdown, BreakdownQuery, BreakdownRow, Bucket, SeriesPoint, SeriesQuery, breakdown, bucket_start,
    evaluate, happiness, series,
};
pub use retention::{
    AppliedRetention, LayerDays, MAX_RETENTION_DAYS, MetricStats, RetentionPolicy, RetentionRule, RetentionSummary,
    RetiredDay, RetiredRecord, StoreStats, StoredMetric, apply_retention, check_cutoff, plan_retention,
};
pub use rollup::{Prepared, Rollup, Sketch};
pub use runs::{RunOutcome, RunRecord};
pub use subjects::{
    ANSWER_LOOKBACK_MS, AnswerFacts, GroupThrough, GroupedThrough, JOIN_CLOCK_TOLERANCE_MS, SubjectQuery,
    SubjectRowBuilder, TicketFacts, UNMATCHED_EXAMPLES, Unjoined, UnmatchedAnswer, UnmatchedAnswers, plausible_join,
};
pub use tokens::{Scope, TokenRecord};
pub use xla_types::SubjectRow;

use std::collections::BTreeMap;

/// Rollup cells merged per (bucket start in unix ms, group value): the
/// answer to a [`SeriesQuery`] before its aggregation is applied.
pub type Rollups = BTreeMap<(i64, Option<String>), Rollup>;

/// A store of XLA data. Every method is async: a backend runs its blocking
/// work (disk, network) off the async workers, so a query never stalls the
/// HTTP server or the scheduler sharing the runtime.
///
/// Times are unix milliseconds (UTC); windows are `[from, to)`. A tenant,
/// metric or dimension the store has never seen is not an error: it has no
/// data. Every method keeps to one tenant.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// What and where the store is, for logs and errors (`sled store in
    /// /var/lib/xla-host`); never a credential.
    fn describe(&self) -> String;

    /// A number that changes whenever stored data may have changed (a
    /// commit, retention), and only then: what caches of computed reports
    /// key on. Cheap; never blocks.
    fn data_version(&self) -> u64;

    /// Commits `batch` and its cursor atomically; on error nothing of it is
    /// stored. A replayed record counts as unchanged; a record with other
    /// data replaces the stored one.
    ///
    /// # Errors
    /// [`StoreError::BadObservation`] for an observation that breaks
    /// [`xla_types::Observation::check`]; backend failures.
    async fn commit(&self, batch: CommitBatch) -> Result<CommitSummary, StoreError>;

    /// The open gaps of every connector instance of `tenant`: spans whose
    /// data a connector said is incomplete and has not since completed.
    async fn gaps(&self, tenant: &str) -> Result<Vec<SourceGap>, StoreError>;

    /// Every (tenant, connector instance) the store holds a cursor or runs
    /// of, sorted: what a copy of the store walks.
    async fn instances(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// The cursor stored for a connector instance (`source`) of a tenant.
    async fn cursor(&self, tenant: &str, source: &str) -> Result<Option<String>, StoreError>;

    /// Grants the instance's lease to `request.holder`, or says who holds
    /// it or when the next scheduled run is due (see [`Lease`]).
    async fn acquire_lease(&self, request: &LeaseRequest) -> Result<LeaseGrant, StoreError>;

    /// Renews `lease` for its time-to-live from now and updates its expiry.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when another grant replaced it; backend
    /// failures (the lease may still be the holder's: retry before it expires).
    async fn renew_lease(&self, lease: &mut Lease) -> Result<(), StoreError>;

    /// Releases `lease` (a lease a newer grant replaced is left alone); the
    /// instance's next scheduled run is due `next_due` from now (`None`
    /// keeps the due time as it is).
    async fn release_lease(&self, lease: &Lease, next_due: Option<std::time::Duration>) -> Result<(), StoreError>;

    /// Starts a run under `lease`: records it as running and returns it with
    /// a new run id (unique in the store, increasing). Runs of the instance
    /// still marked running belong to a holder whose lease ran out: they
    /// are marked interrupted ([`RunRecord::interrupt`]).
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when `lease` is no longer the instance's.
    async fn begin_run(&self, lease: &Lease, started: i64) -> Result<RunRecord, StoreError>;

    /// Saves a run record (its progress, or its end). A record that has
    /// ended is final: saving over it keeps the stored one (a holder that
    /// lost its lease cannot rewrite the run its successor closed).
    async fn save_run(&self, record: &RunRecord) -> Result<(), StoreError>;

    /// The latest `limit` runs of a connector instance, newest first.
    async fn runs(&self, tenant: &str, instance: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_before(tenant, instance, None, limit).await
    }

    /// At most `limit` runs of a connector instance with an id below
    /// `before` (all, without it), newest first: a page of the run log that
    /// runs starting meanwhile do not shift.
    async fn runs_before(
        &self,
        tenant: &str,
        instance: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError>;

    /// The run `run` of a connector instance, if it has one by that id.
    async fn run(&self, tenant: &str, instance: &str, run: u64) -> Result<Option<RunRecord>, StoreError>;

    /// How many runs of a connector instance the log holds.
    async fn run_count(&self, tenant: &str, instance: &str) -> Result<u64, StoreError>;

    /// Every stored observation of a tenant's metric in `[from, to)` (raw
    /// rows), oldest first. Days retention retired have no rows.
    async fn observations(
        &self,
        tenant: &str,
        metric: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredObservation>, StoreError>;

    /// Every observation of one subject across metrics and sources, oldest
    /// first: `subject("acme", "ticket", "INC0012345")` gives the ticket's
    /// rating, lost time, SLA and reassignments. Subjects are the
    /// [`SUBJECT_DIMENSIONS`].
    async fn subject(&self, tenant: &str, dimension: &str, value: &str) -> Result<Vec<StoredObservation>, StoreError>;

    /// Rollup cells merged per (bucket, group) for `query` (its aggregation
    /// is not applied): what a scorer's aggregates are made of.
    ///
    /// # Errors
    /// [`StoreError::RetiredRows`] when the query needs raw rows (a filter
    /// and a group-by on two dimensions, or an [`UNROLLED_DIMENSIONS`] one)
    /// and retention dropped those of the window.
    async fn rollups(&self, query: &SeriesQuery) -> Result<Rollups, StoreError>;

    /// A series of `query.aggregation` per bucket (and group).
    async fn series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        Ok(series(query, self.rollups(query).await?))
    }

    /// The top values of a dimension ranked by a metric, with Pareto shares.
    async fn breakdown(&self, query: &BreakdownQuery) -> Result<Breakdown, StoreError> {
        Ok(breakdown(query, self.rollups(&query.series()).await?))
    }

    /// One row per value of `query.key` among the observations of
    /// `query.metrics` in the window, ordered by key. A row holds every
    /// value of those metrics (a ticket with two SLAs has two
    /// `sla_breached` values), each followed by `(<metric>.at, unix ms)`
    /// (exact in an f64) for scorers that order by time, and the union of
    /// the observations' dimensions, the key's own excepted; where sources
    /// disagree on a dimension, the first metric listed wins. Observations
    /// without the key dimension are left out.
    ///
    /// # Errors
    /// [`StoreError::RetiredRows`] when retention dropped the window's rows.
    async fn subject_rows(&self, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError>;

    /// `query.metric` rolled up per value of `query.group_by` as the
    /// subjects' `via` observations name it: a survey answer counts for the
    /// assignment group of its ticket. A value joins a subject only when
    /// [`plausible_join`] accepts it (type, time), and of several tickets
    /// of its number the one [`pick_ticket`] picks; values that join none
    /// are counted and listed in [`GroupedThrough::unmatched`], never put in
    /// a group. Values of a subject that has no group are in neither.
    ///
    /// Two ways to answer, with the same rule:
    ///
    /// - **joined rollups**, for the store's own ticket join ([`JOIN_KEY`]
    ///   through [`JOIN_VIA`] dated by [`JOIN_OPENING`]) of a
    ///   [`JOINED_METRICS`] metric, without a filter, over whole UTC days,
    ///   grouped by a rolled-up dimension: the store joined each value when
    ///   it (or its ticket) was written, and moved it when its ticket
    ///   changed. Every stored ticket of the number is a candidate, and days
    ///   retention retired still count. Unmatched examples come in day order;
    /// - **raw rows** otherwise (or with `from_rows`): the `via`
    ///   observations are read from [`ANSWER_LOOKBACK_MS`] before the window
    ///   (days retention retired are skipped), so a ticket resolved earlier
    ///   than that is not found.
    ///
    /// # Errors
    /// [`StoreError::RetiredRows`] when the join reads raw rows and
    /// retention dropped the window's.
    async fn grouped_through(&self, query: &GroupThrough) -> Result<GroupedThrough, StoreError>;

    /// What the tickets resolved in `[from, to)` came to, per value of the
    /// ticket dimension `group_by` and (key `None`) for the whole window:
    /// the SLA-beside-XLA scorecard's counts. A ticket is a [`JOIN_VIA`]
    /// row; its outcome ([`TicketOutcome`]) is over every value joined to
    /// it by the store's ticket join, whenever given (an answer a week after
    /// the month still rates the month's ticket).
    ///
    /// `Ok(None)` when the backend does not keep outcomes, `[from, to)` is
    /// not whole UTC days, or no ticket names `group_by` (a per-subject
    /// dimension, or one only the answers carry): the caller judges
    /// per-ticket rows instead. The default keeps none.
    async fn ticket_outcomes(
        &self,
        tenant: &str,
        group_by: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Option<OutcomesBySlice>, StoreError> {
        let _ = (tenant, group_by, from, to);
        Ok(None)
    }

    /// Saves a token record (a new token, or a changed one: last use,
    /// revocation), keyed by its id.
    async fn save_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    /// Records that token `id` was used at `at` (unix ms), changing only
    /// its `last_used` and never moving it back, in one atomic step: a
    /// revocation saved meanwhile is kept. Nothing happens for an unknown id.
    async fn note_token_use(&self, id: &str, at: i64) -> Result<(), StoreError>;

    /// The token record with this id, revoked and expired ones included.
    /// A store several processes share may answer from a record it read up
    /// to a second before (PostgreSQL): a token saved by another process
    /// (`xla-host token revoke`, another host) counts here within that
    /// second; one saved through this store, at once.
    async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token record, ordered by id.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Drops a tenant's raw observations of UTC days that ended by `cutoff`
    /// (unix ms), of one metric or (`None`) of all; rollups, cursors and
    /// runs stay. A cutoff never moves back. Reads that need raw rows of a
    /// retired day fail with [`StoreError::RetiredRows`]. A call does a
    /// bounded share of the work (on sled, 1,024 blocks) and says
    /// [`RetentionSummary::more`] when it stopped early: call again to go on.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] for a cutoff in the future.
    async fn retire_before(
        &self,
        tenant: &str,
        metric: Option<&str>,
        cutoff: i64,
    ) -> Result<RetentionSummary, StoreError>;

    /// Every metric of every tenant that has rows stored (raw or retired),
    /// with its layer, ordered by tenant, then metric. Cheap: no row is
    /// counted.
    async fn stored_metrics(&self) -> Result<Vec<StoredMetric>, StoreError>;

    /// What the store keeps per tenant and metric: rows, sizes, the days
    /// raw rows cover and where retention cut them. Reads every block, so
    /// it takes as long as a scan of the store.
    async fn stats(&self) -> Result<StoreStats, StoreError>;
}
