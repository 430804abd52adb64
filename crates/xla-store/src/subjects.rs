//! Queries that join a subject's observations across metrics and sources: one
//! row per ticket (or device) for scorers that judge tickets one by one (the
//! watermelon detector: SLA met *and* rated 0-6), and a metric grouped by a
//! dimension that only its subject's other observations carry (a survey
//! answer counts for the assignment group of its ticket).

/// What [`crate::Store::subject_rows`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectQuery {
    /// Tenant.
    pub tenant: String,
    /// The dimension that names a subject, e.g. `ticket`.
    pub key: String,
    /// Metrics whose values join into the rows.
    pub metrics: Vec<String>,
    /// Start, unix ms, inclusive.
    pub from: i64,
    /// End, unix ms, exclusive.
    pub to: i64,
    /// Only observations with this dimension value.
    pub filter: Option<(String, String)>,
}

/// What [`crate::Store::grouped_through`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupThrough {
    /// Tenant.
    pub tenant: String,
    /// The dimension that names a subject, e.g. `ticket`.
    pub key: String,
    /// The metric to roll up.
    pub metric: String,
    /// The dimension to group by, which `metric`'s observations lack.
    pub group_by: String,
    /// Metrics whose observations name each subject's group, first found wins.
    pub via: Vec<String>,
    /// Start, unix ms, inclusive.
    pub from: i64,
    /// End, unix ms, exclusive.
    pub to: i64,
    /// Only observations with this dimension value.
    pub filter: Option<(String, String)>,
}
