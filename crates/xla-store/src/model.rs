//! What the store keeps: observations with their provenance.

use serde::{Deserialize, Serialize};
use xla_types::Observation;

/// Where a batch of observations came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Connector instance.
    pub connector: String,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// sha256 of the plugin's component.
    pub sha256: String,
    /// The sync run that brought it.
    pub sync_run: u64,
}

/// An observation as stored: the plugin's observation, its tenant and
/// source, and its provenance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObservation {
    /// Tenant.
    pub tenant: String,
    /// Source: the connector instance that emitted it.
    pub source: String,
    /// The observation, dimensions sorted by key.
    pub observation: Observation,
    /// Where it came from.
    pub provenance: Provenance,
}

/// Whether a metric is a 0-10 rating, which gets a histogram in its rollups.
pub fn is_rating(metric: &str) -> bool {
    metric.ends_with("_rating")
}

/// Dimensions that name a subject whose observations can be listed across
/// sources (a ticket: its rating, its lost time, its SLA, its reassignments).
pub const SUBJECT_DIMENSIONS: [&str; 2] = ["ticket", "device"];

/// Dimensions with a value per subject or person: rolling them up would make
/// a cell per ticket, so no backend keeps rollup cells for them; a query
/// that filters or groups by one reads raw rows.
pub const UNROLLED_DIMENSIONS: [&str; 3] = ["ticket", "device", "user"];

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// Whether `[from, to)` (unix ms) starts and ends on UTC midnights.
pub fn whole_days(from: i64, to: i64) -> bool {
    from.rem_euclid(DAY_MS) == 0 && to.rem_euclid(DAY_MS) == 0
}

/// The UTC day number (days since 1970-01-01) of a time in unix ms; times
/// beyond any storable day (a query to `i64::MAX`) saturate rather than wrap.
pub fn day_of(at: i64) -> i32 {
    at.div_euclid(DAY_MS)
        .clamp(i64::from(i32::MIN), i64::from(i32::MAX - 1)) as i32
}

/// The UTC date (`2026-09-01`, RFC 3339's full-date) of a time in unix ms,
/// for messages.
pub fn utc_date(at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at).map_or_else(|| format!("{at} ms"), |t| t.format("%Y-%m-%d").to_string())
}
